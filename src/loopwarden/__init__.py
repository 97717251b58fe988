"""loopwarden: security controls for AI-builds-AI loops.

The stable surface is the facades listed in ``__all__``, the domain types in :mod:`loopwarden.domain`, the error tree
in :mod:`loopwarden.errors` and each extension point's ``interface.py``. Heavy modules load lazily, so
``import loopwarden`` stays cheap for command-line use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# facade name -> (module, attribute). The facades are plain functions; the CLI is a client of the same ones.
_LAZY: dict[str, tuple[str, str]] = {
    "scan": ("loopwarden.checks.models.scanner", "scan_paths"),
    "scan_corpus": ("loopwarden.checks.data.poison", "scan_corpus"),
    "sign": ("loopwarden.signing", "sign"),
    "verify": ("loopwarden.signing", "verify"),
    "record": ("loopwarden.ledger", "record"),
    "record_many": ("loopwarden.ledger", "record_many"),
    "verify_ledger": ("loopwarden.ledger", "verify_ledger"),
    "LineageGraph": ("loopwarden.lineage", "LineageGraph"),
    "gate": ("loopwarden.policy", "gate"),
    "load_policy": ("loopwarden.policy", "load_policy"),
    "find_workspace": ("loopwarden.workspace", "find_workspace"),
    "init_workspace": ("loopwarden.workspace", "init_workspace"),
    "Workspace": ("loopwarden.workspace", "Workspace"),
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'loopwarden' has no attribute {name!r}")
    return getattr(importlib.import_module(target[0]), target[1])
