"""loopwarden ledger append|show|proof|consistency|verify|checkpoint|export"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path
from typing import Any

from loopwarden._cli._common import emit_json, out, workspace
from loopwarden.domain import Digest
from loopwarden.errors import UsageError
from loopwarden.ledger import (
    append_documents,
    export_jsonl,
    verify_consistency,
    verify_inclusion,
    verify_ledger,
)
from loopwarden.ledger.merkle import leaf_hash


def build(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    a = sub.add_parser("append", help="append DSSE envelope files (all or nothing)")
    a.add_argument("files", nargs="+", help="DSSE envelope JSON files (in-toto statements with --sign)")
    a.add_argument(
        "--sign",
        action="store_true",
        help="the files are in-toto statements: sign them with the workspace's key first",
    )
    s = sub.add_parser("show", help="show entries: one by index, or filtered")
    s.add_argument("index", nargs="?", type=int, help="entry index")
    s.add_argument("--subject", help="only entries about this digest (ALGO:HEX)")
    s.add_argument("--predicate-type", help="only entries of this predicate type")
    s.add_argument("--limit", type=int, default=None)
    p = sub.add_parser("proof", help="inclusion proof of an entry")
    p.add_argument("index", type=int)
    p.add_argument("--size", type=int, help="tree size (default: current)")
    c = sub.add_parser("consistency", help="consistency proof between two tree sizes")
    c.add_argument("old", type=int)
    c.add_argument("new", type=int, nargs="?")
    sub.add_parser("verify", help="full audit: every leaf, node, signature and checkpoint")
    sub.add_parser("checkpoint", help="print the latest signed checkpoint (C2SP tlog-checkpoint)")
    e = sub.add_parser("export", help="write every entry as JSON lines")
    e.add_argument("-o", "--output", help="file to write (default: stdout)")


def _digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except ValueError as exc:
        raise UsageError(f"--subject: {exc}") from None


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _entry_json(idx: int, data: bytes) -> dict[str, Any]:
    env = json.loads(data)
    try:
        stmt = json.loads(base64.b64decode(env["payload"]))
    except (ValueError, KeyError):
        stmt = None
    return {"index": idx, "leaf_hash": leaf_hash(data).hex(), "envelope": env, "statement": stmt}


def run(args: argparse.Namespace) -> int:
    ws = workspace(args)
    act = args.action
    if act == "append":
        results = append_documents(args.files, sign=args.sign, workspace=ws)
        rows = [
            {
                "file": f,
                "index": r.index,
                "tree_size": r.tree_size,
                "root": r.root.hex(),
                "inclusion_proof": [h.hex() for h in (r.proof.hashes if r.proof else ())],
            }
            for f, r in zip(args.files, results, strict=True)
        ]
        if args.json:
            emit_json({"appended": rows, "checkpoint": results[-1].checkpoint.note})
        else:
            for r in rows:
                out(f"appended {r['file']} as entry {r['index']}")
            out(f"tree size {results[-1].tree_size}, root {results[-1].root.hex()}")
        return 0
    if act == "verify":
        rep = verify_ledger(ws)
        first = rep.first()
        if args.json:
            emit_json(
                {
                    "passed": rep.passed,
                    "size": rep.size,
                    "root": rep.root.hex(),
                    "signatures_checked": rep.signatures_checked,
                    "checkpoints_checked": rep.checkpoints_checked,
                    "first_bad_entry": first.index if first else None,
                    "problems": [{"index": p.index, "message": p.message} for p in sorted(rep.problems)],
                }
            )
        elif first is None:
            out(
                f"ledger verified: {rep.size} entries, {rep.signatures_checked} signatures, "
                f"{rep.checkpoints_checked} checkpoints, root {rep.root.hex()}"
            )
        else:
            out(f"ledger FAILED verification: first bad entry {first.index}: {first.message}")
            for p in sorted(rep.problems)[1:20]:
                out(f"  entry {p.index}: {p.message}")
            if len(rep.problems) > 20:
                out(f"  … {len(rep.problems) - 20} more problem(s)")
        return 0 if rep.passed else 1
    with ws.open_ledger(writable=False) as led:
        if act == "show":
            if args.index is not None:
                e = led.get(args.index)
                rows = [_entry_json(e.index, e.data)]
            else:
                subject = _digest(args.subject) if args.subject else None
                rows = [
                    _entry_json(e.index, e.data)
                    for e in led.entries(
                        subject=subject, predicate_type=args.predicate_type, limit=args.limit
                    )
                ]
            if args.json:
                emit_json({"entries": rows})
            else:
                if not rows:
                    out("the ledger is empty" if led.size() == 0 else "no entries match")
                for r in rows:
                    st = r["statement"] or {}
                    subs = ", ".join(
                        f"{s.get('name', '')}@{next(iter(s.get('digest', {}).items()), ('', ''))[0]}:"
                        f"{next(iter(s.get('digest', {}).values()), '')[:16]}…"
                        for s in st.get("subject", [])
                    )
                    signers = ", ".join(s["keyid"][:16] for s in r["envelope"].get("signatures", []))
                    out(
                        f"#{r['index']}  {st.get('predicateType', '?')}\n    subjects: {subs}\n    signed by: {signers}"
                    )
            return 0
        if act == "proof":
            size = led.size() if args.size is None else args.size
            proof = led.inclusion_proof(args.index, size)
            root = led.root(size)
            ok = verify_inclusion(led.get(args.index).leaf_hash(), proof, root)
            data = {
                "index": proof.index,
                "tree_size": proof.tree_size,
                "root": root.hex(),
                "hashes": [h.hex() for h in proof.hashes],
                "verified": ok,
            }
            if args.json:
                emit_json(data)
            else:
                out(f"entry {proof.index} in tree of size {proof.tree_size}, root {root.hex()}")
                for h in proof.hashes:
                    out(f"  {h.hex()}")
                out("proof verifies" if ok else "proof does NOT verify")
            return 0 if ok else 1
        if act == "consistency":
            new = led.size() if args.new is None else args.new
            cproof = led.consistency_proof(args.old, new)
            r1, r2 = led.root(args.old), led.root(new)
            ok = verify_consistency(r1, r2, cproof)
            data = {
                "old_size": args.old,
                "new_size": new,
                "old_root": r1.hex(),
                "new_root": r2.hex(),
                "hashes": [h.hex() for h in cproof.hashes],
                "verified": ok,
            }
            if args.json:
                emit_json(data)
            else:
                out(f"size {args.old} ({r1.hex()}) -> size {new} ({r2.hex()})")
                for h in cproof.hashes:
                    out(f"  {h.hex()}")
                out("proof verifies" if ok else "proof does NOT verify")
            return 0 if ok else 1
        if act == "checkpoint":
            cp = led.latest_checkpoint()
            if cp is None:
                raise UsageError(f"{led.path}: the ledger is empty; no checkpoint yet")
            if args.json:
                emit_json({"origin": cp.origin, "size": cp.size, "root": cp.root.hex(), "note": cp.note})
            else:
                sys.stdout.write(cp.note)
            return 0
        if act == "export":
            count = export_jsonl(led, args.output)
            if args.output and not args.json:
                out(f"wrote {count} entries to {Path(args.output)}")
            return 0
    raise UsageError(f"unknown ledger action {act!r}")
