"""Predicate types loopwarden writes into the ledger, and builders for the common ones.

Each layer's module may define its own predicate; they are all listed here so readers find them in one place.
"""

from __future__ import annotations

from typing import Final

from loopwarden.attest.statement import Statement
from loopwarden.domain import ResourceDescriptor, TargetResult

__all__ = ["NOTE", "SCAN", "scan_statement"]

_BASE: Final = "https://loopwarden.dev/attestation"
SCAN: Final = f"{_BASE}/scan/v1"
"""The result of one check on one artifact (verdict and findings)."""
NOTE: Final = f"{_BASE}/note/v1"
"""A free-form note about artifacts (used by the demo and by operators)."""


def scan_statement(result: TargetResult, *, check: str, tool_version: str) -> Statement:
    """A scan attestation whose subject is the scanned artifact's digest."""
    if result.digest is None:
        raise ValueError(f"{result.path}: a scan attestation needs the artifact's digest")
    subject = ResourceDescriptor.of(result.path, result.digest)
    predicate = {
        "check": check,
        "scanner": {"name": "loopwarden", "version": tool_version},
        "result": result.to_json(),
    }
    return Statement((subject,), SCAN, predicate)


# -- signing (SIGNING, issue 4): written by `loopwarden sign --record` and `verify --record` ---------------
# (the OMS statement itself is recorded under its own type, https://model_signing/signature/v1.0)
MODEL_SIGNATURE: Final = f"{_BASE}/model-signature/v1"
"""Who signed which weights: the OMS signer's identity (key hint or certificate), the signature's digest."""
SIGNATURE_VERIFICATION: Final = f"{_BASE}/signature-verification/v1"
"""The result of verifying a model folder against its OMS signature (verdict, findings, signer)."""
__all__ += ["MODEL_SIGNATURE", "SIGNATURE_VERIFICATION"]
