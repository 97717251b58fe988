"""Helpers for the policy tests: the shipped example policy's path, digests, and a fake lineage graph."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopwarden.attest.dsse import sign_statement
from loopwarden.attest.keys import PrivateKey
from loopwarden.attest.statement import Statement
from loopwarden.domain import ArtifactKind, Digest
from loopwarden.ledger.interface import LedgerEntry

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "policy.yaml"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PEOPLE = ("alice", "bob", "carol", "loop-agent")


def clone(raw: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(raw)


def dig(text: str) -> Digest:
    return Digest.sha256(text.encode())


@dataclass(frozen=True, slots=True)
class FakeNode:
    digest: Digest
    kind: ArtifactKind
    name: str
    generation: int | None


@dataclass(frozen=True, slots=True)
class FakeTaint:
    source: Digest
    reason: str
    path: tuple[Digest, ...]
    ledger_index: int


@dataclass
class FakeGraph:
    """A lineage graph held in memory: nodes, parent edges, taints, and signed ledger entries."""

    signer: PrivateKey
    nodes_: dict[Digest, FakeNode] = field(default_factory=dict)
    parents: dict[Digest, set[Digest]] = field(default_factory=dict)
    taints: dict[Digest, FakeTaint] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)

    def add(
        self, name: str, kind: ArtifactKind, generation: int | None = None, parents: Iterable[Digest] = ()
    ) -> Digest:
        d = dig(name)
        self.nodes_[d] = FakeNode(d, kind, name, generation)
        self.parents[d] = set(parents)
        return d

    def attest(self, statement: Statement, cosigners: Iterable[PrivateKey] = ()) -> int:
        env = sign_statement(statement, [*cosigners, self.signer])
        idx = len(self.entries)
        self.entries.append(LedgerEntry(idx, env.to_bytes()))
        return idx

    # -- the LineageView protocol ---------------------------------------------------------------------------
    def node(self, d: Digest) -> FakeNode:
        return self.nodes_[d]

    def nodes(self) -> list[FakeNode]:
        return list(self.nodes_.values())

    def ancestors(self, d: Digest) -> set[Digest]:
        out: set[Digest] = set()
        todo = list(self.parents.get(d, ()))
        while todo:
            p = todo.pop()
            if p not in out:
                out.add(p)
                todo.extend(self.parents.get(p, ()))
        return out

    def descendants(self, d: Digest) -> set[Digest]:
        return {x for x in self.nodes_ if d in self.ancestors(x)}

    def taint(self, d: Digest) -> FakeTaint | None:
        return self.taints.get(d)

    def attestations(self, d: Digest, predicate_type: str | None = None) -> list[LedgerEntry]:
        out = []
        for e in self.entries:
            st = e.statement()
            if d in st.subject_digests() and (predicate_type is None or st.predicate_type == predicate_type):
                out.append(e)
        return out
