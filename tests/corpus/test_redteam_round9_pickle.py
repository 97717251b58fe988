"""Round 9 of the internal red team: the pickle analysis and its allow-list.

A joblib dump is read by ``joblib.load`` as opcodes, then raw array bytes after each ``NumpyArrayWrapper``; every
other loader (``pickle.load``, ``torch.load``) reads those array bytes as opcodes too. The scanner follows that
plain reading of the first array's bytes, but it left the names of modules outside its lists unjudged there, even
when the bytes called them: mpmath (installed with sympy, so with every torch) evaluates text in
``mpmath.identify(x, constants)``, and any installed package the lists do not know ran what the array bytes
asked. Such a file was clean.

Each case is built as bytes here; where the loader's behaviour is the point, the real loader runs it in a child
process whose working folder is the test's temporary folder (the payload writes a marker file there).
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

np = pytest.importorskip("numpy")
joblib = pytest.importorskip("joblib")

MARKER = "ran.txt"
CODE = f"open({MARKER!r}, 'w').write('yes')"


def _u(s: str) -> bytes:
    """BINUNICODE."""
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _short(s: str) -> bytes:
    """SHORT_BINUNICODE."""
    raw = s.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _joblib_stream(data: bytes) -> bytes:
    """A protocol-2 joblib stream of one float64 array whose raw bytes are ``data``, without the alignment pad (as
    joblib before 1.2 wrote, and as joblib still reads)."""
    assert len(data) % 8 == 0
    count = len(data) // 8
    dtype = (
        b"cnumpy\ndtype\n(" + _u("f8") + b"K\x00K\x01tR(K\x03" + _u("<") + b"NNN"
        b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )
    state = (
        b"}("
        + _u("subclass")
        + b"cnumpy\nndarray\n"
        + _u("shape")
        + b"J"
        + struct.pack("<i", count)
        + b"\x85"
        + _u("order")
        + _u("C")
        + _u("dtype")
        + dtype
        + _u("allow_mmap")
        + b"\x89u"
    )
    return b"\x80\x02cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81" + state + b"b" + data + b"."


def _pad(opcodes: bytes) -> bytes:
    """Array bytes: ``opcodes`` (ending with STOP), padded to whole float64 items."""
    return opcodes + b"N" * (-len(opcodes) % 8)


# What pickle.load runs from the array bytes on: the wrapper is on the stack, these opcodes call something, STOP.
_IDENTIFY = b"cmpmath\nidentify\n(K\x01(V" + CODE.encode() + b"\nltR."
_ARRAY_PAYLOADS: dict[str, bytes] = {
    # GHSA-style gadget in a package every torch installs: identify() eval()s the text of each constant
    "mpmath-identify-global": _IDENTIFY,
    "mpmath-identify-stack-global": _short("mpmath")
    + _short("identify")
    + b"\x93(K\x01(V"
    + CODE.encode()
    + b"\nltR.",
    # a package the scanner's lists do not know (here a module made by the test), named whole in the array bytes
    "unknown-module-global": b"crt9gadget\nrun\n(V" + CODE.encode() + b"\ntR.",
    "unknown-module-stack-global": _short("rt9gadget") + _short("run") + b"\x93(V" + CODE.encode() + b"\ntR.",
    "unknown-module-inst": b"(V" + CODE.encode() + b"\nirt9gadget\nRun\n.",
}
_HANDED_PAYLOADS: dict[str, bytes] = {
    # never called by the reading itself, but handed to allowed callables that call it: the functional Enum API
    # makes it the class's __init__ and runs it for each member; a defaultdict factory runs when dict() reads a
    # missing key through a ChainMap
    "enum-functional-init": b"cenum\nEnum\n(VE\n((V__init__\n"
    + _short("rt9gadget")
    + _short("member")
    + b"\x93t(VA\nV"
    + CODE.encode()
    + b"\ntltR.",
    "defaultdict-factory-through-chainmap": b"cbuiltins\ndict\n(ccollections\nChainMap\n(ccollections\ndefaultdict\n("
    + _short("rt9gadget")
    + _short("marker")
    + b"\x93tR}VA\nK\x01stRtR.",
}
# strings memoized, popped and fetched back by GET before STACK_GLOBAL: joblib's own strings read from the wrong
# stack pair like that, so the call makes the file unverified rather than a finding
_FETCHED = (
    _short("rt9gadget") + b"\x940" + _short("run") + b"\x940h\x00h\x01\x93(V" + CODE.encode() + b"\ntR."
)
_GADGET = (
    "def run(code):\n    exec(code)\n\n\ndef member(self, code):\n    exec(code)\n\n\n"
    f"def marker():\n    open({MARKER!r}, 'w').write('yes')\n\n\n"
    "class Run:\n    def __init__(self, code):\n        exec(code)\n"
)


def _scan(path: Path) -> TargetResult:
    return scan_paths([str(path)], jobs=1).targets[0]


@pytest.mark.parametrize("case", sorted(_ARRAY_PAYLOADS))
def test_call_in_joblib_array_bytes_read_by_pickle_load_is_reported(tmp_path: Path, case: str) -> None:
    """The plain reading of joblib array data judged only the names of modules on the scanner's lists: a call of
    mpmath.identify or of any other installed package's function there was clean."""
    path = tmp_path / "model.joblib"
    path.write_bytes(_joblib_stream(_pad(_ARRAY_PAYLOADS[case])))
    res = _scan(path)
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.severity >= Severity.HIGH for f in res.findings), res.findings
    if case.startswith("mpmath"):
        assert any(f.rule_id == "LW-MODEL-001" for f in res.findings), res.findings


@pytest.mark.parametrize("case", sorted(_HANDED_PAYLOADS))
def test_unknown_name_handed_to_a_call_in_joblib_array_bytes_is_reported(tmp_path: Path, case: str) -> None:
    """A name of a module outside the lists that the plain reading hands to an allowed callable (which calls it)
    is judged as if called; before, only a direct call was (in polyglot readings) or nothing (joblib array data)."""
    path = tmp_path / "model.joblib"
    path.write_bytes(_joblib_stream(_pad(_HANDED_PAYLOADS[case])))
    res = _scan(path)
    assert any(
        f.severity >= Severity.HIGH and "rt9gadget" in str(f.evidence.get("subject")) for f in res.findings
    ), res


def test_unknown_name_paired_from_the_memo_in_joblib_array_bytes_is_unverified(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(_joblib_stream(_pad(_FETCHED)))
    res = _scan(path)
    assert res.verdict is Verdict.UNVERIFIED, res
    assert "rt9gadget.run" in (res.reason or ""), res


def _load(path: Path, loader: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = f"import {loader.split('.')[0]}; print(repr({loader}(open({str(path)!r}, 'rb'))))"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


_REAL = {
    **{
        k: _ARRAY_PAYLOADS[k]
        for k in ("mpmath-identify-global", "unknown-module-stack-global", "unknown-module-inst")
    },
    **_HANDED_PAYLOADS,
    "fetched": _FETCHED,
}


@pytest.mark.parametrize("case", sorted(_REAL))
def test_the_array_bytes_run_under_pickle_load_and_not_under_joblib(tmp_path: Path, case: str) -> None:
    """The cases are real: joblib.load returns a float array and runs nothing; pickle.load of the same file runs
    the payload."""
    pytest.importorskip("mpmath")
    box = tmp_path / "box"
    box.mkdir()
    (box / "rt9gadget.py").write_text(_GADGET)
    path = tmp_path / "model.joblib"
    path.write_bytes(_joblib_stream(_pad(_REAL[case])))
    done = _load(path, "joblib.load", box)
    assert done.returncode == 0 and "array(" in done.stdout, done
    assert not (box / MARKER).exists()
    _load(path, "pickle.load", box)
    assert (box / MARKER).exists()


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("mpmath", "identify"),
        ("mpmath.identification", "identify"),
        ("mpmath", "mp.identify"),
        ("mpmath.libmp.backend", "exec_"),
    ],
)
def test_mpmath_evaluators_are_code_execution(module: str, name: str) -> None:
    """Caught before as an unknown function (HIGH); they evaluate the pickle's text, so CRITICAL."""
    data = b"\x80\x04" + _short(module) + _short(name) + b"\x93(K\x01(V" + CODE.encode() + b"\nltR."
    res = analyze_pickle_bytes(data)
    assert any(f.rule_id == "LW-MODEL-001" and f.severity is Severity.CRITICAL for f in res.findings), res


def test_mpmath_identify_evaluates_its_constants(tmp_path: Path) -> None:
    pytest.importorskip("mpmath")
    data = b"\x80\x02" + _IDENTIFY
    (tmp_path / "p.pkl").write_bytes(data)
    _load(tmp_path / "p.pkl", "pickle.load", tmp_path)
    assert (tmp_path / MARKER).exists()


def test_joblib_dumps_of_arrays_and_estimators_stay_clean(tmp_path: Path) -> None:
    """Real joblib dumps whose first array holds bytes that read as opcodes (strings, small integers, text-like
    uint8) stay clean."""
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    model = sklearn.LogisticRegression().fit(rng.normal(size=(40, 3)), rng.integers(0, 2, 40))
    objects = {
        "text-bytes": np.frombuffer(b"cnumpy\ndtype\n(\x8c\x05numpy\x8c\x05dtype\x93)R." * 8, dtype=np.uint8),
        "strings": np.array(["mpmath", "identify", "os", "system"]),
        "ints": np.arange(300, dtype=np.int64),
        "model": model,
        "mixed": {"a": np.array([b"cos\nsystem\n"] * 3), "m": model},
    }
    paths = []
    for name, obj in objects.items():
        for compress in (0, 3):  # compressed dumps write no alignment pad: the array bytes come first
            paths.append(tmp_path / f"{name}-{compress}.joblib")
            joblib.dump(obj, paths[-1], compress=compress)
    results = scan_paths([str(p) for p in paths], jobs=1).targets
    assert [r.verdict for r in results] == [Verdict.CLEAN] * len(paths), [r.findings for r in results]
