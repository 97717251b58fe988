"""The ``descr`` of an ``.npy`` header decides whether np.load(allow_pickle=True) unpickles the data.

Every spelling of an object dtype numpy accepts must send the data to the pickle analysis (else a payload passes
as clean); the dtypes of ordinary arrays, structured or not, must not (else their raw bytes are parsed as a pickle
and the file is unverified). numpy is used here only to write real files and as the reference.
"""

from __future__ import annotations

import ast
import io
import struct
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.numpy_ import _classify_descr, _Dtype
from loopwarden.checks.models.scanner import default_allow
from loopwarden.domain import Location, Severity

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "corpus"))
import _container_payloads as cp

EVIL = cp.evil_pickle()


def scan_bytes(data: bytes, name: str) -> ScanContext:
    ctx = ScanContext("f", Limits(), default_allow())
    try:
        scan_blob(bytes_blob(name, Location("f"), data, 0), ctx)
    finally:
        for c in ctx.closers:  # temporary files, as the scanner closes them when a target is done
            c.close()
    return ctx


def npy(descr: str, body: bytes, *, version: int = 1, shape: str = "(1,)") -> bytes:
    """An .npy with a hand-written header; ``descr`` is the literal's source text."""
    text = "{'descr': " + descr + ", 'fortran_order': False, 'shape': " + shape + ", }"
    header = text.encode("utf-8" if version == 3 else "latin1")
    pre = 10 if version == 1 else 12
    header += b" " * (63 - (pre + len(header)) % 64) + b"\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header + body


def in_npz(member: bytes) -> bytes:
    return cp.zip_of({"arr_0.npy": member, "b.npy": npy("'<f8'", b"\x00" * 8)})


def assert_payload_found(ctx: ScanContext) -> None:
    assert "LW-MODEL-041" in {f.rule_id for f in ctx.findings}, ctx.findings
    assert any(f.severity is Severity.CRITICAL and "system" in f.message for f in ctx.findings), ctx.findings


def assert_clean(ctx: ScanContext) -> None:
    assert not ctx.findings, ctx.findings
    assert not ctx.unverified, ctx.unverified


# --------------------------------------------------------------------------- every spelling of an object dtype

OBJECT_DESCRS = [
    "'|O'",
    "'O'",
    "'<O'",
    "'>O'",
    "'=O'",
    "'O4'",
    "'O8'",
    "'|O8'",
    "'O 8'",  # strtol skips the blank
    "'O+8'",
    "'object'",
    "'object_'",
    "'=object'",
    "'object0'",  # numpy 1.x names
    "'Object0'",
    "'T'",  # StringDType: hasobject, its data is unpickled too
    "'\\x11'",  # type number 17 as a one-character typecode
    "b'O'",  # numpy < 1.17 passed bytes to numpy.dtype
    "b'object'",
    "'(1,)O'",
    "'2O'",
    "'=2O'",
    "'()O'",
    "'(2,3)O'",
    "'O,'",
    "'i4,O'",
    "'i4, object'",
    "'f8,(2)3O'",
    "'M8[ns],O8'",
    "('O', (2,))",
    "('O', 0)",
    "('object', (1, 1))",
    "(('O', (2,)), (3,))",
    "[('a', 'object')]",
    "[('a', 'O')]",
    "[('a', '<f8'), ('b', '|O')]",
    "[('a', '<f8', (2,)), ('b', 'O', (2,))]",
    "[('a', [('b', [('c', 'O')])])]",
    "[(('title', 'a'), 'O')]",
    "[('', '|V4'), ('a', 'O')]",
    "[('a', ('O', (2,)))]",
    "[('a', 'i4,O')]",
    "[('a', 'T')]",
]

ODD_DESCRS = [
    "{'names': ['a'], 'formats': ['O']}",  # numpy.dtype of numpy < 1.17 accepts the dict form
    "{'aO': 1}",  # descr_to_dtype iterates the keys: field 'a' of format 'O'
    "['aO']",  # a two-character string is a (name, format) pair to descr_to_dtype
    "[['a', 'O']]",
    "{('a', 'O')}",
    "('O', (1,), 3)",  # descr_to_dtype reads only [0] and [1]
    "[('a', 'f8', 'O')]",
    "('f8', 'O')",
    "[(1, 'O')]",
    "'Object'",
    "'O16'",
    "'f3'",
    "None",
    "3",
]


@pytest.mark.parametrize("descr", OBJECT_DESCRS)
@pytest.mark.parametrize("where", ["npy", "npz"])
def test_object_spelling_is_analysed_as_pickle(descr: str, where: str) -> None:
    data = npy(descr, EVIL)
    ctx = scan_bytes(data, "a.npy") if where == "npy" else scan_bytes(in_npz(data), "a.npz")
    assert_payload_found(ctx)
    assert "object array" in next(f.message for f in ctx.findings if f.rule_id == "LW-MODEL-041")


@pytest.mark.parametrize("descr", OBJECT_DESCRS[:: len(OBJECT_DESCRS) // 8])
@pytest.mark.parametrize("version", [2, 3])
def test_object_spelling_under_header_versions_2_and_3(descr: str, version: int) -> None:
    assert_payload_found(scan_bytes(npy(descr, EVIL, version=version), "a.npy"))


@pytest.mark.parametrize("descr", ODD_DESCRS)
@pytest.mark.parametrize("where", ["npy", "npz"])
def test_odd_descr_fails_closed(descr: str, where: str) -> None:
    """A descr outside the forms numpy writes is analysed as a pickle: a payload is found, raw bytes are
    unverified, never clean."""
    evil, raw = npy(descr, EVIL), npy(descr, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    if where == "npz":
        evil, raw = in_npz(evil), in_npz(raw)
    assert_payload_found(scan_bytes(evil, f"a.{where}"))
    ctx = scan_bytes(raw, f"a.{where}")
    assert ctx.unverified, ctx.findings
    assert any("pickle in object array" in r or "not understood" in r for r in ctx.unverified), ctx.unverified


def test_python2_long_suffixes_are_read_as_numpy_reads_them() -> None:
    """numpy strips the ``L`` of Python 2 integers only when the header is no literal, and only for versions 1
    and 2."""
    body = b"\x00" * 24
    assert_clean(scan_bytes(npy("'<f8'", body, shape="(3L,)"), "a.npy"))
    assert_clean(scan_bytes(npy("[('a1L', '<f8')]", body, shape="(3L,)"), "a.npy"))
    assert_payload_found(scan_bytes(npy("'|O'", EVIL, shape="(1L,)"), "a.npy"))
    assert_payload_found(scan_bytes(npy("[('x1L', 'O')]", EVIL, shape="(1L,)", version=2), "a.npy"))
    assert scan_bytes(npy("'<f8'", body, shape="(3L,)", version=3), "a.npy").unverified
    # a header that is a literal as written is not filtered: '2L' is two uint64 (it would be '2' if filtered)
    assert_clean(scan_bytes(npy("'2L'", b"\x00" * 16), "a.npy"))


# ----------------------------------------------------------------------------------- real benign arrays: clean


def _point(np: Any) -> Any:
    return np.dtype([("x", "<f4"), ("y", "<f4")])


BENIGN: dict[str, Callable[[Any], Any]] = {
    "float64": lambda np: np.arange(6.0).reshape(2, 3),
    "float32": lambda np: np.ones(4, np.float32),
    "float16": lambda np: np.ones(4, np.float16),
    "longdouble": lambda np: np.ones(2, np.longdouble),
    "int8": lambda np: np.arange(5, dtype=np.int8),
    "uint64": lambda np: np.arange(5, dtype=np.uint64),
    "bool": lambda np: np.array([True, False]),
    "complex64": lambda np: np.ones(3, np.complex64),
    "complex128": lambda np: np.ones(3, np.complex128),
    "big_endian": lambda np: np.ones(3, ">f8"),
    "big_endian_int": lambda np: np.arange(3, dtype=">i4"),
    "fortran": lambda np: np.asfortranarray(np.ones((3, 2))),
    "scalar": lambda np: np.array(1.5),
    "empty": lambda np: np.zeros((0, 4)),
    "datetime": lambda np: np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[D]"),
    "datetime_ns": lambda np: np.array([0, 1], dtype="datetime64[ns]"),
    "timedelta": lambda np: np.array([1, 2], dtype="timedelta64[s]"),
    "timedelta_multiple": lambda np: np.array([1, 2], dtype="timedelta64[10us]"),
    "unicode": lambda np: np.array(["Open", "Object"]),
    "bytes": lambda np: np.array([b"O", b"object"]),
    "void": lambda np: np.zeros(2, dtype="V8"),
    "ohlc": lambda np: np.zeros(
        3, dtype=[("Open", "<f8"), ("High", "<f8"), ("Low", "<f8"), ("Close", "<f8")]
    ),
    "fields_named_like_types": lambda np: np.zeros(2, dtype=[("O", "<i4"), ("object", "<f8"), ("T", "u1")]),
    "subarray_field": lambda np: np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
    "subarray_2d_field": lambda np: np.zeros(2, dtype=[("m", ">f4", (3, 4)), ("s", "S3", (2,))]),
    "nested": lambda np: np.zeros(
        2, dtype=[("p", _point(np)), ("q", [("r", _point(np), (2,)), ("t", "M8[us]")])]
    ),
    "titles": lambda np: np.zeros(2, dtype=[(("Opening price", "open"), "<f8"), (("Volume", "vol"), "<u8")]),
    "padded": lambda np: np.zeros(
        2, dtype={"names": ["a", "b"], "formats": ["u1", "<f8"], "offsets": [0, 8], "itemsize": 24}
    ),
    "aligned": lambda np: np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<f8"), ("c", "u2")], align=True)),
    "subarray_dtype": lambda np: np.zeros(2, dtype=np.dtype(("<i2", (2, 2)))),
    "record_of_strings": lambda np: np.zeros(2, dtype=[("name", "U10"), ("raw", "S4"), ("flag", "?")]),
}


def _saved(arr: Any, version: tuple[int, int] | None = None) -> bytes:
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if version is None:
            np.save(buf, arr, allow_pickle=False)
        else:
            np.lib.format.write_array(buf, arr, version=version, allow_pickle=False)
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_npy_is_clean(name: str) -> None:
    arr = BENIGN[name](pytest.importorskip("numpy"))
    assert_clean(scan_bytes(_saved(arr), f"{name}.npy"))
    assert_clean(scan_bytes(_saved(arr, (2, 0)), f"{name}.npy"))


@pytest.mark.parametrize("compressed", [False, True])
def test_benign_npz_is_clean(compressed: bool) -> None:
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **{n: make(np) for n, make in BENIGN.items()})
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        assert len(z.namelist()) == len(BENIGN)
    assert_clean(scan_bytes(buf.getvalue(), "arrays.npz"))


def test_benign_utf8_field_names_in_version_3_are_clean() -> None:
    np = pytest.importorskip("numpy")
    arr = np.zeros(2, dtype=[("Δprice", "<f8"), ("объём", "<i4", (2,))])  # not latin-1: version 3
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.save(buf, arr)
    assert buf.getvalue()[6] == 3
    assert_clean(scan_bytes(buf.getvalue(), "u.npy"))


def test_real_object_array_is_analysed_and_clean_when_benign() -> None:
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, "x", None], dtype=object), allow_pickle=True)
    ctx = scan_bytes(buf.getvalue(), "o.npy")
    assert not ctx.unverified, ctx.unverified
    assert [f.severity for f in ctx.findings] == [Severity.INFO]


# -------------------------------------------------------------------------- the evaluator against numpy itself

_TOKENS = [
    *"OTobjectiufcSUVaMm?<>|=,()[]012348+",
    " ",
    "\x11",
    "object",
    "object_",
    "O8",
    "i4",
    "f8",
    "float64",
    "str",
    "ns",
    "[D]",
    "M8",
    "(2,)",
]
_SPELLINGS = st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=6).map("".join)
_NAMES = st.sampled_from(["a", "b", "O", "Open", "object", ""]) | st.tuples(
    st.sampled_from(["t", "O"]), st.sampled_from(["c", "d"])
)
_SHAPES = st.sampled_from([(), (1,), (2,), (2, 3), 1, 2, 0])
_DESCRS = st.recursive(
    _SPELLINGS | st.sampled_from(["O", "<f8", "|b1", "S3", "V4", "M8[ns]"]),
    lambda inner: st.one_of(
        st.tuples(inner, _SHAPES),
        st.tuples(inner, inner),
        st.lists(st.tuples(_NAMES, inner) | st.tuples(_NAMES, inner, _SHAPES), max_size=3),
        st.lists(inner, max_size=2),
        st.dictionaries(st.sampled_from(["names", "formats", "aO", "ab"]), inner, max_size=2),
    ),
    max_leaves=6,
)


def _numpy_has_object(descr: Any) -> bool:
    """Whether either numpy reader could unpickle the data: descr_to_dtype (numpy >= 1.17) or numpy.dtype."""
    np = pytest.importorskip("numpy")
    found = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for build in (np.lib.format.descr_to_dtype, np.dtype):
            try:
                found = found or bool(build(descr).hasobject)
            except Exception:  # numpy rejects most random descrs, each in its own way
                continue
    return found


@settings(max_examples=1500, deadline=None)
@given(_DESCRS)
def test_never_plain_when_numpy_would_unpickle(descr: Any) -> None:
    if _numpy_has_object(descr):
        assert _classify_descr(descr) is not _Dtype.PLAIN, descr


_BASES = st.sampled_from(
    [
        "?",
        "i1",
        "<i2",
        ">i4",
        "<i8",
        "u1",
        ">u2",
        "<u4",
        ">u8",
        "<f2",
        ">f4",
        "<f8",
        "g",
        "<c8",
        ">c16",
        "S5",
        "U3",
        "V4",
        "<M8[ns]",
        ">m8[s]",
        "M8[D]",
        "M8",
        "O",
        "T",
    ]
)


@st.composite
def _real_dtypes(draw: st.DrawFn) -> Any:
    np = pytest.importorskip("numpy")

    def build(depth: int) -> Any:
        choice = draw(st.integers(0, 2 if depth < 3 else 0))
        if choice == 0:
            return np.dtype(draw(_BASES))
        if choice == 1:
            base = build(depth + 1)
            if base.kind == "T":
                return base
            return np.dtype((base, draw(st.sampled_from([(2,), (2, 3), (1,)]))))
        names = draw(
            st.lists(st.sampled_from(["a", "Open", "O", "object", "T", "b1"]), min_size=1, unique=True)
        )
        fields = [(n, build(depth + 1)) for n in names]
        return np.dtype([(n, d) for n, d in fields if d.kind != "T"] or [("x", "f8")])

    return build(0)


@settings(max_examples=500, deadline=None)
@given(_real_dtypes())
def test_agrees_with_numpy_on_dtypes_numpy_writes(dt: Any) -> None:
    """The descr np.save writes, read back from its header text, is plain exactly when the dtype has no object."""
    np = pytest.importorskip("numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dt = np.empty(0, dt).dtype  # what an array holds: a top-level sub-array becomes dimensions
        descr = ast.literal_eval(repr(np.lib.format.dtype_to_descr(dt)))
    assert _classify_descr(descr) is (_Dtype.OBJECT if dt.hasobject else _Dtype.PLAIN), (dt, descr)
