"""Files that are not models: data files, sources and other formats whose first byte happens to be a pickle
opcode, and the pickles hidden behind such first bytes.

A pickle loader (``pickle.load``, ``joblib.load``, ``numpy.load(allow_pickle=True)``, torch's legacy path) reads
from byte 0 and stops at its first error. What it runs before that error is reported; a file on which it fails
before it could import anything is not a pickle and is judged as what it is.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.dispatch import NOT_A_MODEL, scan_blob
from loopwarden.checks.models.scanner import default_allow
from loopwarden.domain import Location, Severity


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _s(text: str) -> bytes:
    return b"S'" + text.encode() + b"'\n"


_CALL = _g("os", "system") + b"(" + _s("echo never-run") + b"tR"
"""os.system('echo never-run') in protocol 0 opcodes, its result left on the stack."""


def _scan(name: str, data: bytes) -> ScanContext:
    ctx = ScanContext(name, Limits(), default_allow())
    scan_blob(bytes_blob(name, Location(name), data, 0), ctx)
    return ctx


def _high(ctx: ScanContext) -> list[str]:
    return [f.rule_id for f in ctx.findings if f.severity >= Severity.HIGH]


# --- protocol 3 opcodes without PROTO ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lead",
    [
        b"C\x05hello",  # SHORT_BINBYTES
        b"C\x00",
        b"B" + struct.pack("<I", 5) + b"hello",  # BINBYTES
        b"B\x00\x00\x00\x00",
        b"C\x02ab0",  # pushed and popped again
    ],
)
@pytest.mark.parametrize("name", ["model.bin", "notes.txt", "data", "weights.npy.part"])
def test_a_pickle_may_start_with_a_protocol_3_opcode(lead: bytes, name: str) -> None:
    """The unpicklers accept any opcode first whatever the protocol: ``pickle.loads(b"C\\x05hello" + payload)``
    runs the payload. Such bytes are often valid UTF-8 text as well."""
    ctx = _scan(name, lead + _CALL + b".")
    assert "LW-MODEL-001" in _high(ctx), (ctx.formats, ctx.findings, ctx.unverified)


# --- data files whose first byte is an opcode ----------------------------------------------------------------


def _wav() -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x01" * 800)
    return buf.getvalue()


def _sqlite(tmp: Path) -> bytes:
    import sqlite3

    path = tmp / "db.sqlite"
    con = sqlite3.connect(path)
    con.execute("create table t(a, b)")
    con.executemany("insert into t values (?, ?)", [(i, f"row {i}\n") for i in range(200)])
    con.commit()
    con.close()
    return path.read_bytes()


def _mat(compressed: bool) -> bytes:
    import io

    scipy_io = pytest.importorskip("scipy.io")
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    scipy_io.savemat(buf, {"w": np.arange(64.0).reshape(8, 8)}, do_compression=compressed)
    return buf.getvalue()


def _arrow(kind: str) -> bytes:
    import io

    pa = pytest.importorskip("pyarrow")
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y\n", "cos"]})
    buf = io.BytesIO()
    if kind == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, buf)
    else:
        import pyarrow.feather as feather

        feather.write_feather(table, buf)
    return buf.getvalue()


_GGJT = b"tjgg" + struct.pack("<I", 3) + struct.pack("<7i", 4096, 256, 256, 32, 32, 1, 1) + b"\x00" * 64


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda tmp: _wav(), "RIFF"),
        (_sqlite, "SQLite"),
        (lambda tmp: _mat(False), "MAT-file"),
        (lambda tmp: _mat(True), "MAT-file"),
        (lambda tmp: _arrow("parquet"), "Parquet"),
        (lambda tmp: _arrow("feather"), "Arrow"),
        (lambda tmp: _GGJT, "GGJT"),
        (lambda tmp: b"lmgg" + b"\x00" * 64, "GGML"),
    ],
)
@pytest.mark.parametrize("name", ["file.bin", "data"])
def test_data_files_are_named_and_not_malformed_pickles(
    make: Callable[[Path], bytes], kind: str, name: str, tmp_path: Path
) -> None:
    """Parquet's 'P', SQLite's 'S', a MAT-file's 'M', RIFF's 'R', GGJT's 't' are opcodes, but a loader fails on
    them at once: no malformed-pickle finding, and unverified as any file of no model format (never clean)."""
    ctx = _scan(name, make(tmp_path))
    assert not ctx.findings, ctx.findings
    assert len(ctx.unverified) == 1 and kind in ctx.unverified[0], ctx.unverified
    assert ctx.unverified[0].endswith(NOT_A_MODEL)


@pytest.mark.parametrize(
    "data",
    [
        b"BM" + struct.pack("<I", 70) + b"\x00" * 8 + struct.pack("<I", 40) + b"\x00" * 52,  # BMP: BINBYTES
        b"t\x00\x01\x02" * 64,  # TUPLE without MARK
        b"R" + bytes(range(256)),  # REDUCE on an empty stack
        b"S" + bytes(range(1, 10)) + b"\n" + b"\xff" * 64,  # STRING that is no literal
        b"a" + b"\x00" * 4096,
        b"M\x01\x02" + b"\xfe" * 100,  # BININT2, then an invalid opcode
    ],
)
def test_binary_that_a_loader_rejects_at_once_is_an_unknown_format(data: bytes) -> None:
    ctx = _scan("blob.bin", data)
    assert not ctx.findings, ctx.findings
    assert ctx.unverified == [f"unknown binary format: {NOT_A_MODEL}"], ctx.unverified
    assert ctx.formats == ["unknown"]


@pytest.mark.parametrize("name", ["model.pkl", "w.joblib", "ckpt.pt"])
def test_a_file_named_as_a_pickle_that_breaks_at_once_is_still_a_malformed_pickle(name: str) -> None:
    ctx = _scan(name, b"t\x00\x01\x02" * 64)
    assert "LW-MODEL-012" in {f.rule_id for f in ctx.findings}, ctx.findings
    assert ctx.unverified


# --- what a loader runs from byte 0 is still reported -------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"(" + _CALL + b"." + b"\x00\xff" * 64,  # payload, then binary bytes
        b"N0" + _CALL + b"\xfe" * 16,  # the payload runs, then an invalid opcode
        _CALL + b"\xff",
        b"K\x010" + _CALL + b"t",  # the payload runs, then TUPLE without MARK
        b"PAR1\n" + _CALL + b".",  # a data magic does not hide what follows it
    ],
)
@pytest.mark.parametrize("name", ["blob.bin", "notes.txt", "setup.py", "x.pth"])
def test_a_payload_before_the_first_error_is_reported(data: bytes, name: str) -> None:
    ctx = _scan(name, data)
    assert "LW-MODEL-001" in _high(ctx), (ctx.formats, ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    "data",
    [
        _g("mypkg.models", "Evil") + b")R" + b"\xff\x00" * 8,  # a module no model environment has
        _g("__main__", "Evil") + b")R\xfe",
        b"(" + _g("mypkg", "Evil") + b"t\xfe",
    ],
)
@pytest.mark.parametrize("name", ["blob.bin", "setup.py", "data"])
def test_an_importable_name_before_the_first_error_keeps_it_a_pickle(data: bytes, name: str) -> None:
    """Names are judged strictly in a file that has no other format: a loader that can import the module runs
    it before it fails."""
    ctx = _scan(name, data)
    assert ctx.findings and ctx.unverified, (ctx.formats, ctx.findings, ctx.unverified)
    assert "LW-MODEL-012" in {f.rule_id for f in ctx.findings}


@pytest.mark.parametrize(
    "data",
    [
        b"t" + b"\x00" * 32 + _CALL + b".",  # a hidden pickle after the first error: no loader runs it
        b"R" + b"\x01" * 100 + b"\x80\x04" + _CALL + b".",
    ],
)
def test_binary_with_a_pickle_past_the_first_error_is_never_clean(data: bytes) -> None:
    ctx = _scan("blob.bin", data)
    assert ctx.unverified, (ctx.findings, ctx.unverified)


# --- text --------------------------------------------------------------------------------------------------


_SOURCES = {
    "flatiter.py": "import numpy as np\n\na = np.empty((2, 2)).flat\n\na.base\na.copy()\na.coords\na.index\n",
    "model.py": "class Net:\n    def forward(self, x):\n        return x\n",
    "imports.py": "import os\nimport sys\n\nprint(os.getcwd(), sys.argv)\n",
    "lib.py": "import torch\nimport torch.nn as nn\n\nlayer = nn.Linear(2, 2)\n",
    "distutils-precedence.pth": (
        "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') == 'local'; "
        "enabled and __import__('_distutils_hack').add_shim(); \n"
    ),
    "easy-install.pth": "./pkg-1.0-py3.12.egg\n/opt/lib/other\n",
    "Makefile": "all:\n\tpython -m build\n",
}


@pytest.mark.parametrize("name", sorted(_SOURCES))
def test_sources_and_path_files_are_text(name: str) -> None:
    ctx = _scan(name, _SOURCES[name].encode())
    assert not ctx.findings and not ctx.unverified, (ctx.formats, ctx.findings, ctx.unverified)
    assert ctx.formats == ["text"]


@pytest.mark.parametrize("name", ["setup.py", "x.pth", "README"])
def test_text_with_a_known_module_past_the_first_error_is_still_a_pickle(name: str) -> None:
    """The documented rule for text: a known module reached anywhere further on keeps it a pickle."""
    ctx = _scan(name, b"import numpy\n\n" + _CALL + b".")
    assert "LW-MODEL-001" in _high(ctx), (ctx.formats, ctx.findings, ctx.unverified)


def test_real_files_of_the_hunt_formats_in_a_folder(tmp_path: Path) -> None:
    """A folder scan gives data files their named reason, sources nothing, and a real model stays clean."""
    import pickle

    from loopwarden.checks.models.scanner import scan_paths

    (tmp_path / "audio.wav").write_bytes(_wav())
    (tmp_path / "db.sqlite").write_bytes(_sqlite(tmp_path))
    (tmp_path / "train.py").write_text(_SOURCES["imports.py"])
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    report = scan_paths([str(tmp_path)], jobs=1)
    verdicts = {Path(t.path).name: (t.verdict.value, t.reason) for t in report.targets}
    assert verdicts["train.py"] == ("clean", None)
    assert verdicts["model.pkl"] == ("clean", None)
    assert verdicts["audio.wav"][0] == "unverified" and "RIFF" in str(verdicts["audio.wav"][1])
    assert verdicts["db.sqlite"][0] == "unverified" and "SQLite" in str(verdicts["db.sqlite"][1])
