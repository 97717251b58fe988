"""Interoperability with the reference implementation of OpenSSF Model Signing (``model-signing`` on PyPI,
https://github.com/sigstore/model-transparency), both ways, through its public Python API."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from loopwarden.attest.keys import PrivateKey, generate, load_private
from loopwarden.signing import (
    CertificateSigner,
    CertificateTrust,
    KeySigner,
    KeyTrust,
    load_certificates,
    sign,
    verify,
)

ms_signing = pytest.importorskip(
    "model_signing.signing", reason="model-signing (test extra) is not installed"
)
ms_verifying = pytest.importorskip("model_signing.verifying")
ms_hashing = pytest.importorskip("model_signing.hashing")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    m = tmp_path / "llm"
    (m / "shards").mkdir(parents=True)
    for i in range(3):
        (m / "shards" / f"model-{i:05d}.safetensors").write_bytes(os.urandom(300_000 + i))
    (m / "config.json").write_text('{"hidden": 8}')
    (m / "tokenizer.json").write_text('{"v": []}')
    return m


@pytest.fixture
def keys(tmp_path: Path) -> tuple[PrivateKey, Path, Path]:
    k = generate("ecdsa-p384")
    priv, pub = tmp_path / "k.key", tmp_path / "k.pub"
    k.save(priv)
    pub.write_bytes(k.public().pem())
    return k, priv, pub


def _pki(folder: Path) -> dict[str, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir()
    now = dt.datetime.now(dt.UTC)

    def cert(
        cn: str, key: ec.EllipticCurvePrivateKey, issuer: str, ikey: ec.EllipticCurvePrivateKey, ca: bool
    ) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=10))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(not ca, False, False, False, False, ca, ca, False, False), critical=True
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ikey.public_key()), critical=False
            )
        )
        if not ca:
            b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        return b.sign(ikey, hashes.SHA256())

    rk, ik, lk = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    files = {
        "root": cert("root", rk, "root", rk, True),
        "int": cert("int", ik, "root", rk, True),
        "leaf": cert("leaf", lk, "int", ik, False),
    }
    out = {}
    for n, c in files.items():
        out[n] = folder / f"{n}.pem"
        out[n].write_bytes(c.public_bytes(serialization.Encoding.PEM))
    out["key"] = folder / "leaf.key"
    out["key"].write_bytes(
        lk.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return out


# --- ours -> reference
# -------------------------------------------------------------------------------------------


def test_reference_verifies_our_key_files_signature(
    model: Path, keys: tuple[PrivateKey, Path, Path], tmp_path: Path
) -> None:
    k, _, pub = keys
    sig = tmp_path / "ours.sig"
    sign(model, KeySigner(k), signature=sig)
    ms_verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(model, sig)
    (model / "config.json").write_text("{}")
    with pytest.raises(ValueError, match=r"config\.json"):
        ms_verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(model, sig)


def test_reference_verifies_our_certificate_signature(model: Path, tmp_path: Path) -> None:
    pki = _pki(tmp_path / "pki")
    signer = CertificateSigner(
        load_private(pki["key"]), load_certificates([pki["leaf"]])[0], tuple(load_certificates([pki["int"]]))
    )
    sig = tmp_path / "ours-cert.sig"
    sign(model, signer, signature=sig)
    ms_verifying.Config().use_certificate_verifier(certificate_chain=[pki["root"]]).verify(model, sig)


# --- reference -> ours
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hashing",
    [
        pytest.param(lambda: ms_hashing.Config().use_file_serialization(), id="files-sha256"),
        pytest.param(
            lambda: ms_hashing.Config().use_shard_serialization(shard_size=100_000), id="shards-sha256"
        ),
        pytest.param(
            lambda: ms_hashing.Config().use_file_serialization(hashing_algorithm="blake2"), id="blake2"
        ),
        pytest.param(
            lambda: ms_hashing.Config().use_file_serialization(hashing_algorithm="blake3"), id="blake3"
        ),
        pytest.param(
            lambda: ms_hashing.Config().use_shard_serialization(
                hashing_algorithm="blake3", shard_size=65_536
            ),
            id="shards-blake3",
        ),
    ],
)
def test_we_verify_reference_key_signatures(
    model: Path, keys: tuple[PrivateKey, Path, Path], tmp_path: Path, hashing
) -> None:  # type: ignore[no-untyped-def]
    k, priv, _ = keys
    cfg = hashing()  # model-signing depends on blake3 itself, so BLAKE3 is always available here
    sig = tmp_path / "ref.sig"
    ms_signing.Config().use_elliptic_key_signer(private_key=priv).set_hashing_config(cfg).sign(model, sig)
    out = verify(model, KeyTrust(k.public()), signature=sig)
    assert out.verified, out.result.findings
    (model / "shards" / "model-00001.safetensors").write_bytes(b"evil")
    bad = verify(model, KeyTrust(k.public()), signature=sig)
    assert not bad.verified
    assert any("shards/model-00001.safetensors" in f.message for f in bad.result.findings)


def test_we_verify_reference_certificate_signature(model: Path, tmp_path: Path) -> None:
    pki = _pki(tmp_path / "pki")
    sig = tmp_path / "ref-cert.sig"
    ms_signing.Config().use_certificate_signer(
        private_key=pki["key"], signing_certificate=pki["leaf"], certificate_chain=[pki["int"]]
    ).sign(model, sig)
    out = verify(model, CertificateTrust(tuple(load_certificates([pki["root"]]))), signature=sig)
    assert out.verified, out.result.findings
    other = _pki(tmp_path / "other")
    assert not verify(
        model, CertificateTrust(tuple(load_certificates([other["root"]]))), signature=sig
    ).verified
