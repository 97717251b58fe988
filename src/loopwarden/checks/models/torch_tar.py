"""torch's oldest checkpoint format: a tar of ``sys_info``, ``pickle``, ``storages`` and ``tensors`` members.

``torch.load`` (``weights_only=False``; ``weights_only=True`` refuses the format) reads ``storages`` and ``tensors``
as pickles interleaved with raw bytes: ``storages`` is a pickle of the storage count, then per storage a pickle
``(key, location, storage_type)`` followed by an int64 element count and the elements, then a pickle of the storage
views; ``tensors`` is a pickle of the tensor count, then per tensor a pickle followed by its ndim (int32, four
bytes skipped), sizes, strides and offset. Each of those pickles runs with ``pickle.load``, and the ones after raw
bytes are no continuation of the member's first pickle: a reading that stops at the first raw byte (and searches
the rest only for the heads of pickles, PROTO or GLOBAL) misses a pickle there that opens with any other opcode.
This module walks the members as torch does and analyses every pickle at the offset torch reads it from."""

from __future__ import annotations

import pickletools
import struct
from typing import TYPE_CHECKING, Any, BinaryIO, Final, cast

from loopwarden.checks.models._base import open_slice

if TYPE_CHECKING:
    from loopwarden.checks.models._base import Blob, ScanContext

__all__ = ["TRIGGER_NAMES", "walk_legacy_tar"]

TRIGGER_NAMES: Final = frozenset({"storages", "tensors"})
"""The members torch reads with raw bytes between pickles; the walk runs only for a tar that has one."""

_ELEMENT_SIZES: Final = {
    "DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "LongStorage": 8, "IntStorage": 4,
    "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1, "BFloat16Storage": 2,
    "ComplexDoubleStorage": 16, "ComplexFloatStorage": 8, "QUInt8Storage": 1, "QInt8Storage": 1,
    "QInt32Storage": 4, "QUInt4x2Storage": 1, "QUInt2x4Storage": 1,
}  # fmt: skip
"""Element sizes of torch's typed storage classes (``torch.<X>Storage``, ``torch.cuda.<X>Storage``), which
``UntypedStorage._new_with_file`` multiplies the element count by."""

_LITERAL_OPS: Final = frozenset(
    {
        "PROTO", "FRAME", "STOP", "MARK", "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2",
        "LONG", "LONG1", "LONG4", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "STRING",
        "BINSTRING", "SHORT_BINSTRING", "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST",
        "LIST", "APPEND", "APPENDS", "GLOBAL", "STACK_GLOBAL", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET",
        "BINGET", "LONG_BINGET",
    }
)  # fmt: skip
"""The opcodes torch.save's legacy tar writer uses for counts, keys and storage classes; a pickle with any other
is not followed (the walk fails closed from there)."""


class _Global:
    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name


class _Stop(Exception):
    """The walk cannot follow torch from here (a value it does not model): the rest is unverified."""


class _Ends(Exception):
    """torch fails here (short data, a broken pickle): nothing after this point is read."""


_MARK: Final = object()


def _literal(f: BinaryIO, ctx: ScanContext) -> Any:
    """The value of the pickle at ``f``'s position, read as ``pickle.load`` reads it, leaving ``f`` after its STOP."""
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    try:
        for n, (op, arg, _pos) in enumerate(pickletools.genops(f)):
            if n % 4096 == 0:
                ctx.check_time()
            name = op.name
            if name not in _LITERAL_OPS:
                raise _Stop(f"a pickle with {name}")
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                if len(stack) != 1:
                    raise _Ends
                return stack[0]
            if name == "MARK":
                stack.append(_MARK)
            elif name == "NONE":
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name in ("EMPTY_TUPLE", "EMPTY_LIST"):
                stack.append(() if name == "EMPTY_TUPLE" else [])
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(name[-1])
                if len(stack) < k or any(x is _MARK for x in stack[-k:]):
                    raise _Ends
                top = tuple(stack[-k:])
                del stack[-k:]
                stack.append(top)
            elif name in ("TUPLE", "LIST", "APPENDS"):
                at = len(stack) - 1 - stack[::-1].index(_MARK)
                items = stack[at + 1 :]
                del stack[at:]
                if name == "TUPLE":
                    stack.append(tuple(items))
                elif name == "LIST":
                    stack.append(items)
                elif not stack or type(stack[-1]) is not list:
                    raise _Stop("APPENDS to a value that is not a list")
                else:
                    stack[-1].extend(items)
            elif name == "APPEND":
                item = stack.pop()
                if not stack or type(stack[-1]) is not list:
                    raise _Stop("APPEND to a value that is not a list")
                stack[-1].append(item)
            elif name == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                stack.append(_Global(module, attr))
            elif name == "STACK_GLOBAL":
                attr, module = stack.pop(), stack.pop()
                if type(module) is not str or type(attr) is not str:
                    raise _Ends
                stack.append(_Global(module, attr))
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                memo[len(memo) if name == "MEMOIZE" else int(cast(int, arg))] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[int(cast(int, arg))])
            else:
                stack.append(arg)  # ints, strings, bytes
    except (ValueError, KeyError, IndexError, EOFError, struct.error, UnicodeDecodeError, MemoryError) as exc:
        raise _Ends from exc
    raise _Ends


def _count(value: Any) -> int:
    """``range(value)`` as torch calls it on a count: ints and bools only here."""
    if type(value) not in (int, bool):
        raise _Stop(f"a count that is a {type(value).__name__}")
    return int(value)


def _element_size(args: Any) -> int:
    if type(args) is not tuple or len(args) != 3:
        raise _Ends  # torch unpacks three values
    kind = args[2]
    if (
        not isinstance(kind, _Global)
        or kind.module not in ("torch", "torch.cuda")
        or kind.name not in _ELEMENT_SIZES
    ):
        raise _Stop("a storage whose class is not one of torch's typed storages")
    return _ELEMENT_SIZES[kind.name]


def _read(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise _Ends
    return data


def walk_legacy_tar(member: Blob, kind: str, ctx: ScanContext) -> None:
    """Analyse every pickle torch reads from the legacy tar member ``kind`` (``storages`` or ``tensors``), at the
    offset torch reads it from. The member's first pickle is the member's own reading (analysed as the member);
    the walk stops where torch fails, and a value it cannot follow leaves the rest unverified."""
    from loopwarden.checks.models._pickle import analyse

    size = member.size or 0
    with member.open() as f:
        offsets: list[int] = []

        def pickle_at() -> Any:
            start = f.tell()
            offsets.append(start)
            return _literal(f, ctx)

        try:
            n = _count(pickle_at())
            for _ in range(n):
                ctx.check_time()
                args = pickle_at()
                if kind == "storages":
                    itemsize = _element_size(args)
                    (numel,) = struct.unpack("<q", _read(f, 8))
                    if numel < 0 or f.tell() + numel * itemsize > size:
                        raise _Ends
                    f.seek(f.tell() + numel * itemsize)
                else:
                    (ndim,) = struct.unpack("<i", _read(f, 4))
                    _read(f, 4)
                    if ndim < 0:
                        raise _Ends
                    _read(f, 16 * ndim + 8)
            if kind == "storages":
                offsets.append(f.tell())  # the storage views: judged, not followed (torch reads no more here)
        except _Ends:
            pass
        except _Stop as exc:
            ctx.fail(
                member.location,
                f"torch legacy tar member '{kind}' not followed past offset {offsets[-1]}: {exc}",
            )
    for start in offsets[1:]:
        with open_slice(member.open(), start, size - start, own=True) as stream:
            res = analyse(
                stream, ctx, member.location, max_pickles=1, joblib=False, resync=False, prefix=True
            )
        seen = {(x.rule_id, x.message, x.location) for x in ctx.findings}
        ctx.findings.extend(x for x in res.findings if (x.rule_id, x.message, x.location) not in seen)
        if res.unverified:
            ctx.fail(
                member.location,
                f"pickle at offset {start} of torch legacy tar member '{kind}': {res.unverified}",
            )
