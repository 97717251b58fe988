"""The gate's decision table, on a fake lineage graph (the real graph is exercised in tests/integration)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from policy_helpers import NOW, FakeGraph, FakeTaint, dig

from loopwarden.attest.keys import PrivateKey
from loopwarden.attest.predicates import (
    DATASET_MANIFEST,
    EVAL_RUN,
    OMS_SIGNATURE,
    ROLE_POLICY,
    scan_statement,
)
from loopwarden.attest.statement import Statement
from loopwarden.domain import (
    ArtifactKind,
    Digest,
    Finding,
    Location,
    ResourceDescriptor,
    Severity,
    TargetResult,
)
from loopwarden.policy import (
    Action,
    Decision,
    GateRequest,
    Outcome,
    PolicyFile,
    audit_chain,
    build_gate_policy,
    eval_result_statement,
    parse_policy,
    policy_digest,
    signoff_statement,
)
from loopwarden.policy.chain import PolicyVersion, version_id
from loopwarden.policy.safeguards import Evidence

SUITE = dig("suite-v1")
SAFEGUARDS = [
    "weights-signed",
    "scan-clean",
    "data-provenance",
    "agents-least-privilege",
    "two-person-signoff",
]


def table_policy(keys: dict[str, PrivateKey], **over: Any) -> PolicyFile:
    raw: dict[str, Any] = {
        "version": 1,
        "name": "table",
        "capabilities": {
            "cap": {
                "eval": {"suite": "suite", "suite_digest": str(SUITE), "metric": "score"},
                "direction": "higher-is-more-capable",
                "levels": [
                    {"name": "high", "threshold": 0.5, "safeguards": SAFEGUARDS, "gates": ["promote"]},
                    {"name": "critical", "threshold": 0.9, "on_reached": "deny", "gates": ["promote"]},
                ],
            }
        },
        "safeguards": {
            "weights-signed": {"kind": "weights-signed"},
            "scan-clean": {"kind": "scan-clean", "max_age": "7d"},
            "data-provenance": {"kind": "data-provenance-complete"},
            "agents-least-privilege": {"kind": "agents-least-privilege"},
            "two-person-signoff": {"kind": "two-person-signoff"},
        },
        "people": [
            {"name": n, "keyid": keys[n].keyid, "kind": "agent" if n == "loop-agent" else "human"}
            for n in ("alice", "bob", "carol", "loop-agent")
        ],
        "evidence": {"max_age": "30d"},
    }
    for k, v in over.items():
        raw[k] = {**raw.get(k, {}), **v}
    return parse_policy(raw, source="table")


@dataclass
class World:
    score: float | None = 0.7
    eval_age: timedelta = timedelta(days=1)
    eval_verdict: str = "clean"
    scan: str | None = "clean"  # clean | findings | unverified | None
    scan_age: timedelta = timedelta(days=1)
    oms: bool = True
    manifest: bool = True
    role_policy: bool = True
    signers: tuple[str, ...] = ("alice", "bob")
    taint: str | None = None  # None | "self" | "ancestor"
    ancestor_scan: str | None = None  # None | clean | findings | unverified
    extra: list[Callable[[FakeGraph, Digest], None]] = field(default_factory=list)


def build(w: World, graph: FakeGraph, keys: dict[str, PrivateKey]) -> Digest:
    base = graph.add("base-model", ArtifactKind.MODEL, 0)
    data = graph.add("data-1", ArtifactKind.DATASET, 1, [base])
    code = graph.add("code-1", ArtifactKind.CODE, 1)
    sess = graph.add("session-1", ArtifactKind.AGENT_SESSION, 1, [base])
    model = graph.add("model-1", ArtifactKind.MODEL, 1, [data, code, sess, base])
    m_rd = ResourceDescriptor.of("model-1", model)
    if w.score is not None:
        graph.attest(
            eval_result_statement(
                model,
                suite="suite",
                suite_digest=SUITE,
                metric="score",
                value=w.score,
                recorded_at=NOW - w.eval_age,
                verdict=w.eval_verdict,
            )
        )
    if w.oms:
        graph.attest(Statement((m_rd,), OMS_SIGNATURE, {"serialization": {"method": "files"}}))
    if w.scan is not None:
        graph.attest(_scan(model, w.scan, NOW - w.scan_age))
    if w.manifest:
        graph.attest(Statement((ResourceDescriptor.of("data-1", data),), DATASET_MANIFEST, {"shards": 1}))
    if w.role_policy:
        graph.attest(Statement((ResourceDescriptor.of("session-1", sess),), ROLE_POLICY, {"role": "coder"}))
    for name in w.signers:
        graph.attest(signoff_statement(model, keys[name], note="ok", recorded_at=NOW), [keys[name]])
    if w.taint == "self":
        graph.taints[model] = FakeTaint(model, "backdoor found", (model,), 3)
    elif w.taint == "ancestor":
        graph.taints[model] = FakeTaint(base, "poisoned generator", (base, data, model), 3)
    if w.ancestor_scan is not None:
        graph.attest(_scan(data, w.ancestor_scan, NOW))
    for f in w.extra:
        f(graph, model)
    return model


def _failed_oms(g: FakeGraph, m: Digest) -> None:
    g.attest(Statement((ResourceDescriptor.of("model-1", m),), OMS_SIGNATURE, {"verified": False}))


def _scan(d: Digest, verdict: str, when: Any) -> Statement:
    findings = []
    reason = None
    if verdict == "findings":
        findings = [Finding("LW-MODEL-001", Severity.HIGH, "bad opcode", Location("x.pkl"))]
    if verdict == "unverified":
        reason = "over the size limit"
    res = TargetResult.from_findings("x", ArtifactKind.MODEL, findings, unverified_reason=reason, digest=d)
    return scan_statement(res, check="models", tool_version="0", recorded_at=when)


def decide(policy: PolicyFile, graph: FakeGraph, model: Digest, action: Action = Action.PROMOTE) -> Decision:
    chain = audit_chain([PolicyVersion(policy_digest(policy), None, policy, 0, NOW, None)])
    return build_gate_policy(policy, Evidence(graph, None, NOW), chain).evaluate(
        GateRequest(model, action, NOW)
    )


D, E, A = Outcome.DENY, Outcome.ESCALATE, Outcome.ALLOW

# (id, world, expected outcome, rule ids that must ask for a non-allow outcome, text that must appear)
TABLE: list[tuple[str, World, Outcome, set[str], str]] = [
    (
        "below every level, no safeguards",
        World(score=0.1, oms=False, scan=None, manifest=False, role_policy=False, signers=()),
        A,
        set(),
        "",
    ),
    ("level reached, every safeguard holds", World(), A, set(), ""),
    (
        "level reached, weights not signed",
        World(oms=False),
        D,
        {"LW-LOOP-052"},
        "'weights-signed' is missing",
    ),
    ("level reached, no scan", World(scan=None), D, {"LW-LOOP-052"}, "'scan-clean' is missing"),
    (
        "level reached, scan has findings",
        World(scan="findings"),
        D,
        {"LW-LOOP-052", "LW-LOOP-051"},
        "'scan-clean' is failing",
    ),
    (
        "level reached, scan unverified",
        World(scan="unverified"),
        D,
        {"LW-LOOP-052", "LW-LOOP-051"},
        "'scan-clean' is unverified",
    ),
    (
        "level reached, scan stale",
        World(scan_age=timedelta(days=8)),
        D,
        {"LW-LOOP-052"},
        "'scan-clean' is stale",
    ),
    (
        "level reached, dataset without manifest",
        World(manifest=False),
        D,
        {"LW-LOOP-052"},
        "'data-provenance' is failing",
    ),
    (
        "level reached, agent session without role policy",
        World(role_policy=False),
        D,
        {"LW-LOOP-052"},
        "'agents-least-privilege' is failing",
    ),
    (
        "level reached, one sign-off",
        World(signers=("alice",)),
        D,
        {"LW-LOOP-052"},
        "'two-person-signoff' is failing",
    ),
    ("level reached, no sign-off", World(signers=()), D, {"LW-LOOP-052"}, "'two-person-signoff' is missing"),
    (
        "level reached, human + agent sign-off",
        World(signers=("alice", "loop-agent")),
        D,
        {"LW-LOOP-052"},
        "'two-person-signoff'",
    ),
    (
        "level reached, same human twice",
        World(signers=("alice", "alice")),
        D,
        {"LW-LOOP-052"},
        "'two-person-signoff'",
    ),
    (
        "critical level denies whatever the safeguards",
        World(score=0.95),
        D,
        {"LW-LOOP-062"},
        "denies promote",
    ),
    ("missing eval", World(score=None), D, {"LW-LOOP-053"}, "no score"),
    ("stale eval", World(eval_age=timedelta(days=31)), D, {"LW-LOOP-054"}, "not fresh"),
    ("eval dated in the future", World(eval_age=-timedelta(days=2)), D, {"LW-LOOP-054"}, "not fresh"),
    ("eval within the clock skew", World(eval_age=-timedelta(minutes=2)), A, set(), ""),
    (
        "signature record says verification failed",
        World(oms=False, extra=[_failed_oms]),
        D,
        {"LW-LOOP-052"},
        "'weights-signed' is missing",
    ),
    ("unverified eval", World(eval_verdict="unverified"), D, {"LW-LOOP-055"}, "unverified"),
    ("tainted artifact", World(taint="self"), D, {"LW-LOOP-050"}, "quarantined"),
    ("tainted ancestor", World(taint="ancestor"), D, {"LW-LOOP-050"}, "descends from quarantined"),
    (
        "ancestor scan with findings",
        World(ancestor_scan="findings"),
        D,
        {"LW-LOOP-051"},
        "has findings up to high",
    ),
    ("ancestor scan unverified", World(ancestor_scan="unverified"), D, {"LW-LOOP-051"}, "unverified"),
    ("clean ancestors", World(ancestor_scan="clean"), A, set(), ""),
    ("below every level, but tainted", World(score=0.1, taint="ancestor"), D, {"LW-LOOP-050"}, ""),
]


@pytest.mark.parametrize(
    ("world", "outcome", "rules", "text"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE]
)
def test_decision_table(
    keys: dict[str, PrivateKey],
    fake_graph: Callable[[], FakeGraph],
    world: World,
    outcome: Outcome,
    rules: set[str],
    text: str,
) -> None:
    graph = fake_graph()
    model = build(world, graph, keys)
    d = decide(table_policy(keys), graph, model)
    assert d.outcome is outcome, [r.to_json() for r in d.reasons]
    asked = {r.rule_id for r in d.failing()}
    assert asked == rules, [r.to_json() for r in d.reasons]
    assert text in " | ".join(r.message for r in d.reasons)
    assert d.exit_code() == (0 if outcome is A else 1)


def test_every_failing_reason_is_reported(
    keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]
) -> None:
    graph = fake_graph()
    model = build(
        World(oms=False, scan=None, manifest=False, role_policy=False, signers=(), taint="self"), graph, keys
    )
    d = decide(table_policy(keys), graph, model)
    sgs = {r.evidence["safeguard"] for r in d.failing() if r.rule_id == "LW-LOOP-052"}
    assert sgs == set(SAFEGUARDS)
    assert "LW-LOOP-050" in {r.rule_id for r in d.failing()}


def test_missing_eval_can_escalate(keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]) -> None:
    graph = fake_graph()
    model = build(World(score=None), graph, keys)
    d = decide(table_policy(keys, gate={"missing_eval": "escalate"}), graph, model)
    assert d.outcome is E
    assert {r.rule_id for r in d.failing()} == {"LW-LOOP-053"}
    # stale evidence follows the same setting; unverified evidence always denies
    graph = fake_graph()
    model = build(World(eval_age=timedelta(days=40)), graph, keys)
    assert decide(table_policy(keys, gate={"missing_eval": "escalate"}), graph, model).outcome is E
    graph = fake_graph()
    model = build(World(eval_verdict="unverified"), graph, keys)
    assert decide(table_policy(keys, gate={"missing_eval": "escalate"}), graph, model).outcome is D


def test_escalating_level(keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]) -> None:
    policy = table_policy(keys)
    doc = policy.to_json()
    doc["capabilities"]["cap"]["levels"][1]["on_reached"] = "escalate"
    doc["capabilities"]["cap"]["levels"][1]["safeguards"] = ["weights-signed"]
    p = parse_policy(doc, source="t")
    graph = fake_graph()
    model = build(World(score=0.95), graph, keys)
    d = decide(p, graph, model)
    assert d.outcome is E
    assert {r.rule_id for r in d.failing()} == {"LW-LOOP-062"}
    graph = fake_graph()
    model = build(World(score=0.95, oms=False), graph, keys)
    assert decide(p, graph, model).outcome is D  # a missing safeguard still denies before any human decides


def test_action_not_gated_is_allowed(
    keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]
) -> None:
    graph = fake_graph()
    model = build(World(score=0.95, oms=False, signers=()), graph, keys)
    assert decide(table_policy(keys), graph, model, Action.DEPLOY_INTERNAL).outcome is A
    # ...but taint denies every action
    graph = fake_graph()
    model = build(World(taint="ancestor"), graph, keys)
    assert decide(table_policy(keys), graph, model, Action.TRAIN_SUCCESSOR).outcome is D


def test_wrong_suite_or_metric_does_not_count(
    keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]
) -> None:
    def other_suite(g: FakeGraph, m: Digest) -> None:
        g.attest(
            eval_result_statement(
                m, suite="s", suite_digest=dig("other"), metric="score", value=0.0, recorded_at=NOW
            )
        )
        g.attest(
            eval_result_statement(
                m, suite="s", suite_digest=SUITE, metric="other", value=0.0, recorded_at=NOW
            )
        )

    graph = fake_graph()
    model = build(World(score=None, extra=[other_suite]), graph, keys)
    d = decide(table_policy(keys), graph, model)
    assert {r.rule_id for r in d.failing()} == {"LW-LOOP-053"}


def test_latest_score_counts(keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]) -> None:
    def rescored(g: FakeGraph, m: Digest) -> None:
        g.attest(
            eval_result_statement(
                m, suite="s", suite_digest=SUITE, metric="score", value=0.95, recorded_at=NOW
            )
        )

    graph = fake_graph()
    model = build(World(score=0.1, extra=[rescored]), graph, keys)
    assert {r.rule_id for r in decide(table_policy(keys), graph, model).failing()} == {"LW-LOOP-062"}


def test_lineage_eval_run_scores_count_but_need_a_time(
    keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]
) -> None:
    """LINEAGE's eval-run records carry scores; without a recorded time they are stale (fail closed)."""

    def run(when: str | None) -> Callable[[FakeGraph, Digest], None]:
        def f(g: FakeGraph, m: Digest) -> None:
            pred: dict[str, Any] = {
                "model": ResourceDescriptor.of("model-1", m).to_json(),
                "suite": ResourceDescriptor.of("suite", SUITE).to_json(),
                "evalRun": ResourceDescriptor.of("run", dig("run")).to_json(),
                "scores": {"score": 0.1},
                "generation": 1,
            }
            if when:
                pred["recorded_at"] = when
            g.attest(
                Statement(
                    (ResourceDescriptor.of("m", m), ResourceDescriptor.of("run", dig("run"))), EVAL_RUN, pred
                )
            )

        return f

    graph = fake_graph()
    model = build(World(score=None, extra=[run(None)]), graph, keys)
    assert {r.rule_id for r in decide(table_policy(keys), graph, model).failing()} == {"LW-LOOP-054"}
    graph = fake_graph()
    model = build(World(score=None, extra=[run("2026-06-01T00:00:00Z")]), graph, keys)
    assert decide(table_policy(keys), graph, model).outcome is A


def test_lower_is_more_capable(keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]) -> None:
    doc = table_policy(keys).to_json()
    doc["capabilities"]["cap"]["direction"] = "lower-is-more-capable"
    doc["capabilities"]["cap"]["levels"] = [
        {"name": "high", "threshold": 60, "on_reached": "deny", "gates": ["promote"]}
    ]
    p = parse_policy(doc, source="t")
    for score, outcome in ((90.0, A), (60.0, D), (10.0, D)):
        graph = fake_graph()
        model = build(World(score=score), graph, keys)
        assert decide(p, graph, model).outcome is outcome, score


# -- collective (loop-scoped) capability ---------------------------------------------------------------


def _loop_policy(keys: dict[str, PrivateKey], combine: str, **cap: Any) -> PolicyFile:
    doc = table_policy(keys).to_json()
    doc["capabilities"]["cap"].update(scope="loop", combine=combine, **cap)
    doc["capabilities"]["cap"]["levels"] = [
        {"name": "high", "threshold": 1.0, "on_reached": "deny", "gates": ["train-successor"]}
    ]
    return parse_policy(doc, source="loop")


def _generation(graph: FakeGraph, scores: dict[str, float | None]) -> Digest:
    first = None
    for name, value in scores.items():
        kind = ArtifactKind.AGENT_SESSION if name.startswith("agent") else ArtifactKind.MODEL
        d = graph.add(name, kind, 3)
        first = first or d
        if value is not None:
            graph.attest(
                eval_result_statement(
                    d, suite="s", suite_digest=SUITE, metric="score", value=value, recorded_at=NOW
                )
            )
    graph.add("other-gen-model", ArtifactKind.MODEL, 2)  # another generation does not count
    graph.attest(
        eval_result_statement(
            dig("other-gen-model"), suite="s", suite_digest=SUITE, metric="score", value=99.0, recorded_at=NOW
        )
    )
    assert first is not None
    return first


@pytest.mark.parametrize(
    ("combine", "extra", "scores", "outcome"),
    [
        ("max", {}, {"m-a": 0.6, "m-b": 0.7, "agent-1": 0.5}, A),
        ("max", {}, {"m-a": 0.6, "m-b": 1.2, "agent-1": 0.5}, D),
        ("sum", {}, {"m-a": 0.4, "m-b": 0.4, "agent-1": 0.3}, D),  # each alone far below, together above
        ("sum", {}, {"m-a": 0.4, "m-b": 0.4, "agent-1": 0.1}, A),
        ("weighted-sum", {"weights": {"agent-session": 0.5}}, {"m-a": 0.4, "m-b": 0.4, "agent-1": 0.3}, A),
        ("weighted-sum", {"weights": {"agent-session": 2.0}}, {"m-a": 0.4, "m-b": 0.2, "agent-1": 0.3}, D),
        ("max", {}, {"m-a": 0.1, "m-b": None, "agent-1": 0.1}, D),  # a member without a score: missing eval
        ("max", {"members": ["model"]}, {"m-a": 0.1, "m-b": 0.1, "agent-1": None}, A),
    ],
)
def test_collective_capability(
    keys: dict[str, PrivateKey],
    fake_graph: Callable[[], FakeGraph],
    combine: str,
    extra: dict[str, Any],
    scores: dict[str, float | None],
    outcome: Outcome,
) -> None:
    graph = fake_graph()
    target = _generation(graph, scores)
    d = decide(_loop_policy(keys, combine, **extra), graph, target, Action.TRAIN_SUCCESSOR)
    assert d.outcome is outcome, [r.to_json() for r in d.reasons]
    if outcome is D and None in scores.values():
        assert {r.rule_id for r in d.failing()} == {"LW-LOOP-053"}


def test_policy_not_recorded_or_not_head(
    keys: dict[str, PrivateKey], fake_graph: Callable[[], FakeGraph]
) -> None:
    policy = table_policy(keys)
    graph = fake_graph()
    model = build(World(), graph, keys)
    empty = audit_chain([])
    d = build_gate_policy(policy, Evidence(graph, None, NOW), empty).evaluate(
        GateRequest(model, Action.PROMOTE, NOW)
    )
    assert d.outcome is D
    assert {r.rule_id for r in d.failing()} == {"LW-LOOP-061"}
    assert "not recorded" in d.failing()[0].message
    newer = table_policy(keys, evidence={"max_age": "10d"})
    chain = audit_chain(
        [
            PolicyVersion(policy_digest(policy), None, policy, 0, NOW, None),
            PolicyVersion(policy_digest(newer), version_id(policy_digest(policy), None), newer, 1, NOW, None),
        ]
    )
    d = build_gate_policy(policy, Evidence(graph, None, NOW), chain).evaluate(
        GateRequest(model, Action.PROMOTE, NOW)
    )
    assert {r.rule_id for r in d.failing()} == {"LW-LOOP-061"}
    assert "not the recorded head" in d.failing()[0].message


@pytest.mark.parametrize(
    ("severity", "rule", "outcome"),
    [
        (Severity.CRITICAL, "LW-LOOP-001", A),  # lineage's own taint finding: reported once, as LW-LOOP-050
        (Severity.CRITICAL, "LW-LOOP-010", D),
        (Severity.HIGH, "LW-LOOP-003", E),
        (Severity.MEDIUM, "LW-LOOP-005", E),  # at the default gate.ancestor_fail_on (medium)
        (Severity.LOW, "LW-LOOP-004", A),
    ],
)
def test_lineage_findings_map_to_outcomes(
    keys: dict[str, PrivateKey],
    fake_graph: Callable[[], FakeGraph],
    severity: Severity,
    rule: str,
    outcome: Outcome,
) -> None:
    graph = fake_graph()
    model = build(World(), graph, keys)
    policy = table_policy(keys)
    chain = audit_chain([PolicyVersion(policy_digest(policy), None, policy, 0, NOW, None)])
    found = [Finding(rule, severity, "lineage says so", Location(str(model)))]
    gate_policy = build_gate_policy(
        policy, Evidence(graph, None, NOW), chain, lineage_findings=lambda d: found
    )
    d = gate_policy.evaluate(GateRequest(model, Action.PROMOTE, NOW))
    assert d.outcome is outcome
    assert (rule in {r.rule_id for r in d.reasons}) == (rule != "LW-LOOP-001")
