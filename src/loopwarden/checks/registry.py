"""Check names mapped to loader functions that import lazily (STYLE rule 3). No registration by side "
"effect."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol, assert_never

from loopwarden.checks.interface import Limits
from loopwarden.domain import Report
from loopwarden.errors import CheckError

__all__ = ["CHECKS", "CheckName", "PathScanner", "load"]

CheckName = Literal["models"]
CHECKS: tuple[CheckName, ...] = ("models",)


class PathScanner(Protocol):
    def __call__(
        self,
        paths: Iterable[str],
        *,
        limits: Limits | None = ...,
        allow: Any = ...,
        jobs: int | None = ...,
        digest: bool = ...,
        progress: Callable[[int, int], None] | None = ...,
    ) -> Report: ...


def _models() -> PathScanner:
    try:
        from loopwarden.checks.models.scanner import scan_paths
    except ImportError as exc:  # a broken install is an error, never a silently skipped check
        raise CheckError(f"the models check cannot be loaded: {exc}") from exc
    return scan_paths


def load(name: CheckName) -> PathScanner:
    """The scanning function of check ``name``."""
    if name == "models":
        return _models()
    assert_never(name)
