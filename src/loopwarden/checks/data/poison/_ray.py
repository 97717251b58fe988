"""The Ray executor (``loopwarden[ray]``): the same per-batch passes on Ray Data, merged by keyed shuffles.

* The shards are read by Ray tasks (``flat_map`` over the shard list), one row per document.
* Pass 1 is ``map_batches`` of :func:`pass1_batch`; the per-document features come back to the driver (a few
  dozen bytes per document), and the sketch contributions are ``(hash, count)`` rows merged by a keyed shuffle
  (``groupby(hash).sum``). A count-min sketch is linear, so the sketch built from the merged counts is exactly
  the one the in-process executor builds: both executors report the same findings.
* Pass 2 is ``map_batches`` of :func:`pass2_batch` with the merged response sketch and the candidate mask
  broadcast through the object store; its postings come back as ``(hash, document)`` rows.
* The association tests then run on the driver over the merged statistics (:func:`finish`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from loopwarden.checks.data.poison._corpus import (
    CorpusResult,
    Doc,
    Embedder,
    ShardSource,
    ShardState,
    finish,
)
from loopwarden.checks.data.poison._detect import build_classes
from loopwarden.checks.data.poison._passes import Settings, pass1_batch, pass2_batch
from loopwarden.checks.data.poison._sketch import U64, CountMin, MinHasher
from loopwarden.errors import CheckError

__all__ = ["run_ray", "worker_env"]


def _import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:  # the optional extra is missing
        raise CheckError(
            "the Ray executor needs the optional dependency 'ray'", hint="pip install 'loopwarden[ray]'"
        ) from exc
    return ray


def worker_env() -> dict[str, Any]:
    """A Ray runtime environment whose workers import this very copy of loopwarden."""
    import os
    from pathlib import Path

    import loopwarden

    root = str(Path(loopwarden.__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def _counts(hashes: U64) -> dict[str, npt.NDArray[Any]]:
    h, c = np.unique(hashes, return_counts=True)
    return {"h": h.astype(np.uint64), "c": c.astype(np.int64)}


def _rows_where(batch: Any, docs: bool) -> Any:
    keep = batch["local"] >= 0
    return batch[keep if docs else ~keep]


def _only_docs(batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    keep = batch["kind"] == "d"
    return {k: v[keep] for k, v in batch.items() if k not in {"kind", "h", "c"}}


def _only_counts(batch: dict[str, npt.NDArray[Any]], which: str) -> dict[str, npt.NDArray[Any]]:
    keep = batch["kind"] == which
    return {
        "h": np.asarray(batch["h"][keep], dtype=np.uint64),
        "c": np.asarray(batch["c"][keep], dtype=np.int64),
    }


def _sketch_from(rows: Any, settings: Settings) -> CountMin:
    cms = CountMin(settings.cms_log2_width, settings.cms_depth)
    cols = [c for c in rows.schema().names if c != "h"]
    for batch in rows.iter_batches(batch_format="numpy", batch_size=1 << 18):
        cms.add_counts(np.asarray(batch["h"], dtype=np.uint64), np.asarray(batch[cols[0]], dtype=np.int64))
    return cms


def run_ray(
    shards: Sequence[ShardSource],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    max_seconds: float = 600.0,
) -> CorpusResult:
    """Both passes on Ray Data (connects to a running Ray, or starts a local one)."""
    if embedder is not None:
        raise CheckError(
            "the embedding tier runs with the local executor only", hint="drop --embed or use local"
        )
    ray = _import_ray()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, runtime_env=worker_env())
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    sources = list(shards)
    src_ref = ray.put(sources)

    def read(row: dict[str, Any]) -> Iterator[dict[str, Any]]:
        src = ray.get(src_ref)[int(row["shard"])]
        local = 0
        for d in src.open():
            if isinstance(d, Doc):
                yield {
                    "shard": row["shard"],
                    "local": local,
                    "id": d.id,
                    "line": -1 if d.line is None else d.line,
                    "prompt": d.prompt,
                    "response": d.response,
                    "problem": "",
                    "fatal": False,
                }
                local += 1
            else:
                yield {
                    "shard": row["shard"],
                    "local": -1,
                    "id": "",
                    "line": -1,
                    "prompt": "",
                    "response": "",
                    "problem": d.message,
                    "fatal": d.fatal,
                }

    raw = ray.data.from_items([{"shard": i} for i in range(len(sources))]).flat_map(read).materialize()
    docs = raw.map_batches(_rows_where, fn_kwargs={"docs": True}, batch_format="pandas")
    hasher = MinHasher()

    def p1(batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        """Per-document feature rows (kind "d") and per-batch sketch contributions (kind "p"/"r")."""
        out = pass1_batch(list(batch["prompt"]), list(batch["response"]), hasher, settings.max_n)
        n_doc = len(out)
        hidden: list[list[list[str]]] = [[] for _ in range(n_doc)]
        for i, kind, ex in out.hidden:
            hidden[i].append([kind, ex])
        for i, ex, sk in out.confusable:
            hidden[i].append(["homoglyph", f"{ex} (looks like {sk!r})"])
        ph, pc = np.unique(out.prompt_grams, return_counts=True)
        rh, rc = np.unique(out.resp_terms, return_counts=True)
        n_extra = ph.size + rh.size

        def pad(a: npt.NDArray[Any], fill: Any = 0) -> npt.NDArray[Any]:
            return np.concatenate([a, np.full(n_extra, fill, dtype=a.dtype)])

        res: dict[str, npt.NDArray[Any]] = {
            "kind": np.asarray(["d"] * n_doc + ["p"] * ph.size + ["r"] * rh.size, dtype=object),
            "shard": pad(np.asarray(batch["shard"], dtype=np.int64)),
            "local": pad(np.asarray(batch["local"], dtype=np.int64)),
            "prefix": pad(out.prefix),
            "prompt_hash": pad(out.prompt_hash),
            "insecure": pad(out.insecure, False),
            "hidden": np.asarray([json.dumps(h) for h in hidden] + [""] * n_extra, dtype=object),
            "h": np.concatenate([np.zeros(n_doc, dtype=np.uint64), ph, rh]),
            "c": np.concatenate([np.zeros(n_doc, dtype=np.int64), pc.astype(np.int64), rc.astype(np.int64)]),
        }
        for b in range(out.band_keys.shape[1]):
            res[f"band{b}"] = pad(out.band_keys[:, b])
        return res

    bs = settings.batch_size
    p1_out = docs.map_batches(p1, batch_format="numpy", batch_size=bs).materialize()
    feats = p1_out.map_batches(_only_docs, batch_format="numpy").to_pandas()
    feats = feats.sort_values(["shard", "local"], kind="stable").reset_index(drop=True)
    parts = max(2, min(16, len(feats) // 20000 + 2))
    sketches = []
    for which in ("p", "r"):
        merged = (
            p1_out.map_batches(_only_counts, fn_kwargs={"which": which}, batch_format="numpy")
            .groupby("h", num_partitions=parts)
            .sum("c")
        )
        sketches.append(_sketch_from(merged, settings))
    prompt_cms, resp_cms = sketches

    states = [ShardState(s.path) for s in sources]
    for row in raw.map_batches(_rows_where, fn_kwargs={"docs": False}, batch_format="pandas").take_all():
        from loopwarden.checks.data.poison._corpus import Problem

        states[int(row["shard"])].problem(Problem(str(row["problem"]), bool(row["fatal"])))
    ids_lines = docs.select_columns(["shard", "local", "id", "line"]).to_pandas()
    ids_lines = ids_lines.sort_values(["shard", "local"], kind="stable")
    for s, grp in ids_lines.groupby("shard", sort=True):
        states[int(s)].ids = [str(x) for x in grp["id"]]
        states[int(s)].lines = [None if int(x) < 0 else int(x) for x in grp["line"]]
    offsets: list[int] = []
    total = 0
    for st in states:
        offsets.append(total)
        total += len(st.ids)
    n = total
    band_keys = np.stack([feats[f"band{b}"].to_numpy(dtype=np.uint64) for b in range(hasher.bands)], axis=1)
    prefix = feats["prefix"].to_numpy(dtype=np.uint64)
    prompt_hash = feats["prompt_hash"].to_numpy(dtype=np.uint64)
    insecure = feats["insecure"].to_numpy(dtype=np.bool_)
    shard_col = feats["shard"].to_numpy(dtype=np.int64)
    local_col = feats["local"].to_numpy(dtype=np.int64)
    gidx_all = np.asarray(offsets, dtype=np.int64)[shard_col] + local_col
    hidden: list[tuple[int, str, str]] = []
    for g, h in zip(gidx_all.tolist(), feats["hidden"].tolist(), strict=True):
        hidden.extend((g, kind, ex) for kind, ex in json.loads(h))

    table = build_classes(n, band_keys, prefix, insecure, settings)
    candidate = table.candidate_mask(n)
    cand_ref = ray.put(candidate)
    cms_ref = ray.put(resp_cms)
    off_ref = ray.put(np.asarray(offsets, dtype=np.int64))

    def p2(batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        offs = ray.get(off_ref)
        gidx = offs[batch["shard"].astype(np.int64)] + batch["local"].astype(np.int64)
        out = pass2_batch(
            list(batch["prompt"]),
            list(batch["response"]),
            gidx,
            ray.get(cand_ref)[gidx],
            ray.get(cms_ref),
            settings,
            n,
        )
        return {
            "kind": np.asarray(["a"] * gidx.size + ["p"] * out.gram.size, dtype=object),
            "doc": np.concatenate([gidx, out.doc]),
            "value": np.concatenate([out.anomalous.astype(np.uint64), out.gram]),
            "name": np.asarray(
                [""] * gidx.size + [out.names.get(int(h), "") for h in out.gram], dtype=object
            ),
        }

    rows = docs.map_batches(p2, batch_format="numpy", batch_size=bs).to_pandas()
    anom_rows = rows[rows["kind"] == "a"]
    anomalous = np.zeros(n, dtype=np.bool_)
    anomalous[anom_rows["doc"].to_numpy(dtype=np.int64)] = anom_rows["value"].to_numpy(dtype=np.uint64) != 0
    post = rows[rows["kind"] == "p"]
    post_gram = post["value"].to_numpy(dtype=np.uint64)
    post_doc = post["doc"].to_numpy(dtype=np.int64)
    names = dict(zip(post_gram.tolist(), post["name"].tolist(), strict=True))
    dets = finish(n, table, anomalous, [post_gram], [post_doc], names, prompt_cms, prompt_hash, settings)
    order = np.argsort(gidx_all, kind="stable")
    if not np.array_equal(gidx_all[order], np.arange(n)):
        raise CheckError("the Ray executor lost documents between the passes")
    return CorpusResult(states, offsets, dets, sorted(hidden))
