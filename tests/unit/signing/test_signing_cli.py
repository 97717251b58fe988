"""The sign and verify commands: exit codes, JSON envelope, certificates, ledger, bad input (nothing
written)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from loopwarden._cli.main import main
from loopwarden.attest.keys import generate
from loopwarden.signing.interface import Resource, Serialization
from loopwarden.signing.oms import Bundle, KeySigner, OmsStatement


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_sign_verify_cli(
    model: Path, key_files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    priv, pub = key_files
    rc, out, _ = _run(capsys, "sign", str(model), "--key", str(priv), "--json")
    assert rc == 0
    info = json.loads(out)
    assert info["signature"] == str(model.parent / "model.sig")
    assert info["resources"] == 4
    rc, out, _ = _run(capsys, "verify", str(model), "--key", str(pub), "--json")
    assert rc == 0
    report = json.loads(out)
    assert report["tool"] == "loopwarden"
    [target] = report["targets"]
    assert target["verdict"] == "clean"
    assert target["digest"] == "sha256:" + info["subject"]["sha256"]
    (model / "config.json").write_text("{}")
    rc, out, _ = _run(capsys, "verify", str(model), "--key", str(pub))
    assert rc == 1
    assert "LW-SIGN-012" in out
    assert "config.json" in out


def test_cli_shards_blake3_and_ignore(
    model: Path, key_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("blake3")
    priv, pub = key_files
    sig = tmp_path / "b3.sig"
    (model / "scratch").mkdir()
    (model / "scratch" / "tmp.log").write_text("noise")
    rc, _, _ = _run(
        capsys,
        "sign",
        str(model),
        "--key",
        str(priv),
        "--hash",
        "blake3",
        "--shard-size",
        "1000000",
        "--ignore-path",
        "scratch",
        "--signature",
        str(sig),
    )
    assert rc == 0
    rc, out, _ = _run(capsys, "verify", str(model), "--key", str(pub), "--signature", str(sig), "--json")
    assert rc == 0  # an ignored file is reported (info), not a failure
    [target] = json.loads(out)["targets"]
    by_rule = {f["rule_id"]: f for f in target["findings"]}
    assert sorted(by_rule) == ["LW-SIGN-016", "LW-SIGN-020"]  # the empty file, then the ignored one
    f = by_rule["LW-SIGN-020"]
    assert f["severity"] == "info"
    assert "scratch/tmp.log" in f["message"]


def test_certificate_method(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], chain) -> None:  # type: ignore[no-untyped-def]
    c = chain(tmp_path / "pki")
    rc, _, err = _run(
        capsys,
        "sign",
        str(model),
        "--key",
        str(c["key"]),
        "--certificate",
        str(c["leaf"]),
        "--certificate-chain",
        str(c["int"]),
    )
    assert rc == 0, err
    rc, out, err = _run(capsys, "verify", str(model), "--certificate-chain", str(c["root"]))
    assert rc == 0, out + err
    other = chain(tmp_path / "other")
    rc, out, _ = _run(capsys, "verify", str(model), "--certificate", str(other["root"]))
    assert rc == 1
    assert "LW-SIGN-001" in out
    assert "trusted CA" in out
    rc, out, _ = _run(capsys, "verify", str(model), "--key", str(tmp_path / "pki" / "root.pem"))
    assert rc == 2  # a certificate is not a public key file


def test_certificate_that_may_not_sign(
    model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], chain
) -> None:  # type: ignore[no-untyped-def]
    c = chain(tmp_path / "pki", leaf_may_sign=False)
    assert (
        _run(
            capsys,
            "sign",
            str(model),
            "--key",
            str(c["key"]),
            "--certificate",
            str(c["leaf"]),
            "--certificate-chain",
            str(c["int"]),
        )[0]
        == 0
    )
    rc, out, _ = _run(capsys, "verify", str(model), "--certificate-chain", str(c["root"]))
    assert rc == 1
    assert "may not sign" in out


def test_record_in_the_ledger(
    model: Path, key_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loopwarden.attest.predicates import MODEL_SIGNATURE, SIGNATURE_VERIFICATION
    from loopwarden.domain import Digest
    from loopwarden.signing import OMS_PREDICATE_TYPE as OMS_SIGNATURE
    from loopwarden.workspace import init_workspace

    ws = init_workspace(tmp_path / "ws", name="t")
    priv, pub = key_files
    rc, out, _ = _run(
        capsys, "--workspace", str(ws.root), "sign", str(model), "--key", str(priv), "--record", "--json"
    )
    assert rc == 0
    root = json.loads(out)["subject"]["sha256"]
    assert (
        _run(capsys, "--workspace", str(ws.root), "verify", str(model), "--key", str(pub), "--record")[0] == 0
    )
    with ws.open_ledger(writable=False) as led:
        entries = list(led.entries(subject=Digest("sha256", root)))
        types = [e.statement().predicate_type for e in entries]
        assert types == [OMS_SIGNATURE, MODEL_SIGNATURE, SIGNATURE_VERIFICATION]
        who = entries[1].statement().predicate["signer"]
        from loopwarden.attest.keys import load_public

        assert who["method"] == "key"
        assert who["keyid"] == load_public(pub).keyid
        assert entries[2].statement().predicate["verified"] is True
        # the model-signature record also names every signed file by its own digest, for lineage
        weights = Digest("sha256", hashlib.sha256((model / "weights.bin").read_bytes()).hexdigest())
        [by_file] = list(led.entries(subject=weights))
        assert by_file.statement().predicate_type == MODEL_SIGNATURE


def test_bad_input_exit_2_and_nothing_written(
    model: Path,
    key_files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    priv, pub = key_files
    sig = model.parent / "model.sig"
    rc, _, err = _run(capsys, "sign", str(model), "--key", str(tmp_path / "nope.key"))
    assert rc == 2
    assert "nope.key" in err
    assert "not found" in err
    assert not sig.exists()
    enc = tmp_path / "enc.key"
    generate().save(enc, b"right")
    monkeypatch.setenv("LOOPWARDEN_KEY_PASSWORD", "wrong")
    rc, _, err = _run(capsys, "sign", str(model), "--key", str(enc))
    assert rc == 2
    assert "wrong password" in err
    assert not sig.exists()
    monkeypatch.setenv("MY_PW", "right")
    assert _run(capsys, "sign", str(model), "--key", str(enc), "--password-env", "MY_PW")[0] == 0
    sig.unlink()
    (tmp_path / "corrupt.sig").write_text("{not json")
    rc, _, err = _run(
        capsys, "verify", str(model), "--key", str(pub), "--signature", str(tmp_path / "corrupt.sig")
    )
    assert rc == 2
    assert "corrupt.sig" in err
    assert "not valid JSON" in err
    rc, _, err = _run(
        capsys, "verify", str(model), "--key", str(pub), "--signature", str(tmp_path / "none.sig")
    )
    assert rc == 2
    assert "none.sig" in err
    monkeypatch.delenv("LOOPWARDEN_KEY_PASSWORD")
    rc, _, err = _run(capsys, "sign", str(tmp_path / "no-such-model"), "--key", str(priv))
    assert rc == 2
    assert "no-such-model" in err


def test_unknown_predicate_type_is_exit_2(
    model: Path, key_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loopwarden.attest.keys import load_private

    priv, pub = key_files
    stmt = OmsStatement.build("m", [Resource("config.json", "sha256", "00" * 32)], Serialization())
    doc = stmt.to_json()
    doc["predicateType"] = "https://example.com/not-oms/v1"
    bundle = Bundle.sign(stmt, KeySigner(load_private(priv)))
    forged = Bundle(bundle.method, bundle.material, json.dumps(doc).encode(), bundle.payload_type, ())
    signer = KeySigner(load_private(priv))
    from loopwarden.attest.dsse import pae

    forged = Bundle(
        forged.method,
        forged.material,
        forged.payload,
        forged.payload_type,
        (signer.key.sign(pae(forged.payload_type, forged.payload)),),
    )
    (tmp_path / "p.sig").write_bytes(forged.to_bytes())
    rc, _, err = _run(capsys, "verify", str(model), "--key", str(pub), "--signature", str(tmp_path / "p.sig"))
    assert rc == 2
    assert "unknown predicate type" in err
    assert "not-oms" in err


def test_folder_changing_during_hashing_cli(
    model: Path,
    key_files: tuple[Path, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import loopwarden.signing.hashing as hashing

    priv, _ = key_files
    real = hashing._run

    def meddling(task, hash_type, progress):  # type: ignore[no-untyped-def]
        os.utime(model / "config.json", ns=(1, 1))  # mtime changes under the hasher
        return real(task, hash_type, progress)

    monkeypatch.setattr(hashing, "_run", meddling)
    rc, _, err = _run(capsys, "sign", str(model), "--key", str(priv))
    assert rc == 2
    assert "config.json" in err
    assert "changed while being hashed" in err
    assert not (model.parent / "model.sig").exists()
    assert not list(model.parent.glob(".model.sig.tmp*"))


def test_help_lists_both_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "sign" in text
    assert "verify" in text
    assert base64


def test_incremental_cli_uses_the_cache(
    model: Path,
    key_files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    priv, pub = key_files
    monkeypatch.chdir(tmp_path)  # no workspace here: the cache goes under XDG_CACHE_HOME
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _run(capsys, "sign", str(model), "--key", str(priv))[0] == 0
    assert list((tmp_path / "xdg" / "loopwarden" / "verify-cache").glob("*.cache"))
    rc, out, _ = _run(capsys, "verify", str(model), "--key", str(pub), "--incremental")
    assert rc == 0
    assert "4 file(s) unchanged since the last run" in out
    (model / "sub" / "tok.txt").write_text("HELLO")
    rc, out, _ = _run(capsys, "verify", str(model), "--key", str(pub), "--incremental")
    assert rc == 1
    assert "sub/tok.txt" in out


def test_verify_names_a_missing_model_before_its_signature(
    key_files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model path that does not exist is the error reported, not the default signature path derived from it."""
    _, pub = key_files
    rc, _, err = _run(capsys, "verify", str(tmp_path / "no-such-model"), "--key", str(pub))
    assert rc == 2
    assert "no-such-model" in err
    assert "no such file or folder" in err
    assert "signature file not found" not in err
