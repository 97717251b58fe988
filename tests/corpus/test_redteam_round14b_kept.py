"""Round 14b: objects kept by reference, and changed (or first given their state) after the check of what keeps them.

pandas' ``Categorical`` keeps its ``CategoricalDtype`` and its codes array, a ``BlockPlacement`` keeps its int64
array, a scikit-learn estimator keeps its trees: each check judged the parts as they stood when the holder was
built. A later BUILD through the memo (a second one, or the first one, given after the holder's) changed what the
real loader then reads, and the files below were clean while the real unpickler (or the first use of what it
returned) crashed. No pickler writes an object's BUILD after that of what holds it, nor two BUILDs on one object.
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import Any

import pytest
from test_redteam_round13_pickle import _killed_loading

from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.domain import Severity


def _high(result: PickleResult, text: str) -> bool:
    return any(
        f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH and text in f.message
        for f in result.findings
    )


def _clean(result: PickleResult) -> bool:
    return not result.findings and not result.unverified


# --- hand-built pickle pieces (protocol 2) -------------------------------------------------------------------------


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _bytes(raw: bytes) -> bytes:
    return b"C" + bytes([len(raw)]) + raw if len(raw) < 256 else b"B" + struct.pack("<I", len(raw)) + raw


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _put(k: int) -> bytes:
    return b"q" + bytes([k])


def _get(k: int) -> bytes:
    return b"h" + bytes([k])


def _dtype(code: str) -> bytes:
    order = "|" if code == "i1" else "<"
    return (
        _g("numpy", "dtype")
        + _u(code)
        + b"\x89\x88\x87R(K\x03"
        + _u(order)
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )


def _empty(spec: bytes = _bytes(b"b")) -> bytes:
    """``_reconstruct(ndarray, (0,), spec)`` without its BUILD: numpy's first step for every array."""
    return (
        _g("numpy.core.multiarray", "_reconstruct") + _g("numpy", "ndarray") + b"K\x00\x85" + spec + b"\x87R"
    )


def _state(shape: tuple[int, ...], code: str, raw: bytes) -> bytes:
    dims = b"".join(b"J" + struct.pack("<i", d) for d in shape)
    return b"(K\x01(" + dims + b"t" + _dtype(code) + b"\x89" + _bytes(raw) + b"tb"


def _array(shape: tuple[int, ...], code: str, raw: bytes) -> bytes:
    return _empty() + _state(shape, code, raw)


def _range_index(stop: int) -> bytes:
    return (
        _g("pandas.core.indexes.base", "_new_Index")
        + _g("pandas", "RangeIndex")
        + b"}("
        + _u("start")
        + b"K\x00"
        + _u("stop")
        + b"\x8a\x08"
        + stop.to_bytes(8, "little")
        + _u("step")
        + b"K\x01"
        + _u("name")
        + b"Nu\x86R"
    )


def _float_index(values: list[float]) -> bytes:
    raw = struct.pack(f"<{len(values)}d", *values)
    return (
        _g("pandas.core.indexes.base", "_new_Index")
        + _g("pandas", "Index")
        + b"}("
        + _u("data")
        + _array((len(values),), "f8", raw)
        + _u("name")
        + b"Nu\x86R"
    )


def _categorical_dtype_state(categories: bytes) -> bytes:
    return b"}(" + _u("categories") + categories + _u("ordered") + b"\x89ub"


# --- a pandas Categorical's codes past its categories --------------------------------------------------------------


def _categorical_with_codes(codes: list[int], code_dtype: str) -> Any:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    cat = pd.Categorical([1.5, 2.5, 1.5])
    return cat._from_backing_data(np.array(codes, dtype=code_dtype))


def test_categorical_codes_past_the_categories_are_reported() -> None:
    """pandas' own pickle of a Categorical whose int64 codes reach 2**40 of 2 categories: nothing checks the codes
    when it is unpickled, and ``np.asarray`` takes the categories at each code unchecked."""
    data = pickle.dumps(_categorical_with_codes([0, 1, 1 << 40], "i8"), protocol=2)
    assert _high(analyze_pickle_bytes(data), "pandas.Categorical with a code 1099511627776 for 2 categories")
    assert _killed_loading(data, "import numpy; numpy.asarray(loaded)")


def test_categorical_codes_in_a_data_frame_are_reported() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"x": _categorical_with_codes([0, 1, 1 << 40], "i8")})
    data = pickle.dumps(frame, protocol=5)
    assert _high(analyze_pickle_bytes(data), "pandas.Categorical with a code")
    assert _killed_loading(data, "loaded.to_numpy()")


def test_categorical_int8_code_past_the_categories_is_reported() -> None:
    """pandas' usual int8 codes: 127 of 2 categories reads past them (no crash, a wrong value)."""
    data = pickle.dumps(_categorical_with_codes([0, 1, 127], "i1"), protocol=2)
    assert _high(analyze_pickle_bytes(data), "a code 127 for 2 categories")


def test_categorical_code_below_minus_one_is_reported() -> None:
    data = pickle.dumps(_categorical_with_codes([0, -5, 1], "i1"), protocol=2)
    assert _high(analyze_pickle_bytes(data), "a code -5 below -1")


def test_benign_categoricals_stay_clean() -> None:
    """Categories as pandas pickles them: numpy floats and ints, arrow strings, datetimes, intervals, a range,
    missing values only, none; in a Series, a DataFrame, a CategoricalIndex."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    values = [
        pd.Categorical([1.5, 2.5, 1.5]),
        pd.Categorical([1, 2, 3, 1]),
        pd.Categorical(["x", "y", "x", None]),
        pd.Categorical([f"s{i}" for i in range(300)]),
        pd.Categorical(pd.to_datetime(["2020-01-01", "2021-01-01"])),
        pd.Categorical(pd.interval_range(0, 3)),
        pd.Categorical.from_codes([0, 1, 2], categories=pd.RangeIndex(3)),
        pd.Categorical([np.nan, np.nan]),
        pd.Categorical([]),
        pd.Categorical(["lo", "hi"], categories=["lo", "hi"], ordered=True),
        pd.CategoricalIndex(["a", "b", "a"]),
        pd.Series(pd.Categorical([True, False])),
        pd.DataFrame({"a": pd.Categorical(["x", "y"]), "b": [1, 2]}),
    ]
    for value in values:
        for protocol in (2, 5):
            result = analyze_pickle_bytes(pickle.dumps(value, protocol=protocol))
            assert _clean(result), (value, protocol, result.findings, result.unverified)


# --- a CategoricalDtype changed after the Categorical holding it was checked ---------------------------------------

_BIG = (1 << 40) - 1  # the last code of a RangeIndex(2**40): valid against the first state


def _categorical_stream(*, second: bytes | None, dtype_late: bytes | None = None) -> bytes:
    """A Categorical with codes ``[0, 2**40 - 1]`` over a ``CategoricalDtype`` (memo 1) of 2**40 range categories;
    ``second``: a later BUILD on the dtype through the memo; ``dtype_late``: the dtype's only BUILD, after the
    Categorical's."""
    out = b"\x80\x02" + _g("pandas", "CategoricalDtype") + b")\x81" + _put(1)
    if dtype_late is None:
        out += _categorical_dtype_state(_range_index(1 << 40))
    out += b"0"
    out += _g("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked") + _g("pandas", "Categorical")
    out += b"J" + struct.pack("<i", 82904607) + b"N\x87R"
    out += _get(1) + _array((2,), "i8", struct.pack("<2q", 0, _BIG)) + b"\x86b" + _put(2) + b"0"
    for late in (second, dtype_late):
        if late is not None:
            out += _get(1) + _categorical_dtype_state(late) + b"0"
    return out + _get(2) + b"."


def test_categorical_dtype_with_a_range_of_categories_is_clean() -> None:
    """The first state alone: 2**40 categories, the largest code their last (the counterpart)."""
    pytest.importorskip("pandas")
    assert _clean(analyze_pickle_bytes(_categorical_stream(second=None)))


def test_categorical_dtype_rebuilt_after_the_categorical_is_reported() -> None:
    """A second BUILD on the dtype leaves one category under code 2**40 - 1: ``CategoricalDtype.__setstate__``
    replaces the categories of the object the Categorical keeps."""
    pytest.importorskip("pandas")
    data = _categorical_stream(second=_float_index([1.5]))
    assert _high(analyze_pickle_bytes(data), "a second time")
    assert _killed_loading(data, "import numpy; numpy.asarray(loaded)")


def test_categorical_dtype_first_built_after_the_categorical_is_not_clean() -> None:
    """The dtype's only BUILD after the Categorical's: the categories could not be counted at its check."""
    pytest.importorskip("pandas")
    result = analyze_pickle_bytes(_categorical_stream(second=None, dtype_late=_float_index([1.5])))
    assert "categories the scanner cannot count" in (result.unverified or ""), result.unverified
    assert not _clean(result)


# --- a scikit-learn tree or estimator given its state after the estimator holding it -------------------------------


class _Deferring(pickle._Pickler):  # type: ignore[name-defined,misc]
    """``pickle.dumps(protocol=2)`` holding back the BUILD of objects of ``classes`` until after the whole object
    (the stream then takes each from the memo and builds it)."""

    def __init__(self, out: io.BytesIO, classes: tuple[type, ...]) -> None:
        super().__init__(out, 2)
        self.classes = classes
        self.later: list[tuple[Any, Any]] = []

    def save_reduce(self, func: Any, args: Any, state: Any = None, *rest: Any, obj: Any = None) -> None:
        if obj is not None and isinstance(obj, self.classes) and state is not None:
            self.later.append((obj, state))
            state = None
        super().save_reduce(func, args, state, *rest, obj=obj)


def _deferred(obj: Any, classes: tuple[type, ...]) -> bytes:
    out = io.BytesIO()
    p = _Deferring(out, classes)
    p.write(pickle.PROTO + b"\x02")
    p.save(obj)
    top = p.memo[id(obj)][0]
    p.write(pickle.POP)
    for held, state in p.later:
        p.write(p.get(p.memo[id(held)][0]))
        p.save(state)
        p.write(pickle.BUILD + pickle.POP)
    p.write(p.get(top) + pickle.STOP)
    return out.getvalue()


def _regressor(feature: int | None) -> Any:
    """A fitted 2-feature decision tree; ``feature``: every split reads that feature instead (its ``Tree`` made
    for that many features, so the tree's own check passes)."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from sklearn.tree import DecisionTreeRegressor
    from sklearn.tree._tree import Tree

    x = np.random.RandomState(0).rand(20, 2)
    model = DecisionTreeRegressor(max_depth=2).fit(x, x[:, 0])
    if feature is not None:
        state = model.tree_.__getstate__()
        nodes = state["nodes"].copy()
        nodes["feature"][nodes["feature"] >= 0] = feature
        tree = Tree(feature + 1, np.array([1], dtype=np.intp), 1)
        tree.__setstate__(dict(state, nodes=nodes))
        model.tree_ = tree
    return model


def test_a_tree_built_after_its_estimator_is_checked_against_n_features_in() -> None:
    """The tree's nodes read feature 10**8 of the estimator's 2: checked when the estimator was built, the tree
    had no nodes yet; its own check only compares them with its own feature count."""
    from sklearn.tree._tree import Tree

    model = _regressor(10**8)
    assert _high(analyze_pickle_bytes(pickle.dumps(model, protocol=2)), "reading feature 100000000 of 2")
    data = _deferred(model, (Tree,))
    assert _high(analyze_pickle_bytes(data), "reading feature 100000000 of 2")
    assert _killed_loading(data, "import numpy; loaded.predict(numpy.random.rand(5, 2))")


def test_trees_built_after_their_forest_are_checked() -> None:
    """The same one level down: a forest's trees and their estimators all built after the forest."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.tree import DecisionTreeRegressor
    from sklearn.tree._tree import Tree

    x = np.random.RandomState(0).rand(20, 2)
    forest = RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0).fit(x, x[:, 0])
    assert _clean(analyze_pickle_bytes(_deferred(forest, (Tree, DecisionTreeRegressor))))
    forest.estimators_[1] = _regressor(10**8)
    data = _deferred(forest, (Tree, DecisionTreeRegressor))
    assert _high(analyze_pickle_bytes(data), "reading feature 100000000 of 2")


def test_a_benign_tree_built_after_its_estimator_stays_clean() -> None:
    from sklearn.tree._tree import Tree

    assert _clean(analyze_pickle_bytes(_deferred(_regressor(None), (Tree,))))


def test_a_second_build_on_an_estimator_is_reported() -> None:
    """An estimator of 10**8 + 1 features whose tree reads feature 10**8 (consistent), then a second BUILD that
    sets ``n_features_in_`` to 2: ``BaseEstimator.__setstate__`` merges it into ``__dict__``, and predict accepts
    2-column rows that the tree reads at column 10**8."""
    model = _regressor(10**8)
    model.n_features_in_ = 10**8 + 1
    plain = pickle.dumps(model, protocol=2)
    assert _clean(analyze_pickle_bytes(plain))
    assert plain.endswith(b"b.")
    data = plain[:-1] + b"}" + _u("n_features_in_") + b"K\x02sb."
    assert _high(analyze_pickle_bytes(data), "a second time")
    assert _killed_loading(data, "import numpy; loaded.predict(numpy.random.rand(5, 2))")


# --- a pandas block placement array first given its state after the BlockManager ----------------------------------


def _frame(placement: bytes, late: bytes | None) -> bytes:
    """A one-column DataFrame of two blocks: a float block at ``slice(0, 1)`` and an empty one whose placement is
    ``placement`` (memo 10); ``late``: a BUILD on that array after the frame was built."""

    def block(values: bytes, where: bytes) -> bytes:
        return _g("pandas._libs.internals", "_unpickle_block") + values + where + b"K\x02\x87R"

    out = b"\x80\x02" + placement + _put(10) + b"0"
    out += (
        _g("pandas", "DataFrame")
        + b")\x81}("
        + _u("_mgr")
        + _g("pandas.core.internals.managers", "BlockManager")
    )
    out += b"(" + block(
        _array((1, 2), "f8", struct.pack("<2d", 1.5, 2.5)), _g("builtins", "slice") + b"K\x00K\x01\x86R"
    )
    out += block(_array((0, 2), "f8", b""), _get(10)) + b"t](" + _range_index(1) + _range_index(2) + b"e\x86R"
    out += _u("_typ") + _u("dataframe") + _u("_metadata") + b"]" + _u("attrs") + b"}"
    out += _u("_flags") + b"}" + _u("allows_duplicate_labels") + b"\x88sub" + _put(11) + b"0"
    if late is not None:
        out += _get(10) + late + b"0"
    return out + _get(11) + b"."


def test_a_block_placement_first_built_after_the_block_manager_is_reported() -> None:
    """An empty int64 array (``_reconstruct(ndarray, (0,), dtype('i8'))``) is kept by the block's
    ``BlockPlacement`` as it is; the BlockManager's placement check saw no state, and the array's first BUILD
    then places the block at column 10**12, where pandas writes its block index at the first column access."""
    pytest.importorskip("pandas")
    late = _state((1,), "i8", struct.pack("<q", 10**12))
    data = _frame(_empty(_dtype("i8")), late)
    assert _high(analyze_pickle_bytes(data), "after a copy of it was taken from the memo")
    assert _killed_loading(data, "loaded[0]")


def test_a_block_placement_built_in_place_stays_clean() -> None:
    pytest.importorskip("pandas")
    assert _clean(analyze_pickle_bytes(_frame(_array((0,), "i8", b""), None)))


def test_an_object_array_holding_itself_stays_clean() -> None:
    """numpy's pickler takes an object array from the memo while writing its own state (before its BUILD)."""
    np = pytest.importorskip("numpy")
    array = np.empty(2, dtype=object)
    array[0] = array
    array[1] = [array, {"k": (array,)}]
    for protocol in (2, 5):
        assert _clean(analyze_pickle_bytes(pickle.dumps(array, protocol=protocol)))


# --- an estimator stored into the list of estimators a checked forest keeps ---------------------------------------


def _forest_with_late(store: str) -> bytes:
    """A fitted 2-feature forest, then, through the memo, ``store`` (``append`` or ``setitem``: item 1) of a tree
    regressor whose nodes read feature 10**8 and that has no ``n_features_in_`` of its own (so it checks no rows)
    into the forest's ``estimators_`` list, which ``BaseEstimator.__setstate__`` kept as it is."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from sklearn.ensemble import RandomForestRegressor

    x = np.random.RandomState(0).rand(20, 2)
    forest = RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0).fit(x, x[:, 0])
    bad = _regressor(10**8)
    del bad.n_features_in_
    out = io.BytesIO()
    p = pickle._Pickler(out, 2)  # type: ignore[attr-defined]
    p.write(pickle.PROTO + b"\x02")
    p.save(forest)
    top, held = p.memo[id(forest)][0], p.memo[id(forest.estimators_)][0]
    p.write(pickle.POP + p.get(held))
    if store == "append":
        p.save(bad)
        p.write(pickle.APPEND)
    else:
        p.write(pickle.MARK)
        p.save(1)
        p.save(bad)
        p.write(pickle.SETITEMS)
    p.write(pickle.POP + p.get(top) + pickle.STOP)
    return out.getvalue()


@pytest.mark.parametrize("store", ["append", "setitem"])
def test_an_estimator_stored_into_a_checked_forest_is_checked(store: str) -> None:
    """The forest's ``n_features_in_`` (2) was checked against the trees its list held at its BUILD; the tree
    stored afterwards is what ``predict`` runs too (``check_input=False``: it reads column 10**8)."""
    data = _forest_with_late(store)
    assert _high(analyze_pickle_bytes(data), "reading feature 100000000 of 2")
    if store == "append":
        assert _killed_loading(data, "import numpy; loaded.predict(numpy.random.rand(5, 2))")


def test_histogram_predictors_built_after_their_estimator_are_checked() -> None:
    """``TreePredictor``s whose BUILD comes after their estimator's, one reading a feature past its 2."""
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    x = np.random.RandomState(0).rand(60, 2)
    model = HistGradientBoostingRegressor(max_iter=2, random_state=0).fit(x, x[:, 0])
    assert _clean(analyze_pickle_bytes(_deferred(model, (TreePredictor,))))
    nodes = model._predictors[0][0].nodes
    nodes["feature_idx"][nodes["is_leaf"] == 0] = 5
    assert _high(analyze_pickle_bytes(_deferred(model, (TreePredictor,))), "reading feature 5 of 2")


# --- an array allocated with elements that no BUILD fills ----------------------------------------------------------

_SECRET = _u("SECRET-TOKEN-" * 40) + b"0"  # a string the loader frees before it allocates the array


@pytest.mark.parametrize(
    "made",
    [
        _empty(_dtype("i8")).replace(
            b"K\x00\x85", b"K@\x85"
        ),  # _reconstruct(ndarray, (64,), int64), no BUILD
        _g("numpy", "ndarray") + b"(K@\x85" + _dtype("i8") + b"tR",  # numpy.ndarray((64,), int64)
        _g("numpy", "ndarray") + b"K@\x85\x85\x81",  # ndarray.__new__(ndarray, (64,)) by NEWOBJ
    ],
    ids=["reconstruct", "call", "newobj"],
)
def test_an_array_nothing_fills_is_reported(made: bytes) -> None:
    """``ndarray.__new__`` leaves its elements as memory held them: the loaded array shows heap addresses and freed
    data of the loading process (shown with numpy 2.4). numpy pickles every array empty and fills it by BUILD."""
    np = pytest.importorskip("numpy")
    data = b"\x80\x02" + _SECRET + made + b"."
    assert _high(analyze_pickle_bytes(data), "allocates array elements that nothing fills")
    loaded = pickle.loads(data)
    assert isinstance(loaded, np.ndarray) and loaded.size == 64


def test_arrays_their_build_fills_and_views_stay_clean() -> None:
    """The same allocations given their state, empty ones and views of a buffer are not reported."""
    pytest.importorskip("numpy")
    raw = struct.pack("<4q", 1, 2, 3, 4)
    filled = _empty(_dtype("i8")).replace(b"K\x00\x85", b"K\x04\x85") + _state((4,), "i8", raw)
    view = _g("numpy", "ndarray") + b"(K\x04\x85" + _dtype("i8") + _bytes(raw) + b"tR"
    empty = _g("numpy", "ndarray") + b"(K\x00\x85" + _dtype("i8") + b"tR"
    for made in (filled, view, empty, _array((4,), "i8", raw)):
        result = analyze_pickle_bytes(b"\x80\x02" + made + b".")
        assert not _high(result, "allocates array elements that nothing fills"), result.findings
