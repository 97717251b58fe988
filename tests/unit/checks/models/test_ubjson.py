"""XGBoost's UBJSON models: clean when the whole file is one well-formed UBJSON value with XGBoost's top-level
keys, unverified otherwise (truncated, trailing bytes, another document, bad markers, bounds)."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.models.detect import Format, sniff
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Verdict

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "xgboost" / "classifier.ubj"


def _int(n: int) -> bytes:
    return b"L" + struct.pack(">q", n) if n > 127 else b"i" + struct.pack(">b", n)


def _key(k: str) -> bytes:
    raw = k.encode()
    return _int(len(raw)) + raw


def enc(v: Any) -> bytes:
    """UBJSON as XGBoost writes it: counted typed arrays of float32 for number lists, objects with end markers."""
    if v is None:
        return b"Z"
    if v is True or v is False:
        return b"T" if v else b"F"
    if isinstance(v, int):
        return b"L" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"d" + struct.pack(">f", v)
    if isinstance(v, str):
        raw = v.encode()
        return b"S" + _int(len(raw)) + raw
    if isinstance(v, list) and v and all(isinstance(x, float) for x in v):
        return b"[$d#" + _int(len(v)) + b"".join(struct.pack(">f", x) for x in v)
    if isinstance(v, list):
        return b"[" + b"".join(enc(x) for x in v) + b"]"
    if isinstance(v, dict):
        return b"{" + b"".join(_key(k) + enc(x) for k, x in v.items()) + b"}"
    raise TypeError(v)


def _model(**extra: Any) -> dict[str, Any]:
    tree = {
        "base_weights": [0.1, -0.2, 0.3],
        "left_children": [1, -1, -1],
        "split_conditions": [0.5, 0.0, 0.0],
    }
    return {
        "learner": {
            "attributes": {"scikit_learn": '{"_estimator_type": "classifier"}'},
            "feature_names": [],
            "gradient_booster": {"model": {"trees": [tree, tree], "tree_info": [0, 0]}, "name": "gbtree"},
            "learner_model_param": {"base_score": "5E-1", "num_class": "0"},
            "objective": {"name": "binary:logistic"},
        },
        "version": [3, 2, 0],
        **extra,
    }


def _scan(tmp_path: Path, data: bytes, name: str = "model.ubj") -> Any:
    p = tmp_path / name
    p.write_bytes(data)
    (res,) = scan_paths([str(p)], jobs=1).targets
    return res


def test_real_xgboost_model_is_recognised_and_clean(tmp_path: Path) -> None:
    data = FIXTURE.read_bytes()
    assert sniff(data[:4096], len(data), lambda: io.BytesIO(data)) is Format.UBJSON
    res = _scan(tmp_path, data)
    assert res.verdict is Verdict.CLEAN, res


@pytest.mark.parametrize("name", ["model.ubj", "xgb.bin", "booster.json", "model"])
def test_xgboost_shaped_documents_are_clean_under_any_name(tmp_path: Path, name: str) -> None:
    res = _scan(tmp_path, enc(_model()), name)
    assert res.verdict is Verdict.CLEAN, res


def test_counted_containers_and_every_scalar_type_are_read(tmp_path: Path) -> None:
    counted_obj = b"{#" + _int(2) + _key("a") + enc(1) + _key("b") + enc("x")
    typed_ints = b"[$l#" + _int(3) + struct.pack(">iii", 1, 2, 3)
    scalars = (
        b"["
        + b"i\x01U\x02I\x00\x03l\x00\x00\x00\x04D"
        + struct.pack(">d", 1.5)
        + b"CaNZTFH"
        + _int(2)
        + b"12]"
    )
    doc = b"{" + _key("learner") + counted_obj + _key("version") + typed_ints + _key("x") + scalars + b"}"
    assert _scan(tmp_path, doc).verdict is Verdict.CLEAN


_DAMAGED = [
    (enc(_model())[:-1], "runs past the end"),
    (enc(_model())[:40], "runs past the end"),
    (enc(_model()) + b"\x00", "after the UBJSON value"),
    (enc(_model()) + pickle.dumps([1]), "after the UBJSON value"),
    (enc({"learner": {}, "not_version": 1}), "XGBoost"),
    (enc({"hello": "world"}), "XGBoost"),
    (b"{" + _key("learner") + b"Q" + b"}", "not a UBJSON type"),
    (b"{" + _key("learner") + b"[$Z#L" + struct.pack(">q", 1 << 40) + b"}", "values"),
    (b"{" + _key("learner") + b"S" + b"L" + struct.pack(">q", -5) + b"}", "negative length"),
    (b"{" + _key("learner") + b"[$d" + _int(1) + b"}", "without a count"),
    (b"{" + _key("a") + b"[" * 300 + b"]" * 300 + b"}", "nested deeper"),
]


@pytest.mark.parametrize(("data", "why"), _DAMAGED, ids=[f"{i}-{why}" for i, (_, why) in enumerate(_DAMAGED)])
def test_damaged_or_foreign_documents_are_unverified(tmp_path: Path, data: bytes, why: str) -> None:
    res = _scan(tmp_path, data)
    assert res.verdict is Verdict.UNVERIFIED, res
    assert why in (res.reason or ""), res.reason


@pytest.mark.parametrize(
    "data",
    [b'{"learner": {}}', b'{\n  "version": [3]}', b"{}", b"{L\xff\xff", b"{i\x05ab\xffcd"],
)
def test_json_text_and_odd_heads_are_not_ubjson(data: bytes) -> None:
    assert sniff(data, len(data), lambda: io.BytesIO(data)) is not Format.UBJSON
