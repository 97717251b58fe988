"""Compressed files made of several streams: the scanner reads every stream the loader's reader reads.

Python's gzip (``gzip.decompress``, ``GzipFile``: what pandas and joblib read ``.gz`` pickles with) skips zero
bytes between members and goes on with the next member. The scanner must see that member too, wherever the
padding falls relative to its own read size.
"""

from __future__ import annotations

import bz2
import gzip
import pickle
from pathlib import Path

import pytest

from loopwarden.checks.models._base import CHUNK
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Verdict

_EVIL = b"cos\nsystem\n(S'id'\ntR."
_BENIGN = pickle.dumps({"weights": [1.0, 2.0], "step": 3}, protocol=4)
_READ = CHUNK // 4  # the compressed input the reader takes per read


def _verdict(tmp_path: Path, data: bytes, name: str = "model.pkl.gz") -> tuple[Verdict, set[str]]:
    p = tmp_path / name
    p.write_bytes(data)
    (res,) = scan_paths([str(p)], jobs=1).targets
    return res.verdict, {f.rule_id for f in res.findings}


def test_members_separated_by_zero_padding_are_read_as_one_stream(tmp_path: Path) -> None:
    # one pickle split over two members with padding between them: gzip.decompress returns the whole pickle
    data = gzip.compress(_BENIGN[:7]) + b"\0" * 13 + gzip.compress(_BENIGN[7:])
    assert gzip.decompress(data) == _BENIGN
    assert _verdict(tmp_path, data) == (Verdict.CLEAN, set())


def test_trailing_zero_padding_is_clean(tmp_path: Path) -> None:
    data = gzip.compress(_BENIGN) + b"\0" * 4096
    assert _verdict(tmp_path, data) == (Verdict.CLEAN, set())


@pytest.mark.parametrize(
    "where", ["right after", "a few bytes", "to the read end", "past the read end", "reads"]
)
def test_a_member_behind_padding_is_analysed_wherever_the_padding_ends(tmp_path: Path, where: str) -> None:
    first = gzip.compress(_BENIGN)
    pad = {
        "right after": 0,
        "a few bytes": 5,
        "to the read end": _READ - len(first),  # the first member and its padding end where a read ends
        "past the read end": _READ - len(first) + 3,
        "reads": 3 * _READ + 11,
    }[where]
    data = first + b"\0" * pad + gzip.compress(_EVIL)
    assert gzip.decompress(data) == _BENIGN + _EVIL  # the loader's reader sees the payload
    verdict, found = _verdict(tmp_path, data)
    assert verdict is not Verdict.CLEAN
    assert "LW-MODEL-001" in found


def test_a_member_ending_exactly_at_the_read_end_is_followed(tmp_path: Path) -> None:
    # nothing is left over after the first member when it fills a read exactly, yet a second member follows
    payload = _BENIGN + bytes(range(256)) * (_READ // 256)
    head = gzip.compress(payload, compresslevel=0, mtime=0)
    payload = payload[: len(payload) - (len(head) - _READ)]
    head = gzip.compress(payload, compresslevel=0, mtime=0)  # stored blocks: the size follows the payload's
    assert len(head) == _READ
    data = head + gzip.compress(_EVIL)
    assert gzip.decompress(data).endswith(_EVIL)
    verdict, found = _verdict(tmp_path, data, "model.pkl.gz")
    assert verdict is not Verdict.CLEAN
    assert "LW-MODEL-001" in found


def test_bz2_stream_behind_zero_padding_is_never_clean(tmp_path: Path) -> None:
    # Python's bz2 reader stops at the padding; the scanner reads on and judges what follows
    data = bz2.compress(_BENIGN) + b"\0" * 9 + bz2.compress(_EVIL)
    verdict, _ = _verdict(tmp_path, data, "model.pkl.bz2")
    assert verdict is not Verdict.CLEAN


def test_bz2_trailing_zeros_are_clean(tmp_path: Path) -> None:
    assert _verdict(tmp_path, bz2.compress(_BENIGN) + b"\0" * 9, "model.pkl.bz2") == (Verdict.CLEAN, set())
