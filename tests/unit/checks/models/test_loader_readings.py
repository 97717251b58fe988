"""Bytes that two loaders read differently: joblib's array data read as opcodes by pickle.load, INT/LONG texts
as the unpicklers parse them, and files of other formats whose first bytes are also a pickle (polyglots).

Each case is the class of attack, built here: the payload runs under one reading and the other reading is
benign. The scanner must report what any loader runs.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.checks.models.scanner import default_allow
from loopwarden.domain import Location

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "corpus"))
from _container_payloads import gguf_file, safetensors_file


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _s(text: str) -> bytes:
    return b"S'" + text.encode() + b"'\n"


_CALL = _g("os", "system") + b"(" + _s("echo never-run") + b"tR"
"""os.system('echo never-run'), leaving its result on the stack (protocol 0 opcodes)."""

_DTYPE_U1 = (
    _g("numpy", "dtype")
    + b"("
    + _s("u1")
    + b"I00\nI01\ntR"  # numpy.dtype('u1', False, True)
    + b"(K\x03"
    + _s("|")
    + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"  # its __setstate__ tuple
)


def _wrapper(shape_opcodes: bytes) -> bytes:
    """A joblib NumpyArrayWrapper for a uint8 array whose one dimension is pushed by ``shape_opcodes``."""
    return (
        _g("joblib.numpy_pickle", "NumpyArrayWrapper")
        + b")\x81}("
        + _s("subclass")
        + _g("numpy", "ndarray")
        + _s("shape")
        + shape_opcodes
        + b"\x85"
        + _s("order")
        + _s("C")
        + _s("dtype")
        + _DTYPE_U1
        + _s("allow_mmap")
        + b"\x88ub"
    )


def _rules(data: bytes, **kwargs: object) -> tuple[set[str], str | None]:
    r = analyze_pickle_bytes(data, **kwargs)  # type: ignore[arg-type]
    return {f.rule_id for f in r.findings}, r.unverified


def _scan(name: str, data: bytes) -> ScanContext:
    ctx = ScanContext(name, Limits(), default_allow())
    scan_blob(bytes_blob(name, Location(name), data, 0), ctx)
    return ctx


# --- joblib array data is opcodes to every other loader --------------------------------------------------


@pytest.mark.parametrize("joblib", [True, False])
@pytest.mark.parametrize("proto", [b"\x80\x02", b"\x80\x04", b""])
def test_payload_in_joblib_array_data_is_found_for_plain_loaders(joblib: bool, proto: bytes) -> None:
    """The wrapper announces exactly the payload's length as array data: joblib skips it, pickle.load and
    torch.load run it. Both readings are analysed, whichever loader the file is taken for."""
    shape = b"J" + struct.pack("<i", len(_CALL + b"0"))
    data = proto + b"}" + _s("a") + _wrapper(shape) + _CALL + b"0" + b"s."
    rules, _ = _rules(data, joblib=joblib)
    assert "LW-MODEL-001" in rules, rules


def test_payload_reached_through_the_memo_in_joblib_array_data_is_found() -> None:
    """The plain reading continues the stream's state: names stored in the memo before the wrapper resolve."""
    pre = b"\x80\x02" + _s("os") + b"q\x01" + _s("system") + b"q\x020"  # memo 1 'os', memo 2 'system'; pop
    body = b"h\x01h\x02\x93(" + _s("echo never-run") + b"tR0"
    data = pre + b"}" + _s("a") + _wrapper(b"J" + struct.pack("<i", len(body))) + body + b"s."
    assert "LW-MODEL-001" in _rules(data, joblib=True)[0]


@pytest.mark.parametrize(
    "shape",
    [
        b"I0x" + b"0" * 70 + b"15\n",  # hex, longer than any fixed cut-off
        b"I0x15\n",
        b"I2_1\n",  # underscores: int(text, 0)
        b"I0o25\n",
        b"I0b10101\n",
        b"I  21  \n",
        b"L0x15L\n",  # LONG parses base 0 too
        b"L" + b"0x" + b"0" * 5000 + b"15\n",
        b"\x8b" + struct.pack("<i", 5000) + bytes([21]) + b"\x00" * 4999,  # LONG4 longer than 4 KiB
    ],
)
def test_joblib_array_sizes_are_parsed_as_the_loader_parses_them(shape: bytes) -> None:
    """The size decides where opcodes resume after the array data; a wrong size shows the scanner other bytes
    than joblib runs. Here the payload follows 21 bytes of array data whose misreading hides it."""
    array = (
        b"B" + struct.pack("<I", len(_CALL) + 1) + b"\x00" * 16
    )  # 21 bytes; as opcodes it swallows the payload
    data = b"\x80\x02}" + _s("a") + _wrapper(shape) + array + _CALL + b"0s."
    rules, unverified = _rules(data, joblib=True)
    assert "LW-MODEL-001" in rules or unverified, (rules, unverified)
    if not shape.startswith((b"\x8b",)):
        assert "LW-MODEL-001" in rules, rules


def test_a_decimal_beyond_the_interpreter_digit_limit_is_not_a_guessed_size() -> None:
    shape = b"I" + b"1" * 6000 + b"\n"
    data = b"\x80\x02}" + _s("a") + _wrapper(shape) + b"\x00" * 64 + b"s."
    rules, unverified = _rules(data, joblib=True)
    assert unverified, rules  # never clean: joblib may size the array differently


def test_c_unpickler_octal_ints_are_read_as_octal() -> None:
    from loopwarden.checks.models.pickle_vm import _text_int

    assert _text_int(b"010") == 8  # strtol, base 0
    assert _text_int(b"010", c_octal=False) is None  # int(text, 0) rejects it
    assert _text_int(b"0x_1f") == 31
    assert _text_int(b"1.5") is None


class _Reached(Exception):
    pass


class _Stub:
    def __init__(self, *args: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


class _NoImports(pickle.Unpickler):
    """pickle.load as it reads the bytes, with stubs for its classes, stopped at the payload's import."""

    def find_class(self, module: str, name: str) -> object:
        if module == "os":
            raise _Reached(f"{module}.{name}")
        return _Stub


def _two_arrays(first: bytes, second: bytes) -> bytes:
    """{'a': <first array data>, 'b': <second array data>}: each wrapper announces its own bytes' length."""
    n1 = b"J" + struct.pack("<i", len(first))
    n2 = b"J" + struct.pack("<i", len(second))
    return b"\x80\x02}" + _s("a") + _wrapper(n1) + first + b"s" + _s("b") + _wrapper(n2) + second + b"s."


@pytest.mark.parametrize(
    "first",
    [
        b"\x05\xff\xff\xff\xff\xff",  # joblib's alignment padding: byte 5, not an opcode
        b"\x00" * 8,
        bytes(range(0, 16)),
        b".\x00\x00",  # STOP: pickle.load returns the wrapper
    ],
)
def test_array_data_after_the_first_is_not_read_as_opcodes(first: bytes) -> None:
    """A plain loader reads the first array's bytes as opcodes and fails or stops there: it never reaches the
    second array, and joblib skips both. Bytes of a later array that look like a call are no finding (real
    float arrays in a joblib dump of a forest and a stacking classifier read as LogisticRegression calls)."""
    data = _two_arrays(first, _CALL + b"0")
    try:
        _NoImports(io.BytesIO(data)).load()
    except _Reached:
        pytest.fail("pickle.load reached the second array")
    except pickle.UnpicklingError:
        pass
    assert _rules(data, joblib=True) == (set(), None)


@pytest.mark.parametrize(
    "first",
    [
        b"N0" * 4,  # NONE POP: the plain reading runs on into the next wrapper and the second array
        b"",
        b"(0" * 3 + b"I1\n0",
        b"K\x070" + b"\x88\x89" + b"00",
    ],
)
def test_a_first_array_read_through_leads_the_plain_reading_to_the_second(first: bytes) -> None:
    """The first array's bytes are opcodes that run on: pickle.load goes on through the second wrapper and runs
    the second array's bytes. The reading followed from the first array sees it."""
    data = _two_arrays(first, _CALL + b"0")
    with pytest.raises(_Reached):
        _NoImports(io.BytesIO(data)).load()
    assert "LW-MODEL-001" in _rules(data, joblib=True)[0]


def test_real_joblib_dump_of_fitted_ensembles_is_clean() -> None:
    """Many float arrays (a forest's trees, a stacking classifier's estimators) in one joblib dump."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    ensemble = pytest.importorskip("sklearn.ensemble")
    linear = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    value = {
        "stack": ensemble.StackingClassifier(
            [("lr", linear.LogisticRegression()), ("rf", ensemble.RandomForestClassifier(5, random_state=0))]
        ).fit(x, y),
        "gb": ensemble.GradientBoostingClassifier(n_estimators=5, random_state=0).fit(x, y),
        "bag": ensemble.BaggingClassifier(n_estimators=3, random_state=0).fit(x, y),
        "et": ensemble.ExtraTreesRegressor(5, random_state=0).fit(x, x[:, 0]),
    }
    buf = io.BytesIO()
    joblib.dump(value, buf)
    assert _rules(buf.getvalue(), joblib=True) == (set(), None)


def test_real_joblib_dumps_stay_clean_with_the_plain_reading() -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(7)
    values = [
        rng.random((50, 7)),
        rng.integers(0, 255, 4096, dtype=np.uint8),
        np.frombuffer(b"cat\ndog\ncos\nsystem\n" * 50, dtype=np.uint8),  # text bytes as array data
        {"a": np.arange(1000), "b": np.ones(3, dtype=np.float16), "c": np.array(["x", "yz"])},
    ]
    for value in values:
        buf = io.BytesIO()
        joblib.dump(value, buf)
        rules, unverified = _rules(buf.getvalue(), joblib=True)
        assert not rules and unverified is None, (rules, unverified)


# --- other formats whose first bytes are a pickle ----------------------------------------------------------


def _gif_polyglot() -> bytes:
    # BINFLOAT ('G') swallows "IF89a" and three header bytes; the payload then runs
    return b"GIF89a" + b"\x01\x00\x01" + b"0" + _CALL + b"." + b"\x00" * 32


def _tar_polyglot() -> bytes:
    # a ustar archive whose first member name is a protocol-0 pickle
    name = (_CALL + b".").decode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = 4
        tar.addfile(info, io.BytesIO(b"data"))
    return buf.getvalue()


def _msgpack_polyglot() -> bytes:
    """One well-formed MessagePack map of ten entries that is also a pickle.

    0x8a is fixmap(10) to MessagePack and LONG1 to a pickle loader, whose length byte is the first key's header
    (fixstr of 5, 0xa5): LONG1 swallows the next 165 bytes, the map's first nine entries and the tenth key, and
    the payload the loader runs next is the tenth value, a bin32 that runs to the end of the file.
    """
    payload = _CALL + b"."
    entries = b"k0000" + b"\xd9" + bytes([91]) + b"v" * 91  # first key's text, a str8 value of 91 bytes
    for i in range(1, 10):
        entries += b"\xa5" + f"k{i:04}".encode() + (b"\xc0" if i < 9 else b"")
    entries += b"\xc6" + struct.pack(">I", len(payload))
    assert len(entries) == 165
    return b"\x8a\xa5" + entries + payload


@pytest.mark.parametrize("make", [_gif_polyglot, _tar_polyglot, _msgpack_polyglot])
@pytest.mark.parametrize("name", ["model.bin", "weights.gif", "pytorch_model.bin", "data"])
def test_files_of_other_formats_whose_first_bytes_run_a_payload(make: Callable[[], bytes], name: str) -> None:
    data = make()
    if make is _msgpack_polyglot:
        msgpack = pytest.importorskip("msgpack")
        assert len(msgpack.unpackb(data, strict_map_key=False)) == 10  # well-formed MessagePack as well
    ctx = _scan(name, data)
    assert any(f.rule_id == "LW-MODEL-001" for f in ctx.findings), (ctx.formats, ctx.findings, ctx.unverified)


def test_polyglot_through_a_safetensors_length_and_gguf_header() -> None:
    """The first byte of a safetensors file is its header length; a GGUF starts with BINFLOAT 'G'. A payload at
    the start is reported whatever else the file is."""
    gguf = gguf_file("{{ messages }}")
    tricked = b"GGUF" + b"\x03\x00\x00\x00" + b"0" + _CALL + b"." + gguf[9:]
    assert any(f.rule_id == "LW-MODEL-001" for f in _scan("m.gguf", tricked).findings)
    st = safetensors_file({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4)
    assert not _scan("m.safetensors", st).findings


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("labels.txt", "cat\ndog\n"),
        ("requirements.txt", "certifi\nnumpy\ntorch\n"),
        ("vocab.txt", "cls\nsep\npad\n"),
        ("classes.txt", "car\ntruck\nbus\n"),
        ("merges.txt", "c h\ne r\n"),
        ("labels.txt", "(cat)\n"),
    ],
)
def test_text_files_that_begin_like_opcodes_are_text(name: str, text: str) -> None:
    ctx = _scan(name, text.encode())
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    "data",
    [
        _CALL + b".",
        b"cat\ndog\n" + _CALL + b".",  # a known module after a broken start: still analysed
        _g("builtins", "eval") + b"(" + _s("1") + b"tR.",
        _g("subprocess", "Popen") + b"(" + _s("id") + b"tR.",
    ],
)
def test_text_named_pickles_are_still_pickles(data: bytes) -> None:
    ctx = _scan("notes.txt", data)
    assert {"LW-MODEL-001"} & {f.rule_id for f in ctx.findings}, (ctx.findings, ctx.unverified)


def test_benign_formats_are_not_read_as_pickles() -> None:
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    np.save(buf, np.arange(10))
    for name, data in [
        ("a.npy", buf.getvalue()),
        ("t.gguf", gguf_file("{% for m in messages %}{{ m['content'] }}{% endfor %}")),
        ("p.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
        ("g.gif", b"GIF89a" + bytes(range(256))),
        ("c.json", b'{"a": 1}'),
        ("x.pkl.txt", pickle.dumps([1, 2], protocol=0)),
    ]:
        ctx = _scan(name, data)
        assert not [f for f in ctx.findings if f.rule_id != "LW-MODEL-029"] and not ctx.unverified, (
            name,
            ctx.findings,
            ctx.unverified,
        )


# --- resource bounds ----------------------------------------------------------------------------------------


def test_a_state_dict_built_again_and_again_is_judged_once() -> None:
    """GET + BUILD costs three bytes; judging a large state dict on each would make time quadratic in size."""
    keys = b"".join(_s(f"k{i}") + b"K\x01" for i in range(500))
    state = b"}(" + keys + _s("__setstate__") + b"K\x01uq\x01"
    obj = _g("collections", "OrderedDict") + b")R"
    data = b"\x80\x02" + obj + state + b"b" + b"h\x01b" * 2000 + b"."
    r = analyze_pickle_bytes(data)
    dunder = [f for f in r.findings if f.evidence.get("subject") == "__setstate__"]
    assert len(dunder) == 1, r.findings
    assert r.unverified is None


@pytest.mark.parametrize("prefix", [b"\xef\xbb\xbf", b"\xef\xbb\xbf \n\t", b""])
@pytest.mark.parametrize(
    ("name", "config", "rule"),
    [
        ("tokenizer_config.json", {"chat_template": "{{ ().__class__.__mro__ }}"}, "LW-MODEL-040"),
        ("config.json", None, "LW-MODEL-032"),
    ],
)
def test_json_configs_behind_a_byte_order_mark_are_analysed(
    prefix: bytes, name: str, config: dict[str, object] | None, rule: str
) -> None:
    """json.loads(bytes), which Keras uses on config.json, skips a UTF-8 BOM: so must the scanner."""
    import json

    import _container_payloads as cp

    data = prefix + json.dumps(config if config is not None else cp.keras_lambda_config()).encode()
    assert rule in {f.rule_id for f in _scan(name, data).findings}


# --- tensors pickled with the plain pickle module ------------------------------------------------------------


def _load_from_bytes(payload: bytes, *, calls: int = 1) -> bytes:
    """torch.storage._load_from_bytes(payload), memoised and called ``calls`` times (protocol 2)."""
    arg = (
        b"C" + bytes([len(payload)]) + payload
        if len(payload) < 256
        else b"B" + struct.pack("<I", len(payload)) + payload
    )
    body = b"\x80\x02ctorch.storage\n_load_from_bytes\nq\x01" + b"(" + arg + b"tR0"
    for _ in range(calls - 1):
        body += b"h\x01(" + arg + b"tR0"
    return body + b"N."


def test_tensors_pickled_by_the_pickle_module_are_clean() -> None:
    """pickle.dumps of a tensor stores each storage as torch.storage._load_from_bytes(<a legacy torch.save
    file>): a torch.load call, judged by the file it loads."""
    torch = pytest.importorskip("torch")
    joblib = pytest.importorskip("joblib")
    for obj in (torch.ones(3), {"w": torch.zeros(2, 2), "b": torch.arange(4)}, torch.nn.Linear(2, 2)):
        for protocol in (2, 5):
            rules, unverified = _rules(pickle.dumps(obj, protocol=protocol))
            assert not rules and unverified is None, (obj, protocol, rules)
        buf = io.BytesIO()
        joblib.dump(obj, buf)
        assert _rules(buf.getvalue(), joblib=True) == (set(), None)


def test_load_from_bytes_is_benign_only_for_a_clean_legacy_storage_file() -> None:
    from _container_payloads import benign_pickle, evil_pickle, torch_legacy, torch_zip

    benign = torch_legacy([benign_pickle()])
    assert _rules(_load_from_bytes(benign)) == (set(), None)
    assert _rules(_load_from_bytes(benign, calls=3)) == (set(), None)
    # a payload in the loaded file: the call and the payload are reported
    rules, _ = _rules(_load_from_bytes(torch_legacy([evil_pickle()])))
    assert {"LW-MODEL-001", "LW-MODEL-003"} <= rules, rules
    # not a legacy storage file (a zip checkpoint, a plain pickle, a cut file): the loader re-entry is reported
    for other in (torch_zip(benign_pickle()), benign_pickle(), benign[:20]):
        assert "LW-MODEL-003" in _rules(_load_from_bytes(other))[0]


def test_load_from_bytes_used_other_than_called_is_reported() -> None:
    kept = b"\x80\x02]ctorch.storage\n_load_from_bytes\na."  # imported into a list: called later by anyone
    assert "LW-MODEL-003" in _rules(kept)[0]
    computed = (
        b"\x80\x02ctorch.storage\n_load_from_bytes\n(cbuiltins\nbytes\n)RtR."  # its argument made at load
    )
    assert "LW-MODEL-003" in _rules(computed)[0]


def test_safetensors_files_are_clean_whatever_their_first_byte() -> None:
    """A safetensors file starts with its header size, so its first byte is any value: read as an opcode, an
    8-byte length (BINBYTES8, BINUNICODE8, BYTEARRAY8) claims a payload past the end of the file, which is a
    loader's truncation error there, never a resource limit that would make a benign file unverified."""
    import json

    base = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    for first in range(256):
        size = (len(base) // 256 + 1) * 256 + first
        header = base + b" " * (size - len(base))
        data = struct.pack("<Q", len(header)) + header + b"\x00" * 16
        ctx = _scan("model.safetensors", data)
        assert not ctx.findings and not ctx.unverified, (hex(first), ctx.findings, ctx.unverified)


@pytest.mark.parametrize(
    ("module", "name"), [("pexpect", "spawn"), ("_pytest.pytester", "Pytester"), ("sh", "bash")]
)
def test_polyglot_reading_does_not_stop_at_common_infrastructure_packages(module: str, name: str) -> None:
    """The loader-prefix reading ends at a module no model environment has; packages most environments have
    (pytest, pexpect, sh ...) are not such modules, so what the payload reaches through them is reported."""
    payload = _g(module, name) + b"(" + _s("id") + b"tR."
    ctx = _scan("model.bin", b"GIF89a\x01\x00\x01" + b"0" + payload + b"\x00" * 16)
    assert any(f.evidence.get("subject") == f"{module}.{name}" for f in ctx.findings), ctx.findings


_OPENERS = {
    "main_module": _g("__main__", "__name__") + b"0",  # importable under every interpreter
    "unlisted_module": _g("idna", "encode") + b"0",  # importable wherever requests is installed
    "made_up_module": _g("ertifi", "numpy")
    + b"0",  # importable nowhere: a loader stops, the reading does not
}


@pytest.mark.parametrize("opener", _OPENERS.values(), ids=_OPENERS.keys())
def test_an_opener_the_reading_does_not_know_does_not_end_it(opener: bytes) -> None:
    """A module that the first-bytes reading does not know is not judged, but the reading goes on: a loader that
    can import it runs what follows."""
    payload = opener + _CALL + b"."
    for name, data in (
        ("model.bin", b"GIF89a\x01\x00\x01" + b"0" + payload + b"\x00" * 16),
        ("notes.txt", payload),
    ):
        ctx = _scan(name, data)
        assert "LW-MODEL-001" in {f.rule_id for f in ctx.findings}, (name, ctx.findings)
    shape = b"J" + struct.pack("<i", len(opener + _CALL + b"0"))
    joblib_data = b"\x80\x02}" + _s("a") + _wrapper(shape) + opener + _CALL + b"0" + b"s."
    assert "LW-MODEL-001" in _rules(joblib_data, joblib=True)[0]


def test_a_module_name_computed_by_a_call_in_the_first_bytes_is_judged() -> None:
    """codecs.encode('bf', 'rot_13') is 'os': a STACK_GLOBAL on a name made by a call in the reading is reported
    as a computed global, never the silent end of the reading."""
    rot = (
        b"c_codecs\nencode\n(" + _s("bf") + _s("rot_13") + b"tR" + _s("system") + b"\x93(" + _s("id") + b"tR."
    )
    ctx = _scan("model.bin", b"GIF89a\x01\x00\x01" + b"0" + rot + b"\x00" * 16)
    assert "LW-MODEL-014" in {f.rule_id for f in ctx.findings}, ctx.findings
