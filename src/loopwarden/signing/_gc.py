"""Pausing the cyclic garbage collector while a folder listing and a signed manifest are built.

Verifying a folder of thousands of files creates tens of thousands of small tuples, strings and dicts that can
never form cycles; the collector's generation sweeps over them cost more than the rest of an incremental
verification (measured: 2 to 9 ms of 30). Reference counting still frees everything as usual. The collector runs
again while files are hashed (:func:`gc_resumed`: that can take minutes, and other threads of the process may
need it), and is switched back on when the call returns, if it was on, so cycles made meanwhile are collected.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

__all__ = ["gc_paused", "gc_resumed"]

P = ParamSpec("P")
R = TypeVar("R")
_paused = 0
"""How many calls currently hold the collector off (they found it on)."""


def gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the cyclic collector paused (process-wide, for the duration of the call)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        global _paused
        if not gc.isenabled():
            return fn(*args, **kwargs)  # off already (the caller's choice, or an outer pause): leave it so
        gc.disable()
        _paused += 1
        try:
            return fn(*args, **kwargs)
        finally:
            _paused -= 1
            gc.enable()

    return wrapper


@contextlib.contextmanager
def gc_resumed() -> Iterator[None]:
    """Let the collector run during a long phase of a paused call (never when the caller had turned it off)."""
    if not _paused or gc.isenabled():
        yield
        return
    gc.enable()
    try:
        yield
    finally:
        if _paused:
            gc.disable()
