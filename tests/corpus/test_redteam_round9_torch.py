"""Round 9 of the internal red team, PyTorch formats: TorchScript code that reaches torch's file builtins under
other spellings, and tensors that torch.load does not check.

Each case is built as bytes here and scanned. Where cheap, real torch (if installed) runs the case in a child
process with a harmless effect only: a marker file written inside a temporary folder, or a crash of the child.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import _container_payloads as cp
import pytest
from test_advisory_formats import _torchscript
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.domain import Severity, Verdict


def assert_clean(results: list[object]) -> None:
    t = results[0]
    assert t.verdict is Verdict.CLEAN, t  # type: ignore[attr-defined]


def _child(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (written to a file: torch.jit.script reads the source) under the current interpreter in a
    child process, argv[1:] = ``args``."""
    cwd.mkdir(parents=True, exist_ok=True)
    script = cwd / "child.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


# --- TorchScript: torch.save / torch.from_file under spellings a line-based reading misses ---------------------

_SETSTATE = b"  def __setstate__(self: __torch__.M, state: Tuple[bool]) -> NoneType:\n"


# Each was confirmed with torch 2.13: torch.jit.load (and torch.load, which hands the archive to it) compiles the
# class and runs __setstate__, which writes the file.
_SPELLINGS = {
    # torch.autograd is the aten namespace again (BuiltinModule "autograd"), any number of times
    "torch-autograd": b'    torch.autograd.save(state, "/tmp/lw-marker")\n',
    "torch-autograd-autograd": b'    torch.autograd.autograd.save(state, "/tmp/lw-marker")\n',
    # whitespace and line breaks between tokens
    "spaces-around-dot": b'    torch . save(state, "/tmp/lw-marker")\n',
    "backslash-continuation": b'    torch.\\\n      save(state, "/tmp/lw-marker")\n',
    "parenthesised-over-lines": b'    (torch\n      .save)(state, "/tmp/lw-marker")\n',
    "ops-spaces": b'    ops . aten . save(state, "/tmp/lw-marker")\n',
    # the builtin or its namespace held in a local
    "builtin-alias": b'    f = torch.save\n    f(state, "/tmp/lw-marker")\n',
    "module-alias": b'    t = torch\n    t.save(state, "/tmp/lw-marker")\n',
    "ops-namespace-alias": b'    a = ops.aten\n    a.save(state, "/tmp/lw-marker")\n',
    # getattr with a constant name
    "getattr-torch": b'    getattr(torch, "save")(state, "/tmp/lw-marker")\n',
    "getattr-ops": b'    n = getattr(ops, "aten")\n    n.save(state, "/tmp/lw-marker")\n',
    "getattr-from-file": b'    g = getattr(torch.autograd, "from_file")\n    print(g("/etc/hostname", False, 1))\n',
    # the builtin passed as a value to fork
    "fork-builtin": b'    fut = fork(torch.autograd.save, state, "/tmp/lw-marker")\n    fut.wait()\n',
    # a custom namespace through an alias (needs a loaded library: MEDIUM)
    "custom-namespace-alias": b"    c = ops.evil_ns\n    c.run_shell(state)\n",
}


@pytest.mark.parametrize("case", sorted(_SPELLINGS))
def test_torchscript_builtin_spellings_are_reported(tmp_path: Path, case: str) -> None:
    """CVE-2025-32434 class (GHSA-53q9-r3pm-6pq6): TorchScript's aten::save writes any path and aten::from_file
    reads any file. The compiler reads tokens, not lines: ``torch.autograd.<op>``, spaces, continuations, aliases,
    ``getattr(torch, "save")`` and ``fork(torch.save, ...)`` all reach the same builtin, and loopwarden called them
    clean. Now the code is tokenized and every chain headed by ``torch``/``ops`` is judged, and either name held as
    a value is reported."""
    body = _SETSTATE + _SPELLINGS[case] + b"    self.training = state[0]\n    return None\n"
    at_least = Severity.MEDIUM if case.startswith("custom") else Severity.CRITICAL
    assert_caught(scan_files(tmp_path, {"model.pt": _torchscript(body)}), "LW-MODEL-031", at_least)


def test_torchscript_ordinary_spellings_stay_clean(tmp_path: Path) -> None:
    """The counterpart: what torch.jit.save prints for ordinary modules (calls through ``torch.``/``ops.``
    chains, ``torch.autograd.grad``, getattr of submodules, methods named like builtins on ``self``, names that
    contain "save" or "load", strings that say them)."""
    body = (
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b'    _0 = getattr(self, "0")\n'
        b'    _1 = getattr(self.layers, "save")\n'
        b"    saved = torch.mean(x)\n"
        b"    load_factor = torch.autograd.grad([saved], [x])\n"
        b"    y = ops.quantized.linear_dynamic(x, self.packed, True)\n"
        b"    z = torch.add(torch.matmul(x, x), self.save_scale)\n"
        b'    print("torch.save(x, path) and ops.aten.from_file are only words here")\n'
        b"    w = self.load(z)  # torch.save in a comment\n"
        b"    return torch.relu(\n      w)\n"
    )
    assert_clean(scan_files(tmp_path, {"model.pt": _torchscript(body)}))


_TORCH_SCRIPT_MODULE = """
import sys, torch
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))
    def forward(self, x):
        return x * self.w
    @torch.jit.export
    def __getstate__(self):
        return (self.w, self.training)
    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]):
        self.w = state[0]
        self.training = state[1]
torch.jit.save(torch.jit.script(M()), sys.argv[1])
"""


def _rewrite(archive: bytes, edit: Callable[[str, bytes], bytes | None]) -> bytes:
    """The archive with each member's bytes replaced by ``edit(name, data)`` (a member dropped where it gives None)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as zin, zipfile.ZipFile(out, "w") as zout:
        for name in zin.namelist():
            data = edit(name, zin.read(name))
            if data is not None:
                zout.writestr(name, data)
    return out.getvalue()


def _rewrite_setstate(archive: bytes, lines: bytes) -> bytes:
    """The archive with ``lines`` put at the start of the compiled class's __setstate__ (debug records dropped)."""

    def edit(name: str, data: bytes) -> bytes | None:
        if name.endswith(".debug_pkl"):
            return None
        if name.endswith("code/__torch__.py"):
            return data.replace(b"    self.w = (state)[0]\n", lines + b"    self.w = (state)[0]\n")
        return data

    return _rewrite(archive, edit)


@pytest.mark.parametrize(
    "case", ["torch-autograd", "module-alias", "getattr-torch", "backslash-continuation"]
)
def test_torchscript_spellings_run_under_real_torch(tmp_path: Path, case: str) -> None:
    """Real torch writes the marker while torch.jit.load reads the archive (no method of the model is called;
    torch.load(weights_only=False) hands the archive to torch.jit.load alike)."""
    pytest.importorskip("torch")
    base = tmp_path / "base.pt"
    made = _child(_TORCH_SCRIPT_MODULE, str(base), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    marker = tmp_path / "marker"
    line = _SPELLINGS[case].replace(b"state,", b"state[0],").replace(b"/tmp/lw-marker", str(marker).encode())
    evil = tmp_path / "evil.pt"
    evil.write_bytes(_rewrite_setstate(base.read_bytes(), line))
    ran = _child("import sys, torch\ntorch.jit.load(sys.argv[1])\n", str(evil), cwd=tmp_path / "run")
    assert ran.returncode == 0, ran.stderr
    assert marker.exists()
    assert_caught(
        scan_files(tmp_path / "scan", {"model.pt": evil.read_bytes()}), "LW-MODEL-031", Severity.CRITICAL
    )
    assert_clean(scan_files(tmp_path / "scan-base", {"model.pt": base.read_bytes()}))


# --- sparse tensors: torch.load rebuilds them unchecked (invariant checks are off by default) ------------------


def _u(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(
    key: str,
    storage: str,
    numel: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    view: bytes | None = None,
) -> bytes:
    """``_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`` over a persistent-id storage (with
    ``view``: the legacy format's id, whose sixth item is the view, None pickled as ``N``)."""
    items = [_u("storage"), f"ctorch\n{storage}\n".encode(), _u(key), _u("cpu"), _int(numel)]
    pid = _tuple(*items, *([view] if view is not None else [])) + b"Q"
    return (
        b"ctorch._utils\n_rebuild_tensor_v2\n"
        + _tuple(
            pid,
            _int(0),
            _tuple(*map(_int, size)),
            _tuple(*map(_int, stride)),
            b"\x89",
            b"ccollections\nOrderedDict\n)R",
        )
        + b"R"
    )


def _sparse_coo_pickle(dense: int, nnz: int) -> bytes:
    """torch.save's pickle of a 1-D sparse COO tensor of ``dense`` elements with ``nnz`` entries: indices in
    storage '0' (int64, 1 x nnz), values in storage '1' (float32)."""
    layout = b"ctorch.serialization\n_get_layout\n" + _u("torch.sparse_coo") + b"\x85R"
    size = b"ctorch\nSize\n" + _tuple(_tuple(_int(dense))) + b"R"
    data = _tuple(
        _tensor("0", "LongStorage", nnz, (1, nnz), (nnz, 1)),
        _tensor("1", "FloatStorage", nnz, (nnz,), (1,)),
        size,
        b"\x89",
    )
    return b"\x80\x02ctorch._utils\n_rebuild_sparse_tensor\n" + layout + data + b"\x86R."


def _sparse_archive(indices: list[int], dense: int = 4) -> bytes:
    nnz = len(indices)
    return cp.zip_of(
        {
            "archive/data.pkl": _sparse_coo_pickle(dense, nnz),
            "archive/byteorder": b"little",
            "archive/data/0": struct.pack(f"<{nnz}q", *indices),
            "archive/data/1": struct.pack(f"<{nnz}f", *([1.0] * nnz)),
            "archive/version": b"3\n",
        },
        method=zipfile.ZIP_STORED,
    )


@pytest.mark.parametrize(
    "indices", [[0, 1 << 34], [0, -(1 << 40)], [3, 4]], ids=["far", "negative", "one-past"]
)
def test_sparse_indices_outside_the_tensor_are_reported(tmp_path: Path, indices: list[int]) -> None:
    """torch.load (weights_only=True, the default) rebuilds sparse tensors with ``check_invariants=False`` and
    validates them only when ``torch.sparse.check_sparse_tensor_invariants`` is switched on; it is off by default
    (torch/_utils.py, ``_validate_loaded_sparse_tensors``). An index past the size then makes ``coalesce()`` /
    ``to_dense()`` write outside the dense buffer: a SIGSEGV in torch 2.13. loopwarden called such files clean;
    now each sparse index tensor's values are read from its record and checked against the size (LW-MODEL-017)."""
    assert_caught(scan_files(tmp_path, {"model.pt": _sparse_archive(indices)}), "LW-MODEL-017")


def test_sparse_indices_inside_the_tensor_stay_clean(tmp_path: Path) -> None:
    assert_clean(scan_files(tmp_path, {"model.pt": _sparse_archive([0, 1, 3])}))


def test_sparse_index_tensor_declaring_more_entries_than_its_record_holds(tmp_path: Path) -> None:
    """Index values are read as views of the record: a tensor declaring 2**31 - 1 entries over a 16-byte record is
    not turned into an index grid of that size (it leaves its storage, which the geometry check reports)."""
    import tracemalloc

    data = _sparse_coo_pickle(4, (1 << 31) - 1)
    archive = cp.zip_of(
        {
            "archive/data.pkl": data,
            "archive/data/0": struct.pack("<2q", 0, 1),
            "archive/data/1": struct.pack("<2f", 1.0, 1.0),
            "archive/version": b"3\n",
        },
        method=zipfile.ZIP_STORED,
    )
    tracemalloc.start()
    try:
        results = scan_files(tmp_path, {"model.pt": archive})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert results[0].verdict is not Verdict.CLEAN, results[0]
    assert peak < 64 << 20, peak


_SPARSE_SAVE = """
import sys, torch
t = torch.tensor([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
torch.save({"coo": t.to_sparse(), "coo_hybrid": torch.ones(2, 2, 3).to_sparse(2), "csr": t.to_sparse_csr(),
            "csc": t.to_sparse_csc(), "bsr": torch.ones(4, 4).to_sparse_bsr((2, 2)),
            "bsc": torch.ones(4, 4).to_sparse_bsc((2, 2)), "dense": t}, sys.argv[1])
bad = torch.sparse_coo_tensor(torch.tensor([[0, 1], [0, 1]]), torch.tensor([1.0, 2.0]), (2, 2),
                              check_invariants=False)
bad._indices()[0, 1] = 1 << 34
torch.save({"t": bad}, sys.argv[2])
csr = torch.sparse_csr_tensor(torch.tensor([0, 1, 2]), torch.tensor([1, 0]), torch.tensor([1.0, 2.0]), (2, 2))
csr.col_indices()[1] = 1 << 33
torch.save(csr, sys.argv[3])
"""


def test_sparse_tensors_under_real_torch(tmp_path: Path) -> None:
    """torch.save's sparse layouts stay clean; a COO index past the size crashes real torch after a default
    torch.load (coalesce().to_dense() in a child process), and it and a CSR column index past the size are
    reported."""
    pytest.importorskip("torch")
    good, bad, csr = tmp_path / "good.pt", tmp_path / "bad.pt", tmp_path / "csr.pt"
    made = _child(_SPARSE_SAVE, str(good), str(bad), str(csr), cwd=tmp_path / "make")
    assert made.returncode == 0, made.stderr
    ran = _child(
        "import sys, torch\ntorch.load(sys.argv[1])['t'].coalesce().to_dense()\n", str(bad), cwd=tmp_path
    )
    assert ran.returncode != 0  # SIGSEGV (or an allocator abort): memory outside the tensor was written
    assert_clean(scan_files(tmp_path / "g", {"model.pt": good.read_bytes()}))
    assert_caught(scan_files(tmp_path / "b", {"model.pt": bad.read_bytes()}), "LW-MODEL-017")
    assert_caught(scan_files(tmp_path / "c", {"model.pt": csr.read_bytes()}), "LW-MODEL-017")


# --- torch.export (PT2): graph nodes name the operators the program calls --------------------------------------


def _pt2(targets: list[str]) -> bytes:
    """A PT2 archive (archive_format pt2) whose model graph calls ``targets`` in order."""
    nodes = [
        {
            "target": t,
            "inputs": [{"name": "filename", "arg": {"as_string": "/etc/passwd"}, "kind": 1}],
            "outputs": [{"as_tensor": {"name": f"n{i}"}}],
            "metadata": {},
        }
        for i, t in enumerate(targets)
    ]
    model = {"graph_module": {"graph": {"inputs": [], "outputs": [], "nodes": nodes}}, "schema_version": {}}
    return cp.zip_of(
        {
            "archive/archive_format": b"pt2",
            "archive/archive_version": b"0",
            "archive/models/model.json": json.dumps(model).encode(),
            "archive/byteorder": b"little",
        }
    )


@pytest.mark.parametrize(
    ("target", "severity"),
    [
        ("torch.ops.aten.from_file.default", Severity.HIGH),
        ("torch.ops.image.write_file.default", Severity.HIGH),
        ("torch.ops.evil_ns.run.default", Severity.MEDIUM),
        ("#evil_ns:run", Severity.MEDIUM),
    ],
)
def test_pt2_graph_file_and_custom_operators_are_reported(
    tmp_path: Path, target: str, severity: Severity
) -> None:
    """torch.export.load resolves each node's target by name (``deserialize_operator``) and the program runs it
    when called: a graph node ``torch.ops.aten.from_file.default("/etc/passwd", False, 2)`` read the file into
    the output with torch 2.13, and loopwarden called the archive clean. Now each model's graph is judged as
    TorchScript operators are (LW-MODEL-031)."""
    assert_caught(
        scan_files(tmp_path, {"model.pt2": _pt2(["torch.ops.aten.relu.default", target])}),
        "LW-MODEL-031",
        severity,
    )


def test_pt2_graph_of_torch_operators_stays_clean(tmp_path: Path) -> None:
    targets = [
        "torch.ops.aten.linear.default",
        "torch.ops.higher_order.cond",
        "torch.ops.aten.sym_size.int",
        "_operator.mul",
        "torch.sym_float",
        "torch.ops.quantized_decomposed.quantize_per_tensor.default",
    ]
    assert_clean(scan_files(tmp_path, {"model.pt2": _pt2(targets)}))


_PT2_SAVE = """
import sys, torch
class B(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l = torch.nn.Linear(2, 2)
    def forward(self, x):
        y = torch.cond(x.sum() > 0, lambda t: self.l(t), lambda t: t * 2, (x,))
        return torch.relu(y) + torch.ones(2)
torch.export.save(torch.export.export(B(), (torch.ones(2),)), sys.argv[1])
"""


def _swap_ones_for_from_file(archive: bytes, path: str) -> bytes:
    def edit(name: str, data: bytes) -> bytes:
        if not name.endswith("models/model.json"):
            return data
        model = json.loads(data)
        for node in model["graph_module"]["graph"]["nodes"]:
            if node["target"] == "torch.ops.aten.ones.default":
                node["target"] = "torch.ops.aten.from_file.default"
                node["inputs"] = [
                    {"name": "filename", "arg": {"as_string": path}, "kind": 1},
                    {"name": "shared", "arg": {"as_bool": False}, "kind": 1},
                    {"name": "size", "arg": {"as_int": 2}, "kind": 1},
                ]
        return json.dumps(model).encode()

    return _rewrite(archive, edit)


def test_pt2_from_file_under_real_torch(tmp_path: Path) -> None:
    """The exported program reads a file outside the model folder when it is called; the benign export (with a
    torch.cond subgraph) stays clean."""
    pytest.importorskip("torch")
    good = tmp_path / "good.pt2"
    made = _child(_PT2_SAVE, str(good), cwd=tmp_path / "make")
    assert made.returncode == 0, made.stderr
    secret = tmp_path / "outside" / "secret"
    secret.parent.mkdir()
    secret.write_bytes(b"\x00\x00\x80\x3f\x00\x00\x00\x40")  # 1.0, 2.0 as float32
    evil = tmp_path / "evil.pt2"
    evil.write_bytes(_swap_ones_for_from_file(good.read_bytes(), str(secret)))
    ran = _child(
        "import sys, torch\nep = torch.export.load(sys.argv[1])\n"
        "print(ep.module()(-torch.ones(2)).tolist())\n",
        str(evil),
        cwd=tmp_path / "run",
    )
    assert ran.returncode == 0, ran.stderr
    # relu(-2) + the file's two floats; the original torch.ones(2) would give [1.0, 1.0]
    assert "[1.0, 2.0]" in ran.stdout
    assert_clean(scan_files(tmp_path / "g", {"model.pt2": good.read_bytes()}))
    assert_caught(scan_files(tmp_path / "e", {"model.pt2": evil.read_bytes()}), "LW-MODEL-031")
