"""Configs that name code for their loader: Hydra ``_target_`` and Python tags in YAML, skops schemas.

Each attack is built here as the loader would read it; each benign counterpart is what the real tools write
(NeMo's model_config.yaml, Lightning's hparams.yaml, skops' schema.json of a scikit-learn pipeline).
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from test_containers_unit import scan_bytes

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "corpus"))
from test_advisory_formats import _json_node, _skops


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _found(ctx: object, rule: str) -> list[object]:
    return [f for f in ctx.findings if f.rule_id == rule]  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------ Hydra


_HYDRA_ATTACKS = {
    "top-level": b"_target_: os.system\ncommand: id\n",
    "nested": b"model:\n  encoder:\n    _target_: subprocess.check_output\n    args: [[sh, -c, id]]\n",
    "in-a-list": b"model:\n  callbacks:\n    - name: a\n    - _target_: builtins.exec\n      _args_: ['import os']\n",
    "flow-style": b"{model: {_target_: posix.system, _args_: [id]}}\n",
    "quoted": b'model:\n  _target_: "os.popen"\n',
    "attribute-path": b"model:\n  _target_: os.path.os.system\n",
    "resolver": b"model:\n  _target_: hydra.utils.get_method\n  path: os.system\n",
    "importlib": b"model:\n  _target_: importlib.import_module\n  name: evil\n",
    "torch-load": b"model:\n  _target_: torch.load\n  f: /tmp/x.pt\n",
    "interpolated": b"t: os.system\nmodel:\n  _target_: ${t}\n",
    "anchored": b"a: &t os.system\nmodel:\n  _target_: *t\n",
    "not-a-scalar": b"model:\n  _target_: [os, system]\n",
    "unknown-package": b"model:\n  _target_: evilpkg.payload.Run\n",
    "lightning-cli-class-path": b"model:\n  class_path: subprocess.Popen\n  init_args:\n    args: [id]\n",
    "nemo-function": b"model:\n  _target_: nemo.utils.model_utils.import_class_by_path\n  path: os.system\n",
}


@pytest.mark.parametrize("case", sorted(_HYDRA_ATTACKS))
@pytest.mark.parametrize("where", ["standalone", "nemo-tar"])
def test_hydra_targets_that_run_code_are_reported(case: str, where: str) -> None:
    config = _HYDRA_ATTACKS[case]
    if where == "standalone":
        ctx = scan_bytes(config, "model_config.yaml")
    else:
        ctx = scan_bytes(
            _tar({"model_config.yaml": config, "model_weights.ckpt": b"PK\x05\x06" + bytes(18)}), "m.nemo"
        )
    found = _found(ctx, "LW-MODEL-042")
    assert found, (case, ctx.findings, ctx.unverified)
    # a module no model environment has is MEDIUM, as a class of it in a pickle is (LW-MODEL-006)
    least = Severity.MEDIUM if case == "unknown-package" else Severity.HIGH
    assert max(f.severity for f in found) >= least


@pytest.mark.parametrize("target", ["os.system", "subprocess.Popen", "builtins.exec", "evilpkg.models.Net"])
def test_nemo_top_level_target_is_judged(target: str) -> None:
    config = f"target: {target}\nnemo_version: 2.0.0\nmodel:\n  sample_rate: 16000\n".encode()
    found = _found(scan_bytes(_tar({"model_config.yaml": config}), "m.nemo"), "LW-MODEL-042")
    assert found, target
    # only NeMo's own config reads a top-level target as a class path; elsewhere it is a plain key
    assert not _found(scan_bytes(config, "params.yaml"), "LW-MODEL-042")


def test_hydra_severity_follows_the_allow_list() -> None:
    ctx = scan_bytes(b"model:\n  _target_: os.system\n", "config.yaml")
    assert [f.severity for f in _found(ctx, "LW-MODEL-042")] == [Severity.CRITICAL]


def test_benign_nemo_and_lightning_configs_are_clean() -> None:
    nemo = (
        b"sample_rate: 16000\n"
        b"model:\n  _target_: nemo.collections.asr.models.EncDecCTCModel\n"
        b"  preprocessor:\n    _target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor\n"
        b"    window_size: 0.025\n"
        b"  encoder:\n    _target_: nemo.collections.asr.modules.ConformerEncoder\n    d_model: 176\n"
        b"  optim:\n    name: adamw\n    lr: 0.001\n    sched:\n      name: CosineAnnealing\n"
        b"  loss:\n    _target_: torch.nn.CrossEntropyLoss\n"
        b"  opt:\n    _target_: torch.optim.AdamW\n    lr: 1.0e-3\n"
        b"target: nemo.collections.asr.models.ctc_models.EncDecCTCModel\nnemo_version: 2.0.0\n"
    )
    hparams = b"lr: 0.001\nbetas: !!python/tuple\n- 0.9\n- 0.999\nlayers: [64, 64]\nname: run-1\n"
    lightning_cli = (
        b"seed_everything: 42\ntrainer:\n  callbacks:\n  - class_path: lightning.pytorch.callbacks.ModelCheckpoint\n"
        b"    init_args:\n      monitor: val_loss\noptimizer:\n  class_path: torch.optim.AdamW\n"
        b"  init_args:\n    lr: 0.001\n"
    )
    for name, data in [
        ("model_config.yaml", nemo),
        ("hparams.yaml", hparams),
        ("config.yaml", lightning_cli),
    ]:
        ctx = scan_bytes(data, name)
        assert not ctx.findings and not ctx.unverified, (name, ctx.findings, ctx.unverified)
        ctx = scan_bytes(_tar({name: data}), "m.nemo")
        assert not ctx.findings and not ctx.unverified, (name, ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    ("tag", "severity"),
    [
        ("!!python/object/apply:os.system ['id']", Severity.CRITICAL),
        ("!!python/object/apply:subprocess.Popen [[sh, -c, id]]", Severity.CRITICAL),
        ("!!python/name:builtins.eval ''", Severity.CRITICAL),
        ("!!python/object/new:evilpkg.Thing {}", Severity.MEDIUM),
        ("!!python/module:evilpkg ''", Severity.HIGH),
        ("!<tag:yaml.org,2002:python/object/apply:os.system> ['id']", Severity.CRITICAL),
    ],
)
def test_python_tags_naming_callables_are_reported(tag: str, severity: Severity) -> None:
    ctx = scan_bytes(f"lr: 0.1\ncallback: {tag}\n".encode(), "hparams.yaml")
    found = _found(ctx, "LW-MODEL-043")
    assert found and max(f.severity for f in found) == severity, ctx.findings


# SpeechBrain's hyperparams.yaml, read by HyperPyYAML when a model is loaded with from_hparams
_SPEECHBRAIN_HPARAMS = b"""pretrained_path: speechbrain/spkrec-ecapa-voxceleb
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [1024, 1024, 1024, 1024, 3072]
modules:
    compute_features: !ref <compute_features>
    embedding_model: !ref <embedding_model>
label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
activation: !name:torch.nn.LeakyReLU
opt_class: !name:torch.optim.Adam
    lr: 0.001
counts: !new:dict
    a: 1
tokenizer_cfg: !include:tokenizer.yaml
    vocab: 100
proj: !new:torch.nn.Linear
    in_features: 3
    out_features: 2
"""


def test_speechbrain_hyperparams_are_clean() -> None:
    for data, name in [
        (_SPEECHBRAIN_HPARAMS, "hyperparams.yaml"),
        (_zip({"hyperparams.yaml": _SPEECHBRAIN_HPARAMS}), "m.zip"),
    ]:
        ctx = scan_bytes(data, name)
        assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    ("tag", "severity"),
    [
        ("!apply:os.system ['id']", Severity.CRITICAL),
        ("!new:subprocess.Popen [[sh, -c, id]]", Severity.CRITICAL),
        ("!name:builtins.eval", Severity.CRITICAL),
        ("!apply:torch.load ['/srv/x.pt']", Severity.CRITICAL),
        ("!new:os.path.os.system ['id']", Severity.CRITICAL),
        ("!apply:speechbrain.utils.data_utils.download_file ['https://x', 'y']", Severity.HIGH),
        ("!module:os", Severity.HIGH),
        ("!new:evilpkg.Thing", Severity.MEDIUM),
        ("!apply:not-a-name", Severity.HIGH),
        # pydoc.locate resolves builtins and bare module names too; !applyref: calls like !apply:
        ("!apply:eval ['1']", Severity.CRITICAL),
        ("!name:exec", Severity.CRITICAL),
        ("!applyref:os.system ['id']", Severity.CRITICAL),
        ("!new:evilmod", Severity.HIGH),
        # an included YAML file outside the model folder is read and its tags run, unscanned
        ("!include:/srv/shared/evil.yaml", Severity.HIGH),
        ("!include:../../other/hparams.yaml", Severity.HIGH),
    ],
)
def test_hyperpyyaml_tags_naming_callables_are_reported(tag: str, severity: Severity) -> None:
    ctx = scan_bytes(f"n_mels: 80\nmodel: {tag}\n".encode(), "hyperparams.yaml")
    found = _found(ctx, "LW-MODEL-043")
    assert found and max(f.severity for f in found) == severity, ctx.findings


def test_other_local_yaml_tags_are_not_python() -> None:
    """CloudFormation's and Ansible's own tags name no Python."""
    doc = b"R:\n  Name: !Sub '${AWS::StackName}-x'\n  Arn: !GetAtt Role.Arn\n  T: !Ref Tags\n  S: !vault x\n"
    ctx = scan_bytes(doc, "template.yaml")
    assert not ctx.findings and not ctx.unverified, ctx.findings


# MLflow's MLmodel, as mlflow 3 writes it for a scikit-learn model
_MLMODEL = b"""artifact_path: model
flavors:
  python_function:
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.sklearn
    model_path: model.skops
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.skops
    serialization_format: skops
    sklearn_version: 1.9.1
mlflow_version: 3.17.2
model_uuid: 4c6c0b0b1e7a4e8e9e2f
"""


def test_mlflow_mlmodel_of_its_own_flavors_is_clean() -> None:
    pyfunc = _MLMODEL.replace(b"loader_module: mlflow.sklearn", b"loader_module: mlflow.pyfunc.model")
    for data in (_MLMODEL, pyfunc, _MLMODEL.replace(b"    predict_fn", b"    code: null\n    predict_fn")):
        ctx = scan_bytes(data, "MLmodel")
        assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"loader_module: mlflow.sklearn", b"loader_module: my_loader"),
        (b"loader_module: mlflow.sklearn", b"loader_module: mlflowx.loader"),
        (b"loader_module: mlflow.sklearn", b"loader_module: [a, b]"),
        (b"    predict_fn", b"    code: code\n    predict_fn"),
        (b"    predict_fn", b"    code: [code, lib]\n    predict_fn"),
    ],
)
def test_mlflow_mlmodel_bringing_its_own_code_is_reported(old: bytes, new: bytes) -> None:
    """mlflow.pyfunc.load_model puts the flavor's code folders on sys.path and imports loader_module."""
    ctx = scan_bytes(_MLMODEL.replace(old, new), "MLmodel")
    found = _found(ctx, "LW-MODEL-042")
    assert found and max(f.severity for f in found) == Severity.MEDIUM, ctx.findings


def test_alias_bomb_is_walked_once_per_node() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 30):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("model:\n  _target_: os.system")
    ctx = scan_bytes("\n".join(lines).encode(), "config.yaml")
    assert _found(ctx, "LW-MODEL-042")


def test_broken_yaml_config_is_unverified() -> None:
    ctx = scan_bytes(b"model:\n  _target_: [unclosed\n", "model_config.yaml")
    assert ctx.unverified and "YAML config cannot be parsed" in ctx.unverified[0]


# ------------------------------------------------------------------------------------------------ skops


_SKOPS_ATTACKS: dict[str, dict[str, object]] = {
    "operator-methodcaller": {
        "__class__": "methodcaller", "__module__": "operator", "__loader__": "OperatorFuncNode",
        "attrs": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                  "content": [_json_node("system"), _json_node("id")]},
    },
    "operator-class-lies-about-module": {
        "__class__": "attrgetter", "__module__": "collections", "__loader__": "OperatorFuncNode",
        "attrs": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode", "content": []},
    },
    "method-os-system": {
        "__class__": "module", "__module__": "os", "__loader__": "MethodNode",
        "content": {"func": "system", "obj": {"__class__": "module", "__module__": "os", "__loader__": "TypeNode"}},
    },
    "function-eval": {"__class__": "eval", "__module__": "builtins", "__loader__": "FunctionNode"},
    "function-nested-path": {"__class__": "path.os.system", "__module__": "os", "__loader__": "FunctionNode"},
    "type-os-system": {"__class__": "system", "__module__": "os", "__loader__": "TypeNode"},
    "reduce-constructor": {
        "__class__": "Popen", "__module__": "subprocess", "__loader__": "ConstructorFromReduceNode",
        "content": {"__class__": "tuple", "__module__": "builtins", "__loader__": "TupleNode",
                    "content": [_json_node("id")]},
    },
    "object-unknown-package": {"__class__": "Payload", "__module__": "evilpkg", "__loader__": "ObjectNode"},
    "partial-of-exec": {
        "__class__": "partial", "__module__": "functools", "__loader__": "PartialNode",
        "content": {"func": {"__class__": "exec", "__module__": "builtins", "__loader__": "FunctionNode"},
                    "args": _json_node([]), "kwds": _json_node({}), "namespace": _json_node({})},
    },
    "container-is-a-callable": {
        "__class__": "system", "__module__": "os", "__loader__": "ListNode", "content": [_json_node("id")],
    },
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(_SKOPS_ATTACKS))
def test_skops_schemas_naming_dangerous_callables_are_reported(case: str) -> None:
    ctx = scan_bytes(_skops(_SKOPS_ATTACKS[case]), "model.skops")
    found = _found(ctx, "LW-MODEL-044")
    least = Severity.MEDIUM if case == "object-unknown-package" else Severity.HIGH
    assert found and max(f.severity for f in found) >= least, (case, ctx.findings, ctx.unverified)


def test_skops_benign_pipeline_is_clean() -> None:
    scaler = {
        "__class__": "StandardScaler", "__module__": "sklearn.preprocessing._data", "__loader__": "ObjectNode",
        "content": {"__class__": "dict", "__module__": "builtins", "__loader__": "DictNode",
                    "content": {"with_mean": _json_node(True), "copy": _json_node(True),
                                "mean_": {"__class__": "ndarray", "__module__": "numpy", "__loader__": "NdArrayNode",
                                          "type": "numpy", "file_name": "a.npy"},
                                "dtype": {"__class__": "float64", "__module__": "numpy", "__loader__": "TypeNode"},
                                "n_samples_seen_": _json_node(10), "feature_names_in_": _json_node(None)}},
    }  # fmt: skip
    ctx = scan_bytes(_skops(scaler), "model.skops")
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


def test_skops_node_with_an_unknown_loader_is_unverified() -> None:
    ctx = scan_bytes(
        _skops({"__class__": "X", "__module__": "sklearn", "__loader__": "ShinyNewNode"}), "m.skops"
    )
    assert any("unknown loader" in u for u in ctx.unverified)


def test_configs_through_the_cli_scan(tmp_path: Path) -> None:
    (tmp_path / "model.nemo").write_bytes(_tar({"model_config.yaml": b"model:\n  _target_: os.system\n"}))
    (tmp_path / "model.skops").write_bytes(_skops(_SKOPS_ATTACKS["function-eval"]))
    report = scan_paths([str(tmp_path)], jobs=1)
    verdicts = {Path(t.path).name: t.verdict for t in report.targets}
    assert verdicts == {"model.nemo": Verdict.FINDINGS, "model.skops": Verdict.FINDINGS}


# ------------------------------------------------------------------------------------- sentence-transformers


def _modules(*types: str) -> bytes:
    return json.dumps(
        [
            {"idx": i, "name": str(i), "path": "" if i == 0 else f"{i}_M", "type": t}
            for i, t in enumerate(types)
        ]
    ).encode()


@pytest.mark.parametrize(
    ("ref", "severity"),
    [
        ("torch.jit", Severity.CRITICAL),  # torch.jit.load(folder): TorchScript from the repo
        ("joblib.numpy_pickle", Severity.CRITICAL),  # joblib's load: a pickle from the repo
        ("custom_st.Transformer", Severity.HIGH),  # repository code (trust_remote_code)
        ("pylate.models.Dense.Evil", Severity.HIGH),  # only PyLate's Dense itself is known
        ("pylate.models.Dense", Severity.HIGH),
    ],
)
def test_sentence_transformers_module_types_outside_the_package_are_reported(
    ref: str, severity: Severity
) -> None:
    data = _modules("sentence_transformers.models.Transformer", ref)
    for ctx in (scan_bytes(data, "modules.json"), scan_bytes(_zip({"m/modules.json": data}), "m.zip")):
        assert [f.severity for f in _found(ctx, "LW-MODEL-042")] == [severity], ctx.findings


@pytest.mark.parametrize(
    "config",
    [
        {"in_features": 384, "out_features": 256, "activation_function": "os.system"},
        {"in_features": 384, "activation_function": "pdb.set_trace"},
        {
            "architectures": ["BertForSequenceClassification"],
            "sentence_transformers": {"activation_fn": "code.interact"},
        },
        {"activation_fn": "builtins.breakpoint"},
        {"in_features": 384, "activation_function": 7},
    ],
)
def test_sentence_transformers_activation_paths_are_judged(config: dict[str, object]) -> None:
    ctx = scan_bytes(json.dumps(config).encode(), "config.json")
    assert _found(ctx, "LW-MODEL-042") or ctx.unverified, (ctx.findings, ctx.unverified)


def test_sentence_transformers_own_files_are_clean() -> None:
    files = {
        "modules.json": _modules(
            "sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"
        ),
        "2_Dense/config.json": json.dumps(
            {
                "in_features": 384,
                "out_features": 256,
                "bias": True,
                "activation_function": "torch.nn.modules.activation.Tanh",
            }
        ).encode(),
        "config.json": json.dumps(
            {
                "architectures": ["BertForSequenceClassification"],
                "sentence_transformers": {
                    "activation_fn": "torch.nn.modules.linear.Identity",
                    "version": "5.0.0",
                },
            }
        ).encode(),
        # a PyLate ColBERT model (sentence-transformers 6.2 loads this Dense as its own)
        "colbert/modules.json": _modules(
            "sentence_transformers.models.Transformer", "pylate.models.Dense.Dense"
        ),
        "other.json": json.dumps([{"type": "torch.jit"}]).encode(),  # not modules.json: a list of records
        "gpt2/config.json": json.dumps({"model_type": "gpt2", "activation_function": "gelu_new"}).encode(),
    }
    for name, data in files.items():
        ctx = scan_bytes(data, name)
        assert not ctx.findings and not ctx.unverified, (name, ctx.findings, ctx.unverified)


def test_yaml_and_skops_over_the_node_bound_are_unverified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwarden.checks.models import configs, keras

    monkeypatch.setattr(configs, "MAX_CONFIG_NODES", 20)
    monkeypatch.setattr(keras, "MAX_CONFIG_NODES", 20)
    big_yaml = "\n".join(f"k{i}: {i}" for i in range(50)).encode() + b"\nm:\n  _target_: os.system\n"
    (tmp_path / "config.yaml").write_bytes(big_yaml)
    steps = [_SKOPS_ATTACKS["object-unknown-package"]] * 30
    listed = {"__class__": "list", "__module__": "builtins", "__loader__": "ListNode", "content": steps}
    (tmp_path / "m.skops").write_bytes(_skops(listed))
    for target in scan_paths([str(tmp_path)], jobs=1).targets:
        assert target.verdict is Verdict.UNVERIFIED, target
        assert "max_config_nodes" in (target.reason or ""), target


# ------------------------------------------------------------------------------- configs read once


@pytest.mark.parametrize(
    "first",
    # first bytes that are pickle opcodes (SETITEM, TUPLE, LIST, BUILD, DICT, APPENDS, PUT, OBJ, SETITEMS, GET):
    # the file is tried as a pickle, judged as text there, and must not be judged as a config a second time
    [
        *(b"seed: 1\n", b"trainer:\n  max_epochs: 1\n", b"lr: 0.1\n", b"batch_size: 8\n", b"data: x\n"),
        *(
            b"epochs: 3\n",
            b"paths: {}\n",
            b"output_dir: out\n",
            b"use_cache: true\n",
            b"gpus: 1\n",
            b"# comment\n",
        ),
    ],
)
def test_a_yaml_config_is_judged_once_whatever_its_first_byte(first: bytes) -> None:
    target = scan_bytes(first + b"model:\n  _target_: os.system\n", "config.yaml")
    assert len(_found(target, "LW-MODEL-042")) == 1, target.findings
    template = scan_bytes(first + b'prompt: "{{ ().__class__ }}"\n', "serve.yml")
    assert len(_found(template, "LW-MODEL-040")) == 1, template.findings


# ------------------------------------------------------------------------------- functools.partial tags


def _hparams_yaml(hparams: dict[str, object]) -> bytes:
    import yaml

    return yaml.dump(hparams).encode()  # the default Dumper, as Lightning's save_hparams_to_yaml writes


def test_lightning_hparams_with_a_partial_optimizer_are_clean() -> None:
    import functools

    import torch

    hparams = {
        "optimizer": functools.partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.01),
        "scheduler": functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=10),
        "head": functools.partial(torch.nn.modules.linear.Linear, 16),
        "loss": torch.nn.CrossEntropyLoss(),
        "betas": (0.9, 0.999),
    }
    data = _hparams_yaml(hparams)
    assert b"!!python/object/apply:functools.partial" in data
    ctx = scan_bytes(data, "hparams.yaml")
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    ("partial", "severity"),
    [
        ("!!python/object/apply:functools.partial [!!python/name:os.system '', id]", Severity.CRITICAL),
        (
            "!!python/object/new:functools.partial [!!python/name:builtins.exec '', 'import os']",
            Severity.CRITICAL,
        ),
        (
            "!!python/object/apply:functools.partial\n  args: [!!python/name:numpy.memmap '', /etc/passwd]",
            Severity.CRITICAL,
        ),
        # the function set by partial.__setstate__
        (
            "!!python/object/apply:functools.partial\n  args: [!!python/name:torch.optim.adamw.AdamW '']\n"
            "  state: !!python/tuple [!!python/name:builtins.eval '', !!python/tuple ['1'], {}, null]",
            Severity.CRITICAL,
        ),
        (
            "!!python/object/apply:functools.partial [!!python/object/apply:operator.attrgetter [system]]",
            Severity.CRITICAL,
        ),
        (
            "!!python/object:functools.partial {}",
            Severity.CRITICAL,
        ),  # not the dumper's form: judged as a name
        ("!!python/object/apply:functools.partial [!!python/name:evilpkg.run '']", Severity.HIGH),
        (
            "!!python/object/apply:functools.partial [!!python/name:torch.nn.modules.linear.Fake '']",
            Severity.HIGH,
        ),
    ],
)
def test_a_partial_tag_is_judged_by_the_function_it_wraps(partial: str, severity: Severity) -> None:
    ctx = scan_bytes(f"lr: 0.1\noptimizer: {partial}\n".encode(), "hparams.yaml")
    found = _found(ctx, "LW-MODEL-043")
    assert found and max(f.severity for f in found) >= severity, ctx.findings
