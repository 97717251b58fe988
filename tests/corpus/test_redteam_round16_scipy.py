"""Round 16: SciPy's k-d trees (``scipy.spatial.KDTree`` and ``cKDTree``), whose compiled ``__setstate__`` trusts
the state it is given.

The state is ``(tree, data, n, m, leafsize, maxes, mins, indices, boxsize, boxsize_data)``, ``tree`` the raw bytes
of the C++ node vector. On load SciPy copies those bytes into a vector of ``size // 72`` nodes and follows each inner
node's ``_less``/``_greater`` index from node 0; queries then take ``indices[start_idx:end_idx]`` at the nodes, each
entry a row of ``data``, and ``split_dim`` as a coordinate. Nothing of it is checked: an edited state crashes the
real loader (SIGSEGV or a heap-corruption abort with SciPy 1.17) or hangs it. The trees were reported as not
allow-listed; they are now allowed with a check of that state, and each edit below is reported LW-MODEL-017 high.
"""

from __future__ import annotations

import copyreg
import io
import pickle
import subprocess
import sys
from typing import Any

import pytest
from test_redteam_round13_pickle import _killed_loading
from test_redteam_round14b_kept import _high

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

np = pytest.importorskip("numpy")
spatial = pytest.importorskip("scipy.spatial")

# SciPy's ckdtreenode on 64-bit machines (72 bytes): the pointers are rewritten on load, the indices are trusted
_NODE = np.dtype(
    [
        ("split_dim", "<i8"),
        ("children", "<i8"),
        ("split", "<f8"),
        ("start_idx", "<i8"),
        ("end_idx", "<i8"),
        ("less", "<u8"),
        ("greater", "<u8"),
        ("_less", "<i8"),
        ("_greater", "<i8"),
    ]
)
_QUERY = "import numpy; loaded.query(numpy.full((20, 3), 0.5), k=3)"


def _tree(cls: Any = None) -> Any:
    return (cls or spatial.cKDTree)(np.random.default_rng(0).random((50, 3)), leafsize=4)


def _dumps(tree: Any, state: list[Any], protocol: int = 2) -> bytes:
    """``tree`` pickled as SciPy pickles it (NEWOBJ, then BUILD), with ``state`` in place of its own."""

    class Edited(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if obj is tree:
                return (copyreg.__newobj__, (type(obj),), tuple(state))
            return NotImplemented

    out = io.BytesIO()
    Edited(out, protocol=protocol).dump(tree)
    return out.getvalue()


def _edited(edit: Any, cls: Any = None) -> bytes:
    """A tree whose state (a list) and nodes (a structured array) ``edit`` changes in place."""
    tree = _tree(cls)
    state = list(tree.__getstate__())
    nodes = np.frombuffer(state[0].tobytes(), _NODE).copy()
    original = state[0]
    edit(state, nodes)
    if state[0] is original:
        state[0] = np.frombuffer(nodes.tobytes(), "S1").copy()
    return _dumps(tree, state)


def _set(nodes: Any, index: int, field: str, value: int) -> None:
    nodes[index][field] = value


def test_a_child_link_past_the_nodes_is_reported() -> None:
    """The load itself follows node 0's link to a node ten thousand billion nodes on: SIGSEGV in __setstate__."""
    data = _edited(lambda state, nodes: _set(nodes, 0, "_less", 10**12))
    assert _high(analyze_pickle_bytes(data), "node 0 linking node 1000000000000")
    assert _killed_loading(data, "pass")
    past = _edited(lambda state, nodes: _set(nodes, 0, "_greater", len(nodes)), spatial.KDTree)
    assert _high(analyze_pickle_bytes(past), "node 0 linking node 31 (of 31")


def test_a_child_link_back_to_an_ancestor_is_reported() -> None:
    """A cycle: the load recurses through it until the stack ends (SIGSEGV)."""
    data = _edited(lambda state, nodes: _set(nodes, 1, "_less", 0))
    assert _high(analyze_pickle_bytes(data), "node 1 linking node 0")
    assert _killed_loading(data, "pass")


def test_a_node_linked_twice_is_reported() -> None:
    """Both links of each inner node to the next one: the load walks 2**60 paths (it hangs; a 5 s bound here)."""
    tree = spatial.cKDTree(np.zeros((4, 1)), leafsize=4)
    state = list(tree.__getstate__())
    nodes = np.zeros(61, _NODE)
    nodes["end_idx"] = 4
    nodes["split_dim"][:60] = 0
    nodes["_less"][:60] = nodes["_greater"][:60] = np.arange(1, 61)
    nodes["split_dim"][60] = -1
    state[0] = np.frombuffer(nodes.tobytes(), "S1").copy()
    data = _dumps(tree, state)
    assert _high(analyze_pickle_bytes(data), "node 1 linked twice")
    code = "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=5, check=False)


def test_a_node_buffer_of_no_whole_number_of_nodes_is_reported() -> None:
    """SciPy sizes its vector by whole nodes and copies every byte given into it: 71 bytes written past the heap
    block (glibc aborts: corrupted chunks)."""

    def grow(state: list[Any], nodes: Any) -> None:
        state[0] = np.frombuffer(nodes.tobytes() + b"A" * 71, "S1").copy()

    data = _edited(grow)
    assert _high(
        analyze_pickle_bytes(data), "a node buffer of 2303 bytes, not a whole number of 72-byte nodes"
    )
    assert _killed_loading(data, "pass")


def test_a_split_dimension_past_the_points_is_reported() -> None:
    data = _edited(lambda state, nodes: _set(nodes, 0, "split_dim", 10**9))
    assert _high(analyze_pickle_bytes(data), "node 0 splitting dimension 1000000000 of 3")
    assert _killed_loading(data, _QUERY)


def test_a_point_range_past_the_index_is_reported() -> None:
    leaf = 4  # a leaf of the tree SciPy builds from these points
    data = _edited(lambda state, nodes: _set(nodes, leaf, "end_idx", 10**9))
    assert _high(analyze_pickle_bytes(data), "node 4 holding points 0 to 1000000000 of 50")
    assert _killed_loading(data, _QUERY)
    negative = _edited(lambda state, nodes: _set(nodes, leaf, "start_idx", -(10**9)))
    assert _high(analyze_pickle_bytes(negative), "holding points -1000000000 to")


def test_an_index_entry_past_the_points_is_reported() -> None:
    def far(state: list[Any], nodes: Any) -> None:
        state[7] = state[7].copy()
        state[7][0] = 10**11

    data = _edited(far)
    assert _high(analyze_pickle_bytes(data), "an index entry 100000000000 among 50 points")
    assert _killed_loading(data, _QUERY)


def test_a_short_index_array_is_reported() -> None:
    def short(state: list[Any], nodes: Any) -> None:
        state[7] = state[7][:1].copy()

    data = _edited(short)
    assert _high(analyze_pickle_bytes(data), "indices of shape (1,) for 50 points")
    assert _killed_loading(data, _QUERY)


def test_counts_that_disagree_with_the_arrays_are_reported() -> None:
    def wide(state: list[Any], nodes: Any) -> None:
        state[3] = 10**7

    data = _edited(wide)
    assert _high(analyze_pickle_bytes(data), "data of shape (50, 3) for 50 points of 10000000 dimensions")
    assert _killed_loading(data, "loaded.count_neighbors(loaded, 0.2)")

    def short_data(state: list[Any], nodes: Any) -> None:
        state[1] = state[1][:1].copy()

    assert _high(analyze_pickle_bytes(_edited(short_data)), "data of shape (1, 3) for 50 points")

    def single(state: list[Any], nodes: Any) -> None:
        state[1] = state[1].astype(np.float32)

    assert _high(analyze_pickle_bytes(_edited(single)), "data of 4-byte items")

    def maxes(state: list[Any], nodes: Any) -> None:
        state[5] = state[5][:1].copy()

    assert _high(analyze_pickle_bytes(_edited(maxes)), "maxes of shape (1,) for 3 dimensions")

    def box(state: list[Any], nodes: Any) -> None:
        state[8], state[9] = np.ones(3), np.ones(1)

    assert _high(analyze_pickle_bytes(_edited(box)), "boxsize_data of shape (1,) for 3 dimensions")


def test_a_tree_deeper_than_the_scanner_walks_is_unverified() -> None:
    """A chain of 10,001 inner nodes (SciPy's trees are tens of levels deep): left unverified, as the loader links
    the nodes recursively and a deep enough chain (400,000 levels) ends its stack."""
    tree = spatial.cKDTree(np.zeros((4, 1)), leafsize=4)
    state = list(tree.__getstate__())
    depth = 10_001
    nodes = np.zeros(2 * depth + 1, _NODE)
    nodes["end_idx"] = 4
    nodes["split_dim"] = -1
    inner = np.arange(0, 2 * depth, 2)
    nodes["split_dim"][inner] = 0
    nodes["_less"][inner] = inner + 2
    nodes["_greater"][inner] = inner + 1
    state[0] = np.frombuffer(nodes.tobytes(), "S1").copy()
    result = analyze_pickle_bytes(_dumps(tree, state))
    assert not result.findings
    assert result.unverified is not None and "deeper than 10000 levels" in result.unverified


# --- Delaunay triangulations and the interpolators over them ------------------------------------------------------

_POINTS = np.random.default_rng(0).random((30, 2))
_CALL = "import numpy; loaded(numpy.random.rand(50, 2))"


def _delaunay_edited(obj: Any, edit: Any) -> bytes:
    """``obj`` pickled with the ``__dict__`` of each ``Delaunay`` in it changed by ``edit``."""
    interpolate = pytest.importorskip("scipy.interpolate")
    assert interpolate is not None

    class Edited(pickle.Pickler):
        def reducer_override(self, held: Any) -> Any:
            if type(held) is spatial.Delaunay:
                state = dict(held.__dict__)
                edit(state)
                return (copyreg.__newobj__, (spatial.Delaunay,), state)
            return NotImplemented

    out = io.BytesIO()
    Edited(out, protocol=4).dump(obj)
    return out.getvalue()


def _entry(key: str, value: int) -> Any:
    def edit(state: dict[str, Any]) -> None:
        state[key] = state[key].copy()
        state[key][:, 0] = value

    return edit


def test_a_triangulation_whose_simplices_index_past_the_points_is_reported() -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    for cls in (interpolate.LinearNDInterpolator, interpolate.CloughTocher2DInterpolator):
        data = _delaunay_edited(cls(_POINTS, _POINTS[:, 0]), _entry("simplices", 10**9))
        assert _high(analyze_pickle_bytes(data), "simplices holding 1000000000 (of 30)")
        assert _killed_loading(data, _CALL)


def test_a_triangulation_whose_neighbours_lead_past_the_simplices_is_reported() -> None:
    data = _delaunay_edited(spatial.Delaunay(_POINTS), _entry("neighbors", 10**9))
    assert _high(analyze_pickle_bytes(data), "neighbors holding 1000000000")
    assert _killed_loading(data, "import numpy; loaded.find_simplex(numpy.random.rand(50, 2) * 3 - 1)")


def test_triangulation_counts_and_handles_that_disagree_are_reported() -> None:
    tri = spatial.Delaunay(_POINTS)
    cases = {
        "nsimplex 10000000 for arrays of": lambda s: s.update(nsimplex=10**7),
        "ndim 3 for arrays of 2": lambda s: s.update(ndim=3),
        "equations of shape (": lambda s: s.update(equations=s["equations"][:1].copy()),
        "min_bound of shape (1,)": lambda s: s.update(min_bound=s["min_bound"][:1].copy()),
        "_transform of shape (": lambda s: s.update(_transform=np.zeros((1, 3, 2))),
        "_vertex_to_simplex holding 99": lambda s: s.update(_vertex_to_simplex=np.full(30, 99, np.int32)),
        "a coplanar row (30, 0, 0)": lambda s: s.update(coplanar=np.array([[30, 0, 0]], np.int32)),
        # the handle's close() runs when the triangulation is collected: SciPy always pickles None there
        "a Qhull handle": lambda s: s.update(_qhull=spatial.KDTree(_POINTS)),
    }
    for text, edit in cases.items():
        assert _high(analyze_pickle_bytes(_delaunay_edited(tri, edit)), text), text


def test_an_interpolator_over_another_object_than_a_triangulation_is_reported() -> None:
    """The miss of this round: ``LinearNDInterpolator`` and ``CloughTocher2DInterpolator`` (allowed by the
    ``scipy.interpolate.`` pattern) read ``tri`` through ``_get_delaunay_info``, any object's attributes. With an
    ``argparse.Namespace`` or ``types.SimpleNamespace`` (both allowed) carrying a triangulation's arrays, the file
    was scanned clean; with a simplex index past the points, the real call crashed (SIGSEGV)."""
    import argparse
    import types

    interpolate = pytest.importorskip("scipy.interpolate")
    for cls in (interpolate.LinearNDInterpolator, interpolate.CloughTocher2DInterpolator):
        for holder in (argparse.Namespace, types.SimpleNamespace):
            interp = cls(_POINTS, _POINTS[:, 0])
            tri = interp.tri
            fields = {k: v for k, v in vars(tri).items() if k != "_qhull"}
            fields.update(transform=tri.transform, points=tri.points, vertex_to_simplex=tri.vertex_to_simplex)
            fields["simplices"] = tri.simplices.copy()
            fields["simplices"][:, 0] = 10**9
            interp.tri = holder(**fields)
            data = pickle.dumps(interp, protocol=4)
            assert _high(analyze_pickle_bytes(data), "that is not a SciPy Delaunay"), (cls, holder)
    assert _killed_loading(data, _CALL)


def test_interpolator_values_that_disagree_with_the_triangulation_are_reported() -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    short = interpolate.LinearNDInterpolator(_POINTS, _POINTS[:, 0])
    short.values = short.values[:2].copy()
    assert _high(analyze_pickle_bytes(pickle.dumps(short)), "values of shape (2, 1) for 30 points")
    flat = interpolate.CloughTocher2DInterpolator(_POINTS, _POINTS[:, 0])
    flat.grad = flat.grad[:1].copy()
    assert _high(analyze_pickle_bytes(pickle.dumps(flat)), "gradients of shape (1, 1, 2)")


# --- NdBSpline (allowed by the scipy.interpolate. pattern) ----------------------------------------------------------


def _ndbspline() -> Any:
    interpolate = pytest.importorskip("scipy.interpolate")
    knots = np.r_[0, 0, 0, 0, 1, 1, 1, 1.0]
    return interpolate.NdBSpline((knots, knots), np.random.default_rng(0).random((4, 4)), 3)


_EVALUATE = "import numpy; loaded(numpy.random.rand(20, 2))"


def test_an_ndbspline_offset_table_that_reads_past_the_coefficients_is_reported() -> None:
    """Missed before this round: the ``scipy.interpolate.`` pattern admits ``NdBSpline``, whose ``__dict__``
    gives ``evaluate_ndbspline`` its offset table, knot counts and degrees; an offset far past the degree (or a
    table of one entry) was scanned clean and the real call read outside the coefficients (SIGSEGV)."""
    far = _ndbspline()
    far._indices_k1d = far._indices_k1d.copy()
    far._indices_k1d[0, 0] = 10**9
    data = pickle.dumps(far, protocol=4)
    assert _high(analyze_pickle_bytes(data), "an offset 1000000000 in dimension 0 of degree 3")
    assert _killed_loading(data, _EVALUATE)
    short = _ndbspline()
    short._indices_k1d = short._indices_k1d[:1, :1].copy()
    data = pickle.dumps(short, protocol=4)
    assert _high(analyze_pickle_bytes(data), "an offset table of shape (1, 1) for 2 dimensions")
    assert _killed_loading(data, _EVALUATE)


def test_ndbspline_knot_counts_and_degrees_that_disagree_are_reported() -> None:
    long = _ndbspline()
    long._len_t = np.array([10**9, 8])
    data = pickle.dumps(long, protocol=4)
    assert _high(analyze_pickle_bytes(data), "1000000000 knots of degree 3 in dimension 0 (of 8 stored)")
    assert _killed_loading(data, _EVALUATE)
    few = _ndbspline()
    few._c = few._c[:2].copy()
    assert _high(
        analyze_pickle_bytes(pickle.dumps(few)), "2 coefficients in dimension 0 for 8 knots of degree 3"
    )
    degrees = _ndbspline()
    degrees._k = np.array([3])
    assert _high(analyze_pickle_bytes(pickle.dumps(degrees)), "_k of 1 entries for 2 dimensions")


# --- FITPACK splines (allowed by the scipy.interpolate. pattern) ----------------------------------------------------


def test_fitpack_spline_degrees_past_the_work_arrays_are_reported() -> None:
    """Missed before this round: a ``UnivariateSpline`` of degree 21 and a ``RectBivariateSpline`` of degree 10,
    with knots and coefficients sized to pass f2py's checks, were scanned clean; FITPACK's fixed stack arrays (20
    values in splev, 6 in bispev) overflowed on the real call (SIGSEGV)."""
    interpolate = pytest.importorskip("scipy.interpolate")
    x = np.linspace(0, 10, 20)
    line = interpolate.UnivariateSpline(x, np.sin(x))
    knots = np.r_[[0.0] * 22, [10.0] * 22]
    line._eval_args = (knots, np.ones(len(knots)), 21)
    data = pickle.dumps(line, protocol=4)
    assert _high(analyze_pickle_bytes(data), "degree 21 (FITPACK's work arrays hold degrees up to 19)")
    assert _killed_loading(data, "import numpy; loaded(numpy.linspace(-1, 11, 50))")
    grid = np.linspace(0, 1, 8)
    surface = interpolate.RectBivariateSpline(grid, grid, np.random.default_rng(0).random((8, 8)))
    knots = np.r_[[0.0] * 11, [1.0] * 11]
    surface.tck = [knots, knots.copy(), np.ones((len(knots) - 11) ** 2)]
    surface.degrees = (10, 10)
    data = pickle.dumps(surface, protocol=4)
    assert _high(analyze_pickle_bytes(data), "degree 10 (FITPACK's work arrays hold degrees up to 5)")
    assert _killed_loading(data, "import numpy; loaded(numpy.linspace(0, 1, 30), numpy.linspace(0, 1, 30))")


def test_a_qhull_result_holding_a_handle_is_reported() -> None:
    """``_QhullUser.__del__`` calls ``self._qhull.close()`` on whatever the state put there; SciPy pickles None."""
    for obj in (spatial.ConvexHull(_POINTS), spatial.Voronoi(_POINTS)):
        obj._qhull = spatial.KDTree(_POINTS)
        data = pickle.dumps(obj, protocol=4)
        assert _high(analyze_pickle_bytes(data), "a Qhull handle"), type(obj)
        obj._qhull = None


def test_an_edited_tree_dumped_by_joblib_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """joblib writes the state's arrays after their wrappers; the check reads them there too."""
    joblib = pytest.importorskip("joblib")
    tree = _tree(spatial.KDTree)
    state = list(tree.__getstate__())
    state[7] = state[7].copy()
    state[7][3] = 10**11
    monkeypatch.setattr(
        spatial.KDTree,
        "__reduce_ex__",
        lambda self, protocol: (copyreg.__newobj__, (spatial.KDTree,), tuple(state)),
    )
    out = io.BytesIO()
    joblib.dump(tree, out)
    assert _high(
        analyze_pickle_bytes(out.getvalue(), joblib=True), "an index entry 100000000000 among 50 points"
    )


def test_a_second_state_merged_into_a_checked_scipy_object_is_reported() -> None:
    """A second BUILD updates the ``__dict__`` the first one set: short values given alone after the checked
    interpolator (whose triangulation the first state held) were judged without it."""
    interpolate = pytest.importorskip("scipy.interpolate")
    data = pickle.dumps(interpolate.LinearNDInterpolator(_POINTS, _POINTS[:, 0]), protocol=2)
    again = pickle.dumps({"values": np.zeros((1, 1))}, protocol=2)[2:-1]
    result = analyze_pickle_bytes(data[:-1] + again + pickle.BUILD + pickle.STOP)
    assert any("a second time" in f.message and f.rule_id == "LW-MODEL-017" for f in result.findings)


def test_a_grid_longer_than_its_values_is_reported() -> None:
    """Missed before this round: ``RegularGridInterpolator`` (admitted by the ``scipy.interpolate.`` pattern) with
    a ``_grid`` of 30,000 points along an axis of 2 values was scanned clean; the linear method's compiled
    ``evaluate_linear_2d`` read the values at the grid's indices (SIGSEGV)."""
    interpolate = pytest.importorskip("scipy.interpolate")
    grid = np.linspace(0, 1, 8)
    rgi = interpolate.RegularGridInterpolator((grid, grid), np.random.default_rng(0).random((8, 8)))
    rgi._values = np.random.default_rng(1).random((2, 1000))
    rgi._grid = (np.linspace(0, 1, 30000), np.linspace(0, 1, 1000))
    data = pickle.dumps(rgi, protocol=4)
    assert _high(analyze_pickle_bytes(data), "30000 grid points along axis 0 for values of shape (2, 1000)")
    assert _killed_loading(data, "import numpy; loaded(numpy.random.rand(200, 2))")
