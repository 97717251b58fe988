"""Python code in model metadata (LW-MODEL-047): a metadata string that is a Python program calling code
execution, process, network or file-system primitives.

Loaders never evaluate safetensors, GGUF or ONNX metadata, so such a string runs nothing when the model loads; it
is a payload staged for whatever later evaluates metadata (a serving wrapper's "init hook", an ``eval`` in a
training script). Judged by parsing, not by pattern: the text must be a Python program (``ast.parse``) and one of
its calls must name such a primitive. Prose that mentions ``eval`` or ``os.system`` does not parse and says nothing;
shell commands, URLs and HTML are not Python and are not judged here.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

from loopwarden.checks.models import rules

if TYPE_CHECKING:
    from loopwarden.checks.models._base import ScanContext
    from loopwarden.domain import Location

__all__ = ["check_metadata_value", "dangerous_calls", "long_program_names", "program_calls"]

_MODULES: Final = (
    r"(?:os|posix|nt|subprocess|pty|socket|builtins|importlib|pickle|marshal|shutil|ctypes|runpy|urllib|"
    r"requests|httpx|commands|dill|cloudpickle|torch)"
)
# Patterns are kept as text: re compiles and caches each on first use, so a scan that never needs one does not
# pay for compiling it when the module loads.
_PREFILTER: Final = (
    r"\b(?:eval|exec|compile|__import__|breakpoint|execfile|getattr|globals|vars|locals)\b|\bopen\s*\("
    rf"|\b{_MODULES}\s*\.\s*[A-Za-z_]|\b(?:import|from)\s+{_MODULES}\b"
    r"|__(?:builtins|dict|globals|subclasses|getattribute)__"
)
# Ways to reach a primitive without naming it in a call: name resolution by string, the namespaces themselves, and
# object internals (().__class__.__base__.__subclasses__()), and getattr spelled as a method
# (os.__getattribute__('system')).
_RESOLVERS: Final = frozenset({"getattr", "globals", "vars", "locals"})
_INTERNALS: Final = frozenset(
    {"__builtins__", "__dict__", "__globals__", "__subclasses__", "__code__", "__base__", "__getattribute__"}
)
_MAX_TEXT: Final = 1 << 16
"""Programs up to this many characters are parsed whole (``ast.parse`` costs some 350 bytes per character of dense
code); a longer one that names a primitive in its code (see :func:`long_program_names`) is unverified."""
_NAMES: Final = frozenset(
    {"eval", "exec", "compile", "__import__", "breakpoint", "execfile", "open", "io.open"}
)
_PREFIXES: Final = (
    "os.system",
    "os.popen",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.kill",
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "os.removedirs",
    "os.chmod",
    "os.chown",
    "os.rename",
    "os.replace",
    "os.putenv",
    "posix.",
    "nt.",
    "subprocess.",
    "pty.",
    "socket.",
    "builtins.",
    "importlib.",
    "pickle.load",
    "marshal.load",
    "dill.load",
    "cloudpickle.load",
    "shutil.rmtree",
    "shutil.move",
    "ctypes.",
    "runpy.",
    "urllib.request.",
    "requests.",
    "httpx.",
    "commands.",
    "torch.load",
)


def _dotted(node: Any) -> str | None:
    import ast

    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Call):  # __import__('os').system(...)
        inner = _dotted(node.func)
        if inner == "__import__" and node.args and isinstance(node.args[0], ast.Constant):
            parts.append(str(node.args[0].value))
            return ".".join(reversed(parts))
    return None


def dangerous_calls(text: str) -> list[str]:
    """The dangerous calls of ``text`` when it is a Python program, in order, without repeats; else []."""
    if len(text) > _MAX_TEXT or re.search(_PREFILTER, text) is None:
        return []
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return []
    aliases: dict[str, str] = {}  # import os as o -> o: os; from os import system as s -> s: os.system
    found: dict[str, None] = {}
    stars: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                if a.name == "*":
                    stars.append(node.module)  # from os import *; system('id')
                else:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    calls = False
    internals: dict[str, None] = {}
    for node in ast.walk(tree):
        targets: list[Any] = []
        if isinstance(node, ast.Call):
            calls = True
            targets.append(node.func)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            targets.extend(node.decorator_list)  # @exec above a class whose decorators made a string
        for target in targets:
            name = _resolved(target, aliases)
            if name is None:
                continue
            if name in _NAMES or _dangerous(name):
                found[name] = None
            elif "." not in name and any(_dangerous(f"{m}.{name}") for m in stars):
                found[next(f"{m}.{name}" for m in stars if _dangerous(f"{m}.{name}"))] = None
            elif (
                name in _RESOLVERS and isinstance(node, ast.Call) and _resolves_primitive(node, tree, aliases)
            ):
                found[name] = None
        if isinstance(node, ast.Attribute) and node.attr in _INTERNALS:
            internals[node.attr] = None
        elif isinstance(node, ast.Name) and node.id in _INTERNALS:
            internals[node.id] = None
    if calls:  # a primitive taken as a value and called under another name (f = os.system; f('id'))
        found.update(internals)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute) and isinstance(node.ctx, ast.Load):
                name = _resolved(node, aliases)
                if name is not None and (name in _NAMES or _dangerous(name)):
                    found[name] = None
    return list(found)


def _resolved(node: Any, aliases: dict[str, str]) -> str | None:
    name = _dotted(node)
    if name is None:
        return None
    head, dot, rest = name.partition(".")
    return aliases[head] + dot + rest if head in aliases else name


def _dangerous(name: str) -> bool:
    if name.endswith(".*"):  # a module whose primitives are listed
        module = name[:-1]
        return any(p.startswith(module) or module.startswith(p) for p in _PREFIXES)
    return name.startswith(_PREFIXES)


_PRIMITIVE_WORDS: Final = _NAMES | _INTERNALS | {"builtins", "system", "popen", "spawn", "import_module"}


def _resolves_primitive(call: Any, tree: Any, aliases: dict[str, str]) -> bool:
    """Whether a getattr/globals/vars/locals call can reach a primitive: it is handed a module whose primitives
    are listed (or the builtins), its name is computed, or the program spells a primitive's name as a string.
    ``getattr(config, 'hidden_size', 768)`` is not."""
    import ast

    for arg in call.args:
        name = _resolved(arg, aliases)
        if name is not None and (name in ("__builtins__", "builtins") or _dangerous(name + ".*")):
            return True
    if _dotted(call.func) == "getattr" and len(call.args) >= 2 and not isinstance(call.args[1], ast.Constant):
        return True
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in _PRIMITIVE_WORDS
        for n in ast.walk(tree)
    )


_CALLED_NAMES: Final = frozenset(
    {"eval", "exec", "compile", "__import__", "breakpoint", "execfile", "open", *_RESOLVERS}
)
_MODULE_NAMES: Final = frozenset(_MODULES[3:-1].split("|"))


def long_program_names(text: str) -> list[str]:
    """For a text longer than the code check parses: the primitives its code (not its strings or comments) names,
    read token by token in bounded memory, when it tokenizes as Python; else [] (prose with an apostrophe, a
    backtick or an unclosed bracket, JSON whose only names are true/false/null, shell, HTML).

    Names counted: a call of ``eval``/``exec``/``compile``/``__import__``/``open``/``getattr``/``globals``/``vars``/
    ``locals`` and the like, a listed primitive spelt as ``module.name``, an import of a listed module (whose
    names the program may then call under an alias), and interpreter internals (``__builtins__``,
    ``__subclasses__`` ...). Such a program cannot be judged: the caller reports it unverified."""
    if re.search(_PREFILTER, text) is None:
        return []
    import io
    import tokenize

    found: dict[str, None] = {}
    last: list[str] = ["", "", ""]  # the last three significant tokens (NAME or OP), oldest first
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            kind = tok.type
            if kind == tokenize.ERRORTOKEN:
                if tok.string.strip():
                    return []  # a character no Python program has outside a string: not a program
                continue
            if kind not in (tokenize.NAME, tokenize.OP):
                continue
            word = tok.string
            if word == "(" and last[2] in _CALLED_NAMES and last[1] != ".":
                found[last[2]] = None
            elif kind == tokenize.NAME:
                if word in _INTERNALS:
                    found[word] = None
                elif last[2] in ("import", "from") and word in _MODULE_NAMES:
                    found[f"import {word}"] = None
                elif last[2] == "." and last[1] in _MODULE_NAMES and _dangerous(f"{last[1]}.{word}"):
                    found[f"{last[1]}.{word}"] = None
            last = [last[1], last[2], word]
    except (tokenize.TokenError, SyntaxError, ValueError):  # IndentationError is a SyntaxError
        return []
    return list(found)


def program_calls(text: str, ctx: ScanContext, location: Location, what: str) -> list[str]:
    """The dangerous calls of ``text`` when it is a Python program (:func:`dangerous_calls`). A program too long to
    parse that names a primitive is reported unverified at ``location`` (``what`` names the text), and gives []."""
    if len(text) <= _MAX_TEXT:
        return dangerous_calls(text)
    names = long_program_names(text)
    if names:
        ctx.fail(
            location,
            f"{what} is a Python program of {len(text)} characters naming {', '.join(names[:5])}: longer than the "
            f"{_MAX_TEXT} characters the code check parses",
        )
    return []


def check_metadata_value(
    key: str, value: str, ctx: ScanContext, location: Location, *, where: str, label: str | None = None
) -> None:
    """Report ``value`` (metadata ``key`` of a ``where`` file: safetensors, GGUF, ONNX) when it is a Python program
    calling a primitive (LW-MODEL-047). A program too long to parse that names one is unverified. ``label`` names
    where the value sits when it is not the format's metadata."""
    from loopwarden.checks.models.configs import check_metadata_targets

    check_metadata_targets(key, value, ctx, location, where=where)
    calls = program_calls(value, ctx, location, f"metadata '{key[:100]}'")
    if calls:
        label = label or ("__metadata__" if where == "safetensors" else "metadata")
        ctx.add(
            rules.MetadataCode,
            f"{label} '{key[:100]}' is Python code calling "
            f"{', '.join(calls[:5])}: inert for {where} loaders, a payload for anything that evaluates it",
            location,
            key=key[:200],
            calls=calls[:20],
        )
