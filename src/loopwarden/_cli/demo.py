"""loopwarden demo — the main job on embedded defaults, in a temporary workspace."""

from __future__ import annotations

import argparse
import sys
import tempfile

from loopwarden._cli._common import emit_json, out
from loopwarden.demo import run_demo


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--keep", metavar="DIR", help="build the demo workspace in DIR and keep it")


def run(args: argparse.Namespace) -> int:
    if args.keep:
        result = run_demo(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="loopwarden-demo-") as tmp:
            result = run_demo(tmp)
    if args.json:
        emit_json(result)
    else:
        for line in result["log"]:
            out(line)
        out("\nledger checkpoint:")
        sys.stdout.write(result["checkpoint"])
    return 0 if result["verified"] else 1
