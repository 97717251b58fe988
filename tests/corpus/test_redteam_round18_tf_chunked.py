"""Round 18 red team: chunked TensorFlow SavedModels (``saved_model.cpb``).

TensorFlow's proto splitter writes a SavedModel over 2 GB as ``saved_model.cpb``: a Riegeli/records file whose
records are chunks of the SavedModel and whose last record is a ``ChunkMetadata`` telling how the chunks merge
back into one message (tensorflow/tools/proto_splitter/chunk.proto). TensorFlow ships the merger
(``tensorflow::tools::proto_splitter::Merger::Read`` in libtensorflow_framework) and names ``saved_model.cpb`` a
SavedModel (``tf.saved_model.contains_saved_model`` is True for a folder holding only it); builds that link the
merger into the SavedModel readers merge it and run its graph. The OSS tensorflow-cpu 2.21 wheel does not: its
Python reader (loader_impl.parse_saved_model, where the merger import is a placeholder) and its C API reader
(``TF_LoadSessionFromSavedModel``) both refuse a folder without ``saved_model.pb``/``.pbtxt``, and saving one is
refused ("experimental_image_format is disabled in OSS"). So the write is not confirmed with the OSS loader; the
test below pins that (if a later wheel starts reading ``.cpb``, it fails and the marker shows the write).

The scanner did not know the format. Contrary to the task's premise, no case here scanned ``clean`` before this
round: every Riegeli file opens with 0x83 (a MessagePack map of three entries, which ends at byte 21), so each was
``unverified`` as "bytes after the MessagePack value", with no finding and without its graph being read. Now the
chunks are merged and the graph judged: the attacks are LW-MODEL-046 HIGH, and a readable benign chunked
SavedModel is ``clean`` instead of ``unverified``. The files are built here without TensorFlow (a Riegeli
writer with its HighwayHash checksums, which the signature chunk of every Riegeli file confirms).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_redteam_round18_tf as r18tf

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

TF_OP = "LW-MODEL-046"
MARKER = "/tmp/tf18b-marker"

# --- HighwayHash-64 with Riegeli's key (riegeli_records_file_format.md) ---------------------------------------------

_M64 = (1 << 64) - 1
_KEY = (0x2F696C6567656952, 0x0A7364726F636572, 0x2F696C6567656952, 0x0A7364726F636572)


def _zipper(v1, v0):
    a0 = (
        (((v0 & 0xFF000000) | (v1 & 0xFF00000000)) >> 24)
        | (((v0 & 0xFF0000000000) | (v1 & 0xFF000000000000)) >> 16)
        | (v0 & 0xFF0000)
        | ((v0 & 0xFF00) << 32)
        | ((v1 & 0xFF00000000000000) >> 8)
        | (v0 << 56)
    ) & _M64
    a1 = (
        (((v1 & 0xFF000000) | (v0 & 0xFF00000000)) >> 24)
        | (v1 & 0xFF0000)
        | ((v1 & 0xFF0000000000) >> 16)
        | ((v1 & 0xFF00) << 24)
        | ((v0 & 0xFF000000000000) >> 8)
        | ((v1 & 0xFF) << 48)
        | (v0 & 0xFF00000000000000)
    ) & _M64
    return a1, a0


def _rot32(x: int, count: int) -> int:
    return ((x << count) | (x >> (32 - count))) & 0xFFFFFFFF


def highway64(data: bytes) -> int:
    mul0 = [0xDBE6D5D5FE4CCE2F, 0xA4093822299F31D0, 0x13198A2E03707344, 0x243F6A8885A308D3]
    mul1 = [0x3BD39E10CB0EF593, 0xC0ACF169B5F18A8C, 0xBE5466CF34E90C6C, 0x452821E638D01377]
    v0 = [mul0[i] ^ _KEY[i] for i in range(4)]
    v1 = [mul1[i] ^ (((_KEY[i] >> 32) | (_KEY[i] << 32)) & _M64) for i in range(4)]

    def update(lanes):
        for i in range(4):
            v1[i] = (v1[i] + mul0[i] + lanes[i]) & _M64
            mul0[i] ^= ((v1[i] & 0xFFFFFFFF) * (v0[i] >> 32)) & _M64
            v0[i] = (v0[i] + mul1[i]) & _M64
            mul1[i] ^= ((v0[i] & 0xFFFFFFFF) * (v1[i] >> 32)) & _M64
        for a, b in ((1, 0), (3, 2)):
            x1, x0 = _zipper(v1[a], v1[b])
            v0[a] = (v0[a] + x1) & _M64
            v0[b] = (v0[b] + x0) & _M64
        for a, b in ((1, 0), (3, 2)):
            x1, x0 = _zipper(v0[a], v0[b])
            v1[a] = (v1[a] + x1) & _M64
            v1[b] = (v1[b] + x0) & _M64

    n = len(data)
    full = n - n % 32
    for off in range(0, full, 32):
        update([int.from_bytes(data[off + 8 * k : off + 8 * k + 8], "little") for k in range(4)])
    size = n % 32
    if size:
        rem = data[full:]
        for i in range(4):
            v0[i] = (v0[i] + ((size << 32) + size)) & _M64
        for i in range(4):
            lo, hi = v1[i] & 0xFFFFFFFF, v1[i] >> 32
            v1[i] = _rot32(lo, size) | (_rot32(hi, size) << 32)
        packet = bytearray(32)
        size4 = size & ~3
        mod4 = size & 3
        packet[:size4] = rem[:size4]
        tail = rem[size4:]
        if size & 16:
            for i in range(4):
                packet[28 + i] = rem[size4 + i + mod4 - 4]
        elif mod4:
            packet[16] = tail[0]
            packet[17] = tail[mod4 >> 1]
            packet[18] = tail[mod4 - 1]
        update([int.from_bytes(packet[8 * k : 8 * k + 8], "little") for k in range(4)])
    for _ in range(4):
        update([((v0[j] >> 32) | (v0[j] << 32)) & _M64 for j in (2, 3, 0, 1)])
    return (v0[0] + v1[0] + mul0[0] + mul1[0]) & _M64


# --- protobuf and Riegeli writers --------------------------------------------------------------------------------


_varint, _len, _int = r18tf._varint, r18tf._len, r18tf._int  # the protobuf writers of the round's TF tests


def _node(name: str, op: str, *inputs: str, **attrs: bytes) -> bytes:
    """NodeDef{1 name, 2 op, 3 input, 5 attr map}."""
    return (
        _len(1, name)
        + _len(2, op)
        + b"".join(_len(3, i) for i in inputs)
        + b"".join(_len(5, _len(1, k) + _len(2, v)) for k, v in attrs.items())
    )


def _const(name: str, value: str) -> bytes:
    """A string Const: AttrValue{6 type}, AttrValue{8 TensorProto{1 dtype, 2 shape, 8 string_val}}."""
    return _node(name, "Const", dtype=_int(6, 7), value=_len(8, _int(1, 7) + _len(2, b"") + _len(8, value)))


def write_nodes(path: str = MARKER) -> list[bytes]:
    return [
        _const("path", path),
        _const("data", "written by the chunked graph"),
        _node("write", "WriteFile", "path", "data"),
        _node("main_op", "NoOp", "^write"),
    ]


def _graph(nodes: list[bytes]) -> bytes:
    """GraphDef{1 node, 4 versions{1 producer}}."""
    return b"".join(_len(1, n) for n in nodes) + _len(4, _int(1, 1987))


def _meta_info() -> bytes:
    """MetaGraphDef{1 meta_info_def{4 tags, 5 tensorflow_version}, 4 collection_def{saved_model_main_op}}."""
    collection = _len(4, _len(1, "saved_model_main_op") + _len(2, _len(1, _len(1, "main_op"))))
    return _len(1, _len(4, "serve") + _len(5, "2.21.0")) + collection


def _saved_model(graph_def: bytes | None) -> bytes:
    """SavedModel{1 schema version, 2 meta_graphs: MetaGraphDef{..., 2 graph_def}}."""
    meta = _meta_info() + (_len(2, graph_def) if graph_def is not None else b"")
    return _int(1, 1) + _len(2, meta)


def _field(*tags: tuple[str, int]) -> bytes:
    """FieldIndex{1 field, 3 index} list."""
    return b"".join(_len(1, _int(1 if kind == "field" else 3, value)) for kind, value in tags)


def _chunked(index: int | None, *fields: tuple[bytes, bytes]) -> bytes:
    """ChunkedMessage{1 chunk_index, 2 ChunkedField{1 field_tag, 3 message}}."""
    head = _int(1, index) if index is not None else b""
    return head + b"".join(_len(2, tags + _len(3, msg)) for tags, msg in fields)


def _hash(data: bytes) -> bytes:
    return highway64(data).to_bytes(8, "little")


SIGNATURE = bytes.fromhex(
    "83af70d10d884a3f0000000000000000400000000000000091bac23c9287e1a9"
    "0000000000000000e19f13c0e9b1c37273000000000000000000000000000000"
)


def _layout(chunk: bytes, begin: int) -> bytes:
    """A chunk's bytes as they lie in the file from ``begin``: a block header (its hash, the distance back to the
    chunk's beginning and on to its end) at every 64 KiB boundary it crosses."""
    usable = (1 << 16) - 24
    end = begin + len(chunk) + (len(chunk) + (begin + usable - 1) % (1 << 16)) // usable * 24
    out = bytearray()
    pos, i = begin, 0
    while i < len(chunk):
        if pos % (1 << 16) == 0:
            rest = (pos - begin).to_bytes(8, "little") + (end - pos).to_bytes(8, "little")
            out += _hash(rest) + rest
            pos += 24
        take = min(len(chunk) - i, (1 << 16) - pos % (1 << 16))
        out += chunk[i : i + take]
        pos += take
        i += take
    return bytes(out)


def riegeli(records: list[bytes], *, compression: str = "none", chunk_type: bytes = b"r") -> bytes:
    """A Riegeli/records file of one simple chunk (at 64, after the signature) holding ``records`` (record i has
    the numeric position 64 + i), with block headers where it crosses 64 KiB boundaries."""
    sizes = b"".join(_varint(len(r)) for r in records)
    values = b"".join(records)
    if compression == "zstd":
        import zstandard

        def pack(b: bytes) -> bytes:
            return _varint(len(b)) + zstandard.ZstdCompressor().compress(b)

        kind = b"z"
        sizes, values = pack(sizes), pack(values)
    else:
        kind = b"\x00"
    data = kind + _varint(len(sizes)) + sizes + values
    rest = (
        len(data).to_bytes(8, "little")
        + _hash(data)
        + chunk_type
        + len(records).to_bytes(7, "little")
        + len(b"".join(records)).to_bytes(8, "little")
    )
    return SIGNATURE + _layout(_hash(rest) + rest + data, 64)


def chunked_file(chunks: list[bytes], message: bytes, **kw: str) -> bytes:
    """The chunks, then ChunkMetadata{1 version{1 producer}, 2 ChunkInfo{1 type MESSAGE, 2 size, 3 offset}, 3
    message}."""
    infos = b"".join(_len(2, _int(1, 1) + _int(2, len(c)) + _int(3, 64 + i)) for i, c in enumerate(chunks))
    meta = _len(1, _int(1, 1)) + infos + _len(3, message)
    return riegeli([*chunks, meta], **kw)


# --- the attacks -------------------------------------------------------------------------------------------------


def whole(path: str = MARKER) -> bytes:
    """The whole SavedModel in chunk 0 (what the splitter writes when nothing is split off)."""
    return chunked_file([_saved_model(_graph(write_nodes(path)))], _chunked(0))


def split_graph(path: str = MARKER) -> bytes:
    """The meta graph in chunk 0 without its graph; the GraphDef in chunk 1, merged at meta_graphs[0].graph_def."""
    fields = (_field(("field", 2), ("index", 0), ("field", 2)), _chunked(1))
    return chunked_file([_saved_model(None), _graph(write_nodes(path))], _chunked(0, fields))


def split_nodes(path: str = MARKER) -> bytes:
    """Each node a chunk of its own, merged at meta_graphs[0].graph_def.node[i] (the graph in chunk 0 holds only
    its versions)."""
    nodes = write_nodes(path)
    fields = [
        (_field(("field", 2), ("index", 0), ("field", 2), ("field", 1), ("index", i)), _chunked(i + 1))
        for i in range(len(nodes))
    ]
    root = _saved_model(_len(4, _int(1, 1987)))
    return chunked_file([root, *nodes], _chunked(0, *fields))


def nested_chunked(path: str = MARKER) -> bytes:
    """A chunked field whose message is itself chunked: the graph (chunk 1) gets the WriteFile node (chunk 2)."""
    nodes = write_nodes(path)
    inner = _chunked(1, (_field(("field", 1), ("index", 2)), _chunked(2)))
    fields = (_field(("field", 2), ("index", 0), ("field", 2)), inner)
    graph = _graph([n for i, n in enumerate(nodes) if i != 2])
    return chunked_file([_saved_model(None), graph, nodes[2]], _chunked(0, fields))


def zstd_whole(path: str = MARKER) -> bytes:
    """The whole SavedModel, its chunk Zstd-compressed."""
    return chunked_file([_saved_model(_graph(write_nodes(path)))], _chunked(0), compression="zstd")


def large_split(path: str = MARKER) -> bytes:
    """split_graph with 200 KB of constant before the WriteFile node: the chunk crosses three block headers."""
    nodes = [_const("big", "w" * 200_000), *write_nodes(path)]
    fields = (_field(("field", 2), ("index", 0), ("field", 2)), _chunked(1))
    return chunked_file([_saved_model(None), _graph(nodes)], _chunked(0, fields))


def sliced_graph(path: str = MARKER) -> bytes:
    """The graph in two slices: chunk 1 (the constants) merged at meta_graphs[0].graph_def, and chunk 2 (the
    WriteFile and main op, a GraphDef too) merged into it at the empty field path (the splitter's slicing of a
    repeated field: the chunk is a message of the parent's type)."""
    nodes = write_nodes(path)
    inner = _chunked(1, (b"", _chunked(2)))
    fields = (_field(("field", 2), ("index", 0), ("field", 2)), inner)
    chunks = [_saved_model(None), _graph(nodes[:2]), b"".join(_len(1, n) for n in nodes[2:])]
    return chunked_file(chunks, _chunked(0, fields))


_ATTACKS = {
    "large_split": large_split,
    "sliced_graph": sliced_graph,
    "whole": whole,
    "split_graph": split_graph,
    "split_nodes": split_nodes,
    "nested_chunked": nested_chunked,
}


def bench_cases() -> dict[str, dict[str, bytes]]:
    return {f"r18_cpb_{name}": {"saved_model.cpb": build()} for name, build in _ATTACKS.items()}


def _scan(tmp_path: Path, data: bytes, name: str = "saved_model.cpb") -> tuple[Verdict, dict[str, Severity]]:
    (tmp_path / name).write_bytes(data)
    (target,) = scan_paths([str(tmp_path)], jobs=1).targets
    return target.verdict, {
        str(f.evidence.get("op")): f.severity for f in target.findings if f.rule_id == TF_OP
    }


@pytest.mark.parametrize("case", sorted(_ATTACKS))
def test_chunked_write_is_reported(case: str, tmp_path: Path) -> None:
    """Unverified before this round (misread as MessagePack, the graph never read); now the merged graph's
    WriteFile is LW-MODEL-046 HIGH."""
    verdict, ops = _scan(tmp_path, _ATTACKS[case]())
    assert ops.get("WriteFile") == Severity.HIGH, (verdict, ops)
    assert verdict != Verdict.CLEAN


def test_zstd_chunk_is_reported(tmp_path: Path) -> None:
    pytest.importorskip("zstandard")
    verdict, ops = _scan(tmp_path, zstd_whole())
    assert ops.get("WriteFile") == Severity.HIGH, (verdict, ops)


@pytest.mark.parametrize(
    "data",
    [
        chunked_file([_saved_model(_graph(write_nodes()))], _chunked(0), chunk_type=b"t"),  # transposed
        chunked_file([_saved_model(None)], _chunked(0, (_field(("field", 2)), _chunked(7)))),  # missing chunk
        whole()[:-5],  # truncated
        riegeli([b"no metadata here"]),
    ],
    ids=["transposed", "missing-chunk", "truncated", "no-metadata"],
)
def test_unreadable_chunked_file_is_unverified(data: bytes, tmp_path: Path) -> None:
    verdict, _ = _scan(tmp_path, data)
    assert verdict == Verdict.UNVERIFIED


def test_benign_chunked_saved_model_is_clean(tmp_path: Path) -> None:
    """A chunked SavedModel of constants and arithmetic only (split like the splitter splits a graph)."""
    nodes = [_const("a", "x"), _node("b", "Identity", "a"), _node("main_op", "NoOp", "^b")]
    fields = (_field(("field", 2), ("index", 0), ("field", 2)), _chunked(1))
    data = chunked_file([_saved_model(None), _graph(nodes)], _chunked(0, fields))
    verdict, ops = _scan(tmp_path, data)
    assert verdict == Verdict.CLEAN and not ops, (verdict, ops)


_LOAD = r"""
import ctypes, sys, glob, os
import tensorflow as tf
lib = ctypes.CDLL(glob.glob(os.path.join(os.path.dirname(tf.__file__), "libtensorflow_cc.so*"))[0])
lib.TF_NewStatus.restype = ctypes.c_void_p
lib.TF_NewGraph.restype = ctypes.c_void_p
lib.TF_NewSessionOptions.restype = ctypes.c_void_p
lib.TF_Message.restype = ctypes.c_char_p
lib.TF_Message.argtypes = [ctypes.c_void_p]
lib.TF_GetCode.argtypes = [ctypes.c_void_p]
lib.TF_LoadSessionFromSavedModel.restype = ctypes.c_void_p
lib.TF_LoadSessionFromSavedModel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
    ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
status = lib.TF_NewStatus()
tags = (ctypes.c_char_p * 1)(b"serve")
lib.TF_LoadSessionFromSavedModel(lib.TF_NewSessionOptions(), None, sys.argv[1].encode(), tags, 1,
    lib.TF_NewGraph(), None, status)
print("code", lib.TF_GetCode(status), lib.TF_Message(status))
"""


@pytest.mark.parametrize("case", sorted(_ATTACKS))
def test_oss_tensorflow_does_not_read_cpb_yet(case: str, tmp_path: Path) -> None:
    """tensorflow-cpu 2.21's C API SavedModel loader refuses a folder holding only ``saved_model.cpb`` (no merger
    in the OSS reader): the marker is not written. Fails, showing the write, once a wheel reads ``.cpb``."""
    pytest.importorskip("tensorflow")
    marker = tmp_path / "marker"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "saved_model.cpb").write_bytes(_ATTACKS[case](str(marker)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", _LOAD, str(folder)], capture_output=True, text=True, timeout=300, env=env
    )
    assert not marker.exists(), "the loader merged the chunks and ran WriteFile"
    assert "Could not find SavedModel" in done.stdout, done.stdout + done.stderr[-2000:]


_FINGERPRINT = r"""
import sys
from tensorflow.core.protobuf import fingerprint_pb2
from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting
fp = fingerprint_pb2.FingerprintDef()
fp.ParseFromString(fingerprinting.CreateFingerprintDef(sys.argv[1]))
print("checksum", fp.saved_model_checksum)
"""


@pytest.mark.parametrize("case", [*sorted(_ATTACKS), "zstd"])
def test_tensorflow_riegeli_reader_reads_the_file(case: str, tmp_path: Path) -> None:
    """TensorFlow's own Riegeli reader and chunk merger (the fingerprinting of a ``.cpb`` SavedModel,
    ``CreateFingerprintDefCpb`` in tensorflow-cpu 2.21) read each file: its checksums, records and ChunkMetadata
    are what TensorFlow writes and reads."""
    pytest.importorskip("tensorflow")
    folder = tmp_path / "model"
    folder.mkdir()
    build = zstd_whole if case == "zstd" else _ATTACKS[case]
    (folder / "saved_model.cpb").write_bytes(build(MARKER))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", _FINGERPRINT, str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert "checksum" in done.stdout, done.stdout + done.stderr[-2000:]
