"""Round 10 of the internal red team: ONNX, Keras/HDF5, GGUF, safetensors, DCP and archives.

Each case is built as bytes here and scanned. Where cheap, the real loader runs on the case in a subprocess, with a
harmless effect only (a marker file in a temporary folder): Keras 3.15 with the torch backend.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.domain import Severity, Verdict

# ------------------------------------------- tar: a link that shows other bytes than those judged under its name

# A link in a tar gives the bytes of another member a name a loader opens (config.json): the analyses that depend
# on the name judged the target under the link's name too, but the target was looked up by its exact name, last
# member of that name first. Extracted (tarfile, as keras.utils' extract_archive does with filter="data"), a link
# reaches its target as the file system does: "./a.json" is "a.json", "d/a.json" goes through a directory link
# "d", and a hard link keeps the bytes on disk when it is made, which a later symbolic link of the same name
# replaces without touching the hard link. So config.json held a Keras config whose TorchModuleWrapper unpickles
# its module, judged nowhere under that name: only the link itself was reported (low). Without any link, a regular
# member named "config.json/" is extracted as config.json too, and was clean. Checked with Keras 3.15.1:
# extract_archive, then load_model(folder, safe_mode=False), and the pickle ran.


class _Touch:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (self.path, "w"))  # a harmless effect: an empty marker file


def _not_a_model_config(marker: str) -> bytes:
    """A config.json that Keras builds value by value (no top-level class_name): only its name makes it one."""
    payload = base64.b64encode(pickle.dumps(_Touch(marker), protocol=2)).decode()
    wrapper = {"module": "keras.layers", "class_name": "TorchModuleWrapper", "config": {"module": payload}}
    return json.dumps({"layers": [wrapper]}).encode()


def _tar(entries: list[tuple[str, str, bytes | str]]) -> bytes:
    """A tar of (kind, name, data or link target) entries in order: kind is "file", "hard" or "sym"."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for kind, name, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(value, bytes)
                info.size = len(value)
                tf.addfile(info, io.BytesIO(value))
            else:
                assert isinstance(value, str)
                info.type = tarfile.LNKTYPE if kind == "hard" else tarfile.SYMTYPE
                info.linkname = value
                tf.addfile(info)
    return buf.getvalue()


_KERAS_FILES: list[tuple[str, str, bytes | str]] = [
    ("file", "metadata.json", json.dumps({"keras_version": "3.15.1", "date_saved": "2026-01-01"}).encode()),
    ("file", "model.weights.h5", b""),
]

_BENIGN = json.dumps(
    {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": []}}
).encode()
_EXTRACTION_CASES = {
    # the target spelled differently from the member it names
    "dot-slash-member": lambda cfg: [("file", "./a.json", cfg), ("hard", "config.json", "a.json")],
    "dot-dot-inside-target": lambda cfg: [
        ("file", "sub/a.json", cfg),
        ("file", "sub/x/keep", b""),
        ("hard", "config.json", "sub/x/../a.json"),
    ],
    # a later symbolic link of the target's name replaces it on disk; the hard link keeps the earlier bytes
    "target-replaced-by-a-link": lambda cfg: [
        ("file", "a.json", cfg),
        ("hard", "config.json", "a.json"),
        ("sym", "a.json", "metadata.json"),
    ],
    # the target reached through a directory link of the archive
    "through-a-directory-link": lambda cfg: [
        ("file", "real/a.json", cfg),
        ("sym", "d", "real"),
        ("hard", "config.json", "d/a.json"),
    ],
    "symlink-through-a-directory-link": lambda cfg: [
        ("file", "real/a.json", cfg),
        ("sym", "d", "real"),
        ("sym", "config.json", "d/a.json"),
    ],
    # a regular member whose name ends in a slash: tarfile extracts it as config.json (no link at all: clean)
    "trailing-slash-name": lambda cfg: [("file", "config.json/", cfg)],
    "trailing-slashes-name": lambda cfg: [("file", "config.json//", cfg)],
    # a member written through a symbolic link the archive put at its path: tarfile writes into the link's target
    "file-written-through-a-link": lambda cfg: [
        ("file", "config.json", _BENIGN),
        ("sym", "x.json", "config.json"),
        ("file", "x.json", cfg),
    ],
    "hard-link-written-through-a-link": lambda cfg: [
        ("file", "config.json", _BENIGN),
        ("file", "a.json", cfg),
        ("sym", "x.json", "config.json"),
        ("hard", "x.json", "a.json"),
    ],
}


def _need_keras_loader() -> None:
    import importlib.util

    # both are imported in the child process (Keras on the torch backend)
    if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
        pytest.skip("keras and torch are needed to run the loader")


def _extract_and_load(paths: list[str]) -> None:
    """The real loader in a child process: keras.utils' extract_archive of each archive, then load_model on the
    folder it filled (safe_mode off, as a user who trusts the file's source would)."""
    code = (
        "import sys, keras\n"
        "from keras.src.utils import file_utils\n"
        "for p in sys.argv[1:]:\n"
        "    file_utils.extract_archive(p, p + '.d')\n"
        "    try:\n"
        "        keras.saving.load_model(p + '.d', safe_mode=False)\n"
        "    except Exception:\n"
        "        pass\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    subprocess.run(
        [sys.executable, "-c", code, *paths], env=env, capture_output=True, timeout=300, check=False
    )


@pytest.mark.parametrize("case", sorted(_EXTRACTION_CASES))
def test_tar_member_judged_with_the_bytes_its_extracted_name_holds(tmp_path: Path, case: str) -> None:
    data = _tar([*_KERAS_FILES, *_EXTRACTION_CASES[case](_not_a_model_config("marker"))])
    assert_caught(scan_files(tmp_path, {"model.tar": data}), "LW-MODEL-033")


def test_tar_cases_run_the_pickle_once_extracted_by_keras(tmp_path: Path) -> None:
    """The real loader: keras.utils' extract_archive (tarfile, filter="data"), then load_model on the folder."""
    _need_keras_loader()
    for case, build in _EXTRACTION_CASES.items():
        marker = str(tmp_path / f"{case}.marker")
        (tmp_path / f"{case}.tar").write_bytes(_tar([*_KERAS_FILES, *build(_not_a_model_config(marker))]))
    paths = [str(tmp_path / f"{c}.tar") for c in _EXTRACTION_CASES]
    _extract_and_load(paths)
    assert sorted(p.name for p in tmp_path.glob("*.marker")) == sorted(
        f"{c}.marker" for c in _EXTRACTION_CASES
    )


def test_tar_links_to_a_benign_config_report_only_the_links(tmp_path: Path) -> None:
    cases = {case: build(_BENIGN) for case, build in _EXTRACTION_CASES.items()}
    for case, entries in cases.items():
        res = scan_files(tmp_path / case, {"model.tar": _tar([*_KERAS_FILES, *entries])})
        assert all(f.severity <= Severity.LOW for f in res[0].findings), (case, res[0].findings)
        assert {f.rule_id for f in res[0].findings} <= {"LW-MODEL-028"}, (case, res[0].findings)


# ------------------------------------------ zip: a member extracted under another name than the one it bears

# zipfile extracts a member to its name without empty, "." and ".." parts: "config.json/." (no directory: the name
# does not end in a slash) is written as config.json, which keras.saving.load_model reads from the folder that
# keras.utils' extract_archive filled. Only the name as it reads was given to the name-dependent analyses: clean.
# Checked with Keras 3.15.1: the pickle in the TorchModuleWrapper ran.

_ZIP_NAMES = ["config.json/.", "config.json/./.", "./config.json/."]


def _keras_zip(name: str, config: bytes) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for _kind, member, data in _KERAS_FILES:
            assert isinstance(data, bytes)
            zf.writestr(member, data)
        zf.writestr(name, config)
    return buf.getvalue()


@pytest.mark.parametrize("name", _ZIP_NAMES)
def test_zip_member_judged_under_the_name_it_is_extracted_to(tmp_path: Path, name: str) -> None:
    res = scan_files(tmp_path, {"model.zip": _keras_zip(name, _not_a_model_config("marker"))})
    assert_caught(res, "LW-MODEL-033")


@pytest.mark.parametrize("name", _ZIP_NAMES)
def test_zip_member_of_a_benign_config_under_such_a_name_stays_clean(tmp_path: Path, name: str) -> None:
    res = scan_files(tmp_path, {"model.zip": _keras_zip(name, _BENIGN)})
    assert res[0].verdict is Verdict.CLEAN, (res[0].reason, res[0].findings)


def test_zip_member_names_run_the_pickle_once_extracted_by_keras(tmp_path: Path) -> None:
    _need_keras_loader()
    paths = []
    for i, name in enumerate(_ZIP_NAMES):
        (tmp_path / f"{i}.zip").write_bytes(
            _keras_zip(name, _not_a_model_config(str(tmp_path / f"{i}.marker")))
        )
        paths.append(str(tmp_path / f"{i}.zip"))
    _extract_and_load(paths)
    assert sorted(p.name for p in tmp_path.glob("*.marker")) == [
        f"{i}.marker" for i in range(len(_ZIP_NAMES))
    ]


def test_other_name_dependent_configs_are_judged_under_the_extracted_name(tmp_path: Path) -> None:
    """The same for a NeMo ``model_config.yaml`` (Hydra ``_target_``): a tar member ``./model_config.yaml/`` and a
    zip member ``model_config.yaml/.`` are extracted as ``model_config.yaml`` (NeMo is not installed here: the
    loader's part is the extraction shown above)."""
    import zipfile

    yaml = b'model:\n  _target_: subprocess.run\n  args: ["touch", "marker"]\n'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("model_config.yaml/.", yaml)
    assert_caught(scan_files(tmp_path / "zip", {"model.nemo": buf.getvalue()}), "LW-MODEL-042")
    tar = _tar([("file", "./model_config.yaml/", yaml)])
    assert_caught(scan_files(tmp_path / "tar", {"model.nemo": tar}), "LW-MODEL-042")


# ----------------------------------- distributed checkpoint in an archive: the metadata's slices were not followed

# A torch.distributed.checkpoint folder shipped as a tar or zip: its .metadata names, for a byte item, a slice of
# the data file that torch.load(weights_only=False) reads. On disk the slice is followed and analysed; inside an
# archive it was not ("not loadable before it is unpacked"), and the data file alone shows only its own archives:
# a pickle kept as a tensor's bytes and named by the metadata was clean. Checked with torch 2.13: the archive
# extracted (tarfile, filter="data"), torch.distributed.checkpoint.load ran the pickle.


def _hidden_pickle_checkpoint(folder: Path, marker: str) -> None:
    """A checkpoint written by torch whose byte item the metadata points at a pickle inside a tensor's bytes."""
    import dataclasses
    import warnings

    torch = pytest.importorskip("torch")
    dcp = pytest.importorskip("torch.distributed.checkpoint")
    evil = pickle.dumps(_Touch(marker), protocol=2)
    carrier = bytearray(b"\x11" * 16 + evil + b"\x22" * 16)
    state = {"w": torch.frombuffer(carrier, dtype=torch.uint8).clone(), "extra": {"note": "hi"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is disabled ... assuming a single process"
        dcp.save(state, checkpoint_id=str(folder))
    at = (folder / "__0_0.distcp").read_bytes().index(evil)
    with open(folder / ".metadata", "rb") as f:
        md = pickle.load(f)  # written by torch just above
    key = next(k for k in md.storage_data if k.fqn == "extra.note")
    md.storage_data[key] = dataclasses.replace(md.storage_data[key], offset=at, length=len(evil))
    with open(folder / ".metadata", "wb") as f:
        pickle.dump(md, f)


def _archive(folder: Path, kind: str) -> bytes:
    buf = io.BytesIO()
    if kind in ("tar", "tar-of-dot"):
        with tarfile.open(fileobj=buf, mode="w") as tf:
            tf.add(str(folder), arcname="ckpt" if kind == "tar" else ".")  # tar -C ckpt -cf ckpt.tar .
    else:
        import zipfile

        method = zipfile.ZIP_STORED if kind == "zip-stored" else zipfile.ZIP_DEFLATED
        with zipfile.ZipFile(buf, "w", method) as zf:
            for p in sorted(folder.iterdir()):
                zf.write(p, f"ckpt/{p.name}")
    return buf.getvalue()


_ARCHIVES = ["tar", "tar-of-dot", "zip-stored", "zip-deflated"]


@pytest.mark.parametrize("kind", _ARCHIVES)
def test_checkpoint_in_an_archive_follows_its_metadata_slices(tmp_path: Path, kind: str) -> None:
    _hidden_pickle_checkpoint(tmp_path / "ckpt", "marker")
    res = scan_files(tmp_path / "out", {"ckpt.archive": _archive(tmp_path / "ckpt", kind)})
    assert_caught(res)
    assert any("__0_0.distcp[" in (f.location.member or "") for f in res[0].findings), res[0].findings


@pytest.mark.parametrize("kind", _ARCHIVES)
def test_checkpoint_written_by_torch_in_an_archive_stays_clean(tmp_path: Path, kind: str) -> None:
    import warnings

    torch = pytest.importorskip("torch")
    dcp = pytest.importorskip("torch.distributed.checkpoint")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    state = {"model": model.state_dict(), "extra": {"epoch": 3, "tags": ["a", 1]}, "step": 7}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=str(tmp_path / "ckpt"))
    res = scan_files(tmp_path / "out", {"ckpt.archive": _archive(tmp_path / "ckpt", kind)})
    assert res[0].verdict is Verdict.CLEAN, (res[0].reason, res[0].findings)


def test_checkpoint_metadata_in_a_compressed_stream_is_unverified(tmp_path: Path) -> None:
    """A ``.metadata`` that is no file on disk nor an archive member: its data files cannot be looked up."""
    import gzip

    _hidden_pickle_checkpoint(tmp_path / "ckpt", "marker")
    res = scan_files(
        tmp_path / "out", {".metadata.gz": gzip.compress((tmp_path / "ckpt/.metadata").read_bytes())}
    )
    assert res[0].verdict is not Verdict.CLEAN


def test_checkpoint_in_a_tar_runs_the_pickle_once_extracted(tmp_path: Path) -> None:
    """The real loader: tarfile extraction (filter="data"), then torch.distributed.checkpoint.load."""
    pytest.importorskip("torch.distributed.checkpoint")
    marker = tmp_path / "dcp.marker"
    _hidden_pickle_checkpoint(tmp_path / "ckpt", str(marker))
    (tmp_path / "ckpt.tar").write_bytes(_archive(tmp_path / "ckpt", "tar"))
    size = 32 + len(pickle.dumps(_Touch(str(marker)), protocol=2))  # the carrier tensor's bytes
    code = (
        "import sys, tarfile, warnings, torch\n"
        "import torch.distributed.checkpoint as dcp\n"
        "warnings.simplefilter('ignore')\n"
        "with tarfile.open(sys.argv[1]) as tf:\n"
        "    tf.extractall(sys.argv[2], filter='data')\n"
        "state = {'w': torch.zeros(int(sys.argv[3]), dtype=torch.uint8), 'extra': {'note': None}}\n"
        "try:\n"
        "    dcp.load(state, checkpoint_id=sys.argv[2] + '/ckpt')\n"
        "except BaseException:\n"
        "    pass\n"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "ckpt.tar"), str(tmp_path / "x"), str(size)],
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert marker.exists()


# ------------------------------------------------------- ONNX: a tensor naming its external-data location twice

# Hardening, not a confirmed miss: onnx keeps the last "location" entry of a tensor (and onnx 1.23 and onnxruntime
# 1.32 refuse locations outside the model's folder anyway), but a reader that keeps the first would read the other
# one; only the last was checked.


def test_onnx_every_external_data_location_of_a_tensor_is_checked(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    tensor = onnx.TensorProto(name="w", data_type=onnx.TensorProto.UINT8, dims=[4])
    tensor.data_location = onnx.TensorProto.EXTERNAL
    for where in ("../secret.bin", "w.bin"):
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", where
    node = onnx.helper.make_node("Identity", ["w"], ["y"])
    out = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.UINT8, [4])
    graph = onnx.helper.make_graph([node], "g", [], [out], initializer=[tensor])
    model = onnx.helper.make_model(graph).SerializeToString()
    res = scan_files(tmp_path, {"model.onnx": model, "w.bin": b"\x00" * 4})
    assert_caught(res, "LW-MODEL-035")
    assert any("../secret.bin" in f.message for f in res[0].findings), res[0].findings
