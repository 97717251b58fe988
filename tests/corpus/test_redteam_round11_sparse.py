"""Round 11 of the internal red team: compressed sparse tensors whose parts disagree in shape.

torch.load (weights_only too) and torch.jit.load build CSR/CSC/BSR/BSC tensors with ``check_invariants=False``,
which checks none of the shapes ``torch._validate_sparse_compressed_tensor_args`` would: crow_indices with fewer
entries than the rows + 1, fewer values than col_indices, a BSR block column past the blocks of a row (but inside
the size), a size the block size does not divide, batch dimensions that differ. loopwarden checked the index values
only (against the size, in elements) and called each such file clean while to_dense(), a matmul or
to_sparse_coo().coalesce().to_dense() crashed torch 2.13 or read memory the tensor does not own.

COO tensors need nothing more: torch checks the shapes of their parts even without invariant checks.

Each case is built as bytes here and scanned. Where torch is installed, it runs each case in a child process with a
harmless effect only (a crash or an error of the child).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path
from typing import Any

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files
from test_redteam_round9_torch import _child, _int, _tuple, _u, assert_clean
from test_redteam_round10_torch import _HOOKS, _pid, _torchscript_archive, _torchscript_sparse, _v2

from loopwarden.domain import Verdict


def _contiguous(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, n = [], 1
    for d in reversed(shape):
        strides.append(n)
        n *= d
    return tuple(reversed(strides))


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _flat(values: list[Any]) -> list[int]:
    return [v for row in values for v in _flat(row)] if values and type(values[0]) is list else list(values)


def _shape_of(values: list[Any]) -> tuple[int, ...]:
    if values and type(values[0]) is list:
        return (len(values), *_shape_of(values[0]))
    return (len(values),)


def _parts(
    compressed: list[Any],
    plain: list[Any],
    values: tuple[int, ...],
    values_tensor: bytes | None = None,
    compressed_tensor: bytes | None = None,
) -> tuple[list[bytes], dict[str, bytes]]:
    """The three tensors (storage '0' compressed, '1' plain, both int64, '2' float32 values) and their records;
    ``values_tensor``/``compressed_tensor`` replace the values' or compressed indices' rebuild."""
    cshape, pshape = _shape_of(compressed), _shape_of(plain)
    cflat, pflat, vn = _flat(compressed), _flat(plain), _numel(values)
    tensors = [
        compressed_tensor or _v2("0", "LongStorage", len(cflat), cshape, _contiguous(cshape)),
        _v2("1", "LongStorage", len(pflat), pshape, _contiguous(pshape)),
        values_tensor or _v2("2", "FloatStorage", vn, values, _contiguous(values)),
    ]
    records = {
        "0": struct.pack(f"<{len(cflat)}q", *cflat),
        "1": struct.pack(f"<{len(pflat)}q", *pflat),
        "2": struct.pack(f"<{vn}f", *([1.0] * vn)),
    }
    return tensors, records


def _compressed(
    layout: str,
    size: tuple[int, ...],
    compressed: list[Any],
    plain: list[Any],
    values: tuple[int, ...],
    **tensors: bytes,
) -> bytes:
    """torch.save's archive of one ``torch.sparse_<layout>`` tensor of ``size`` made of the index lists given and
    float32 values of shape ``values`` (all ones)."""
    parts, records = _parts(compressed, plain, values, **tensors)
    kind = b"ctorch.serialization\n_get_layout\n" + _u(f"torch.sparse_{layout}") + b"\x85R"
    torch_size = b"ctorch\nSize\n" + _tuple(_tuple(*map(_int, size))) + b"R"
    pkl = b"\x80\x02ctorch._utils\n_rebuild_sparse_tensor\n" + kind + _tuple(*parts, torch_size) + b"\x86R."
    files = {"archive/data.pkl": pkl, "archive/byteorder": b"little", "archive/version": b"3\n"}
    files.update({f"archive/data/{k}": v for k, v in records.items()})
    return cp.zip_of(files, method=zipfile.ZIP_STORED)


def _ts_csr(size: tuple[int, ...], compressed: list[Any], plain: list[Any], values: tuple[int, ...]) -> bytes:
    """A TorchScript module with one CSR buffer ``s`` in torch.jit.save's spelling of the rebuild."""
    tensors, records = _parts(compressed, plain, values)
    return _torchscript_archive(_torchscript_sparse(2, tensors, size), records)


_COLS_1024 = list(range(4)) * 1024

# name: (layout, size, compressed, plain, values shape, what the child does after torch.load, crashes in 2.13)
_CASES = {
    # 1. compressed indices with another count than the (block) rows/columns + 1
    "csr-crow-short": ("csr", (4096, 4), [0, 1, 2], [0, 1], (2,), "mm"),
    "csr-crow-long": ("csr", (4, 4), [0, 1, 2, 2, 2, 2, 2, 2], [0, 1], (2,), None),
    "csc-ccol-short": ("csc", (4, 4), [0, 1, 2], [0, 1], (2,), None),
    "bsr-crow-counts-element-rows": ("bsr", (4, 4), [0, 1, 2, 2, 2], [0, 1], (2, 2, 2), None),
    "bsr-crow-short": ("bsr", (4096, 4), [0, 2], [0, 1], (2, 2, 2), "mm"),
    "bsc-ccol-short": ("bsc", (4, 4096), [0, 2], [0, 1], (2, 2, 2), "dense"),
    "batched-csr-batch-dims-differ": (
        "csr",
        (64, 4, 4),
        [[0, 1, 2, 2, 2]] * 2,
        [[0, 1]] * 2,
        (2, 2),
        "dense",
    ),
    "batched-csr-crow-short": ("csr", (2, 4096, 4), [[0, 1, 2]] * 2, [[0, 1]] * 2, (2, 2), "dense"),
    # 2. fewer values (blocks) than plain indices: the last compressed index (nnz) past the values
    "csr-few-values": ("csr", (4, 4), [0, 2, 2, 2, 2], [0, 1], (1,), "dense"),
    "csc-few-values": ("csc", (4, 4), [0, 2048, 4096, 4096, 4096], _COLS_1024, (1,), "dense"),
    "bsr-few-blocks": ("bsr", (4, 4), [0, 2048, 4096], list(range(2)) * 2048, (1, 2, 2), "dense"),
    "bsc-few-blocks": ("bsc", (4, 4), [0, 2048, 4096], list(range(2)) * 2048, (1, 2, 2), "dense"),
    "batched-csr-few-values": (
        "csr",
        (2, 4, 4),
        [[0, 2048, 4096, 4096, 4096]] * 2,
        [_COLS_1024] * 2,
        (2, 1),
        "dense",
    ),
    # 3. BSR/BSC: a block index past the blocks (inside the size in elements); a size the blocks do not divide
    "bsr-block-column-past-blocks": ("bsr", (4, 4), [0, 1, 2], [0, 3], (2, 2, 2), "coo"),
    "bsc-block-row-past-blocks": ("bsc", (4, 4), [0, 1, 2], [0, 3], (2, 2, 2), "dense"),
    "bsr-size-not-divisible": ("bsr", (5, 4), [0, 1, 2], [0, 1], (2, 2, 2), "dense"),
    # the rest of torch's shape invariants
    "hybrid-dense-dims-differ": ("csr", (4, 4, 4096), [0, 1, 2, 2, 2], [0, 1], (2, 1), "dense"),
    "size-one-dimensional": ("csr", (4,), [0, 1, 2, 2, 2], [0, 1], (2,), None),
    "values-without-block-dims": ("bsr", (4, 4), [0, 1, 2], [0, 1], (2,), None),
    "index-dims-differ": ("csr", (4, 4), [0, 1, 2, 2, 2], [[0, 1]], (2,), None),
}

_ACTIONS = {
    "dense": "t.to_dense()",
    "mm": "t @ torch.ones(t.shape[-1], 3)",
    "coo": "t.to_sparse_coo().coalesce().to_dense()",
}


def _file(case: str) -> bytes:
    layout, size, compressed, plain, values, _ = _CASES[case]
    return _compressed(layout, size, compressed, plain, values)


@pytest.mark.parametrize("case", sorted(_CASES))
def test_compressed_parts_whose_shapes_disagree_are_reported(tmp_path: Path, case: str) -> None:
    """Each was called clean (every index value lay inside the size) while torch 2.13 crashed or read memory it
    does not own on torch.load and to_dense(), a matmul or to_sparse_coo().coalesce().to_dense()."""
    results = scan_files(tmp_path, {"model.pt": _file(case)})
    assert_caught(results, "LW-MODEL-017")


def test_shape_findings_name_the_invariant_and_the_numbers(tmp_path: Path) -> None:
    messages = {
        case: " ".join(f.message for f in scan_files(tmp_path / case, {"model.pt": _file(case)})[0].findings)
        for case in (
            "csr-crow-short",
            "csr-few-values",
            "bsr-block-column-past-blocks",
            "bsr-size-not-divisible",
        )
    }
    assert "crow_indices has 3 entries, not 4097 for 4096 rows" in messages["csr-crow-short"]
    assert "col_indices has 2 entries (nnz) but values hold 1 values" in messages["csr-few-values"]
    assert "outside [0, 2)" in messages["bsr-block-column-past-blocks"]  # 2 block columns, not 4 columns
    assert "not divisible by the block size 2 x 2" in messages["bsr-size-not-divisible"]


def test_compressed_indices_past_the_nnz_every_part_agrees_on_are_reported(tmp_path: Path) -> None:
    """crow_indices [0, 3, 3, 3, 3] over 3 column indices and 2 values: the nnz is 2, and crow 3 is past it."""
    results = scan_files(tmp_path, {"model.pt": _compressed("csr", (4, 4), [0, 3, 3, 3, 3], [0, 1, 2], (2,))})
    assert_caught(results, "LW-MODEL-017")
    assert any("outside [0, 3)" in f.message for f in results[0].findings), results[0].findings


def test_torchscript_csr_whose_shapes_disagree_is_reported(tmp_path: Path) -> None:
    bad = _ts_csr((4, 4), [0, 2, 2, 2, 2], [0, 1], (1,))
    assert_caught(scan_files(tmp_path / "b", {"model.pt": bad}), "LW-MODEL-017")
    assert_clean(scan_files(tmp_path / "g", {"model.pt": _ts_csr((4, 4), [0, 2, 2, 2, 2], [0, 1], (2,))}))


_AGREEING = {
    "csr": ("csr", (4, 4), [0, 1, 2, 2, 2], [0, 1], (2,)),
    "csc": ("csc", (4, 3), [0, 1, 2, 2], [0, 3], (2,)),
    "bsr-2x2": ("bsr", (4, 6), [0, 1, 2], [2, 0], (2, 2, 2)),
    "bsc-2x1": ("bsc", (4, 3), [0, 1, 1, 2], [1, 0], (2, 2, 1)),
    "batched-csr": ("csr", (2, 4, 4), [[0, 1, 2, 2, 2], [0, 0, 0, 1, 2]], [[0, 1], [2, 3]], (2, 2)),
    "two-batch-dims": ("csr", (2, 1, 3, 4), [[[0, 1, 1, 2]]] * 2, [[[3, 0]]] * 2, (2, 1, 2)),
    "hybrid": ("csr", (4, 4, 3), [0, 1, 2, 2, 2], [0, 1], (2, 3)),
    "empty": ("csr", (4, 4), [0, 0, 0, 0, 0], [], (0,)),
    "no-rows": ("bsr", (0, 4), [0], [], (0, 2, 2)),
}


@pytest.mark.parametrize("case", sorted(_AGREEING))
def test_compressed_parts_that_agree_stay_clean(tmp_path: Path, case: str) -> None:
    assert_clean(scan_files(tmp_path, {"model.pt": _compressed(*_AGREEING[case])}))


_VALUES_UNREADABLE = {
    # torch.Size(tuple([2])): the values' size computed at load time (weights_only=False)
    "computed-size": b"ctorch._utils\n_rebuild_tensor_v2\n("
    + _pid("2", "FloatStorage", 2)
    + _int(0)
    + b"ctorch\nSize\ncbuiltins\ntuple\n]"
    + _int(2)
    + b"a\x85R\x85R"
    + _tuple(_int(1))
    + b"\x89"
    + _HOOKS
    + b"tR",
    # values converted from another tensor at load time
    "converted": b"ctorch._utils\n_rebuild_device_tensor_from_cpu_tensor\n("
    + _v2("2", "FloatStorage", 2, (2,), (1,))
    + b"ctorch\nfloat32\n"
    + _u("cpu")
    + b"\x89tR",
}


@pytest.mark.parametrize("case", sorted(_VALUES_UNREADABLE))
def test_values_whose_sizes_cannot_be_read_back_are_unverified(tmp_path: Path, case: str) -> None:
    """The shapes cannot be compared without the values' sizes: unverified, never clean."""
    good = _compressed("csr", (4, 4), [0, 1, 2, 2, 2], [0, 1], (2,), values_tensor=_VALUES_UNREADABLE[case])
    t = scan_files(tmp_path, {"model.pt": good})[0]
    assert t.verdict is Verdict.UNVERIFIED, t
    assert "not checked" in (t.reason or ""), t


def test_batched_indices_whose_batch_dims_cannot_be_read_in_order_are_unverified(tmp_path: Path) -> None:
    """crow_indices (2, 2, 4) whose batch strides are swapped: not read as rows in order, so unverified."""
    crow = _v2("0", "LongStorage", 16, (2, 2, 4), (4, 8, 1))
    good = _compressed(
        "csr", (2, 2, 3, 4), [[[0, 1, 1, 2]] * 2] * 2, [[[3, 0]]] * 2, (2, 2, 2), compressed_tensor=crow
    )
    t = scan_files(tmp_path, {"model.pt": good})[0]
    assert t.verdict is Verdict.UNVERIFIED, t
    assert "batch dimensions" in (t.reason or ""), t


def test_batched_indices_past_the_size_are_reported(tmp_path: Path) -> None:
    """Two batch dimensions: the index tensors are 3-D, which loopwarden skipped; a column past the size in the
    second batch is found now."""
    bad = _compressed("csr", (2, 1, 3, 4), [[[0, 1, 1, 2]]] * 2, [[[3, 0]], [[3, 1 << 33]]], (2, 1, 2))
    assert_caught(scan_files(tmp_path, {"model.pt": bad}), "LW-MODEL-017")


# --- real torch -------------------------------------------------------------------------------------------------

_LOAD = """
import sys, warnings, torch
warnings.simplefilter("ignore")
t = torch.load(sys.argv[1])
for _ in range(50):  # a write past the buffer is found by the allocator a few calls later (abort)
    r = {action}
print(float(r.float().sum()))
"""


@pytest.mark.parametrize("case", sorted(c for c, v in _CASES.items() if v[5]))
def test_compressed_shapes_under_real_torch(tmp_path: Path, case: str) -> None:
    """A default torch.load and the sparse kernels crash (or, at least, fail) on each case in a child process."""
    pytest.importorskip("torch")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(_file(case))
    ran = _child(_LOAD.format(action=_ACTIONS[_CASES[case][5]]), str(bad), cwd=tmp_path / "run")
    assert ran.returncode != 0, ran.stdout


def test_torchscript_csr_under_real_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(_ts_csr((4, 4), [0, 2048, 4096, 4096, 4096], _COLS_1024, (1,)))
    assert_caught(scan_files(tmp_path / "s", {"model.pt": bad.read_bytes()}), "LW-MODEL-017")
    ran = _child(
        "import sys, torch\ntorch.jit.load(sys.argv[1]).s.to_dense()\n", str(bad), cwd=tmp_path / "run"
    )
    assert ran.returncode != 0, ran.stdout


_SAVE_VALID = """
import sys, warnings, torch
warnings.simplefilter("ignore")
d = torch.arange(1.0, 25.0).reshape(4, 6)
d[d % 3 == 0] = 0
b = torch.stack([d, d.flip(0)])
h = torch.zeros(4, 6, 3)
h[1, 2] = 1.0
h[3, 0] = 2.0
m = torch.zeros(4, 6)
m[0:2, 2:4] = 1.0
tensors = {
    "coo": d.to_sparse(),
    "coo-hybrid": h.to_sparse(2),
    "csr": d.to_sparse_csr(),
    "csc": d.to_sparse_csc(),
    "bsr": m.to_sparse_bsr((2, 2)),
    "bsc": m.to_sparse_bsc((2, 2)),
    "bsr-2x3": d.to_sparse_bsr((2, 3)),
    "batched-csr": b.to_sparse_csr(),
    "batched-bsr": b.to_sparse_bsr((2, 2)),
    "hybrid-csr": h.to_sparse_csr(dense_dim=1),
    "hybrid-bsc": torch.zeros(4, 6, 2).to_sparse_bsc((2, 3), dense_dim=1),
    "empty-csr": torch.zeros(4, 6).to_sparse_csr(),
    "empty-bsr": torch.zeros(4, 6).to_sparse_bsr((2, 2)),
    "int32-csr": torch.sparse_csr_tensor(
        torch.tensor([0, 1, 2], dtype=torch.int32), torch.tensor([1, 0], dtype=torch.int32), torch.ones(2), (2, 2)
    ),
}
torch.save(tensors, sys.argv[1])
for k, v in torch.load(sys.argv[1]).items():
    assert torch.equal(v.to_dense(), tensors[k].to_dense()), k
"""


def test_valid_sparse_tensors_of_every_layout_stay_clean(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    good = tmp_path / "good.pt"
    made = _child(_SAVE_VALID, str(good), cwd=tmp_path / "make")
    assert made.returncode == 0, made.stderr
    assert_clean(scan_files(tmp_path / "scan", {"model.pt": good.read_bytes()}))
