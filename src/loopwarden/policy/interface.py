"""The policy extension point: a ``Policy`` returns a closed ``Decision`` (allow | deny | escalate) with
reasons.

Policies compose with :class:`AllOf` and :class:`AnyOf`. An empty ``AllOf`` would allow everything by
accident, so it is an error at construction; a policy that allows everything on purpose is named
:class:`UnsafeAllowAll`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from loopwarden.domain import ArtifactKind, Digest, Severity, canonical_json
from loopwarden.errors import PolicyError

if TYPE_CHECKING:
    from loopwarden.ledger.interface import LedgerEntry
    from loopwarden.policy.model import Action

__all__ = [
    "AllOf",
    "AnyOf",
    "Decision",
    "GateRequest",
    "LineageNode",
    "LineageTaint",
    "LineageView",
    "Outcome",
    "Policy",
    "Reason",
    "UnsafeAllowAll",
]


class Outcome(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    ESCALATE = "escalate"


_RANK = {Outcome.ALLOW: 0, Outcome.ESCALATE: 1, Outcome.DENY: 2}


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason behind a decision: which rule, what it asks for, about which artifact, and the evidence."""

    rule_id: str
    outcome: Outcome
    message: str
    severity: Severity = Severity.INFO
    subject: Digest | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple[Any, ...]:
        return (
            -_RANK[self.outcome],
            -int(self.severity),
            self.rule_id,
            str(self.subject or ""),
            self.message,
        )

    def to_json(self) -> dict[str, Any]:
        from loopwarden.domain import _jsonable

        out: dict[str, Any] = {
            "rule_id": self.rule_id,
            "outcome": str(self.outcome),
            "severity": str(self.severity),
            "message": self.message,
            "evidence": _jsonable(self.evidence),
        }
        if self.subject is not None:
            out["subject"] = str(self.subject)
        return out


@dataclass(frozen=True, slots=True)
class Decision:
    """allow, deny or escalate, with every reason (sorted: denials first)."""

    outcome: Outcome
    reasons: tuple[Reason, ...] = ()

    def __post_init__(self) -> None:
        unique = {canonical_json(r.to_json()): r for r in self.reasons}  # the same reason twice counts once
        object.__setattr__(self, "reasons", tuple(sorted(unique.values(), key=Reason.sort_key)))
        if self.outcome is not Outcome.ALLOW and not any(r.outcome is self.outcome for r in self.reasons):
            raise PolicyError(f"a decision to {self.outcome} needs at least one reason asking for it")

    @classmethod
    def from_reasons(cls, reasons: Iterable[Reason]) -> Decision:
        """The strictest outcome any reason asks for (no reasons, or only allow-reasons: allow)."""
        rs = tuple(reasons)
        worst = max((r.outcome for r in rs), key=_RANK.__getitem__, default=Outcome.ALLOW)
        return cls(worst, rs)

    @property
    def allowed(self) -> bool:
        return self.outcome is Outcome.ALLOW

    def failing(self) -> tuple[Reason, ...]:
        return tuple(r for r in self.reasons if r.outcome is not Outcome.ALLOW)

    def exit_code(self) -> int:
        """0 allow; 1 deny or escalate."""
        return 0 if self.allowed else 1

    def to_json(self) -> dict[str, Any]:
        return {"decision": str(self.outcome), "reasons": [r.to_json() for r in self.reasons]}


class LineageNode(Protocol):
    """What the gate reads of a lineage node (``loopwarden.lineage.Node``)."""

    @property
    def digest(self) -> Digest: ...
    @property
    def kind(self) -> ArtifactKind: ...
    @property
    def name(self) -> str: ...
    @property
    def generation(self) -> int | None: ...


class LineageTaint(Protocol):
    """What the gate reads of a taint (``loopwarden.lineage.Taint``)."""

    @property
    def source(self) -> Digest: ...
    @property
    def reason(self) -> str: ...
    @property
    def path(self) -> tuple[Digest, ...]: ...
    @property
    def ledger_index(self) -> int: ...


class LineageView(Protocol):
    """The part of ``loopwarden.lineage.LineageGraph`` the gate needs (coded against a protocol, tested with
    fakes)."""

    def node(self, d: Digest) -> LineageNode: ...
    def ancestors(self, d: Digest) -> set[Digest]: ...
    def descendants(self, d: Digest) -> set[Digest]: ...
    def taint(self, d: Digest) -> LineageTaint | None: ...
    def attestations(self, d: Digest, predicate_type: str | None = None) -> list[LedgerEntry]: ...
    def nodes(self) -> Iterable[LineageNode]: ...


@dataclass(frozen=True, slots=True)
class GateRequest:
    """What a policy is asked: may ``action`` happen to ``artifact`` now?"""

    artifact: Digest
    action: Action
    now: datetime


class Policy(Protocol):
    """A policy decides a request. Implementations must fail closed: missing evidence never means allow."""

    @property
    def name(self) -> str: ...

    def evaluate(self, request: GateRequest) -> Decision: ...


class AllOf:
    """Allows only if every child allows; denies if any denies; otherwise escalates. Never empty."""

    def __init__(self, children: Sequence[Policy], *, name: str = "all-of") -> None:
        if not children:
            raise PolicyError("AllOf needs at least one policy: an empty AllOf would allow everything")
        self.children = tuple(children)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def evaluate(self, request: GateRequest) -> Decision:
        return Decision.from_reasons(r for c in self.children for r in _decided(c, request).reasons)


class AnyOf:
    """Allows if any child allows; else escalates if any escalates; else denies. Never empty."""

    def __init__(self, children: Sequence[Policy], *, name: str = "any-of") -> None:
        if not children:
            raise PolicyError("AnyOf needs at least one policy: an empty AnyOf can never decide")
        self.children = tuple(children)
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def evaluate(self, request: GateRequest) -> Decision:
        decisions = [_decided(c, request) for c in self.children]
        reasons = [r for d in decisions for r in d.reasons]
        best = min((d.outcome for d in decisions), key=_RANK.__getitem__)
        if best is Outcome.ALLOW:
            # The alternatives that did not allow are kept as information: they did not decide.
            return Decision(
                Outcome.ALLOW,
                tuple(
                    r
                    if r.outcome is Outcome.ALLOW
                    else Reason(
                        r.rule_id,
                        Outcome.ALLOW,
                        f"(alternative not needed) {r.message}",
                        r.severity,
                        r.subject,
                        r.evidence,
                    )
                    for r in reasons
                ),
            )
        return Decision(best, tuple(r for d in decisions if d.outcome is best for r in d.reasons))


class UnsafeAllowAll:
    """Allows everything. For tests and explicit opt-outs only; its name says what it is."""

    name = "unsafe-allow-all"

    def evaluate(self, request: GateRequest) -> Decision:
        return Decision(
            Outcome.ALLOW, (Reason("LW-LOOP-099", Outcome.ALLOW, "UnsafeAllowAll allows everything"),)
        )


def _decided(policy: Policy, request: GateRequest) -> Decision:
    d = policy.evaluate(request)
    if not isinstance(d, Decision):
        raise PolicyError(f"policy {policy.name!r} returned {type(d).__name__}, not a Decision")
    return d
