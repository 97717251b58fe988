"""Fuzz targets for the foundation's parsers: they may reject input only with their own error types."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from loopwarden.attest import Envelope, Statement
from loopwarden.errors import AttestationError, VerificationError
from loopwarden.ledger.checkpoint import Checkpoint

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_envelope_parse_bytes(data: bytes) -> None:
    with contextlib.suppress(AttestationError):
        Envelope.parse(data)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "payload": st.text(max_size=40) | json_values,
            "payloadType": st.text(max_size=20) | json_values,
            "signatures": st.lists(
                st.fixed_dictionaries(
                    {}, optional={"keyid": json_values, "sig": st.text(max_size=20) | json_values}
                ),
                max_size=3,
            )
            | json_values,
        },
    )
)
def test_envelope_parse_structures(obj: dict[str, object]) -> None:
    with contextlib.suppress(AttestationError):
        env = Envelope.parse(json.dumps(obj))
        env.statement()


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_statement_parse(obj: object) -> None:
    with contextlib.suppress(AttestationError):
        Statement.from_json(obj)


@settings(max_examples=400, deadline=None)
@given(
    st.fixed_dictionaries(
        {"_type": st.just("https://in-toto.io/Statement/v1")},
        optional={
            "subject": st.lists(
                st.fixed_dictionaries({}, optional={"name": json_values, "digest": json_values}), max_size=3
            )
            | json_values,
            "predicateType": json_values,
            "predicate": json_values,
        },
    )
)
def test_statement_parse_near_valid(obj: dict[str, object]) -> None:
    with contextlib.suppress(AttestationError):
        Statement.from_json(obj)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_checkpoint_parse(text: str) -> None:
    with contextlib.suppress(VerificationError):
        Checkpoint.parse(text)
