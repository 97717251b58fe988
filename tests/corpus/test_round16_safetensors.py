"""safetensors tensor entries with keys beyond dtype, shape and data_offsets.

The readers deserialize an entry into its three fields and ignore any other key (the real ``safetensors`` loads
such a file), so an extra key is no malformed header; a string under it is still analysed, as metadata is.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict


def _file(tmp_path: Path, extra: dict[str, Any]) -> Path:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], **extra}}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    return path


@pytest.mark.parametrize(
    "extra", [{"extra": 1}, {"note": "trained on c4"}, {"quant": {"group": 64, "bits": [4]}}]
)
def test_an_entry_with_an_extra_key_is_clean_and_loads(tmp_path: Path, extra: dict[str, Any]) -> None:
    path = _file(tmp_path, extra)
    result = scan_paths([str(path)], jobs=1).targets[0]
    assert result.verdict is Verdict.CLEAN and not result.findings, result
    np = pytest.importorskip("numpy")
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    loaded = safetensors_numpy.load(path.read_bytes())
    assert np.array_equal(loaded["w"], np.zeros(2, np.float32))


@pytest.mark.parametrize(
    "extra",
    [
        {"x": {"y": ["import os; os.system('id')"]}},
        {"hook": "__import__('subprocess').run(['id'])"},
    ],
)
def test_code_under_an_extra_key_is_reported(tmp_path: Path, extra: dict[str, Any]) -> None:
    result = scan_paths([str(_file(tmp_path, extra))], jobs=1).targets[0]
    assert any(
        f.rule_id == "LW-MODEL-047" and f.severity >= Severity.MEDIUM and "tensor entry field" in f.message
        for f in result.findings
    ), result


def test_an_entry_that_is_no_object_is_still_malformed(tmp_path: Path) -> None:
    header = json.dumps({"w": ["F32", [2], [0, 8]]}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    result = scan_paths([str(path)], jobs=1).targets[0]
    assert any(f.rule_id == "LW-MODEL-037" and "malformed entry" in f.message for f in result.findings), (
        result
    )
