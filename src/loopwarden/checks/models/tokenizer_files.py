"""Tokenizer files that crash or hang their loader: a ``tokenizer.json`` read by ``tokenizers`` (Rust) and tiktoken
rank files (``*.tiktoken``, a ``tokenizer.model`` in that format) read by ``tiktoken.load.load_tiktoken_bpe`` and
transformers' tiktoken conversion.

Nothing here runs code; a file that makes the loader abort, panic or spin is not what a writer produces and is
``unverified`` (as the SentencePiece charsmaps of :mod:`sentencepiece`), naming the field and the bound.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any, Final

from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.domain import Location

__all__ = ["check_tiktoken", "check_tokenizer_json", "looks_tiktoken", "tokenizer_document"]

MAX_PADDED: Final = 1 << 20
"""Positions a ``padding`` may pad each encoding to (``Fixed`` length or ``pad_to_multiple_of``). tokenizers 0.23
allocates them per encoding: 10**12 aborts the process (``memory allocation ... failed``), 2*10**8 runs for
minutes; a real tokenizer.json pads to a model's context at most."""
_SPECIALS: Final = 4
"""Tokens a post-processor may add (``[CLS] A [SEP] B [SEP]``, ``<s> A </s></s> B </s>``): tokenizers truncates to
``max_length`` minus those before it checks ``stride``."""
_TOKENIZER_KEYS: Final = frozenset(
    {"added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder", "truncation", "padding"}
)
_MAX_WALK: Final = 10_000
MAX_TIKTOKEN_LINES: Final = 1 << 20
"""Lines of a rank file read (real ones hold 100,000 to 200,000; tiktoken's largest, o200k, 199,998)."""
MAX_TIKTOKEN_TOKEN: Final = 4096
"""Bytes of one token. transformers' ``TikTokenConverter`` (``generate_vocab_and_merges``) slices every token at
every position and looks the halves up: time quadratic in its length (a 1 MB token: about 10**12 byte copies)."""
_TIKTOKEN_LINE: Final = re.compile(rb"[A-Za-z0-9+/]*={0,2} [0-9]+\r?\n?")


def tokenizer_document(obj: Any) -> bool:
    """Whether a JSON document is a ``tokenizers`` serialization (``Tokenizer.from_file`` reads any file name;
    transformers' ``tokenizer_file`` may name one): an object with a ``model`` object and the pipeline keys."""
    return (
        isinstance(obj, dict) and isinstance(obj.get("model"), dict) and not _TOKENIZER_KEYS.isdisjoint(obj)
    )


def check_tokenizer_json(obj: dict[str, Any], ctx: ScanContext, location: Location) -> None:
    """Fields of a tokenizer.json that abort, panic or hang ``tokenizers`` (0.23.3) at load or at its first
    ``encode``: padding to an unbounded length, a truncation stride not below its length, a normalizer,
    pre-tokenizer or decoder regex whose match backtracks without bound, a precompiled charsmap it cannot read."""
    problems: list[str] = []
    padding = obj.get("padding")
    if isinstance(padding, dict):
        strategy = padding.get("strategy")
        fixed = strategy.get("Fixed") if isinstance(strategy, dict) else None
        for what, value in (
            ("strategy Fixed", fixed),
            ("pad_to_multiple_of", padding.get("pad_to_multiple_of")),
        ):
            if type(value) is int and value > MAX_PADDED:
                problems.append(
                    f"padding {what} is {value} (over {MAX_PADDED}): tokenizers allocates that many positions "
                    "per encoding (aborts or runs for minutes)"
                )
    truncation = obj.get("truncation")
    if isinstance(truncation, dict):
        length, stride = truncation.get("max_length"), truncation.get("stride")
        specials = _SPECIALS if obj.get("post_processor") is not None else 0
        if type(length) is int and type(stride) is int and stride > 0 and stride >= length - specials:
            problems.append(
                f"truncation stride {stride} is not below max_length {length} less the special tokens: "
                "tokenizers panics on every input longer than that"
            )
    for key in ("normalizer", "pre_tokenizer", "decoder"):
        problems.extend(_pipeline_problems(key, obj.get(key)))
    for problem in problems:
        ctx.fail(location, f"tokenizer.json {problem}")


def _pipeline_problems(key: str, node: Any) -> list[str]:
    """The regexes and charsmaps of one pipeline step, its ``Sequence`` members included."""
    out: list[str] = []
    stack: list[tuple[str, Any]] = [(key, node)]
    seen = 0
    while stack and seen < _MAX_WALK:
        path, cur = stack.pop()
        seen += 1
        if isinstance(cur, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(cur))
            continue
        if not isinstance(cur, dict):
            continue
        pattern = cur.get("pattern")
        regex = pattern.get("Regex") if isinstance(pattern, dict) else None
        if isinstance(regex, str) and (why := regex_problem(regex)):
            out.append(f"{path} regex '{regex[:100]}' {why}: Oniguruma's retry limit makes tokenizers panic")
        if cur.get("type") == "Precompiled" and "precompiled_charsmap" in cur:
            why = _precompiled_problem(cur["precompiled_charsmap"])
            if why:
                out.append(f"{path} {why}")
        stack.extend((f"{path}.{k}", v) for k, v in cur.items() if isinstance(v, dict | list))
    if stack:
        out.append(f"{key} has more than {_MAX_WALK} steps")
    return out


def _precompiled_problem(value: Any) -> str | None:
    """tokenizers (``normalizers.Precompiled``) panics on a charsmap it cannot parse and on a trie that sends the
    walk outside itself (the checks of :mod:`sentencepiece`)."""
    from loopwarden.checks.models.sentencepiece import charsmap_problem

    if value is None:
        return None
    if not isinstance(value, str):
        return "precompiled_charsmap is not base64 text"
    try:
        blob = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "precompiled_charsmap is not base64 (tokenizers panics)"
    if len(blob) < 4 or int.from_bytes(blob[:4], "little") + 4 > len(blob):
        return "precompiled_charsmap cannot be parsed (tokenizers panics)"
    return charsmap_problem(blob)


_REPEAT: Final = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")


def regex_problem(pattern: str) -> str | None:
    """Why a regex may backtrack without bound: a repeated group (``*``, ``+``, ``{n,}``, ``{n,m}`` with m > 1)
    whose body repeats a variable number of times (``(a+)+``, ``(a{1,9}){9}``; a fixed ``(a{1000}){1000}``
    matches one way) or has alternatives that begin alike (``(a|aa)+``; ``(\\r\\n|\\n)+`` does not). The split
    patterns of real tokenizers (GPT-2, cl100k, o200k, Llama 3, Qwen, DeepSeek, BLOOM) repeat only single
    characters and classes."""
    # per open group: [whether its body may match one text in several ways, the first atom of each alternative]
    groups: list[list[Any]] = [[False, [None]]]
    last_group: bool | None = None  # the body flag of the group just closed, if the last atom was a group
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        start = i
        if c == "\\":
            i += 2
            if i <= n and pattern[i - 1] in "pPxkg" and i < n and pattern[i] == "{":
                end = pattern.find("}", i)
                i = n if end < 0 else end + 1
            _first(groups, pattern[start:i])
            last_group = None
            continue
        if c == "[":
            i = _class_end(pattern, i)
            _first(groups, pattern[start:i])
            last_group = None
            continue
        if c == "(":
            _first(groups, "(")
            groups.append([False, [None]])
            i = _group_body(pattern, i + 1)
            last_group = None
            continue
        if c == ")":
            body, alts = groups.pop() if len(groups) > 1 else (False, [None])
            firsts = [a for a in alts if a is not None]
            body = body or len(set(firsts)) < len(firsts)
            if body:
                groups[-1][0] = True  # the enclosing group's body holds it
            i += 1
            last_group = body
            continue
        if c == "|":
            groups[-1][1].append(None)
            last_group = None
            i += 1
            continue
        repeat = variable = False
        if c in "*+":
            repeat = variable = True
            i += 1
        elif c == "{" and (m := _REPEAT.match(pattern, i)):
            lo, comma, hi = m.groups()
            low = int(lo or 0)
            high = None if comma and not hi else int(hi) if comma else low
            repeat = high is None or high > 1
            variable = high is None or high > low
            i = m.end()
        elif c == "?":
            i += 1
            last_group = None
            continue
        else:
            i += 1
            _first(groups, c)
            last_group = None
            continue
        if repeat:
            if last_group:
                return "repeats a group that can match one text in several ways"
            groups[-1][0] = groups[-1][0] or variable
            if i < n and pattern[i] in "+?":
                i += 1  # possessive or lazy
        last_group = None
    return None


def _first(groups: list[list[Any]], atom: str) -> None:
    alts = groups[-1][1]
    if alts[-1] is None:
        alts[-1] = atom


def _group_body(pattern: str, i: int) -> int:
    """The index of a group's body after its opening ``(`` (``(?:``, ``(?=``, ``(?<!``, ``(?<name>``, ``(?i:``)."""
    if not pattern.startswith("?", i):
        return i
    i += 1
    if pattern[i : i + 1] in ("=", "!", ">"):
        return i + 1
    if pattern.startswith(("<=", "<!"), i):
        return i + 2
    if pattern[i : i + 1] in ("<", "'", "P"):
        end = pattern.find(">" if pattern[i] != "'" else "'", i + 1)
        return len(pattern) if end < 0 else end + 1
    while i < len(pattern) and (pattern[i].isalpha() or pattern[i] == "-"):
        i += 1
    return i + 1 if pattern.startswith(":", i) else i


def _class_end(pattern: str, i: int) -> int:
    """The index after the character class opening at ``i`` (Oniguruma nests classes: ``[a-z&&[^aeiou]]``)."""
    depth = 0
    j = i
    n = len(pattern)
    while j < n:
        c = pattern[j]
        if c == "\\":
            j += 2
            continue
        if c == "[":
            depth += 1
            j += 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1  # a leading ']' is a literal
            continue
        if c == "]":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return n


def looks_tiktoken(head: bytes) -> bool:
    """A tiktoken rank file: lines of a base64 token, a space and a decimal rank (the first four lines, or all of
    a shorter file, are such lines)."""
    lines = head.split(b"\n")[:5]
    if len(lines) > 4:
        lines = lines[:4]
    elif lines and not lines[-1]:
        lines.pop()
    return bool(lines) and all(_TIKTOKEN_LINE.fullmatch(line + b"\n") for line in lines)


def check_tiktoken(blob: Blob, ctx: ScanContext) -> None:
    """A rank file as ``load_tiktoken_bpe`` reads it (``{b64decode(token): int(rank) for token, rank in
    (line.split() for line in contents.splitlines() if line)}``), judged as tiktoken 0.14 and transformers'
    conversion use it: ranks given to two tokens make tiktoken's ``CoreBPE`` panic, a missing single byte makes
    ``encode`` panic on text holding it, a rank past 2**32-1 or a line that does not parse is refused, a token
    longer than :data:`MAX_TIKTOKEN_TOKEN` stalls the conversion. Read line by line."""
    ranks: dict[bytes, int] = {}
    problem = None
    count = 0
    for number, line in enumerate(_lines(blob), 1):
        if line is None:
            problem = (
                f"line {number} is over {_MAX_LINE} bytes (a token over {MAX_TIKTOKEN_TOKEN} bytes: "
                "transformers' tiktoken conversion takes time quadratic in it)"
            )
            break
        line = line.strip()
        if not line:
            continue
        count += 1
        if count > MAX_TIKTOKEN_LINES:
            ctx.fail(blob.location, f"tiktoken rank file has more than {MAX_TIKTOKEN_LINES} lines")
            return
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError
            token = base64.b64decode(parts[0])
            rank = int(parts[1])
        except (ValueError, binascii.Error):
            problem = f"line {number} is not a base64 token and a rank (tiktoken refuses the file)"
            break
        if not 0 <= rank < 1 << 32:
            problem = f"line {number} has rank {rank}, outside 0..2**32-1 (tiktoken refuses the file)"
            break
        if len(token) > MAX_TIKTOKEN_TOKEN:
            problem = (
                f"line {number} holds a token of {len(token)} bytes (over {MAX_TIKTOKEN_TOKEN}): transformers' "
                "tiktoken conversion takes time quadratic in it"
            )
            break
        ranks[token] = rank
    if problem is None and ranks:
        if len(set(ranks.values())) != len(ranks):
            problem = "gives one rank to two tokens: tiktoken's CoreBPE panics"
        else:
            missing = sum(1 for b in range(256) if bytes((b,)) not in ranks)
            if missing:
                problem = (
                    f"lacks {missing} of the 256 single-byte tokens: tiktoken's encode panics on text holding "
                    "one"
                )
    if problem is not None:
        ctx.fail(blob.location, f"tiktoken rank file {problem}")


_MAX_LINE: Final = 4 * MAX_TIKTOKEN_TOKEN
_CHUNK: Final = 1 << 20


def _lines(blob: Blob) -> Iterator[bytes | None]:
    """The lines of ``blob`` read in chunks; None for a line over :data:`_MAX_LINE` bytes (then stops)."""
    pending = b""
    with blob.open() as f:
        while chunk := f.read(_CHUNK):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            yield from lines
            if len(pending) > _MAX_LINE:
                yield None
                return
    if pending:
        yield pending if len(pending) <= _MAX_LINE else None
