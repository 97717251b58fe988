"""From a folder listing to OMS resources: plan the hashing work, reuse cached digests, run the engines.

Also the incremental cache: a local JSON file (never part of a signature) that pairs each file's state (size,
mtime, ctime, inode, device) with the digests computed for it under one serialization. A file whose state is
unchanged is not read again when the caller asks for an incremental run. ``ctime`` cannot be set by a user
process, so restoring the mtime after an edit (``touch -d``) does not fool it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from loopwarden.signing.hashing import FileState, HashTask, Progress, hash_tasks
from loopwarden.signing.interface import Resource, Serialization
from loopwarden.signing.walk import Entry

__all__ = ["Cache", "CachedFile", "Computed", "compute", "resources_of", "shard_ranges"]

_CACHE_VERSION: Final = 2


def shard_ranges(size: int, shard_size: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` ranges of ``shard_size`` bytes; an empty file has none (OMS 6.3.2)."""
    return [(s, min(s + shard_size, size)) for s in range(0, size, shard_size)]


class CachedFile(NamedTuple):
    state: FileState
    digests: tuple[str, ...]
    """In offset order: one per file (``files``), one per shard (``shards``)."""


@dataclass(frozen=True, slots=True)
class Computed:
    digests: dict[str, tuple[str, ...]]
    """File name -> digests in offset order."""
    bytes_hashed: int
    reused: int
    """Files whose digests came from the cache."""


def compute(
    entries: Sequence[Entry],
    ser: Serialization,
    *,
    cached: Mapping[str, CachedFile] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Computed:
    """Digests of every entry under ``ser``; entries whose state matches ``cached`` are not read."""
    out: dict[str, tuple[str, ...]] = {}
    tasks: list[HashTask] = []
    owners: list[str] = []
    reused = 0
    for e in entries:
        hit = cached.get(e.name) if cached else None
        if hit is not None and hit.state == e.state:
            out[e.name] = hit.digests
            reused += 1
            continue
        if ser.method == "files":
            tasks.append(HashTask(e.path, e.name, 0, e.state.size, e.state))
            owners.append(e.name)
        else:
            assert ser.shard_size is not None
            out[e.name] = ()
            for start, end in shard_ranges(e.state.size, ser.shard_size):
                tasks.append(HashTask(e.path, e.name, start, end, e.state))
                owners.append(e.name)
    digests = hash_tasks(tasks, ser.hash_type, workers=workers, progress=progress)
    grouped: dict[str, list[str]] = {}
    for name, hexd in zip(owners, digests, strict=True):  # tasks of one file are in offset order
        grouped.setdefault(name, []).append(hexd)
    for name, ds in grouped.items():
        out[name] = tuple(ds)
    return Computed(out, sum(t.length for t in tasks), reused)


def resources_of(
    entries: Sequence[Entry], digests: Mapping[str, tuple[str, ...]], ser: Serialization
) -> list[Resource]:
    """The OMS resources: ``name`` per file, or ``name:start:end`` per shard."""
    out: list[Resource] = []
    for e in entries:
        ds = digests[e.name]
        if ser.method == "files":
            out.append(Resource(e.name, ser.hash_type, ds[0]))
        else:
            assert ser.shard_size is not None
            ranges = shard_ranges(e.state.size, ser.shard_size)
            out.extend(
                Resource(f"{e.name}:{a}:{b}", ser.hash_type, d) for (a, b), d in zip(ranges, ds, strict=True)
            )
    return out


class Cache:
    """The incremental cache of one model folder under one serialization."""

    def __init__(self, directory: Path, root: Path, ser: Serialization) -> None:
        self.root = os.path.realpath(root)
        self.ser = ser
        key = hashlib.sha256(f"{self.root}\x00{ser.digest_name}\x00{ser.allow_symlinks}".encode()).hexdigest()
        self.path = directory / f"{key[:32]}.json"

    def load(self) -> dict[str, CachedFile]:
        """The cached files; an unreadable or foreign cache is simply empty (it only ever saves work)."""
        try:
            obj = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(obj, dict) or obj.get("version") != _CACHE_VERSION or obj.get("root") != self.root:
            return {}
        files = obj.get("files")
        if obj.get("digest_name") != self.ser.digest_name or not isinstance(files, dict):
            return {}
        try:
            return {name: CachedFile(FileState(*rec[:5]), tuple(rec[5])) for name, rec in files.items()}
        except (TypeError, IndexError):
            return {}

    def save(self, entries: Sequence[Entry], digests: Mapping[str, tuple[str, ...]]) -> None:
        """Write atomically (temp file, then rename); failing to write is not a verification error."""
        files = {
            e.name: [
                e.state.size,
                e.state.mtime_ns,
                e.state.ctime_ns,
                e.state.ino,
                e.state.dev,
                digests[e.name],
            ]
            for e in entries
            if e.name in digests
        }
        doc = {
            "version": _CACHE_VERSION,
            "root": self.root,
            "digest_name": self.ser.digest_name,
            "files": files,
        }
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
