"""Round 18 of the internal red team: Arrow and Parquet data files beside a model.

pyarrow 0.14.0 to 14.0.0 unpickle the ``ARROW:extension:metadata`` of a field whose extension name is
``arrow.py_extension_type`` when they read a schema (CVE-2023-47248; confirmed with pyarrow 14.0.0 in a scratch
virtualenv: ``pq.read_table`` and ``ipc.open_file``/``open_stream`` ran the payload, which wrote a marker file).
pyarrow 14.0.1 to 20 do so after ``pa.PyExtensionType.set_auto_load(True)``; 21 removed the type. pyarrow reads a
Parquet or Arrow IPC file from its footer and never checks the first bytes (confirmed with pyarrow 26.0.1: a
Parquet file whose ``PAR1`` head is replaced by a JPEG or GIF magic, or an Arrow IPC file whose ``ARROW1`` head is
replaced by a PNG signature, reads back whole), so such a file scanned ``clean`` as an image.

The files are written here by pyarrow (a test dependency), under a class that only borrows the extension name:
nothing is unpickled by the test itself.
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
ipc = pytest.importorskip("pyarrow.ipc")

_MARKER = "r18-marker"  # relative: the loader runs in the test folder


class _Payload:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {_MARKER}",))


_PICKLE = pickle.dumps(_Payload(), protocol=2)


def _ext_type() -> Any:
    class Borrowed(pa.ExtensionType):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(pa.int64(), "arrow.py_extension_type")

        def __arrow_ext_serialize__(self) -> bytes:
            return _PICKLE

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type: Any, serialized: bytes) -> Any:
            return cls()

    return Borrowed()


def _table(*, malicious: bool, nested: bool = False) -> Any:
    if not malicious:
        return pa.table({"input_ids": pa.array([[1, 2], [3]]), "text": ["a", "b"]})
    arr = pa.ExtensionArray.from_storage(_ext_type(), pa.array([1, 2], pa.int64()))
    if nested:  # the field sits inside a struct: the schema's child fields carry it
        return pa.table({"row": pa.StructArray.from_arrays([arr, pa.array(["a", "b"])], ["x", "text"])})
    return pa.table({"x": arr, "text": ["a", "b"]})


def _parquet(table: Any) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _ipc_file(table: Any) -> bytes:
    buf = io.BytesIO()
    with ipc.new_file(buf, table.schema) as w:
        w.write_table(table)
    return buf.getvalue()


def _ipc_stream(table: Any) -> bytes:
    buf = io.BytesIO()
    with ipc.new_stream(buf, table.schema) as w:
        w.write_table(table)
    return buf.getvalue()


_JPEG = b"\xff\xd8\xff\xe0"
_GIF = b"GIF8"
_PNG = b"\x89PNG\r\n\x1a\n"


def _legacy_stream(data: bytes) -> bytes:
    """The stream without the continuation marker before its first message (pyarrow before 0.15 wrote that)."""
    assert data[:4] == b"\xff\xff\xff\xff"
    return data[4:]


def _safetensors_around(payload: bytes) -> bytes:
    """A valid safetensors file whose one uint8 tensor is ``payload``: its last bytes are the payload's."""
    import json
    import struct

    header = json.dumps({"w": {"dtype": "U8", "shape": [len(payload)], "data_offsets": [0, len(payload)]}})
    raw = header.encode() + b" " * (-len(header) % 8)
    return struct.pack("<Q", len(raw)) + raw + payload


def _attacks() -> dict[str, dict[str, bytes]]:
    bad = _table(malicious=True)
    nested = _table(malicious=True, nested=True)
    pqd, fd = _parquet(bad), _ipc_file(bad)
    return {
        "r18_parquet_py_extension": {"r18_train.parquet": pqd},
        "r18_parquet_py_extension_nested": {"r18_train.parquet": _parquet(nested)},
        "r18_arrow_file_py_extension": {"r18_train.arrow": fd},
        "r18_arrow_stream_py_extension": {"r18_data-00000-of-00001.arrow": _ipc_stream(bad)},
        "r18_feather_py_extension": {"r18_train.feather": _ipc_file(nested)},
        "r18_parquet_as_jpeg_py_extension": {"r18_train.parquet": _JPEG + pqd[4:]},
        "r18_parquet_as_gif_py_extension": {"r18_cover.gif": _GIF + pqd[4:]},
        "r18_arrow_file_as_png_py_extension": {"r18_train.arrow": _PNG + fd[8:]},
        "r18_arrow_legacy_stream_py_extension": {
            "r18_cache-train.arrow": _legacy_stream(_ipc_stream(nested))
        },
        "r18_parquet_inside_safetensors_py_extension": {"r18_train.parquet": _safetensors_around(pqd)},
        "r18_arrow_file_inside_safetensors_py_extension": {"r18_train.arrow": _safetensors_around(fd)},
    }


def bench_cases() -> dict[str, dict[str, bytes]]:
    return _attacks()


def _scan(path: Path) -> TargetResult:
    return next(iter(scan_paths([str(path)], jobs=1).targets))


def _write(tmp_path: Path, files: dict[str, bytes]) -> Path:
    ((name, data),) = files.items()
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(_attacks()))
def test_pickled_arrow_extension_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round the JPEG- and PNG-headed files and the safetensors polyglots scanned ``clean``; the plain
    Parquet, Arrow IPC file and stream, Feather and GIF-headed ones ``unverified`` with no finding (a data file):
    nothing said that pyarrow up to 14.0.0 unpickles a field's extension metadata. Now the field is reported and
    the pickle it holds analysed (os.system: critical)."""
    res = _scan(_write(tmp_path, _attacks()[case]))
    assert res.verdict is not Verdict.CLEAN, res
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-051"]
    assert len(hits) == 1 and hits[0].severity is Severity.HIGH, res.findings
    assert res.max_severity() is Severity.CRITICAL, res.findings
    assert any(f.rule_id == "LW-MODEL-001" and "system" in f.message for f in res.findings), res.findings


@pytest.mark.parametrize(
    ("case", "content"),
    [
        ("r18_parquet_as_jpeg_py_extension", "Parquet"),
        ("r18_parquet_as_gif_py_extension", "Parquet"),
        ("r18_arrow_file_as_png_py_extension", "Arrow IPC file"),
        ("r18_parquet_inside_safetensors_py_extension", "Parquet"),
        ("r18_arrow_file_inside_safetensors_py_extension", "Arrow IPC file"),
    ],
)
def test_image_headed_table_is_also_a_data_file(tmp_path: Path, case: str, content: str) -> None:
    """An image head, or a safetensors file whose last tensor ends with the table, no longer hides the footer
    pyarrow reads (these scanned ``clean``: a JPEG, a PNG, a valid safetensors file)."""
    res = _scan(_write(tmp_path, _attacks()[case]))
    assert any(f.rule_id == "LW-MODEL-029" and f.evidence.get("content") == content for f in res.findings), (
        res.findings
    )


def test_benign_image_headed_table_is_not_clean(tmp_path: Path) -> None:
    """A Parquet file behind a JPEG head (scanned clean before) is a data file pyarrow reads, not an image."""
    pqd = _parquet(_table(malicious=False))
    res = _scan(_write(tmp_path, {"cover.jpg": _JPEG + pqd[4:]}))
    assert res.verdict is not Verdict.CLEAN, res
    assert not any(f.rule_id == "LW-MODEL-051" for f in res.findings), res.findings


@pytest.mark.parametrize("kind", ["parquet", "file", "stream"])
def test_benign_tables_get_no_extension_finding(tmp_path: Path, kind: str) -> None:
    """Real pyarrow files without the pickled type (including registered extension types such as
    ``datasets``' Array2D, whose metadata is JSON) stay as they were: an unverified data file, no finding."""
    table = _table(malicious=False)

    class Json2D(pa.ExtensionType):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(
                pa.list_(pa.list_(pa.int32())), "datasets.features.features.Array2DExtensionType"
            )

        def __arrow_ext_serialize__(self) -> bytes:
            return b'[[2, 2], "int32"]'

        @classmethod
        def __arrow_ext_deserialize__(cls, storage_type: Any, serialized: bytes) -> Any:
            return cls()

    storage = pa.array([[[1, 2], [3, 4]]], pa.list_(pa.list_(pa.int32())))
    table = table.slice(0, 1).append_column("img", pa.ExtensionArray.from_storage(Json2D(), storage))
    data = {"parquet": _parquet, "file": _ipc_file, "stream": _ipc_stream}[kind](table)
    res = _scan(_write(tmp_path, {f"train.{'parquet' if kind == 'parquet' else 'arrow'}": data}))
    assert res.verdict is Verdict.UNVERIFIED, res
    assert not res.findings, res.findings


def test_benign_images_stay_clean(tmp_path: Path) -> None:
    """An image whose last bytes are no table footer is still media."""
    png = _PNG + b"\x00\x00\x00\rIHDR" + b"\x00" * 17 + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    assert _scan(_write(tmp_path, {"logo.png": png})).verdict is Verdict.CLEAN


_OLD_PYARROW = os.environ.get("LOOPWARDEN_PYARROW14_PYTHON", "")


@pytest.mark.skipif(
    not _OLD_PYARROW, reason="set LOOPWARDEN_PYARROW14_PYTHON to a python with pyarrow 14.0.0"
)
@pytest.mark.parametrize("case", sorted(_attacks()))
def test_pyarrow_14_unpickles(tmp_path: Path, case: str) -> None:
    """The real loader: pyarrow 14.0.0 runs the payload when it reads the schema."""
    path = _write(tmp_path, _attacks()[case])
    marker = tmp_path / "run" / _MARKER
    marker.parent.mkdir()
    code = (
        "import sys, pyarrow as pa, pyarrow.parquet as pq, pyarrow.ipc as ipc\n"
        "p = sys.argv[1]\n"
        "for read in (lambda: pq.read_schema(p), lambda: ipc.open_file(p).schema,"
        " lambda: ipc.open_stream(p).schema):\n"
        "    try:\n        read()\n    except Exception:\n        pass\n"
    )
    subprocess.run(
        [_OLD_PYARROW, "-c", code, str(path)],
        cwd=marker.parent,
        check=False,
        timeout=120,
        capture_output=True,
    )
    assert marker.exists()


@pytest.mark.parametrize("kind", ["parquet", "file", "stream"])
def test_extension_name_as_text_is_no_finding(tmp_path: Path, kind: str) -> None:
    """The name in a column name or a metadata value is no extension type: nothing is unpickled."""
    table = pa.table({"arrow.py_extension_type": [1, 2]}).replace_schema_metadata(
        {"note": "arrow.py_extension_type", "ARROW:extension:name": "arrow.py_extension_type"}
    )
    data = {"parquet": _parquet, "file": _ipc_file, "stream": _ipc_stream}[kind](table)
    res = _scan(_write(tmp_path, {"train.parquet" if kind == "parquet" else "train.arrow": data}))
    assert res.verdict is Verdict.UNVERIFIED, res
    assert not res.findings, res.findings


def _shared_children_stream(levels: int) -> bytes:
    """An Arrow IPC stream whose schema is a chain of fields where each field lists the next one twice as its
    children (a flatbuffer may share a table): a walk that follows every reference visits 2**levels fields."""
    import struct

    body = bytearray(4)  # the root offset, set below

    def table(slots: list[int], size: int) -> int:
        """A vtable with ``slots`` then its table of ``size`` bytes (soffset included); the table's position."""
        vt = len(body)
        body.extend(struct.pack(f"<{2 + len(slots)}H", 4 + 2 * len(slots), size, *slots))
        body.extend(bytes(-len(body) % 4))
        at = len(body)
        body.extend(struct.pack("<i", at - vt) + bytes(size - 4))
        return at

    def point(slot: int, target: int) -> None:
        struct.pack_into("<I", body, slot, target - slot)

    msg = table([0, 0, 4], 8)  # Message.header
    struct.pack_into("<I", body, 0, msg)
    schema = table([0, 4], 8)  # Schema.fields
    point(msg + 4, schema)
    vec = len(body)
    body.extend(struct.pack("<I", 1) + bytes(4))
    point(schema + 4, vec)
    pending = [vec + 4]
    for _ in range(levels):
        field = table([0, 0, 0, 0, 0, 4], 8)  # Field.children
        for slot in pending:
            point(slot, field)
        children = len(body)
        body.extend(struct.pack("<I", 2) + bytes(8))
        point(field + 4, children)
        pending = [children + 4, children + 8]
    last = table([0, 0, 0, 0, 0, 0], 4)  # no children
    for slot in pending:
        point(slot, last)
    body.extend(b"arrow.py_extension_type")
    body.extend(bytes(-len(body) % 8))
    return b"\xff\xff\xff\xff" + struct.pack("<i", len(body)) + bytes(body)


def test_shared_schema_tables_are_walked_within_a_bound(tmp_path: Path) -> None:
    """A schema whose fields share their children (2**60 paths) is no denial of service: the walk stops at its
    bound, and the stream that names the type is still reported (its pickle not located)."""
    import time

    data = _shared_children_stream(60)
    start = time.monotonic()
    res = _scan(_write(tmp_path, {"train.arrow": data}))
    assert time.monotonic() - start < 20
    assert any(f.rule_id == "LW-MODEL-051" and "not analysed" in f.message for f in res.findings), (
        res.findings
    )


def test_shared_schema_tables_parse(tmp_path: Path) -> None:
    """The same construction with few levels is a schema the reader walks whole (and finds no pickled type)."""
    res = _scan(_write(tmp_path, {"train.arrow": _shared_children_stream(3)}))
    assert not res.findings, res.findings


@pytest.mark.parametrize("container", ["zip-stored", "zip-deflated-large", "tar.gz"])
def test_cache_file_in_an_archive(tmp_path: Path, container: str) -> None:
    """A ``datasets`` cache file shipped in an archive: a deflated member over 1 MiB cannot seek and has no
    known size while it is read, and its first message is still read (it scanned ``unverified`` with no
    finding before)."""
    import tarfile
    import zipfile

    data = _ipc_stream(_table(malicious=True))
    if container == "zip-deflated-large":
        data += bytes(3 << 20)  # after the end-of-stream marker: pyarrow stops before it
    path = tmp_path / ("cache.tar.gz" if container == "tar.gz" else "cache.zip")
    if container == "tar.gz":
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo("train/data-00000-of-00001.arrow")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    else:
        method = zipfile.ZIP_STORED if container == "zip-stored" else zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(path, "w", compression=method) as zf:
            zf.writestr("train/data-00000-of-00001.arrow", data)
    res = _scan(path)
    assert any(f.rule_id == "LW-MODEL-051" for f in res.findings), res.findings
    assert res.max_severity() is Severity.CRITICAL, res.findings
