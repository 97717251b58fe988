"""Property test of the fuzz invariant: analysis always returns, and an unparseable stream is never clean."""

from __future__ import annotations

import os
import pickle
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopwarden.checks.models.pickle_vm import fuzz_one


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo never-run",))


_SEEDS = [
    pickle.dumps({"a": [1, 2.5, "x", b"y", None, (1, 2)], "b": {1, 2}}, protocol=p) for p in range(6)
] + [pickle.dumps([_Evil(), {"k": _Evil()}], protocol=p) for p in (0, 2, 4)]


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "splice":
            data[pos:pos] = draw(st.sampled_from(_SEEDS))
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_mutated(), st.binary(max_size=200)))
def test_fuzz_invariant(data: bytes) -> None:
    fuzz_one(data)
