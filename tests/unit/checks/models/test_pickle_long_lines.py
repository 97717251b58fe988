"""Protocol-0 string lines longer than the 64 KiB the pickle VM keeps.

CPython reads a STRING or UNICODE line whole, whatever its length: a protocol-0 pickle that embeds a model as text
(pyvi's CRF tagger keeps one of several MiB) loads. The VM used to stop at such a line as a malformed pickle (a bound
of its own, reported as a fault of the file); it now reads through the line keeping its first bytes. What follows
the line is analysed as before, and a line that may hold a stored pickle is never taken as plain data."""

from __future__ import annotations

import base64
import pickle
import random
from pathlib import Path

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

_PAYLOAD = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."


def _text(n: int) -> str:
    rng = random.Random(n)
    return "".join(rng.choice("abcdefgh ijklm\t\u00e9") for _ in range(n))


def _scan(tmp_path: Path, name: str, data: bytes):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_bytes(data)
    (target,) = scan_paths([str(path)], jobs=1).targets
    return target


def test_long_protocol_0_strings_are_data(tmp_path: Path) -> None:
    big = _text(3 << 20)
    cases = {
        "unicode.pkl": pickle.dumps({"model": big, "n": 1}, protocol=0),
        "bytes.pkl": pickle.dumps({"blob": big.encode("utf-8")}, protocol=0),
        "py2_string.pkl": b"(dp0\nS'crf'\np1\nS'" + big.encode("ascii", "replace") + b"'\np2\ns.",
    }
    for name, data in cases.items():
        assert pickle.loads(data)  # the real unpickler reads the long line
        target = _scan(tmp_path, name, data)
        assert target.verdict is Verdict.CLEAN, (name, target.reason, target.findings)
        assert not target.findings


def test_a_call_after_a_long_line_is_still_found(tmp_path: Path) -> None:
    data = pickle.dumps([_text(1 << 20)], protocol=0)[:-1] + b"0cos\nsystem\n(S'id'\ntR."
    target = _scan(tmp_path, "after.pkl", data)
    assert any(f.rule_id == "LW-MODEL-001" and f.severity is Severity.CRITICAL for f in target.findings)


def test_a_long_line_cut_short_or_unquoted_is_malformed(tmp_path: Path) -> None:
    cut = _scan(tmp_path, "cut.pkl", pickle.dumps(_text(1 << 20), protocol=0)[:-5])
    assert cut.verdict is Verdict.UNVERIFIED
    assert "truncated inside a text line" in (cut.reason or "")
    unquoted = _scan(tmp_path, "unquoted.pkl", b"S'" + b"a b " * (1 << 18) + b"\n.")
    assert unquoted.verdict is not Verdict.CLEAN
    assert any(f.rule_id == "LW-MODEL-012" for f in unquoted.findings)


def test_a_long_line_that_may_hold_a_stored_pickle_is_not_clean(tmp_path: Path) -> None:
    for name, value in (
        ("latin.pkl", (_PAYLOAD + b"\x00" * (1 << 20)).decode("latin-1")),
        ("b64.pkl", base64.b64encode(_PAYLOAD + b"\x00" * (1 << 20)).decode()),
    ):
        target = _scan(tmp_path, name, pickle.dumps({"x": value}, protocol=0))
        assert target.verdict is not Verdict.CLEAN, name
