"""Round 18 (states): SciPy sparse formats whose pickled state the sparsetools and Cython routines trust.

Every case here scanned ``clean`` before this round (with the scanner of the round 18 sweep), and the real loader
(SciPy 1.17.1, NumPy 2.4) then crashed on ordinary use of what it unpickled:

* ``dia_matrix``/``dia_array``: SciPy's constructor checks that ``offsets`` has one entry per row of ``data``;
  unpickling (a ``__dict__`` update) does not. ``A @ x``, ``A.sum(axis=...)`` (``dia_matvec``) and ``tocsr``/
  ``toarray`` (``dia_tocsr``) take the diagonal count from one and walk the other with it: SIGSEGV. DIA matrices
  were not checked at all (the check covered CSR, CSC, BSR and COO only).
* ``lil_matrix``/``lil_array``: ``rows`` and ``data`` are object arrays of one list per row; ``tocsr`` (and so
  products) has the Cython ``lil_get_lengths`` write a length per list into an array of one entry per row and
  ``lil_flatten_to_array`` copy the lists into arrays sized by the column lists, both unchecked, and the CSR matrix
  built from them takes the column indices unchecked: SIGSEGV for more lists than rows and for a column past the
  matrix. LIL matrices were not checked at all.
* every sparse format given its attributes by a ``(None, {...})`` BUILD state (the unpickler's slot-state form,
  ``setattr`` of each item: the sparse classes have no ``__setstate__``): the check read dict states only, so a
  CSR matrix with an index past its columns scanned clean and ``toarray`` crashed (SIGSEGV).

Each is now LW-MODEL-017 high (unverified where the arrays cannot be read); every sparse matrix and array SciPy
makes, in every protocol and a joblib dump, stays clean.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import warnings
from typing import Any

import pytest
from test_redteam_round13_pickle import _killed_loading
from test_redteam_round14b_kept import _clean, _high
from test_redteam_round15_sklearn import _all_clean

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

np = pytest.importorskip("numpy")
sp = pytest.importorskip("scipy.sparse")


# --- builders (the real SciPy makes each object; the attack edits its attributes as a pickle can) ---------------


class _SlotPickler(pickle.Pickler):
    """Writes sparse matrices with a ``(None, attributes)`` BUILD state, which the unpickler sets by setattr."""

    def reducer_override(self, obj: Any) -> Any:
        if sp.issparse(obj):
            return (copyreg.__newobj__, (type(obj),), (None, dict(obj.__dict__)))
        return NotImplemented


def _slot(obj: Any, protocol: int = 4) -> bytes:
    out = io.BytesIO()
    _SlotPickler(out, protocol=protocol).dump(obj)
    return out.getvalue()


_L = 65536


def _dia(kind: str, offsets: Any, rows: int = 1, width: int = _L) -> Any:
    """A DIA matrix of ``rows`` diagonals of ``width`` int8 values, then given ``offsets``."""
    made = getattr(sp, f"dia_{kind}")(
        (np.ones((rows, width), dtype=np.int8), np.arange(rows, dtype=np.int32)), shape=(1, width)
    )
    made.offsets = np.asarray(offsets, dtype=np.int32)
    return made


def _many_offsets(kind: str) -> Any:
    """32768 offsets over one row of diagonal data: the routines read diagonal i at ``data + i * L`` (2 GB on)."""
    offsets = np.full(32768, _L - 1, dtype=np.int32)
    offsets[-1] = 0  # the smallest offset last: tocsr's first diagonal is the last one
    return _dia(kind, offsets)


def _few_offsets(kind: str) -> Any:
    """Two offsets for 4096 rows of diagonal data: ``dia_tocsr`` reads 4096 entries of a 2-entry order array."""
    return _dia(kind, [0, 1], rows=4096, width=16)


def _lil(kind: str, rows: list[list[int]], data: list[list[float]], shape: tuple[int, int]) -> Any:
    made = getattr(sp, f"lil_{kind}")(shape)
    r = np.empty(len(rows), dtype=object)
    d = np.empty(len(data), dtype=object)
    r[:], d[:] = rows, data
    made.rows, made.data = r, d
    return made


_ONE: list[int] = [0]
_VALUE: list[float] = [1.0]


def _csr_wide_index(kind: str) -> Any:
    made = getattr(sp, f"csr_{kind}")(np.eye(3))
    made.indices = np.array([0, 1, 10**8], dtype=np.int32)
    return made


def _attack_objects() -> dict[str, tuple[Any, str]]:
    """name -> (object, what crashes the real loader on it)"""
    cases: dict[str, tuple[Any, str]] = {}
    for kind in ("matrix", "array"):
        cases[f"dia_{kind}_many_offsets"] = (
            _many_offsets(kind),
            "import numpy; loaded @ numpy.ones(loaded.shape[1])",
        )
        cases[f"dia_{kind}_few_offsets"] = (_few_offsets(kind), "loaded.tocsr()")
        # one list object, 20000 times (the pickle memo keeps it small): 20000 lengths into 4 row pointers
        cases[f"lil_{kind}_long_rows"] = (
            _lil(kind, [_ONE] * 20000, [_VALUE] * 20000, (3, 3)),
            "loaded.tocsr()",
        )
        cases[f"lil_{kind}_wide_column"] = (
            _lil(kind, [[0], [10**9]], [[1.0], [5.0]], (2, 3)),
            "loaded.tocsr().toarray()",
        )
    return cases


def _attacks() -> dict[str, bytes]:
    found = {name: pickle.dumps(obj, protocol=4) for name, (obj, _) in _attack_objects().items()}
    for kind in ("matrix", "array"):
        found[f"csr_{kind}_slot_state"] = _slot(_csr_wide_index(kind))
        found[f"dia_{kind}_slot_state"] = _slot(_many_offsets(kind))
        found[f"lil_{kind}_slot_state"] = _slot(_lil(kind, [[0], [10**9]], [[1.0], [5.0]], (2, 3)))
    return found


def _sparse_array(kind: str, values: int, points: int) -> Any:
    """A pandas ``SparseArray`` of ``values`` stored values given an index of ``points`` points (one gap after
    them, so arithmetic takes the compiled path)."""
    import pandas as pd
    from pandas._libs.sparse import BlockIndex, IntIndex

    made = pd.arrays.SparseArray(np.ones(values), fill_value=0.0, kind=kind)
    if kind == "block":
        made._sparse_index = BlockIndex(
            points + 1, np.array([0], dtype=np.int32), np.array([points], dtype=np.int32)
        )
    else:
        made._sparse_index = IntIndex(points + 1, np.arange(points, dtype=np.int32))
    return made


_PANDAS_ADD = (
    "import numpy, pandas; other = pandas.arrays.SparseArray(numpy.r_[0.0, numpy.ones(len(loaded) - 1)], "
    "fill_value=0.0, kind='block'); print((loaded + other).sp_values[:2])"
)


def _pandas_attacks() -> dict[str, Any]:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return {}
    return {
        "pandas_sparse_block_short_values": _sparse_array("block", 4, 10**7 - 1),
        "pandas_sparse_int_short_values": _sparse_array("integer", 4, 100_000),
    }


def bench_cases() -> dict[str, dict[str, bytes]]:
    found = dict(_attacks())
    found.update((name, pickle.dumps(obj, protocol=4)) for name, obj in _pandas_attacks().items())
    return {f"r18_{name}": {f"r18_{name}.pkl": data} for name, data in found.items()}


# --- attacks ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(_attacks()))
def test_sparse_states_the_routines_trust_are_reported(case: str) -> None:
    """Scanned clean before this round; now LW-MODEL-017 high."""
    result = analyze_pickle_bytes(_attacks()[case])
    assert _high(result, "scipy.sparse"), (case, result.findings, result.unverified)


@pytest.mark.parametrize("case", sorted(_attack_objects()))
@pytest.mark.parametrize("protocol", [0, 2, 5])
def test_sparse_attacks_are_reported_in_every_protocol_and_a_joblib_dump(case: str, protocol: int) -> None:
    obj = _attack_objects()[case][0]
    result = analyze_pickle_bytes(pickle.dumps(obj, protocol=protocol))
    assert _high(result, "scipy.sparse"), (case, protocol, result.findings, result.unverified)
    if protocol == 5:
        joblib = pytest.importorskip("joblib")
        out = io.BytesIO()
        joblib.dump(obj, out)
        result = analyze_pickle_bytes(out.getvalue(), joblib=True)
        assert _high(result, "scipy.sparse"), (case, "joblib", result.findings, result.unverified)


def _killed_or_stuck(data: bytes, use: str, attempts: int) -> bool:
    """Whether ``pickle.loads(data)`` then ``use`` kills a child by a signal, or keeps it busy for 30 s on a matrix
    of a few elements: a heap overrun either faults or, where it lands in readable memory, can send the conversion
    loop through garbage lengths (one CI run saw ``tocsr`` of a LIL row with more values than indices run past 120
    s instead of faulting)."""
    import subprocess
    import sys

    code = f"import pickle, sys; loaded = pickle.loads(sys.stdin.buffer.read()); {use}"
    for _ in range(attempts):
        try:
            run = subprocess.run(
                [sys.executable, "-c", code], input=data, capture_output=True, timeout=30, check=False
            )
        except subprocess.TimeoutExpired:
            return True
        if run.returncode < 0:
            return True
    return False


@pytest.mark.parametrize("case", sorted(_attack_objects()))
def test_the_real_scipy_crashes_on_the_attacks(case: str) -> None:
    """SciPy 1.17.1: SIGSEGV in sparsetools (DIA) and in the Cython LIL helpers or the CSR built from them."""
    obj, use = _attack_objects()[case]
    # heap overflows fault where the next mapping lies: most runs (10 of 10 from a shell), not every one
    assert _killed_or_stuck(pickle.dumps(obj, protocol=4), use, attempts=6)


@pytest.mark.parametrize("kind", ["matrix", "array"])
def test_a_slot_state_csr_matrix_crashes_the_real_scipy(kind: str) -> None:
    assert _killed_loading(_slot(_csr_wide_index(kind)), "loaded.toarray()")


def test_other_lil_list_edits_are_reported() -> None:
    """Fewer lists than rows (``tocsr`` sums row pointers it never wrote: ``np.empty``'s leftovers, a crash in
    most runs from a shell), more values than column indices in a row (``lil_flatten_to_array`` writes past the
    data array), a negative column."""
    for rows, data, shape in (
        ([[0]], [[1.0]], (4000, 4000)),
        ([[0], [1]], [[1.0], [1.0, 2.0, 3.0]], (2, 3)),
        ([[-1]], [[1.0]], (1, 3)),
    ):
        for kind in ("matrix", "array"):
            result = analyze_pickle_bytes(pickle.dumps(_lil(kind, rows, data, shape), protocol=2))
            assert _high(result, "scipy.sparse._lil"), (rows, data, result.findings)


def test_dia_offsets_of_another_form_are_not_clean() -> None:
    """Offsets of a dtype or shape the scanner does not read leave the file unverified, data of another rank is
    reported."""
    made = _dia("matrix", [0])
    made.offsets = np.array([0], dtype=np.int16)
    result = analyze_pickle_bytes(pickle.dumps(made, protocol=4))
    assert result.unverified and not result.findings, result
    made = _dia("array", [0], width=4)
    made.data = np.ones((1, 4, 2))
    assert _high(analyze_pickle_bytes(pickle.dumps(made, protocol=4)), "scipy.sparse._dia")


# --- benign -----------------------------------------------------------------------------------------------------


def _benign() -> list[Any]:
    rng = np.random.default_rng(18)
    dense = (rng.random((7, 9)) > 0.6) * rng.random((7, 9))
    found: list[Any] = []
    for fmt in ("csr", "csc", "coo", "bsr", "dia", "lil", "dok"):
        for kind in ("matrix", "array"):
            cls = getattr(sp, f"{fmt}_{kind}")
            found += [cls(dense), cls((0, 0)), cls(np.zeros((3, 4))), cls(np.eye(5, dtype=np.int8))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found += [
            sp.diags([1, 2, 3], [0, 1, -2], shape=(6, 6), format="dia"),
            sp.diags_array([np.ones(5), np.ones(4)], offsets=[0, 1], format="dia"),
            sp.random(40, 30, density=0.1, format="lil", random_state=1),
            sp.random_array((30, 40), density=0.2, format="dia", random_state=2),
            sp.eye(200, 300, k=50, format="dia"),
        ]
        edited = sp.lil_array((4, 5))
        edited[1, 3] = 2.0
        edited[3, 0] = -1.0
        edited[1, 1] = 0.5
        found.append(edited)
    return found


@pytest.mark.parametrize("index", range(len(_benign())))
def test_real_sparse_matrices_scan_clean(index: int) -> None:
    obj = _benign()[index]
    _all_clean(obj, protocols=(0, 2, 4, 5))
    result = analyze_pickle_bytes(_slot(obj))
    assert _clean(result), (type(obj).__name__, result.findings, result.unverified)


def test_a_model_dict_of_sparse_features_scans_clean() -> None:
    rng = np.random.default_rng(5)
    model = {
        "graph": sp.random(100, 100, density=0.05, format="csr", random_state=3),
        "bands": sp.diags_array([rng.random(99), rng.random(100), rng.random(99)], offsets=[-1, 0, 1]),
        "rows": sp.lil_matrix(rng.random((10, 6)) > 0.5, dtype=float),
    }
    _all_clean(model)


# --- pandas SparseArray -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["pandas_sparse_block_short_values", "pandas_sparse_int_short_values"])
def test_a_sparse_array_with_fewer_values_than_points_is_reported(case: str) -> None:
    """pandas 3.1.1: a ``SparseArray`` keeps its index and values as separate attributes, and unpickling (a
    ``__dict__`` update) never compares their counts; ``+`` with another sparse array of a different index walks
    the index's points in the compiled ``block_op_add_float64``/``int_op_add_float64`` and reads a value per point
    (SIGSEGV). It scanned clean; now LW-MODEL-017 high, in every protocol and a joblib dump."""
    pytest.importorskip("pandas")
    obj = _pandas_attacks()[case]
    for protocol in (0, 2, 4, 5):
        result = analyze_pickle_bytes(pickle.dumps(obj, protocol=protocol))
        assert _high(result, "SparseArray"), (case, protocol, result.findings, result.unverified)
    joblib = pytest.importorskip("joblib")
    out = io.BytesIO()
    joblib.dump({"column": obj}, out)
    result = analyze_pickle_bytes(out.getvalue(), joblib=True)
    assert _high(result, "SparseArray"), (case, "joblib", result.findings, result.unverified)
    import pandas as pd

    frame = pd.DataFrame({"a": obj, "b": np.arange(len(obj))})
    assert _high(analyze_pickle_bytes(pickle.dumps(frame, protocol=5)), "SparseArray")


def test_the_real_pandas_crashes_on_a_sparse_array_with_fewer_values() -> None:
    pytest.importorskip("pandas")
    data = pickle.dumps(_pandas_attacks()["pandas_sparse_block_short_values"], protocol=4)
    assert _killed_loading(data, _PANDAS_ADD)


def test_sparse_array_states_the_scanner_cannot_read_are_unverified() -> None:
    """Older pandas' tuple state, ``(ndarray state, (fill value, index))``, which ``SparseArray.__setstate__``
    still takes, is not read: unverified, not clean."""
    pytest.importorskip("pandas")

    class _TupleState(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if type(obj).__name__ == "SparseArray":
                nd_state = obj.sp_values.__reduce__()[2]
                return (copyreg.__newobj__, (type(obj),), (nd_state, (obj.fill_value, obj.sp_index)))
            return NotImplemented

    out = io.BytesIO()
    _TupleState(out, protocol=4).dump(_sparse_array("block", 3, 3))
    assert len(pickle.loads(out.getvalue())) == 4
    result = analyze_pickle_bytes(out.getvalue())
    assert result.unverified and not result.findings, result


def _real_sparse_arrays() -> list[Any]:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(7)
    dense = np.where(rng.random(500) > 0.8, rng.random(500), 0.0)
    return [
        pd.arrays.SparseArray(dense),
        pd.arrays.SparseArray(dense, kind="block"),
        pd.arrays.SparseArray([]),
        pd.arrays.SparseArray([1, 2, 0, 0, 3]),
        pd.arrays.SparseArray([True, False, False], kind="block"),
        pd.arrays.SparseArray([1.0, np.nan, 2.0]),
        pd.arrays.SparseArray(np.zeros(10)),
        pd.arrays.SparseArray(np.ones(10), fill_value=0.0),
        pd.arrays.SparseArray(dense) + pd.arrays.SparseArray(dense[::-1]),
        pd.Series(pd.arrays.SparseArray(dense)),
        pd.DataFrame({"a": pd.arrays.SparseArray(dense), "b": np.arange(500)}),
        pd.DataFrame(np.eye(4)).astype(pd.SparseDtype(float, 0.0)),
    ]


@pytest.mark.parametrize("index", range(12))
def test_real_sparse_arrays_scan_clean(index: int) -> None:
    _all_clean(_real_sparse_arrays()[index], protocols=(0, 2, 4, 5))
