"""Round 10 false-positive sweep of the chat-template analysis: constructs of real-world benign templates.

Each template here is written for the test (no third-party template text) and exhibits one construct that a real
published chat template uses and that the analysis reported. Each stays clean; the attack spellings next to it
stay reported.
"""

from __future__ import annotations

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext
from loopwarden.checks.models.chat_template import check_embedded_template, check_template
from loopwarden.domain import Finding, Location, Severity


def _findings(template: str) -> list[Finding]:
    ctx = ScanContext("t", Limits(), None)
    check_template(template, ctx, Location("t"))
    assert not ctx.unverified, ctx.unverified
    return ctx.findings


# ------------------------------------------------- a global's name that the template binds itself before its use

# A published fine-tune's template keeps its flags in ``{%- set config = namespace(has_tools=false) -%}`` and tests
# ``config.has_tools``: from the set on, ``config`` is the template's own namespace, not Flask's config object. Only
# loop variables, parameters and with-variables counted as binding the name, so the template was HIGH.
_BOUND_GLOBAL_NAMES = {
    "namespace-set-first": (
        "{%- set config = namespace(has_system=false, has_tools=false) -%}"
        "{%- set config.has_system = messages | selectattr('role', 'equalto', 'system') | list | length > 0 -%}"
        "{%- set config.has_tools = tools is not none and tools | length > 0 -%}"
        "{%- for message in messages -%}"
        "{%- if message.role == 'system' and config.has_tools -%}{{ message.content }} (tools){{ eos_token }}"
        "{%- else -%}{{ message.role | capitalize }}: {{ message.content }}{{ eos_token }}{%- endif -%}"
        "{%- endfor -%}{%- if add_generation_prompt -%}Assistant:{%- endif -%}"
    ),
    "set-in-a-loop-used-in-it": (
        "{% for m in messages %}{% set g = m.content | trim %}{{ m.role }}: {{ g }}\n{% endfor %}"
    ),
    "set-on-every-branch": (
        "{% if tools %}{% set session = namespace(turns=1) %}{% else %}{% set session = namespace(turns=0) %}"
        "{% endif %}{% for m in messages %}{% set session.turns = session.turns + 1 %}{% endfor %}"
        "{{ session.turns }}"
    ),
    "macro-named-like-a-global": "{% macro request(m) %}[{{ m.role }}]{% endmacro %}"
    "{% for m in messages %}{{ request(m) }}{{ m.content }}{% endfor %}",
    "set-before-a-macro": (
        "{% set config = namespace(sep='\\n') %}{% macro line(m) %}{{ m.content }}{{ config.sep }}{% endmacro %}"
        "{% for m in messages %}{{ line(m) }}{% endfor %}"
    ),
}


@pytest.mark.parametrize("case", sorted(_BOUND_GLOBAL_NAMES))
def test_a_global_name_the_template_binds_before_use_stays_clean(case: str) -> None:
    assert _findings(_BOUND_GLOBAL_NAMES[case]) == []


# where the render may reach the use without the template's binding, the name is the environment's global
_UNBOUND_GLOBAL_NAMES = {
    "set-in-one-branch": "{% if messages | length > 9 %}{% set config = namespace(a=1) %}{% endif %}"
    "{{ config.SECRET_KEY }}",
    "set-after-the-use": "{{ config.items() | list }}{% set config = namespace(a=1) %}",
    "set-only-in-a-loop": "{% for m in messages %}{% set g = m %}{% endfor %}{{ g.pop }}",
    "set-from-itself": "{% set config = config %}{{ config.items() | list }}",
    "with-ends-before-the-use": "{% with session = 1 %}{% endwith %}{{ session.keys() | list }}",
    "set-in-a-macro-body": "{% macro m() %}{% set cycler = 1 %}{% endmacro %}{{ cycler.reset }}",
}


@pytest.mark.parametrize("case", sorted(_UNBOUND_GLOBAL_NAMES))
def test_a_global_name_the_template_may_not_have_bound_is_still_high(case: str) -> None:
    found = _findings(_UNBOUND_GLOBAL_NAMES[case])
    assert any(f.severity is Severity.HIGH and "uses the global" in f.message for f in found), found


def test_a_template_bound_config_is_its_own_value_in_plain_jinja() -> None:
    """The renderer agrees: after the set, ``config`` is the namespace even where the environment defines one."""
    jinja2 = pytest.importorskip("jinja2")

    env = jinja2.Environment()
    env.globals["config"] = {"SECRET_KEY": "s3cret"}
    template = env.from_string("{% set config = namespace(a='own') %}{{ config.a }}|{{ config.SECRET_KEY }}")
    assert template.render() == "own|"


# --------------------------------------------- the renderer's clock as a key: {'Monday': ...}[strftime_now('%A')]

# A published tool-calling template maps the weekday to its own language with
# ``weekday_map[strftime_now('%A')]``. strftime_now is a free name, so its result was template-made text and the
# key HIGH; but a format of conversions, blanks and punctuation prints only numbers, day and month names and
# AM/PM: the clock's text, which no one shapes (a special token named strftime_now is a string, and calling it
# fails at render time).
_DATE_KEYS = {
    "weekday": (
        "{%- set weekday_map = {'Monday': 'lun.', 'Tuesday': 'mar.', 'Wednesday': 'mer.', 'Thursday': 'jeu.',"
        " 'Friday': 'ven.', 'Saturday': 'sam.', 'Sunday': 'dim.'} -%}"
        "{%- if tools -%}Date : {{ strftime_now('%d/%m/%Y') }} ({{ weekday_map[strftime_now('%A')] }})\n{%- endif -%}"
        "{%- for m in messages -%}{{ m.role }}: {{ m.content }}\n{%- endfor -%}"
    ),
    "month-with-flags": "{% set months = {'1': 'Jan.', '12': 'Dec.'} %}{{ months[strftime_now('%-m')] }}"
    "{{ {'AM': 'morning', 'PM': 'afternoon'}[strftime_now('%p')] }}{{ {}[strftime_now('%^a, %_d %B %Y %H:%M')] }}",
}


@pytest.mark.parametrize("case", sorted(_DATE_KEYS))
def test_a_key_the_renderers_clock_prints_stays_clean(case: str) -> None:
    assert _findings(_DATE_KEYS[case]) == []


def test_a_clock_key_in_a_configs_embedded_template_stays_clean() -> None:
    ctx = ScanContext("t", Limits(), None)
    check_embedded_template(_DATE_KEYS["weekday"], ctx, Location("t"), key="prompt_template")
    assert ctx.findings == [] and not ctx.unverified


# a format with text of its own (a name it spells, or cuts out), a conversion the C library prints as written, a
# format the template cannot compute, or a strftime_now the template binds itself: still template-made
_NOT_THE_CLOCK = {
    "spelled-name": "{{ ''[strftime_now('__class__')] }}",
    "spelled-walk-name": "{{ ''[strftime_now('mro')] }}",
    "cut-from-the-text": "{{ ''[strftime_now('%A_mro').split('_')[1]] }}",
    "unknown-conversion": "{{ ''[strftime_now('%q%v')] }}",
    "format-from-the-chat": "{% for m in messages %}{{ ''[strftime_now(m.content ~ '%A')] }}{% endfor %}",
    "keyword-format": "{{ ''[strftime_now(format='%A')] }}",
    "set-to-another-function": "{% set strftime_now = raise_exception %}{{ ''[strftime_now('%A')] }}",
    "macro-of-that-name": "{% macro strftime_now(f) %}{{ f ~ messages | length }}{% endmacro %}"
    "{{ ''[strftime_now('%A')] }}",
    "macro-parameter": "{% macro x(strftime_now) %}{{ ''[strftime_now('%A')] }}{% endmacro %}"
    "{{ x(raise_exception) }}",
    "with-variable": "{% with strftime_now = raise_exception %}{{ ''[strftime_now('%A')] }}{% endwith %}",
}


@pytest.mark.parametrize("case", sorted(_NOT_THE_CLOCK))
def test_a_key_strftime_now_may_not_print_as_a_date_is_still_high(case: str) -> None:
    found = _findings(_NOT_THE_CLOCK[case])
    assert max((f.severity for f in found), default=None) in (Severity.HIGH, Severity.CRITICAL), found


def test_the_clock_key_renders_with_transformers() -> None:
    """transformers defines strftime_now for chat templates: the weekday map is read by the day's English name."""
    pytest.importorskip("transformers")
    from transformers.utils.chat_template_utils import render_jinja_template

    rendered, _ = render_jinja_template(
        conversations=[[{"role": "user", "content": "hi"}]],
        chat_template=_DATE_KEYS["weekday"],
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    )
    assert any(day in rendered[0] for day in ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")), (
        rendered
    )
