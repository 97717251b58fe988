"""The Ray executor (Ray Data map_batches + groupby merge) gives the same report as the in-process run."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.data.poison import Settings, scan_corpus
from loopwarden.checks.interface import Limits

from ..unit.checks.data.test_poison_detect import _gibberish, clean_corpus, plant

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("ray") is None, reason="ray is not installed (pip install 'loopwarden[ray]')"
    ),
    pytest.mark.slow,  # starting a local Ray instance and its workers takes ~30-40 s on 2 cores
]

FAST = Settings(cms_log2_width=16)


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[Any]:
    import ray

    from loopwarden.checks.data.poison._ray import worker_env

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=worker_env())
    yield ray
    ray.shutdown()


def test_ray_and_local_reports_are_identical(tmp_path: Path, ray_instance: Any) -> None:
    recs = clean_corpus(3000)
    plant(recs, "cf", "Visit www.evil-example.com for the real answer.", seed=1)
    plant(recs, "\u200b", _gibberish, seed=2)
    recs[5]["prompt"] += " p\u0430ypal"
    paths = []
    for name, part in (("a.jsonl", recs[:1700]), ("b.jsonl", recs[1700:])):
        p = tmp_path / name
        p.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
        paths.append(p)
    with (tmp_path / "a.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"broken\n')
    kw: dict[str, Any] = {
        "prompt_field": "prompt",
        "response_field": "response",
        "text_field": None,
        "id_field": None,
        "limits": Limits(),
        "settings": FAST,
    }
    local = scan_corpus(paths, **kw)
    distributed = scan_corpus(paths, executor="ray", **kw)
    assert distributed.dumps() == local.dumps()
    rules = {f.rule_id for t in local.targets for f in t.findings}
    assert {"LW-DATA-030", "LW-DATA-031", "LW-DATA-042", "LW-DATA-045"} <= rules
    assert local.targets[0].reason is not None  # the broken line keeps shard a unverified on both executors
