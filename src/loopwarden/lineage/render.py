"""Views of the lineage graph as plain JSON values, and their renderings as text, Graphviz DOT and Mermaid.

Every view is deterministic (sorted; no wall-clock), so the same ledger always gives the same bytes.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from typing import Any, Final

from loopwarden.domain import Digest
from loopwarden.errors import UsageError
from loopwarden.lineage.findings import findings_for
from loopwarden.lineage.graph import LineageGraph

__all__ = ["FORMATS", "blast_view", "node_view", "path_view", "render", "set_view", "timeline_view"]

FORMATS: Final = ("text", "json", "dot", "mermaid")


def _node(g: LineageGraph, d: Digest | str) -> dict[str, Any]:
    n = g.node(Digest.parse(str(d)))
    return {"digest": str(n.digest), "kind": str(n.kind), "name": n.name, "generation": n.generation}


def _edges_within(g: LineageGraph, members: set[str]) -> list[dict[str, Any]]:
    return [
        {
            "from": str(e.source),
            "to": str(e.target),
            "relation": str(e.relation),
            "ledger_index": e.ledger_index,
        }
        for e in g.edges_among(members)
    ]


def node_view(g: LineageGraph, d: Digest) -> dict[str, Any]:
    """One artifact: its node, every edge touching it, stages, quarantines, clearances and taint."""
    t = g.taint(d)
    return {
        "view": "node",
        "node": _node(g, d),
        "edges": [
            {
                "from": str(e.source),
                "to": str(e.target),
                "relation": str(e.relation),
                "ledger_index": e.ledger_index,
            }
            for e in g.edges(d)
        ],
        "nodes": [_node(g, x) for x in sorted({str(x) for x in (*g.parents(d), *g.children(d), d)})],
        "stages": [{"stage": s, "ledger_index": i} for s, i in g.stages(d)],
        "quarantines": [
            {"reason": q.reason, "reporter": q.reporter, "ledger_index": q.ledger_index}
            for q in g.quarantines(d)
        ],
        "clearances": [
            {
                "keyid": c.keyid,
                "reason": c.reason,
                "counts": c.counts,
                "why": c.why,
                "ledger_index": c.ledger_index,
            }
            for c in g.clearances(d)
        ],
        "clearance": g.clearance_status(d),
        "findings": [f.to_json() for f in findings_for(g, d)],
        "taint": None
        if t is None
        else {
            "source": str(t.source),
            "reason": t.reason,
            "path": [str(p) for p in t.path],
            "ledger_index": t.ledger_index,
        },
    }


def set_view(g: LineageGraph, d: Digest, direction: str) -> dict[str, Any]:
    """Ancestors or descendants of ``d``, with the edges among them and ``d``."""
    members = g.ancestors(d) if direction == "ancestors" else g.descendants(d)
    names = sorted({str(x) for x in members})
    return {
        "view": direction,
        "artifact": _node(g, d),
        "count": len(names),
        "nodes": [_node(g, x) for x in sorted({*names, str(d)})],
        "edges": _edges_within(g, {*names, str(d)}),
    }


def path_view(g: LineageGraph, a: Digest, b: Digest) -> dict[str, Any]:
    p = g.path(a, b)
    nodes = [_node(g, x) for x in (p or ())]
    edges = []
    if p:
        for x, y in itertools.pairwise(p):
            rel = g.relation(x, y)
            edges.append({"from": str(x), "to": str(y), "relation": str(rel)})
    return {
        "view": "path",
        "from": str(a),
        "to": str(b),
        "found": p is not None,
        "nodes": nodes,
        "edges": edges,
    }


def blast_view(g: LineageGraph, d: Digest) -> dict[str, Any]:
    """Everything ``d`` influenced, grouped by generation and kind, each with the path that connects it."""
    br = g.blast_radius(d)
    rows = br.rows()
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    tree_edges: dict[tuple[str, str], str] = {}
    for r in rows:
        t = g.taint(Digest.parse(r["digest"]))
        r["tainted"] = t is not None
        gen = "unknown" if r["generation"] is None else str(r["generation"])
        groups.setdefault(gen, {}).setdefault(r["kind"], []).append(r)
        for x, y, rel in zip(r["path"], r["path"][1:], r["relations"], strict=False):
            tree_edges[(x, y)] = rel
    root_taint = g.taint(d)
    return {
        "view": "blast-radius",
        "artifact": _node(g, d),
        "quarantined": bool(g.quarantines(d)),
        "tainted": root_taint is not None,
        "count": len(rows),
        "groups": groups,
        "nodes": [
            _node(g, d),
            *({k: v for k, v in r.items() if k in ("digest", "kind", "name", "generation")} for r in rows),
        ],
        "edges": [{"from": x, "to": y, "relation": rel} for (x, y), rel in sorted(tree_edges.items())],
    }


def timeline_view(g: LineageGraph) -> dict[str, Any]:
    """Every artifact grouped by generation and kind, with stages and taint."""
    tainted = {str(k) for k in g.tainted()}
    gens: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for gen, kinds in g.timeline().items():
        key = "unknown" if gen is None else str(gen)
        gens[key] = {
            kind: [
                {
                    **_node(g, n.digest),
                    "stages": [s for s, _ in g.stages(n.digest)],
                    "tainted": str(n.digest) in tainted,
                }
                for n in nodes
            ]
            for kind, nodes in kinds.items()
        }
    return {
        "view": "timeline",
        "ledger": {"size": g.ledger_size, "root": g.ledger_root.hex()},
        "artifacts": len(g),
        "edges_recorded": g.edge_count,
        "generations": gens,
        "nodes": [_node(g, n.digest) for n in g.nodes()],
        "edges": _edges_within(g, {str(n.digest) for n in g.nodes()}),
    }


# -- renderers --------------------------------------------------------------------------------


def _safe(text: object) -> str:
    """Names and reasons come from the ledger: never let them drive the terminal (escapes, newlines)."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def _label(n: dict[str, Any]) -> str:
    gen = "?" if n.get("generation") is None else n["generation"]
    name = _safe(n.get("name") or n["digest"].split(":", 1)[1][:12])
    return f"{name} ({n['kind']}, gen {gen})"


def _short(d: str) -> str:
    algo, _, hexpart = d.partition(":")
    return f"{algo}:{hexpart[:16]}…"


def _dot(view: dict[str, Any]) -> str:
    lines = [f'digraph "{view["view"]}" {{', "  rankdir=LR;", "  node [shape=box];"]
    lines += [f'  "{n["digest"]}" [label={json.dumps(_label(n))}];' for n in view.get("nodes", [])]
    lines += [
        f'  "{e["from"]}" -> "{e["to"]}" [label={json.dumps(e["relation"])}];' for e in view.get("edges", [])
    ]
    lines.append("}")
    return "\n".join(lines) + "\n"


_MERMAID_UNSAFE: Final = re.compile(r'["\[\]{}()<>|#;`]')


def _dot_id(ids: dict[str, str], d: str) -> str:
    return ids.setdefault(d, f"n{len(ids)}")


def _mermaid(view: dict[str, Any]) -> str:
    ids: dict[str, str] = {}
    lines = ["flowchart LR"]
    for n in view.get("nodes", []):
        label = _MERMAID_UNSAFE.sub(" ", _label(n))
        lines.append(f'  {_dot_id(ids, n["digest"])}["{label}"]')
    lines += [
        f"  {_dot_id(ids, e['from'])} -->|{e['relation']}| {_dot_id(ids, e['to'])}"
        for e in view.get("edges", [])
    ]
    return "\n".join(lines) + "\n"


def _text_rows(rows: Iterable[dict[str, Any]], indent: str = "  ") -> list[str]:
    return [f"{indent}{_short(r['digest'])}  {_label(r)}" for r in rows]


def _text(view: dict[str, Any]) -> str:
    v = view["view"]
    out: list[str] = []
    if v == "node":
        n = view["node"]
        out.append(f"{n['digest']}  {_label(n)}")
        out += [
            f"  {_short(e['from'])} -{e['relation']}-> {_short(e['to'])}  (entry {e['ledger_index']})"
            for e in view["edges"]
        ]
        out += [f"  promoted to {s['stage']} (entry {s['ledger_index']})" for s in view["stages"]]
        out += [
            f"  QUARANTINED by {_safe(q['reporter'])}: {_safe(q['reason'])} (entry {q['ledger_index']})"
            for q in view["quarantines"]
        ]
        for c in view["clearances"]:
            flag = "counts" if c["counts"] else "does NOT count"
            out.append(
                f"  clearance by key {_safe(c['keyid'][:16])}… {flag}: {c['why']} (entry {c['ledger_index']})"
            )
        out += [f"  {f['rule_id']} {f['severity']}: {_safe(f['message'])}" for f in view["findings"]]
        t = view["taint"]
        if t:
            out.append(
                f"  TAINTED by {t['source']} ({_safe(t['reason'])}): "
                + " -> ".join(_short(p) for p in t["path"])
            )
        else:
            out.append("  not tainted")
    elif v in ("ancestors", "descendants"):
        out.append(f"{view['count']} {v} of {_label(view['artifact'])} {view['artifact']['digest']}")
        out += _text_rows(x for x in view["nodes"] if x["digest"] != view["artifact"]["digest"])
    elif v == "path":
        if not view["found"]:
            out.append(f"no path between {view['from']} and {view['to']}")
        else:
            out.append(" -> ".join(_short(n["digest"]) for n in view["nodes"]))
            for e in view["edges"]:
                out.append(f"  {_short(e['from'])} -{e['relation']}-> {_short(e['to'])}")
    elif v == "blast-radius":
        a = view["artifact"]
        state = (
            "quarantined" if view["quarantined"] else ("tainted" if view["tainted"] else "not quarantined")
        )
        out.append(
            f"blast radius of {_label(a)} {a['digest']} ({state}): {view['count']} affected artifact(s)"
        )
        for gen, kinds in view["groups"].items():
            out.append(f"generation {gen}:")
            for kind, rows in kinds.items():
                out.append(f"  {kind}:")
                for r in rows:
                    mark = " [tainted]" if r["tainted"] else ""
                    out.append(f"    {_short(r['digest'])}  {_label(r)}{mark}")
                    hops = [_short(r["path"][0])]
                    for rel, d in zip(r["relations"], r["path"][1:], strict=False):
                        hops.append(f"-{rel}-> {_short(d)}")
                    out.append("      path: " + " ".join(hops))
    elif v == "timeline":
        out.append(
            f"{view['artifacts']} artifacts, {view['edges_recorded']} edges, ledger size "
            f"{view['ledger']['size']}"
        )
        for gen, kinds in view["generations"].items():
            out.append(f"generation {gen}:")
            for kind, rows in kinds.items():
                out.append(f"  {kind}:")
                for r in rows:
                    extra = "".join(f" [{s}]" for s in r["stages"]) + (" [TAINTED]" if r["tainted"] else "")
                    out.append(f"    {_short(r['digest'])}  {_label(r)}{extra}")
    else:
        out.append(json.dumps(view, sort_keys=True, indent=2))
    return "\n".join(out) + "\n"


def render(view: dict[str, Any], fmt: str) -> str:
    """Render a view as ``text``, ``json`` (sorted, indented), ``dot`` or ``mermaid``."""
    if fmt == "json":
        return json.dumps(view, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    if fmt == "dot":
        return _dot(view)
    if fmt == "mermaid":
        return _mermaid(view)
    if fmt == "text":
        return _text(view)
    raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
