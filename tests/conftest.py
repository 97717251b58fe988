"""Shared fixtures: fresh workspaces and statements, all made by code."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from loopwarden.attest.predicates import NOTE
from loopwarden.attest.statement import Statement
from loopwarden.domain import Digest, ResourceDescriptor
from loopwarden.workspace import Workspace, init_workspace


def make_statement(i: int, *, predicate_type: str = NOTE, name: str | None = None) -> Statement:
    digest = Digest("sha256", hashlib.sha256(f"artifact-{i}".encode()).hexdigest())
    subject = ResourceDescriptor.of(name or f"artifact-{i}.bin", digest)
    return Statement((subject,), predicate_type, {"note": f"entry {i}", "n": i})


@pytest.fixture
def statement_factory() -> Callable[..., Statement]:
    return make_statement


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return init_workspace(tmp_path / "ws", name="test-loop")
