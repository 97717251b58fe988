"""The one place the containers call the pickle analyser (``pickle_vm.analyze_pickle``, the PICKLE "
"contract)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from loopwarden.checks.interface import ResourceLimitExceeded
from loopwarden.checks.models._base import ScanContext
from loopwarden.domain import Finding, Location

__all__ = ["PickleOutcome", "analyse"]


@dataclass(frozen=True, slots=True)
class PickleOutcome:
    findings: tuple[Finding, ...]
    unverified: str | None
    callables: tuple[str, ...]
    pickles: int
    consumed: int
    storages: tuple[tuple[str, int, int | None], ...] = ()
    storage_infos: tuple[tuple[str | None, int | None, int | None, tuple[str, ...] | None], ...] = ()
    sparse: tuple[
        tuple[str, int, tuple[int, ...], tuple[int, ...], tuple[int, ...], int, int | None, bool, bool], ...
    ] = ()


def analyse(
    stream: BinaryIO,
    ctx: ScanContext,
    location: Location,
    *,
    max_pickles: int | None = None,
    joblib: bool = True,
    resync: bool = True,
    prefix: bool = False,
    ext_stops: bool = False,
) -> PickleOutcome:
    """Run the symbolic pickle analyser on ``stream``; never raises for bad input.

    Findings and the unverified reason are returned, not added: the caller decides (a text file that merely
    starts with an opcode character is not a pickle).
    """
    from loopwarden.checks.models.pickle_vm import analyze_pickle

    try:
        res = analyze_pickle(
            stream,
            location=location,
            limits=ctx.limits,
            allow=ctx.allow,
            stacked=True,
            max_pickles=max_pickles,
            joblib=joblib,
            resync=resync,
            prefix=prefix,
            ext_stops=ext_stops,
        )
    except ResourceLimitExceeded as exc:
        return PickleOutcome((), f"resource limit '{exc.bound}' reached in pickle analysis", (), 0, 0)
    return PickleOutcome(
        tuple(res.findings),
        res.unverified,
        tuple(res.callables),
        int(res.pickles),
        int(res.consumed),
        res.storages,
        res.storage_infos,
        res.sparse,
    )
