"""Hydra ``_target_`` (and jsonargparse ``class_path``) in JSON configs and in weights-file metadata.

Unit 42 (January 2026, "RCE vulnerabilities in AI Python libraries") showed three libraries that hand model
metadata to ``hydra.utils.instantiate``: NeMo (CVE-2025-23304, ``model_config.yaml``), Salesforce Uni2TS
(CVE-2026-22584, GHSA-7x99-8x99-xc54: the ``config.json`` a ``PyTorchModelHubMixin`` model reads) and Apple's
FlexTok (the Hydra config kept as JSON in the safetensors ``__metadata__``); ProtectAI lists the class as
PAIT-EXDIR-101. The YAML reading had the rule (LW-MODEL-042); a JSON config and a metadata value were read for
neither, so ``{"_target_": "os.system"}`` in a ``config.json`` or in safetensors metadata scanned clean. Hydra
instantiates plain dicts exactly as it does YAML nodes; the same judgement now applies to both.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import _container_payloads as cp
import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

RULE = "LW-MODEL-042"


def _scan(tmp_path: Path, name: str, data: bytes) -> TargetResult:
    path = tmp_path / name
    path.write_bytes(data)
    (target,) = scan_paths([str(path)], jobs=1).targets
    return target


def _worst(t: TargetResult) -> Severity | None:
    hits = [f.severity for f in t.findings if f.rule_id == RULE]
    return max(hits) if hits else None


def _safetensors(meta: dict[str, str]) -> bytes:
    return cp.safetensors_file(
        {"__metadata__": meta, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
    )


def _gguf(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    kv = struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", len(v)) + v
    return cp.gguf_file(None, extra_kv=kv, n_kv_extra=1)


def _onnx(key: str, value: str) -> bytes:
    return cp.onnx_model() + cp._field(14, cp._field(1, key.encode()) + cp._field(2, value.encode()))


_EVIL = {"module": {"_target_": "os.system", "command": "id"}}


@pytest.mark.parametrize("name", ["config.json", "model_config.json", "hparams.json", "settings.json"])
def test_a_json_config_naming_a_dangerous_target_is_critical(tmp_path: Path, name: str) -> None:
    t = _scan(tmp_path, name, json.dumps(_EVIL).encode())
    assert _worst(t) is Severity.CRITICAL, t.findings


@pytest.mark.parametrize(
    "doc",
    [
        {"layers": [{"a": 1}, {"enc": {"_target_": "builtins.exec", "_args_": ["import os"]}}]},
        {"model": {"class_path": "subprocess.Popen", "init_args": {"args": ["id"]}}},
        {"_target_": "functools.partial", "_args_": ["${os:system}"]},
        {"_target_": ["os.system"]},  # not a plain name
        {"x": {"_target_": "${oc.env:TARGET}"}},  # computed when the config is read
    ],
)
def test_targets_anywhere_in_a_json_document_are_judged(tmp_path: Path, doc: object) -> None:
    t = _scan(tmp_path, "config.json", json.dumps(doc).encode())
    assert (_worst(t) or Severity.INFO) >= Severity.HIGH, t.findings


@pytest.mark.parametrize(
    ("where", "make"),
    [
        ("safetensors", lambda v: ("model.safetensors", _safetensors({"config": v}))),
        ("gguf", lambda v: ("model.gguf", _gguf("general.config", v))),
        ("onnx", lambda v: ("model.onnx", _onnx("config", v))),
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"model": {"_target_": "subprocess.Popen", "args": ["id"]}}),
        "model:\n  _target_: os.system\n  command: id\n",  # the same config kept as YAML
    ],
)
def test_a_config_kept_in_weights_metadata_is_judged(tmp_path: Path, where: str, make, value: str) -> None:  # type: ignore[no-untyped-def]
    name, data = make(value)
    t = _scan(tmp_path, name, data)
    assert _worst(t) is Severity.CRITICAL, (where, t.findings)
    assert "metadata" in next(f.message for f in t.findings if f.rule_id == RULE)


def test_ordinary_targets_and_prose_stay_as_the_yaml_rule_judges_them(tmp_path: Path) -> None:
    torch_class = _scan(
        tmp_path, "config.json", json.dumps({"m": {"_target_": "torch.nn.Linear", "in_features": 2}}).encode()
    )
    assert torch_class.verdict is Verdict.CLEAN and not torch_class.findings
    user = _scan(
        tmp_path, "user.json", json.dumps({"m": {"_target_": "uni2ts.model.moirai.MoiraiModule"}}).encode()
    )
    assert (
        _worst(user) is Severity.MEDIUM
    )  # a class of a module the scanner does not know, as a pickle's would be
    prose = _scan(
        tmp_path, "model.safetensors", _safetensors({"notes": "set _target_ in the YAML to your class"})
    )
    assert prose.verdict is Verdict.CLEAN and not prose.findings
    plain = _scan(
        tmp_path, "model2.safetensors", _safetensors({"format": "pt", "config": json.dumps({"d": 3})})
    )
    assert plain.verdict is Verdict.CLEAN and not plain.findings
