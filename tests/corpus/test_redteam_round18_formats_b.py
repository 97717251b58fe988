"""Round 18 of the internal red team (second format pass): dataset and metric loading scripts, and tokenizer
configs that send a loader to files outside the model folder.

Each case is built here and only scanned; where the real loader is installed it is run on the case in a child
process, in the test's folder, to show what it does with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

_MARKER = "r18b-marker"  # relative: the loader runs in the test folder

_SCRIPT = f"""import pathlib
pathlib.Path({_MARKER!r}).write_text("ran")
import datasets


class Builder(datasets.GeneratorBasedBuilder):
    def _info(self):
        return datasets.DatasetInfo(features=datasets.Features({{"a": datasets.Value("int32")}}))

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name="train")]

    def _generate_examples(self):
        yield 0, {{"a": 1}}
""".encode()

_METRIC = f"""import pathlib
pathlib.Path({_MARKER!r}).write_text("ran")
import datasets
import evaluate


class Metric(evaluate.Metric):
    def _info(self):
        features = datasets.Features({{"predictions": datasets.Value("int32"), "references": datasets.Value("int32")}})
        return evaluate.MetricInfo(description="", citation="", features=features)

    def _compute(self, predictions, references):
        return {{"score": 0}}
""".encode()


def _tar(files: dict[str, bytes]) -> bytes:
    out = BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, BytesIO(data))
    return out.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    out = BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


_CSV = b"a,b\n1,2\n"


def _script_cases() -> dict[str, dict[str, bytes]]:
    """A folder's loading script: ``<folder>/<folder>.py``, in every place a loader finds it."""
    return {
        "r18_dataset_script": {"r18_squad/r18_squad.py": _SCRIPT, "r18_squad/train.csv": _CSV},
        "r18_metric_script": {"r18_acc/r18_acc.py": _METRIC},
        # a case-insensitive file system (macOS, Windows) finds R18_Squad.py for the folder r18_squad
        "r18_dataset_script_case": {"r18_squad/R18_Squad.py": _SCRIPT},
        # load_dataset("org/r18_squad") from the Hub cache runs r18_squad.py of the snapshot
        "r18_dataset_script_hub_cache": {
            "datasets--org--r18_squad/snapshots/0123456789abcdef0123456789abcdef01234567/r18_squad.py": _SCRIPT,
            "datasets--org--r18_squad/refs/main": b"0123456789abcdef0123456789abcdef01234567",
        },
        # shipped in an archive: a folder inside it, or the archive's root (extracted to a folder of its name)
        "r18_dataset_script_tar": {"r18_data.tar.gz": _tar({"r18_squad/r18_squad.py": _SCRIPT})},
        "r18_dataset_script_zip_root": {"r18_squad.zip": _zip({"r18_squad.py": _SCRIPT, "train.csv": _CSV})},
    }


_VOCAB = b"[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n"


def _tok_config(**extra: object) -> dict[str, object]:
    return {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512, **extra}


def _tokenizer_cases() -> dict[str, dict[str, bytes]]:
    """A tokenizer_config.json that names a file of the tokenizer: transformers 4.x opens that path instead of the
    folder's file."""

    def folder(config: bytes) -> dict[str, bytes]:
        return {"tokenizer_config.json": config, "vocab.txt": _VOCAB}

    plain = {
        "r18_tok_vocab_file_abs": {"vocab_file": "/home/user/.ssh/id_rsa"},
        "r18_tok_vocab_file_up": {"vocab_file": "../../../../etc/passwd"},
        "r18_tok_merges_file": {"tokenizer_class": "GPT2Tokenizer", "merges_file": "/etc/hosts"},
        "r18_tok_tokenizer_file": {"tokenizer_file": "/srv/other/tokenizer.json"},
        "r18_tok_spm_file": {"tokenizer_class": "T5Tokenizer", "vocab_file": "~/.aws/credentials"},
        "r18_tok_marian_spm": {"tokenizer_class": "MarianTokenizer", "source_spm": "/etc/shadow"},
        # relative to the working folder, not the model folder
        "r18_tok_vocab_file_cwd": {"vocab_file": ".env"},
    }
    cases = {name: folder(json.dumps(_tok_config(**extra)).encode()) for name, extra in plain.items()}
    # the key spelled with a JSON escape, and the file in UTF-16 (json.loads detects it)
    cases["r18_tok_escaped_key"] = folder(
        b'{"tokenizer_class": "BertTokenizer", "vocab\\u005ffile": "/etc/passwd"}'
    )
    cases["r18_tok_utf16"] = folder(json.dumps(_tok_config(vocab_file="/etc/passwd")).encode("utf-16"))
    # inside an archive
    cases["r18_tok_in_tar"] = {
        "r18_tok.tar.gz": _tar(
            {"tok/tokenizer_config.json": json.dumps(_tok_config(vocab_file="/etc/passwd")).encode()}
        )
    }
    return cases


def _state(*names: str) -> bytes:
    """A state.json as datasets' save_to_disk writes it (datasets 2.21.0), with these data file names."""
    state = {
        "_data_files": [{"filename": n} for n in names],
        "_fingerprint": "6bf2268aa75e7a4c",
        "_format_columns": None,
        "_format_kwargs": {},
        "_format_type": None,
        "_output_all_columns": False,
        "_split": None,
    }
    return json.dumps(state, indent=2).encode()


def _datasets_cases() -> dict[str, dict[str, bytes]]:
    """A saved data set whose state.json or dataset_dict.json sends load_from_disk elsewhere."""
    return {
        "r18_ds_state_abs": {"state.json": _state("/home/user/private/data-00000-of-00001.arrow")},
        "r18_ds_state_up": {
            "state.json": _state("data-00000-of-00001.arrow", "../../other/data-00000-of-00001.arrow")
        },
        "r18_ds_state_windows": {"state.json": _state("C:\\Users\\x\\data.arrow")},
        "r18_ds_state_backslash_up": {"state.json": _state("..\\other\\data.arrow")},
        "r18_ds_dict_split_up": {"dataset_dict.json": b'{"splits": ["train", "../other"]}'},
        "r18_ds_dict_split_abs": {"dataset_dict.json": b'{"splits": ["/srv/private_ds"]}'},
        "r18_ds_state_in_tar": {"r18_ds.tar.gz": _tar({"ds/train/state.json": _state("/etc/x.arrow")})},
    }


def bench_cases() -> dict[str, dict[str, bytes]]:
    return {**_script_cases(), **_tokenizer_cases(), **_datasets_cases()}


def _scan(path: Path) -> TargetResult:
    return next(iter(scan_paths([str(path)], jobs=1).targets))


def _write(root: Path, files: dict[str, bytes]) -> list[Path]:
    paths = []
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def _script_file(paths: list[Path]) -> Path:
    return next(p for p in paths if p.suffix in (".py", ".gz", ".zip"))


@pytest.mark.parametrize("case", sorted(_script_cases()))
def test_loading_script_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round every one of these scanned ``clean``: a ``.py`` file was judged only as TorchScript code
    or ``custom_generate/generate.py``. ``evaluate.load(folder)`` imports ``<folder>/<folder>.py`` with no opt-in
    (confirmed with evaluate 0.4.6 in a scratch virtualenv: the script wrote its marker file), and
    ``datasets.load_dataset(folder)`` runs it (confirmed with datasets 2.19.2 with no opt-in, only a warning, and
    with 2.21.0 under ``trust_remote_code=True``). Now the script is reported (LW-MODEL-042, high: code run
    without an opt-in that loopwarden does not analyse)."""
    res = _scan(_script_file(_write(tmp_path, _script_cases()[case])))
    assert res.verdict is Verdict.FINDINGS, res
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-042" and "loading script" in f.message]
    assert len(hits) == 1 and hits[0].severity is Severity.HIGH, res.findings


def test_loading_script_in_a_scanned_folder(tmp_path: Path) -> None:
    """The folder walk reports the script once, under its own name, and leaves the data beside it clean."""
    _write(tmp_path, _script_cases()["r18_dataset_script"])
    report = scan_paths([str(tmp_path / "r18_squad")], jobs=1)
    verdicts = {Path(t.path).name: t.verdict for t in report.targets}
    assert verdicts == {"r18_squad.py": Verdict.FINDINGS, "train.csv": Verdict.CLEAN}, verdicts


_BENIGN_PY = {
    # helpers beside a model or data set that no loader imports by name
    "model/modeling_foo.py": b"import torch\n",
    "r18_squad/utils.py": b"import os\n",
    "r18_squad/sub/r18_squad_utils.py": b"value = 1\n",
    "pkg/__init__.py": b"",
    # a model repository's cache: only a dataset repository's script is loaded by its name
    "models--org--foo/snapshots/0123456789abcdef0123456789abcdef01234567/bar.py": b"value = 1\n",
    "custom_generate/helper.py": b"value = 1\n",
}


@pytest.mark.parametrize("name", sorted(_BENIGN_PY))
def test_other_python_files_stay_clean(tmp_path: Path, name: str) -> None:
    (path,) = _write(tmp_path, {name: _BENIGN_PY[name]})
    res = _scan(path)
    assert res.verdict is Verdict.CLEAN, res


def _loader(tmp_path: Path, code: str) -> bool:
    marker = tmp_path / _MARKER
    subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        timeout=300,
        check=False,
        env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path)},
    )
    return marker.exists()


def test_evaluate_runs_the_metric_script(tmp_path: Path) -> None:
    pytest.importorskip("evaluate")
    _write(tmp_path, _script_cases()["r18_metric_script"])
    assert _loader(tmp_path, "import evaluate; evaluate.load('./r18_acc')")


def test_datasets_runs_the_loading_script(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    if int(datasets.__version__.split(".")[0]) >= 4:
        pytest.skip("datasets 4 dropped loading scripts")
    _write(tmp_path, _script_cases()["r18_dataset_script"])
    assert _loader(tmp_path, "import datasets; datasets.load_dataset('./r18_squad', trust_remote_code=True)")


@pytest.mark.parametrize("case", sorted(_tokenizer_cases()))
def test_tokenizer_config_file_path_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round each of these scanned ``clean``. transformers 4.x merged the folder's resolved files into
    the tokenizer's kwargs only for names the config did not set, so a config's ``vocab_file`` (``merges_file``,
    ``tokenizer_file``, ``source_spm`` ...) was opened verbatim: confirmed with transformers 4.57.1 in a scratch
    virtualenv, where ``AutoTokenizer.from_pretrained`` and ``BertTokenizer.from_pretrained`` read the lines of a
    file outside the folder into the vocabulary (transformers 5.24 lets the folder's file win). Now LW-MODEL-052,
    high."""
    files = _tokenizer_cases()[case]
    paths = _write(tmp_path, files)
    target = next(p for p in paths if p.name != "vocab.txt")
    res = _scan(target)
    assert res.verdict is Verdict.FINDINGS, res
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-052"]
    assert len(hits) == 1 and hits[0].severity is Severity.HIGH, res.findings


_BENIGN_TOKENIZER_CONFIGS = {
    # what transformers writes (no file keys), with the nulls older releases wrote
    "bert": _tok_config(),
    "null_tokenizer_file": _tok_config(tokenizer_file=None, vocab_file=None),
    "sizes": _tok_config(vocab_size=30522, vocab_files_names={"vocab_file": "vocab.txt"}, sp_model_kwargs={}),
    "empty": _tok_config(vocab_file=""),
}


@pytest.mark.parametrize("name", sorted(_BENIGN_TOKENIZER_CONFIGS))
def test_benign_tokenizer_configs_stay_clean(tmp_path: Path, name: str) -> None:
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps(_BENIGN_TOKENIZER_CONFIGS[name]))
    res = _scan(path)
    assert res.verdict is Verdict.CLEAN, res


def test_file_keys_elsewhere_stay_clean(tmp_path: Path) -> None:
    """Only transformers' tokenizer config is read for these keys: a model config.json or any other JSON file
    naming a vocab_file is nothing a tokenizer opens."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "bert", "vocab_file": "/data/vocab.txt"}))
    assert _scan(path).verdict is Verdict.CLEAN


def test_transformers_reads_the_named_file(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    if int(transformers.__version__.split(".")[0]) >= 5:
        pytest.skip("transformers 5 takes the folder's file")
    secret = tmp_path / "secret.txt"
    secret.write_text("r18b-secret\n")
    _write(tmp_path / "tok", {"vocab.txt": _VOCAB})
    (tmp_path / "tok" / "tokenizer_config.json").write_text(json.dumps(_tok_config(vocab_file=str(secret))))
    tok = transformers.BertTokenizer.from_pretrained(str(tmp_path / "tok"))
    assert "r18b-secret" in tok.get_vocab()


@pytest.mark.parametrize("case", sorted(_datasets_cases()))
def test_saved_dataset_outside_its_folder_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round each of these scanned ``clean``. ``datasets.load_from_disk`` joins each state.json data
    file name and each dataset_dict.json split to the folder: confirmed with datasets 2.21.0 in a scratch
    virtualenv, where an absolute ``filename``, a ``../other/...`` one and a split ``../other`` loaded another
    data set's rows. Now LW-MODEL-052, high."""
    ((name, data),) = _datasets_cases()[case].items()
    path = tmp_path / name
    path.write_bytes(data)
    res = _scan(path)
    assert res.verdict is Verdict.FINDINGS, res
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-052"]
    assert len(hits) == 1 and hits[0].severity is Severity.HIGH, res.findings


_BENIGN_SAVED = {
    "state.json": _state("data-00000-of-00002.arrow", "data-00001-of-00002.arrow"),
    "dataset_dict.json": b'{"splits": ["train", "test", "validation"]}',
}


@pytest.mark.parametrize("name", sorted(_BENIGN_SAVED))
def test_saved_dataset_files_stay_clean(tmp_path: Path, name: str) -> None:
    """What save_to_disk writes (datasets 2.21.0), and an unrelated state.json of the same name."""
    path = tmp_path / name
    path.write_bytes(_BENIGN_SAVED[name])
    assert _scan(path).verdict is Verdict.CLEAN
    other = tmp_path / "other" / "state.json"
    other.parent.mkdir()
    other.write_text(json.dumps({"_data_files": "/abs/path", "step": 3, "filename": "/tmp/x"}))
    assert _scan(other).verdict is Verdict.CLEAN


def test_real_saved_dataset_stays_clean(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"a": [1, 2]})}).save_to_disk(
        str(tmp_path / "dd")
    )
    report = scan_paths([str(tmp_path / "dd")], jobs=1)
    json_files = [t for t in report.targets if t.path.endswith(".json")]
    assert json_files and all(t.verdict is Verdict.CLEAN for t in json_files), json_files
