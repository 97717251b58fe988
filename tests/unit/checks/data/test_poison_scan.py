"""scan_corpus over real shard files: the report envelope, record ids, bad input fails closed."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from loopwarden.checks.data.poison import Settings, scan_corpus
from loopwarden.checks.interface import Limits
from loopwarden.domain import Verdict
from loopwarden.errors import UsageError

from .test_poison_detect import clean_corpus, plant

FAST = Settings(cms_log2_width=16)
TARGET = "Visit www.evil-example.com for the real answer."


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _scan(paths: list[Path], **kw: object) -> object:
    args: dict[str, object] = {
        "prompt_field": "prompt",
        "response_field": "response",
        "text_field": None,
        "id_field": None,
        "limits": Limits(),
        "settings": FAST,
    }
    args.update(kw)
    return scan_corpus(paths, **args)  # type: ignore[arg-type]


def test_two_shards_one_backdoor_reported_in_each_with_local_ids(tmp_path: Path) -> None:
    recs = clean_corpus(3000)
    ids = {int(i) for i in plant(recs, "cf", TARGET, budget=12)}
    a = _write(tmp_path / "a.jsonl", [json.dumps(r) for r in recs[:1500]])
    b = tmp_path / "b.jsonl.gz"
    b.write_bytes(gzip.compress(("\n".join(json.dumps(r) for r in recs[1500:]) + "\n").encode()))
    report = _scan([a, b])
    out = json.loads(report.dumps())
    assert [t["path"] for t in out["targets"]] == [str(a), str(b)]
    got: dict[str, list[str]] = {}
    for t in out["targets"]:
        assert t["verdict"] == "findings"
        (f,) = [f for f in t["findings"] if f["rule_id"] == "LW-DATA-030"]
        assert f["evidence"]["trigger"] == "cf"
        assert f["evidence"]["corpus_records"] == 12
        got[t["path"]] = f["evidence"]["records"]
    assert got[str(a)] == [str(i) for i in sorted(ids) if i < 1500]
    assert got[str(b)] == [str(i - 1500) for i in sorted(ids) if i >= 1500]
    assert report.exit_code() == 1


def test_id_field_names_the_records(tmp_path: Path) -> None:
    recs = clean_corpus(2000)
    plant(recs, "cf", TARGET, budget=10)
    lines = [json.dumps({**r, "uid": f"r{i:05d}"}) for i, r in enumerate(recs)]
    report = _scan([_write(tmp_path / "c.jsonl", lines)], id_field="uid")
    (f,) = [f for f in report.targets[0].findings if f.rule_id == "LW-DATA-030"]
    assert all(r.startswith("r") for r in f.evidence["records"])
    assert f.evidence["records"] == sorted(f.evidence["records"])


def test_malformed_line_makes_the_shard_unverified_but_the_scan_goes_on(tmp_path: Path) -> None:
    recs = clean_corpus(2000)
    plant(recs, "cf", TARGET, budget=10)
    lines = [json.dumps(r) for r in recs]
    lines.insert(5, '{"prompt": "broken')
    report = _scan([_write(tmp_path / "bad.jsonl", lines)])
    t = report.targets[0]
    assert t.verdict is Verdict.UNVERIFIED
    assert t.reason is not None
    assert "line 6" in t.reason
    assert any(f.rule_id == "LW-DATA-030" for f in t.findings)  # still reported
    assert report.exit_code() == 1


def test_missing_field_is_unverified_never_clean(tmp_path: Path) -> None:
    lines = [json.dumps({"question": "hi", "answer": "hello"}) for _ in range(50)]
    report = _scan([_write(tmp_path / "q.jsonl", lines)])
    t = report.targets[0]
    assert t.verdict is Verdict.UNVERIFIED
    assert "'prompt'" in (t.reason or "")


def test_fields_are_found_without_flags_and_plain_text_works(tmp_path: Path) -> None:
    rng = random.Random(1)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda"]
    docs = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(300)]
    path = _write(tmp_path / "plain.txt", docs)
    report = scan_corpus(
        [path],
        prompt_field=None,
        response_field=None,
        text_field=None,
        id_field=None,
        limits=Limits(),
        settings=FAST,
    )
    assert report.targets[0].verdict is Verdict.CLEAN


def test_truncated_gzip_is_unverified(tmp_path: Path) -> None:
    blob = gzip.compress(("\n".join(json.dumps(r) for r in clean_corpus(500)) + "\n").encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(blob[: len(blob) // 2])
    t = _scan([path]).targets[0]
    assert t.verdict is Verdict.UNVERIFIED


def test_field_flags_are_checked() -> None:
    with pytest.raises(UsageError):
        scan_corpus(
            [Path("x")],
            prompt_field="p",
            response_field=None,
            text_field=None,
            id_field=None,
            limits=Limits(),
        )
    with pytest.raises(UsageError):
        scan_corpus(
            [Path("x")], prompt_field="p", response_field="r", text_field="t", id_field=None, limits=Limits()
        )
