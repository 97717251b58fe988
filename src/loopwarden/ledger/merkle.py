"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, inclusion and consistency proofs.

Trees are addressed by *perfect nodes*: node ``(level, idx)`` covers leaves ``[idx * 2**level, (idx + 1) * 2**level)``.
Any hash the RFC's algorithms need is either a perfect node or a range ending at the tree size, which folds from
perfect nodes, so storage only ever keeps perfect nodes and a proof needs O(log n) of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "EMPTY_ROOT",
    "ConsistencyProof",
    "InclusionProof",
    "consistency_keys",
    "consistency_proof",
    "inclusion_keys",
    "inclusion_proof",
    "leaf_hash",
    "mth",
    "node_hash",
    "perfect_nodes_after_append",
    "root_from_leaves",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

NodeGetter = Callable[[int, int], bytes]
"""Returns the stored hash of perfect node ``(level, idx)``."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def mth(lo: int, hi: int, node: NodeGetter) -> bytes:
    """MTH(D[lo:hi]) for ``lo`` aligned as RFC 9162's recursion produces it."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n & (n - 1) == 0 and lo % n == 0:
        level = n.bit_length() - 1
        return node(level, lo >> level)
    k = _split(n)
    return node_hash(mth(lo, lo + k, node), mth(lo + k, hi, node))


def root_from_leaves(leaves: Sequence[bytes]) -> bytes:
    """Reference root over already-hashed leaves (used by verify and tests)."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    # Perfect folding with a right-edge carry gives the same tree as RFC 9162's recursive split.
    stack: list[tuple[int, bytes]] = []
    for h in level:
        size, cur = 1, h
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            cur = node_hash(left, cur)
            size *= 2
        stack.append((size, cur))
    acc = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        acc = node_hash(h, acc)
    return acc


def perfect_nodes_after_append(
    index: int, leaf: bytes, left_siblings: NodeGetter
) -> list[tuple[int, int, bytes]]:
    """The perfect nodes completed by appending leaf ``index``: ``(level, idx, hash)``, level 0 first."""
    out = [(0, index, leaf)]
    level, idx, cur = 0, index, leaf
    while idx & 1:
        cur = node_hash(left_siblings(level, idx - 1), cur)
        level += 1
        idx >>= 1
        out.append((level, idx, cur))
    return out


class _Collect:
    """A node getter that records which nodes an algorithm asks for."""

    def __init__(self) -> None:
        self.keys: list[tuple[int, int]] = []

    def __call__(self, level: int, idx: int) -> bytes:
        self.keys.append((level, idx))
        return EMPTY_ROOT


def _path(m: int, lo: int, hi: int, node: NodeGetter, out: list[bytes]) -> None:
    n = hi - lo
    if n <= 1:
        return
    k = _split(n)
    if m < k:
        _path(m, lo, lo + k, node, out)
        out.append(mth(lo + k, hi, node))
    else:
        _path(m - k, lo + k, hi, node, out)
        out.append(mth(lo, lo + k, node))


def _subproof(m: int, lo: int, hi: int, b: bool, node: NodeGetter, out: list[bytes]) -> None:
    n = hi - lo
    if m == n:
        if not b:
            out.append(mth(lo, hi, node))
        return
    k = _split(n)
    if m <= k:
        _subproof(m, lo, lo + k, b, node, out)
        out.append(mth(lo + k, hi, node))
    else:
        _subproof(m - k, lo + k, hi, False, node, out)
        out.append(mth(lo, lo + k, node))


def inclusion_keys(index: int, size: int) -> list[tuple[int, int]]:
    """The perfect nodes an inclusion proof for ``index`` in a tree of ``size`` reads."""
    c = _Collect()
    _path(index, 0, size, c, [])
    return c.keys


def consistency_keys(old: int, new: int) -> list[tuple[int, int]]:
    c = _Collect()
    if 0 < old < new:
        _subproof(old, 0, new, True, c, [])
    return c.keys


@dataclass(frozen=True, slots=True)
class InclusionProof:
    index: int
    tree_size: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]


def inclusion_proof(index: int, size: int, node: NodeGetter) -> InclusionProof:
    if not 0 <= index < size:
        raise IndexError(f"leaf {index} is not in a tree of size {size}")
    out: list[bytes] = []
    _path(index, 0, size, node, out)
    return InclusionProof(index, size, tuple(out))


def consistency_proof(old: int, new: int, node: NodeGetter) -> ConsistencyProof:
    if not 0 <= old <= new:
        raise IndexError(f"no consistency proof from size {old} to size {new}")
    out: list[bytes] = []
    if 0 < old < new:
        _subproof(old, 0, new, True, node, out)
    return ConsistencyProof(old, new, tuple(out))


def verify_inclusion(leaf: bytes, proof: InclusionProof, root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    index, size, path = proof.index, proof.tree_size, proof.hashes
    if index >= size or index < 0:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old_root: bytes, new_root: bytes, proof: ConsistencyProof) -> bool:
    """RFC 9162 section 2.1.4.2."""
    first, second, path = proof.old_size, proof.new_size, list(proof.hashes)
    if first < 0 or second < first:
        return False
    if first == second:
        return not path and old_root == new_root
    if first == 0:
        return not path and old_root == EMPTY_ROOT
    if not path:
        return False
    if first & (first - 1) == 0:  # first is a power of two
        path.insert(0, old_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def nodes_from_leaves(leaves: Iterable[bytes]) -> dict[tuple[int, int], bytes]:
    """Every perfect node of the tree over ``leaves`` (for tests and in-memory stores)."""
    nodes: dict[tuple[int, int], bytes] = {}
    for i, h in enumerate(leaves):
        for level, idx, v in perfect_nodes_after_append(i, h, lambda lv, ix: nodes[(lv, ix)]):
            nodes[(level, idx)] = v
    return nodes
