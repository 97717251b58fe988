"""The hashing engines give the same digests as hashlib/blake3 and refuse files that change while hashed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from loopwarden.signing.hashing import BUFFER_SIZE, FileState, HashTask, hash_tasks
from loopwarden.signing.interface import FolderChangedError


def _task(p: Path, start: int = 0, end: int | None = None) -> HashTask:
    st = FileState.of(os.stat(p))
    return HashTask(str(p), p.name, start, st.size if end is None else end, st)


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_sha256_of_files_and_ranges_matches_hashlib(tmp_path: Path, workers: int) -> None:
    data = os.urandom(2 * BUFFER_SIZE + 12345)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    small = tmp_path / "s.bin"
    small.write_bytes(b"abc")
    tasks = [_task(p), _task(small), _task(p, 5, BUFFER_SIZE + 9), _task(p, BUFFER_SIZE + 9, len(data))]
    got = hash_tasks(tasks, "sha256", workers=workers)
    want = [
        hashlib.sha256(data).hexdigest(),
        hashlib.sha256(b"abc").hexdigest(),
        hashlib.sha256(data[5 : BUFFER_SIZE + 9]).hexdigest(),
        hashlib.sha256(data[BUFFER_SIZE + 9 :]).hexdigest(),
    ]
    assert got == want


def test_blake2b_and_blake3(tmp_path: Path) -> None:
    blake3 = pytest.importorskip("blake3")
    data = os.urandom(20 * 1024 * 1024 + 3)  # above the threshold where BLAKE3 uses its own threads
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert hash_tasks([_task(p)], "blake2b") == [hashlib.blake2b(data).hexdigest()]
    assert hash_tasks([_task(p), _task(p, 1, 100)], "blake3") == [
        blake3.blake3(data).hexdigest(),
        blake3.blake3(data[1:100]).hexdigest(),
    ]


def test_progress_counts_every_byte(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(BUFFER_SIZE * 2 + 1))
    seen: list[int] = []
    hash_tasks([_task(p)], "sha256", progress=seen.append)
    assert sum(seen) == BUFFER_SIZE * 2 + 1


def test_file_changed_between_listing_and_hashing(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 100)
    t = _task(p)
    p.write_bytes(b"y" * 101)
    with pytest.raises(FolderChangedError, match=r"f\.bin: changed while being hashed"):
        hash_tasks([t], "sha256")


def test_file_changed_while_being_hashed(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(os.urandom(BUFFER_SIZE * 3))
    t = _task(p)

    def grow(_: int) -> None:
        with open(p, "ab") as fh:
            fh.write(b"!")

    with pytest.raises(FolderChangedError, match=r"f\.bin"):
        hash_tasks([t], "sha256", workers=1, progress=grow)


def test_file_removed_before_hashing(tmp_path: Path) -> None:
    p = tmp_path / "gone.bin"
    p.write_bytes(b"abc")
    t = _task(p)
    p.unlink()
    with pytest.raises(FolderChangedError, match=r"gone\.bin"):
        hash_tasks([t], "sha256")


def test_many_small_files_are_batched_and_all_hashed(tmp_path: Path) -> None:
    datas = [os.urandom(i * 37) for i in range(300)]
    tasks = []
    for i, d in enumerate(datas):
        p = tmp_path / f"f{i}"
        p.write_bytes(d)
        tasks.append(_task(p))
    assert hash_tasks(tasks, "sha256", workers=2) == [hashlib.sha256(d).hexdigest() for d in datas]


def test_resource_values_from_outside_are_checked() -> None:
    from loopwarden.signing.interface import Resource, SignatureFormatError

    ok = {"name": "w.bin", "algorithm": "sha256", "digest": "ab" * 32}
    assert Resource.from_json(ok).digest == "ab" * 32
    for bad in (
        {**ok, "digest": "AB" * 32},
        {**ok, "digest": "ab" * 31},
        {**ok, "name": ""},
        {**ok, "digest": 5},
    ):
        with pytest.raises(SignatureFormatError):
            Resource.from_json(bad)
