"""Property tests of the container parsers (the long run is bench/fuzz_models.py): random mutations of real
container bytes never crash the dispatcher, and an input the scanner could not parse is never clean."""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopwarden.checks.interface import Limits, ResourceLimitExceeded
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.scanner import default_allow
from loopwarden.domain import Location

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "corpus"))
import _container_payloads as cp

SEEDS = [
    cp.torch_zip(cp.benign_pickle()),
    cp.torch_zip(cp.evil_pickle()),
    cp.safetensors_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8),
    cp.gguf_file("{{ messages[0]['content'] }}"),
    cp.npy_object(cp.benign_pickle()),
    cp.tar_of({"m.pkl": cp.evil_pickle()}),
    cp.keras_zip(cp.keras_lambda_config()),
    cp.onnx_model("w.bin"),
]
ALLOW = default_allow()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == 2:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        else:
            data = data[:pos]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutations_never_crash_and_fail_closed(data: bytes) -> None:
    ctx = ScanContext("fuzz", Limits(max_seconds=10, max_decompressed_bytes=32 << 20), ALLOW)
    try:
        scan_blob(bytes_blob("model.bin", Location("fuzz"), data, 0), ctx)
    except ResourceLimitExceeded:
        return
    finally:
        for c in ctx.closers:
            c.close()
    clean = not ctx.findings and not ctx.unverified
    fmt = ctx.formats[0] if ctx.formats else ""
    if clean and fmt == "safetensors":
        from safetensors.numpy import load

        load(data)  # a clean verdict means the reference parser accepts it too
    if clean and fmt == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            bad = z.testzip()
        assert bad is None or re.match(r"^[^/]+/(data|constants)/[^/]+$", bad), bad


def _judge(blob_of: object, data: bytes) -> tuple[list[object], list[str]]:
    ctx = ScanContext("same", Limits(max_seconds=10, max_decompressed_bytes=32 << 20), ALLOW)
    try:
        scan_blob(blob_of(data), ctx)  # type: ignore[operator]
    except ResourceLimitExceeded as exc:
        ctx.fail(Location("same"), str(exc))
    return sorted(
        (f.rule_id, str(f.severity), f.message, f.location.member or "") for f in ctx.findings
    ), ctx.unverified


def _streamed(data: bytes) -> object:
    """The same bytes behind a reader, as a file larger than the in-memory bound is read."""
    from loopwarden.checks.models._base import Blob

    return Blob("model.bin", Location("same"), lambda: io.BytesIO(data), len(data), True, 0)


_ZIP_SEEDS = [
    SEEDS[0],
    SEEDS[1],
    SEEDS[6],
    cp.zip_of(
        {"a/data.pkl": cp.benign_pickle(), "a/version": b"3\n", "x.npy": cp.npy_object(cp.evil_pickle())}
    ),
    cp.zip_of({"m.pkl": cp.evil_pickle(), "n.txt": b"hello"}, method=zipfile.ZIP_STORED),
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_ZIP_SEEDS), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=4)
)
def test_archives_in_memory_are_judged_as_when_streamed(seed: bytes, edits: list[tuple[int, int]]) -> None:
    """Small archives are sliced and inflated in memory, large ones streamed: both must reach one verdict,
    whatever the damage (flipped bytes in headers, compressed data or CRCs)."""
    data = bytearray(seed)
    for pos, value in edits:
        data[pos % len(data)] = value
    for cut in (len(data), len(data) * 3 // 4):
        sample = bytes(data[:cut])
        assert _judge(lambda b: bytes_blob("model.bin", Location("same"), b, 0), sample) == _judge(
            _streamed, sample
        )
