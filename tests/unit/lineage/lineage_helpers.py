"""Small helpers for the lineage unit tests: artifacts by name, and graphs from signed statements."""

from __future__ import annotations

from collections.abc import Sequence

from loopwarden.attest.dsse import sign_statement
from loopwarden.attest.keys import PrivateKey, generate
from loopwarden.attest.statement import Statement
from loopwarden.domain import ArtifactKind, Digest
from loopwarden.ledger.interface import LedgerEntry
from loopwarden.lineage import Artifact, LineageGraph, Reviewers

KEY: PrivateKey = generate()


def art(name: str, kind: str = "dataset", generation: int | None = None) -> Artifact:
    return Artifact(Digest.sha256(name.encode()), ArtifactKind(kind), name, generation)


def entries(statements: Sequence[Statement], signers: Sequence[PrivateKey] = (KEY,)) -> list[LedgerEntry]:
    return [LedgerEntry(i, sign_statement(s, list(signers)).to_bytes()) for i, s in enumerate(statements)]


def graph(statements: Sequence[Statement], reviewers: Reviewers | None = None) -> LineageGraph:
    return LineageGraph.from_entries(entries(statements), reviewers=reviewers)
