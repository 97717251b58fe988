"""The Merkle tree against a naive, literal transcription of RFC 9162 section 2.1, for every size 0-1100."""

from __future__ import annotations

import hashlib
import random
from functools import cache

import pytest

from loopwarden.ledger import merkle as M

N_MAX = 1100


def _leaves(n: int) -> list[bytes]:
    return [M.leaf_hash(b"entry-%d" % i) for i in range(n)]


LEAVES = _leaves(N_MAX)
NODES = M.nodes_from_leaves(LEAVES)


def node(level: int, idx: int) -> bytes:
    return NODES[(level, idx)]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def naive_mth(lo: int, hi: int) -> bytes:
    n = hi - lo
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return LEAVES[lo]
    k = _k(n)
    return M.node_hash(naive_mth(lo, lo + k), naive_mth(lo + k, hi))


def naive_path(m: int, lo: int, hi: int) -> list[bytes]:
    n = hi - lo
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*naive_path(m, lo, lo + k), naive_mth(lo + k, hi)]
    return [*naive_path(m - k, lo + k, hi), naive_mth(lo, lo + k)]


def naive_subproof(m: int, lo: int, hi: int, b: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if b else [naive_mth(lo, hi)]
    k = _k(n)
    if m <= k:
        return [*naive_subproof(m, lo, lo + k, b), naive_mth(lo + k, hi)]
    return [*naive_subproof(m - k, lo + k, hi, False), naive_mth(lo, lo + k)]


def _indexes(n: int, rng: random.Random) -> set[int]:
    if n <= 70:
        return set(range(n))
    k = _k(n)
    picks = {0, 1, n - 1, n - 2, n // 2, k - 1, k, min(n - 1, k + 1)}
    picks |= {rng.randrange(n) for _ in range(6)}
    return picks


def _old_sizes(n: int, rng: random.Random) -> set[int]:
    if n <= 70:
        return set(range(n + 1))
    k = _k(n)
    picks = {0, 1, 2, n - 1, n, n // 2, k - 1, k, k + 1}
    picks |= {1 << j for j in range(n.bit_length()) if 1 << j <= n}
    picks |= {rng.randrange(n + 1) for _ in range(6)}
    return picks


def test_every_size_agrees_with_the_naive_reference() -> None:
    rng = random.Random(9162)
    for n in range(N_MAX + 1):
        root = naive_mth(0, n)
        assert M.root_from_leaves(LEAVES[:n]) == root, n
        assert M.mth(0, n, node) == root, n
        for i in _indexes(n, rng):
            proof = M.inclusion_proof(i, n, node)
            assert list(proof.hashes) == naive_path(i, 0, n), (i, n)
            assert M.verify_inclusion(LEAVES[i], proof, root), (i, n)
        for m in _old_sizes(n, rng):
            cp = M.consistency_proof(m, n, node)
            expected = naive_subproof(m, 0, n, True) if 0 < m < n else []
            assert list(cp.hashes) == expected, (m, n)
            assert M.verify_consistency(naive_mth(0, m), root, cp), (m, n)


def _zero(level: int, idx: int) -> bytes:
    return bytes(32)


def _plen(i: int, size: int) -> int:
    return len(M.inclusion_proof(i, size, _zero).hashes)


def _clen(m: int, size: int) -> int:
    return len(M.consistency_proof(m, size, _zero).hashes)


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 64, 100, 1023, 1024, 1025, 1100])
def test_mutated_inclusion_proofs_fail(n: int) -> None:
    root = naive_mth(0, n)
    rng = random.Random(n)
    for i in _indexes(n, rng):
        p = M.inclusion_proof(i, n, node)
        for j in range(len(p.hashes)):
            bad = list(p.hashes)
            bad[j] = _flip(bad[j])
            assert not M.verify_inclusion(LEAVES[i], M.InclusionProof(i, n, tuple(bad)), root)
        for other in {0, i - 1, i + 1, n - 1} - {i}:
            if 0 <= other < n:
                assert not M.verify_inclusion(LEAVES[i], M.InclusionProof(other, n, p.hashes), root), (
                    i,
                    other,
                )
        # A wrong size is caught whenever it changes the proof's shape; the size itself is bound to the root by
        # the signed checkpoint, not by the proof.
        for size in range(i + 1, n + 40):
            if _plen(i, size) != len(p.hashes):
                assert not M.verify_inclusion(LEAVES[i], M.InclusionProof(i, size, p.hashes), root), (
                    i,
                    n,
                    size,
                )
        assert not M.verify_inclusion(LEAVES[i], M.InclusionProof(i, n, (*p.hashes, LEAVES[0])), root)
        if p.hashes:
            assert not M.verify_inclusion(LEAVES[i], M.InclusionProof(i, n, p.hashes[:-1]), root)
        assert not M.verify_inclusion(_flip(LEAVES[i]), p, root)
        assert not M.verify_inclusion(LEAVES[i], M.InclusionProof(n, n, p.hashes), root)


@pytest.mark.parametrize("n", [3, 7, 8, 9, 100, 1024, 1100])
def test_mutated_consistency_proofs_fail(n: int) -> None:
    root = naive_mth(0, n)
    rng = random.Random(n)
    for m in _old_sizes(n, rng):
        if not 0 < m < n:
            continue
        old = naive_mth(0, m)
        p = M.consistency_proof(m, n, node)
        for j in range(len(p.hashes)):
            bad = list(p.hashes)
            bad[j] = _flip(bad[j])
            assert not M.verify_consistency(old, root, M.ConsistencyProof(m, n, tuple(bad))), (m, n, j)
        for size in range(m + 1, n + 40):
            if _clen(m, size) != len(p.hashes):
                assert not M.verify_consistency(old, root, M.ConsistencyProof(m, size, p.hashes)), (
                    m,
                    n,
                    size,
                )
        for size in range(1, n):
            if _clen(size, n) != len(p.hashes):
                assert not M.verify_consistency(old, root, M.ConsistencyProof(size, n, p.hashes)), (
                    m,
                    n,
                    size,
                )
        assert not M.verify_consistency(_flip(old), root, p)
        assert not M.verify_consistency(old, _flip(root), p)
        assert not M.verify_consistency(old, root, M.ConsistencyProof(m, n, p.hashes[:-1]))


def test_bounds_are_enforced() -> None:
    with pytest.raises(IndexError):
        M.inclusion_proof(5, 5, node)
    with pytest.raises(IndexError):
        M.consistency_proof(6, 5, node)
    assert M.verify_consistency(M.EMPTY_ROOT, naive_mth(0, 9), M.ConsistencyProof(0, 9, ()))
    assert not M.verify_consistency(M.EMPTY_ROOT, naive_mth(0, 9), M.ConsistencyProof(0, 9, (LEAVES[0],)))
