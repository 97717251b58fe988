"""loopwarden data manifest|verify|diff|scan: exit codes (DESIGN.md), output, bad input, no half-writes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from loopwarden._cli.main import main
from loopwarden.workspace import Workspace, init_workspace

zstandard = pytest.importorskip("zstandard")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws", name="cli-data")


def _rows(n: int, *, tag: str = "r") -> str:
    return "".join(
        json.dumps({"id": f"{tag}{i}", "prompt": f"p{i}", "response": f"a{i}"}) + "\n" for i in range(n)
    )


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    (d / "a.jsonl").write_text(_rows(5))
    (d / "b.jsonl").write_text(_rows(3, tag="b"))
    return d


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


def _findings(report: Any) -> list[tuple[str, str, Any]]:
    return sorted(
        (t["path"], f["rule_id"], f["evidence"].get("id")) for t in report["targets"] for f in t["findings"]
    )


def test_manifest_sign_record_verify_then_changes(
    tmp_path: Path, data: Path, ws: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    m = tmp_path / "m.json"
    rc = main(["--workspace", str(ws.root), "data", "manifest", str(data), "-o", str(m), "--id-field", "id",
               "--sign", "--record", "--license", "MIT", "--source", "https://example.org/raw",
               "--croissant", str(tmp_path / "c.json")])  # fmt: skip
    assert rc == 0, capsys.readouterr()
    text = capsys.readouterr().out
    assert "recorded as ledger entry 0" in text
    assert (tmp_path / "m.dsse.json").exists()
    assert (tmp_path / "c.json").exists()
    args = ["--workspace", str(ws.root), "--json", "data", "verify", str(data), "--manifest", str(m),
            "--signature", str(tmp_path / "m.dsse.json"), "--ledger"]  # fmt: skip
    assert main(args) == 0
    assert all(t["verdict"] == "clean" for t in _json(capsys)["targets"])

    (data / "a.jsonl").write_text(_rows(5).replace('"a2"', '"TRIGGER"'))
    (data / "c.jsonl").write_text(_rows(1, tag="c"))
    (data / "b.jsonl").write_text("".join(_rows(3, tag="b").splitlines(keepends=True)[:2]))
    assert main(args) == 1
    assert _findings(_json(capsys)) == [
        ("a.jsonl", "LW-DATA-012", None),
        ("a.jsonl", "LW-DATA-015", "r2"),
        ("b.jsonl", "LW-DATA-012", None),
        ("b.jsonl", "LW-DATA-014", "b2"),
        ("c.jsonl", "LW-DATA-010", None),
    ]
    assert main(["data", "verify", str(data), "--manifest", str(m)]) == 1
    text = capsys.readouterr().out
    assert "record r2 modified (line 3)" in text
    assert "record b2 removed" in text


def test_diff_exit_codes(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    assert main(["data", "manifest", str(data), "-o", str(old), "--id-field", "id"]) == 0
    assert main(["data", "diff", str(old), str(old)]) == 0
    (data / "a.jsonl").write_text(_rows(6))
    assert main(["data", "manifest", str(data), "-o", str(new), "--id-field", "id"]) == 0
    capsys.readouterr()
    assert main(["--json", "data", "diff", str(old), str(new)]) == 1
    assert ("a.jsonl", "LW-DATA-013", "r5") in _findings(_json(capsys))


def test_malformed_lines_make_the_shard_unverified_with_line_numbers(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (data / "a.jsonl").write_text(_rows(2) + '{"id": "x",\n' + _rows(2, tag="s"))
    m = tmp_path / "m.json"
    assert main(["--json", "data", "manifest", str(data), "-o", str(m), "--id-field", "id"]) == 1
    report = _json(capsys)
    a = next(t for t in report["targets"] if t["path"] == "a.jsonl")
    assert a["verdict"] == "unverified"
    assert [(f["rule_id"], f["location"]["line"]) for f in a["findings"]] == [("LW-DATA-001", 3)]
    doc = json.loads(m.read_text())  # the manifest is complete and says what it could not read
    shard = next(s for s in doc["shards"] if s["uri"] == "a.jsonl")
    assert shard["records"] == 4
    assert shard["problems"][0]["line"] == 3


def test_truncated_zstd_and_gzip_shards_are_unverified(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "d"
    d.mkdir()
    big = _rows(20000).encode()
    z = zstandard.ZstdCompressor().compress(big)
    (d / "a.jsonl.zst").write_bytes(z[: len(z) // 2])
    g = gzip.compress(big)
    (d / "b.jsonl.gz").write_bytes(g[: len(g) // 2])
    assert main(["--json", "data", "manifest", str(d), "-o", str(tmp_path / "m.json")]) == 1
    targets = {t["path"]: t for t in _json(capsys)["targets"]}
    for name, comp in (("a.jsonl.zst", "zstd"), ("b.jsonl.gz", "gzip")):
        assert targets[name]["verdict"] == "unverified"
        assert f"truncated {comp} stream" in targets[name]["findings"][-1]["message"]
        assert targets[name]["findings"][-1]["rule_id"] == "LW-DATA-002"


def test_overlong_line_bounded_by_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.jsonl").write_text('{"id": "x", "t": "' + "y" * 100_000 + '"}\n' + _rows(1))
    rc = main(
        ["--json", "data", "manifest", str(d), "-o", str(tmp_path / "m.json"), "--max-record-bytes", "4096"]
    )
    assert rc == 1
    (t,) = _json(capsys)["targets"]
    assert t["verdict"] == "unverified"
    assert "line exceeds 4096 bytes" in t["findings"][0]["message"]


@pytest.mark.parametrize(
    "extra",
    [
        ["--pipeline", "synth"],  # no version/commit
        ["--generator-model", "md5"],
        ["--seed", "3"],  # a seed with no generator
        ["--license", "MIT; DROP"],
        ["--inline-max", "0"],
    ],
)
def test_usage_errors_exit_2_and_write_nothing(
    tmp_path: Path, data: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert main(["data", "manifest", str(data), "-o", str(out / "m.json"), *extra]) == 2
    assert list(out.iterdir()) == []
    assert capsys.readouterr().err.strip()


def test_input_errors_exit_2(tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert main(["data", "manifest", str(tmp_path / "missing"), "-o", str(out / "m.json")]) == 2
    assert "missing: no such file or folder" in capsys.readouterr().err
    assert main(["data", "manifest", str(data), "-o", str(out / "m.json"), "--sign",
                 "--workspace", str(tmp_path / "nowhere")]) == 2  # fmt: skip
    assert list(out.iterdir()) == []
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    assert main(["data", "verify", str(data), "--manifest", str(bad)]) == 2
    assert "bad.json: not a loopwarden dataset manifest" in capsys.readouterr().err
    assert main(["data", "diff", str(bad), str(bad)]) == 2


def test_scan_calls_the_poison_scanner_and_renders_the_report(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("loopwarden.checks.data.poison")
    (data / "a.jsonl").write_text(_rows(30) + "{oops\n")
    args = ["data", "scan", str(data), "--prompt-field", "prompt", "--response-field", "response",
            "--id-field", "id"]  # fmt: skip
    assert main([*args, "--format", "json"]) == 1
    report = _json(capsys)
    assert report["tool"] == "loopwarden"
    targets = {Path(t["path"]).name: t for t in report["targets"]}
    assert targets["a.jsonl"]["verdict"] == "unverified"
    assert "line 31" in targets["a.jsonl"]["reason"]
    assert main(args) == 1
    assert "UNVERIFIED" in capsys.readouterr().out
    assert main([*args, "--fail-on", "extreme"]) == 2
    assert main(["data", "scan", str(tmp_path / "missing"), "--text-field", "t"]) == 2


def test_manifest_and_croissant_inside_the_data_folder_are_not_data(
    data: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(data)
    assert main(["data", "manifest", ".", "--id-field", "id", "--croissant", "meta/croissant.json",
                 "--inline-max", "2"]) == 2  # fmt: skip
    assert "meta" in capsys.readouterr().err  # the Croissant folder does not exist: nothing written
    (data / "meta").mkdir()
    assert main(["data", "manifest", ".", "--id-field", "id", "--croissant", "meta/croissant.json",
                 "--inline-max", "2"]) == 0  # fmt: skip
    doc = json.loads((data / "data.manifest.json").read_text())
    assert [s["uri"] for s in doc["shards"]] == ["a.jsonl", "b.jsonl"]
    assert doc["excluded"] == ["data.manifest.dsse.json", "data.manifest.json", "data.manifest.records.jsonl",
                               "meta/croissant.json"]  # fmt: skip
    assert main(["data", "verify", ".", "--manifest", "data.manifest.json"]) == 0
    (data / "meta" / "extra.jsonl").write_text(_rows(1))
    capsys.readouterr()
    assert main(["--json", "data", "verify", ".", "--manifest", "data.manifest.json"]) == 1
    assert ("meta/extra.jsonl", "LW-DATA-010", None) in _findings(_json(capsys))


def test_data_scan_renders_sarif(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json as _json

    from loopwarden._cli.main import main as _main

    shard = tmp_path / "a.jsonl"
    shard.write_text(
        '{"prompt": "hi", "response": "hello"}\n{"prompt": "yo \\u200b there", "response": "hey"}\n'
    )
    capsys.readouterr()
    rc = _main(["data", "scan", str(shard), "--format", "sarif"])
    sarif = _json.loads(capsys.readouterr().out)
    assert rc == 1
    assert sarif["version"] == "2.1.0"
    assert {r["ruleId"] for r in sarif["runs"][0]["results"]} == {"LW-DATA-042"}
