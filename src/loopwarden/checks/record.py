"""Recording check results in the ledger: the orchestration step that turns a Report into scan attestations.

Checks never write to the ledger themselves (DESIGN.md); the commands that run them call this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from loopwarden.domain import Report
from loopwarden.ledger.interface import AppendResult
from loopwarden.workspace import Workspace

__all__ = ["RecordedScans", "record_scans"]


@dataclass(frozen=True, slots=True)
class RecordedScans:
    results: Sequence[AppendResult]
    skipped: int
    """Targets without a digest (unreadable input): nothing can be attested about them."""


def record_scans(
    report: Report, *, check: str, workspace: Workspace, now: datetime | None = None
) -> RecordedScans:
    """Append one signed scan attestation per target that has a digest, stamped ``recorded_at``."""
    from loopwarden import __version__
    from loopwarden.attest.predicates import scan_statement
    from loopwarden.ledger import record_many

    when = now or datetime.now(UTC)  # lets a policy judge how fresh the scan is (scan-clean max_age)
    statements = [
        scan_statement(t, check=check, tool_version=__version__, recorded_at=when)
        for t in report.targets
        if t.digest is not None
    ]
    results = record_many(statements, workspace) if statements else []
    return RecordedScans(results, len(report.targets) - len(statements))
