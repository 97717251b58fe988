"""Evidence the gate reads from the ledger, and the statements the policy layer writes.

The ledger has no clock of its own, so every time-sensitive predicate carries ``recorded_at`` (RFC 3339, UTC).
An attestation that names a person (an approval, a sign-off) carries that person's public key and is co-signed
with it: the person counts only if their signature over the envelope verifies and the key's id is the one the
policy lists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopwarden.attest.dsse import pae, sign_statement
from loopwarden.attest.keys import PrivateKey, PublicKey
from loopwarden.attest.predicates import EVAL_RESULT, SIGNOFF
from loopwarden.attest.statement import Statement
from loopwarden.domain import Digest, ResourceDescriptor
from loopwarden.errors import AttestationError, InputError, UsageError

if TYPE_CHECKING:
    from loopwarden.ledger.interface import AppendResult, LedgerEntry
    from loopwarden.workspace import Workspace

__all__ = [
    "EvalResult",
    "append_cosigned",
    "eval_result_statement",
    "format_time",
    "load_person_key",
    "parse_time",
    "record_eval_result",
    "record_signoff",
    "recorded_at",
    "signoff_statement",
    "verified_person",
]


def format_time(t: datetime) -> str:
    if t.tzinfo is None:
        raise UsageError("times must carry a time zone (use UTC, e.g. 2026-01-31T12:00:00Z)")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str, *, source: str = "time") -> datetime:
    """RFC 3339 with a zone (``Z`` or an offset). A time without a zone is an error, never local time."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{source}: {text!r} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)") from None
    if t.tzinfo is None:
        raise UsageError(f"{source}: {text!r} has no time zone; add Z for UTC")
    return t.astimezone(UTC)


def recorded_at(predicate: Mapping[str, Any]) -> datetime | None:
    """The time a statement says it was recorded, if it says: ``recorded_at``, else SLSA
    ``runDetails.metadata``."""
    candidates: list[Any] = [predicate.get("recorded_at"), predicate.get("timestamp")]
    run = predicate.get("runDetails")
    if isinstance(run, Mapping) and isinstance(run.get("metadata"), Mapping):
        candidates.append(run["metadata"].get("finishedOn"))
    for c in candidates:
        if isinstance(c, str):
            try:
                return parse_time(c)
            except UsageError:
                return None  # a malformed time is no time: evidence without a time is treated as stale
    return None


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One score, as read back from an eval-result attestation."""

    model: Digest
    suite_digest: Digest
    metric: str
    value: float
    recorded_at: datetime | None
    verdict: str
    ledger_index: int


def eval_result_statement(
    model: Digest,
    *,
    suite: str,
    suite_digest: Digest,
    metric: str,
    value: float,
    recorded_at: datetime,
    model_name: str = "model",
    verdict: str = "clean",
    generation: int | None = None,
) -> Statement:
    """An eval-result attestation: the score ``value`` of ``metric`` from suite ``suite_digest`` on
    ``model``."""
    if verdict not in ("clean", "unverified"):
        raise UsageError(f"eval result verdict must be 'clean' or 'unverified', got {verdict!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"eval result value must be a finite number, got {value!r}")
    pred: dict[str, Any] = {
        "model": str(model),
        "suite": {"name": suite, "digest": str(suite_digest)},
        "metric": metric,
        "value": float(value),
        "verdict": verdict,
        "recorded_at": format_time(recorded_at),
    }
    if generation is not None:
        pred["generation"] = generation
    return Statement((ResourceDescriptor.of(model_name, model),), EVAL_RESULT, pred)


def record_eval_result(
    workspace: Workspace,
    model: Digest,
    *,
    suite: str,
    suite_digest: Digest,
    metric: str,
    value: float,
    recorded_at: datetime | None = None,
    model_name: str = "model",
    verdict: str = "clean",
    generation: int | None = None,
) -> AppendResult:
    """Sign an eval-result attestation with the workspace's key and append it to the ledger."""
    from loopwarden.ledger import record

    stmt = eval_result_statement(
        model,
        suite=suite,
        suite_digest=suite_digest,
        metric=metric,
        value=value,
        recorded_at=recorded_at or datetime.now(UTC),
        model_name=model_name,
        verdict=verdict,
        generation=generation,
    )
    return record(stmt, workspace)


def parse_eval_result(entry: LedgerEntry) -> EvalResult | None:
    """Read one eval-result entry; a malformed predicate yields None (and so never counts as a
    measurement)."""
    try:
        p = entry.statement().predicate
        suite = p["suite"]
        value = p["value"]
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        return EvalResult(
            model=Digest.parse(str(p["model"])),
            suite_digest=Digest.parse(str(suite["digest"])),
            metric=str(p["metric"]),
            value=float(value),
            recorded_at=recorded_at(p),
            verdict=str(p.get("verdict", "unverified")),
            ledger_index=entry.index,
        )
    except (KeyError, TypeError, ValueError, AttestationError):
        return None


def signoff_statement(
    artifact: Digest, reviewer: PrivateKey, *, note: str, recorded_at: datetime
) -> Statement:
    pred = {
        "reviewer": {"keyid": reviewer.keyid, "public_key": reviewer.public().pem().decode()},
        "note": note,
        "recorded_at": format_time(recorded_at),
    }
    return Statement((ResourceDescriptor.of("artifact", artifact),), SIGNOFF, pred)


def append_cosigned(
    workspace: Workspace, statement: Statement, cosigners: Sequence[PrivateKey]
) -> AppendResult:
    """Sign with the named people's keys and the workspace's key (so the ledger accepts it), then append."""
    env = sign_statement(statement, [*cosigners, workspace.signer()])
    with workspace.open_ledger() as led:
        return led.append_batch([env], with_proofs=True)[0]


def record_signoff(
    workspace: Workspace,
    artifact: Digest,
    reviewer: PrivateKey,
    *,
    note: str = "",
    now: datetime | None = None,
) -> AppendResult:
    """A reviewer's sign-off on an artifact, co-signed with the reviewer's key (two-person-signoff
    evidence)."""
    return append_cosigned(
        workspace,
        signoff_statement(artifact, reviewer, note=note, recorded_at=now or datetime.now(UTC)),
        [reviewer],
    )


def verified_person(entry: LedgerEntry, field: str) -> str | None:
    """The key id of the person named in ``predicate[field]`` if their signature over this entry verifies."""
    try:
        env = entry.envelope()
        who = env.statement().predicate.get(field)
        if not isinstance(who, Mapping):
            return None
        keyid, pem = who.get("keyid"), who.get("public_key")
        if not isinstance(keyid, str) or not isinstance(pem, str):
            return None
        key = PublicKey.from_pem(pem.encode(), source=f"ledger entry {entry.index}")
    except (AttestationError, InputError):
        return None
    if key.keyid != keyid:
        return None
    message = pae(env.payload_type, env.payload)
    if any(s.keyid == keyid and key.verify(s.sig, message) for s in env.signatures):
        return keyid
    return None


def load_person_key(path: str) -> PrivateKey:
    """A person's own private key (approver, proposer, reviewer); encrypted keys use
    $LOOPWARDEN_KEY_PASSWORD."""
    import os

    from loopwarden.attest.keys import load_private
    from loopwarden.workspace import PASSWORD_ENV

    pw = os.environ.get(PASSWORD_ENV)
    return load_private(path, pw.encode() if pw else None)
