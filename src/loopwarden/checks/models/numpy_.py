"""NumPy ``.npy``: parse the header; an object dtype means the rest of the file is a pickle, which is
analysed.
"""

from __future__ import annotations

import ast
import math
import re
import struct
from typing import Any, Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext, open_slice
from loopwarden.checks.models.dispatch import seekable_blob

__all__ = ["scan_npy"]

_MAX_HEADER: Final = 1 << 20
_SIMPLE: Final = re.compile(r"^[<>|=]?([biufcmMSUV])(\d+)")
_CANONICAL: Final = re.compile(
    r"\{'descr': '([<>|=]?[biufc]\d{1,2})', 'fortran_order': (True|False), "
    r"'shape': \((|_N,|_N(?:, _N)+)\), \} *\n?\Z".replace("_N", r"(?:0|[1-9]\d{0,17})")
)
"""numpy's own header for a plain numeric dtype: ``{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }``
padded with spaces and a newline. Object and structured dtypes never match it."""


def _has_object(descr: Any) -> bool:
    if isinstance(descr, str):
        return "O" in descr.lstrip("<>|=")[:1] or descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list | tuple):
        return any(_has_object(d) for d in descr)
    return True  # anything else is not a dtype numpy writes: treat as able to carry objects


def _itemsize(descr: Any) -> int | None:
    if isinstance(descr, str):
        m = _SIMPLE.match(descr)
        if m:
            n = int(m.group(2))
            return n * 4 if m.group(1) == "U" else n
    return None


def _canonical_header(text: str) -> dict[str, Any] | None:
    """The header numpy itself writes (simple dtype, keys in its order), parsed without ``ast``; None for
    any other form, which then goes through the full literal parser."""
    m = _CANONICAL.match(text)
    if m is None:
        return None
    shape = tuple(int(d) for d in m.group(3).split(",") if d)
    return {"descr": m.group(1), "fortran_order": m.group(2) == "True", "shape": shape}


def scan_npy(blob: Blob, ctx: ScanContext) -> None:
    blob = seekable_blob(blob, ctx)
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
        f.seek(start)
        raw = f.read(hlen)
    if len(raw) < hlen:
        ctx.fail(blob.location, "npy header truncated")
        return
    try:
        text = raw.decode("utf-8" if major == 3 else "latin1")
        header = _canonical_header(text)
        if header is None:
            # Python 2 writers put long literals ("3L") in the shape; numpy's reader accepts them too
            header = ast.literal_eval(re.sub(r"(\d+)L\b", r"\1", text))
    except (ValueError, SyntaxError, MemoryError, RecursionError, UnicodeDecodeError):
        ctx.fail(blob.location, "npy header is not a Python literal")
        return
    if not isinstance(header, dict) or not {"descr", "shape", "fortran_order"} <= set(header):
        ctx.fail(blob.location, "npy header lacks descr/shape/fortran_order")
        return
    descr, shape = header["descr"], header["shape"]
    data_start = start + hlen
    size = blob.size or 0
    if _has_object(descr):
        ctx.add(
            rules.NumpyObjectArray,
            "object array: the data is a pickle",
            blob.location,
            descr=str(descr)[:100],
        )
        from loopwarden.checks.models._pickle import analyse

        with blob.open() as f:
            res = analyse(open_slice(f, data_start, size - data_start), ctx, blob.location)
        ctx.findings.extend(res.findings)
        if res.unverified:
            ctx.fail(blob.location, f"pickle in object array: {res.unverified}")
        return
    if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape):
        ctx.fail(blob.location, "npy shape is not a tuple of non-negative integers")
        return
    item = _itemsize(descr)
    if item is not None and size - data_start < math.prod(shape) * item:
        ctx.fail(blob.location, f"npy data truncated ({size - data_start} bytes for shape {shape})")
