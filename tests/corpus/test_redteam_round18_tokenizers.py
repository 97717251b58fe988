"""Round 18 of the internal red team: tokenizer files beside the weights.

SentencePiece models (``tokenizer.model``, ``spiece.model``) were checked only for their top-level fields. Two
contents crash sentencepiece before 0.2.3 (shown with 0.2.0 in a scratch virtualenv, each load run in a child
process: exit by SIGSEGV; 0.2.3 refuses both at load with ``precompiled_charsmap is invalid`` and
``piece is too long``):

* a ``precompiled_charsmap`` (in ``normalizer_spec`` or ``denormalizer_spec``) whose Darts trie sends the walk
  outside the trie, or whose leaf value points past the normalized strings: the first ``encode`` reads outside
  the buffer (the root unit with the value bit set, the bypass of sentencepiece's own regression test, included);
* a piece tens of kilobytes long: building the piece trie at load recurses once a byte and overflows the stack
  (sentencepiece issue 1263).

Every case below scanned ``clean`` before this round and is ``unverified`` now (the file is not what a trainer
writes; a crash is not a code finding). Real models trained by sentencepiece, with every normalization rule, stay
clean.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import TargetResult, Verdict


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _int(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _piece(text: str, score: float, kind: int) -> bytes:
    return _field(
        1, _field(1, text.encode()) + _varint(2 << 3 | 5) + struct.pack("<f", score) + _int(3, kind)
    )


def _model(charsmap: bytes = b"", *, denormalizer: bytes = b"", long_piece: int = 0) -> bytes:
    """A unigram ModelProto: <unk>, <s>, </s>, a few pieces, and a normalizer with ``charsmap``."""
    pieces = _piece("<unk>", 0.0, 2) + _piece("<s>", 0.0, 3) + _piece("</s>", 0.0, 3)
    pieces += b"".join(_piece(c, -1.0 - i, 1) for i, c in enumerate("abc\u2581"))
    if long_piece:
        pieces += _piece("a" * long_piece, -9.0, 1)
    spec = _field(1, b"custom") + (_field(2, charsmap) if charsmap else b"") + _int(3, 1)
    out = pieces + _field(2, _int(3, 1)) + _field(3, spec)
    if denormalizer:
        out += _field(5, _field(1, b"custom") + _field(2, denormalizer))
    return out


def _charsmap(units: dict[int, int], count: int = 256, strings: bytes = b"x\0") -> bytes:
    trie = [0] * count
    for i, u in units.items():
        trie[i] = u
    body = struct.pack(f"<{count}I", *trie)
    return struct.pack("<I", len(body)) + body + strings


_A = ord("a")
_CHARSMAPS = {
    # the root's offset sends the walk 2**29 units past a 256-unit trie
    "root_offset": _charsmap({0: 0x7FFFFE00}),
    # the root with the value bit set (sentencepiece's regression test for its own validate())
    "root_value_bit": _charsmap({0: 0x80000000 | (0x00200000 << 10)}),
    # 'a' reaches a unit with has_leaf whose value unit points 2**31 bytes past the strings
    "leaf_value": _charsmap({_A: _A | 0x100 | (0x40 << 10), _A ^ 0x40: 0xFFFFFF00}),
    # a unit below the root, reached by 'a', whose offset sends the next byte 2**29 units out
    "child_offset": _charsmap({_A: _A | 0x200 | (0x1FFFFF << 10)}),
}


def bench_cases() -> dict[str, dict[str, bytes]]:
    cases = {f"r18_spm_charsmap_{name}": {"tokenizer.model": _model(cm)} for name, cm in _CHARSMAPS.items()}
    cases["r18_spm_denormalizer_charsmap"] = {"spiece.model": _model(denormalizer=_CHARSMAPS["root_offset"])}
    cases["r18_spm_long_piece"] = {"tokenizer.model": _model(long_piece=150_000)}
    return cases


def _scan(path: Path) -> TargetResult:
    return next(iter(scan_paths([str(path)], jobs=1).targets))


@pytest.mark.parametrize("case", sorted(bench_cases()))
def test_crashing_sentencepiece_model_is_unverified(tmp_path: Path, case: str) -> None:
    ((name, data),) = bench_cases()[case].items()
    path = tmp_path / name
    path.write_bytes(data)
    result = _scan(path)
    assert result.verdict is Verdict.UNVERIFIED, result
    assert "SentencePiece model" in (result.reason or "")


def test_benign_handmade_charsmap_stays_clean(tmp_path: Path) -> None:
    # 'a' -> leaf whose value unit points at the start of the strings: in bounds
    cm = _charsmap({_A: _A | 0x100 | (0x40 << 10), _A ^ 0x40: 0x80000000})
    path = tmp_path / "tokenizer.model"
    path.write_bytes(_model(cm))
    assert _scan(path).verdict is Verdict.CLEAN
    path.write_bytes(_model())
    assert _scan(path).verdict is Verdict.CLEAN
    path.write_bytes(_model(long_piece=1000))
    assert _scan(path).verdict is Verdict.CLEAN


def test_empty_charsmap_trie_is_unverified(tmp_path: Path) -> None:
    """A charsmap whose trie has no unit: sentencepiece 0.2.3 refuses it, 0.2.0 reads the root from a zero-length
    buffer (no crash shown, so not a bench case). No trainer writes one: unverified, not clean."""
    path = tmp_path / "tokenizer.model"
    path.write_bytes(_model(struct.pack("<I", 0) + b"x\0"))
    assert _scan(path).verdict is Verdict.UNVERIFIED


@pytest.mark.parametrize("rule", ["nmt_nfkc", "nfkc", "nmt_nfkc_cf", "nfkc_cf", "identity"])
def test_real_sentencepiece_models_stay_clean(tmp_path: Path, rule: str) -> None:
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "corpus.txt"
    line = "hello world \uff21\uff22\uff23 \ufb01 caf\u00e9 \u2461"  # fullwidth, a ligature, a circled digit
    corpus.write_text("\n".join(f"{line} {i}" for i in range(200)), encoding="utf-8")
    for kind in ("unigram", "bpe"):
        prefix = tmp_path / f"{rule}_{kind}"
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(prefix),
            vocab_size=40,
            model_type=kind,
            normalization_rule_name=rule,
            user_defined_symbols=["<extra_id_0>"],
            minloglevel=2,
        )
        assert _scan(Path(f"{prefix}.model")).verdict is Verdict.CLEAN


_LOAD = """import sys
import sentencepiece as spm
p = spm.SentencePieceProcessor(model_file=sys.argv[1])
ids = p.encode("abc a")
print(ids, p.decode(ids))
"""


@pytest.mark.parametrize("case", sorted(bench_cases()))
def test_sentencepiece_crashes_or_refuses(tmp_path: Path, case: str) -> None:
    """With sentencepiece before 0.2.3 the child dies by a signal; from 0.2.3 the load is refused. Never a
    clean load and encode."""
    spm = pytest.importorskip("sentencepiece")
    ((name, data),) = bench_cases()[case].items()
    path = tmp_path / name
    path.write_bytes(data)
    run = subprocess.run([sys.executable, "-c", _LOAD, str(path)], capture_output=True, timeout=120)
    old = tuple(int(x) for x in spm.__version__.split(".")[:3]) < (0, 2, 3)
    if old:
        assert run.returncode < 0, run
    else:
        assert run.returncode == 1 and b"RuntimeError" in run.stderr, run
