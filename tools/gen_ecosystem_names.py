"""Regenerate ``src/loopwarden/checks/models/ecosystem_names.txt`` from the installed ML packages.

The allow-list admits classes under prefixes such as ``sklearn.`` or ``transformers.models.`` and metric functions
under ``sklearn.metrics._ranking.``. A name is only a name: ``sklearn.callback._transport.Client`` is
``multiprocessing.connection.Client`` imported into that module. This script imports every module under those
prefixes (here, on the maintainer's machine: the scanner never imports what it scans for) and writes the names
that really are what the pattern promises:

* a class (``inspect.isclass``) of the same package (its ``__module__`` starts with the package name), not defined
  under a denied prefix, whose load-time hooks (``__new__``, ``__setstate__``, ``__del__``, ``__setattr__``,
  ``__setitem__``, ``append``, ``extend``, ``__hash__``, ``__eq__``, ``_missing_``) show no I/O, networking,
  threads, processes, imports or code execution in their source, no call into a loaded native library (directly
  or one ``self`` method down: a handle taken from the state is freed or dereferenced) and no call of an
  instance attribute (a callable the state sets); classes that fail the hook check are written as exclusions
  with the reason;
* a function defined in that very module (``__module__`` and ``__qualname__`` match the path).

Enum classes are marked (``*``): pickle rebuilds enum members by calling the class with the value. Plain
transformers ModelOutput dataclasses are marked (``^``): ``ModelOutput.__reduce__`` writes them as a call of the class
with its field values (see ``allowlist.model_output_class``).

Usage: ``python tools/gen_ecosystem_names.py [--out FILE] [--only PREFIX ...]``. Packages that are not installed are
left out and keep the name-only pattern; the header records the versions the list was made from. ``--only`` regenerates
the modules under the given prefixes (of the allow-list's) and keeps every other line of the existing file: for a
prefix added to the allow-list when not every package of the header is installed.
"""

from __future__ import annotations

import argparse
import ast
import enum
import importlib
import importlib.metadata
import inspect
import io
import os
import pkgutil
import re
import sys
import textwrap
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

from loopwarden.checks.models.allowlist import (
    _CLASS_DENY_PREFIXES,
    _CLASS_PREFIXES,
    _FUNCTION_PREFIXES,
    _class_pattern,
    _dangerous_category,
    _function_pattern,
)

OUT = Path(__file__).resolve().parent.parent / "src/loopwarden/checks/models/ecosystem_names.txt"

# Distribution names of the import packages, for the version header.
_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "imblearn": "imbalanced-learn",
    "lightning_fabric": "pytorch-lightning",
}

# Methods pickle (or the first use of a loaded object as a dict key or set member) runs on an instance built
# without its constructor.
_HOOKS = (
    "__new__",
    "__setstate__",
    "__del__",
    "__setattr__",
    "__setitem__",
    "append",
    "extend",
    "__hash__",
    "__eq__",
    "_missing_",
)
# What a load-time hook must not do: call something whose name says it opens, connects, spawns, imports, loads or
# runs, or touch a module of that kind. Judged on the hook's syntax tree (comments and docstrings do not count).
# A hook whose source cannot be read (C, Cython) is kept: those are the numeric extension types of numpy,
# pandas and scikit-learn; ``--hooks`` lists every distinct hook for review.
_DANGER_CALL = re.compile(
    r"open|listen|connect|socket|thread|process|pool|spawn|fork|popen|import|load|download|fetch|"
    r"from_pretrained|hub_|client|server|request|url|mmap|tempfile|mkstemp|mkdtemp|ctypes|signal|atexit|"
    r"^(?:exec|eval|compile|system|breakpoint|input|remove|unlink|rmtree|rmdir|getattr|setattr|__import__)$",
    re.IGNORECASE,
)
_DANGER_MODULES = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "socket",
        "pickle",
        "marshal",
        "shutil",
        "tempfile",
        "importlib",
        "ctypes",
        "multiprocessing",
        "threading",
        "requests",
        "urllib",
        "builtins",
        "io",
        "pathlib",
        "glob",
    }
)
# Harmless attributes of those modules (reference counts for copy-on-write warnings, the built-in hash).
_HARMLESS_ATTRIBUTES = frozenset(
    {"sys.getrefcount", "sys.version_info", "sys.maxsize", "builtins.hash", "builtins.int"}
)
# Hooks read and found harmless although the syntactic check above flags them.
_REVIEWED_HOOKS = {
    "pandas.core.dtypes.base.ExtensionDtype.__eq__": "getattr over the names in the class's _metadata",
    "pandas.core.arrays.categorical._cat_compare_op.<locals>.func": "getattr of a comparison operator name",
    "transformers.image_utils.SizeDict.__eq__": "getattr over the dataclass's own fields",
}
_TRUSTED_HOOK_MODULES = ("builtins", "enum", "abc", "typing", "dataclasses", "functools", "collections")
_SKIP_MODULE = re.compile(
    r"(?:^|\.)(?:_?examples?|tests?|testing|_testing|conftest|benchmarks?|_build_utils|scripts?)(?:\.|$)"
)


def _modules(prefix: str) -> Iterator[str]:
    """The importable modules a prefix covers: ``pkg.sub.`` is ``pkg.sub`` itself and everything below it."""
    root = prefix.rstrip(".")
    try:
        mod = importlib.import_module(root)
    except Exception:  # noqa: BLE001 - a missing optional dependency leaves the module out
        return
    yield root
    path = getattr(mod, "__path__", None)
    if path is None:
        return
    for info in pkgutil.walk_packages(path, root + ".", onerror=lambda _name: None):
        if not _SKIP_MODULE.search(info.name):
            yield info.name


def _hooks(cls: type) -> Iterator[tuple[str, Any]]:
    """The load-time hooks ``cls`` has that are not those of the interpreter or the standard library."""
    for hook in _HOOKS:
        fn = inspect.getattr_static(cls, hook, None)
        fn = getattr(fn, "__func__", fn)
        if fn is None or getattr(fn, "__module__", None) in (None, *_TRUSTED_HOOK_MODULES):
            continue
        if not (inspect.isfunction(fn) or inspect.ismethod(fn)):
            continue  # a slot wrapper or a C/Cython method
        yield f"{fn.__module__}.{fn.__qualname__}", fn


def _native(fn: Any, name: str) -> bool:
    """Whether ``name`` is, in ``fn``'s module, a loaded native library (``xgboost.core._LIB``): a hook calling
    into it hands the library values the state chose (a handle to free, a pointer to read)."""
    import ctypes

    return isinstance(getattr(fn, "__globals__", {}).get(name), ctypes.CDLL)


def _source_tree(fn: Any) -> ast.AST | None:
    """``fn``'s source, parsed (None when it has none: a builtin, a C function, code made at run time)."""
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(inspect.unwrap(fn))))
    except (TypeError, OSError, SyntaxError):
        return None


def _native_call(fn: Any, tree: ast.AST | None = None) -> str | None:
    """The first ``library.function`` of a loaded native library that ``fn``'s source names, if any."""
    tree = tree if tree is not None else _source_tree(fn)
    if tree is None:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and _native(fn, node.value.id)
        ):
            return f"{node.value.id}.{node.attr}"
    return None


def _danger_in(fn: Any, top: str, cls: type | None = None) -> str | None:
    tree = _source_tree(fn)
    if tree is None:
        return None
    native = _native_call(fn, tree)
    if native is not None:
        return f"calls the native library {native}"
    for node in ast.walk(tree):
        if (
            cls is not None
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "self"
            and inspect.getattr_static(cls, node.func.attr, None) is None
        ):
            # not a method: an instance attribute, which the pickle's state sets (xgboost Categories.__del__
            # calls self._free())
            return f"calls self.{node.func.attr}, an instance attribute the state sets"
        if (
            cls is not None
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "self"
        ):
            # one method down, for the native library only (lightgbm Dataset.__del__ -> self._free_handle())
            method = inspect.getattr_static(cls, node.func.attr, None)
            called = _native_call(method) if inspect.isfunction(method) else None
            if called:
                return f"calls self.{node.func.attr}, which calls the native library {called}"

        if isinstance(node, ast.Import | ast.ImportFrom):
            # a module of the class's own package is already imported wherever the class is; any other is not
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if not (isinstance(node, ast.ImportFrom) and node.level) and any(
                m.split(".", 1)[0] != top for m in mods
            ):
                return f"imports {', '.join(mods)}"
        if isinstance(node, ast.Call):
            f = node.func
            called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
            on_self = bool(node.args) and isinstance(node.args[0], ast.Name) and node.args[0].id == "self"
            constant = len(node.args) > 1 and isinstance(node.args[1], ast.Constant)
            if called in ("getattr", "setattr", "hasattr") and (on_self or constant):
                continue  # the object's own attributes, or a fixed attribute: what these hooks are for
            if _DANGER_CALL.search(called):
                return f"calls {called}()"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (
                node.value.id in _DANGER_MODULES
                and f"{node.value.id}.{node.attr}" not in _HARMLESS_ATTRIBUTES
            ):
                return f"uses {node.value.id}.{node.attr}"
        elif isinstance(node, ast.Name) and node.id in _DANGER_MODULES:
            parents = [p for p in ast.walk(tree) if isinstance(p, ast.Attribute) and p.value is node]
            if not parents:
                return f"uses {node.id}"
    return None


_HOOK_VERDICTS: dict[str, str | None] = {}


def _hook_problem(cls: type) -> str | None:
    for name, fn in _hooks(cls):
        if name not in _HOOK_VERDICTS:
            _HOOK_VERDICTS[name] = (
                None if name in _REVIEWED_HOOKS else _danger_in(fn, name.split(".", 1)[0], cls)
            )
        if _HOOK_VERDICTS[name]:
            return f"{name} {_HOOK_VERDICTS[name]}"
    return None


def _arrow_type(cls: type) -> bool:
    """A subclass of pyarrow's ``DataType`` (pandas' ArrowPeriodType, ArrowIntervalType ...)."""
    return any(f"{c.__module__}.{c.__qualname__}" == "pyarrow.lib.DataType" for c in cls.__mro__)


def _defined_function(obj: Any, modname: str, attr: str) -> bool:
    """A function (Python, built-in or Cython) whose own module and qualname are this very path."""
    is_function = inspect.isfunction(obj) or inspect.isbuiltin(obj) or type(obj).__name__.endswith("function")
    home = (getattr(obj, "__module__", None), getattr(obj, "__qualname__", None))
    return is_function and home == (modname, attr)


# What a plain ModelOutput dataclass may define besides its fields: the functions @dataclass generates (their code is
# compiled from a string) and the keyword-renaming wrapper transformers' metaclass puts around the generated __init__.
_MODEL_OUTPUT = "transformers.utils.generic.ModelOutput"
_BC_INIT = "_BCCacheNameMeta.__setattr__.<locals>.__init__"


def _generated(fn: Any) -> bool:
    code = getattr(fn, "__code__", None)
    if code is None:
        return False
    if code.co_filename == "<string>":
        return True
    # the wrappers around generated functions: transformers' around __init__, dataclasses' recursion guard of __repr__
    where = code.co_filename.replace(os.sep, "/")
    wrapper = (code.co_qualname == _BC_INIT and where.endswith("transformers/utils/generic.py")) or (
        code.co_qualname == "_recursive_repr.<locals>.wrapper" and where.endswith("/dataclasses.py")
    )
    wrapped = getattr(fn, "__wrapped__", None)
    return wrapper and wrapped is not None and _generated(wrapped)


def _plain_model_output(cls: type) -> bool:
    """A dataclass under transformers' ModelOutput whose classes (up to ModelOutput) define nothing callable but what
    @dataclass generates: pickle calls it with its field values, and only ModelOutput's own methods run."""
    import dataclasses

    mro = [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]
    if _MODEL_OUTPUT not in mro or mro[0] == _MODEL_OUTPUT or not dataclasses.is_dataclass(cls):
        return False
    for c in cls.__mro__[: mro.index(_MODEL_OUTPUT)]:
        if not dataclasses.is_dataclass(c) or type(c) is not type(cls):
            return False
        for value in vars(c).values():
            fn = getattr(value, "__func__", value)
            code = isinstance(value, property | staticmethod | classmethod) or callable(fn)
            if code and not (inspect.isfunction(fn) and _generated(fn)):
                return False
    return True


def _collect(
    prefixes: tuple[str, ...] = (*_CLASS_PREFIXES, *_FUNCTION_PREFIXES),
) -> tuple[dict[str, set[str]], dict[str, str], set[str], list[str]]:
    names: dict[str, set[str]] = defaultdict(set)
    excluded: dict[str, str] = {}
    tops: set[str] = set()
    failed: list[str] = []
    for prefix in prefixes:
        top = prefix.split(".", 1)[0]
        for modname in _modules(prefix):
            tops.add(top)
            try:
                with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
                    mod = importlib.import_module(modname)
            except BaseException:  # noqa: BLE001 - SystemExit from scripts, missing optional dependencies
                failed.append(modname)
                continue
            # listed even when it defines nothing of its own: its re-exports are then refused
            names.setdefault(modname, set())
            for attr, obj in list(vars(mod).items()):
                full = f"{modname}.{attr}"
                if _class_pattern(modname, attr):
                    if not inspect.isclass(obj):
                        continue
                    real_mod = getattr(obj, "__module__", "") or ""
                    real = f"{real_mod}.{obj.__qualname__}"
                    if real_mod.split(".", 1)[0] != top or "<" in obj.__qualname__:
                        continue  # imported from another package, or made by a factory
                    if real.startswith(_CLASS_DENY_PREFIXES) or _dangerous_category(
                        real_mod, obj.__qualname__
                    ):
                        excluded[full] = f"is {real}, which is on the dangerous list"
                        continue
                    if issubclass(obj, type):
                        # NEWOBJ of a metaclass is type.__new__(meta, name, bases, namespace): a class made at
                        # load, running its bases' __init_subclass__ and its namespace's __set_name__; pickle
                        # writes classes by reference, never by instantiating their metaclass
                        excluded[full] = "is a metaclass: instantiating it creates a class at load"
                        continue
                    if _arrow_type(obj):
                        # pyarrow's DataType extension classes keep their C++ type in the instance: NEWOBJ leaves
                        # it unset, and hashing one (a dict key, a set member) dereferences NULL
                        excluded[full] = (
                            "is a pyarrow type: rebuilt without its constructor, hashing it crashes"
                        )
                        continue
                    problem = _hook_problem(obj)
                    if problem:
                        excluded[full] = problem
                        continue
                    mark = "*" if issubclass(obj, enum.Enum) else "^" if _plain_model_output(obj) else ""
                    names[modname].add(attr + mark)
                elif _function_pattern(modname, attr) and _defined_function(obj, modname, attr):
                    names[modname].add(attr)
    return names, excluded, tops, failed


def _version(top: str) -> str:
    try:
        return importlib.metadata.version(_DISTRIBUTIONS.get(top, top))
    except importlib.metadata.PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--hooks", action="store_true", help="list every distinct load-time hook and its verdict"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PREFIX",
        help="regenerate the modules under these allow-list prefixes only, keeping the rest of the file",
    )
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if args.only:
        unknown = [p for p in args.only if p not in (*_CLASS_PREFIXES, *_FUNCTION_PREFIXES)]
        if unknown:
            parser.error(f"not a prefix of the allow-list: {', '.join(unknown)}")
        names, excluded, _tops, failed = _collect(tuple(args.only))
        _merge(args.out, names, excluded, tuple(p.rstrip(".") for p in args.only))
        print(
            f"{sum(len(v) for v in names.values())} names in {len(names)} modules, {len(excluded)} excluded, "
            f"{len(failed)} modules not importable; updated {args.out}",
            file=sys.stderr,
        )
        return 0
    names, excluded, tops, failed = _collect()
    lines = [
        "# Classes and functions the allow-list's name patterns admit, as they really are in the packages below.",
        "# Generated by tools/gen_ecosystem_names.py; do not edit. Format: 'module: Name Name* Name^ func' (* = enum,",
        "# ^ = plain transformers ModelOutput dataclass),"
        "# '!module.Name reason' (excluded), '@covers top ...' (packages this list is authoritative for).",
        "# from " + ", ".join(f"{t} {_version(t)}" for t in sorted(tops)),
        "@covers " + " ".join(sorted(tops)),
    ]
    lines += [f"{m}: {' '.join(sorted(v, key=_sort_key))}" for m, v in sorted(names.items())]
    lines += [f"!{n} {r}" for n, r in sorted(excluded.items())]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(
        f"{sum(len(v) for v in names.values())} names in {len(names)} modules, {len(excluded)} excluded, "
        f"{len(failed)} modules not importable; wrote {args.out}",
        file=sys.stderr,
    )
    for modname in failed:
        print(f"not importable: {modname}", file=sys.stderr)
    if args.hooks:
        for name, verdict in sorted(_HOOK_VERDICTS.items()):
            print(f"hook {name}: {verdict or 'ok'}", file=sys.stderr)
    return 0


def _sort_key(name: str) -> str:
    """Names sort as they were before the ModelOutput mark existed (an enum's ``*`` is part of its sort key)."""
    return name.rstrip("^")


def _merge(out: Path, names: dict[str, set[str]], excluded: dict[str, str], roots: tuple[str, ...]) -> None:
    """Replace the lines of the modules under ``roots`` in ``out`` by the ones just made, keeping the others."""

    def under(module: str) -> bool:
        return any(module == r or module.startswith(r + ".") for r in roots)

    head: list[str] = []
    kept: dict[str, str] = {}
    kept_excluded: dict[str, str] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        if line.startswith(("#", "@")):
            head.append(line)
        elif line.startswith("!"):
            full, _, reason = line[1:].partition(" ")
            if not under(full.rpartition(".")[0]):
                kept_excluded[full] = reason
        elif line:
            module, _, rest = line.partition(": ")
            if not under(module):
                kept[module] = rest
    kept.update((m, " ".join(sorted(v, key=_sort_key))) for m, v in names.items())
    kept_excluded.update(excluded)
    lines = [*head, *(f"{m}: {v}" for m, v in sorted(kept.items()))]
    lines += [f"!{n} {r}" for n, r in sorted(kept_excluded.items())]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
