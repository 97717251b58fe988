"""loopwarden scan model PATH... — scan model files without loading them."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from loopwarden.report.interface import FormatName

from loopwarden.errors import UsageError

_SEVERITIES = ("info", "low", "medium", "high", "critical")


def build(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="WHAT")
    m = sub.add_parser("model", help="model files, folders (recursively) or a Hugging Face cache folder")
    m.add_argument("paths", nargs="+", metavar="PATH")
    m.add_argument(
        "--format", choices=("text", "json", "sarif"), default=None, help="output format (default text)"
    )
    m.add_argument(
        "-o", "--output", metavar="FILE", help="write the report to FILE (atomically) instead of stdout"
    )
    m.add_argument(
        "--fail-on", choices=_SEVERITIES, default="low", help="lowest severity that fails (default low)"
    )
    m.add_argument(
        "--record", action="store_true", help="append a signed scan attestation per file to the ledger"
    )
    m.add_argument("--digest", action="store_true", help="compute each file's SHA-256 (implied by --record)")
    m.add_argument(
        "--jobs", type=int, default=None, metavar="N", help="parallel workers (default: CPU count)"
    )
    m.add_argument("--workspace", metavar="DIR", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
    m.add_argument("--json", action="store_true", help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def _has_workspace_file() -> bool:
    here = os.path.realpath(os.getcwd())
    while True:
        if os.path.isfile(os.path.join(here, "loopwarden.toml")):
            return True
        parent = os.path.dirname(here)
        if parent == here:
            return False
        here = parent


def _write(path: str, text: str) -> None:
    import tempfile
    from pathlib import Path

    target = Path(path)

    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run(args: argparse.Namespace) -> int:
    from loopwarden.checks.models.config import models_settings
    from loopwarden.checks.registry import load
    from loopwarden.domain import Severity, Verdict
    from loopwarden.report.interface import get_renderer

    fmt = args.format or ("json" if getattr(args, "json", False) else "text")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    ws: Any = None
    explicit = getattr(args, "workspace", None)
    if args.record or explicit or _has_workspace_file():
        from loopwarden._cli._common import workspace

        ws = workspace(args)
    limits, allow = models_settings(ws.config.checks.get("models") if ws is not None else None)
    progress = _progress() if sys.stderr.isatty() else None
    scan = load("models")
    try:
        report = scan(
            args.paths,
            limits=limits,
            allow=allow,
            jobs=args.jobs,
            digest=args.record or args.digest,
            progress=progress.update if progress else None,
        )
    finally:
        if progress:
            progress.close()
    fail_on = Severity.parse(args.fail_on)
    for t in report.targets:
        if t.verdict is Verdict.UNVERIFIED:
            print(f"loopwarden: {t.path}: unverified: {t.reason}", file=sys.stderr)
    text = get_renderer(cast("FormatName", fmt)).render(
        report, fail_on=fail_on, color=fmt == "text" and sys.stdout.isatty()
    )
    if args.output:
        _write(args.output, text)
    else:
        sys.stdout.write(text)
    if args.record:
        _record(report, ws)
    return report.exit_code(fail_on)


def _record(report: Any, ws: Any) -> None:
    from loopwarden.checks.record import record_scans

    rec = record_scans(report, check="models", workspace=ws)
    if rec.results:
        print(
            f"loopwarden: recorded {len(rec.results)} scan attestation(s), ledger size {rec.results[-1].tree_size}",
            file=sys.stderr,
        )
    if rec.skipped:
        print(
            f"loopwarden: {rec.skipped} target(s) could not be read, so have no digest to attest",
            file=sys.stderr,
        )


class _progress:  # noqa: N801 - used like a function
    """A rich progress bar on stderr, started lazily (only shown for scans that take a moment)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._task: Any = None

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            if total < 20:
                return
            from rich.console import Console
            from rich.progress import Progress

            self._bar = Progress(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task("scanning", total=total)
        self._bar.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
