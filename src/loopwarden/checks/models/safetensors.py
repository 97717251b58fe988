"""safetensors: bounded header parse and every consistency rule of the format (no tensor data is read)."""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any, Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.checks.models.dispatch import seekable_blob
from loopwarden.domain import Location

__all__ = ["DTYPE_BITS", "scan_safetensors"]

MAX_HEADER: Final = 100 * 1024 * 1024
MAX_PARSED_HEADER: Final = 16 * 1024 * 1024
"""Headers are parsed in memory; beyond this (real ones are a few MB) memory would exceed its budget."""
DTYPE_BITS: Final[dict[str, int]] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "F64": 64,
    "I64": 64,
    "U64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "C64": 64,
}


class _DupError(ValueError):
    pass


def _pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in items:
        if k in out:
            raise _DupError(k)
        out[k] = v
    return out


def _json_somehow(raw: bytes) -> bool:
    """Whether a header that is not UTF-8 JSON is JSON to a reader that decodes leniently: invalid bytes replaced
    (a browser's TextDecoder) or dropped (``errors="ignore"``), or ``json.loads`` handed the bytes themselves,
    which detects UTF-16 and UTF-32 (and a UTF-8 BOM) by the NUL pattern of the first bytes, as Python readers that
    parse the header with ``json.loads(f.read(n))`` do. Such a header is read differently by different parsers
    (LW-MODEL-037); the Rust reader rejects it, so it is no misreading."""
    for attempt in (raw, raw.decode("utf-8", "replace"), raw.decode("utf-8", "ignore")):
        try:
            json.loads(attempt)
        except (ValueError, RecursionError):
            continue
        return True
    return False


class _PairList(list[tuple[str, Any]]):
    """A JSON object as the list of its pairs, duplicates kept."""


def _lenient_metadata(raw: bytes, ctx: ScanContext, loc: Location) -> None:
    """Analyse the ``__metadata__`` of a header that the strict parse here refuses but some reader takes: with
    duplicate keys (safetensors' serde_json reader keeps the last of a metadata key, and of a tensor), in UTF-16/32
    or decoded leniently (``json.loads`` of the bytes), or with an escape serde_json rejects. Every value of every
    reading is analysed, whichever one a reader keeps."""
    seen: set[tuple[str, str]] = set()
    for attempt in (raw, raw.decode("utf-8", "replace"), raw.decode("utf-8", "ignore")):
        try:
            top = json.loads(attempt, object_pairs_hook=_PairList)
        except (ValueError, RecursionError):
            continue
        if not isinstance(top, _PairList):
            continue
        for key, meta in top:
            if key != "__metadata__" or not isinstance(meta, _PairList):
                continue
            for name, value in meta:
                if isinstance(value, str) and (name, value) not in seen:
                    seen.add((name, value))
                    _metadata_code({name: value}, ctx, loc)


def scan_safetensors(blob: Blob, ctx: ScanContext) -> None:
    blob = seekable_blob(blob, ctx)
    loc = blob.location
    size = blob.size or 0
    with blob.open() as f:
        pre = f.read(8)
        (n,) = struct.unpack("<Q", pre)
        if n > MAX_PARSED_HEADER and n <= MAX_HEADER and n + 8 <= size:
            ctx.fail(
                loc, f"safetensors header of {n} bytes is larger than the {MAX_PARSED_HEADER} bytes parsed"
            )
            return
        if n > MAX_HEADER or n + 8 > size:
            ctx.add(rules.SafetensorsInvalid, f"header length {n} out of bounds (file has {size} bytes)", loc)
            ctx.fail(loc, "safetensors header length out of bounds")
            return
        raw = f.read(n)
    invalid = _check(raw, n, size, ctx, loc)
    if invalid:
        ctx.add(rules.SafetensorsInvalid, invalid, loc)


def _check(raw: bytes, n: int, size: int, ctx: ScanContext, loc: Location) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        if not _json_somehow(raw):
            # no decoding makes it JSON: every safetensors reader rejects it, so the first bytes (a header
            # length, then "{") only looked like safetensors; random int64 tensor bytes do about once in 256
            ctx.fail(loc, "safetensors header is neither UTF-8 nor JSON", misread=True)
            return None
        ctx.fail(loc, "safetensors header is not UTF-8")
        _lenient_metadata(raw, ctx, loc)
        return "header is not UTF-8"
    try:
        header = json.loads(text, object_pairs_hook=_pairs)
    except _DupError as exc:
        _lenient_metadata(raw, ctx, loc)  # (safetensors itself reads a header with duplicate metadata keys)
        return f"duplicate key '{str(exc)[:100]}' in header"
    except (ValueError, RecursionError):
        if _json_somehow(raw):
            # UTF-16/32 text is valid UTF-8 when it is ASCII ("{\x00"\x00..."): json.loads of the bytes reads it
            ctx.fail(loc, "safetensors header is JSON only to a lenient reader")
            _lenient_metadata(raw, ctx, loc)
            return "header is JSON only in another encoding or decoded leniently (json.loads of the bytes)"
        # json.loads is the most lenient of the readers (NaN, big numbers, lone surrogate escapes, nesting to the
        # recursion limit where serde_json stops at 128): what it rejects, every safetensors reader rejects
        ctx.fail(loc, "safetensors header is not valid JSON", misread=True)
        return None
    if not isinstance(header, dict):
        return "header is not a JSON object"
    meta = header.pop("__metadata__", None)
    if meta is not None and not (
        isinstance(meta, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    ):
        ctx.add(rules.SafetensorsMetadata, "__metadata__ is not a map of strings to strings", loc)
    if isinstance(meta, dict):
        # (before the surrogate test: Python readers that json.loads the header keep what serde_json rejects)
        _metadata_code(meta, ctx, loc)
    if _LONE_SURROGATE.search(text) and _has_surrogate({"__metadata__": meta, **header}):
        # serde_json (the Rust parser) rejects a \uD800-style escape that pairs with nothing; json.loads keeps it
        return "header holds a string with an unpaired surrogate escape"
    data_len = size - 8 - n
    spans: list[tuple[int, int, str]] = []
    for name, info in header.items():
        if not isinstance(info, dict):
            return f"tensor '{name[:100]}' has a malformed entry"
        if len(info) > 3:
            # the readers deserialize an entry into its three fields and ignore any other key (serde's default;
            # safetensors loads such a file): nothing reads the rest, but a string there is analysed as metadata
            _extra_fields(str(name), info, ctx, loc)
        dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in DTYPE_BITS:
            return f"tensor '{name[:100]}' has unknown dtype {str(dtype)[:40]}"
        if (
            not isinstance(shape, list)
            or not all(_usize(d) and d <= _DIM_MAX for d in shape)
            or _overflows(shape)
        ):
            return f"tensor '{name[:100]}' has an invalid shape"
        if (
            not isinstance(offs, list)
            or len(offs) != 2
            or not all(_usize(o) for o in offs)
            or offs[0] > offs[1]
        ):
            return f"tensor '{name[:100]}' has invalid data_offsets"
        bits = math.prod(shape) * DTYPE_BITS[dtype]
        if bits % 8 or bits // 8 != offs[1] - offs[0]:
            return (
                f"tensor '{name[:100]}': {offs[1] - offs[0]} bytes do not match dtype {dtype} shape {shape}"
            )
        spans.append((offs[0], offs[1], name))
    spans.sort()
    cursor = 0
    for start, end, name in spans:
        if start < cursor:
            return f"tensor '{name[:100]}' overlaps another tensor"
        if start > cursor:
            return f"gap of {start - cursor} bytes before tensor '{name[:100]}'"
        cursor = end
    if cursor > data_len:
        ctx.fail(loc, "safetensors data truncated")
        return f"tensors need {cursor} bytes, file holds {data_len}"
    if cursor < data_len:
        return f"{data_len - cursor} trailing byte(s) after the last tensor"
    return None


_USIZE_MAX: Final = (1 << 64) - 1
_DIM_MAX: Final = (1 << 63) - 1
"""The Rust parser takes any ``usize`` dimension, but torch and NumPy shape tensors with int64: a larger dimension
(of a tensor with no elements, which holds no bytes) fails only in the framework, after the header passed."""
_LONE_SURROGATE: Final = re.compile(r"\\u[dD][89a-fA-F]")
"""A surrogate escape in the raw header text: only then can a decoded string hold a lone surrogate."""


def _usize(value: Any) -> bool:
    """Whether a JSON value is what the Rust parser reads as a ``usize``: an integer (JSON ``true`` is no number
    there, though Python's ``bool`` is an ``int``) from 0 to 2**64 - 1."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _USIZE_MAX


def _overflows(shape: list[int]) -> bool:
    """Whether the element count overflows as the Rust parser multiplies it out (checked, left to right): a
    zero later in the shape does not save it there, though Python's product is 0."""
    count = 1
    for dim in shape:
        count *= dim
        if count > _USIZE_MAX:
            return True
    return False


def _has_surrogate(value: Any) -> bool:
    """Whether a decoded header holds a lone surrogate in any key or string."""
    stack = [value]
    while stack:
        cur = stack.pop()
        if isinstance(cur, str):
            if any("\ud800" <= ch <= "\udfff" for ch in cur):
                return True
        elif isinstance(cur, dict):
            stack.extend(cur.keys())
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return False


_ENTRY_FIELDS: Final = frozenset({"dtype", "shape", "data_offsets"})


def _extra_fields(name: str, info: dict[str, Any], ctx: ScanContext, loc: Location) -> None:
    """Analyse the strings under a tensor entry's keys beyond its three fields, however deeply nested, as
    ``__metadata__`` values are analysed: a custom reader could take code from there."""
    stack: list[tuple[str, Any]] = [
        (f"{name[:100]}.{key[:100]}", v) for key, v in info.items() if key not in _ENTRY_FIELDS
    ]
    seen = 0
    while stack and seen < 10_000:
        key, value = stack.pop()
        seen += 1
        if isinstance(value, str):
            from loopwarden.checks.models.codestr import check_metadata_value

            check_metadata_value(key, value, ctx, loc, where="safetensors", label="tensor entry field")
        elif isinstance(value, dict):
            stack.extend((f"{key}.{str(k)[:100]}", v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((key, v) for v in value)
    if stack:
        ctx.fail(loc, f"tensor '{name[:100]}' has more extra values than are analysed")


def _metadata_code(meta: dict[Any, Any], ctx: ScanContext, loc: Location) -> None:
    from loopwarden.checks.models.codestr import check_metadata_value

    for key, value in meta.items():
        if isinstance(value, str):
            check_metadata_value(str(key), value, ctx, loc, where="safetensors")
