"""Round 15: scikit-learn estimator state that its compiled predict code trusts.

libsvm's models (``SVC``, ``NuSVC``, ``SVR``, ``NuSVR``, ``OneClassSVM``, dense and sparse), k-means' centers
(``KMeans``, ``MiniBatchKMeans``, ``BisectingKMeans``) and gradient boosting's stages were scanned clean with
counts and shapes that disagree, and the real ``predict`` then read (or wrote) outside the arrays: SIGSEGV with
scikit-learn 1.9. scikit-learn itself only checks ``_n_support``'s sum against non-empty dense support vectors.
Each estimator is now checked as its fit leaves it; arrays not yet built when the estimator is (a later BUILD
would change what predict reads) leave the file unverified.
"""

from __future__ import annotations

import copy
import io
import pickle
from typing import Any

import pytest
from test_redteam_round13_pickle import _killed_loading
from test_redteam_round14b_kept import _clean, _deferred, _high

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

np = pytest.importorskip("numpy")
pytest.importorskip("sklearn")
sp = pytest.importorskip("scipy.sparse")


def _all_clean(model: Any, protocols: tuple[int, ...] = (2, 4, 5)) -> None:
    """Every form a real pickler writes: ``protocols`` (2, 4 and 5), and a joblib dump."""
    import joblib

    for protocol in protocols:
        result = analyze_pickle_bytes(pickle.dumps(model, protocol=protocol))
        assert _clean(result), (type(model).__name__, protocol, result.findings, result.unverified)
    out = io.BytesIO()
    joblib.dump(model, out)
    result = analyze_pickle_bytes(out.getvalue(), joblib=True)
    assert _clean(result), (type(model).__name__, "joblib", result.findings, result.unverified)


_RS = np.random.RandomState(0)
_X = _RS.rand(40, 3)
_Y2 = (_X[:, 0] > 0.5).astype(int)
_Y3 = _RS.randint(0, 3, 40)
_PREDICT = "import numpy; loaded.predict(numpy.random.rand(3, 3))"


# --- libsvm -------------------------------------------------------------------------------------------------------


def _svc(**params: Any) -> Any:
    from sklearn.svm import SVC

    return SVC(**params).fit(_X, _Y2)


def test_empty_support_vectors_are_reported() -> None:
    """scikit-learn's CVE-2020-28975 check is skipped for empty support vectors: libsvm reads ``support_``'s
    count of rows from an empty array."""
    from sklearn.svm import SVR

    model = _svc()
    model.support_vectors_ = np.zeros((0, 3))
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "0 support vectors for 22 support indices")
    assert _killed_loading(data, _PREDICT)
    regressor = SVR().fit(_X, _X[:, 0])
    regressor.support_vectors_ = np.zeros((0, 3))
    assert _high(analyze_pickle_bytes(pickle.dumps(regressor)), "0 support vectors")


def test_sparse_model_counts_are_reported() -> None:
    """A sparse model's ``_n_support`` is never checked: libsvm walks that many vectors per class."""
    from sklearn.svm import SVC

    model = SVC().fit(sp.csr_matrix(_X), _Y2)
    model._n_support = np.array([10**6, 10**6], dtype=np.int32)
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "_n_support summing to 2000000 for 22 support vectors")
    use = "import numpy, scipy.sparse as sp; loaded.predict(sp.csr_matrix(numpy.random.rand(3, 3)))"
    assert _killed_loading(data, use)


def test_short_coefficients_intercepts_and_probabilities_are_reported() -> None:
    """libsvm reads ``(nr_class - 1) * l`` dual coefficients and ``nr_class * (nr_class - 1) / 2`` intercepts
    and probability pairs, ``nr_class`` being ``_n_support``'s length (heap memory came back as decision
    values: nan, 6.9e-310)."""
    model = _svc()
    model._dual_coef_ = np.ascontiguousarray(model._dual_coef_[:, :1])
    assert _high(analyze_pickle_bytes(pickle.dumps(model)), "1 dual coefficients for 2 classes")
    model = _svc()
    model._n_support = np.array([5, 5, 4, 4, 4], dtype=np.int32)
    model._dual_coef_ = np.zeros((4, 22))
    assert _high(analyze_pickle_bytes(pickle.dumps(model)), "1 intercepts for 5 classes")
    model = _svc(probability=True)
    model._n_support = np.array([8, 7, 7], dtype=np.int32)
    model._dual_coef_ = np.zeros((2, model.support_.shape[0]))
    model._intercept_ = np.zeros(3)
    assert _high(analyze_pickle_bytes(pickle.dumps(model)), "1 _probA values for 3 classes")


def test_precomputed_support_indices_past_the_kernel_are_reported() -> None:
    from sklearn.svm import SVC

    gram = _X @ _X.T
    model = SVC(kernel="precomputed").fit(gram, _Y3)
    model.support_ = model.support_.copy()
    model.support_[-1] = 10**6
    assert _high(analyze_pickle_bytes(pickle.dumps(model)), "support index 1000000 of a 40-column kernel")


def test_libsvm_arrays_built_after_the_model_are_not_clean() -> None:
    """The model keeps the array objects: a BUILD that first fills them after the model's own is what predict
    reads, so the check cannot be made at the model's BUILD and the file is unverified."""
    model = _svc()
    model.support_vectors_ = np.zeros((0, 3))
    data = _deferred(model, (np.ndarray,))
    result = analyze_pickle_bytes(data)
    assert not result.findings or _high(result, "")
    assert result.unverified
    assert _killed_loading(data, _PREDICT)


def test_benign_libsvm_models_stay_clean() -> None:
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

    gram = _X @ _X.T
    for model, target in [
        (SVC(probability=True), _Y3),
        (SVC(), _Y2),
        (SVC(kernel="linear"), _Y3),
        (NuSVC(), _Y3),
        (SVR(), _X[:, 0]),
        (NuSVR(), _X[:, 0]),
        (OneClassSVM(), None),
    ]:
        _all_clean(copy.deepcopy(model).fit(_X, target))
        _all_clean(copy.deepcopy(model).fit(sp.csr_matrix(_X), target))
    _all_clean(SVC(kernel="precomputed").fit(gram, _Y3))
    _all_clean(SVR(kernel="precomputed").fit(gram, _X[:, 0]))
    _all_clean(make_pipeline(StandardScaler(), SVC()).fit(_X, _Y3))


# --- k-means ------------------------------------------------------------------------------------------------------

_SPARSE_ROW = (
    "import numpy, scipy.sparse as sp; "
    "loaded.predict(sp.csr_matrix((numpy.ones(1), numpy.array([10**8 - 1]), numpy.array([0, 1])), "
    "shape=(1, 10**8)))"
)


@pytest.mark.parametrize("name", ["KMeans", "MiniBatchKMeans", "BisectingKMeans"])
def test_centers_narrower_than_the_input_are_reported(name: str) -> None:
    """predict validates rows against ``n_features_in_`` and the sparse Cython loop indexes each center with the
    row's column indices: 3-column centers read at column 10**8 - 1."""
    import sklearn.cluster

    cls = getattr(sklearn.cluster, name)
    model = cls(n_clusters=3, random_state=0, **({} if name == "BisectingKMeans" else {"n_init": 1})).fit(_X)
    _all_clean(model)
    model.n_features_in_ = 10**8
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "cluster centers of 3 features for n_features_in_ 100000000")
    assert _killed_loading(data, _SPARSE_ROW)


def test_dense_centers_of_another_width_are_reported() -> None:
    """score's dense loop reads each center with the input's width (heap memory past the last center)."""
    from sklearn.cluster import KMeans

    model = KMeans(3, n_init=1, random_state=0).fit(_X)
    model.cluster_centers_ = np.ascontiguousarray(model.cluster_centers_[:, :1])
    assert _high(
        analyze_pickle_bytes(pickle.dumps(model)), "cluster centers of 1 features for n_features_in_ 3"
    )


def test_a_bisecting_tree_center_of_another_width_is_reported() -> None:
    """BisectingKMeans.predict stacks the centers of its tree's nodes, not ``cluster_centers_``."""
    from sklearn.cluster import BisectingKMeans

    model = BisectingKMeans(4, random_state=0).fit(_X)
    model._bisecting_tree.left.center = np.zeros(1)
    assert _high(analyze_pickle_bytes(pickle.dumps(model)), "a bisecting tree center of 1 features")


def test_benign_kmeans_models_stay_clean() -> None:
    from sklearn.cluster import BisectingKMeans, KMeans, MiniBatchKMeans

    _all_clean(KMeans(3, n_init=1).fit(_X))
    _all_clean(KMeans(3, n_init=1).fit(sp.csr_matrix(_X)))
    _all_clean(KMeans(3, n_init=1).fit(_X.astype(np.float32)))
    _all_clean(MiniBatchKMeans(3, n_init=1).fit(_X))
    _all_clean(BisectingKMeans(4, bisecting_strategy="largest_cluster").fit(_X))


# --- gradient boosting --------------------------------------------------------------------------------------------


def test_stages_wider_than_the_raw_predictions_are_reported() -> None:
    """``predict_stages`` adds tree ``k`` of each stage to column ``k`` of raw predictions that have
    ``n_trees_per_iteration_`` columns: a wider stage array writes past them (SIGSEGV)."""
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(n_estimators=3, max_depth=2).fit(_X, _X[:, 0])
    wide = np.empty((3, 1000), dtype=object)
    for i in range(3):
        for k in range(1000):
            wide[i, k] = model.estimators_[i, 0]
    model.estimators_ = wide
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "stages of 1000 trees for 1 raw prediction columns")
    assert _killed_loading(data, _PREDICT)


def test_an_initial_estimator_narrower_than_the_stages_is_reported() -> None:
    """The raw predictions of a multi-class model are its initial ``DummyClassifier``'s probabilities."""
    from sklearn.ensemble import GradientBoostingClassifier

    model = GradientBoostingClassifier(n_estimators=50, max_depth=2).fit(_X, _Y3)
    model.init_.class_prior_ = model.init_.class_prior_[:1].copy()
    model.init_.classes_ = model.init_.classes_[:1].copy()
    model.init_.n_classes_ = 1
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "initial estimator predicting 1 columns")
    # heap corruption: glibc aborts ("free(): invalid next size")
    assert _killed_loading(data, "import numpy; loaded.decision_function(numpy.random.rand(20000, 3))")


def test_benign_gradient_boosting_models_stay_clean() -> None:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.svm import SVC

    _all_clean(GradientBoostingClassifier(n_estimators=2).fit(_X, _Y3))
    _all_clean(GradientBoostingClassifier(n_estimators=2).fit(_X, _Y2))
    _all_clean(GradientBoostingClassifier(n_estimators=2, init="zero").fit(_X, _Y3))
    _all_clean(GradientBoostingClassifier(n_estimators=2, init=SVC(probability=True)).fit(_X, _Y3))
    _all_clean(GradientBoostingRegressor(n_estimators=2, loss="quantile").fit(_X, _X[:, 0]))


# --- histogram gradient boosting: categorical splits --------------------------------------------------------------


def _categorical_hgb() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rs = np.random.RandomState(0)
    x = np.c_[rs.randint(0, 5, 200), rs.rand(200)]
    return HistGradientBoostingRegressor(max_iter=3, categorical_features=[0]).fit(x, x[:, 0] * 2 + x[:, 1])


def _split_bitsets(model: Any, row: int) -> None:
    """Every categorical split of the first predictor reads bitset ``row``."""
    predictor = model._predictors[0][0]
    nodes = predictor.nodes.copy()
    split = nodes["is_categorical"].astype(bool) & ~nodes["is_leaf"].astype(bool)
    assert split.any()
    nodes["bitset_idx"][split] = row
    predictor.nodes = nodes


def test_a_categorical_split_past_its_bitsets_is_reported() -> None:
    """``bitset_idx`` is used as a row of ``raw_left_cat_bitsets`` unchecked (its node array's other fields
    were checked already)."""
    model = _categorical_hgb()
    _all_clean(model)
    _split_bitsets(model, 10**9)
    data = pickle.dumps(model, protocol=4)
    assert _high(
        analyze_pickle_bytes(data), "a categorical split reading row 1000000000 of raw_left_cat_bitsets"
    )
    use = "import numpy; loaded.predict(numpy.c_[numpy.arange(5), numpy.ones(5)])"
    assert _killed_loading(data, use)


def test_a_categorical_split_on_a_feature_the_bin_mapper_lacks_is_reported() -> None:
    """predict reads ``known_cat_bitsets[f_idx_map[feature]]``, ``f_idx_map`` having an entry per feature of
    the bin mapper's ``is_categorical_``: a numeric model's splits made categorical on feature 10**8 - 1 (with
    ``n_features_in_`` raised to match) read 400 MB past it (SIGSEGV; 40 MB past it landed in a mapping in about
    one run in ten)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    n = 10**8
    model = HistGradientBoostingRegressor(max_iter=3).fit(_X, _X[:, 0])
    model.n_features_in_ = n
    for predictors in model._predictors:
        for predictor in predictors:
            nodes = predictor.nodes.copy()
            inner = ~nodes["is_leaf"].astype(bool)
            nodes["feature_idx"][inner] = n - 1
            nodes["is_categorical"][inner] = 1
            nodes["bitset_idx"][inner] = 0
            predictor.nodes = nodes
            predictor.raw_left_cat_bitsets = np.zeros((1, 8), np.uint32)
            predictor.binned_left_cat_bitsets = np.zeros((1, 8), np.uint32)
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), f"a categorical split on feature {n - 1} of the bin mapper's 3")
    assert _killed_loading(data, f"import numpy; x = numpy.zeros((1, {n})); x[0, -1] = 3; loaded.predict(x)")
    model.n_features_in_ = 3
    for predictors in model._predictors:
        for predictor in predictors:
            nodes = predictor.nodes.copy()
            nodes["feature_idx"][~nodes["is_leaf"].astype(bool)] = 1
            predictor.nodes = nodes
    assert _high(analyze_pickle_bytes(pickle.dumps(model)), "with no categorical feature in the bin mapper")
    # the predictors given their state after the estimator's: checked when that BUILD comes
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    late = analyze_pickle_bytes(_deferred(model, (TreePredictor,)))
    assert _high(
        late, "after its estimator, with a categorical split on feature 1 with no categorical feature"
    )


def test_bitsets_built_after_their_predictor_are_not_clean() -> None:
    """The predictor keeps the bitset arrays: first built after it, they are what predict reads (an array built
    after a copy of it left the memo is also reported by the numpy rebuild check)."""
    model = _categorical_hgb()
    held = {id(p.raw_left_cat_bitsets) for predictors in model._predictors for p in predictors}
    matcher = type("_Matcher", (type,), {"__instancecheck__": lambda cls, obj: id(obj) in held})
    data = _deferred(model, (matcher("_HeldArrays", (), {}),))
    result = analyze_pickle_bytes(data)
    assert "raw_left_cat_bitsets the scanner cannot read" in (result.unverified or "")


# --- nearest-neighbour classifiers: training labels ---------------------------------------------------------------


def _neighbours(name: str) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, RadiusNeighborsClassifier

    if name == "KNeighborsClassifier":
        return KNeighborsClassifier(3, algorithm="brute", metric="manhattan").fit(_X, _Y2)
    return RadiusNeighborsClassifier(5.0, algorithm="brute", metric="manhattan").fit(_X, _Y2)


@pytest.mark.parametrize("name", ["KNeighborsClassifier", "RadiusNeighborsClassifier"])
def test_training_labels_past_the_classes_are_reported(name: str) -> None:
    """With uniform weights, brute force and a metric other than the Euclidean ones, predict_proba counts each
    neighbour into column ``_y[j]`` of scores ``len(classes_)`` wide (ArgKminClassMode,
    RadiusNeighborsClassMode), unchecked."""
    model = _neighbours(name)
    _all_clean(model)
    model._y = np.full_like(model._y, 10**9)
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "a training label 1000000000 of 2 classes")
    assert _killed_loading(data, "import numpy; loaded.predict_proba(numpy.random.rand(3, 3))")


@pytest.mark.parametrize("name", ["KNeighborsClassifier", "RadiusNeighborsClassifier"])
def test_fewer_training_labels_than_rows_are_reported(name: str) -> None:
    model = _neighbours(name)
    model._y = model._y[:1].copy()
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "1 training labels for 40 training rows")
    assert _killed_loading(data, "import numpy; loaded.predict_proba(numpy.random.rand(3, 3))")


def test_benign_neighbour_classifiers_stay_clean() -> None:
    from sklearn.neighbors import KNeighborsClassifier, RadiusNeighborsClassifier

    labels = np.array(["a", "b", "c"])[_Y3]
    for algorithm in ("brute", "ball_tree", "kd_tree"):
        _all_clean(KNeighborsClassifier(3, algorithm=algorithm).fit(_X, labels))
        _all_clean(KNeighborsClassifier(3, algorithm=algorithm, weights="distance").fit(_X, np.c_[_Y2, _Y3]))
        _all_clean(
            RadiusNeighborsClassifier(1.0, algorithm=algorithm, outlier_label="most_frequent").fit(_X, _Y3)
        )
    _all_clean(KNeighborsClassifier(3, metric="manhattan").fit(sp.csr_matrix(_X), _Y3))
    _all_clean(KNeighborsClassifier(3, metric="precomputed").fit(_X @ _X.T, _Y3))


# --- KDTree / BallTree counts beside their arrays -------------------------------------------------------------------


def _density(algorithm: str, index: int, value: int) -> Any:
    """A fitted KernelDensity whose tree's state item ``index`` (4: leaf_size, 6: n_nodes) is ``value``."""
    from sklearn.neighbors import KernelDensity

    model = KernelDensity(algorithm=algorithm, bandwidth=0.05).fit(np.random.RandomState(0).rand(2000, 2))
    if index >= 0:
        tree = model.tree_
        state = list(tree.__getstate__())
        state[index] = value
        rebuilt = type(tree).__new__(type(tree))
        rebuilt.__setstate__(tuple(state))
        model.tree_ = rebuilt
    return model


_DENSITY = "import numpy; loaded.score_samples(numpy.random.rand(200, 2))"


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_a_tree_node_count_below_its_node_array_is_reported(algorithm: str) -> None:
    """Breadth-first kernel density (KernelDensity's default) sizes its per-node bound arrays by the state's
    n_nodes and writes them at every node id of the node array: SIGSEGV."""
    model = _density(algorithm, 6, 1)
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "n_nodes 1 for a node array of 63")
    assert _killed_loading(data, _DENSITY)


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_a_zero_leaf_size_is_reported(algorithm: str) -> None:
    """Breadth-first queries divide the sample count by leaf_size in C: SIGFPE."""
    model = _density(algorithm, 4, 0)
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "a leaf size of 0")
    assert _killed_loading(data, _DENSITY)


def test_benign_trees_stay_clean() -> None:
    from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

    _all_clean(_density("kd_tree", -1, 0))
    _all_clean(_density("ball_tree", -1, 0))
    _all_clean(NearestNeighbors(algorithm="ball_tree", leaf_size=1).fit(_X))
    _all_clean(LocalOutlierFactor(novelty=True, algorithm="kd_tree").fit(_X))


def _tree_with_metric(name: str, **narrow: Any) -> Any:
    """A BallTree over 3,000 features whose distance metric is then replaced by one sized for 1 feature."""
    from sklearn.metrics import DistanceMetric
    from sklearn.neighbors import BallTree

    tree = BallTree(np.random.RandomState(0).rand(50, 3000), metric="euclidean")
    state = list(tree.__getstate__())
    state[11] = DistanceMetric.get_metric(name, **narrow)
    rebuilt = BallTree.__new__(BallTree)
    rebuilt.__setstate__(tuple(state))
    return rebuilt


_QUERY = "import numpy; print(loaded.query(numpy.random.rand(3, 3000), k=2)[0])"


def test_a_mahalanobis_matrix_narrower_than_the_data_is_reported() -> None:
    """The metric's buffer has the matrix's rows and each distance writes one entry per data feature into it:
    SIGSEGV. ``_validate_data`` runs when a tree is built, not when it is unpickled."""
    data = pickle.dumps(_tree_with_metric("mahalanobis", VI=np.eye(1)), protocol=4)
    assert _high(analyze_pickle_bytes(data), "a Mahalanobis matrix of shape (1, 1) for 3000 features")
    assert _killed_loading(data, _QUERY)


@pytest.mark.parametrize(
    ("name", "narrow"), [("seuclidean", {"V": np.ones(1)}), ("minkowski", {"p": 3, "w": np.ones(1)})]
)
def test_metric_weights_narrower_than_the_data_are_reported(name: str, narrow: dict[str, Any]) -> None:
    """The weights are read at every data feature (the distances came back as heap memory, nan and inf, with
    scikit-learn 1.9; what lies past the weights varies, so the child run is the Mahalanobis test's)."""
    data = pickle.dumps(_tree_with_metric(name, **narrow), protocol=4)
    assert _high(analyze_pickle_bytes(data), "weights for 3000 features")


def test_benign_tree_metrics_stay_clean() -> None:
    from sklearn.neighbors import BallTree, KDTree, KernelDensity, NearestNeighbors

    _all_clean(BallTree(_X, metric="mahalanobis", VI=np.eye(3)))
    _all_clean(BallTree(_X, metric="seuclidean", V=np.ones(3)))
    _all_clean(BallTree(_X, metric="minkowski", p=3, w=np.ones(3)))
    _all_clean(KDTree(_X, metric="minkowski", p=3))
    _all_clean(KernelDensity(algorithm="ball_tree", metric="haversine").fit(_X[:, :2]))
    _all_clean(
        NearestNeighbors(algorithm="ball_tree", metric="mahalanobis", metric_params={"VI": np.eye(3)}).fit(_X)
    )


# --- a Tree's max_depth ------------------------------------------------------------------------------------------


def _shallow_claim(model: Any) -> None:
    for tree in [e.tree_ for e in getattr(model, "estimators_", [model])]:
        state = tree.__getstate__()
        state["max_depth"] = 0
        tree.__setstate__(state)


def test_a_max_depth_below_the_nodes_depth_is_reported() -> None:
    """``decision_path`` allocates ``1 + max_depth`` entries per row and writes every node a row passes."""
    from sklearn.ensemble import IsolationForest
    from sklearn.tree import DecisionTreeRegressor

    x = np.random.RandomState(0).rand(500, 3)
    model = DecisionTreeRegressor(random_state=0).fit(x, x[:, 0] + np.random.RandomState(1).rand(500))
    _all_clean(model)
    _shallow_claim(model)
    data = pickle.dumps(model, protocol=4)
    assert _high(analyze_pickle_bytes(data), "with max_depth 0 whose nodes reach depth")
    assert _killed_loading(data, "import numpy; loaded.decision_path(numpy.random.rand(20000, 3))")
    forest = IsolationForest(n_estimators=3, random_state=0).fit(x)
    _all_clean(forest)
    _shallow_claim(forest)
    assert _high(analyze_pickle_bytes(pickle.dumps(forest)), "with max_depth 0 whose nodes reach depth")


# --- FeatureHasher ------------------------------------------------------------------------------------------------


def test_a_feature_hasher_of_no_features_is_reported() -> None:
    """transform's Cython takes each hash modulo ``n_features`` (never validated outside fit): SIGFPE."""
    from sklearn.feature_extraction import FeatureHasher

    hasher = FeatureHasher(n_features=8)
    _all_clean(hasher)
    hasher.n_features = 0
    data = pickle.dumps(hasher, protocol=4)
    assert _high(analyze_pickle_bytes(data), "n_features 0")
    assert _killed_loading(data, "loaded.transform([{'a': 1}])")


# --- SciPy BSpline (SplineTransformer) ----------------------------------------------------------------------------


def test_spline_coefficients_short_of_the_knots_are_reported() -> None:
    """A SplineTransformer's splines are SciPy ``BSpline`` objects, unpickled by a ``__dict__`` update: with
    fewer coefficients than ``len(t) - k - 1``, transform returned heap memory (pointers read as doubles), and a
    spline of 10**7 knots and one coefficient read 80 MB past it (SIGSEGV)."""
    from scipy.interpolate import BSpline
    from sklearn.preprocessing import SplineTransformer

    model = SplineTransformer(n_knots=5, degree=3).fit(_X)
    _all_clean(model)
    model.bsplines_[0].c = model.bsplines_[0].c[:1].copy()
    assert _high(analyze_pickle_bytes(pickle.dumps(model)), "1 coefficients for 11 knots of degree 3")
    model.bsplines_[0].k = 10**6
    assert _high(analyze_pickle_bytes(pickle.dumps(model)), "degree 1000000 with 11 knots")
    n = 10**7
    spline = BSpline(np.arange(float(n)), np.ones(n - 4), 3)
    spline.c = np.ones(1)
    data = pickle.dumps(spline, protocol=4)
    assert _high(analyze_pickle_bytes(data), f"1 coefficients for {n} knots of degree 3")
    assert _killed_loading(data, f"import numpy; loaded(numpy.array([{n} - 10.5]))")


def test_benign_splines_stay_clean() -> None:
    from scipy.interpolate import BSpline, make_interp_spline, make_lsq_spline
    from sklearn.preprocessing import SplineTransformer

    x = np.linspace(0, 10, 30)
    _all_clean(make_interp_spline(x, np.sin(x)))
    _all_clean(make_interp_spline(x, np.c_[np.sin(x), np.cos(x)], k=0))
    _all_clean(make_lsq_spline(x, np.sin(x), np.r_[[0] * 4, 5, [10] * 4]))
    _all_clean(BSpline.basis_element([0, 1, 2, 3]))
    _all_clean(SplineTransformer(extrapolation="periodic", degree=2).fit(_X))
