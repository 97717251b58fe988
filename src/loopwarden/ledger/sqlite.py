"""The embedded ledger: one SQLite file (WAL mode), perfect Merkle nodes stored beside the entries.

Every append runs in one ``BEGIN IMMEDIATE`` transaction that assigns indexes, stores the entries, their index rows and
the perfect nodes they complete, and a signed checkpoint of the new tree; so two processes appending at once yield one
log, and a process killed mid-append leaves either all of a batch or none of it. After the commit the checkpoint is
also written beside the database (``ledger.checkpoint``), so a rollback of the database file itself is detected.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import struct
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from loopwarden.attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from loopwarden.attest.keys import KeySet, PrivateKey
from loopwarden.attest.statement import STATEMENT_TYPE
from loopwarden.domain import Digest
from loopwarden.errors import AttestationError, LedgerError, LedgerIntegrityError, VerificationError
from loopwarden.ledger.checkpoint import Checkpoint, NoteVerifier, sign_checkpoint
from loopwarden.ledger.interface import AppendResult, LedgerEntry, Problem, VerifyReport
from loopwarden.ledger.merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    InclusionProof,
    consistency_keys,
    consistency_proof,
    inclusion_keys,
    inclusion_proof,
    leaf_hash,
    mth,
    node_hash,
    perfect_nodes_after_append,
)

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SqliteLedger"]

APPLICATION_ID: Final = 0x4C57_4C47  # "LWLG"
SCHEMA_VERSION: Final = 1
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"

_SCHEMA: Final = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE entries(idx INTEGER PRIMARY KEY, data BLOB NOT NULL, predicate_type TEXT NOT NULL);
CREATE INDEX entries_by_type ON entries(predicate_type, idx);
CREATE TABLE subjects(idx INTEGER NOT NULL, digest TEXT NOT NULL, PRIMARY KEY(idx, digest)) WITHOUT ROWID;
CREATE INDEX subjects_by_digest ON subjects(digest, idx);
CREATE TABLE nodes(level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY(level, idx))
  WITHOUT ROWID;
CREATE TABLE checkpoints(size INTEGER PRIMARY KEY, note TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class _Prepared:
    data: bytes
    leaf: bytes
    predicate_type: str
    subjects: tuple[str, ...]


@dataclass(slots=True)
class _Slot:
    """One waiting append in a group commit."""

    prepared: _Prepared
    result: AppendResult | None = None
    error: BaseException | None = None

    def unwrap(self) -> AppendResult:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def _prepare(env: Envelope) -> _Prepared:
    """Check an envelope's shape and derive its index columns.

    The same rules as :meth:`Statement.from_json` (which the audit uses), without building the objects: this is the
    hot path of every append.
    """
    if not env.signatures:
        raise AttestationError("refusing to record an unsigned envelope")
    if env.payload_type != INTOTO_PAYLOAD_TYPE:
        raise AttestationError(f"payload type is {env.payload_type!r}, expected {INTOTO_PAYLOAD_TYPE!r}")
    try:
        obj = json.loads(env.payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttestationError(f"statement is not valid JSON ({exc})") from None
    if not isinstance(obj, dict) or obj.get("_type") != STATEMENT_TYPE:
        raise AttestationError(f"statement _type must be {STATEMENT_TYPE!r}")
    ptype = obj.get("predicateType")
    subjects = obj.get("subject")
    if not isinstance(ptype, str) or not ptype:
        raise AttestationError("statement needs a 'predicateType' string")
    if not isinstance(obj.get("predicate", {}), dict):
        raise AttestationError("'predicate' must be a JSON object")
    if not isinstance(subjects, list) or not subjects:
        raise AttestationError("statement needs a non-empty 'subject' list")
    digests: set[str] = set()
    for sub in subjects:
        dig = sub.get("digest") if isinstance(sub, dict) else None
        if not isinstance(dig, dict) or not dig or not isinstance(sub.get("name", ""), str):
            raise AttestationError(
                "bad subject: a resource descriptor needs a 'digest' object and a string name"
            )
        for algo, value in dig.items():
            try:
                digests.add(str(Digest(str(algo), str(value))))
            except ValueError as exc:
                raise AttestationError(f"bad subject: {exc}") from None
    data = env.to_bytes()
    return _Prepared(data, leaf_hash(data), ptype, tuple(sorted(digests)))


def read_header(path: Path) -> tuple[bool, int | None, int | None, int | None]:
    """(is_sqlite, application_id, page_size, page_count) read straight from the file header."""
    try:
        with path.open("rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read the ledger file: {exc.strerror}") from None
    if len(head) < 100 or not head.startswith(_SQLITE_MAGIC):
        return (head.startswith(_SQLITE_MAGIC), None, None, None)
    page_size = struct.unpack(">H", head[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    change, count, valid_for = (
        struct.unpack(">I", head[24:28])[0],
        struct.unpack(">I", head[28:32])[0],
        (struct.unpack(">I", head[92:96])[0]),
    )
    app_id = struct.unpack(">I", head[68:72])[0]
    return (True, app_id, page_size, count if change == valid_for else None)


class SqliteLedger:
    """The embedded default ledger store."""

    def __init__(
        self,
        path: str | Path,
        *,
        origin: str | None = None,
        checkpoint_key: PrivateKey | None = None,
        checkpoint_key_name: str | None = None,
        create: bool = False,
        readonly: bool = False,
    ) -> None:
        self.path = str(path)
        self._file = Path(path)
        self._key = checkpoint_key
        self._key_name = checkpoint_key_name
        self._lock = threading.RLock()
        self._group = threading.Condition()
        self._queue: list[_Slot] = []
        self._committing = False
        self._readonly = readonly
        exists = self._file.exists()
        if not exists and not create:
            raise LedgerError(
                f"{self.path}: no ledger here", hint="run 'loopwarden init' to create a workspace"
            )
        if exists and self._file.stat().st_size > 0:
            self._check_foreign()
        elif exists and not create:
            raise LedgerError(f"{self.path}: the ledger file is empty (not a loopwarden ledger)")
        try:
            if readonly:
                self._db = sqlite3.connect(
                    f"{self._file.resolve().as_uri()}?mode=ro",
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=60,
                )
            else:
                self._db = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=60
                )
            self._db.execute("PRAGMA busy_timeout = 60000")
            # The subject index takes inserts in random (digest) order: keep its hot pages in memory.
            self._db.execute("PRAGMA cache_size = -65536")
            fresh = not exists or (self._file.stat().st_size == 0 and create)
            if not fresh:
                self._check_schema()  # before any pragma that writes: a foreign or newer file stays untouched
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = FULL")
            if fresh:
                self._create(origin)
                self._check_schema()
            row = self._db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            err = LedgerError(f"{self.path}: cannot open the ledger: {exc}")
            err.damaged = True
            raise err from None
        except LedgerError:
            self._close_quietly()
            raise
        if row is None:
            raise LedgerError(f"{self.path}: the ledger has no origin recorded (damaged metadata)")
        self.origin: str = row[0]

    # -- opening ---------------------------------------------------------------------------------------------------

    def _check_foreign(self) -> None:
        is_sqlite, app_id, _, _ = read_header(self._file)
        if not is_sqlite:
            raise LedgerError(f"{self.path}: not a loopwarden ledger (not an SQLite database)")
        if app_id is not None and app_id != APPLICATION_ID:
            raise LedgerError(f"{self.path}: not a loopwarden ledger (a foreign SQLite database)")

    def _create(self, origin: str | None) -> None:
        if not origin:
            raise LedgerError(f"{self.path}: a new ledger needs an origin name")
        with self._txn() as db:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(
                "INSERT INTO meta VALUES ('origin', ?), ('application', 'loopwarden-ledger')", (origin,)
            )
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_schema(self) -> None:
        app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise LedgerError(f"{self.path}: not a loopwarden ledger (a foreign SQLite database)")
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"{self.path}: written by a newer loopwarden (ledger schema {version}; this version reads up to "
                f"{SCHEMA_VERSION})",
                hint="upgrade loopwarden",
            )
        if version < SCHEMA_VERSION:
            raise LedgerError(f"{self.path}: unknown ledger schema version {version}")

    @contextlib.contextmanager
    def _txn(self) -> Iterator[sqlite3.Connection]:
        if self._readonly:
            raise LedgerError(f"{self.path}: the ledger was opened read-only")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- nodes -----------------------------------------------------------------------------------------------------

    def _fetch_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        out: dict[tuple[int, int], bytes] = {}
        get = self._db.execute
        for key in dict.fromkeys(keys):
            row = get("SELECT hash FROM nodes WHERE level = ? AND idx = ?", key).fetchone()
            if row is None:
                level, idx = key
                raise LedgerIntegrityError(
                    f"{self.path}: tree node (level {level}, #{idx}) is missing", index=idx << level
                )
            out[key] = row[0]
        return out

    @staticmethod
    def _frontier_keys(size: int) -> list[tuple[int, int]]:
        return [(lv, (size >> lv) - 1) for lv in range(size.bit_length()) if (size >> lv) & 1]

    # -- writing ---------------------------------------------------------------------------------------------------

    def append(self, envelope: Envelope) -> AppendResult:
        """Append one envelope; returns its index and inclusion proof once it is durable.

        Group commit: threads appending at the same time share one transaction. The first to arrive commits
        everything queued; the others wait for its commit and get their own results.
        """
        self._require_key()
        slot = _Slot(_prepare(envelope))
        with self._group:
            self._queue.append(slot)
            while slot.result is None and slot.error is None:
                if not self._committing:
                    self._committing = True
                    batch, self._queue = self._queue, []
                    break
                self._group.wait()
            else:
                return slot.unwrap()
        try:
            results = self._commit([s.prepared for s in batch], with_proofs=True)
        except BaseException as exc:
            for s in batch:
                s.error = exc
            raise
        else:
            for s, r in zip(batch, results, strict=True):
                s.result = r
        finally:
            with self._group:
                self._committing = False
                self._group.notify_all()
        return slot.unwrap()

    def _require_key(self) -> None:
        if self._key is None or self._key_name is None:
            raise LedgerError(f"{self.path}: opened without the ledger's checkpoint key; cannot append")

    def append_batch(self, envelopes: Sequence[Envelope], *, with_proofs: bool = False) -> list[AppendResult]:
        """Append envelopes in one transaction: all of them or, on any error, none."""
        self._require_key()
        if not envelopes:
            return []
        return self._commit([_prepare(e) for e in envelopes], with_proofs=with_proofs)

    def _commit(self, prepared: list[_Prepared], *, with_proofs: bool) -> list[AppendResult]:
        key, key_name = self._key, self._key_name
        if key is None or key_name is None:
            raise LedgerError(f"{self.path}: opened without the ledger's checkpoint key; cannot append")
        with self._txn() as db:
            n = self._size(db)
            nodes = self._fetch_nodes(self._frontier_keys(n))
            new_nodes: list[tuple[int, int, bytes]] = []

            def get(level: int, idx: int) -> bytes:
                return nodes[(level, idx)]

            for k, p in enumerate(prepared):
                for lv, ix, h in perfect_nodes_after_append(n + k, p.leaf, get):
                    nodes[(lv, ix)] = h
                    new_nodes.append((lv, ix, h))
            db.executemany(
                "INSERT INTO entries(idx, data, predicate_type) VALUES (?, ?, ?)",
                [(n + k, p.data, p.predicate_type) for k, p in enumerate(prepared)],
            )
            db.executemany(
                "INSERT INTO subjects(idx, digest) VALUES (?, ?)",
                [(n + k, s) for k, p in enumerate(prepared) for s in p.subjects],
            )
            db.executemany("INSERT INTO nodes(level, idx, hash) VALUES (?, ?, ?)", new_nodes)
            size = n + len(prepared)
            root = mth(0, size, get)
            cp = sign_checkpoint(self.origin, size, root, key_name, key)
            db.execute("INSERT INTO checkpoints(size, note) VALUES (?, ?)", (size, cp.note))
        self._write_checkpoint_file(cp)

        def getter(level: int, idx: int) -> bytes:
            h = nodes.get((level, idx))
            return h if h is not None else self._fetch_nodes([(level, idx)])[(level, idx)]

        return [
            AppendResult(n + k, size, root, inclusion_proof(n + k, size, getter) if with_proofs else None, cp)
            for k in range(len(prepared))
        ]

    @property
    def checkpoint_file(self) -> Path:
        return self._file.with_suffix(".checkpoint")

    def _write_checkpoint_file(self, cp: Checkpoint) -> None:
        """Keep the newest checkpoint outside the database, never letting it go backwards."""
        target = self.checkpoint_file
        lock_path = target.with_suffix(".checkpoint.lock")
        with open(lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                old = Checkpoint.parse(target.read_text(encoding="utf-8"))
                if old.size >= cp.size:
                    return
            except (FileNotFoundError, VerificationError, UnicodeDecodeError):
                pass
            tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(cp.note)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)

    # -- reading ---------------------------------------------------------------------------------------------------

    def _size(self, db: sqlite3.Connection) -> int:
        row = db.execute("SELECT MAX(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def size(self) -> int:
        with self._lock:
            return self._size(self._db)

    def get(self, index: int) -> LedgerEntry:
        with self._lock:
            row = self._db.execute("SELECT data FROM entries WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise LedgerError(f"{self.path}: no entry {index} (the ledger has {self.size()} entries)")
        return LedgerEntry(index, bytes(row[0]))

    def entries(
        self,
        *,
        subject: object | None = None,
        predicate_type: str | None = None,
        start: int = 0,
        limit: int | None = None,
    ) -> Iterator[LedgerEntry]:
        sql = "SELECT e.idx, e.data FROM entries e"
        where = ["e.idx >= ?"]
        params: list[object] = [start]
        if subject is not None:
            sql += " JOIN subjects s ON s.idx = e.idx"
            where.append("s.digest = ?")
            params.append(str(subject))
        if predicate_type is not None:
            where.append("e.predicate_type = ?")
            params.append(predicate_type)
        sql += " WHERE " + " AND ".join(where) + " ORDER BY e.idx"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        for idx, data in rows:
            yield LedgerEntry(idx, bytes(data))

    def _getter(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        with self._lock:
            return self._fetch_nodes(keys)

    def root(self, size: int | None = None) -> bytes:
        n = self.size() if size is None else size
        if n == 0:
            return EMPTY_ROOT
        self._check_size(n)
        nodes = self._getter(self._frontier_keys(n))
        return mth(0, n, lambda lv, ix: nodes[(lv, ix)])

    def _check_size(self, n: int) -> None:
        have = self.size()
        if not 0 <= n <= have:
            raise LedgerError(f"{self.path}: tree size {n} is beyond the ledger's {have} entries")

    def inclusion_proof(self, index: int, size: int | None = None) -> InclusionProof:
        n = self.size() if size is None else size
        self._check_size(n)
        if not 0 <= index < n:
            raise LedgerError(f"{self.path}: entry {index} is not in a tree of size {n}")
        nodes = self._getter(inclusion_keys(index, n))
        return inclusion_proof(index, n, lambda lv, ix: nodes[(lv, ix)])

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        n = self.size() if new_size is None else new_size
        self._check_size(n)
        if not 0 <= old_size <= n:
            raise LedgerError(f"{self.path}: no consistency proof from size {old_size} to size {n}")
        nodes = self._getter(consistency_keys(old_size, n))
        return consistency_proof(old_size, n, lambda lv, ix: nodes[(lv, ix)])

    def latest_checkpoint(self) -> Checkpoint | None:
        with self._lock:
            row = self._db.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else Checkpoint.parse(row[0], source=f"{self.path} checkpoint")

    # -- audit -----------------------------------------------------------------------------------------------------

    def verify(self, trusted: KeySet, note_verifier: NoteVerifier | None = None) -> VerifyReport:
        """Recompute every leaf, node and root; check every signature and checkpoint. Never stops at the first."""
        report = VerifyReport()
        truncated = self._truncation()
        if truncated:
            report.problems.append(Problem(0, truncated))
        try:
            with self._lock:
                self._verify(trusted, note_verifier, report)
        except sqlite3.DatabaseError as exc:
            report.problems.append(
                Problem(report.size, f"the database is damaged from entry {report.size} on: {exc}")
            )
        return report

    def _truncation(self) -> str | None:
        """Compare the file with the size its own header declares (cut files are otherwise read as short)."""
        wal = Path(f"{self._file}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            # Mid-checkpoint (e.g. a writer killed while copying WAL frames back) the main file may be shorter than
            # its header says while the WAL still holds every page; SQLite reads through the WAL, so judge by that.
            return None
        _, _, page_size, page_count = read_header(self._file)
        if page_size is None or page_count is None:
            return None
        want = page_size * page_count
        have = self._file.stat().st_size
        if have < want:
            return f"the ledger file is truncated: its header declares {want} bytes, the file has {have}"
        return None

    def _verify(self, trusted: KeySet, nv: NoteVerifier | None, report: VerifyReport) -> None:
        db = self._db
        db.execute("BEGIN")  # one consistent snapshot for the whole audit
        try:
            self._verify_in_snapshot(db, trusted, nv, report)
        finally:
            db.execute("COMMIT")

    def _verify_in_snapshot(
        self, db: sqlite3.Connection, trusted: KeySet, nv: NoteVerifier | None, report: VerifyReport
    ) -> None:
        problems = report.problems
        subj_rows = db.execute("SELECT idx, digest FROM subjects ORDER BY idx, digest")
        pending_subject = subj_rows.fetchone()
        leaf_rows = db.execute("SELECT idx, hash FROM nodes WHERE level = 0 ORDER BY idx")
        pending_leaf = leaf_rows.fetchone()
        leaves = bytearray()
        expected = 0
        for idx, data, ptype in db.execute("SELECT idx, data, predicate_type FROM entries ORDER BY idx"):
            data = bytes(data)
            if idx != expected:
                if idx > expected:
                    problems.append(Problem(expected, f"entry {expected} is missing (next stored is {idx})"))
                else:
                    problems.append(Problem(idx, f"entry {idx} is out of order"))
                expected = idx
            expected += 1
            report.size = expected
            lh = leaf_hash(data)
            leaves += lh
            # stored leaf node
            while pending_leaf is not None and pending_leaf[0] < idx:
                problems.append(Problem(pending_leaf[0], f"leaf node {pending_leaf[0]} has no entry"))
                pending_leaf = leaf_rows.fetchone()
            if pending_leaf is None or pending_leaf[0] != idx:
                problems.append(Problem(idx, f"entry {idx}: its leaf hash is not stored"))
            else:
                if bytes(pending_leaf[1]) != lh:
                    problems.append(Problem(idx, f"entry {idx}: content does not match its stored leaf hash"))
                pending_leaf = leaf_rows.fetchone()
            # stored subjects
            stored: list[str] = []
            while pending_subject is not None and pending_subject[0] <= idx:
                if pending_subject[0] == idx:
                    stored.append(pending_subject[1])
                else:
                    problems.append(
                        Problem(pending_subject[0], f"subject row for missing entry {pending_subject[0]}")
                    )
                pending_subject = subj_rows.fetchone()
            try:
                env = Envelope.parse(data, source=f"entry {idx}")
                stmt = env.statement(source=f"entry {idx}")
                derived = sorted({str(d) for d in stmt.subject_digests()})
                if stmt.predicate_type != ptype:
                    problems.append(
                        Problem(idx, f"entry {idx}: stored predicate type does not match the envelope")
                    )
                if derived != stored:
                    problems.append(
                        Problem(idx, f"entry {idx}: stored subject index does not match the envelope")
                    )
                env.verify(trusted, source=f"entry {idx}")
                report.signatures_checked += len(env.signatures)
            except (AttestationError, VerificationError) as exc:
                problems.append(Problem(idx, f"entry {idx}: {exc}"))
        n = len(leaves) // 32
        if pending_leaf is not None:
            problems.append(Problem(pending_leaf[0], f"leaf node {pending_leaf[0]} has no entry"))
        if pending_subject is not None:
            problems.append(
                Problem(pending_subject[0], f"subject row for missing entry {pending_subject[0]}")
            )
        report.size = n
        levels = self._verify_nodes(db, leaves, problems)

        def node(level: int, idx: int) -> bytes:
            lv = levels[level]
            return bytes(lv[idx * 32 : idx * 32 + 32])

        report.root = mth(0, n, node) if n else EMPTY_ROOT

        def check_cp(cp: Checkpoint, where: str) -> None:
            if cp.origin != self.origin:
                problems.append(
                    Problem(min(cp.size, n), f"{where}: origin {cp.origin!r} is not this ledger's")
                )
            if nv is not None:
                try:
                    nv.verify(cp, source=where)
                except VerificationError as exc:
                    problems.append(Problem(min(cp.size, n), str(exc)))
            if cp.size > n:
                problems.append(
                    Problem(
                        n,
                        f"{where} covers {cp.size} entries but the ledger holds {n}: entries {n} to "
                        f"{cp.size - 1} are gone",
                    )
                )
            elif (mth(0, cp.size, node) if cp.size else EMPTY_ROOT) != cp.root:
                # Which entry changed cannot be told from a root alone; the checkpoint's last entry bounds it.
                problems.append(Problem(max(0, cp.size - 1), f"{where}: root does not match the entries"))
            report.checkpoints_checked += 1

        for size, note in db.execute("SELECT size, note FROM checkpoints ORDER BY size"):
            try:
                cp = Checkpoint.parse(note, source=f"checkpoint {size}")
            except VerificationError as exc:
                problems.append(Problem(min(size, n), str(exc)))
                continue
            if cp.size != size:
                problems.append(
                    Problem(min(size, n), f"checkpoint row {size} holds a note for size {cp.size}")
                )
            check_cp(cp, f"checkpoint at size {cp.size}")
        try:
            text = self.checkpoint_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            if n:
                problems.append(Problem(0, f"{self.checkpoint_file.name} is missing"))
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(0, f"{self.checkpoint_file.name} cannot be read: {exc}"))
        else:
            try:
                check_cp(Checkpoint.parse(text, source=self.checkpoint_file.name), self.checkpoint_file.name)
            except VerificationError as exc:
                problems.append(Problem(0, str(exc)))

    def _verify_nodes(
        self, db: sqlite3.Connection, leaves: bytearray, problems: list[Problem]
    ) -> list[bytearray]:
        """Check the stored tree: every stored node must hash from its stored children, level by level.

        Leaves were already compared with the entries, so together this proves the stored tree is the tree of the
        entries, and a bad node is blamed on the entries it covers rather than on everything above it. Returns the
        levels recomputed from the entries themselves (used for checkpoint roots).
        """
        levels = [leaves]
        while len(levels[-1]) >= 64:
            below = levels[-1]
            cur = bytearray()
            for i in range(len(below) // 64):
                cur += node_hash(bytes(below[i * 64 : i * 64 + 32]), bytes(below[i * 64 + 32 : i * 64 + 64]))
            levels.append(cur)
        prev = self._stored_level(db, 0, len(leaves) // 32, problems)
        for level in range(1, len(levels)):
            count = len(levels[level]) // 32
            stored = self._stored_level(db, level, count, problems)
            for idx in range(count):
                h = stored[idx]
                left, right = prev[2 * idx], prev[2 * idx + 1]
                if h is None or left is None or right is None:
                    continue  # a missing node was already reported
                if node_hash(left, right) != h:
                    first = idx << level
                    problems.append(
                        Problem(
                            first,
                            f"entries {first}..{first + (1 << level) - 1}: stored tree node (level {level}, #{idx}) "
                            "does not hash from the nodes below it (rows changed, swapped or replaced)",
                        )
                    )
            prev = stored
        top = db.execute("SELECT COUNT(*) FROM nodes WHERE level >= ?", (len(levels),)).fetchone()[0]
        if top:
            problems.append(Problem(len(leaves) // 32, f"{top} tree node(s) stored above the tree's height"))
        return levels

    @staticmethod
    def _stored_level(
        db: sqlite3.Connection, level: int, count: int, problems: list[Problem]
    ) -> list[bytes | None]:
        stored: list[bytes | None] = [None] * count
        for idx, h in db.execute("SELECT idx, hash FROM nodes WHERE level = ? ORDER BY idx", (level,)):
            if not 0 <= idx < count:
                if level:  # stray leaves were reported with the entries
                    problems.append(
                        Problem(max(0, idx) << level, f"tree node (level {level}, #{idx}) beyond the tree")
                    )
                continue
            stored[idx] = bytes(h)
        if level:
            for idx, h in enumerate(stored):
                if h is None:
                    problems.append(Problem(idx << level, f"tree node (level {level}, #{idx}) is missing"))
        return stored
