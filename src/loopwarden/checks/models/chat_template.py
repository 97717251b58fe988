"""Static analysis of Jinja chat templates: parsed with jinja2's parser, never rendered.

Server-side template injection needs a path from template values to Python internals. Rendered by a plain
``jinja2.Environment`` (CVE-2024-34359), ``x[key]`` falls back to ``getattr(x, key)`` and ``x.name`` to
``x[name]``, so every name used as an attribute, an item key, an attribute-taking filter argument (the attr
filter's name included) or a ``str.format`` field path is a possible attribute walk, and only those: a string
that is only output or compared reaches nothing, whatever it spells. The analysis follows, for every expression,
what it may evaluate to (:class:`_V`): strings the template makes itself (computed exactly while they stay small),
template-made text it cannot compute, numbers, data from the render context, and the template's own objects
(macros, namespaces, jinja's globals). A name is safe when it is a computed string that does not open a walk,
a number, or context data the template cannot shape; a dangerous computed name is CRITICAL and template-made
text that cannot be computed is HIGH. Values flow through set/with/for/macro arguments/caller()/block sets/
filter blocks/namespaces flow-insensitively (every binding of a name is joined), iterated to a fixed point.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Final, cast

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import ScanContext
from loopwarden.domain import Location, Severity

__all__ = ["check_template"]

_WALK_ATTRS: Final = frozenset(
    {
        "mro",
        "subclasses",
        "globals",
        "builtins",
        "getattribute",
        "func_globals",
        "func_code",
        "func_closure",
        "im_func",
        "im_self",
        "im_class",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "ag_frame",
        "ag_code",
        "ag_await",
        "tb_frame",
        "tb_next",
        "co_code",
        "co_consts",
    }
)
"""Attribute names (besides any name starting with '_') that lead from an ordinary object to frames, code,
globals or classes. OS-level names (os, system, popen, ...) are reachable only after such a step, which is what
is reported."""
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
_JINJA_HELPERS: Final = frozenset({"cycler", "joiner", "lipsum"})
"""jinja2's own default globals. Used bare (``cycler.__init__``, handed to a filter or macro) each is a Python
object whose attributes lead to module globals, but called where it is named (``cycler('odd', 'even')``,
``joiner(', ')``, ``lipsum(1)``) it returns a new helper object or text, no more open than ``namespace(...)``:
any walk from that result needs an internal attribute name, judged on its own wherever it is spelled."""
_DATA_GLOBALS: Final = frozenset({"config"})
"""Globals that a template renderer other than Flask defines as data: MkDocs (and its macros plugin) passes its
site configuration as ``config``. A read of one of its settings (:meth:`_Analysis.data_read`) is judged only where
the renderer is known to be a chat-template environment, not in a config's embedded template."""
_DATA_READ: Final = "reads a setting of the global "
_MAX_STR: Final = 4096
"""Longest string the analysis computes; a longer one is template-made text it cannot follow."""
_MAX_CHOICES: Final = 16
"""Most alternative strings one value keeps."""
_BUDGET: Final = 4 << 20
"""Characters of computed strings per template; past it every further string is not computed."""
_WIDEN_AFTER: Final = 6
_MAX_ROUNDS: Final = 24
_ATTRIBUTE_ARG: Final = {
    "groupby": 0,
    "selectattr": 0,
    "rejectattr": 0,
    "sum": 0,
    "join": 1,
    "unique": 1,
    "min": 1,
    "max": 1,
    "sort": 2,
}
"""Filters that read an attribute (a dotted path) named by a positional argument, and which argument it is (as
in jinja2.filters); every filter's ``attribute=`` keyword is judged too."""
_MARKUP_METHODS: Final = frozenset({"unescape", "striptags"})
"""Methods ``markupsafe.Markup`` adds to str: both return text (``'&#95;'`` unescaped is ``'_'``)."""
_KEPT_CALLS: Final = frozenset({"caller", "joiner", "cycler.next"})
"""The template's own callables besides macros (:meth:`_Analysis.call_kept`)."""
_HELPER_CALLS: Final = frozenset({"joiner", "cycler.next", "cycler.reset"})
"""Template objects made by jinja's helpers that are called (a joiner, a cycler's ``next`` read as a value)."""
_BUILTINS: Final = frozenset({"range", "dict", "namespace", "lipsum", "cycler", "joiner"})
_PYTHON_BUILTINS: Final = frozenset(
    {
        *("getattr", "setattr", "delattr", "eval", "exec", "compile", "__import__", "open"),
        *("globals", "locals", "vars", "breakpoint", "memoryview", "classmethod", "staticmethod"),
    }
)
"""Python builtins that reach code, files or internals. No chat-template environment (transformers, llama.cpp,
vLLM, Jinja's defaults) defines them, so calling one fails at render time, unless the rendering application
exposes it: a template that calls one is written for an environment that does."""


def _python_builtin(name: str) -> bool:
    """A name above, or a dunder name (``__loader__``, ``__spec__``, ``__build_class__``): the builtins module
    defines those, and ``__loader__.load_module('posix')`` reaches the OS where an application exposes them."""
    return name in _PYTHON_BUILTINS or (len(name) > 4 and name.startswith("__") and name.endswith("__"))


_MUTATORS: Final = frozenset({"append", "extend", "insert", "update", "setdefault", "add", "__setitem__"})
_SELECTING_METHODS: Final = frozenset(
    {
        "split",
        "rsplit",
        "splitlines",
        "strip",
        "lstrip",
        "rstrip",
        "lower",
        "upper",
        "title",
        "capitalize",
        "casefold",
        "startswith",
        "endswith",
        "find",
        "rfind",
        "index",
        "rindex",
        "count",
        "items",
        "keys",
        "values",
        "isdigit",
        "isalpha",
        "isspace",
    }
)
"""Methods whose result on context data is context data whatever their arguments (they select or test)."""
_NUMERIC_FILTERS: Final = frozenset(
    {"length", "count", "wordcount", "int", "float", "abs", "round", "filesizeformat"}
)
_ITEM_FILTERS: Final = frozenset({"first", "last", "random", "min", "max"})
_LIST_FILTERS: Final = frozenset(
    {"list", "sort", "unique", "reject", "select", "selectattr", "rejectattr", "batch", "slice", "dictsort"}
)


_APPLICATION_DATA: Final = frozenset(
    {"messages", "tools", "documents", "add_generation_prompt", "functions", "function_call", "tool_choice"}
)
"""Render-context names only the application fills: transformers passes ``messages``, ``tools``, ``documents``
and ``add_generation_prompt`` as explicit arguments of ``render`` (a special token of one of those names makes
the call fail), and llama-cpp-python passes the OpenAI request's ``functions``, ``function_call`` and
``tool_choice`` with nothing but ``bos_token`` and ``eos_token`` from the model."""


def _model_supplied(name: str, chat: bool = True) -> bool:
    """Whether a render-context name may be one whose value the model's own files supply, not the application.
    For a chat template that is every name but :data:`_APPLICATION_DATA`: transformers passes the tokenizer's
    whole special-tokens map to the template, and ``extra_special_tokens`` in ``tokenizer_config.json`` adds
    entries of any name and any string (``{"k": "__class__"}`` makes ``k`` a template variable of that text); a
    keyword the application passes (``enable_thinking``) overrides one, but a template cannot count on that,
    and ``raise_exception`` or ``strftime_now`` of the environment's globals are shadowed by one too. The model's
    author writes them with the template, so they are template-made text, not data the template cannot shape
    (a ``bos_token`` of ``__globals__`` makes ``raise_exception[bos_token]`` a walk to the function's globals).
    Elsewhere (a template embedded in a config, rendered by an application of its own) the special tokens
    (``bos_token``, ``additional_special_tokens``) are the only names a model file is known to supply."""
    if chat:
        return name not in _APPLICATION_DATA
    return name.endswith(("_token", "_tokens"))


def _is_bad_name(name: str) -> bool:
    return any(n.startswith("_") or n in _WALK_ATTRS for n in (name, name.strip()))


def _stored(target: Any) -> set[str]:
    """The variable names an assignment target (a name or a tuple of names) binds."""
    return {n.name for n in (target.items if hasattr(target, "items") else [target]) if hasattr(n, "name")}


def _known_name(v: _V) -> bool:
    """Whether every name ``v`` may be is known: computed strings or numbers (whose text is digits, True,
    None ...), nothing template-made that was not computed, no context data, no object."""
    return bool(v.strs or v.num) and not (v.made or v.ctx or v.obj or v.fns or v.container() or v.deep)


def _show(text: str, limit: int = 80) -> str:
    """``text`` for a message: cut, and escaped where not printable (lone surrogates cannot be written)."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[:limit])


@dataclass(frozen=True, slots=True)
class _V:
    """What an expression may evaluate to (a join of possibilities)."""

    strs: frozenset[str] = frozenset()
    """Strings the template makes itself, computed."""
    made: bool = False
    """Text the template makes (or shapes) that could not be computed."""
    ctx: bool = False
    """Data of the render context (messages, tools, undefined names), which the template cannot shape."""
    num: bool = False
    """A number, boolean or None (or its text)."""
    obj: bool = False
    """An object of the template or of jinja (a method, a macro, a global), not text."""
    fns: frozenset[str] = frozenset()
    """Which template objects: 'm:<macro>', 'g:<global>', 'caller', 'loop', 'loop.cycle', 'ns'."""
    elems: _V | None = None
    """A container the template makes: the join of its items (a list's items, a dict's values)."""
    keys: _V | None = None
    """A dict the template makes: the join of its keys."""
    listy: bool = False
    """A container whose iteration gives its items (not a dict, whose iteration gives its keys)."""
    deep: bool = False
    """Nesting bound reached: the value's elements are the value itself."""
    frozen: bool = False
    """The container part cannot be mutated (what ``range()`` returns): nothing a template puts into lists or
    dicts can be among its items."""
    markup: bool = False
    """May be a ``markupsafe.Markup`` (what ``|safe``, ``|e``, ``|tojson`` ... return): its ``+``, ``%`` and methods
    escape their other operands, so text computed as for a plain string may differ (:meth:`_Analysis.escapes`)."""
    walk: bool = False
    """May be an attribute reached by a name the render context's data chose (``m[m.content]``, jinja's item
    lookup falling back to getattr): a further such name walks on from it (:meth:`_Analysis.judge_item`)."""

    def tainted(self) -> bool:
        """Whether the template made or shaped any of it (not only context data and numbers)."""
        return (
            bool(
                self.strs
                or self.made
                or self.obj
                or self.fns
                or self.elems is not None
                or self.keys is not None
            )
            or self.deep
        )

    def depth(self) -> int:
        return (
            1 + max(0 if v is None else v.depth() for v in (self.elems, self.keys)) if self.container() else 0
        )

    def container(self) -> bool:
        return self.elems is not None or self.keys is not None


_BOTTOM: Final = _V()
_EMPTY: Final = _V(strs=frozenset({""}))
_CTX: Final = _V(ctx=True)
_NUM: Final = _V(num=True)
_MADE: Final = _V(made=True)
_OBJ: Final = _V(obj=True)
_MADE_OBJ: Final = _V(made=True, obj=True)
_MODEL_TEXT: Final = _V(made=True, ctx=True)
"""A value of the render context that the model's files may supply (:func:`_model_supplied`)."""
_TOP: Final = _V(made=True, ctx=True, num=True, obj=True, deep=True)


def _norm(strs: Iterable[str]) -> tuple[frozenset[str], bool]:
    out = frozenset(strs)
    if len(out) > _MAX_CHOICES or any(len(s) > _MAX_STR for s in out):
        return frozenset(), True
    return out, False


def _join(*values: _V) -> _V:
    vals = [v for v in values if v != _BOTTOM]
    if not vals:
        return _BOTTOM
    if len(vals) == 1:
        return vals[0]
    inner = [v.elems for v in vals if v.elems is not None]
    keys = [v.keys for v in vals if v.keys is not None]
    return _shape(
        _union(
            vals,
            elems=_join(*inner) if inner else None,
            keys=_join(*keys) if keys else None,
            listy=any(v.listy for v in vals),
            deep=any(v.deep for v in vals),
            frozen=bool(inner or keys) and all(v.frozen for v in vals if v.container()),
        )
    )


def _union(vals: list[_V], **shape: Any) -> _V:
    """The scalar parts of ``vals`` joined (strings bounded, flags or-ed), with ``shape`` for the rest."""
    strs, over = _norm(s for v in vals for s in v.strs)
    return _V(
        strs=strs,
        made=over or any(v.made for v in vals),
        ctx=any(v.ctx for v in vals),
        num=any(v.num for v in vals),
        obj=any(v.obj for v in vals),
        fns=frozenset().union(*(v.fns for v in vals)),
        walk=any(v.walk for v in vals),
        markup=any(v.markup for v in vals),
        **shape,
    )


def _flat(v: _V) -> _V:
    """``v`` and everything nested in it as one self-similar value."""
    parts = []
    pending = [v]
    while pending:
        part = pending.pop()
        parts.append(part)
        pending += [x for x in (part.elems, part.keys) if x is not None]
    return _union(parts, deep=True)


def _shape(v: _V) -> _V:
    return _flat(v) if v.depth() > 3 or (v.deep and v.container()) else v


def _container(elems: _V, keys: _V | None = None, *, listy: bool = True) -> _V:
    return _shape(_V(elems=elems, keys=keys, listy=listy))


def _scalar(v: _V) -> _V:
    """``v`` without its container part (what it may be besides the template's own list or dict)."""
    return _V(
        strs=v.strs, made=v.made, ctx=v.ctx, num=v.num, obj=v.obj, fns=v.fns, walk=v.walk, markup=v.markup
    )


def _walked(v: _V, walk: bool) -> _V:
    """``v``, marked as possibly reached by a name the render context's data chose where ``walk``."""
    return replace(v, walk=True) if walk and v != _BOTTOM and not v.walk else v


def _text(v: _V) -> _V:
    """``v`` converted to a string (text walks no further: the walk of :attr:`_V.walk` ends)."""
    if not (v.obj or v.fns or v.container() or v.deep):
        return replace(v, walk=False) if v.walk else v
    return _V(strs=v.strs, made=True, ctx=v.ctx, num=v.num, markup=v.markup)


def _derived(*values: _V) -> _V:
    """A value computed from ``values`` in a way not followed: template-made if any of them is."""
    if any(v.tainted() for v in values):
        return _MADE
    got = _join(*(_CTX if v.ctx else _NUM for v in values if v != _BOTTOM))
    return _CTX if got == _BOTTOM else got


_ESCAPED: Final = frozenset("&<>\"'")
"""The characters markupsafe's escape changes: text without them escapes to itself."""
_MARKUP_FILTERS: Final = frozenset(
    {"safe", "e", "escape", "forceescape", "tojson", "urlize", "xmlattr", "indent"}
)
"""Filters whose result may be a Markup (in a plain Environment as well)."""
_FIELD_PART: Final = re.compile(r"\[[^\]]*\]|\.([^.\[]*)")
"""The parts of a replacement field's name after the argument: ``[key]`` (an item) or ``.name`` (an
attribute, the group), as str.format splits them."""
_WIDE: Final = re.compile(r"\d{5,}")
"""A width or precision of five digits or more in a format string: not evaluated (memory)."""
_EXACT_STR: Final[dict[str, Callable[[str], str]]] = {
    "lower": str.lower,
    "upper": str.upper,
    "title": str.title,
    "capitalize": str.capitalize,
    "trim": str.strip,
    "strip": str.strip,
    "lstrip": str.lstrip,
    "rstrip": str.rstrip,
    "reverse": lambda s: s[::-1],
    "string": str,
    "safe": str,
    "casefold": str.casefold,
    "swapcase": str.swapcase,
}


def _escape(s: str) -> str:
    from markupsafe import escape

    return str(escape(s))


def _jinja_title(s: str) -> str:
    """What jinja's ``title`` filter makes of ``s`` (not ``str.title``)."""
    from jinja2.filters import do_title

    return str(do_title(s))


def _tojson(s: str) -> tuple[str, str]:
    """What ``tojson`` makes of ``s``: jinja's own filter (HTML-safe: ``&`` is ``\\u0026``) and transformers' and
    vLLM's replacement (plain json.dumps, non-ASCII kept)."""
    import json

    from jinja2.utils import htmlsafe_json_dumps

    return str(htmlsafe_json_dumps(s)), json.dumps(s, ensure_ascii=False)


def _printf(fmt: str, args: list[Any]) -> str | None:
    if _WIDE.search(fmt) or "*" in fmt:
        return None
    try:
        out = str(fmt % tuple(args))
    except (TypeError, ValueError, OverflowError, KeyError):
        return None
    return out if len(out) <= _MAX_STR else None


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
            if sum(map(len, out)) > _MAX_STR:
                return None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError):
        return None
    return "".join(out)


def _format_attrs(fmt: str) -> list[str] | None:
    """The attribute names the replacement fields of a ``str.format`` string read (``{0.a.b}``, nested specs
    included); None when ``fmt`` is not a valid format string (formatting it raises)."""
    import string

    names: list[str] = []
    pending = [fmt]
    try:
        while pending:
            for _, field, spec, _ in string.Formatter().parse(pending.pop()):
                if field is not None:
                    names.extend(m[1] for m in _FIELD_PART.finditer(field) if m[1] is not None)
                if spec and "{" in spec and len(names) < 1000:
                    pending.append(spec)
    except (ValueError, TypeError):
        return None
    return names


_DATE_DIRECTIVE: Final = re.compile(r"%[-_0^#]?\d{0,3}[EO]?[aAbBcCdDeFgGhHIjklmMnpPrRsStTuUVwWxXyYzZf%]")
"""A strftime conversion (glibc's flags, width and E/O modifiers included): it prints a number, a day or month
name, AM/PM or the host's time-zone abbreviation, never a name of the template's choosing."""
_DATE_LITERAL: Final = re.compile(r"[^A-Za-z_%]*")


def _date_format(fmt: str) -> bool:
    """Whether ``strftime(fmt)`` prints nothing the template spells but digits, blanks and punctuation around
    its conversions (``'%d %B %Y'``, ``'%A'``): no letter or underscore of its own that could make, or be cut
    into, a name such as ``__class__`` or ``mro``. An unknown conversion is left out (C libraries print it as
    written)."""
    return _DATE_LITERAL.fullmatch(_DATE_DIRECTIVE.sub("", fmt)) is not None


def _env(*, trim: bool = False) -> Any:
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

    return ImmutableSandboxedEnvironment(
        extensions=["jinja2.ext.loopcontrols", "jinja2.ext.do", _Generation],
        trim_blocks=trim,
        lstrip_blocks=trim,
    )


def _post_order(tree: Any) -> list[Any]:
    """Every node, children before parents, siblings in template order (no recursion: templates nest deep)."""
    out: list[Any] = []
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, done = stack.pop()
        if done:
            out.append(node)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node.iter_child_nodes())))
    return out


class _Analysis:
    """Abstract evaluation of a parsed template to a fixed point, then judgment of every name position."""

    def __init__(self, tree: Any, tick: Callable[[], None], *, chat: bool = True) -> None:
        from jinja2 import nodes

        self.n = nodes
        self.chat = chat
        """A chat template, whose free names the model's files may supply (:func:`_model_supplied`)."""
        self.order = _post_order(tree)
        self.tick = tick
        self.vars: dict[str, _V] = {}
        self.widened: set[str] = set()
        self.changed: set[str] = set()
        self.memo: dict[int, _V] = {}
        self.out: dict[int, _V] = {}
        self.bases: dict[int, _V] = {}
        """What each filter node is applied to (a filter block's filters: the body and the filters before)."""
        self.spent = 0
        self.macros: dict[str, list[Any]] = {}
        self.callblocks: list[Any] = []
        self.recursive: list[Any] = []
        """Recursive loops: ``loop(items)`` runs the body again with the target bound to those items."""
        for node in self.order:
            if isinstance(node, nodes.Macro):
                self.macros.setdefault(node.name, []).append(node)
            elif isinstance(node, nodes.CallBlock):
                self.callblocks.append(node)
            elif isinstance(node, nodes.For) and node.recursive:
                self.recursive.append(node)
        self.found: dict[tuple[int, str], tuple[Severity, str, int | None]] = {}
        self.binds_strftime: bool | None = None
        """Whether the template binds ``strftime_now`` itself anywhere (:meth:`date_call`; found when first asked)."""
        self.visible: set[int] = set()
        """Uses of a name that the template binds where they are (:meth:`bound_loads`); in a chat template every
        other use reads the render context, which the model's files may fill (:func:`_model_supplied`)."""
        if chat:
            parents = {id(child): node for node in self.order for child in node.iter_child_nodes()}
            self.visible = self.bound_loads(parents, lambda _: True)
        self.autoescape = any(
            isinstance(node, nodes.EvalContextModifier)
            and any(
                kw.key == "autoescape" and not (isinstance(kw.value, nodes.Const) and not kw.value.value)
                for kw in node.options
            )
            for node in self.order
        )
        """The template turns autoescaping on somewhere: ``~``, output and the replace and join filters may escape
        text there (:meth:`escapes`)."""

    # ------------------------------------------------------------------------------------------ fixed point

    def run(self) -> bool:
        """Evaluate to a fixed point; False when it is not reached within the bound."""
        for rnd in range(_MAX_ROUNDS):
            self.tick()
            self.changed = set()
            self.memo = {}
            self.out = {}
            self.bases = {}
            self._pass()
            if not self.changed:
                return True
            if rnd >= _WIDEN_AFTER:
                for key in self.changed:  # still growing: every possibility from here on
                    self.vars[key] = _TOP
                    self.widened.add(key)
        return False

    def _pass(self) -> None:
        nodes = self.n
        for i, node in enumerate(self.order):
            if i & 1023 == 1023:
                self.tick()
            if isinstance(node, nodes.Stmt):
                self.out[id(node)] = self._stmt(node)
            elif isinstance(node, nodes.Expr):
                self.memo[id(node)] = self._eval(node)

    def bind(self, key: str, value: _V) -> None:
        if key in self.widened or value == _BOTTOM:
            return
        old = self.vars.get(key, _BOTTOM)
        new = _join(old, value)
        if new != old:
            self.vars[key] = new
            self.changed.add(key)

    def get(self, key: str) -> _V:
        return self.vars.get(key, _BOTTOM)

    def m(self, node: Any) -> _V:
        """The value of an expression already evaluated in this pass (children come before parents)."""
        if node is None:
            return _BOTTOM
        got = self.memo.get(id(node))
        if got is None:
            got = self.memo[id(node)] = self._eval(node)
        return got

    def assign(self, target: Any, value: _V) -> None:
        nodes = self.n
        if isinstance(target, nodes.Name):
            self.bind("v:" + target.name, value)
        elif isinstance(target, nodes.NSRef):
            self.bind("ns:" + target.attr, value)
        elif isinstance(target, nodes.Tuple | nodes.List):
            for item in target.items:
                self.assign(item, self.elem(value))

    # ------------------------------------------------------------------------------------------- strings

    def product(self, options: list[frozenset[str]]) -> frozenset[str] | None:
        """Every concatenation of one string from each of ``options``; None past the bounds."""
        out: set[str] = {""}
        for opts in options:
            if len(out) * len(opts) > _MAX_CHOICES:
                return None
            nxt: set[str] = set()
            for a in out:
                for b in opts:
                    if len(a) + len(b) > _MAX_STR or self.spent > _BUDGET:
                        return None
                    self.spent += len(a) + len(b)
                    nxt.add(a + b)
            out = nxt
        return frozenset(out)

    def strings(self, values: Iterable[str]) -> _V:
        """Computed strings as a value (template-made text it cannot follow when over the bounds)."""
        vals = list(values)
        self.spent += sum(map(len, vals))
        strs, over = _norm(vals)
        return _MADE if over or self.spent > _BUDGET else _V(strs=strs)

    def concat(self, parts: list[_V]) -> _V:
        parts = [_text(p) for p in parts if p not in (_EMPTY, _BOTTOM)]
        if not parts:
            return _EMPTY
        if self.autoescape and self.escapes(*parts):
            return _derived(*parts)  # markup_join escapes what is not Markup already
        if len(parts) == 1:
            return parts[0]
        if all(p == _CTX for p in parts):
            return _CTX
        if all(p == _NUM for p in parts):
            return _NUM
        options = []
        for p in parts:
            opts = set(p.strs)
            if p.ctx:
                opts.add("")  # an undefined name renders as nothing
            options.append(frozenset(opts))
        exact = all(p.strs and not (p.made or p.ctx or p.num) for p in parts)
        strs = None if not all(options) else self.product(options)
        if strs is None:
            return _MADE
        return _V(strs=strs, made=not exact)

    def item(self, v: _V) -> _V:
        """What an item of the template's container ``v`` is (a list's item, a dict's value)."""
        out: list[_V] = [v] if v.deep else []
        if v.elems is not None:
            out.append(v.elems)
        out.append(self.put_into(v))
        return _walked(_join(*out), v.walk)

    def elem(self, v: _V) -> _V:
        """What iterating ``v`` gives (a dict's keys; a list's items; a string's characters)."""
        out: list[_V] = []
        if v.deep:
            out.append(v)
        if v.keys is not None:
            out.append(v.keys)
        if v.elems is not None and (v.listy or v.keys is None):
            out.append(v.elems)
        if v.strs:
            out.append(self.strings({c for s in v.strs for c in s}))
        if v.ctx:
            out.append(_CTX)
        if v.num:
            out.append(_NUM)  # a number is not iterable; the text of one gives digits
        if v.made:
            out.append(_MADE)
        if "loop" in v.fns:
            out.append(self.get("loop"))
        out.append(self.put_into(v))
        return _walked(_join(*out), v.walk)

    def put_into(self, v: _V) -> _V:
        """What the template may have put (append, update, ...) into the containers ``v`` may be: what it put
        into context data, if ``v`` may be context data; what it put into its own lists and dicts, if ``v`` may be
        one of those (which one is not followed, so any of them), unless that is immutable (a range)."""
        out = []
        if v.ctx or v.deep:
            out.append(self.get("extra:ctx"))
        if (v.container() and not v.frozen) or v.deep:
            out.append(self.get("extra:own"))
        return _join(*out)

    def escapes(self, *values: _V) -> bool:
        """Whether an operation on ``values`` may escape text the analysis computes as for plain strings: one of
        them may be a Markup (or the template turns autoescaping on) and a computed string among them holds a
        character escaping changes (``'&'|safe + '&__class__'`` is ``&&amp;__class__``, and a replace of
        ``&amp;`` then leaves ``__class__``)."""
        if not (self.autoescape or any(v.markup for v in values)):
            return False
        return any(c in _ESCAPED for v in values for text in _flat(v).strs for c in text)

    # --------------------------------------------------------------------------------------- statements

    def body(self, stmts: list[Any]) -> _V:
        return self.concat([self.out.get(id(s), _EMPTY) for s in stmts])

    def _stmt(self, node: Any) -> _V:
        nodes = self.n
        if isinstance(node, nodes.Output):
            return self.concat([self.m(p) for p in node.nodes])
        if isinstance(node, nodes.Assign):
            self.assign(node.target, self.m(node.node))
        elif isinstance(node, nodes.AssignBlock):
            value = self.body(node.body)
            self.assign(node.target, value if node.filter is None else self.filter_chain(node.filter, value))
        elif isinstance(node, nodes.For):
            item = self.elem(self.m(node.iter))
            self.assign(node.target, item)
            self.bind("loop", item)
            once = self.body(node.body)
            many = _EMPTY if once == _EMPTY else _join(_EMPTY, once, _MADE if once.tainted() else _BOTTOM)
            return _join(many, self.body(node.else_)) if node.else_ else many
        elif isinstance(node, nodes.If):
            branches = [self.body(node.body), *(self.body(e.body) for e in node.elif_), self.body(node.else_)]
            return _join(*branches)
        elif isinstance(node, nodes.With):
            for target, value in zip(node.targets, node.values, strict=False):
                self.assign(target, self.m(value))
            return self.body(node.body)
        elif isinstance(node, nodes.FilterBlock):
            return self.filter_chain(node.filter, self.body(node.body))
        elif isinstance(node, nodes.Macro):
            self.params(node.args, node.defaults)
            self.bind("mo:" + node.name, self.body(node.body))
            self.bind("v:" + node.name, _V(obj=True, fns=frozenset({"m:" + node.name})))
        elif isinstance(node, nodes.CallBlock):
            self.params(node.args, node.defaults)
            self.bind("caller", self.body(node.body))
            return self.m(node.call)
        elif isinstance(node, nodes.Import):
            self.bind("v:" + node.target, _TOP)
        elif isinstance(node, nodes.FromImport):
            for name in node.names:
                self.bind("v:" + (name[1] if isinstance(name, tuple) else name), _TOP)
        elif isinstance(node, nodes.Include | nodes.Extends):
            return _MADE
        elif hasattr(node, "body") and isinstance(node.body, list):  # Scope, Block, eval-context modifiers
            return self.body(node.body)
        return _EMPTY

    def params(self, args: list[Any], defaults: list[Any]) -> None:
        for arg, default in zip(args[len(args) - len(defaults) :], defaults, strict=True):
            self.assign(arg, self.m(default))

    # -------------------------------------------------------------------------------------- expressions

    def _eval(self, node: Any) -> _V:
        nodes = self.n
        if isinstance(node, nodes.Const):
            return self.strings([node.value]) if isinstance(node.value, str) else _NUM
        if isinstance(node, nodes.TemplateData):
            return self.strings([node.data])
        if isinstance(node, nodes.Name):
            return self.name(node) if node.ctx == "load" else _BOTTOM
        if isinstance(node, nodes.List | nodes.Tuple):
            return _container(_join(*(self.m(i) for i in node.items)))
        if isinstance(node, nodes.Dict):
            keys = _join(*(self.m(p.key) for p in node.items))
            return _container(_join(*(self.m(p.value) for p in node.items)), keys, listy=False)
        if isinstance(node, nodes.Concat):
            return self.concat([self.m(p) for p in node.nodes])
        if isinstance(node, nodes.Add):
            left, right = self.m(node.left), self.m(node.right)
            for lit, other in ((node.left, right), (node.right, left)):
                if isinstance(lit, nodes.Const) and type(lit.value) in (int, float, bool):
                    # a number literal added to anything gives a number or an error (no text); an object of
                    # the application may define its own addition
                    return _join(_NUM, _CTX if other.ctx else _BOTTOM)
            return self.add(left, right)
        if isinstance(node, nodes.Mul):
            return self.mul(node)
        if isinstance(node, nodes.Mod):
            return self.mod(node)
        if isinstance(node, nodes.Sub | nodes.Div | nodes.FloorDiv | nodes.Pow | nodes.Neg | nodes.Pos):
            return _NUM
        if isinstance(node, nodes.Not | nodes.Compare | nodes.Test):
            return _NUM
        if isinstance(node, nodes.And | nodes.Or):
            return _join(self.m(node.left), self.m(node.right))
        if isinstance(node, nodes.CondExpr):
            return _join(self.m(node.expr1), self.m(node.expr2) if node.expr2 is not None else _CTX)
        if isinstance(node, nodes.Getattr):
            return self.getattr(self.m(node.node), node.attr)
        if isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Slice):
                return self.slice(self.m(node.node), node.arg)
            return self.getitem(self.m(node.node), self.m(node.arg), node.arg)
        if isinstance(node, nodes.Slice):
            return _NUM
        if isinstance(node, nodes.Filter):
            return self.filter_node(node, self.m(node.node) if node.node is not None else _BOTTOM)
        if isinstance(node, nodes.Call):
            return self.call(node)
        if isinstance(node, nodes.MarkSafe | nodes.MarkSafeIfAutoescape):
            return replace(self.m(node.expr), markup=True)
        if isinstance(node, nodes.NSRef):
            return _BOTTOM
        return _MADE_OBJ

    def name(self, node: Any) -> _V:
        name = node.name
        bound = self.vars.get("v:" + name)
        if name == "loop":
            own = _V(obj=True, fns=frozenset({"loop"}))
        elif name == "caller":
            own = _V(obj=True, fns=frozenset({"caller"}))
        elif name == "varargs":
            own = _container(self.get("varargs"))
        elif name == "kwargs":
            own = _container(self.get("kwargs"), self.get("kwargs.keys"), listy=False)
        elif name in _BUILTINS:
            own = _V(obj=True, fns=frozenset({"g:" + name}))
        elif name == "self":
            own = _MADE_OBJ
        elif id(node) in self.visible or (bound is not None and not self.chat):
            own = _BOTTOM  # the template's own binding (in an early round, before the binding is evaluated)
        else:
            # a free use, or (flow-insensitively) a use of a name bound only elsewhere: the render context's value
            own = _MODEL_TEXT if _model_supplied(name, self.chat) else _CTX
        return _join(own, bound) if bound is not None else own

    def add(self, a: _V, b: _V) -> _V:
        if a == _NUM and b == _NUM:
            return _NUM
        if self.escapes(a, b):
            return _derived(a, b)  # Markup.__add__ escapes the other operand
        # text only where both sides may be something other than the template's own list or dict: list + list
        # is a list, and list + text an error
        sa, sb = (v if v.deep else _scalar(v) for v in (a, b))
        out = [self.concat([sa, sb]) if sa != _BOTTOM and sb != _BOTTOM else _BOTTOM]
        if a.container() or b.container() or a.deep or b.deep:
            out.append(_container(_join(self.elem(a), self.elem(b))))
        if a.num and b.num:
            out.append(_NUM)
        return _join(*out)

    def mul(self, node: Any) -> _V:
        nodes = self.n
        left, right = self.m(node.left), self.m(node.right)
        for text, count_node in ((left, node.right), (right, node.left)):
            count = count_node.value if isinstance(count_node, nodes.Const) else None
            if text.strs and not (text.made or text.ctx or text.num) and type(count) is int:
                if any(count * len(s) > _MAX_STR for s in text.strs) or count < 0:
                    return _MADE
                return self.strings(s * count for s in text.strs)
        if left == _NUM and right == _NUM:
            return _NUM
        if left.container() or right.container():
            return _container(_join(self.elem(left), self.elem(right)))
        return _derived(left, right)

    def mod(self, node: Any) -> _V:
        fmt, args = self.m(node.left), self.m(node.right)
        if self.escapes(fmt, args):
            return _derived(fmt, args)  # Markup.__mod__ escapes the arguments
        if fmt.strs and not (fmt.made or fmt.ctx or fmt.num):
            values = self.exact_args(node.right)
            if values is not None:
                outs = [_printf(s, values) for s in fmt.strs]
                if all(o is not None for o in outs):
                    return self.strings(o for o in outs if o is not None)
        if fmt == _NUM and args == _NUM:
            return _NUM
        return _derived(fmt, args)

    def exact(self, node: Any) -> Any:
        """The one value ``node`` has (a constant, or a string computed to one possibility), else _NO."""
        nodes = self.n
        if isinstance(node, nodes.Const):
            return node.value
        if isinstance(node, nodes.List | nodes.Tuple):
            items = [self.exact(i) for i in node.items]
            return _NO if any(i is _NO for i in items) else items
        v = self.m(node)
        if len(v.strs) == 1 and not (v.made or v.ctx or v.num or v.obj or v.fns or v.container() or v.deep):
            return next(iter(v.strs))
        return _NO

    def exact_args(self, node: Any) -> list[Any] | None:
        nodes = self.n
        value = self.exact(node)
        if value is _NO:
            return None
        return list(value) if isinstance(node, nodes.Tuple) else [value]  # '%s' % [x] formats the list

    def getattr(self, base: _V, attr: str) -> _V:
        out: list[_V] = []
        if base.ctx:
            out += [_CTX, self.get("extra:ctx")]
        if base.num:
            out.append(_NUM)
        if (base.strs or base.made) and (hasattr(str, attr) or attr in _MARKUP_METHODS):
            out.append(_OBJ)  # a method of str (or of Markup, which |safe, |e and block sets make)
        if base.keys is not None or base.deep or (base.elems is not None and not base.listy):
            out.append(self.item(base))  # a dict's value (a list has no attributes but its methods)
        if (base.container() or base.deep) and (hasattr(dict, attr) or hasattr(list, attr)):
            out.append(_OBJ)
        for fn in base.fns:
            if fn == "ns":
                out += [self.get("ns:" + attr), self.get("ns:*")]
            elif fn == "cycler":  # jinja's Cycler: .current is an item, .items the tuple of them
                items = base.elems if base.elems is not None else _BOTTOM
                if attr == "current":
                    out.append(items)
                elif attr == "items":
                    out.append(_V(elems=items, listy=True, frozen=True))
                else:  # next (which returns an item) or reset, read as a value and called elsewhere
                    out.append(_V(obj=True, fns=frozenset({"cycler." + attr}), elems=items, listy=True))
            elif fn == "joiner":  # jinja's Joiner: .sep is the separator it returns from its second call
                out.append(base.elems if attr == "sep" and base.elems is not None else _OBJ)
            elif fn == "loop":
                if attr in ("previtem", "nextitem"):
                    out.append(self.get("loop"))
                elif attr == "cycle":
                    out.append(_V(obj=True, fns=frozenset({"loop.cycle"})))
                else:
                    out.append(_NUM)
            else:
                out.append(_MADE_OBJ)  # a macro's name and arguments, a global's attributes
        if base.obj and not base.fns:
            out.append(_OBJ)  # an attribute of a method: nothing but internals, judged by name
        out.append(self.bound_mutator(base, attr))
        return _walked(_join(*out), base.walk)

    def bound_mutator(self, base: _V, meth: str) -> _V:
        """``base.append`` (``update``, ``extend`` ...) read as a value rather than called where it is read
        (``{% set f = l.append %}``, ``l['append']``, ``l|attr('append')``, ``map(attribute='update')``): a
        method that, wherever it is called, puts its arguments into ``base`` (see :meth:`call`)."""
        if meth not in _MUTATORS:
            return _BOTTOM
        where = set()
        unknown = base.deep or base.made or (base.obj and not base.fns)
        if base.ctx or unknown:
            where.add(f"mut:{meth}:ctx")
        if base.container() or unknown:
            where.add(f"mut:{meth}:own")
        return _V(obj=True, fns=frozenset(where)) if where else _BOTTOM

    def getitem(self, base: _V, key: _V, key_node: Any) -> _V:
        nodes = self.n
        out: list[_V] = []
        if base.ctx:
            out += [_CTX, self.get("extra:ctx")]
        if base.strs:
            index = key_node.value if isinstance(key_node, nodes.Const) else None
            if type(index) is int:
                out.append(self.strings(s[index] for s in base.strs if -len(s) <= index < len(s)))
            else:
                out.append(self.elem(_V(strs=base.strs)))
            if key.strs or key.made:
                out.append(_OBJ)
        if base.num or base.made:
            out.append(_MADE)
        if base.container() or base.deep:
            by_name = bool(key.strs) and not (key.ctx or key.num or key.made)
            dict_like = base.keys is not None or base.deep or not base.listy
            out.append(self.item(base) if dict_like or not by_name else _OBJ)
        for fn in base.fns:
            if fn == "ns":
                if key.strs and not (key.made or key.ctx):
                    out += [self.get("ns:" + k) for k in key.strs]
                else:
                    out += [v for k, v in self.vars.items() if k.startswith("ns:")]
                out.append(self.get("ns:*"))
            elif fn in ("cycler", "joiner"):  # no items: jinja's lookup falls back to the attribute
                if key.strs and not (key.made or key.ctx):
                    out += [
                        self.getattr(_V(obj=True, fns=frozenset({fn}), elems=base.elems), k) for k in key.strs
                    ]
                else:
                    out += [_MADE_OBJ, base.elems if base.elems is not None else _BOTTOM]
            else:
                out.append(_MADE_OBJ)
        if base.obj and not base.fns:
            out.append(_OBJ)  # an attribute of a method: nothing but internals, judged by name
        if not (key.ctx or key.num):  # x['append'] is x.append where the item lookup fails
            out += [self.bound_mutator(base, k) for k in key.strs]
        # a name the data chooses: jinja's item lookup falls back to getattr when the item is missing
        return _walked(_join(*out), base.walk or (key.ctx and base != _NUM))

    def slice(self, base: _V, node: Any) -> _V:
        nodes = self.n
        bounds = [node.start, node.stop, node.step]
        if base.strs and not (base.made or base.ctx or base.num):
            vals = [None if b is None else b.value if isinstance(b, nodes.Const) else _NO for b in bounds]
            if all(v is None or type(v) is int for v in vals) and vals[2] != 0:
                cut = slice(*cast("list[int | None]", vals))
                return self.strings(s[cut] for s in base.strs)
        if base.container() or base.deep:
            return _join(base, _derived(*(self.m(b) for b in bounds if b is not None)))
        return _derived(base, *(self.m(b) for b in bounds if b is not None))

    # -------------------------------------------------------------------------------------------- calls

    def call(self, node: Any) -> _V:
        nodes = self.n
        args = [self.m(a) for a in node.args]
        kwargs = {kw.key: self.m(kw.value) for kw in node.kwargs}
        dyn = self.unpacked(node)
        callee = self.m(node.node)
        for fn in callee.fns:
            if fn.startswith("mut:"):  # a list's or dict's mutating method, however it was reached
                _, meth, where = fn.split(":")
                self.bind("extra:" + where, self.put(meth, args, kwargs, dyn))
        if isinstance(node.node, nodes.Getattr):  # what a walked-to callable returns walks on
            # a macro, caller, joiner or bound cycler.next kept in a dict, a namespace or a cycler and called
            # through it ({{ d.f('__class__') }}) is still that callable: its parameters take the arguments
            kept = [self.call_kept(fn, callee, args, kwargs, dyn) for fn in callee.fns if fn in _KEPT_CALLS]
            kept += [
                self.call_kept(fn, callee, args, kwargs, dyn) for fn in callee.fns if fn.startswith("m:")
            ]
            return _walked(
                _join(self.method(node, self.m(node.node.node), node.node.attr, args, kwargs, dyn), *kept),
                callee.walk,
            )
        if self.date_call(node, args):
            return _CTX
        out: list[_V] = []
        everything = [*args, *kwargs.values(), dyn]
        for fn in callee.fns:
            if fn.startswith("mut:"):
                out.append(_NUM)
            elif fn.startswith("m:") or fn in _KEPT_CALLS:
                out.append(self.call_kept(fn, callee, args, kwargs, dyn))
            elif fn == "g:range":
                out.append(_shape(_V(elems=_NUM, listy=True, frozen=True)))
            elif fn == "g:dict":
                # dict(mapping) takes a mapping's keys and values, dict(pairs) each pair's two items
                pairs = [self.elem(a) for a in args] + [self.elem(self.elem(a)) for a in args] + [dyn]
                keys = _join(self.strings(kwargs) if kwargs else _BOTTOM, *pairs)
                values = _join(*kwargs.values(), *pairs, *map(self.item, args))
                out.append(_container(values, keys, listy=False))
            elif fn == "g:namespace":  # namespace(*args, **kwargs) holds dict(*args, **kwargs)
                for key, value in kwargs.items():
                    self.bind("ns:" + key, value)
                whole = [_join(self.elem(a), self.elem(self.elem(a)), self.item(a)) for a in args]
                self.bind("ns:*", _join(*whole, dyn))
                out.append(_V(obj=True, fns=frozenset({"ns"})))
            elif fn == "g:cycler":
                out.append(_V(obj=True, fns=frozenset({"cycler"}), elems=_join(*everything), listy=True))
            elif fn == "g:joiner":  # joiner(sep=', '): '' on the first call, then sep
                out.append(
                    _V(
                        obj=True,
                        fns=frozenset({"joiner"}),
                        elems=_join(_V(strs=frozenset({", "})), *everything),
                    )
                )
            elif fn == "loop.cycle":
                out.append(_join(*everything))
            elif fn == "loop":
                for loop in self.recursive:
                    self.assign(loop.target, self.elem(_join(*args, dyn)))
                    self.bind("loop", self.elem(_join(*args, dyn)))
                out.append(_MADE)
            else:
                out.append(_MADE_OBJ)
        if callee.ctx:  # a function of the application (raise_exception, strftime_now, ...)
            out.append(_derived(*everything) if any(v.tainted() for v in everything) else _CTX)
        # a joiner and a cycler's bound methods carry their items as elems, not as a container that is called
        helper = bool(callee.fns) and callee.fns <= _HELPER_CALLS and callee.keys is None
        if callee.made or callee.strs or (callee.container() and not helper) or callee.deep or callee.num:
            out.append(_MADE_OBJ)
        if callee.obj and not callee.fns:
            out.append(_MADE_OBJ)
        return _walked(_join(*out), callee.walk)

    def call_kept(self, fn: str, callee: _V, args: list[_V], kwargs: dict[str, _V], dyn: _V) -> _V:
        """What calling one of the template's own callables gives (a macro ``m:<name>``, ``caller``, a joiner, a
        cycler's ``next``), its parameters bound to the arguments."""
        if fn.startswith("m:"):
            for macro in self.macros.get(fn[2:], []):
                self.bind_call(macro.args, args, kwargs, dyn, "varargs", "kwargs")
            return self.get("mo:" + fn[2:])
        if fn == "caller":
            for block in self.callblocks:
                self.bind_call(block.args, args, kwargs, dyn, "varargs", "kwargs")
            return self.get("caller")
        items = callee.elems if callee.elems is not None else _BOTTOM
        return _join(_EMPTY, items) if fn == "joiner" else items

    def date_call(self, node: Any, args: list[_V]) -> bool:
        """``strftime_now(fmt)`` of the renderer (transformers, llama.cpp, vLLM define it) with formats that print
        only a date (:func:`_date_format`): its text is the clock's, which the template cannot shape, as the weekday
        of ``{'Monday': ...}[strftime_now('%A')]``. Not where the template binds the name anywhere (a macro or a
        set of it), nor with a format it cannot compute; a special token of that name is a string, and calling
        it fails at render time."""
        nodes = self.n
        if not (
            isinstance(node.node, nodes.Name)
            and node.node.name == "strftime_now"
            and len(args) == 1
            and not node.kwargs
            and node.dyn_args is None
            and node.dyn_kwargs is None
        ):
            return False
        fmt = args[0]
        if not fmt.strs or fmt != _V(strs=fmt.strs) or not all(_date_format(s) for s in fmt.strs):
            return False
        if self.binds_strftime is None:
            self.binds_strftime = any(
                (isinstance(n, nodes.Name) and n.ctx != "load" and n.name == "strftime_now")
                or (isinstance(n, nodes.Macro) and n.name == "strftime_now")
                or isinstance(n, nodes.Import | nodes.FromImport)  # a macro of another template, perhaps
                for n in self.order
            )
        return not self.binds_strftime

    def unpacked(self, node: Any) -> _V:
        """What ``*args`` and ``**kwargs`` of a call or filter pass: the items of the one, the names and values
        of the other."""
        kwargs = self.m(node.dyn_kwargs)
        return _join(self.elem(self.m(node.dyn_args)), self.elem(kwargs), self.item(kwargs))

    def bind_call(
        self, params: list[Any], args: list[_V], kwargs: dict[str, _V], dyn: _V, var: str, kw: str
    ) -> None:
        names = [p.name for p in params]
        for i, value in enumerate(args):
            self.bind("v:" + names[i] if i < len(names) else var, value)
        for key, value in kwargs.items():
            if key in names:
                self.bind("v:" + key, value)
            else:
                self.bind(kw, value)
                self.bind(kw + ".keys", self.strings([key]))
        if dyn != _BOTTOM:
            for name in names:
                self.bind("v:" + name, dyn)
            self.bind(var, dyn)
            self.bind(kw, dyn)
            self.bind(kw + ".keys", dyn)

    def method(self, node: Any, base: _V, meth: str, args: list[_V], kwargs: dict[str, _V], dyn: _V) -> _V:
        everything = [*args, *kwargs.values(), dyn]
        if meth in _MUTATORS:
            # into context data, or into one of the template's own containers (or into anything, for a value
            # the analysis cannot tell); a string, number or range has no mutating method
            put = self.put(meth, args, kwargs, dyn)
            unknown = base.deep or base.made or base.obj
            if base.ctx or unknown:
                self.bind("extra:ctx", put)
            if base.container() or unknown:
                self.bind("extra:own", put)
        out: list[_V] = []
        if base.strs:
            out.append(self.str_method(node, base, meth))
        if base.ctx:
            if meth == "get":
                out.append(_join(_CTX, *args[1:], *kwargs.values()))
            elif meth in _SELECTING_METHODS or not any(v.tainted() for v in everything):
                out.append(_CTX)
            else:
                out.append(_MADE)
        if base.num:
            out.append(_NUM)
        if base.made or (base.obj and not base.fns):
            out.append(_MADE_OBJ)
        if base.container() or base.deep:
            keys, item = self.elem(base), self.item(base)
            if meth == "items":
                out.append(_container(_container(_join(keys, item))))
            elif meth == "keys":
                out.append(_container(keys))
            elif meth == "values":
                out.append(_container(item))
            elif meth == "copy":
                out.append(base)
            elif meth in ("get", "pop", "setdefault"):
                out.append(_join(item, *args[1:]))
            elif meth in ("index", "count"):
                out.append(_NUM)
            else:
                out.append(_MADE_OBJ)
        for fn in base.fns:
            if fn == "loop" and meth == "cycle":
                out.append(_join(*everything))
            elif fn == "loop":
                out.append(_NUM)
            elif fn == "ns" and meth in ("update", "__setitem__"):
                self.bind("ns:*", self.put(meth, args, kwargs, dyn))
                out.append(_NUM)
            elif fn == "cycler" and meth == "next":
                out.append(base.elems if base.elems is not None else _BOTTOM)
            elif fn == "cycler" and meth == "reset":
                out.append(_NUM)
            else:
                out.append(_MADE_OBJ)
        return _join(*out)

    def put(self, meth: str, args: list[_V], kwargs: dict[str, _V], dyn: _V) -> _V:
        """What a mutating method (append, extend, insert, update, ...) puts into a list or dict."""
        if meth in ("extend", "update"):  # update(pairs) puts each pair's two items
            whole = [_join(self.elem(a), self.item(a), self.elem(self.elem(a))) for a in args]
            return _join(*whole, *kwargs.values(), self.strings(kwargs) if kwargs else _BOTTOM, dyn)
        return _join(*args, *kwargs.values(), dyn)

    def str_method(self, node: Any, base: _V, meth: str) -> _V:
        """A method called on strings the template computed: computed again when it can be."""
        nodes = self.n
        inexact = _MADE if (base.made or base.ctx or base.num) else _BOTTOM
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            return _MADE
        if (node.args or node.kwargs) and self.escapes(
            base, *(self.m(a) for a in node.args), *(self.m(k.value) for k in node.kwargs)
        ):
            return _MADE  # Markup's methods escape their arguments
        args = [self.exact(a) for a in node.args]
        kwargs = {kw.key: self.exact(kw.value) for kw in node.kwargs}
        outs: list[str | None] = []
        if meth == "join" and len(node.args) == 1 and isinstance(node.args[0], nodes.List | nodes.Tuple):
            parts = [self.m(i) for i in node.args[0].items]
            if all(p.strs and not (p.made or p.ctx or p.num) for p in parts):
                for sep in base.strs:
                    options = []
                    for i, p in enumerate(parts):
                        options += [frozenset({sep})] if i else []
                        options.append(p.strs)
                    got = self.product(options)
                    if got is None:
                        return _MADE
                    outs += list(got)
                return _join(self.strings(o for o in outs if o is not None), inexact)
            return _MADE
        if any(a is _NO for a in [*args, *kwargs.values()]):
            return _MADE
        for s in base.strs:
            if meth == "format":
                outs.append(_str_format(s, args, kwargs))
            elif meth in _EXACT_STR and not args and not kwargs:
                outs.append(_EXACT_STR[meth](s))
            elif meth == "replace" and len(args) == 2 and all(isinstance(a, str) for a in args):
                done = s.replace(args[0], args[1])
                outs.append(done if len(done) <= _MAX_STR else None)
            elif meth in ("strip", "lstrip", "rstrip") and len(args) == 1 and isinstance(args[0], str):
                outs.append(getattr(s, meth)(args[0]))
            elif meth == "join" and len(args) == 1 and isinstance(args[0], list):
                ok = all(isinstance(p, str) for p in args[0]) and sum(map(len, args[0])) <= _MAX_STR
                outs.append(s.join(args[0]) if ok else None)
            else:
                return _derived(_MADE, *(self.m(a) for a in node.args))
        if any(o is None for o in outs):
            return _MADE
        return _join(self.strings(o for o in outs if o is not None), inexact)

    # ------------------------------------------------------------------------------------------ filters

    def filter_chain(self, node: Any, base: _V) -> _V:
        """A filter block's filters (``{% filter a|b %}``, ``{% set x | a|b %}``) applied to its body: the
        innermost filter node (the one without an operand) first."""
        chain = [node]
        while chain[-1].node is not None:
            chain.append(chain[-1].node)
        for filt in reversed(chain):
            base = self.filter_node(filt, base)
        return base

    def filter_node(self, node: Any, base: _V) -> _V:
        self.bases[id(node)] = _join(self.bases.get(id(node), _BOTTOM), base)
        args = [self.m(a) for a in node.args]
        kwargs = {kw.key: self.m(kw.value) for kw in node.kwargs}
        dyn = self.unpacked(node)
        if dyn != _BOTTOM:
            return _derived(base, *args, *kwargs.values(), dyn, _MADE)
        return self.apply(node.name, base, args, kwargs, node)

    def apply(self, name: str, base: _V, args: list[_V], kwargs: dict[str, _V], node: Any) -> _V:
        nodes = self.n
        exact_base = bool(base.strs) and not (base.made or base.ctx or base.num)
        if name in ("default", "d"):
            return _join(base, args[0] if args else kwargs.get("default_value", _EMPTY))
        if name in _EXACT_STR and not args and not kwargs:
            text = _text(base)
            if name == "reverse" and (base.container() or base.deep):
                return base
            if not text.strs:
                return replace(text, markup=True) if name == "safe" else text
            # jinja's title filter is not str.title ("x'y" is "X'y", not "X'Y"); Markup stays Markup
            how = _jinja_title if name == "title" else _EXACT_STR[name]
            done = self.strings(how(s) for s in text.strs)
            rest = _V(made=text.made, ctx=text.ctx, num=text.num, markup=text.markup or name == "safe")
            return _join(done, rest)
        if name in ("e", "escape", "forceescape"):
            text = _text(base)
            # escape leaves a Markup as it is; forceescape escapes it again
            kept = set(text.strs) if text.markup and name != "forceescape" else set()
            done = self.strings({_escape(s) for s in text.strs} | kept) if text.strs else _BOTTOM
            return _join(done, _V(made=text.made, ctx=text.ctx, num=text.num, markup=True))
        if name == "replace" and len(args) >= 2 and node is not None:
            old, new = self.exact(node.args[0]), self.exact(node.args[1])
            count_node = (
                node.args[2]
                if len(node.args) > 2
                else next((kw.value for kw in node.kwargs if kw.key == "count"), None)
            )
            count = -1 if count_node is None else self.exact(count_node)
            text = _text(base)
            plain = not (self.autoescape and self.escapes(text, *args, *kwargs.values()))
            if exact_base and isinstance(old, str) and isinstance(new, str) and type(count) is int and plain:
                outs = [s.replace(old, new, count) for s in text.strs]
                return _MADE if any(len(o) > _MAX_STR for o in outs) else self.strings(outs)
            return _derived(text, *args, *kwargs.values())
        if name == "format" and node is not None:
            values = [self.exact(a) for a in node.args]
            if self.escapes(base, *args, *kwargs.values()):
                return _derived(_text(base), *args, *kwargs.values())  # a Markup's % escapes the arguments
            if exact_base and not kwargs and all(v is not _NO for v in values):
                printed = [_printf(s, values) for s in base.strs]
                if all(o is not None for o in printed):
                    return self.strings(o for o in printed if o is not None)
            return _derived(_text(base), *args, *kwargs.values())
        if name == "join":
            return self.join_filter(base, args, kwargs, node)
        if name == "tojson":
            text = _text(base)
            done = self.strings(t for s in text.strs for t in _tojson(s)) if text.strs else _BOTTOM
            return _join(done, _V(made=text.made, ctx=text.ctx, num=text.num, markup=True))
        if name in _NUMERIC_FILTERS:
            return _NUM
        if name == "sum":
            return _join(_NUM, self.elem(base)) if args or kwargs else _NUM
        if name in _ITEM_FILTERS:
            return self.elem(base)
        if name in _LIST_FILTERS or name == "reverse":
            item = self.elem(base)
            if name == "dictsort":  # (key, value) pairs
                item = _container(_join(item, self.item(base)))
            elif name in ("batch", "slice"):  # groups of items, padded with fill_with
                item = _container(_join(item, *args, *kwargs.values()))
            return _join(_container(item), _CTX if base.ctx else _BOTTOM)
        if name in ("items",):
            pair = _container(_join(self.elem(base), self.item(base)))
            return _join(_container(pair), _CTX if base.ctx else _BOTTOM)
        if name == "groupby":
            item = self.elem(base)
            grouper = self.member(item, args[0] if args else kwargs.get("attribute"))
            return _join(
                _container(_container(_join(grouper, _container(item)))), _CTX if base.ctx else _BOTTOM
            )
        if name == "map":
            item = self.elem(base)
            if not args:
                mapped = self.member(item, kwargs.get("attribute"))
            elif args[0].strs and not (args[0].made or args[0].ctx or args[0].num):
                mapped = _join(*(self.apply(f, item, args[1:], kwargs, None) for f in args[0].strs))
            else:
                mapped = _TOP
            return _join(_container(mapped), _CTX if base.ctx and not mapped.tainted() else _BOTTOM)
        if name == "attr":
            key = args[0] if args else kwargs.get("name")
            if key is not None and _known_name(key):
                return _join(
                    *(self.getattr(base, s) for s in key.strs), self.member(base) if key.num else _BOTTOM
                )
            return _join(self.member(base), _MADE_OBJ)
        if node is not None and node.node is None and isinstance(node, nodes.Filter):
            pass  # a filter block's filter: the same rules as below
        return _derived(_text(base), *args, *kwargs.values())

    def member(self, item: _V, name: _V | None = None) -> _V:
        """An attribute of ``item`` read by a name the caller judges (map(attribute=), groupby, attr); for a
        ``name`` (a dotted path) that ends in a mutating method, that bound method too."""
        value = _join(
            _CTX if item.ctx else _BOTTOM,
            _MADE_OBJ if item.tainted() else _BOTTOM,
            self.item(item) if item.container() or item.deep else _BOTTOM,
            _NUM if item.num else _BOTTOM,
            *(self.get(k) for k in self.vars if k.startswith("ns:") and "ns" in item.fns),
        )
        if name is None:
            return value
        owners = {s.rpartition(".")[2]: item if "." not in s else self.member(item) for s in name.strs}
        return _join(value, *(self.bound_mutator(owner, meth) for meth, owner in owners.items()))

    def join_filter(self, base: _V, args: list[_V], kwargs: dict[str, _V], node: Any) -> _V:
        nodes = self.n
        sep = args[0] if args else kwargs.get("d", _EMPTY)
        whole = (
            len(args) <= 1 and "attribute" not in kwargs
        )  # with an attribute, each item's attribute is joined
        if node is not None and isinstance(node.node, nodes.List | nodes.Tuple) and whole:
            parts = [_text(self.m(i)) for i in node.node.items]
            exact = all(p.strs and not (p.made or p.ctx or p.num) for p in [sep, *parts])
            if exact and not (self.autoescape and self.escapes(sep, *parts)):  # autoescaped, join escapes
                options: list[frozenset[str]] = []
                for i, p in enumerate(parts):
                    options += [sep.strs] if i else []
                    options.append(p.strs)
                got = self.product(options)
                if got is not None:
                    return self.strings(got)
            return _MADE
        item = _text(self.elem(base))
        if not item.tainted() and (sep == _EMPTY or not sep.tainted()):
            return _CTX if item.ctx else _NUM
        return _MADE

    # ----------------------------------------------------------------------------------------- judgment

    def report(self, node: Any, what: str, severity: Severity = Severity.CRITICAL) -> None:
        line = getattr(node, "lineno", None)
        self.found.setdefault((line or 0, what), (severity, what, line))

    def bound_loads(
        self, parents: dict[int, Any], wanted: Callable[[str], bool] = _python_builtin
    ) -> set[int]:
        """Uses of a ``wanted`` name (a Python builtin's, :func:`_python_builtin`, or a global's) where the template
        itself has bound it: inside the scope of a loop variable, macro or call-block parameter or with-variable of
        that name (or of a macro's own name, in its body), or after a ``set`` or macro of it earlier in the same
        statement list or in one enclosing it. A ``set`` in a branch not taken (``{% if false %}``), later in the
        template or in a loop's body binds nothing at a use outside it: the rendering context's value is used
        there."""
        nodes = self.n
        uses = [n for n in self.order if isinstance(n, nodes.Name) and n.ctx == "load" and wanted(n.name)]
        if not uses:
            return set()
        where: dict[int, tuple[str, int]] = {}
        sets: dict[tuple[int, str], list[tuple[int, set[str]]]] = {}
        for node in self.order:
            for field in node.fields:
                stmts = getattr(node, field)
                if not isinstance(stmts, list):
                    continue
                for i, child in enumerate(stmts):
                    if not isinstance(child, nodes.Node):
                        continue
                    where[id(child)] = (field, i)
                    if isinstance(child, nodes.Assign | nodes.AssignBlock | nodes.Macro | nodes.If):
                        names = {n for n in self.sets_of(child) if wanted(n)}
                        if names:
                            sets.setdefault((id(node), field), []).append((i, names))
        out: set[int] = set()
        known: dict[tuple[int, str], bool] = {}
        """Whether a name is bound where a node is (the walk up from a use stops at a node already answered)."""
        steps = 0
        for use in uses:
            cur, passed = use, []
            while (parent := parents.get(id(cur))) is not None:
                steps += 1
                if steps & 4095 == 4095:
                    self.tick()
                seen = known.get((id(cur), use.name))
                if seen is not None:
                    found = seen
                    break
                passed.append(id(cur))
                field, j = where.get(id(cur), ("", -1))
                if any(i < j and use.name in names for i, names in sets.get((id(parent), field), ())):
                    found = True
                    break
                if isinstance(parent, nodes.For):
                    scoped = use.name in _stored(parent.target) and (field == "body" or cur is parent.test)
                elif isinstance(parent, nodes.Macro | nodes.CallBlock):
                    own = isinstance(parent, nodes.Macro) and parent.name == use.name
                    scoped = (use.name in {a.name for a in parent.args} or own) and field == "body"
                elif isinstance(parent, nodes.With):
                    scoped = use.name in set().union(*map(_stored, parent.targets)) and field == "body"
                else:
                    scoped = False
                if scoped:
                    found = True
                    break
                cur = parent
            else:
                found = False
            for node_id in passed:
                known[node_id, use.name] = found
            if found:
                out.add(id(use))
        return out

    def sets_of(self, stmt: Any) -> set[str]:
        """The names a statement binds in the statement list it is in: a ``set`` or macro its own; an ``if`` (which
        opens no scope in Jinja) those that every one of its branches, ``else`` included, binds."""
        nodes = self.n
        if isinstance(stmt, nodes.Macro):
            return {stmt.name}
        if isinstance(stmt, nodes.Assign | nodes.AssignBlock):
            return _stored(stmt.target)
        if not isinstance(stmt, nodes.If) or not stmt.else_:
            return set()
        branches = [stmt.body, *(e.body for e in stmt.elif_), stmt.else_]
        every = [set().union(*(self.sets_of(s) for s in branch)) for branch in branches]
        return set.intersection(*every)

    def data_read(self, name: Any, parents: dict[int, Any]) -> bool:
        """Whether a use of a global is a printed or tested read of a setting: ``config.extra.version`` or
        ``config['site_name']`` (names spelled in the template, none internal), whose value is printed, joined
        into text, compared or tested, never called, filtered or handed on. Not a setting spelled in capitals
        (``config.SECRET_KEY``, ``config['SQLALCHEMY_DATABASE_URI']``): those are Flask's, whose printed value
        discloses the application's secrets; MkDocs' settings are lower-case."""
        nodes = self.n
        node, steps = name, 0
        while True:
            parent = parents.get(id(node))
            if isinstance(parent, nodes.Getattr) and parent.node is node:
                name = parent.attr
            elif (
                isinstance(parent, nodes.Getitem)
                and parent.node is node
                and isinstance(parent.arg, nodes.Const)
                and isinstance(parent.arg.value, str)
            ):
                name = parent.arg.value
            else:
                break
            if _is_bad_name(name) or (not steps and name.isupper()):
                break
            node, steps = parent, steps + 1
        if not steps:
            return False
        if isinstance(parent, nodes.If | nodes.CondExpr):
            return parent.test is node
        return isinstance(parent, nodes.Output | nodes.Concat | nodes.Compare | nodes.Operand | nodes.Not)

    def judge(self) -> None:
        nodes = self.n
        callees = {
            id(n.node) for n in self.order if isinstance(n, nodes.Call) and isinstance(n.node, nodes.Name)
        }
        parents = {id(child): node for node in self.order for child in node.iter_child_nodes()}
        bound = self.bound_loads(parents)
        # a global's name (g, config, self ...) where the template has bound it is its own value: a loop
        # variable, a parameter, a with-variable, or a set before the use ({% set config = namespace(...) %}
        # is a real template's flags, not Flask's config); a set the render may skip binds nothing
        local = self.bound_loads(parents, _DANGEROUS_GLOBALS.__contains__)
        for i, node in enumerate(self.order):
            if i & 1023 == 1023:
                self.tick()
            if isinstance(node, nodes.Getattr):
                if _is_bad_name(node.attr):
                    self.report(node, f"access to attribute '{_show(node.attr)}'")
                elif node.attr in ("format", "format_map"):
                    self.judge_format(node, self.m(node.node))
            elif isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Slice):
                self.judge_item(node, self.m(node.node), self.m(node.arg))
            elif isinstance(node, nodes.Keyword) and node.key.startswith("_"):
                self.report(
                    node,
                    f"keyword argument named '{_show(node.key)}' (a source of internal names)",
                    Severity.HIGH,
                )
            elif isinstance(node, nodes.Filter):
                args = [self.m(a) for a in node.args]
                kwargs = {kw.key: self.m(kw.value) for kw in node.kwargs}
                base = self.bases.get(id(node), _BOTTOM)
                self.judge_filter(node, node.name, base, args, kwargs, through_map=False)
                unpacked = node.dyn_args is not None or node.dyn_kwargs is not None
                if unpacked and (node.name in _ATTRIBUTE_ARG or node.name in ("map", "attr")):
                    self.report(
                        node,
                        f"filter '{node.name}' takes arguments unpacked at render time",
                        Severity.HIGH,
                    )
            elif (
                isinstance(node, nodes.Name)
                and node.ctx == "load"
                and node.name in _DANGEROUS_GLOBALS
                and id(node) not in local
                and not (node.name in _JINJA_HELPERS and id(node) in callees)
            ):
                if node.name in _DATA_GLOBALS and self.data_read(node, parents):
                    self.report(node, f"{_DATA_READ}'{node.name}' (leads to Python globals)", Severity.HIGH)
                else:
                    self.report(
                        node, f"uses the global '{node.name}' (leads to Python globals)", Severity.HIGH
                    )
            elif (
                isinstance(node, nodes.Call)
                and isinstance(node.node, nodes.Name)
                and _python_builtin(node.node.name)
                and id(node.node) not in bound
            ):
                internals = any(
                    any(_is_bad_name(x) for x in self.m(a).strs)
                    for a in [*node.args, *(k.value for k in node.kwargs)]
                )
                self.report(
                    node,
                    f"calls the Python builtin '{node.node.name}'"
                    + (" with an internal name" if internals else "")
                    + " (not defined by chat-template environments; reaches Python internals where exposed)",
                    Severity.CRITICAL if internals else Severity.HIGH,
                )
            elif (
                isinstance(node, nodes.Name)
                and node.ctx == "load"
                and _python_builtin(node.name)
                and id(node) not in callees
                and id(node) not in bound
            ):
                # handed on rather than called here ({% set g = getattr %}, a macro argument, a filter argument)
                self.report(
                    node,
                    f"uses the Python builtin '{node.name}' as a value (not defined by chat-template environments; "
                    "reaches Python internals where exposed)",
                    Severity.HIGH,
                )
            elif isinstance(node, nodes.Import | nodes.FromImport | nodes.Include | nodes.Extends):
                self.report(node, f"loads another template ({type(node).__name__.lower()})", Severity.HIGH)

    def judge_item(self, node: Any, base: _V, key: _V) -> None:
        bad = sorted(s for s in key.strs if _is_bad_name(s))
        for s in bad:
            self.report(node, f"item access to '{_show(s)}'")
        if key.made and not bad:
            self.report(
                node,
                "item access with a name the template builds (or the model's files supply) in a way the analysis "
                "cannot follow",
                Severity.HIGH,
            )
        elif (key.ctx or key.num) and base.fns - {"ns", "loop", "loop.cycle"} and not bad:
            self.report(
                node, "item access on a template object (a macro or global) by a computed name", Severity.HIGH
            )
        elif self.chat and key.ctx and base.walk and not bad:
            # one name the data chooses reads one attribute; a second one on what the first reached is a walk
            # (m[a][b][c]...) that the chat's messages steer to Python globals: a planted gadget (in a config's
            # template the data is the rendering application's own, not a chat user's)
            self.report(
                node,
                "item access by a name the render context's data chooses, on a value reached the same way (the "
                "chat's messages can walk attributes)",
                Severity.HIGH,
            )
        if {"format", "format_map"} & key.strs and (base.strs or base.made):
            self.judge_format(node, base)

    def judge_format(self, node: Any, fmt: _V) -> None:
        for s in sorted(fmt.strs):
            names = _format_attrs(s)
            for name in names or []:
                if _is_bad_name(name):
                    self.report(node, f"format string reads attribute '{_show(name)}'")
        if fmt.made:
            self.report(node, "str.format with a format string the analysis cannot compute", Severity.HIGH)
        elif fmt.ctx and self.chat:
            # its replacement fields ({0.__init__.__globals__}) walk the arguments' attributes by names the
            # chat's messages choose
            self.report(
                node,
                "str.format with a format string from the render context's data (fields walk attributes)",
                Severity.HIGH,
            )

    def judge_filter(
        self, node: Any, name: str, base: _V, args: list[_V], kwargs: dict[str, _V], *, through_map: bool
    ) -> None:
        """``base|name(*args, **kwargs)``; through map, ``base`` is what the mapped filter is applied to."""
        if name == "attr":
            self.judge_attr(node, base, args[0] if args else kwargs.get("name"), through_map=through_map)
            return
        if name == "map" and args:
            applied = args[0]
            if applied.made or applied.ctx or applied.obj or applied.num or not applied.strs:
                self.report(
                    node,
                    "applies the 'attr' filter (or a filter named at render time) through map",
                    Severity.HIGH,
                )
            for f in sorted(applied.strs):  # map('map', 'attr', ...) maps again: each level is judged
                self.judge_filter(node, f, self.elem(base), args[1:], kwargs, through_map=True)
        names = [v for k, v in kwargs.items() if k == "attribute"]
        at = _ATTRIBUTE_ARG.get(name)
        if at is not None and len(args) > at:
            names.append(args[at])
        for value in names:
            for s in sorted(value.strs):
                # sort reads a comma-separated list of dotted paths (jinja2's make_multi_attrgetter)
                path = re.split(r"[.,]", s) if name == "sort" else s.split(".")
                if any(_is_bad_name(p) for p in path):
                    self.report(node, f"filter '{name}' reads attribute '{_show(s)}'")
                elif path[-1] in ("format", "format_map"):  # map and groupby give the bound method
                    self.judge_format(node, _flat(self.elem(base)))
            if value.made or value.ctx or value.obj:
                self.report(node, f"filter '{name}' reads an attribute named at render time", Severity.HIGH)

    def judge_attr(self, node: Any, base: _V, name: _V | None, *, through_map: bool) -> None:
        """The attr filter: ``getattr(base, name)``, judged like a spelled attribute when every name it may be is
        known (a computed string or a number), reported otherwise."""
        how = " through map" if through_map else ""
        if name is None or not _known_name(name):
            self.report(node, f"uses the 'attr' filter{how} (attribute access by computed name)")
            return
        for s in sorted(name.strs):
            if _is_bad_name(s):
                self.report(node, f"'attr' filter{how} reads attribute '{_show(s)}'")
        if {"format", "format_map"} & name.strs:
            self.judge_format(node, base)


_NO: Final = object()


def check_template(
    source: str, ctx: ScanContext, location: Location, *, key: str = "chat_template", standalone: bool = False
) -> None:
    """Parse ``source`` (never render it) and report constructs that reach Python internals.

    ``standalone``: the template is the whole file at ``location``, so its line numbers are the file's; a
    template inside a GGUF header, a JSON config or an archive member keeps its line in the evidence instead
    (a line of a binary file, or the wrong line of the JSON, would mislead a reader and SARIF tools).
    """
    outcome = _cached(source, ctx, chat=True)
    shown = _show(key, 1000)
    if isinstance(outcome, _Failure):
        ctx.fail(location, f"{shown}: {outcome.reason}")
        return
    own_lines = standalone and location.member is None
    for severity, what, line in outcome:
        if what.startswith(_DATA_READ):  # judged like any other use here (see _DATA_GLOBALS)
            what = "uses the global " + what[len(_DATA_READ) :]
        where = Location(location.path, location.member, line=line) if own_lines else location
        extra = {} if own_lines or line is None else {"template_line": line}
        ctx.add_severity(
            rules.TemplateInjection, severity, f"{shown}: {what}", where, template_key=shown, **extra
        )


def check_embedded_template(source: str, ctx: ScanContext, location: Location, *, key: str) -> None:
    """Judge a string of a config that may be rendered as a Jinja template by some application (a YAML config's
    ``chat_template``, a ``prompt_template``, any value with ``{{``/``{%`` markup). Unlike
    :func:`check_template`, text that Jinja's parser rejects says nothing: it is then no template at all. A
    template that parses but cannot be analysed (nested past the parser's stack, values that do not settle)
    renders all the same, so it is unverified."""
    if "{{" not in source and "{%" not in source:
        return
    outcome = _cached(source, ctx, chat=False)
    shown = _show(key, 1000)
    if isinstance(outcome, _Failure):
        if not outcome.syntax:
            ctx.fail(location, f"{shown}: {outcome.reason}")
        return
    for severity, what, line in outcome:
        if what.startswith(_DATA_READ):
            continue  # MkDocs' {{ config.site_name }}: a setting printed, not Flask's config object used
        ctx.add_severity(
            rules.TemplateInjection,
            severity,
            f"{shown}: {what}",
            location,
            template_key=shown,
            **({} if line is None else {"template_line": line}),
        )


@dataclass(frozen=True, slots=True)
class _Failure:
    """Why a template cannot be analysed."""

    reason: str
    syntax: bool = False
    """Jinja's parser rejects the text as a template (what a renderer would reject too)."""


_CACHE: Final[dict[tuple[str, bool], tuple[tuple[Severity, str, int | None], ...] | _Failure]] = {}
"""Analyses by template text (and whether it is a chat template): model folders repeat the same template in many
files."""


def _cached(
    source: str, ctx: ScanContext, *, chat: bool
) -> tuple[tuple[Severity, str, int | None], ...] | _Failure:
    outcome = _CACHE.get((source, chat))
    if outcome is None:
        outcome = _analyse(source, ctx.check_time, chat=chat)
        if len(_CACHE) >= 64:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[source, chat] = outcome
    return outcome


def _analyse(
    source: str, tick: Callable[[], None], *, chat: bool = True
) -> tuple[tuple[Severity, str, int | None], ...] | _Failure:
    """The template's problems as (severity, what, line), or why it cannot be analysed."""
    from jinja2 import TemplateSyntaxError

    try:
        tree = _env().parse(source)
        # transformers and llama-cpp-python render with trim_blocks and lstrip_blocks (a newline after a block
        # tag and the blanks before one are not text), a plain Environment without: where the text differs
        # (a block set's body), a name may be harmless one way and '__class__' the other, so both are analysed
        trimmed = _env(trim=True).parse(source)
    except TemplateSyntaxError as exc:
        return _Failure(
            f"Jinja template cannot be parsed ({_show(exc.message or '', 200)}, line {exc.lineno})",
            syntax=True,
        )
    except (RecursionError, MemoryError):
        return _Failure("Jinja template too deeply nested to parse")
    except (ValueError, OverflowError) as exc:
        # the lexer converts number literals: past Python's digit limit here, not on Pythons without one
        return _Failure(f"Jinja template cannot be parsed ({_show(str(exc), 200)})")
    found: dict[tuple[int, str], tuple[Severity, str, int | None]] = {}
    for parsed in (tree, trimmed) if _text_data(tree) != _text_data(trimmed) else (tree,):
        analysis = _Analysis(parsed, tick, chat=chat)
        if not analysis.run():
            return _Failure("Jinja template too complex to analyse (its values do not settle)")
        analysis.judge()
        for key, value in analysis.found.items():
            found.setdefault(key, value)
    return tuple(found.values())


def _text_data(tree: Any) -> list[str]:
    """The template's literal text, in order (walked without recursion: templates nest deep)."""
    from jinja2 import nodes

    return [node.data for node in _post_order(tree) if isinstance(node, nodes.TemplateData)]
