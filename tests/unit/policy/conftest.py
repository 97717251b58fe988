"""Fixtures for the policy tests: the shipped example policy bound to test keys, and a fake lineage graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import yaml
from policy_helpers import EXAMPLE, PEOPLE, FakeGraph

from loopwarden.attest.keys import PrivateKey, generate


@pytest.fixture(scope="session")
def keys() -> dict[str, PrivateKey]:
    """One key per person of the example policy, plus the operator's (workspace) key."""
    return {name: generate() for name in (*PEOPLE, "operator")}


@pytest.fixture
def example_raw(keys: dict[str, PrivateKey]) -> dict[str, Any]:
    """The shipped example policy as a plain document, its people bound to the test keys."""
    raw = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for person in raw["people"]:
        person["keyid"] = keys[person["name"]].keyid
    return raw


@pytest.fixture
def fake_graph(keys: dict[str, PrivateKey]) -> Callable[[], FakeGraph]:
    return lambda: FakeGraph(keys["operator"])
