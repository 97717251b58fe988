"""`loopwarden scan model` through main([...]): exit codes, formats, bad input, --record."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest

from loopwarden._cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "corpus"))
import _container_payloads as cp


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    out = {
        "good": tmp_path / "good.pt",
        "evil": tmp_path / "evil.pkl",
        "npy_obj": tmp_path / "obj.npy",
    }
    out["good"].write_bytes(cp.torch_zip(cp.benign_pickle()))
    out["evil"].write_bytes(cp.evil_pickle())
    out["npy_obj"].write_bytes(cp.npy_object(cp.benign_pickle()))
    return out


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_clean_file_exits_0(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "scan", "model", str(files["good"]))
    assert rc == 0
    assert f"{files['good']}: clean" in out


def test_payload_exits_1(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "scan", "model", str(files["evil"]), str(files["good"]))
    assert rc == 1
    assert "CRITICAL" in out
    assert "LW-MODEL-0" in out
    assert f"{files['good']}: clean" in out  # the rest is still scanned


def test_fail_on_threshold(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    # an object array is an INFO finding: below the default threshold (low) -> 0; with --fail-on info -> 1
    assert run(capsys, "scan", "model", str(files["npy_obj"]))[0] == 0
    assert run(capsys, "scan", "model", str(files["npy_obj"]), "--fail-on", "info")[0] == 1
    assert run(capsys, "scan", "model", str(files["evil"]), "--fail-on", "critical")[0] == 1


def test_json_format(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "scan", "model", str(files["evil"]), str(files["good"]), "--format", "json")
    assert rc == 1
    doc = json.loads(out)
    assert doc["tool"] == "loopwarden"
    verdicts = {Path(t["path"]).name: t["verdict"] for t in doc["targets"]}
    assert verdicts == {"evil.pkl": "findings", "good.pt": "clean"}
    _rc2, out2, _ = run(capsys, "--json", "scan", "model", str(files["evil"]), str(files["good"]))
    assert out2 == out  # the global --json means the same, and the output is deterministic


def test_output_file_is_written(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "out" / "report.sarif"
    dest.parent.mkdir()
    rc, out, _ = run(capsys, "scan", "model", str(files["evil"]), "--format", "sarif", "-o", str(dest))
    assert rc == 1
    assert out == ""
    assert json.loads(dest.read_text())["version"] == "2.1.0"
    assert [p.name for p in dest.parent.iterdir()] == ["report.sarif"]  # no temp file left behind


def test_missing_file_is_unverified_and_rest_scanned(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.pt"
    rc, out, err = run(capsys, "scan", "model", str(missing), str(files["good"]))
    assert rc == 1
    assert f"{missing}: unverified: file not found" in err
    assert f"{files['good']}: clean" in out


def test_fifo_is_not_opened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    rc, _, err = run(capsys, "scan", "model", str(tmp_path))
    assert rc == 1
    assert "not a regular file (a FIFO)" in err


def test_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permission denied. As root a mode-000 file is still readable, so the denial is simulated at open()."""
    f = tmp_path / "secret.pt"
    f.write_bytes(cp.evil_pickle())
    ok = tmp_path / "ok.pt"
    ok.write_bytes(cp.torch_zip(cp.benign_pickle()))
    f.chmod(0)
    try:
        with open(f, "rb"):
            readable = True
    except PermissionError:
        readable = False
    if readable:
        import builtins

        real_open = builtins.open

        def deny(path: object, *a: object, **k: object) -> object:
            if str(path) == str(f):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *a, **k)  # type: ignore[call-overload]

        real_os_open = os.open

        def deny_fd(path: object, *a: object, **k: object) -> int:
            if str(path) == str(f):
                raise PermissionError(13, "Permission denied", str(path))
            return real_os_open(path, *a, **k)  # type: ignore[arg-type]

        monkeypatch.setattr(builtins, "open", deny)
        monkeypatch.setattr(os, "open", deny_fd)
    rc, out, err = run(capsys, "scan", "model", str(f), str(ok), "--jobs", "1")
    assert rc == 1
    assert f"{f}: unverified: permission denied" in err
    assert "ok.pt: clean" in out


def test_truncated_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = cp.torch_zip(cp.benign_pickle() * 1)
    (tmp_path / "cut.pt").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "cut.pkl").write_bytes(cp.evil_pickle()[:-5])
    (tmp_path / "ok.pt").write_bytes(whole)
    rc, out, err = run(capsys, "scan", "model", str(tmp_path))
    assert rc == 1
    assert "cut.pt: unverified" in err
    assert "cut.pkl: " in out
    assert "ok.pt: clean" in out


def _bomb(levels: int, size: int) -> bytes:
    data = b"\x00" * size
    name = "zeros.bin"
    for i in range(levels):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            for j in range(4):
                z.writestr(f"{i}-{j}-{name}", data)
        data, name = buf.getvalue(), f"layer{i}.zip"
    return data


def test_zip_bomb_is_unverified_with_bound(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """42.zip-style: nested zips of highly compressible members."""
    (tmp_path / "42.zip").write_bytes(_bomb(3, 8 << 20))
    (tmp_path / "ok.pt").write_bytes(cp.torch_zip(cp.benign_pickle()))
    rc, out, err = run(capsys, "scan", "model", str(tmp_path))
    assert rc == 1
    assert "max_decompression_ratio" in err
    assert "ok.pt: clean" in out


def test_many_files_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory of 10,000 files: every one gets a result, in parallel, with the right exit code."""
    d = tmp_path / "many"
    d.mkdir()
    good = cp.benign_pickle()
    for i in range(10_000):
        (d / f"{i:05}.pkl").write_bytes(good)
    (d / "07777.pkl").write_bytes(cp.evil_pickle())
    rc, out, _ = run(capsys, "scan", "model", str(d), "--format", "json", "--jobs", "2")
    assert rc == 1
    doc = json.loads(out)
    assert len(doc["targets"]) == 10_000
    bad = [t["path"] for t in doc["targets"] if t["verdict"] != "clean"]
    assert bad == [str(d / "07777.pkl")]


def test_usage_errors(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "scan", "model", str(files["good"]), "--jobs", "0")[0] == 2
    assert run(capsys, "scan", "model")[0] == 2
    assert run(capsys, "scan", "model", str(files["good"]), "--fail-on", "bogus")[0] == 2


def test_record_appends_signed_attestations(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loopwarden.workspace import find_workspace, init_workspace

    monkeypatch.delenv("LOOPWARDEN_KEY_PASSWORD", raising=False)
    ws_dir = tmp_path / "ws"
    init_workspace(ws_dir, name="t")
    rc, _, err = run(
        capsys,
        "--workspace",
        str(ws_dir),
        "scan",
        "model",
        str(files["good"]),
        str(files["evil"]),
        "--record",
    )
    assert rc == 1
    assert "recorded 2 scan attestation(s)" in err
    ws = find_workspace(explicit=ws_dir)
    with ws.open_ledger(writable=False) as led:
        stmts = [e.statement() for e in led.entries()]
    scans = [s for s in stmts if s.predicate_type.endswith("/scan/v1")]
    assert len(scans) == 2
    verdicts = sorted(s.predicate["result"]["verdict"] for s in scans)
    assert verdicts == ["clean", "findings"]
    assert all(s.subjects[0].digest.get("sha256") for s in scans)


def test_progress_only_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No progress output when stderr is piped; on a terminal the bar goes to stderr, not into the report."""
    from loopwarden._cli import scan as scan_cli

    d = tmp_path / "m"
    d.mkdir()
    for i in range(25):
        (d / f"{i}.pkl").write_bytes(cp.benign_pickle())
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["scan", "model", str(d), "--format", "json"]) == 0
    assert err.getvalue() == ""
    json.loads(out.getvalue())
    bar = scan_cli._progress()
    updates: list[tuple[int, int]] = []
    monkeypatch.setattr(bar, "update", lambda done, total: updates.append((done, total)))
    monkeypatch.setattr(scan_cli, "_progress", lambda: bar)

    class _Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out2 = io.StringIO()
    monkeypatch.setattr(sys, "stderr", _Tty())
    monkeypatch.setattr(sys, "stdout", out2)
    assert main(["scan", "model", str(d), "--format", "json"]) == 0
    assert updates[-1] == (25, 25)
    json.loads(out2.getvalue())


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_names_and_text_that_are_not_utf8_are_written_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """A file name that is not UTF-8 (a lone surrogate to Python) and a surrogate taken from a scanned template
    are written as escapes: the report is complete, parseable, and names the file."""
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b"evil\xff\xfe.pkl"), "wb") as fh:
        fh.write(cp.evil_pickle())
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": "{{ messages['_\\ud800_init__'] }}"}), encoding="utf-8"
    )
    (tmp_path / "good.pt").write_bytes(cp.torch_zip(cp.benign_pickle()))
    rc, out, _ = run(capsys, "scan", "model", str(tmp_path), "--format", fmt)
    assert rc == 1
    out.encode("utf-8")  # nothing left that cannot be written
    if fmt == "json":
        paths = {t["path"] for t in json.loads(out)["targets"]}
        assert os.fsdecode(os.path.join(folder, b"evil\xff\xfe.pkl")) in paths
        assert str(tmp_path / "good.pt") in paths
    elif fmt == "sarif":
        results = json.loads(out)["runs"][0]["results"]
        uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for r in results for loc in r["locations"]}
        assert any("evil" in u for u in uris) and any("tokenizer_config" in u for u in uris), uris
    else:
        assert "evil" in out and "tokenizer_config.json" in out
    report = tmp_path / f"report.{fmt}"
    rc, _, _ = run(capsys, "scan", "model", str(tmp_path), "--format", fmt, "-o", str(report))
    assert rc == 1 and "evil" in report.read_text(encoding="utf-8")
