"""End to end: a 4-generation loop in a real workspace ledger; quarantine, blast radius, two-person clearance,
byte-for-byte rebuild and tamper detection, all through the command line where the user would use it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from loopwarden._cli.main import main
from loopwarden.attest.dsse import sign_statement
from loopwarden.errors import LedgerIntegrityError
from loopwarden.lineage import LineageGraph, clearance_statement
from loopwarden.workspace import STATE_DIR
from tests.integration._loop_builder import Loop, build_loop, expected_blast_radius_of_model_2


@pytest.fixture
def loop(tmp_path: Path) -> Loop:
    return build_loop(tmp_path / "ws")


def _cli(loop: Loop, *argv: str) -> int:
    return main(["--workspace", str(loop.ws.root), *argv])


def _quarantine_model_2(loop: Loop, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        _cli(
            loop,
            "quarantine",
            str(loop.d("model-2")),
            "--reason",
            "backdoor trigger found",
            "--reporter",
            "scanner@ci",
        )
        == 0
    )
    capsys.readouterr()


def _blast_json(loop: Loop, capsys: pytest.CaptureFixture[str], name: str) -> dict:
    assert _cli(loop, "lineage", "blast-radius", str(loop.d(name)), "--format", "json") == 0
    return json.loads(capsys.readouterr().out)


def test_blast_radius_of_generation_2_model_is_exactly_its_descendants(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    _quarantine_model_2(loop, capsys)
    view = _blast_json(loop, capsys, "model-2")
    rows = [r for kinds in view["groups"].values() for rs in kinds.values() for r in rs]
    assert {loop.name_of(r["digest"]) for r in rows} == expected_blast_radius_of_model_2()
    assert view["count"] == 10
    assert view["quarantined"] is True
    # grouped by generation, then kind
    assert set(view["groups"]) == {"3", "4"}
    assert {loop.name_of(r["digest"]) for r in view["groups"]["4"]["code"]} == {"code-4-agent"}
    assert set(view["groups"]["3"]) == {"agent-session", "code", "dataset", "eval", "model"}
    # every path starts at model-2, ends at the row, and each hop is a recorded edge with that relation
    graph = LineageGraph.from_workspace(loop.ws)
    recorded = {(str(e.source), str(e.target), str(e.relation)) for e in graph.edges()}
    for r in rows:
        assert r["path"][0] == str(loop.d("model-2"))
        assert r["path"][-1] == r["digest"]
        assert len(r["relations"]) == len(r["path"]) - 1
        for a, b, rel in zip(r["path"], r["path"][1:], r["relations"], strict=False):
            assert (a, b, rel) in recorded
    paths = {loop.name_of(r["digest"]): [loop.name_of(p) for p in r["path"]] for r in rows}
    assert paths["evalrun-3"] == ["model-2", "evals-3-suite", "evalrun-3"]
    assert paths["code-3-agent"] == ["model-2", "session-3", "code-3-agent"]
    assert paths["model-3"] == ["model-2", "model-3"]
    assert len(paths["data-4-synth"]) == 3
    assert paths["data-4-synth"][1] == "model-3"
    # taint: the quarantined model and exactly its descendants
    tainted = {loop.name_of(d) for d in graph.tainted()}
    assert tainted == expected_blast_radius_of_model_2() | {"model-2"}
    t = graph.taint(loop.d("model-4"))
    assert t is not None
    assert t.source == loop.d("model-2")
    assert t.reason == "backdoor trigger found"
    assert (
        graph.taint(loop.d("evalrun-4")) is None
    )  # it scored a tainted model; the edge points into the model
    assert graph.taint(loop.d("model-1")) is None


def test_one_reviewer_is_not_enough_two_distinct_humans_are(
    loop: Loop, capsys: pytest.CaptureFixture[str]
) -> None:
    _quarantine_model_2(loop, capsys)
    m2 = str(loop.d("model-2"))

    def clear(who: str) -> int:
        rc = _cli(loop, "clear", m2, "--key", str(loop.key_paths[who]), "--reason", f"{who} re-ran the scans")
        capsys.readouterr()
        return rc

    def tainted() -> set[str]:
        return {loop.name_of(d) for d in LineageGraph.from_workspace(loop.ws).tainted()}

    everything = expected_blast_radius_of_model_2() | {"model-2"}
    assert clear("alice") == 0
    assert tainted() == everything  # one human is not enough
    assert clear("alice") == 0
    assert tainted() == everything  # the same human twice is still one
    assert clear("agent") == 1  # recorded, never counts
    assert clear("mallory") == 1  # an undeclared key never counts
    assert tainted() == everything
    assert clear("bob") == 0
    assert tainted() == set()
    graph = LineageGraph.from_workspace(loop.ws)
    status = graph.clearance_status(loop.d("model-2"))
    assert status["cleared"]
    assert len(status["human_reviewers"]) == 2
    whys = {c.keyid: (c.counts, c.why) for c in graph.clearances(loop.d("model-2"))}
    assert whys[loop.keys["agent"].keyid][0] is False
    assert "agent" in whys[loop.keys["agent"].keyid][1]
    assert whys[loop.keys["mallory"].keyid] == (
        False,
        "unknown reviewer key (not listed in [reviewers] humans)",
    )


def test_agent_key_never_clears_even_with_threshold_one(tmp_path: Path) -> None:
    loop = build_loop(tmp_path / "ws", threshold=1)
    from loopwarden.ledger import record
    from loopwarden.lineage import clear, quarantine

    quarantine(loop.ws, loop.art["model-2"], reason="poisoned", reporter="ci")
    clear(loop.ws, loop.art["model-2"], reason="looks fine to me", reviewer_key=loop.keys["agent"])
    graph = LineageGraph.from_workspace(loop.ws)
    assert graph.taint(loop.d("model-2")) is not None
    # An agent that names a human's key id in the predicate but cannot sign with it does not count either.
    forged = clearance_statement(
        target=loop.art["model-2"], reason="forged", reviewer_keyid=loop.keys["alice"].keyid
    )
    env = sign_statement(forged, [loop.ws.signer(), loop.keys["agent"]])
    with loop.ws.open_ledger() as led:
        led.append(env)
    graph = LineageGraph.from_workspace(loop.ws)
    assert graph.taint(loop.d("model-2")) is not None
    assert [c.counts for c in graph.clearances(loop.d("model-2"))] == [False, False]
    # a real human clearance (threshold 1) clears; a new quarantine afterwards needs a new clearance
    clear(loop.ws, loop.art["model-2"], reason="reviewed", reviewer_key=loop.keys["alice"])
    assert LineageGraph.from_workspace(loop.ws).taint(loop.d("model-3")) is None
    quarantine(loop.ws, loop.art["model-2"], reason="new evidence", reporter="ci")
    t = LineageGraph.from_workspace(loop.ws).taint(loop.d("model-3"))
    assert t is not None
    assert t.reason == "new evidence"
    _ = record


def test_rebuild_reproduces_the_graph_byte_for_byte(loop: Loop, capsys: pytest.CaptureFixture[str]) -> None:
    _quarantine_model_2(loop, capsys)
    assert _cli(loop, "lineage", "rebuild", "--format", "json") == 0
    first = json.loads(capsys.readouterr().out)
    index = Path(first["index"])
    data = index.read_bytes()
    assert index.parent == loop.ws.root / STATE_DIR
    index.unlink()
    assert _cli(loop, "lineage", "rebuild", "--format", "json") == 0
    second = json.loads(capsys.readouterr().out)
    assert index.read_bytes() == data
    assert second["sha256"] == first["sha256"]
    assert _cli(loop, "lineage", "rebuild", "--check") == 0
    assert "identical to the previous index" in capsys.readouterr().out
    assert LineageGraph.from_workspace(loop.ws).canonical_bytes() == data
    # the index reflects the ledger: a new record gives a different graph, and --check says so
    from loopwarden.lineage import record_promote

    record_promote(loop.ws, target=loop.art["model-1"], stage="production")
    assert _cli(loop, "lineage", "rebuild", "--check") == 1
    assert "DIFFERENT" in capsys.readouterr().out


@pytest.mark.parametrize("also_fix_leaf_hash", [False, True])
def test_tampered_ledger_entry_fails_the_rebuild_naming_it(
    loop: Loop, capsys: pytest.CaptureFixture[str], also_fix_leaf_hash: bool
) -> None:
    from loopwarden.ledger.merkle import leaf_hash

    db = sqlite3.connect(loop.ws.ledger_path)
    (data,) = db.execute("SELECT data FROM entries WHERE idx = 3").fetchone()
    env = json.loads(data)
    import base64

    stmt = json.loads(base64.b64decode(env["payload"]))
    # point the recorded training input at a different digest, keep the signature
    stmt["predicate"] = {**stmt["predicate"], "tampered": True}
    env["payload"] = base64.b64encode(
        json.dumps(stmt, sort_keys=True, separators=(",", ":")).encode()
    ).decode()
    new = json.dumps(env, sort_keys=True, separators=(",", ":")).encode()
    db.execute("UPDATE entries SET data = ? WHERE idx = 3", (new,))
    if also_fix_leaf_hash:
        db.execute("UPDATE nodes SET hash = ? WHERE level = 0 AND idx = 3", (leaf_hash(new),))
    db.commit()
    db.close()
    with pytest.raises(LedgerIntegrityError) as err:
        LineageGraph.from_workspace(loop.ws)
    assert err.value.index == 3
    assert "ledger entry 3" in str(err.value)
    assert _cli(loop, "lineage", "rebuild") == 1
    assert "ledger entry 3" in capsys.readouterr().err
    assert _cli(loop, "lineage", "blast-radius", str(loop.d("model-2"))) == 1


def test_cycle_in_recorded_lineage_is_exit_2_naming_the_digests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = build_loop(tmp_path / "ws", generations=2)
    from loopwarden.lineage import record_generate

    # model-2 "generated" data-1-human, which trained model-1, which is model-2's base: a cycle
    record_generate(loop.ws, model=loop.art["model-2"], outputs=[loop.art["data-1-human"]], generation=2)
    assert _cli(loop, "lineage", "show") == 2
    err = capsys.readouterr().err
    assert "cycle" in err
    for name in ("model-2", "data-1-human", "model-1"):
        assert str(loop.d(name)) in err


def test_unknown_digest_is_exit_2_naming_it(loop: Loop, capsys: pytest.CaptureFixture[str]) -> None:
    unknown = "sha256:" + "0" * 64
    for action in ("show", "ancestors", "descendants", "blast-radius"):
        assert _cli(loop, "lineage", action, unknown) == 2
        assert unknown in capsys.readouterr().err
    assert _cli(loop, "quarantine", unknown, "--reason", "x", "--reporter", "y") == 2
    assert unknown in capsys.readouterr().err
    assert _cli(loop, "lineage", "path", unknown, str(loop.d("model-1"))) == 2
    assert _cli(loop, "lineage", "show", "sha256:not-hex") == 2
    assert "sha256:not-hex" in capsys.readouterr().err


def test_attestations_are_the_verified_entries_about_an_artifact(loop: Loop) -> None:
    from loopwarden.attest import predicates as pt

    graph = LineageGraph.from_workspace(loop.ws)
    evals = graph.attestations(loop.d("model-2"), pt.EVAL_RUN)
    assert len(evals) == 1
    assert evals[0].statement().predicate["scores"] == {"capability": 0.2}
    kinds = {e.statement().predicate_type for e in graph.attestations(loop.d("model-2"))}
    assert kinds == {pt.SLSA_PROVENANCE, pt.EVAL_RUN}
    # an entry changed after the rebuild is caught when it is read back
    db = sqlite3.connect(loop.ws.ledger_path)
    idx = evals[0].index
    db.execute(
        "UPDATE entries SET data = ? WHERE idx = ?", (evals[0].data.replace(b'"payload"', b'"payload" '), idx)
    )
    db.commit()
    db.close()
    with pytest.raises(LedgerIntegrityError, match=f"ledger entry {idx}"):
        graph.attestations(loop.d("model-2"), pt.EVAL_RUN)
