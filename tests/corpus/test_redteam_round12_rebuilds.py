"""Round 12 of the internal red team: memory safety of torch's allow-listed tensor rebuilds and storage classes.

torch 2.13 bound-checks every rebuild this round tried (see the last section): nested tensors (sizes, strides and
offsets against the buffer, the parts' shapes and dtypes), per-tensor and per-channel quantized tensors (the int
storage against the geometry, scales/zero_points against the channel axis, in torch.load and torch.jit.load alike),
sub-byte quantized storages, wrapper subclasses (no data to reach), meta tensors, the conj/neg metadata bits and
``_rebuild_tensor_v3`` dtypes against their storage's bytes.

What it does not check is the allow-listed storage and tensor *classes* themselves, which loopwarden called clean:

1. ``torch.Tensor(n)``, ``torch.Tensor(torch.Size(...))``, ``torch.UntypedStorage(n)`` and
   ``torch.storage.TypedStorage(n)`` (called by REDUCE, or ``__new__``-ed by NEWOBJ) allocate memory they never fill.
   ``torch.load(..., weights_only=True)`` accepts them (they are its own allowed globals), and the loaded tensor holds
   whatever the loading process freed there: a string freed before the load showed up 1577 times in a 16 KiB tensor.
   The legacy ``torch.FloatStorage(n)`` ... do the same under ``weights_only=False``.
2. Their hidden keywords ``torch.Tensor(cdata=address)`` and ``torch.UntypedStorage(n, allocator=address)`` take a
   raw C++ pointer: torch.load (``weights_only=False``) and pickle.load crash (SIGSEGV) on any address the file gives
   (NEWOBJ_EX, ``copyreg.__newobj_ex__``, a ``functools.partial`` with keywords); ``weights_only=True`` has no
   NEWOBJ_EX.

Each case is built as bytes here and scanned. Where torch is installed, it runs cases in a child process with a
harmless effect only (a crash of the child, or reading its own memory).
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files
from test_redteam_round9_torch import _child, _int, _tuple, _u, assert_clean
from test_redteam_round10_torch import _HOOKS, _pid, _v2

from loopwarden.domain import Severity, Verdict


def _g(name: str) -> bytes:
    module, _, qual = name.rpartition(".")
    return f"c{module}\n{qual}\n".encode()


def _long(n: int) -> bytes:
    return b"\x8a\x08" + struct.pack("<q", n)  # LONG1 of 8 bytes


def _size(*dims: int) -> bytes:
    return _g("torch.Size") + _tuple(_tuple(*map(_int, dims))) + b"R"


def _archive(pkl: bytes, records: dict[str, bytes] | None = None) -> bytes:
    """torch.save's zip layout around ``pkl`` (a whole pickle: protocol, object, STOP)."""
    files = {"archive/data.pkl": pkl, "archive/byteorder": b"little", "archive/version": b"3\n"}
    files.update({f"archive/data/{k}": v for k, v in (records or {}).items()})
    return cp.zip_of(files, method=zipfile.ZIP_STORED)


def _p2(body: bytes) -> bytes:
    return b"\x80\x02" + body + b"."


def _newobj_ex(cls: str, args: bytes, keywords: dict[str, bytes]) -> bytes:
    """Protocol 4's ``cls.__new__(cls, *args, **keywords)``."""
    kw = b"}" + b"".join(_u(k) + v + b"s" for k, v in keywords.items())
    return b"\x80\x04" + _g(cls) + args + kw + b"\x92."


# --- 1. allocations never filled: the tensor holds the loading process's freed memory ---------------------------

_UNFILLED = {
    # torch.load(weights_only=True) accepts each of these five
    "tensor-size-int": _p2(_g("torch.Tensor") + _tuple(_int(4096)) + b"R"),
    "tensor-two-ints": _p2(_g("torch.Tensor") + _tuple(_int(64), _int(64)) + b"R"),
    "tensor-torch-size": _p2(_g("torch.Tensor") + _tuple(_size(64, 64)) + b"R"),
    "tensor-newobj": _p2(_g("torch.Tensor") + _tuple(_int(4096)) + b"\x81"),
    "untyped-storage": _p2(_g("torch.storage.UntypedStorage") + _tuple(_int(16384)) + b"R"),
    "untyped-storage-newobj": _p2(_g("torch.storage.UntypedStorage") + _tuple(_int(16384)) + b"\x81"),
    "tensor-over-untyped-storage": _p2(
        _g("torch.Tensor") + _tuple(_g("torch.storage.UntypedStorage") + _tuple(_int(16384)) + b"R") + b"R"
    ),
    "rebuilt-over-typed-storage": _p2(
        _g("torch._utils._rebuild_tensor_v2")
        + _tuple(
            _g("torch.storage.TypedStorage") + _tuple(_int(4096)) + b"R",
            _int(0),
            _tuple(_int(4096)),
            _tuple(_int(1)),
            b"\x89",
            _HOOKS,
        )
        + b"R"
    ),
    "from-type-v2": _p2(
        _g("torch._tensor._rebuild_from_type_v2")
        + _tuple(_g("torch.Tensor"), _g("torch.Tensor"), _tuple(_int(4096)), b"}")
        + b"R"
    ),
    # weights_only=False (torch.load of an older file, pickle.load)
    "untyped-storage-torch-name": _p2(_g("torch.UntypedStorage") + _tuple(_int(16384)) + b"R"),
    "legacy-typed-storage": _p2(_g("torch.FloatStorage") + _tuple(_int(4096)) + b"R"),
    "copyreg-reconstructor": _p2(
        _g("copyreg._reconstructor") + _tuple(_g("torch.Tensor"), _g("torch.Tensor"), _int(4096)) + b"R"
    ),
    "copyreg-newobj": _p2(_g("copyreg.__newobj__") + _tuple(_g("torch.Tensor"), _int(4096)) + b"R"),
    "partial": _p2(_g("functools.partial") + _tuple(_g("torch.Tensor"), _int(4096)) + b"R" + b")R"),
}


@pytest.mark.parametrize("case", sorted(_UNFILLED))
def test_allocations_never_filled_are_reported(tmp_path: Path, case: str) -> None:
    """Each was called clean; each returns a tensor (or storage) of memory the file never filled."""
    t = scan_files(tmp_path, {"model.pt": _archive(_UNFILLED[case])})
    assert_caught(t, "LW-MODEL-017")
    assert any("allocates memory it never fills" in f.message for f in t[0].findings), t[0].findings


def test_allocation_finding_names_the_class_and_the_sizes(tmp_path: Path) -> None:
    t = scan_files(tmp_path, {"model.pt": _archive(_UNFILLED["tensor-torch-size"])})[0]
    assert any(f.message.startswith("torch.Tensor(64, 64) allocates") for f in t.findings), t.findings


_FILLED = {
    # data torch copies, a storage it wraps, nothing at all, or nothing to allocate
    "data-list": _p2(_g("torch.Tensor") + _tuple(b"](" + _int(1) + _int(2) + b"e") + b"R"),
    "data-bytes": _p2(_g("torch.UntypedStorage") + _tuple(b"C\x04abcd") + b"R"),
    "no-arguments": _p2(_g("torch.Tensor") + b")R"),
    "zero-size": _p2(_g("torch.Tensor") + _tuple(_int(0), _int(4096)) + b"R"),
    "over-a-saved-storage": _p2(_g("torch.Tensor") + _tuple(_pid("0", "FloatStorage", 4)) + b"R"),
    "over-a-rebuilt-tensor": _p2(_g("torch.Tensor") + _tuple(_v2("0", "FloatStorage", 4, (4,), (1,))) + b"R"),
}


@pytest.mark.parametrize("case", sorted(_FILLED))
def test_allocating_classes_over_data_stay_clean(tmp_path: Path, case: str) -> None:
    records = {"0": struct.pack("<4f", 1.0, 2.0, 3.0, 4.0)}
    assert_clean(scan_files(tmp_path, {"model.pt": _archive(_FILLED[case], records)}))


_COMPUTED = {
    # torch.Size(tuple([4096])): the size computed at load time
    "computed-size": _p2(
        _g("torch.Tensor")
        + _tuple(_g("torch.Size") + _tuple(_g("builtins.tuple") + b"]" + _int(4096) + b"a\x85R") + b"R")
        + b"R"
    ),
    # torch.Tensor(OrderedDict()): an argument the VM cannot read back
    "computed-argument": _p2(_g("torch.Tensor") + _tuple(_g("collections.OrderedDict") + b")R") + b"R"),
    # cls.__new__(cls, **dict(...)): keywords made at load time
    "computed-keywords": b"\x80\x04" + _g("torch.Tensor") + b")" + _g("builtins.dict") + b")R" + b"\x92.",
}


@pytest.mark.parametrize("case", sorted(_COMPUTED))
def test_allocating_classes_over_computed_arguments_are_unverified(tmp_path: Path, case: str) -> None:
    t = scan_files(tmp_path, {"model.pt": _archive(_COMPUTED[case])})[0]
    assert t.verdict is not Verdict.CLEAN, t
    assert t.verdict is Verdict.UNVERIFIED or (t.max_severity() or Severity.INFO) >= Severity.HIGH, t
    if t.verdict is Verdict.UNVERIFIED:
        assert "never fills" in (t.reason or ""), t


# --- 2. raw pointers: cdata= and allocator= ------------------------------------------------------------------------

_POINTERS = {
    "tensor-cdata": _newobj_ex("torch.Tensor", b")", {"cdata": _long(0x41414141)}),
    "untyped-storage-allocator": _newobj_ex(
        "torch.UntypedStorage", _tuple(_int(16)), {"allocator": _long(0x41414141)}
    ),
    "storage-module-allocator": _newobj_ex(
        "torch.storage.UntypedStorage", _tuple(_int(16)), {"allocator": _long(0x41414141)}
    ),
    "copyreg-newobj-ex": _p2(
        _g("copyreg.__newobj_ex__") + _g("torch.Tensor") + b")}" + _u("cdata") + _long(0x41414141) + b"s\x87R"
    ),
    # functools.partial(torch.Tensor) given its keywords by BUILD, then called
    "partial-keywords": _p2(
        _g("functools.partial")
        + _tuple(_g("torch.Tensor"))
        + b"R"
        + _tuple(_g("torch.Tensor"), b")", b"}" + _u("cdata") + _long(0x41414141) + b"s", b"N")
        + b"b)R"
    ),
}


@pytest.mark.parametrize("case", sorted(_POINTERS))
def test_pointer_keywords_are_critical(tmp_path: Path, case: str) -> None:
    """Each was called clean; torch takes the integer as the address of a C++ object (a crash, or a call through a
    pointer the file chose)."""
    t = scan_files(tmp_path, {"model.pt": _archive(_POINTERS[case])})
    assert_caught(t, "LW-MODEL-017", at_least=Severity.CRITICAL)


# --- real torch ---------------------------------------------------------------------------------------------------

_LEAK = """
import sys, warnings, torch
warnings.simplefilter("ignore")
secret = [bytes(b"TOPSECRET!" * 1638) for _ in range(64)]  # 16 KiB each, freed before the load
del secret
for path in sys.argv[1:]:
    t = torch.load(path, weights_only=True)
    s = t.untyped_storage() if isinstance(t, torch.Tensor) else t
    raw = bytes(s.tolist())
    print(path.rsplit("/", 1)[-1], len(raw), sum(1 for c in raw if c), raw.count(b"TOPSECRET"))
"""


def test_unfilled_allocations_under_real_torch(tmp_path: Path) -> None:
    """torch.load(weights_only=True) accepts each and returns memory the file never filled: not all zero, and in
    torch 2.13 the freed secret itself (1577 times in 16 KiB)."""
    pytest.importorskip("torch")
    cases = [
        "tensor-size-int",
        "tensor-torch-size",
        "tensor-newobj",
        "untyped-storage",
        "rebuilt-over-typed-storage",
    ]
    paths = []
    for case in cases:
        (tmp_path / f"{case}.pt").write_bytes(_archive(_UNFILLED[case]))
        paths.append(str(tmp_path / f"{case}.pt"))
    ran = _child(_LEAK, *paths, cwd=tmp_path / "run")
    assert ran.returncode == 0, ran.stderr
    rows = [line.split() for line in ran.stdout.splitlines()]
    assert [r[0] for r in rows] == [f"{c}.pt" for c in cases], ran.stdout
    for name, size, nonzero, _secret in rows:
        assert int(size) == 16384 and int(nonzero) > 0, (name, ran.stdout)


_POINTER_LOAD = """
import sys, warnings, torch
warnings.simplefilter("ignore")
try:
    torch.load(sys.argv[1], weights_only=sys.argv[2] == "1")
except Exception as e:
    print("refused", type(e).__name__)
    sys.exit(3)
print("loaded")
"""


@pytest.mark.parametrize("case", ["tensor-cdata", "untyped-storage-allocator"])
def test_pointer_keywords_under_real_torch(tmp_path: Path, case: str) -> None:
    """torch.load(weights_only=False) dereferences the address (SIGSEGV); weights_only=True refuses NEWOBJ_EX."""
    pytest.importorskip("torch")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(_archive(_POINTERS[case]))
    ran = _child(_POINTER_LOAD, str(bad), "0", cwd=tmp_path / "run")
    assert ran.returncode < 0, (ran.returncode, ran.stdout, ran.stderr)
    ran = _child(_POINTER_LOAD, str(bad), "1", cwd=tmp_path / "run")
    assert ran.returncode == 3, (ran.returncode, ran.stdout, ran.stderr)


# --- what torch itself writes stays clean -------------------------------------------------------------------------

_SAVE_BENIGN = """
import sys, warnings, torch
warnings.simplefilter("ignore")
w = torch.randn(4, 6)
p = torch.nn.Parameter(torch.randn(3, 2))
p.note = "kept"  # a Parameter with state: _rebuild_parameter_with_state
objs = {
    "per-tensor": torch.quantize_per_tensor(w, 0.1, 3, torch.quint8),
    "per-tensor-qint32": torch.quantize_per_tensor(w, 0.01, 0, torch.qint32),
    "per-channel": torch.quantize_per_channel(w, torch.rand(4) + 0.1, torch.arange(4), 0, torch.qint8),
    "per-channel-axis1": torch.quantize_per_channel(
        w, torch.rand(6) + 0.1, torch.zeros(6, dtype=torch.long), 1, torch.qint8
    ),
    "per-channel-float-qparams": torch.quantize_per_channel(
        w, torch.rand(4) + 0.1, torch.rand(4), 0, torch.quint8
    ),
    "quint4x2": torch.quantize_per_channel(torch.rand(4, 6), torch.rand(4) + 0.1, torch.rand(4), 0, torch.quint4x2),
    "quint2x4": torch.quantize_per_channel(torch.rand(4, 8), torch.rand(4) + 0.1, torch.rand(4), 0, torch.quint2x4),
    "transposed-quantized": torch.quantize_per_tensor(w, 0.1, 3, torch.qint8).t(),
    "nested": torch.nested.nested_tensor([torch.randn(2, 3), torch.randn(4, 3)]),
    "nested-1d": torch.nested.nested_tensor([torch.arange(3.0), torch.arange(5.0), torch.arange(0.0)]),
    "nested-view": torch.nested.nested_tensor([torch.randn(2, 3), torch.randn(4, 3)]).transpose(1, 2),
    "parameter": torch.nn.Parameter(w),
    "parameter-with-state": p,
    "parameter-no-grad": torch.nn.Parameter(torch.arange(6), requires_grad=False),
    "meta": torch.empty(3, 4, device="meta"),
    "meta-strided": torch.empty_strided((3, 4), (1, 3), device="meta"),
    "meta-parameter": torch.nn.Parameter(torch.empty(5, device="meta")),
    "conj": torch.randn(3, dtype=torch.complex64).conj(),
    "neg": torch.randn(3, dtype=torch.complex64).conj().imag,
    "bool": torch.tensor([True, False, True]),
    "complex128": torch.randn(2, 2, dtype=torch.complex128),
    "complex32": torch.randn(2, 2).to(torch.complex32),
    "float8": torch.randn(8).to(torch.float8_e4m3fn),
    "float8-e5m2": torch.randn(8).to(torch.float8_e5m2),
    "uint16": torch.arange(8).to(torch.uint16),
    "bfloat16": torch.randn(4, dtype=torch.bfloat16),
    "storage": torch.arange(4.0).untyped_storage(),
    "typed-storage": torch.arange(4.0).storage(),
    "module": torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()).state_dict(),
}
torch.save(objs, sys.argv[1])
loaded = torch.load(sys.argv[1], weights_only=True)
for k, v in objs.items():
    got = loaded[k]
    if isinstance(v, torch.Tensor) and v.is_quantized:
        assert torch.equal(got.int_repr(), v.int_repr()), k
        assert torch.equal(got.dequantize(), v.dequantize()), k
    elif isinstance(v, torch.Tensor) and v.is_nested:
        assert all(torch.equal(a, b) for a, b in zip(got.unbind(), v.unbind())), k
    elif isinstance(v, torch.Tensor) and v.device.type == "meta":
        assert got.shape == v.shape and got.stride() == v.stride(), k
"""


def test_what_torch_save_writes_stays_clean(tmp_path: Path) -> None:
    """Quantized (per-tensor, per-channel, float qparams, sub-byte), nested, parameter, meta and new-dtype tensors
    and storages as torch.save writes them: each loads back with weights_only=True and is clean."""
    pytest.importorskip("torch")
    good = tmp_path / "good.pt"
    made = _child(_SAVE_BENIGN, str(good), cwd=tmp_path / "make")
    assert made.returncode == 0, made.stderr
    t = scan_files(tmp_path / "scan", {"model.pt": good.read_bytes()})
    assert_clean(t)
    assert not t[0].findings, t[0].findings


# --- candidates torch 2.13 refuses (the evidence for not checking them) ------------------------------------------


def _nested(offsets: list[int], sizes: list[int], buffer: int = 4) -> bytes:
    """``_rebuild_nested_tensor`` of a float32 buffer of ``buffer`` elements and 1-D components of ``sizes``."""
    n = len(sizes)
    return _p2(
        _g("torch._utils._rebuild_nested_tensor")
        + _tuple(
            _v2("0", "FloatStorage", buffer, (buffer,), (1,)),
            _v2("1", "LongStorage", n, (n, 1), (1, 1)),
            _v2("2", "LongStorage", n, (n, 1), (1, 1)),
            _v2("3", "LongStorage", len(offsets), (len(offsets),), (1,)),
        )
        + b"R"
    )


def _nested_records(offsets: list[int], sizes: list[int], buffer: int = 4) -> dict[str, bytes]:
    n = len(sizes)
    return {
        "0": struct.pack(f"<{buffer}f", *([1.0] * buffer)),
        "1": struct.pack(f"<{n}q", *sizes),
        "2": struct.pack(f"<{n}q", *([1] * n)),
        "3": struct.pack(f"<{len(offsets)}q", *offsets),
    }


def _per_channel(scales: int, axis: int) -> bytes:
    """A 4 x 4 qint8 tensor quantized per channel with ``scales`` scales and zero points along ``axis``."""
    qparams = _tuple(
        _g("torch.per_channel_affine"),
        _v2("1", "DoubleStorage", scales, (scales,), (1,)),
        _v2("2", "LongStorage", scales, (scales,), (1,)),
        _int(axis),
    )
    return _p2(
        _g("torch._utils._rebuild_qtensor")
        + _tuple(
            _pid("0", "QInt8Storage", 16),
            _int(0),
            _size(4, 4),
            _tuple(_int(4), _int(1)),
            qparams,
            b"\x89",
            _HOOKS,
        )
        + b"R"
    )


def _per_channel_records(scales: int) -> dict[str, bytes]:
    return {"0": bytes(16), "1": struct.pack(f"<{scales}d", *([0.5] * scales)), "2": bytes(8 * scales)}


def _wrapper(cls: str) -> bytes:
    """``_rebuild_wrapper_subclass`` of ``cls`` at a storage offset of 2**40 (its data pointer is null + offset)."""
    return _p2(
        _g("torch._utils._rebuild_wrapper_subclass")
        + _tuple(
            _g(cls),
            _g("torch.float32"),
            _size(4),
            _tuple(_int(1)),
            _long(1 << 40),
            _g("torch.strided"),
            _u("cpu"),
            b"\x89",
        )
        + b"R"
    )


_REFUSED = {
    "nested-offset-past-buffer": (
        _nested([0, 1 << 24], [2, 2]),
        _nested_records([0, 1 << 24], [2, 2]),
        "t.unbind()",
    ),
    "nested-size-past-buffer": (
        _nested([0, 2], [1 << 20, 2]),
        _nested_records([0, 2], [1 << 20, 2]),
        "t.unbind()",
    ),
    "nested-offsets-short": (_nested([0], [2, 2]), _nested_records([0], [2, 2]), "t.to_padded_tensor(0)"),
    "per-channel-scales-short": (_per_channel(1, 0), _per_channel_records(1), "t.dequantize()"),
    "per-channel-axis-out-of-range": (_per_channel(4, 5), _per_channel_records(4), "t.dequantize()"),
    "quantized-storage-short": (
        _p2(
            _g("torch._utils._rebuild_qtensor")
            + _tuple(
                _pid("0", "QUInt8Storage", 4),
                _int(0),
                _size(1 << 20),
                _tuple(_int(1)),
                _tuple(_g("torch.per_tensor_affine"), b"G" + struct.pack(">d", 0.5), _int(0)),
                b"\x89",
                _HOOKS,
            )
            + b"R"
        ),
        {"0": bytes(4)},
        "t.dequantize()",
    ),
    "wrapper-subclass-of-tensor": (_wrapper("torch.Tensor"), {}, "t.sum()"),
}

_TRY_REFUSED = """
import sys, warnings, torch
warnings.simplefilter("ignore")
for path, action in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        t = torch.load(path, weights_only=True)
        eval(action)
        print(path.rsplit("/", 1)[-1], "ran")
    except Exception as e:
        print(path.rsplit("/", 1)[-1], "refused", type(e).__name__)
"""


def test_rebuilds_torch_refuses_under_real_torch(tmp_path: Path) -> None:
    """Nested offsets/sizes past the buffer, offsets shorter than the components, per-channel scales shorter than
    the axis or an axis out of range, a quantized storage shorter than its geometry, a wrapper subclass of a class
    without __torch_dispatch__: torch 2.13 raises on each (at the load or the first use), with no crash."""
    pytest.importorskip("torch")
    argv = []
    for case, (pkl, records, action) in _REFUSED.items():
        (tmp_path / f"{case}.pt").write_bytes(_archive(pkl, records))
        argv += [str(tmp_path / f"{case}.pt"), action]
    ran = _child(_TRY_REFUSED, *argv, cwd=tmp_path / "run")
    assert ran.returncode == 0, ran.stderr
    outcome = dict(line.split(" ", 1) for line in ran.stdout.splitlines())
    assert set(outcome) == {f"{c}.pt" for c in _REFUSED}, ran.stdout
    assert all(v.startswith("refused") for v in outcome.values()), outcome
