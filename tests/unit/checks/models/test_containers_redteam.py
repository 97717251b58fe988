"""Regression tests for red-team findings on the container layer: ONNX detected wherever its fields are, JSON
configs decoded as their loaders decode them, tensor storage skipped only when its first bytes are inert, and
torch.export (PT2) archives read by their layout."""

from __future__ import annotations

import io
import json
import struct
import sys
import zipfile
from pathlib import Path

import pytest

from loopwarden.checks.models.detect import Format, sniff
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "corpus"))
import _container_payloads as cp
from test_containers_unit import rules, scan_bytes


def sniff_all(data: bytes) -> Format:
    return sniff(data[:4096], len(data), lambda: io.BytesIO(data))


# --------------------------------------------------------------------------------- ONNX in any field order


def _top_fields(data: bytes) -> list[bytes]:
    """The top-level fields of a protobuf message, each as its raw bytes (tag, length, payload)."""
    from loopwarden.checks.models.detect import read_varint

    out, pos = [], 0
    while pos < len(data):
        start = pos
        tag, pos = read_varint(data, pos)
        assert tag is not None
        value, pos = read_varint(data, pos)
        assert value is not None
        if tag & 7 == 2:
            pos += value
        out.append(data[start:pos])
    return out


_EVIL_ONNX = cp.onnx_model(location="../outside/secret.bin", domain="com.attacker")


def _onnx_variants() -> dict[str, bytes]:
    fields = _top_fields(_EVIL_ONNX)
    pad = cp._field(2, b"A" * 100)  # producer_name, repeated: the last one wins, every copy is text
    return {
        "text_producer_names_first": pad * 42 + _EVIL_ONNX,
        "graph_first": b"".join(reversed(fields)),
        "unknown_text_field_first": cp._field(15, b"just some words " * 300) + _EVIL_ONNX,
        "group_first": b"{" + b" a" * 50 + b"|" + _EVIL_ONNX,  # field 15 as a group: skipped by parsers
        "opens_with_a_pickle_mark": b"(\x01" + _EVIL_ONNX,  # model_version first: '(' is MARK
        "opens_with_a_pickle_proto": b"\x80\x02\x01" + _EVIL_ONNX,  # field 32 varint reads as PROTO 2
        "fields_past_the_detection_bound": b"\x12\x01A" * 9000 + _EVIL_ONNX,
        "graph_repeated_evil_second": b"".join(
            f for f in fields if f[:1] != b":"
        )  # the graph field dropped, then two graphs: the second carries the external data
        + cp._field(7, cp._field(2, b"g0"))
        + next(f for f in fields if f[:1] == b":"),
    }


@pytest.mark.parametrize(("name", "data"), list(_onnx_variants().items()))
def test_onnx_is_detected_wherever_its_fields_are(name: str, data: bytes) -> None:
    onnx = pytest.importorskip("onnx")
    model = onnx.ModelProto()
    model.ParseFromString(data)  # what onnx.load does: the variant is a model a loader accepts
    assert any(e.value == "../outside/secret.bin" for t in model.graph.initializer for e in t.external_data)
    assert sniff_all(data) is Format.ONNX
    ctx = scan_bytes(data, "model.onnx")
    assert {"LW-MODEL-035", "LW-MODEL-036"} <= rules(ctx), (name, ctx.unverified)


def test_onnx_variants_are_found_without_the_onnx_package() -> None:
    """The same variants, judged without parsing them with onnx (which may not be installed)."""
    for name, data in _onnx_variants().items():
        ctx = scan_bytes(data, "model.onnx")
        assert "LW-MODEL-035" in rules(ctx), name


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_reordered_onnx_inside_archives_is_found(method: int) -> None:
    data = _onnx_variants()["text_producer_names_first"]
    assert "LW-MODEL-035" in rules(scan_bytes(cp.zip_of({"m/model.onnx": data}, method), "m.zip"))
    assert "LW-MODEL-035" in rules(scan_bytes(cp.tar_of({"model.onnx": data}), "m.tar.gz"))


def test_onnx_on_disk_is_detected_past_its_first_bytes(tmp_path: Path) -> None:
    """Files over the in-memory size are read through a reader: the fields past the head are still walked."""
    data = cp._field(6, b"doc " * 600_000) + _EVIL_ONNX  # 2.4 MB of doc_string first
    (tmp_path / "model.onnx").write_bytes(data)
    (target,) = scan_paths([str(tmp_path / "model.onnx")], jobs=1).targets
    assert any(f.rule_id == "LW-MODEL-035" for f in target.findings), target


def test_a_model_that_is_also_a_pickle_is_analysed_both_ways() -> None:
    """A pickle loader reads the same bytes from the first one: '(' MARK, ']' EMPTY_LIST, '2' DUP, then GLOBAL
    inside what protobuf skips as a doc_string."""
    body = b"os\nsystem\n(S'echo x'\ntR."
    doc = b"c" + body.ljust(0x63, b" ")  # 'c' is both GLOBAL and the doc_string's length (99)
    data = b"(]2" + doc + _EVIL_ONNX
    assert sniff(data[:4096], len(data)) is Format.PICKLE  # what the first bytes alone say
    assert sniff_all(data) is Format.ONNX
    ctx = scan_bytes(data, "model.onnx")
    assert {"LW-MODEL-035", "LW-MODEL-001"} <= rules(ctx), ctx.findings
    assert ctx.formats == ["onnx", "pickle"]  # a pickle from the first byte: analysed in full as well


def test_truncated_or_broken_reordered_models_are_not_onnx() -> None:
    """Cut or damaged, the wire format breaks: not a model, and then not silently clean either."""
    data = _onnx_variants()["text_producer_names_first"]
    for broken in (data[:-3], data + b"\xff", data[:4200]):
        assert sniff_all(broken) is not Format.ONNX


_TEXTS = {
    "README.md": b"# A model\n\nThis model was trained on data.\n\n## Usage\n\n```python\nimport torch\n```\n",
    "config.json": json.dumps(
        {"architectures": ["BertModel"], "hidden_size": 768, "vocab_size": 30522}
    ).encode(),
    "requirements.txt": b"torch==2.4\ntransformers>=4.40\nsentencepiece\n",
    "merges.txt": b"#version: 0.2\n" + b"".join(b"\xc4\xa0 t\nh e\n" for _ in range(500)),
    "vocab.txt": b"[PAD]\n[UNK]\n[CLS]\n" + b"".join(f"word{i}\n".encode() for i in range(2000)),
    "data.csv": b"a,b,c\n" + b"".join(f"{i},{i * 2},{i % 7}\n".encode() for i in range(1000)),
    "code.py": b"def forward(self, x):\n    return self.linear(x) * 2\n" * 50,
    "spaces.txt": b" " * 10_000,
    "colons.txt": b": " + b"(" * 32,  # a graph of 16 varint fields: a ModelProto, and text
}


@pytest.mark.parametrize(("name", "data"), list(_TEXTS.items()))
def test_ordinary_text_is_still_text(name: str, data: bytes) -> None:
    # what the first bytes say (text, or a pickle for text that starts with an opcode), except for the one
    # text that is also a complete ModelProto: that is ONNX, and still analysed as text as well
    expected = Format.ONNX if name == "colons.txt" else sniff(data[:4096], len(data))
    assert expected is not Format.ONNX or name == "colons.txt"
    assert sniff_all(data) is expected
    ctx = scan_bytes(data, name)
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


def test_real_onnx_models_stay_clean_in_any_field_order() -> None:
    onnx = pytest.importorskip("onnx")
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["X", "W"], ["Y"])],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 4])],
        [w],
    )
    data = helper.make_model(graph, producer_name="loopwarden-test").SerializeToString()
    fields = _top_fields(data)
    for variant in (data, b"".join(reversed(fields)), b"".join(fields[1:] + fields[:1])):
        onnx.checker.check_model(onnx.load_from_string(variant))
        assert sniff_all(variant) is Format.ONNX
        ctx = scan_bytes(variant, "model.onnx")
        assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


# ------------------------------------------------------------------------- JSON as its loaders decode it

_SSTI = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
_ENCODINGS = {
    "utf-8-bom": lambda t: b"\xef\xbb\xbf" + t.encode(),
    "utf-8-bom-and-whitespace": lambda t: b"\xef\xbb\xbf" + b" \n\t\r" * 3000 + t.encode(),
    "utf-16": lambda t: t.encode("utf-16"),
    "utf-16-le": lambda t: t.encode("utf-16-le"),
    "utf-16-be": lambda t: t.encode("utf-16-be"),
    "utf-16-whitespace-first": lambda t: (" " * 5000 + t).encode("utf-16-le"),
    "utf-32": lambda t: t.encode("utf-32"),
    "utf-32-le": lambda t: t.encode("utf-32-le"),
    "utf-32-be": lambda t: t.encode("utf-32-be"),
}


def _keras_with_config(config: bytes) -> bytes:
    meta = json.dumps({"keras_version": "3.5.0", "date_saved": "2024-01-01"}).encode()
    return cp.zip_of({"metadata.json": meta, "config.json": config})


@pytest.mark.parametrize("enc", list(_ENCODINGS))
def test_keras_config_is_decoded_as_keras_decodes_it(enc: str) -> None:
    data = _ENCODINGS[enc](json.dumps(cp.keras_lambda_config()))
    assert json.loads(data)["class_name"] == "Sequential"  # what Keras' json.loads(bytes) reads
    assert "LW-MODEL-032" in rules(scan_bytes(_keras_with_config(data), "m.keras"))
    benign = _ENCODINGS[enc](json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
    ctx = scan_bytes(_keras_with_config(benign), "m.keras")
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


@pytest.mark.parametrize("enc", list(_ENCODINGS))
def test_chat_templates_are_judged_in_every_json_encoding(enc: str, tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_bytes(_ENCODINGS[enc](json.dumps({"chat_template": _SSTI})))
    (target,) = scan_paths([str(tmp_path / "tokenizer_config.json")], jobs=1).targets
    assert any(f.rule_id == "LW-MODEL-040" for f in target.findings), target


@pytest.mark.parametrize(
    "config",
    [
        b'{"class_name": "Sequential", "config": ',  # cut short
        b'\xef\xbb\xbf{"class_name": "Lambda", \xff}',  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,  # nested past the parser's recursion limit
        b"{\"class_name\": 'Lambda'}",  # not JSON
    ],
)
def test_a_keras_config_that_cannot_be_parsed_is_unverified(config: bytes) -> None:
    ctx = scan_bytes(_keras_with_config(b"{" + config if config[:1] == b"[" else config), "m.keras")
    assert any("config.json" in u and "cannot be decoded" in u for u in ctx.unverified), ctx.unverified


def test_json_files_that_no_loader_interprets_may_be_anything() -> None:
    """JSON Lines and other data named .json or .jsonl are not configs: not parsing as one document is fine."""
    rows = b"".join(json.dumps({"text": f"row {i}"}).encode() + b"\n" for i in range(50))
    for name in ("train.jsonl", "data.json", "results.json"):
        ctx = scan_bytes(rows, name)
        assert not ctx.findings and not ctx.unverified, (name, ctx.unverified)


def _h5(tmp_path: Path, attrs: dict[str, object]) -> Path:
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        f.create_group("model_weights").attrs["layer_names"] = [b"dense"]
    return path


@pytest.mark.parametrize(
    "value",
    [
        b"\xef\xbb\xbf" + json.dumps(cp.keras_lambda_config()).encode(),
        b"\xef\xbb\xbf \r\n" + json.dumps(cp.keras_lambda_config()).encode(),
        "\ufeff" + json.dumps(cp.keras_lambda_config()),
        "  \n" + json.dumps(cp.keras_lambda_config()),
    ],
)
def test_hdf5_model_config_is_judged_in_any_encoding(value: object, tmp_path: Path) -> None:
    path = _h5(tmp_path, {"model_config": value})
    (target,) = scan_paths([str(path)], jobs=1).targets
    assert any(f.rule_id == "LW-MODEL-032" for f in target.findings), target


def test_hdf5_model_config_that_is_not_json_is_unverified(tmp_path: Path) -> None:
    path = _h5(tmp_path, {"model_config": b"{'class_name': 'Lambda'}", "keras_version": b"2.15.0"})
    (target,) = scan_paths([str(path)], jobs=1).targets
    assert target.verdict is Verdict.UNVERIFIED
    assert "model_config is not JSON" in (target.reason or ""), target.reason


def test_hdf5_with_ordinary_attributes_is_clean(tmp_path: Path) -> None:
    config = json.dumps({"class_name": "Sequential", "config": {"layers": []}})
    path = _h5(tmp_path, {"model_config": config, "keras_version": "2.15.0", "note": "{not json"})
    (target,) = scan_paths([str(path)], jobs=1).targets
    assert target.verdict is Verdict.CLEAN, target


# ------------------------------------------------------------- tensor storage: skipped only when inert


def _npz_with_storage_names(files: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    """A zip that has the names of a torch archive (a record folder with data.pkl) around other members."""
    return cp.zip_of({"archive/data.pkl": cp.benign_pickle(), **files}, method)


_EVIL_NPY = cp.npy_object(cp.evil_pickle())


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("t07_npy_under_data", _npz_with_storage_names({"archive/data/x.npy": _EVIL_NPY})),
        ("npy_named_like_a_storage_key", _npz_with_storage_names({"archive/data/0": _EVIL_NPY})),
        ("npy_under_constants", _npz_with_storage_names({"archive/constants/k": _EVIL_NPY})),
        (
            "npy_deflated",
            _npz_with_storage_names({"archive/data/x": _EVIL_NPY}, zipfile.ZIP_DEFLATED),
        ),
        ("npy_bzip2", _npz_with_storage_names({"archive/data/x": _EVIL_NPY}, zipfile.ZIP_BZIP2)),
        (
            "torch_zip_as_a_storage",
            cp.torch_zip(cp.benign_pickle(), extra={"archive/data/1": cp.torch_zip(cp.evil_pickle())}),
        ),
        (
            "legacy_torch_as_a_storage",
            cp.torch_zip(cp.benign_pickle(), extra={"archive/data/1": cp.torch_legacy([cp.evil_pickle()])}),
        ),
    ],
)
def test_a_storage_that_opens_with_a_format_is_analysed(name: str, data: bytes) -> None:
    ctx = scan_bytes(data, "weights.npz")
    assert "LW-MODEL-001" in rules(ctx), (name, ctx.findings, ctx.unverified)


def test_numpy_reads_such_a_member_as_an_array() -> None:
    """The reason for the check: np.load on the zip parses any member that starts with the NPY magic."""
    import numpy as np

    arr = io.BytesIO()
    np.save(arr, np.arange(3))
    npz = np.load(io.BytesIO(_npz_with_storage_names({"archive/data/x": arr.getvalue()})))
    assert list(npz["archive/data/x"]) == [0, 1, 2]


def test_storages_of_real_archives_stay_unread_and_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    # tensors whose bytes start like a pickle (PROTO 2), gzip or zlib: short magics that tensor data hits
    lead = [b"\x80\x02\x8a\x0a", b"\x1f\x8b\x08\x00", b"x\x9c\x03\x00", b"cos\n"]
    state = {
        f"t{i}": torch.frombuffer(bytearray(b + bytes(60)), dtype=torch.uint8) for i, b in enumerate(lead)
    }
    state["w"] = torch.randn(64, 64)
    torch.save(state, tmp_path / "state.pt")
    import numpy as np

    np.savez(tmp_path / "a.npz", a=np.arange(10), b=np.ones((3, 3)))
    np.savez_compressed(tmp_path / "c.npz", a=np.arange(10))
    for target in scan_paths([str(tmp_path)], jobs=1).targets:
        assert target.verdict is Verdict.CLEAN, target


def test_storage_data_is_not_read(tmp_path: Path) -> None:
    """Only the first bytes of a storage are looked at: a damaged CRC inside one is not seen."""
    data = bytearray(cp.torch_zip(cp.benign_pickle()))
    pos = data.index(b"\x00" * 64)  # archive/data/0
    data[pos + 40] = 1
    ctx = scan_bytes(bytes(data), "m.pt")
    assert "LW-MODEL-026" not in rules(ctx)
    assert not ctx.unverified


# ------------------------------------------------------------------------------ torch.export (.pt2) archives


def _pt2(
    weights: dict[str, bytes],
    wconfig: dict[str, object],
    *,
    constants: dict[str, bytes] | None = None,
    cconfig: dict[str, object] | None = None,
    model: str = "model",
    archive_format: bytes = b"pt2",
    extra: dict[str, bytes] | None = None,
) -> bytes:
    """The layout torch.export.save writes: weights first (the first member names the record folder)."""
    files = {f"exp/data/weights/{k}": v for k, v in weights.items()}
    files[f"exp/data/weights/{model}_weights_config.json"] = json.dumps({"config": wconfig}).encode()
    files.update({f"exp/data/constants/{k}": v for k, v in (constants or {}).items()})
    files[f"exp/data/constants/{model}_constants_config.json"] = json.dumps(
        {"config": cconfig or {}}
    ).encode()
    files[f"exp/models/{model}.json"] = b'{"graph_module": {}}'
    files["exp/archive_format"] = archive_format
    files["exp/archive_version"] = b"0"
    files.update(extra or {})
    return cp.zip_of(files, zipfile.ZIP_STORED)


def _meta(path: str, use_pickle: object = False) -> dict[str, object]:
    return {"path_name": path, "is_param": True, "use_pickle": use_pickle, "tensor_meta": {"dtype": 7}}


_RAW = b"\x8b\x14\x07\xbf2d\x10?\xad\x10\x19=$\xce\x9c\xbe"
_RAW_LIKE_PICKLE = b"cos\nsystem\n(S'x'\ntR."  # raw bytes that happen to read as a pickle


def test_pt2_raw_weights_are_tensor_storage() -> None:
    data = _pt2(
        {"weight_0": _RAW, "weight_1": _RAW_LIKE_PICKLE},
        {"w": _meta("weight_0"), "b": _meta("weight_1"), "alias": _meta("weight_0")},
        constants={"tensor_0": _RAW},
        cconfig={"c": _meta("tensor_0")},
    )
    ctx = scan_bytes(data, "model.pt2")
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("config_says_pickle", _pt2({"weight_0": cp.evil_pickle(0)}, {"w": _meta("weight_0", True)})),
        (
            "raw_and_pickle_in_two_entries",
            _pt2({"weight_0": cp.evil_pickle(0)}, {"w": _meta("weight_0"), "v": _meta("weight_0", True)}),
        ),
        (
            "not_named_by_any_config",
            _pt2({"weight_0": _RAW, "weight_9": cp.evil_pickle(0)}, {"w": _meta("weight_0")}),
        ),
        (
            "use_pickle_not_a_boolean",
            _pt2({"weight_0": cp.evil_pickle(0)}, {"w": _meta("weight_0", "false")}),
        ),
        ("raw_but_an_npy", _pt2({"weight_0": _EVIL_NPY}, {"w": _meta("weight_0")})),
        ("raw_but_a_torch_zip", _pt2({"weight_0": cp.torch_zip(cp.evil_pickle())}, {"w": _meta("weight_0")})),
        (
            "opaque_constant_marked_raw",
            _pt2({}, {}, constants={"opaque_obj_0": cp.evil_pickle(0)}, cconfig={"c": _meta("opaque_obj_0")}),
        ),
        (
            "config_of_a_model_that_does_not_exist",
            _pt2(
                {"weight_0": cp.evil_pickle(0)},
                {},
                extra={
                    "exp/data/weights/ghost_weights_config.json": json.dumps(
                        {"config": {"w": _meta("weight_0")}}
                    ).encode()
                },
            ),
        ),
        (
            "raw_in_another_root",
            _pt2(
                {"weight_0": _RAW},
                {"w": _meta("weight_0")},
                extra={"other/data/weights/weight_0": cp.evil_pickle(0)},
            ),
        ),
    ],
)
def test_pt2_members_a_loader_unpickles_are_analysed(name: str, data: bytes) -> None:
    ctx = scan_bytes(data, "model.pt2")
    assert "LW-MODEL-001" in rules(ctx), (name, ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    "data",
    [
        _pt2({"weight_0": _RAW}, {"w": _meta("weight_0")}, archive_format=b"zip"),  # torch refuses to load it
        cp.zip_of({"exp/data/weights/weight_0": _RAW, "exp/data/weights/model_weights_config.json": b"{"}),
    ],
)
def test_raw_bytes_outside_a_pt2_layout_are_unverified(data: bytes) -> None:
    ctx = scan_bytes(data, "model.pt2")
    assert any("weight_0" in u and "unknown binary format" in u for u in ctx.unverified), ctx.unverified


def test_real_torch_export_archives_are_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(4, 3)
            self.register_buffer("scale", torch.full((3,), 2.0))
            self.const = torch.ones(3)  # a tensor constant

        def forward(self, x: object) -> object:
            return self.lin(x) * self.scale + self.const

    try:
        ep = torch.export.export(Net(), (torch.zeros(2, 4),))
        torch.export.save(ep, tmp_path / "net.pt2")
    except Exception as exc:  # torch.export is not available on every platform and version
        pytest.skip(f"torch.export cannot save here: {exc}")
    with zipfile.ZipFile(tmp_path / "net.pt2") as z:
        assert any("/data/weights/weight_" in n for n in z.namelist())
    (target,) = scan_paths([str(tmp_path / "net.pt2")], jobs=1).targets
    assert target.verdict is Verdict.CLEAN, target


# ------------------------------------------------- central directory offsets: zipfile and torch's miniz


def _split_zip(data: bytes) -> tuple[bytes, bytes, bytes]:
    eocd = data.rindex(b"PK\x05\x06")
    cd_size, cd_off = struct.unpack_from("<II", data, eocd + 12)
    return data[:cd_off], data[cd_off : cd_off + cd_size], data[eocd : eocd + 22]


def _shift_cd(cd: bytes, k: int) -> bytes:
    out, pos = bytearray(cd), 0
    while pos < len(out):
        n, m, c = struct.unpack_from("<HHH", out, pos + 28)
        (off,) = struct.unpack_from("<I", out, pos + 42)
        struct.pack_into("<I", out, pos + 42, off + k)
        pos += 46 + n + m + c
    return bytes(out)


def _two_views(torch_pkl: bytes, junk: bytes = b"") -> bytes:
    """One file, two archives: zipfile adds the prepended length (end record position - size - offset) to every
    offset and reads the second central directory; torch's miniz reads the offsets as written, so the first."""
    m_local, m_cd, _ = _split_zip(cp.torch_zip(torch_pkl))
    benign = cp.benign_pickle() + b"\x00" * (len(torch_pkl) + len(junk) - len(cp.benign_pickle()))
    p_local, p_cd, p_eocd = _split_zip(cp.torch_zip(benign))
    assert len(p_cd) == len(m_cd) and len(p_local) == len(junk) + len(m_local)
    eocd = bytearray(p_eocd)
    struct.pack_into("<I", eocd, 16, len(junk) + len(m_local))  # the first central directory, as written
    return junk + m_local + _shift_cd(m_cd, len(junk)) + p_local + p_cd + bytes(eocd)


@pytest.mark.parametrize("junk", [b"", b"\x00" * 16, b"not a pickle " * 3])
def test_the_central_directory_torch_reads_is_analysed(junk: bytes) -> None:
    data = _two_views(cp.evil_pickle(), junk)
    with zipfile.ZipFile(io.BytesIO(data)) as z:  # zipfile sees the benign archive
        assert z.read("archive/data.pkl").startswith(cp.benign_pickle())
    ctx = scan_bytes(data, "model.pt")
    assert {"LW-MODEL-001", "LW-MODEL-021"} <= rules(ctx), (ctx.findings, ctx.unverified)


def test_torch_loads_the_central_directory_at_the_written_offset(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    import pickle

    path = tmp_path / "two.pt"
    path.write_bytes(_two_views(pickle.dumps({"view": "miniz"}, protocol=2)))
    assert torch.load(path, weights_only=True) == {"view": "miniz"}


def test_a_zip_after_other_bytes_is_not_a_second_view() -> None:
    """`cat stub archive.zip`: offsets not corrected, nothing at the written one; zipfile still reads it."""
    data = b"#!/bin/sh\necho stub\nexit 0\n" + cp.torch_zip(cp.benign_pickle())
    ctx = scan_bytes(data, "model.pt")
    assert "LW-MODEL-021" not in rules(ctx)
    assert "LW-MODEL-024" in rules(ctx)
