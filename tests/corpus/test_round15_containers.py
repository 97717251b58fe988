"""Round 15: container and format-detection leads.

* Hydra ``_target_`` keys that the loader decodes but the text does not spell: JSON in UTF-16/32 (``json.loads``
  and ``json.load`` of a binary file detect the encoding) and keys written with escapes (``"\\u005ftarget_"``), in a
  ``config.json`` and in safetensors metadata, scanned clean; ``hydra.utils.instantiate`` (hydra-core 1.3.2, the
  version NeMo pins) ran them. UTF-16/32 text behind a byte-order mark was unknown binary.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import random
import struct
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import _container_payloads as cp
import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

HYDRA = "LW-MODEL-042"


def _scan(folder: Path) -> dict[str, TargetResult]:
    return {Path(t.path).name: t for t in scan_paths([str(folder)], jobs=1).targets}


def _one(tmp_path: Path, name: str, data: bytes) -> TargetResult:
    (tmp_path / name).write_bytes(data)
    return _scan(tmp_path)[name]


def _critical(t: TargetResult, rule: str) -> bool:
    return any(f.rule_id == rule and f.severity is Severity.CRITICAL for f in t.findings)


class _Touch:
    """Pickles as ``os.system("touch <marker>")``, a harmless effect a real loader shows."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


# ------------------------------------------------------------------------------ Hydra keys the text does not spell


def _hydra_config(marker: Path) -> dict[str, object]:
    # (the marker's name only, the command run in its folder: a test folder's path may spell the key itself)
    return {"module": {"_target_": "os.system", "command": f"touch {marker.name}"}}


def _escaped(doc: str) -> str:
    return doc.replace('"_target_"', '"\\u005ftarget_"')


_JSON_SPELLINGS: dict[str, Callable[[str], bytes]] = {
    "utf-16": lambda doc: doc.encode("utf-16"),
    "utf-16-le-no-bom": lambda doc: doc.encode("utf-16-le"),
    "utf-32": lambda doc: doc.encode("utf-32"),
    "escaped-key": lambda doc: _escaped(doc).encode(),
    "escaped-key-utf-16": lambda doc: _escaped(doc).encode("utf-16"),
}


@pytest.mark.parametrize("spelling", sorted(_JSON_SPELLINGS))
def test_json_config_target_in_another_encoding_or_escaped_is_critical(tmp_path: Path, spelling: str) -> None:
    doc = json.dumps(_hydra_config(tmp_path / "marker"))
    res = _one(tmp_path, "config.json", _JSON_SPELLINGS[spelling](doc))
    assert _critical(res, HYDRA), res


def test_safetensors_metadata_target_with_an_escaped_key_is_critical(tmp_path: Path) -> None:
    value = _escaped(json.dumps(_hydra_config(tmp_path / "marker")))
    header = {"__metadata__": {"config": value}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    res = _one(tmp_path, "model.safetensors", cp.safetensors_file(header, b"\x00" * 4))
    assert _critical(res, HYDRA), res


def test_yaml_escaped_target_key_in_metadata_is_critical(tmp_path: Path) -> None:
    value = '"\\x5ftarget_": os.system\ncommand: id\n'
    header = {"__metadata__": {"config": value}, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    res = _one(tmp_path, "model.safetensors", cp.safetensors_file(header, b"\x00" * 4))
    assert _critical(res, HYDRA), res


@pytest.mark.parametrize("spelling", ["utf-16", "escaped-key"])
def test_hydra_instantiates_the_config_the_scanner_now_reports(tmp_path: Path, spelling: str) -> None:
    """The real effect: ``json.load`` of the file opened in binary mode, then ``hydra.utils.instantiate``."""
    pytest.importorskip("hydra.utils")
    marker = tmp_path / "marker"
    path = tmp_path / "config.json"
    path.write_bytes(_JSON_SPELLINGS[spelling](json.dumps(_hydra_config(marker))))
    code = f"import json, hydra.utils as h; h.instantiate(json.load(open({str(path)!r}, 'rb'))['module'])"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False, cwd=tmp_path)
    if not marker.exists():
        pytest.skip("this hydra refuses os.system (hydra-core 1.3.8 blocks it); 1.3.2 runs it")


def test_utf16_yaml_config_with_a_bom_is_read_as_text(tmp_path: Path) -> None:
    text = "model:\n  _target_: os.system\n  command: id\n"
    res = _one(tmp_path, "model_config.yaml", text.encode("utf-16"))
    assert _critical(res, HYDRA), res
    assert res.verdict is Verdict.FINDINGS, res.reason  # no longer also "unknown binary"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_benign_text_with_a_bom_is_clean(tmp_path: Path, encoding: str) -> None:
    """No false positive: a README or an ordinary config saved in UTF-16/32 with a BOM is text."""
    bom = {"utf-16-be": "\ufeff"}.get(encoding, "")
    (tmp_path / "README.md").write_bytes(
        (bom + "# Model card\n\nWeights of a small model.\n").encode(encoding)
    )
    (tmp_path / "config.json").write_bytes(
        (bom + json.dumps({"hidden_size": 64, "note": "\\x"})).encode(encoding)
    )
    names = ["README.md", "config.json"]
    if (
        encoding != "utf-32"
    ):  # (PyYAML reads no UTF-32: such a YAML file stays unverified, as no loader reads it)
        (tmp_path / "config.yaml").write_bytes((bom + "lr: 0.001\nlayers: [64, 64]\n").encode(encoding))
        names.append("config.yaml")
    results = _scan(tmp_path)
    for name in names:
        assert results[name].verdict is Verdict.CLEAN, results[name]


def test_escapes_of_other_characters_do_not_trigger_the_target_walk(tmp_path: Path) -> None:
    """No false positive: a tokenizer config with ordinary escapes and the word in prose stays clean."""
    doc = {"chat_template": "<|user|>\\n{{ m }}", "sep": "\u003c/s\u003e", "about": "no _target_ key here"}
    res = _one(tmp_path, "tokenizer_config.json", json.dumps(doc).encode())
    assert res.verdict is Verdict.CLEAN, res


# ----------------------------------------------------------------------------------- the sixth stacked pickle


def _loop_load_runs(path: Path) -> bool:
    """``pickle.load`` in a loop on the file, in a child: whether the marker beside it appears."""
    code = (
        "import pickle\n"
        f"f = open({str(path)!r}, 'rb')\n"
        "while True:\n"
        "    try:\n"
        "        pickle.load(f)\n"
        "    except Exception:\n"
        "        break\n"
    )
    subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=False, cwd=path.parent
    )
    return (path.parent / "marker").exists()


def _stacked_msgpack(benign: int, payload: bytes) -> bytes:
    """A file that sniffs as a MessagePack map (fixmap, then a str8 key) whose bytes are also pickles: 0x8C is
    SHORT_BINUNICODE, taking the key's type byte (0xA5) as the length of a 165-character string."""
    return b"\x8c\xa5" + b"k" * 165 + b"." + pickle.dumps(1, protocol=2) * (benign - 1) + payload


@pytest.mark.parametrize("benign", [5, 99])
def test_payload_after_five_stacked_pickles_in_a_msgpack_polyglot_is_found(
    tmp_path: Path, benign: int
) -> None:
    """The loader-prefix reading stopped after five pickles: named as ONNX external data (a broken MessagePack
    is a misreading there) the file was clean, and pickle.load in a loop ran the sixth."""
    pytest.importorskip("onnx")
    payload = pickle.dumps(_Touch("marker"), protocol=2)
    cp.onnx_naming_raw_data(tmp_path, {"weights.bin": _stacked_msgpack(benign, payload)})
    res = _scan(tmp_path)["weights.bin"]
    assert _critical(res, "LW-MODEL-001"), res
    assert _loop_load_runs(tmp_path / "weights.bin")


def test_payload_after_torch_legacy_pickles_is_found(tmp_path: Path) -> None:
    """torch's legacy reader takes five pickles and then storage bytes; with no storages listed, a sixth pickle
    after them was never read (clean), and pickle.load in a loop ran it."""
    payload = pickle.dumps(_Touch("marker"), protocol=2)
    five = cp.torch_legacy([pickle.dumps({}, protocol=2)])[:-32]  # (without the zero bytes it appends)
    res = _one(tmp_path, "model.pt", five + payload)
    assert _critical(res, "LW-MODEL-001"), res
    assert _loop_load_runs(tmp_path / "model.pt")


def test_real_torch_legacy_files_stay_clean(tmp_path: Path) -> None:
    """No false positive: the storage bytes after the pickles of files torch writes end the extra reading."""
    torch = pytest.importorskip("torch")
    objs = [
        {"w": torch.randn(16, 16), "i": torch.arange(10)},
        [torch.zeros(3, dtype=torch.int8), torch.ones(2, dtype=torch.float64)],
        {"x": torch.tensor([0x63636363], dtype=torch.int64)},
    ]
    for i, obj in enumerate(objs):
        torch.save(obj, tmp_path / f"m{i}.pt", _use_new_zipfile_serialization=False)
    for name, res in _scan(tmp_path).items():
        assert res.verdict is Verdict.CLEAN, (name, res)


# ------------------------------------------------------------------------------- one search for the zip end record


def _zip_with_payload() -> bytearray:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(_Touch("marker"), protocol=2))
    return bytearray(buf.getvalue())


def _zipfile_runs(path: Path, member: str = "archive/data.pkl") -> bool:
    code = f"import zipfile, pickle; pickle.load(zipfile.ZipFile({path.name!r}).open({member!r}))"
    subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=False, cwd=path.parent
    )
    return (path.parent / "marker").exists()


def test_zip_end_record_at_the_edge_of_zipfiles_search_is_found(tmp_path: Path) -> None:
    """zipfile searches the final 2**16 + 22 bytes for the end record; the scanner's search behind raw data took
    one byte fewer, so a record there (a 65535-byte comment declared, 65536 bytes after it) went unseen: named as
    ONNX external data the file was clean, and zipfile opened the archive and ran its pickle."""
    pytest.importorskip("onnx")
    body = _zip_with_payload()
    body[-2:] = (65535).to_bytes(2, "little")
    tensor = bytes(random.Random(15).getrandbits(8) for _ in range(1024))
    cp.onnx_naming_raw_data(tmp_path, {"weights.bin": tensor + bytes(body) + b"\x01" * 65536})
    res = _scan(tmp_path)["weights.bin"]
    assert _critical(res, "LW-MODEL-001"), res
    assert _zipfile_runs(tmp_path / "weights.bin")


def _tar_ending_in(member: bytes) -> bytes:
    """A tar whose last member is ``member`` and that has no end-of-archive blocks (tarfile reads it all the same):
    its final bytes are the member's."""
    buf = io.BytesIO()
    tf = tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT)  # noqa: SIM115 - the end blocks are cut
    for name, data in (("notes.txt", b"weights\n"), ("model.zip", member)):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()[: tf.offset]


def _member_zip_payload_found(tmp_path: Path, tar: bytes, compressed: bool) -> TargetResult:
    """Scan ``tar`` (gzip-compressed when ``compressed``) and assert the payload of its member zip is found."""
    res = _one(
        tmp_path, "model.tar.gz" if compressed else "model.tar", gzip.compress(tar) if compressed else tar
    )
    assert any(
        f.rule_id == "LW-MODEL-001" and (f.location.member or "").startswith("model.zip")
        for f in res.findings
    ), res.findings
    return res


@pytest.mark.parametrize("compressed", [False, True])
def test_tar_member_zip_whose_counts_spell_the_signature_is_judged_as_the_members(
    tmp_path: Path, compressed: bool
) -> None:
    """zipfile takes a comment-less end record at the very end first; the tar's test of whether the zip at its end
    lies inside one member searched for the last signature instead (inside that record's counts), judged the zip
    to lie across the tar, and reported it as a zip behind tar content. One search now serves all three."""
    body = _zip_with_payload()
    body[-14:-10] = b"PK\x05\x06"  # the member counts
    member = bytes(-len(body) % 512) + bytes(
        body
    )  # (zeros before a zip are prepended bytes: it ends the tar)
    tar = _tar_ending_in(member)
    res = _member_zip_payload_found(tmp_path, tar, compressed)
    assert not any("follows tar content" in f.message for f in res.findings), res.findings
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        extracted = tf.extractfile("model.zip")
        assert extracted is not None
        (tmp_path / "model.zip").write_bytes(extracted.read())
    assert _zipfile_runs(tmp_path / "model.zip")


# ------------------------------------------------------------------- safetensors headers only some readers take

_TENSOR = b'"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}'


def _hydra_metadata() -> bytes:
    """A metadata value (JSON text, itself a JSON string) that is a Hydra config calling os.system."""
    return json.dumps(json.dumps({"m": {"_target_": "os.system", "command": "id"}})).encode()


_LENIENT_HEADERS: dict[str, bytes] = {
    # safetensors (serde_json) keeps the last of a duplicated metadata key, and reads a duplicated tensor
    "duplicate-metadata-key": b'{"__metadata__":{"config":"{}","config":'
    + _hydra_metadata()
    + b"},"
    + _TENSOR
    + b"}",
    "duplicate-tensor": b'{"__metadata__":{"config":'
    + _hydra_metadata()
    + b"},"
    + _TENSOR
    + b","
    + _TENSOR
    + b"}",
    # json.loads readers take these; serde_json does not
    "duplicate-metadata": b'{"__metadata__":{},"__metadata__":{"config":'
    + _hydra_metadata()
    + b"},"
    + _TENSOR
    + b"}",
    "lone-surrogate": b'{"__metadata__":{"config":'
    + _hydra_metadata()
    + b',"b":"\\ud800"},'
    + _TENSOR
    + b"}",
    "utf-16": (b'{"__metadata__":{"config":' + _hydra_metadata() + b"}," + _TENSOR + b"}")
    .decode()
    .encode("utf-16-le"),
}


@pytest.mark.parametrize("kind", sorted(_LENIENT_HEADERS))
def test_safetensors_metadata_of_a_header_some_reader_takes_is_analysed(tmp_path: Path, kind: str) -> None:
    """The header's other faults were reported (LW-MODEL-037) but its metadata was not analysed."""
    raw = _LENIENT_HEADERS[kind]
    res = _one(tmp_path, "model.safetensors", struct.pack("<Q", len(raw)) + raw + b"\x00" * 4)
    assert _critical(res, HYDRA), res


def test_safetensors_library_reads_the_last_duplicated_metadata_value(tmp_path: Path) -> None:
    """The real reader: safe_open(...).metadata() hands out the config the scan now judges."""
    safetensors = pytest.importorskip("safetensors")
    raw = _LENIENT_HEADERS["duplicate-metadata-key"]
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\x00" * 4)
    with safetensors.safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert "_target_" in json.loads(meta["config"])["m"]


# --------------------------------------------------------------------------- an ONNX TensorProto that reads as text


def _ascii_tensor(location: str, *, prefix: bytes = b"") -> bytes:
    from onnx import TensorProto

    t = TensorProto(name="weight", data_type=TensorProto.UINT8, dims=[5])
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "5")):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    raw = prefix + t.SerializeToString()
    assert raw.isascii()
    return raw


_TENSOR_SPELLINGS: dict[str, bytes] = {
    "dims-first": b"",
    "name-first": b"B\x06weight",  # 'B' is also a pickle opcode: sniffed as a pickle, judged text
    # names of printable lengths (protobuf keeps the last) push every control byte past the first 4 KiB
    "padded": (b"Bx" + b"y" * 120) * 40,
}


@pytest.mark.parametrize("spelling", sorted(_TENSOR_SPELLINGS))
@pytest.mark.parametrize("name", ["test_data_set_0/input_0.pb", "notes.txt"])
def test_ascii_tensor_proto_with_a_traversing_location_is_reported(
    tmp_path: Path, spelling: str, name: str
) -> None:
    """An all-ASCII TensorProto sniffed as text had its external data locations unchecked (clean); onnx 1.23
    refuses the traversal itself, releases before the location checks read the file (defence in depth)."""
    pytest.importorskip("onnx")
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_ascii_tensor("../../../../etc/hostname", prefix=_TENSOR_SPELLINGS[spelling]))
    res = _scan(path.parent)[path.name]
    assert any(f.rule_id == "LW-MODEL-035" for f in res.findings), res


def test_ascii_tensor_proto_with_a_local_location_and_text_stay_clean(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    (tmp_path / "input_0.pb").write_bytes(_ascii_tensor("input_0.bin"))
    (tmp_path / "input_0.bin").write_bytes(b"\x01\x02\x03\x04\x05")
    (tmp_path / "README.md").write_bytes(b"Bert base, fine-tuned.\n\nbatch: 8\n")
    (tmp_path / "hparams.yaml").write_bytes(b"batch_size: 8\nrun: 2\n")
    results = _scan(tmp_path)
    for name in ("input_0.pb", "README.md", "hparams.yaml"):
        assert results[name].verdict is Verdict.CLEAN, results[name]


# ---------------------------------------------------------------------------------------- clearer unknown reasons


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x7fELF\x02\x01\x01" + bytes(300), "ELF executable"),
        (b"II*\x00\x08\x00\x00\x00" + bytes(300), "TIFF image"),
        (b"MM\x00*\x00\x00\x00\x08" + bytes(300), "TIFF image"),
        (b"\x00\x01\x00\x00\x00\x0c\x00\x80\x00\x03\x00\x40" + bytes(300), "TrueType font"),
        (b"wOF2\x00\x01\x00\x00" + bytes(300), "WOFF2 web font"),
    ],
    ids=["elf", "tiff-le", "tiff-be", "truetype", "woff2"],
)
def test_unverified_reason_names_executables_images_and_fonts(tmp_path: Path, data: bytes, kind: str) -> None:
    res = _one(tmp_path, "blob.bin", data)
    assert res.verdict is Verdict.UNVERIFIED, res
    assert res.reason is not None and res.reason.startswith(kind), res.reason


def test_raw_data_starting_like_a_font_version_is_still_unknown(tmp_path: Path) -> None:
    res = _one(tmp_path, "blob.bin", b"\x00\x01\x00\x00" + bytes(range(1, 255)))
    assert res.reason is not None and res.reason.startswith("unknown binary format"), res.reason


@pytest.mark.parametrize("space", [b" ", b"\n\t\r ", b" " * 5000])
def test_safetensors_header_after_json_whitespace_is_read_as_safetensors(
    tmp_path: Path, space: bytes
) -> None:
    """safetensors (serde_json) skips whitespace before the header's ``{``; the sniff wanted the ``{`` at byte 8,
    so such a file was unknown binary, clean as ONNX external data, while safe_open(...).metadata() handed out a
    Hydra config (instantiated by hydra-core 1.3.2, it ran)."""
    raw = space + b'{"__metadata__":{"config":' + _hydra_metadata() + b"}," + _TENSOR + b"}"
    data = struct.pack("<Q", len(raw)) + raw + b"\x00" * 4
    assert _critical(_one(tmp_path, "model.safetensors", data), HYDRA)
    pytest.importorskip("onnx")
    folder = tmp_path / "named"
    folder.mkdir()
    cp.onnx_naming_raw_data(folder, {"weights.bin": data})
    assert _critical(_scan(folder)["weights.bin"], HYDRA)


def test_safetensors_header_after_whitespace_is_what_the_library_reads(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors")
    raw = b"  " + b'{"__metadata__":{"note":"x"},' + _TENSOR + b"}"
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\x00" * 4)
    with safetensors.safe_open(str(path), "np") as f:
        assert f.metadata() == {"note": "x"}
    assert _scan(tmp_path)["model.safetensors"].verdict is Verdict.CLEAN


def test_torch_zip_with_a_signature_in_its_last_bytes_is_read_as_torch_reads_it(tmp_path: Path) -> None:
    """An end-record signature in the final 21 bytes makes zipfile refuse the archive (unverified) while torch's
    reader (miniz) passes over it and loads the checkpoint: it is analysed as torch reads it."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"x": _Touch("marker")}, path)
    path.write_bytes(path.read_bytes() + b"PK\x05\x06" + bytes(10))
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(path)
    res = _scan(tmp_path)["model.pt"]
    assert _critical(res, "LW-MODEL-001"), res
    code = f"import torch; torch.load({path.name!r}, weights_only=False)"
    subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False, cwd=tmp_path)
    assert (tmp_path / "marker").exists()


def _zip_with_a_second_end_record_in_its_comment() -> bytes:
    """Two members; the first end record lists only ``benign.pkl``, and its comment holds a central directory
    listing ``archive/data.pkl`` (the payload) with a second end record: zipfile takes the last signature."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("benign.pkl", pickle.dumps([1, 2, 3], protocol=2))
        z.writestr("archive/data.pkl", pickle.dumps(_Touch("marker"), protocol=2))
    raw = buf.getvalue()
    (cd_size, cd_offset) = struct.unpack_from("<II", raw, len(raw) - 22 + 12)
    cd = raw[cd_offset : cd_offset + cd_size]
    first_len = 46 + sum(struct.unpack_from("<HHH", cd, 28))
    benign, evil = cd[:first_len], cd[first_len:]
    body = raw[:cd_offset]
    evil_at = len(body) + len(benign) + 22
    second = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(evil), evil_at, 0)
    first = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(benign), len(body), len(evil) + 22)
    return body + benign + first + evil + second


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("end_blocks", [False, True])
def test_tar_member_zip_whose_comment_holds_the_end_record_zipfile_reads(
    tmp_path: Path, compressed: bool, end_blocks: bool
) -> None:
    member = _zip_with_a_second_end_record_in_its_comment()
    (tmp_path / "alone.zip").write_bytes(member)
    with zipfile.ZipFile(tmp_path / "alone.zip") as z:
        assert z.namelist() == ["archive/data.pkl"]  # zipfile reads the record in the comment
    (tmp_path / "alone.zip").unlink()
    if end_blocks:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
            info = tarfile.TarInfo("model.zip")
            info.size = len(member)
            tf.addfile(info, io.BytesIO(member))
        tar = buf.getvalue()
    else:
        tar = _tar_ending_in(member)
    _member_zip_payload_found(tmp_path, tar, compressed)


_OTHER_HEADERS: dict[str, Callable[[bytes], bytes]] = {
    # json.loads of the header's bytes (Python readers) takes a BOM and UTF-16/32; huggingface_hub decodes the
    # header dropping invalid bytes (errors="ignore")
    "utf-8-bom": lambda body: b"\xef\xbb\xbf" + body,
    "utf-16-bom": lambda body: body.decode().encode("utf-16"),
    "invalid-bytes-first": lambda body: b"\xc0\x80\xff" + body,
}


@pytest.mark.parametrize("kind", sorted(_OTHER_HEADERS))
def test_safetensors_header_json_to_a_python_reader_has_its_metadata_analysed(
    tmp_path: Path, kind: str
) -> None:
    """The sniff wanted a '{' (after whitespace) at byte 8: a header that json.loads of the bytes or a decoding
    that drops invalid bytes reads as JSON was unknown binary, clean as ONNX external data."""
    body = b'{"__metadata__":{"config":' + _hydra_metadata() + b"}," + _TENSOR + b"}"
    raw = _OTHER_HEADERS[kind](body)
    data = struct.pack("<Q", len(raw)) + raw + b"\x00" * 4
    pytest.importorskip("onnx")
    cp.onnx_naming_raw_data(tmp_path, {"weights.bin": data})
    res = _scan(tmp_path)["weights.bin"]
    assert _critical(res, HYDRA), res
    assert res.verdict is not Verdict.CLEAN
