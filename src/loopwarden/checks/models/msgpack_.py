"""MessagePack files (Flax's ``flax_model.msgpack``): data that Flax restores without running code.

The check is structural: the file must be exactly one well-formed MessagePack value (Flax writes a map of
parameter names), every length inside the file, nesting and item counts bounded. Extension payloads (Flax's
arrays) are skipped, not interpreted. Anything else is ``unverified``.

Strings and binaries that may be pickles are analysed as what ``pickle.loads`` runs from their first byte:
msgpack_numpy's decoder (``msgpack.unpackb(b, object_hook=msgpack_numpy.decode)``) hands an object array's
``data`` to ``pickle.loads``, and the hook runs for each map as it completes, before a later byte breaks the value.
The top-level keys of Orbax's aggregate file ``checkpoint`` and Flax's ``//GDAPlaceholder:`` strings name the
arrays that restoring opens: an absolute one leaves the checkpoint folder (LW-MODEL-052).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Callable
from typing import BinaryIO, Final, cast

from loopwarden.checks.models._base import Blob, ScanContext, open_slice

__all__ = ["ByteSource", "StructureError", "scan_msgpack"]

_MAX_DEPTH: Final = 512
_MAX_ITEMS: Final = 50_000_000
_SIZED: Final = {  # type byte -> (bytes of its length field, fixed payload bytes)
    0xC4: (1, 0),
    0xC5: (2, 0),
    0xC6: (4, 0),  # bin
    0xC7: (1, 1),
    0xC8: (2, 1),
    0xC9: (4, 1),  # ext (payload after a type byte)
    0xD9: (1, 0),
    0xDA: (2, 0),
    0xDB: (4, 0),  # str
}
_FIXED: Final = {
    0xC0: 0,
    0xC2: 0,
    0xC3: 0,
    0xCA: 4,
    0xCB: 8,
    0xCC: 1,
    0xCD: 2,
    0xCE: 4,
    0xCF: 8,
    0xD0: 1,
    0xD1: 2,
    0xD2: 4,
    0xD3: 8,
    0xD4: 2,
    0xD5: 3,
    0xD6: 5,
    0xD7: 9,
    0xD8: 17,
}
_CONTAINERS: Final = {
    0xDC: (2, 1),
    0xDD: (4, 1),
    0xDE: (2, 2),
    0xDF: (4, 2),
}  # (count bytes, items per count)


class StructureError(Exception):
    """The bytes are not one well-formed value of the format: a misreading of their first bytes, which every
    reader of the format rejects as a whole, unless ``bound`` (a limit of this analysis, not of the format)."""

    def __init__(self, message: str, *, bound: bool = False) -> None:
        super().__init__(message)
        self.bound = bound


class ByteSource:
    """Reads at increasing offsets from bytes in memory or a seekable reader, in bounded chunks."""

    def __init__(self, data: bytes | None, f: BinaryIO, size: int) -> None:
        self.data, self.f, self.size = data, f, size
        self.buf, self.base = b"", 0

    def take(self, pos: int, n: int) -> bytes:
        if pos + n > self.size:
            raise StructureError(f"value at offset {pos} runs past the end of the file")
        if self.data is not None:
            return self.data[pos : pos + n]
        if not (self.base <= pos and pos + n <= self.base + len(self.buf)):
            self.f.seek(pos)
            self.buf, self.base = self.f.read(max(n, 1 << 16)), pos
        return self.buf[pos - self.base : pos - self.base + n]


_GDA_PLACEHOLDER: Final = b"//GDAPlaceholder:"
_PLACEHOLDER_MIN: Final = len(_GDA_PLACEHOLDER) + 1
_MAX_KEYS: Final = 100
"""Top-level keys of an Orbax aggregate file reported at most (one is enough to keep the file reported)."""
_STORED_MIN: Final = 8
"""Shorter strings cannot import and call anything (``cos\nsystem\n`` alone is 11 bytes)."""
_STORED_SEARCH: Final = 1 << 16
_IMPORT_MARKS: Final = re.compile(rb"[\n\x82-\x84\x93]")
"""A pickle imports through GLOBAL/INST (names end in a line break), STACK_GLOBAL or EXT: a short string or
binary without one of these bytes (a parameter name) cannot reach anything a loader would run."""


def _walk(
    src: ByteSource,
    size: int,
    ctx: ScanContext,
    stored: Callable[[int, int], None] | None = None,
    top_key: Callable[[int, int], None] | None = None,
    text: Callable[[int, int], None] | None = None,
) -> None:
    """Walk the one value the file must be. ``stored(start, n)`` sees every string and binary of 8 bytes or more,
    ``top_key(start, n)`` every string key of a top-level map, ``text(start, n)`` every string of
    ``_PLACEHOLDER_MIN`` bytes or more."""
    pending = [1]  # items still to read at each open container level
    pos = 0
    items = 0
    top_map = False
    while pending:
        if pending[-1] == 0:
            pending.pop()
            continue
        is_top_key = top_map and len(pending) == 2 and pending[-1] % 2 == 0
        pending[-1] -= 1
        items += 1
        if items > _MAX_ITEMS:
            raise StructureError(f"more than {_MAX_ITEMS} values", bound=True)
        if items % 65536 == 0:
            ctx.check_time()
        t = src.take(pos, 1)[0]
        pos += 1
        if t <= 0x7F or t >= 0xE0:
            continue  # fixint
        if 0x80 <= t <= 0x9F:
            count = (t & 0x0F) * (2 if t < 0x90 else 1)
            top_map = top_map or (items == 1 and t < 0x90)
        elif 0xA0 <= t <= 0xBF:
            if stored is not None and t & 0x1F >= _STORED_MIN:
                stored(pos, t & 0x1F)
            if is_top_key and top_key is not None:
                top_key(pos, t & 0x1F)
            if text is not None and t & 0x1F >= _PLACEHOLDER_MIN:
                text(pos, t & 0x1F)
            pos += t & 0x1F
            continue
        elif t in _FIXED:
            pos += _FIXED[t]
            continue
        elif t in _SIZED:
            width, extra = _SIZED[t]
            (n,) = struct.unpack(">" + "BHI"[(1, 2, 4).index(width)], src.take(pos, width))
            if stored is not None and not extra and n >= _STORED_MIN:
                stored(pos + width, n)  # str or bin: msgpack_numpy's object arrays keep a pickle there
            if t >= 0xD9:  # a str (a bin decodes to bytes)
                if is_top_key and top_key is not None:
                    top_key(pos + width, n)
                if text is not None and n >= _PLACEHOLDER_MIN:
                    text(pos + width, n)
            pos += width + extra + n
            continue
        elif t in _CONTAINERS:
            width, per = _CONTAINERS[t]
            (n,) = struct.unpack(">" + "HI"[(2, 4).index(width)], src.take(pos, width))
            pos += width
            count = n * per
            top_map = top_map or (items == 1 and per == 2)
        else:
            raise StructureError(f"byte 0x{t:02x} at offset {pos - 1} is not a MessagePack type")
        if pos > size:
            raise StructureError(f"value at offset {pos} runs past the end of the file")
        if count:
            if len(pending) >= _MAX_DEPTH:
                raise StructureError(f"values nested deeper than {_MAX_DEPTH}", bound=True)
            pending.append(count)
    if pos > size:
        raise StructureError("the last value runs past the end of the file")
    if pos < size:
        raise StructureError(f"{size - pos} byte(s) after the MessagePack value")


def scan_msgpack(blob: Blob, ctx: ScanContext) -> None:
    from loopwarden.checks.models.configs import replaces_folder

    if blob.size is None:
        ctx.fail(blob.location, "MessagePack value of unknown size")
        return
    size = blob.size
    with blob.open() as f:
        src = ByteSource(blob.data, f, size)

        def stored(start: int, n: int) -> None:
            if start + n <= size:  # (one running past the end is a structure error just after)
                _stored_pickle(blob, ctx, src, start, n)

        # strings that send a restore outside the checkpoint folder, by offset: Orbax aggregate-file keys and Flax
        # multi-host placeholders that begin like an absolute path
        outside: dict[int, int] = {}

        def top_key(start: int, n: int) -> None:
            if (
                start + n <= size
                and len(outside) < _MAX_KEYS
                and replaces_folder(src.take(start, min(n, 2)).decode("latin-1"))
            ):
                outside[start] = n

        def placeholder(start: int, n: int) -> None:
            if start + n <= size and len(outside) < _MAX_KEYS:
                head = src.take(start, min(n, len(_GDA_PLACEHOLDER) + 2))
                if head.startswith(_GDA_PLACEHOLDER) and replaces_folder(
                    head[len(_GDA_PLACEHOLDER) :].decode("latin-1")
                ):
                    outside[start] = n

        orbax = blob.name.replace("\\", "/").rsplit("/", 1)[-1].lower() == "checkpoint"  # its aggregate file
        try:
            _walk(src, size, ctx, stored, top_key if orbax else None, placeholder)
            if outside:
                _outside_paths(blob, ctx, src, sorted(outside.items()))
        except StructureError as exc:
            # msgpack.unpackb (flax.serialization.msgpack_restore) decodes the whole buffer before it returns
            # anything and raises on a truncated value, an unused type byte or extra bytes (ExtraData); Flax's
            # ext hooks only build arrays. An object hook that unpickles (msgpack_numpy) runs before the break, and
            # what it could run was analysed above (a finding keeps the file reported); the rest is a misreading.
            ctx.fail(blob.location, f"MessagePack: {exc}", misread=not exc.bound)


def _stored_pickle(blob: Blob, ctx: ScanContext, src: ByteSource, start: int, n: int) -> None:
    """Analyse a string or binary value as a pickle, for what ``pickle.loads`` runs from its first byte before
    it stops (findings only: for the value itself a reading that fails is no fault)."""
    from loopwarden.checks.models import rules
    from loopwarden.checks.models._pickle import analyse
    from loopwarden.checks.models.dispatch import _OPCODE_BYTES

    if src.take(start, 1)[0] not in _OPCODE_BYTES:
        return
    if n <= _STORED_SEARCH and not _IMPORT_MARKS.search(src.take(start, n)):
        return
    if blob.data is not None:
        stream: BinaryIO = cast(BinaryIO, io.BytesIO(blob.data[start : start + n]))
    else:
        stream = open_slice(src.f, start, n)
    res = analyse(stream, ctx, blob.location, max_pickles=1, joblib=False, resync=False, prefix=True)
    if res.findings:
        ctx.add(
            rules.DisguisedFormat,
            f"a MessagePack value at offset {start} is a pickle: msgpack_numpy's decoder (pickle.loads) runs it",
            blob.location,
            content="pickle",
            claimed="msgpack",
            offset=start,
        )
        ctx.findings.extend(res.findings)


def _outside_paths(blob: Blob, ctx: ScanContext, src: ByteSource, found: list[tuple[int, int]]) -> None:
    """Report the strings that make a restore read arrays outside the checkpoint folder.

    Orbax's legacy aggregate file, ``checkpoint`` (a MessagePack map of the PyTree, arrays as ``PLACEHOLDER://``
    strings): restoring a checkpoint without ``_METADATA`` and without a target rebuilds the tree from it and opens
    each placeholder leaf's zarr array at ``directory / '.'.join(keys)``, so a top-level key that is an absolute
    path replaces the folder (orbax-checkpoint 0.12.8 and 0.11.0 restored another checkpoint's array).

    Flax's legacy multi-host checkpoints (``flax.training.checkpoints`` without Orbax, ``checkpoint_<step>``): an
    array that is not fully addressable is saved as ``//GDAPlaceholder:<key path>`` and restored (with a
    ``gda_manager``) from ``os.path.join(ckpt_path + '_gda', <key path>)``, which an absolute path replaces (flax
    0.12.8 on two CPU processes: the other checkpoint's shards were restored). Both write relative names only."""
    from loopwarden.checks.models import rules
    from loopwarden.checks.models.configs import replaces_folder

    for start, n in found:
        key = src.take(start, min(n, 4096)).decode("utf-8", "replace")
        if key.startswith(_GDA_PLACEHOLDER.decode()):
            ctx.add(
                rules.ConfigFilePath,
                f"a Flax checkpoint value '{key[:200]}' places a multi-host array outside the checkpoint: "
                "flax.training.checkpoints.restore_checkpoint (with a gda_manager) reads the zarr array at "
                "that absolute path",
                blob.location,
                key=key[:200],
                offset=start,
            )
        elif replaces_folder(key):
            ctx.add(
                rules.ConfigFilePath,
                f"Orbax's aggregate file 'checkpoint' has the top-level key '{key[:200]}': restoring the "
                "checkpoint without a target opens the zarr arrays under that absolute path instead of the "
                "checkpoint folder",
                blob.location,
                key=key[:200],
                offset=start,
            )
