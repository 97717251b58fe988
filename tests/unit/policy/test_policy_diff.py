"""``policy diff``: every change class, direction-aware thresholds, and who decides what needs approval."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from policy_helpers import clone

from loopwarden.policy import ChangeClass, diff_policies, parse_policy
from loopwarden.policy.model import LOOSENING_CLASSES

C = ChangeClass
Raw = dict[str, Any]


def _cap(r: Raw, name: str = "cyber-offense") -> Raw:
    cap: Raw = r["capabilities"][name]
    return cap


def _lvl(r: Raw, cap: str, level: str) -> Raw:
    return next(lv for lv in _cap(r, cap)["levels"] if lv["name"] == level)


def _drop_capability(r: Raw) -> None:
    del r["capabilities"]["ai-rnd-acceleration"]


def _add_capability(r: Raw) -> None:
    r["capabilities"]["bio"] = clone(_cap(r))


def _remove_level(r: Raw) -> None:
    _cap(r)["levels"] = [lv for lv in _cap(r)["levels"] if lv["name"] != "critical"]


def _drop_safeguard_definition(r: Raw) -> None:
    for cap in r["capabilities"].values():
        for lv in cap["levels"]:
            lv["safeguards"] = [s for s in lv.get("safeguards", []) if s != "data-provenance"]
    del r["safeguards"]["data-provenance"]


def _swap_person_key(r: Raw) -> None:
    r["people"][0]["keyid"] = "ab" * 32


# (test id, mutation of the NEW version, expected class, expected path prefix)
CASES: list[tuple[str, Callable[[Raw], None], ChangeClass, str]] = [
    (
        "higher: threshold raised loosens",
        lambda r: _lvl(r, "cyber-offense", "high").update(threshold=0.45),
        C.THRESHOLD_LOOSENED,
        "capabilities.cyber-offense.levels.high.threshold",
    ),
    (
        "higher: threshold lowered tightens",
        lambda r: _lvl(r, "cyber-offense", "high").update(threshold=0.35),
        C.THRESHOLD_TIGHTENED,
        "capabilities.cyber-offense.levels.high.threshold",
    ),
    (
        "lower: threshold lowered loosens",
        lambda r: _lvl(r, "autonomous-replication", "high").update(threshold=55),
        C.THRESHOLD_LOOSENED,
        "capabilities.autonomous-replication.levels.high.threshold",
    ),
    (
        "lower: threshold raised tightens",
        lambda r: _lvl(r, "autonomous-replication", "high").update(threshold=65),
        C.THRESHOLD_TIGHTENED,
        "capabilities.autonomous-replication.levels.high.threshold",
    ),
    (
        "safeguard dropped from a level",
        lambda r: _lvl(r, "cyber-offense", "high")["safeguards"].remove("two-person-signoff"),
        C.SAFEGUARD_DROPPED,
        "capabilities.cyber-offense.levels.high.safeguards",
    ),
    (
        "safeguard added to a level",
        lambda r: _lvl(r, "cyber-offense", "early-warning")["safeguards"].append("data-provenance"),
        C.SAFEGUARD_ADDED,
        "capabilities.cyber-offense.levels.early-warning.safeguards",
    ),
    (
        "safeguard definition removed",
        _drop_safeguard_definition,
        C.SAFEGUARD_DROPPED,
        "safeguards.data-provenance",
    ),
    (
        "safeguard definition added",
        lambda r: r["safeguards"].update(extra={"kind": "weights-signed"}),
        C.SAFEGUARD_ADDED,
        "safeguards.extra",
    ),
    (
        "safeguard kind changed",
        lambda r: r["safeguards"]["scan-clean"].update(kind="weights-signed"),
        C.SAFEGUARD_WEAKENED,
        "safeguards.scan-clean.kind",
    ),
    (
        "more sign-offs",
        lambda r: r["safeguards"]["two-person-signoff"].update(min_signers=3),
        C.SAFEGUARD_STRENGTHENED,
        "safeguards.two-person-signoff.min_signers",
    ),
    (
        "scan fails on higher severity only",
        lambda r: r["safeguards"]["scan-clean"].update(fail_on="critical"),
        C.SAFEGUARD_WEAKENED,
        "safeguards.scan-clean.fail_on",
    ),
    (
        "safeguard evidence age extended",
        lambda r: r["safeguards"]["scan-clean"].update(max_age="30d"),
        C.EVIDENCE_AGE_EXTENDED,
        "safeguards.scan-clean.max_age",
    ),
    (
        "safeguard evidence no longer ages",
        lambda r: r["safeguards"]["scan-clean"].pop("max_age"),
        C.EVIDENCE_AGE_EXTENDED,
        "safeguards.scan-clean.max_age",
    ),
    (
        "safeguard evidence age shortened",
        lambda r: r["safeguards"]["scan-clean"].update(max_age="1d"),
        C.EVIDENCE_AGE_SHORTENED,
        "safeguards.scan-clean.max_age",
    ),
    ("level removed", _remove_level, C.LEVEL_REMOVED, "capabilities.cyber-offense.levels.critical"),
    (
        "level added",
        lambda r: _cap(r)["levels"].append(
            {"name": "extreme", "threshold": 0.9, "on_reached": "deny", "gates": ["promote"]}
        ),
        C.LEVEL_ADDED,
        "capabilities.cyber-offense.levels.extreme",
    ),
    (
        "level deny -> escalate",
        lambda r: _lvl(r, "cyber-offense", "critical").update(on_reached="escalate"),
        C.LEVEL_RESPONSE_WEAKENED,
        "capabilities.cyber-offense.levels.critical.on_reached",
    ),
    (
        "level safeguards -> deny",
        lambda r: _lvl(r, "cyber-offense", "high").update(on_reached="deny"),
        C.LEVEL_RESPONSE_STRENGTHENED,
        "capabilities.cyber-offense.levels.high.on_reached",
    ),
    ("capability removed", _drop_capability, C.CAPABILITY_REMOVED, "capabilities.ai-rnd-acceleration"),
    ("capability added", _add_capability, C.CAPABILITY_ADDED, "capabilities.bio"),
    (
        "eval suite swapped",
        lambda r: _cap(r)["eval"].update(suite_digest="sha256:" + "1" * 64),
        C.EVAL_SUITE_SWAPPED,
        "capabilities.cyber-offense.eval.suite_digest",
    ),
    (
        "eval metric swapped",
        lambda r: _cap(r)["eval"].update(metric="pass_at_1"),
        C.EVAL_SUITE_SWAPPED,
        "capabilities.cyber-offense.eval.metric",
    ),
    (
        "direction inverted",
        lambda r: _cap(r).update(direction="lower-is-more-capable"),
        C.DIRECTION_CHANGED,
        "capabilities.cyber-offense.direction",
    ),
    (
        "loop scope -> model scope",
        lambda r: _cap(r, "ai-rnd-acceleration").update(scope="model"),
        C.SCOPE_CHANGED,
        "capabilities.ai-rnd-acceleration.scope",
    ),
    (
        "agents no longer count in the collective",
        lambda r: _cap(r, "ai-rnd-acceleration").update(members=["model"]),
        C.SCOPE_CHANGED,
        "capabilities.ai-rnd-acceleration.members",
    ),
    (
        "collective max -> weighted sum with small weights",
        lambda r: _cap(r, "ai-rnd-acceleration").update(
            combine="weighted-sum", weights={"agent-session": 0.1}
        ),
        C.SCOPE_CHANGED,
        "capabilities.ai-rnd-acceleration.combine",
    ),
    (
        "evidence age extended",
        lambda r: r["evidence"].update(max_age="90d"),
        C.EVIDENCE_AGE_EXTENDED,
        "evidence.max_age",
    ),
    (
        "evidence age shortened",
        lambda r: r["evidence"].update(max_age="7d"),
        C.EVIDENCE_AGE_SHORTENED,
        "evidence.max_age",
    ),
    (
        "fewer approvals",
        lambda r: r["change_control"].update(loosening_approvals=1),
        C.CHANGE_CONTROL_WEAKENED,
        "change_control.loosening_approvals",
    ),
    (
        "more approvals",
        lambda r: r["change_control"].update(loosening_approvals=3),
        C.CHANGE_CONTROL_STRENGTHENED,
        "change_control.loosening_approvals",
    ),
    (
        "approver added",
        lambda r: (
            r["people"].append({"name": "dave", "keyid": "cd" * 32, "kind": "human"})
            or r["change_control"]["approvers"].append("dave")
        ),
        C.CHANGE_CONTROL_WEAKENED,
        "change_control.approvers",
    ),
    (
        "approver removed",
        lambda r: r["change_control"]["approvers"].remove("carol"),
        C.CHANGE_CONTROL_STRENGTHENED,
        "change_control.approvers",
    ),
    (
        "anyone may propose",
        lambda r: r["change_control"].update(proposers=[]),
        C.CHANGE_CONTROL_WEAKENED,
        "change_control.proposers",
    ),
    (
        "a class no longer counts as loosening",
        lambda r: r["change_control"].update(
            loosening=[c for c in sorted(LOOSENING_CLASSES) if c != C.THRESHOLD_LOOSENED]
        ),
        C.CHANGE_CONTROL_WEAKENED,
        "change_control.loosening",
    ),
    (
        "drift tolerance raised",
        lambda r: r["change_control"].update(drift_tolerance=0.1),
        C.CHANGE_CONTROL_WEAKENED,
        "change_control.drift_tolerance",
    ),
    ("approver's key swapped", _swap_person_key, C.CHANGE_CONTROL_WEAKENED, "people.alice"),
    (
        "action un-gated",
        lambda r: _lvl(r, "cyber-offense", "high")["gates"].remove("deploy-internal"),
        C.ACTION_UNGATED,
        "capabilities.cyber-offense.levels.high.gates",
    ),
    (
        "action gated",
        lambda r: _lvl(r, "cyber-offense", "high")["gates"].append("train-successor"),
        C.ACTION_GATED,
        "capabilities.cyber-offense.levels.high.gates",
    ),
    (
        "missing eval escalates instead of denying",
        lambda r: r["gate"].update(missing_eval="escalate"),
        C.GATE_WEAKENED,
        "gate.missing_eval",
    ),
    (
        "ancestor findings deny only at critical",
        lambda r: r["gate"].update(ancestor_fail_on="critical"),
        C.GATE_WEAKENED,
        "gate.ancestor_fail_on",
    ),
    (
        "ancestor findings deny at low",
        lambda r: r["gate"].update(ancestor_fail_on="low"),
        C.GATE_STRENGTHENED,
        "gate.ancestor_fail_on",
    ),
    ("renamed", lambda r: r.update(name="renamed"), C.OTHER, "name"),
    (
        "suite label renamed",
        lambda r: _cap(r)["eval"].update(suite="ctf-v3"),
        C.OTHER,
        "capabilities.cyber-offense.eval.suite",
    ),
    (
        "new human key widens sign-off",
        lambda r: r["people"].append({"name": "eve", "keyid": "ef" * 32, "kind": "human"}),
        C.SAFEGUARD_WEAKENED,
        "people.eve",
    ),
    (
        "agent relabelled human",
        lambda r: r["people"][3].update(kind="human"),
        C.SAFEGUARD_WEAKENED,
        "people.loop-agent",
    ),
    (
        "new agent key",
        lambda r: r["people"].append({"name": "bot2", "keyid": "bb" * 32, "kind": "agent"}),
        C.OTHER,
        "people.bot2",
    ),
]


@pytest.mark.parametrize(("mutate", "cls", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_change_classes(example_raw: Raw, mutate: Callable[[Raw], None], cls: ChangeClass, path: str) -> None:
    old = parse_policy(example_raw, source="old")
    raw = clone(example_raw)
    mutate(raw)
    new = parse_policy(raw, source="new")
    d = diff_policies(old, new)
    hits = [c for c in d.changes if c.change_class is cls and c.path.startswith(path)]
    assert hits, [c.to_json() for c in d.changes]
    for c in hits:
        assert c.loosening == (cls in LOOSENING_CLASSES)
        assert c.needs_approval == (cls in LOOSENING_CLASSES)  # the example counts every loosening class
    assert d.needs_approval == any(c.change_class in LOOSENING_CLASSES for c in d.changes)


def test_every_change_class_is_exercised() -> None:
    covered = {c[2] for c in CASES}
    assert covered == set(ChangeClass)


def test_identical_versions_have_no_changes(example_raw: Raw) -> None:
    p = parse_policy(example_raw, source="p")
    assert diff_policies(p, p).changes == ()


def test_old_change_control_decides_what_needs_approval(example_raw: Raw) -> None:
    """A version that loosens a threshold and at the same time stops counting that as loosening still needs
    it."""
    old = parse_policy(example_raw, source="old")
    raw = clone(example_raw)
    _lvl(raw, "cyber-offense", "high")["threshold"] = 0.5
    raw["change_control"]["loosening"] = [c for c in sorted(LOOSENING_CLASSES) if c != C.THRESHOLD_LOOSENED]
    d = diff_policies(old, parse_policy(raw, source="new"))
    t = next(c for c in d.changes if c.change_class is C.THRESHOLD_LOOSENED)
    assert t.needs_approval


def test_excluded_class_does_not_need_approval(example_raw: Raw) -> None:
    base = clone(example_raw)
    base["change_control"]["loosening"] = [c for c in sorted(LOOSENING_CLASSES) if c != C.EVAL_SUITE_SWAPPED]
    old = parse_policy(base, source="old")
    raw = clone(base)
    _cap(raw)["eval"]["suite_digest"] = "sha256:" + "2" * 64
    d = diff_policies(old, parse_policy(raw, source="new"))
    (c,) = d.changes
    assert c.change_class is C.EVAL_SUITE_SWAPPED
    assert c.loosening
    assert not c.needs_approval
    assert not d.needs_approval
