"""SARIF 2.1.0 output: the structure GitHub code scanning requires, rule metadata, determinism."""

from __future__ import annotations

import json
from pathlib import Path

from loopwarden.domain import ArtifactKind, Finding, Location, Report, Severity, TargetResult
from loopwarden.report.interface import get_renderer
from loopwarden.report.sarif import to_sarif


def _report(base: Path) -> Report:
    f1 = Finding("LW-MODEL-021", Severity.HIGH, "disagree", Location(str(base / "m.pt"), member="a/data.pkl"))
    f2 = Finding("LW-MODEL-040", Severity.CRITICAL, "ssti", Location(str(base / "t.json"), line=3))
    f3 = Finding(
        "LW-MODEL-001", Severity.CRITICAL, "os.system", Location("rel/x.pkl", offset=12), {"s": "os"}
    )
    return Report(
        "0.1.0",
        (
            TargetResult.from_findings(str(base / "m.pt"), ArtifactKind.MODEL, [f1]),
            TargetResult.from_findings(str(base / "t.json"), ArtifactKind.MODEL, [f2]),
            TargetResult.from_findings("rel/x.pkl", ArtifactKind.MODEL, [f3]),
            TargetResult.from_findings(
                "/elsewhere/u.bin", ArtifactKind.MODEL, [], unverified_reason="unknown"
            ),
            TargetResult.from_findings(str(base / "ok.pt"), ArtifactKind.MODEL, []),
        ),
    )


def test_structure_github_needs(tmp_path: Path) -> None:
    log = to_sarif(_report(tmp_path), base=tmp_path)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert ids == sorted(ids)
    assert {"LW-MODEL-021", "LW-MODEL-040", "LW-MODEL-001", "LW-CORE-001"} == set(ids)
    for r in rules:
        assert r["shortDescription"]["text"]
        assert r["fullDescription"]["text"]
        assert r["help"]["text"]
        assert r["help"]["markdown"]
        sev = r["properties"]["security-severity"]
        assert isinstance(sev, str)
        assert 0.0 <= float(sev) <= 10.0
        assert "security" in r["properties"]["tags"]
    by_rule = {r["id"]: r for r in rules}
    assert by_rule["LW-MODEL-040"]["properties"]["security-severity"] == "9.5"
    assert by_rule["LW-MODEL-021"]["shortDescription"]["text"].startswith("Zip central directory")
    results = run["results"]
    assert len(results) == 4  # three findings and one unverified target; the clean target has none
    for res in results:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in ("error", "warning", "note")
        assert res["message"]["text"]
        assert res["partialFingerprints"]
        (loc,) = res["locations"]
        assert loc["physicalLocation"]["artifactLocation"]["uri"]
    uris = {r["ruleId"]: r["locations"][0]["physicalLocation"] for r in results}
    assert uris["LW-MODEL-021"]["artifactLocation"] == {"uri": "m.pt", "uriBaseId": "%SRCROOT%"}
    assert uris["LW-MODEL-040"]["region"] == {"startLine": 3}
    assert uris["LW-MODEL-001"]["region"] == {"byteOffset": 12, "byteLength": 1}
    assert uris["LW-CORE-001"]["artifactLocation"]["uri"] == "file:///elsewhere/u.bin"
    member = next(r for r in results if r["ruleId"] == "LW-MODEL-021")
    assert member["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "a/data.pkl"


def test_deterministic(tmp_path: Path) -> None:
    a = get_renderer("sarif").render(_report(tmp_path))
    b = get_renderer("sarif").render(_report(tmp_path))
    assert a == b
    json.loads(a)


def test_fingerprints_differ_per_finding(tmp_path: Path) -> None:
    log = to_sarif(_report(tmp_path), base=tmp_path)
    fps = [tuple(r["partialFingerprints"].values()) for r in log["runs"][0]["results"]]
    assert len(set(fps)) == len(fps)


def test_validates_against_schema_if_available(tmp_path: Path) -> None:
    """Validated against a SARIF 2.1.0 schema only when one is present offline (never downloaded)."""
    import pytest

    jsonschema = pytest.importorskip("jsonschema")
    schema_path = Path(__file__).with_name("sarif-schema-2.1.0.json")
    if not schema_path.exists():
        pytest.skip("no SARIF schema vendored next to this test")
    jsonschema.validate(to_sarif(_report(tmp_path), base=tmp_path), json.loads(schema_path.read_text()))
