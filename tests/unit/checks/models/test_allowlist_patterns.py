"""Names the allow-list admits by pattern (``sklearn.<mod>.<Class>``, ``sklearn.metrics._ranking.<func>`` ...).

A pattern is judged by name only, so two things hold it to what it promises:

* the name must be a class or function the module really defines, per the generated reference list
  ``ecosystem_names.txt`` (``sklearn.callback._transport.Client`` is ``multiprocessing.connection.Client``
  imported there), and not a class whose load hooks do I/O (``ScoringMonitor.__setstate__`` opens a listener);
* a pattern-admitted class may only be rebuilt the way pickle rebuilds ordinary objects, without running its
  constructor (NEWOBJ, ``copyreg.__newobj__``, ``copyreg._reconstructor`` over ``object``); calling it (REDUCE,
  INST, OBJ, or as ``_reconstructor``'s base) runs ``__init__`` on pickle data
  (``BertTokenizerLegacy('/etc/passwd')`` reads the file). Types that pickle as a call are listed by name.

The attack pickles are built byte by byte; nothing here imports the packages the names point into, so these
tests hold on a machine without scikit-learn or transformers.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any

import pytest

from loopwarden.checks.models.allowlist import AllowList, _ecosystem_names
from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.domain import Severity


def _g(name: str) -> bytes:
    module, _, qual = name.rpartition(".")
    return b"c" + module.encode() + b"\n" + qual.encode() + b"\n"


def _s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _addr() -> bytes:
    return b"(" + _s("127.0.0.1") + b"J" + struct.pack("<i", 47123) + b"t"


def _reduce(name: str, args: bytes = b"") -> bytes:
    return b"\x80\x02" + _g(name) + b"(" + args + b"tR."


def _newobj_build(name: str) -> bytes:
    return b"\x80\x02" + _g(name) + b")\x81}" + _s("a") + b"K\x01sb."


def _subjects(result: PickleResult, rule: str = "LW-MODEL-005") -> set[str]:
    return {str(f.evidence["subject"]) for f in result.findings if f.rule_id == rule}


def _clean(result: PickleResult) -> None:
    assert result.unverified is None, result.unverified
    assert result.findings == (), [(f.rule_id, f.message) for f in result.findings]


# Objects imported into an allowed module from elsewhere: the name fits the pattern, the object is not the
# module's (processes, sockets, threads, name resolvers).
REEXPORTS = [
    "sklearn.callback._transport.Client",  # multiprocessing.connection.Client: connects out at load
    "sklearn.callback._transport.Listener",  # binds a port
    "sklearn.callback._progressbar.Thread",
    "transformers.models.wav2vec2_with_lm.processing_wav2vec2_with_lm.Pool",  # spawns worker processes
    "sklearn.ensemble._forest.Parallel",  # sklearn.utils.parallel.Parallel, on the deny prefixes
    "sklearn.metrics._ranking.partial",  # functools.partial through the function pattern
    "sklearn.metrics.pairwise.partial",
    "sklearn.metrics._regression.check_array",  # a function of another sklearn module
    "sklearn.linear_model._base.Sequence",  # a typing/collections.abc re-export
    "sklearn.NotAThingThatExists",
]


@pytest.mark.parametrize("name", REEXPORTS)
def test_reexported_or_unknown_name_under_a_pattern_is_not_allowed(name: str) -> None:
    module, _, qual = name.rpartition(".")
    c = AllowList.default().classify(module, qual)
    assert not c.allowed, name
    assert c.severity is Severity.HIGH


@pytest.mark.parametrize("name", REEXPORTS[:5])
@pytest.mark.parametrize("build", [lambda n: _reduce(n, _addr()), _newobj_build, lambda n: _reduce(n)])
def test_reexport_pickles_are_findings(name: str, build: Any) -> None:
    result = analyze_pickle_bytes(build(name))
    assert name in _subjects(result), result.findings


@pytest.mark.parametrize(
    "name",
    [
        "transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy",  # reads the vocab file
        "sklearn.linear_model._logistic.LogisticRegression",
        "torch.nn.modules.linear.Linear",
        "pandas.core.frame.DataFrame",
    ],
)
def test_pattern_class_called_with_arguments_is_a_finding(name: str) -> None:
    module, _, qual = name.rpartition(".")
    c = AllowList.default().classify(module, qual)
    assert c.allowed and c.by_pattern, c  # admitted, but only to be rebuilt
    path = b"(" + _s("/etc/passwd") + b"t"
    variants = {
        "REDUCE": b"\x80\x02" + _g(name) + path + b"R.",
        "REDUCE-noargs": b"\x80\x02" + _g(name) + b")R.",
        "INST": b"(" + _s("/etc/passwd") + b"i" + module.encode() + b"\n" + qual.encode() + b"\n.",
        "OBJ": b"\x80\x02(" + _g(name) + _s("/etc/passwd") + b"o.",
        # copyreg._reconstructor(cls, base, state) runs base.__init__(obj, state) when base is not object
        "reconstructor-base": b"\x80\x02"
        + _g("copyreg._reconstructor")
        + b"("
        + _g("builtins.object")
        + _g(name)
        + _s("/etc/passwd")
        + b"tR.",
    }
    for how, data in variants.items():
        result = analyze_pickle_bytes(data)
        assert f"{name}()" in _subjects(result), (how, result.findings)


def test_pattern_function_called_at_load_is_a_finding() -> None:
    name = "sklearn.metrics._ranking.roc_auc_score"
    _clean(analyze_pickle_bytes(b"\x80\x02" + _g(name) + b"."))  # referenced as an estimator parameter
    result = analyze_pickle_bytes(_reduce(name, b"K\x01K\x02"))
    assert f"{name}()" in _subjects(result)


@pytest.mark.parametrize(
    "name",
    [
        "sklearn.linear_model._logistic.LogisticRegression",
        "transformers.models.bert.tokenization_bert_legacy.BertTokenizerLegacy",
        "torch.nn.modules.linear.Linear",
        "sklearn.utils._bunch.Bunch",
    ],
)
def test_pattern_class_rebuilt_without_constructor_is_clean(name: str) -> None:
    _clean(analyze_pickle_bytes(_newobj_build(name)))
    reconstructed = (
        b"\x80\x02"
        + _g("copyreg._reconstructor")
        + b"("
        + _g(name)
        + _g("builtins.object")
        + b"NtR}"
        + _s("a")
        + b"K\x01sb."
    )
    _clean(analyze_pickle_bytes(reconstructed))
    newobj_fn = b"\x80\x02" + _g("copyreg.__newobj__") + b"(" + _g(name) + b"tR."
    _clean(analyze_pickle_bytes(newobj_fn))


@pytest.mark.parametrize(
    "name",
    [
        "sklearn.callback._scoring_monitor.ScoringMonitor",  # __setstate__ connects to the address in its state
        "sklearn.callback.ScoringMonitor",
        "transformers.models.xlm.tokenization_xlm.XLMTokenizer",  # __setstate__ imports sacremoses
    ],
)
def test_class_with_dangerous_load_hook_is_never_admitted(name: str) -> None:
    module, _, qual = name.rpartition(".")
    assert not AllowList.default().classify(module, qual).allowed
    state = b"}" + _s("_listener_handle") + _g("sklearn.callback._transport.ListenerHandle") + _addr() + b"Rs"
    data = (
        b"\x80\x02"
        + _g("copyreg._reconstructor")
        + b"("
        + _g(name)
        + _g("builtins.object")
        + b"NtR"
        + state
        + b"b."
    )
    result = analyze_pickle_bytes(data)
    assert name in _subjects(result)
    assert name in _subjects(analyze_pickle_bytes(_newobj_build(name)))


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("sklearn.tree._tree.Tree", b"K\x03" + b"cnumpy.core.multiarray\n_reconstruct\n" + b"K\x01"),
        ("sklearn._loss._loss.CyHalfBinomialLoss", b""),
        ("sklearn.linear_model._sgd_fast.Hinge", b"G?\xf0\x00\x00\x00\x00\x00\x00"),
        ("pandas._libs.tslibs.offsets.MonthEnd", b"K\x02\x89"),
        ("pandas._libs.sparse.IntIndex", b"K\x03]"),
        ("transformers.trainer_utils.IntervalStrategy", _s("steps")),  # an enum member: cls(value)
    ],
)
def test_types_that_pickle_as_a_call_are_listed_by_name(name: str, args: bytes) -> None:
    result = analyze_pickle_bytes(_reduce(name, args))
    assert f"{name}()" not in _subjects(result), result.findings
    assert name not in _subjects(result)


def test_package_the_list_does_not_cover_keeps_the_pattern_but_not_calls() -> None:
    names = _ecosystem_names()
    assert "omegaconf" not in names.covers
    name = "omegaconf.nodes.AnyNode"
    _clean(analyze_pickle_bytes(_newobj_build(name)))
    assert f"{name}()" in _subjects(analyze_pickle_bytes(_reduce(name, _addr())))


def test_reference_list_is_loaded_and_covers_the_ecosystem() -> None:
    names = _ecosystem_names()
    assert {"sklearn", "pandas", "transformers", "torch"} <= names.covers
    assert "LogisticRegression" in (names.defined("sklearn.linear_model._logistic") or ())
    assert "roc_auc_score" in (names.defined("sklearn.metrics._ranking") or ())
    assert "Client" not in (names.defined("sklearn.callback._transport") or frozenset())
    assert "partial" not in (names.defined("sklearn.metrics._ranking") or ())
    assert names.defined("sklearn") == frozenset()  # listed though it defines nothing: re-exports are refused
    assert names.defined("sklearn.no_such_module") is None
    assert names.made_from  # the header names the versions it was made from


def test_a_module_the_list_does_not_have_keeps_the_pattern_but_is_never_called() -> None:
    """A module of another release (or one the generator could not import) is admitted by the name pattern
    alone, and like every pattern name it may be rebuilt but not called."""
    allow = AllowList.default()
    c = allow.classify("sklearn.ensemble._removed_in_some_release", "OldLoss")
    assert c.allowed and c.by_pattern
    name = "sklearn.ensemble._removed_in_some_release.OldLoss"
    _clean(analyze_pickle_bytes(_newobj_build(name), allow=allow))
    assert _subjects(analyze_pickle_bytes(_reduce(name, _s("x")), allow=allow)) == {f"{name}()"}


def test_reference_list_matches_installed_sklearn() -> None:
    """Every listed name of a few modules is a class or function those modules define (where sklearn is
    installed; the list is generated from it by tools/gen_ecosystem_names.py)."""
    pytest.importorskip("sklearn")
    import importlib
    import inspect

    names = _ecosystem_names()
    for modname in (
        "sklearn.linear_model._logistic",
        "sklearn.metrics._ranking",
        "sklearn.callback._transport",
    ):
        try:
            mod = importlib.import_module(modname)
        except ImportError:
            continue
        for name in names.defined(modname) or ():
            obj = getattr(mod, name, None)
            if obj is None:
                continue  # another version of sklearn than the list was made from
            assert inspect.isclass(obj) or obj.__module__ == modname, name
            assert obj.__module__.split(".")[0] == "sklearn", name


# --- real pickles stay clean -------------------------------------------------------------------------------


def _sklearn_objects() -> dict[str, Any]:
    np = pytest.importorskip("numpy")
    pytest.importorskip("sklearn")
    pd = pytest.importorskip("pandas")
    from sklearn import (
        calibration,
        cluster,
        compose,
        decomposition,
        ensemble,
        feature_extraction,
        linear_model,
        neighbors,
        neural_network,
        pipeline,
        preprocessing,
        svm,
        tree,
    )

    rng = np.random.default_rng(0)
    x, y = rng.random((60, 4)), np.arange(60) % 2
    frame = pd.DataFrame(x, columns=list("abcd"))
    frame["cat"] = np.where(y > 0, "u", "v")
    frame["txt"] = ["red apple", "green pear", "blue sky"] * 20
    column = compose.ColumnTransformer(
        [
            ("num", preprocessing.StandardScaler(), list("abcd")),
            ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["cat"]),
            ("txt", feature_extraction.text.TfidfVectorizer(), "txt"),
        ]
    )
    return {
        "logreg": linear_model.LogisticRegression().fit(x, y),
        "sgd": linear_model.SGDClassifier().fit(x, y),
        "tree": tree.DecisionTreeClassifier().fit(x, y),
        "forest": ensemble.RandomForestClassifier(n_estimators=3).fit(x, y),
        "gb": ensemble.GradientBoostingRegressor(n_estimators=3, loss="huber").fit(x, y),
        "hgb": ensemble.HistGradientBoostingClassifier(max_iter=3).fit(x, y),
        "iso": ensemble.IsolationForest(n_estimators=3).fit(x),
        "svc": svm.SVC().fit(x, y),
        "knn": neighbors.KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        "ball": neighbors.BallTree(x),
        "mlp": neural_network.MLPClassifier(max_iter=5).fit(x, y),
        "kmeans": cluster.KMeans(2, n_init=1).fit(x),
        "pca": decomposition.PCA(2).fit(x),
        "calibrated": calibration.CalibratedClassifierCV(svm.LinearSVC(), cv=2).fit(x, y),
        "pipeline": pipeline.Pipeline([("ct", column), ("clf", linear_model.LogisticRegression())]).fit(
            frame, y
        ),
        "frame": frame,
        "offsets": [pd.offsets.MonthEnd(2), pd.offsets.BusinessDay(), pd.offsets.Hour(3)],
        "index": pd.date_range("2020-01-01", periods=3, tz="UTC"),
        "sparse": pd.Series(pd.arrays.SparseArray([0, 0, 1])),
        "categorical": pd.Categorical(["a", "b", "a"]),
    }


@pytest.mark.filterwarnings("ignore")
def test_real_sklearn_and_pandas_pickles_stay_clean() -> None:
    import joblib

    objects = _sklearn_objects()
    for name, obj in objects.items():
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            result = analyze_pickle_bytes(pickle.dumps(obj, protocol=protocol))
            assert result.findings == () and result.unverified is None, (name, protocol, result.findings)
        import io

        buf = io.BytesIO()
        joblib.dump(obj, buf)
        result = analyze_pickle_bytes(buf.getvalue(), joblib=True)
        assert result.findings == () and result.unverified is None, (name, "joblib", result.findings)


def test_real_transformers_config_and_tokenizer_stay_clean() -> None:
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    for obj in (transformers.BertConfig(), transformers.GenerationConfig(max_new_tokens=3), tok):
        for protocol in (2, 4, 5):
            _clean(analyze_pickle_bytes(pickle.dumps(obj, protocol=protocol)))


def test_whole_transformers_models_saved_with_torch_save_stay_clean(tmp_path: Any) -> None:
    """torch.save(model) of Hugging Face models: their activation modules (transformers.activations) hold
    torch._C._nn builtins, GPT-2 uses transformers.pytorch_utils.Conv1D; and a model pickled with the plain
    pickle module stores its tensors through torch.storage._load_from_bytes."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from loopwarden.checks.models.scanner import scan_paths

    bert = transformers.BertModel(
        transformers.BertConfig(
            hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20, vocab_size=50
        )
    )
    gpt2 = transformers.GPT2LMHeadModel(
        transformers.GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=50, n_positions=32)
    )
    for name, model in (("bert", bert), ("gpt2", gpt2)):
        torch.save(model, tmp_path / f"{name}.pt")
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(model, protocol=4))
        # activations stored by reference, the way custom modules keep them
        torch.save(
            {"act": torch.nn.functional.gelu, "tanh": torch.tanh, "sp": torch.nn.functional.softplus},
            tmp_path / "acts.pt",
        )
    report = scan_paths([str(tmp_path)], jobs=1)
    for t in report.targets:
        assert not t.findings and t.verdict.value == "clean", (t.path, t.findings, t.reason)


def test_torch_function_namespace_admits_activations_only() -> None:
    """getattr(torch._C._VariableFunctionsClass, name) is how pickle reaches torch.tanh; other names of that
    namespace (from_file reads a file) are judged like any callable."""

    def via_getattr(name: str) -> bytes:
        return (
            b"\x80\x02cbuiltins\ngetattr\nctorch._C\n_VariableFunctionsClass\n"
            + _s(name)
            + b"\x86R"
            + _s("/etc/passwd")
            + b"\x85R."
        )

    _clean(analyze_pickle_bytes(via_getattr("tanh")))
    bad = analyze_pickle_bytes(via_getattr("from_file"))
    assert "torch._C._VariableFunctionsClass.from_file" in _subjects(bad, "LW-MODEL-001")
    assert "builtins.getattr" in _subjects(bad, "LW-MODEL-002")
