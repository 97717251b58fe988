"""OMS v1.0 bundles: build, sign, parse and check the signature of a Sigstore bundle v0.3 with a DSSE
envelope.

Two signing methods work offline: ``key`` (an ECDSA P-256/384/521 key; the bundle carries the spec's key hint,
the SHA-256 of the PEM SubjectPublicKeyInfo) and ``certificate`` (a leaf certificate and its chain in
``x509CertificateChain``; the verifier validates the chain against trust anchors it is given and checks that
the leaf may sign). Sigstore keyless bundles (``sigstore``: a Fulcio certificate and a Rekor entry) are parsed
here and verified by :class:`~loopwarden.signing.keyless.SigstoreTrust` (optional ``sigstore`` extra); the key
and certificate trusts refuse them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification as x509v
from cryptography.x509.oid import ExtendedKeyUsageOID

from loopwarden.attest.dsse import INTOTO_PAYLOAD_TYPE, pae
from loopwarden.attest.keys import KeyAlgorithm, PrivateKey, PublicKey
from loopwarden.attest.statement import STATEMENT_TYPE
from loopwarden.domain import canonical_json
from loopwarden.errors import InputError, UsageError, VerificationError
from loopwarden.signing.interface import (
    ACCEPTED_MEDIA_TYPES,
    BUNDLE_MEDIA_TYPE,
    OMS_PREDICATE_TYPE,
    Resource,
    Serialization,
    SignatureFormatError,
)

__all__ = [
    "Bundle",
    "CertificateSigner",
    "CertificateTrust",
    "KeySigner",
    "OmsStatement",
    "Signer",
    "Trust",
    "key_hint",
    "load_certificates",
    "root_digest",
]

_EC_ALGORITHMS: Final = frozenset({KeyAlgorithm.ECDSA_P256, KeyAlgorithm.ECDSA_P384, KeyAlgorithm.ECDSA_P521})


def key_hint(key: PublicKey) -> str:
    """The OMS key hint: hex SHA-256 of the public key's PEM SubjectPublicKeyInfo (what the reference
    writes)."""
    return hashlib.sha256(key.pem()).hexdigest()


def root_digest(resources: Sequence[Resource]) -> str:
    """SHA-256 over the raw bytes of every resource digest, in name order (OMS 6.5.1)."""
    ordered = sorted(resources, key=attrgetter("name"))
    return hashlib.sha256(bytes.fromhex("".join(r.digest for r in ordered))).hexdigest()


@dataclass(frozen=True, slots=True)
class OmsStatement:
    """The decoded payload: subject name and root digest, the resources and the serialization."""

    name: str
    root: str
    resources: tuple[Resource, ...]
    serialization: Serialization

    @classmethod
    def build(cls, name: str, resources: Sequence[Resource], serialization: Serialization) -> OmsStatement:
        if not resources:
            raise UsageError(
                f"{name}: nothing to sign (no files after exclusions); OMS rejects an empty model"
            )
        rs = tuple(sorted(resources, key=lambda r: r.name))
        return cls(name or "model", root_digest(rs), rs, serialization)

    def to_json(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.name, "digest": {"sha256": self.root}}],
            "predicateType": OMS_PREDICATE_TYPE,
            "predicate": {
                "resources": [r.to_json() for r in self.resources],
                "serialization": self.serialization.to_json(),
            },
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def parse(cls, payload: bytes, *, source: str) -> OmsStatement:
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignatureFormatError(f"{source}: the signed payload is not JSON ({exc})") from None
        if not isinstance(obj, Mapping):
            raise SignatureFormatError(f"{source}: the signed payload is not a JSON object")
        if obj.get("_type") != STATEMENT_TYPE:
            raise SignatureFormatError(
                f"{source}: payload _type is {obj.get('_type')!r}, not {STATEMENT_TYPE!r}"
            )
        ptype = obj.get("predicateType")
        if ptype != OMS_PREDICATE_TYPE:
            raise SignatureFormatError(
                f"{source}: unknown predicate type {ptype!r}; expected {OMS_PREDICATE_TYPE!r}",
                hint="only OMS v1.0 signatures are supported (not the deprecated v0.1 digests format)",
            )
        subjects = obj.get("subject")
        if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], Mapping):
            raise SignatureFormatError(f"{source}: an OMS statement has exactly one subject")
        subj = subjects[0]
        digest = subj.get("digest")
        name = subj.get("name")
        if not isinstance(digest, Mapping) or not isinstance(digest.get("sha256"), str):
            raise SignatureFormatError(f"{source}: the subject needs a sha256 digest")
        if not isinstance(name, str) or not name:
            raise SignatureFormatError(f"{source}: the subject needs a non-empty name")
        pred = obj.get("predicate")
        if not isinstance(pred, Mapping):
            raise SignatureFormatError(f"{source}: the statement has no predicate object")
        res = pred.get("resources")
        if not isinstance(res, list) or not res:
            raise SignatureFormatError(f"{source}: the predicate needs a non-empty 'resources' list")
        try:
            resources = Resource.many_from_json(res)
            ser = Serialization.from_json(pred.get("serialization"))
        except SignatureFormatError as exc:
            raise SignatureFormatError(f"{source}: {exc.message}") from None
        return cls(name, str(digest["sha256"]).lower(), resources, ser)


class Signer:
    """Signs a DSSE PAE and says how to verify it (the bundle's ``verificationMaterial``)."""

    key: PrivateKey

    def verification_material(self) -> dict[str, Any]:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        raise NotImplementedError

    def sign_payload(self, payload: bytes) -> Bundle:
        """Sign the statement bytes and return the whole bundle (a keyless signer gets it from Sigstore)."""
        sig = self.key.sign(pae(INTOTO_PAYLOAD_TYPE, payload))
        method = "key" if isinstance(self, KeySigner) else "certificate"
        return Bundle(method, self.verification_material(), payload, INTOTO_PAYLOAD_TYPE, (sig,))

    def signed_by(self, bundle: Bundle) -> dict[str, Any]:
        """Who signed ``bundle`` (known beforehand, except for keyless signing)."""
        return self.identity()


@dataclass(frozen=True, slots=True)
class KeySigner(Signer):
    key: PrivateKey

    def __post_init__(self) -> None:
        if self.key.algorithm not in _EC_ALGORITHMS:
            raise UsageError(f"OMS signing needs an ECDSA P-256/384/521 key, not {self.key.algorithm.value}")

    def verification_material(self) -> dict[str, Any]:
        return {"publicKey": {"hint": key_hint(self.key.public())}, "tlogEntries": []}

    def identity(self) -> dict[str, Any]:
        pub = self.key.public()
        return {"method": "key", "hint": key_hint(pub), "keyid": pub.keyid, "algorithm": pub.algorithm.value}


@dataclass(frozen=True, slots=True)
class CertificateSigner(Signer):
    key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def __post_init__(self) -> None:
        if self.key.algorithm not in _EC_ALGORITHMS:
            raise UsageError(f"OMS signing needs an ECDSA P-256/384/521 key, not {self.key.algorithm.value}")
        if self.certificate.public_key() != self.key.public().impl:
            raise UsageError("the signing certificate's public key does not match the private key")

    def verification_material(self) -> dict[str, Any]:
        certs = [self.certificate, *self.chain]
        raw = [
            {"rawBytes": base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()} for c in certs
        ]
        return {"x509CertificateChain": {"certificates": raw}, "tlogEntries": []}

    def identity(self) -> dict[str, Any]:
        return {
            "method": "certificate",
            "subject": self.certificate.subject.rfc4514_string(),
            "issuer": self.certificate.issuer.rfc4514_string(),
            "fingerprint_sha256": self.certificate.fingerprint(_sha256()).hex(),
        }


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


def load_certificates(paths: Sequence[str | Path]) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for p in paths:
        try:
            data = Path(p).read_bytes()
        except OSError as exc:
            raise InputError(p, f"cannot read certificate file: {exc.strerror}") from None
        try:
            out.extend(x509.load_pem_x509_certificates(data))
        except ValueError:
            raise InputError(p, "not a PEM certificate file") from None
    return out


def _b64(value: Any, what: str, source: str) -> bytes:
    if not isinstance(value, str):
        raise SignatureFormatError(f"{source}: {what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError(f"{source}: {what} is not valid base64") from None


@dataclass(frozen=True, slots=True)
class Bundle:
    """A parsed OMS bundle. ``method`` is ``key``, ``certificate`` or ``sigstore``."""

    method: str
    material: Mapping[str, Any]
    payload: bytes
    payload_type: str
    signatures: tuple[bytes, ...]
    raw: bytes | None = field(default=None, repr=False, compare=False)
    """The bundle file's bytes as read (or as Sigstore returned them); None for a bundle built here."""

    @classmethod
    def sign(cls, statement: OmsStatement, signer: Signer) -> Bundle:
        return signer.sign_payload(statement.to_bytes())

    def to_json(self) -> dict[str, Any]:
        return {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": dict(self.material),
            "dsseEnvelope": {
                "payload": base64.b64encode(self.payload).decode(),
                "payloadType": self.payload_type,
                "signatures": [{"sig": base64.b64encode(s).decode(), "keyid": ""} for s in self.signatures],
            },
        }

    def to_bytes(self) -> bytes:
        if self.raw is not None:  # read from a file, or Sigstore's own document (keyless): kept byte for byte
            return self.raw
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def parse(cls, data: bytes, *, source: str) -> Bundle:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SignatureFormatError(f"{source}: not valid JSON ({exc})") from None
        if not isinstance(obj, Mapping):
            raise SignatureFormatError(f"{source}: a signature bundle must be a JSON object")
        media = obj.get("mediaType")
        if media not in ACCEPTED_MEDIA_TYPES:
            raise SignatureFormatError(
                f"{source}: unknown bundle mediaType {media!r}; expected {BUNDLE_MEDIA_TYPE}"
            )
        vm = obj.get("verificationMaterial")
        if not isinstance(vm, Mapping):
            raise SignatureFormatError(f"{source}: the bundle has no 'verificationMaterial'")
        if "publicKey" in vm:
            method = "key"
        elif "x509CertificateChain" in vm:
            method = "certificate"
        elif "certificate" in vm:
            method = "sigstore"
        else:
            raise SignatureFormatError(f"{source}: 'verificationMaterial' has no publicKey or certificate")
        env = obj.get("dsseEnvelope")
        if not isinstance(env, Mapping):
            raise SignatureFormatError(
                f"{source}: the bundle has no 'dsseEnvelope' (message signatures are not OMS)"
            )
        ptype = env.get("payloadType")
        if ptype != INTOTO_PAYLOAD_TYPE:
            raise SignatureFormatError(
                f"{source}: payloadType is {ptype!r}, expected {INTOTO_PAYLOAD_TYPE!r}"
            )
        payload = _b64(env.get("payload"), "envelope payload", source)
        sigs = env.get("signatures")
        if not isinstance(sigs, list) or not sigs:
            raise SignatureFormatError(f"{source}: the envelope has no signatures")
        raw: list[bytes] = []
        for i, s in enumerate(sigs):
            if not isinstance(s, Mapping):
                raise SignatureFormatError(f"{source}: signature {i} must be an object")
            raw.append(_b64(s.get("sig"), f"signature {i}", source))
        return cls(method, vm, payload, ptype, tuple(raw), bytes(data))

    def _check_with(self, key: PublicKey) -> bool:
        message = pae(self.payload_type, self.payload)
        return any(key.verify(s, message) for s in self.signatures)

    def statement(self, *, source: str) -> OmsStatement:
        return OmsStatement.parse(self.payload, source=source)


class Trust:
    """What a verifier trusts: a public key, or a set of CA certificates."""

    def check(self, bundle: Bundle, *, source: str) -> dict[str, Any]:
        """Raise :class:`VerificationError` unless ``bundle`` is signed by what we trust; return the
        signer."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class KeyTrust(Trust):
    key: PublicKey

    def check(self, bundle: Bundle, *, source: str) -> dict[str, Any]:
        if bundle.method != "key":
            raise VerificationError(
                f"{source}: signed with the {bundle.method} method, but a public key was given{_keyless(bundle)}"
            )
        if self.key.algorithm not in _EC_ALGORITHMS:
            raise UsageError(
                f"OMS verification needs an ECDSA P-256/384/521 key, not {self.key.algorithm.value}"
            )
        pk = bundle.material.get("publicKey")
        hint = pk.get("hint") if isinstance(pk, Mapping) else None
        ours = key_hint(self.key)
        if isinstance(hint, str) and hint and hint.lower() != ours:
            raise VerificationError(
                f"{source}: signed by another key (key hint {hint[:16]}…, ours {ours[:16]}…)"
            )
        raw = pk.get("rawBytes") if isinstance(pk, Mapping) else None
        if not hint and isinstance(raw, str) and raw:
            try:
                other = base64.b64decode(raw)
            except (binascii.Error, ValueError):
                other = b""
            if other not in (self.key.der(), self.key.pem()):
                raise VerificationError(f"{source}: signed by another key (the bundle's public key differs)")
        if not bundle._check_with(self.key):
            raise VerificationError(f"{source}: the signature does not verify with the given public key")
        return {"method": "key", "hint": ours, "keyid": self.key.keyid, "algorithm": self.key.algorithm.value}


@dataclass(frozen=True, slots=True)
class CertificateTrust(Trust):
    """Trust anchors (roots, and intermediates the operator chose to trust) for the certificate method."""

    anchors: tuple[x509.Certificate, ...]
    at: dt.datetime | None = None

    def check(self, bundle: Bundle, *, source: str) -> dict[str, Any]:
        if bundle.method != "certificate":
            raise VerificationError(
                f"{source}: signed with the {bundle.method} method, but certificates were given{_keyless(bundle)}"
            )
        if not self.anchors:
            raise UsageError(
                "no trust anchors: give --certificate-chain with the root (and intermediate) CAs"
            )
        chain_obj = bundle.material.get("x509CertificateChain")
        certs_obj = chain_obj.get("certificates") if isinstance(chain_obj, Mapping) else None
        if not isinstance(certs_obj, list) or not certs_obj:
            raise SignatureFormatError(f"{source}: x509CertificateChain has no certificates")
        certs: list[x509.Certificate] = []
        for i, c in enumerate(certs_obj):
            raw = _b64(c.get("rawBytes") if isinstance(c, Mapping) else None, f"certificate {i}", source)
            try:
                certs.append(x509.load_der_x509_certificate(raw))
            except ValueError:
                raise SignatureFormatError(f"{source}: certificate {i} is not DER X.509") from None
        leaf, intermediates = certs[0], certs[1:]
        when = self.at or dt.datetime.now(dt.UTC)
        if not (leaf.not_valid_before_utc <= when <= leaf.not_valid_after_utc):
            raise VerificationError(f"{source}: the signing certificate is not valid at {when.isoformat()}")
        self._validate_chain(leaf, intermediates, when, source)
        if not _may_sign(leaf):
            raise VerificationError(
                f"{source}: the signing certificate may not sign "
                "(no digitalSignature key usage or codeSigning EKU)"
            )
        pub_impl = leaf.public_key()
        if not isinstance(pub_impl, ec.EllipticCurvePublicKey):
            raise VerificationError(f"{source}: the signing certificate's key is not an ECDSA key")
        pub = PublicKey(pub_impl)
        if not bundle._check_with(pub):
            raise VerificationError(
                f"{source}: the signature does not verify with the signing certificate's key"
            )
        return {
            "method": "certificate",
            "subject": leaf.subject.rfc4514_string(),
            "issuer": leaf.issuer.rfc4514_string(),
            "fingerprint_sha256": leaf.fingerprint(_sha256()).hex(),
        }

    def _validate_chain(
        self, leaf: x509.Certificate, intermediates: list[x509.Certificate], when: dt.datetime, source: str
    ) -> None:
        # Path building and signature checks by cryptography's RFC 5280 verifier. The extension policies are
        # relaxed to what code-signing PKIs issue (the Web PKI profile would demand a SAN and serverAuth); the
        # key-usage check that matters for signing is done by _may_sign.
        store = x509v.Store(list(self.anchors))
        builder = (
            x509v.PolicyBuilder()
            .store(store)
            .time(when)
            .max_chain_depth(8)
            .extension_policies(
                ca_policy=x509v.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=x509v.ExtensionPolicy.permit_all(),
            )
        )
        verifier = builder.build_client_verifier()
        try:
            verifier.verify(leaf, intermediates)
        except x509v.VerificationError as exc:
            raise VerificationError(
                f"{source}: the certificate chain does not lead to a trusted CA ({exc})"
            ) from None


def _keyless(bundle: Bundle) -> str:
    if bundle.method != "sigstore":
        return ""
    return " (verify a keyless signature with --sigstore-identity and --sigstore-issuer)"


def _may_sign(cert: x509.Certificate) -> bool:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if ku.digital_signature:
            return True
    except x509.ExtensionNotFound:
        pass
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        return ExtendedKeyUsageOID.CODE_SIGNING in eku
    except x509.ExtensionNotFound:
        return False
