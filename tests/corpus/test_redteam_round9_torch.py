"""Round 9 of the internal red team, PyTorch formats: TorchScript code that reaches torch's file builtins under
other spellings, and tensors that torch.load does not check.

Each case is built as bytes here and scanned. Where cheap, real torch (if installed) runs the case in a child
process with a harmless effect only: a marker file written inside a temporary folder, or a crash of the child.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.domain import Severity, Verdict


def assert_clean(results: list[object]) -> None:
    t = results[0]
    assert t.verdict is Verdict.CLEAN, t  # type: ignore[attr-defined]


def _child(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (written to a file: torch.jit.script reads the source) under the current interpreter in a
    child process, argv[1:] = ``args``."""
    cwd.mkdir(parents=True, exist_ok=True)
    script = cwd / "child.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        check=False,
    )


# --- TorchScript: torch.save / torch.from_file under spellings a line-based reading misses ---------------------

_HEADER = b"class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n"
_SETSTATE = b"  def __setstate__(self: __torch__.M, state: Tuple[bool]) -> NoneType:\n"


def _torchscript(body: bytes) -> bytes:
    """The torch.jit.save layout: data.pkl, constants.pkl, version and the compiled class under code/."""
    return cp.zip_of(
        {
            "archive/data.pkl": cp.benign_pickle(),
            "archive/constants.pkl": b"\x80\x02).",
            "archive/version": b"3\n",
            "archive/code/__torch__/m.py": _HEADER + body,
        }
    )


# Each was confirmed with torch 2.13: torch.jit.load (and torch.load, which hands the archive to it) compiles the
# class and runs __setstate__, which writes the file.
_SPELLINGS = {
    # torch.autograd is the aten namespace again (BuiltinModule "autograd"), any number of times
    "torch-autograd": b'    torch.autograd.save(state, "/tmp/lw-marker")\n',
    "torch-autograd-autograd": b'    torch.autograd.autograd.save(state, "/tmp/lw-marker")\n',
    # whitespace and line breaks between tokens
    "spaces-around-dot": b'    torch . save(state, "/tmp/lw-marker")\n',
    "backslash-continuation": b'    torch.\\\n      save(state, "/tmp/lw-marker")\n',
    "parenthesised-over-lines": b'    (torch\n      .save)(state, "/tmp/lw-marker")\n',
    "ops-spaces": b'    ops . aten . save(state, "/tmp/lw-marker")\n',
    # the builtin or its namespace held in a local
    "builtin-alias": b'    f = torch.save\n    f(state, "/tmp/lw-marker")\n',
    "module-alias": b'    t = torch\n    t.save(state, "/tmp/lw-marker")\n',
    "ops-namespace-alias": b'    a = ops.aten\n    a.save(state, "/tmp/lw-marker")\n',
    # getattr with a constant name
    "getattr-torch": b'    getattr(torch, "save")(state, "/tmp/lw-marker")\n',
    "getattr-ops": b'    n = getattr(ops, "aten")\n    n.save(state, "/tmp/lw-marker")\n',
    "getattr-from-file": b'    g = getattr(torch.autograd, "from_file")\n    print(g("/etc/hostname", False, 1))\n',
    # the builtin passed as a value to fork
    "fork-builtin": b'    fut = fork(torch.autograd.save, state, "/tmp/lw-marker")\n    fut.wait()\n',
    # a custom namespace through an alias (needs a loaded library: MEDIUM)
    "custom-namespace-alias": b"    c = ops.evil_ns\n    c.run_shell(state)\n",
}


@pytest.mark.parametrize("case", sorted(_SPELLINGS))
def test_torchscript_builtin_spellings_are_reported(tmp_path: Path, case: str) -> None:
    """CVE-2025-32434 class (GHSA-53q9-r3pm-6pq6): TorchScript's aten::save writes any path and aten::from_file
    reads any file. The compiler reads tokens, not lines: ``torch.autograd.<op>``, spaces, continuations, aliases,
    ``getattr(torch, "save")`` and ``fork(torch.save, ...)`` all reach the same builtin, and loopwarden called them
    clean. Now the code is tokenized and every chain headed by ``torch``/``ops`` is judged, and either name held as
    a value is reported."""
    body = _SETSTATE + _SPELLINGS[case] + b"    self.training = state[0]\n    return None\n"
    at_least = Severity.MEDIUM if case.startswith("custom") else Severity.CRITICAL
    assert_caught(scan_files(tmp_path, {"model.pt": _torchscript(body)}), "LW-MODEL-031", at_least)


def test_torchscript_ordinary_spellings_stay_clean(tmp_path: Path) -> None:
    """The counterpart: what torch.jit.save prints for ordinary modules (calls through ``torch.``/``ops.``
    chains, ``torch.autograd.grad``, getattr of submodules, methods named like builtins on ``self``, names that
    contain "save" or "load", strings that say them)."""
    body = (
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b'    _0 = getattr(self, "0")\n'
        b'    _1 = getattr(self.layers, "save")\n'
        b"    saved = torch.mean(x)\n"
        b"    load_factor = torch.autograd.grad([saved], [x])\n"
        b"    y = ops.quantized.linear_dynamic(x, self.packed, True)\n"
        b"    z = torch.add(torch.matmul(x, x), self.save_scale)\n"
        b'    print("torch.save(x, path) and ops.aten.from_file are only words here")\n'
        b"    w = self.load(z)  # torch.save in a comment\n"
        b"    return torch.relu(\n      w)\n"
    )
    assert_clean(scan_files(tmp_path, {"model.pt": _torchscript(body)}))


_TORCH_SCRIPT_MODULE = """
import sys, torch
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(2))
    def forward(self, x):
        return x * self.w
    @torch.jit.export
    def __getstate__(self):
        return (self.w, self.training)
    @torch.jit.export
    def __setstate__(self, state: tuple[torch.Tensor, bool]):
        self.w = state[0]
        self.training = state[1]
torch.jit.save(torch.jit.script(M()), sys.argv[1])
"""


def _rewrite_setstate(archive: bytes, lines: bytes) -> bytes:
    """The archive with ``lines`` put at the start of the compiled class's __setstate__ (debug records dropped)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as zin, zipfile.ZipFile(out, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name.endswith(".debug_pkl"):
                continue
            if name.endswith("code/__torch__.py"):
                data = data.replace(b"    self.w = (state)[0]\n", lines + b"    self.w = (state)[0]\n")
            zout.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    "case", ["torch-autograd", "module-alias", "getattr-torch", "backslash-continuation"]
)
def test_torchscript_spellings_run_under_real_torch(tmp_path: Path, case: str) -> None:
    """Real torch writes the marker while torch.jit.load reads the archive (no method of the model is called;
    torch.load(weights_only=False) hands the archive to torch.jit.load alike)."""
    pytest.importorskip("torch")
    base = tmp_path / "base.pt"
    made = _child(_TORCH_SCRIPT_MODULE, str(base), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    marker = tmp_path / "marker"
    line = _SPELLINGS[case].replace(b"state,", b"state[0],").replace(b"/tmp/lw-marker", str(marker).encode())
    evil = tmp_path / "evil.pt"
    evil.write_bytes(_rewrite_setstate(base.read_bytes(), line))
    ran = _child("import sys, torch\ntorch.jit.load(sys.argv[1])\n", str(evil), cwd=tmp_path / "run")
    assert ran.returncode == 0, ran.stderr
    assert marker.exists()
    assert_caught(
        scan_files(tmp_path / "scan", {"model.pt": evil.read_bytes()}), "LW-MODEL-031", Severity.CRITICAL
    )
    assert_clean(scan_files(tmp_path / "scan-base", {"model.pt": base.read_bytes()}))
