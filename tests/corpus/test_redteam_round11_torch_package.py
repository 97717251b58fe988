"""Red-team round 11: code a torch.package archive ships.

``torch.package.PackageImporter.load_pickle`` imports the modules its pickle names from the archive's own source and
runs them. loopwarden reported such a class only as a module it does not know (LW-MODEL-006, medium), whatever the
shipped source did; a module that called ``os.system`` at import was no worse than a plain model class. Each shipped
source is now judged by the code check (parsed, never run): LW-MODEL-050.

Every archive is written by the real ``PackageExporter`` in a child process (exporting imports the module, which
runs its payload there, never in the test process); a few are then loaded by the real ``PackageImporter`` in another
child process to confirm the payload runs on load.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity

torch = pytest.importorskip("torch")

_EXPORT = """
import sys, torch, torch.package
sys.path.insert(0, sys.argv[2])
mod = __import__(sys.argv[3], fromlist=["M"])
with torch.package.PackageExporter(sys.argv[1]) as e:
    e.intern(sys.argv[3] + ".**")
    e.intern(sys.argv[3])
    e.save_pickle("model", "model.pkl", mod.M())
"""

_LOAD = """
import sys, torch.package
torch.package.PackageImporter(sys.argv[1]).load_pickle("model", "model.pkl")
print("loaded")
"""

_MODEL = """
import torch


class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        return self.lin(x)
"""


def _child(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _package(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    """An archive exported from the package ``name`` whose files (relative path -> source) are written first."""
    src = tmp_path / "src"
    for rel, text in files.items():
        path = src / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    out = tmp_path / "scan" / f"{name}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    made = _child(_EXPORT, str(out), str(src), name, cwd=tmp_path / "export")
    assert made.returncode == 0, made.stderr[-2000:]
    return out


def _findings(path: Path) -> list[tuple[str, Severity, str]]:
    (target,) = scan_paths([str(path)], jobs=1).targets
    return [(f.rule_id, f.severity, f.message) for f in target.findings]


def _package_code(path: Path) -> list[tuple[Severity, str]]:
    return [(sev, msg) for rule, sev, msg in _findings(path) if rule == "LW-MODEL-050"]


def _marker_payload(marker: Path, call: str) -> str:
    return call.replace("MARKER", repr(str(marker)))


_CRITICAL_CASES = {
    "module-level-os-system": {"__init__.py": "import os\nos.system('touch ' + MARKER)\n" + _MODEL},
    "aliased-subprocess": {
        "__init__.py": "import subprocess as sp\nsp.run(['touch', MARKER])\n" + _MODEL,
    },
    "from-import-alias": {"__init__.py": "from os import system as s\ns('touch ' + MARKER)\n" + _MODEL},
    "dunder-import": {"__init__.py": "__import__('os').system('touch ' + MARKER)\n" + _MODEL},
    "computed-builtins-getattr": {
        "__init__.py": "import builtins\nf = getattr(builtins, 'ex' + 'ec')\n" + _MODEL
    },
    "computed-getattr-on-os": {"__init__.py": "import os\nf = getattr(os, 'sys' + 'tem')\n" + _MODEL},
    "exec-in-setstate": {
        "__init__.py": _MODEL
        + '\n    def __setstate__(self, state):\n        exec("open(" + repr(MARKER) + ", \'w\')")\n'
        + "        self.__dict__.update(state)\n",
    },
    "submodule-imported-by-the-named-one": {
        "__init__.py": "from . import helper\n" + _MODEL,
        "helper.py": "import os\nos.system('touch ' + MARKER)\n",
    },
    "decorator-at-class-definition": {
        "__init__.py": "import torch\nimport os\n\n\ndef deco(cls):\n    os.popen('touch ' + MARKER)\n"
        "    return cls\n\n\n@deco\nclass M(torch.nn.Module):\n    def forward(self, x):\n        return x\n",
    },
}


@pytest.mark.parametrize("case", sorted(_CRITICAL_CASES))
def test_shipped_source_calling_a_primitive_is_critical(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "PWNED"
    files = {rel: _marker_payload(marker, text) for rel, text in _CRITICAL_CASES[case].items()}
    name = "pkg_" + case.replace("-", "_")
    path = _package(tmp_path, name, files)
    found = _package_code(path)
    assert found, _findings(path)
    assert max(sev for sev, _ in found) is Severity.CRITICAL, found


@pytest.mark.parametrize("case", ["module-level-os-system", "submodule-imported-by-the-named-one"])
def test_the_real_importer_runs_what_is_reported(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "PWNED"
    files = {rel: _marker_payload(marker, text) for rel, text in _CRITICAL_CASES[case].items()}
    path = _package(tmp_path, "pkg_" + case.replace("-", "_"), files)
    marker.unlink(missing_ok=True)  # the export ran it in its own process
    assert any(sev is Severity.CRITICAL for sev, _ in _package_code(path))
    # a fresh process where the module exists only inside the archive
    loaded = _child(_LOAD, str(path), cwd=tmp_path / "load")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert marker.exists()


def test_shipped_source_that_reads_a_file_is_medium_and_one_that_writes_high(tmp_path: Path) -> None:
    source = "VOCAB = open(__file__).read()\n" + _MODEL
    path = _package(tmp_path, "pkg_reads", {"__init__.py": source})
    found = _package_code(path)
    assert [sev for sev, _ in found] == [Severity.MEDIUM], found
    source = "import os\nVOCAB = open(os.path.expanduser('~/.bashrc'), 'a')\n" + _MODEL
    path = _package(tmp_path / "w", "pkg_writes", {"__init__.py": source})
    found = _package_code(path)
    assert [sev for sev, _ in found] == [Severity.HIGH], found


def test_plain_model_code_gets_no_code_finding(tmp_path: Path) -> None:
    source = """
    import functools
    import math

    import torch
    from torch import nn


    class Block(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.lin = nn.Linear(n, n)
            self.scale = math.sqrt(n)

        def forward(self, x):
            return functools.reduce(lambda a, _: a * 1.0, range(2), self.lin(x)) / self.scale


    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = Block(2)
            self.act = getattr(nn, "ReLU")()

        def forward(self, x):
            return self.act(self.b(x))
    """
    path = _package(tmp_path, "pkg_plain", {"__init__.py": source})
    assert _package_code(path) == []
    assert max(sev for _, sev, _ in _findings(path)) <= Severity.MEDIUM  # the module loopwarden does not know


def test_computed_lookups_of_model_code_are_medium(tmp_path: Path) -> None:
    source = _MODEL + (
        "\n    def layer(self, i):\n        return getattr(self, f'lin{i}', self.lin)\n"
        "\n    def state(self):\n        return dict(self.__dict__)\n"
    )
    path = _package(tmp_path, "pkg_lookups", {"__init__.py": source})
    found = _package_code(path)
    assert found and all(sev is Severity.MEDIUM for sev, _ in found), found


def test_a_source_too_long_to_parse_that_names_a_primitive_is_unverified(tmp_path: Path) -> None:
    filler = "".join(f"CONST_{i} = {i}\n" for i in range(40000))
    source = filler + "import os\nX = os.getcwd()\n" + _MODEL
    path = _package(tmp_path, "pkg_long", {"__init__.py": source})
    (target,) = scan_paths([str(path)], jobs=1).targets
    assert target.verdict.value == "unverified", (target.reason, target.findings)
    assert "longer than" in (target.reason or "")
