"""Round 13: GraphModules made by ``make_fx`` and saved whole with torch.save.

``make_fx`` records with ``PythonKeyTracer`` and saves that tracer as the body's ``_tracer_cls``; torch.load
re-traces the code with it (``_deserialize_graph_module``). Every such file was CRITICAL because only torch.fx's own
``Tracer`` was admitted. ``PythonKeyTracer`` differs where it matters: its ``call_module`` runs a submodule's
``forward`` and hooks (``Tracer`` under torch.load keeps every submodule a leaf and records the call), and its
``getattr`` hands the code real parameters. So under it the code may call nothing but operators by name (what
make_fx writes), and every other call is refused; the real loader below runs a submodule's hook under it and not
under ``Tracer``.
"""

from __future__ import annotations

import collections
import functools
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_redteam_round11_fx import _Edited, _scan

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity

torch = pytest.importorskip("torch")
nn = torch.nn
make_fx = pytest.importorskip("torch.fx.experimental.proxy_tensor").make_fx


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.norm = nn.LayerNorm(4)

    def forward(self, ids):
        h = self.emb(ids)
        o, _ = self.attn(h, h, h)
        return torch.nn.functional.gelu(self.norm(o + h)).mean(1)


def _fn(x, y):
    z = torch.zeros(x.shape[0] * 2, dtype=torch.float64)
    return (x.sin() @ y).float() + z[: x.shape[0]].float().sum() + torch.arange(3).sum(), max(x.shape[0], 3)


@functools.cache
def _made() -> dict[str, tuple[Any, tuple[Any, ...]]]:
    """Each GraphModule with the inputs it was made from."""
    conv = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 2)
    ).eval()
    mlp = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.0), nn.Linear(8, 2))
    cases = {
        "conv": (conv, (torch.randn(2, 3, 8, 8),)),
        "attention": (_Functional().eval(), (torch.tensor([[1, 2, 3]]),)),
        "function": (_fn, (torch.randn(3, 3), torch.randn(3, 3))),
        "mlp-train": (mlp, (torch.randn(2, 4),)),
    }
    return {name: (make_fx(f)(*inputs), inputs) for name, (f, inputs) in cases.items()}


@pytest.mark.parametrize("name", sorted(_made()))
def test_make_fx_graph_modules_torch_saves_are_clean(tmp_path: Path, name: str) -> None:
    gm, inputs = _made()[name]
    assert type(gm).__reduce__(gm)[1][0]["_tracer_cls"].__name__ == "PythonKeyTracer"
    path = tmp_path / f"{name}.pt"
    torch.save(gm, path)
    assert _scan(path) == []
    loaded = torch.load(path, weights_only=False)  # benign: the module torch.load re-traces computes the same
    torch.testing.assert_close(loaded(*inputs), gm(*inputs))


def _parts() -> tuple[dict[str, Any], str]:
    _, (body, import_block) = _made()["conv"][0].__reduce__()
    body = dict(body)
    body["_modules"] = {"sub": nn.ReLU()}  # a submodule the edited code calls
    return body, import_block


def _with(code: str, statement: str) -> str:
    head, sep, rest = code.partition("def forward(self, arg0_1):\n")
    assert sep, code
    return f"{head}{sep}    {statement}\n{rest}"


_EDITS = {
    "submodule-called": "unused = self.sub(arg0_1)",
    "submodule-by-getattr": "unused = getattr(self, 'sub')(arg0_1)",
    "operator-call": "unused = operator.call(self.sub, arg0_1)",
    "max-key": "unused = max([arg0_1], key=self.sub)",
    "torch-cond": "unused = torch.cond(True, self.sub, self.sub, (arg0_1,))",
    "higher-order-op": "unused = torch.ops.higher_order.cond(True, self.sub, self.sub, (arg0_1,))",
    "method-of-value": "unused = arg0_1.relu()",
    "local-called": "sub = self.sub;  unused = sub(arg0_1)",
}


def _analysed(body: dict[str, Any], imp: str) -> list[Any]:
    return list(analyze_pickle_bytes(pickle.dumps(_Edited(body, imp), protocol=2)).findings)


@pytest.mark.parametrize("case", sorted(_EDITS))
def test_calls_of_values_under_python_key_tracer_are_critical(case: str) -> None:
    body, imp = _parts()
    body["_code"] = _with(body["_code"], _EDITS[case])
    findings = _analysed(body, "import operator\n" + imp)
    assert any(f.severity is Severity.CRITICAL for f in findings), findings


def test_the_same_submodule_call_under_torch_s_tracer_is_recorded_not_run() -> None:
    """The contrast: torch.fx's ``Tracer`` keeps the submodule a leaf, so the call is what symbolic_trace writes."""
    from torch.fx._symbolic_trace import Tracer

    body, imp = _parts()
    body["_code"] = _with(body["_code"], _EDITS["submodule-called"])
    body["_tracer_cls"] = Tracer
    assert not [f for f in _analysed(body, imp) if f.severity >= Severity.HIGH]


def test_another_tracer_stays_critical() -> None:
    body, imp = _parts()
    body["_tracer_cls"] = collections.OrderedDict
    findings = _analysed(body, imp)
    assert any(f.severity is Severity.CRITICAL and "reduce_graph_module" in f.message for f in findings), (
        findings
    )


_HOOK = """
def hook(module, args):
    open({marker!r}, "w").write("ran")
"""

_BUILD = """
import sys, torch
from torch.fx.experimental.proxy_tensor import make_fx
from torch.fx._symbolic_trace import Tracer
import hookmod
gm = make_fx(torch.nn.Sequential(torch.nn.Linear(4, 3)))(torch.randn(2, 4))
sub = torch.nn.ReLU()
sub.register_forward_pre_hook(hookmod.hook)
gm.add_submodule("sub", sub)
g = gm.graph
out = next(n for n in g.nodes if n.op == "output")
with g.inserting_before(out):
    called = g.call_module("sub", (out.args[0],))
out.args = (called,)
gm.recompile()
if sys.argv[2] == "Tracer":
    gm._tracer_cls = Tracer
torch.save(gm, sys.argv[1])
"""


@pytest.mark.parametrize(("tracer", "runs"), [("PythonKeyTracer", True), ("Tracer", False)])
def test_the_real_loader_runs_a_submodule_hook_only_under_python_key_tracer(
    tmp_path: Path, tracer: str, runs: bool
) -> None:
    marker = tmp_path / "RAN"
    (tmp_path / "hookmod.py").write_text(_HOOK.format(marker=str(marker)))
    path = tmp_path / "model.pt"
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", _BUILD, str(path), tracer], env=env, check=True, timeout=300)
    assert not marker.exists()  # building and saving never ran the hook
    subprocess.run(
        [sys.executable, "-c", "import sys, torch; torch.load(sys.argv[1], weights_only=False)", str(path)],
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert marker.exists() is runs
    body_findings = _scan(path)
    assert any(sev >= Severity.HIGH for _, sev, _ in body_findings)  # the hook's module is not allow-listed
    if runs:
        assert any("PythonKeyTracer" in msg and sev is Severity.CRITICAL for _, sev, msg in body_findings)
