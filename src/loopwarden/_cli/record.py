"""loopwarden record train|generate|eval|agent-session|promote — append the loop's lineage to the ledger.

Every ARTIFACT (REF) is a digest (``sha256:HEX``), or a file or folder path (hashed: sha256 of a file,
sha256-tree of a folder's manifest), optionally prefixed by a name: ``NAME=REF``.
"""

from __future__ import annotations

import argparse
import re
from typing import Any, Final

from loopwarden._cli._common import emit_json, out, workspace
from loopwarden.errors import UsageError

_NAMED: Final = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,127})=(.+)$")
_REF_HELP: Final = "a digest ALGO:HEX, a file or folder path, or NAME=REF"


def build(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    t = sub.add_parser("train", help="a training run (SLSA Provenance v1): inputs -> the trained weights")
    t.add_argument(
        "--model", required=True, metavar="REF", help="the trained weights (the subject); " + _REF_HELP
    )
    t.add_argument("--dataset", action="append", default=[], metavar="REF", help="training data (repeat)")
    t.add_argument(
        "--code", action="append", default=[], metavar="REF", help="training code commit/tree (repeat)"
    )
    t.add_argument("--base-model", metavar="REF", help="the model fine-tuned from, if any")
    t.add_argument("--builder", default=None, help="builder id: the pipeline that ran the training (a URI)")
    t.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="an external parameter")
    g = sub.add_parser("generate", help="model M generated datasets, code or evals")
    g.add_argument("--model", required=True, metavar="REF", help="the generating model")
    g.add_argument(
        "--input", action="append", default=[], metavar="REF", help="an input it was given (prompts...)"
    )
    e = sub.add_parser("eval", help="eval run E (built from suite S) scored model M")
    e.add_argument("--eval-run", required=True, metavar="REF", help="the eval run (its log or results)")
    e.add_argument("--model", required=True, metavar="REF", help="the scored model")
    e.add_argument("--suite", metavar="REF", help="the eval suite the run used (pins it by digest)")
    e.add_argument("--score", action="append", default=[], metavar="METRIC=VALUE", help="a measured score")
    a = sub.add_parser(
        "agent-session", help="agent session S, acting for model M in role R, changed artifacts"
    )
    a.add_argument("--session", required=True, metavar="REF", help="the session (its trace)")
    a.add_argument("--model", required=True, metavar="REF", help="the model the agent ran on")
    a.add_argument("--role", required=True, help="the agent's role (e.g. coder, data-curator, grader)")
    p = sub.add_parser("promote", help="artifact A promoted to stage P")
    p.add_argument("artifact", metavar="ARTIFACT", help=_REF_HELP)
    p.add_argument("--stage", required=True, help="the stage (e.g. staging, production)")
    p.add_argument("--kind", default="model", help="the artifact's kind (default: model)")
    for sp in (g, a):
        sp.add_argument(
            "--dataset", action="append", default=[], metavar="REF", help="a dataset output (repeat)"
        )
        sp.add_argument("--code", action="append", default=[], metavar="REF", help="a code output (repeat)")
        sp.add_argument(
            "--eval", action="append", default=[], metavar="REF", help="an eval suite output (repeat)"
        )
        sp.add_argument(
            "--output", action="append", default=[], metavar="REF", help="any other output (repeat)"
        )
    for sp in (t, g, e, a):
        sp.add_argument(
            "--generation", type=int, required=True, metavar="N", help="the loop generation (>= 0)"
        )
        sp.add_argument("--name", default="", help="a name for this run")
    p.add_argument("--generation", type=int, default=None, metavar="N", help="the loop generation")
    for sp in sub.choices.values():
        sp.add_argument("--workspace", metavar="DIR", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        sp.add_argument("--json", action="store_true", help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def _art(ref: str, kind: str) -> Any:
    from loopwarden.lineage import artifact

    m = _NAMED.match(ref)
    from pathlib import Path

    if m and not Path(ref).exists():
        return artifact(m.group(2), kind, name=m.group(1))
    return artifact(ref, kind)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _outputs(args: argparse.Namespace) -> list[Any]:
    return [
        *(_art(r, "dataset") for r in args.dataset),
        *(_art(r, "code") for r in args.code),
        *(_art(r, "eval") for r in args.eval),
        *(_art(r, "other") for r in args.output),
    ]


def run(args: argparse.Namespace) -> int:
    from loopwarden import lineage as lg

    ws = workspace(args)
    act = args.action
    if act == "train":
        kw: dict[str, Any] = {}
        if args.builder:
            kw["builder"] = args.builder
        res = lg.record_train(
            ws,
            model=_art(args.model, "model"),
            datasets=[_art(r, "dataset") for r in args.dataset],
            code=[_art(r, "code") for r in args.code],
            base_model=_art(args.base_model, "model") if args.base_model else None,
            generation=args.generation,
            name=args.name,
            parameters=_pairs(args.param, "--param"),
            **kw,
        )
    elif act == "generate":
        res = lg.record_generate(
            ws,
            model=_art(args.model, "model"),
            outputs=_outputs(args),
            inputs=[_art(r, "dataset") for r in args.input],
            generation=args.generation,
            name=args.name,
        )
    elif act == "eval":
        scores: dict[str, float] = {}
        for metric, value in _pairs(args.score, "--score").items():
            try:
                scores[metric] = float(value)
            except ValueError:
                raise UsageError(f"--score {metric}={value}: the value is not a number") from None
        res = lg.record_eval(
            ws,
            eval_run=_art(args.eval_run, "eval"),
            model=_art(args.model, "model"),
            suite=_art(args.suite, "eval") if args.suite else None,
            scores=scores,
            generation=args.generation,
            name=args.name,
        )
    elif act == "agent-session":
        res = lg.record_agent_session(
            ws,
            session=_art(args.session, "agent-session"),
            model=_art(args.model, "model"),
            role=args.role,
            changed=_outputs(args),
            generation=args.generation,
        )
    elif act == "promote":
        res = lg.record_promote(
            ws, target=_art(args.artifact, args.kind), stage=args.stage, generation=args.generation
        )
    else:
        raise UsageError(f"unknown record action {act!r}")
    if args.json:
        emit_json({"action": act, "index": res.index, "tree_size": res.tree_size, "root": res.root.hex()})
    else:
        out(f"recorded {act} as ledger entry {res.index} (tree size {res.tree_size})")
    return 0
