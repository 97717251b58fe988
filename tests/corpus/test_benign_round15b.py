"""Round 15b, the leads the round-15 object zoo left: SciPy's new-style distributions and stdlib value classes in
object columns, made with the real libraries; the crafted neighbours of what was admitted stay reported.

* ``scipy.stats.Normal``, ``Uniform``, ``Mixture``, ``truncate()``, ``order_statistic()``, ``X * 2 + 1``, ``abs(X)``
  (SciPy 1.15+) were LW-MODEL-005 high, and a used one (its ``_method_cache`` of bound methods, pickled as
  ``getattr(instance, "_pdf_formula")``) LW-MODEL-002 critical. The classes have no load hooks; the kept methods
  are admitted for looking up only: called at load they stay reported, as does any other method name;
* ``ipaddress`` networks and interfaces, ``array.array``, ``decimal.Context``, ``collections.UserDict``/``UserList``/
  ``UserString``, ``time.struct_time``, members of ``re.RegexFlag``, ``uuid.SafeUUID``, ``http.HTTPStatus`` were
  high, as were ``random.Random``, ``statistics.NormalDist``/``LinearRegression``, ``difflib.Match`` and the
  ``urllib.parse`` result tuples. Crafted arguments to them raise (shown here with the real stdlib); they run
  nothing the pickle chooses.

Left reported: SciPy's spatial structures (native code follows their pickled indices unchecked) and torch's jagged
nested tensors (offsets and dynamo metadata the scanner does not check).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_benign_round15_zoo import _g, _s, _scan

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity


def _all_protocols_clean(folder: Path, name: str, obj: Any) -> None:
    for proto in (2, 4, 5):
        path = folder / f"{name}.p{proto}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=proto))
        pickle.loads(path.read_bytes())  # the library reads back what it wrote
        assert _scan(path) == [], path.name


# --- SciPy's new-style distributions ------------------------------------------------------------------------------


def _used(dist: Any) -> Any:
    """Call the public methods, so that the distribution caches the private method each dispatched to."""
    np = pytest.importorskip("numpy")
    for name in (
        "mean",
        "median",
        "mode",
        "variance",
        "standard_deviation",
        "skewness",
        "kurtosis",
        "entropy",
    ):
        try:
            getattr(dist, name)()
        except Exception:  # a method a distribution lacks
            continue
    for name in ("pdf", "logpdf", "cdf", "logcdf", "ccdf", "logccdf", "icdf", "iccdf", "pmf", "logpmf"):
        try:
            getattr(dist, name)(0.3)
        except Exception:
            continue
    try:
        dist.cdf(0.1, 0.5)
        dist.sample(3, rng=np.random.default_rng(0))
    except Exception:
        pass
    return dist


def _new_distributions() -> dict[str, Callable[[], Any]]:
    stats = pytest.importorskip("scipy.stats")
    if not hasattr(stats, "Normal"):
        pytest.skip("SciPy without the new-style distributions")
    np = pytest.importorskip("numpy")
    cases: dict[str, Callable[[], Any]] = {
        "normal_fresh": lambda: stats.Normal(mu=1.0, sigma=2.0),
        "normal": lambda: _used(stats.Normal(mu=1.0, sigma=2.0)),
        "standard_normal": lambda: _used(stats.Normal()),
        "normal_vector": lambda: _used(stats.Normal(mu=np.array([0.0, 1.0]), sigma=1.0)),
        "uniform": lambda: _used(stats.Uniform(a=0.0, b=2.0)),
        "mixture": lambda: _used(
            stats.Mixture([stats.Normal(), stats.Uniform(a=0, b=1)], weights=[0.5, 0.5])
        ),
        "truncated": lambda: _used(stats.truncate(stats.Normal(mu=1.0, sigma=2.0), lb=0, ub=3)),
        "shifted_scaled": lambda: _used(stats.Normal() * 2 + 1),
        "folded": lambda: _used(abs(stats.Normal(mu=1.0, sigma=2.0))),
        "order_statistic": lambda: _used(stats.order_statistic(stats.Normal(), r=1, n=3)),
    }
    if hasattr(stats, "Logistic"):
        cases["logistic"] = lambda: _used(stats.Logistic())
    if hasattr(stats, "Binomial"):
        cases["binomial"] = lambda: _used(stats.Binomial(n=10, p=0.3))
    return cases


def test_scipy_new_style_distributions_are_clean(tmp_path: Path) -> None:
    import warnings

    for name, make in _new_distributions().items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = make()
            _all_protocols_clean(tmp_path, name, obj)


_NORMAL = "scipy.stats._new_distributions.Normal"


def _normal_with(tail: bytes) -> bytes:
    """A Normal rebuilt by NEWOBJ (memo 0), then ``tail``."""
    return b"\x80\x02" + _g(_NORMAL) + b")\x81q\x00" + tail


def test_kept_scipy_distribution_method_is_clean_only_kept() -> None:
    getattr_ = _g("builtins.getattr") + b"h\x00" + _s("_pdf_formula") + b"\x86R"
    kept = _normal_with(b"}" + _s("_method_cache") + b"}" + _s("_pdf_dispatch") + getattr_ + b"ssb.")
    assert not analyze_pickle_bytes(kept).findings
    called = _normal_with(b"0" + getattr_ + b"G?\xf0\x00\x00\x00\x00\x00\x00\x85R.")
    assert any(f.severity >= Severity.HIGH for f in analyze_pickle_bytes(called).findings)


@pytest.mark.parametrize("method", ["__init__", "_preserve_type", "sample", "_pdf_dispatch", "__class__"])
def test_other_scipy_distribution_methods_stay_reported(method: str) -> None:
    body = _normal_with(_g("builtins.getattr") + b"h\x00" + _s(method) + b"\x86R.")
    assert any(f.severity >= Severity.HIGH for f in analyze_pickle_bytes(body).findings), method


@pytest.mark.parametrize(
    "name",
    [
        _NORMAL,
        "scipy.stats._distribution_infrastructure.Mixture",
        "scipy.stats._distribution_infrastructure._RealParameter",
    ],
)
def test_scipy_new_style_distribution_constructors_stay_reported(name: str) -> None:
    result = analyze_pickle_bytes(b"\x80\x02" + _g(name) + b")R.")
    assert any(f.severity >= Severity.HIGH for f in result.findings), result.findings


def test_monotonic_transformed_distribution_which_keeps_functions_stays_reported() -> None:
    cls = "scipy.stats._distribution_infrastructure.MonotonicTransformedDistribution"
    body = b"\x80\x02" + _g(cls) + b")\x81}" + _s("_g") + _g("numpy.exp") + b"sb."
    assert any(f.severity >= Severity.HIGH for f in analyze_pickle_bytes(body).findings)


# --- stdlib value classes -----------------------------------------------------------------------------------------


def _stdlib_values() -> dict[str, Any]:
    import array
    import collections
    import decimal
    import difflib
    import http
    import ipaddress
    import random
    import re
    import statistics
    import time
    import urllib.parse
    import uuid

    return {
        "ipv4_network": ipaddress.IPv4Network("10.0.0.0/8"),
        "ipv6_network": ipaddress.IPv6Network("2001:db8::/32"),
        "ipv4_interface": ipaddress.IPv4Interface("10.0.0.1/24"),
        "ipv6_interface": ipaddress.IPv6Interface("::1/64"),
        "array_d": array.array("d", [1.0, 2.0]),
        "array_b": array.array("b", [1, -2]),
        "array_u": array.array("u", "hi"),
        "decimal_context": decimal.Context(prec=5, traps=[decimal.Overflow]),
        "user_dict": collections.UserDict(a=1),
        "user_list": collections.UserList([1, 2]),
        "user_string": collections.UserString("x"),
        "struct_time": time.gmtime(0),
        "regex_flag": re.IGNORECASE,
        "regex_flags": re.I | re.M,
        "safe_uuid": uuid.SafeUUID.safe,
        "http_status": http.HTTPStatus.NOT_FOUND,
        "random": random.Random(42),
        "normal_dist": statistics.NormalDist(1.0, 2.0),
        "linear_regression": statistics.linear_regression([1, 2, 3], [2, 4, 7]),
        "difflib_match": difflib.SequenceMatcher(None, "abc", "abd").find_longest_match(0, 3, 0, 3),
        "parse_result": urllib.parse.urlparse("https://example.org/a?b=1"),
        "split_result_bytes": urllib.parse.urlsplit(b"https://example.org/a"),
        "defrag_result": urllib.parse.urldefrag("https://example.org/a#b"),
    }


def test_stdlib_value_classes_are_clean(tmp_path: Path) -> None:
    for name, value in _stdlib_values().items():
        _all_protocols_clean(tmp_path, name, value)


def test_stdlib_values_in_a_pandas_object_column_are_clean(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    import array
    import ipaddress
    import re

    frame = pd.DataFrame(
        {
            "net": [ipaddress.IPv4Network("10.0.0.0/8"), ipaddress.IPv6Network("::/0")],
            "arr": [array.array("d", [1.0]), array.array("i", [2])],
            "flag": [re.I, re.M],
        }
    )
    path = tmp_path / "frame.pkl"
    frame.to_pickle(path)
    assert _scan(path) == []


def _random_with(state: tuple[Any, ...]) -> bytes:
    """``random.Random()`` then BUILD ``state`` (its ``__setstate__``), as ``Random.__reduce__`` writes it."""
    return b"\x80\x04" + _g("random.Random") + b")R" + pickle.dumps(state, protocol=2)[2:-1] + b"b."


def test_crafted_stdlib_value_arguments_raise_in_the_real_loader() -> None:
    """What the admitted reconstructors do with arguments the pickle chooses: they check and raise."""

    bad = {
        "array_class": _g("array._array_reconstructor") + b"(" + _g("collections.OrderedDict") + _s("d"),
        "array_format": _g("array._array_reconstructor") + b"(" + _g("array.array") + _s("d") + b"Kc",
        "array_length": _g("array._array_reconstructor") + b"(" + _g("array.array") + _s("d") + b"K\x10",
    }
    tails = {"array_class": b"K\x10C\x08abcdefgh", "array_format": b"C\x03abc", "array_length": b"C\x03abc"}
    for name, head in bad.items():
        body = b"\x80\x03" + head + tails[name] + b"tR."
        with pytest.raises((TypeError, ValueError)):
            pickle.loads(body)
        assert not analyze_pickle_bytes(body).findings, name
    # random.Random's state: version, length and index are checked by the C generator
    state = (3, (0,) * 624 + (10**6,), None)
    with pytest.raises(ValueError):
        pickle.loads(_random_with(state))
    assert not analyze_pickle_bytes(_random_with(state)).findings
    # the enum functional API refuses to extend an enum that has members, before building anything
    extend = b"\x80\x03" + _g("http.HTTPStatus") + _s("X") + _s("A B") + b"\x86R."
    with pytest.raises(TypeError):
        pickle.loads(extend)


@pytest.mark.parametrize(
    "name",
    [
        "ipaddress._BaseNetwork",
        "ipaddress.ip_network",
        "array.ArrayType",
        "decimal.getcontext",
        "decimal.setcontext",
        "re.Pattern",
        "collections.UserDict.update",
        "http.client.HTTPConnection",
        "uuid.getnode",
        "time.sleep",
    ],
)
def test_stdlib_neighbours_stay_reported(name: str) -> None:
    result = analyze_pickle_bytes(b"\x80\x02" + _g(name) + b")R.")
    assert any(f.severity >= Severity.HIGH for f in result.findings), (name, result.findings)


def test_stdlib_value_class_with_a_callable_planted_in_its_state_stays_reported() -> None:
    planted = (
        b"\x80\x02" + _g("collections.UserDict") + b")\x81}" + _s("__setstate__") + _g("os.system") + b"sb."
    )
    assert any(f.severity is Severity.CRITICAL for f in analyze_pickle_bytes(planted).findings)


# --- left reported: native structures rebuilt from unchecked indices ----------------------------------------------


def test_scipy_spatial_structures_stay_reported(tmp_path: Path) -> None:
    """Their state holds indices native code follows unchecked (SciPy 1.17, each shown to SIGSEGV in a child:
    cKDTree/KDTree in ``__setstate__`` on a crafted node buffer, Delaunay on the first ``find_simplex`` with
    neighbour and simplex indices past the arrays, SphericalVoronoi in ``sort_vertices_of_regions`` with region
    indices past the vertices). Round 16 admits the k-d trees and the Qhull results with a check of those
    invariants (tests/corpus/test_redteam_round16_scipy.py): a crafted Delaunay is reported by it. Round 17 admits
    SphericalVoronoi with a check of its regions (tests/corpus/test_redteam_round17_state.py): a crafted one is
    reported by it."""
    np = pytest.importorskip("numpy")
    spatial = pytest.importorskip("scipy.spatial")
    rng = np.random.default_rng(0)
    points = rng.random((20, 2))
    sphere = rng.random((20, 3)) - 0.5
    sphere /= np.linalg.norm(sphere, axis=1)[:, None]
    crafted = spatial.Delaunay(points)
    crafted.neighbors[:] = 10**9
    voronoi = spatial.SphericalVoronoi(sphere)
    voronoi.regions[0] = [10**9, 1, 2]
    objects = {
        "spherical_voronoi_crafted": voronoi,
        "delaunay_crafted": crafted,
    }
    for name, obj in objects.items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=4))
        assert any(sev >= Severity.HIGH for _, sev, _ in _scan(path)), name


# --- state set on an object the whole process shares ----------------------------------------------------------------

_PLANT = b"}" + _s("planted") + b"K\x07s"


@pytest.mark.parametrize(
    "body",
    [
        _g("re.RegexFlag") + b"K\x02\x85R" + _PLANT + b"b.",
        _g("re.RegexFlag") + b"K\x02\x85\x81" + _PLANT + b"b.",
        _g("copyreg.__newobj__") + _g("re.RegexFlag") + b"K\x02\x86R" + _PLANT + b"b.",
        _g("torch._utils._set_obj_state") + _g("re.RegexFlag") + b"K\x02\x85R" + _PLANT + b"\x86R.",
        _g("http.HTTPStatus") + b"K\xc8\x85R" + _PLANT + b"b.",
        _g("dateutil.tz.tz.tzutc") + b")R" + _PLANT + b"b.",
        _g("dateutil.tz.tz.tzoffset") + _s("X") + b"M\x10\x0e\x86R" + _PLANT + b"b.",
        _g("transformers.trainer_utils.HPSearchBackend") + _s("optuna") + b"\x85R" + _PLANT + b"b.",
        _g("pandas._libs.tslibs.nattype._nat_unpickle") + b")R" + _PLANT + b"b.",
    ],
    ids=[
        "reduce",
        "newobj",
        "copyreg_newobj",
        "set_obj_state",
        "http_status",
        "tzutc",
        "tzoffset",
        "ecosystem_enum",
        "pandas_nat",
    ],
)
def test_state_set_on_a_shared_enum_member_or_cached_instance_is_critical(body: bytes) -> None:
    result = analyze_pickle_bytes(b"\x80\x02" + body)
    assert any(f.rule_id == "LW-MODEL-009" and f.severity is Severity.CRITICAL for f in result.findings), (
        result.findings
    )


def test_state_set_on_an_enum_member_changes_it_for_the_whole_process() -> None:
    """The real unpickler sets the attribute on re.IGNORECASE itself (in a child: it would stay planted here)."""
    import subprocess
    import sys

    body = b"\x80\x02" + _g("re.RegexFlag") + b"K\x02\x85R" + _PLANT + b"b."
    code = f"import pickle, re; pickle.loads({body!r}); print(re.IGNORECASE.planted)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "7"


def test_enum_members_and_time_zones_pickled_whole_stay_clean(tmp_path: Path) -> None:
    import datetime
    import re

    values: dict[str, Any] = {"flags": [re.I, re.I | re.M, re.NOFLAG]}
    tz = pytest.importorskip("dateutil.tz")
    values["dateutil"] = [datetime.datetime(2020, 1, 1, tzinfo=tz.tzutc()), tz.tzoffset("X", 3600)]
    pd = pytest.importorskip("pandas")
    values["nat"] = [pd.NaT, pd.Series([pd.NaT, pd.Timestamp("2020")], dtype=object)]
    for name, value in values.items():
        _all_protocols_clean(tmp_path, name, value)
