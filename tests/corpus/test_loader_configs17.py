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
_MODULE = (
    "import pathlib\n(pathlib.Path(__file__).parent / 'marker').write_text('ran')\nclass Evil:\n    pass\n"
)

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
    hits = [
        f for f in config.findings if f.rule_id in ("LW-MODEL-042", "LW-MODEL-005") or "types" in f.message
    ]
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
    files["evil_mod.py"] = _MODULE.replace(
        "pathlib.Path(__file__).parent", f"pathlib.Path({str(tmp_path)!r})"
    ).encode()
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
            "structure": {
                "query": ["query_0_Dense"],
                "document": ["document_0_Dense", "document_1_Normalize"],
            },
            "parameters": {"default_route": "document", "allow_empty_key": True, "route_mappings": {}},
        }
        folder.mkdir()
        (folder / "router_config.json").write_text(json.dumps(config, indent=4))
        return folder, "mirrored"
    router = Router.for_query_document(
        query_modules=[Dense(4, 4)], document_modules=[Dense(4, 4), Normalize()]
    )
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


# ----------------------------------------------------------------- LangChain serialization (langchain_core.load)


def _lc_prompt(partial: object) -> dict[str, object]:
    return {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "prompts", "prompt", "PromptTemplate"],
        "kwargs": {"template": "{x}", "input_variables": ["x"], "partial_variables": {"leak": partial}},
    }


_LC_SECRET = {"lc": 1, "type": "secret", "id": ["AWS_SECRET_ACCESS_KEY"]}


@pytest.mark.parametrize(
    "data",
    [
        json.dumps(_lc_prompt(_LC_SECRET)).encode(),
        json.dumps(_LC_SECRET).encode(),
        json.dumps(_lc_prompt(_LC_SECRET)).replace('"lc"', '"l\\u0063"').encode(),
        json.dumps(_lc_prompt(_LC_SECRET)).replace('"lc": 1', '"lc": true').encode(),
        json.dumps(_lc_prompt(_LC_SECRET)).encode("utf-16"),
    ],
    ids=["in-prompt", "alone", "escaped-key", "lc-true", "utf-16"],
)
def test_langchain_secret_reads_the_environment(tmp_path: Path, data: bytes) -> None:
    """A ``{"lc": 1, "type": "secret", "id": [NAME]}`` object: langchain_core.load puts the environment variable
    NAME into the loaded object (secrets_from_env on by default before langchain-core 0.3.81 / 1.2.5,
    CVE-2025-68664). Confirmed with langchain-core 0.3.80: ``loads`` of the prompt returned a PromptTemplate whose
    partial variable held the variable's value; the scan said clean."""
    config = scan(tmp_path, {"chain.json": data})[0]
    assert config.verdict is not Verdict.CLEAN, config
    hits = [f for f in config.findings if f.rule_id == "LW-MODEL-042" and "secret" in f.message]
    assert hits, config.findings
    assert max(f.severity for f in hits) is Severity.HIGH


def test_langchain_constructor_outside_default_namespaces(tmp_path: Path) -> None:
    """A constructor naming a package outside LangChain's defaults is imported when the caller allows it."""
    doc = {"lc": 1, "type": "constructor", "id": ["evil_pkg", "mod", "Cls"], "kwargs": {}}
    config = scan(tmp_path, {"chain.json": json.dumps(doc).encode()})[0]
    assert config.max_severity() is Severity.HIGH, config


def test_langchain_client_with_key_is_reported_below_high(tmp_path: Path) -> None:
    """What ``dumps`` writes for a model client: the class (low) and its API key from the environment (medium:
    it goes to the endpoint the file sets)."""
    doc = {
        "lc": 1,
        "type": "constructor",
        "id": ["langchain", "chat_models", "openai", "ChatOpenAI"],
        "kwargs": {"openai_api_key": _LC_SECRET, "openai_api_base": "https://example.invalid/v1"},
    }
    config = scan(tmp_path, {"chain.json": json.dumps(doc).encode()})[0]
    assert config.max_severity() is Severity.MEDIUM, config


def test_langchain_real_loader_reads_the_secret(tmp_path: Path) -> None:
    """The real loader, where an affected langchain-core is installed (the miss above, end to end)."""
    pytest.importorskip("langchain_core.load")
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(_lc_prompt({"lc": 1, "type": "secret", "id": ["LW_TEST_SECRET"]})))
    child = (
        "import sys, pathlib\nfrom langchain_core.load import loads\n"
        "p = loads(pathlib.Path(sys.argv[1]).read_text())\n"
        "if p.partial_variables.get('leak') == 'value-from-env':\n"
        "    (pathlib.Path(sys.argv[1]).parent / 'marker').write_text('read')\n"
    )
    env = {**os.environ, "LW_TEST_SECRET": "value-from-env"}
    subprocess.run([sys.executable, "-c", child, str(path)], env=env, timeout=300, check=False)
    if not (tmp_path / "marker").exists():
        pytest.skip("this langchain-core does not read secrets from the environment by default (fixed)")
    config = scan(tmp_path / "scan", {"chain.json": path.read_bytes()})[0]
    assert config.max_severity() is Severity.HIGH, config


def _benign_langchain() -> tuple[list[str], str]:
    """Serializations of prompts, messages and a chain, by langchain-core's ``dumps`` when it is installed, else
    the text langchain-core 1.x writes for them."""
    try:
        from langchain_core.load import dumps
        from langchain_core.messages import AIMessage, HumanMessage
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
    except ImportError:
        prompt = {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "prompts", "prompt", "PromptTemplate"],
            "kwargs": {"input_variables": ["q"], "template": "{q}", "template_format": "f-string"},
            "name": "PromptTemplate",
        }
        chat = {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "prompts", "chat", "ChatPromptTemplate"],
            "kwargs": {
                "input_variables": ["q"],
                "messages": [
                    {
                        "lc": 1,
                        "type": "constructor",
                        "id": ["langchain", "prompts", "chat", "HumanMessagePromptTemplate"],
                        "kwargs": {"prompt": prompt},
                    }
                ],
            },
            "name": "ChatPromptTemplate",
        }
        messages = [
            {
                "lc": 1,
                "type": "constructor",
                "id": ["langchain", "schema", "messages", "HumanMessage"],
                "kwargs": {"content": "hi", "type": "human"},
            }
        ]
        chain = {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "schema", "runnable", "RunnableSequence"],
            "kwargs": {
                "first": chat,
                "last": {
                    "lc": 1,
                    "type": "constructor",
                    "id": ["langchain", "schema", "output_parser", "StrOutputParser"],
                    "kwargs": {},
                    "name": "StrOutputParser",
                },
            },
            "name": "RunnableSequence",
        }
        return [json.dumps(d) for d in (prompt, chat, messages, chain)], "mirrored"
    chat_prompt = ChatPromptTemplate.from_messages([("system", "You are {role}."), ("human", "{q}")])
    docs = [
        dumps(PromptTemplate.from_template("Hi {x}")),
        dumps(chat_prompt),
        dumps([HumanMessage("hi"), AIMessage("yo")]),
        dumps(chat_prompt | StrOutputParser()),
    ]
    return docs, "real"


def test_langchain_benign_serializations_are_clean(tmp_path: Path) -> None:
    """Prompts, messages and chains of them, as LangChain writes them, stay clean; so does a tokenizer vocabulary
    with an ``"lc"`` token."""
    docs, _ = _benign_langchain()
    files = {f"doc{i}.json": d.encode() for i, d in enumerate(docs)}
    files["tokenizer.json"] = json.dumps({"model": {"type": "BPE", "vocab": {"lc": 1234, "l": 1}}}).encode()
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


# ------------------------------------------------------------------------ LeRobot processor pipeline step classes


def _lerobot_pipeline(*steps: dict[str, object]) -> bytes:
    return json.dumps({"name": "policy_preprocessor", "steps": list(steps)}).encode()


@pytest.mark.parametrize(
    ("step", "severity"),
    [
        ({"class": "subprocess.Popen", "config": {"args": ["touch", "marker"]}}, Severity.CRITICAL),
        ({"class": "os.system", "config": {"command": "id"}}, Severity.CRITICAL),
        ({"class": "evil_steps.Step", "config": {}}, Severity.HIGH),
    ],
    ids=["popen", "os-system", "unknown-module"],
)
def test_lerobot_processor_step_class_is_judged(
    tmp_path: Path, step: dict[str, object], severity: Severity
) -> None:
    """LeRobot's ``DataProcessorPipeline.from_pretrained`` (``make_pre_post_processors`` of a pretrained policy)
    imports a step's ``class`` and calls it with the step's ``config`` before checking it is a ProcessorStep, with
    no opt-in. Confirmed with lerobot 0.4.4: ``{"class": "subprocess.Popen", "config": {"args": ["touch", M]}}`` in
    ``policy_preprocessor.json`` created M; the scan said clean."""
    files = {"policy_preprocessor.json": _lerobot_pipeline({"registry_name": "to_batch_processor"}, step)}
    config = scan(tmp_path, files)[0]
    assert config.max_severity() is severity, config
    assert any(f.rule_id == "LW-MODEL-042" and "LeRobot" in f.message for f in config.findings)


def test_lerobot_processor_real_loader_runs_the_class(tmp_path: Path) -> None:
    """The real loader, where lerobot is installed (the miss above, end to end)."""
    pytest.importorskip("lerobot.processor.pipeline")
    marker = tmp_path / "marker"
    step = {
        "class": "subprocess.Popen",
        "config": {"args": [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]},
    }
    model = tmp_path / "model"
    results = scan(model, {"policy_preprocessor.json": _lerobot_pipeline(step)})
    child = (
        "import sys, time\nfrom lerobot.processor.pipeline import DataProcessorPipeline\n"
        "try:\n    DataProcessorPipeline.from_pretrained(sys.argv[1], config_filename='policy_preprocessor.json')\n"
        "except Exception:\n    pass\ntime.sleep(2)\n"
    )
    subprocess.run([sys.executable, "-c", child, str(model)], timeout=300, check=False)
    if not marker.exists():
        pytest.skip("this lerobot does not import step classes by path")
    assert results[0].max_severity() is Severity.CRITICAL, results[0]


def test_lerobot_processor_benign_is_clean(tmp_path: Path) -> None:
    """What lerobot 0.4.4 writes (``save_pretrained`` of a pipeline of its own steps: registered names; an
    unregistered step of lerobot's is written by class path) stays clean. Mirrored: lerobot's dependencies do not
    install beside this machine's torch."""
    files = {
        "policy_preprocessor.json": _lerobot_pipeline(
            {"registry_name": "rename_observations_processor", "config": {"rename_map": {"a": "b"}}},
            {"registry_name": "to_batch_processor", "config": {}},
            {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
            {"class": "lerobot.processor.normalize_processor.NormalizerProcessorStep", "config": {}},
        ),
    }
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


def test_a_steps_list_naming_no_module_is_not_unverified(tmp_path: Path) -> None:
    """Any JSON may hold a ``steps`` list of dicts with a ``class`` (a training schedule's phases): a class name
    without a dot has no module for LeRobot to import, so nothing runs and the file is neither reported nor left
    unverified."""
    files = {
        "schedule.json": json.dumps(
            {"steps": [{"class": "warmup", "epochs": 1}, {"class": "cosine"}]}
        ).encode()
    }
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


# ------------------------------------------------------------------------------- mmengine ``custom_imports``


_MM_IMPORTS = [
    ("config.json", json.dumps({"custom_imports": {"imports": ["evil_mm"]}, "model": {"type": "X"}})),
    ("config.json", json.dumps({"custom_imports": {"imports": "evil_mm"}})),
    ("config.json", json.dumps({"custom_imports": {"imports": [*(["mmdet.models"] * 40), "evil_mm"]}})),
    ("config.json", json.dumps({"custom_imports": {"imports": [["evil_mm"]]}})),
    ("rtmdet.yaml", "custom_imports:\n  imports: [mmdet.models, evil_mm]\nmodel:\n  type: RTMDet\n"),
    ("rtmdet.yml", "custom_imports:\n  imports: evil_mm\n"),
]
"""(file name, text): mmengine configs whose ``custom_imports`` name a module outside OpenMMLab."""


@pytest.mark.parametrize(
    ("name", "data"),
    _MM_IMPORTS,
    ids=[
        "json-list",
        "json-string",
        "json-after-many-allowed",
        "json-not-a-name",
        "yaml-list",
        "yaml-string",
    ],
)
def test_mmengine_custom_imports_are_judged(tmp_path: Path, name: str, data: str) -> None:
    """mmengine's ``Config.fromfile`` (every OpenMMLab loader) imports the modules of a config's top-level
    ``custom_imports`` while reading it, with no opt-in. Confirmed with mmengine 0.10.7: ``Config.fromfile`` of a
    ``.json`` and of a ``.yaml`` config naming a module beside it ran the module (working folder on sys.path); the
    scan said clean for both."""
    config = scan(tmp_path, {name: data.encode()})[0]
    hits = [f for f in config.findings if f.rule_id == "LW-MODEL-042" and "custom_imports" in f.message]
    assert hits, config
    assert config.max_severity() is Severity.HIGH


def test_mmengine_custom_imports_real_loader(tmp_path: Path) -> None:
    """The real loader, where mmengine is installed (the miss above, end to end)."""
    pytest.importorskip("mmengine.config")
    (tmp_path / "evil_mm.py").write_text(_MODULE)
    files = {"cfg.json": json.dumps({"custom_imports": {"imports": ["evil_mm"]}}).encode()}
    results = scan(tmp_path / "scan", files)
    (tmp_path / "cfg.json").write_bytes(files["cfg.json"])
    child = "from mmengine.config import Config\nConfig.fromfile('cfg.json')\n"
    subprocess.run([sys.executable, "-c", child], cwd=tmp_path, timeout=300, check=False)
    assert (tmp_path / "marker").exists()
    assert results[0].max_severity() is Severity.HIGH, results[0]


def test_mmengine_benign_configs_are_clean(tmp_path: Path) -> None:
    """Configs as mmengine dumps them (``Config.dump`` to .json and .yaml), importing OpenMMLab's own modules, stay
    clean: by mmengine itself when it is installed, else the text mmengine 0.10.7 writes."""
    try:
        from mmengine.config import Config
    except ImportError:
        files = {
            "cfg.json": json.dumps(
                {
                    "custom_imports": {
                        "imports": ["mmdet.models", "mmpretrain.models"],
                        "allow_failed_imports": True,
                    },
                    "model": {"type": "mmdet.RetinaNet", "backbone": {"type": "ResNet", "depth": 50}},
                    "default_scope": "mmdet",
                }
            ).encode(),
            "cfg.yaml": (
                b"custom_imports:\n  allow_failed_imports: true\n  imports:\n  - mmdet.models\n  - mmpretrain.models\n"
                b"default_scope: mmdet\nmodel:\n  backbone:\n    depth: 50\n    type: ResNet\n  type: mmdet.RetinaNet\n"
            ),
        }
    else:
        cfg = Config(
            {
                "custom_imports": {
                    "imports": ["mmdet.models", "mmpretrain.models"],
                    "allow_failed_imports": True,
                },
                "model": {"type": "mmdet.RetinaNet", "backbone": {"type": "ResNet", "depth": 50}},
                "default_scope": "mmdet",
            }
        )
        files = {}
        for suffix in ("json", "yaml"):
            cfg.dump(str(tmp_path / f"dumped.{suffix}"))
            files[f"cfg.{suffix}"] = (tmp_path / f"dumped.{suffix}").read_bytes()
    for r in scan(tmp_path / "scan", files):
        assert r.verdict is Verdict.CLEAN, r


# ----------------------------------------------------------------------------- ultralytics model YAML activation

_YOLO_LAYERS = "backbone:\n  - [-1, 1, Conv, [16, 3, 2]]\nhead:\n  - [-1, 1, Classify, [nc]]\n"


def _yolo_activation(activation: str) -> bytes:
    """An ultralytics model YAML whose ``activation`` (evaluated by parse_model) is ``activation``."""
    return f"nc: 2\nactivation: {json.dumps(activation)}\n{_YOLO_LAYERS}".encode()


def _yolo_layer_module(module: str) -> bytes:
    """An ultralytics model YAML whose first layer's module is ``module``, given a path outside the folder."""
    return (
        f"nc: 2\nbackbone:\n  - [-1, 1, {module}, [\"'/elsewhere/x.pkl'\"]]\nhead:\n  - [-1, 1, Classify, [nc]]\n"
    ).encode()


@pytest.mark.parametrize(
    "activation",
    [
        "__import__('os').system('id') or __import__('torch').nn.SiLU()",
        "nn.SiLU(__import__('os').getcwd())",
        "torch.nn.modules.activation.SiLU()",
        "eval('1')",
        "nn.SiLU(inplace=x)",
    ],
    ids=["import-call", "call-in-argument", "deeper-path", "eval", "name-argument"],
)
def test_ultralytics_activation_is_evaluated(tmp_path: Path, activation: str) -> None:
    """ultralytics' ``parse_model`` runs ``eval()`` on a model YAML's ``activation`` when it builds the model from
    the YAML (``YOLO("model.yaml")``), unless the caller opted into its restricted loading. Confirmed with
    ultralytics 8.4.190: ``YOLO(path)`` of a YAML whose activation wrote a file wrote it; the scan said clean."""
    config = scan(tmp_path, {"yolo-custom.yaml": _yolo_activation(activation)})[0]
    hits = [f for f in config.findings if f.rule_id == "LW-MODEL-042" and "activation" in f.message]
    assert hits, config
    assert config.max_severity() is Severity.HIGH


@pytest.mark.parametrize(
    "module",
    ["torch_load", "check_requirements", "pickle", "nn.functional.relu", "torchvision.ops.nms", "[Conv]"],
    ids=["torch-load", "check-requirements", "module", "nn-function", "ops-function", "not-a-name"],
)
def test_ultralytics_layer_module_function_is_called(tmp_path: Path, module: str) -> None:
    """``parse_model`` calls a layer's module, found in ``ultralytics.nn.tasks``' globals (or torch.nn /
    torchvision.ops), with the layer's arguments. Confirmed with ultralytics 8.4.190: a backbone layer
    ``[-1, 1, torch_load, ["'/abs/outside.pkl'"]]`` made ``YOLO(yaml)`` unpickle that file (its payload wrote a
    marker); the scan said clean."""
    config = scan(tmp_path, {"custom.yaml": _yolo_layer_module(module)})[0]
    hits = [f for f in config.findings if f.rule_id == "LW-MODEL-042" and "layer 0 module" in f.message]
    assert hits, config
    assert config.max_severity() is Severity.HIGH


def test_ultralytics_activation_real_loader(tmp_path: Path) -> None:
    """The real loader, where ultralytics is installed (the miss above, end to end)."""
    pytest.importorskip("ultralytics")
    marker = tmp_path / "marker"
    act = f"__import__('pathlib').Path({str(marker)!r}).write_text('ran') or __import__('torch').nn.SiLU()"
    data = f"nc: 2\nactivation: {json.dumps(act)}\n{_YOLO_LAYERS}".encode()
    results = scan(tmp_path / "scan", {"custom.yaml": data})
    (tmp_path / "custom.yaml").write_bytes(data)
    child = (
        "import sys\nfrom ultralytics import YOLO\ntry:\n    YOLO(sys.argv[1])\nexcept Exception:\n    pass\n"
    )
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path / "cfgdir")}
    subprocess.run(
        [sys.executable, "-c", child, str(tmp_path / "custom.yaml")], env=env, timeout=300, check=False
    )
    if not marker.exists():
        pytest.skip("this ultralytics does not evaluate the activation")
    assert results[0].max_severity() is Severity.HIGH, results[0]


def test_ultralytics_benign_model_yamls_are_clean(tmp_path: Path) -> None:
    """ultralytics' own model YAMLs (every one shipped in the installed package; else the activations they and its
    docs write) stay clean."""
    try:
        import ultralytics
    except ImportError:
        files = {
            f"m{i}.yaml": f"nc: 80\nactivation: {act}\n{_YOLO_LAYERS}".encode()
            for i, act in enumerate(
                [
                    "torch.nn.ReLU() # (optional) model default activation function",
                    "nn.SiLU()",
                    "nn.LeakyReLU(0.1)",
                ]
            )
        }
        files["none.yaml"] = f"nc: 80\n{_YOLO_LAYERS}".encode()
        files["v10.yaml"] = (
            b"nc: 80\nbackbone:\n  - [-1, 1, nn.Upsample, [None, 2]]\nhead:\n  - [-1, 1, v10Detect, [nc]]\n"
        )
    else:
        root = Path(ultralytics.__file__).parent / "cfg" / "models"
        files = {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.yaml")}
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


# ------------------------------------------------------------------------ GLiNER gliner_config.json sub-configs

_BERT_TINY = {
    "model_type": "bert",
    "hidden_size": 8,
    "num_hidden_layers": 1,
    "num_attention_heads": 1,
    "intermediate_size": 8,
    "vocab_size": 32,
}


def _gliner_config(folder: str, key: str = "encoder_config", ref: str = "evil_mod.EvilModel") -> bytes:
    sub = {**_BERT_TINY, "auto_map": {"AutoModel": ref}, "_name_or_path": folder}
    return json.dumps(
        {"model_name": folder, key: sub, "span_mode": "markerV0", "max_width": 4, "hidden_size": 8}
    ).encode()


@pytest.mark.parametrize(
    ("key", "ref"),
    [
        ("encoder_config", "evil_mod.EvilModel"),
        ("labels_encoder_config", "evil_mod.EvilModel"),
        ("decoder_config", "attacker/repo--evil_mod.EvilModel"),
    ],
    ids=["encoder-local", "labels-encoder", "decoder-other-repo"],
)
def test_gliner_sub_config_auto_map_runs_without_opt_in(tmp_path: Path, key: str, ref: str) -> None:
    """GLiNER builds its encoder (and labels encoder, decoder) from the sub-configs of ``gliner_config.json`` with
    ``trust_remote_code=True`` of its own, so their ``auto_map`` code runs on a plain ``GLiNER.from_pretrained``.
    Confirmed with gliner 0.2.29: ``GLiNER.from_pretrained(folder, local_files_only=True)`` imported the folder's
    ``evil_mod.py`` named by ``encoder_config.auto_map.AutoModel`` (marker written); the scan said clean."""
    config = scan(tmp_path, {"gliner_config.json": _gliner_config(".", key, ref)})[0]
    hits = [f for f in config.findings if f.rule_id == "LW-MODEL-042" and "auto_map" in f.message]
    assert hits, config
    assert config.max_severity() is Severity.HIGH


def test_gliner_real_loader_runs_the_encoder_code(tmp_path: Path) -> None:
    """The real loader, where GLiNER is installed (the miss above, end to end)."""
    pytest.importorskip("gliner")
    import numpy as np
    from safetensors.numpy import save_file
    from transformers import BertTokenizerFast

    model = tmp_path / "model"
    model.mkdir()
    marker = tmp_path / "marker"
    (model / "evil_mod.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\nfrom transformers import BertModel\n"
        "class EvilModel(BertModel):\n    pass\n"
    )
    (model / "gliner_config.json").write_bytes(_gliner_config(str(model)))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz"]))
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(str(model))
    save_file({"dummy": np.zeros(1, dtype=np.float32)}, str(model / "model.safetensors"))
    results = scan(tmp_path / "scan", {"gliner_config.json": (model / "gliner_config.json").read_bytes()})
    child = (
        "import sys\nfrom gliner import GLiNER\n"
        "try:\n    GLiNER.from_pretrained(sys.argv[1], local_files_only=True)\nexcept Exception:\n    pass\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    subprocess.run([sys.executable, "-c", child, str(model)], env=env, timeout=300, check=False)
    if not marker.exists():
        pytest.skip("this GLiNER does not pass trust_remote_code=True for its encoder")
    assert results[0].max_severity() is Severity.HIGH, results[0]


def test_gliner_benign_config_is_clean(tmp_path: Path) -> None:
    """A gliner_config.json as GLiNER writes it (mirrored: the encoder's transformers config, no auto_map) stays
    clean."""
    sub = {**_BERT_TINY, "_name_or_path": "microsoft/deberta-v3-small", "architectures": ["DebertaV2Model"]}
    doc = {
        "model_name": "microsoft/deberta-v3-small",
        "encoder_config": sub,
        "labels_encoder_config": None,
        "span_mode": "markerV0",
        "max_width": 12,
        "hidden_size": 768,
        "model_type": "gliner",
    }
    for r in scan(tmp_path, {"gliner_config.json": json.dumps(doc).encode()}):
        assert r.verdict is Verdict.CLEAN, r


# --------------------------------------------------------------- base configs: fvcore ``_BASE_``, mmengine ``_base_``


_BASE_CONFIGS = [
    ("config.yaml", "_BASE_: /srv/shared/base.yaml\nMODEL:\n  DEVICE: cpu\n"),
    ("config.yaml", "_BASE_: https://example.invalid/base.yaml\n"),
    ("config.yaml", "_BASE_: ['../ok.yaml', '~/base.yaml']\n"),
    ("cfg.yaml", "_base_: /srv/shared/base.py\nmodel:\n  type: X\n"),
    ("cfg.yaml", "_base_: ['./schedule.py']\n"),
    ("cfg.json", json.dumps({"_base_": "C:/configs/base.py"})),
]
"""(file name, text): fvcore ``_BASE_`` and mmengine ``_base_`` configs reading a base outside the folder or a .py."""


@pytest.mark.parametrize(
    ("name", "data"),
    _BASE_CONFIGS,
    ids=[
        "fvcore-absolute",
        "fvcore-url",
        "fvcore-home",
        "mmengine-absolute-py",
        "mmengine-py-beside",
        "mmengine-json",
    ],
)
def test_base_config_outside_or_python_is_reported(tmp_path: Path, name: str, data: str) -> None:
    """fvcore's ``load_yaml_with_base`` (detectron2's ``merge_from_file``, allow_unsafe=True) reads a ``_BASE_``
    YAML first, with ``yaml.unsafe_load`` when the safe loader refuses it; mmengine's ``Config.fromfile`` reads each
    ``_base_`` first and executes a ``.py`` one. Confirmed with fvcore 0.1.5 (an absolute-path base's
    ``!!python/object/apply`` ran) and mmengine 0.10.7 (an absolute-path ``.py`` base ran); the scan said clean."""
    config = scan(tmp_path, {name: data.encode()})[0]
    hits = [f for f in config.findings if f.rule_id == "LW-MODEL-042" and "_base_" in f.message.lower()]
    assert hits, config
    assert config.max_severity() is Severity.HIGH


def test_base_config_real_loaders(tmp_path: Path) -> None:
    """The real loaders, where installed (the misses above, end to end)."""
    ran = []
    if _installed("fvcore"):
        marker = tmp_path / "fv-marker"
        (tmp_path / "base.yaml").write_text(
            f"X: !!python/object/apply:builtins.exec [{json.dumps(f'open({str(marker)!r}, chr(119))')}]\n"
        )
        cfg = tmp_path / "model" / "config.yaml"
        cfg.parent.mkdir()
        cfg.write_text(f"_BASE_: {tmp_path / 'base.yaml'}\n")
        child = (
            "import sys\nfrom fvcore.common.config import CfgNode\n"
            "CfgNode.load_yaml_with_base(sys.argv[1], allow_unsafe=True)\n"
        )
        subprocess.run([sys.executable, "-c", child, str(cfg)], timeout=300, check=False)
        assert marker.exists()
        assert (
            scan(tmp_path / "scan-fv", {"config.yaml": cfg.read_bytes()})[0].max_severity() is Severity.HIGH
        )
        ran.append("fvcore")
    if _installed("mmengine"):
        marker = tmp_path / "mm-marker"
        (tmp_path / "base.py").write_text(f"open({str(marker)!r}, 'w')\nx = 1\n")
        cfg = tmp_path / "mm" / "cfg.yaml"
        cfg.parent.mkdir()
        cfg.write_text(f"_base_: {tmp_path / 'base.py'}\n")
        child = "import sys\nfrom mmengine.config import Config\nConfig.fromfile(sys.argv[1])\n"
        subprocess.run([sys.executable, "-c", child, str(cfg)], timeout=300, check=False)
        assert marker.exists()
        assert scan(tmp_path / "scan-mm", {"cfg.yaml": cfg.read_bytes()})[0].max_severity() is Severity.HIGH
        ran.append("mmengine")
    if not ran:
        pytest.skip("neither fvcore nor mmengine is installed")


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_base_config_benign_relative_is_clean(tmp_path: Path) -> None:
    """detectron2's own configs inherit relative YAML bases (``_BASE_: "../Base-RCNN-FPN.yaml"``), and mmengine's
    package-relative ones (``mmdet::_base_/models/retinanet_r50_fpn.py``) come from the installed package: clean
    (mirrored from detectron2's and mmdet's config trees)."""
    files = {
        "COCO-Detection/retinanet_R_50_FPN_1x.yaml": b'_BASE_: "../Base-RetinaNet.yaml"\nMODEL:\n  RESNETS:\n'
        b"    DEPTH: 50\n",
        "Base-RetinaNet.yaml": b'MODEL:\n  META_ARCHITECTURE: "RetinaNet"\n',
        "cfg.yaml": b"_base_: ['mmdet::_base_/models/retinanet_r50_fpn.py', './schedule.yaml']\n",
    }
    for r in scan(tmp_path, files):
        assert r.verdict is Verdict.CLEAN, r


# ---------------------------------------------------------------------------------- PaddleNLP ``.pdparams``


def test_paddle_pdparams_pickle_is_judged(tmp_path: Path) -> None:
    """``paddle.load`` reads a ``.pdparams``/``.pdopt`` file with pickle: found by content, whatever the name (no
    PaddleNLP config names code; its tokenizer and model configs are looked up in its own registries)."""
    import pickle

    data = b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01cbuiltins\nexec\nq\x02X\x08\x00\x00\x00print(1)q\x03\x85q\x04Rq\x05s."
    pickle.loads(data.replace(b"exec", b"repr"))  # well formed (with a harmless callable in its place)
    config = scan(tmp_path, {"model_state.pdparams": data})[0]
    assert config.max_severity() is Severity.CRITICAL, config
