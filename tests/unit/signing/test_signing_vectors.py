"""Public OMS conformance material: the spec's v1.0 test vectors and signatures written by released versions
of the reference implementation (see tests/fixtures/oms/README.md for origin and licence)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loopwarden.attest.keys import load_public
from loopwarden.signing import CertificateTrust, KeyTrust, load_certificates, verify
from loopwarden.signing.interface import SignatureFormatError
from loopwarden.signing.oms import Bundle

FIX = Path(__file__).parents[2] / "fixtures" / "oms"
MT = FIX / "model-transparency"
KEY = MT / "keys" / "signing-key-pub.pem"
CA = MT / "keys" / "ca-cert.pem"


def _copy_model(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        if f.name != "model.sig":
            shutil.copy(f, dst / f.name)
    return dst


@pytest.mark.parametrize("version", ["v1.1.0-elliptic-key", "v1.0.1-elliptic-key"])
def test_reference_key_signatures_verify(tmp_path: Path, version: str) -> None:
    model = _copy_model(MT / version, tmp_path / version)
    sig = MT / version / "model.sig"
    out = verify(model, KeyTrust(load_public(KEY)), signature=sig)
    if (
        version == "v1.0.1-elliptic-key"
    ):  # older bundles record no ignore_paths; its test passes --ignore-paths
        assert not out.verified
        assert "ignore-me" in out.result.findings[0].message
        out = verify(model, KeyTrust(load_public(KEY)), signature=sig, ignore_paths=["ignore-me"])
        expected = "LW-SIGN-021"
    else:
        expected = "LW-SIGN-020"  # ignore-me: left out by the signer, and said so
    assert out.verified, out.result.findings
    assert [f.rule_id for f in out.result.findings] == [expected]
    assert "ignore-me" in out.result.findings[0].message


def test_reference_certificate_signature_verifies(tmp_path: Path) -> None:
    model = _copy_model(MT / "v1.1.0-certificate", tmp_path / "m")
    out = verify(
        model,
        CertificateTrust(tuple(load_certificates([CA]))),
        signature=MT / "v1.1.0-certificate" / "model.sig",
    )
    assert out.verified, out.result.findings
    assert out.signer is not None
    assert out.signer["method"] == "certificate"


@pytest.mark.parametrize(("vector", "trust"), [("valid-key", "key"), ("valid-certificate", "cert")])
def test_spec_valid_vectors(tmp_path: Path, vector: str, trust: str) -> None:
    model = _copy_model(MT / "v1.1.0-elliptic-key", tmp_path / "model")  # the files both vectors sign
    t = KeyTrust(load_public(KEY)) if trust == "key" else CertificateTrust(tuple(load_certificates([CA])))
    out = verify(model, t, signature=FIX / "spec" / f"{vector}.bundle.json")
    assert out.verified, out.result.findings
    assert out.result.digest is not None
    assert out.result.digest.hex == "92745110b1ab4368471cbe31664e10174e954b113a3df333db860317b2c6dec4"


def test_spec_vector_detects_a_changed_file(tmp_path: Path) -> None:
    model = _copy_model(MT / "v1.1.0-elliptic-key", tmp_path / "model")
    (model / "signme-2").write_bytes(b"tampered")
    out = verify(model, KeyTrust(load_public(KEY)), signature=FIX / "spec" / "valid-key.bundle.json")
    assert not out.verified
    assert any("signme-2" in f.message for f in out.result.findings)


@pytest.mark.parametrize(
    ("vector", "problem"),
    [
        ("invalid-empty", "not valid JSON"),
        ("invalid-missing-envelope", "dsseEnvelope"),
        ("invalid-missing-verification-material", "verificationMaterial"),
    ],
)
def test_spec_invalid_vectors_are_rejected(vector: str, problem: str) -> None:
    with pytest.raises(SignatureFormatError, match=problem):
        Bundle.parse((FIX / "spec" / f"{vector}.bundle.json").read_bytes(), source=vector)


def test_spec_wrong_predicate_vector(tmp_path: Path) -> None:
    """Its signature is not valid for the test key (the payload was edited), so it fails before the predicate
    check; either way it never verifies."""
    model = _copy_model(MT / "v1.1.0-elliptic-key", tmp_path / "model")
    sig = FIX / "spec" / "invalid-payload-wrong-predicate.bundle.json"
    # The signature over the edited payload does not verify, so the bundle fails before its predicate is read.
    out = verify(model, KeyTrust(load_public(KEY)), signature=sig)
    assert not out.verified
    assert out.result.findings[0].rule_id == "LW-SIGN-001"


def test_spec_sigstore_vector_is_recognised_not_trusted(tmp_path: Path) -> None:
    """A keyless bundle is never accepted by a key trust (test_keyless.py verifies it with SigstoreTrust)."""
    b = Bundle.parse((FIX / "spec" / "valid-sigstore.bundle.json").read_bytes(), source="sigstore")
    assert b.method == "sigstore"
    model = _copy_model(MT / "v1.1.0-elliptic-key", tmp_path / "model")
    out = verify(model, KeyTrust(load_public(KEY)), signature=FIX / "spec" / "valid-sigstore.bundle.json")
    assert not out.verified
    assert "sigstore method" in out.result.findings[0].message
