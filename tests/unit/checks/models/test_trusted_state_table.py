"""The classes whose compiled code trusts their pickled state each have a check of it."""

from __future__ import annotations

from loopwarden.checks.models import pickle_vm


def test_every_trusted_state_kind_has_a_check() -> None:
    kinds = set(pickle_vm._TRUSTED_STATE.values())
    assert kinds == set(pickle_vm._TRUSTED_CHECKS), kinds ^ set(pickle_vm._TRUSTED_CHECKS)
    for kind, (check, subject, explained) in pickle_vm._TRUSTED_CHECKS.items():
        assert callable(check), kind
        assert ":" in subject, (kind, subject)  # "package:what", the finding's subject
        assert explained.count("{}") == 1, (kind, explained)  # where the problem goes
