"""NumPy ``.npy``: parse the header as numpy does; when its ``descr`` can make an object dtype (judged without
numpy, from numpy's own grammar), the rest of the file is a pickle, which is analysed.
"""

from __future__ import annotations

import ast
import math
import re
import struct
from enum import IntEnum
from typing import Any, Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext, open_slice
from loopwarden.checks.models.dispatch import seekable_blob

__all__ = ["scan_npy"]

_MAX_HEADER: Final = 1 << 20
# Patterns are kept as text: re compiles and caches each on first use, so a scan that never needs one does not
# pay for compiling it when the module loads.
_SIMPLE: Final = r"^[<>|=]?([biufcmMSUV])(\d+)"
_CANONICAL: Final = (
    r"\{'descr': '([<>|=]?[biufc]\d{1,2})', 'fortran_order': (True|False), "
    r"'shape': \((|_N,|_N(?:, _N)+)\), \} *\n?\Z".replace("_N", r"(?:0|[1-9]\d{0,17})")
)
"""numpy's own header for a plain numeric dtype: ``{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }``
padded with spaces and a newline. Object and structured dtypes never match it."""


class _Dtype(IntEnum):
    """What a header's ``descr`` makes of the data, ordered so that a structure takes its fields' maximum."""

    PLAIN = 0  # raw bytes: numpy reads them with frombuffer/fromfile (or rejects the descr)
    UNKNOWN = 1  # a spelling this module cannot judge: the data is analysed as a pickle (fail closed)
    OBJECT = 2  # dtype.hasobject: np.load(allow_pickle=True) unpickles the data


_MAX_DESCR_DEPTH: Final = 32
_ENDIAN: Final = "<>|="
_PLAIN_CHARS: Final = frozenset("?bBhHiIlLqQpPnNefdgFDGSUVacMm")
_PLAIN_SIZED: Final = r"(?:b1|[iu][1248]|f(?:2|4|8|10|12|16)|c(?:8|16|20|24|32)|[SUVa][0-9]{1,10})\Z"
"""Kind and item size (``PyArray_TypestrConvert``; 10/12/20/24 are long double on other platforms)."""
_DATETIME: Final = r"(?:[Mm]8|datetime64|timedelta64)(?:\[[0-9]*[A-Za-z]+(?:/[0-9]+)?\])?\Z"
_PLAIN_NAMES: Final = frozenset(
    (  # noqa: SIM905 - a word list reads better than fifty quoted names
        "a bool bool_ byte bytes bytes_ cdouble clongdouble complex complex128 complex256 complex64 csingle "
        "datetime64 double float float128 float16 float32 float64 half int int16 int32 int64 int8 int_ intc "
        "intp long longdouble longlong short single str str_ timedelta64 ubyte uint uint16 uint32 uint64 uint8 "
        "uintc uintp ulong ulonglong unicode ushort void"
    ).split()
)
"""``numpy.sctypeDict`` names whose dtype holds no object (none of them ever did in any numpy release)."""
_OBJECT_STR: Final = r"(?:O(?:\s*\+?0*[48])?|object_?|[Oo]bject0|T|\x11)\Z"
"""Spellings numpy reads as an object dtype: the typecode (with the item size strtol accepts), the type names
(``object0``/``Object0`` of numpy 1.x), StringDType ``T`` (its data is a pickle too) and type number 17."""
# numpy._core._internal._commastring, item by item
_FORMAT_RE: Final = (
    r"(?P<order1>[<>|=]?)(?P<repeats> *[(]?[ ,0-9]*[)]? *)(?P<order2>[<>|=]?)"
    r"(?P<dtype>[A-Za-z0-9.?]*(?:\[[a-zA-Z0-9,.]+\])?)"
)
_SEP_RE: Final = r"\s*,\s*"
_SPACE_RE: Final = r"\s+$"


def _is_commastring(s: str) -> bool:
    """descriptor.c ``_check_for_commastring``: a leading digit (after a byte order), ``()``, or a comma outside
    square brackets."""
    digits = "0123456789"
    if s[0] in digits or (len(s) > 1 and s[0] in _ENDIAN and s[1] in digits):
        return True
    if s.startswith("()") or (len(s) > 3 and s[0] in _ENDIAN and s[1:3] == "()"):
        return True
    depth = 0
    for c in s:
        if c == "," and depth == 0:
            return True
        depth += (c == "[") - (c == "]")
    return False


def _classify_commastring(s: str, depth: int) -> _Dtype:
    """Each item of ``'i4,(2,3)f8,O'`` is parsed as numpy does; its type part is judged as a string of its own."""
    worst = _Dtype.PLAIN
    pos = 0
    while pos < len(s):
        mo = re.compile(_FORMAT_RE).match(s, pos)
        if mo is None:  # pragma: no cover - every group is optional
            return _Dtype.UNKNOWN
        pos = mo.end()
        if pos < len(s):
            if re.compile(_SPACE_RE).match(s, pos):
                pos = len(s)
            else:
                sep = re.compile(_SEP_RE).match(s, pos)
                if sep is None:
                    return max(worst, _Dtype.UNKNOWN)
                pos = sep.end()
        worst = max(worst, _classify_str(mo.group("dtype"), depth + 1))
        if worst is _Dtype.OBJECT:
            break
    return worst


def _classify_str(s: str, depth: int) -> _Dtype:
    """descriptor.c ``_convert_from_str``: a comma string, else one byte-order character and a typecode, a kind
    and size, a datetime type or a ``sctypeDict`` name. Only spellings listed here are plain."""
    if not s or depth > _MAX_DESCR_DEPTH:
        return _Dtype.UNKNOWN
    if _is_commastring(s):
        return _classify_commastring(s, depth)
    t = s[1:] if s[0] in _ENDIAN else s
    if (
        (len(t) == 1 and t in _PLAIN_CHARS)
        or re.match(_PLAIN_SIZED, t)
        or re.match(_DATETIME, t)
        or t in _PLAIN_NAMES
    ):
        return _Dtype.PLAIN
    return _Dtype.OBJECT if re.match(_OBJECT_STR, t) else _Dtype.UNKNOWN


def _is_shape(v: Any) -> bool:
    return type(v) is int or (type(v) is tuple and all(type(d) is int for d in v))


def _is_field_name(v: Any) -> bool:
    return isinstance(v, str) or (type(v) is tuple and len(v) == 2 and all(isinstance(n, str) for n in v))


def _classify_descr(descr: Any, depth: int = 0) -> _Dtype:
    """Whether ``numpy.lib.format.descr_to_dtype(descr).hasobject`` (numpy >= 1.17) or
    ``numpy.dtype(descr).hasobject`` (older) can be true, decided without numpy.

    Plain only for the forms numpy writes (``dtype.str``, ``(base, shape)``, a list of ``(name, format[,
    shape])`` fields, nested) built from spellings known to hold no object; field names and shapes never
    matter. Anything else numpy might still accept (a dict, a set, a string field, a 3-tuple, a view
    ``(base, dtype)``, an unknown name) is UNKNOWN, so its data is analysed as a pickle.
    """
    if depth > _MAX_DESCR_DEPTH:
        return _Dtype.UNKNOWN
    if isinstance(descr, str):
        return _classify_str(descr, depth)
    if isinstance(descr, bytes):  # numpy < 1.17 passed bytes to numpy.dtype, which decodes them
        try:
            return _classify_str(descr.decode("ascii"), depth)
        except UnicodeDecodeError:
            return _Dtype.UNKNOWN
    if isinstance(descr, tuple):  # (base, shape): a sub-array
        if len(descr) == 2 and _is_shape(descr[1]):
            return _classify_descr(descr[0], depth + 1)
        return _Dtype.UNKNOWN
    if isinstance(descr, list):  # a structured dtype: (name or (title, name), format[, shape]) per field
        worst = _Dtype.PLAIN
        for field in descr:
            if isinstance(field, tuple) and len(field) in (2, 3):
                kind = _classify_descr(field[1], depth + 1)
                if not _is_field_name(field[0]) or (len(field) == 3 and not _is_shape(field[2])):
                    kind = max(kind, _Dtype.UNKNOWN)
            else:
                kind = _Dtype.UNKNOWN
            worst = max(worst, kind)
            if worst is _Dtype.OBJECT:
                break
        return worst
    return _Dtype.UNKNOWN


def _itemsize(descr: Any) -> int | None:
    if isinstance(descr, str):
        m = re.match(_SIMPLE, descr)
        if m:
            n = int(m.group(2))
            return n * 4 if m.group(1) == "U" else n
    return None


def _canonical_header(text: str) -> dict[str, Any] | None:
    """The header numpy itself writes (simple dtype, keys in its order), parsed without ``ast``; None for
    any other form, which then goes through the full literal parser."""
    m = re.match(_CANONICAL, text)
    if m is None:
        return None
    shape = tuple(int(d) for d in m.group(3).split(",") if d)
    return {"descr": m.group(1), "fortran_order": m.group(2) == "True", "shape": shape}


def _literal_header(text: str, major: int) -> Any:
    """``numpy.lib.format._read_array_header``: the header as written; only if that is no literal, and only for
    versions 1 and 2 (Python 2 writers), once more without the long suffixes (``3L``) of integers."""
    try:
        return ast.literal_eval(text)
    except SyntaxError:
        if major > 2:
            raise
    return ast.literal_eval(re.sub(r"(\d+)L\b", r"\1", text))


def scan_npy(blob: Blob, ctx: ScanContext) -> None:
    """Judge the header; analyse the data only when its dtype can hold objects. The header is read from the
    stream as it comes: a compressed ``.npz`` member with a plain dtype is inflated only as far as its header
    (numpy reads the rest as numbers), and the archive judges its declared sizes (see dispatch)."""
    with blob.open() as f:
        pre = f.read(10)
        if len(pre) < 10:
            ctx.fail(blob.location, "npy header truncated")
            return
        major = pre[6]
        if major == 1:
            (hlen,) = struct.unpack_from("<H", pre, 8)
            start = 10
        elif major in (2, 3):
            pre += f.read(2)
            (hlen,) = struct.unpack_from("<I", pre, 8)
            start = 12
        else:
            ctx.fail(blob.location, f"unknown npy format version {major}")
            return
        if hlen > _MAX_HEADER:
            ctx.fail(blob.location, f"npy header of {hlen} bytes exceeds the bound")
            return
        raw = f.read(hlen)
    if len(raw) < hlen:
        ctx.fail(blob.location, "npy header truncated")
        return
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        header = _canonical_header(text)
        if header is None:
            header = _literal_header(text, major)
    except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        ctx.fail(blob.location, "npy header is not a Python literal")
        return
    if not isinstance(header, dict) or not {"descr", "shape", "fortran_order"} <= set(header):
        ctx.fail(blob.location, "npy header lacks descr/shape/fortran_order")
        return
    descr, shape = header["descr"], header["shape"]
    data_start = start + hlen
    kind = _classify_descr(descr)
    if kind is not _Dtype.PLAIN:
        blob = seekable_blob(blob, ctx)
        size = blob.size or 0
        shown = repr(descr)[:100]
        if kind is _Dtype.OBJECT:
            message, reason = "object array: the data is a pickle", f"pickle in object array {shown}"
        else:
            message = "dtype not understood without numpy: the data is analysed as a pickle"
            reason = f"npy dtype {shown} not understood without numpy; its data as a pickle"
        ctx.add(rules.NumpyObjectArray, message, blob.location, descr=shown)
        from loopwarden.checks.models._pickle import analyse

        with blob.open() as f:
            res = analyse(open_slice(f, data_start, size - data_start), ctx, blob.location)
        ctx.findings.extend(res.findings)
        if res.unverified:
            ctx.fail(blob.location, f"{reason}: {res.unverified}")
        return
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        ctx.fail(blob.location, "npy shape is not a tuple of non-negative integers")
        return
    item = _itemsize(descr)
    if blob.size is None:
        return  # a streamed archive member: its data is never read, and its sizes are the archive's to judge
    size = blob.size
    if item is not None and size - data_start < math.prod(shape) * item:
        ctx.fail(blob.location, f"npy data truncated ({size - data_start} bytes for shape {shape})")
