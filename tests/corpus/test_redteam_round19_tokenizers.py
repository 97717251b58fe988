"""Round 19 of the internal red team: tokenizer files, memory and crashes.

**Memory.** A ``tokenizer.json`` or ``vocab.json`` was parsed whole by ``json.loads``: two million tokens (50 MB)
took 880 MB (tokenizer.json, then unverified by the config walk's node bound) and 648 MB (vocab.json) at peak.
JSON over 4 MiB is now parsed by ``jsonbound.parse_large`` (a vocabulary's and a merge list's flat runs are
validated, not built; everything else within an estimated 128 MB of objects, else unverified) and YAML configs over
3 MiB are unverified (PyYAML's nodes take about 45 times the text).

**Crashes and hangs** (each scanned ``clean`` before this round; ``unverified`` now, as round 18's SentencePiece
crashes: the file is not what a writer produces and a crash is not a code finding). Confirmed in a child process
with tokenizers 0.23.3, tiktoken 0.14.0 and transformers 5.24.0 in a scratch virtualenv:

* tokenizer.json ``padding`` with ``strategy: {"Fixed": 10**12}`` or ``pad_to_multiple_of: 10**12``: the first
  ``encode`` aborts the process (``memory allocation of 4000000000000 bytes failed``, SIGABRT); ``Fixed`` 2*10**8
  ran past the 20 s timeout;
* ``truncation`` whose ``stride`` is not below ``max_length`` (less the post-processor's special tokens):
  ``PanicException`` (a ``BaseException``: ``except Exception`` does not catch it) on every longer input;
* a ``Split`` pre-tokenizer or ``Replace`` normalizer regex repeating a group that repeats or alternates
  (``(a+)+$``, ``(a|aa)+$``), also inside a ``Sequence``: Oniguruma's retry limit panics on a crafted input;
* a ``Precompiled`` normalizer whose charsmap cannot be parsed: ``PanicException`` at load;
* a tiktoken rank file (``*.tiktoken``, or a ``tokenizer.model`` in that format) giving one rank to two tokens:
  tiktoken's ``CoreBPE`` panics at construction; one lacking single-byte tokens: ``encode`` panics on text holding
  one; a token of 2 MB: transformers' ``TikTokenConverter`` ran past 60 s (time quadratic in the token's length).

Tried and not crashing (the loader refuses the file or loads it): added tokens with overlapping or 2**32-1 ids,
BPE merges naming absent tokens (refused), duplicate and 2**32-1 vocabulary ids, WordPiece
``max_input_chars_per_word`` 0 and 2**64-1, Unigram ``NaN``/``1e999`` scores (serde refuses them), an
out-of-range ``unk_id`` (refused), empty ``Split``/``Replace`` patterns and added tokens, 200 nested ``Sequence``
normalizers (serde's recursion limit refuses them), fixed repetitions ``(a{1000}){1000}``, a ``{100000}`` repeat
(Oniguruma refuses it). A ``vocab_file`` in ``tokenizer_config.json`` naming a URL or a path outside the folder
(read by tiktoken's ``read_file``) was already reported (LW-MODEL-052).
"""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.models import jsonbound
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.checks.models.tokenizer_files import regex_problem
from loopwarden.domain import TargetResult, Verdict

_BPE: dict[str, Any] = {
    "type": "BPE",
    "dropout": None,
    "unk_token": "<unk>",
    "continuing_subword_prefix": None,
    "end_of_word_suffix": None,
    "fuse_unk": False,
    "byte_fallback": False,
    "ignore_merges": False,
    "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3},
    "merges": ["a b"],
}


def _tokenizer(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": None,
        "model": dict(_BPE),
    }
    doc.update(fields)
    return doc


def _padding(**kw: Any) -> dict[str, Any]:
    return {
        "strategy": "BatchLongest",
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "<unk>",
        **kw,
    }


def _split(regex: str) -> dict[str, Any]:
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


_BERT_POST = {
    "type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "<unk>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
    "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
    "special_tokens": {"<unk>": {"id": "<unk>", "ids": [0], "tokens": ["<unk>"]}},
}

_TOKENIZER_JSON: dict[str, dict[str, Any]] = {
    # crash (abort) at the first encode
    "pad_fixed": _tokenizer(padding=_padding(strategy={"Fixed": 10**12})),
    "pad_multiple": _tokenizer(padding=_padding(pad_to_multiple_of=10**12)),
    # PanicException on every input longer than max_length
    "trunc_stride": _tokenizer(
        truncation={"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 4}
    ),
    # below max_length, but not once the post-processor's special tokens are taken off
    "trunc_stride_specials": _tokenizer(
        truncation={"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 3},
        post_processor=_BERT_POST,
    ),
    # PanicException (Oniguruma retry limit) on a crafted input
    "split_nested_repeat": _tokenizer(pre_tokenizer=_split("(a+)+$")),
    "replace_alternation": _tokenizer(
        normalizer={"type": "Replace", "pattern": {"Regex": "(a|aa)+$"}, "content": "x"}
    ),
    "sequence_split": _tokenizer(
        pre_tokenizer={
            "type": "Sequence",
            "pretokenizers": [{"type": "Digits", "individual_digits": True}, _split("(?:a*b?)*$")],
        }
    ),
    # PanicException at load
    "precompiled_empty": _tokenizer(normalizer={"type": "Precompiled", "precompiled_charsmap": ""}),
    "precompiled_short_trie": _tokenizer(
        normalizer={
            "type": "Sequence",
            "normalizers": [
                {
                    "type": "Precompiled",
                    "precompiled_charsmap": base64.b64encode(b"\xff\x00\x00\x00ab").decode(),
                }
            ],
        }
    ),
}
"""Each case's tokenizer.json, and the exit a load-and-encode child shows with tokenizers 0.23.3."""
_EXPECTED: dict[str, str] = {
    "pad_fixed": "abort",
    "pad_multiple": "abort",
    "trunc_stride": "panic",
    "trunc_stride_specials": "panic",
    "split_nested_repeat": "panic",
    "replace_alternation": "panic",
    "sequence_split": "panic",
    "precompiled_empty": "panic",
    "precompiled_short_trie": "panic",
}


def _rank_file(extra: list[tuple[bytes, int]] = (), *, single_bytes: int = 256) -> bytes:  # type: ignore[assignment]
    lines = [(bytes((i,)), i) for i in range(single_bytes)] + list(extra)
    return b"".join(base64.b64encode(t) + b" %d\n" % r for t, r in lines)


_TIKTOKEN: dict[str, dict[str, bytes]] = {
    # CoreBPE panics at construction: "Encoder and decoder must be of equal length"
    "tiktoken_dup_rank": {"r19.tiktoken": _rank_file([(b"he", 104)])},
    # a later line gives "he" a rank an earlier token already has
    "tiktoken_model_dup_rank": {"tokenizer.model": _rank_file([(b"he", 300), (b"ll", 301), (b"he", 301)])},
    # encode panics ("no entry found for key") on text holding a missing byte
    "tiktoken_missing_bytes": {"r19.tiktoken": _rank_file([(b"he", 256)], single_bytes=200)},
    # transformers' TikTokenConverter: time quadratic in the token's length
    "tiktoken_long_token": {"cl.tiktoken": _rank_file([(b"ab" * 1_000_000, 256)])},
}
_TIKTOKEN_EXPECTED: dict[str, str] = {
    "tiktoken_dup_rank": "panic",
    "tiktoken_model_dup_rank": "panic",
    "tiktoken_missing_bytes": "panic",
    "tiktoken_long_token": "hang",
}


def bench_cases() -> dict[str, dict[str, bytes]]:
    cases = {
        f"r19_tokjson_{name}": {"tokenizer.json": json.dumps(doc).encode()}
        for name, doc in _TOKENIZER_JSON.items()
    }
    # tokenizers reads any file name (Tokenizer.from_file; transformers' tokenizer_file)
    cases["r19_tokjson_other_name"] = {
        "fast_tokenizer.json": json.dumps(_TOKENIZER_JSON["pad_fixed"], indent=2).encode()
    }
    cases.update({f"r19_{name}": files for name, files in _TIKTOKEN.items()})
    return cases


def _scan(path: Path) -> TargetResult:
    return next(iter(scan_paths([str(path)], jobs=1).targets))


def _write(tmp_path: Path, files: dict[str, bytes]) -> list[Path]:
    out = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        out.append(tmp_path / name)
    return out


@pytest.mark.parametrize("case", sorted(bench_cases()))
def test_crashing_tokenizer_file_is_unverified(tmp_path: Path, case: str) -> None:
    for path in _write(tmp_path, bench_cases()[case]):
        result = _scan(path)
        assert result.verdict is Verdict.UNVERIFIED, result
        assert "tokenizer.json" in (result.reason or "") or "tiktoken" in (result.reason or ""), result


def test_tokenizer_json_crash_fields_are_read_in_a_large_document(tmp_path: Path) -> None:
    """The checks run on a document over the bound of ``json.loads`` too (parsed by ``parse_large``)."""
    doc = _tokenizer(padding=_padding(strategy={"Fixed": 10**12}))
    doc["model"]["vocab"] = {f"t{i:06d}\u0120": i for i in range(300_000)}
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc))
    assert path.stat().st_size > jsonbound.LARGE_JSON
    result = _scan(path)
    assert result.verdict is Verdict.UNVERIFIED and "padding" in (result.reason or ""), result


_LOAD = """import sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
for text in ("ab " * 8 + "a" * 40 + "b", "a" * 100000 + "!"):
    t.encode(text)
print("loaded and encoded")
"""


@pytest.mark.parametrize("case", sorted(_TOKENIZER_JSON))
def test_tokenizers_crashes_on_it(tmp_path: Path, case: str) -> None:
    pytest.importorskip("tokenizers")
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(_TOKENIZER_JSON[case]))
    run = subprocess.run([sys.executable, "-c", _LOAD, str(path)], capture_output=True, timeout=120)
    if _EXPECTED[case] == "abort":
        assert run.returncode < 0 and b"memory allocation" in run.stderr, run
    else:
        assert run.returncode == 1 and b"PanicException" in run.stderr, run


_TIKTOKEN_LOAD = """import sys
import tiktoken
from tiktoken.load import load_tiktoken_bpe
ranks = load_tiktoken_bpe(sys.argv[1])
enc = tiktoken.Encoding("r19", pat_str=r"\\S+|\\s+", mergeable_ranks=ranks, special_tokens={})
enc.encode("hello world \\xff\\xfe \\u4e2d\\u6587 " + "".join(map(chr, range(200, 256))))
print("loaded and encoded")
"""
_CONVERT = """import sys
from transformers.convert_slow_tokenizer import TikTokenConverter
TikTokenConverter(vocab_file=sys.argv[1]).converted()
print("converted")
"""


@pytest.mark.parametrize("case", sorted(_TIKTOKEN))
def test_tiktoken_or_its_conversion_crashes_on_it(tmp_path: Path, case: str) -> None:
    pytest.importorskip("tiktoken")
    (path,) = _write(tmp_path, _TIKTOKEN[case])
    if _TIKTOKEN_EXPECTED[case] == "hang":
        pytest.importorskip("transformers")
        with pytest.raises(subprocess.TimeoutExpired):
            subprocess.run([sys.executable, "-c", _CONVERT, str(path)], capture_output=True, timeout=30)
        return
    run = subprocess.run([sys.executable, "-c", _TIKTOKEN_LOAD, str(path)], capture_output=True, timeout=120)
    assert run.returncode == 1 and b"PanicException" in run.stderr, run


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"!!!notb64 1\n", "not a base64 token"),
        (b"aGU= 99999999999999999999\n", "outside"),
        (b"aGU= -1\n", "outside"),
        (b"aGU=\n", "not a base64 token"),
    ],
)
def test_rank_file_tiktoken_refuses_is_unverified(tmp_path: Path, line: bytes, why: str) -> None:
    """Lines tiktoken refuses (ValueError, OverflowError): not a file a writer produces; before this round clean."""
    path = tmp_path / "r19.tiktoken"
    path.write_bytes(_rank_file() + line)
    result = _scan(path)
    assert result.verdict is Verdict.UNVERIFIED and why in (result.reason or ""), result


# ---------------------------------------------------------------------------------------------- benign


def _rank_tokens(count: int) -> list[tuple[bytes, int]]:
    rng = random.Random(19)
    seen: set[bytes] = {bytes((i,)) for i in range(256)}
    out = []
    while len(out) < count:
        token = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(2, 12)))
        if token not in seen:
            seen.add(token)
            out.append((token, 256 + len(out)))
    return out


def test_real_looking_rank_files_stay_clean(tmp_path: Path) -> None:
    data = _rank_file(_rank_tokens(100_000))
    for name in ("cl100k_base.tiktoken", "tokenizer.model", "qwen.tiktoken"):
        path = tmp_path / name
        path.write_bytes(data)
        assert _scan(path).verdict is Verdict.CLEAN, name
    # the same rank twice for one token is only a repeated line (the dict keeps one entry)
    path = tmp_path / "dup_line.tiktoken"
    path.write_bytes(_rank_file([(b"he", 256), (b"he", 256)]))
    assert _scan(path).verdict is Verdict.CLEAN
    # a 2**32-1 rank, gaps and CRLF lines load
    path = tmp_path / "gaps.tiktoken"
    path.write_bytes(_rank_file([(b"he", 2**32 - 1), (b"ll", 10**8)]).replace(b"\n", b"\r\n"))
    assert _scan(path).verdict is Verdict.CLEAN


def test_rank_files_load_with_tiktoken(tmp_path: Path) -> None:
    pytest.importorskip("tiktoken")
    path = tmp_path / "r.tiktoken"
    path.write_bytes(_rank_file(_rank_tokens(1000)))
    run = subprocess.run([sys.executable, "-c", _TIKTOKEN_LOAD, str(path)], capture_output=True, timeout=120)
    assert run.returncode == 0, run


def _real_tokenizers(tmp_path: Path, size: int) -> dict[str, Path]:
    """tokenizer.json files written by the tokenizers library: byte-level BPE (GPT-2 and Llama-3 style split
    regex), WordPiece (BERT, with a padding and truncation) and Unigram (a Precompiled charsmap is round 18's)."""
    tk = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, normalizers, pre_tokenizers, processors

    words = [f"w{i:06d}" for i in range(size)]
    out: dict[str, Path] = {}
    vocab = {f"\u0120{w}": i for i, w in enumerate(words)}
    for i, c in enumerate(["w0", *"abcdefghijklmnopqrstuvwxyz0123456789w\u0120"]):
        vocab.setdefault(c, size + i)
    bpe = tk.Tokenizer(models.BPE(vocab, [("w", "0")]))
    llama3 = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
        r"\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(tk.Regex(llama3), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.normalizer = normalizers.Sequence([normalizers.Replace(tk.Regex(" {2,}"), " "), normalizers.NFC()])
    bpe.decoder = decoders.ByteLevel()
    bpe.add_special_tokens(["<|begin_of_text|>", "<|eot_id|>"])
    out["bpe"] = tmp_path / "bpe" / "tokenizer.json"
    wp_vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, **{w: i + 4 for i, w in enumerate(words)}}
    wp = tk.Tokenizer(models.WordPiece(wp_vocab, unk_token="[UNK]"))
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    wp.enable_truncation(512, stride=128)
    wp.enable_padding(length=512, pad_to_multiple_of=8)
    out["wordpiece"] = tmp_path / "wordpiece" / "tokenizer.json"
    uni = tk.Tokenizer(
        models.Unigram([("<unk>", 0.0), *((w, -1.0 - i / size) for i, w in enumerate(words))], 0)
    )
    uni.pre_tokenizer = pre_tokenizers.Metaspace()
    out["unigram"] = tmp_path / "unigram" / "tokenizer.json"
    for name, tok in (("bpe", bpe), ("wordpiece", wp), ("unigram", uni)):
        out[name].parent.mkdir()
        tok.save(str(out[name]))
    vocab_json = tmp_path / "bpe" / "vocab.json"
    vocab_json.write_text(json.dumps(vocab, ensure_ascii=False))
    out["vocab.json"] = vocab_json
    return out


@pytest.mark.parametrize("size", [1000, 256_000])
def test_real_tokenizer_files_stay_clean(tmp_path: Path, size: int) -> None:
    for name, path in _real_tokenizers(tmp_path, size).items():
        result = _scan(path)
        assert result.verdict is Verdict.CLEAN, (name, result)


def test_valid_precompiled_charsmaps_stay_clean(tmp_path: Path) -> None:
    """A handmade charsmap whose trie stays in bounds (round 18's benign one: 'a' normalizes to 'x'), which
    tokenizers loads; and the charsmaps sentencepiece's trainer writes, put in a tokenizers Unigram tokenizer."""
    units = [0] * 256
    units[ord("a")] = ord("a") | 0x100 | (0x40 << 10)
    units[ord("a") ^ 0x40] = 0x80000000
    body = b"".join(u.to_bytes(4, "little") for u in units)
    charsmap = len(body).to_bytes(4, "little") + body + b"x\0"
    doc = _tokenizer(
        normalizer={"type": "Precompiled", "precompiled_charsmap": base64.b64encode(charsmap).decode()}
    )
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc))
    assert _scan(path).verdict is Verdict.CLEAN
    tk = pytest.importorskip("tokenizers")
    assert tk.Tokenizer.from_file(str(path)).normalizer.normalize_str("ab") == "xb"
    spm = pytest.importorskip("sentencepiece")
    from sentencepiece import sentencepiece_model_pb2

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(
        "\n".join(f"hello world \uff21\uff22 caf\u00e9 \u2461 {i}" for i in range(300)), encoding="utf-8"
    )
    for rule in ("nmt_nfkc", "nfkc_cf"):
        prefix = tmp_path / rule
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(prefix),
            vocab_size=40,
            normalization_rule_name=rule,
            minloglevel=2,
        )
        proto = sentencepiece_model_pb2.ModelProto()
        proto.ParseFromString(Path(f"{prefix}.model").read_bytes())
        tok = tk.Tokenizer(tk.models.Unigram([(p.piece, p.score) for p in proto.pieces], 0))
        tok.normalizer = tk.normalizers.Precompiled(proto.normalizer_spec.precompiled_charsmap)
        out = tmp_path / rule / "tokenizer.json"
        out.parent.mkdir()
        tok.save(str(out))
        assert _scan(out).verdict is Verdict.CLEAN, rule


_PEAK = """import re, sys
from loopwarden.checks.models.scanner import scan_paths
(t,) = scan_paths([sys.argv[1]], jobs=1).targets
# VmHWM belongs to the process's own memory map (getrusage's maximum survives the exec from a large parent)
peak = re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1)
print(t.verdict.value, peak)
"""


def test_large_vocabulary_is_scanned_in_bounded_memory(tmp_path: Path) -> None:
    """Before: a 1,000,000-token tokenizer.json (25 MB) peaked near 450 MB (json.loads and the walks)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc")
    doc = _tokenizer()
    doc["model"]["vocab"] = {f"tok{i:07d}\u0120x": i for i in range(1_000_000)}
    doc["model"]["merges"] = [["tok", f"{i:07d}"] for i in range(200_000)]
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(doc, ensure_ascii=False))
    src = str(Path(jsonbound.__file__).parents[3])
    run = subprocess.run(
        [sys.executable, "-c", _PEAK, str(path)],
        capture_output=True,
        timeout=300,
        env={"PYTHONPATH": src, "PATH": ""},
        check=True,
    )
    verdict, peak_kb = run.stdout.split()
    assert verdict == b"clean", run
    assert int(peak_kb) < 256 * 1024, peak_kb


def _large(doc: dict[str, Any], tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    assert path.stat().st_size > jsonbound.LARGE_JSON
    return path


def test_large_documents_are_still_judged(tmp_path: Path) -> None:
    vocab = {f"t{i:06d}": i for i in range(300_000)}
    # a template among the vocabulary's neighbours, outside model.vocab (walked), and a Hydra target
    doc = {"model": {"vocab": vocab}, "prompt_template": "{{ cycler.__init__.__globals__.os.popen('id') }}"}
    result = _scan(_large(doc, tmp_path, "tokenizer.json"))
    assert result.verdict is Verdict.FINDINGS, result
    doc = {"weights": vocab, "m": {"_target_": "os.system", "command": "id"}}
    result = _scan(_large(doc, tmp_path, "config.json"))
    assert result.verdict is Verdict.FINDINGS, result
    # UTF-16 and UTF-32 text, which json.loads decodes, is transcoded (a chunk at a time), not skipped
    for encoding in ("utf-16", "utf-32-le"):
        path = tmp_path / f"hparams_{encoding}.json"
        path.write_bytes(json.dumps(doc).encode(encoding))
        result = _scan(path)
        assert result.verdict is Verdict.FINDINGS, (encoding, result)
    # a vocabulary-shaped object elsewhere is built (a number-valued key a check reads is not dropped)
    doc = {"vocab": {**vocab, "_target_": "os.system"}}
    result = _scan(_large(doc, tmp_path, "hparams.json"))
    assert result.verdict is Verdict.FINDINGS, result


def test_markup_in_a_large_vocabulary_is_searched_as_before(tmp_path: Path) -> None:
    """A vocab.json's keys are searched for templates (they are not model.vocab): a run holding markup is built."""
    vocab = {f"t{i:06d}": i for i in range(300_000)}
    vocab["{{ cycler.__init__.__globals__.os.popen('id').read() }}"] = 300_000
    path = _large(vocab, tmp_path, "vocab.json")
    small = tmp_path / "small"
    small.mkdir()
    (small / "vocab.json").write_text(json.dumps(dict(list(vocab.items())[-5:])))
    assert _scan(small / "vocab.json").verdict is _scan(path).verdict


def test_object_bound_of_large_documents(tmp_path: Path) -> None:
    # 1.5 million empty lists: 4.5 MB of text, over 300 MB as Python objects
    result = _scan(_large({"data": [[]] * 1_500_000}, tmp_path, "config.json"))
    assert result.verdict is Verdict.UNVERIFIED and "max_large_json_objects" in (result.reason or ""), result
    # a JSON array data file over the bound is skipped, as one over the size bound
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([[]] * 1_500_000))
    assert _scan(path).verdict is Verdict.CLEAN


def test_yaml_over_the_bound_is_unverified(tmp_path: Path) -> None:
    path = tmp_path / "hparams.yaml"
    path.write_text("".join(f"key_{i}: value_{i}\n" for i in range(200_000)))
    assert path.stat().st_size > 3 << 20
    result = _scan(path)
    assert result.verdict is Verdict.UNVERIFIED and "YAML" in (result.reason or ""), result


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if depth > 4 or r < 0.4:
        return rng.choice([1, -2, 0.5, 1e300, 'a"b\\\u00e9\U0001f600', "", True, False, None, "x\n", 10**30])
    if r < 0.7:
        keys = ["k", "model", "vocab", "merges", "a\u2581"]
        return {rng.choice(keys) + str(rng.randint(0, 3)): _random_value(rng, depth + 1) for _ in range(4)}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def test_parse_large_agrees_with_json_loads() -> None:
    rng = random.Random(19)
    for _ in range(500):
        text = json.dumps(_random_value(rng), indent=rng.choice([None, 1]), ensure_ascii=rng.random() < 0.5)
        data = text.encode()
        assert jsonbound.parse_large(data) == json.loads(data), text
        mutated = bytearray(data)
        mutated[rng.randrange(len(mutated))] = rng.choice(b'{}[],:"\\ 0a-.eE\x01')
        try:
            expected: Any = json.loads(bytes(mutated))
        except ValueError:
            with pytest.raises(ValueError):
                jsonbound.parse_large(bytes(mutated))
        else:
            assert jsonbound.parse_large(bytes(mutated)) == expected
    nan = jsonbound.parse_large(b'{"a": [NaN, -Infinity, 1E5, "\\u00e9", "\\ud800"]}')
    assert nan["a"][1:] == [float("-inf"), 1e5, "\u00e9", "\ud800"]


def test_regex_problem_leaves_real_split_patterns() -> None:
    real = [
        r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
        r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+",
        r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+",
        r" ?[^(\s|[.,!?…。，、।۔،])]+",  # noqa: RUF001 - BLOOM's split pattern, full-width punctuation included
        r"(a{1000}){1000}",
        r"(?:\r?\n)+",
        r"(\r\n|\n)+",
        r"(?<=x)(ab|cd)+",
        r" {2,}",
    ]
    assert [p for p in real if regex_problem(p)] == []
    nested = [r"(a+)+$", r"(a|aa)+$", r"(?:a*)*", r"((a+))+", r"(x+x+)+y", r"(a{1,9}){9}", r"(\w+\s?)*$"]
    nested += [r"(?i:a|ab)*$", r"(?<n>a|a)+", r"(?:\r\n|\r|\n)+$"]
    assert [p for p in nested if not regex_problem(p)] == []


def test_tokenizer_config_vocab_file_url_was_already_reported(tmp_path: Path) -> None:
    """tiktoken's ``read_file`` fetches http(s) and blobfile paths: a ``vocab_file`` naming one was reported
    already (LW-MODEL-052); kept here as the tiktoken variant's regression test."""
    for value in ("https://example.invalid/x.tiktoken", "gs://bucket/x.tiktoken", "../../x.tiktoken"):
        path = tmp_path / "tokenizer_config.json"
        path.write_text(json.dumps({"tokenizer_class": "PreTrainedTokenizerFast", "vocab_file": value}))
        result = _scan(path)
        assert any(f.rule_id == "LW-MODEL-052" for f in result.findings), result


def test_bench_cases_are_deterministic() -> None:
    assert bench_cases() == bench_cases()
    assert all(name.startswith("r19_") for name in bench_cases())
