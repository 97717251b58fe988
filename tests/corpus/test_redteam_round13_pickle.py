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


# --- SETITEM on a list: list.__setitem__ replaces items (a slice key changes the length) ---------------------------


def _object_array_list_edited(edit: bytes) -> bytes:
    """numpy's pickle of ``array([1, 'x', None], dtype=object)`` with ``edit`` run on its element list after the
    APPENDS that filled it (the list is then on top of the stack)."""
    np = pytest.importorskip("numpy")
    data = pickle.dumps(np.array([1, "x", None], dtype=object), protocol=2)
    at = data.index(b"Ne", data.index(b"]")) + 2  # after APPENDS
    return data[:at] + edit + data[at:]


def _killed_loading(data: bytes, use: str, attempts: int = 3) -> bool:
    """Whether ``pickle.loads(data)`` followed by ``use`` (of ``loaded``) kills a child process by a signal.

    A read out of bounds lands wherever address-space layout randomisation put the next mapping: it faults in
    most runs, not all, so the child is run up to ``attempts`` times and one kill is the answer."""
    import subprocess
    import sys

    code = f"import pickle, sys; loaded = pickle.loads(sys.stdin.buffer.read()); {use}"
    for _ in range(attempts):
        run = subprocess.run(
            [sys.executable, "-c", code], input=data, capture_output=True, timeout=120, check=False
        )
        if run.returncode < 0:
            return True
    return False


_SLICE_ALL = b"cbuiltins\nslice\nNNN\x87R"


def test_an_object_array_list_shortened_by_a_slice_setitem_is_reported() -> None:
    """The VM ignored SETITEM on a list: a slice assignment emptied the element list after it was built, the short
    list check saw three items, and the real numpy read past the empty list (SIGSEGV)."""
    data = _object_array_list_edited(_SLICE_ALL + b"]s")
    findings = analyze_pickle_bytes(data).findings
    assert any(f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH for f in findings), findings
    assert _killed_loading(data, "print(loaded)")


def test_list_setitem_forms_the_analysis_follows() -> None:
    # an int key replaces an item: the list keeps its length, and numpy reads it as written
    same = _object_array_list_edited(b"K\x00K\x07s")
    assert not analyze_pickle_bytes(same).findings
    # SETITEMS with a slice of one item replaced by none: two items left for three elements
    short = _object_array_list_edited(b"(cbuiltins\nslice\nK\x00K\x01\x86R]u")
    assert any(f.rule_id == "LW-MODEL-017" for f in analyze_pickle_bytes(short).findings)
    # an index past the end: the loader stops there (IndexError)
    past = analyze_pickle_bytes(_object_array_list_edited(b"K\x09K\x07s"))
    assert past.unverified is not None and "past the end of a list" in past.unverified


def test_a_list_setitem_the_analysis_cannot_follow_is_unverified() -> None:
    computed = _object_array_list_edited(b"cbuiltins\nlen\n]\x85R]s")  # key computed at load time
    result = analyze_pickle_bytes(computed)
    assert result.unverified is not None and "SETITEM on a list" in result.unverified


def _fields_dict_moved() -> tuple[bytes, bytes]:
    """A structured array's pickle, and the same with field ``b`` moved 256 MiB on after the dtype's BUILD."""
    np = pytest.importorskip("numpy")
    data = pickle.dumps(np.zeros(2, dtype=[("a", "<i4"), ("b", "<i4")]), protocol=2)
    built = data.index(b"K\x08K\x01K\x10tq\x1bb") + 10  # just after the structured dtype's BUILD
    name_b = data[data.index(b"X\x01\x00\x00\x00b") + 7]  # BINPUT index of the name 'b'
    fields = data[data.index(b"}q") + 2]  # BINPUT index of the fields dict
    edit = (
        b"h" + bytes([fields]) + b"h" + bytes([name_b]) + b"(cnumpy\ndtype\nX\x02\x00\x00\x00i4\x89\x88\x87R"
        b"J\x00\x00\x00\x10ts0"
    )
    return data, data[:built] + edit + data[built:]


def test_a_dtype_fields_dict_changed_after_its_build_is_judged_again() -> None:
    """numpy keeps the pickled fields dict as the dtype's own: a SETITEM into it through the memo after the dtype's
    BUILD moved field ``b`` 256 MiB past an 8-byte item. The layout check had run at BUILD only, so the file was
    clean, and the real numpy reads far outside the array (SIGSEGV)."""
    data, evil = _fields_dict_moved()
    findings = analyze_pickle_bytes(evil).findings
    assert any(f.rule_id == "LW-MODEL-017" and "268435456" in f.message for f in findings), findings
    assert not analyze_pickle_bytes(data).findings
    assert _killed_loading(evil, "print(loaded['b'].sum())")
