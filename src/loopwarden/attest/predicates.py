"""Predicate types loopwarden writes into the ledger, and builders for the common ones.

Each layer's module may define its own predicate; they are all listed here so readers find them in one place.
"""

from __future__ import annotations

from typing import Final

from loopwarden.attest.statement import Statement
from loopwarden.domain import ResourceDescriptor, TargetResult

__all__ = ["MODEL_SIGNATURE", "NOTE", "OMS_SIGNATURE", "SCAN", "SIGNATURE_VERIFICATION", "scan_statement"]

_BASE: Final = "https://loopwarden.dev/attestation"
SCAN: Final = f"{_BASE}/scan/v1"
"""The result of one check on one artifact (verdict and findings)."""
NOTE: Final = f"{_BASE}/note/v1"
"""A free-form note about artifacts (used by the demo and by operators)."""
OMS_SIGNATURE: Final = "https://model_signing/signature/v1.0"
"""OpenSSF Model Signing v1.0: the signed manifest of a model's files (appended by ``sign --record``)."""
MODEL_SIGNATURE: Final = f"{_BASE}/model-signature/v1"
"""Who signed which weights: the OMS signer's identity (key hint or certificate), the signature's digest."""
SIGNATURE_VERIFICATION: Final = f"{_BASE}/signature-verification/v1"
"""The result of verifying a model folder against its OMS signature (verdict, findings, signer)."""


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
