"""loopwarden gate ARTIFACT --action ACTION — allow / deny / escalate, with every reason, recorded signed.

Exit codes: 0 allow; 1 deny or escalate; 2 usage or environment error (bad policy file, unknown artifact).
"""

from __future__ import annotations

import argparse

from loopwarden._cli._common import emit_json, out, workspace

_ACTIONS = ("promote", "deploy-internal", "continue-training", "train-successor")


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "artifact", metavar="ARTIFACT", help="a digest ALGO:HEX (or a unique prefix), or a path"
    )
    parser.add_argument(
        "--action", required=True, choices=_ACTIONS, help="what the artifact is to be allowed"
    )
    parser.add_argument(
        "--policy", metavar="FILE", help="policy file (default: [paths] policy in loopwarden.toml)"
    )
    parser.add_argument("--now", metavar="TIME", help="decide as of this RFC 3339 time (default: now)")
    parser.add_argument("--no-record", action="store_true", help="do not append the decision to the ledger")


def run(args: argparse.Namespace) -> int:
    from loopwarden.policy.evidence import parse_time
    from loopwarden.policy.gate import gate_artifact

    ws = workspace(args)
    now = parse_time(args.now, source="--now") if args.now else None
    result = gate_artifact(
        ws, args.artifact, args.action, policy_file=args.policy, now=now, record=not args.no_record
    )
    if args.json:
        emit_json(result.to_json())
    else:
        d = result.decision
        out(f"{str(d.outcome).upper()}: {args.action} {result.artifact} under policy {result.policy}")
        for r in d.reasons:
            out(f"  [{r.outcome}] {r.rule_id} {r.severity}: {r.message}")
        if result.ledger_index is not None:
            out(f"decision recorded as ledger entry {result.ledger_index}")
    return result.decision.exit_code()
