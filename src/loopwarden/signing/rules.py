"""Rule ids of the signing layer: each verification problem becomes one finding naming the offending path.

Documented in ``docs/rules.md#signing``.
"""

from __future__ import annotations

from typing import Any

from loopwarden.domain import Finding, Location, Rule, Severity

__all__ = [
    "BadResourceName",
    "EmptyFileUncovered",
    "IgnoredBySignature",
    "IgnoredOnRequest",
    "MalformedManifest",
    "MissingFile",
    "ModifiedFile",
    "SignatureInvalid",
    "SigningRule",
    "SpecialFile",
    "SymlinkEscape",
    "SymlinkPresent",
    "UnsignedFile",
]


class SigningRule(Rule):
    @classmethod
    def finding(cls, path: str, message: str, *, member: str | None = None, **evidence: Any) -> Finding:
        return Finding(cls.rule_id, cls.severity, message, Location(path, member=member), evidence)


class SignatureInvalid(SigningRule):
    rule_id = "LW-SIGN-001"
    severity = Severity.CRITICAL
    title = "signature does not verify"
    help = (
        "The bundle is not signed by the trusted key, certificate chain or Sigstore identity and issuer, or was "
        "edited after signing."
    )


class BadResourceName(SigningRule):
    rule_id = "LW-SIGN-002"
    severity = Severity.CRITICAL
    title = "resource name leaves the model folder"
    help = "A signed name is absolute, contains '..' or '.', or is otherwise not a canonical relative path."


class MalformedManifest(SigningRule):
    rule_id = "LW-SIGN-003"
    severity = Severity.HIGH
    title = "signed manifest is inconsistent"
    help = (
        "Duplicate names, a digest algorithm other than the serialization's, shards that do not tile a file, "
        "or a subject digest that does not match the resources."
    )


class MissingFile(SigningRule):
    rule_id = "LW-SIGN-010"
    severity = Severity.HIGH
    title = "signed file is missing"


class UnsignedFile(SigningRule):
    rule_id = "LW-SIGN-011"
    severity = Severity.HIGH
    title = "file is not covered by the signature"


class ModifiedFile(SigningRule):
    rule_id = "LW-SIGN-012"
    severity = Severity.HIGH
    title = "file content differs from the signed digest"


class SymlinkPresent(SigningRule):
    rule_id = "LW-SIGN-013"
    severity = Severity.HIGH
    title = "symbolic link where the signature allows none"


class SymlinkEscape(SigningRule):
    rule_id = "LW-SIGN-014"
    severity = Severity.HIGH
    title = "symbolic link leaves the model folder, dangles or loops"


class SpecialFile(SigningRule):
    rule_id = "LW-SIGN-015"
    severity = Severity.HIGH
    title = "special file or undecodable name in the model folder"


class EmptyFileUncovered(SigningRule):
    rule_id = "LW-SIGN-016"
    severity = Severity.INFO
    title = "empty file that the shards serialization cannot cover"
    help = "OMS omits empty files from shard manifests, so their presence is neither signed nor checked."


class IgnoredBySignature(SigningRule):
    rule_id = "LW-SIGN-020"
    severity = Severity.INFO
    title = "file left out because the signature's ignore_paths says so"
    help = (
        "Not a failure: the signer chose to exclude it. "
        "Listed so that a signature cannot hide files silently."
    )


class IgnoredOnRequest(SigningRule):
    rule_id = "LW-SIGN-021"
    severity = Severity.INFO
    title = "file left out because the verifier was asked to (--ignore-path)"


# Every rule of this module, for the registry in loopwarden/rules.py.
RULES: tuple[type[Rule], ...] = (
    SignatureInvalid,
    BadResourceName,
    MalformedManifest,
    MissingFile,
    UnsignedFile,
    ModifiedFile,
    SymlinkPresent,
    SymlinkEscape,
    SpecialFile,
    EmptyFileUncovered,
    IgnoredBySignature,
    IgnoredOnRequest,
)
