"""Loader configs 19: diffusers component libraries and NeMo's Hydra 0.x configs.

Every input is built here by code and only scanned; a test that also runs the real loader does it in a child process
(the harmless effect: a marker file in the test's temporary folder) and skips when the loader (or a version that
acts on the file) is not installed. Every attack case below scanned clean before this round.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_container_bypasses import scan

from loopwarden.domain import Severity, Verdict

# what a module does when imported: a marker file in the working folder
_MODULE = (
    b"import pathlib\n"
    b"pathlib.Path('marker').write_text('ran')\n"
    b"from diffusers import UNet2DModel, DDPMScheduler\n"
)
_SCHEDULER = b'{"_class_name": "DDPMScheduler", "_diffusers_version": "0.35.2"}'


# ----------------------------------------------------------------- diffusers model_index.json component libraries


def _model_index(**components: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "_class_name": "DDPMPipeline",
        "_diffusers_version": "0.35.2",
        "scheduler": ["diffusers", "DDPMScheduler"],
        "unet": ["diffusers", "UNet2DModel"],
    }
    doc.update(components)
    return doc


def _pipeline(index: bytes | dict[str, object], module: str | None = "r19_evil") -> dict[str, bytes]:
    """A pipeline folder: its ``model_index.json``, the scheduler's config and the module the index names (none
    for an installed module)."""
    data = index if isinstance(index, bytes) else json.dumps(index, indent=2).encode()
    files = {"model_index.json": data, "scheduler/scheduler_config.json": _SCHEDULER}
    if module is not None:
        files[f"{module.replace('.', '/')}.py"] = _MODULE
    return files


_DIFFUSERS_CASES: dict[str, dict[str, bytes]] = {
    "local-module": _pipeline(_model_index(unet=["r19_evil", "UNet2DModel"])),
    "dotted-module": _pipeline(_model_index(unet=["r19_pkg.unet", "UNet2DModel"]), module="r19_pkg.unet"),
    # an installed module whose import has an effect (antigravity opens a web browser)
    "stdlib-side-effect": _pipeline(_model_index(unet=["antigravity", "UNet2DModel"]), module=None),
    # diffusers drops keys its pipeline class does not take: the slot must be one of the class's components
    "safety-checker-slot": _pipeline(
        _model_index(
            _class_name="StableDiffusionPipeline",
            safety_checker=["r19_evil", "StableDiffusionSafetyChecker"],
            **{k: [None, None] for k in ("feature_extractor", "text_encoder", "tokenizer", "unet", "vae")},
        )
    ),
    # JSON escapes spell the name ("_" as \u005f); a repeated key: json.load keeps the last
    "escaped-name": _pipeline(
        json.dumps(_model_index(unet=["r19_evil", "UNet2DModel"]))
        .replace("r19_evil", "r19\\u005fevil")
        .encode()
    ),
    "repeated-key": _pipeline(
        json.dumps(_model_index())[:-1].encode() + b', "unet": ["r19_evil", "UNet2DModel"]}'
    ),
}


_PIPE_MODULE = _MODULE + (
    b"from diffusers import DiffusionPipeline\n"
    b"class R19Pipe(DiffusionPipeline):\n"
    b"    def __init__(self, scheduler):\n"
    b"        super().__init__()\n"
    b"        self.register_modules(scheduler=scheduler)\n"
)
_CUSTOM_CASES: dict[str, dict[str, bytes]] = {
    # the pipeline class from <module>.py beside model_index.json
    "custom-pipeline": {
        "model_index.json": json.dumps(
            {"_class_name": ["r19_pipe", "R19Pipe"], "scheduler": ["diffusers", "DDPMScheduler"]}
        ).encode(),
        "scheduler/scheduler_config.json": _SCHEDULER,
        "r19_pipe.py": _PIPE_MODULE,
    },
    # a custom component: <component>/<module>.py
    "custom-component": {
        "model_index.json": json.dumps(_model_index(unet=["r19_unet", "R19UNet"])).encode(),
        "scheduler/scheduler_config.json": _SCHEDULER,
        "unet/r19_unet.py": _MODULE + b"class R19UNet(UNet2DModel):\n    pass\n",
        "unet/config.json": b"{}",
    },
}


def _modular_index(library: str) -> bytes:
    spec = {
        "type_hint": [library, "UNet2DConditionModel"],
        "repo": None,
        "subfolder": "unet",
        "variant": None,
    }
    doc = {
        "_class_name": "StableDiffusionXLModularPipeline",
        "_blocks_class_name": "StableDiffusionXLAutoBlocks",
        "_diffusers_version": "0.35.2",
        "unet": [None, None, spec],
    }
    return json.dumps(doc, indent=2).encode()


_MODULAR_CASES: dict[str, dict[str, bytes]] = {
    "modular-type-hint": {"modular_model_index.json": _modular_index("r19_evil"), "r19_evil.py": _MODULE},
    "modular-dotted-type-hint": {
        "modular_model_index.json": _modular_index("r19_pkg.unet"),
        "r19_pkg/unet.py": _MODULE,
    },
}


@pytest.mark.parametrize("case", list(_DIFFUSERS_CASES), ids=list(_DIFFUSERS_CASES))
def test_diffusers_component_library_is_imported(tmp_path: Path, case: str) -> None:
    """``DiffusionPipeline.from_pretrained`` resolved each component ``[library, class]`` of ``model_index.json``
    with ``importlib.import_module(library)`` for any library that is not a diffusers pipelines module, with no
    opt-in, until diffusers 0.42.1 (``_get_library_or_raise`` now imports only diffusers, transformers and
    onnxruntime.training). Confirmed with diffusers 0.35.2 and 0.41.0 (0.38.0 and 0.42.0 have the same code): a
    component ``["r19_evil", "UNet2DModel"]`` imported ``r19_evil.py`` of the working folder before the pipeline
    failed. Only a ``<component>/<module>.py`` custom component was reported before: the scan said clean."""
    files = _DIFFUSERS_CASES[case]
    result = scan(tmp_path, {"model_index.json": files["model_index.json"]})[0]
    hits = [f for f in result.findings if f.rule_id == "LW-MODEL-042" and "library" in f.message]
    assert hits, result
    assert result.max_severity() is Severity.HIGH, result


@pytest.mark.parametrize("case", list(_MODULAR_CASES), ids=list(_MODULAR_CASES))
def test_diffusers_modular_type_hint_is_imported(tmp_path: Path, case: str) -> None:
    """``ModularPipeline.from_pretrained`` reads each component's spec from ``modular_model_index.json`` and resolves
    its ``type_hint`` ``[library, class]`` with ``simple_get_class_obj``, which imported any library before diffusers
    0.42.1. Confirmed with diffusers 0.35.2, 0.36.0 and 0.41.0: a ``type_hint`` library ``r19_evil`` imported that
    module of the working folder; the scan said clean (the file was not read as a diffusers index at all)."""
    files = _MODULAR_CASES[case]
    result = scan(tmp_path, {"modular_model_index.json": files["modular_model_index.json"]})[0]
    hits = [f for f in result.findings if f.rule_id == "LW-MODEL-042" and "type_hint" in f.message]
    assert hits, result
    assert result.max_severity() is Severity.HIGH, result


@pytest.mark.parametrize("case", list(_CUSTOM_CASES), ids=list(_CUSTOM_CASES))
def test_diffusers_local_custom_code_runs_without_opt_in(tmp_path: Path, case: str) -> None:
    """A custom pipeline (``_class_name: [module, class]``) or custom component (``<component>/<module>.py``) of a
    local folder ran with no ``trust_remote_code`` before diffusers 0.38: confirmed with 0.35.2, 0.36.0 and 0.37.1
    (0.38.0 to 0.42.1 refuse without it). It was reported as medium ("under trust_remote_code=True"): now high, as
    a dataset loading script that runs with no opt-in is. (A severity change, not a miss: these scanned medium.)"""
    result = scan(tmp_path, _CUSTOM_CASES[case])
    index = next(r for r in result if r.path.endswith("model_index.json"))
    assert any(f.rule_id == "LW-MODEL-042" and "0.38" in f.message for f in index.findings), index
    assert index.max_severity() is Severity.HIGH, index


def _vulnerable_diffusers(below: tuple[int, int, int] = (0, 42, 1)) -> None:
    diffusers = pytest.importorskip("diffusers")
    version = tuple(int(p) for p in diffusers.__version__.split(".")[:3] if p.isdigit())
    if version >= below:
        pytest.skip(f"diffusers {diffusers.__version__} does not act on this without an opt-in")


def test_diffusers_real_loader_runs_local_custom_code(tmp_path: Path) -> None:
    """The real loader (diffusers before 0.38, where installed), from another working folder: both modules run."""
    _vulnerable_diffusers((0, 38, 0))
    for case, files in _CUSTOM_CASES.items():
        for name, data in files.items():
            (tmp_path / case / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / case / name).write_bytes(
                data.replace(b"Path('marker')", f"Path({str(tmp_path / case / 'marker')!r})".encode())
            )
        child = (
            "import sys\nfrom diffusers import DiffusionPipeline\ntry:\n"
            "    DiffusionPipeline.from_pretrained(sys.argv[1])\nexcept Exception:\n    pass\n"
        )
        subprocess.run(
            [sys.executable, "-c", child, str(tmp_path / case)],
            cwd=tmp_path,
            timeout=300,
            check=False,
            capture_output=True,
        )
        assert (tmp_path / case / "marker").exists(), case


def test_diffusers_real_loader_imports_the_library(tmp_path: Path) -> None:
    """The real loader (diffusers before 0.42.1, where installed): the module of the working folder runs, for every
    case but the installed module's."""
    _vulnerable_diffusers()
    for case, files in _DIFFUSERS_CASES.items():
        if case == "stdlib-side-effect":
            continue  # (it would open a web browser)
        folder = tmp_path / case
        for name, data in files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        child = (
            "from diffusers import DiffusionPipeline\ntry:\n"
            "    DiffusionPipeline.from_pretrained('.')\nexcept Exception:\n    pass\n"
        )
        subprocess.run(
            [sys.executable, "-c", child], cwd=folder, timeout=300, check=False, capture_output=True
        )
        assert (folder / "marker").exists(), case


def test_diffusers_real_modular_loader_imports_the_type_hint(tmp_path: Path) -> None:
    """The real modular loader (diffusers before 0.42.1, where installed)."""
    _vulnerable_diffusers()
    pytest.importorskip("diffusers.modular_pipelines")
    for name, data in _MODULAR_CASES["modular-type-hint"].items():
        (tmp_path / name).write_bytes(data)
    child = (
        "from diffusers.modular_pipelines import ModularPipeline\ntry:\n"
        "    ModularPipeline.from_pretrained('.')\nexcept Exception:\n    pass\n"
    )
    subprocess.run([sys.executable, "-c", child], cwd=tmp_path, timeout=300, check=False, capture_output=True)
    assert (tmp_path / "marker").exists()


_SD15_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "_diffusers_version": "0.6.0",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
    "image_encoder": [None, None],
    "requires_safety_checker": True,
}
_BENIGN_INDEXES = {
    "sd15": _SD15_INDEX,
    "if": {
        "_class_name": "IFPipeline",
        "safety_checker": ["deepfloyd_if", "IFSafetyChecker"],
        "watermarker": ["deepfloyd_if", "IFWatermarker"],
        "text_encoder": ["transformers", "T5EncoderModel"],
        "unet": ["diffusers", "UNet2DConditionModel"],
    },
    "alt-diffusion": {
        "_class_name": "AltDiffusionPipeline",
        "text_encoder": ["alt_diffusion", "RobertaSeriesModelWithTransformation"],
    },
    "onnx": {"_class_name": "OnnxStableDiffusionPipeline", "unet": ["diffusers", "OnnxRuntimeModel"]},
    "model-library": {
        "_class_name": "MyPipeline",
        "adapter": ["peft", "PeftModel"],
        "enc": ["timm.models", "X"],
    },
    # save_pretrained of a component class defined in the saving script
    "script-class": {"_class_name": "DDPMPipeline", "unet": ["__main__", "MyUNet"]},
}


def test_diffusers_benign_indexes_are_clean(tmp_path: Path) -> None:
    """Published indexes (pipelines modules such as ``stable_diffusion``, ``deepfloyd_if``, ``alt_diffusion``; null
    components; model libraries) and, where diffusers is installed, what ``save_pretrained`` writes for a DDPM and a
    tiny Stable Diffusion pipeline and what every modular pipeline's ``save_pretrained`` writes, stay clean."""
    files = {f"{name}/model_index.json": json.dumps(doc).encode() for name, doc in _BENIGN_INDEXES.items()}
    files["modular/modular_model_index.json"] = _modular_index("diffusers")
    for r in scan(tmp_path / "static", files):
        assert r.verdict is Verdict.CLEAN, r
    pytest.importorskip("diffusers")
    child = r"""
import sys
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
out = sys.argv[1]
unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 8),
    norm_num_groups=8, down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"))
DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(f"{out}/ddpm")
try:
    import diffusers.modular_pipelines as mp
except ImportError:
    mp = None
for name in dir(mp) if mp is not None else []:
    if name.endswith("AutoBlocks"):
        try:
            getattr(mp, name)().init_pipeline().save_pretrained(f"{out}/{name}")
        except Exception:
            pass
"""
    out = tmp_path / "saved"
    subprocess.run([sys.executable, "-c", child, str(out)], timeout=600, check=True, capture_output=True)
    saved = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*.json")}
    assert "ddpm/model_index.json" in saved
    for r in scan(tmp_path / "rescan", saved):
        assert r.verdict is Verdict.CLEAN, r


# ------------------------------------------------------------------------- NeMo: Hydra 0.x ``cls`` and ``target``

_NEMO_HEAD = "target: nemo.collections.asr.models.EncDecCTCModel\nsample_rate: 16000\n"
_NEMO_CASES: dict[str, tuple[str, bytes, Severity]] = {
    "cls-params": (
        "model_config.yaml",
        (
            _NEMO_HEAD + "preprocessor:\n  cls: subprocess.Popen\n  params:\n    args: [touch, marker]\n"
        ).encode(),
        Severity.CRITICAL,
    ),
    "cls-without-params": (
        "model_config.yaml",
        (_NEMO_HEAD + "decoder:\n  cls: subprocess.Popen\n  args: [touch, marker]\n").encode(),
        Severity.CRITICAL,
    ),
    "cls-other-file": (
        "hparams.yaml",
        b"cfg:\n  encoder:\n    cls: subprocess.Popen\n    params:\n      args: [touch, marker]\n",
        Severity.CRITICAL,
    ),
    "cls-merge-key": (
        "model_config.yaml",
        (
            _NEMO_HEAD + "base: &b\n  cls: subprocess.Popen\n  params: {args: [touch, marker]}\n"
            "preprocessor:\n  <<: *b\n"
        ).encode(),
        Severity.CRITICAL,
    ),
    "cls-escaped-key": (
        "model_config.yaml",
        (
            _NEMO_HEAD
            + 'preprocessor: {"c\\x6cs": "subprocess\\x2ePopen", params: {args: [touch, marker]}}\n'
        ).encode(),
        Severity.CRITICAL,
    ),
    "cls-bare-module": (
        "model_config.yaml",
        (_NEMO_HEAD + "preprocessor:\n  cls: r19_evil\n").encode(),
        Severity.HIGH,
    ),
    "nested-target-module": (
        "model_config.yaml",
        (_NEMO_HEAD + "preprocessor:\n  target: r19_evil.Evil\n  features: 64\n").encode(),
        Severity.MEDIUM,
    ),
}


@pytest.mark.parametrize("case", list(_NEMO_CASES), ids=list(_NEMO_CASES))
def test_nemo_legacy_targets(tmp_path: Path, case: str) -> None:
    """NeMo's ``Serialization.from_config_dict``, which builds each sub-module of a model from its config
    (``self.preprocessor = self.from_config_dict(self._cfg.preprocessor)``), first runs
    ``maybe_update_config_version``: in every mapping a Hydra 0.x ``cls`` becomes ``_target_`` and ``params`` are
    moved up, then ``hydra.utils.instantiate`` builds it; a mapping with ``target`` and no ``_target_`` is imported
    with ``import_class_by_path`` and called with ``cfg=``. Confirmed with NeMo 2.2.1 and hydra-core 1.3.2 for every
    case (each sub-module config given to ``from_config_dict``): ``{cls: subprocess.Popen, params: {args: [touch,
    marker]}}`` started the process and ``{target: r19_evil.Evil}`` imported the working folder's module (NeMo 3.0
    checks both against its target allow-list). Only ``_target_``, ``class_path`` and the top-level ``target`` were
    judged: the scan said clean."""
    name, data, severity = _NEMO_CASES[case]
    result = scan(tmp_path, {name: data})[0]
    assert any(f.rule_id == "LW-MODEL-042" for f in result.findings), result
    assert result.max_severity() is severity, result


_NEMO_MODULE = (
    b"import pathlib\npathlib.Path('marker').write_text('ran')\n"
    b"class Evil:\n    def __init__(self, **kw):\n        pass\n"
)


def test_nemo_real_loader_instantiates_cls(tmp_path: Path) -> None:
    """The real loader (NeMo before its target allow-list, where installed): each case's sub-module config given to
    ``Serialization.from_config_dict`` starts the process or imports the module."""
    common = pytest.importorskip("nemo.core.classes.common")
    if hasattr(common, "safe_instantiate"):
        pytest.skip("this NeMo checks targets against its allow-list")
    child = (
        "import yaml\nfrom omegaconf import OmegaConf\nfrom nemo.core.classes.common import Serialization\n"
        "doc = yaml.safe_load(open('cfg.yaml'))\n"
        "doc = doc.get('cfg', doc)\n"
        "for key, sub in doc.items():\n"
        "    if isinstance(sub, dict) and ('cls' in sub or 'target' in sub) and key != 'base':\n"
        "        try:\n"
        "            Serialization.from_config_dict(OmegaConf.create(sub))\n"
        "        except Exception:\n"
        "            pass\n"
    )
    for case, (_, data, _) in _NEMO_CASES.items():
        folder = tmp_path / case
        folder.mkdir()
        (folder / "cfg.yaml").write_bytes(data)
        (folder / "r19_evil.py").write_bytes(_NEMO_MODULE)
        subprocess.run(
            [sys.executable, "-c", child], cwd=folder, timeout=300, check=False, capture_output=True
        )
        for _ in range(50):  # a started process runs on its own
            if (folder / "marker").exists():
                break
            time.sleep(0.1)
        assert (folder / "marker").exists(), case


def test_nemo_and_other_benign_configs_are_clean(tmp_path: Path) -> None:
    """Hydra 0.x NeMo configs naming NeMo and torch classes (as NeMo 0.x/1.0 QuartzNet configs do), nested
    ``target`` keys of NeMo classes, and other tools' ``cls``/``target`` keys that hold plain values stay clean."""
    files = {
        "quartznet/model_config.yaml": (
            _NEMO_HEAD
            + "preprocessor:\n  cls: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor\n"
            "  params:\n    features: 64\n    window_size: 0.02\n"
            "encoder:\n  cls: nemo.collections.asr.modules.ConvASREncoder\n  params:\n    activation: relu\n"
            "optim:\n  cls: torch.optim.AdamW\n  params: {lr: 0.01}\n"
            "decoder:\n  target: nemo.collections.asr.modules.ConvASRDecoder\n  num_classes: 28\n"
        ).encode(),
        "vit/config.yaml": b"model:\n  pool: cls\n  cls: token\n  head:\n    cls: 1000\n    target: logits\n",
        "seg/config.yaml": b"loss:\n  target: mask\n  cls: {weight: 1.0}\n",
        "hydra/config.yaml": b"model:\n  _target_: torch.nn.Linear\n  cls: my.project.Thing\n",
        "nemo-values/model_config.yaml": (_NEMO_HEAD + "train_ds:\n  target: text\n  cls: true\n").encode(),
    }
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


# ---------------------------------------------------------------------------- ESPnet model.json ``model_module``

_ESPNET_CASES: dict[str, dict[str, bytes]] = {
    "asr-local-module": {
        "exp/model.json": json.dumps(
            [83, 52, {"model_module": "r19_evil:Evil", "ctc_type": "builtin"}]
        ).encode(),
        "r19_evil.py": _NEMO_MODULE,
    },
    "asr-dotted-module": {
        "exp/model.json": json.dumps([83, 52, {"model_module": "r19_pkg.nets:Evil"}]).encode(),
    },
    "lm-local-module": {
        "rnnlm/model.json": json.dumps({"model_module": "r19_evil:Evil", "backend": "pytorch"}).encode(),
    },
    # JSON escapes spell the ":" (\u003a)
    "escaped-colon": {
        "exp/model.json": json.dumps([83, 52, {"model_module": "r19_evil:Evil"}])
        .replace(":Evil", "\\u003aEvil")
        .encode(),
    },
}


@pytest.mark.parametrize("case", list(_ESPNET_CASES), ids=list(_ESPNET_CASES))
def test_espnet_model_module_is_imported(tmp_path: Path, case: str) -> None:
    """ESPnet's ``load_trained_model`` (ASR, and the same code for TTS, MT and voice conversion) reads ``model.json``
    beside the model (``[idim, odim, args]``), imports ``args.model_module`` (``"module:Class"``) with
    ``dynamic_import`` and calls the class with the model's dimensions and arguments; ``recog`` does the same with a
    language model's ``model.json`` (a mapping) through ``dynamic_import_lm``. Confirmed with espnet 202511:
    ``"model_module": "r19_evil:Evil"`` imported the working folder's module. The scan said clean (a JSON array
    was read only for templates)."""
    files = {k: v for k, v in _ESPNET_CASES[case].items() if k.endswith("model.json")}
    result = scan(tmp_path, files)[0]
    assert any(f.rule_id == "LW-MODEL-042" and "model_module" in f.message for f in result.findings), result
    assert result.max_severity() is Severity.MEDIUM, result  # a class of a module the scanner does not know


def test_espnet_real_loader_imports_the_model_module(tmp_path: Path) -> None:
    """The real loader (where espnet is installed): ASR ``load_trained_model`` and the LM's ``dynamic_import_lm``."""
    pytest.importorskip("espnet.asr.pytorch_backend.asr_init")
    child = (
        "import sys\nfrom espnet.asr.asr_utils import get_model_conf\n"
        "from espnet.asr.pytorch_backend.asr_init import load_trained_model\n"
        "from espnet.nets.lm_interface import dynamic_import_lm\n"
        "try:\n"
        "    if sys.argv[1] == 'lm':\n"
        "        args = get_model_conf('rnnlm/model.best', 'rnnlm/model.json')\n"
        "        dynamic_import_lm(args.model_module, args.backend)\n"
        "    else:\n"
        "        load_trained_model('exp/model.acc.best')\n"
        "except Exception:\n"
        "    pass\n"
    )
    for case in ("asr-local-module", "lm-local-module", "escaped-colon"):
        folder = tmp_path / case
        for name, data in _ESPNET_CASES[case].items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        (folder / "r19_evil.py").write_bytes(_NEMO_MODULE)
        kind = "lm" if case.startswith("lm") else "asr"
        subprocess.run(
            [sys.executable, "-c", child, kind], cwd=folder, timeout=300, check=False, capture_output=True
        )
        assert (folder / "marker").exists(), case


def test_espnet_benign_model_json_is_clean(tmp_path: Path) -> None:
    """What ESPnet writes: ESPnet's own model modules and the language models' registered names."""
    files = {
        "asr/model.json": json.dumps(
            [83, 52, {"model_module": "espnet.nets.pytorch_backend.e2e_asr_transformer:E2E", "adim": 256}]
        ).encode(),
        "lm/model.json": json.dumps({"model_module": "default", "backend": "pytorch", "layer": 2}).encode(),
        "old/model.json": json.dumps([83, 52, {"etype": "blstmp", "elayers": 4}]).encode(),
        "tfjs/model.json": json.dumps({"format": "layers-model", "weightsManifest": []}).encode(),
    }
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


def bench_cases() -> dict[str, dict[str, bytes]]:
    """The attacks above as model folders, for ``bench/models.py``."""
    cases: dict[str, dict[str, bytes]] = {}
    for name, files in {**_DIFFUSERS_CASES, **_MODULAR_CASES, **_CUSTOM_CASES}.items():
        cases[f"r19_diffusers_{name}"] = dict(files)
    for name, (file, data, _) in _NEMO_CASES.items():
        cases[f"r19_nemo_{name}"] = {file: data}
    for name, files in _ESPNET_CASES.items():
        cases[f"r19_espnet_{name}"] = dict(files)
    return cases
