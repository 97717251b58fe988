"""The pickle VM's memo keeps CPython's semantics whatever it is stored as (a list while indices are dense, a
dict after a sparse PUT): dense MEMOIZE, sparse and overwritten BINPUT/LONG_BINPUT/PUT indices, GET of an
undefined index (a malformed stream), and the memo carried into a continued reading (``run(state=...)``).
Behaviour only: verdicts and rules, never timing or memory."""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models.pickle_vm import (
    _VM,
    PickleResult,
    _Budget,
    _Collector,
    _default_allow,
    _Reader,
    analyze_pickle_bytes,
)
from loopwarden.domain import Location, Severity

PROTO4 = b"\x80\x04"
STOP = b"."
MARK = b"("
MEMOIZE = b"\x94"
STACK_GLOBAL = b"\x93"
TUPLE1 = b"\x85"
REDUCE = b"R"
POP = b"0"


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def _binput(i: int) -> bytes:
    return b"q" + bytes([i])


def _long_binput(i: int) -> bytes:
    return b"r" + struct.pack("<I", i)


def _binget(i: int) -> bytes:
    return b"h" + bytes([i])


def _long_binget(i: int) -> bytes:
    return b"j" + struct.pack("<I", i)


def _put(i: int) -> bytes:
    return b"p" + str(i).encode() + b"\n"


def _get(i: int) -> bytes:
    return b"g" + str(i).encode() + b"\n"


def _call_system(module_get: bytes, name_get: bytes) -> bytes:
    """``module.name('echo hi')`` with both halves of the name taken from the memo."""
    return module_get + name_get + STACK_GLOBAL + _u("echo hi") + TUPLE1 + REDUCE + STOP


def _system_called(result: PickleResult) -> bool:
    return any(
        f.severity is Severity.CRITICAL and "os.system" in f.message and f.rule_id == "LW-MODEL-001"
        for f in result.findings
    )


def _malformed_memo(result: PickleResult) -> bool:
    return result.unverified is not None and "undefined memo" in result.unverified


_MEMOIZED_SYSTEM = (
    PROTO4 + _u("os") + MEMOIZE + POP + _u("system") + MEMOIZE + POP + _call_system(_binget(0), _binget(1))
)
"""``os.system`` called with its two names taken from memo entries 0 and 1, both stored by MEMOIZE."""


def test_dense_memoize_numbers_entries_in_order() -> None:
    assert _system_called(analyze_pickle_bytes(_MEMOIZED_SYSTEM))


def test_dense_binput_and_long_binput() -> None:
    data = (
        b"\x80\x02"
        + _u("os")
        + _binput(0)
        + POP
        + _u("system")
        + _long_binput(1)
        + POP
        + _call_system(_long_binget(0), _binget(1))
    )
    assert _system_called(analyze_pickle_bytes(data))


@pytest.mark.parametrize("put", [_binput, _long_binput, _put])
def test_sparse_indices_are_kept(put: Any) -> None:
    """A PUT far past the memo's end (legal: CPython's memo is sparse) keeps every earlier entry."""
    data = (
        PROTO4
        + _u("os")
        + MEMOIZE
        + POP
        + _u("system")
        + put(200)
        + POP
        + _u("filler")
        + MEMOIZE  # numbered by the count of entries (2), not by the highest index
        + POP
        + _call_system(_binget(0), _binget(200))
    )
    assert _system_called(analyze_pickle_bytes(data))
    after = data[: -len(_call_system(b"", b""))] + _call_system(_long_binget(0), _binget(200))
    assert _system_called(analyze_pickle_bytes(after))


def test_memoize_after_a_sparse_put_takes_the_count_of_entries() -> None:
    """After a PUT at 5 the memo holds two entries: MEMOIZE writes index 2, whatever the highest index is."""
    data = (
        PROTO4
        + _u("os")
        + MEMOIZE  # 0
        + POP
        + _u("sys")
        + _binput(5)
        + POP
        + _u("system")
        + MEMOIZE  # 2
        + POP
        + _call_system(_binget(0), _binget(2))
    )
    assert _system_called(analyze_pickle_bytes(data))


def test_memoize_onto_a_sparse_index_overwrites_it() -> None:
    """PUT at 1 with an empty memo, then MEMOIZE: the count is 1, so MEMOIZE overwrites index 1 (as CPython)."""
    data = (
        PROTO4
        + _u("builtins")
        + _binput(1)
        + POP
        + _u("os")
        + MEMOIZE  # index 1 again: 'builtins' is gone
        + POP
        + _u("system")
        + _binput(7)
        + POP
        + _call_system(_binget(1), _binget(7))
    )
    assert _system_called(analyze_pickle_bytes(data))
    assert "builtins.system" not in analyze_pickle_bytes(data).callables


@pytest.mark.parametrize("put", [_binput, _long_binput, _put])
def test_a_put_overwrites_an_index(put: Any) -> None:
    data = (
        PROTO4
        + _u("builtins")
        + MEMOIZE
        + POP
        + _u("system")
        + MEMOIZE
        + POP
        + _u("os")
        + put(0)  # the first entry now names os
        + POP
        + _call_system(_binget(0), _binget(1))
    )
    result = analyze_pickle_bytes(data)
    assert _system_called(result)
    assert "builtins.system" not in result.callables


@pytest.mark.parametrize(
    "get", [_binget(2), _long_binget(2), _get(2), _binget(9), _long_binget(70000), _get(-1), _get(9)]
)
@pytest.mark.parametrize("sparse", [False, True])
def test_get_of_an_undefined_index_is_malformed(get: bytes, sparse: bool) -> None:
    """A GET past a dense memo's end, into a hole of a sparse one, or of a negative index."""
    data = (
        PROTO4
        + _u("os")
        + MEMOIZE
        + POP
        + _u("system")
        + (_binput(8) if sparse else MEMOIZE)
        + POP
        + get
        + STOP
    )
    result = analyze_pickle_bytes(data)
    assert _malformed_memo(result), result.unverified
    assert not _clean(result)


def test_a_payload_before_an_undefined_get_is_still_reported() -> None:
    data = _MEMOIZED_SYSTEM[:-1] + POP + _binget(40) + STOP
    result = analyze_pickle_bytes(data)
    assert _system_called(result)
    assert _malformed_memo(result)


def test_get_at_the_end_of_the_stream_is_truncated_not_a_memo_error() -> None:
    result = analyze_pickle_bytes(PROTO4 + _u("os") + MEMOIZE + b"h")
    assert result.unverified is not None
    assert "truncated" in result.unverified


def _clean(result: PickleResult) -> bool:
    return not result.findings and not result.unverified


def _continue(memo: Any, stream: bytes) -> _Collector:
    coll = _Collector(Location("<bytes>"), _default_allow())
    vm = _VM(
        _Reader(io.BytesIO(stream), len(stream)), coll, _Budget(Limits()), depth=0, joblib=False, origin=""
    )
    vm.run(([], [], memo))
    return coll


@pytest.mark.parametrize("memo", [["os", "system"], {0: "os", 1: "system"}, {0: "os", 1: "system", 9: "x"}])
def test_the_memo_carries_into_a_continued_reading(memo: Any) -> None:
    """``run(state=...)`` (the plain reading of joblib array data) reads on with the memo it was given, list or
    dict, and numbers new MEMOIZE entries from its count."""
    coll = _continue(memo, _u("y") + MEMOIZE + POP + _call_system(_binget(0), _binget(1)))
    assert any("os.system" in subject for _, subject in coll.hits), coll.hits
    after = _u("posix") + MEMOIZE + POP + _call_system(_binget(len(memo)), _binget(1))
    assert any("posix.system" in subject for _, subject in _continue(memo, after).hits)


def test_joblib_object_array_read_with_the_outer_memo_is_still_reported() -> None:
    """The memo handed to the plain reading of joblib's array data (a copy of the outer one) resolves names."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(3), "names": ["os", "system"]}, buf)
    assert _clean(analyze_pickle_bytes(buf.getvalue(), joblib=True))


@pytest.mark.parametrize(
    "value",
    [
        {f"feature_{i:05d}": i for i in range(30_000)},
        [float(i) for i in range(30_000)],
        [(i, f"t{i}") for i in range(20_000)],
        {f"k{i}": f"v{i}" for i in range(20_000)},
        [["shared"] * 3] * 500,  # one list referenced many times: GETs of one entry
    ],
)
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_large_benign_values_stay_clean(value: Any, protocol: int) -> None:
    """Shapes that fill the memo (past 256 entries: LONG_BINPUT/LONG_BINGET) are clean in every protocol."""
    assert _clean(analyze_pickle_bytes(pickle.dumps(value, protocol=protocol)))
