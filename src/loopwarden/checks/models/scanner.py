"""Orchestration: walk the given paths, scan each file (in parallel when there are many), build the Report.

Digests: ``digest=True`` hashes every scanned file in full (SHA-256). It is off by default because a scan
reads only
what a loader interprets (a 3 GB checkpoint's tensor bytes are never read); ``--record`` turns it on, since a
scan
attestation names its subject by digest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import stat
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from stat import S_ISDIR, S_ISREG
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from loopwarden.checks.interface import Limits, ResourceLimitExceeded
from loopwarden.domain import ArtifactKind, Digest, Location, Report, TargetResult, Verdict

if TYPE_CHECKING:
    from loopwarden.checks.models._base import Blob, ScanContext

__all__ = ["Target", "collect_targets", "hf_cache_root", "scan_file", "scan_paths"]

PARALLEL_MIN_FILES: Final = 16
_SKIP_DIRS: Final = frozenset({".git"})


class Target(NamedTuple):
    """A path to scan as shown to the user, the real file behind it, or the reason it cannot be scanned.

    A named tuple, not a dataclass: a folder of many files makes one per file, and a tuple is built in C.
    """

    display: str
    real: str | None
    problem: str | None = None
    size: int = 0
    aliases: tuple[str, ...] = ()
    """Other names of the same file in the scanned tree (links to it) under which a loader may open it: the
    analysis of some formats depends on the name (``.yaml``, ``.jinja``, ``config.json``), so it is judged under
    each of them too."""
    more_names: int = 0
    """Further names of the file past the first ``_MAX_ALIASES`` aliases: not judged, so the file is unverified."""


def hf_cache_root(path: str) -> str | None:
    """The ``models--org--name`` folder of a Hugging Face cache that ``path`` lies in, if any."""
    cur = os.path.realpath(path)
    for _ in range(64):
        base = os.path.basename(cur)
        if base.startswith(("models--", "datasets--", "spaces--")) and os.path.isdir(
            os.path.join(cur, "blobs")
        ):
            return cur
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent
    return None


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def _classify(display: str, st: os.stat_result) -> Target | None:
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return None
    kind = {
        stat.S_IFIFO: "a FIFO",
        stat.S_IFSOCK: "a socket",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
    }.get(stat.S_IFMT(mode), "not a regular file")
    return Target(display, None, f"not a regular file ({kind}); not read")


def collect_targets(paths: Iterable[str]) -> list[Target]:
    """Expand files and folders (recursively) into targets; links are followed only inside the tree."""
    found: dict[str, Target] = {}
    problems: list[Target] = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            problems.append(Target(p, None, "file not found"))
            continue
        except PermissionError:
            problems.append(Target(p, None, "permission denied"))
            continue
        except OSError as exc:
            problems.append(Target(p, None, f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            roots = [os.path.realpath(p)]
            cache = hf_cache_root(p)
            if cache:
                roots.append(cache)
            _walk(p, roots, found, problems)
            continue
        bad = _classify(p, st)
        if bad:
            problems.append(bad)
            continue
        _add(found, Target(p, os.path.realpath(p), size=st.st_size))
    return sorted([*found.values(), *problems], key=itemgetter(0))


_MAX_ALIASES: Final = 16


def _add(found: dict[str, Target], t: Target) -> None:
    assert t.real is not None
    prev = found.get(t.real)
    # the same file reached twice (Hugging Face snapshots link into blobs/): keep the readable name
    if prev is None:
        found[t.real] = t
        return
    keep, other = (t, prev) if "/blobs/" in prev.display and "/blobs/" not in t.display else (prev, t)
    names = {os.path.basename(keep.display), *map(os.path.basename, keep.aliases)}
    if "/blobs/" not in other.display and os.path.basename(other.display) not in names:
        if len(keep.aliases) < _MAX_ALIASES:
            keep = keep._replace(aliases=(*keep.aliases, other.display))
        else:
            keep = keep._replace(more_names=keep.more_names + 1)
    found[t.real] = keep


def _walk(top: str, roots: list[str], found: dict[str, Target], problems: list[Target]) -> None:
    stack = [top]
    visited: set[str] = set()
    while stack:
        d = stack.pop()
        real_d = os.path.realpath(d)
        if real_d in visited:
            continue
        visited.add(real_d)
        try:
            with os.scandir(d) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            problems.append(Target(d, None, "permission denied (folder cannot be listed)"))
            continue
        except OSError as exc:
            problems.append(Target(d, None, f"folder cannot be listed: {exc.strerror or exc}"))
            continue
        prefix = d if d.endswith(os.sep) else d + os.sep
        real_prefix = real_d if real_d.endswith(os.sep) else real_d + os.sep
        for e in entries:
            name = e.name
            path = prefix + name
            try:
                if e.is_symlink():
                    real = os.path.realpath(path)
                    if not _inside(real, roots):
                        problems.append(
                            Target(path, None, f"symbolic link to '{real}' outside the scanned folder")
                        )
                        continue
                    st = os.stat(path)
                else:
                    st = e.stat(follow_symlinks=False)
                    real = real_prefix + name  # the folder is resolved once, not per file
            except OSError as exc:
                problems.append(Target(path, None, f"cannot read: {exc.strerror or exc}"))
                continue
            mode = st.st_mode
            if S_ISREG(mode):
                if (
                    name.endswith(".incomplete")
                    and _partial_download(real_prefix, name)
                    and not e.is_symlink()
                ):
                    continue
                if real not in found:
                    found[real] = Target(path, real, None, st.st_size)
                else:  # a second name of the same file
                    _add(found, Target(path, real, None, st.st_size))
            elif S_ISDIR(mode):
                if name not in _SKIP_DIRS:
                    stack.append(path)
            else:
                problems.append(_classify(path, st) or Target(path, None, "not read"))


_HUB_PARTIAL: Final = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})(?:\.[0-9a-f]{8})?\.incomplete")
_LOCAL_DIR_PARTIAL: Final = re.compile(
    r"[A-Za-z0-9_-]{27}=\.(?:[0-9a-f]{40}|[0-9a-f]{64})(?:\.[0-9a-f]{8})?\.incomplete"
)
_LOCAL_DIR_DOWNLOADS: Final = os.sep.join(("", ".cache", "huggingface", "download", ""))


def _partial_download(folder: str, name: str) -> bool:
    """Whether ``name`` in ``folder`` (resolved, ending with a separator) is a download huggingface_hub has not
    finished: ``<etag>.incomplete`` (``<etag>.<8 hex>.incomplete`` since 1.x) in a cache's ``blobs/``, or
    ``<short hash>.<etag>[.<8 hex>].incomplete`` under a ``local_dir`` download's ``.cache/huggingface/download/``.

    No loader opens one: huggingface_hub renames it to its final name (the blob a snapshot links to, the file in
    the local folder) once complete, and that file is scanned. Like ``.git``, such a file met in a folder walk is
    not a target; named on the command line, or reached through a link (a snapshot's), it is scanned as any file.
    A cut pickle or safetensors file would otherwise be reported for being cut.
    """
    if _HUB_PARTIAL.fullmatch(name):
        parent = os.path.dirname(folder.rstrip(os.sep))
        return os.path.basename(folder.rstrip(os.sep)) == "blobs" and os.path.basename(parent).startswith(
            ("models--", "datasets--", "spaces--")
        )
    return _LOCAL_DIR_DOWNLOADS in folder and _LOCAL_DIR_PARTIAL.fullmatch(name) is not None


def _sha256(blob: Blob) -> Digest:
    """The digest of the bytes that were scanned: the in-memory copy, or the same open file (so a file
    renamed over the path meanwhile cannot give the attestation another file's digest)."""
    import hashlib

    h = hashlib.sha256()
    with blob.open() as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return Digest("sha256", h.hexdigest())


def _open_target(target: Target, loc: Location, limits: Limits, ctx: ScanContext) -> Blob:
    """The target as a blob: small files read with one system call and analysed in memory; larger ones
    through one handle that is closed with the target. Permission and existence fail here, before any
    parser runs."""
    from loopwarden.checks.models._base import SLURP_MAX, bytes_blob, file_blob

    assert target.real is not None
    fd = os.open(target.real, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if size > limits.max_file_bytes:
            raise ResourceLimitExceeded(
                "max_file_bytes", f"file is larger than {limits.max_file_bytes} bytes"
            )
        # named as the loader opens it: a Hugging Face snapshot's config.yaml is a link to blobs/<hash>
        name = os.path.basename(target.display)
        if size <= SLURP_MAX:
            data = os.read(fd, size + 1)
            if len(data) == size:  # else the file changed under us: stream what is there
                blob = bytes_blob(name, loc, data, 0)
                blob.file_path = target.real
                return blob
        handle = os.fdopen(fd, "rb")
        fd = -1  # the handle owns it now
        ctx.closers.append(handle)
        blob = file_blob(target.real, loc, size, handle)
        blob.name = name
        return blob
    finally:
        if fd >= 0:
            os.close(fd)


def scan_file(target: Target, limits: Limits, allow: Any, digest: bool = False) -> TargetResult:
    """Scan one target; never raises for bad input (the result is then ``unverified`` with the reason)."""
    return _scan(target, limits, allow, digest)[0]


def _scan(
    target: Target, limits: Limits, allow: Any, digest: bool
) -> tuple[TargetResult, tuple[str, ...], bool]:
    """The result of one target, the real paths it names as raw data, and whether it is unverified only because
    its bytes were misread as some format (:attr:`ScanContext.only_misread`: clean if a model names it as data)."""
    from loopwarden.checks.models._base import ScanContext
    from loopwarden.checks.models.dispatch import scan_blob

    if target.real is None:
        return (
            TargetResult.from_findings(
                target.display, ArtifactKind.MODEL, (), unverified_reason=target.problem or "not scanned"
            ),
            (),
            False,
        )
    loc = Location(target.display)
    ctx = ScanContext(target.display, limits, allow)
    digest_value: Digest | None = None
    try:
        ctx.physical_dir = os.path.dirname(target.real)
        blob = _open_target(target, loc, limits, ctx)
        scan_blob(blob, ctx)
        for alias in dict.fromkeys(os.path.basename(a) for a in target.aliases):
            if alias != blob.name:
                scan_blob(dataclasses.replace(blob, name=alias), ctx)
        if target.more_names:
            # a loader may open the file under one of the names not judged (a link named config.yaml)
            ctx.fail(
                loc,
                f"limit max_aliases: {_MAX_ALIASES + 1 + target.more_names} names link to this file; the analyses "
                f"that depend on a file's name judged it under {_MAX_ALIASES + 1} of them",
            )
        if digest:
            digest_value = _sha256(blob)
    except ResourceLimitExceeded as exc:
        ctx.fail(loc, str(exc))
    except FileNotFoundError:
        ctx.fail(loc, "file not found")
    except PermissionError:
        ctx.fail(loc, "permission denied")
    except OSError as exc:
        ctx.fail(loc, f"cannot read: {exc.strerror or exc}")
    except RecursionError:
        ctx.fail(loc, "input nested too deeply to analyse")
    except Exception as exc:  # noqa: BLE001 - fail closed: a parser bug must never read as clean
        ctx.fail(loc, f"internal error while analysing ({type(exc).__name__}: {str(exc)[:200]})")
    finally:
        for c in ctx.closers:
            c.close()
    reason = _reason(ctx.unverified)
    result = TargetResult.from_findings(
        target.display, ArtifactKind.MODEL, ctx.findings, unverified_reason=reason, digest=digest_value
    )
    return result, tuple(ctx.references), ctx.only_misread


_MAX_REASONS: Final = 8


def _reason(reasons: list[str]) -> str | None:
    """Why a target is unverified, readable: the first few reasons and how many more there are (an archive of
    many bad members would otherwise give a line of kilobytes)."""
    if not reasons:
        return None
    text = "; ".join(reasons[:_MAX_REASONS])
    more = len(reasons) - _MAX_REASONS
    return f"{text}; and {more} more" if more > 0 else text


def default_allow() -> Any:
    from loopwarden.checks.models.allowlist import AllowList

    return AllowList.default()


def scan_paths(
    paths: Iterable[str],
    *,
    limits: Limits | None = None,
    allow: Any = None,
    jobs: int | None = None,
    digest: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Scan files and folders; one :class:`TargetResult` per file (and per path that could not be read)."""
    from loopwarden import __version__

    limits = limits or Limits()
    allow = allow if allow is not None else default_allow()
    targets = collect_targets(paths)
    jobs = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    results: list[TargetResult] = []
    referenced: set[str] = set()
    misread: set[str] = set()  # the targets (by display) that are unverified only by misreadings
    readable = [t for t in targets if t.real is not None]
    results.extend(scan_file(t, limits, allow) for t in targets if t.real is None)
    total = len(targets)
    # the first progress call (which may start a display thread) comes only after the workers are forked
    forked = jobs > 1 and len(readable) >= PARALLEL_MIN_FILES and hasattr(os, "fork")
    if forked:
        try:
            for res, refs, only_misread in _scan_forked(
                readable, min(jobs, len(readable)), limits, allow, digest
            ):
                results.append(res)
                referenced.update(refs)
                if only_misread:
                    misread.add(res.path)
                if progress:
                    progress(len(results), total)
        except _ForkFailed:
            forked = False  # no process could be started (process limit, memory): scan in this one
    if not forked:
        if progress:
            progress(len(results), total)
        for t in readable:
            res, refs, only_misread = _scan(t, limits, allow, digest)
            results.append(res)
            referenced.update(refs)
            if only_misread:
                misread.add(res.path)
            if progress:
                progress(len(results), total)
    if referenced:
        results = _resolve_external_data(results, readable, referenced, misread)
    return Report(__version__, tuple(results))


class _ForkFailed(Exception):
    """Starting the worker processes failed before any result was produced."""


_FRAME: Final = struct.Struct("<II")
"""A result frame's header: the target's index and the length of the pickled result that follows (0: clean,
with no digest or reference, so nothing follows)."""
_INDEX: Final = struct.Struct("<I")
_QUEUE_WRITE: Final = 4096
"""Bytes per write to the work queue: at most PIPE_BUF, so every write is atomic and whole indices arrive."""


def _scan_forked(
    targets: list[Target], jobs: int, limits: Limits, allow: Any, digest: bool
) -> Iterator[tuple[TargetResult, tuple[str, ...], bool]]:
    """Scan ``targets`` in ``jobs`` forked workers; yields each result as it arrives (in no fixed order).

    Workers take target indices from one shared pipe (a pipe read of whole 4-byte records is atomic, so
    each index goes to exactly one worker: the fast ones take more) and send results back on their own
    pipe. Forking shares the loaded code and allow-list; there is no executor, feeder thread or per-task
    round trip. A worker that dies (killed, out of memory) leaves its targets ``unverified``, never clean.
    """
    import selectors
    import signal

    batch = max(1, min(16, len(targets) // (jobs * 16)))
    order, first = _plan(targets, jobs, digest)
    try:
        q_read, q_write = os.pipe()
    except OSError as exc:
        raise _ForkFailed(str(exc)) from exc
    workers: dict[int, int] = {}  # result pipe fd -> pid
    spare: tuple[int, ...] = ()  # the result pipe of a worker not started yet
    own = -1  # the first worker's own queue (files that carry chat templates), read before the shared one
    try:
        if first:
            own, own_write = os.pipe()
            try:
                # at most PIPE_BUF bytes: written whole, before any reader exists, without blocking
                written = os.write(own_write, b"".join(_INDEX.pack(i) for i in first)) // _INDEX.size
            finally:
                os.close(own_write)
            order += first[written:]  # never short on Linux or macOS; if it were, the others share them
        for n in range(jobs):
            r_read, r_write = spare = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child's coverage is not collected
                code = 1
                try:
                    os.close(q_write)
                    os.close(r_read)
                    for fd in workers:
                        os.close(fd)
                    if n and own >= 0:
                        os.close(own)
                    signal.signal(signal.SIGINT, signal.SIG_DFL)
                    queues = (own, q_read) if n == 0 and own >= 0 else (q_read,)
                    _worker(targets, queues, r_write, batch, limits, allow, digest)
                    code = 0
                finally:
                    os._exit(code)
            os.close(r_write)
            workers[r_read] = pid
            spare = ()
    except BaseException as exc:
        for fd in (q_read, q_write, *workers, *spare):
            os.close(fd)
        if own >= 0:
            os.close(own)
        _reap(workers, kill=True)
        if isinstance(exc, OSError):
            raise _ForkFailed(str(exc)) from exc
        raise
    os.close(q_read)
    if own >= 0:
        os.close(own)
    os.set_blocking(q_write, False)
    queue = b"".join(_INDEX.pack(i) for i in order)
    sel = selectors.DefaultSelector()
    sel.register(q_write, selectors.EVENT_WRITE)
    bufs = {fd: bytearray() for fd in workers}
    for fd in workers:
        sel.register(fd, selectors.EVENT_READ)
    done: set[int] = set()
    exits: dict[int, int] = {}
    sent = 0
    queue_closed = False
    try:
        while len(sel.get_map()):
            for key, _ in sel.select():
                fd = key.fd
                if fd == q_write:
                    try:
                        sent += os.write(q_write, queue[sent : sent + _QUEUE_WRITE])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:
                        sent = len(queue)  # every worker is gone; the missing targets are reported below
                    if sent >= len(queue):
                        sel.unregister(q_write)
                        os.close(q_write)
                        queue_closed = True
                    continue
                chunk = os.read(fd, 1 << 16)
                if chunk:
                    buf = bufs[fd]
                    buf += chunk
                    pos = 0
                    while len(buf) - pos >= _FRAME.size:
                        idx, n = _FRAME.unpack_from(buf, pos)
                        start = pos + _FRAME.size
                        if len(buf) - start < n:
                            break
                        if n == 0:  # the common case, sent as its index alone: clean, nothing else to say
                            res, refs, only_misread = (
                                TargetResult(targets[idx].display, ArtifactKind.MODEL, Verdict.CLEAN),
                                (),
                                False,
                            )
                        else:
                            import pickle

                            # written by our own forked child on a private pipe: multiprocessing's trust model
                            res, refs, only_misread = pickle.loads(buf[start : start + n])  # noqa: S301
                        pos = start + n
                        done.add(idx)
                        yield res, refs, only_misread
                    del buf[:pos]
                    continue
                sel.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(workers.pop(fd), 0)
                exits[fd] = status
    finally:
        sel.close()
        if not queue_closed:
            os.close(q_write)
        for fd in list(workers):
            os.close(fd)
        _reap(workers, kill=True)
    if len(done) < len(targets):
        why = "; ".join(sorted({_exit_text(st) for st in exits.values() if st}))
        for i, t in enumerate(targets):
            if i not in done:
                yield (
                    TargetResult.from_findings(
                        t.display,
                        ArtifactKind.MODEL,
                        (),
                        unverified_reason=f"analysis worker stopped before finishing this file ({why or 'no result'})",
                    ),
                    (),
                    False,
                )


def _worker(
    targets: list[Target],
    queues: tuple[int, ...],
    out: int,
    batch: int,
    limits: Limits,
    allow: Any,
    digest: bool,
) -> None:  # pragma: no cover - runs in a forked child
    with os.fdopen(out, "wb", buffering=1 << 16) as sink:
        for q_read in queues:
            _serve(targets, q_read, sink, batch, limits, allow, digest)


def _serve(
    targets: list[Target],
    q_read: int,
    sink: Any,
    batch: int,
    limits: Limits,
    allow: Any,
    digest: bool,
) -> None:  # pragma: no cover - runs in a forked child
    """Scan the targets whose indices arrive on ``q_read`` until it is closed and empty (``pickle`` is imported
    only for a result that is not clean: most workers of a benign folder never need it)."""
    while True:
        raw = os.read(q_read, _INDEX.size * batch)
        if not raw:
            return
        for (idx,) in _INDEX.iter_unpack(raw):
            res, refs, only_misread = _scan(targets[idx], limits, allow, digest)
            if res.verdict is Verdict.CLEAN and not res.findings and res.digest is None and not refs:
                sink.write(_FRAME.pack(idx, 0))
                continue
            import pickle

            frame = pickle.dumps((res, refs, only_misread), protocol=pickle.HIGHEST_PROTOCOL)
            sink.write(_FRAME.pack(idx, len(frame)))
            sink.write(frame)
        sink.flush()


_TEMPLATE_SUFFIXES: Final = (".gguf", ".jinja", ".j2")
_OWN_QUEUE_MAX: Final = 1024
"""Indices given to the first worker alone: written in one PIPE_BUF-sized write before it starts."""


def _plan(targets: list[Target], jobs: int, digest: bool) -> tuple[list[int], list[int]]:
    """The shared work queue, largest file first (the long scans start early, the small ones fill the gaps
    at the end), and a few files for the first worker alone, which it scans before joining the others.

    Those few are small files named like carriers of Jinja chat templates: parsing a template loads jinja2,
    the largest import of a scan, and when one worker takes them only one pays for it while the others scan
    the rest. They are at most a quarter of that worker's fair share, so the shared queue still balances
    the load, and none when files are hashed (``digest``: time then follows size). Names only steer the
    schedule; every file is analysed by its content wherever it runs.
    """
    from loopwarden.checks.models._base import SLURP_MAX

    order = sorted(range(len(targets)), key=lambda i: -targets[i].size)
    room = min(_OWN_QUEUE_MAX, len(order) // (4 * jobs))
    if digest or room < 1:
        return order, []
    first = [
        i
        for i in order
        if targets[i].size <= SLURP_MAX and targets[i].display.lower().endswith(_TEMPLATE_SUFFIXES)
    ][:room]
    if not first:
        return order, []
    chosen = set(first)
    return [i for i in order if i not in chosen], first


def _reap(workers: dict[int, int], *, kill: bool) -> None:
    import signal

    for pid in workers.values():
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    workers.clear()


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"worker killed by signal {os.WTERMSIG(status)}"
    return f"worker exited with status {os.WEXITSTATUS(status)}"


def _resolve_external_data(
    results: list[TargetResult], readable: list[Target], referenced: set[str], misread: set[str]
) -> list[TargetResult]:
    """Raw tensor files that a scanned model names as data (ONNX external data, TensorFlow data shards) are data,
    not an unknown format: clean when they are unverified only because their bytes were misread as some format
    (``misread``: no format at all, or a MessagePack value, a compressed stream and the like that breaks off, which
    every loader of that format rejects without acting on it; see ``ScanContext.fail``). Anything found in them
    (a pickle loader runs their first bytes, zipfile opens a zip at their end, h5py an HDF5 file behind them), a
    bound hit, a read error or a pickle stream that could not be analysed to its end keeps them reported."""
    real = {t.display: t.real for t in readable}
    out = []
    for r in results:
        if (
            r.verdict is Verdict.UNVERIFIED
            and not r.findings
            and r.path in misread
            and real.get(r.path) in referenced
        ):
            r = TargetResult(r.path, r.kind, Verdict.CLEAN, (), r.digest, None)
        out.append(r)
    return out
