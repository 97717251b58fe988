"""Apache Arrow and Parquet data files: the one thing in them a reader acts on as code.

pyarrow 0.14.0 to 14.0.0 unpickle the ``ARROW:extension:metadata`` of a field whose ``ARROW:extension:name`` is
``arrow.py_extension_type`` as soon as the schema is read (CVE-2023-47248; 14.0.1 and 15 to 20 do so only after
``PyExtensionType.set_auto_load(True)``, 21 removed the type). The schema sits in an Arrow IPC stream's first
message, in an Arrow IPC (Feather 2) file's footer, and base64-encoded under ``ARROW:schema`` in a Parquet footer.
pyarrow reads a Parquet or Arrow IPC file from its end and never checks its first bytes, so a file whose head is
an image or a model format is also one of them when its last bytes are such a footer.
"""

from __future__ import annotations

import base64
import io
import struct
from typing import BinaryIO, Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext

PY_EXTENSION: Final = b"arrow.py_extension_type"
_CHUNK: Final = 1 << 20
MAX_REGION: Final = 64 * 1024 * 1024
"""Schema bytes searched per region; a larger region is not searched (the target is unverified)."""
_LEGACY_MAX: Final = 16 * 1024 * 1024
"""The largest first message of a stream without the continuation marker (pyarrow before 0.15) searched."""


def _needles() -> tuple[bytes, ...]:
    """The marker as stored (IPC) and as base64 text at each of the three byte alignments (Parquet's
    ``ARROW:schema``: pyarrow's decoder stops at the first byte that is not base64, so the text is contiguous)."""
    out = [PY_EXTENSION]
    for shift in range(3):
        enc = base64.b64encode(b"\x00" * shift + PY_EXTENSION + b"\x00\x00")
        lead = (shift * 4 + 2) // 3  # characters that also carry the padding bytes before the marker
        out.append(enc[lead : lead + (len(PY_EXTENSION) * 4) // 3 - 1])
    return tuple(out)


_NEEDLES: Final = _needles()


def footer_kind(blob: Blob) -> tuple[str, int, int] | None:
    """``(kind, start, end)`` of the footer pyarrow reads when the last bytes of ``blob`` end a Parquet or Arrow
    IPC file (whatever its first bytes), else None."""
    size = blob.size
    if not blob.seekable or size is None or size < 12:
        return None
    tail = blob.tail(10)
    if len(tail) < 10:
        return None
    if tail[-4:] in (b"PAR1", b"PARE"):
        (n,) = struct.unpack_from("<I", tail, 2)
        if n > 0 and n + 8 <= size:
            return ("Parquet", size - 8 - n, size - 8)
    if tail[-6:] == b"ARROW1":
        (n,) = struct.unpack_from("<i", tail, 0)
        if n > 0 and n + 10 <= size:
            return ("Arrow IPC file", size - 10 - n, size - 10)
    return None


def _stream_message(blob: Blob) -> tuple[int, int] | None:
    """The first message of an Arrow IPC stream (with or without the continuation marker) or file."""
    head = blob.head(24)
    at = 8 if head.startswith(b"ARROW1") else 0
    if len(head) < at + 12:
        return None
    marked = at == 8
    if head[at : at + 4] == b"\xff\xff\xff\xff":  # the continuation marker of pyarrow 0.15 and later
        at, marked = at + 4, True
    (n, root) = struct.unpack_from("<iI", head, at)
    if n <= 0 or not 4 <= root < n:  # the message's flatbuffer opens with the offset of its root table
        return None
    if not marked and (n > _LEGACY_MAX or blob.size is None or at + 4 + n > blob.size):
        # a stream of the legacy format (no marker) is no more than a guess from the first bytes: those of any
        # other file (unverified whatever this finds) are not read through on its account
        return None
    return (at + 4, at + 4 + n)


def _seek(f: BinaryIO, start: int) -> None:
    """To ``start``: by reading up to it in a stream that cannot seek (a deflated archive member, whose first
    message is all this reads of it)."""
    if f.seekable():
        f.seek(start)
    else:
        f.read(start)


def _search(blob: Blob, start: int, end: int) -> bool:
    keep = max(len(n) for n in _NEEDLES) - 1
    with blob.open() as f:
        _seek(f, start)
        left, prev = end - start, b""
        while left > 0:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            window = prev + chunk
            if any(n in window for n in _NEEDLES):
                return True
            prev = window[-keep:]
    return False


# ------------------------------------------------------------------ the schema, as pyarrow reads it

_MAX_DEPTH: Final = 64
_MAX_FIELDS: Final = 100_000


class _Malformed(Exception):
    pass


class _Flat:
    """Just enough of a FlatBuffers reader for Arrow's Message, Footer, Schema, Field and KeyValue tables."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.visited = 0

    def _u32(self, at: int) -> int:
        if not 0 <= at <= len(self.buf) - 4:
            raise _Malformed("offset out of range")
        return int(struct.unpack_from("<I", self.buf, at)[0])

    def root(self) -> int:
        return self._u32(0)

    def field(self, table: int, slot: int) -> int | None:
        """Where the value of ``slot`` of the table at ``table`` is stored, or None when absent."""
        if not 0 <= table <= len(self.buf) - 4:
            raise _Malformed("table out of range")
        vtable = table - struct.unpack_from("<i", self.buf, table)[0]
        if not 0 <= vtable <= len(self.buf) - 4:
            raise _Malformed("vtable out of range")
        vlen = struct.unpack_from("<H", self.buf, vtable)[0]
        at = vtable + 4 + 2 * slot
        if 4 + 2 * slot + 2 > vlen or at + 2 > len(self.buf):
            return None
        off = struct.unpack_from("<H", self.buf, at)[0]
        return table + off if off else None

    def ref(self, table: int, slot: int) -> int | None:
        """The table, vector or string an offset field points to."""
        at = self.field(table, slot)
        return None if at is None else at + self._u32(at)

    def string(self, at: int) -> bytes:
        n = self._u32(at)
        if at + 4 + n > len(self.buf):
            raise _Malformed("string out of range")
        return self.buf[at + 4 : at + 4 + n]

    def tables(self, vec: int | None) -> list[int]:
        if vec is None:
            return []
        n = self._u32(vec)
        if vec + 4 + 4 * n > len(self.buf):
            raise _Malformed("vector out of range")
        return [vec + 4 + 4 * i + self._u32(vec + 4 + 4 * i) for i in range(n)]


def _field_pickles(fb: _Flat, field: int, out: list[bytes], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _Malformed("fields nested too deep")
    fb.visited += 1
    if fb.visited > _MAX_FIELDS:  # many offsets may share one field: bound the walk, not just its depth
        raise _Malformed("too many fields")
    meta: list[tuple[bytes, bytes]] = []
    for kv in fb.tables(fb.ref(field, 6)):  # Field.custom_metadata
        key, value = fb.ref(kv, 0), fb.ref(kv, 1)
        if key is not None:
            meta.append((fb.string(key), fb.string(value) if value is not None else b""))
    # pyarrow takes the first of repeated keys; any of them counts here
    if (b"ARROW:extension:name", PY_EXTENSION) in meta:
        out.extend(v for k, v in meta if k == b"ARROW:extension:metadata")
    for child in fb.tables(fb.ref(field, 5)):  # Field.children
        _field_pickles(fb, child, out, depth + 1)


def _schema_pickles(fb: _Flat, schema: int | None) -> list[bytes]:
    out: list[bytes] = []
    if schema is not None:
        for field in fb.tables(fb.ref(schema, 1)):  # Schema.fields
            _field_pickles(fb, field, out, 0)
    return out


def _message_pickles(data: bytes) -> list[bytes]:
    """The pickles in a serialized schema message (with or without its length prefix)."""
    at = 0
    if data[:4] == b"\xff\xff\xff\xff":
        at = 8
    elif len(data) >= 8 and 0 < struct.unpack_from("<i", data)[0] <= len(data) - 4:
        at = 4  # the legacy prefix: the length alone
    fb = _Flat(data[at:])
    return _schema_pickles(fb, fb.ref(fb.root(), 2))  # Message.header (a Schema)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    from loopwarden.checks.models.detect import read_varint

    value, pos = read_varint(buf, pos)
    if value is None:
        raise _Malformed("varint out of range")
    return value, pos


class _Thrift:
    """The Thrift compact protocol, to reach FileMetaData.key_value_metadata (field 5) of a Parquet footer."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf

    def skip(self, pos: int, kind: int, depth: int) -> int:
        if depth > _MAX_DEPTH:
            raise _Malformed("thrift nested too deep")
        if kind in (1, 2):
            return pos
        if kind == 3:
            return pos + 1
        if kind in (4, 5, 6):
            return _varint(self.buf, pos)[1]
        if kind == 7:
            return pos + 8
        if kind == 8:
            n, pos = _varint(self.buf, pos)
            return pos + n
        if kind in (9, 10):
            n, elem, pos = self._list(pos)
            for _ in range(n):
                pos = self._element(pos, elem, depth)
                if pos > len(self.buf):
                    raise _Malformed("list out of range")
            return pos
        if kind == 11:
            n, pos = _varint(self.buf, pos)
            if n:
                if pos >= len(self.buf):
                    raise _Malformed("map out of range")
                kv = self.buf[pos]
                pos += 1
                for _ in range(n):
                    pos = self._element(pos, kv >> 4, depth)
                    pos = self._element(pos, kv & 15, depth)
                    if pos > len(self.buf):
                        raise _Malformed("map out of range")
            return pos
        if kind == 12:
            return self.fields(pos)[1]
        raise _Malformed(f"thrift type {kind}")

    def _element(self, pos: int, kind: int, depth: int) -> int:
        """Skip one element of a list, set or map: there a bool is a byte of its own."""
        return pos + 1 if kind in (1, 2) else self.skip(pos, kind, depth + 1)

    def _list(self, pos: int) -> tuple[int, int, int]:
        if pos >= len(self.buf):
            raise _Malformed("list out of range")
        head = self.buf[pos]
        pos += 1
        n = head >> 4
        if n == 15:
            n, pos = _varint(self.buf, pos)
        return n, head & 15, pos

    def fields(self, pos: int) -> tuple[list[tuple[int, int, int]], int]:
        """``(id, type, value position)`` of each field of the struct at ``pos``, and where the struct ends."""
        out: list[tuple[int, int, int]] = []
        fid = 0
        while True:
            if pos >= len(self.buf):
                raise _Malformed("struct out of range")
            head = self.buf[pos]
            pos += 1
            if head == 0:
                return out, pos
            delta, kind = head >> 4, head & 15
            if delta:
                fid += delta
            else:
                raw, pos = _varint(self.buf, pos)
                fid = (raw >> 1) ^ -(raw & 1)
            out.append((fid, kind, pos))
            pos = self.skip(pos, kind, 1)

    def binary(self, pos: int) -> bytes:
        n, pos = _varint(self.buf, pos)
        if pos + n > len(self.buf):
            raise _Malformed("binary out of range")
        return self.buf[pos : pos + n]


def _parquet_schemas(footer: bytes) -> list[bytes]:
    """The ``ARROW:schema`` values of a Parquet FileMetaData."""
    t = _Thrift(footer)
    out: list[bytes] = []
    for fid, kind, pos in t.fields(0)[0]:
        if fid != 5 or kind != 9:
            continue
        n, elem, pos = t._list(pos)
        for _ in range(n):
            if elem != 12:
                break
            key = value = None
            fields, pos = t.fields(pos)
            for kfid, kkind, kpos in fields:
                if kkind == 8 and kfid == 1:
                    key = t.binary(kpos)
                elif kkind == 8 and kfid == 2:
                    value = t.binary(kpos)
            if key == b"ARROW:schema" and value is not None:
                out.append(value)
    return out


def _b64(value: bytes) -> bytes:
    """pyarrow's base64 decoding: up to the first byte that is not base64."""
    end = 0
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    while end < len(value) and value[end] in alphabet:
        end += 1
    text = value[:end]
    text = text[: len(text) - len(text) % 4] + (
        text[len(text) - len(text) % 4 :] + b"=" * (-len(text) % 4) if len(text) % 4 != 1 else b""
    )
    return base64.b64decode(text)


def _pickles(blob: Blob, kind: str, start: int, end: int) -> list[bytes] | None:
    """The extension metadata pyarrow unpickles from one schema region; None when it cannot be parsed."""
    with blob.open() as f:
        _seek(f, start)
        data = f.read(end - start)
    out: list[bytes] = []
    try:
        if kind == "Parquet":
            for value in _parquet_schemas(data):
                out.extend(_message_pickles(_b64(value)))
        else:
            fb = _Flat(data)
            # Footer.schema of a file, Message.header of a stream's first message
            out.extend(_schema_pickles(fb, fb.ref(fb.root(), 1 if kind == "Arrow IPC file" else 2)))
    except (_Malformed, struct.error, ValueError, IndexError, RecursionError):
        return None
    return out


def check_arrow_schema(blob: Blob, ctx: ScanContext) -> None:
    """Report the fields of ``arrow.py_extension_type`` in the schemas pyarrow reads from ``blob``, and analyse
    the pickles it would load from them."""
    regions: list[tuple[str, int, int]] = []
    footer = footer_kind(blob)
    if footer is not None:
        regions.append(footer)
    first = _stream_message(blob)
    if first is not None:
        regions.append(("Arrow IPC stream", *first))
    marked: list[tuple[str, int, int]] = []
    for kind, start, end in regions:
        end = end if blob.size is None else min(end, blob.size)
        if end - start > MAX_REGION:
            ctx.fail(blob.location, f"Arrow schema of {end - start} bytes not searched (over {MAX_REGION})")
            continue
        if start < end and _search(blob, start, end):
            marked.append((kind, start, end))
    if not marked:
        return
    found: list[bytes] = []
    unparsed = False
    for region in marked:
        got = _pickles(blob, *region)
        unparsed = unparsed or got is None
        found.extend(got or ())
    if not found and not unparsed:
        return  # the name is only text in the schema (a column name, a metadata value)
    ctx.add(
        rules.ArrowPickledExtension,
        "Arrow schema field of extension type arrow.py_extension_type: pyarrow up to 14.0.0 unpickles its "
        "ARROW:extension:metadata when it reads the schema (CVE-2023-47248), pyarrow 14.0.1 to 20 after "
        "PyExtensionType.set_auto_load(True)"
        + ("" if found else "; the pickle could not be located and is not analysed"),
        blob.location,
        subject="arrow.py_extension_type",
    )
    from loopwarden.checks.models._pickle import analyse

    for data in dict.fromkeys(found or ()):  # a file's footer and first message hold the same schema
        res = analyse(io.BytesIO(data), ctx, blob.location, max_pickles=1, joblib=False, resync=False)
        ctx.findings.extend(res.findings)
        if res.unverified:
            ctx.fail(blob.location, f"pickled Arrow extension type: {res.unverified}")
