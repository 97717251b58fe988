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


_WIDE: Final = re.compile(r"\d{5,}")
"""A width or precision of five digits or more in a format string: not evaluated (memory)."""
_EXACT_FILTERS: Final[dict[str, Any]] = {
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "capitalize": str.capitalize,
    "trim": str.strip,
    "reverse": lambda s: s[::-1],
    "string": str,
}
_EXACT_METHODS: Final[dict[str, Any]] = {
    "lower": str.lower,
    "upper": str.upper,
    "strip": str.strip,
    "title": str.title,
}


def _printf(fmt: str, args: list[Any]) -> str | None:
    if _WIDE.search(fmt) or "*" in fmt:
        return None
    try:
        out = str(fmt % tuple(args))
    except (TypeError, ValueError, OverflowError, KeyError):
        return None
    return out if len(out) <= _MAX_FOLD else None


def _str_format(fmt: str, args: list[Any], kwargs: dict[str, Any]) -> str | None:
    """``fmt.format(*args, **kwargs)`` for plain fields (no attribute or index lookups, small widths)."""
    import string

    out: list[str] = []
    auto = 0
    try:
        for literal, field, spec, conv in string.Formatter().parse(fmt):
            out.append(literal)
            if field is None:
                continue
            if any(c in field for c in ".[") or "{" in (spec or "") or _WIDE.search(spec or ""):
                return None
            if field == "":
                value, auto = args[auto], auto + 1
            elif field.isdigit():
                value = args[int(field)]
            else:
                value = kwargs[field]
            value = repr(value) if conv == "r" else ascii(value) if conv == "a" else value
            out.append(format(value, spec or ""))
            if sum(map(len, out)) > _MAX_FOLD:
                return None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError):
        return None
    return "".join(out)


class _Folder:
    """Constant-folds string expressions (concatenation, %, format, join, reverse, replace, case filters).

    ``fold`` is generous (unknown parts of a concatenation are dropped, unknown filters keep their input) so
    that fragments of internal names show; ``exact`` gives a value only when it is the one the template
    computes, for judging the names a template builds itself.
    """

    def __init__(self) -> None:
        self.vars: dict[str, str] = {}
        self.exact_vars: dict[str, str] = {}
        self.unknown: set[str] = set()

    def exact(self, node: Any, depth: int = 0) -> str | None:
        """The string ``node`` evaluates to, when the template alone determines it and it can be computed."""
        from jinja2 import nodes

        if depth > 50:
            return None
        if isinstance(node, nodes.Const):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, nodes.Name):
            return None if node.name in self.unknown else self.exact_vars.get(node.name)
        if isinstance(node, nodes.Concat | nodes.Add):
            items = node.nodes if isinstance(node, nodes.Concat) else [node.left, node.right]
            parts = [self.exact(n, depth + 1) for n in items]
            if any(p is None for p in parts):
                return None
            joined = "".join(p for p in parts if p is not None)
            return joined if len(joined) <= _MAX_FOLD else None
        if isinstance(node, nodes.Mul):
            for text_node, count_node in ((node.left, node.right), (node.right, node.left)):
                text = self.exact(text_node, depth + 1)
                count = count_node.value if isinstance(count_node, nodes.Const) else None
                if text is not None and type(count) is int and 0 <= count * len(text) <= _MAX_FOLD:
                    return text * count
            return None
        if isinstance(node, nodes.Mod):
            fmt = self.exact(node.left, depth + 1)
            args = self._exact_args(node.right, depth)
            return None if fmt is None or args is None else _printf(fmt, args)
        if isinstance(node, nodes.Filter) and node.node is not None:
            return self._exact_filter(node, depth)
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            return self._exact_method(node, depth)
        return None

    def _exact_filter(self, node: Any, depth: int) -> str | None:
        from jinja2 import nodes

        if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
            return None
        if node.name == "join" and isinstance(node.node, nodes.List | nodes.Tuple):
            items = [self.exact(n, depth + 1) for n in node.node.items]
            sep = self.exact(node.args[0], depth + 1) if node.args else ""
            if sep is None or any(i is None for i in items):
                return None
            return sep.join(i for i in items if i is not None)[:_MAX_FOLD]
        base = self.exact(node.node, depth + 1)
        if base is None:
            return None
        if node.name in _EXACT_FILTERS and not node.args:
            return str(_EXACT_FILTERS[node.name](base))
        if node.name == "replace" and len(node.args) == 2:
            old, new = (self.exact(a, depth + 1) for a in node.args)
            if old is None or new is None:
                return None
            out = base.replace(old, new)
            return out if len(out) <= _MAX_FOLD else None
        if node.name == "format":
            args = [self._exact_value(a, depth) for a in node.args]
            return None if any(a is _NO for a in args) else _printf(base, args)
        return None

    def _exact_method(self, node: Any, depth: int) -> str | None:
        base = self.exact(node.node.node, depth + 1)
        if base is None or node.dyn_args is not None or node.dyn_kwargs is not None:
            return None
        meth = node.node.attr
        args = [self._exact_value(a, depth) for a in node.args]
        kwargs = {kw.key: self._exact_value(kw.value, depth) for kw in node.kwargs}
        if any(a is _NO for a in [*args, *kwargs.values()]):
            return None
        if meth == "format":
            return _str_format(base, args, kwargs)
        if kwargs:
            return None
        if meth in _EXACT_METHODS and not args:
            return str(_EXACT_METHODS[meth](base))
        if meth == "join" and len(args) == 1 and isinstance(args[0], list):
            if all(isinstance(p, str) for p in args[0]):
                return base.join(args[0])[:_MAX_FOLD]
            return None
        if meth == "replace" and len(args) == 2 and all(isinstance(a, str) for a in args):
            out = base.replace(args[0], args[1])
            return out if len(out) <= _MAX_FOLD else None
        return None

    def _exact_value(self, node: Any, depth: int) -> Any:
        """A constant of any type, a list of them, or an exact string; _NO when unknown."""
        from jinja2 import nodes

        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.List | nodes.Tuple):
            items = [self._exact_value(n, depth + 1) for n in node.items]
            return _NO if any(i is _NO for i in items) else items
        text = self.exact(node, depth + 1)
        return _NO if text is None else text

    def _exact_args(self, node: Any, depth: int) -> list[Any] | None:
        from jinja2 import nodes

        value = self._exact_value(node, depth)
        if value is _NO:
            return None
        return list(value) if isinstance(node, nodes.Tuple | nodes.List) else [value]

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
                out = _printf(fmt, args)  # widths bounded: a format string must not exhaust memory
                return fmt if out is None else out
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
                out = _printf(base, [self.fold(a, depth + 1) or "" for a in node.args])
                return base if out is None else out
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


_NO: Final = object()
_NUMBER: Final = "number"
_TEXT: Final = "text"
_BUILTIN_GLOBALS: Final = frozenset({"range", "dict", "namespace", "lipsum", "cycler", "joiner"})


class _Own:
    """Which expressions the template computes by itself, from its own literals (not from the render context):
    a name built that way may be an internal name however it was spelled. ``kind`` is _NUMBER for arithmetic on
    numbers, _TEXT for anything else the template makes itself, None for what depends on the context."""

    def __init__(self, folder: _Folder) -> None:
        self.folder = folder
        self.names: dict[str, str] = {}
        self.choices: dict[str, set[str]] = {}
        """Loop variables over a literal list of strings (``for key in ["name", "description"]``): their values."""
        self.other: set[str] = set()
        """Names also bound some other way (so their values are not just the loop's)."""

    def collect(self, tree: Any) -> None:
        """Names the template assigns from its own values (set, block set, loops over its own values)."""
        from jinja2 import nodes

        for _ in range(3):  # names defined from names: a few rounds reach a fixed point in practice
            for node in tree.find_all((nodes.Assign, nodes.AssignBlock, nodes.For)):
                if isinstance(node, nodes.Assign):
                    kind = self.kind(node.node)
                elif isinstance(node, nodes.AssignBlock):
                    kind = self._body(node.body)
                else:
                    kind = self._items(node.iter)
                values = (
                    [self.folder.exact(i) for i in node.iter.items]
                    if isinstance(node, nodes.For) and isinstance(node.iter, nodes.List | nodes.Tuple)
                    else [None]
                )
                if isinstance(node.target, nodes.Name) and values and all(v is not None for v in values):
                    self.choices.setdefault(node.target.name, set()).update(
                        v for v in values if v is not None
                    )
                else:
                    self.other.update(n.name for n in node.target.find_all(nodes.Name))
                    if isinstance(node.target, nodes.Name):
                        self.other.add(node.target.name)
                if kind is not None:
                    for target in (
                        node.target.find_all(nodes.Name)
                        if not isinstance(node.target, nodes.Name)
                        else [node.target]
                    ):
                        if self.names.get(target.name) != _TEXT:
                            self.names[target.name] = kind

    def _items(self, it: Any) -> str | None:
        """The kind of the values a loop over ``it`` yields (numbers for range() and lists of numbers)."""
        from jinja2 import nodes

        if isinstance(it, nodes.Call) and isinstance(it.node, nodes.Name) and it.node.name == "range":
            kinds = {self.kind(a) for a in it.args}
            return _NUMBER if kinds <= {_NUMBER} and not it.kwargs else (None if None in kinds else _TEXT)
        if isinstance(it, nodes.List | nodes.Tuple):
            kinds = {self.kind(i) for i in it.items}
            return None if None in kinds else _TEXT if _TEXT in kinds else _NUMBER
        return _TEXT if self.kind(it) is not None else None

    def _body(self, body: list[Any]) -> str | None:
        from jinja2 import nodes

        for stmt in body:
            if not isinstance(stmt, nodes.Output):
                return None
            for part in stmt.nodes:
                if not isinstance(part, nodes.TemplateData) and self.kind(part) is None:
                    return None
        return _TEXT

    def kind(self, node: Any, depth: int = 0) -> str | None:
        from jinja2 import nodes

        if depth > 50:
            return None
        if isinstance(node, nodes.Const):
            return _NUMBER if isinstance(node.value, int | float | bool) or node.value is None else _TEXT
        if isinstance(node, nodes.TemplateData):
            return _TEXT
        if isinstance(node, nodes.Name):
            if node.name in self.folder.vars:
                return _TEXT
            if node.name in self.names:
                return self.names[node.name]
            return _TEXT if node.name in _BUILTIN_GLOBALS else None
        children: list[Any] = []
        if isinstance(node, nodes.List | nodes.Tuple):
            children = list(node.items)
        elif isinstance(node, nodes.Dict):
            children = [x for item in node.items for x in (item.key, item.value)]
        elif isinstance(node, nodes.BinExpr | nodes.Concat):
            children = list(node.nodes) if isinstance(node, nodes.Concat) else [node.left, node.right]
        elif isinstance(node, nodes.UnaryExpr):
            children = [node.node]
        elif isinstance(node, nodes.CondExpr):
            children = [node.test, node.expr1, *([node.expr2] if node.expr2 is not None else [])]
        elif isinstance(node, nodes.Filter | nodes.Test | nodes.Call):
            base = node.node if node.node is not None else nodes.Const("")
            children = [base, *node.args, *(kw.value for kw in node.kwargs)]
            if isinstance(node, nodes.Filter | nodes.Call) or node.kwargs:
                kinds = [self.kind(c, depth + 1) for c in children]
                return None if None in kinds else _TEXT  # a filter or call may turn numbers into text
        elif isinstance(node, nodes.Getattr | nodes.Getitem):
            children = [node.node] + ([node.arg] if isinstance(node, nodes.Getitem) else [])
        else:
            return None
        kinds = [self.kind(c, depth + 1) for c in children]
        if None in kinds:
            return None
        return _TEXT if _TEXT in kinds else _NUMBER


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
    for assign in tree.find_all(nodes.Assign):
        if isinstance(assign.target, nodes.Name):
            target = assign.target.name
            value = folder.exact(assign.node)
            if value is None or folder.exact_vars.get(target, value) != value:
                folder.unknown.add(target)  # assigned something not computable, or two different values
            else:
                folder.exact_vars[target] = value
    own = _Own(folder)
    own.collect(tree)
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
            elif (
                isinstance(node.arg, nodes.Name)
                and node.arg.name in own.choices
                and node.arg.name not in own.other
            ):
                for choice in sorted(own.choices[node.arg.name]):
                    if _is_bad_name(choice):
                        report(node, f"item access to '{choice[:80]}'")
            elif own.kind(node.arg) == _TEXT:
                # a key the template makes itself (dict keys, block sets, format tricks): judged by its exact
                # value, or reported when that cannot be computed (item access falls back to attributes)
                exact = folder.exact(node.arg)
                if exact is None:
                    report(
                        node,
                        "item access with a name the template builds in a way the analysis cannot follow",
                        Severity.HIGH,
                    )
                elif _is_bad_name(exact):
                    report(node, f"item access to '{exact[:80]}'")
        elif isinstance(node, nodes.Keyword) and node.key.startswith("_"):
            report(
                node, f"keyword argument named '{node.key[:80]}' (a source of internal names)", Severity.HIGH
            )
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
