"""TensorFlow SavedModels, frozen GraphDefs, Keras 2 ``keras_metadata.pb`` and checkpoint indexes, read with
the protobuf wire reader of :mod:`onnx` (no TensorFlow, no protobuf package).

A SavedModel's graph runs when it is loaded (restore and init ops) and when its functions are called; TF2 and
Keras put nearly every op in the graph's function library. Every node of the graph and of every library function
is read; ops that reach the file system, Python or the network are reported (LW-MODEL-046), except the saver's own
checkpoint ops and vocabulary tables read from the model's assets. Keras layer configs stored in the model
(``keras_metadata.pb``, or the object graph of older Keras) get the Keras config checks. Tensor payloads are
skipped by seeking; nothing is loaded.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
from dataclasses import dataclass, field
from typing import Final

from loopwarden.checks.interface import ResourceLimitExceeded
from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext, read_range
from loopwarden.checks.models.onnx import ProtoError, ProtoReader
from loopwarden.domain import Severity

__all__ = [
    "scan_checkpoint_index",
    "scan_graph_def",
    "scan_keras_metadata",
    "scan_saved_model",
    "scan_text_graph",
]

_C, _H, _M = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM
_PYTHON = "runs a Python function of the loading process"
_READS = "reads files at a path the graph chooses"
_WRITES = "writes files at a path the graph chooses"
_NET = "talks to the network"
_OPS: Final[dict[str, tuple[Severity, str]]] = {
    # script_ops.cc
    **dict.fromkeys(("PyFunc", "PyFuncStateless", "EagerPyFunc"), (_C, _PYTHON)),
    # not TensorFlow ops, but names other scanners report: a custom op library registering them runs anything
    **dict.fromkeys(("PyCall", "ShellExecute", "ExecuteOp", "SystemConfig"), (_C, "is no TensorFlow op")),
    # io_ops.cc
    "ReadFile": (_H, _READS),
    "WriteFile": (_H, _WRITES),
    "MatchingFiles": (_M, "lists files matching a pattern"),
    **dict.fromkeys(
        (
            "WholeFileReader",
            "WholeFileReaderV2",
            "TextLineReader",
            "TextLineReaderV2",
            "FixedLengthRecordReader",
            "FixedLengthRecordReaderV2",
            "TFRecordReader",
            "TFRecordReaderV2",
            "LMDBReader",
            "RecordInput",  # data_flow_ops.cc: reads the records of the files its file_pattern matches
            "Skipgram",  # word2vec_ops.cc (deprecated from GraphDef version 19, kept for older graphs)
        ),
        (_H, _READS),
    ),
    # dataset.proto snapshot readers: the files of a snapshot at a path the graph chooses
    **dict.fromkeys(
        ("SnapshotChunkDataset", "ListSnapshotChunksDataset", "SnapshotDatasetReader"), (_H, _READS)
    ),
    # the quantizer's calibration and debugging ops (CPU kernels in every TensorFlow build): files at attrs
    **dict.fromkeys(("DumpTensor", "CalibrationStatisticsSaver"), (_H, _WRITES)),
    "DatasetFromGraph": (
        _H,
        "runs a GraphDef held in a string tensor (its ops, which can read and write files, are no nodes of the "
        "model's graph)",
    ),
    # a TPU host's system: configured, initialised or shut down (no CPU kernels; run where a TPU system is)
    **dict.fromkeys(
        (
            "ConfigureDistributedTPU",
            "_ConfigureDistributedTPU",
            "ShutdownDistributedTPU",
            "_ShutdownDistributedTPU",
            "ConfigureAndInitializeGlobalTPU",
            "ShutdownTPUSystem",
            "_InitializeHostForDistributedTPU",
            "_WaitForDistributedTPU",
            "_DisconnectHostFromDistributedTPUSystem",
            "ConnectTPUEmbeddingHosts",
        ),
        (_M, "configures, connects or shuts down the TPU system of the host"),
    ),
    "ImmutableConst": (_H, "maps a file of the host into a tensor (memory_region_name)"),
    # dataset ops that open files
    **dict.fromkeys(
        (
            "TFRecordDataset",
            "TFRecordDatasetV2",
            "TextLineDataset",
            "FixedLengthRecordDataset",
            "FixedLengthRecordDatasetV2",
            "CSVDataset",
            "CSVDatasetV2",
            "ExperimentalCSVDataset",
            "LMDBDataset",
            "ExperimentalLMDBDataset",
            "SqlDataset",
            "ExperimentalSqlDataset",
            "LoadDataset",
        ),
        (_H, _READS),
    ),
    **dict.fromkeys(
        (
            "SaveDataset",
            "SaveDatasetV2",
            "DatasetToTFRecord",
            "ExperimentalDatasetToTFRecord",
            "SnapshotDataset",
            "SnapshotDatasetV2",
            "DistributedSave",
            "CreateSummaryFileWriter",
            "CreateSummaryDbWriter",
        ),
        (_H, _WRITES),
    ),
    **dict.fromkeys(
        ("CacheDataset", "CacheDatasetV2"), (_M, "writes a cache to files when given a file name")
    ),
    **dict.fromkeys(
        ("MatchingFilesDataset", "ExperimentalMatchingFilesDataset"), (_M, "lists files matching a pattern")
    ),
    # debug ops dump tensors to file:// or grpc:// URLs
    **dict.fromkeys(
        (
            "DebugIdentity",
            "DebugIdentityV2",
            "DebugIdentityV3",
            "DebugNanCount",
            "DebugNumericSummary",
        ),
        (_H, "dumps tensors to files or a gRPC endpoint"),
    ),
    # network
    **dict.fromkeys(
        (
            "DataServiceDataset",
            "DataServiceDatasetV2",
            "DataServiceDatasetV3",
            "DataServiceDatasetV4",
            "RegisterDataset",
            "RegisterDatasetV2",
            "Rpc",
            "TryRpc",
            "RpcClient",
            "RpcCall",
            "RpcServer",
            "RpcServerStart",
            "RpcServerRegister",
            "BigQueryReader",
            "GenerateBigQueryReaderPartitions",
        ),
        (_H, _NET),
    ),
    **dict.fromkeys(
        ("GcsConfigureCredentials", "GcsConfigureBlockCache", "FileSystemSetConfiguration"),
        (_M, "changes the file-system configuration of the process"),
    ),
    # checkpoint ops: the saver's own are not reported (see _saver_only)
    **dict.fromkeys(
        ("SaveV2", "Save", "SaveSlices"), (_H, "writes a checkpoint at a path the graph chooses")
    ),
    "MergeV2Checkpoints": (_H, "moves checkpoint files and deletes their folders"),
    **dict.fromkeys(
        ("RestoreV2", "Restore", "RestoreSlice", "LoadAndRemapMatrix", "DTensorRestoreV2"),
        (_M, "reads a checkpoint at a path the graph chooses"),
    ),
    "GenerateVocabRemapping": (_M, "reads vocabulary files at paths the graph chooses"),
}
_SAVER_OPS: Final = frozenset(
    {
        "SaveV2",
        "Save",
        "SaveSlices",
        "MergeV2Checkpoints",
        "RestoreV2",
        "Restore",
        "RestoreSlice",
        "DTensorRestoreV2",
    }
)
_RESTORE_OPS: Final = frozenset({"RestoreV2", "Restore", "RestoreSlice", "DTensorRestoreV2"})
_TABLE_FROM_FILE: Final = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
_SEND_RECV: Final = frozenset({"_Send", "_Recv", "_HostSend", "_HostRecv", "Send", "Recv"})
_ATTR_OPS: Final = (
    frozenset({"PrintV2", "DecodeProtoV2", "EncodeProto", "Copy", "CopyHost", "FixedUnigramCandidateSampler"})
    | _SEND_RECV
    | {"RemoteCall"}
)
"""Ops judged by an attribute (or a constant input): where tf.print writes, where a proto codec reads its
descriptors, debug specs, a sampler's vocabulary file, the task a tensor or function call goes to."""
_LOCAL_JOB: Final = re.compile(
    r"\s*(/job:localhost(/|\Z)|/(replica|task|device|cpu|gpu)[:/]|(cpu|gpu|device)\b|\Z)", re.I
)
"""Device names of the loading process itself: its own job (localhost), or no job at all."""
_FOLLOW: Final = frozenset({"Identity", "Snapshot", "StopGradient"})
_PATH_OPS: Final = _FOLLOW | {
    "Const",
    "Placeholder",
    "PlaceholderWithDefault",
    "StringJoin",
    "ShardedFilename",
    "Pack",
    "Select",
    "SelectV2",
    "StaticRegexFullMatch",
    "RegexFullMatch",
}
"""The ops TensorFlow's savers build a checkpoint path with (TF1's save/ scope, TF2's traced functions)."""
_SAVER_STRING: Final = re.compile(r"(model|_temp(_[0-9a-f]{32})?[/\\]part|\.part|\^s3://\.\*)\Z")
"""The strings savers put into a path: TF1's default file name, the sharded suffixes, the S3 test's pattern."""
_MORE: Final = "\x00more"
"""Marks a constant with more strings than are kept."""
_MAX_INPUTS: Final = 64
_MAX_NODES: Final = 5_000_000
_MAX_TEXT: Final = 1024
_MAX_STRINGS: Final = 8
_NODE_NAME: Final = re.compile(r"^\^?([^:]*)")
_PLAIN_OPS: Final = frozenset(
    {
        "Const",
        "Identity",
        "Placeholder",
        "NoOp",
        "VarHandleOp",
        "ReadVariableOp",
        "AssignVariableOp",
        "Assign",
    }
    | {"VariableV2", "HashTableV2", "MutableHashTableV2", "VarIsInitializedOp", "RestoreV2", "SaveV2"}
)
"""Top-level ops that call no function (the common ones; any other op may name a library function)."""


@dataclass(slots=True)
class _Node:
    name: str = ""
    op: str = ""
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, list[str]] = field(default_factory=dict)
    strings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Body:
    """One graph or library function: what the analysis needs of its nodes."""

    where: str
    function: str | None = None
    hits: list[_Node] = field(default_factory=list)
    consts: dict[str, list[str]] = field(default_factory=dict)
    follow: dict[str, str] = field(default_factory=dict)
    paths: dict[str, list[str] | None] = field(default_factory=dict)
    """Inputs of the nodes of _PATH_OPS (None: more than are kept), for checkpoint paths."""
    calls: set[str] = field(default_factory=set)
    roots: list[tuple[str, set[str]]] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    """For the top-level graph: (node, what it calls) of each node that may call a library function."""


@dataclass(slots=True)
class _Meta:
    bodies: list[_Body] = field(default_factory=list)
    saver_nodes: set[str] = field(default_factory=set)
    saver: dict[int, str] = field(default_factory=dict)
    """SaverDef's save_tensor_name (2) and restore_op_name (3), as node names."""
    assets: set[str] = field(default_factory=set)
    asset_files: list[str] = field(default_factory=list)
    concrete: set[str] = field(default_factory=set)
    bound: dict[str, list[int]] = field(default_factory=dict)
    """The object-graph nodes each concrete function's captured inputs (its last arguments) are bound to."""
    objects: dict[int, str | None] = field(default_factory=dict)
    """Object-graph nodes that are assets (None) or constants (the name of their top-level Const)."""
    keras: list[tuple[str, str]] = field(default_factory=list)


class _Walk:
    def __init__(self, r: ProtoReader) -> None:
        self.r = r
        self.nodes = 0

    def text(self, stop: int) -> str:
        n = min(stop - self.r.tell(), _MAX_TEXT)
        return self.r.read(max(n, 0)).decode("utf-8", "replace")

    def saved_model(self, end: int) -> list[_Meta]:
        metas = []
        for num, wire, stop in self.r.fields_in(end):
            if num == 2 and wire == 2:
                metas.append(self.meta_graph(stop))
        return metas

    def meta_graph(self, end: int) -> _Meta:
        meta = _Meta()
        for num, wire, stop in self.r.fields_in(end):
            if wire != 2:
                continue
            if num == 2:
                self.graph(stop, meta)
            elif num == 3:
                for n2, w2, s2 in self.r.fields_in(stop):
                    if n2 in (2, 3) and w2 == 2:
                        meta.saver[n2] = _node_of(self.text(s2))
                        meta.saver_nodes.add(meta.saver[n2])
            elif num == 6:  # AssetFileDef{1 tensor_info{1 name}, 2 filename}
                for n2, w2, s2 in self.r.fields_in(stop):
                    if n2 == 1 and w2 == 2:
                        for n3, w3, s3 in self.r.fields_in(s2):
                            if n3 == 1 and w3 == 2:
                                meta.assets.add(_node_of(self.text(s3)))
                    elif n2 == 2 and w2 == 2:
                        meta.asset_files.append(self.text(s2))
            elif num == 7:
                self.object_graph(stop, meta)
        return meta

    def object_graph(self, end: int, meta: _Meta) -> None:
        index = -1
        for num, wire, stop in self.r.fields_in(end):
            if wire != 2:
                continue
            if num == 1:  # SavedObject: user_object (4) carries older Keras' layer metadata (3)
                index += 1
                for n2, w2, s2 in self.r.fields_in(stop):
                    if n2 == 5 and w2 == 2:
                        meta.objects[index] = None
                    elif n2 == 9 and w2 == 2:  # SavedConstant{1 operation}
                        for n3, w3, s3 in self.r.fields_in(s2):
                            if n3 == 1 and w3 == 2:
                                meta.objects[index] = self.text(s3)
                    elif n2 == 4 and w2 == 2:
                        ident = ""
                        for n3, w3, s3 in self.r.fields_in(s2):
                            if n3 == 1 and w3 == 2:
                                ident = self.text(s3)
                            elif n3 == 3 and w3 == 2:
                                meta.keras.append((ident, self.r.bytes_(s3).decode("utf-8", "replace")))
            elif num == 2:  # concrete_functions: name -> SavedConcreteFunction{2 bound_inputs}
                name, bound = "", []
                for n2, w2, s2 in self.r.fields_in(stop):
                    if n2 == 1 and w2 == 2:
                        name = self.text(s2)
                    elif n2 == 2 and w2 == 2:
                        bound = self.bound_inputs(s2)
                meta.concrete.add(name)
                meta.bound[name] = bound

    def bound_inputs(self, end: int) -> list[int]:
        out: list[int] = []
        for num, wire, stop in self.r.fields_in(end):
            if num != 2:
                continue
            if wire == 0:
                out.append(self.r.last)
            elif wire == 2:  # packed
                while self.r.tell() < stop and len(out) < 100_000:
                    out.append(self.r.varint())
        return out

    def graph(self, end: int, meta: _Meta) -> None:
        body = _Body("the graph")
        meta.bodies.append(body)
        for num, wire, stop in self.r.fields_in(end):
            if wire != 2:
                continue
            if num == 1:
                self.node(stop, body)
            elif num == 2:
                for n2, w2, s2 in self.r.fields_in(stop):
                    if n2 == 1 and w2 == 2:
                        self.function(s2, meta)

    def function(self, end: int, meta: _Meta) -> None:
        body = _Body("a library function")
        meta.bodies.append(body)
        for num, wire, stop in self.r.fields_in(end):
            if wire != 2:
                continue
            if num == 1:
                for n2, w2, s2 in self.r.fields_in(stop):
                    if n2 == 1 and w2 == 2:
                        body.function = self.text(s2)
                        body.where = f"function '{body.function[:200]}'"
                    elif n2 == 2 and w2 == 2:  # input_arg: ArgDef{1 name}
                        for n3, w3, s3 in self.r.fields_in(s2):
                            if n3 == 1 and w3 == 2:
                                body.args.append(self.text(s3))
            elif num == 3:
                self.node(stop, body)

    def node(self, end: int, body: _Body) -> None:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise ResourceLimitExceeded("max_graph_nodes", f"graph has more than {_MAX_NODES} nodes")
        node = _Node()
        calls: set[str] = set()
        for num, wire, stop in self.r.fields_in(end):
            if wire != 2:
                continue
            if num == 1:
                node.name = self.text(stop)
            elif num == 2:
                node.op = self.text(stop)
            elif num == 3:
                if len(node.inputs) <= _MAX_INPUTS:
                    node.inputs.append(self.text(stop))
            elif num == 5:
                self.attr_entry(stop, node, calls)
        calls.add(node.op)
        body.calls |= calls
        if body.function is None and (len(calls) > 1 or node.op not in _PLAIN_OPS):
            body.roots.append((node.name, calls))
        if node.op in _OPS or node.op in _TABLE_FROM_FILE or node.op in _ATTR_OPS:
            body.hits.append(node)
        elif node.op == "Const" and node.strings:
            body.consts[node.name] = node.strings
        elif node.op in _FOLLOW and node.inputs:
            body.follow[node.name] = _node_of(node.inputs[0])
        if node.op in _PATH_OPS:
            body.paths[node.name] = node.inputs if len(node.inputs) <= _MAX_INPUTS else None

    def attr_entry(self, end: int, node: _Node, calls: set[str]) -> None:
        key = ""
        strings: list[str] = []
        for num, wire, stop in self.r.fields_in(end):
            if wire != 2:
                continue
            if num == 1:
                key = self.text(stop)
            elif num == 2:
                self.attr_value(stop, strings, calls)
        if strings:
            if key == "value":
                node.strings = strings
            else:
                node.attrs[key] = strings

    def attr_value(self, end: int, strings: list[str], calls: set[str]) -> None:
        for num, wire, stop in self.r.fields_in(end):
            if wire != 2:
                continue
            if num == 2:
                self.string(stop, strings)
            elif num == 10:
                self.func_name(stop, calls)
            elif num == 1:  # ListValue: s (2), func (9)
                for n2, w2, s2 in self.r.fields_in(stop):
                    if n2 == 2 and w2 == 2:
                        self.string(s2, strings)
                    elif n2 == 9 and w2 == 2:
                        self.func_name(s2, calls)
            elif num == 8:  # TensorProto: string_val (8)
                for n2, w2, s2 in self.r.fields_in(stop):
                    if n2 == 8 and w2 == 2:
                        self.string(s2, strings)

    def string(self, stop: int, strings: list[str]) -> None:
        if len(strings) < _MAX_STRINGS:
            strings.append(self.text(stop))
        elif len(strings) == _MAX_STRINGS:
            strings.append(_MORE)

    def func_name(self, end: int, calls: set[str]) -> None:
        for num, wire, stop in self.r.fields_in(end):
            if num == 1 and wire == 2:
                calls.add(self.text(stop))


def _node_of(tensor: str) -> str:
    """The node of a tensor or input name ("^ctrl", "node:0", "node:output:0" in a function body)."""
    m = _NODE_NAME.match(tensor)
    return m.group(1) if m else tensor


def _parse(blob: Blob, ctx: ScanContext, kind: str) -> list[_Meta] | None:
    """The file read as a SavedModel or as a GraphDef; None (and the reason) when it does not parse so."""
    size = blob.size or 0
    with io.BufferedReader(blob.open(), 1 << 16) as f:  # type: ignore[type-var]
        walk = _Walk(ProtoReader(f, size, ctx))
        try:
            if kind == "graph":
                meta = _Meta()
                walk.graph(size, meta)
                return [meta]
            if kind == "MetaGraphDef":
                return [walk.meta_graph(size)]
            return walk.saved_model(size)
        except ProtoError as exc:
            # the walk descends only into fields TensorFlow's protos declare as messages, so a wire error found
            # here is one TensorFlow's own parser (the whole message, before any of it is used) also meets
            ctx.fail(
                blob.location, f"TensorFlow {kind} protobuf cannot be parsed ({exc})", misread=not exc.bound
            )
            return None


def scan_saved_model(blob: Blob, ctx: ScanContext) -> None:
    """``saved_model.pb``: every meta graph's graph and function library, and older Keras' layer metadata."""
    _scan_tf(blob, ctx, "SavedModel")


def scan_graph_def(blob: Blob, ctx: ScanContext) -> None:
    """A frozen (or any binary) GraphDef: its nodes and its function library."""
    _scan_tf(blob, ctx, "GraphDef")


def _scan_tf(blob: Blob, ctx: ScanContext, kind: str) -> None:
    """Both readings of the file: protobuf fields come in any order and parsers keep fields of another wire type
    as unknown ones, so one file can be a GraphDef (nodes, library) and a SavedModel (meta graphs) at once, and
    the first bytes cannot tell which one a loader takes. The reading the content suggests must parse; the other
    one is judged when it parses too."""
    from loopwarden.checks.models.dispatch import seekable_blob

    blob = seekable_blob(blob, ctx)
    others = [k for k in ("SavedModel", "GraphDef", "MetaGraphDef") if k != kind]
    for reading in (kind, *others):
        probe = ScanContext(ctx.path, ctx.limits, ctx.allow, started=ctx.started)
        metas = _parse(blob, probe if reading != kind else ctx, "graph" if reading == "GraphDef" else reading)
        if metas is None:
            continue
        if reading == kind == "SavedModel" and not metas:
            ctx.fail(blob.location, "TensorFlow SavedModel has no meta graph")
        for meta in metas:
            _judge(meta, blob, ctx)
            for ident, text in meta.keras:
                _keras_json(text, ident, blob, ctx)


def scan_text_graph(data: bytes, blob: Blob, ctx: ScanContext) -> None:
    """A SavedModel, GraphDef or MetaGraphDef in protobuf text format (``saved_model.pbtxt``, which the loaders
    read when a folder has no ``saved_model.pb``; a text ``.meta`` or ``graph.pbtxt``): judged as the binary
    file with the same fields. Text that opens as one and does not parse is unverified."""
    from loopwarden.checks.models._base import bytes_blob
    from loopwarden.checks.models.tf_text import TextProtoError, text_proto_readings

    try:
        readings = text_proto_readings(data)
    except (TextProtoError, UnicodeDecodeError, RecursionError) as exc:
        ctx.fail(blob.location, f"TensorFlow text protobuf cannot be parsed ({str(exc)[:200]})")
        return
    for kind, binary in readings:
        inner = bytes_blob(blob.name, blob.location, binary, blob.depth)
        metas = _parse(inner, ctx, "graph" if kind == "GraphDef" else kind)
        for meta in metas or ():
            _judge(meta, blob, ctx)
            for ident, text in meta.keras:
                _keras_json(text, ident, blob, ctx)


def _saver_only(meta: _Meta) -> tuple[set[str], set[str]]:
    """Library functions reached only from the saver's save node, and only from its restore node (TF2 puts
    SaveV2 and MergeV2Checkpoints in the first, RestoreV2 in the second): the functions the loader or
    ``tf.train.Checkpoint`` hand the variables' own path to. Reached from anything else (another top-level
    node, a concrete function of the object graph, the other saver node), a function is judged as any other."""
    if not meta.bodies or not meta.saver:
        return set(), set()
    functions = {b.function: b for b in meta.bodies if b.function is not None}
    roots: dict[str, set[str]] = {"save": set(), "restore": set(), "other": set(meta.concrete)}
    for body in meta.bodies:
        for node_name, calls in body.roots:
            if node_name == meta.saver.get(2):
                roots["save"].update(calls)
            elif node_name == meta.saver.get(3):
                roots["restore"].update(calls)
            else:
                roots["other"].update(calls)
    save, restore, other = (_reach(roots[k], functions) for k in ("save", "restore", "other"))
    return save - restore - other, restore - save - other


def _reach(roots: set[str], functions: dict[str, _Body]) -> set[str]:
    seen: set[str] = set()
    stack = [r for r in roots if r in functions]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        stack.extend(c for c in functions[name].calls if c in functions and c not in seen)
    return seen


def _judge(meta: _Meta, blob: Blob, ctx: ScanContext) -> None:
    """Report each reported op once per graph or function (with how many nodes use it)."""
    from loopwarden.checks.models.zipfmt import escapes_folder

    for name in meta.asset_files:
        # the loader feeds each asset's tensor os.path.join(<export>/assets, filename): an absolute name or one
        # with '..' makes the tables and ops that read the model's assets read that file instead
        why = escapes_folder(name)
        if why:
            ctx.add_severity(
                rules.TensorFlowOp,
                _H,
                f"asset file name '{name[:200]}' {why}: the loader hands that path to the ops that read the "
                "model's assets (a vocabulary table reads the file)",
                blob.location,
                op="AssetFileDef",
                asset=name[:200],
            )
    saver_fns = _saver_only(meta)
    scopes = tuple(n.rsplit("/", 1)[0] + "/" for n in meta.saver_nodes if "/" in n)
    seen: dict[tuple[str, str], list[int]] = {}
    for body in meta.bodies:
        for node in body.hits:
            verdict = _verdict(node, body, meta, saver_fns, scopes)
            if verdict is None:
                continue
            key = (body.where, node.op)
            if key in seen:
                seen[key][0] += 1
                continue
            seen[key] = [1, len(ctx.findings)]
            severity, what = verdict
            ctx.add_severity(
                rules.TensorFlowOp,
                severity,
                f"op {node.op[:100]} in {body.where} {what} (node '{node.name[:200]}')",
                blob.location,
                op=node.op[:100],
                node=node.name[:200],
                function=(body.function or "")[:200],
            )
    for count, index in seen.values():
        if count > 1:
            f = ctx.findings[index]
            ctx.findings[index] = dataclasses.replace(
                f, message=f"{f.message} and {count - 1} more", evidence={**f.evidence, "nodes": count}
            )


def _verdict(
    node: _Node, body: _Body, meta: _Meta, saver_fns: tuple[set[str], set[str]], scopes: tuple[str, ...]
) -> tuple[Severity, str] | None:
    op = node.op
    top = body.function is None
    if (
        op in _SAVER_OPS
        and (
            (not top and body.function in saver_fns[op in _RESTORE_OPS])
            or (top and (node.name in meta.saver_nodes or (bool(scopes) and node.name.startswith(scopes))))
        )
        and not _chosen_path(node, body)
    ):
        return None  # the saver: it writes and reads the variables at the path the loader gives it
    if op in _TABLE_FROM_FILE:
        source, path = _constant(node.inputs[1] if len(node.inputs) > 1 else "", body)
        if path is None and not top:
            path = _bound_constant(source, body, meta)
        if path is None or (top and source in meta.assets):
            return None  # an asset, or a path the loader or caller feeds in
        return (
            _H,
            f"fills a lookup table from the file '{path[:200]}', a constant that is none of the model's assets",
        )
    if op == "PrintV2":
        out = (node.attrs.get("output_stream") or [""])[0]
        return (_H, f"prints to '{out[:200]}'") if out.startswith("file://") else None
    if op in ("DecodeProtoV2", "EncodeProto"):
        src = (node.attrs.get("descriptor_source") or ["local://"])[0]
        if src in ("", "local://") or src.startswith("bytes://"):
            return None
        return _M, f"reads protobuf descriptors from '{src[:200]}'"
    if op in ("Copy", "CopyHost"):
        specs = [s for s in node.attrs.get("debug_ops_spec", []) if s]
        return (_H, f"dumps tensors by the debug spec '{specs[0][:200]}'") if specs else None
    if op == "FixedUnigramCandidateSampler":
        vocab = (node.attrs.get("vocab_file") or [""])[0]
        return (_M, f"reads the vocabulary file '{vocab[:200]}'") if vocab else None
    if op in _SEND_RECV:
        devices = [d for k in ("send_device", "recv_device") for d in node.attrs.get(k, [])]
        remote = [d for d in devices if not _LOCAL_JOB.match(d)]
        if not remote:
            return None
        return _M, f"exchanges a tensor with the device '{remote[0][:200]}' of another task of a cluster"
    if op == "RemoteCall":
        _, target = _constant(node.inputs[0] if node.inputs else "", body)
        if target is not None and _LOCAL_JOB.match(target):
            return None
        where = f"'{target[:200]}'" if target is not None else "a device the graph computes"
        return _M, f"runs a function on {where} (another task when the process is part of a cluster)"
    severity, what = _OPS[op]
    _, path = _constant(node.inputs[0] if node.inputs else "", body)
    return severity, what + (f" ('{path[:200]}')" if path is not None else "")


def _chosen_path(node: _Node, body: _Body) -> bool:
    """Whether a checkpoint op's path (MergeV2Checkpoints: its sources and destination) is built from anything
    but what the loader or caller feeds (placeholders, function arguments) and the strings the savers add: the
    TF1 saver is recognised by its name scope, which anyone can use, and its default file name by a constant
    that init ops (run at load, unfed) would write at."""
    starts = node.inputs[:2] if node.op == "MergeV2Checkpoints" else node.inputs[:1]
    stack = [_node_of(i) for i in starts if not i.startswith("^")]
    if not stack:
        return True
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if len(seen) > 256:
            return True
        if name in body.args:
            continue
        strings = body.consts.get(name)
        if strings is not None:
            if not all(_SAVER_STRING.match(v) for v in strings):
                return True
            continue
        inputs = body.paths.get(name)
        if inputs is None:
            return True  # computed by another op (or unknown): the graph chooses the path
        stack.extend(_node_of(i) for i in inputs if not i.startswith("^"))
    return False


def _bound_constant(arg: str, body: _Body, meta: _Meta) -> str | None:
    """The string of the object-graph constant a concrete function's argument is bound to (TF2 binds a
    function's captured inputs, its last arguments, to objects: a table's file name to an asset, or to a
    ``SavedConstant`` naming a top-level Const), else None."""
    bound = meta.bound.get(body.function or "")
    if not bound or arg not in body.args:
        return None
    i = body.args.index(arg) - (len(body.args) - len(bound))
    if i < 0:
        return None
    op = meta.objects.get(bound[i])
    top = meta.bodies[0] if meta.bodies and meta.bodies[0].function is None else None
    if op is None or top is None:
        return None
    return _constant(op, top)[1]


def _constant(tensor: str, body: _Body) -> tuple[str, str | None]:
    """The node a tensor comes from (through identities) and its string value when it is a constant."""
    name = _node_of(tensor)
    for _ in range(16):
        if name in body.consts:
            return name, body.consts[name][0]
        nxt = body.follow.get(name)
        if nxt is None:
            break
        name = nxt
    return name, None


def _keras_json(text: str, ident: str, blob: Blob, ctx: ScanContext) -> None:
    """A Keras layer's metadata (JSON, as tf_keras writes it): judged as a Keras config."""
    from loopwarden.checks.models.keras import check_keras_config

    if not text.strip():
        return
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:
        ctx.fail(blob.location, f"Keras metadata of '{ident[:100]}' is not JSON ({str(exc)[:200]})")
        return
    check_keras_config(obj, ctx, blob.location)


def scan_keras_metadata(blob: Blob, ctx: ScanContext) -> None:
    """``keras_metadata.pb`` (tf_keras SavedModels): SavedMetadata{1 nodes: {2 node_id, 3 node_path,
    4 identifier, 5 metadata (JSON), 6 version}}; tf_keras rebuilds each layer from its metadata."""
    from loopwarden.checks.models.dispatch import seekable_blob

    blob = seekable_blob(blob, ctx)
    size = blob.size or 0
    found: list[tuple[str, str]] = []
    with io.BufferedReader(blob.open(), 1 << 16) as f:  # type: ignore[type-var]
        r = ProtoReader(f, size, ctx)
        try:
            for num, wire, stop in r.fields_in(size):
                if num != 1 or wire != 2:
                    continue
                ident = ""
                for n2, w2, s2 in r.fields_in(stop):
                    if n2 == 4 and w2 == 2:
                        ident = r.bytes_(s2)[:_MAX_TEXT].decode("utf-8", "replace")
                    elif n2 == 5 and w2 == 2:
                        found.append((ident, r.bytes_(s2).decode("utf-8", "replace")))
        except ProtoError as exc:
            ctx.fail(
                blob.location, f"Keras metadata protobuf cannot be parsed ({exc})", misread=not exc.bound
            )
            return
    for ident, text in found:
        _keras_json(text, ident, blob, ctx)


def scan_checkpoint_index(blob: Blob, ctx: ScanContext) -> None:
    """A checkpoint's ``<prefix>.index`` (a tensor bundle: a sorted table of tensor names to shard, offset and
    size). It holds no code; its data shards ``<prefix>.data-NNNNN-of-MMMMM`` hold raw tensor bytes that
    TensorFlow reads at the offsets the index gives, so they are resolved as this index's raw data."""
    shards = _bundle_shards(blob)
    if shards is None:
        ctx.fail(blob.location, "TensorFlow checkpoint index: its table cannot be read")
        return
    if blob.file_path is None or blob.location.member is not None or not blob.name.endswith(".index"):
        return
    prefix = os.path.abspath(blob.location.path)[: -len(".index")]
    for i in range(min(shards, 100_000)):
        ctx.references.append(os.path.realpath(f"{prefix}.data-{i:05d}-of-{shards:05d}"))


def _bundle_shards(blob: Blob) -> int | None:
    """How many data shards a tensor bundle index declares (its header entry, the table's first, under the empty
    key: BundleHeaderProto{1 num_shards}); None when the table cannot be read that far."""
    from loopwarden.checks.models.detect import TABLE_FOOTER, read_varint

    size = blob.size or 0
    if size < TABLE_FOOTER:
        return None
    footer = blob.tail(TABLE_FOOTER)
    pos = 0
    handles = []
    for _ in range(4):
        value, pos = read_varint(footer, pos)
        if value is None:
            return None
        handles.append(value)
    meta_off, meta_size, index_off, index_size = handles
    body = size - TABLE_FOOTER
    if meta_off + meta_size + 5 > body or index_off + index_size + 5 > body:
        return None
    index = read_range(blob, index_off, index_size + 1)
    first = _first_entry(index[:-1]) if index[-1:] == b"\x00" else None
    if first is None:
        return None
    off, pos = read_varint(first[1], 0)
    length, _ = read_varint(first[1], pos)
    if off is None or length is None or off + length + 5 > body:
        return None
    block = read_range(blob, off, length + 1)
    entry = _first_entry(block[:-1]) if block[-1:] == b"\x00" else None
    if entry is None or entry[0] != b"":
        return None
    header = entry[1]
    pos = 0
    while pos < len(header):
        tag, pos = read_varint(header, pos)
        if tag is None or tag & 7 != 0:
            return None
        value, pos = read_varint(header, pos)
        if value is None:
            return None
        if tag >> 3 == 1:
            return value if 0 < value < 1 << 31 else None
    return None


def _first_entry(block: bytes) -> tuple[bytes, bytes] | None:
    """The key and value of a table block's first entry (shared length 0, unshared length, value length)."""
    from loopwarden.checks.models.detect import read_varint

    shared, pos = read_varint(block, 0)
    unshared, pos = read_varint(block, pos)
    vlen, pos = read_varint(block, pos)
    if shared != 0 or unshared is None or vlen is None or pos + unshared + vlen > len(block):
        return None
    return block[pos : pos + unshared], block[pos + unshared : pos + unshared + vlen]
