"""loopwarden clear ARTIFACT --key REVIEWER.key --reason ... — a reviewer's signed clearance.

The clearance is signed by the workspace key (so the ledger accepts it) and by the reviewer's own key (so
it can count). Exit 0 when the clearance counts (the key is a declared human reviewer key), 1 when it does
not (an agent key or an unknown key): it is still recorded, as evidence of the attempt.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from loopwarden._cli._common import emit_json, out, workspace


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", metavar="ARTIFACT", help="a digest ALGO:HEX or a file/folder path")
    parser.add_argument("--key", required=True, help="the reviewer's own private key (PEM)")
    parser.add_argument("--reason", required=True, help="what the reviewer checked and why it is safe")
    parser.add_argument(
        "--reviewer", default="", help="the reviewer's name (informative; the key is the identity)"
    )
    parser.add_argument(
        "--password-env",
        default=None,
        metavar="VAR",
        help="environment variable holding the reviewer key's password",
    )


def run(args: argparse.Namespace) -> int:
    from loopwarden.attest.keys import load_private
    from loopwarden.lineage import Artifact, LineageGraph, artifact, clear

    ws = workspace(args)
    graph = LineageGraph.from_workspace(ws)
    # A path is hashed; anything else must be a digest the ledger knows (an unknown one: exit 2, naming it).
    is_path = Path(args.artifact).exists()
    digest = artifact(args.artifact, "other").digest if is_path else graph.resolve(args.artifact)
    node = graph.node(digest)
    pw = os.environ.get(args.password_env, "").encode() if args.password_env else None
    key = load_private(args.key, pw or None)
    res = clear(
        ws,
        Artifact(node.digest, node.kind, node.name, node.generation),
        reason=args.reason,
        reviewer_key=key,
        reviewer=args.reviewer,
    )
    after = LineageGraph.from_workspace(ws)
    mine = [c for c in after.clearances(node.digest) if c.ledger_index == res.index]
    counts, why = (mine[0].counts, mine[0].why) if mine else (False, "not found after recording")
    status = after.clearance_status(node.digest)
    if args.json:
        emit_json({"artifact": str(node.digest), "index": res.index, "counts": counts, "why": why, **status})
    else:
        verdict = "counts" if counts else "does NOT count"
        out(f"clearance recorded as ledger entry {res.index}; it {verdict} ({why})")
        out(
            f"{len(status['human_reviewers'])} of {status['threshold']} distinct human reviewer(s) cleared it"
            + ("; the artifact is CLEARED" if status["cleared"] else "")
        )
    return 0 if counts else 1
