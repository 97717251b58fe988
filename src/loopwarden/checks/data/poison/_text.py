"""Text analysis for the poisoning scan: tokens, invisible characters and confusable (homoglyph) words.

Nothing is stripped: invisible format characters, bidi controls, Unicode tag characters and variation
selectors are kept as tokens of their own (a run of tag characters or of variation selectors is one token), so
that a trigger made of them is found like any other trigger. ``unicodedata`` is the only Unicode source; the
confusables map below is a hand-written subset of Unicode's confusables for the scripts that are used to spoof
Latin (Cyrillic, Greek, Armenian, Cherokee letters, fullwidth forms via NFKC).
"""

# ruff: noqa: RUF001  # the confusables table holds look-alike letters on purpose

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Final

__all__ = [
    "ConfusableWord",
    "HiddenChar",
    "confusable_words",
    "escape",
    "hidden_chars",
    "ngrams",
    "tokenize",
]

# Kinds of invisible characters. Each is its own rule (see rules.py).
TAG: Final = "tag"
BIDI: Final = "bidi"
ZERO_WIDTH: Final = "zero-width"
VARIATION: Final = "variation-selector"
INVISIBLE: Final = "invisible"

_BIDI: Final = frozenset(
    {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}
)  # ALM, LRM, RLM, LRE RLE PDF LRO RLO, LRI RLI FSI PDI
_BIDI_OVERRIDES: Final = frozenset(
    {0x202D, 0x202E}
)  # LRO, RLO: reorder what is displayed, never needed in text
_ZERO_WIDTH: Final = frozenset({0x00AD, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E})
_OTHER_INVISIBLE: Final = frozenset(
    {
        0x034F,
        0x115F,
        0x1160,
        0x17B4,
        0x17B5,
        0x2061,
        0x2062,
        0x2063,
        0x2064,
        0x3164,
        0xFFA0,
        *range(0x206A, 0x2070),
    }
)

_SHORT_NAMES: Final = {
    0x00AD: "SHY",
    0x200B: "ZWSP",
    0x200C: "ZWNJ",
    0x200D: "ZWJ",
    0x2060: "WJ",
    0xFEFF: "BOM",
    0x180E: "MVS",
    0x061C: "ALM",
    0x200E: "LRM",
    0x200F: "RLM",
    0x202A: "LRE",
    0x202B: "RLE",
    0x202C: "PDF",
    0x202D: "LRO",
    0x202E: "RLO",
    0x2066: "LRI",
    0x2067: "RLI",
    0x2068: "FSI",
    0x2069: "PDI",
}


def char_kind(ch: str) -> str | None:
    """The invisible-character kind of ``ch``, or None for a visible character."""
    cp = ord(ch)
    if 0xE0000 <= cp <= 0xE007F:
        return TAG
    if 0xFE00 <= cp <= 0xFE0F or 0xE0100 <= cp <= 0xE01EF:
        return VARIATION
    if cp in _BIDI:
        return BIDI
    if cp in _ZERO_WIDTH:
        return ZERO_WIDTH
    if cp in _OTHER_INVISIBLE or (0x1D173 <= cp <= 0x1D17A):
        return INVISIBLE
    return None


def _char_class(lo: int, hi: int | None = None) -> str:
    return f"\\U{lo:08X}" if hi is None else f"\\U{lo:08X}-\\U{hi:08X}"


_ONE_INVISIBLE: Final = "".join(
    _char_class(cp) for cp in sorted(_BIDI | _ZERO_WIDTH | _OTHER_INVISIBLE)
) + _char_class(0x1D173, 0x1D17A)
_TOKEN_RE: Final = re.compile(
    "[" + _char_class(0xE0000, 0xE007F) + "]+"
    "|[" + _char_class(0xFE00, 0xFE0F) + _char_class(0xE0100, 0xE01EF) + "]+"
    "|[" + _ONE_INVISIBLE + "]"
    r"|\w+(?:'\w+)*"
    r"|[^\w\s\x00-\x7f]"
)
_ASCII_WORD_RE: Final = re.compile(r"\w+(?:'\w+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; each invisible character (or run of tags/selectors) is a token of its own."""
    low = text.lower()
    if low.isascii():
        return _ASCII_WORD_RE.findall(low)
    return _TOKEN_RE.findall(low)


def ngrams(tokens: list[str], max_n: int = 4) -> set[str]:
    """The distinct 1..max_n-grams of ``tokens``, joined by a space."""
    out = set(tokens)
    n_tok = len(tokens)
    for n in range(2, max_n + 1):
        for i in range(n_tok - n + 1):
            out.add(" ".join(tokens[i : i + n]))
    return out


def escape(text: str) -> str:
    """A readable form: invisible characters become ``<U+200B ZWSP>``, non-ASCII letters ``\\u0430``."""
    parts: list[str] = []
    for ch in text:
        cp = ord(ch)
        kind = char_kind(ch)
        if kind is not None:
            if kind == TAG and 0xE0020 <= cp <= 0xE007E:
                parts.append(f"<TAG {chr(cp - 0xE0000)!r}>")
            else:
                name = _SHORT_NAMES.get(cp) or unicodedata.name(ch, "").replace(" ", "-") or "?"
                parts.append(f"<U+{cp:04X} {name}>")
        elif cp < 0x80 or not ch.isalpha():
            parts.append(ch)
        else:
            parts.append(f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}")
    return "".join(parts)


# --- scripts and confusables
# ---------------------------------------------------------------------------------

# Letters of other scripts that render like Latin letters (subset of Unicode confusables.txt, by hand).
_CONFUSABLE_TO_LATIN: Final = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "ѕ": "s", "і": "i",
    "ј": "j", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w", "ү": "y", "ɡ": "g", "ь": "b", "п": "n",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "Х": "X", "У": "Y", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y", "Ӏ": "I",
    # Greek
    "α": "a", "ο": "o", "ρ": "p", "ν": "v", "ι": "i", "κ": "k", "τ": "t", "υ": "u", "χ": "x", "ε": "e",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Armenian and Cherokee letters used in spoofing
    "օ": "o", "ս": "u", "հ": "h", "ց": "g", "ո": "n", "Ꭺ": "A", "Ꭼ": "E", "Ꮋ": "H", "Ꭲ": "T", "Ꮯ": "C",
}  # fmt: skip

_SCRIPT_CACHE: dict[str, str] = {}


def script_of(ch: str) -> str:
    """The script of a letter, from its Unicode name's first word (LATIN, CYRILLIC, GREEK, ...)."""
    cached = _SCRIPT_CACHE.get(ch)
    if cached is not None:
        return cached
    name = unicodedata.name(ch, "")
    script = name.split(" ", 1)[0] if name else "UNKNOWN"
    if script in {"FULLWIDTH", "MATHEMATICAL"}:
        script = "LATIN-LOOKALIKE" if unicodedata.normalize("NFKC", ch).isascii() else script
    if len(_SCRIPT_CACHE) < 65536:
        _SCRIPT_CACHE[ch] = script
    return script


@dataclass(frozen=True, slots=True)
class ConfusableWord:
    """A word that mixes Latin with look-alike letters of another script (or spells a Latin word in them)."""

    word: str
    skeleton: str
    """The Latin word it imitates."""
    scripts: tuple[str, ...]

    @property
    def escaped(self) -> str:
        return escape(self.word)


_WORD_RE: Final = re.compile(r"\w+")


def confusable_words(text: str) -> list[ConfusableWord]:
    """Homoglyph words: Latin mixed with confusable letters of another script, or a whole word of confusables
    in a text that is otherwise Latin. Single-script words of a legitimately bilingual text are not
    reported."""
    if text.isascii():
        return []
    out: list[ConfusableWord] = []
    latin_letters = 0
    other_letters = 0
    whole: list[tuple[str, str, tuple[str, ...]]] = []
    for m in _WORD_RE.finditer(text):
        word = m.group()
        if word.isascii():
            latin_letters += sum(c.isalpha() for c in word)
            continue
        scripts: set[str] = set()
        n_alpha = 0
        n_confusable = 0
        for ch in word:
            if not ch.isalpha():
                continue
            n_alpha += 1
            if ch.isascii():
                scripts.add("LATIN")
                continue
            sc = script_of(ch)
            scripts.add(sc)
            if ch in _CONFUSABLE_TO_LATIN or sc == "LATIN-LOOKALIKE":
                n_confusable += 1
        if "LATIN" in scripts:
            latin_letters += n_alpha
        else:
            other_letters += n_alpha
        non_latin = scripts - {"LATIN"}
        if not non_latin or n_confusable == 0:
            continue
        skeleton = "".join(
            _CONFUSABLE_TO_LATIN.get(ch) or unicodedata.normalize("NFKC", ch) if not ch.isascii() else ch
            for ch in word
        )
        if "LATIN" in scripts and (
            non_latin <= {"LATIN-LOOKALIKE"} or n_confusable == n_alpha - _ascii(word)
        ):
            # Latin letters mixed with look-alikes only: the classic homoglyph spoof.
            out.append(ConfusableWord(word, skeleton, tuple(sorted(scripts))))
        elif "LATIN" not in scripts and n_confusable == n_alpha and n_alpha >= 3:
            whole.append((word, skeleton, tuple(sorted(scripts))))
    # A whole word of look-alikes counts only inside a text that is overwhelmingly Latin.
    if whole and latin_letters >= 9 * max(other_letters, 1):
        out.extend(ConfusableWord(w, s, sc) for w, s, sc in whole)
    return out


def _ascii(word: str) -> int:
    return sum(1 for c in word if c.isascii() and c.isalpha())


# --- hidden characters
# -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HiddenChar:
    """An invisible character that no legitimate use explains, at ``offset`` (in characters)."""

    kind: str
    offset: int
    text: str

    @property
    def escaped(self) -> str:
        return escape(self.text)


def _is_pictographic(ch: str) -> bool:
    cp = ord(ch)
    if 0x1F000 <= cp <= 0x1FAFF or 0x2600 <= cp <= 0x27BF or 0x1F3FB <= cp <= 0x1F3FF:
        return True
    return unicodedata.category(ch) == "So"


# Scripts where ZWJ / ZWNJ shape letters (Arabic, Persian, Indic, Sinhala, ...): legitimate inside words.
_JOINING_SCRIPTS: Final = frozenset(
    {
        "ARABIC",
        "SYRIAC",
        "DEVANAGARI",
        "BENGALI",
        "GURMUKHI",
        "GUJARATI",
        "ORIYA",
        "TAMIL",
        "TELUGU",
        "KANNADA",
        "MALAYALAM",
        "SINHALA",
        "MONGOLIAN",
        "NKO",
        "KHMER",
        "MYANMAR",
    }
)
_RTL_SCRIPTS: Final = frozenset({"ARABIC", "HEBREW", "SYRIAC", "THAANA", "NKO"})


def _base_before(text: str, i: int) -> str:
    """The visible character before position ``i``, skipping selectors and skin-tone modifiers."""
    j = i - 1
    while j >= 0 and (char_kind(text[j]) == VARIATION or 0x1F3FB <= ord(text[j]) <= 0x1F3FF):
        j -= 1
    return text[j] if j >= 0 else ""


def hidden_chars(text: str) -> list[HiddenChar]:
    """Invisible characters not explained by a legitimate use.

    Legitimate and therefore not reported: ZWJ inside emoji sequences; ZWJ/ZWNJ between letters of scripts
    that need them; LRM/RLM/ALM and isolates in text that has right-to-left letters; one variation selector
    after an emoji, a symbol or a CJK ideograph; a BOM at the very start; the tag characters of an emoji
    subdivision flag (U+1F3F4 followed by tag letters and CANCEL TAG).
    """
    if text.isascii():
        return []
    out: list[HiddenChar] = []
    has_rtl: bool | None = None
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        kind = char_kind(ch)
        if kind is None:
            i += 1
            continue
        j = i + 1
        if kind in {TAG, VARIATION}:
            while j < n and char_kind(text[j]) == kind:
                j += 1
        run = text[i:j]
        legit = False
        cp = ord(ch)
        if kind == TAG:
            legit = (
                _base_before(text, i) == "\U0001f3f4"
                and run.endswith("\U000e007f")
                and all(0xE0030 <= ord(c) <= 0xE0039 or 0xE0061 <= ord(c) <= 0xE007A for c in run[:-1])
            )
        elif kind == VARIATION:
            base = _base_before(text, i)
            legit = (
                len(run) == 1
                and bool(base)
                and (
                    _is_pictographic(base)
                    or script_of(base) in {"CJK", "DIGIT"}
                    or base in "#*"
                    or unicodedata.category(base).startswith("S")
                )
            )
        elif cp in {0x200D, 0x200C}:
            before = _base_before(text, i)
            after = text[j] if j < n else ""
            if cp == 0x200D and before and after and _is_pictographic(before) and _is_pictographic(after):
                legit = True
            elif before and after and _letter_or_mark(before) and _letter_or_mark(after):
                legit = script_of(before) in _JOINING_SCRIPTS or script_of(after) in _JOINING_SCRIPTS
        elif cp == 0xFEFF:
            legit = i == 0
        elif kind == BIDI and cp not in _BIDI_OVERRIDES:
            if has_rtl is None:
                has_rtl = any(c.isalpha() and script_of(c) in _RTL_SCRIPTS for c in text if not c.isascii())
            legit = has_rtl
        elif cp == 0x00AD:
            # A soft hyphen inside a long word is a hyphenation hint.
            legit = (
                i > 0
                and j < n
                and text[i - 1].isalpha()
                and text[j].isalpha()
                and not text.isascii()
                and (_word_len(text, i) >= 12)
            )
        if not legit:
            out.append(HiddenChar(kind, i, run))
        i = j
    return out


def _letter_or_mark(ch: str) -> bool:
    return ch.isalpha() or unicodedata.category(ch).startswith("M")


def _word_len(text: str, i: int) -> int:
    a = i
    while a > 0 and (text[a - 1].isalpha() or text[a - 1] == "\u00ad"):
        a -= 1
    b = i
    while b < len(text) and (text[b].isalpha() or text[b] == "\u00ad"):
        b += 1
    return b - a
