"""CatBoost's native model files (``model.save_model("model.cbm")``, the format ``load_model`` reads by default):
data that CatBoost's C++ reader parses without running code.

A file is ``CBM1``, the size of the model core as a little-endian uint32, the core (a FlatBuffers table, which
CatBoost verifies before use) and what the model's feature processing appends (its text and embedding
processors). Nothing in it is Python: the check is that the core lies inside the file and its root table offset
inside the core (else the file is cut, unverified). What a pickle loader would run from the first byte (``C`` is
SHORT_BINBYTES) is analysed by the dispatcher as for every non-pickle format.
"""

from __future__ import annotations

import struct
from typing import Final

from loopwarden.checks.models._base import Blob, ScanContext

__all__ = ["MAGIC", "scan_catboost"]

MAGIC: Final = b"CBM1"


def scan_catboost(blob: Blob, ctx: ScanContext) -> None:
    head = blob.head(12)
    if blob.size is None or len(head) < 12:
        ctx.fail(blob.location, "CatBoost model: shorter than its header or of unknown size", misread=True)
        return
    core, root = struct.unpack_from("<II", head, 4)
    if core < 8 or 8 + core > blob.size:
        ctx.fail(
            blob.location, f"CatBoost model: a core of {core} bytes does not fit the file (cut)", misread=True
        )
    elif root >= core:
        ctx.fail(blob.location, "CatBoost model: its root table lies outside the core", misread=True)
