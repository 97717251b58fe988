"""The ``policy`` and ``gate`` command groups: each sub-command through ``main(argv)``, exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from policy_helpers import clone

from loopwarden._cli.main import main
from loopwarden.attest.keys import PrivateKey
from loopwarden.attest.predicates import EVAL_RESULT, SIGNOFF
from loopwarden.domain import ArtifactKind, Digest
from loopwarden.lineage import Artifact, record_train
from loopwarden.workspace import Workspace, init_workspace

SUITE = "sha256:2301b18dae6adf41f30e8684f63d4d2f68014331850d578ddc2b7fc1ddc3fb81"
REPL = "sha256:7b891b357cf1e782bcb2dd50bd68b933b0a8e33ac32e256bdc410c3834c43a15"


@pytest.fixture
def setup(
    tmp_path: Path, example_raw: dict[str, Any], keys: dict[str, PrivateKey]
) -> tuple[Workspace, Digest]:
    ws = init_workspace(tmp_path / "ws", name="cli")
    for name, k in keys.items():
        k.save(ws.root / f"{name}.key")
    (ws.root / "policy.yaml").write_text(yaml.safe_dump(example_raw), encoding="utf-8")
    cfg = ws.root / "loopwarden.toml"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace("[paths]\n", '[paths]\npolicy = "policy.yaml"\n'))
    model = Artifact(Digest.sha256(b"model"), ArtifactKind.MODEL, "model", 1)
    data = Artifact(Digest.sha256(b"data"), ArtifactKind.DATASET, "data", 1)
    record_train(Workspace.load(ws.root), model=model, datasets=[data], generation=1)
    return Workspace.load(ws.root), model.digest


def _cli(ws: Workspace, *argv: str) -> int:
    return main(["--workspace", str(ws.root), *argv])


NOW = ["--now", "2026-06-01T12:00:00Z"]


def test_check_prints_digest_and_bad_file_is_exit_2(
    setup: tuple[Workspace, Digest], example_raw: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _ = setup
    assert _cli(ws, "--json", "policy", "check", str(ws.root / "policy.yaml")) == 0
    assert json.loads(capsys.readouterr().out)["digest"].startswith("sha256:")
    raw = clone(example_raw)
    raw["change_control"]["approvals_needed"] = 1
    bad = ws.root / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["policy", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "unknown field 'change_control.approvals_needed'" in err


def test_gate_uses_configured_policy_and_evidence_recorded_by_cli(
    setup: tuple[Workspace, Digest], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, model = setup
    assert _cli(ws, "policy", "record", str(ws.root / "policy.yaml"), *NOW) == 0
    capsys.readouterr()
    # no scores yet: the missing evals deny
    assert _cli(ws, "gate", str(model), "--action", "promote", *NOW) == 1
    out = capsys.readouterr().out
    assert out.startswith("DENY")
    assert "LW-LOOP-053" in out
    # cyber-offense at 0.45 reaches 'high': needs weights-signed, scan-clean, data-provenance, two sign-offs
    args = ["policy", "eval-result", str(model), "--suite", "cyber-ctf", "--suite-digest", SUITE]
    assert _cli(ws, *args, "--metric", "solve_rate", "--value", "0.45", *NOW) == 0
    args = ["policy", "eval-result", str(model), "--suite", "replication-bench", "--suite-digest", REPL]
    assert _cli(ws, *args, "--metric", "minutes_to_replicate", "--value", "300", *NOW) == 0
    capsys.readouterr()
    assert _cli(ws, "--json", "gate", str(model), "--action", "promote", *NOW) == 1
    doc = json.loads(capsys.readouterr().out)
    missing = {r["evidence"]["safeguard"] for r in doc["reasons"] if r["rule_id"] == "LW-LOOP-052"}
    assert missing == {"weights-signed", "scan-clean", "data-provenance", "two-person-signoff"}
    for who in ("alice", "bob"):
        assert _cli(ws, "policy", "signoff", str(model), "--key", str(ws.root / f"{who}.key"), *NOW) == 0
    capsys.readouterr()
    assert _cli(ws, "--json", "gate", str(model), "--action", "promote", *NOW) == 1
    doc = json.loads(capsys.readouterr().out)
    missing = {r["evidence"]["safeguard"] for r in doc["reasons"] if r["rule_id"] == "LW-LOOP-052"}
    assert missing == {"weights-signed", "scan-clean", "data-provenance"}
    with ws.open_ledger(writable=False) as led:
        assert len(list(led.entries(subject=model, predicate_type=SIGNOFF))) == 2
        assert len(list(led.entries(subject=model, predicate_type=EVAL_RESULT))) == 2


def test_show_and_diff_against_recorded_digests(
    setup: tuple[Workspace, Digest], example_raw: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _ = setup
    assert (
        _cli(
            ws,
            "--json",
            "policy",
            "record",
            str(ws.root / "policy.yaml"),
            "--proposer-key",
            str(ws.root / "alice.key"),
            *NOW,
        )
        == 0
    )
    v1 = json.loads(capsys.readouterr().out)["version"]
    raw = clone(example_raw)
    raw["gate"]["missing_eval"] = "escalate"
    (ws.root / "p2.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert (
        _cli(
            ws,
            "--json",
            "policy",
            "record",
            str(ws.root / "p2.yaml"),
            "--proposer-key",
            str(ws.root / "bob.key"),
            *NOW,
        )
        == 0
    )
    v2 = json.loads(capsys.readouterr().out)["version"]
    assert _cli(ws, "--json", "policy", "diff", v1, v2) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [c["class"] for c in doc["changes"]] == ["gate-weakened"]
    assert _cli(ws, "--json", "policy", "show") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [v["version"] for v in shown["versions"]] == [v1, v2]
    assert [f["rule_id"] for f in shown["findings"]] == ["LW-LOOP-056"]
    assert (
        _cli(ws, "policy", "approve", v2, "--key", str(ws.root / "loop-agent.key")) == 0
    )  # recorded, not counted
    assert _cli(ws, "policy", "audit") == 1
    assert _cli(ws, "policy", "diff", "sha256:" + "0" * 64, v2) == 2


def test_unknown_action_and_bad_time_are_usage_errors(setup: tuple[Workspace, Digest]) -> None:
    ws, model = setup
    assert _cli(ws, "gate", str(model), "--action", "launch") == 2
    assert _cli(ws, "gate", str(model), "--action", "promote", "--now", "yesterday") == 2
    assert _cli(ws, "gate", str(model), "--action", "promote", "--now", "2026-06-01T12:00:00") == 2  # no zone
