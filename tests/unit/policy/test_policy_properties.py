"""Properties of the diff classification and the safeguard map, over generated inputs."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import EXAMPLE, clone

from loopwarden.policy import ChangeClass, diff_policies, parse_policy
from loopwarden.policy.chain import PolicyVersion, audit_chain
from loopwarden.policy.model import SafeguardKind, policy_digest
from loopwarden.policy.safeguards import predicate_type_of

thresholds = st.floats(min_value=-1000, max_value=1000, allow_nan=False, allow_infinity=False)
RAW: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
directions = st.sampled_from(["higher-is-more-capable", "lower-is-more-capable"])


def _with(raw: dict[str, Any], direction: str, t: float) -> Any:
    r = clone(raw)
    cap = r["capabilities"]["cyber-offense"]
    cap["direction"] = direction
    cap["levels"] = [{"name": "only", "threshold": t, "gates": ["promote"], "on_reached": "deny"}]
    return parse_policy(r, source="gen")


@settings(max_examples=60, deadline=None)
@given(direction=directions, a=thresholds, b=thresholds)
def test_threshold_change_is_loosening_one_way_and_tightening_the_other(
    direction: str, a: float, b: float
) -> None:
    old, new = _with(RAW, direction, a), _with(RAW, direction, b)
    forward = {c.change_class for c in diff_policies(old, new).changes}
    backward = {c.change_class for c in diff_policies(new, old).changes}
    if a == b:
        assert forward == backward == set()
        return
    assert forward | backward == {ChangeClass.THRESHOLD_LOOSENED, ChangeClass.THRESHOLD_TIGHTENED}
    loosened_forward = ChangeClass.THRESHOLD_LOOSENED in forward
    assert loosened_forward == ((b > a) if direction == "higher-is-more-capable" else (b < a))


@settings(max_examples=25, deadline=None)
@given(steps=st.lists(st.floats(min_value=-5, max_value=5, allow_nan=False), min_size=2, max_size=6))
def test_drift_is_flagged_exactly_when_net_loosening_over_two_steps(steps: list[float]) -> None:
    """Approvals aside, LW-LOOP-059 fires iff >= 2 loosening steps and a net loosening above tolerance 0."""
    t = 0.0
    docs = [_with(RAW, "higher-is-more-capable", t)]
    for s in steps:
        t = round(t + s, 6)
        docs.append(_with(RAW, "higher-is-more-capable", t))
    versions: list[PolicyVersion] = []
    prev = None
    for i, p in enumerate(docs):
        v = PolicyVersion(policy_digest(p), prev, p, i, None, None)
        versions.append(v)
        prev = v.version
    drift = [f for f in audit_chain(versions).findings if f.rule_id == "LW-LOOP-059"]
    values = [0.0]
    for s in steps:
        values.append(round(values[-1] + s, 6))
    loosening_steps = sum(1 for x, y in itertools.pairwise(values) if y > x)
    assert bool(drift) == (loosening_steps >= 2 and values[-1] - values[0] > 0)


@pytest.mark.parametrize("kind", list(SafeguardKind))
def test_every_safeguard_kind_reads_a_predicate_type(kind: SafeguardKind) -> None:
    assert predicate_type_of(kind).startswith("https://")
