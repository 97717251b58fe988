"""Large JSON documents read in bounded memory.

``json.loads`` builds every value of a document: a ``tokenizer.json`` or ``vocab.json`` of two million tokens takes
more than 600 MB as Python objects. The checks never judge a vocabulary's tokens or a BPE merge list (see
``keras._TOKENIZER_DATA``), so a document over :data:`LARGE_JSON` bytes is parsed here: the same JSON grammar as
``json.loads`` (``NaN`` and ``Infinity`` included, the last of duplicate keys kept), with the flat runs of a
vocabulary or merge list (``"token": id``, ``"a b"``, ``["a", "b"]``, ``["piece", score]`` at ``model.vocab`` and
``model.merges``, and at the top of a ``*vocab.json``) validated and counted but not built. A run whose text may
decode to Jinja markup is built, so the template search sees it as before. Everything else is built, up to
:data:`MAX_LARGE_OBJECTS` estimated bytes of objects; past that the document is unverified (the bound is named).
"""

from __future__ import annotations

import codecs
import json
import re
from typing import Any, Final

from loopwarden.checks.interface import ResourceLimitExceeded

__all__ = ["LARGE_JSON", "MAX_LARGE_OBJECTS", "parse_large"]

LARGE_JSON: Final = 4 << 20
"""Documents up to this size are parsed by ``json.loads`` (a few tens of MB of objects at most)."""
MAX_LARGE_OBJECTS: Final = 128 << 20
"""Estimated bytes of the Python objects built for one large document: :data:`_VALUE_COST` a value,
:data:`_CONTAINER_COST` an object or array, plus the length of each string."""
_VALUE_COST: Final = 64
_CONTAINER_COST: Final = 224
_MAX_DEPTH: Final = 1000
_RUN: Final = 1024

_WS: Final = rb"[ \t\n\r]*"
_STR: Final = rb'"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*"'
_NUM: Final = rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|NaN|-?Infinity"
_TOKEN: Final = re.compile(_WS + rb"(?:(" + _STR + rb")|(" + _NUM + rb")|(true|false|null)|([{}\[\]:,]))")
_END: Final = re.compile(_WS + rb"\Z")
_DICT_RUN: Final = re.compile(
    rb"(?:" + _WS + _STR + _WS + rb":" + _WS + rb"(?:" + _NUM + rb")" + _WS + rb",){1,%d}" % _RUN
)
"""Entries ``"token": id,`` of a vocabulary (each followed by a comma: the last entry is parsed one by one)."""
_LIST_RUN: Final = re.compile(
    rb"(?:"
    + _WS
    + rb"(?:"
    + _STR
    + rb"|\["
    + _WS
    + _STR
    + _WS
    + rb","
    + _WS
    + rb"(?:"
    + _STR
    + rb"|"
    + _NUM
    + rb")"
    + _WS
    + rb"\])"
    + _WS
    + rb",){1,%d}" % _RUN
)
"""Items of a merge list (``"a b"``, ``["a", "b"]``) or of a Unigram vocabulary (``["piece", score]``)."""
_MARKUP: Final = re.compile(rb"(?:\{|\\u007[bB])(?:[{%]|\\u007[bB]|\\u0025)")
_BULK: Final = frozenset({("model", "vocab"), ("model", "merges")})
_CONSTANTS: Final = {b"true": True, b"false": False, b"null": None}
_FLOATS: Final = {b"NaN": float("nan"), b"Infinity": float("inf"), b"-Infinity": float("-inf")}

# parser states
_VALUE, _FIRST_VALUE, _KEY, _FIRST_KEY, _COLON, _NEXT = range(6)


def parse_large(data: bytes, *, vocabulary: bool = False) -> Any:
    """Parse a JSON document (UTF-8, or UTF-16/32 transcoded to it) as ``json.loads`` does, leaving out the
    flat vocabulary and merge runs (``vocabulary``: the document itself is a vocabulary, its top-level object is
    such a run). Raises ValueError (not decodable or not JSON, as ``json.loads`` would), RecursionError (nested
    too deeply) or ResourceLimitExceeded (more than :data:`MAX_LARGE_OBJECTS` bytes of objects to build)."""
    encoding = json.detect_encoding(data)
    if encoding in ("utf-8", "utf-8-sig"):
        _check_utf8(data)
    else:
        data = _to_utf8(data, encoding)
    return _Parser(data, vocabulary).parse()


def _to_utf8(data: bytes, encoding: str) -> bytes:
    """UTF-16 or UTF-32 text (which ``json.loads`` decodes, with ``surrogatepass``) as UTF-8, a chunk at a time:
    never larger than the original, and no text object of the whole."""
    decoder = codecs.getincrementaldecoder(encoding)("surrogatepass")
    view = memoryview(data)
    out = bytearray()
    for start in range(0, len(data), 1 << 20):
        out += decoder.decode(view[start : start + (1 << 20)]).encode("utf-8", "surrogatepass")
    out += decoder.decode(b"", final=True).encode("utf-8", "surrogatepass")
    return bytes(out)


def _check_utf8(data: bytes) -> None:
    """Raise UnicodeDecodeError where ``json.loads`` would (it decodes the whole text with ``surrogatepass``),
    without holding the decoded text."""
    decoder = codecs.getincrementaldecoder("utf-8")("surrogatepass")
    view = memoryview(data)
    for start in range(0, len(data), 1 << 20):
        decoder.decode(view[start : start + (1 << 20)])
    decoder.decode(b"", final=True)


def _string(token: bytes) -> str:
    if b"\\" in token:
        value: str = json.loads(token.decode("utf-8", "surrogatepass"))
        return value
    return token[1:-1].decode("utf-8", "surrogatepass")


def _number(token: bytes) -> int | float:
    if token in _FLOATS:
        return _FLOATS[token]
    if b"." in token or b"e" in token or b"E" in token:
        return float(token)
    return int(token)


class _Parser:
    def __init__(self, data: bytes, vocabulary: bool) -> None:
        self.data = data
        self.pos = 3 if data.startswith(codecs.BOM_UTF8) else 0
        self.vocabulary = vocabulary
        self.cost = 0

    def _count(self, values: int = 1, text: int = 0) -> None:
        self.cost += values * _VALUE_COST + text
        if self.cost > MAX_LARGE_OBJECTS:
            raise ResourceLimitExceeded(
                "max_large_json_objects",
                f"JSON document over {LARGE_JSON} bytes would build more than {MAX_LARGE_OBJECTS} bytes of "
                "objects besides its vocabulary and merges",
            )

    def _bulk(self, path: tuple[str, ...] | None) -> bool:
        return path in _BULK or (self.vocabulary and path == ())

    def _run(self, container: dict[str, Any] | list[Any], bulk: bool) -> bool:
        """Consume one run of flat entries at the position. Outside a vocabulary (``bulk`` False) it is built by
        ``json.loads`` (the speed of the C parser for flat objects anywhere); in one, only when it may hold
        markup."""
        pattern = _DICT_RUN if type(container) is dict else _LIST_RUN
        m = pattern.match(self.data, self.pos)
        if m is None:
            return False
        run = m.group()
        if not bulk or ((b"{" in run or b"\\u007" in run) and _MARKUP.search(run) is not None):
            text = run[:-1].decode("utf-8", "surrogatepass")
            if isinstance(container, dict):
                part = json.loads("{" + text + "}")
                self._count(2 * len(part), len(run))
                container.update(part)
            else:
                items = json.loads("[" + text + "]")
                self._count(3 * len(items), len(run))
                container.extend(items)
        self.pos = m.end()
        return True

    def parse(self) -> Any:
        data = self.data
        # frames: (container, its path below the top (None deeper than two levels), pending key)
        stack: list[list[Any]] = []
        state = _VALUE
        root: Any = None
        done = False
        while not done:
            if stack and state in (_FIRST_KEY, _KEY, _FIRST_VALUE, _VALUE):
                bulk = self._bulk(stack[-1][1])
                while self._run(stack[-1][0], bulk):
                    state = _KEY if state in (_FIRST_KEY, _KEY) else _VALUE
            m = _TOKEN.match(data, self.pos)
            if m is None:
                raise ValueError(f"not JSON at byte {self.pos}")
            self.pos = m.end()
            string, number, constant, punct = m.groups()
            value: Any = None
            complete = False
            if state in (_FIRST_KEY, _KEY):
                if string is not None:
                    self._count(0, len(string))
                    stack[-1][2] = _string(string)
                    state = _COLON
                    continue
                if punct == b"}" and state == _FIRST_KEY:
                    value = stack.pop()[0]
                    complete = True
                else:
                    raise ValueError(f"expected a key at byte {m.start()}")
            elif state == _COLON:
                if punct != b":":
                    raise ValueError(f"expected ':' at byte {m.start()}")
                state = _VALUE
                continue
            elif state == _NEXT:
                frame = stack[-1]
                is_dict = type(frame[0]) is dict
                if punct == b",":
                    state = _KEY if is_dict else _VALUE
                    continue
                if punct == (b"}" if is_dict else b"]"):
                    value = stack.pop()[0]
                    complete = True
                else:
                    raise ValueError(f"expected ',' at byte {m.start()}")
            else:  # a value (or the end of an empty list)
                if string is not None:
                    self._count(0, len(string))
                    value = _string(string)
                elif number is not None:
                    value = _number(number)
                elif constant is not None:
                    value = _CONSTANTS[constant]
                elif punct == b"]" and state == _FIRST_VALUE:
                    value = stack.pop()[0]
                    complete = True
                elif punct in (b"{", b"["):
                    if len(stack) >= _MAX_DEPTH:
                        raise RecursionError("nested too deeply")
                    self._count(0, _CONTAINER_COST)
                    path = self._child_path(stack)
                    container: Any = {} if punct == b"{" else []
                    stack.append([container, path, None])
                    state = _FIRST_KEY if punct == b"{" else _FIRST_VALUE
                    continue
                else:
                    raise ValueError(f"expected a value at byte {m.start()}")
                if not complete:
                    self._count()
            # a value is complete: store it in its parent
            if not stack:
                root = value
                done = True
                continue
            parent = stack[-1]
            if type(parent[0]) is dict:
                parent[0][parent[2]] = value
            else:
                parent[0].append(value)
            state = _NEXT
        if _END.match(data, self.pos) is None:
            raise ValueError(f"extra data at byte {self.pos}")
        return root

    @staticmethod
    def _child_path(stack: list[list[Any]]) -> tuple[str, ...] | None:
        if not stack:
            return ()
        parent = stack[-1]
        path = parent[1]
        if path is None or len(path) >= 2 or type(parent[0]) is not dict:
            return None
        return (*path, parent[2])
