"""Round 16b: torch and transformers objects round 16 left reported, saved whole with ``torch.save``.

Benign files reported before, fixed:

* a collective's reduction (``torch.distributed.ReduceOp.SUM``, ``ReduceOp(RedOpType.AVG)``, ``ReduceOp.MAX`` kept
  in a config or a training state): ``getattr(ReduceOp, "RedOpType")`` was LW-MODEL-002 critical. The two pybind11
  classes are admitted by exact name: their ``__setstate__`` takes an integer (an unnamed one only makes a
  collective fail) or ``(op, factor)``;
* transformers' logits processors and stopping criteria saved whole (a ``LogitsProcessorList`` of temperature,
  top-k, top-p, repetition penalty ... kept in a generation state; ``StoppingCriteriaList``, ``MaxLengthCriteria``,
  ``StopStringCriteria`` ...): LW-MODEL-005 high. Those holding numbers, token-id lists and tensors (no load
  hook, a ``__call__`` that calls no attribute and sizes its allocations by the scores) are admitted by exact
  name; ``StopStringCriteria`` rebuilt only (its constructor calls the tokenizer's methods). Those holding a
  callable stay reported (``test_redteam_round16b_torch.py``).

* an ExportedProgram saved whole with ``torch.save(ep, f)`` (not ``torch.export.save``): the torch.export
  classes, the graph module's ``_ModuleStackTracer``, the verifier classes and the pytree specs were critical. The
  pickle holds the graph module (``reduce_graph_module``: torch.load executes its code, judged as torch.fx's, then
  calls the tracer's subclass with no argument, which fails with TypeError in torch 2.13: such a file never
  loads), the signature, module-call graph, state dict, example inputs, constants, the verifier classes and the
  guards code. The classes are admitted by exact name, rebuilt only; the program's state is checked (no guards
  code, torch's verifiers, the keys torch writes; ``test_redteam_round16b_torch.py``).

Decided, not reported: a sampler's sizes (``RandomSampler(num_samples=...)``, ``BatchSampler(batch_size=...)``). At
load they are numbers in a ``__dict__``; at use a huge ``num_samples`` only makes an epoch long (the indices come 32
at a time, or as permutations of the dataset's own length) and a huge ``batch_size`` with ``drop_last`` makes
``BatchSampler.__iter__`` build a list of that many references (MemoryError under a memory limit in torch 2.13).
No memory outside a buffer is reached and nothing in the file bounds them (LW-MODEL-017 bounds sizes only against
the data they describe), as an epoch count or a batch size in a training config: they stay clean.

Every file is made here with the real library (skipped when it is missing) and must scan clean with no finding.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_benign_round16_torch import _save_and_scan


def _reduce_ops() -> dict[str, Callable[[], Any]]:
    import torch
    import torch.distributed as dist

    op = dist.ReduceOp
    return {
        "reduce-op-sum": lambda: {"op": op.SUM},
        "reduce-op-members": lambda: [op.SUM, op.AVG, op.PRODUCT, op.MIN, op.MAX, op.BAND, op.BOR, op.BXOR],
        "reduce-op-object": lambda: {"op": op(op.RedOpType.AVG), "n": 2},
        "reduce-op-type-member": lambda: op.RedOpType.MAX,
        "reduce-op-premul-sum": lambda: dist._make_nccl_premul_sum(2.0),
        "reduce-op-premul-sum-tensor": lambda: dist._make_nccl_premul_sum(torch.tensor([0.5])),
    }


@pytest.mark.parametrize(
    "name",
    [
        "reduce-op-sum",
        "reduce-op-members",
        "reduce-op-object",
        "reduce-op-type-member",
        "reduce-op-premul-sum",
        "reduce-op-premul-sum-tensor",
    ],
)
def test_reduce_op_clean(tmp_path: Path, name: str) -> None:
    pytest.importorskip("torch.distributed")
    _save_and_scan(tmp_path, name, _reduce_ops()[name])


def _tokenizer() -> Any:
    """A byte-level BPE tokenizer trained here on two sentences (nothing downloaded)."""
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    pre = tokenizers.pre_tokenizers.ByteLevel
    tk = tokenizers.Tokenizer(tokenizers.models.BPE())
    tk.pre_tokenizer = pre(add_prefix_space=False)
    tk.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre.alphabet())
    tk.train_from_iterator(["stop here please", "a b c stop"], trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tk)


def _generation() -> dict[str, Callable[[], Any]]:
    import torch
    import transformers.generation as g

    def processors() -> Any:
        return g.LogitsProcessorList(
            [
                g.TemperatureLogitsWarper(0.7),
                g.TopKLogitsWarper(50),
                g.TopPLogitsWarper(0.9),
                g.MinPLogitsWarper(0.1),
                g.TypicalLogitsWarper(0.9),
                g.EpsilonLogitsWarper(0.01),
                g.EtaLogitsWarper(0.01),
                g.RepetitionPenaltyLogitsProcessor(1.2),
                g.EncoderRepetitionPenaltyLogitsProcessor(1.2, torch.tensor([[1, 2]])),
                g.MinLengthLogitsProcessor(5, 2),
                g.MinNewTokensLengthLogitsProcessor(3, 5, 2),
                g.NoRepeatNGramLogitsProcessor(3),
                g.EncoderNoRepeatNGramLogitsProcessor(3, torch.tensor([[1, 2, 3]])),
                g.NoBadWordsLogitsProcessor([[5], [6, 7]], eos_token_id=2),
                g.SequenceBiasLogitsProcessor({(5,): -1.0, (6, 7): 2.0}),
                g.ForcedBOSTokenLogitsProcessor(0),
                g.ForcedEOSTokenLogitsProcessor(10, 2),
                g.InfNanRemoveLogitsProcessor(),
                g.ExponentialDecayLengthPenalty((5, 1.5), 2, 3),
                g.SuppressTokensLogitsProcessor([1, 2]),
                g.SuppressTokensAtBeginLogitsProcessor([1, 2], 3),
                g.LogitNormalization(),
                g.ClassifierFreeGuidanceLogitsProcessor(1.5),
            ]
        )

    def used() -> Any:
        # a list that has run once (the sequence bias builds its tensors at the first call)
        procs = g.LogitsProcessorList([p for p in processors() if type(p).__name__[:10] != "Classifier"])
        procs(torch.tensor([[1, 2, 3]]), torch.randn(1, 300))
        return {"logits_processor": procs, "step": 3}

    return {
        "logits-processors": processors,
        "logits-processors-used": used,
        "temperature": lambda: g.TemperatureLogitsWarper(0.7),
        "stopping-criteria": lambda: g.StoppingCriteriaList(
            [g.MaxLengthCriteria(20), g.MaxTimeCriteria(5.0), g.EosTokenCriteria([2, 3])]
        ),
        "stop-strings": lambda: g.StopStringCriteria(_tokenizer(), ["stop", "\n\n"]),
        "generation-state": lambda: {
            "logits_processor": g.LogitsProcessorList([g.TopKLogitsWarper(5)]),
            "stopping_criteria": g.StoppingCriteriaList([g.MaxLengthCriteria(20)]),
            "input_ids": torch.tensor([[1, 2, 3]]),
        },
    }


@pytest.mark.parametrize(
    "name",
    [
        "logits-processors",
        "logits-processors-used",
        "temperature",
        "stopping-criteria",
        "stop-strings",
        "generation-state",
    ],
)
def test_generation_processors_clean(tmp_path: Path, name: str) -> None:
    pytest.importorskip("transformers")
    _save_and_scan(tmp_path, name, _generation()[name])


class _Exported:
    """A small module with a parameter, a buffer, a submodule and a nested output (for torch.export)."""

    @staticmethod
    def make() -> Any:
        import torch

        class M(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lin = torch.nn.Linear(3, 2)
                self.register_buffer("shift", torch.ones(2))
                self.sub = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 2))

            def forward(self, x: Any, y: Any = None) -> Any:
                out = self.sub(self.lin(x) + self.shift)
                return {"out": out, "pair": (out, x)}

        return M()


def _exported() -> dict[str, Callable[[], Any]]:
    import torch

    x = torch.randn(1, 3)
    return {
        "exported": lambda: torch.export.export(_Exported.make(), (x,)),
        "exported-kwargs": lambda: torch.export.export(_Exported.make(), (x,), {"y": torch.ones(1)}),
        "exported-decomposed": lambda: torch.export.export(_Exported.make(), (x,)).run_decompositions(),
    }


@pytest.mark.parametrize("name", ["exported", "exported-kwargs", "exported-decomposed"])
def test_exported_program_saved_whole_clean(tmp_path: Path, name: str) -> None:
    pytest.importorskip("torch.export")
    _save_and_scan(tmp_path, name, _exported()[name])


def _samplers() -> dict[str, Callable[[], Any]]:
    from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

    return {
        "random-sampler-many": lambda: RandomSampler(range(10), replacement=True, num_samples=10**9),
        "batch-sampler-large": lambda: BatchSampler(
            SequentialSampler(range(10)), batch_size=4096, drop_last=True
        ),
    }


@pytest.mark.parametrize("name", ["random-sampler-many", "batch-sampler-large"])
def test_sampler_sizes_clean(tmp_path: Path, name: str) -> None:
    pytest.importorskip("torch.utils.data")
    _save_and_scan(tmp_path, name, _samplers()[name])
