"""Entry point. Finds the command group, imports only that group's module, and maps errors to exit codes.

Exit codes (DESIGN.md): 0 nothing at or above --fail-on; 1 findings, unverified input or failed verification;
2 usage or environment error.
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
from collections.abc import Sequence
from typing import Final, Protocol

from loopwarden import __version__
from loopwarden.errors import LoopwardenError

# name -> (module, one-line help). Modules are imported only when their group runs, so start-up stays fast.
GROUPS: Final[dict[str, tuple[str, str]]] = {
    "init": ("loopwarden._cli.init", "create a workspace: loopwarden.toml, keys and an empty ledger"),
    "keys": ("loopwarden._cli.keys", "create, list and export signing keys"),
    "sign": ("loopwarden._cli.sign", "sign a model, dataset or file set (OpenSSF Model Signing v1.0)"),
    "verify": ("loopwarden._cli.verify", "verify a model, dataset or file set against its OMS signature"),
    "ledger": ("loopwarden._cli.ledger", "append to, inspect, prove and audit the loop's ledger"),
    "record": ("loopwarden._cli.record", "record lineage: train, generate, eval, agent-session, promote"),
    "lineage": ("loopwarden._cli.lineage", "query lineage: show, ancestors, descendants, path, blast-radius"),
    "quarantine": ("loopwarden._cli.quarantine", "quarantine an artifact: taint it and all it influenced"),
    "clear": ("loopwarden._cli.clear", "a human reviewer's signed clearance of a quarantined artifact"),
    "gate": ("loopwarden._cli.gate", "may an artifact be promoted? allow, deny or escalate, with reasons"),
    "policy": ("loopwarden._cli.policy", "capability policy: check, record, approve, diff, audit, trend"),
    "scan": ("loopwarden._cli.scan", "scan model files for payloads without loading them"),
    "data": ("loopwarden._cli.data", "dataset manifests, verify, diff, Croissant export; poisoning scans"),
    "demo": ("loopwarden._cli.demo", "run the main job on embedded defaults in a temporary workspace"),
}

_GLOBAL_WITH_VALUE: Final = {"--workspace"}
_GLOBAL_FLAGS: Final = {"--json"}


class GroupModule(Protocol):
    def build(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


def _overview() -> str:
    width = max(len(n) for n in GROUPS)
    lines = [
        "usage: loopwarden [--version] [--workspace DIR] [--json] COMMAND ...",
        "",
        "Security controls for AI-builds-AI loops.",
        "",
        "commands:",
        *(f"  {name.ljust(width)}  {text}" for name, (_, text) in GROUPS.items()),
        "",
        "Run 'loopwarden COMMAND --help' for a command's options.",
        "Exit codes: 0 clean/verified, 1 findings/unverified/verification failed, 2 usage or environment error.",
    ]
    return "\n".join(lines)


def _share_common_options(parser: argparse.ArgumentParser) -> None:
    """Let --workspace and --json also follow a sub-command (``loopwarden ledger verify --json``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                have = {s for a in sub._actions for s in a.option_strings}
                if "--workspace" not in have:
                    sub.add_argument(
                        "--workspace", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS
                    )
                if "--json" not in have:
                    sub.add_argument(
                        "--json", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
                    )
                _share_common_options(sub)


def main(argv: Sequence[str] | None = None) -> int:
    # File names that are not valid UTF-8 (kept by Python as lone surrogates) and text taken from scanned files
    # are written escaped, never as an encoding error that loses the whole report.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    args = list(sys.argv[1:] if argv is None else argv)
    hoisted: list[str] = []
    i = 0
    while i < len(args) and args[i].startswith("-"):
        a = args[i]
        if a in ("--version", "-V"):
            print(f"loopwarden {__version__}")
            return 0
        if a in ("-h", "--help"):
            print(_overview())
            return 0
        if a in _GLOBAL_FLAGS:
            hoisted.append(a)
            i += 1
        elif a in _GLOBAL_WITH_VALUE and i + 1 < len(args):
            hoisted += [a, args[i + 1]]
            i += 2
        elif a.split("=", 1)[0] in _GLOBAL_WITH_VALUE:
            hoisted.append(a)
            i += 1
        else:
            print(f"loopwarden: error: unknown option {a}\n\n{_overview()}", file=sys.stderr)
            return 2
    if i >= len(args):
        print(_overview(), file=sys.stderr)
        return 2
    group = args[i]
    if group not in GROUPS:
        print(f"loopwarden: error: unknown command {group!r}\n\n{_overview()}", file=sys.stderr)
        return 2
    module: GroupModule = importlib.import_module(GROUPS[group][0])
    parser = argparse.ArgumentParser(prog=f"loopwarden {group}", description=GROUPS[group][1])
    parser.add_argument(
        "--workspace", metavar="DIR", help="the workspace (default: found by walking up from cwd)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable JSON output")
    module.build(parser)
    _share_common_options(parser)
    try:
        ns = parser.parse_args(hoisted + args[i + 1 :])
    except SystemExit as exc:  # argparse reports usage errors itself
        return 0 if exc.code == 0 else 2
    try:
        return module.run(ns)
    except LoopwardenError as exc:
        print(f"loopwarden: error: {exc.diagnostics()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("loopwarden: interrupted", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 2


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
