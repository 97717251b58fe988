"""Round 15: published bypasses of picklescan, modelscan, fickling and modelaudit, and Keras advisories, that no
earlier corpus file cites, and one miss found while auditing the allow-list they point at.

Every published case here was already caught when this round started, except that ``dataclasses._create_fn`` (an
``exec`` of generated source) was reported as an unlisted standard-library callable (high) and is now a known
code-execution callable (critical). Each test cites the advisory, pull request or write-up it comes from; payloads
are built here as opcodes or configuration and only scanned. The miss (last section): scikit-learn functions the
allow-list admitted by name so that estimators may keep them could also be called by a pickle, and the k-means runs
among them corrupt the heap on inconsistent arrays; that test also runs the real loader, in a child process.
"""

from __future__ import annotations

import json
from pathlib import Path

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught as assert_file_caught
from test_container_bypasses import scan as scan_files
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

from loopwarden.checks.models.pickle_vm import PickleResult
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

APPEND = b"a"
SETITEM = b"s"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
TUPLE3 = b"\x87"


def _rule_ids(result: PickleResult) -> set[str]:
    return {f.rule_id for f in result.findings}


def assert_code_execution(result: PickleResult, *subjects: str) -> None:
    """Caught as what it is: a callable that runs code (LW-MODEL-001, critical)."""
    assert_caught(result, *subjects)
    assert max(f.severity for f in result.findings) is Severity.CRITICAL, result
    assert "LW-MODEL-001" in _rule_ids(result), result


# ------------------------------------------------------------------------ picklescan: numpy.f2py eval gadgets

# numpy.f2py.crackfortran evaluates Fortran expressions with eval(): each advisory is one of its helpers called
# from __reduce__ with a Python expression where the Fortran text belongs.
_F2PY_GADGETS = [
    # https://github.com/mmaitre314/picklescan/security/advisories/GHSA-rrxm-2pvv-m66x (CVE-2025-71372)
    ("GHSA-rrxm-2pvv-m66x", "getlincoef", (CODE, EMPTY_DICT)),
    # https://github.com/mmaitre314/picklescan/security/advisories/GHSA-6556-fwc2-fg2p (CVE-2025-71339)
    ("GHSA-6556-fwc2-fg2p", "_eval_length", (CODE, EMPTY_DICT)),
    # https://github.com/mmaitre314/picklescan/security/advisories/GHSA-3329-ghmp-jmv5 (CVE-2025-71365)
    ("GHSA-3329-ghmp-jmv5", "myeval", (CODE,)),
    # https://github.com/mmaitre314/picklescan/security/advisories/GHSA-cffc-mxrf-mhh4 (CVE-2025-71347)
    ("GHSA-cffc-mxrf-mhh4", "param_eval", (CODE, EMPTY_DICT, EMPTY_DICT)),
]


@pytest.mark.parametrize(("advisory", "name", "arg_ops"), _F2PY_GADGETS, ids=[g[0] for g in _F2PY_GADGETS])
def test_picklescan_f2py_eval_gadget(advisory: str, name: str, arg_ops: tuple[bytes, ...]) -> None:
    """picklescan missed numpy.f2py.crackfortran's eval helpers (fixed in picklescan 0.0.33,
    https://github.com/mmaitre314/picklescan/pull/53, which lists the four advisories of this test)."""
    for stack_global in (True, False):
        result = scan(call("numpy.f2py.crackfortran", name, *arg_ops, stack_global=stack_global))
        assert_code_execution(result, f"numpy.f2py.crackfortran.{name}")


# ------------------------------------------------------------- picklescan: Sonatype's unsafe-globals report


def test_picklescan_ghsa_655q_fx9r_782v_torch_inductor_compile_file() -> None:
    """torch._inductor.codecache.compile_file('', '', ['sh', '-c', cmd]) runs the command
    (https://github.com/mmaitre314/picklescan/security/advisories/GHSA-655q-fx9r-782v, picklescan 0.0.22)."""
    cmd = EMPTY_LIST + MARK + u("sh") + u("-c") + PAYLOAD + b"e"
    result = scan(call("torch._inductor.codecache", "compile_file", u(""), u(""), cmd))
    assert_code_execution(result, "torch._inductor.codecache.compile_file")


def test_picklescan_ghsa_655q_fx9r_782v_pydoc_pipepager() -> None:
    """pydoc.pipepager(text, cmd) pipes into a shell command
    (https://github.com/mmaitre314/picklescan/security/advisories/GHSA-655q-fx9r-782v)."""
    assert_code_execution(scan(call("pydoc", "pipepager", u(""), PAYLOAD)), "pydoc.pipepager")


def test_picklescan_ghsa_655q_fx9r_782v_venv_create_prompt() -> None:
    """venv.create(dir, ..., with_pip=True, prompt) runs ensurepip in a subprocess and writes activation scripts
    (https://github.com/mmaitre314/picklescan/security/advisories/GHSA-655q-fx9r-782v)."""
    false = b"\x89"
    true = b"\x88"
    result = scan(call("venv", "create", u("venv"), false, false, true, false, u("$(id)")))
    assert_caught(result, "venv.create")
    assert max(f.severity for f in result.findings) is Severity.CRITICAL, result


def test_picklescan_ghsa_655q_fx9r_782v_partial_of_torch_load() -> None:
    """functools.partial(torch.load, path, weights_only=False) called with no arguments loads another file with
    the full unpickler; the partial's target and keywords come from its BUILD state, as pickle writes a partial
    (https://github.com/mmaitre314/picklescan/security/advisories/GHSA-655q-fx9r-782v)."""
    target = sglob("torch", "load")
    state = (
        MARK
        + target
        + args(u("other_model.bin"))
        + EMPTY_DICT
        + u("weights_only")
        + b"\x89"
        + SETITEM
        + NONE
        + TUPLE
    )
    payload = (
        proto(4)
        + sglob("functools", "partial")
        + args(target)
        + REDUCE
        + state
        + BUILD
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )
    result = scan(payload)
    assert_caught(result, "torch.load")
    assert max(f.severity for f in result.findings) is Severity.CRITICAL, result


# ------------------------------------------------------------ modelaudit: the picklescan RCE-bypass game

# promptfoo/modelaudit's record of its own scanner's bypasses and blocks
# (docs/agents/picklescan-rce-bypass-game.md, https://github.com/promptfoo/modelaudit/pull/1061): each one runs
# a callable the pickle hands to a dispatcher (a call proxy, an iterator forced by tuple(), a cleanup or exit hook,
# a scheduler, an executor) or reaches a known sink under another module's name. Built here by code, marker write
# (pathlib.Path.touch) as the effect.
_MARKER = reduce_of("pathlib", "PosixPath", u("marker_dir"), u("round15_marker"))
_TOUCH = sglob("pathlib", "Path.touch")


def _forced(module: str, name: str, *arg_ops: bytes) -> bytes:
    """tuple(module.name(*args)): the lazy iterator is consumed while the pickle loads."""
    return proto(4) + sglob("builtins", "tuple") + reduce_of(module, name, *arg_ops) + TUPLE1 + REDUCE + STOP


def _with_memoized(ctor: tuple[str, str], method: str, final: str, *arg_ops: bytes) -> bytes:
    """obj = ctor(); Class.method(obj, *args); Class.final(obj): an object kept in the memo and used twice."""
    module, cls = ctor
    return (
        proto(4)
        + reduce_of(module, cls)
        + MEMOIZE
        + sglob(module, f"{cls}.{method}")
        + MARK
        + get(0)
        + b"".join(arg_ops)
        + TUPLE
        + REDUCE
        + POP
        + sglob(module, f"{cls}.{final}")
        + get(0)
        + TUPLE1
        + REDUCE
        + STOP
    )


_BYPASS_GAME: dict[str, tuple[bytes, str]] = {
    "operator.call": (
        proto(4) + sglob("operator", "call") + _TOUCH + _MARKER + TUPLE2 + REDUCE + STOP,
        "operator",
    ),
    "builtins.map": (_forced("builtins", "map", _TOUCH, EMPTY_LIST + _MARKER + APPEND), "builtins.map"),
    "builtins.filter": (
        _forced("builtins", "filter", _TOUCH, EMPTY_LIST + _MARKER + APPEND),
        "builtins.filter",
    ),
    "itertools.starmap": (
        _forced("itertools", "starmap", _TOUCH, EMPTY_LIST + _MARKER + TUPLE1 + APPEND),
        "itertools.starmap",
    ),
    "itertools.groupby": (
        _forced("itertools", "groupby", EMPTY_LIST + _MARKER + APPEND, _TOUCH),
        "itertools",
    ),
    "itertools.accumulate": (
        _forced("itertools", "accumulate", EMPTY_LIST + _MARKER + APPEND + u("x") + APPEND, _TOUCH),
        "itertools.accumulate",
    ),
    "atexit.register": (
        proto(4) + sglob("atexit", "register") + _TOUCH + _MARKER + TUPLE2 + REDUCE + STOP,
        "atexit",
    ),
    "weakref.finalize": (
        proto(4)
        + sglob("weakref", "finalize")
        + reduce_of("collections", "UserList")
        + _TOUCH
        + _MARKER
        + TUPLE3
        + REDUCE
        + STOP,
        "weakref.finalize",
    ),
    "unittest.mock.Mock": (
        proto(4)
        + reduce_of("unittest.mock", "Mock", NONE, _TOUCH)
        + MEMOIZE
        + POP
        + get(0)
        + _MARKER
        + TUPLE1
        + REDUCE
        + STOP,
        "unittest.mock.Mock",
    ),
    "sched.scheduler": (
        _with_memoized(
            ("sched", "scheduler"), "enter", "run", binint1(0), binint1(0), _TOUCH, _MARKER + TUPLE1
        ),
        "sched.scheduler",
    ),
    "contextlib.ExitStack": (
        _with_memoized(("contextlib", "ExitStack"), "callback", "close", _TOUCH, _MARKER),
        "contextlib.ExitStack",
    ),
    "concurrent.futures.ThreadPoolExecutor": (
        _with_memoized(("concurrent.futures", "ThreadPoolExecutor"), "submit", "shutdown", _TOUCH, _MARKER),
        "concurrent.futures.ThreadPoolExecutor",
    ),
    "typing._eval_type": (
        proto(4)
        + sglob("typing", "_eval_type")
        + reduce_of("typing", "ForwardRef", u("f(p) or int"))
        + EMPTY_DICT
        + u("f")
        + _TOUCH
        + SETITEM
        + u("p")
        + _MARKER
        + SETITEM
        + NONE
        + TUPLE3
        + REDUCE
        + STOP,
        "typing._eval_type",
    ),
    "dataclasses._create_fn": (
        call(
            "dataclasses",
            "_create_fn",
            u("x"),
            EMPTY_LIST + u("a=open('round15_marker','w')") + APPEND,
            EMPTY_LIST + u("return 1") + APPEND,
        ),
        "dataclasses._create_fn",
    ),
    "mailcap.findmatch": (call("mailcap", "findmatch", EMPTY_DICT, u("text/plain")), "mailcap.findmatch"),
    "setuptools._distutils.spawn.spawn": (
        call("setuptools._distutils.spawn", "spawn", EMPTY_LIST + u("/bin/true") + APPEND),
        "setuptools._distutils.spawn",
    ),
    "pipes.Template.copy": (call("pipes", "Template.copy", NONE, u("/dev/null"), u("out")), "pipes"),
    "io.FileIO": (call("io", "FileIO", u("hook.pth"), u("w")), "FileIO"),
    "random._os.system": (call("random", "_os.system", PAYLOAD), "random"),
    "site.os.system": (call("site", "os.system", PAYLOAD), "system"),
    "builtins.__dict__.get": (call("builtins", "__dict__.get", u("eval")), "builtins"),
    "pkgutil.iter_importers": (
        proto(4)
        + sglob("builtins", "list")
        + reduce_of("pkgutil", "iter_importers", u("evilpkg.sub"))
        + TUPLE1
        + REDUCE
        + STOP,
        "pkgutil.iter_importers",
    ),
}


@pytest.mark.parametrize("case", sorted(_BYPASS_GAME))
def test_modelaudit_1061_bypass_game(case: str) -> None:
    """A bypass modelaudit's own scanner reported clean and recorded in its RCE-bypass game
    (https://github.com/promptfoo/modelaudit/pull/1061): loopwarden reports it, naming the dispatcher."""
    payload, subject = _BYPASS_GAME[case]
    assert_caught(scan(payload), subject)


def test_modelaudit_1061_dataclasses_create_fn_is_code_execution() -> None:
    """dataclasses._create_fn exec()s the source it builds from its arguments; a default-argument expression
    runs while the function is defined (modelaudit's bypass game, https://github.com/promptfoo/modelaudit/pull/1061).
    Reported as an unlisted callable (high) before this round; now a known code-execution callable."""
    payload, _ = _BYPASS_GAME["dataclasses._create_fn"]
    assert_code_execution(scan(payload), "dataclasses._create_fn")


# ------------------------------------------------------------------------------------------------------ Keras


@pytest.mark.parametrize("target", ["/etc/passwd", "https://attacker.example/vocab.txt"])
def test_keras_cve_2025_12058_lookup_vocabulary_path(tmp_path: Path, target: str) -> None:
    """CVE-2025-12058 / GHSA-mq84-hjqx-cwf2 (https://nvd.nist.gov/vuln/detail/CVE-2025-12058): a StringLookup
    whose vocabulary is a path reads that local file, or fetches the URL, while the model loads, safe mode or not."""
    archive = cp.keras_zip(cp.keras_lookup_path_config("StringLookup", target))
    assert_file_caught(scan_files(tmp_path, {"model.keras": archive}), "LW-MODEL-033")


@pytest.mark.parametrize("kind", ["external-storage", "virtual-dataset"])
def test_keras_cve_2026_1669_and_12480_weights_h5_reading_other_files(tmp_path: Path, kind: str) -> None:
    """The model.weights.h5 of a .keras archive declares a dataset whose bytes are another file, which Keras read
    into the weights: HDF5 external storage (CVE-2026-1669, https://nvd.nist.gov/vuln/detail/CVE-2026-1669, Keras
    < 3.13.1) and, past that fix, a virtual dataset over another HDF5 file (CVE-2026-12480,
    https://nvd.nist.gov/vuln/detail/CVE-2026-12480, Keras <= 3.13.2)."""
    h5py = pytest.importorskip("h5py")
    weights = tmp_path / "w.h5"
    with h5py.File(weights, "w") as f:
        group = f.create_group("_layer_checkpoint_dependencies/dense/vars")
        if kind == "external-storage":
            group.create_dataset("0", shape=(16,), dtype="u1", external=[("/etc/hostname", 0, 16)])
        else:
            layout = h5py.VirtualLayout(shape=(4,), dtype="u1")
            layout[:] = h5py.VirtualSource("/home/user/secret.h5", "data", shape=(4,))
            group.create_virtual_dataset("0", layout)
    config = {"module": "keras", "class_name": "Sequential", "config": {"layers": []}}
    archive = cp.zip_of(
        {
            "metadata.json": json.dumps({"keras_version": "3.13.0"}).encode(),
            "config.json": json.dumps(config).encode(),
            "model.weights.h5": weights.read_bytes(),
        }
    )
    assert_file_caught(scan_files(tmp_path, {"model.keras": archive}), "LW-MODEL-045")


def test_keras_cve_2026_12481_lambda_outside_safe_mode_scope(tmp_path: Path) -> None:
    """CVE-2026-12481 (https://nvd.nist.gov/vuln/detail/CVE-2026-12481): Keras 3.14's Lambda.from_config took an
    unset safe_mode as permission, so a config deserialized outside load_model (layers.deserialize, clone_model)
    unmarshalled the Lambda's bytecode. The Lambda layer is reported whoever deserializes the config."""
    archive = cp.keras_zip(cp.keras_lambda_config())
    assert_file_caught(scan_files(tmp_path, {"model.keras": archive}), "LW-MODEL-032", Severity.CRITICAL)


@pytest.mark.parametrize("holder", ["submodel", "wrapper"])
def test_modelscan_343_lambda_nested_below_the_top_level(tmp_path: Path, holder: str) -> None:
    """modelscan looked for Lambda layers in the top-level layer list only; a Lambda inside a nested Functional
    submodel, or held by a wrapper layer (TimeDistributed's "layer"), scanned clean and ran on load
    (https://github.com/protectai/modelscan/issues/343). The config walk is recursive."""
    lambda_layer = cp.keras_lambda_config()["config"]["layers"][1]  # type: ignore[index]
    if holder == "submodel":
        inner = {
            "module": "keras",
            "class_name": "Functional",
            "config": {"name": "inner", "layers": [lambda_layer]},
        }
    else:
        inner = {
            "module": "keras.layers",
            "class_name": "TimeDistributed",
            "config": {"name": "td", "layer": lambda_layer},
        }
    config = {
        "module": "keras",
        "class_name": "Functional",
        "config": {
            "name": "outer",
            "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 2]}},
                inner,
            ],
        },
    }
    assert_file_caught(
        scan_files(tmp_path, {"model.keras": cp.keras_zip(config)}), "LW-MODEL-032", Severity.CRITICAL
    )


# ------------------------------------------------- confirmed miss: kept scikit-learn functions called at load

# sklearn.cluster's single k-means runs and the passthrough scorer were on the allow-list by name, so a pickle could
# call them; real pickles only keep them (BisectingKMeans._kmeans_single, a search's scorer). The k-means runs hand
# their arrays to Cython loops that trust the shapes: centers narrower than X make them write past the heap block.
_KEPT_SKLEARN = [
    ("sklearn.cluster._kmeans", "_kmeans_single_lloyd"),
    ("sklearn.cluster._kmeans", "_kmeans_single_elkan"),
    ("sklearn.metrics._scorer", "_passthrough_scorer"),
]


@pytest.mark.parametrize(("module", "name"), _KEPT_SKLEARN)
def test_kept_sklearn_function_called_while_loading(module: str, name: str) -> None:
    """Calling one of these functions while loading is reported (LW-MODEL-005); keeping it is not (below)."""
    result = scan(call(module, name, EMPTY_LIST, EMPTY_LIST, EMPTY_LIST))
    assert_caught(result, f"{module}.{name}")
    assert "LW-MODEL-005" in _rule_ids(result), result


@pytest.mark.parametrize(("module", "name"), _KEPT_SKLEARN)
def test_kept_sklearn_function_as_an_attribute_stays_clean(module: str, name: str) -> None:
    """The same function kept in an object's state, as BisectingKMeans and the searches keep theirs."""
    state = EMPTY_DICT + u("_kmeans_single") + sglob(module, name) + SETITEM
    payload = proto(4) + reduce_of("types", "SimpleNamespace") + state + BUILD + STOP
    result = scan(payload)
    assert not result.findings, result


@pytest.mark.parametrize("name", ["_kmeans_single_lloyd", "_kmeans_single_elkan"])
def test_kmeans_single_run_with_narrow_centers_crashes_the_loader(tmp_path: Path, name: str) -> None:
    """Confirmed with scikit-learn 1.9: pickle.load of this call (X 16x4096, centers 2x1) wrote past the centers'
    heap block and the child died of SIGSEGV; the file was reported clean before this round."""
    np = pytest.importorskip("numpy")
    kmeans = pytest.importorskip("sklearn.cluster._kmeans")
    import pickle
    import subprocess
    import sys

    fn = getattr(kmeans, name)

    class _Call:
        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            return (fn, (np.full((16, 4096), 7.0), np.ones(16), np.ones((2, 1))))

    path = tmp_path / "kmeans.pkl"
    path.write_bytes(pickle.dumps(_Call(), protocol=4))
    result = scan_paths([str(path)], jobs=1).targets[0]
    assert result.verdict is not Verdict.CLEAN, result
    assert "LW-MODEL-005" in {f.rule_id for f in result.findings}, result
    code = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return  # a corrupted heap can also leave the child hanging: it did not load normally either
    assert done.returncode != 0, done


# ------------------------------------------------------------------- a module of primitives under a private alias


@pytest.mark.parametrize(
    ("module", "qual", "reached"),
    [
        ("random", "_os.system", "os.system"),
        ("argparse", "_os.system", "os.system"),
        ("tempfile", "_os.system", "os.system"),
        ("threading", "_os.system", "os.system"),
        ("collections", "_sys.modules", "sys.modules"),
    ],
)
def test_a_module_of_primitives_under_a_private_alias_is_critical(
    module: str, qual: str, reached: str
) -> None:
    """``random`` imports os as ``_os``: the dotted name ``random._os.system`` reaches os.system as
    ``pathlib.os.system`` does. It was an unlisted callable (high); the attribute path is now followed through the
    alias (LW-MODEL-007, critical)."""
    result = scan(proto(4) + reduce_of(module, qual, u("id")) + STOP)
    assert any(
        f.rule_id == "LW-MODEL-007" and f.severity is Severity.CRITICAL and reached in f.message
        for f in result.findings
    ), result
