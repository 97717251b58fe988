"""Round 17: torch loaders, legacy formats and the pickle VM against the real unpicklers.

* torch's legacy tar checkpoint (members ``sys_info``, ``storages``, ``tensors``, ``pickle``): ``torch.load``
  (``weights_only=False``) reads ``storages`` as a pickle of the count, then per storage a pickle and the raw
  storage bytes, then a pickle of the storage views, and ``tensors`` likewise with each tensor's geometry after its
  pickle. A pickle after raw bytes that opens with no PROTO and no GLOBAL (``SHORT_BINUNICODE`` strings and
  ``STACK_GLOBAL``) was not found by the search for hidden pickles, so the file was clean while torch.load ran
  it. The members are now walked as torch reads them and every pickle is analysed at its own offset.
"""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from loopwarden.domain import Severity


def _scan(path: Path) -> tuple[str, list[tuple[str, Severity]]]:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(path)], jobs=1)
    (target,) = report.targets
    return str(target.verdict), [(f.rule_id, f.severity) for f in target.findings]


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _headless_call(command: str) -> bytes:
    """``os.system(command)`` as a pickle with no PROTO and no GLOBAL: strings and STACK_GLOBAL only."""
    return _s("posix") + _s("system") + b"\x93" + _s(command) + b"\x85R."


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _storage_class() -> bytes:
    """``(0, "cpu", torch.FloatStorage)`` as torch.save's legacy writer pickled a storage's header."""
    return b"\x80\x02K\x00X\x03\x00\x00\x00cpuctorch\nFloatStorage\nq\x00\x87q\x01."


def _legacy_tar(where: str, payload: bytes) -> bytes:
    """A legacy tar checkpoint with ``payload`` as the pickle torch reads after raw bytes of ``where``."""
    views = payload if where == "storages" else pickle.dumps([], protocol=2)
    storages = pickle.dumps(1, protocol=2) + _storage_class() + struct.pack("<q", 4) + b"\0" * 16 + views
    if where == "tensors":
        geometry = (
            struct.pack("<ii", 1, 0) + struct.pack("<q", 4) + struct.pack("<q", 1) + struct.pack("<q", 0)
        )
        tensors = pickle.dumps(2, protocol=2) + pickle.dumps((1, 0, None), protocol=2) + geometry + payload
    else:
        tensors = pickle.dumps(0, protocol=2)
    return _tar(
        {
            "sys_info": pickle.dumps({"little_endian": True}, protocol=2),
            "storages": storages,
            "tensors": tensors,
            "pickle": pickle.dumps({"a": 1}, protocol=2),
        }
    )


@pytest.mark.parametrize("where", ["storages", "tensors"])
def test_legacy_tar_pickle_after_raw_bytes_is_analysed(tmp_path: Path, where: str) -> None:
    path = tmp_path / "model.pth"
    path.write_bytes(_legacy_tar(where, _headless_call("true")))
    verdict, findings = _scan(path)
    assert ("LW-MODEL-001", Severity.CRITICAL) in findings, (verdict, findings)


@pytest.mark.parametrize("where", ["storages", "tensors"])
def test_legacy_tar_hidden_pickle_runs_in_torch_load(tmp_path: Path, where: str) -> None:
    """The real loader runs the pickle (a marker file in the temporary folder)."""
    pytest.importorskip("torch")
    marker = tmp_path / "ran"
    path = tmp_path / "model.pth"
    path.write_bytes(_legacy_tar(where, _headless_call(f"touch {marker}")))
    code = "import sys, torch\ntry:\n    torch.load(sys.argv[1], weights_only=False)\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code, str(path)], check=False, timeout=120, capture_output=True)
    assert marker.exists()


def test_legacy_tar_walk_fails_closed_on_an_unknown_storage_class(tmp_path: Path) -> None:
    """A storage header whose class is no typed storage of torch: the walk cannot know how many bytes follow."""
    odd = b"\x80\x02K\x00X\x03\x00\x00\x00cpuctorch\nUntypedStorage\nq\x00\x87q\x01."
    storages = pickle.dumps(1, protocol=2) + odd + struct.pack("<q", 0) + pickle.dumps([], protocol=2)
    path = tmp_path / "model.pth"
    members = {
        "storages": storages,
        "tensors": pickle.dumps(0, protocol=2),
        "pickle": pickle.dumps(1, protocol=2),
    }
    path.write_bytes(_tar(members))
    verdict, _ = _scan(path)
    assert verdict != "clean"
