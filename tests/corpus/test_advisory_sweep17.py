"""Sweep 17: published bypasses of the four peer scanners and the loaders' own advisories not in the earlier files.

Every input is built here by code and only scanned; the one test that runs a real loader does it in a child
process and skips when the loader is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_container_bypasses import scan

from loopwarden.domain import Severity, Verdict

# ------------------------------------------------------------------------------- mlx-lm config.json model_file

_MLX_CONFIG: dict[str, object] = {
    "model_type": "llama",
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "intermediate_size": 16,
    "num_attention_heads": 1,
    "rms_norm_eps": 1e-5,
    "vocab_size": 16,
}
# what the module does when imported: a marker file beside it (the harmless effect of the loader test)
_MODULE = "import pathlib\n(pathlib.Path(__file__).parent / 'marker').write_text('ran')\n"


def _mlx_folder(model_file: object) -> dict[str, bytes]:
    return {
        "config.json": json.dumps({**_MLX_CONFIG, "model_file": model_file}).encode(),
        "custom.py": _MODULE.encode(),
    }


@pytest.mark.parametrize(
    "model_file",
    ["custom.py", "../outside.py", "/opt/elsewhere/arch.py", "sub/dir/custom", ["custom.py"]],
    ids=["beside", "dotdot", "absolute", "no-suffix", "not-a-string"],
)
def test_mlx_lm_model_file_runs_a_module(tmp_path: Path, model_file: object) -> None:
    """mlx-lm's load_model imports the Python file a config.json's ``model_file`` names (joined to the model folder,
    so ``../`` and absolute paths leave it): on every plain load before mlx-lm 0.32, with trust_remote_code=True
    since. CVE-2026-5843 / GHSA-9m9w-53g9-47c4 (https://github.com/ml-explore/mlx-lm/pull/1385). Confirmed with
    mlx-lm 0.31.3: ``load_model(path, strict=False)`` ran the module (marker written); the scan said clean."""
    results = scan(tmp_path, _mlx_folder(model_file))
    config = results[0]
    assert config.verdict is not Verdict.CLEAN, config
    hits = [f for f in config.findings if f.rule_id == "LW-MODEL-042" and "model_file" in f.message]
    assert hits, config.findings
    assert max(f.severity for f in hits) is Severity.HIGH


def test_mlx_lm_config_without_model_file_stays_clean(tmp_path: Path) -> None:
    """The plain config mlx-lm writes (no ``model_file``) is not reported."""
    results = scan(tmp_path, {"config.json": json.dumps(_MLX_CONFIG).encode()})
    assert results[0].verdict is Verdict.CLEAN, results[0]


def test_mlx_lm_model_file_real_loader(tmp_path: Path) -> None:
    """The real loader, where installed, in a child process: the module runs (with trust_remote_code=True where the
    installed mlx-lm has the opt-in) and the scan of the same folder is not clean."""
    pytest.importorskip("mlx_lm.utils")
    for name, data in _mlx_folder("custom.py").items():
        (tmp_path / name).write_bytes(data)
    child = (
        "import inspect, pathlib, sys\n"
        "from mlx_lm import utils\n"
        "kw = {'trust_remote_code': True} if 'trust_remote_code' in "
        "inspect.signature(utils.load_model).parameters else {}\n"
        "try:\n"
        "    utils.load_model(pathlib.Path(sys.argv[1]), strict=False, **kw)\n"
        "except Exception:\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-c", child, str(tmp_path)], timeout=300, check=False)
    assert (tmp_path / "marker").exists()
    (tmp_path / "marker").unlink()
    results = scan(tmp_path, _mlx_folder("custom.py"))
    assert results[0].verdict is not Verdict.CLEAN, results[0]
