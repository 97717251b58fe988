"""The report extension point: a renderer turns a domain Report into text for people or machines."""

from __future__ import annotations

from typing import ClassVar, Literal, Protocol, assert_never

from loopwarden.domain import Report, Severity

__all__ = ["FORMATS", "FormatName", "Renderer", "get_renderer"]

FormatName = Literal["text", "json", "sarif"]
FORMATS: tuple[FormatName, ...] = ("text", "json", "sarif")


class Renderer(Protocol):
    """Render a report. Machine formats are deterministic: the same report gives byte-identical output."""

    name: ClassVar[str]

    def render(self, report: Report, *, fail_on: Severity = Severity.LOW, color: bool = False) -> str: ...


class JsonRenderer:
    """The one JSON envelope (``Report.dumps``)."""

    name: ClassVar[str] = "json"

    def render(self, report: Report, *, fail_on: Severity = Severity.LOW, color: bool = False) -> str:
        return report.dumps()


def get_renderer(name: FormatName) -> Renderer:
    """The renderer for ``name``; each module is imported only when chosen."""
    if name == "json":
        return JsonRenderer()
    if name == "text":
        from loopwarden.report.text import TextRenderer

        return TextRenderer()
    if name == "sarif":
        from loopwarden.report.sarif import SarifRenderer

        return SarifRenderer()
    assert_never(name)
