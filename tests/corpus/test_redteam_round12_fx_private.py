"""Red-team round 12: torch's private names in the code of a torch.fx GraphModule.

torch.load re-traces a GraphModule's ``forward`` after ``exec``-ing it, and every call whose arguments are not
traced values really runs: ``torch._from_blob(address, ...)`` makes a tensor over any address,
``torch.UntypedStorage._free_weak_ref(address)`` frees one, ``t.untyped_storage()._set_cdata(address)`` points a
real buffer's storage anywhere. The fx check refused torch names by words (load, file, compile ...), so these passed
as code torch.fx writes and the file was clean; each segfaults torch 2.13 (three confirmed below in child processes,
one through the real torch.load). A private torch name is now admitted only where it is an aten operator
(``torch._unique2``, ``torch._C._nn.gelu``, ``torch.ops.aten._to_copy``), and a private attribute of a value only
where it is a tensor operator (``x._values()``) or an entry fx made under ``self`` (``self._tensor_constant0``).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from test_redteam_round11_fx import _LOAD, _buffered_parts, _Edited, _forward_edit, _parts, _saved, _scan

from loopwarden.checks.models.fx import judge_fx_code
from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

_ADDRESS = 0x41414141

_EDITS: dict[str, str] = {
    # raw memory through torch's private functions and classes' private methods
    "from-blob": f"_m = torch._from_blob({_ADDRESS}, [64], dtype=torch.uint8).sum()",
    "from-blob-through-variable-functions": f"_m = torch._C._VariableFunctions._from_blob({_ADDRESS}, [64])",
    "free-weak-ref": f"_m = torch.UntypedStorage._free_weak_ref({_ADDRESS})",
    "typed-storage-free-weak-ref": f"_m = torch.FloatStorage._free_weak_ref({_ADDRESS})",
    "new-with-weak-ptr": f"_m = torch.UntypedStorage._new_with_weak_ptr({_ADDRESS})",
    "storage-from-data-pointer": f"_m = torch._C._construct_storage_from_data_pointer({_ADDRESS}, x.device, 64)",
    "storage-set-cdata-on-a-new-tensor": f"_m = torch.zeros(4).untyped_storage()._set_cdata({_ADDRESS})",
    "storage-set-cdata-on-the-buffer": f"_m = self.scale.untyped_storage()._set_cdata({_ADDRESS})",
    "getattr-set-cdata": f"_m = getattr(self.scale.untyped_storage(), '_set_cdata')({_ADDRESS})",
    "local-storage-set-cdata": f"_s = torch.zeros(4).untyped_storage(); _m = _s._set_cdata({_ADDRESS})",
    "resize-with-address": f"_m = torch.zeros(4).untyped_storage()._resize_with_addr_({_ADDRESS})",
    "shared-fd-storage": "_m = torch.UntypedStorage._new_shared_fd_cpu(3, 64)",
    "make-subclass-of-the-buffer": "_m = torch.Tensor._make_subclass(torch.Tensor, self.scale)",
    "buffer-make-subclass": "_m = self.scale._make_subclass(torch.Tensor, x)",
    # operators that skip their bounds checks, views over given offsets
    "unsafe-index": "_m = torch._unsafe_index(self.scale, [torch.tensor([100000])])",
    "unsafe-index-put": "_m = torch._unsafe_index_put(self.scale, [torch.tensor([100000])], self.scale)",
    "variable-functions-unsafe-index": "_m = torch._C._VariableFunctions._unsafe_index(self.scale, [x])",
    "vf-unsafe-index": "_m = torch._VF._unsafe_index(self.scale, [x])",
    "nested-view-from-buffer": "_m = torch._nested_view_from_buffer(self.scale, x, x, x)",
    "aten-unsafe-index-op": "_m = torch.ops.aten._unsafe_index.Tensor(self.scale, [x])",
    "sparse-coo-out-of-range": (
        "_m = torch.sparse_coo_tensor(torch.tensor([[100000000]]), torch.tensor([1.0]), (2,)).to_dense()"
    ),
    "sparse-csr-out-of-range": (
        "_m = torch.sparse_csr_tensor(torch.tensor([0, 1]), torch.tensor([100000000]), torch.ones(1), (1, 2))"
    ),
    "sparse-compressed": "_m = torch.sparse_compressed_tensor(x, x, x, (1, 2), layout=torch.sparse_csr)",
    # native libraries and interpreter machinery under private names
    "preload-cuda-lib": "_m = torch._preload_cuda_lib('.', 'libevil.so')",
    "torch-c-internal": "_m = torch._C._set_print_stack_traces_on_fatal_signal(False)",
    "torch-private-module": "_m = torch._ops.ops.aten.add(x, 1)",
    "torch-utils-internal": "_m = torch._utils_internal.get_file_path('x')",
    "ops-class-attribute": "_m = torch.ops._dir",
    # the process's global state, changed for everything computed after the load
    "default-dtype": "_m = torch.set_default_dtype(torch.float16)",
    "manual-seed": "_m = torch.manual_seed(0)",
    "random-rng-state": "_m = torch.random.set_rng_state(torch.zeros(5056, dtype=torch.uint8))",
    "deterministic": "_m = torch.use_deterministic_algorithms(True)",
    "num-threads": "_m = torch.set_num_threads(1)",
    "jit-fork": "_m = torch.fork(self.lin, x)",
    # private methods that run a function they are given
    "module-private-apply": "_m = self.lin._apply(torch.zeros_like)",
    "module-named-members": "_m = self.lin._named_members(torch.zeros_like)",
    "private-method-of-a-value": "_m = x._fix_weakref()",
}


def _edited(statement: str) -> bytes:
    body, imp = _buffered_parts()
    body["_code"] = _forward_edit(body["_code"], statement)
    return pickle.dumps(_Edited(body, imp), protocol=2)


@pytest.mark.parametrize("case", sorted(_EDITS))
def test_private_torch_names_in_fx_code_are_critical(case: str) -> None:
    import ast

    body, imp = _buffered_parts()
    ast.parse(imp + _forward_edit(body["_code"], _EDITS[case]))  # valid Python: refused for what it names
    result = analyze_pickle_bytes(_edited(_EDITS[case]))
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings


_CRASHES = {
    "sparse-coo-to-dense": (
        "import torch; torch.sparse_coo_tensor(torch.tensor([[100000000]]), torch.tensor([1.0]), (2,)).to_dense()"
    ),
    "from-blob": f"import torch; torch._from_blob({_ADDRESS}, [64], dtype=torch.uint8).sum()",
    "free-weak-ref": f"import torch; torch.UntypedStorage._free_weak_ref({_ADDRESS})",
    "set-cdata": f"import torch; t = torch.zeros(4); t.untyped_storage()._set_cdata({_ADDRESS}); t.sum()",
}


@pytest.mark.parametrize("case", sorted(_CRASHES))
def test_the_primitives_reach_raw_memory_in_torch(case: str) -> None:
    """What each primitive does in torch itself: the process dies on the address the code chose."""
    run = subprocess.run(
        [sys.executable, "-c", _CRASHES[case]], capture_output=True, timeout=300, check=False
    )
    assert run.returncode < 0 or run.returncode > 128, (run.returncode, run.stderr[-500:])


def test_the_real_loader_runs_the_primitive(tmp_path: Path) -> None:
    """torch.load of the GraphModule dies in the re-trace, on the storage pointer the file chose."""
    path = tmp_path / "model.pt"
    path.write_bytes(_edited(_EDITS["storage-set-cdata-on-the-buffer"]))
    assert any(sev is Severity.CRITICAL for _, sev, _ in _scan(path))
    run = subprocess.run(
        [sys.executable, "-c", _LOAD, str(path)], capture_output=True, timeout=300, check=False
    )
    assert run.returncode < 0 or run.returncode > 128, (run.returncode, run.stderr[-500:])


# --- what torch.fx itself writes stays clean ------------------------------------------------------------------


class _Functional(nn.Module):
    """Functions fx names through torch._C's operator namespaces (F.gelu is torch._C._nn.gelu, F.pad
    torch._C._nn.pad ...), private aten operators and torch._assert."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)
        self.register_buffer("_mask", torch.ones(2, 8))

    def forward(self, x):
        h = F.gelu(self.proj(x))
        q = h.view(2, 1, 2, 4)
        a = F.scaled_dot_product_attention(q, q, q)
        p = F.pad(a, (1, 1))
        up = F.interpolate(p.reshape(2, 1, 2, 6), scale_factor=2.0, mode="bilinear", align_corners=False)
        loss = F.cross_entropy(h, torch.zeros(2, dtype=torch.long))
        torch._assert(h.shape[0] == 2, "batch")
        s = torch.fft.rfft(h).abs() + torch.linalg.vector_norm(h, dim=-1, keepdim=True)
        return up.sum() + loss + s.sum() + (h * self._mask).sum() + F.softplus(h).sum()


def test_functional_graph_module_is_clean(tmp_path: Path) -> None:
    traced = torch.fx.symbolic_trace(_Functional())
    assert "torch._C._nn" in traced.code  # the namespaces the check admits appear in what fx writes
    path = tmp_path / "functional.pt"
    _saved(path, traced)
    assert _scan(path) == []


def test_private_names_fx_makes_under_self_are_admitted() -> None:
    """fx names a tensor constant self._tensor_constant0 and a private submodule self._orig_mod; private aten
    operators and tensor operators are operators."""
    code = (
        "def forward(self, x):\n"
        "    c = self._tensor_constant0 + 1\n"
        "    u = torch._unique2(x)\n"
        "    v = x._values()\n"
        "    w = torch.ops.aten._to_copy.default(x)\n"
        "    g = torch._C._nn.gelu(x)\n"
        "    return self._orig_mod(c)\n"
    )
    assert judge_fx_code("import torch\n", code, lambda m, n: False)[0] is None


def test_the_mlp_graph_module_stays_clean() -> None:
    body, imp = _parts()
    result = analyze_pickle_bytes(pickle.dumps(_Edited(body, imp), protocol=2))
    assert not result.findings, result.findings


# --- the same primitives named by a pickle or by shipped torch.package source ------------------------------------

_PICKLED = [
    ("torch", "_from_blob"),
    ("torch._C._VariableFunctions", "_from_blob"),
    ("torch", "UntypedStorage._free_weak_ref"),
    ("torch.storage", "UntypedStorage._new_with_weak_ptr"),
    ("torch", "FloatStorage._free_weak_ref"),
    ("torch", "_preload_cuda_lib"),
    ("torch", "_load_global_deps"),
    ("torch", "_import_dotted_name"),
]


@pytest.mark.parametrize(("module", "name"), _PICKLED)
def test_a_pickle_calling_a_memory_or_library_primitive_is_critical(module: str, name: str) -> None:
    data = b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"J\x41\x41\x41\x41\x85R."
    result = analyze_pickle_bytes(data)
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings


_SOURCES = {
    "from-blob": "import torch\nt = torch._from_blob(1094795585, [8])\n",
    "set-cdata-on-a-value": "import torch\ntorch.zeros(4).untyped_storage()._set_cdata(1094795585)\n",
    "free-weak-ref-through-an-alias": "import torch\ns = torch.UntypedStorage\ns._free_weak_ref(1094795585)\n",
    "getattr-set-cdata": "import torch\nf = getattr(torch.zeros(1).untyped_storage(), '_set_cdata')\n",
    "from-import": "from torch import _from_blob as fb\nfb(1, [2])\n",
    "in-setstate": (
        "import torch\nclass M(torch.nn.Module):\n    def __setstate__(self, st):\n"
        "        self.w = torch._C._VariableFunctions._from_blob(st['a'], [8])\n"
    ),
}


@pytest.mark.parametrize("case", sorted(_SOURCES))
def test_shipped_source_reaching_raw_memory_is_critical(case: str) -> None:
    from loopwarden.checks.models.pysource import judge_source

    hits = judge_source(
        _SOURCES[case], "m", is_package=False, shipped=frozenset(), extern=frozenset({"torch"})
    )
    assert hits and hits[0].severity is Severity.CRITICAL, [h.describe() for h in hits]


# --- a TorchScript archive's __setstate__, which torch.jit.load runs ----------------------------------------------

_SCRIPTED = """
import sys
from typing import Tuple
import torch
from torch import Tensor


class M(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.x = torch.zeros(2)

    @torch.jit.export
    def __getstate__(self) -> Tuple[Tensor, bool]:
        return (self.x, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[Tensor, bool]) -> None:
        self.x = torch.sparse_coo_tensor(torch.tensor([[100000000]]), torch.tensor([1.0]), (2,)).to_dense()
        self.training = state[1]

    def forward(self, x: Tensor) -> Tensor:
        return x + self.x


torch.jit.save(torch.jit.script(M()), sys.argv[1])
"""


def test_torchscript_setstate_building_a_sparse_tensor_is_critical(tmp_path: Path) -> None:
    """torch.jit.load runs the archive's compiled __setstate__; a sparse tensor with a constant index past its size,
    made dense there, writes outside the buffer (the load segfaults). It was HIGH-free before: TorchScript code was
    judged for file, process and import names only."""
    path = tmp_path / "scripted.pt"
    script = tmp_path / "make_scripted.py"  # torch.jit.script reads the class's source from its file
    script.write_text(_SCRIPTED)
    made = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr[-2000:]
    findings = _scan(path)
    assert any(sev is Severity.CRITICAL and "sparse" in msg for _, sev, msg in findings), findings
    run = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", "import sys, torch; torch.jit.load(sys.argv[1])", str(path)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert run.returncode < 0 or run.returncode > 128, (run.returncode, run.stderr[-500:])


# --- storage names TorchScript writes for the newer dtypes ----------------------------------------------------------

_SCRIPTED_DTYPES = """
import sys
import torch


class M(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for i, d in enumerate([torch.uint16, torch.uint32, torch.uint64, torch.float8_e4m3fn, torch.float8_e5m2,
                               torch.complex32, torch.bits16, torch.uint4, torch.int4]):
            self.register_buffer(f"b{i}", torch.zeros(3, dtype=d))

    def forward(self, x):
        return x


torch.jit.save(torch.jit.script(M()), sys.argv[1])
"""


def _scripted_dtypes(tmp_path: Path) -> Path:
    path = tmp_path / "dtypes.pt"
    script = tmp_path / "make_dtypes.py"
    script.write_text(_SCRIPTED_DTYPES)
    made = subprocess.run(
        [sys.executable, str(script), str(path)], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr[-2000:]
    return path


def test_torchscript_storages_of_newer_dtypes_are_clean(tmp_path: Path) -> None:
    """torch.jit.save names a uint16 buffer's storage torch.UInt16Storage (float8: torch.Float8_e4m3fnStorage ...),
    names Python's torch does not have and TorchScript's C++ unpickler reads as the dtype: they were LW-MODEL-005."""
    assert _scan(_scripted_dtypes(tmp_path)) == []


def test_a_storage_of_a_newer_dtype_longer_than_its_record_is_reported(tmp_path: Path) -> None:
    import zipfile

    path = _scripted_dtypes(tmp_path)
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("/data.pkl"):
                mark = b"UInt16Storage\nq"
                at = data.index(mark)
                numel = data.index(b"K\x03t", at)  # the storage's element count, 3: now 60,000
                data = data[:numel] + b"M\x60\xeat" + data[numel + 3 :]
            dst.writestr(info, data)
    findings = _scan(bad)
    assert any(rule == "LW-MODEL-017" and sev >= Severity.HIGH for rule, sev, _ in findings), findings
