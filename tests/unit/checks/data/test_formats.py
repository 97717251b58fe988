"""Shard readers: formats, compression, canonical bytes, bad input, bounded memory. Fixtures made by code."""

from __future__ import annotations

import gzip
import json
import lzma
import sys
import tracemalloc
from pathlib import Path

import pytest
import rfc8785

from loopwarden.checks.data.formats import (
    Compression,
    Record,
    RecordError,
    ShardFormat,
    detect_shard,
    discover_shards,
    expand_paths,
    iter_records,
)
from loopwarden.checks.interface import Limits
from loopwarden.errors import InputError

zstandard = pytest.importorskip("zstandard")


def _jsonl(n: int, *, start: int = 0) -> bytes:
    return "".join(
        json.dumps({"id": f"r{i}", "text": f"hello {i}", "n": i}) + "\n" for i in range(start, n)
    ).encode()


def _records(items: list[Record | RecordError]) -> list[Record]:
    return [r for r in items if isinstance(r, Record)]


def _errors(items: list[Record | RecordError]) -> list[RecordError]:
    return [r for r in items if isinstance(r, RecordError)]


def test_jsonl_records_ids_lines_and_rfc8785_bytes(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"text": "x", "id": "a", "n": 1.0}\n\n{"id": "b", "text": "é", "n": 2}\n')
    items = list(iter_records(p, id_field="id"))
    recs = _records(items)
    assert not _errors(items)
    assert [(r.id, r.number, r.line) for r in recs] == [("a", 0, 1), ("b", 1, 3)]
    assert recs[0].raw == b'{"id":"a","n":1,"text":"x"}'  # RFC 8785: sorted keys, 1.0 -> 1
    assert recs[1].raw == rfc8785.dumps({"id": "b", "text": "é", "n": 2})
    assert recs[1].value == {"id": "b", "text": "é", "n": 2}


def test_without_id_field_the_record_number_is_the_id(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(_jsonl(3))
    assert [r.id for r in _records(list(iter_records(p)))] == ["0", "1", "2"]


def test_malformed_json_lines_are_reported_by_line_and_the_shard_goes_on(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": "a"}\n{"id": "b", \n{"id": "c"}\nnot json\n{"id": "d"}\n')
    items = list(iter_records(p, id_field="id"))
    assert [r.id for r in _records(items)] == ["a", "c", "d"]
    errs = _errors(items)
    assert [(e.line, e.fatal) for e in errs] == [(2, False), (4, False)]
    assert all("malformed JSON" in e.problem for e in errs)


def test_missing_id_field_falls_back_to_number_and_says_so(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"id": "a"}\n{"text": "no id"}\n{"id": null}\n')
    items = list(iter_records(p, id_field="id"))
    assert [r.id for r in _records(items)] == ["a", "1", "2"]
    errs = _errors(items)
    assert [e.number for e in errs] == [1, 2]
    assert all("no usable id field 'id'" in e.problem for e in errs)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"a": 1, "a": 2}', "duplicate key"),
        ('{"a": NaN}', "non-standard JSON constant"),
        ('{"a": 12345678901234567890}', "RFC 8785"),
        ('{"a": "\\ud800"}', "RFC 8785"),
    ],
)
def test_values_outside_ijson_are_errors_not_silently_rehashed(
    tmp_path: Path, line: str, problem: str
) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text(line + "\n")
    items = list(iter_records(p))
    assert not _records(items)
    assert problem in _errors(items)[0].problem


def test_overlong_line_is_skipped_in_bounded_memory_and_the_reader_resyncs(tmp_path: Path) -> None:
    """A single 48 MiB line with a 64 KiB record bound: never held whole, and the next line is read."""
    p = tmp_path / "big.jsonl"
    with p.open("wb") as fh:
        fh.write(b'{"id": "before"}\n')
        fh.write(b'{"id": "huge", "text": "')
        chunk = b"A" * (1 << 20)
        for _ in range(48):
            fh.write(chunk)
        fh.write(b'"}\n{"id": "after"}\n')
    limits = Limits(max_record_bytes=64 * 1024)
    tracemalloc.start()
    try:
        items = list(iter_records(p, id_field="id", limits=limits))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.id for r in _records(items)] == ["before", "after"]
    (err,) = _errors(items)
    assert err.line == 2
    assert not err.fatal
    assert "exceeds 65536 bytes" in err.problem
    assert peak < 8 * 1024**2, f"peak {peak} bytes: the line was held in memory"


def test_overlong_line_in_gzip_and_text_shards(tmp_path: Path) -> None:
    p = tmp_path / "big.txt.gz"
    p.write_bytes(gzip.compress(b"short\n" + b"x" * 200_000 + b"\nlast\n"))
    items = list(iter_records(p, limits=Limits(max_record_bytes=1000)))
    assert [r.value for r in _records(items)] == ["short", "last"]
    assert [e.line for e in _errors(items)] == [2]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_shards_read_like_plain_ones(tmp_path: Path, compression: str) -> None:
    data = _jsonl(5000)
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(data)
    comp = tmp_path / "a.jsonl.bin"  # the magic bytes decide, not the extension
    comp.write_bytes(
        gzip.compress(data) if compression == "gzip" else zstandard.ZstdCompressor().compress(data)
    )
    info = detect_shard(comp)
    assert info.compression == Compression(compression)
    assert info.format is ShardFormat.JSONL  # first significant byte is '{'
    want = [(r.id, r.raw) for r in _records(list(iter_records(plain, id_field="id")))]
    got = [(r.id, r.raw) for r in _records(list(iter_records(comp, id_field="id")))]
    assert got == want
    assert len(got) == 5000


def test_multi_frame_zstd_and_multi_member_gzip(tmp_path: Path) -> None:
    a, b = _jsonl(10), _jsonl(20, start=10)
    z = tmp_path / "a.jsonl.zst"
    c = zstandard.ZstdCompressor()
    z.write_bytes(c.compress(a) + c.compress(b))
    g = tmp_path / "a.jsonl.gz"
    g.write_bytes(gzip.compress(a) + gzip.compress(b))
    for p in (z, g):
        items = list(iter_records(p, id_field="id"))
        assert not _errors(items)
        assert [r.id for r in _records(items)] == [f"r{i}" for i in range(20)]


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_truncated_compressed_shard_ends_with_a_fatal_error(tmp_path: Path, compression: str) -> None:
    data = _jsonl(20000)
    blob = gzip.compress(data) if compression == "gzip" else zstandard.ZstdCompressor().compress(data)
    p = tmp_path / "a.jsonl.x"
    p.write_bytes(blob[: len(blob) * 2 // 3])
    items = list(iter_records(p, id_field="id"))
    last = items[-1]
    assert isinstance(last, RecordError)
    assert last.fatal
    assert f"truncated {compression} stream" in last.problem
    assert len(_records(items)) < 20000


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_corrupt_compressed_shard_is_a_fatal_error(tmp_path: Path, compression: str) -> None:
    blob = (
        gzip.compress(_jsonl(100))
        if compression == "gzip"
        else zstandard.ZstdCompressor().compress(_jsonl(100))
    )
    bad = bytearray(blob)
    for i in range(12, min(len(bad), 60)):
        bad[i] ^= 0x5A
    p = tmp_path / "a.jsonl.x"
    p.write_bytes(bytes(bad))
    items = list(iter_records(p))
    assert isinstance(items[-1], RecordError)
    assert items[-1].fatal
    assert compression in items[-1].problem


def test_decompression_bound_is_named(tmp_path: Path) -> None:
    p = tmp_path / "bomb.txt.gz"
    p.write_bytes(gzip.compress((b"0" * 1023 + b"\n") * 8192))  # 8 MiB from ~40 KiB
    items = list(iter_records(p, limits=Limits(max_decompressed_bytes=2 * 1024**2)))
    assert isinstance(items[-1], RecordError)
    assert items[-1].fatal
    assert "max_decompressed_bytes" in items[-1].problem


def test_unsupported_compression_is_unverified_not_text(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl.xz"
    p.write_bytes(lzma.compress(_jsonl(3)))
    items = list(iter_records(p))
    assert len(items) == 1
    assert isinstance(items[0], RecordError)
    assert items[0].fatal
    assert "unsupported compression xz" in items[0].problem


def test_json_array_streams_across_chunk_boundaries(tmp_path: Path) -> None:
    rows = [{"id": i, "text": "t" * (i % 300), "f": i / 7} for i in range(20000)]  # > 2 MiB: several chunks
    p = tmp_path / "a.json"
    p.write_text(json.dumps(rows, indent=1))
    items = list(iter_records(p, id_field="id"))
    assert not _errors(items)
    recs = _records(items)
    assert [r.value for r in recs] == rows
    assert recs[0].id == "0"
    assert recs[0].line == 2
    assert recs[1].line == 7  # indent=1 puts each element over 5 lines


def test_json_array_truncated_or_malformed_is_fatal(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text('[{"a": 1},\n{"a": 2}')
    items = list(iter_records(p))
    assert len(_records(items)) == 2
    assert isinstance(items[-1], RecordError)
    assert items[-1].fatal
    assert "truncated" in items[-1].problem
    p.write_text('[{"a": 1},\n{"a": 2,}\n]')
    items = list(iter_records(p))
    assert len(_records(items)) == 1
    assert items[-1].fatal
    assert "line 2" in items[-1].problem


def test_json_array_element_over_the_bound(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    # Already inside one read buffer: the element is reported and the array goes on.
    p.write_text('[{"a": "' + "x" * 300_000 + '"}, {"a": 1}]')
    items = list(iter_records(p, limits=Limits(max_record_bytes=10_000)))
    assert isinstance(items[0], RecordError)
    assert not items[0].fatal
    assert "exceeds 10000 bytes" in items[0].problem
    assert [r.value for r in _records(items)] == [{"a": 1}]
    # Larger than the read buffer: never accumulated past the bound; the array cannot be resynchronised.
    p.write_text('[{"a": 1}, {"a": "' + "x" * 5_000_000 + '"}, {"a": 2}]')
    tracemalloc.start()
    try:
        items = list(iter_records(p, limits=Limits(max_record_bytes=10_000)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [r.value for r in _records(items)] == [{"a": 1}]
    assert isinstance(items[-1], RecordError)
    assert items[-1].fatal
    assert "exceeds 10000 bytes" in items[-1].problem
    assert peak < 4_500_000


def test_csv_rows_quoted_newlines_bad_rows_bom_and_tsv(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_bytes('\ufeffid,text\n1,"hello, world"\n2,"multi\nline"\n3,too,many\n4,ok\n'.encode())
    items = list(iter_records(p, id_field="id"))
    recs = _records(items)
    assert [(r.id, r.line) for r in recs] == [("1", 2), ("2", 3), ("4", 6)]
    assert recs[1].value == {"id": "2", "text": "multi\nline"}
    assert recs[0].raw == b'{"id":"1","text":"hello, world"}'
    (err,) = _errors(items)
    assert err.line == 5
    assert "3 fields" in err.problem
    t = tmp_path / "a.tsv"
    t.write_text("id\ttext\nx\ty z\n")
    assert [r.value for r in _records(list(iter_records(t)))] == [{"id": "x", "text": "y z"}]


def test_csv_overlong_line_resyncs(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text("id,text\n1,a\n2," + "b" * 50_000 + "\n3,c\n")
    items = list(iter_records(p, id_field="id", limits=Limits(max_record_bytes=1000)))
    assert [r.id for r in _records(items)] == ["1", "3"]
    assert [e.line for e in _errors(items)] == [3]


def test_text_lines_exact_bytes_crlf_and_invalid_utf8(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_bytes(b"one\r\ntwo \n\n\xff\xfe\nlast")
    items = list(iter_records(p))
    recs = _records(items)
    assert [(r.id, r.raw) for r in recs] == [("0", b"one"), ("1", b"two "), ("2", b""), ("4", b"last")]
    (err,) = _errors(items)
    assert err.line == 4
    assert "UTF-8" in err.problem


def test_parquet_rows_by_batches(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 3000
    table = pa.table({"id": [f"r{i}" for i in range(n)], "n": list(range(n)), "b": [b"\x00\x01"] * n})
    p = tmp_path / "a.parquet"
    pq.write_table(table, p, row_group_size=700)
    assert detect_shard(p).format is ShardFormat.PARQUET
    items = list(iter_records(p, id_field="id"))
    assert not _errors(items)
    recs = _records(items)
    assert len(recs) == n
    assert recs[5].id == "r5"
    assert recs[5].line is None
    assert recs[5].raw == b'{"b":"AAE=","id":"r5","n":5}'


def test_parquet_without_pyarrow_is_unverified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "a.parquet"
    p.write_bytes(b"PAR1" + b"\x00" * 32 + b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    items = list(iter_records(p))
    assert len(items) == 1
    assert isinstance(items[0], RecordError)
    assert items[0].fatal
    assert "pyarrow" in items[0].problem


def test_corrupt_parquet_is_fatal(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    p = tmp_path / "a.parquet"
    p.write_bytes(b"PAR1" + b"\x07" * 100 + b"PAR1")
    items = list(iter_records(p))
    assert isinstance(items[-1], RecordError)
    assert items[-1].fatal
    assert "Parquet" in items[-1].problem


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("a.json", b'  [{"a": 1}]', ShardFormat.JSON),
        ("a.json", b'{"a": 1}\n{"a": 2}\n', ShardFormat.JSONL),
        ("data", b'[{"a": 1}]', ShardFormat.JSON),
        ("data", b'{"a": 1}\n', ShardFormat.JSONL),
        ("data", b"plain words\n", ShardFormat.TEXT),
        ("a.ndjson", b"[1]\n[2]\n", ShardFormat.JSONL),
        ("a.csv", b"a,b\n1,2\n", ShardFormat.CSV),
    ],
)
def test_format_detection(tmp_path: Path, name: str, content: bytes, fmt: ShardFormat) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    assert detect_shard(p).format is fmt
    gz = tmp_path / (name + ".gz")
    gz.write_bytes(gzip.compress(content))
    assert detect_shard(gz) == detect_shard(p).__class__(fmt, Compression.GZIP)


def test_unreadable_shard_is_a_fatal_error(tmp_path: Path) -> None:
    items = list(iter_records(tmp_path / "missing.jsonl"))
    assert len(items) == 1
    assert isinstance(items[0], RecordError)
    assert items[0].fatal


def test_discovery_skips_hidden_and_reports_links(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl").write_text("{}\n")
    (tmp_path / "a.txt").write_text("x\n")
    (tmp_path / ".hidden").write_text("x\n")
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    files, links = discover_shards(tmp_path)
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.txt", "sub/b.jsonl"]
    assert links == [tmp_path / "link.txt"]
    assert len(expand_paths([tmp_path])) == 3
    with pytest.raises(InputError, match="no such file"):
        expand_paths([tmp_path / "nope"])
