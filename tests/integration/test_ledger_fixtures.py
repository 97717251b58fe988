"""Ledgers written by earlier releases keep verifying (fixtures made by tests/fixtures/make_*.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loopwarden.ledger import record, verify_ledger
from loopwarden.workspace import Workspace
from tests.conftest import make_statement

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.mark.parametrize("name", ["ledger-v1"])
def test_old_ledger_verifies_and_accepts_appends(name: str, tmp_path: Path) -> None:
    copy = tmp_path / name
    shutil.copytree(FIXTURES / name, copy)
    expected = json.loads((copy / "expected.json").read_text())
    ws = Workspace.load(copy)
    rep = verify_ledger(ws)
    assert rep.passed, rep.problems[:3]
    assert rep.size == expected["size"]
    assert rep.root.hex() == expected["root"]
    record(make_statement(1000), ws)
    assert verify_ledger(ws).passed
