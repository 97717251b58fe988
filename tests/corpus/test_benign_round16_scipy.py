"""Round 16: SciPy objects that ML artifacts hold, pickled by the real SciPy, scan clean.

``joblib.dump(scipy.spatial.KDTree(points))`` (a nearest-neighbour index, a point-cloud model) was reported
LW-MODEL-005 high: the k-d trees were not allow-listed. They are now, with a check of the state their compiled
``__setstate__`` trusts (tests/corpus/test_redteam_round16_scipy.py). Every tree SciPy builds must pass it, in
every form a real pickler writes (protocols 2, 4 and 5; a joblib dump).
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import pytest
from test_redteam_round14b_kept import _clean

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

np = pytest.importorskip("numpy")
spatial = pytest.importorskip("scipy.spatial")
joblib = pytest.importorskip("joblib")


def _all_clean(obj: Any) -> None:
    """Pickled with protocols 2, 4 and 5, and dumped by joblib."""
    for protocol in (2, 4, 5):
        result = analyze_pickle_bytes(pickle.dumps(obj, protocol=protocol))
        assert _clean(result), (type(obj).__name__, protocol, result.findings, result.unverified)
    out = io.BytesIO()
    joblib.dump(obj, out)
    result = analyze_pickle_bytes(out.getvalue(), joblib=True)
    assert _clean(result), (type(obj).__name__, "joblib", result.findings, result.unverified)


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
