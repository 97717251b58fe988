"""DSSE envelopes (Dead Simple Signing Envelope v1) with several signatures and m-of-n verification."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from loopwarden.attest.keys import KeySet, PrivateKey
from loopwarden.attest.statement import Statement
from loopwarden.errors import AttestationError, VerificationError

__all__ = ["INTOTO_PAYLOAD_TYPE", "Envelope", "Signature", "pae", "sign", "sign_statement"]

INTOTO_PAYLOAD_TYPE: Final = "application/vnd.in-toto+json"


def _esc(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what is actually signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[Signature, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "payload": base64.b64encode(self.payload).decode(),
            "payloadType": self.payload_type,
            "signatures": [
                {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode()} for s in self.signatures
            ],
        }

    def to_bytes(self) -> bytes:
        """Canonical bytes: the form stored in the ledger and hashed into its Merkle tree.

        Identical to ``canonical_json(self.to_json())`` (a test holds them equal), written out by hand because this
        runs once per ledger append: the keys are already in sorted order and base64 needs no escaping.
        """
        sigs = ",".join(
            f'{{"keyid":{_esc(s.keyid)},"sig":"{base64.b64encode(s.sig).decode()}"}}' for s in self.signatures
        )
        payload = base64.b64encode(self.payload).decode()
        return f'{{"payload":"{payload}","payloadType":{_esc(self.payload_type)},"signatures":[{sigs}]}}'.encode()

    @classmethod
    def parse(cls, data: bytes | str, *, source: str = "<envelope>") -> Envelope:
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise AttestationError(f"{source}: envelope is not valid JSON ({exc})") from None
        return cls.from_json(obj, source=source)

    @classmethod
    def from_json(cls, obj: Any, *, source: str = "<envelope>") -> Envelope:
        if not isinstance(obj, Mapping):
            raise AttestationError(f"{source}: a DSSE envelope must be a JSON object")
        ptype = obj.get("payloadType")
        if not isinstance(ptype, str) or not ptype:
            raise AttestationError(f"{source}: envelope needs a 'payloadType' string")
        payload = _b64(obj.get("payload"), f"{source}: envelope 'payload'")
        sigs_obj = obj.get("signatures")
        if not isinstance(sigs_obj, list):
            raise AttestationError(f"{source}: envelope needs a 'signatures' list")
        sigs = []
        for i, s in enumerate(sigs_obj):
            if not isinstance(s, Mapping):
                raise AttestationError(f"{source}: signature {i} must be an object")
            keyid = s.get("keyid", "")
            if not isinstance(keyid, str):
                raise AttestationError(f"{source}: signature {i} 'keyid' must be a string")
            sigs.append(Signature(keyid, _b64(s.get("sig"), f"{source}: signature {i} 'sig'")))
        return cls(payload, ptype, tuple(sigs))

    def statement(self, *, source: str = "<envelope>") -> Statement:
        if self.payload_type != INTOTO_PAYLOAD_TYPE:
            raise AttestationError(
                f"{source}: payload type is {self.payload_type!r}, expected {INTOTO_PAYLOAD_TYPE!r}"
            )
        return Statement.parse(self.payload, source=source)

    def verified_keyids(self, trusted: KeySet) -> list[str]:
        """Key ids of the distinct trusted keys whose signature verifies. Unknown key ids are ignored."""
        message = pae(self.payload_type, self.payload)
        good: list[str] = []
        for s in self.signatures:
            key = trusted.get(s.keyid)
            if key is not None and s.keyid not in good and key.verify(s.sig, message):
                good.append(s.keyid)
        return good

    def verify(
        self, trusted: KeySet, threshold: int | None = None, *, source: str = "<envelope>"
    ) -> list[str]:
        """Check that at least ``threshold`` distinct trusted keys signed; return their key ids."""
        need = trusted.threshold if threshold is None else threshold
        good = self.verified_keyids(trusted)
        if len(good) < need:
            raise VerificationError(
                f"{source}: {len(good)} valid signature(s) from trusted keys, {need} required"
                + ("" if self.signatures else " (the envelope is unsigned)")
            )
        return good


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise AttestationError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:  # DSSE allows URL-safe base64 as well (and unpadded forms)
            std = value.replace("-", "+").replace("_", "/")
            return base64.b64decode(std + "=" * (-len(std) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise AttestationError(f"{what} is not valid base64") from None


def sign(payload: bytes, payload_type: str, signers: Iterable[PrivateKey]) -> Envelope:
    message = pae(payload_type, payload)
    sigs = tuple(Signature(k.keyid, k.sign(message)) for k in signers)
    if not sigs:
        raise AttestationError("an envelope needs at least one signer")
    return Envelope(payload, payload_type, sigs)


def sign_statement(statement: Statement, signers: Iterable[PrivateKey]) -> Envelope:
    return sign(statement.to_bytes(), INTOTO_PAYLOAD_TYPE, signers)
