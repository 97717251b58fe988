"""Red-team round 11: torch.fx GraphModules saved whole with torch.save.

``torch.save(torch.fx.symbolic_trace(model))`` writes ``reduce_graph_module(body, import_block)``; torch.load
``exec``s ``import_block + body["_code"]`` and re-traces the ``forward`` it defines, calling what it names. Every
such file was CRITICAL (a known code-execution callable), torch's own output included. The code is now parsed
(never run) and admitted only in the shape torch.fx writes (``loopwarden.checks.models.fx``); each edit below, made
to a real GraphModule's pickle, stays CRITICAL, and two are confirmed with the real torch.load in a child process.
"""

from __future__ import annotations

import operator
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.lin = nn.Linear(4, 2)

    def forward(
        self, x
    ):  # no annotations: under "from __future__ import annotations" torch.fx cannot save them
        h = F.relu(self.bn(self.conv(x)))
        h = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
        out = self.lin(h).softmax(-1) * 2.0
        kept = torch.where(out > 0.5, out, torch.zeros_like(out))
        return kept.to(torch.float32), out[:, 0] + 1, operator.add(out, 2), h.shape


class _Ops(nn.Module):
    """operator functions, getattr, kwargs and tuple outputs, a call with keywords."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)

    def forward(self, x, scale=2.0):
        h = self.proj(x)
        s = operator.mul(h, scale)
        t = operator.getitem(s, (slice(None), 0))
        y = torch.cat([h, s], dim=-1).sum(dim=1, keepdim=True)
        return {"y": y, "t": t, "n": getattr(h, "shape")[0]}  # noqa: B009


class _Attention(nn.Module):
    """Attention, a GRU, a buffer and a parameter, and tensor methods whose names are also Python modules' (chunk,
    select, copy) or close to file words."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3, padding=1)
        self.attn = nn.MultiheadAttention(4, 2, batch_first=True)
        self.gru = nn.GRU(4, 4, batch_first=True)
        self.register_buffer("pos", torch.zeros(1, 5, 4))
        self.scale = nn.Parameter(torch.ones(4))

    def forward(self, x):
        h = self.conv(x).transpose(1, 2) + self.pos
        o, _ = self.attn(h, h, h)
        o, _ = self.gru(o)
        o = (o * self.scale).masked_fill(o > 1, float("-inf")).clamp(min=-1e4)
        o = F.softmax(o, dim=-1).reshape(o.size(0), -1).to(dtype=torch.float16).type_as(o)
        o = torch.einsum("bi,bi->b", o, o).unsqueeze(-1).expand(-1, 3)
        picked = torch.select(o, 1, 0) + o.select(1, 1)
        return torch.stack([o, o.detach().clone()], 0).chunk(2)[0], picked, o[..., :2].flip(-1), o.device


def _models() -> dict[str, Any]:
    return {
        "mlp": nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.LayerNorm(8), nn.Dropout(0.1), nn.Linear(8, 2)),
        "conv": _Net(),
        "embedding": nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 2)),
        "ops": _Ops(),
        "attention": _Attention(),
        "encoder": nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), nn.LayerNorm(8)),
    }


class _Edited:
    """Pickles as ``reduce_graph_module(body, import_block)`` with the body and import block given."""

    def __init__(self, body: dict[str, Any], import_block: str) -> None:
        self.body, self.import_block = body, import_block

    def __reduce__(self) -> tuple[Any, ...]:
        from torch.fx.graph_module import reduce_graph_module

        return reduce_graph_module, (self.body, self.import_block)


def _parts(name: str = "mlp") -> tuple[dict[str, Any], str]:
    _, (body, import_block) = torch.fx.symbolic_trace(_models()[name]).__reduce__()
    return dict(body), import_block


def _saved(path: Path, obj: Any) -> bytes:
    torch.save(obj, path)
    return path.read_bytes()


def _scan(path: Path) -> list[tuple[str, Severity, str]]:
    from loopwarden.checks.models.scanner import scan_paths

    (target,) = scan_paths([str(path)], jobs=1).targets
    return [(f.rule_id, f.severity, f.message) for f in target.findings]


@pytest.mark.parametrize("name", sorted(_models()))
def test_graph_modules_torch_saves_are_clean(tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.pt"
    _saved(path, torch.fx.symbolic_trace(_models()[name]))
    assert _scan(path) == []


def test_a_wrapped_function_s_module_is_judged_by_the_allow_list(tmp_path: Path) -> None:
    """fx writes ``from _fx_wrapped import scaled_sum as ...`` and a ``wrap("...")`` line for a function
    torch.fx.wrap made a leaf; torch.load imports that module. A module the allow-list does not know is reported as a
    pickle's import of it would be (HIGH), not as a code-execution callable."""
    import _fx_wrapped

    path = tmp_path / "wrapped.pt"
    _saved(path, torch.fx.symbolic_trace(_fx_wrapped.Wrapped()))
    findings = _scan(path)
    assert [(rule, sev) for rule, sev, _ in findings] == [("LW-MODEL-005", Severity.HIGH)], findings
    assert "_fx_wrapped.scaled_sum" in findings[0][2]


_ANNOTATED = """
import sys, torch
from typing import List, Optional, Tuple


class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, List[int]]:
        return self.lin(x), [1, 2]


torch.save(torch.fx.symbolic_trace(M()), sys.argv[1])
"""


def test_an_annotated_forward_is_clean(tmp_path: Path) -> None:
    """fx writes the annotations into forward's code and imports typing names for them (annotations are evaluated
    when forward is defined)."""
    path = tmp_path / "annotated.pt"
    made = subprocess.run(
        [sys.executable, "-c", _ANNOTATED, str(path)], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr[-2000:]
    assert _scan(path) == []


def _forward_edit(code: str, statement: str) -> str:
    head, _, rest = code.partition("):\n")
    return f"{head}):\n    {statement}\n{rest}"


_EDITS: dict[str, Any] = {
    "import-block-runs-a-command": lambda code, imp: (code, imp + "\nimport os\nos.system('touch MARKER')"),
    "import-of-os-used-in-forward": lambda code, imp: (
        _forward_edit(code, "os.system('touch MARKER')"),
        imp + "\nimport os",
    ),
    "dunder-import-in-forward": lambda code, imp: (
        _forward_edit(code, "__import__('os').system('touch MARKER')"),
        imp,
    ),
    "torch-load-in-forward": lambda code, imp: (_forward_edit(code, "_w = torch.load('MARKER')"), imp),
    "computed-getattr-on-torch": lambda code, imp: (
        _forward_edit(code, "_f = getattr(torch, 'lo' + 'ad')"),
        imp,
    ),
    "module-taken-as-a-value": lambda code, imp: (
        _forward_edit(code, "_t = torch.ops; _t.aten.add(1, 2)"),
        imp,
    ),
    "from-os-import": lambda code, imp: (code, imp + "\nfrom os import system"),
    "decorated-forward": lambda code, imp: (code.replace("def forward", "@print\ndef forward", 1), imp),
    "default-argument-call": lambda code, imp: (code.replace("):\n", ", _d = print('x')):\n", 1), imp),
    "lambda-in-forward": lambda code, imp: (_forward_edit(code, "_l = (lambda: 1)()"), imp),
    "class-at-module-level": lambda code, imp: (code + "\nclass X:\n    pass\n", imp),
    "open-builtin": lambda code, imp: (_forward_edit(code, "_o = open('MARKER', 'w')"), imp),
    "subclasses-walk": lambda code, imp: (
        _forward_edit(code, "_s = ().__class__.__base__.__subclasses__()"),
        imp,
    ),
    "eval-builtin": lambda code, imp: (_forward_edit(code, "_e = eval('1')"), imp),
    "profiler-writes-a-trace": lambda code, imp: (
        _forward_edit(code, "_p = torch.profiler.profile().export_chrome_trace('MARKER')"),
        imp,
    ),
    "cuda-memory-snapshot": lambda code, imp: (
        _forward_edit(code, "_m = torch.cuda.memory._dump_snapshot('MARKER')"),
        imp,
    ),
    "typing-hints-evaluate-strings": lambda code, imp: (
        _forward_edit(code, "_h = typing_get_type_hints(self)"),
        imp + "\nfrom typing import get_type_hints as typing_get_type_hints",
    ),
    "annotation-that-calls": lambda code, imp: (
        code.replace("):\n", ", _a : print('x') = None):\n", 1),
        imp,
    ),
    # Python modules torch, typing and the pytree modules import, reached through them
    "torch-os-remove": lambda code, imp: (_forward_edit(code, "_r = torch.os.remove('MARKER')"), imp),
    "torch-os-execv": lambda code, imp: (_forward_edit(code, "_r = torch.os.execv('/bin/sh', ['sh'])"), imp),
    "typing-sys-modules": lambda code, imp: (
        _forward_edit(code, "_r = typing.sys.modules.get('os').system('touch MARKER')"),
        imp + "\nimport typing",
    ),
    "pytree-importlib": lambda code, imp: (
        _forward_edit(code, "_r = pytree.importlib.import_module('os')"),
        imp,
    ),
    "typing-sys-modules-read": lambda code, imp: (
        _forward_edit(code, "_r = typing.sys.modules.get('os')"),
        imp + "\nimport typing",
    ),
    "from-torch-import-os": lambda code, imp: (code, imp + "\nfrom torch import os"),
    # torch.fx's and TorchScript's own code builders
    "fx-forward-from-src": lambda code, imp: (
        _forward_edit(code, "_r = torch.fx.graph_module._forward_from_src('import os', {})"),
        imp,
    ),
    "torchscript-compilation-unit": lambda code, imp: (
        _forward_edit(code, "_r = torch._C.CompilationUnit('def f(x):\\n    return x')"),
        imp,
    ),
    # methods of real values (torch runs calls whose arguments are not traced values)
    "ndarray-tofile": lambda code, imp: (
        _forward_edit(code, "_r = torch.zeros(3).numpy().tofile('MARKER')"),
        imp,
    ),
    "getattr-tofile": lambda code, imp: (
        _forward_edit(code, "_r = getattr(torch.zeros(3).numpy(), 'tofile')('MARKER')"),
        imp,
    ),
    "body-value-dump": lambda code, imp: (_forward_edit(code, "_r = self.training.dump('MARKER')"), imp),
    # imports and statements
    "import-subprocess": lambda code, imp: (
        _forward_edit(code, "_r = subprocess.run(['touch', 'MARKER'])"),
        imp + "\nimport subprocess",
    ),
    "from-subprocess-import-call": lambda code, imp: (
        _forward_edit(code, "_r = run(['touch', 'MARKER'])"),
        imp + "\nfrom subprocess import run",
    ),
    "import-builtins": lambda code, imp: (
        _forward_edit(code, "_r = builtins.exec('1')"),
        imp + "\nimport builtins",
    ),
    "from-os-import-as-wrapped": lambda code, imp: (
        "\ntorch.fx._symbolic_trace.wrap('_s')\n" + _forward_edit(code, "_r = _s('touch MARKER')"),
        imp + "\nfrom os import system as _s",
    ),
    "second-module-statement": lambda code, imp: (code + "\n_t = torch.zeros(1)\n", imp),
    "wrap-with-a-computed-name": lambda code, imp: (
        code + "\ntorch.fx._symbolic_trace.wrap('a' + 'b')\n",
        imp,
    ),
    "special-name-imported": lambda code, imp: (code, imp + "\nfrom torch import __builtins__"),
}


@pytest.mark.parametrize("case", sorted(_EDITS))
def test_edited_graph_module_code_is_critical(case: str) -> None:
    import ast
    import pickle

    body, imp = _parts()
    code, imp = _EDITS[case](body["_code"], imp)
    ast.parse(imp + code)  # each edit is valid Python: it is refused for what it does, not for a syntax error
    body["_code"] = code
    result = analyze_pickle_bytes(pickle.dumps(_Edited(body, imp), protocol=2))
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings


def test_a_tracer_that_is_not_torch_s_own_is_critical() -> None:
    import collections
    import pickle

    body, imp = _parts()
    body["_tracer_cls"] = collections.OrderedDict
    result = analyze_pickle_bytes(pickle.dumps(_Edited(body, imp), protocol=2))
    assert any(
        f.severity is Severity.CRITICAL and "reduce_graph_module" in f.message for f in result.findings
    ), result.findings


def test_the_tracer_imported_twice_is_judged_by_every_copy() -> None:
    import pickle

    from torch.fx._symbolic_trace import Tracer

    body, imp = _parts()
    body["other"] = Tracer  # a second copy of the import, not the body's tracer
    result = analyze_pickle_bytes(pickle.dumps(_Edited(body, imp), protocol=2))
    assert any("Tracer" in f.message and f.severity is Severity.CRITICAL for f in result.findings)


_LOAD = """
import sys, torch
torch.load(sys.argv[1], weights_only=False)
"""


@pytest.mark.parametrize(
    "case",
    ["import-block-runs-a-command", "import-of-os-used-in-forward", "ndarray-tofile", "typing-sys-modules"],
)
def test_the_real_loader_runs_what_is_reported(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "PWNED"
    body, imp = _parts()
    code, imp = _EDITS[case](body["_code"], imp)
    body["_code"] = code.replace("MARKER", str(marker))
    imp = imp.replace("MARKER", str(marker))
    path = tmp_path / "model.pt"
    _saved(path, _Edited(body, imp))
    assert any(sev is Severity.CRITICAL for _, sev, _ in _scan(path))
    subprocess.run([sys.executable, "-c", _LOAD, str(path)], capture_output=True, timeout=300, check=False)
    assert marker.exists()


def test_a_torch_compiled_module_saved_whole_stays_critical(tmp_path: Path) -> None:
    """torch.save(torch.compile(m)) keeps dynamo's frame converters, the backend, guard hooks and the whole inductor
    config (compiler command, log paths) that the first call uses to build and run native code: not admitted (see
    docs/rules.md)."""
    path = tmp_path / "compiled.pt"
    _saved(path, torch.compile(nn.Linear(2, 2)))
    findings = _scan(path)
    assert any(sev is Severity.CRITICAL and "torch._dynamo" in msg for _, sev, msg in findings), findings


# --- methods of the real objects the re-trace reaches --------------------------------------------------------------


class _Buffered(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.register_buffer("scale", torch.ones(2))

    def forward(self, x):  # no annotations: see _Net
        return self.lin(x) * self.scale


def _buffered_parts() -> tuple[dict[str, Any], str]:
    _, (body, import_block) = torch.fx.symbolic_trace(_Buffered()).__reduce__()
    return dict(body), import_block


_METHOD_EDITS = {
    # the re-trace reads self.<name> as the real buffer, so its methods really run at load
    "buffer-tofile": "_w = self.scale.numpy().tofile('MARKER')",
    "buffer-dump": "_w = self.scale.numpy().dump('MARKER')",
    "getattr-tofile": "_f = getattr(self.scale.numpy(), 'tofile'); _f('MARKER')",
    "storage-from-file": "_s = self.scale.untyped_storage().from_file('MARKER', False, 4)",
    "submodule-hook": "_h = self.lin.register_forward_hook(self.lin)",
    "getattr-hook": "_r = getattr(self.lin, 'register_forward_hook'); _r(self.lin)",
    "self-apply": "_a = self.apply(self.lin)",
    "tensor-save-method": "_w = x.save('MARKER')",
    "load-state-dict": "_w = self.lin.load_state_dict(self.lin.state_dict())",
}


@pytest.mark.parametrize("case", sorted(_METHOD_EDITS))
def test_methods_that_touch_files_or_run_functions_are_critical(case: str) -> None:
    import pickle

    body, imp = _buffered_parts()
    body["_code"] = _forward_edit(body["_code"], _METHOD_EDITS[case])
    result = analyze_pickle_bytes(pickle.dumps(_Edited(body, imp), protocol=2))
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings


def test_a_buffer_written_to_a_file_at_load_under_real_torch(tmp_path: Path) -> None:
    """The re-trace ran ``self.scale.numpy().tofile(path)`` on the real buffer: torch.load wrote a file the pickle
    named, with bytes the pickle chose (loopwarden called it clean before)."""
    import pickle

    marker = tmp_path / "PWNED"
    body, imp = _buffered_parts()
    body["_code"] = _forward_edit(
        body["_code"], _METHOD_EDITS["buffer-tofile"].replace("MARKER", str(marker))
    )
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(_Edited(body, imp), protocol=2))
    assert any(sev is Severity.CRITICAL for _, sev, _ in _scan(path))
    subprocess.run([sys.executable, "-c", _LOAD, str(path)], capture_output=True, timeout=300, check=False)
    assert marker.exists()


def test_a_buffered_graph_module_torch_saves_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "buffered.pt"
    _saved(path, torch.fx.symbolic_trace(_Buffered()))
    assert _scan(path) == []
