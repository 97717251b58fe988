"""loopwarden: security controls for AI-builds-AI loops.

The stable surface is the facades listed in ``__all__``, the domain types in :mod:`loopwarden.domain`, the error tree
in :mod:`loopwarden.errors` and each extension point's ``interface.py``. Heavy modules load lazily, so
``import loopwarden`` stays cheap for command-line use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "record": "loopwarden.ledger",
    "record_many": "loopwarden.ledger",
    "verify_ledger": "loopwarden.ledger",
    "find_workspace": "loopwarden.workspace",
    "init_workspace": "loopwarden.workspace",
    "Workspace": "loopwarden.workspace",
    "gate": "loopwarden.policy",
    "load_policy": "loopwarden.policy",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopwarden' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
