"""gensim's TfidfModel weights, and the one gensim function that calls what it is handed.

``TfidfModel(smartirs="ltc")`` keeps ``partial(smartirs_wlocal, local_scheme="l")`` and
``partial(smartirs_wglobal, global_scheme="t")`` (gensim 4.4, ``gensim/models/tfidfmodel.py``): numpy arithmetic
on their numbers, branching on the one-letter scheme. Such a model, saved with ``model.save`` or pickled, was
reported critical (the partial over an unlisted function) and high. ``precompute_idfs(wglobal, dfs, total_docs)``
was allow-listed as a callable, yet calls ``wglobal`` on every value of ``dfs``: a pickle that hands it a class the
allow-list admits for rebuilding only (a constructor that reads the file or loads the model its arguments name)
had that constructor run, unreported. It is now kept, never called. gensim is not a test dependency: the pickles
are written here opcode by opcode, as ``pickle.dumps`` writes the objects.
"""

from __future__ import annotations

import struct

import pytest
from test_redteam_pickle import P4, STOP, call, g, tup, u

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity

_MODULE = "gensim.models.tfidfmodel"


def _int(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _partial(func: str, keyword: str, value: str) -> bytes:
    """``functools.partial(func, keyword=value)`` as protocol 2+ writes it: a call with the function, then a BUILD of
    (func, args, keywords, __dict__)."""
    kwargs = b"}" + u(keyword) + u(value) + b"s"
    return call(g("functools.partial"), g(func)) + tup(g(func), b")", kwargs, b"N") + b"b"


def _model(wlocal: bytes, wglobal: bytes) -> bytes:
    """A TfidfModel rebuilt by NEWOBJ + BUILD with its weights, its scheme and its idfs."""
    state = b"}" + u("wlocal") + wlocal + u("wglobal") + wglobal + u("smartirs") + u("ltc")
    state += (
        u("num_docs") + _int(3) + u("idfs") + b"}" + _int(0) + b"G" + struct.pack(">d", 1.0) + b"s" + b"s"
    )
    return P4 + g(f"{_MODULE}.TfidfModel") + b")\x81" + state + b"b" + STOP


def test_a_tfidf_model_with_smartirs_weights_is_clean() -> None:
    data = _model(
        _partial(f"{_MODULE}.smartirs_wlocal", "local_scheme", "l"),
        _partial(f"{_MODULE}.smartirs_wglobal", "global_scheme", "t"),
    )
    result = analyze_pickle_bytes(data)
    assert [(f.rule_id, f.message) for f in result.findings if f.severity > Severity.MEDIUM] == []
    # the model class itself is a gensim class the name patterns admit
    assert not result.findings, [(f.rule_id, f.message) for f in result.findings]


def test_a_partial_over_another_function_stays_reported() -> None:
    data = _model(
        _partial("os.system", "command", "id"), _partial(f"{_MODULE}.smartirs_wglobal", "global_scheme", "t")
    )
    assert any(f.severity is Severity.CRITICAL for f in analyze_pickle_bytes(data).findings)


@pytest.mark.parametrize(
    "handed",
    [
        "gensim.models.ldaseqmodel.sslm",  # allocates arrays of the sizes it is given
        "xgboost.core.Booster",  # its constructor reads the model file its arguments name
        "torch.utils.data.dataloader.DataLoader",
    ],
)
def test_precompute_idfs_called_with_a_rebuild_only_class_is_reported(handed: str) -> None:
    dfs = b"}" + _int(0) + _int(10**6) + b"s"
    data = P4 + call(g(f"{_MODULE}.precompute_idfs"), g(handed), dfs, _int(10**6)) + STOP
    findings = analyze_pickle_bytes(data).findings
    assert any(f.severity >= Severity.HIGH and "precompute_idfs" in f.message for f in findings), [
        (f.rule_id, f.message) for f in findings
    ]


def test_precompute_idfs_kept_as_an_attribute_is_clean() -> None:
    data = P4 + b"}" + u("precompute") + g(f"{_MODULE}.precompute_idfs") + b"s" + STOP
    assert not analyze_pickle_bytes(data).findings
