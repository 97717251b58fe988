"""The lineage graph: an index rebuilt from the ledger, never trusted on its own.

:meth:`LineageGraph.from_workspace` audits the whole ledger (every leaf, tree node, checkpoint and envelope
signature
against the workspace's trusted keys), then reads the entries again, checks that they hash to the audited
root, and
builds the graph from the lineage statements among them. Any problem fails the rebuild with an error naming
the entry.

Nodes get compact integer ids in digest order; the influence edges are held as CSR adjacency arrays (numpy)
in both
directions, so a traversal is a handful of vectorised gathers per BFS level (see ``bench/lineage.py``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from loopwarden.attest import predicates as pt
from loopwarden.attest.keys import KeySet, PublicKey, load_public
from loopwarden.domain import ArtifactKind, Digest, canonical_json
from loopwarden.errors import (
    AttestationError,
    LedgerIntegrityError,
    LineageError,
    VerificationError,
    WorkspaceError,
)
from loopwarden.ledger.merkle import leaf_hash, root_from_leaves
from loopwarden.lineage.model import Artifact, Edge, Node, Relation, Taint
from loopwarden.lineage.record import ParsedRecord, parse_statement

if TYPE_CHECKING:
    from loopwarden.ledger.interface import LedgerEntry
    from loopwarden.workspace import Workspace

__all__ = [
    "CANONICAL_FORMAT",
    "INDEX_FILE",
    "BlastRadius",
    "Clearance",
    "LineageGraph",
    "Quarantine",
    "Reviewers",
    "load_reviewers",
]

CANONICAL_FORMAT: Final = "loopwarden-lineage/1"
INDEX_FILE: Final = "lineage-index.json"
"""The optional on-disk cache, in the workspace's state folder. Written by ``lineage rebuild``; never read
for a
decision (the graph is always rebuilt from the verified ledger)."""
_PAGE: Final = 20_000
_RELATIONS: Final = tuple(Relation)
_REL_CODE: Final = {r: i for i, r in enumerate(_RELATIONS)}
_IntArray = npt.NDArray[np.int64]


# -- reviewers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reviewers:
    """The keys that may (humans) and may never (agents) clear, and how many distinct humans must."""

    humans: Mapping[str, PublicKey]
    agents: Mapping[str, PublicKey]
    threshold: int

    def classify(self, claimed: str, signed_by: Iterable[str]) -> tuple[bool, str]:
        """Does a clearance claiming reviewer key ``claimed``, validly signed by ``signed_by``, count? And
        why."""
        signed = set(signed_by)
        if claimed in self.agents:
            return False, "signed for an AI agent's key: an agent can never clear"
        if claimed not in self.humans:
            return False, "unknown reviewer key (not listed in [reviewers] humans)"
        if claimed not in signed:
            return False, "the named reviewer key did not sign this clearance"
        return True, "human reviewer"

    def keyset(self) -> KeySet:
        return KeySet([*self.humans.values(), *self.agents.values()])


def load_reviewers(ws: Workspace) -> Reviewers:
    """Load ``[reviewers]`` from the workspace. A key may not be both human and agent, nor a workspace key."""
    cfg = ws.config.reviewers
    where = ws.root / "loopwarden.toml"

    def load(paths: list[str]) -> dict[str, tuple[str, PublicKey]]:
        out: dict[str, tuple[str, PublicKey]] = {}
        for p in paths:
            k = load_public(ws.resolve(p))
            out[k.keyid] = (p, k)
        return out

    humans, agents = load(cfg.humans), load(cfg.agents)
    for keyid, (p, _) in humans.items():
        if keyid in agents:
            raise WorkspaceError(f"{where}: [reviewers] key {p} is declared both a human and an agent key")
        if keyid in ws.trusted_keys:
            raise WorkspaceError(
                f"{where}: [reviewers] human key {p} is a workspace trusted key; every record is signed "
                "with the workspace key, so it cannot also stand for a human reviewer"
            )
    return Reviewers(
        {k: v for k, (_, v) in humans.items()},
        {k: v for k, (_, v) in agents.items()},
        cfg.clearance_threshold,
    )


# -- records kept beside the graph ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Quarantine:
    target: Digest
    reason: str
    reporter: str
    ledger_index: int


@dataclass(frozen=True, slots=True)
class Clearance:
    target: Digest
    reason: str
    keyid: str
    ledger_index: int
    counts: bool
    why: str


@dataclass(slots=True)
class _Builder:
    kind: dict[str, ArtifactKind] = field(default_factory=dict)
    name: dict[str, str] = field(default_factory=dict)
    gen: dict[str, int] = field(default_factory=dict)
    edges: list[tuple[str, str, int, int]] = field(default_factory=list)
    promotions: list[tuple[str, str, int]] = field(default_factory=list)
    quarantines: list[Quarantine] = field(default_factory=list)
    clearances: list[Clearance] = field(default_factory=list)

    def add(self, a: Artifact) -> str:
        d = str(a.digest)
        if d not in self.kind or (self.kind[d] is ArtifactKind.OTHER and a.kind is not ArtifactKind.OTHER):
            self.kind[d] = a.kind
        if a.name and not self.name.get(d):
            self.name[d] = a.name
        if a.generation is not None and (d not in self.gen or a.generation < self.gen[d]):
            self.gen[d] = a.generation
        return d

    def take(self, rec: ParsedRecord, index: int, entry: LedgerEntry, reviewers: Reviewers) -> None:
        for a in rec.artifacts:
            self.add(a)
        for s, t, rel in rec.edges:
            self.edges.append((str(s), str(t), _REL_CODE[rel], index))
        if rec.promotion is not None:
            self.promotions.append((str(rec.promotion[0]), rec.promotion[1], index))
        if rec.quarantine is not None:
            d, reason, reporter = rec.quarantine
            self.quarantines.append(Quarantine(d, reason, reporter, index))
        if rec.clearance is not None:
            d, reason, keyid = rec.clearance
            signed = entry.envelope().verified_keyids(reviewers.keyset()) if reviewers.keyset() else []
            counts, why = reviewers.classify(keyid, signed)
            self.clearances.append(Clearance(d, reason, keyid, index, counts, why))


# -- the graph -----------------------------------------------------------------------------------------------


def _gather(indptr: _IntArray, frontier: _IntArray) -> tuple[_IntArray, _IntArray]:
    """The CSR positions of the frontier's out-edges and the frontier node of each, in frontier order."""
    starts = indptr[frontier]
    counts = indptr[frontier + 1] - starts
    total = int(counts.sum())
    if total == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    ends = np.cumsum(counts)
    positions = np.repeat(starts - (ends - counts), counts) + np.arange(total, dtype=np.int64)
    return positions, np.repeat(frontier, counts)


@dataclass(frozen=True, slots=True)
class _Csr:
    indptr: _IntArray
    adj: _IntArray
    """Neighbour node ids, grouped by node."""
    edge: _IntArray
    """The edge row (in the graph's sorted edge arrays) of each CSR position."""


def _csr(keys: _IntArray, values: _IntArray, n: int) -> _Csr:
    order = np.lexsort((values, keys))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n), out=indptr[1:])
    return _Csr(indptr, values[order].astype(np.int64), order.astype(np.int64))


def _bfs(
    csr: _Csr, n: int, sources: _IntArray, blocked: npt.NDArray[np.bool_] | None = None
) -> tuple[_IntArray, _IntArray]:
    """Breadth-first reach from ``sources`` (themselves excluded) without entering ``blocked`` nodes.

    Returns the reached ids in BFS order and ``via``: for each reached node the edge row it was first reached
    by
    (-1 elsewhere). Ties are broken by node id then edge order, so the result is deterministic.
    """
    seen = np.zeros(n, dtype=np.bool_)
    if blocked is not None:
        seen |= blocked
    seen[sources] = True
    via = np.full(n, -1, dtype=np.int64)
    levels: list[_IntArray] = []
    frontier = sources
    while frontier.size:
        pos, _ = _gather(csr.indptr, frontier)
        nb = csr.adj[pos]
        keep = ~seen[nb]
        nb, pos = nb[keep], pos[keep]
        if not nb.size:
            break
        uniq, first = np.unique(nb, return_index=True)
        via[uniq] = csr.edge[pos[first]]
        seen[uniq] = True
        levels.append(uniq)
        frontier = uniq
    reached = np.concatenate(levels) if levels else np.empty(0, dtype=np.int64)
    return reached, via


@dataclass(frozen=True, slots=True)
class BlastRadius:
    """Every artifact reached from ``root`` through influence-carrying relations, with a shortest path to
    each."""

    graph: LineageGraph
    root: int
    reached: _IntArray
    via: _IntArray
    """For each reached node, the edge row it was reached by."""

    def __len__(self) -> int:
        return int(self.reached.size)

    def digests(self) -> list[Digest]:
        return [self.graph._digest(i) for i in self.reached.tolist()]

    def path_ids(self, node: int) -> tuple[list[int], list[Relation]]:
        """(node ids root..node, relations of the edges between them)."""
        g = self.graph
        nodes, rels = [node], []
        while nodes[-1] != self.root:
            e = int(self.via[nodes[-1]])
            if e < 0:
                raise LineageError(f"{g._digests[node]}: not in the blast radius of {g._digests[self.root]}")
            rels.append(_RELATIONS[int(g._rel[e])])
            nodes.append(int(g._src[e]))
        return nodes[::-1], rels[::-1]

    def path(self, d: Digest) -> tuple[Digest, ...]:
        return tuple(self.graph._digest(i) for i in self.path_ids(self.graph._id(d))[0])

    def rows(self) -> list[dict[str, Any]]:
        """One row per affected artifact, sorted by generation (unknown last), kind and digest; with its
        path."""
        g = self.graph
        rows = []
        for i in self.reached.tolist():
            gen = int(g._gen[i])
            ids, rels = self.path_ids(i)
            rows.append(
                {
                    "digest": g._digests[i],
                    "kind": str(g._kind[i]),
                    "name": g._name[i],
                    "generation": None if gen < 0 else gen,
                    "path": [g._digests[j] for j in ids],
                    "relations": [str(r) for r in rels],
                }
            )
        rows.sort(key=lambda r: (r["generation"] is None, r["generation"] or 0, r["kind"], r["digest"]))
        return rows


class LineageGraph:
    """The loop's lineage, rebuilt from verified ledger entries. Query by :class:`Digest`."""

    def __init__(
        self,
        builder: _Builder,
        *,
        ledger_size: int,
        ledger_root: bytes,
        reviewers: Reviewers,
        leaves: bytes = b"",
        workspace: Workspace | None = None,
    ) -> None:
        self._ws = workspace
        self._reviewers = reviewers
        self.ledger_size = ledger_size
        self.ledger_root = ledger_root
        self._leaves = leaves
        for q in builder.quarantines:
            builder.add(Artifact(q.target, ArtifactKind.OTHER))
        for c in builder.clearances:
            builder.add(Artifact(c.target, ArtifactKind.OTHER))
        for d, _, _ in builder.promotions:
            builder.add(Artifact(Digest.parse(d), ArtifactKind.OTHER))
        self._digests: list[str] = sorted(builder.kind)
        self._ids: dict[str, int] = {d: i for i, d in enumerate(self._digests)}
        n = len(self._digests)
        self._kind = [builder.kind[d] for d in self._digests]
        self._name = [builder.name.get(d, "") for d in self._digests]
        self._gen = np.array([builder.gen.get(d, -1) for d in self._digests], dtype=np.int64)
        ids = self._ids
        e = builder.edges
        src = np.fromiter((ids[s] for s, _, _, _ in e), dtype=np.int64, count=len(e))
        dst = np.fromiter((ids[t] for _, t, _, _ in e), dtype=np.int64, count=len(e))
        rel = np.fromiter((r for _, _, r, _ in e), dtype=np.int64, count=len(e))
        idx = np.fromiter((i for _, _, _, i in e), dtype=np.int64, count=len(e))
        order = np.lexsort((idx, rel, dst, src))
        self._src, self._dst, self._rel, self._eidx = src[order], dst[order], rel[order], idx[order]
        self._fwd = _csr(self._src, self._dst, n)
        self._bwd = _csr(self._dst, self._src, n)
        self._promotions = [
            (j, st, i) for j, i, st in sorted((ids[d], i, st) for d, st, i in builder.promotions)
        ]
        self._quarantines = sorted(builder.quarantines, key=lambda q: q.ledger_index)
        self._clearances = sorted(builder.clearances, key=lambda c: c.ledger_index)
        self._taint: dict[int, Taint] | None = None
        self.timings: dict[str, float] = {}
        """Seconds spent auditing the ledger and building the index (informative; not part of the graph)."""
        self._check_acyclic()

    # -- construction ----------------------------------------------------------------------------------------

    @classmethod
    def from_workspace(cls, ws: Workspace) -> LineageGraph:
        """Audit the workspace's ledger and rebuild the graph from it; any bad entry fails the rebuild."""
        reviewers = load_reviewers(ws)
        started = time.perf_counter()
        with ws.open_ledger(writable=False) as led:
            report = led.verify(ws.trusted_keys, ws.note_verifier())
            audited = time.perf_counter()
            if report.problems:
                # Name the entries whose own content or signature is wrong before the tree-level consequences.
                own = sorted(p for p in report.problems if p.message.startswith(f"entry {p.index}"))
                first = own[0] if own else min(report.problems)
                bad = sorted({p.index for p in own})
                more = f" (bad entries: {', '.join(map(str, bad[:10]))}{', …' if len(bad) > 10 else ''})"
                raise LedgerIntegrityError(
                    f"{led.path}: ledger entry {first.index} does not verify: {first.message}"
                    f"{more if len(bad) > 1 else ''}; the lineage graph was not rebuilt",
                    index=first.index,
                    hint="run 'loopwarden ledger verify' for every problem",
                )
            size = report.size
            leaves = bytearray()
            builder = _Builder()
            start = 0
            while start < size:
                page = list(led.entries(start=start, limit=min(_PAGE, size - start)))
                if not page:
                    break
                for entry in page:
                    if entry.index != start:
                        raise LedgerIntegrityError(
                            f"{led.path}: ledger entry {start} changed while the lineage graph was rebuilt",
                            index=start,
                        )
                    leaves += leaf_hash(entry.data)
                    cls._take(builder, entry, reviewers)
                    start += 1
            if (
                root_from_leaves([bytes(leaves[i : i + 32]) for i in range(0, len(leaves), 32)])
                != report.root
            ):
                raise LedgerIntegrityError(
                    f"{led.path}: the ledger changed while the lineage graph was rebuilt (root mismatch)"
                )
        graph = cls(
            builder,
            ledger_size=size,
            ledger_root=report.root,
            reviewers=reviewers,
            leaves=bytes(leaves),
            workspace=ws,
        )
        graph.timings = {"audit_s": audited - started, "index_s": time.perf_counter() - audited}
        return graph

    @staticmethod
    def _take(builder: _Builder, entry: LedgerEntry, reviewers: Reviewers) -> None:
        source = f"ledger entry {entry.index}"
        try:
            stmt = entry.statement()
        except (AttestationError, VerificationError) as exc:
            raise LedgerIntegrityError(f"{source}: {exc}", index=entry.index) from None
        if stmt.predicate_type not in pt.LINEAGE_PREDICATES:
            return
        rec = parse_statement(stmt, source=source)
        if rec is not None:
            builder.take(rec, entry.index, entry, reviewers)

    @classmethod
    def from_entries(
        cls, entries: Iterable[LedgerEntry], *, reviewers: Reviewers | None = None
    ) -> LineageGraph:
        """A graph from entries that the caller has already verified (tests and benchmarks)."""
        rv = reviewers or Reviewers({}, {}, 2)
        builder = _Builder()
        leaves = bytearray()
        n = 0
        for entry in entries:
            leaves += leaf_hash(entry.data)
            cls._take(builder, entry, rv)
            n += 1
        chunks = [bytes(leaves[i : i + 32]) for i in range(0, len(leaves), 32)]
        return cls(
            builder, ledger_size=n, ledger_root=root_from_leaves(chunks), reviewers=rv, leaves=bytes(leaves)
        )

    def _check_acyclic(self) -> None:
        n = len(self._digests)
        indptr, adj = self._fwd.indptr, self._fwd.adj
        indeg = np.bincount(self._dst, minlength=n).astype(np.int64)
        stack = np.flatnonzero(indeg == 0).tolist()
        deg = indeg.tolist()
        ip, aj = indptr.tolist(), adj.tolist()
        done = 0
        while stack:
            v = stack.pop()
            done += 1
            for w in aj[ip[v] : ip[v + 1]]:
                deg[w] -= 1
                if deg[w] == 0:
                    stack.append(w)
        if done == n:
            return
        # Walk backwards through nodes still holding in-edges until one repeats: that is a cycle.
        bptr, badj = self._bwd.indptr, self._bwd.adj
        v = next(i for i in range(n) if deg[i] > 0)
        seen: dict[int, int] = {}
        walk: list[int] = []
        while v not in seen:
            seen[v] = len(walk)
            walk.append(v)
            v = next(int(u) for u in badj[bptr[v] : bptr[v + 1]] if deg[int(u)] > 0)
        cycle = walk[seen[v] :][::-1]
        names = " -> ".join(self._digests[i] for i in [*cycle, cycle[0]])
        raise LineageError(
            f"the recorded lineage has a cycle: {names}",
            hint="an artifact cannot (indirectly) be its own input; find the wrong record with "
            "'loopwarden ledger show --subject DIGEST'",
        )

    # -- ids -------------------------------------------------------------------------------------------------

    def _id(self, d: Digest | str) -> int:
        i = self._ids.get(str(d))
        if i is None:
            raise LineageError(
                f"{d}: unknown artifact (no lineage record in the ledger names this digest)",
                hint="check the digest with 'loopwarden ledger show --subject DIGEST'",
            )
        return i

    def _digest(self, i: int) -> Digest:
        return Digest.parse(self._digests[i])

    def __contains__(self, d: object) -> bool:
        return str(d) in self._ids

    def __len__(self) -> int:
        return len(self._digests)

    @property
    def edge_count(self) -> int:
        return int(self._src.size)

    @property
    def reviewers(self) -> Reviewers:
        return self._reviewers

    def resolve(self, text: str) -> Digest:
        """A digest from ``ALGO:HEX`` or a unique prefix of one known to the graph (at least 8 hex digits)."""
        t = text.strip().lower()
        if t in self._ids:
            return Digest.parse(t)
        _, sep, hexpart = t.partition(":")
        if sep and len(hexpart) >= 8:
            import bisect

            lo = bisect.bisect_left(self._digests, t)
            hits = [d for d in self._digests[lo : lo + 2] if d.startswith(t)]
            if len(hits) == 1:
                return Digest.parse(hits[0])
            if len(hits) > 1:
                raise LineageError(f"{text}: ambiguous digest prefix")
        try:
            Digest.parse(t)
        except ValueError:
            raise LineageError(f"{text}: not a digest (ALGO:HEX)") from None
        raise LineageError(f"{text}: unknown artifact (no lineage record in the ledger names this digest)")

    # -- queries ---------------------------------------------------------------------------------------------

    def node(self, d: Digest) -> Node:
        i = self._id(d)
        gen = int(self._gen[i])
        return Node(Digest.parse(self._digests[i]), self._kind[i], self._name[i], None if gen < 0 else gen)

    def nodes(self) -> Iterator[Node]:
        for d in self._digests:
            yield self.node(Digest.parse(d))

    def edges(self, d: Digest | None = None) -> list[Edge]:
        """Every edge (or every edge touching ``d``), sorted."""
        if d is None:
            sel = np.arange(self._src.size)
        else:
            i = self._id(d)
            sel = np.flatnonzero((self._src == i) | (self._dst == i))
        return [
            Edge(
                self._digest(int(self._src[k])),
                self._digest(int(self._dst[k])),
                _RELATIONS[int(self._rel[k])],
                int(self._eidx[k]),
            )
            for k in sel
        ]

    def edges_among(self, members: Iterable[Digest | str]) -> list[Edge]:
        """Every edge whose both ends are in ``members``, sorted."""
        ids = np.array(sorted(self._id(m) for m in members), dtype=np.int64)
        sel = np.flatnonzero(np.isin(self._src, ids) & np.isin(self._dst, ids))
        return [self._edge(int(k)) for k in sel]

    def _edge(self, k: int) -> Edge:
        return Edge(
            self._digest(int(self._src[k])),
            self._digest(int(self._dst[k])),
            _RELATIONS[int(self._rel[k])],
            int(self._eidx[k]),
        )

    def relation(self, a: Digest | str, b: Digest | str) -> Relation:
        """The relation of the first recorded edge a -> b (sorted by relation, then ledger index)."""
        i, j = self._id(a), self._id(b)
        lo, hi = int(self._fwd.indptr[i]), int(self._fwd.indptr[i + 1])
        k = lo + int(np.searchsorted(self._dst[lo:hi], j))
        if k >= hi or int(self._dst[k]) != j:
            raise LineageError(f"{a} -> {b}: no recorded edge")
        return _RELATIONS[int(self._rel[k])]

    def parents(self, d: Digest) -> list[Digest]:
        i = self._id(d)
        c = self._bwd
        return [self._digest(int(j)) for j in np.unique(c.adj[c.indptr[i] : c.indptr[i + 1]])]

    def children(self, d: Digest) -> list[Digest]:
        i = self._id(d)
        c = self._fwd
        return [self._digest(int(j)) for j in np.unique(c.adj[c.indptr[i] : c.indptr[i + 1]])]

    def ancestors(self, d: Digest) -> set[Digest]:
        reached, _ = _bfs(self._bwd, len(self), np.array([self._id(d)], dtype=np.int64))
        return {self._digest(int(i)) for i in reached}

    def descendants(self, d: Digest) -> set[Digest]:
        return set(self.blast_radius(d).digests())

    def blast_radius(self, d: Digest) -> BlastRadius:
        """Everything ``d`` influenced, through every influence-carrying relation, with a shortest path to
        each."""
        root = self._id(d)
        reached, via = _bfs(self._fwd, len(self), np.array([root], dtype=np.int64))
        return BlastRadius(self, root, reached, via)

    def path(self, a: Digest, b: Digest) -> tuple[Digest, ...] | None:
        """A shortest directed path a -> ... -> b, or b -> ... -> a if only that one exists; None if
        neither."""
        for x, y in ((a, b), (b, a)):
            br = self.blast_radius(x)
            j = self._id(y)
            if int(br.via[j]) >= 0:
                return tuple(self._digest(i) for i in br.path_ids(j)[0])
        if a == b:
            self._id(a)
            return (a,)
        return None

    def stages(self, d: Digest) -> list[tuple[str, int]]:
        i = self._id(d)
        return [(stage, idx) for j, stage, idx in self._promotions if j == i]

    def quarantines(self, d: Digest | None = None) -> list[Quarantine]:
        return [q for q in self._quarantines if d is None or q.target == d]

    def clearances(self, d: Digest | None = None) -> list[Clearance]:
        return [c for c in self._clearances if d is None or c.target == d]

    def timeline(self) -> dict[int | None, dict[str, list[Node]]]:
        """Nodes grouped by generation (None: never stated) and kind, each list sorted by digest."""
        out: dict[int | None, dict[str, list[Node]]] = defaultdict(lambda: defaultdict(list))
        for node in self.nodes():
            out[node.generation][str(node.kind)].append(node)
        return {
            g: dict(sorted(v.items()))
            for g, v in sorted(out.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
        }

    # -- taint -----------------------------------------------------------------------------------------------

    def _cleared_after(self, i: int, after: int) -> tuple[bool, list[str]]:
        """Has node i been cleared by enough distinct human keys in entries after ledger index ``after``?"""
        target = self._digests[i]
        keys = sorted(
            {
                c.keyid
                for c in self._clearances
                if c.counts and c.ledger_index > after and str(c.target) == target
            }
        )
        return len(keys) >= self._reviewers.threshold, keys

    def clearance_status(self, d: Digest) -> dict[str, Any]:
        """Whether ``d``'s latest quarantine (if any) is cleared, and by whom."""
        i = self._id(d)
        qs = self.quarantines(d)
        after = qs[-1].ledger_index if qs else -1
        ok, keys = self._cleared_after(i, after)
        return {
            "quarantined": bool(qs),
            "cleared": ok,
            "human_reviewers": keys,
            "threshold": self._reviewers.threshold,
        }

    def _compute_taint(self) -> dict[int, Taint]:
        latest: dict[int, Quarantine] = {}
        for q in self._quarantines:
            latest[self._ids[str(q.target)]] = q
        out: dict[int, Taint] = {}
        for src_id, q in sorted(latest.items(), key=lambda kv: kv[1].ledger_index):
            if self._cleared_after(src_id, q.ledger_index)[0]:
                continue
            blocked = np.zeros(len(self), dtype=np.bool_)
            cleared = {self._ids[str(c.target)] for c in self._clearances if c.ledger_index > q.ledger_index}
            for j in cleared:
                if j != src_id and self._cleared_after(j, q.ledger_index)[0]:
                    blocked[j] = True
            reached, via = _bfs(self._fwd, len(self), np.array([src_id], dtype=np.int64), blocked)
            br = BlastRadius(self, src_id, reached, via)
            if src_id not in out:
                out[src_id] = Taint(q.target, q.reason, (q.target,), q.ledger_index)
            for j in reached.tolist():
                if j not in out:
                    out[j] = Taint(
                        q.target, q.reason, tuple(self._digest(k) for k in br.path_ids(j)[0]), q.ledger_index
                    )
        return out

    def taint(self, d: Digest) -> Taint | None:
        """Why ``d`` is tainted: quarantined itself, or reached from a quarantined artifact, and not
        cleared."""
        i = self._id(d)
        if self._taint is None:
            self._taint = self._compute_taint()
        return self._taint.get(i)

    def tainted(self) -> dict[Digest, Taint]:
        if self._taint is None:
            self._taint = self._compute_taint()
        return {self._digest(i): t for i, t in sorted(self._taint.items())}

    # -- attestations ----------------------------------------------------------------------------------------

    def attestations(self, d: Digest, predicate_type: str | None = None) -> list[LedgerEntry]:
        """Every ledger entry (up to the rebuilt size) whose subject is ``d``, each re-checked against the
        leaf
        hash recorded when the graph was rebuilt."""
        if self._ws is None:
            raise LineageError("this graph was not rebuilt from a workspace; it has no ledger to read")
        out = []
        with self._ws.open_ledger(writable=False) as led:
            for e in led.entries(subject=d, predicate_type=predicate_type):
                if e.index >= self.ledger_size:
                    break
                if self._leaves[e.index * 32 : e.index * 32 + 32] != leaf_hash(e.data):
                    raise LedgerIntegrityError(
                        f"{led.path}: ledger entry {e.index} changed since the lineage graph was rebuilt",
                        index=e.index,
                    )
                out.append(e)
        return out

    # -- canonical form --------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The canonical form: nodes sorted by digest, edges as node positions, every record with its
        entry."""
        g = self._gen.tolist()
        return {
            "format": CANONICAL_FORMAT,
            "ledger": {"size": self.ledger_size, "root": self.ledger_root.hex()},
            "reviewers": {
                "threshold": self._reviewers.threshold,
                "humans": sorted(self._reviewers.humans),
                "agents": sorted(self._reviewers.agents),
            },
            "nodes": [
                [d, str(k), nm, None if gen < 0 else gen]
                for d, k, nm, gen in zip(self._digests, self._kind, self._name, g, strict=True)
            ],
            "edges": [
                [s, t, str(_RELATIONS[r]), i]
                for s, t, r, i in zip(
                    self._src.tolist(),
                    self._dst.tolist(),
                    self._rel.tolist(),
                    self._eidx.tolist(),
                    strict=True,
                )
            ],
            "promotions": [[i, stage, idx] for i, stage, idx in self._promotions],
            "quarantines": [
                [self._ids[str(q.target)], q.reason, q.reporter, q.ledger_index] for q in self._quarantines
            ],
            "clearances": [
                [self._ids[str(c.target)], c.reason, c.keyid, c.ledger_index, c.counts, c.why]
                for c in self._clearances
            ],
        }

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.to_json())


def write_index(ws: Workspace, graph: LineageGraph) -> tuple[Path, str, bool | None]:
    """Write the canonical graph to the cache file atomically; (path, sha256, did it equal the previous
    file?)."""
    from loopwarden.workspace import STATE_DIR

    data = graph.canonical_bytes()
    path = ws.root / STATE_DIR / INDEX_FILE
    try:
        previous: bytes | None = path.read_bytes()
    except FileNotFoundError:
        previous = None
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path, hashlib.sha256(data).hexdigest(), None if previous is None else previous == data
