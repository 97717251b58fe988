"""Round 17: the state of SciPy's ``SphericalVoronoi``, which its compiled region sorting trusts.

A ``SphericalVoronoi`` (``scipy.spatial``) was reported as not allow-listed; it is admitted now. It is rebuilt from
its ``__dict__``, unchecked, and ``sort_vertices_of_regions`` (``calculate_areas`` calls it for points on a 3-D
sphere) hands ``_simplices`` and ``regions`` to Cython that reads ``_simplices[v, 0..2]`` at each region's vertex
index ``v`` with bounds checks off. An index past the simplices or a negative one killed the real loader's process
(SIGSEGV with SciPy 1.17); simplices of one column are read past. The scanner checks that state: each edit below
is reported LW-MODEL-017 high, or left unverified where it cannot be read (a dimension that is not an int, a
region list changed through the memo after the object was built).
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

import pytest
from test_redteam_round13_pickle import _killed_loading
from test_redteam_round14b_kept import _clean, _high

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

np = pytest.importorskip("numpy")
spatial = pytest.importorskip("scipy.spatial")

_AREAS = "loaded.calculate_areas()"


def _voronoi() -> Any:
    points = np.random.default_rng(0).normal(size=(20, 3))
    return spatial.SphericalVoronoi(points / np.linalg.norm(points, axis=1)[:, None])


def test_the_unedited_diagram_is_clean() -> None:
    assert _clean(analyze_pickle_bytes(pickle.dumps(_voronoi(), protocol=2)))


@pytest.mark.parametrize("index", [10**9, -(10**9)])
def test_a_region_vertex_outside_the_simplices_is_reported(index: int) -> None:
    diagram = _voronoi()
    diagram.regions[0] = [index, 1, 2]
    for protocol in (2, 5):
        data = pickle.dumps(diagram, protocol=protocol)
        assert _high(analyze_pickle_bytes(data), f"a region holding vertex {index} of 36")
    assert _killed_loading(data, _AREAS)


def test_a_numpy_scalar_vertex_outside_the_simplices_is_reported() -> None:
    """SciPy's own regions hold numpy int64 scalars (pickled as ``multiarray.scalar``): they are read as ints."""
    diagram = _voronoi()
    diagram.regions[3][1] = np.intp(36)
    assert isinstance(diagram.regions[0][0], np.integer)
    assert _high(analyze_pickle_bytes(pickle.dumps(diagram, protocol=4)), "a region holding vertex 36 of 36")


def test_simplices_of_fewer_than_three_columns_are_reported() -> None:
    diagram = _voronoi()
    diagram._simplices = np.ascontiguousarray(diagram._simplices[:, :1])
    assert _high(analyze_pickle_bytes(pickle.dumps(diagram, protocol=2)), "simplices of shape (36, 1)")


def test_a_dimension_that_is_not_an_int_is_unverified() -> None:
    """``3.0 != 3`` is False: the compiled sort runs, so a dimension the scanner does not read as 3 fails closed."""
    diagram = _voronoi()
    diagram._dim = 3.0
    result = analyze_pickle_bytes(pickle.dumps(diagram, protocol=2))
    assert not result.findings
    assert result.unverified is not None and "a dimension the scanner cannot read" in result.unverified


def test_a_region_appended_to_after_the_build_is_unverified() -> None:
    """The region lists are memoized: BINGET one after the diagram's BUILD and APPEND a far vertex to it. The
    diagram holds that same list, so the check at BUILD judged a list the loader then changes."""
    diagram = _voronoi()
    diagram.regions[0] = [5, 1, 2]
    data = pickle.dumps(diagram, protocol=2)
    marker = b"X\x07\x00\x00\x00regions"
    at = data.index(marker) + len(marker)
    assert data[at] == ord("q")  # BINPUT of the key
    # the first region's memo index: after 'regions' come BINPUT, EMPTY_LIST, BINPUT, MARK, EMPTY_LIST, BINPUT i
    first = data.index(b"(]q", at) + 3
    index = data[first]
    edited = data[:-1] + b"h" + bytes([index]) + b"J" + struct.pack("<i", 10**9) + b"a0."
    assert pickle.loads(edited).regions[0] == [5, 1, 2, 10**9]
    result = analyze_pickle_bytes(edited)
    assert result.unverified is not None and "changes a list the state of" in result.unverified
    assert _killed_loading(edited, _AREAS)
