from __future__ import annotations

from loopwarden.domain import ArtifactKind, Finding, Location, Report, Severity, TargetResult
from loopwarden.report.interface import get_renderer


def _report() -> Report:
    f = Finding("LW-MODEL-022", Severity.HIGH, "dup", Location("m.pt", member="a/data.pkl"))
    return Report(
        "0.1.0",
        (
            TargetResult.from_findings("m.pt", ArtifactKind.MODEL, [f]),
            TargetResult.from_findings(
                "u.bin", ArtifactKind.MODEL, [], unverified_reason="unknown binary format"
            ),
            TargetResult.from_findings("ok.pt", ArtifactKind.MODEL, []),
        ),
    )


def test_plain_lines_when_piped() -> None:
    text = get_renderer("text").render(_report())
    assert "m.pt: FAIL" in text
    assert "  HIGH     LW-MODEL-022  m.pt!a/data.pkl: dup" in text
    assert "u.bin: UNVERIFIED (unknown binary format)" in text
    assert "ok.pt: clean" in text
    assert text.rstrip().endswith("1 clean, 1 with findings, 1 unverified; 2 fail at --fail-on low")
    assert "\x1b[" not in text


def test_rich_table_on_terminal() -> None:
    text = get_renderer("text").render(_report(), color=True)
    assert "LW-MODEL-022" in text
    assert "\x1b[" in text


def test_threshold_changes_status() -> None:
    text = get_renderer("text").render(_report(), fail_on=Severity.CRITICAL)
    assert "m.pt: findings below threshold" in text
