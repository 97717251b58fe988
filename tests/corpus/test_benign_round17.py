"""Round 17: benign objects of real libraries the scanner still reported, now clean.

Each is built with the real library (skipped when it is missing) and must scan clean in every form a real pickler
writes it (protocols 2, 4 and 5 and a joblib dump; ``torch.save`` for the torch object):

* ``scipy.spatial.SphericalVoronoi`` (2-D and 3-D, sorted or not): LW-MODEL-005 high. Admitted with a check of the
  regions and simplices its compiled sorting trusts (``test_redteam_round17_state.py``);
* ``scipy.optimize.NonlinearConstraint`` and the quasi-Newton Hessian approximations its ``hess`` holds (``BFGS``,
  ``SR1``): high. Plain ``__dict__`` objects; the constraint keeps its function by reference, judged by its own
  name (a numpy ufunc here is clean; a user's function stays reported, as any callable a pickle names);
* ``scipy.stats.CensoredData``: high; arrays of observations;
* ``torch._guards.CompileId``: high; a frozen slots dataclass of three optional ints;
* transformers' watermarking, Whisper timestamp, Bark, Dia and alternating-codebook logits processors: high;
  numbers, token ids and tensors (the watermarking one's ``vocab_size`` is bounded: ``test_redteam_round17_state.py``);
* SciPy's namedtuple test results (``mode``, ``levene``, ``shapiro``, ``mannwhitneyu``, ``binned_statistic``...) and
  ``binomtest``'s result: high.

``LinearConstraint``, ``Bounds``, the frozen distributions, the interpolators, the sparse formats and the signal
systems were clean already (round 16 pins them); so were transformers' ``GenerationConfig`` and quantization
configs, pinned here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from test_benign_round16_torch import _save_and_scan
from test_redteam_round15_sklearn import _all_clean

np = pytest.importorskip("numpy")
pytest.importorskip("scipy")
pytest.importorskip("joblib")

_RNG = np.random.default_rng(17)


def _on_sphere(n: int, dim: int = 3) -> Any:
    points = _RNG.normal(size=(n, dim))
    return points / np.linalg.norm(points, axis=1)[:, None]


@pytest.mark.parametrize(
    "make",
    [
        lambda s: s.SphericalVoronoi(_on_sphere(20)),
        lambda s: s.SphericalVoronoi(_on_sphere(50) * 2.5 + 1, radius=2.5, center=np.ones(3)),
        lambda s: s.SphericalVoronoi(_on_sphere(12, 2)),  # on a circle: no compiled sorting
        lambda s: s.SphericalVoronoi(_on_sphere(3000)),  # 18,000 region entries
    ],
)
@pytest.mark.parametrize("sort", [False, True])
def test_spherical_voronoi_scans_clean(make: Any, sort: bool) -> None:
    spatial = pytest.importorskip("scipy.spatial")
    diagram = make(spatial)
    if sort and diagram._dim == 3:
        diagram.sort_vertices_of_regions()
        diagram.calculate_areas()
    _all_clean(diagram)


def test_nonlinear_constraints_scan_clean() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    _all_clean(optimize.NonlinearConstraint(np.sin, -1, 1))
    _all_clean(
        optimize.NonlinearConstraint(np.cos, [0, 0], [1, np.inf], hess=optimize.SR1(), keep_feasible=True)
    )
    _all_clean(
        optimize.NonlinearConstraint(np.exp, -np.inf, 2.0, jac="3-point", hess=optimize.BFGS("damp_update"))
    )


def test_hessian_update_strategies_scan_clean() -> None:
    optimize = pytest.importorskip("scipy.optimize")
    bfgs = optimize.BFGS()
    bfgs.initialize(3, "hess")
    bfgs.update(np.ones(3), np.arange(3.0) + 1)
    sr1 = optimize.SR1(init_scale=2.0)
    sr1.initialize(2, "inv_hess")
    for strategy in (optimize.BFGS(), optimize.SR1(), bfgs, sr1):
        _all_clean(strategy)


def test_censored_data_scans_clean() -> None:
    stats = pytest.importorskip("scipy.stats")
    _all_clean(stats.CensoredData(uncensored=[1.0, 2.0, 3.0], right=[4.0, 5.0]))
    _all_clean(stats.CensoredData.interval_censored(low=[1.0, 2.0], high=[3.0, 4.0]))
    _all_clean(stats.CensoredData.left_censored([1.0, 2.0, 3.0], [False, True, False]))


def test_compile_id_scans_clean(tmp_path: Path) -> None:
    guards = pytest.importorskip("torch._guards")
    _all_clean(guards.CompileId(frame_id=0, frame_compile_id=1))
    _save_and_scan(tmp_path, "compile-id", lambda: guards.CompileId(frame_id=3, frame_compile_id=0))
    _save_and_scan(
        tmp_path,
        "compiled-autograd-id",
        lambda: {"ids": [guards.CompileId(compiled_autograd_id=1, frame_id=None, frame_compile_id=None)]},
    )


def _configs() -> dict[str, Any]:
    transformers = pytest.importorskip("transformers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "generation": transformers.GenerationConfig(max_new_tokens=5, do_sample=True, top_k=3),
            "generation-default": transformers.GenerationConfig(),
            "bnb-4bit": transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4"),
            "gptq": transformers.GPTQConfig(bits=4),
            "awq": transformers.AwqConfig(),
            "quanto": transformers.QuantoConfig(),
        }


@pytest.mark.parametrize("name", ["generation", "generation-default", "bnb-4bit", "gptq", "awq", "quanto"])
def test_generation_and_quantization_configs_scan_clean(tmp_path: Path, name: str) -> None:
    config = _configs()[name]
    _save_and_scan(tmp_path, name, lambda: config)


def _processors() -> dict[str, Any]:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    lp = transformers.generation.logits_process
    whisper = transformers.GenerationConfig(no_timestamps_token_id=50363, max_initial_timestamp_index=50)
    whisper.eos_token_id = 50257
    return {
        "watermark": lambda: lp.WatermarkLogitsProcessor(100, "cpu"),
        "watermark-selfhash": lambda: lp.WatermarkLogitsProcessor(32_000, "cpu", seeding_scheme="selfhash"),
        "alternating-codebooks": lambda: lp.AlternatingCodebooksLogitsProcessor(5, 100, 10),
        "bark-eos": lambda: lp.BarkEosPrioritizerLogitsProcessor(5, 0.5),
        "dia-cfg": lambda: lp.DiaClassifierFreeGuidanceLogitsProcessor(3.0, guidance_top_k=50),
        "dia-eos-channel": lambda: lp.DiaEOSChannelFilterLogitsProcessor(4, 10),
        "whisper-timestamps": lambda: lp.WhisperTimeStampLogitsProcessor(whisper, begin_index=3),
        "list": lambda: lp.LogitsProcessorList(
            [lp.WatermarkLogitsProcessor(50, "cpu"), lp.BarkEosPrioritizerLogitsProcessor([5, 6], 0.2)]
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "watermark",
        "watermark-selfhash",
        "alternating-codebooks",
        "bark-eos",
        "dia-cfg",
        "dia-eos-channel",
        "whisper-timestamps",
        "list",
    ],
)
def test_more_logits_processors_scan_clean(tmp_path: Path, name: str) -> None:
    """transformers' logits processors reviewed this round (LW-MODEL-005 high before), saved whole."""
    _save_and_scan(tmp_path, name, _processors()[name])


def _test_results() -> dict[str, Any]:
    """SciPy 1.17 test results: collections.namedtuple classes and binomtest's result, which were reported."""
    stats = pytest.importorskip("scipy.stats")
    mstats = pytest.importorskip("scipy.stats.mstats")
    x = _RNG.normal(size=50)
    y = x + _RNG.normal(size=50)
    return {
        "mode": stats.mode([1, 2, 2, 3]),
        "levene": stats.levene(x, y),
        "shapiro": stats.shapiro(x),
        "mannwhitneyu": stats.mannwhitneyu(x, y),
        "binomtest": stats.binomtest(3, 10),
        "bartlett": stats.bartlett(x, y),
        "fligner": stats.fligner(x, y),
        "ansari": stats.ansari(x, y),
        "kruskal": stats.kruskal(x, y),
        "f_oneway": stats.f_oneway(x, y),
        "normaltest": stats.normaltest(x),
        "ranksums": stats.ranksums(x, y),
        "brunnermunzel": stats.brunnermunzel(x, y),
        "friedmanchisquare": stats.friedmanchisquare(x, y, 2 * x),
        "power_divergence": stats.power_divergence([16, 18, 16, 14, 12, 12]),
        "cumfreq": stats.cumfreq(x),
        "sigmaclip": stats.sigmaclip(x),
        "binned_statistic": stats.binned_statistic(x, y),
        "binned_statistic_2d": stats.binned_statistic_2d(x, y, y),
        "binned_statistic_dd": stats.binned_statistic_dd(np.c_[x, y], y),
        "bayes_mvs": stats.bayes_mvs(x),
        "epps_singleton_2samp": stats.epps_singleton_2samp(x, y),
        "mstats.ttest_ind": mstats.ttest_ind(x, y),
        "mstats.kruskal": mstats.kruskal(x, y),
    }


def test_scipy_test_results_scan_clean() -> None:
    for result in _test_results().values():
        _all_clean(result)


def _exported(dims: str) -> Any:
    torch = pytest.importorskip("torch")
    from torch.export import Dim, export

    class Twice(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x * 2 + 1

    shapes = {
        "bounded": {"x": {0: Dim("batch", min=2, max=64)}},
        "auto": {"x": {0: Dim.AUTO}},
        "unbounded": {"x": {0: Dim("batch"), 1: Dim("width")}},
    }[dims]
    return export(Twice(), (torch.randn(4, 3),), dynamic_shapes=shapes)


@pytest.mark.parametrize("dims", ["bounded", "auto", "unbounded"])
def test_an_exported_program_with_dynamic_shapes_scans_clean(tmp_path: Path, dims: str) -> None:
    """``torch.save`` of a ``torch.export`` program with dynamic dimensions: its ``range_constraints`` map sympy
    symbols to ``ValueRanges`` of sympy integers or torch's infinities; all of it was reported (sympy as code
    execution, and the symbols' protocol 2 form ``partial(getattr(Symbol, '__new__'))`` as name resolution)."""
    program = _exported(dims)
    _save_and_scan(tmp_path, f"exported-{dims}", lambda: program)
    _all_clean(program.range_constraints)
