"""The record, lineage, quarantine and clear command groups: arguments, outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopwarden._cli.main import main
from loopwarden.attest.keys import generate
from loopwarden.domain import Digest
from loopwarden.lineage import LineageGraph, hash_path
from loopwarden.workspace import Workspace, init_workspace

H = {c: f"sha256:{c * 64}" for c in "abcdef"}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws", name="cli")


def cli(ws: Workspace, *argv: str) -> int:
    return main(["--workspace", str(ws.root), *argv])


def test_record_every_kind_then_query(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "shard.jsonl"
    data.write_text('{"x": 1}\n')
    code = tmp_path / "trainer"
    code.mkdir()
    (code / "train.py").write_text("pass\n")
    assert (
        cli(
            ws,
            "record",
            "train",
            "--model",
            f"m1={H['a']}",
            "--dataset",
            str(data),
            "--code",
            str(code),
            "--generation",
            "1",
            "--builder",
            "https://ci.example/train",
            "--param",
            "lr=0.1",
        )
        == 0
    )
    assert (
        cli(
            ws,
            "record",
            "generate",
            "--model",
            H["a"],
            "--dataset",
            f"d2={H['b']}",
            "--eval",
            f"s2={H['c']}",
            "--generation",
            "2",
        )
        == 0
    )
    assert (
        cli(
            ws,
            "record",
            "agent-session",
            "--session",
            f"sess={H['d']}",
            "--model",
            H["a"],
            "--role",
            "coder",
            "--code",
            f"c2={H['e']}",
            "--generation",
            "2",
        )
        == 0
    )
    assert (
        cli(
            ws,
            "record",
            "train",
            "--model",
            f"m2={H['f']}",
            "--dataset",
            H["b"],
            "--code",
            H["e"],
            "--base-model",
            H["a"],
            "--generation",
            "2",
        )
        == 0
    )
    capsys.readouterr()
    assert (
        cli(
            ws,
            "--json",
            "record",
            "eval",
            "--eval-run",
            "e2=sha256:" + "0" * 64,
            "--model",
            H["f"],
            "--suite",
            H["c"],
            "--score",
            "cyber=0.3",
            "--generation",
            "2",
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["index"] == 4
    assert cli(ws, "record", "promote", H["f"], "--stage", "production") == 0
    capsys.readouterr()
    g = LineageGraph.from_workspace(ws)
    assert hash_path(data) in g
    assert hash_path(code) in g
    assert cli(ws, "lineage", "descendants", H["a"], "--format", "json") == 0
    view = json.loads(capsys.readouterr().out)
    want = {
        H["b"],
        H["c"],
        H["d"],
        H["e"],
        H["f"],
        "sha256:" + "0" * 64,
    }  # the eval run is built from suite c
    assert {n["digest"] for n in view["nodes"]} - {H["a"]} == want
    assert view["count"] == len(want)
    assert cli(ws, "lineage", "ancestors", H["f"], "--json") == 0
    anc = {n["digest"] for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert {
        H["a"],
        H["b"],
        H["d"],
        H["e"],
        str(hash_path(data)),
        str(hash_path(code)),
        "sha256:" + "0" * 64,
    } < anc
    assert cli(ws, "lineage", "show", H["f"]) == 0
    out = capsys.readouterr().out
    assert "promoted to production" in out
    assert "not tainted" in out
    assert cli(ws, "lineage", "path", H["a"], H["e"], "--format", "mermaid") == 0
    assert "-->|acted-for|" in capsys.readouterr().out
    assert cli(ws, "lineage", "path", str(hash_path(data)), H["c"]) == 0  # data -> m1 -> c
    assert cli(ws, "lineage", "path", H["b"], H["e"]) == 1  # siblings: no directed path
    assert "no path" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["record", "train", "--model", H["a"], "--generation", "1"],  # no inputs
        [
            "record",
            "eval",
            "--eval-run",
            H["a"],
            "--model",
            H["b"],
            "--score",
            "acc=high",
            "--generation",
            "1",
        ],
        ["record", "generate", "--model", H["a"], "--dataset", H["a"], "--generation", "1"],  # self loop
        ["record", "generate", "--model", H["a"], "--dataset", "missing.bin", "--generation", "1"],
        ["record", "generate", "--model", H["a"], "--dataset", H["b"], "--generation", "-1"],
        ["record", "train", "--model", H["a"], "--dataset", H["b"]],  # --generation is required
    ],
)
def test_bad_records_exit_2_and_write_nothing(ws: Workspace, argv: list[str]) -> None:
    assert cli(ws, *argv) == 2
    with ws.open_ledger(writable=False) as led:
        assert led.size() == 0


def test_quarantine_unknown_needs_allow_unknown(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(ws, "quarantine", H["a"], "--reason", "leaked", "--reporter", "sec") == 2
    assert H["a"] in capsys.readouterr().err
    assert cli(ws, "quarantine", H["a"], "--reason", "leaked", "--reporter", "sec", "--allow-unknown") == 0
    # a later record that uses the quarantined artifact is tainted at once
    assert cli(ws, "record", "train", "--model", H["b"], "--dataset", H["a"], "--generation", "1") == 0
    assert LineageGraph.from_workspace(ws).taint(Digest.parse(H["b"])) is not None


def _reviewers(ws: Workspace, humans: list[str], agents: list[str], threshold: int = 2) -> Workspace:
    cfg = ws.root / "loopwarden.toml"
    h = ", ".join(f'"{p}"' for p in humans)
    a = ", ".join(f'"{p}"' for p in agents)
    cfg.write_text(
        cfg.read_text() + f"\n[reviewers]\nhumans = [{h}]\nagents = [{a}]\n"
        f"clearance_threshold = {threshold}\n"
    )
    return Workspace.load(ws.root)


def test_clear_exit_codes(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    keys = {}
    for name in ("alice", "bob", "bot"):
        k = generate()
        k.save(ws.root / f"{name}.key")
        (ws.root / f"{name}.pub").write_bytes(k.public().pem())
        keys[name] = k
    ws = _reviewers(ws, ["alice.pub", "bob.pub"], ["bot.pub"])
    assert cli(ws, "record", "generate", "--model", H["a"], "--dataset", H["b"], "--generation", "1") == 0
    assert cli(ws, "quarantine", H["a"], "--reason", "trigger found", "--reporter", "ci") == 0
    assert cli(ws, "clear", H["a"], "--key", str(ws.root / "bot.key"), "--reason", "fine") == 1
    assert "does NOT count" in capsys.readouterr().out
    assert cli(ws, "clear", H["a"], "--key", str(ws.root / "alice.key"), "--reason", "re-scanned") == 0
    assert "1 of 2" in capsys.readouterr().out
    assert (
        cli(ws, "--json", "clear", H["a"], "--key", str(ws.root / "bob.key"), "--reason", "re-scanned") == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["cleared"] is True
    assert res["counts"] is True
    # the workspace's own key can never act as a reviewer
    assert (
        cli(ws, "clear", H["a"], "--key", str(ws.root / ".loopwarden/keys/signing.key"), "--reason", "x") == 2
    )
    # an unknown digest is named
    assert cli(ws, "clear", H["f"], "--key", str(ws.root / "alice.key"), "--reason", "x") == 2
    assert H["f"] in capsys.readouterr().err


def test_reviewer_config_is_validated(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    k = generate()
    (ws.root / "k.pub").write_bytes(k.public().pem())
    bad = _reviewers(ws, ["k.pub"], ["k.pub"])
    assert cli(bad, "lineage", "show") == 2
    assert "both a human and an agent" in capsys.readouterr().err
    cfg = ws.root / "loopwarden.toml"
    cfg.write_text(cfg.read_text().split("\n[reviewers]")[0])
    bad = _reviewers(ws, [".loopwarden/keys/signing.pub"], [])
    assert cli(bad, "lineage", "show") == 2
    assert "workspace trusted key" in capsys.readouterr().err
    cfg.write_text(cfg.read_text().split("\n[reviewers]")[0] + "\n[reviewers]\nclearance_threshold = 0\n")
    assert cli(ws, "lineage", "show") == 2
    assert "clearance_threshold" in capsys.readouterr().err
