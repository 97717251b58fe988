"""Sweep 17: published bypasses of the four peer scanners and the loaders' own advisories not in the earlier files.

Every input is built here by code and only scanned; the one test that runs a real loader does it in a child
process and skips when the loader is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_container_bypasses import scan

from loopwarden.checks.models.scanner import scan_paths
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
    mlx-lm 0.31.3: ``load_model(path, strict=False)`` ran the module (marker written); the scan said clean. mlx-vlm
    0.7.10 (the newest) still runs it with no opt-in (``mlx_vlm.utils.load_model``, confirmed the same way)."""
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


# -------------------------------------------------------------------- PEFT adapter_config.json module imports

_ADAPTER: dict[str, object] = {
    "peft_type": "LORA",
    "task_type": None,
    "base_model_name_or_path": "org/base",
    "r": 8,
    "target_modules": ["q"],
    "megatron_config": None,
    "megatron_core": "megatron.core",
}


def _adapter(**keys: object) -> dict[str, bytes]:
    return {
        "adapter_config.json": json.dumps({**_ADAPTER, **keys}).encode(),
        "lw_adapter_arch.py": _MODULE.encode(),
    }


@pytest.mark.parametrize(
    "keys",
    [
        {"auto_mapping": {"base_model_class": "Model", "parent_library": "lw_adapter_arch"}},
        {"auto_mapping": {"base_model_class": "PyShell", "parent_library": "idlelib.idle"}},
        {"auto_mapping": {"base_model_class": "X", "parent_library": "transformers_evil"}},
        {"auto_mapping": {"base_model_class": "X", "parent_library": ["lw_adapter_arch"]}},
        {"megatron_config": {"tensor_model_parallel_size": 1}, "megatron_core": "lw_adapter_arch"},
        {"megatron_config": {"tensor_model_parallel_size": 1}, "megatron_core": "megatronx"},
    ],
    ids=[
        "beside",
        "stdlib-import-time",
        "lookalike-prefix",
        "not-a-string",
        "megatron-beside",
        "megatron-lookalike",
    ],
)
def test_peft_adapter_config_imports_a_module(tmp_path: Path, keys: dict[str, object]) -> None:
    """PEFT imports the module an adapter_config.json names: AutoPeftModel.from_pretrained the
    ``auto_mapping.parent_library`` (with no task_type), LoRA's Megatron dispatcher the ``megatron_core`` (when
    ``megatron_config`` is set; reached from transformers' from_pretrained whenever PEFT is installed). Any name
    before PEFT 0.20 (https://github.com/huggingface/peft/issues/3085, fixed by
    https://github.com/huggingface/peft/pull/3090). Confirmed with PEFT 0.18.1 loading from the adapter folder:
    both keys ran the module shipped beside the config (marker written); the scan said clean."""
    results = scan(tmp_path, _adapter(**keys))
    config = next(t for t in results if "adapter_config" in str(t))
    assert config.verdict is not Verdict.CLEAN, config
    hits = [f for f in config.findings if f.rule_id == "LW-MODEL-042" and "PEFT imports" in f.message]
    assert hits, config.findings
    assert max(f.severity for f in hits) is Severity.HIGH


@pytest.mark.parametrize(
    "keys",
    [
        {
            "auto_mapping": {
                "base_model_class": "BertModel",
                "parent_library": "transformers.models.bert.modeling_bert",
            }
        },
        {
            "auto_mapping": {
                "base_model_class": "VisionTransformer",
                "parent_library": "timm.models.vision_transformer",
            }
        },
        {"auto_mapping": {"base_model_class": "Net", "parent_library": "__main__"}},
        {"auto_mapping": None},
        {"task_type": "CAUSAL_LM", "auto_mapping": {"base_model_class": "X", "parent_library": "anything"}},
        {"megatron_config": {"tensor_model_parallel_size": 2}, "megatron_core": "megatron.core"},
    ],
    ids=["transformers", "timm", "main-script", "none", "task-type-set", "megatron-core"],
)
def test_peft_adapter_configs_peft_writes_stay_clean(tmp_path: Path, keys: dict[str, object]) -> None:
    """What PEFT's save_pretrained writes (the base model class's module; ``__main__`` for a class of the saving
    script; ``megatron.core``) and keys PEFT does not act on are not reported."""
    results = scan(tmp_path, {"adapter_config.json": json.dumps({**_ADAPTER, **keys}).encode()})
    assert results[0].verdict is Verdict.CLEAN, results[0]


def test_peft_auto_mapping_real_loader(tmp_path: Path) -> None:
    """The real loader, where a PEFT before 0.20 is installed, in a child process run from the adapter folder: the
    module named by auto_mapping runs; the scan of the same folder is not clean."""
    peft = pytest.importorskip("peft")
    if tuple(int(p) for p in peft.__version__.split(".")[:2]) >= (0, 20):
        pytest.skip("PEFT 0.20+ refuses the import")
    files = _adapter(auto_mapping={"base_model_class": "Model", "parent_library": "lw_adapter_arch"})
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    child = (
        "from peft import AutoPeftModel\n"
        "try:\n"
        "    AutoPeftModel.from_pretrained('.')\n"
        "except Exception:\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-c", child], cwd=tmp_path, timeout=300, check=False)
    assert (tmp_path / "marker").exists()
    (tmp_path / "marker").unlink()
    results = scan(tmp_path, files)
    assert any(t.verdict is not Verdict.CLEAN for t in results), results


# ------------------------------------------------------------------ a sub-config's auto_map (vLLM Nemotron-VL)


def _nemotron_config(config: dict[str, object]) -> bytes:
    """A Nemotron-Nano-VL config.json with ``config``'s sub-configs."""
    return json.dumps({"model_type": "Llama_Nemotron_Nano_VL", **config}).encode()


_VISION_AUTO_MAP: dict[str, object] = {
    "vision_config": {"auto_map": {"AutoConfig": "attacker/radio--configuration_radio.RADIOConfig"}}
}


@pytest.mark.parametrize(
    ("config", "severity"),
    [
        (
            _VISION_AUTO_MAP,
            Severity.HIGH,
        ),
        (
            {"llm_config": {"nested": {"auto_map": {"AutoModel": ["attacker/m--modeling_m.M", None]}}}},
            Severity.HIGH,
        ),
        ({"text_config": {"auto_map": {"AutoConfig": "configuration_x.XConfig"}}}, Severity.MEDIUM),
    ],
    ids=["vision-config-other-repo", "deeper-list", "local-module"],
)
def test_sub_config_auto_map(tmp_path: Path, config: dict[str, object], severity: Severity) -> None:
    """vLLM 0.11's Nemotron-Nano-VL config fetched and ran the class its ``vision_config.auto_map.AutoConfig``
    names from that repository, whatever trust_remote_code said (CVE-2025-66448,
    https://github.com/advisories/GHSA-8fr4-5q9j-m8gm). Confirmed with the config class of the vLLM 0.11.0 wheel
    (a local folder standing in for the repository): the module ran; the scan said clean, since only the top-level
    auto_map was read. A sub-config's auto_map is now judged like the top-level one."""
    results = scan(tmp_path, {"config.json": _nemotron_config(config)})
    hits = [f for f in results[0].findings if f.rule_id == "LW-MODEL-042" and "auto_map" in f.message]
    assert hits, results[0]
    assert max(f.severity for f in hits) is severity


def test_sub_config_without_auto_map_stays_clean(tmp_path: Path) -> None:
    """Composite configs transformers writes (sub-configs without auto_map) are not reported."""
    data = {"model_type": "llava", "vision_config": {"model_type": "clip_vision_model"}, "text_config": {}}
    results = scan(tmp_path, {"config.json": json.dumps(data).encode()})
    assert results[0].verdict is Verdict.CLEAN, results[0]


# --------------------------------------------------------------- transformers custom_generate/generate.py

_GENERATE = (
    "import os, pathlib\n"
    "pathlib.Path(os.environ['LW_MARKER']).write_text('ran')\n"
    "def generate(model, **kw):\n"
    "    return None\n"
)


@pytest.mark.parametrize("where", ["custom_generate/generate.py", "repo/Custom_Generate/generate.py"])
def test_custom_generate_module_is_reported(tmp_path: Path, where: str) -> None:
    """transformers imports a model folder's ``custom_generate/generate.py`` as the model's generate() when the
    model is loaded with trust_remote_code=True, and ``generate(custom_generate=<local folder>)`` ran it with no
    opt-in until https://github.com/huggingface/transformers/pull/46483. Confirmed with transformers 5.24
    (from_pretrained(folder, trust_remote_code=True) ran it); the scan said clean (Python files were not read)."""
    results = scan(tmp_path, {where: _GENERATE.encode()})
    hits = [f for f in results[0].findings if f.rule_id == "LW-MODEL-042" and "custom_generate" in f.message]
    assert hits and max(f.severity for f in hits) is Severity.MEDIUM, results[0]


@pytest.mark.parametrize("where", ["generate.py", "scripts/generate.py", "custom_generate/utils.py"])
def test_other_python_files_stay_clean(tmp_path: Path, where: str) -> None:
    """Other Python files of a model folder are not read by the loaders: not reported."""
    results = scan(tmp_path, {where: _GENERATE.encode()})
    assert results[0].verdict is Verdict.CLEAN, results[0]


def test_custom_generate_real_loader(tmp_path: Path) -> None:
    """The real loader in a child process: from_pretrained(folder, trust_remote_code=True) runs the module."""
    pytest.importorskip("transformers")
    pytest.importorskip("torch")
    model = tmp_path / "model"
    child = (
        "import sys\n"
        "from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel\n"
        "cfg = GPT2Config(n_layer=1, n_head=1, n_embd=8, vocab_size=16, n_positions=16)\n"
        "GPT2LMHeadModel(cfg).save_pretrained(sys.argv[1])\n"
        "import pathlib\n"
        "(pathlib.Path(sys.argv[1]) / 'custom_generate').mkdir()\n"
        "(pathlib.Path(sys.argv[1]) / 'custom_generate' / 'generate.py').write_text(sys.argv[2])\n"
        "AutoModelForCausalLM.from_pretrained(sys.argv[1], trust_remote_code=True)\n"
    )
    env = {**os.environ, "LW_MARKER": str(tmp_path / "marker"), "HF_HOME": str(tmp_path / "hf")}
    subprocess.run([sys.executable, "-c", child, str(model), _GENERATE], env=env, timeout=600, check=False)
    assert (tmp_path / "marker").exists()
    results = list(scan_paths([str(model / "custom_generate" / "generate.py")], jobs=1).targets)
    assert results[0].verdict is not Verdict.CLEAN, results[0]
