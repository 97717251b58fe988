"""The benchmark builds its malicious corpus from the test modules' case builders (``bench/models.py``): a builder
renamed in the tests made the benchmark drop ten cases with only a note on stderr. Every builder it names must
exist."""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

import pytest

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


def _tuple_of(name: str) -> tuple[str, ...]:
    tree = ast.parse(BENCH.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            value = ast.literal_eval(node.value)  # type: ignore[arg-type]
            assert isinstance(value, tuple)
            return value
    raise AssertionError(f"{name} not found in bench/models.py")


@pytest.mark.parametrize("round_", [18, 19])
def test_round_modules_define_bench_cases_and_none_scans_clean(round_: int, tmp_path: Path) -> None:
    """A round's cases come from each module's ``bench_cases()``: every module exists, every name kept out of the
    benchmark is one of its cases, and every case kept is reported by the scanner."""
    from loopwarden.checks.models.scanner import scan_paths
    from loopwarden.domain import Verdict

    cases: dict[str, dict[str, bytes]] = {}
    for name in _tuple_of(f"_ROUND{round_}_MODULES"):
        cases.update(importlib.import_module(name).bench_cases())
    assert cases
    left_out = _tuple_of(f"_ROUND{round_}_NOT_CLEAN_BEFORE")
    assert set(left_out) <= set(cases)
    for case, files in cases.items():
        if case in left_out:
            continue
        folder = tmp_path / case
        for file_name, data in files.items():
            (folder / file_name).parent.mkdir(parents=True, exist_ok=True)
            (folder / file_name).write_bytes(data)
        report = scan_paths([str(folder)], jobs=1)
        assert any(t.verdict is not Verdict.CLEAN for t in report.targets), case
