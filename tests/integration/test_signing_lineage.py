"""A signature recorded with `sign --record` is found under the lineage digest the gate and lineage use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopwarden._cli.main import main
from loopwarden.attest.predicates import MODEL_SIGNATURE
from loopwarden.lineage.record import hash_path
from loopwarden.workspace import Workspace


def test_sign_record_names_the_lineage_digest(
    ws: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "models" / "gen1"
    model.mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\x01" * 4096)
    (model / "config.json").write_text('{"layers": 2}')
    key = ws.root / ".loopwarden/keys/signing.key"
    rc = main(["--workspace", str(ws.root), "sign", str(model), "--key", str(key), "--record", "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert json.loads(out)["ledger_indexes"]
    digest = hash_path(model)
    assert digest.algorithm == "sha256-tree"
    with ws.open_ledger(writable=False) as led:
        entries = list(led.entries(subject=digest, predicate_type=MODEL_SIGNATURE))
    assert len(entries) == 1
    assert "recorded_at" in entries[0].statement().predicate
