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
field gets the chunk merged into it) and judged as ``saved_model.pb``.

Real chunked SavedModels are over 2 GB, so nothing is read whole: a record is a reference into the file (its
content offsets, block headers left out), a compressed chunk is inflated a bounded piece at a time into a
temporary file and referenced there, and the reassembled message is a list of those references and the tags
between them (:class:`_Rope`), which the SavedModel check reads as a seekable file, seeking past what it does not
judge (tensor contents). What cannot be read (a transposed chunk, Brotli without the ``brotli`` module, a
record the metadata names and the file lacks, truncation, a bound) is unverified, never clean.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, Final, cast

from loopwarden.checks.models._base import Blob, ScanContext, spool

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
_MAX_RECORDS: Final = 1 << 20
_MAX_DEPTH: Final = 64
_MAX_FIELDS: Final = 1 << 16
_MAX_META: Final = 64 << 20
"""The ChunkMetadata record and a chunk's record sizes are read whole: larger ones are unverified."""
_MAX_SEGMENTS: Final = 1 << 22
"""Pieces of the reassembled message (its records and the tags between them) and, times 16, the pieces and fields
the merges copy and read in all: past these the file is unverified."""
_PIECE: Final = 1 << 20
"""Compressed chunks are read and inflated this many bytes at a time."""
_WINDOW: Final = 1 << 16


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


def _content(pos: int) -> int:
    """The content offset (bytes outside block headers before it) of a physical position outside a header."""
    return pos // _BLOCK * _USABLE + max(pos % _BLOCK - _BLOCK_HEADER, 0)


def _add_with_overhead(pos: int, size: int) -> int:
    blocks = (size + (pos + _USABLE - 1) % _BLOCK) // _USABLE
    return pos + size + blocks * _BLOCK_HEADER


def _round_up_boundary(pos: int) -> int:
    remaining = _BLOCK - 1 - (pos + _BLOCK - 1) % _BLOCK
    return pos + max(remaining - (_USABLE - 1), 0)


@dataclass(frozen=True, slots=True)
class _Ref:
    """``length`` bytes of the Riegeli file's content from ``start`` (``inflated``: of the temporary file)."""

    start: int
    length: int
    inflated: bool = False


_Segment = bytes | _Ref


class _Source:
    """The Riegeli file, read by content offsets (its block headers left out), and the temporary file that
    compressed chunks are inflated into."""

    def __init__(self, f: BinaryIO, size: int, ctx: ScanContext) -> None:
        self.f = f
        self.size = size
        self.content_size = _content(size)
        self.ctx = ctx
        self.tmp: IO[bytes] | None = None
        self.inflated = 0

    def read(self, start: int, n: int) -> bytes:
        """``n`` content bytes from content offset ``start``; short reads are truncation."""
        parts = []
        while n > 0:
            block, within = divmod(start, _USABLE)
            take = min(n, _USABLE - within)
            self.f.seek(block * _BLOCK + _BLOCK_HEADER + within)
            data = self.f.read(take)
            if len(data) != take:
                raise ChunkedError("Riegeli file is truncated")
            parts.append(data)
            start += take
            n -= take
        return b"".join(parts)

    def read_ref(self, ref: _Ref, off: int, n: int) -> bytes:
        n = max(min(n, ref.length - off), 0)
        if not ref.inflated:
            return self.read(ref.start + off, n)
        assert self.tmp is not None
        self.tmp.seek(ref.start + off)
        data = self.tmp.read(n)
        if len(data) != n:
            raise ChunkedError("inflated chunk is short")
        return data

    def pieces(self, start: int, n: int) -> Iterator[bytes]:
        while n > 0:
            self.ctx.check_time()
            data = self.read(start, min(n, _PIECE))
            yield data
            start += len(data)
            n -= len(data)

    def inflate(self, kind: int, start: int, n: int, size: int) -> _Ref:
        """The compressed buffer at content ``start`` (``n`` bytes), of ``size`` bytes inflated, written out to
        the temporary file a piece at a time."""
        if self.tmp is None:
            self.tmp = spool(io.BytesIO(b""), self.ctx)
            self.ctx.closers.append(self.tmp)
        tmp = self.tmp
        self.inflated += size
        bound = self.ctx.limits.max_decompressed_bytes
        if self.inflated > bound:
            raise ChunkedError(f"compressed chunks inflate to over {bound} bytes (max_decompressed_bytes)")
        at = tmp.seek(0, 2)
        written = 0
        for piece in _inflate(kind, self.pieces(start, n), size):
            written += len(piece)
            self.ctx.count_decompressed(len(piece))
            if written > size:
                raise ChunkedError("compressed chunk inflates past its declared size")
            tmp.write(piece)
        if written != size:
            raise ChunkedError("decompressed size differs from the declared one")
        return _Ref(at, size, inflated=True)


class _Pieces(io.RawIOBase):
    """An iterator of byte strings read as a stream."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self.pieces = pieces
        self.buf = b""
        self.at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while self.at >= len(self.buf):
            self.buf, self.at = next(self.pieces, b""), 0
            if not self.buf:
                return 0
        n = min(len(b), len(self.buf) - self.at)
        b[:n] = self.buf[self.at : self.at + n]
        self.at += n
        return n


def _inflate(kind: int, chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """A Zstd or Brotli stream inflated a bounded piece at a time."""
    if kind == ord("z"):
        try:
            import zstandard
        except ImportError:
            raise ChunkedError("Zstd-compressed chunk and no zstandard module") from None
        try:
            # the stream reader hands out at most what is asked: a bounded piece whatever the ratio
            with zstandard.ZstdDecompressor().stream_reader(
                cast(IO[bytes], _Pieces(chunks)), read_size=1 << 16
            ) as r:
                while out := r.read(_PIECE):
                    yield out
        except zstandard.ZstdError as exc:
            raise ChunkedError(f"Zstd chunk does not decompress ({exc})") from None
    elif kind == ord("b"):
        try:
            import brotli  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise ChunkedError("Brotli-compressed chunk and no brotli module") from None
        d = brotli.Decompressor()
        bounded = hasattr(d, "can_accept_more_data")  # brotli 1.2: output_buffer_limit bounds each piece
        try:
            for chunk in chunks:
                for i in range(0, len(chunk), 1 << 12):
                    if bounded:
                        out = d.process(chunk[i : i + (1 << 12)], output_buffer_limit=_PIECE)
                        while True:
                            if out:
                                yield out
                            if d.can_accept_more_data() or d.is_finished():
                                break
                            out = d.process(b"", output_buffer_limit=_PIECE)
                    else:  # older modules: 4 KiB of input at a time, and its output judged against the size
                        out = d.process(chunk[i : i + (1 << 12)])
                        if len(out) > size:
                            raise ChunkedError("compressed chunk inflates past its declared size")
                        if out:
                            yield out
            while bounded and not d.is_finished():  # what the last input left in the decoder
                out = d.process(b"", output_buffer_limit=_PIECE)
                if not out:
                    break
                yield out
        except brotli.error as exc:
            raise ChunkedError(f"Brotli chunk does not decompress ({exc})") from None
    else:
        raise ChunkedError(f"compression type {kind:#x}")


def _decompress_small(kind: int, buf: bytes, limit: int) -> bytes:
    """A small compressed buffer (record sizes) prefixed with its decompressed size, inflated whole."""
    if kind == 0:
        return buf
    size, pos = _varint(buf, 0)
    if size > limit:
        raise ChunkedError(f"compressed buffer of {size} bytes is over the bound")
    out = b"".join(_inflate(kind, iter([buf[pos:]]), size))
    if len(out) != size:
        raise ChunkedError("decompressed size differs from the declared one")
    return out


def riegeli_records(src: _Source, max_meta: int = _MAX_META) -> dict[int, _Ref]:
    """Every record of a Riegeli/records file by its numeric position (chunk begin + index), in file order, as
    references into the file (or into the temporary file, for compressed chunks)."""
    if src.read(0, 40) != RIEGELI_SIGNATURE[_BLOCK_HEADER:]:
        raise ChunkedError("no Riegeli file signature")
    src.f.seek(0)
    if src.f.read(_BLOCK_HEADER) != RIEGELI_SIGNATURE[:_BLOCK_HEADER]:
        raise ChunkedError("no Riegeli file signature")
    records: dict[int, _Ref] = {}
    begin = 0
    while begin < src.size:
        c0 = _content(begin)
        header = src.read(c0, _CHUNK_HEADER)
        data_size = int.from_bytes(header[8:16], "little")
        kind = header[24]
        count = int.from_bytes(header[25:32], "little")
        decoded = int.from_bytes(header[32:40], "little")
        if data_size > src.size or count > _MAX_RECORDS:
            raise ChunkedError(f"chunk at {begin} declares sizes over the bound")
        d0 = c0 + _CHUNK_HEADER
        if d0 + data_size > src.content_size:
            raise ChunkedError("Riegeli file is truncated")
        end = max(_add_with_overhead(begin, _CHUNK_HEADER + data_size), _round_up_boundary(begin + count))
        if kind == ord("r"):
            if not data_size:
                raise ChunkedError(f"simple chunk at {begin} has no data")
            head = src.read(d0, min(data_size, 11))
            sizes_len, p = _varint(head, 1)
            if p + sizes_len > data_size or sizes_len > max_meta:
                raise ChunkedError(f"simple chunk at {begin}: sizes run past its data or the bound")
            sizes = _decompress_small(head[0], src.read(d0 + p, sizes_len), 10 * count + 10)
            v0, vlen = d0 + p + sizes_len, data_size - p - sizes_len
            if head[0]:
                vsize, q = _varint(src.read(v0, min(vlen, 10)), 0)
                if vsize != decoded:
                    raise ChunkedError(f"simple chunk at {begin}: values size differs from the header's")
                values = src.inflate(head[0], v0 + q, vlen - q, vsize)
            else:
                values = _Ref(v0, vlen)
            q = off = 0
            for i in range(count):
                n, q = _varint(sizes, q)
                if off + n > values.length:
                    raise ChunkedError(f"simple chunk at {begin}: records run past its values")
                records[begin + i] = _Ref(values.start + off, n, values.inflated)
                off += n
            if len(records) > _MAX_RECORDS:
                raise ChunkedError("too many records")
        elif kind == ord("t") and count:
            raise ChunkedError(f"transposed chunk at {begin} (not decoded here)")
        elif kind not in (ord("s"), ord("m"), ord("p"), ord("t")):
            raise ChunkedError(f"unknown chunk type {kind:#x} at {begin}")
        begin = end
    return records


class _Rope:
    """A message as a sequence of in-memory tags and references to records, never joined in memory."""

    __slots__ = ("segs", "size")

    def __init__(self, segs: list[_Segment]) -> None:
        self.segs = [s for s in segs if (len(s) if isinstance(s, bytes) else s.length)]
        self.size = sum(len(s) if isinstance(s, bytes) else s.length for s in self.segs)

    def __add__(self, other: _Rope) -> _Rope:
        return _Rope(self.segs + other.segs)

    def slice(self, a: int, b: int) -> _Rope:
        out: list[_Segment] = []
        pos = 0
        for s in self.segs:
            n = len(s) if isinstance(s, bytes) else s.length
            lo, hi = max(a - pos, 0), min(b - pos, n)
            if lo < hi:
                if isinstance(s, bytes):
                    out.append(s[lo:hi])
                else:
                    out.append(_Ref(s.start + lo, hi - lo, s.inflated))
            pos += n
            if pos >= b:
                break
        return _Rope(out)


class _RopeReader(io.RawIOBase):
    """A rope read as a seekable file."""

    def __init__(self, rope: _Rope, src: _Source) -> None:
        self.rope = rope
        self.src = src
        self.pos = 0
        self.starts = []
        at = 0
        for s in rope.segs:
            self.starts.append(at)
            at += len(s) if isinstance(s, bytes) else s.length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.rope.size}[whence]
        self.pos = max(base + offset, 0)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read_at(self, pos: int, n: int) -> bytes:
        import bisect

        parts = []
        i = bisect.bisect_right(self.starts, pos) - 1
        while n > 0 and 0 <= i < len(self.rope.segs):
            s, off = self.rope.segs[i], pos - self.starts[i]
            data = s[off : off + n] if isinstance(s, bytes) else self.src.read_ref(s, off, n)
            parts.append(data)
            pos += len(data)
            n -= len(data)
            i += 1
        return b"".join(parts)

    def readinto(self, b: Any) -> int:
        data = self.read_at(self.pos, len(b))
        b[: len(data)] = data
        self.pos += len(data)
        return len(data)


def _rope_fields(rope: _Rope, src: _Source) -> list[tuple[int, int, int, int, int]]:
    """Top-level fields of a rope message (only their tags and lengths are read)."""
    reader = _RopeReader(rope, src)
    out = []
    pos = 0
    while pos < rope.size:
        head = reader.read_at(pos, 20)
        num, wire, _, vstart, end = _fields_head(head)
        out.append((num, wire, pos, pos + vstart, pos + end))
        if pos + end > rope.size:
            raise ChunkedError("field runs past its message")
        pos += end
        if len(out) > _MAX_FIELDS * 64:
            raise ChunkedError("too many fields")
    return out


def _fields_head(head: bytes) -> tuple[int, int, int, int, int]:
    """The first field of ``head`` (its value may run past it): (number, wire type, 0, value start, end)."""
    tag, pos = _varint(head, 0)
    num, wire = tag >> 3, tag & 7
    if num == 0:
        raise ChunkedError("field number 0")
    if wire == 0:
        _, end = _varint(head, pos)
    elif wire == 1:
        end = pos + 8
    elif wire == 5:
        end = pos + 4
    elif wire == 2:
        size, pos = _varint(head, pos)
        end = pos + size
    else:
        raise ChunkedError(f"wire type {wire} in a chunk proto")
    return num, wire, 0, pos, end


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


def _wrap(num: int, payload: _Rope) -> _Rope:
    return _Rope([_enc_varint(num << 3 | 2) + _enc_varint(payload.size), *payload.segs])


class _Merger:
    """A chunked proto's records reassembled into the message (its last record being the ChunkMetadata)."""

    def __init__(self, src: _Source, records: dict[int, _Ref], max_meta: int = _MAX_META) -> None:
        self.src = src
        self.records = records
        self.max_meta = max_meta
        self.copied = 0

    def _merge_at(self, msg: _Rope, path: list[tuple[str, int | bytes]], child: _Rope) -> _Rope:
        """``msg`` with ``child`` merged at ``path`` (protobuf merges a field that appears again)."""
        self.copied += len(msg.segs) + len(child.segs)
        if len(msg.segs) + len(child.segs) > _MAX_SEGMENTS or self.copied > 16 * _MAX_SEGMENTS:
            raise ChunkedError("reassembled message has too many pieces")
        if not path:
            return msg + child
        (kind, value), rest = path[0], path[1:]
        if kind != "field" or not isinstance(value, int) or value <= 0:
            raise ChunkedError("chunked field path does not open with a field number")
        if rest and rest[0][0] == "index":
            index = rest[0][1]
            seen = 0
            fields = _rope_fields(msg, self.src)
            self.copied += len(fields)
            self.src.ctx.check_time()
            for num, wire, start, vstart, end in fields:
                if num == value and wire == 2:
                    if seen == index:
                        inner = self._merge_at(msg.slice(vstart, end), rest[1:], child)
                        return msg.slice(0, start) + _wrap(num, inner) + msg.slice(end, msg.size)
                    seen += 1
            return msg + _wrap(value, self._merge_at(_Rope([]), rest[1:], child))
        if rest and rest[0][0] == "key":
            key = rest[0][1]
            assert isinstance(key, bytes)
            entry = _Rope([_key_field(key)]) + _wrap(2, self._merge_at(_Rope([]), rest[1:], child))
            return msg + _wrap(value, entry)
        return msg + _wrap(value, self._merge_at(_Rope([]), rest, child))

    def merge(self) -> _Rope:
        if not self.records:
            raise ChunkedError("no records")
        last = self.records[max(self.records)]
        if last.length > self.max_meta:
            raise ChunkedError(f"last record ({last.length} bytes) is over the {self.max_meta}-byte bound")
        meta = self.src.read_ref(last, 0, last.length)
        chunks: list[_Ref | None] = []
        message: bytes | None = None
        for num, wire, _, start, end in _fields(meta):
            if num == 2 and wire == 2:
                offset = None
                for n2, w2, _, s2, _e2 in _fields(meta[start:end]):
                    if n2 == 3 and w2 == 0:
                        offset = _varint(meta[start:end], s2)[0]
                chunks.append(self.records.get(offset or 0))
            elif num == 3 and wire == 2:
                message = (message or b"") + meta[start:end]
        if message is None:
            raise ChunkedError("last record is no ChunkMetadata (no message)")
        return self._build(chunks, message, 0)

    def _build(self, chunks: list[_Ref | None], cm: bytes, depth: int) -> _Rope:
        if depth > _MAX_DEPTH:
            raise ChunkedError("chunked messages nest too deep")
        out = _Rope([])
        fields = []
        for num, wire, _, start, end in _fields(cm):
            if num == 1 and wire == 0:
                index = _varint(cm, start)[0]
                chunk = chunks[index] if index < len(chunks) else None
                if chunk is None:
                    raise ChunkedError(f"chunk {index} is not in the file")
                out = _Rope([chunk])
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
            out = self._merge_at(out, _path(tags), self._build(chunks, sub, depth + 1))
        return out


def scan_chunked_proto(blob: Blob, ctx: ScanContext, *, max_meta: int = _MAX_META) -> None:
    """A Riegeli file: a chunked SavedModel (any ``.cpb``, or a file whose last record is a ChunkMetadata) is
    reassembled and judged as ``saved_model.pb``; one that cannot be read is unverified. The file is read by
    pieces: records stay in the file (compressed ones are inflated into a temporary file), and the reassembled
    message is a list of references to them that the SavedModel check reads through, skipping the tensor
    contents it does not judge, so memory stays bounded whatever the file's size. ``max_meta`` bounds what is read
    whole (the ChunkMetadata record and a chunk's record sizes)."""
    from loopwarden.checks.models.dispatch import seekable_blob
    from loopwarden.checks.models.tensorflow_ import scan_saved_model

    chunked = blob.name.lower().endswith(".cpb")
    blob = seekable_blob(blob, ctx)
    f = blob.open()
    ctx.closers.append(f)
    size = blob.size if blob.size is not None else f.seek(0, 2)
    src = _Source(f, size, ctx)
    try:
        merged = _Merger(src, riegeli_records(src, max_meta), max_meta).merge()
    except (ChunkedError, RecursionError) as exc:
        if chunked:
            ctx.fail(blob.location, f"chunked TensorFlow proto cannot be read ({str(exc)[:200]})")
        else:
            ctx.fail(blob.location, f"Riegeli file cannot be read as a chunked proto ({str(exc)[:200]})")
        return
    scan_saved_model(
        Blob(
            blob.name,
            blob.location,
            lambda: cast(BinaryIO, _RopeReader(merged, src)),
            merged.size,
            True,
            blob.depth,
        ),
        ctx,
    )
