from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from loopwarden import __version__
from loopwarden._cli.main import main
from loopwarden.attest import sign_statement
from loopwarden.workspace import Workspace
from tests.conftest import make_statement

REPO = Path(__file__).resolve().parents[3]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"loopwarden {__version__}\n", "")
    rc, out, _ = run(capsys, "--help")
    assert rc == 0
    assert "ledger" in out
    assert "Exit codes" in out
    rc, _, err = run(capsys, "frobnicate")
    assert rc == 2
    assert "unknown command" in err
    rc, _, err = run(capsys, "ledger", "--no-such-flag")
    assert rc == 2


def test_init_keys_and_walk_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "proj"
    rc, out, _ = run(capsys, "init", str(root), "--name", "proj", "--json")
    assert rc == 0
    info = json.loads(out)
    assert info["name"] == "proj"
    assert (root / "loopwarden.toml").is_file()
    rc, _, err = run(capsys, "init", str(root))
    assert rc == 2
    assert "already exists" in err
    sub = root / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    rc, out, _ = run(capsys, "keys", "list", "--json")
    assert rc == 0
    keys = json.loads(out)
    assert {k["role"] for k in keys["keys"]} == {"signing", "ledger", "trusted"}
    assert "PRIVATE" not in out
    rc, out, _ = run(capsys, "keys", "export-public")
    assert out.startswith("-----BEGIN PUBLIC KEY-----")
    rc, out, _ = run(capsys, "keys", "export-public", "ledger")
    assert "PUBLIC KEY" in out
    assert "PRIVATE" not in out
    rc, out, _ = run(capsys, "keys", "init", str(tmp_path / "alice"), "--type", "ed25519")
    assert rc == 0
    assert oct((tmp_path / "alice.key").stat().st_mode & 0o777) == "0o600"
    assert "PRIVATE" not in out
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, "ledger", "verify")
    assert rc == 2
    assert "not inside a loopwarden workspace" in err


def test_ledger_commands_end_to_end(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = ["--workspace", str(ws.root)]
    rc, out, _ = run(capsys, *w, "ledger", "show")
    assert (rc, out.strip()) == (0, "the ledger is empty")  # said, not an empty screen
    files = []
    for i in range(3):
        f = tmp_path / f"env{i}.json"
        f.write_bytes(sign_statement(make_statement(i), [ws.signer()]).to_bytes())
        files.append(str(f))
    st = tmp_path / "statement.json"
    st.write_bytes(make_statement(7).to_bytes())
    rc, out, _ = run(capsys, *w, "ledger", "append", *files)
    assert rc == 0
    assert "entry 2" in out
    rc, out, _ = run(capsys, *w, "ledger", "append", "--sign", str(st), "--json")
    assert rc == 0
    assert json.loads(out)["appended"][0]["index"] == 3
    rc, out, _ = run(capsys, *w, "ledger", "show", "1", "--json")
    assert json.loads(out)["entries"][0]["statement"]["predicate"]["n"] == 1
    subject = str(make_statement(7).subjects[0].digests()[0])
    rc, out, _ = run(capsys, *w, "ledger", "show", "--subject", subject, "--json")
    assert [e["index"] for e in json.loads(out)["entries"]] == [3]
    rc, out, _ = run(capsys, *w, "ledger", "show")
    assert "#3" in out
    rc, out, _ = run(capsys, *w, "ledger", "show", "--predicate-type", "https://example.invalid/none")
    assert (rc, out.strip()) == (0, "no entries match")
    rc, out, _ = run(capsys, *w, "ledger", "proof", "2", "--json")
    assert rc == 0
    assert json.loads(out)["verified"] is True
    rc, out, _ = run(capsys, *w, "ledger", "consistency", "1", "--json")
    assert rc == 0
    assert json.loads(out)["new_size"] == 4
    rc, out, _ = run(capsys, *w, "ledger", "checkpoint")
    assert out.splitlines()[:2] == ["loopwarden/test-loop", "4"]
    assert out.splitlines()[4].startswith("\u2014 loopwarden/test-loop ")
    export = tmp_path / "export.jsonl"
    rc, _, _ = run(capsys, *w, "ledger", "export", "-o", str(export))
    assert rc == 0
    assert [json.loads(line)["index"] for line in export.read_text().splitlines()] == [0, 1, 2, 3]
    rc, out, _ = run(capsys, *w, "ledger", "verify", "--json")
    assert rc == 0
    rep = json.loads(out)
    assert rep["passed"] is True
    assert rep["size"] == 4
    assert rep["signatures_checked"] == 4


def test_bad_input_is_one_clear_line_exit_2_and_nothing_written(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    w = ["--workspace", str(ws.root)]
    good = tmp_path / "good.json"
    good.write_bytes(sign_statement(make_statement(1), [ws.signer()]).to_bytes())
    bad = tmp_path / "bad.json"
    bad.write_text('{"payload": ')
    before = ws.ledger_path.read_bytes()
    for argv, needle in [
        (["ledger", "append", str(good), str(bad)], f"{bad}: envelope is not valid JSON"),
        (["ledger", "append", str(tmp_path / "missing.json")], "missing.json: file not found"),
        (["ledger", "append", "--sign", str(good)], "statement _type"),
        (["ledger", "proof", "9"], "entry 9 is not in a tree of size 0"),
        (["ledger", "show", "--subject", "nocolon"], "ALGORITHM:HEX"),
    ]:
        rc, out, err = run(capsys, *w, *argv)
        assert rc == 2, (argv, out, err)
        assert needle in err, (argv, err)
        assert len(err.strip().splitlines()) <= 2, err  # the problem, and at most a hint
        assert "Traceback" not in err
    assert ws.ledger_path.read_bytes() == before
    key = ws.root / ".loopwarden/keys/signing.key"
    key.rename(key.with_suffix(".moved"))
    rc, _, err = run(capsys, *w, "ledger", "append", "--sign", str(good))
    assert rc == 2
    assert "signing.key: key file not found" in err
    (ws.root / "loopwarden.toml").write_text("[workspace]\nname = 'x'\nbogus = 1\n")
    rc, _, err = run(capsys, *w, "ledger", "verify")
    assert rc == 2
    assert "loopwarden.toml: field 'workspace.bogus'" in err


def test_a_foreign_ledger_file_is_exit_2(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    ws.ledger_path.unlink()
    for extra in ("-wal", "-shm"):
        Path(str(ws.ledger_path) + extra).unlink(missing_ok=True)
    ws.ledger_path.write_bytes(b"this is not a database at all" * 10)
    rc, _, err = run(capsys, "--workspace", str(ws.root), "ledger", "verify")
    assert rc == 2
    assert "not a loopwarden ledger" in err


def test_main_job_runs_as_a_process(tmp_path: Path) -> None:
    """The README's first command's job: `loopwarden demo` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "loopwarden", "demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "full audit: passed" in proc.stdout
    assert re.search(r"^loopwarden/demo-loop\n3\n", proc.stdout.split("ledger checkpoint:\n")[1])


def test_readme_has_exactly_the_two_setup_commands() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.S)
    assert blocks[:2] == [
        "pip install . && loopwarden demo\n",
        "pip install -e '.[test]' && python -m pytest\n",
    ]
    ci = (REPO / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && python -m pytest" in ci
