"""Property tests: the shard readers never raise on arbitrary bytes, compression never changes what is read,
and the manifest's streaming Merkle root equals the ledger's reference root."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopwarden.checks.data.formats import Record, RecordError, iter_records
from loopwarden.checks.data.manifest import table_root
from loopwarden.checks.interface import Limits
from loopwarden.ledger.merkle import leaf_hash, root_from_leaves

zstandard = pytest.importorskip("zstandard")

NAMES = ["a.jsonl", "a.json", "a.csv", "a.tsv", "a.txt", "noext", "a.parquet"]
LIMITS = Limits(max_record_bytes=256, max_decompressed_bytes=1 << 20)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _consume(path: Path) -> list[Record | RecordError]:
    items = list(iter_records(path, id_field="id", limits=LIMITS))
    fatal = [i for i, x in enumerate(items) if isinstance(x, RecordError) and x.fatal]
    assert fatal in ([], [len(items) - 1]), "a fatal error is always the last item"
    for x in items:
        if isinstance(x, Record):
            assert isinstance(x.raw, bytes)
            assert isinstance(x.id, str)
    return items


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=2000), name=st.sampled_from(NAMES), wrap=st.sampled_from(["none", "gzip", "zstd"])
)
def test_arbitrary_bytes_never_raise(data: bytes, name: str, wrap: str) -> None:
    if wrap == "gzip":
        data = gzip.compress(data)
    elif wrap == "zstd":
        data = zstandard.ZstdCompressor().compress(data)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / name
        p.write_bytes(data)
        _consume(p)
        p.write_bytes(data[: len(data) // 2])  # truncated too
        _consume(p)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(json_values, max_size=30))
def test_compression_is_transparent_and_records_are_rfc8785(rows: list[object]) -> None:
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    with tempfile.TemporaryDirectory() as d:
        plain, gz, zst = Path(d) / "a.jsonl", Path(d) / "b.jsonl.gz", Path(d) / "c.jsonl.zst"
        plain.write_bytes(text)
        gz.write_bytes(gzip.compress(text))
        zst.write_bytes(zstandard.ZstdCompressor().compress(text))
        outs = [[(x.id, x.raw) for x in iter_records(p) if isinstance(x, Record)] for p in (plain, gz, zst)]
        assert outs[0] == outs[1] == outs[2]
        assert outs[0] == [(str(i), rfc8785.dumps(row)) for i, row in enumerate(rows)]


@settings(max_examples=80, deadline=None)
@given(n=st.integers(0, 300))
def test_streaming_root_equals_reference_root(n: int) -> None:
    from loopwarden.checks.data.formats import canonical_bytes

    table = [(f"id{i}", f"{i:064x}") for i in range(n)]
    leaves = [leaf_hash(canonical_bytes({"id": i, "sha256": h})) for i, h in table]
    assert table_root(table) == root_from_leaves(leaves).hex()


any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=12)
wide_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats()
    | any_text
    | st.sampled_from(["\ud800", "\x7f", "\u2028", "\x00\x1f", "\ue000", "\U0001f600", "\uffff"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=5),
    max_leaves=16,
)


@settings(max_examples=400, deadline=None)
@given(value=wide_values)
def test_canonical_bytes_fast_path_equals_rfc8785(value: object) -> None:
    """The stdlib fast path must give exactly the RFC 8785 bytes, and fail exactly where RFC 8785 fails."""
    from loopwarden.checks.data.formats import canonical_bytes

    try:
        want = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeError):
        with pytest.raises(ValueError, match="RFC 8785"):
            canonical_bytes(value)
        return
    assert canonical_bytes(value) == want


@pytest.mark.parametrize(
    "value",
    [
        {"\ue000": 1, "\U0001f600": 2, "a": 3},  # UTF-16 order differs from code-point order
        {"k": '\x00\x08\t\n\x0c\r\x1f"\\\x7f\u2028'},
        [2**53 - 1, -(2**53) + 1, 0, True, None],
        {"b": [], "a": {}, "": ""},
    ],
)
def test_canonical_bytes_known_cases(value: object) -> None:
    from loopwarden.checks.data.formats import canonical_bytes

    assert canonical_bytes(value) == rfc8785.dumps(value)
