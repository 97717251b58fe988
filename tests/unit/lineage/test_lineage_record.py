"""Recording: artifact hashing, the statements each record writes, and reading them back as edges."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from lineage_helpers import art

from loopwarden.attest import predicates as pt
from loopwarden.attest.statement import Statement
from loopwarden.domain import ArtifactKind, Digest, ResourceDescriptor
from loopwarden.errors import InputError, LineageError, UsageError
from loopwarden.lineage import (
    Relation,
    agent_session_statement,
    artifact,
    clearance_statement,
    eval_statement,
    generate_statement,
    hash_path,
    promote_statement,
    quarantine_statement,
    train_statement,
)
from loopwarden.lineage.record import TRAINING_BUILD_TYPE, parse_statement


def _edges(stmt: Statement) -> set[tuple[str, str, Relation]]:
    rec = parse_statement(Statement.parse(stmt.to_bytes()), source="test")
    assert rec is not None
    return {(str(a), str(b), r) for a, b, r in rec.edges}


def _d(name: str) -> str:
    return str(Digest.sha256(name.encode()))


# -- hashing -------------------------------------------------------------------------------------------------


def test_file_digest_is_sha256_of_its_bytes(tmp_path: Path) -> None:
    f = tmp_path / "weights.bin"
    f.write_bytes(b"\x00weights" * 1000)
    assert hash_path(f) == Digest("sha256", hashlib.sha256(f.read_bytes()).hexdigest())


def _tree(root: Path, files: dict[str, bytes], order: list[str]) -> None:
    for rel in order:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(files[rel])


def test_folder_digest_follows_the_documented_manifest(tmp_path: Path) -> None:
    files = {"b.txt": b"bee", "a/z.py": b"print(1)", "a/b/c.json": b"{}"}
    _tree(tmp_path / "x", files, sorted(files))
    _tree(tmp_path / "y", files, sorted(files, reverse=True))  # created in another order
    manifest = "".join(
        f"{hashlib.sha256(files[r]).hexdigest()} {len(files[r])} {r}\n" for r in sorted(files)
    ).encode()
    want = Digest("sha256-tree", hashlib.sha256(manifest).hexdigest())
    assert hash_path(tmp_path / "x") == want
    assert hash_path(tmp_path / "y") == want
    (tmp_path / "y" / "b.txt").write_bytes(b"bee!")
    assert hash_path(tmp_path / "y") != want
    (tmp_path / "y" / "b.txt").write_bytes(b"bee")
    (tmp_path / "y" / "b.txt").rename(tmp_path / "y" / "c.txt")
    assert hash_path(tmp_path / "y") != want


def test_symlinks_are_refused_not_followed(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "secret").write_text("x")
    os.symlink(tmp_path / "secret", tmp_path / "d" / "link")
    with pytest.raises(InputError, match="link"):
        hash_path(tmp_path / "d")
    with pytest.raises(InputError, match="link"):
        hash_path(tmp_path / "d" / "link")


def test_artifact_from_digest_path_or_error(tmp_path: Path) -> None:
    d = "sha256:" + "ab" * 32
    assert artifact(d, "model").digest == Digest.parse(d)
    f = tmp_path / "data.jsonl"
    f.write_text("{}\n")
    a = artifact(str(f), "dataset")
    assert a.name == "data.jsonl"
    assert a.kind is ArtifactKind.DATASET
    with pytest.raises(InputError, match=r"nope\.bin"):
        artifact(str(tmp_path / "nope.bin"), "model")
    with pytest.raises(InputError, match="sha256:zz"):
        artifact("sha256:zz", "model")


# -- statements ----------------------------------------------------------------------------------------------


def test_training_run_is_slsa_provenance_v1() -> None:
    stmt = train_statement(
        model=art("m2", "model"),
        datasets=[art("d2")],
        code=[art("c2", "code")],
        base_model=art("m1", "model"),
        generation=2,
        builder="https://ci.example/pipeline",
        name="run-7",
        parameters={"lr": 0.1},
    )
    j = stmt.to_json()
    assert j["predicateType"] == "https://slsa.dev/provenance/v1"
    assert j["subject"][0]["digest"] == {"sha256": Digest.sha256(b"m2").hex}
    assert j["subject"][0]["annotations"] == {"kind": "model", "role": "trained-model", "generation": 2}
    bd = j["predicate"]["buildDefinition"]
    assert bd["buildType"] == TRAINING_BUILD_TYPE
    assert bd["externalParameters"] == {"generation": 2, "run": "run-7", "lr": 0.1}
    roles = {d["name"]: d["annotations"]["role"] for d in bd["resolvedDependencies"]}
    assert roles == {"d2": "training-data", "c2": "code", "m1": "base-model"}
    assert j["predicate"]["runDetails"]["builder"]["id"] == "https://ci.example/pipeline"
    assert _edges(stmt) == {
        (_d("d2"), _d("m2"), Relation.TRAINED_ON),
        (_d("c2"), _d("m2"), Relation.BUILT_FROM),
        (_d("m1"), _d("m2"), Relation.BUILT_FROM),
    }


def test_foreign_provenance_dependency_without_role_still_carries_influence() -> None:
    dep = ResourceDescriptor.of("lib", Digest.sha256(b"lib")).to_json()
    pred = {
        "buildDefinition": {
            "buildType": "https://other/v1",
            "externalParameters": {},
            "resolvedDependencies": [dep],
        },
        "runDetails": {"builder": {"id": "x"}},
    }
    stmt = Statement((ResourceDescriptor.of("m", Digest.sha256(b"m")),), pt.SLSA_PROVENANCE, pred)
    assert _edges(stmt) == {(_d("lib"), _d("m"), Relation.BUILT_FROM)}


def test_generate_eval_session_records_read_back_as_edges() -> None:
    gen = generate_statement(
        model=art("m1", "model"),
        outputs=[art("d2"), art("c2", "code")],
        generation=2,
        inputs=[art("prompts")],
    )
    assert gen.predicate_type == pt.GENERATION
    assert _edges(gen) == {
        (_d("m1"), _d("d2"), Relation.GENERATED),
        (_d("m1"), _d("c2"), Relation.GENERATED),
        (_d("prompts"), _d("d2"), Relation.BUILT_FROM),
        (_d("prompts"), _d("c2"), Relation.BUILT_FROM),
    }
    ev = eval_statement(
        eval_run=art("e2", "eval"),
        model=art("m2", "model"),
        suite=art("s2", "eval"),
        scores={"cyber": 0.4},
        generation=2,
    )
    assert {str(d) for d in ev.subject_digests()} == {_d("e2"), _d("m2")}
    assert ev.predicate["scores"] == {"cyber": 0.4}
    assert _edges(ev) == {(_d("e2"), _d("m2"), Relation.SCORED), (_d("s2"), _d("e2"), Relation.BUILT_FROM)}
    ses = agent_session_statement(
        session=art("s", "agent-session"),
        model=art("m1", "model"),
        role="coder",
        changed=[art("c3", "code")],
        generation=3,
    )
    assert ses.predicate["role"] == "coder"
    assert _edges(ses) == {(_d("m1"), _d("s"), Relation.ACTED_FOR), (_d("s"), _d("c3"), Relation.AUTHORED)}


def test_promotion_quarantine_clearance_carry_no_edges() -> None:
    for stmt in (
        promote_statement(target=art("m"), stage="prod"),
        quarantine_statement(target=art("m"), reason="r", reporter="me"),
        clearance_statement(target=art("m"), reason="ok", reviewer_keyid="ab" * 32),
    ):
        assert _edges(stmt) == set()
    rec = parse_statement(quarantine_statement(target=art("m"), reason="r", reporter="me"), source="t")
    assert rec is not None
    assert rec.quarantine == (Digest.sha256(b"m"), "r", "me")


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: generate_statement(model=art("m"), outputs=[art("m")], generation=1), LineageError),
        (lambda: train_statement(model=art("m"), datasets=[art("m")], generation=1), LineageError),
        (lambda: train_statement(model=art("m"), datasets=[], generation=1), UsageError),
        (lambda: generate_statement(model=art("m"), outputs=[], generation=1), UsageError),
        (lambda: generate_statement(model=art("m"), outputs=[art("x")], generation=-1), UsageError),
        (
            lambda: eval_statement(
                eval_run=art("e"), model=art("m"), generation=1, scores={"a": float("nan")}
            ),
            UsageError,
        ),
        (
            lambda: agent_session_statement(
                session=art("s"), model=art("m"), role="", changed=[], generation=1
            ),
            UsageError,
        ),
        (lambda: quarantine_statement(target=art("m"), reason=" ", reporter="x"), UsageError),
    ],
)
def test_bad_records_are_refused_before_anything_is_written(build: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        build()  # type: ignore[operator]


def test_malformed_lineage_predicate_names_the_source() -> None:
    stmt = Statement((ResourceDescriptor.of("x", Digest.sha256(b"x")),), pt.GENERATION, {"inputs": []})
    with pytest.raises(LineageError, match="ledger entry 9"):
        parse_statement(stmt, source="ledger entry 9")
    stmt = Statement((ResourceDescriptor.of("x", Digest.sha256(b"x")),), pt.NOTE, {})
    assert parse_statement(stmt, source="t") is None
