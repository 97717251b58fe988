"""Advisories and fixes of 2026 for model loaders and scanners that the earlier sweeps did not cover.

Each case is built as bytes here and only scanned; where the loader is installed, a test confirms that the loader
really reads the bytes the way the case assumes (a config is parsed, never a model built or a kernel fetched).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.domain import Severity, Verdict

# ------------------------------------------------------------ transformers: Hub code named by config.json

_LLAMA: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_hidden_layers": 1,
    "vocab_size": 128,
}


def _config(**extra: Any) -> bytes:
    return json.dumps({**_LLAMA, **extra}).encode()


@pytest.mark.parametrize(
    ("extra", "severity"),
    [
        ({"_attn_implementation_internal": "attacker/flash-kernel"}, Severity.HIGH),
        ({"attn_implementation": "attacker/flash-kernel"}, Severity.HIGH),
        ({"_attn_implementation": "attacker/flash-kernel@main:flash_attn_func"}, Severity.HIGH),
        ({"attn_implementation": "paged|attacker/flash-kernel"}, Severity.HIGH),
        ({"_attn_implementation": {"": "sdpa", "text_config": "attacker/k"}}, Severity.HIGH),
        ({"text_config": {"model_type": "llama", "attn_implementation": "attacker/k"}}, Severity.HIGH),
        ({"attn_implementation": "kernels-community/flash-attn2"}, Severity.LOW),
    ],
    ids=["internal", "public", "rev-and-function", "paged", "per-subconfig", "in-subconfig", "curated-org"],
)
def test_attention_kernel_from_the_hub_is_reported(
    tmp_path: Path, extra: dict[str, Any], severity: Severity
) -> None:
    """CVE-2026-4372: an attention implementation of the form org/repo[@rev][:function] in config.json makes
    from_pretrained download that Hub repository with the `kernels` package and import its code, without
    trust_remote_code (any repository in transformers 4.56-5.2; kernels-community ones still in 5.3+)."""
    res = scan_files(tmp_path, {"config.json": _config(**extra)})
    assert_caught(res, "LW-MODEL-042", at_least=severity)
    assert res[0].max_severity() is severity


@pytest.mark.parametrize(
    "extra",
    [
        {"attn_implementation": "sdpa"},
        {"_attn_implementation": "flash_attention_2"},
        {"attn_implementation": "paged|eager"},
        {"_attn_implementation_autoset": True},
        {"attn_implementation": None},
        {"note": "kernels-community/flash-attn2", "_name_or_path": "meta-llama/Llama-3.2-1B"},
        {"text_config": {"_name_or_path": "google/gemma-3-1b-it"}},
        {"trust_remote_code": True, "text_config": {"_name_or_path": ""}},
    ],
)
def test_configs_with_built_in_attention_or_no_hub_code_stay_clean(
    tmp_path: Path, extra: dict[str, Any]
) -> None:
    res = scan_files(tmp_path, {"config.json": _config(**extra)})
    assert res[0].verdict is Verdict.CLEAN, res[0]


def test_attention_key_outside_a_model_config_is_not_judged(tmp_path: Path) -> None:
    """Only a model's config.json is a PretrainedConfig; a generation or processor config carries no attention."""
    res = scan_files(
        tmp_path, {"generation_config.json": json.dumps({"attn_implementation": "a/b"}).encode()}
    )
    assert res[0].verdict is Verdict.CLEAN, res[0]


@pytest.mark.parametrize(
    ("sub", "severity"),
    [
        ({"_name_or_path": "attacker/detector", "model_type": "evil"}, Severity.HIGH),
        ({"_name_or_path": "../detector", "model_type": "evil"}, Severity.MEDIUM),
    ],
)
def test_config_passing_trust_remote_code_to_a_sub_config_is_reported(
    tmp_path: Path, sub: dict[str, Any], severity: Severity
) -> None:
    """CVE-2026-5241: transformers 5.2's LightGlueConfig read trust_remote_code from config.json and passed it to
    AutoConfig.from_pretrained of its keypoint-detector sub-config, so the repository that sub-config names ran its
    auto_map code though the caller passed trust_remote_code=False."""
    config = {"model_type": "lightglue", "trust_remote_code": True, "keypoint_detector_config": sub}
    res = scan_files(tmp_path, {"config.json": json.dumps(config).encode()})
    assert_caught(res, "LW-MODEL-042", at_least=severity)
    assert res[0].max_severity() is severity


@pytest.mark.parametrize("key", ["attn_implementation", "_attn_implementation"])
def test_transformers_takes_the_attention_implementation_from_config_json(tmp_path: Path, key: str) -> None:
    """The keys the check reads are the ones transformers reads (the config is only parsed; nothing is fetched)."""
    transformers = pytest.importorskip("transformers")
    (tmp_path / "config.json").write_bytes(_config(**{key: "attacker/flash-kernel"}))
    config = transformers.AutoConfig.from_pretrained(str(tmp_path), local_files_only=True)
    assert config._attn_implementation == "attacker/flash-kernel"
    from transformers.integrations.hub_kernels import is_kernel

    assert is_kernel(config._attn_implementation)


def test_configs_transformers_writes_stay_clean(tmp_path: Path) -> None:
    """save_pretrained of composite and plain configs, with an attention implementation chosen at load time (it is
    not written) and sub-configs that carry their own _name_or_path."""
    transformers = pytest.importorskip("transformers")
    configs = {
        "llama": transformers.LlamaConfig(hidden_size=64, num_attention_heads=4, attn_implementation="sdpa"),
        "clip": transformers.CLIPConfig(),
        "encdec": transformers.EncoderDecoderConfig.from_encoder_decoder_configs(
            transformers.BertConfig(), transformers.BertConfig()
        ),
    }
    names = []
    for name, config in configs.items():
        config.save_pretrained(str(tmp_path / name))
        names.append(f"{name}/config.json")
    res = scan_files(tmp_path, {n: (tmp_path / n).read_bytes() for n in names})
    assert all(r.verdict is Verdict.CLEAN for r in res), res
