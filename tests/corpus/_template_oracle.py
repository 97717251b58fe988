"""A renderer-side oracle for the chat-template analysis: does a plain ``jinja2.Environment`` walk to an internal
attribute when it renders the template?

``Probe`` is jinja2's own ``Environment`` (what llama-cpp-python rendered GGUF templates with before the
CVE-2024-34359 fix) with its two lookup hooks, ``getattr`` (``x.name``, the ``attr`` filter) and ``getitem``
(``x[name]``, the ``attribute=`` of ``map``/``sort``/``groupby`` ...), and ``str.format`` calls watched: the first
time one of them would succeed in reading an attribute whose name opens a walk to Python internals (any name
starting with ``_``, or ``mro``, ``globals`` ...), rendering stops with :class:`Reached`. Nothing past that first step
runs.

``TemplateProgram`` writes templates that compute such a name in one of many spellings and carry it through
jinja's value flows (sets, block sets, namespaces, dicts, lists and their mutators, macros, ``caller``, loops,
``cycler``, ``joiner``, filters, ``str.format`` ...) to a lookup. A template the probe shows walking must never
scan below high. Used by tests/corpus/test_template_oracle.py and bench/fuzz_templates.py.
"""

from __future__ import annotations

import random
import string
from typing import Any

from loopwarden.checks.models.chat_template import _WALK_ATTRS

NAMES = ("__class__", "__init__", "__doc__", "__add__", "__len__")
"""Internal attribute names every str has (the first step of a walk from ``''``)."""


class Reached(Exception):
    """Rendering would have read an internal attribute (the exception's argument names it)."""


def opens_walk(name: object) -> bool:
    return isinstance(name, str) and (name.startswith("_") or name in _WALK_ATTRS)


def probe() -> Any:
    """A plain jinja2 Environment that stops at the first internal attribute it would read."""
    import jinja2
    import jinja2.runtime

    class Probe(jinja2.Environment):
        def getattr(self, obj: Any, attribute: str) -> Any:
            if opens_walk(attribute) and hasattr(obj, attribute):
                raise Reached(attribute)
            return super().getattr(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            try:
                return obj[argument]
            except (AttributeError, TypeError, LookupError):
                if opens_walk(argument) and hasattr(obj, argument):
                    raise Reached(argument) from None
            return super().getitem(obj, argument)

    if not getattr(jinja2.runtime.Context.call, "_probe", False):
        plain_call = jinja2.runtime.Context.call

        def call(self: Any, obj: Any, *args: Any, **kwargs: Any) -> Any:
            owner = getattr(obj, "__self__", None)
            if isinstance(owner, str) and getattr(obj, "__name__", "") in ("format", "format_map"):
                for _, field, _, _ in string.Formatter().parse(owner):
                    parts = (field or "").replace("[", ".").replace("]", "").split(".")[1:]
                    if any(opens_walk(p) for p in parts):
                        raise Reached(field)
            return plain_call(self, obj, *args, **kwargs)

        call._probe = True  # type: ignore[attr-defined]
        jinja2.runtime.Context.call = call  # type: ignore[method-assign]
    return Probe()


def reaches(env: Any, template: str) -> bool | None:
    """True when rendering walks, False when it renders without walking, None when it fails otherwise."""
    try:
        env.from_string(template).render(messages=[{"role": "user", "content": "hi"}])
    except Reached:
        return True
    except Exception:
        return None
    return False


class TemplateProgram:
    """One generated template: preludes (statements) that carry a computed name to a sink (a lookup)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.pre: list[str] = []
        self.n = 0

    def fresh(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def spelled(self, s: str) -> str:
        """An expression that computes ``s`` without writing it whole."""
        r = self.rng
        k = r.randrange(1, len(s))
        return r.choice(
            [
                repr(s),
                f"({s[:k]!r} ~ {s[k:]!r})",
                f"{s[::-1]!r}[::-1]",
                f"({s.upper()!r}|lower)",
                f"({list(s)!r}|join)",
                f"('%s'|format({s!r}))",
                f"('{{}}'.format({s!r}))",
                f"({s.replace('_', '-')!r}|replace('-', '_'))",
                f"({'x' + s!r}[1:])",
                f"('_' * 2 ~ {s.strip('_')!r} ~ '_' * 2)" if s.startswith("__") else repr(s),
                f"((' ' ~ {s!r} ~ ' ')|trim)",
                f"({s!r}|string)",
                f"('%c%c%s%c%c' % (95, 95, {s.strip('_')!r}, 95, 95))" if s.startswith("__") else repr(s),
                f"({s.replace('_', '&#95;')!r}|safe).unescape()",
                f"(dict({{{s!r}: 1}})|first)",
                f"({s.center(len(s) + 2, 'x')!r}.strip('x'))",
                f"(('X' ~ {s!r})|replace('X', ''))",
                f"({s!r}.swapcase().swapcase())",
                f"({s!r}|title|lower)",
                f"(({s!r} ~ 'x')[:-1])",
                f"({(s + '|x')!r}.split('|')[0])",
                f"({(s + '|x')!r}.partition('|')[0])",
                f"({(s + 'xx')!r}.rstrip('x'))",
                f"({s!r}.ljust(0).zfill(0))",
                f"({s!r}|center({len(s) + 4})|trim)",
                f"({s!r}|wordwrap(1000))",
                f"({s!r}|truncate({len(s) + 10}))",
                f"('{{:s}}'.format({s!r}))",
                f"('{{0}}{{1}}'.format({s[:k]!r}, {s[k:]!r}))",
                f"({s!r}|list|join)",
                f"({s!r}|reverse|reverse|join)",
            ]
        )

    def carried(self, e: str, depth: int) -> str:
        """``e`` carried through ``depth`` of jinja's value flows."""
        for _ in range(depth):
            e = self.flow(e)
        return e

    def flow(self, e: str) -> str:
        r = self.rng
        v = self.fresh("v")
        m = self.fresh("m")
        pre = self.pre.append
        kind = r.randrange(35)
        if kind == 0:
            pre(f"{{% set {v} = {e} %}}")
            return v
        if kind == 1:
            pre(f"{{% set {v} %}}{{{{ {e} }}}}{{% endset %}}")
            return v
        if kind == 2:
            pre(
                r.choice(
                    [f"{{% set {v} = namespace(k={e}) %}}", f"{{% set {v} = namespace({{'k': {e}}}) %}}"]
                )
            )
            return r.choice([f"{v}.k", f"{v}['k']", f"({v}|attr('k'))"])
        if kind == 3:
            pre(f"{{% set {v} = namespace(k='') %}}{{% set {v}.k = {e} %}}")
            return f"{v}.k"
        if kind == 4:
            return r.choice(
                [
                    f"{{'k': {e}}}['k']",
                    f"{{'k': {e}}}.k",
                    f"dict(k={e}).k",
                    f"dict({{'k': {e}}})['k']",
                    f"{{'k': {e}}}.get('k')",
                    f"({{'k': {e}}}|dictsort|first)[1]",
                    f"({{{e}: 1}}|first)",
                    f"({{'k': {e}}}.values()|list)[0]",
                    f"({{'k': {e}}}|items|list)[0][1]",
                    f"dict([('k', {e})]).k",
                    f"({{'k': {e}}}.items()|first)[1]",
                    f"{{'a': {{'b': {e}}}}}.a.b",
                ]
            )
        if kind == 5:
            return r.choice(
                [
                    f"[{e}][0]",
                    f"([{e}]|first)",
                    f"([{e}]|last)",
                    f"([{e}]|list)[0]",
                    f"([{e}]|join)",
                    f"([{e}]|reverse|list)[0]",
                    f"([{e}]|min)",
                    f"([{e}]|sort)[0]",
                    f"([{e}]|unique|list)[0]",
                    f"([{e}]|batch(1)|first)[0]",
                    f"({e},)[0]",
                    f"([{e}]|random)",
                    f"([{e}] + [])[0]",
                    f"([{e}]|slice(1)|first)[0]",
                    f"([{e}]|select|first)",
                    f"([{e}]|map('string')|first)",
                    f"([{e}]|reject('none')|first)",
                    f"([[{e}]]|sum(start=[]))[0]",
                    f"(({e}, 'y')|first)",
                    f"([{e}]|groupby('upper')|first)[1][0]",
                ]
            )
        if kind == 6:
            meth, out = r.choice(
                [
                    (f"append({e})", f"{v}[0]"),
                    (f"extend([{e}])", f"({v}|first)"),
                    (f"insert(0, {e})", f"{v}[0]"),
                    (f"append({e})", f"{v}.pop()"),
                ]
            )
            pre(f"{{% set {v} = [] %}}{{% set _ = {v}.{meth} %}}")
            return out
        if kind == 7:
            meth = r.choice(
                [f"update({{'k': {e}}})", f"update(k={e})", f"update([('k', {e})])", f"setdefault('k', {e})"]
            )
            pre(f"{{% set {v} = {{}} %}}{{% set _ = {v}.{meth} %}}")
            return r.choice([f"{v}.k", f"{v}['k']", f"{v}.get('k')"])
        if kind == 8:
            pre(f"{{% macro {m}(a) %}}{{{{ a }}}}{{% endmacro %}}")
            return r.choice([f"{m}({e})", f"{m}(a={e})", f"{m}(*[{e}])", f"{m}(**{{'a': {e}}})"])
        if kind == 9:
            pre(f"{{% macro {m}() %}}{{{{ caller() }}}}{{% endmacro %}}")
            pre(f"{{% set {v} %}}{{% call {m}() %}}{{{{ {e} }}}}{{% endcall %}}{{% endset %}}")
            return v
        if kind == 10:
            pre(f"{{% macro {m}() %}}{{{{ caller({e}) }}}}{{% endmacro %}}")
            pre(f"{{% set {v} %}}{{% call(x) {m}() %}}{{{{ x }}}}{{% endcall %}}{{% endset %}}")
            return v
        if kind == 11:
            pre(f"{{% set {v} = namespace(v='') %}}{{% for x in [{e}] %}}{{% set {v}.v = x %}}{{% endfor %}}")
            return f"{v}.v"
        if kind == 12:
            pre(
                f"{{% set {v} = namespace(v='') %}}{{% for k, x in {{'k': {e}}}.items() %}}{{% set {v}.v = x %}}"
                "{% endfor %}"
            )
            return f"{v}.v"
        if kind == 13:
            return r.choice(
                [
                    f"cycler({e}).current",
                    f"cycler({e}).next()",
                    f"cycler({e}).items[0]",
                    f"(cycler({e})|attr('current'))",
                    f"cycler({e})['current']",
                ]
            )
        if kind == 14:
            pre(f"{{% set {v} = joiner({e}) %}}{{% set _ = {v}() %}}")
            return f"{v}()"
        if kind == 15:
            return r.choice(
                [
                    f"({e}|string)",
                    f"({e}|trim)",
                    f"({e}|safe)",
                    f"({e}|default('x'))",
                    f"(nothing_here|default({e}))",
                    f"({e} if true else 'x')",
                    f"(false or {e})",
                    f"(true and {e})",
                    f"({e}|e|string)",
                    f"({e}|indent)",
                    f"({e}|striptags)",
                ]
            )
        if kind == 16:
            pre(f"{{% set a{v}, {v} = 'x', {e} %}}")
            return v
        if kind == 17:
            pre(
                f"{{% set {v} = namespace(v='') %}}{{% for _ in [1] %}}{{% set {v}.v = loop.cycle({e}) %}}"
                "{% endfor %}"
            )
            return f"{v}.v"
        if kind == 18:
            pre(f"{{% macro {m}(a) %}}{{{{ a }}}}{{% endmacro %}}")
            pre(r.choice([f"{{% set {v} = {{'f': {m}}} %}}", f"{{% set {v} = namespace(f={m}) %}}"]))
            return f"{v}.f({e})"
        if kind == 19:
            return r.choice(
                [
                    f"'{{}}'.format({e})",
                    f"('%s' % {e})",
                    f"('%s'|format({e}))",
                    f"''.join([{e}])",
                    f"'{{k}}'.format(k={e})",
                    f"('%(k)s' % {{'k': {e}}})",
                    f"'{{k}}'.format_map({{'k': {e}}})",
                ]
            )
        if kind == 20:
            pre(f"{{% macro {m}() %}}{{{{ varargs[0] }}}}{{% endmacro %}}")
            return f"{m}({e})"
        if kind == 21:
            pre(f"{{% macro {m}() %}}{{{{ kwargs.k }}}}{{% endmacro %}}")
            return f"{m}(k={e})"
        if kind == 22:
            pre(f"{{% set {v} = namespace(d={{}}) %}}{{% set _ = {v}.d.update(k={e}) %}}")
            return f"{v}.d.k"
        if kind == 23:
            pre(f"{{% set {v} = namespace(v='') %}}{{% with w = {e} %}}{{% set {v}.v = w %}}{{% endwith %}}")
            return f"{v}.v"
        if kind == 24:
            pre(f"{{% set {v} %}}{{% filter trim %}} {{{{ {e} }}}} {{% endfilter %}}{{% endset %}}")
            return v
        if kind == 25:
            pre(f"{{% set {v} | trim %}} {{{{ {e} }}}} {{% endset %}}")
            return v
        if kind == 26:
            pre(f"{{% set {v} = [{e}] %}}{{% set {v}b = {v} %}}")
            return f"{v}b[0]"
        if kind == 27:
            pre(
                f"{{% set {v} = namespace(v='') %}}{{% for x in ['a', {e}] %}}{{% if loop.last %}}"
                f"{{% set {v}.v = loop.previtem and x %}}{{% endif %}}{{% endfor %}}"
            )
            return f"{v}.v"
        if kind == 30:
            pre(f"{{% set _ = messages.append({{'role': 'x', 'content': {e}}}) %}}")
            return r.choice(
                [
                    "messages[-1]['content']",
                    "(messages|last).content",
                    "(messages|map(attribute='content')|list|last)",
                ]
            )
        if kind == 31:
            pre(f"{{% set _ = messages[0].update({{'content': {e}}}) %}}")
            return r.choice(["messages[0]['content']", "messages[0].content", "(messages|first).content"])
        if kind == 32:
            pre(
                f"{{% set {v} = namespace(v='') %}}{{% if messages %}}{{% set {v}.v = {e} %}}"
                f"{{% else %}}{{% set {v}.v = 'x' %}}{{% endif %}}"
            )
            return f"{v}.v"
        if kind == 33:
            pre(
                f"{{% set {v} = namespace(v='') %}}{{% for x in [[{e}]] recursive %}}{{% if x is string %}}"
                f"{{% set {v}.v = x %}}{{% else %}}{{{{ loop(x) }}}}{{% endif %}}{{% endfor %}}"
            )
            return f"{v}.v"
        if kind == 34:
            return r.choice(
                [
                    f"({{'k': {e}}}|dictsort|map('last')|first)",
                    f"([{e}]|map('trim')|first)",
                    f"([{e}, 'b']|sort(reverse=true)|last if false else [{e}]|first)",
                ]
            )
        if kind == 28:
            pre(f"{{% macro {m}(a) %}}{{{{ a }}}}{{% endmacro %}}{{% set {v} = cycler({m}) %}}")
            return f"{v}.current({e})"
        pre(f"{{% set {v} = cycler({e}) %}}{{% set {v}f = {v}.next %}}")
        return f"{v}f()"

    def template(self) -> str:
        name = self.rng.choice(NAMES)
        e = self.carried(self.spelled(name), self.rng.randrange(1, 5))
        sink = self.rng.choice(
            [
                f"''[{e}]",
                f"''|attr({e})",
                f"['']|map(attribute={e})|list",
                f"('{{0.' ~ {e} ~ '}}').format('')",
                f"['']|sort(attribute={e})",
                f"['']|selectattr({e})|list",
                f"['']|groupby({e})",
                f"messages[0]['content'][{e}]",
            ]
        )
        return "".join(self.pre) + "{{ " + sink + " }}"
