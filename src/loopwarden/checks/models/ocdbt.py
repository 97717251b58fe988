"""OCDBT manifests (``manifest.ocdbt``): the root of tensorstore's Optionally-Cooperative Distributed B+Tree, the
key-value store that Orbax checkpoints (and Flax checkpoints written through Orbax) keep their arrays in.

A manifest is ``magic 0c db 3a 2a`` (big-endian), its total length (u64, little-endian), a varint format version
(0), a varint compression (0 none, 1 zstd), the body (the store's config, a table of data files and the version
tree) and a CRC-32C of everything before it (u32, little-endian); tensorstore
(``kvstore/ocdbt/format/codec_util.cc``) refuses a file whose length, version, compression, zstd frame or
checksum is wrong. Nothing in it names code: its data files are paths relative to the store, which tensorstore's
file driver keeps inside it (it refuses ``..`` parts). The B+tree nodes and array chunks live in the store's data
files, ``d/<hash>`` beside the manifest (and, for Orbax's per-process stores, ``ocdbt.process_<i>/d/<hash>``):
raw bytes read at offsets the tree gives, so they are resolved as this manifest's data (clean when they are of
no format at all; anything found in them still counts).
"""

from __future__ import annotations

import itertools
import os
from typing import Final

from loopwarden.checks.models._base import Blob, ScanContext

__all__ = ["MAGIC", "scan_ocdbt_manifest"]

MAGIC: Final = b"\x0c\xdb\x3a\x2a"
_MAX_MANIFEST: Final = 1 << 20
"""Manifests are read whole and checksummed here; tensorstore's are a few hundred bytes to a few KiB."""
_MAX_BODY: Final = 64 << 20
_MAX_DATA_FILES: Final = 1_000_000


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC32C: Final = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as absl and riegeli compute it."""
    crc = 0xFFFFFFFF
    table = _CRC32C
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _verify(data: bytes) -> str | None:
    """Why tensorstore would refuse these bytes as a manifest, or None."""
    from loopwarden.checks.models.detect import read_varint

    size = len(data)
    if size < 16:
        return "shorter than the 16-byte minimum"
    if int.from_bytes(data[4:12], "little") != size:
        return "its header length is not the file's size"
    version, pos = read_varint(data, 12)
    if version != 0:
        return f"format version {version} (tensorstore reads 0)"
    compression, pos = read_varint(data, pos)
    if compression not in (0, 1):
        return f"compression {compression} (tensorstore reads 0 and 1)"
    if pos > size - 4:
        return "the header runs into the checksum"
    if crc32c(data[:-4]) != int.from_bytes(data[-4:], "little"):
        return "its CRC-32C does not match"
    if compression == 1:
        import zstandard

        try:
            obj = zstandard.ZstdDecompressor().decompressobj()
            out = obj.decompress(data[pos:-4])
        except zstandard.ZstdError as exc:
            return f"its zstd body cannot be decompressed ({exc})"
        if not obj.eof or obj.unused_data or len(out) > _MAX_BODY:
            return "its zstd body does not end where the checksum begins"
    return None


def scan_ocdbt_manifest(blob: Blob, ctx: ScanContext) -> None:
    if blob.size is None or blob.size > _MAX_MANIFEST:
        ctx.fail(blob.location, f"OCDBT manifest larger than the {_MAX_MANIFEST}-byte bound")
        return
    with blob.open() as f:
        data = blob.data if blob.data is not None else f.read(blob.size)
    why = _verify(data)
    if why is not None:
        # tensorstore reads nothing from such a manifest (its checks come before the body is used)
        ctx.fail(blob.location, f"OCDBT manifest: {why}", misread=True)
        return
    if blob.file_path is None or blob.location.member is not None:
        return
    folder = os.path.dirname(os.path.abspath(blob.location.path))
    stores = [os.path.join(folder, "d")]
    try:
        with os.scandir(folder) as it:
            stores += sorted(
                os.path.join(e.path, "d") for e in it if e.name.startswith("ocdbt.process_") and e.is_dir()
            )
    except OSError:
        return
    count = 0
    for store in stores:
        try:
            with os.scandir(store) as it:
                for entry in it:
                    if count >= _MAX_DATA_FILES:
                        return
                    if entry.is_file():  # (a Hugging Face cache snapshot links its files into blobs/)
                        ctx.references.append(os.path.realpath(entry.path))
                        count += 1
        except OSError:
            continue


_MAX_CHUNKS: Final = 100_000
"""Chunk files a zarr array's metadata names at most; an array of more chunks names none (they stay unverified)."""


def zarr_chunk_references(obj: object, location_path: str, base: str) -> list[str]:
    """The chunk files of a zarr array, named by its metadata beside them: ``.zarray`` (zarr v2: ``shape``,
    ``chunks``, ``dimension_separator``; keys ``0.0``) or ``zarr.json`` (zarr v3, a regular ``chunk_grid`` and a
    ``chunk_key_encoding``: ``default`` keys ``c/0/0``, ``v2`` keys ``0.0``). Orbax checkpoints written without OCDBT
    keep each array so (``<param>/.zarray`` and ``<param>/0.0``); tensorstore reads the chunks as raw or
    compressed array bytes. Metadata that does not describe a regular grid names nothing."""
    if not isinstance(obj, dict):
        return []
    if base == ".zarray" and obj.get("zarr_format") == 2:
        shape, chunks = obj.get("shape"), obj.get("chunks")
        sep = obj.get("dimension_separator", ".")
        prefix: list[str] = []
    elif base == "zarr.json" and obj.get("zarr_format") == 3 and obj.get("node_type") == "array":
        shape = obj.get("shape")
        grid = obj.get("chunk_grid")
        conf = grid.get("configuration") if isinstance(grid, dict) and grid.get("name") == "regular" else None
        chunks = conf.get("chunk_shape") if isinstance(conf, dict) else None
        enc = obj.get("chunk_key_encoding")
        name = enc.get("name") if isinstance(enc, dict) else None
        enc_conf = enc.get("configuration") if isinstance(enc, dict) else None
        enc_conf = enc_conf if isinstance(enc_conf, dict) else {}
        if name == "default":
            sep, prefix = enc_conf.get("separator", "/"), ["c"]
        elif name == "v2":
            sep, prefix = enc_conf.get("separator", "."), []
        else:
            return []
    else:
        return []
    if (
        sep not in (".", "/")
        or not isinstance(shape, list)
        or not isinstance(chunks, list)
        or len(shape) != len(chunks)
        or not all(type(n) is int and n >= 0 for n in shape)
        or not all(type(n) is int and n > 0 for n in chunks)
    ):
        return []
    counts = [-(-s // c) for s, c in zip(shape, chunks, strict=True)]
    total = 1
    for n in counts:
        total *= n
    if total > _MAX_CHUNKS:
        return []
    folder = os.path.dirname(os.path.abspath(location_path))
    out = []
    for idx in itertools.product(*(range(n) for n in counts)):
        parts = prefix + ([str(i) for i in idx] or ([] if prefix else ["0"]))
        out.append(os.path.realpath(os.path.join(folder, sep.join(parts))))
    return out
