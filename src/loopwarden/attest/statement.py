"""in-toto Statement v1: subjects, a predicate type, a predicate."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from loopwarden.domain import Digest, ResourceDescriptor, canonical_json
from loopwarden.errors import AttestationError

__all__ = ["STATEMENT_TYPE", "Statement"]

STATEMENT_TYPE: Final = "https://in-toto.io/Statement/v1"


@dataclass(frozen=True, slots=True)
class Statement:
    """An in-toto Statement v1. Serialised canonically (sorted keys, compact) so its bytes are stable."""

    subjects: tuple[ResourceDescriptor, ...]
    predicate_type: str
    predicate: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.subjects:
            raise AttestationError("an in-toto statement needs at least one subject")
        if not self.predicate_type:
            raise AttestationError("an in-toto statement needs a predicate type")
        object.__setattr__(self, "subjects", tuple(self.subjects))

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [s.to_json() for s in self.subjects],
            "predicateType": self.predicate_type,
            "predicate": dict(self.predicate),
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    def subject_digests(self) -> list[Digest]:
        return [d for s in self.subjects for d in s.digests()]

    @classmethod
    def parse(cls, data: bytes | str, *, source: str = "<statement>") -> Statement:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AttestationError(f"{source}: statement is not valid JSON ({exc})") from None
        return cls.from_json(obj, source=source)

    @classmethod
    def from_json(cls, obj: Any, *, source: str = "<statement>") -> Statement:
        if not isinstance(obj, Mapping):
            raise AttestationError(f"{source}: statement must be a JSON object")
        if obj.get("_type") != STATEMENT_TYPE:
            raise AttestationError(
                f"{source}: statement _type must be {STATEMENT_TYPE!r}, got {obj.get('_type')!r}"
            )
        subjects = obj.get("subject")
        if not isinstance(subjects, Sequence) or isinstance(subjects, str) or not subjects:
            raise AttestationError(f"{source}: statement needs a non-empty 'subject' list")
        ptype = obj.get("predicateType")
        if not isinstance(ptype, str) or not ptype:
            raise AttestationError(f"{source}: statement needs a 'predicateType' string")
        pred = obj.get("predicate", {})
        if not isinstance(pred, Mapping):
            raise AttestationError(f"{source}: 'predicate' must be a JSON object")
        try:
            subs = tuple(ResourceDescriptor.from_json(s) for s in subjects)
        except ValueError as exc:
            raise AttestationError(f"{source}: bad subject: {exc}") from None
        return cls(subs, ptype, dict(pred))
