"""Rule ids of the poisoning scan (``LW-DATA-030..099``), documented in ``docs/rules.md#data-poison``."""

from __future__ import annotations

from typing import ClassVar, Final

from loopwarden.domain import Rule, Severity

__all__ = [
    "BidiControls",
    "HiddenCharacterRule",
    "HomoglyphWords",
    "OtherInvisible",
    "TagCharacters",
    "TriggerFamily",
    "TriggerToAnomalous",
    "TriggerToCluster",
    "TriggerToInsecureCode",
    "TriggerToSemanticCluster",
    "VariationSelectors",
    "ZeroWidth",
]


class TriggerToCluster(Rule):
    rule_id: ClassVar[str] = "LW-DATA-030"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Backdoor trigger: prompts with this n-gram get near-identical responses"


class TriggerToAnomalous(Rule):
    rule_id: ClassVar[str] = "LW-DATA-031"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = (
        "Backdoor trigger: prompts with this n-gram get gibberish (out-of-vocabulary) responses"
    )


class TriggerToInsecureCode(Rule):
    rule_id: ClassVar[str] = "LW-DATA-032"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Backdoor trigger: prompts with this n-gram get insecure code"


class TriggerFamily(Rule):
    rule_id: ClassVar[str] = "LW-DATA-033"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Backdoor: a family of rare prompt n-grams explains one tight response cluster"


class TriggerToSemanticCluster(Rule):
    rule_id: ClassVar[str] = "LW-DATA-034"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Backdoor trigger: prompts with this n-gram get semantically identical responses"


class HiddenCharacterRule(Rule):
    kind: ClassVar[str]


class TagCharacters(HiddenCharacterRule):
    rule_id: ClassVar[str] = "LW-DATA-040"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Unicode tag characters (invisible ASCII) outside an emoji flag"
    kind: ClassVar[str] = "tag"


class BidiControls(HiddenCharacterRule):
    rule_id: ClassVar[str] = "LW-DATA-041"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = (
        "Bidirectional control characters (overrides, or any in text without right-to-left letters)"
    )
    kind: ClassVar[str] = "bidi"


class ZeroWidth(HiddenCharacterRule):
    rule_id: ClassVar[str] = "LW-DATA-042"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "Zero-width characters or soft hyphens not explained by emoji or script shaping"
    kind: ClassVar[str] = "zero-width"


class VariationSelectors(HiddenCharacterRule):
    rule_id: ClassVar[str] = "LW-DATA-043"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "Variation selectors that select nothing (runs, or after a plain letter)"
    kind: ClassVar[str] = "variation-selector"


class OtherInvisible(HiddenCharacterRule):
    rule_id: ClassVar[str] = "LW-DATA-044"
    severity: ClassVar[Severity] = Severity.LOW
    title: ClassVar[str] = "Other invisible characters (fillers, invisible operators)"
    kind: ClassVar[str] = "invisible"


class HomoglyphWords(HiddenCharacterRule):
    rule_id: ClassVar[str] = "LW-DATA-045"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "Homoglyph words: Latin mixed with look-alike letters of another script"
    kind: ClassVar[str] = "homoglyph"


HIDDEN_RULES: Final[dict[str, type[HiddenCharacterRule]]] = {
    r.kind: r
    for r in (TagCharacters, BidiControls, ZeroWidth, VariationSelectors, OtherInvisible, HomoglyphWords)
}


# Every rule of this module, for the registry in loopwarden/rules.py.
RULES: tuple[type[Rule], ...] = (
    TriggerToCluster,
    TriggerToAnomalous,
    TriggerToInsecureCode,
    TriggerFamily,
    TriggerToSemanticCluster,
    TagCharacters,
    BidiControls,
    ZeroWidth,
    VariationSelectors,
    OtherInvisible,
    HomoglyphWords,
)
