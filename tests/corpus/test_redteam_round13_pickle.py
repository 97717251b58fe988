"""Round 13: dangerous callables named through a dotted qualname under a parent module, and Keras loaders where
``keras.models`` re-exports them.

From protocol 4 the unpickler resolves ``find_class(module, "a.b.c")`` by attribute lookups from the module, so
``torch`` + ``fx.graph_module._exec_with_source`` is torch.fx's code runner. Each name below was reported only HIGH
(a callable not on the allow-list) because the capability tables are keyed by module and the qualname's leading
parts were not read as submodules; they are the capability of what they resolve to now.
"""

from __future__ import annotations

import functools
import importlib
import pickle

import pytest

from loopwarden.checks.models.allowlist import AllowList
from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity

_DOTTED = [
    ("torch", "fx.graph_module._exec_with_source", "LW-MODEL-001"),
    ("torch", "_dynamo.optimize", "LW-MODEL-001"),
    ("torch", "utils.cpp_extension.load_inline", "LW-MODEL-001"),
    ("torch", "_C._jit_pass_lower_all_tuples", "LW-MODEL-001"),
    ("numpy", "testing._private.utils.runstring", "LW-MODEL-001"),
    ("keras", "models.load_model", "LW-MODEL-003"),
    ("os", "path.os.system", "LW-MODEL-001"),
    ("_bootsubprocess", "check_output", "LW-MODEL-001"),  # a standard-library module that runs a command
]


def _global4(module: str, qual: str) -> bytes:
    """Protocol 4: GLOBAL with the dotted qualname, called with no arguments."""
    return b"\x80\x04c" + module.encode() + b"\n" + qual.encode() + b"\n)R."


def _stack_global(module: str, qual: str) -> bytes:
    m, q = module.encode(), qual.encode()
    return b"\x80\x04\x8c" + bytes([len(m)]) + m + b"\x8c" + bytes([len(q)]) + q + b"\x93)R."


@pytest.mark.parametrize(("module", "qual", "rule"), _DOTTED)
@pytest.mark.parametrize("build", [_global4, _stack_global])
def test_dotted_qualnames_get_the_capability_they_resolve_to(
    module: str, qual: str, rule: str, build
) -> None:
    findings = analyze_pickle_bytes(build(module, qual)).findings
    assert any(f.rule_id == rule and f.severity is Severity.CRITICAL for f in findings), findings


@pytest.mark.parametrize(
    ("module", "qual"),
    [("torch", "fx.graph_module._exec_with_source"), ("numpy", "testing._private.utils.runstring")],
)
def test_the_unpickler_resolves_dotted_qualnames_from_the_module(module: str, qual: str) -> None:
    """What the finding assumes: the real unpickler looks the name up attribute by attribute (no call here)."""
    pytest.importorskip(module)
    expected = functools.reduce(getattr, qual.split("."), importlib.import_module(module))
    assert pickle.loads(b"\x80\x04c" + module.encode() + b"\n" + qual.encode() + b"\n.") is expected


@pytest.mark.parametrize(
    ("module", "qual", "rule"),
    [
        ("keras.models", "load_model", "LW-MODEL-003"),
        ("keras.models", "model_from_json", "LW-MODEL-003"),
        ("tf_keras.models", "load_model", "LW-MODEL-001"),
        ("tf_keras.layers", "deserialize", "LW-MODEL-001"),
    ],
)
def test_keras_loaders_under_other_names_are_critical(module: str, qual: str, rule: str) -> None:
    c = AllowList.default().classify(module, qual)
    assert (c.allowed, c.rule_id, c.severity) == (False, rule, Severity.CRITICAL)


@pytest.mark.parametrize(
    ("module", "qual"),
    [
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch", "_utils._rebuild_tensor_v2"),
        ("collections", "OrderedDict"),
        ("keras.models", "Sequential"),
    ],
)
def test_reading_qualnames_as_paths_keeps_what_is_allowed(module: str, qual: str) -> None:
    c = AllowList.default().classify(module, qual)
    assert c.rule_id is None or c.severity is not Severity.CRITICAL, c
