"""The gate: may ``action`` happen to an artifact? allow / deny / escalate, with every reason, recorded
signed.

The gate is an :class:`AllOf` of small policies, each failing closed:

- :class:`TaintPolicy` denies a quarantined artifact or a descendant of one that is not cleared;
- :class:`AncestorFindingsPolicy` denies when the artifact or any ancestor has an unverified scan or findings
  at or above ``gate.ancestor_fail_on`` (the latest scan per check and artifact counts);
- one :class:`CapabilityPolicy` per capability whose levels gate the action: a missing or stale measurement
  leads to ``gate.missing_eval`` (deny by default), an unverified one denies, and a reached level requires its
  safeguards (deny when one is not satisfied), escalates, or denies, as the level says;
- :class:`ChainPolicy` denies unless the policy in use is the recorded head of an intact chain with every
  loosening approved, and escalates on cumulative drift or an unauthorised proposer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopwarden.attest.predicates import EVAL_RESULT, EVAL_RUN, GATE_DECISION, SCAN
from loopwarden.attest.statement import Statement
from loopwarden.domain import ArtifactKind, Digest, Finding, ResourceDescriptor, Severity
from loopwarden.errors import AttestationError
from loopwarden.policy.chain import ChainAudit, workspace_chain
from loopwarden.policy.evidence import EvalResult, format_time, parse_eval_result, recorded_at
from loopwarden.policy.interface import AllOf, Decision, GateRequest, LineageView, Outcome, Policy, Reason
from loopwarden.policy.model import (
    Action,
    CapabilitySpec,
    Combine,
    Direction,
    MissingEval,
    OnReached,
    PolicyFile,
    Scope,
    policy_digest,
)
from loopwarden.policy.rules import (
    AncestorFindings,
    CapabilityOk,
    EvalMissing,
    EvidenceStale,
    EvidenceUnverified,
    LevelResponse,
    PolicyNotHead,
    SafeguardUnsatisfied,
    Tainted,
)
from loopwarden.policy.safeguards import Evidence, check_safeguard, latest_scans

if TYPE_CHECKING:
    from loopwarden.domain import Rule
    from loopwarden.workspace import Workspace

__all__ = [
    "AncestorFindingsPolicy",
    "CapabilityPolicy",
    "ChainPolicy",
    "GateResult",
    "LineageFindingsPolicy",
    "TaintPolicy",
    "build_gate_policy",
    "gate",
    "measurements",
]


def _passed(rule: type[Rule], message: str, subject: Digest | None = None, **evidence: Any) -> Reason:
    """An informational allow-reason: the check ran and passed (kept in the recorded decision)."""
    return Reason(rule.rule_id, Outcome.ALLOW, message, Severity.INFO, subject, evidence)


def _reason(
    rule: type[Rule], outcome: Outcome, message: str, subject: Digest | None = None, **evidence: Any
) -> Reason:
    return Reason(rule.rule_id, outcome, message, rule.severity, subject, evidence)


class TaintPolicy:
    name = "taint"

    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence

    def evaluate(self, request: GateRequest) -> Decision:
        t = self.evidence.graph.taint(request.artifact)
        if t is None:
            return Decision.from_reasons(
                [_passed(Tainted, "not quarantined, and descends from nothing quarantined", request.artifact)]
            )
        own = t.source == request.artifact
        msg = (
            f"artifact is quarantined: {t.reason}"
            if own
            else f"artifact descends from quarantined {t.source} ({t.reason}) via {len(t.path) - 1} step(s)"
        )
        return Decision.from_reasons(
            [
                _reason(
                    Tainted,
                    Outcome.DENY,
                    msg,
                    request.artifact,
                    source=str(t.source),
                    reason=t.reason,
                    path=[str(p) for p in t.path],
                    quarantine_entry=t.ledger_index,
                )
            ]
        )


class AncestorFindingsPolicy:
    name = "ancestor-findings"

    def __init__(self, evidence: Evidence, fail_on: Severity) -> None:
        self.evidence = evidence
        self.fail_on = fail_on

    def evaluate(self, request: GateRequest) -> Decision:
        reasons = []
        graph = self.evidence.graph
        scope = sorted({request.artifact, *graph.ancestors(request.artifact)})
        self.evidence.prefetch(scope, SCAN)
        for d in scope:
            who = "the artifact" if d == request.artifact else f"ancestor {d}"
            for check, s in sorted(latest_scans(self.evidence, d).items()):
                if s.verdict == "unverified":
                    reasons.append(
                        _reason(
                            AncestorFindings,
                            Outcome.DENY,
                            f"{who}: scan by {check} is unverified",
                            d,
                            check=check,
                            ledger_index=s.ledger_index,
                        )
                    )
                elif s.worst is not None and s.worst >= self.fail_on:
                    reasons.append(
                        _reason(
                            AncestorFindings,
                            Outcome.DENY,
                            f"{who}: scan by {check} has findings up to {s.worst}",
                            d,
                            check=check,
                            worst=str(s.worst),
                            ledger_index=s.ledger_index,
                        )
                    )
        if not reasons:
            reasons.append(
                _passed(
                    AncestorFindings,
                    f"no unverified scan and no finding at or above {self.fail_on} on the artifact or its "
                    f"{len(scope) - 1} ancestor(s)",
                    request.artifact,
                )
            )
        return Decision.from_reasons(reasons)


_TAINT_RULES = frozenset({"LW-LOOP-001", "LW-LOOP-002"})
"""Lineage's own taint findings: the gate reports taint once, as LW-LOOP-050 (from ``LineageGraph.taint``)."""


class LineageFindingsPolicy:
    """What the lineage layer reports about the artifact (``loopwarden.lineage.findings``, LW-LOOP-001..049).

    Critical denies; at or above ``gate.ancestor_fail_on`` escalates (an AI agent's key tried to clear it, a
    model without training provenance); below is kept as information.
    """

    name = "lineage-findings"

    def __init__(self, findings: Callable[[Digest], Sequence[Finding]], fail_on: Severity) -> None:
        self.findings = findings
        self.fail_on = fail_on

    def evaluate(self, request: GateRequest) -> Decision:
        reasons = []
        for f in self.findings(request.artifact):
            if f.rule_id in _TAINT_RULES:
                continue
            if f.severity >= Severity.CRITICAL:
                outcome = Outcome.DENY
            elif f.severity >= self.fail_on:
                outcome = Outcome.ESCALATE
            else:
                outcome = Outcome.ALLOW
            reasons.append(
                Reason(f.rule_id, outcome, f.message, f.severity, request.artifact, dict(f.evidence))
            )
        return Decision.from_reasons(reasons)


def measurements(evidence: Evidence, d: Digest, spec: CapabilitySpec) -> list[EvalResult]:
    """Every recorded score of ``spec``'s pinned eval (suite digest and metric) on ``d``, in ledger order.

    Read from eval-result attestations and from lineage eval-run records that carry scores.
    """
    pinned = Digest.parse(spec.eval.suite_digest)
    out = []
    for e in evidence.entries(d, EVAL_RESULT):
        r = parse_eval_result(e)
        if r is not None and r.model == d and r.suite_digest == pinned and r.metric == spec.eval.metric:
            out.append(r)
    for e in evidence.entries(d, EVAL_RUN):
        try:
            p = e.statement().predicate
            model = _rd_digest(p.get("model"))
            suite = _rd_digest(p.get("suite"))
            scores = p.get("scores")
        except (AttestationError, ValueError):
            continue
        if model != d or suite != pinned or not isinstance(scores, Mapping):
            continue
        value = scores.get(spec.eval.metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out.append(
                EvalResult(
                    d,
                    pinned,
                    spec.eval.metric,
                    float(value),
                    recorded_at(p),
                    str(p.get("verdict", "clean")),
                    e.index,
                )
            )
    return sorted(out, key=lambda r: r.ledger_index)


def _rd_digest(obj: Any) -> Digest | None:
    if not isinstance(obj, Mapping) or not isinstance(obj.get("digest"), Mapping) or not obj["digest"]:
        return None
    algo, value = sorted(obj["digest"].items())[0]
    return Digest(str(algo), str(value))


@dataclass(frozen=True, slots=True)
class _Score:
    value: float | None
    problems: tuple[Reason, ...]
    members: Mapping[str, float]


class CapabilityPolicy:
    """One capability: measure it (per model, or for the whole loop's generation), then apply its levels."""

    def __init__(self, cname: str, policy: PolicyFile, evidence: Evidence) -> None:
        self.cname = cname
        self.spec = policy.capabilities[cname]
        self.policy = policy
        self.evidence = evidence

    @property
    def name(self) -> str:
        return f"capability:{self.cname}"

    def _latest(self, d: Digest, missing: Outcome) -> tuple[float | None, list[Reason]]:
        found = measurements(self.evidence, d, self.spec)
        where = {
            "capability": self.cname,
            "suite_digest": self.spec.eval.suite_digest,
            "metric": self.spec.eval.metric,
        }
        if not found:
            return None, [
                _reason(
                    EvalMissing,
                    missing,
                    f"{self.cname}: no score of {self.spec.eval.suite}/"
                    f"{self.spec.eval.metric} (suite {self.spec.eval.suite_digest}) for {d}",
                    d,
                    **where,
                )
            ]
        r = found[-1]
        if r.verdict != "clean":
            return None, [
                _reason(
                    EvidenceUnverified,
                    Outcome.DENY,
                    f"{self.cname}: latest score for {d} is {r.verdict}",
                    d,
                    ledger_index=r.ledger_index,
                    **where,
                )
            ]
        if not self.evidence.fresh(
            {"recorded_at": format_time(r.recorded_at)} if r.recorded_at else {}, self.policy.evidence.max_age
        ):
            when = format_time(r.recorded_at) if r.recorded_at else "no recorded time"
            return None, [
                _reason(
                    EvidenceStale,
                    missing,
                    f"{self.cname}: latest score for {d} ({when}) is not fresh: older than "
                    f"{self.policy.evidence.max_age}, or dated ahead of now",
                    d,
                    ledger_index=r.ledger_index,
                    recorded_at=when,
                    **where,
                )
            ]
        return r.value, []

    def _score(self, request: GateRequest, missing: Outcome) -> _Score:
        if self.spec.scope is Scope.MODEL:
            value, own = self._latest(request.artifact, missing)
            return _Score(value, tuple(own), {str(request.artifact): value} if value is not None else {})
        graph = self.evidence.graph
        gen = graph.node(request.artifact).generation
        if gen is None:
            return _Score(
                None,
                (
                    _reason(
                        EvalMissing,
                        missing,
                        f"{self.cname}: loop-scoped capability, but the artifact has no generation",
                        request.artifact,
                    ),
                ),
                {},
            )
        kinds = {ArtifactKind(k) for k in self.spec.members}
        members = sorted(
            {n.digest for n in graph.nodes() if n.generation == gen and n.kind in kinds} | {request.artifact}
        )
        values: dict[Digest, float] = {}
        problems: list[Reason] = []
        for m in members:
            v, ps = self._latest(m, missing)
            problems.extend(ps)
            if v is not None:
                values[m] = v
        if problems:
            return _Score(None, tuple(problems), {str(k): v for k, v in values.items()})
        combine = self.spec.combine
        if combine is Combine.MAX:  # the most capable member, whichever way the metric grows
            total = max(values.values()) if self.spec.direction is Direction.HIGHER else min(values.values())
        elif combine is Combine.SUM:
            total = sum(values.values())
        else:  # weighted-sum
            weights: dict[str, float] = {str(k): w for k, w in self.spec.weights.items()}
            total = sum(v * weights.get(str(graph.node(m).kind), 1.0) for m, v in values.items())
        return _Score(total, (), {str(k): v for k, v in values.items()})

    def evaluate(self, request: GateRequest) -> Decision:
        gating = [lv for lv in self.spec.levels if request.action in lv.gates]
        if not gating:
            return Decision.from_reasons(
                [_passed(CapabilityOk, f"{self.cname}: no level gates {request.action}", request.artifact)]
            )
        missing = Outcome.DENY if self.policy.gate.missing_eval is MissingEval.DENY else Outcome.ESCALATE
        score = self._score(request, missing)
        if score.value is None:
            return Decision.from_reasons(score.problems)
        scope = "generation" if self.spec.scope is Scope.LOOP else "artifact"
        ev = {
            "capability": self.cname,
            "score": score.value,
            "scope": str(self.spec.scope),
            "members": dict(score.members),
        }
        reasons: list[Reason] = []
        for lv in gating:
            if not self.spec.reached(score.value, lv):
                continue
            head = (
                f"{self.cname}: {scope} score {score.value:g} reaches level {lv.name!r} "
                f"(threshold {lv.threshold:g})"
            )
            lev = {**ev, "level": lv.name, "threshold": lv.threshold}
            if lv.on_reached is OnReached.DENY:
                reasons.append(
                    _reason(
                        LevelResponse,
                        Outcome.DENY,
                        f"{head}, which denies {request.action}",
                        request.artifact,
                        **lev,
                    )
                )
                continue
            for sg in lv.safeguards:
                res = check_safeguard(
                    sg, self.policy.safeguards[sg], request.artifact, self.evidence, self.policy
                )
                if not res.satisfied:
                    reasons.append(
                        _reason(
                            SafeguardUnsatisfied,
                            Outcome.DENY,
                            f"{head}; safeguard {sg!r} is {res.status}: {res.detail}",
                            request.artifact,
                            safeguard=sg,
                            kind=str(res.kind),
                            status=str(res.status),
                            detail=dict(res.evidence),
                            **lev,
                        )
                    )
            if lv.on_reached is OnReached.ESCALATE:
                reasons.append(
                    _reason(
                        LevelResponse,
                        Outcome.ESCALATE,
                        f"{head}, which needs a human decision",
                        request.artifact,
                        **lev,
                    )
                )
        if not reasons:
            reasons.append(
                _reason(
                    CapabilityOk,
                    Outcome.ALLOW,
                    f"{self.cname}: {scope} score {score.value:g}; every reached level's safeguards hold",
                    request.artifact,
                    **ev,
                )
            )
        return Decision.from_reasons(reasons)


class ChainPolicy:
    """The policy in use must be the recorded head of an intact, approved chain."""

    name = "policy-chain"

    def __init__(self, policy: PolicyFile, audit: ChainAudit) -> None:
        self.policy = policy
        self.audit = audit

    def evaluate(self, request: GateRequest) -> Decision:
        digest = policy_digest(self.policy)
        reasons: list[Reason] = []
        head = self.audit.head
        if head is None or head.digest != digest:
            state = (
                "is not recorded in the ledger"
                if all(v.digest != digest for v in self.audit.versions)
                else f"is not the recorded head ({head.digest if head else 'none'})"
            )
            reasons.append(
                _reason(
                    PolicyNotHead,
                    Outcome.DENY,
                    f"policy {self.policy.name} ({digest}) {state}",
                    digest,
                    hint="loopwarden policy record FILE",
                )
            )
        lineage = _head_lineage(self.audit)
        for f in self.audit.findings:
            if f.evidence.get("version") not in lineage and not f.evidence.get("unreadable"):
                continue
            outcome = Outcome.DENY if f.severity >= Severity.CRITICAL else Outcome.ESCALATE
            reasons.append(
                Reason(
                    f.rule_id,
                    outcome,
                    f.message,
                    f.severity,
                    Digest.parse(f.evidence["version"]) if f.evidence.get("version") else None,
                    dict(f.evidence),
                )
            )
        if not reasons and head is not None:
            reasons.append(
                _passed(
                    PolicyNotHead,
                    f"policy {self.policy.name} is the recorded head, version {head.version}; "
                    "its chain has no findings",
                    digest,
                )
            )
        return Decision.from_reasons(reasons)


def _head_lineage(audit: ChainAudit) -> set[str]:
    by = {v.version: v for v in audit.versions}
    out: set[str] = set()
    cur = audit.head
    while cur is not None and str(cur.version) not in out:
        out.add(str(cur.version))
        cur = by.get(cur.previous) if cur.previous is not None else None
    return out


def build_gate_policy(
    policy: PolicyFile,
    evidence: Evidence,
    chain: ChainAudit,
    *,
    lineage_findings: Callable[[Digest], Sequence[Finding]] | None = None,
) -> Policy:
    """The gate: an AllOf of the chain, taint, ancestor-findings and (given) lineage-findings policies and one
    policy per capability."""
    children: list[Policy] = [
        ChainPolicy(policy, chain),
        TaintPolicy(evidence),
        AncestorFindingsPolicy(evidence, policy.gate.ancestor_severity),
    ]
    if lineage_findings is not None:
        children.append(LineageFindingsPolicy(lineage_findings, policy.gate.ancestor_severity))
    children.extend(CapabilityPolicy(c, policy, evidence) for c in sorted(policy.capabilities))
    return AllOf(children, name=f"gate:{policy.name}")


@dataclass(frozen=True, slots=True)
class GateResult:
    artifact: Digest
    action: Action
    policy: Digest
    decision: Decision
    now: datetime
    ledger_index: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": str(self.artifact),
            "action": str(self.action),
            "policy": str(self.policy),
            "decided_at": format_time(self.now),
            "ledger_index": self.ledger_index,
            **self.decision.to_json(),
        }


def gate(
    workspace: Workspace,
    artifact: Digest,
    action: Action,
    policy: PolicyFile,
    *,
    graph: LineageView | None = None,
    now: datetime | None = None,
    record: bool = True,
) -> GateResult:
    """Decide, from the ledger alone, whether ``action`` may happen to ``artifact``; record the decision,
    signed."""
    from loopwarden.lineage import LineageGraph
    from loopwarden.lineage.findings import findings_for

    when = now or datetime.now(UTC)
    if graph is None:
        graph = LineageGraph.from_workspace(workspace)
    real = graph if isinstance(graph, LineageGraph) else None
    graph.node(artifact)  # an unknown digest is an error naming it, not a silent allow or deny
    evidence = Evidence(graph, workspace.trusted_keys, when, workspace=workspace)
    chain = workspace_chain(workspace)
    lineage_findings = (lambda d: findings_for(real, d)) if real is not None else None
    decision = build_gate_policy(policy, evidence, chain, lineage_findings=lineage_findings).evaluate(
        GateRequest(artifact, action, when)
    )
    digest = policy_digest(policy)
    index = None
    if record:
        from loopwarden.ledger import record as append

        pred = {
            "action": str(action),
            "policy": {"name": policy.name, "digest": str(digest)},
            "decided_at": format_time(when),
            **decision.to_json(),
        }
        stmt = Statement((ResourceDescriptor.of("artifact", artifact),), GATE_DECISION, pred)
        index = append(stmt, workspace).index
    return GateResult(artifact, action, digest, decision, when, index)


def policy_path(workspace: Workspace, explicit: str | None) -> str:
    """The policy file to use: ``explicit``, else ``[paths] policy`` from the workspace file."""
    from loopwarden.errors import UsageError

    if explicit:
        return explicit
    configured = workspace.config.paths.policy
    if not configured:
        raise UsageError(
            "no policy file given and none configured",
            hint='pass --policy FILE or set [paths] policy = "policy.yaml" in loopwarden.toml',
        )
    return str(workspace.resolve(configured))


def gate_artifact(
    workspace: Workspace,
    artifact: str,
    action: Action | str,
    *,
    policy_file: str | None = None,
    now: datetime | None = None,
    record: bool = True,
) -> GateResult:
    """The ``loopwarden gate`` entry point: resolve the artifact (digest, unique prefix or path), load the
    policy (``policy_file`` or the workspace's), decide and record."""
    from pathlib import Path

    from loopwarden.errors import UsageError
    from loopwarden.lineage import LineageGraph, hash_path
    from loopwarden.policy.model import load_policy

    try:
        act = Action(action)
    except ValueError:
        raise UsageError(f"unknown action {action!r}; one of {', '.join(a.value for a in Action)}") from None
    policy = load_policy(policy_path(workspace, policy_file))
    graph = LineageGraph.from_workspace(workspace)
    digest = hash_path(artifact) if Path(artifact).exists() else graph.resolve(artifact)
    return gate(workspace, digest, act, policy, graph=graph, now=now, record=record)
