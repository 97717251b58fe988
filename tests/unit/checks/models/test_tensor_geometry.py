"""Tensor metadata against its storage (LW-MODEL-017, CVE-2026-24747).

``torch.load`` (weights_only too) builds each tensor over the storage a persistent id names; a tensor whose offset,
sizes and strides reach past the storage's declared elements, a storage declared larger than its record, or item
assignment on a tensor reads and writes memory the tensor does not own. torch.save never writes any of these, so
every real checkpoint shape (views, transposes, expands, empty and 0-d tensors, every dtype, quantized tensors,
parameters, legacy files) must stay clean.
"""

from __future__ import annotations

import io
import struct
import zipfile

import pytest
from test_containers_unit import scan_bytes

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes


def _bu(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _i(v: int) -> bytes:
    return b"J" + struct.pack("<i", v)


def _tuple(*vals: int) -> bytes:
    return b"(" + b"".join(_i(v) for v in vals) + b"t"


def _pid(numel: int, kind: str = "FloatStorage", key: str = "0", legacy: bool = False) -> bytes:
    view = b"N" if legacy else b""
    return (
        b"("
        + _bu("storage")
        + f"ctorch\n{kind}\n".encode()
        + _bu(key)
        + _bu("cpu")
        + _i(numel)
        + view
        + b"tQ"
    )


def _rebuild(
    offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *,
    numel: int = 16,
    fn: str = "_rebuild_tensor_v2",
    legacy: bool = False,
    kind: str = "FloatStorage",
) -> bytes:
    tail = b"\x89ccollections\nOrderedDict\n)R" if fn == "_rebuild_tensor_v2" else b""
    return (
        f"ctorch._utils\n{fn}\n(".encode()
        + _pid(numel, kind=kind, legacy=legacy)
        + _i(offset)
        + _tuple(*size)
        + _tuple(*stride)
        + tail
        + b"tR"
    )


def _sd(tensor: bytes) -> bytes:
    return b"\x80\x02}" + _bu("w") + tensor + b"s."


def _torch_zip(pkl: bytes, records: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", b"little")
        for key, data in (records if records is not None else {"0": bytes(64)}).items():
            zf.writestr(f"archive/data/{key}", data)
        zf.writestr("archive/version", b"3\n")
    return buf.getvalue()


def _rules(data: bytes) -> set[str]:
    return {f.rule_id for f in analyze_pickle_bytes(data).findings}


@pytest.mark.parametrize(
    ("offset", "size", "stride", "numel", "fn"),
    [
        (16, (1,), (1,), 16, "_rebuild_tensor_v2"),  # offset at the end
        (0, (17,), (1,), 16, "_rebuild_tensor_v2"),  # one element too many
        (0, (4, 4), (4, 2), 16, "_rebuild_tensor_v2"),  # a stride that walks out
        (10, (2, 4), (1, 2), 16, "_rebuild_tensor"),  # the v1 rebuild
        (0, (-1,), (1,), 16, "_rebuild_tensor_v2"),  # negative size
        (0, (4,), (-1,), 16, "_rebuild_tensor_v2"),  # negative stride
        (-4, (4,), (1,), 16, "_rebuild_tensor_v2"),  # negative offset
        (0, (2, 2), (1,), 16, "_rebuild_tensor_v2"),  # ranks disagree
        (0, (1 << 20, 1 << 20), (1 << 20, 1), 1 << 30, "_rebuild_tensor_v2"),  # huge, still past the end
    ],
)
def test_tensor_outside_its_storage_is_reported(
    offset: int, size: tuple[int, ...], stride: tuple[int, ...], numel: int, fn: str
) -> None:
    assert "LW-MODEL-017" in _rules(_sd(_rebuild(offset, size, stride, numel=numel, fn=fn)))


@pytest.mark.parametrize("spelling", ["list", "torch.Size"])
def test_sizes_as_a_list_or_torch_size_are_checked(spelling: str) -> None:
    def seq(*vals: int) -> bytes:
        items = b"".join(_i(v) for v in vals)
        if spelling == "list":
            return b"(" + items + b"l"
        return b"ctorch\nSize\n(" + b"(" + items + b"t" + b"tR"

    def rebuild(size: int) -> bytes:
        return b"ctorch._utils\n_rebuild_tensor_v2\n(" + _pid(16) + _i(0) + seq(size) + seq(1) + b"\x89NtR"

    assert "LW-MODEL-017" in _rules(_sd(rebuild(17)))
    assert "LW-MODEL-017" not in _rules(_sd(rebuild(16)))


def test_legacy_storage_ids_are_checked_too() -> None:
    assert "LW-MODEL-017" in _rules(_sd(_rebuild(0, (32,), (1,), legacy=True)))
    assert "LW-MODEL-017" not in _rules(_sd(_rebuild(0, (16,), (1,), legacy=True)))


@pytest.mark.parametrize(
    ("offset", "size", "stride"),
    [
        (0, (16,), (1,)),
        (0, (4, 4), (4, 1)),
        (0, (4, 4), (1, 4)),  # transposed
        (5, (3, 2), (4, 1)),  # a view with an offset
        (15, (), ()),  # 0-d
        (0, (5, 4), (0, 1)),  # expanded: stride 0
        (99, (0, 3), (3, 1)),  # empty: touches nothing, whatever the offset
    ],
)
def test_tensor_inside_its_storage_is_clean(
    offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> None:
    res = analyze_pickle_bytes(_sd(_rebuild(offset, size, stride)))
    assert not res.findings and res.unverified is None, res.findings


@pytest.mark.parametrize(
    "tail",
    [
        _i(0x100000) + b"G" + struct.pack(">d", 1.0) + b"s",  # SETITEM
        b"(" + _i(0x100000) + b"G" + struct.pack(">d", 1.0) + b"u",  # SETITEMS
        _i(7) + b"a",  # APPEND
        b"(" + _i(7) + b"e",  # APPENDS
        b"(" + _i(7) + b"\x90",  # ADDITEMS
    ],
)
def test_item_assignment_on_a_tensor_is_reported(tail: bytes) -> None:
    tensor = _rebuild(0, (16,), (1,))
    assert "LW-MODEL-017" in _rules(b"\x80\x04" + tensor + tail + b".")
    # through a memo copy, and on the Parameter that wraps it
    via_memo = b"\x80\x04" + tensor + b"\x94" + b"0" + b"h\x00" + tail + b"."
    assert "LW-MODEL-017" in _rules(via_memo)
    param = b"ctorch._utils\n_rebuild_parameter\n(" + tensor + b"\x89ccollections\nOrderedDict\n)RtR"
    assert "LW-MODEL-017" in _rules(b"\x80\x04" + param + tail + b".")


def test_item_assignment_on_an_ordered_dict_stays_clean() -> None:
    od = b"ccollections\nOrderedDict\n)R" + b"(" + _bu("w") + _rebuild(0, (16,), (1,)) + b"u"
    res = analyze_pickle_bytes(b"\x80\x02" + od + b".")
    assert not res.findings, res.findings


@pytest.mark.parametrize(
    ("kind", "numel", "record", "caught"),
    [
        ("FloatStorage", 16, 64, False),
        ("FloatStorage", 16, 63, True),
        ("DoubleStorage", 16, 64, True),
        ("HalfStorage", 32, 64, False),
        ("UntypedStorage", 65, 64, True),
        ("ByteStorage", 64, 64, False),
    ],
)
def test_storage_larger_than_its_record_is_reported(kind: str, numel: int, record: int, caught: bool) -> None:
    data = _torch_zip(_sd(_rebuild(0, (1,), (1,), numel=numel, kind=kind)), {"0": bytes(record)})
    ctx = scan_bytes(data, "model.pt")
    assert ("LW-MODEL-017" in {f.rule_id for f in ctx.findings}) is caught, ctx.findings


def test_real_torch_checkpoints_stay_clean() -> None:
    torch = pytest.importorskip("torch")
    base = torch.arange(60, dtype=torch.float32).reshape(3, 4, 5)
    objects = {
        "views": {
            "a": base,
            "b": base[1:, ::2, 1:],
            "t": base.transpose(0, 2),
            "e": torch.ones(3).expand(4, 3),
            "empty": torch.empty(0, 5),
            "scalar": torch.tensor(3.0),
            "slice": base.view(-1)[7:19],
        },
        "dtypes": {
            k: torch.ones(3, dtype=getattr(torch, k)) for k in ["float64", "bfloat16", "int8", "bool"]
        },
        "param": torch.nn.Parameter(torch.randn(3, 3)),
        "module": torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4)).state_dict(),
    }
    for name, obj in objects.items():
        for legacy in (False, True):
            buf = io.BytesIO()
            torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
            ctx = scan_bytes(buf.getvalue(), f"{name}.pt")
            assert not ctx.findings and not ctx.unverified, (name, legacy, ctx.findings, ctx.unverified)
