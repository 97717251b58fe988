from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from loopwarden.attest import generate, sign_statement
from loopwarden.attest.predicates import NOTE, SCAN
from loopwarden.errors import AttestationError, LedgerError
from loopwarden.ledger import record, record_many, verify_consistency, verify_inclusion, verify_ledger
from loopwarden.ledger.merkle import root_from_leaves
from loopwarden.ledger.sqlite import SqliteLedger
from loopwarden.workspace import Workspace
from tests.conftest import make_statement


def test_append_returns_index_and_a_proof_that_verifies(ws: Workspace) -> None:
    results = [record(make_statement(i), ws) for i in range(7)]
    assert [r.index for r in results] == list(range(7))
    with ws.open_ledger(writable=False) as led:
        assert led.size() == 7
        for r in results:
            assert r.proof is not None
            assert verify_inclusion(led.get(r.index).leaf_hash(), r.proof, r.root)
        assert led.root() == root_from_leaves([led.get(i).leaf_hash() for i in range(7)])
        for old in range(8):
            assert verify_consistency(led.root(old), led.root(), led.consistency_proof(old))
        cp = led.latest_checkpoint()
        assert cp is not None and cp.size == 7 and cp.root == led.root()
        assert cp.note.startswith("loopwarden/test-loop\n7\n")


def test_batches_and_filters(ws: Workspace) -> None:
    stmts = [make_statement(i, predicate_type=SCAN if i % 3 == 0 else NOTE) for i in range(30)]
    res = record_many(stmts, ws)
    assert [r.index for r in res] == list(range(30))
    with ws.open_ledger(writable=False) as led:
        scans = list(led.entries(predicate_type=SCAN))
        assert [e.index for e in scans] == list(range(0, 30, 3))
        subj = stmts[4].subjects[0].digests()[0]
        about = list(led.entries(subject=subj))
        assert [e.index for e in about] == [4]
        assert about[0].statement() == stmts[4]
        assert [e.index for e in led.entries(start=25, limit=3)] == [25, 26, 27]
        for i in (0, 13, 29):
            p = led.inclusion_proof(i)
            assert verify_inclusion(led.get(i).leaf_hash(), p, led.root())
            p_old = led.inclusion_proof(i, 29 if i < 29 else 30)
            assert verify_inclusion(led.get(i).leaf_hash(), p_old, led.root(p_old.tree_size))
        with pytest.raises(LedgerError, match="beyond"):
            led.root(31)
        with pytest.raises(LedgerError, match="no entry"):
            led.get(30)
    assert verify_ledger(ws).passed


def test_batch_is_all_or_nothing(ws: Workspace) -> None:
    good = sign_statement(make_statement(1), [ws.signer()])
    bad = sign_statement(make_statement(2), [ws.signer()])
    bad = type(bad)(b"not json", bad.payload_type, bad.signatures)
    with ws.open_ledger() as led:
        with pytest.raises(AttestationError):
            led.append_batch([good, bad])
        assert led.size() == 0
        with pytest.raises(AttestationError, match="unsigned"):
            led.append_batch([type(good)(good.payload, good.payload_type, ())])


def test_verify_checks_signatures_against_trusted_keys(ws: Workspace) -> None:
    record(make_statement(0), ws)
    stranger = sign_statement(make_statement(1), [generate()])
    with ws.open_ledger() as led:
        led.append(stranger)  # the store records; the audit judges
    rep = verify_ledger(ws)
    assert not rep.passed
    first = rep.first()
    assert first is not None and first.index == 1
    assert "trusted" in first.message


def test_read_only_open_cannot_append(ws: Workspace) -> None:
    with ws.open_ledger(writable=False) as led, pytest.raises(LedgerError):
        led.append(sign_statement(make_statement(0), [ws.signer()]))


def test_foreign_and_newer_files_are_refused_untouched(tmp_path: Path, ws: Workspace) -> None:
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    before = foreign.read_bytes()
    with pytest.raises(LedgerError, match="foreign SQLite"):
        SqliteLedger(foreign)
    assert foreign.read_bytes() == before
    text = tmp_path / "text.db"
    text.write_text("hello")
    with pytest.raises(LedgerError, match="not an SQLite database"):
        SqliteLedger(text)
    with pytest.raises(LedgerError, match="no ledger here"):
        SqliteLedger(tmp_path / "missing.db")
    record(make_statement(0), ws)
    con = sqlite3.connect(ws.ledger_path)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    before = ws.ledger_path.read_bytes()
    with pytest.raises(LedgerError, match="newer loopwarden"):
        ws.open_ledger()
    assert ws.ledger_path.read_bytes() == before


def test_group_commit_shares_transactions_between_threads(ws: Workspace) -> None:
    import sqlite3 as _sqlite3
    from concurrent.futures import ThreadPoolExecutor

    signer = ws.signer()
    envs = [sign_statement(make_statement(i), [signer]) for i in range(400)]
    with ws.open_ledger() as led, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(led.append, envs))
    assert sorted(r.index for r in results) == list(range(400))
    with ws.open_ledger(writable=False) as led:
        for env, r in zip(envs, results, strict=True):
            assert led.get(r.index).data == env.to_bytes()
            assert r.proof is not None
            assert verify_inclusion(led.get(r.index).leaf_hash(), r.proof, r.root)
    con = _sqlite3.connect(ws.ledger_path)
    (commits,) = con.execute("SELECT COUNT(*) FROM checkpoints").fetchone()
    con.close()
    assert commits < 400  # one checkpoint per transaction: some appends were grouped
    assert verify_ledger(ws).passed
