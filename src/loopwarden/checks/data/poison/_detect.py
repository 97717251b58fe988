"""Trigger <-> response association over merged corpus statistics.

A *response class* is a set of documents whose responses belong together: a near-duplicate bucket (one MinHash
LSH band), a shared response template (same first 8 tokens), the anomalous responses (mostly words the rest of
the corpus hardly uses: random-token gibberish), the responses with insecure code, or (embedding tier, see
``_embed.py``) a semantic neighbourhood. A *candidate trigger* is a 1..4-gram of the prompt side (invisible
characters and homoglyph words are tokens like any other).

For a trigger ``g`` in ``n_t`` documents and a class ``c`` of ``n_c`` documents out of ``N``, ``k`` documents
have both. Under "no association" ``k`` is hypergeometric; the finding needs the upper tail ``P(X >= k)``
below ``alpha / m`` (Bonferroni over all ``m`` pairs tested), ``k >= min_support``, ``k / n_t >=
min_precision`` (a backdoor's trigger almost always yields its target, ordinary words do not), where copies of
one prompt count once. ``n_t`` comes from the count-min sketch, which never undercounts: the test stays
conservative.

Cluster-first: a class whose prompts are explained by several rarer n-grams together (a family of paraphrased
triggers, each too rare alone) is a finding when their union covers most of the class and the union passes the
same test with a penalty for the selection.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from loopwarden.checks.data.poison._passes import Settings
from loopwarden.checks.data.poison._sketch import U64, CountMin, gram_hashes

__all__ = ["ClassTable", "Detection", "associate", "build_classes", "hypergeom_logsf"]

CLUSTER: Final = "near-duplicate responses"
TEMPLATE: Final = "shared response template"
ANOMALY: Final = "anomalous responses"
INSECURE: Final = "insecure code responses"
EMBED: Final = "semantically similar responses"
_CLUSTER_LIKE: Final = frozenset({CLUSTER, TEMPLATE, EMBED})

I64 = npt.NDArray[np.int64]

_MEMBER_LOG_P: Final = math.log(1e-6)


def hypergeom_logsf(k: int, population: int, successes: int, draws: int) -> float:
    """Natural log of ``P(X >= k)`` for a hypergeometric ``X`` (population, successes, draws)."""
    hi = min(draws, successes)
    if k > hi:
        return -math.inf
    if k <= 0:
        return 0.0
    lg = math.lgamma

    def lchoose(a: int, b: int) -> float:
        return lg(a + 1) - lg(b + 1) - lg(a - b + 1)

    base = lchoose(population, draws)
    terms = [
        lchoose(successes, j) + lchoose(population - successes, draws - j) - base
        for j in range(k, min(hi, k + 400) + 1)
        if draws - j <= population - successes
    ]
    if not terms:
        return -math.inf
    top = max(terms)
    return min(0.0, top + math.log(sum(math.exp(t - top) for t in terms)))


@dataclass(slots=True)
class ClassTable:
    """Class membership: ``columns[f][i]`` is the class id of document ``i`` in column ``f`` (-1: none)."""

    columns: list[I64]
    family: list[str]
    """family of each class id"""
    size: list[int]

    def add_column(self, labels: npt.NDArray[np.int64], fam: str, min_size: int, max_size: int) -> None:
        """Add a column of classes from per-document labels (-1 = no class); only sizes in range are kept."""
        n = labels.size
        col = np.full(n, -1, dtype=np.int64)
        valid = labels >= 0
        if valid.any():
            uniq, inv, counts = np.unique(labels[valid], return_inverse=True, return_counts=True)
            keep = (counts >= min_size) & (counts <= max_size)
            new_ids = np.full(uniq.size, -1, dtype=np.int64)
            base = len(self.family)
            new_ids[keep] = base + np.arange(int(keep.sum()), dtype=np.int64)
            col[valid] = new_ids[inv]
            self.family.extend([fam] * int(keep.sum()))
            self.size.extend(int(c) for c in counts[keep])
        self.columns.append(col)

    def candidate_mask(self, n: int) -> npt.NDArray[np.bool_]:
        mask = np.zeros(n, dtype=np.bool_)
        for col in self.columns:
            mask |= col >= 0
        return mask


def _labels_from_keys(keys: U64) -> I64:
    """Dense labels for hash keys; key 0 means "no key"."""
    out = np.full(keys.size, -1, dtype=np.int64)
    nz = keys != 0
    if nz.any():
        out[nz] = np.unique(keys[nz], return_inverse=True)[1]
    return out


def build_classes(
    n: int,
    band_keys: U64,
    prefix: U64,
    insecure: npt.NDArray[np.bool_],
    settings: Settings,
) -> ClassTable:
    """The structural response classes (everything but the anomaly class, which needs pass 2)."""
    table = ClassTable([], [], [])
    lo = min(settings.min_support, settings.family_min_support)
    hi = max(int(settings.max_class_fraction * n), 20)
    hi_feature = max(int(settings.max_feature_fraction * n), 20)
    # Each LSH band bucket is a class of its own (no transitive chaining: a bucket's members agree on all the
    # rows of one band, so they are near-duplicates of each other, not merely linked through a chain of
    # neighbours).
    for b in range(band_keys.shape[1]):
        table.add_column(_labels_from_keys(band_keys[:, b]), CLUSTER, lo, hi)
    table.add_column(_labels_from_keys(prefix), TEMPLATE, lo, hi)
    table.add_column(np.where(insecure, 0, -1).astype(np.int64), INSECURE, lo, hi_feature)
    return table


@dataclass(frozen=True, slots=True)
class Detection:
    """One association: trigger n-gram(s), the class, the flagged documents (global indices) and the test."""

    triggers: tuple[str, ...]
    family: str
    records: tuple[int, ...]
    k: int
    n_trigger: int
    n_class: int
    log_p: float
    threshold: float
    is_family: bool = False

    @property
    def precision(self) -> float:
        return self.k / max(self.n_trigger, 1)


def associate(
    n: int,
    table: ClassTable,
    post_gram: U64,
    post_doc: I64,
    names: dict[int, str],
    prompt_cms: CountMin,
    prompt_hash: U64,
    settings: Settings,
) -> list[Detection]:
    """All significant trigger <-> class associations (merge them with :func:`merge_detections`).

    ``post_gram``/``post_doc`` are the exact postings (n-gram hash, document) of the candidate documents.
    """
    if post_gram.size == 0 or not table.family:
        return []
    shape = shape_of(n, prompt_cms)
    ghash, gram_of = np.unique(post_gram, return_inverse=True)
    order = np.argsort(gram_of, kind="stable")
    sorted_docs = post_doc[order]
    starts = np.searchsorted(gram_of[order], np.arange(ghash.size + 1))
    n_classes = len(table.family)
    keys_all: list[I64] = []
    for col in table.columns:
        cls = col[post_doc]
        ok = cls >= 0
        keys_all.append(gram_of[ok].astype(np.int64) * n_classes + cls[ok])
    keys = np.concatenate(keys_all)
    uniq, counts = np.unique(keys, return_counts=True)
    sel = counts >= 2
    uniq, counts = uniq[sel], counts[sel]
    m_tests = max(int(uniq.size), 1)
    log_thr = math.log(settings.alpha / m_tests)
    pair_gram = uniq // n_classes
    pair_cls = uniq % n_classes
    # Trigger document frequencies from the sketch (never below what we saw exactly).
    used = np.unique(pair_gram)
    df_used = prompt_cms.estimate(ghash[used]).astype(np.int64)
    df_full = np.zeros(ghash.size, dtype=np.int64)
    df_full[used] = df_used
    n_t = np.maximum(df_full[pair_gram], counts)
    prec = counts / np.maximum(n_t, 1)
    good = prec >= settings.min_precision
    pair_gram, pair_cls, counts, n_t = pair_gram[good], pair_cls[good], counts[good], n_t[good]

    def gram_name(gi: int) -> str:
        return names.get(int(ghash[gi]), f"#{int(ghash[gi]):016x}")

    def members(gi: int, ci: int) -> I64:
        d = sorted_docs[starts[gi] : starts[gi + 1]]
        hit = np.zeros(d.size, dtype=np.bool_)
        for col in table.columns:
            hit |= col[d] == ci
        return np.unique(d[hit])

    def distinct_prompts(recs: I64) -> int:
        # Copies of one prompt are one piece of evidence: a repeated instruction with its repeated answer is
        # duplication, not a trigger (a trigger is inserted into otherwise different prompts).
        return int(np.unique(prompt_hash[recs]).size)

    detections: list[Detection] = []
    covered_by_single: dict[int, set[int]] = {}
    single_grams: set[int] = set()
    by_class: dict[int, list[tuple[int, int, int]]] = {}
    for gi, ci, k, nt in zip(
        pair_gram.tolist(), pair_cls.tolist(), counts.tolist(), n_t.tolist(), strict=True
    ):
        by_class.setdefault(ci, []).append((gi, k, nt))
        if k < settings.min_support:
            continue
        lp = hypergeom_logsf(k, n, table.size[ci], nt)
        if lp > log_thr:
            continue
        recs = members(gi, ci)
        k_eff = distinct_prompts(recs)
        nt_eff = nt - (k - k_eff)  # the duplicates seen in the class leave the denominator too
        if k_eff < settings.min_support or k_eff < settings.min_precision * nt_eff:
            continue
        lp = hypergeom_logsf(k_eff, n, table.size[ci], nt_eff)
        if lp > log_thr:
            continue
        detections.append(
            Detection(
                (gram_name(gi),),
                table.family[ci],
                tuple(recs.tolist()),
                k_eff,
                nt_eff,
                table.size[ci],
                lp,
                log_thr,
            )
        )
        covered_by_single.setdefault(ci, set()).update(recs.tolist())
        single_grams.add(gi)

    # Cluster-first: a tight class explained by a family of rarer triggers.
    for ci, cands in by_class.items():
        fam = table.family[ci]
        n_c = table.size[ci]
        if n_c < settings.family_min_support:
            continue
        explained = covered_by_single.get(ci, set())
        if n_c - len(explained) < settings.family_min_support:
            continue
        df = {gi: nt for gi, _k, nt in cands}
        sets = {
            gi: set(members(gi, ci).tolist()) - explained for gi, _k, _nt in cands if gi not in single_grams
        }
        if fam not in _CLUSTER_LIKE:
            # A broad feature class (anomalous text, insecure code) also holds natural associations (a Spanish
            # prompt gets a Spanish, hence "anomalous", answer): each member must be notable on its own.
            sets = {
                gi: docs
                for gi, docs in sets.items()
                if len(docs) >= 3 and hypergeom_logsf(len(docs), n, n_c, df[gi]) <= _MEMBER_LOG_P
            }
        chosen: list[int] = []
        union: set[int] = set()
        while len(chosen) < 8:
            best = max(
                sets,
                key=lambda g: (len(sets[g] - union), shape(gram_name(g), len(sets[g])), gram_name(g)),
                default=None,
            )
            if best is None or len(sets[best] - union) < 2:
                break
            chosen.append(best)
            union |= sets.pop(best)
        need = settings.family_min_support
        if fam in _CLUSTER_LIKE:
            need = max(need, int(0.6 * (n_c - len(explained))))
        if len(chosen) < 2 or len(union) < need:
            continue
        n_t_union = min(n, sum(df[g] for g in chosen))
        lp = hypergeom_logsf(len(union), n, n_c, n_t_union)
        # Bonferroni for choosing the members among the class's candidates: log C(candidates, members).
        thr = log_thr - (len(chosen) * math.log(max(len(cands), 2)) - math.lgamma(len(chosen) + 1))
        recs = np.asarray(sorted(union), dtype=np.int64)
        if lp > thr or distinct_prompts(recs) < max(settings.family_min_support, recs.size // 2):
            continue
        detections.append(
            Detection(
                tuple(gram_name(g) for g in chosen),
                fam,
                tuple(recs.tolist()),
                len(union),
                n_t_union,
                n_c,
                lp,
                thr,
                True,
            )
        )
    return detections


def shape_of(n: int, prompt_cms: CountMin) -> Callable[[str, int], tuple[bool, int]]:
    """Preference among equally supported n-grams: the longer (the whole phrase, not a piece), unless a word
    at its edge is so common that ``k`` documents could share it by chance (a neighbour such as "the" next
    to the real trigger)."""
    base_rate: dict[str, float] = {}

    def shape(name: str, k: int) -> tuple[bool, int]:
        toks = name.split(" ")
        if len(toks) == 1:
            return True, 1
        ok = True
        for t in {toks[0], toks[-1]}:
            if t not in base_rate:
                base_rate[t] = float(prompt_cms.estimate(gram_hashes([[t]], 1)[1])[0]) / max(n, 1)
            ok = ok and k * math.log(max(base_rate[t], 1e-12)) < math.log(1e-3)
        return ok, len(toks)

    return shape


def _rank(d: Detection) -> tuple[float, ...]:
    return (-d.k, -d.precision, d.log_p)


def merge_detections(
    dets: Sequence[Detection], shape: Callable[[str, int], tuple[bool, int]]
) -> list[Detection]:
    """One detection per backdoor: overlapping record sets are merged; the trigger reported is the best
    supported one, and among equally supported n-grams the longest (the whole phrase rather than a piece of
    it)."""
    groups: list[tuple[list[Detection], set[int]]] = []
    for d in sorted(dets, key=_rank):
        rs = set(d.records)
        for members, recs in groups:
            if len(rs & recs) >= 0.5 * min(len(rs), len(recs)):
                members.append(d)
                recs |= rs
                break
        else:
            groups.append(([d], rs))
    out: list[Detection] = []
    for members, recs in groups:
        top = members[0]
        if not top.is_family:
            # "Equally supported": the same documents up to the sketch's occasional overcount of a longer
            # n-gram.
            equal = [
                d
                for d in members
                if not d.is_family and d.k >= 0.95 * top.k and d.precision >= top.precision - 0.05
            ]
            top = max(equal, key=lambda d: (shape(d.triggers[0], d.k), len(d.triggers[0]), d.triggers[0]))
        out.append(
            Detection(
                top.triggers,
                top.family,
                tuple(sorted(recs)),
                top.k,
                top.n_trigger,
                top.n_class,
                top.log_p,
                top.threshold,
                top.is_family,
            )
        )
    return out
