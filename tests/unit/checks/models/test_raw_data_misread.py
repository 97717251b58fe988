"""Raw tensor files that an ONNX model names as external data, whose random bytes begin like another format.

Random float or int8 bytes sometimes begin like a zlib or gzip header, a MessagePack map, a protobuf or another
format; that format's reader then rejects them. Such a rejection is a *misreading* (``ScanContext.fail(...,
misread=True)``): every real loader of that format rejects the same bytes without acting on them. A file a model
names as its data is clean when all of its reasons are misreadings; a finding, a bound hit or a pickle stream that
could not be analysed to its end keeps it reported.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import pickle
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "corpus"))
import _container_payloads as cp

onnx = pytest.importorskip("onnx")
np = pytest.importorskip("numpy")


_model_naming = cp.onnx_naming_raw_data


def _scan(folder: Path, jobs: int = 1) -> dict[str, TargetResult]:
    return {Path(t.path).name: t for t in scan_paths([str(folder)], jobs=jobs).targets}


def _random_raw(seed: int) -> bytes:
    """Small raw tensor bytes: float32 (normal and uniform), float16 or int8, as exporters write them."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(16, 600))
    kind = seed % 4
    if kind == 0:
        return bytes(rng.standard_normal(n).astype("<f4").tobytes())
    if kind == 1:
        return bytes(rng.standard_normal(n).astype("<f2").tobytes())
    if kind == 2:
        return bytes(rng.integers(-128, 128, n).astype("i1").tobytes())
    return bytes(rng.random(n).astype("<f4").tobytes())


def test_many_random_raw_tensors_named_as_external_data_are_never_unverified(tmp_path: Path) -> None:
    """3,000 seeded random tensors: none stays unverified (before, a MessagePack misreading left about one in a few
    hundred so). A file that a pickle loader reads from its first byte with something found in it is kept
    reported: such a finding is never cleared by being named as data. Bytes on which a stock loader stops at once
    are no format: an invalid opcode, PROTO then no opcode, an EXT code (the registry is empty)."""
    from loopwarden.checks.models.dispatch import _OPCODE_BYTES

    files = {f"t{i}.bin": _random_raw(i) for i in range(3000)}
    _model_naming(tmp_path, files)
    results = _scan(tmp_path, jobs=2)  # the forked workers hand the misreading flag back too
    assert results["model.onnx"].verdict is Verdict.CLEAN
    assert [n for n, r in results.items() if r.verdict is Verdict.UNVERIFIED and not r.findings] == []
    kept = {n: r for n, r in results.items() if r.verdict is not Verdict.CLEAN}
    for name, r in kept.items():
        assert files[name][0] in _OPCODE_BYTES, (name, r.reason, r.findings)
        assert {f.rule_id for f in r.findings} & {"LW-MODEL-010", "LW-MODEL-012"}, (name, r.findings)
    # with these seeds none: t1730 opens ") } EXT2", where a stock unpickler stops (unregistered extension code)
    assert kept == {}, sorted(kept)


_EXT_HEAD = b")}\x83\x01\x02"  # EMPTY_TUPLE, EMPTY_DICT, EXT2 code 513


def test_raw_data_whose_pickle_reading_stops_at_an_ext_code_is_data(tmp_path: Path) -> None:
    """A stock unpickler raises at an EXT code (copyreg's extension registry is empty unless a program fills it):
    bytes that reach one before any name are no format, clean when a model names them as data."""
    raw = _EXT_HEAD + _tail()
    with pytest.raises(ValueError, match="unregistered extension code"):
        pickle.loads(raw)
    _model_naming(tmp_path, {"t.bin": raw})
    result = _scan(tmp_path)["t.bin"]
    assert result.verdict is Verdict.CLEAN and not result.findings, (result.reason, result.findings)


def test_an_ext_code_in_a_file_named_as_a_pickle_or_after_a_name_stays_reported(tmp_path: Path) -> None:
    """Named as a pickle, the bytes are judged as one (EXT is LW-MODEL-010); a name reached before the EXT code is
    imported by the loader, so the file stays a pickle."""
    (tmp_path / "model.pkl").write_bytes(_EXT_HEAD + b".")
    (tmp_path / "after.bin").write_bytes(b"cos\nsystem\n" + _EXT_HEAD + b".")
    results = _scan(tmp_path)
    assert any(f.rule_id == "LW-MODEL-010" for f in results["model.pkl"].findings), results["model.pkl"]
    assert any(f.severity is Severity.CRITICAL for f in results["after.bin"].findings), results["after.bin"]


def _tail(seed: int = 7, n: int = 256) -> bytes:
    return bytes(np.random.default_rng(seed).standard_normal(n).astype("<f4").tobytes())


def _rejects(load: Callable[[bytes], Any], raw: bytes) -> bool:
    try:
        load(raw)
    except Exception:  # any error of the real loader is its rejection
        return True
    return False


def _msgpack_load(raw: bytes) -> Any:
    msgpack = pytest.importorskip("msgpack")
    return msgpack.unpackb(raw, raw=False)  # what flax.serialization.msgpack_restore calls


def _onnx_load(raw: bytes) -> Any:
    return onnx.load_model_from_string(raw)


def _protobuf_wire(raw: bytes) -> Any:
    """Any protobuf parser's reading of the wire format (TensorFlow, which parses its SavedModel whole with the C++
    parser, is not installed here): a length past the end of the message is rejected whatever the message type."""
    from google.protobuf import descriptor_pb2

    return descriptor_pb2.FileDescriptorProto.FromString(raw)


def _safetensors_load(raw: bytes) -> Any:
    st = pytest.importorskip("safetensors.numpy")
    return st.load(raw)


def _zstd_load(raw: bytes) -> Any:
    zstandard = pytest.importorskip("zstandard")
    return zstandard.ZstdDecompressor().decompressobj().decompress(raw)


_MISREADINGS: dict[str, tuple[bytes, Callable[[bytes], Any] | None]] = {
    # head -> the real loader of the format it looks like (None: not installed here, see the test)
    "zlib-fast": (b"\x78\x01", zlib.decompress),
    "zlib-default": (b"\x78\x9c", zlib.decompress),
    "zlib-best": (b"\x78\xda", zlib.decompress),
    "zlib-broken-block": (b"\x78\x9c\x1f\x3c\x93\xdd", zlib.decompress),
    "gzip": (b"\x1f\x8b\x08\x00", gzip.decompress),
    "bzip2": (b"BZh9", bz2.decompress),
    "xz": (b"\xfd7zXZ\x00", lzma.decompress),
    "zstd": (b"\x28\xb5\x2f\xfd", _zstd_load),
    # a map with a string key whose value runs past the end of the file
    "msgpack-past-end": (b"\x81\xa3abc\xc6\xff\xff\xff\x00", _msgpack_load),
    # one whole value, then more bytes (msgpack raises ExtraData)
    "msgpack-extra-bytes": (b"\x81\xa1a\x01", _msgpack_load),
    # a type byte MessagePack never uses
    "msgpack-bad-type": (b"\x82\xa1a\x01\xc1", _msgpack_load),
    # the head random float16 data took in the search: a map whose values read past the end
    "msgpack-random-head": (bytes.fromhex("dfbe59b5ebb3ca3822b6c8b3"), _msgpack_load),
    # an XGBoost UBJSON object whose first value has a byte of no UBJSON type
    "ubjson-bad-type": (b"{U\x03abc\xff", None),
    # ir_version, then a graph longer than the file (random float16 bytes began so: 08 33 3a 40 ...)
    "onnx-graph-past-end": (b"\x08\x07\x3a\xff\xff\x03", _onnx_load),
    "onnx-field-zero-in-graph": (b"\x08\x07\x3a\x02\x00\x01", _onnx_load),
    # random float16 bytes began so: a SavedModel whose meta graph (field 2) is longer than the file
    "tf-saved-model-past-end": (bytes.fromhex("12bc233ae83cf4bcd63a682d"), _protobuf_wire),
    # int64 tensors of small values: a first value that fits the file, then a value whose low byte is "{"
    # (about one small int64 file in 256); the header is then not UTF-8, or not JSON
    "safetensors-not-utf8": (
        bytes.fromhex("2000000000000000 7b92000000000000 e803000000000000"),
        _safetensors_load,
    ),
    "safetensors-not-json": (
        bytes.fromhex("1000000000000000 7b4a000000000000 0500000000000000"),
        _safetensors_load,
    ),
}


@pytest.mark.parametrize("kind", sorted(_MISREADINGS))
def test_hand_built_misreadings_named_as_external_data_are_clean(tmp_path: Path, kind: str) -> None:
    """Each head a random tensor can take, and on which the format's reader gives up: unverified alone, clean when
    a model names the file as data; and the real loader of that format rejects the same bytes."""
    head, load = _MISREADINGS[kind]
    raw = head + _tail()
    if load is not None:
        assert _rejects(load, raw), kind
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "T0").write_bytes(raw)
    (only,) = _scan(alone).values()
    assert only.verdict is Verdict.UNVERIFIED and not only.findings, only
    named = tmp_path / "named"
    named.mkdir()
    _model_naming(named, {"T0": raw})
    results = _scan(named)
    assert results["T0"].verdict is Verdict.CLEAN, results["T0"].reason
    assert results["model.onnx"].verdict is Verdict.CLEAN


def test_a_real_pickle_with_a_payload_named_as_external_data_is_flagged(tmp_path: Path) -> None:
    payload = b"\x80\x04cos\nsystem\n(S'echo pwned'\ntR."
    _model_naming(tmp_path, {"T0": payload + _tail()})
    r = _scan(tmp_path)["T0"]
    assert r.verdict is not Verdict.CLEAN
    assert r.max_severity() is Severity.CRITICAL or r.max_severity() is Severity.HIGH, r.findings


def test_a_safetensors_header_that_parsers_read_differently_is_kept(tmp_path: Path) -> None:
    """A header that is JSON once its invalid UTF-8 is replaced (a lenient reader loads it, the Rust one refuses it)
    is no misreading: the finding stays when a model names the file as data."""
    header = b'{"w\xff": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]}}'
    raw = len(header).to_bytes(8, "little") + header + b"\x00" * 4
    _model_naming(tmp_path, {"T0": raw})
    r = _scan(tmp_path)["T0"]
    assert r.verdict is not Verdict.CLEAN
    assert {f.rule_id for f in r.findings} == {"LW-MODEL-037"}, r.findings


def test_misreadings_of_large_streamed_files_are_clean_too(tmp_path: Path) -> None:
    """Over 1 MiB a file is streamed, not read whole: the same readers mark the same misreadings."""
    tail = bytes(np.random.default_rng(3).standard_normal(300_000).astype("<f4").tobytes())
    files = {
        k: _MISREADINGS[k][0] + tail for k in ("msgpack-past-end", "zlib-default", "onnx-graph-past-end")
    }
    _model_naming(tmp_path, files)
    assert {n: r.verdict for n, r in _scan(tmp_path).items()} == dict.fromkeys(
        [*files, "model.onnx"], Verdict.CLEAN
    )


def test_a_pickle_payload_behind_a_misread_head_is_flagged(tmp_path: Path) -> None:
    """LONG1 with a 161-byte argument is also a MessagePack map (0x8a) whose first key is a string (0xa1): the
    MessagePack reading is a misreading, but a pickle loader runs the file from byte 0, and that reading's
    finding keeps the file reported when a model names it as data."""
    marker = tmp_path / "marker"
    raw = b"\x8a\xa1" + b"\x01" * 161 + b"0" + b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    _model_naming(tmp_path, {"T0": raw})
    assert _loader_runs_it(f"pickle.load(open({str(tmp_path / 'T0')!r}, 'rb'))", marker)
    r = _scan(tmp_path)["T0"]
    assert r.verdict is not Verdict.CLEAN
    assert r.max_severity() is Severity.CRITICAL, r.findings


def _loader_runs_it(load: str, marker: Path) -> bool:
    """Whether ``load`` (Python, with gzip and pickle imported) run in a child creates ``marker`` (removed after)."""
    import subprocess

    code = f"import gzip, pickle; {load}"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return ran


def test_a_truncated_pickle_named_as_external_data_stays_unverified(tmp_path: Path) -> None:
    """A pickle loader runs such a stream from byte 0: a stream that could not be analysed to its end is no
    misreading, whatever names it as data."""
    import pickle

    stream = pickle.dumps({"weights": [float(i) for i in range(64)], "name": "layer"}, protocol=4)
    _model_naming(tmp_path, {"T0": stream[: len(stream) // 2]})
    r = _scan(tmp_path)["T0"]
    assert r.verdict is Verdict.UNVERIFIED, r


def test_a_payload_before_a_broken_compressed_stream_is_flagged(tmp_path: Path) -> None:
    """``pickle.load(gzip.open(path))`` acts on what did decompress before the stream breaks (it stops at the
    pickle's STOP and never reads the broken tail): the misreading of that tail does not clear what was found in
    the output."""
    marker = tmp_path / "marker"
    payload = b"\x80\x04cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    stream = gzip.compress(payload + np.random.default_rng(1).bytes(600_000))
    _model_naming(tmp_path, {"T0": stream[:-12] + b"\xff" * 12})
    assert _loader_runs_it(f"pickle.load(gzip.open({str(tmp_path / 'T0')!r}))", marker)
    r = _scan(tmp_path)["T0"]
    assert r.verdict is not Verdict.CLEAN
    assert any(f.severity >= Severity.HIGH for f in r.findings), (r.reason, r.findings)


def test_a_bound_hit_in_a_misread_format_keeps_the_file_unverified(tmp_path: Path) -> None:
    """A limit of the analysis (MessagePack nested deeper than it reads) is not a misreading."""
    raw = b"\x81\xa1a" + b"\x91" * 600 + b"\x01"
    _model_naming(tmp_path, {"T0": raw})
    r = _scan(tmp_path)["T0"]
    assert r.verdict is Verdict.UNVERIFIED and "nested deeper" in (r.reason or ""), r


def test_a_misread_file_nobody_names_as_data_stays_unverified(tmp_path: Path) -> None:
    (tmp_path / "T0").write_bytes(b"\x81\xa1a\x01" + _tail())
    (tmp_path / "T1").write_bytes(b"\x78\x9c" + _tail())
    results = _scan(tmp_path)
    assert {n: r.verdict for n, r in results.items()} == {"T0": Verdict.UNVERIFIED, "T1": Verdict.UNVERIFIED}


def _small_int64(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 800))
    return bytes(rng.integers(0, 50000, n).astype("<i8").tobytes())


def test_int64_bytes_whose_checksum_matches_by_chance_are_no_tar(tmp_path: Path) -> None:
    """Small int64 values can sum so that the first block's checksum matches (its field reads as 0, the signed
    byte sum too), while its other fields are no octal numbers: tarfile refuses the file at offset 0, so it is
    not reported as also being a tar archive, and named as data it is clean."""
    import io
    import tarfile

    raw = _small_int64(1236)
    from loopwarden.checks.models.detect import tar_header

    assert tar_header(raw[:512])  # the checksum matches
    with pytest.raises(tarfile.ReadError), tarfile.open(fileobj=io.BytesIO(raw), mode="r:"):
        pass
    (tmp_path / "alone").mkdir()
    (tmp_path / "alone" / "T0").write_bytes(raw)
    (only,) = _scan(tmp_path / "alone").values()
    assert not only.findings, only.findings
    (tmp_path / "named").mkdir()
    _model_naming(tmp_path / "named", {"T0": raw})
    assert _scan(tmp_path / "named")["T0"].verdict is Verdict.CLEAN


def test_a_first_block_tarfile_reads_is_still_reported(tmp_path: Path) -> None:
    """A real tar header at the start of a file of another format stays a finding (tarfile reads it as one)."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT, encoding="latin-1") as tar:
        info = tarfile.TarInfo("x\x9cdata.pkl")  # its name's bytes begin like a zlib header
        info.size = 4
        tar.addfile(info, io.BytesIO(b"N.\x00\x00"))
    raw = buf.getvalue()
    assert raw[:2] == b"\x78\x9c"
    _model_naming(tmp_path, {"T0": raw})
    r = _scan(tmp_path)["T0"]
    assert r.verdict is not Verdict.CLEAN and "LW-MODEL-029" in {f.rule_id for f in r.findings}, r


@pytest.mark.parametrize("kind", ["msgpack-extra-bytes", "zlib-default", "safetensors-not-utf8"])
def test_misread_tensorflow_data_shards_are_clean_beside_their_index(tmp_path: Path, kind: str) -> None:
    """A checkpoint index names its data shards as raw data the same way: a misread shard is clean beside it, and
    unverified alone."""
    from test_tensorflow import checkpoint_index  # the sibling test module's tensor-bundle index

    (tmp_path / "variables.index").write_bytes(checkpoint_index(1))
    (tmp_path / "variables.data-00000-of-00001").write_bytes(_MISREADINGS[kind][0] + _tail())
    results = _scan(tmp_path)
    assert {n: r.verdict for n, r in results.items()} == {
        "variables.index": Verdict.CLEAN,
        "variables.data-00000-of-00001": Verdict.CLEAN,
    }
    (alone,) = scan_paths([str(tmp_path / "variables.data-00000-of-00001")], jobs=1).targets
    assert alone.verdict is Verdict.UNVERIFIED


@pytest.mark.parametrize("first", [384, 640, 896, 1152, 1408])
def test_int_tensors_whose_first_value_reads_as_proto_are_data(tmp_path: Path, first: int) -> None:
    """An int32 tensor whose first value is 384, 640, 896 ... begins ``80 01 00``: PROTO 1, then a byte that is no
    opcode, where a pickle loader stops. Named as raw data, such a file is data; alone it is no format."""
    arr = np.random.default_rng(first).integers(0, 5000, 300).astype("<i4")
    arr[0] = first
    raw = arr.tobytes()
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(raw)
    _model_naming(tmp_path, {"t.bin": raw})
    result = _scan(tmp_path)["t.bin"]
    assert result.verdict is Verdict.CLEAN and not result.findings, (result.reason, result.findings)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "t.bin").write_bytes(raw)
    result = _scan(alone)["t.bin"]
    assert result.verdict is Verdict.UNVERIFIED and not result.findings, result.findings


def test_a_proto_head_with_something_after_it_stays_a_pickle(tmp_path: Path) -> None:
    """The same head with a payload or a class further on: what reading on finds keeps the file reported."""
    _model_naming(
        tmp_path,
        {
            "payload.bin": b"\x80\x02\x00" + b"cos\nsystem\n(S'id'\ntR.",
            "user.bin": b"\x80\x02\x00" + b"c__main__\nEvil\n)R.",
        },
    )
    results = _scan(tmp_path)
    assert any(f.severity is Severity.CRITICAL for f in results["payload.bin"].findings)
    assert results["user.bin"].verdict is not Verdict.CLEAN and results["user.bin"].findings
