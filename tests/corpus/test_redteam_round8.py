"""Round 8 of the internal red team: archive extraction through the archive's own links (Keras' get_file /
extract_archive), GGUF readers' sanity checks, and formats loaders read that the scanner may not look into.

Each case is built as bytes here and only scanned; where a loader's behaviour is the point, the loader itself (the
standard library's ``tarfile``) is run on the case in a temporary folder, never on a file outside it.
"""

from __future__ import annotations

import contextlib
import io
import json
import tarfile
from pathlib import Path

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

# ---------------------------------------------------------------- tar: escaping through the archive's own links

_Member = tuple[str, str, str | bytes]  # (name, "file" | "sym" | "hard", data or link target)


def _tar(members: list[_Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:") as t:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(value, bytes)
                info.size = len(value)
                t.addfile(info, io.BytesIO(value))
                continue
            assert isinstance(value, str)
            info.type = tarfile.SYMTYPE if kind == "sym" else tarfile.LNKTYPE
            info.linkname = value
            t.addfile(info)
    return buf.getvalue()


_THROUGH_LINKS: dict[str, list[_Member]] = {
    # a -> . and a/b -> .. (read as text: a/.. is the folder) put b in the folder's parent
    "file-under-chained-link": [("a", "sym", "."), ("a/b", "sym", ".."), ("b/evil.txt", "file", b"x")],
    # the same, the file written through a link whose own name and target read as inside
    "file-through-link-in-link-folder": [
        ("d", "sym", "sub"),
        ("sub/up", "sym", ".."),
        ("d/up/up2", "sym", ".."),
        ("up2/evil.txt", "file", b"x"),
    ],
    # a link whose target passes through the chained link: c -> a/b/../x is c -> x as text
    "link-target-through-link": [("a", "sym", "."), ("a/b", "sym", ".."), ("c", "sym", "a/b/../x")],
    # a hard link (named from the top) through links: keras PR 22973 checked hard links' targets as text
    "hard-link-through-link": [("a", "sym", "."), ("a/b", "sym", ".."), ("h", "hard", "b/x")],
}


def _extract(data: bytes, dest: Path) -> set[str]:
    """What ``tarfile`` writes outside ``dest`` when it trusts the archive (Keras before 3.14 on the Pythons
    whose tarfile has no data filter), as names relative to ``dest``'s parent."""
    dest.mkdir(parents=True)
    before = {p.name for p in dest.parent.iterdir()}
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        for m in t.getmembers():
            with contextlib.suppress(OSError):  # a hard link to a file that does not exist
                t.extract(m, dest, filter="fully_trusted")
    return {p.name for p in dest.parent.iterdir()} - before - {dest.name}


@pytest.mark.parametrize("case", sorted(_THROUGH_LINKS))
def test_tar_member_escaping_through_the_archives_links_is_high(tmp_path: Path, case: str) -> None:
    """GHSA-hqp4-2352-xf5r / keras PR 23015: Keras' extraction check resolved member paths as text before any
    link existed, so ``a -> .`` and ``a/b -> ..`` (both inside as text) sent later members to the folder's
    parent. Only LOW link notes were reported."""
    data = _tar(_THROUGH_LINKS[case])
    res = scan_files(tmp_path / "scan", {"model.tar": data})
    assert_caught(res)
    assert {f.rule_id for f in res[0].findings if f.severity is Severity.HIGH} <= {
        "LW-MODEL-027",
        "LW-MODEL-028",
    }


@pytest.mark.parametrize("case", ["file-under-chained-link", "file-through-link-in-link-folder"])
def test_tar_escape_through_links_is_what_tarfile_does(tmp_path: Path, case: str) -> None:
    """The cases are real: extracted by ``tarfile`` without its data filter, a file lands outside the folder."""
    assert _extract(_tar(_THROUGH_LINKS[case]), tmp_path / "box" / "out") != set()


_BENIGN_LINKS: dict[str, list[_Member]] = {
    "latest-version": [("v1/model.txt", "file", b"x"), ("latest", "sym", "v1")],
    "dot-prefixed": [("v1/model.txt", "file", b"x"), ("current", "sym", "./v1/model.txt")],
    "written-through-a-folder-link": [("data", "sym", "shards"), ("data/part0.txt", "file", b"x")],
    "sibling-up": [("a/b.txt", "file", b"x"), ("c/d", "sym", "../a/b.txt")],
    "link-to-link-folder": [("s", "sym", "t"), ("t/u.txt", "file", b"x"), ("s2", "sym", "s/u.txt")],
    "hard-link-to-a-member": [("a/b.txt", "file", b"x"), ("l", "sym", "a"), ("h", "hard", "l/b.txt")],
}


@pytest.mark.parametrize("case", sorted(_BENIGN_LINKS))
def test_tar_links_that_stay_inside_stay_low(tmp_path: Path, case: str) -> None:
    data = _tar(_BENIGN_LINKS[case])
    res = scan_files(tmp_path / "scan", {"model.tar": data})
    assert res[0].max_severity() is Severity.LOW, res[0].findings
    assert _extract(data, tmp_path / "box" / "out") == set()


# ------------------------------------------------------------------ Keras 3 checkpoints written through Orbax

_BENIGN_KERAS = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "sequential",
        "trainable": True,
        "dtype": {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}},
        "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 3]}},
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {
                    "name": "dense",
                    "units": 5,
                    "activation": "relu",
                    "kernel_initializer": {
                        "module": "keras.initializers",
                        "class_name": "GlorotUniform",
                        "config": {"seed": None},
                        "registered_name": None,
                    },
                },
                "registered_name": None,
                "build_config": {"input_shape": [None, 3]},
            },
        ],
    },
    "registered_name": None,
    "compile_config": {"loss": "mse", "optimizer": "adam", "metrics": ["mae"]},
}

_ORBAX_FILES = ("2/model_config/_strings.json", "2/model_config/data.json")
"""Where Orbax writes the ``model_config`` checkpointable of Keras' OrbaxCheckpoint callback ({"config": <the model
config as a JSON string>}): its PyTree handler puts string leaves in ``_strings.json`` (orbax
experimental/v1/_src/serialization/string_leaf_handler.py), its JSON handler writes ``data.json`` (json_handler.py).
``keras.saving.load_model(<checkpoint folder>)`` reads ``["model_config"]["config"]`` and builds the model from it
(keras/src/saving/saving_api.py, _load_model_from_orbax_checkpoint)."""


def _orbax(config: object) -> bytes:
    return json.dumps({"config": json.dumps(config)}).encode()


@pytest.mark.parametrize("where", _ORBAX_FILES)
@pytest.mark.parametrize(
    ("payload", "rule"),
    [
        (cp.keras_lambda_config(), "LW-MODEL-032"),
        (cp.keras_module_injection_config(), "LW-MODEL-033"),
        (cp.keras_get_file_config(), "LW-MODEL-033"),
        (cp.keras_lookup_path_config(), "LW-MODEL-033"),
        (
            {"module": "keras.layers", "class_name": "TFSMLayer", "config": {"filepath": "/srv/models/sm"}},
            "LW-MODEL-033",
        ),
    ],
    ids=["lambda", "module-injection", "get-file", "lookup-path", "tfsmlayer"],
)
def test_keras_config_in_an_orbax_checkpoint_is_judged(
    tmp_path: Path, where: str, payload: dict[str, object], rule: str
) -> None:
    """The model config of a Keras 3 Orbax checkpoint is a JSON string inside Orbax's JSON file: it was never
    parsed, so a Lambda layer or an imported module there was clean."""
    res = scan_files(tmp_path, {where: _orbax(payload)})
    assert_caught(res, rule, at_least=Severity.MEDIUM)


@pytest.mark.parametrize(
    "doc",
    [
        {"config": json.dumps(_BENIGN_KERAS)},
        {"config": "default"},
        {"config": "{not json"},
        {"config": json.dumps({"learning_rate": 0.01, "batch_size": 32})},
        {"config": json.dumps([1, 2])},
    ],
    ids=["keras-sequential", "plain-string", "brace-not-json", "hparams", "list"],
)
def test_benign_config_strings_stay_clean(tmp_path: Path, doc: dict[str, object]) -> None:
    res = scan_files(tmp_path, {"2/model_config/_strings.json": json.dumps(doc).encode()})
    assert res[0].verdict is Verdict.CLEAN, res[0]


# ----------------------------------------------------------------- GGUF vocabularies as llama.cpp indexes them

gguf = pytest.importorskip("gguf")
np = pytest.importorskip("numpy")

_Vocab = dict[str, object]


def _spm_vocab() -> _Vocab:
    """An ordinary SentencePiece (llama) vocabulary as convert_hf_to_gguf writes it: control tokens, the 256 byte
    tokens, then words."""
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *(f"▁w{i}" for i in range(64))]
    types = [2, 3, 3, *([6] * 256), *([1] * 64)]
    return {
        "model": "llama",
        "tokens": tokens,
        "scores": [0.0] * len(tokens),
        "types": types,
        "ids": {"bos": 1, "eos": 2, "unk": 0, "pad": 0},
        "block_count": 32,
        "tensors": ["token_embd.weight", "output.weight"],
    }


def _write_gguf(path: Path, v: _Vocab) -> Path:
    """A GGUF written by gguf-py (the writer llama.cpp's converters use) with the vocabulary ``v``."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(v["block_count"])
    w.add_tokenizer_model(v["model"])
    if v["tokens"] is not None:
        w.add_token_list(v["tokens"])
    scores = v["scores"]
    if isinstance(scores, tuple):  # (value type, values): an array the converters would not write
        w.add_key_value("tokenizer.ggml.scores", scores[1], gguf.GGUFValueType.ARRAY, sub_type=scores[0])
    elif scores is not None:
        w.add_token_scores(scores)
    types = v["types"]
    if isinstance(types, tuple):
        w.add_key_value("tokenizer.ggml.token_type", types[1], gguf.GGUFValueType.ARRAY, sub_type=types[0])
    elif types is not None:
        w.add_token_types(types)
    for name, tid in v["ids"].items():
        getattr(w, f"add_{name}_token_id")(tid)
    for name in v["tensors"]:
        w.add_tensor(name, np.zeros(32, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    old, new = v.get("patch", (b"", b""))
    if old:  # what gguf-py refuses to write, patched in after (the same length)
        path.write_bytes(path.read_bytes().replace(old, new))
    return path


def _plamo2(text: str) -> _Vocab:
    v = _spm_vocab()
    v["model"] = "plamo2"
    v["tokens"][3 + 0xFF] = text
    return v


def _with(**changes: object) -> _Vocab:
    v = _spm_vocab()
    v.update(changes)
    return v


_BAD_VOCABS: dict[str, _Vocab] = {
    # llama.cpp PR 25969 / issue 27226: stoi("-1", 16) indexes PLaMo-2's 256-entry byte table at -1 (a write)
    "byte-token-negative": _plamo2("<0x-1>"),
    "byte-token-negative-f": _plamo2("<0x-f>"),
    "byte-token-not-hex": _plamo2("<0xZZ>"),
    # llama.cpp PR 20735: scores / token types indexed by token id without checking their length
    "scores-short": _with(scores=[0.0] * 100),
    "types-short": _with(types=[1] * 10),
    # llama.cpp issue 24888 / PR 26690: the array's data cast to float32 / int32 whatever its element type
    "scores-uint8": _with(scores=(gguf.GGUFValueType.UINT8, [0] * 323)),
    "types-uint8": _with(types=(gguf.GGUFValueType.UINT8, [1] * 323)),
    # GHSA-g4cc-763q-h9h6, llama.cpp PR 25475: a special-token id past the vocabulary
    "eos-out-of-range": _with(ids={"bos": 1, "eos": 4000}),
    "pad-out-of-range": _with(ids={"bos": 1, "eos": 2, "pad": 323}),
    # llama.cpp PR 25508: no ids given, and a vocabulary smaller than the tokenizer's default ids
    "tiny-gpt2-vocab": _with(model="gpt2", tokens=["a", "b", "c"], scores=None, types=None, ids={}),
    # llama.cpp PR 25821 / 26051: block_count past LLAMA_MAX_LAYERS wrote past the per-layer arrays
    "block-count": _with(block_count=1024),
    # gguf.cpp refuses duplicate tensor names; readers that do not keep the first or the last
    "duplicate-tensor": _with(
        tensors=["token_embd.weight", "token_embd.weighX"], patch=(b"token_embd.weighX", b"token_embd.weight")
    ),
}


@pytest.mark.parametrize("case", sorted(_BAD_VOCABS))
def test_gguf_vocabulary_that_llama_cpp_reads_out_of_bounds_is_reported(tmp_path: Path, case: str) -> None:
    """Vocabulary metadata that llama.cpp's loader indexed past a buffer (or wrote before one) was clean: the
    reader checked the GGUF structure but not what the vocabulary loader does with it."""
    res = scan_paths([str(_write_gguf(tmp_path / "model.gguf", _BAD_VOCABS[case]))], jobs=1).targets[0]
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-039"]
    assert hits, res
    assert res.verdict is Verdict.FINDINGS


_GOOD_VOCABS: dict[str, _Vocab] = {
    "spm": _spm_vocab(),
    "spm-lowercase-hex": _with(
        tokens=[t.lower() if t.startswith("<0x") else t for t in _spm_vocab()["tokens"]]
    ),
    "gpt2-no-scores": _with(
        model="gpt2",
        tokens=[chr(0x21 + i) for i in range(200)],
        scores=None,
        types=[1] * 200,
        ids={"bos": 11, "eos": 11},
    ),
    # a word that merely looks like a byte token, typed as a normal token
    "byte-lookalike-word": _with(tokens=[*_spm_vocab()["tokens"][:-1], "<0xZZ>"]),
    "no-token-ids": _with(ids={}),
    "no-vocabulary": _with(tokens=None, scores=None, types=None, ids={}, model="none"),
}


@pytest.mark.parametrize("case", sorted(_GOOD_VOCABS))
def test_ordinary_gguf_vocabularies_stay_clean(tmp_path: Path, case: str) -> None:
    path = _write_gguf(tmp_path / "model.gguf", _GOOD_VOCABS[case])
    reader = gguf.GGUFReader(str(path))  # the file is what gguf-py reads back
    tokens = _GOOD_VOCABS[case]["tokens"]
    field = reader.fields.get("tokenizer.ggml.tokens")
    assert (field is None) if tokens is None else len(field.data) == len(tokens)
    res = scan_paths([str(path)], jobs=1).targets[0]
    assert res.verdict is Verdict.CLEAN, res


# ------------------------------------------------------- torch.package: the archive's own source for known modules

torch = pytest.importorskip("torch")


def _torch_package(
    path: Path, sources: dict[str, str], obj: object = None, extern: bytes | None = None
) -> Path:
    """A torch.package archive written by PackageExporter (a tensor, so a .data/<key>.storage record too), then
    given ``sources`` (archive paths under its root -> Python source), ``obj`` as its pickle and ``extern`` as its
    extern_modules record."""
    import pickle
    import zipfile

    from torch.package import PackageExporter

    base = path.with_suffix(".base")
    with PackageExporter(str(base)) as pe:
        pe.save_pickle("model", "model.pkl", {"w": torch.zeros(2)})
    root = base.stem
    with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w") as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("model/model.pkl") and obj is not None:
                data = pickle.dumps(obj, protocol=2)
            elif info.filename.endswith(".data/extern_modules") and extern is not None:
                data = extern
            out.writestr(info.filename, data)
        for name, text in sources.items():
            out.writestr(f"{root}/{name}", text)
    return path


_SHADOW = "open('ran', 'w').write('yes')\nOrderedDict = dict\n"

_SHADOWING: dict[str, dict[str, str]] = {
    "stdlib-module": {"collections.py": _SHADOW},
    "stdlib-package": {"collections/__init__.py": _SHADOW},
    "stdlib-submodule": {"json/decoder.py": _SHADOW},
    "ml-package": {"numpy/__init__.py": _SHADOW},
    "ml-submodule": {"sklearn/tree/_classes.py": _SHADOW},
}


@pytest.mark.parametrize("case", sorted(_SHADOWING))
def test_torch_package_source_for_a_known_module_is_high(tmp_path: Path, case: str) -> None:
    """PackageImporter imports every module a pickle names from the archive first (extern or not): the archive's
    collections.py runs for a pickle that names only collections.OrderedDict, which the allow-list trusts. Clean
    before."""
    from collections import OrderedDict

    path = _torch_package(tmp_path / "model.pt", _SHADOWING[case], OrderedDict(a=1))
    res = scan_paths([str(path)], jobs=1).targets[0]
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-006" and f.severity is Severity.HIGH]
    assert hits and all(f.location.member and f.location.member.endswith(".py") for f in hits), res


def test_torch_package_shadowing_is_what_package_importer_runs(tmp_path: Path) -> None:
    """The case is real: loaded by torch.package in a child process (in tmp_path), the archive's collections.py
    runs although extern_modules names collections."""
    import subprocess
    import sys
    from collections import OrderedDict

    path = _torch_package(
        tmp_path / "model.pt", {"collections.py": _SHADOW}, OrderedDict(a=1), b"collections\n"
    )
    code = (
        f"from torch.package import PackageImporter as P; P({str(path)!r}).load_pickle('model', 'model.pkl')"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, timeout=300, check=False)
    assert (tmp_path / "ran").exists()


def test_ordinary_torch_packages_stay_clean_or_report_their_own_classes(tmp_path: Path) -> None:
    """A package of tensors is clean (its .data/<key>.storage records are raw tensor bytes, once unverified); a
    package's own module (not a known one) is reported only where a pickle names it (LW-MODEL-006, medium)."""
    plain = _torch_package(tmp_path / "plain.pt", {})
    own = _torch_package(tmp_path / "own.pt", {"mymodels/net.py": "class Net:\n    pass\n"})
    res = scan_paths([str(plain), str(own)], jobs=1).targets
    assert [r.verdict for r in res] == [Verdict.CLEAN, Verdict.CLEAN], res


# ------------------------------------------------------------------- Keras weights: HDF5 datasets as shape bombs

h5py = pytest.importorskip("h5py")

_BOMBS: dict[str, dict[str, object]] = {
    # keras PR 22975's own case: ~8 PiB declared, chunked and gzip-compressed, nothing written
    "chunked-gzip": {"shape": (2**50,), "dtype": "float64", "chunks": (1024,), "compression": "gzip"},
    "chunked-2d": {"shape": (1 << 20, 1 << 20), "dtype": "float32", "chunks": (64, 64)},
    # contiguous, never written: h5py allocates its storage late, so the file stores nothing
    "contiguous-unwritten": {"shape": (1 << 31, 4), "dtype": "float32"},
}


def _weights_h5(path: Path, bomb: dict[str, object] | None) -> Path:
    """A Keras 3 ``model.weights.h5`` layout (layers/<name>/vars/<i>), one variable replaced by ``bomb``."""
    with h5py.File(path, "w") as f:
        g = f.create_group("layers/dense/vars")
        g.create_dataset("1", data=np.zeros(5, dtype="float32"))
        if bomb is None:
            g.create_dataset("0", data=np.ones((3, 5), dtype="float32"))
        else:
            g.create_dataset("0", fillvalue=0, **bomb)
    return path


@pytest.mark.parametrize("container", ["h5", "keras"])
@pytest.mark.parametrize("case", sorted(_BOMBS))
def test_hdf5_shape_bomb_is_unverified(tmp_path: Path, case: str, container: str) -> None:
    """GHSA-xfhx-r7ww-5995 / CVE-2026-0897: Keras read a weights dataset that declares terabytes and stores
    nothing into memory; the file was clean. It is now unverified, as a zip bomb is (Keras' own bound)."""
    h5 = _weights_h5(tmp_path / "model.weights.h5", _BOMBS[case])
    assert h5.stat().st_size < 1 << 20
    if container == "keras":
        cfg = {"module": "keras", "class_name": "Sequential", "config": {"layers": []}}
        h5.rename(tmp_path / "w.h5")
        data = cp.zip_of(
            {"config.json": json.dumps(cfg).encode(), "model.weights.h5": (tmp_path / "w.h5").read_bytes()}
        )
        h5 = tmp_path / "model.keras"
        h5.write_bytes(data)
    res = scan_paths([str(h5)], jobs=1).targets[0]
    assert res.verdict is Verdict.UNVERIFIED, res
    assert "shape bomb" in (res.reason or ""), res


def test_ordinary_weights_h5_stays_clean(tmp_path: Path) -> None:
    res = scan_paths([str(_weights_h5(tmp_path / "model.weights.h5", None))], jobs=1).targets[0]
    assert res.verdict is Verdict.CLEAN, res
