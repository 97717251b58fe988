"""Sweep 18: published bypasses of the peer scanners and loader advisories not in the earlier sweep files.

Every input is built here by code and only scanned; the real-loader steps run in a child process (or use the
standard-library reader the loader itself calls) and leave a marker file.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import _container_payloads as cp
import pytest
from test_container_bypasses import scan

from loopwarden.domain import Severity, Verdict

# ------------------------------------------------------------------ .nemo: a member written twice (last wins)

_NEMO_CONFIG = b"target: nemo.collections.asr.models.EncDecCTCModel\nsample_rate: 16000\n"
_NEMO_CONFIG_OTHER = b"target: nemo.collections.asr.models.EncDecRNNTModel\nsample_rate: 16000\n"
_WEIGHTS = pickle.dumps({"decoder.weight": [1.0, 2.0]}, protocol=2)
_WEIGHTS_SWAPPED = pickle.dumps({"decoder.weight": [198.0, 297.0]}, protocol=2)


def _tar(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tf:  # type: ignore[call-overload]
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


_DUPLICATES: dict[str, list[tuple[str, bytes]]] = {
    # the published PoC: two model_weights.ckpt, the first benign, the last (the one extracted) another
    "weights": [
        ("model_config.yaml", _NEMO_CONFIG),
        ("model_weights.ckpt", _WEIGHTS),
        ("model_weights.ckpt", _WEIGHTS_SWAPPED),
    ],
    # the same path spelled differently: extracted, './x', 'x' and 'x/' are one file
    "dot-slash": [
        ("./model_config.yaml", _NEMO_CONFIG),
        ("./model_weights.ckpt", _WEIGHTS),
        ("model_weights.ckpt", _WEIGHTS_SWAPPED),
    ],
    "trailing-slash": [
        ("model_config.yaml", _NEMO_CONFIG),
        ("model_weights.ckpt", _WEIGHTS),
        ("model_weights.ckpt/", _WEIGHTS_SWAPPED),
    ],
    "double-slash": [
        ("model_config.yaml", _NEMO_CONFIG),
        ("sub//model_weights.ckpt", _WEIGHTS),
        ("sub/model_weights.ckpt", _WEIGHTS_SWAPPED),
    ],
    # the config swapped: another model class than the one a first-match reader sees
    "config": [
        ("model_config.yaml", _NEMO_CONFIG),
        ("model_weights.ckpt", _WEIGHTS),
        ("model_config.yaml", _NEMO_CONFIG_OTHER),
    ],
    # three copies, the first and last the same: the middle one is still a copy a reader may take
    "three-copies": [
        ("model_config.yaml", _NEMO_CONFIG),
        ("model_weights.ckpt", _WEIGHTS),
        ("model_weights.ckpt", _WEIGHTS_SWAPPED),
        ("model_weights.ckpt", _WEIGHTS),
    ],
    # same size, different bytes (the comparison reads the bytes, not only the sizes)
    "same-size": [
        ("model_config.yaml", _NEMO_CONFIG),
        ("model_weights.ckpt", _WEIGHTS),
        ("model_weights.ckpt", _WEIGHTS.replace(b"decoder", b"encoder")),
    ],
}


def _nemo(case: str, mode: str = "w") -> bytes:
    return _tar(_DUPLICATES[case], mode)


@pytest.mark.parametrize("mode", ["w", "w:gz"], ids=["tar", "tar.gz"])
@pytest.mark.parametrize("case", sorted(_DUPLICATES))
def test_nemo_duplicate_member_is_reported(tmp_path: Path, case: str, mode: str) -> None:
    """A ``.nemo`` is a tar archive; NeMo's ``restore_from`` extracts every member in order, so of two members
    extracted to one path the *last* is on disk when the model is built, while a reader that stops at the first
    match (an inspection script, a scanner that keys members by name) sees the first. Published as a reader
    differential against ModelScan (https://huggingface.co/Hironabe333/nemo-duplicate-weights-poc: the first
    ``model_weights.ckpt`` benign, the last the weights the model runs with). Zip archives already reported a
    duplicate name (LW-MODEL-022); a tar scanned clean with both copies benign pickles (every copy analysed, the
    difference not reported). Now LW-MODEL-022, high, as for zip."""
    results = scan(tmp_path, {"model.nemo": _nemo(case, mode)})
    target = results[0]
    assert target.verdict is not Verdict.CLEAN, target
    hits = [f for f in target.findings if f.rule_id == "LW-MODEL-022"]
    assert hits, target.findings
    assert max(f.severity for f in hits) is Severity.HIGH
    assert "different content" in hits[0].message


def test_nemo_duplicate_extraction_keeps_the_last_copy(tmp_path: Path) -> None:
    """The reader NeMo extracts with (``tarfile``): extracting writes each member in order, so the file on disk
    holds the last copy, and ``getmember`` returns the last one too, while the first match of a linear listing
    is the benign copy."""
    data = _nemo("weights")
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        first = next(m for m in tf.getmembers() if m.name == "model_weights.ckpt")
        first_bytes = tf.extractfile(first).read()  # type: ignore[union-attr]
        last_bytes = tf.extractfile(tf.getmember("model_weights.ckpt")).read()  # type: ignore[union-attr]
        extract = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tf.extractall(tmp_path / "out", **extract)  # type: ignore[arg-type]
    assert pickle.loads(first_bytes) == {"decoder.weight": [1.0, 2.0]}
    assert pickle.loads(last_bytes) == {"decoder.weight": [198.0, 297.0]}
    on_disk = pickle.loads((tmp_path / "out" / "model_weights.ckpt").read_bytes())
    assert on_disk == {"decoder.weight": [198.0, 297.0]}


def test_nemo_duplicate_with_a_payload_names_the_payload(tmp_path: Path) -> None:
    """Regression (already caught before this round): when the hidden copy carries code, every copy is analysed,
    so the payload itself is reported whichever copy it is in."""
    payload = b"cos\nsystem\n(Vecho pwned\ntR."
    for members in (
        [
            ("model_config.yaml", _NEMO_CONFIG),
            ("model_weights.ckpt", _WEIGHTS),
            ("model_weights.ckpt", payload),
        ],
        [
            ("model_config.yaml", _NEMO_CONFIG),
            ("model_weights.ckpt", payload),
            ("model_weights.ckpt", _WEIGHTS),
        ],
    ):
        results = scan(tmp_path, {"model.nemo": _tar(members)})
        rules = {f.rule_id for f in results[0].findings}
        assert {"LW-MODEL-001", "LW-MODEL-022"} <= rules, results[0].findings
        assert results[0].max_severity() is Severity.CRITICAL


@pytest.mark.parametrize(
    "members",
    [
        # a plain .nemo as NeMo writes it (tarfile.add of a folder: './' names, each once)
        [("./model_config.yaml", _NEMO_CONFIG), ("./model_weights.ckpt", _WEIGHTS)],
        # 'tar -r' re-adding an unchanged file: two copies with the same bytes, whichever wins is the same
        [
            ("model_config.yaml", _NEMO_CONFIG),
            ("model_weights.ckpt", _WEIGHTS),
            ("model_weights.ckpt", _WEIGHTS),
        ],
        # the same file name in two folders is two files
        [
            ("model_config.yaml", _NEMO_CONFIG),
            ("a/model_weights.ckpt", _WEIGHTS),
            ("b/model_weights.ckpt", b"x"),
        ],
    ],
    ids=["as-written", "identical-copies", "different-folders"],
)
def test_nemo_without_differing_copies_stays_clean(tmp_path: Path, members: list[tuple[str, bytes]]) -> None:
    results = scan(tmp_path, {"model.nemo": _tar(members)})
    assert "LW-MODEL-022" not in {f.rule_id for f in results[0].findings}, results[0].findings
    assert results[0].verdict is Verdict.CLEAN, results[0]


def test_real_tar_made_by_tarfile_add_stays_clean(tmp_path: Path) -> None:
    """A model folder packed by ``tarfile.add`` (what NeMo's ``save_to`` does) is clean."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "model_config.yaml").write_bytes(_NEMO_CONFIG)
    (src / "model_weights.ckpt").write_bytes(_WEIGHTS)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:") as tf:
        tf.add(src, arcname=".")
    results = scan(tmp_path / "scan", {"model.nemo": out.getvalue()})
    assert results[0].verdict is Verdict.CLEAN, results[0]


def test_zip_duplicate_still_reported(tmp_path: Path) -> None:
    """The zip rule the tar check mirrors is unchanged."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("model_weights.ckpt", _WEIGHTS)
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("model_weights.ckpt", _WEIGHTS_SWAPPED)
    results = scan(tmp_path, {"model.zip": out.getvalue()})
    assert "LW-MODEL-022" in {f.rule_id for f in results[0].findings}


# ------------------------------------------------- regressions: advisories already caught, now cited by name


def test_onnx_cve_2026_34447_external_data_through_a_folder_link(tmp_path: Path) -> None:
    """ONNX before 1.21 follows a symbolic link in the path of an external-data file (CVE-2026-34447,
    GHSA-p433-9wv8-28xj): a directory link inside the model folder, or a chain of links, leads the read outside.
    Already caught (LW-MODEL-035); the leaf-link case is CVE-2026-27489's test."""
    (tmp_path / "sub").symlink_to("/etc")
    (tmp_path / "a.bin").symlink_to("b.bin")
    (tmp_path / "b.bin").symlink_to("/etc/hostname")
    for location in ("sub/hostname", "a.bin"):
        (tmp_path / "model.onnx").unlink(missing_ok=True)
        results = scan(tmp_path, {"model.onnx": cp.onnx_model(location)})
        hits = [f for f in results[0].findings if f.rule_id == "LW-MODEL-035"]
        assert hits and max(f.severity for f in hits) is Severity.HIGH, (location, results[0].findings)


def test_onnx_external_data_link_that_stays_inside_is_clean(tmp_path: Path) -> None:
    (tmp_path / "real.bin").write_bytes(b"\x00" * 16)
    (tmp_path / "w.bin").symlink_to("real.bin")
    results = scan(tmp_path, {"model.onnx": cp.onnx_model("w.bin")})
    assert results[0].verdict is Verdict.CLEAN, results[0]


_MODULE = b"import pathlib\n(pathlib.Path(__file__).parent / 'marker').write_text('ran')\n"


@pytest.mark.parametrize(
    "config",
    [
        # CVE-2026-22807 (vLLM 0.10.1 to 0.13): the auto_map modules resolved without trust_remote_code
        {"model_type": "custom", "auto_map": {"AutoConfig": "custom.Config", "AutoModel": "custom.Model"}},
        # CVE-2026-27893 (GHSA-7972-pg2x-xr59; vLLM 0.10.1 to 0.17): Nemotron-VL built its vision tower with
        # AutoModel.from_config(config.vision_config, trust_remote_code=True), whatever the operator said
        {
            "model_type": "NemotronH_Nano_VL_V2",
            "vision_config": {"model_type": "radio", "auto_map": {"AutoModel": "custom.Model"}},
        },
    ],
    ids=["cve-2026-22807-auto-map", "cve-2026-27893-vision-config"],
)
def test_vllm_auto_map_without_trust_remote_code(tmp_path: Path, config: dict[str, object]) -> None:
    """Already reported (LW-MODEL-042: code the scanner cannot judge, medium for a module of the folder); cited
    here so the advisories are covered by name."""
    results = scan(tmp_path, {"config.json": json.dumps(config).encode(), "custom.py": _MODULE})
    cfg = next(r for r in results if r.path.endswith("config.json"))
    hits = [f for f in cfg.findings if f.rule_id == "LW-MODEL-042"]
    assert hits and max(f.severity for f in hits) >= Severity.MEDIUM, cfg.findings


def test_transformers_cve_2026_1839_rng_state(tmp_path: Path) -> None:
    """transformers' Trainer read ``rng_state.pth`` with ``torch.load`` and no ``weights_only`` (CVE-2026-1839,
    fixed in 5.0.0rc3): resuming from a checkpoint folder runs its pickle. Already caught (LW-MODEL-001)."""
    payload = b"\x80\x02cos\nsystem\nX\x0b\x00\x00\x00echo pwned!\x85R."
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("rng_state/data.pkl", payload)
        zf.writestr("rng_state/version", b"3\n")
    results = scan(tmp_path, {"checkpoint-10/rng_state.pth": out.getvalue()})
    assert "LW-MODEL-001" in {f.rule_id for f in results[0].findings}, results[0].findings


def test_real_tar_extract_child_process(tmp_path: Path) -> None:
    """The extraction NeMo performs (``tarfile`` ``extractall`` into a temporary folder, then loading the
    extracted ``model_weights.ckpt``) in a child process: the weights it loads are the last copy's."""
    (tmp_path / "model.nemo").write_bytes(_nemo("weights"))
    child = (
        "import pickle, sys, tarfile, pathlib\n"
        "p = pathlib.Path(sys.argv[1])\n"
        "with tarfile.open(p / 'model.nemo') as tf:\n"
        "    tf.extractall(p / 'x')\n"
        "w = pickle.loads((p / 'x' / 'model_weights.ckpt').read_bytes())\n"
        "(p / 'marker').write_text(repr(w['decoder.weight']))\n"
    )
    subprocess.run([sys.executable, "-c", child, str(tmp_path)], timeout=60, check=True, env=dict(os.environ))
    assert (tmp_path / "marker").read_text() == "[198.0, 297.0]"


# ------------------------------------------- pickle: what the reading-on load runs after a FRAME straddle


def _straddles(command: str) -> dict[str, bytes]:
    """Pickles whose payload the in-memory reading (and a file load with the bytes buffered) runs only after an
    opcode that crosses its FRAME's end, with stack or memo entries made before or inside the frame."""
    arg = command.encode()
    tail = b"X" + struct.pack("<I", len(arg)) + arg + b"\x85R."
    frame = b"\x95"
    p5 = b"\x80\x05"
    return {
        # the module name itself straddles the frame's end, the name and STACK_GLOBAL follow it
        "name-straddles": p5 + frame + struct.pack("<Q", 3) + b"\x8c\x02os\x8c\x06system\x93" + tail,
        # the module name pushed before the frame, an integer straddles, the rest follows
        "stack-before": p5
        + b"\x8c\x02os"
        + frame
        + struct.pack("<Q", 2)
        + b"J"
        + struct.pack("<i", 7)
        + b"0\x8c\x06system\x93"
        + tail,
        # the module name memoized before the frame and fetched after the straddle
        "memo-before": p5
        + b"\x8c\x02os\x940"
        + frame
        + struct.pack("<Q", 2)
        + b"J"
        + struct.pack("<i", 7)
        + b"0h\x00\x8c\x06system\x93"
        + tail,
        # the GLOBAL's attribute line straddles (named before this round too: the GLOBAL itself is reported)
        "global-line": p5 + frame + struct.pack("<Q", 7) + b"cos\nsystem\n" + tail,
    }


@pytest.mark.parametrize("case", sorted(_straddles("true")))
def test_frame_straddle_reading_on_is_analysed(tmp_path: Path, case: str) -> None:
    """An opcode whose argument runs past the end of its FRAME is read two ways (CPython issue 154848, fickling PR
    317): a file load that refills its buffer drops the frame's rest, ``pickle.loads`` (and ``pickle.load`` of a
    file it has buffered whole, any small file) reads on. Since round 13 the scanner searched the first reading and
    stopped the second at the frame's end, so a payload that the reading-on load runs after the straddle, built
    from strings pushed or memoized earlier, was not named: the file was unverified with one medium finding
    (LW-MODEL-012), not clean. Confirmed with CPython 3.11's C unpickler: ``pickle.loads`` and ``pickle.load`` both
    ran ``os.system`` (marker written). Now the reading goes on: LW-MODEL-001, critical, and still unverified."""
    data = _straddles("true")[case]
    results = scan(tmp_path, {"model.pkl": data})
    target = results[0]
    assert target.verdict is Verdict.UNVERIFIED, target
    assert "FRAME" in (target.reason or ""), target
    rules = {f.rule_id for f in target.findings}
    assert {"LW-MODEL-001", "LW-MODEL-012"} <= rules, target.findings
    assert any("os.system" in f.message for f in target.findings), target.findings
    assert target.max_severity() is Severity.CRITICAL


def test_frame_straddle_real_unpickler(tmp_path: Path) -> None:
    """CPython's own unpickler, in a child process: each case runs its payload from bytes and from a file."""
    for case, data in _straddles(f"touch {tmp_path}/marker").items():
        (tmp_path / "model.pkl").write_bytes(data)
        for how in ("pickle.loads(p.read_bytes())", "pickle.load(p.open('rb'))"):
            child = f"import pickle, pathlib, sys\np = pathlib.Path(sys.argv[1])\n{how}\n"
            subprocess.run([sys.executable, "-c", child, str(tmp_path / "model.pkl")], timeout=60, check=True)
            assert (tmp_path / "marker").exists(), (case, how)
            (tmp_path / "marker").unlink()


@pytest.mark.parametrize("protocol", [4, 5])
def test_framed_pickles_written_by_pickle_stay_clean(tmp_path: Path, protocol: int) -> None:
    """Frames as CPython writes them (several frames, large objects outside any frame) are not straddles."""
    obj = {"a": list(range(70_000)), "b": b"x" * 100_000, "c": "z" * 70_000, "d": [1.5] * 10_000}
    results = scan(tmp_path, {"model.pkl": pickle.dumps(obj, protocol=protocol)})
    assert results[0].verdict is Verdict.CLEAN, results[0]


def bench_cases() -> dict[str, dict[str, bytes]]:
    """The attacks of this file that scanned clean before this round: the .nemo duplicate-member differential
    (every variant with benign copies; the payload variants were already caught)."""
    return {
        f"r18_nemo_duplicate_{case.replace('-', '_')}": {"model.nemo": _nemo(case)} for case in _DUPLICATES
    }


@pytest.mark.parametrize("corruption", ["method", "crc"])
def test_modelscan_354_broken_member_before_the_pickle(tmp_path: Path, corruption: str) -> None:
    """ModelScan's zip iterator gave up on the whole archive at the first member it could not open, so a corrupt
    member listed before ``archive/data.pkl`` hid the pickle that ``torch.load`` reads by name
    (https://github.com/protectai/modelscan/issues/354). Already caught: each member is analysed on its own."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("archive/aaa_corrupt", b"x" * 100)
        zf.writestr("archive/data.pkl", b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00id\x85R.")
        zf.writestr("archive/version", b"3\n")
    data = bytearray(out.getvalue())
    local = data.find(b"PK\x03\x04")
    if corruption == "method":
        central = data.find(b"PK\x01\x02")
        data[local + 8 : local + 10] = (99).to_bytes(2, "little")
        data[central + 10 : central + 12] = (99).to_bytes(2, "little")
    else:
        data[local + 30 + len("archive/aaa_corrupt")] ^= 0xFF
    results = scan(tmp_path, {"model.pt": bytes(data)})
    assert "LW-MODEL-001" in {f.rule_id for f in results[0].findings}, results[0].findings


# ------------------------------------------------------------ GGUF: sizes that lie (regressions, already caught)


def _gstr(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf(
    ne: list[int], offset: int = 0, data: bytes = b"\x00" * 16, kv: bytes = b"", n_kv: int = 0
) -> bytes:
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, n_kv) + kv
    head += (
        _gstr("token_embd.weight") + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
    )
    head += struct.pack("<IQ", 0, offset)  # F32
    return head + b"\x00" * (-len(head) % 32) + data


@pytest.mark.parametrize(
    "data",
    [
        # CVE-2026-7482 ("Bleeding Llama", Ollama before 0.17.1): a tensor declared larger than the file, read past
        # the buffer by the quantizer and pushed back out with the heap behind it
        _gguf([1024]),
        _gguf([4], offset=2**64 - 32),
        # CVE-2026-27940 (GHSA-3p4r-fq3f-q74v, llama.cpp before b8146, a bypass of CVE-2025-53630's fix): sizes whose
        # product or sum wraps in 64-bit arithmetic, so the allocation is smaller than what is then read into it
        _gguf([2**32, 2**32]),
        _gguf([4], kv=_gstr("general.name") + struct.pack("<IQ", 8, 2**64 - 1) + b"x", n_kv=1),
        _gguf([4], kv=_gstr("general.arr") + struct.pack("<IIQ", 9, 10, 2**61) + b"\x00" * 8, n_kv=1),
    ],
    ids=["tensor-past-eof", "offset-wraps", "elements-wrap", "string-length-wraps", "array-bytes-wrap"],
)
def test_gguf_sizes_that_lie(tmp_path: Path, data: bytes) -> None:
    """Already reported (LW-MODEL-039, high; the file unverified); cited here by advisory."""
    results = scan(tmp_path, {"model.gguf": data})
    target = results[0]
    assert target.verdict is Verdict.UNVERIFIED, target
    assert "LW-MODEL-039" in {f.rule_id for f in target.findings}, target.findings


def test_gguf_consistent_sizes_stay_clean(tmp_path: Path) -> None:
    results = scan(tmp_path, {"model.gguf": _gguf([4])})
    assert results[0].verdict is Verdict.CLEAN, results[0]


def test_gguf_written_by_the_gguf_library_stays_clean(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    path = tmp_path / "src.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    results = scan(tmp_path / "scan", {"model.gguf": path.read_bytes()})
    assert results[0].verdict is Verdict.CLEAN, results[0]
