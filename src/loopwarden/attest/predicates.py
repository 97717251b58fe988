"""Predicate types loopwarden writes into the ledger, and builders for the common ones.

Each layer's module may define its own predicate; they are all listed here so readers find them in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from loopwarden.attest.statement import Statement
from loopwarden.domain import ResourceDescriptor, TargetResult

__all__ = [
    "DATASET_MANIFEST",
    "EVAL_RESULT",
    "GATE_DECISION",
    "NOTE",
    "OMS_SIGNATURE",
    "POLICY_APPROVAL",
    "POLICY_VERSION",
    "ROLE_POLICY",
    "SCAN",
    "SIGNOFF",
    "scan_statement",
]

_BASE: Final = "https://loopwarden.dev/attestation"
SCAN: Final = f"{_BASE}/scan/v1"
"""The result of one check on one artifact (verdict and findings)."""
NOTE: Final = f"{_BASE}/note/v1"
"""A free-form note about artifacts (used by the demo and by operators)."""
DATASET_MANIFEST: Final = f"{_BASE}/dataset-manifest/v1"
"""A dataset's provenance manifest: subjects are its shards; the predicate names the manifest file by digest
and carries per-shard record counts and Merkle roots, sources, licence and generator
(``checks/data/manifest.py``)."""

# -- lineage (LINEAGE, issue 5): the loop's relations, written by loopwarden.lineage, read by its graph index --
SLSA_PROVENANCE: Final = "https://slsa.dev/provenance/v1"
"""A training run: SLSA Provenance v1, subject the weights, resolvedDependencies its inputs."""
GENERATION: Final = f"{_BASE}/generation/v1"
"""Model M generated datasets, code or evals X (subjects: the outputs)."""
EVAL_RUN: Final = f"{_BASE}/eval-run/v1"
"""Eval run E (optionally built from suite S) scored model M (subjects: M and E)."""
AGENT_SESSION: Final = f"{_BASE}/agent-session/v1"
"""Agent session S, acting for model M in role R, changed artifacts X (subjects: S and every X)."""
PROMOTION: Final = f"{_BASE}/promotion/v1"
"""Artifact A was promoted to stage P."""
QUARANTINE: Final = f"{_BASE}/quarantine/v1"
"""Taint record: artifact A is quarantined, with a reason and the reporter."""
CLEARANCE: Final = f"{_BASE}/clearance/v1"
"""A human reviewer clears artifact A (signed by the workspace key and by the reviewer's own key)."""
LINEAGE_PREDICATES: Final = (
    SLSA_PROVENANCE,
    GENERATION,
    EVAL_RUN,
    AGENT_SESSION,
    PROMOTION,
    QUARANTINE,
    CLEARANCE,
)
"""Every predicate type the lineage graph is rebuilt from."""

# -- policy (POLICY, issue 5): written by the gate and `loopwarden policy`, or read by the gate ------------
EVAL_RESULT: Final = f"{_BASE}/eval-result/v1"
"""One measured score: subject the model or agent session; predicate suite, metric, value, recorded_at."""
GATE_DECISION: Final = f"{_BASE}/gate-decision/v1"
"""A gate decision (allow/deny/escalate) with every reason, about the gated artifact."""
POLICY_VERSION: Final = f"{_BASE}/policy-version/v1"
"""One version of the capability-threshold policy; names the previous version (a hash chain)."""
POLICY_APPROVAL: Final = f"{_BASE}/policy-approval/v1"
"""An approver's signed approval of a policy version (subject: the version's digest)."""
SIGNOFF: Final = f"{_BASE}/signoff/v1"
"""A reviewer's signed sign-off on an artifact (two-person-signoff counts distinct human keys)."""
ROLE_POLICY: Final = f"{_BASE}/role-policy/v1"
"""The role policy an agent session ran under (written by the agents layer; agents-least-privilege)."""
OMS_SIGNATURE: Final = "https://model_signing/signature/v1.0"
"""OpenSSF Model Signing v1.0 signature (written by the signing layer; read by weights-signed)."""


def scan_statement(
    result: TargetResult, *, check: str, tool_version: str, recorded_at: datetime | None = None
) -> Statement:
    """A scan attestation whose subject is the scanned artifact's digest.

    ``recorded_at`` (optional, UTC) lets a policy with an evidence maximum age judge how fresh the scan is.
    """
    if result.digest is None:
        raise ValueError(f"{result.path}: a scan attestation needs the artifact's digest")
    subject = ResourceDescriptor.of(result.path, result.digest)
    predicate: dict[str, Any] = {
        "check": check,
        "scanner": {"name": "loopwarden", "version": tool_version},
        "result": result.to_json(),
    }
    if recorded_at is not None:
        if recorded_at.tzinfo is None:
            raise ValueError("recorded_at must carry a time zone")
        predicate["recorded_at"] = recorded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Statement((subject,), SCAN, predicate)


# -- signing (SIGNING, issue 4): written by `loopwarden sign --record` and `verify --record` ---------------
# (the OMS statement itself is recorded under its own type, https://model_signing/signature/v1.0)
MODEL_SIGNATURE: Final = f"{_BASE}/model-signature/v1"
"""Who signed which weights: the OMS signer's identity (key hint or certificate), the signature's digest."""
SIGNATURE_VERIFICATION: Final = f"{_BASE}/signature-verification/v1"
"""The result of verifying a model folder against its OMS signature (verdict, findings, signer)."""
__all__ += ["MODEL_SIGNATURE", "SIGNATURE_VERIFICATION"]
