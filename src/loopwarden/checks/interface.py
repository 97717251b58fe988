"""The checks extension point: a check reads one target, never executes it, and returns a TargetResult."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

from loopwarden.domain import ArtifactKind, TargetResult
from loopwarden.errors import CheckError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Check", "CheckError", "Limits", "ResourceLimitExceeded"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource bounds every parser honours. Hitting one makes the target ``unverified`` with the bound named."""

    max_file_bytes: int = 64 * 1024**3
    max_depth: int = 32
    max_members: int = 100_000
    max_decompression_ratio: float = 200.0
    max_decompressed_bytes: int = 8 * 1024**3
    max_opcodes: int = 50_000_000
    max_seconds: float = 600.0
    max_record_bytes: int = 64 * 1024**2
    """Largest single record (a line of a line-oriented shard, an array element, a row) a reader holds."""


class ResourceLimitExceeded(CheckError):
    """A parser hit one of its bounds; the target becomes ``unverified`` naming ``bound``."""

    def __init__(self, bound: str, detail: str) -> None:
        super().__init__(f"resource limit '{bound}' reached: {detail}")
        self.bound = bound


class Check(Protocol):
    """One check of one kind of artifact."""

    name: ClassVar[str]
    kind: ClassVar[ArtifactKind]

    def check(self, target: Path, limits: Limits) -> TargetResult:
        """Analyse ``target``. Must not raise for bad input: unreadable input is an ``unverified`` result."""
        ...
