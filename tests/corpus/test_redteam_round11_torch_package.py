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
    e.extern("numpy")
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


# -- capability classes and the ways around a name ---------------------------------------------------------------

_BYPASS_CASES = {
    "sys-modules": "import os\nos.sys.modules['o' + 's'].system('touch ' + MARKER)\n",
    "globals-builtins": "globals()['__builtins__']['ex' + 'ec'](\"open(\" + repr(MARKER) + \", 'w')\")\n",
    "vars-of-os": "import os\nvars(os)['sys' + 'tem']('touch ' + MARKER)\n",
    "dict-of-os-reversed": "import os\nos.__dict__['metsys'[::-1]]('touch ' + MARKER)\n",
    "base64-import": "import base64\n__import__(base64.b64decode('b3M=').decode()).system('touch ' + MARKER)\n",
    "importlib-computed": "import importlib\nN = 'subprocess'\nimportlib.import_module(N).run(['touch', MARKER])\n",
    "function-value": "import os\nimport functools\nRUN = functools.partial(os.system, 'touch ' + MARKER)\nRUN()\n",
    "lambda-default": "import os\nF = lambda x=os.system('touch ' + MARKER): x\n",
    "init-subclass": "import os\n\n\nclass Base:\n    def __init_subclass__(cls):\n"
    "        os.system('touch ' + MARKER)\n\n\nclass Child(Base):\n    pass\n",
    "metaclass": "import os\n\n\nclass Meta(type):\n    def __new__(mcs, *args):\n"
    "        os.system('touch ' + MARKER)\n        return super().__new__(mcs, *args)\n\n\n"
    "class Thing(metaclass=Meta):\n    pass\n",
    "try-except": "try:\n    import subprocess as s\n    s.Popen(['touch', MARKER]).wait()\n"
    "except Exception:\n    pass\n",
    "subclasses-walk": "X = [c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen']\n",
    "torch-os": "import torch\ngetattr(getattr(torch, 'o' + 's'), 'sys' + 'tem')('touch ' + MARKER)\n",
    "star-import": "from os import *\nsystem('touch ' + MARKER)\n",
    "pickle-loads": "import pickle\nX = pickle.loads(b'N.')\n",
    "frame-builtins": "import inspect\ninspect.currentframe().f_builtins['exec']('1')\n",
}


@pytest.mark.parametrize("case", sorted(_BYPASS_CASES))
def test_names_reached_around_the_obvious_spelling_are_critical(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "PWNED"
    name = "pkg_" + case.replace("-", "_")
    path = _package(tmp_path, name, {"__init__.py": _marker_payload(marker, _BYPASS_CASES[case]) + _MODEL})
    found = _package_code(path)
    assert found and max(sev for sev, _ in found) is Severity.CRITICAL, (found, _findings(path))


_HIGH_CASES = {
    "network": "import urllib.request\n\n\ndef fetch():\n    return urllib.request.urlopen('http://127.0.0.1:9/x')\n",
    "socket": "import socket\nS = socket.socket\n",
    "delete": "import shutil\n\n\ndef clean(p):\n    shutil.rmtree(p)\n",
    "os-remove": "import os as o\n\n\ndef clean(p):\n    o.remove(p)\n",
    "ctypes": "import ctypes\nLIB = ctypes.CDLL(None)\n",
    "path-write": "from pathlib import Path\n\n\ndef save(p):\n    Path(p).write_text('x')\n",
    "patch-torch-load": "import torch\ntorch.load = print\n",
    "environment": "import os\nos.environ['LD_PRELOAD'] = '/x.so'\n",
}


@pytest.mark.parametrize("case", sorted(_HIGH_CASES))
def test_network_file_writes_native_code_and_patching_are_high(tmp_path: Path, case: str) -> None:
    path = _package(tmp_path, "pkg_" + case.replace("-", "_"), {"__init__.py": _HIGH_CASES[case] + _MODEL})
    found = _package_code(path)
    assert found and max(sev for sev, _ in found) is Severity.HIGH, found


def test_the_method_the_loader_calls_is_named(tmp_path: Path) -> None:
    source = _MODEL + "\n    def __setstate__(self, state):\n        import os\n        os.system('id')\n"
    source += "        self.__dict__.update(state)\n"
    path = _package(tmp_path, "pkg_setstate_named", {"__init__.py": source})
    ((sev, message),) = _package_code(path)
    assert sev is Severity.CRITICAL
    assert "M.__setstate__ (which loading calls)" in message and "os.system" in message


_CONFIRM = {
    "sys-modules": _BYPASS_CASES["sys-modules"],
    "globals-builtins": _BYPASS_CASES["globals-builtins"],
    "metaclass": _BYPASS_CASES["metaclass"],
    "torch-os": _BYPASS_CASES["torch-os"],
}


@pytest.mark.parametrize("case", sorted(_CONFIRM))
def test_the_real_importer_runs_the_bypasses(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "PWNED"
    path = _package(
        tmp_path,
        "pkg_c_" + case.replace("-", "_"),
        {"__init__.py": _marker_payload(marker, _CONFIRM[case]) + _MODEL},
    )
    marker.unlink(missing_ok=True)  # the export ran it in its own process
    assert any(sev is Severity.CRITICAL for sev, _ in _package_code(path))
    loaded = _child(_LOAD, str(path), cwd=tmp_path / "load")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert marker.exists()


# -- imports from the environment, mocks and what the importer never runs -----------------------------------------

_EXPORT_EXTERN = """
import sys, torch, torch.package
sys.path.insert(0, sys.argv[2])
mod = __import__(sys.argv[3], fromlist=["M"])
with torch.package.PackageExporter(sys.argv[1]) as e:
    e.extern(sys.argv[4])
    e.mock(sys.argv[5])
    e.intern(sys.argv[3])
    e.save_pickle("model", "model.pkl", mod.M())
"""


def test_an_unknown_extern_import_is_medium_and_a_mocked_module_is_understood(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "helperlib_x").mkdir(parents=True)
    (src / "helperlib_x" / "__init__.py").write_text("def act(x):\n    return x\n")
    (src / "mockedlib_y").mkdir()
    (src / "mockedlib_y" / "__init__.py").write_text("VALUE = 1\n")
    (src / "pkg_ext").mkdir()
    (src / "pkg_ext" / "__init__.py").write_text(
        "import helperlib_x\nimport mockedlib_y\n" + textwrap.dedent(_MODEL)
    )
    out = tmp_path / "scan" / "ext.pt"
    out.parent.mkdir(parents=True)
    made = _child(
        _EXPORT_EXTERN, str(out), str(src), "pkg_ext", "helperlib_x", "mockedlib_y", cwd=tmp_path / "x"
    )
    assert made.returncode == 0, made.stderr[-2000:]
    found = _package_code(out)
    assert [sev for sev, _ in found] == [Severity.MEDIUM], found
    assert "import helperlib_x" in found[0][1] and "mockedlib_y" not in found[0][1]
    assert max(sev for _, sev, _ in _findings(out)) <= Severity.MEDIUM


def test_a_mocked_known_module_is_not_reported_as_shadowing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "pkg_mocknp").mkdir(parents=True)
    (src / "pkg_mocknp" / "__init__.py").write_text("import torch\nimport scipy\n" + textwrap.dedent(_MODEL))
    out = tmp_path / "scan" / "mock.pt"
    out.parent.mkdir(parents=True)
    made = _child(_EXPORT_EXTERN, str(out), str(src), "pkg_mocknp", "torch", "scipy", cwd=tmp_path / "x")
    if made.returncode != 0 and "scipy" in made.stderr:
        pytest.skip("scipy is not installed")
    assert made.returncode == 0, made.stderr[-2000:]
    assert max(sev for _, sev, _ in _findings(out)) <= Severity.MEDIUM, _findings(out)


def _rewrite(path: Path, extra: dict[str, bytes]) -> Path:
    import zipfile

    out = path.with_name("re_" + path.name)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info))
        for name, data in extra.items():
            zout.writestr(name, data)
    return out


def test_pyc_members_are_never_run_and_source_under_another_root_fails_the_loader(tmp_path: Path) -> None:
    path = _package(tmp_path, "pkg_roots", {"__init__.py": _MODEL})
    root = "pkg_roots"  # PackageExporter names the folder after the file
    marker = tmp_path / "PWNED"
    payload = f"import os\nos.system('touch {marker}')\n".encode()
    with_pyc = _rewrite(
        path, {f"{root}/pkg_roots/evil.pyc": b"\x00" * 16, f"{root}/pkg_roots/loadme.pyc": payload}
    )
    assert _package_code(with_pyc) == []
    other = _rewrite(path, {"other/pkg_roots/__init__.py": payload})
    assert _package_code(other) == []  # not under the archive's root: PyTorchFileReader refuses the archive
    loaded = _child(_LOAD, str(other), cwd=tmp_path / "load")
    assert loaded.returncode != 0 and "not in a subdirectory" in loaded.stderr
    assert not marker.exists()


def test_a_source_this_python_cannot_parse_is_unverified(tmp_path: Path) -> None:
    path = _package(tmp_path, "pkg_syntax", {"__init__.py": _MODEL})
    root = "pkg_syntax"
    bad = _rewrite(path, {f"{root}/pkg_syntax/newer.py": b"type Alias[T] = list[T]\nmatch = (\n"})
    (target,) = scan_paths([str(bad)], jobs=1).targets
    assert target.verdict.value == "unverified", (target.reason, target.findings)
    assert "does not parse" in (target.reason or "")


def test_a_larger_benign_model_package_gets_nothing_above_medium(tmp_path: Path) -> None:
    source = """
    from __future__ import annotations

    import collections
    import dataclasses
    import functools
    import math
    import typing
    from typing import Optional

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn


    @dataclasses.dataclass
    class Config:
        dim: int = 8
        heads: int = 2
        act: str = "gelu"
        extra: dict[str, int] = dataclasses.field(default_factory=dict)


    def init_weights(module: nn.Module, input: Optional[torch.Tensor] = None) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=1.0 / math.sqrt(module.in_features))


    class Attention(nn.Module):
        def __init__(self, cfg: Config, compile: bool = False):
            super().__init__()
            self.cfg = cfg
            self.qkv = nn.Linear(cfg.dim, cfg.dim * 3)
            self.proj = nn.Linear(cfg.dim, cfg.dim)
            self.act = getattr(F, cfg.act)
            self.cache: collections.OrderedDict[str, torch.Tensor] = collections.OrderedDict()
            self.use_compile = compile

        def forward(self, input: torch.Tensor) -> torch.Tensor:
            q, k, v = self.qkv(input).chunk(3, dim=-1)
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)
            return self.proj(self.act(att @ v))


    class M(nn.Module):
        def __init__(self):
            super().__init__()
            cfg = Config()
            self.blocks = nn.ModuleList([Attention(cfg) for _ in range(2)])
            self.register_buffer("pos", torch.from_numpy(np.arange(cfg.dim, dtype=np.float32)))
            self.apply(init_weights)
            torch.backends.cudnn.benchmark = False

        @functools.lru_cache(maxsize=None)
        def size(self) -> int:
            return len(self.blocks)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for block in self.blocks:
                x = block(x) + x
            return x + self.pos

        def __setstate__(self, state: typing.Any) -> None:
            super().__setstate__(state)
    """
    path = _package(
        tmp_path, "pkg_benign_big", {"__init__.py": source, "layers.py": "import math\nPI = math.pi\n"}
    )
    found = _package_code(path)  # getattr(F, cfg.act): a computed lookup, medium
    assert [sev for sev, _ in found] == [Severity.MEDIUM] and "getattr(torch.nn.functional" in found[0][1], (
        found
    )
    assert max(sev for _, sev, _ in _findings(path)) <= Severity.MEDIUM
