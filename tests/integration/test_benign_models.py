"""No false positives on real benign files written by the real libraries (test-only extras), and on model
files
that ship inside installed PyPI packages."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>'"
    " + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if "
    "loop.index0 =="
    " 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if "
    "add_generation_prompt"
    " %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) "
    "%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif "
    "message['role']"
    " == 'assistant' %}{{ message['content'] + eos_token}}{% else "
    "%}{{ raise_exception('Only user and assistant"
    " roles are supported!') }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') "
    "}}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' "
    "%}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + "
    "message['content']"
    " | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}"
    "{% endif %}"
)
TOOLS = (
    "{%- set ns = namespace(found=false, last='') -%}{%- for message in messages -%}{%- if message.role == "
    "'system' -%}{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}{%- if tools is not none -%}"
    "{{- tools | tojson(indent=4) -}}{%- endif -%}{{- strftime_now('%d %b %Y') -}}{%- for m in messages -%}"
    "{%- if m.tool_calls is defined -%}{%- for tc in m.tool_calls -%}{{ tc.function.name }}"
    "{{ tc.function.arguments | tojson }}{%- endfor -%}{%- endif -%}{% generation %}{{ m['content'] }}"
    "{% endgeneration %}{%- endfor -%}"
)
TEMPLATES = {"chatml": CHATML, "llama3": LLAMA3, "mistral": MISTRAL, "gemma": GEMMA, "tools": TOOLS}


def assert_clean(results: list[TargetResult]) -> None:
    bad = [t for t in results if not t.passed(Severity.LOW)]
    assert not bad, "\n".join(
        f"{t.path}: {t.verdict} {t.reason} {[f.message for f in t.findings]}" for t in bad
    )


def scan_dir(d: Path) -> list[TargetResult]:
    return list(scan_paths([str(d)], jobs=1).targets)


def test_torch_checkpoints(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.BatchNorm1d(3))
    torch.save(model.state_dict(), tmp_path / "state.pt")
    torch.save(
        {
            "model": model.state_dict(),
            "epoch": 3,
            "opt": torch.optim.SGD(model.parameters(), 0.1).state_dict(),
        },
        tmp_path / "ckpt.pth",
    )
    torch.save(model.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(torch.arange(10, dtype=torch.bfloat16), tmp_path / "tensor.bin")
    results = scan_dir(tmp_path)
    assert len(results) == 4
    assert_clean(results)


def test_torch_full_pickled_module(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()), tmp_path / "full.pt")
    assert_clean(scan_dir(tmp_path))


def test_torchscript(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU()))
    torch.jit.save(scripted, tmp_path / "scripted.pt")
    traced = torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2))
    torch.jit.save(traced, tmp_path / "traced.pt")
    assert_clean(scan_dir(tmp_path))


def test_torch_training_objects_saved_whole(tmp_path: Path) -> None:
    """What training scripts torch.save besides weights: generators (random_split, samplers, RNG snapshots), a
    whole DataLoader, and an eager-mode model prepared for quantization (QuantStub/DeQuantStub, QuantWrapper)."""
    torch = pytest.importorskip("torch")
    from torch.utils import data

    dataset = data.TensorDataset(torch.randn(10, 3), torch.arange(10))
    gen = torch.Generator().manual_seed(1)
    torch.save(data.random_split(dataset, [7, 3], generator=gen), tmp_path / "split.pt")
    torch.save({"sampler": data.RandomSampler(dataset, generator=gen), "rng": gen}, tmp_path / "sampler.pt")
    torch.save(data.DataLoader(dataset, batch_size=2, shuffle=True), tmp_path / "loader.pt")
    torch.save(
        data.DataLoader(dataset, batch_size=2, collate_fn=data.default_convert), tmp_path / "loader2.pt"
    )

    opt = torch.optim.SGD(torch.nn.Linear(3, 3).parameters(), lr=0.1, momentum=0.9)
    for mode in ("triangular", "triangular2", "exp_range"):  # the scheduler keeps its scale function bound
        torch.save(
            torch.optim.lr_scheduler.CyclicLR(opt, 0.01, 0.1, mode=mode), tmp_path / f"cyclic_{mode}.pt"
        )

    quant = torch.ao.quantization
    stubbed = torch.nn.Sequential(quant.QuantStub(), torch.nn.Linear(3, 3), quant.DeQuantStub())
    torch.save(stubbed, tmp_path / "stubs.pt")
    torch.save(quant.QuantWrapper(torch.nn.Linear(3, 3)), tmp_path / "wrapper.pt")
    results = scan_dir(tmp_path)
    assert len(results) == 9
    assert_clean(results)


def test_scipy_objects_kept_with_models(tmp_path: Path) -> None:
    """Frozen multivariate distributions, gaussian_kde, interp1d (it keeps a bound evaluator), Rotation and an
    L-BFGS-B result with its inverse Hessian operator, as pickle writes them."""
    pytest.importorskip("scipy")
    import pickle

    import numpy as np
    from scipy import interpolate, optimize, stats
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    xs = np.linspace(0, 1, 10)
    objects = {
        "mvn": stats.multivariate_normal([0.0, 0.0], np.eye(2)),
        "dirichlet": stats.dirichlet([1.0, 2.0]),
        "kde": stats.gaussian_kde(rng.normal(size=30)),
        "linear": interpolate.interp1d(xs, xs**2),
        "nearest": interpolate.interp1d(xs, xs**2, kind="nearest"),
        "cubic": interpolate.interp1d(xs, xs**2, kind="cubic"),
        "rotation": Rotation.from_euler("xyz", [10, 20, 30], degrees=True),
        "lbfgsb": optimize.minimize(lambda v: float((v**2).sum()), np.ones(2), method="L-BFGS-B"),
    }
    for name, obj in objects.items():
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(obj, protocol=4))
    results = scan_dir(tmp_path)
    assert len(results) == len(objects)
    assert_clean(results)


def test_transformers_quantization_config_saved_whole(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
    torch.save({"quantization_config": config, "step": 3}, tmp_path / "quant.pt")
    assert_clean(scan_dir(tmp_path))


def test_sklearn_joblib(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    import joblib
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = np.random.default_rng(0).random((40, 3)), np.arange(40) % 2
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(x, y)
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    joblib.dump(forest, tmp_path / "forest.joblib")
    for comp in ("zlib", "gzip", "bz2", "xz", "lzma"):
        joblib.dump(pipe, tmp_path / f"pipe.{comp}.joblib", compress=(comp, 3))
    import pickle

    (tmp_path / "pipe.pkl").write_bytes(pickle.dumps(pipe, protocol=5))
    assert_clean(scan_dir(tmp_path))


def test_sklearn_models_with_helper_objects(tmp_path: Path) -> None:
    """HistGradientBoosting with categorical features keeps FunctionTransformer(partial(check_array, ...)) in
    its preprocessor; scipy.optimize results travel with fitted models (statsmodels, user code)."""
    pytest.importorskip("sklearn")
    import pickle

    import joblib
    import numpy as np
    from scipy.optimize import minimize
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    x = np.c_[rng.integers(0, 3, 100), rng.normal(size=(100, 2))]
    reg = HistGradientBoostingRegressor(max_iter=3, categorical_features=[0]).fit(x, x[:, 1])
    clf = HistGradientBoostingClassifier(max_iter=3, categorical_features=[True, False, False])
    clf.fit(x, x[:, 1] > 0)
    (tmp_path / "hgb.pkl").write_bytes(pickle.dumps(reg, protocol=5))
    joblib.dump(clf, tmp_path / "hgb.joblib")
    result = minimize(lambda v: float((v**2).sum()), np.ones(2), method="BFGS")
    result.pop("hess_inv", None)
    (tmp_path / "optres.pkl").write_bytes(pickle.dumps({"fit": result}, protocol=4))
    results = scan_dir(tmp_path)
    assert len(results) == 3
    assert_clean(results)


def test_pandas_data(tmp_path: Path) -> None:
    """DataFrames, Series, indexes, extension arrays and scalars as pandas pickles them (a model's training
    frame or feature names often travel with it), every pickle protocol, plain and through joblib."""
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    import pickle

    import joblib
    import numpy as np

    frame = pd.DataFrame(
        {
            "int": np.arange(5),
            "str": list("abcde"),
            "utc": pd.date_range("2020-01-01", periods=5, tz="UTC"),
            "berlin": pd.date_range("2020-01-01", periods=5, tz="Europe/Berlin"),
            "cat": pd.Categorical(list("xyxyx")),
            "nullable": pd.array([1, None, 3, 4, 5], dtype="Int64"),
            "bool": pd.array([True, None, False, True, True], dtype="boolean"),
            "float": pd.array([1.0, None, 2, 3, 4], dtype="Float64"),
            "delta": pd.timedelta_range("1D", periods=5),
            "period": pd.period_range("2020-01", periods=5, freq="M"),
            "interval": pd.arrays.IntervalArray.from_breaks(range(6)),
            "object": pd.Series([1, "a", 2.5, None, (1, 2)], dtype=object),
        }
    )
    objects = {
        "frame": frame,
        "indexed": frame.set_index(["str", "int"]),
        "series": pd.Series(["x", "y"], name="s", dtype="string"),
        "sparse": pd.arrays.SparseArray([0, 0, 1, 0]),
        "scalars": [
            pd.Timestamp("2020-01-01"),
            pd.Timestamp("2020-01-01", tz="America/New_York"),
            pd.Timedelta("1D"),
            pd.NaT,
            pd.NA,
            pd.Period("2020-01", "M"),
        ],
        "zoned_index": pd.DatetimeIndex(["2021-03-28 00:30", "2021-03-28 03:30"], tz="Europe/Berlin"),
        "indexes": [pd.RangeIndex(5), pd.CategoricalIndex(["a", "b"]), pd.interval_range(0, 3)],
        "offset": pd.offsets.Day(2),
        # DateOffset with relative fields keeps a dateutil relativedelta
        "date_offset": [
            pd.DateOffset(months=1, days=2),
            pd.date_range("2020", periods=3, freq=pd.DateOffset(months=2)),
        ],
        # pyarrow-backed columns whose type pickles as its factory (timestamp, decimal, list, struct, dictionary)
        "arrow": pd.DataFrame(
            {
                "ts": pd.array(pd.date_range("2021", periods=2), dtype="timestamp[ns][pyarrow]"),
                "tsz": pd.array(
                    pd.date_range("2021", periods=2, tz="UTC"), dtype="timestamp[us, tz=UTC][pyarrow]"
                ),
                "dec": pd.array([1, 2], dtype=pd.ArrowDtype(pa.decimal128(5, 2))),
                "list": pd.array([[1], [2, 3]], dtype=pd.ArrowDtype(pa.list_(pa.int64()))),
                "struct": pd.array([{"a": 1}, {"a": 2}], dtype=pd.ArrowDtype(pa.struct([("a", pa.int8())]))),
            }
        ),
    }
    for name, obj in objects.items():
        for proto in (0, 2, 4, 5):
            (tmp_path / f"{name}.p{proto}.pkl").write_bytes(pickle.dumps(obj, protocol=proto))
        joblib.dump(obj, tmp_path / f"{name}.joblib")
    pd.to_pickle(frame, tmp_path / "frame.pd.pkl")
    assert_clean(scan_dir(tmp_path))


def test_numpy(tmp_path: Path) -> None:
    import numpy as np

    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "s.npy", np.array([(1, 2.0)], dtype=[("x", "<i4"), ("y", "<f8")]))
    np.savez(tmp_path / "z.npz", a=a, b=a.astype(np.int64))
    np.savez_compressed(tmp_path / "zc.npz", a=a)
    import pickle

    rec = np.rec.array([(1, 2.0)], dtype=[("x", "i4"), ("y", "f8")])
    subclasses = {
        "rec": rec,
        "record": rec[0],
        "chararray": np.char.array(["a", "bc"]),
        "matrix": np.matrix([[1, 2]]),
        "masked": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0]),
        "datetime64": np.array(["2020-01-01"], dtype="datetime64[D]"),
    }
    for name, obj in subclasses.items():
        for proto in (2, 5):
            (tmp_path / f"{name}.p{proto}.pkl").write_bytes(pickle.dumps(obj, protocol=proto))
    assert_clean(scan_dir(tmp_path))


def test_safetensors(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    import numpy as np
    from safetensors.numpy import save_file

    save_file(
        {"a": np.zeros((3, 4), np.float32), "e": np.zeros((0,), np.float16), "b": np.ones(5, np.int8)},
        str(tmp_path / "m.safetensors"),
        metadata={"format": "np"},
    )
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as save_torch

    save_torch({"w": torch.randn(4, 4, dtype=torch.bfloat16)}, str(tmp_path / "t.safetensors"))
    assert_clean(scan_dir(tmp_path))


def test_onnx(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    node = helper.make_node("MatMul", ["X", "W"], ["Y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
        [w],
    )
    model = helper.make_model(graph, producer_name="loopwarden-test")
    onnx.save_model(model, str(tmp_path / "inline.onnx"))
    ext = tmp_path / "ext"
    ext.mkdir()
    onnx.save_model(
        model, str(ext / "model.onnx"), save_as_external_data=True, location="model.data", size_threshold=0
    )
    results = scan_dir(tmp_path)
    assert {Path(t.path).name for t in results} == {"inline.onnx", "model.onnx", "model.data"}
    assert_clean(results)


def test_gguf_with_ordinary_templates(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    import numpy as np

    for name, tmpl in TEMPLATES.items():
        w = gguf.GGUFWriter(str(tmp_path / f"{name}.gguf"), "llama")
        w.add_chat_template(tmpl)
        w.add_tokenizer_model("llama")
        w.add_token_list([f"tok{i}" for i in range(100)])
        w.add_tensor("w", np.zeros((8, 8), np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    assert_clean(scan_dir(tmp_path))


def test_gguf_with_a_list_of_named_templates(tmp_path: Path) -> None:
    """gguf-py's own form for several templates: the names under tokenizer.chat_templates (an array of strings),
    each template under tokenizer.chat_template.<name>."""
    gguf = pytest.importorskip("gguf")
    import numpy as np

    w = gguf.GGUFWriter(str(tmp_path / "named.gguf"), "llama")
    w.add_chat_template([{"name": "default", "template": CHATML}, {"name": "tool_use", "template": TOOLS}])
    w.add_tensor("w", np.zeros(4, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert_clean(scan_dir(tmp_path))


def test_text_named_as_text_that_starts_like_a_pickle(tmp_path: Path) -> None:
    """'t' (TUPLE), 'a' (APPEND) ... are pickle opcodes: plain text is not reported as a disguised pickle."""
    (tmp_path / "requirements.txt").write_text("torch==2.4\ntransformers>=4.40\n")
    (tmp_path / "notes.txt").write_text("a model card\nsee README\n")
    # the search for hidden pickles reads "torch\nsentencepiece" as h.sentencepiece and "cat\ndeer" as at.deer
    (tmp_path / "deps.txt").write_text("transformers\ntorch\nsentencepiece\n")
    (tmp_path / "classes.txt").write_text(
        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
    )
    assert_clean(scan_dir(tmp_path))


def test_tokenizer_config_templates(tmp_path: Path) -> None:
    import json

    for name, tmpl in TEMPLATES.items():
        (tmp_path / f"{name}_tokenizer_config.json").write_text(json.dumps({"chat_template": tmpl}))
    assert_clean(scan_dir(tmp_path))


def test_keras_without_lambda(tmp_path: Path) -> None:
    """Made by the real keras (torch backend) in a subprocess, so the backend choice does not leak."""
    import importlib.util

    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
        pytest.skip("keras with the torch backend is not installed")
    code = textwrap.dedent(
        """
        import os, sys
        os.environ["KERAS_BACKEND"] = "torch"
        import keras
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
        keras.layers.Dense(1)])
        m.save(os.path.join(sys.argv[1], "m.keras"))
        m.save(os.path.join(sys.argv[1], "m.h5"))
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0:
        pytest.skip(f"keras cannot save here: {proc.stderr[-300:]}")
    results = scan_dir(tmp_path)
    assert {Path(t.path).name for t in results} == {"m.keras", "m.h5"}
    assert_clean(results)


_MODEL_SUFFIXES = (".pt", ".pkl", ".joblib", ".npy", ".npz", ".safetensors", ".gguf", ".h5", ".keras")


def _package_model_files() -> list[str]:
    out = []
    for root in site.getsitepackages():
        for dirpath, _, files in os.walk(root):
            out.extend(
                os.path.join(dirpath, f) for f in files if f.endswith(_MODEL_SUFFIXES) or f == "model.onnx"
            )
    return sorted(out)


# Files in installed packages that the pickle allow-list (owned by the pickle analysis, LW-MODEL-001..019)
# still
# flags. They may only be flagged by pickle rules: a container-level finding on them fails this test.
_PICKLE_ALLOWLIST_GAPS = {
    # joblib < 0.10 pickles reference NDArrayWrapper, which makes joblib np.load a side file by name
    "joblib/test/data/joblib_0.9.2_pickle_": "NDArrayWrapper classified as deserializer re-entry",
    # numpy's own Python 2 object-array fixture: numpy.core._internal._reconstruct classified as code
    # execution
    "numpy/lib/tests/data/py2-np0-objarr.npy": "numpy.core._internal._reconstruct not allow-listed",
}


def _pickle_rule(rule_id: str) -> bool:
    return int(rule_id.rsplit("-", 1)[1]) < 20 or rule_id == "LW-MODEL-041"


def test_model_files_shipped_in_pypi_packages() -> None:
    files = _package_model_files()
    if not files:
        pytest.skip("no model files in installed packages")
    results = list(scan_paths(files, jobs=2).targets)
    bad = []
    for t in results:
        if t.passed(Severity.LOW):
            continue
        gap = any(k in t.path for k in _PICKLE_ALLOWLIST_GAPS)
        if gap and t.verdict is Verdict.FINDINGS and all(_pickle_rule(f.rule_id) for f in t.findings):
            continue
        bad.append(t)
    assert not bad, "\n".join(
        f"{t.path}: {t.verdict} {t.reason} {[f.message for f in t.findings]}" for t in bad
    )
    assert sum(1 for t in results if t.verdict is Verdict.CLEAN) > 100


def test_pickles_kept_as_data_by_real_libraries(tmp_path: Path) -> None:
    """LW-MODEL-019 looks into string and bytes constants that are pickles: what real code keeps that way (a
    joblib dump of a model as bytes, plain or compressed; pickle.dumps of a tensor, whose storage is a legacy
    torch.save; base64/hex/zlib of a pipeline's pickle) reaches only allowed names and stays clean."""
    torch = pytest.importorskip("torch")
    joblib = pytest.importorskip("joblib")
    import base64
    import gzip
    import io
    import pickle
    import zlib

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    x = np.random.default_rng(0).random((30, 3))
    pipe = make_pipeline(FunctionTransformer(np.log1p), StandardScaler(), LogisticRegression())
    pipe.fit(x, (x[:, 0] > 0.5).astype(int))

    def dumped(obj: object, **kw: object) -> bytes:
        buf = io.BytesIO()
        joblib.dump(obj, buf, **kw)
        return buf.getvalue()

    legacy = io.BytesIO()
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    state = {
        "joblib": dumped(pipe),
        "joblib_zlib": dumped(pipe, compress=3),
        "joblib_gzip": dumped(pipe, compress=("gzip", 3)),
        "tensor": pickle.dumps(torch.arange(6.0)),
        "module": pickle.dumps(torch.nn.Linear(2, 2)),
        "legacy": legacy.getvalue(),
        "b64": base64.b64encode(pickle.dumps(pipe)).decode(),
        "hex": pickle.dumps(np.arange(4.0)).hex(),
        "zlib": zlib.compress(pickle.dumps(np.random.get_state())),
        "gzip_json": base64.b64encode(gzip.compress(b'{"a": [1, 2, 3]}' * 8)).decode(),
        "proto0": pickle.dumps({"a": [1, 2]}, protocol=0).decode("latin-1"),
    }
    torch.save(state, tmp_path / "ckpt.pt")
    with open(tmp_path / "state.pkl", "wb") as f:
        pickle.dump(state, f)
    joblib.dump(state, tmp_path / "state.joblib")
    assert_clean(scan_dir(tmp_path))


def test_templates_of_other_tools_in_a_model_repository(tmp_path: Path) -> None:
    """LW-MODEL-040 judges Jinja markup in any JSON/YAML string and in .jinja2/.template/.tmpl files: the
    configs of training, evaluation, serving, CI, provisioning and documentation tools that sit in model
    repositories render their own templates and stay clean."""
    import json

    import yaml

    (tmp_path / "axolotl.yaml").write_text(
        yaml.safe_dump({"base_model": "m", "chat_template": "jinja", "chat_template_jinja": TOOLS})
    )
    (tmp_path / "vllm.yaml").write_text(yaml.safe_dump({"model": "m", "chat-template": LLAMA3}))
    (tmp_path / "generation_config.json").write_text(
        json.dumps({"do_sample": True, "prompt_template": MISTRAL, "system_prompt": "You are {{ name }}."})
    )
    (tmp_path / "lm_eval_task.yaml").write_text(
        "task: arc_x\noutput_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        'doc_to_target: "{{choices.label.index(answerKey)}}"\n'
        'doc_to_choice: "{{choices.text}}"\n'
        "doc_to_text2: \"{% if context %}{{context.strip()}}\\n\\n{% endif %}{{question.split('\\n')[0]}}\"\n"
        "doc_to_text3: \"{{'{:.1f}'.format(score)}} {{ passage|replace('\\n', ' ') }}\"\n"
        "process_results: !function utils.process_results\n"
    )
    (tmp_path / "playbook.yml").write_text(
        "- hosts: gpu\n  vars:\n"
        "    token: \"{{ lookup('env', 'HF_TOKEN') }}\"\n"
        "    ip: \"{{ hostvars[inventory_hostname]['ansible_default_ipv4']['address'] }}\"\n"
        "  tasks:\n    - ansible.builtin.debug:\n"
        "        msg: \"{{ groups['gpu'] | length }} {{ result.stdout_lines | join(',') }}\"\n"
    )
    (tmp_path / "ci.yml").write_text(
        "jobs:\n  t:\n    runs-on: ${{ matrix.os }}\n    steps:\n      - run: echo hi\n"
        "        env:\n          TOKEN: ${{ secrets.HF_TOKEN }}\n"
        "          KEY: ${{ runner.os }}-${{ hashFiles('**/requirements.txt') }}\n"
        "          M: ${{ toJSON(matrix) }}\n"
    )
    (tmp_path / "copier.yml").write_text(
        '_tasks:\n  - "{{ _copier_python }} -m pip install -e ."\n'
        "package_name:\n  default: \"{{ project_name | lower | replace('-', '_') }}\"\n"
    )
    (tmp_path / "mkdocs.yml").write_text(
        'site_name: Model docs\ncopyright: "{{ config.site_author }}"\nextra:\n  v: "{{ config.extra.version }}"\n'
    )
    (tmp_path / "chat.jinja2").write_text(
        "system:\nYou answer questions about {{ product }}.\n{% for item in chat_history %}\nuser:\n"
        "{{ item.inputs.question }}\nassistant:\n{{ item.outputs.answer }}\n{% endfor %}\nuser:\n{{ question }}\n"
    )
    (tmp_path / "serve.yaml.template").write_text(
        "model: {{ model_name }}\ntensor_parallel_size: {{ tp | default(1) }}\n"
        "{% if quantization %}quantization: {{ quantization }}{% endif %}\n"
    )
    (tmp_path / "changelog.tmpl").write_text("{{ range .Commits }}- {{ .Message }}\n{{ end }}")
    results = scan_dir(tmp_path)
    assert len(results) == 11
    assert_clean(results)
