"""Round 9 of the internal red team: Keras configs, ONNX external data and safetensors headers.

Each case is built as bytes here and scanned. Where cheap, the real loader runs on the case in a subprocess, with a
harmless effect only (a marker file in a temporary folder): Keras 3.15 with the torch backend.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.domain import Verdict

# --------------------------------------------- Keras: a config.json that is no model at its top level still builds

# keras.saving.load_model deserializes config.json whatever its top level is: a dict without "class_name" is
# rebuilt value by value, a list item by item, and every {"class_name", "config"} object in either is built before
# the result turns out to be no model. Only documents with a top-level "class_name" (or "keras_version",
# "model_config") were walked as Keras configs, so a TorchModuleWrapper (its from_config torch.loads the pickle in
# its config under safe_mode=False) one level down was clean. Checked with Keras 3.15.1: the pickle ran.


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.path, "w"))  # a harmless effect: an empty marker file


def _wrapper(marker: str = "marker") -> dict[str, object]:
    payload = base64.b64encode(pickle.dumps(_Touch(marker), protocol=2)).decode()
    return {
        "module": "keras.layers",
        "class_name": "TorchModuleWrapper",
        "config": {"module": payload, "name": "t"},
    }


def _sequential(*layers: dict[str, object]) -> dict[str, object]:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": list(layers)}}


def _keras(config: object) -> bytes:
    import _container_payloads as cp

    return cp.zip_of(
        {
            "metadata.json": json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01"}).encode(),
            "config.json": json.dumps(config).encode(),
            "model.weights.h5": b"",
        }
    )


_NO_MODEL_AT_THE_TOP = {
    "dict-without-class-name": lambda w: {"layers": [w]},
    "list": lambda w: [w],
    "nested-list": lambda w: [[{"anything": w}]],
    # skops' and fiddle's markers made the document theirs only: the Keras walk was skipped
    "skops-markers": lambda w: {**_sequential(w), "__loader__": "CachedNode", "protocol": 2},
    "fiddle-markers": lambda w: {
        **_sequential(w),
        "root": {"type": "ref", "key": "x"},
        "objects": {},
        "refcounts": {},
    },
    "fiddle-markers-no-class-name": lambda w: {"root": {}, "objects": {"0": w}, "refcounts": {}},
}


@pytest.mark.parametrize("shape", sorted(_NO_MODEL_AT_THE_TOP))
def test_keras_config_json_built_whatever_its_top_level(tmp_path: Path, shape: str) -> None:
    config = _NO_MODEL_AT_THE_TOP[shape](_wrapper())
    res = scan_files(tmp_path, {"model.keras": _keras(config)})
    assert_caught(res, "LW-MODEL-033")


@pytest.mark.parametrize("shape", ["dict-without-class-name", "list", "fiddle-markers"])
def test_keras_config_json_in_a_model_folder_whatever_its_top_level(tmp_path: Path, shape: str) -> None:
    """keras.saving.load_model(folder) reads the folder's config.json the same way."""
    config = _NO_MODEL_AT_THE_TOP[shape](_wrapper())
    res = scan_files(tmp_path, {"model/config.json": json.dumps(config).encode()})
    assert_caught(res, "LW-MODEL-033")


def test_keras_loader_builds_the_objects_of_such_configs(tmp_path: Path) -> None:
    """The real loader: Keras 3.15 (torch backend) unpickles the wrapper's module for each shape."""
    import importlib.util

    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
        pytest.skip(
            "keras and torch are needed to run the loader"
        )  # imported in the subprocess only (torch backend)
    shapes = ["dict-without-class-name", "list", "skops-markers", "fiddle-markers"]
    for shape in shapes:
        marker = str(tmp_path / f"{shape}.marker")
        (tmp_path / f"{shape}.keras").write_bytes(_keras(_NO_MODEL_AT_THE_TOP[shape](_wrapper(marker))))
    code = (
        "import sys, keras\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        keras.saving.load_model(p, safe_mode=False)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    paths = [str(tmp_path / f"{s}.keras") for s in shapes]
    subprocess.run(
        [sys.executable, "-c", code, *paths], env=env, capture_output=True, timeout=300, check=False
    )
    assert sorted(p.name for p in tmp_path.glob("*.marker")) == sorted(f"{s}.marker" for s in shapes)


def test_json_documents_that_are_no_keras_config_stay_clean(tmp_path: Path) -> None:
    """Benign counterparts: a transformers config.json, a JSON array of records, a fiddle document and a skops
    schema, none holding a Keras object; and a Keras config.json of the usual shape."""
    files = {
        "hf/config.json": json.dumps(
            {"architectures": ["BertModel"], "model_type": "bert", "quantization_config": {"module": "x"}}
        ).encode(),
        "data/config.json": json.dumps([{"name": "a", "module": "torch.nn"}, {"config": {"x": 1}}]).encode(),
        "nemo/io.json": json.dumps(
            {
                "root": {"type": "ref", "key": "a"},
                "objects": {"a": {"type": "pyref", "module": "torch", "name": "float32"}},
                "refcounts": {"a": 1},
            }
        ).encode(),
        "keras/config.json": json.dumps(
            _sequential(
                {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2}}
            )
        ).encode(),
    }
    res = scan_files(tmp_path, files)
    assert all(r.verdict is Verdict.CLEAN for r in res), res


def test_keras_records_not_named_config_json_are_judged_by_their_keys(tmp_path: Path) -> None:
    """Only config.json is built whatever its shape: another JSON array of {"class_name", "config"} records is
    data (no loader builds it) and stays clean."""
    records = [{"class_name": "x", "config": {"module": "torch.nn"}}]
    res = scan_files(tmp_path, {"records.json": json.dumps(records).encode()})
    assert res[0].verdict is Verdict.CLEAN, res[0]
