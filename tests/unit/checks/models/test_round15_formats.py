"""Round 15, unit level: the decompression budget of a broken stream's replay, and the sniffing of text behind a
byte-order mark."""

from __future__ import annotations

import gzip
import pickle
import random

import pytest

from loopwarden.checks.interface import Limits, ResourceLimitExceeded
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.detect import Format, sniff
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.scanner import default_allow
from loopwarden.domain import Location


def _scan(name: str, data: bytes, limits: Limits) -> ScanContext:
    ctx = ScanContext(name, limits, default_allow())
    try:
        scan_blob(bytes_blob(name, Location(name), data, 0), ctx)
    except ResourceLimitExceeded as exc:
        ctx.fail(Location(name), str(exc))
    finally:
        for c in ctx.closers:
            c.close()
    return ctx


def _broken_gzip(body: bytes) -> bytes:
    raw = bytearray(gzip.compress(body))
    raw[-8] ^= 0xFF  # the CRC-32 of the trailer
    return bytes(raw)


class _System:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


def test_broken_stream_replay_counts_each_output_byte_once() -> None:
    """The replay of a broken stream counted its output on top of the first reading's: a stream larger than one
    decompressor piece whose output fits the budget once but not twice hit max_decompressed_bytes (a bound that
    ends the whole target's analysis) instead of being reported for its broken check."""
    body = pickle.dumps(random.Random(15).randbytes(600 << 10), protocol=4)
    ctx = _scan("state.pkl.gz", _broken_gzip(body), Limits(max_decompressed_bytes=len(body) * 6 // 5))
    assert not any("max_decompressed_bytes" in r for r in ctx.unverified), ctx.unverified
    assert any("corrupt compressed data" in r for r in ctx.unverified), ctx.unverified


def test_broken_stream_past_the_budget_still_stops() -> None:
    """The budget still holds: a broken stream whose output alone exceeds it is stopped with the bound named."""
    body = b"\x80\x02]q\x00(" + b"X\x04\x00\x00\x00textq\x01" * 40_000 + b"e."
    ctx = _scan("state.pkl.gz", _broken_gzip(body), Limits(max_decompressed_bytes=len(body) // 2))
    assert any("max_decompressed_bytes" in r for r in ctx.unverified), ctx.unverified


def test_broken_bomb_is_still_stopped_by_the_ratio() -> None:
    """A 42.zip-style ratio in a broken stream is stopped as in an intact one."""
    ctx = _scan("bomb.bin.gz", _broken_gzip(bytes(200 << 20)), Limits())
    assert any("max_decompression_ratio" in r for r in ctx.unverified), ctx.unverified


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-32-be"])
def test_text_behind_a_bom_sniffs_as_text(encoding: str) -> None:
    bom = "\ufeff" if encoding.endswith("-be") else ""
    head = (bom + "lr: 0.001\nname: tiny\n").encode(encoding)
    assert sniff(head, len(head)) is Format.TEXT


def test_binary_behind_bom_bytes_is_not_text() -> None:
    """Raw data that starts with the bytes of a BOM (an int16 -2) holds control characters once decoded."""
    head = b"\xff\xfe" + bytes(range(256)) * 2
    assert sniff(head, len(head)) is not Format.TEXT
