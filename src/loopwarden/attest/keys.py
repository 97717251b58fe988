"""Signing keys: ECDSA (P-256 default, P-384, P-521) and Ed25519, from ``cryptography``.

A key id is the SHA-256 of the DER SubjectPublicKeyInfo, in hex. Private keys are written 0600, atomically, and never
printed.
"""

from __future__ import annotations

import enum
import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from loopwarden.errors import AttestationError, InputError

__all__ = [
    "KeyAlgorithm",
    "KeySet",
    "PrivateKey",
    "PublicKey",
    "generate",
    "load_private",
    "load_public",
]


class KeyAlgorithm(enum.StrEnum):
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    ECDSA_P521 = "ecdsa-p521"
    ED25519 = "ed25519"


_CURVES: Final[dict[KeyAlgorithm, ec.EllipticCurve]] = {
    KeyAlgorithm.ECDSA_P256: ec.SECP256R1(),
    KeyAlgorithm.ECDSA_P384: ec.SECP384R1(),
    KeyAlgorithm.ECDSA_P521: ec.SECP521R1(),
}
# The hash paired with each curve, as in the OpenSSF Model Signing key hints (and RFC 5656).
_HASHES: Final[dict[KeyAlgorithm, type[hashes.HashAlgorithm]]] = {
    KeyAlgorithm.ECDSA_P256: hashes.SHA256,
    KeyAlgorithm.ECDSA_P384: hashes.SHA384,
    KeyAlgorithm.ECDSA_P521: hashes.SHA512,
}

_PublicImpl = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
_PrivateImpl = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _algorithm_of(key: _PublicImpl | _PrivateImpl) -> KeyAlgorithm:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return KeyAlgorithm.ED25519
    name = key.curve.name
    for algo, curve in _CURVES.items():
        if curve.name == name:
            return algo
    raise AttestationError(f"unsupported elliptic curve {name}; use P-256, P-384, P-521 or Ed25519")


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A public key that verifies signatures."""

    impl: _PublicImpl

    @property
    def algorithm(self) -> KeyAlgorithm:
        return _algorithm_of(self.impl)

    def der(self) -> bytes:
        return self.impl.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def pem(self) -> bytes:
        return self.impl.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def keyid(self) -> str:
        return hashlib.sha256(self.der()).hexdigest()

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True if ``signature`` is valid over ``data``; never raises for a bad signature."""
        try:
            if isinstance(self.impl, ed25519.Ed25519PublicKey):
                self.impl.verify(signature, data)
            else:
                self.impl.verify(signature, data, ec.ECDSA(_HASHES[self.algorithm]()))
        except (InvalidSignature, ValueError):
            return False
        return True

    @classmethod
    def from_pem(cls, data: bytes, *, source: str = "<public key>") -> PublicKey:
        try:
            impl = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InputError(source, f"not a PEM public key ({exc})") from None
        if not isinstance(impl, _PublicImpl):
            raise InputError(source, "unsupported public key type; use ECDSA P-256/384/521 or Ed25519")
        _algorithm_of(impl)
        return cls(impl)


@dataclass(frozen=True, slots=True)
class PrivateKey:
    """A private signing key. ``repr`` never shows key material."""

    impl: _PrivateImpl

    def __repr__(self) -> str:
        return f"PrivateKey({self.algorithm}, keyid={self.keyid[:16]}…)"

    @property
    def algorithm(self) -> KeyAlgorithm:
        return _algorithm_of(self.impl)

    def public(self) -> PublicKey:
        return PublicKey(self.impl.public_key())

    @property
    def keyid(self) -> str:
        return self.public().keyid

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.impl, ed25519.Ed25519PrivateKey):
            return self.impl.sign(data)
        return self.impl.sign(data, ec.ECDSA(_HASHES[self.algorithm]()))

    def to_pem(self, password: bytes | None = None) -> bytes:
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        )
        return self.impl.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)

    def save(self, path: Path, password: bytes | None = None) -> None:
        """Write the key 0600, atomically, refusing to overwrite an existing file."""
        write_private_file(path, self.to_pem(password))


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 and ``data``; never replaces an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, path)  # fails if path exists: a key is never silently replaced
    except FileExistsError:
        raise InputError(path, "already exists; refusing to overwrite a key") from None
    finally:
        tmp.unlink(missing_ok=True)


def generate(algorithm: KeyAlgorithm | str = KeyAlgorithm.ECDSA_P256) -> PrivateKey:
    algo = KeyAlgorithm(algorithm)
    if algo is KeyAlgorithm.ED25519:
        return PrivateKey(ed25519.Ed25519PrivateKey.generate())
    return PrivateKey(ec.generate_private_key(_CURVES[algo]))


def load_private(path: str | Path, password: bytes | None = None) -> PrivateKey:
    """Load a PEM private key, naming the file and the problem on any failure."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(p, "key file not found") from None
    except OSError as exc:
        raise InputError(p, f"cannot read key file: {exc.strerror}") from None
    try:
        impl = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        if password is None:
            raise InputError(
                p, "the key is encrypted; give its password", hint="set --password-env"
            ) from None
        raise InputError(p, "the key is not encrypted, but a password was given") from None
    except (ValueError, UnsupportedAlgorithm):
        if password is not None:
            raise InputError(p, "wrong password, or not a PEM private key") from None
        raise InputError(p, "not a PEM private key") from None
    if not isinstance(impl, _PrivateImpl):
        raise InputError(p, "unsupported private key type; use ECDSA P-256/384/521 or Ed25519")
    _algorithm_of(impl)
    return PrivateKey(impl)


def load_public(path: str | Path) -> PublicKey:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(p, "public key file not found") from None
    except OSError as exc:
        raise InputError(p, f"cannot read public key file: {exc.strerror}") from None
    if b"PRIVATE KEY" in data:
        return load_private(p).public()
    return PublicKey.from_pem(data, source=str(p))


class KeySet(Mapping[str, PublicKey]):
    """Trusted public keys by key id, and how many distinct ones must sign (m-of-n)."""

    def __init__(self, keys: Iterable[PublicKey] = (), threshold: int = 1) -> None:
        self._keys = {k.keyid: k for k in keys}
        if threshold < 1:
            raise AttestationError(f"a signature threshold must be at least 1, got {threshold}")
        if self._keys and threshold > len(self._keys):
            raise AttestationError(
                f"threshold {threshold} exceeds the {len(self._keys)} trusted key(s); no envelope could verify"
            )
        self.threshold = threshold

    def __getitem__(self, keyid: str) -> PublicKey:
        return self._keys[keyid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)
