"""Sign then verify through the library: every serialization, datasets, single files, manifests,
incremental."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from loopwarden.attest.keys import PrivateKey, generate
from loopwarden.domain import ArtifactKind, Verdict
from loopwarden.errors import UsageError
from loopwarden.signing import KeySigner, KeyTrust, sign, sign_digests, verify
from loopwarden.signing.interface import OMS_PREDICATE_TYPE, FolderChangedError
from loopwarden.signing.oms import key_hint, root_digest


def _payload(sig: Path) -> dict:
    return json.loads(base64.b64decode(json.loads(sig.read_bytes())["dsseEnvelope"]["payload"]))


@pytest.mark.parametrize(
    ("hash_type", "shard"), [("sha256", None), ("sha256", 1_000_000), ("blake2b", None), ("blake3", 777_777)]
)
def test_roundtrip(model: Path, key: PrivateKey, hash_type: str, shard: int | None) -> None:
    if hash_type == "blake3":
        pytest.importorskip("blake3")
    res = sign(model, KeySigner(key), hash_type=hash_type, shard_size=shard)  # type: ignore[arg-type]
    assert res.signature == model.parent / "model.sig"
    out = verify(model, KeyTrust(key.public()))
    assert out.verified, out.result.findings
    if shard is None:
        assert out.result.verdict is Verdict.CLEAN
    else:  # the empty file cannot be covered by shards; said so, not a failure
        assert [(f.rule_id, f.location.path.endswith("sub/deep/empty")) for f in out.result.findings] == [
            ("LW-SIGN-016", True)
        ]
    assert out.result.digest is not None
    assert out.result.digest.hex == res.statement.root


def test_statement_follows_the_spec(model: Path, key: PrivateKey) -> None:
    res = sign(model, KeySigner(key), ignore_paths=["sub/deep"])
    bundle = json.loads(res.signature.read_bytes())
    assert bundle["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert (
        bundle["verificationMaterial"]["publicKey"]["hint"] == hashlib.sha256(key.public().pem()).hexdigest()
    )
    stmt = _payload(res.signature)
    assert stmt["_type"] == "https://in-toto.io/Statement/v1"
    assert stmt["predicateType"] == OMS_PREDICATE_TYPE
    names = [r["name"] for r in stmt["predicate"]["resources"]]
    assert names == sorted(names) == ["config.json", "sub/tok.txt", "weights.bin"]
    r0 = stmt["predicate"]["resources"][0]
    assert r0 == {
        "name": "config.json",
        "algorithm": "sha256",
        "digest": hashlib.sha256((model / "config.json").read_bytes()).hexdigest(),
    }
    ser = stmt["predicate"]["serialization"]
    assert ser["method"] == "files"
    assert ser["hash_type"] == "sha256"
    assert ser["allow_symlinks"] is False
    assert "shard_size" not in ser
    assert {".git", ".gitignore", ".gitattributes", ".github", "sub/deep"} <= set(ser["ignore_paths"])
    concat = b"".join(bytes.fromhex(r["digest"]) for r in stmt["predicate"]["resources"])
    assert stmt["subject"] == [{"name": "my-model", "digest": {"sha256": hashlib.sha256(concat).hexdigest()}}]


def test_shard_names_and_empty_files(model: Path, key: PrivateKey, tmp_path: Path) -> None:
    sig = tmp_path / "s.sig"
    sign(model, KeySigner(key), shard_size=1_048_576, signature=sig)
    stmt = _payload(sig)
    names = [r["name"] for r in stmt["predicate"]["resources"]]
    size = (model / "weights.bin").stat().st_size
    assert "weights.bin:0:1048576" in names
    assert f"weights.bin:3145728:{size}" in names
    assert not any(n.startswith("sub/deep/empty") for n in names)  # empty files have no shards (OMS 6.3.2)
    assert stmt["predicate"]["serialization"]["shard_size"] == 1_048_576


def test_signature_inside_the_folder_is_excluded(model: Path, key: PrivateKey) -> None:
    sig = model / "model.sig"
    sign(model, KeySigner(key), signature=sig)
    assert "model.sig" in _payload(sig)["predicate"]["serialization"]["ignore_paths"]
    assert verify(model, KeyTrust(key.public()), signature=sig).verified


def test_single_file_and_dataset(tmp_path: Path, key: PrivateKey) -> None:
    f = tmp_path / "model.safetensors"
    f.write_bytes(os.urandom(5000))
    sign(f, KeySigner(key), signature=tmp_path / "f.sig")
    assert [r["name"] for r in _payload(tmp_path / "f.sig")["predicate"]["resources"]] == [
        "model.safetensors"
    ]
    assert verify(f, KeyTrust(key.public()), signature=tmp_path / "f.sig").verified
    data = tmp_path / "corpus"
    (data / "shard-00").mkdir(parents=True)
    for i in range(20):
        (data / "shard-00" / f"part-{i:03d}.jsonl").write_text(json.dumps({"text": f"row {i}"}) + "\n")
    sign(data, KeySigner(key), signature=tmp_path / "d.sig")
    out = verify(data, KeyTrust(key.public()), signature=tmp_path / "d.sig", kind=ArtifactKind.DATASET)
    assert out.verified
    assert out.result.kind is ArtifactKind.DATASET
    f.write_bytes(os.urandom(5000))
    bad = verify(f, KeyTrust(key.public()), signature=tmp_path / "f.sig")
    assert not bad.verified
    assert "model.safetensors" in bad.result.findings[0].message


def test_empty_model_is_refused(tmp_path: Path, key: PrivateKey) -> None:
    (tmp_path / "m" / ".git").mkdir(parents=True)
    (tmp_path / "m" / ".git" / "x").write_text("x")
    with pytest.raises(UsageError, match="nothing to sign"):
        sign(tmp_path / "m", KeySigner(key))
    assert not (tmp_path / "model.sig").exists()


def test_ed25519_is_not_an_oms_key() -> None:
    with pytest.raises(UsageError, match="ECDSA"):
        KeySigner(generate("ed25519"))


def test_incremental_rehashes_only_changed_files(model: Path, key: PrivateKey, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for i in range(10):
        (model / f"small-{i}.bin").write_bytes(os.urandom(1000))
    sign(model, KeySigner(key), cache_dir=cache)
    trust = KeyTrust(key.public())
    first = verify(model, trust, incremental=True, cache_dir=cache)
    assert first.verified
    assert first.bytes_hashed == 0
    assert first.files_reused == 14
    (model / "small-3.bin").write_bytes(os.urandom(1000))
    second = verify(model, trust, incremental=True, cache_dir=cache)
    assert not second.verified
    assert second.bytes_hashed == 1000
    assert [f.rule_id for f in second.result.findings] == ["LW-SIGN-012"]
    assert "small-3.bin" in second.result.findings[0].message
    full = verify(model, trust, incremental=False, cache_dir=cache)
    assert full.bytes_hashed == sum(
        p.stat().st_size for p in model.rglob("*") if p.is_file() and ".git" not in p.parts
    )


def test_incremental_is_not_fooled_by_a_restored_mtime(model: Path, key: PrivateKey, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sign(model, KeySigner(key), cache_dir=cache)
    p = model / "config.json"
    st = p.stat()
    p.write_text('{"layers": 3}')  # same size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back; ctime cannot be
    out = verify(model, KeyTrust(key.public()), incremental=True, cache_dir=cache)
    assert not out.verified
    assert "config.json" in out.result.findings[0].message


def test_sign_precomputed_digests(tmp_path: Path, model: Path, key: PrivateKey) -> None:
    files = {
        p.relative_to(model).as_posix(): p for p in model.rglob("*") if p.is_file() and ".git" not in p.parts
    }
    manifest = {n: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for n, p in files.items()}
    (tmp_path / "digests.json").write_text(json.dumps(manifest))
    sig = tmp_path / "reg.sig"
    res = sign_digests("my-model", tmp_path / "digests.json", KeySigner(key), signature=sig)
    assert res.bytes_hashed == 0
    assert verify(model, KeyTrust(key.public()), signature=sig).verified


def test_precomputed_digests_must_be_confined(tmp_path: Path, key: PrivateKey) -> None:
    from loopwarden.errors import InputError

    (tmp_path / "d.json").write_text(json.dumps({"../etc/passwd": "sha256:" + "0" * 64}))
    with pytest.raises(InputError, match="passwd"):
        sign_digests("m", tmp_path / "d.json", KeySigner(key), signature=tmp_path / "x.sig")
    assert not (tmp_path / "x.sig").exists()


def test_folder_changing_during_signing_writes_nothing(model: Path, key: PrivateKey) -> None:
    victim = model / "config.json"

    def meddle(_: int) -> object:
        def on_bytes(n: int) -> None:
            victim.write_text("changed under our feet, longer than before")

        return on_bytes

    with pytest.raises(FolderChangedError, match=r"config\.json"):
        sign(model, KeySigner(key), workers=1, progress=meddle)
    assert not (model.parent / "model.sig").exists()


def test_root_digest_helper() -> None:
    from loopwarden.signing.interface import Resource

    rs = [Resource("b", "sha256", "11" * 32), Resource("a", "sha256", "22" * 32)]
    assert root_digest(rs) == hashlib.sha256(bytes.fromhex("22" * 32 + "11" * 32)).hexdigest()
    assert len(key_hint(generate().public())) == 64


def test_file_added_while_signing_writes_nothing(model: Path, key: PrivateKey) -> None:
    def add_a_file(_: int) -> object:
        def on_bytes(n: int) -> None:
            (model / "late.bin").write_bytes(b"late")

        return on_bytes

    with pytest.raises(FolderChangedError, match=r"late\.bin: changed while being hashed \(added"):
        sign(model, KeySigner(key), workers=1, progress=add_a_file)
    assert not (model.parent / "model.sig").exists()


def test_fast_name_check_agrees_with_the_canonical_one() -> None:
    """The verifier's fast path must reject exactly the names the careful check rejects."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from loopwarden.signing.verify import _SUSPECT
    from loopwarden.signing.walk import is_confined_name

    @settings(max_examples=3000, deadline=None)
    @given(st.text(alphabet="a./\\\x00:", max_size=12))
    def agree(name: str) -> None:
        assert (_SUSPECT.search(name) is None) == is_confined_name(name)

    agree()
