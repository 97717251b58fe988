"""The lineage graph's values: relations, nodes, edges, taint. Frozen, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from loopwarden.domain import ArtifactKind, Digest

__all__ = ["INFLUENCE", "Artifact", "Edge", "Node", "Relation", "Taint"]


class Relation(enum.StrEnum):
    """How one artifact influenced another. Edges point from the influencing artifact to the influenced
    one."""

    GENERATED = "generated"
    """Model M generated dataset/code/eval X (M -> X)."""
    TRAINED_ON = "trained-on"
    """Dataset D trained model M (D -> M)."""
    BUILT_FROM = "built-from"
    """Code commit C or base model B built model M (C -> M, B -> M); an input or eval suite built an
    output."""
    AUTHORED = "authored"
    """Agent session S changed artifact X (S -> X)."""
    ACTED_FOR = "acted-for"
    """Model M drove agent session S (M -> S)."""
    SCORED = "scored"
    """Eval run E scored model M (E -> M): a compromised eval taints every decision taken about M."""
    PROMOTED = "promoted"
    """Artifact promoted to a stage. A node attribute: it links an artifact to a stage, not to another
    artifact."""


INFLUENCE: Final[frozenset[Relation]] = frozenset(Relation) - {Relation.PROMOTED}
"""Relations that carry influence, so taint flows along them (docs/lineage.md says why for each)."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """An artifact named in a record: its digest, kind, a human name and (for outputs) its generation."""

    digest: Digest
    kind: ArtifactKind
    name: str = ""
    generation: int | None = None


@dataclass(frozen=True, slots=True)
class Node:
    digest: Digest
    kind: ArtifactKind
    name: str
    generation: int | None


@dataclass(frozen=True, slots=True, order=True)
class Edge:
    source: Digest
    target: Digest
    relation: Relation
    ledger_index: int
    """The ledger entry that recorded this edge."""


@dataclass(frozen=True, slots=True)
class Taint:
    """Why an artifact is tainted: the quarantined source, its reason, the path source -> ... -> artifact."""

    source: Digest
    reason: str
    path: tuple[Digest, ...]
    ledger_index: int
    """The ledger index of the quarantine record."""
