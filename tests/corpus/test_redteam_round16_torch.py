"""Round 16: the edges of what round 16 admitted (jagged nested tensors, ``mark_dynamic`` records, autocast) and
a decision kept (a ``torch.compile``'d module saved whole stays critical).

A jagged nested tensor is admitted only as torch.save writes it: ``_rebuild_from_type_v2(_rebuild_njt,
NestedTensor, ({values, offsets, lengths, _ragged_idx, _metadata_cache, requires_grad},), state)``.
``NestedTensor(**kwargs)`` checks none of its parts against each other (torch 2.13: it computes its sizes from the
values and the offsets' length, nothing reads the offsets' values until an operation does). With torch 2.13 on CPU
no inconsistent part crashed ``torch.load(weights_only=False)`` or the operations tried (to_padded_tensor, unbind,
sum, softmax, max, mean, linear, SDPA, elementwise): offsets past the values or going down fail with RuntimeError,
a ragged dimension past the values' reads clamped indices. They stay reported (LW-MODEL-017 high), as inconsistent
geometry is elsewhere: the ragged index outside the values' dimensions, offsets or lengths outside the values'
ragged dimension or going down, offsets that are not 1-D, lengths that do not match the offsets, a state that sets
``_size``/``_strides`` or swaps a part, another pairing of rebuild and class, unexpected keywords, a metadata cache
holding anything but tensors or a cached ``max_seqlen`` longer than the values (``to_padded_tensor`` and the
reductions allocate ``batch x max_seqlen`` from it: 2**33 failed to allocate in torch 2.13, a smaller one succeeds
and takes the memory), and the class called directly.

``torch.save(torch.compile(model))`` pickles an ``OptimizedModule`` whose ``OptimizeContext`` holds the compile
callback and its backend's options. Loading it runs ``OptimizedModule.__init__`` (which only wraps the module), but
the first forward call compiles with the pickled options: ``options={"cpp.cxx": (path,)}`` made torch 2.13's
inductor run that program (confirmed: a script named there wrote a marker on the loaded module's first call). The
option is a plain string, no GLOBAL the scanner could judge, so the classes stay critical.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

from loopwarden.domain import Severity


def _findings(path: Path) -> list[tuple[str, Severity, str]]:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(path)], jobs=1)
    return [
        (f.rule_id, f.severity, str(f.evidence.get("subject", "")))
        for t in report.targets
        for f in t.findings
    ]


class _Reduced:
    """An object pickled as the reduce tuple it is given (how the crafted jagged tensors are written)."""

    def __init__(self, reduced: tuple[Any, ...]) -> None:
        self.reduced = reduced

    def __reduce_ex__(self, proto: object) -> tuple[Any, ...]:
        return self.reduced


def _njt(case: str) -> Any:
    import torch
    from torch.nested._internal.nested_tensor import NestedTensor, _rebuild_njt

    values = torch.arange(18.0).reshape(6, 3)
    kw: dict[str, Any] = {
        "values": values,
        "offsets": torch.tensor([0, 2, 6]),
        "lengths": None,
        "_ragged_idx": 1,
        "_metadata_cache": {},
        "requires_grad": False,
    }
    state: dict[str, Any] = {}
    func: Any = _rebuild_njt
    cls: Any = NestedTensor
    if case == "ragged-idx-0":
        kw["_ragged_idx"] = 0
    elif case == "ragged-idx-past":
        kw["_ragged_idx"] = 5
    elif case == "ragged-dim-too-short":
        kw["_ragged_idx"] = 2  # the values' second dimension has 3 rows, the offsets reach 6
    elif case == "offsets-past-values":
        kw["offsets"] = torch.tensor([0, 2, 1 << 28])
    elif case == "offsets-negative":
        kw["offsets"] = torch.tensor([-4, 2, 6])
    elif case == "offsets-going-down":
        kw["offsets"] = torch.tensor([0, 5, 2])
    elif case == "offsets-2d":
        kw["offsets"] = torch.tensor([[0, 2, 6]])
    elif case == "lengths-past-values":
        kw["lengths"] = torch.tensor([2, 1 << 20])
    elif case == "lengths-count":
        kw["lengths"] = torch.tensor([2, 2, 2])
    elif case == "state-size":
        state = {"_size": (2, 1000, 3), "_strides": (3000, 3, 1)}
    elif case == "state-swaps-values":
        state = {"_values": torch.ones(100, 3)}
    elif case == "unexpected-keyword":
        kw["extra"] = 1
    elif case == "cache-not-tensor":
        kw["_metadata_cache"] = {"max_seqlen": torch.nn.functional.relu}
    elif case == "cache-seqlen-past-values":
        # torch keeps a sequence length as the shape of a (length, 0) tensor; to_padded_tensor allocates from it
        kw["_metadata_cache"] = {"max_seqlen": torch.empty(1 << 33, 0), "min_seqlen": torch.empty(2, 0)}
    elif case == "plain-rebuild-as-nested":
        reduced = torch.ones(2).__reduce_ex__(2)
        return _Reduced((torch._tensor._rebuild_from_type_v2, (reduced[0], cls, reduced[1], {})))
    elif case == "nested-as-other-class":
        cls = torch.nn.Parameter
    elif case == "class-called":
        return _Reduced((NestedTensor, (values, kw["offsets"])))
    return _Reduced((torch._tensor._rebuild_from_type_v2, (func, cls, (kw,), state)))


_INCONSISTENT = [
    "ragged-idx-0",
    "ragged-idx-past",
    "ragged-dim-too-short",
    "offsets-past-values",
    "offsets-negative",
    "offsets-going-down",
    "offsets-2d",
    "lengths-past-values",
    "lengths-count",
    "state-size",
    "state-swaps-values",
    "unexpected-keyword",
    "cache-not-tensor",
    "cache-seqlen-past-values",
    "plain-rebuild-as-nested",
    "nested-as-other-class",
]


@pytest.mark.parametrize("case", _INCONSISTENT)
def test_inconsistent_jagged_tensors_are_reported(tmp_path: Path, case: str) -> None:
    """A jagged nested tensor whose parts disagree, or that is not rebuilt as torch.save writes it: LW-MODEL-017."""
    torch = pytest.importorskip("torch")
    path = tmp_path / f"{case}.pt"
    torch.save(_njt(case), path)
    found = _findings(path)
    assert any(rule == "LW-MODEL-017" and sev == Severity.HIGH for rule, sev, _ in found), found


def test_nested_tensor_class_called_is_reported(tmp_path: Path) -> None:
    """NestedTensor is admitted to be rebuilt by _rebuild_njt, never called on pickle arguments."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "called.pt"
    torch.save(_njt("class-called"), path)
    assert any(sev >= Severity.HIGH for _, sev, _ in _findings(path))


def test_autocast_called_is_reported(tmp_path: Path) -> None:
    """The autocast classes are admitted to be rebuilt (NEWOBJ + BUILD), not called on pickle arguments."""
    path = tmp_path / "autocast.pkl"
    path.write_bytes(b"\x80\x02ctorch.amp.autocast_mode\nautocast\nX\x03\x00\x00\x00cpu\x85R.")
    assert any(rule == "LW-MODEL-005" and sev == Severity.HIGH for rule, sev, _ in _findings(path))


@pytest.mark.parametrize(
    "cls", ["torch.distributed.device_mesh.DeviceMesh", "torch.distributed.tensor.DTensor"]
)
def test_dtensor_classes_called_are_reported(tmp_path: Path, cls: str) -> None:
    """The DTensor classes are admitted to be rebuilt only: ``DeviceMesh("cpu", ...)`` called creates process
    groups."""
    module, name = cls.rsplit(".", 1)
    path = tmp_path / "called.pkl"
    path.write_bytes(b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X\x03\x00\x00\x00cpu]\x86R.")
    assert any(rule == "LW-MODEL-005" and sev == Severity.HIGH for rule, sev, _ in _findings(path))


def test_other_swalr_attributes_and_collator_calls_are_reported(tmp_path: Path) -> None:
    """Only SWALR's two annealing functions are admitted through getattr; a collator is rebuilt, not called."""
    path = tmp_path / "step.pkl"
    path.write_bytes(
        b"\x80\x02c__builtin__\ngetattr\nctorch.optim.swa_utils\nSWALR\nX\x04\x00\x00\x00step\x86R."
    )
    assert any(sev >= Severity.HIGH for _, sev, _ in _findings(path))
    path = tmp_path / "collator.pkl"
    path.write_bytes(b"\x80\x02ctransformers.data.data_collator\nDataCollatorWithPadding\nN\x85R.")
    assert any(rule == "LW-MODEL-005" and sev == Severity.HIGH for rule, sev, _ in _findings(path))


def test_generation_output_first_field_planting_stays_critical() -> None:
    """generate()'s outputs are judged as ModelOutputs: ``__post_init__`` sets the pairs of a lone dict first field
    as attributes, and a planted ``__setstate__`` runs on the next BUILD (LW-MODEL-016 critical)."""
    from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

    def g(name: str) -> bytes:
        module, _, qual = name.rpartition(".")
        return b"c" + f"{module}\n{qual}\n".encode()

    def u(text: str) -> bytes:
        data = text.encode()
        return b"X" + len(data).to_bytes(4, "little") + data

    planted = g("tokenizers.implementations.bert_wordpiece.BertWordPieceTokenizer")
    payload = (
        b"\x80\x04"
        + g("transformers.generation.utils.GenerateDecoderOnlyOutput")
        + b"(}("
        + u("__setstate__")
        + planted
        + b"uNNt"
        + b"R"
        + u("/home/user/.ssh/id_rsa")
        + b"b."
    )
    found = {(f.rule_id, f.severity) for f in analyze_pickle_bytes(payload).findings}
    assert ("LW-MODEL-016", Severity.CRITICAL) in found, found


def test_dynamo_admits_only_the_dim_range(tmp_path: Path) -> None:
    """_DimRange is admitted by its exact name; the rest of torch._dynamo stays code execution."""
    pytest.importorskip("torch")
    from loopwarden.checks.models.allowlist import AllowList

    allow = AllowList.default()
    assert allow.is_allowed("torch._dynamo.decorators", "_DimRange")
    for qual in ("mark_dynamic", "_DimRange2", "disable"):
        assert not allow.is_allowed("torch._dynamo.decorators", qual)
    assert not allow.is_allowed("torch._dynamo.eval_frame", "OptimizedModule")


def test_compiled_module_with_compiler_option_stays_critical(tmp_path: Path) -> None:
    """torch.compile's pickled options name the program inductor runs on the first call: critical."""
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = torch.compile(model, options={"cpp.cxx": ("/nonexistent/cxx",)})
        path = tmp_path / "compiled.pt"
        torch.save(compiled, path)
    found = _findings(path)
    assert any(rule == "LW-MODEL-001" and sev == Severity.CRITICAL for rule, sev, _ in found), found
