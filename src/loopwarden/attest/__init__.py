"""Attestations: in-toto Statement v1 in DSSE envelopes, signed with ECDSA or Ed25519 keys."""

from loopwarden.attest.dsse import INTOTO_PAYLOAD_TYPE, Envelope, Signature, pae, sign, sign_statement
from loopwarden.attest.keys import (
    KeyAlgorithm,
    KeySet,
    PrivateKey,
    PublicKey,
    generate,
    load_private,
    load_public,
)
from loopwarden.attest.statement import STATEMENT_TYPE, Statement

__all__ = [
    "INTOTO_PAYLOAD_TYPE",
    "STATEMENT_TYPE",
    "Envelope",
    "KeyAlgorithm",
    "KeySet",
    "PrivateKey",
    "PublicKey",
    "Signature",
    "Statement",
    "generate",
    "load_private",
    "load_public",
    "pae",
    "sign",
    "sign_statement",
]
