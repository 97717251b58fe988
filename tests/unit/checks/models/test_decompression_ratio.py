"""The decompression-ratio bound: benign, highly compressible model data (sparse or zero-initialised arrays in
``np.savez_compressed`` and compressed joblib dumps) passes; bombs (one huge stream, nesting, shared members) are
named.

The rule: a stream read from stored bytes is judged once its output passes 64 MiB, a stream whose compressed
bytes are themselves decompressed output once it passes 1 MiB (ratios multiply there); the data of a large
plain-dtype ``.npy`` member is never inflated, and its declared size is judged instead.
"""

from __future__ import annotations

import gzip
import io
import re
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from loopwarden.checks.interface import Limits, ResourceLimitExceeded
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.scanner import default_allow, scan_paths
from loopwarden.domain import Location, Verdict

np = pytest.importorskip("numpy")

_BOUND = "max_decompression_ratio"


def _scan(name: str, data: bytes) -> ScanContext:
    """As the scanner does it: a bound that ends the whole analysis makes the target unverified."""
    ctx = ScanContext(name, Limits(), default_allow())
    try:
        scan_blob(bytes_blob(name, Location(name), data, 0), ctx)
    except ResourceLimitExceeded as exc:
        ctx.fail(Location(name), str(exc))
    finally:
        for c in ctx.closers:  # temporary files, as the scanner closes them when a target is done
            c.close()
    return ctx


def _clean(ctx: ScanContext) -> None:
    assert not ctx.findings and not ctx.unverified, (ctx.formats, ctx.findings, ctx.unverified)


def _named(ctx: ScanContext) -> None:
    assert any(_BOUND in r for r in ctx.unverified), (ctx.formats, ctx.findings, ctx.unverified)


def _npz(**arrays: object) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
    return buf.getvalue()


def _npy_bytes(shape: tuple[int, ...], dtype: str) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(shape, dtype))
    return buf.getvalue()


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method, compresslevel=9 if method == zipfile.ZIP_DEFLATED else None) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


# --- benign ------------------------------------------------------------------------------------------------


def _sparse() -> object:
    rng = np.random.default_rng(3)
    return np.where(rng.random((1000, 1000)) > 0.999, 1.0, 0.0).astype(np.float32)


@pytest.mark.parametrize(
    "arrays",
    [
        {"w": _sparse()},  # 4 MB at about 580:1
        {"big": np.zeros((1000, 1000), np.float32), "f16": np.ones(3, np.float16)},  # about 1,000:1
        {"emb": np.zeros((20000, 512), np.float32)},  # 40 MB of zeros, past the old 1 MiB floor
        {"mask": np.zeros((4096, 4096), bool), "w": np.arange(10.0)},
        {"lora_b": np.zeros((4096, 64), np.float16), "lora_a": np.full((64, 4096), 0.5, np.float16)},
    ],
)
def test_compressed_npz_of_sparse_or_zero_arrays_is_clean(arrays: dict[str, object]) -> None:
    _clean(_scan("weights.npz", _npz(**arrays)))


@pytest.mark.parametrize("compress", [3, ("gzip", 3), ("zlib", 9), ("bz2", 3), ("xz", 3), ("lzma", 3)])
def test_compressed_joblib_of_zeros_is_clean(compress: object, tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "zeros.joblib"
    joblib.dump({"w": np.zeros((1000, 1000)), "b": np.zeros(1000)}, path, compress=compress)
    _clean(_scan("zeros.joblib", path.read_bytes()))


def test_npz_in_an_uncompressed_tar_and_in_a_tar_gz_is_clean() -> None:
    npz = _npz(w=np.zeros((1000, 1000), np.float32))
    for mode in ("w", "w:gz"):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode=mode) as tar:
            info = tarfile.TarInfo("model/weights.npz")
            info.size = len(npz)
            tar.addfile(info, io.BytesIO(npz))
        _clean(_scan("model.tar.gz" if mode == "w:gz" else "model.tar", buf.getvalue()))


def test_gzip_of_a_zero_array_below_the_floor_is_clean() -> None:
    _clean(_scan("w.npy.gz", gzip.compress(_npy_bytes((4000, 1000), "f4"), 9)))  # 16 MB at about 1,000:1


# --- bombs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model.pkl.gz", "x.bin.gz"])
def test_one_huge_stream_of_zeros_is_named(name: str) -> None:
    _named(_scan(name, gzip.compress(b"\x00" * (80 << 20), 9)))


def test_a_plain_npy_member_declaring_far_beyond_the_floor_is_named() -> None:
    """Its data is never inflated; the size zipfile would inflate for numpy is judged."""
    npy = _npy_bytes((80 << 20,), "u1")
    ctx = _scan("w.npz", _zip({"w.npy": npy}))
    _named(ctx)
    assert not ctx.findings


def test_a_stored_plain_npy_member_is_not_a_ratio() -> None:
    _clean(_scan("w.npz", _zip({"w.npy": _npy_bytes((3000, 1000), "f4")}, zipfile.ZIP_STORED)))


def _nested(levels: int, leaf: int) -> bytes:
    data, name = b"\x00" * leaf, "zeros.bin"
    for i in range(levels):
        data, name = _zip({f"{i}-{j}-{name}": data for j in range(4)}), f"layer{i}.zip"
    return data


@pytest.mark.parametrize(("levels", "leaf"), [(2, 4 << 20), (3, 2 << 20)])
def test_nested_archives_of_zeros_are_named(levels: int, leaf: int) -> None:
    """42.zip-style: inside a compressed archive, ratios multiply, so the floor is low again."""
    _named(_scan("42.zip", _nested(levels, leaf)))


def test_the_bound_names_the_whole_chain_of_members() -> None:
    """The reason names the member as the loader reaches it (outer!inner!leaf), not the leaf as if it sat in the
    outer archive: a reader must be able to find the stream that was stopped."""
    ctx = _scan("42.zip", _nested(2, 4 << 20))
    named = [r for r in ctx.unverified if _BOUND in r]
    assert named, ctx.unverified
    assert all(re.search(r"42\.zip!1-[0-3]-layer0\.zip!0-[0-3]-zeros\.bin", r) for r in named), named


def test_a_gzip_inside_a_zip_is_judged_as_nested() -> None:
    inner = gzip.compress(b"\x00" * (8 << 20), 9)
    _named(_scan("bundle.zip", _zip({"payload.gz": inner})))


def test_a_zip_inside_a_tar_gz_is_judged_as_nested() -> None:
    inner = _zip({"zeros.bin": b"\x00" * (8 << 20)})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("inner.zip")
        info.size = len(inner)
        tar.addfile(info, io.BytesIO(inner))
    _named(_scan("bundle.tar.gz", buf.getvalue()))


def test_members_sharing_one_stream_are_never_clean() -> None:
    """Fifield's overlapping-member bomb: many central directory entries over one local file's data."""
    one = _zip({"zeros.bin": b"\x00" * (8 << 20)})
    eocd = one.rindex(b"PK\x05\x06")
    (cd_size, cd_offset) = struct.unpack_from("<II", one, eocd + 12)
    cd = one[cd_offset : cd_offset + cd_size]
    count = 64
    body = one[:cd_offset] + cd * count
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, cd_size * count, cd_offset, 0)
    ctx = _scan("overlap.zip", body + end)
    assert "LW-MODEL-023" in {f.rule_id for f in ctx.findings}, ctx.findings
    _named(ctx)
    # each shared member stops just past the low floor, in its analysis and in its CRC check (without the low
    # floor both would inflate all 8 MiB: 1 GiB in all)
    assert ctx.decompressed < 64 * (4 << 20)


def test_folder_of_hunt_cases(tmp_path: Path) -> None:
    (tmp_path / "sparse_weights.npz").write_bytes(_npz(w=_sparse()))
    (tmp_path / "bomb.bin.gz").write_bytes(gzip.compress(b"\x00" * (80 << 20), 9))
    verdicts = {Path(t.path).name: t for t in scan_paths([str(tmp_path)], jobs=1).targets}
    assert verdicts["sparse_weights.npz"].verdict is Verdict.CLEAN
    assert verdicts["bomb.bin.gz"].verdict is Verdict.UNVERIFIED
    assert _BOUND in (verdicts["bomb.bin.gz"].reason or "")


# --- what is read ------------------------------------------------------------------------------------------


def test_the_data_of_a_large_plain_npy_member_is_not_inflated() -> None:
    ctx = _scan("w.npz", _npz(emb=np.zeros((20000, 512), np.float32)))
    _clean(ctx)
    assert ctx.decompressed < 1 << 20, ctx.decompressed  # the header, not 40 MB of numbers


def _object_npy(pickle_bytes: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + pickle_bytes


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_a_large_object_member_is_still_analysed_in_full(method: int) -> None:
    """Past the in-memory size, an object dtype's data is still read whole: it is a pickle numpy runs."""
    call = b"cos\nsystem\n(S'echo never-run'\ntR"
    filler = b"X" + struct.pack("<I", 3 << 20) + b"a" * (3 << 20) + b"0"  # a 3 MiB string, popped
    ctx = _scan("w.npz", _zip({"w.npy": _object_npy(b"\x80\x04" + filler + call + b".")}, method))
    assert "LW-MODEL-001" in {f.rule_id for f in ctx.findings}, (ctx.findings, ctx.unverified)


def test_a_plain_header_in_front_of_a_pickle_is_numbers_to_numpy() -> None:
    """A plain dtype's data is read by numpy as numbers whatever it holds; only its size is judged."""
    npy = _npy_bytes((2 << 20,), "u1")
    ctx = _scan("w.npz", _zip({"w.npy": npy[: len(npy) - 64] + b"cos\nsystem\n" + b"\x00" * 53}))
    _clean(ctx)


# --- zstandard (pandas writes .pkl.zst) --------------------------------------------------------------------


def _zstd(data: bytes) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    return bytes(zstandard.ZstdCompressor(level=3).compress(data))


_CALL = b"cos\nsystem\n(S'echo never-run'\ntR"


def test_a_zstd_pickle_is_analysed() -> None:
    import pickle

    _clean(_scan("df.pkl.zst", _zstd(pickle.dumps({"a": [1, 2], "b": "x"}, protocol=5))))
    ctx = _scan("df.pkl.zst", _zstd(_CALL + b"."))
    assert "LW-MODEL-001" in {f.rule_id for f in ctx.findings}, ctx.findings


def test_a_payload_in_a_later_zstd_frame_is_found() -> None:
    ctx = _scan("m.pkl.zst", _zstd(b"(") + _zstd(_CALL + b"."))
    assert "LW-MODEL-001" in {f.rule_id for f in ctx.findings}, ctx.findings


def test_a_corrupt_or_truncated_zstd_stream_is_unverified() -> None:
    for data in (
        b"\x28\xb5\x2f\xfd" + b"garbage" * 10,
        _zstd(b"\x80\x04" + b"N" * 5000 + b".")[:-8],  # the frame cut short
    ):
        ctx = _scan("m.pkl.zst", data)
        assert ctx.unverified, (ctx.findings, ctx.unverified)


def test_a_zstd_stream_of_zeros_far_beyond_the_floor_is_named() -> None:
    _named(_scan("z.pkl.zst", _zstd(b"\x00" * (80 << 20))))


def test_zstd_of_a_zero_array_below_the_floor_is_clean() -> None:
    _clean(_scan("w.npy.zst", _zstd(_npy_bytes((4000, 1000), "f4"))))


def test_a_bomb_under_a_pickle_is_named_once_and_not_called_an_internal_error(tmp_path: Path) -> None:
    # a pickle whose trailing bytes inflate past the ratio: the bound reaches the pickle analysis from the stream
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("archive/data.pkl", b"\x80\x04N." + b"\x00" * (200 << 20))
    (tmp_path / "model.pt").write_bytes(buf.getvalue())
    res = scan_paths([str(tmp_path / "model.pt")], jobs=1).targets[0]
    assert res.verdict is Verdict.UNVERIFIED
    assert res.reason is not None and _BOUND in res.reason, res.reason
    assert "internal error" not in res.reason
    assert res.reason.count(_BOUND) == 1, res.reason
