"""The policy file at the boundary, and the composable Policy/Decision values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from policy_helpers import EXAMPLE, NOW, clone, dig

from loopwarden.domain import Severity
from loopwarden.errors import InputError, PolicyError
from loopwarden.policy import (
    AllOf,
    AnyOf,
    Decision,
    GateRequest,
    Outcome,
    Reason,
    UnsafeAllowAll,
    load_policy,
    parse_policy,
    policy_digest,
)
from loopwarden.policy.model import Action, Direction, Scope, parse_duration


def test_example_policy_loads() -> None:
    p = load_policy(EXAMPLE)
    assert set(p.capabilities) == {"cyber-offense", "autonomous-replication", "ai-rnd-acceleration"}
    assert p.capabilities["autonomous-replication"].direction is Direction.LOWER
    assert p.capabilities["ai-rnd-acceleration"].scope is Scope.LOOP
    assert p.evidence.max_age == timedelta(days=30)
    assert p.safeguards["scan-clean"].max_age == timedelta(days=7)
    assert p.change_control.loosening_approvals == 2


def _write(tmp_path: Path, raw: Any) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("mutate", "expect"),
    [
        (lambda r: r.update(colour="red"), "unknown field 'colour'"),
        (
            lambda r: r["capabilities"]["cyber-offense"]["levels"][1].update(treshold=0.3),
            "unknown field 'capabilities.cyber-offense.levels.1.treshold'",
        ),
        (
            lambda r: r["safeguards"]["scan-clean"].update(maxage="7d"),
            "unknown field 'safeguards.scan-clean.maxage'",
        ),
        (lambda r: r["change_control"].update(approvals=1), "unknown field 'change_control.approvals'"),
        (
            lambda r: r["capabilities"]["cyber-offense"]["eval"].update(suite_digest="md5"),
            "field 'capabilities.cyber-offense.eval.suite_digest'",
        ),
        (
            lambda r: r["capabilities"]["cyber-offense"].update(direction="up"),
            "field 'capabilities.cyber-offense.direction'",
        ),
        (lambda r: r["evidence"].update(max_age="a month"), "field 'evidence.max_age'"),
        (
            lambda r: r["capabilities"]["cyber-offense"]["levels"][0].update(gates=["launch"]),
            "capabilities.cyber-offense.levels.0.gates.0",
        ),
        (
            lambda r: r["capabilities"]["cyber-offense"]["levels"][0]["safeguards"].append("magic"),
            "safeguard 'magic' is not defined",
        ),
        (lambda r: r["change_control"]["approvers"].append("loop-agent"), "only human keys may approve"),
        (
            lambda r: r["change_control"]["approvers"].append("mallory"),
            "'mallory' is not listed under 'people'",
        ),
        (lambda r: r.update(version=2), "field 'version'"),
    ],
)
def test_bad_policy_names_file_and_field(
    tmp_path: Path, example_raw: dict[str, Any], mutate: Any, expect: str
) -> None:
    raw = clone(example_raw)
    mutate(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(InputError) as ei:
        load_policy(path)
    assert str(path) in str(ei.value)
    assert expect in str(ei.value)
    assert ei.value.exit_code == 2


def test_not_yaml_and_not_mapping(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("capabilities: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_policy(p)
    p.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(InputError, match="mapping"):
        load_policy(p)
    with pytest.raises(InputError, match="not found"):
        load_policy(tmp_path / "missing.yaml")


def test_yaml_tags_are_not_executed(tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("!!python/object/apply:os.system ['echo pwned']\n", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_policy(p)


def test_digest_is_of_the_normal_form(tmp_path: Path, example_raw: dict[str, Any]) -> None:
    a = parse_policy(example_raw, source="a")
    reordered = dict(reversed(list(clone(example_raw).items())))
    reordered["evidence"]["max_age"] = "720h"  # the same duration written differently
    b = parse_policy(reordered, source="b")
    assert policy_digest(a) == policy_digest(b)
    changed = clone(example_raw)
    changed["capabilities"]["cyber-offense"]["levels"][0]["threshold"] = 0.21
    assert policy_digest(parse_policy(changed, source="c")) != policy_digest(a)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30d", 2592000), ("12h", 43200), ("90m", 5400), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["30", "1y", "-1d", "d30", ""])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


# -- composable policies ------------------------------------------------------------------------------


class _Fixed:
    def __init__(self, outcome: Outcome, tag: str) -> None:
        self.outcome = outcome
        self.name = tag

    def evaluate(self, request: GateRequest) -> Decision:
        return Decision(self.outcome, (Reason("LW-LOOP-063", self.outcome, self.name),))


REQ = GateRequest(dig("m"), Action.PROMOTE, NOW)
A, D, E = Outcome.ALLOW, Outcome.DENY, Outcome.ESCALATE


@pytest.mark.parametrize(
    ("children", "all_of", "any_of"),
    [
        ([A], A, A),
        ([D], D, D),
        ([E], E, E),
        ([A, A], A, A),
        ([A, D], D, A),
        ([A, E], E, A),
        ([E, D], D, E),
        ([D, D], D, D),
        ([A, E, D], D, A),
    ],
)
def test_allof_anyof_table(children: list[Outcome], all_of: Outcome, any_of: Outcome) -> None:
    kids = [_Fixed(o, f"child{i}-{o}") for i, o in enumerate(children)]
    da = AllOf(kids).evaluate(REQ)
    assert da.outcome is all_of
    assert len(da.reasons) == len(children)  # every reason is kept
    assert AnyOf(kids).evaluate(REQ).outcome is any_of


def test_empty_combinators_are_errors() -> None:
    with pytest.raises(PolicyError, match="empty AllOf"):
        AllOf([])
    with pytest.raises(PolicyError):
        AnyOf([])


def test_unsafe_allow_all_is_named_and_allows() -> None:
    d = UnsafeAllowAll().evaluate(REQ)
    assert d.outcome is Outcome.ALLOW
    assert d.exit_code() == 0
    assert UnsafeAllowAll.name == "unsafe-allow-all"


def test_decision_needs_a_reason_to_deny() -> None:
    with pytest.raises(PolicyError):
        Decision(Outcome.DENY, ())
    with pytest.raises(PolicyError):
        Decision(Outcome.ESCALATE, (Reason("LW-LOOP-050", Outcome.DENY, "x", Severity.HIGH),))
    d = Decision.from_reasons([Reason("LW-LOOP-050", D, "x"), Reason("LW-LOOP-062", E, "y")])
    assert d.outcome is D
    assert d.exit_code() == 1
    assert [r.outcome for r in d.reasons] == [D, E]  # denials first
