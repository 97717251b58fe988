"""What a Python source does when it is imported or called, judged from its syntax tree (never compiled, never run).

Used for the modules a ``torch.package`` archive ships (LW-MODEL-050): ``PackageImporter`` runs their module-level
code when a pickle of the archive names them (or a shipped module they import), and the rest when the loader or the
model calls it. Each reference is resolved through the module's imports and aliases (``import os as o``, ``from
subprocess import Popen as P``, ``f = os.system``, ``__import__("os")``, ``getattr(os, "sys" + "tem")``,
``vars(os)["system"]``, ``globals()["__builtins__"]``) and judged by capability:

* critical: process spawn, code execution, dynamic import, unpickling, interpreter internals (``__builtins__``,
  ``__subclasses__``, frames), ``sys.modules`` and the import machinery, a computed name looked up on a module of
  primitives or in the module's namespace;
* high: network, writing or deleting files, native code (``ctypes``, ``torch.ops.load_library``), changing the
  environment, replacing an attribute of an imported module;
* medium: reading files or the environment, computed lookups on other values, a module the archive takes from the
  environment (extern) that the scanner does not know;
* nothing: plain model code (torch, numpy, math, typing, dataclasses, functools, collections ...).

Every name is judged wherever it appears: called, taken as a value (``f = os.system``, a decorator, a lambda's
default argument), at module level, in a class body, in ``__init_subclass__`` or a metaclass, behind ``try``.
"""

from __future__ import annotations

import ast
import base64
import binascii
import builtins
import codecs
from dataclasses import dataclass
from typing import Final

from loopwarden.checks.models.allowlist import TORCH_MEMORY_PRIMITIVES
from loopwarden.domain import Severity

__all__ = ["IMPLICIT_IMPORTS", "MAX_SOURCE_CHARS", "Hit", "SourceTooComplex", "judge_source"]

_C = Severity.CRITICAL
_H = Severity.HIGH
_M = Severity.MEDIUM

_BUILTIN_NAMES: Final = frozenset(dir(builtins))
_ALWAYS_BUILTIN: Final = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "breakpoint",
        "__import__",
        "open",
        "getattr",
        "setattr",
        "delattr",
        "vars",
        "globals",
    }
)
"""Builtins judged as such even where the module also binds the name (a parameter ``eval``, a ``del`` that uncovers
the builtin again): called, they are the builtin as far as the scanner can tell."""
_BUILTIN_CAPS: Final[dict[str, tuple[Severity, str]]] = {
    "exec": (_C, "code execution"),
    "eval": (_C, "code execution"),
    "compile": (_C, "code execution"),
    "breakpoint": (_C, "code execution"),
    "execfile": (_C, "code execution"),
    "__import__": (_C, "dynamic import"),
}

# (prefix, severity, capability); severity None: harmless. An entry names a module (``subprocess``: matched whole or
# as a parent) or, with a dot, a function prefix (``os.exec`` matches ``os.execv``, ``pickle.load`` ``pickle.loads``).
_TABLE: Final[tuple[tuple[str, Severity | None, str], ...]] = (
    # process spawn
    *((f"{m}.{f}", _C, "process spawn") for m in ("os", "posix", "nt") for f in (
        "system", "popen", "exec", "spawn", "posix_spawn", "fork", "forkpty", "startfile", "_exit",
    )),
    *((f"{m}.kill", _H, "signals processes") for m in ("os", "posix", "nt")),
    ("subprocess", _C, "process spawn"),
    ("_posixsubprocess", _C, "process spawn"),
    ("pty", _C, "process spawn"),
    ("multiprocessing", _C, "process spawn"),
    ("concurrent.futures.ProcessPoolExecutor", _C, "process spawn"),
    ("concurrent.futures.process", _C, "process spawn"),
    ("asyncio.create_subprocess_", _C, "process spawn"),
    ("asyncio.subprocess", _C, "process spawn"),
    ("webbrowser", _C, "process spawn"),
    ("pydoc.pipepager", _C, "process spawn"),
    ("pydoc.pager", _C, "process spawn"),
    ("platform.popen", _C, "process spawn"),
    ("commands", _C, "process spawn"),
    ("popen2", _C, "process spawn"),
    ("distutils.spawn", _C, "process spawn"),
    ("torch.utils.cpp_extension", _C, "compiles and loads native code"),
    ("torch.distributed.elastic", _C, "process spawn"),
    ("torch.distributed.run", _C, "process spawn"),
    ("torch.distributed.launch", _C, "process spawn"),
    # code execution and dynamic import
    *((f"builtins.{n}", s, c) for n, (s, c) in _BUILTIN_CAPS.items()),
    ("importlib", _C, "dynamic import"),
    ("imp", _C, "dynamic import"),
    ("zipimport", _C, "dynamic import"),
    ("pkgutil.resolve_name", _C, "dynamic import"),
    ("pkgutil.get_loader", _C, "dynamic import"),
    ("pkgutil.find_loader", _C, "dynamic import"),
    ("pkgutil.ImpImporter", _C, "dynamic import"),
    ("runpy", _C, "code execution"),
    ("code", _C, "code execution"),
    ("codeop", _C, "code execution"),
    ("types.FunctionType", _C, "code execution"),
    ("types.LambdaType", _C, "code execution"),
    ("types.CodeType", _C, "code execution"),
    ("marshal.load", _C, "code execution"),
    ("pickle.load", _C, "unpickling"),
    ("pickle.Unpickler", _C, "unpickling"),
    ("_pickle.load", _C, "unpickling"),
    ("_pickle.Unpickler", _C, "unpickling"),
    ("shelve", _C, "unpickling"),
    ("dill", _C, "unpickling"),
    ("cloudpickle", _C, "unpickling"),
    ("joblib.load", _C, "unpickling"),
    ("yaml.unsafe_load", _C, "code execution"),
    ("yaml.full_load", _C, "code execution"),
    ("yaml.UnsafeLoader", _C, "code execution"),
    ("yaml.Loader", _C, "code execution"),
    ("torch.hub.load", _C, "downloads and runs code"),
    ("torch.package", _C, "loads another package's code"),
    ("torch.serialization._load", _C, "unpickling"),
    ("torch.ops.load_library", _H, "native code"),
    ("torch.classes.load_library", _H, "native code"),
    ("torch._ops.load_library", _H, "native code"),
    ("torch.jit.load", _H, "loads TorchScript from a file"),
    ("torch.load", _H, "reads a file and unpickles it"),
    ("torch.save", _H, "writes files"),
    ("torch.from_file", _H, "maps a file"),
    ("torch.hub", _H, "network"),
    ("torch.distributed.init_process_group", _H, "network"),
    ("torch.distributed.rpc", _H, "network"),
    ("torch.distributed.TCPStore", _H, "network"),
    ("torch.distributed.FileStore", _H, "writes files"),
    ("sys.modules", _C, "reaches or replaces loaded modules"),
    ("sys.meta_path", _C, "import machinery"),
    ("sys.path_hooks", _C, "import machinery"),
    ("sys.path_importer_cache", _C, "import machinery"),
    ("sys._getframe", _C, "interpreter frames"),
    ("sys.settrace", _H, "interpreter hooks"),
    ("sys.setprofile", _H, "interpreter hooks"),
    ("sys.addaudithook", _H, "interpreter hooks"),
    ("sys.path", _H, "changes the import path"),
    ("inspect.currentframe", _C, "interpreter frames"),
    ("inspect.stack", _C, "interpreter frames"),
    ("inspect.getouterframes", _C, "interpreter frames"),
    ("inspect.trace", _C, "interpreter frames"),
    ("gc.get_objects", _C, "reaches every live object"),
    ("gc.get_referrers", _C, "reaches every live object"),
    ("gc.get_referents", _C, "reaches every live object"),
    ("ctypes", _H, "native code"),
    ("_ctypes", _H, "native code"),
    ("cffi", _H, "native code"),
    ("mmap", _H, "maps files"),
    # network
    *((m, _H, "network") for m in (
        "socket", "_socket", "ssl", "socketserver", "http.client", "http.server", "http.cookiejar", "urllib.request",
        "urllib.urlopen", "urllib2", "httplib", "ftplib", "smtplib", "poplib", "imaplib", "nntplib", "telnetlib",
        "xmlrpc", "requests", "httpx", "urllib3", "aiohttp", "websocket", "websockets", "paramiko", "grpc", "zmq",
        "asyncio.open_connection", "asyncio.start_server", "asyncio.open_unix_connection", "huggingface_hub",
        "boto3", "botocore", "wget", "pycurl",
    )),
    # files and the environment
    *((f"{m}.{f}", _H, "writes or deletes files") for m in ("os", "posix", "nt") for f in (
        "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace", "mkdir", "makedirs", "chmod",
        "lchmod", "fchmod", "chown", "lchown", "fchown", "link", "symlink", "truncate", "ftruncate", "mkfifo",
        "mknod", "write", "pwrite", "writev", "utime", "chroot", "chdir", "fchdir", "open", "fdopen", "dup2",
        "setuid", "setgid", "seteuid", "setegid", "umask", "sendfile", "copy_file_range",
    )),
    *((f"{m}.{f}", _H, "changes the environment") for m in ("os", "posix", "nt") for f in ("putenv", "unsetenv")),
    *((f"{m}.{f}", _M, "reads files") for m in ("os", "posix", "nt") for f in (
        "listdir", "scandir", "walk", "fwalk", "read", "pread", "readlink",
    )),
    *((f"{m}.{f}", _M, "reads the environment") for m in ("os", "posix", "nt") for f in ("getenv", "environ")),
    ("shutil", _H, "writes or deletes files"),
    ("shutil.which", None, ""),
    ("shutil.disk_usage", None, ""),
    ("shutil.get_terminal_size", None, ""),
    ("tempfile", _H, "writes files"),
    ("tempfile.gettempdir", None, ""),
    ("tempfile.gettempprefix", None, ""),
    ("pickle.dump", _H, "writes files"),
    ("pickle.dumps", None, ""),
    ("marshal.dump", _H, "writes files"),
    ("marshal.dumps", None, ""),
    ("numpy.save", _H, "writes files"),
    ("numpy.memmap", _H, "maps files"),
    ("numpy.fromfile", _M, "reads files"),
    ("numpy.loadtxt", _M, "reads files"),
    ("numpy.genfromtxt", _M, "reads files"),
    ("zipfile", _M, "reads files"),
    ("tarfile", _M, "reads files"),
    ("glob", _M, "reads files"),
    ("linecache", _M, "reads files"),
    ("fileinput", _M, "reads files"),
    ("json.load", _M, "reads files"),
    ("json.loads", None, ""),
    ("getpass.getpass", _M, "reads the terminal"),
)  # fmt: skip
_CAPS: Final[dict[str, tuple[Severity | None, str]]] = {p: (s, c) for p, s, c in _TABLE}
_BY_TOP: Final[dict[str, tuple[str, ...]]] = {
    top: tuple(sorted((p for p in _CAPS if p.split(".")[0] == top), key=len, reverse=True))
    for top in {p.split(".")[0] for p in _CAPS}
}
"""The table's entries by top-level module, longest first (the longest matching entry decides)."""

_OPENERS: Final = frozenset(
    {"builtins.open", "io.open", "_io.open", "codecs.open", "io.FileIO", "_io.FileIO"}
)
"""Calls whose mode says whether they read (medium) or write (high)."""
_DANGEROUS_MODULES: Final = frozenset(
    {
        "os", "posix", "nt", "sys", "subprocess", "builtins", "importlib", "ctypes", "socket", "pickle", "marshal",
        "shutil", "pty", "runpy", "code", "types", "inspect", "gc", "multiprocessing", "io", "_io", "dill",
        "cloudpickle", "_pickle", "_posixsubprocess", "posixpath", "operator", "functools", "pathlib", "tempfile",
        "webbrowser", "__builtins__", "_ctypes", "asyncio", "urllib", "http", "requests", "imp", "zipimport",
        "pkgutil",
    }
)  # fmt: skip
"""Modules through which a computed attribute name reaches a primitive (``getattr(os, name)``; ``functools.sys`` is
a module it imports). ``torch`` is not one: model code looks layers and dtypes up by name (``getattr(nn, act)``); a
computed lookup on the result of one (``getattr(getattr(torch, a), b)``, reaching ``torch.os.system``) is."""
_STRONG_WORDS: Final = frozenset(
    {
        "system", "popen", "Popen", "check_output", "check_call", "getoutput", "getstatusoutput", "execv",
        "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve", "spawnvp",
        "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "posix_spawn", "posix_spawnp", "import_module",
        "__import__", "load_library", "LoadLibrary", "CDLL", "PyDLL", "WinDLL", "run_path", "run_module",
        "unsafe_load", "exec_module", "load_module",
    }
)  # fmt: skip
"""Attribute names that say process spawn, dynamic import or code execution on a receiver the scanner cannot resolve
(``[m for m in gc.get_objects() if ...][0].system``, ``getattr(torch, a).system``)."""
_FILE_METHODS: Final[dict[str, tuple[Severity, str]]] = {
    "write_text": (_H, "writes files"),
    "write_bytes": (_H, "writes files"),
    "symlink_to": (_H, "writes files"),
    "hardlink_to": (_H, "writes files"),
    "extractall": (_H, "writes files"),
    "unlink": (_H, "deletes files"),
    "rmtree": (_H, "deletes files"),
    "read_text": (_M, "reads files"),
    "read_bytes": (_M, "reads files"),
}
"""Methods of file objects (``pathlib.Path``, ``tarfile``) whose names no model class needs."""
_CRITICAL_INTERNALS: Final = frozenset(
    {
        "__builtins__", "__globals__", "__subclasses__", "__code__", "f_globals", "f_builtins", "f_locals", "f_back",
        "gi_frame", "cr_frame", "ag_frame", "tb_frame", "co_code", "func_globals",
    }
)  # fmt: skip
_COMPUTED_LOOKUPS: Final = frozenset({"getattr", "hasattr", "delattr", "setattr"})
_NAMESPACES: Final = frozenset({"globals", "vars", "locals"})
_NAMESPACE_METHODS: Final = frozenset({"get", "pop", "setdefault", "values", "items", "popitem"})
"""Methods of ``X.__dict__`` / ``vars(X)`` that hand out ``X``'s attributes: lookups by name, or all at once."""
_LOADER_CALLED: Final = frozenset(
    {
        "__setstate__", "__reduce__", "__reduce_ex__", "__new__", "__init__", "__init_subclass__", "__set_name__",
        "__class_getitem__", "__getattr__", "__getattribute__", "__del__", "__prepare__", "__call__",
        "__instancecheck__", "__subclasscheck__", "__mro_entries__", "__setattr__", "__setitem__", "__hash__",
        "__eq__",
    }
)  # fmt: skip
"""Methods that run while a pickle is read (``BUILD`` calls ``__setstate__``, ``REDUCE`` of a class its
``__init__``, a module's ``__getattr__`` answers the ``GLOBAL``, a metaclass's ``__new__`` runs at import): named as
such in the finding."""
IMPLICIT_IMPORTS: Final = frozenset({"numpy", "numpy.core", "numpy.core._multiarray_umath", "builtins"})
"""Modules ``PackageImporter`` imports from the environment although the archive does not list them extern."""
MAX_SOURCE_CHARS: Final = 1 << 19
"""Characters of one source parsed (dense code costs some 350 bytes of syntax tree per character): a longer source is
unverified."""


class SourceTooComplex(Exception):
    """The source cannot be judged: too long, too deeply nested, or not Python this interpreter parses."""


@dataclass(frozen=True, slots=True)
class Hit:
    severity: Severity
    what: str
    """The name as resolved (``os.system``, ``open (mode 'w')``, ``getattr(os, <computed>)``)."""
    capability: str
    where: str
    """``at import``, ``in class M`` (its body runs at import), ``in M.__setstate__ (which loading calls)`` ..."""
    line: int

    def describe(self) -> str:
        return f"{self.what} ({self.capability}) {self.where}, line {self.line}"


def judge_source(
    text: str, module: str, *, is_package: bool, shipped: frozenset[str], extern: frozenset[str]
) -> list[Hit]:
    """The capabilities ``text`` (the source of ``module`` in a torch.package archive) reaches, most severe first.
    ``shipped``: the modules the archive carries source for; ``extern``: its ``.data/extern_modules``.
    Raises :class:`SourceTooComplex` for a source that cannot be judged."""
    if len(text) > MAX_SOURCE_CHARS:
        raise SourceTooComplex(f"is longer than the {MAX_SOURCE_CHARS} characters the code check parses")
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:  # a newer Python may run what this one cannot parse
        raise SourceTooComplex(f"does not parse as Python here ({exc.msg}, line {exc.lineno})") from None
    except (RecursionError, MemoryError, ValueError, OverflowError) as exc:
        raise SourceTooComplex(f"cannot be parsed ({type(exc).__name__})") from None
    try:
        return _Judge(tree, module, is_package, shipped, extern).run()
    except RecursionError:
        raise SourceTooComplex("is nested too deeply to judge") from None


class _Judge:
    def __init__(
        self, tree: ast.Module, module: str, is_package: bool, shipped: frozenset[str], extern: frozenset[str]
    ) -> None:
        self.tree = tree
        self.package = module if is_package else module.rpartition(".")[0]
        self.shipped = shipped
        self.extern = extern
        self.aliases: dict[str, str] = {}
        self.bound: set[str] = set()
        """Names the module binds itself (parameters, assignments, definitions): such a name is not the builtin
        of that name, except those of :data:`_ALWAYS_BUILTIN`."""
        self.parents: dict[int, ast.AST] = {}
        self.hits: dict[tuple[str, str], Hit] = {}

    def run(self) -> list[Hit]:
        pending: list[tuple[ast.AST, str]] = [(self.tree, "at import")]
        order: list[tuple[ast.AST, str]] = []
        while pending:  # iterative: a deep tree must not exhaust the stack here
            node, where = pending.pop()
            order.append((node, where))
            for child, child_where in self._children(node, where):
                self.parents[id(child)] = node
                pending.append((child, child_where))
        for node, where in order:
            self._collect_alias(node, where)
            if isinstance(node, ast.arg):
                self.bound.add(node.arg)
            elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                self.bound.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.bound.add(node.name)
        for _ in range(3):  # chains of plain assignments (a = os; b = a.system)
            for node, _ in order:
                self._collect_assignment(node)
        for node, where in order:
            self._judge(node, where)
        return sorted(self.hits.values(), key=lambda h: (-h.severity, h.line))

    def _children(self, node: ast.AST, where: str) -> list[tuple[ast.AST, str]]:
        """Child nodes with the scope their code runs in: a function's decorators, defaults and annotations run where
        it is defined, its body when it is called; a class body runs where the class is defined."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            name = "a lambda" if isinstance(node, ast.Lambda) else node.name
            owner = where[len("in class ") :] if where.startswith("in class ") else ""
            inner = f"in {owner}.{name}" if owner else f"in {name}"
            if name in _LOADER_CALLED:
                inner += " (which loading calls)"
            body: list[ast.AST] = list(node.body) if isinstance(node.body, list) else [node.body]
            head: list[ast.AST] = [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            if not isinstance(node, ast.Lambda):
                head += node.decorator_list
                if node.returns is not None:
                    head.append(node.returns)
            args: list[ast.arg] = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            args += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            head += [a.annotation for a in args if a.annotation is not None]
            return [(c, where) for c in head] + [(c, inner) for c in (*args, *body)]
        if isinstance(node, ast.ClassDef):
            head = [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
            cls = f"in class {node.name}"
            return [(c, where) for c in head] + [
                (c, cls if where == "at import" else where) for c in node.body
            ]
        return [(c, where) for c in ast.iter_child_nodes(node)]

    # -- resolution -------------------------------------------------------------------------------------------
    def _absolute(self, module: str | None, level: int) -> str:
        if level == 0:
            return module or ""
        base = self.package.split(".") if self.package else []
        if level > 1:
            base = base[: max(0, len(base) - (level - 1))]
        return ".".join([*base, *([module] if module else [])])

    def _collect_alias(self, node: ast.AST, where: str) -> None:
        if isinstance(node, ast.Import):
            for a in node.names:
                self._imported(a.name, node, where)
                if a.asname:
                    self.aliases[a.asname] = a.name
                else:
                    top = a.name.split(".")[0]
                    self.aliases.setdefault(top, top)
        elif isinstance(node, ast.ImportFrom):
            base = self._absolute(node.module, node.level)
            for a in node.names:
                if a.name == "*":
                    self._imported(base, node, where)
                    self.aliases.setdefault(f"*{base}", base)
                    continue
                full = f"{base}.{a.name}" if base else a.name
                self._imported(full if full in self.shipped else base, node, where)
                self.aliases[a.asname or a.name] = full

    def _collect_assignment(self, node: ast.AST) -> None:
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            name = self.resolve(node.value)
            if name is None:
                return
            for t in targets:
                if isinstance(t, ast.Name) and t.id not in self.aliases:
                    self.aliases[t.id] = name

    def resolve(self, node: ast.AST | None) -> str | None:
        """The dotted name an expression denotes, through aliases, ``__import__``, ``importlib.import_module``,
        ``getattr`` and namespace subscripts; ``<computed>`` stands for a name the source computes, ``<namespace>``
        for ``globals()``."""
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                return self.aliases[node.id]
            if node.id == "__builtins__":
                return "builtins"
            if node.id in _BUILTIN_NAMES and (node.id not in self.bound or node.id in _ALWAYS_BUILTIN):
                return f"builtins.{node.id}"
            for key, base in self.aliases.items():  # from os import *; system(...)
                if key.startswith("*") and _capability(f"{base}.{node.id}")[0] is not None:
                    return f"{base}.{node.id}"
            return None
        if isinstance(node, ast.Attribute):
            if node.attr == "__builtins__":
                return "builtins"
            if node.attr == "__dict__":
                return self.resolve(node.value)
            owner = self.resolve(node.value)
            if owner is not None and _is_namespace_of(node.value) and node.attr in _NAMESPACE_METHODS:
                return f"{owner}.__dict__.{node.attr}"  # os.__dict__.get is not os.get
            return f"{owner}.{node.attr}" if owner is not None else None
        if isinstance(node, ast.Call):
            return self._resolve_call(node)
        if isinstance(node, ast.Subscript):
            return self._resolve_subscript(node)
        return None

    def _resolve_subscript(self, node: ast.Subscript) -> str | None:
        base = self.resolve(node.value)
        if base is None:
            return None
        key = _fold(node.slice)
        if base == "<namespace>":
            return "<namespace>.<computed>" if key is None else self.resolve(ast.Name(id=key, ctx=ast.Load()))
        if base == "sys.modules":
            return key if key is not None else "<computed>"
        if _is_namespace_of(node.value) or base == "builtins":
            return f"{base}.{key if key is not None else '<computed>'}"
        return None

    def _resolve_call(self, node: ast.Call) -> str | None:
        func = self.resolve(node.func)
        lookup = self._lookup_call(node, func)
        if lookup is not None:
            base, attr = lookup
            return None if base is None else f"{base}.{attr if attr is not None else '<computed>'}"
        if func in ("builtins.__import__", "importlib.import_module", "importlib.__import__") and node.args:
            name = _fold(node.args[0])
            if name is None:
                return "<computed>"
            fromlist = len(node.args) >= 4 or any(k.arg == "fromlist" for k in node.keywords)
            return name.split(".")[0] if func == "builtins.__import__" and not fromlist else name
        if func in ("builtins.getattr", "operator.attrgetter") and len(node.args) >= 2:
            base = self.resolve(node.args[0])
            attr = _fold(node.args[1])
            return None if base is None else f"{base}.{attr if attr is not None else '<computed>'}"
        if func == "builtins.vars" and node.args:
            return self.resolve(node.args[0])
        if func in ("builtins.globals", "builtins.locals", "builtins.vars"):
            return "<namespace>"
        return None

    def _lookup_call(self, node: ast.Call, func: str | None) -> tuple[str | None, str | None] | None:
        """``getattr`` spelled as a method: ``X.__getattribute__(n)``, ``object.__getattribute__(X, n)``, a module's
        ``__getattr__``, ``X.__dict__.get(n)`` / ``vars(X).pop(n)``, and ``X.__dict__.values()`` (every attribute
        at once): (the owner ``X`` as resolved, the folded name or None when computed); None for any other call."""
        if func is None:
            if (
                isinstance(node.func, ast.Attribute)
                and node.func.attr in ("__getattribute__", "__getattr__")
                and len(node.args) >= 2
            ):  # type(X).__getattribute__(X, n): the class does not resolve, the owner may
                return self.resolve(node.args[0]), _fold(node.args[1])
            return None
        head, _, method = func.rpartition(".")
        if method in ("__getattribute__", "__getattr__") and head:
            if len(node.args) >= 2:  # unbound: object.__getattribute__(X, n), type(X).__getattribute__(X, n)
                return self.resolve(node.args[0]), _fold(node.args[1])
            return head, _fold(node.args[0]) if node.args else None
        if head.endswith(".__dict__") and method in _NAMESPACE_METHODS:
            owner = head[: -len(".__dict__")]
            if method in ("get", "pop", "setdefault") and node.args:
                return owner, _fold(node.args[0])
            return owner, None
        return None

    def _shipped_prefix(self, name: str) -> bool:
        parts = name.split(".")
        return any(".".join(parts[:i]) in self.shipped for i in range(len(parts), 0, -1))

    def _imported(self, name: str, node: ast.AST, where: str) -> None:
        """An import the module makes: a module the archive does not ship but lists extern comes from the
        environment; one the scanner does not know is reported (an import neither shipped nor extern fails)."""
        if not name or self._shipped_prefix(name) or name == "torch_package_importer":
            return
        from loopwarden.checks.models.allowlist import known_top_module

        if known_top_module(name):
            return
        if any(name == e or name.startswith(e + ".") for e in (*self.extern, *IMPLICIT_IMPORTS)):
            self._add(_M, f"import {name}", "an extern module from the environment the scanner does not know",
                      where, node)  # fmt: skip

    # -- judgement --------------------------------------------------------------------------------------------
    def _add(self, severity: Severity, what: str, capability: str, where: str, node: ast.AST) -> None:
        key = (what, where)
        old = self.hits.get(key)
        if old is None or old.severity < severity:
            self.hits[key] = Hit(severity, what[:200], capability, where, getattr(node, "lineno", 0))

    def _judge(self, node: ast.AST, where: str) -> None:
        if isinstance(node, ast.Call):
            self._judge_call(node, where)
        elif isinstance(node, ast.Name | ast.Attribute):
            self._judge_reference(node, where)
        elif isinstance(node, ast.Subscript):
            self._judge_subscript(node, where)
        if isinstance(node, ast.Assign | ast.Delete):
            for t in node.targets:
                self._judge_store(t, where)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            self._judge_store(node.target, where)

    def _judge_call(self, node: ast.Call, where: str) -> None:
        name = self.resolve(node.func)
        lookup = self._lookup_call(node, name)
        if lookup is not None:
            base, attr = lookup
            shown = f"{name}({'<computed>' if attr is None else repr(attr)})"
            if (
                base is None
            ):  # self.__getattribute__(n), nn.Module.__getattr__(self, n): model code's own lookups
                if attr in _STRONG_WORDS or attr in _CRITICAL_INTERNALS or attr in TORCH_MEMORY_PRIMITIVES:
                    self._add(_C, shown, "reaches a primitive by name", where, node)
            elif attr is None:
                self._judge_computed(base, shown, where, node)
            elif base.split(".")[0] in _DANGEROUS_MODULES and attr in _DANGEROUS_MODULES:
                self._add(_C, f"{base}.{attr}", "a module of primitives reached by name", where, node)
            else:
                self._judge_name(f"{base}.{attr}", where, node)
            return
        last = name.rsplit(".", 1)[-1] if name is not None else getattr(node.func, "attr", None)
        if last in TORCH_MEMORY_PRIMITIVES:
            self._add(_C, name or f"<value>.{last}", "raw memory at an address the code chooses", where, node)
            return
        if name is None:
            func = node.func
            if isinstance(func, ast.Attribute):
                if func.attr in _CRITICAL_INTERNALS:
                    self._add(_C, f"<value>.{func.attr}", "interpreter internals", where, node)
                elif func.attr in _STRONG_WORDS:
                    self._add(_C, f"<value>.{func.attr}", "process spawn or code execution", where, node)
                elif func.attr in _FILE_METHODS:
                    severity, capability = _FILE_METHODS[func.attr]
                    self._add(severity, f"<value>.{func.attr}", capability, where, node)
            return
        if name in _OPENERS:
            self._judge_open(node, name, where)
            return
        if name in ("torch.load", "numpy.load"):
            self._judge_load(node, name, where)
            return
        if name == "yaml.load":
            loader = next((k.value for k in node.keywords if k.arg == "Loader"), None)
            if loader is None and len(node.args) >= 2:
                loader = node.args[1]
            if loader is None or "Safe" not in (self.resolve(loader) or ""):
                self._add(_C, name, "code execution (yaml's Python tags)", where, node)
            return
        if name.startswith("builtins.") and name.count(".") == 1:
            tail = name[len("builtins.") :]
            if tail in _COMPUTED_LOOKUPS and node.args:
                self._judge_lookup(node, tail, where)
                return
            if tail in _NAMESPACES and not node.args:
                parent = self.parents.get(id(node))
                if not (isinstance(parent, ast.Subscript) and parent.value is node):
                    severity = _H if tail == "globals" or where == "at import" else _M
                    self._add(
                        severity, f"{tail}()", "the namespace (with __builtins__) as a value", where, node
                    )
                return  # a subscript of it is judged as the subscript
            if tail == "__import__" and node.args and _fold(node.args[0]) is not None:
                self._imported(_fold(node.args[0]) or "", node, where)
                return  # PackageImporter's import: what it names is judged as an import
        if name.startswith("importlib.import_module") and node.args:
            self._imported(_fold(node.args[0]) or "", node, where)
        self._judge_name(name, where, node)

    def _judge_open(self, node: ast.Call, name: str, where: str) -> None:
        mode: str | None = "r"
        if len(node.args) >= 2:
            mode = _fold(node.args[1])
        for k in node.keywords:
            if k.arg == "mode":
                mode = _fold(k.value)
        shown = name.removeprefix("builtins.")
        if mode is not None and not set(mode) & set("wax+"):
            self._add(_M, f"{shown} (mode {mode!r})", "reads files", where, node)
        else:
            self._add(
                _H,
                f"{shown} (mode {'computed' if mode is None else repr(mode)})",
                "writes files",
                where,
                node,
            )

    def _judge_load(self, node: ast.Call, name: str, where: str) -> None:
        flag = "weights_only" if name == "torch.load" else "allow_pickle"
        value = next((k.value for k in node.keywords if k.arg == flag), None)
        safe = isinstance(value, ast.Constant) and value.value is (name == "torch.load")
        if value is not None and not safe:
            self._add(_C, f"{name}({flag}={ast.unparse(value)[:40]})", "unpickling", where, node)
        elif name == "torch.load" and not safe:
            self._add(_H, name, "reads a file and unpickles it (any pickle before torch 2.6)", where, node)
        else:
            self._add(_M, name, "reads files", where, node)

    def _judge_lookup(self, node: ast.Call, func: str, where: str) -> None:
        base = self.resolve(node.args[0])
        attr = _fold(node.args[1]) if len(node.args) >= 2 else None
        if func in ("setattr", "delattr"):
            if base is not None and not self._shipped_prefix(base):
                severity = _C if base.startswith("<") else _store_severity(base)
                if severity is not None:
                    self._add(severity, f"{func}({base}, ...)", "replaces an attribute of an imported module",
                              where, node)  # fmt: skip
            return
        if base is None:
            if attr is None:
                self._add(_M, f"{func}(<value>, <computed>)", "computed lookup", where, node)
            elif attr in _STRONG_WORDS or attr in _CRITICAL_INTERNALS or attr in TORCH_MEMORY_PRIMITIVES:
                self._add(_C, f"{func}(<value>, {attr!r})", "reaches a primitive by name", where, node)
            return
        if attr is None:
            self._judge_computed(base, f"{func}({base}, <computed>)", where, node)
        elif base.split(".")[0] in _DANGEROUS_MODULES and attr in _DANGEROUS_MODULES:
            self._add(_C, f"{base}.{attr}", "a module of primitives reached by name", where, node)
        else:
            self._judge_name(f"{base}.{attr}", where, node)

    def _judge_computed(self, base: str, what: str, where: str, node: ast.AST) -> None:
        if base.split(".")[0] in _DANGEROUS_MODULES or "<" in base or _capability(base)[0] is not None:
            self._add(
                _C, what, "a computed name on a module of primitives or on a computed lookup", where, node
            )
        elif not self._shipped_prefix(base):
            self._add(_M, what, "computed lookup", where, node)

    def _judge_name(self, name: str, where: str, node: ast.AST) -> None:
        if name.startswith("<namespace>.<computed>") or name == "<computed>":
            self._add(_C, name, "a computed name in the module namespace or import", where, node)
            return
        if self._shipped_prefix(name):
            return  # the archive's own code, judged where it is shipped
        parts = name.split(".")
        if any(p in _CRITICAL_INTERNALS for p in parts):
            self._add(_C, name, "interpreter internals", where, node)
            return
        severity, capability = _capability(name)
        if severity is not None:
            self._add(severity, name, capability, where, node)
        elif parts[-1] in _STRONG_WORDS and len(parts) > 1:
            self._add(_C, name, "process spawn or code execution", where, node)

    def _judge_reference(self, node: ast.Name | ast.Attribute, where: str) -> None:
        """A name or attribute chain as a whole (not part of a longer chain nor the function of a call)."""
        parent = self.parents.get(id(node))
        if isinstance(parent, ast.Attribute) or (isinstance(parent, ast.Call) and parent.func is node):
            return
        if isinstance(node, ast.Attribute) and node.attr in _CRITICAL_INTERNALS:
            self._add(_C, f"<value>.{node.attr}", "interpreter internals", where, node)
            return
        if isinstance(node, ast.Attribute) and node.attr == "__dict__" and self.resolve(node.value) is None:
            if not isinstance(parent, ast.Subscript) or _fold(parent.slice) is None:
                self._add(_M, "<value>.__dict__", "computed lookup", where, node)
            return
        if not isinstance(node.ctx, ast.Load):
            return
        if isinstance(node, ast.Name) and node.id == "__builtins__":
            self._add(_C, "__builtins__", "interpreter internals", where, node)
            return
        name = self.resolve(node)
        if name is None:
            return
        if name.startswith("builtins.") and name.count(".") == 1:
            if isinstance(node, ast.Name) and node.id in self.bound:
                return  # the module's own variable of that name
            if name == "builtins.open":
                self._add(_H, "open (as a value)", "opens files in any mode", where, node)
                return
            if name[len("builtins.") :] not in _BUILTIN_CAPS:
                return
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return  # judged as the subscript
        if name in _DANGEROUS_MODULES and not self._shipped_prefix(name):
            self._add(_C, name, "a module of primitives taken as a value", where, node)
            return
        self._judge_name(name, where, node)

    def _judge_subscript(self, node: ast.Subscript, where: str) -> None:
        base = self.resolve(node.value)
        if base is not None and not base.startswith("<") and not _is_namespace_of(node.value):
            self._judge_name(base, where, node)  # sys.modules[...], os.environ[...]
        name = self.resolve(node)
        if name is None:
            return
        if name in _DANGEROUS_MODULES and not self._shipped_prefix(name):
            self._add(_C, name, "a module of primitives reached by name", where, node)
        elif name.endswith("<computed>") and base is not None and base != "<namespace>":
            self._judge_computed(base, f"{base}[<computed>]", where, node)
        else:
            self._judge_name(name, where, node)

    def _judge_store(self, target: ast.AST, where: str) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for t in target.elts:
                self._judge_store(t, where)
        elif isinstance(target, ast.Attribute):
            base = self.resolve(target.value)
            if base is not None and not base.startswith("<") and not self._shipped_prefix(base):
                severity = _store_severity(base)
                if severity is not None:
                    self._add(severity, f"{base}.{target.attr} = ...", "replaces an attribute of an imported module",
                              where, target)  # fmt: skip
        elif isinstance(target, ast.Subscript):
            base = self.resolve(target.value)
            if base in ("sys.modules", "os.environ", "posix.environ", "nt.environ") or (
                base is not None and base.startswith(("builtins", "<namespace>"))
            ):
                severity = _H if base.endswith("environ") else _C
                self._add(severity, f"{base}[...] = ...", "replaces loaded modules, builtins or the environment",
                          where, target)  # fmt: skip


def _capability(name: str) -> tuple[Severity | None, str]:
    """The table's judgement of ``name``, also through the modules other modules import (``torch.os.system``,
    ``os.sys.modules``, ``torch.hub.shutil.rmtree``): the most severe reading wins."""
    parts = name.split(".")
    best: tuple[Severity | None, str] = _capability_at(name)
    for i in range(1, len(parts) - 1):
        if parts[i] in _DANGEROUS_MODULES:
            got = _capability_at(".".join(parts[i:]))
            if got[0] is not None and (best[0] is None or got[0] > best[0]):
                best = got
    return best


def _capability_at(name: str) -> tuple[Severity | None, str]:
    if name.startswith("builtins.") and name.count(".") == 1:
        return _BUILTIN_CAPS.get(name[len("builtins.") :], (None, ""))
    for key in _BY_TOP.get(name.split(".", 1)[0], ()):
        if name == key or name.startswith(key + ".") or ("." in key and name.startswith(key)):
            return _CAPS[key]
    return None, ""


def _is_namespace_of(node: ast.AST) -> bool:
    """``X.__dict__`` or ``vars(X)``: a subscript of it is an attribute of ``X``."""
    if isinstance(node, ast.Attribute):
        return node.attr == "__dict__"
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "vars"
        and bool(node.args)
    )


def _store_severity(base: str) -> Severity | None:
    """Setting an attribute of imported module ``base``: the builtins, ``sys`` and the import machinery critical,
    other modules of primitives and torch's functions high, torch's configuration flags
    (``torch.backends.cudnn.benchmark``) nothing, any other module medium."""
    top = base.split(".")[0]
    if top in ("builtins", "sys", "importlib", "__builtins__"):
        return _C
    if top in _DANGEROUS_MODULES:
        return _H
    if top == "torch":
        parts = base.split(".")
        if (
            "backends" in parts
            or any("config" in p for p in parts)
            or parts[1:2] in (["_dynamo"], ["_inductor"])
        ):
            return None
        return _H
    return _M


def _fold(node: ast.AST | None, depth: int = 0) -> str | None:
    """The string an expression always evaluates to, when the source spells it from constants: concatenation,
    ``%``, f-strings of constants, ``"".join``, slicing, ``chr``, ``bytes.fromhex``, ``base64``/``rot13`` decoding."""
    if node is None or depth > 50:
        return None
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str):
            return node.value
        return node.value.decode("latin-1") if isinstance(node.value, bytes) else None
    if isinstance(node, ast.BinOp):
        return _fold_binop(node, depth)
    if isinstance(node, ast.JoinedStr):
        out = []
        for v in node.values:
            part = _fold(v.value if isinstance(v, ast.FormattedValue) else v, depth + 1)
            if part is None:
                return None
            out.append(part)
        return "".join(out)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        base = _fold(node.value, depth + 1)
        bounds: list[int | None] = []
        for b in (node.slice.lower, node.slice.upper, node.slice.step):
            if b is None:
                bounds.append(None)
                continue
            try:
                value = ast.literal_eval(b)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                return None
            if not isinstance(value, int):
                return None
            bounds.append(value)
        return None if base is None or bounds[2] == 0 else base[slice(*bounds)]
    if isinstance(node, ast.Call):
        return _fold_call(node, depth)
    return None


def _fold_binop(node: ast.BinOp, depth: int) -> str | None:
    left = _fold(node.left, depth + 1)
    if left is None:
        return None
    if isinstance(node.op, ast.Add):
        right = _fold(node.right, depth + 1)
        return left + right if right is not None else None
    if isinstance(node.op, ast.Mod):
        args: object = _fold(node.right, depth + 1)
        if args is None and isinstance(node.right, ast.Tuple):
            items = [_fold(e, depth + 1) for e in node.right.elts]
            args = tuple(items) if all(i is not None for i in items) else None
        if args is not None:
            try:
                return left % args
            except (TypeError, ValueError):
                return None
    return None


def _fold_call(node: ast.Call, depth: int) -> str | None:
    func = node.func
    if isinstance(func, ast.Name) and func.id == "chr" and len(node.args) == 1:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, int) and 0 <= arg.value < 0x110000:
            return chr(arg.value)
        return None
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr == "join" and len(node.args) == 1 and isinstance(node.args[0], ast.List | ast.Tuple):
        sep = _fold(func.value, depth + 1)
        items = [_fold(e, depth + 1) for e in node.args[0].elts]
        return sep.join(i or "" for i in items) if sep is not None and None not in items else None
    if func.attr in ("lower", "upper", "strip") and not node.args:
        base = _fold(func.value, depth + 1)
        return None if base is None else str(getattr(base, func.attr)())
    if func.attr in ("decode", "encode") and not node.args:
        return _fold(func.value, depth + 1)
    if func.attr == "replace" and len(node.args) == 2:
        base, old, new = (_fold(x, depth + 1) for x in (func.value, *node.args))
        return base.replace(old, new) if base is not None and old is not None and new is not None else None
    if func.attr == "fromhex" and len(node.args) == 1:
        text = _fold(node.args[0], depth + 1)
        try:
            return bytes.fromhex(text).decode("latin-1") if text is not None else None
        except ValueError:
            return None
    if func.attr in ("b64decode", "b32decode", "b16decode", "decodebytes", "urlsafe_b64decode") and node.args:
        text = _fold(node.args[0], depth + 1)
        try:
            return getattr(base64, func.attr)(text).decode("latin-1") if text is not None else None
        except (ValueError, binascii.Error):
            return None
    if func.attr == "decode" and len(node.args) == 2:
        text, codec = _fold(node.args[0], depth + 1), _fold(node.args[1], depth + 1)
        if text is not None and codec is not None and codec.replace("_", "").lower() == "rot13":
            return codecs.decode(text, "rot13")
    return None
