"""The chat-template analysis against the real renderer: generated templates that a plain ``jinja2.Environment``
walks to an internal attribute while rendering are never scanned below high.

The oracle (``_template_oracle``) renders each template with jinja2's own Environment, its lookups watched, and
stops at the first internal attribute it would read. The templates compute the name in many spellings and carry it
through jinja's value flows (sets, namespaces, dicts, lists and their mutators, macros, ``caller``, loops,
``cycler``, ``joiner``, filters, ``str.format``) to a lookup. Round 18 found, with this oracle, the helper objects,
positional mappings and kept callables of tests/corpus/test_redteam_round18_templates.py (174 of 2,702 walking
templates of one seed scanned clean before that round).
"""

from __future__ import annotations

import random

import pytest
from _template_oracle import TemplateProgram, probe, reaches

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext
from loopwarden.checks.models.chat_template import check_template
from loopwarden.domain import Location, Severity

pytest.importorskip("jinja2")


def _worst(template: str) -> Severity | None:
    ctx = ScanContext("t", Limits(), None)
    check_template(template, ctx, Location("t"))
    if ctx.unverified:
        return Severity.CRITICAL  # not judged is never clean; counted as reported here
    return max((f.severity for f in ctx.findings), default=None)


@pytest.mark.parametrize("seed", range(6))
def test_templates_that_walk_are_reported(seed: int) -> None:
    env = probe()
    rng = random.Random(1800 + seed)
    walked = missed = 0
    examples = []
    for _ in range(100):
        template = TemplateProgram(rng).template()
        if not reaches(env, template):
            continue
        walked += 1
        worst = _worst(template)
        if worst is None or worst < Severity.HIGH:
            missed += 1
            examples.append(template)
    assert walked >= 90  # the generator's templates do walk: the oracle is exercised
    assert not missed, examples[:3]


def test_the_probe_tells_walking_from_plain_templates() -> None:
    env = probe()
    assert reaches(env, "{{ ''[('__cl' ~ 'ass__')] }}") is True
    assert reaches(env, "{{ ('{0.' ~ '__class__' ~ '}').format('') }}") is True
    assert reaches(env, "{{ ['']|map(attribute='__len__')|list }}") is True
    assert reaches(env, "{% for m in messages %}{{ m['content'] }}{% endfor %}") is False
    assert reaches(env, "{{ undefined_name.content }}") is None  # fails to render: neither verdict
