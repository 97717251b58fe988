"""Checkpoints in the C2SP ``tlog-checkpoint`` format, as C2SP ``signed-note``s signed with Ed25519.

A checkpoint body is three lines: the log's origin, the tree size in decimal, the root hash in base64. The note
signature line is ``— <key name> <base64(key hash ‖ signature)>``, where the 4-byte key hash is the first bytes of
SHA-256(key name ‖ "\\n" ‖ 0x01 ‖ public key) for Ed25519 keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from loopwarden.attest.keys import PrivateKey, PublicKey
from loopwarden.errors import LedgerError, VerificationError

__all__ = ["Checkpoint", "NoteVerifier", "sign_checkpoint"]

_EM_DASH: Final = "\u2014"
_ED25519_ALG: Final = b"\x01"


def _raw(pub: PublicKey) -> bytes:
    if not isinstance(pub.impl, ed25519.Ed25519PublicKey):
        raise LedgerError("checkpoints are signed with Ed25519 keys only (C2SP signed-note)")
    return pub.impl.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_hash(name: str, pub: PublicKey) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519_ALG + _raw(pub)).digest()[:4]


def vkey(name: str, pub: PublicKey) -> str:
    """The note verifier key string: ``name+hash+base64(0x01 ‖ key)``."""
    return f"{name}+{key_hash(name, pub).hex()}+{base64.b64encode(_ED25519_ALG + _raw(pub)).decode()}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    note: str
    """The whole signed note, body and signature lines."""

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, note: str, *, source: str = "<checkpoint>") -> Checkpoint:
        body, sep, _sigs = note.partition("\n\n")
        if not sep:
            raise VerificationError(f"{source}: not a signed note (no blank line before the signatures)")
        lines = body.split("\n")
        if len(lines) < 3:
            raise VerificationError(f"{source}: a checkpoint body needs origin, size and root lines")
        origin, size_s, root_s = lines[0], lines[1], lines[2]
        if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
            raise VerificationError(f"{source}: checkpoint size {size_s!r} is not a decimal number")
        try:
            root = base64.b64decode(root_s, validate=True)
        except (binascii.Error, ValueError):
            raise VerificationError(f"{source}: checkpoint root is not base64") from None
        if len(root) != 32:
            raise VerificationError(f"{source}: checkpoint root must be 32 bytes, got {len(root)}")
        return cls(origin, int(size_s), root, note)

    def verify(self, name: str, pub: PublicKey, *, source: str = "<checkpoint>") -> None:
        """Raise unless a signature line by (name, pub) verifies over the body."""
        body, _, sigs = self.note.partition("\n\n")
        body += "\n"
        want = key_hash(name, pub)
        found_name = False
        for line in sigs.split("\n"):
            if not line:
                continue
            if not line.startswith(_EM_DASH + " "):
                raise VerificationError(f"{source}: malformed signature line in checkpoint")
            parts = line[2:].split(" ")
            if len(parts) != 2:
                raise VerificationError(f"{source}: malformed signature line in checkpoint")
            try:
                blob = base64.b64decode(parts[1], validate=True)
            except (binascii.Error, ValueError):
                raise VerificationError(f"{source}: checkpoint signature is not base64") from None
            if parts[0] != name or blob[:4] != want:
                continue
            found_name = True
            if pub.verify(blob[4:], body.encode()):
                return
        if not found_name:
            raise VerificationError(
                f"{source}: checkpoint is not signed by the ledger key {name!r} (unknown key)"
            )
        raise VerificationError(f"{source}: checkpoint signature does not verify")


def sign_checkpoint(origin: str, size: int, root: bytes, key_name: str, key: PrivateKey) -> Checkpoint:
    if "\n" in origin or not origin:
        raise LedgerError("a checkpoint origin must be one non-empty line")
    body = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"
    sig = key.sign(body.encode())
    line = f"{_EM_DASH} {key_name} {base64.b64encode(key_hash(key_name, key.public()) + sig).decode()}\n"
    return Checkpoint(origin, size, root, body + "\n" + line)


class NoteVerifier:
    """The ledger's checkpoint key: its note name and Ed25519 public key."""

    def __init__(self, name: str, pub: PublicKey) -> None:
        _raw(pub)
        self.name = name
        self.pub = pub

    def verify(self, cp: Checkpoint, *, source: str = "<checkpoint>") -> None:
        cp.verify(self.name, self.pub, source=source)
