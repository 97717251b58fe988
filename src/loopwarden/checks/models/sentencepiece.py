"""SentencePiece models (``tokenizer.model``, ``spiece.model``): a protobuf the tokenizer reads as data.

Loading one runs no code, so the check is structural: every top-level field must be one of ModelProto's
(pieces, trainer_spec, normalizer_spec, self_test_data, denormalizer_spec), length-delimited and inside the file.
Anything else is ``unverified``: the bytes are then not what the name and the first bytes suggest.
"""

from __future__ import annotations

from typing import Final

from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.checks.models.detect import read_varint

__all__ = ["scan_sentencepiece"]

_FIELDS: Final = frozenset({1, 2, 3, 4, 5})
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
            pos += p + length
