"""Round 14: objects changed after the scanner checked them.

numpy's ``dtype.__setstate__`` and ``ndarray.__setstate__`` change the object in place. A BUILD that reaches a dtype
or an array again through the memo after something was built on it (a structured dtype holding it as a field's
dtype, a view holding the array's data pointer) left that something relying on the old state: each state was
checked when it was given, never against what already held the object, and the files below were clean while the
real unpickler crashed. numpy's own pickles build each dtype and array once, right after making it.
"""

from __future__ import annotations

import pickle
import struct
import subprocess
import sys

import pytest
from test_redteam_round13_pickle import _killed_loading

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity


def _rebuilt(data: bytes, kind: str) -> bool:
    return any(
        f.rule_id == "LW-MODEL-017"
        and f.severity is Severity.HIGH
        and f"state of a numpy {kind}" in f.message
        for f in analyze_pickle_bytes(data).findings
    )


def _memo_index(data: bytes, after: bytes) -> int:
    """The BINPUT index of the object the first REDUCE at or after ``after`` makes."""
    at = data.index(b"Rq", data.index(after))
    return data[at + 2]


# --- a field's dtype rebuilt after the structured dtype holding it was checked -----------------------------------


def _structured(inner_edit: bytes, *, before_outer: bool = False, alias: bool = False) -> tuple[bytes, bytes]:
    """numpy's pickle of a two-field structured array whose ``V8`` field dtype gets ``inner_edit`` (run with the
    field dtype on top of the stack) after the outer dtype's BUILD; ``before_outer``: the field dtype is left
    without its own BUILD, which the edit then gives it; ``alias``: the edit gets ``numpy.dtype(field dtype)``,
    which numpy returns as the field dtype itself."""
    np = pytest.importorskip("numpy")
    data = pickle.dumps(np.zeros(2, dtype=[("a", "V8"), ("b", "<i4")]), protocol=2)
    inner = _memo_index(data, b"X\x02\x00\x00\x00V8")
    if before_outer:
        own = data.index(b"(K\x03h", data.index(b"X\x02\x00\x00\x00V8"))
        end = data.index(b"tq", own) + 4  # the field dtype's state tuple, its BINPUT and its BUILD
        assert data[end - 1 : end] == b"b"
        data = data[:own] + data[end:]
    built = data.index(b"K\x0cK\x01K\x10tq") + 10  # just after the structured dtype's BUILD
    field = b"h" + bytes([inner])
    if alias:
        field = b"cnumpy\ndtype\n" + field + b"\x85R"
    return data, data[:built] + field + inner_edit + b"0" + data[built:]


_GROWN = b"(K\x03X\x01\x00\x00\x00|NNNJ\x00\x00\x00\x10K\x01K\x00tb"  # V8 state with a 256 MiB item size


def test_a_field_dtype_rebuilt_after_the_structured_dtype_is_reported() -> None:
    """The field dtype's item size grown to 256 MiB by a second BUILD after the 12-byte structured dtype was
    checked: numpy keeps the field's dtype object, so reading field ``a`` copies 256 MiB from a 24-byte array."""
    plain, evil = _structured(_GROWN)
    assert not analyze_pickle_bytes(plain).findings
    assert _rebuilt(evil, "dtype")
    assert _killed_loading(evil, "print(len(loaded['a'].tobytes()))")


def test_a_field_dtype_first_built_after_the_structured_dtype_is_reported() -> None:
    """The same with the field dtype's only BUILD moved after the outer one (through the memo)."""
    _, evil = _structured(_GROWN, before_outer=True)
    assert _rebuilt(evil, "dtype")
    assert _killed_loading(evil, "print(len(loaded['a'].tobytes()))")


def test_a_dtype_rebuilt_to_the_same_state_is_still_reported() -> None:
    """Which later state is harmless is not judged: numpy never writes a second BUILD (fail closed)."""
    _, evil = _structured(b"(K\x03X\x01\x00\x00\x00|NNNK\x08K\x01K\x00tb")
    assert _rebuilt(evil, "dtype")


def test_a_field_dtype_rebuilt_through_numpy_dtype_of_it_is_reported() -> None:
    """``numpy.dtype(d)`` returns ``d``: the BUILD on the call's result is a second BUILD on the field dtype."""
    _, evil = _structured(_GROWN, alias=True)
    assert _rebuilt(evil, "dtype")
    assert _killed_loading(evil, "print(len(loaded['a'].tobytes()))")


def test_a_field_dtype_reached_through_operator_getitem_and_rebuilt_is_reported() -> None:
    """``operator.getitem(field, 0)`` of the field tuple ``(dtype, 0)`` taken from the memo is the field's dtype
    itself: the BUILD on it grew the item size under the structured dtype (the analysis saw a new object)."""
    np = pytest.importorskip("numpy")
    data = pickle.dumps(np.zeros(2, dtype=[("a", "V8"), ("b", "<i4")]), protocol=2)
    field = data[data.index(b"K\x00\x86q") + 4]  # BINPUT index of field a's (dtype, offset) tuple
    built = data.index(b"K\x0cK\x01K\x10tq") + 10
    edit = b"coperator\ngetitem\nh" + bytes([field]) + b"K\x00\x86R" + _GROWN + b"0"
    evil = data[:built] + edit + data[built:]
    assert _rebuilt(evil, "dtype")
    assert _killed_loading(evil, "print(len(loaded['a'].tobytes()))")


def test_a_build_on_an_item_the_analysis_does_not_hold_is_reported() -> None:
    """``operator.getitem`` of something made at load time: what the BUILD reaches is not known."""
    payload = b"\x80\x02coperator\ngetitem\ncbuiltins\nlist\n)RK\x00\x86R}b."
    findings = analyze_pickle_bytes(payload).findings
    assert any(f.rule_id == "LW-MODEL-008" and f.severity is Severity.HIGH for f in findings), findings


# --- a field dtype spelled otherwise than numpy writes it --------------------------------------------------------


def _u(text: str) -> bytes:
    return b"X" + struct.pack("<I", len(text)) + text.encode()


def _two_fields(field_a: bytes, offset: int) -> bytes:
    """A 2-element array of a 12-byte structured dtype whose field ``a`` has the dtype ``field_a`` (pickle ops
    that push it) at ``offset``, and field ``b`` an int32 at 8, built by hand."""
    dtype = b"cnumpy\ndtype\n"
    int32 = (
        dtype
        + b"("
        + _u("i4")
        + b"\x89\x88tR(K\x03"
        + _u("<")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
    )
    fields = (
        b"}("
        + _u("a")
        + field_a
        + b"J"
        + struct.pack("<i", offset)
        + b"\x86"
        + _u("b")
        + int32
        + b"K\x08\x86u"
    )
    names = b"(" + _u("a") + _u("b") + b"t"
    outer = (
        dtype
        + b"("
        + _u("V12")
        + b"\x89\x88tR(K\x03"
        + _u("|")
        + b"N"
        + names
        + fields
        + b"K\x0cK\x01K\x10tb"
    )
    return (
        b"\x80\x03cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
        b"(K\x01K\x02\x85" + outer + b"\x89C\x18" + bytes(24) + b"tb."
    )


def test_a_field_dtype_named_by_its_scalar_type_is_sized() -> None:
    """``numpy.dtype(numpy.float64)`` as a field's dtype was not sized, and the field was not judged: at 256 MiB
    past a 12-byte item it was clean, and numpy reads it there."""
    np = pytest.importorskip("numpy")
    by_type = b"cnumpy\ndtype\ncnumpy\nfloat64\n\x85R"
    assert np.dtype(np.float64).itemsize == 8
    assert not analyze_pickle_bytes(_two_fields(by_type, 0)).findings
    evil = _two_fields(by_type, 1 << 28)
    findings = analyze_pickle_bytes(evil).findings
    assert any(f.rule_id == "LW-MODEL-017" and "268435456" in f.message for f in findings), findings
    assert _killed_loading(evil, "print(loaded['a'].sum())")


@pytest.mark.parametrize(
    "field_a",
    [
        b"cnumpy\ndtype\ncnumpy\nlongdouble\n\x85R",  # its size depends on the platform
        b"cnumpy\ndtype\ncbuiltins\nlen\n]\x85R\x85R",  # a spec computed at load time
    ],
)
def test_a_field_dtype_the_analysis_cannot_size_is_unverified(field_a: bytes) -> None:
    result = analyze_pickle_bytes(_two_fields(field_a, 0))
    assert result.unverified is not None and "cannot read or size" in result.unverified, result


def test_a_structured_dtype_spelled_as_a_list_is_judged() -> None:
    """``numpy.dtype([("a", "<i4")])`` is a void dtype sized by its state, as numpy's own ``V4`` spec is."""
    inner = (
        b"cnumpy\ndtype\n]" + _u("x") + _u("<i4") + b"\x86a\x85R(K\x03" + _u("|") + b"N(" + _u("x") + b"t}("
    )
    inner += _u("x") + b"cnumpy\ndtype\n" + _u("i4") + b"\x85RJ\x00\x00\x00\x10\x86uK\x04K\x01K\x10tb"
    findings = analyze_pickle_bytes(_two_fields(inner, 0)).findings
    assert any(f.rule_id == "LW-MODEL-017" and "268435456" in f.message for f in findings), findings


# --- an array rebuilt under a view of its data --------------------------------------------------------------------


def _array_with_view(count: int = 1 << 15, *, made: int | None = None) -> bytes:
    """An array of ``count`` float64, a view ``numpy.ndarray((count,), "f8", array)`` of it returned, and a second
    BUILD on the array (through the memo) that gives it one element: numpy frees the data the view reads.
    ``made``: the array is made by ``_reconstruct`` with that many bytes, viewed, and only then built."""
    np = pytest.importorskip("numpy")
    data = pickle.dumps(np.ones(count), protocol=3)
    assert data.endswith(b"b.")
    array = _memo_index(data, b"_reconstruct")
    dtype = _memo_index(data, b"cnumpy\ndtype\n")
    if made is not None:
        shape = data.index(b"K\x00\x85", data.index(b"_reconstruct"))
        data = data[:shape] + b"J" + struct.pack("<i", made) + data[shape + 2 :]
        state = data.index(b"(K\x01", shape)
        body, state_ops = data[:state], data[state:-1]
    else:
        body, state_ops = data[:-1], b""
    h_array, h_dtype = b"h" + bytes([array]), b"h" + bytes([dtype])
    # numpy.ndarray takes the dtype's name; ``_reconstruct`` makes bytes (``b``)
    kind, size = (b"f8", count) if made is None else (b"u1", made)
    view = (
        b"cnumpy\nndarray\n(J" + struct.pack("<i", size) + b"\x85X\x02\x00\x00\x00" + kind + h_array + b"tR"
    )
    if made is not None:
        return body + b"0" + view + h_array + state_ops + b"0."
    rebuild = h_array + b"(K\x01K\x01\x85" + h_dtype + b"\x89C\x08" + bytes(8) + b"tb0"
    return body + b"0" + view + rebuild + b"."


def test_an_array_rebuilt_under_a_view_is_reported() -> None:
    evil = _array_with_view()
    assert _rebuilt(evil, "ndarray")
    assert _killed_loading(evil, "print(loaded.sum())")


def test_an_array_made_with_elements_and_built_after_a_view_is_reported() -> None:
    """``_reconstruct`` made with a MiB of bytes, a view taken, then the array's only BUILD: numpy frees the
    buffer the view reads."""
    evil = _array_with_view(made=1 << 20)
    assert _rebuilt(evil, "ndarray")
    assert _killed_loading(evil, "print(loaded.sum())")


def test_numpy_pickles_of_shared_dtypes_and_arrays_stay_clean() -> None:
    """numpy's own pickles: a dtype shared by fields and arrays, an array listed twice, an object array holding
    itself (its element list takes the array from the memo before its BUILD, made empty by ``_reconstruct``)."""
    np = pytest.importorskip("numpy")
    shared = np.dtype("V8")
    a = np.zeros(3, dtype=[("a", shared), ("b", shared), ("c", "<i4")])
    b = np.zeros(2, dtype=a.dtype)
    itself = np.empty(2, dtype=object)
    itself[0], itself[1] = itself, a
    masked = np.ma.masked_array([1.0, 2.0], mask=[True, False])
    for protocol in (2, 3, 4, 5):
        data = pickle.dumps({"a": a, "b": b, "again": a, "itself": itself, "m": masked}, protocol=protocol)
        assert not analyze_pickle_bytes(data).findings, protocol


# --- a bytearray resized under the array built on its memory ------------------------------------------------------


def _bytearray_array(store: bytes, *, made: bytes | None = None, count: int = 1 << 17) -> bytes:
    """Protocol 5: ``numpy.ndarray((count,), "f8", ba)`` over a bytearray ``ba`` (BYTEARRAY8, or ``made``) kept
    in memo 0, then ``store`` run with ``ba`` on top of the stack; the array is returned."""
    ba = made if made is not None else b"\x96" + struct.pack("<Q", count * 8) + bytes(count * 8)
    return (
        b"\x80\x05cnumpy\nndarray\n(J"
        + struct.pack("<i", count)
        + b"\x85X\x02\x00\x00\x00f8"
        + ba
        + b"q\x00tR"
        b"h\x00" + store + b"0."
    )


_GROW = (
    b"cbuiltins\nslice\nJ"
    + struct.pack("<i", 8 << 17)
    + b"NN\x87RB"
    + struct.pack("<I", 8 << 20)
    + bytes(8 << 20)
    + b"s"
)


def test_a_bytearray_resized_under_an_array_is_reported() -> None:
    """numpy.ndarray(shape, dtype, buffer) keeps a bytearray's memory without holding its export: a slice
    assignment that grows the bytearray by 8 MiB moves it, and the array reads the freed MiB."""
    pytest.importorskip("numpy")
    evil = _bytearray_array(_GROW)
    findings = analyze_pickle_bytes(evil).findings
    assert any(f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH for f in findings), findings
    assert _killed_loading(evil, "print(loaded.sum())")


@pytest.mark.parametrize(
    "store",
    [
        b"K\x01a",  # bytearray.append
        b"(K\x01K\x02e",  # bytearray.extend
        b"(cbuiltins\nslice\nNNN\x87RC\x00u",  # SETITEMS: emptied
    ],
)
def test_every_store_into_a_bytearray_is_reported(store: bytes) -> None:
    findings = analyze_pickle_bytes(_bytearray_array(store, count=4)).findings
    assert any(f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH for f in findings), findings


def test_a_store_into_a_bytearray_made_at_load_time_is_reported() -> None:
    made = b"cbuiltins\nbytearray\nJ" + struct.pack("<i", 32) + b"\x85R"
    findings = analyze_pickle_bytes(_bytearray_array(b"K\x01a", made=made, count=4)).findings
    assert any(f.rule_id == "LW-MODEL-017" and f.severity is Severity.HIGH for f in findings), findings


def test_pickled_bytearrays_stay_clean() -> None:
    np = pytest.importorskip("numpy")
    value = {"raw": bytearray(b"abc" * 100), "array": np.arange(6.0).reshape(2, 3)}
    for protocol in (2, 3, 4, 5):
        assert not analyze_pickle_bytes(pickle.dumps(value, protocol=protocol)).findings, protocol


# --- a checked array written after its check ----------------------------------------------------------------------


def _tree_with(edit: bytes) -> bytes:
    """A fitted scikit-learn decision tree's pickle with ``edit`` run just after its node array's BUILD (the node
    array's memo index replaces ``{nodes}``): before the tree's own BUILD, which copies the nodes."""
    import pickletools

    np = pytest.importorskip("numpy")
    tree = pytest.importorskip("sklearn.tree")
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]])
    data = pickle.dumps(tree.DecisionTreeClassifier(random_state=0).fit(x, [0, 1, 0, 1]), protocol=2)
    ops = list(pickletools.genops(data))
    named = next(i for i, (op, arg, _) in enumerate(ops) if arg == "nodes")
    made = next(i for i in range(named, len(ops)) if ops[i][0].name == "REDUCE")  # _reconstruct of the nodes
    nodes = ops[made + 1][1]
    depth, at = 0, made + 1
    while True:  # the BUILD of the node array: the first BUILD at the depth its REDUCE left it
        at += 1
        name = ops[at][0].name
        if name == "MARK":
            depth += 1
        elif name in ("TUPLE", "SETITEMS", "DICT", "LIST"):
            depth -= 1
        elif name == "BUILD" and depth == 0:
            break
    end = ops[at + 1][2]
    return data[:end] + edit.replace(b"{nodes}", bytes([nodes])) + data[end:]


_FEATURE = 1 << 40  # a feature index far past the two columns the tree reads


def test_a_node_array_written_by_setitem_after_its_check_is_reported() -> None:
    """``nodes[0] = (..., feature=2**40, ...)`` through the memo after the node array's check: the tree copies the
    changed nodes at its BUILD, and ``predict`` reads the feature 8 TiB past the input row (SIGSEGV)."""
    values = b"(\x8a\x01\x01\x8a\x01\x02\x8a\x06" + _FEATURE.to_bytes(6, "little")
    values += (
        b"G" + struct.pack(">d", 0.5) + b"G" + struct.pack(">d", 0.5) + b"K\x04G" + struct.pack(">d", 4.0)
    )
    values += b"K\x00t"
    evil = _tree_with(b"h{nodes}K\x00" + values + b"s0")
    findings = analyze_pickle_bytes(evil).findings
    assert any(f.rule_id == "LW-MODEL-017" and "writes into a numpy array" in f.message for f in findings)
    assert _killed_loading(evil, "import numpy; print(loaded.predict(numpy.zeros((2, 2))))")
    assert not analyze_pickle_bytes(_tree_with(b"")).findings


def _feature_view() -> bytes:
    """``numpy.ndarray((5,), "i8", nodes, 16, (64,))``: the feature field of every node, as int64."""
    return b"cnumpy\nndarray\n(K\x05\x85X\x02\x00\x00\x00i8h{nodes}K\x10K\x40\x85tR"


def test_a_ufunc_writing_into_a_view_of_a_node_array_is_reported() -> None:
    """``numpy.add(view, 2**40, view)``: the ufunc's out argument is a view of the node array's feature field."""
    evil = _tree_with(
        _feature_view() + b"q\xf0cnumpy\nadd\n(h\xf0\x8a\x06" + _FEATURE.to_bytes(6, "little") + b"h\xf0tR00"
    )
    findings = analyze_pickle_bytes(evil).findings
    assert any(f.rule_id == "LW-MODEL-017" and "numpy.add" in f.message for f in findings), findings
    assert _killed_loading(evil, "import numpy; print(loaded.predict(numpy.zeros((2, 2))))")


def test_a_view_written_by_setitem_and_an_out_keyword_are_reported() -> None:
    by_setitem = _tree_with(_feature_view() + b"K\x00\x8a\x06" + _FEATURE.to_bytes(6, "little") + b"s0")
    # functools.partial(numpy.add, out=view)(view, 2**40)
    keyword = _tree_with(
        _feature_view()
        + b"q\xf0cfunctools\npartial\ncnumpy\nadd\n\x85R(cnumpy\nadd\n)}X\x03\x00\x00\x00outh\xf0sNtb"
        b"(h\xf0\x8a\x06" + _FEATURE.to_bytes(6, "little") + b"tR00"
    )
    for evil in (by_setitem, keyword):
        findings = analyze_pickle_bytes(evil).findings
        assert any(f.rule_id == "LW-MODEL-017" and "writes into a numpy array" in f.message for f in findings)


# --- a fields mapping or field spelled otherwise than numpy writes it ----------------------------------------------


def _fields_as(spelling: bytes) -> bytes:
    """``_two_fields`` with a float64 field ``a`` at 256 MiB and the fields dict literal replaced by ``spelling``
    (ops that push an empty mapping the SETITEMS then fill)."""
    data = _two_fields(b"cnumpy\ndtype\n" + _u("f8") + b"\x85R", 1 << 28)
    assert data.count(b"}(") == 1
    return data.replace(b"}(", spelling + b"(")


def test_a_fields_ordered_dict_is_judged() -> None:
    """numpy takes any dict subclass as a dtype's fields: an ``OrderedDict()`` filled by SETITEMS was not read,
    and field ``a`` 256 MiB past a 12-byte item was clean (numpy reads it there)."""
    pytest.importorskip("numpy")
    evil = _fields_as(b"ccollections\nOrderedDict\n)R")
    findings = analyze_pickle_bytes(evil).findings
    assert any(f.rule_id == "LW-MODEL-017" and "268435456" in f.message for f in findings), findings
    assert _killed_loading(evil, "print(loaded['a'].sum())")


def test_a_fields_ordered_dict_changed_after_the_build_is_judged_again() -> None:
    """The OrderedDict stays the dtype's fields: a store into it after the BUILD moves a field (see round 13)."""
    data = _two_fields(b"cnumpy\ndtype\n" + _u("f8") + b"\x85R", 0)
    data = data.replace(b"}(", b"ccollections\nOrderedDict\n)Rq\x07(")
    built = data.index(b"K\x0cK\x01K\x10tb") + 9
    edit = b"h\x07" + _u("a") + b"cnumpy\ndtype\n" + _u("f8") + b"\x85RJ\x00\x00\x00\x10\x86s0"
    assert not analyze_pickle_bytes(data).findings
    findings = analyze_pickle_bytes(data[:built] + edit + data[built:]).findings
    assert any(f.rule_id == "LW-MODEL-017" and "268435456" in f.message for f in findings), findings


@pytest.mark.parametrize(
    "spelling",
    [
        b"cbuiltins\nlen\n]\x85R",  # a value computed at load time as the fields mapping
        b"ccollections\nOrderedDict\n](" + _u("z") + b"K\x01\x86e\x85R",  # pairs the analysis does not merge
    ],
)
def test_a_fields_mapping_the_analysis_cannot_read_is_unverified(spelling: bytes) -> None:
    result = analyze_pickle_bytes(_fields_as(spelling))
    assert result.unverified is not None and "cannot read or size" in result.unverified, result


def test_a_field_tuple_made_at_load_time_is_judged() -> None:
    """``tuple([dtype, offset])`` is a tuple to numpy: a field spelled so is judged, or the file unverified."""
    np = pytest.importorskip("numpy")
    evil = _two_fields(b"", 0).replace(
        b"X\x01\x00\x00\x00aJ\x00\x00\x00\x00\x86",
        b"X\x01\x00\x00\x00acbuiltins\ntuple\n](cnumpy\ndtype\n" + _u("f8") + b"\x85RJ\x00\x00\x00\x10e\x85R",
    )
    assert evil != _two_fields(b"", 0)
    assert pickle.loads(evil).dtype.fields["a"] == (np.dtype("f8"), 1 << 28)
    result = analyze_pickle_bytes(evil)
    judged = any(f.rule_id == "LW-MODEL-017" and "268435456" in f.message for f in result.findings)
    assert judged or (result.unverified is not None and "cannot read or size" in result.unverified), result


def _subarray_as(subarray: bytes) -> bytes:
    """A 2-element array of an 8-byte void dtype whose state's sub-array item is pushed by ``subarray``."""
    state = b"(K\x03" + _u("|") + subarray + b"NNK\x08K\x01K\x00t"
    dtype = b"cnumpy\ndtype\n(" + _u("V8") + b"\x89\x88tR" + state + b"b"
    return (
        b"\x80\x03cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R"
        b"(K\x01K\x02\x85" + dtype + b"\x89C\x10" + bytes(16) + b"tb."
    )


def test_a_sub_array_made_at_load_time_is_judged() -> None:
    """``tuple([float64, (2**27,)])`` is a tuple to numpy: a 1 GiB sub-array in an 8-byte item, which the layout
    check reports when it is a tuple literal, was not read when spelled so (hardening: no crash was shown)."""
    pytest.importorskip("numpy")
    f8 = b"cnumpy\ndtype\n" + _u("f8") + b"\x85R"
    plain = _subarray_as(f8 + b"J\x00\x00\x00\x08\x85\x86")
    made = _subarray_as(b"cbuiltins\ntuple\n](" + f8 + b"J\x00\x00\x00\x08\x85e\x85R")
    assert any("sub-array of 1073741824 bytes" in f.message for f in analyze_pickle_bytes(plain).findings)
    result = analyze_pickle_bytes(made)
    judged = any("sub-array of 1073741824 bytes" in f.message for f in result.findings)
    assert judged or (result.unverified is not None and "cannot read or size" in result.unverified), result


# --- a mapping a functools.partial keeps as its own, changed after its BUILD --------------------------------------


def _partial_dict_planted(slot: int, *, reading: bool = True) -> bytes:
    """``partial(argparse.Namespace)`` given a BUILD state whose dict ``slot`` (2: keywords, 3: ``__dict__``) is
    an empty dict kept in memo 7; then ``__setstate__ = partial(BertWordPieceTokenizer, path)`` stored into that
    dict through the memo, and a second BUILD with a plain partial state. ``partial.__setstate__`` keeps the dict
    itself, so the second BUILD calls the stored callable: the tokenizer reads the file the pickle names."""
    from test_redteam_pickle import P4, STOP, call, g, tup, u

    path = "/nonexistent/outside/vocab.txt"
    tokenizer = "tokenizers.implementations.bert_wordpiece.BertWordPieceTokenizer"
    planted = u("__setstate__") + call(g("functools.partial"), g(tokenizer), u(path))
    parts = [g("argparse.Namespace"), b")", b"N", b"N"]
    parts[slot] = b"}q\x07"
    payload = P4 + call(g("functools.partial"), g("argparse.Namespace")) + tup(*parts) + b"b"
    payload += b"h\x07" + planted + b"s0"
    if reading:
        payload += tup(g("argparse.Namespace"), b")", b"N", b"N") + b"b"
    return payload + STOP


def test_a_setstate_stored_into_a_partials_dict_after_its_build_is_reported() -> None:
    evil = _partial_dict_planted(3)
    findings = analyze_pickle_bytes(evil).findings
    assert any(f.rule_id == "LW-MODEL-016" and f.severity is Severity.CRITICAL for f in findings), findings
    pytest.importorskip("tokenizers")
    run = subprocess.run(
        [sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"],
        input=evil,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert b"WordPiece" in run.stderr and b"No such file" in run.stderr, run.stderr  # the tokenizer ran


def test_a_setstate_stored_into_a_partials_keywords_after_its_build_is_reported() -> None:
    """The keywords become the Namespace's attributes when the partial is called: stored late, still judged."""
    findings = analyze_pickle_bytes(_partial_dict_planted(2, reading=False)).findings
    assert any(f.rule_id == "LW-MODEL-016" and f.severity is Severity.CRITICAL for f in findings), findings


def test_plain_stores_into_a_partials_dict_stay_clean() -> None:
    from test_redteam_pickle import P4, STOP, call, g, tup, u

    payload = P4 + call(g("functools.partial"), g("argparse.Namespace"))
    payload += (
        tup(g("argparse.Namespace"), b")", b"N", b"}q\x07") + b"b" + b"h\x07" + u("note") + u("x") + b"s0"
    )
    assert not analyze_pickle_bytes(payload + STOP).findings


# --- a second BUILD merged into a checked object's __dict__ -------------------------------------------------------


def test_a_sparse_matrix_given_new_indices_by_a_second_build_is_reported() -> None:
    """SciPy sparse matrices take their BUILD state by a ``__dict__`` update: a second BUILD carrying only
    ``indices`` (an index 2**30 in a 3x3 matrix) was checked alone, found no shape to judge against, and was clean;
    ``toarray()`` writes outside its output (SIGSEGV)."""
    np = pytest.importorskip("numpy")
    sparse = pytest.importorskip("scipy.sparse")
    matrix = sparse.csr_matrix(np.eye(3))
    data = pickle.dumps(matrix, protocol=2)
    assert data.endswith(b"b.") and not analyze_pickle_bytes(data).findings
    bad = pickle.dumps(np.array([0, 1, 1 << 30], dtype=matrix.indices.dtype), protocol=2)[2:-1]
    evil = data[:-1] + b"}" + _u("indices") + bad + b"sb."
    findings = analyze_pickle_bytes(evil).findings
    assert any(f.rule_id == "LW-MODEL-017" and "a second time" in f.message for f in findings), findings
    assert _killed_loading(evil, "print(loaded.toarray())")
