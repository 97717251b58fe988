"""The benchmark builds its malicious corpus from the test modules' case builders (``bench/models.py``): a builder
renamed in the tests made the benchmark drop ten cases with only a note on stderr. Every builder it names must
exist."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "models.py"


def _aliases_and_uses() -> tuple[dict[str, str], set[tuple[str, str]]]:
    tree = ast.parse(BENCH.read_text())
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for name in node.names:
                if name.asname and (name.name.startswith("test_") or name.name.startswith("_")):
                    aliases[name.asname] = name.name
    uses = {
        (node.value.id, node.attr)
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
    }
    return aliases, uses


def test_every_case_builder_the_benchmark_names_exists() -> None:
    aliases, uses = _aliases_and_uses()
    assert {"cp", "tpb", "oracle", "ttf"} <= set(aliases)
    models_tests = str(
        REPO / "tests" / "unit" / "checks" / "models"
    )  # where the benchmark finds test_tensorflow
    if models_tests not in sys.path:
        sys.path.append(models_tests)
    missing = []
    for alias, attr in sorted(uses):
        module = importlib.import_module(aliases[alias])
        if not hasattr(module, attr):
            missing.append(f"{aliases[alias]}.{attr}")
    assert not missing
