"""PyTorch distributed checkpoints (torch.distributed.checkpoint): a ``.metadata`` pickle of torch's dataclasses and
``.distcp`` files of torch.save archives laid end to end.

The benign checkpoints are written by ``torch.distributed.checkpoint.save`` itself (one process, no process group);
the attacks change what its reader does: a storage entry that leaves the folder, a byte item (``torch.load(...,
weights_only=False)``) that runs code, an archive added to a data file, a slice the metadata points into the middle
of another archive's tensor bytes, a dangerous callable in the metadata.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_allowlist_patterns import _g, _s  # GLOBAL of a dotted name, BINUNICODE

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Finding, Severity, TargetResult, Verdict

torch = pytest.importorskip("torch")
dcp = pytest.importorskip("torch.distributed.checkpoint")


class _Evil:
    """Pickled as os.system("true"): what a byte item runs under torch.load(weights_only=False)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("true",))


def _save(state: dict[str, Any], folder: Path, **writer: Any) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is disabled ... assuming a single process"
        if writer:
            dcp.save(state, storage_writer=dcp.FileSystemWriter(str(folder), **writer))
        else:
            dcp.save(state, checkpoint_id=str(folder))
    return folder


def _training_state() -> dict[str, Any]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 8)).sum().backward()
    opt.step()
    return {
        "model": model.state_dict(),
        "optim": opt.state_dict(),
        "extra": {"epoch": 3, "run": "baseline", "tags": [1, 2, "x"], "lr": 0.5, "none": None},
        "step": 7,
    }


def _scan(*paths: Path) -> dict[str, TargetResult]:
    return {os.path.basename(t.path): t for t in scan_paths([str(p) for p in paths], jobs=1).targets}


def _assert_clean(results: dict[str, TargetResult]) -> None:
    for name, t in results.items():
        assert t.verdict is Verdict.CLEAN, (name, t.reason, [(f.rule_id, f.message) for f in t.findings])


def _rules(t: TargetResult) -> set[str]:
    return {f.rule_id for f in t.findings if f.severity >= Severity.HIGH}


def _system(f: Finding) -> bool:
    """The finding reports os.system (pickled as posix.system on POSIX)."""
    return (
        f.severity is Severity.CRITICAL
        and f.evidence.get("canonical", f.evidence.get("subject")) == "os.system"
    )


def _metadata(folder: Path) -> Any:
    with open(folder / ".metadata", "rb") as f:
        return pickle.load(f)  # our own checkpoint, written by the test


def _write_metadata(folder: Path, md: Any) -> None:
    with open(folder / ".metadata", "wb") as f:
        pickle.dump(md, f)


def _evil_zip() -> bytes:
    buf = io.BytesIO()
    torch.save({"x": _Evil()}, buf)
    return buf.getvalue()


# --- benign checkpoints --------------------------------------------------------------------------------------


def test_model_and_optimizer_checkpoint_is_clean(tmp_path: Path) -> None:
    folder = _save(_training_state(), tmp_path / "ckpt")
    results = _scan(folder)
    assert set(results) == {".metadata", "__0_0.distcp"}
    _assert_clean(results)


def test_many_tensors_dtypes_and_values_are_clean(tmp_path: Path) -> None:
    state = {
        "w": {f"layer{i}": torch.randn(16, 4 + i) for i in range(12)},
        "big": torch.arange(600_000, dtype=torch.float32),  # over 1 MiB: the data file is read in place
        "half": torch.ones(3, dtype=torch.bfloat16),
        "ids": torch.arange(5, dtype=torch.int64),
        "mask": torch.tensor([True, False]),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "meta": {"name": "run-1", "nested": {"a": [1, 2.0, "b", None], "t": (1, 2)}, "flag": True},
    }
    folder = _save(state, tmp_path / "ckpt")
    _assert_clean(_scan(folder))
    # the files one by one, and the metadata without its data file next to it
    _assert_clean(_scan(folder / "__0_0.distcp"))
    _assert_clean(_scan(folder / ".metadata"))
    (folder / "__0_0.distcp").unlink()
    _assert_clean(_scan(folder / ".metadata"))


def test_one_file_per_item_and_threads_are_clean(tmp_path: Path) -> None:
    folder = _save(_training_state(), tmp_path / "ckpt", single_file_per_rank=False, thread_count=2)
    results = _scan(folder)
    assert len([n for n in results if n.endswith(".distcp")]) > 1
    _assert_clean(results)


def test_metadata_pickle_reports_every_storage_entry() -> None:
    buf = io.BytesIO()
    md = dcp.metadata.Metadata(state_dict_metadata={})
    info = dcp.filesystem._StorageInfo
    md.storage_data = {
        dcp.metadata.MetadataIndex(f"k{i}"): info("__0_0.distcp", i * 100, 100) for i in range(5)
    }
    pickle.dump(md, buf)
    result = analyze_pickle_bytes(buf.getvalue())
    assert result.findings == () and result.unverified is None
    assert sorted(result.storage_infos) == [("__0_0.distcp", i * 100, 100, ()) for i in range(5)]


# --- the metadata ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative_path",
    [
        "../outside.distcp",
        "sub/../../outside.distcp",
        "/etc/passwd",
        "C:evil.distcp",
        "..\\..\\outside.distcp",
        "a\x00.distcp",
    ],
)
def test_relative_path_leaving_the_folder_is_high(tmp_path: Path, relative_path: str) -> None:
    folder = _save(_training_state(), tmp_path / "ckpt")
    md = _metadata(folder)
    key = next(iter(md.storage_data))
    md.storage_data[key] = dataclasses.replace(md.storage_data[key], relative_path=relative_path)
    _write_metadata(folder, md)
    t = _scan(folder)[".metadata"]
    assert "LW-MODEL-048" in _rules(t), t.findings


def test_relative_path_through_a_link_out_of_the_folder_is_high(tmp_path: Path) -> None:
    folder = _save(_training_state(), tmp_path / "ckpt")
    (tmp_path / "elsewhere.bin").write_bytes(_evil_zip())
    (folder / "linked.distcp").symlink_to(tmp_path / "elsewhere.bin")
    md = _metadata(folder)
    key = next(iter(md.storage_data))
    md.storage_data[key] = dataclasses.replace(md.storage_data[key], relative_path="linked.distcp")
    _write_metadata(folder, md)
    t = _scan(folder / ".metadata")[".metadata"]
    assert "LW-MODEL-048" in _rules(t), t.findings


def test_storage_entry_of_another_type_is_followed(tmp_path: Path) -> None:
    """The reader reads the attributes of whatever storage_data holds: a SimpleNamespace does as well."""
    folder = _save(_training_state(), tmp_path / "ckpt")
    md = _metadata(folder)
    key = next(iter(md.storage_data))
    md.storage_data[key] = SimpleNamespace(relative_path="../x.distcp", offset=0, length=10)
    _write_metadata(folder, md)
    t = _scan(folder / ".metadata")[".metadata"]
    assert "LW-MODEL-048" in _rules(t), t.findings


def test_other_objects_with_a_relative_path_are_no_storage_entries(tmp_path: Path) -> None:
    """Without an offset and a length the reader fails on an entry: a dataset record's relative_path is data."""
    items = [SimpleNamespace(relative_path="../images/a.png", label=1), {"relative_path": "/data/b.png"}]
    (tmp_path / "index.pkl").write_bytes(pickle.dumps(items, protocol=4))
    _assert_clean(_scan(tmp_path / "index.pkl"))
    result = analyze_pickle_bytes(pickle.dumps(items, protocol=4))
    assert result.storage_infos == ()


def _info(*states: bytes) -> bytes:
    """A _StorageInfo rebuilt by NEWOBJ, then one BUILD per state (a dict literal)."""
    body = b"\x80\x02" + _g("torch.distributed.checkpoint.filesystem._StorageInfo") + b")\x81"
    for state in states:
        body += b"}(" + state + b"ub"
    return body + b"."


_PATH = _s("relative_path") + _s("../x.distcp")
_OFF = _s("offset") + b"K\x00" + _s("length") + b"K\x0a"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (_info(_PATH + _OFF), ("../x.distcp", 0, 10, ())),
        # the attributes set by two BUILDs on the same object: the reader sees both
        (_info(_PATH, _OFF), ("../x.distcp", 0, 10, ())),
        # a later BUILD moves the entry: the last value counts
        (_info(_s("relative_path") + _s("a.distcp") + _OFF, _PATH), ("../x.distcp", 0, 10, ())),
        # an offset that is not a constant integer
        (_info(_PATH + _s("offset") + _s("0") + _s("length") + b"K\x0a"), ("../x.distcp", None, 10, ())),
        (
            _info(_PATH + _OFF + _s("transform_descriptors") + b"]" + _s("zstd") + b"a"),
            ("../x.distcp", 0, 10, ("zstd",)),
        ),
    ],
)
def test_storage_entries_follow_what_the_unpickler_sets(payload: bytes, expected: tuple[Any, ...]) -> None:
    assert analyze_pickle_bytes(payload).storage_infos == (expected,)


def test_dangerous_callable_in_the_metadata_is_reported(tmp_path: Path) -> None:
    folder = _save(_training_state(), tmp_path / "ckpt")
    md = _metadata(folder)
    md.planner_data = {"hook": _Evil()}
    _write_metadata(folder, md)
    t = _scan(folder)[".metadata"]
    assert any(_system(f) for f in t.findings), t.findings


def test_storage_entry_read_through_transforms_is_unverified(tmp_path: Path) -> None:
    folder = _save(_training_state(), tmp_path / "ckpt")
    md = _metadata(folder)
    key = next(iter(md.storage_data))
    md.storage_data[key] = dataclasses.replace(md.storage_data[key], transform_descriptors=["zstd"])
    _write_metadata(folder, md)
    t = _scan(folder / ".metadata")[".metadata"]
    assert t.verdict is Verdict.UNVERIFIED and "transform" in (t.reason or "")


def test_slice_inside_tensor_bytes_is_analysed(tmp_path: Path) -> None:
    """A malicious zip kept as a tensor's bytes is inert to the data file's own archives; a byte item whose
    metadata points at it is torch.load()ed with weights_only=False."""
    payload = _evil_zip()
    # after other bytes: a record that starts with a format's magic is analysed as that format already
    carrier = bytearray(b"\x00" * 64 + payload)
    state = {"carrier": torch.frombuffer(carrier, dtype=torch.uint8), "note": "hello"}
    folder = _save(state, tmp_path / "ckpt")
    _assert_clean(_scan(folder))  # as torch wrote it
    data = (folder / "__0_0.distcp").read_bytes()
    at = data.index(payload)
    md = _metadata(folder)
    byte_key = next(k for k in md.storage_data if k.fqn == "note")
    md.storage_data[byte_key] = dataclasses.replace(md.storage_data[byte_key], offset=at, length=len(payload))
    _write_metadata(folder, md)
    results = _scan(folder)
    assert results["__0_0.distcp"].verdict is Verdict.CLEAN  # the walk sees tensor bytes
    t = results[".metadata"]
    assert any(_system(f) for f in t.findings), t.findings
    assert any(f.location.member and f.location.member.startswith("__0_0.distcp[") for f in t.findings)


# --- the data files --------------------------------------------------------------------------------------------


def test_byte_item_that_runs_code_is_reported(tmp_path: Path) -> None:
    """torch's own writer stores a non-tensor value as a torch.save archive of it."""
    folder = _save({"w": torch.ones(2), "cfg": {"hook": _Evil(), "n": 1}}, tmp_path / "ckpt")
    results = _scan(folder)
    for name in (".metadata", "__0_0.distcp"):
        assert any(_system(f) for f in results[name].findings), (name, results[name])


def test_byte_item_as_a_plain_pickle_is_reported(tmp_path: Path) -> None:
    """A byte item that is a pickle, not an archive (torch.load's legacy path unpickles it): the data file is no
    longer a sequence of archives (unverified), and the metadata's slice is analysed as a pickle."""
    folder = _save({"w": torch.ones(2), "note": "x"}, tmp_path / "ckpt")
    md = _metadata(folder)
    data = (folder / "__0_0.distcp").read_bytes()
    evil = pickle.dumps(_Evil(), protocol=2)
    key = next(k for k in md.storage_data if k.fqn == "note")
    md.storage_data[key] = dataclasses.replace(md.storage_data[key], offset=len(data), length=len(evil))
    (folder / "__0_0.distcp").write_bytes(data + evil)
    _write_metadata(folder, md)
    results = _scan(folder)
    assert results["__0_0.distcp"].verdict is not Verdict.CLEAN
    assert any(_system(f) for f in results[".metadata"].findings), results[".metadata"]


def _data_file_cut_at(tmp_path: Path, nth: int) -> tuple[Path, bytes, int]:
    """A saved checkpoint's data file, its bytes, and the offset of its ``nth`` storage item."""
    folder = _save(_training_state(), tmp_path / "ckpt")
    path = folder / "__0_0.distcp"
    cut = sorted(i.offset for i in _metadata(folder).storage_data.values())[nth]
    return path, path.read_bytes(), cut


@pytest.mark.parametrize("where", ["end", "middle", "start"])
def test_archive_added_to_a_data_file_is_reported(tmp_path: Path, where: str) -> None:
    path, data, cut = _data_file_cut_at(tmp_path, 3)
    evil = _evil_zip()
    out = {"end": data + evil, "middle": data[:cut] + evil + data[cut:], "start": evil + data}[where]
    path.write_bytes(out)
    t = _scan(path)["__0_0.distcp"]
    assert any(_system(f) for f in t.findings), (t.reason, t.findings)


@pytest.mark.parametrize("junk", [b"\x00" * 7, b"PK\x03\x04garbage", b"cos\nsystem\n(S'true'\ntR."])
def test_data_file_that_is_no_sequence_of_archives_is_not_clean(tmp_path: Path, junk: bytes) -> None:
    path, data, cut = _data_file_cut_at(tmp_path, 2)
    path.write_bytes(data[:cut] + junk + data[cut:])
    t = _scan(path)["__0_0.distcp"]
    assert t.verdict is not Verdict.CLEAN, t


def test_large_data_file_with_an_appended_archive_is_reported(tmp_path: Path) -> None:
    folder = _save({"big": torch.zeros(700_000), "n": 1}, tmp_path / "ckpt")
    path = folder / "__0_0.distcp"
    with open(path, "ab") as f:
        f.write(_evil_zip())
    assert path.stat().st_size > 1 << 20
    t = _scan(path)["__0_0.distcp"]
    assert any(_system(f) for f in t.findings), (t.reason, t.findings)


@pytest.mark.parametrize(
    "name",
    [
        "torch.distributed.checkpoint.filesystem._StorageInfo",
        "torch.distributed.checkpoint.metadata.Metadata",
        "torch.distributed.checkpoint.metadata.TensorProperties",
    ],
)
def test_metadata_dataclasses_are_rebuilt_never_called(name: str) -> None:
    """pickle rebuilds them by NEWOBJ + BUILD; a call runs the constructor on pickle data and stays a finding."""
    result = analyze_pickle_bytes(b"\x80\x02" + _g(name) + b"(" + _s("a") + b"K\x00K\x01tR.")
    assert any(f.rule_id == "LW-MODEL-005" and f.severity is Severity.HIGH for f in result.findings)
    rebuilt = analyze_pickle_bytes(b"\x80\x02" + _g(name) + b")\x81}(" + _s("fqn") + _s("a") + b"ub.")
    assert rebuilt.findings == () and rebuilt.unverified is None


def test_a_blob_shorter_than_its_declared_size_is_no_archive_sequence() -> None:
    # a member whose header claims more bytes than it holds (found by bench/fuzz_models.py): no crash, no sequence
    import dataclasses

    from loopwarden.checks.interface import Limits
    from loopwarden.checks.models._base import ScanContext, bytes_blob
    from loopwarden.checks.models.dcp import archive_sequence
    from loopwarden.checks.models.scanner import default_allow
    from loopwarden.domain import Location

    data = b"PK\x03\x04" + b"\x00" * 60
    blob = dataclasses.replace(bytes_blob("x.distcp", Location("x.distcp"), data, 0), size=len(data) + 40)
    assert archive_sequence(blob, ScanContext("x.distcp", Limits(), default_allow())) is None


def _as_torch_1_13(md: Any) -> bytes:
    """The metadata pickled with the names torch 1.13 wrote (the package was ``torch.distributed._shard.checkpoint``
    and TensorProperties came from ``_shard.sharded_tensor``), protocol 2 so the names are GLOBAL lines."""
    data = pickle.dumps(md, protocol=2)
    new, old = b"ctorch.distributed.checkpoint.", b"ctorch.distributed._shard.checkpoint."
    assert new + b"metadata\n" in data and new + b"filesystem\n_StorageInfo\n" in data
    data = data.replace(
        new + b"metadata\nTensorProperties\n",
        b"ctorch.distributed._shard.sharded_tensor.metadata\nTensorProperties\n",
    )
    data = data.replace(
        new + b"metadata\n_MEM_FORMAT_ENCODING\n",
        b"ctorch.distributed._shard.sharded_tensor.metadata\nMEM_FORMAT_ENCODING\n",
    )
    data = data.replace(new, old)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the old package name is deprecated
        assert pickle.loads(data).storage_data  # our own bytes: the old names still load in current torch
    return data


def test_checkpoint_metadata_with_torch_1_13_names_is_clean(tmp_path: Path) -> None:
    folder = _save(_training_state(), tmp_path / "ckpt")
    (folder / ".metadata").write_bytes(_as_torch_1_13(_metadata(folder)))
    _assert_clean(_scan(folder))


def test_torch_1_13_names_are_judged_like_the_current_ones(tmp_path: Path) -> None:
    folder = _save(_training_state(), tmp_path / "ckpt")
    md = _metadata(folder)
    key = next(iter(md.storage_data))
    md.storage_data[key] = dataclasses.replace(md.storage_data[key], relative_path="../../outside.distcp")
    (folder / ".metadata").write_bytes(_as_torch_1_13(md))
    assert "LW-MODEL-048" in _rules(_scan(folder)[".metadata"])
    for name in (
        "torch.distributed._shard.checkpoint.metadata.Metadata",
        "torch.distributed._shard.checkpoint.filesystem._StorageInfo",
    ):
        called = analyze_pickle_bytes(b"\x80\x02" + _g(name) + b"(" + _s("a") + b"K\x00K\x01tR.")
        assert any(f.rule_id == "LW-MODEL-005" and f.severity is Severity.HIGH for f in called.findings), name
