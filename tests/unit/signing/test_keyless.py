"""Sigstore keyless signing and verification (the ``sigstore`` extra).

Verification runs fully offline on the OMS spec's ``valid-sigstore`` vector (a real public-good Sigstore bundle:
Fulcio certificate, Rekor entry) with the trust root that ships inside the ``sigstore`` package. Signing needs
Fulcio, Rekor and an OIDC provider, so it is tested with a fake signing context injected at the boundary.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopwarden._cli.main import main
from loopwarden.errors import InputError, SigningError, UsageError
from loopwarden.signing import KeylessSigner, KeySigner, SigstoreTrust, sign, verify
from loopwarden.signing.manifest import compute, resources_of
from loopwarden.signing.oms import Bundle, OmsStatement
from loopwarden.signing.walk import enumerate_model

FIX = Path(__file__).parents[2] / "fixtures" / "oms"
VECTOR = FIX / "spec" / "valid-sigstore.bundle.json"
# The files the vector signs: the reference implementation's v1.1.0 test model (signme-1, signme-2, ignore-me).
MODEL = FIX / "model-transparency" / "v1.1.0-certificate"
# The vector's signing certificate: SAN e-mail and OIDC issuer extension (test_constants_are_the_certificates).
IDENTITY = "stefanb@us.ibm.com"
ISSUER = "https://sigstore.verify.ibm.com/oauth2"
ROOT = "61d4849d9d90076d6215f4d525f13d6574af8e3f67aef3e6f36fc40a14fdd226"
LOG_INDEX = 598151086

HAVE_SIGSTORE = importlib.util.find_spec("sigstore") is not None
needs_sigstore = pytest.mark.skipif(
    not HAVE_SIGSTORE,
    reason="the sigstore package (loopwarden[sigstore], in the test extra) is not installed",
)


@pytest.fixture(autouse=True)
def _own_tuf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sigstore keeps its TUF cache under the user's cache folder; each test starts from the shipped root."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("SIGSTORE_IDENTITY_TOKEN", raising=False)


def _model(tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    dst.mkdir(parents=True)
    for f in MODEL.iterdir():
        if f.name != "model.sig":
            shutil.copy(f, dst / f.name)
    return dst


def _vector_with(tmp_path: Path, edit: Any) -> Path:
    doc = json.loads(VECTOR.read_bytes())
    edit(doc)
    out = tmp_path / "edited.sigstore.json"
    out.write_text(json.dumps(doc))
    return out


def _trust(**kw: Any) -> SigstoreTrust:
    return SigstoreTrust(kw.pop("identity", IDENTITY), kw.pop("issuer", ISSUER), offline=True, **kw)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _verify_keyless(model: Path, *extra: str) -> list[str]:
    """`loopwarden verify MODEL` against the spec vector with the vector's identity and issuer."""
    return [
        "verify",
        str(model),
        "--signature",
        str(VECTOR),
        "--sigstore-identity",
        IDENTITY,
        "--sigstore-issuer",
        ISSUER,
        *extra,
    ]


# --- verification ---------------------------------------------------------------------------------------------


@needs_sigstore
def test_constants_are_the_certificates() -> None:
    """The identity and issuer the tests trust are read from the vector's certificate, not made up."""
    from cryptography import x509

    doc = json.loads(VECTOR.read_bytes())
    cert = x509.load_der_x509_certificate(
        base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"])
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == [IDENTITY]
    issuer = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")).value
    assert issuer.value.decode() == ISSUER


@needs_sigstore
def test_spec_vector_verifies_offline(tmp_path: Path) -> None:
    out = verify(_model(tmp_path), _trust(), signature=VECTOR)
    assert out.verified, out.result.findings
    assert out.result.digest is not None
    assert out.result.digest.hex == ROOT
    assert [f.rule_id for f in out.result.findings] == ["LW-SIGN-020"]  # ignore-me, left out by the signer
    assert out.signer is not None
    doc = json.loads(VECTOR.read_bytes())
    der = base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"])
    assert out.signer == {
        "method": "sigstore",
        "identity": IDENTITY,
        "issuer": ISSUER,
        "fingerprint_sha256": hashlib.sha256(der).hexdigest(),
        "log_index": LOG_INDEX,
        "integrated_time": 1760062340,
    }


@needs_sigstore
def test_spec_vector_verifies_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _model(tmp_path)
    argv = ["verify", str(model), "--signature", str(VECTOR), "--sigstore-identity", IDENTITY]
    rc, out, _ = _run(capsys, *argv, "--sigstore-issuer", ISSUER, "--offline")
    assert rc == 0
    assert f"signed by {IDENTITY} (issuer {ISSUER}, Rekor log index {LOG_INDEX})" in out
    rc, out, _ = _run(capsys, *argv, "--sigstore-issuer", ISSUER, "--offline", "--json")
    assert rc == 0
    [target] = json.loads(out)["targets"]
    assert [f["rule_id"] for f in target["findings"]] == [
        "LW-SIGN-020"
    ]  # info: ignore-me left out by the signer
    assert target["digest"] == f"sha256:{ROOT}"


@needs_sigstore
def test_changed_model_file_is_found(tmp_path: Path) -> None:
    model = _model(tmp_path)
    (model / "signme-1").write_bytes(b"poisoned weights")
    out = verify(model, _trust(), signature=VECTOR)
    assert not out.verified
    assert [f.rule_id for f in out.result.findings if f.rule_id != "LW-SIGN-020"] == ["LW-SIGN-012"]


@needs_sigstore
@pytest.mark.parametrize(
    "identity",
    [
        "attacker@example.com",
        "stefanb@us.ibm.co",  # a prefix of the real identity: no partial matches
        "STEFANB@us.ibm.com",  # nor case-folded ones
        "https://github.com/stefanb/model/.github/workflows/sign.yml@refs/heads/main",
    ],
)
def test_wrong_identity_is_not_verified(tmp_path: Path, identity: str) -> None:
    out = verify(_model(tmp_path), _trust(identity=identity), signature=VECTOR)
    assert not out.verified
    assert out.statement is None  # an unverified payload is never read
    [finding] = out.result.findings
    assert finding.rule_id == "LW-SIGN-001"
    assert identity in finding.message
    assert str(VECTOR) in finding.message


@needs_sigstore
@pytest.mark.parametrize(
    "issuer",
    [
        "https://accounts.google.com",
        "https://sigstore.verify.ibm.com/oauth2/",
        "https://github.com/login/oauth",
    ],
)
def test_wrong_issuer_is_not_verified(tmp_path: Path, issuer: str) -> None:
    out = verify(_model(tmp_path), _trust(issuer=issuer), signature=VECTOR)
    assert not out.verified
    [finding] = out.result.findings
    assert finding.rule_id == "LW-SIGN-001"
    assert issuer in finding.message


@needs_sigstore
def test_flipped_signature_byte_is_not_verified(tmp_path: Path) -> None:
    def flip(doc: dict[str, Any]) -> None:
        sig = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
        sig[20] ^= 0x01
        doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()

    out = verify(_model(tmp_path), _trust(), signature=_vector_with(tmp_path, flip))
    assert not out.verified
    [finding] = out.result.findings
    assert finding.rule_id == "LW-SIGN-001"
    assert "Sigstore verification failed" in finding.message


@needs_sigstore
def test_swapped_payload_is_not_verified(tmp_path: Path) -> None:
    """Another valid OMS statement, one that describes a tampered model exactly, in place of the signed one."""
    model = _model(tmp_path)
    (model / "signme-1").write_bytes(b"poisoned weights")
    signed = Bundle.parse(VECTOR.read_bytes(), source="vector").statement(source="vector")
    listing = enumerate_model(model, allow_symlinks=False, ignore_paths=("ignore-me",), signature=VECTOR)
    done = compute(listing.entries, signed.serialization)
    forged = OmsStatement.build(
        "v1.1.0-sigstore",
        resources_of(listing.entries, done.digests, signed.serialization),
        signed.serialization,
    )

    def swap(doc: dict[str, Any]) -> None:
        doc["dsseEnvelope"]["payload"] = base64.b64encode(forged.to_bytes()).decode()

    out = verify(model, _trust(), signature=_vector_with(tmp_path, swap))
    assert not out.verified
    assert out.statement is None
    assert out.result.findings[0].rule_id == "LW-SIGN-001"


@needs_sigstore
def test_payload_must_be_what_sigstore_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If sigstore's reading of the envelope and ours ever differed (two JSON or base64 decoders), loopwarden
    would parse bytes nobody verified: it fails closed instead."""
    from sigstore.verify import Verifier

    real = Verifier.verify_dsse

    def other_reading(self: Any, bundle: Any, policy: Any) -> tuple[str, bytes]:
        ptype, payload = real(self, bundle, policy)  # the real checks pass...
        return ptype, payload.replace(b"signme-1", b"signme-X")  # ...on bytes other than ours

    monkeypatch.setattr(Verifier, "verify_dsse", other_reading)
    out = verify(_model(tmp_path), _trust(), signature=VECTOR)
    assert not out.verified
    assert "not the payload in the bundle" in out.result.findings[0].message


def _flip_certificate_byte(doc: dict[str, Any]) -> None:
    cert = bytearray(base64.b64decode(doc["verificationMaterial"]["certificate"]["rawBytes"]))
    cert[-5] ^= 0x01  # inside the Fulcio CA's signature over the certificate
    doc["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(bytes(cert)).decode()


@needs_sigstore
@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (
            lambda d: d["verificationMaterial"]["tlogEntries"][0].update(integratedTime="1760062341"),
            "log entry",
        ),
        (lambda d: d["verificationMaterial"]["tlogEntries"][0].update(logIndex="598151087"), "log entry"),
        (lambda d: d["verificationMaterial"].update(tlogEntries=[]), "log entr"),
        (_flip_certificate_byte, "certificate chain"),
    ],
    ids=["integrated-time", "log-index", "no-log-entry", "certificate"],
)
def test_log_entry_and_certificate_are_checked(tmp_path: Path, edit: Any, what: str) -> None:
    """A Rekor entry whose signed timestamp (SET) does not match, none at all, or a certificate that Fulcio
    did not sign."""
    out = verify(_model(tmp_path), _trust(), signature=_vector_with(tmp_path, edit))
    assert not out.verified
    [finding] = out.result.findings
    assert finding.rule_id == "LW-SIGN-001"
    assert what in finding.message.lower()


@needs_sigstore
def test_trusted_root_file(tmp_path: Path) -> None:
    """A trusted_root.json: the public-good one verifies the vector; another instance's (staging) does not."""
    import sigstore

    store = Path(sigstore.__file__).parent / "_store"
    [prod] = store.glob("*sigstore.dev/trusted_root.json")
    [staging] = store.glob("*sigstage.dev/trusted_root.json")
    model = _model(tmp_path)
    assert verify(model, SigstoreTrust(IDENTITY, ISSUER, trusted_root=prod), signature=VECTOR).verified
    out = verify(model, SigstoreTrust(IDENTITY, ISSUER, trusted_root=staging), signature=VECTOR)
    assert not out.verified
    assert out.result.findings[0].rule_id == "LW-SIGN-001"


@needs_sigstore
def test_unusable_trusted_root_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "root.json"
    bad.write_text('{"mediaType": "nope"}')
    with pytest.raises(InputError, match="not a usable Sigstore trusted root"):
        verify(_model(tmp_path), SigstoreTrust(IDENTITY, ISSUER, trusted_root=bad), signature=VECTOR)
    argv = _verify_keyless(_model(tmp_path / "x"), "--trusted-root", str(tmp_path / "none.json"))
    rc, _, err = _run(capsys, *argv)
    assert rc == 2
    assert "none.json" in err


@needs_sigstore
def test_online_mode_refreshes_and_a_failed_refresh_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --offline the trust root is refreshed over TUF (no network here: the refresh is faked)."""
    from sigstore.errors import TUFError
    from sigstore.verify import Verifier

    real = Verifier.production.__func__  # type: ignore[attr-defined]
    asked: list[bool] = []

    def production(cls: Any, *, offline: bool = False) -> Any:
        asked.append(offline)
        return real(cls, offline=True)

    monkeypatch.setattr(Verifier, "production", classmethod(production))
    model = _model(tmp_path)
    assert verify(model, SigstoreTrust(IDENTITY, ISSUER), signature=VECTOR).verified
    assert asked == [False]

    def unreachable(cls: Any, *, offline: bool = False) -> Any:
        raise TUFError("Failed to refresh TUF metadata")

    monkeypatch.setattr(Verifier, "production", classmethod(unreachable))
    rc, _, err = _run(capsys, *_verify_keyless(model))
    assert rc == 2
    assert "trust root" in err
    assert "--offline" in err


@needs_sigstore
def test_keyless_bundle_with_a_key_is_refused(
    tmp_path: Path, key_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, pub = key_files
    rc, out, _ = _run(capsys, "verify", str(_model(tmp_path)), "--signature", str(VECTOR), "--key", str(pub))
    assert rc == 1
    assert "signed with the sigstore method, but a public key was given" in out


@needs_sigstore
def test_key_and_certificate_bundles_with_sigstore_trust_are_refused(
    tmp_path: Path, model: Path, key: Any
) -> None:
    result = sign(model, KeySigner(key), signature=tmp_path / "key.sig")
    out = verify(model, _trust(), signature=result.signature)
    assert not out.verified
    assert "signed with the key method, but a Sigstore identity was given" in out.result.findings[0].message
    cert_model = _model(tmp_path)
    out = verify(cert_model, _trust(), signature=FIX / "spec" / "valid-certificate.bundle.json")
    assert not out.verified
    assert "signed with the certificate method" in out.result.findings[0].message


def test_identity_and_issuer_are_required(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError):
        SigstoreTrust("", ISSUER)
    with pytest.raises(UsageError):
        SigstoreTrust(IDENTITY, "")
    model = tmp_path / "m"
    model.mkdir()
    rc, _, err = _run(
        capsys, "verify", str(model), "--signature", str(VECTOR), "--sigstore-identity", IDENTITY
    )
    assert rc == 2
    assert "--sigstore-issuer" in err
    rc, _, err = _run(capsys, "verify", str(model), "--key", "k.pub", "--offline")
    assert rc == 2
    assert "--offline: only with --sigstore-identity" in err
    argv = ["--key", "k.pub", "--sigstore-identity", IDENTITY, "--sigstore-issuer", ISSUER]
    rc, _, err = _run(capsys, "verify", str(model), *argv)  # one trust only
    assert rc == 2
    assert "not allowed with" in err


@pytest.fixture
def no_sigstore(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import sigstore`` (and every submodule) fail as if the package were not installed."""
    for name in [n for n in sys.modules if n == "sigstore" or n.startswith("sigstore.")] + ["sigstore"]:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.usefixtures("no_sigstore")
def test_missing_package_is_exit_2_with_the_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "w.bin").write_bytes(b"weights")
    rc, _, err = _run(capsys, *_verify_keyless(model))
    assert rc == 2
    assert "pip install 'loopwarden[sigstore]'" in err
    rc, _, err = _run(
        capsys, "sign", str(model), "--sigstore", "--identity-token", "x", "--signature", str(tmp_path / "s")
    )
    assert rc == 2
    assert "pip install 'loopwarden[sigstore]'" in err
    assert not (tmp_path / "s").exists()
    with pytest.raises(UsageError, match="sigstore package"):
        SigstoreTrust(IDENTITY, ISSUER).check(Bundle.parse(VECTOR.read_bytes(), source="v"), source="v")


def test_importing_signing_does_not_import_sigstore() -> None:
    src = Path(__file__).parents[3] / "src"
    code = (
        "import sys, loopwarden.signing, loopwarden._cli.verify, loopwarden._cli.sign;"
        "print('sigstore' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


# --- signing (fake Sigstore services: Fulcio, Rekor and the OIDC provider need the network) ---------------------


def _token(issuer: str = "https://issuer.example", sub: str = "ci@example.com", age: int = 0) -> str:
    """An OIDC token as a provider would mint it (sigstore reads its claims only; Fulcio checks the signature)."""
    import jwt

    now = int(time.time()) - age
    claims = {"iss": issuer, "sub": sub, "aud": "sigstore", "iat": now, "exp": now + 600}
    return jwt.encode(claims, "not-a-real-key-only-the-claims-are-read-by-sigstore", algorithm="HS256")


class FakeContext:
    """Stands in for ``sigstore.sign.SigningContext``: records what it is handed and returns a Sigstore bundle
    carrying that payload (the vector's certificate and log entry; its signature is over other bytes)."""

    def __init__(self, *, payload_override: bytes | None = None) -> None:
        self.tokens: list[Any] = []
        self.statements: list[bytes] = []
        self.bundles: list[str] = []
        self.payload_override = payload_override

    @contextlib.contextmanager
    def signer(self, token: Any, *, cache: bool = True) -> Iterator[Any]:
        self.tokens.append(token)
        yield self

    def sign_dsse(self, statement: Any) -> Any:
        from sigstore.models import Bundle as SigstoreBundle

        self.statements.append(statement._contents)
        doc = json.loads(VECTOR.read_bytes())
        payload = self.payload_override if self.payload_override is not None else statement._contents
        doc["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
        out = SigstoreBundle.from_json(json.dumps(doc))
        self.bundles.append(out.to_json())
        return out


@needs_sigstore
def test_keyless_signing_hands_over_the_statement_and_writes_sigstores_bundle(
    tmp_path: Path, model: Path
) -> None:
    fake = FakeContext()
    token = _token()
    sig = tmp_path / "model.sigstore.json"
    result = sign(model, KeylessSigner(token, context=fake), signature=sig)
    assert fake.statements == [result.statement.to_bytes()]  # exactly the OMS statement, canonical bytes
    assert [t._raw_token for t in fake.tokens] == [token]
    assert sig.read_text() == fake.bundles[0]  # Sigstore's document, written unchanged
    written = Bundle.parse(sig.read_bytes(), source=str(sig))
    assert written.method == "sigstore"
    assert written.payload_type == "application/vnd.in-toto+json"
    assert written.statement(source=str(sig)) == result.statement
    assert json.loads(sig.read_bytes())["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert result.signer["method"] == "sigstore"
    assert result.signer["identity"] == IDENTITY  # from the certificate the (fake) Fulcio issued
    assert result.signer["log_index"] == LOG_INDEX
    # The fake's signature covers the vector's payload, not ours: the result must not verify.
    assert not verify(model, _trust(), signature=sig).verified


@needs_sigstore
def test_keyless_signing_token_sources(tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sigstore.oidc

    ambient, from_env = _token(sub="ambient"), _token(sub="env")
    monkeypatch.setattr(sigstore.oidc, "detect_credential", lambda *a, **k: ambient)
    fake = FakeContext()
    sign(model, KeylessSigner(context=fake), signature=tmp_path / "a.sig")
    monkeypatch.setenv("SIGSTORE_IDENTITY_TOKEN", from_env)
    sign(model, KeylessSigner(context=fake), signature=tmp_path / "b.sig")
    assert [t._raw_token for t in fake.tokens] == [ambient, from_env]


@needs_sigstore
def test_keyless_signing_without_a_token_fails_early(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sigstore.oidc

    monkeypatch.setattr(sigstore.oidc, "detect_credential", lambda *a, **k: None)
    with pytest.raises(UsageError, match="identity token"):
        KeylessSigner(context=FakeContext())
    sig = tmp_path / "s.sig"
    rc, _, err = _run(capsys, "sign", str(model), "--sigstore", "--signature", str(sig))
    assert rc == 2
    assert "--identity-token" in err
    rc, _, err = _run(
        capsys, "sign", str(model), "--sigstore", "--identity-token", "not.a.jwt", "--signature", str(sig)
    )
    assert rc == 2
    assert "unusable OIDC identity token" in err
    with pytest.raises(SigningError, match="unusable OIDC identity token"):
        KeylessSigner(_token(age=1200), context=FakeContext())  # expired ten minutes ago
    assert not sig.exists()


@needs_sigstore
def test_bundle_for_another_payload_is_refused(tmp_path: Path, model: Path) -> None:
    fake = FakeContext(payload_override=b'{"_type": "https://in-toto.io/Statement/v1"}')
    sig = tmp_path / "s.sig"
    with pytest.raises(SigningError, match="does not carry the statement"):
        sign(model, KeylessSigner(_token(), context=fake), signature=sig)
    assert not sig.exists()


class FailingContext(FakeContext):
    def sign_dsse(self, statement: Any) -> Any:
        raise ConnectionError("rekor.sigstore.dev unreachable")


@needs_sigstore
def test_a_failed_signing_flow_writes_nothing(tmp_path: Path, model: Path) -> None:
    sig = tmp_path / "s.sig"
    with pytest.raises(SigningError, match=r"Sigstore signing failed \(ConnectionError: .*unreachable"):
        sign(model, KeylessSigner(_token(), context=FailingContext()), signature=sig)
    assert not sig.exists()


@needs_sigstore
def test_sign_cli_sigstore(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sign --sigstore`` uses the public-good signing context (faked here: it needs the network)."""
    import sigstore.models
    import sigstore.sign

    fake = FakeContext()
    configs: list[str] = []
    monkeypatch.setattr(
        sigstore.models.ClientTrustConfig,
        "production",
        classmethod(lambda cls, offline=False: configs.append("prod") or "config"),
    )
    monkeypatch.setattr(
        sigstore.sign.SigningContext,
        "from_trust_config",
        classmethod(lambda cls, cfg: fake if cfg == "config" else None),
    )
    sig = tmp_path / "m.sig"
    rc, out, _ = _run(
        capsys,
        "sign",
        str(model),
        "--sigstore",
        "--identity-token",
        _token(),
        "--signature",
        str(sig),
        "--json",
    )
    assert rc == 0
    info = json.loads(out)
    assert configs == ["prod"]
    assert info["signer"]["method"] == "sigstore"
    assert fake.statements and Bundle.parse(sig.read_bytes(), source="s").payload == fake.statements[0]
    rc, _, _ = _run(capsys, "sign", str(model), "--identity-token", _token(), "--key", "k.key")
    assert rc == 2  # --identity-token without --sigstore
    rc, _, err = _run(capsys, "sign", str(model), "--sigstore", "--key", "k.key")
    assert rc == 2
    assert "not allowed with" in err
    rc, _, err = _run(capsys, "sign", str(model), "--sigstore", "--certificate", "c.pem")
    assert rc == 2
    assert "--sigstore signs without a key" in err


@needs_sigstore
def test_keyless_signatures_are_recorded(
    tmp_path: Path, model: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Who signed (identity, issuer, Rekor index) goes into the ledger, for signing and for verification."""
    import sigstore.models
    import sigstore.sign

    from loopwarden.attest.predicates import MODEL_SIGNATURE, SIGNATURE_VERIFICATION
    from loopwarden.domain import Digest
    from loopwarden.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", name="t")
    fake = FakeContext()
    sig = tmp_path / "m.sig"
    argv = ["--workspace", str(ws.root), "sign", str(model), "--sigstore", "--signature", str(sig), "--json"]
    with monkeypatch.context() as m:  # only the signing is faked
        m.setattr(
            sigstore.models.ClientTrustConfig, "production", classmethod(lambda cls, offline=False: None)
        )
        m.setattr(sigstore.sign.SigningContext, "from_trust_config", classmethod(lambda cls, cfg: fake))
        rc, out, _ = _run(capsys, *argv, "--identity-token", _token(), "--record")
    assert rc == 0
    root = json.loads(out)["subject"]["sha256"]
    vector_model = _model(tmp_path)
    argv = ["--workspace", str(ws.root), "verify", str(vector_model), "--signature", str(VECTOR), "--offline"]
    assert (
        _run(capsys, *argv, "--sigstore-identity", IDENTITY, "--sigstore-issuer", ISSUER, "--record")[0] == 0
    )
    with ws.open_ledger(writable=False) as led:
        [_, signed] = list(led.entries(subject=Digest("sha256", root)))
        [verified] = list(led.entries(subject=Digest("sha256", ROOT)))
    pred = signed.statement().predicate
    assert signed.statement().predicate_type == MODEL_SIGNATURE
    assert pred["signer"]["method"] == "sigstore"
    assert pred["signer"]["log_index"] == LOG_INDEX
    assert pred["signature"]["sha256"] == hashlib.sha256(sig.read_bytes()).hexdigest()
    assert verified.statement().predicate_type == SIGNATURE_VERIFICATION
    who = verified.statement().predicate["signer"]
    assert (who["method"], who["identity"], who["issuer"]) == ("sigstore", IDENTITY, ISSUER)
