"""Views and their renderings: deterministic JSON, DOT and Mermaid that name every node and edge."""

from __future__ import annotations

import json

import pytest
from lineage_helpers import art, graph

from loopwarden.domain import Digest
from loopwarden.errors import UsageError
from loopwarden.lineage import generate_statement, quarantine_statement, train_statement
from loopwarden.lineage.render import blast_view, node_view, path_view, render, set_view, timeline_view


@pytest.fixture
def g():  # type: ignore[no-untyped-def]
    return graph(
        [
            generate_statement(
                model=art("m1", "model", 1), outputs=[art('evil"] --> x[', "dataset")], generation=2
            ),
            train_statement(model=art("m2", "model"), datasets=[art('evil"] --> x[')], generation=2),
            quarantine_statement(target=art("m1"), reason="backdoor", reporter="ci"),
        ]
    )


M1, M2 = Digest.sha256(b"m1"), Digest.sha256(b"m2")


def test_every_view_renders_in_every_format(g) -> None:  # type: ignore[no-untyped-def]
    views = [
        node_view(g, M2),
        set_view(g, M2, "ancestors"),
        set_view(g, M1, "descendants"),
        path_view(g, M1, M2),
        blast_view(g, M1),
        timeline_view(g),
    ]
    for v in views:
        for fmt in ("text", "json", "dot", "mermaid"):
            out = render(v, fmt)
            assert out.endswith("\n")
            assert render(v, fmt) == out  # deterministic
        assert json.loads(render(v, "json")) == json.loads(json.dumps(v))
    with pytest.raises(UsageError):
        render(views[0], "svg")


def test_blast_view_groups_and_paths(g) -> None:  # type: ignore[no-untyped-def]
    v = blast_view(g, M1)
    assert v["count"] == 2
    assert v["quarantined"] is True
    assert list(v["groups"]) == ["2"]
    (model_row,) = v["groups"]["2"]["model"]
    assert model_row["relations"] == ["generated", "trained-on"]
    assert model_row["tainted"] is True
    dot = render(v, "dot")
    assert f'"{M1}" -> ' in dot
    edge_lines = [ln for ln in dot.splitlines() if ln.startswith('  "') and '" -> "' in ln]
    assert len(edge_lines) == 2


def test_mermaid_labels_cannot_break_out(g) -> None:  # type: ignore[no-untyped-def]
    out = render(set_view(g, M1, "descendants"), "mermaid")
    assert out.startswith("flowchart LR\n")
    for line in out.splitlines()[1:]:
        if "[" in line:  # a node line: exactly one label in quotes
            assert line.count('"') == 2
            assert line.count("[") == 1
    assert out.count("-->|") == 2


def test_text_names_the_taint_path(g) -> None:  # type: ignore[no-untyped-def]
    text = render(node_view(g, M2), "text")
    assert "TAINTED by" in text
    assert "backdoor" in text
    assert render(path_view(g, M2, M1), "text").startswith(f"{M1}"[:23])
    unrelated = Digest.sha256(b'evil"] --> x[')
    assert "no path" not in render(path_view(g, unrelated, M2), "text")


def test_text_never_passes_control_characters_from_the_ledger() -> None:
    g = graph(
        [
            generate_statement(model=art("m\x1b[2J\nfake", "model"), outputs=[art("d")], generation=1),
            quarantine_statement(target=art("d"), reason="x\x1b]0;pwned\x07", reporter="r\rz"),
        ]
    )
    d = Digest.sha256(b"d")
    for view in (node_view(g, d), blast_view(g, Digest.sha256(b"m\x1b[2J\nfake")), timeline_view(g)):
        text = render(view, "text")
        assert "\x1b" not in text
        assert "\r" not in text
        assert "\x07" not in text
