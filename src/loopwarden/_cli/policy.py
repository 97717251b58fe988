"""loopwarden policy check|record|approve|show|audit|diff|trend|signoff|eval-result

Exit codes: 0 fine; 1 findings (check: never; diff: a loosening that needs approvals; audit/trend: chain
findings); 2 usage or environment error (a bad policy file names the file and the field).
"""

from __future__ import annotations

import argparse
from typing import Any

from loopwarden._cli._common import emit_json, out, workspace


def build(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = sub.add_parser("check", help="validate a policy file and print its digest")
    c.add_argument("file")
    r = sub.add_parser("record", help="append a policy file as the next version of the hash chain")
    r.add_argument("file")
    r.add_argument(
        "--proposer-key", metavar="KEY", help="the proposer's own private key (co-signs the record)"
    )
    r.add_argument("--now", metavar="TIME", help="recorded time (RFC 3339; default: now)")
    a = sub.add_parser("approve", help="an approver's signed approval of a recorded version")
    a.add_argument("version", help="version id or policy digest (sha256:…), or a policy file")
    a.add_argument("--key", required=True, metavar="KEY", help="the approver's own private key")
    a.add_argument("--note", default="")
    a.add_argument("--now", metavar="TIME")
    sub.add_parser("show", help="list the recorded versions and their approvals")
    sub.add_parser("audit", help="check the chain: forks, gaps, unapproved loosening, proposers, drift")
    d = sub.add_parser("diff", help="classify every change between two versions (files or recorded digests)")
    d.add_argument("old")
    d.add_argument("new")
    t = sub.add_parser("trend", help="per generation, how far each capability sits below its thresholds")
    t.add_argument("--policy", metavar="FILE", help="judge against this file (default: the recorded head)")
    s = sub.add_parser("signoff", help="a reviewer's signed sign-off on an artifact (two-person-signoff)")
    s.add_argument("artifact", help="digest ALGO:HEX")
    s.add_argument("--key", required=True, metavar="KEY", help="the reviewer's own private key")
    s.add_argument("--note", default="")
    s.add_argument("--now", metavar="TIME")
    e = sub.add_parser("eval-result", help="record a capability score (eval-result attestation)")
    e.add_argument("artifact", help="digest ALGO:HEX of the model or agent session scored")
    e.add_argument("--suite", required=True)
    e.add_argument("--suite-digest", required=True)
    e.add_argument("--metric", required=True)
    e.add_argument("--value", required=True, type=float)
    e.add_argument("--unverified", action="store_true", help="the score could not be verified")
    e.add_argument("--now", metavar="TIME")
    for sp in sub.choices.values():
        sp.add_argument("--workspace", metavar="DIR", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        sp.add_argument("--json", action="store_true", help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def _digest(text: str) -> Any:
    from loopwarden.domain import Digest
    from loopwarden.errors import UsageError

    try:
        return Digest.parse(text)
    except ValueError as exc:
        raise UsageError(f"{text}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from loopwarden.policy import chain as ch
    from loopwarden.policy.evidence import load_person_key, parse_time
    from loopwarden.policy.model import load_policy, policy_digest

    act = args.action
    now = parse_time(args.now, source="--now") if getattr(args, "now", None) else None
    if act == "check":
        p = load_policy(args.file)
        digest = policy_digest(p)
        if args.json:
            emit_json({"file": args.file, "name": p.name, "digest": str(digest)})
        else:
            out(f"{args.file}: valid policy {p.name!r}, digest {digest}")
        return 0
    if act == "diff":
        ws = _optional_workspace(args)
        from loopwarden.policy.diff import diff_policies

        result = diff_policies(ch.resolve_policy_ref(args.old, ws), ch.resolve_policy_ref(args.new, ws))
        if args.json:
            emit_json(result.to_json())
        else:
            for c in result.changes:
                tag = (
                    "LOOSENING (needs approval)" if c.needs_approval else "loosening" if c.loosening else "ok"
                )
                out(f"{c.change_class:<28} {tag:<27} {c.message}")
            out(f"{len(result.changes)} change(s), {len(result.loosening)} loosening")
        return 1 if result.needs_approval else 0
    ws = workspace(args)
    if act == "record":
        proposer = load_person_key(args.proposer_key) if args.proposer_key else None
        vid, res = ch.record_policy(ws, load_policy(args.file), proposer=proposer, now=now)
        if args.json:
            emit_json({"version": str(vid), "index": res.index})
        else:
            out(f"recorded policy version {vid} as ledger entry {res.index}")
        return 0
    if act == "approve":
        from pathlib import Path

        ref = args.version
        target = policy_digest(load_policy(ref)) if Path(ref).exists() else _digest(ref)
        res = ch.approve_policy(ws, target, load_person_key(args.key), note=args.note, now=now)
        if args.json:
            emit_json({"approved": str(target), "index": res.index})
        else:
            out(f"approval of {target} recorded as ledger entry {res.index}")
        return 0
    if act in ("show", "audit"):
        audit = ch.workspace_chain(ws)
        if args.json:
            emit_json(audit.to_json())
        else:
            for v in audit.versions:
                out(
                    f"#{v.ledger_index} version {v.version} policy {v.policy.name} {v.digest} "
                    f"approvals={len(v.approvals)}"
                )
            for f in audit.findings:
                out(f"  {f.rule_id} {f.severity}: {f.message}")
            if act == "audit":
                out("policy chain: " + ("ok" if audit.passed else f"{len(audit.findings)} finding(s)"))
        return 0 if act == "show" or audit.passed else 1
    if act == "trend":
        from loopwarden.policy.trend import workspace_trend

        rep = workspace_trend(ws, policy_file=args.policy, now=now)
        if args.json:
            emit_json(rep.to_json())
        else:
            _render_trend(rep)
        return 0 if not rep.findings else 1
    if act == "signoff":
        from loopwarden.policy.evidence import record_signoff

        res = record_signoff(ws, _digest(args.artifact), load_person_key(args.key), note=args.note, now=now)
        _done(args, "sign-off", res.index)
        return 0
    if act == "eval-result":
        from loopwarden.policy.evidence import record_eval_result

        res = record_eval_result(
            ws,
            _digest(args.artifact),
            suite=args.suite,
            suite_digest=_digest(args.suite_digest),
            metric=args.metric,
            value=args.value,
            recorded_at=now,
            verdict="unverified" if args.unverified else "clean",
        )
        _done(args, "eval result", res.index)
        return 0
    from loopwarden.errors import UsageError

    raise UsageError(f"unknown policy action {act!r}")


def _done(args: argparse.Namespace, what: str, index: int) -> None:
    if args.json:
        emit_json({"index": index})
    else:
        out(f"{what} recorded as ledger entry {index}")


def _optional_workspace(args: argparse.Namespace) -> Any:
    from loopwarden.errors import WorkspaceError
    from loopwarden.workspace import find_workspace

    try:
        return find_workspace(explicit=getattr(args, "workspace", None))
    except WorkspaceError:
        if getattr(args, "workspace", None):
            raise
        return None


def _render_trend(rep: Any) -> None:
    out(f"policy {rep.policy}: distance below each threshold (negative: level reached)")
    for r in rep.rows:
        score = "no score" if r.score is None else f"{r.score:g}"
        margins = ", ".join(f"{k} {v:+g}" for k, v in sorted(r.margins.items()))
        out(
            f"  gen {r.generation:>3}  {r.capability:<28} {score:<10} "
            f"({r.measured}/{r.members} measured)  {margins}"
        )
    out("threshold history (oldest first):")
    for key, pts in sorted(rep.history.items()):
        out(
            f"  {key:<40} "
            + " -> ".join("-" if p["threshold"] is None else f"{p['threshold']:g}" for p in pts)
        )
    for f in rep.findings:
        out(f"  {f.rule_id} {f.severity}: {f.message}")
