"""SARIF 2.1.0 output: valid against the OASIS schema, ingestible by GitHub code scanning, deterministic.

Every producer is checked: the shared renderer (``loopwarden.report.sarif``), ``loopwarden scan model --format
sarif`` and ``loopwarden data scan --format sarif``. Validation runs offline against the OASIS SARIF 2.1.0 schema
vendored in tests/fixtures/sarif/ (see the README there). On top of the schema, :func:`github_problems` checks what
GitHub documents for code scanning and the schema does not express ("SARIF support for code scanning",
https://docs.github.com/en/code-security/reference/code-scanning/sarif-files/sarif-support-for-code-scanning, and
its upload limits, .../troubleshoot-sarif-uploads/results-exceed-limit).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from loopwarden._cli.main import main
from loopwarden.domain import ArtifactKind, Finding, Location, Report, Severity, TargetResult
from loopwarden.report.interface import get_renderer
from loopwarden.report.sarif import to_sarif
from loopwarden.rules import all_rules

TESTS = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(TESTS / "corpus"))
import _container_payloads as cp  # noqa: E402 - the corpus builders live outside the package

SCHEMA = TESTS / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
# The OASIS file, byte for byte (SARIF v2.1.0 Errata 01, OASIS Standard, schemas/sarif-schema-2.1.0.json).
SCHEMA_SHA256 = "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"
DOCS = TESTS.parent / "docs" / "rules.md"


# ------------------------------------------------------------------------------------------------ the checks


@cache
def _validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_bytes())
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def schema_errors(log: dict[str, Any]) -> list[str]:
    errors = sorted(_validator().iter_errors(log), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


# RFC 3986 URI-reference characters; '%' only as a percent-escape. jsonschema checks format "uri-reference" only
# when an optional package is installed, so this is checked here.
_URI_REF = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$")
_SCORE = re.compile(r"^(?:10(?:\.0+)?|\d(?:\.\d+)?)$")
_LEVELS = {"none", "note", "warning", "error"}
_MAX_RUNS, _MAX_RESULTS, _MAX_RULES, _MAX_LOCATIONS, _MAX_TAGS = 20, 25_000, 25_000, 10, 20


def _region_problems(where: str, region: dict[str, Any]) -> list[str]:
    """SARIF 3.30.1: a region is a text region, a binary region, or both describing the same bytes; loopwarden
    never mixes them (a binary model file must not get a text region, GitHub needs startLine for text)."""
    text = {"startLine", "startColumn", "endLine", "endColumn", "charOffset", "charLength"} & region.keys()
    binary = {"byteOffset", "byteLength"} & region.keys()
    if text and binary:
        return [f"{where}: region mixes text and binary properties {sorted(region)}"]
    if text and not (isinstance(region.get("startLine"), int) and region["startLine"] >= 1):
        return [f"{where}: text region without a startLine >= 1"]
    if binary and not (isinstance(region.get("byteOffset"), int) and region["byteOffset"] >= 0):
        return [f"{where}: binary region without a byteOffset >= 0"]
    return [] if text or binary else [f"{where}: empty region"]


def github_problems(log: dict[str, Any], *, relative_only: bool = True) -> list[str]:
    """What GitHub code scanning requires beyond the schema; empty means ingestible.

    ``relative_only``: every artifact URI must be relative to %SRCROOT% (true for a scan of files under the
    working directory, which is how CI runs it); absolute file URIs are allowed otherwise.
    """
    p: list[str] = []
    if not log.get("$schema") or log.get("version") != "2.1.0":
        p.append("$schema and version 2.1.0 are required")
    runs = log.get("runs") or []
    if not 1 <= len(runs) <= _MAX_RUNS:
        p.append(f"{len(runs)} runs (1..{_MAX_RUNS})")
    for r_i, run in enumerate(runs):
        driver = run["tool"]["driver"]
        if not driver.get("name"):
            p.append(f"run {r_i}: tool.driver.name is required")
        if len(run["tool"].get("extensions", [])) > 100:
            p.append(f"run {r_i}: more than 100 tool extensions")
        rules = driver.get("rules")
        if not isinstance(rules, list):
            p.append(f"run {r_i}: tool.driver.rules[] is required")
            continue
        if len(rules) > _MAX_RULES:
            p.append(f"run {r_i}: {len(rules)} rules > {_MAX_RULES}")
        ids = [rule.get("id") for rule in rules]
        if len(set(ids)) != len(ids):
            p.append(f"run {r_i}: duplicate rule ids")
        for rule in rules:
            rid = rule.get("id") or "<no id>"
            for key in ("shortDescription", "fullDescription", "help"):
                text = (rule.get(key) or {}).get("text")
                if not isinstance(text, str) or not text.strip():
                    p.append(f"{rid}: {key}.text is required and must not be empty")
                elif key != "help" and len(text) > 1024:
                    p.append(f"{rid}: {key}.text longer than 1024 characters")
            if len(rule.get("name", "")) > 255:
                p.append(f"{rid}: name longer than 255 characters")
            level = rule.get("defaultConfiguration", {}).get("level", "warning")
            if level not in {"note", "warning", "error"}:
                p.append(f"{rid}: defaultConfiguration.level {level!r}")
            props = rule.get("properties", {})
            tags = props.get("tags", [])
            if len(tags) > _MAX_TAGS:
                p.append(f"{rid}: {len(tags)} tags > {_MAX_TAGS}")
            score = props.get("security-severity")
            if not (isinstance(score, str) and _SCORE.match(score) and 0.0 <= float(score) <= 10.0):
                p.append(f"{rid}: security-severity {score!r} is not a string number in 0.0..10.0")
            elif "security" not in tags:
                p.append(f"{rid}: a security-severity needs the 'security' tag")
            if props.get("precision", "high") not in {"very-high", "high", "medium", "low"}:
                p.append(f"{rid}: precision {props['precision']!r}")
            if props.get("problem.severity", "error") not in {"error", "warning", "recommendation"}:
                p.append(f"{rid}: problem.severity {props['problem.severity']!r}")
        bases = run.get("originalUriBaseIds", {})
        results = run.get("results")
        if not isinstance(results, list):
            p.append(f"run {r_i}: results[] is required")
            continue
        if len(results) > _MAX_RESULTS:
            p.append(f"run {r_i}: {len(results)} results > {_MAX_RESULTS}")
        seen: set[tuple[str, str]] = set()
        for i, res in enumerate(results):
            where = f"result {i} ({res.get('ruleId')})"
            if res.get("ruleId") not in ids:
                p.append(f"{where}: ruleId is not in tool.driver.rules")
            elif "ruleIndex" in res and ids[res["ruleIndex"]] != res["ruleId"]:
                p.append(f"{where}: ruleIndex points at another rule")
            if res.get("level", "warning") not in _LEVELS:
                p.append(f"{where}: level {res.get('level')!r}")
            if not (res.get("message") or {}).get("text", "").strip():
                p.append(f"{where}: message.text is required")
            fps = res.get("partialFingerprints") or {}
            line_hash = fps.get("primaryLocationLineHash")
            if not isinstance(line_hash, str) or not line_hash:
                p.append(f"{where}: partialFingerprints.primaryLocationLineHash is required")
            elif (res.get("ruleId"), line_hash) in seen:
                p.append(f"{where}: fingerprint shared with another result (alerts would merge)")
            else:
                seen.add((res["ruleId"], line_hash))
            locations = res.get("locations") or []
            if not 1 <= len(locations) <= _MAX_LOCATIONS:
                p.append(f"{where}: {len(locations)} locations (GitHub needs 1..{_MAX_LOCATIONS})")
            for loc in locations:
                physical = loc.get("physicalLocation") or {}
                art = physical.get("artifactLocation") or {}
                uri = art.get("uri", "")
                if not uri or not _URI_REF.match(uri):
                    p.append(f"{where}: artifactLocation.uri {uri!r} is not a URI reference")
                    continue
                if "region" in physical:
                    p.extend(_region_problems(where, physical["region"]))
                if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri) or uri.startswith("/"):
                    if relative_only:
                        p.append(f"{where}: absolute artifact URI {uri!r} (GitHub needs repository-relative)")
                    continue
                if any(seg == ".." for seg in uri.split("/")):
                    p.append(f"{where}: relative URI {uri!r} climbs out of its base")
                base = art.get("uriBaseId")
                if base is not None and base not in bases:
                    p.append(f"{where}: uriBaseId {base!r} not declared in originalUriBaseIds")
    return p


def assert_ingestible(log: dict[str, Any], *, relative_only: bool = True) -> None:
    assert schema_errors(log) == []
    assert github_problems(log, relative_only=relative_only) == []


# ------------------------------------------------------------------------------------- the shared renderer


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
    # the pickle rules come from their Rule classes now, not from a finding's message
    assert by_rule["LW-MODEL-001"]["shortDescription"]["text"] == "Callable that executes code"
    assert by_rule["LW-MODEL-001"]["name"] == "PickleExecCallable"
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


def test_shared_renderer_validates_against_the_oasis_schema(tmp_path: Path) -> None:
    log = to_sarif(_report(tmp_path), base=tmp_path)
    # one target lies outside the base on purpose: its absolute file URI is valid SARIF, just not repo-relative
    assert_ingestible(log, relative_only=False)
    (problem,) = github_problems(log)
    assert "(LW-CORE-001): absolute artifact URI 'file:///elsewhere/u.bin'" in problem
    rendered = json.loads(get_renderer("sarif").render(_report(tmp_path)))
    assert schema_errors(rendered) == []


def test_the_checks_catch_what_github_or_the_schema_reject(tmp_path: Path) -> None:
    """The validators are not vacuous: each defect below is caught."""
    good = to_sarif(_report(tmp_path), base=tmp_path)

    def broken(change: Any) -> dict[str, Any]:
        log = json.loads(json.dumps(good))
        change(log["runs"][0])
        return log

    no_message = broken(lambda run: run["results"][0].pop("message"))
    assert any("'message' is a required property" in e for e in schema_errors(no_message))
    bad_level = broken(lambda run: run["results"][0].update(level="fatal"))
    assert schema_errors(bad_level)
    integer = broken(
        lambda run: run["tool"]["driver"]["rules"][0]["properties"].update({"security-severity": "9"})
    )
    assert github_problems(integer, relative_only=False) == []  # "9" is a score GitHub accepts
    for bad in ("high", "11.0", 9.5, "-1"):
        log = broken(
            lambda run, b=bad: run["tool"]["driver"]["rules"][0]["properties"].update(
                {"security-severity": b}
            )
        )
        assert any("security-severity" in e for e in github_problems(log, relative_only=False)), bad
    no_help = broken(lambda run: run["tool"]["driver"]["rules"][1].pop("help"))
    assert any("help.text is required" in e for e in github_problems(no_help, relative_only=False))
    orphan = broken(lambda run: run["results"][1].update(ruleId="LW-MODEL-999"))
    assert any("not in tool.driver.rules" in e for e in github_problems(orphan, relative_only=False))
    no_fp = broken(lambda run: run["results"][1].pop("partialFingerprints"))
    assert any("primaryLocationLineHash" in e for e in github_problems(no_fp, relative_only=False))
    mixed = broken(
        lambda run: [
            r["locations"][0]["physicalLocation"].update(region={"startLine": 1, "byteOffset": 12})
            for r in run["results"]
            if r["ruleId"] == "LW-MODEL-001"
        ]
    )
    assert any("mixes text and binary" in e for e in github_problems(mixed, relative_only=False))
    spaced = broken(
        lambda run: run["results"][1]["locations"][0]["physicalLocation"]["artifactLocation"].update(
            uri="a b"
        )
    )
    assert any("not a URI reference" in e for e in github_problems(spaced, relative_only=False))


def test_vendored_schema_is_the_oasis_file() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256
    schema = json.loads(SCHEMA.read_bytes())
    assert (
        schema["id"]
        == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    )
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"


def test_deterministic(tmp_path: Path) -> None:
    a = get_renderer("sarif").render(_report(tmp_path))
    b = get_renderer("sarif").render(_report(tmp_path))
    assert a == b
    json.loads(a)


def test_fingerprints_differ_per_finding(tmp_path: Path) -> None:
    log = to_sarif(_report(tmp_path), base=tmp_path)
    fps = [tuple(r["partialFingerprints"].values()) for r in log["runs"][0]["results"]]
    assert len(set(fps)) == len(fps)
    for r in log["runs"][0]["results"]:
        assert re.fullmatch(r"[0-9a-f]{16}:1", r["partialFingerprints"]["primaryLocationLineHash"])


def test_fingerprints_do_not_depend_on_how_the_path_was_given(tmp_path: Path) -> None:
    """The same finding named by an absolute path under the base and by the relative one keeps its identity."""
    loc_abs = Location(str(tmp_path / "m" / "x.pkl"), offset=2)
    loc_rel = Location("m/x.pkl", offset=2)
    logs = [
        to_sarif(
            Report("0.1.0", (TargetResult.from_findings(loc.path, ArtifactKind.MODEL, [f]),)), base=tmp_path
        )
        for loc in (loc_abs, loc_rel)
        for f in [Finding("LW-MODEL-001", Severity.CRITICAL, "os.system", loc)]
    ]
    a, b = (log["runs"][0]["results"][0] for log in logs)
    assert a["partialFingerprints"] == b["partialFingerprints"]
    assert a["locations"] == b["locations"]


def test_paths_that_climb_out_of_the_base_are_not_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "repo"
    (base / "sub").mkdir(parents=True)
    monkeypatch.chdir(base / "sub")
    targets = (
        TargetResult.from_findings("../m.pt", ArtifactKind.MODEL, []),  # under the base after all
        TargetResult.from_findings("../../out.pt", ArtifactKind.MODEL, []),  # outside it
        TargetResult.from_findings(str(base / "a" / ".." / ".." / "x.pt"), ArtifactKind.MODEL, []),
    )
    report = Report(
        "0.1.0",
        tuple(TargetResult.from_findings(t.path, t.kind, [], unverified_reason="unknown") for t in targets),
    )
    log = to_sarif(report, base=base)
    uris = sorted(
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in log["runs"][0]["results"]
    )
    assert uris == [(tmp_path / "out.pt").as_uri(), (tmp_path / "x.pt").as_uri(), "m.pt"]
    assert_ingestible(log, relative_only=False)


# ------------------------------------------------------------------------------ the CLI producers, end to end


def _model_corpus(root: Path) -> None:
    """Model files that fire pickle rules and container rules, plus unverified and clean ones."""
    files = {
        "evil.pkl": cp.evil_pickle(),  # LW-MODEL-001 at a byte offset
        "evil.pt": cp.torch_zip(cp.evil_pickle()),  # LW-MODEL-001 inside an archive member
        "weights.safetensors": cp.evil_pickle(),  # LW-MODEL-029 disguised format
        "chat.gguf": cp.gguf_file(cp.SSTI_TEMPLATES["cycler_globals"]),  # LW-MODEL-040
        "escape.zip": cp.zip_of({"../../evil.pkl": cp.evil_pickle()}),  # LW-MODEL-027
        "links.tar.gz": cp.tar_of({"a/data.pkl": cp.benign_pickle()}, links={"a/l": "/etc/passwd"}),  # 028
        "truncated.pkl": cp.evil_pickle()[:-3],  # LW-MODEL-012, unverified
        "noise.bin": bytes(range(256)) * 4,  # unknown format: unverified
        "obj.npy": cp.npy_object(cp.benign_pickle()),  # LW-MODEL-041 (info)
        "lambda.keras": cp.keras_zip(cp.keras_lambda_config()),  # LW-MODEL-032
        "ext.onnx": cp.onnx_model(location="../../etc/passwd"),  # LW-MODEL-035
        "sub/good.pt": cp.torch_zip(cp.benign_pickle()),  # clean
        "sub/name with space#1.pkl": cp.evil_pickle(0),  # a name that needs percent-escapes in a URI
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_scan_model_sarif_is_valid_and_ingestible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _model_corpus(tmp_path / "models")
    assert main(["scan", "model", "models", "--format", "sarif", "-o", "rel.sarif"]) == 1
    assert main(["scan", "model", str(tmp_path / "models"), "--format", "sarif", "-o", "abs.sarif"]) == 1
    capsys.readouterr()
    text = (tmp_path / "rel.sarif").read_text(encoding="utf-8")
    # absolute or relative arguments: the same document, so alerts keep their identity between CI set-ups
    assert (tmp_path / "abs.sarif").read_text(encoding="utf-8") == text
    log = json.loads(text)
    assert_ingestible(log)
    (run,) = log["runs"]
    used = {r["ruleId"] for r in run["results"]}
    assert {"LW-MODEL-001", "LW-MODEL-012", "LW-CORE-001"} <= used  # pickle rules and an unverified target
    assert {"LW-MODEL-027", "LW-MODEL-028", "LW-MODEL-029", "LW-MODEL-040"} <= used  # container rules
    known = all_rules()
    for rule in run["tool"]["driver"]["rules"]:
        # every rule shown comes from the registry (a derived entry would be named like "LWMODEL001")
        assert rule["name"] == known[rule["id"]].__name__
        assert rule["shortDescription"]["text"] == known[rule["id"]].title
        # GitHub reads 0.0 as "no security severity": meant for INFO rules only, every other rule scores above it
        score = float(rule["properties"]["security-severity"])
        assert (score == 0.0) == (known[rule["id"]].severity is Severity.INFO), rule["id"]
    assert "LW-MODEL-041" in used  # an INFO rule is among them
    # nothing of this machine's paths in the results: locations are relative to %SRCROOT%
    assert str(tmp_path) not in json.dumps(run["results"])
    unverified = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in run["results"]
        if r["ruleId"] == "LW-CORE-001"
    }
    assert unverified == {"models/noise.bin", "models/truncated.pkl"}
    assert "models/sub/name%20with%20space%231.pkl" in text
    assert "models/sub/good.pt" not in text  # a clean file has no result


def test_data_scan_sarif_is_valid_and_ingestible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text(
        '{"prompt": "hi", "response": "hello"}\n{"prompt": "yo \\u200b there", "response": "hey"}\n'
    )
    (data / "bad.jsonl").write_text('{"prompt": "hi", "response": "hello"}\n{not json\n')
    (data / "c.jsonl.gz").write_bytes(gzip.compress(b'{"prompt": "x \\u202e y", "response": "z"}\n'))
    capsys.readouterr()
    assert main(["data", "scan", "data", "--format", "sarif"]) == 1
    log = json.loads(capsys.readouterr().out)
    assert_ingestible(log)
    (run,) = log["runs"]
    by_uri = {
        (r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
        for r in run["results"]
    }
    assert by_uri == {
        ("LW-DATA-042", "data/a.jsonl"),
        ("LW-DATA-041", "data/c.jsonl.gz"),
        ("LW-CORE-001", "data/bad.jsonl"),
    }
    known = all_rules()
    assert all(rule["name"] == known[rule["id"]].__name__ for rule in run["tool"]["driver"]["rules"])


# ------------------------------------------------------------- rule metadata that SARIF carries (LW-MODEL-*)


def _doc_rows() -> dict[str, tuple[str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    rows = re.finditer(r"^\|\s*(LW-MODEL-\d{3})\s*\|([^|]*)\|([^|]*)\|", text, re.MULTILINE)
    return {m.group(1): (m.group(2).strip(), m.group(3).strip()) for m in rows}


def test_every_pickle_rule_id_the_code_emits_is_a_registered_rule() -> None:
    """Scans the pickle analysis' sources for rule ids, so a new id without a Rule class fails here."""
    src = TESTS.parent / "src" / "loopwarden" / "checks" / "models"
    emitted = set()
    for name in ("pickle_vm.py", "allowlist.py"):
        emitted |= set(re.findall(r"\"(LW-MODEL-\d{3})\"", (src / name).read_text(encoding="utf-8")))
    assert len(emitted) >= 17
    assert emitted <= set(all_rules())
    from loopwarden.checks.models import allowlist, pickle_vm

    constants = {v for m in (allowlist, pickle_vm) for k, v in vars(m).items() if k.startswith("RULE_")}
    assert {c for c in constants if isinstance(c, str)} <= set(all_rules())


def test_model_rules_agree_with_docs_rules_md() -> None:
    """Title and severity of every LW-MODEL rule class match its row in docs/rules.md. Where the doc gives a
    range ("high (low for links that stay inside)") the class carries the first, the default; LW-MODEL-015 takes
    the severity of what it counts, so the class carries the maximum."""
    rows = _doc_rows()
    model_rules = {rid: r for rid, r in all_rules().items() if rid.startswith("LW-MODEL-")}
    assert {f"LW-MODEL-{n:03d}" for n in (*range(1, 17), 18)} <= set(model_rules)
    assert set(model_rules) == set(rows)
    for rid, rule in model_rules.items():
        sev, title = rows[rid]
        expected = "critical" if sev == "(highest suppressed)" else sev.split()[0]
        assert rule.severity.name.lower() == expected, rid
        assert rule.title.startswith(title) or title.startswith(rule.title), rid
        assert rule.help, rid
