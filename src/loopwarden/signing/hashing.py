"""Hashing engines: SHA-256, BLAKE2b and BLAKE3 over whole files or byte ranges, spread over all cores.

SHA-256 of one byte stream is sequential, so the parallelism is across work items: whole files in ``files``
mode, byte ranges (shards) in ``shards`` mode. ``hashlib`` releases the GIL while it hashes a buffer larger
than a few KiB, so a thread pool uses every core; each thread reads with ``readinto`` into one reused 8 MiB
buffer, which measured faster than ``mmap`` on the target machine (no page-fault cost, one copy from the page
cache). BLAKE3 is parallel inside one stream (``max_threads``), so large files are hashed with the ``blake3``
package's own threads.

Every work item checks the file before and after reading it (size, mtime, inode, device): a file that changes
while it is hashed raises :class:`FolderChangedError` naming the file, so a signature never describes a state
that never existed.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, Protocol

from loopwarden.errors import InputError, UsageError
from loopwarden.signing.interface import FolderChangedError, HashType

__all__ = ["BUFFER_SIZE", "FileState", "HashTask", "Progress", "blake3_available", "hash_bytes", "hash_tasks"]

BUFFER_SIZE: Final = 8 << 20
_BLAKE3_THREADED_MIN: Final = 16 << 20
"""Below this size BLAKE3's own threads cost more than they give; the pool's threads are used instead."""

_SMALL_READ: Final = 2 << 20
"""Items up to this size are read into a buffer of their own size, not the thread's reusable 8 MiB one."""
_BATCH_BYTES: Final = 8 << 20
_BATCH_FILES: Final = 64

Progress = Callable[[int], None]
"""Called with the number of bytes just hashed (from worker threads; must be thread-safe and cheap)."""


class _Hasher(Protocol):
    def update(self, data: Any, /) -> object: ...

    def hexdigest(self) -> str: ...


def blake3_available() -> bool:
    try:
        import blake3  # noqa: F401
    except ImportError:
        return False
    return True


def _new(hash_type: HashType, *, size_hint: int = 0) -> _Hasher:
    if hash_type == "sha256":
        return hashlib.sha256()
    if hash_type == "blake2b":
        return hashlib.blake2b()
    if hash_type == "blake3":
        try:
            import blake3
        except ImportError:
            raise UsageError(
                "BLAKE3 hashing needs the 'blake3' package", hint="pip install 'loopwarden[blake3]'"
            ) from None
        threads = blake3.blake3.AUTO if size_hint >= _BLAKE3_THREADED_MIN else 1
        h: _Hasher = blake3.blake3(max_threads=threads)
        return h
    raise UsageError(f"unknown hash type {hash_type!r}")


def hash_bytes(hash_type: HashType, data: bytes) -> str:
    h = _new(hash_type, size_hint=len(data))
    h.update(data)
    return h.hexdigest()


class FileState(NamedTuple):
    """What identifies a file's content without reading it. ``ctime`` cannot be set by a user process.

    A named tuple, not a frozen dataclass: one is made per file per run, and tuples are cheaper to build.
    """

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileState:
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)

    def changed(self, other: FileState) -> str | None:
        """What differs in a way that may mean different content (ctime alone is a chmod, not a write)."""
        if self.size != other.size:
            return f"size {self.size} -> {other.size}"
        if self.mtime_ns != other.mtime_ns:
            return "modification time changed"
        if (self.ino, self.dev) != (other.ino, other.dev):
            return "replaced by another file"
        return None


@dataclass(frozen=True, slots=True)
class HashTask:
    """Hash bytes ``[start, end)`` of the file at ``path`` (already resolved), expected to be in ``state``."""

    path: str
    display: str
    start: int
    end: int
    state: FileState

    @property
    def length(self) -> int:
        return self.end - self.start


_local = threading.local()


def _buffer() -> memoryview:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = memoryview(bytearray(BUFFER_SIZE))
        _local.buf = buf
    return buf


def _check(task: HashTask, st: os.stat_result, when: str) -> None:
    what = task.state.changed(FileState.of(st))
    if what is not None:
        raise FolderChangedError(task.display, f"{what}, seen {when}")


def _run(task: HashTask, hash_type: HashType, progress: Progress | None) -> str:
    try:
        fd = os.open(task.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FolderChangedError(task.display, "removed") from None
    except OSError as exc:
        raise InputError(task.display, f"cannot open: {exc.strerror}") from None
    try:
        _check(task, os.fstat(fd), "when opened")
        h = _new(hash_type, size_hint=task.length)
        if hash_type == "blake3" and task.start == 0 and task.end == task.state.size and task.length:
            # The package maps the file itself and hashes it on all cores, without a copy.
            h.update_mmap(task.path)  # type: ignore[attr-defined]  # blake3-only method
            if progress is not None:
                progress(task.length)
        else:
            # a small item gets a buffer of its own size: no 8 MiB thread buffer to allocate and fault in
            buf = _buffer() if task.length > _SMALL_READ else memoryview(bytearray(task.length))
            pos, end = task.start, task.end
            while pos < end:
                want = min(len(buf), end - pos)
                n = os.preadv(fd, [buf[:want]], pos)
                if n <= 0:
                    raise FolderChangedError(task.display, f"ended at byte {pos}, expected {task.state.size}")
                h.update(buf[:n])
                pos += n
                if progress is not None:
                    progress(n)
        _check(task, os.fstat(fd), "after hashing")
        try:
            _check(task, os.stat(task.path), "after hashing")
        except FileNotFoundError:
            raise FolderChangedError(task.display, "removed while being hashed") from None
        return h.hexdigest()
    finally:
        os.close(fd)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def hash_tasks(
    tasks: Sequence[HashTask],
    hash_type: HashType,
    *,
    workers: int | None = None,
    progress: Progress | None = None,
) -> list[str]:
    """Hex digests of ``tasks``, in order. Largest items start first so the cores finish together."""
    n = workers or default_workers()
    order = sorted(range(len(tasks)), key=lambda i: -tasks[i].length)
    out: list[str] = [""] * len(tasks)
    if n == 1 or len(tasks) <= 1:
        for i in order:
            out[i] = _run(tasks[i], hash_type, progress)
        return out
    # Small items go to the pool in batches, so that a folder of many small files does not pay a future and a
    # thread hand-off per file; large items go one by one, largest first, so that the cores finish together.
    batches: list[list[int]] = []
    small: list[int] = []
    small_bytes = 0
    for i in order:
        if tasks[i].length >= _BATCH_BYTES:
            batches.append([i])
            continue
        small.append(i)
        small_bytes += tasks[i].length
        if small_bytes >= _BATCH_BYTES or len(small) >= _BATCH_FILES:
            batches.append(small)
            small, small_bytes = [], 0
    if small:
        batches.append(small)
    # Small files cost Python work per file (open, checks, close), which holds the GIL; large ones are hashed
    # in C without it. Running the small batches while another thread hashes the first large item overlaps
    # the two, instead of leaving them for the end, where the threads would take turns on the GIL.
    big = [b for b in batches if tasks[b[0]].length >= _BATCH_BYTES]
    if big and len(big) < len(batches):
        batches = [big[0], *(b for b in batches if tasks[b[0]].length < _BATCH_BYTES), *big[1:]]

    def run_batch(batch: list[int]) -> None:
        for i in batch:
            out[i] = _run(tasks[i], hash_type, progress)

    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="lw-hash") as pool:
        futures = [pool.submit(run_batch, b) for b in batches]
        try:
            for fut in futures:
                fut.result()
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise
    return out


class RateMeter:
    """Thread-safe byte counter that calls ``report(done, total, seconds)`` at most every ``interval`` s."""

    def __init__(self, total: int, report: Callable[[int, int, float], None], interval: float = 0.25) -> None:
        self.total = total
        self.done = 0
        self._report = report
        self._interval = interval
        self._start = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.done += n
            now = time.monotonic()
            if now - self._last < self._interval:
                return
            self._last = now
            done = self.done
        self._report(done, self.total, now - self._start)

    def finish(self) -> None:
        self._report(self.done, self.total, time.monotonic() - self._start)
