"""Round 16, torch and transformers objects people save whole with ``torch.save`` (not their state dicts).

A sweep saved each with torch 2.13 and transformers 5.24 and scanned it. Benign files reported before, fixed:

* a jagged nested tensor (``torch.nested.nested_tensor(..., layout=torch.jagged)``,
  ``nested_tensor_from_jagged``, ``torch.nested.narrow``): ``_rebuild_njt`` and ``NestedTensor`` were LW-MODEL-005
  high. ``_rebuild_njt(kwargs)`` only runs ``NestedTensor(**kwargs)`` on the rebuilt values, offsets and lengths;
  the scanner now checks its keywords, the parts' sizes, the ragged dimension and the offsets' values (see
  ``test_redteam_round16_torch.py`` for what stays reported);
* a tensor marked with ``torch._dynamo.mark_dynamic`` (a jagged tensor marks its ``max_seqlen``/``min_seqlen``):
  its ``_DimRange`` record, a frozen dataclass of three numbers, was LW-MODEL-001 critical;
* a DTensor (FSDP2 and tensor-parallel parameters and state dicts), its device mesh and placements: the DTensor,
  spec, placement, mesh and mesh-layout classes were high. torch registers exactly these as ``weights_only`` safe
  globals; nothing runs at load but ``DeviceMesh.__setstate__`` (a registry look-up of process groups by name, none
  created). Admitted to be rebuilt only (``DeviceMesh(...)`` called creates process groups). Inconsistent ones
  (a local tensor smaller than the global shape, a placement past the dimensions) gave wrong shapes or
  RuntimeError in torch 2.13 with a one-process gloo group, never a crash: the wrapper holds no data;
* ``generate(..., return_dict_in_generate=True)``'s output: ``GenerateDecoderOnlyOutput`` was high; the four
  generation outputs (plain ModelOutput dataclasses) are admitted and judged as ModelOutputs are;
* an SWALR scheduler saved whole: its annealing function, a static method pickled as ``getattr(SWALR, name)``,
  was LW-MODEL-002 critical; ``_cosine_anneal`` and ``_linear_anneal`` (pure functions of a number) are admitted;
* transformers' data collators saved whole: high; dataclasses without load hooks, admitted to be rebuilt only;
* the sub-byte integer dtypes (``torch.int1`` ... ``torch.uint7``) and the ``per_channel_affine_float_qparams``
  qscheme (kept by the observers of embedding quantization): high; admitted by exact name;
* an autocast context manager (``torch.autocast``, the deprecated ``torch.cpu.amp``/``torch.cuda.amp`` ones): high.
  It is rebuilt by ``NEWOBJ`` + ``BUILD`` of a device string, a dtype and flags; admitted to be rebuilt only.

The rest of the sweep was clean already and is pinned here: packed sequences, datasets and ``random_split``
results, parameters and buffers, module and parameter containers, old-API spectral and weight norm, quantization
observers and fake-quant modules, quantized modules, ``GradScaler``, a symbolically traced ``GraphModule``, sizes,
dtypes, devices, layouts, return types, complex and float8 weights, and transformers' configs, ``BatchEncoding``,
a tiny model built from a config and a fast tokenizer built locally.

Every file is made here with the real library (skipped when it is missing) and must scan clean with no finding.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_benign_round15_zoo import _scan


def _save_and_scan(tmp_path: Path, name: str, make: Callable[[], Any]) -> None:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = make()
        path = tmp_path / f"{name}.pt"
        torch.save(obj, path)
    assert _scan(path) == [], name


def _jagged() -> dict[str, Callable[[], Any]]:
    import torch

    def marked() -> Any:
        t = torch.ones(3, 4)
        torch._dynamo.mark_dynamic(t, 0)
        return t

    def module_with_jagged_buffer() -> Any:
        m = torch.nn.Linear(3, 3)
        m.register_buffer(
            "seqs", torch.nested.nested_tensor([torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged)
        )
        return m

    return {
        "jagged": lambda: torch.nested.nested_tensor(
            [torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged
        ),
        "jagged-4d": lambda: torch.nested.nested_tensor(
            [torch.ones(2, 3, 4), torch.ones(5, 3, 4)], layout=torch.jagged
        ),
        "jagged-transposed": lambda: torch.nested.nested_tensor(
            [torch.ones(2, 3, 4), torch.ones(5, 3, 4)], layout=torch.jagged
        ).transpose(1, 2),
        "jagged-requires-grad": lambda: torch.nested.nested_tensor(
            [torch.ones(2, 3), torch.ones(4, 3)], layout=torch.jagged, requires_grad=True
        ),
        "jagged-from-jagged": lambda: torch.nested.nested_tensor_from_jagged(
            torch.randn(6, 3), torch.tensor([0, 2, 6])
        ),
        "jagged-seqlens": lambda: torch.nested.nested_tensor_from_jagged(
            torch.randn(6, 3), torch.tensor([0, 2, 6]), min_seqlen=2, max_seqlen=4
        ),
        "jagged-lengths": lambda: torch.nested.narrow(
            torch.arange(20.0).reshape(4, 5),
            1,
            torch.tensor([0, 1, 2, 0]),
            torch.tensor([3, 2, 2, 5]),
            layout=torch.jagged,
        ),
        "jagged-empty-item": lambda: torch.nested.nested_tensor(
            [torch.ones(0, 3), torch.ones(4, 3)], layout=torch.jagged
        ),
        "jagged-in-dict": lambda: {
            "x": torch.nested.nested_tensor([torch.ones(1, 2), torch.ones(3, 2)], layout=torch.jagged),
            "y": torch.ones(2),
        },
        "jagged-module-buffer": module_with_jagged_buffer,
        "mark-dynamic": marked,
    }


_JAGGED = [
    "jagged",
    "jagged-4d",
    "jagged-transposed",
    "jagged-requires-grad",
    "jagged-from-jagged",
    "jagged-seqlens",
    "jagged-lengths",
    "jagged-empty-item",
    "jagged-in-dict",
    "jagged-module-buffer",
    "mark-dynamic",
]


@pytest.mark.parametrize("name", _JAGGED)
def test_jagged_nested_tensors_are_clean(tmp_path: Path, name: str) -> None:
    """Jagged nested tensors as torch.save writes them (and a tensor marked dynamic) scan clean."""
    pytest.importorskip("torch")
    _save_and_scan(tmp_path, name, _jagged()[name])


def _torch_objects() -> dict[str, Callable[[], Any]]:
    import torch
    import torch.ao.quantization as q
    from torch import nn
    from torch.nn.utils.rnn import pack_sequence
    from torch.utils.data import ConcatDataset, StackDataset, Subset, TensorDataset, random_split

    def dataset() -> Any:
        return TensorDataset(torch.arange(10.0), torch.arange(10))

    def hooks_removed() -> Any:
        m = nn.Linear(2, 2)
        m.register_forward_hook(lambda *a: None).remove()
        m.register_forward_pre_hook(lambda *a: None).remove()
        return m

    def quantized() -> Any:
        m = nn.Sequential(q.QuantStub(), nn.Linear(4, 4), q.DeQuantStub())
        m.qconfig = q.get_default_qconfig("x86")
        prepared = q.prepare(m.eval())
        prepared(torch.randn(2, 4))
        return q.convert(prepared)

    def odd_dtypes() -> Any:
        m = nn.Linear(2, 2)
        m.weight.data = m.weight.data.to(torch.complex64)
        m.bias.data = m.bias.data.to(torch.float8_e4m3fn)
        return m

    return {
        "packed-sequence": lambda: pack_sequence([torch.ones(3, 2), torch.ones(2, 2)]),
        "datasets": lambda: {
            "tensor": dataset(),
            "subset": Subset(dataset(), [1, 2, 3]),
            "concat": ConcatDataset([dataset(), dataset()]),
            "stack": StackDataset(dataset(), dataset()),
            "stack-named": StackDataset(a=dataset(), b=dataset()),
            "split": random_split(dataset(), [0.5, 0.5], generator=torch.Generator().manual_seed(0)),
        },
        "parameters": lambda: [
            nn.Parameter(torch.ones(2)),
            nn.Buffer(torch.ones(2)),
            nn.UninitializedParameter(),
        ],
        "hooks-removed": hooks_removed,
        "containers": lambda: [
            nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()}),
            nn.ParameterDict({"a": nn.Parameter(torch.ones(2))}),
            nn.ParameterList([nn.Parameter(torch.ones(2))]),
        ],
        "old-norms": lambda: [
            torch.nn.utils.spectral_norm(nn.Linear(3, 3)),
            torch.nn.utils.weight_norm(nn.Linear(3, 3)),
        ],
        "observers": lambda: [
            q.FakeQuantize(),
            q.MinMaxObserver(),
            q.HistogramObserver(),
            q.PerChannelMinMaxObserver(),
            q.MovingAverageMinMaxObserver(),
            q.FusedMovingAvgObsFakeQuantize(),
            q.PerChannelMinMaxObserver(qscheme=torch.per_channel_affine_float_qparams, ch_axis=0),
        ],
        "quantized": quantized,
        "dynamic-quantized": lambda: q.quantize_dynamic(
            nn.Sequential(nn.Linear(4, 4)), {nn.Linear}, torch.qint8
        ),
        "grad-scaler": lambda: torch.amp.GradScaler("cpu"),
        "swalr": lambda: [
            torch.optim.swa_utils.SWALR(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), swa_lr=0.05),
            torch.optim.swa_utils.SWALR(
                torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1), swa_lr=0.05, anneal_strategy="linear"
            ),
        ],
        "autocast": lambda: [
            torch.autocast("cpu", dtype=torch.float16),
            torch.cpu.amp.autocast(),
            torch.cuda.amp.autocast(enabled=False),
        ],
        "graph-module": lambda: torch.fx.symbolic_trace(
            nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Flatten())
        ),
        "torch-values": lambda: [
            torch.Size([2, 3]),
            torch.float32,
            torch.bfloat16,
            torch.float8_e4m3fn,
            torch.complex64,
            torch.device("cpu"),
            torch.device("cuda", 0),
            torch.strided,
            torch.sparse_coo,
            torch.jagged,
            torch.int4,
            torch.uint1,
            torch.uint7,
            torch.per_channel_affine_float_qparams,
        ],
        "return-types": lambda: [
            torch.topk(torch.arange(5.0), 2),
            torch.sort(torch.arange(5.0)),
            torch.max(torch.ones(2, 2), 0),
        ],
        "complex-float8-module": odd_dtypes,
    }


_TORCH = [
    "packed-sequence",
    "datasets",
    "parameters",
    "hooks-removed",
    "containers",
    "old-norms",
    "observers",
    "quantized",
    "dynamic-quantized",
    "grad-scaler",
    "autocast",
    "swalr",
    "graph-module",
    "torch-values",
    "return-types",
    "complex-float8-module",
]


@pytest.mark.parametrize("name", _TORCH)
def test_torch_objects_saved_whole_are_clean(tmp_path: Path, name: str) -> None:
    """Torch objects people save whole with torch.save scan clean."""
    pytest.importorskip("torch")
    _save_and_scan(tmp_path, name, _torch_objects()[name])


def test_transformers_objects_saved_whole_are_clean(tmp_path: Path) -> None:
    """transformers' configs, a BatchEncoding, a tiny BERT built from a config (no download) and a fast tokenizer
    built locally, saved with torch.save, scan clean."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    cfg = transformers.BertConfig(
        num_hidden_layers=1, hidden_size=32, num_attention_heads=2, intermediate_size=37, vocab_size=50
    )
    vocab = {"[UNK]": 0, "[PAD]": 1, "hello": 2, "world": 3, "[CLS]": 4, "[SEP]": 5}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.normalizer = tokenizers.normalizers.Lowercase()
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 4), ("[SEP]", 5)]
    )
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    dc = transformers.data.data_collator
    objects = {
        "bert-config": cfg,
        "generation-config": transformers.GenerationConfig(max_new_tokens=5, do_sample=True, top_k=3),
        "batch-encoding": transformers.BatchEncoding({"input_ids": torch.tensor([[1, 2, 3]])}),
        "bert": transformers.BertModel(cfg),
        "fast-tokenizer": fast,
        "tokenizer-output": fast("hello world", return_tensors="pt"),
        "collators": [
            transformers.DataCollatorWithPadding(fast),
            dc.DataCollatorForTokenClassification(fast),
            dc.DataCollatorForLanguageModeling(fast, mlm=False),
            dc.DataCollatorForSeq2Seq(fast),
            dc.DefaultDataCollator(),
        ],
    }
    llama = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(
            num_hidden_layers=1,
            hidden_size=32,
            num_attention_heads=2,
            num_key_value_heads=1,
            intermediate_size=37,
            vocab_size=50,
        )
    )
    objects["generate-output"] = llama.generate(
        torch.tensor([[1, 2, 3]]),
        max_new_tokens=2,
        do_sample=False,
        return_dict_in_generate=True,
        output_scores=True,
    )
    for name, obj in objects.items():
        path = tmp_path / f"{name}.pt"
        torch.save(obj, path)
        assert _scan(path) == [], name


_DTENSOR = """
import os, sys, warnings
warnings.simplefilter("ignore")
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import Partial, Replicate, Shard, distribute_tensor
from torch.distributed.tensor.parallel import ColwiseParallel, parallelize_module

dist.init_process_group("gloo", init_method="file://" + sys.argv[2], rank=0, world_size=1)
mesh = init_device_mesh("cpu", (1,))
model = parallelize_module(torch.nn.Linear(4, 4), mesh, ColwiseParallel())
objs = {
    "shard": distribute_tensor(torch.randn(4, 4), mesh, [Shard(0)]),
    "replicate": distribute_tensor(torch.randn(4, 4), mesh, [Replicate()]),
    "mesh": mesh,
    "placements": [Shard(1), Replicate(), Partial()],
    "tp-state-dict": model.state_dict(),
}
torch.save(objs, sys.argv[1])
dist.destroy_process_group()
"""


def test_dtensors_saved_whole_are_clean(tmp_path: Path) -> None:
    """DTensors, a device mesh, placements and a tensor-parallel state dict (made in a child with a one-process
    gloo group) scan clean."""
    pytest.importorskip("torch")
    pytest.importorskip("torch.distributed.tensor")
    path = tmp_path / "dtensor.pt"
    made = subprocess.run(
        [sys.executable, "-c", _DTENSOR, str(path), str(tmp_path / "rendezvous")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    if made.returncode != 0 and "gloo" in made.stderr.lower() and not path.exists():
        pytest.skip(f"no gloo process group here: {made.stderr[-300:]}")
    assert made.returncode == 0, made.stderr[-2000:]
    assert _scan(path) == []
