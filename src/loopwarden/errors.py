"""The one error tree. Every user-facing error names the input and the problem and says what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "AttestationError",
    "CheckError",
    "InputError",
    "LedgerError",
    "LedgerIntegrityError",
    "LineageError",
    "LoopwardenError",
    "PolicyDenied",
    "PolicyError",
    "SigningError",
    "UsageError",
    "VerificationError",
    "WorkspaceError",
]


class LoopwardenError(Exception):
    """Base of every error loopwarden raises on purpose.

    ``exit_code`` follows DESIGN.md: 2 for usage or environment errors, 1 for a security verdict that failed.
    """

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """A human-readable explanation: the problem, then what to do about it."""
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message

    def __str__(self) -> str:
        return self.message


class UsageError(LoopwardenError):
    """The command line or an argument is wrong."""


class InputError(LoopwardenError):
    """An input (file, folder, database) cannot be read or is not what it should be. Names the input."""

    def __init__(self, path: str | Path, problem: str, *, hint: str | None = None) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}", hint=hint)


class WorkspaceError(LoopwardenError):
    """No workspace, or a broken ``loopwarden.toml``."""


class AttestationError(LoopwardenError):
    """An attestation or envelope is malformed, or a key is wrong or missing."""


class VerificationError(LoopwardenError):
    """A signature, proof or digest did not verify. A security verdict, so exit code 1."""

    exit_code = 1


class LedgerError(LoopwardenError):
    """The ledger cannot be opened or used (foreign file, newer schema, locked, ...)."""

    damaged: bool = False
    """True when the file is a loopwarden ledger whose contents cannot be read: an integrity failure."""


class LedgerIntegrityError(VerificationError):
    """The ledger's contents do not verify: names the first bad entry."""

    def __init__(self, message: str, *, index: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.index = index


class CheckError(LoopwardenError):
    """Base error of the checks extension point."""


class SigningError(LoopwardenError):
    """Base error of model and artifact signing."""


class PolicyError(LoopwardenError):
    """A policy file is malformed or inconsistent."""


class PolicyDenied(LoopwardenError):
    """A gate denied an action. A security verdict, so exit code 1."""

    exit_code = 1


class LineageError(LoopwardenError):
    """The recorded lineage cannot answer a question (an unknown digest, a cycle). Names the digests."""
