"""Round 18: TorchScript code that moves a sparse tensor's indices through aliases round 17 did not follow.

Round 17 reported TorchScript code that changes a sparse tensor's index tensor in place, following the alias
through variables, views, ``out=``, augmented and item assignment, helper arguments and attributes. The alias also
travels through:

* the return value of the file's own functions (``i = self.idx(t)``, ``self.idx(t).add_(n)``, a helper returning
  another helper's result, a tuple unpacked);
* containers: ``l.append(idx)``/``torch.append(l, idx)``, ``insert``, ``extend``, ``d.setdefault(k, idx)``,
  ``d[k] = idx``, then ``torch.add_(l[0], n)`` or ``l[0].add_(n)``;
* loop variables: ``for r in idx`` (a view of each row), ``for r in [idx]``, ``for k, r in enumerate(rows)``,
  comprehensions;
* ``getattr`` with a constant name (``getattr(t, "_indices")()``, ``getattr(idx, "add_")(n)``, nested) and
  parentheses that only group (``(idx).add_(n)``).

* a helper in another code file of the archive (``__torch__.helpers.idx(t)``), whatever the member order.

torch 2.13.0's ``torch.jit.load`` loaded each of these archives and calling the module segfaulted (to_dense()
wrote at the moved indices); every one scanned clean before this round. They are now LW-MODEL-031 high, like the
direct forms. Aliases through ``torch.ops.aten.<op>_`` overloads, ``index_put_``/``copy_``, a list literal, tuple
unpacking and ``torch.unbind`` were already reported; TorchScript has no ``setattr``.

Also a torch archive's ``byteorder`` record: torch.load byteswaps every storage of a "big" archive on a
little-endian host, while the scanner read sparse index values little-endian whatever the record said (a valid
sparse tensor under a "big" record scanned clean and loaded with indices like 2^56). Values are now read in the
declared order (LW-MODEL-017 high).
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from loopwarden.domain import Severity

_N = "100000000"
_S = "    t = torch.to_sparse(torch.eye(2))\n"
_R = "    return torch.to_dense(t)\n"
_IDX = "  def idx(self: __torch__.M, s: Tensor) -> Tensor:\n    return torch._indices(s)\n"

ATTACKS: dict[str, str] = {
    "return-helper": _S + f"    i = self.idx(t)\n    _0 = torch.add_(i, {_N})\n" + _R + _IDX,
    "return-helper-inline": _S + f"    _0 = torch.add_(self.idx(t), {_N})\n" + _R + _IDX,
    "return-helper-method": _S + f"    self.idx(t).add_({_N})\n" + _R + _IDX,
    "return-nested": _S
    + f"    i = self.outer(t)\n    _0 = torch.add_(i, {_N})\n"
    + _R
    + "  def outer(self: __torch__.M, s: Tensor) -> Tensor:\n    return self.idx(s)\n"
    + _IDX,
    "return-tuple": _S
    + f"    a, b = self.idx(t)\n    _0 = torch.add_(a, {_N})\n"
    + _R
    + "  def idx(self: __torch__.M, s: Tensor) -> Tuple[Tensor, int]:\n    return (torch._indices(s), 1)\n",
    "list-append": _S
    + "    l = annotate(List[Tensor], [])\n    _0 = torch.append(l, torch._indices(t))\n"
    + f"    _1 = torch.add_(l[0], {_N})\n"
    + _R,
    "list-append-method": _S
    + f"    l: List[Tensor] = []\n    l.append(t._indices())\n    l[0].add_({_N})\n"
    + _R,
    "list-insert": _S
    + f"    l: List[Tensor] = []\n    l.insert(0, torch._indices(t))\n    _1 = torch.add_(l[0], {_N})\n"
    + _R,
    "list-extend": _S
    + f"    l: List[Tensor] = []\n    l.extend([torch._indices(t)])\n    _1 = torch.add_(l[0], {_N})\n"
    + _R,
    "dict-item": _S
    + f"    d: Dict[str, Tensor] = {{}}\n    d['a'] = torch._indices(t)\n    _1 = torch.add_(d['a'], {_N})\n"
    + _R,
    "dict-setdefault": _S
    + "    d: Dict[str, Tensor] = {}\n    _0 = d.setdefault('a', torch._indices(t))\n"
    + f"    _1 = torch.add_(d['a'], {_N})\n"
    + _R,
    "dict-item-method": _S
    + f"    d: Dict[str, Tensor] = {{}}\n    d['a'] = t._indices()\n    d['a'].fill_({_N})\n"
    + _R,
    "for-list": _S + f"    for r in [torch._indices(t)]:\n      _1 = torch.add_(r, {_N})\n" + _R,
    "for-tensor-rows": _S + f"    for r in torch._indices(t):\n      _1 = torch.add_(r, {_N})\n" + _R,
    "for-enumerate": _S
    + f"    l = torch.unbind(torch._indices(t))\n    for k, r in enumerate(l):\n      _1 = torch.add_(r, {_N})\n"
    + _R,
    "comprehension": _S + f"    _1 = [torch.add_(r, {_N}) for r in [torch._indices(t)]]\n" + _R,
    # getattr with a constant name is the attribute itself (the compiler reads it so), and parentheses only group
    "getattr-accessor": _S + f"    _1 = torch.add_(getattr(t, '_indices')(), {_N})\n" + _R,
    "getattr-inplace": _S + f"    _1 = getattr(torch._indices(t), 'add_')({_N})\n" + _R,
    "getattr-var": _S + f"    i = getattr(t, '_indices')()\n    i += {_N}\n" + _R,
    "getattr-nested": _S + f"    _1 = getattr(getattr(t, '_indices')(), 'add_')({_N})\n" + _R,
    "getattr-append": _S
    + f"    l: List[Tensor] = []\n    getattr(l, 'append')(t._indices())\n    l[0].add_({_N})\n"
    + _R,
    "grouped-var": _S + f"    i = torch._indices(t)\n    (i).add_({_N})\n" + _R,
    "grouped-call": _S + f"    (torch._indices(t)).add_({_N})\n" + _R,
}
"""forward bodies (with helper methods after them) that move a sparse tensor's indices through an alias."""

BENIGN: dict[str, str] = {
    # a helper returning the index tensor (PyG's to_edge_index does so), only read by the caller
    "return-read": "    t = torch.to_sparse(x)\n    e = self.idx(t)\n"
    "    return torch.index_select(x, 0, torch.select(e, 0, 0))\n" + _IDX,
    # a list of index tensors and a loop over them, read only; a loop counter over range(size of the indices)
    "containers-read": "    t = torch.to_sparse(x)\n    l: List[Tensor] = []\n    l.append(torch._indices(t))\n"
    "    acc = torch.zeros([2])\n    for r in l:\n      acc = torch.add(acc, torch.sum(r))\n"
    "    n = 0\n    for k in range(torch.size(l[0], 1)):\n      n += 1\n    return torch.mul(acc, n)\n",
    # a list of the module's ordinary tensors changed in place
    "containers-dense": "    l: List[Tensor] = []\n    l.append(torch.clone(x))\n    _0 = torch.add_(l[0], 1)\n"
    "    for r in l:\n      _1 = torch.relu_(r)\n    return l[0]\n",
}


def _scan(path: Path) -> tuple[str, list[tuple[str, Severity]]]:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(path)], jobs=1)
    (target,) = report.targets
    return str(target.verdict), [(f.rule_id, f.severity) for f in target.findings]


def _archive(body: str) -> bytes:
    """A minimal archive as torch.jit.save writes one (constants, data.pkl, code) with ``forward``'s source
    ``body``: built without torch so the benchmark can reuse it; torch.jit.load compiles the code it holds."""
    code = (
        "class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n"
        "  _is_full_backward_hook : Optional[bool]\n"
        "  def forward(self: __torch__.M,\n    x: Tensor) -> Tensor:\n" + body
    )
    state = (
        b"\x80\x02c__torch__\nM\nq\x00)\x81}(X\x08\x00\x00\x00trainingq\x01\x88"
        b"X\x16\x00\x00\x00_is_full_backward_hookq\x02Nub."
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", state)
        z.writestr("archive/code/__torch__.py", code)
        z.writestr("archive/constants.pkl", b"\x80\x02).")
        z.writestr("archive/version", "10\n")
        z.writestr("archive/byteorder", "little")
    return out.getvalue()


def _scripted(body: str) -> bytes:
    """A module saved by the real torch.jit.save, its forward's source replaced by ``body``."""
    torch = pytest.importorskip("torch")

    class M(torch.nn.Module):  # type: ignore[misc]
        def forward(self, x: torch.Tensor) -> torch.Tensor:
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


_HELPERS = "def idx(s: Tensor) -> Tensor:\n  return torch._indices(s)\n"
_CROSS_FILE = (
    _S + f"    i = __torch__.helpers.idx(t)\n    _0 = torch.add_(i, {_N})\n" + _R
)  # the helper in another code file, archive/code/__torch__/helpers.py


def _two_files(body: str, helpers: str, *, helpers_first: bool) -> bytes:
    """:func:`_archive` with a second code file ``code/__torch__/helpers.py`` (a free function torch.jit.load
    compiles when the first file calls ``__torch__.helpers.<name>``), before or after the module's file."""
    src = zipfile.ZipFile(io.BytesIO(_archive(body)))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        if helpers_first:
            z.writestr("archive/code/__torch__/helpers.py", helpers)
        for info in src.infolist():
            z.writestr(info.filename, src.read(info.filename))
        if not helpers_first:
            z.writestr("archive/code/__torch__/helpers.py", helpers)
    return out.getvalue()


def _deep_chain(depth: int) -> str:
    """A forward moving the indices a chain of ``depth`` helpers returns (each returning the next one's result)."""
    body = _S + f"    i = self.h0(t)\n    _0 = torch.add_(i, {_N})\n" + _R
    for k in range(depth):
        body += f"  def h{k}(self: __torch__.M, s: Tensor) -> Tensor:\n    return self.h{k + 1}(s)\n"
    return body + f"  def h{depth}(self: __torch__.M, s: Tensor) -> Tensor:\n    return torch._indices(s)\n"


def bench_cases() -> dict[str, dict[str, bytes]]:
    cases = {f"r18_ts_alias_{name}": {"model.pt": _archive(body)} for name, body in sorted(ATTACKS.items())}
    cases["r18_ts_alias_cross_file"] = {"model.pt": _two_files(_CROSS_FILE, _HELPERS, helpers_first=False)}
    cases["r18_ts_alias_cross_file_first"] = {
        "model.pt": _two_files(_CROSS_FILE, _HELPERS, helpers_first=True)
    }
    cases["r18_sparse_big_byteorder"] = {"model.pt": _hand_big_coo()}
    return cases


@pytest.mark.parametrize("helpers_first", [False, True])
def test_sparse_index_alias_returned_by_another_code_file_is_reported(
    tmp_path: Path, helpers_first: bool
) -> None:
    """A helper in another code file returns the index tensor; the module's forward moves it. Scanned clean
    before round 18 (each code file was read alone); torch 2.13.0's torch.jit.load compiles both, and calling the
    module segfaults. The member order is the writer's: the caller's file is walked again when the helper's
    comes later."""
    path = tmp_path / "model.pt"
    path.write_bytes(_two_files(_CROSS_FILE, _HELPERS, helpers_first=helpers_first))
    _, findings = _scan(path)
    assert ("LW-MODEL-031", Severity.HIGH) in findings, findings
    if importlib.util.find_spec("torch") is None:
        return
    code = (
        "import sys, torch\nm = torch.jit.load(sys.argv[1])\nprint('loaded', flush=True)\nm(torch.eye(2))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=False, timeout=120, capture_output=True
    )
    assert b"loaded" in res.stdout, res
    assert res.returncode < 0, res


@pytest.mark.parametrize("helpers_first", [False, True])
def test_index_alias_from_another_code_file_only_read_stays_clean(
    tmp_path: Path, helpers_first: bool
) -> None:
    body = (
        "    t = torch.to_sparse(x)\n    i = __torch__.helpers.idx(t)\n    y = torch.relu_(torch.clone(x))\n"
    )
    body += "    return torch.index_select(y, 0, torch.select(i, 0, 0))\n"
    path = tmp_path / "model.pt"
    path.write_bytes(_two_files(body, _HELPERS, helpers_first=helpers_first))
    verdict, findings = _scan(path)
    assert verdict == "clean", findings


def test_deep_helper_chain_is_followed_or_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(_archive(_deep_chain(4)))
    _, findings = _scan(path)
    assert ("LW-MODEL-031", Severity.HIGH) in findings, findings
    path.write_bytes(_archive(_deep_chain(40)))
    verdict, _ = _scan(path)
    assert verdict != "clean"


@pytest.mark.parametrize("case", sorted(ATTACKS))
def test_sparse_index_alias_moved_through_returns_containers_loops_is_reported(
    tmp_path: Path, case: str
) -> None:
    """Each scanned clean before round 18."""
    for maker in (_archive, _scripted):
        path = tmp_path / "model.pt"
        path.write_bytes(maker(ATTACKS[case]))
        _, findings = _scan(path)
        assert ("LW-MODEL-031", Severity.HIGH) in findings, (maker.__name__, findings)


@pytest.mark.parametrize("case", sorted(ATTACKS))
@pytest.mark.parametrize("maker", [_archive, _scripted])
def test_sparse_index_alias_crashes_the_loaded_module(tmp_path: Path, case: str, maker: Any) -> None:
    """The real loader (torch 2.13.0): torch.jit.load loads each archive, and calling the module crashes the
    process (to_dense() writes at the moved indices)."""
    pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    path.write_bytes(maker(ATTACKS[case]))
    code = (
        "import sys, torch\nm = torch.jit.load(sys.argv[1])\nprint('loaded', flush=True)\nm(torch.eye(2))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=False, timeout=120, capture_output=True
    )
    assert b"loaded" in res.stdout, res
    assert res.returncode < 0, res  # killed by a signal (SIGSEGV)


@pytest.mark.parametrize("case", sorted(BENIGN))
def test_sparse_index_reads_through_returns_and_containers_stay_clean(tmp_path: Path, case: str) -> None:
    """Real torch.jit.save archives whose code reads index tensors through helpers, lists and loops; the module
    runs (torch 2.13.0)."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    path.write_bytes(_scripted(BENIGN[case]))
    verdict, findings = _scan(path)
    assert verdict == "clean", findings
    torch.jit.load(str(path))(torch.eye(2))


def test_real_scripted_module_with_sparse_helpers_stays_clean(tmp_path: Path) -> None:
    """A module torch.jit.script compiles from Python: a helper returning the adjacency's indices, a list of them,
    a loop over it."""
    torch = pytest.importorskip("torch")

    class Adj(torch.nn.Module):  # type: ignore[misc]
        def edges(self, adj: torch.Tensor) -> torch.Tensor:
            return adj.coalesce().indices()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            adj = x.to_sparse()
            parts: list[torch.Tensor] = []
            parts.append(self.edges(adj))
            out = torch.zeros_like(x)
            for e in parts:
                out = out.index_add(0, e[0], x.index_select(0, e[1]))
            return out

    path = tmp_path / "model.pt"
    torch.jit.save(torch.jit.script(Adj()), str(path))
    verdict, findings = _scan(path)
    assert verdict == "clean", findings
    torch.jit.load(str(path))(torch.eye(2))


# ---------------------------------------------- a torch archive's byteorder record and the sparse index values


def _byteorder_archive(tensor: Any, *, swap: bool) -> bytes:
    """torch.save's archive of ``tensor`` under key "s", its byteorder record made "big"; ``swap``: every record's
    elements byteswapped too (an archive a big-endian host writes, which loads to the same values)."""
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"s": tensor}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    widths = _storage_widths(src.read("archive/data.pkl")) if swap else {}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            key = info.filename.rsplit("/", 1)[-1]
            if swap and "/data/" in info.filename and key in widths:
                w = widths[key]
                data = b"".join(data[k : k + w][::-1] for k in range(0, len(data), w))
            z.writestr(info, data)
    return out.getvalue()


def _storage_widths(data: bytes) -> dict[str, int]:
    """Each storage key of a torch.save pickle with its element width, read from its persistent ids."""
    import pickle

    widths: dict[str, int] = {}

    class Reader(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            if name.endswith("Storage"):
                return {"LongStorage": 8, "FloatStorage": 4, "IntStorage": 4}[name]
            return lambda *a, **k: None

        def persistent_load(self, pid: Any) -> Any:
            widths[pid[2]] = pid[1]
            return None

    Reader(io.BytesIO(data)).load()
    return widths


_COO_PKL = (
    b"\x80\x02}q\x00X\x01\x00\x00\x00sq\x01ctorch._utils\n_rebuild_sparse_tensor\nq\x02ctorch.serialization\n"
    b"_get_layout\nq\x03X\x10\x00\x00\x00torch.sparse_cooq\x04\x85q\x05Rq\x06(ctorch._utils\n_rebuild_tensor_v2\n"
    b"q\x07((X\x07\x00\x00\x00storageq\x08ctorch\nLongStorage\nq\tX\x01\x00\x00\x000q\nX\x03\x00\x00\x00cpuq\x0bK"
    b"\x02tq\x0cQK\x00K\x01K\x02\x86q\rK\x02K\x01\x86q\x0e\x89ccollections\nOrderedDict\nq\x0f)Rq\x10tq\x11Rq"
    b"\x12h\x07((h\x08ctorch\nFloatStorage\nq\x13X\x01\x00\x00\x001q\x14h\x0bK\x02tq\x15QK\x00K\x02\x85q\x16K"
    b"\x01\x85q\x17\x89h\x0f)Rq\x18tq\x19Rq\x1actorch\nSize\nq\x1bK\x02\x85q\x1c\x85q\x1dRq\x1e\x89tq\x1f\x86q "
    b"Rq!s."
)
"""torch.save's (2.13.0) pickle of ``{"s": sparse_coo_tensor([[0, 1]], [1., 2.], (2,))}``."""


def _hand_big_coo() -> bytes:
    """The archive torch.save writes for :data:`_COO_PKL` (little-endian records), its byteorder record "big";
    built without torch for the benchmark."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", _COO_PKL)
        z.writestr("archive/.format_version", b"1")
        z.writestr("archive/.storage_alignment", b"64")
        z.writestr("archive/byteorder", b"big")
        z.writestr("archive/data/0", (0).to_bytes(8, "little") + (1).to_bytes(8, "little"))
        z.writestr("archive/data/1", b"\x00\x00\x80?\x00\x00\x00@")
        z.writestr("archive/version", b"3\n")
        z.writestr("archive/.data/serialization_id", b"0" * 40)
    return out.getvalue()


def _coo() -> Any:
    torch = pytest.importorskip("torch")
    return torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.tensor([1.0, 2.0]), (2,))


def _csr() -> Any:
    torch = pytest.importorskip("torch")
    return torch.eye(3).to_sparse_csr()


@pytest.mark.parametrize("make", [_coo, _csr, None])
def test_big_byteorder_record_over_little_endian_indices_is_reported(tmp_path: Path, make: Any) -> None:
    """torch.save's sparse tensor with the archive's byteorder record changed to "big": the scanner read the
    indices little-endian (valid, so the file scanned clean before round 18), while torch.load (weights_only and
    mmap too) byteswaps every storage of a "big" archive on a little-endian host, and the indices it gets are far
    outside the size (torch 2.13.0)."""
    path = tmp_path / "model.pt"
    path.write_bytes(_hand_big_coo() if make is None else _byteorder_archive(make(), swap=False))
    _, findings = _scan(path)
    assert ("LW-MODEL-017", Severity.HIGH) in findings, findings
    pytest.importorskip("torch")
    code = (
        "import sys, torch\nd = torch.load(sys.argv[1], weights_only=True)['s']\n"
        "i = d._indices() if d.layout == torch.sparse_coo else d.crow_indices()\n"
        "print(bool((i < 0).any() or (i > d.numel()).any()))\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(path)], check=False, timeout=120, capture_output=True
    )
    assert res.stdout.strip() == b"True", res


@pytest.mark.parametrize("make", [_coo, _csr])
def test_big_endian_archive_as_a_big_endian_host_writes_it_stays_clean(tmp_path: Path, make: Any) -> None:
    """Every record byteswapped with the byteorder record "big": torch loads the same tensor."""
    torch = pytest.importorskip("torch")
    tensor = make()
    path = tmp_path / "model.pt"
    path.write_bytes(_byteorder_archive(tensor, swap=True))
    verdict, findings = _scan(path)
    assert verdict == "clean", findings
    loaded = torch.load(str(path), weights_only=True)["s"]
    assert torch.equal(loaded.to_dense(), tensor.to_dense())
