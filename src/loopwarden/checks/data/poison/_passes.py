"""The two streaming passes of the poisoning scan, as pure per-batch functions.

Both executors (in-process and Ray) call exactly these functions, so they compute the same statistics.

Pass 1 (every document): prompt-side n-gram document frequencies into a count-min sketch, response-side term
frequencies into a second sketch, per-document compact features (MinHash LSH band keys of the response, a
response template key, a hash of the prompt, an insecure-code flag) and the hidden-character / homoglyph
observations.

Pass 2 (every document, after the pass-1 statistics are merged): the response anomaly flag (share of terms the
rest of the corpus never uses) and exact n-gram postings, but only for documents that sit in a candidate
response class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from loopwarden.checks.data.poison._features import insecure_code, prefix_key_text
from loopwarden.checks.data.poison._sketch import (
    U64,
    CountMin,
    MinHasher,
    gram_hashes,
    gram_strings,
    stable_hashes,
)
from loopwarden.checks.data.poison._text import confusable_words, hidden_chars, tokenize

__all__ = ["Pass1Batch", "Pass2Batch", "Settings", "pass1_batch", "pass2_batch"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Detector parameters. The defaults are the documented ones (docs/poisoning.md)."""

    min_support: int = 5
    """Fewest flagged documents for a single-trigger finding."""
    family_min_support: int = 8
    """Fewest documents a family of triggers must cover together."""
    min_precision: float = 0.8
    """Share of a trigger's documents that must fall into the one response class."""
    alpha: float = 1e-3
    """Family-wise error rate of the association tests (Bonferroni over every (n-gram, class) pair tested)."""
    max_class_fraction: float = 0.02
    """Response clusters larger than this share of the corpus are ordinary language, not a target."""
    max_feature_fraction: float = 0.1
    """The same for the anomalous-response and insecure-code classes."""
    max_n: int = 4
    """Longest n-gram considered as a trigger."""
    anomaly_min_terms: int = 4
    anomaly_rare_share: float = 0.5
    """A response is anomalous when at least this share of its words is rare in the corpus ..."""
    anomaly_rare_fraction: float = 1e-4
    """... where rare means in at most max(3, this fraction of the documents) responses (a large attack makes
    its own gibberish pieces recur, so the bound grows with the corpus)."""
    cms_log2_width: int = 22
    cms_depth: int = 4
    batch_size: int = 4096


@dataclass(slots=True)
class Pass1Batch:
    """Pass-1 output for a batch of documents (local indices 0..n-1)."""

    band_keys: U64
    prefix: U64
    prompt_hash: U64
    insecure: npt.NDArray[np.bool_]
    overlap: npt.NDArray[np.float32]
    """share of the response's content words (4+ letters) that also occur in the prompt: topic continuity"""
    prompt_grams: U64
    resp_terms: U64
    hidden: list[tuple[int, str, str]] = field(default_factory=list)
    """(local index, kind, escaped example)"""
    confusable: list[tuple[int, str, str]] = field(default_factory=list)
    """(local index, escaped word, Latin skeleton)"""

    def __len__(self) -> int:
        return int(self.prompt_hash.size)


def pass1_batch(
    prompts: Sequence[str], responses: Sequence[str], hasher: MinHasher, max_n: int
) -> Pass1Batch:
    n = len(prompts)
    prompt_tokens: list[list[str]] = []
    resp_tokens: list[list[str]] = []
    prefix_texts: list[str] = []
    prefix_idx: list[int] = []
    insecure = np.zeros(n, dtype=np.bool_)
    overlap = np.zeros(n, dtype=np.float32)
    hidden: list[tuple[int, str, str]] = []
    confusable: list[tuple[int, str, str]] = []
    norm_prompts: list[str] = []
    plain_idx: list[int] = []
    for i in range(n):
        p = prompts[i]
        r = responses[i]
        norm_prompts.append(" ".join(p.lower().split()))
        prompt_tokens.append(tokenize(p))
        rt = tokenize(r)
        resp_tokens.append(rt)
        plain = p == r
        if plain:
            plain_idx.append(i)
        pk = None if plain else prefix_key_text(rt)
        if pk is not None:
            prefix_texts.append(pk)
            prefix_idx.append(i)
        insecure[i] = insecure_code(r)
        content = {t for t in rt if len(t) >= 4}
        if content:
            overlap[i] = len(content & set(prompt_tokens[-1])) / len(content)
        if not p.isascii() or not r.isascii():
            seen: set[str] = set()
            for text in (p,) if p is r else (p, r):
                for h in hidden_chars(text):
                    if h.kind not in seen:
                        seen.add(h.kind)
                        hidden.append((i, h.kind, h.escaped))
                for w in confusable_words(text):
                    if "homoglyph" not in seen:
                        seen.add("homoglyph")
                        confusable.append((i, w.escaped, w.skeleton))
    prefix = np.zeros(n, dtype=np.uint64)
    if prefix_texts:
        prefix[np.asarray(prefix_idx, dtype=np.int64)] = stable_hashes(prefix_texts) | np.uint64(1)
    band_keys = hasher.band_keys(responses)
    band_keys[band_keys == 0] = 1  # 0 means "no key"
    # Plain text (the document is both sides): near-duplicate and template classes of a document would
    # associate with the document's own n-grams, so only the anomaly and insecure-code classes apply.
    band_keys[plain_idx] = 0
    return Pass1Batch(
        band_keys=band_keys,
        prefix=prefix,
        prompt_hash=stable_hashes(norm_prompts),
        insecure=insecure,
        overlap=overlap,
        prompt_grams=gram_hashes(prompt_tokens, max_n)[1],
        resp_terms=gram_hashes([[t for t in rt if t.isalpha()] for rt in resp_tokens], 1)[1],
        hidden=hidden,
        confusable=confusable,
    )


@dataclass(slots=True)
class Pass2Batch:
    anomalous: npt.NDArray[np.bool_]
    gram: U64
    """n-gram hash of each posting (candidate documents only, one posting per distinct n-gram per document)"""
    doc: npt.NDArray[np.int64]
    """global document index of each posting"""
    names: dict[int, str]
    """n-gram hash -> n-gram text"""


def pass2_batch(
    prompts: Sequence[str],
    responses: Sequence[str],
    gidx: npt.NDArray[np.int64],
    candidate: npt.NDArray[np.bool_],
    resp_cms: CountMin,
    settings: Settings,
    n_total: int,
) -> Pass2Batch:
    """``candidate[i]`` says whether document ``i`` of the batch sits in a candidate response class."""
    n = len(prompts)
    words = [[t for t in tokenize(r) if t.isalpha()] for r in responses]
    d, h = gram_hashes(words, 1, distinct=False)
    df = resp_cms.estimate(h)
    anomalous = np.zeros(n, dtype=np.bool_)
    if d.size:
        rare_df = max(3, int(np.ceil(settings.anomaly_rare_fraction * n_total)))
        is_rare = (df <= rare_df).astype(np.float64)
        total = np.bincount(d, minlength=n)
        rare = np.bincount(d, weights=is_rare, minlength=n)
        anomalous = (total >= settings.anomaly_min_terms) & (rare >= settings.anomaly_rare_share * total)
        # ... or its second half (text that turns into gibberish after a trigger, as in plain-text poisoning)
        start = np.concatenate(([0], np.cumsum(total)[:-1]))
        pos = np.arange(d.size) - start[d]
        tail = pos >= total[d] // 2
        t_total = np.bincount(d[tail], minlength=n)
        t_rare = np.bincount(d[tail], weights=is_rare[tail], minlength=n)
        anomalous |= (t_total >= 2 * settings.anomaly_min_terms) & (
            t_rare >= settings.anomaly_rare_share * t_total
        )
    want = np.flatnonzero(candidate | anomalous)
    toks = [tokenize(prompts[int(i)]) for i in want]
    gd, gh = gram_hashes(toks, settings.max_n, distinct=False)
    names = dict(zip(gh.tolist(), gram_strings(toks, settings.max_n), strict=True))
    # one posting per distinct (document, n-gram)
    order = np.lexsort((gh, gd))
    gd, gh = gd[order], gh[order]
    keep = np.ones(gd.size, dtype=np.bool_)
    keep[1:] = (gd[1:] != gd[:-1]) | (gh[1:] != gh[:-1])
    return Pass2Batch(anomalous, gh[keep], gidx[want][gd[keep]], names)
