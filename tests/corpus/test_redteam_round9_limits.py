"""Round 9 of the internal red team: places where the analysis stops reading, truncates, caps or skips, with a
payload put just beyond that point. A check that cannot look must fail closed (``unverified``, the bound named),
never report the file clean.

Each case is built as bytes here and only scanned; where a loader's behaviour is the point, the loader itself (the
standard library's ``tarfile``) reads the case in memory, and nothing it finds is ever run.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tarfile
from pathlib import Path
from typing import Any

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

_PROGRAM = "import os\nos.system('echo loopwarden-corpus')\n"
_PADDING = "#" + "x" * 70_000 + "\n"  # a comment past the 64 KiB the code check parses whole


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf_metadata(key: str, value: str) -> bytes:
    return cp.gguf_file(
        None, extra_kv=_gguf_string(key) + struct.pack("<I", 8) + _gguf_string(value), n_kv_extra=1
    )


def _onnx_metadata(key: str, value: str) -> bytes:
    entry = cp._field(1, key.encode()) + cp._field(2, value.encode())
    return cp.onnx_model() + cp._field(14, entry)


def _safetensors_metadata(key: str, value: str) -> bytes:
    header = {"__metadata__": {key: value}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    return cp.safetensors_file(header, b"\x00" * 4)


_METADATA = {
    "safetensors": ("m.safetensors", _safetensors_metadata),
    "gguf": ("m.gguf", _gguf_metadata),
    "onnx": ("m.onnx", _onnx_metadata),
}

# ------------------------------------------------------------------ metadata code past the 64 KiB parse bound


@pytest.mark.parametrize("fmt", sorted(_METADATA))
def test_metadata_program_past_the_parse_bound_is_not_clean(tmp_path: Path, fmt: str) -> None:
    """LW-MODEL-047 parsed metadata strings up to 64 KiB and skipped longer ones unread: a comment of 70,000
    characters in front of ``os.system`` made the program clean in safetensors, GGUF and ONNX metadata."""
    name, build = _METADATA[fmt]
    short = scan_files(tmp_path / "short", {name: build("init", _PROGRAM)})
    assert_caught(short, "LW-MODEL-047", at_least=Severity.MEDIUM)
    long = scan_files(tmp_path / "long", {name: build("init", _PADDING + _PROGRAM)})[0]
    assert long.verdict is Verdict.UNVERIFIED, long
    assert "longer than the 65536 characters" in (long.reason or ""), long.reason


@pytest.mark.parametrize("fmt", sorted(_METADATA))
@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"vocab": {f"tok{i}": i for i in range(8000)}, "merges": ["os . system", "eval ("]}),
        "A model card. " * 6000 + "Do not call os.system(cmd) on input you don't trust.",
        _PADDING + "x = torch.float16\nprint(len(config))\n",
    ],
    ids=["json-with-names-in-strings", "prose", "program-without-primitives"],
)
def test_long_benign_metadata_stays_clean(tmp_path: Path, fmt: str, text: str) -> None:
    name, build = _METADATA[fmt]
    assert len(text) > 1 << 16
    t = scan_files(tmp_path, {name: build("notes", text)})[0]
    assert t.verdict is Verdict.CLEAN, t


def test_gguf_metadata_string_past_the_kept_bound_is_unverified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GGUF string longer than the 16 MiB read into memory was skipped unjudged."""
    from loopwarden.checks.models import gguf

    small = 1 << 17
    monkeypatch.setattr(gguf, "_MAX_KEEP", small)  # the bound, made small enough for a test file
    t = scan_files(tmp_path, {"m.gguf": _gguf_metadata("init", _PROGRAM + "#" * small)})[0]
    assert t.verdict is Verdict.UNVERIFIED, t
    assert "more than the 131072 bytes read" in (t.reason or ""), t.reason


# ------------------------------------------------------------------------- tar members after the end blocks


def _tar(files: dict[str, bytes]) -> bytes:
    return cp.tar_of(files, mode="w:")


@pytest.mark.parametrize("zeros", [0, 2 << 20], ids=["right-after", "after-2MiB-of-zeros"])
def test_tar_members_after_the_end_blocks_are_analysed(tmp_path: Path, zeros: int) -> None:
    """Bytes after a tar's end were searched for non-zero data within their first MiB only: 2 MiB of zero blocks
    and then a second tar made the file clean, while ``tarfile.open(ignore_zeros=True)`` (``tar -i``) reads on
    and extracts the payload member."""
    data = _tar({"a.txt": b"hello"}) + b"\x00" * zeros + _tar({"evil.pkl": cp.evil_pickle()})
    with tarfile.open(fileobj=io.BytesIO(data), ignore_zeros=True) as t:
        assert "evil.pkl" in t.getnames()  # what a reader that skips zero blocks finds
    results = scan_files(tmp_path, {"m.tar": data})
    assert_caught(results, "LW-MODEL-001")
    assert "LW-MODEL-024" in {f.rule_id for f in results[0].findings}


def test_tar_member_behind_junk_blocks_is_analysed(tmp_path: Path) -> None:
    """``ignore_zeros`` also skips blocks that are no valid header: the member after them is read."""
    data = _tar({"a.txt": b"hello"}) + b"\x01" * 1024 + _tar({"evil.pkl": cp.evil_pickle()})
    with tarfile.open(fileobj=io.BytesIO(data), ignore_zeros=True) as t:
        assert "evil.pkl" in t.getnames()
    assert_caught(scan_files(tmp_path, {"m.tar": data}), "LW-MODEL-001")


def test_tar_with_only_zero_blocks_after_its_end_stays_clean(tmp_path: Path) -> None:
    data = _tar({"a.txt": b"hello"}) + b"\x00" * (3 << 20)
    assert scan_files(tmp_path, {"m.tar": data})[0].verdict is Verdict.CLEAN


# ------------------------------------------------------------------------------- names past the alias bound


def _linked_config(folder: Path, links: int) -> Any:
    """``a.txt`` holding a Hydra config, ``links`` other names linking to it, then a ``config.yaml`` link (the name
    that makes the bytes a config); the one target the scan gives for the file."""
    (folder / "a.txt").write_text("_target_: os.system\ncommand: echo loopwarden-corpus\n")
    for i in range(links):
        os.symlink("a.txt", folder / f"b{i:02}.txt")
    os.symlink("a.txt", folder / "z_config.yaml")
    (t,) = scan_paths([str(folder)], jobs=1).targets
    return t


def test_file_with_more_names_than_judged_is_unverified(tmp_path: Path) -> None:
    """A file is judged under each name that links to it (a ``.yaml`` name makes it a Hydra config), up to 16
    aliases: the 17th and later were dropped silently, so a link named ``config.yaml`` behind 17 others left a
    ``_target_: os.system`` config clean."""
    t = _linked_config(tmp_path, 17)
    assert t.verdict is Verdict.UNVERIFIED, t
    assert "max_aliases" in (t.reason or ""), t.reason


def test_file_under_a_few_names_is_judged_under_each(tmp_path: Path) -> None:
    assert _linked_config(tmp_path, 3).verdict is Verdict.FINDINGS


# ------------------------------------------------------------------ remote code references past the listed 32


def test_remote_code_of_another_repository_is_reported_behind_many_local_references(tmp_path: Path) -> None:
    """Only the first 32 distinct ``auto_map`` references were reported: 32 local modules (medium) in front of one
    in another repository (high) left the file at medium, so ``--fail-on high`` passed it."""
    auto: dict[str, object] = {f"AutoModel{i}": f"modeling_x.M{i}" for i in range(40)}
    auto["AutoTokenizer"] = "evil/repo--tok.Tok"
    (t,) = scan_files(tmp_path, {"config.json": json.dumps({"auto_map": auto}).encode()})
    assert t.max_severity() is Severity.HIGH, t.findings
    assert any("evil/repo--tok.Tok" in f.message for f in t.findings)
    assert any("more code reference" in f.message for f in t.findings)


def test_external_data_file_with_another_reason_stays_unverified() -> None:
    """A file a model names as external data is cleared only when every reason it is unverified is a misreading of
    its bytes (no model format): a bound hit or a read error besides that reason keeps it unverified."""
    from loopwarden.checks.interface import Limits
    from loopwarden.checks.models._base import ScanContext
    from loopwarden.checks.models.dispatch import NOT_A_MODEL
    from loopwarden.checks.models.scanner import Target, _resolve_external_data
    from loopwarden.domain import ArtifactKind, Location, TargetResult

    only = ScanContext("a.bin", Limits(), None)
    only.fail(Location("a.bin"), f"data file: {NOT_A_MODEL}", misread=True)
    mixed = ScanContext("b.bin", Limits(), None)
    mixed.fail(Location("b.bin"), "resource limit 'max_seconds' reached")
    mixed.fail(Location("b.bin"), f"data file: {NOT_A_MODEL}", misread=True)
    assert only.only_misread and not mixed.only_misread
    targets = [Target("a.bin", "/m/a.bin", None, 10), Target("b.bin", "/m/b.bin", None, 10)]
    results = [
        TargetResult.from_findings(
            "a.bin", ArtifactKind.MODEL, (), unverified_reason="; ".join(only.unverified)
        ),
        TargetResult.from_findings(
            "b.bin", ArtifactKind.MODEL, (), unverified_reason="; ".join(mixed.unverified)
        ),
    ]
    misread = {c.path for c in (only, mixed) if c.only_misread}
    out = {
        r.path: r.verdict for r in _resolve_external_data(results, targets, {"/m/a.bin", "/m/b.bin"}, misread)
    }
    assert out == {"a.bin": Verdict.CLEAN, "b.bin": Verdict.UNVERIFIED}
