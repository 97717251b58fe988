"""``policy trend``: per generation, how far each capability sits below its thresholds, and every threshold's
history.

Two kinds of slow movement become visible side by side: capability scores creeping up toward a threshold
generation after generation, and thresholds creeping away from them version after version (cumulative drift,
LW-LOOP-059).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopwarden.domain import ArtifactKind, Digest, Finding
from loopwarden.policy.chain import ChainAudit, threshold_history
from loopwarden.policy.gate import measurements
from loopwarden.policy.model import Combine, PolicyFile, Scope
from loopwarden.policy.safeguards import Evidence

if TYPE_CHECKING:
    from loopwarden.policy.interface import LineageView
    from loopwarden.workspace import Workspace

__all__ = ["TrendReport", "TrendRow", "trend", "workspace_trend"]


@dataclass(frozen=True, slots=True)
class TrendRow:
    generation: int
    capability: str
    score: float | None
    """Model scope: the highest-capability member's score; loop scope: the declared combination."""
    measured: int
    members: int
    margins: dict[str, float]
    """Level -> distance to its threshold on the safe side (negative once reached)."""


@dataclass(frozen=True, slots=True)
class TrendReport:
    policy: str
    rows: tuple[TrendRow, ...]
    history: dict[str, list[dict[str, Any]]]
    """``capability/level`` -> [{version, sequence, threshold}] across every recorded version, in ledger
    order."""
    findings: tuple[Finding, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "generations": [
                {
                    "generation": r.generation,
                    "capability": r.capability,
                    "score": r.score,
                    "measured": r.measured,
                    "members": r.members,
                    "margins": dict(sorted(r.margins.items())),
                }
                for r in self.rows
            ],
            "threshold_history": self.history,
            "findings": [f.to_json() for f in self.findings],
        }


def _more_capable(policy: PolicyFile, cname: str, values: list[float]) -> float:
    from loopwarden.policy.model import Direction

    cap = policy.capabilities[cname]
    return max(values) if cap.direction is Direction.HIGHER else min(values)


def trend(
    policy: PolicyFile, graph: LineageView, chain: ChainAudit, *, now: datetime | None = None
) -> TrendReport:
    """Scores per generation against ``policy``'s levels, plus threshold history and drift over ``chain``."""
    evidence = Evidence(graph, None, now or datetime.now(UTC))
    by_gen: dict[int, list[tuple[Digest, ArtifactKind]]] = defaultdict(list)
    for n in graph.nodes():
        if n.generation is not None:
            by_gen[n.generation].append((n.digest, n.kind))
    rows = []
    for gen in sorted(by_gen):
        for cname, cap in sorted(policy.capabilities.items()):
            kinds = {ArtifactKind(k) for k in cap.members}
            members = sorted(d for d, k in by_gen[gen] if k in kinds)
            if not members:
                continue
            values: dict[Digest, float] = {}
            for m in members:
                found = measurements(evidence, m, cap)
                if found:
                    values[m] = found[-1].value
            score: float | None = None
            if values:
                if cap.scope is Scope.MODEL or cap.combine is Combine.MAX:
                    score = _more_capable(policy, cname, list(values.values()))
                elif cap.combine is Combine.SUM:
                    score = sum(values.values())
                else:
                    weights: dict[str, float] = {str(k): w for k, w in cap.weights.items()}
                    score = sum(v * weights.get(str(graph.node(m).kind), 1.0) for m, v in values.items())
            margins = {lv.name: cap.margin(score, lv) for lv in cap.levels} if score is not None else {}
            rows.append(TrendRow(gen, cname, score, len(values), len(members), margins))
    history: dict[str, list[dict[str, Any]]] = {}
    for (cname, lname), pts in threshold_history(list(chain.versions)).items():
        history[f"{cname}/{lname}"] = [
            {"version": str(p.version), "sequence": p.sequence, "threshold": p.threshold} for p in pts
        ]
    return TrendReport(policy.name, tuple(rows), history, chain.findings)


def workspace_trend(
    workspace: Workspace, *, policy_file: str | None = None, now: datetime | None = None
) -> TrendReport:
    """The trend for a workspace: against ``policy_file``, or the recorded head version when none is given."""
    from loopwarden.errors import UsageError
    from loopwarden.lineage import LineageGraph
    from loopwarden.policy.chain import workspace_chain
    from loopwarden.policy.model import load_policy

    chain = workspace_chain(workspace)
    if policy_file is not None:
        policy = load_policy(policy_file)
    elif chain.head is not None:
        policy = chain.head.policy
    else:
        raise UsageError(
            "no policy version is recorded in the ledger",
            hint="pass --policy FILE or run 'loopwarden policy record FILE'",
        )
    return trend(policy, LineageGraph.from_workspace(workspace), chain, now=now)
