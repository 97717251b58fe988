"""Round 17 of the internal red team: the non-pickle formats and containers.

Each case is built here and only scanned; where the real loader is installed it is run on the case to show what
it does with it (nothing is rendered outside jinja2's sandbox here, and no file outside the test folder is read).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

_WALK = "{{ ''.__class__.__mro__[1].__subclasses__()|length }}"


def _scan(path: Path) -> TargetResult:
    return next(iter(scan_paths([str(path)], jobs=1).targets))


def _gguf(path: Path, architecture: str, template: str, name: str = "x") -> Path:
    """A small GGUF with a GPT-2 style vocabulary (enough for transformers' GGUF tokenizer converters) and a chat
    template."""
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    w = gguf.GGUFWriter(str(path), architecture)
    w.add_name(name)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *(chr(c) for c in range(97, 123)), "ab", "cd"]
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([3, 3, 3] + [1] * (len(tokens) - 3))
    w.add_token_merges(["a b", "c d"])
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    w.add_chat_template(template)
    w.add_tensor("token_embd.weight", np.zeros((len(tokens), 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


# ------------------------------------------------------- GGUF: the architecture name rewritten into the template

# transformers' load_gguf_checkpoint renames an architecture that contains "llama" (to "mistral" when general.name
# says so), "t5", "qwen2moe", "qwen3moe", "gpt-oss" or "minimax-m2", and then rewrites every metadata string with
# str.replace(architecture, renamed): the chat template it hands on is not the stored text. transformers 4.x
# tokenizers (AutoTokenizer.from_pretrained(folder, gguf_file=...), confirmed with 4.57.1) take that template, so
# an architecture that opens a comment ("{#qwen3moe") hides a template that the rewrite brings back: the stored
# text renders "hello", the rewritten one walks to object.__subclasses__() (3504 classes under a plain
# jinja2.Environment; transformers' sandbox stops it with a SecurityError). The stored template was clean.
_RENAMED = [
    ("{#qwen3moe", "x"),
    ("{#qwen2moe", "x"),
    ("{#t5", "x"),
    ("{#t5", "umt5-small"),
    ("{#llama", "mistral"),
    ("{#gpt-oss", "x"),
    ("{#minimax-m2", "x"),
]


@pytest.mark.parametrize(("architecture", "name"), _RENAMED, ids=[f"{a[2:]}-{n}" for a, n in _RENAMED])
def test_gguf_template_hidden_behind_the_architecture_rename(
    tmp_path: Path, architecture: str, name: str
) -> None:
    template = architecture + _WALK + "#}hello"
    res = _scan(_gguf(tmp_path / "model.gguf", architecture, template, name))
    assert res.verdict is not Verdict.CLEAN, res
    assert res.max_severity() is Severity.CRITICAL, res.findings
    assert any(f.rule_id == "LW-MODEL-040" and "rewrites" in f.message for f in res.findings), res.findings


def test_gguf_architecture_rename_reaches_the_template_transformers_returns(tmp_path: Path) -> None:
    """The rewrite itself, by the installed transformers (no template is rendered)."""
    pytest.importorskip("torch")
    utils = pytest.importorskip("transformers.modeling_gguf_pytorch_utils")
    path = _gguf(tmp_path / "model.gguf", "{#qwen3moe", "{#qwen3moe" + _WALK + "#}hello")
    loaded = utils.load_gguf_checkpoint(str(path), return_tensors=False)
    assert loaded["tokenizer_config"]["chat_template"] == "qwen3_moe" + _WALK + "#}hello"


@pytest.mark.parametrize("architecture", ["llama", "qwen3moe", "t5"])
def test_gguf_template_naming_its_architecture_stays_clean(tmp_path: Path, architecture: str) -> None:
    """A benign template that spells the architecture (rewritten or not) is no finding."""
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }} ("
        + architecture
        + ")\n{{ m['content'] }}<|im_end|>"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    res = _scan(_gguf(tmp_path / "model.gguf", architecture, template, "mistral"))
    assert res.verdict is Verdict.CLEAN, res.findings


# ------------------------------------------------------------- ONNX: onnxruntime's in-memory external-data marker

# onnxruntime reads a tensor whose external_data location is "*/_ORT_MEM_ADDR_/*" from the process memory at the
# address its "offset" gives (length bytes). Confirmed with onnxruntime 1.20.1: a model whose initializer names
# the address of a buffer in the loading process returns that buffer's bytes as its output (an arbitrary memory
# read); an unmapped address crashes the process. onnxruntime 1.32 refuses the marker in a model file. The
# location is relative and resolves inside the folder, so it was clean.
_ORT_TAG = "*/_ORT_MEM_ADDR_/*"


def _external(onnx: object, name: str, location: str, offset: int, n: int = 4) -> object:
    tensor_proto = onnx.TensorProto  # type: ignore[attr-defined]
    t = tensor_proto()
    t.name = name
    t.data_type = tensor_proto.INT64
    t.dims.extend([n])
    t.data_location = tensor_proto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(8 * n))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t


def _onnx_model(kind: str, location: str, offset: int = 4096) -> bytes:
    onnx = pytest.importorskip("onnx")
    helper, tp = onnx.helper, onnx.TensorProto
    add = helper.make_node("Add", ["x", "w"], ["y"])
    inits: list[object] = []
    sparse: list[object] = []
    if kind == "initializer":
        nodes = [add]
        inits.append(_external(onnx, "w", location, offset))
    elif kind == "constant":
        const = helper.make_node("Constant", [], ["w"])
        const.attribute.append(helper.make_attribute("value", _external(onnx, "cw", location, offset)))
        nodes = [const, add]
    elif kind == "constant-of-shape":
        shape = helper.make_node("Constant", [], ["s"], value=helper.make_tensor("sv", tp.INT64, [1], [4]))
        fill = helper.make_node("ConstantOfShape", ["s"], ["w"])
        fill.attribute.append(helper.make_attribute("value", _external(onnx, "v", location, offset, n=1)))
        nodes = [shape, fill, add]
    elif kind == "sparse":
        indices = helper.make_tensor("i", tp.INT64, [4], [0, 1, 2, 3])
        sp = onnx.SparseTensorProto()
        sp.values.CopyFrom(_external(onnx, "w", location, offset))
        sp.indices.CopyFrom(indices)
        sp.dims.extend([4])
        nodes, sparse = [add], [sp]
    else:  # an initializer of an If branch
        z = helper.make_tensor_value_info("z", tp.INT64, [4])
        then = helper.make_graph(
            [helper.make_node("Identity", ["w2"], ["z"])],
            "t",
            [],
            [z],
            [_external(onnx, "w2", location, offset)],
        )
        z2 = helper.make_tensor_value_info("z2", tp.INT64, [4])
        other = helper.make_graph([helper.make_node("Identity", ["x"], ["z2"])], "e", [], [z2])
        cond = helper.make_node("Constant", [], ["c"], value=helper.make_tensor("cv", tp.BOOL, [], [True]))
        nodes = [cond, helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    x = helper.make_tensor_value_info("x", tp.INT64, [4])
    y = helper.make_tensor_value_info("y", tp.INT64, [4])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    graph.sparse_initializer.extend(sparse)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


@pytest.mark.parametrize("kind", ["initializer", "constant", "constant-of-shape", "sparse", "subgraph"])
@pytest.mark.parametrize("location", [_ORT_TAG, "weights*.bin"], ids=["ort-memory-tag", "star"])
def test_onnx_external_data_at_a_memory_address(tmp_path: Path, kind: str, location: str) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(_onnx_model(kind, location))
    res = _scan(path)
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.rule_id == "LW-MODEL-035" and f.severity is Severity.HIGH for f in res.findings), (
        res.findings
    )


def test_onnx_plain_external_data_stays_clean(tmp_path: Path) -> None:
    """A location naming a file beside the model (what onnx.save_model writes) is no finding."""
    path = tmp_path / "model.onnx"
    path.write_bytes(_onnx_model("initializer", "model.onnx.data", offset=0))
    (tmp_path / "model.onnx.data").write_bytes(bytes(32))
    assert _scan(path).verdict is Verdict.CLEAN


_ORT_READ = """
import sys
import numpy as np
import onnxruntime as ort
secret = np.frombuffer(b"SECRET!!" * 4, dtype=np.int64).copy()
with open(sys.argv[1], "rb") as f:
    template = f.read()
# the model was built with offset 4096: rebuild it for this buffer's address
import onnx
model = onnx.load_model_from_string(template)
for entry in model.graph.initializer[0].external_data:
    if entry.key == "offset":
        entry.value = str(secret.ctypes.data)
onnx.save_model(model, sys.argv[1])  # by path: onnxruntime resolves external data against it
try:
    session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
except Exception as exc:
    print("REFUSED", exc)
else:
    print("READ", session.run(None, {"x": np.zeros(4, dtype=np.int64)})[0].tobytes())
"""


def test_onnxruntime_reads_the_memory_address(tmp_path: Path) -> None:
    """The real loader, in a child process, on a buffer of its own (skipped where onnxruntime refuses the marker)."""
    import subprocess
    import sys

    pytest.importorskip("onnxruntime")
    path = tmp_path / "model.onnx"
    path.write_bytes(_onnx_model("initializer", _ORT_TAG))
    done = subprocess.run(
        [sys.executable, "-c", _ORT_READ, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    if "REFUSED" in done.stdout:
        pytest.skip("this onnxruntime refuses the in-memory marker in a model")
    assert "SECRET!!" in done.stdout, (done.stdout, done.stderr)


def _gguf_template_array(path: Path) -> Path:
    """A GGUF whose ``tokenizer.chat_template`` is a one-item array holding the subclass walk."""
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    w = gguf.GGUFWriter(str(path), "qwen3")
    w.add_array("tokenizer.chat_template", [_WALK])
    w.add_tensor("t", np.zeros(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_template_stored_as_an_array_is_judged(tmp_path: Path) -> None:
    """gguf-py reads a one-item array as its item, and transformers 4.x (4.57.1 confirmed) renders a
    ``tokenizer.chat_template`` stored so: it was reported only as malformed (high), its walk unread."""
    res = _scan(_gguf_template_array(tmp_path / "model.gguf"))
    assert res.max_severity() is Severity.CRITICAL, res.findings
    assert any(f.rule_id == "LW-MODEL-040" and "__class__" in f.message for f in res.findings), res.findings


# --------------------------------------------------------------------- PEFT: modules an adapter config imports


# AutoPeftModel.from_pretrained on an adapter whose task_type is null imports auto_mapping.parent_library (and
# calls <module>.<base_model_class>.from_pretrained); a LoRA adapter with a megatron_config imports megatron_core
# when it is injected (PeftModel.from_pretrained). PEFT 0.17.1 imports any module (confirmed: 'this' prints the Zen
# of Python, its module code run by the load; huggingface/peft issue 3085); 0.21.2 refuses modules outside its
# allow-list. adapter_config.json was not read at all: clean.
def _adapter(tmp_path: Path, **fields: object) -> Path:
    import json

    config = {
        "peft_type": "LORA",
        "task_type": None,
        "base_model_name_or_path": "base",
        "r": 2,
        "lora_alpha": 4,
        "target_modules": ["c_attn"],
        "inference_mode": True,
        **fields,
    }
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps(config))
    return path


_PEFT_IMPORTS = {
    "auto-mapping": {"auto_mapping": {"base_model_class": "AutoModel", "parent_library": "antigravity"}},
    "auto-mapping-dangerous": {"auto_mapping": {"base_model_class": "system", "parent_library": "os"}},
    "auto-mapping-lookalike": {
        "auto_mapping": {"base_model_class": "M", "parent_library": "transformers_x.m"}
    },
    "megatron-core": {
        "task_type": "CAUSAL_LM",
        "megatron_config": {"tensor_model_parallel_size": 1},
        "megatron_core": "antigravity",
    },
}


@pytest.mark.parametrize("fields", list(_PEFT_IMPORTS.values()), ids=list(_PEFT_IMPORTS))
def test_peft_adapter_importing_a_module(tmp_path: Path, fields: dict[str, object]) -> None:
    res = _scan(_adapter(tmp_path, **fields))
    assert res.verdict is not Verdict.CLEAN, res
    assert any(f.rule_id == "LW-MODEL-042" and f.severity >= Severity.HIGH for f in res.findings), (
        res.findings
    )


_PEFT_BENIGN = {
    "saved-auto-mapping": {
        "auto_mapping": {
            "base_model_class": "BertModel",
            "parent_library": "transformers.models.bert.modeling_bert",
        }
    },
    "task-type-set": {
        "task_type": "CAUSAL_LM",
        "auto_mapping": {"base_model_class": "MyModel", "parent_library": "my_models.modeling"},
    },
    "megatron-default": {
        "megatron_config": {"tensor_model_parallel_size": 1},
        "megatron_core": "megatron.core",
    },
    "megatron-unused": {"megatron_config": None, "megatron_core": "megatron.core"},
    "plain": {},
}


@pytest.mark.parametrize("fields", list(_PEFT_BENIGN.values()), ids=list(_PEFT_BENIGN))
def test_peft_adapter_benign_configs_stay_clean(tmp_path: Path, fields: dict[str, object]) -> None:
    assert _scan(_adapter(tmp_path, **fields)).verdict is Verdict.CLEAN


_PEFT_LOAD = """
import sys
from peft import AutoPeftModel
try:
    AutoPeftModel.from_pretrained(sys.argv[1])
except Exception as exc:
    print("RAISED", type(exc).__name__, exc)
print("IMPORTED" if "this" in sys.modules else "NOT IMPORTED")
"""


def test_peft_imports_the_module_the_adapter_names(tmp_path: Path) -> None:
    """The real loader in a child process (skipped where PEFT refuses the module, as 0.21 does)."""
    import subprocess
    import sys

    pytest.importorskip("peft")
    _adapter(tmp_path, auto_mapping={"base_model_class": "AutoModel", "parent_library": "this"})
    done = subprocess.run(
        [sys.executable, "-c", _PEFT_LOAD, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if "NOT IMPORTED" in done.stdout and "allowlist" in done.stdout:
        pytest.skip("this PEFT refuses modules outside its import allow-list")
    assert "IMPORTED" in done.stdout and "NOT IMPORTED" not in done.stdout, (done.stdout, done.stderr)
