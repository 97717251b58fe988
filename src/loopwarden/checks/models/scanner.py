"""Orchestration: walk the given paths, scan each file (in parallel when there are many), build the Report.

Digests: ``digest=True`` hashes every scanned file in full (SHA-256). It is off by default because a scan
reads only
what a loader interprets (a 3 GB checkpoint's tensor bytes are never read); ``--record`` turns it on, since a
scan
attestation names its subject by digest.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from loopwarden.checks.interface import Limits, ResourceLimitExceeded
from loopwarden.domain import ArtifactKind, Digest, Location, Report, TargetResult, Verdict

__all__ = ["Target", "collect_targets", "scan_file", "scan_paths"]

PARALLEL_MIN_FILES: Final = 16
_SKIP_DIRS: Final = frozenset({".git"})


@dataclass(frozen=True, slots=True)
class Target:
    """A path to scan as shown to the user, the real file behind it, or the reason it cannot be scanned."""

    display: str
    real: str | None
    problem: str | None = None


def _hf_cache_root(path: str) -> str | None:
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
            cache = _hf_cache_root(p)
            if cache:
                roots.append(cache)
            _walk(p, roots, found, problems)
            continue
        bad = _classify(p, st)
        if bad:
            problems.append(bad)
            continue
        _add(found, Target(p, os.path.realpath(p)))
    return sorted([*found.values(), *problems], key=lambda t: t.display)


def _add(found: dict[str, Target], t: Target) -> None:
    assert t.real is not None
    prev = found.get(t.real)
    # the same file reached twice (Hugging Face snapshots link into blobs/): keep the readable name
    if prev is None or ("/blobs/" in prev.display and "/blobs/" not in t.display):
        found[t.real] = t


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
        for e in entries:
            path = os.path.join(d, e.name)
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
                    real = os.path.join(real_d, e.name)  # the folder is resolved once, not per file
            except OSError as exc:
                problems.append(Target(path, None, f"cannot read: {exc.strerror or exc}"))
                continue
            if stat.S_ISDIR(st.st_mode):
                if e.name not in _SKIP_DIRS:
                    stack.append(path)
                continue
            bad = _classify(path, st)
            if bad:
                problems.append(bad)
                continue
            _add(found, Target(path, real))


def _sha256(path: str) -> Digest:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        while n := f.readinto(buf):
            h.update(view[:n])
    return Digest("sha256", h.hexdigest())


def scan_file(target: Target, limits: Limits, allow: Any, digest: bool = False) -> TargetResult:
    """Scan one target; never raises for bad input (the result is then ``unverified`` with the reason)."""
    return _scan(target, limits, allow, digest)[0]


def _scan(target: Target, limits: Limits, allow: Any, digest: bool) -> tuple[TargetResult, tuple[str, ...]]:
    from loopwarden.checks.models._base import ScanContext, file_blob
    from loopwarden.checks.models.dispatch import scan_blob

    if target.real is None:
        return TargetResult.from_findings(
            target.display, ArtifactKind.MODEL, (), unverified_reason=target.problem or "not scanned"
        ), ()
    loc = Location(target.display)
    ctx = ScanContext(target.display, limits, allow)
    digest_value: Digest | None = None
    try:
        st = os.stat(target.real)
        if st.st_size > limits.max_file_bytes:
            raise ResourceLimitExceeded(
                "max_file_bytes", f"file is larger than {limits.max_file_bytes} bytes"
            )
        with open(target.real, "rb"):
            pass  # permission and existence are checked before any parser runs
        ctx.physical_dir = os.path.dirname(target.real)
        scan_blob(file_blob(target.real, loc, st.st_size, ctx.closers), ctx)
        if digest:
            digest_value = _sha256(target.real)
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
    reason = "; ".join(ctx.unverified) if ctx.unverified else None
    result = TargetResult.from_findings(
        target.display, ArtifactKind.MODEL, ctx.findings, unverified_reason=reason, digest=digest_value
    )
    return result, tuple(ctx.references)


_WORKER: dict[str, Any] = {}


def _init_worker(limits: Limits, allow: Any, digest: bool) -> None:
    _WORKER.update(limits=limits, allow=allow, digest=digest)


def _work(target: Target) -> tuple[TargetResult, tuple[str, ...]]:
    return _scan(target, _WORKER["limits"], _WORKER["allow"], _WORKER["digest"])


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
    readable = [t for t in targets if t.real is not None]
    results.extend(scan_file(t, limits, allow) for t in targets if t.real is None)
    total = len(targets)
    if progress:
        progress(len(results), total)
    if jobs > 1 and len(readable) >= PARALLEL_MIN_FILES:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        chunk = max(1, min(64, len(readable) // (jobs * 8)))
        with ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(limits, allow, digest),
        ) as pool:
            for res, refs in pool.map(_work, readable, chunksize=chunk):
                results.append(res)
                referenced.update(refs)
                if progress:
                    progress(len(results), total)
    else:
        for t in readable:
            res, refs = _scan(t, limits, allow, digest)
            results.append(res)
            referenced.update(refs)
            if progress:
                progress(len(results), total)
    if referenced:
        results = _resolve_external_data(results, readable, referenced)
    return Report(__version__, tuple(results))


def _resolve_external_data(
    results: list[TargetResult], readable: list[Target], referenced: set[str]
) -> list[TargetResult]:
    """Raw tensor files that a scanned ONNX model names as external data are data, not an unknown format."""
    real = {t.display: t.real for t in readable}
    out = []
    for r in results:
        if (
            r.verdict is Verdict.UNVERIFIED
            and real.get(r.path) in referenced
            and (r.reason or "").startswith("unknown binary format")
        ):
            r = TargetResult(r.path, r.kind, Verdict.CLEAN, (), r.digest, None)
        out.append(r)
    return out
