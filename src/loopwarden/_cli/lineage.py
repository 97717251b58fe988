"""loopwarden lineage show|ancestors|descendants|path|blast-radius|rebuild — query the graph rebuilt from
the ledger.

Exit codes: 0 answered; 1 the ledger does not verify (a tampered entry), ``path`` found none, or
``rebuild --check`` found the cached index different; 2 unknown digest, a cycle in the recorded lineage, or a
usage error.
"""

from __future__ import annotations

import argparse

from loopwarden._cli._common import emit_json, out, workspace
from loopwarden.errors import UsageError

_FORMATS = ("text", "json", "dot", "mermaid")


def build(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    s = sub.add_parser(
        "show", help="one artifact's edges, stages, quarantine and taint; without one: the timeline"
    )
    s.add_argument("artifact", nargs="?", metavar="ARTIFACT", help="a digest ALGO:HEX (or a unique prefix)")
    for name, text in (
        ("ancestors", "everything the artifact came from"),
        ("descendants", "everything the artifact influenced"),
        ("blast-radius", "every affected artifact with the path to it, grouped by generation and kind"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("artifact", metavar="ARTIFACT", help="a digest ALGO:HEX (or a unique prefix)")
    p = sub.add_parser("path", help="a shortest path between two artifacts")
    p.add_argument("artifact", metavar="FROM")
    p.add_argument("target", metavar="TO")
    r = sub.add_parser("rebuild", help="rebuild the graph from the ledger and write its canonical index file")
    r.add_argument("--check", action="store_true", help="exit 1 if the existing index file differs")
    for sp in sub.choices.values():
        sp.add_argument("--format", choices=_FORMATS, default=None, help="output format (default: text)")
        sp.add_argument("--workspace", metavar="DIR", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        sp.add_argument("--json", action="store_true", help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from loopwarden.lineage import LineageGraph, write_index
    from loopwarden.lineage.render import blast_view, node_view, path_view, render, set_view, timeline_view

    fmt = args.format or ("json" if args.json else "text")
    ws = workspace(args)
    graph = LineageGraph.from_workspace(ws)
    act = args.action
    if act == "rebuild":
        path, digest, same = write_index(ws, graph)
        data = {
            "index": str(path),
            "sha256": digest,
            "nodes": len(graph),
            "edges": graph.edge_count,
            "ledger_size": graph.ledger_size,
            "ledger_root": graph.ledger_root.hex(),
            "matches_previous": same,
        }
        if fmt == "json":
            emit_json(data)
        else:
            prev = {
                None: "no previous index",
                True: "identical to the previous index",
                False: "DIFFERENT from the previous index",
            }[same]
            out(
                f"rebuilt {len(graph)} artifacts, {graph.edge_count} edges from {graph.ledger_size} ledger "
                f"entries; sha256 {digest}; {prev}"
            )
        return 1 if args.check and same is False else 0
    if act == "show":
        view = (
            timeline_view(graph) if args.artifact is None else node_view(graph, graph.resolve(args.artifact))
        )
    elif act in ("ancestors", "descendants"):
        view = set_view(graph, graph.resolve(args.artifact), act)
    elif act == "blast-radius":
        view = blast_view(graph, graph.resolve(args.artifact))
    elif act == "path":
        view = path_view(graph, graph.resolve(args.artifact), graph.resolve(args.target))
    else:
        raise UsageError(f"unknown lineage action {act!r}")
    out(render(view, fmt))
    return 1 if act == "path" and not view["found"] else 0
