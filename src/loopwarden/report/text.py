"""Text for people: a rich table on a terminal, plain lines when piped (stable, greppable)."""

from __future__ import annotations

import io
from typing import ClassVar

from loopwarden.domain import Report, Severity, TargetResult, Verdict

__all__ = ["TextRenderer"]


def _status(t: TargetResult, fail_on: Severity) -> str:
    if t.verdict is Verdict.UNVERIFIED:
        return "UNVERIFIED"
    if t.verdict is Verdict.CLEAN:
        return "clean"
    return "FAIL" if not t.passed(fail_on) else "findings below threshold"


def _summary(report: Report, fail_on: Severity) -> str:
    c = report.counts()
    failed = sum(1 for t in report.targets if not t.passed(fail_on))
    return (
        f"{len(report.targets)} target(s): {c['clean']} clean, {c['findings']} with findings, "
        f"{c['unverified']} unverified; {failed} fail at --fail-on {fail_on}"
    )


class TextRenderer:
    name: ClassVar[str] = "text"

    def render(self, report: Report, *, fail_on: Severity = Severity.LOW, color: bool = False) -> str:
        if color:
            return self._rich(report, fail_on)
        lines: list[str] = []
        for t in report.targets:
            head = f"{t.path}: {_status(t, fail_on)}"
            if t.reason:
                head += f" ({t.reason})"
            lines.append(head)
            lines.extend(
                f"  {str(f.severity).upper():8} {f.rule_id}  {f.location}: {f.message}" for f in t.findings
            )
        lines.append(_summary(report, fail_on))
        return "\n".join(lines) + "\n"

    def _rich(self, report: Report, fail_on: Severity) -> str:
        from rich.console import Console
        from rich.table import Table

        buf = io.StringIO()
        console = Console(file=buf, force_terminal=True, width=140)
        table = Table(show_lines=False, title="loopwarden scan")
        for col in ("target", "status", "severity", "rule", "where / why"):
            table.add_column(col, overflow="fold")
        styles = {"UNVERIFIED": "bold yellow", "FAIL": "bold red", "clean": "green"}
        for t in report.targets:
            st = _status(t, fail_on)
            style = styles.get(st, "")
            if not t.findings:
                table.add_row(t.path, f"[{style}]{st}[/]" if style else st, "", "", t.reason or "")
            for i, f in enumerate(t.findings):
                table.add_row(
                    t.path if i == 0 else "",
                    (f"[{style}]{st}[/]" if style else st) if i == 0 else "",
                    str(f.severity),
                    f.rule_id,
                    f"{f.location}: {f.message}",
                )
            if t.findings and t.reason:
                table.add_row("", "", "", "", f"unverified: {t.reason}")
        console.print(table)
        console.print(_summary(report, fail_on))
        return buf.getvalue()
