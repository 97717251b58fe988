"""The capability-threshold policy file: YAML read with ``safe_load``, validated with pydantic at the
boundary.

Every table forbids unknown fields, so a typo (``treshold``) is an error naming the file and the field path,
never a silently ignored safeguard. Inside the package the validated :class:`PolicyFile` is used as-is
(frozen).
"""

from __future__ import annotations

import enum
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from loopwarden.domain import Digest, Severity, canonical_json
from loopwarden.errors import InputError

__all__ = [
    "LOOSENING_CLASSES",
    "Action",
    "CapabilitySpec",
    "ChangeClass",
    "ChangeControlSpec",
    "Combine",
    "Direction",
    "Duration",
    "EvalSpec",
    "EvidenceSpec",
    "GateSpec",
    "LevelSpec",
    "MissingEval",
    "OnReached",
    "PersonKind",
    "PersonSpec",
    "PolicyFile",
    "SafeguardKind",
    "SafeguardSpec",
    "Scope",
    "load_policy",
    "parse_duration",
    "parse_policy",
    "policy_digest",
]


class Direction(enum.StrEnum):
    """Which way a metric grows with capability. Decides when a level is reached and what tightening means."""

    HIGHER = "higher-is-more-capable"
    LOWER = "lower-is-more-capable"


class Action(enum.StrEnum):
    """What a gate can be asked to allow."""

    PROMOTE = "promote"
    DEPLOY_INTERNAL = "deploy-internal"
    CONTINUE_TRAINING = "continue-training"
    TRAIN_SUCCESSOR = "train-successor"


class Scope(enum.StrEnum):
    MODEL = "model"
    """The threshold applies to the gated artifact's own score."""
    LOOP = "loop"
    """The threshold applies to the combined score of every member active in the artifact's generation."""


class Combine(enum.StrEnum):
    MAX = "max"
    SUM = "sum"
    WEIGHTED_SUM = "weighted-sum"


class OnReached(enum.StrEnum):
    """What reaching a level means for the actions it gates."""

    REQUIRE_SAFEGUARDS = "require-safeguards"
    """Allowed once every listed safeguard is satisfied."""
    ESCALATE = "escalate"
    """A human decides even when every safeguard holds."""
    DENY = "deny"
    """No safeguard suffices: the gated actions are denied."""


class MissingEval(enum.StrEnum):
    DENY = "deny"
    ESCALATE = "escalate"


class PersonKind(enum.StrEnum):
    HUMAN = "human"
    AGENT = "agent"


class SafeguardKind(enum.StrEnum):
    """The closed set of safeguards the gate knows how to check against the ledger."""

    WEIGHTS_SIGNED = "weights-signed"
    SCAN_CLEAN = "scan-clean"
    DATA_PROVENANCE_COMPLETE = "data-provenance-complete"
    AGENTS_LEAST_PRIVILEGE = "agents-least-privilege"
    TWO_PERSON_SIGNOFF = "two-person-signoff"


class ChangeClass(enum.StrEnum):
    """How one change between two policy versions is classified by ``policy diff``."""

    THRESHOLD_TIGHTENED = "threshold-tightened"
    THRESHOLD_LOOSENED = "threshold-loosened"
    SAFEGUARD_ADDED = "safeguard-added"
    SAFEGUARD_DROPPED = "safeguard-dropped"
    SAFEGUARD_WEAKENED = "safeguard-weakened"
    SAFEGUARD_STRENGTHENED = "safeguard-strengthened"
    LEVEL_ADDED = "level-added"
    LEVEL_REMOVED = "level-removed"
    LEVEL_RESPONSE_WEAKENED = "level-response-weakened"
    LEVEL_RESPONSE_STRENGTHENED = "level-response-strengthened"
    CAPABILITY_ADDED = "capability-added"
    CAPABILITY_REMOVED = "capability-removed"
    EVAL_SUITE_SWAPPED = "eval-suite-swapped"
    DIRECTION_CHANGED = "direction-changed"
    SCOPE_CHANGED = "scope-changed"
    EVIDENCE_AGE_EXTENDED = "evidence-age-extended"
    EVIDENCE_AGE_SHORTENED = "evidence-age-shortened"
    CHANGE_CONTROL_WEAKENED = "change-control-weakened"
    CHANGE_CONTROL_STRENGTHENED = "change-control-strengthened"
    ACTION_UNGATED = "action-ungated"
    ACTION_GATED = "action-gated"
    GATE_WEAKENED = "gate-weakened"
    GATE_STRENGTHENED = "gate-strengthened"
    OTHER = "other"


LOOSENING_CLASSES: Final = frozenset(
    {
        ChangeClass.THRESHOLD_LOOSENED,
        ChangeClass.SAFEGUARD_DROPPED,
        ChangeClass.SAFEGUARD_WEAKENED,
        ChangeClass.LEVEL_REMOVED,
        ChangeClass.LEVEL_RESPONSE_WEAKENED,
        ChangeClass.CAPABILITY_REMOVED,
        ChangeClass.EVAL_SUITE_SWAPPED,
        ChangeClass.DIRECTION_CHANGED,
        ChangeClass.SCOPE_CHANGED,
        ChangeClass.EVIDENCE_AGE_EXTENDED,
        ChangeClass.CHANGE_CONTROL_WEAKENED,
        ChangeClass.ACTION_UNGATED,
        ChangeClass.GATE_WEAKENED,
    }
)
"""Change classes that can make the policy less strict. Change control may name a subset; the default is
all."""

_DURATION_RE: Final = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_KEYID_RE: Final = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_duration(value: Any) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (or a timedelta) -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str) and (m := _DURATION_RE.match(value)):
        return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    raise ValueError("a duration is a whole number followed by s, m, h, d or w (e.g. '30d')")


def _format_duration(td: timedelta) -> str:
    secs = int(td.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if secs and secs % _UNITS[unit] == 0:
            return f"{secs // _UNITS[unit]}{unit}"
    return f"{secs}s"


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(_format_duration, return_type=str)
]


def _digest_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a digest is a string ALGORITHM:HEX")
    return str(Digest.parse(value))


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(
            "a name uses letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit"
        )
    return value


Name = Annotated[str, BeforeValidator(_name)]
DigestText = Annotated[str, BeforeValidator(_digest_text)]


MemberKind = Literal["model", "agent-session"]


def _default_members() -> list[MemberKind]:
    return ["model", "agent-session"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvalSpec(_Spec):
    """The eval that measures a capability, pinned by the digest of its suite."""

    suite: str
    suite_digest: DigestText
    metric: str


class LevelSpec(_Spec):
    name: Name
    threshold: float = Field(allow_inf_nan=False)
    """Reached when the score is >= threshold (higher-is-more-capable) or <= threshold
    (lower-is-more-capable)."""
    safeguards: list[Name] = Field(default_factory=list)
    gates: list[Action] = Field(default_factory=list)
    on_reached: OnReached = OnReached.REQUIRE_SAFEGUARDS


class CapabilitySpec(_Spec):
    description: str = ""
    eval: EvalSpec
    direction: Direction
    scope: Scope = Scope.MODEL
    combine: Combine = Combine.MAX
    """How a loop-scoped capability combines its members' scores."""
    members: list[MemberKind] = Field(default_factory=_default_members)
    """Artifact kinds that count as active members of a generation (loop scope)."""
    weights: dict[MemberKind, float] = Field(default_factory=dict)
    """Per-kind weights for ``weighted-sum`` (a kind without a weight counts 1.0)."""
    levels: list[LevelSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> CapabilitySpec:
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"level names must be unique, got {names}")
        if self.weights and self.combine is not Combine.WEIGHTED_SUM:
            raise ValueError("'weights' only applies with combine: weighted-sum")
        return self

    def reached(self, score: float, level: LevelSpec) -> bool:
        if self.direction is Direction.HIGHER:
            return score >= level.threshold
        return score <= level.threshold

    def margin(self, score: float, level: LevelSpec) -> float:
        """How far the score sits below (safe side of) the threshold; negative once reached."""
        if self.direction is Direction.HIGHER:
            return level.threshold - score
        return score - level.threshold


class SafeguardSpec(_Spec):
    kind: SafeguardKind
    max_age: Duration | None = None
    """Evidence older than this (or without a recorded time) does not count; unset: the evidence does not
    age."""
    min_signers: int = Field(default=2, ge=2)
    """two-person-signoff: how many distinct human keys must sign off."""
    fail_on: Literal["info", "low", "medium", "high", "critical"] = "low"
    """scan-clean: a finding at or above this severity makes the scan not clean."""


class PersonSpec(_Spec):
    name: Name
    keyid: str
    """SHA-256 of the key's DER SubjectPublicKeyInfo, hex (as printed by ``loopwarden keys``)."""
    kind: PersonKind

    @model_validator(mode="after")
    def _check(self) -> PersonSpec:
        if not _KEYID_RE.match(self.keyid):
            raise ValueError("keyid must be 64 lower-case hex digits")
        return self


class ChangeControlSpec(_Spec):
    proposers: list[Name] = Field(default_factory=list)
    """People (by name) who may propose a new version; empty means any key the ledger trusts."""
    approvers: list[Name] = Field(default_factory=list)
    """People (by name, human keys only) whose approval counts."""
    loosening_approvals: int = Field(default=2, ge=0)
    """Distinct approver keys needed over a version that loosens anything."""
    loosening: list[ChangeClass] = Field(default_factory=lambda: sorted(LOOSENING_CLASSES))
    """Which change classes count as loosening (default: all loosening classes)."""
    drift_tolerance: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    """Cumulative loosening of any threshold since the first recorded version that is tolerated."""

    @model_validator(mode="after")
    def _check(self) -> ChangeControlSpec:
        bad = [c for c in self.loosening if c not in LOOSENING_CLASSES]
        if bad:
            raise ValueError(
                f"'loosening' may only list loosening classes; {', '.join(map(str, bad))} is not one"
            )
        return self


class EvidenceSpec(_Spec):
    max_age: Duration = Field(default_factory=lambda: timedelta(days=30))
    """Capability measurements older than this (or without a recorded time) are stale and fail."""


class GateSpec(_Spec):
    missing_eval: MissingEval = MissingEval.DENY
    """What a missing or stale measurement of a capability that gates the action leads to."""
    ancestor_fail_on: Literal["info", "low", "medium", "high", "critical"] = "medium"
    """A scan finding at or above this severity on the artifact or any ancestor denies."""

    @property
    def ancestor_severity(self) -> Severity:
        return Severity.parse(self.ancestor_fail_on)


class PolicyFile(_Spec):
    version: Literal[1]
    name: Name
    capabilities: dict[Name, CapabilitySpec]
    safeguards: dict[Name, SafeguardSpec] = Field(default_factory=dict)
    people: list[PersonSpec] = Field(default_factory=list)
    change_control: ChangeControlSpec = Field(default_factory=ChangeControlSpec)
    evidence: EvidenceSpec = Field(default_factory=EvidenceSpec)
    gate: GateSpec = Field(default_factory=GateSpec)

    @model_validator(mode="after")
    def _check(self) -> PolicyFile:
        for cname, cap in self.capabilities.items():
            for lv in cap.levels:
                for sg in lv.safeguards:
                    if sg not in self.safeguards:
                        raise ValueError(
                            f"capabilities.{cname}.levels.{lv.name}: safeguard {sg!r} is not defined under "
                            "'safeguards'"
                        )
        names = [p.name for p in self.people]
        if len(set(names)) != len(names):
            raise ValueError("people: names must be unique")
        keyids = [p.keyid for p in self.people]
        if len(set(keyids)) != len(keyids):
            raise ValueError("people: a key may belong to one person only")
        by_name = {p.name: p for p in self.people}
        for role in ("proposers", "approvers"):
            for n in getattr(self.change_control, role):
                if n not in by_name:
                    raise ValueError(f"change_control.{role}: {n!r} is not listed under 'people'")
        for n in self.change_control.approvers:
            if by_name[n].kind is not PersonKind.HUMAN:
                raise ValueError(f"change_control.approvers: {n!r} is an agent; only human keys may approve")
        return self

    def person_by_keyid(self, keyid: str) -> PersonSpec | None:
        return next((p for p in self.people if p.keyid == keyid), None)

    def human_keyids(self) -> frozenset[str]:
        return frozenset(p.keyid for p in self.people if p.kind is PersonKind.HUMAN)

    def approver_keyids(self) -> frozenset[str]:
        names = set(self.change_control.approvers)
        return frozenset(p.keyid for p in self.people if p.name in names and p.kind is PersonKind.HUMAN)

    def proposer_keyids(self) -> frozenset[str]:
        names = set(self.change_control.proposers)
        return frozenset(p.keyid for p in self.people if p.name in names)

    def to_json(self) -> dict[str, Any]:
        """The normal form: what the digest covers (comments, key order and YAML style do not count)."""
        return self.model_dump(mode="json")


def policy_digest(policy: PolicyFile) -> Digest:
    """SHA-256 over the canonical JSON of the validated policy (its normal form)."""
    return Digest.sha256(canonical_json(policy.to_json()))


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_policy(raw: Any, *, source: str | Path) -> PolicyFile:
    """Validate an already-parsed document; errors name ``source`` and the field path."""
    if not isinstance(raw, dict):
        raise InputError(source, "a policy file must be a YAML mapping at the top level")
    try:
        return PolicyFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:3]:
            where = _where(tuple(err["loc"]))
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown field '{where}'")
            else:
                problems.append(f"field '{where}': {err['msg']}")
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise InputError(source, "; ".join(problems) + more) from None


def load_policy(path: str | Path) -> PolicyFile:
    """Read and validate a policy file. Bad input raises :class:`InputError` naming the file and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(p, "policy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(p, f"cannot read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(p, f"not valid YAML: {str(exc).splitlines()[0]}") from None
    return parse_policy(raw, source=p)
