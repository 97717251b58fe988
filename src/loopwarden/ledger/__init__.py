"""The loop's ledger: an append-only RFC 9162 Merkle tree of signed in-toto attestations."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from loopwarden.ledger.checkpoint import Checkpoint, NoteVerifier
from loopwarden.ledger.interface import AppendResult, LedgerEntry, LedgerStore, Problem, VerifyReport
from loopwarden.ledger.merkle import ConsistencyProof, InclusionProof, verify_consistency, verify_inclusion

if TYPE_CHECKING:
    from loopwarden.attest.dsse import Envelope
    from loopwarden.attest.statement import Statement
    from loopwarden.workspace import Workspace

__all__ = [
    "AppendResult",
    "Checkpoint",
    "ConsistencyProof",
    "InclusionProof",
    "LedgerEntry",
    "LedgerStore",
    "NoteVerifier",
    "Problem",
    "VerifyReport",
    "append_documents",
    "export_jsonl",
    "load_documents",
    "record",
    "record_many",
    "verify_consistency",
    "verify_inclusion",
    "verify_ledger",
]


def record_many(statements: Sequence[Statement], workspace: Workspace) -> list[AppendResult]:
    """Sign statements with the workspace's key and append them to its ledger in one batch."""
    from loopwarden.attest.dsse import sign_statement

    signer = workspace.signer()
    envelopes = [sign_statement(s, [signer]) for s in statements]
    with workspace.open_ledger() as ledger:
        return ledger.append_batch(envelopes, with_proofs=True)


def record(statement: Statement, workspace: Workspace) -> AppendResult:
    """Sign one statement with the workspace's key and append it; returns its index and inclusion proof."""
    return record_many([statement], workspace)[0]


def verify_ledger(workspace: Workspace) -> VerifyReport:
    """Full audit of the workspace's ledger against its trusted keys and checkpoint key.

    A ledger whose file is ours but cannot be read (cut, overwritten) fails the audit; a file that is not a ledger
    at all, or is missing, is an environment error (raised).
    """
    from loopwarden.errors import LedgerError

    try:
        ledger = workspace.open_ledger(writable=False)
    except LedgerError as exc:
        if not exc.damaged:
            raise
        return VerifyReport(problems=[Problem(0, str(exc))])
    with ledger:
        return ledger.verify(workspace.trusted_keys, workspace.note_verifier())


def load_documents(paths: Sequence[str], *, sign: bool, workspace: Workspace) -> list[Envelope]:
    """Read DSSE envelopes (or, with ``sign``, in-toto statements to sign) from files; names the bad file.

    Every envelope must verify against the workspace's trusted keys before anything is appended.
    """
    from pathlib import Path

    from loopwarden.attest.dsse import Envelope, sign_statement
    from loopwarden.attest.statement import Statement
    from loopwarden.errors import AttestationError, InputError, VerificationError

    out: list[Envelope] = []
    signer = workspace.signer() if sign else None
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except FileNotFoundError:
            raise InputError(p, "file not found") from None
        except OSError as exc:
            raise InputError(p, f"cannot read: {exc.strerror}") from None
        try:
            if signer is not None:
                out.append(sign_statement(Statement.parse(data, source=p), [signer]))
            else:
                env = Envelope.parse(data, source=p)
                env.statement(source=p)
                env.verify(workspace.trusted_keys, source=p)
                out.append(env)
        except VerificationError as exc:
            raise InputError(p, f"signature check failed: {exc.message.removeprefix(p + ': ')}") from None
        except AttestationError as exc:
            raise InputError(p, exc.message.removeprefix(p + ": ")) from None
    return out


def append_documents(paths: Sequence[str], *, sign: bool, workspace: Workspace) -> list[AppendResult]:
    """Append files as one all-or-nothing batch: one bad file means nothing is written."""
    envelopes = load_documents(paths, sign=sign, workspace=workspace)
    with workspace.open_ledger() as ledger:
        return ledger.append_batch(envelopes, with_proofs=True)


def export_jsonl(ledger: LedgerStore, output: str | None) -> int:
    """Write every entry as one JSON line ``{"index", "envelope"}``; to a file atomically, or to stdout."""
    import json
    import os
    import sys
    from pathlib import Path

    def lines() -> Iterator[str]:
        for e in ledger.entries():
            yield json.dumps({"envelope": json.loads(e.data), "index": e.index}, sort_keys=True) + "\n"

    count = 0
    if output is None:
        for line in lines():
            sys.stdout.write(line)
            count += 1
        return count
    dest = Path(output)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for line in lines():
                fh.write(line)
                count += 1
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return count
