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
from typing import Any, Final

from loopwarden.signing.hashing import FileState, HashTask, Progress, hash_tasks
from loopwarden.signing.interface import Resource, Serialization
from loopwarden.signing.walk import Entry

__all__ = ["Cache", "CachedFile", "compute", "shard_ranges"]

_CACHE_VERSION: Final = 1


def shard_ranges(size: int, shard_size: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` ranges of ``shard_size`` bytes; an empty file has none (OMS 6.3.2)."""
    return [(s, min(s + shard_size, size)) for s in range(0, size, shard_size)]


@dataclass(frozen=True, slots=True)
class CachedFile:
    state: FileState
    resources: tuple[Resource, ...]


def compute(
    entries: Sequence[Entry],
    ser: Serialization,
    *,
    cached: Mapping[str, CachedFile] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, tuple[Resource, ...]], int]:
    """Resources per file name, and how many bytes were actually read (0 for files reused from ``cached``)."""
    out: dict[str, tuple[Resource, ...]] = {}
    tasks: list[HashTask] = []
    owners: list[tuple[str, str]] = []
    for e in entries:
        hit = cached.get(e.name) if cached else None
        if hit is not None and hit.state == e.state:
            out[e.name] = hit.resources
            continue
        if ser.method == "files":
            tasks.append(HashTask(e.path, e.name, 0, e.state.size, e.state))
            owners.append((e.name, e.name))
        else:
            assert ser.shard_size is not None
            out[e.name] = ()
            for start, end in shard_ranges(e.state.size, ser.shard_size):
                tasks.append(HashTask(e.path, e.name, start, end, e.state))
                owners.append((e.name, f"{e.name}:{start}:{end}"))
    digests = hash_tasks(tasks, ser.hash_type, workers=workers, progress=progress)
    grouped: dict[str, list[Resource]] = {}
    for (file_name, res_name), hexd in zip(owners, digests, strict=True):
        grouped.setdefault(file_name, []).append(Resource(res_name, ser.hash_type, hexd))
    for file_name, rs in grouped.items():
        out[file_name] = tuple(sorted(rs, key=lambda r: r.name))
    return out, sum(t.length for t in tasks)


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
        if obj.get("digest_name") != self.ser.digest_name:
            return {}
        out: dict[str, CachedFile] = {}
        files = obj.get("files")
        if not isinstance(files, dict):
            return {}
        try:
            for name, rec in files.items():
                st = FileState(**rec["state"])
                rs = tuple(Resource(n, self.ser.hash_type, d) for n, d in rec["resources"])
                out[name] = CachedFile(st, rs)
        except (KeyError, TypeError, ValueError):
            return {}
        return out

    def save(self, entries: Sequence[Entry], per_file: Mapping[str, tuple[Resource, ...]]) -> None:
        """Write atomically (temp file, then rename); a failure to write is not an error of the
        verification."""
        files: dict[str, Any] = {}
        for e in entries:
            rs = per_file.get(e.name)
            if rs is None:
                continue
            files[e.name] = {
                "state": {
                    "size": e.state.size,
                    "mtime_ns": e.state.mtime_ns,
                    "ctime_ns": e.state.ctime_ns,
                    "ino": e.state.ino,
                    "dev": e.state.dev,
                },
                "resources": [[r.name, r.digest] for r in rs],
            }
        doc = {
            "version": _CACHE_VERSION,
            "root": self.root,
            "digest_name": self.ser.digest_name,
            "files": files,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(doc, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            return
