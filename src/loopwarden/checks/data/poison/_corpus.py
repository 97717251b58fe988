"""Corpus orchestration: documents from shards, the two passes, the merge, and the report.

Memory model (in-process executor): per document ~80 bytes of compact features (8 MinHash band keys, template
key, prompt hash, flags) plus its record id string; two fixed-size count-min sketches (64 MiB + 64 MiB by
default); exact n-gram postings only for the documents of candidate response classes (documents whose response
is one of a rare near-duplicate cluster, a template, anomalous or insecure code). No text is kept between the
passes: the shards are read twice. For corpora whose per-document features do not fit in one machine's memory,
the Ray executor keeps them in the object store and does the merge as keyed shuffles.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from loopwarden.checks.data.poison._detect import (
    ANOMALY,
    CLUSTER,
    EMBED,
    INSECURE,
    TEMPLATE,
    ClassTable,
    Detection,
    associate,
    build_classes,
    merge_detections,
    shape_of,
)
from loopwarden.checks.data.poison._passes import Pass1Batch, Settings, pass1_batch, pass2_batch
from loopwarden.checks.data.poison._sketch import U64, CountMin, MinHasher
from loopwarden.checks.data.poison._text import escape
from loopwarden.checks.data.poison.rules import (
    HIDDEN_RULES,
    TriggerFamily,
    TriggerToAnomalous,
    TriggerToCluster,
    TriggerToInsecureCode,
    TriggerToSemanticCluster,
)
from loopwarden.domain import ArtifactKind, Finding, Location, TargetResult

__all__ = ["CorpusResult", "Doc", "ShardSource", "run_local", "to_targets"]

Embedder = Callable[[Sequence[str]], npt.NDArray[np.float32]]
"""Maps a batch of responses to unit-norm embeddings ``(n, dim)`` (embedding tier)."""


@dataclass(frozen=True, slots=True)
class Doc:
    id: str
    line: int | None
    prompt: str
    response: str


@dataclass(frozen=True, slots=True)
class Problem:
    """A record the scan could not analyse (malformed, missing field); ``fatal`` ends the shard."""

    message: str
    fatal: bool = False


@dataclass(frozen=True, slots=True)
class ShardSource:
    """A shard: its display path and a function that streams its documents (called once per pass)."""

    path: str
    open: Callable[[], Iterator[Doc | Problem]]


@dataclass(slots=True)
class ShardState:
    path: str
    ids: list[str] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)
    problems: int = 0
    first_problem: str | None = None
    fatal: str | None = None

    def problem(self, p: Problem) -> None:
        self.problems += 1
        if self.first_problem is None:
            self.first_problem = p.message
        if p.fatal:
            self.fatal = p.message


@dataclass(slots=True)
class CorpusResult:
    shards: list[ShardState]
    offsets: list[int]
    detections: list[Detection]
    hidden: list[tuple[int, str, str]]
    """(global index, kind, escaped example)"""
    timed_out: str | None = None

    def locate(self, g: int) -> tuple[int, int]:
        s = int(np.searchsorted(np.asarray(self.offsets), g, side="right")) - 1
        return s, g - self.offsets[s]


@dataclass(slots=True)
class Accumulator:
    """Merged pass-1 statistics: concatenated per-document arrays and summed sketches."""

    settings: Settings
    prompt_cms: CountMin
    resp_cms: CountMin
    band_keys: list[U64] = field(default_factory=list)
    prefix: list[U64] = field(default_factory=list)
    prompt_hash: list[U64] = field(default_factory=list)
    insecure: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    overlap: list[npt.NDArray[np.float32]] = field(default_factory=list)
    emb: list[npt.NDArray[np.float16]] = field(default_factory=list)
    hidden: list[tuple[int, str, str]] = field(default_factory=list)
    n: int = 0

    @classmethod
    def new(cls, settings: Settings) -> Accumulator:
        return cls(
            settings,
            CountMin(settings.cms_log2_width, settings.cms_depth),
            CountMin(settings.cms_log2_width, settings.cms_depth),
        )

    def add(
        self, batch: Pass1Batch, emb: npt.NDArray[np.float32] | None, count_sketches: bool = True
    ) -> None:
        base = self.n
        if count_sketches:
            self.prompt_cms.add(batch.prompt_grams)
            self.resp_cms.add(batch.resp_terms)
        self.band_keys.append(batch.band_keys)
        self.prefix.append(batch.prefix)
        self.prompt_hash.append(batch.prompt_hash)
        self.insecure.append(batch.insecure)
        if emb is not None:
            self.overlap.append(batch.overlap)
        if emb is not None:
            self.emb.append(emb.astype(np.float16))  # 768 bytes per document for MiniLM
        self.hidden.extend((base + i, kind, ex) for i, kind, ex in batch.hidden)
        self.hidden.extend(
            (base + i, "homoglyph", f"{ex} (looks like {sk!r})") for i, ex, sk in batch.confusable
        )
        self.n += len(batch)

    def arrays(self) -> tuple[U64, U64, U64, npt.NDArray[np.bool_], npt.NDArray[np.float16] | None]:
        bands = self.settings_bands()
        return (
            np.concatenate(self.band_keys) if self.band_keys else np.zeros((0, bands), dtype=np.uint64),
            np.concatenate(self.prefix) if self.prefix else np.zeros(0, dtype=np.uint64),
            np.concatenate(self.prompt_hash) if self.prompt_hash else np.zeros(0, dtype=np.uint64),
            np.concatenate(self.insecure) if self.insecure else np.zeros(0, dtype=np.bool_),
            np.concatenate(self.emb) if self.emb else None,
        )

    @staticmethod
    def settings_bands() -> int:
        return MinHasher().bands


def _batches(docs: Iterator[Doc | Problem], state: ShardState | None, size: int) -> Iterator[list[Doc]]:
    batch: list[Doc] = []
    for d in docs:
        if isinstance(d, Problem):
            if state is not None:
                state.problem(d)
            continue
        batch.append(d)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def hit(self) -> bool:
        return time.monotonic() > self.end


def run_local(
    shards: Sequence[ShardSource],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    max_seconds: float = 600.0,
) -> CorpusResult:
    """Both passes in this process, shard by shard, batch by batch."""
    hasher = MinHasher()
    acc = Accumulator.new(settings)
    states: list[ShardState] = []
    offsets: list[int] = []
    deadline = _Deadline(max_seconds)
    timed_out: str | None = None
    for src in shards:
        state = ShardState(src.path)
        states.append(state)
        offsets.append(acc.n)
        for batch in _batches(src.open(), state, settings.batch_size):
            state.ids.extend(d.id for d in batch)
            state.lines.extend(d.line for d in batch)
            prompts = [d.prompt for d in batch]
            responses = [d.response for d in batch]
            acc.add(
                pass1_batch(prompts, responses, hasher, settings.max_n),
                embedder(responses) if embedder is not None else None,
            )
            if deadline.hit():
                timed_out = f"resource limit 'max_seconds' reached: {max_seconds:g} s during the first pass"
                break
        if timed_out:
            break
    if timed_out:
        return CorpusResult(states, offsets, [], acc.hidden, timed_out)
    n = acc.n
    band_keys, prefix, prompt_hash, insecure, emb = acc.arrays()
    table = build_classes(n, band_keys, prefix, insecure, settings)
    candidate = table.candidate_mask(n)
    if emb is not None:
        candidate[:] = (
            True  # the embedding tier tests every mid-frequency n-gram: postings for every document
        )
    anomalous = np.zeros(n, dtype=np.bool_)
    post_gram: list[U64] = []
    post_doc: list[npt.NDArray[np.int64]] = []
    names: dict[int, str] = {}
    for src, state, base in zip(shards, states, offsets, strict=True):
        pos = base
        for batch in _batches(src.open(), None, settings.batch_size):
            gidx = np.arange(pos, pos + len(batch), dtype=np.int64)
            out = pass2_batch(
                [d.prompt for d in batch],
                [d.response for d in batch],
                gidx,
                candidate[pos : pos + len(batch)],
                acc.resp_cms,
                settings,
                n,
            )
            anomalous[pos : pos + len(batch)] = out.anomalous
            post_gram.append(out.gram)
            post_doc.append(out.doc)
            names.update(out.names)
            pos += len(batch)
            if deadline.hit():
                timed_out = f"resource limit 'max_seconds' reached: {max_seconds:g} s during the second pass"
                break
        if timed_out:
            break
        if pos - base != len(state.ids):
            state.fatal = state.fatal or "the shard changed between the two passes of the scan"
    if timed_out:
        return CorpusResult(states, offsets, [], acc.hidden, timed_out)
    overlap = np.concatenate(acc.overlap) if acc.overlap else None
    dets = finish(
        n, table, anomalous, post_gram, post_doc, names, acc.prompt_cms, prompt_hash, settings, emb, overlap
    )
    return CorpusResult(states, offsets, dets, acc.hidden)


def finish(
    n: int,
    table: ClassTable,
    anomalous: npt.NDArray[np.bool_],
    post_gram: Sequence[U64],
    post_doc: Sequence[npt.NDArray[np.int64]],
    names: dict[int, str],
    prompt_cms: CountMin,
    prompt_hash: U64,
    settings: Settings,
    emb: npt.NDArray[np.float16] | None = None,
    overlap: npt.NDArray[np.float32] | None = None,
) -> list[Detection]:
    """Add the anomaly class and run the association tests (shared by every executor)."""
    lo = min(settings.min_support, settings.family_min_support)
    table.add_column(
        np.where(anomalous, 0, -1).astype(np.int64),
        ANOMALY,
        lo,
        max(int(settings.max_feature_fraction * n), 20),
    )
    gram = np.concatenate(post_gram) if post_gram else np.zeros(0, dtype=np.uint64)
    doc = np.concatenate(post_doc) if post_doc else np.zeros(0, dtype=np.int64)
    dets = associate(n, table, gram, doc, names, prompt_cms, prompt_hash, settings)
    if emb is not None:
        from loopwarden.checks.data.poison._embed import semantic_associations

        dets.extend(semantic_associations(n, emb, gram, doc, names, prompt_hash, settings, overlap))
    return merge_detections(dets, shape_of(n, prompt_cms))


_RULE_OF = {
    CLUSTER: TriggerToCluster,
    TEMPLATE: TriggerToCluster,
    ANOMALY: TriggerToAnomalous,
    INSECURE: TriggerToInsecureCode,
    EMBED: TriggerToSemanticCluster,
}


def _id_key(rid: str) -> tuple[int, int, str]:
    return (0, int(rid), "") if rid.isdigit() and len(rid) < 19 else (1, 0, rid)


def _sorted_ids(ids: Iterable[str]) -> list[str]:
    return sorted(set(ids), key=_id_key)


def to_targets(result: CorpusResult) -> list[TargetResult]:
    """One target per shard; a corpus-level detection appears in each shard that holds flagged records."""
    per_shard: list[list[Finding]] = [[] for _ in result.shards]
    for det in result.detections:
        by_shard: dict[int, list[int]] = {}
        for g in det.records:
            s, local = result.locate(g)
            by_shard.setdefault(s, []).append(local)
        rule = TriggerFamily if det.is_family else _RULE_OF[det.family]
        trigger = " | ".join(det.triggers)
        for s, locals_ in sorted(by_shard.items()):
            st = result.shards[s]
            ids = _sorted_ids(st.ids[i] for i in locals_)
            known = [line for i in locals_ if (line := st.lines[i]) is not None]
            first_line = min(known, default=None)
            msg = (
                f"{len(det.records)} records whose prompts contain {escape(trigger)!r} get {det.family}"
                f" ({det.k} of {det.n_trigger} trigger documents in a class of {det.n_class};"
                f" log10 p = {det.log_p / np.log(10):.1f})"
            )
            evidence: dict[str, Any] = {
                "records": ids,
                "trigger": trigger,
                "trigger_escaped": escape(trigger),
                "triggers": list(det.triggers),
                "response_class": det.family,
                "class_size": det.n_class,
                "trigger_documents": det.n_trigger,
                "co_occurrences": det.k,
                "log10_p": round(det.log_p / float(np.log(10)), 2),
                "log10_threshold": round(det.threshold / float(np.log(10)), 2),
                "corpus_records": len(det.records),
            }
            per_shard[s].append(
                Finding(rule.rule_id, rule.severity, msg, Location(st.path, line=first_line), evidence)
            )
    hidden: dict[tuple[int, str], list[tuple[str, str]]] = {}
    for g, kind, example in result.hidden:
        s, local = result.locate(g)
        hidden.setdefault((s, kind), []).append((result.shards[s].ids[local], example))
    for (s, kind), hits in sorted(hidden.items()):
        rule = HIDDEN_RULES[kind]
        st = result.shards[s]
        examples = sorted({ex for _, ex in hits})[:5]
        msg = f"{len(hits)} records contain {rule.title[0].lower() + rule.title[1:]}"
        per_shard[s].append(
            Finding(
                rule.rule_id,
                rule.severity,
                msg,
                Location(st.path),
                {"records": _sorted_ids(r for r, _ in hits), "examples": examples, "kind": kind},
            )
        )
    out: list[TargetResult] = []
    for s, st in enumerate(result.shards):
        reason: str | None = None
        if result.timed_out:
            reason = result.timed_out
        elif st.fatal:
            reason = st.fatal
        elif st.problems:
            reason = f"{st.problems} record(s) could not be analysed; first: {st.first_problem}"
        out.append(
            TargetResult.from_findings(st.path, ArtifactKind.DATASET, per_shard[s], unverified_reason=reason)
        )
    return out
