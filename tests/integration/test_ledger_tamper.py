"""Tamper evidence: every stored field of an entry, deleted and swapped rows, a cut file, foreign checkpoints.

Each case edits the real SQLite file behind the ledger, then runs `loopwarden ledger verify`, which must exit 1 and
name the entry.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from loopwarden._cli.main import main
from loopwarden.attest import generate
from loopwarden.ledger import record_many
from loopwarden.ledger.checkpoint import sign_checkpoint
from loopwarden.workspace import Workspace
from tests.conftest import make_statement

CHOSEN = 5
SIZE = 12


@pytest.fixture
def filled(ws: Workspace) -> Workspace:
    record_many([make_statement(i) for i in range(SIZE)], ws)
    record_many([make_statement(SIZE)], ws)  # a second batch: two checkpoints in the table
    assert main(["--workspace", str(ws.root), "ledger", "verify"]) == 0
    return ws


def _flip_blob(b: bytes, at: int | None = None) -> bytes:
    i = len(b) // 2 if at is None else at
    return b[:i] + bytes([b[i] ^ 0x01]) + b[i + 1 :]


def _flip_text(t: str) -> str:
    i = len(t) // 2
    return t[:i] + chr(ord(t[i]) ^ 0x01) + t[i + 1 :]


def _edit(ws: Workspace, fn: Callable[[sqlite3.Connection], None]) -> None:
    con = sqlite3.connect(ws.ledger_path)
    fn(con)
    con.commit()
    con.close()


def _verify(ws: Workspace, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(["--workspace", str(ws.root), "ledger", "verify"])
    return rc, capsys.readouterr().out


def _first_bad(out: str) -> int:
    m = re.search(r"first bad entry (\d+)", out)
    assert m, out
    return int(m.group(1))


def _names_chosen(out: str) -> bool:
    """The first problem names the chosen entry, or a tree range that contains it (a node covers several)."""
    first = out.splitlines()[0]
    if _first_bad(out) == CHOSEN:
        return True
    m = re.search(r"entries (\d+)\.\.(\d+)", first)
    return bool(m) and int(m.group(1)) <= CHOSEN <= int(m.group(2))


def _entry_data(con: sqlite3.Connection) -> None:
    (data,) = con.execute("SELECT data FROM entries WHERE idx = ?", (CHOSEN,)).fetchone()
    con.execute("UPDATE entries SET data = ? WHERE idx = ?", (_flip_blob(data), CHOSEN))


def _entry_data_signature_byte(con: sqlite3.Connection) -> None:
    (data,) = con.execute("SELECT data FROM entries WHERE idx = ?", (CHOSEN,)).fetchone()
    at = data.index(b'"sig":"') + 12
    con.execute("UPDATE entries SET data = ? WHERE idx = ?", (_flip_blob(data, at), CHOSEN))


def _entry_idx(con: sqlite3.Connection) -> None:
    con.execute("UPDATE entries SET idx = ? WHERE idx = ?", (CHOSEN ^ 0x40, CHOSEN))


def _entry_type(con: sqlite3.Connection) -> None:
    (t,) = con.execute("SELECT predicate_type FROM entries WHERE idx = ?", (CHOSEN,)).fetchone()
    con.execute("UPDATE entries SET predicate_type = ? WHERE idx = ?", (_flip_text(t), CHOSEN))


def _subject_digest(con: sqlite3.Connection) -> None:
    (d,) = con.execute("SELECT digest FROM subjects WHERE idx = ?", (CHOSEN,)).fetchone()
    con.execute("UPDATE subjects SET digest = ? WHERE idx = ?", (_flip_text(d), CHOSEN))


def _subject_idx(con: sqlite3.Connection) -> None:
    con.execute("UPDATE subjects SET idx = ? WHERE idx = ?", (CHOSEN ^ 0x40, CHOSEN))


def _leaf_hash(con: sqlite3.Connection) -> None:
    (h,) = con.execute("SELECT hash FROM nodes WHERE level = 0 AND idx = ?", (CHOSEN,)).fetchone()
    con.execute("UPDATE nodes SET hash = ? WHERE level = 0 AND idx = ?", (_flip_blob(h), CHOSEN))


def _leaf_idx(con: sqlite3.Connection) -> None:
    con.execute("UPDATE nodes SET idx = ? WHERE level = 0 AND idx = ?", (CHOSEN ^ 0x40, CHOSEN))


def _leaf_level(con: sqlite3.Connection) -> None:
    con.execute("UPDATE nodes SET level = 9 WHERE level = 0 AND idx = ?", (CHOSEN,))


def _parent_node(con: sqlite3.Connection) -> None:
    (h,) = con.execute("SELECT hash FROM nodes WHERE level = 1 AND idx = ?", (CHOSEN >> 1,)).fetchone()
    con.execute("UPDATE nodes SET hash = ? WHERE level = 1 AND idx = ?", (_flip_blob(h), CHOSEN >> 1))


def _delete_row(con: sqlite3.Connection) -> None:
    con.execute("DELETE FROM entries WHERE idx = ?", (CHOSEN,))


def _swap_rows(con: sqlite3.Connection) -> None:
    other = CHOSEN + 3
    rows = dict(con.execute("SELECT idx, data FROM entries WHERE idx IN (?, ?)", (CHOSEN, other)).fetchall())
    con.execute("UPDATE entries SET data = ? WHERE idx = ?", (rows[other], CHOSEN))
    con.execute("UPDATE entries SET data = ? WHERE idx = ?", (rows[CHOSEN], other))


def _swap_rows_with_their_index(con: sqlite3.Connection) -> None:
    """An attacker who also swaps the leaf hashes and subject rows: only the tree above catches it."""
    other = CHOSEN + 3
    for table, key in (("entries", "idx"), ("subjects", "idx")):
        con.execute(f"UPDATE {table} SET {key} = -1 WHERE {key} = ?", (CHOSEN,))
        con.execute(f"UPDATE {table} SET {key} = ? WHERE {key} = ?", (CHOSEN, other))
        con.execute(f"UPDATE {table} SET {key} = ? WHERE {key} = -1", (other,))
    con.execute("UPDATE nodes SET idx = -1 WHERE level = 0 AND idx = ?", (CHOSEN,))
    con.execute("UPDATE nodes SET idx = ? WHERE level = 0 AND idx = ?", (CHOSEN, other))
    con.execute("UPDATE nodes SET idx = ? WHERE level = 0 AND idx = -1", (other,))


def _delete_last_rows(con: sqlite3.Connection) -> None:
    """Roll the log back: drop the tail and every trace of it inside the database."""
    con.execute("DELETE FROM entries WHERE idx >= ?", (CHOSEN,))
    con.execute("DELETE FROM subjects WHERE idx >= ?", (CHOSEN,))
    con.execute("DELETE FROM nodes WHERE (idx + 1) << level > ?", (CHOSEN,))
    con.execute("DELETE FROM checkpoints")


CASES: dict[str, Callable[[sqlite3.Connection], None]] = {
    "entries.data": _entry_data,
    "entries.data (signature byte)": _entry_data_signature_byte,
    "entries.idx": _entry_idx,
    "entries.predicate_type": _entry_type,
    "subjects.digest": _subject_digest,
    "subjects.idx": _subject_idx,
    "nodes.hash (leaf)": _leaf_hash,
    "nodes.idx (leaf)": _leaf_idx,
    "nodes.level (leaf)": _leaf_level,
    "nodes.hash (parent)": _parent_node,
    "delete a row": _delete_row,
    "swap two rows": _swap_rows,
    "swap two rows with their index": _swap_rows_with_their_index,
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_edit_is_caught_and_the_entry_named(
    case: str, filled: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(filled, CASES[case])
    rc, out = _verify(filled, capsys)
    assert rc == 1, out
    assert _names_chosen(out), out


def test_rollback_of_the_tail_is_caught_by_the_checkpoint_file(
    filled: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(filled, _delete_last_rows)
    rc, out = _verify(filled, capsys)
    assert rc == 1
    assert _first_bad(out) == CHOSEN
    assert "are gone" in out


def test_checkpoint_note_edits_are_caught(filled: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(con: sqlite3.Connection) -> None:
        size, note = con.execute("SELECT size, note FROM checkpoints ORDER BY size LIMIT 1").fetchone()
        con.execute("UPDATE checkpoints SET note = ? WHERE size = ?", (note.replace("\n", "\n ", 1), size))

    _edit(filled, edit)
    rc, out = _verify(filled, capsys)
    assert rc == 1, out


def test_truncated_database_file_fails_verification(
    filled: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    path = filled.ledger_path
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything into the main file before cutting it
    con.close()
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    rc, out = _verify(filled, capsys)
    assert rc == 1, out
    assert "truncated" in out


def test_checkpoint_signed_by_an_unknown_key_is_rejected(
    filled: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    with filled.open_ledger(writable=False) as led:
        cp = led.latest_checkpoint()
    assert cp is not None
    forged = sign_checkpoint(cp.origin, cp.size, cp.root, cp.origin, generate("ed25519"))
    filled.ledger_path.with_suffix(".checkpoint").write_text(forged.note, encoding="utf-8")
    rc, out = _verify(filled, capsys)
    assert rc == 1
    assert "does not verify" in out or "unknown key" in out


def test_envelope_whose_signature_does_not_verify_is_rejected_on_append(
    filled: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loopwarden.attest import sign_statement

    env = sign_statement(make_statement(99), [generate()])  # a key the workspace does not trust
    f = tmp_path / "env.json"
    f.write_bytes(env.to_bytes())
    before = filled.ledger_path.read_bytes()
    rc = main(["--workspace", str(filled.root), "ledger", "append", str(f)])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(f) in err and "signature" in err
    assert filled.ledger_path.read_bytes() == before
    assert os.path.exists(filled.ledger_path)
