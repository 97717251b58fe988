"""The graph index: queries against a plain-Python reference, cycles, unknown digests, taint and clearance."""

from __future__ import annotations

import itertools
import random
from collections import deque

import pytest
from lineage_helpers import KEY, art, entries, graph

from loopwarden.attest.dsse import sign_statement
from loopwarden.attest.keys import generate
from loopwarden.attest.statement import Statement
from loopwarden.domain import ArtifactKind, Digest
from loopwarden.errors import LineageError
from loopwarden.ledger.interface import LedgerEntry
from loopwarden.lineage import (
    LineageGraph,
    Relation,
    Reviewers,
    clearance_statement,
    eval_statement,
    generate_statement,
    promote_statement,
    quarantine_statement,
    train_statement,
)


def _random_dag(seed: int, n: int = 60, p: float = 0.08) -> tuple[list[Statement], dict[int, set[int]]]:
    rng = random.Random(seed)
    adj: dict[int, set[int]] = {i: set() for i in range(n)}
    stmts = []
    for j in range(1, n):
        for i in range(j):
            if rng.random() < p:
                adj[i].add(j)
                stmts.append(generate_statement(model=art(f"n{i}"), outputs=[art(f"n{j}")], generation=1))
    return stmts, adj


def _ref_bfs(adj: dict[int, set[int]], root: int) -> dict[int, int]:
    dist = {root: 0}
    q = deque([root])
    while q:
        v = q.popleft()
        for w in adj[v]:
            if w not in dist:
                dist[w] = dist[v] + 1
                q.append(w)
    del dist[root]
    return dist


@pytest.mark.parametrize("seed", range(8))
def test_descendants_ancestors_and_shortest_paths_match_a_reference(seed: int) -> None:
    stmts, adj = _random_dag(seed)
    g = graph(stmts)
    radj: dict[int, set[int]] = {i: set() for i in adj}
    for i, outs in adj.items():
        for j in outs:
            radj[j].add(i)
    name = {Digest.sha256(f"n{i}".encode()): i for i in adj}
    for root in range(0, 60, 7):
        d = Digest.sha256(f"n{root}".encode())
        if d not in g:
            continue
        ref = _ref_bfs(adj, root)
        br = g.blast_radius(d)
        assert {name[x] for x in br.digests()} == set(ref)
        assert {name[x] for x in g.ancestors(d)} == set(_ref_bfs(radj, root))
        for x in br.digests():
            path = [name[p] for p in br.path(x)]
            assert path[0] == root
            assert path[-1] == name[x]
            assert len(path) - 1 == ref[name[x]]  # shortest
            assert all(b in adj[a] for a, b in itertools.pairwise(path))


def test_path_both_directions_and_none() -> None:
    g = graph(
        [
            generate_statement(model=art("a", "model"), outputs=[art("b")], generation=1),
            train_statement(model=art("c", "model"), datasets=[art("b")], generation=1),
            generate_statement(model=art("x", "model"), outputs=[art("y")], generation=1),
        ]
    )
    a, c, y = (Digest.sha256(n.encode()) for n in "acy")
    assert g.path(a, c) == (a, Digest.sha256(b"b"), c)
    assert g.path(c, a) == (a, Digest.sha256(b"b"), c)
    assert g.path(a, y) is None
    assert g.relation(Digest.sha256(b"b"), c) is Relation.TRAINED_ON


def test_cycle_is_an_error_naming_every_digest_in_it() -> None:
    stmts = [
        generate_statement(model=art("a", "model"), outputs=[art("b")], generation=1),
        train_statement(model=art("c", "model"), datasets=[art("b")], generation=1),
        generate_statement(model=art("c", "model"), outputs=[art("a")], generation=2),
        generate_statement(model=art("z", "model"), outputs=[art("a")], generation=2),  # not in the cycle
    ]
    with pytest.raises(LineageError, match="cycle") as err:
        graph(stmts)
    for n in "abc":
        assert str(Digest.sha256(n.encode())) in str(err.value)
    assert str(Digest.sha256(b"z")) not in str(err.value)


def test_diamond_is_not_a_cycle() -> None:
    g = graph(
        [
            generate_statement(model=art("a", "model"), outputs=[art("b"), art("c")], generation=1),
            train_statement(model=art("d", "model"), datasets=[art("b"), art("c")], generation=2),
        ]
    )
    assert len(g.descendants(Digest.sha256(b"a"))) == 3


def test_unknown_digest_and_prefix_resolution() -> None:
    g = graph([generate_statement(model=art("a", "model"), outputs=[art("b")], generation=1)])
    unknown = Digest.sha256(b"nobody")
    for q in (g.node, g.ancestors, g.descendants, g.blast_radius, g.taint):
        with pytest.raises(LineageError, match=str(unknown)):
            q(unknown)
    full = str(Digest.sha256(b"a"))
    assert g.resolve(full[:15]) == Digest.sha256(b"a")
    with pytest.raises(LineageError, match="sha256:00000000"):
        g.resolve("sha256:00000000")
    with pytest.raises(LineageError, match="not a digest"):
        g.resolve("banana")


def test_node_attributes_kind_generation_stages() -> None:
    g = graph(
        [
            train_statement(model=art("m2", "model", 2), datasets=[art("d2", "dataset", 2)], generation=2),
            eval_statement(eval_run=art("e2", "eval"), model=art("m2", "model"), generation=2),
            promote_statement(target=art("m2", "model"), stage="staging"),
            promote_statement(target=art("m2", "model"), stage="production"),
        ]
    )
    n = g.node(Digest.sha256(b"m2"))
    assert (n.kind, n.name, n.generation) == (ArtifactKind.MODEL, "m2", 2)
    assert [s for s, _ in g.stages(n.digest)] == ["staging", "production"]
    assert g.node(Digest.sha256(b"e2")).kind is ArtifactKind.EVAL
    tl = g.timeline()
    assert set(tl) == {2}
    assert set(tl[2]) == {"dataset", "eval", "model"}


def test_non_lineage_entries_are_ignored_and_bad_lineage_entries_fail() -> None:
    from loopwarden.attest import predicates as pt
    from loopwarden.domain import ResourceDescriptor

    note = Statement((ResourceDescriptor.of("n", Digest.sha256(b"n")),), pt.NOTE, {"text": "hi"})
    g = graph([note, generate_statement(model=art("a", "model"), outputs=[art("b")], generation=1)])
    assert len(g) == 2
    bad = Statement((ResourceDescriptor.of("n", Digest.sha256(b"n")),), pt.AGENT_SESSION, {"changed": "x"})
    with pytest.raises(LineageError, match="ledger entry 1"):
        graph([note, bad])


# -- taint and clearance -------------------------------------------------------------------------------------

ALICE, BOB, AGENT = generate(), generate(), generate()
REVIEWERS = Reviewers({k.keyid: k.public() for k in (ALICE, BOB)}, {AGENT.keyid: AGENT.public()}, 2)


def _loop_statements() -> list[Statement]:
    # a -> b -> c, and a -> d -> c (two paths into c); e unrelated
    return [
        generate_statement(model=art("a", "model"), outputs=[art("b"), art("d")], generation=1),
        train_statement(model=art("c", "model"), datasets=[art("b"), art("d")], generation=2),
        generate_statement(model=art("c", "model"), outputs=[art("f")], generation=3),
        generate_statement(model=art("e", "model"), outputs=[art("g")], generation=1),
    ]


def _graph_with(extra: list[tuple[Statement, list[object]]]) -> LineageGraph:
    ents = entries(_loop_statements())
    for s, signers in extra:
        ents.append(LedgerEntry(len(ents), sign_statement(s, [KEY, *signers]).to_bytes()))  # type: ignore[list-item]
    return LineageGraph.from_entries(ents, reviewers=REVIEWERS)


def _q(name: str, reason: str = "bad") -> tuple[Statement, list[object]]:
    return quarantine_statement(target=art(name), reason=reason, reporter="ci"), []


def _c(name: str, key: object, claimed: str | None = None) -> tuple[Statement, list[object]]:
    keyid = claimed or key.keyid  # type: ignore[attr-defined]
    return clearance_statement(target=art(name), reason="reviewed", reviewer_keyid=keyid), [key]


def _tainted(g: LineageGraph) -> set[str]:
    names = {Digest.sha256(n.encode()): n for n in "abcdefg"}
    return {names[d] for d in g.tainted()}


def test_taint_flows_to_every_descendant() -> None:
    g = _graph_with([_q("a")])
    assert _tainted(g) == {"a", "b", "c", "d", "f"}
    t = g.taint(Digest.sha256(b"f"))
    assert t is not None
    assert t.path[0] == Digest.sha256(b"a")
    assert t.path[-1] == Digest.sha256(b"f")
    assert len(t.path) == 4
    assert g.taint(Digest.sha256(b"e")) is None


def test_two_distinct_humans_clear_one_or_agents_do_not() -> None:
    assert _tainted(_graph_with([_q("a"), _c("a", ALICE)])) == {"a", "b", "c", "d", "f"}
    assert _tainted(_graph_with([_q("a"), _c("a", ALICE), _c("a", ALICE)])) == {"a", "b", "c", "d", "f"}
    assert _tainted(_graph_with([_q("a"), _c("a", ALICE), _c("a", AGENT)])) == {"a", "b", "c", "d", "f"}
    # an agent naming Bob's key id without Bob's signature does not count
    assert _tainted(_graph_with([_q("a"), _c("a", ALICE), _c("a", AGENT, BOB.keyid)])) == {
        "a",
        "b",
        "c",
        "d",
        "f",
    }
    assert _tainted(_graph_with([_q("a"), _c("a", ALICE), _c("a", BOB)])) == set()


def test_clearance_before_a_new_quarantine_does_not_count() -> None:
    g = _graph_with([_q("a"), _c("a", ALICE), _c("a", BOB), _q("a", "new evidence")])
    assert _tainted(g) == {"a", "b", "c", "d", "f"}
    t = g.taint(Digest.sha256(b"c"))
    assert t is not None
    assert t.reason == "new evidence"


def test_a_cleared_descendant_stops_taint_only_on_paths_through_it() -> None:
    # clearing b: c is still reached through d
    assert _tainted(_graph_with([_q("a"), _c("b", ALICE), _c("b", BOB)])) == {"a", "c", "d", "f"}
    # clearing c: f is reached only through c
    assert _tainted(_graph_with([_q("a"), _c("c", ALICE), _c("c", BOB)])) == {"a", "b", "d"}


def test_reviewer_classification() -> None:
    assert REVIEWERS.classify(ALICE.keyid, [ALICE.keyid]) == (True, "human reviewer")
    assert REVIEWERS.classify(ALICE.keyid, [])[0] is False
    assert REVIEWERS.classify(AGENT.keyid, [AGENT.keyid])[0] is False
    assert REVIEWERS.classify("ff" * 32, ["ff" * 32])[0] is False


def test_canonical_bytes_are_deterministic_and_follow_the_ledger() -> None:
    ents = entries(_loop_statements())
    a = LineageGraph.from_entries(ents, reviewers=REVIEWERS).canonical_bytes()
    b = LineageGraph.from_entries(list(ents), reviewers=REVIEWERS).canonical_bytes()
    assert a == b
    more = [*ents, LedgerEntry(len(ents), sign_statement(_q("a")[0], [KEY]).to_bytes())]
    assert LineageGraph.from_entries(more, reviewers=REVIEWERS).canonical_bytes() != a


def test_findings_for_quarantine_taint_clearances_and_provenance_gaps() -> None:
    from loopwarden.lineage import findings_for

    g = _graph_with([_q("a"), _c("a", AGENT), _c("a", generate())])
    ids = lambda n: [f.rule_id for f in findings_for(g, Digest.sha256(n.encode()))]  # noqa: E731
    assert ids("a") == [
        "LW-LOOP-002",
        "LW-LOOP-003",
        "LW-LOOP-004",
        "LW-LOOP-005",
    ]  # a: a model with no inputs
    assert ids("c") == ["LW-LOOP-001"]
    (f,) = findings_for(g, Digest.sha256(b"f"))
    assert f.evidence["path"][0] == str(Digest.sha256(b"a"))
    assert ids("e") == ["LW-LOOP-005"]
    assert ids("g") == []
    cleared = _graph_with([_q("a"), _c("a", ALICE), _c("a", BOB)])
    assert ids("c") == ["LW-LOOP-001"]
    assert [f.rule_id for f in findings_for(cleared, Digest.sha256(b"c"))] == []
