"""Behaviour of the pickle symbolic executor: benign files are clean, limits and bounds, determinism."""

from __future__ import annotations

import collections
import datetime
import decimal
import io
import json
import os
import pickle
import struct
import tracemalloc
import zipfile
from typing import Any

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models.allowlist import AllowList
from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle, analyze_pickle_bytes
from loopwarden.domain import Location, Severity


def _clean(result: PickleResult) -> None:
    assert result.unverified is None, result.unverified
    assert result.findings == (), [(f.rule_id, f.message) for f in result.findings]


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo never-run",))


# --- benign data -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_python_data_types_are_clean(protocol: int) -> None:
    obj = {
        "list": [1, 2.5, "x", b"y", None, True, 10**30, -(10**30)],
        "tuple": (1, (2, (3,))),
        "set": {1, 2},
        "frozenset": frozenset({"a"}),
        "bytearray": bytearray(b"abc"),
        "od": collections.OrderedDict(a=1),
        "dd": collections.defaultdict(list, {"k": [1]}),
        "deque": collections.deque([1, 2]),
        "counter": collections.Counter("aab"),
        "dt": datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "td": datetime.timedelta(days=1),
        "dec": decimal.Decimal("1.5"),
        "complex": 1 + 2j,
        "slice": slice(1, 2),
        "range": range(3),
    }
    _clean(analyze_pickle_bytes(pickle.dumps(obj, protocol=protocol)))


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_and_object_arrays_are_clean(protocol: int) -> None:
    np = pytest.importorskip("numpy")
    obj = {
        "f": np.arange(12.0).reshape(3, 4),
        "fortran": np.asfortranarray(np.ones((3, 2))),
        "obj": np.array([{"a": 1}, [1, 2], "s", None], dtype=object),
        "rec": np.zeros(2, dtype=[("a", "f4"), ("b", "i8")]),
        "str": np.array(["ab", "c"]),
        "dt64": np.datetime64("2020-01-01"),
        "scalars": [np.int64(3), np.float32(1.5), np.bool_(True)],
        "masked": np.ma.masked_array([1, 2], [0, 1]),
        "rs": np.random.RandomState(0),
        "gen": np.random.default_rng(0),
    }
    _clean(analyze_pickle_bytes(pickle.dumps(obj, protocol=protocol)))


def test_npy_object_array_payload_is_clean() -> None:
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}, "x", (1, 2)], dtype=object), allow_pickle=True)
    data = buf.getvalue()
    header_len = int.from_bytes(data[8:10], "little")
    _clean(analyze_pickle_bytes(data[10 + header_len :]))


def _torch_data_pkl(obj: Any) -> bytes:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        return z.read(name)


def _torch_model() -> Any:
    torch = pytest.importorskip("torch")
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8, 4),
        nn.Dropout(0.1),
        nn.LayerNorm(4),
        nn.Embedding(10, 4),
        nn.LSTM(4, 4),
        nn.MultiheadAttention(4, 2),
        nn.TransformerEncoderLayer(4, 2, dim_feedforward=8),
        nn.GELU(),
    )


def test_torch_state_dict_is_clean() -> None:
    _clean(analyze_pickle_bytes(_torch_data_pkl(_torch_model().state_dict())))


def test_torch_whole_module_of_torch_classes_is_clean() -> None:
    _clean(analyze_pickle_bytes(_torch_data_pkl(_torch_model())))


def test_torch_optimizer_and_misc_values_are_clean() -> None:
    torch = pytest.importorskip("torch")
    model = _torch_model()
    opt = torch.optim.AdamW(model.parameters())
    obj = {
        "opt_state": opt.state_dict(),
        "opt": torch.optim.SGD(model.parameters(), lr=0.1),
        "sched": torch.optim.lr_scheduler.StepLR(opt, 3),
        "bf16": torch.zeros(3, dtype=torch.bfloat16),
        "ints": torch.arange(5),
        "device": torch.device("cpu"),
        "size": torch.Size([2, 3]),
        "dtype": torch.float16,
        "sparse": torch.zeros(3, 3).to_sparse(),
        "param": torch.nn.Parameter(torch.ones(2)),
        "epoch": 3,
    }
    _clean(analyze_pickle_bytes(_torch_data_pkl(obj)))


def test_torch_legacy_format_five_pickles() -> None:
    torch = pytest.importorskip("torch")
    buf = io.BytesIO()
    torch.save(_torch_model().state_dict(), buf, _use_new_zipfile_serialization=False)
    r = analyze_pickle_bytes(buf.getvalue(), max_pickles=5)
    _clean(r)
    assert r.pickles == 5
    assert r.consumed < len(buf.getvalue())  # the raw storage bytes after the 5 pickles are not read


def test_user_module_class_is_medium_not_critical() -> None:
    """A whole pickled model whose class lives in ``__main__``/user code is a MEDIUM finding, not CRITICAL."""
    data = b"\x80\x04\x8c\x08__main__\x8c\x03Net\x93)\x81}b."
    r = analyze_pickle_bytes(data)
    assert [(f.rule_id, f.severity) for f in r.findings] == [("LW-MODEL-006", Severity.MEDIUM)]


def _sklearn_models() -> list[Any]:
    pytest.importorskip("sklearn")
    from sklearn.cluster import KMeans
    from sklearn.datasets import make_classification
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    x, y = make_classification(120, 6, random_state=0)
    models: list[Any] = [
        make_pipeline(StandardScaler(), LogisticRegression()),
        RandomForestClassifier(3, random_state=0),
        GradientBoostingClassifier(n_estimators=3),
        HistGradientBoostingClassifier(max_iter=3),
        KNeighborsClassifier(algorithm="kd_tree"),
        SVC(),
        DecisionTreeClassifier(),
        KMeans(3, n_init=2, random_state=0),
        PCA(2),
    ]
    for m in models:
        m.fit(x, y)
    models.append(TfidfVectorizer().fit(["hello world", "a b c hello"]))
    models.append(OneHotEncoder().fit([[1], [2]]))
    return models


def test_sklearn_pickles_are_clean() -> None:
    for model in _sklearn_models():
        for protocol in (2, 5):
            r = analyze_pickle_bytes(pickle.dumps(model, protocol=protocol))
            assert (r.findings, r.unverified) == ((), None), (type(model).__name__, r)


def test_joblib_dumps_are_clean_and_consumed_exactly() -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    values: list[Any] = [
        *_sklearn_models(),
        {
            "i16": np.arange(1000, dtype=np.int16),
            "fortran": np.asfortranarray(np.ones((7, 9))),
            "str": np.array(["abc", "de"]),
            "bool": np.array([True, False]),
            "c128": np.ones(3, dtype=np.complex128),
            "dt": np.array(["2020-01-01"], dtype="datetime64[D]"),
            "rec": np.zeros(3, dtype=[("x", "f4"), ("y", "i8")]),
            "empty": np.zeros((0, 5)),
            "zero_dim": np.array(5.0),
            "obj": np.array([{"k": 1}, "x", None], dtype=object),
        },
    ]
    for value in values:
        buf = io.BytesIO()
        joblib.dump(value, buf)
        data = buf.getvalue()
        r = analyze_pickle_bytes(data, joblib=True)
        assert (r.findings, r.unverified) == ((), None), (type(value).__name__, r)
        assert r.consumed == len(data)


def test_joblib_object_array_payload_is_found() -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    arr = np.zeros(2, dtype=[("a", "f4"), ("o", "O")])
    arr["o"][0] = _Evil()
    for value in (np.array([_Evil(), 1], dtype=object), arr):
        buf = io.BytesIO()
        joblib.dump(value, buf)
        r = analyze_pickle_bytes(buf.getvalue(), joblib=True)
        assert any(f.severity is Severity.CRITICAL for f in r.findings), r


def test_joblib_stream_without_joblib_mode_is_not_clean() -> None:
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    buf = io.BytesIO()
    joblib.dump({"a": np.arange(100.0)}, buf)
    r = analyze_pickle_bytes(buf.getvalue(), joblib=False)
    assert r.unverified is not None or r.findings


# --- contract details --------------------------------------------------------------------------------------


def test_findings_carry_location_and_offset() -> None:
    data = pickle.dumps(_Evil(), protocol=4)
    loc = Location("models/x.pt", member="archive/data.pkl")
    r = analyze_pickle(io.BytesIO(data), location=loc, limits=Limits(), allow=AllowList.default())
    (f,) = r.findings
    assert f.location.path == "models/x.pt"
    assert f.location.member == "archive/data.pkl"
    assert f.location.offset is not None
    assert 0 < f.location.offset < len(data)
    assert r.callables == ("posix.system",) or r.callables == ("os.system",) or "system" in r.callables[0]
    assert r.pickles == 1
    assert r.consumed == len(data)


def test_determinism() -> None:
    data = (
        pickle.dumps([_Evil(), {"k": _Evil()}], protocol=2) + pickle.dumps(_Evil(), protocol=5) + b"\xffjunk"
    )
    outs = []
    for _ in range(3):
        r = analyze_pickle_bytes(data)
        outs.append(
            json.dumps([[f.to_json() for f in r.findings], r.unverified, r.callables], sort_keys=True)
        )
    assert outs[0] == outs[1] == outs[2]


def test_repeated_findings_are_deduplicated_with_count() -> None:
    r = analyze_pickle_bytes(pickle.dumps([_Evil() for _ in range(50)], protocol=4))
    (f,) = r.findings
    assert f.evidence.get("occurrences") is None  # memoised: one import
    r = analyze_pickle_bytes(b"".join(pickle.dumps(_Evil(), protocol=0) for _ in range(3)))
    (f,) = r.findings
    assert f.evidence["occurrences"] == 3


def test_empty_stream_is_unverified() -> None:
    assert analyze_pickle_bytes(b"").unverified is not None


def test_not_a_pickle_is_unverified() -> None:
    r = analyze_pickle_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    assert r.unverified is not None
    assert r.findings


def test_trailing_non_pickle_bytes_are_info() -> None:
    r = analyze_pickle_bytes(pickle.dumps({"a": 1}, protocol=4) + b"\xff\xfe\xfd")
    assert r.unverified is None
    assert [f.severity for f in r.findings] == [Severity.INFO]


def test_stacked_false_reads_one_pickle() -> None:
    one = pickle.dumps([1], protocol=4)
    r = analyze_pickle_bytes(one + pickle.dumps(_Evil(), protocol=4), stacked=False)
    assert r.pickles == 1
    assert r.consumed == len(one)
    assert r.findings == ()


# --- limits ------------------------------------------------------------------------------------------------


def _long_pickle(n: int) -> bytes:
    return b"\x80\x04]" + (b"(" + b"K\x01" * 1000 + b"e") * (n // 1000) + b"."


def test_opcode_limit_is_named() -> None:
    r = analyze_pickle_bytes(_long_pickle(200_000), limits=Limits(max_opcodes=50_000))
    assert r.unverified is not None
    assert "max_opcodes" in r.unverified


def test_time_limit_is_named() -> None:
    r = analyze_pickle_bytes(_long_pickle(200_000), limits=Limits(max_seconds=0.0))
    assert r.unverified is not None
    assert "max_seconds" in r.unverified


def test_byte_limit_is_named() -> None:
    r = analyze_pickle_bytes(_long_pickle(20_000), limits=Limits(max_file_bytes=1000))
    assert r.unverified is not None
    assert "max_file_bytes" in r.unverified


def test_depth_limit_is_named() -> None:
    inner = pickle.dumps([1], protocol=4)
    for _ in range(4):
        inner = b"\x80\x04\x8c\x06pickle\x8c\x05loads\x93C" + bytes([len(inner)]) + inner + b"\x85R."
    r = analyze_pickle_bytes(inner, limits=Limits(max_depth=1))
    assert r.unverified is not None
    assert "max_depth" in r.unverified


class _ZeroStream(io.RawIOBase):
    """``head``, then ``size`` bytes of ``fill``, then ``tail``, generated on demand (never held)."""

    def __init__(self, head: bytes, size: int, tail: bytes, fill: int = 0) -> None:
        self.parts = [head, None, tail]
        self.size = size
        self.fill = fill
        self.pos = 0
        self.total = len(head) + size + len(tail)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        head, _, tail = self.parts
        assert isinstance(head, bytes)
        assert isinstance(tail, bytes)
        view = memoryview(b)
        n = 0
        while n < len(view) and self.pos < self.total:
            if self.pos < len(head):
                chunk = head[self.pos : self.pos + len(view) - n]
            elif self.pos < len(head) + self.size:
                k = min(len(view) - n, len(head) + self.size - self.pos)
                chunk = bytes([self.fill]) * k
            else:
                off = self.pos - len(head) - self.size
                chunk = tail[off : off + len(view) - n]
            view[n : n + len(chunk)] = chunk
            n += len(chunk)
            self.pos += len(chunk)
        return n


@pytest.mark.parametrize("fill", [0x00, 0x80])
def test_200mb_binbytes_payload_is_skipped_with_bounded_memory(fill: int) -> None:
    size = 200 * 1024 * 1024
    head = b"\x80\x04\x8e" + struct.pack("<Q", size)
    stream = io.BufferedReader(_ZeroStream(head, size, b"\x85."), buffer_size=1 << 16)
    tracemalloc.start()
    try:
        r = analyze_pickle(stream, location=Location("big.pkl"), limits=Limits(), allow=AllowList.default())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _clean(r)
    assert r.consumed == len(head) + size + 2
    assert peak < 64 * 1024 * 1024


def test_200mb_payload_passed_to_loader_is_unverified() -> None:
    size = 200 * 1024 * 1024
    head = b"\x80\x04\x8c\x06pickle\x8c\x05loads\x93\x8e" + struct.pack("<Q", size)
    stream = io.BufferedReader(_ZeroStream(head, size, b"\x85R.", fill=0x80))
    r = analyze_pickle(stream, location=Location("big.pkl"), limits=Limits(), allow=AllowList.default())
    assert r.unverified is not None
    assert "too large" in r.unverified
    assert any(f.severity is Severity.CRITICAL for f in r.findings)


class _Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, to exercise every buffer-refill path."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data = data
        self.pos = 0
        self.step = step

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        chunk = self.data[self.pos : self.pos + min(self.step, len(b))]
        memoryview(b)[: len(chunk)] = chunk
        self.pos += len(chunk)
        return len(chunk)

    def read(self, size: int = -1) -> bytes:
        size = self.step if size < 0 else min(size, self.step)
        chunk = self.data[self.pos : self.pos + size]
        self.pos += len(chunk)
        return chunk


def test_results_do_not_depend_on_read_sizes_or_chunk_boundaries() -> None:
    big = pickle.dumps([float(i) for i in range(150_000)] + ["s" * 300] * 10, protocol=4)
    cases = [
        big + pickle.dumps(_Evil(), protocol=4),
        pickle.dumps(_Evil(), protocol=0) + b"junk" + pickle.dumps(_Evil(), protocol=2),
        big[: len(big) // 2],
    ]
    for data in cases:
        ref = analyze_pickle_bytes(data)
        for step in (1, 7, 4096):
            got = analyze_pickle(
                _Trickle(data, step),  # type: ignore[arg-type]
                location=Location("<bytes>"),
                limits=Limits(),
                allow=AllowList.default(),
            )
            assert got == ref, step


def test_memo_growth_is_bounded() -> None:
    """A stream that only grows the memo stops at the memo bound instead of exhausting memory."""
    data = b"\x80\x04N" + b"\x94" * 3_000_000 + b"."
    r = analyze_pickle_bytes(data)
    assert r.unverified is not None
    assert "max_memo" in r.unverified


def test_string_payload_held_is_bounded() -> None:
    """Many memoised strings: the bytes of strings held as values are bounded."""
    s = b"\x8c\xff" + b"a" * 255 + b"\x94" + b"0"
    data = b"\x80\x04N" + s * 600_000 + b"."
    r = analyze_pickle_bytes(data)
    assert r.unverified is not None
    assert "max_memory" in r.unverified


def test_deeply_nested_values_do_not_crash() -> None:
    """Deep tuples in evidence and deep functools.partial chains are bounded, never a crash."""
    deep_state = b"\x80\x04\x8c\x05numpy\x8c\x04prod\x93N" + b"\x85" * 200_000 + b"b."
    r = analyze_pickle_bytes(deep_state)
    assert any(f.rule_id == "LW-MODEL-009" for f in r.findings)
    partial = b"\x8c\tfunctools\x8c\x07partial\x93"
    chain = b"\x8c\x02os\x8c\x06system\x93"
    for _ in range(5000):
        chain = partial + chain + b"\x85R"
    r = analyze_pickle_bytes(b"\x80\x04" + chain + b")R.")
    assert "internal error" not in (r.unverified or "")
    assert any(f.severity is Severity.CRITICAL for f in r.findings)


def test_distinct_findings_are_capped() -> None:
    data = b"\x80\x04" + b"".join(b"cmod%d\nfn\n0" % i for i in range(3000)) + b"N."
    r = analyze_pickle_bytes(data)
    assert len(r.findings) <= 1001
    assert any(f.rule_id == "LW-MODEL-015" for f in r.findings)


def test_many_tiny_stacked_pickles_hit_the_opcode_bound() -> None:
    r = analyze_pickle_bytes(b"N." * 100_000, limits=Limits(max_opcodes=10_000))
    assert r.unverified is not None
    assert "max_opcodes" in r.unverified
    assert r.pickles < 100_000


@pytest.mark.slow
def test_every_sklearn_estimator_is_clean() -> None:
    """Every estimator scikit-learn lists, fitted on tiny data, pickled (protocol 5) and joblib-dumped."""
    pytest.importorskip("sklearn")
    joblib = pytest.importorskip("joblib")
    import warnings

    from sklearn.datasets import make_classification
    from sklearn.utils import all_estimators

    x, y = make_classification(40, 5, random_state=0)
    flagged: dict[str, list[str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, cls in all_estimators():
            try:
                est = cls()
                try:
                    est.fit(abs(x), y)
                except Exception:
                    est.fit(abs(x))
            except Exception:
                continue
            streams = []
            try:
                streams.append((pickle.dumps(est, protocol=5), False))
            except Exception:
                continue
            buf = io.BytesIO()
            joblib.dump(est, buf)
            streams.append((buf.getvalue(), True))
            for data, jl in streams:
                r = analyze_pickle_bytes(data, joblib=jl)
                if r.findings or r.unverified:
                    flagged[name] = [str(f.evidence.get("subject")) for f in r.findings] + [str(r.unverified)]
    assert flagged == {}


def test_user_class_called_with_arguments_is_high() -> None:
    """A user class rebuilt by NEWOBJ + BUILD is MEDIUM; the same class called with pickle data is HIGH."""
    called = b"\x80\x04\x8c\x05mypkg\x8c\x06Loader\x93\x8c\x04/etc\x85R."
    r = analyze_pickle_bytes(called)
    assert max(f.severity for f in r.findings) is Severity.HIGH
    built = b"\x80\x04\x8c\x05mypkg\x8c\x06Loader\x93)\x81}b."
    r = analyze_pickle_bytes(built)
    assert max(f.severity for f in r.findings) is Severity.MEDIUM
