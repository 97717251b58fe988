"""Chunked TensorFlow protos (``saved_model.cpb``), written by TensorFlow's proto splitter for SavedModels over
2 GB and read by the C++ SavedModel reader (``tensorflow::ReadSavedModel``, behind ``LoadSavedModel``, the C API's
``TF_LoadSessionFromSavedModel``, TF Serving and the language bindings) when a folder has no ``saved_model.pb``.

The file is a Riegeli/records file (riegeli_records_file_format.md): 64 KiB blocks, each opening with a 24-byte
block header, and chunks (a 40-byte header, then data) holding records. Its last record is a ``ChunkMetadata``
(tensorflow/tools/proto_splitter/chunk.proto: 2 chunks: ChunkInfo{1 type, 2 size, 3 offset}, 3 message:
ChunkedMessage); the other records are the chunks, found by their record position (``offset``). A ChunkedMessage
{1 chunk_index, 2 chunked_fields: ChunkedField{1 field_tag: FieldIndex{1 field, 2 map_key, 3 index}, 3 message}}
names the chunk that holds a message and the chunks merged into its fields. The SavedModel is reassembled here
(a chunk merged into a field is appended as that field, which protobuf merges; an indexed element of a repeated
field gets the chunk merged into it) and judged as ``saved_model.pb``. What cannot be read (a transposed or
Brotli chunk without the decoder, a size over the bound, a record the metadata names and the file lacks) is
unverified, never clean.
"""

from __future__ import annotations

from typing import Final

from loopwarden.checks.models._base import Blob, ScanContext, bytes_blob

__all__ = ["RIEGELI_SIGNATURE", "scan_chunked_proto"]

RIEGELI_SIGNATURE: Final = bytes.fromhex(
    "83af70d10d884a3f0000000000000000400000000000000091bac23c9287e1a9"
    "0000000000000000e19f13c0e9b1c37273000000000000000000000000000000"
)
"""The first 64 bytes of every Riegeli/records file (block header and file signature chunk)."""

_BLOCK: Final = 1 << 16
_BLOCK_HEADER: Final = 24
_USABLE: Final = _BLOCK - _BLOCK_HEADER
_CHUNK_HEADER: Final = 40
_MAX_FILE: Final = 512 << 20
"""Files and reassembled messages larger than this are unverified (read whole, in memory)."""
_MAX_RECORDS: Final = 1 << 20
_MAX_DEPTH: Final = 64
_MAX_FIELDS: Final = 1 << 16


class ChunkedError(Exception):
    """The chunked proto cannot be read (the reason)."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    from loopwarden.checks.models.detect import read_varint

    value, pos = read_varint(buf, pos)
    if value is None:
        raise ChunkedError("truncated or overlong varint")
    return value & ((1 << 64) - 1), pos


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes) -> list[tuple[int, int, int, int, int]]:
    """Top-level fields of a message: (number, wire type, tag start, value start, end)."""
    out = []
    pos = 0
    while pos < len(buf):
        start = pos
        tag, pos = _varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        if num == 0:
            raise ChunkedError("field number 0")
        if wire == 0:
            _, end = _varint(buf, pos)
        elif wire == 1:
            end = pos + 8
        elif wire == 5:
            end = pos + 4
        elif wire == 2:
            size, pos = _varint(buf, pos)
            end = pos + size
        else:
            raise ChunkedError(f"wire type {wire} in a chunk proto")
        if end > len(buf):
            raise ChunkedError("field runs past its message")
        out.append((num, wire, start, pos, end))
        pos = end
        if len(out) > _MAX_FIELDS * 64:
            raise ChunkedError("too many fields")
    return out


def _span(data: bytes, pos: int, size: int) -> tuple[bytes, int]:
    """``size`` bytes of chunk content from physical position ``pos``, skipping the block headers on the way."""
    parts = []
    while size > 0:
        if pos % _BLOCK == 0:
            pos += _BLOCK_HEADER
        take = min(size, _BLOCK - pos % _BLOCK)
        if pos + take > len(data):
            raise ChunkedError("Riegeli file is truncated")
        parts.append(data[pos : pos + take])
        pos += take
        size -= take
    return b"".join(parts), pos


def _add_with_overhead(pos: int, size: int) -> int:
    blocks = (size + (pos + _USABLE - 1) % _BLOCK) // _USABLE
    return pos + size + blocks * _BLOCK_HEADER


def _round_up_boundary(pos: int) -> int:
    remaining = _BLOCK - 1 - (pos + _BLOCK - 1) % _BLOCK
    return pos + max(remaining - (_USABLE - 1), 0)


def _decompress(kind: int, buf: bytes, limit: int) -> bytes:
    """A simple chunk's buffer: raw, or Zstd/Brotli prefixed with its decompressed size."""
    if kind == 0:
        return buf
    size, pos = _varint(buf, 0)
    if size > limit:
        raise ChunkedError(f"compressed buffer of {size} bytes is over the bound")
    if kind == ord("z"):
        try:
            import zstandard
        except ImportError:
            raise ChunkedError("Zstd-compressed chunk and no zstandard module") from None
        try:
            out = zstandard.ZstdDecompressor().decompress(buf[pos:], max_output_size=size)
        except zstandard.ZstdError as exc:
            raise ChunkedError(f"Zstd chunk does not decompress ({exc})") from None
    elif kind == ord("b"):
        try:
            import brotli  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise ChunkedError("Brotli-compressed chunk and no brotli module") from None
        try:
            out = brotli.decompress(buf[pos:])
        except brotli.error as exc:
            raise ChunkedError(f"Brotli chunk does not decompress ({exc})") from None
    else:
        raise ChunkedError(f"compression type {kind:#x}")
    if len(out) != size:
        raise ChunkedError("decompressed size differs from the declared one")
    return out


def riegeli_records(data: bytes) -> dict[int, bytes]:
    """Every record of a Riegeli/records file by its numeric position (chunk begin + index), in file order."""
    if not data.startswith(RIEGELI_SIGNATURE):
        raise ChunkedError("no Riegeli file signature")
    records: dict[int, bytes] = {}
    begin = 0
    while begin < len(data):
        header, pos = _span(data, begin, _CHUNK_HEADER)
        data_size = int.from_bytes(header[8:16], "little")
        kind = header[24]
        count = int.from_bytes(header[25:32], "little")
        decoded = int.from_bytes(header[32:40], "little")
        if data_size > len(data) or decoded > _MAX_FILE or count > _MAX_RECORDS:
            raise ChunkedError(f"chunk at {begin} declares sizes over the bound")
        body, _ = _span(data, pos, data_size)
        end = max(_add_with_overhead(begin, _CHUNK_HEADER + data_size), _round_up_boundary(begin + count))
        if kind == ord("r"):
            if not body:
                raise ChunkedError(f"simple chunk at {begin} has no data")
            sizes_len, p = _varint(body, 1)
            if p + sizes_len > len(body):
                raise ChunkedError(f"simple chunk at {begin}: sizes run past its data")
            sizes = _decompress(body[0], body[p : p + sizes_len], 10 * count + 10)
            values = _decompress(body[0], body[p + sizes_len :], decoded)
            q = off = 0
            for i in range(count):
                n, q = _varint(sizes, q)
                if off + n > len(values):
                    raise ChunkedError(f"simple chunk at {begin}: records run past its values")
                records[begin + i] = values[off : off + n]
                off += n
            if len(records) > _MAX_RECORDS:
                raise ChunkedError("too many records")
        elif kind == ord("t") and count:
            raise ChunkedError(f"transposed chunk at {begin} (not decoded here)")
        elif kind not in (ord("s"), ord("m"), ord("p"), ord("t")):
            raise ChunkedError(f"unknown chunk type {kind:#x} at {begin}")
        begin = end
    return records


def _path(tags: list[bytes]) -> list[tuple[str, int | bytes]]:
    out: list[tuple[str, int | bytes]] = []
    for tag in tags:
        for num, wire, _, start, end in _fields(tag):
            if num in (1, 3) and wire == 0:
                out.append(("field" if num == 1 else "index", _varint(tag, start)[0]))
            elif num == 2 and wire == 2:
                out.append(("key", tag[start:end]))
    return out


def _key_field(key: bytes) -> bytes:
    """A map entry's key field (1) from a FieldIndex.MapKey{1 s, 2 boolean, 3-6 integers}."""
    for num, wire, _, start, end in _fields(key):
        if num == 1 and wire == 2:
            return _enc_varint(1 << 3 | 2) + _enc_varint(end - start) + key[start:end]
        if 2 <= num <= 6 and wire == 0:
            return _enc_varint(1 << 3) + key[start:end]
    return b""


def _wrap(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def _merge_at(msg: bytes, path: list[tuple[str, int | bytes]], child: bytes) -> bytes:
    """``msg`` with ``child`` merged at ``path`` (protobuf merges a field that appears again)."""
    if not path:
        return msg + child
    (kind, value), rest = path[0], path[1:]
    if kind != "field" or not isinstance(value, int) or value <= 0:
        raise ChunkedError("chunked field path does not open with a field number")
    if rest and rest[0][0] == "index":
        index = rest[0][1]
        seen = 0
        for num, wire, start, vstart, end in _fields(msg):
            if num == value and wire == 2:
                if seen == index:
                    inner = _merge_at(msg[vstart:end], rest[1:], child)
                    return msg[:start] + _wrap(num, inner) + msg[end:]
                seen += 1
        return msg + _wrap(value, _merge_at(b"", rest[1:], child))
    if rest and rest[0][0] == "key":
        key = rest[0][1]
        assert isinstance(key, bytes)
        entry = _key_field(key) + _wrap(2, _merge_at(b"", rest[1:], child))
        return msg + _wrap(value, entry)
    return msg + _wrap(value, _merge_at(b"", rest, child))


def merge_chunked(records: dict[int, bytes]) -> bytes:
    """The message a chunked proto's records reassemble into (its last record being the ChunkMetadata)."""
    if not records:
        raise ChunkedError("no records")
    meta = records[max(records)]
    chunks: list[bytes | None] = []
    message: bytes | None = None
    for num, wire, _, start, end in _fields(meta):
        if num == 2 and wire == 2:
            offset = None
            for n2, w2, _, s2, _e2 in _fields(meta[start:end]):
                if n2 == 3 and w2 == 0:
                    offset = _varint(meta[start:end], s2)[0]
            chunks.append(records.get(offset or 0))
        elif num == 3 and wire == 2:
            message = (message or b"") + meta[start:end]
    if message is None:
        raise ChunkedError("last record is no ChunkMetadata (no message)")
    total = [0]

    def build(cm: bytes, depth: int) -> bytes:
        if depth > _MAX_DEPTH:
            raise ChunkedError("chunked messages nest too deep")
        out = b""
        fields = []
        for num, wire, _, start, end in _fields(cm):
            if num == 1 and wire == 0:
                index = _varint(cm, start)[0]
                chunk = chunks[index] if index < len(chunks) else None
                if chunk is None:
                    raise ChunkedError(f"chunk {index} is not in the file")
                out = chunk
            elif num == 2 and wire == 2:
                fields.append(cm[start:end])
        for field in fields:
            tags: list[bytes] = []
            sub = b""
            for num, wire, _, start, end in _fields(field):
                if num == 1 and wire == 2:
                    tags.append(field[start:end])
                elif num == 3 and wire == 2:
                    sub += field[start:end]
            out = _merge_at(out, _path(tags), build(sub, depth + 1))
            total[0] += len(out)
            if len(out) > _MAX_FILE or total[0] > 8 * _MAX_FILE:
                raise ChunkedError("reassembled message is over the bound")
        return out

    return build(message, 0)


def scan_chunked_proto(blob: Blob, ctx: ScanContext) -> None:
    """A Riegeli file: a chunked SavedModel (any ``.cpb``, or a file whose last record is a ChunkMetadata) is
    reassembled and judged as ``saved_model.pb``; one that cannot be read is unverified."""
    from loopwarden.checks.models.tensorflow_ import scan_saved_model

    chunked = blob.name.lower().endswith(".cpb")
    if blob.size is not None and blob.size > _MAX_FILE:
        ctx.fail(
            blob.location, f"chunked TensorFlow proto of {blob.size} bytes is over the {_MAX_FILE}-byte bound"
        )
        return
    with blob.open() as f:
        data = f.read(_MAX_FILE + 1)
    if len(data) > _MAX_FILE:
        ctx.fail(blob.location, f"chunked TensorFlow proto is over the {_MAX_FILE}-byte bound")
        return
    try:
        records = riegeli_records(data)
        merged = merge_chunked(records)
    except (ChunkedError, RecursionError) as exc:
        if chunked:
            ctx.fail(blob.location, f"chunked TensorFlow proto cannot be read ({str(exc)[:200]})")
        else:
            ctx.fail(blob.location, f"Riegeli file cannot be read as a chunked proto ({str(exc)[:200]})")
        return
    scan_saved_model(bytes_blob(blob.name, blob.location, merged, blob.depth), ctx)
