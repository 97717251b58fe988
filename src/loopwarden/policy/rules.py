"""Rule ids of the policy layer (LW-LOOP-050..099), documented in docs/rules.md#loop-policy."""

from __future__ import annotations

from loopwarden.domain import Rule, Severity

__all__ = [
    "ALL_RULES",
    "AncestorFindings",
    "CapabilityOk",
    "ChainFork",
    "ChainGap",
    "Drift",
    "EvalMissing",
    "EvidenceStale",
    "EvidenceUnverified",
    "LevelResponse",
    "PolicyNotHead",
    "SafeguardUnsatisfied",
    "Tainted",
    "UnapprovedLoosening",
    "UnauthorisedProposer",
    "UnsafeAllowAllRule",
]


class Tainted(Rule):
    rule_id = "LW-LOOP-050"
    severity = Severity.CRITICAL
    title = "Artifact is tainted (quarantined, or descends from a quarantined artifact not yet cleared)"


class AncestorFindings(Rule):
    rule_id = "LW-LOOP-051"
    severity = Severity.HIGH
    title = "The artifact or one of its ancestors has scan findings or an unverified scan"


class SafeguardUnsatisfied(Rule):
    rule_id = "LW-LOOP-052"
    severity = Severity.HIGH
    title = "A capability level is reached and a safeguard it requires is not satisfied"


class EvalMissing(Rule):
    rule_id = "LW-LOOP-053"
    severity = Severity.HIGH
    title = "No measurement of a capability whose levels gate the action"


class EvidenceStale(Rule):
    rule_id = "LW-LOOP-054"
    severity = Severity.HIGH
    title = "The capability measurement is older than the evidence maximum age (or has no recorded time)"


class EvidenceUnverified(Rule):
    rule_id = "LW-LOOP-055"
    severity = Severity.HIGH
    title = "The capability measurement is marked unverified"


class UnapprovedLoosening(Rule):
    rule_id = "LW-LOOP-056"
    severity = Severity.CRITICAL
    title = "A policy version loosens the policy without the approvals its change control demands"


class ChainFork(Rule):
    rule_id = "LW-LOOP-057"
    severity = Severity.CRITICAL
    title = "The policy version chain forks"


class ChainGap(Rule):
    rule_id = "LW-LOOP-058"
    severity = Severity.CRITICAL
    title = "The policy version chain has a gap (unrecorded predecessor, or content that does not hash right)"


class Drift(Rule):
    rule_id = "LW-LOOP-059"
    severity = Severity.HIGH
    title = "A threshold drifted looser across several versions beyond the drift tolerance"


class UnauthorisedProposer(Rule):
    rule_id = "LW-LOOP-060"
    severity = Severity.HIGH
    title = "A policy version was proposed by a key change control does not allow to propose"


class PolicyNotHead(Rule):
    rule_id = "LW-LOOP-061"
    severity = Severity.HIGH
    title = "The policy the gate was given is not the head of the recorded policy chain"


class LevelResponse(Rule):
    rule_id = "LW-LOOP-062"
    severity = Severity.HIGH
    title = "A capability level is reached whose response is to deny or escalate the action"


class CapabilityOk(Rule):
    rule_id = "LW-LOOP-063"
    severity = Severity.INFO
    title = "A capability is below every level that gates the action, or its required safeguards hold"


class UnsafeAllowAllRule(Rule):
    rule_id = "LW-LOOP-099"
    severity = Severity.INFO
    title = "UnsafeAllowAll allowed the action without checking anything"


ALL_RULES: tuple[type[Rule], ...] = (
    Tainted,
    AncestorFindings,
    SafeguardUnsatisfied,
    EvalMissing,
    EvidenceStale,
    EvidenceUnverified,
    UnapprovedLoosening,
    ChainFork,
    ChainGap,
    Drift,
    UnauthorisedProposer,
    PolicyNotHead,
    LevelResponse,
    CapabilityOk,
    UnsafeAllowAllRule,
)


# The name the rule registry (loopwarden/rules.py) reads.
RULES: tuple[type[Rule], ...] = ALL_RULES
