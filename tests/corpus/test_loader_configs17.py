"""Loader configs 17: files beside the weights that make a loader import or run code.

Every input is built here by code and only scanned; a test that also runs the real loader does it in a child process
(the harmless effect: a marker file in the test's temporary folder) and skips when the loader is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_container_bypasses import scan

from loopwarden.domain import Severity, Verdict

# what a module does when imported: a marker file beside it
_MODULE = "import pathlib\n(pathlib.Path(__file__).parent / 'marker').write_text('ran')\nclass Evil:\n    pass\n"

# ------------------------------------------------------------------ sentence-transformers Router / Asym ``types``

_ROUTER = "sentence_transformers.base.modules.router.Router"


def _router_config(types: dict[str, object]) -> dict[str, object]:
    return {
        "types": types,
        "structure": {"query": list(types)[:1], "document": list(types)[:1]},
        "parameters": {"default_route": "query", "allow_empty_key": True, "route_mappings": {}},
    }


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("router_config.json", "evil_mod.Evil"),
        ("router_config.json", "os.system"),
        ("config.json", "evil_mod.Evil"),
        ("router_config.json", ["evil_mod.Evil"]),
    ],
    ids=["router-local-module", "router-dangerous", "legacy-config-json", "not-a-string"],
)
def test_sentence_transformers_router_types_are_judged(tmp_path: Path, name: str, ref: object) -> None:
    """A sentence-transformers Router (and the older Asym module) imports the class each route's ``types`` entry
    names and calls its ``load()`` on the route's folder: sentence-transformers 6.x with trust_remote_code=True
    (a module beside the config is fetched by transformers' dynamic-module loader), before 6.0 with no opt-in at all
    (like a ``modules.json`` ``type``). Confirmed with sentence-transformers 6.2.0: ``SentenceTransformer(folder,
    trust_remote_code=True)`` imported ``evil_mod.py`` of the folder (marker written); the scan said clean."""
    results = scan(tmp_path, {f"0/{name}": json.dumps(_router_config({"q": ref})).encode()})
    config = results[0]
    assert config.verdict is not Verdict.CLEAN, config
    if not isinstance(ref, str):
        assert config.verdict is Verdict.UNVERIFIED, config  # not a name the scanner can judge: fails closed
        return
    hits = [f for f in config.findings if f.rule_id in ("LW-MODEL-042", "LW-MODEL-005") or "types" in f.message]
    assert hits, config.findings
    assert config.max_severity() is not None and config.max_severity() >= Severity.HIGH


def test_sentence_transformers_router_real_loader_imports_the_module(tmp_path: Path) -> None:
    """The real loader runs the module a Router's ``router_config.json`` names (the miss above, end to end)."""
    pytest.importorskip("sentence_transformers")
    model = tmp_path / "model"
    files = {
        "modules.json": json.dumps([{"idx": 0, "name": "0", "path": "0", "type": _ROUTER}]).encode(),
        "0/router_config.json": json.dumps(_router_config({"q": "evil_mod.Evil"})).encode(),
        "evil_mod.py": _MODULE.encode(),
    }
    # the module is copied into transformers' modules cache before it is imported: the marker path is written in
    files["evil_mod.py"] = _MODULE.replace("pathlib.Path(__file__).parent", f"pathlib.Path({str(tmp_path)!r})").encode()
    results = scan(model, files)
    child = (
        "import sys\nfrom sentence_transformers import SentenceTransformer\n"
        "try:\n    SentenceTransformer(sys.argv[1], trust_remote_code=True)\nexcept Exception:\n    pass\n"
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-c", child, str(model)], cwd=tmp_path, env=env, timeout=300, check=False)
    if not (tmp_path / "marker").exists():
        pytest.skip("this sentence-transformers version does not load Router modules this way")
    config = next(r for r in results if r.path.endswith("router_config.json"))
    assert config.verdict is not Verdict.CLEAN, config


def _benign_router(tmp_path: Path) -> tuple[Path, str]:
    """A Router saved by sentence-transformers itself when it is installed, else a folder mirroring what 6.2 writes."""
    folder = tmp_path / "router"
    try:
        from sentence_transformers.base.modules.dense import Dense
        from sentence_transformers.base.modules.normalize import Normalize
        from sentence_transformers.base.modules.router import Router
    except ImportError:
        types = {
            "query_0_Dense": "sentence_transformers.base.modules.dense.Dense",
            "document_0_Dense": "sentence_transformers.base.modules.dense.Dense",
            "document_1_Normalize": "sentence_transformers.base.modules.normalize.Normalize",
        }
        config = {
            "types": types,
            "structure": {"query": ["query_0_Dense"], "document": ["document_0_Dense", "document_1_Normalize"]},
            "parameters": {"default_route": "document", "allow_empty_key": True, "route_mappings": {}},
        }
        folder.mkdir()
        (folder / "router_config.json").write_text(json.dumps(config, indent=4))
        return folder, "mirrored"
    router = Router.for_query_document(query_modules=[Dense(4, 4)], document_modules=[Dense(4, 4), Normalize()])
    router.save(str(folder))
    return folder, "real"


def test_sentence_transformers_router_benign_is_clean(tmp_path: Path) -> None:
    """What sentence-transformers writes for a Router of its own modules stays clean."""
    folder, _ = _benign_router(tmp_path)
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    results = scan(tmp_path / "scan", files)
    assert any(r.path.endswith("router_config.json") for r in results)
    for r in results:
        assert r.verdict is Verdict.CLEAN, r
