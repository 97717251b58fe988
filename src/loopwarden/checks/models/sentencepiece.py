"""SentencePiece models (``tokenizer.model``, ``spiece.model``): a protobuf the tokenizer reads as data.

Loading one runs no code, so the check is structural: every top-level field must be one of ModelProto's
(pieces, trainer_spec, normalizer_spec, self_test_data, denormalizer_spec), length-delimited and inside the file.
Anything else is ``unverified``: the bytes are then not what the name and the first bytes suggest.

The normalizer's ``precompiled_charsmap`` (in ``normalizer_spec`` and ``denormalizer_spec``) is a Darts double-array
trie that sentencepiece walks without bounds checks: a unit whose offset sends the walk past the trie, or a leaf
whose value points past the normalized strings, makes sentencepiece before 0.2.3 read outside its buffer at the
first encode (a crash shown with 0.2.0; 0.2.3 refuses such a trie at load). A piece tens of kilobytes long
overflows the stack while 0.2.0 loads the model. Both are ``unverified``: no trainer writes one.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Final

from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.checks.models.detect import read_varint

if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["scan_sentencepiece"]

_FIELDS: Final = frozenset({1, 2, 3, 4, 5})
_NORMALIZERS: Final = frozenset({3, 5})
"""normalizer_spec and denormalizer_spec: NormalizerSpec messages holding a precompiled_charsmap (their field 2)."""
_MAX_PIECE: Final = 4096
"""The longest SentencePiece piece message taken (its text, score and type): trainers cap a piece at 16 characters
(``max_sentencepiece_length``) and user-defined symbols are words; sentencepiece 0.2.0 builds its piece trie by a
recursion a byte deep and overflows the 8 MiB main stack between 50 and 100 kB (sooner on a thread's stack)."""
_MAX_SPEC: Final = 64 << 20
"""The largest normalizer spec read whole (a real charsmap is a few hundred kilobytes)."""
_HEADER: Final = 20
"""Bytes enough for a field's tag and length (two varints)."""


def scan_sentencepiece(blob: Blob, ctx: ScanContext) -> None:
    size = blob.size
    if size is None:
        ctx.fail(blob.location, "SentencePiece model of unknown size")
        return
    data = blob.data
    with blob.open() as f:
        pos = 0
        fields = 0
        while pos < size:
            fields += 1
            if fields % 4096 == 0:
                ctx.check_time()
            if data is not None:
                head = data[pos : pos + _HEADER]
            else:
                f.seek(pos)
                head = f.read(_HEADER)
            tag, p = read_varint(head, 0)
            if tag is None or tag >> 3 not in _FIELDS or tag & 7 != 2:
                ctx.fail(blob.location, f"SentencePiece model: unexpected field at offset {pos}")
                return
            length, p = read_varint(head, p)
            if length is None or pos + p + length > size:
                ctx.fail(blob.location, f"SentencePiece model: field at offset {pos} runs past the end")
                return
            if tag >> 3 == 1 and length > _MAX_PIECE:
                ctx.fail(
                    blob.location,
                    f"SentencePiece model: piece at offset {pos} is {length} bytes long (the trie sentencepiece "
                    "builds at load recurses once a byte: a stack overflow before 0.2.3)",
                )
                return
            if tag >> 3 in _NORMALIZERS:
                problem = _spec_problem(f, pos + p, length)
                if problem:
                    ctx.fail(blob.location, f"SentencePiece model: field at offset {pos}: {problem}")
                    return
            pos += p + length


def _spec_problem(f: BinaryIO, start: int, length: int) -> str | None:
    """Why the NormalizerSpec at ``start`` would make sentencepiece read outside its charsmap, or None."""
    if length > _MAX_SPEC:
        return "normalizer spec too large to check"
    f.seek(start)
    spec = f.read(length)
    pos = 0
    while pos < len(spec):
        tag, pos = read_varint(spec, pos)
        if tag is None:
            return "malformed normalizer spec"
        kind = tag & 7
        if kind == 0:
            _, pos = read_varint(spec, pos)
        elif kind == 1:
            pos += 8
        elif kind == 5:
            pos += 4
        elif kind == 2:
            size, pos = read_varint(spec, pos)
            if size is None or pos + size > len(spec):
                return "malformed normalizer spec"
            if tag >> 3 == 2:
                problem = charsmap_problem(spec[pos : pos + size])
                if problem:
                    return problem
            pos += size
        else:
            return "malformed normalizer spec"
        if pos > len(spec):
            return "malformed normalizer spec"
    return None


def charsmap_problem(blob: bytes) -> str | None:
    """A precompiled_charsmap (a little-endian trie size, the Darts trie units, the NUL-separated normalized
    strings) whose trie walk can leave the trie or whose leaf values point past the strings. sentencepiece itself
    refuses a blob whose trie size is not below the blob's; those are left to it."""
    if not blob:
        return None
    if len(blob) < 4:
        return None  # sentencepiece: "Blob for normalization rule is broken."
    (trie_size,) = struct.unpack_from("<I", blob)
    if trie_size >= len(blob):
        return None  # refused by DecodePrecompiledCharsMap
    trie = blob[4 : 4 + trie_size]  # cut at the end of the blob, as sentencepiece's substr does
    units = struct.unpack_from(f"<{len(trie) // 4}I", trie)
    n = len(units)
    if n == 0:
        return "precompiled_charsmap has an empty trie (read outside it by sentencepiece before 0.2.3)"
    strings = len(blob) - 4 - len(trie)
    for i, u in enumerate(units):
        if u & 0x80000000 and i:
            continue  # a value unit: its label never matches, so the walk stops on it
        child = i ^ ((u >> 10) << ((u & 0x200) >> 6))
        if child | 0xFF >= n:
            return (
                f"precompiled_charsmap trie unit {i} sends the walk outside the trie "
                "(read outside it by sentencepiece before 0.2.3)"
            )
        if u & 0x100 and units[child] & 0x7FFFFFFF >= strings:
            return (
                f"precompiled_charsmap trie unit {i} has a value past the normalized strings "
                "(read outside them by sentencepiece before 0.2.3)"
            )
    return None
