"""Static analysis of Jinja chat templates: parsed with jinja2's parser, never rendered.

Server-side template injection needs a path from template values to Python internals: attribute or item access
to dunder/private names (however the name is spelled: escapes, concatenation, filters that rebuild strings),
the ``attr`` filter, or globals whose functions expose ``__globals__`` (cycler, joiner, lipsum, namespace
internals, request/config objects of web frameworks). Ordinary ChatML/Llama/Mistral/Gemma templates use none.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import ScanContext
from loopwarden.domain import Location, Severity

__all__ = ["check_template"]

_DANGEROUS_ATTRS: Final = frozenset(
    {
        "mro",
        "subclasses",
        "globals",
        "builtins",
        "func_globals",
        "f_globals",
        "f_locals",
        "f_back",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "tb_frame",
        "co_code",
        "popen",
        "system",
        "spawn",
        "eval",
        "exec",
        "import_module",
        "load_module",
        "modules",
        "os",
        "subprocess",
        "getattribute",
        "environ",
        "communicate",
        "check_output",
        "run",
    }
)
_DANGEROUS_GLOBALS: Final = frozenset(
    {
        "cycler",
        "joiner",
        "lipsum",
        "self",
        "request",
        "config",
        "url_for",
        "get_flashed_messages",
        "g",
        "session",
        "__builtins__",
        "os",
        "subprocess",
        "builtins",
        "importlib",
    }
)
_DUNDER: Final = re.compile(r"__[A-Za-z]\w*|\{[^{}]*\.\s*_")
_MAX_FOLD: Final = 4096
_ATTRIBUTE_ARG: Final = {
    "groupby": 0,
    "selectattr": 0,
    "rejectattr": 0,
    "sum": 0,
    "unique": 1,
    "min": 1,
    "max": 1,
    "sort": 2,
}
"""Filters that read an attribute named by a positional argument, and which argument it is."""


def _is_bad_name(name: str) -> bool:
    return name.startswith("_") or name in _DANGEROUS_ATTRS


def _env() -> Any:
    from jinja2 import nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class _Generation(Extension):
        """Hugging Face's ``{% generation %}`` block tag (parsed as a plain body)."""

        tags = {"generation"}  # noqa: RUF012 - jinja2 API

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _Generation])


class _Folder:
    """Constant-folds string expressions (concatenation, %, format, join, reverse, replace, case filters)."""

    def __init__(self) -> None:
        self.vars: dict[str, str] = {}

    def fold(self, node: Any, depth: int = 0) -> str | None:
        from jinja2 import nodes

        if depth > 50:
            return None
        if isinstance(node, nodes.Const):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, nodes.Name):
            return self.vars.get(node.name)
        if isinstance(node, nodes.Concat):
            parts = [self.fold(n, depth + 1) for n in node.nodes]
            return "".join(p for p in parts if p is not None) if any(p is not None for p in parts) else None
        if isinstance(node, nodes.Add):
            a, b = self.fold(node.left, depth + 1), self.fold(node.right, depth + 1)
            return (a or "") + (b or "") if a is not None or b is not None else None
        if isinstance(node, nodes.Mul):
            left, right = node.left, node.right
            text = self.fold(left, depth + 1)
            count: object = right.value if isinstance(right, nodes.Const) else None
            if text is None:
                text = self.fold(right, depth + 1)
                count = left.value if isinstance(left, nodes.Const) else None
            if text is not None and isinstance(count, int) and 0 <= count * len(text) <= _MAX_FOLD:
                return text * count
            return None
        if isinstance(node, nodes.Mod):
            fmt = self.fold(node.left, depth + 1)
            args = self._const_args(node.right)
            if fmt is not None and args is not None:
                try:
                    return str(fmt % tuple(args))[:_MAX_FOLD]
                except (TypeError, ValueError, OverflowError):
                    return fmt
            return fmt
        if isinstance(node, nodes.Filter):
            base = self.fold(node.node, depth + 1) if node.node is not None else None
            if node.name == "join" and isinstance(node.node, nodes.List | nodes.Tuple):
                parts = [self.fold(n, depth + 1) for n in node.node.items]
                return "".join(p or "" for p in parts)
            if base is None:
                return None
            if node.name == "reverse":
                return base[::-1]
            if node.name in ("lower", "upper", "title", "capitalize", "trim", "string", "e", "escape"):
                return {"lower": base.lower(), "upper": base.upper()}.get(node.name, base)
            if node.name == "replace" and len(node.args) >= 2:
                old, new = self.fold(node.args[0], depth + 1), self.fold(node.args[1], depth + 1)
                if old is not None and new is not None:
                    return base.replace(old, new)[:_MAX_FOLD]
            if node.name == "format":
                args = [self.fold(a, depth + 1) or "" for a in node.args]
                try:
                    return str(base % tuple(args))[:_MAX_FOLD]
                except (TypeError, ValueError):
                    return base
            return base
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            base = self.fold(node.node.node, depth + 1)
            if base is None:
                return None
            args = [self.fold(a, depth + 1) for a in node.args]
            meth = node.node.attr
            if meth == "join" and node.args and isinstance(node.args[0], nodes.List | nodes.Tuple):
                return base.join(self.fold(n, depth + 1) or "" for n in node.args[0].items)
            if meth == "format":
                return base + "".join(a or "" for a in args)
            if meth == "replace" and len(args) >= 2 and None not in args[:2]:
                return base.replace(args[0] or "", args[1] or "")[:_MAX_FOLD]
            if meth in ("lower", "upper", "strip"):
                return base
            return None
        return None

    def _const_args(self, node: Any) -> list[Any] | None:
        from jinja2 import nodes

        if isinstance(node, nodes.Tuple | nodes.List):
            out = []
            for n in node.items:
                if isinstance(n, nodes.Const):
                    out.append(n.value)
                else:
                    f = self.fold(n)
                    if f is None:
                        return None
                    out.append(f)
            return out
        if isinstance(node, nodes.Const):
            return [node.value]
        f = self.fold(node)
        return None if f is None else [f]


def check_template(
    source: str, ctx: ScanContext, location: Location, *, key: str = "chat_template", standalone: bool = False
) -> None:
    """Parse ``source`` (never render it) and report constructs that reach Python internals.

    ``standalone``: the template is the whole file at ``location``, so its line numbers are the file's; a
    template inside a GGUF header, a JSON config or an archive member keeps its line in the evidence instead
    (a line of a binary file, or the wrong line of the JSON, would mislead a reader and SARIF tools).
    """
    outcome = _analyse(source)
    if isinstance(outcome, str):
        ctx.fail(location, f"{key}: {outcome}")
        return
    own_lines = standalone and location.member is None
    for severity, what, line in outcome:
        where = Location(location.path, location.member, line=line) if own_lines else location
        extra = {} if own_lines or line is None else {"template_line": line}
        ctx.add_severity(
            rules.TemplateInjection, severity, f"{key}: {what}", where, template_key=key, **extra
        )


@functools.lru_cache(maxsize=64)
def _analyse(source: str) -> tuple[tuple[Severity, str, int | None], ...] | str:
    """The template's problems as (severity, what, line), or why it cannot be parsed. Cached: model folders
    repeat the same template in many files."""
    from jinja2 import TemplateSyntaxError, nodes

    try:
        tree = _env().parse(source)
    except TemplateSyntaxError as exc:
        return f"Jinja template cannot be parsed ({exc.message}, line {exc.lineno})"
    except (RecursionError, MemoryError):
        return "Jinja template too deeply nested to parse"
    folder = _Folder()
    # assignments first, so that names built earlier in the template resolve
    for assign in tree.find_all(nodes.Assign):
        if isinstance(assign.target, nodes.Name):
            val = folder.fold(assign.node)
            if val is not None:
                folder.vars[assign.target.name] = val
    found: dict[tuple[int, str], tuple[Severity, str, int | None]] = {}

    def report(node: Any, what: str, severity: Severity = Severity.CRITICAL) -> None:
        line = getattr(node, "lineno", None)
        found.setdefault((line or 0, what), (severity, what, line))

    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Getattr) and _is_bad_name(node.attr):
            report(node, f"access to attribute '{node.attr}'")
        elif isinstance(node, nodes.Getitem):
            name = folder.fold(node.arg)
            if name is not None and _is_bad_name(name):
                report(node, f"item access to '{name[:80]}'")
        elif isinstance(node, nodes.Filter):
            if node.name == "attr":
                report(node, "uses the 'attr' filter (attribute access by computed name)")
            elif node.name == "map" and node.args:
                # map('attr', name) applies the attr filter to every item; the filter's name may be computed
                applied = folder.fold(node.args[0])
                if applied == "attr" or (applied is None and not isinstance(node.args[0], nodes.Const)):
                    report(node, "applies the 'attr' filter (or a filter named at render time) through map")
            # the attribute a filter reads by name: the `attribute=` keyword, or its place among the positional
            # arguments (groupby, selectattr, rejectattr, sum, unique, min, max, sort); dotted paths walk on
            names = [kw.value for kw in node.kwargs if kw.key == "attribute"]
            at = _ATTRIBUTE_ARG.get(node.name)
            if at is not None and len(node.args) > at:
                names.append(node.args[at])
            for arg in names:
                val = folder.fold(arg)
                if val is None:
                    if not isinstance(arg, nodes.Const):
                        report(
                            node,
                            f"filter '{node.name}' reads an attribute named at render time",
                            Severity.HIGH,
                        )
                elif any(_is_bad_name(p) for p in val.split(".")):
                    report(node, f"filter '{node.name}' reads attribute '{val[:80]}'")
        elif isinstance(node, nodes.Name) and node.ctx == "load" and node.name in _DANGEROUS_GLOBALS:
            report(node, f"uses the global '{node.name}' (leads to Python globals)", Severity.HIGH)
        elif isinstance(node, nodes.Import | nodes.FromImport | nodes.Include | nodes.Extends):
            report(node, f"loads another template ({type(node).__name__.lower()})", Severity.HIGH)
        elif isinstance(node, nodes.Const | nodes.Concat | nodes.Add | nodes.Mod | nodes.Mul | nodes.Call):
            val = folder.fold(node)
            if val is not None and _DUNDER.search(val):
                report(node, f"builds the string '{val[:80]}' (a Python internal name)", Severity.HIGH)
    return tuple(found.values())
