"""Round 14c: the two relaxations of round 14 attacked (raw data a model names, cleared when it is unverified only
by misreadings; text that libraries ship).

A compressed stream whose integrity check fails is a misreading only if no reader got anything out of it first. A
decompressor call that raises loses its output, and the scanner handed the decompressor whole 256 KiB pieces, so a
small gzip/bz2/xz file whose CRC (or a late block) is broken decompressed to nothing in the scan while Python's gzip
module returns all of the data before it checks the CRC, and bz2/lzma readers return earlier blocks: ``pickle.load``
of ``gzip.open`` (``bz2.open``, ``lzma.open``) ran a payload from a file reported clean beside an ONNX model naming
it as external data. The broken stream is now decompressed again one compressed byte at a time, and what comes out
is scanned.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import pickle
import random
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import _container_payloads as cp
import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

onnx = pytest.importorskip("onnx")


_model_naming = cp.onnx_naming_raw_data


def _scan(folder: Path) -> dict[str, TargetResult]:
    return {Path(t.path).name: t for t in scan_paths([str(folder)], jobs=1).targets}


class _Touch:
    """Pickles as ``os.system("touch <marker>")``, a harmless effect a real loader shows."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def _pad(n: int = 20000) -> bytes:
    rnd = random.Random(14)
    return bytes(rnd.getrandbits(8) for _ in range(n))


def _broken_gzip(body: bytes) -> bytes:
    raw = bytearray(gzip.compress(body))
    raw[-8] ^= 0xFF  # the CRC-32 of the trailer
    return bytes(raw)


def _broken_zlib(body: bytes) -> bytes:
    raw = bytearray(zlib.compress(body))
    raw[-1] ^= 0xFF  # the Adler-32 trailer
    return bytes(raw)


def _broken_bz2(body: bytes) -> bytes:
    raw = bytearray(bz2.compress(body))
    raw[-3] ^= 0xFF  # the stream CRC
    return bytes(raw)


def _broken_xz(body: bytes) -> bytes:
    raw = bytearray(lzma.compress(body))
    raw[-20] ^= 0xFF  # inside the block check / index
    return bytes(raw)


_BREAKERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": _broken_gzip,
    "zlib": _broken_zlib,
    "bz2": _broken_bz2,
    "xz": _broken_xz,
}


@pytest.mark.parametrize("kind", sorted(_BREAKERS))
def test_payload_pickle_in_a_compressed_stream_with_a_broken_check_stays_critical(
    tmp_path: Path, kind: str
) -> None:
    body = pickle.dumps(_Touch(str(tmp_path / "marker")), protocol=2) + _pad()
    _model_naming(tmp_path, {"weights.bin": _BREAKERS[kind](body)})
    res = _scan(tmp_path)["weights.bin"]
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.rule_id == "LW-MODEL-001" and f.severity is Severity.CRITICAL for f in res.findings), (
        res.findings
    )


@pytest.mark.parametrize("kind", sorted(_BREAKERS))
def test_payload_pickle_in_a_broken_stream_is_reported_when_no_model_names_it(
    tmp_path: Path, kind: str
) -> None:
    body = pickle.dumps(_Touch(str(tmp_path / "marker")), protocol=4) + _pad(3000)
    (tmp_path / "weights.bin").write_bytes(_BREAKERS[kind](body))
    res = _scan(tmp_path)["weights.bin"]
    assert any(f.rule_id == "LW-MODEL-001" for f in res.findings), res


@pytest.mark.parametrize(
    ("kind", "opener"), [("gzip", "gzip.open"), ("bz2", "bz2.open"), ("xz", "lzma.open")]
)
def test_real_stream_reader_runs_the_payload_before_the_broken_check(
    tmp_path: Path, kind: str, opener: str
) -> None:
    """What the tests above guard: the standard library's readers hand pickle.load the data before the error."""
    marker = tmp_path / "marker"
    path = tmp_path / "weights.bin"
    path.write_bytes(_BREAKERS[kind](pickle.dumps(_Touch(str(marker)), protocol=2) + _pad()))
    module = opener.split(".")[0]
    code = f"import {module}, pickle; pickle.load({opener}({str(path)!r}))"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    assert marker.exists()


@pytest.mark.parametrize("kind", sorted(_BREAKERS))
def test_broken_stream_of_plain_bytes_named_as_data_stays_clean(tmp_path: Path, kind: str) -> None:
    """No false positive: a broken stream whose output is no format is still a misreading of raw data."""
    _model_naming(tmp_path, {"weights.bin": _BREAKERS[kind](b"\x00\x01" + _pad(5000))})
    results = _scan(tmp_path)
    assert results["weights.bin"].verdict is Verdict.CLEAN, results["weights.bin"]
    assert results["model.onnx"].verdict is Verdict.CLEAN


def test_broken_stream_past_the_replay_bound_stays_unverified(tmp_path: Path) -> None:
    """A stream that decompresses past the byte-by-byte replay bound before it breaks is not cleared."""
    body = os.urandom(400 << 10)
    _model_naming(tmp_path, {"weights.bin": _broken_gzip(body)})
    res = _scan(tmp_path)["weights.bin"]
    assert res.verdict is Verdict.UNVERIFIED, res


# ------------------------------------------------------------------------------------------ hidden os/io/re names

_WORDS = "perché\nquesto\nquello\n".encode()


@pytest.mark.parametrize(
    "hidden",
    [
        # io's module __getattr__ (Python 3.10, 3.11) returns builtins.open; vars(io) lacks it in a fresh process
        b"cio\nOpenWrapper\n(S'out.txt'\nS'w'\ntR.",
        # macOS/BSD file-mode functions absent from a Linux scanner's os
        b"cos\nlchmod\n(S'out.txt'\nI511\ntR.",
        b"cos\nchflags\n(S'out.txt'\nI0\ntR.",
        # Python 3.14's os.reload_environ / readinto: absent from a 3.11 scanner's os
        b"cos\nreadinto\n(I0\nI0\ntR.",
    ],
)
def test_hidden_names_that_resolve_elsewhere_keep_a_word_list_reported(tmp_path: Path, hidden: bytes) -> None:
    """A word list on which a loader fails at once, with a hidden pickle naming an io/os attribute that the
    scanner's own module lacks but a loader's find_class resolves (another platform, version, or a module
    __getattr__): the relaxation for io/os/re names that cannot resolve must not clear it."""
    (tmp_path / "words.txt").write_bytes(_WORDS + hidden + b"\nzero\n")
    res = _scan(tmp_path)["words.txt"]
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.severity >= Severity.HIGH for f in res.findings), res.findings


def test_hidden_io_openwrapper_pickle_opens_a_file_in_this_python(tmp_path: Path) -> None:
    """What the first case guards, where io.OpenWrapper still resolves: the hidden pickle, loaded, opens a file."""
    import io

    if not hasattr(io, "__getattr__"):
        pytest.skip("io.OpenWrapper is gone from this Python")
    out = tmp_path / "opened.txt"
    hidden = tmp_path / "hidden.pkl"
    hidden.write_bytes(b"cio\nOpenWrapper\n(S'" + str(out).encode() + b"'\nS'w'\ntR.")
    code = f"import pickle; pickle.load(open({str(hidden)!r}, 'rb'))"
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, timeout=60, check=False)
    assert out.exists()


# ------------------------------------------------------------------------------------- safetensors header encodings


def _safetensors(header: bytes) -> bytes:
    import struct

    return struct.pack("<Q", len(header)) + header + b"\x01\x02\x03\x04"


_HEADER = {
    "__metadata__": {"format": "pt", "note": "x"},
    "w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
}


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-32-le"])
def test_safetensors_header_in_utf16_or_utf32_is_no_misreading(tmp_path: Path, encoding: str) -> None:
    """A header of ASCII JSON in UTF-16/32 is valid UTF-8 (NULs between the characters) but no JSON to the Rust
    reader; json.loads of the header bytes (Python readers: json.loads(f.read(n))) detects the encoding and loads
    it. It was a misreading, so clean as external data; it is a parser differential (LW-MODEL-037)."""
    import json

    raw = _safetensors(json.dumps(_HEADER).encode(encoding))
    _model_naming(tmp_path, {"weights.bin": raw})
    res = _scan(tmp_path)["weights.bin"]
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.rule_id == "LW-MODEL-037" for f in res.findings), res.findings
    # what the lenient reader does with it
    assert json.loads(raw[8:-4]) == _HEADER


def test_safetensors_header_json_once_invalid_bytes_are_dropped_is_no_misreading(tmp_path: Path) -> None:
    """Invalid UTF-8 between JSON tokens: replaced it breaks the JSON, dropped (errors="ignore") it does not."""
    import json

    text = json.dumps(_HEADER).encode()
    raw = _safetensors(text[:1] + b"\xff" + text[1:])
    _model_naming(tmp_path, {"weights.bin": raw})
    res = _scan(tmp_path)["weights.bin"]
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.rule_id == "LW-MODEL-037" for f in res.findings), res.findings


# ------------------------------------------------------------------------------- pickles inside MessagePack values


def _np_object_array(data: bytes) -> dict[bytes, object]:
    """How msgpack_numpy encodes an object array: its decoder hands ``data`` to pickle.loads."""
    return {b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1], b"data": data}


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_msgpack_numpy_object_array_pickle_is_reported(tmp_path: Path, protocol: int) -> None:
    msgpack = pytest.importorskip("msgpack")
    payload = pickle.dumps(_Touch(str(tmp_path / "marker")), protocol=protocol)
    (tmp_path / "arrays.msgpack").write_bytes(msgpack.packb({"w": _np_object_array(payload)}))
    res = _scan(tmp_path)["arrays.msgpack"]
    assert any(f.rule_id == "LW-MODEL-001" and f.severity is Severity.CRITICAL for f in res.findings), res


def test_broken_msgpack_named_as_data_with_a_pickle_before_the_break_is_reported(tmp_path: Path) -> None:
    """The object hook runs for each map as it completes: a byte after the value (ExtraData) comes too late. The
    file was clean as ONNX external data (a MessagePack structure error is a misreading)."""
    msgpack = pytest.importorskip("msgpack")
    payload = pickle.dumps(_Touch(str(tmp_path / "marker")), protocol=2)
    raw = msgpack.packb({"w": _np_object_array(payload)}) + b"\xc1"
    _model_naming(tmp_path, {"weights.bin": raw})
    res = _scan(tmp_path)["weights.bin"]
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.rule_id == "LW-MODEL-001" for f in res.findings), res.findings
    # the loader: msgpack_numpy.decode's branch for object arrays, as the object hook
    path = tmp_path / "weights.bin"
    code = (
        "import msgpack, pickle\n"
        "def hook(o):\n"
        "    return pickle.loads(o[b'data']) if o.get(b'kind') == b'O' else o\n"
        f"msgpack.unpackb(open({str(path)!r}, 'rb').read(), object_hook=hook)"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    assert (tmp_path / "marker").exists()


def test_msgpack_with_numeric_arrays_and_text_values_stays_clean(tmp_path: Path) -> None:
    """No false positive: msgpack_numpy's numeric arrays (raw bytes) and multi-line text values."""
    msgpack = pytest.importorskip("msgpack")
    np = pytest.importorskip("numpy")
    arr = np.arange(64, dtype="<f4")
    value = {
        "w": {b"nd": True, b"type": "<f4", b"kind": b"", b"shape": [64], b"data": arr.tobytes()},
        "b": {b"nd": True, b"type": "<i8", b"kind": b"", b"shape": [8], b"data": np.arange(8).tobytes()},
        "doc": "converted from the original checkpoint\nlicence: apache-2.0\ncontact: nobody\n",
    }
    (tmp_path / "arrays.msgpack").write_bytes(msgpack.packb(value))
    res = _scan(tmp_path)["arrays.msgpack"]
    assert res.verdict is Verdict.CLEAN, res


# ----------------------------------------------------------------------------------- zips at the end of raw data


def _zip_with_payload(tmp_path: Path, *, zip64: bool) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    saved = zipfile.ZIP_FILECOUNT_LIMIT
    if zip64:
        zipfile.ZIP_FILECOUNT_LIMIT = 0  # zipfile then writes the zip64 end record and locator
    try:
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps(_Touch(str(tmp_path / "marker")), protocol=2))
    finally:
        zipfile.ZIP_FILECOUNT_LIMIT = saved
    return buf.getvalue()


def _tensor_bytes() -> bytes:
    np = pytest.importorskip("numpy")
    return bytes(np.random.default_rng(3).standard_normal(256).astype("<f4").tobytes())


def _zip_opened(path: Path) -> bool:
    code = f"import zipfile, pickle; pickle.load(zipfile.ZipFile({str(path)!r}).open('archive/data.pkl'))"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    return (path.parent / "marker").exists()


def _assert_found_and_opened(tmp_path: Path, raw: bytes) -> None:
    """``raw`` named as ONNX external data: reported critical, and zipfile opens it and runs its pickle."""
    _model_naming(tmp_path, {"weights.bin": raw})
    res = _scan(tmp_path)["weights.bin"]
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.rule_id == "LW-MODEL-001" and f.severity is Severity.CRITICAL for f in res.findings), (
        res.findings
    )
    assert _zip_opened(tmp_path / "weights.bin")


def test_zip64_archive_behind_raw_data_is_found(tmp_path: Path) -> None:
    """zipfile reads the zip64 end record before the zip64 locator and ignores the end record's own sizes: the
    search for a zip at the end took the directory size from the end record, found none, and the file was a
    misreading (no format), clean as ONNX external data; zipfile.ZipFile opened the archive and its pickle ran."""
    raw = _tensor_bytes() + _zip_with_payload(tmp_path, zip64=True)
    _assert_found_and_opened(tmp_path, raw)


def test_zip_end_record_spelling_its_signature_again_is_found(tmp_path: Path) -> None:
    """zipfile takes the final 22 bytes as the end record first; the search for the last signature found a later
    one inside that record (its member counts spell PK\\x05\\x06) and gave up."""
    body = bytearray(_zip_with_payload(tmp_path, zip64=False))
    body[-14:-10] = b"PK\x05\x06"
    raw = _tensor_bytes() + bytes(body)
    _assert_found_and_opened(tmp_path, raw)


def test_plain_zip64_archive_is_analysed(tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(_zip_with_payload(tmp_path, zip64=True))
    res = _scan(tmp_path)["a.zip"]
    assert any(f.rule_id == "LW-MODEL-001" for f in res.findings), res
