"""Round 9 of the internal red team, PyTorch formats (second pass): torch's legacy (pre-1.6, non-zip) format.

torch.load reads a legacy file as five pickles (magic number, protocol version, sys_info, the main pickle, the list
of storage keys) and then fills each listed storage from the bytes that follow. Sparse tensors are rebuilt there as
unchecked as in a zip checkpoint, but their index values live in those trailing bytes, which loopwarden did not
read: a file whose sparse indices leave the tensor was called clean while ``coalesce().to_dense()`` crashed torch.

Each case is built as bytes here and scanned. Where cheap, real torch (if installed) runs the case in a child
process with a harmless effect only (a crash of the child).
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import pytest
import test_redteam_round9_torch as r9t
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files
from test_redteam_round9_torch import _child, _int, _tuple, _u, assert_clean

from loopwarden.domain import Verdict


def _tensor(
    key: str, storage: str, numel: int, size: tuple[int, ...], stride: tuple[int, ...], view: bytes = b"N"
) -> bytes:
    """``_rebuild_tensor_v2`` over a legacy persistent id ``('storage', type, key, location, numel, view)``."""
    return r9t._tensor(key, storage, numel, size, stride, view)


def _sparse_main(dense: int, nnz: int, index_numel: int | None = None, view: bytes = b"N") -> bytes:
    """The main pickle of a 1-D sparse COO tensor of ``dense`` elements: indices (1 x nnz, int64) over storage
    '0', values (float32) over storage '1'."""
    layout = b"ctorch.serialization\n_get_layout\n" + _u("torch.sparse_coo") + b"\x85R"
    size = b"ctorch\nSize\n" + _tuple(_tuple(_int(dense))) + b"R"
    data = _tuple(
        _tensor("0", "LongStorage", index_numel or nnz, (1, nnz), (nnz, 1), view),
        _tensor("1", "FloatStorage", nnz, (nnz,), (1,)),
        size,
        b"\x89",
    )
    return b"\x80\x02ctorch._utils\n_rebuild_sparse_tensor\n" + layout + data + b"\x86R."


def _legacy(main: bytes, keys: list[str], records: list[tuple[int, bytes]]) -> bytes:
    """A legacy torch file: the three header pickles, ``main``, the storage-key list, then each record (an int64
    element count and the elements) in the order of ``keys``."""
    sys_info = {
        "protocol_version": 1001,
        "little_endian": True,
        "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    out = pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
    out += pickle.dumps(sys_info, protocol=2) + main + pickle.dumps(keys, protocol=2)
    return out + b"".join(struct.pack("<q", n) + raw for n, raw in records)


def _sparse_legacy(indices: list[int], keys: tuple[str, ...] = ("0", "1")) -> bytes:
    nnz = len(indices)
    records = {
        "0": (nnz, struct.pack(f"<{nnz}q", *indices)),
        "1": (nnz, struct.pack(f"<{nnz}f", *([1.0] * nnz))),
    }
    return _legacy(_sparse_main(4, nnz), list(keys), [records[k] for k in keys])


def _index_listed_twice() -> bytes:
    """The index storage listed twice: torch fills it twice, the second (bad) bytes win."""
    good, bad = struct.pack("<2q", 0, 1), struct.pack("<2q", 0, 1 << 40)
    return _legacy(_sparse_main(4, 2), ["0", "1", "0"], [(2, good), (2, struct.pack("<2f", 1, 1)), (2, bad)])


def _index_in_a_view() -> bytes:
    """The index tensor over a legacy storage view (elements 2..3 of a 4-element root storage): its offset 0 is
    the root's element 2, where the bad index is."""
    view = _tuple(_u("v0"), _int(2), _int(2))
    root = struct.pack("<4q", 0, 1, 0, 1 << 40)
    return _legacy(
        _sparse_main(4, 2, index_numel=4, view=view), ["0", "1"], [(4, root), (2, struct.pack("<2f", 1, 1))]
    )


_CASES = {
    "far": lambda: _sparse_legacy([0, 1 << 40]),
    "negative": lambda: _sparse_legacy([0, -(1 << 40)]),
    "one-past": lambda: _sparse_legacy([3, 4]),
    "never-filled": lambda: _sparse_legacy([0, 1], keys=("1",)),
    "listed-twice": _index_listed_twice,
    "view": _index_in_a_view,
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_legacy_sparse_indices_outside_the_tensor_are_reported(tmp_path: Path, case: str) -> None:
    """torch.load (weights_only=True) of a legacy file rebuilds sparse tensors unchecked (invariant checks are off
    by default) and fills their index storages from the bytes after the pickles; an index past the size crashed
    torch 2.13 in ``coalesce().to_dense()`` (SIGSEGV) while loopwarden called the file clean. An index storage the
    key list never fills keeps whatever the allocator's memory held (real torch: pointer-like values, SIGSEGV)."""
    assert_caught(scan_files(tmp_path, {"model.pt": _CASES[case]()}), "LW-MODEL-017")


def test_legacy_sparse_indices_inside_the_tensor_stay_clean(tmp_path: Path) -> None:
    assert_clean(scan_files(tmp_path, {"model.pt": _sparse_legacy([0, 1, 3])}))


def test_legacy_storage_key_list_that_is_not_plain_is_unverified(tmp_path: Path) -> None:
    """A key list built by anything but list and string opcodes is not walked: the indices stay unchecked."""
    data = _sparse_legacy([0, 1])
    keys = pickle.dumps(["0", "1"], protocol=2)
    odd = b"\x80\x02cbuiltins\nlist\n(X\x01\x00\x000X\x01\x00\x001t\x85R."
    assert data.count(keys) == 1
    results = scan_files(tmp_path, {"model.pt": data.replace(keys, odd)})
    assert results[0].verdict is not Verdict.CLEAN, results[0]


def test_legacy_huge_declared_index_storage_is_not_allocated(tmp_path: Path) -> None:
    """Index values are read from the file as a view; the declared element count allocates nothing."""
    import tracemalloc

    data = _legacy(_sparse_main(4, (1 << 31) - 1), ["0", "1"], [(2, struct.pack("<2q", 0, 1))])
    tracemalloc.start()
    try:
        scan_files(tmp_path, {"model.pt": data})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, peak


_LEGACY_SAVE = """
import sys, torch
t = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
q = torch.quantize_per_tensor(torch.rand(4, 4), 0.1, 10, torch.quint8)
qc = torch.quantize_per_channel(torch.rand(3, 4), torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0, 1, 2]), 0,
                                torch.qint8)
torch.save({"coo": t.to_sparse(), "coo_hybrid": torch.ones(2, 2, 3).to_sparse(2), "csr": t.to_sparse_csr(),
            "csc": t.to_sparse_csc(), "bsr": torch.ones(4, 4).to_sparse_bsr((2, 2)), "dense": t,
            "view": torch.arange(10.0)[2:5], "q": q, "qc": qc, "shared": [t, t.T, t[1]],
            "lin": torch.nn.Linear(3, 2).state_dict()}, sys.argv[1], _use_new_zipfile_serialization=False)
bad = torch.sparse_coo_tensor(torch.tensor([[0, 1], [0, 1]]), torch.tensor([1.0, 2.0]), (2, 2),
                              check_invariants=False)
bad._indices()[0, 1] = 1 << 34
torch.save({"t": bad}, sys.argv[2], _use_new_zipfile_serialization=False)
"""


def test_legacy_files_under_real_torch(tmp_path: Path) -> None:
    """torch.save(..., _use_new_zipfile_serialization=False) of ordinary, shared, quantized and sparse tensors
    stays clean; a COO index past the size crashes real torch after a default (weights_only) torch.load and is
    reported."""
    pytest.importorskip("torch")
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    made = _child(_LEGACY_SAVE, str(good), str(bad), cwd=tmp_path / "make")
    assert made.returncode == 0, made.stderr
    ran = _child(
        "import sys, torch\ntorch.load(sys.argv[1])['t'].coalesce().to_dense()\n", str(bad), cwd=tmp_path
    )
    assert ran.returncode != 0  # SIGSEGV (or an allocator abort): memory outside the tensor was written
    for name in ("far", "listed-twice", "view"):  # the others depend on what lies past the buffer
        path = tmp_path / "case.pt"
        path.write_bytes(_CASES[name]())
        ran = _child(
            "import sys, torch\ntorch.load(sys.argv[1]).coalesce().to_dense()\n", str(path), cwd=tmp_path
        )
        assert ran.returncode != 0
    assert_clean(scan_files(tmp_path / "g", {"model.pt": good.read_bytes()}))
    assert_caught(scan_files(tmp_path / "b", {"model.pt": bad.read_bytes()}), "LW-MODEL-017")
