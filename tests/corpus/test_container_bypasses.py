"""One regression test per published container-level bypass of picklescan, modelscan, fickling and modelaudit.

Payloads are built by code (``_container_payloads``) and only ever scanned, never loaded.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import _container_payloads as cp
import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict


def scan(tmp_path: Path, files: dict[str, bytes]) -> list[TargetResult]:
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return list(scan_paths([str(tmp_path / n) for n in files], jobs=1).targets)


def assert_caught(
    results: list[TargetResult], rule: str | None = None, at_least: Severity = Severity.HIGH
) -> None:
    t = results[0]
    assert t.verdict is not Verdict.CLEAN, t
    worst = t.max_severity()
    assert worst is not None, t
    assert worst >= at_least, t
    if rule:
        assert rule in {f.rule_id for f in t.findings}, t.findings


def assert_payload(results: list[TargetResult]) -> None:
    """The os.system payload itself is found (not just a structural anomaly)."""
    t = results[0]
    assert any("system" in f.message for f in t.findings), t.findings
    assert t.max_severity() is Severity.CRITICAL


# ----------------------------------------------------------------------------------------- zip structure
# tricks


def test_zip_flag_bit_encrypted(tmp_path: Path) -> None:
    """Zip flag bit 0 (encrypted) on data.pkl: zipfile refuses, torch loads.
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-w8jq-xcqf-f792"""
    res = scan(tmp_path, {"model.pt": cp.set_flags(cp.torch_zip(cp.evil_pickle()), "archive/data.pkl", 0x1)})
    assert_caught(res, "LW-MODEL-021")
    assert_payload(res)


def test_zip_flag_bit_central_only(tmp_path: Path) -> None:
    """Flag bits that differ between central directory and local header.
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-w8jq-xcqf-f792"""
    data = cp.set_flags(cp.torch_zip(cp.evil_pickle()), "archive/data.pkl", 0x1, local=False)
    res = scan(tmp_path, {"model.pt": data})
    assert_caught(res, "LW-MODEL-021")
    assert_payload(res)


def test_zip_crc_mismatch(tmp_path: Path) -> None:
    """A wrong CRC-32 makes Python's zipfile raise while torch loads the member (CVE-2025-10156).
    https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/ ,
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-7q5r-7gvp-wc82"""
    res = scan(tmp_path, {"model.pt": cp.break_crc(cp.torch_zip(cp.evil_pickle()), "archive/data.pkl")})
    assert_caught(res, "LW-MODEL-026")
    assert_payload(res)


def test_zip_local_name_differs_from_central(tmp_path: Path) -> None:
    """Local header names the member differently from the central directory (reader-dependent view).
    https://github.com/protectai/modelscan/issues/263"""
    data = cp.rename_local(cp.torch_zip(cp.evil_pickle()), "archive/data.pkl", "archive/data.pkx")
    res = scan(tmp_path, {"model.pt": data})
    assert_caught(res, "LW-MODEL-021")
    assert_payload(res)


def test_zip_hidden_local_member(tmp_path: Path) -> None:
    """A local entry missing from the central directory, seen only by streaming readers.
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-7q5r-7gvp-wc82"""
    data = cp.hide_member(cp.torch_zip(cp.benign_pickle()), "archive/x.pkl", cp.evil_pickle())
    res = scan(tmp_path, {"model.pt": data})
    assert_caught(res, "LW-MODEL-025")
    assert_payload(res)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_zip_duplicate_member_names(tmp_path: Path) -> None:
    """Two members named data.pkl: the benign one is what one reader sees, the payload what another loads.
    https://github.com/protectai/modelscan/issues/263"""
    data = cp.torch_zip(cp.benign_pickle(), extra={"archive/data.pkl": cp.evil_pickle()})
    res = scan(tmp_path, {"model.pt": data})
    assert_caught(res, "LW-MODEL-022")
    assert_payload(res)


def test_pickle_prepended_to_zip(tmp_path: Path) -> None:
    """A pickle before a valid zip: zipfile sees the zip, torch's magic check loads the legacy pickle.
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-7q5r-7gvp-wc82"""
    res = scan(tmp_path, {"model.pt": cp.evil_pickle() + cp.torch_zip(cp.benign_pickle())})
    assert_caught(res, "LW-MODEL-024")
    assert_payload(res)


def test_pickle_appended_after_zip(tmp_path: Path) -> None:
    """Payload after the end of central directory (appended data).
    https://github.com/protectai/modelscan/issues/263"""
    res = scan(tmp_path, {"model.pt": cp.torch_zip(cp.benign_pickle()) + cp.evil_pickle()})
    assert_caught(res, "LW-MODEL-024")
    assert_payload(res)


# ----------------------------------------------------------------------------------- torch layout and names


def test_torch_extra_pickle_with_other_extension(tmp_path: Path) -> None:
    """Pickles inside a torch zip under non-standard names are skipped by extension-based scanners.
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-769v-p64c-89pr"""
    data = cp.torch_zip(cp.benign_pickle(), extra={"archive/extra/weights.bin": cp.evil_pickle()})
    assert_payload(scan(tmp_path, {"model.pt": data}))


def test_torch_two_record_roots(tmp_path: Path) -> None:
    """Two top-level folders with data.pkl; which one torch reads depends on member order.
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-769v-p64c-89pr"""
    data = cp.torch_zip(cp.benign_pickle(), extra={"other/data.pkl": cp.evil_pickle()})
    res = scan(tmp_path, {"model.pt": data})
    assert_caught(res, "LW-MODEL-030")
    assert_payload(res)


def test_pickle_with_torch_extension(tmp_path: Path) -> None:
    """A plain pickle named pytorch_model.bin: the torch parser fails and the scan returned no finding
    (CVE-2025-10155). https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/"""
    assert_payload(scan(tmp_path, {"pytorch_model.bin": cp.evil_pickle()}))


def test_zip_named_bin(tmp_path: Path) -> None:
    """A torch zip under a .bin name (extension disguise the other way round).
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-769v-p64c-89pr"""
    assert_payload(scan(tmp_path, {"weights.bin": cp.torch_zip(cp.evil_pickle())}))


def test_pickle_disguised_as_safetensors(tmp_path: Path) -> None:
    """A pickle with a .safetensors name: scanners that trust the extension skip it; loaders by content run
    it.
    https://github.com/protectai/modelscan/issues/263"""
    res = scan(tmp_path, {"model.safetensors": cp.evil_pickle()})
    assert_payload(res)
    assert "LW-MODEL-029" in {f.rule_id for f in res[0].findings}


def test_legacy_torch_stacked_pickles(tmp_path: Path) -> None:
    """Legacy torch files are five stacked pickles; scanners that read only the first miss the model pickle.
    https://github.com/trailofbits/fickling/issues/190"""
    assert_payload(scan(tmp_path, {"model.pt": cp.torch_legacy([cp.evil_pickle()])}))


def test_protocol0_text_pickle(tmp_path: Path) -> None:
    """Protocol 0 pickles have no PROTO header and look like text; detection must not rely on the header.
    https://github.com/google/saferpickle/pull/41"""
    assert_payload(scan(tmp_path, {"model.pkl": cp.evil_pickle(0)}))


# ------------------------------------------------------------------------------------------------- archives


def test_nested_zip(tmp_path: Path) -> None:
    """A torch checkpoint inside a zip inside a zip.
    https://github.com/protectai/modelscan/issues/263"""
    inner = cp.zip_of({"a.zip": cp.zip_of({"b/model.pt": cp.torch_zip(cp.evil_pickle())})})
    assert_payload(scan(tmp_path, {"bundle.zip": inner}))


def test_tar_gz_with_pickle(tmp_path: Path) -> None:
    """Archives that scanners do not open (tar.gz) carry pickles that pipelines extract and load.
    https://github.com/protectai/modelscan/issues/263"""
    assert_payload(scan(tmp_path, {"model.tar.gz": cp.tar_of({"m/weights.pkl": cp.evil_pickle()})}))


def test_tar_symlink_escape(tmp_path: Path) -> None:
    """A tar symlink member pointing outside the extraction folder (CVE-2007-4559 class, tarfile).
    https://github.com/python/cpython/issues/45756"""
    data = cp.tar_of({"a.txt": b"x"}, mode="w", links={"model.pt": "../../etc/passwd"})
    assert_caught(scan(tmp_path, {"model.tar": data}), "LW-MODEL-028")


def test_zip_path_traversal(tmp_path: Path) -> None:
    """Zip-slip: a member name with ../ escapes the extraction folder.
    https://security.snyk.io/research/zip-slip-vulnerability"""
    res = scan(tmp_path, {"model.zip": cp.zip_of({"../../evil.pkl": cp.evil_pickle()})})
    assert_caught(res, "LW-MODEL-027")
    assert_payload(res)


def test_seven_zip_is_unverified(tmp_path: Path) -> None:
    """7z is not supported: it must be unverified (fail closed), never clean.
    https://github.com/protectai/modelscan/issues/263"""
    res = scan(tmp_path, {"model.7z": b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 64})
    assert res[0].verdict is Verdict.UNVERIFIED


# -------------------------------------------------------------------------------------------- numpy, joblib


def test_numpy_object_array(tmp_path: Path) -> None:
    """np.load(allow_pickle=True) of an object array unpickles the payload (CVE-2019-6446).
    https://nvd.nist.gov/vuln/detail/CVE-2019-6446"""
    res = scan(tmp_path, {"arr.npy": cp.npy_object(cp.evil_pickle())})
    assert_payload(res)
    assert "LW-MODEL-041" in {f.rule_id for f in res[0].findings}


def test_npz_with_object_member(tmp_path: Path) -> None:
    """An .npz (zip of .npy) whose member is an object array.
    https://nvd.nist.gov/vuln/detail/CVE-2019-6446"""
    assert_payload(scan(tmp_path, {"arrs.npz": cp.zip_of({"a.npy": cp.npy_object(cp.evil_pickle())})}))


@pytest.mark.parametrize("kind", ["zlib", "gzip", "bz2", "xz", "lzma"])
def test_compressed_joblib(tmp_path: Path, kind: str) -> None:
    """joblib's compressed pickles: scanners that do not decompress see no opcodes.
    https://github.com/protectai/modelscan/issues/263"""
    assert_payload(scan(tmp_path, {"model.joblib": cp.compress(kind, cp.evil_pickle())}))


def test_joblib_old_zfile_header(tmp_path: Path) -> None:
    """joblib < 0.10 zlib files start with 'ZF' and a padded hex length, not a zlib header.
    https://github.com/protectai/modelscan/issues/263"""
    body = cp.compress("zlib", cp.evil_pickle())
    data = b"ZF" + f"0x{len(cp.evil_pickle()):x}".encode().ljust(19) + body
    assert_payload(scan(tmp_path, {"model.pkl": data}))


# ------------------------------------------------------------------------------------------------------ keras


def test_keras_lambda_layer(tmp_path: Path) -> None:
    """Keras Lambda layers carry marshalled bytecode that runs on load (CVE-2024-3660).
    https://nvd.nist.gov/vuln/detail/CVE-2024-3660"""
    assert_caught(
        scan(tmp_path, {"model.keras": cp.keras_zip(cp.keras_lambda_config())}),
        "LW-MODEL-032",
        Severity.CRITICAL,
    )


def test_keras_config_module_injection(tmp_path: Path) -> None:
    """config.json naming an arbitrary module/function, imported by from_config even in safe mode
    (CVE-2025-1550).
    https://github.com/keras-team/keras/security/advisories/GHSA-48g7-3x6r-xfhp"""
    assert_caught(
        scan(tmp_path, {"model.keras": cp.keras_zip(cp.keras_module_injection_config())}), "LW-MODEL-033"
    )


def test_keras_safe_mode_bypass_get_file(tmp_path: Path) -> None:
    """Bypass of the CVE-2025-1550 fix through keras.utils.get_file inside the keras namespace
    (CVE-2025-8747).
    https://nvd.nist.gov/vuln/detail/CVE-2025-8747"""
    assert_caught(scan(tmp_path, {"model.keras": cp.keras_zip(cp.keras_get_file_config())}), "LW-MODEL-033")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("keras.utils", "get_file"),
        ("keras.config", "enable_unsafe_deserialization"),
        ("keras.src.saving", "load_model"),
    ],
)
def test_keras_function_named_only_in_config(tmp_path: Path, module: str, name: str) -> None:
    """{"class_name": "function", "config": NAME} without a registered_name: the name Keras looks up is the config
    string (the get_file bypass of the CVE-2025-1550 fix; enable_unsafe_deserialization called from config.json,
    https://github.com/advisories/GHSA-36fq-jgmw-4r9c)."""
    cfg = cp.keras_function_config(module, name)
    assert_caught(scan(tmp_path, {"model.keras": cp.keras_zip(cfg)}), "LW-MODEL-033")


@pytest.mark.parametrize(
    "layer", ["StringLookup", "IntegerLookup", "TextVectorization", "WordPieceTokenizer"]
)
def test_keras_lookup_layer_reading_a_path(tmp_path: Path, layer: str) -> None:
    """A lookup layer's or tokenizer's vocabulary given as a path is read (a local file, or a URL) while loading,
    safe mode or not (https://github.com/keras-team/keras-hub/pull/2517)."""
    assert_caught(
        scan(tmp_path, {"model.keras": cp.keras_zip(cp.keras_lookup_path_config(layer))}), "LW-MODEL-033"
    )


def test_keras_hdf5_lambda(tmp_path: Path) -> None:
    """Legacy HDF5 Keras models keep the config in the model_config attribute (CVE-2024-3660).
    https://nvd.nist.gov/vuln/detail/CVE-2024-3660"""
    h5py = pytest.importorskip("h5py")
    import json

    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(cp.keras_lambda_config())
        f.attrs["keras_version"] = "2.15.0"
    res = list(scan_paths([str(path)], jobs=1).targets)
    assert_caught(res, "LW-MODEL-032", Severity.CRITICAL)


# ------------------------------------------------------------------------------------------------------- onnx


def test_onnx_external_data_traversal(tmp_path: Path) -> None:
    """external_data location with ../ reads arbitrary files (CVE-2024-27318, bypass of CVE-2022-25882's fix).
    https://nvd.nist.gov/vuln/detail/CVE-2024-27318"""
    assert_caught(scan(tmp_path, {"model.onnx": cp.onnx_model("../../../../etc/passwd")}), "LW-MODEL-035")


def test_onnx_external_data_hardlink(tmp_path: Path) -> None:
    """A hard link inside the model folder to a file elsewhere passes symlink-only checks.
    https://github.com/advisories/GHSA-cmw6-hcpp-c6jp"""
    secret = tmp_path / "secret"
    secret.write_bytes(b"key")
    (tmp_path / "m").mkdir()
    import os

    os.link(secret, tmp_path / "m" / "weights.bin")
    res = scan(tmp_path / "m", {"model.onnx": cp.onnx_model("weights.bin")})
    assert_caught(res, "LW-MODEL-035")


def test_onnx_external_data_absolute(tmp_path: Path) -> None:
    """An absolute external_data location (CVE-2022-25882).
    https://nvd.nist.gov/vuln/detail/CVE-2022-25882"""
    assert_caught(scan(tmp_path, {"model.onnx": cp.onnx_model("/etc/shadow")}), "LW-MODEL-035")


def test_onnx_external_data_symlink(tmp_path: Path) -> None:
    """A location inside the folder that is a symlink to a file outside it (CVE-2026-27489).
    https://nvd.nist.gov/vuln/detail/CVE-2026-27489"""
    (tmp_path / "weights.bin").symlink_to("/etc/passwd")
    res = scan(tmp_path, {"model.onnx": cp.onnx_model("weights.bin")})
    assert_caught(res, "LW-MODEL-035")


# ------------------------------------------------------------------------------------------------ gguf /
# jinja


@pytest.mark.parametrize("case", sorted(cp.SSTI_TEMPLATES))
def test_gguf_chat_template_ssti(tmp_path: Path, case: str) -> None:
    """Jinja chat templates in GGUF rendered without a sandbox run code (CVE-2024-34359, "Llama Drama").
    https://github.com/abetlen/llama-cpp-python/security/advisories/GHSA-56xg-wfcc-g829"""
    res = scan(tmp_path, {"model.gguf": cp.gguf_file(cp.SSTI_TEMPLATES[case])})
    assert_caught(res, "LW-MODEL-040")


def test_tokenizer_config_chat_template_ssti(tmp_path: Path) -> None:
    """The same template injection through tokenizer_config.json's chat_template.
    https://github.com/abetlen/llama-cpp-python/security/advisories/GHSA-56xg-wfcc-g829"""
    import json

    data = json.dumps({"chat_template": cp.SSTI_TEMPLATES["llama_drama"]}).encode()
    assert_caught(scan(tmp_path, {"tokenizer_config.json": data}), "LW-MODEL-040")


def test_gguf_kv_count_overflow(tmp_path: Path) -> None:
    """Huge counts/lengths in GGUF metadata (heap overflows in GGUF readers, CVE-2024-21802 class).
    https://nvd.nist.gov/vuln/detail/CVE-2024-21802"""
    import struct

    bad = b"GGUF" + struct.pack("<IQQ", 3, 1, 1) + struct.pack("<Q", 1 << 60) + b"x"
    res = scan(tmp_path, {"model.gguf": bad})
    assert res[0].verdict is Verdict.UNVERIFIED
    assert "LW-MODEL-039" in {f.rule_id for f in res[0].findings}


# ---------------------------------------------------------------------------------------------- safetensors


def test_safetensors_overlapping_tensors(tmp_path: Path) -> None:
    """Overlapping data offsets: parsers disagree (safetensors validates, others do not).
    https://github.com/ml-explore/mlx/issues/3363 , https://github.com/promptfoo/modelaudit/pull/1607"""
    data = cp.safetensors_file(
        {
            "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
        },
        b"\x00" * 12,
    )
    assert_caught(scan(tmp_path, {"model.safetensors": data}), "LW-MODEL-037")


def test_safetensors_trailing_pickle(tmp_path: Path) -> None:
    """A pickle appended after the tensor data of a safetensors file (polyglot).
    https://github.com/protectai/modelscan/issues/263"""
    data = cp.safetensors_file(
        {"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4 + cp.evil_pickle()
    )
    assert_caught(scan(tmp_path, {"model.safetensors": data}), "LW-MODEL-037")


def test_safetensors_header_length_out_of_bounds(tmp_path: Path) -> None:
    """A header length beyond the file (denial of service / parser confusion).
    https://github.com/ml-explore/mlx/issues/3363"""
    import struct

    data = struct.pack("<Q", 1 << 20) + b'{"a":1}'
    res = scan(tmp_path, {"model.safetensors": data})
    assert res[0].verdict is not Verdict.CLEAN


# ------------------------------------------------------------------------------------------------ torchscript


def test_torchscript_custom_op_and_import(tmp_path: Path) -> None:
    """TorchScript code is compiled and run by torch.jit.load; custom op namespaces and import-like names in
    code/ are reported. https://github.com/pytorch/pytorch/security/advisories/GHSA-53q9-r3pm-6pq6"""
    code = b"def forward(self, x):\n    torch.ops.evil_ns.run_shell(x)\n    return __import__('os')\n"
    files = {
        "ts/data.pkl": cp.benign_pickle(),
        "ts/constants.pkl": b"\x80\x02).",
        "ts/code/__torch__/m.py": code,
        "ts/version": b"3\n",
    }
    res = scan(tmp_path, {"model.pt": cp.zip_of(files, zipfile.ZIP_STORED)})
    assert_caught(res, "LW-MODEL-031")


def test_bomb_member_does_not_hide_payload(tmp_path: Path) -> None:
    """A zip bomb member next to the payload: the bound is named and the payload is still found.
    https://www.bamsoftware.com/hacks/zipbomb/"""
    bomb = cp.zip_of({"z.bin": b"\x00" * (16 << 20)})
    res = scan(
        tmp_path, {"bundle.zip": cp.zip_of({"a.zip": bomb, "b/model.pt": cp.torch_zip(cp.evil_pickle())})}
    )
    assert res[0].verdict is Verdict.UNVERIFIED
    assert "max_decompression_ratio" in (res[0].reason or "")
    assert_payload(res)


# ------------------------------------------------------------------------------------ the whole corpus


@pytest.mark.parametrize("case", sorted(cp.malicious_corpus()))
def test_every_corpus_case_is_caught(tmp_path: Path, case: str) -> None:
    """Every case of the corpus the benchmark runs (also those with a test of their own above): never clean,
    and at least one HIGH finding."""
    assert_caught(scan(tmp_path, cp.malicious_corpus()[case]))


@pytest.mark.parametrize(
    "case", sorted(c for c in cp.loader_differential_cases() if c.startswith(("joblib_", "polyglot_", "np")))
)
def test_loader_differential_payloads_are_the_payload(tmp_path: Path, case: str) -> None:
    """Bytes that one loader runs and another skips: the os.system payload itself is found, not an anomaly."""
    assert_payload(scan(tmp_path, cp.loader_differential_cases()[case]))
