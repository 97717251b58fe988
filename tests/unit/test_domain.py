from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwarden.domain import (
    ArtifactKind,
    Digest,
    Finding,
    Location,
    Report,
    ResourceDescriptor,
    Severity,
    TargetResult,
    Verdict,
)


def _finding(path: str = "m.pkl", sev: Severity = Severity.HIGH, rule: str = "LW-MODEL-001") -> Finding:
    return Finding(
        rule, sev, "bad callable", Location(path, member="data.pkl", offset=12), {"callable": "os.system"}
    )


def test_digest_round_trip_and_validation() -> None:
    d = Digest.sha256(b"abc")
    assert str(d).startswith("sha256:")
    assert Digest.parse(str(d)) == d
    with pytest.raises(ValueError, match="64 hex"):
        Digest("sha256", "ab")
    with pytest.raises(ValueError, match="hex"):
        Digest("sha256", "Z" * 64)
    with pytest.raises(ValueError, match="ALGORITHM:HEX"):
        Digest.parse("nocolon")
    assert Digest.parse("sha256-shard-1GiB:" + "a" * 64).algorithm == "sha256-shard-1GiB".lower()


def test_resource_descriptor_needs_a_valid_digest() -> None:
    with pytest.raises(ValueError, match="no digest"):
        ResourceDescriptor("x", {})
    with pytest.raises(ValueError):
        ResourceDescriptor("x", {"sha256": "nothex"})
    rd = ResourceDescriptor("x", {"sha512": "a" * 128, "sha256": "b" * 64})
    assert list(rd.to_json()["digest"]) == ["sha256", "sha512"]


def test_finding_rule_id_form_and_frozen() -> None:
    with pytest.raises(ValueError, match="LW-<LAYER>-<NNN>"):
        Finding("MODEL-1", Severity.LOW, "m", Location("p"))
    f = _finding()
    with pytest.raises(AttributeError):
        f.message = "x"  # type: ignore[misc]


def test_verdict_invariants() -> None:
    with pytest.raises(ValueError, match="clean target"):
        TargetResult("p", ArtifactKind.MODEL, Verdict.CLEAN, (_finding(),))
    with pytest.raises(ValueError, match="at least one"):
        TargetResult("p", ArtifactKind.MODEL, Verdict.FINDINGS, ())
    unverified = TargetResult.from_findings("p", ArtifactKind.MODEL, [], unverified_reason="truncated")
    assert unverified.verdict is Verdict.UNVERIFIED
    assert not unverified.passed(Severity.CRITICAL)  # never shown as clean, whatever the threshold


def test_info_findings_are_notes_on_a_clean_target() -> None:
    note = _finding(sev=Severity.INFO, rule="LW-MODEL-041")
    t = TargetResult.from_findings("p", ArtifactKind.MODEL, [note])
    assert t.verdict is Verdict.CLEAN and t.findings == (note,)
    assert t.to_json()["findings"][0]["rule_id"] == "LW-MODEL-041"  # the note is kept
    assert t.passed(Severity.LOW)
    for sev in (Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL):
        mixed = TargetResult.from_findings("p", ArtifactKind.MODEL, [note, _finding(sev=sev)])
        assert mixed.verdict is Verdict.FINDINGS
        with pytest.raises(ValueError, match="clean target"):
            TargetResult("p", ArtifactKind.MODEL, Verdict.CLEAN, (note, _finding(sev=sev)))
    unverified = TargetResult.from_findings("p", ArtifactKind.MODEL, [note], unverified_reason="truncated")
    assert unverified.verdict is Verdict.UNVERIFIED


def test_passed_respects_threshold() -> None:
    t = TargetResult.from_findings("p", ArtifactKind.MODEL, [_finding(sev=Severity.MEDIUM)])
    assert not t.passed(Severity.LOW)
    assert not t.passed(Severity.MEDIUM)
    assert t.passed(Severity.HIGH)


def test_report_is_deterministic_and_has_the_envelope_shape() -> None:
    a = TargetResult.from_findings(
        "b.pkl", ArtifactKind.MODEL, [_finding("b.pkl"), _finding("b.pkl", Severity.LOW)]
    )
    b = TargetResult.from_findings("a.pkl", ArtifactKind.MODEL, [])
    r1 = Report("1.0", (a, b)).dumps()
    r2 = Report("1.0", (b, a)).dumps()
    assert r1 == r2
    obj = json.loads(r1)
    assert set(obj) == {"tool", "version", "targets"}
    assert obj["tool"] == "loopwarden"
    assert [t["path"] for t in obj["targets"]] == ["a.pkl", "b.pkl"]
    f = obj["targets"][1]["findings"][0]
    assert set(f) == {"rule_id", "severity", "message", "location", "evidence"}
    assert f["severity"] == "high"
    assert Report("1.0", (a, b)).exit_code(Severity.HIGH) == 1
    assert Report("1.0", (b,)).exit_code() == 0


def test_severity_parse() -> None:
    assert Severity.parse("High") is Severity.HIGH
    with pytest.raises(ValueError, match="unknown severity"):
        Severity.parse("urgent")


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "a\nb", '"q"\\', "é\u2028\x00"]
)


@st.composite
def _targets(draw: st.DrawFn) -> TargetResult:
    path = draw(_TEXT)
    kind = draw(st.sampled_from(list(ArtifactKind)))
    digest = draw(st.none() | st.just(Digest.sha256(path.encode())))
    shape = draw(st.sampled_from(["clean", "findings", "unverified"]))
    findings: tuple[Finding, ...] = ()
    reason = None
    if shape == "findings":
        findings = (
            Finding(
                "LW-MODEL-001",
                draw(st.sampled_from(list(Severity))),
                draw(_TEXT),
                Location(path, member=draw(st.none() | _TEXT), line=draw(st.none() | st.integers(1, 9))),
                {draw(_TEXT): draw(_TEXT | st.integers() | st.lists(_TEXT, max_size=2))},
            ),
        )
    if shape == "unverified":
        reason = draw(_TEXT)
        findings = draw(st.sampled_from([(), (_finding(path or "x"),)]))
    return TargetResult.from_findings(path, kind, findings, unverified_reason=reason, digest=digest)


@settings(max_examples=300, deadline=None)
@given(st.lists(_targets(), max_size=6), _TEXT, _TEXT)
def test_report_text_is_exactly_the_json_modules_pretty_print(
    targets: list[TargetResult], version: str, tool: str
) -> None:
    """The hand-laid fast path for targets without findings must match json.dumps byte for byte."""
    report = Report(version, tuple(targets), tool=tool)
    reference = json.dumps(report.to_json(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert report.dumps() == reference
