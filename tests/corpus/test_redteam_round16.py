"""Round 16: the peers' newest advisories, and the allow-list itself as an attack surface.

Payloads are built here (as opcodes, or with the real library and then altered) and scanned; where a test says so
it also runs the real loader in a child process with a harmless effect (an audit hook records the files it opens, or
the child dies of SIGSEGV). Misses found this round, each reported clean before:

* the enum functional API: ``enum.Enum`` and the enums the reference list admits as callable (``*``: a pickle writes
  an enum member as ``cls(value)``) were called with any arguments. ``cls(name, names)`` on a class without members
  (``enum.Enum``, transformers' ``ExplicitEnum``) creates a new enum class whose ``__init__``/``__new__`` are
  callables named by the pickle, run on each member's value while the class is made: a class the allow-list admits
  for rebuilding only is constructed on pickle data (a tokenizer reads a file outside the model folder).
* numpy random states: MT19937's ``pos`` and Philox's ``buffer_pos`` are stored unchecked by the state setters and
  index the key or buffer at the first draw (SIGSEGV).
* SciPy interpolators unpickled by a ``__dict__`` update: a ``RegularGridInterpolator`` whose values do not match its
  grid, an ``NdBSpline`` whose counts or box offsets disagree with its degrees (SIGSEGV on the first call).
* scikit-learn's ``HashingVectorizer`` with ``n_features`` below 1: round 15 checked ``FeatureHasher`` only, and the
  vectorizer's transform builds one from its own value (SIGFPE).
* scikit-learn's ``DictVectorizer`` whose ``vocabulary_`` maps a feature to a column outside the vocabulary: transform
  builds an unchecked sparse array from it and densifies it (SIGSEGV).
* scikit-learn's ``OneHotEncoder`` whose output counts, infrequent mappings or dropped categories put a feature's
  column outside its count: the same unchecked sparse array (heap corruption).
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from test_pickle_bypasses import (
    BUILD,
    CODE,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_TUPLE,
    MARK,
    MEMOIZE,
    NONE,
    PAYLOAD,
    POP,
    REDUCE,
    STACK_GLOBAL,
    STOP,
    TUPLE,
    args,
    assert_caught,
    binint1,
    call,
    get,
    proto,
    reduce_of,
    scan,
    sglob,
    u,
)
from test_redteam_round15 import _rule_ids, assert_code_execution

from loopwarden.checks.models.pickle_vm import PickleResult
from loopwarden.domain import Severity

LIST = b"l"
OBJ = b"o"
SETITEMS = b"u"


# --------------------------------------------------------- picklescan 0.0.33 (PR #53): GHSA-x843-g5mx-g377

# GHSA-x843-g5mx-g377 is one of the advisories picklescan fixed in 0.0.33 (commit 70c1c6c, "Fix various
# vulnerabilities", https://github.com/mmaitre314/picklescan/pull/53). The commit names six advisories of that fix;
# x843 is listed with the same fix commit in public advisory-to-fix data without its own text. Each technique of that
# fix is here, whichever of them x843 is: operator's itemgetter and methodcaller, ctypes, distutils.file_util,
# pty, pydoc's resolvers, numpy.f2py, and a submodule of a blocked package.
_PICKLESCAN_0_0_33 = [
    ("operator", "methodcaller", (u("system"), PAYLOAD)),
    ("operator", "itemgetter", (u("system"),)),
    ("ctypes", "CDLL", (u("libc.so.6"),)),
    ("distutils.file_util", "write_file", (u("x.env"), MARK + u("x") + LIST)),
    ("pty", "spawn", (PAYLOAD,)),
    ("pydoc", "locate", (u("os.system"),)),
    ("numpy.f2py.crackfortran", "getlincoef", (CODE, EMPTY_DICT)),
    ("numpy.f2py.diagnose", "run", ()),
    ("asyncio.unix_events", "_UnixSelectorEventLoop", ()),
]


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"), _PICKLESCAN_0_0_33, ids=[f"{m}.{n}" for m, n, _ in _PICKLESCAN_0_0_33]
)
def test_picklescan_ghsa_x843_g5mx_g377_0_0_33_gadgets(
    module: str, name: str, arg_ops: tuple[bytes, ...]
) -> None:
    """Every gadget class of picklescan's 0.0.33 fix (GHSA-x843-g5mx-g377 among its advisories) is caught."""
    for stack_global in (True, False):
        result = scan(call(module, name, *arg_ops, stack_global=stack_global))
        assert_caught(result, f"{module}.{name}")


# ----------------------------------------------- public proofs of concept against picklescan 1.0.x / modelscan 0.8.8

# Published on the Hugging Face Hub in 2026 as huntr Model File Vulnerability reports, each reported clean by
# picklescan and modelscan; rebuilt here from their descriptions. All were caught when this round started; the tests
# keep them so.
EXT1 = b"\x82"
_HUB_POCS = {
    # hacnho/dbm-dumb-scanner-bypass-poc: dbm.dumb.open + _Database.__setitem__ write a file at load
    "dbm-dumb-open": call("dbm.dumb", "open", u("marker"), u("c")),
    # hacnho/model-format-bypass-pickle-ext-copyreg: copyreg.add_extension registers os.system, EXT1 fetches it
    "copyreg-add-extension-ext1": proto(4)
    + reduce_of("copyreg", "add_extension", u("os"), u("system"), binint1(200))
    + POP
    + EXT1
    + bytes([200])
    + args(PAYLOAD)
    + REDUCE
    + STOP,
    # xry6/huntr-picklescan-bypass-poc, wulonchia/modelscan-bypass-poc: importlib.import_module + getattr_static
    "getattr-static-import-module": proto(4)
    + sglob("inspect", "getattr_static")
    + MARK
    + reduce_of("importlib", "import_module", u("os"))
    + u("system")
    + TUPLE
    + REDUCE
    + args(PAYLOAD)
    + REDUCE
    + STOP,
    # th3-j0k3r/picklescan-posixsubprocess-bypass, .../picklescan-bootsubprocess-bypass
    "posixsubprocess-fork-exec": call("_posixsubprocess", "fork_exec", PAYLOAD),
    "bootsubprocess-check-output": call("_bootsubprocess", "check_output", PAYLOAD),
    # manja316/modelscan-bypass-*: codecs.open, gzip.open, site.addpackage, gettext.install, pipes.Template
    "codecs-open": call("codecs", "open", u("/etc/passwd")),
    "gzip-open": call("gzip", "open", u("marker"), u("wb")),
    "site-addpackage": call("site", "addpackage", u("."), u("x.pth"), NONE),
    "gettext-install": call("gettext", "install", u("x")),
    "pipes-template": call("pipes", "Template"),
    # askeladd-k/modelscan-additional-primitives: atexit.register, threading.Thread
    "atexit-register": call("atexit", "register", sglob("os", "system"), PAYLOAD),
    "threading-thread": call("threading", "Thread"),
    # MomoFan/joblib-modelscan-bypass-poc: logging.config.fileConfig, code.compile_command, xmlrpc ServerProxy
    "logging-fileconfig": call("logging.config", "fileConfig", u("x.ini")),
    "code-compile-command": call("code", "compile_command", CODE),
    "xmlrpc-serverproxy": call("xmlrpc.client", "ServerProxy", u("http://127.0.0.1:1/")),
    # TESTforge42/scanner-bypass-memo-desync, celvexgroup/modelscan-memo-poison-poc: MEMOIZE after a POP stores the
    # string below it; a scanner that memoizes the previous opcode's argument reads None there
    "memo-after-pop": proto(4)
    + u("os")
    + NONE
    + POP
    + MEMOIZE
    + u("system")
    + NONE
    + POP
    + MEMOIZE
    + get(0)
    + get(1)
    + STACK_GLOBAL
    + args(PAYLOAD)
    + REDUCE
    + STOP,
}


@pytest.mark.parametrize("data", list(_HUB_POCS.values()), ids=list(_HUB_POCS))
def test_public_hub_pocs_against_picklescan_and_modelscan(data: bytes) -> None:
    """Each public proof of concept is reported at least HIGH."""
    assert_caught(scan(data))


# ------------------------------------------------------------------------------- the enum functional API


def _enum_functional(
    enum_module: str, enum_name: str, hook: bytes, value: bytes, *, op: bytes = REDUCE
) -> bytes:
    """``EnumClass("E", [("__init__", hook), ("A", value)])``: a new enum class whose ``__init__`` is ``hook``, so
    that making member ``A`` runs ``hook(value)`` (a class or C function; a Python function gets the member too)."""
    names = MARK + MARK + u("__init__") + hook + TUPLE + MARK + u("A") + value + TUPLE + LIST
    if op == OBJ:
        return proto(4) + MARK + sglob(enum_module, enum_name) + u("E") + names + OBJ + STOP
    return proto(4) + sglob(enum_module, enum_name) + MARK + u("E") + names + TUPLE + op + STOP


_ENUMS = [
    ("enum", "Enum"),
    ("transformers.utils.generic", "ExplicitEnum"),
    ("transformers.generation.configuration_utils", "ExplicitEnum"),
    ("transformers.debug_utils", "ExplicitEnum"),
]
# Classes the allow-list admits by name pattern for rebuilding only (NEWOBJ + BUILD), never called: their
# constructors are not what a pickle may run. VitsTokenizer(vocab_file) reads the file it is given.
_REBUILD_ONLY = [
    ("transformers.models.vits.tokenization_vits", "VitsTokenizer"),
    ("sklearn.linear_model._base", "LinearRegression"),
    ("torch.nn.modules.linear", "Linear"),
]


@pytest.mark.parametrize(("enum_module", "enum_name"), _ENUMS, ids=[f"{m}.{n}" for m, n in _ENUMS])
@pytest.mark.parametrize(("module", "name"), _REBUILD_ONLY, ids=[n for _, n in _REBUILD_ONLY])
def test_enum_functional_api_runs_a_rebuild_only_constructor(
    enum_module: str, enum_name: str, module: str, name: str
) -> None:
    """An allowed enum class without members called as ``cls(name, names)`` creates a class whose hooks come from the
    pickle; each call form (REDUCE, OBJ) is reported as code execution (was: clean)."""
    for op in (REDUCE, OBJ):
        data = _enum_functional(enum_module, enum_name, sglob(module, name), u("vocab.json"), op=op)
        assert_code_execution(scan(data), f"{enum_module}.{enum_name}")


def test_enum_functional_api_through_partial() -> None:
    """``functools.partial(enum.Enum, "E")(names)``: the same call, its arguments split across the partial."""
    names = MARK + MARK + u("__init__") + sglob("sklearn.linear_model._base", "LinearRegression") + TUPLE
    names += MARK + u("A") + u("x") + TUPLE + LIST
    data = (
        proto(4)
        + reduce_of("functools", "partial", sglob("enum", "Enum"), u("E"))
        + args(names)
        + REDUCE
        + STOP
    )
    assert_code_execution(scan(data), "enum.Enum")


@pytest.mark.parametrize(
    ("enum_module", "enum_name", "value"),
    [
        ("enum", "Enum", u("x")),
        ("transformers.generation.configuration_utils", "GenerationMode", u("greedy_search")),
        ("torch.amp.grad_scaler", "OptState", b"K\x00"),
        ("re", "RegexFlag", b"K\x02"),
    ],
)
def test_enum_member_lookup_stays_clean(enum_module: str, enum_name: str, value: bytes) -> None:
    """How a pickle writes an enum member, ``cls(value)``, stays clean (no false positive on training_args.bin)."""
    result = scan(proto(4) + sglob(enum_module, enum_name) + args(value) + REDUCE + STOP)
    assert not result.findings, result


def test_enum_functional_api_real_loader_reads_a_file_outside(tmp_path: Path) -> None:
    """The real unpickler, in a child process, makes the enum and runs VitsTokenizer(path): an audit hook sees the
    file outside the model folder opened. The scan reports the pickle as code execution."""
    pytest.importorskip("transformers.models.vits.tokenization_vits")
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "vocab.json"
    secret.write_text(json.dumps({"<pad>": 0, "<unk>": 1, "secret": 2}), encoding="utf-8")
    model = tmp_path / "model"
    model.mkdir()
    data = _enum_functional(
        "transformers.utils.generic",
        "ExplicitEnum",
        sglob("transformers.models.vits.tokenization_vits", "VitsTokenizer"),
        u(str(secret)),
    )
    (model / "model.pkl").write_bytes(data)
    code = (
        "import pickle, sys\n"
        "seen = []\n"
        "sys.addaudithook(lambda ev, a: seen.append(str(a[0])) if ev == 'open' else None)\n"
        "with open(sys.argv[1], 'rb') as fh:\n"
        "    pickle.load(fh)\n"
        "print('OPENED' if sys.argv[2] in seen else 'NOT-OPENED')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(model / "model.pkl"), str(secret)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "OPENED" in done.stdout.split(), (done.stdout, done.stderr[-2000:])
    assert_code_execution(scan(data), "transformers.utils.generic.ExplicitEnum")


# ------------------------------------------------------------------- numpy random state: indexes the C code trusts


def _assert_killed_after_loading(tmp_path: Path, data: bytes, use: str, timeout: int = 120) -> None:
    """The real unpickler, in a child process, loads ``data`` whole, then ``use`` (of ``loaded``) kills the child
    by a signal. Out-of-bounds reads land in mapped memory now and then, so the child is run up to three times."""
    path = tmp_path / "loaded.pkl"
    path.write_bytes(data)
    code = (
        "import pickle, sys, numpy\n"
        "with open(sys.argv[1], 'rb') as fh:\n"
        "    loaded = pickle.load(fh)\n"
        "print('LOADED', flush=True)\n"
        f"{use}\n"
    )
    outcomes = []
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        outcomes.append((done.returncode, done.stdout[-200:], done.stderr[-300:]))
        if done.returncode < 0:
            break
    assert any(rc < 0 and "LOADED" in out for rc, out, _ in outcomes), outcomes


def _draw_in_child(data: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Load ``data`` with the real unpickler in a child process and draw one number from what it returns."""
    path = tmp_path / "rng.pkl"
    path.write_bytes(data)
    code = (
        "import pickle, sys\n"
        "with open(sys.argv[1], 'rb') as fh:\n"
        "    rng = pickle.load(fh)\n"
        "print('LOADED', flush=True)\n"
        "draw = getattr(rng, 'random', None) or getattr(rng, 'random_sample', None) or rng.random_raw\n"
        "print(draw())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120, check=False
    )


def _bad_mt19937_random_state(pos: int) -> bytes:
    np = pytest.importorskip("numpy")
    rs = np.random.RandomState(0)
    state = rs.get_state(legacy=False)
    state["state"]["pos"] = pos
    rs.set_state(state)  # numpy stores the index unchecked
    return pickle.dumps(rs, protocol=4)


def _bad_philox_generator(buffer_pos: int) -> bytes:
    np = pytest.importorskip("numpy")
    bits = np.random.Philox(0)
    state = bits.state
    state["buffer_pos"] = buffer_pos
    bits.state = state
    return pickle.dumps(np.random.Generator(bits), protocol=4)


def _assert_rng_index(result: PickleResult, name: str) -> None:
    assert "LW-MODEL-017" in _rule_ids(result), result
    assert any(f"{name} index" in f.message for f in result.findings), result
    assert max(f.severity for f in result.findings) >= Severity.HIGH, result


@pytest.mark.parametrize("pos", [10**9, 625, -1])
def test_random_state_mt19937_position_out_of_its_key(pos: int) -> None:
    """A pickled RandomState whose MT19937 ``pos`` lies outside its 624-word key (was: clean)."""
    _assert_rng_index(scan(_bad_mt19937_random_state(pos)), "MT19937")


@pytest.mark.parametrize("buffer_pos", [-(10**9), -1, 5])
def test_generator_philox_buffer_position_out_of_its_buffer(buffer_pos: int) -> None:
    """A pickled Generator whose Philox ``buffer_pos`` lies outside its 4-word buffer (was: clean)."""
    _assert_rng_index(scan(_bad_philox_generator(buffer_pos)), "Philox")


def test_random_state_legacy_tuple_and_set_obj_state_forms() -> None:
    """The legacy ``set_state`` tuple as BUILD state, an MT19937 made by NEWOBJ and given its state by BUILD, and
    ``torch._utils._set_obj_state`` setting a bit generator's ``state`` property reach the same setter."""
    key = MARK + b"".join(binint1(i % 200) for i in range(624)) + LIST
    legacy = proto(4) + reduce_of("numpy.random._pickle", "__randomstate_ctor", u("MT19937"))
    legacy += (
        MARK + u("MT19937") + key + b"J" + struct.pack("<i", 10**9) + binint1(0) + b"G" + bytes(8) + TUPLE
    )
    _assert_rng_index(scan(legacy + BUILD + STOP), "MT19937")

    inner = EMPTY_DICT + MARK + u("key") + key + u("pos") + b"J" + struct.pack("<i", 10**9) + SETITEMS
    state = EMPTY_DICT + MARK + u("bit_generator") + u("MT19937") + u("state") + inner + SETITEMS
    bits = reduce_of("numpy.random._pickle", "__bit_generator_ctor", u("MT19937"))
    newobj = (
        proto(4) + sglob("numpy.random._mt19937", "MT19937") + EMPTY_TUPLE + b"\x81" + state + BUILD + STOP
    )
    _assert_rng_index(scan(newobj), "MT19937")

    attrs = EMPTY_DICT + u("state") + state + b"s"  # setattr(bits, "state", state)
    via_setattr = proto(4) + reduce_of("torch._utils", "_set_obj_state", bits, attrs) + STOP
    _assert_rng_index(scan(via_setattr), "MT19937")


def test_random_state_with_a_computed_index_is_unverified() -> None:
    """An index the scanner cannot read (here ``len([])``, itself reported) leaves the file unverified, with the
    reason."""
    inner = (
        EMPTY_DICT
        + MARK
        + u("key")
        + EMPTY_LIST
        + u("pos")
        + reduce_of("builtins", "len", EMPTY_LIST)
        + SETITEMS
    )
    state = EMPTY_DICT + MARK + u("bit_generator") + u("MT19937") + u("state") + inner + SETITEMS
    data = (
        proto(4)
        + reduce_of("numpy.random._pickle", "__bit_generator_ctor", u("MT19937"))
        + state
        + BUILD
        + STOP
    )
    result = scan(data)
    assert result.unverified and "MT19937 state computed at load time" in str(result.unverified), result


def test_random_states_numpy_writes_stay_clean() -> None:
    """Every bit generator, RandomState and Generator as numpy pickles them, after draws, stays clean."""
    np = pytest.importorskip("numpy")
    objects = [np.random.RandomState(0), np.random.default_rng(1)]
    objects += [np.random.Generator(g(2)) for g in (np.random.MT19937, np.random.Philox, np.random.SFC64)]
    objects += [g(3) for g in (np.random.MT19937, np.random.Philox, np.random.PCG64, np.random.PCG64DXSM)]
    for obj in objects:
        for _ in range(3):
            (getattr(obj, "random", None) or getattr(obj, "random_sample", None) or obj.random_raw)()
        for protocol in (2, 4, 5):
            result = scan(pickle.dumps(obj, protocol=protocol))
            assert not result.findings and not result.unverified, (obj, protocol, result)


def test_random_state_real_loader_crashes_on_the_first_draw(tmp_path: Path) -> None:
    """The real unpickler loads both states; the first number drawn kills the child (SIGSEGV). Out-of-bounds reads
    land in mapped memory now and then, so the confirmation is retried a few times."""
    for data in (_bad_mt19937_random_state(10**9), _bad_philox_generator(-(10**9))):
        outcomes = []
        for _ in range(3):
            done = _draw_in_child(data, tmp_path)
            outcomes.append((done.returncode, done.stdout[-200:]))
            if done.returncode < 0:
                break
        assert any(rc < 0 and "LOADED" in out for rc, out in outcomes), outcomes


# ------------------------------------------------------- SciPy interpolators unpickled by a __dict__ update


def _grid_interpolator(points: int, values_shape: tuple[int, int]) -> bytes:
    """A ``RegularGridInterpolator`` over a ``points`` x ``points`` grid whose values have ``values_shape``: its
    state as SciPy pickles it, with the arrays swapped after construction (unpickling runs no check)."""
    np = pytest.importorskip("numpy")
    interpolate = pytest.importorskip("scipy.interpolate")
    rgi = interpolate.RegularGridInterpolator((np.arange(3.0), np.arange(3.0)), np.ones((3, 3)))
    grid = np.arange(float(points))
    rgi._grid = (grid, grid)
    rgi._values = np.ones(values_shape)
    return pickle.dumps(rgi, protocol=4)


def test_grid_interpolator_values_smaller_than_its_grid() -> None:
    """Values of 2x2 over a 6x6 grid (was: clean): the 2-D linear path reads values[i, j] at every grid cell."""
    result = scan(_grid_interpolator(6, (2, 2)))
    assert "LW-MODEL-017" in _rule_ids(result), result
    assert any(f.evidence.get("subject") == "scipy.interpolate:grid" for f in result.findings), result


def test_grid_interpolators_scipy_writes_stay_clean() -> None:
    """Every method's interpolator as SciPy pickles it (a spline method keeps its NdBSpline) stays clean."""
    np = pytest.importorskip("numpy")
    interpolate = pytest.importorskip("scipy.interpolate")
    x = np.arange(6.0)
    for method in ("linear", "nearest", "slinear", "cubic", "pchip"):
        rgi = interpolate.RegularGridInterpolator((x, x + 1), np.outer(x, x), method=method)
        rgi([[1.5, 2.5]])
        for protocol in (2, 4, 5):
            result = scan(pickle.dumps(rgi, protocol=protocol))
            assert not result.findings and not result.unverified, (method, protocol, result)
    rgi = interpolate.RegularGridInterpolator((x[:4], x[:5], x[:3]), np.ones((4, 5, 3, 2)))
    assert not scan(pickle.dumps(rgi)).findings


def test_grid_interpolator_real_loader_crashes(tmp_path: Path) -> None:
    """The real unpickler loads a 4-million-point grid over 2x2 values; interpolating at the far corner reads about
    100 MB past the values (SIGSEGV in the child)."""
    data = _grid_interpolator(4_000_000, (2, 2))
    _assert_killed_after_loading(
        tmp_path, data, "print(loaded(numpy.array([[3999998.5, 3999998.5]])))", timeout=300
    )
    assert "LW-MODEL-017" in _rule_ids(scan(data))


def _nd_spline(change: str) -> bytes:
    """A cubic ``NdBSpline`` (what a RegularGridInterpolator's spline methods keep) with one part of its state
    replaced after construction."""
    np = pytest.importorskip("numpy")
    interpolate = pytest.importorskip("scipy.interpolate")
    x = np.arange(6.0)
    spline = interpolate.RegularGridInterpolator((x, x), np.outer(x, x), method="cubic")._spline
    if change == "offsets":
        spline._indices_k1d = np.full(spline._indices_k1d.shape, 10**8, dtype=np.int64)
    elif change == "knot-counts":
        spline._len_t = np.array([10**8, 10**8], dtype=np.int64)
    elif change == "coefficients":
        spline._c = np.ones((2, 2))
    return pickle.dumps(spline, protocol=4)


@pytest.mark.parametrize("change", ["offsets", "knot-counts", "coefficients"])
def test_nd_spline_state_its_evaluation_trusts(change: str) -> None:
    """An NdBSpline whose box offsets, knot counts or coefficients disagree with its degrees and knots (was:
    clean)."""
    result = scan(_nd_spline(change))
    assert any(f.evidence.get("subject") == "scipy.interpolate:ndbspline" for f in result.findings), result
    assert "LW-MODEL-017" in _rule_ids(result), result


def test_nd_splines_scipy_writes_stay_clean() -> None:
    """NdBSplines as SciPy pickles them: mixed degrees, trailing dimensions, one dimension."""
    np = pytest.importorskip("numpy")
    interpolate = pytest.importorskip("scipy.interpolate")
    cubic = np.r_[[0.0] * 4, 1, 2, 3, [4.0] * 4]
    linear = np.r_[[0.0] * 2, 1, [2.0] * 2]
    splines = [
        interpolate.NdBSpline((cubic, linear), np.ones((7, 3)), (3, 1)),
        interpolate.NdBSpline((cubic, linear), np.ones((7, 3, 2)), (3, 1)),
        interpolate.NdBSpline((cubic,), np.ones(7), 3),
        interpolate.RegularGridInterpolator(
            (cubic[3:8], cubic[3:8]), np.ones((5, 5)), method="cubic"
        )._spline,
    ]
    for spline in splines:
        for protocol in (2, 4, 5):
            result = scan(pickle.dumps(spline, protocol=protocol))
            assert not result.findings and not result.unverified, (protocol, result)


def test_nd_spline_real_loader_crashes(tmp_path: Path) -> None:
    """The real unpickler loads the spline with out-of-range box offsets; its first evaluation dies (SIGSEGV)."""
    _assert_killed_after_loading(tmp_path, _nd_spline("offsets"), "print(loaded(numpy.array([[2.5, 3.5]])))")


# --------------------------------------------------- scikit-learn: the hashing vectorizer's own n_features


def _hashing_vectorizer(n_features: int) -> bytes:
    text = pytest.importorskip("sklearn.feature_extraction.text")
    vectorizer = text.HashingVectorizer()
    vectorizer.n_features = (
        n_features  # what fit's parameter validation would refuse; unpickling checks nothing
    )
    return pickle.dumps(vectorizer, protocol=4)


@pytest.mark.parametrize("n_features", [0, -1])
def test_hashing_vectorizer_without_features(n_features: int) -> None:
    """A HashingVectorizer whose n_features is below 1 (was: clean; round 15 checked FeatureHasher only): its
    transform builds a FeatureHasher from it and hashes modulo it in C."""
    result = scan(_hashing_vectorizer(n_features))
    assert any(f.evidence.get("subject") == "sklearn.feature_extraction:hasher" for f in result.findings), (
        result
    )


def test_hashing_vectorizers_scikit_learn_writes_stay_clean() -> None:
    text = pytest.importorskip("sklearn.feature_extraction.text")
    for vectorizer in (
        text.HashingVectorizer(),
        text.HashingVectorizer(n_features=2**10, ngram_range=(1, 2)),
    ):
        vectorizer.transform(["hello world"])
        for protocol in (2, 4, 5):
            result = scan(pickle.dumps(vectorizer, protocol=protocol))
            assert not result.findings and not result.unverified, result


def test_hashing_vectorizer_real_loader_divides_by_zero(tmp_path: Path) -> None:
    """The real unpickler loads it; transform kills the child with SIGFPE."""
    path = tmp_path / "vectorizer.pkl"
    path.write_bytes(_hashing_vectorizer(0))
    code = (
        "import pickle, sys\n"
        "with open(sys.argv[1], 'rb') as fh:\n"
        "    vectorizer = pickle.load(fh)\n"
        "print('LOADED', flush=True)\n"
        "vectorizer.transform(['hello world'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode < 0 and "LOADED" in done.stdout, (done.returncode, done.stdout, done.stderr[-500:])


# ------------------------------------------------------- scikit-learn: a DictVectorizer's vocabulary columns


def _dict_vectorizer(sparse: bool, columns: dict[str, int], features: int = 2) -> bytes:
    extraction = pytest.importorskip("sklearn.feature_extraction")
    vectorizer = extraction.DictVectorizer(sparse=sparse)
    vectorizer.fit([{f"f{i}": 1 for i in range(features)}])
    vectorizer.vocabulary_.update(columns)  # what fit numbers 0 .. n - 1; unpickling checks nothing
    return pickle.dumps(vectorizer, protocol=4)


@pytest.mark.parametrize(
    ("columns", "features"),
    [
        ({"f0": 10**8}, 2),
        ({"f0": -1}, 2),
        ({"f1": 2}, 2),
        (
            {"f3": 30_000},
            25_000,
        ),  # past the VM's container bound: its values are summarised, its keys counted
        ({"f24000": 25_000}, 25_000),
    ],
)
def test_dict_vectorizer_column_outside_its_vocabulary(columns: dict[str, int], features: int) -> None:
    """A feature column outside ``0 .. len(vocabulary_) - 1`` (was: clean)."""
    for sparse in (True, False):
        result = scan(_dict_vectorizer(sparse, columns, features))
        assert any(
            f.evidence.get("subject") == "sklearn.feature_extraction:vocabulary" for f in result.findings
        ), result


def test_dict_vectorizer_duplicate_keys_past_the_bound() -> None:
    """Keys repeated in SETITEMS collapse in the real dict: its width is the number of distinct keys."""
    text = pytest.importorskip("sklearn.feature_extraction")
    vectorizer = text.DictVectorizer()
    vectorizer.fit([{"a": 1}])
    data = pickle.dumps(vectorizer, protocol=2)
    # the vocabulary written by hand: 20,000 items of two keys, columns up to 19,999 for a dict of 2 entries
    pairs = [u("a" if i % 2 else "b") + b"M" + struct.pack("<H", i) for i in range(20_000)]
    vocab = EMPTY_DICT + b"".join(
        MARK + b"".join(pairs[j : j + 1000]) + SETITEMS for j in range(0, len(pairs), 1000)
    )
    start = data.index(b"vocabulary_")
    end = data.index(
        b"s", data.index(b"}", start)
    )  # the original one-item vocabulary: EMPTY_DICT ... SETITEM
    forged = data[: start + len(b"vocabulary_") + 2] + vocab + data[end + 1 :]
    result = scan(forged)
    assert (
        any("vocabulary" in str(f.evidence.get("subject")) for f in result.findings) or result.unverified
    ), result


def test_dict_vectorizers_scikit_learn_writes_stay_clean() -> None:
    extraction = pytest.importorskip("sklearn.feature_extraction")
    for sparse in (True, False):
        small = extraction.DictVectorizer(sparse=sparse).fit([{"a": 1, "b": "x", "c": ["p", "q"]}])
        big = extraction.DictVectorizer(sparse=sparse).fit([{f"f{i}": 1 for i in range(25_000)}])
        for vectorizer in (small, big):
            for protocol in (2, 4, 5):
                result = scan(pickle.dumps(vectorizer, protocol=protocol))
                assert not result.findings and not result.unverified, result


def test_dict_vectorizer_real_loader_crashes(tmp_path: Path) -> None:
    """The real unpickler loads it; transform (which densifies unless sparse) dies of SIGSEGV."""
    _assert_killed_after_loading(
        tmp_path, _dict_vectorizer(False, {"f0": 10**8}), "loaded.transform([{'f0': 1.0, 'f1': 2.0}])"
    )


# --------------------------------------------------------- scikit-learn: a OneHotEncoder's column layout


def _one_hot(change: str, sparse: bool = False) -> bytes:
    np = pytest.importorskip("numpy")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    if change == "mapping":
        encoder = preprocessing.OneHotEncoder(
            sparse_output=sparse, min_frequency=2, handle_unknown="infrequent_if_exist"
        ).fit(np.array([[0], [0], [1], [2]]))
        encoder._default_to_infrequent_mappings = [np.array([0, 10**6, 10**6])]
    elif change == "drop":
        encoder = preprocessing.OneHotEncoder(sparse_output=sparse, drop="first").fit(
            np.array([[0], [1], [2]])
        )
        encoder._drop_idx_after_grouping = np.array([-5], dtype=object)
    else:
        encoder = preprocessing.OneHotEncoder(sparse_output=sparse).fit(np.arange(1000).reshape(-1, 1))
        encoder._n_features_outs = [1]
    return pickle.dumps(encoder, protocol=4)


@pytest.mark.parametrize("change", ["outputs", "mapping", "drop"])
def test_one_hot_encoder_columns_past_its_outputs(change: str) -> None:
    """Output counts too small for the categories, an infrequent mapping past them, a negative dropped category
    (was: clean)."""
    for sparse in (True, False):
        result = scan(_one_hot(change, sparse))
        assert any(f.evidence.get("subject") == "sklearn.preprocessing:onehot" for f in result.findings), (
            result
        )


def test_one_hot_encoders_scikit_learn_writes_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    mixed = np.array([["a", 1], ["b", 2], ["a", 3], ["c", 1], ["a", 1]], dtype=object)
    ints = np.array([[0, 1], [1, 2], [0, 3], [2, 1], [0, 1]])
    options: list[dict[str, object]] = [
        {},
        {"drop": "first"},
        {"drop": "if_binary"},
        {"min_frequency": 2, "handle_unknown": "infrequent_if_exist"},
        {"min_frequency": 2, "handle_unknown": "infrequent_if_exist", "drop": "first"},
        {"max_categories": 2, "sparse_output": False},
        {"handle_unknown": "ignore"},
    ]
    for kwargs in options:
        for data in (mixed, ints):
            encoder = preprocessing.OneHotEncoder(**kwargs).fit(data)
            for protocol in (2, 4, 5):
                result = scan(pickle.dumps(encoder, protocol=protocol))
                assert not result.findings and not result.unverified, (kwargs, protocol, result)


def test_one_hot_encoder_real_loader_crashes(tmp_path: Path) -> None:
    """The real unpickler loads an encoder of 4 million categories and one output column; a dense transform of the
    last category writes 32 MB past its row (SIGSEGV; 8 MB past it landed in a mapping)."""
    np = pytest.importorskip("numpy")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    encoder = preprocessing.OneHotEncoder(sparse_output=False).fit(np.array([[0], [1]]))
    encoder.categories_ = [np.arange(4_000_000)]
    encoder._n_features_outs = [1]
    data = pickle.dumps(encoder, protocol=4)
    assert any(f.evidence.get("subject") == "sklearn.preprocessing:onehot" for f in scan(data).findings)
    _assert_killed_after_loading(tmp_path, data, "loaded.transform([[3999999]])")
