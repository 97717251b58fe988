"""Round 9 of the internal red team: Keras configs, ONNX external data and safetensors headers.

Each case is built as bytes here and scanned. Where cheap, the real loader runs on the case in a subprocess, with a
harmless effect only (a marker file in a temporary folder): Keras 3.15 with the torch backend.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import struct
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


# Keras 3's Orbax checkpoints keep the config as a JSON string ({"config": "<JSON text>"}), and load_model hands that
# string to the same _model_from_config (keras.src.saving.saving_api, read for 3.15.1; orbax is not installed here
# to run it): an array there is built item by item as well. Only a string holding an object was analysed.


def test_keras_orbax_config_string_holding_an_array(tmp_path: Path) -> None:
    doc = {"config": json.dumps([_sequential(_wrapper())])}
    res = scan_files(tmp_path, {"ckpt/1/model_config/data.json": json.dumps(doc).encode()})
    assert_caught(res, "LW-MODEL-033")


def test_config_string_holding_an_array_of_data_stays_clean(tmp_path: Path) -> None:
    doc = {"config": json.dumps([{"module": "torch.nn", "name": "x"}, 1, "a"])}
    res = scan_files(tmp_path, {"settings.json": json.dumps(doc).encode()})
    assert res[0].verdict is Verdict.CLEAN, res[0]


# ----------------------------------------- safetensors: headers the Rust parser rejects and json.loads accepts


def _st(header: str, data: bytes) -> bytes:
    raw = header.encode()
    return struct.pack("<Q", len(raw)) + raw + data


_REJECTED_BY_RUST = {
    # JSON true is no usize for serde; Python's bool is an int
    "bool-dimension": ('{"a":{"dtype":"F32","shape":[true,2],"data_offsets":[0,8]}}', b"\0" * 8),
    "bool-offset": ('{"a":{"dtype":"U8","shape":[1],"data_offsets":[false,true]}}', b"\0"),
    # a lone surrogate escape: serde_json refuses it, json.loads keeps it in the key
    "lone-surrogate-key": ('{"\\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
    "lone-surrogate-metadata": (
        '{"__metadata__":{"k":"\\udc00"},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
        b"\0",
    ),
    # a dimension past usize (or int64, where torch and NumPy shape the tensor): no bytes, so the count matched
    "dimension-past-int64": (
        '{"a":{"dtype":"F32","shape":[18446744073709551615,0],"data_offsets":[0,0]}}',
        b"",
    ),
    "dimension-past-usize": (
        '{"a":{"dtype":"F32","shape":[18446744073709551616,0],"data_offsets":[0,0]}}',
        b"",
    ),
    # the element count overflows as Rust multiplies it out, though a later zero makes Python's product 0
    "count-overflow": ('{"a":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}}', b""),
}


@pytest.mark.parametrize("case", sorted(_REJECTED_BY_RUST))
def test_safetensors_header_the_rust_parser_rejects(tmp_path: Path, case: str) -> None:
    header, data = _REJECTED_BY_RUST[case]
    res = scan_files(tmp_path, {"model.safetensors": _st(header, data)})
    assert res[0].verdict is not Verdict.CLEAN, res[0]
    assert "LW-MODEL-037" in {f.rule_id for f in res[0].findings}, res[0].findings


def test_safetensors_rust_parser_rejects_those_headers(tmp_path: Path) -> None:
    """The real parser: safetensors' safe_open (or torch, for a dimension past int64) fails on each case."""
    pytest.importorskip("safetensors")
    pytest.importorskip("torch")
    from safetensors.torch import load_file

    for case, (header, data) in _REJECTED_BY_RUST.items():
        path = tmp_path / f"{case}.safetensors"
        path.write_bytes(_st(header, data))
        with pytest.raises(Exception):  # noqa: B017 - SafetensorError, TypeError or ValueError by case
            load_file(str(path))


def test_safetensors_edge_headers_the_parser_accepts_stay_clean(tmp_path: Path) -> None:
    """Benign counterparts: zero-sized tensors, a null __metadata__, trailing spaces padding the header, an
    escaped key that is a proper surrogate pair, and a file saved by the library itself."""
    files = {
        "zero.safetensors": _st(
            '{"a":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
            b"\0",
        ),
        "null.safetensors": _st(
            '{"__metadata__":null,"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8
        ),
        "pad.safetensors": _st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}    ', b"\0" * 8),
        "pair.safetensors": _st('{"\\ud83d\\ude00":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0"),
    }
    try:
        import numpy as np
        from safetensors.numpy import save

        files["saved.safetensors"] = save(
            {"w": np.zeros((2, 3), dtype=np.float32), "e": np.zeros((0,), np.int64)}
        )
    except ImportError:
        pass
    res = scan_files(tmp_path, files)
    assert all(r.verdict is Verdict.CLEAN for r in res), res


def test_safetensors_fnuz_float8_saved_by_torch_stays_clean(tmp_path: Path) -> None:
    """safetensors 0.8 writes torch.float8_e4m3fnuz and float8_e5m2fnuz as F8_E4M3FNUZ and F8_E5M2FNUZ (and
    reads them back); both were an unknown dtype (LW-MODEL-037), a false alarm."""
    header = (
        '{"a":{"dtype":"F8_E4M3FNUZ","shape":[4],"data_offsets":[0,4]},'
        '"b":{"dtype":"F8_E5M2FNUZ","shape":[3],"data_offsets":[4,7]}}'
    )
    files = {"hand.safetensors": _st(header, b"\0" * 7)}
    try:
        import torch
        from safetensors.torch import save

        tensors = {
            "a": torch.zeros(4, dtype=torch.float8_e4m3fnuz),
            "b": torch.zeros(3, dtype=torch.float8_e5m2fnuz),
        }
        files["saved.safetensors"] = save(tensors)
    except (ImportError, AttributeError):
        pass
    res = scan_files(tmp_path, files)
    assert all(r.verdict is Verdict.CLEAN for r in res), res
