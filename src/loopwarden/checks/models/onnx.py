"""ONNX without the onnx package: a minimal protobuf wire-format reader of ModelProto.

It walks the graph (and subgraphs, functions, training info) for tensors stored as external data and checks
each
``location`` (absolute, ``..``, or resolving outside the model's folder through links), and lists operator
domains. Tensor payloads are skipped by seeking; nothing is loaded or resolved.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.checks.models.detect import TENSOR_WIRES, Format, sniff
from loopwarden.checks.models.dispatch import HEAD, scan_as, seekable_blob
from loopwarden.checks.models.zipfmt import escapes_folder
from loopwarden.domain import Location

__all__ = ["ProtoError", "ProtoReader", "scan_onnx"]

_STD_DOMAINS: Final = frozenset(
    {
        "",
        "ai.onnx",
        "ai.onnx.ml",
        "ai.onnx.training",
        "ai.onnx.preview.training",
        "com.microsoft",
        "com.microsoft.nchwc",
        "com.microsoft.mlfeaturizers",
        "org.pytorch.aten",
        "com.ms.internal.nhwc",
    }
)
_MAX_DEPTH: Final = 64
_MAX_FIELDS: Final = 50_000_000


class ProtoError(Exception):
    """Bytes that break the protobuf wire format (a misreading: every protobuf parser rejects them, and ``onnx.load``
    and onnxruntime parse the whole message before using any of it), unless ``bound``: a limit of this analysis."""

    def __init__(self, message: str, *, bound: bool = False) -> None:
        super().__init__(message)
        self.bound = bound


_WINDOW: Final = 1 << 16
"""Bytes :class:`ProtoReader` reads ahead: varints and small payloads are taken from this window, not with a call
on the stream per byte."""


class ProtoReader:
    """The protobuf wire format read from a seekable stream through a read-ahead window. Positions are absolute
    (:meth:`tell`, :meth:`seek`); payloads longer than the window are read straight from the stream, and the stream's
    own position is not the reader's (use the reader's methods, never the stream's, once it reads)."""

    def __init__(self, f: BinaryIO, size: int, ctx: ScanContext) -> None:
        self.f = f
        self.size = size
        self.ctx = ctx
        self.fields = 0
        self.last = 0
        """The value of the last varint field :meth:`fields_in` yielded."""
        self._buf = b""
        self._base = f.tell()  # the stream offset of _buf[0]
        self._pos = 0  # the read position in _buf

    def tell(self) -> int:
        return self._base + self._pos

    def seek(self, target: int) -> None:
        if self._base <= target <= self._base + len(self._buf):
            self._pos = target - self._base
        else:  # outside the window: it is refilled there on the next read
            self._buf, self._base, self._pos = b"", target, 0

    def _refill(self, need: int) -> None:
        """At least ``need`` bytes from the position on in the window, or all the stream has left."""
        at = self._base + self._pos
        rest = self._buf[self._pos :]
        self.f.seek(at + len(rest))
        self._buf = rest + self.f.read(max(_WINDOW, need - len(rest)))
        self._base, self._pos = at, 0

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes from the position (fewer at the end of the stream)."""
        n = max(n, 0)
        if len(self._buf) - self._pos < n:
            if n > _WINDOW:  # a large payload: straight from the stream, not through the window
                at = self.tell()
                self.f.seek(at)
                data = self.f.read(n)
                self._buf, self._base, self._pos = b"", at + len(data), 0
                return data
            self._refill(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def varint(self) -> int:
        buf, pos = self._buf, self._pos
        if len(buf) - pos < 10:  # a varint has at most 10 bytes
            self._refill(10)
            buf, pos = self._buf, self._pos
        end = len(buf)
        shift = value = 0
        while True:
            if pos >= end:
                self._pos = pos
                raise ProtoError("truncated varint")
            b = buf[pos]
            pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                self._pos = pos
                return value
            shift += 7
            if shift > 63:
                self._pos = pos
                raise ProtoError("varint too long")

    def fields_in(self, end: int) -> Iterator[tuple[int, int, int]]:
        """(field number, wire type, end of payload) for each field until ``end``; caller consumes LEN
        payloads.
        """
        while self.tell() < end:
            self.fields += 1
            if self.fields % 100_000 == 0:
                self.ctx.check_time()
            if self.fields > _MAX_FIELDS:
                raise ProtoError("too many protobuf fields", bound=True)
            tag = self.varint()
            num, wire = tag >> 3, tag & 7
            if num == 0:
                raise ProtoError("field number 0")
            if wire == 0:
                self.last = self.varint()
                yield num, wire, self.tell()
            elif wire == 1:
                self.seek(self.tell() + 8)
                yield num, wire, self.tell()
            elif wire == 5:
                self.seek(self.tell() + 4)
                yield num, wire, self.tell()
            elif wire == 2:
                n = self.varint()
                stop = self.tell() + n
                if stop > end:
                    raise ProtoError("length-delimited field runs past its message")
                yield num, wire, stop
                self.seek(stop)
            elif wire == 3:
                self._skip_group(num, end)  # no ONNX field is a group: parsers skip it as an unknown field
                yield num, wire, self.tell()
            else:
                raise ProtoError(f"unsupported wire type {wire}")
        if self.tell() != end:
            raise ProtoError("message ends inside a field")

    def _skip_group(self, num: int, end: int) -> None:
        """Skip the fields of a group up to its end-group tag (groups nest; each must close its own)."""
        open_groups = [num]
        while open_groups:
            if self.tell() >= end:
                raise ProtoError("group runs past its message")
            self.fields += 1
            if self.fields > _MAX_FIELDS:
                raise ProtoError("too many protobuf fields", bound=True)
            tag = self.varint()
            field, wire = tag >> 3, tag & 7
            if field == 0:
                raise ProtoError("field number 0")
            if wire == 0:
                self.varint()
            elif wire == 1:
                self.seek(self.tell() + 8)
            elif wire == 5:
                self.seek(self.tell() + 4)
            elif wire == 2:
                n = self.varint()
                self.seek(self.tell() + n)
            elif wire == 3:
                open_groups.append(field)
            elif wire == 4:
                if open_groups.pop() != field:
                    raise ProtoError("end-group tag does not match its group")
            else:
                raise ProtoError(f"unsupported wire type {wire}")
        if self.tell() > end:
            raise ProtoError("group runs past its message")

    def bytes_(self, stop: int) -> bytes:
        return self.read(stop - self.tell())


# message layouts: field number -> sub-message kind, for the fields that can lead to tensors, nodes or domains
_LAYOUT: Final[dict[str, dict[int, str]]] = {
    "model": {7: "graph", 8: "opset", 14: "metadata", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node", 10: "domain", 11: "attribute"},
    "node": {5: "attribute", 7: "domain"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry", 8: "name"},
    "opset": {1: "domain"},
}


_EP_CONTEXT: Final = "EPContext"
_EP_PATHS: Final = ("ep_cache_context", "onnx_model_filename")
"""EPContext attributes naming a file the execution provider opens beside the model: the context binary when
``embed_mode`` is 0, and the TensorRT EPs' original model (for refitting weightless engines)."""
_ATTR_TEXT_MAX: Final = 1 << 16
"""Longer string attributes are no path a file system opens (Windows' longest is 32,767 characters): not read."""
_MAX_NAMED: Final = 64


@dataclass(slots=True)
class _NodeFiles:
    """What the walk keeps of the nodes that name files: each EPContext node's attributes, and the string and
    integer attributes of every node and function default by name (for an EPContext node inside a model-local
    function whose attributes refer to the caller's, ``ref_attr_name``)."""

    ep_nodes: list[tuple[str, list[dict[str, object]]]] = field(default_factory=list)
    strings: dict[str, list[str]] = field(default_factory=dict)
    ints: dict[str, list[int]] = field(default_factory=dict)

    def attribute(self, attr: dict[str, object]) -> None:
        name = str(attr.get("name", ""))
        if isinstance(attr.get("s"), str) and len(self.strings.setdefault(name, [])) < _MAX_NAMED:
            self.strings[name].append(str(attr["s"]))
        value = attr.get("i")
        if isinstance(value, int) and len(self.ints.setdefault(name, [])) < _MAX_NAMED:
            self.ints[name].append(value)


def scan_onnx(blob: Blob, ctx: ScanContext) -> None:
    blob = seekable_blob(blob, ctx)
    _scan_model(blob, ctx)
    # Protobuf fields come in any order, so a model can open with bytes that read as something else (text, a
    # pickle): a loader of that format reads the same file its own way, so that reading is analysed too, a
    # pickle in full (the dispatcher then skips its first-bytes reading).
    other = sniff(blob.head(HEAD), blob.size)
    if other is not Format.ONNX:
        scan_as(blob, ctx, other)


def _scan_model(blob: Blob, ctx: ScanContext) -> None:
    size = blob.size or 0
    # buffered: the wire format is read varint by varint, and payloads are skipped by seeking
    with io.BufferedReader(blob.open(), 1 << 16) as f:  # type: ignore[type-var]
        r = ProtoReader(f, size, ctx)
        domains: set[str] = set()
        local_domains: set[str] = set()
        files = _NodeFiles()
        try:
            _message(r, "model", size, 0, blob, ctx, domains, local_domains, files)
        except ProtoError as exc:
            if scan_tensor_file(blob, ctx):
                return  # a TensorProto whose first fields read like a model's (string tensors of test data)
            # only fields protobuf parses as messages are descended into (_LAYOUT), so a wire error found here is
            # one every protobuf parser also meets
            ctx.fail(blob.location, f"ONNX protobuf cannot be parsed ({exc})", misread=not exc.bound)
            return
    # A TensorProto's fields can also read as a model's (dims as ir_version, name as opset_import): when the file
    # is one, its external data locations are what onnx.load_tensor's caller follows. A model fails this parse
    # within its first fields (producer_name, metadata_props), reading no payload.
    scan_tensor_file(blob, ctx)
    _check_ep_context(files, blob, ctx)
    for d in sorted(domains - _STD_DOMAINS - local_domains):
        ctx.add(
            rules.OnnxCustomDomain, f"operators from custom domain '{d[:100]}'", blob.location, domain=d[:100]
        )


_TENSOR_WIRES: Final = TENSOR_WIRES
_MAX_DATA_TYPE: Final = 64
"""Above every TensorProto.DataType value (onnx 1.23 has 1 to 28)."""


def scan_tensor_file(blob: Blob, ctx: ScanContext) -> bool:
    """A serialized TensorProto on its own, as ONNX test data sets keep their inputs and outputs
    (``test_data_set_0/input_0.pb``, read with ``onnx.load_tensor`` and ``numpy_helper.to_array``): True when
    the whole file parses as one, with its data type set, every field one of TensorProto's in a wire type its
    parsers accept. Its only reach outside itself is external data, whose locations are checked as a model's
    are (LW-MODEL-034). False, with nothing reported, for anything else."""
    if not blob.size or not blob.seekable:
        return False
    with io.BufferedReader(blob.open(), 1 << 16) as f:  # type: ignore[type-var]
        r = ProtoReader(f, blob.size, ctx)
        data_type = None
        try:
            for num, wire, _ in r.fields_in(blob.size):
                if wire not in _TENSOR_WIRES.get(num, ()):
                    return False
                if num == 2:
                    data_type = r.last
        except ProtoError:
            return False
        if data_type is None or not 1 <= data_type <= _MAX_DATA_TYPE:
            return False
        f.seek(0)
        try:
            _message(ProtoReader(f, blob.size, ctx), "tensor", blob.size, 0, blob, ctx, set(), set())
        except ProtoError:  # (parsed above: not reached)
            return False
    return True


def _message(
    r: ProtoReader,
    kind: str,
    end: int,
    depth: int,
    blob: Blob,
    ctx: ScanContext,
    domains: set[str],
    local_domains: set[str],
    files: _NodeFiles | None = None,
    attr: dict[str, object] | None = None,
) -> None:
    if depth > _MAX_DEPTH:
        raise ProtoError("messages nested too deeply", bound=True)
    layout = _LAYOUT.get(kind, {})
    entry: dict[str, str] = {}
    # every location entry: onnx keeps the last entry of a key, another reader may keep the first
    locations: list[str] = []
    op = ""
    attrs: list[dict[str, object]] = []
    for num, wire, stop in r.fields_in(end):
        if attr is not None and num in (1, 3, 4, 21):  # AttributeProto name, i, s, ref_attr_name
            if num == 3 and wire == 0:
                attr["i"] = r.last
            elif wire == 2 and num != 3 and stop - r.tell() <= _ATTR_TEXT_MAX:
                attr[{1: "name", 4: "s", 21: "ref"}[num]] = r.bytes_(stop).decode("utf-8", "replace")
            continue
        if kind == "node" and num == 4 and wire == 2 and files is not None:
            op = r.bytes_(stop)[:200].decode("utf-8", "replace")
            continue
        sub = layout.get(num)
        if wire != 2 or sub is None:
            continue
        if sub == "domain":
            d = r.bytes_(stop).decode("utf-8", "replace")
            (local_domains if kind == "function" else domains).add(d)
        elif sub == "entry":
            k = v = ""
            for n2, w2, s2 in r.fields_in(stop):
                if w2 == 2 and n2 in (1, 2):
                    text = r.bytes_(s2).decode("utf-8", "replace")
                    k, v = (text, v) if n2 == 1 else (k, text)
            if k == "location":
                locations.append(v)
        elif sub == "name":
            entry["name"] = r.bytes_(stop)[:200].decode("utf-8", "replace")
        elif sub == "metadata":
            _metadata_entry(r, stop, blob, ctx)
        elif sub == "attribute" and files is not None:
            found: dict[str, object] = {}
            _message(r, sub, stop, depth + 1, blob, ctx, domains, local_domains, files, found)
            files.attribute(found)
            attrs.append(found)
        else:
            _message(r, sub, stop, depth + 1, blob, ctx, domains, local_domains, files)
    for where in dict.fromkeys(locations):
        _check_location(where, entry.get("name", "?"), blob, ctx)
    if op == _EP_CONTEXT and files is not None:
        files.ep_nodes.append((op, attrs))


_METADATA_TEXT_MAX: Final = 16 << 20
"""Metadata strings are read into memory up to this size (a longer value is unverified, never skipped): the code
check parses programs up to 64 KiB and reads longer ones token by token (codestr.long_program_names)."""


def _metadata_entry(r: ProtoReader, end: int, blob: Blob, ctx: ScanContext) -> None:
    """One ``metadata_props`` entry of a ModelProto (a StringStringEntryProto: key 1, value 2): its value is
    judged as Python code (LW-MODEL-047), as safetensors and GGUF metadata are. onnxruntime hands these strings
    to applications (``InferenceSession.get_modelmeta().custom_metadata_map``); a wrapper that evaluates one runs
    it."""
    from loopwarden.checks.models.codestr import check_metadata_value

    key = value = ""
    too_long = 0  # the size of the value when it is larger than the bound
    for num, wire, stop in r.fields_in(end):
        if wire != 2 or num not in (1, 2):
            continue
        if stop - r.tell() > _METADATA_TEXT_MAX:
            if num == 2:  # a later value replaces an earlier one, as protobuf parsers do
                value, too_long = "", stop - r.tell()
            continue
        text = r.bytes_(stop).decode("utf-8", "replace")
        if num == 1:
            key = text
        else:
            value, too_long = text, 0
    if too_long:
        ctx.fail(
            blob.location,
            f"ONNX metadata '{key[:100]}' holds {too_long} bytes, more than the {_METADATA_TEXT_MAX} bytes read "
            "to judge it as code",
        )
    elif value:
        check_metadata_value(key, value, ctx, blob.location, where="ONNX")


def _allowed_folders(base: str, folder: str) -> list[str]:
    """Where external data may resolve: the model's folder, and the blobs of the Hugging Face cache it is a
    snapshot folder of."""
    from loopwarden.checks.models.scanner import hf_cache_root

    cache = hf_cache_root(base)
    return [folder] if cache is None else [folder, os.path.join(cache, "blobs")]


_ORT_MEMORY_TAG: Final = "_ORT_MEM_ADDR_"


def _not_a_file(where: str) -> str | None:
    """Why a location names no file a saver writes: onnxruntime takes the location ``*/_ORT_MEM_ADDR_/*`` as a
    marker meaning that the tensor's ``offset`` is an address in the process's memory, and reads ``length`` bytes
    there (1.20 confirmed: an arbitrary read, a crash for an unmapped address; 1.32 refuses it). '*' is in no file
    name onnx or a converter writes (Windows forbids it, which is why onnxruntime chose it), so any location
    holding one is reported, whatever else it spells."""
    if "*" not in where:
        return None
    if _ORT_MEMORY_TAG in where:
        return "is onnxruntime's in-memory marker: the tensor is read from the process memory at its offset"
    return "contains '*' (no saved file is named so; onnxruntime's in-memory marker is spelled with it)"


def _escape(where: str, blob: Blob) -> tuple[str | None, str | None]:
    """Why a path a loader joins to the model's folder leaves it (or None), and where it resolves to."""
    why = (
        escapes_folder(where.replace("\\", "/"))
        or ("contains a backslash" if "\\" in where else None)
        or _not_a_file(where)
    )
    target = None
    if why is None and blob.file_path is not None:
        # onnx.load and onnxruntime join the location to the folder of the path they were given (a Hugging Face
        # snapshot's model.onnx is a link into blobs/, its weights.bin another link beside it)
        given = blob.location.path if blob.location.member is None else blob.file_path
        base = os.path.dirname(os.path.abspath(given))
        folder = os.path.realpath(base)
        target = os.path.realpath(os.path.join(base, where))
        if not any(os.path.commonpath([f, target]) == f for f in _allowed_folders(base, folder)):
            why = "resolves outside the model folder (through a link)"
        else:
            try:
                if os.stat(target).st_nlink > 1:
                    why = "is a hard link (it may expose a file from outside the folder)"
            except OSError:
                pass
    return why, target


def _check_location(where: str, tensor: str, blob: Blob, ctx: ScanContext) -> None:
    loc = Location(blob.location.path, blob.location.member)
    why, target = _escape(where, blob)
    if why is None and target is not None:
        ctx.references.append(target)
    if why:
        ctx.add(
            rules.OnnxExternalData,
            f"tensor '{tensor}' reads external data from '{where[:200]}', which {why}",
            loc,
            external_location=where[:200],
            tensor=tensor,
        )


_URL: Final = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")


def _ep_values(attrs: list[dict[str, object]], name: str, files: _NodeFiles) -> tuple[list[str], list[int]]:
    """The string and integer values an EPContext node's attribute ``name`` may take: its own, or, for a
    reference to an attribute of the calling node (``ref_attr_name`` in a model-local function), that name's
    values anywhere in the model."""
    strings: list[str] = []
    ints: list[int] = []
    present = False
    for a in attrs:
        if a.get("name") != name:
            continue
        present = True
        ref = a.get("ref")
        if isinstance(ref, str):
            strings += files.strings.get(ref, [])
            ints += files.ints.get(ref, [0])
            continue
        if isinstance(a.get("s"), str):
            strings.append(str(a["s"]))
        value = a.get("i")
        ints.append(value if isinstance(value, int) else 0)  # an absent i reads as 0 (AttributeProto.i())
    if not present and name == "embed_mode":
        ints.append(1)  # the EPs' default: the context is embedded
    return strings, ints


def _check_ep_context(files: _NodeFiles, blob: Blob, ctx: ScanContext) -> None:
    """onnxruntime's EPContext nodes (com.microsoft) carry a pre-compiled context for an execution provider. With
    ``embed_mode`` 0, ``ep_cache_context`` is a path the provider joins to the model's folder and reads the context
    binary from (OpenVINO, QNN, TensorRT, VitisAI); ``onnx_model_filename`` names the original model the TensorRT
    EPs read to refit a weightless engine. A path out of the folder reads another file into the provider's
    deserializer (LW-MODEL-053)."""
    loc = Location(blob.location.path, blob.location.member)
    for op, attrs in files.ep_nodes:
        _, embed = _ep_values(attrs, "embed_mode", files)
        for name in _EP_PATHS:
            if name == "ep_cache_context" and all(e != 0 for e in embed):
                continue  # embedded: the attribute is the context itself
            values, _ = _ep_values(attrs, name, files)
            for where in dict.fromkeys(values):
                why = (
                    ("starts with '~'" if where.startswith("~") else None)
                    or ("is a URL" if _URL.match(where) else None)
                    or _escape(where, blob)[0]
                )
                if why:
                    ctx.add(
                        rules.OnnxEpContextFile,
                        f"{op} node's {name} reads '{where[:200]}', which {why}",
                        loc,
                        attribute=name,
                        path=where[:200],
                    )
