"""Round 17: state the code of newly admitted objects trusts: SciPy's ``SphericalVoronoi``, transformers'
``WatermarkLogitsProcessor``.

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
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_benign_round15_zoo import _scan
from test_redteam_round13_pickle import _killed_loading
from test_redteam_round14b_kept import _clean, _high

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity

np = pytest.importorskip("numpy")

_AREAS = "loaded.calculate_areas()"


def _voronoi() -> Any:
    spatial = pytest.importorskip("scipy.spatial")
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


_WATERMARK_STEP = """
import resource, sys, torch
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
loaded = torch.load(sys.argv[1], weights_only=False)
try:
    loaded(torch.tensor([[1, 2, 3]]), torch.zeros(1, 100))
except (RuntimeError, MemoryError) as error:
    print("refused:", type(error).__name__)
else:
    print("ran")
"""


def _watermark_step(path: Path) -> subprocess.CompletedProcess[str]:
    """One generation step of the saved processor, in a child limited to 4 GiB of address space."""
    return subprocess.run(
        [sys.executable, "-c", _WATERMARK_STEP, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("size", [1 << 33, 0, -5])
def test_a_watermark_vocabulary_the_state_sizes_is_reported(tmp_path: Path, size: int) -> None:
    """transformers' ``WatermarkLogitsProcessor`` (admitted this round) draws ``torch.randperm(vocab_size)`` at
    every step: the pickle sizes that allocation. An edited ``vocab_size`` of 2**33 asks for 64 GiB at the first
    step (refused in a child limited to 4 GiB of address space; unlimited, it exhausts the machine's memory)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    processor = transformers.WatermarkLogitsProcessor(100, "cpu")
    path = tmp_path / "watermark.pt"
    torch.save(processor, path)
    assert _scan(path) == []
    run = _watermark_step(path)
    assert run.stdout.strip() == "ran", run.stderr[-2000:]
    processor.vocab_size = size
    torch.save(processor, path)
    found = _scan(path)
    assert any(
        rule == "LW-MODEL-017" and severity is Severity.HIGH and f"vocab_size {size}" in message
        for rule, severity, message in found
    ), found
    if size == 1 << 33:
        run = _watermark_step(path)
        assert "refused" in run.stdout or run.returncode != 0, (run.stdout, run.stderr[-2000:])


def test_a_constraint_function_admitted_for_rebuilding_only_is_reported() -> None:
    """A ``NonlinearConstraint`` (admitted this round) keeps the functions ``minimize`` calls on its iterates. A
    name the allow-list admits only to be kept (scikit-learn's k-means run, whose Cython loops trust the shapes of
    what they are handed) is reported; a wrapper the scanner does not judge (a ``functools.partial`` binding its
    arguments) leaves the file unverified; a numpy ufunc stays clean (tests/corpus/test_benign_round17.py)."""
    import functools

    optimize = pytest.importorskip("scipy.optimize")
    kmeans = pytest.importorskip("sklearn.cluster._kmeans")
    kept = optimize.NonlinearConstraint(kmeans._kmeans_single_lloyd, -1, 1)
    assert _high(analyze_pickle_bytes(pickle.dumps(kept, protocol=4)), "admits for rebuilding only")
    bound = functools.partial(kmeans._kmeans_single_lloyd, centers_init=np.zeros((3, 1)))
    for constraint, found in (
        (optimize.NonlinearConstraint(bound, -1, 1), ["LW-MODEL-005"]),
        (optimize.NonlinearConstraint(np.sin, -1, 1, jac=bound), ["LW-MODEL-005"]),
        (optimize.NonlinearConstraint(np.sin, -1, 1, hess=functools.partial(np.add, 1)), []),
    ):
        result = analyze_pickle_bytes(pickle.dumps(constraint, protocol=2))
        assert result.unverified is not None and "the scanner does not judge" in result.unverified
        # a partial over a name admitted to be kept only is reported where it is made, whoever holds it
        assert [f.rule_id for f in result.findings] == found, result.findings


_TRANSFORM = "import numpy; loaded.transform(numpy.ones((2000, 200)))"


def _heap_corrupted(data: bytes) -> bool:
    """Whether ``pickle.loads(data).transform(X)`` kills a child by a signal or leaves it hung: k-means' loop writes
    past its heap block, and glibc then aborts, faults, or (its allocator's lock corrupted) never returns."""
    code = f"import pickle, sys; loaded = pickle.loads(sys.stdin.buffer.read()); {_TRANSFORM}"
    for _ in range(3):
        try:
            run = subprocess.run(
                [sys.executable, "-c", code], input=data, capture_output=True, timeout=30, check=False
            )
        except subprocess.TimeoutExpired:
            return True
        if run.returncode < 0:
            return True
    return False


def _narrow_centers() -> dict[str, Any]:
    """Keywords for k-means' Lloyd run: one column of centers where transform hands it 200."""
    return {"sample_weight": np.ones(2000), "centers_init": np.zeros((1000, 1)), "max_iter": 1}


def _transformer_keeping_lloyd() -> Any:
    """``FunctionTransformer(func=k-means' Lloyd run, kw_args=narrow centers)``: transform(X) writes past a heap
    block."""
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    kmeans = pytest.importorskip("sklearn.cluster._kmeans")
    return preprocessing.FunctionTransformer(kmeans._kmeans_single_lloyd, kw_args=_narrow_centers())


def _partial_over_lloyd() -> Any:
    """k-means' Lloyd run bound to narrow centers by a ``functools.partial`` (what a ``collate_fn`` may hold)."""
    import functools

    kmeans = pytest.importorskip("sklearn.cluster._kmeans")
    return functools.partial(kmeans._kmeans_single_lloyd, **_narrow_centers())


def test_a_function_transformer_keeping_a_rebuild_only_function_is_reported() -> None:
    """Confirmed miss: ``FunctionTransformer(func=sklearn.cluster._kmeans._kmeans_single_lloyd, kw_args=...)``
    scanned clean (the function is admitted because ``BisectingKMeans`` keeps it), and ``transform(X)`` runs
    ``func(X, **kw_args)``: centers narrower than X made the Cython loop write past the heap block (SIGSEGV, a
    glibc abort, or a hang on the corrupted allocator, scikit-learn 1.9). Any scikit-learn attribute holding a name
    admitted only to be kept is reported now, but where scikit-learn keeps it (``BisectingKMeans._kmeans_single``, a
    search's ``scorer_``)."""
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    kmeans = pytest.importorskip("sklearn.cluster._kmeans")
    model = _transformer_keeping_lloyd()
    for protocol in (2, 5):
        data = pickle.dumps(model, protocol=protocol)
        result = analyze_pickle_bytes(data)
        assert any(
            f.rule_id == "LW-MODEL-005"
            and f.severity is Severity.HIGH
            and "keeps sklearn.cluster._kmeans._kmeans_single_lloyd as" in f.message
            for f in result.findings
        ), result.findings
    assert _heap_corrupted(data)
    inverse = preprocessing.FunctionTransformer(np.log1p, inverse_func=kmeans._kmeans_single_elkan)
    assert any(
        "_kmeans_single_elkan as" in f.message for f in analyze_pickle_bytes(pickle.dumps(inverse)).findings
    )


def test_a_partial_over_a_rebuild_only_function_is_reported() -> None:
    """The same function bound by a ``functools.partial`` (``FunctionTransformer(func=partial(...))``, a
    ``DataLoader``'s ``collate_fn``...): reported where the partial is made, whoever holds it."""
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    bound = _partial_over_lloyd()
    for obj in (preprocessing.FunctionTransformer(bound), {"collate_fn": bound}):
        data = pickle.dumps(obj, protocol=4)
        assert any(
            f.rule_id == "LW-MODEL-005" and "functools.partial binding arguments to" in f.message
            for f in analyze_pickle_bytes(data).findings
        )
    assert _heap_corrupted(pickle.dumps(preprocessing.FunctionTransformer(bound)))


def test_where_scikit_learn_keeps_those_functions_stays_clean() -> None:
    cluster = pytest.importorskip("sklearn.cluster")
    x = np.random.default_rng(0).random((60, 3))
    for algorithm in ("lloyd", "elkan"):
        assert _clean(
            analyze_pickle_bytes(pickle.dumps(cluster.BisectingKMeans(3, algorithm=algorithm).fit(x)))
        )


def _range_constraints() -> bytes:
    """The ``range_constraints`` of a program exported with one bounded dynamic dimension, as protocol 2 pickles
    them: the symbol by ``partial(getattr(Symbol, '__new__'))`` given ``(Symbol, 's77')`` and two assumptions."""
    torch = pytest.importorskip("torch")
    from torch.export import Dim, export

    class Twice(torch.nn.Module):
        def forward(self, x: Any) -> Any:
            return x * 2

    program = export(Twice(), (torch.randn(4, 3),), dynamic_shapes={"x": {0: Dim("batch", min=2, max=64)}})
    data = pickle.dumps(program.range_constraints, protocol=2)
    assert _clean(analyze_pickle_bytes(data))
    return data


def _symbol_name(data: bytes) -> bytes:
    start = data.index(b"Symbol\n")
    at = data.index(b"X", data.index(b"X\x07\x00\x00\x00__new__", start) + 12)
    return data[at : at + 5 + int.from_bytes(data[at + 1 : at + 5], "little")]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d, name: d.replace(name, b"K\x05"), "given arguments [5]"),
        (
            lambda d, name: d.replace(b"X\x08\x00\x00\x00positive", b"X\x08\x00\x00\x00__init__"),
            "an assumption",
        ),
        (lambda d, name: d.replace(b"h\x03" + name, b"cos\nsystem\n" + name), "called on os.system"),
    ],
    ids=["name", "assumption", "class"],
)
def test_an_edited_sympy_symbol_is_reported(edit: Any, expected: str) -> None:
    """Round 17 models ``Symbol.__new__`` on ``Symbol`` with a string name and sympy's boolean assumptions: any
    other argument, assumption or class is reported (sympy itself stays code execution: ``sympify`` evaluates)."""
    data = _range_constraints()
    edited = edit(data, _symbol_name(data))
    assert edited != data
    findings = analyze_pickle_bytes(edited).findings
    assert any(f.severity >= Severity.HIGH and expected in f.message for f in findings), findings


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x02csympy\nsympify\nX\x01\x00\x00\x00x\x85R.",
        b"\x80\x02csympy.core.add\nAdd\nK\x01K\x02\x86R.",
        b"\x80\x02c__builtin__\ngetattr\ncsympy.core.symbol\nSymbol\nX\x05\x00\x00\x00subs_\x86R.",
    ],
    ids=["sympify", "Add", "method"],
)
def test_the_rest_of_sympy_stays_reported(payload: bytes) -> None:
    findings = analyze_pickle_bytes(payload).findings
    assert any(f.severity >= Severity.HIGH for f in findings), findings


def test_a_program_with_derived_dimensions_stays_reported(tmp_path: Path) -> None:
    """A derived dimension (``d + 1``) adds a sympy ``Add`` and guards code ``ep.module()`` compiles: reported."""
    torch = pytest.importorskip("torch")
    from torch.export import Dim, export

    class Joined(torch.nn.Module):
        def forward(self, x: Any, y: Any) -> Any:
            return torch.cat([x, y], 0)

    d = Dim("d", min=1, max=100)
    program = export(
        Joined(), (torch.randn(4, 3), torch.randn(5, 3)), dynamic_shapes={"x": {0: d}, "y": {0: d + 1}}
    )
    path = tmp_path / "derived.pt"
    torch.save(program, path)
    assert any(severity is Severity.CRITICAL for _, severity, _ in _scan(path))
