"""parse_statement reads ledger content: whatever a predicate holds, it returns a record or a LineageError."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loopwarden.attest import predicates as pt
from loopwarden.attest.statement import Statement
from loopwarden.domain import Digest, ResourceDescriptor
from loopwarden.errors import LineageError
from loopwarden.lineage.record import parse_statement

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_hex = st.text("0123456789abcdef", min_size=64, max_size=64)
_rd = st.builds(
    lambda name, h, ann: {"name": name, "digest": {"sha256": h}, "annotations": ann},
    st.text(max_size=6),
    _hex,
    st.dictionaries(st.sampled_from(["kind", "role", "generation"]), _json, max_size=3),
)
_value = _json | _rd | st.lists(_rd | _json, max_size=3)
_keys = st.sampled_from(
    [
        "buildDefinition",
        "externalParameters",
        "resolvedDependencies",
        "generator",
        "inputs",
        "evalRun",
        "model",
        "suite",
        "scores",
        "session",
        "actingFor",
        "changed",
        "role",
        "artifact",
        "stage",
        "reason",
        "reporter",
        "reviewer",
        "keyid",
        "generation",
    ]
)
_predicate = st.recursive(
    st.dictionaries(_keys, _value, max_size=6),
    lambda inner: st.dictionaries(_keys, inner | _value, max_size=4),
    max_leaves=6,
)


@settings(max_examples=120, deadline=None)
@given(ptype=st.sampled_from(pt.LINEAGE_PREDICATES), predicate=_predicate)
def test_parse_statement_never_crashes(ptype: str, predicate: dict[str, Any]) -> None:
    stmt = Statement((ResourceDescriptor.of("s", Digest.sha256(b"s")),), ptype, predicate)
    error: LineageError | None = None
    try:
        rec = parse_statement(stmt, source="fuzz")
    except LineageError as exc:
        error, rec = exc, None
    if error is not None:
        assert "fuzz" in str(error)  # names the entry
    else:
        assert rec is not None


def test_multi_digest_descriptor_is_named_by_sha256() -> None:
    rd = ResourceDescriptor("x", {"sha512": "ab" * 64, "sha256": "cd" * 32})
    stmt = Statement((rd,), pt.QUARANTINE, {"artifact": rd.to_json(), "reason": "r", "reporter": "p"})
    rec = parse_statement(stmt, source="t")
    assert rec is not None
    assert rec.quarantine is not None
    assert rec.quarantine[0] == Digest("sha256", "cd" * 32)
