"""The ledger's storage protocol and its values. The ledger records; it does not interpret."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from loopwarden.attest.dsse import Envelope
from loopwarden.attest.keys import KeySet
from loopwarden.attest.statement import Statement
from loopwarden.domain import Digest
from loopwarden.ledger.checkpoint import Checkpoint
from loopwarden.ledger.merkle import ConsistencyProof, InclusionProof, leaf_hash

__all__ = ["AppendResult", "LedgerEntry", "LedgerStore", "Problem", "VerifyReport"]


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    index: int
    data: bytes
    """The canonical envelope bytes: exactly what the Merkle leaf hashes."""

    def leaf_hash(self) -> bytes:
        return leaf_hash(self.data)

    def envelope(self) -> Envelope:
        return Envelope.parse(self.data, source=f"ledger entry {self.index}")

    def statement(self) -> Statement:
        return self.envelope().statement(source=f"ledger entry {self.index}")


@dataclass(frozen=True, slots=True)
class AppendResult:
    index: int
    tree_size: int
    root: bytes
    proof: InclusionProof | None
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One integrity problem: the entry it concerns (or None for the whole ledger) and what is wrong."""

    index: int
    message: str


@dataclass(slots=True)
class VerifyReport:
    size: int = 0
    root: bytes = b""
    checkpoints_checked: int = 0
    signatures_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def first(self) -> Problem | None:
        return min(self.problems) if self.problems else None


class LedgerStore(Protocol):
    """An append-only Merkle-tree log of DSSE envelopes."""

    path: str

    def append(self, envelope: Envelope) -> AppendResult: ...

    def append_batch(
        self, envelopes: Sequence[Envelope], *, with_proofs: bool = False
    ) -> list[AppendResult]: ...

    def size(self) -> int: ...

    def get(self, index: int) -> LedgerEntry: ...

    def entries(
        self,
        *,
        subject: Digest | None = None,
        predicate_type: str | None = None,
        start: int = 0,
        limit: int | None = None,
    ) -> Iterator[LedgerEntry]: ...

    def root(self, size: int | None = None) -> bytes: ...

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof: ...

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof: ...

    def latest_checkpoint(self) -> Checkpoint | None: ...

    def verify(self, trusted: KeySet) -> VerifyReport: ...

    def close(self) -> None: ...
