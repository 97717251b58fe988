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
