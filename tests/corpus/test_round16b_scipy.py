"""Round 16b: SciPy objects round 16 left reported or unchecked.

SciPy's test results (``scipy.stats.linregress(x, y)``, ``kstest``, ``pearsonr`` ...) are tuple bunches made by
``scipy._lib._bunch._make_tuple_bunch``. With extra fields they pickle by ``copyreg.__newobj_ex__``, which protocols 2
and 3 (``torch.save``'s default is 2) write as ``functools.partial(getattr(cls, '__new__'))`` given the state
``(that __new__, (cls, *fields), extra, None)`` and called with no arguments. Those were reported (the partial, the
``getattr``, the dunder, the BUILD on the partial); the VM now models exactly that ``__new__``, of an allowed bunch,
called on its own class, as NEWOBJ of the class. Any other attribute, class or first argument stays reported.

``scipy.stats.qmc.Sobol`` (and ``MultivariateNormalQMC``, which holds one) was reported as not allow-listed. Its
Cython ``_draw`` loops ``d`` dimensions over ``_sv`` and ``_quasi`` with bounds checks off: an edited ``d`` or a short
``_quasi`` kills the real loader at the first ``random``. It is now allowed with a check of that state, and so is
``Halton``, whose Cython scrambling reads its permutations at the digits of the point count in each base.
The state checks of trusted classes read every form of BUILD state (a ``(state, slotstate)`` pair passed them).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import pytest
from test_redteam_round13_pickle import _killed_loading
from test_redteam_round14b_kept import _clean

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity

np = pytest.importorskip("numpy")
stats = pytest.importorskip("scipy.stats")

_RNG = np.random.default_rng(3)
_X = _RNG.random(30)
_Y = 2 * _X + _RNG.random(30)


def _results() -> list[Any]:
    """Test results of the real SciPy, with and without extra fields."""
    return [
        stats.linregress(_X, _Y),
        stats.kstest(_X, "norm"),
        stats.ks_2samp(_X, _Y),
        stats.pearsonr(_X, _Y),
        stats.spearmanr(_X, _Y),
        stats.theilslopes(_Y, _X),
        stats.wilcoxon(_X - _Y),
    ]


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_scipy_test_results_scan_clean_with_every_protocol(protocol: int) -> None:
    for result in _results():
        data = pickle.dumps({"fit": result, "again": result}, protocol=protocol)
        scanned = analyze_pickle_bytes(data)
        assert _clean(scanned), (type(result).__name__, protocol, scanned.findings, scanned.unverified)
        assert pickle.loads(data)["fit"] == result


def test_torch_save_of_a_linregress_result_scans_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from loopwarden.checks.models.scanner import scan_paths

    path = tmp_path / "fit.pt"
    torch.save({"fit": stats.linregress(_X, _Y), "w": torch.ones(2)}, path)
    report = scan_paths([str(path)], jobs=1)
    assert [(t.verdict.value, t.findings) for t in report.targets] == [("clean", ())]
    assert torch.load(path, weights_only=False)["fit"] == stats.linregress(_X, _Y)


# --- the protocol-2 form, edited -------------------------------------------------------------------------------------

_PARTIAL = b"cfunctools\npartial\n"
_GETATTR = b"c__builtin__\ngetattr\n"
_LINREGRESS = b"cscipy.stats._stats_py\nLinregressResult\n"


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _bunch(cls: bytes = _LINREGRESS, attr: str = "__new__", first: bytes | None = None) -> bytes:
    """``partial(getattr(cls, attr))`` given the state ``(that, (first, 1.0 ... 5.0), None, None)`` and called with
    no arguments: what protocol 2 writes for a LinregressResult (``first`` is ``cls`` there)."""
    fields = b"".join(b"G" + np.float64(i).byteswap().tobytes() for i in range(5))
    return (
        b"\x80\x02"
        + _PARTIAL
        + _GETATTR
        + cls
        + b"q\x01"
        + _u(attr)
        + b"\x86R"  # getattr(cls, attr)
        + b"q\x02\x85R"  # partial(it)
        + b"(h\x02("
        + (b"h\x01" if first is None else first)
        + fields
        + b"tNNtb)R."
    )


def test_the_hand_built_protocol_2_form_is_the_real_one() -> None:
    data = _bunch()
    assert _clean(analyze_pickle_bytes(data))
    assert tuple(pickle.loads(data)) == (0.0, 1.0, 2.0, 3.0, 4.0)


@pytest.mark.parametrize(
    "data",
    [
        _bunch(attr="__init__"),
        _bunch(attr="__setattr__"),
        _bunch(attr="_asdict"),
        _bunch(cls=b"ccollections\nOrderedDict\n"),
        _bunch(cls=b"cscipy.stats._stats_py\nDescribeResult\n"),
        _bunch(cls=b"cscipy.stats\nLinregressResult\n"),  # not the exact allowed name
        _bunch(first=b"cscipy.stats._stats_py\nKstestResult\n"),  # another class's instance
        _bunch(first=b"ccollections\nOrderedDict\n"),
        _bunch(first=b"N"),
    ],
    ids=[
        "init",
        "setattr",
        "asdict",
        "other-class",
        "other-scipy-class",
        "alias-name",
        "new-on-another-bunch",
        "new-on-another-class",
        "new-on-none",
    ],
)
def test_anything_but_a_bunch_new_on_its_own_class_stays_reported(data: bytes) -> None:
    result = analyze_pickle_bytes(data)
    assert result.findings, result


def test_a_bunch_new_called_directly_on_its_class_is_newobj() -> None:
    """``getattr(cls, '__new__')(cls, *fields)`` by REDUCE is the same instance, judged as NEWOBJ of it."""
    fields = b"".join(b"G" + np.float64(i).byteswap().tobytes() for i in range(5))
    data = b"\x80\x02" + _GETATTR + _LINREGRESS + b"q\x01" + _u("__new__") + b"\x86R(h\x01" + fields + b"tR."
    assert _clean(analyze_pickle_bytes(data))
    assert tuple(pickle.loads(data)) == (0.0, 1.0, 2.0, 3.0, 4.0)
    other = data.replace(b"(h\x01", b"(ccollections\nOrderedDict\n")
    assert analyze_pickle_bytes(other).findings


def test_a_bunch_new_kept_in_a_container_is_not_called() -> None:
    """Held, never called: the instance it makes is judged wherever something calls it."""
    data = b"\x80\x02" + _GETATTR + _LINREGRESS + _u("__new__") + b"\x86R\x85."
    result = analyze_pickle_bytes(data)
    assert not any(f.rule_id == "LW-MODEL-007" for f in result.findings), result.findings


# --- scipy.stats.qmc.Sobol ------------------------------------------------------------------------------------------

qmc = pytest.importorskip("scipy.stats.qmc")


def _sobols() -> list[Any]:
    used = qmc.Sobol(d=4, seed=3)
    used.random(2**10)
    full = qmc.Sobol(d=2, bits=10, seed=3)
    full.random(2**10)  # every point of its sequence drawn: num_generated == maxn
    forward = qmc.Sobol(d=2, seed=3)
    forward.fast_forward(5)
    again = qmc.Sobol(d=2, seed=3)
    again.random(4)
    again.reset()
    return [
        qmc.Sobol(d=3, seed=1),
        qmc.Sobol(d=1, scramble=False),
        qmc.Sobol(d=5, bits=64, seed=2),  # uint64 direction numbers
        used,
        full,
        forward,
        again,
        qmc.MultivariateNormalQMC(mean=[0.0, 1.0], cov=[[1.0, 0.5], [0.5, 1.0]], seed=1),
        qmc.MultivariateNormalQMC(mean=[0.0, 1.0], inv_transform=False, seed=1),
    ]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_sobol_samplers_scan_clean(protocol: int) -> None:
    for engine in _sobols():
        scanned = analyze_pickle_bytes(pickle.dumps({"sampler": engine}, protocol=protocol))
        assert _clean(scanned), (protocol, scanned.findings, scanned.unverified)


def test_sobol_samplers_dumped_by_joblib_scan_clean() -> None:
    joblib = pytest.importorskip("joblib")
    for engine in _sobols():
        out = io.BytesIO()
        joblib.dump(engine, out)
        scanned = analyze_pickle_bytes(out.getvalue(), joblib=True)
        assert _clean(scanned), (scanned.findings, scanned.unverified)


def _edited_sobol(**state: Any) -> bytes:
    engine = qmc.Sobol(d=3, seed=1)
    engine.__dict__.update(state)
    return pickle.dumps(engine, protocol=4)


def _sobol_017(data: bytes) -> bool:
    return any(
        f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH and "qmc:sobol" in str(f.evidence)
        for f in analyze_pickle_bytes(data).findings
    )


def test_a_sobol_whose_d_exceeds_its_arrays_is_reported_and_kills_the_loader() -> None:
    """``_draw`` XORs ``_sv[j, l - 1]`` into ``_quasi[j]`` for ``j < d``: a large ``d`` writes far past ``_quasi``."""
    data = _edited_sobol(d=10**8)
    assert _sobol_017(data)
    assert _killed_loading(data, "loaded.random(2)")


def test_a_sobol_whose_quasi_is_short_is_reported_and_kills_the_loader() -> None:
    """Direction numbers and ``_shift`` for ``d`` dimensions, ``_quasi`` of one entry: written far past."""
    n = 200_000
    data = _edited_sobol(
        d=n,
        maxn=2,
        _sv=np.ones((n, 1), np.uint32),
        _shift=np.zeros(n, np.uint32),
        _quasi=np.zeros(1, np.uint32),
    )
    assert _sobol_017(data)
    assert _killed_loading(data, "loaded.random(2)")


@pytest.mark.parametrize(
    "state",
    [
        {"_sv": np.zeros((1, 30), np.uint32)},  # fewer rows of direction numbers than d
        {"_shift": np.zeros(1, np.uint32)},  # reset copies it into _quasi
        {"maxn": 2**62},  # the point count selects a column past the 30 there are
        {"num_generated": 2**31, "maxn": 2**30},
        {"num_generated": -1},
        {"d": -1},
    ],
    ids=["sv-rows", "shift", "maxn", "count-past-maxn", "negative-count", "negative-d"],
)
def test_sobol_states_outside_their_arrays_are_reported(state: dict[str, Any]) -> None:
    assert _sobol_017(_edited_sobol(**state))


def test_unreadable_or_uncheckable_sobol_states_are_not_clean() -> None:
    engine = qmc.Sobol(d=2, seed=1, optimization="random-cd")  # a partial SciPy calls on each sample
    assert not _clean(analyze_pickle_bytes(pickle.dumps(engine, protocol=4)))
    assert not _clean(analyze_pickle_bytes(_edited_sobol(d=np.int64(3))))
    assert not _clean(analyze_pickle_bytes(_edited_sobol(_sv=[[1, 2]])))


def test_a_multivariate_normal_sampler_holding_an_edited_sobol_is_reported() -> None:
    sampler = qmc.MultivariateNormalQMC(mean=[0.0, 1.0], seed=1)
    sampler.engine.d = 10**8
    assert _sobol_017(pickle.dumps(sampler, protocol=4))


def test_a_second_build_on_a_sobol_is_reported() -> None:
    """Each state alone passes; merged, the second could replace what the first was checked with."""
    data = pickle.dumps(qmc.Sobol(d=3, seed=1), protocol=2)
    assert data.endswith(b"b.")
    result = analyze_pickle_bytes(data[:-1] + b"}b.")
    assert not _clean(result)


# --- a checked state given as (state, slotstate) ---------------------------------------------------------------------


def _with_state(monkeypatch: pytest.MonkeyPatch, obj: Any, state: Any) -> bytes:
    """``obj`` pickled by the real pickler with the BUILD state ``state`` (NEWOBJ of its class, then BUILD)."""
    import copyreg

    cls = type(obj)
    monkeypatch.setattr(cls, "__reduce_ex__", lambda self, protocol: (copyreg.__newobj__, (cls,), state))
    try:
        return pickle.dumps(obj, protocol=4)
    finally:
        monkeypatch.undo()


def _bspline() -> Any:
    interpolate = pytest.importorskip("scipy.interpolate")
    return interpolate.BSpline(np.arange(10.0), np.ones(6), 3)


def test_a_sobol_state_split_into_state_and_slotstate_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unpickler sets the items of both parts of a ``(state, slotstate)`` pair; only dict states were checked
    (an edited Sobol given as ``(None, state)`` scanned clean and killed the loader)."""
    engine = qmc.Sobol(d=3, seed=1)
    state = {**vars(engine), "d": 10**8}
    data = _with_state(monkeypatch, engine, (None, state))
    assert _sobol_017(data)
    assert _killed_loading(data, "loaded.random(2)")
    assert _sobol_017(_with_state(monkeypatch, engine, ({}, state)))
    assert _sobol_017(_with_state(monkeypatch, engine, (state, None)))


@pytest.mark.parametrize("split", ["slots", "both", "dict-subclass"])
def test_an_edited_bspline_state_in_any_form_is_reported(monkeypatch: pytest.MonkeyPatch, split: str) -> None:
    """One coefficient for ten knots of degree 3: evaluation reads the coefficients past it (heap memory came back
    as values from the real loader, in every form)."""
    from collections import OrderedDict

    spline = _bspline()
    state = {**vars(spline), "_c": np.ones(1)}
    given: Any = {
        "slots": (None, state),
        "both": ({"k": 3}, {k: v for k, v in state.items() if k != "k"}),
        "dict-subclass": OrderedDict(state),
    }[split]
    result = analyze_pickle_bytes(_with_state(monkeypatch, spline, given))
    assert any(
        f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH and "bspline" in str(f.evidence)
        for f in result.findings
    ), result.findings


def test_split_states_as_scipy_would_have_them_scan_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    spline = _bspline()
    state = dict(vars(spline))
    for given in [(None, state), ({"k": 3}, {k: v for k, v in state.items() if k != "k"}), (state, None)]:
        result = analyze_pickle_bytes(_with_state(monkeypatch, spline, given))
        assert _clean(result), (given, result.findings, result.unverified)
    engine = qmc.Sobol(d=3, seed=1)
    assert _clean(analyze_pickle_bytes(_with_state(monkeypatch, engine, (None, dict(vars(engine))))))


def test_a_split_state_setting_an_attribute_twice_is_not_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = qmc.Sobol(d=3, seed=1)
    data = _with_state(monkeypatch, engine, ({"d": 3}, {**vars(engine), "d": 10**8}))
    assert not _clean(analyze_pickle_bytes(data))


# --- scipy.stats.qmc.Halton -----------------------------------------------------------------------------------------


def _haltons() -> list[Any]:
    used = qmc.Halton(d=3, seed=3)
    used.random(100)
    again = qmc.Halton(d=3, seed=3)
    again.random(100)
    again.reset()
    return [
        qmc.Halton(d=2, seed=1),
        qmc.Halton(d=7, scramble=False),
        qmc.Halton(d=30, seed=2),
        used,
        again,
        qmc.MultivariateNormalQMC(mean=[0.0, 1.0], engine=qmc.Halton(d=2, seed=3)),
    ]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_halton_samplers_scan_clean(protocol: int) -> None:
    for engine in _haltons():
        scanned = analyze_pickle_bytes(pickle.dumps({"sampler": engine}, protocol=protocol))
        assert _clean(scanned), (protocol, scanned.findings, scanned.unverified)


def _halton_017(data: bytes) -> bool:
    return any(
        f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH and "qmc:halton" in str(f.evidence)
        for f in analyze_pickle_bytes(data).findings
    )


def test_a_halton_whose_base_exceeds_its_permutations_is_reported_and_kills_the_loader() -> None:
    """The scrambled loop reads ``permutations[j, digit]``: a digit of a huge base reads far past a 1-wide array."""
    engine = qmc.Halton(d=1, seed=1)
    engine.__dict__.update(base=[10**9], _permutations=[np.zeros((2, 1), np.int64)], num_generated=10**8)
    data = pickle.dumps(engine, protocol=4)
    assert _halton_017(data)
    assert _killed_loading(data, "loaded.random(4)")


@pytest.mark.parametrize(
    "state",
    [
        {
            "_permutations": [np.zeros((1, 1), np.int64), np.zeros((1, 1), np.int64)]
        },  # heap values came back in the sample
        {"num_generated": -1},
    ],
    ids=["narrow-permutations", "negative-count"],
)
def test_halton_states_outside_their_permutations_are_reported(state: dict[str, Any]) -> None:
    engine = qmc.Halton(d=2, seed=1)
    engine.__dict__.update(state)
    assert _halton_017(pickle.dumps(engine, protocol=4))


def test_unreadable_halton_states_are_not_clean() -> None:
    engine = qmc.Halton(d=2, seed=1)
    engine.__dict__.update(base=[np.int64(2), 3])
    assert not _clean(analyze_pickle_bytes(pickle.dumps(engine, protocol=4)))
    engine = qmc.Halton(d=2, seed=1)
    engine.__dict__.update(_permutations=[np.zeros(5), np.zeros(5)])
    assert not _clean(analyze_pickle_bytes(pickle.dumps(engine, protocol=4)))
    engine = qmc.Halton(d=2, seed=1)
    engine.__dict__.update(_permutations=[p.astype(object) for p in engine._permutations])
    assert not _clean(analyze_pickle_bytes(pickle.dumps(engine, protocol=4)))


# --- Latin hypercube and Poisson disk samplers ----------------------------------------------------------------------


def _method_holders() -> list[Any]:
    disk = qmc.PoissonDisk(d=2, seed=1, radius=0.2)
    disk.random(5)
    cube = qmc.LatinHypercube(d=2, seed=1)
    cube.random(8)
    return [
        qmc.LatinHypercube(d=2, seed=1),
        qmc.LatinHypercube(d=3, strength=2, seed=1),  # _random_oa_lhs
        qmc.LatinHypercube(d=3, scramble=False),
        qmc.PoissonDisk(d=2, seed=1),
        qmc.PoissonDisk(d=2, hypersphere="surface", seed=1, radius=0.1),
        disk,
        cube,
    ]


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_samplers_holding_their_own_bound_methods_scan_clean(protocol: int) -> None:
    """Their sampling method is a bound method of themselves, pickled as ``getattr(self, name)``: Python and
    numpy code, allowed by its exact name."""
    for engine in _method_holders():
        scanned = analyze_pickle_bytes(pickle.dumps({"sampler": engine}, protocol=protocol))
        assert _clean(scanned), (type(engine).__name__, protocol, scanned.findings, scanned.unverified)


@pytest.mark.parametrize("name", ["__init__", "random", "_initialize", "reset", "fill_space"])
def test_other_methods_of_the_samplers_stay_reported(name: str) -> None:
    """Only the named sampling methods are allowed: a sampler holding any other of its methods is reported."""
    holder = qmc.PoissonDisk(d=2, seed=1)
    holder.hypersphere_method = getattr(holder, name)
    assert analyze_pickle_bytes(pickle.dumps(holder, protocol=4)).findings
