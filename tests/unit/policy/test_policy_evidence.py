"""Evidence read from a real ledger: the one-pass prefetch gives the same entries as per-artifact reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policy_helpers import NOW

from loopwarden.attest.predicates import SCAN, scan_statement
from loopwarden.domain import ArtifactKind, Digest, Finding, Location, Severity, TargetResult
from loopwarden.ledger import record_many
from loopwarden.ledger.interface import LedgerEntry
from loopwarden.lineage import Artifact, LineageGraph, generate_statement, train_statement
from loopwarden.policy.safeguards import Evidence
from loopwarden.workspace import init_workspace


class _Counting:
    def __init__(self, graph: LineageGraph) -> None:
        self.graph = graph
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.graph, name)

    def attestations(self, d: Digest, predicate_type: str | None = None) -> list[LedgerEntry]:
        self.calls += 1
        return self.graph.attestations(d, predicate_type)


def test_prefetch_equals_per_artifact_reads(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws", name="prefetch")
    stmts = []
    prev = None
    models = []
    for g in range(1, 31):  # 30 generations: the last model has 59 ancestors, above the prefetch threshold
        d = Artifact(Digest.sha256(f"d{g}".encode()), ArtifactKind.DATASET, f"d{g}", g)
        m = Artifact(Digest.sha256(f"m{g}".encode()), ArtifactKind.MODEL, f"m{g}", g)
        if prev is not None:
            stmts.append(generate_statement(model=prev, outputs=[d], generation=g))
        stmts.append(train_statement(model=m, datasets=[d], base_model=prev, generation=g))
        models.append(m)
        prev = m
    for i, m in enumerate(models[::3]):
        findings = [Finding("LW-MODEL-001", Severity.HIGH, "x", Location("w"))] if i % 2 else []
        res = TargetResult.from_findings(m.name, ArtifactKind.MODEL, findings, digest=m.digest)
        stmts.append(scan_statement(res, check="models", tool_version="0", recorded_at=NOW))
    record_many(stmts, ws)
    graph = LineageGraph.from_workspace(ws)
    last = models[-1].digest
    scope = sorted({last, *graph.ancestors(last)})
    assert len(scope) > 32
    slow = Evidence(graph, ws.trusted_keys, NOW)
    counting = _Counting(graph)
    fast = Evidence(counting, ws.trusted_keys, NOW, workspace=ws)
    fast.prefetch(scope, SCAN)
    got = {d: [e.index for e in fast.entries(d, SCAN)] for d in scope}
    assert counting.calls == 0  # every read was served by the one pass
    assert got == {d: [e.index for e in slow.entries(d, SCAN)] for d in scope}
    assert sum(len(v) for v in got.values()) == 10
