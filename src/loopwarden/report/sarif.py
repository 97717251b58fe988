"""SARIF 2.1.0 for GitHub code scanning and other consumers. Deterministic: sorted, no timestamps.

Rule metadata (descriptions, help, ``security-severity``) comes from the rule registry
(:mod:`loopwarden.rules`);
a rule id that no layer defines still gets a rule entry derived from its findings, so output never breaks.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar, Final

from loopwarden.domain import Finding, Report, Rule, Severity, TargetResult, Verdict

__all__ = ["SarifRenderer", "to_sarif"]

SCHEMA: Final = "https://json.schemastore.org/sarif-2.1.0.json"
INFO_URI: Final = "https://github.com/loopwarden/loopwarden"
_SECURITY_SEVERITY: Final = {
    Severity.INFO: "0.0",
    Severity.LOW: "2.0",
    Severity.MEDIUM: "5.0",
    Severity.HIGH: "8.0",
    Severity.CRITICAL: "9.5",
}
_LEVEL: Final = {
    Severity.INFO: "note",
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}


def _uri(path: str, base: Path | None) -> tuple[str, bool]:
    """A relative URI (with %SRCROOT%) when ``path`` lies under ``base``, else an absolute file URI.

    A relative path is taken as relative to the base, unless it climbs out of it ('..'), which a relative URI
    under %SRCROOT% cannot express: such a path, like an absolute one, is normalised and made relative to the
    base when it lies under it.
    """
    p = Path(path)
    if not p.is_absolute():
        if ".." not in p.parts:
            return urllib.parse.quote(p.as_posix()), True
        p = Path(os.path.abspath(p))
    p = Path(os.path.normpath(p))  # '/base/a/../../x' must not pass as lying under /base
    if base is not None:
        try:
            return urllib.parse.quote(p.relative_to(base).as_posix()), True
        except ValueError:
            pass
    return p.as_uri(), False


def _layer(rule_id: str) -> str:
    parts = rule_id.split("-")
    return parts[1].lower() if len(parts) > 2 else "core"


def _rule_entry(rule_id: str, rule: type[Rule] | None, sample: Finding | None) -> dict[str, Any]:
    if rule is not None:
        title, text, severity, name = rule.title, rule.help or rule.title, rule.severity, rule.__name__
    else:
        severity = sample.severity if sample else Severity.HIGH
        title = (sample.message.split(":")[-1].strip() if sample else rule_id)[:120] or rule_id
        text, name = f"{title}. See docs/rules.md for {rule_id}.", rule_id.replace("-", "")
    return {
        "id": rule_id,
        "name": name,
        "shortDescription": {"text": title},
        "fullDescription": {"text": text},
        "help": {"text": text, "markdown": f"**{rule_id}: {title}**\n\n{text}\n\nSee `docs/rules.md`."},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "helpUri": f"{INFO_URI}/blob/main/docs/rules.md#{rule_id.lower()}",
        "properties": {
            "security-severity": _SECURITY_SEVERITY[severity],
            "tags": ["security", "loopwarden", _layer(rule_id)],
            "precision": "high",
            "problem.severity": "error" if severity >= Severity.HIGH else "warning",
        },
    }


def _fingerprints(*parts: str) -> dict[str, str]:
    """Stable identity of a result across runs and machines (no absolute path goes in).

    GitHub code scanning matches alerts on ``primaryLocationLineHash`` only; when it is absent, its upload action
    computes one from the lines of the file, which for a binary model file means hashing the whole file and
    fingerprints that change whenever any byte does. Loopwarden supplies its own, in the
    ``<hash>:<occurrence>`` shape GitHub uses.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return {"loopwardenFinding/v1": digest, "primaryLocationLineHash": f"{digest[:16]}:1"}


def _result(
    rule_id: str,
    index: int,
    severity: Severity,
    message: str,
    t: TargetResult,
    f: Finding | None,
    base: Path | None,
) -> dict[str, Any]:
    uri, relative = _uri(t.path, base)
    artifact: dict[str, Any] = {"uri": uri}
    if relative:
        artifact["uriBaseId"] = "%SRCROOT%"
    physical: dict[str, Any] = {"artifactLocation": artifact}
    loc: dict[str, Any] = {"physicalLocation": physical}
    member = f.location.member if f else None
    if f is not None and member is None:
        if f.location.line is not None:
            physical["region"] = {"startLine": max(1, f.location.line)}
        elif f.location.offset is not None:
            physical["region"] = {"byteOffset": max(0, f.location.offset), "byteLength": 1}
    if member is not None:
        loc["logicalLocations"] = [{"fullyQualifiedName": member, "kind": "member"}]
        suffix = ""
        if f is not None and f.location.line is not None:
            suffix = f" line {f.location.line}"
        elif f is not None and f.location.offset is not None:
            suffix = f" offset {f.location.offset}"
        message = f"{message} (in archive member '{member}'{suffix})"
    props: dict[str, Any] = {"severity": str(severity)}
    if f is not None and f.evidence:
        props["evidence"] = f.to_json()["evidence"]
    # the fingerprint names the artifact by its URI (relative to the base when it can be), never by the path
    # as given, so the same finding keeps its identity whether the scan was given absolute or relative paths
    fp_where = str(dataclasses.replace(f.location, path=uri)) if f else uri
    return {
        "ruleId": rule_id,
        "ruleIndex": index,
        "level": _LEVEL[severity],
        "message": {"text": message},
        "locations": [loc],
        "partialFingerprints": _fingerprints(rule_id, fp_where, message),
        "properties": props,
    }


def to_sarif(report: Report, *, base: Path | None = None) -> dict[str, Any]:
    """The SARIF log (one run) for ``report``; ``base`` makes absolute paths under it relative."""
    from loopwarden.rules import UnverifiedTarget, all_rules

    known = all_rules()
    used: dict[str, Finding | None] = {}
    for t in report.targets:
        if t.verdict is Verdict.UNVERIFIED:
            used.setdefault(UnverifiedTarget.rule_id, None)
        for f in t.findings:
            used.setdefault(f.rule_id, f)
    rule_ids = sorted(used)
    index = {rid: i for i, rid in enumerate(rule_ids)}
    rules = [_rule_entry(rid, known.get(rid), used[rid]) for rid in rule_ids]
    results: list[dict[str, Any]] = []
    for t in report.targets:
        results.extend(
            _result(f.rule_id, index[f.rule_id], f.severity, f.message, t, f, base) for f in t.findings
        )
        if t.verdict is Verdict.UNVERIFIED:
            rid = UnverifiedTarget.rule_id
            msg = f"not fully analysed: {t.reason or 'unknown reason'}"
            results.append(_result(rid, index[rid], UnverifiedTarget.severity, msg, t, None, base))
    results.sort(key=lambda r: json.dumps(r, sort_keys=True))
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": report.tool,
                "version": report.version,
                "semanticVersion": report.version,
                "informationUri": INFO_URI,
                "rules": rules,
            }
        },
        "results": results,
        "columnKind": "utf16CodeUnits",
    }
    if base is not None:
        root = base.as_uri()
        # a base URI must end with '/' (SARIF 3.14.14); the file-system root already does
        run["originalUriBaseIds"] = {"%SRCROOT%": {"uri": root if root.endswith("/") else root + "/"}}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}


class SarifRenderer:
    name: ClassVar[str] = "sarif"

    def __init__(self, base: Path | None = None) -> None:
        self.base = base if base is not None else Path(os.getcwd())

    def render(self, report: Report, *, fail_on: Severity = Severity.LOW, color: bool = False) -> str:
        return (
            json.dumps(to_sarif(report, base=self.base), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
        )
