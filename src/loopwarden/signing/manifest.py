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
import struct
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from loopwarden.signing._gc import gc_resumed
from loopwarden.signing.hashing import HashTask, Progress, hash_tasks
from loopwarden.signing.interface import Resource, Serialization
from loopwarden.signing.walk import Entry

__all__ = ["Cache", "CacheSnapshot", "Computed", "compute", "resources_of", "shard_ranges"]

_MAGIC: Final = b"loopwarden-verify-cache\x003\n"


def shard_ranges(size: int, shard_size: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` ranges of ``shard_size`` bytes; an empty file has none (OMS 6.3.2)."""
    return [(s, min(s + shard_size, size)) for s in range(0, size, shard_size)]


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
    reuse: Mapping[str, tuple[str, ...]] | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> Computed:
    """Digests of every entry under ``ser``; entries named in ``reuse`` (unchanged since their digests were
    computed, see :meth:`CacheSnapshot.reusable`) are not read."""
    out: dict[str, tuple[str, ...]] = dict(reuse) if reuse else {}
    tasks: list[HashTask] = []
    owners: list[str] = []
    reused = len(out)
    for e in entries:
        if e.name in out:
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
    with gc_resumed():  # hashing can take minutes: the collector runs meanwhile
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


class CacheSnapshot:
    """A loaded cache: names, states and digests as parallel lists, compared with a listing in bulk.

    A folder whose files are all unchanged (the usual case) is judged by two list comparisons done in C,
    not by a lookup per file.
    """

    __slots__ = ("digests", "names", "states")

    def __init__(
        self, names: list[str], states: Sequence[tuple[int, ...]], digests: Sequence[tuple[str, ...]]
    ) -> None:
        self.names, self.states, self.digests = names, states, digests

    def __len__(self) -> int:
        return len(self.names)

    def reusable(self, entries: Sequence[Entry]) -> dict[str, tuple[str, ...]]:
        """Digests of the entries whose state (size, mtime, ctime, inode, device) is the cached one."""
        names = [e.name for e in entries]
        states = [e.state for e in entries]
        if names == self.names:
            if states == self.states:
                return dict(zip(names, self.digests, strict=True))
            return {
                n: d for n, s, c, d in zip(names, states, self.states, self.digests, strict=True) if s == c
            }
        index = {n: i for i, n in enumerate(self.names)}
        out: dict[str, tuple[str, ...]] = {}
        for n, s in zip(names, states, strict=True):
            i = index.get(n)
            if i is not None and self.states[i] == s:
                out[n] = self.digests[i]
        return out


class Cache:
    """The incremental cache of one model folder under one serialization.

    A small binary file (loaded in well under a millisecond for thousands of files): a JSON header, then the
    names (NUL-separated UTF-8), sizes and times (int64), inode and device numbers (uint64), the number of
    digests per file (uint32) and the raw digests. Anything that does not add up is an empty cache.
    """

    def __init__(self, directory: Path, root: Path, ser: Serialization) -> None:
        self.root = os.path.realpath(root)
        self.ser = ser
        key = hashlib.sha256(f"{self.root}\x00{ser.digest_name}\x00{ser.allow_symlinks}".encode()).hexdigest()
        self.path = directory / f"{key[:32]}.cache"

    def load(self) -> CacheSnapshot | None:
        """The cached files; an unreadable, foreign or malformed cache is None (it only ever saves work)."""
        try:
            data = self.path.read_bytes()
            return self._decode(data)
        except (OSError, ValueError, TypeError, KeyError, OverflowError, struct.error):
            return None

    def _decode(self, data: bytes) -> CacheSnapshot | None:
        if data[: len(_MAGIC)] != _MAGIC:
            return None
        pos = len(_MAGIC)
        (hlen,) = struct.unpack_from("<I", data, pos)
        pos += 4
        head = json.loads(data[pos : pos + hlen])
        pos += hlen
        if head.get("root") != self.root or head.get("digest_name") != self.ser.digest_name:
            return None
        n, total, width = int(head["files"]), int(head["digests"]), int(head["digest_bytes"])
        sizes = [int(x) for x in head["sections"]]
        if len(sizes) != 5 or pos + sum(sizes) != len(data) or width <= 0:
            return None
        blobs = []
        for size in sizes:
            blobs.append(data[pos : pos + size])
            pos += size
        names = blobs[0].decode("utf-8").split("\x00") if n else []
        nums, ids, counts = array("q"), array("Q"), array("I")
        nums.frombytes(blobs[1])
        ids.frombytes(blobs[2])
        counts.frombytes(blobs[3])
        if (len(names), len(nums), len(ids), len(counts)) != (n, 3 * n, 2 * n, n) or sum(counts) != total:
            return None
        if len(blobs[4]) != total * width:
            return None
        states = list(zip(nums[0::3], nums[1::3], nums[2::3], ids[0::2], ids[1::2], strict=True))
        hexed = blobs[4].hex()
        step = 2 * width
        digests: list[tuple[str, ...]]
        if total == n:  # one digest per file (the files serialization)
            digests = [(hexed[i : i + step],) for i in range(0, len(hexed), step)]
        else:
            digests = []
            at = 0
            for c in counts:
                digests.append(tuple(hexed[(at + k) * step : (at + k + 1) * step] for k in range(c)))
                at += c
        return CacheSnapshot(names, states, digests)

    def save(self, entries: Sequence[Entry], digests: Mapping[str, tuple[str, ...]]) -> None:
        """Write atomically (temp file, then rename); failing to write is not a verification error."""
        kept = [e for e in entries if e.name in digests]
        try:
            names = "\x00".join(e.name for e in kept).encode("utf-8", "surrogateescape")
            nums = array("q", [v for e in kept for v in e.state[:3]])
            ids = array("Q", [v for e in kept for v in e.state[3:]])
            lists = [digests[e.name] for e in kept]
            counts = array("I", [len(d) for d in lists])
            raw = bytes.fromhex("".join(h for d in lists for h in d))
        except (OverflowError, ValueError):
            return  # a state or digest that the format cannot hold: no cache, the next run hashes again
        total = sum(counts)
        width = len(raw) // total if total else 32
        sections = [names, nums.tobytes(), ids.tobytes(), counts.tobytes(), raw]
        head = json.dumps(
            {
                "root": self.root,
                "digest_name": self.ser.digest_name,
                "files": len(kept),
                "digests": total,
                "digest_bytes": width,
                "sections": [len(x) for x in sections],
            },
            separators=(",", ":"),
        ).encode()
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(b"".join([_MAGIC, struct.pack("<I", len(head)), head, *sections]))
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
