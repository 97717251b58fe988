"""Round 15, Hugging Face model folders written by the real libraries.

A sweep made tiny models of every transformers architecture that builds from its default config (about 400 of
820 config types), each saved with ``save_pretrained`` (safetensors, sharded with an index), as transformers 4
saved ``pytorch_model.bin`` (``torch.save`` of the state dict, and sharded with huggingface_hub's splitter), with
its ``generation_config.json``; every config type's ``config.json``; tokenizers trained with the ``tokenizers``
library (BPE, WordPiece, Unigram) and SentencePiece, saved through every tokenizer class that takes those files,
with chat templates; image processors, feature extractors and processors; sentence-transformers models of every
module type (``save`` with and without safetensors); PEFT adapters; a Trainer's checkpoints; ``torch.export``,
TorchScript and ONNX exports; accelerate's ``save_state``; sentence-transformers and TRL trainer checkpoints;
tokenizers, processors and image processors saved whole with ``torch.save``; all of it again inside a Hugging
Face cache (``blobs/`` and ``snapshots/`` links) and a folder downloaded with ``local_dir``. About 15,000 files;
reported before, each fixed for its class:

* huggingface_hub's download metadata (``.cache/huggingface/download/<file>.metadata`` of a ``local_dir``
  download: commit hash, etag, timestamp) whose commit hash starts with "c" and whose etag starts with a letter
  (about 1 download in 100): GLOBAL of a 39-hex-digit module, LW-MODEL-005 high and unverified. A pickle loader
  imports a module no environment has and stops at the timestamp; nothing is called;
* downloads huggingface_hub has not finished (``blobs/<etag>.incomplete``, a ``local_dir`` download's
  ``<short hash>.<etag>.incomplete``), left by an interrupted download: a cut file, unverified (LW-MODEL-037 high
  for safetensors). No loader opens them; they are not targets of a folder walk, as ``.git`` is not;
* sentence-transformers' and TRL's ``training_args.bin`` (their trainers' TrainingArguments subclasses, and the
  batch sampler and f-divergence enums): LW-MODEL-005 high / LW-MODEL-006 medium;
* transformers' ``TrainingArguments(parallelism_config=...)`` (accelerate's ``ParallelismConfig``): high;
* a Python tokenizer saved whole (its added-tokens ``Trie``), an image processor saved whole (``SizeDict``,
  Pillow's ``Resampling``): high.

Each benign file is made here with the real library (skipped when it is missing) and must scan clean with no
finding; the neighbours stay reported.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

from loopwarden.domain import Severity

TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
TEXTS = [
    "Hello world, this is a tiny corpus.",
    "The quick brown fox jumps over the lazy dog.",
    "Tokenizers are trained here from scratch!",
] * 10


def _scan(*paths: Path) -> list[tuple[str, str, Severity, str]]:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(p) for p in paths], jobs=1)
    assert report.targets
    out: list[tuple[str, str, Severity, str]] = []
    for t in report.targets:
        out += [(t.path, f.rule_id, f.severity, f.message) for f in t.findings]
        if t.verdict.value != "clean":
            out.append((t.path, "verdict", Severity.HIGH, f"{t.verdict.value}: {t.reason}"))
    return out


# ------------------------------------------------------------------------------ huggingface_hub local_dir metadata

COMMIT = "ca5f0d8e2b7c41f39a6e0d2b8c7f1e4a9b3d6c20"
SHA1 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4"
SHA256 = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"


def _local_dir_download(folder: Path, commit: str) -> Path:
    """A folder as ``hf download --local-dir`` leaves it, made with huggingface_hub's own functions."""
    local = pytest.importorskip("huggingface_hub._local_folder")
    for rel, etag, data in (
        ("config.json", SHA1, b'{"model_type": "bert"}'),
        ("model.safetensors", SHA256, b"\x02\x00\x00\x00\x00\x00\x00\x00{}"),
        ("onnx/model.onnx", SHA256[::-1], b""),
    ):
        paths = local.get_local_download_paths(folder, rel)
        paths.file_path.write_bytes(data)
        paths.lock_path.touch()
        local.write_download_metadata(folder, rel, commit, etag)
    return folder


@pytest.mark.parametrize("commit", [COMMIT, "c" * 40, "cf" + "0" * 38, "c3" + "a" * 38, "0" * 40, "e" * 40])
def test_local_dir_download_metadata_is_clean(tmp_path: Path, commit: str) -> None:
    folder = _local_dir_download(tmp_path / "model", commit)
    metadata = folder / ".cache" / "huggingface" / "download" / "config.json.metadata"
    assert metadata.read_text().startswith(commit + "\n" + SHA1 + "\n")
    assert _scan(folder) == []


def test_local_dir_download_metadata_imports_nothing_real(tmp_path: Path) -> None:
    """What a pickle loader does with one: it imports the 39 hex digits after the "c" and fails."""
    folder = _local_dir_download(tmp_path / "model", COMMIT)
    metadata = folder / ".cache" / "huggingface" / "download" / "model.safetensors.metadata"
    with pytest.raises(ModuleNotFoundError, match=COMMIT[1:]):
        pickle.loads(metadata.read_bytes())


@pytest.mark.parametrize(
    "data",
    [
        # the shape with a real pickle behind it, or instead of the timestamp
        f"{COMMIT}\n{SHA1}\n1795936821.49\n".encode() + b"cos\nsystem\n(S'echo'\ntR.",
        f"{COMMIT}\n{SHA1}\n".encode() + b"(cos\nsystem\nS'echo'\ntR.",
        # a known module where the commit hash stands
        b"cos\n" + SHA1.encode() + b"\n1795936821.49\n",
        b"cbuiltins\n" + SHA1.encode() + b"\n1795936821.49\n",
    ],
)
def test_download_metadata_neighbours_stay_reported(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / ".cache" / "huggingface" / "download" / "model.safetensors.metadata"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    assert _scan(path) != []


def test_download_metadata_shape_under_another_name_stays_reported(tmp_path: Path) -> None:
    """Only huggingface_hub's ``.metadata`` files are read so: the same bytes named as a weights file are not."""
    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(f"{COMMIT}\n{SHA1}\n1795936821.49\n".encode())
    assert any(r[1] == "LW-MODEL-005" for r in _scan(path))


# ------------------------------------------------------------------------------------- transformers model folders

ARCHS = {
    "bert": {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 37},
    "gpt2": {"vocab_size": 99, "n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 64},
    "t5": {"vocab_size": 99, "d_model": 32, "d_ff": 37, "num_layers": 1, "num_heads": 2, "d_kv": 8},
    "llama": {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "num_key_value_heads": 1, "intermediate_size": 37},
}  # fmt: skip


def _transformers() -> object:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    return transformers


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_transformers_model_folders_are_clean(tmp_path: Path, arch: str) -> None:
    transformers = _transformers()
    import torch

    hub = pytest.importorskip("huggingface_hub")
    config = transformers.AutoConfig.for_model(arch, **ARCHS[arch])  # type: ignore[attr-defined]
    model = transformers.AutoModel.from_config(config)  # type: ignore[attr-defined]
    model.save_pretrained(tmp_path / "st")
    model.save_pretrained(tmp_path / "shard", max_shard_size="20KB")
    transformers.GenerationConfig.from_model_config(config).save_pretrained(tmp_path / "st")  # type: ignore[attr-defined]
    assert (tmp_path / "shard" / "model.safetensors.index.json").is_file()
    # pytorch_model.bin as transformers 4 wrote it: torch.save of the state dict, sharded with an index
    state = model.state_dict()
    (tmp_path / "bin").mkdir()
    config.save_pretrained(tmp_path / "bin")
    torch.save(state, tmp_path / "bin" / "pytorch_model.bin")
    split = hub.split_torch_state_dict_into_shards(
        state, max_shard_size="20KB", filename_pattern="pytorch_model{suffix}.bin"
    )
    for name, tensors in split.filename_to_tensors.items():
        torch.save({t: state[t].contiguous() for t in tensors}, tmp_path / "bin" / name)
    assert _scan(tmp_path) == []


def test_tokenizers_trained_from_scratch_are_clean(tmp_path: Path) -> None:
    transformers = _transformers()
    tk = pytest.importorskip("tokenizers")
    special = ["<unk>", "<s>", "</s>", "<pad>", "<mask>"]
    built = []
    bpe = tk.Tokenizer(tk.models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = tk.decoders.ByteLevel()
    bpe.train_from_iterator(TEXTS, tk.trainers.BpeTrainer(vocab_size=300, special_tokens=special))
    built.append(("bpe", bpe))
    wp = tk.Tokenizer(tk.models.WordPiece(unk_token="<unk>"))
    wp.normalizer = tk.normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = tk.pre_tokenizers.BertPreTokenizer()
    wp.train_from_iterator(TEXTS, tk.trainers.WordPieceTrainer(vocab_size=200, special_tokens=special))
    built.append(("wordpiece", wp))
    uni = tk.Tokenizer(tk.models.Unigram())
    uni.pre_tokenizer = tk.pre_tokenizers.Metaspace()
    uni.train_from_iterator(
        TEXTS, tk.trainers.UnigramTrainer(vocab_size=80, special_tokens=special, unk_token="<unk>")
    )
    built.append(("unigram", uni))
    for name, tok in built:
        folder = tmp_path / name
        fast = transformers.PreTrainedTokenizerFast(  # type: ignore[attr-defined]
            tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
        )
        fast.add_tokens(["<|im_start|>", "<|im_end|>"], special_tokens=True)
        fast.chat_template = {"default": TEMPLATE, "tool_use": "{{ tools | tojson }}" + TEMPLATE}
        fast.save_pretrained(folder)
        tok.model.save(str(folder))  # vocab.json + merges.txt, vocab.txt, unigram.json
    slow = transformers.GPT2Tokenizer(
        str(tmp_path / "bpe" / "vocab.json"), str(tmp_path / "bpe" / "merges.txt")
    )  # type: ignore[attr-defined]
    slow.chat_template = TEMPLATE
    slow.save_pretrained(tmp_path / "gpt2")
    transformers.BertTokenizer(str(tmp_path / "wordpiece" / "vocab.txt")).save_pretrained(tmp_path / "bert")  # type: ignore[attr-defined]
    assert _scan(tmp_path) == []


def test_sentence_transformers_models_are_clean(tmp_path: Path) -> None:
    transformers = _transformers()
    st = pytest.importorskip("sentence_transformers")
    import torch

    base = tmp_path / "base"
    config = transformers.BertConfig(**ARCHS["bert"])  # type: ignore[attr-defined]
    transformers.BertModel(config).save_pretrained(base)  # type: ignore[attr-defined]
    (base / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world"])
    )
    transformers.BertTokenizerFast(vocab_file=str(base / "vocab.txt")).save_pretrained(base)  # type: ignore[attr-defined]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sentence_transformers.models as models

        for name, extra in (
            ("norm", [models.Pooling(32, "cls"), models.Normalize()]),
            ("dense", [models.Pooling(32, "mean"), models.Dense(32, 8, activation_function=torch.nn.Tanh())]),
        ):
            model = st.SentenceTransformer(modules=[models.Transformer(str(base)), *extra], device="cpu")
            model.save(str(tmp_path / name))
            model.save(str(tmp_path / f"{name}_bin"), safe_serialization=False)
    assert (tmp_path / "dense" / "modules.json").is_file()
    assert (tmp_path / "dense" / "2_Dense" / "config.json").is_file()
    assert _scan(tmp_path) == []


def test_hugging_face_cache_layout_is_clean(tmp_path: Path) -> None:
    """A cache as huggingface_hub lays it out: blobs named by hash, snapshot links to them, refs, locks."""
    transformers = _transformers()
    src = tmp_path / "src"
    config = transformers.AutoConfig.for_model("gpt2", **ARCHS["gpt2"])  # type: ignore[attr-defined]
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(src, max_shard_size="20KB")  # type: ignore[attr-defined]
    hub = tmp_path / "hub"
    repo = hub / "models--org--tiny"
    rev = "c" + "0" * 39
    for path in sorted(src.iterdir()):
        data = path.read_bytes()
        digest = (
            hashlib.sha256(data).hexdigest()
            if path.suffix == ".safetensors"
            else hashlib.sha1(data).hexdigest()
        )
        blob = repo / "blobs" / digest
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / rev / path.name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    (repo / ".no_exist" / rev).mkdir(parents=True)
    (repo / ".no_exist" / rev / "adapter_config.json").touch()
    (hub / ".locks" / "models--org--tiny").mkdir(parents=True)
    (hub / ".locks" / "models--org--tiny" / f"{SHA256}.lock").touch()
    (hub / "version.txt").write_text("1")
    assert _scan(hub) == []
    assert _scan(repo / "snapshots" / rev) == []


def test_cheap_sweep_of_configs_is_clean(tmp_path: Path) -> None:
    """Every 25th config type's default ``config.json`` and generation config, saved in a child process."""
    _transformers()
    code = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("ignore")
        import transformers
        transformers.logging.set_verbosity_error()
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        for name in sorted(CONFIG_MAPPING_NAMES)[::25]:
            try:
                cfg = transformers.AutoConfig.for_model(name)
                cfg.save_pretrained(sys.argv[1] + "/" + name)
                transformers.GenerationConfig.from_model_config(cfg).save_pretrained(sys.argv[1] + "/" + name)
            except Exception:
                pass
        """
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, capture_output=True, timeout=300)
    assert len(list(tmp_path.glob("*/config.json"))) >= 10
    assert _scan(tmp_path) == []


# ---------------------------------------------------------------------------------------- unfinished downloads

EVIL = b"cos\nsystem\n(S'echo pwned'\ntR."


def _cut_safetensors() -> bytes:
    """The first half of a safetensors file (what an interrupted download leaves)."""
    header = b'{"w":{"dtype":"F32","shape":[64],"data_offsets":[0,256]}}'
    data = len(header).to_bytes(8, "little") + header + bytes(256)
    return data[: len(data) // 2]


def test_unfinished_downloads_are_not_targets(tmp_path: Path) -> None:
    """``blobs/<etag>.incomplete`` (``<etag>.<8 hex>.incomplete`` since huggingface_hub 1.x) and a ``local_dir``
    download's ``.cache/huggingface/download/<short hash>.<etag>.incomplete``: huggingface_hub renames them once
    complete, no loader opens them. A cut file was unverified (and LW-MODEL-037 for safetensors)."""
    repo = tmp_path / "hub" / "models--org--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / f"{SHA256}.incomplete").write_bytes(_cut_safetensors())
    (repo / "blobs" / f"{SHA1}.0fb56aed.incomplete").write_bytes(b"PK\x03\x04" + bytes(40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    downloads = tmp_path / "local" / ".cache" / "huggingface" / "download" / "onnx"
    downloads.mkdir(parents=True)
    (downloads / f"Q1p2l2BzM1m6P5jKvr8WTq1TUio=.{SHA256}.incomplete").write_bytes(_cut_safetensors())
    (downloads / f"xGOKKLRSlIhH692hSVvI1-gpoa8=.{SHA256}.e6c0f850.incomplete").write_bytes(b"PK\x03\x04")
    assert _scan(tmp_path) == []
    # named on the command line, it is scanned
    assert _scan(repo / "blobs" / f"{SHA256}.incomplete") != []


@pytest.mark.parametrize(
    "where",
    [
        "hub/models--org--tiny/snapshots/rev/model.bin",  # a snapshot's link to it: a loader opens the link
        "hub/models--org--tiny/blobs/model.bin.incomplete",  # not an etag
        "hub/other/blobs/{sha}.incomplete",  # no models--/datasets--/spaces-- repository folder
        "model/pytorch_model.bin.incomplete",
        "model/.cache/huggingface/download/{sha}.incomplete",  # no short hash
        "model/.cache/huggingface/{short}.{sha}.incomplete",  # not under download/
    ],
)
def test_unfinished_download_neighbours_stay_reported(tmp_path: Path, where: str) -> None:
    short = "Q1p2l2BzM1m6P5jKvr8WTq1TUio="
    blob = tmp_path / "hub" / "models--org--tiny" / "blobs" / f"{SHA256}.incomplete"
    blob.parent.mkdir(parents=True)
    blob.write_bytes(EVIL)
    path = tmp_path / where.format(sha=SHA256, short=short)
    path.parent.mkdir(parents=True, exist_ok=True)
    if where.startswith("hub/models--org--tiny/snapshots/"):
        path.symlink_to(os.path.relpath(blob, path.parent))
    else:
        blob.unlink()
        path.write_bytes(EVIL)
    assert any(r[1] == "LW-MODEL-001" for r in _scan(tmp_path)), where


# ------------------------------------------------------------------- sentence-transformers' training_args.bin

_ST_ARGS = (
    ("sentence_transformers.sentence_transformer.training_args", "SentenceTransformerTrainingArguments"),
    ("sentence_transformers.cross_encoder.training_args", "CrossEncoderTrainingArguments"),
    ("sentence_transformers.sparse_encoder.training_args", "SparseEncoderTrainingArguments"),
)


def _st_training_args(module: str, name: str, **fields: object) -> object:
    """The training arguments as a checkpoint keeps them: every field at its default, built without
    ``__post_init__`` (which needs accelerate; pickle rebuilds them without it too)."""
    import dataclasses
    import importlib

    pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cls = getattr(pytest.importorskip(module), name)
    obj = object.__new__(cls)
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = None
        obj.__dict__[f.name] = value
    obj.__dict__.update(output_dir="checkpoints", **fields)
    sampler = importlib.import_module("sentence_transformers.base.sampler")
    obj.__dict__.setdefault("batch_sampler", sampler.BatchSamplers.BATCH_SAMPLER)
    return obj


@pytest.mark.parametrize(("module", "name"), _ST_ARGS)
def test_sentence_transformers_training_args_are_clean(tmp_path: Path, module: str, name: str) -> None:
    """A sentence-transformers trainer's ``training_args.bin`` (``torch.save`` of its training arguments, with the
    batch sampler enums): LW-MODEL-005 high and LW-MODEL-006 medium before."""
    import torch

    sampler = pytest.importorskip("sentence_transformers.base.sampler")
    args = _st_training_args(
        module,
        name,
        batch_sampler=sampler.BatchSamplers.NO_DUPLICATES,
        multi_dataset_batch_sampler=sampler.MultiDatasetBatchSamplers.ROUND_ROBIN,
        prompts={"query": "query: "},
    )
    torch.save(args, tmp_path / "training_args.bin")
    assert _scan(tmp_path / "training_args.bin") == []
    loaded = torch.load(tmp_path / "training_args.bin", weights_only=False)
    assert loaded.batch_sampler is sampler.BatchSamplers.NO_DUPLICATES


def test_sentence_transformers_trainer_training_args_are_clean(tmp_path: Path) -> None:
    """The real constructor (needs accelerate, as the trainer does)."""
    import torch

    pytest.importorskip("accelerate")
    st = pytest.importorskip("sentence_transformers")
    args = st.SentenceTransformerTrainingArguments(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True)
    torch.save(args, tmp_path / "training_args.bin")
    assert _scan(tmp_path / "training_args.bin") == []


def _reduce(module: str, name: str, args: bytes) -> bytes:
    return b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n" + args + b"R."


_ST_ARGS_MODULE = "sentence_transformers.sentence_transformer.training_args"


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        # the training arguments called (their constructor sets up devices): rebuilt only
        (_reduce(_ST_ARGS_MODULE, "SentenceTransformerTrainingArguments", b"(X\x03\x00\x00\x00outt"), "LW-MODEL-005"),
        (_reduce("sentence_transformers.training_args", "SentenceTransformerTrainingArguments",
                 b"(X\x03\x00\x00\x00outt"), "LW-MODEL-005"),
        # the enum handed a dangerous callable
        (_reduce("sentence_transformers.base.sampler", "BatchSamplers", b"(X\x01\x00\x00\x00xcos\nsystem\nt"),
         "LW-MODEL-001"),
        # a batch sampler class, not an enum member
        (b"\x80\x02csentence_transformers.base.sampler\nNoDuplicatesBatchSampler\n.", "LW-MODEL-006"),
    ],
)  # fmt: skip
def test_sentence_transformers_training_neighbours_stay_reported(
    tmp_path: Path, data: bytes, rule: str
) -> None:
    path = tmp_path / "training_args.bin"
    path.write_bytes(data)
    assert rule in {r[1] for r in _scan(path)}


def test_sentence_transformers_batch_sampler_enum_lookup_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "training_args.bin"
    path.write_bytes(
        _reduce("sentence_transformers.base.sampler", "BatchSamplers", b"(X\x0d\x00\x00\x00no_duplicatest")
    )
    assert _scan(path) == []


# -------------------------------------------------------------- TrainingArguments(parallelism_config=...)

_PARALLELISM = b"caccelerate.parallelism_config\nParallelismConfig\n"


def _parallelism_state() -> bytes:
    """``ParallelismConfig()`` as pickle protocol 2 writes it: NEWOBJ of the class, BUILD with its fields."""
    fields = b"".join(
        b"X" + len(k).to_bytes(4, "little") + k.encode() + v
        for k, v in (
            ("dp_replicate_size", b"K\x01"),
            ("dp_shard_size", b"K\x01"),
            ("tp_size", b"K\x01"),
            ("cp_size", b"K\x01"),
            ("cp_backend", b"X\x05\x00\x00\x00torch"),
            ("sp_size", b"K\x01"),
            ("sp_backend", b"X\x09\x00\x00\x00deepspeed"),
            ("tp_handler", b"N"),
            ("cp_handler", b"N"),
            ("sp_handler", b"N"),
        )
    )
    return _PARALLELISM + b")\x81}(" + fields + b"ub"


def test_training_args_parallelism_config_is_clean(tmp_path: Path) -> None:
    """transformers' ``TrainingArguments(parallelism_config=ParallelismConfig(...))`` keeps accelerate's config in
    ``training_args.bin``: LW-MODEL-005 high before."""
    path = tmp_path / "training_args.bin"
    path.write_bytes(b"\x80\x02" + _parallelism_state() + b".")
    assert _scan(path) == []


def test_training_args_parallelism_config_real_is_clean(tmp_path: Path) -> None:
    import torch

    pytest.importorskip("accelerate")
    transformers = _transformers()
    parallelism = pytest.importorskip("accelerate.parallelism_config")
    args = transformers.TrainingArguments(  # type: ignore[attr-defined]
        output_dir=str(tmp_path / "o"),
        report_to=[],
        use_cpu=True,
        parallelism_config=parallelism.ParallelismConfig(),
    )
    torch.save(args, tmp_path / "training_args.bin")
    assert _scan(tmp_path / "training_args.bin") == []


def test_parallelism_config_called_stays_reported(tmp_path: Path) -> None:
    """Rebuilt only: its constructor reads the environment."""
    path = tmp_path / "training_args.bin"
    path.write_bytes(b"\x80\x02" + _PARALLELISM + b"(K\x02tR.")
    assert "LW-MODEL-005" in {r[1] for r in _scan(path)}


# ------------------------------------------------------------------------------ TRL's training_args.bin


def _newobj(module: str, name: str) -> bytes:
    """An instance as pickle protocol 2 writes a dataclass: NEWOBJ of the class, BUILD with its fields."""
    return (
        b"\x80\x02c"
        + module.encode()
        + b"\n"
        + name.encode()
        + b"\n)\x81}(X\n\x00\x00\x00output_dirX\x01\x00\x00\x00o"
        b"X\r\x00\x00\x00learning_rateG?\x1a6\xe2\xeb\x1cC-ub."
    )


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("trl.trainer.sft_config", "SFTConfig"),
        ("trl.trainer.dpo_config", "DPOConfig"),
        ("trl.trainer.grpo_config", "GRPOConfig"),
        ("trl.trainer.orpo_config", "ORPOConfig"),
        ("trl.trainer.gkd_config", "GKDConfig"),
    ],
)
def test_trl_training_args_are_clean(tmp_path: Path, module: str, name: str) -> None:
    """TRL's trainers save their config (a TrainingArguments subclass) as every checkpoint's training_args.bin:
    LW-MODEL-006 medium before."""
    path = tmp_path / "training_args.bin"
    path.write_bytes(_newobj(module, name))
    assert _scan(path) == []


def test_trl_f_divergence_enum_lookup_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "training_args.bin"
    path.write_bytes(_reduce("trl.trainer.dpo_config", "FDivergenceType", b"(X\r\x00\x00\x00js_divergencet"))
    assert _scan(path) == []


def test_trl_training_args_real_are_clean(tmp_path: Path) -> None:
    import torch

    pytest.importorskip("accelerate")
    trl = pytest.importorskip("trl")
    for name in ("SFTConfig", "DPOConfig", "GRPOConfig", "KTOConfig", "RewardConfig"):
        args = getattr(trl, name)(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True)
        torch.save(args, tmp_path / f"{name}.bin")
        assert _scan(tmp_path / f"{name}.bin") == [], name


@pytest.mark.parametrize(
    ("data", "rule"),
    [
        # called: rebuilt only
        (_reduce("trl.trainer.sft_config", "SFTConfig", b"(X\x01\x00\x00\x00ot"), "LW-MODEL-005"),
        # not one of them: the base class, an experimental trainer's config, a lookalike module
        (_newobj("trl.trainer.utils", "OnPolicyConfig"), "LW-MODEL-006"),
        (_newobj("trl.experimental.orpo.orpo_config", "ORPOConfig"), "LW-MODEL-006"),
        (_newobj("trl.trainer.sft_trainer", "SFTConfig"), "LW-MODEL-006"),
        # the enum handed a dangerous callable
        (_reduce("trl.trainer.dpo_config", "FDivergenceType", b"(cos\nsystem\nt"), "LW-MODEL-001"),
    ],
)
def test_trl_neighbours_stay_reported(tmp_path: Path, data: bytes, rule: str) -> None:
    path = tmp_path / "training_args.bin"
    path.write_bytes(data)
    assert rule in {r[1] for r in _scan(path)}


# ---------------------------------------------------------------------- Python tokenizers saved whole


def test_python_tokenizer_saved_whole_is_clean(tmp_path: Path) -> None:
    """``torch.save(tokenizer)`` of a Python (slow) tokenizer keeps its added-tokens trie
    (``transformers.tokenization_python.Trie``): LW-MODEL-005 high before."""
    import torch

    transformers = _transformers()
    tok = transformers.ByT5Tokenizer()  # type: ignore[attr-defined]
    tok.add_tokens(["<extra>"])
    torch.save(tok, tmp_path / "tokenizer.pt")
    with open(tmp_path / "tokenizer.pkl", "wb") as f:
        pickle.dump(tok, f, protocol=4)
    assert _scan(tmp_path) == []


@pytest.mark.parametrize("module", ["transformers.tokenization_python", "transformers.tokenization_utils"])
def test_trie_handed_a_dangerous_callable_stays_reported(tmp_path: Path, module: str) -> None:
    path = tmp_path / "tokenizer.pkl"
    path.write_bytes(_reduce(module, "Trie", b"(cos\nsystem\nt"))
    assert "LW-MODEL-001" in {r[1] for r in _scan(path)}


def test_image_processor_size_dict_is_clean(tmp_path: Path) -> None:
    """An image processor saved whole keeps its sizes as ``transformers.image_utils.SizeDict``: LW-MODEL-005 high
    before. Made with the real class where transformers is installed."""
    transformers = _transformers()
    image_utils = pytest.importorskip("transformers.image_utils")
    size = image_utils.SizeDict(height=224, width=224)
    (tmp_path / "size.pkl").write_bytes(
        pickle.dumps({"size": size, "crop_size": image_utils.SizeDict(height=8)}, 2)
    )
    assert _scan(tmp_path) == []
    pytest.importorskip("PIL")
    import torch

    for name in ("ViTImageProcessorPil", "CLIPImageProcessorPil"):
        cls = getattr(transformers, name, None)
        if cls is not None:
            torch.save(cls(), tmp_path / f"{name}.pt")
    assert _scan(tmp_path) == []


def test_size_dict_handed_a_dangerous_callable_stays_reported(tmp_path: Path) -> None:
    path = tmp_path / "processor.pkl"
    path.write_bytes(_reduce("transformers.image_utils", "SizeDict", b"(cos\nsystem\nt"))
    assert "LW-MODEL-001" in {r[1] for r in _scan(path)}


def test_pillow_resampling_enum_lookup_is_clean(tmp_path: Path) -> None:
    """A Pillow-backed image processor's ``resample`` (``PIL.Image.Resampling.BICUBIC``) pickles as a lookup."""
    path = tmp_path / "processor.pkl"
    path.write_bytes(_reduce("PIL.Image", "Resampling", b"K\x03\x85"))
    assert _scan(path) == []
    path.write_bytes(_reduce("PIL.Image", "Resampling", b"(cos\nsystem\nt"))
    assert "LW-MODEL-001" in {r[1] for r in _scan(path)}
