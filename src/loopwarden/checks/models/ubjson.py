"""XGBoost models in Universal Binary JSON (``model.ubj``, the format ``Booster.save_model`` writes by default
since XGBoost 2.1): data that XGBoost reads without running code.

The check is structural, as for MessagePack: the file must be exactly one well-formed UBJSON value (draft 12, as
XGBoost writes it: typed and counted containers, big-endian numbers), every length inside the file, nesting and
item counts bounded, and the top-level object must carry XGBoost's ``learner`` and ``version``. Typed arrays of
numbers (the trees) are skipped by their declared size, not read. Anything else is ``unverified``.
"""

from __future__ import annotations

import struct
from typing import Final

from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.checks.models.detect import UBJSON_INTS as _INTS
from loopwarden.checks.models.msgpack_ import ByteSource, StructureError

__all__ = ["scan_ubjson"]

_MAX_DEPTH: Final = 256
_MAX_ITEMS: Final = 50_000_000
_FIXED: Final = {ord("Z"): 0, ord("N"): 0, ord("T"): 0, ord("F"): 0, ord("C"): 1, ord("d"): 4, ord("D"): 8}
_FIXED.update({t: struct.calcsize(f) for t, f in _INTS.items()})
_XGBOOST_KEYS: Final = frozenset({"learner", "version"})


class _Walk:
    def __init__(self, src: ByteSource, size: int, ctx: ScanContext) -> None:
        self.src, self.size, self.ctx = src, size, ctx
        self.pos = 0
        self.items = 0

    def byte(self) -> int:
        b = self.src.take(self.pos, 1)[0]
        self.pos += 1
        return b

    def length(self) -> int:
        t = self.byte()
        fmt = _INTS.get(t)
        if fmt is None:
            raise StructureError(f"byte 0x{t:02x} at offset {self.pos - 1} is not a UBJSON integer type")
        width = struct.calcsize(fmt)
        (n,) = struct.unpack(fmt, self.src.take(self.pos, width))
        self.pos += width
        if n < 0:
            raise StructureError(f"negative length at offset {self.pos - width}")
        return int(n)

    def skip(self, n: int) -> None:
        self.pos += n
        if self.pos > self.size:
            raise StructureError(f"value at offset {self.pos - n} runs past the end of the file")

    def count(self) -> None:
        self.items += 1
        if self.items > _MAX_ITEMS:
            raise StructureError(f"more than {_MAX_ITEMS} values", bound=True)
        if self.items % 65536 == 0:
            self.ctx.check_time()

    def value(self, t: int, depth: int, keys: set[str] | None = None) -> None:
        """Skip one value of type ``t`` (its marker already read); an object's keys go to ``keys``."""
        self.count()
        if t in _FIXED:
            self.skip(_FIXED[t])
        elif t in (ord("S"), ord("H")):
            self.skip(self.length())
        elif t in (ord("["), ord("{")):
            if depth >= _MAX_DEPTH:
                raise StructureError(f"values nested deeper than {_MAX_DEPTH}", bound=True)
            self.container(t == ord("{"), depth + 1, keys)
        else:
            raise StructureError(f"byte 0x{t:02x} at offset {self.pos - 1} is not a UBJSON type")

    def container(self, is_object: bool, depth: int, keys: set[str] | None) -> None:
        typed: int | None = None
        n: int | None = None
        t = self.byte()
        if t == ord("$"):
            typed = self.byte()
            if self.byte() != ord("#"):
                raise StructureError(f"typed container without a count at offset {self.pos - 1}")
            n = self.length()
        elif t == ord("#"):
            n = self.length()
        else:
            self.pos -= 1
        if typed is not None and typed in _FIXED and not is_object:
            self.items += n or 0  # a typed array of numbers: skipped by its declared size
            if self.items > _MAX_ITEMS:
                raise StructureError(f"more than {_MAX_ITEMS} values", bound=True)
            self.skip((n or 0) * _FIXED[typed])
            return
        done = 0
        while n is None or done < n:
            if n is None:
                end = self.byte()
                if end == (ord("}") if is_object else ord("]")):
                    return
                self.pos -= 1
            if is_object:
                klen = self.length()
                raw = self.src.take(self.pos, klen)
                self.pos += klen
                if keys is not None and depth == 1:
                    keys.add(raw.decode("utf-8", "replace"))
            self.value(typed if typed is not None else self.byte(), depth)
            done += 1


def scan_ubjson(blob: Blob, ctx: ScanContext) -> None:
    if blob.size is None:
        ctx.fail(blob.location, "UBJSON value of unknown size")
        return
    keys: set[str] = set()
    with blob.open() as f:
        walk = _Walk(ByteSource(blob.data, f, blob.size), blob.size, ctx)
        try:
            walk.value(walk.byte(), 0, keys)
            if walk.pos < blob.size:
                raise StructureError(f"{blob.size - walk.pos} byte(s) after the UBJSON value")
        except StructureError as exc:
            # XGBoost's UBJSON reader (the only loader of these files) throws on a malformed document before
            # any of it is used as a model; nothing in UBJSON is code
            ctx.fail(blob.location, f"UBJSON: {exc}", misread=not exc.bound)
            return
    if not keys >= _XGBOOST_KEYS:
        ctx.fail(
            blob.location,
            "UBJSON document without XGBoost's learner and version: not a model loopwarden knows",
        )
