"""Safeguards: each kind is satisfied by attestations in the ledger about the artifact (or its ancestors).

The set of kinds is closed (:class:`SafeguardKind`); :func:`check_safeguard` maps each to the predicate type
it reads and the condition it checks, with ``assert_never`` so a new kind cannot be forgotten. Fail closed
throughout: no attestation, an unverified scan, a signature that does not verify, or evidence older than its
maximum age all leave the safeguard unsatisfied.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, assert_never

from loopwarden.attest.predicates import (
    DATASET_MANIFEST,
    MODEL_SIGNATURE,
    OMS_SIGNATURE,
    ROLE_POLICY,
    SCAN,
    SIGNOFF,
)
from loopwarden.domain import ArtifactKind, Digest, Severity
from loopwarden.errors import AttestationError, LoopwardenError
from loopwarden.policy.evidence import recorded_at, verified_person
from loopwarden.policy.model import PolicyFile, SafeguardKind, SafeguardSpec

if TYPE_CHECKING:
    from loopwarden.attest.keys import KeySet
    from loopwarden.ledger.interface import LedgerEntry
    from loopwarden.policy.interface import LineageView
    from loopwarden.workspace import Workspace

_PREFETCH_MIN = 32
CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a recorded time may lie (clocks differ) before the evidence stops counting."""

__all__ = [
    "CLOCK_SKEW",
    "Evidence",
    "SafeguardResult",
    "SafeguardStatus",
    "ScanState",
    "check_safeguard",
    "latest_scans",
    "predicate_type_of",
]


class SafeguardStatus(enum.StrEnum):
    SATISFIED = "satisfied"
    MISSING = "missing"
    """No attestation that could satisfy it."""
    FAILING = "failing"
    """Attestations exist and say no (findings, too few signers, an ancestor without a manifest)."""
    UNVERIFIED = "unverified"
    """The evidence itself is unverified (a scan that could not analyse the artifact)."""
    STALE = "stale"
    """The evidence is older than its maximum age, or carries no recorded time where one is needed."""


@dataclass(frozen=True, slots=True)
class SafeguardResult:
    name: str
    kind: SafeguardKind
    status: SafeguardStatus
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def satisfied(self) -> bool:
        return self.status is SafeguardStatus.SATISFIED


class Evidence:
    """Ledger entries about artifacts, read through the lineage graph, each envelope re-verified (fail
    closed)."""

    def __init__(
        self, graph: LineageView, trusted: KeySet | None, now: datetime, *, workspace: Workspace | None = None
    ) -> None:
        self.graph = graph
        self.trusted = trusted
        self.now = now
        self.workspace = workspace
        self._cache: dict[tuple[Digest, str], list[LedgerEntry]] = {}

    def _verified(self, e: LedgerEntry) -> bool:
        if self.trusted is None:
            return True
        try:
            e.envelope().verify(self.trusted, source=f"ledger entry {e.index}")
        except LoopwardenError:
            return False  # an entry that does not verify is no evidence
        return True

    def entries(self, d: Digest, predicate_type: str) -> list[LedgerEntry]:
        key = (d, predicate_type)
        if key not in self._cache:
            good = [e for e in self.graph.attestations(d, predicate_type) if self._verified(e)]
            self._cache[key] = sorted(good, key=lambda x: x.index)
        return self._cache[key]

    def prefetch(self, digests: Iterable[Digest], predicate_type: str) -> None:
        """Read one predicate type's entries for many artifacts in one pass over the ledger (same result as
        :meth:`entries` per digest; only faster when an artifact has many ancestors)."""
        want = {d for d in digests if (d, predicate_type) not in self._cache}
        if self.workspace is None or len(want) < _PREFETCH_MIN:
            return
        found: dict[Digest, list[LedgerEntry]] = {d: [] for d in want}
        with self.workspace.open_ledger(writable=False) as led:
            for e in led.entries(predicate_type=predicate_type):
                try:
                    hits = [d for d in e.statement().subject_digests() if d in found]
                except AttestationError:
                    continue
                if hits and self._verified(e):
                    for d in hits:
                        found[d].append(e)
        self._cache.update({(d, predicate_type): v for d, v in found.items()})

    def fresh(self, predicate: Mapping[str, Any], max_age: timedelta | None) -> bool:
        """Within ``max_age`` of now. No recorded time, or one further in the future than the allowed clock
        skew (evidence dated ahead would otherwise stay fresh for ever), is not fresh."""
        if max_age is None:
            return True
        t = recorded_at(predicate)
        return t is not None and -CLOCK_SKEW <= self.now - t <= max_age


@dataclass(frozen=True, slots=True)
class ScanState:
    check: str
    verdict: str
    worst: Severity | None
    ledger_index: int
    recorded_at: datetime | None
    predicate: Mapping[str, Any]


def latest_scans(evidence: Evidence, d: Digest) -> dict[str, ScanState]:
    """The latest scan attestation per check about ``d`` (a later scan by the same check supersedes an
    earlier)."""
    out: dict[str, ScanState] = {}
    for e in evidence.entries(d, SCAN):
        try:
            p = e.statement().predicate
        except AttestationError:
            continue
        result = p.get("result")
        check = str(p.get("check", "?"))
        verdict = "unverified"
        worst: Severity | None = None
        if isinstance(result, Mapping):
            verdict = str(result.get("verdict", "unverified"))
            for f in result.get("findings") or []:
                try:
                    sev = Severity.parse(str(f.get("severity", "critical")))
                except (ValueError, AttributeError):
                    sev = Severity.CRITICAL  # an unreadable severity is the worst one
                worst = sev if worst is None else max(worst, sev)
        if verdict not in ("clean", "findings"):
            verdict = "unverified"
        out[check] = ScanState(check, verdict, worst, e.index, recorded_at(p), p)
    return out


def predicate_type_of(kind: SafeguardKind) -> str:
    """The predicate type whose attestations can satisfy a safeguard kind (exhaustive over the closed set)."""
    if kind is SafeguardKind.WEIGHTS_SIGNED:
        return OMS_SIGNATURE
    if kind is SafeguardKind.SCAN_CLEAN:
        return SCAN
    if kind is SafeguardKind.DATA_PROVENANCE_COMPLETE:
        return DATASET_MANIFEST
    if kind is SafeguardKind.AGENTS_LEAST_PRIVILEGE:
        return ROLE_POLICY
    if kind is SafeguardKind.TWO_PERSON_SIGNOFF:
        return SIGNOFF
    assert_never(kind)


def _failed(predicate: Mapping[str, Any]) -> bool:
    """A signature record that itself says verification failed (``verified: false`` or a failing verdict)."""
    verdict = predicate.get("verdict")
    return predicate.get("verified") is False or (
        isinstance(verdict, str) and verdict not in ("verified", "clean")
    )


def check_safeguard(
    name: str, spec: SafeguardSpec, artifact: Digest, evidence: Evidence, policy: PolicyFile
) -> SafeguardResult:
    """Is safeguard ``name`` satisfied for ``artifact``, by the ledger's attestations, now?"""
    max_age = spec.max_age  # safeguard evidence ages only when its safeguard says so
    kind = spec.kind

    def result(status: SafeguardStatus, detail: str, **ev: Any) -> SafeguardResult:
        return SafeguardResult(name, kind, status, detail, ev)

    if kind is SafeguardKind.WEIGHTS_SIGNED:
        # The OMS statement names the model by its OMS root digest; loopwarden's model-signature record also
        # names it by the lineage digest (sha256 / sha256-tree) that the rest of the loop uses.
        sigs = [
            e
            for ptype in (OMS_SIGNATURE, MODEL_SIGNATURE)
            for e in evidence.entries(artifact, ptype)
            if not _failed(e.statement().predicate)
        ]
        if not sigs:
            return result(
                SafeguardStatus.MISSING, "no OMS signature record (that verified) for the weights' digest"
            )
        fresh = [e for e in sigs if evidence.fresh(e.statement().predicate, max_age)]
        if not fresh:
            return result(
                SafeguardStatus.STALE,
                f"every signature record is older than {max_age}",
                entries=[e.index for e in sigs],
            )
        return result(SafeguardStatus.SATISFIED, "weights signed", entries=[e.index for e in fresh])
    if kind is SafeguardKind.SCAN_CLEAN:
        scans = latest_scans(evidence, artifact)
        if not scans:
            return result(SafeguardStatus.MISSING, "no scan attestation for the artifact")
        threshold = Severity.parse(spec.fail_on)
        unverified = sorted(c for c, s in scans.items() if s.verdict == "unverified")
        if unverified:
            return result(
                SafeguardStatus.UNVERIFIED,
                f"scan unverified by check(s) {', '.join(unverified)}",
                checks=unverified,
            )
        dirty = sorted(c for c, s in scans.items() if s.worst is not None and s.worst >= threshold)
        if dirty:
            return result(
                SafeguardStatus.FAILING,
                f"scan findings at or above {threshold} from {', '.join(dirty)}",
                checks=dirty,
            )
        stale = sorted(c for c, s in scans.items() if not evidence.fresh(s.predicate, max_age))
        if stale:
            return result(
                SafeguardStatus.STALE,
                f"scan by {', '.join(stale)} is older than {max_age} or has no recorded time",
                checks=stale,
            )
        return result(SafeguardStatus.SATISFIED, "scans clean", checks=sorted(scans))
    if kind is SafeguardKind.DATA_PROVENANCE_COMPLETE:
        datasets = sorted(
            a
            for a in evidence.graph.ancestors(artifact)
            if evidence.graph.node(a).kind is ArtifactKind.DATASET
        )
        if not datasets:
            # A model with no recorded training data has incomplete provenance by definition.
            return result(SafeguardStatus.MISSING, "no dataset ancestors recorded in the lineage")
        evidence.prefetch(datasets, DATASET_MANIFEST)
        lacking = [
            str(d)
            for d in datasets
            if not any(
                evidence.fresh(e.statement().predicate, max_age)
                for e in evidence.entries(d, DATASET_MANIFEST)
            )
        ]
        if lacking:
            return result(
                SafeguardStatus.FAILING,
                f"{len(lacking)} of {len(datasets)} dataset ancestor(s) lack a manifest attestation",
                datasets=lacking,
            )
        return result(SafeguardStatus.SATISFIED, f"all {len(datasets)} dataset ancestor(s) have manifests")
    if kind is SafeguardKind.AGENTS_LEAST_PRIVILEGE:
        sessions = sorted(
            a
            for a in evidence.graph.ancestors(artifact)
            if evidence.graph.node(a).kind is ArtifactKind.AGENT_SESSION
        )
        evidence.prefetch(sessions, ROLE_POLICY)
        lacking = [
            str(d)
            for d in sessions
            if not any(
                evidence.fresh(e.statement().predicate, max_age) for e in evidence.entries(d, ROLE_POLICY)
            )
        ]
        if lacking:
            return result(
                SafeguardStatus.FAILING,
                f"{len(lacking)} of {len(sessions)} agent session ancestor(s) lack a role-policy attestation",
                sessions=lacking,
            )
        return result(
            SafeguardStatus.SATISFIED,
            f"all {len(sessions)} agent session ancestor(s) ran under a role policy",
        )
    if kind is SafeguardKind.TWO_PERSON_SIGNOFF:
        humans = policy.human_keyids()
        signers: set[str] = set()
        old_signers: set[str] = set()
        for e in evidence.entries(artifact, SIGNOFF):
            keyid = verified_person(e, "reviewer")
            if keyid is None or keyid not in humans:
                continue
            if evidence.fresh(e.statement().predicate, max_age):
                signers.add(keyid)
            else:
                old_signers.add(keyid)
        if len(signers) >= spec.min_signers:
            return result(
                SafeguardStatus.SATISFIED, f"{len(signers)} distinct human sign-offs", signers=sorted(signers)
            )
        if len(signers | old_signers) >= spec.min_signers:
            return result(
                SafeguardStatus.STALE,
                f"only {len(signers)} fresh human sign-off(s); {spec.min_signers} needed within {max_age}",
                signers=sorted(signers),
            )
        status = SafeguardStatus.MISSING if not signers and not old_signers else SafeguardStatus.FAILING
        return result(
            status,
            f"{len(signers)} distinct human sign-off(s), {spec.min_signers} needed",
            signers=sorted(signers),
        )
    assert_never(kind)
