"""Mergeable, bounded-memory statistics: stable hashing, a count-min sketch and MinHash/LSH signatures.

Every hash here is stable across processes and machines (CRC-32 plus multiply-shift mixing, never Python's
salted ``hash``), so statistics computed by different workers merge by plain addition or concatenation.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["CountMin", "MinHasher", "gram_hashes", "stable_hash", "stable_hashes", "token_hashes"]

U64 = npt.NDArray[np.uint64]

_MASK64: Final = (1 << 64) - 1


def stable_hash(text: str) -> int:
    """A 64-bit process-independent hash of ``text`` (CRC-32 of the UTF-8 bytes plus their length, mixed)."""
    data = text.encode("utf-8", "surrogatepass")
    h = zlib.crc32(data) | (len(data) << 32)
    h = (h * 0x9E3779B97F4A7C15) & _MASK64
    return h ^ (h >> 29)


def stable_hashes(texts: Iterable[str]) -> U64:
    """:func:`stable_hash` of many strings, vectorised after the CRC step."""
    crc = [zlib.crc32(b) | (len(b) << 32) for b in (t.encode("utf-8", "surrogatepass") for t in texts)]
    arr = np.fromiter(crc, dtype=np.uint64, count=len(crc))
    with np.errstate(over="ignore"):
        arr = arr * np.uint64(0x9E3779B97F4A7C15)
    return arr ^ (arr >> np.uint64(29))


_TOKEN_CACHE: dict[str, int] = {}
_TOKEN_CACHE_MAX: Final = 1 << 20


def token_hashes(tokens: list[str]) -> list[int]:
    """CRC-32 based 32-bit hashes of tokens (with their byte length mixed in), memoised."""
    cache = _TOKEN_CACHE
    out: list[int | None] = list(map(cache.get, tokens))
    if None in out:
        if len(cache) >= _TOKEN_CACHE_MAX:
            cache.clear()
        for i, h in enumerate(out):
            if h is None:
                t = tokens[i]
                b = t.encode("utf-8", "surrogatepass")
                out[i] = cache[t] = zlib.crc32(b) ^ (len(b) * 0x9E3779B1 & 0xFFFFFFFF)
    return out  # type: ignore[return-value]  # every None was replaced above


_GRAM_MULT: Final = np.uint64(0x100000001B3)
_SEP: Final = np.uint64(0xCBF29CE484222325)


def gram_hashes(
    token_lists: list[list[str]], max_n: int, *, distinct: bool = True
) -> tuple[npt.NDArray[np.int64], U64]:
    """64-bit hashes of every 1..max_n-gram of each token list, as (list index, hash) arrays.

    The hash of an n-gram depends only on its tokens (not on its position or document), so the same n-gram
    gets the same hash in every batch, shard and worker. With ``distinct`` each (list, n-gram) pair appears
    once. The order without ``distinct`` is: n ascending, then list, then position (see :func:`gram_strings`).
    """
    lens = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint64)
    th = np.fromiter(token_hashes([t for toks in token_lists for t in toks]), dtype=np.uint64, count=total)
    doc = np.repeat(np.arange(len(token_lists), dtype=np.int64), lens)
    docs: list[npt.NDArray[np.int64]] = []
    hashes: list[U64] = []
    acc = th.copy()
    with np.errstate(over="ignore"):
        for n in range(1, max_n + 1):
            if n > 1:
                m = total - n + 1
                if m <= 0:
                    break
                acc = (acc[:m] ^ _SEP) * _GRAM_MULT + th[n - 1 : n - 1 + m]
                acc ^= acc >> np.uint64(31)
                ok = doc[:m] == doc[n - 1 : n - 1 + m]
                docs.append(doc[:m][ok])
                hashes.append(acc[ok] * np.uint64(n))
            else:
                docs.append(doc)
                hashes.append(acc.copy())
    d = np.concatenate(docs)
    h = np.concatenate(hashes)
    if distinct:
        order = np.lexsort((h, d))
        d, h = d[order], h[order]
        keep = np.ones(d.size, dtype=np.bool_)
        keep[1:] = (d[1:] != d[:-1]) | (h[1:] != h[:-1])
        d, h = d[keep], h[keep]
    return d, h


def gram_strings(token_lists: list[list[str]], max_n: int) -> list[str]:
    """The n-gram strings in the order of :func:`gram_hashes` with ``distinct=False``."""
    out: list[str] = []
    for n in range(1, max_n + 1):
        for toks in token_lists:
            out.extend(" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1))
    return out


_ROW_MULT: Final = (
    0xD6E8FEB86659FD93,
    0xA0761D6478BD642F,
    0xE7037ED1A0B428DB,
    0x8EBC6AF09C88C6E3,
    0x589965CC75374CC3,
    0x1D8E4E27C47D124F,
)


class CountMin:
    """A count-min sketch of document frequencies: ``depth`` rows of ``2**log2_width`` uint32 counters.

    Estimates never undercount; with ``n`` insertions a row overcounts by ``n / width`` on average and the
    minimum over the rows is usually exact for the rare items that matter here. Two sketches of the same shape
    merge by addition, so per-shard sketches combine into the corpus sketch.
    """

    def __init__(self, log2_width: int = 22, depth: int = 4) -> None:
        if not 1 <= depth <= len(_ROW_MULT):
            raise ValueError(f"depth must be 1..{len(_ROW_MULT)}")
        self.log2_width = log2_width
        self.depth = depth
        self.table = np.zeros(depth << log2_width, dtype=np.uint32)

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes)

    def _indices(self, hashes: U64) -> npt.NDArray[np.int64]:
        shift = np.uint64(64 - self.log2_width)
        rows = []
        with np.errstate(over="ignore"):
            for r in range(self.depth):
                col = (hashes * np.uint64(_ROW_MULT[r])) >> shift
                rows.append(col.astype(np.int64) + (r << self.log2_width))
        return np.stack(rows)

    def add(self, hashes: U64) -> None:
        """Count each hash once (callers pass the distinct items of each document)."""
        if hashes.size == 0:
            return
        np.add.at(self.table, self._indices(hashes).ravel(), np.uint32(1))

    def add_counts(self, hashes: U64, counts: npt.NDArray[np.int64]) -> None:
        """Add ``counts[i]`` for ``hashes[i]`` (merging pre-aggregated counts gives the same table as adding
        items one by one: the sketch is linear)."""
        if hashes.size == 0:
            return
        idx = self._indices(hashes)
        for r in range(self.depth):
            np.add.at(self.table, idx[r], counts.astype(np.uint32))

    def estimate(self, hashes: U64) -> npt.NDArray[np.uint32]:
        if hashes.size == 0:
            return np.zeros(0, dtype=np.uint32)
        return np.asarray(self.table[self._indices(hashes)].min(axis=0), dtype=np.uint32)

    def merge(self, other: CountMin) -> None:
        if other.log2_width != self.log2_width or other.depth != self.depth:
            raise ValueError("count-min sketches of different shapes cannot merge")
        self.table += other.table


_PRIME: Final = (1 << 61) - 1


class MinHasher:
    """MinHash over character 5-gram shingles, vectorised with numpy, with LSH banding.

    ``bands * rows`` permutations; two texts with Jaccard similarity ``s`` share at least one band key with
    probability ``1 - (1 - s**rows) ** bands`` (8 bands of 4 rows: 0.98 at s=0.8, 0.40 at s=0.5).
    """

    shingle = 5

    def __init__(self, bands: int = 8, rows: int = 4, seed: int = 0x5EED) -> None:
        self.bands = bands
        self.rows = rows
        rng = np.random.Generator(np.random.PCG64(seed))
        n = bands * rows
        self._a = (rng.integers(1, 1 << 62, size=n, dtype=np.uint64) | np.uint64(1)).astype(np.uint64)
        self._b = rng.integers(0, 1 << 62, size=n, dtype=np.uint64)

    def band_keys(self, texts: Sequence[str]) -> U64:
        """One uint64 key per band per text, shape ``(len(texts), bands)``; normalised text (lower case,
        spaces). A text shorter than a shingle is one shingle."""
        k = self.shingle
        if not texts:
            return np.zeros((0, self.bands), dtype=np.uint64)
        blobs = [" ".join(t.lower().split()).encode("utf-8", "surrogatepass") for t in texts]
        blobs = [b if len(b) >= k else b.ljust(k, b"\x00") for b in blobs]
        lengths = np.fromiter((len(b) for b in blobs), dtype=np.int64, count=len(blobs))
        buf = np.frombuffer(b"".join(blobs), dtype=np.uint8).astype(np.uint64)
        total = buf.size
        # 40-bit shingle value at every position (positions that cross a text boundary are dropped below).
        win = np.zeros(total - k + 1, dtype=np.uint64)
        for j in range(k):
            win |= buf[j : total - k + 1 + j] << np.uint64(8 * j)
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        counts = lengths - k + 1
        # Indices of valid windows, text by text.
        valid = np.repeat(starts, counts) + (
            np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        )
        sh = win[valid]
        seg = np.concatenate(([0], np.cumsum(counts)[:-1]))
        n_perm = self._a.size
        sig = np.empty((len(texts), n_perm), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for p in range(n_perm):
                hv = (sh * self._a[p] + self._b[p]) >> np.uint64(20)
                sig[:, p] = np.minimum.reduceat(hv, seg)
        # Band keys: mix the rows of each band into one 64-bit key (band index folded in).
        keys = np.zeros((len(texts), self.bands), dtype=np.uint64)
        with np.errstate(over="ignore"):
            for b in range(self.bands):
                acc = np.full(len(texts), np.uint64(0x9E3779B97F4A7C15 ^ b), dtype=np.uint64)
                for r in range(self.rows):
                    acc = (acc ^ sig[:, b * self.rows + r]) * np.uint64(0xFF51AFD7ED558CCD)
                    acc ^= acc >> np.uint64(33)
                keys[:, b] = acc
        return keys
