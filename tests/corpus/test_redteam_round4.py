"""Red-team regressions, fourth round: the pickle layer attacked through what the analyser does not look at.
One section per class of attack, each with its variants and the benign files it must keep clean.

Every payload is assembled here from opcodes; nothing is ever unpickled.
"""

from __future__ import annotations

import argparse
import collections
import pickle

import pytest
from test_redteam_pickle import P4, STOP, call, clean, g, subjects, tup, u, worst

from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.domain import Severity


def rules(result: PickleResult) -> set[tuple[str, Severity]]:
    return {(f.rule_id, f.severity) for f in result.findings}


# --- a BUILD state whose keys the analysis did not see ----------------------------------------------------------
# The unpickler puts the items of a dict state into the instance's __dict__ whatever built the dict, and
# __setstate__ methods that do self.__dict__.update(state) (torch modules) take any mapping or a list of pairs. A
# __setstate__ planted so is what the next BUILD calls, with the file's argument (confirmed with the real
# unpicklers: the planted callable was called with the second BUILD's state). The check read only dict literals
# with constant keys, so an OrderedDict filled by SETITEMS (how pickle writes one), dict(pairs), a list of pairs, a
# key made by str(), a state past the first 10,000 keys and a functools.partial's keywords hid it.

_TARGET = (
    "tokenizers.implementations.bert_wordpiece.BertWordPieceTokenizer"  # reads the vocabulary file it names
)
_OBJ = g("argparse.Namespace") + b")\x81"
_MODULE = g("torch.nn.modules.linear.Identity") + b")\x81"  # Module.__setstate__: self.__dict__.update(state)


def _then_build(obj: bytes, state: bytes) -> bytes:
    """``obj``, BUILD ``state``, then a second BUILD that calls what the first one planted."""
    return P4 + obj + state + b"b" + u("/home/user/.ssh/id_rsa") + b"b" + STOP


_PLANT = u("__setstate__") + g(_TARGET)
_FILLER = b"".join(u(f"k{i}") + b"N" for i in range(10_000))


@pytest.mark.parametrize(
    ("obj", "state"),
    [
        # an OrderedDict as pickle writes one: the call, then SETITEMS
        (_OBJ, call(g("collections.OrderedDict")) + b"(" + _PLANT + b"u"),
        (_OBJ, call(g("builtins.dict")) + _PLANT + b"s"),
        (_OBJ, call(g("builtins.dict"), b"]" + tup(_PLANT) + b"a")),
        (_OBJ, call(g("collections.OrderedDict"), b"}" + _PLANT + b"s")),
        (_OBJ, call(g("collections.defaultdict"), b"N", b"}" + _PLANT + b"s")),
        (_OBJ, call(g("collections.OrderedDict"), call(g("builtins.dict"), b"(" + tup(_PLANT) + b"l"))),
        # the (state, slotstate) pair: slotstate items are set with setattr
        (_OBJ, b"N" + call(g("collections.OrderedDict")) + _PLANT + b"s\x86"),
        # a list or tuple of pairs to Module.__setstate__'s __dict__.update
        (_MODULE, b"]" + tup(_PLANT) + b"a"),
        (_MODULE, b"(" + tup(u("training"), b"\x89") + tup(_PLANT) + b"t"),
        # past the first 10,000 keys of the state
        (_OBJ, b"}(" + _FILLER + _PLANT + b"u"),
    ],
    ids=[
        "ordereddict-setitems",
        "dict-setitem",
        "dict-of-pairs",
        "ordereddict-of-dict",
        "defaultdict",
        "nested-constructors",
        "slotstate",
        "module-list-of-pairs",
        "module-tuple-of-pairs",
        "after-10000-keys",
    ],
)
def test_state_setting_a_special_attribute_through_any_mapping_is_critical(obj: bytes, state: bytes) -> None:
    result = analyze_pickle_bytes(_then_build(obj, state))
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result
    assert "__setstate__" in subjects(result)


@pytest.mark.parametrize(
    "key",
    [
        call(g("builtins.str"), u("__setstate__")),
        call(call(g("builtins.getattr"), g("builtins.str"), u("lower")), u("__SETSTATE__")),
        call(g("numpy.str_"), u("__setstate__")),
        call(g("numpy.add"), u("__set"), u("state__")),  # numpy 2's string ufuncs
    ],
    ids=["str", "str.lower", "numpy.str_", "numpy.add"],
)
def test_state_key_computed_at_load_time_is_reported(key: bytes) -> None:
    for obj, state in (
        (_OBJ, b"}" + key + g(_TARGET) + b"s"),
        (_OBJ, call(g("collections.OrderedDict")) + key + g(_TARGET) + b"s"),
        (_MODULE, b"]" + tup(key, g(_TARGET)) + b"a"),
    ):
        result = analyze_pickle_bytes(_then_build(obj, state))
        assert ("LW-MODEL-016", Severity.HIGH) in rules(result), result


def test_list_of_pairs_longer_than_the_analysis_keeps_is_reported() -> None:
    pairs = b"".join(tup(u(f"k{i}"), b"N") for i in range(10_000))
    state = b"](" + pairs + b"e" + tup(_PLANT) + b"a"
    result = analyze_pickle_bytes(_then_build(_MODULE, state))
    assert "state keys unknown" in subjects(result), result
    assert worst(result) == Severity.HIGH


@pytest.mark.parametrize("cls", ["argparse.Namespace", "types.SimpleNamespace", "builtins.dict"])
def test_partial_keywords_and_dict_setting_special_attributes_are_critical(cls: str) -> None:
    # partial(cls) whose BUILD state gives it the keywords {"__setstate__": ...}: calling it makes
    # Namespace(__setstate__=...) (or dict(__setstate__=...) as a state), which the next BUILD calls
    for keywords, pdict in ((b"}" + _PLANT + b"s", b"N"), (b"N", b"}" + _PLANT + b"s")):
        partial = call(g("functools.partial"), g(cls)) + tup(g(cls), b")", keywords, pdict) + b"b"
        if cls == "builtins.dict":
            payload = P4 + _OBJ + partial + b")R" + b"b" + u("/etc/passwd") + b"b" + STOP
        else:
            payload = P4 + partial + b")R" + u("/etc/passwd") + b"b" + STOP
        result = analyze_pickle_bytes(payload)
        assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


def test_partial_keywords_planting_a_method_then_handed_to_a_call_are_reported() -> None:
    # SimpleNamespace(mean=partial(Tokenizer, path)) handed to numpy.mean, which calls x.mean()
    planted = call(g("functools.partial"), g(_TARGET), u("/etc/passwd"))
    partial = call(g("functools.partial"), g("types.SimpleNamespace"))
    partial += tup(g("types.SimpleNamespace"), b")", b"}" + u("mean") + planted + b"s", b"N") + b"b"
    result = analyze_pickle_bytes(P4 + call(g("numpy.mean"), partial + b")R") + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


def test_set_obj_state_with_an_ordereddict_is_judged() -> None:
    payload = call(g("torch._utils._set_obj_state"), _OBJ, call(g("collections.OrderedDict")) + _PLANT + b"s")
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


class _OrderedState:
    """A class whose state is an OrderedDict of plain attributes (its pickle: BUILD of OrderedDict + SETITEMS)."""

    def __init__(self) -> None:
        self.a = 1
        self.b = [1, 2]

    def __getstate__(self) -> collections.OrderedDict[str, object]:
        return collections.OrderedDict(sorted(vars(self).items()))


def test_real_mapping_and_pair_states_stay_clean() -> None:
    torch = pytest.importorskip("torch")
    numpy = pytest.importorskip("numpy")
    objects: list[object] = [
        torch.nn.Sequential(
            collections.OrderedDict([("fc", torch.nn.Linear(2, 2)), ("act", torch.nn.ReLU())])
        ),
        collections.OrderedDict((f"w{i}", torch.zeros(2)) for i in range(20)),
        collections.defaultdict(list, {"a": [1]}),
        collections.Counter("abracadabra"),
        argparse.Namespace(lr=0.1, betas=(0.9, 0.99), names=["a", "b"]),
        numpy.zeros((3, 2)),
        {numpy.dtype("f4"): "float", torch.device("cpu"): "cpu", (1, 2): torch.zeros(1)},
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))
    # a state of more than 10,000 plain attributes, and one keyed by objects that are never strings
    big = b"}(" + _FILLER + u("last") + b"K\x01u"
    keyed = b"}(" + call(g("torch.device"), u("cpu")) + call(g("torch.Size"), b")") + b"u"
    for state in (big, keyed):
        clean(analyze_pickle_bytes(P4 + _OBJ + state + b"b" + STOP))
    allowed = analyze_pickle_bytes(pickle.dumps(_OrderedState(), protocol=4))
    assert {f.rule_id for f in allowed.findings} == {"LW-MODEL-006"}, allowed  # the test's own class only


# --- an instance with a planted method deep inside what a numpy function is handed ------------------------------
# numpy's ufuncs call the method of their name on every element of an object array: the one they are given, or the
# one they make of a (nested) list. The planted instance was looked for among the first 16 items of a list argument
# only, so np.exp([[x]]), np.exp([Decimal(1)] * 17 + [x]) and np.exp(<object array holding x>) ran x.exp(), a
# partial of a class the allow-list admits for rebuilding only (confirmed: the planted callable was called).

_PLANTED = (
    g("types.SimpleNamespace")
    + b")\x81}"
    + u("exp")
    + call(g("functools.partial"), g(_TARGET), u("/x"))
    + b"sb"
)
_DECIMAL = call(g("decimal.Decimal"), u("1"))


def _object_array(*items: bytes) -> bytes:
    dtype = call(g("numpy.dtype"), u("O8"), b"\x89", b"\x88")
    header = call(g("numpy.core.multiarray._reconstruct"), g("numpy.ndarray"), b"(K\x00t", b"C\x01b")
    return (
        header
        + tup(
            b"K\x01", b"(" + b"K" + bytes([len(items)]) + b"t", dtype, b"\x89", b"](" + b"".join(items) + b"e"
        )
        + b"b"
    )


@pytest.mark.parametrize(
    "argument",
    [
        b"](" + _DECIMAL * 17 + _PLANTED + b"e",
        b"]]" + _PLANTED + b"aa",
        b"(]" + _PLANTED + b"a" + _DECIMAL + b"t",
        _object_array(_DECIMAL, _PLANTED),
        b"]" + _object_array(_PLANTED) + b"a",
    ],
    ids=["list-past-16", "nested-list", "list-in-tuple", "object-array", "object-array-in-list"],
)
@pytest.mark.parametrize("func", ["numpy.exp", "numpy.sqrt", "numpy.log"])
def test_planted_instance_inside_what_a_numpy_ufunc_is_handed_is_critical(argument: bytes, func: str) -> None:
    result = analyze_pickle_bytes(P4 + call(g(func), argument) + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result
    assert f"{func}:exp" in subjects(result)


def test_planted_instances_inside_arrays_that_only_hold_them_stay_unreported() -> None:
    # an object array of objects that keep a function (FunctionTransformer(func=np.log1p)), built and kept, or
    # handed to pandas: nothing calls a method of its elements
    keeper = g("types.SimpleNamespace") + b")\x81}" + u("func") + g("numpy.log1p") + b"sb"
    array = _object_array(keeper, keeper)
    for payload in (array, call(g("pandas.core.internals.blocks.new_block"), array, b"N", b"K\x02")):
        result = analyze_pickle_bytes(P4 + payload + STOP)
        assert not any(f.rule_id == "LW-MODEL-016" for f in result.findings), result


@pytest.mark.parametrize(
    "mapping",
    [b"}" + _PLANT + b"s", call(g("collections.OrderedDict")) + _PLANT + b"s", b"]" + tup(_PLANT) + b"a"],
    ids=["dict", "ordereddict", "pairs"],
)
def test_simple_namespace_of_a_mapping_setting_special_attributes_is_critical(mapping: bytes) -> None:
    # SimpleNamespace(mapping) (Python 3.13+) makes the mapping's items attributes, as a BUILD state does
    result = analyze_pickle_bytes(_then_build(call(g("types.SimpleNamespace"), mapping), b"N"))
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


def test_simple_namespace_of_a_mapping_planting_a_method_then_handed_is_critical() -> None:
    # REDUCE took SimpleNamespace as a plain call, so the attributes its mapping planted were never recorded
    planted = call(g("functools.partial"), g(_TARGET), u("/etc/passwd"))
    namespace = call(g("types.SimpleNamespace"), b"}" + u("mean") + planted + b"s")
    result = analyze_pickle_bytes(P4 + call(g("numpy.mean"), namespace) + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


def test_real_simple_namespaces_stay_clean() -> None:
    import types

    for protocol in (2, 4):
        clean(analyze_pickle_bytes(pickle.dumps(types.SimpleNamespace(a=1, b=[2], c="x"), protocol=protocol)))
    clean(analyze_pickle_bytes(P4 + call(g("types.SimpleNamespace"), b"}" + u("lr") + b"K\x01s") + STOP))
