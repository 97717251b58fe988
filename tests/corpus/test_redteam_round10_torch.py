"""Round 10 of the internal red team, PyTorch formats: sparse tensors whose index tensors loopwarden did not read.

torch.load (weights_only too) and torch.jit.load rebuild sparse tensors without checking their indices (sparse
invariant checks are off by default), so an index past the tensor's size makes ``coalesce()``/``to_dense()``
write outside the dense buffer. Round 9 checked the index values of torch.save's own spelling only; the
rebuild takes its parts as any sequence and its index tensor as any tensor (a Parameter, ``_rebuild_tensor_v3``,
a subclass rebuilt by ``_rebuild_from_type_v2``), and TorchScript archives use another call altogether. Each of
those was called clean while real torch 2.13 crashed on it.

Each case is built as bytes here and scanned. Where cheap, real torch (if installed) runs the case in a child
process with a harmless effect only (a crash of the child).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import _container_payloads as cp
import pytest
import test_redteam_round9_torch2 as r9t2
from test_advisory_formats import _torchscript
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files
from test_redteam_round9_torch import _child, _int, _tuple, _u, assert_clean

from loopwarden.domain import Verdict

_HOOKS = b"ccollections\nOrderedDict\n)R"


def _pid(key: str, storage: str, numel: int) -> bytes:
    return _tuple(_u("storage"), f"ctorch\n{storage}\n".encode(), _u(key), _u("cpu"), _int(numel)) + b"Q"


def _geometry(key: str, storage: str, numel: int, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    """The leading arguments of torch's tensor rebuilds: storage, offset, sizes, strides, requires_grad, hooks."""
    return (
        _pid(key, storage, numel)
        + _int(0)
        + _tuple(*map(_int, size))
        + _tuple(*map(_int, stride))
        + b"\x89"
        + _HOOKS
    )


def _v2(key: str, storage: str, numel: int, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    return b"ctorch._utils\n_rebuild_tensor_v2\n(" + _geometry(key, storage, numel, size, stride) + b"tR"


# The index tensor (1 x 2, int64, storage '0') under each spelling torch.load accepts.
_INDEX_SPELLINGS = {
    "parameter": b"ctorch._utils\n_rebuild_parameter\n("
    + _v2("0", "LongStorage", 2, (1, 2), (2, 1))
    + b"\x89"
    + _HOOKS
    + b"tR",
    "tensor-v3": b"ctorch._utils\n_rebuild_tensor_v3\n("
    + _geometry("0", "LongStorage", 2, (1, 2), (2, 1))
    + b"ctorch\nint64\ntR",
    "tensor-v3-untyped-storage": b"ctorch._utils\n_rebuild_tensor_v3\n("
    + _geometry("0", "UntypedStorage", 16, (1, 2), (2, 1))
    + b"ctorch\nint64\ntR",
    "from-type-v2": b"ctorch._tensor\n_rebuild_from_type_v2\n(ctorch._utils\n_rebuild_tensor_v2\nctorch\nTensor\n("
    + _geometry("0", "LongStorage", 2, (1, 2), (2, 1))
    + b"t}tR",
}


def _coo(index: bytes, *, as_list: bool = False, size: bytes | None = None) -> bytes:
    """``_rebuild_sparse_tensor(torch.sparse_coo, data)`` of a 1-D tensor of 4 elements with 2 entries: ``index``
    over storage '0', float32 values over storage '1'; ``data`` a list when ``as_list``."""
    size = size if size is not None else b"ctorch\nSize\n" + _tuple(_tuple(_int(4))) + b"R"
    parts = index + _v2("1", "FloatStorage", 2, (2,), (1,)) + size + b"\x89"
    data = b"](" + parts + b"e" if as_list else b"(" + parts + b"t"
    layout = b"ctorch.serialization\n_get_layout\n" + _u("torch.sparse_coo") + b"\x85R"
    return b"\x80\x02ctorch._utils\n_rebuild_sparse_tensor\n" + layout + data + b"\x86R."


def _archive(
    pkl: bytes, indices: list[int], root: str = "archive", extra: dict[str, bytes] | None = None
) -> bytes:
    return cp.zip_of(
        {
            f"{root}/data.pkl": pkl,
            f"{root}/byteorder": b"little",
            f"{root}/data/0": struct.pack(f"<{len(indices)}q", *indices),
            f"{root}/data/1": struct.pack("<2f", 1.0, 2.0),
            f"{root}/version": b"3\n",
            **(extra or {}),
        },
        method=zipfile.ZIP_STORED,
    )


_CASES = {
    **{name: _coo(index) for name, index in _INDEX_SPELLINGS.items()},
    "data-as-list": _coo(_v2("0", "LongStorage", 2, (1, 2), (2, 1)), as_list=True),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_sparse_indices_under_other_spellings_are_reported(tmp_path: Path, case: str) -> None:
    """Each spelling crashed torch 2.13 after a default torch.load (weights_only=True) and coalesce().to_dense()
    while loopwarden called it clean: the index tensor is now read back through Parameter, v3 and subclass
    rebuilds, and ``data`` may be a list (LW-MODEL-017)."""
    assert_caught(scan_files(tmp_path, {"model.pt": _archive(_CASES[case], [0, 1 << 34])}), "LW-MODEL-017")


@pytest.mark.parametrize("case", sorted(_CASES))
def test_sparse_indices_under_other_spellings_inside_the_tensor_stay_clean(tmp_path: Path, case: str) -> None:
    assert_clean(scan_files(tmp_path, {"model.pt": _archive(_CASES[case], [0, 3])}))


_UNREADABLE = {
    # torch.Size(tuple([4])): a size computed at load time (weights_only=False)
    "computed-size": _coo(
        _v2("0", "LongStorage", 2, (1, 2), (2, 1)),
        size=b"ctorch\nSize\ncbuiltins\ntuple\n]" + _int(4) + b"a\x85R\x85R",
    ),
    # indices converted from a float tensor: the bytes are not the index values
    "converted-from-float": _coo(
        b"ctorch._utils\n_rebuild_device_tensor_from_cpu_tensor\n("
        + _v2("0", "DoubleStorage", 2, (1, 2), (2, 1))
        + b"ctorch\nint64\n"
        + _u("cpu")
        + b"\x89tR"
    ),
}


@pytest.mark.parametrize("case", sorted(_UNREADABLE))
def test_sparse_parts_that_cannot_be_read_back_are_unverified(tmp_path: Path, case: str) -> None:
    """A sparse tensor whose size or index tensor is made at load time leaves its indices unchecked: unverified
    (before, the check was silently skipped and the file called clean)."""
    t = scan_files(tmp_path, {"model.pt": _archive(_UNREADABLE[case], [0, 3])})[0]
    assert t.verdict is Verdict.UNVERIFIED, t
    assert "not checked" in (t.reason or ""), t


# --- TorchScript archives: _rebuild_sparse_tensor(layout, size, requires_grad, indices, values, hooks) ---------


def _torchscript_sparse(layout: int, parts: list[bytes], size: tuple[int, ...]) -> bytes:
    """A TorchScript module's data.pkl with one sparse buffer ``s`` as torch.jit.save writes it."""
    call = (
        b"ctorch._utils\n_rebuild_sparse_tensor\n("
        + _int(layout)
        + _tuple(*map(_int, size))
        + b"\x89"
        + b"".join(parts)
        + _HOOKS
        + b"tR"
    )
    return b"\x80\x02c__torch__\nM\n)\x81}(" + _u("s") + call + _u("training") + b"\x88ub."


def _torchscript_archive(pkl: bytes, records: dict[str, bytes]) -> bytes:
    files = {
        "m/data.pkl": pkl,
        "m/constants.pkl": b"\x80\x02).",
        "m/version": b"3\n",
        "m/byteorder": b"little",
        "m/code/__torch__.py": b'class M(Module):\n  __parameters__ = []\n  __buffers__ = ["s", ]\n'
        b"  s : Tensor\n  training : bool\n",
    }
    files.update({f"m/data/{k}": v for k, v in records.items()})
    return cp.zip_of(files, method=zipfile.ZIP_STORED)


def _ts_coo(indices: list[int]) -> bytes:
    pkl = _torchscript_sparse(
        1, [_v2("0", "LongStorage", 2, (1, 2), (2, 1)), _v2("1", "FloatStorage", 2, (2,), (1,))], (4,)
    )
    return _torchscript_archive(pkl, {"0": struct.pack("<2q", *indices), "1": struct.pack("<2f", 1.0, 2.0)})


def _ts_csr(columns: list[int]) -> bytes:
    """A 2 x 4 CSR buffer with 3 entries: crow_indices over '0', col_indices over '1', values over '2'."""
    pkl = _torchscript_sparse(
        2,
        [
            _v2("0", "LongStorage", 3, (3,), (1,)),
            _v2("1", "LongStorage", 3, (3,), (1,)),
            _v2("2", "FloatStorage", 3, (3,), (1,)),
        ],
        (2, 4),
    )
    return _torchscript_archive(
        pkl,
        {
            "0": struct.pack("<3q", 0, 1, 3),
            "1": struct.pack("<3q", *columns),
            "2": struct.pack("<3f", 1.0, 2.0, 3.0),
        },
    )


def test_torchscript_sparse_indices_outside_the_tensor_are_reported(tmp_path: Path) -> None:
    """torch.jit.load rebuilds a TorchScript module's sparse buffers from a call with another signature than
    torch.load's, which loopwarden skipped: a COO index past the size crashed torch 2.13 on coalesce().to_dense()
    and a CSR column index past the size on to_sparse_coo().to_dense(), both called clean."""
    assert_caught(scan_files(tmp_path / "coo", {"model.pt": _ts_coo([0, 1 << 34])}), "LW-MODEL-017")
    assert_caught(scan_files(tmp_path / "csr", {"model.pt": _ts_csr([1, 0, 1 << 33])}), "LW-MODEL-017")


def test_torchscript_sparse_indices_inside_the_tensor_stay_clean(tmp_path: Path) -> None:
    assert_clean(scan_files(tmp_path / "coo", {"model.pt": _ts_coo([0, 3])}))
    assert_clean(scan_files(tmp_path / "csr", {"model.pt": _ts_csr([1, 0, 2])}))


# --- real torch -------------------------------------------------------------------------------------------------

_JIT_SAVE = """
import sys, torch
class M(torch.nn.Module):
    def __init__(self, s):
        super().__init__()
        self.register_buffer("s", s)
    def forward(self, x):
        return x
t = torch.tensor([[0.0, 1.0, 0.0, 0.0], [2.0, 0.0, 3.0, 0.0]])
torch.jit.script(M(t.to_sparse())).save(sys.argv[1])
torch.jit.script(M(t.to_sparse_csr())).save(sys.argv[2])
"""


def _with_record(archive: bytes, ending: str, data: bytes) -> bytes:
    with zipfile.ZipFile(__import__("io").BytesIO(archive)) as z:
        files = {n: (data if n.endswith(ending) else z.read(n)) for n in z.namelist()}
    return cp.zip_of(files, method=zipfile.ZIP_STORED)


def test_sparse_spellings_under_real_torch(tmp_path: Path) -> None:
    """Real torch crashes on the spellings loopwarden missed (a child process: SIGSEGV), and the modules
    torch.jit.save writes with sparse buffers stay clean."""
    pytest.importorskip("torch")
    coo, csr = tmp_path / "coo.pt", tmp_path / "csr.pt"
    made = _child(_JIT_SAVE, str(coo), str(csr), cwd=tmp_path / "make")
    assert made.returncode == 0, made.stderr
    assert_clean(scan_files(tmp_path / "g1", {"model.pt": coo.read_bytes()}))
    assert_clean(scan_files(tmp_path / "g2", {"model.pt": csr.read_bytes()}))

    bad = tmp_path / "bad_coo.pt"  # indices of a 2 x 4 COO tensor: [[0, 1, 1], [1, 0, 2]] -> column 2**34
    bad.write_bytes(_with_record(coo.read_bytes(), "/data/0", struct.pack("<6q", 0, 1, 1, 1, 0, 1 << 34)))
    ran = _child(
        "import sys, torch\ntorch.jit.load(sys.argv[1]).s.coalesce().to_dense()\n", str(bad), cwd=tmp_path
    )
    assert ran.returncode != 0
    assert_caught(scan_files(tmp_path / "b1", {"model.pt": bad.read_bytes()}), "LW-MODEL-017")

    spelled = tmp_path / "param.pt"
    spelled.write_bytes(_archive(_CASES["parameter"], [0, 1 << 34]))
    ran = _child(
        "import sys, torch\ntorch.load(sys.argv[1]).coalesce().to_dense()\n", str(spelled), cwd=tmp_path
    )
    assert ran.returncode != 0
    assert_caught(scan_files(tmp_path / "b2", {"model.pt": spelled.read_bytes()}), "LW-MODEL-017")


# --- TorchScript: the archive's own methods named like dangerous functions (false positives) --------------------

_OWN_METHODS = (
    b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
    b"    _0 = (self).open((self).compile((self).save(x, ), ), )\n"
    b"    sub = self.sub\n"
    b"    return (sub).open(self.eval(_0), )\n"
    b"  def open(self: __torch__.M, x: Tensor) -> Tensor:\n"
    b"    return torch.sub(x, 1)\n"
    b"  def compile(self: __torch__.M, x: Tensor) -> Tensor:\n"
    b"    return torch.mul(x, 2)\n"
    b"  def eval(self: __torch__.M, x: Tensor) -> Tensor:\n"
    b"    return x\n"
    b"  def save(self: __torch__.M, x: Tensor) -> Tensor:\n"
    b"    return torch.add(x, 1)\n"
)


def test_torchscript_own_methods_named_open_or_compile_stay_clean(tmp_path: Path) -> None:
    """torch.jit.save prints a module's own methods as ``def open(self, ...)`` and calls them as
    ``(self).open(x, )``: no TorchScript builtin type has such a method, so that is the archive's own code (judged
    itself). loopwarden reported each such line HIGH (LW-MODEL-031)."""
    assert_clean(scan_files(tmp_path, {"model.pt": _torchscript(_OWN_METHODS)}))


@pytest.mark.parametrize(
    "line",
    [
        b'    f = open("/etc/passwd")\n',
        b'    os.system("id")\n',
        b'    os.\\\n      system("id")\n',
        b'    builtins.eval("1")\n',
        b'    y = compile("1")\n',
    ],
    ids=["free-open", "os-system", "os-system-continued", "builtins-eval", "compile-free"],
)
def test_torchscript_dangerous_words_outside_own_methods_are_reported(tmp_path: Path, line: bytes) -> None:
    body = b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n" + line + b"    return x\n"
    assert_caught(scan_files(tmp_path, {"model.pt": _torchscript(body)}), "LW-MODEL-031")


_JIT_METHODS = """
import sys, torch
class Sub(torch.nn.Module):
    @torch.jit.export
    def save(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1
    @torch.jit.export
    def load(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2
    @torch.jit.export
    def open(self, x: torch.Tensor) -> torch.Tensor:
        return x - 1
    def forward(self, x):
        return self.open(self.load(self.save(x)))
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.sub = Sub()
        self.subs = torch.nn.ModuleList([Sub(), Sub()])
    def forward(self, x):
        y = self.sub.save(x)
        for s in self.subs:
            y = s.open(s.load(y))
        return self.sub(y)
torch.jit.script(M()).save(sys.argv[1])
"""


def test_torchscript_methods_named_save_load_open_under_real_torch(tmp_path: Path) -> None:
    """What torch.jit.save writes for a benign module whose methods are named save, load and open stays clean."""
    pytest.importorskip("torch")
    out = tmp_path / "methods.pt"
    made = _child(_JIT_METHODS, str(out), cwd=tmp_path / "make")
    assert made.returncode == 0, made.stderr
    assert_clean(scan_files(tmp_path / "s", {"model.pt": out.read_bytes()}))


# --- legacy (non-zip) files: dense storages torch allocates but never fills -------------------------------------


def _legacy_dense(keys: list[str], numel: int = 4096) -> bytes:
    """A legacy file whose main pickle is a uint8 tensor over storage '0'; ``keys`` is the storage-key list, and
    each listed storage is filled with ``numel`` bytes of 0x41."""
    main = b"\x80\x02" + r9t2._tensor("0", "ByteStorage", numel, (numel,), (1,)) + b"."
    return r9t2._legacy(main, keys, [(numel, b"A" * numel) for _ in keys])


def test_legacy_storage_never_filled_is_reported(tmp_path: Path) -> None:
    """torch.load (weights_only=True) of a legacy file allocates each storage the pickle names uninitialized and
    fills only those in the storage-key list: a tensor over one left out holds the loading process's leftover
    heap (with torch 2.13 it showed hundreds of copies of a string the process had freed). Was called clean."""
    assert_caught(scan_files(tmp_path / "b", {"model.pt": _legacy_dense([])}), "LW-MODEL-017")
    assert_clean(scan_files(tmp_path / "g", {"model.pt": _legacy_dense(["0"])}))


_LEGACY_SAVE = """
import sys, torch
m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
x = torch.randn(5, 5)
torch.save({"state": m.state_dict(), "empty": torch.empty(0), "view": x[1:3, 2:], "shared": (x, x.t()),
            "opt": torch.optim.Adam(m.parameters()).state_dict(), "param": torch.nn.Parameter(torch.ones(2))},
           sys.argv[1], _use_new_zipfile_serialization=False)
torch.save(m, sys.argv[2], _use_new_zipfile_serialization=False)
t = torch.load(sys.argv[3])
assert t.numel() == 4096 and b"A" * 64 not in bytes(t.tolist())
"""


def test_legacy_storage_never_filled_under_real_torch(tmp_path: Path) -> None:
    """Real torch loads the tensor without its bytes being in the file; torch.save's legacy files stay clean."""
    pytest.importorskip("torch")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(_legacy_dense([]))
    state, module = tmp_path / "state.pt", tmp_path / "module.pt"
    ran = _child(_LEGACY_SAVE, str(state), str(module), str(bad), cwd=tmp_path / "run")
    assert ran.returncode == 0, ran.stderr
    assert_clean(scan_files(tmp_path / "s", {"model.pt": state.read_bytes()}))
    assert_clean(scan_files(tmp_path / "m", {"model.pt": module.read_bytes()}))


# --- TorchScript constants: records shorter than the storages constants.pkl declares -----------------------------


def _ts_constant(record: bytes, numel: int = 1 << 16, first: int | None = None) -> bytes:
    """A TorchScript archive whose constants.pkl holds one float32 tensor of ``numel`` elements over storage '0'
    (the record ``constants/0`` is ``record``), after one of ``first`` elements over the same key if given."""
    before = _v2("0", "FloatStorage", first, (first,), (1,)) if first is not None else b""
    constants = b"\x80\x02(" + before + _v2("0", "FloatStorage", numel, (numel,), (1,)) + b"t."
    return cp.zip_of(
        {
            "m/data.pkl": b"\x80\x02c__torch__\nM\n)\x81}(" + _u("training") + b"\x88ub.",
            "m/constants.pkl": constants,
            "m/constants/0": record,
            "m/version": b"3\n",
            "m/byteorder": b"little",
            "m/code/__torch__.py": b"class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n"
            b"  training : bool\n  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
            b"    _0 = CONSTANTS.c0\n    return torch.add(x, _0)\n",
        },
        method=zipfile.ZIP_STORED,
    )


def test_storage_key_declared_again_with_a_larger_size_is_reported(tmp_path: Path) -> None:
    """torch.jit.load's unpickler builds each declaration of a storage key with its own element count (torch.load
    keeps the first): a key declared with 4 elements, then with 65536, over a 16-byte record gave a constant that
    read the loading process's heap (torch 2.13). loopwarden compared the first declaration only and called it
    clean; every declaration of another size is now compared with the record."""
    assert_caught(scan_files(tmp_path / "b", {"model.pt": _ts_constant(b"\0" * 16, first=4)}), "LW-MODEL-017")
    assert_clean(scan_files(tmp_path / "g", {"model.pt": _ts_constant(b"\0" * (4 << 16), first=4)}))


def test_torchscript_constant_record_shorter_than_its_storage_is_reported(tmp_path: Path) -> None:
    """torch.jit.load (2.13) builds a TorchScript archive's constants from ``constants/<key>`` with the element
    count constants.pkl declares and does not compare it with the record: a 16-byte record under a 65536-element
    constant made the model's output carry the loading process's heap (a freed string showed up hundreds of
    times). torch.save's data/ records were checked; constants/ ones were not."""
    assert_caught(scan_files(tmp_path / "b", {"model.pt": _ts_constant(b"\0" * 16)}), "LW-MODEL-017")
    assert_clean(scan_files(tmp_path / "g", {"model.pt": _ts_constant(b"\0" * (4 << 16))}))


_TRACE_CONSTANT = """
import sys, zipfile, torch
c = torch.arange(1 << 16, dtype=torch.float32)
class M(torch.nn.Module):
    def forward(self, x):
        return x + c
torch.jit.trace(M(), torch.zeros(1 << 16)).save(sys.argv[1])
with zipfile.ZipFile(sys.argv[1]) as z, zipfile.ZipFile(sys.argv[2], "w") as out:
    for n in z.namelist():
        out.writestr(n, z.read(n)[:16] if "/constants/" in n else z.read(n))
m = torch.jit.load(sys.argv[2])
assert m(torch.zeros(1 << 16)).numel() == 1 << 16  # 65536 floats from a 16-byte record
"""


def test_torchscript_constants_under_real_torch(tmp_path: Path) -> None:
    """Real torch loads and runs the module whose constant record was cut to 16 bytes; the traced module
    torch.jit.save writes (with its traced_inputs records left empty) stays clean, the cut one is reported."""
    pytest.importorskip("torch")
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    ran = _child(_TRACE_CONSTANT, str(good), str(bad), cwd=tmp_path / "run")
    # the files are written before the load; reading 256 KiB past a 16-byte record returns the heap, or crashes
    # torch (SIGSEGV) when the read crosses into unmapped memory: both confirm it
    assert ran.returncode == 0 or ran.returncode < 0, ran.stderr
    assert good.exists() and bad.exists()
    assert_clean(scan_files(tmp_path / "g", {"model.pt": good.read_bytes()}))
    assert_caught(scan_files(tmp_path / "b", {"model.pt": bad.read_bytes()}), "LW-MODEL-017")


# --- compressed sparse layouts: crow_indices that go down ---------------------------------------------------------


def _csr(crow: list[int]) -> bytes:
    """torch.save's pickle and records of a CSR tensor of ``len(crow) - 1`` x 4 with 3 entries in columns 0..2."""
    rows = len(crow) - 1
    layout = b"ctorch.serialization\n_get_layout\n" + _u("torch.sparse_csr") + b"\x85R"
    size = b"ctorch\nSize\n" + _tuple(_tuple(_int(rows), _int(4))) + b"R"
    data = _tuple(
        _v2("0", "LongStorage", rows + 1, (rows + 1,), (1,)),
        _v2("1", "LongStorage", 3, (3,), (1,)),
        _v2("2", "FloatStorage", 3, (3,), (1,)),
        size,
    )
    pkl = b"\x80\x02ctorch._utils\n_rebuild_sparse_tensor\n" + layout + data + b"\x86R."
    return cp.zip_of(
        {
            "archive/data.pkl": pkl,
            "archive/byteorder": b"little",
            "archive/data/0": struct.pack(f"<{rows + 1}q", *crow),
            "archive/data/1": struct.pack("<3q", 0, 1, 2),
            "archive/data/2": struct.pack("<3f", 1.0, 2.0, 3.0),
            "archive/version": b"3\n",
        },
        method=zipfile.ZIP_STORED,
    )


@pytest.mark.parametrize(
    "crow", [[0, 3, 0], [3, 0, 3], [0, 2, 3, 1]], ids=["drop-to-0", "start-high", "last-down"]
)
def test_compressed_indices_that_go_down_are_reported(tmp_path: Path, crow: list[int]) -> None:
    """CSR crow_indices each inside [0, nnz] but smaller than the one before give a row of negative length: a
    default torch.load and to_dense() (or to_sparse_coo().coalesce().to_dense()) crashed torch 2.13, and
    loopwarden, which checked only the range, called the file clean."""
    assert_caught(scan_files(tmp_path, {"model.pt": _csr(crow)}), "LW-MODEL-017")


def test_compressed_indices_that_never_go_down_stay_clean(tmp_path: Path) -> None:
    assert_clean(scan_files(tmp_path / "a", {"model.pt": _csr([0, 1, 3])}))
    assert_clean(scan_files(tmp_path / "b", {"model.pt": _csr([0, 0, 0, 3])}))


def test_compressed_indices_under_real_torch(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    bad = tmp_path / "csr.pt"
    bad.write_bytes(_csr([3, 0, 3]))
    ran = _child("import sys, torch\ntorch.load(sys.argv[1]).to_dense()\n", str(bad), cwd=tmp_path / "run")
    assert ran.returncode != 0  # SIGSEGV
    good = tmp_path / "good.pt"
    good.write_bytes(_csr([0, 1, 3]))
    ran = _child(
        "import sys, torch\nprint(torch.load(sys.argv[1]).to_dense().sum())\n", str(good), cwd=tmp_path / "g"
    )
    assert ran.returncode == 0, ran.stderr
