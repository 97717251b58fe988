"""Round 16b: the leads round 16 left on torch and transformers objects, the shapes that stay reported.

* A jagged nested tensor whose offsets cannot be read back from their storage (here a stride computed at load
  time) is unverified, and the reason says it is the jagged tensor's offsets, not a sparse tensor's indices.
* transformers' logits processors that hold a callable stay reported: ``PrefixConstrainedLogitsProcessor`` calls
  its ``prefix_allowed_tokens_fn`` at every generation step (the class stays LW-MODEL-005 high whatever the
  function; the function is judged as it is), and an admitted ``LogitsProcessorList`` calls every item, so what
  it holds is judged as anywhere else (``os.system`` in a partial is critical).
"""

from __future__ import annotations

import collections
import warnings
from pathlib import Path
from typing import Any

import pytest

from loopwarden.domain import Severity


def _scan(path: Path) -> list[tuple[str, str, Severity, str]]:
    """(verdict, rule id, severity, subject) of each finding, and one ("unverified"/..., "", ..., reason) row for a
    target that is not clean without a finding."""
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(path)], jobs=1)
    out: list[tuple[str, str, Severity, str]] = []
    for t in report.targets:
        out += [
            (t.verdict.value, f.rule_id, f.severity, str(f.evidence.get("subject", ""))) for f in t.findings
        ]
        if not t.findings:
            out.append((t.verdict.value, "", Severity.INFO, t.reason or ""))
    return out


class _Reduced:
    """An object pickled as the reduce tuple it is given (how the crafted objects are written)."""

    def __init__(self, reduced: tuple[Any, ...]) -> None:
        self.reduced = reduced

    def __reduce_ex__(self, proto: object) -> tuple[Any, ...]:
        return self.reduced


def _save(tmp_path: Path, name: str, obj: Any) -> Path:
    torch = pytest.importorskip("torch")
    path = tmp_path / f"{name}.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(obj, path)
    return path


def test_jagged_offsets_not_read_back_say_what_they_are(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.nested._internal.nested_tensor import NestedTensor, _rebuild_njt

    storage = torch.storage.TypedStorage(
        wrap_storage=torch.tensor([0, 2, 6]).untyped_storage(), dtype=torch.int64, _internal=True
    )
    # the offsets' stride is int("1"), computed when the file is loaded
    offsets = _Reduced(
        (
            torch._utils._rebuild_tensor_v2,
            (storage, 0, (3,), (_Reduced((int, ("1",))),), False, collections.OrderedDict()),
        )
    )
    kw = {
        "values": torch.arange(18.0).reshape(6, 3),
        "offsets": offsets,
        "lengths": None,
        "_ragged_idx": 1,
        "_metadata_cache": {},
        "requires_grad": False,
    }
    path = _save(
        tmp_path,
        "njt",
        _Reduced((torch._tensor._rebuild_from_type_v2, (_rebuild_njt, NestedTensor, (kw,), {}))),
    )
    rows = _scan(path)
    assert len(rows) == 1 and rows[0][0] == "unverified", rows
    reason = rows[0][3]
    assert "jagged nested tensor's offsets or lengths" in reason and "sparse" not in reason, reason


def test_prefix_constrained_processor_stays_reported(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    import transformers.generation as g

    path = _save(tmp_path, "prefix", g.PrefixConstrainedLogitsProcessor(sorted, 1))
    rows = _scan(path)
    assert (
        "findings",
        "LW-MODEL-005",
        Severity.HIGH,
        "transformers.generation.logits_process.PrefixConstrainedLogitsProcessor",
    ) in rows, rows


def test_processor_list_judges_its_items(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    import functools
    import os

    import transformers.generation as g

    procs = g.LogitsProcessorList([g.TemperatureLogitsWarper(0.7), functools.partial(os.system, "true")])
    rows = _scan(_save(tmp_path, "list", procs))
    assert any(r[2] is Severity.CRITICAL and "system" in r[3] for r in rows), rows
