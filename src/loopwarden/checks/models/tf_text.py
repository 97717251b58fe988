"""TensorFlow protobufs in text format (``saved_model.pbtxt``, a text ``model.ckpt.meta``, a ``graph.pbtxt``).

``tf.saved_model.load`` and ``tf.compat.v1.saved_model.loader.load`` read ``saved_model.pbtxt`` when a folder has
no ``saved_model.pb`` (``loader_impl.parse_saved_model``, ``text_format.Parse``); ``tf.train.import_meta_graph``
reads a meta graph file as text when it is no binary proto (``meta_graph.read_meta_graph_file``), and graph files
are read either way. The text is parsed here (protobuf's text format: fields by name, ``{}``/``<>`` messages,
``[]`` lists, quoted strings with C escapes, comments), the fields the graph check reads are re-encoded as the
binary wire format, and the result is judged as the binary file would be.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["TextProtoError", "checkpoint_state_paths", "looks_text_proto", "text_proto_readings"]

_SCHEMA: Final[dict[str, dict[str, tuple[int, str]]]] = {
    "SavedModel": {"saved_model_schema_version": (1, "int"), "meta_graphs": (2, "MetaGraphDef")},
    "MetaGraphDef": {
        "graph_def": (2, "GraphDef"),
        "saver_def": (3, "SaverDef"),
        "asset_file_def": (6, "AssetFileDef"),
        "object_graph_def": (7, "SavedObjectGraph"),
    },
    "GraphDef": {"node": (1, "NodeDef"), "library": (2, "FunctionDefLibrary")},
    "FunctionDefLibrary": {"function": (1, "FunctionDef")},
    "FunctionDef": {"signature": (1, "OpDef"), "node_def": (3, "NodeDef")},
    "OpDef": {"name": (1, "str"), "input_arg": (2, "ArgDef")},
    "ArgDef": {"name": (1, "str")},
    "NodeDef": {
        "name": (1, "str"),
        "op": (2, "str"),
        "input": (3, "str"),
        "device": (4, "str"),
        "attr": (5, "AttrEntry"),
    },
    "AttrEntry": {"key": (1, "str"), "value": (2, "AttrValue")},
    "AttrValue": {
        "list": (1, "ListValue"),
        "s": (2, "str"),
        "tensor": (8, "TensorProto"),
        "func": (10, "NameAttrList"),
    },
    "ListValue": {"s": (2, "str"), "tensor": (8, "TensorProto"), "func": (9, "NameAttrList")},
    "NameAttrList": {"name": (1, "str")},
    "TensorProto": {"dtype": (1, "int"), "string_val": (8, "str")},
    "SaverDef": {
        "filename_tensor_name": (1, "str"),
        "save_tensor_name": (2, "str"),
        "restore_op_name": (3, "str"),
    },
    "AssetFileDef": {"tensor_info": (1, "TensorInfo"), "filename": (2, "str")},
    "TensorInfo": {"name": (1, "str")},
    "SavedObjectGraph": {"nodes": (1, "SavedObject"), "concrete_functions": (2, "ConcreteEntry")},
    "ConcreteEntry": {"key": (1, "str"), "value": (2, "SavedConcreteFunction")},
    "SavedConcreteFunction": {"bound_inputs": (2, "int")},
    "SavedObject": {
        "user_object": (4, "SavedUserObject"),
        "asset": (5, "SavedAsset"),
        "constant": (9, "SavedConstant"),
    },
    "SavedUserObject": {"identifier": (1, "str"), "metadata": (3, "str")},
    "SavedAsset": {"asset_file_def_index": (1, "int")},
    "SavedConstant": {"operation": (1, "str")},
}
"""The fields of TensorFlow's protos the graph check reads (numbers as in the .proto files); others are skipped."""

_TOP: Final[dict[str, frozenset[str]]] = {
    "SavedModel": frozenset({"saved_model_schema_version", "meta_graphs"}),
    "GraphDef": frozenset({"node", "versions", "version", "library", "debug_info"}),
    "MetaGraphDef": frozenset(
        {
            "meta_info_def",
            "graph_def",
            "saver_def",
            "collection_def",
            "signature_def",
            "asset_file_def",
            "object_graph_def",
        }
    ),
}
_WEAK: Final = frozenset({"version", "versions", "debug_info"})
"""Top-level names other text (YAML, other text protos) may open with: alone they do not make a TensorFlow file."""

_TOKEN: Final = re.compile(
    r"""\s+|\#[^\n]*|(?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|(?P<word>[A-Za-z0-9_.+\-]+)"""
    r"""|(?P<sym>[{}<>:\[\],;/])""",
    re.S,
)
_ESCAPE: Final = re.compile(rb"\\(x[0-9A-Fa-f]{1,2}|[0-7]{1,3}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", re.S)
_SIMPLE: Final = {
    b"n": b"\n",
    b"t": b"\t",
    b"r": b"\r",
    b"a": b"\a",
    b"b": b"\b",
    b"f": b"\f",
    b"v": b"\v",
    b"\\": b"\\",
    b"'": b"'",
    b'"': b'"',
    b"?": b"?",
}
_MAX_DEPTH: Final = 100


class TextProtoError(ValueError):
    """The text is no protobuf text format (TensorFlow's parser refuses it too)."""


def _unescape(body: bytes) -> bytes:
    def one(m: re.Match[bytes]) -> bytes:
        e = m.group(1)
        if e[:1] == b"x":
            return bytes([int(e[1:], 16)])
        if e[:1] in b"01234567" and e[:1].isdigit():
            return bytes([int(e, 8) & 0xFF])
        if e[:1] in (b"u", b"U"):
            return chr(min(int(e[1:], 16), 0x10FFFF)).encode("utf-8", "surrogatepass")
        # protobuf's Python CUnescape (codecs.escape_decode) keeps an unknown escape as it is
        return _SIMPLE.get(e, b"\\" + e)

    return _ESCAPE.sub(one, body)


def _tokens(text: str, *, partial: bool = False) -> list[tuple[str, str | bytes]]:
    """The text's tokens; ``partial``: a sample's, up to what no longer tokenizes (strings kept escaped)."""
    out: list[tuple[str, str | bytes]] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            if partial:
                break
            raise TextProtoError(f"unexpected character {text[pos]!r} at {pos}")
        pos = m.end()
        kind = m.lastgroup
        if kind is None:
            continue
        value = m.group(kind)
        if kind == "str":
            body = value[1:-1].encode("utf-8", "surrogatepass")
            out.append(("str", body if partial else _unescape(body)))
        else:
            out.append((kind, value))
    return out


Tree = list[tuple[str, "bytes | str | Tree"]]


class _Parser:
    def __init__(self, tokens: list[tuple[str, str | bytes]]) -> None:
        self.t = tokens
        self.i = 0

    def peek(self) -> tuple[str, str | bytes] | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> tuple[str, str | bytes]:
        tok = self.peek()
        if tok is None:
            raise TextProtoError("text ends inside a message")
        self.i += 1
        return tok

    def message(self, close: str | None, depth: int) -> Tree:
        if depth > _MAX_DEPTH:
            raise TextProtoError("messages nest too deep")
        fields: Tree = []
        while True:
            tok = self.peek()
            if tok is None:
                if close is None:
                    return fields
                raise TextProtoError("text ends inside a message")
            if tok == ("sym", close):
                self.i += 1
                return fields
            kind, name = self.take()
            if (kind, name) == ("sym", "["):  # an extension or Any type URL: [type.googleapis.com/x.Y]
                parts = []
                while (part := self.take()) != ("sym", "]"):
                    parts.append(str(part[1]))
                name = "[" + "".join(parts) + "]"
            elif kind != "word":
                raise TextProtoError(f"a field name was expected, not {name!r}")
            assert isinstance(name, str)
            colon = self.peek() == ("sym", ":")
            if colon:
                self.i += 1
            nxt = self.peek()
            if nxt == ("sym", "["):
                self.i += 1
                if self.peek() == ("sym", "]"):
                    self.i += 1
                else:
                    while True:
                        fields.append((name, self.value(depth)))
                        sep = self.take()
                        if sep == ("sym", "]"):
                            break
                        if sep != ("sym", ","):
                            raise TextProtoError("a list needs ',' or ']'")
            else:
                if not colon and nxt not in (("sym", "{"), ("sym", "<")):
                    raise TextProtoError(f"':' expected after {name!r}")
                fields.append((name, self.value(depth)))
            if self.peek() in (("sym", ","), ("sym", ";")):
                self.i += 1

    def value(self, depth: int) -> bytes | str | Tree:
        kind, tok = self.take()
        if kind == "sym" and tok in ("{", "<"):
            return self.message("}" if tok == "{" else ">", depth + 1)
        if kind == "str":
            assert isinstance(tok, bytes)
            parts = [tok]
            while (p := self.peek()) is not None and p[0] == "str":
                self.i += 1
                assert isinstance(p[1], bytes)
                parts.append(p[1])
            return b"".join(parts)
        if kind == "word":
            assert isinstance(tok, str)
            return tok
        raise TextProtoError(f"a value was expected, not {tok!r}")


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _encode(tree: Tree, message: str) -> bytes:
    schema = _SCHEMA.get(message, {})
    out = bytearray()
    for name, value in tree:
        spec = schema.get(name)
        if spec is None:
            continue
        num, kind = spec
        if kind == "int":
            if isinstance(value, str):
                try:
                    number = int(value, 0)
                except ValueError:
                    continue
                out += _varint(num << 3) + _varint(number)
        elif kind == "str":
            if isinstance(value, bytes):
                out += _varint(num << 3 | 2) + _varint(len(value)) + value
        elif isinstance(value, list):
            body = _encode(value, kind)
            out += _varint(num << 3 | 2) + _varint(len(body)) + body
    return bytes(out)


def _top_names(text: str) -> list[str] | None:
    """The field names at the top level of the text's first bytes, None when it stops being text format."""
    names: list[str] = []
    depth = 0
    expect_name = True
    for kind, tok in _tokens(text, partial=True):
        if kind == "sym" and tok in ("{", "<"):
            depth += 1
            expect_name = True
        elif kind == "sym" and tok in ("}", ">"):
            depth -= 1
            if depth < 0:
                return None
            expect_name = True
        elif kind == "sym":
            if tok == "[" and expect_name and depth == 0:
                return None  # an extension name: no field of TensorFlow's messages
            continue
        elif depth == 0:
            if expect_name:
                if kind != "word" or (not str(tok)[:1].isalpha() and str(tok)[:1] != "_"):
                    return None
                names.append(str(tok))
                expect_name = False
            else:
                expect_name = True
        if len(names) >= 32:
            break
    return names


def looks_text_proto(head: bytes) -> bool:
    """Whether text opens as a TensorFlow SavedModel, GraphDef or MetaGraphDef in text format: its top-level
    field names are all fields of one of them, at least one of them none that other text opens with."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head[: exc.start].decode("utf-8")
    try:
        names = _top_names(text)
    except TextProtoError:
        return False
    if not names:
        return False
    return any(set(names) <= fields and not set(names) <= _WEAK for fields in _TOP.values())


def text_proto_readings(data: bytes) -> list[tuple[str, bytes]]:
    """The text's messages re-encoded in the binary wire format: (kind, bytes) for each of SavedModel, GraphDef
    and MetaGraphDef whose fields the text's top level uses (text format refuses unknown field names, so only
    one of them parses in TensorFlow; a text mixing them is judged every way)."""
    text = data.decode("utf-8")
    tree = _Parser(_tokens(text)).message(None, 0)
    names = {name for name, _ in tree}
    out = []
    for kind, fields in _TOP.items():
        if names & fields and not names <= _WEAK:
            out.append((kind, _encode(tree, kind)))
    return out


_STATE_PATHS: Final = frozenset({"model_checkpoint_path", "all_model_checkpoint_paths"})


def checkpoint_state_paths(data: bytes) -> list[tuple[str, bytes]]:
    """The checkpoint prefixes a TensorFlow ``checkpoint`` state file (a ``CheckpointState`` in text format) names:
    (field, path) for each ``model_checkpoint_path`` and ``all_model_checkpoint_paths`` value, escapes decoded and
    adjacent strings joined as protobuf's text parser does. Raises TextProtoError or UnicodeDecodeError when the
    text does not parse (``get_checkpoint_state`` refuses it too)."""
    tree = _Parser(_tokens(data.decode("utf-8"))).message(None, 0)
    return [(name, value) for name, value in tree if name in _STATE_PATHS and isinstance(value, bytes)]
