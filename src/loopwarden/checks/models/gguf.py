"""GGUF: header, versions 1-3 (little- or big-endian), bounded key/value parsing, tensor-info sanity, chat templates
analysed."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, BinaryIO, Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.checks.models.codestr import check_metadata_value
from loopwarden.checks.models.dispatch import seekable_blob
from loopwarden.domain import Location, Severity

__all__ = ["scan_gguf"]

_SCALAR: Final[dict[int, str]] = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_UINT32: Final = 4
_STRING: Final = 8
_ARRAY: Final = 9
_MAX_COUNT: Final = 1 << 24
_MAX_KEEP: Final = 16 << 20
_MAX_KEPT_ITEMS: Final = 4096
_TEMPLATE_NAMES: Final = "tokenizer.chat_templates"
_VOCABULARY: Final = frozenset({"tokenizer.ggml.tokens", "tokenizer.ggml.merges"})
"""The tokenizer's vocabulary and merge rules: hundreds of thousands of token strings that only the tokenizer
reads; every other array of strings is judged for Python code like a scalar string (LW-MODEL-047)."""
_MAX_DIMS: Final = 4
_ARCHITECTURE: Final = "general.architecture"
_ARCH_RENAMES: Final[tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = (
    (("llama",), ("mistral",)),
    (("t5", "t5encoder"), ("t5", "umt5")),
    (("qwen2moe",), ("qwen2_moe",)),
    (("gpt_oss", "gpt-oss"), ("gpt_oss",)),
    (("qwen3moe",), ("qwen3_moe",)),
    (("minimax-m2",), ("minimax_m2",)),
)
"""transformers' ``load_gguf_checkpoint`` renames the architecture: an architecture containing one of the first
names becomes (depending on ``general.name`` and on which rule comes last) one of the second. It then rewrites
every metadata string with ``str.replace(architecture, renamed)``, the chat template included, so the
template it returns (the one transformers 4.x tokenizers render) is not the text stored in the file."""
_TOKENS: Final = "tokenizer.ggml.tokens"
_VOCAB_ARRAYS: Final[dict[str, int]] = {"tokenizer.ggml.scores": 6, "tokenizer.ggml.token_type": 5}
"""Per-token arrays and the element type llama.cpp reads them as (float32 scores, int32 types): it casts the array's
data to that type and indexes it by token id, whatever the file declares (llama.cpp PR 20735, issue 24888)."""
_BYTE_TOKEN: Final = 6
"""llama.cpp's token type BYTE: a ``<0xNN>`` token standing for one byte."""
_MAX_LAYERS: Final = 512
"""LLAMA_MAX_LAYERS: llama.cpp's per-layer hyperparameters are arrays of this size, indexed up to block_count."""
_DEFAULT_SPECIAL: Final[dict[str, dict[str, int]]] = {
    "llama": {"bos": 1, "eos": 2, "unknown": 0},
    "gpt2": {"bos": 11, "eos": 11},
    "bert": {"bos": 101, "unknown": 100, "seperator": 102, "padding": 0, "mask": 103},
    "t5": {"eos": 1, "unknown": 2, "padding": 0},
    # PLaMo-2's tokenizer has defaults too (bos 1, eos 2, unk 0, pad 3): the same class, missing from this table
    "plamo2": {"bos": 1, "eos": 2, "unknown": 0, "padding": 3},
}
"""The special-token ids llama.cpp assumes for a tokenizer model (SPM bos 1/eos 2/unk 0, GPT-2 bos/eos 11, BERT
cls 101/unk 100/sep 102/pad 0/mask 103, T5 eos 1/unk 2/pad 0, PLaMo-2 bos 1/eos 2/unk 0/pad 3), by the
``tokenizer.ggml.<name>_token_id`` key that replaces each: a default the file does not replace and that is past a
smaller vocabulary is read past its end (GHSA-g4cc-763q-h9h6; llama.cpp PR 25508)."""
_HEX: Final = frozenset(b"0123456789abcdefABCDEF")
# ggml tensor types: (elements per block, bytes per block), from the GGUF/ggml format specification
_GGML_BLOCKS: Final[dict[int, tuple[int, int]]] = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 40),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
    40: (64, 36),
    41: (128, 18),
}


class _BadError(Exception):
    pass


class _Cursor:
    def __init__(self, f: BinaryIO, size: int, v1: bool, order: str = "<") -> None:
        self.f = f
        self.size = size
        self.v1 = v1
        self.order = order
        """struct byte order of every number in the file: '<', or '>' for gguf-py's big-endian files."""
        self.buf = b""
        self.bpos = 0
        self.base = 0  # file offset of buf[0]
        self.too_long = 0
        """The length of the last string :meth:`string` was asked to keep and skipped as longer than _MAX_KEEP."""

    @property
    def pos(self) -> int:
        return self.base + self.bpos

    def read(self, n: int) -> bytes:
        if self.pos + n > self.size:
            raise _BadError(f"value of {n} bytes at offset {self.pos} runs past the end of the file")
        if self.bpos + n > len(self.buf):
            self.f.seek(self.pos)
            self.base = self.pos
            self.buf = self.f.read(max(n, 1 << 16))
            self.bpos = 0
        out = self.buf[self.bpos : self.bpos + n]
        self.bpos += n
        return out

    def skip(self, n: int) -> None:
        if self.pos + n > self.size:
            raise _BadError(f"value of {n} bytes at offset {self.pos} runs past the end of the file")
        if self.bpos + n <= len(self.buf):
            self.bpos += n
        else:
            self.base, self.buf, self.bpos = self.pos + n, b"", 0

    def u32(self) -> int:
        return int(struct.unpack(self.order + "I", self.read(4))[0])

    def u64(self) -> int:
        return int(struct.unpack(self.order + "Q", self.read(8))[0])

    def count(self) -> int:
        return self.u32() if self.v1 else self.u64()

    def string(self, keep: bool, strict: bool = True) -> str | None:
        n = self.count()
        if n > self.size:
            raise _BadError(f"string length {n} at offset {self.pos} exceeds the file")
        self.too_long = n if keep and n > _MAX_KEEP else 0
        if keep and n <= _MAX_KEEP:
            try:
                return self.read(n).decode("utf-8")
            except UnicodeDecodeError as exc:
                if not strict:
                    return None
                raise _BadError(f"string at offset {self.pos - n} is not UTF-8") from exc
        self.skip(n)
        return None


class _Vocab:
    """What llama.cpp's vocabulary loader indexes by token id, gathered while the keys are parsed and judged
    afterwards (the keys come in any order): the per-token arrays must hold one element of the expected type per
    token, special-token ids must name a token, and a byte token must spell a byte."""

    def __init__(self) -> None:
        self.n_tokens: int | None = None
        self.odd_bytes: list[int] = []
        self.arrays: dict[str, int] = {}
        self.special: dict[str, int] = {}
        self.replaced: set[str] = (
            set()
        )  # special-token keys given as UINT32, the type llama.cpp reads them as
        self.model: str | None = None

    def check(self, f: BinaryIO, v1: bool, ctx: ScanContext, loc: Location, order: str = "<") -> None:
        n = self.n_tokens
        if n is None:
            return  # no vocabulary: llama.cpp loads none (or refuses the model)
        head = order + ("II" if v1 else "IQ")
        types: tuple[int, int] | None = None  # (element type, data offset) of token_type
        for key, pos in self.arrays.items():
            f.seek(pos)
            etype, count = struct.unpack(head, f.read(struct.calcsize(head)))
            if etype != _VOCAB_ARRAYS[key] or count != n:
                # llama.cpp reads it as n elements of its own type: past the end of a shorter or narrower array
                # (llama.cpp PR 20735, issue 24888, PR 26690)
                ctx.add(
                    rules.GgufInvalid,
                    f"{key} holds {count} elements of type {etype} for {n} tokens "
                    f"(llama.cpp reads {n} of type {_VOCAB_ARRAYS[key]})",
                    loc,
                )
            elif key == "tokenizer.ggml.token_type":
                types = (etype, pos + struct.calcsize(head))
        if types is not None:
            for i in self.odd_bytes[:16]:
                f.seek(types[1] + 4 * i)
                (ttype,) = struct.unpack(order + "i", f.read(4))
                if ttype == _BYTE_TOKEN:
                    # PLaMo-2's tokenizer indexed a 256-entry table with the parsed number: "<0x-1>" wrote before
                    # it (llama.cpp PR 25969, issue 27226); other byte parsers throw
                    ctx.add(rules.GgufInvalid, f"byte token {i} is not spelled <0xNN> with hex digits", loc)
                    break
        for key, tid in sorted(self.special.items()):
            if not 0 <= tid < n and tid not in (-1, 0xFFFFFFFF):
                # indexed into the token table unchecked by llama.cpp versions up to mid-2026
                # (GHSA-g4cc-763q-h9h6; llama.cpp PR 25475)
                ctx.add_severity(
                    rules.GgufInvalid,
                    Severity.MEDIUM,
                    f"{key} is {tid}, outside the vocabulary of {n} tokens",
                    loc,
                )
        # llama.cpp starts from the tokenizer model's default ids and replaces each with the file's UINT32 key
        # when that id is inside the vocabulary; a key of another type makes the loader refuse the file, and an id
        # past the vocabulary keeps the default ("bad special token ... using default id"). Only a default that
        # stays is read: a small vocabulary whose file names every defaulted id inside it (as gguf-py writes a
        # tiny model's) is not read past its end, and one that leaves any of them out still is.
        kept = [
            tid
            for name, tid in _DEFAULT_SPECIAL.get(self.model or "", {}).items()
            if not (
                f"tokenizer.ggml.{name}_token_id" in self.replaced
                and 0 <= self.special[f"tokenizer.ggml.{name}_token_id"] < n
            )
        ]
        if kept and n <= max(kept):
            ctx.add(
                rules.GgufInvalid,
                f"vocabulary of {n} tokens is smaller than the special-token ids llama.cpp assumes for a "
                f"'{self.model}' tokenizer",
                loc,
            )


def _too_long(key: str, n: int) -> str:
    return (
        f"metadata '{key[:100]}' holds a string of {n} bytes, more than the {_MAX_KEEP} bytes read to judge it "
        "as code"
    )


def _too_large() -> str:
    return f"chat template longer than {_MAX_KEEP} bytes is not analysed (bound on kept strings)"


def _value(
    cur: _Cursor, vtype: int, keep: bool, depth: int = 0, judge: Callable[[str | None], None] | None = None
) -> Any:
    """A scalar, a string (when ``keep`` and it is at most _MAX_KEEP bytes, else None), or, for an array of
    strings when ``keep``, the list of them (None for one too long); other arrays are skipped (None). Without
    ``keep``, each string of an array (nested ones included) is handed to ``judge``, when given (None for one
    longer than _MAX_KEEP)."""
    if vtype in _SCALAR:
        fmt = cur.order + _SCALAR[vtype]
        return struct.unpack(fmt, cur.read(struct.calcsize(fmt)))[0]
    if vtype == _STRING:
        return cur.string(keep)
    if vtype == _ARRAY:
        if depth > 2:
            raise _BadError("arrays nested too deeply")
        etype = cur.u32()
        n = cur.count()
        if n > _MAX_COUNT and n > cur.size:
            raise _BadError(f"array of {n} elements exceeds the file")
        if etype in _SCALAR:
            cur.skip(n * struct.calcsize("<" + _SCALAR[etype]))
            return None
        if etype not in (_STRING, _ARRAY):
            raise _BadError(f"unknown array element type {etype}")
        if keep and etype == _STRING and n <= _MAX_KEPT_ITEMS:
            return [cur.string(True) for _ in range(n)]
        if judge is not None and etype == _STRING:
            for _ in range(n):
                item = cur.string(True, strict=False)
                if item is not None:
                    judge(item)
                elif cur.too_long:
                    judge(None)
            return None
        for _ in range(n):
            _value(cur, etype, False, depth + 1, judge)
        return None
    raise _BadError(f"unknown value type {vtype}")


def _tokens(cur: _Cursor) -> tuple[int, list[int]]:
    """Read ``tokenizer.ggml.tokens`` (after its value type): the number of tokens, and the ids of those spelled
    ``<0x??>`` whose two characters are not hex digits (a byte token's text that llama.cpp parses as a number)."""
    etype = cur.u32()
    n = cur.count()
    if etype != _STRING:
        raise _BadError(f"{_TOKENS} is an array of type {etype}, not of strings")
    if n > _MAX_COUNT and n > cur.size:
        raise _BadError(f"array of {n} elements exceeds the file")
    odd: list[int] = []
    for i in range(n):
        ln = cur.count()
        if ln == 6:
            text = cur.read(6)
            if text[:3] == b"<0x" and text[5:] == b">" and not (text[3] in _HEX and text[4] in _HEX):
                odd.append(i)
        elif ln > cur.size:
            raise _BadError(f"string length {ln} at offset {cur.pos} exceeds the file")
        else:
            cur.skip(ln)
    return n, odd


def scan_gguf(blob: Blob, ctx: ScanContext) -> None:
    blob = seekable_blob(blob, ctx)
    loc = blob.location
    size = blob.size or 0
    with blob.open() as f:
        try:
            _parse(f, size, ctx, loc)
        except _BadError as exc:
            ctx.add(rules.GgufInvalid, str(exc), loc)
            ctx.fail(loc, f"GGUF: {exc}")
        except struct.error as exc:
            ctx.fail(loc, f"GGUF truncated ({exc})")


def _parse(f: BinaryIO, size: int, ctx: ScanContext, loc: Location) -> None:
    head = f.read(8)
    if len(head) < 8:
        raise _BadError("header truncated")
    (version,) = struct.unpack_from("<I", head, 4)
    order = "<"
    if version not in (1, 2, 3) and struct.unpack_from(">I", head, 4)[0] in (2, 3):
        # gguf-py writes big-endian files (GGUFEndian.BIG, for s390x hosts), every number big-endian, and its
        # reader reads them on any host (transformers' GGUF loading): parsed and judged like the others
        order, version = ">", struct.unpack_from(">I", head, 4)[0]
    if version not in (1, 2, 3):
        raise _BadError(f"unsupported GGUF version {version}")
    cur = _Cursor(f, size, version == 1, order)
    cur.skip(8)
    n_tensors = cur.count()
    n_kv = cur.count()
    if n_tensors > _MAX_COUNT or n_kv > _MAX_COUNT:
        raise _BadError(f"{n_tensors} tensors / {n_kv} keys exceed the bound")
    alignment = 32
    templates: list[tuple[str, str]] = []
    architectures: list[str] = []  # every general.architecture value (a duplicate key may be the one read)
    keys: set[str] = set()
    vocab = _Vocab()
    for i in range(n_kv):
        if i % 256 == 0:
            ctx.check_time()
        key = cur.string(True) or ""
        if key in keys:
            ctx.add(rules.GgufInvalid, f"duplicate metadata key '{key[:100]}'", loc)
        keys.add(key)
        vtype = cur.u32()
        if key == _TOKENS and vtype == _ARRAY:
            vocab.n_tokens, vocab.odd_bytes = _tokens(cur)
            continue
        if key in _VOCAB_ARRAYS and vtype == _ARRAY:
            vocab.arrays[key] = cur.pos  # where its element type is: read once the keys are parsed
        keep = key.startswith("tokenizer.chat_template") or key == "general.alignment"
        if vtype == _STRING and not keep:
            # any other scalar string: judged for Python code (LW-MODEL-047), read as leniently as loaders do
            val = cur.string(True, strict=False)
            if val is not None:
                check_metadata_value(key, val, ctx, loc, where="GGUF")
                if key == "tokenizer.ggml.model":
                    vocab.model = val
                elif key == _ARCHITECTURE:
                    architectures.append(val)
            elif cur.too_long:
                ctx.fail(loc, _too_long(key, cur.too_long))
            continue
        judge = None
        if vtype == _ARRAY and not keep and key not in _VOCABULARY:
            # strings in arrays are metadata as much as scalar ones (gguf-py hands both to applications)
            def judge(item: str | None, key: str = key) -> None:
                if item is None:
                    ctx.fail(loc, _too_long(key, cur.too_long))
                else:
                    check_metadata_value(key, item, ctx, loc, where="GGUF")
                    if key == _ARCHITECTURE:
                        architectures.append(item)  # transformers takes an array's first item as the name

        val = _value(cur, vtype, keep, judge=judge)
        if key == _TEMPLATE_NAMES and vtype == _ARRAY and isinstance(val, list):
            # gguf-py's list form: the names here, each template under tokenizer.chat_template.<name>. The
            # names are judged as templates too, so that nothing a renderer might take as one goes unread.
            for j, item in enumerate(val):
                if isinstance(item, str):
                    templates.append((f"{key}[{j}]", item))
                else:
                    ctx.fail(loc, f"{key}[{j}]: {_too_large()}")
        elif key.startswith("tokenizer.chat_template"):
            if isinstance(val, str):
                templates.append((key, val))
            elif vtype == _STRING:
                ctx.fail(loc, f"{key}: {_too_large()}")  # fail closed: an unread template is not clean
            else:
                ctx.add(rules.GgufInvalid, f"{key} is not a string", loc)
                if isinstance(val, list):
                    # gguf-py hands a one-item array on as its item: transformers 4.x renders it as the template
                    templates.extend(
                        (f"{key}[{j}]", item) for j, item in enumerate(val) if isinstance(item, str)
                    )
        if isinstance(val, int) and not isinstance(val, bool):
            if key.startswith("tokenizer.ggml.") and key.endswith("_token_id"):
                vocab.special[key] = val
                if vtype == _UINT32:
                    vocab.replaced.add(key)
                else:
                    vocab.replaced.discard(key)  # a duplicate key of another type: llama.cpp refuses the file
            elif key.endswith(".block_count") and val > _MAX_LAYERS:
                # llama.cpp's per-layer arrays hold 512 entries; a larger count wrote past them (PR 25821/26051)
                ctx.add(rules.GgufInvalid, f"{key} is {val}, more than llama.cpp's {_MAX_LAYERS} layers", loc)
        if key == "general.alignment":
            if not isinstance(val, int) or val <= 0 or val & (val - 1) or val > 1 << 20:
                raise _BadError(f"invalid general.alignment {val!r}")
            alignment = val
    infos: list[tuple[int, int, str]] = []
    names: set[str] = set()
    for i in range(n_tensors):
        if i % 1024 == 0:
            ctx.check_time()
        name = cur.string(True) or ""
        if name in names:
            # gguf.cpp refuses the file; a reader that keeps the first or the last of them reads other weights
            ctx.add(rules.GgufInvalid, f"duplicate tensor name '{name[:100]}'", loc)
        names.add(name)
        n_dims = cur.u32()
        if n_dims > _MAX_DIMS:
            raise _BadError(f"tensor '{name[:100]}' has {n_dims} dimensions")
        elements = 1
        for _ in range(n_dims):
            elements *= cur.count()
        gtype = cur.u32()
        if gtype not in _GGML_BLOCKS:
            raise _BadError(f"tensor '{name[:100]}' has unknown ggml type {gtype}")
        block, block_bytes = _GGML_BLOCKS[gtype]
        if elements % block:
            raise _BadError(
                f"tensor '{name[:100]}' has {elements} elements, not a multiple of its block size {block}"
            )
        offset = cur.u64()
        if offset % alignment:
            raise _BadError(f"tensor '{name[:100]}' offset {offset} is not aligned to {alignment}")
        infos.append((offset, elements // block * block_bytes, name))
    data_start = -(-cur.pos // alignment) * alignment
    for offset, nbytes, name in infos:
        if data_start + offset + nbytes > size:
            raise _BadError(
                f"tensor '{name[:100]}' data ({nbytes} bytes at {offset}) lies past the end of the file"
            )
    vocab.check(f, version == 1, ctx, loc, order)
    from loopwarden.checks.models.chat_template import check_template

    where = Location(loc.path, loc.member if loc.member else None)
    for key, text in templates:
        check_template(text, ctx, where, key=key)
        for arch, renamed in _renamed_architectures(architectures):
            if arch in text:
                check_template(
                    text.replace(arch, renamed),
                    ctx,
                    where,
                    key=f"{key} (as transformers rewrites it, '{arch[:50]}' replaced by '{renamed}')",
                )


def _renamed_architectures(architectures: list[str]) -> list[tuple[str, str]]:
    """(architecture, name transformers may rename it to) for each architecture that a rule renames (see
    _ARCH_RENAMES); every rule whose trigger matches is taken, whatever ``general.name`` says."""
    out: list[tuple[str, str]] = []
    for arch in dict.fromkeys(architectures):
        for triggers, names in _ARCH_RENAMES:
            if any(t in arch for t in triggers):
                out.extend((arch, name) for name in names if name != arch)
    return list(dict.fromkeys(out))
