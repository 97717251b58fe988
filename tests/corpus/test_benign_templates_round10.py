"""Round 10 false-positive sweep of the chat-template analysis: constructs of real-world benign templates.

Each template here is written for the test (no third-party template text) and exhibits one construct that a real
published chat template uses and that the analysis reported. Each stays clean; the attack spellings next to it
stay reported.
"""

from __future__ import annotations

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext
from loopwarden.checks.models.chat_template import check_template
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
