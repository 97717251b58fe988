"""Domain values shared by every part of loopwarden.

Everything here is a frozen value with no I/O: digests, resource descriptors, findings, verdicts and the one JSON
report envelope that every scanning command emits. Nothing in this module imports another loopwarden module.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _encode_basestring
from typing import Any, ClassVar, Final

__all__ = [
    "ArtifactKind",
    "Digest",
    "Finding",
    "Location",
    "Report",
    "ResourceDescriptor",
    "Rule",
    "Severity",
    "TargetResult",
    "Verdict",
    "canonical_json",
]

_ALGO_RE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_HEX_RE: Final = re.compile(r"^[0-9a-f]+$")


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes: sorted keys, no insignificant whitespace, UTF-8.

    Used wherever bytes are hashed or signed and for every machine-readable report, so that the same input always
    gives byte-identical output.
    """
    # a lone surrogate (a file name that is not UTF-8) becomes its JSON escape: valid UTF-8, and it reads back
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True, order=True)
class Digest:
    """A content digest whose algorithm name carries every parameter that affects it.

    ``sha256`` is plain SHA-256; a name such as ``sha256-shard-1GiB`` records a sharding parameter. The value is
    lower-case hex.
    """

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        if not _ALGO_RE.match(self.algorithm):
            raise ValueError(f"invalid digest algorithm name {self.algorithm!r}")
        if not _HEX_RE.match(self.hex):
            raise ValueError(f"digest value must be lower-case hex, got {self.hex[:80]!r}")
        if self.algorithm == "sha256" and len(self.hex) != 64:
            raise ValueError(f"a sha256 digest has 64 hex digits, got {len(self.hex)}")

    @classmethod
    def sha256(cls, data: bytes) -> Digest:
        import hashlib  # lazy: OpenSSL's start-up is a noticeable share of a short command

        return cls("sha256", hashlib.sha256(data).hexdigest())

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``algorithm:hex`` (the form printed by :meth:`__str__`)."""
        algo, sep, value = text.strip().partition(":")
        if not sep:
            raise ValueError(f"digest {text[:80]!r} is not of the form ALGORITHM:HEX")
        return cls(algo.lower(), value.lower())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


class ArtifactKind(enum.StrEnum):
    """What part of the loop an artifact is."""

    MODEL = "model"
    DATASET = "dataset"
    CODE = "code"
    EVAL = "eval"
    AGENT_SESSION = "agent-session"
    POLICY = "policy"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class ResourceDescriptor:
    """An in-toto ResourceDescriptor: a named thing identified by one or more digests."""

    name: str
    digest: Mapping[str, str]
    uri: str | None = None
    annotations: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.digest:
            raise ValueError(f"resource {self.name!r} has no digest")
        for algo, value in self.digest.items():
            Digest(algo, value)  # validates both parts
        object.__setattr__(self, "digest", dict(sorted(self.digest.items())))

    @classmethod
    def of(cls, name: str, digest: Digest, **extra: Any) -> ResourceDescriptor:
        return cls(name=name, digest={digest.algorithm: digest.hex}, **extra)

    def digests(self) -> list[Digest]:
        return [Digest(a, h) for a, h in self.digest.items()]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "digest": dict(self.digest)}
        if self.uri is not None:
            out["uri"] = self.uri
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> ResourceDescriptor:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("digest"), Mapping):
            raise ValueError("a resource descriptor needs a 'digest' object")
        name = obj.get("name", "")
        if not isinstance(name, str):
            raise ValueError("a resource descriptor's 'name' must be a string")
        uri = obj.get("uri")
        ann = obj.get("annotations")
        return cls(
            name=name,
            digest={str(k): str(v) for k, v in obj["digest"].items()},
            uri=uri if isinstance(uri, str) else None,
            annotations=dict(ann) if isinstance(ann, Mapping) else None,
        )


Subject = ResourceDescriptor
"""The subject of an in-toto statement is a resource descriptor."""


class Severity(enum.IntEnum):
    """How bad a finding is. Ordered, so thresholds compare with ``>=``."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r}; expected one of {names}") from None

    def __str__(self) -> str:
        return self.name.lower()


class Verdict(enum.StrEnum):
    """The outcome of a check on one artifact. ``unverified`` is never clean."""

    CLEAN = "clean"
    FINDINGS = "findings"
    UNVERIFIED = "unverified"


@dataclass(frozen=True, slots=True)
class Location:
    """Where in an input a finding sits: a path plus whichever of member, offset and line apply."""

    path: str
    member: str | None = None
    offset: int | None = None
    line: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def __str__(self) -> str:
        out = self.path
        if self.member is not None:
            out += f"!{self.member}"
        if self.line is not None:
            out += f":{self.line}"
        if self.offset is not None:
            out += f"@{self.offset}"
        return out


class Rule:
    """Base of every rule. Subclasses set the stable id, documented once in ``docs/rules.md``."""

    rule_id: ClassVar[str]
    severity: ClassVar[Severity]
    title: ClassVar[str]
    help: ClassVar[str] = ""


_RULE_ID_RE: Final = re.compile(r"^LW-[A-Z]+-\d{3}$")


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a check found. Frozen; change with ``dataclasses.replace``."""

    rule_id: str
    severity: Severity
    message: str
    location: Location
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _RULE_ID_RE.match(self.rule_id):
            raise ValueError(f"rule id {self.rule_id!r} is not of the form LW-<LAYER>-<NNN>")
        object.__setattr__(self, "severity", Severity(self.severity))

    def sort_key(self) -> tuple[Any, ...]:
        loc = self.location
        return (
            loc.path,
            loc.member or "",
            loc.offset if loc.offset is not None else -1,
            loc.line if loc.line is not None else -1,
            -int(self.severity),
            self.rule_id,
            self.message,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": str(self.severity),
            "message": self.message,
            "location": self.location.to_json(),
            "evidence": _jsonable(self.evidence),
        }


def _jsonable(value: Any) -> Any:
    """Evidence may hold tuples, sets, bytes or enums; make it plain, deterministic JSON."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, set | frozenset):
        return sorted((_jsonable(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, enum.Enum):
        return str(value.value) if not isinstance(value, enum.IntEnum) else str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


@dataclass(frozen=True, slots=True)
class TargetResult:
    """The result of checking one target (a file, a folder, a dataset, ...)."""

    path: str
    kind: ArtifactKind
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    digest: Digest | None = None
    reason: str | None = None
    """Why the target is unverified (the bound that was hit, the parse error), if it is."""

    def __post_init__(self) -> None:
        if self.verdict is Verdict.CLEAN and any(f.severity > Severity.INFO for f in self.findings):
            raise ValueError("a clean target can carry INFO notes only")
        if self.verdict is Verdict.FINDINGS and not self.findings:
            raise ValueError("verdict 'findings' needs at least one finding")
        object.__setattr__(self, "findings", tuple(sorted(self.findings, key=Finding.sort_key)))

    @classmethod
    def from_findings(
        cls,
        path: str,
        kind: ArtifactKind,
        findings: Iterable[Finding],
        *,
        unverified_reason: str | None = None,
        digest: Digest | None = None,
    ) -> TargetResult:
        found = tuple(findings)
        if unverified_reason is not None:
            verdict = Verdict.UNVERIFIED
        elif any(f.severity > Severity.INFO for f in found):
            # INFO findings are notes (an object array whose pickle is analysed and clean): they are kept in the
            # result but do not make the target non-clean, as they never reach a --fail-on threshold either
            verdict = Verdict.FINDINGS
        else:
            verdict = Verdict.CLEAN
        return cls(path, kind, verdict, found, digest, unverified_reason)

    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def passed(self, fail_on: Severity = Severity.LOW) -> bool:
        """True only when nothing reaches ``fail_on`` and the target was fully analysed."""
        if self.verdict is Verdict.UNVERIFIED:
            return False
        worst = self.max_severity()
        return worst is None or worst < fail_on

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "kind": str(self.kind),
            "verdict": str(self.verdict),
            "findings": [f.to_json() for f in self.findings],
        }
        if self.digest is not None:
            out["digest"] = str(self.digest)
        if self.reason is not None:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Report:
    """The one JSON envelope every scanning command emits. Deterministic: sorted, no timestamps."""

    version: str
    targets: tuple[TargetResult, ...]
    tool: str = "loopwarden"

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(sorted(self.targets, key=lambda t: (t.path, str(t.kind)))))

    def passed(self, fail_on: Severity = Severity.LOW) -> bool:
        return all(t.passed(fail_on) for t in self.targets)

    def exit_code(self, fail_on: Severity = Severity.LOW) -> int:
        """0 when nothing reaches ``fail_on`` and nothing is unverified, else 1."""
        return 0 if self.passed(fail_on) else 1

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for t in self.targets:
            out[t.verdict.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "version": self.version, "targets": [t.to_json() for t in self.targets]}

    def dumps(self) -> str:
        """Pretty, deterministic JSON text: ``json.dumps(self.to_json(), sort_keys=True, indent=2,
        ensure_ascii=False)`` and a newline, byte for byte.

        Built per target, because CPython's C encoder does not indent: a target without findings (most of
        them) is filled into a fixed layout with the C string encoder, the others go through ``json`` and
        are indented one level deeper. A report of 2,000 clean files takes a fifth of the time.
        """
        if not self.targets:
            return json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        quote = _quote
        parts = []
        for t in self.targets:
            if t.findings:
                text = json.dumps(t.to_json(), sort_keys=True, indent=2, ensure_ascii=False)
                parts.append(text.replace("\n", "\n    "))  # JSON strings hold no raw newline
                continue
            digest = "" if t.digest is None else f'\n      "digest": {quote(str(t.digest))},'
            reason = "" if t.reason is None else f'\n      "reason": {quote(t.reason)},'
            parts.append(
                f'{{{digest}\n      "findings": [],\n      "kind": {quote(str(t.kind))},\n      "path": '
                f'{quote(t.path)},{reason}\n      "verdict": {quote(str(t.verdict))}\n    }}'
            )
        return (
            '{\n  "targets": [\n    '
            + ",\n    ".join(parts)
            + f'\n  ],\n  "tool": {quote(self.tool)},\n  "version": {quote(self.version)}\n}}\n'
        )


def _quote(text: str) -> str:
    """A JSON string literal exactly as ``json.dumps(text, ensure_ascii=False)`` writes it."""
    return _encode_basestring(text)


def findings_of(targets: Sequence[TargetResult]) -> list[Finding]:
    return [f for t in targets for f in t.findings]
