"""loopwarden quarantine ARTIFACT --reason ... — append a signed taint record.

Taint flows to every descendant through the influence-carrying relations until cleared by enough distinct
human reviewers (``loopwarden clear``).
"""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from loopwarden._cli._common import emit_json, out, workspace
from loopwarden.domain import ArtifactKind
from loopwarden.errors import LineageError


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", metavar="ARTIFACT", help="a digest ALGO:HEX or a file/folder path")
    parser.add_argument("--reason", required=True, help="why the artifact is quarantined")
    parser.add_argument("--reporter", default=None, help="who reports it (default: the current user name)")
    parser.add_argument(
        "--kind", default="other", help="the artifact's kind, if the ledger does not know it yet"
    )
    parser.add_argument(
        "--allow-unknown",
        action="store_true",
        help="quarantine a digest no lineage record names yet (taints whatever later uses it)",
    )


def run(args: argparse.Namespace) -> int:
    from loopwarden.lineage import Artifact, LineageGraph, artifact, quarantine

    ws = workspace(args)
    graph = LineageGraph.from_workspace(ws)
    if Path(args.artifact).exists():
        target = artifact(args.artifact, args.kind)
    else:
        try:
            target = Artifact(graph.resolve(args.artifact), ArtifactKind(args.kind))
        except LineageError:
            if not args.allow_unknown:
                raise
            target = artifact(args.artifact, args.kind)
    if target.digest in graph:
        node = graph.node(target.digest)
        target = Artifact(node.digest, node.kind, node.name, node.generation)
    elif not args.allow_unknown:
        raise LineageError(
            f"{target.digest}: unknown artifact (no lineage record in the ledger names this digest)",
            hint="check the digest, or pass --allow-unknown to quarantine it ahead of use",
        )
    res = quarantine(ws, target, reason=args.reason, reporter=args.reporter or getpass.getuser())
    affected = len(graph.blast_radius(target.digest)) if target.digest in graph else 0
    if args.json:
        emit_json({"artifact": str(target.digest), "index": res.index, "affected": affected})
    else:
        out(
            f"quarantined {target.digest} as ledger entry {res.index}; {affected} descendant(s) are tainted "
            f"(see 'loopwarden lineage blast-radius {target.digest}')"
        )
    return 0
