"""Shared machinery of the model-container checks: the scan context, byte sources and bounded readers.

A *blob* is anything with bytes: a file, a zip member, a decompressed stream. Every container module receives
a
:class:`Blob` and the :class:`ScanContext` into which it adds findings and reasons for ``unverified``. Readers
never hold more than a bounded chunk in memory; decompression counts output against the context's budget.
"""

from __future__ import annotations

import io
import os
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, cast

from loopwarden.checks.interface import Limits, ResourceLimitExceeded
from loopwarden.domain import Finding, Location, Rule

__all__ = [
    "Blob",
    "DecompressReader",
    "ScanContext",
    "SliceReader",
    "open_slice",
    "read_range",
    "spool",
]

CHUNK = 1 << 20
SPOOL_IN_MEMORY = 8 << 20
SLURP_MAX = 1 << 20
"""The scanner reads files up to this size whole (a bound per target, so peak memory stays flat)."""
RATIO_FLOOR = 64 << 20
"""The decompression ratio of a stream read from bytes as stored is judged once its output passes this many
bytes. Below it any ratio is accepted: deflate tops out near 1,032:1, so such a stream costs at most this much
work (sparse or zero-initialised arrays in ``np.savez_compressed`` or ``joblib.dump(compress=3)`` reach
200-1,000:1), and the totals stay bounded by ``max_decompressed_bytes`` and ``max_seconds``."""
NESTED_RATIO_FLOOR = 1 << 20
"""The floor for a stream whose compressed bytes are themselves decompressed output (an archive in a compressed
archive, a gzip in a zip): ratios multiply there, which is what 42.zip-style bombs are made of."""


@dataclass
class ScanContext:
    """Per-target state: findings, reasons the target cannot be verified, budgets."""

    path: str
    limits: Limits
    allow: Any
    started: float = field(default_factory=time.monotonic)
    findings: list[Finding] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    decompressed: int = 0
    members: int = 0
    references: list[str] = field(default_factory=list)
    """Real paths of files this target makes a loader read as raw data (ONNX external data)."""
    closers: list[Any] = field(default_factory=list)
    """Temporary files to close when the target is done."""
    physical_dir: str | None = None
    """The folder of the file on disk (for ONNX external data), when the target is a real file."""
    failures: int = 0
    """How many times :meth:`fail` was called, repeats included (``unverified`` keeps each text once)."""
    firm_failures: int = 0
    """How many of those calls were not misreadings (see :meth:`fail`): a bound, a read error, a broken file of a
    recognised format. Counted by call, so a firm reason whose text was already stored still counts."""
    storages: dict[tuple[str, str | None], tuple[tuple[str, int, int | None], ...]] = field(
        default_factory=dict
    )
    """Storages a torch ``<root>/data.pkl`` declares, by its location: checked against the archive's records."""
    archive_files: dict[tuple[str, str | None], Callable[[str], list[Blob]]] = field(default_factory=dict)
    """For an archive whose members are extracted side by side (tar), by its location: the member blobs a path
    inside it reaches once extracted (a distributed checkpoint's ``.metadata`` names its data files so)."""
    torchscript: dict[str, Any] = field(default_factory=dict)
    """TorchScript code files read so far (tokens and location) and the functions among them that return a sparse
    index alias (see ``torch._sparse_indices``): a call in one file reaches a function in another."""
    sparse: dict[tuple[str, str | None], tuple[Any, ...]] = field(default_factory=dict)
    """Sparse index tensors a torch ``<root>/data.pkl`` declares, by its location (see ``PickleResult.sparse``):
    their values are checked in the archive's records."""

    def add(self, rule: type[Rule], message: str, location: Location, **evidence: Any) -> None:
        self.findings.append(Finding(rule.rule_id, rule.severity, message, location, evidence))

    def add_severity(
        self, rule: type[Rule], severity: Any, message: str, location: Location, **ev: Any
    ) -> None:
        self.findings.append(Finding(rule.rule_id, severity, message, location, ev))

    def fail(self, location: Location, reason: str, *, misread: bool = False) -> None:
        """Record why the target cannot be verified.

        ``misread``: the bytes only began like a format and are not that format after all, and every real loader
        of that format rejects them without acting on anything in them (a MessagePack value that does not fit
        the file, a compressed stream that breaks off, bytes of no format). Raw data that a model names as its
        data (ONNX external data) is clean when all of its reasons are such misreadings and nothing was found
        (see :attr:`only_misread`); a bound, a read error, a time limit or a broken file of a format a loader
        would still act on must never be marked so (fail closed).
        """
        self.failures += 1
        if not misread:
            self.firm_failures += 1
        where = f"{location.member}: " if location.member else ""
        text = f"{where}{reason}"
        # the same bound is often reported twice for one member: by the reader that hit it and by the analysis
        # that was reading (which adds its own prefix); one reason is enough
        if not any(reason in u for u in self.unverified if u.startswith(where)):
            self.unverified.append(text)

    @property
    def only_misread(self) -> bool:
        """Unverified only because the bytes were misread as some format (see :meth:`fail`), with no finding."""
        return bool(self.unverified) and not self.firm_failures and not self.findings

    def check_time(self) -> None:
        if time.monotonic() - self.started > self.limits.max_seconds:
            raise ResourceLimitExceeded(
                "max_seconds", f"analysis took longer than {self.limits.max_seconds:g} s"
            )

    def count_member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise ResourceLimitExceeded("max_members", f"more than {self.limits.max_members} archive members")

    def count_decompressed(self, n: int) -> None:
        self.decompressed += n
        if self.decompressed > self.limits.max_decompressed_bytes:
            raise ResourceLimitExceeded(
                "max_decompressed_bytes", f"more than {self.limits.max_decompressed_bytes} bytes decompressed"
            )


def member_location(parent: Location, name: str) -> Location:
    """The location of ``name`` inside ``parent`` (nested members are joined with '!')."""
    member = name if parent.member is None else f"{parent.member}!{name}"
    return Location(parent.path, member=member)


@dataclass
class Blob:
    """A byte source: ``open()`` returns a fresh reader at offset 0. ``size`` is None when unknown."""

    name: str
    location: Location
    opener: Callable[[], BinaryIO]
    size: int | None
    seekable: bool
    depth: int = 0
    file_path: str | None = None
    """Path of the real file on disk when the blob is a whole file (mmap, fileno, external data)."""
    data: bytes | None = field(default=None, repr=False)
    """All of the bytes, when the blob is held in memory (small files and members): read without a reader."""
    inflated: bool = False
    """The bytes are the output of a decompressor (this blob's or a container's around it)."""
    _head: bytes | None = field(default=None, repr=False)
    _head_complete: bool = field(default=False, repr=False)

    def open(self) -> BinaryIO:
        return self.opener()

    def head(self, n: int = 4096) -> bytes:
        if self.data is not None:
            return self.data[:n]
        cached = self._head
        if cached is not None and (len(cached) >= n or self._head_complete):
            return cached[:n]
        with self.open() as f:
            data = f.read(n)
        self._head, self._head_complete = data, len(data) < n
        return data

    def tail(self, n: int) -> bytes:
        """The last ``n`` bytes (seekable blobs only)."""
        if self.data is not None:
            return self.data[-n:] if n > 0 else b""
        if not self.seekable or self.size is None:
            return b""
        if self._head_complete and self._head is not None:
            return self._head[-n:]
        with self.open() as f:
            f.seek(max(0, self.size - n))
            return f.read(n)


class SliceReader(io.RawIOBase):
    """A seekable read-only view of ``length`` bytes of ``base`` starting at ``start``."""

    def __init__(self, base: BinaryIO, start: int, length: int, *, own: bool = False) -> None:
        super().__init__()
        self._base = base
        self._start = start
        self._length = max(0, length)
        self._pos = 0
        self._own = own

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            pos = offset
        elif whence == 1:
            pos = self._pos + offset
        else:
            pos = self._length + offset
        self._pos = max(0, pos)
        return self._pos

    def readinto(self, b: Any) -> int:
        remaining = self._length - self._pos
        if remaining <= 0 or self._start + self._pos > 1 << 62:
            return 0
        n = min(len(b), remaining)
        self._base.seek(self._start + self._pos)
        data = self._base.read(n)
        got = len(data)
        b[:got] = data
        self._pos += got
        return got

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._pos
        if remaining <= 0 or self._start + self._pos > 1 << 62:
            return b""
        n = remaining if size < 0 else min(size, remaining)
        self._base.seek(self._start + self._pos)
        data = self._base.read(n)
        self._pos += len(data)
        return data

    def close(self) -> None:
        if self._own and not self.closed:
            self._base.close()
        super().close()


Decompressor = Any  # zlib/bz2/lzma decompressor objects share decompress(data, max_length) and eof


class DecompressReader(io.RawIOBase):
    """Streams the output of ``make()`` applied to ``raw``, bounded by size and ratio; computes CRC-32.

    Raises :class:`ResourceLimitExceeded` when the output exceeds the context's budget or the ratio bound.
    ``piece``: how many compressed bytes are handed to the decompressor at a time (an error loses the output of
    the call that raised it, so one byte at a time recovers all a streaming reader can get before an error).
    """

    def __init__(
        self,
        raw: BinaryIO,
        make: Callable[[], Decompressor],
        ctx: ScanContext,
        *,
        what: str,
        multistream: bool = False,
        skip_zeros: bool = False,
        max_output: int | None = None,
        nested: bool = False,
        piece: int = CHUNK // 4,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._piece = piece
        self._make = make
        self._d = make()
        self._ctx = ctx
        self._what = what
        self._multi = multistream
        self._skip_zeros = skip_zeros
        self._buf = b""
        self._in = 0
        self._out = 0
        self._eof = False
        self._max_output = max_output
        self._floor = NESTED_RATIO_FLOOR if nested else RATIO_FLOOR
        self.crc = 0
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    @property
    def produced(self) -> int:
        return self._out

    @property
    def taken(self) -> int:
        """Compressed bytes read so far."""
        return self._in

    def _fill(self, want: int) -> None:
        while len(self._buf) < want and not self._eof:
            tail = getattr(self._d, "unconsumed_tail", b"")
            if tail:
                data = tail
            elif getattr(self._d, "eof", False):
                if not self._multi:
                    self._eof = True
                    break
                rest = getattr(self._d, "unused_data", b"")
                # whether another stream follows is decided by the input after this one, also when this one
                # ended at the end of what was read so far or its zero padding runs past it
                while not rest.strip(b"\x00"):
                    more = self._raw.read(self._piece)
                    if not more:
                        break
                    self._in += len(more)
                    rest = more
                if not rest.strip(b"\x00"):
                    self._eof = True
                    break
                self._d = self._make()
                # Python's gzip skips padding between members; the other formats' readers do not
                data = rest.lstrip(b"\x00") if self._skip_zeros else rest
            elif getattr(self._d, "needs_input", True) is False:
                # bz2 and lzma keep input back when the output was capped (zlib hands it back as
                # unconsumed_tail): drain it before reading more, or a compressible stream looks truncated
                data = b""
            else:
                data = self._raw.read(self._piece)
                self._in += len(data)
                if not data:
                    self._eof = True
                    if not getattr(self._d, "eof", True):
                        self.error = f"{self._what}: compressed stream ends early (truncated)"
                    break
            try:
                out = self._d.decompress(data, max(want - len(self._buf), 65536))
            except (zlib.error, OSError, EOFError, ValueError) as exc:
                self.error = f"{self._what}: corrupt compressed data ({exc})"
                self._eof = True
                break
            except Exception as exc:  # noqa: BLE001 - lzma/bz2 raise their own error types
                self.error = f"{self._what}: corrupt compressed data ({type(exc).__name__}: {exc})"
                self._eof = True
                break
            self._account(len(out))
            self.crc = zlib.crc32(out, self.crc)
            self._buf += out

    def _account(self, n: int) -> None:
        self._out += n
        self._ctx.count_decompressed(n)
        if self._max_output is not None and self._out > self._max_output:
            raise ResourceLimitExceeded(
                "max_decompressed_bytes", f"{self._what}: output larger than declared"
            )
        ratio = self._ctx.limits.max_decompression_ratio
        if self._out > self._floor and self._out > ratio * max(self._in, 1):
            raise ResourceLimitExceeded(
                "max_decompression_ratio",
                f"{self._what}: decompresses more than {ratio:g}x (zip-bomb-like)",
            )

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            chunks: list[bytes] = []
            while True:
                part = self.read(CHUNK)
                if not part:
                    return b"".join(chunks)
                chunks.append(part)
        self._fill(size)
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_slice(base: BinaryIO, start: int, length: int, *, own: bool = False) -> BinaryIO:
    """A :class:`SliceReader` typed as the binary stream it behaves as."""
    return cast(BinaryIO, SliceReader(base, start, length, own=own))


def spool(reader: IO[bytes], ctx: ScanContext) -> IO[bytes]:
    """Copy a stream into a seekable temporary file (memory first, then disk); the budget is the reader's."""
    import tempfile

    tmp = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned to the caller
    try:
        while True:
            ctx.check_time()
            chunk = reader.read(CHUNK)
            if not chunk:
                break
            tmp.write(chunk)
    except BaseException:
        tmp.close()
        raise
    tmp.seek(0)
    return tmp


def file_blob(path: str, location: Location, size: int, handle: BinaryIO | None = None) -> Blob:
    """A whole file read in place: through ``handle`` (shared by every reader of the target, each of which
    seeks before it reads), or through a fresh handle per reader when none is given. The scanner reads small
    files into memory itself (:data:`SLURP_MAX`) and uses this for the others."""

    def opener() -> BinaryIO:
        if handle is None:
            return open(path, "rb")
        return open_slice(handle, 0, size)

    return Blob(os.path.basename(path), location, opener, size, True, 0, path)


def read_range(blob: Blob, start: int, n: int) -> bytes:
    """``n`` bytes of ``blob`` from ``start`` (fewer at its end)."""
    if blob.data is not None:
        return blob.data[start : start + n]
    with blob.open() as f:
        f.seek(start)
        return f.read(n)


def bytes_blob(name: str, location: Location, data: bytes, depth: int, *, inflated: bool = False) -> Blob:
    return Blob(
        name, location, lambda: io.BytesIO(data), len(data), True, depth, data=data, inflated=inflated
    )


def json_safe(value: Any, limit: int = 200) -> Any:
    """A bounded, JSON-friendly copy of a value for evidence."""
    if isinstance(value, str):
        return value[:limit]
    if isinstance(value, Mapping):
        return {str(k)[:limit]: json_safe(v, limit) for k, v in list(value.items())[:20]}
    if isinstance(value, list | tuple):
        return [json_safe(v, limit) for v in value[:20]]
    return value
