"""Tampering with a signed model folder or its signature: every case fails verification and names the path.

The classes of attack follow the OpenSSF Model Signing threat model
(https://github.com/ossf/model-signing-spec, spec/v1.0.md sections 6.1-6.2 and 8.4): changed, added, removed
or renamed files; symbolic links swapped in; resource names that leave the folder (path traversal, CWE-22);
signatures by another key; signatures edited after signing; ignore lists that would hide files.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopwarden.attest.dsse import pae
from loopwarden.attest.keys import PrivateKey, generate
from loopwarden.signing import KeySigner, KeyTrust, sign, verify

KEY = generate("ecdsa-p256")


def _model(tmp: Path) -> Path:
    m = tmp / "model"
    (m / "sub").mkdir(parents=True)
    (m / "weights.bin").write_bytes(os.urandom(70_000))
    (m / "config.json").write_text('{"a": 1}')
    (m / "sub" / "vocab.txt").write_text("a\nb\nc\n")
    return m


def _resign(sig: Path, edit: Callable[[dict[str, Any]], None], key: PrivateKey = KEY) -> None:
    """Decode the payload, edit it, and sign it again with ``key``: only the path checks can catch what
    follows."""
    bundle = json.loads(sig.read_bytes())
    env = bundle["dsseEnvelope"]
    stmt = json.loads(base64.b64decode(env["payload"]))
    edit(stmt)
    payload = json.dumps(stmt).encode()
    env["payload"] = base64.b64encode(payload).decode()
    env["signatures"] = [
        {"sig": base64.b64encode(key.sign(pae(env["payloadType"], payload))).decode(), "keyid": ""}
    ]
    sig.write_text(json.dumps(bundle))


def _signed(tmp_path: Path, **kw: Any) -> tuple[Path, Path]:
    m = _model(tmp_path)
    res = sign(m, KeySigner(KEY), **kw)
    return m, res.signature


def _failures(m: Path, sig: Path, key: PrivateKey = KEY) -> list[tuple[str, str, str]]:
    out = verify(m, KeyTrust(key.public()), signature=sig)
    assert not out.verified
    return [(f.rule_id, f.message, f.location.path + (f.location.member or "")) for f in out.result.findings]


def _named(fails: list[tuple[str, str, str]], rule: str, name: str) -> bool:
    return any(r == rule and name in msg and name in loc for r, msg, loc in fails)


def test_modified_byte(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    data = bytearray((m / "weights.bin").read_bytes())
    data[12345] ^= 1
    (m / "weights.bin").write_bytes(bytes(data))
    assert _named(_failures(m, sig), "LW-SIGN-012", "weights.bin")


def test_appended_byte(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    with open(m / "sub" / "vocab.txt", "ab") as fh:
        fh.write(b"\n")
    assert _named(_failures(m, sig), "LW-SIGN-012", "sub/vocab.txt")


def test_truncated_file(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    os.truncate(m / "weights.bin", 69_999)
    assert _named(_failures(m, sig), "LW-SIGN-012", "weights.bin")


@pytest.mark.parametrize("shard", [None, 16_384])
def test_truncated_file_shards(tmp_path: Path, shard: int | None) -> None:
    m, sig = _signed(tmp_path, shard_size=shard)
    os.truncate(m / "weights.bin", 16_384)  # whole shards dropped: the remaining shards still match
    assert _named(_failures(m, sig), "LW-SIGN-012", "weights.bin")


def test_renamed_file(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    (m / "config.json").rename(m / "config.json.bak")
    fails = _failures(m, sig)
    assert _named(fails, "LW-SIGN-010", "config.json")
    assert _named(fails, "LW-SIGN-011", "config.json.bak")


def test_added_file(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    (m / "sub" / "payload.pkl").write_bytes(b"\x80\x04K\x01.")
    assert _named(_failures(m, sig), "LW-SIGN-011", "sub/payload.pkl")


def test_added_file_in_a_nested_git_folder_is_not_ignored(tmp_path: Path) -> None:
    """Default exclusions apply only at the top level (OMS 6.2.1)."""
    m, sig = _signed(tmp_path)
    (m / "sub" / ".git").mkdir()
    (m / "sub" / ".git" / "hook").write_text("x")
    assert _named(_failures(m, sig), "LW-SIGN-011", "sub/.git/hook")


def test_removed_file(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    (m / "sub" / "vocab.txt").unlink()
    assert _named(_failures(m, sig), "LW-SIGN-010", "sub/vocab.txt")


def test_symlink_swapped_in(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    outside = tmp_path / "elsewhere.json"
    outside.write_bytes((m / "config.json").read_bytes())  # same bytes: only the link itself is wrong
    (m / "config.json").unlink()
    (m / "config.json").symlink_to(outside)
    fails = _failures(m, sig)
    assert _named(fails, "LW-SIGN-013", "config.json")
    assert not any(r == "LW-SIGN-010" for r, _, _ in fails)


def test_symlink_escape_when_links_are_allowed(tmp_path: Path) -> None:
    m = _model(tmp_path)
    res = sign(m, KeySigner(KEY), allow_symlinks=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("s")
    (m / "sub" / "link").symlink_to(secret)
    assert _named(_failures(m, res.signature), "LW-SIGN-014", "sub/link")


@pytest.mark.parametrize("bad", ["../outside.bin", "/etc/passwd", "sub/../../x", "./config.json", "a//b"])
def test_resource_name_leaving_the_folder(tmp_path: Path, bad: str) -> None:
    m, sig = _signed(tmp_path)
    (tmp_path / "outside.bin").write_bytes(b"o")

    def add(stmt: dict[str, Any]) -> None:
        stmt["predicate"]["resources"].append({"name": bad, "algorithm": "sha256", "digest": "ab" * 32})

    _resign(sig, add)
    assert _named(_failures(m, sig), "LW-SIGN-002", bad)


def test_shard_name_leaving_the_folder(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path, shard_size=100_000)

    def add(stmt: dict[str, Any]) -> None:
        stmt["predicate"]["resources"].append(
            {"name": "../w.bin:0:10", "algorithm": "sha256", "digest": "ab" * 32}
        )

    _resign(sig, add)
    assert _named(_failures(m, sig), "LW-SIGN-002", "../w.bin:0:10")


def test_signature_by_another_key(tmp_path: Path) -> None:
    m = _model(tmp_path)
    other = generate("ecdsa-p256")
    res = sign(m, KeySigner(other))
    fails = _failures(m, res.signature, key=KEY)
    assert fails[0][0] == "LW-SIGN-001"
    assert "another key" in fails[0][1]
    assert str(res.signature) in fails[0][2]


def test_signature_by_another_key_with_our_hint(tmp_path: Path) -> None:
    """The hint is only a hint: a bundle claiming our key's hint still needs our key's signature."""
    m, sig = _signed(tmp_path)
    _resign(sig, lambda s: None, key=generate("ecdsa-p256"))
    fails = _failures(m, sig)
    assert fails[0][0] == "LW-SIGN-001"
    assert "does not verify" in fails[0][1]
    assert str(sig) in fails[0][2]


def test_signature_file_edited_after_signing(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    bundle = json.loads(sig.read_bytes())
    stmt = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    stmt["predicate"]["resources"] = [r for r in stmt["predicate"]["resources"] if r["name"] != "weights.bin"]
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    sig.write_text(json.dumps(bundle))
    fails = _failures(m, sig)
    assert fails[0][0] == "LW-SIGN-001"
    assert str(sig) in fails[0][2]


def test_ignore_list_in_the_signature_is_reported(tmp_path: Path) -> None:
    """A signer (or a stolen key) that ignores a folder cannot hide what is in it from the report."""
    m, sig = _signed(tmp_path)
    (m / "sub" / "backdoor.py").write_text("import os")

    def hide(stmt: dict[str, Any]) -> None:
        stmt["predicate"]["serialization"]["ignore_paths"] = ["sub"]
        stmt["predicate"]["resources"] = [
            r for r in stmt["predicate"]["resources"] if not r["name"].startswith("sub/")
        ]
        # keep the subject digest consistent so that only the ignore list is at play
        import hashlib

        cat = b"".join(bytes.fromhex(r["digest"]) for r in stmt["predicate"]["resources"])
        stmt["subject"][0]["digest"]["sha256"] = hashlib.sha256(cat).hexdigest()

    _resign(sig, hide)
    out = verify(m, KeyTrust(KEY.public()), signature=sig)
    shown = {f.message.split(":")[0] for f in out.result.findings if f.rule_id == "LW-SIGN-020"}
    assert shown == {"sub/backdoor.py", "sub/vocab.txt"}


@pytest.mark.parametrize("entry", ["..", "/", "../model", "*"])
def test_ignore_entries_outside_the_folder_hide_nothing(tmp_path: Path, entry: str) -> None:
    m, sig = _signed(tmp_path)
    (m / "extra.bin").write_bytes(b"x")
    _resign(sig, lambda s: s["predicate"]["serialization"].__setitem__("ignore_paths", [entry]))
    assert _named(_failures(m, sig), "LW-SIGN-011", "extra.bin")


def test_subject_digest_must_match_resources(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path)
    _resign(sig, lambda s: s["subject"][0]["digest"].__setitem__("sha256", "00" * 32))
    assert any(r == "LW-SIGN-003" for r, _, _ in _failures(m, sig))


def test_shards_that_do_not_tile(tmp_path: Path) -> None:
    m, sig = _signed(tmp_path, shard_size=16_384)

    def drop_middle(stmt: dict[str, Any]) -> None:
        stmt["predicate"]["resources"] = [
            r for r in stmt["predicate"]["resources"] if r["name"] != "weights.bin:16384:32768"
        ]

    _resign(sig, drop_middle)
    fails = _failures(m, sig)
    assert _named(fails, "LW-SIGN-003", "weights.bin")
