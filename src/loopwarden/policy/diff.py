"""``policy diff``: classify every change between two policy versions as tightening, loosening or neutral.

Thresholds are compared direction-aware: for a higher-is-more-capable metric, raising a threshold lets a more
capable model through before a level is reached (loosening); for a lower-is-more-capable metric, lowering it
does. Whether a loosening class needs approvals is decided by the OLD version's change control (a new version
cannot waive the rules that judge it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from loopwarden.policy.model import (
    LOOSENING_CLASSES,
    CapabilitySpec,
    ChangeClass,
    Combine,
    Direction,
    MissingEval,
    OnReached,
    PersonKind,
    PolicyFile,
    Scope,
)

__all__ = ["Change", "PolicyDiff", "diff_policies", "threshold_loosening"]

_RESPONSE_RANK = {OnReached.REQUIRE_SAFEGUARDS: 0, OnReached.ESCALATE: 1, OnReached.DENY: 2}
_SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@dataclass(frozen=True, slots=True)
class Change:
    change_class: ChangeClass
    path: str
    old: Any
    new: Any
    message: str
    needs_approval: bool = False
    """The old version's change control counts this class as loosening."""

    @property
    def loosening(self) -> bool:
        return self.change_class in LOOSENING_CLASSES

    def to_json(self) -> dict[str, Any]:
        return {
            "class": str(self.change_class),
            "path": self.path,
            "old": _plain(self.old),
            "new": _plain(self.new),
            "message": self.message,
            "loosening": self.loosening,
            "needs_approval": self.needs_approval,
        }


def _plain(v: Any) -> Any:
    if isinstance(v, timedelta):
        return int(v.total_seconds())
    if isinstance(v, list | tuple | set | frozenset):
        return sorted(str(x) for x in v)
    if v is None or isinstance(v, int | float | str | bool):
        return v
    return str(v)


@dataclass(frozen=True, slots=True)
class PolicyDiff:
    changes: tuple[Change, ...]

    @property
    def loosening(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.loosening)

    @property
    def needs_approval(self) -> bool:
        return any(c.needs_approval for c in self.changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "loosening": len(self.loosening),
            "needs_approval": self.needs_approval,
        }


def threshold_loosening(direction: Direction, old: float, new: float) -> float:
    """How much a threshold change loosens (positive) or tightens (negative) the level."""
    return new - old if direction is Direction.HIGHER else old - new


def diff_policies(old: PolicyFile, new: PolicyFile) -> PolicyDiff:
    """Every change from ``old`` to ``new``, classified, in a deterministic order."""
    need = set(old.change_control.loosening)
    changes = [
        Change(c.change_class, c.path, c.old, c.new, c.message, c.change_class in need)
        for c in _changes(old, new)
    ]
    changes.sort(key=lambda c: (c.path, str(c.change_class)))
    return PolicyDiff(tuple(changes))


def _ch(cls: ChangeClass, path: str, old: Any, new: Any, message: str) -> Change:
    return Change(cls, path, old, new, message)


def _changes(old: PolicyFile, new: PolicyFile) -> Iterator[Change]:
    if old.name != new.name:
        yield _ch(ChangeClass.OTHER, "name", old.name, new.name, "policy renamed")
    for cname in sorted(old.capabilities.keys() - new.capabilities.keys()):
        yield _ch(
            ChangeClass.CAPABILITY_REMOVED,
            f"capabilities.{cname}",
            cname,
            None,
            f"capability {cname!r} removed: its levels no longer gate anything",
        )
    for cname in sorted(new.capabilities.keys() - old.capabilities.keys()):
        yield _ch(
            ChangeClass.CAPABILITY_ADDED, f"capabilities.{cname}", None, cname, f"capability {cname!r} added"
        )
    for cname in sorted(old.capabilities.keys() & new.capabilities.keys()):
        yield from _capability(cname, old.capabilities[cname], new.capabilities[cname])
    yield from _safeguards(old, new)
    if old.evidence.max_age != new.evidence.max_age:
        cls = (
            ChangeClass.EVIDENCE_AGE_EXTENDED
            if new.evidence.max_age > old.evidence.max_age
            else ChangeClass.EVIDENCE_AGE_SHORTENED
        )
        yield _ch(
            cls,
            "evidence.max_age",
            old.evidence.max_age,
            new.evidence.max_age,
            f"evidence maximum age {old.evidence.max_age} -> {new.evidence.max_age}",
        )
    yield from _change_control(old, new)
    yield from _gate(old, new)


def _capability(cname: str, o: CapabilitySpec, n: CapabilitySpec) -> Iterator[Change]:
    base = f"capabilities.{cname}"
    if o.description != n.description:
        yield _ch(
            ChangeClass.OTHER, f"{base}.description", o.description, n.description, f"{cname}: described anew"
        )
    if o.eval.suite != n.eval.suite:  # a label: what is measured is pinned by the digest and the metric
        yield _ch(
            ChangeClass.OTHER, f"{base}.eval.suite", o.eval.suite, n.eval.suite, f"{cname}: suite renamed"
        )
    for attr in ("suite_digest", "metric"):
        ov, nv = getattr(o.eval, attr), getattr(n.eval, attr)
        if ov != nv:
            yield _ch(
                ChangeClass.EVAL_SUITE_SWAPPED,
                f"{base}.eval.{attr}",
                ov,
                nv,
                f"{cname}: measuring eval changed ({attr} {ov} -> {nv}); earlier scores no longer compare",
            )
    if o.direction is not n.direction:
        yield _ch(
            ChangeClass.DIRECTION_CHANGED,
            f"{base}.direction",
            str(o.direction),
            str(n.direction),
            f"{cname}: metric direction inverted",
        )
    if o.scope is not n.scope:
        cls = ChangeClass.SCOPE_CHANGED if n.scope is Scope.MODEL else ChangeClass.OTHER
        yield _ch(
            cls,
            f"{base}.scope",
            str(o.scope),
            str(n.scope),
            f"{cname}: scope {o.scope} -> {n.scope}"
            + (" (no longer judges the loop as a whole)" if n.scope is Scope.MODEL else ""),
        )
    if o.combine is not n.combine:
        tighter = o.combine is Combine.MAX and n.combine is Combine.SUM
        yield _ch(
            ChangeClass.OTHER if tighter else ChangeClass.SCOPE_CHANGED,
            f"{base}.combine",
            str(o.combine),
            str(n.combine),
            f"{cname}: collective score combined by {o.combine} -> {n.combine}",
        )
    dropped_members = set(o.members) - set(n.members)
    if dropped_members:
        yield _ch(
            ChangeClass.SCOPE_CHANGED,
            f"{base}.members",
            o.members,
            n.members,
            f"{cname}: {', '.join(sorted(dropped_members))} no longer count toward the collective score",
        )
    for kind in sorted(set(o.weights) | set(n.weights)):
        ow, nw = o.weights.get(kind, 1.0), n.weights.get(kind, 1.0)
        if ow != nw:
            yield _ch(
                ChangeClass.SCOPE_CHANGED if nw < ow else ChangeClass.OTHER,
                f"{base}.weights.{kind}",
                ow,
                nw,
                f"{cname}: weight of {kind} {ow} -> {nw}",
            )
    olv = {lv.name: lv for lv in o.levels}
    nlv = {lv.name: lv for lv in n.levels}
    for name in sorted(olv.keys() - nlv.keys()):
        yield _ch(
            ChangeClass.LEVEL_REMOVED,
            f"{base}.levels.{name}",
            name,
            None,
            f"{cname}: level {name!r} removed (it gated {', '.join(map(str, olv[name].gates)) or 'nothing'})",
        )
    for name in sorted(nlv.keys() - olv.keys()):
        yield _ch(
            ChangeClass.LEVEL_ADDED, f"{base}.levels.{name}", None, name, f"{cname}: level {name!r} added"
        )
    for name in sorted(olv.keys() & nlv.keys()):
        a, b = olv[name], nlv[name]
        p = f"{base}.levels.{name}"
        if a.threshold != b.threshold:
            amount = threshold_loosening(n.direction, a.threshold, b.threshold)
            cls = ChangeClass.THRESHOLD_LOOSENED if amount > 0 else ChangeClass.THRESHOLD_TIGHTENED
            word = "raised" if b.threshold > a.threshold else "lowered"
            yield _ch(
                cls,
                f"{p}.threshold",
                a.threshold,
                b.threshold,
                f"{cname}/{name}: threshold {word} {a.threshold:g} -> {b.threshold:g} ({n.direction}: "
                f"{'loosens' if amount > 0 else 'tightens'} by {abs(amount):g})",
            )
        for sg in sorted(set(a.safeguards) - set(b.safeguards)):
            yield _ch(
                ChangeClass.SAFEGUARD_DROPPED,
                f"{p}.safeguards",
                sg,
                None,
                f"{cname}/{name}: safeguard {sg!r} no longer required",
            )
        for sg in sorted(set(b.safeguards) - set(a.safeguards)):
            yield _ch(
                ChangeClass.SAFEGUARD_ADDED,
                f"{p}.safeguards",
                None,
                sg,
                f"{cname}/{name}: safeguard {sg!r} now required",
            )
        for act in sorted(set(a.gates) - set(b.gates)):
            yield _ch(
                ChangeClass.ACTION_UNGATED,
                f"{p}.gates",
                str(act),
                None,
                f"{cname}/{name}: action {act!r} no longer gated at this level",
            )
        for act in sorted(set(b.gates) - set(a.gates)):
            yield _ch(
                ChangeClass.ACTION_GATED,
                f"{p}.gates",
                None,
                str(act),
                f"{cname}/{name}: action {act!r} now gated at this level",
            )
        if a.on_reached is not b.on_reached:
            weaker = _RESPONSE_RANK[b.on_reached] < _RESPONSE_RANK[a.on_reached]
            yield _ch(
                ChangeClass.LEVEL_RESPONSE_WEAKENED if weaker else ChangeClass.LEVEL_RESPONSE_STRENGTHENED,
                f"{p}.on_reached",
                str(a.on_reached),
                str(b.on_reached),
                f"{cname}/{name}: on reaching the level {a.on_reached} -> {b.on_reached}",
            )


def _safeguards(old: PolicyFile, new: PolicyFile) -> Iterator[Change]:
    for name in sorted(old.safeguards.keys() - new.safeguards.keys()):
        yield _ch(
            ChangeClass.SAFEGUARD_DROPPED,
            f"safeguards.{name}",
            name,
            None,
            f"safeguard {name!r} no longer defined",
        )
    for name in sorted(new.safeguards.keys() - old.safeguards.keys()):
        yield _ch(
            ChangeClass.SAFEGUARD_ADDED, f"safeguards.{name}", None, name, f"safeguard {name!r} defined"
        )
    for name in sorted(old.safeguards.keys() & new.safeguards.keys()):
        a, b = old.safeguards[name], new.safeguards[name]
        p = f"safeguards.{name}"
        if a.kind is not b.kind:
            yield _ch(
                ChangeClass.SAFEGUARD_WEAKENED,
                f"{p}.kind",
                str(a.kind),
                str(b.kind),
                f"safeguard {name!r} now checks {b.kind} instead of {a.kind}",
            )
        oa, na = a.max_age, b.max_age  # None: the evidence does not age
        if oa != na:
            extended = na is None or (oa is not None and na > oa)
            yield _ch(
                ChangeClass.EVIDENCE_AGE_EXTENDED if extended else ChangeClass.EVIDENCE_AGE_SHORTENED,
                f"{p}.max_age",
                oa,
                na,
                f"safeguard {name!r} evidence maximum age {oa} -> {na}",
            )
        if a.min_signers != b.min_signers:
            weaker = b.min_signers < a.min_signers
            yield _ch(
                ChangeClass.SAFEGUARD_WEAKENED if weaker else ChangeClass.SAFEGUARD_STRENGTHENED,
                f"{p}.min_signers",
                a.min_signers,
                b.min_signers,
                f"safeguard {name!r} sign-offs needed {a.min_signers} -> {b.min_signers}",
            )
        if a.fail_on != b.fail_on:
            weaker = _SEVERITY_RANK[b.fail_on] > _SEVERITY_RANK[a.fail_on]
            yield _ch(
                ChangeClass.SAFEGUARD_WEAKENED if weaker else ChangeClass.SAFEGUARD_STRENGTHENED,
                f"{p}.fail_on",
                a.fail_on,
                b.fail_on,
                f"safeguard {name!r} fails on findings at {a.fail_on} -> {b.fail_on}",
            )


def _change_control(old: PolicyFile, new: PolicyFile) -> Iterator[Change]:
    a, b = old.change_control, new.change_control
    weak, strong = ChangeClass.CHANGE_CONTROL_WEAKENED, ChangeClass.CHANGE_CONTROL_STRENGTHENED
    if a.loosening_approvals != b.loosening_approvals:
        yield _ch(
            weak if b.loosening_approvals < a.loosening_approvals else strong,
            "change_control.loosening_approvals",
            a.loosening_approvals,
            b.loosening_approvals,
            f"approvals needed for a loosening {a.loosening_approvals} -> {b.loosening_approvals}",
        )
    for role in ("approvers", "proposers"):
        oset, nset = set(getattr(a, role)), set(getattr(b, role))
        if role == "proposers" and oset and not nset:
            yield _ch(
                weak, f"change_control.{role}", sorted(oset), [], "anyone may now propose policy changes"
            )
            continue
        for who in sorted(nset - oset):
            yield _ch(weak, f"change_control.{role}", None, who, f"{who!r} added to {role}")
        for who in sorted(oset - nset):
            yield _ch(strong, f"change_control.{role}", who, None, f"{who!r} removed from {role}")
    dropped = set(a.loosening) - set(b.loosening)
    if dropped:
        yield _ch(
            weak,
            "change_control.loosening",
            sorted(map(str, dropped)),
            None,
            f"no longer counted as loosening: {', '.join(sorted(map(str, dropped)))}",
        )
    added = set(b.loosening) - set(a.loosening)
    if added:
        yield _ch(
            strong,
            "change_control.loosening",
            None,
            sorted(map(str, added)),
            f"now counted as loosening: {', '.join(sorted(map(str, added)))}",
        )
    if a.drift_tolerance != b.drift_tolerance:
        yield _ch(
            weak if b.drift_tolerance > a.drift_tolerance else strong,
            "change_control.drift_tolerance",
            a.drift_tolerance,
            b.drift_tolerance,
            f"drift tolerance {a.drift_tolerance} -> {b.drift_tolerance}",
        )
    yield from _people(old, new)


def _people(old: PolicyFile, new: PolicyFile) -> Iterator[Change]:
    """Who holds which key. An approver's or proposer's key swap is as good as a new approver; any new or
    swapped human key widens who can satisfy two-person-signoff."""
    a, b = old.change_control, new.change_control
    op = {p.name: p for p in old.people}
    np_ = {p.name: p for p in new.people}
    privileged = set(a.approvers) | set(a.proposers) | set(b.approvers) | set(b.proposers)
    old_humans = old.human_keyids()
    for name in sorted(np_.keys() | op.keys()):
        before, after = op.get(name), np_.get(name)
        path = f"people.{name}"
        was = f"{before.kind}:{before.keyid[:16]}" if before else None
        now = f"{after.kind}:{after.keyid[:16]}" if after else None
        if after is None:
            yield _ch(ChangeClass.OTHER, path, was, None, f"{name!r} removed from people")
        elif before is not None and (before.keyid, before.kind) == (after.keyid, after.kind):
            continue
        elif before is not None and name in privileged:
            yield _ch(
                ChangeClass.CHANGE_CONTROL_WEAKENED,
                path,
                was,
                now,
                f"{name!r} (approver or proposer) now has a different key or kind",
            )
        elif after.kind is PersonKind.HUMAN and after.keyid not in old_humans:
            yield _ch(
                ChangeClass.SAFEGUARD_WEAKENED,
                path,
                was,
                now,
                f"{name!r} is a new human key: it can now count toward two-person-signoff",
            )
        else:
            yield _ch(ChangeClass.OTHER, path, was, now, f"{name!r} changed in people")


def _gate(old: PolicyFile, new: PolicyFile) -> Iterator[Change]:
    a, b = old.gate, new.gate
    if a.missing_eval is not b.missing_eval:
        weaker = b.missing_eval is MissingEval.ESCALATE
        yield _ch(
            ChangeClass.GATE_WEAKENED if weaker else ChangeClass.GATE_STRENGTHENED,
            "gate.missing_eval",
            str(a.missing_eval),
            str(b.missing_eval),
            f"a missing eval now leads to {b.missing_eval}",
        )
    if a.ancestor_fail_on != b.ancestor_fail_on:
        weaker = _SEVERITY_RANK[b.ancestor_fail_on] > _SEVERITY_RANK[a.ancestor_fail_on]
        yield _ch(
            ChangeClass.GATE_WEAKENED if weaker else ChangeClass.GATE_STRENGTHENED,
            "gate.ancestor_fail_on",
            a.ancestor_fail_on,
            b.ancestor_fail_on,
            f"ancestor scan findings deny at {a.ancestor_fail_on} -> {b.ancestor_fail_on}",
        )
