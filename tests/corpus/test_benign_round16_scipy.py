"""Round 16: SciPy objects that ML artifacts hold, pickled by the real SciPy, scan clean.

``joblib.dump(scipy.spatial.KDTree(points))`` (a nearest-neighbour index, a point-cloud model) was reported
LW-MODEL-005 high: the k-d trees were not allow-listed. They are now, with a check of the state their compiled
``__setstate__`` trusts (tests/corpus/test_redteam_round16_scipy.py). Every tree SciPy builds must pass it, in
every form a real pickler writes (protocols 2, 4 and 5; a joblib dump).
"""

from __future__ import annotations

from typing import Any

import pytest
from test_redteam_round15_sklearn import _all_clean

np = pytest.importorskip("numpy")
spatial = pytest.importorskip("scipy.spatial")
joblib = pytest.importorskip("joblib")


_RNG = np.random.default_rng(1)


@pytest.mark.parametrize("cls", ["KDTree", "cKDTree"])
@pytest.mark.parametrize(
    ("points", "options"),
    [
        (_RNG.random((50, 3)), {}),
        (np.zeros((0, 3)), {}),  # no points: one empty leaf
        (np.ones((1, 2)), {}),
        (np.ones((200, 2)), {}),  # all points equal: one leaf of 200
        (_RNG.random((100, 1)), {"leafsize": 1}),
        (_RNG.random((2000, 4)) ** 8, {"balanced_tree": False, "compact_nodes": False}),
        (_RNG.random((300, 3)), {"boxsize": [1.0, 0.0, 1.0]}),  # periodic in two dimensions
        (_RNG.random((100, 5)).astype(np.float32), {"copy_data": True}),
        (np.asfortranarray(_RNG.random((100, 3))), {}),
        # sliding-midpoint splits of points halving towards 0: a tree hundreds of levels deep
        (np.column_stack([2.0 ** -np.arange(1000), np.zeros(1000)]), {"balanced_tree": False, "leafsize": 1}),
    ],
)
def test_kd_trees_scan_clean(cls: str, points: Any, options: dict[str, Any]) -> None:
    _all_clean(getattr(spatial, cls)(points, **options))


def test_a_large_kd_tree_in_a_dict_scans_clean() -> None:
    tree = spatial.KDTree(_RNG.random((100_000, 3)))
    _all_clean({"index": tree, "labels": np.arange(100_000) % 7})


def _warmed(tri: Any) -> Any:
    """A triangulation whose lazily computed arrays were asked for before it was saved."""
    _ = (tri.transform, tri.vertex_to_simplex, tri.vertex_neighbor_vertices, tri.convex_hull)
    return tri


_P2 = _RNG.random((40, 2))
_P3 = _RNG.random((60, 3))


@pytest.mark.parametrize(
    "make",
    [
        lambda: spatial.Delaunay(_P2),
        lambda: _warmed(spatial.Delaunay(_P3)),
        lambda: _warmed(spatial.Delaunay(np.vstack([_P2, _P2[:5]]))),  # repeated points: coplanar rows
        lambda: spatial.Delaunay(_P2, furthest_site=True),
        lambda: _warmed(spatial.Delaunay(_P3, qhull_options="QJ")),
        lambda: _warmed(
            spatial.Delaunay(np.array(np.meshgrid(np.arange(5.0), np.arange(5.0))).reshape(2, -1).T)
        ),
    ],
)
def test_delaunay_triangulations_scan_clean(make: Any) -> None:
    _all_clean(make())


@pytest.mark.parametrize(
    "make",
    [
        lambda i: i.LinearNDInterpolator(_P2, _RNG.random(40)),
        lambda i: i.LinearNDInterpolator(_P3, _RNG.random((60, 2, 3))),
        lambda i: i.LinearNDInterpolator(_warmed(spatial.Delaunay(_P2)), _RNG.random(40)),
        lambda i: i.LinearNDInterpolator(_P2, _RNG.random(40) + 1j * _RNG.random(40), fill_value=0),
        lambda i: i.CloughTocher2DInterpolator(_P2, _RNG.random(40)),
        # gradients numpy 2 pickles (protocol 5) as a transposed buffer: _frombuffer(..., 'K', axes)
        lambda i: i.CloughTocher2DInterpolator(_P2, _RNG.random((40, 3)), rescale=True),
        lambda i: i.NearestNDInterpolator(_P3, _RNG.random(60)),
    ],
)
def test_interpolators_over_triangulations_scan_clean(make: Any) -> None:
    _all_clean(make(pytest.importorskip("scipy.interpolate")))


def _sweep() -> dict[str, Any]:
    """SciPy objects of the round's sweep that were reported (not allow-listed) and are now clean."""
    from scipy import cluster, optimize, stats
    from scipy.spatial import transform

    x = np.linspace(0, 10, 20)
    y = np.sin(x)
    turns = transform.Rotation.from_euler("z", [[0], [90], [180]], degrees=True)
    return {
        "Slerp": transform.Slerp([0, 1, 2], turns),
        "RotationSpline": transform.RotationSpline([0, 1, 2], turns),
        "RigidTransform": transform.RigidTransform.from_translation([[1, 2, 3], [4, 5, 6]]),
        "RigidTransform single": transform.RigidTransform.from_translation([1, 2, 3]),
        "ClusterNode": cluster.hierarchy.to_tree(cluster.hierarchy.linkage(_RNG.random((10, 2)))),
        "DisjointSet": cluster.hierarchy.DisjointSet([1, 2, 3]),
        "RootResults": optimize.root_scalar(lambda v: v**3 - 1, bracket=[0, 2]),
        "BootstrapResult": stats.bootstrap((x,), np.mean, n_resamples=50, random_state=0),
        "PermutationTestResult": stats.permutation_test(
            (x, y), lambda a, b: np.mean(a) - np.mean(b), n_resamples=50, random_state=0
        ),
        "ECDFResult": stats.ecdf(x),
        "LinregressResult": stats.linregress(x, y),
        "PearsonRResult": stats.pearsonr(x, y),
        "SignificanceResult": stats.spearmanr(x, y),
        "KstestResult": stats.ks_2samp(x, y),
        "TheilslopesResult": stats.theilslopes(y, x),
        "Chi2ContingencyResult": stats.chi2_contingency([[10, 20], [30, 40]]),
        "WilcoxonResult": stats.wilcoxon(x - 5),
    }


_TUPLE_BUNCHES = (
    "LinregressResult",
    "PearsonRResult",
    "SignificanceResult",
    "KstestResult",
    "TheilslopesResult",
)


def test_other_scipy_objects_scan_clean() -> None:
    for name, obj in _sweep().items():
        if name in _TUPLE_BUNCHES or name in ("Chi2ContingencyResult", "WilcoxonResult"):
            # pickled by __newobj_ex__: protocols 4 and 5 (and joblib) write NEWOBJ_EX; protocol 2 writes
            # partial(getattr(cls, '__new__'), ...), which the VM does not model (still reported)
            _all_clean(obj, (4, 5))
        else:
            _all_clean(obj)


def test_nd_splines_scan_clean() -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    cubic = np.r_[0, 0, 0, 0, 1, 1, 1, 1.0]
    linear = np.r_[0, 0, 1, 1.0]
    _all_clean(interpolate.NdBSpline((cubic, np.r_[0, 0, 0, 0, 0.5, 1, 1, 1, 1.0]), _RNG.random((4, 5)), 3))
    _all_clean(interpolate.NdBSpline((linear, cubic), _RNG.random((2, 4, 3)), (1, 3)))  # trailing value axis
    _all_clean(interpolate.NdBSpline((linear, linear), _RNG.random((2, 2)) + 1j, 1))
    _all_clean(interpolate.NdBSpline((cubic,), _RNG.random(4), 3))
    grid = (np.linspace(0, 1, 7), np.linspace(0, 2, 9))
    for method in ("cubic", "quintic"):  # RegularGridInterpolator keeps an NdBSpline for these once called
        rgi = interpolate.RegularGridInterpolator(grid, _RNG.random((7, 9)), method=method)
        rgi(np.array([[0.5, 1.0]]))
        _all_clean(rgi)


def test_fitpack_splines_scan_clean() -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    x = np.linspace(0, 10, 20)
    y = np.sin(x)
    grid = np.linspace(0, 1, 8)
    theta, phi = np.linspace(0.1, 3, 10), np.linspace(0.1, 6, 12)
    for spline in (
        interpolate.UnivariateSpline(x, y),
        interpolate.UnivariateSpline(x, y, k=1).derivative(),  # degree 0
        interpolate.UnivariateSpline(x, y, k=5).antiderivative(2),  # degree 7
        interpolate.InterpolatedUnivariateSpline(x, y),
        interpolate.LSQUnivariateSpline(x, y, [3, 6]),
        interpolate.RectBivariateSpline(grid, grid, _RNG.random((8, 8)), kx=1, ky=5),
        interpolate.RectBivariateSpline(grid, grid, _RNG.random((8, 8))).partial_derivative(1, 1),
        interpolate.SmoothBivariateSpline(_RNG.random(30), _RNG.random(30), _RNG.random(30), kx=1, ky=1),
        interpolate.RectSphereBivariateSpline(theta, phi, _RNG.random((10, 12))),
    ):
        _all_clean(spline)


def test_qhull_results_scan_clean() -> None:
    square = np.array([[0.2, 0.2], [0.2, 0.4], [0.4, 0.4], [0.4, 0.2], [0.3, 0.6]])
    hull = spatial.ConvexHull(_P3)
    _ = hull.vertices
    for obj in (
        spatial.ConvexHull(_P2),
        hull,
        spatial.ConvexHull(square, qhull_options="QG4"),  # with its good facets
        spatial.Voronoi(_P2),
        spatial.Voronoi(_P3, furthest_site=True),
        spatial.HalfspaceIntersection(np.array([[-1, 0, 0], [0, -1, 0], [1, 1, -1.0]]), np.array([0.2, 0.2])),
    ):
        _all_clean(obj)


@pytest.mark.parametrize(
    "kernel", ["multiquadric", "inverse_multiquadric", "gaussian", "linear", "cubic", "quintic", "thin_plate"]
)
def test_legacy_rbf_scans_clean(kernel: str) -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    _all_clean(interpolate.Rbf(_P2[:, 0], _P2[:, 1], _RNG.random(40), function=kernel))


def test_regular_grid_interpolators_scan_clean() -> None:
    interpolate = pytest.importorskip("scipy.interpolate")
    x, y, z = np.linspace(0, 1, 7), np.linspace(0, 2, 9), np.linspace(0, 3, 5)
    for grid, values, method in (
        ((x, y), _RNG.random((7, 9)), "linear"),
        ((x[::-1], y), _RNG.random((7, 9)), "linear"),  # a descending axis: SciPy flips the values
        ((x, y, z), _RNG.random((7, 9, 5, 2)), "linear"),  # trailing value axes
        ((x, y), _RNG.random((7, 9)).astype(np.float32), "nearest"),
        ((x, y), _RNG.random((7, 9)) + 1j, "slinear"),
        ((x, y), _RNG.random((7, 9)), "pchip"),
    ):
        _all_clean(interpolate.RegularGridInterpolator(grid, values, method=method, fill_value=None))
