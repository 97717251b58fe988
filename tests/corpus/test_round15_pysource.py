"""Round 15: ``getattr`` spelled as a method, in the code a torch.package archive ships.

The code check resolved ``getattr(os, "system")``, ``vars(os)["system"]`` and ``os.__dict__["system"]``, but two other
spellings of the same lookup read as harmless names: ``os.__getattribute__("system")`` (the name ``os.__getattribute__``
has no capability) and ``os.__dict__.get("system")`` (resolved as ``os.get``). A shipped module that ran
``os.__getattribute__("system")("...")`` at import scanned clean, and ``PackageImporter`` runs it. Every method that
looks a name up on an owner (``__getattribute__``, a module's ``__getattr__``, the unbound
``object.__getattribute__(X, n)`` / ``type(X).__getattribute__(X, n)``, and ``get``/``pop``/``setdefault``/
``values``/``items`` of ``X.__dict__`` or ``vars(X)``) is now judged as the ``getattr`` it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_redteam_round11_torch_package as r11

from loopwarden.checks.models.pysource import judge_source
from loopwarden.domain import Severity


def _hits(source: str) -> list[tuple[Severity, str]]:
    hits = judge_source(
        source, "pkg.mod", is_package=False, shipped=frozenset({"pkg.mod"}), extern=frozenset()
    )
    return [(h.severity, h.what) for h in hits]


_LOOKUPS = {
    "module-getattribute": ("import os\nos.__getattribute__('system')('id')\n", "os.system"),
    "module-getattribute-folded": ("import os\nos.__getattribute__('sys' + 'tem')('id')\n", "os.system"),
    "object-getattribute-unbound": ("import os\nobject.__getattribute__(os, 'popen')('id')\n", "os.popen"),
    "type-getattribute-unbound": ("import os\ntype(os).__getattribute__(os, 'system')('id')\n", "os.system"),
    "moduletype-getattribute": (
        "import os, types\ntypes.ModuleType.__getattribute__(os, 'system')('id')\n",
        "os.system",
    ),
    "dict-get": ("import os\nos.__dict__.get('system')('id')\n", "os.system"),
    "vars-pop": ("import subprocess\nvars(subprocess).pop('Popen')(['id'])\n", "subprocess.Popen"),
    "dict-setdefault": ("import os\nos.__dict__.setdefault('execv', None)\n", "os.execv"),
    "getattr-of-getattribute": ("import os\ngetattr(os, '__getattribute__')('system')('id')\n", "os.system"),
    "builtins-dict-get": ("import builtins\nbuiltins.__dict__.get('exec')('1')\n", "builtins.exec"),
}


@pytest.mark.parametrize("case", sorted(_LOOKUPS))
def test_a_lookup_method_resolves_to_the_primitive(case: str) -> None:
    source, name = _LOOKUPS[case]
    found = _hits(source)
    assert (Severity.CRITICAL, name) in found, found


@pytest.mark.parametrize(
    "source",
    [
        "import os\nfor f in os.__dict__.values():\n    f()\n",
        "import builtins\nfor k, v in vars(builtins).items():\n    v\n",
        "import os\ndef f(n):\n    return os.__getattribute__(n)\n",
    ],
)
def test_a_computed_lookup_method_on_a_module_of_primitives_is_critical(source: str) -> None:
    assert any(sev is Severity.CRITICAL for sev, _ in _hits(source)), _hits(source)


@pytest.mark.parametrize(
    "source",
    [
        # an nn.Module's own lookups: the owner is the instance, never a module of primitives
        "import torch\nclass M(torch.nn.Module):\n    def __getattr__(self, name):\n"
        "        return torch.nn.Module.__getattr__(self, name)\n",
        "import torch\nclass M(torch.nn.Module):\n    def __getattr__(self, name):\n"
        "        return super().__getattr__(name)\n",
        "class C:\n    def f(self):\n        return self.__dict__.get('weight'), object.__getattribute__(self, 'x')\n",
        "import torch\nlayer = torch.nn.__dict__.get('Linear')\n",
    ],
)
def test_model_code_lookups_stay_quiet(source: str) -> None:
    assert _hits(source) == []


def test_the_real_importer_runs_a_getattribute_payload(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    files = {
        "__init__.py": f"import os\nos.__getattribute__('sys' + 'tem')('touch ' + {str(marker)!r})\n"
        + r11._MODEL
    }
    path = r11._package(tmp_path, "pkg_getattribute", files)
    marker.unlink(missing_ok=True)  # the export ran it in its own process
    found = r11._package_code(path)
    assert any(sev is Severity.CRITICAL and "os.system" in msg for sev, msg in found), found
    loaded = r11._child(r11._LOAD, str(path), cwd=tmp_path / "load")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert marker.exists()
