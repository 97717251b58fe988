"""The allow-list: precise defaults, severities, and [checks.models] allow/deny configuration."""

from __future__ import annotations

import pytest

from loopwarden.checks.models.allowlist import AllowList, canonical_module
from loopwarden.domain import Severity


@pytest.fixture(scope="module")
def allow() -> AllowList:
    return AllowList.default()


@pytest.mark.parametrize(
    "name",
    [
        "torch._utils._rebuild_tensor_v2",
        "torch.FloatStorage",
        "torch.nn.modules.linear.Linear",
        "torch.nn.modules.container.Sequential",
        "torch.optim.adamw.AdamW",
        "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct",
        "numpy.dtype",
        "numpy.float64",
        "collections.OrderedDict",
        "copyreg._reconstructor",
        "_codecs.encode",
        "__builtin__.set",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.tree._tree.Tree",
        "scipy.sparse._csr.csr_matrix",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "transformers.training_args.TrainingArguments",
        "transformers.trainer_utils.IntervalStrategy",
        "omegaconf.dictconfig.DictConfig",
        "pathlib.PosixPath",
        "typing.Any",
        "_operator.getitem",
    ],
)
def test_ecosystem_names_are_allowed(allow: AllowList, name: str) -> None:
    module, _, qual = name.rpartition(".")
    assert allow.is_allowed(module, qual), name


@pytest.mark.parametrize(
    ("name", "severity"),
    [
        ("torch.load", Severity.CRITICAL),
        ("torch.hub.load", Severity.CRITICAL),
        ("torch.jit.load", Severity.CRITICAL),
        ("torch.serialization.load", Severity.CRITICAL),
        ("torch.storage._load_from_bytes", Severity.CRITICAL),
        ("torch.utils.cpp_extension.load_inline", Severity.CRITICAL),
        ("numpy.load", Severity.CRITICAL),
        ("numpy.testing._private.utils.runstring", Severity.CRITICAL),
        ("numpy.f2py.crackfortran.getlincoef", Severity.CRITICAL),
        ("numpy.distutils.exec_command.exec_command", Severity.CRITICAL),
        ("sklearn.utils._testing.assert_run_python_script_without_output", Severity.CRITICAL),
        ("builtins.getattr", Severity.CRITICAL),
        ("builtins.type", Severity.CRITICAL),
        ("builtins.open", Severity.HIGH),
        ("shutil.rmtree", Severity.HIGH),
        ("socket.socket", Severity.HIGH),
        ("json.loads", Severity.HIGH),  # stdlib, not needed by models: not allowed
        ("torch.nn.functional.interpolate", Severity.HIGH),  # ecosystem function, not on the list
        ("mypkg.models.build_model", Severity.HIGH),  # a function of an unknown package
        ("__main__.Net", Severity.MEDIUM),  # a user class
        ("joblib.numpy_pickle_compat.NDArrayWrapper", Severity.HIGH),  # legacy: loads another file
        ("transformers.dynamic_module_utils.get_class_from_dynamic_module", Severity.CRITICAL),
        ("operator.attrgetter", Severity.CRITICAL),
        ("sh.bash", Severity.CRITICAL),
        ("sh.Command", Severity.CRITICAL),
        ("plumbum.local", Severity.CRITICAL),
        ("plumbum.cmd.ls", Severity.CRITICAL),
        ("pexpect.spawn", Severity.CRITICAL),
        ("invoke.run", Severity.CRITICAL),
        ("fabric.Connection", Severity.CRITICAL),
        ("typing.get_type_hints", Severity.CRITICAL),
        ("typing._eval_type", Severity.CRITICAL),
        ("linecache.getline", Severity.HIGH),
        ("numpy.__builtins__", Severity.CRITICAL),
        ("pathlib.os.system", Severity.CRITICAL),
        ("torch.nn.modules.linear.Linear.__init__", Severity.CRITICAL),
    ],
)
def test_severities(allow: AllowList, name: str, severity: Severity) -> None:
    module, _, qual = (
        name.partition(".") if name.startswith(("numpy.__", "pathlib.")) else name.rpartition(".")
    )
    c = allow.classify(module, qual)
    assert not c.allowed, name
    assert c.severity is severity, (name, c)


def test_class_pattern_does_not_allow_methods_or_functions(allow: AllowList) -> None:
    assert not allow.is_allowed("torch.nn.modules.linear", "Linear.forward")
    assert not allow.is_allowed("sklearn.utils._testing", "TempMemmap")
    assert not allow.is_allowed("sklearn.datasets._base", "load_files")


def test_canonical_module() -> None:
    assert canonical_module("posix") == "os"
    assert canonical_module("_operator") == "operator"
    assert canonical_module("numpy._core.multiarray") == "numpy.core.multiarray"
    assert canonical_module("torch") == "torch"


def test_from_config_allow_and_deny() -> None:
    a = AllowList.from_config(
        {"allow": ["mypkg.models.Net", "otherpkg.*"], "deny": ["collections.OrderedDict"]}
    )
    assert a.is_allowed("mypkg.models", "Net")
    assert a.is_allowed("otherpkg.sub", "helper")
    c = a.classify("collections", "OrderedDict")
    assert not c.allowed
    assert c.rule_id == "LW-MODEL-018"
    # A package pattern never overrides the dangerous classification.
    b = AllowList.from_config({"allow": ["os.*"]})
    assert not b.is_allowed("os", "system")
    # An exact entry is the operator's explicit decision.
    assert AllowList.from_config({"allow": ["os.getcwd"]}).is_allowed("os", "getcwd")


@pytest.mark.parametrize("table", [{"allow": "x.y"}, {"allow": [1]}, {"deny": ["nodots"]}, {"allow": [".x"]}])
def test_from_config_rejects_malformed_entries(table: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"checks\.models"):
        AllowList.from_config(table)


def test_from_config_empty_is_default() -> None:
    assert AllowList.from_config({}) == AllowList.default()
    assert AllowList.from_config(None) == AllowList.default()
