"""Every rule a layer defines is in the registry (so SARIF carries its metadata) and documented once."""

from __future__ import annotations

import re
from pathlib import Path

from loopwarden.rules import all_rules

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_every_registered_rule_is_documented_in_rules_md() -> None:
    text = DOC.read_text(encoding="utf-8")
    rules = all_rules()
    assert {r[:7] for r in rules} >= {"LW-CORE", "LW-MODE", "LW-DATA", "LW-SIGN", "LW-LOOP"}
    missing = [rid for rid in rules if not re.search(rf"\b{re.escape(rid)}\b", text)]
    assert missing == []


def test_rule_ids_are_unique_and_well_formed() -> None:
    for rid, rule in all_rules().items():
        assert rule.rule_id == rid
        assert re.fullmatch(r"LW-[A-Z]+-\d{3}", rid)
        assert rule.title
