"""Round 17: torch loaders, legacy formats and the pickle VM against the real unpicklers.

* torch's legacy tar checkpoint (members ``sys_info``, ``storages``, ``tensors``, ``pickle``): ``torch.load``
  (``weights_only=False``) reads ``storages`` as a pickle of the count, then per storage a pickle and the raw
  storage bytes, then a pickle of the storage views, and ``tensors`` likewise with each tensor's geometry after its
  pickle. A pickle after raw bytes that opens with no PROTO and no GLOBAL (``SHORT_BINUNICODE`` strings and
  ``STACK_GLOBAL``) was not found by the search for hidden pickles, so the file was clean while torch.load ran
  it. The members are now walked as torch reads them and every pickle is analysed at its own offset.
* TorchScript code that chooses a sparse tensor's indices outside ``__setstate__`` (in ``forward``): a sparse
  constructor with constant indices, an in-place change of a sparse tensor's index tensor (``torch.add_`` on
  ``torch._indices(t)``, ``t._indices().add_``, ``idx += n``, ``idx[0] = n``, a view of it filled),
  ``sparse_resize_``. torch.jit.load loaded each module and calling it segfaulted torch 2.13; the scanner said
  clean (it judged sparse constructors only in ``__setstate__``). A constructor fed the function's own parameters
  as indices and sizes (a graph network's adjacency from its input) is reported MEDIUM, not HIGH: its caller may be
  the user, or the archive's own code (a parent module calling it with constants).
* joblib: a ``NumpyArrayWrapper`` of an object array whose state allows mmap (joblib never writes that).
  ``joblib.load(mmap_mode="r")`` maps it whatever its dtype: the file's bytes become object pointers (a segfault
  on access) and the outer pickle resumes after the mapped bytes, inside what the scanner read as the nested
  pickle's data: opcodes hidden there ran (a marker file) while the file was clean. Now reported critical.
* ``torch.load(mmap=True)`` slices the mapped file at a record's data offset whatever its compression: a deflated
  sparse index record gives the tensor its raw compressed bytes as indices (past the size; weights_only too),
  while the scanner checked the inflated, valid values. torch.save never compresses records; a compressed sparse
  index record is now reported (LW-MODEL-017 high). (No crash was shown from those particular bytes.)
"""

from __future__ import annotations

import io
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

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


# ------------------------------------------------- TorchScript code that builds or moves sparse indices when it runs


_BODIES = {
    "constructor": "    t = torch.sparse_coo_tensor(torch.tensor([[100000000]]), torch.tensor([1.]), [2])\n"
    "    return torch.to_dense(t)\n",
    "ops-unsafe": "    t = ops.aten._sparse_coo_tensor_unsafe(torch.tensor([[100000000]]), torch.tensor([1.]), [2])\n"
    "    return torch.to_dense(t)\n",
    "inplace-op": "    t = torch.to_sparse(torch.eye(2))\n    _0 = torch.add_(torch._indices(t), 100000000)\n"
    "    return torch.to_dense(t)\n",
    "method": "    t = torch.to_sparse(torch.eye(2))\n    t._indices().add_(100000000)\n    return t.to_dense()\n",
    "augmented": "    t = torch.to_sparse(torch.eye(2))\n    idx = torch._indices(t)\n    idx += 100000000\n"
    "    return torch.to_dense(t)\n",
    "item": "    t = torch.to_sparse(torch.eye(2))\n    idx = t._indices()\n    idx[0] = 100000000\n"
    "    return t.to_dense()\n",
    "view": "    t = torch.to_sparse(torch.eye(2))\n    row = torch.select(torch._indices(t), 0, 0)\n"
    "    _0 = torch.fill_(row, 100000000)\n    return torch.to_dense(t)\n",
    "caller-indices-own-size": "    t = torch.sparse_coo_tensor(x, torch.ones([torch.size(x, 1)]), [1, 1])\n"
    "    return torch.to_dense(t)\n",
    "caller-indices-moved": "    _0 = torch.add_(x, 100000000)\n"
    "    t = torch.sparse_coo_tensor(x, torch.ones([torch.size(x, 1)]), [torch.size(x, 0), torch.size(x, 0)])\n"
    "    return torch.to_dense(t)\n",
    "helper": "    t = torch.to_sparse(torch.eye(2))\n    _0 = self.bump(torch._indices(t))\n"
    "    return torch.to_dense(t)\n"
    "  def bump(self: __torch__.M, i: Tensor) -> Tensor:\n    return torch.add_(i, 100000000)\n",
    "resize": "    t = torch.to_sparse(torch.eye(2))\n    _0 = torch.sparse_resize_(t, [1, 1], 2, 0)\n"
    "    return torch.to_dense(t)\n",
}


def _scripted(body: str) -> bytes:
    """A module saved by torch.jit.save whose forward's source is replaced by ``body`` (torch.jit.load compiles
    the archive's source, so any TorchScript is possible there)."""
    torch = pytest.importorskip("torch")
    import zipfile

    class M(torch.nn.Module):  # type: ignore[misc]
        def forward(self, x: Any) -> Any:
            return x

    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(M()), buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if "/code/" in info.filename and info.filename.endswith(".debug_pkl"):
                continue
            if "/code/" in info.filename and info.filename.endswith(".py"):
                text = data.decode()
                data = (text[: text.index("    return x")] + body).encode()
            z.writestr(info.filename, data)
    return out.getvalue()


@pytest.mark.parametrize("case", sorted(_BODIES))
def test_torchscript_forward_choosing_sparse_indices_is_reported(tmp_path: Path, case: str) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_scripted(_BODIES[case]))
    _, findings = _scan(path)
    assert ("LW-MODEL-031", Severity.HIGH) in findings, findings


@pytest.mark.parametrize("case", ["constructor", "method", "augmented", "item", "helper"])
def test_torchscript_forward_sparse_indices_crash_the_loaded_module(tmp_path: Path, case: str) -> None:
    """torch.jit.load loads each module; calling it crashes the process (out-of-range sparse indices)."""
    path = tmp_path / "model.pt"
    path.write_bytes(_scripted(_BODIES[case]))
    code = (
        "import sys, torch\nm = torch.jit.load(sys.argv[1])\nprint('loaded', flush=True)\nm(torch.eye(2))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=False, timeout=120, capture_output=True
    )
    assert b"loaded" in res.stdout
    assert res.returncode < 0, res  # killed by a signal (SIGSEGV)


@pytest.mark.parametrize(
    "body",
    [
        "    t = torch.to_sparse(x)\n    i = torch._indices(t)\n"
        "    return torch.index_select(x, 0, torch.select(i, 0, 0))\n",
        "    t = torch.to_sparse(x)\n    v = torch._values(t)\n    _0 = torch.mul_(v, 2.)\n"
        "    return torch.to_dense(t)\n",
        "    y = torch.relu_(x)\n    indices = torch.argmax(y, 0)\n    indices += 1\n    return indices\n",
        # the module's own method named indices, its result changed by another method
        "    i = self.indices(x)\n    return self.use(i)\n"
        "  def indices(self: __torch__.M, x: Tensor) -> Tensor:\n    return torch.argmax(x, 0)\n"
        "  def use(self: __torch__.M, i: Tensor) -> Tensor:\n    return torch.add_(i, 1)\n",
    ],
)
def test_torchscript_reading_sparse_indices_stays_clean(tmp_path: Path, body: str) -> None:
    """Reading the indices, changing the values, a variable that merely has the name ``indices``, and the module's
    own method of that name."""
    path = tmp_path / "model.pt"
    path.write_bytes(_scripted(body))
    verdict, findings = _scan(path)
    assert verdict == "clean", findings


@pytest.mark.parametrize(
    "body",
    [
        "    _0 = torch.ones([torch.size(x, 1)])\n    _1 = [torch.size(x, 0), torch.size(x, 0)]\n"
        "    a = torch.sparse_coo_tensor(x, _0, _1)\n    return torch._sparse_mm(a, x)\n",
        "    a = torch.sparse_coo_tensor(x, torch.ones([torch.size(x, 1)]))\n    return torch.to_dense(a)\n",
    ],
)
def test_torchscript_sparse_tensor_from_parameters_is_medium(tmp_path: Path, body: str) -> None:
    """A graph network's adjacency built from its own input: reported, at MEDIUM (the function's caller chooses
    the indices, and a parent module's code may be that caller)."""
    path = tmp_path / "model.pt"
    path.write_bytes(_scripted(body))
    _, findings = _scan(path)
    assert ("LW-MODEL-031", Severity.MEDIUM) in findings, findings
    assert ("LW-MODEL-031", Severity.HIGH) not in findings, findings


# ------------------------------------------------------------- joblib: an object array that allows memory mapping


def _object_mmap_joblib(tmp_path: Path, command: str) -> bytes:
    """joblib's dump of a one-item float array, made an object array that allows mmap (joblib never writes that):
    read as joblib.load does by default, the array is a nested pickle (bytes holding hidden opcodes); with
    ``mmap_mode`` joblib maps eight bytes as an object pointer and resumes the outer pickle inside those bytes."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    plain = tmp_path / "plain.joblib"
    joblib.dump(np.zeros(1), plain)
    data = plain.read_bytes()
    head = data[: data.rindex(b"ub") + 2]
    for old, new in (
        (b"\x8c\x02f8", b"\x8c\x02O8"),
        (b"\x8c\x01<", b"\x8c\x01|"),
        (b"K\x00t\x94b", b"K\x3ft\x94b"),
    ):
        assert head.count(old) == 1
        head = head.replace(old, new)
    assert b"allow_mmap\x94\x88" in head
    hidden = b"0" + _headless_call(command)  # POP the mapped array, then os.system
    # mmap path: the padding byte is the nested pickle's PROTO (0x80 = 128 bytes skipped), then 8 bytes mapped
    body = b"A" * (137 - 4) + hidden
    return head + b"\x80\x04C" + bytes([len(body)]) + body + b".."


def test_joblib_object_array_allowing_mmap_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    path.write_bytes(_object_mmap_joblib(tmp_path, "true"))
    _, findings = _scan(path)
    assert ("LW-MODEL-017", Severity.CRITICAL) in findings, findings


def test_joblib_object_array_allowing_mmap_runs_code_with_mmap_mode(tmp_path: Path) -> None:
    """The real loader: joblib.load(mmap_mode="r") runs the opcodes hidden in the nested pickle's bytes."""
    marker = tmp_path / "ran"
    path = tmp_path / "model.joblib"
    path.write_bytes(_object_mmap_joblib(tmp_path, f"touch {marker}"))
    code = (
        "import sys, joblib\ntry:\n    joblib.load(sys.argv[1], mmap_mode='r')\nexcept Exception:\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=False, timeout=120, capture_output=True)
    assert marker.exists()


def test_joblib_object_arrays_as_joblib_writes_them_stay_clean(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    path = tmp_path / "model.joblib"
    joblib.dump({"o": np.array([1, "a", None], dtype=object), "f": np.arange(6.0).reshape(2, 3)}, path)
    verdict, findings = _scan(path)
    assert verdict == "clean", findings


# ----------------------------------------------------- torch.load(mmap=True) and a compressed sparse index record


def _compressed_index_record() -> bytes:
    """torch.save's archive of a valid sparse COO tensor, re-zipped with its index record deflated."""
    torch = pytest.importorskip("torch")
    import zipfile

    t = torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.tensor([1.0, 2.0]), (2,))
    buf = io.BytesIO()
    torch.save({"s": t}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            method = zipfile.ZIP_DEFLATED if info.filename.endswith("/data/0") else zipfile.ZIP_STORED
            z.writestr(info.filename, src.read(info.filename), compress_type=method)
    return out.getvalue()


def test_compressed_sparse_index_record_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_compressed_index_record())
    _, findings = _scan(path)
    assert ("LW-MODEL-017", Severity.HIGH) in findings, findings


def test_mmap_load_takes_the_compressed_bytes_as_indices(tmp_path: Path) -> None:
    """The real loader: torch.load(mmap=True, weights_only=True) gives the sparse tensor indices past its size (the
    compressed bytes), where the default load gives the valid ones the scanner checked."""
    pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    path.write_bytes(_compressed_index_record())
    code = (
        "import sys, torch\n"
        "d = torch.load(sys.argv[1], mmap=True, weights_only=True)['s']\n"
        "print(int(d._indices().max()) >= d.size(0))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=False, timeout=120, capture_output=True
    )
    assert res.stdout.strip() == b"True", res
