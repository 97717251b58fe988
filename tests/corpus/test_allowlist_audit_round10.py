"""Regressions from the round-10 audit of the allow-list's class patterns: the classes each pattern admits were
enumerated in the real packages and their load-time hooks read (``__new__``, ``__setstate__``, ``__setattr__``
and property setters, ``__setitem__``/``append``/``extend``/``add``, ``__getattr__``, ``__del__``, and what they
call). One section per class of gadget, each with its variants and the benign files it must keep clean.

The payloads are assembled here from opcodes and only scanned; the tests that confirm an effect with the real
loader run it in a child process and skip when the library is missing.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from test_redteam_pickle import P4, STOP, call, clean, g, u

from loopwarden.checks.models.allowlist import AllowList
from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.domain import Severity


def sdict(**items: bytes) -> bytes:
    return b"}(" + b"".join(u(k) + v for k, v in items.items()) + b"u"


def rules(result: PickleResult) -> set[tuple[str, Severity]]:
    return {(f.rule_id, f.severity) for f in result.findings}


def _rebuilt(cls: str, state: bytes) -> bytes:
    """NEWOBJ of ``cls`` without arguments, then BUILD with ``state`` (how pickle rebuilds an instance)."""
    return g(cls) + b")\x81" + state + b"b"


def _load(data: bytes, tail: str = "") -> subprocess.CompletedProcess[str]:
    """``pickle.loads`` of ``data`` in a child process (then ``tail``, Python code run on the result ``o``)."""
    code = f"import pickle, sys\no = pickle.loads(sys.stdin.buffer.read())\n{tail}\nprint('loaded')"
    return subprocess.run(
        [sys.executable, "-c", code],
        input=data.decode("latin-1"),
        capture_output=True,
        text=True,
        encoding="latin-1",
        timeout=120,
        check=False,
    )


# --- an item opcode answered by a class's __getattr__ from its state ---------------------------------------------
# APPEND, APPENDS and ADDITEMS on an object that is not a list or set look up its extend/append/add with getattr.
# A class without those methods whose __getattr__ forwards unknown names into its state answers from there:
# torch.nn.Module from its _modules/_parameters/_buffers dicts, scikit-learn's FrozenEstimator from the estimator
# it wraps, scikit-learn's Bunch and Lightning's AttributeDict from their own items. A callable the state (or
# SETITEMS) put there under that name is then called on the pickle's items. Confirmed with
# pickle.loads: nn.Identity with _modules={"append": BertWordPieceTokenizer}, then APPEND of a path, ran the
# tokenizer's constructor, which read and parsed the vocabulary file at that path (outside the model's folder);
# the scanner called the file clean.

_PATTERN_CLASS = "tokenizers.implementations.bert_wordpiece.BertWordPieceTokenizer"
_PATH = u("/home/user/.ssh/id_rsa")
_TAILS = {
    "append": (_PATH + b"a", "APPEND"),  # the unpickler tries extend, then append
    "extend": (b"(" + _PATH + b"e", "APPENDS"),
    "add": (b"(" + _PATH + b"\x90", "ADDITEMS"),
}


def _ordered(key: str, value: bytes) -> bytes:
    """``collections.OrderedDict()`` filled by SETITEMS, as torch pickles a module's ``_modules``."""
    return call(g("collections.OrderedDict")) + b"(" + u(key) + value + b"u"


def _plain(key: str, value: bytes) -> bytes:
    return b"}(" + u(key) + value + b"u"


def _wrapped(key: str, value: bytes) -> bytes:
    return _rebuilt("types.SimpleNamespace", sdict(**{key: value}))


_FORWARDERS = {
    "module-_modules-ordered": ("torch.nn.modules.linear.Identity", "_modules", _ordered),
    "module-_modules-plain": ("torch.nn.modules.linear.Identity", "_modules", _plain),
    "module-_parameters": ("torch.nn.modules.linear.Linear", "_parameters", _ordered),
    "module-_buffers": ("torch.nn.modules.conv.Conv2d", "_buffers", _plain),
    "frozen-estimator": ("sklearn.frozen._frozen.FrozenEstimator", "estimator", _wrapped),
}
_PLANTED = {
    "pattern-class": g(_PATTERN_CLASS),
    "partial": call(g("functools.partial"), g(_PATTERN_CLASS), _PATH),
}


@pytest.mark.parametrize("method", _TAILS)
@pytest.mark.parametrize("forwarder", _FORWARDERS.values(), ids=_FORWARDERS.keys())
@pytest.mark.parametrize("planted", _PLANTED.values(), ids=_PLANTED.keys())
def test_item_opcode_reaching_a_callable_through_getattr_forwarding_is_critical(
    method: str, forwarder: tuple[str, str, object], planted: bytes
) -> None:
    cls, attr, holder = forwarder
    assert callable(holder)
    tail, op = _TAILS[method]
    payload = P4 + _rebuilt(cls, sdict(**{attr: holder(method, planted)})) + tail + STOP
    result = analyze_pickle_bytes(payload)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), (op, result)


def test_forwarding_two_levels_down_is_critical() -> None:
    # statsmodels' ResultsWrapper forwards to its _results, here a torch module that forwards to its _modules
    # (which also answer the wrapper's results.model.data)
    modules = (
        call(g("collections.OrderedDict"))
        + b"("
        + u("model")
        + _rebuilt("types.SimpleNamespace", sdict(data=b"N"))
        + u("append")
        + g(_PATTERN_CLASS)
        + b"u"
    )
    inner = _rebuilt("torch.nn.modules.linear.Identity", sdict(_modules=modules))
    payload = (
        P4 + _rebuilt("statsmodels.base.wrapper.ResultsWrapper", sdict(_results=inner)) + _PATH + b"a" + STOP
    )
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))


def test_add_forwarded_after_a_real_append_is_critical() -> None:
    # Sequential has a real append (APPEND of None succeeds); it has no add, which its __getattr__ then answers
    # from _modules: each method name is searched for on its own
    state = sdict(_modules=_ordered("add", g(_PATTERN_CLASS)))
    payload = (
        P4 + _rebuilt("torch.nn.modules.container.Sequential", state) + b"Na" + b"(" + _PATH + b"\x90" + STOP
    )
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))


@pytest.mark.parametrize(
    "cls",
    [
        "sklearn.utils._bunch.Bunch",
        "lightning.pytorch.utilities.parsing.AttributeDict",
        "pytorch_lightning.utilities.parsing.AttributeDict",
        # transformers' ModelOutput.__setitem__ also sets the item as an attribute
        "transformers.models.bert.modeling_bert.BertForPreTrainingOutput",
    ],
)
@pytest.mark.parametrize("method", _TAILS)
def test_item_opcode_answered_from_a_mapping_s_own_items_is_critical(cls: str, method: str) -> None:
    # dict subclasses whose __getattr__ returns their items: SETITEMS stores the callable in the object itself
    tail, op = _TAILS[method]
    payload = P4 + g(cls) + b")\x81" + b"(" + u(method) + g(_PATTERN_CLASS) + b"u" + tail + STOP
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload)), op


@pytest.mark.parametrize(
    "cls",
    [
        "lightning_fabric.utilities.data.AttributeDict",
        "lightning.fabric.utilities.data.AttributeDict",
        "transformers.models.bert.modeling_bert.BertForPreTrainingOutput",
    ],
)
def test_setstate_answered_from_a_mapping_s_own_items_is_critical(cls: str) -> None:
    # AttributeDict has no __setstate__: BUILD's getattr(obj, "__setstate__") reaches __getattr__, which returns the
    # item SETITEMS stored under that key (confirmed with lightning_fabric: the class ran on the BUILD state's path)
    payload = (
        P4 + g(cls) + b")\x81" + b"(" + u("__setstate__") + g(_PATTERN_CLASS) + b"u" + _PATH + b"b" + STOP
    )
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))


def test_real_loader_calls_the_setstate_an_attribute_dict_holds(tmp_path: Path) -> None:
    pytest.importorskip("lightning_fabric.utilities.data")
    pytest.importorskip("tokenizers")
    secret = tmp_path / "outside" / "vocab.txt"
    secret.parent.mkdir()
    secret.write_text("[PAD]\n[UNK]\n[CLS]\nTOPSECRET\n", encoding="utf-8")
    payload = P4 + g("lightning_fabric.utilities.data.AttributeDict") + b")\x81" + b"(" + u("__setstate__")
    payload += g(_PATTERN_CLASS) + b"u" + u(str(secret)) + b"b" + STOP
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))
    done = _load(payload)
    assert "sep_token not found in the vocabulary" in done.stderr, done.stderr[-500:]


def test_real_loader_calls_the_setstate_a_model_output_item_set(tmp_path: Path) -> None:
    pytest.importorskip("transformers.models.bert.modeling_bert")
    pytest.importorskip("tokenizers")
    secret = tmp_path / "outside" / "vocab.txt"
    secret.parent.mkdir()
    secret.write_text("[PAD]\n[UNK]\n[CLS]\nTOPSECRET\n", encoding="utf-8")
    cls = "transformers.models.bert.modeling_bert.BertForPreTrainingOutput"
    payload = P4 + g(cls) + b")\x81" + b"(" + u("__setstate__") + g(_PATTERN_CLASS) + b"u"
    payload += u(str(secret)) + b"b" + STOP
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))
    done = _load(payload)
    assert "sep_token not found in the vocabulary" in done.stderr, done.stderr[-500:]


def test_real_bunches_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    bunch = pytest.importorskip("sklearn.utils").Bunch
    objects = [bunch(data=np.arange(6).reshape(3, 2), target=[0, 1, 0], names=["a", "b"]), bunch(extend=1)]
    try:
        from lightning_fabric.utilities.data import AttributeDict
    except ImportError:
        pass
    else:
        objects.append(AttributeDict(lr=0.1, layers=[1, 2]))
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(objects, protocol=protocol)))


def test_real_loader_calls_the_callable_a_bunch_holds(tmp_path: Path) -> None:
    pytest.importorskip("sklearn.utils")
    pytest.importorskip("tokenizers")
    secret = tmp_path / "outside" / "vocab.txt"
    secret.parent.mkdir()
    secret.write_text("[PAD]\n[UNK]\n[CLS]\nTOPSECRET\n", encoding="utf-8")
    payload = P4 + g("sklearn.utils._bunch.Bunch") + b")\x81" + b"(" + u("append") + g(_PATTERN_CLASS) + b"u"
    payload += u(str(secret)) + b"a" + STOP
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))
    done = _load(payload)
    assert "sep_token not found in the vocabulary" in done.stderr, done.stderr[-500:]


def test_method_names_kept_as_constants_or_other_keys_stay_clean() -> None:
    # a submodule dict under ordinary names, and the method names with constant values: nothing is called
    for state in (
        sdict(_modules=_ordered("fc", b"N")),
        sdict(_modules=_plain("append", u("text"))),
        sdict(_buffers=_plain("extend", b"K\x01")),
    ):
        clean(analyze_pickle_bytes(P4 + _rebuilt("torch.nn.modules.linear.Identity", state) + STOP))


def test_real_modules_and_list_fills_stay_clean() -> None:
    nn = pytest.importorskip("torch.nn")
    model = nn.Sequential(nn.Linear(2, 2), nn.ModuleList([nn.ReLU(), nn.Identity()]))
    model.add_module("head", nn.ModuleDict({"add": nn.Linear(2, 1), "append": nn.Identity()}))
    for protocol in (2, 4, 5):
        clean(analyze_pickle_bytes(pickle.dumps(model, protocol=protocol)))
        clean(analyze_pickle_bytes(pickle.dumps([model, {1, 2}, [model]], protocol=protocol)))


def test_real_loader_calls_the_callable_a_modules_dict_plants(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("tokenizers")
    # a vocabulary outside the model's folder; without [SEP] the constructor fails after reading it, and says so
    secret = tmp_path / "outside" / "vocab.txt"
    secret.parent.mkdir()
    secret.write_text("[PAD]\n[UNK]\n[CLS]\nTOPSECRET\n", encoding="utf-8")
    state = sdict(_modules=_ordered("append", g(_PATTERN_CLASS)))
    payload = P4 + _rebuilt("torch.nn.modules.linear.Identity", state) + u(str(secret)) + b"a" + STOP
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))
    done = _load(payload)
    assert "sep_token not found in the vocabulary" in done.stderr, done.stderr


# --- a native library handle taken from the state ----------------------------------------------------------------
# xgboost.sklearn and lightgbm.sklearn import the classes that wrap a handle of their native library (DMatrix,
# QuantileDMatrix, Categories; Dataset), so the xgboost.sklearn./lightgbm.sklearn. patterns admitted them, and
# the reference list kept them (their hooks' source names no I/O). Their __del__ hands the handle the state chose
# to the library's free function (Categories calls the state's _free): a pickle frees any address it names.
# Confirmed with pickle.loads: the loader died of SIGSEGV; the scanner called the file clean. These classes
# cannot be pickled themselves (ctypes pointers): the estimators pickle their Booster, which stays allowed.

_HANDLE = b"\x8a\x08" + (0x4141414141414141).to_bytes(8, "little")
_NATIVE = {
    "xgboost-DMatrix": ("xgboost.sklearn.DMatrix", sdict(handle=_HANDLE)),
    "xgboost-QuantileDMatrix": ("xgboost.sklearn.QuantileDMatrix", sdict(handle=_HANDLE)),
    "xgboost-Categories": (
        "xgboost.sklearn.Categories",
        sdict(_handle=_rebuilt("types.SimpleNamespace", sdict(value=b"K\x01")), _free=g("builtins.object")),
    ),
    "xgboost-core-DMatrix": ("xgboost.core.DMatrix", sdict(handle=_HANDLE)),
    "lightgbm-Dataset": ("lightgbm.sklearn.Dataset", sdict(_handle=_HANDLE)),
}


@pytest.mark.parametrize(("cls", "state"), _NATIVE.values(), ids=_NATIVE.keys())
def test_native_handle_wrappers_are_not_allowed(cls: str, state: bytes) -> None:
    result = analyze_pickle_bytes(P4 + _rebuilt(cls, state) + STOP)
    assert ("LW-MODEL-005", Severity.HIGH) in rules(result), result


@pytest.mark.parametrize(
    "name",
    [
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
        "xgboost.sklearn.XGBRanker",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn._ObjectiveFunctionWrapper",
    ],
)
def test_estimators_of_the_same_modules_stay_allowed(name: str) -> None:
    module, _, qual = name.rpartition(".")
    assert AllowList.default().classify(module, qual).allowed


def test_real_fitted_boosting_estimators_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    x = np.arange(40, dtype=float).reshape(20, 2)
    y = np.arange(20) % 2
    models = []
    for lib, cls in (("xgboost", "XGBClassifier"), ("lightgbm", "LGBMClassifier")):
        try:
            module = __import__(lib)
        except ImportError:
            continue
        models.append(getattr(module, cls)(n_estimators=2).fit(x, y))
    if not models:
        pytest.skip("neither xgboost nor lightgbm is installed")
    for model in models:
        for protocol in (2, 4, 5):
            clean(analyze_pickle_bytes(pickle.dumps(model, protocol=protocol)))


@pytest.mark.parametrize(
    ("lib", "cls", "key"), [("xgboost", "DMatrix", "handle"), ("lightgbm", "Dataset", "_handle")]
)
def test_real_loader_frees_the_handle_a_state_names(lib: str, cls: str, key: str) -> None:
    pytest.importorskip(lib)
    payload = P4 + _rebuilt(f"{lib}.sklearn.{cls}", sdict(**{key: _HANDLE})) + STOP
    assert ("LW-MODEL-005", Severity.HIGH) in rules(analyze_pickle_bytes(payload))
    done = _load(payload, "del o")
    assert done.returncode != 0 and "loaded" not in done.stdout, (done.returncode, done.stderr[-500:])


# --- a slow SentencePiece tokenizer reloading the model file its state names ------------------------------------
# transformers' CpmTokenizer, SiglipTokenizer (sp_model.Load(self.vocab_file)), M2M100Tokenizer,
# Speech2TextTokenizer (load_spm(self.spm_file, ...)) and MarianTokenizer (each of self.spm_files) reload their
# SentencePiece model in __setstate__ from the path in the state. Their modules import sentencepiece, so the
# reference list was generated without them and the transformers.models. pattern alone admitted them. Confirmed
# with pickle.loads: sentencepiece opened and parsed the file at the chosen path (outside the model's folder);
# the scanner called the file clean.

_SPM = {
    "cpm": ("transformers.models.cpm.tokenization_cpm.CpmTokenizer", "vocab_file"),
    "siglip": ("transformers.models.siglip.tokenization_siglip.SiglipTokenizer", "vocab_file"),
    "m2m_100": ("transformers.models.m2m_100.tokenization_m2m_100.M2M100Tokenizer", "spm_file"),
    "speech_to_text": (
        "transformers.models.speech_to_text.tokenization_speech_to_text.Speech2TextTokenizer",
        "spm_file",
    ),
    "marian": ("transformers.models.marian.tokenization_marian.MarianTokenizer", "spm_files"),
}


@pytest.mark.parametrize(("cls", "key"), _SPM.values(), ids=_SPM.keys())
def test_sentencepiece_tokenizer_reloading_a_state_path_is_not_allowed(cls: str, key: str) -> None:
    path = u("/home/user/.ssh/id_rsa")
    value = b"]" + b"(" + path + b"e" if key == "spm_files" else path
    result = analyze_pickle_bytes(P4 + _rebuilt(cls, sdict(**{key: value, "sp_model_kwargs": b"}"})) + STOP)
    assert ("LW-MODEL-005", Severity.HIGH) in rules(result), result


def test_other_tokenizers_and_configs_of_those_models_stay_allowed() -> None:
    allow = AllowList.default()
    for name in (
        "transformers.models.siglip.configuration_siglip.SiglipConfig",
        "transformers.models.marian.configuration_marian.MarianConfig",
        "transformers.models.bert.tokenization_bert.BertTokenizer",
    ):
        module, _, qual = name.rpartition(".")
        assert allow.classify(module, qual).allowed, name


def test_real_loader_reads_the_model_file_a_siglip_state_names(tmp_path: Path) -> None:
    pytest.importorskip("sentencepiece")
    pytest.importorskip("transformers.models.siglip.tokenization_siglip")
    secret = tmp_path / "outside" / "secret.model"
    secret.parent.mkdir()
    secret.write_text("not a model", encoding="utf-8")
    cls = "transformers.models.siglip.tokenization_siglip.SiglipTokenizer"
    payload = P4 + _rebuilt(cls, sdict(vocab_file=u(str(secret)), sp_model_kwargs=b"}")) + STOP
    assert ("LW-MODEL-005", Severity.HIGH) in rules(analyze_pickle_bytes(payload))
    done = _load(payload)
    assert "could not parse ModelProto" in done.stderr and str(secret) in done.stderr, done.stderr[-500:]


# --- a statsmodels formula evaluated by ModelData.__setstate__ -----------------------------------------------------
# A statsmodels model fitted from a formula pickles its data (PandasData ...) with restore_model_spec (0.15;
# restore_design_info before) and its formula; ModelData.__setstate__ then rebuilds the design matrices with
# get_matrices(d["formula"], data, eval_env=depth), and patsy (or formulaic) evaluates every factor of the formula
# as Python in one of the loader's frames. Confirmed with statsmodels' own sm.load_pickle: an OLS result whose
# formula was rewritten to "y ~ x + I(__import__('pathlib').Path(<marker>).touch() or x)" created the marker; the
# scanner called the file clean. The formula is judged as SciPy's argument-parser template is: plain column names
# and the transforms formulas are written with pass, any other call, attribute or dunder is code execution.

_FORMULA_DATA = "statsmodels.base.data.PandasData"
_EVIL_FORMULAS = [
    "y ~ x + I(__import__('os').system('id') or x)",
    "y ~ I(open('/etc/passwd').read())",
    "y ~ os.system('id')",
    "y ~ pickle.loads(b'x')",
    "y ~ I(np.load('x'))",
    "y ~ getattr(np, 'load')('x')",
    "y ~ I((lambda: 1)())",
    "y ~ x[0]",
]


def _formula_state(formula: bytes, key: str = "restore_model_spec") -> bytes:
    return P4 + _rebuilt(_FORMULA_DATA, sdict(**{key: b"\x88", "formula": formula, "frame": b"N"})) + STOP


@pytest.mark.parametrize("key", ["restore_model_spec", "restore_design_info"])
@pytest.mark.parametrize("formula", _EVIL_FORMULAS)
def test_statsmodels_formula_that_runs_code_is_critical(formula: str, key: str) -> None:
    result = analyze_pickle_bytes(_formula_state(u(formula), key))
    assert ("LW-MODEL-001", Severity.CRITICAL) in rules(result), result


def test_statsmodels_formula_computed_at_load_is_critical() -> None:
    computed = call(g("builtins.str"), u("y ~ x"))
    result = analyze_pickle_bytes(_formula_state(computed))
    assert ("LW-MODEL-001", Severity.CRITICAL) in rules(result), result


@pytest.mark.parametrize(
    "formula",
    [
        "y ~ x",
        "Lottery ~ Literacy + Wealth + Region - 1",
        "y ~ np.log(x + 1) + C(g, Treatment('b')) + I(x**2)",
        "y ~ C(a):C(b) + bs(x, df=3) + standardize(z) + Q('odd name')",
    ],
)
def test_statsmodels_plain_formulas_stay_clean(formula: str) -> None:
    clean(analyze_pickle_bytes(_formula_state(u(formula))))
    # and a formula without the restore key is never evaluated
    clean(analyze_pickle_bytes(P4 + _rebuilt(_FORMULA_DATA, sdict(formula=u(_EVIL_FORMULAS[0]))) + STOP))


def _formula_results(formula: str) -> object:
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    smf = pytest.importorskip("statsmodels.formula.api")
    frame = pd.DataFrame({"y": np.arange(10.0), "x": np.arange(10.0) ** 0.5, "g": list("ab") * 5})
    return smf.ols(formula, frame).fit()


def test_real_formula_models_stay_clean() -> None:
    for formula in ("y ~ x", "y ~ np.log(x + 1) + C(g, Treatment('b')) + I(x**2)"):
        results = _formula_results(formula)
        for protocol in (2, 4, 5):
            clean(analyze_pickle_bytes(pickle.dumps(results, protocol=protocol)))


def test_real_loader_evaluates_the_formula_of_a_statsmodels_pickle(tmp_path: Path) -> None:
    results = _formula_results("y ~ x")
    marker = tmp_path / "marker"
    evil = f"y ~ x + I(__import__('pathlib').Path({str(marker)!r}).touch() or x)".encode()
    raw = pickle.dumps(results, protocol=2)  # unframed: the formula can be swapped in place
    plain = b"X" + (5).to_bytes(4, "little") + b"y ~ x"
    assert raw.count(plain) == 1
    payload = raw.replace(plain, b"X" + len(evil).to_bytes(4, "little") + evil)
    assert ("LW-MODEL-001", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))
    path = tmp_path / "model.pickle"
    path.write_bytes(payload)
    # statsmodels' own loader, called from a function as an application would
    code = "import statsmodels.api as sm, sys\ndef main(p):\n    sm.load_pickle(p)\nmain(sys.argv[1])\n"
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300, check=False
    )
    assert marker.exists(), done.stderr[-500:]


# --- a name in a module that is a script: examples, tests, benchmarks --------------------------------------------
# The class patterns matched any CapWords name in any module under their prefixes, and a module the reference list
# does not have (it skips examples, tests and benchmarks) kept the name pattern alone. Naming anything in such a
# module imports it, which runs its top-level code whatever the name: numpy's
# random/_examples/numba/extending_distributions dlopens ./libdistributions.so from the working directory.
# Confirmed: pickle.load of a file naming ...extending_distributions.Normals, run from a folder holding a
# libdistributions.so, ran that library's constructor (then failed on the missing name); the scanner called the
# file clean.

_SCRIPTS = [
    "numpy.random._examples.numba.extending_distributions.Normals",
    "numpy.random._examples.cffi.extending.Anything",
    "sklearn.utils.tests.test_validation.Thing",
    "statsmodels.regression.tests.test_regression.TestOLS",
    "sklearn._build_utils.tempita.Builder",
    "transformers.models.bert.convert_bert_original_tf_checkpoint_to_pytorch.scripts.Main",
    "torch.optim.benchmarks.Runner",
]


@pytest.mark.parametrize("name", _SCRIPTS)
def test_names_in_example_test_and_benchmark_modules_are_not_allowed(name: str) -> None:
    module, _, qual = name.rpartition(".")
    assert not AllowList.default().classify(module, qual).allowed
    result = analyze_pickle_bytes(P4 + g(name) + STOP)
    assert ("LW-MODEL-005", Severity.HIGH) in rules(result), result


def test_runtime_modules_of_the_same_packages_stay_allowed() -> None:
    allow = AllowList.default()
    for name in (
        "numpy.random._pcg64.PCG64",
        "sklearn.linear_model._base.LinearRegression",
        "statsmodels.regression.linear_model.OLS",
        "torch.optim.sgd.SGD",
        "sklearn.metrics._classification.f1_score",
    ):
        module, _, qual = name.rpartition(".")
        assert allow.classify(module, qual).allowed, name
    assert allow.classify("sklearn.metrics.tests.test_classification", "f1_score").allowed is False


def test_real_loader_imports_the_example_module_a_name_points_into(tmp_path: Path) -> None:
    pytest.importorskip("numba")
    pytest.importorskip("cffi")
    # the working directory's libdistributions.so: ctypes-loadable shared object whose constructor leaves a marker
    gcc = pytest.importorskip("shutil").which("gcc")
    if gcc is None:
        pytest.skip("no C compiler to build the library")
    src = tmp_path / "evil.c"
    src.write_text(
        "#include <stdio.h>\n__attribute__((constructor)) static void init(void) "
        '{ FILE *f = fopen("marker", "w"); if (f) fclose(f); }\n'
        "double random_standard_normal(void *s) { return 0.0; }\n",
        encoding="utf-8",
    )
    subprocess.run(
        [gcc, "-shared", "-fPIC", "-o", str(tmp_path / "libdistributions.so"), str(src)], check=True
    )
    payload = P4 + g(_SCRIPTS[0]) + STOP
    assert ("LW-MODEL-005", Severity.HIGH) in rules(analyze_pickle_bytes(payload))
    code = (
        "import pickle, sys\ntry:\n    pickle.loads(sys.stdin.buffer.read())\nexcept Exception:\n    pass\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        input=payload,
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert (tmp_path / "marker").exists()


# --- omegaconf: names the pattern admitted only because of the module they were imported into -------------------
# The reference list is not made from omegaconf, so "omegaconf." admitted any CapWords name in any of its modules,
# including what they import: PyYAML's CSafeLoader/CDumper (omegaconf._yaml, ._utils), io.StringIO (the vendored
# ANTLR runtime and the generated grammar parser), contextvars.ContextVar. None of them was found to do harm when
# rebuilt (hardening, no confirmed miss); the pattern now covers only the modules omegaconf's pickles name.


@pytest.mark.parametrize(
    "name",
    [
        "omegaconf._yaml.CSafeLoader",
        "omegaconf._utils.CDumper",
        "omegaconf.vendor.antlr4.Lexer.StringIO",
        "omegaconf.grammar.gen.OmegaConfGrammarParser.OmegaConfGrammarParser",
        "omegaconf._impl.ContextVar",
        "omegaconf.omegaconf.OmegaConf",
    ],
)
def test_omegaconf_names_outside_its_config_modules_are_not_allowed(name: str) -> None:
    module, _, qual = name.rpartition(".")
    assert not AllowList.default().classify(module, qual).allowed


def test_real_omegaconf_configs_stay_clean() -> None:
    omegaconf = pytest.importorskip("omegaconf")
    configs = [
        omegaconf.OmegaConf.create({"x": 1, "y": [1, 2, {"z": "${x}"}], "f": 1.5, "n": None, "s": "a"}),
        omegaconf.OmegaConf.create([1, {"a": 2}]),
    ]
    readonly = omegaconf.OmegaConf.create({"a": {"b": 1}})
    omegaconf.OmegaConf.set_readonly(readonly, True)
    configs.append(readonly)
    for cfg in configs:
        for protocol in (2, 4, 5):
            clean(analyze_pickle_bytes(pickle.dumps(cfg, protocol=protocol)))


# --- a rebuilt instance handed to a constructor that iterates or converts it ------------------------------------
# Pattern-only classes are rebuilt without their constructor and their load hooks reviewed, but not their other
# protocol methods. Allowed constructors run those of their argument: list(x)/tuple(x)/torch.Size(x) iterate it,
# dict(x) calls keys(), str(x) __str__, pathlib.Path(x) __fspath__; copyreg._reconstructor(cls, list, x) runs
# list.__init__(obj, x). gensim's LineSentence iterates over the lines of the file (or URL, through smart_open)
# its state names. Confirmed with pickle.loads: list(LineSentence rebuilt with source=<a file outside the model's
# folder>) returned that file's lines; the scanner called the file clean.

_LINES = "gensim.models.word2vec.LineSentence"
_LINE_STATE = sdict(source=u("/etc/passwd"), max_sentence_length=b"M\x10\x27", limit=b"N")
_INSTANCES = {
    "newobj": _rebuilt(_LINES, _LINE_STATE),
    "copyreg-newobj": call(g("copyreg.__newobj__"), g(_LINES)) + _LINE_STATE + b"b",
    "reconstructor": call(g("copyreg._reconstructor"), g(_LINES), g("builtins.object"), b"N")
    + _LINE_STATE
    + b"b",
}
_TAKERS = {
    "list": lambda x: call(g("builtins.list"), x),
    "tuple": lambda x: call(g("builtins.tuple"), x),
    "set": lambda x: call(g("builtins.set"), x),
    "dict": lambda x: call(g("builtins.dict"), x),
    "str": lambda x: call(g("builtins.str"), x),
    "OrderedDict": lambda x: call(g("collections.OrderedDict"), x),
    "deque": lambda x: call(g("collections.deque"), x),
    "defaultdict": lambda x: call(g("collections.defaultdict"), b"N", x),
    "torch.Size": lambda x: call(g("torch.Size"), x),
    "pathlib.Path": lambda x: call(g("pathlib.Path"), x),
    "numpy.mean": lambda x: call(g("numpy.mean"), x),
    "numpy.matrix": lambda x: call(g("numpy.matrix"), x),
    "torch.Tensor": lambda x: call(g("torch.Tensor"), x),
    "reconstructor-list": lambda x: call(
        g("copyreg._reconstructor"), g("builtins.list"), g("builtins.list"), x
    ),
}


@pytest.mark.parametrize("taker", _TAKERS.values(), ids=_TAKERS.keys())
@pytest.mark.parametrize("instance", _INSTANCES.values(), ids=_INSTANCES.keys())
def test_rebuilt_instance_iterated_by_an_allowed_constructor_is_reported(
    taker: object, instance: bytes
) -> None:
    assert callable(taker)
    result = analyze_pickle_bytes(P4 + taker(instance) + STOP)
    assert ("LW-MODEL-005", Severity.HIGH) in rules(result), result


def test_constructors_over_constants_and_kept_instances_stay_clean() -> None:
    instance = _rebuilt("sklearn.linear_model._base.LinearRegression", sdict(fit_intercept=b"\x88"))
    for payload in (
        call(g("builtins.list"), b"(K\x01K\x02l"),
        call(g("collections.OrderedDict"), b"((" + u("a") + instance + b"tl"),  # an instance kept as a value
        call(g("builtins.tuple"), b"(" + instance + b"l"),  # iterating the list, not the instance
        call(g("copyreg._reconstructor"), g("builtins.list"), g("builtins.list"), b"(K\x01l"),
    ):
        clean(analyze_pickle_bytes(P4 + payload + STOP))


def test_real_loader_reads_the_file_a_line_sentence_names(tmp_path: Path) -> None:
    pytest.importorskip("gensim.models.word2vec")
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("TOP SECRET LINE\n", encoding="utf-8")
    state = sdict(source=u(str(secret)), max_sentence_length=b"M\x10\x27", limit=b"N")
    payload = P4 + call(g("builtins.list"), _rebuilt(_LINES, state)) + STOP
    assert ("LW-MODEL-005", Severity.HIGH) in rules(analyze_pickle_bytes(payload))
    done = _load(payload, "print(o)")
    assert "SECRET" in done.stdout, done.stderr[-500:]


# --- attributes set by SimpleNamespace.__init__ through copyreg._reconstructor -----------------------------------
# Hardening (no effect confirmed: the allowed callers pass fixed arguments to the planted method): on Python 3.13+
# copyreg._reconstructor(cls, SimpleNamespace, mapping) runs SimpleNamespace.__init__(obj, mapping), which sets the
# mapping's items as attributes as BUILD or SimpleNamespace(mapping) do; a callable planted that way and handed to
# numpy.clip, dict(...) ... is judged as those are (checked with Python 3.13: numpy.clip looked up the planted clip).


@pytest.mark.parametrize(
    "handed",
    [
        lambda x: call(g("numpy.clip"), x, u("/etc/passwd"), b"N"),
        lambda x: call(g("builtins.dict"), x),
        lambda x: call(g("uuid.UUID"), x),
    ],
    ids=["numpy.clip", "dict", "uuid.UUID"],
)
def test_namespace_attributes_set_through_reconstructor_are_judged(handed: object) -> None:
    assert callable(handed)
    mapping = b"}(" + u("clip") + g(_PATTERN_CLASS) + u("keys") + g(_PATTERN_CLASS)
    mapping += u("replace") + g(_PATTERN_CLASS) + b"u"
    ns = call(g("copyreg._reconstructor"), g("types.SimpleNamespace"), g("types.SimpleNamespace"), mapping)
    result = analyze_pickle_bytes(P4 + handed(ns) + STOP)
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(result), result
