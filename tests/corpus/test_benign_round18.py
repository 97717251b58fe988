"""Round 18: real benign files that were not clean, and the neighbours of what was admitted.

A sweep made about 1,700 files with the real libraries and scanned them: every estimator of
``sklearn.utils.all_estimators()`` fitted on a small dataset (the meta-estimators, chains, multi-output and
cross-decomposition ones on data of their shape) and saved with joblib (compress 0 and 3) and pickle protocols
2-5; vectorizers fitted on 60,000-token random and hex vocabularies (TF-IDF word, n-gram and character, count,
hashing, dict), ColumnTransformer pipelines (pandas output, TargetEncoder), histogram gradient boosting with
categorical features, monotonic and interaction constraints, calibrated, stacked and voting classifiers,
FunctionTransformer with NumPy functions; Hugging Face ``Trainer`` checkpoints for every scheduler type and several
optimizers and ``TrainingArguments`` combinations (``training_args.bin``, ``optimizer.pt``, ``scheduler.pt``,
``rng_state.pth``, ``trainer_state.json``), a ``GradScaler`` state, every torch optimizer and LR scheduler saved
whole and as a state dict; accelerate ``save_state`` folders and PEFT adapters (LoRA, DoRA, IA3, AdaLoRA, prefix
and prompt tuning) in both serializations; torch modules saved whole (transformer, LSTM, conv stacks, losses),
parametrized, pruned, dynamically and statically quantized, ``torch.export`` programs, TorchScript and torch.fx;
``torch.distributed.checkpoint`` folders; Keras 3 ``.keras``/``.h5`` models; ONNX from ``torch.onnx.export``
(TorchScript and dynamo exporters, external data); GGUF files with the chat templates of seven model families; and
sentence-transformers ``save()`` folders of every module type (and sparse and cross encoders).

All were clean but two classes. First, a **histogram gradient boosting estimator that was never fitted** (the
``estimator`` of a ``GridSearchCV``, the unfitted template a ``StackingClassifier``/``StackingRegressor`` or a
``TransformedTargetRegressor`` keeps beside its fitted clones, or an unfitted model pickled on its own) was
``unverified`` ("predictors the scanner cannot check"): its state has no ``_predictors`` at all, which the check of
its categorical splits read as predictors it could not find. Such a state is now clean when every key of it is
known (no key dropped past the container bound, no key computed at load time that may be ``_predictors``):
scikit-learn's predict then raises before reading a split. A state with a computed key, or one too large to know
whole, stays unverified, and a second BUILD that drops ``_predictors`` over a checked state is still a HIGH finding
(an estimator's state is judged whole; no pickler writes two). Second, a ``torch.distributed.checkpoint`` folder
written through ZStandard had an unverified ``.metadata`` (see the section below).
"""

from __future__ import annotations

import functools
import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

sklearn = pytest.importorskip("sklearn")

_HGB = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting"


def _data() -> tuple[Any, Any, Any]:
    rs = np.random.RandomState(0)
    x = rs.randn(60, 4)
    return x, (x[:, 0] > 0).astype(int) + (x[:, 1] > 0), x[:, 0] * 2 + x[:, 2]


@functools.cache
def _unfitted_holders() -> dict[str, Any]:
    """Real scikit-learn objects that keep an unfitted histogram gradient boosting estimator (fitted once)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        StackingClassifier,
        StackingRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import GridSearchCV
    from threadpoolctl import threadpool_limits

    x, y, yr = _data()
    # one OpenMP thread: on a busy machine the threads of histogram gradient boosting wait on each other for seconds
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        return {
            "hgb_regressor_unfitted": HistGradientBoostingRegressor(),
            "hgb_classifier_unfitted": HistGradientBoostingClassifier(categorical_features=[3]),
            "grid_search_hgb": GridSearchCV(
                HistGradientBoostingClassifier(max_iter=3), {"max_depth": [2, 3]}, cv=2
            ).fit(x, y),
            "stacking_classifier_hgb": StackingClassifier(
                [("lr", LogisticRegression()), ("hgb", HistGradientBoostingClassifier(max_iter=3))], cv=2
            ).fit(x, y),
            "stacking_regressor_hgb": StackingRegressor(
                [("r", Ridge()), ("hgb", HistGradientBoostingRegressor(max_iter=3))], cv=2
            ).fit(x, yr),
            "target_transform_hgb": TransformedTargetRegressor(
                regressor=HistGradientBoostingRegressor(max_iter=3), func=np.log1p, inverse_func=np.expm1
            ).fit(x, np.abs(yr)),
        }


def _serialized(obj: Any) -> dict[str, bytes]:
    """``obj`` as pickle protocols 2-5 and joblib (plain and compress=3) write it."""
    import joblib

    out = {f"p{proto}.pkl": pickle.dumps(obj, protocol=proto) for proto in (2, 3, 4, 5)}
    for level in (0, 3):
        buf = io.BytesIO()
        joblib.dump(obj, buf, compress=level)
        out[f"c{level}.joblib"] = buf.getvalue()
    return out


_HOLDERS = (
    "grid_search_hgb",
    "hgb_classifier_unfitted",
    "hgb_regressor_unfitted",
    "stacking_classifier_hgb",
    "stacking_regressor_hgb",
    "target_transform_hgb",
)


@pytest.mark.parametrize("name", _HOLDERS)
def test_an_unfitted_histogram_gradient_boosting_estimator_is_clean(name: str, tmp_path: Path) -> None:
    """Each was unverified before the fix ("predictors the scanner cannot check"), in every serialization."""
    pytest.importorskip("joblib")
    obj = _unfitted_holders()[name]
    for suffix, data in _serialized(obj).items():
        path = tmp_path / f"{name}.{suffix}"
        path.write_bytes(data)
        (target,) = scan_paths([str(path)], jobs=1).targets
        assert target.verdict is Verdict.CLEAN, (suffix, target.reason, target.findings)
        assert not target.findings


def test_fitted_histogram_gradient_boosting_stays_checked() -> None:
    """The admitted shape is only a state without ``_predictors``: a fitted model's categorical splits are still
    checked against its bin mapper (a split on a feature the mapper lacks is HIGH)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    x, _, yr = _data()
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        model = HistGradientBoostingRegressor(max_iter=3).fit(x, yr)
    assert not analyze_pickle_bytes(pickle.dumps(model)).findings
    for predictors in model._predictors:
        for predictor in predictors:
            nodes = predictor.nodes.copy()
            inner = ~nodes["is_leaf"].astype(bool)
            nodes["feature_idx"][inner] = 1
            nodes["is_categorical"][inner] = 1
            nodes["bitset_idx"][inner] = 0
            predictor.nodes = nodes
            predictor.raw_left_cat_bitsets = np.zeros((1, 8), np.uint32)
            predictor.binned_left_cat_bitsets = np.zeros((1, 8), np.uint32)
    result = analyze_pickle_bytes(pickle.dumps(model, protocol=2))
    assert any(
        f.severity is Severity.HIGH and "no categorical feature" in f.message for f in result.findings
    ), result.findings


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _with_state_item(data: bytes, key: bytes, value: bytes) -> bytes:
    """A protocol-2 pickle of a top-level object (``... BUILD STOP``) with one more item in its BUILD state."""
    assert data.endswith(b"b.")
    return data[:-2] + key + value + b"sb."


def test_an_unfitted_state_with_a_computed_key_stays_unverified() -> None:
    """A key made at load time (here ``str('')``) may be ``_predictors``: the state is not known whole."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    data = pickle.dumps(HistGradientBoostingRegressor(), protocol=2)
    assert analyze_pickle_bytes(data).unverified is None
    computed = b"c__builtin__\nstr\n" + _u("") + b"\x85R"
    result = analyze_pickle_bytes(_with_state_item(data, computed, b"]"))
    assert "predictors the scanner cannot check" in (result.unverified or "")


def test_an_unfitted_state_too_large_to_know_whole_stays_unverified() -> None:
    """Past the container bound a mapping keeps only watched keys: ``_predictors`` may be among the dropped."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    data = pickle.dumps(HistGradientBoostingRegressor(), protocol=2)
    assert data.endswith(b"b.")
    filler = b"(" + b"".join(_u(f"k{i}") + b"N" for i in range(12_000)) + b"u"
    result = analyze_pickle_bytes(data[:-2] + filler + _u("_predictors") + b"]sb.")
    assert result.unverified or result.findings
    hidden = analyze_pickle_bytes(data[:-2] + filler + b"b.")
    assert "predictors the scanner cannot check" in (hidden.unverified or "")


def test_a_second_build_without_predictors_is_still_reported() -> None:
    """A fitted categorical model whose bin mapper a second BUILD replaces (a state with no ``_predictors``, the
    shape now admitted on its own) keeps the earlier check's predictors beside a mapper it never saw: HIGH."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    rs = np.random.RandomState(0)
    x = np.c_[rs.randint(0, 5, 200), rs.rand(200)]
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        model = HistGradientBoostingRegressor(max_iter=3, categorical_features=[0]).fit(x, x[:, 0])
    data = pickle.dumps(model, protocol=2)
    assert not analyze_pickle_bytes(data).findings
    second = data[:-1] + b"}" + _u("_bin_mapper") + b"Nsb."
    result = analyze_pickle_bytes(second)
    assert any(f.severity is Severity.HIGH and "a second time" in f.message for f in result.findings), (
        result.findings
    )


def bench_benign() -> dict[str, bytes]:
    """Benign files that were unverified before this round's fix and are clean after it."""
    out: dict[str, bytes] = {}
    for name, obj in sorted(_unfitted_holders().items()):
        data = _serialized(obj)
        out[f"r18_{name}.pkl"] = data["p4.pkl"]
        if name in ("grid_search_hgb", "stacking_regressor_hgb"):
            out[f"r18_{name}.joblib"] = data["c3.joblib"]
    return out


def test_bench_benign_is_clean(tmp_path: Path) -> None:
    files = bench_benign()
    assert 0 < len(files) <= 10
    assert sorted(_unfitted_holders()) == sorted(_HOLDERS)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    for target in scan_paths([str(tmp_path)], jobs=1).targets:
        assert target.verdict is Verdict.CLEAN, (target.path, target.reason)


# --- torch.distributed.checkpoint read through ZStandard -----------------------------------------------------------
#
# ``FileSystemWriter(_extensions=[ZStandard()])`` (torch 2.7+) compresses every item it writes and records
# ``transform_descriptors=['stream.zstd/1']`` in each storage entry; FileSystemReader decompresses the slice and
# hands the output to torch.load (weights_only=False for the non-tensor items). The .metadata of such a benign
# checkpoint was unverified ("read through stream transforms ..., which are not supported"); its slices are now
# decompressed and analysed, so a payload in one is a finding on the metadata too. Other transforms (an extension
# the loading program registers itself, another major version, descriptors that are not constant strings) stay
# unverified.


class _Marker:
    """A non-tensor state-dict value whose unpickling runs ``os.system`` (the checkpoint attack)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {self.marker}",))


def _zstd_checkpoint(folder: Path, state: dict[str, Any], layers: int = 1) -> None:
    dcp = pytest.importorskip("torch.distributed.checkpoint")
    extension = pytest.importorskip("torch.distributed.checkpoint._extension")
    pytest.importorskip("zstandard")
    writer = dcp.FileSystemWriter(str(folder), _extensions=[extension.ZStandard() for _ in range(layers)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, storage_writer=writer)


def _verdicts(folder: Path) -> dict[str, Any]:
    return {Path(t.path).name: t for t in scan_paths([str(folder)], jobs=1).targets}


@pytest.mark.parametrize("layers", [1, 2])
def test_a_zstd_distributed_checkpoint_is_clean(layers: int, tmp_path: Path) -> None:
    """Unverified before the fix (the .metadata's transforms); made by torch's own writer."""
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    state = {"model": model.state_dict(), "step": 3, "extra": {"name": "run", "lr": [0.1, 0.01]}}
    _zstd_checkpoint(tmp_path, state, layers)
    found = _verdicts(tmp_path)
    assert found[".metadata"].verdict is Verdict.CLEAN, found[".metadata"].reason
    assert all(t.verdict is Verdict.CLEAN for t in found.values()), {k: t.reason for k, t in found.items()}


def _rewrite_entries(folder: Path, change: Any) -> None:
    """Rewrite the storage entries of a checkpoint's .metadata with ``change(info) -> info`` (a benign pickler)."""
    metadata = folder / ".metadata"
    md = pickle.loads(metadata.read_bytes())
    md.storage_data = {k: change(v) for k, v in md.storage_data.items()}
    metadata.write_bytes(pickle.dumps(md))


def _critical_on_metadata(folder: Path) -> bool:
    target = _verdicts(folder)[".metadata"]
    return any(f.rule_id == "LW-MODEL-001" and f.severity is Severity.CRITICAL for f in target.findings)


def test_a_payload_in_a_zstd_checkpoint_item_is_reported_on_the_metadata(tmp_path: Path) -> None:
    """Before the fix the .metadata was unverified. torch 2.13's ``dcp.load`` runs the payload (confirmed in a
    child process with a marker file); the metadata is now LW-MODEL-001 critical, as the data file is."""
    torch = pytest.importorskip("torch")
    marker = tmp_path / "marker"
    ckpt = tmp_path / "ckpt"
    _zstd_checkpoint(ckpt, {"w": torch.ones(3), "extra": _Marker(str(marker))})
    assert _critical_on_metadata(ckpt)
    assert _verdicts(ckpt)["__0_0.distcp"].verdict is Verdict.FINDINGS
    import subprocess
    import sys

    code = (
        "import warnings, torch, torch.distributed.checkpoint as dcp\n"
        "warnings.simplefilter('ignore')\n"
        f"sd = {{'w': torch.zeros(3), 'extra': None}}\n"
        f"dcp.load(sd, storage_reader=dcp.FileSystemReader({str(ckpt)!r}))\n"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    assert marker.exists()


def test_a_zstd_slice_behind_junk_is_decompressed_where_the_entry_points(tmp_path: Path) -> None:
    """The data file begins with bytes that are no zstd frame, so read on its own it is not decompressed; the
    entry's offset points past them, where the reader decompresses. The metadata is critical."""
    torch = pytest.importorskip("torch")
    ckpt = tmp_path / "ckpt"
    _zstd_checkpoint(ckpt, {"w": torch.ones(3), "extra": _Marker(str(tmp_path / "marker"))})
    data = ckpt / "__0_0.distcp"
    data.write_bytes(b"\x00" * 16 + data.read_bytes())
    _rewrite_entries(
        ckpt,
        lambda info: type(info)(
            info.relative_path, info.offset + 16, info.length, info.transform_descriptors
        ),
    )
    assert _critical_on_metadata(ckpt)


@pytest.mark.parametrize(
    "descriptors",
    [
        ["stream.zstd/2"],
        ["custom.codec/1"],
        ["stream.zstd/1", 1],
        ["stream.zstd/1", "stream.gzip/1"],
        ["stream.zstd/1"] * 5,
    ],
)
def test_other_stream_transforms_stay_unverified(descriptors: list[str], tmp_path: Path) -> None:
    """A transform the default registry lacks is code the loading program registered (or the reader fails)."""
    torch = pytest.importorskip("torch")
    _zstd_checkpoint(tmp_path, {"w": torch.ones(3)})
    _rewrite_entries(
        tmp_path, lambda info: type(info)(info.relative_path, info.offset, info.length, descriptors)
    )
    target = _verdicts(tmp_path)[".metadata"]
    assert target.verdict is Verdict.UNVERIFIED
    assert "stream transforms" in (target.reason or "")
