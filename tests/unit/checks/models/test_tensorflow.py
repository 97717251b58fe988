"""TensorFlow SavedModels, GraphDefs, Keras 2 metadata and checkpoint indexes (LW-MODEL-046, and the Keras checks on
``keras_metadata.pb``).

The protobuf bytes are built here with a small wire encoder (field numbers from tensorflow's saved_model.proto,
meta_graph.proto, graph.proto, node_def.proto, function.proto, attr_value.proto, tensor.proto, saver.proto,
saved_object_graph.proto, fingerprint.proto and tf_keras' saved_metadata.proto); TensorFlow is not needed. A few
real benign files written by TensorFlow are fixtures (see tests/fixtures/tensorflow/README.md).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.detect import Format, sniff
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.scanner import default_allow, scan_paths
from loopwarden.domain import Location, Severity, Verdict

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "tensorflow"
TF_OP = "LW-MODEL-046"

# --- a protobuf wire encoder -------------------------------------------------------------------------------------


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


def _len(num: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _int(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def _attr(key: str, value: bytes) -> bytes:
    return _len(5, _len(1, key) + _len(2, value))


def _s(text: str) -> bytes:
    """AttrValue{2 s}."""
    return _len(2, text)


def _func(name: str) -> bytes:
    """AttrValue{10 func: NameAttrList{1 name}}."""
    return _len(10, _len(1, name))


def _funcs(*names: str) -> bytes:
    """AttrValue{1 list: ListValue{9 func}}."""
    return _len(1, b"".join(_len(9, _len(1, n)) for n in names))


def _string_tensor(*values: str) -> bytes:
    """AttrValue{8 tensor: TensorProto{1 dtype DT_STRING, 8 string_val}}."""
    return _len(8, _int(1, 7) + b"".join(_len(8, v) for v in values))


def node(name: str, op: str, *inputs: str, **attrs: bytes) -> bytes:
    """NodeDef{1 name, 2 op, 3 input, 5 attr}."""
    return (
        _len(1, name)
        + _len(2, op)
        + b"".join(_len(3, i) for i in inputs)
        + b"".join(_attr(k, v) for k, v in attrs.items())
    )


def const(name: str, value: str) -> bytes:
    return node(name, "Const", dtype=_int(6, 7), value=_string_tensor(value))


def function(name: str, *nodes: bytes, args: tuple[str, ...] = ()) -> bytes:
    """FunctionDef{1 signature: OpDef{1 name, 2 input_arg{1 name}}, 3 node_def}."""
    sig = _len(1, name) + b"".join(_len(2, _len(1, a)) for a in args)
    return _len(1, sig) + b"".join(_len(3, n) for n in nodes)


def graph(*nodes: bytes, functions: tuple[bytes, ...] = ()) -> bytes:
    """GraphDef{1 node, 2 library: FunctionDefLibrary{1 function}, 4 versions}."""
    out = b"".join(_len(1, n) for n in nodes)
    if functions:
        out += _len(2, b"".join(_len(1, f) for f in functions))
    return out + _len(4, _int(1, 1987))


def saved_model(
    graph_def: bytes,
    *,
    saver: tuple[str, str] | None = None,
    assets: tuple[str, ...] = (),
    concrete: tuple[str, ...] = (),
    user_metadata: tuple[str, ...] = (),
    objects: tuple[bytes, ...] = (),
    bound: dict[str, tuple[int, ...]] | None = None,
    asset_file: str = "vocab.txt",
) -> bytes:
    """SavedModel{1 schema_version, 2 MetaGraphDef{1 meta_info_def, 2 graph_def, 3 saver_def, 6 asset_file_def,
    7 object_graph_def}}."""
    meta = _len(1, _len(1, "") + _len(4, "serve") + _len(5, "2.20.0")) + _len(2, graph_def)
    if saver is not None:
        meta += _len(3, _len(1, "saver_filename:0") + _len(2, saver[0]) + _len(3, saver[1]) + _int(7, 2))
    for tensor in assets:
        meta += _len(6, _len(1, _len(1, tensor)) + _len(2, asset_file))
    bound = bound or {}
    if concrete or user_metadata or objects or bound:
        graph_objects = b"".join(_len(1, o) for o in objects)
        graph_objects += b"".join(
            _len(1, _len(4, _len(1, "_tf_keras_layer") + _len(3, m))) for m in user_metadata
        )
        graph_objects += b"".join(_len(2, _len(1, c) + _len(2, b"")) for c in concrete)
        for name, ids in bound.items():  # SavedConcreteFunction{2 bound_inputs, packed}
            graph_objects += _len(2, _len(1, name) + _len(2, _len(2, b"".join(_varint(i) for i in ids))))
        meta += _len(7, graph_objects)
    return _int(1, 1) + _len(2, meta)


def _saver_functions() -> tuple[bytes, bytes, tuple[bytes, ...]]:
    """TF2's traced save and restore functions with the saver's top-level nodes that call them."""
    save = function(
        "__inference__traced_save_45",
        const("Const", "_temp/part"),
        node("StringJoin", "StringJoin", "file_prefix", "Const:output:0"),
        node("ShardedFilename", "ShardedFilename", "StringJoin:output:0"),
        node("SaveV2", "SaveV2", "ShardedFilename:filename:0"),
        node("Pack", "Pack", "ShardedFilename:filename:0"),
        node("MergeV2Checkpoints", "MergeV2Checkpoints", "Pack:output:0", "file_prefix"),
        node("StaticRegexFullMatch", "StaticRegexFullMatch", "file_prefix"),
        args=("file_prefix",),
    )
    restore = function(
        "__inference__traced_restore_57", node("RestoreV2", "RestoreV2", "file_prefix"), args=("file_prefix",)
    )
    top = (
        node("saver_filename", "Placeholder"),
        node("StatefulPartitionedCall_1", "StatefulPartitionedCall", "saver_filename", f=_func(save_name())),
        node(
            "StatefulPartitionedCall_2", "StatefulPartitionedCall", "saver_filename", f=_func(restore_name())
        ),
    )
    return save, restore, top


def save_name() -> str:
    return "__inference__traced_save_45"


def restore_name() -> str:
    return "__inference__traced_restore_57"


def _saver_model(
    *extra_top: bytes, functions: tuple[bytes, ...] = (), concrete: tuple[str, ...] = ()
) -> bytes:
    save, restore, top = _saver_functions()
    g = graph(*top, *extra_top, functions=(save, restore, *functions))
    return saved_model(
        g, saver=("StatefulPartitionedCall_1:0", "StatefulPartitionedCall_2"), concrete=concrete
    )


# --- scanning helpers --------------------------------------------------------------------------------------------


def _scan(data: bytes, name: str = "saved_model.pb") -> ScanContext:
    ctx = ScanContext(name, Limits(), default_allow())
    scan_blob(bytes_blob(name, Location(name), data, 0), ctx)
    return ctx


def _tf(ctx: ScanContext) -> dict[str, Severity]:
    return {str(f.evidence["op"]): f.severity for f in ctx.findings if f.rule_id == TF_OP}


def _clean(ctx: ScanContext) -> bool:
    return not ctx.findings and not ctx.unverified


# --- detection ---------------------------------------------------------------------------------------------------


def _sniff(data: bytes) -> Format:
    return sniff(data[:4096], len(data), None)


def test_real_saved_models_are_recognised_and_clean() -> None:
    for name in ("module_saved_model.pb", "lookup_saved_model.pb"):
        data = (FIXTURES / name).read_bytes()
        assert _sniff(data) is Format.TF_SAVED_MODEL
        ctx = _scan(data)
        assert _clean(ctx), (name, ctx.findings, ctx.unverified)


def test_real_keras_metadata_is_recognised_and_clean() -> None:
    data = (FIXTURES / "keras2_keras_metadata.pb").read_bytes()
    assert _sniff(data) is Format.KERAS_METADATA
    assert _clean(_scan(data, "keras_metadata.pb"))


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (saved_model(graph(node("x", "Placeholder"))), Format.TF_SAVED_MODEL),
        (saved_model(graph(node("x", "Placeholder")))[2:], Format.TF_SAVED_MODEL),  # without schema_version
        (graph(node("x", "Placeholder"), node("y", "Identity", "x")), Format.TF_GRAPH),
        # a GraphDef that opens with its library reads as a SavedModel too (both readings are judged)
        (graph(functions=(function("f", node("r", "ReadFile", "a")),)), Format.TF_SAVED_MODEL),
        (_len(1, _len(3, "root") + _len(4, "_tf_keras_network") + _len(5, "{}")), Format.KERAS_METADATA),
        (
            _int(1, 123) + _int(2, 456) + _int(3, 7) + _len(6, _int(1, 1)) + _len(7, "309080"),
            Format.TF_FINGERPRINT,
        ),
    ],
)
def test_tensorflow_files_are_recognised_by_structure(data: bytes, fmt: Format) -> None:
    assert _sniff(data) is fmt


@pytest.mark.parametrize(
    "data",
    [
        # ONNX ModelProto: ir_version, producer_name, graph (field 7) with a node
        _int(1, 7) + _len(2, "pytorch") + _len(3, "2.4") + _len(7, _len(1, _len(4, "Relu") + _len(1, "x"))),
        # SentencePiece: pieces {1 piece, 2 score float}
        _len(1, _len(1, "<unk>") + b"\x15\x00\x00\x00\x00") * 3,
        # a caffemodel: NetParameter{1 name string, ...}
        _len(1, "VGG_ILSVRC_16_layers") + _len(2, b"\x0a\x05conv1"),
        bytes(range(256)) * 4,
        b"\x08\x01\x12\x03abc",  # a SavedModel-shaped head whose meta graph is no message
    ],
)
def test_other_protobufs_and_binary_are_not_tensorflow(data: bytes) -> None:
    assert _sniff(data) not in (
        Format.TF_SAVED_MODEL,
        Format.TF_GRAPH,
        Format.KERAS_METADATA,
        Format.TF_FINGERPRINT,
    )


# --- the ops: every placement of every family ----------------------------------------------------------------


_BAD_OPS = [
    ("ReadFile", Severity.HIGH),
    ("WriteFile", Severity.HIGH),
    ("EagerPyFunc", Severity.CRITICAL),
    ("PyFunc", Severity.CRITICAL),
    ("PyFuncStateless", Severity.CRITICAL),
    ("MatchingFiles", Severity.MEDIUM),
    ("TFRecordDatasetV2", Severity.HIGH),
    ("WholeFileReaderV2", Severity.HIGH),
    ("RecordInput", Severity.HIGH),
    ("ImmutableConst", Severity.HIGH),
    ("CreateSummaryFileWriter", Severity.HIGH),
    ("DebugIdentityV2", Severity.HIGH),
    ("DataServiceDatasetV4", Severity.HIGH),
    ("SaveV2", Severity.HIGH),
    ("MergeV2Checkpoints", Severity.HIGH),
    ("RestoreV2", Severity.MEDIUM),
]


def _placements(bad: bytes) -> dict[str, bytes]:
    """The same node at each place a graph can run it from."""
    call = node("StatefulPartitionedCall", "StatefulPartitionedCall", "x", f=_func("outer"))
    return {
        "top-level graph": _saver_model(bad),
        "called function": _saver_model(call, functions=(function("outer", bad),)),
        "nested function": _saver_model(
            call,
            functions=(
                function("outer", node("PartitionedCall", "PartitionedCall", f=_func("inner"))),
                function("inner", bad),
            ),
        ),
        "while body": _saver_model(
            call,
            functions=(
                function("outer", node("w", "StatelessWhile", cond=_func("cond_1"), body=_func("body_1"))),
                function("cond_1", node("Less", "Less")),
                function("body_1", bad),
            ),
        ),
        "cond branch": _saver_model(
            call,
            functions=(
                function("outer", node("i", "If", then_branch=_func("then_1"), else_branch=_func("else_1"))),
                function("then_1", node("Identity", "Identity")),
                function("else_1", bad),
            ),
        ),
        "case branch": _saver_model(
            call,
            functions=(
                function("outer", node("c", "Case", branches=_funcs("b0", "b1"))),
                function("b0", node("Identity", "Identity")),
                function("b1", bad),
            ),
        ),
        "function called as an op": _saver_model(
            call, functions=(function("outer", node("g", "my_fn")), function("my_fn", bad))
        ),
        "function nothing calls": _saver_model(functions=(function("__inference_orphan_9", bad),)),
        "concrete function of the object graph": _saver_model(
            functions=(function("__inference_signature_wrapper_3", bad),),
            concrete=("__inference_signature_wrapper_3",),
        ),
        "frozen GraphDef": graph(node("x", "Placeholder"), bad),
        "GraphDef library": graph(functions=(function("f", bad),)),
    }


@pytest.mark.parametrize(("op", "severity"), _BAD_OPS)
def test_file_python_and_network_ops_are_reported_wherever_they_sit(op: str, severity: Severity) -> None:
    bad = node(f"evil/{op}", op, "path")
    for where, data in _placements(bad).items():
        ctx = _scan(data)
        assert _tf(ctx) == {op: severity}, (op, where, ctx.findings, ctx.unverified)
        assert not ctx.unverified, (op, where)


@pytest.mark.parametrize("op", ["ReadFile", "EagerPyFunc"])
def test_a_graph_def_whose_library_comes_first_is_read_both_ways(op: str) -> None:
    """Fields come in any order: a GraphDef that opens with its library looks like a SavedModel at first."""
    library = _len(2, _len(1, function("f", const("big", "w" * 5000))))
    data = library + _len(1, node("x", "Placeholder")) + _len(1, node("bad", op, "x"))
    assert _sniff(data) is Format.TF_SAVED_MODEL
    assert op in _tf(_scan(data))
    # a SavedModel whose meta graph follows stray node fields is neither by its first bytes: never clean
    ctx = _scan(_len(1, node("bad", op, "x")) + saved_model(graph(node("x", "Placeholder"))))
    assert ctx.unverified or op in _tf(ctx)


def test_a_saved_model_that_is_also_onnx_gets_both_readings() -> None:
    """ONNX's ModelProto and SavedModel share field 1 (a varint) and 2 (bytes): TensorFlow skips ONNX's graph
    (field 7) as an unknown field, and onnx reads the meta graph as a producer name."""
    model = _saver_model(node("r", "ReadFile", "p"))
    onnx_graph = _len(7, _len(1, _len(4, "Relu") + _len(1, "x")) + _len(2, "g"))
    data = model + onnx_graph + _len(8, _len(1, "") + _int(2, 17))
    assert _sniff(data) in (Format.ONNX, Format.TF_SAVED_MODEL)
    assert "ReadFile" in _tf(_scan(data, "saved_model.pb"))


def test_a_constant_path_is_shown() -> None:
    data = graph(const("p", "/etc/passwd"), node("i", "Identity", "p"), node("r", "ReadFile", "i:0"))
    (finding,) = _scan(data, "frozen.pb").findings
    assert "'/etc/passwd'" in finding.message


def test_one_finding_per_op_and_function_with_a_count() -> None:
    data = graph(*(node(f"w{i}", "WriteFile", "p", "c") for i in range(5)))
    (finding,) = _scan(data).findings
    assert finding.evidence["nodes"] == 5
    assert "4 more" in finding.message


@pytest.mark.parametrize(
    ("stream", "reported"),
    [
        ("file:///tmp/out.txt", True),
        ("file://relative.log", True),
        ("stderr", False),
        ("stdout", False),
        ("log(warning)", False),
    ],
)
def test_print_is_reported_only_when_it_writes_a_file(stream: str, reported: bool) -> None:
    printer = node("PrintV2", "PrintV2", "fmt", output_stream=_s(stream), end=_s("\n"))
    for where, data in _placements(printer).items():
        assert _tf(_scan(data)) == ({"PrintV2": Severity.HIGH} if reported else {}), (stream, where)


@pytest.mark.parametrize(
    ("attrs", "expected"),
    [
        ({"descriptor_source": _s("local://")}, {}),
        ({"descriptor_source": _s("bytes://\x0a\x02ab")}, {}),
        ({}, {}),
        ({"descriptor_source": _s("/etc/descriptors.bin")}, {"DecodeProtoV2": Severity.MEDIUM}),
    ],
)
def test_proto_decoding_reports_a_descriptor_file(
    attrs: dict[str, bytes], expected: dict[str, Severity]
) -> None:
    data = graph(node("d", "DecodeProtoV2", "bytes", message_type=_s("x.Y"), **attrs))
    assert _tf(_scan(data)) == expected


def test_copy_with_a_debug_spec_is_reported_and_plain_copy_is_not() -> None:
    assert _tf(_scan(graph(node("c", "Copy", "x")))) == {}
    spec = _len(1, _len(2, "DebugIdentity;file:///tmp/dump;0"))
    assert _tf(_scan(graph(node("c", "CopyHost", "x", debug_ops_spec=spec)))) == {"CopyHost": Severity.HIGH}


# --- the saver and asset-backed tables stay clean ----------------------------------------------------------------


def test_tf2_saver_functions_are_clean() -> None:
    assert _clean(_scan(_saver_model()))


def test_tf1_saver_scope_is_clean_and_the_same_ops_elsewhere_are_not() -> None:
    saver_nodes = (
        node("save/Const", "Const", dtype=_int(6, 7), value=_string_tensor("model")),
        node("save/SaveV2", "SaveV2", "save/Const"),
        node("save/control_dependency", "Identity", "save/Const"),
        node("save/RestoreV2", "RestoreV2", "save/Const"),
        node("save/restore_all", "NoOp", "^save/RestoreV2"),
    )
    clean = saved_model(graph(*saver_nodes), saver=("save/control_dependency:0", "save/restore_all"))
    assert _clean(_scan(clean))
    rogue = saved_model(
        graph(
            *saver_nodes, node("evil/SaveV2", "SaveV2", "p"), node("evil/Merge", "MergeV2Checkpoints", "p")
        ),
        saver=("save/control_dependency:0", "save/restore_all"),
    )
    assert _tf(_scan(rogue)) == {"SaveV2": Severity.HIGH, "MergeV2Checkpoints": Severity.HIGH}
    # without a saver_def there is no saver to exempt
    assert _tf(_scan(graph(*saver_nodes))) == {"SaveV2": Severity.HIGH, "RestoreV2": Severity.MEDIUM}


def test_saver_function_also_reached_from_elsewhere_is_reported() -> None:
    serving = node("serve", "StatefulPartitionedCall", "x", f=_func(save_name()))
    assert "SaveV2" in _tf(_scan(_saver_model(serving)))
    assert "SaveV2" in _tf(_scan(_saver_model(concrete=(save_name(),))))
    case = node("serve", "Case", "i", branches=_funcs("b0", save_name()))
    assert "SaveV2" in _tf(_scan(_saver_model(case, functions=(function("b0"),))))


def _tf2_saver_model(save: bytes, restore: bytes) -> bytes:
    """A SavedModel whose saver calls TF2's traced save and restore functions from two top-level nodes."""
    top = (
        node("StatefulPartitionedCall_1", "StatefulPartitionedCall", f=_func(save_name())),
        node("StatefulPartitionedCall_2", "StatefulPartitionedCall", f=_func(restore_name())),
    )
    return saved_model(
        graph(*top, functions=(save, restore)),
        saver=("StatefulPartitionedCall_1:0", "StatefulPartitionedCall_2"),
    )


def test_save_ops_in_the_restore_function_are_reported() -> None:
    """The loader runs the restore function; only the save function may write checkpoints."""
    save = function(save_name(), node("SaveV2", "SaveV2", "p"), args=("p",))
    restore = function(
        restore_name(),
        node("RestoreV2", "RestoreV2", "p"),
        node("m", "MergeV2Checkpoints", "a", "b"),
        args=("p", "a", "b"),
    )
    data = _tf2_saver_model(save, restore)
    assert _tf(_scan(data)) == {"MergeV2Checkpoints": Severity.HIGH}


def test_other_ops_in_the_saver_functions_are_still_reported() -> None:
    save = function(save_name(), node("SaveV2", "SaveV2", "p"), node("r", "ReadFile", "p"), args=("p",))
    restore = function(restore_name(), node("RestoreV2", "RestoreV2", "p"), args=("p",))
    data = _tf2_saver_model(save, restore)
    assert _tf(_scan(data)) == {"ReadFile": Severity.HIGH}


def test_lookup_table_from_a_fed_path_or_an_asset_is_clean() -> None:
    init = node(
        "init", "InitializeTableFromTextFileV2", "table", "filename", key_index=_int(3, -2 & 0xFFFFFFFF)
    )
    tf2 = _saver_model(
        node("call", "StatefulPartitionedCall", f=_func("__inference__initializer_1")),
        functions=(function("__inference__initializer_1", init, args=("filename",)),),
    )
    assert _clean(_scan(tf2))
    tf1 = saved_model(
        graph(
            const("asset_path", "/export/dir/assets/vocab.txt"),
            node("table", "HashTableV2"),
            node("init", "InitializeTableFromTextFileV2", "table", "asset_path:0"),
        ),
        assets=("asset_path:0",),
    )
    assert _clean(_scan(tf1))


@pytest.mark.parametrize("through_identity", [False, True])
@pytest.mark.parametrize("in_function", [False, True])
def test_lookup_table_from_a_constant_path_is_reported(through_identity: bool, in_function: bool) -> None:
    source = "p_id" if through_identity else "p"
    nodes = (
        const("p", "/home/user/.ssh/id_rsa"),
        node("p_id", "Identity", "p:output:0"),
        node("table", "HashTableV2"),
        node("init", "InitializeTableFromTextFile", "table", f"{source}:output:0"),
    )
    if in_function:
        data = _saver_model(
            node("call", "PartitionedCall", f=_func("init_fn")), functions=(function("init_fn", *nodes),)
        )
    else:
        data = saved_model(graph(*nodes), assets=("other:0",))
    found = _scan(data).findings
    assert [(f.rule_id, f.severity) for f in found] == [(TF_OP, Severity.HIGH)]
    assert "id_rsa" in found[0].message


_USER_OBJECT = _len(4, _len(1, "_generic_user_object"))
_ASSET_OBJECT = _len(5, _int(1, 0))
_RESOURCE_OBJECT = _len(10, b"")


def _tf2_table(bound_object: bytes) -> bytes:
    """TF2's table initializer: a concrete function whose captured inputs (file name, table) are bound to
    object-graph nodes 1 and 2."""
    init = function(
        "__inference__initializer_213",
        node("init", "InitializeTableFromTextFileV2", "table_handle", "asset_filepath"),
        args=("asset_filepath", "table_handle"),
    )
    g = graph(const("evil_path", "/etc/shadow"), node("x", "Placeholder"), functions=(init,))
    return saved_model(
        g,
        objects=(_USER_OBJECT, bound_object, _RESOURCE_OBJECT),
        bound={"__inference__initializer_213": (1, 2)},
    )


def test_tf2_table_bound_to_an_asset_is_clean() -> None:
    assert _clean(_scan(_tf2_table(_ASSET_OBJECT)))


def test_tf2_table_bound_to_a_saved_constant_is_reported() -> None:
    (finding,) = _scan(_tf2_table(_len(9, _len(1, "evil_path")))).findings
    assert finding.rule_id == TF_OP
    assert finding.severity is Severity.HIGH
    assert "/etc/shadow" in finding.message


def test_decoders_and_plain_ops_are_not_reported() -> None:
    ops = ("DecodeRaw", "DecodeJpeg", "DecodePng", "Print", "Assert", "StringFormat", "ShardedFilename")
    data = graph(*(node(op.lower(), op, "x") for op in ops))
    assert _clean(_scan(data))


# --- Keras layer metadata ----------------------------------------------------------------------------------------


def _keras_layer(class_name: str, **config: object) -> str:
    return json.dumps({"class_name": class_name, "name": "l", "config": {"name": "l", **config}})


_LAMBDA = _keras_layer(
    "Lambda", function=["4wEAAAAAAAAA", None, None], function_type="lambda", module="__main__"
)


def _keras_metadata(*metadata: str) -> bytes:
    return b"".join(
        _len(1, _int(2, i) + _len(3, f"root.layer-{i}") + _len(4, "_tf_keras_layer") + _len(5, m))
        for i, m in enumerate(metadata)
    )


def test_keras_metadata_lambda_is_reported_like_in_keras_files() -> None:
    benign = _keras_layer("Dense", units=2, activation="relu")
    assert _clean(_scan(_keras_metadata(benign, benign), "keras_metadata.pb"))
    rules = {f.rule_id for f in _scan(_keras_metadata(benign, _LAMBDA), "keras_metadata.pb").findings}
    assert "LW-MODEL-032" in rules
    ref = _keras_layer(
        "Dense", units=2, activation={"class_name": "function", "config": "system", "module": "os"}
    )
    assert "LW-MODEL-033" in {f.rule_id for f in _scan(_keras_metadata(ref), "keras_metadata.pb").findings}


def test_keras_metadata_that_is_not_json_is_unverified() -> None:
    ctx = _scan(_keras_metadata('{"class_name": "Lambda", '), "keras_metadata.pb")
    assert ctx.unverified and not ctx.findings


def test_object_graph_user_metadata_lambda_is_reported() -> None:
    data = saved_model(graph(node("x", "Placeholder")), user_metadata=(_LAMBDA,))
    assert "LW-MODEL-032" in {f.rule_id for f in _scan(data).findings}
    assert _clean(_scan(saved_model(graph(node("x", "Placeholder")), user_metadata=(_keras_layer("Dense"),))))


# --- damaged files -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["module_saved_model.pb", "lookup_saved_model.pb"])
def test_truncated_saved_models_are_unverified(name: str) -> None:
    data = (FIXTURES / name).read_bytes()
    for cut in (5, 40, 300, len(data) // 2, len(data) - 1):
        ctx = _scan(data[:cut])
        assert ctx.unverified or ctx.findings, (name, cut)


@pytest.mark.parametrize(
    "data",
    [
        graph(node("x", "Placeholder"), node("r", "ReadFile", "x"))[:-3],
        saved_model(graph(node("x", "Placeholder")))[:-1],
        # a length that runs past the message
        _int(1, 1) + _varint(2 << 3 | 2) + _varint(10_000) + _len(1, b""),
        # a meta graph whose graph holds garbage
        _int(1, 1) + _len(2, _len(1, b"") + _len(2, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")),
        # a wire type 6
        saved_model(graph(node("x", "Placeholder"))) + b"\x16\x00",
    ],
)
def test_damaged_tensorflow_protobufs_are_unverified(data: bytes) -> None:
    ctx = _scan(data)
    assert ctx.unverified, ctx.findings


def test_a_saved_model_without_meta_graphs_is_unverified() -> None:
    data = _int(1, 1) + _len(2, b"")
    assert _sniff(data) is not Format.TF_SAVED_MODEL or _scan(data).unverified


# --- a SavedModel folder -----------------------------------------------------------------------------------------


def _block(*entries: tuple[bytes, bytes]) -> bytes:
    body = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
    return body + struct.pack("<II", 0, 1)


def checkpoint_index(shards: int, *, compressed: bool = False) -> bytes:
    """A tensor bundle index: one data block (header under the empty key, one tensor entry), the index and
    metaindex blocks, each with its 5-byte trailer, and the 48-byte footer."""
    header = _int(1, shards) + _len(3, _int(1, 1))
    entry = _int(1, 1) + _len(2, b"") + _int(4, 0) + _int(5, 4)
    data_block = _block((b"", header), (b"v/.ATTRIBUTES/VARIABLE_VALUE", entry))
    kind = b"\x01" if compressed else b"\x00"
    out = data_block + kind + b"\x00" * 4
    index_off = len(out)
    index_block = _block((b"w", _varint(0) + _varint(len(data_block))))
    out += index_block + b"\x00" * 5
    meta_off = len(out)
    meta_block = _block()
    out += meta_block + b"\x00" * 5
    handles = _varint(meta_off) + _varint(len(meta_block)) + _varint(index_off) + _varint(len(index_block))
    return out + handles.ljust(40, b"\x00") + (0xDB4775248B80FB57).to_bytes(8, "little")


def _write_model(root: Path, shards: int = 1) -> None:
    (root / "variables").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "saved_model.pb").write_bytes((FIXTURES / "module_saved_model.pb").read_bytes())
    fingerprint = _int(1, 1234567) + _int(2, 99) + _int(3, 5) + _int(4, 6) + _int(5, 7) + _len(6, _int(1, 1))
    (root / "fingerprint.pb").write_bytes(fingerprint + _len(7, "3090803082"))
    (root / "variables" / "variables.index").write_bytes(checkpoint_index(shards))
    for i in range(shards):
        raw = bytes([0xDE, 0xAD, 0x00, 0x01]) * 40
        (root / "variables" / f"variables.data-{i:05d}-of-{shards:05d}").write_bytes(raw)


@pytest.mark.parametrize("shards", [1, 3])
def test_saved_model_folder_gives_one_clean_result_per_file(tmp_path: Path, shards: int) -> None:
    _write_model(tmp_path / "m", shards)
    report = scan_paths([str(tmp_path)], jobs=1)
    assert len(report.targets) == 3 + shards
    assert {r.verdict for r in report.targets} == {Verdict.CLEAN}, [
        (r.path, r.reason) for r in report.targets
    ]


def test_data_shard_without_its_index_is_unverified(tmp_path: Path) -> None:
    _write_model(tmp_path / "m")
    (tmp_path / "m" / "variables" / "variables.index").unlink()
    report = scan_paths([str(tmp_path)], jobs=1)
    shard = next(r for r in report.targets if "variables.data" in r.path)
    assert shard.verdict is Verdict.UNVERIFIED
    alone = scan_paths([shard.path], jobs=1).targets[0]
    assert alone.verdict is Verdict.UNVERIFIED


def test_shards_the_index_does_not_declare_stay_unverified(tmp_path: Path) -> None:
    _write_model(tmp_path / "m", 1)
    (tmp_path / "m" / "variables" / "variables.data-00001-of-00002").write_bytes(b"\xde\xad" * 10)
    report = scan_paths([str(tmp_path)], jobs=1)
    extra = next(r for r in report.targets if r.path.endswith("00001-of-00002"))
    assert extra.verdict is Verdict.UNVERIFIED


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-60] + b[-48:],  # blocks cut away
        lambda b: checkpoint_index(1, compressed=True),  # a block we cannot read
        lambda b: b"\x00" * 64 + b[-8:],  # only the magic
    ],
)
def test_unreadable_checkpoint_index_is_unverified(damage: Callable[[bytes], bytes]) -> None:
    data = damage(checkpoint_index(1))
    ctx = ScanContext("variables.index", Limits(), default_allow())
    blob = bytes_blob("variables.index", Location("variables.index"), data, 0)
    assert sniff(data[:4096], len(data), blob.open) is Format.TF_CHECKPOINT_INDEX
    scan_blob(blob, ctx)
    assert ctx.unverified


# --- bare MetaGraphDef files (TF1's model.ckpt.meta, read by tf.train.import_meta_graph) -----------------------
# A MetaGraphDef opening with its meta_info_def sniffed as text and one opening with its graph_def was read only as
# a SavedModel (the graph taken for a meta graph): both were clean whatever their graph ran.


def _meta_graph(graph_def: bytes, *, info: bytes | None = None, graph_first: bool = False) -> bytes:
    info = _len(4, "serve") + _len(5, "1.15.5") if info is None else info
    parts = [_len(1, info), _len(2, graph_def)]
    return b"".join(reversed(parts) if graph_first else parts)


_PYFUNC = graph(const("path", "/etc/passwd"), node("py", "PyFunc", "path"))
_READ_IN_FUNCTION = graph(functions=(function("f", node("r", "ReadFile", "a"), args=("a",)),))


@pytest.mark.parametrize(
    "data",
    [
        _meta_graph(_PYFUNC),
        _meta_graph(_PYFUNC, graph_first=True),
        _meta_graph(_PYFUNC, info=_len(1, "v1") + _len(4, "train")),
        _meta_graph(
            _PYFUNC, info=_len(2, _len(1, _len(1, "PyFunc"))) + _len(5, "1.15.0")
        ),  # stripped op list first
        _len(2, _PYFUNC),  # the graph alone
        _meta_graph(_READ_IN_FUNCTION),
    ],
)
@pytest.mark.parametrize("name", ["model.ckpt.meta", "graph.meta", "model.bin"])
def test_bare_meta_graph_is_judged(data: bytes, name: str) -> None:
    found = _tf(_scan(data, name))
    assert found and max(found.values()) >= Severity.HIGH, found


def test_bare_meta_graph_of_ordinary_ops_is_clean() -> None:
    benign = graph(const("x", "1"), node("y", "Identity", "x"), node("z", "MatMul", "x", "y"))
    for data in (_meta_graph(benign), _meta_graph(benign, graph_first=True)):
        ctx = _scan(data, "model.ckpt.meta")
        assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    "text", [b"\n\nimport os\n", b"\n# heading\ntext\n", b"\n\x05hello world" + b" " * 40]
)
def test_text_opening_with_a_newline_is_not_a_meta_graph(text: bytes) -> None:
    ctx = _scan(text, "notes.txt")
    assert not ctx.findings, ctx.findings


# --- the saver's exemption holds only for the path the loader feeds -----------------------------------------------


def _tf1_saver(
    *, sharded_suffix: str = "_temp_0123456789abcdef0123456789abcdef/part", regex_op: bool = False
) -> tuple[bytes, ...]:
    """The save/ scope tf.compat.v1.train.Saver(sharded=True) builds: the file name a PlaceholderWithDefault over
    "model" (fed by the loader), the sharded suffix chosen by an S3 test, ShardedFilename, SaveV2, the merge, the
    restore."""
    if regex_op:
        s3 = (
            const("save/RegexFullMatch/pattern", "^s3://.*"),
            node("save/RegexFullMatch", "RegexFullMatch", "save/Const", "save/RegexFullMatch/pattern"),
        )
    else:
        s3 = (node("save/RegexFullMatch", "StaticRegexFullMatch", "save/Const", pattern=_s("^s3://.*")),)
    return (
        const("save/filename/input", "model"),
        node("save/filename", "PlaceholderWithDefault", "save/filename/input"),
        node("save/Const", "PlaceholderWithDefault", "save/filename"),
        *s3,
        const("save/Const_1", ".part"),
        const("save/Const_2", sharded_suffix),
        node("save/Select", "Select", "save/RegexFullMatch", "save/Const_1", "save/Const_2"),
        node("save/StringJoin", "StringJoin", "save/Const", "save/Select"),
        node("save/num_shards", "Const", dtype=_int(6, 3)),
        node("save/ShardedFilename/shard", "Const", dtype=_int(6, 3)),
        node(
            "save/ShardedFilename",
            "ShardedFilename",
            "save/StringJoin",
            "save/ShardedFilename/shard",
            "save/num_shards",
        ),
        const("save/SaveV2/tensor_names", "v"),
        const("save/SaveV2/shape_and_slices", ""),
        node(
            "save/SaveV2",
            "SaveV2",
            "save/ShardedFilename",
            "save/SaveV2/tensor_names",
            "save/SaveV2/shape_and_slices",
            "v",
        ),
        node("save/control_dependency", "Identity", "save/ShardedFilename", "^save/SaveV2"),
        node(
            "save/MergeV2Checkpoints/checkpoint_prefixes", "Pack", "save/control_dependency", "^save/SaveV2"
        ),
        node(
            "save/MergeV2Checkpoints",
            "MergeV2Checkpoints",
            "save/MergeV2Checkpoints/checkpoint_prefixes",
            "save/Const",
        ),
        node("save/Identity", "Identity", "save/Const", "^save/MergeV2Checkpoints"),
        node(
            "save/RestoreV2",
            "RestoreV2",
            "save/Const",
            "save/SaveV2/tensor_names",
            "save/SaveV2/shape_and_slices",
        ),
        node("save/Assign", "AssignVariableOp", "v", "save/RestoreV2"),
        node("save/restore_all", "NoOp", "^save/Assign"),
    )


_TF1_SAVER = ("save/Identity:0", "save/restore_all")


@pytest.mark.parametrize(
    "suffix", ["_temp_0123456789abcdef0123456789abcdef/part", "_temp/part", "_temp\\part"]
)
@pytest.mark.parametrize("regex_op", [False, True])
def test_tf1_sharded_saver_stays_clean(suffix: str, regex_op: bool) -> None:
    data = saved_model(graph(*_tf1_saver(sharded_suffix=suffix, regex_op=regex_op)), saver=_TF1_SAVER)
    assert _clean(_scan(data))


_EVIL = "/home/user/.bashrc.d/x"


@pytest.mark.parametrize(
    "rogue",
    [
        pytest.param((const("save/p", _EVIL), node("save/SaveV2_1", "SaveV2", "save/p")), id="constant"),
        pytest.param(
            (
                const("save/p/input", _EVIL),
                node("save/p", "PlaceholderWithDefault", "save/p/input"),
                node("save/SaveV2_1", "SaveV2", "save/p:0"),
            ),
            id="placeholder-default",
        ),
        pytest.param(
            (
                const("save/up", "/../../../home/user/.bashrc.d/x"),
                node("save/p", "StringJoin", "save/Const", "save/up"),
                node(
                    "save/MergeV2Checkpoints_1",
                    "MergeV2Checkpoints",
                    "save/MergeV2Checkpoints/checkpoint_prefixes",
                    "save/p",
                ),
            ),
            id="joined-traversal",
        ),
        pytest.param(
            (
                node("save/p", "RegexReplace", "save/Const", pattern=_s("model"), rewrite=_s(_EVIL)),
                node("save/SaveV2_1", "SaveV2", "save/p"),
            ),
            id="computed",
        ),
        pytest.param(
            (
                node(
                    "save/many", "Const", dtype=_int(6, 7), value=_string_tensor(*(["model"] * 8 + [_EVIL]))
                ),
                node("save/MergeV2Checkpoints_1", "MergeV2Checkpoints", "save/many", "save/Const"),
            ),
            id="ninth-string",
        ),
        pytest.param((node("save/SaveV2_1", "SaveV2"),), id="no-path"),
    ],
)
def test_tf1_saver_scope_does_not_exempt_a_path_the_graph_chooses(rogue: tuple[bytes, ...]) -> None:
    """The TF1 saver is recognised by its name scope, which any node may use: a SaveV2 or MergeV2Checkpoints in
    save/ that the SavedModel's init op runs at load (unfed) wrote or deleted checkpoint files at a path the graph
    chose, and was clean. Exempt are only paths built from the fed file name, placeholders and the saver's own
    strings."""
    main_op = node("main_op", "NoOp", *(f"^{n}" for n in ("save/SaveV2_1", "save/MergeV2Checkpoints_1")))
    data = saved_model(graph(*_tf1_saver(), *rogue, main_op), saver=_TF1_SAVER)
    assert set(_tf(_scan(data))) & {"SaveV2", "MergeV2Checkpoints"}, rogue


def test_saver_def_naming_a_rogue_node_does_not_exempt_it() -> None:
    """The saver_def's names are the file's too: a restore op that is itself a SaveV2 at a constant path."""
    rogue = (const("p", _EVIL), node("evil/restore", "SaveV2", "p"))
    data = saved_model(graph(*rogue), saver=("evil/restore:0", "evil/restore"))
    assert _tf(_scan(data)) == {"SaveV2": Severity.HIGH}


def test_tf2_restore_function_reading_a_constant_path_is_reported() -> None:
    """TF2's restore function (run by the loader) reads the checkpoint at its argument; a RestoreV2 at a constant
    path reads another checkpoint into the model."""
    save = function(save_name(), node("SaveV2", "SaveV2", "file_prefix"), args=("file_prefix",))
    restore = function(
        restore_name(),
        const("p", "/home/user/other/ckpt"),
        node("RestoreV2", "RestoreV2", "p:output:0"),
        args=("file_prefix",),
    )
    data = _tf2_saver_model(save, restore)
    assert _tf(_scan(data)) == {"RestoreV2": Severity.MEDIUM}


def _asset_model(filename: str) -> bytes:
    """A TF1 table over an asset: the loader feeds the asset's tensor os.path.join(<export>/assets, filename)."""
    g = graph(
        const("asset_path", "vocab.txt"),
        node("table", "HashTableV2"),
        node("init", "InitializeTableFromTextFileV2", "table", "asset_path:0"),
    )
    return saved_model(g, assets=("asset_path:0",), asset_file=filename)


@pytest.mark.parametrize(
    "filename", ["/etc/passwd", "../../.ssh/id_rsa", "sub/../../../x", "..\\..\\secret", "C:/x"]
)
def test_asset_file_name_outside_the_assets_folder_is_reported(filename: str) -> None:
    """An asset's file name is joined to the assets folder by the loader (an absolute name replaces it), and the
    table fed with that path reads the file: it was clean, the table's input being an asset tensor."""
    data = _asset_model(filename)
    assert filename.encode() in data
    assert _tf(_scan(data)) == {"AssetFileDef": Severity.HIGH}


@pytest.mark.parametrize("filename", ["vocab.txt", "tokens/vocab.txt", "vocab..txt"])
def test_asset_file_names_inside_the_assets_folder_stay_clean(filename: str) -> None:
    assert _clean(_scan(_asset_model(filename)))


_SAVER_FIELD = _len(
    3, _len(1, "save/Const:0") + _len(2, "save/control_dependency:0") + _len(3, "save/restore_all")
)
_SIGNATURE_FIELD = _len(5, _len(1, "serving_default") + _len(2, _len(3, "tensorflow/serving/predict")))
_COLLECTION_FIELD = _len(4, _len(1, "variables") + _len(2, _len(2, _len(1, "x:0"))))
_BIG_COLLECTION_FIELD = _len(
    4, _len(1, "variables") + _len(2, _len(2, b"".join(_len(1, f"v{i}:0") for i in range(900))))
)
_ASSET_FIELD = _len(6, _len(1, _len(1, "a:0")) + _len(2, "vocab.txt"))


@pytest.mark.parametrize(
    "lead",
    [_SAVER_FIELD, _SIGNATURE_FIELD, _COLLECTION_FIELD, _BIG_COLLECTION_FIELD, _ASSET_FIELD],
    ids=["saver", "signature", "collection", "collection-past-the-head", "asset"],
)
def test_bare_meta_graph_with_other_fields_first_is_judged(lead: bytes) -> None:
    # protobuf parsers take fields in any order: these sniffed as text (or unknown) and were clean
    found = _tf(_scan(lead + _len(2, _PYFUNC), "model.ckpt.meta"))
    assert found and max(found.values()) >= Severity.HIGH, found


def test_bare_meta_graph_with_other_fields_first_and_ordinary_ops_is_clean() -> None:
    benign = graph(const("x", "1"), node("y", "Identity", "x"))
    ctx = _scan(_SIGNATURE_FIELD + _SAVER_FIELD + _len(2, benign), "model.ckpt.meta")
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    "text",
    [
        b'"name","value"\n"lr","0.001"\n',
        b"* a markdown list item\n* another\n",
        b"2023 results: accuracy 0.93\n",
        b":root { color: red }\n",
        b"\x1a\x05hello plain words and more words",
        b'"\x05serve" looks like a tag but is a quote\n',
    ],
)
def test_text_opening_like_a_meta_graph_field_is_not_one(text: bytes) -> None:
    ctx = _scan(text, "notes.txt")
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)
