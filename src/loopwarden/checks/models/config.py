"""The ``[checks.models]`` table of loopwarden.toml, validated at the boundary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopwarden.checks.interface import Limits
from loopwarden.errors import UsageError

__all__ = ["models_settings"]

_LIMIT_KEYS = {
    "max_file_bytes": int,
    "max_depth": int,
    "max_members": int,
    "max_decompression_ratio": float,
    "max_decompressed_bytes": int,
    "max_opcodes": int,
    "max_seconds": float,
}


def models_settings(table: Mapping[str, Any] | None) -> tuple[Limits, Any]:
    """(limits, allow-list) from the table: ``allow``/``deny`` lists and any Limits field by name."""
    from loopwarden.checks.models.allowlist import AllowList

    table = dict(table or {})
    unknown = set(table) - set(_LIMIT_KEYS) - {"allow", "deny"}
    if unknown:
        raise UsageError(f"[checks.models]: unknown setting(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, typ in _LIMIT_KEYS.items():
        if key in table:
            v = table[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
                raise UsageError(f"[checks.models] {key} must be a positive number, got {v!r}")
            values[key] = typ(v)
    allow = AllowList.from_config({k: table[k] for k in ("allow", "deny") if k in table})
    return Limits(**values), allow
