"""Round 18 of the internal red team: values that reach an attribute walk through jinja's own helper objects.

A plain ``jinja2.Environment`` (llama-cpp-python before the CVE-2024-34359 fix) looks an item up by falling back to
``getattr``, so ``''[name]`` with ``name == '__class__'`` is ``str``. Before this round the analysis knew what a
``cycler(...)`` holds but not what its ``current`` attribute, its ``items`` tuple or a ``c['next']`` method read
as a value give back, took a ``joiner``'s separator for text it could not follow only where the joiner is called
(``j.sep`` read nothing), and took only the keys of a mapping passed by position to ``dict(...)`` or
``namespace(...)``, not its values. Fourteen of the cases below (the chain to ``os.popen`` among them) scanned
clean; the others were reported only as names the analysis could not follow (high), and are now computed
(critical); the kept callables are described below. Each reaches ``str`` (or ``os.popen``) when jinja2 renders
it, which the tests show with harmless output.
"""

from __future__ import annotations

import json

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext
from loopwarden.checks.models.chat_template import check_template
from loopwarden.domain import Location, Severity

# Each template walks from a string to its class through a name held by one of jinja's helper objects.
_THROUGH_HELPERS = {
    "cycler-current": "{% set c = cycler('__class__') %}{{ ''[c.current] }}",
    "cycler-current-chain": (
        "{{ ''[cycler('__class__').current][cycler('__base__').current][cycler('__subclasses__').current]()"
        "|length > 10 }}"
    ),
    "cycler-items-index": "{% set c = cycler('__class__') %}{{ ''[c.items[0]] }}",
    "cycler-items-filter": "{% set c = cycler('__class__') %}{{ ''[c.items|first] }}",
    "cycler-items-list": "{% set c = cycler('__class__') %}{{ ''[(c.items|list)[0]] }}",
    "cycler-item-lookup": "{% set c = cycler('__class__') %}{{ ''[c['current']] }}",
    "cycler-attr-filter": "{% set c = cycler('__class__') %}{{ ''[c|attr('current')] }}",
    "cycler-attr-of-attr": "{% set c = cycler('__class__') %}{{ ''|attr(c.current) }}",
    "cycler-next-as-value": "{% set c = cycler('__class__') %}{% set f = c.next %}{{ ''[f()] }}",
    "cycler-next-by-item": "{% set c = cycler('__class__') %}{% set f = c['next'] %}{{ ''[f()] }}",
    "joiner-sep": "{% set j = joiner('__class__') %}{{ ''[j.sep] }}",
    "joiner-sep-keyword": "{% set j = joiner(sep='__class__') %}{{ ''[j['sep']] }}",
    "joiner-second-call": "{% set j = joiner('__class__') %}{{ j() }}{{ ''[j()] }}",
    "namespace-positional-dict": "{% set n = namespace({'k': '__class__'}) %}{{ ''[n.k] }}",
    "namespace-dict-call": "{% set n = namespace(dict(k='__class__')) %}{{ ''[n.k] }}",
    "namespace-pairs": "{% set n = namespace([('k', '__class__')]) %}{{ ''[n.k] }}",
    "dict-positional-dict": "{% set d = dict({'k': '__class__'}) %}{{ ''[d.k] }}",
    "dict-positional-values": "{{ ''[dict({'k': '__class__'}).values()|first] }}",
}

# A macro (or caller, joiner, cycler.next) kept in a dict, a namespace or a cycler and called through an attribute:
# its parameters were never bound to the arguments, so the name it walks with was unknown and unjudged. Five of
# these scanned clean; a dict filled by update() with pairs took the pairs, not their items, as values.
_KEPT_CALLABLES = {
    "update-pairs": "{% set d = {} %}{% set _ = d.update([('k', '__class__')]) %}{{ ''[d.k] }}",
    "macro-in-dict": "{% macro m(a) %}{{ ''[a] }}{% endmacro %}{% set d = {'f': m} %}{{ d.f('__class__') }}",
    "macro-in-namespace": (
        "{% macro m(a) %}{{ ''[a] }}{% endmacro %}{% set n = namespace(f=m) %}{{ n.f('__class__') }}"
    ),
    "macro-in-cycler": "{% macro m(a) %}{{ ''[a] }}{% endmacro %}{{ cycler(m).current('__class__') }}",
    "macro-from-cycler-next": "{% macro m(a) %}{{ ''[a] }}{% endmacro %}{{ cycler(m).next()('__class__') }}",
    "caller-in-namespace": (
        "{% macro m() %}{% set n = namespace(c=caller) %}{{ n.c('__class__') }}{% endmacro %}"
        "{% call(x) m() %}{{ ''[x] }}{% endcall %}"
    ),
    "joiner-in-namespace": (
        "{% set j = joiner('__class__') %}{% set n = namespace(j=j) %}{{ n.j() }}{{ ''[n.j()] }}"
    ),
    "cycler-next-in-namespace": (
        "{% set c = cycler('__class__') %}{% set n = namespace(f=c.next) %}{{ ''[n.f()] }}"
    ),
}
_THROUGH_HELPERS.update({f"kept-{k}": v for k, v in _KEPT_CALLABLES.items()})
# Markup's own text methods read as a value and called later: the attribute read nothing, so the call gave nothing.
_THROUGH_HELPERS["markup-unescape-as-value"] = (
    "{% set k = '&#95;&#95;class&#95;&#95;'|safe %}{% set f = k.unescape %}{{ ''[f()] }}"
)
_HIGH_ONLY = {"markup-unescape-as-value"}  # text the analysis does not compute: reported as high

# The full chain through cycler attributes: module globals of jinja's own helper, then os.popen.
_RCE = (
    "{% set c = cycler('__init__') %}{% set g = cycler('__globals__') %}"
    "{{ cycler('x')[c.current][g.current]['os'].popen('echo loopwarden-round18').read() }}"
)


def _worst(template: str) -> Severity | None:
    ctx = ScanContext("t", Limits(), None)
    check_template(template, ctx, Location("t"))
    assert not ctx.unverified, ctx.unverified
    return max((f.severity for f in ctx.findings), default=None)


@pytest.mark.parametrize("name", sorted(_THROUGH_HELPERS))
def test_helper_values_are_followed(name: str) -> None:
    # every name is computed exactly (a computed walk name is critical), or is text it cannot compute (high)
    want = Severity.HIGH if name in _HIGH_ONLY else Severity.CRITICAL
    assert _worst(_THROUGH_HELPERS[name]) is want


def test_helper_chain_to_popen_is_critical() -> None:
    assert _worst(_RCE) is Severity.CRITICAL


@pytest.mark.parametrize("name", sorted(_THROUGH_HELPERS))
def test_plain_jinja_reaches_the_class(name: str) -> None:
    jinja2 = pytest.importorskip("jinja2")
    out = jinja2.Environment().from_string(_THROUGH_HELPERS[name]).render(messages=[])
    assert "<class 'str'>" in out or out == "True", out


def test_plain_jinja_runs_a_command_through_cycler_attributes() -> None:
    jinja2 = pytest.importorskip("jinja2")
    assert jinja2.Environment().from_string(_RCE).render().strip() == "loopwarden-round18"


# Ordinary uses of the same helpers stay clean.
_BENIGN = [
    "{% set comma = joiner(', ') %}{% for m in messages %}{{ comma() }}{{ m.content }}{% endfor %}",
    "{% set j = joiner() %}{% for m in messages %}{{ j() }}{{ m.role }}{% endfor %}",
    "{% set row = cycler('odd', 'even') %}{% for m in messages %}<li class='{{ row.next() }}'>{{ m.content }}</li>"
    "{% endfor %}{{ row.current }}{{ row.items|length }}{% set _ = row.reset() %}",
    "{% for m in messages %}{{ loop.cycle('<a>', '<b>') }}{{ m.content }}{% endfor %}",
    "{% set ns = namespace({'system': none}) %}{% for m in messages %}{% if m.role == 'system' %}"
    "{% set ns.system = m.content %}{% endif %}{% endfor %}{{ ns.system or '' }}",
    "{% set roles = dict({'user': 'User', 'assistant': 'Assistant'}) %}{% for m in messages %}"
    "{{ roles[m.role] }}: {{ m.content }}\n{% endfor %}",
    "{% set d = dict([('user', '<|user|>'), ('assistant', '<|assistant|>')]) %}{% for m in messages %}"
    "{{ d[m.role] }}{{ m.content }}{% endfor %}",
    "{% set key = cycler('content').current %}{% for m in messages %}{{ m[key] }}{% endfor %}",
    "{% set key = dict({'k': 'content'}).k %}{% for m in messages %}{{ m[key] }}{% endfor %}",
    "{% macro render(m) %}{{ m.role }}: {{ m.content }}{% endmacro %}{% set r = {'f': render} %}"
    "{% for m in messages %}{{ r.f(m) }}{% endfor %}",
    "{% set ns = namespace(out=[]) %}{% for m in messages %}{% set _ = ns.out.append(m.content) %}{% endfor %}"
    "{{ ns.out|join(', ') }}",
    "{% set d = {} %}{% set _ = d.update([('user', 'U'), ('assistant', 'A')]) %}{% for m in messages %}"
    "{{ d[m.role] }}{{ m.content }}{% endfor %}",
]


@pytest.mark.parametrize("template", _BENIGN)
def test_ordinary_helper_use_is_clean(template: str) -> None:
    assert _worst(template) is None


def bench_cases() -> dict[str, dict[str, bytes]]:
    """The round's cases as model folders (a tokenizer_config.json carrying the template)."""

    def folder(template: str) -> dict[str, bytes]:
        config = {"tokenizer_class": "PreTrainedTokenizerFast", "chat_template": template}
        return {"tokenizer_config.json": json.dumps(config).encode()}

    return {
        "r18_template_cycler_current_popen": folder(_RCE),
        "r18_template_cycler_items": folder(_THROUGH_HELPERS["cycler-items-index"]),
        "r18_template_joiner_sep": folder(_THROUGH_HELPERS["joiner-sep"]),
        "r18_template_namespace_positional_dict": folder(_THROUGH_HELPERS["namespace-positional-dict"]),
        "r18_template_dict_positional_dict": folder(_THROUGH_HELPERS["dict-positional-dict"]),
        "r18_template_macro_in_namespace": folder(_KEPT_CALLABLES["macro-in-namespace"]),
        "r18_template_dict_update_pairs": folder(_KEPT_CALLABLES["update-pairs"]),
    }
