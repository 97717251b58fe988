"""Signing and verifying model weights, datasets and any file set: OpenSSF Model Signing (OMS) v1.0.

The plain functions are :func:`sign`, :func:`sign_digests` and :func:`verify`; :func:`record_signature` and
:func:`record_verification` put their results into the workspace ledger. Trusts and signers: key
(:class:`KeyTrust`, :class:`KeySigner`), certificate chain (:class:`CertificateTrust`, :class:`CertificateSigner`)
and Sigstore keyless (:class:`SigstoreTrust`, :class:`KeylessSigner`, optional ``sigstore`` extra). See
``docs/signing.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopwarden.signing.interface import (
    BUNDLE_MEDIA_TYPE,
    DEFAULT_SHARD_SIZE,
    OMS_PREDICATE_TYPE,
    FolderChangedError,
    Resource,
    Serialization,
    SignatureFormatError,
)
from loopwarden.signing.keyless import KeylessSigner, SigstoreTrust
from loopwarden.signing.oms import CertificateSigner, CertificateTrust, KeySigner, KeyTrust, load_certificates
from loopwarden.signing.sign import SignResult, sign, sign_digests
from loopwarden.signing.verify import VerifyResult, default_signature, verify

if TYPE_CHECKING:
    from loopwarden.ledger.interface import AppendResult
    from loopwarden.workspace import Workspace

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "DEFAULT_SHARD_SIZE",
    "OMS_PREDICATE_TYPE",
    "CertificateSigner",
    "CertificateTrust",
    "FolderChangedError",
    "KeySigner",
    "KeyTrust",
    "KeylessSigner",
    "Resource",
    "Serialization",
    "SignResult",
    "SignatureFormatError",
    "SigstoreTrust",
    "VerifyResult",
    "default_signature",
    "load_certificates",
    "record_signature",
    "record_verification",
    "sign",
    "sign_digests",
    "verify",
]


def _subject(name: str, root: str) -> Any:
    from loopwarden.domain import ResourceDescriptor

    return ResourceDescriptor(name=name, digest={"sha256": root})


def _file_subject(name: str, algorithm: str, digest: str) -> Any:
    from loopwarden.domain import ResourceDescriptor

    return ResourceDescriptor(name=name, digest={algorithm: digest})


def record_signature(
    result: SignResult, workspace: Workspace, *, tool_version: str, path: Path | None = None
) -> list[AppendResult]:
    """Append the signed OMS statement and a loopwarden model-signature attestation (who signed which
    weights, and when).

    With ``path`` the attestation also names the signed folder or file by its lineage digest (``sha256`` of a
    file, ``sha256-tree`` of a folder), so the gate's ``weights-signed`` safeguard and the lineage graph find the
    signature under the digest the rest of the loop uses. That re-reads the files once.
    """
    import contextlib
    import hashlib
    from datetime import UTC, datetime

    from loopwarden.attest.predicates import MODEL_SIGNATURE
    from loopwarden.attest.statement import Statement
    from loopwarden.ledger import record_many

    stmt = Statement.from_json(result.statement.to_json(), source=str(result.signature))
    sig_bytes = result.bundle.to_bytes()
    subjects = [_subject(result.statement.name, result.statement.root)]
    ser = result.statement.serialization
    if ser.method == "files":  # each weights file by its own digest, so lineage finds it from any file
        subjects += [_file_subject(r.name, r.algorithm, r.digest) for r in result.statement.resources]
    if path is not None and path.exists():
        from loopwarden.domain import ResourceDescriptor
        from loopwarden.errors import InputError
        from loopwarden.lineage.record import hash_path

        # A folder with symbolic links has no lineage digest (lineage refuses them); the OMS root still names it.
        with contextlib.suppress(InputError):
            subjects.append(ResourceDescriptor.of(path.name or str(path), hash_path(path)))
    ours = Statement(
        tuple(subjects),
        MODEL_SIGNATURE,
        {
            "signer": result.signer,
            "signature": {"name": result.signature.name, "sha256": hashlib.sha256(sig_bytes).hexdigest()},
            "serialization": result.statement.serialization.to_json(),
            "resources": len(result.statement.resources),
            "tool": {"name": "loopwarden", "version": tool_version},
            "recorded_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
    )
    return record_many([stmt, ours], workspace)


def record_verification(
    result: VerifyResult, workspace: Workspace, *, tool_version: str
) -> list[AppendResult]:
    """Append a verification-result attestation about the model's root digest."""
    from loopwarden.attest.predicates import SIGNATURE_VERIFICATION
    from loopwarden.attest.statement import Statement
    from loopwarden.errors import SigningError
    from loopwarden.ledger import record_many

    if result.statement is None:
        raise SigningError(
            f"{result.signature}: the signature did not verify, so there is no trusted digest to record against"
        )
    stmt = Statement(
        (_subject(result.statement.name, result.statement.root),),
        SIGNATURE_VERIFICATION,
        {
            "verified": result.verified,
            "signer": result.signer,
            "serialization": result.statement.serialization.to_json(),
            "result": result.result.to_json(),
            "tool": {"name": "loopwarden", "version": tool_version},
        },
    )
    return record_many([stmt], workspace)
