"""Chat-template injection: names the template can make into internal ones, however they reach a name position.

Rendered by a plain ``jinja2.Environment`` (CVE-2024-34359), ``x[key]`` falls back to ``getattr(x, key)``, so
every key, attribute-taking filter argument and str.format field path the template shapes itself is an
attribute walk. Each case below ran ``id`` or dumped ``__globals__`` under a plain Environment in a red-team
review while the earlier analysis reported it clean; the benign cases are what real templates do.
"""

from __future__ import annotations

import time

import pytest

from loopwarden.checks.interface import Limits, ResourceLimitExceeded
from loopwarden.checks.models._base import ScanContext
from loopwarden.checks.models.chat_template import check_template
from loopwarden.domain import Finding, Location, Severity


def _findings(template: str, key: str = "chat_template") -> list[Finding]:
    ctx = ScanContext("t", Limits(), None)
    check_template(template, ctx, Location("t"), key=key)
    assert not ctx.unverified, ctx.unverified
    return ctx.findings


def _worst(template: str) -> Severity | None:
    found = _findings(template)
    return max((f.severity for f in found), default=None)


# names carried by values the template makes: each is a way a string reaches a key without being spelled
CARRIERS = {
    "macro_arguments": (
        "{% macro x(u, a, b, c, d) %}{{ namespace[u ~ a ~ u][u ~ b ~ u][c][d]('id').read() }}{% endmacro %}"
        "{{ x('__', 'init', 'globals', 'os', 'popen') }}"
    ),
    "macro_keyword_arguments": (
        "{% macro x(a, u='') %}{{ namespace[u ~ a ~ u] }}{% endmacro %}{{ x(u='__', a='init') }}"
    ),
    "macro_through_a_variable": (
        "{% macro m(u) %}{{ namespace[u ~ 'init' ~ u] }}{% endmacro %}{% set f = m %}{{ f('__') }}"
    ),
    "undefined_default": (
        "{% set u = zz|default('__') %}{% set g = zz|default('globals') %}{{ namespace[u ~ 'init' ~ u][u ~ g ~ u] }}"
    ),
    "macro_body": (
        "{% macro i() %}__init__{% endmacro %}{% macro g() %}__globals__{% endmacro %}"
        "{{ namespace[i()|string][g()|string] }}"
    ),
    "macro_body_on_its_own_lines": "{% macro i() %}\n__init__\n{% endmacro %}{{ namespace[i()] }}",
    "with_block": (
        "{% with u = '__', g = 'glob' ~ 'als' %}{{ namespace[u ~ 'init' ~ u][u ~ g ~ u] }}{% endwith %}"
    ),
    "varargs": (
        "{% macro x() %}{{ namespace[varargs[0] ~ 'init' ~ varargs[0]][varargs[0] ~ varargs[1] ~ varargs[0]] }}"
        "{% endmacro %}{{ x('__', 'globals') }}"
    ),
    "kwargs_values": "{% macro m() %}{{ namespace[kwargs.u ~ 'init' ~ kwargs.u] }}{% endmacro %}{{ m(u='__') }}",
    "kwargs_names": "{% macro m() %}{% for k in kwargs %}{{ x[k] }}{% endfor %}{% endmacro %}{{ m(mro=1) }}",
    "block_set_after_context_output": "{% set n %}{{ zz }}__init__{% endset %}{{ namespace[n] }}",
    "block_set_with_a_branch": "{% set n %}{% if true %}__init__{% endif %}{% endset %}{{ namespace[n] }}",
    "block_set_filtered": "{% set n | replace('!', '') %}_!_init_!_{% endset %}{{ namespace[n] }}",
    # a chain of filters on a block: each applies in turn (only the last one was, to the bare body)
    "block_set_filter_chain": "{% set n | replace('x', '_') | lower %}xxinitxx{% endset %}{{ namespace[n] }}",
    "block_set_filter_chain_of_three": (
        "{% set n | replace('x', '_') | replace('y', '_') | trim %}xyinityx{% endset %}{{ namespace[n] }}"
    ),
    "filter_block_chain_into_a_macro": (
        "{% macro get(o, n) %}{{ o[n] }}{% endmacro %}"
        "{% set n %}{% filter replace('x', '_') | string %}xxinitxx{% endfilter %}{% endset %}{{ get(namespace, n) }}"
    ),
    "filter_block_into_a_macro": (
        "{% macro get(o, n) %}{{ o[n] }}{% endmacro %}"
        "{% set n %}{% filter replace('!', '') %}_!_init_!_{% endfilter %}{% endset %}{{ get(namespace, n) }}"
    ),
    "call_block_body": (
        "{% macro pick(o) %}{{ o[caller()] }}{% endmacro %}{% call pick(namespace) %}__init__{% endcall %}"
    ),
    "caller_arguments": (
        "{% macro w(o) %}{{ caller(o) }}{% endmacro %}{% macro get(o, u, n) %}{{ o[u ~ n ~ u] }}{% endmacro %}"
        "{% call(o) w(namespace) %}{{ get(o, '__', 'init') }}{% endcall %}"
    ),
    "caller_argument_text": (
        "{% macro m() %}{{ caller('__') }}{% endmacro %}"
        "{% call(u) m() %}{{ namespace[u ~ 'init' ~ u] }}{% endcall %}"
    ),
    "namespace_attribute": "{% set ns = namespace(a='__') %}{{ namespace[ns.a ~ 'init' ~ ns.a] }}",
    "namespace_assignment": "{% set ns = namespace() %}{% set ns.k = '__init__' %}{{ namespace[ns.k] }}",
    "list_appended_to": "{% set l = [] %}{% do l.append('__init__') %}{{ namespace[l[0]] }}",
    "dict_updated": "{% set d = {} %}{% do d.update({'k': '__init__'}) %}{{ namespace[d.k] }}",
    "dict_keys_iterated": "{% for k in {'__init__': 1} %}{{ namespace[k] }}{% endfor %}",
    "dict_items_unpacked": "{% for k, v in {'__init__': 1}.items() %}{{ namespace[k] }}{% endfor %}",
    "dict_call_value": "{% set t = dict(a='__init__') %}{{ namespace[t.a] }}",
    "recursive_loop_call": (
        "{% for x in [1] recursive %}{{ namespace[x] }}{{ loop(['__init__']) if x == 1 }}{% endfor %}"
    ),
    "loop_cycle": "{% for x in [1] %}{{ namespace[loop.cycle('__init__', '__init__')] }}{% endfor %}",
    "first_of_a_list": "{{ namespace[['__init__']|last] }}",
    # values passed by unpacking a template dict (**d passes its values, not only its keys)
    "namespace_unpacked_keywords": "{% set ns = namespace(**{'k': 'gi_frame'}) %}{{ x[ns.k] }}",
    "macro_unpacked_keywords": "{% macro m(a) %}{{ x[a] }}{% endmacro %}{{ m(**{'a': '_module'}) }}",
    "macro_kwargs_unpacked": "{% macro m() %}{{ x[kwargs.a] }}{% endmacro %}{{ m(**{'a': 'mro'}) }}",
    "dict_call_unpacked": "{% set d = dict(**{'k': '__init__'}) %}{{ namespace[d.k] }}",
    "update_unpacked": "{% set d = {} %}{% do d.update(**{'k': 'gi_frame'}) %}{{ x[d.k] }}",
    # values carried by filters that pair or pad (the value of a dictsort pair, batch/slice's fill_with)
    "dictsort_value": "{{ x[{'k': 'gi_frame'}|dictsort|first|last] }}",
    "dictsort_value_unpacked": "{% for k, v in {'k': '__init__'}|dictsort %}{{ namespace[v] }}{% endfor %}",
    "batch_fill_keyword": "{{ x[['a']|batch(2, fill_with='gi_frame')|first|last] }}",
    "slice_fill_keyword": "{{ x[['a', 'b']|slice(3, fill_with='_module')|last|last] }}",
    "printf_tuple": "{{ namespace['%s%sinit%s%s' % ('_', '_', '_', '_')] }}",
    "str_join_method": "{{ namespace['_'.join(['', '', 'init', '', ''])] }}",
    "format_method_on_a_concatenation": "{{ namespace[('{}' ~ 'init{}').format('__', '__')] }}",
    "case_filter": "{{ namespace['__INIT__'|lower] }}",
    "partly_computed_filter_name": (
        "{% macro x(t, u) %}{{ [namespace]|map('at' ~ t, u ~ 'init' ~ u)|first }}{% endmacro %}{{ x('tr', '__') }}"
    ),
    "groupby_argument": (
        "{% macro x(u) %}{% for g in [namespace]|groupby(u ~ 'init' ~ u) %}{{ g.grouper }}{% endfor %}"
        "{% endmacro %}{{ x('__') }}"
    ),
    "format_field_concatenated": (
        "{% macro x(u) %}{{ ('{0.' ~ u ~ 'init' ~ u ~ '.' ~ u ~ 'globals' ~ u ~ '[os]}').format(namespace) }}"
        "{% endmacro %}{{ x('__') }}"
    ),
    "format_method_stored": "{% set f = ('{0.' ~ '_' ~ '_init__}').format %}{{ f(namespace) }}",
    "format_method_by_item": "{{ '{0.__init__}'['format'](namespace) }}",
    "format_map": "{{ '{a.__init__}'.format_map({'a': namespace}) }}",
}


@pytest.mark.parametrize("template", CARRIERS.values(), ids=CARRIERS.keys())
def test_a_name_carried_by_a_template_value_is_critical(template: str) -> None:
    assert _worst(template) is Severity.CRITICAL, _findings(template)


# values the template shapes in ways not computed: reported (HIGH), never clean
SHAPED = {
    "boolean_text_replaced": (
        "{% set u = (messages is defined)|string|replace('True', '__') %}{{ namespace[u ~ 'init' ~ u] }}"
    ),
    "context_text_replaced": "{{ namespace[messages[0].role|replace('system', '__init__')] }}",
    "joined_variable_list": "{% set p = ['__', 'init', '__'] %}{{ namespace[p|join] }}",
    "split_of_template_text": "{{ namespace['__init__'.split(',')[0]] }}",
    "grown_in_a_loop": (
        "{% set ns = namespace(k='') %}{% for r in ['_', '_'] %}{% set ns.k = ns.k ~ r %}{% endfor %}"
        "{{ namespace[ns.k ~ 'init' ~ ns.k] }}"
    ),
    "recursive_macro": "{% macro f(x) %}{{ f(x ~ '_') }}{{ namespace[x] }}{% endmacro %}{{ f('a') }}",
    "context_key_on_a_template_object": "{{ namespace[messages[-1].content] }}",
    "macro_argument_names": "{% macro m(__init__) %}{% endmacro %}{{ namespace[m.arguments[0]] }}",
}


@pytest.mark.parametrize("template", SHAPED.values(), ids=SHAPED.keys())
def test_a_name_the_template_shapes_without_a_computable_value_is_reported(template: str) -> None:
    assert (_worst(template) or Severity.INFO) >= Severity.HIGH, _findings(template)


# attribute names read through filters and format fields: every argument that names an attribute
ATTRIBUTE_READS = [
    "{{ [messages|map(attribute='role')]|join('', 'gi_frame.f_builtins') }}",
    "{{ x|join(attribute='__class__') }}",
    "{{ x|map('join', '', '__class__')|list }}",
    "{{ x|map('selectattr', '__class__')|list }}",
    "{{ x|sort(attribute='__class__') }}",
    "{{ x|unique(attribute='_a')|list }}",
    "{{ x|min(false, '_a') }}{{ x|max(attribute='_a') }}",
    "{{ x|map(attribute='0.__class__')|list }}",
    "{% filter attr('__class__') %}x{% endfilter %}",
    "{% set gen = messages|map(attribute='role') %}{{ '{0.gi_frame.f_builtins[open]}'.format(gen) }}",
    "{{ '{0.gi_frame.f_globals}'.format(x) }}{{ '{0:{1.tb_frame}}'.format(x, y) }}",
    "{{ '{0.cr_frame.f_back.f_locals}'.format(x) }}",
    "{{ x['gi_frame'] }}",
    "{{ x.ag_frame }}",
    "{{ x.mro }}",
]


@pytest.mark.parametrize("template", ATTRIBUTE_READS)
def test_walk_attributes_named_in_filters_and_format_fields_are_critical(template: str) -> None:
    assert _worst(template) is Severity.CRITICAL, _findings(template)


BENIGN = [
    # a literal key or attribute that does not open a walk (system, os, popen are reachable only after one)
    "{% set role_tokens = {'system': '<|system|>', 'user': '<|user|>'} %}{{ role_tokens['system'] }}"
    "{% for m in messages %}{{ role_tokens[m['role']] ~ m['content'] }}{% endfor %}",
    "{% if messages[0].system is defined %}{{ messages[0].system }}{% endif %}",
    "{% set counts = {'system': 0, 'user': 0} %}{% for r in ['system', 'user'] %}{{ counts[r] }}{% endfor %}",
    # numbers as keys: namespace counters, loop indexes, their text
    "{% set ns = namespace(i=0) %}{% for m in messages %}{% set ns.i = ns.i + 1 %}{% endfor %}"
    "{{ messages[ns.i - 1].content }}",
    "{% set ns = namespace(last=0) %}{% for m in messages %}{% if m.role == 'user' %}"
    "{% set ns.last = loop.index0 %}{% endif %}{% endfor %}{{ messages[ns.last]['content'] }}",
    "{% set docs = {'0': 'zero'} %}{% for i in range(2) %}{{ docs[i|string] }}{% endfor %}",
    # a key set to one of two literals, or chosen by a condition
    "{% set key = 'content' %}{% if use_text %}{% set key = 'text' %}{% endif %}{% for m in messages %}"
    "{{ m[key] }}{% endfor %}",
    "{% for m in messages %}{{ m['reasoning_content' if m.reasoning_content is defined else 'content'] }}"
    "{% endfor %}",
    "{% set field = 'role' %}{{ messages|selectattr(field, 'equalto', 'user')|list|length }}",
    # text that is only output, however it looks
    "{{ '<|im_start|>system\\n__Important__: answer briefly.<|im_end|>\\n' }}",
    "{% for tool in tools %}{{ 'class ' + tool.name + ':\\n    def __init__(self, **kwargs):\\n        pass\\n' }}"
    "{% endfor %}",
    "{{ '{0} says {1}'.format(message.role, message.content) }}",
    # context data as a key: one attribute at most (a chain of such names, or context data as a format string,
    # is a walk the chat's messages steer: test_redteam_round10_templates)
    "{% for m in messages %}{{ m[m.role] }}{{ '{0}: {1}'.format(m.role, m.content) }}{% endfor %}",
    "{{ messages|map(attribute='content')|join('\\n') }}{{ messages|sort(attribute='role')|first }}",
]


@pytest.mark.parametrize("template", BENIGN)
def test_what_real_templates_do_is_clean(template: str) -> None:
    assert _findings(template) == []


# the constructs of widely used templates that the value tracking has to follow without a finding
_JSON_TO_PYTHON_TYPE = """{%- macro json_to_python_type(json_spec) %}
{%- set basic_type_map = {"string": "str", "number": "float", "integer": "int", "boolean": "bool"} %}
{%- if basic_type_map[json_spec.type] is defined %}{{- basic_type_map[json_spec.type] }}
{%- elif json_spec.type == "array" %}{{- "list[" + json_to_python_type(json_spec|items) + "]" }}
{%- elif json_spec.type == "object" and json_spec.additionalProperties is defined %}
{{- "dict[str, " + json_to_python_type(json_spec.additionalProperties) + "]" }}
{%- elif json_spec.type is iterable %}{{- "Union[" }}
{%- for t in json_spec.type %}{{- json_to_python_type({"type": t}) }}{% if not loop.last %},{% endif %}{% endfor %}
{{- "]" }}{%- else %}{{- "Any" }}{%- endif %}
{%- endmacro %}
{%- for tool in tools %}{%- if tool.function is defined %}{%- set tool = tool.function %}{%- endif %}
{%- for param_name, param_fields in tool.parameters.properties|items %}
{{- param_name + ": " + json_to_python_type(param_fields) }}{%- endfor %}
{{- " -> " + json_to_python_type(tool.return) if tool.return is defined }}{%- endfor %}"""

_THINKING = """{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}
{%- if ns.multi_step_tool and message.role == "user" and not message.content.startswith('<tool_response>') %}
{%- set ns.multi_step_tool = false %}{%- set ns.last_query_index = index %}{%- endif %}{%- endfor %}
{%- for message in messages %}{%- set content = message.content if message.content is string else '' %}
{%- set reasoning_content = '' %}
{%- if message.reasoning_content is string %}{%- set reasoning_content = message.reasoning_content %}
{%- elif '</think>' in content %}
{%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}
{%- if loop.index0 > ns.last_query_index %}{{- '<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>' }}
{%- endif %}{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}
{%- if message.tool_calls %}{%- set tool_call = message.tool_calls[0].function %}
{{- '{"name": "' + tool_call.name + '", "arguments": ' + tool_call.arguments|tojson + '}' }}{%- endif %}
{%- endfor %}"""

_ROLE_INDICATORS = """{%- set role_indicators = {'user': '[|user|]\\n', 'assistant': '[|assistant|]\\n',
'system': '[|system|]\\n', 'tool': '[|tool|]\\n'} %}{%- set end_of_turn = '[|endofturn|]\\n' %}
{%- if messages[0].role != 'system' %}{{- role_indicators['system'] }}{{- end_of_turn }}{%- endif %}
{%- for i in range(messages|length) %}{%- set msg = messages[i] %}
{{- role_indicators[msg.role] }}{{- msg.content }}{{- end_of_turn }}{%- endfor %}
{%- if add_generation_prompt %}{{- role_indicators['assistant'] }}{%- endif %}"""

_DOCUMENTS = """{%- macro document_turn(documents) -%}
{%- for document in documents -%}Document: {{ loop.index0 }}
{% for key, value in document.items() %}{{ key }}: {{ value }}
{% endfor %}{%- endfor -%}{%- endmacro -%}
{%- set docs = {} %}{%- for d in documents %}{%- set _ = docs.update({(loop.index0|string): d}) %}{%- endfor %}
{{- document_turn(documents) }}{%- for i in range(documents|length) %}{{ docs[i|string] }}{%- endfor %}"""


@pytest.mark.parametrize(
    "template",
    [_JSON_TO_PYTHON_TYPE, _THINKING, _ROLE_INDICATORS, _DOCUMENTS],
    ids=["recursive_type_macro", "thinking_split", "role_indicators", "documents"],
)
def test_real_template_constructs_are_clean(template: str) -> None:
    assert _findings(template) == []


# ------------------------------------------------------------------------------------------------- resources


def test_a_value_that_doubles_past_the_bound_is_not_computed_and_errs_towards_a_finding() -> None:
    """Each set multiplies the string by four: computing it would need gigabytes. Past the bound the value is
    template-made text the analysis cannot follow, so used as a key it is reported, never clean."""
    chain = "{% set v0 = 'a' * 4096 %}" + "".join(
        f"{{% set v{i} = v{i - 1} ~ v{i - 1} ~ v{i - 1} ~ v{i - 1} %}}" for i in range(1, 14)
    )
    assert _findings(chain + "{{ v13 }}" * 50) == []
    assert _worst(chain + "{{ namespace[v13] }}") is Severity.HIGH


def test_many_uses_of_a_large_value_stay_bounded() -> None:
    """Three thousand concatenations of a large value (computed each time, the analysis took minutes)."""
    template = "{% set a = 'x' * 4096 %}{% set b = a ~ a ~ a ~ a %}" + "{{ b ~ 'x' }}" * 3000
    assert _findings(template) == []


def test_the_analysis_keeps_to_the_scan_deadline() -> None:
    ctx = ScanContext("t", Limits(max_seconds=1.0), None)
    ctx.started = time.monotonic() - 10
    with pytest.raises(ResourceLimitExceeded):
        check_template("{{ messages[0] }}{# deadline #}", ctx, Location("t"))


def test_deeply_nested_expressions_do_not_exhaust_the_stack() -> None:
    adds = "{{ " + " + ".join(["'a'"] * 3000) + " }}"
    subscripts = "{{ x" + "[0]" * 3000 + " }}"
    for template in (adds, subscripts):
        ctx = ScanContext("t", Limits(), None)
        check_template(template, ctx, Location("t"))
        assert not ctx.findings


def test_a_number_literal_past_pythons_digit_limit_is_unverified() -> None:
    ctx = ScanContext("t", Limits(), None)
    check_template("{{ " + "1" * 5000 + " }}", ctx, Location("t"))
    assert ctx.unverified
    assert not ctx.findings


@pytest.mark.parametrize(
    "template",
    ["{{ x['__\\ud800'] }}", "{{ x['_\\udfff\\x00\\n'] }}", "{{ '{0.__\\ud800}'.format(x) }}"],
)
def test_names_in_messages_are_always_valid_utf8(template: str) -> None:
    found = _findings(template, key="chat_template.\udc80")
    assert found
    for f in found:
        f.message.encode("utf-8")
        str(f.evidence["template_key"]).encode("utf-8")


@pytest.mark.parametrize(
    "template",
    [
        '{% set s = "__NOT_A_NUMBER__" %}{% for m in messages %}{{ m.content }}{% endfor %}',
        '{% for m in messages %}{% if m.content == "__end__" %}{{ "stop" }}{% endif %}{% endfor %}',
        '{{ messages[0].name | default("__none__") }}',
    ],
)
def test_dunder_shaped_text_that_is_no_python_name_is_clean(template: str) -> None:
    """Marker strings shaped like dunders but not Python's own special names, only printed or compared."""
    assert _worst(template) is None, _findings(template)


@pytest.mark.parametrize(
    "template",
    [
        '{{ "__init__" }}',
        '{% for m in messages %}{{ m.content | replace("__", "") }}{{ "__init__" }}{% endfor %}',
        "{% set marker = '__' ~ 'class' ~ '__' %}{{ marker }}{{ marker|upper }}{{ marker|length }}",
        "{% for m in messages %}{% if m.content == '__globals__' or '__import__' in m.content %}x{% endif %}"
        "{{ m.content.split('__init__')|first }}{{ m.get('__name__', '') }}{% endfor %}",
        "{% macro name() %}__class__{% endmacro %}{{ name() }}{{ '%s' % name() }}",
        "{{ messages[0].name|default('__init__') }}{{ ['__mro__', '__subclasses__']|join(', ') }}",
        "{{ '{}'.format('__builtins__') }}{{ {'__dict__': 1}|tojson }}{{ 'x'|replace('x', '__init__') }}",
    ],
)
def test_a_python_name_that_is_only_output_or_compared_is_clean(template: str) -> None:
    """A string reaches Python internals only as a name (attribute, key, filter argument, format field): what
    is printed or compared, however it spells a special name, reaches nothing."""
    assert _findings(template) == []


@pytest.mark.parametrize(
    "template",
    [
        "{% set marker = '__' ~ 'init' ~ '__' %}{{ marker }}{{ namespace[marker] }}",
        "{% macro name() %}__init__{% endmacro %}{{ name() }}{{ namespace|attr(name()|trim) }}",
        "{% set n = messages[0].name|default('__init__') %}{{ n }}{{ namespace[n] }}",
        "{% set l = ['__mro__'] %}{{ l|join(', ') }}{{ x|map(attribute=l|first)|list }}",
        "{% set k = 'x'|replace('x', '__init__') %}{{ k }}{{ ('{0.' ~ k ~ '}').format(namespace) }}",
    ],
)
def test_the_same_strings_used_as_names_are_critical(template: str) -> None:
    assert _worst(template) is Severity.CRITICAL, _findings(template)


# ---------------------------------------------------------------------------------------------- the attr filter

# getattr by a name the template computes: judged by the names it may be, like a spelled attribute
ATTR_WALKS = {
    "literal": "{{ namespace|attr('__init__') }}",
    "keyword_name": "{{ namespace|attr(name='__init__') }}",
    "concatenated": "{% set k = '__' ~ 'init' ~ '__' %}{{ namespace|attr(k) }}",
    "one_of_a_literal_list": "{% for k in ['role', '__init__'] %}{{ namespace|attr(k) }}{% endfor %}",
    "walk_attribute": "{{ x|attr('gi_frame') }}",
    "through_map": "{{ [namespace]|map('attr', '_' ~ '_init__')|list }}",
    "through_map_of_map": "{{ [[namespace]]|map('map', 'attr', 'gi_frame')|list }}",
    "filter_through_map_of_map": "{{ [[namespace]]|map('map', 'selectattr', '_module')|list }}",
    "block_set_filter": "{% set k %}__init__{% endset %}{{ namespace|attr(k) }}",
    "macro_argument": "{% macro a(o, k) %}{{ o|attr(k) }}{% endmacro %}{{ a(namespace, '__init__') }}",
}


@pytest.mark.parametrize("template", ATTR_WALKS.values(), ids=ATTR_WALKS.keys())
def test_attr_filter_with_a_name_that_opens_a_walk_is_critical(template: str) -> None:
    assert _worst(template) is Severity.CRITICAL, _findings(template)
    assert any("attr" in f.message or "selectattr" in f.message for f in _findings(template))


# names the analysis does not know: reported as before (CRITICAL), whatever else the template does
ATTR_UNKNOWN = {
    "context_data": "{% for m in messages %}{{ namespace|attr(m.role) }}{% endfor %}",
    "shaped_context_text": "{{ x|attr(messages[0].role|replace('system', 'class')) }}",
    "unpacked_arguments": "{% set a = ['role'] %}{{ x|attr(*a) }}",
    "unpacked_keywords": "{{ x|attr(**{'name': 'role'}) }}",
    "lipsum_text": "{{ x|attr(lipsum(1)|string) }}",
    "no_name": "{{ x|attr }}",
    "through_map": "{% for m in messages %}{{ [x]|map('attr', m.content)|list }}{% endfor %}",
    "filter_block": "{% filter attr(messages[0].content) %}x{% endfilter %}",
}


@pytest.mark.parametrize("template", ATTR_UNKNOWN.values(), ids=ATTR_UNKNOWN.keys())
def test_attr_filter_with_a_name_not_known_is_reported(template: str) -> None:
    assert _worst(template) is Severity.CRITICAL, _findings(template)


# str.format reached through the attr filter, map(attribute=) or groupby: its field paths are attribute walks
FORMAT_BY_FILTER = {
    "attr": "{{ ('{0.__init__.__globals__}'|attr('format'))(namespace) }}",
    "attr_format_map": "{{ ('{a.__init__}'|attr('format_map'))({'a': namespace}) }}",
    "attr_on_a_block_set": "{% set f | attr('format') %}{0.__init__}{% endset %}{{ f(namespace) }}",
    "attr_through_map": "{{ (['{0.__init__}']|map('attr', 'format')|first)(namespace) }}",
    "map_attribute": "{{ (['{0.__init__}']|map(attribute='format')|first)(namespace) }}",
    "map_attribute_path": "{{ ([['{0.__init__}']]|map(attribute='0.format')|first)(namespace) }}",
    "groupby_grouper": (
        "{% for grp in ['{0.gi_frame.f_globals}']|groupby('format') %}{{ grp.grouper(x) }}{% endfor %}"
    ),
}


@pytest.mark.parametrize("template", FORMAT_BY_FILTER.values(), ids=FORMAT_BY_FILTER.keys())
def test_format_fields_reached_through_attribute_filters_are_critical(template: str) -> None:
    found = _findings(template)
    assert any(f.severity is Severity.CRITICAL and "format string reads" in f.message for f in found), found


ATTR_BENIGN = [
    # the FP-hunt case: attr over a literal list of message fields (next to the item access it mirrors)
    "{%- set keys = ['role','content'] %}{% for k in keys %}{{ messages[0][k] }}"
    "{{ messages[0] | attr(k) if false }}{% endfor %}",
    "{{ messages[0]|attr('content') }}{{ (messages|last)|attr(name='role') }}",
    "{{ messages|map('attr', 'content')|join('\\n') }}",
    "{% set field = 'role' if x else 'content' %}{% for m in messages %}{{ m|attr(field) }}{% endfor %}",
    "{% for i in range(3) %}{{ messages|attr(i) }}{% endfor %}",
    "{{ [[messages[0]]]|map('map', 'attr', 'content')|list }}",
    # format fields that read no internals, reached through the same filters
    "{{ ('{0.role}: {0.content}'|attr('format'))(messages[0]) }}",
    "{{ (['{0} {1}']|map(attribute='format')|first)(messages[0].role, messages[0].content) }}",
]


@pytest.mark.parametrize("template", ATTR_BENIGN)
def test_attr_filter_with_known_harmless_names_is_clean(template: str) -> None:
    assert _findings(template) == []


# ------------------------------------------------------------------------------- transformers' template dialect

# transformers renders chat templates with its AssistantTracker extension ({% generation %} ... {% endgeneration %},
# a call block around the body), jinja2.ext.loopcontrols and the globals raise_exception and strftime_now
_TRAINING_TEMPLATE = """{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content']
+ '<|im_end|>\\n' }}{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}
{%- for message in loop_messages %}
{%- if message['role'] not in ['user', 'assistant'] %}{{ raise_exception('Unknown role: ' + message['role']) }}
{%- endif %}
{%- if message['role'] == 'assistant' %}{{- '<|im_start|>assistant\\n' }}
{%- generation %}{%- set content = message['content'] %}
{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}
{{- content + '<|im_end|>' }}{%- endgeneration %}{{- '\\n' }}
{%- else %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}
{%- if loop.last and message['role'] == 'user' %}{% break %}{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
{{- 'Knowledge cutoff: 2024\\nToday: ' + strftime_now('%d %B %Y') }}"""

GENERATION_BENIGN = {
    "training_template": _TRAINING_TEMPLATE,
    "trimmed_tags": "{% for m in messages %}{%- generation -%}{{ m['content'] }}{%- endgeneration -%}{% endfor %}",
    "colon_after_the_tag": "{% generation: %}{{ messages[-1].content }}{% endgeneration %}",
    "nested": "{% generation %}{% generation %}{{ messages[0].content }}{% endgeneration %}{% endgeneration %}",
    "loop_controls": "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}"
    "{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}",
}


@pytest.mark.parametrize("template", GENERATION_BENIGN.values(), ids=GENERATION_BENIGN.keys())
def test_generation_blocks_of_training_templates_are_clean(template: str) -> None:
    assert _findings(template) == []


# the body of a generation block is template code like any other: what it does is judged, what it sets flows out
GENERATION_PAYLOADS = {
    "item_access": "{% generation %}{{ namespace['__init__'] }}{% endgeneration %}",
    "spelled_attributes": "{% generation %}{{ cycler.__init__.__globals__.os.popen('id').read() }}{% endgeneration %}",
    "attr_filter": "{% generation %}{{ namespace|attr('__in' ~ 'it__') }}{% endgeneration %}",
    "format_field": "{% generation %}{{ '{0.gi_frame.f_globals}'.format(x) }}{% endgeneration %}",
    "name_set_inside_used_outside": (
        "{% generation %}{% set k = '__' ~ 'init' ~ '__' %}{% endgeneration %}{{ namespace[k] }}"
    ),
    "name_set_outside_used_inside": (
        "{% set k = '_' * 2 ~ 'init' ~ '_' * 2 %}{% generation %}{{ namespace[k] }}{% endgeneration %}"
    ),
    "inside_a_loop_and_a_macro": (
        "{% macro m(o, k) %}{% generation %}{{ o[k] }}{% endgeneration %}{% endmacro %}"
        "{% for k in ['role', '__init__'] %}{{ m(namespace, k) }}{% endfor %}"
    ),
    "nested": "{% generation %}{% generation %}{{ x|map(attribute='gi_frame') }}{% endgeneration %}{% endgeneration %}",
}


@pytest.mark.parametrize("template", GENERATION_PAYLOADS.values(), ids=GENERATION_PAYLOADS.keys())
def test_a_payload_inside_a_generation_block_is_critical(template: str) -> None:
    assert _worst(template) is Severity.CRITICAL, _findings(template)


@pytest.mark.parametrize(
    "template",
    [
        "{% generation %}{{ messages[0].content }}",  # never closed
        "{{ messages[0].content }}{% endgeneration %}",  # never opened
        "{% generation x %}{{ y }}{% endgeneration %}",  # the tag takes no argument
        "{% generation %}{{ y }}{% endgeneration x %}",
        "{% trans %}x{% endtrans %}",  # an extension transformers does not load
    ],
)
def test_what_transformers_cannot_parse_is_unverified(template: str) -> None:
    ctx = ScanContext("t", Limits(), None)
    check_template(template, ctx, Location("t"))
    assert ctx.unverified
    assert not ctx.findings


# ------------------------------------------------------------------------------- names of globals used as locals

LOCALS_NAMED_LIKE_GLOBALS = [
    "{% for g in messages|groupby('role') %}{{ g.grouper }}: {{ g.list|length }}{% endfor %}",
    "{% for g in messages if g.role != 'system' %}{{ g.content }}{% endfor %}",
    "{% for k, g in tools|dictsort %}{{ k }}{{ g }}{% endfor %}{% for k, g in tools|items %}{{ g }}{% endfor %}",
    "{% macro render(config, session) %}{{ config.name }}{{ session }}{% endmacro %}{{ render(tools[0], 1) }}",
    "{% macro w() %}{{ caller(1) }}{% endmacro %}{% call(request) w() %}{{ request }}{% endcall %}",
    "{% with g = messages[0] %}{{ g.content }}{% endwith %}",
]


@pytest.mark.parametrize("template", LOCALS_NAMED_LIKE_GLOBALS)
def test_a_local_variable_named_like_a_global_is_clean(template: str) -> None:
    assert _findings(template) == []


@pytest.mark.parametrize(
    "template",
    [
        "{% for g in messages %}{% endfor %}{{ g }}",  # after the loop: the global
        "{% for g in g %}{{ g }}{% endfor %}",  # the iterable is outside the loop's scope
        "{% for x in messages %}{% else %}{{ g }}{% endfor %}",
        "{% for g in [] %}{% else %}{{ g }}{% endfor %}",  # the else runs when the loop did not bind
        "{% macro m(a, c=config) %}{{ c }}{% endmacro %}",  # a default is evaluated outside the macro
        "{% with g = g %}{{ g }}{% endwith %}",
        "{% if false %}{% set config = {} %}{% endif %}{{ config }}",  # a set does not dominate the use
    ],
)
def test_a_global_outside_a_local_scope_of_its_name_is_reported(template: str) -> None:
    assert any("uses the global" in f.message for f in _findings(template)), _findings(template)


# Constructs of 2025-26 agent templates (tool-call queues, reverse message scans, per-macro counters) that the
# flow-insensitive analysis once over-approximated into HIGH findings: what a template appends to its own
# lists never reaches a range or context data, list + list is no text, and a number plus anything is a number.
BOOKKEEPING_BENIGN = {
    "reverse_scan_with_a_tool_queue": (
        "{%- set q = namespace(ids=[]) -%}{%- for c in message.tool_calls -%}"
        "{%- set _ = q.ids.append('functions.' ~ c.function.name ~ ':' ~ loop.index0) -%}{%- endfor -%}"
        "{%- set ns = namespace(last=-1) -%}{%- for i in range(messages|length - 1, -1, -1) -%}"
        "{%- if messages[i]['role'] == 'assistant' and not messages[i].get('tool_calls') -%}"
        "{%- set ns.last = i -%}{%- endif -%}{%- endfor -%}{{ messages[ns.last]['content'] }}"
    ),
    "namespace_list_accumulated_by_concatenation": (
        "{%- set seen = namespace(names=[]) -%}{%- for t in tools -%}{%- set n = t.function.name.split('.')[0] -%}"
        "{%- if n not in seen.names -%}{%- set seen.names = seen.names + [n] -%}{%- endif -%}{%- endfor -%}"
        "{%- set d = descriptions if descriptions is defined else {} -%}"
        "{%- for n in seen.names -%}{{ (d[n] if n in d else '') | tojson }}{%- endfor -%}"
    ),
    "counter_in_a_macro_parameter_named_like_a_namespace": (
        "{%- macro next_image(state) -%}{{ images[state.index] }}{%- set state.index = state.index + 1 -%}"
        "{%- endmacro -%}{%- set state = namespace(index=0) -%}"
        "{%- for m in messages -%}{{ next_image(state) }}{%- endfor -%}"
    ),
    "plain_list_concatenation": (
        "{%- set keys = [] -%}{%- for m in messages -%}{%- set keys = keys + [m.role] -%}{%- endfor -%}"
        "{%- for k in keys -%}{{ lookup[k] }}{%- endfor -%}"
    ),
}


@pytest.mark.parametrize("template", BOOKKEEPING_BENIGN.values(), ids=BOOKKEEPING_BENIGN.keys())
def test_template_bookkeeping_of_agent_templates_is_clean(template: str) -> None:
    assert _findings(template) == []


# ... and the same shapes carrying a name the template makes: still reported
BOOKKEEPING_PAYLOADS = {
    "appended_to_its_own_list": (
        "{%- set q = namespace(ids=[]) -%}{%- set _ = q.ids.append('__' ~ 'globals__') -%}"
        "{%- for k in q.ids -%}{{ namespace[k] }}{%- endfor -%}"
    ),
    "appended_to_context_data": (
        "{%- set _ = messages.append('__' ~ 'globals__') -%}{{ namespace[messages[-1]] }}"
    ),
    "appended_through_a_list_holding_context_data": (
        "{%- set box = [messages] -%}{%- set _ = box[0].append('__in' ~ 'it__') -%}"
        "{{ namespace[messages[0]] }}"
    ),
    "own_list_put_into_context_then_filled": (
        "{%- set l = [] -%}{%- set _ = messages.append(l) -%}{%- set _ = messages[-1].append('__in' ~ 'it__') -%}"
        "{{ namespace[l[0]] }}"
    ),
    "range_concatenated_with_a_name": (
        "{%- for k in range(2) + ['__in' ~ 'it__'] -%}{{ namespace[k] }}{%- endfor -%}"
    ),
    "list_concatenation_carrying_a_name": (
        "{%- set keys = [] -%}{%- set keys = keys + ['__in' ~ 'it__'] -%}{%- for k in keys -%}{{ namespace[k] }}"
        "{%- endfor -%}"
    ),
    "text_concatenation_beside_a_list": (
        "{%- set k = [] if messages else '__in' -%}{{ namespace[k + 'it__'] }}"
    ),
    "dict_updated_with_a_name": (
        "{%- set d = {} -%}{%- set _ = d.update({'k': '__in' ~ 'it__'}) -%}{{ namespace[d.k] }}"
    ),
}


@pytest.mark.parametrize("template", BOOKKEEPING_PAYLOADS.values(), ids=BOOKKEEPING_PAYLOADS.keys())
def test_names_carried_through_template_bookkeeping_are_critical(template: str) -> None:
    assert _worst(template) is Severity.CRITICAL


@pytest.mark.parametrize(
    "template",
    [
        "{%- set k = '__in' ~ x -%}{{ namespace[k + 'it__'] }}",
        "{%- set keys = [] -%}{%- set keys = keys + [x ~ 'it__'] -%}{%- for k in keys -%}{{ namespace[k] }}"
        "{%- endfor -%}",
        "{%- set q = namespace(ids=[]) -%}{%- set _ = q.ids.append(x ~ '_') -%}"
        "{%- for i in range(3) -%}{{ q.ids[i] }}{{ namespace[q.ids[i]] }}{%- endfor -%}",
    ],
)
def test_names_the_template_shapes_through_bookkeeping_are_reported(template: str) -> None:
    assert _worst(template) in (Severity.HIGH, Severity.CRITICAL)


# --- Python builtins called by name -----------------------------------------------------------------------
# No chat-template environment defines getattr, eval, __import__ ..., so such a call fails at render time unless
# the rendering application exposes the builtin; a template that calls one is written for an environment that
# does (modelaudit's fixture obfuscated/getattr_bypass.json walks getattr(getattr('', '__class__'), ...)).


@pytest.mark.parametrize(
    "template",
    [
        "{{ getattr(getattr(getattr('', '__class__'), '__mro__')[1], '__subclasses__')()[40]('/etc/hosts').read() }}",
        "{{ getattr(messages, '__init__') }}",
        "{% set n = '__glo' ~ 'bals__' %}{{ getattr(raise_exception, n) }}",
        "{{ getattr(x, '\\x5f\\x5fclass\\x5f\\x5f') }}",
        "{{ vars(messages)['_' ~ '_dict__'] }}",
    ],
)
def test_python_builtin_called_with_an_internal_name_is_critical(template: str) -> None:
    assert _worst(template) == Severity.CRITICAL


@pytest.mark.parametrize(
    "template",
    [
        "{{ eval('1+1') }}",
        "{{ open('/etc/passwd').read() }}",
        "{{ exec(messages[0].content) }}",
        "{{ globals() }}",
        "{% for m in messages %}{{ compile(m.content, 'x', 'exec') }}{% endfor %}",
        # handed on as a value rather than called here
        "{% set f = getattr %}{{ f(messages, '__class__') }}",  # aliased before the call
        "{% macro m(fn) %}{{ fn(messages, 'x') }}{% endmacro %}{{ m(getattr) }}",  # handed to a macro
        "{{ messages|map(eval)|list }}",  # handed to a filter
        "{% set ns = namespace(f=open) %}{{ ns.f('/etc/passwd') }}",  # kept in a namespace
        "{% with f = __import__ %}{{ f('os') }}{% endwith %}",
    ],
)
def test_python_builtin_called_or_handed_on_is_at_least_high(template: str) -> None:
    worst = _worst(template)
    assert worst is not None and worst >= Severity.HIGH


@pytest.mark.parametrize(
    "template",
    [
        # a template variable or macro of that name is the template's own
        "{% set open = '<|im_start|>' %}{{ open }}{% for m in messages %}{{ m.content }}{% endfor %}",
        "{% macro eval(x) %}{{ x }}{% endmacro %}{{ eval(messages[0].content) }}",
        "{% for m in messages %}{{ m.role }}: {{ m.content | trim }}{% endfor %}",
        # bound before the use: in an enclosing statement list, as a parameter, loop or with variable
        "{% set open = '<' %}{% for m in messages %}{% if m %}{{ open ~ m.role }}{% endif %}{% endfor %}",
        "{% set open = '<' %}{% macro m() %}{{ open }}{% endmacro %}{{ m() }}",
        "{% for m in messages %}{% set vars = m.content %}{{ vars|trim }}{% endfor %}",
        "{% macro f(open) %}{{ open }}{% endmacro %}{{ f('<') }}",
        "{% for open in ['<', '['] %}{{ open }}{% endfor %}",
        "{% with compile = 'x' %}{{ compile }}{% endwith %}",
        "{% set __sep__ = '|' %}{{ messages|join(__sep__) }}",
    ],
)
def test_names_the_template_defines_itself_are_not_builtins(template: str) -> None:
    assert _worst(template) is None


@pytest.mark.parametrize(
    "template",
    [
        # bound only where the use does not see it: the rendering context's value (the builtin) is called
        "{% if false %}{% set getattr = 0 %}{% endif %}{{ getattr(getattr('', '__class__'), '__mro__') }}",
        "{{ getattr('', '__class__') }}{% set getattr = 0 %}",  # bound after the use
        "{% macro m() %}{{ open('/etc/passwd').read() }}{% endmacro %}{% set open = 0 %}{{ m() }}",
        "{% for x in messages %}{% set eval = 0 %}{% endfor %}{{ eval('1') }}",  # a loop body's set stays there
        "{% for x in messages %}{{ eval('1') }}{% set eval = 0 %}{% endfor %}",  # later in the same body
        "{% macro m(exec) %}{% endmacro %}{{ m(1) }}{{ exec('1') }}",  # a parameter outside its macro
        "{% for open in [] %}{% endfor %}{{ open('/etc/passwd') }}",  # a loop variable after its loop
        "{% with vars = 1 %}{% endwith %}{{ vars() }}",
        "{% if false %}{% macro eval(x) %}{% endmacro %}{% endif %}{{ eval('1') }}",
        "{% set getattr = getattr %}{{ getattr('', 'x') }}",  # the value is the builtin itself
    ],
)
def test_python_builtin_bound_only_where_the_use_cannot_see_it_is_reported(template: str) -> None:
    worst = _worst(template)
    assert worst is not None and worst >= Severity.HIGH


@pytest.mark.parametrize(
    "template",
    [
        "{{ __loader__.load_module('posix').system('id') }}",  # the builtins module's own names
        "{{ __spec__ }}",
        "{% set f = __build_class__ %}{{ f }}",
        "{{ messages|map(__import__)|list }}",
    ],
)
def test_dunder_names_of_the_builtins_module_are_reported(template: str) -> None:
    worst = _worst(template)
    assert worst is not None and worst >= Severity.HIGH
