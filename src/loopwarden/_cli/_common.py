"""Helpers shared by the command modules: workspace lookup and output. No logic of the tool lives here."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from loopwarden.workspace import Workspace, find_workspace


def workspace(args: argparse.Namespace) -> Workspace:
    return find_workspace(explicit=getattr(args, "workspace", None))


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False) + "\n")


def out(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
