"""Round 16b: torch and transformers objects round 16 left reported, saved whole with ``torch.save``.

Benign files reported before, fixed:

* a collective's reduction (``torch.distributed.ReduceOp.SUM``, ``ReduceOp(RedOpType.AVG)``, ``ReduceOp.MAX`` kept
  in a config or a training state): ``getattr(ReduceOp, "RedOpType")`` was LW-MODEL-002 critical. The two pybind11
  classes are admitted by exact name: their ``__setstate__`` takes an integer (an unnamed one only makes a
  collective fail) or ``(op, factor)``.

Every file is made here with the real library (skipped when it is missing) and must scan clean with no finding.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loopwarden.domain import Severity


def _scan(path: Path) -> list[tuple[str, Severity, str]]:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(path)], jobs=1)
    assert report.targets
    out: list[tuple[str, Severity, str]] = []
    for t in report.targets:
        out += [(f.rule_id, f.severity, f.message) for f in t.findings]
        if t.verdict.value != "clean":
            out.append(("verdict", Severity.HIGH, f"{t.verdict.value}: {t.reason}"))
    return out


def _save_and_scan(tmp_path: Path, name: str, make: Callable[[], Any]) -> None:
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = make()
        path = tmp_path / f"{name}.pt"
        torch.save(obj, path)
    assert _scan(path) == [], name


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
