"""Pickles kept as data inside a pickle (LW-MODEL-019): a payload that loading the file does not run, but that any
code unpickling the value later does. modelaudit's regression corpus treats these as malicious
(``tests/assets/samples/pickles/nested_pickle_{raw,base64,hex,multistage}.pkl``, ``malicious_model_realistic.pkl``,
``decode_exec_chain.pkl`` in promptfoo/modelaudit); loopwarden reported them clean before.

Every outer and inner pickle is assembled here from opcodes or ``pickle.dumps`` of plain data; nothing is unpickled.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import lzma
import pickle
import struct
import zlib

import pytest
import zstandard

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.checks.models.scanner import default_allow
from loopwarden.domain import Finding, Location, Severity

RULE = "LW-MODEL-019"


def u(s: str) -> bytes:
    raw = s.encode("utf-8", "surrogatepass")
    return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + struct.pack("<I", len(raw)) + raw


def by(b: bytes) -> bytes:
    """SHORT_BINBYTES / BINBYTES."""
    return b"C" + bytes([len(b)]) + b if len(b) < 256 else b"B" + struct.pack("<I", len(b)) + b


def dict_of(*pairs: tuple[str, bytes]) -> bytes:
    """A protocol 4 pickle of a dict of string keys to the given value opcodes."""
    body = b"".join(u(k) + v for k, v in pairs)
    return b"\x80\x04}(" + body + b"u."


# Inner payloads: what a later pickle.loads of the stored value would run.
SYSTEM_P4 = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."
EXEC_P2 = b"\x80\x02cbuiltins\nexec\nX\x0e\x00\x00\x00import os as _\x85R."
SYSTEM_P0 = b"cposix\nsystem\n(S'id'\ntR."
SYSTEM_P0_MARK = b"(cos\nsystem\nS'id'\no."
PRINT_P4 = b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x8c\x05print\x93\x8c\x01x\x85R."


def scan(data: bytes) -> PickleResult:
    return analyze_pickle_bytes(data)


def stored(result: PickleResult) -> list[Finding]:
    return [f for f in result.findings if f.rule_id == RULE]


def assert_stored(result: PickleResult, reaches: str, severity: Severity = Severity.HIGH) -> None:
    hits = stored(result)
    assert hits, [(f.rule_id, f.message) for f in result.findings]
    assert any(reaches in str(f.evidence.get("reaches")) for f in hits), [f.evidence for f in hits]
    assert max(f.severity for f in hits) == severity


# --- encodings of one payload -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "how"),
    [
        (by(SYSTEM_P4), "bytes"),
        (b"B" + struct.pack("<I", len(SYSTEM_P4)) + SYSTEM_P4, "bytes"),  # BINBYTES even when short
        (b"\x8e" + struct.pack("<Q", len(SYSTEM_P4)) + SYSTEM_P4, "bytes"),  # BINBYTES8
        (b"\x96" + struct.pack("<Q", len(SYSTEM_P4)) + SYSTEM_P4, "bytes"),  # BYTEARRAY8
        (u(base64.b64encode(SYSTEM_P4).decode()), "base64"),
        (u(base64.urlsafe_b64encode(SYSTEM_P4).decode()), "base64"),
        (u(base64.encodebytes(SYSTEM_P4 * 3).decode()), "base64"),  # with line breaks, as encodebytes writes
        (u(SYSTEM_P4.hex()), "hex"),
        (u(SYSTEM_P4.hex().upper()), "hex"),
        (u(SYSTEM_P4.decode("latin-1")), "latin-1 text"),
        (by(zlib.compress(SYSTEM_P4)), "bytes, zlib"),
        (by(zlib.compress(SYSTEM_P4, 9)), "bytes, zlib"),
        (by(gzip.compress(SYSTEM_P4)), "bytes, gzip"),
        (u(base64.b64encode(zlib.compress(SYSTEM_P4)).decode()), "base64, zlib"),
        (u(zlib.compress(SYSTEM_P4).hex()), "hex, zlib"),
        # protocol 0/1 strings holding the payload
        (b"S'" + base64.b64encode(SYSTEM_P4) + b"'\n", "base64"),
        (b"V" + SYSTEM_P4.hex().encode() + b"\n", "hex"),
        (b"U" + bytes([len(SYSTEM_P4)]) + SYSTEM_P4, "latin-1 text"),  # SHORT_BINSTRING
        (b"T" + struct.pack("<i", len(SYSTEM_P4)) + SYSTEM_P4, "latin-1 text"),  # BINSTRING
    ],
)
def test_a_stored_pickle_is_reported_whatever_its_encoding(value: bytes, how: str) -> None:
    result = scan(dict_of(("model", u("resnet")), ("payload", value)))
    assert_stored(result, "system")
    assert any(f.evidence.get("encoding") == how for f in stored(result)), [
        f.evidence for f in stored(result)
    ]


@pytest.mark.parametrize("inner", [SYSTEM_P4, EXEC_P2, SYSTEM_P0, SYSTEM_P0_MARK, PRINT_P4])
def test_inner_protocols_and_callables(inner: bytes) -> None:
    for value in (by(inner), u(base64.b64encode(inner).decode())):
        result = scan(dict_of(("w", value)))
        assert stored(result), (inner, [(f.rule_id, f.message) for f in result.findings])


def test_severity_is_capped_at_high_and_the_file_is_not_called_loaded() -> None:
    result = scan(dict_of(("w", by(SYSTEM_P4))))
    assert {f.rule_id for f in result.findings} == {RULE}  # not reported as run at load time (LW-MODEL-001)
    assert max(f.severity for f in result.findings) == Severity.HIGH


def test_multistage_payload_is_followed() -> None:
    stage2 = dict_of(("stage2", by(SYSTEM_P4)))
    for value in (by(stage2), u(base64.b64encode(stage2).decode()), by(zlib.compress(stage2))):
        assert_stored(scan(dict_of(("meta", u("1.0")), ("stage1", value))), "system")


def test_stored_pickle_in_lists_tuples_and_call_arguments() -> None:
    in_list = b"\x80\x04](" + by(SYSTEM_P4) + b"e."
    in_tuple = b"\x80\x04" + by(SYSTEM_P4) + b"\x85."
    in_state = b"\x80\x04\x8c\x0bcollections\x8c\x0bOrderedDict\x93)R}" + u("k") + by(SYSTEM_P4) + b"sb."
    for data in (in_list, in_tuple, in_state):
        assert_stored(scan(data), "system")


def test_real_pickle_dumps_of_a_dict_with_a_stored_payload() -> None:
    # the shape modelaudit's generators write: pickle.dumps of plain data holding the payload
    data = pickle.dumps(
        {
            "model_name": "bert-base-uncased",
            "state_dict": {"embeddings.weight": "placeholder"},
            "training_metadata": SYSTEM_P4,
            "tokenizer_config": base64.b64encode(SYSTEM_P4).decode(),
        }
    )
    result = scan(data)
    assert_stored(result, "system")
    assert result.unverified is None


def test_in_a_pytorch_checkpoint_member() -> None:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("archive/data.pkl", dict_of(("hparams", u(base64.b64encode(SYSTEM_P4).decode()))))
        z.writestr("archive/version", "3\n")
    ctx = ScanContext("model.pt", Limits(), default_allow())
    scan_blob(bytes_blob("model.pt", Location("model.pt"), buf.getvalue(), 0), ctx)
    assert any(f.rule_id == RULE for f in ctx.findings), [(f.rule_id, f.message) for f in ctx.findings]


# --- what must stay clean -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        by(pickle.dumps({"a": [1, 2, 3], "b": "text"}, protocol=4)),  # a stored pickle of plain data
        u(base64.b64encode(pickle.dumps([1.0, 2.0], protocol=2)).decode()),
        by(pickle.dumps({"weights": b"\x00" * 64}, protocol=5)),
        u(
            "gAAAAABmZXJuZXQtdG9rZW4tbG9va2luZy1zdHJpbmc="
        ),  # a Fernet token: base64 starting "gA", not a pickle
        u("80" + "0f" * 30),  # hex that is not a pickle
        u("8004" + "ff" * 30),  # hex of a protocol header followed by garbage: malformed, so data
        u("Y2hlY2twb2ludF9wYXRoX2Zvcl90aGVfbW9kZWw="),  # base64 text starting "Y2"
        u("28 experiments were run on the cluster"),
        u("cosine similarity\nscores below 0.5\nare dropped"),  # prose opening like a GLOBAL, with lines
        u("Some text here is long enough to be decoded"),  # base64 with skipped spaces of a BININT: data
        u("classifier.weight\nclassifier.bias\n"),  # a protocol 0 GLOBAL's shape, not a pickle
        u(base64.b64encode(bytes(range(256)) * 3).decode()),  # random-looking base64: noise, no name called
        by(bytes(range(40, 256)) * 2),
        by(b"\x80\x04" + b"\xff" * 40),  # starts like a pickle, invalid opcode at once
        by(b"x\x9c" + b"\x00" * 40),  # not a valid zlib stream
        by(zlib.compress(b"just some compressed text, not a pickle" * 4)),
        by(gzip.compress(b"\x00\x01\x02" * 30)),
        by(zstandard.ZstdCompressor().compress(b"compressed text, not a pickle" * 4)),
        by(b"\x28\xb5\x2f\xfd" + b"not a zstd frame" * 3),
        by(zstandard.ZstdCompressor().compress(SYSTEM_P4)[:14]),  # truncated: no block to decode
    ],
)
def test_look_alikes_stay_clean(value: bytes) -> None:
    result = scan(dict_of(("name", u("model")), ("field", value)))
    assert result.findings == (), [(f.rule_id, f.message) for f in result.findings]
    assert result.unverified is None


def test_many_look_alike_strings_are_bounded() -> None:
    # 5,000 base64 strings that start like pickles but are data: analysis stays bounded and clean
    body = b"".join(
        u(f"k{i}") + u(base64.b64encode(b"\x80\x04" + bytes([i % 256]) * 20).decode()) for i in range(5000)
    )
    result = scan(b"\x80\x04}(" + body + b"u.")
    assert stored(result) == []


# --- bounds: fail closed -------------------------------------------------------------------------------------


def test_a_stored_pickle_too_large_to_decode_is_unverified() -> None:
    big = base64.b64encode(SYSTEM_P4 + b"\x00" * 70_000).decode()  # a string kept only as a prefix
    result = scan(dict_of(("payload", u(big))))
    assert result.unverified is not None and "stored pickle" in result.unverified


def test_a_stored_pickle_inflating_past_the_bound_is_unverified() -> None:
    bomb = zlib.compress(b"\x80\x04" + b"N" * (40 << 20), 9)
    result = scan(dict_of(("payload", by(bomb))))
    assert result.unverified is not None and "inflates to more than" in result.unverified


def test_depth_bound_on_stored_pickles_is_unverified() -> None:
    inner = SYSTEM_P4
    for _ in range(12):
        inner = dict_of(("next", by(inner)))
    result = analyze_pickle_bytes(inner, limits=Limits(max_depth=4))
    assert result.unverified is not None and "max_depth" in result.unverified


# --- round 5: encodings and pickle openings a loader-side decoder takes ------------------------------------


class _Call:
    def __init__(self, proto: int) -> None:
        self.proto = proto

    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.system, ("id",))


def _pickled(obj: object, proto: int) -> bytes:
    return pickle.dumps(obj, protocol=proto)


# pickle.dumps of a dict, a list or the call itself at protocols 0 and 1 opens with MARK, EMPTY_DICT or EMPTY_LIST
# and a line-based or memoised value before its GLOBAL; and a loader takes a protocol 2+ pickle without PROTO.
OPENINGS = {
    "p0 dict": _pickled({"a": _Call(0)}, 0),
    "p0 list": _pickled([1, _Call(0)], 0),
    "p1 dict": _pickled({"a": _Call(1)}, 1),
    "p1 list": _pickled([_Call(1)], 1),
    "p0 call": _pickled(_Call(0), 0),
    "no PROTO": SYSTEM_P4[2:],
    "PROTO 1 header": b"\x80\x01" + SYSTEM_P0,
    "MARKs before OBJ": b"(((cos\nsystem\nS'id'\no.",
}


@pytest.mark.parametrize("name", sorted(OPENINGS))
def test_pickles_of_any_opening_are_stored_pickles(name: str) -> None:
    inner = OPENINGS[name]
    for value in (
        by(inner),
        u(base64.b64encode(inner).decode()),
        u(inner.hex()),
        by(zlib.compress(inner)),
    ):
        assert_stored(scan(dict_of(("model", u("resnet")), ("p", value))), "system")
    if inner.isascii():  # protocol 0 text kept as a str (pickle.loads(value.encode()))
        assert_stored(scan(dict_of(("p", u(inner.decode())))), "system")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize(
    ("value", "how"),
    [
        # base64.b64decode skips what is not in its alphabet; a missing padding is easy to restore
        (u(" " + _b64(SYSTEM_P4)), "base64"),
        (u("\n\t" + _b64(SYSTEM_P4) + "\n"), "base64"),
        (u("!" + _b64(SYSTEM_P4)), "base64"),
        (u(" ".join(_b64(SYSTEM_P4))), "base64"),
        (u("g!" + _b64(SYSTEM_P4)[1:]), "base64"),
        (u(_b64(SYSTEM_P4).rstrip("=")), "base64"),
        (u(_b64(SYSTEM_P4 + b"..")), "base64"),  # the payload's STOP ends the reading
        (u("\n" + _b64(zlib.compress(SYSTEM_P4))), "base64, zlib"),
        # bytes.fromhex skips whitespace; bytes.hex(" ") writes it
        (u(SYSTEM_P4.hex(" ")), "hex"),
        (u(" " + SYSTEM_P4.hex()), "hex"),
        # the other base64 module encodings
        (u(base64.b32encode(SYSTEM_P4).decode()), "base32"),
        (u(base64.b85encode(SYSTEM_P4).decode()), "base85"),
        (u(base64.a85encode(SYSTEM_P4).decode()), "Ascii85"),
        (u(base64.a85encode(SYSTEM_P4, adobe=True).decode()), "Ascii85"),
        # text kept as bytes
        (by(base64.b64encode(SYSTEM_P4)), "base64 in bytes"),
        (by(SYSTEM_P4.hex().encode()), "hex in bytes"),
        # bzip2 and LZMA (xz and alone)
        (by(bz2.compress(SYSTEM_P4)), "bytes, bzip2"),
        (by(lzma.compress(SYSTEM_P4)), "bytes, lzma"),
        (by(lzma.compress(SYSTEM_P4, format=lzma.FORMAT_ALONE)), "bytes, lzma"),
        (u(_b64(bz2.compress(SYSTEM_P4))), "base64, bzip2"),
        (u(_b64(lzma.compress(SYSTEM_P4))), "base64, lzma"),
        # zstd (pandas writes .pkl.zst this way; zstandard.decompress takes it)
        (by(zstandard.ZstdCompressor().compress(SYSTEM_P4)), "bytes, zstd"),
        (by(zstandard.ZstdCompressor(level=19, write_content_size=False).compress(SYSTEM_P4)), "bytes, zstd"),
        (u(_b64(zstandard.ZstdCompressor().compress(SYSTEM_P4))), "base64, zstd"),
        (u(zstandard.ZstdCompressor().compress(SYSTEM_P4).hex()), "hex, zstd"),
    ],
)
def test_encodings_a_decoder_takes(value: bytes, how: str) -> None:
    result = scan(dict_of(("model", u("resnet")), ("payload", value)))
    assert_stored(result, "system")
    assert any(f.evidence.get("encoding") == how for f in stored(result)), [
        f.evidence for f in stored(result)
    ]


def test_base64_in_large_bytes_is_unverified() -> None:
    # bytes over 64 KiB are kept only as a prefix unless they open like a pickle; base64 text in them did not
    big = base64.b64encode(SYSTEM_P4 + b"\x00" * 70_000)
    result = scan(dict_of(("payload", by(big))))
    assert result.unverified is not None and "stored pickle" in result.unverified


def test_padding_with_look_alikes_does_not_hide_a_payload() -> None:
    # the candidate bound used to end the search silently: 256 look-alikes first, then the payload
    look_alike = u(_b64(b"\x80\x04" + b"N" * 20))
    pad = b"".join(u(f"k{i}") + look_alike for i in range(300))
    result = scan(b"\x80\x04}(" + pad + u("payload") + u(_b64(SYSTEM_P4)) + b"u.")
    assert_stored(result, "system")
    # past the (now larger) bound the target is unverified, never clean
    pad = b"".join(u(f"k{i}") + look_alike for i in range(10_050))
    result = scan(b"\x80\x04}(" + pad + u("payload") + u(_b64(SYSTEM_P4)) + b"u.")
    assert result.unverified is not None and "stored pickles" in result.unverified


def test_calls_before_a_malformed_tail_are_reported() -> None:
    for tail in (b"\xff\xff", b"(\xff", b"", b"0" * 3):
        inner = SYSTEM_P4[:-1] + tail
        assert_stored(scan(dict_of(("p", by(inner)))), "system")
        assert_stored(scan(dict_of(("p", u(_b64(inner))))), "system")


@pytest.mark.parametrize("compress", [bz2.compress, lzma.compress, zstandard.ZstdCompressor().compress])
def test_bzip2_lzma_and_zstd_inflating_past_the_bound_are_unverified(compress: object) -> None:
    assert callable(compress)
    bomb = compress(b"\x80\x04" + b"N" * (40 << 20))
    result = scan(dict_of(("payload", by(bomb))))
    assert result.unverified is not None and "inflates to more than" in result.unverified


# --- constants too large to keep: judged by their head ------------------------------------------------------


@pytest.mark.parametrize("first", [640, 896, 1152, 1408])  # 80 02 .. 80 05 in little-endian
@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_array_data_that_starts_with_a_pickle_header_is_data(first: int, protocol: int) -> None:
    # numpy keeps an array's raw data as a constant: protocol 2 as latin-1 text (torch.save's protocol), later
    # ones as bytes. An image width of 640 at the front spells a protocol-2 header; the next byte breaks at once
    np = pytest.importorskip("numpy")
    for array in (
        np.array([first, 480] * 40_000, dtype=np.int64),
        np.array([first, 12, 33] * 40_000, dtype=np.uint16),
        np.array([first] * 40_000, dtype=np.int32),
    ):
        result = scan(pickle.dumps({"sizes": array}, protocol=protocol))
        assert result.findings == (), [(f.rule_id, f.message) for f in result.findings]
        assert result.unverified is None, result.unverified


def test_torch_save_of_numpy_arrays_starting_like_a_pickle_is_clean() -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    import io

    buf = io.BytesIO()
    torch.save({"sizes": np.array([640, 480] * 50_000), "ids": np.array([896, 1] * 50_000, np.uint16)}, buf)
    ctx = ScanContext("m.pt", Limits(), default_allow())
    scan_blob(bytes_blob("m.pt", Location("m.pt"), buf.getvalue(), 0), ctx)
    assert not ctx.findings and not ctx.unverified, (ctx.findings, ctx.unverified)


LARGE_HEADS = {
    # a pickle whose first 64 bytes are well-formed opcodes: what follows cannot be seen
    "list-of-strings": pickle.dumps(["a" * 20] * 40_000 + [1], protocol=4),
    "dict-p2": pickle.dumps({f"key{i}": i for i in range(9000)}, protocol=2),
    # a call in the head, then bytes that break the stream: pickle.loads ran the call before failing
    "call-then-garbage": SYSTEM_P4[:-1] + b"\xff" * 70_000,
    "global-then-garbage": b"\x80\x02cos\nsystem\n" + b"\x00" * 70_000,
}


@pytest.mark.parametrize("name", sorted(LARGE_HEADS))
@pytest.mark.parametrize("encoding", ["base64", "latin-1", "hex"])
def test_a_large_constant_whose_head_parses_as_a_pickle_stays_unverified(name: str, encoding: str) -> None:
    data = LARGE_HEADS[name]
    text = (
        base64.b64encode(data).decode()
        if encoding == "base64"
        else data.hex()
        if encoding == "hex"
        else data.decode("latin-1")
    )
    if not text.startswith(("gA", "80", "\x80")):
        pytest.skip("not a stored-pickle head")
    result = scan(dict_of(("payload", u(text))))
    assert result.unverified is not None and "stored pickle" in result.unverified, result
