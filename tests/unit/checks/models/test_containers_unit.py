"""Unit tests of the container layer: detection, zip views, safetensors, GGUF, templates, folder walking."""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.chat_template import check_template
from loopwarden.checks.models.detect import Format, sniff
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.scanner import collect_targets, default_allow, scan_paths
from loopwarden.checks.models.zipfmt import escapes_folder
from loopwarden.domain import Location, Severity, Verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "corpus"))
import _container_payloads as cp


def scan_bytes(data: bytes, name: str = "f.bin") -> ScanContext:
    ctx = ScanContext("f", Limits(), default_allow())
    try:
        scan_blob(bytes_blob(name, Location("f"), data, 0), ctx)
    finally:
        for c in ctx.closers:  # temporary files, as the scanner closes them when a target is done
            c.close()
    return ctx


def rules(ctx: ScanContext) -> set[str]:
    return {f.rule_id for f in ctx.findings}


# ------------------------------------------------------------------------------------------------ detection


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        (b"\x80\x04\x95", Format.PICKLE),
        (b"(dp0\nS'a'\np1\nI1\ns.", Format.PICKLE),
        (b"cos\nsystem\n", Format.PICKLE),
        (b"]q\x00.", Format.PICKLE),
        (b"}q\x00.", Format.PICKLE),
        (b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", Format.TORCH_LEGACY),
        (b"PK\x03\x04" + b"\x00" * 30, Format.ZIP),
        (b"\x93NUMPY\x01\x00", Format.NUMPY),
        (b"GGUF\x03\x00\x00\x00", Format.GGUF),
        (b"\x89HDF\r\n\x1a\n", Format.HDF5),
        (b"\x1f\x8b\x08", Format.GZIP),
        (b"BZh91AY", Format.BZIP2),
        (b"\xfd7zXZ\x00", Format.XZ),
        (b"x\x9c\x03\x00", Format.ZLIB),
        (b"7z\xbc\xaf\x27\x1c", Format.SEVEN_ZIP),
        (struct.pack("<Q", 2) + b"{}", Format.SAFETENSORS),
        (b"# a readme\n", Format.TEXT),
        (b"\x89PNG\r\n\x1a\n", Format.MEDIA),
        (b"\x00\x01\x02\xff\xfe", Format.UNKNOWN),
        (b"", Format.EMPTY),
    ],
)
def test_sniff(data: bytes, fmt: Format) -> None:
    assert sniff(data, len(data)) is fmt


def test_text_starting_with_opcode_is_text() -> None:
    ctx = scan_bytes(b"I like this model.\nclass Foo: pass\n", "NOTES")
    assert not ctx.findings
    assert not ctx.unverified


def test_unknown_binary_is_unverified() -> None:
    ctx = scan_bytes(b"\x00\x01\x02\x03" * 100)
    assert ctx.unverified


# ------------------------------------------------------------------------------------------------------ zip


@pytest.mark.parametrize(
    ("name", "escapes"),
    [
        ("a/b.pkl", False),
        ("a/../b.pkl", True),
        ("../x", True),
        ("/etc/passwd", True),
        ("C:/x", True),
        ("a\\..\\b", True),
        ("a/..b", False),
    ],
)
def test_escapes_folder(name: str, escapes: bool) -> None:
    assert (escapes_folder(name) is not None) is escapes


class _Unseekable(io.RawIOBase):
    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        self.buf += b
        return len(b)


def test_streamed_zip_with_data_descriptors_is_clean() -> None:
    """zipfile writes data descriptors (flag bit 3) to unseekable streams: a normal layout, not a finding."""
    sink = _Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as z:  # type: ignore[arg-type]
        z.writestr("archive/data.pkl", cp.benign_pickle())
        z.writestr("archive/version", b"3\n")
    data = bytes(sink.buf)
    assert zipfile.ZipFile(io.BytesIO(data)).infolist()[0].flag_bits & 0x8
    ctx = scan_bytes(data, "m.pt")
    assert not ctx.findings, ctx.findings
    assert not ctx.unverified


def test_zip64_archive_is_clean() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        with z.open("archive/data.pkl", "w", force_zip64=True) as f:
            f.write(cp.benign_pickle())
        z.writestr("archive/version", b"3\n")
    ctx = scan_bytes(buf.getvalue(), "m.pt")
    assert not ctx.findings, ctx.findings
    assert not ctx.unverified


def test_unsupported_method_is_unverified() -> None:
    data = cp.torch_zip(cp.evil_pickle())
    patched = cp.patch_member(
        data,
        "archive/data.pkl",
        central=lambda b, off: struct.pack_into("<H", b, off + 10, 99),
        local=lambda b, off: struct.pack_into("<H", b, off + 8, 99),
    )
    ctx = scan_bytes(patched, "m.pt")
    assert any("compression method 99" in r for r in ctx.unverified)


def test_truncated_zip_is_unverified() -> None:
    data = cp.torch_zip(cp.benign_pickle())
    assert scan_bytes(data[:-30], "m.pt").unverified


def test_tar_hardlink_inside_is_low() -> None:
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        t.addfile(info, io.BytesIO(b"x"))
        link = tarfile.TarInfo("b.txt")
        link.type = tarfile.LNKTYPE
        link.linkname = "a.txt"
        t.addfile(link)
    ctx = scan_bytes(buf.getvalue(), "m.tar")
    assert [f.severity for f in ctx.findings] == [Severity.LOW]


# -------------------------------------------------------------------------------------------- safetensors


def test_safetensors_edge_cases() -> None:
    ok = cp.safetensors_file(
        {
            "e": {"dtype": "F16", "shape": [0], "data_offsets": [0, 0]},
            "q": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]},
            "__metadata__": {"k": "v"},
        },
        b"\x00\x00",
    )
    assert not scan_bytes(ok, "m.safetensors").findings
    meta = cp.safetensors_file({"__metadata__": {"k": 1}})
    assert rules(scan_bytes(meta)) == {"LW-MODEL-038"}
    dup = cp.safetensors_file(
        b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
        b"\x00",
    )
    assert rules(scan_bytes(dup)) == {"LW-MODEL-037"}
    wrong = cp.safetensors_file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\x00" * 8)
    assert rules(scan_bytes(wrong)) == {"LW-MODEL-037"}


# --------------------------------------------------------------------------------------------------- gguf


def test_gguf_v1_and_arrays() -> None:
    def s1(t: str) -> bytes:
        return struct.pack("<I", len(t)) + t.encode()

    kv = s1("tokenizer.ggml.tokens") + struct.pack("<II", 9, 8) + struct.pack("<I", 2) + s1("a") + s1("b")
    body = b"GGUF" + struct.pack("<III", 1, 0, 1) + kv
    ctx = scan_bytes(body, "m.gguf")
    assert not ctx.findings, ctx.findings
    assert not ctx.unverified


def test_gguf_bad_version() -> None:
    ctx = scan_bytes(b"GGUF" + struct.pack("<IQQ", 7, 0, 0), "m.gguf")
    assert rules(ctx) == {"LW-MODEL-039"}
    assert ctx.unverified


# ---------------------------------------------------------------------------------------------- templates


BAD_TEMPLATES = [
    "{{ self._TemplateReference__context }}",
    "{{ ''|attr('__class__') }}",
    "{% import 'os' as os %}",
    "{{ '{0.__class__}'.format(messages) }}",
    "{{ messages[['__cla', 'ss__']|join] }}",
    "{{ request.application }}",
    "{% set ns = namespace() %}{{ ns.__init__.__globals__ }}",
    "{{ messages.__dict__ }}",
    "{{ messages|map(attribute='__class__')|list }}",
    "{% set a = '_' * 2 %}{{ messages[a ~ 'class' ~ a] }}",
    "{{ messages[('%c%c' % (95, 95)) ~ 'class__'] }}",
]


@pytest.mark.parametrize("tmpl", BAD_TEMPLATES)
def test_template_attacks(tmpl: str) -> None:
    ctx = ScanContext("f", Limits(), None)
    check_template(tmpl, ctx, Location("f"))
    assert ctx.findings, tmpl
    assert max(f.severity for f in ctx.findings) >= Severity.HIGH


def test_template_parse_error_is_unverified() -> None:
    ctx = ScanContext("f", Limits(), None)
    check_template("{% for x in %}", ctx, Location("f"))
    assert ctx.unverified


# ---------------------------------------------------------------------------------------------- scanner


def test_hf_cache_links_followed_inside_cache(tmp_path: Path) -> None:
    repo = tmp_path / "hub" / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    snap = repo / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (repo / "blobs" / "deadbeef").write_bytes(cp.torch_zip(cp.evil_pickle()))
    (repo / "blobs" / "cafe").write_bytes(json.dumps({"a": 1}).encode())
    os.symlink("../../blobs/deadbeef", snap / "pytorch_model.bin")
    os.symlink("../../blobs/cafe", snap / "config.json")
    for start in (snap, repo, tmp_path / "hub"):
        report = scan_paths([str(start)], jobs=1)
        by_name = {Path(t.path).name: t for t in report.targets}
        assert set(by_name) == {"pytorch_model.bin", "config.json"}, by_name
        assert by_name["pytorch_model.bin"].verdict is Verdict.FINDINGS


def test_symlink_out_of_tree_is_reported(tmp_path: Path) -> None:
    outside = tmp_path / "outside.pkl"
    outside.write_bytes(cp.evil_pickle())
    d = tmp_path / "models"
    d.mkdir()
    os.symlink(outside, d / "m.pkl")
    targets = collect_targets([str(d)])
    assert len(targets) == 1
    assert targets[0].real is None
    assert "outside the scanned folder" in (targets[0].problem or "")


def test_depth_bound(tmp_path: Path) -> None:
    data = cp.torch_zip(cp.benign_pickle())
    for i in range(6):
        data = cp.zip_of({f"l{i}.zip": data})
    (tmp_path / "deep.zip").write_bytes(data)
    report = scan_paths([str(tmp_path / "deep.zip")], limits=Limits(max_depth=4), jobs=1)
    (t,) = report.targets
    assert t.verdict is Verdict.UNVERIFIED
    assert "max_depth" in (t.reason or "")


def test_keras_lambda_function_object_alone() -> None:
    """Keras 3 serializes a Python lambda anywhere in a config as class_name '__lambda__' with 'value'."""
    cfg = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {"units": 1, "activation": {"class_name": "__lambda__", "config": {"value": "4wAAAA=="}}},
    }
    ctx = scan_bytes(cp.keras_zip(cfg), "m.keras")
    assert "LW-MODEL-032" in rules(ctx)


def test_template_lines_are_the_files_own_only_for_a_standalone_template(tmp_path: Path) -> None:
    """A line number inside a GGUF header is not a line of the file: it goes in the evidence instead."""
    evil = "{{ 'x' }}\n{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    ctx = scan_bytes(cp.gguf_file(evil), "m.gguf")
    hits = [f for f in ctx.findings if f.rule_id == "LW-MODEL-040"]
    assert hits
    assert all(f.location.line is None for f in hits)
    assert any(f.evidence.get("template_line") == 2 for f in hits)
    (tmp_path / "chat.jinja").write_text(evil)
    report = scan_paths([str(tmp_path / "chat.jinja")], jobs=1)
    (target,) = report.targets
    assert any(f.location.line == 2 for f in target.findings)


def _escape_reason(name: str) -> str | None:
    """The member-name rules spelled out one by one (the scanner screens with one regular expression first)."""
    if "\x00" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if len(name) > 1 and name[0].isascii() and name[0].isalpha() and name[1] == ":":
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "contains '..'"
    return None


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "..", ".", "/", "\\", "\x00", ":", "C", "é", "\n", "..a", " "]), max_size=8
    )
)
def test_member_name_screen_agrees_with_the_rules(parts: list[str]) -> None:
    name = "".join(parts)
    assert escapes_folder(name) == _escape_reason(name)


_SSTI = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"


def _kv_string(key: str, value: str) -> bytes:
    def s(t: str) -> bytes:
        b = t.encode()
        return struct.pack("<Q", len(b)) + b

    return s(key) + struct.pack("<I", 8) + s(value)


def _kv_string_array(key: str, values: list[str]) -> bytes:
    body = b"".join(struct.pack("<Q", len(v.encode())) + v.encode() for v in values)
    return (
        struct.pack("<Q", len(key))
        + key.encode()
        + struct.pack("<I", 9)
        + struct.pack("<IQ", 8, len(values))
        + body
    )


def test_gguf_named_templates_and_the_name_list_are_judged(tmp_path: Path) -> None:
    names = _kv_string_array("tokenizer.chat_templates", ["tool_use", _SSTI])
    data = cp.gguf_file(
        "{{ x }}", extra_kv=names + _kv_string("tokenizer.chat_template.tool_use", _SSTI), n_kv_extra=2
    )
    (tmp_path / "m.gguf").write_bytes(data)
    (target,) = scan_paths([str(tmp_path / "m.gguf")], jobs=1).targets
    keys = {f.evidence.get("template_key") for f in target.findings}
    assert {"tokenizer.chat_template.tool_use", "tokenizer.chat_templates[1]"} <= keys, target.findings
    assert all(f.rule_id == "LW-MODEL-040" for f in target.findings), target.findings


def test_a_template_over_the_kept_string_bound_is_unverified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: a chat template too long to keep is not analysed, so the file cannot be clean."""
    from loopwarden.checks.models import gguf

    monkeypatch.setattr(gguf, "_MAX_KEEP", 64)
    (tmp_path / "m.gguf").write_bytes(cp.gguf_file(_SSTI + " " * 100))
    (target,) = scan_paths([str(tmp_path / "m.gguf")], jobs=1).targets
    assert target.verdict is Verdict.UNVERIFIED
    assert "not analysed" in (target.reason or "")


def test_json_configs_cannot_hide_behind_whitespace_or_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON may start after any amount of whitespace; a config over the text bound is unverified, not clean."""
    from loopwarden.checks.models import dispatch

    config = json.dumps({"chat_template": _SSTI})
    (tmp_path / "padded_tokenizer_config.json").write_text(" " * 10_000 + "\n" + config)
    (padded,) = scan_paths([str(tmp_path / "padded_tokenizer_config.json")], jobs=1).targets
    assert any(f.rule_id == "LW-MODEL-040" for f in padded.findings), padded
    monkeypatch.setattr(dispatch, "_MAX_TEXT_PARSE", 1024)
    (tmp_path / "big_config.json").write_text(config[:-1] + ', "pad": "' + "x" * 2000 + '"}')
    (big,) = scan_paths([str(tmp_path / "big_config.json")], jobs=1).targets
    assert big.verdict is Verdict.UNVERIFIED
    assert "bound" in (big.reason or "")


def test_a_payload_after_a_broken_start_is_found_even_in_a_text_file(tmp_path: Path) -> None:
    """Everything after an invalid opcode is analysed: a known module reached there makes the text a pickle."""
    (tmp_path / "notes.txt").write_bytes(b"a\ncos\nsystem\n(S'id'\ntR.")
    (target,) = scan_paths([str(tmp_path / "notes.txt")], jobs=1).targets
    assert target.verdict is Verdict.UNVERIFIED
    assert any(f.rule_id == "LW-MODEL-001" for f in target.findings), target.findings


def test_a_pickle_named_as_text_is_still_disguised(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_bytes(b"cos\nsystem\n(S'id'\ntR.")
    (target,) = scan_paths([str(tmp_path / "notes.txt")], jobs=1).targets
    rules_found = {f.rule_id for f in target.findings}
    assert {"LW-MODEL-001", "LW-MODEL-029"} <= rules_found, target.findings


def test_chat_templates_in_every_shape_of_tokenizer_config_are_judged(tmp_path: Path) -> None:
    """transformers saves several templates as a list of {name, template} and accepts a dict when loading."""
    shapes = {
        "dict": {"default": "{{ x }}", "tool_use": _SSTI},
        "list": [{"name": "default", "template": "{{ x }}"}, {"name": "rag", "template": _SSTI}],
        "nested": {"default": ["{{ x }}", {"deeper": _SSTI}]},
    }
    for name, value in shapes.items():
        (tmp_path / f"{name}_tokenizer_config.json").write_text(json.dumps({"chat_template": value}))
    (tmp_path / "ok_tokenizer_config.json").write_text(
        json.dumps({"chat_template": [{"name": "default", "template": "{{ messages[0].content }}"}]})
    )
    verdicts = {
        Path(t.path).name.split("_")[0]: t.verdict for t in scan_paths([str(tmp_path)], jobs=1).targets
    }
    assert verdicts == {
        "dict": Verdict.FINDINGS,
        "list": Verdict.FINDINGS,
        "nested": Verdict.FINDINGS,
        "ok": Verdict.CLEAN,
    }


def test_a_keras_config_over_the_node_bound_is_unverified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopwarden.checks.models import keras

    monkeypatch.setattr(keras, "MAX_CONFIG_NODES", 50)
    layers = [{"class_name": "Dense", "config": {"units": i}} for i in range(100)]
    (tmp_path / "config.json").write_text(
        json.dumps({"class_name": "Sequential", "config": {"layers": layers}})
    )
    (target,) = scan_paths([str(tmp_path / "config.json")], jobs=1).targets
    assert target.verdict is Verdict.UNVERIFIED
    assert "max_config_nodes" in (target.reason or "")


@pytest.mark.parametrize(
    ("template", "reported"),
    [
        ("{{ (x|groupby('_module'))[0].grouper }}", True),
        ("{{ x|selectattr('_private')|list }}", True),
        ("{{ x|rejectattr('a.__class__')|list }}", True),
        ("{{ x|sum('_n') }}", True),
        ("{{ x|unique(false, '_k')|list }}", True),
        ("{{ x|sort(false, false, 'a._b') }}", True),
        ("{% set k = '_mod' ~ 'ule' %}{{ x|groupby(k) }}", True),
        ("{{ x|groupby(name_from_the_caller) }}", True),
        ("{{ x|map('attr', '_module')|list }}", True),
        ("{{ x|map('at' ~ 'tr', '_y')|list }}", True),
        ("{{ x|map('attr', messages[0].role)|list }}", True),
        ("{{ x|map(filter_from_the_caller)|list }}", True),
        ("{{ x|map('trim')|join }}", False),
        ("{{ messages|selectattr('role', 'equalto', 'user')|list|length }}", False),
        ("{{ x|map(attribute='content')|join(', ') }}", False),
        ("{{ x|map('at' ~ 'tr', 'y')|list }}{{ x|map('attr', 'content')|join(', ') }}", False),
        ("{{ x|groupby('role') }}{{ x|sum(attribute='n') }}{{ x|sort(attribute='name') }}", False),
    ],
)
def test_filters_that_read_attributes_by_name_are_judged(template: str, reported: bool) -> None:
    assert _template_reported(template) is reported


def test_sentencepiece_models_are_recognised_and_checked(tmp_path: Path) -> None:
    """tokenizer.model ships with most LLMs: inert data when it is the protobuf it claims, unverified otherwise."""
    good = cp.sentencepiece_model()
    assert sniff(good[:4096], len(good)) is Format.SENTENCEPIECE
    (tmp_path / "tokenizer.model").write_bytes(good)
    (tmp_path / "cut.model").write_bytes(good[:-5])
    (tmp_path / "appended.model").write_bytes(good + cp.evil_pickle())
    verdicts = {Path(t.path).name: t.verdict for t in scan_paths([str(tmp_path)], jobs=1).targets}
    assert verdicts == {
        "tokenizer.model": Verdict.CLEAN,
        "cut.model": Verdict.UNVERIFIED,
        "appended.model": Verdict.UNVERIFIED,
    }


@pytest.mark.parametrize(
    ("template", "reported"),
    [
        # names the template builds without spelling them: judged by value, or reported when not computable
        ("{{ ''[dict(__class__=1)|first] }}", True),
        ("{{ ''['{0}{0}class{0}{0}'.format('_')] }}", True),
        ("{{ ''['{0:_^9}'.format('class')] }}", True),
        ("{{ ''['%c%cclass%c%c'|format(95, 95, 95, 95)] }}", True),
        ("{% set k %}__cla{{ 'ss' }}__{% endset %}{{ ''[k] }}", True),
        ("{% for k in dict(mro=1) %}{{ x[k] }}{% endfor %}", True),
        ("{% for k in ['a' ~ 'b', 'm' ~ 'ro'] %}{{ x[k] }}{% endfor %}", True),
        ("{% for k in ['name'] %}{% endfor %}{% set k = dict(mro=1)|first %}{{ x[k] }}", True),
        ("{{ x['{:>99999999}'.format('a')] }}", True),  # not evaluated (memory), so not computable
        # what real templates do
        ("{% for i in range(3) %}{{ messages[i] }}{% endfor %}", False),
        ("{% for k in ['name', 'description'] %}{{ tool[k] }}{% endfor %}", False),
        ("{% set r = 'role' %}{{ m[r] }}{{ m['con' ~ 'tent'] }}{{ messages[-1]['content'] }}", False),
        ("{% for i in range(messages|length) %}{{ messages[loop.index0 - 1] }}{% endfor %}", False),
    ],
)
def test_item_names_the_template_builds_are_judged(template: str, reported: bool) -> None:
    assert _template_reported(template) is reported


def _template_reported(template: str) -> bool:
    ctx = ScanContext("t", Limits(), default_allow())
    check_template(template, ctx, Location("t"))
    return bool(ctx.findings)


def test_an_archive_of_many_bad_members_gives_a_readable_reason(tmp_path: Path) -> None:
    members = {f"m{i:02}.bin": b"\x00\xff\xfe" + bytes([i]) * 40 for i in range(20)}
    (tmp_path / "many.zip").write_bytes(cp.zip_of(members))
    (target,) = scan_paths([str(tmp_path / "many.zip")], jobs=1).targets
    assert target.verdict is Verdict.UNVERIFIED
    reason = target.reason or ""
    assert reason.endswith("; and 12 more"), reason
    assert reason.count("unknown binary format") == 8


def _mp(value: object) -> bytes:
    """A small MessagePack encoder (maps, arrays, str, bin, ints, floats, nil, bools, ext) for the tests."""
    if value is None:
        return b"\xc0"
    if value is True or value is False:
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        if 0 <= value < 128:
            return bytes([value])
        if -32 <= value < 0:
            return struct.pack("b", value)
        return b"\xd3" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return (bytes([0xA0 | len(raw)]) if len(raw) < 32 else b"\xdb" + struct.pack(">I", len(raw))) + raw
    if isinstance(value, bytes):
        return b"\xc6" + struct.pack(">I", len(value)) + value
    if isinstance(value, tuple):  # (ext type, payload)
        return b"\xc9" + struct.pack(">Ib", len(value[1]), value[0]) + value[1]
    if isinstance(value, list):
        return b"\xdd" + struct.pack(">I", len(value)) + b"".join(_mp(v) for v in value)
    assert isinstance(value, dict)
    head = bytes([0x80 | len(value)]) if len(value) < 16 else b"\xdf" + struct.pack(">I", len(value))
    return head + b"".join(_mp(k) + _mp(v) for k, v in value.items())


_MP_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=40)
    | st.binary(max_size=64)
    | st.tuples(st.integers(-128, 127), st.binary(max_size=32)),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=8), _MP_VALUES, min_size=1, max_size=6), st.integers(1, 40)
)
def test_messagepack_files_are_recognised_and_checked_for_structure(
    value: dict[str, object], cut: int
) -> None:
    """Flax's flax_model.msgpack: one well-formed MessagePack map is clean; cut or followed by anything, unverified."""
    data = _mp(value)
    ctx = ScanContext("mp", Limits(), default_allow())
    scan_blob(bytes_blob("flax_model.msgpack", Location("mp"), data, 0), ctx)
    assert ctx.formats[0] == "msgpack"
    assert not ctx.unverified and not ctx.findings
    # (three bytes at least: the map's type and its first key's are what identify MessagePack)
    for broken in (data[: max(3, len(data) - cut)], data + cp.evil_pickle()):
        bad = ScanContext("mp", Limits(), default_allow())
        scan_blob(bytes_blob("flax_model.msgpack", Location("mp"), broken, 0), bad)
        assert bad.unverified, broken
