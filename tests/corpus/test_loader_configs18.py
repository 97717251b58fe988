"""Loader configs 18: files beside the weights that make a loader import or run code.

Every input is built here by code and only scanned; a test that also runs the real loader does it in a child process
(the harmless effect: a marker file in the test's temporary folder) and skips when the loader is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_container_bypasses import scan

from loopwarden.domain import Severity, Verdict

# what a module does when imported: a marker file beside it
_MODULE = (
    "import pathlib\n(pathlib.Path(__file__).parent / 'marker').write_text('ran')\nclass Evil:\n"
    "    def __init__(self, **kwargs):\n        pass\n"
)
_PAYLOAD = "__import__('pathlib').Path('marker').write_text('ran') and 64"

# ----------------------------------------------------------------------- YOLOv5 model YAML: eval() of layer args

_YOLOV5_HEAD = (
    "nc: 80\ndepth_multiple: 0.33\nwidth_multiple: 0.50\nanchors:\n  - [10,13, 16,30, 33,23]\n"
    "  - [30,61, 62,45, 59,119]\n  - [116,90, 156,198, 373,326]\n"
)


def _yolov5_yaml(args: str) -> bytes:
    """A YOLOv5 model YAML whose second backbone layer has the (YAML flow) argument list or mapping ``args``."""
    return (
        f"{_YOLOV5_HEAD}backbone:\n  [[-1, 1, Conv, [64, 6, 2, 2]],\n   [-1, 1, Conv, {args}],\n  ]\n"
        "head:\n  [[-1, 1, nn.Upsample, [None, 2, 'nearest']],\n   [[1], 1, Detect, [nc, anchors]]]\n"
    ).encode()


_YOLOV5_ARGS = {
    "list-string": f"[{json.dumps(_PAYLOAD)}, 3, 2]",
    "plain-scalar": "[64, __import__('pathlib').Path('marker').write_text('ran')]",
    "leading-space": f"[{json.dumps('  ' + _PAYLOAD)}]",
    "mapping-key": f"{{{json.dumps(_PAYLOAD)}: 1}}",
    "lambda": json.dumps(["(lambda: __import__('pathlib').Path('marker').write_text('ran'))()"]),
    "comprehension": json.dumps(["[__import__('pathlib').Path('marker').write_text('ran') for _ in '1'][0]"]),
    "subclasses": json.dumps(
        [
            "[c for c in ().__class__.__base__.__subclasses__() if c.__name__ == 'Popen'][0](['touch', 'marker'])"
        ]
    ),
}


@pytest.mark.parametrize("args", list(_YOLOV5_ARGS.values()), ids=list(_YOLOV5_ARGS))
def test_yolov5_layer_argument_is_evaluated(tmp_path: Path, args: str) -> None:
    """yolov5's ``parse_model`` runs ``eval()`` on every string argument of a layer (``args[j] = eval(a) if
    isinstance(a, str) else a``; only NameError suppressed; a mapping is enumerated, so its keys are evaluated) when
    it builds a model from its YAML, with no opt-in. Confirmed with the yolov5 package 7.0.14: ``Model('m.yaml')``
    with an argument expression (and with a mapping key) wrote a marker file; the scan said clean (only the module
    name and ``activation`` were judged, after ultralytics, which reads arguments with ``ast.literal_eval``)."""
    result = scan(tmp_path, {"yolov5s.yaml": _yolov5_yaml(args)})[0]
    hits = [f for f in result.findings if f.rule_id == "LW-MODEL-042" and "YOLOv5" in f.message]
    assert hits, result
    assert result.max_severity() is Severity.HIGH, result


def test_yolov5_real_loader_evaluates_the_argument(tmp_path: Path) -> None:
    """The real loader, where the yolov5 package is installed (the miss above, end to end)."""
    pytest.importorskip("yolov5.models.yolo")
    (tmp_path / "m.yaml").write_bytes(_yolov5_yaml(_YOLOV5_ARGS["list-string"]))
    result = scan(tmp_path / "scan", {"m.yaml": (tmp_path / "m.yaml").read_bytes()})[0]
    child = "from yolov5.models.yolo import Model\ntry:\n    Model('m.yaml')\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", child], cwd=tmp_path, timeout=300, check=False)
    assert (tmp_path / "marker").exists()
    assert result.max_severity() is Severity.HIGH, result


def test_yolov5_and_ultralytics_benign_model_yamls_are_clean(tmp_path: Path) -> None:
    """The model YAMLs the yolov5 and ultralytics packages ship (when installed; else their arguments as yolov5s.yaml
    and the segment/pose heads write them: names, literals, None, 'nearest') stay clean."""
    files: dict[str, bytes] = {
        "yolov5s.yaml": _yolov5_yaml("[128, 3, 2]"),
        "pose.yaml": b"nc: 1\nkpt_shape: [17, 3]\nbackbone:\n  - [-1, 1, Conv, [64, 3, 2]]\n"
        b"head:\n  - [[-1], 1, Pose, [nc, kpt_shape]]\n",
        "seg.yaml": b"nc: 80\nbackbone:\n  - [-1, 1, TorchVision, [512, resnet18, DEFAULT, True, 2]]\n"
        b"head:\n  - [[-1], 1, Segment, [nc, 32, 256, 'a' , -1, 2 * 8]]\n",
    }
    for package in ("yolov5", "ultralytics"):
        try:
            module = __import__(package)
        except Exception:  # not installed, or fails on import: the text above stands in
            continue
        root = Path(module.__file__).parent
        files.update(
            {f"{package}/{p.relative_to(root)}": p.read_bytes() for p in root.rglob("models/**/*.yaml")}
        )
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


# ---------------------------------------------------------------- mmengine / AllenNLP registry ``type`` imports


def _registry_config(model_type: str, *, where: str = "model") -> dict[str, object]:
    """An mmengine config whose ``model`` (or a test-pipeline transform) has the registry type ``model_type``."""
    cfg: dict[str, object] = {
        "default_scope": "mmdet",
        "model": {"type": "mmdet.RetinaNet", "backbone": {"type": "ResNet", "depth": 50}},
        "test_pipeline": [{"type": "LoadImageFromFile"}, {"type": "mmdet.PackDetInputs"}],
    }
    if where == "model":
        cfg["model"] = {"type": model_type, "args": ["true"]}
    elif where == "backbone":
        cfg["model"] = {"type": "mmdet.RetinaNet", "backbone": {"type": model_type}}
    else:
        cfg["test_pipeline"] = [{"type": "LoadImageFromFile"}, {"type": model_type, "file": "x.pkl"}]
    return cfg


def _yaml_dump(doc: object) -> bytes:
    import yaml

    return yaml.safe_dump(doc).encode()


_MM_CASES = {
    "json-popen": ("cfg.json", json.dumps(_registry_config("subprocess.Popen")).encode(), Severity.CRITICAL),
    "json-local-module": (
        "cfg.json",
        json.dumps(_registry_config("evil_mod.Evil", where="backbone")).encode(),
        Severity.HIGH,
    ),
    "json-pipeline-load": (
        "cfg.json",
        json.dumps(_registry_config("mmengine.fileio.load", where="pipeline")).encode(),
        Severity.HIGH,
    ),
    "json-dashed-module": ("cfg.json", json.dumps(_registry_config("evil-mod.Evil")).encode(), Severity.HIGH),
    "json-escaped": (
        "cfg.json",
        json.dumps(_registry_config("os.system")).replace("os.system", "os\\u002esystem").encode(),
        Severity.CRITICAL,
    ),
    "yaml-popen": ("cfg.yaml", _yaml_dump(_registry_config("subprocess.Popen")), Severity.CRITICAL),
    "yaml-alias": (
        "cfg.yml",
        b"t: &t evil_mod.Evil\nmodel:\n  type: mmdet.RetinaNet\n  neck:\n    type: *t\n",
        Severity.HIGH,
    ),
    "nms-eval-json": (
        "cfg.json",
        json.dumps(
            {
                "model": {
                    "type": "RetinaNet",
                    "test_cfg": {"nms": {"type": f"{_PAYLOAD} and nms", "iou_threshold": 0.5}},
                }
            }
        ).encode(),
        Severity.HIGH,
    ),
    "nms-eval-yaml-builtin": (
        "cfg.yaml",
        b"model:\n  type: RetinaNet\n  test_cfg:\n    rpn:\n      nms:\n        type: exec\n",
        Severity.HIGH,
    ),
    "allennlp-reader": (
        "config.json",
        json.dumps(
            {"dataset_reader": {"type": "evil_mod.Reader"}, "model": {"type": "basic_classifier"}}
        ).encode(),
        Severity.HIGH,
    ),
}


@pytest.mark.parametrize(("name", "data", "severity"), list(_MM_CASES.values()), ids=list(_MM_CASES))
def test_registry_dotted_type_is_judged(tmp_path: Path, name: str, data: bytes, severity: Severity) -> None:
    """mmengine's ``build_from_cfg`` (``init_detector``, ``init_model``, ``Runner.from_cfg``, a test pipeline's
    transforms) imports a dotted ``type`` its registries do not know (``<scope>.registry`` first, then the object by
    ``get_object_from_string``) and calls it with the mapping's other keys, with no opt-in. Confirmed with mmengine
    0.10.7: ``MODELS.build(Config.fromfile('cfg.json').model)`` with ``"type": "subprocess.Popen"`` ran the command,
    and ``evil_mod.Evil`` imported the module beside the config (working folder on sys.path); the scan said clean
    (only ``custom_imports`` and ``_base_`` were judged). AllenNLP resolves an unregistered dotted ``type`` the same
    way (not run here: it no longer installs on current Python). The ``nms`` cases: see
    :func:`test_nms_type_is_evaluated_by_mmcv`."""
    result = scan(tmp_path, {name: data})[0]
    hits = [
        f
        for f in result.findings
        if f.rule_id == "LW-MODEL-042" and ("registry type" in f.message or "nms type" in f.message)
    ]
    assert hits, result
    assert result.max_severity() is severity, result


def test_nms_type_is_evaluated_by_mmcv(tmp_path: Path) -> None:
    """mmcv's ``batched_nms`` (every mmdet/mmrotate detection head at inference: ``test_cfg.nms``) runs ``eval()`` on
    its config's ``type`` and calls the result. Confirmed with mmcv 2.2.0's ``mmcv/ops/nms.py`` (its compiled ops
    stubbed, as mmcv only ships as source): an expression there wrote a marker file; the scan said clean. The real
    loader run is left to where mmcv with its ops is installed."""
    nms = pytest.importorskip("mmcv.ops.nms")
    import torch

    cfg = {"type": f"__import__('pathlib').Path({str(tmp_path / 'marker')!r}).write_text('ran') and nms"}
    with contextlib.suppress(Exception):  # the marker is what matters
        nms.batched_nms(torch.rand(3, 4), torch.rand(3), torch.zeros(3, dtype=torch.long), cfg)
    assert (tmp_path / "marker").exists()


def test_registry_type_real_loader(tmp_path: Path) -> None:
    """The real loader, where mmengine is installed (the miss above, end to end)."""
    pytest.importorskip("mmengine.registry")
    (tmp_path / "evil_mod.py").write_text(_MODULE)
    files = {"cfg.json": json.dumps(_registry_config("evil_mod.Evil")).encode()}
    result = scan(tmp_path / "scan", files)[0]
    (tmp_path / "cfg.json").write_bytes(files["cfg.json"])
    child = (
        "from mmengine.config import Config\nfrom mmengine.registry import MODELS\n"
        "MODELS.build(Config.fromfile('cfg.json').model)\n"
    )
    subprocess.run([sys.executable, "-c", child], cwd=tmp_path, timeout=300, check=False)
    assert (tmp_path / "marker").exists()
    assert result.max_severity() is Severity.HIGH, result


def _benign_registry_configs() -> list[dict[str, object]]:
    """Configs as OpenMMLab writes them: registered names, scoped names, the full paths lazy-import configs dump,
    torch optimizers, collate functions, an FSDP wrap policy; and an AllenNLP config of registered names."""
    return [
        {
            "default_scope": "mmdet",
            "model": {
                "type": "RetinaNet",
                "data_preprocessor": {"type": "DetDataPreprocessor", "bgr_to_rgb": True},
                "backbone": {"type": "mmpretrain.ResNet", "depth": 50, "norm_cfg": {"type": "BN"}},
                "init_cfg": {"type": "Pretrained", "checkpoint": "torchvision://resnet50"},
            },
            "optim_wrapper": {"type": "OptimWrapper", "optimizer": {"type": "torch.optim.SGD", "lr": 0.01}},
            "train_dataloader": {
                "collate_fn": {"type": "mmengine.dataset.utils.pseudo_collate"},
                "sampler": {"type": "mmengine.dataset.sampler.DefaultSampler", "shuffle": True},
            },
            "strategy": {
                "type": "FSDPStrategy",
                "model_wrapper": {
                    "auto_wrap_policy": {
                        "type": "torch.distributed.fsdp.wrap.size_based_auto_wrap_policy",
                        "min_num_params": 10000000,
                    }
                },
            },
            "test_cfg": {
                "nms": {"type": "nms", "iou_threshold": 0.5},
                "rcnn": {"nms": {"type": "soft_nms"}, "nms_pre": 1000},
                "rotated": {"nms": {"type": "nms_rotated"}},
            },
        },
        {
            "dataset_reader": {"type": "text_classification_json", "tokenizer": {"type": "whitespace"}},
            "model": {"type": "basic_classifier", "seq2vec_encoder": {"type": "bag_of_embeddings"}},
            "trainer": {"optimizer": {"type": "huggingface_adamw"}, "num_epochs": 1},
        },
    ]


def test_registry_benign_configs_are_clean(tmp_path: Path) -> None:
    """The configs above, written by mmengine's ``Config.dump`` when installed (else by json/yaml), stay clean."""
    files: dict[str, bytes] = {}
    for i, doc in enumerate(_benign_registry_configs()):
        files[f"c{i}.json"] = json.dumps(doc).encode()
        files[f"c{i}.yaml"] = _yaml_dump(doc)
    try:
        from mmengine.config import Config
    except ImportError:
        pass
    else:
        for i, doc in enumerate(_benign_registry_configs()):
            for suffix in ("json", "yaml"):
                Config(doc).dump(str(tmp_path / f"dumped{i}.{suffix}"))
                files[f"mm{i}.{suffix}"] = (tmp_path / f"dumped{i}.{suffix}").read_bytes()
    for r in scan(tmp_path / "scan", files):
        assert r.verdict is Verdict.CLEAN, r


# ------------------------------------------------------------------------- pyannote.audio pipeline config.yaml

_PYANNOTE_CASES = {
    "preprocessor-popen": (
        b"pipeline:\n  name: types.SimpleNamespace\n  params: {}\npreprocessors:\n  audio:\n"
        b"    name: subprocess.Popen\n    params:\n      args: [touch, marker]\n",
        Severity.CRITICAL,
    ),
    "pipeline-local-module": (
        b"version: 3.1.0\npipeline:\n  name: evil_mod.Evil\n  params: {}\n",
        Severity.HIGH,
    ),
    "pipeline-flow-quoted": (
        b'{"pipeline": {"name": "os.system", "params": {"command": "true"}}}\n',
        Severity.CRITICAL,
    ),
    "preprocessor-not-a-name": (
        b"pipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\npreprocessors:\n"
        b"  audio:\n    name: [subprocess, Popen]\n",
        Severity.HIGH,
    ),
}


@pytest.mark.parametrize(("data", "severity"), list(_PYANNOTE_CASES.values()), ids=list(_PYANNOTE_CASES))
def test_pyannote_pipeline_classes_are_judged(tmp_path: Path, data: bytes, severity: Severity) -> None:
    """pyannote.audio's ``Pipeline.from_pretrained`` imports the class a ``config.yaml``'s ``pipeline.name`` names
    (``get_class_by_name``) and calls it with ``pipeline.params``, then each ``preprocessors`` entry's ``name`` with
    its ``params``, with no opt-in. Confirmed with pyannote.audio 4.0.7: ``Pipeline.from_pretrained(folder)`` with
    the first case ran ``subprocess.Popen`` (marker written); the scan said clean."""
    result = scan(tmp_path, {"config.yaml": data})[0]
    hits = [f for f in result.findings if f.rule_id == "LW-MODEL-042" and "pyannote" in f.message]
    assert hits, result
    assert result.max_severity() is severity, result


def test_pyannote_real_loader_runs_the_preprocessor(tmp_path: Path) -> None:
    """The real loader, where pyannote.audio is installed (the miss above, end to end)."""
    pytest.importorskip("pyannote.audio")
    (tmp_path / "config.yaml").write_bytes(_PYANNOTE_CASES["preprocessor-popen"][0])
    result = scan(tmp_path / "scan", {"config.yaml": (tmp_path / "config.yaml").read_bytes()})[0]
    child = (
        "import sys\nfrom pyannote.audio import Pipeline\n"
        "Pipeline.from_pretrained(sys.argv[1]).preprocessors['audio'].wait()\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, "-c", child, str(tmp_path)], cwd=tmp_path, env=env, timeout=300, check=False
    )
    assert (tmp_path / "marker").exists()
    assert result.max_severity() is Severity.CRITICAL, result


def test_pyannote_benign_configs_are_clean(tmp_path: Path) -> None:
    """pyannote's own pipeline configs (speaker-diarization-3.1 and community-1 as published: pyannote classes, model
    repositories and ``$model/`` subfolders, a database preprocessor path) stay clean."""
    files = {
        "a/config.yaml": b"version: 3.1.0\npipeline:\n  name: pyannote.audio.pipelines.SpeakerDiarization\n"
        b"  params:\n    clustering: AgglomerativeClustering\n"
        b"    embedding: pyannote/wespeaker-voxceleb-resnet34-LM\n    embedding_batch_size: 32\n"
        b"    embedding_exclude_overlap: true\n    segmentation: pyannote/segmentation-3.0\n"
        b"    segmentation_batch_size: 32\nparams:\n  clustering:\n    method: centroid\n"
        b"    min_cluster_size: 12\n    threshold: 0.7045654963945799\n  segmentation:\n"
        b"    min_duration_off: 0.0\n",
        "b/config.yaml": b"dependencies:\n  pyannote.audio: 4.0.0\npipeline:\n"
        b"  name: pyannote.audio.pipelines.SpeakerDiarization\n  params:\n    segmentation: $model/segmentation\n"
        b"    embedding: $model/embedding\n    plda: $model/plda\n    clustering: VBxClustering\n"
        b"preprocessors:\n  audio: /data/{uri}.wav\n",
        "c/config.yaml": b"pipeline:\n  name: VoiceActivityDetection\n  params:\n"
        b"    segmentation: pyannote/segmentation\n",
    }
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


# ------------------------------------------------------------------ YAML merge keys and repeated keys (all loaders)

_MERGE_CASES = {
    "ultralytics-activation-repeated-key": (
        "model.yaml",
        f"nc: 2\nactivation: nn.SiLU()\nbackbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n"
        f"  - [-1, 1, Classify, [nc]]\nactivation: {json.dumps(_PAYLOAD)}\n".encode(),
        Severity.HIGH,
    ),
    "yolov5-args-merge-key": (
        "yolov5s.yaml",
        f"{_YOLOV5_HEAD}layers: &layers\n  backbone:\n    - [-1, 1, Conv, [{json.dumps(_PAYLOAD)}, 3]]\n"
        "  head:\n    - [-1, 1, Conv, [64, 3]]\n<<: *layers\n".encode(),
        Severity.HIGH,
    ),
    "mmengine-custom-imports-merge-key": (
        "cfg.yaml",
        b"base: &b\n  custom_imports: {imports: [evil_mod]}\n<<: *b\n",
        Severity.HIGH,
    ),
    "mmengine-custom-imports-repeated-key": (
        "cfg.yaml",
        b"custom_imports: {imports: [mmdet.models]}\ncustom_imports: {imports: [evil_mod]}\n",
        Severity.HIGH,
    ),
    "mmcv-nms-merge-key": (
        "cfg.yaml",
        b"e: &e {type: exec}\nmodel:\n  type: RetinaNet\n  test_cfg:\n    nms:\n      <<: *e\n",
        Severity.HIGH,
    ),
    "registry-model-merge-list": (
        "cfg.yaml",
        b"a: &a {type: subprocess.Popen}\nb: &b {type: mmdet.RetinaNet}\nmodel:\n  <<: [*a, *b]\n",
        Severity.CRITICAL,
    ),
    "pyannote-preprocessors-merge-key": (
        "config.yaml",
        b"p: &p\n  audio: {name: subprocess.Popen, params: {args: [touch, marker]}}\n"
        b"pipeline: {name: types.SimpleNamespace}\npreprocessors:\n  <<: *p\n",
        Severity.CRITICAL,
    ),
    "nemo-target-merge-key": ("model_config.yaml", b"t: &t {target: os.system}\n<<: *t\n", Severity.CRITICAL),
}


@pytest.mark.parametrize(("name", "data", "severity"), list(_MERGE_CASES.values()), ids=list(_MERGE_CASES))
def test_yaml_merge_and_repeated_keys_are_read_as_the_loader_reads_them(
    tmp_path: Path, name: str, data: bytes, severity: Severity
) -> None:
    """The checks that read one key of a YAML mapping (an ultralytics/YOLOv5 model's ``activation``, ``backbone``
    and ``head``, mmengine's ``custom_imports`` and ``model``, pyannote's ``pipeline`` and ``preprocessors``, NeMo's
    ``target``) read the first pair written under that name, while PyYAML's constructor (which all these loaders
    use) gives a repeated key its last value and takes ``<<`` merge keys' pairs as the mapping's own. Confirmed:
    yolov5 7.0.14 ran the repeated ``activation`` and the merged ``backbone`` argument; mmengine 0.10.7 imported the
    merged ``custom_imports``; pyannote.audio 4.0.7 ran the merged preprocessor. Each scanned clean."""
    result = scan(tmp_path, {name: data})[0]
    assert any(f.rule_id == "LW-MODEL-042" for f in result.findings), result
    assert result.max_severity() is severity, result


def test_yaml_merge_keys_real_loaders(tmp_path: Path) -> None:
    """The real loaders of the merge-key cases, where installed (the misses above, end to end)."""
    (tmp_path / "evil_mod.py").write_text(_MODULE)
    ran = 0
    if _installed("mmengine.config"):
        (tmp_path / "cfg.yaml").write_bytes(_MERGE_CASES["mmengine-custom-imports-merge-key"][1])
        child = "from mmengine.config import Config\nConfig.fromfile('cfg.yaml')\n"
        subprocess.run([sys.executable, "-c", child], cwd=tmp_path, timeout=300, check=False)
        assert (tmp_path / "marker").exists()
        (tmp_path / "marker").unlink()
        ran += 1
    if _installed("yolov5.models.yolo"):
        (tmp_path / "m.yaml").write_bytes(_MERGE_CASES["yolov5-args-merge-key"][1])
        child = (
            "from yolov5.models.yolo import Model\ntry:\n    Model('m.yaml')\nexcept Exception:\n    pass\n"
        )
        subprocess.run([sys.executable, "-c", child], cwd=tmp_path, timeout=300, check=False)
        assert (tmp_path / "marker").exists()
        ran += 1
    if not ran:
        pytest.skip("neither mmengine nor yolov5 is installed")


def _installed(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def test_yaml_merge_key_bomb_stays_linear(tmp_path: Path) -> None:
    """Mappings merging lists of each other (each level repeats the last 8 times: 8**24 pairs for PyYAML) are read
    in linear time, and the key at the bottom is still judged."""
    lines = ["a0: &a0 {type: subprocess.Popen, args: [true]}"]
    lines += [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 8)}]}}" for i in range(1, 25)]
    data = "\n".join([*lines, "model:\n  <<: *a24\n"]).encode()
    result = scan(tmp_path, {"cfg.yaml": data})[0]
    assert result.max_severity() is Severity.CRITICAL, result


def test_yaml_merge_keys_benign_are_clean(tmp_path: Path) -> None:
    """Configs that use merge keys and anchors the ordinary way (shared defaults) stay clean."""
    files = {
        "cfg.yaml": b"defaults: &d {type: mmdet.RetinaNet, num_classes: 80}\nmodel:\n  <<: *d\n"
        b"  test_cfg:\n    nms: {<<: {type: nms}, iou_threshold: 0.5}\n",
        "m.yaml": f"{_YOLOV5_HEAD}common: &c\n  backbone:\n    - [-1, 1, Conv, [64, 3]]\n"
        "  head:\n    - [-1, 1, Detect, [nc, anchors]]\n<<: *c\nactivation: nn.SiLU()\n".encode(),
    }
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


# ------------------------------------------------------------------------------------------------------ bench


def bench_cases() -> dict[str, dict[str, bytes]]:
    """The attacks above as model folders, for ``bench/models.py``."""
    cases: dict[str, dict[str, bytes]] = {
        f"r18_yolov5_args_{name}": {"yolov5s.yaml": _yolov5_yaml(args)} for name, args in _YOLOV5_ARGS.items()
    }
    for name, (file, data, _) in _MERGE_CASES.items():
        cases[f"r18_yaml_{name}"] = {file: data}
    for name, (data, _) in _PYANNOTE_CASES.items():
        if name != "preprocessor-not-a-name":  # judged as unjudgeable, not an attack pyannote runs
            cases[f"r18_pyannote_{name}"] = {"config.yaml": data}
    for name, (file, data, _) in _MM_CASES.items():
        cases[f"r18_{'mmcv' if name.startswith('nms') else 'registry_type'}_{name}"] = {file: data}
    return cases
