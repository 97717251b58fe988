"""End to end: the gate over LINEAGE's 4-generation loop in a real workspace ledger.

Quarantine generation 2's model: the gate denies every tainted descendant and allows the clean model; one
human reviewer's clearance is not enough, two distinct human reviewers' are. The policy chain is live: an
unapproved loosening recorded in the ledger denies everything until its approvals are recorded, and slow drift
escalates.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopwarden._cli.main import main
from loopwarden.attest.keys import generate
from loopwarden.attest.predicates import GATE_DECISION
from loopwarden.domain import Digest
from loopwarden.lineage import clear, quarantine
from loopwarden.policy import (
    Action,
    GateResult,
    Outcome,
    approve_policy,
    gate,
    load_policy,
    record_eval_result,
    record_policy,
)
from tests.integration._loop_builder import Loop, build_loop, expected_blast_radius_of_model_2

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CYBER = Digest.parse("sha256:2301b18dae6adf41f30e8684f63d4d2f68014331850d578ddc2b7fc1ddc3fb81")
REPLICATION = Digest.parse("sha256:7b891b357cf1e782bcb2dd50bd68b933b0a8e33ac32e256bdc410c3834c43a15")
MODELS = ("model-1", "model-2", "model-3", "model-4")


def _policy_doc(loop: Loop) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    bind = {
        "alice": loop.keys["alice"],
        "bob": loop.keys["bob"],
        "carol": generate(),
        "loop-agent": loop.keys["agent"],
    }
    for p in raw["people"]:
        p["keyid"] = bind[p["name"]].keyid
    return raw


def _write(loop: Loop, raw: dict[str, Any], name: str = "policy.yaml") -> Path:
    path = loop.ws.root / name
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def loop(tmp_path: Path) -> Loop:
    lp = build_loop(tmp_path / "ws")
    policy_file = _write(lp, _policy_doc(lp))
    record_policy(lp.ws, load_policy(policy_file), proposer=lp.keys["alice"], now=NOW)
    for name in MODELS:  # every model measured well below every level that gates promote
        record_eval_result(
            lp.ws,
            lp.d(name),
            suite="cyber-ctf",
            suite_digest=CYBER,
            metric="solve_rate",
            value=0.1,
            recorded_at=NOW - timedelta(days=1),
        )
        record_eval_result(
            lp.ws,
            lp.d(name),
            suite="replication-bench",
            suite_digest=REPLICATION,
            metric="minutes_to_replicate",
            value=240.0,
            recorded_at=NOW - timedelta(days=1),
        )
    return lp


def _gate(loop: Loop, name: str, *, policy: str = "policy.yaml") -> GateResult:
    return gate(loop.ws, loop.d(name), Action.PROMOTE, load_policy(loop.ws.root / policy), now=NOW)


def _rules(r: GateResult) -> set[str]:
    return {x.rule_id for x in r.decision.failing()}


def test_every_model_is_allowed_before_quarantine(loop: Loop) -> None:
    for name in MODELS:
        r = _gate(loop, name)
        assert r.decision.outcome is Outcome.ALLOW, (name, [x.to_json() for x in r.decision.reasons])


def test_gate_denies_every_tainted_descendant_and_allows_clean_ones(loop: Loop) -> None:
    quarantine(loop.ws, loop.art["model-2"], reason="backdoor trigger found", reporter="scanner@ci")
    tainted = expected_blast_radius_of_model_2() | {"model-2"}
    for name in sorted(loop.art):
        r = _gate(loop, name)
        if name in tainted:
            assert r.decision.outcome is Outcome.DENY, name
            assert "LW-LOOP-050" in _rules(r), name
            taint = next(x for x in r.decision.failing() if x.rule_id == "LW-LOOP-050")
            assert taint.evidence["source"] == str(loop.d("model-2"))
            assert taint.evidence["path"][0] == str(loop.d("model-2"))
            assert taint.evidence["path"][-1] == str(loop.d(name))
        else:
            assert "LW-LOOP-050" not in _rules(r), name
    assert _gate(loop, "model-1").decision.outcome is Outcome.ALLOW


def test_clearance_needs_two_distinct_human_reviewers(loop: Loop) -> None:
    quarantine(loop.ws, loop.art["model-2"], reason="backdoor trigger found", reporter="scanner@ci")
    clear(
        loop.ws,
        loop.art["model-2"],
        reason="false positive",
        reviewer_key=loop.keys["alice"],
        reviewer="alice",
    )
    for name in ("model-2", "model-3", "model-4"):
        assert "LW-LOOP-050" in _rules(_gate(loop, name)), name
    clear(
        loop.ws, loop.art["model-2"], reason="false positive", reviewer_key=loop.keys["agent"], reviewer="bot"
    )
    clear(loop.ws, loop.art["model-2"], reason="again", reviewer_key=loop.keys["alice"], reviewer="alice")
    assert "LW-LOOP-050" in _rules(_gate(loop, "model-3"))  # an agent and the same human twice do not count
    clear(
        loop.ws,
        loop.art["model-2"],
        reason="confirmed false positive",
        reviewer_key=loop.keys["bob"],
        reviewer="bob",
    )
    for name in ("model-2", "model-3", "model-4"):
        r = _gate(loop, name)
        assert "LW-LOOP-050" not in _rules(r), name
        if name == "model-2":
            # cleared, but an AI agent's key tried to clear it: a person decides (LINEAGE's LW-LOOP-003)
            assert r.decision.outcome is Outcome.ESCALATE
            assert _rules(r) == {"LW-LOOP-003"}
        else:
            assert r.decision.outcome is Outcome.ALLOW, (name, [x.to_json() for x in r.decision.reasons])


def test_two_humans_clear_without_any_agent_attempt_allows(loop: Loop) -> None:
    quarantine(loop.ws, loop.art["model-2"], reason="backdoor trigger found", reporter="scanner@ci")
    for who in ("alice", "bob"):
        clear(
            loop.ws, loop.art["model-2"], reason="false positive", reviewer_key=loop.keys[who], reviewer=who
        )
    for name in MODELS:
        assert _gate(loop, name).decision.outcome is Outcome.ALLOW, name


def test_decision_is_recorded_signed(loop: Loop) -> None:
    r = _gate(loop, "model-1")
    assert r.ledger_index is not None
    with loop.ws.open_ledger(writable=False) as led:
        entry = led.get(r.ledger_index)
    env = entry.envelope()
    env.verify(loop.ws.trusted_keys)
    st = env.statement()
    assert st.predicate_type == GATE_DECISION
    assert st.subject_digests() == [loop.d("model-1")]
    assert st.predicate["decision"] == "allow"
    assert st.predicate["action"] == "promote"


def test_unapproved_loosening_in_the_ledger_denies_until_approved(loop: Loop) -> None:
    raw = _policy_doc(loop)
    raw["people"] = yaml.safe_load((loop.ws.root / "policy.yaml").read_text(encoding="utf-8"))["people"]
    raw["capabilities"]["cyber-offense"]["levels"][0]["threshold"] = 0.25  # raised: a loosening
    path = _write(loop, raw, "loosened.yaml")
    vid, _ = record_policy(loop.ws, load_policy(path), proposer=loop.keys["alice"], now=NOW)
    r = _gate(loop, "model-1", policy="loosened.yaml")
    assert r.decision.outcome is Outcome.DENY
    assert _rules(r) == {"LW-LOOP-056"}
    # the old version is no longer the head either
    assert "LW-LOOP-061" in _rules(_gate(loop, "model-1"))
    approve_policy(loop.ws, vid, loop.keys["alice"], now=NOW)
    assert _rules(_gate(loop, "model-1", policy="loosened.yaml")) == {"LW-LOOP-056"}
    approve_policy(loop.ws, vid, loop.keys["bob"], now=NOW)
    assert _gate(loop, "model-1", policy="loosened.yaml").decision.outcome is Outcome.ALLOW


def test_slow_drift_escalates(loop: Loop) -> None:
    people = yaml.safe_load((loop.ws.root / "policy.yaml").read_text(encoding="utf-8"))["people"]
    for i, t in enumerate((0.21, 0.22, 0.23)):
        raw = _policy_doc(loop)
        raw["people"] = people
        raw["capabilities"]["cyber-offense"]["levels"][0]["threshold"] = t
        vid, _ = record_policy(
            loop.ws, load_policy(_write(loop, raw, f"step{i}.yaml")), proposer=loop.keys["bob"], now=NOW
        )
        approve_policy(loop.ws, vid, loop.keys["alice"], now=NOW)
        approve_policy(loop.ws, vid, loop.keys["bob"], now=NOW)
    r = _gate(loop, "model-1", policy="step2.yaml")
    assert r.decision.outcome is Outcome.ESCALATE
    assert _rules(r) == {"LW-LOOP-059"}


def _cli(loop: Loop, *argv: str) -> int:
    return main(["--workspace", str(loop.ws.root), *argv])


def test_cli_gate_exit_codes_and_json(loop: Loop, capsys: pytest.CaptureFixture[str]) -> None:
    quarantine(loop.ws, loop.art["model-2"], reason="backdoor", reporter="ci")
    capsys.readouterr()
    common = [
        "--action",
        "promote",
        "--policy",
        str(loop.ws.root / "policy.yaml"),
        "--now",
        "2026-06-01T12:00:00Z",
    ]
    assert _cli(loop, "gate", str(loop.d("model-1")), *common) == 0
    assert capsys.readouterr().out.startswith("ALLOW")
    assert _cli(loop, "--json", "gate", str(loop.d("model-3")), *common) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["decision"] == "deny"
    assert any(r["rule_id"] == "LW-LOOP-050" for r in doc["reasons"])
    prefix = str(loop.d("model-1"))[:20]  # a unique prefix resolves
    assert _cli(loop, "gate", prefix, *common, "--no-record") == 0


def test_cli_bad_policy_and_unknown_artifact_exit_2(loop: Loop, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _policy_doc(loop)
    raw["safeguards"]["scan-clean"]["max_agee"] = "7d"
    bad = _write(loop, raw, "bad.yaml")
    assert _cli(loop, "gate", str(loop.d("model-1")), "--action", "promote", "--policy", str(bad)) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "unknown field 'safeguards.scan-clean.max_agee'" in err
    assert _cli(loop, "policy", "check", str(bad)) == 2
    assert "max_agee" in capsys.readouterr().err
    unknown = "sha256:" + "0" * 64
    assert (
        _cli(loop, "gate", unknown, "--action", "promote", "--policy", str(loop.ws.root / "policy.yaml")) == 2
    )
    assert unknown in capsys.readouterr().err
    assert _cli(loop, "gate", str(loop.d("model-1")), "--action", "promote") == 2  # no policy configured
    assert "no policy file" in capsys.readouterr().err


def test_cli_policy_diff_audit_trend(loop: Loop, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    raw = _policy_doc(loop)
    raw["people"] = yaml.safe_load((loop.ws.root / "policy.yaml").read_text(encoding="utf-8"))["people"]
    raw["evidence"]["max_age"] = "90d"
    newer = _write(loop, raw, "newer.yaml")
    assert _cli(loop, "policy", "diff", str(loop.ws.root / "policy.yaml"), str(newer)) == 1
    assert "evidence-age-extended" in capsys.readouterr().out
    assert (
        _cli(loop, "policy", "diff", str(loop.ws.root / "policy.yaml"), str(loop.ws.root / "policy.yaml"))
        == 0
    )
    capsys.readouterr()
    assert _cli(loop, "policy", "audit") == 0
    capsys.readouterr()
    assert _cli(loop, "policy", "record", str(newer), "--proposer-key", str(loop.key_paths["alice"])) == 0
    capsys.readouterr()
    assert _cli(loop, "policy", "audit") == 1
    assert "LW-LOOP-056" in capsys.readouterr().out
    for who in ("alice", "bob"):
        assert _cli(loop, "policy", "approve", str(newer), "--key", str(loop.key_paths[who])) == 0
    capsys.readouterr()
    assert _cli(loop, "policy", "audit") == 0
    capsys.readouterr()
    assert _cli(loop, "--json", "policy", "trend") == 0
    doc = json.loads(capsys.readouterr().out)
    rows = {(r["generation"], r["capability"]): r for r in doc["generations"]}
    assert rows[(1, "cyber-offense")]["score"] == pytest.approx(0.1)
    assert rows[(1, "cyber-offense")]["margins"]["early-warning"] == pytest.approx(0.1)
    assert rows[(2, "autonomous-replication")]["margins"]["high"] == pytest.approx(180.0)
    assert doc["threshold_history"]["cyber-offense/early-warning"][0]["threshold"] == 0.2
    assert len(doc["threshold_history"]["cyber-offense/early-warning"]) == 2
