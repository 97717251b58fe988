from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from loopwarden.attest import (
    INTOTO_PAYLOAD_TYPE,
    Envelope,
    KeySet,
    Statement,
    generate,
    load_private,
    load_public,
    pae,
    sign,
    sign_statement,
)
from loopwarden.errors import AttestationError, InputError, VerificationError
from tests.conftest import make_statement


def test_pae_matches_the_dsse_spec_example() -> None:
    # From the DSSE v1 protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@pytest.mark.parametrize("algo", ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521", "ed25519"])
def test_sign_and_verify_each_algorithm(algo: str) -> None:
    key = generate(algo)
    env = sign_statement(make_statement(1), [key])
    assert env.payload_type == INTOTO_PAYLOAD_TYPE
    assert env.verify(KeySet([key.public()])) == [key.keyid]
    again = Envelope.parse(env.to_bytes())
    assert again == env
    assert again.statement() == make_statement(1)


def test_threshold_counts_distinct_trusted_keys() -> None:
    a, b, c = generate(), generate("ed25519"), generate()
    trusted = KeySet([a.public(), b.public(), c.public()], threshold=2)
    one = sign_statement(make_statement(2), [a])
    with pytest.raises(VerificationError, match="1 valid signature"):
        one.verify(trusted)
    dup = Envelope(one.payload, one.payload_type, one.signatures * 2)
    with pytest.raises(VerificationError):
        dup.verify(trusted)  # the same key twice is still one signer
    two = sign_statement(make_statement(2), [a, b])
    assert sorted(two.verify(trusted)) == sorted([a.keyid, b.keyid])


def test_untrusted_and_tampered_signatures_fail() -> None:
    key, other = generate(), generate()
    env = sign_statement(make_statement(3), [key])
    with pytest.raises(VerificationError):
        env.verify(KeySet([other.public()]))
    forged = Envelope(env.payload.replace(b"entry 3", b"entry 4"), env.payload_type, env.signatures)
    with pytest.raises(VerificationError):
        forged.verify(KeySet([key.public()]))
    retyped = Envelope(env.payload, "application/json", env.signatures)
    with pytest.raises(VerificationError):
        retyped.verify(KeySet([key.public()]))  # the payload type is signed too (PAE)


def test_malformed_envelopes_are_clear_errors() -> None:
    with pytest.raises(AttestationError, match="not valid JSON"):
        Envelope.parse(b"{nope", source="e.json")
    with pytest.raises(AttestationError, match="payloadType"):
        Envelope.parse(json.dumps({"payload": "", "signatures": []}))
    with pytest.raises(AttestationError, match="base64"):
        Envelope.parse(json.dumps({"payload": "!!!", "payloadType": "x", "signatures": []}))
    env = sign(b"not a statement", INTOTO_PAYLOAD_TYPE, [generate()])
    with pytest.raises(AttestationError, match="not valid JSON"):
        env.statement()
    bad_stmt = {"_type": "https://in-toto.io/Statement/v0.1", "subject": [], "predicateType": "x"}
    env2 = sign(json.dumps(bad_stmt).encode(), INTOTO_PAYLOAD_TYPE, [generate()])
    with pytest.raises(AttestationError, match="_type"):
        env2.statement()


def test_url_safe_base64_is_accepted() -> None:
    key = generate()
    env = sign_statement(make_statement(5), [key])
    obj = env.to_json()
    obj["payload"] = base64.urlsafe_b64encode(env.payload).decode()
    assert Envelope.from_json(obj).payload == env.payload


def test_private_keys_are_0600_never_overwritten_and_password_protected(tmp_path: Path) -> None:
    key = generate()
    path = tmp_path / "k" / "signing.key"
    key.save(path, b"s3cret")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(InputError, match="refusing to overwrite"):
        generate().save(path)
    assert load_private(path, b"s3cret").keyid == key.keyid
    with pytest.raises(InputError, match="encrypted"):
        load_private(path)
    with pytest.raises(InputError, match="wrong password"):
        load_private(path, b"wrong")
    with pytest.raises(InputError, match="not found"):
        load_private(tmp_path / "missing.key")
    assert "BEGIN" not in repr(key) and "PRIVATE" not in repr(key)
    pub = tmp_path / "signing.pub"
    pub.write_bytes(key.public().pem())
    assert load_public(pub).keyid == key.keyid
    (tmp_path / "junk.pub").write_text("junk")
    with pytest.raises(InputError, match="not a PEM public key"):
        load_public(tmp_path / "junk.pub")


def test_keyset_rejects_impossible_thresholds() -> None:
    with pytest.raises(AttestationError):
        KeySet([generate().public()], threshold=2)
    with pytest.raises(AttestationError):
        KeySet([], threshold=0)


def test_statement_needs_subjects() -> None:
    with pytest.raises(AttestationError, match="subject"):
        Statement((), "x", {})


@pytest.mark.parametrize("ptype", [INTOTO_PAYLOAD_TYPE, 'weird "type"\n\u00e9\u2028', ""])
def test_fast_canonical_bytes_equal_the_generic_canonical_json(ptype: str) -> None:
    from loopwarden.domain import canonical_json

    env = sign(b"\x00\xffpayload", ptype, [generate(), generate("ed25519")])
    env = Envelope(
        env.payload, env.payload_type, (*env.signatures, type(env.signatures[0])('k"\\id\u00e9', b""))
    )
    assert env.to_bytes() == canonical_json(env.to_json())
