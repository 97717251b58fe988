"""Streaming shard readers: JSONL, JSON arrays, CSV/TSV, Parquet and plain text, optionally gzip/zstd
compressed.

Every reader yields :class:`Record` values (with the canonical bytes the manifest hashes) and
:class:`RecordError` values for input it cannot read. Nothing here ever holds more than one record plus one
read buffer in memory:

* a line longer than ``Limits.max_record_bytes`` is never read whole: it becomes a ``RecordError`` and the
  reader skips to the next newline in bounded chunks;
* a malformed JSON line is a ``RecordError`` carrying its line number, and the shard goes on;
* a truncated or corrupt compressed stream, an unsupported compression or a missing optional library ends the
  shard with a *fatal* ``RecordError`` (``fatal=True``) — never a silent short read.

A consumer treats any ``RecordError`` as "this shard was not fully analysed": its verdict is ``unverified``.

Canonical record bytes (what the manifest hashes):

* JSON-like records (JSONL, JSON arrays, CSV rows, Parquet rows): RFC 8785 JSON Canonicalization Scheme
  (JCS), via the ``rfc8785`` package. JCS covers exactly I-JSON: integers outside +-(2**53 - 1) and non-finite
  floats cannot be canonicalised, so such a record is a ``RecordError`` rather than hashed some other way.
  Objects with duplicate keys are rejected too (parsers disagree on which value wins: a known smuggling
  vector).
* Plain text: the exact line bytes without the line terminator (``\\n`` or ``\\r\\n``).
"""

from __future__ import annotations

import codecs
import csv
import enum
import gzip
import io
import json
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import rfc8785

from loopwarden.checks.interface import Limits

__all__ = [
    "MISSING_ID_PROBLEM",
    "Compression",
    "Record",
    "RecordError",
    "ShardFormat",
    "ShardInfo",
    "canonical_bytes",
    "detect_compression",
    "detect_format",
    "detect_shard",
    "discover_shards",
    "expand_paths",
    "iter_records",
]

_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_PARQUET_MAGIC: Final = b"PAR1"
_OTHER_MAGIC: Final = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}
_COMPRESSION_SUFFIXES: Final = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
_CHUNK: Final = 1 << 20
_ZSTD_INPUT_CHUNK: Final = 1024
"""zstd has no output bound per call; 1 KiB of input inflates to at most ~32 MiB (RLE blocks): bounded."""
_TIME_CHECK_EVERY: Final = 1024
MISSING_ID_PROBLEM: Final = "record has no usable id field"
"""The start of the problem text of the RecordError that announces an id fallback."""


class ShardFormat(enum.StrEnum):
    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"
    PARQUET = "parquet"
    TEXT = "text"


class Compression(enum.StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """What a shard is: its record format and its outer compression (``unsupported`` names a compression we
    recognise but cannot read, e.g. ``xz``)."""

    format: ShardFormat
    compression: Compression
    unsupported: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a shard."""

    id: str
    """The ``id_field`` value if given and present, else the 0-based record number as a string."""
    number: int
    """0-based record number within the shard (counts records yielded and records in error alike)."""
    line: int | None
    """1-based line number where the record starts, for line-oriented formats."""
    value: Any
    """Parsed JSON value / CSV row dict / Parquet row dict / ``str`` for plain text."""
    raw: bytes
    """Canonical bytes of the record: what the manifest hashes."""


@dataclass(frozen=True, slots=True)
class RecordError:
    """Input the reader could not turn into a record. The shard goes on unless ``fatal``; either way the
    shard is ``unverified``."""

    number: int
    line: int | None
    problem: str
    fatal: bool = False
    """The reader stopped here (truncated stream, unsupported format, resource bound): nothing after it was
    read."""


class _FatalError(Exception):
    """Internal: the stream cannot be read any further."""


# --------------------------------------------------------------------------------------------- detection


def _peek(path: Path, n: int = 8) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def detect_compression(path: Path) -> tuple[Compression, str | None]:
    """The outer compression by magic bytes (never by extension alone); the second item names an unsupported
    one."""
    head = _peek(path)
    if head.startswith(_GZIP_MAGIC):
        return Compression.GZIP, None
    if head.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD, None
    for magic, name in _OTHER_MAGIC.items():
        if head.startswith(magic):
            return Compression.NONE, name
    return Compression.NONE, None


def _inner_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def _first_significant_byte(path: Path, compression: Compression) -> bytes:
    """The first non-whitespace byte of the decompressed content (b"" if none in the first 64 KiB)."""
    try:
        with _open_decompressed(path, compression, Limits()) as fh:
            head = fh.read(1 << 16)
    except (_FatalError, OSError, EOFError, zlib.error):
        return b""
    stripped = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    return stripped[:1]


def detect_shard(path: Path) -> ShardInfo:
    """Format and compression of a shard, by content first and extension second.

    Parquet is recognised by its ``PAR1`` magic. A ``.jsonl``/``.ndjson`` file is JSON lines; a ``.json``
    file is a JSON array when its first significant byte is ``[`` and JSON lines otherwise; ``.csv``/``.tsv``
    are CSV; for any other name the content decides (``[`` → JSON array, ``{`` → JSON lines, else plain text).
    """
    compression, unsupported = detect_compression(path)
    suffix = _inner_suffix(path)
    if compression is Compression.NONE and _peek(path, 4) == _PARQUET_MAGIC:
        return ShardInfo(ShardFormat.PARQUET, compression, unsupported)
    if suffix == ".parquet":
        return ShardInfo(ShardFormat.PARQUET, compression, unsupported)
    if unsupported is not None:
        return ShardInfo(ShardFormat.TEXT, compression, unsupported)
    if suffix in (".jsonl", ".ndjson"):
        return ShardInfo(ShardFormat.JSONL, compression)
    if suffix in (".csv", ".tsv"):
        return ShardInfo(ShardFormat.CSV, compression)
    first = _first_significant_byte(path, compression)
    if suffix == ".json":
        fmt = ShardFormat.JSON if first == b"[" else ShardFormat.JSONL
        return ShardInfo(fmt, compression)
    if suffix in (".txt", ".text"):
        return ShardInfo(ShardFormat.TEXT, compression)
    if first == b"[":
        return ShardInfo(ShardFormat.JSON, compression)
    if first == b"{":
        return ShardInfo(ShardFormat.JSONL, compression)
    return ShardInfo(ShardFormat.TEXT, compression)


def detect_format(path: Path) -> ShardFormat:
    """The record format of a shard (see :func:`detect_shard`)."""
    return detect_shard(path).format


def discover_shards(path: Path) -> tuple[list[Path], list[Path]]:
    """The shard files under ``path`` (itself if a file), sorted, and the symbolic links that were not
    followed.

    Hidden files and folders (names starting with ``.``) are skipped: they are tool state, not data.
    """
    if path.is_symlink():
        return [], [path]
    if path.is_file():
        return [path], []
    files: list[Path] = []
    links: list[Path] = []
    stack = [path]
    while stack:
        d = stack.pop()
        for child in sorted(d.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_symlink():
                links.append(child)
            elif child.is_dir():
                stack.append(child)
            elif child.is_file():
                files.append(child)
    return sorted(files), sorted(links)


def expand_paths(paths: Sequence[Path]) -> list[Path]:
    """The shard files named by ``paths`` (folders expanded, as :func:`discover_shards`; a symbolic link to a
    file is read, since scanning does not name files by their place). Raises ``InputError`` for a missing
    path."""
    from loopwarden.errors import InputError

    out: list[Path] = []
    for p in paths:
        if not p.exists():
            raise InputError(p, "no such file or folder")
        files, links = discover_shards(p)
        out.extend(files)
        out.extend(link for link in links if link.is_file())
    if not out:
        raise InputError(paths[0] if paths else Path("."), "no data files found")
    return sorted(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------------ streams


class _Guarded(io.RawIOBase):
    """A raw reader over a decompressing source that enforces the decompression bounds and names
    truncation."""

    def __init__(self, source: _Source, compressed_size: int, limits: Limits, what: str) -> None:
        self._src = source
        self._total = 0
        self._compressed = max(compressed_size, 1)
        self._limits = limits
        self._what = what

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._src.read(len(b))
        n = len(data)
        b[:n] = data
        self._total += n
        if self._total > self._limits.max_decompressed_bytes:
            raise _FatalError(
                f"resource limit 'max_decompressed_bytes' reached: {self._what} inflates beyond "
                f"{self._limits.max_decompressed_bytes} bytes"
            )
        floor = 64 * 1024**2
        if self._total > floor and self._total > self._compressed * self._limits.max_decompression_ratio:
            raise _FatalError(
                f"resource limit 'max_decompression_ratio' reached: {self._what} inflates more than "
                f"{self._limits.max_decompression_ratio:g}x"
            )
        return n


class _Source:
    def read(self, n: int) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _GzipSource(_Source):
    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self._gz = gzip.GzipFile(fileobj=fh, mode="rb")

    def read(self, n: int) -> bytes:
        try:
            return self._gz.read(n)
        except EOFError:
            raise _FatalError("truncated gzip stream: it ends before the end-of-stream marker") from None
        except (gzip.BadGzipFile, zlib.error, OSError) as exc:
            raise _FatalError(f"corrupt gzip stream: {exc}") from None

    def close(self) -> None:
        self._gz.close()
        self._fh.close()


class _ZstdSource(_Source):
    """zstd frames decoded one after another; a stream that ends inside a frame is a truncation."""

    def __init__(self, fh: IO[bytes]) -> None:
        import zstandard

        self._zstd = zstandard
        self._fh = fh
        self._dctx = zstandard.ZstdDecompressor()
        self._obj: Any = None
        self._pending = b""
        self._out = bytearray()
        self._eof = False

    def _fill(self, want: int) -> None:
        zstd = self._zstd
        while len(self._out) < want and not self._eof:
            if not self._pending:
                self._pending = self._fh.read(_ZSTD_INPUT_CHUNK)
                if not self._pending:
                    if self._obj is not None:
                        raise _FatalError("truncated zstd stream: it ends inside a frame")
                    self._eof = True
                    return
            if self._obj is None:
                self._obj = self._dctx.decompressobj()
            chunk, self._pending = self._pending[:_ZSTD_INPUT_CHUNK], self._pending[_ZSTD_INPUT_CHUNK:]
            try:
                self._out += self._obj.decompress(chunk)
            except zstd.ZstdError as exc:
                raise _FatalError(f"corrupt zstd stream: {exc}") from None
            if self._obj.eof:
                self._pending = bytes(self._obj.unused_data) + self._pending
                self._obj = None

    def read(self, n: int) -> bytes:
        self._fill(n)
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def close(self) -> None:
        self._fh.close()


class _PlainSource(_Source):
    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh

    def read(self, n: int) -> bytes:
        return self._fh.read(n)

    def close(self) -> None:
        self._fh.close()


class _Stream(io.BufferedReader):
    def __init__(self, raw: _Guarded, source: _Source) -> None:
        super().__init__(raw, buffer_size=_CHUNK)
        self._source = source

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._source.close()


def _open_decompressed(path: Path, compression: Compression, limits: Limits) -> _Stream:
    fh = path.open("rb")
    source: _Source
    if compression is Compression.GZIP:
        source = _GzipSource(fh)
    elif compression is Compression.ZSTD:
        try:
            source = _ZstdSource(fh)
        except ImportError:
            fh.close()
            raise _FatalError(
                "zstd-compressed shard but the 'zstandard' package (a loopwarden dependency) is missing"
            ) from None
    else:
        source = _PlainSource(fh)
    size = path.stat().st_size
    return _Stream(_Guarded(source, size, limits, f"{compression} stream"), source)


# --------------------------------------------------------------------------------------------- canonical


def _json_problem(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} (column {exc.colno})" if exc.lineno == 1 else exc.msg
    return str(exc)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _pairs(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k[:80]!r} in one object")
        out[k] = v
    return out


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_reject_constant)


_SAFE_INT: Final = 2**53 - 1
_FAST_ENCODER: Final = json.JSONEncoder(
    ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False, check_circular=False
)


def _fast_ok(value: Any) -> bool:
    """True when Python's compact sorted JSON of ``value`` is byte-identical to its RFC 8785 form: no floats
    (JCS formats numbers the ECMAScript way), integers within I-JSON's range, and no object key with a
    character at or above U+E000 (JCS sorts keys by UTF-16 code units, Python by code points; the two orders
    agree below the surrogate range's upper neighbours). Strings escape identically otherwise."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str) or v is None or isinstance(v, bool):
            continue
        if isinstance(v, int):
            if not -_SAFE_INT <= v <= _SAFE_INT:
                return False
        elif isinstance(v, dict):
            for k, item in v.items():
                if not isinstance(k, str) or (not k.isascii() and max(k) >= "\ue000"):
                    return False
                stack.append(item)
        elif isinstance(v, list):
            stack.extend(v)
        else:
            return False
    return True


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of a JSON value. Raises ``ValueError`` for values outside I-JSON.

    Values without floats take a fast path through the standard library's encoder that gives the same bytes
    (a property test compares both); everything else goes through ``rfc8785``.
    """
    if _fast_ok(value):
        try:
            return _FAST_ENCODER.encode(value).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 names the problem below
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError) as exc:  # rfc8785 lets a lone surrogate in a key
        raise ValueError(f"cannot canonicalise (RFC 8785): {exc}") from None  # through as UnicodeEncodeError


def _record_id(value: Any, id_field: str | None, number: int) -> str | None:
    """The record's id, or None when ``id_field`` is given but absent/unusable (the caller falls back)."""
    if id_field is None:
        return str(number)
    if isinstance(value, dict) and id_field in value:
        v = value[id_field]
        if isinstance(v, str) and v:
            return v
        if isinstance(v, bool) or v is None:
            return None
        if isinstance(v, int | float):
            return json.dumps(v)
    return None


class _Counter:
    """Record numbering, the time bound, and the id fallback (which also yields a RecordError)."""

    def __init__(self, limits: Limits, id_field: str | None) -> None:
        self.number = 0
        self._limits = limits
        self._deadline = time.monotonic() + limits.max_seconds
        self._id_field = id_field

    def tick(self) -> int:
        n = self.number
        self.number += 1
        if n % _TIME_CHECK_EVERY == 0 and time.monotonic() > self._deadline:
            raise _FatalError(
                f"resource limit 'max_seconds' reached after {n} records ({self._limits.max_seconds:g} s)"
            )
        return n

    def record(self, n: int, line: int | None, value: Any, raw: bytes) -> Iterator[Record | RecordError]:
        if len(raw) > self._limits.max_record_bytes:
            yield RecordError(
                n, line, f"record exceeds {self._limits.max_record_bytes} bytes (max_record_bytes)"
            )
            return
        rid = _record_id(value, self._id_field, n)
        if rid is None:
            rid = str(n)
            yield RecordError(
                n,
                line,
                f"{MISSING_ID_PROBLEM} {self._id_field!r}; its id falls back to its number {n}",
            )
        yield Record(rid, n, line, value, raw)


# ------------------------------------------------------------------------------------------ line readers


def _lines(stream: IO[bytes], limit: int, after: int = 0) -> Iterator[tuple[int, bytes | None]]:
    """(1-based line number, line bytes without the terminator) or (line, None) for a line over ``limit``.

    An over-long line is skipped in bounded chunks up to the next newline; it is never held whole. ``after``
    is the number of lines already consumed from ``stream``.
    """
    lineno = after
    while True:
        line = stream.readline(limit + 1)
        if not line:
            return
        lineno += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while True:
                rest = stream.readline(_CHUNK)
                if not rest or rest.endswith(b"\n"):
                    break
            yield lineno, None
            continue
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        yield lineno, line


def _iter_jsonl(stream: IO[bytes], counter: _Counter, limits: Limits) -> Iterator[Record | RecordError]:
    for lineno, line in _lines(stream, limits.max_record_bytes):
        if line is None:
            yield RecordError(
                counter.tick(), lineno, f"line exceeds {limits.max_record_bytes} bytes (max_record_bytes)"
            )
            continue
        if not line.strip():
            continue
        n = counter.tick()
        try:
            value = _DECODER.decode(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield RecordError(n, lineno, f"line is not valid UTF-8 (byte {exc.start})")
            continue
        except ValueError as exc:
            yield RecordError(n, lineno, f"malformed JSON: {_json_problem(exc)}")
            continue
        try:
            raw = canonical_bytes(value)
        except ValueError as exc:
            yield RecordError(n, lineno, str(exc))
            continue
        yield from counter.record(n, lineno, value, raw)


def _iter_text(stream: IO[bytes], counter: _Counter, limits: Limits) -> Iterator[Record | RecordError]:
    for lineno, line in _lines(stream, limits.max_record_bytes):
        n = counter.tick()
        if line is None:
            yield RecordError(n, lineno, f"line exceeds {limits.max_record_bytes} bytes (max_record_bytes)")
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield RecordError(n, lineno, f"line is not valid UTF-8 (byte {exc.start})")
            continue
        # Plain text has no id field: the record number is the id.
        yield Record(str(n), n, lineno, text, line)


@dataclass(slots=True)
class _CsvState:
    line: int = 0
    row_bytes: int = 0
    row_start: int = 1
    bad: str = ""


def _iter_csv(
    stream: IO[bytes], counter: _Counter, limits: Limits, delimiter: str
) -> Iterator[Record | RecordError]:
    """CSV rows as header→value dicts. Physical lines are bounded; a quoted field spanning lines is bounded
    by the bytes fed into one row."""
    state = _CsvState()

    class _RowError(Exception):
        pass

    def feed() -> Iterator[str]:
        for lineno, line in _lines(stream, limits.max_record_bytes, state.line):
            state.line = lineno
            if line is None:
                state.bad = f"line exceeds {limits.max_record_bytes} bytes (max_record_bytes)"
                raise _RowError
            state.row_bytes += len(line)
            if state.row_bytes > limits.max_record_bytes:
                state.bad = f"row exceeds {limits.max_record_bytes} bytes (max_record_bytes)"
                raise _RowError
            try:
                text = line.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                state.bad = f"line is not valid UTF-8 (byte {exc.start})"
                raise _RowError from None
            yield text + "\n"

    if csv.field_size_limit() < limits.max_record_bytes:
        # csv's per-field bound is process-wide; raising it to our own record bound keeps memory bounded.
        csv.field_size_limit(limits.max_record_bytes)
    header: list[str] | None = None
    while True:
        reader = csv.reader(feed(), delimiter=delimiter, strict=True)
        try:
            for row in reader:
                start = state.row_start
                state.row_start = state.line + 1
                state.row_bytes = 0
                if not row:
                    continue
                if header is None:
                    header = row
                    dupes = sorted({h for h in row if row.count(h) > 1})
                    if dupes:
                        raise _FatalError(f"CSV header repeats column(s) {', '.join(dupes)}")
                    continue
                n = counter.tick()
                if len(row) != len(header):
                    yield RecordError(n, start, f"row has {len(row)} fields, the header has {len(header)}")
                    continue
                value = dict(zip(header, row, strict=True))
                yield from counter.record(n, start, value, canonical_bytes(value))
            return
        except _RowError:
            yield RecordError(counter.tick(), state.line, state.bad)
        except csv.Error as exc:
            yield RecordError(counter.tick(), state.row_start, f"malformed CSV: {exc}")
        state.row_start = state.line + 1
        state.row_bytes = 0


# ------------------------------------------------------------------------------------------- JSON arrays


def _iter_json_array(stream: IO[bytes], counter: _Counter, limits: Limits) -> Iterator[Record | RecordError]:
    """Elements of a top-level JSON array, decoded one at a time from a bounded buffer.

    The buffer holds at most one element plus one read chunk: an element larger than ``max_record_bytes``
    ends the shard (inside an array there is no safe point to resynchronise at).
    """
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    buf = ""
    pos = 0
    line = 1  # the line number at buf[counted]
    counted = 0
    eof = False

    def more() -> bool:
        nonlocal buf, pos, eof, line, counted
        if eof:
            return False
        chunk = stream.read(max(_CHUNK, len(buf) - pos))
        try:
            text = decoder.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise _FatalError(f"JSON array is not valid UTF-8 near line {line}: {exc.reason}") from None
        line += buf.count("\n", counted, pos)
        counted = 0
        buf = buf[pos:] + text
        pos = 0
        if not chunk:
            eof = True
        return True

    def line_at(p: int) -> int:
        """The line number at buf[p], counting newlines incrementally (p only grows between refills)."""
        nonlocal line, counted
        line += buf.count("\n", counted, p)
        counted = p
        return line

    def skip_ws() -> bool:
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n":
                pos += 1
            if pos < len(buf):
                return True
            if not more():
                return False

    if not skip_ws() or buf[pos] != "[":
        raise _FatalError("not a JSON array: the first significant character is not '['")
    pos += 1
    first = True
    while True:
        if not skip_ws():
            raise _FatalError(f"truncated JSON array: it ends at line {line} without ']'")
        if buf[pos] == "]":
            pos += 1
            if skip_ws():
                raise _FatalError(f"unexpected content after the closing ']' at line {line_at(pos)}")
            return
        if not first:
            if buf[pos] != ",":
                raise _FatalError(f"malformed JSON array at line {line_at(pos)}: expected ',' or ']'")
            pos += 1
            if not skip_ws():
                raise _FatalError(f"truncated JSON array: it ends at line {line} without ']'")
        first = False
        start_line = line_at(pos)
        while True:
            try:
                value, end = _DECODER.raw_decode(buf, pos)
            except ValueError as exc:
                if len(buf) - pos > limits.max_record_bytes:
                    raise _FatalError(
                        f"array element at line {start_line} exceeds {limits.max_record_bytes} bytes "
                        "(max_record_bytes)"
                    ) from None
                if more():
                    continue
                raise _FatalError(
                    f"malformed JSON array element at line {start_line}: {_json_problem(exc)}"
                ) from None
            # A number at the very end of the buffer may continue in the next chunk.
            if end == len(buf) and not eof and more():
                continue
            break
        n = counter.tick()
        pos = end
        try:
            raw = canonical_bytes(value)
        except ValueError as exc:
            yield RecordError(n, start_line, str(exc))
            continue
        yield from counter.record(n, start_line, value, raw)


# ----------------------------------------------------------------------------------------------- Parquet


def _arrow_jsonable(value: Any) -> Any:
    """Parquet values as JSON: bytes → base64, temporal → ISO 8601, Decimal → string, non-finite floats →
    strings."""
    import base64
    import datetime as dt
    import decimal
    import math

    if isinstance(value, dict):
        return {str(k): _arrow_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if value and all(isinstance(x, tuple) and len(x) == 2 for x in value):  # a map: (key, value) pairs
            return [[_arrow_jsonable(k), _arrow_jsonable(v)] for k, v in value]
        return [_arrow_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _iter_parquet(path: Path, counter: _Counter, limits: Limits) -> Iterator[Record | RecordError]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise _FatalError(
            "Parquet shard but 'pyarrow' is not installed (pip install 'loopwarden[parquet]')"
        ) from None
    try:
        pf = pq.ParquetFile(path)
        batches = pf.iter_batches(batch_size=1024)
        for batch in batches:
            for row in batch.to_pylist():
                n = counter.tick()
                value = _arrow_jsonable(row)
                try:
                    raw = canonical_bytes(value)
                except ValueError as exc:
                    yield RecordError(n, None, str(exc))
                    continue
                yield from counter.record(n, None, value, raw)
    except _FatalError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types (ArrowInvalid, OSError, ...)
        raise _FatalError(f"unreadable Parquet: {type(exc).__name__}: {str(exc)[:200]}") from None


# ------------------------------------------------------------------------------------------- entry point


def iter_records(
    path: Path,
    *,
    id_field: str | None = None,
    limits: Limits | None = None,
    info: ShardInfo | None = None,
) -> Iterator[Record | RecordError]:
    """Stream the records of one shard, in order, in bounded memory.

    ``id_field`` names the field holding each record's id; a record without it gets its number as id and a
    ``RecordError`` says so (the record itself is still yielded, right after). The last item is a fatal
    ``RecordError`` when the shard could not be read to its end (unreadable file, truncated or corrupt
    compressed stream, unsupported format, missing optional library, resource bound). Never raises for bad
    content.
    """
    limits = limits or Limits()
    counter = _Counter(limits, id_field)
    try:
        size = path.stat().st_size
        if size > limits.max_file_bytes:
            raise _FatalError(
                f"resource limit 'max_file_bytes' reached: {size} > {limits.max_file_bytes} bytes"
            )
        info = info or detect_shard(path)
        if info.unsupported is not None:
            raise _FatalError(f"unsupported compression {info.unsupported}")
        if info.format is ShardFormat.PARQUET:
            if info.compression is not Compression.NONE:
                raise _FatalError(
                    f"{info.compression}-compressed Parquet is not supported (Parquet compresses inside)"
                )
            yield from _iter_parquet(path, counter, limits)
            return
        with _open_decompressed(path, info.compression, limits) as stream:
            if info.format is ShardFormat.JSONL:
                yield from _iter_jsonl(stream, counter, limits)
            elif info.format is ShardFormat.JSON:
                yield from _iter_json_array(stream, counter, limits)
            elif info.format is ShardFormat.CSV:
                delimiter = "\t" if _inner_suffix(path) == ".tsv" else ","
                yield from _iter_csv(stream, counter, limits, delimiter)
            else:
                yield from _iter_text(stream, counter, limits)
    except _FatalError as exc:
        yield RecordError(counter.number, None, str(exc), fatal=True)
    except OSError as exc:
        yield RecordError(counter.number, None, f"cannot read: {exc.strerror or exc}", fatal=True)
