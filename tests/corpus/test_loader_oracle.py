"""The scanner against the real loaders: generated pickles (and torch zips) that pickle.load (or torch.load) would
take to a callable the allow-list does not allow are never reported clean.

The oracle (``_loader_oracle``) runs the real C unpickler with a ``find_class`` that records each name and hands
back an inert stub: nothing is imported, nothing runs. The programs reach their callables by every naming and
calling route the VM has to follow (GLOBAL, STACK_GLOBAL from any string opcode or from the memo, INST, OBJ,
NEWOBJ, NEWOBJ_EX, REDUCE, BUILD), with marks, memo traffic and filler around them; half of each batch names
dangerous callables, the rest allowed ones, so that both verdicts are exercised.
"""

from __future__ import annotations

import faulthandler
import io
import os
import pickle
import random
import signal
import struct
import sys
import warnings
import zipfile
from collections.abc import Callable

import pytest
from _container_payloads import evil_pickle
from _loader_oracle import (
    CallProgram,
    Inert,
    NumpyStates,
    attribute_path,
    bounded,
    crashing,
    crashing_alone,
    in_children,
    real_use,
    resolved_names,
    torch_resolved_names,
)

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
    inputs = [_torch_zip(rng, benign, evil_pickle(2)) for _ in range(300)]
    for data, loaded in zip(inputs, in_children(lambda d: torch_resolved_names(d, 10), inputs), strict=True):
        bad = _disallowed(loaded or [])
        if bad:
            reached += 1
            if _verdict(data, "model.pt") == "clean":
                escaped.append((bad, data))
    assert not escaped, [b for b, _ in escaped[:3]]
    assert reached > 20
    assert _verdict(buf.getvalue(), "model.pt") == "clean"


_DESCRS = [
    "'|O'",
    "'O'",
    "'|O8'",
    "'object'",
    "u'|O'",
    "'>O'",
    "'2O'",
    "('|O', (2,))",
    "'i4,O'",
    "'O,i4'",
    "[('a', '|O')]",
    "[('a', '<f4'), ('b', '|O')]",
    "[('a', [('b', '|O')])]",
    "[('x', 'O', (1,))]",
    "'<f4'",
    "'<i8'",
    "'|V8'",
    "'U3'",
    "'|S3'",
    "'<M8[s]'",
    "'b1'",
    "('<f8', (2,))",
    "[('a', '<f4')]",
]


def _npy(rng: random.Random, body: bytes) -> bytes:
    """An .npy whose header spells its dtype, shape and order in any of the ways numpy's reader accepts."""
    items = [
        f"'descr': {rng.choice(_DESCRS)}",
        f"'fortran_order': {rng.choice(['False', 'True'])}",
        f"'shape': {rng.choice(['(1,)', '(2,)', '()', '(1, 1)', '(0,)', '(1L,)'])}",
    ]
    if rng.random() < 0.2:
        rng.shuffle(items)
    if rng.random() < 0.1:
        items.append(f"'descr': {rng.choice(_DESCRS)}")  # a repeated key: the last one counts
    text = "{" + rng.choice([", ", ",", " , "]).join(items) + rng.choice([", }", "}", ",}"])
    version = rng.choice([1, 1, 2, 3])
    raw = text.encode("latin1" if version < 3 else "utf8")
    size = len(raw) + 1 + (10 if version == 1 else 12)
    raw += b" " * ((-size) % 64 if rng.random() < 0.8 else rng.randrange(5)) + b"\n"
    length = struct.pack("<H", len(raw)) if version == 1 else struct.pack("<I", len(raw))
    return b"\x93NUMPY" + bytes([version, 0]) + length + raw + body


def test_npy_and_npz_files_whose_load_reaches_a_disallowed_callable_are_never_clean(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """numpy.load(allow_pickle=True) decides from the header whether the body is a pickle; the scanner must
    decide the same way for every spelling, or at least never call clean what numpy would unpickle."""
    np = pytest.importorskip("numpy")
    fmt = getattr(np.lib, "_format_impl", None) or np.lib.format
    names: list[tuple[str, str]] = []

    class _Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> object:
            names.append((module, name))
            return Inert

    recording = type(pickle)("pickle")
    recording.load = lambda f, **kw: _Recording(f, **kw).load()  # type: ignore[attr-defined]
    recording.dump = pickle.dump  # type: ignore[attr-defined]
    recording.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    monkeypatch.setattr(fmt, "pickle", recording)
    rng = random.Random(11)
    inputs: list[tuple[bytes, str]] = []
    for _ in range(600):
        body = evil_pickle(rng.choice([2, 4])) if rng.random() < 0.8 else b"\0" * 16 + evil_pickle(2)
        if rng.random() < 0.3:
            out = io.BytesIO()
            with warnings.catch_warnings(), zipfile.ZipFile(out, "w") as z:
                warnings.simplefilter("ignore")
                for _ in range(rng.randrange(1, 3)):
                    z.writestr(rng.choice(["a.npy", "b", "c.npy.npy", "d.NPY", "x/e.npy"]), _npy(rng, body))
            inputs.append((out.getvalue(), rng.choice(["m.npz", "m.bin"])))
        else:
            inputs.append((_npy(rng, body), rng.choice(["m.npy", "m.bin"])))

    def loaded_names(data: bytes) -> list[tuple[str, str]]:
        names.clear()

        def load() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numpy's note on Python 2 headers ('1L')
                loaded = np.load(io.BytesIO(data), allow_pickle=True)
                for key in getattr(loaded, "files", ()):
                    loaded[key]

        bounded(load, 5)
        return list(names)

    reached = clean = 0
    escaped: list[bytes] = []
    results = in_children(loaded_names, [data for data, _ in inputs])
    for (data, name), loaded in zip(inputs, results, strict=True):
        verdict = _verdict(data, name)
        if loaded is not None and _disallowed(loaded):
            reached += 1
            if verdict == "clean":
                escaped.append(data)
        elif verdict == "clean":
            clean += 1
    assert not escaped, escaped[:3]
    assert reached > 100
    assert clean > 50  # plain dtypes with a pickle behind the header: numpy reads numbers, nothing to report


def _flip(rng: random.Random, data: bytes) -> bytes:
    """One to three byte-level edits: a changed byte, a deleted or a repeated stretch."""
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        i = rng.randrange(len(b))
        op = rng.randrange(3)
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            del b[i : i + rng.randrange(1, 9)]
        else:
            b[i:i] = b[i : i + rng.randrange(1, 9)]
    return bytes(b)


def test_joblib_dumps_whose_load_reaches_a_disallowed_callable_are_never_clean(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """joblib.load reads each array's bytes straight from the stream; a scanner that skips them by another
    length than joblib's, or reads them as opcodes where joblib does not, disagrees with the loader. The arrays
    here hold pickle calls, and the dumps are edited at random (shapes, dtypes, lengths, opcodes)."""
    np = pytest.importorskip("numpy")
    joblib = pytest.importorskip("joblib")
    numpy_pickle = pytest.importorskip("joblib.numpy_pickle")
    names: list[tuple[str, str]] = []
    real_find_class = numpy_pickle.NumpyUnpickler.find_class

    def find_class(self: object, module: str, name: str) -> object:
        names.append((module, name))
        if module.startswith(
            ("joblib", "numpy")
        ):  # the array wrappers and numpy's own rebuilds, as joblib does
            try:
                return real_find_class(self, module, name)
            except Exception:
                return Inert
        return Inert

    monkeypatch.setattr(numpy_pickle.NumpyUnpickler, "find_class", find_class)
    call = b"cos\nsystem\n(S'id'\ntR."
    dumps = []
    for k in range(12):
        rng = random.Random(k)
        payload = rng.choice([call, b"0" + call, b"N" + call, evil_pickle(2)[2:], b"\x80\x02" + call])
        arrays = {}
        for j in range(rng.randrange(1, 4)):
            dtype = np.dtype(rng.choice(["u1", "<i2", "<f4", "<f8"]))
            raw = (payload * 3)[: len(payload) * 3 // dtype.itemsize * dtype.itemsize]
            arrays[f"a{j}"] = np.frombuffer(raw, dtype=dtype).copy()
        out = io.BytesIO()
        joblib.dump(arrays, out)
        dumps.append(out.getvalue())
    assert all(_verdict(d, "model.joblib") == "clean" for d in dumps)  # as written: the opcodes are numbers
    rng = random.Random(5)
    inputs = [_flip(rng, rng.choice(dumps)) for _ in range(1500)]

    def loaded_names(data: bytes) -> list[tuple[str, str]]:
        names.clear()

        def load() -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                joblib.load(io.BytesIO(data))

        bounded(load, 5)
        return list(names)

    reached = 0
    escaped: list[bytes] = []
    for data, loaded in zip(inputs, in_children(loaded_names, inputs), strict=True):
        if loaded is not None and _disallowed(loaded):
            reached += 1
            if _verdict(data, "model.joblib") == "clean":
                escaped.append(data)
    assert not escaped, [e.hex() for e in escaped[:3]]
    assert reached > 10, reached


# --- found by the joblib oracle: numpy dtype states numpy's unpickler uses before it checks them ---------------


def _dtype_pickle(state: bytes, spec: str = "f4", *, copy: bool = True) -> bytes:
    """``numpy.dtype(spec, False, copy)`` (as numpy pickles a dtype) with the BUILD ``state`` given as opcodes."""
    ctor = (
        b"cnumpy\ndtype\n(" + b"V" + spec.encode() + b"\n" + b"\x89" + (b"\x88" if copy else b"\x89") + b"tR"
    )
    return b"\x80\x02" + ctor + state + b"b."


def _text(s: str) -> bytes:
    return b"V" + s.encode() + b"\n"


_CRASHING_STATES = {
    "fields-dict": b"(K\x03" + _text("<") + b"N}J\xff\xff\xff\xffK\x00t",
    "fields-int": b"(K\x03" + _text("<") + b"NJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t",
    "version-2": b"(K\x02" + _text("|") + b"N}K\x08K\x01t",
    "version-4-bytes-endian": b"(K\x04C\x01<N}K\x04K\x04t",
    "fields-from-memo": b"}q\x010(K\x03" + _text("<") + b"Nh\x01K\x04K\x04t",
}
_SAFE_STATES = {
    "numpy-writes-8": b"(K\x03" + _text("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t",
    "old-5-item": b"(" + _text("<") + b"NNK\x04K\x04t",
    "old-6-item-version-1": b"(K\x01" + _text("<") + b"N}J\xff\xff\xff\xff" + b"K\x00t",
    "6-item-without-fields": b"(K\x03" + _text("<") + b"NNK\x04K\x04t",
    "6-item-bad-version": b"(K\x07" + _text("<") + b"N}K\x04K\x04t",
    "6-item-bad-endian": b"(K\x03" + _text("<<") + b"N}K\x04K\x04t",
    "10-items": b"(K\x03" + _text("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00NNt",
}


def _rules(data: bytes) -> dict[str, str]:
    ctx = ScanContext("oracle", Limits(max_seconds=10), ALLOW)
    scan_blob(bytes_blob("model.pkl", Location("model.pkl"), data, 0), ctx)
    return {str(f.evidence.get("subject")): f.rule_id for f in ctx.findings}


def _dies(action: Callable[[], object]) -> bool:
    """Whether ``action`` kills the process, run in a forked child: by a fault, or by running past 30 s (reads
    out of bounds crash or, when they land in mapped memory, may loop; either way the call never returns)."""
    pid = os.fork()
    if pid == 0:
        faulthandler.disable()  # the crash is the expected outcome: no traceback dump from pytest's handler
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.alarm(30)
        try:
            action()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)


def _load_dies(data: bytes, *, use: bool = False) -> bool:
    """Whether ``pickle.loads`` of ``data`` (and with ``use``, printing, copying and listing the array, as an
    application would) kills the process."""

    def load() -> None:
        value = pickle.loads(data)
        if use:
            repr(value)
            value.copy().tolist()

    return _dies(load)


@pytest.mark.parametrize("case", sorted(_CRASHING_STATES))
def test_a_dtype_state_numpy_dereferences_unset_is_reported(case: str) -> None:
    data = _dtype_pickle(_CRASHING_STATES[case])
    assert _rules(data).get("numpy.dtype:state") == "LW-MODEL-017"
    pytest.importorskip("numpy")
    assert _load_dies(data), "the real numpy no longer crashes on this state"


@pytest.mark.parametrize("case", sorted(_SAFE_STATES))
def test_dtype_states_numpy_reads_or_rejects_safely_are_not_reported(case: str) -> None:
    data = _dtype_pickle(_SAFE_STATES[case])
    assert "numpy.dtype:state" not in _rules(data)
    pytest.importorskip("numpy")
    assert not _load_dies(data)


def test_real_numpy_dtype_pickles_are_clean() -> None:
    np = pytest.importorskip("numpy")
    values = [
        np.dtype("f4"),
        np.dtype([("a", "<i4"), ("b", "O")]),
        np.dtype(("<f8", (2, 3))),
        np.dtype("M8[s]"),
        np.dtype("f8", metadata={"unit": "m"}),
        np.arange(6, dtype=np.int16).reshape(2, 3),
    ]
    for proto in (2, 4, 5):
        data = pickle.dumps(values, protocol=proto)
        assert _verdict(data, "model.pkl") == "clean", proto


@pytest.mark.parametrize(
    "ctor",
    [
        b"cnumpy\ndtype\n(Vf4\n\x89\x88t\x81",  # NEWOBJ: dtype.__new__, then the same BUILD
        b"\x8c\x05numpy\x8c\x05dtype\x93(Vf4\n\x89\x88tR",  # STACK_GLOBAL
        b"cnumpy._core.multiarray\ndtype\n(Vf4\n\x89\x88tR",  # the class under its numpy 2 module
        b"cnumpy.core.multiarray\ndtype\n(V<i8\n\x89\x88tR",
    ],
)
def test_the_dtype_state_is_judged_however_the_dtype_is_built(ctor: bytes) -> None:
    data = b"\x80\x04" + ctor + _CRASHING_STATES["fields-dict"] + b"b."
    assert _rules(data).get("numpy.dtype:state") == "LW-MODEL-017"
    pytest.importorskip("numpy")
    assert _load_dies(data)


# --- found by the numpy crash oracle: object arrays whose list is shorter than their shape --------------------

_OBJECT_DTYPE = b"cnumpy\ndtype\n(VO8\n\x89\x88tR(K\x03V|\nNNNJ\xff\xff\xff\xffK\x08K?tb"


def _object_array(shape: bytes, data: bytes, dtype: bytes = _OBJECT_DTYPE, *, masked: bool = False) -> bytes:
    """``_reconstruct(ndarray, (0,), b'b')`` then BUILD ``(1, shape, dtype, False, data)``, as numpy pickles an
    array (``numpy.ma`` appends the mask and fill value)."""
    cls = b"cnumpy.ma.core\nMaskedArray\n" if masked else b"cnumpy\nndarray\n"
    tail = b"NN" if masked else b""
    return (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n("
        + cls
        + b"(K\x00tC\x01btR(K\x01"
        + shape
        + dtype
        + b"\x89"
        b"" + data + tail + b"tb."
    )


_SHORT_LISTS = {
    "one-item-for-100000": _object_array(b"(J\xa0\x86\x01\x00t", b"(K\x01l"),
    "three-for-nineteen": _object_array(b"(K\x13t", b"]q\x00(K\x01K\x02K\x03e"),
    "0-d-from-an-empty-list": _object_array(b")", b"]"),
    "2-d": _object_array(b"(K\x02K\x03t", b"(K\x01K\x02K\x03K\x04K\x05l"),
    "list-from-the-memo": b"\x80\x02]q\x07(K\x01e0" + _object_array(b"(K\x05t", b"h\x07")[2:],
    "version-0-state": b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(K\x00tC\x01btR((K\x04t"
    + _OBJECT_DTYPE
    + b"\x89(K\x01ltb.",
    "structured-with-objects": _object_array(
        b"(K\x04t",
        b"(K\x01l",
        b"cnumpy\ndtype\n(VV16\n\x89\x88tR(K\x03V|\nN(Va\nVb\ntq\x01}(Va\n(cnumpy\ndtype\n(Vi8\n\x89\x88tR(K\x03V<\n"
        b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbK\x00tVb\n(cnumpy\ndtype\n(VO8\n\x89\x88tR(K\x03V|\nNNNJ\xff\xff"
        b"\xff\xffJ\xff\xff\xff\xffK?tbK\x08tuK\x10K\x08K\x1btb",
    ),
    "masked-array": _object_array(b"(K\x09t", b"(K\x01l", masked=True),
    "list-built-at-load": _object_array(b"(K\x09t", b"c__builtin__\nlist\n((K\x01ttR"),
}


def _long_list(kept: int, shape: int) -> bytes:
    """A list filled by APPENDS in batches of 1,000 to ``kept`` items, for an array of ``shape`` elements."""
    items = b"".join(b"(" + b"N" * 1000 + b"e" for _ in range(kept // 1000))
    return _object_array(b"(" + b"J" + shape.to_bytes(4, "little") + b"t", b"]" + items)


@pytest.mark.parametrize("case", sorted(_SHORT_LISTS))
def test_an_object_array_with_fewer_items_than_elements_is_reported(case: str) -> None:
    assert _rules(_SHORT_LISTS[case]).get("numpy.ndarray:list-length") == "LW-MODEL-017"


def test_a_list_longer_than_the_scanner_keeps_is_counted_not_guessed() -> None:
    assert _rules(_long_list(12_000, 20_000)).get("numpy.ndarray:list-length") == "LW-MODEL-017"
    assert "numpy.ndarray:list-length" not in _rules(_long_list(20_000, 20_000))
    assert "numpy.ndarray:list-length" not in _rules(_long_list(20_000, 12_000))  # numpy reads the first ones


def test_the_real_numpy_reads_past_a_short_list() -> None:
    pytest.importorskip("numpy")
    assert _load_dies(_SHORT_LISTS["one-item-for-100000"])
    assert not _load_dies(_long_list(20_000, 20_000))


@pytest.mark.parametrize("flags", [0x00, 0x01, 0x03, 0x0B, 0x3D])
def test_object_dtype_flags_numpy_never_writes_are_reported(flags: int) -> None:
    """Without NPY_LIST_PICKLE numpy copies raw bytes into the object slots; without NPY_NEEDS_INIT it releases
    uninitialised slots as objects; without NPY_ITEM_REFCOUNT it does both."""
    dtype = b"cnumpy\ndtype\n(VO8\n\x89\x88tR(K\x03V|\nNNNJ\xff\xff\xff\xffK\x08K" + bytes([flags]) + b"tb"
    for data in (b"C\x08AAAAAAAA", b"(K\x01l"):
        assert (
            _rules(_object_array(b"(K\x01t", data, dtype)).get("numpy.dtype:object-flags") == "LW-MODEL-017"
        )


def test_object_arrays_numpy_writes_are_clean() -> None:
    np = pytest.importorskip("numpy")
    joblib = pytest.importorskip("joblib")
    values = [
        np.array([f"c{i}" for i in range(20_000)], dtype=object),  # past the items the scanner keeps
        np.array([[1, "a"], [None, 2.5]], dtype=object),
        np.asfortranarray(np.array([[1, "a"], [None, 2.5]], dtype=object)),
        np.array([(1, "x"), (2, None)], dtype=[("a", "<i4"), ("b", "O")]),
        np.ma.masked_array(np.array([1, "x", None], dtype=object), mask=[0, 1, 0]),
        np.array(None, dtype=object),
        np.empty((0, 3), dtype=object),
    ]
    for value in values:
        for proto in (2, 4, 5):
            assert _verdict(pickle.dumps(value, protocol=proto), "model.pkl") == "clean", (value, proto)
        out = io.BytesIO()
        joblib.dump(value, out)
        assert _verdict(out.getvalue(), "model.joblib") == "clean", value


# --- found by the crash oracle of the fuzz bench: structured dtypes whose layout disagrees with itself ----------

_I4 = b"cnumpy\ndtype\n(Vi4\n\x89\x88tR(K\x03V<\nNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
_O8 = b"cnumpy\ndtype\n(VO8\n\x89\x88tR(K\x03V|\nNNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?tb"


def _structured(second_offset: int, second_name: bytes = b"Vb\n") -> bytes:
    """``V12`` with fields ``a`` (i4 at 0) and an object field at ``second_offset``, names ``('a', 'b')``."""
    fields = b"}(Va\n(" + _I4 + b"K\x00t" + second_name + b"(" + _O8 + b"J"
    fields += second_offset.to_bytes(4, "little", signed=True) + b"tu"
    return b"cnumpy\ndtype\n(VV12\n\x89\x88tR(K\x03V|\nN(Va\nVb\nt" + fields + b"K\x0cK\x01K\x1btb"


_BAD_LAYOUTS = {
    "field-far-past-the-item": (_structured(1000), False),  # writes a pointer 1 KB past: crashes or corrupts
    "field-before-the-item": (_structured(-64), False),
    "field-overlapping-the-end": (_structured(8), False),
    "name-the-fields-lack": (_structured(4, b"Vc\n"), True),
    # the same NULL lookup with a key of another type where the name should be (the fuzz bench's loader oracle
    # found the int one, 1 in 200,000): no constant that is not a string can equal a field's name
    "int-key-for-a-name": (_structured(4, b"K\x10"), True),
    "bytes-key-for-a-name": (_structured(4, b"C\x01b"), True),
    "none-key-for-a-name": (_structured(4, b"N"), True),
    "object-field-over-another": (_structured(0), False),  # the int's stores overwrite the object pointer
    "two-object-fields-one-dtype": (
        b"cnumpy\ndtype\n(VV12\n\x89\x88tR(K\x03V|\nN(Va\nVb\nt}(Va\n("
        + _O8
        + b"q\x09K\x00tVb\n(h\x09K\x02tuK\x0cK\x01K\x1btb",
        False,
    ),
}


@pytest.mark.parametrize("case", sorted(_BAD_LAYOUTS))
def test_a_dtype_layout_that_reaches_outside_its_item_is_reported(case: str) -> None:
    dtype, crashes = _BAD_LAYOUTS[case]
    data = _object_array(b"(K\x01t", b"((K\x01Vx\ntl", dtype)
    assert _rules(data).get("numpy.dtype:layout") == "LW-MODEL-017"
    if crashes:  # a NULL lookup; the others write or read out of bounds, which need not crash at once
        pytest.importorskip("numpy")
        assert _load_dies(data)
    assert "numpy.dtype:layout" not in _rules(_object_array(b"(K\x01t", b"((K\x01Vx\ntl", _structured(4)))


def test_a_sub_array_larger_than_its_item_is_reported() -> None:
    np = pytest.importorskip("numpy")
    data = pickle.dumps(np.zeros(1, dtype=[("a", "<f8", (2,))]), protocol=2)
    at = data.find(b"K\x02\x85")  # the sub-array's shape, (2,)
    assert at > 0 and "numpy.dtype:layout" not in _rules(data)
    assert _rules(data[:at] + b"K\x64" + data[at + 2 :]).get("numpy.dtype:layout") == "LW-MODEL-017"


def test_structured_dtypes_numpy_writes_are_clean() -> None:
    np = pytest.importorskip("numpy")
    values = [
        np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8", (2,))]),
        np.dtype({"names": ["a", "b"], "formats": ["<i4", "<f8"], "offsets": [0, 8], "itemsize": 24}),
        np.dtype({"names": ["a"], "formats": ["<i4"], "titles": ["Title A"]}),
        np.dtype([("a", "<i4"), ("n", [("x", "<f4"), ("y", "O")])], align=True),
        np.zeros(2, dtype=[("s", "S5"), ("u", "U3"), ("v", "V4"), ("m", "M8[s]")]),
        np.rec.array([(1, 2.0)], dtype=[("x", "<i8"), ("y", "<f4")]),
    ]
    for value in values:
        for proto in (2, 4, 5):
            assert _verdict(pickle.dumps(value, protocol=proto), "model.pkl") == "clean", (value, proto)


# --- found by a generator of numpy dtype states run through the real numpy ------------------------------------


def _int(n: int) -> bytes:
    return b"K" + bytes([n]) if 0 <= n < 256 else b"J" + struct.pack("<i", n)


def _dtype_of(spec: str, items: bytes) -> bytes:
    return b"cnumpy\ndtype\n(V" + spec.encode() + b"\n\x89\x88tR(" + items + b"tb"


def _array_of(dtype: bytes, count: int, itemsize: int) -> bytes:
    data = b"C" + bytes([count * itemsize]) + b"A" * (count * itemsize)
    head = b"\x80\x02cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(K\x00tC\x01btR(K\x01("
    return head + _int(count) + b"t" + dtype + b"\x89" + data + b"tb."


_PLAIN = b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
_KIND_STATES = {  # (dtype, item size, the real numpy crashes: on load, on use, or not certainly)
    "datetime-without-metadata": (_dtype_of("M8", b"K\x03V<\n" + _PLAIN + b"K\x00"), 8, "load"),
    "timedelta-7-items": (_dtype_of("m8", b"K\x03V<\n" + _PLAIN), 8, "load"),
    "void-alignment-0": (_dtype_of("V8", b"K\x03V|\nNNNK\x08K\x00K\x00"), 8, "use"),
    "bytes-alignment-0": (_dtype_of("S8", b"K\x03V|\nNNNK\x08K\x00K\x00"), 8, "use"),
    "bool-with-object-flags": (
        _dtype_of("b1", b"K\x04V<\nNNNJ\xe8\x03\x00\x00J\xff\xff\xff\xffK?N"),
        1,
        False,
    ),
    "float-with-refcount-flag": (_dtype_of("f8", b"K\x03V<\n" + _PLAIN + b"K\x01"), 8, False),
}


@pytest.mark.parametrize("case", sorted(_KIND_STATES))
def test_dtype_states_numpy_assumes_of_the_kind_are_reported(case: str) -> None:
    dtype, itemsize, crashes = _KIND_STATES[case]
    data = _array_of(dtype, 2, itemsize)
    assert {"numpy.dtype:state", "numpy.dtype:object-flags"} & set(_rules(data)), _rules(data)
    if crashes:  # NULL metadata and a division by zero: deterministic
        pytest.importorskip("numpy")
        assert _load_dies(data, use=crashes == "use")


def test_dtype_states_of_every_kind_numpy_writes_are_clean() -> None:
    np = pytest.importorskip("numpy")
    kinds = [
        "f8",
        "f2",
        "i1",
        "u8",
        "b1",
        "c16",
        "O",
        "S5",
        "U3",
        "V12",
        "M8[s]",
        "m8[ms]",
        "M8",
        ">U3",
        "S0",
        "V0",
    ]
    for kind in kinds:
        value = np.zeros(2, dtype=kind)
        for proto in (2, 4, 5):
            assert _verdict(pickle.dumps(value, protocol=proto), "model.pkl") == "clean", (kind, proto)
            assert _verdict(pickle.dumps(value.dtype, protocol=proto), "model.pkl") == "clean", (kind, proto)


_SHORT_STATES = {
    # a 7-item state of version 3 has no flags item: numpy sets the flags to 0, so an object dtype loses them
    "object-7-items": (_dtype_of("O8", b"K\x03V<\n" + _PLAIN), "numpy.dtype:object-flags"),
    # a flexible dtype takes its item size from the state, 0 here, while its field sits at bytes 8..13
    "void-size-0-with-a-field": (
        _dtype_of("V16", b"K\x03V=\nN(Va\nt}(Va\n(cnumpy\ndtype\n(VS5\n\x89\x88tRK\x08tuK\x00K\x04"),
        "numpy.dtype:layout",
    ),
}


@pytest.mark.parametrize("case", sorted(_SHORT_STATES))
def test_dtype_states_without_the_items_numpy_writes_are_judged_as_numpy_fills_them(case: str) -> None:
    dtype, subject = _SHORT_STATES[case]
    scalar = b"\x80\x02cnumpy.core.multiarray\nscalar\n(" + dtype + b"C\x10" + b"A" * 16 + b"tR."
    assert _rules(scalar).get(subject) == "LW-MODEL-017", _rules(scalar)
    pytest.importorskip("numpy")
    assert _load_dies(scalar, use=True)


def test_generated_numpy_states_called_clean_never_crash_the_real_numpy() -> None:
    """Generated dtype, array and scalar states (every item numpy's __setstate__ reads varied): those the scanner
    calls clean are loaded and used by the real numpy in forked children, and none may kill the process."""
    pytest.importorskip("numpy")

    def allowed(module: str, name: str) -> bool:
        return ALLOW.classify(module, name).allowed

    rng = random.Random(21)
    inputs = [NumpyStates(rng).program() for _ in range(1500)]
    clean = [data for data in inputs if _verdict(data, "model.pkl") == "clean"]
    assert len(clean) > 100  # well-formed states stay clean ...
    assert len(crashing(lambda d: real_use(d, allowed), inputs)) > 20  # ... while the batch does crash numpy
    crashed = crashing_alone(lambda d: real_use(d, allowed), clean)
    assert not crashed, [clean[i] for i in crashed[:3]]


# --- scikit-learn tree nodes: predict follows child ids unchecked (scikit-learn PR 34558, skops PR 535) --------


def _tree_with(edit: str) -> object:
    np = pytest.importorskip("numpy")
    tree = pytest.importorskip("sklearn.tree")
    x = np.random.RandomState(0).rand(200, 4)
    clf = tree.DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, (x[:, 0] > 0.5).astype(int))
    state = clf.tree_.__getstate__()
    nodes = state["nodes"].copy()
    if edit == "child-out-of-range":
        nodes["left_child"][0] = 2**40  # 64 TB past the array: never mapped, so the real predict faults
    elif edit == "child-is-itself":
        nodes["right_child"][0] = 0
    elif edit == "child-of-two-nodes":
        nodes["left_child"][0] = nodes["left_child"][1]
    elif edit == "negative-feature":
        nodes["feature"][0] = -5
    clf.tree_.__setstate__(dict(state, nodes=nodes))
    return clf


@pytest.mark.parametrize(
    "edit", ["child-out-of-range", "child-is-itself", "child-of-two-nodes", "negative-feature"]
)
def test_tree_node_arrays_that_predict_would_follow_out_of_bounds_are_reported(edit: str) -> None:
    joblib = pytest.importorskip("joblib")
    clf = _tree_with(edit)
    out = io.BytesIO()
    joblib.dump(clf, out)
    for data in (pickle.dumps(clf, protocol=2), pickle.dumps(clf, protocol=4), out.getvalue()):
        assert _rules(data).get("sklearn.tree:nodes") == "LW-MODEL-017"


def test_the_real_predict_reads_outside_a_bad_node_array() -> None:
    clf = _tree_with("child-out-of-range")
    np = pytest.importorskip("numpy")
    assert _dies(lambda: clf.predict(np.zeros((4, 4))))  # type: ignore[attr-defined]


def _tree_pickle(
    clf: object, protocol: int | str, edit: Callable[[dict, tuple], tuple] | None = None
) -> bytes:
    """``clf`` pickled with ``protocol`` (or by joblib), its trees' states changed by ``edit`` on the way."""
    tree = pytest.importorskip("sklearn.tree._tree")
    out = io.BytesIO()
    if protocol == "joblib":
        joblib = pytest.importorskip("joblib")
        joblib.dump(clf, out)
        return out.getvalue()
    pickler = pickle.Pickler(out, protocol=int(protocol))
    if edit is not None:
        import copyreg

        def reduce(t: object) -> tuple:
            func, args, state = t.__reduce__()  # type: ignore[attr-defined]
            return (func, *edit(dict(state), args))

        pickler.dispatch_table = {**copyreg.dispatch_table, tree.Tree: reduce}
    pickler.dump(clf)
    return out.getvalue()


def _big_tree() -> object:
    """A tree of about 1,600 nodes: its node array (100 KB) is more than the 64 KiB the VM keeps in-band."""
    np = pytest.importorskip("numpy")
    tree = pytest.importorskip("sklearn.tree")
    x = np.random.RandomState(1).normal(size=(3000, 5))
    return tree.DecisionTreeClassifier(random_state=0).fit(x, np.random.RandomState(2).randint(0, 2, 3000))


def _last_split(nodes: object) -> int:
    np = pytest.importorskip("numpy")
    return int(np.where(nodes["left_child"] != -1)[0][-1])  # type: ignore[index]


def _child_far(state: dict, args: tuple) -> tuple:
    nodes = state["nodes"].copy()
    nodes["left_child"][_last_split(nodes)] = 10**9
    return args, dict(state, nodes=nodes)


def _feature_far(state: dict, args: tuple) -> tuple:
    nodes = state["nodes"].copy()
    nodes["feature"][_last_split(nodes)] = args[0]  # one past the last feature the tree has
    return args, dict(state, nodes=nodes)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("size", ["small", "big"])
def test_tree_node_arrays_are_checked_however_numpy_pickles_them(protocol: int, size: str) -> None:
    """Protocol 5 writes arrays as ``_frombuffer(buffer, dtype, shape, order)`` (the data before the dtype);
    node arrays over 64 KiB are read again from the stream once their dtype is known."""
    clf = _tree_with("none") if size == "small" else _big_tree()
    assert _verdict(_tree_pickle(clf, protocol), "model.pkl") == "clean"
    assert _rules(_tree_pickle(clf, protocol, _child_far)).get("sklearn.tree:nodes") == "LW-MODEL-017"
    assert _rules(_tree_pickle(clf, protocol, _feature_far)).get("sklearn.tree:features") == "LW-MODEL-017"


def test_the_real_predict_reads_outside_the_row_for_a_feature_past_the_last() -> None:
    np = pytest.importorskip("numpy")

    def root_far(state: dict, args: tuple) -> tuple:
        nodes = state["nodes"].copy()
        nodes["feature"][0] = 2**40  # the root: every row reads it, 8 TB past the row
        return args, dict(state, nodes=nodes)

    data = _tree_pickle(_big_tree(), 4, root_far)
    assert _rules(data).get("sklearn.tree:features") == "LW-MODEL-017"
    clf = pickle.loads(data)
    assert _dies(lambda: clf.predict(np.zeros((64, 5))))  # type: ignore[attr-defined]


@pytest.mark.parametrize("form", ["big-endian", "int32", "int32-big-endian"])
def test_node_arrays_scikit_learn_casts_are_read_in_their_own_form(form: str) -> None:
    """scikit-learn accepts node fields as i4 or i8 in either byte order and casts them: a check that only
    reads little-endian int64 misses the same bad child written any other way."""
    np = pytest.importorskip("numpy")
    clf = _tree_with("none")

    def recast(state: dict, args: tuple) -> tuple:
        nodes = state["nodes"]
        fields = dict(nodes.dtype.fields)
        descr = []
        for name in nodes.dtype.names:
            dt = fields[name][0]
            if name in ("left_child", "right_child", "feature", "n_node_samples") and "int32" in form:
                dt = np.dtype(np.int32)
            descr.append((name, dt.newbyteorder(">") if "big-endian" in form else dt))
        cast = nodes.astype(np.dtype(descr))
        return args, dict(state, nodes=cast)

    def bad(state: dict, args: tuple) -> tuple:
        return recast(*_child_far(state, args)[::-1])

    good = _tree_pickle(clf, 4, recast)
    loaded = pickle.loads(good)  # scikit-learn takes the recast array
    assert (loaded.predict(np.zeros((2, 4))) == clf.predict(np.zeros((2, 4)))).all()  # type: ignore[attr-defined]
    assert _verdict(good, "model.pkl") == "clean"
    assert _rules(_tree_pickle(clf, 4, bad)).get("sklearn.tree:nodes") == "LW-MODEL-017"


def test_a_tree_reading_a_feature_its_estimator_does_not_take_is_reported() -> None:
    """The tree's own feature count can be raised with its nodes; ``predict`` takes rows of the estimator's
    ``n_features_in_`` columns, and that is the bound."""
    clf = _tree_with("none")

    def raised(state: dict, args: tuple) -> tuple:
        nodes = state["nodes"].copy()
        nodes["feature"][0] = 500
        return (1000, *args[1:]), dict(state, nodes=nodes)

    for protocol in (2, 5):
        assert _rules(_tree_pickle(clf, protocol, raised)).get("sklearn.tree:features") == "LW-MODEL-017"


def test_trees_fed_other_columns_than_the_estimator_input_are_clean() -> None:
    """A tree behind a one-hot encoder (in a pipeline, under a grid search) or a stacking final estimator reads
    more columns than the outer estimator's ``n_features_in_``: only the attributes through which rows reach a
    tree unchanged are followed."""
    np = pytest.importorskip("numpy")
    joblib = pytest.importorskip("joblib")
    ensemble = pytest.importorskip("sklearn.ensemble")
    tree = pytest.importorskip("sklearn.tree")
    pipeline = pytest.importorskip("sklearn.pipeline")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    model_selection = pytest.importorskip("sklearn.model_selection")
    rng = np.random.RandomState(0)
    x = rng.randint(0, 12, size=(400, 2)).astype(float)
    y = rng.randint(0, 2, 400)  # labels the trees can only memorise: they grow deep and read every column
    pipe = pipeline.make_pipeline(
        preprocessing.OneHotEncoder(handle_unknown="ignore"), tree.DecisionTreeClassifier(random_state=0)
    )
    search = model_selection.GridSearchCV(pipe, {"decisiontreeclassifier__max_depth": [None]}, cv=2).fit(x, y)
    stack = ensemble.StackingClassifier(
        [(f"t{i}", tree.DecisionTreeClassifier(max_depth=2, random_state=i)) for i in range(4)],
        final_estimator=tree.DecisionTreeClassifier(random_state=0),
        passthrough=True,
    ).fit(x, y)
    assert max(search.best_estimator_[-1].tree_.feature) >= 2  # the tree reads encoded columns
    assert max(stack.final_estimator_.tree_.feature) >= 2  # ... and stacked ones
    for model in (search, stack):
        out = io.BytesIO()
        joblib.dump(model, out)
        for data in (pickle.dumps(model, protocol=2), pickle.dumps(model, protocol=5), out.getvalue()):
            assert _verdict(data, "model.joblib") == "clean", type(model).__name__


def test_a_forest_whose_trees_read_past_its_input_is_reported() -> None:
    """The trees' own feature counts raised with their nodes: the forest's ``n_features_in_`` is the bound."""
    np = pytest.importorskip("numpy")
    ensemble = pytest.importorskip("sklearn.ensemble")
    x = np.random.RandomState(0).rand(200, 4)
    forest = ensemble.RandomForestClassifier(3, max_depth=3, random_state=0).fit(
        x, (x[:, 0] > 0.5).astype(int)
    )

    def raised(state: dict, args: tuple) -> tuple:
        nodes = state["nodes"].copy()
        nodes["feature"][0] = 500
        return (1000, *args[1:]), dict(state, nodes=nodes)

    for est in forest.estimators_:
        est.n_features_in_ = 1000
    for protocol in (2, 5):
        assert _rules(_tree_pickle(forest, protocol, raised)).get("sklearn.tree:features") == "LW-MODEL-017"


def test_gradient_boosting_trees_in_a_joblib_object_array_are_bounded_by_the_model_input() -> None:
    """joblib writes gradient boosting's ``estimators_`` (an object array) as a pickle stream of its own; the
    trees in it are still checked against the model's ``n_features_in_``."""
    np = pytest.importorskip("numpy")
    joblib = pytest.importorskip("joblib")
    ensemble = pytest.importorskip("sklearn.ensemble")
    x = np.random.RandomState(0).rand(200, 4)
    model = ensemble.GradientBoostingRegressor(n_estimators=3, max_depth=2).fit(x, x[:, 0])
    out = io.BytesIO()
    joblib.dump(model, out)
    assert _verdict(out.getvalue(), "model.joblib") == "clean"
    for est in model.estimators_.ravel():
        est.n_features_in_ = 1000
        state = est.tree_.__getstate__()
        state["nodes"]["feature"][0] = 500  # the root: a view of the tree's own node array
        est.tree_ = type(est.tree_)(1000, est.tree_.n_classes, est.tree_.n_outputs)
        est.tree_.__setstate__(state)
    out = io.BytesIO()
    joblib.dump(model, out)
    assert _rules(out.getvalue()).get("sklearn.tree:features") == "LW-MODEL-017"


def test_a_tree_whose_node_array_cannot_be_read_is_unverified() -> None:
    """A large node array in a stream that cannot be read twice (a compressed pickle) cannot be checked once its
    dtype is known, and a node array computed at load time not at all: unverified, never clean."""
    import gzip

    from loopwarden.checks.models.pickle_vm import analyze_pickle

    class OneWay(io.RawIOBase):  # a stream read once, as a decompressor's output is
        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            return self.inner.readinto(b)

    for protocol in (2, 5):
        data = _tree_pickle(_big_tree(), protocol)
        found = analyze_pickle(OneWay(data), location=Location("m.pkl"), limits=Limits(), allow=ALLOW)
        assert found.unverified and "node array" in found.unverified
        # a compressed pickle the scanner inflates in memory is read again from there and checked
        bad = gzip.compress(_tree_pickle(_big_tree(), protocol, _child_far))
        assert _verdict(gzip.compress(data), "model.pkl.gz") == "clean"
        assert _rules(bad).get("sklearn.tree:nodes") == "LW-MODEL-017"

    def listed(state: dict, args: tuple) -> tuple:
        return args, dict(state, nodes=state["nodes"].tolist())

    assert _verdict(_tree_pickle(_tree_with("none"), 4, listed), "model.pkl") == "unverified"


def test_a_node_array_declaring_more_nodes_than_its_data_holds_costs_no_memory() -> None:
    """The per-node record of the check is sized by the declared shape: it is made only once the data is known
    to be that large (numpy rejects the array otherwise), so a shape of 2**25 nodes over 64 bytes costs nothing."""
    import tracemalloc

    np = pytest.importorskip("numpy")
    tree = pytest.importorskip("sklearn.tree._tree")
    data = pickle.dumps(np.zeros(1, dtype=tree.NODE_DTYPE), protocol=2)
    assert data.count(b"(K\x01K\x01\x85") == 1
    data = data.replace(b"(K\x01K\x01\x85", b"(K\x01J\x00\x00\x00\x02\x85")  # shape (1,) -> (2**25,)
    _verdict(data, "nodes.pkl")  # first use: the scanner's lazy imports are not what is measured
    tracemalloc.start()
    try:
        verdict = _verdict(data, "nodes.pkl")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert verdict == "clean"  # numpy refuses the array; no tree takes it
    assert peak < 8 << 20


def _hgb(edit: bool) -> object:
    np = pytest.importorskip("numpy")
    ensemble = pytest.importorskip("sklearn.ensemble")
    x = np.random.RandomState(0).normal(size=(1000, 4))
    model = ensemble.HistGradientBoostingClassifier(max_iter=5).fit(x, (x[:, 0] > 0).astype(int))
    if edit:
        nodes = model._predictors[0][0].nodes  # type: ignore[attr-defined]
        nodes["left"][0] = nodes["right"][0] = 10**9
    return model


def test_histogram_gradient_boosting_predictor_nodes_are_checked() -> None:
    np = pytest.importorskip("numpy")
    model = _hgb(edit=False)
    bad = _hgb(edit=True)
    for protocol in (2, 4, 5, "joblib"):
        assert _verdict(_tree_pickle(model, protocol), "model.joblib") == "clean", protocol
        assert _rules(_tree_pickle(bad, protocol)).get("sklearn.tree:nodes") == "LW-MODEL-017", protocol
    loaded = pickle.loads(_tree_pickle(bad, 4))
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def predict() -> None:
        with threadpoolctl.threadpool_limits(1):  # an OpenMP pool does not survive the fork: it would hang
            loaded.predict(np.zeros((64, 4)))  # type: ignore[attr-defined]

    assert _dies(predict)


# --- scikit-learn KDTree / BallTree: queries walk the state's arrays without bounds checks -----------------


def _binary_tree_pickle(kind: str, protocol: int | str, edit: str | None = None) -> bytes:
    np = pytest.importorskip("numpy")
    neighbors = pytest.importorskip("sklearn.neighbors")
    x = np.random.RandomState(0).normal(size=(3000, 3))  # index and data arrays over 64 KiB
    cls = neighbors.KDTree if kind == "kd" else neighbors.BallTree
    tree = cls(x, leaf_size=8)
    func, args, state = tree.__reduce__()
    state = list(state)
    if edit == "index-past-the-data":
        state[1] = state[1].copy()
        state[1][len(state[1]) // 2] = 2**40
    elif edit == "points-past-the-index":
        state[2] = state[2].copy()
        state[2]["idx_end"][-1] = 10**6
    elif edit == "children-past-the-nodes":
        state[2] = state[2][:3].copy()  # node 1 is internal: its children 3 and 4 are gone
        state[3] = state[3][:, :3].copy()
    elif edit == "bounds-for-fewer-nodes":
        state[3] = state[3][:, :1].copy()
    out = io.BytesIO()
    if protocol == "joblib":
        joblib = pytest.importorskip("joblib")
        import copyreg

        joblib.dump(tree, out)
        if edit is None:
            return out.getvalue()
        out = io.BytesIO()
        with_state = copyreg.dispatch_table.copy()
        with_state[cls] = lambda t: (func, args, tuple(state))
        pickler = joblib.numpy_pickle.NumpyPickler(out)
        pickler.dispatch_table = with_state
        pickler.dump(tree)
        return out.getvalue()
    import copyreg

    pickler = pickle.Pickler(out, protocol=int(protocol))
    pickler.dispatch_table = {**copyreg.dispatch_table, cls: lambda t: (func, args, tuple(state))}
    pickler.dump(tree)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["kd", "ball"])
@pytest.mark.parametrize("protocol", [2, 4, 5, "joblib"])
def test_binary_tree_states_queries_would_walk_out_of_bounds_are_reported(
    kind: str, protocol: int | str
) -> None:
    assert _verdict(_binary_tree_pickle(kind, protocol), "model.pkl") == "clean"
    for edit in (
        "index-past-the-data",
        "points-past-the-index",
        "children-past-the-nodes",
        "bounds-for-fewer-nodes",
    ):
        data = _binary_tree_pickle(kind, protocol, edit)
        assert _rules(data).get("sklearn.neighbors:tree") == "LW-MODEL-017", edit


def test_the_real_query_reads_outside_a_bad_binary_tree() -> None:
    """An index entry 2**40 rows past the data reads an address no process maps, so the query faults (children
    just past the node array read whatever the heap holds there, which need not fault: that edit is checked
    above, not crashed here)."""
    np = pytest.importorskip("numpy")
    tree = pickle.loads(_binary_tree_pickle("kd", 4, "index-past-the-data"))
    assert _dies(lambda: [tree.query(np.random.RandomState(i).normal(size=(200, 3)), k=5) for i in range(20)])


def test_neighbour_estimators_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    neighbors = pytest.importorskip("sklearn.neighbors")
    x = np.random.RandomState(0).normal(size=(2000, 4))
    y = (x[:, 0] > 0).astype(int)
    models = [
        neighbors.KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        neighbors.KNeighborsRegressor(algorithm="ball_tree").fit(x, x[:, 1]),
        neighbors.NearestNeighbors(algorithm="ball_tree", metric="manhattan").fit(x),
        neighbors.KernelDensity().fit(x, sample_weight=np.ones(2000)),
        neighbors.LocalOutlierFactor(novelty=True).fit(x),
    ]
    for model in models:
        for data in _pickled_forms(model):
            assert _verdict(data, "model.joblib") == "clean", type(model).__name__


# --- SciPy sparse matrices: unpickled without check_format, used by the C++ sparsetools unchecked ------------


def _pickled_forms(value: object) -> list[bytes]:
    """``value`` pickled with protocols 2, 4 and 5 and dumped by joblib, plain and compressed."""
    joblib = pytest.importorskip("joblib")
    forms = [pickle.dumps(value, protocol=p) for p in (2, 4, 5)]
    for compress in (0, 3):
        out = io.BytesIO()
        joblib.dump(value, out, compress=compress)
        forms.append(out.getvalue())
    return forms


def _bad_sparse(edit: str) -> object:
    sparse = pytest.importorskip("scipy.sparse")
    base = sparse.random(3000, 40, density=0.1, format="csr", random_state=0)  # index arrays over 64 KiB
    if edit == "csr-index":
        base.indices[3] = 2**31 - 1  # the largest int32: 16 GB past the output, never mapped
        return base
    if edit == "csr-index-pointer":
        base.indptr[-1] = 10**6
        return base
    if edit == "csc-index":
        csc = base.tocsc()
        csc.indices[-1] = -4
        return csc
    if edit == "coo-row":
        coo = sparse.coo_array(base)
        coo.row[0] = 10**7
        return coo
    bsr = base.tobsr(blocksize=(2, 2))
    bsr.indices[0] = 2**31 - 1
    return bsr


@pytest.mark.parametrize("edit", ["csr-index", "csr-index-pointer", "csc-index", "coo-row", "bsr-index"])
def test_sparse_matrices_whose_indices_reach_outside_are_reported(edit: str) -> None:
    for data in _pickled_forms(_bad_sparse(edit)):
        assert _rules(data).get("scipy.sparse:indices") == "LW-MODEL-017"


def test_the_real_sparse_product_writes_outside_for_a_bad_index() -> None:
    np = pytest.importorskip("numpy")
    csr = pickle.loads(pickle.dumps(_bad_sparse("csr-index")))
    assert _dies(lambda: csr.toarray())  # type: ignore[attr-defined]
    bsr = pickle.loads(pickle.dumps(_bad_sparse("bsr-index")))
    assert _dies(lambda: bsr @ np.ones(40))  # type: ignore[operator]


def test_sparse_matrices_of_every_format_are_clean() -> None:
    sparse = pytest.importorskip("scipy.sparse")
    base = sparse.random(3000, 40, density=0.1, format="csr", random_state=0)
    matrices = [base.asformat(f) for f in ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")]
    matrices += [sparse.csr_array(base), sparse.coo_array(base), sparse.csr_matrix((5, 5))]
    for matrix in matrices:
        for data in _pickled_forms(matrix):
            assert _verdict(data, "matrix.pkl") == "clean", type(matrix).__name__


def _array_without_reconstruct(how: str) -> bytes:
    """An object array given a list of 1 item for 19 elements, made by NEWOBJ, a call of ``ndarray`` or
    ``_mareconstruct`` instead of ``_reconstruct``."""
    np = pytest.importorskip("numpy")
    ref = pickle.dumps(np.array([1, 2, 3], dtype=object), protocol=2)
    start = ref.index(b"cnumpy\ndtype\n")
    dtype = ref[start : ref.index(b"b", ref.index(b"K?", start)) + 1]
    state = b"(K\x01K\x13\x85" + dtype + b"\x89]K\x07at"
    if how == "masked":  # _mareconstruct(MaskedArray, ndarray, (0,), 'b'); state: ..., mask bytes, fill value
        head = b"\x80\x02cnumpy.ma.core\n_mareconstruct\n(cnumpy.ma.core\nMaskedArray\ncnumpy\nndarray\n(K\x00tC\x01btR"
        state = b"(K\x01K\x13\x85" + dtype + b"\x89]K\x07aC\x13" + bytes(19) + b"Nt"
    else:
        head = b"\x80\x02cnumpy\nndarray\nK\x00\x85" + (b"\x81" if how == "NEWOBJ" else b"R")
    return head + state + b"b."


@pytest.mark.parametrize("how", ["NEWOBJ", "REDUCE", "masked"])
def test_object_arrays_made_without_reconstruct_are_checked(how: str) -> None:
    """``ndarray.__setstate__`` runs on any array a BUILD reaches, not only on ``_reconstruct``'s: an
    ``ndarray`` made by NEWOBJ or a call, or a masked array, given a list shorter than its shape."""
    data = _array_without_reconstruct(how)
    assert _rules(data).get("numpy.ndarray:list-length") == "LW-MODEL-017"
    assert _dies(lambda: list(pickle.loads(data)))


def test_fitted_tree_ensembles_are_clean() -> None:
    np = pytest.importorskip("numpy")
    ensemble = pytest.importorskip("sklearn.ensemble")
    tree = pytest.importorskip("sklearn.tree")
    x = np.random.RandomState(0).rand(300, 5)
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    models = [
        tree.DecisionTreeClassifier(random_state=0).fit(x, y),
        tree.DecisionTreeRegressor(max_depth=3).fit(x, x[:, 0]),
        ensemble.RandomForestClassifier(20, random_state=0).fit(x, y),
        ensemble.GradientBoostingClassifier(n_estimators=10).fit(x, y),
        ensemble.ExtraTreesRegressor(10, random_state=0).fit(x, x[:, 1]),
        ensemble.IsolationForest(n_estimators=10, random_state=0).fit(x),
        ensemble.HistGradientBoostingRegressor(max_iter=10).fit(x, x[:, 2]),
        ensemble.GradientBoostingRegressor(n_estimators=3, max_depth=12).fit(x, x[:, 2]),
        _big_tree(),
    ]
    for model in models:
        for data in _pickled_forms(model):
            assert _verdict(data, "model.joblib") == "clean", type(model).__name__


# --- mutated index arrays run through the real scikit-learn and SciPy ----------------------------------------


class _IndexMutations:
    """Pickles of fitted scikit-learn trees, KD/Ball trees and SciPy sparse matrices whose index words (child
    ids, features, leaf flags, point ranges, index entries, index pointers) are overwritten with values near the
    bounds the structures have; the opcodes are untouched, so plain ``pickle.loads`` only builds these objects."""

    def __init__(self, rng: random.Random) -> None:
        np = pytest.importorskip("numpy")
        ensemble = pytest.importorskip("sklearn.ensemble")
        neighbors = pytest.importorskip("sklearn.neighbors")
        sparse = pytest.importorskip("scipy.sparse")
        tree = pytest.importorskip("sklearn.tree")
        self.rng = rng
        x = np.random.RandomState(3).normal(size=(400, 5))
        y = (x[:, 0] + x[:, 1] > 0).astype(int)
        clf = tree.DecisionTreeClassifier(max_depth=6, random_state=0).fit(x, y)
        hgb = ensemble.HistGradientBoostingClassifier(max_iter=3).fit(x, y)
        kd = neighbors.KDTree(x, leaf_size=8)
        ball = neighbors.BallTree(x, leaf_size=8)
        csr = sparse.random(60, 30, density=0.2, format="csr", random_state=1)
        coo = sparse.coo_array(csr)
        bsr = csr.tobsr(blocksize=(2, 3))
        nodes = clf.tree_.__getstate__()["nodes"]
        pred = hgb._predictors[0][0].nodes
        kd_state, ball_state = kd.__getstate__(), ball.__getstate__()
        # (object, [(raw bytes of an index array, record size, [(field offset, field width)], count)])
        self.cases: list[tuple[object, list[tuple[bytes, int, list[tuple[int, int]], int]]]] = [
            (clf, [(nodes.tobytes(), 64, [(0, 8), (8, 8), (16, 8)], len(nodes))]),
            (hgb, [(pred.tobytes(), pred.dtype.itemsize, [(12, 8), (29, 4), (33, 4), (49, 1)], len(pred))]),
            *[
                (
                    t,
                    [
                        (s[1].tobytes(), 8, [(0, 8)], len(x)),
                        (s[2].tobytes(), 32, [(0, 8), (8, 8), (16, 8)], len(s[2])),
                    ],
                )
                for t, s in ((kd, kd_state), (ball, ball_state))
            ],
            (
                csr,
                [
                    (csr.indices.tobytes(), 4, [(0, 4)], 30),
                    (csr.indptr.tobytes(), 4, [(0, 4)], len(csr.indices)),
                ],
            ),
            (coo, [(coo.row.tobytes(), 4, [(0, 4)], 60), (coo.col.tobytes(), 4, [(0, 4)], 30)]),
            (
                bsr,
                [
                    (bsr.indices.tobytes(), 4, [(0, 4)], 10),
                    (bsr.indptr.tobytes(), 4, [(0, 4)], len(bsr.indices)),
                ],
            ),
        ]
        self.pickles = [pickle.dumps(obj, protocol=4) for obj, _ in self.cases]
        self.places = [
            [data.find(raw) for raw, *_ in regions]
            for data, (_, regions) in zip(self.pickles, self.cases, strict=True)
        ]
        assert all(at >= 0 for places in self.places for at in places)

    def program(self) -> bytes:
        rng = self.rng
        k = rng.randrange(len(self.cases))
        data = bytearray(self.pickles[k])
        for _ in range(rng.choice([1, 1, 2, 3])):
            which = rng.randrange(len(self.cases[k][1]))
            raw, size, fields, bound = self.cases[k][1][which]
            at = self.places[k][which]
            record = rng.randrange(len(raw) // size)
            offset, width = rng.choice(fields)
            near = [
                -1,
                -2,
                0,
                1,
                record,
                record + 1,
                bound - 1,
                bound,
                bound + 1,
                bound * 2,
                2**31 - 1,
                2**40,
            ]
            value = rng.choice([*near, rng.randrange(max(bound, 1))])
            signed = width > 1
            value = max(min(value, 2 ** (8 * width - signed) - 1), -(2 ** (8 * width - 1)) if signed else 0)
            place = at + record * size + offset
            data[place : place + width] = value.to_bytes(width, "little", signed=signed)
        return bytes(data)


def _use_structure(data: bytes) -> None:
    """What an application does with the loaded object: predict, query, densify, multiply."""
    np = pytest.importorskip("numpy")
    threadpoolctl = pytest.importorskip("threadpoolctl")
    value = pickle.loads(data)
    rows = np.random.RandomState(5).normal(size=(64, 5))
    if hasattr(value, "predict"):
        # one thread: an OpenMP pool the parent started does not survive the fork (libgomp waits forever)
        with threadpoolctl.threadpool_limits(1):
            value.predict(rows)
    elif hasattr(value, "query"):
        value.query(rows, k=3)
        value.query_radius(rows, r=1.0)
    else:
        value.toarray()
        value @ np.ones(value.shape[1])
        value.T @ np.ones(value.shape[0])


def test_mutated_index_arrays_called_clean_never_crash_the_real_libraries() -> None:
    """Index words of trees, KD/Ball trees and sparse matrices set near their bounds: the ones the scanner
    calls clean are loaded and used by the real scikit-learn and SciPy in forked children, and none may kill
    the process; enough of the batch does crash them to show the generator reaches the class."""
    gen = _IndexMutations(random.Random(8))
    inputs = [gen.program() for _ in range(600)]
    verdicts = [_verdict(data, "model.pkl") for data in inputs]
    clean = [data for data, v in zip(inputs, verdicts, strict=True) if v == "clean"]
    assert len(clean) > 60 and verdicts.count("findings") > 200
    flagged = [data for data, v in zip(inputs, verdicts, strict=True) if v == "findings"][:80]
    # the flagged ones do crash the libraries (some loop instead: a child out of time counts as no crash) ...
    assert len(crashing(_use_structure, flagged, seconds=3)) > 10
    crashed = crashing_alone(_use_structure, clean, seconds=20)
    assert not crashed, [clean[i][:80] for i in crashed[:3]]  # ... never on an input called clean
