"""Round 15: joblib's object arrays read as pickle.load reads them, and numpy's allocations by REDUCE.

joblib pickles an object array as a pickle stream of its own (``pickle.dump(array, protocol=5)``) right after the
``NumpyArrayWrapper`` and reads it with a fresh unpickler: the stream's memo numbers restart at 0. A plain loader
(``pickle.load``, ``numpy.load``, ``torch.load(weights_only=False)``) reads the same bytes as a continuation of the
outer stream, so numpy's memo GET of its own module string for the array's dtype takes whatever the outer memo has
at that number: ``pandas.dtype``, ``NumpyArrayWrapper.dtype``, ``os.dtype`` (a user's string). No module but
numpy's has such a name, so the loader stops there (it ran nothing); the scanner reported them HIGH or CRITICAL, or
unverified. A misread name that is not one numpy takes from its memo stays judged as it is.

``numpy.ndarray(shape, dtype)`` by REDUCE skipped the check of unfilled allocations (only calls the VM models
reached it): a float array of uninitialised memory (heap addresses, shown with numpy 2.4) was clean. numpy zero-fills
object arrays (their dtype carries ``NPY_NEEDS_INIT``): those read back as None and are admitted.
"""

from __future__ import annotations

import pickle
import pickletools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict


def _clean(result: PickleResult) -> bool:
    return not result.findings and not result.unverified


def _scan(path: Path) -> tuple[Verdict, list[Any], str | None]:
    (target,) = scan_paths([str(path)], jobs=1).targets
    return target.verdict, list(target.findings), target.reason


def _compressions() -> list[Any]:
    kinds: list[Any] = [0, 3, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)]
    try:
        import lz4  # noqa: F401

        kinds.append(("lz4", 3))
    except ImportError:
        pass
    return kinds


def _object_payloads() -> dict[str, Any]:
    import datetime

    import numpy as np

    pd = pytest.importorskip("pandas")
    empty = np.array([], dtype=object)
    full = np.array(["a", 1, None, 2.5], dtype=object)
    return {
        "index_empty": pd.Index([], dtype=object),
        "index": pd.Index(["a", "b"], dtype=object),
        "dict_empty": {"k": empty},
        "dict": {"k": full},
        "list": [full, full.copy(), empty],
        "tuple": ("a", "b", "c", empty),
        "bare": full,
        "several": {"a": empty, "b": full, "c": np.arange(3), "d": np.zeros((2, 0), dtype=object)},
        "frame": pd.DataFrame({"s": pd.Series(["x", None], dtype=object), "i": [1, 2]}),
        "series_empty": pd.Series([], dtype=object),
        "nested": {"x": [1, 2, {"y": full}], "z": pd.Index([], dtype=object)},
        # a user's strings land where numpy's module string was: os.dtype, subprocess.dtype
        "user_strings": ["alpha", "beta", "os", empty],
        "user_strings2": ["alpha", "beta", "subprocess", empty],
        # numpy scalars take numpy's multiarray module string from the memo too (its 'scalar')
        "scalars": {"k": np.array([np.float64(2.0), np.int32(3), "x"], dtype=object)},
        # the second date takes the date class from the memo: an outer string, called
        "dates_index": pd.Index([datetime.date(2020, 1, 1), datetime.date(2020, 1, 2)], dtype=object),
        # numpy scalars and arrays in an index: the misread memo gives an outer dict, called
        "scalars_index": pd.Index(_objects([np.float64(1.0), np.int64(2)])),
        "arrays_index": pd.Index(_objects([np.arange(2), np.arange(3)])),
        # two elements: the array's state holds a 2-item list, which is no attribute pair to ndarray.__setstate__
        "arrays": {"k": _objects([np.arange(2), np.arange(3)])},
        "timestamps": [_objects([pd.Timestamp("2020"), pd.Timestamp("2021")])],
    }


def _objects(items: list[Any]) -> Any:
    """An object array holding ``items`` as they are (numpy would stack arrays of one shape)."""
    import numpy as np

    made = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        made[i] = item
    return made


@pytest.mark.parametrize("compress", _compressions(), ids=str)
def test_joblib_object_arrays_scan_clean(tmp_path: Path, compress: Any) -> None:
    joblib = pytest.importorskip("joblib")
    for name, obj in _object_payloads().items():
        path = tmp_path / f"{name}.joblib"
        joblib.dump(obj, path, compress=compress)
        verdict, findings, reason = _scan(path)
        assert verdict is Verdict.CLEAN, (name, findings, reason)


def test_joblib_object_arrays_load_with_joblib_and_mmap(tmp_path: Path) -> None:
    """What the files above are: joblib.load (and mmap_mode, which maps only the numeric arrays) reads them."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    obj = {"o": np.array(["a", None], dtype=object), "f": np.arange(4.0)}
    path = tmp_path / "mm.joblib"
    joblib.dump(obj, path)
    loaded = joblib.load(path, mmap_mode="r")
    assert list(loaded["o"]) == ["a", None]
    assert _scan(path)[0] is Verdict.CLEAN


@pytest.mark.parametrize("name", ["index_empty", "dict_empty", "tuple", "user_strings"])
def test_a_plain_loader_stops_at_the_misread_dtype(tmp_path: Path, name: str) -> None:
    """pickle.load of these files looks 'dtype' up in the outer string and fails there (nothing of the file's runs
    past it); the same bytes read with joblib.load give the object array."""
    joblib = pytest.importorskip("joblib")
    obj = _object_payloads()[name]
    path = tmp_path / f"{name}.joblib"
    joblib.dump(obj, path)
    with pytest.raises((AttributeError, ModuleNotFoundError)):
        pickle.loads(path.read_bytes())
    joblib.load(path)


class _Marker:
    """An object whose reduce writes a marker file through os.system (a harmless effect)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"echo ran > {self.marker}",))


def test_a_payload_in_an_object_array_is_still_reported(tmp_path: Path) -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    marker = tmp_path / "marker"
    path = tmp_path / "evil.joblib"
    joblib.dump({"k": np.array([_Marker(str(marker))], dtype=object)}, path)
    verdict, findings, _ = _scan(path)
    assert verdict is Verdict.FINDINGS
    assert any(f.rule_id == "LW-MODEL-001" and f.severity is Severity.CRITICAL for f in findings), findings
    run = subprocess.run(
        [sys.executable, "-c", f"import joblib; joblib.load({str(path)!r})"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert marker.exists()  # joblib.load ran it


def _inner_span(data: bytes) -> tuple[int, int]:
    """Where the first object array's own stream begins and ends (after its STOP) in a joblib file."""
    start = data.index(b"\x80\x05\x95", 2)
    for op, _, pos in pickletools.genops(data[start:]):
        if op.name == "STOP":
            return start, start + pos + 1
    raise AssertionError("no STOP")


def test_a_name_only_the_misread_pairing_builds_is_still_reported(tmp_path: Path) -> None:
    """The object array's stream takes 'numpy' (its memo 3) for a 'system' global: joblib's reading resolves
    numpy.system (and fails), pickle.load pairs memo 3 with the outer 'os' and runs os.system. Not a name numpy
    takes from its memo, so the misread stays judged."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    path = tmp_path / "plain.joblib"
    joblib.dump(["alpha", "beta", "os", np.array([], dtype=object)], path)
    data = path.read_bytes()
    start, end = _inner_span(data)
    marker = tmp_path / "marker"
    command = f"echo ran > {marker}".encode()
    inner = (
        b"\x80\x05\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94\x8c\x05numpy\x94"
        + b"h\x03\x8c\x06system\x94\x93\x8c"
        + bytes([len(command)])
        + command
        + b"\x85R."
    )
    path.write_bytes(data[:start] + inner + data[end:])
    verdict, findings, _ = _scan(path)
    assert verdict is Verdict.FINDINGS
    assert any(
        f.severity is Severity.CRITICAL and "os.system" in f.message and f.rule_id == "LW-MODEL-001"
        for f in findings
    ), findings
    run = subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert marker.exists(), run.stderr  # pickle.load ran os.system


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_object_arrays_of_two_elements_pickled_plainly_are_clean(protocol: int) -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    for items in ([np.arange(2), np.arange(3)], [pd.Timestamp("2020"), pd.Timestamp("2021")]):
        assert _clean(analyze_pickle_bytes(pickle.dumps(_objects(items), protocol=protocol)))


def test_a_state_pair_on_an_array_subclass_of_another_module_is_still_judged() -> None:
    """Only numpy's own array classes take the state by their C __setstate__: a class of another module made by
    _reconstruct is judged as any instance (here its state plants __setstate__)."""
    data = (
        b"\x80\x02"
        + _g("numpy.core.multiarray", "_reconstruct")
        + _g("mypkg.arrays", "Sub")
        + b"K\x00\x85C\x01b\x87R}X\x0c\x00\x00\x00__setstate__"
        + _g("os", "system")
        + b"sb."
    )
    findings = analyze_pickle_bytes(data).findings
    assert any(f.severity >= Severity.HIGH and "__setstate__" in f.message for f in findings), findings


# --- numpy.ndarray(shape, dtype) by REDUCE ------------------------------------------------------------------------


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"X" + len(raw).to_bytes(4, "little") + raw


def _object_dtype(flags: int | None) -> bytes:
    """``numpy.dtype('O8', False, True)``, with a BUILD state of these flags (None: no BUILD)."""
    made = _g("numpy", "dtype") + _u("O8") + b"\x89\x88\x87R"
    if flags is None:
        return made
    return made + b"(K\x03" + _u("|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK" + bytes([flags]) + b"tb"


def _ndarray(dtype: bytes) -> bytes:
    return b"\x80\x02" + _g("numpy", "ndarray") + b"K\x03\x85" + dtype + b"\x86R."


_ZERO_FILLED = {
    "builtins.object": _ndarray(_g("builtins", "object")),
    "O": _ndarray(_u("O")),
    "object": _ndarray(_u("object")),
    "dtype": _ndarray(_object_dtype(None)),
    "dtype_0x3f": _ndarray(_object_dtype(0x3F)),
    "reconstruct_O": b"\x80\x02"
    + _g("numpy.core.multiarray", "_reconstruct")
    + _g("numpy", "ndarray")
    + b"K\x03\x85C\x01O\x87R.",
}


@pytest.mark.parametrize("name", list(_ZERO_FILLED))
def test_object_arrays_numpy_zero_fills_are_admitted(name: str) -> None:
    np = pytest.importorskip("numpy")
    data = _ZERO_FILLED[name]
    assert _clean(analyze_pickle_bytes(data))
    loaded = pickle.loads(data)  # the real loader on a file built above: three Nones
    assert isinstance(loaded, np.ndarray) and list(loaded) == [None, None, None]


_UNFILLED = {
    "f8": _ndarray(_u("f8")),
    "default_float": b"\x80\x02" + _g("numpy", "ndarray") + b"K\x03\x85\x85R.",
    "reconstruct_f": b"\x80\x02"
    + _g("numpy.core.multiarray", "_reconstruct")
    + _g("numpy", "ndarray")
    + b"K\x03\x85C\x01f\x87R.",
    # numpy takes the dtype's flags from its state: without NPY_NEEDS_INIT the slots are not zeroed
    "object_without_needs_init": _ndarray(_object_dtype(0x37)),
}


@pytest.mark.parametrize("name", list(_UNFILLED))
def test_unfilled_allocations_by_reduce_are_reported(name: str) -> None:
    findings = analyze_pickle_bytes(_UNFILLED[name]).findings
    assert any(
        f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH and "nothing fills" in f.message
        for f in findings
    ), findings


# --- pandas managers and indexes ----------------------------------------------------------------------------------


def _killed_or_output(data: bytes, use: str) -> tuple[int, str]:
    """``pickle.loads(data)`` then ``use`` in a child process: its return code (negative: killed by a signal) and
    output."""
    code = f"import pickle, sys; loaded = pickle.loads(sys.stdin.buffer.read()); {use}"
    run = subprocess.run(
        [sys.executable, "-c", code], input=data, capture_output=True, timeout=120, check=False
    )
    return run.returncode, run.stdout.decode()


_LONG = b"J\xa0\x86\x01\x00"  # 100000


def _series_with_a_long_index(values: Any) -> bytes:
    """A Series as pandas pickles it (its SingleBlockManager given the '0.14.1' state by BUILD), whose RangeIndex
    (in the state's axes and in its first element) stops at 100000 for three values."""
    pd = pytest.importorskip("pandas")
    data = pickletools.optimize(pickle.dumps(pd.Series(values), protocol=2))
    long = data.replace(b"stopq\x05K\x03", b"stopq\x05" + _LONG).replace(b"h\x05K\x03", b"h\x05" + _LONG)
    assert long.count(_LONG) == 2, "pandas pickles a Series another way"
    return long


def _rows_reported(data: bytes) -> bool:
    return any(
        f.rule_id == "LW-MODEL-017"
        and f.severity is Severity.HIGH
        and f.evidence.get("subject") == "pandas.BlockManager:rows"
        for f in analyze_pickle_bytes(data).findings
    )


def test_a_series_whose_index_is_longer_than_its_values_is_reported() -> None:
    """BlockManager.__setstate__ never runs _verify_integrity: repr reads past the values (heap addresses for
    int64; for objects those are taken as object pointers, a crash when they are not one)."""
    np = pytest.importorskip("numpy")
    ints = _series_with_a_long_index(np.arange(3, dtype=np.int64))
    objects = _series_with_a_long_index(np.array(["a", "b", "c"], dtype=object))
    assert _rows_reported(ints)
    assert _rows_reported(objects)
    code, out = _killed_or_output(ints, "print(len(loaded), len(loaded.values))")
    assert (code, out.split()) == (0, ["100000", "3"])  # pandas took the mismatch as it is
    # repr shows the last rows of 100000, read from past the three values (heap addresses, with pandas 3.1)
    code, out = _killed_or_output(ints, "print(repr(loaded))")
    assert code == 0 and "Length: 100000" in out


def test_a_late_build_on_a_series_index_is_reported() -> None:
    """The manager's rows are checked when it is built; a BUILD through the memo on its RangeIndex afterwards
    replaced ``_range`` (pandas keeps the index object itself), and repr read 100000 rows of three values."""
    np = pytest.importorskip("numpy")
    pd = pytest.importorskip("pandas")
    data = pickletools.optimize(pickle.dumps(pd.Series(np.arange(3, dtype=np.int64)), protocol=2))
    made = data.index(b"\x86R", data.index(b"RangeIndex")) + 2
    late = b"h\x63}X\x06\x00\x00\x00_rangecbuiltins\nrange\nK\x00" + _LONG + b"\x86Rsb0."
    edited = data[:made] + b"q\x63" + data[made:-1] + late
    findings = analyze_pickle_bytes(edited).findings
    assert any(
        f.rule_id == "LW-MODEL-017" and f.evidence.get("subject") == "pandas.Index:state" for f in findings
    ), findings
    assert not analyze_pickle_bytes(data).findings
    code, out = _killed_or_output(edited, "print(len(loaded), len(loaded.values))")
    assert (code, out.split()) == (0, ["100000", "3"])


class _FakeManager:
    """Pickled as pandas' BlockManager is in its '0.14.1' form (NEWOBJ, then BUILD of that state); the class's
    name is swapped for pandas' own in the bytes."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        import copyreg

        np = pytest.importorskip("numpy")
        pd = pytest.importorskip("pandas")
        values = np.arange(6, dtype=np.int64).reshape(2, 3)
        columns = pd.Index(["a", "b"])
        axes = [columns, pd.RangeIndex(self.rows)]
        blocks = [{"values": values, "mgr_locs": slice(0, 2, 1)}]
        return (
            copyreg.__newobj__,
            (type(self),),
            (axes, [values], [columns], {"0.14.1": {"axes": axes, "blocks": blocks}}),
        )


def _frame_manager(rows: int) -> bytes:
    data = pickle.dumps(_FakeManager(rows), protocol=2)
    name = f"c{__name__}\n_FakeManager\n".encode()
    assert name in data
    return data.replace(name, b"cpandas.core.internals.managers\nBlockManager\n")


def test_a_frame_manager_whose_index_is_longer_than_its_values_is_reported() -> None:
    pytest.importorskip("pandas")
    assert _clean(analyze_pickle_bytes(_frame_manager(3)))  # its state is no attribute pair (columns, index)
    long = _frame_manager(100000)
    assert _rows_reported(long)
    code, out = _killed_or_output(
        long, "import pandas as pd; print(pd.DataFrame._from_mgr(loaded, axes=loaded.axes).shape)"
    )
    assert (code, out.strip()) == (0, "(100000, 2)")


def test_a_misread_module_whose_import_runs_code_is_still_reported(tmp_path: Path) -> None:
    """The misread dtype is read as numpy's only where the import is inert: ``this`` prints the Zen of Python when
    pickle.load imports it (before looking 'dtype' up and failing)."""
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    path = tmp_path / "zen.joblib"
    joblib.dump(["alpha", "beta", "this", np.array([], dtype=object)], path)
    verdict, findings, _ = _scan(path)
    assert verdict is Verdict.FINDINGS and any("this.dtype" in f.message for f in findings), findings
    run = subprocess.run(
        [sys.executable, "-c", f"import pickle; pickle.load(open({str(path)!r}, 'rb'))"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert "Beautiful is better than ugly" in run.stdout.decode()
    assert "AttributeError" in run.stderr.decode()


def test_a_torch_checkpoint_allocating_an_unfilled_numpy_array_is_reported(tmp_path: Path) -> None:
    """torch.load(weights_only=True) runs it once the user admits numpy.ndarray by add_safe_globals; the scanner
    cannot know that list and judges the checkpoint as a plain loader reads it."""
    torch = pytest.importorskip("torch")
    import io
    import zipfile

    saved = io.BytesIO()
    torch.save({"a": 1}, saved)
    source = zipfile.ZipFile(saved)
    path = tmp_path / "alloc.pt"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            out.writestr(info, _UNFILLED["f8"] if info.filename.endswith("/data.pkl") else data)
    verdict, findings, _ = _scan(path)
    assert verdict is Verdict.FINDINGS
    assert any(f.rule_id == "LW-MODEL-017" and "nothing fills" in f.message for f in findings), findings
    code = (
        "import torch, numpy as np\n"
        "with torch.serialization.safe_globals([np.ndarray]):\n"
        f"    a = torch.load({str(path)!r}, weights_only=True)\n"
        "print(type(a).__name__, a.shape)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=False)
    assert run.stdout.decode().split() == ["ndarray", "(3,)"], run.stderr
