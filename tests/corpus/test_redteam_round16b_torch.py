"""Round 16b: the leads round 16 left on torch and transformers objects, the shapes that stay reported.

* A jagged nested tensor whose offsets cannot be read back from their storage (here a stride computed at load
  time) is unverified, and the reason says it is the jagged tensor's offsets, not a sparse tensor's indices.
* transformers' logits processors that hold a callable stay reported: ``PrefixConstrainedLogitsProcessor`` calls
  its ``prefix_allowed_tokens_fn`` at every generation step (the class stays LW-MODEL-005 high whatever the
  function; the function is judged as it is), and an admitted ``LogitsProcessorList`` calls every item, so what
  it holds is judged as anywhere else (``os.system`` in a partial is critical).
* an ExportedProgram saved whole is admitted only as torch.save writes it. Loading one runs the graph module's
  code (judged as torch.fx's) and then fails in torch 2.13: ``_ModuleStackTracer`` is called with no argument
  (pinned below with the real loader). A crafted body naming torch.fx's own tracer loads; the program's state then
  keeps ``_guards_code``, Python expressions ``ep.module()`` compiles into a guard function (and
  ``torch.export.save`` carries into a ``.pt2``), and ``_verifiers``, classes ``validate()`` instantiates and
  runs. In torch 2.13 ``module()`` of such a loaded program did not reach the guards (the re-traced placeholders
  have no ``val`` metadata), so no effect was seen; they stay reported (LW-MODEL-001 critical) whenever they are
  not torch.save's: guards code, a verifier that is not torch's, an unexpected state entry, guards appended to the
  list after BUILD.
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


def _program() -> Any:
    import torch

    class M(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x + 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(M(), (torch.ones(2),))
    ep.graph_module._tracer_cls = None  # torch.fx's Tracer: the load succeeds
    return ep


def _append_guards_after_build(path: Path) -> None:
    """Rewrite the archive's pickle so that code is appended to the program's guards list (BINGET of its memo
    entry, APPEND) after the program's BUILD, just before STOP."""
    import pickletools
    import struct
    import zipfile

    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info.filename)) for info in src.infolist()]
    out: list[tuple[Any, bytes]] = []
    for info, data in entries:
        if info.filename.endswith("data.pkl"):
            ops = list(pickletools.genops(data))
            at = next(i for i, (op, arg, _) in enumerate(ops) if arg == "_guards_code")
            memo = ops[at + 3][1]  # BINUNICODE, BINPUT, EMPTY_LIST, BINPUT
            code = b"__import__('os').system('true') is None"
            data = data[:-1] + b"h" + bytes([memo]) + b"X" + struct.pack("<I", len(code)) + code + b"a0."
        out.append((info, data))
    with zipfile.ZipFile(path, "w") as dst:
        for info, data in out:
            dst.writestr(info, data)


@pytest.mark.parametrize("case", ["guards", "verifier", "entry", "late-guards"])
def test_exported_program_state_stays_reported(tmp_path: Path, case: str) -> None:
    torch = pytest.importorskip("torch")
    ep = _program()
    obj: Any = ep
    if case == "guards":
        ep._guards_code = ["__import__('os').system('true') is None"]
    elif case == "verifier":
        ep._verifiers = [torch.nn.Linear]
    elif case == "entry":
        ep.__dict__["_extra"] = 1
    path = _save(tmp_path, case, obj)
    if case == "late-guards":
        _append_guards_after_build(path)
    rows = _scan(path)
    assert any(
        r[1] == "LW-MODEL-001"
        and r[2] is Severity.CRITICAL
        and r[3] == "torch.export.exported_program.ExportedProgram:state"
        for r in rows
    ), rows


def test_exported_program_as_saved_is_clean_and_never_loads(tmp_path: Path) -> None:
    """torch.save(ep) as written scans clean; torch 2.13's loader fails on it after executing the judged code."""
    torch = pytest.importorskip("torch")
    import subprocess
    import sys

    class M(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x + 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ep = torch.export.export(M(), (torch.ones(2),))
    path = _save(tmp_path, "ep", ep)
    assert _scan(path) == [("clean", "", Severity.INFO, "")]
    code = (
        "import sys, torch\n"
        "try:\n    torch.load(sys.argv[1], weights_only=False)\nexcept TypeError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    if "scope_root" not in out.stdout:
        pytest.skip(f"this torch loads an ExportedProgram saved whole: {out.stdout[-200:]}")
