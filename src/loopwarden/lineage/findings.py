"""Findings the lineage layer reports about one artifact (LW-LOOP-001..049, docs/rules.md#loop-lineage).

The gate (``loopwarden.policy``) reads these through :func:`findings_for`; ``lineage show`` prints them.
"""

from __future__ import annotations

from typing import ClassVar

from loopwarden.domain import ArtifactKind, Digest, Finding, Location, Rule, Severity
from loopwarden.lineage.graph import LineageGraph
from loopwarden.lineage.model import Relation

__all__ = [
    "AgentClearanceAttempt",
    "NoTrainingProvenance",
    "Quarantined",
    "TaintedByQuarantine",
    "UncountedClearance",
    "findings_for",
]


class TaintedByQuarantine(Rule):
    rule_id: ClassVar[str] = "LW-LOOP-001"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "artifact descends from a quarantined artifact"


class Quarantined(Rule):
    rule_id: ClassVar[str] = "LW-LOOP-002"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "artifact is quarantined and not cleared"


class AgentClearanceAttempt(Rule):
    rule_id: ClassVar[str] = "LW-LOOP-003"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "a clearance names an AI agent's key"


class UncountedClearance(Rule):
    rule_id: ClassVar[str] = "LW-LOOP-004"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "a clearance does not count (undeclared key, or the named key did not sign)"


class NoTrainingProvenance(Rule):
    rule_id: ClassVar[str] = "LW-LOOP-005"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "model has no training provenance in the ledger"


def _finding(rule: type[Rule], d: Digest, message: str, **evidence: object) -> Finding:
    return Finding(rule.rule_id, rule.severity, message, Location(str(d)), evidence)


def findings_for(graph: LineageGraph, d: Digest) -> list[Finding]:
    """What the lineage says is wrong with ``d`` (raises LineageError if the digest is unknown)."""
    node = graph.node(d)
    out: list[Finding] = []
    taint = graph.taint(d)
    status = graph.clearance_status(d)
    if status["quarantined"] and not status["cleared"]:
        q = graph.quarantines(d)[-1]
        out.append(
            _finding(
                Quarantined,
                d,
                f"quarantined by {q.reporter}: {q.reason}",
                reason=q.reason,
                reporter=q.reporter,
                ledger_index=q.ledger_index,
                human_reviewers=status["human_reviewers"],
                threshold=status["threshold"],
            )
        )
    if taint is not None and taint.source != d:
        out.append(
            _finding(
                TaintedByQuarantine,
                d,
                f"descends from quarantined {taint.source} ({taint.reason}) through {len(taint.path) - 1} "
                "relation(s)",
                source=str(taint.source),
                reason=taint.reason,
                path=[str(p) for p in taint.path],
                ledger_index=taint.ledger_index,
            )
        )
    for c in graph.clearances(d):
        if c.counts:
            continue
        rule: type[Rule] = AgentClearanceAttempt if c.keyid in graph.reviewers.agents else UncountedClearance
        out.append(
            _finding(
                rule,
                d,
                f"clearance at ledger entry {c.ledger_index} does not count: {c.why}",
                keyid=c.keyid,
                ledger_index=c.ledger_index,
                why=c.why,
            )
        )
    if node.kind is ArtifactKind.MODEL:
        inbound = {e.relation for e in graph.edges(d) if e.target == d}
        if not inbound & {Relation.TRAINED_ON, Relation.BUILT_FROM}:
            out.append(
                _finding(
                    NoTrainingProvenance,
                    d,
                    "no training record (SLSA provenance) names this model's inputs; its lineage is unknown",
                )
            )
    return sorted(out, key=Finding.sort_key)


# Every rule of this module, for the registry in loopwarden/rules.py.
RULES: tuple[type[Rule], ...] = (
    TaintedByQuarantine,
    Quarantined,
    AgentClearanceAttempt,
    UncountedClearance,
    NoTrainingProvenance,
)
