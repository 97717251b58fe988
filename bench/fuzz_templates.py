"""Differential fuzzing of the chat-template analysis against the real renderer.

Generated templates (tests/corpus/_template_oracle.py) compute an internal attribute name in many spellings and
carry it through jinja's value flows to a lookup; each is rendered by a plain ``jinja2.Environment`` whose lookups
stop at the first internal attribute it would read, and analysed by ``check_template``. Reported:
  walked      the renderer reached an internal attribute
  missed      ... and the analysis reported nothing at high or above (a bypass)
  crashes     the analysis raised
  slowest     the longest analysis of one template
Run: `python bench/fuzz_templates.py [--inputs N] [--jobs N] [--seed S]`. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests" / "corpus"))


def work(args: tuple[int, int]) -> dict[str, Any]:
    from _template_oracle import TemplateProgram, probe, reaches

    from loopwarden.checks.interface import Limits
    from loopwarden.checks.models._base import ScanContext
    from loopwarden.checks.models.chat_template import check_template
    from loopwarden.domain import Location, Severity

    seed, n = args
    rng = random.Random(seed)
    env = probe()
    out: dict[str, Any] = {
        "inputs": 0,
        "walked": 0,
        "plain": 0,
        "render_errors": 0,
        "missed": 0,
        "crashes": 0,
    }
    examples: list[str] = []
    slowest = 0.0
    for _ in range(n):
        template = TemplateProgram(rng).template()
        out["inputs"] += 1
        verdict = reaches(env, template)
        key = {True: "walked", False: "plain", None: "render_errors"}[verdict]
        out[key] += 1
        t0 = time.perf_counter()
        try:
            ctx = ScanContext("t", Limits(), None)
            check_template(template, ctx, Location("t"))
        except Exception:
            out["crashes"] += 1
            examples.append("crash: " + traceback.format_exc()[-400:])
            continue
        slowest = max(slowest, time.perf_counter() - t0)
        worst = max((f.severity for f in ctx.findings), default=None)
        if verdict and not ctx.unverified and (worst is None or worst < Severity.HIGH):
            out["missed"] += 1
            if len(examples) < 5:
                examples.append("missed: " + template)
    out["slowest_seconds"] = slowest
    out["examples"] = examples
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=20000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=18)
    args = ap.parse_args()
    per = [args.inputs // args.jobs + (i < args.inputs % args.jobs) for i in range(args.jobs)]
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
        parts = pool.map(work, [(args.seed + i, n) for i, n in enumerate(per)])
    seconds = time.perf_counter() - t0
    total: dict[str, Any] = {}
    for p in parts:
        for k, v in p.items():
            if k == "examples":
                total.setdefault(k, []).extend(v)
            elif k == "slowest_seconds":
                total[k] = max(total.get(k, 0.0), v)
            else:
                total[k] = total.get(k, 0) + v
    for e in total.pop("examples", [])[:10]:
        print(e)
    print(
        f"{total['inputs']} templates in {seconds:.1f} s: {total['walked']} walk when rendered, "
        f"{total['missed']} of them scanned below high, {total['crashes']} analysis crashes, "
        f"{total['render_errors']} fail to render"
    )
    total["seconds"] = round(seconds, 1)
    total["slowest_seconds"] = round(total["slowest_seconds"], 4)
    print(json.dumps(total, sort_keys=True))
    return 1 if total["missed"] or total["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
