"""Round 10, false-positive sweep: files the libraries themselves write must stay clean.

A broad sweep (tiny random-init models of many architectures, tokenizers with well-known chat templates, Trainer
checkpoints, whole torch modules, optimizer and scheduler states, tensors of every dtype, numpy, scikit-learn,
Keras, ONNX, GGUF) found one false positive: a ``quint4x2`` or ``quint2x4`` tensor, which packs two or four values
in each byte of its storage, was reported as reaching outside that storage (LW-MODEL-017). The tensor bound is now
counted in packed values, as torch's own check does, and a tensor past that bound is still reported.

The files are made here with the real libraries (each test is skipped when its library is missing), offline and
from random initialisation only; this file keeps a representative subset of the sweep.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
from test_tensor_geometry import _rebuild, _rules, _sd

from loopwarden.domain import Severity


def _assert_clean(folder: Path) -> int:
    """Scan ``folder``; every file must be clean with nothing above INFO. Returns how many files were scanned."""
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(folder)], jobs=1)
    assert report.targets
    for t in report.targets:
        assert t.verdict.value == "clean", (t.path, [(f.rule_id, f.message) for f in t.findings], t.reason)
        assert all(f.severity is Severity.INFO for f in t.findings), (t.path, t.findings)
    return len(report.targets)


# --- sub-byte quantized tensors: the one false positive -------------------------------------------------------


@pytest.mark.parametrize(("kind", "packed"), [("QUInt4x2Storage", 2), ("QUInt2x4Storage", 4)])
def test_sub_byte_quantized_storage_holds_packed_values(kind: str, packed: int) -> None:
    def rules(size: int) -> set[str]:
        return _rules(_sd(_rebuild(0, (size,), (1,), numel=2, fn="_rebuild_qtensor", kind=kind)))

    assert "LW-MODEL-017" not in rules(2 * packed)  # what torch.save writes: 2 bytes hold 2 * packed values
    assert "LW-MODEL-017" in rules(2 * packed + 1)  # one value past them: torch refuses it, still reported
    assert "LW-MODEL-017" in rules(1 << 20)
    # other quantized storages hold one value per element, as before
    assert "LW-MODEL-017" in _rules(
        _sd(_rebuild(0, (3,), (1,), numel=2, fn="_rebuild_qtensor", kind="QInt8Storage"))
    )


def test_real_sub_byte_quantized_tensors_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    tensors = {
        "q4": torch.quantize_per_tensor(torch.rand(7), 0.1, 0, torch.quint4x2),
        "q2": torch.quantize_per_tensor(torch.rand(4, 3), 0.1, 0, torch.quint2x4),
        "q8": torch.quantize_per_tensor(torch.rand(3), 0.1, 0, torch.qint8),
    }
    torch.save(tensors, tmp_path / "zip.pt")
    torch.save(tensors, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(tensors["q4"], tmp_path / "one.pt")
    _assert_clean(tmp_path)


# --- torch ------------------------------------------------------------------------------------------------------


def test_real_torch_modules_optimizers_and_tensors_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    import torch.ao.quantization as tq
    import torch.nn.utils.prune as prune
    from torch.nn.utils import parametrizations

    conv = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    pruned = nn.Conv2d(2, 2, 3)
    prune.l1_unstructured(pruned, "weight", 0.5)
    prune.random_unstructured(pruned, "bias", 0.5)
    structured = nn.Linear(4, 4)
    prune.ln_structured(structured, "weight", 0.5, n=2, dim=0)
    normed = nn.Linear(4, 4)
    parametrizations.weight_norm(normed)
    modules: dict[str, Any] = {
        "transformer": nn.Transformer(16, 2, 1, 1, 32),
        "rnns": nn.ModuleList([nn.LSTM(4, 4, 2, bidirectional=True), nn.GRU(4, 4)]),
        "conv": conv,
        "pruned": pruned,
        "structured": structured,
        "dynamic_q": tq.quantize_dynamic(nn.Sequential(nn.Linear(4, 4), nn.LSTM(4, 4)), {nn.Linear, nn.LSTM}),
    }
    for name, module in modules.items():
        torch.save(module, tmp_path / f"{name}.pt")
        torch.save(module.state_dict(), tmp_path / f"{name}.sd.pt")
    torch.save(
        normed.state_dict(), tmp_path / "weight_norm.sd.pt"
    )  # a parametrized module saves its state only
    params = [nn.Parameter(torch.randn(3))]
    for cls in (
        torch.optim.AdamW,
        torch.optim.SGD,
        torch.optim.Adagrad,
        torch.optim.LBFGS,
        torch.optim.NAdam,
    ):
        opt = cls(params, lr=0.1)
        params[0].grad = torch.ones(3)
        opt.step((lambda: params[0].sum()) if cls is torch.optim.LBFGS else None)
        torch.save(opt.state_dict(), tmp_path / f"opt_{cls.__name__}.pt")
    sgd = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    scheds = {
        "onecycle": torch.optim.lr_scheduler.OneCycleLR(sgd, 0.1, total_steps=10),
        "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau(sgd),
        "cosine_wr": torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(sgd, 2),
    }
    for name, sched in scheds.items():
        torch.save(sched.state_dict(), tmp_path / f"sched_{name}.pt")
    dtypes = [torch.float32, torch.float16, torch.bfloat16, torch.int8, torch.bool, torch.complex64]
    dtypes += [getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2", "uint16") if hasattr(torch, n)]
    torch.save({str(d): torch.zeros(3, 2).to(d) for d in dtypes}, tmp_path / "dtypes.pt")
    special = {
        "coo": torch.randn(3, 3).to_sparse(),
        "csr": torch.randn(3, 3).to_sparse_csr(),
        "qperchannel": torch.quantize_per_channel(
            torch.randn(2, 3), torch.tensor([0.1, 0.2]), torch.tensor([0, 0]), 0, torch.qint8
        ),
        "nested": torch.nested.nested_tensor([torch.randn(2), torch.randn(3)]),
        "views": [torch.arange(10.0)[2:5], torch.randn(4, 4).t()],
    }
    torch.save(special, tmp_path / "special.pt")
    torch.save(special, tmp_path / "special_legacy.pt", _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(conv), str(tmp_path / "script.pt"))
    torch.jit.save(torch.jit.trace(conv.eval(), torch.randn(1, 3, 8, 8)), str(tmp_path / "trace.pt"))
    ep = torch.export.export(nn.Sequential(nn.Linear(4, 4), nn.ReLU()), (torch.randn(2, 4),))
    torch.export.save(ep, str(tmp_path / "exported.pt2"))
    assert _assert_clean(tmp_path) >= 20


# --- transformers -----------------------------------------------------------------------------------------------

_LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
_QWEN_TOOLS = """{%- if tools %}
    {{- '<|im_start|>system\\n# Tools\\n\\n<tools>' }}
    {%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}
    {{- '\\n</tools><|im_end|>\\n' }}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string %}
        {%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- set content = message.content if message.content is string else '' %}
    {%- if message.role == "assistant" and '</think>' in content %}
        {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
    {%- endif %}
    {%- if message.tool_calls %}{%- for tool_call in message.tool_calls %}
        {{- '<tool_call>\\n' + tool_call.function.name + ': ' }}
        {{- tool_call.function.arguments | tojson + '</tool_call>' }}
    {%- endfor %}{%- endif %}
    {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}
{%- endif %}"""
_MISTRAL_TOOLS = """{%- if not date_string is defined %}{%- set date_string = strftime_now("%Y-%m-%d") %}{%- endif %}
{%- set user_messages = messages | selectattr("role", "equalto", "user") | list %}
{{- bos_token }}
{%- for message in messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is defined and tools and message == user_messages[-1] %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}{%- set tool = tool.function %}
                {%- for key, val in tool.items() if key != "return" %}
                    {{- '"' + key + '": ' + (val if val is string else val | tojson) }}
                {%- endfor %}
            {%- endfor %}{{- "][/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {{- "[INST] " + message["content"] + "[/INST]" }}
    {%- elif message["role"] == "assistant" %}{{- " " + message["content"] | trim + eos_token }}
    {%- else %}{{- raise_exception("Only user and assistant roles are supported!") }}
    {%- endif %}
{%- endfor %}"""
_GEMMA = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
_TEMPLATES = {"llama3": _LLAMA3, "qwen_tools": _QWEN_TOOLS, "mistral_tools": _MISTRAL_TOOLS, "gemma": _GEMMA}


def test_real_transformers_models_and_tokenizers_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")

    small = {"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 37}
    models = {
        "llama": transformers.LlamaForCausalLM(
            transformers.LlamaConfig(**small, num_key_value_heads=1, vocab_size=99)
        ),
        "gpt2": transformers.GPT2LMHeadModel(
            transformers.GPT2Config(n_embd=32, n_head=2, n_layer=1, vocab_size=99, n_positions=64)
        ),
        "bert": transformers.BertForMaskedLM(transformers.BertConfig(**small, vocab_size=99)),
    }
    for name, model in models.items():
        model.save_pretrained(tmp_path / name)
        # what save_pretrained(safe_serialization=False) wrote in the 4.x releases: a pickled state dict
        torch.save(model.state_dict(), tmp_path / name / "pytorch_model.bin")
    torch.save(models["gpt2"], tmp_path / "gpt2" / "whole_model.pt")

    tok = tokenizers.Tokenizer(tokenizers.models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = tokenizers.trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 20, trainer)
    for name, template in _TEMPLATES.items():
        fast = transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
        )
        fast.chat_template = template
        fast.save_pretrained(tmp_path / f"tok_{name}")
        # the older layout: the template inline in tokenizer_config.json, and a named-template list
        inline = tmp_path / f"inline_{name}"
        inline.mkdir()
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template}
        (inline / "tokenizer_config.json").write_text(json.dumps(config))
    named = [{"name": "default", "template": _LLAMA3}, {"name": "tool_use", "template": _QWEN_TOOLS}]
    (tmp_path / "inline_llama3" / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}))
    assert _assert_clean(tmp_path) >= 20


# --- numpy, scikit-learn ----------------------------------------------------------------------------------------


def test_real_numpy_and_sklearn_files_stay_clean(tmp_path: Path) -> None:
    import datetime
    import decimal
    import pickle

    np = pytest.importorskip("numpy")
    arrays = {
        "struct": np.zeros(2, dtype=[("a", "<i4"), ("b", "<f8", (2,)), ("c", [("x", "u1"), ("y", ">f2")])]),
        "aligned": np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<i8")], align=True)),
        "dates": np.zeros(3, dtype="M8[ns]"),
        "deltas": np.zeros(3, dtype="m8[s]"),
        "c32": np.zeros(2, dtype="c16"),
        "text": np.array(["a", "bb"]),
        "objects": np.array(
            [1, "a", None, (1, 2), {"k": [1]}, datetime.date(2020, 1, 1), decimal.Decimal("1.5")],
            dtype=object,
        ),
        "fortran": np.asfortranarray(np.arange(12).reshape(3, 4)),
    }
    for name, arr in arrays.items():
        np.save(tmp_path / f"{name}.npy", arr, allow_pickle=True)
    np.savez_compressed(tmp_path / "all.npz", **arrays)

    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    rng = np.random.RandomState(0)
    x, y = rng.rand(40, 3), np.arange(40) % 2
    estimators = {
        "pipe": make_pipeline(
            FunctionTransformer(np.log1p, inverse_func=np.expm1),
            ColumnTransformer(
                [("s", StandardScaler(), [0, 1]), ("o", OneHotEncoder(handle_unknown="ignore"), [2])]
            ),
            LogisticRegression(),
        ).fit(x, y),
        "forest": RandomForestClassifier(3, max_depth=2).fit(x, y),
        "hgb": HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "tfidf": make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(
            ["alpha beta", "gamma delta"] * 5, y[:10]
        ),
    }
    for i, (name, est) in enumerate(estimators.items()):
        compress: Any = [0, 3, ("gzip", 3), ("lzma", 3)][i]
        joblib.dump(est, tmp_path / f"{name}.joblib", compress=compress)
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(est, protocol=2 + 3 * (i % 2)))
    assert _assert_clean(tmp_path) == 17


# --- Keras, ONNX, GGUF ------------------------------------------------------------------------------------------


def test_real_keras_models_stay_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    layers = keras.layers

    inp = keras.Input((6,))
    emb = layers.Embedding(20, 8)(inp)
    att = layers.LayerNormalization()(layers.Add()([layers.MultiHeadAttention(2, 4)(emb, emb), emb]))
    rnn = layers.Bidirectional(layers.LSTM(4))(att)
    out = layers.Dense(2, activation="softmax")(
        layers.Concatenate()([rnn, layers.GlobalAveragePooling1D()(att)])
    )
    functional = keras.Model(inp, out)
    conv = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            layers.Rescaling(1 / 255),
            layers.Conv2D(4, 3),
            layers.BatchNormalization(),
            layers.SeparableConv2D(4, 3, padding="same"),
            layers.GlobalMaxPooling2D(),
            layers.Dropout(0.1),
            layers.Dense(2, kernel_regularizer="l2"),
        ]
    )
    for name, model in {"functional": functional, "conv": conv}.items():
        model.compile(optimizer="adam", loss="mse")
        model.save(tmp_path / f"{name}.keras")
        model.save(tmp_path / f"{name}.h5")
        model.save_weights(tmp_path / f"{name}.weights.h5")
    assert _assert_clean(tmp_path) == 6


def test_real_onnx_and_gguf_files_stay_clean(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    # seeded, so the test is deterministic: random tensor bytes sometimes begin like another format (a zlib header,
    # a MessagePack value, pickle opcodes); test_raw_data_misread.py covers those readings of external data
    rng = np.random.default_rng(2026)
    inits = [
        numpy_helper.from_array(rng.random((16, 16)).astype(dt), f"T{i}")
        for i, dt in enumerate(["f4", "f2", "i8"])
    ]
    graph = helper.make_graph(
        [helper.make_node("Identity", [t.name], [f"{t.name}_o"]) for t in inits],
        "g",
        [],
        [helper.make_tensor_value_info(f"{t.name}_o", t.data_type, [16, 16]) for t in inits],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "plain.onnx")
    onnx.save(
        model, tmp_path / "one.onnx", save_as_external_data=True, location="one.onnx.data", size_threshold=16
    )
    (tmp_path / "many").mkdir()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "many" / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=False)
    assert TensorProto.FLOAT in {t.data_type for t in inits}

    gguf = pytest.importorskip("gguf")
    for name, template in _TEMPLATES.items():
        writer = gguf.GGUFWriter(str(tmp_path / f"{name}.gguf"), "llama")
        writer.add_name(name)
        writer.add_context_length(128)
        writer.add_uint8("x.u8", 1)
        writer.add_int64("x.i64", -(2**40))
        writer.add_float64("x.f64", 1.5)
        writer.add_bool("x.b", True)
        writer.add_array("x.strings", ["a", "b"])
        writer.add_token_list(["<s>", "</s>", "a", "b"])
        writer.add_token_types([gguf.TokenType.CONTROL] * 2 + [gguf.TokenType.NORMAL] * 2)
        writer.add_chat_template(template)
        writer.add_tensor("w", np.random.rand(4, 4).astype(np.float32))
        q8 = gguf.quants.quantize(np.random.rand(2, 64).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("q", q8, raw_shape=q8.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    assert _assert_clean(tmp_path) >= 10


# --- a model saved whole inside nn.DataParallel ---------------------------------------------------------------


def test_data_parallel_wrapper_is_rebuilt_not_called() -> None:
    from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

    dp = b"ctorch.nn.parallel.data_parallel\nDataParallel\n"
    rebuilt = b"\x80\x02" + dp + b")\x81}(X\x08\x00\x00\x00training\x88ub."
    assert analyze_pickle_bytes(rebuilt).findings == ()
    called = analyze_pickle_bytes(b"\x80\x02" + dp + b"(ctorch.nn.modules.linear\nIdentity\n)\x81tR.")
    assert [(f.rule_id, f.severity) for f in called.findings] == [("LW-MODEL-005", Severity.HIGH)]
    # DistributedDataParallel's __setstate__ joins the default process group: not admitted
    ddp = b"\x80\x02ctorch.nn.parallel.distributed\nDistributedDataParallel\n)\x81}b."
    assert {f.rule_id for f in analyze_pickle_bytes(ddp).findings} == {"LW-MODEL-005"}


def test_real_data_parallel_model_saved_whole_stays_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.DataParallel(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten()))
    torch.save(model, tmp_path / "dp.pt")
    torch.save(model, tmp_path / "dp_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save({"model": model, "epoch": 3}, tmp_path / "dp_ckpt.pth")
    torch.save(model.state_dict(), tmp_path / "dp_state.pt")
    assert _assert_clean(tmp_path) == 4


# --- jinja2's helper globals called where they are named --------------------------------------------------------

_HELPERS_CALLED = (
    "{% set turn = cycler('odd', 'even') %}{% set sep = joiner(', ') %}"
    "{% for m in messages %}{{ sep() }}<{{ turn.next() }}>{{ m.role }}: {{ m.content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ cycler('a', 'b').current }}{{ lipsum(1, false, 3, 5) | length > 0 }}{% endif %}"
)
_HELPERS_BARE = {
    "walk": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "walk_from_result": "{{ cycler('a').__class__.__init__.__globals__ }}",
    "aliased": "{% set c = cycler %}{{ c('x') }}",
    "handed_on": "{% macro m(f) %}{{ f }}{% endmacro %}{{ m(lipsum) }}",
    "attr_filter": "{{ joiner|attr('__init__') }}",
    "computed_item": "{% set k = '_' ~ '_init__' %}{{ cycler('a')[k] }}",
}


def test_jinja_helpers_called_where_named_are_clean() -> None:
    from test_chat_template_redteam import _findings

    assert _findings(_HELPERS_CALLED) == []


@pytest.mark.parametrize("template", _HELPERS_BARE.values(), ids=_HELPERS_BARE.keys())
def test_jinja_helpers_used_bare_or_walked_are_still_reported(template: str) -> None:
    from test_chat_template_redteam import _worst

    assert (_worst(template) or Severity.INFO) >= Severity.HIGH


def test_real_tokenizer_with_jinja_helpers_renders_and_stays_clean(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"<unk>": 0, "hi": 1}, unk_token="<unk>"))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")
    fast.chat_template = _HELPERS_CALLED
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    text = fast.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    assert "<odd>user: hi, <even>assistant: yo" in text
    fast.save_pretrained(tmp_path)
    _assert_clean(tmp_path)


# --- torch archives written without CRCs ------------------------------------------------------------------------


def _zero_crcs(data: bytes, only: str | None = None) -> bytes:
    """Record CRC-32 0 for every member (or the member ``only``), in the central directory and local headers."""
    out = bytearray(data)
    zf = zipfile.ZipFile(io.BytesIO(data))
    pos = zf.start_dir  # type: ignore[attr-defined]
    for info in zf.infolist():
        assert out[pos : pos + 4] == b"PK\x01\x02"
        n, m, k = struct.unpack_from("<HHH", out, pos + 28)
        if only is None or info.filename == only:
            struct.pack_into("<I", out, pos + 16, 0)
            struct.pack_into("<I", out, info.header_offset + 14, 0)
        pos += 46 + n + m + k
    return bytes(out)


def _scan_one(path: Path) -> tuple[str, dict[str, Severity]]:
    from loopwarden.checks.models.scanner import scan_paths

    (t,) = scan_paths([str(path)], jobs=1).targets
    worst: dict[str, Severity] = {}
    for f in t.findings:
        worst[f.rule_id] = max(worst.get(f.rule_id, Severity.INFO), f.severity)
    return t.verdict.value, worst


def _torch_zip(pkl: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pkl)
        zf.writestr("archive/byteorder", b"little")
        zf.writestr("archive/version", b"3\n")
    return buf.getvalue()


def test_torch_save_without_crcs_stays_clean(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import torch
    import torch.utils.serialization  # the config lives here; torch does not import it itself

    config = torch.utils.serialization.config.save
    before = config.compute_crc32
    config.compute_crc32 = False
    try:
        torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), tmp_path / "module.pt")
        torch.save({"w": torch.zeros(3), "step": 1}, tmp_path / "state.pt")
    finally:
        config.compute_crc32 = before
    assert zipfile.ZipFile(tmp_path / "state.pt").infolist()[0].CRC == 0
    for name in ("module.pt", "state.pt"):
        assert _scan_one(tmp_path / name) == ("clean", {"LW-MODEL-026": Severity.INFO})


def test_zero_crcs_do_not_hide_a_payload_or_a_single_broken_member(tmp_path: Path) -> None:
    evil = b"\x80\x02cos\nsystem\n(X\x02\x00\x00\x00idtR."
    (tmp_path / "all_zero.pt").write_bytes(_zero_crcs(_torch_zip(evil)))
    verdict, worst = _scan_one(tmp_path / "all_zero.pt")
    assert verdict == "findings" and worst["LW-MODEL-001"] is Severity.CRITICAL
    # one member's CRC zeroed while the others are right: singled out, as before
    benign = b"\x80\x02}q\x00."
    (tmp_path / "one_zero.pt").write_bytes(_zero_crcs(_torch_zip(benign), only="archive/data.pkl"))
    assert _scan_one(tmp_path / "one_zero.pt") == ("findings", {"LW-MODEL-026": Severity.HIGH})
    # every CRC zeroed in a zip that is not a torch archive: torch's option does not explain it
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("config.yaml", "a: 1\n")
        zf.writestr("notes.txt", "x")
    (tmp_path / "bundle.zip").write_bytes(_zero_crcs(buf.getvalue()))
    assert _scan_one(tmp_path / "bundle.zip")[1].get("LW-MODEL-026") is Severity.HIGH


# --- big-endian GGUF ------------------------------------------------------------------------------------------


def _gguf_be(path: Path, template: str, *, eos: int = 1) -> None:
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    writer = gguf.GGUFWriter(str(path), "llama", endianess=gguf.GGUFEndian.BIG)
    writer.add_name("be")
    writer.add_uint32("x.u32", 3)
    writer.add_float32("x.f32", 0.5)
    writer.add_array("x.numbers", [1, 2, 3])
    writer.add_token_list(["<s>", "</s>", "a", "b"])
    writer.add_token_types([gguf.TokenType.CONTROL] * 2 + [gguf.TokenType.NORMAL] * 2)
    writer.add_eos_token_id(eos)
    writer.add_chat_template(template)
    writer.add_tensor("w", np.random.rand(4, 4).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_big_endian_gguf_is_parsed_and_clean(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    _gguf_be(tmp_path / "be.gguf", _LLAMA3)
    assert gguf.GGUFReader(str(tmp_path / "be.gguf")).byte_order == "S"  # gguf-py reads it on this host
    assert _scan_one(tmp_path / "be.gguf") == ("clean", {})


def test_big_endian_gguf_is_judged_like_any_other(tmp_path: Path) -> None:
    _gguf_be(tmp_path / "ssti.gguf", "{{ cycler.__init__.__globals__.os.popen('id').read() }}")
    verdict, worst = _scan_one(tmp_path / "ssti.gguf")
    assert verdict == "findings" and worst["LW-MODEL-040"] is Severity.CRITICAL
    _gguf_be(tmp_path / "vocab.gguf", _LLAMA3, eos=7)  # an id outside the 4-token vocabulary, read big-endian
    assert _scan_one(tmp_path / "vocab.gguf")[1].get("LW-MODEL-039") is Severity.MEDIUM


# --- transformers 5 models saved whole after from_pretrained -------------------------------------------------------


def test_weight_conversions_are_rebuilt_not_called_and_imports_refused() -> None:
    from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

    mod = b"ctransformers.core_model_loading\n"
    rebuilt = b"\x80\x02" + mod + b"WeightConverter\n)\x81N}\x86b" + mod + b"Concatenate\n)\x81}b\x86."
    assert analyze_pickle_bytes(rebuilt).findings == ()
    called = analyze_pickle_bytes(
        b"\x80\x02" + mod + b"WeightRenaming\n(X\x01\x00\x00\x00aX\x01\x00\x00\x00btR."
    )
    assert [(f.rule_id, f.severity) for f in called.findings] == [("LW-MODEL-005", Severity.HIGH)]
    # a class the module only imports (concurrent.futures') is not one of its own
    imported = analyze_pickle_bytes(b"\x80\x02" + mod + b"ThreadPoolExecutor\n)\x81}b.")
    assert {f.rule_id for f in imported.findings} == {"LW-MODEL-005"}


def test_real_from_pretrained_models_saved_whole_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    small = {"hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 37}
    configs = {
        # Mixtral's experts are merged on load (WeightConverter with MergeModulelist and Concatenate)
        "mixtral": transformers.MixtralConfig(
            **small, num_key_value_heads=1, num_local_experts=2, num_experts_per_tok=1, vocab_size=99
        ),
        "gpt_neox": transformers.GPTNeoXConfig(**small, vocab_size=99),  # renamed weights (WeightRenaming)
    }
    for name, config in configs.items():
        model_cls = getattr(transformers, f"{type(config).__name__.removesuffix('Config')}ForCausalLM")
        model_cls(config).save_pretrained(tmp_path / name)
        loaded = model_cls.from_pretrained(tmp_path / name)
        torch.save(loaded, tmp_path / f"{name}.pt")
    assert _assert_clean(tmp_path) >= 6


def test_real_processor_outputs_and_kv_caches_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(
        hidden_size=32,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_hidden_layers=2,
        intermediate_size=37,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        out = model(torch.tensor([[1, 2, 3]]), use_cache=True)
    torch.save(out.past_key_values, tmp_path / "prompt_cache.pt")
    torch.save(transformers.BatchFeature({"pixel_values": torch.zeros(1, 3, 4, 4)}), tmp_path / "features.pt")
    assert _assert_clean(tmp_path) == 2


def test_kv_cache_classes_are_rebuilt_not_called() -> None:
    from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

    cache = b"ctransformers.cache_utils\nDynamicCache\n"
    assert analyze_pickle_bytes(b"\x80\x02" + cache + b")\x81}b.").findings == ()
    called = analyze_pickle_bytes(b"\x80\x02" + cache + b")R.")
    assert [(f.rule_id, f.severity) for f in called.findings] == [("LW-MODEL-005", Severity.HIGH)]


@pytest.mark.parametrize("head", [b"\x78\x01", b"\x78\x9c", b"\x1f\x8b\x08\x00"])
def test_external_data_that_begins_like_a_compressed_stream_is_data(tmp_path: Path, head: bytes) -> None:
    """Raw tensor bytes begin like a zlib or gzip header about once in a thousand files (random float32 data in the
    test above did): the ONNX model names the file as data, and what a loader could decompress holds nothing."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    raw = bytearray(np.random.default_rng(7).random((16, 16)).astype("f4").tobytes())
    raw[: len(head)] = head
    tensor = numpy_helper.from_array(np.frombuffer(bytes(raw), dtype="f4").reshape(16, 16), "T0")
    graph = helper.make_graph(
        [helper.make_node("Identity", ["T0"], ["T0_o"])],
        "g",
        [],
        [helper.make_tensor_value_info("T0_o", tensor.data_type, [16, 16])],
        initializer=[tensor],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    import onnx

    onnx.save(model, tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=False)
    assert (tmp_path / "T0").read_bytes()[: len(head)] == head
    assert _assert_clean(tmp_path) == 2
