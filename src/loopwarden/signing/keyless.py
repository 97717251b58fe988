"""Sigstore keyless signing and verification of OMS bundles (the optional ``sigstore`` extra).

A keyless bundle carries a short-lived Fulcio certificate that binds an ephemeral key to an OIDC identity
(an e-mail address or a workload URI, issued by an OIDC provider), and a Rekor transparency-log entry that
proves the signature existed while the certificate was valid. Verification needs no network: the trust root
(Fulcio CAs, Rekor and CT log keys) ships with the ``sigstore`` package or comes from a ``trusted_root.json``
file; only refreshing that root over TUF, and signing, need the network.

Nothing here imports ``sigstore`` at module level: ``import loopwarden.signing`` works without the extra, and
using keyless signing or verification without it is a :class:`~loopwarden.errors.UsageError` (exit 2).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from loopwarden.attest.dsse import INTOTO_PAYLOAD_TYPE
from loopwarden.errors import InputError, SigningError, UsageError, VerificationError
from loopwarden.signing.oms import Bundle, Signer, Trust

__all__ = ["IDENTITY_TOKEN_ENV", "KeylessSigner", "SigstoreTrust", "require_sigstore", "sigstore_signer_info"]

IDENTITY_TOKEN_ENV: Final = "SIGSTORE_IDENTITY_TOKEN"  # noqa: S105  # a variable name, not a secret
"""Environment variable read for the OIDC identity token when none is passed (the name sigstore's CLI uses)."""
_HINT: Final = "install the extra: pip install 'loopwarden[sigstore]'"
# Sigstore's OIDC issuer extensions in Fulcio certificates: v1 (raw bytes) and v2 (DER UTF8String).
_ISSUER_V1: Final = "1.3.6.1.4.1.57264.1.1"
_ISSUER_V2: Final = "1.3.6.1.4.1.57264.1.8"


def _sigstore(*names: str) -> list[ModuleType]:
    """Import ``sigstore`` submodules, or say how to install the extra."""
    try:
        importlib.import_module("sigstore")
        return [importlib.import_module(f"sigstore.{n}") for n in names]
    except ImportError:
        raise UsageError(
            "Sigstore keyless signing and verification need the sigstore package", hint=_HINT
        ) from None


def require_sigstore() -> None:
    """Raise :class:`UsageError` (exit 2, with the pip hint) unless the ``sigstore`` package is importable."""
    _sigstore()


def _raw_bundle(bundle: Bundle, source: str) -> bytes:
    # A bundle built in memory, never read from a file, has no Sigstore document to check.
    if bundle.raw is None:
        raise VerificationError(f"{source}: no bundle bytes to verify with Sigstore")
    return bundle.raw


def sigstore_signer_info(bundle: Bundle, *, source: str) -> dict[str, Any]:
    """Who a keyless bundle says signed it: the certificate's SANs and OIDC issuer, its SHA-256 fingerprint,
    and the Rekor log index and integration time. Unverified by itself: call it on a verified bundle."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    cert_obj = bundle.material.get("certificate")
    raw = cert_obj.get("rawBytes") if isinstance(cert_obj, Mapping) else None
    try:
        cert = x509.load_der_x509_certificate(
            base64.b64decode(raw if isinstance(raw, str) else "", validate=True)
        )
    except (binascii.Error, ValueError):
        raise VerificationError(f"{source}: the bundle's signing certificate is not DER X.509") from None
    sans: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [
            *san.get_values_for_type(x509.RFC822Name),
            *san.get_values_for_type(x509.UniformResourceIdentifier),
        ]
    except x509.ExtensionNotFound:
        pass
    info: dict[str, Any] = {
        "method": "sigstore",
        "identity": ", ".join(sorted(sans)),  # Fulcio certificates carry exactly one
        "issuer": _oidc_issuer(cert),
        "fingerprint_sha256": cert.fingerprint(hashes.SHA256()).hex(),
    }
    entries = bundle.material.get("tlogEntries")
    first = entries[0] if isinstance(entries, list) and entries and isinstance(entries[0], Mapping) else {}
    for ours, theirs in (("log_index", "logIndex"), ("integrated_time", "integratedTime")):
        value = first.get(theirs)
        if isinstance(value, str | int) and str(value).isdigit():
            info[ours] = int(value)
    return info


def _oidc_issuer(cert: Any) -> str | None:
    from cryptography import x509

    for oid in (_ISSUER_V2, _ISSUER_V1):
        try:
            value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value.value
        except x509.ExtensionNotFound:
            continue
        if oid == _ISSUER_V2 and len(value) >= 2 and value[0] == 0x0C and value[1] == len(value) - 2:
            value = value[2:]  # short-form DER UTF8String; long issuers fall through to the v1 extension
        elif oid == _ISSUER_V2:
            continue
        try:
            return str(value.decode())
        except UnicodeDecodeError:
            return None
    return None


@dataclass(frozen=True, slots=True)
class SigstoreTrust(Trust):
    """Trust one Sigstore identity from one OIDC issuer (keyless method).

    ``identity`` is the signing certificate's subject alternative name (an e-mail address, or a URI such as a
    CI workflow's), ``issuer`` the OIDC issuer URL; both are required, so no identity is ever accepted by
    default. The trust root is sigstore's public-good one: refreshed over TUF unless ``offline`` (then the
    copy shipped with ``sigstore``, or the one last refreshed into the user's cache, is used), or the given
    ``trusted_root`` file (a ``trusted_root.json`` of a private Sigstore instance).
    """

    identity: str
    issuer: str
    offline: bool = False
    trusted_root: Path | None = None

    def __post_init__(self) -> None:
        if not self.identity or not self.issuer:
            raise UsageError(
                "keyless verification needs both the signer's identity and its OIDC issuer",
                hint="pass --sigstore-identity EMAIL-OR-URI and --sigstore-issuer URL",
            )

    def check(self, bundle: Bundle, *, source: str) -> dict[str, Any]:
        if bundle.method != "sigstore":
            raise VerificationError(
                f"{source}: signed with the {bundle.method} method, but a Sigstore identity was given"
            )
        models, verify, policy, errors = _sigstore("models", "verify", "verify.policy", "errors")
        verifier = self._verifier(models, verify, errors)
        try:
            sg_bundle = models.Bundle.from_json(_raw_bundle(bundle, source))
            payload_type, payload = verifier.verify_dsse(
                sg_bundle, policy.Identity(identity=self.identity, issuer=self.issuer)
            )
        except (errors.Error, ValueError, TypeError, KeyError, AttributeError) as exc:
            # Any failure of the Sigstore checks, including a bundle sigstore cannot read, fails closed.
            raise VerificationError(f"{source}: Sigstore verification failed: {_reason(exc)}") from None
        # What loopwarden goes on to parse is our own decoding of the envelope: it must be the very bytes
        # sigstore verified, or a bundle that two JSON readers decode differently could smuggle a payload.
        if payload_type != INTOTO_PAYLOAD_TYPE or payload != bundle.payload:
            raise VerificationError(
                f"{source}: the payload Sigstore verified is not the payload in the bundle's envelope"
            )
        info = sigstore_signer_info(bundle, source=source)
        return {**info, "identity": self.identity, "issuer": self.issuer}

    def _verifier(self, models: ModuleType, verify: ModuleType, errors: ModuleType) -> Any:
        if self.trusted_root is not None:
            try:
                root = models.TrustedRoot.from_file(str(self.trusted_root))
                return verify.Verifier(trusted_root=root)
            except OSError as exc:
                raise InputError(self.trusted_root, f"cannot read the trusted root: {exc.strerror}") from None
            except (errors.Error, ValueError) as exc:
                raise InputError(
                    self.trusted_root, f"not a usable Sigstore trusted root: {_reason(exc)}"
                ) from None
        try:
            return verify.Verifier.production(offline=self.offline)
        except (errors.Error, OSError, ValueError) as exc:
            raise SigningError(
                f"cannot load the Sigstore public-good trust root: {_reason(exc)}",
                hint="pass --offline to use the trust root shipped with sigstore, or --trusted-root FILE",
            ) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass(frozen=True, slots=True)
class KeylessSigner(Signer):
    """Signs with a short-lived Fulcio certificate for an OIDC identity and logs the signature in Rekor.

    The identity token is ``identity_token``, else ``$SIGSTORE_IDENTITY_TOKEN``, else an ambient CI credential
    (GitHub Actions, GitLab, Buildkite, cloud workload identity: ``sigstore.oidc.detect_credential``). There is
    no interactive browser flow. ``context`` is a ``sigstore.sign.SigningContext``; by default the public-good
    instance's, whose trust configuration is refreshed over TUF: signing always needs the network.
    """

    identity_token: str | None = None
    context: Any = None

    def __post_init__(self) -> None:
        # Fail before hours of hashing: a token must be at hand (and, if given, well-formed and unexpired).
        # It is fetched again when signing, since ambient CI tokens live only minutes.
        oidc, errors = _sigstore("oidc", "errors")
        self._token(oidc, errors)

    def sign_payload(self, payload: bytes) -> Bundle:
        dsse, models, oidc, sign, errors = _sigstore("dsse", "models", "oidc", "sign", "errors")
        token = self._token(oidc, errors)
        try:
            statement = dsse.Statement(payload)
            context = self.context
            if context is None:
                context = sign.SigningContext.from_trust_config(models.ClientTrustConfig.production())
            with context.signer(token) as signer:
                sg_bundle = signer.sign_dsse(statement)
            data = sg_bundle.to_json()
        except Exception as exc:  # noqa: BLE001  # see below: the service clients share no error base
            # The flow talks to Fulcio, Rekor and timestamp authorities, whose client errors share no base class
            # (FulcioClientError, RekorClientError, ExpiredIdentity, requests' errors...): any of them means
            # nothing was signed, and nothing is written.
            raise SigningError(f"Sigstore signing failed ({type(exc).__name__}: {_reason(exc)})") from None
        out = Bundle.parse(data.encode() if isinstance(data, str) else data, source="the Sigstore bundle")
        if out.method != "sigstore" or out.payload != payload:
            raise SigningError("Sigstore returned a bundle that does not carry the statement we signed")
        try:
            sigstore_signer_info(out, source="the Sigstore bundle")  # readable before anything is written
        except VerificationError as exc:
            raise SigningError(exc.message) from None
        return out

    def _token(self, oidc: ModuleType, errors: ModuleType) -> Any:
        raw = self.identity_token or os.environ.get(IDENTITY_TOKEN_ENV)
        try:
            if not raw:
                raw = oidc.detect_credential()
            if not raw:
                raise UsageError(
                    "keyless signing needs an OIDC identity token, and no ambient CI credential was found",
                    hint=f"pass --identity-token TOKEN (or set {IDENTITY_TOKEN_ENV}), or run in a CI job "
                    "that can mint one (GitHub Actions: permissions id-token: write)",
                )
            return oidc.IdentityToken(raw)
        except errors.Error as exc:
            raise SigningError(f"unusable OIDC identity token: {_reason(exc)}") from None

    def verification_material(self) -> dict[str, Any]:
        raise SigningError("a keyless signature's verification material comes from Fulcio and Rekor")

    def identity(self) -> dict[str, Any]:
        return {"method": "sigstore"}

    def signed_by(self, bundle: Bundle) -> dict[str, Any]:
        return sigstore_signer_info(bundle, source="the Sigstore bundle")
