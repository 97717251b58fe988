"""The scanner against the real loaders: generated pickles (and torch zips) that pickle.load (or torch.load) would
take to a callable the allow-list does not allow are never reported clean.

The oracle (``_loader_oracle``) runs the real C unpickler with a ``find_class`` that records each name and hands
back an inert stub: nothing is imported, nothing runs. The programs reach their callables by every naming and
calling route the VM has to follow (GLOBAL, STACK_GLOBAL from any string opcode or from the memo, INST, OBJ,
NEWOBJ, NEWOBJ_EX, REDUCE, BUILD), with marks, memo traffic and filler around them; half of each batch names
dangerous callables, the rest allowed ones, so that both verdicts are exercised.
"""

from __future__ import annotations

import io
import pickle
import random
import sys
import warnings
import zipfile

import pytest
from _container_payloads import evil_pickle
from _loader_oracle import CallProgram, attribute_path, resolved_names, torch_resolved_names

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext, bytes_blob
from loopwarden.checks.models.dispatch import scan_blob
from loopwarden.checks.models.scanner import default_allow
from loopwarden.domain import Location, Severity

ALLOW = default_allow()


def _verdict(data: bytes, name: str) -> str:
    ctx = ScanContext("oracle", Limits(max_seconds=10), ALLOW)
    try:
        scan_blob(bytes_blob(name, Location(name), data, 0), ctx)
    finally:
        for closer in ctx.closers:
            closer.close()
    if ctx.unverified:
        return "unverified"
    return "findings" if any(f.severity > Severity.INFO for f in ctx.findings) else "clean"


def _disallowed(names: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [n for n in names if attribute_path(*n) and not ALLOW.classify(*n).allowed]


def test_the_oracle_records_without_importing() -> None:
    assert "antigravity" not in sys.modules
    data = b"cantigravity\nfly\n)R."
    assert resolved_names(data, 5) == [("antigravity", "fly")]
    assert "antigravity" not in sys.modules  # recorded, not imported: a stub came back
    names = resolved_names(evil_pickle(2), 5)
    assert _disallowed(names), names
    assert not _disallowed(resolved_names(pickle.dumps({"a": [1, 2.5]}, protocol=4), 5))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_programs_that_reach_a_disallowed_callable_are_never_clean(seed: int) -> None:
    rng = random.Random(seed)
    reached = clean_benign = 0
    escaped: list[tuple[list[tuple[str, str]], bytes]] = []
    for _ in range(700):
        data = CallProgram(rng).program()
        bad = _disallowed(resolved_names(data, 5))
        verdict = _verdict(data, "model.bin")
        if bad:
            reached += 1
            if verdict == "clean":
                escaped.append((bad, data))
        elif verdict == "clean":
            clean_benign += 1
    assert not escaped, escaped[:3]
    assert reached > 250  # the batch exercises the oracle ...
    assert clean_benign > 50  # ... and programs of allowed callables only still come out clean


_RECORDS = [
    "data.pkl",
    "./data.pkl",
    "DATA.pkl",
    "data.pkl ",
    "./../data.pkl",
    "data//data.pkl",
    "x/data.pkl",
]


def _torch_zip(rng: random.Random, benign: bytes, evil: bytes) -> bytes:
    """A torch checkpoint zip with extra data.pkl-like members (duplicates, case, ``./``, nesting) in random
    places, holding the payload or the benign pickle, as a writer could arrange them."""
    prefix = rng.choice(["archive", "model", "a"])
    members = [
        (f"{prefix}/data.pkl", benign),
        (f"{prefix}/data/0", b"\0" * 16),
        (f"{prefix}/version", b"3\n"),
        (f"{prefix}/byteorder", b"little"),
    ]
    for _ in range(rng.randrange(1, 4)):
        name = f"{prefix}/{rng.choice(_RECORDS)}" if rng.random() < 0.8 else rng.choice(_RECORDS)
        members.insert(rng.randrange(len(members) + 1), (name, evil if rng.random() < 0.7 else benign))
    out = io.BytesIO()
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", compression=method) as z:
        warnings.simplefilter("ignore")  # duplicate names are the point
        for name, data in members:
            z.writestr(name, data)
    return out.getvalue()


def test_torch_zips_whose_loaded_record_reaches_a_disallowed_callable_are_never_clean() -> None:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save({"w": torch.ones(2, 2), "n": 3}, buf)
    with zipfile.ZipFile(buf) as z:
        benign = z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))
    rng = random.Random(7)
    reached = 0
    escaped: list[tuple[list[tuple[str, str]], bytes]] = []
    for _ in range(300):
        data = _torch_zip(rng, benign, evil_pickle(2))
        bad = _disallowed(torch_resolved_names(data, 10))
        if bad:
            reached += 1
            if _verdict(data, "model.pt") == "clean":
                escaped.append((bad, data))
    assert not escaped, [b for b, _ in escaped[:3]]
    assert reached > 20
    assert _verdict(buf.getvalue(), "model.pt") == "clean"
