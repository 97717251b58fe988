"""Regressions from the dynamic audit of the allow-list: every callable the default allow-list admits was called
the way a pickle can (REDUCE, NEWOBJ + BUILD, BUILD on a call's result) with adversarial arguments, under an audit
hook. One section per class of effect found, each with its variants and the benign files it must keep clean.

Every payload is assembled here from opcodes; nothing is ever unpickled.
"""

from __future__ import annotations

import argparse
import pickle
import struct
import types

import pytest
from test_redteam_pickle import P4, STOP, call, clean, g, tup, u

from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.domain import Severity


def sdict(**items: bytes) -> bytes:
    return b"}(" + b"".join(u(k) + v for k, v in items.items()) + b"u"


def i32(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def rules(result: PickleResult) -> set[tuple[str, Severity]]:
    return {(f.rule_id, f.severity) for f in result.findings}


# --- an allowed callable calls a method of its argument, and the argument's state planted that method -------
# numpy's clip/mean/sum/round ... call x.clip()/x.mean() ... on anything that is not an ndarray, dict(x) calls
# x.keys(), dateutil's tzoffset(name, x) x.total_seconds(), uuid.UUID(x) x.replace(), torch's F.sigmoid(x)
# x.sigmoid() and _rebuild_parameter(x, ...) x.detach(). An instance attribute is found before the class's method,
# so a BUILD state that stores a callable under that name has it called: a functools.partial of a class the
# allow-list admits for rebuilding only runs its constructor on a path of the file's choosing (confirmed with
# the real libraries: tokenizers' BertWordPieceTokenizer reads the vocabulary file the partial names).

_PATTERN_CLASS = "tokenizers.implementations.bert_wordpiece.BertWordPieceTokenizer"
_PARTIAL = call(g("functools.partial"), g(_PATTERN_CLASS), u("/home/user/.ssh/id_rsa"))
_PLANTS = {
    "partial": _PARTIAL,
    "pattern-class": g("transformers.models.bert.tokenization_bert.BertTokenizer"),
    "attrgetter": call(g("operator.attrgetter"), u("x")),
    # a callable object: numpy.vectorize calls the function it keeps
    "vectorize": call(g("numpy.vectorize"), _PARTIAL),
}


def _ns(key: str, value: bytes, cls: str = "types.SimpleNamespace") -> bytes:
    """NEWOBJ of ``cls`` and a BUILD state that stores ``value`` as its attribute ``key``."""
    return g(cls) + b")\x81" + sdict(**{key: value}) + b"b"


_HANDED = {
    "numpy.clip": ("clip", lambda obj: call(g("numpy.clip"), obj, u("/etc/passwd"), b"N")),
    "numpy.mean": ("mean", lambda obj: call(g("numpy.mean"), obj)),
    "numpy.sum": ("sum", lambda obj: call(g("numpy.sum"), obj)),
    "numpy.around": ("round", lambda obj: call(g("numpy.around"), obj)),
    "numpy.cumsum": ("cumsum", lambda obj: call(g("numpy.cumsum"), obj)),
    # ufuncs over an object array call the element's method of the ufunc's name
    "numpy.exp": ("exp", lambda obj: call(g("numpy.exp"), obj)),
    "numpy.log1p": ("log1p", lambda obj: call(g("numpy.log1p"), obj)),
    "numpy.acos": ("arccos", lambda obj: call(g("numpy.acos"), obj)),
    "torch.F.softmax": ("softmax", lambda obj: call(g("torch.nn.functional.softmax"), obj, b"K\x00")),
    "builtins.dict": ("keys", lambda obj: call(g("builtins.dict"), obj)),
    "collections.OrderedDict": ("keys", lambda obj: call(g("collections.OrderedDict"), obj)),
    "uuid.UUID": ("replace", lambda obj: call(g("uuid.UUID"), obj)),
    "dateutil.tzoffset": ("total_seconds", lambda obj: call(g("dateutil.tz.tz.tzoffset"), b"N", obj)),
    "torch.F.sigmoid": ("sigmoid", lambda obj: call(g("torch.nn.functional.sigmoid"), obj)),
    "torch._rebuild_parameter": (
        "detach",
        lambda obj: call(
            g("torch._utils._rebuild_parameter"), obj, b"\x89", call(g("collections.OrderedDict"))
        ),
    ),
    # inside a tuple or list argument (torch and pyarrow look through sequences)
    "in-a-list": ("mean", lambda obj: call(g("numpy.mean"), b"]" + obj + b"a")),
}


@pytest.mark.parametrize("plant", _PLANTS.values(), ids=_PLANTS.keys())
@pytest.mark.parametrize("case", _HANDED.values(), ids=_HANDED.keys())
def test_object_with_a_planted_method_handed_to_an_allowed_call_is_critical(
    case: tuple[str, object], plant: bytes
) -> None:
    key, make = case
    assert callable(make)
    result = analyze_pickle_bytes(P4 + make(_ns(key, plant)) + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


@pytest.mark.parametrize(
    "obj",
    [
        # the state as (dict, slot state) and as slot state only
        g("types.SimpleNamespace") + b")\x81" + tup(b"N", sdict(clip=_PARTIAL)) + b"b",
        g("argparse.Namespace") + b")\x81" + tup(sdict(clip=_PARTIAL), b"N") + b"b",
        # an instance of a class the patterns admit, rebuilt as pickle writes it
        _ns("clip", _PARTIAL, "sklearn.preprocessing._data.StandardScaler"),
        # torch's _set_obj_state(obj, state) sets the attributes
        call(
            g("torch._utils._set_obj_state"),
            g("types.SimpleNamespace") + b")\x81",
            sdict(clip=_PARTIAL),
        ),
        # the state BUILT first, stored in the memo, fetched later
        _ns("clip", _PARTIAL) + b"\x94" + b"0" + b"h\x00",
    ],
    ids=["slot-state", "dict-and-slots", "pattern-instance", "set_obj_state", "memo"],
)
def test_planted_method_variants_are_critical(obj: bytes) -> None:
    result = analyze_pickle_bytes(P4 + call(g("numpy.clip"), obj, u("/etc/passwd"), b"N") + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


def test_planted_callable_under_another_name_handed_to_a_call_is_reported() -> None:
    # not a method the audit saw called, but the callee may look it up: still not clean
    result = analyze_pickle_bytes(P4 + call(g("numpy.mean"), _ns("my_hook", _PARTIAL)) + STOP)
    assert ("LW-MODEL-016", Severity.HIGH) in rules(result), result


def test_planted_callable_that_is_never_handed_to_a_call_stays_clean() -> None:
    # estimators keep callables as parameters (FunctionTransformer(func=np.log1p)): stored, not called at load
    clean(analyze_pickle_bytes(P4 + _ns("func", g("numpy.log1p")) + STOP))
    clean(analyze_pickle_bytes(P4 + b"]" + _ns("tokenizer", g("builtins.str.split")) + b"a" + STOP))


def test_constant_state_under_method_names_handed_to_a_call_stays_clean() -> None:
    state = sdict(mean=b"G" + struct.pack(">d", 0.5), keys=u("a,b"), clip=b"N")
    obj = g("types.SimpleNamespace") + b")\x81" + state + b"b"
    clean(analyze_pickle_bytes(P4 + call(g("numpy.mean"), obj) + STOP))


def test_real_objects_with_callable_parameters_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    text = pytest.importorskip("sklearn.feature_extraction.text")
    pd = pytest.importorskip("pandas")
    objects = [
        preprocessing.FunctionTransformer(func=np.log1p, inverse_func=np.expm1).fit(np.ones((2, 2))),
        text.TfidfVectorizer(tokenizer=str.split, preprocessor=str.lower),
        types.SimpleNamespace(f=np.sqrt, n=1),
        argparse.Namespace(act=np.tanh),
        np.array([preprocessing.FunctionTransformer(func=np.log1p)], dtype=object),
        pd.DataFrame({"a": [1.0, 2.0], "b": pd.date_range("2026-01-01", periods=2, tz="UTC")}),
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


# --- protocols looked up on the instance ----------------------------------------------------------------------
# numpy (__array__, __array_interface__, __array_struct__), torch (__torch_function__) and pyarrow
# (__arrow_c_array__/__arrow_c_stream__/__arrow_c_schema__) look these up on the object itself. A callable there
# is called by any allowed function the object reaches (np.percentile, torch.sigmoid, pyarrow.chunked_array), and
# an __array_interface__ dict makes numpy view (and write) memory at an address the file chose: loading such a
# pickle with np.percentile over it crashed at the chosen address (confirmed).

_IFACE = sdict(shape=tup(i32(64)), typestr=u("|u1"), data=tup(i32(4096), b"\x89"), version=i32(3))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("__array__", _PARTIAL),
        ("__array_interface__", _IFACE),
        ("__array_struct__", i32(4096)),
        ("__array_ufunc__", _PARTIAL),
        ("__array_function__", _PARTIAL),
        ("__torch_function__", _PARTIAL),
        ("__torch_dispatch__", _PARTIAL),
        ("__arrow_c_stream__", _PARTIAL),
        ("__arrow_c_array__", _PARTIAL),
        ("__arrow_array__", _PARTIAL),
        ("__dlpack__", _PARTIAL),
        ("__fspath__", _PARTIAL),
        ("__deepcopy__", _PARTIAL),
        ("__copy__", _PARTIAL),
    ],
)
@pytest.mark.parametrize("handed", [True, False], ids=["handed", "kept"])
def test_state_planting_an_instance_protocol_is_critical(key: str, value: bytes, handed: bool) -> None:
    obj = _ns(key, value)
    payload = call(g("numpy.percentile"), obj, i32(50)) if handed else obj
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result
    assert key in {str(f.evidence.get("subject")) for f in result.findings}


# --- an extension class whose __new__ is its constructor, built by NEWOBJ with arguments -------------------------
# The name patterns admit classes for rebuilding without their constructor (NEWOBJ + BUILD). For tokenizers'
# Rust classes __new__ is the constructor: BPE.__new__(cls, vocab, merges), WordPiece.__new__(cls, vocab) and
# WordLevel.__new__(cls, vocab) read the files the strings name (confirmed: pickle.loads of NEWOBJ WordPiece with
# a path returned a model whose vocabulary was that file). Found by calling every native __new__ the allow-list
# admits with path arguments under strace (no other class opened a file); tokenizers pickles its objects with no
# arguments (a Tokenizer with its model instance).

_PATH = u("/home/user/.aws/credentials")


@pytest.mark.parametrize(
    "payload",
    [
        g("tokenizers.models.BPE") + tup(_PATH, _PATH) + b"\x81",
        g("tokenizers.models.WordPiece") + tup(_PATH) + b"\x81",
        g("tokenizers.models.WordLevel") + tup(_PATH) + b"\x81",
        # re-exported under tokenizers.implementations
        g("tokenizers.implementations.byte_level_bpe.BPE") + tup(_PATH, _PATH) + b"\x81",
        g("tokenizers.implementations.bert_wordpiece.WordPiece") + tup(_PATH) + b"\x81",
        # NEWOBJ_EX with keywords only
        g("tokenizers.models.WordLevel") + b")" + sdict(vocab=_PATH) + b"\x92",
        # copyreg's NEWOBJ helpers
        call(g("copyreg.__newobj__"), g("tokenizers.models.WordPiece"), _PATH),
        call(g("copyreg.__newobj_ex__"), g("tokenizers.models.BPE"), tup(_PATH, _PATH), b"}"),
        # the model of a Tokenizer
        g("tokenizers.Tokenizer") + tup(g("tokenizers.models.BPE") + tup(_PATH, _PATH) + b"\x81") + b"\x81",
    ],
    ids=[
        "bpe",
        "wordpiece",
        "wordlevel",
        "bpe-alias",
        "wordpiece-alias",
        "newobj-ex",
        "newobj",
        "newobj-ex-fn",
        "in-tokenizer",
    ],
)
def test_tokenizers_model_built_with_a_path_is_a_file_read(payload: bytes) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert ("LW-MODEL-004", Severity.HIGH) in rules(result), result


def test_real_tokenizers_objects_stay_clean() -> None:
    tokenizers = pytest.importorskip("tokenizers")
    models = pytest.importorskip("tokenizers.models")
    normalizers = pytest.importorskip("tokenizers.normalizers")
    pre = pytest.importorskip("tokenizers.pre_tokenizers")
    vocab = {"[UNK]": 0, "a": 1, "b": 2, "ab": 3}
    tok = tokenizers.Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b")], unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre.Whitespace()
    objects = [
        tok,
        models.WordPiece(vocab=vocab, unk_token="[UNK]"),
        models.WordLevel(vocab=vocab, unk_token="[UNK]"),
        models.Unigram(),
        tokenizers.AddedToken("[MASK]", special=True),
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


# --- a reconstructor that builds the class it is handed through its constructor --------------------------------
# pandas' _new_Index(cls, d), _new_DatetimeIndex, _new_TimedeltaIndex, _new_PeriodIndex and _new_IntervalIndex run
# cls.__new__(cls, **d), cls._simple_new(data, **d) or cls.from_arrays(**d) for whatever class they are handed;
# numpy's _mareconstruct(subtype, ...) runs subtype.__new__(subtype, data, mask=..., dtype=...). A class the
# allow-list admits for rebuilding only had its constructor run on the pickle's keywords (confirmed:
# _new_DatetimeIndex(tokenizers.models.WordLevel, {'vocab': path, ...}) returned a model read from that file).

_WORDLEVEL = g("tokenizers.models.WordLevel")
_KW = sdict(vocab=_PATH, unk_token=u("a"))


@pytest.mark.parametrize(
    "payload",
    [
        call(g("pandas.core.indexes.datetimes._new_DatetimeIndex"), _WORDLEVEL, _KW),
        call(g("pandas.core.indexes.base._new_Index"), _WORDLEVEL, _KW),
        call(g("pandas.core.indexes.timedeltas._new_TimedeltaIndex"), _WORDLEVEL, _KW),
        call(g("pandas.core.indexes.period._new_PeriodIndex"), _WORDLEVEL, _KW),
        call(g("pandas.core.indexes.interval._new_IntervalIndex"), _WORDLEVEL, _KW),
        call(
            g("pandas.core.indexes.base._new_Index"), g("sklearn.linear_model._base.LinearRegression"), b"}"
        ),
        # a class computed at load time
        call(
            g("pandas.core.indexes.base._new_Index"),
            call(g("builtins.getattr"), g("pandas.Index"), u("x")),
            b"}",
        ),
        call(
            g("numpy.ma.core._mareconstruct"),
            _WORDLEVEL,
            g("numpy.ndarray"),
            tup(b"K\x00"),
            u("b"),
        ),
    ],
    ids=[
        "datetime",
        "index",
        "timedelta",
        "period",
        "interval",
        "sklearn-class",
        "computed",
        "mareconstruct",
    ],
)
def test_reconstructor_handed_a_foreign_class_is_reported(payload: bytes) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert ("LW-MODEL-005", Severity.HIGH) in rules(result), result


def test_real_pandas_indexes_and_masked_arrays_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    objects = [
        pd.Index([1, 2]),
        pd.Index(["a", "b"], name="n"),
        pd.RangeIndex(3),
        pd.DatetimeIndex(["2026-01-01", "2026-01-02"], tz="UTC", freq="D"),
        pd.timedelta_range("1D", periods=2),
        pd.period_range("2026-01", periods=2, freq="M"),
        pd.interval_range(0, 3),
        pd.MultiIndex.from_tuples([(1, "a"), (2, "b")]),
        pd.CategoricalIndex(["a", "b"]),
        pd.DataFrame({"x": [1.0, 2.0]}, index=pd.date_range("2026-01-01", periods=2)),
        np.ma.masked_array([1.0, 2.0], mask=[False, True]),
        np.ma.masked,
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


# --- a metaclass under a class pattern ---------------------------------------------------------------------------
# NEWOBJ of a metaclass is type.__new__(meta, name, bases, namespace): a class made at load, running its bases'
# __init_subclass__ (with NEWOBJ_EX keywords) and the namespace's __set_name__. accelerate's EnumWithContains (an
# EnumMeta), pandas' OffsetMeta and CategoricalDtypeType and transformers' _BCCacheNameMeta matched the class
# patterns; pickle writes classes by reference and never instantiates their metaclass.


@pytest.mark.parametrize(
    "meta",
    [
        "accelerate.utils.dataclasses.EnumWithContains",
        "pandas._libs.tslibs.offsets.OffsetMeta",
        "pandas.core.dtypes.dtypes.CategoricalDtypeType",
        "transformers.utils.generic._BCCacheNameMeta",
    ],
)
def test_metaclass_under_a_class_pattern_is_not_allowed(meta: str) -> None:
    payload = g(meta) + tup(u("X"), tup(g("sklearn.linear_model._base.LinearRegression")), b"}") + b"\x81"
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert ("LW-MODEL-005", Severity.HIGH) in rules(result), result
    assert any("metaclass" in f.message for f in result.findings)


def test_real_categorical_and_offsets_stay_clean() -> None:
    pd = pytest.importorskip("pandas")
    objects = [
        pd.Categorical(["a", "b", "a"]),
        pd.CategoricalDtype(["x", "y"], ordered=True),
        pd.Series(["a", "b"], dtype="category"),
        pd.offsets.MonthEnd(2),
        pd.date_range("2026-01-01", periods=3, freq="W"),
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


# --- the unpickler itself calls a method a state planted -----------------------------------------------------------
# APPENDS calls obj.extend(items) (else obj.append per item), APPEND obj.append(item), ADDITEMS obj.add(item), all
# looked up on the object: a BUILD state that stored a callable as the instance attribute extend had it called
# with the pickle's items (confirmed with pickle.loads: a planted builtins.print printed the list). The Python
# unpickler (joblib's) also calls state.items() on a BUILD state that is not a dict.


@pytest.mark.parametrize(
    ("key", "tail"),
    [
        ("extend", b"(" + _PATH + b"e"),
        ("append", _PATH + b"a"),
        ("add", b"(" + _PATH + b"\x90"),
    ],
)
@pytest.mark.parametrize("plant", _PLANTS.values(), ids=_PLANTS.keys())
def test_item_opcodes_calling_a_planted_method_are_critical(key: str, tail: bytes, plant: bytes) -> None:
    result = analyze_pickle_bytes(P4 + _ns(key, plant) + tail + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


@pytest.mark.parametrize(
    ("cls", "state"),
    [
        ("types.SimpleNamespace", _ns("items", _PARTIAL)),
        ("types.SimpleNamespace", tup(b"N", _ns("items", _PARTIAL))),
        ("types.SimpleNamespace", tup(_ns("items", _PARTIAL), b"N")),
        # sklearn's BaseEstimator.__setstate__(state) calls state.pop("_sklearn_version", ...) on any state
        ("sklearn.linear_model._base.LinearRegression", _ns("pop", _PARTIAL)),
        ("sklearn.isotonic.IsotonicRegression", _ns("get", _PARTIAL)),
    ],
    ids=["state", "slot-state", "dict-state", "sklearn-pop", "sklearn-get"],
)
def test_build_state_that_is_an_instance_with_planted_methods_is_critical(cls: str, state: bytes) -> None:
    result = analyze_pickle_bytes(P4 + g(cls) + b")\x81" + state + b"b" + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result


def test_list_and_set_fills_of_real_objects_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    objects = [
        [preprocessing.FunctionTransformer(func=np.log1p), types.SimpleNamespace(f=np.sqrt)],
        {1, 2, 3},
        [np.float64(1.0)] * 3,
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


# --- a pyarrow type rebuilt without its constructor ------------------------------------------------------------
# pandas' ArrowPeriodType and ArrowIntervalType (pyarrow ExtensionType subclasses) matched the class patterns.
# NEWOBJ leaves their C++ type unset, and hashing one dereferences NULL: a dict with one as its key crashed
# pickle.loads (SIGSEGV, confirmed). pandas pickles them through __arrow_ext_deserialize__, never by NEWOBJ.


@pytest.mark.parametrize("name", ["ArrowPeriodType", "ArrowIntervalType"])
def test_pyarrow_type_rebuilt_as_a_dict_key_is_reported(name: str) -> None:
    cls = g(f"pandas.core.arrays.arrow.extension_types.{name}")
    result = analyze_pickle_bytes(P4 + b"}" + cls + b")\x81" + i32(1) + b"s" + STOP)
    assert ("LW-MODEL-005", Severity.HIGH) in rules(result), result
