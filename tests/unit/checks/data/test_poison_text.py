"""Unicode analysis of the poisoning scan: invisible characters kept as tokens, legitimate uses not flagged,
homoglyph words found, bilingual text left alone.

Background: Trojan Source (CVE-2021-42574, https://trojansource.codes/) for bidi overrides; "ASCII smuggling"
with Unicode tag characters
(https://embracethered.com/blog/posts/2024/hiding-and-finding-text-with-unicode-tags/).
"""

# ruff: noqa: RUF001  # look-alike letters are the test data

from __future__ import annotations

import pytest

from loopwarden.checks.data.poison._text import (
    BIDI,
    TAG,
    VARIATION,
    ZERO_WIDTH,
    confusable_words,
    escape,
    hidden_chars,
    ngrams,
    tokenize,
)


def test_invisible_characters_are_tokens_not_stripped() -> None:
    toks = tokenize("Hello\u200bWorld, please \u202eact\u202c now")
    assert "\u200b" in toks
    assert "\u202e" in toks
    assert "\u202c" in toks
    assert "hello" in toks
    assert "world" in toks


def test_tag_run_and_selector_run_are_one_token_each() -> None:
    smuggled = "".join(chr(0xE0000 + ord(c)) for c in "rm -rf")
    toks = tokenize(f"ok {smuggled} fine x\ufe0f\ufe0e\ufe0f")
    assert smuggled in toks
    assert "\ufe0f\ufe0e\ufe0f" in toks


def test_ascii_tokenizer_lowercases_and_drops_punctuation() -> None:
    assert tokenize("Don't STOP, ok?") == ["don't", "stop", "ok"]


def test_ngrams_up_to_four() -> None:
    grams = ngrams(["a", "b", "c", "d", "e"], 4)
    assert "a b c d" in grams
    assert "a b c d e" not in grams
    assert "c" in grams


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("pay\u200bpal", ZERO_WIDTH),
        ("soft\u00adhyphen", ZERO_WIDTH),
        ("word \u2060 joiner", ZERO_WIDTH),
        ("mid\ufefftext", ZERO_WIDTH),
        ("abc \u202eevil\u202c", BIDI),
        ("plain english \u200f with a stray RLM", BIDI),
        ("tags " + "".join(chr(0xE0000 + ord(c)) for c in "hi"), TAG),
        ("letter a\ufe0f", VARIATION),
        ("smuggle \U0001f600\ufe0f\U000e0101\U000e0102", VARIATION),
    ],
)
def test_suspicious_invisibles_are_reported(text: str, kind: str) -> None:
    assert kind in {h.kind for h in hidden_chars(text)}


@pytest.mark.parametrize(
    "text",
    [
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467 emoji",  # ZWJ emoji sequence
        "rainbow flag \U0001f3f3\ufe0f\u200d\U0001f308",
        "heart \u2764\ufe0f",  # emoji presentation selector
        # England: a subdivision flag made of tag characters
        "England \U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f",
        "\ufeffBOM at the very start",
        "می\u200cخواهم",  # Persian ZWNJ between letters
        "क्\u200dष",  # Devanagari ZWJ
        "Hebrew \u05e9\u05dc\u05d5\u05dd \u200e mixed",  # LRM in text with right-to-left letters
        "plain ascii text",
        "café naïve résumé",
    ],
)
def test_legitimate_uses_are_not_reported(text: str) -> None:
    assert hidden_chars(text) == []


def test_homoglyph_word_mixed_with_latin() -> None:
    found = confusable_words("please log in to p\u0430ypal now")
    assert [w.skeleton for w in found] == ["paypal"]
    assert "\\u0430" in found[0].escaped
    assert found[0].scripts == ("CYRILLIC", "LATIN")


def test_whole_word_of_lookalikes_inside_latin_text() -> None:
    found = confusable_words("this is a long english sentence and then \u0440\u0430\u0443 here")
    assert [w.skeleton for w in found] == ["pay"]


@pytest.mark.parametrize(
    "text",
    [
        "Привет, как дела? I am fine, thank you.",  # bilingual: each word in one script
        "Мы говорим по-русски и немного по-английски: hello world",
        "Καλημέρα! Good morning.",
        "東京 is the capital",
    ],
)
def test_bilingual_text_is_not_homoglyph(text: str) -> None:
    assert confusable_words(text) == []


def test_escape_is_readable() -> None:
    assert escape("a\u200bb") == "a<U+200B ZWSP>b"
    assert escape("\u202e") == "<U+202E RLO>"
    assert escape(chr(0xE0041)) == "<TAG 'A'>"
    assert escape("p\u0430y") == "p\\u0430y"
