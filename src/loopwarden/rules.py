"""The rule registry: every rule class of every layer, by id, for renderers (SARIF) and docs.

Each layer keeps its rule classes in its own module and lists them in a ``RULES`` tuple. :func:`all_rules`
imports
those modules explicitly (no registration by import side effect), so adding a layer is one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import ClassVar, Final

from loopwarden.domain import Rule, Severity

__all__ = ["RULE_MODULES", "UnverifiedTarget", "all_rules", "rule_for"]


class UnverifiedTarget(Rule):
    """Synthetic rule used by renderers for a target that could not be fully analysed."""

    rule_id: ClassVar[str] = "LW-CORE-001"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Target could not be fully analysed (unverified)"
    help: ClassVar[str] = (
        "The input could not be read or analysed to the end (unknown or unsupported format, truncated data, "
        "a resource bound such as size, depth, decompression ratio or time). Loopwarden never reports such "
        "input as clean: inspect it by hand or raise the named bound in loopwarden.toml if the input is trusted."
    )


# module path -> the name of its tuple of rule classes. Modules that are optional (not yet written by a layer)
# are listed all the same: a missing module is an error, never silently skipped.
RULE_MODULES: Final[tuple[str, ...]] = (
    "loopwarden.checks.models.rules",
    "loopwarden.checks.data.poison.rules",
    "loopwarden.signing.rules",
    "loopwarden.lineage.findings",
    "loopwarden.policy.rules",
)


def all_rules() -> Mapping[str, type[Rule]]:
    """Every known rule class by id (the core rule plus each layer's ``RULES``)."""
    out: dict[str, type[Rule]] = {UnverifiedTarget.rule_id: UnverifiedTarget}
    for name in RULE_MODULES:
        module = importlib.import_module(name)
        for rule in module.RULES:
            if rule.rule_id in out and out[rule.rule_id] is not rule:
                raise RuntimeError(f"rule id {rule.rule_id} is defined twice ({name})")
            out[rule.rule_id] = rule
    return dict(sorted(out.items()))


def rule_for(rule_id: str) -> type[Rule] | None:
    """The rule class for ``rule_id``, or None if no layer defines it."""
    return all_rules().get(rule_id)
