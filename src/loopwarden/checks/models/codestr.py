"""Python code in model metadata (LW-MODEL-047): a metadata string that is a Python program calling code
execution, process, network or file-system primitives.

Loaders never evaluate safetensors or GGUF metadata, so such a string runs nothing when the model loads; it is a
payload staged for whatever later evaluates metadata (a serving wrapper's "init hook", an ``eval`` in a training
script). Judged by parsing, not by pattern: the text must be a Python program (``ast.parse``) and one of its calls
must name such a primitive. Prose that mentions ``eval`` or ``os.system`` does not parse and says nothing; shell
commands, URLs and HTML are not Python and are not judged here.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["dangerous_calls"]

_MODULES: Final = (
    r"(?:os|posix|nt|subprocess|pty|socket|builtins|importlib|pickle|marshal|shutil|ctypes|runpy|urllib|"
    r"requests|httpx|commands|dill|cloudpickle|torch)"
)
_PREFILTER: Final = re.compile(
    r"\b(?:eval|exec|compile|__import__|breakpoint|execfile)\s*\("
    rf"|\b{_MODULES}\s*\.\s*[A-Za-z_]|\b(?:import|from)\s+{_MODULES}\b"
)
_MAX_TEXT: Final = 1 << 16
_NAMES: Final = frozenset({"eval", "exec", "compile", "__import__", "breakpoint", "execfile"})
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
    if len(text) > _MAX_TEXT or _PREFILTER.search(text) is None:
        return []
    import ast

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return []
    aliases: dict[str, str] = {}  # import os as o -> o: os; from os import system as s -> s: os.system
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    found: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None:
                continue
            head, dot, rest = name.partition(".")
            if head in aliases:
                name = aliases[head] + dot + rest
            if name in _NAMES or name.startswith(_PREFIXES):
                found[name] = None
    return list(found)
