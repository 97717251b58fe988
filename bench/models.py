"""Model-scanner benchmark: loopwarden against picklescan, modelscan, fickling and modelaudit on the same
files.

Generates under bench/_work/models/ (once; reused):
  big/      >= 3 GB of PyTorch checkpoints (torch.save if torch is installed, else the same zip layout by
  code)
  small/    >= 2,000 small benign model files of mixed formats
  bad/      the malicious corpus (tests/corpus builders: container attacks + the pickle gadget list)
  reps/     one benign representative per format (false-positive check with one invocation per file)
Installs the four peers from PyPI into bench/_work/peers-venv if missing, runs every tool, prints per tool:
detections, misses, false positives, errors, wall times, GB/s, ratios to the fastest peer and to `cat`, per-
file
invocation medians (process start included), peak memory. The two folders are timed --rounds times per tool,
tools interleaved, and each tool's best is kept (one timing for a tool that takes over 10 s). The last line is
one JSON object.

Run under the shared benchmark lock (`flock LOCKFILE python bench/models.py [--quick]`).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "bench" / "_work"
DATA = WORK / "models"
VENV = WORK / "peers-venv"
LW_VENV = WORK / "lw-venv"
"""loopwarden is installed into its own venv, like the peers, so process start-up is compared like for like.
"""
PEERS = ("picklescan", "modelscan", "fickling", "modelaudit")
TIMEOUT = 1800
REPEAT_UNDER = 10.0

sys.path.insert(0, str(REPO / "tests" / "corpus"))
sys.path.insert(0, str(REPO / "src"))


# --------------------------------------------------------------------------------------------- generation


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def gen_big(target_bytes: int) -> list[Path]:
    d = DATA / "big"
    done = d / ".done"
    if done.exists() and done.read_text() == str(target_bytes):
        return sorted(d.glob("*.pt"))
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    per_file = 256 << 20
    n_files = -(-target_bytes // per_file)
    try:
        import torch

        for i in range(n_files):
            g = torch.Generator().manual_seed(i)
            sd = {
                f"layer{j}.weight": torch.randn(1024, 1024, generator=g) for j in range(per_file // (4 << 20))
            }
            torch.save(sd, d / f"ckpt_{i:02}.pt")
    except ImportError:
        import _container_payloads as cp

        for i in range(n_files):
            _write(
                d / f"ckpt_{i:02}.pt",
                cp.torch_zip(cp.benign_pickle(), extra={"archive/data/1": os.urandom(per_file)}),
            )
    done.write_text(str(target_bytes))
    return sorted(d.glob("*.pt"))


def _benign_makers() -> dict[str, Callable[[Path, int], None]]:
    import io
    import pickle
    import struct

    import numpy as np

    makers: dict[str, Callable[[Path, int], None]] = {}

    def npy(p: Path, i: int) -> None:
        np.save(p.with_suffix(".npy"), np.arange(i % 50 + 1, dtype=np.float32) + i)

    def npz(p: Path, i: int) -> None:
        np.savez(p.with_suffix(".npz"), a=np.ones(i % 20 + 1), b=np.full(3, float(i)))

    def plain_pickle(p: Path, i: int) -> None:
        p.with_suffix(".pkl").write_bytes(
            pickle.dumps({"step": i, "lr": 0.1, "names": ["a", "b"]}, protocol=4)
        )

    def safetensors(p: Path, i: int) -> None:
        hdr = json.dumps(
            {
                "w": {"dtype": "F32", "shape": [i % 8 + 1], "data_offsets": [0, 4 * (i % 8 + 1)]},
                "__metadata__": {"format": "pt", "index": str(i)},
            }
        ).encode()
        p.with_suffix(".safetensors").write_bytes(
            struct.pack("<Q", len(hdr)) + hdr + b"\x00" * 4 * (i % 8 + 1)
        )

    makers.update(npy=npy, npz=npz, pkl=plain_pickle, safetensors=safetensors)
    try:
        import torch

        def pt(p: Path, i: int) -> None:
            torch.save({"w": torch.full((4, 4), float(i)), "b": torch.zeros(4)}, p.with_suffix(".pt"))

        def pt_legacy(p: Path, i: int) -> None:
            torch.save({"w": torch.ones(3) * i}, p.with_suffix(".pth"), _use_new_zipfile_serialization=False)

        def bin_(p: Path, i: int) -> None:
            torch.save({"emb": torch.full((2, i % 5 + 1), float(i))}, p.with_suffix(".bin"))

        makers.update(pt=pt, pt_legacy=pt_legacy, bin=bin_)
    except ImportError:
        pass
    try:
        import joblib
        from sklearn.linear_model import LinearRegression

        x = np.arange(20, dtype=float).reshape(10, 2)
        model = LinearRegression().fit(x, x[:, 0])

        def jl(p: Path, i: int) -> None:
            model.intercept_ = float(i)  # every file distinct
            joblib.dump(model, p.with_suffix(".joblib"), compress=i % 2)

        makers["joblib"] = jl
    except ImportError:
        pass
    try:
        from onnx import TensorProto, helper

        g = helper.make_graph(
            [helper.make_node("Relu", ["x"], ["y"])],
            "g",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        )

        def onnx_(p: Path, i: int) -> None:
            g.name = f"g{i}"  # every file distinct
            p.with_suffix(".onnx").write_bytes(helper.make_model(g).SerializeToString())

        makers["onnx"] = onnx_
    except ImportError:
        pass
    try:
        import gguf

        def gg(p: Path, i: int) -> None:
            w = gguf.GGUFWriter(str(p.with_suffix(".gguf")), "llama")
            w.add_chat_template(
                "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + "
                "'<|im_end|>\\n'}}{% endfor %}"
            )
            w.add_uint32(
                "general.file_index", i
            )  # every file distinct; the template is shared, as in a model family
            w.add_tensor("w", np.zeros(4, np.float32))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()

        makers["gguf"] = gg
    except ImportError:
        pass
    del io
    return makers


def gen_small(n: int) -> tuple[list[Path], dict[str, Path]]:
    d = DATA / "small"
    reps_dir = DATA / "reps"
    done = d / ".done"
    makers = _benign_makers()
    if not (done.exists() and done.read_text() == f"{n} distinct"):
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(reps_dir, ignore_errors=True)
        d.mkdir(parents=True)
        reps_dir.mkdir(parents=True)
        kinds = sorted(makers)
        for i in range(n):
            kind = kinds[i % len(kinds)]
            makers[kind](d / f"{kind}_{i:05}", i)
        for kind in kinds:
            makers[kind](reps_dir / f"rep_{kind}", 7)
        done.write_text(f"{n} distinct")
    for old in reps_dir.glob("rep_round*"):  # the sweeps' files are written anew each run
        old.unlink()
    for name, data in _benign_from_tests().items():
        _write(reps_dir / f"rep_{name}", data)
    files = sorted(p for p in d.iterdir() if p.is_file() and p.name != ".done")
    reps = {p.stem.removeprefix("rep_"): p for p in sorted(reps_dir.iterdir())}
    return files, reps


_BENIGN_MODULES: tuple[str, ...] = ("test_benign_round18", "test_benign_round19")
"""Benign-sweep test modules whose ``bench_benign()`` gives real-shaped benign files that a round made clean."""


def _benign_from_tests() -> dict[str, bytes]:
    """More benign representatives: the files of each benign sweep that scanned unverified or with findings before
    its fix (``bench_benign()``: file name -> bytes), named ``<module>_<file>``."""
    import importlib

    out: dict[str, bytes] = {}
    for module in _BENIGN_MODULES:
        try:
            files = importlib.import_module(module).bench_benign()
        except (ImportError, AttributeError) as exc:
            print(f"note: benign files of {module} not available ({exc})", file=sys.stderr)
            continue
        tag = module.removeprefix("test_benign_")
        for name, data in files.items():
            # the representatives are keyed by stem: a.pkl and a.joblib must not share one
            stem, dot, suffix = name.rpartition(".")
            out[f"{tag}_{stem}_{suffix}.{suffix}" if dot else f"{tag}_{name}"] = data
    return out


def gen_bad() -> dict[str, Path]:
    import _container_payloads as cp

    d = DATA / "bad"
    shutil.rmtree(d, ignore_errors=True)
    out: dict[str, Path] = {}
    for case, files in cp.malicious_corpus().items():
        for name, data in files.items():
            _write(d / case / name, data)
            out[case] = d / case / name
    try:
        import test_pickle_bypasses as tpb

        for advisory, module, name, arg_ops in tpb._PICKLESCAN_GADGETS:
            data = tpb.call(module, name, *arg_ops)
            case = f"gadget_{advisory}_{module}.{name}"
            _write(d / case / "model.pkl", data)
            out[case] = d / case / "model.pkl"
            case_pt = f"gadget_pt_{advisory}_{module}.{name}"
            _write(d / case_pt / "model.pt", cp.torch_zip(data))
            out[case_pt] = d / case_pt / "model.pt"
    except (ImportError, AttributeError) as exc:
        print(f"note: pickle gadget corpus not available ({exc})", file=sys.stderr)
    try:
        for case, files in _tensorflow_cases().items():
            for name, data in files.items():
                _write(d / case / name, data)
                out[case] = d / case / name
    except (ImportError, AttributeError) as exc:
        print(f"note: TensorFlow corpus not available ({exc})", file=sys.stderr)
    try:
        for case, files in _advisory_cases().items():
            for name, data in files.items():
                _write(d / case / name, data)
                out[case] = d / case / name
    except (ImportError, AttributeError) as exc:
        print(f"note: advisory-sweep corpus not available ({exc})", file=sys.stderr)
    try:
        import test_loader_oracle as oracle

        numpy_cases = {
            "numpy_object_array_short_list": oracle._SHORT_LISTS["three-for-nineteen"],
            "numpy_dtype_state_null_names": oracle._dtype_pickle(oracle._CRASHING_STATES["fields-dict"]),
            "numpy_dtype_field_outside_item": oracle._object_array(
                b"(K\x01t", b"((K\x01Vx\ntl", oracle._BAD_LAYOUTS["field-far-past-the-item"][0]
            ),
            "numpy_datetime_without_metadata": oracle._array_of(
                oracle._KIND_STATES["datetime-without-metadata"][0], 2, 8
            ),
        }
        try:  # a scikit-learn tree whose node array sends predict outside it, as joblib writes it
            import joblib
            import sklearn.tree  # noqa: F401  (the case builder needs it)
        except ImportError as exc:
            print(f"note: scikit-learn tree case not available ({exc})", file=sys.stderr)
        else:
            out_buf = io.BytesIO()
            joblib.dump(oracle._tree_with("child-out-of-range"), out_buf)
            numpy_cases["sklearn_tree_child_out_of_range"] = out_buf.getvalue()
            # forms the first tree check missed: protocol 5 and a node array over 64 KiB, a feature past the
            # tree's, a KDTree index entry past its data (joblib), an ndarray made by NEWOBJ
            numpy_cases["sklearn_tree_protocol5_big_child"] = oracle._tree_pickle(
                oracle._big_tree(), 5, oracle._child_far
            )
            numpy_cases["sklearn_tree_feature_past_last"] = oracle._tree_pickle(
                oracle._tree_with("none"), 4, oracle._feature_far
            )
            numpy_cases["sklearn_kdtree_index_past_data"] = oracle._binary_tree_pickle(
                "kd", "joblib", "index-past-the-data"
            )
        numpy_cases["numpy_ndarray_newobj_short_list"] = oracle._array_without_reconstruct("NEWOBJ")
        try:  # a SciPy CSR matrix whose index reaches 16 GB past its row, as joblib writes it
            import scipy.sparse  # noqa: F401  (the case builder needs it)
        except ImportError as exc:
            print(f"note: SciPy sparse case not available ({exc})", file=sys.stderr)
        else:
            numpy_cases["scipy_sparse_index_past_columns"] = oracle._pickled_forms(
                oracle._bad_sparse("csr-index")
            )[3]
        for case, data in numpy_cases.items():  # memory the file reaches through numpy's __setstate__
            _write(d / case / "model.pkl", data)
            out[case] = d / case / "model.pkl"
    except (ImportError, AttributeError, KeyError) as exc:
        print(f"note: numpy memory-safety corpus not available ({exc})", file=sys.stderr)
    later: list[tuple[str, Callable[[], dict[str, dict[str, bytes]]]]] = [
        ("round-9 red-team", _round9_cases),
        ("round-10 red-team", _round10_cases),
        ("round-11 red-team", _round11_cases),
        ("round-12 red-team", _round12_cases),
        ("round-13 red-team", _round13_cases),
        ("round-14 red-team", _round14_cases),
        ("round-15 red-team", _round15_cases),
        ("round-16 red-team", _round16_cases),
        ("round-17 red-team", _round17_cases),
        ("round-18 red-team", _round18_cases),
        ("round-19 red-team", _round19_cases),
        ("staged-payload", _payloads_kept_for_later),
    ]
    for label, make in later:
        try:
            for case, files in make().items():
                for name, data in files.items():
                    _write(d / case / name, data)
                    out[case] = d / case / name
                if len(files) > 1:  # (a model and the data it names): every tool scans the case's folder
                    out[case] = d / case
        except (ImportError, AttributeError, KeyError, RuntimeError) as exc:
            print(f"note: {label} corpus not available ({exc})", file=sys.stderr)
    return out


def _round9_cases() -> dict[str, dict[str, bytes]]:
    """A few cases of each class the ninth red-team round found clean (tests/corpus/test_redteam_round9_*.py):
    Python code in safetensors, GGUF and ONNX metadata past the length the code check parsed, a pickle after a tar's
    end blocks, mpmath's eval gadgets in the bytes of a joblib array that pickle.load reads as opcodes, chat
    templates that call a list's method held as a value or use a special token as a name, Keras "function"
    objects from non-modelling modules, TorchScript reaching torch.save under other spellings, a sparse tensor index
    past its size and a torch.export graph calling aten.from_file."""
    import json

    import _container_payloads as cp
    import test_redteam_round9_formats as r9f
    import test_redteam_round9_limits as r9l
    import test_redteam_round9_pickle as r9p

    cases: dict[str, dict[str, bytes]] = {}
    for fmt, (name, build) in r9l._METADATA.items():
        cases[f"r9_metadata_code_past_parse_bound_{fmt}"] = {name: build("note", r9l._PADDING + r9l._PROGRAM)}
    cases["r9_tar_member_after_end_blocks"] = {
        "model.tar": r9l._tar({"a.txt": b"hello"})
        + b"\x00" * (2 << 20)
        + r9l._tar({"evil.pkl": cp.evil_pickle()})
    }
    for key in ("mpmath-identify-global", "mpmath-identify-stack-global"):
        payload = r9p._joblib_stream(r9p._pad(r9p._ARRAY_PAYLOADS[key]))
        cases[f"r9_joblib_array_bytes_{key}"] = {"model.joblib": payload}
    for key in ("set-bound-method", "attr-filter-method", "dict-held-method"):
        cases[f"r9_template_mutator_value_{key}"] = r9f._template_config(r9f._MUTATOR_VALUES[key])
    cases["r9_template_special_token_name"] = {
        "tokenizer_config.json": json.dumps(
            {"chat_template": r9f._TOKEN_KEYED["function-globals"], "bos_token": "__globals__"}
        ).encode()
    }
    import test_redteam_round9_torch as r9t

    for key in ("torch-autograd", "builtin-alias", "getattr-torch"):
        body = r9t._SETSTATE + r9t._SPELLINGS[key] + b"    self.training = state[0]\n    return None\n"
        cases[f"r9_torchscript_{key}"] = {"model.pt": r9t._torchscript(body)}
    cases["r9_torch_sparse_coo_index_past_size"] = {"model.pt": r9t._sparse_archive([0, 1 << 34])}
    cases["r9_torch_export_graph_from_file"] = {"model.pt2": r9t._pt2(["torch.ops.aten.from_file.default"])}
    for module, fn in (("keras.datasets.mnist", "load_data"), ("keras.distribution", "initialize")):
        loss = {"module": module, "class_name": "function", "config": fn, "registered_name": "function"}
        cases[f"r9_keras_function_{module}.{fn}"] = {"model.keras": cp.keras_zip(r9f._with_loss(loss))}
    return cases


def _round10_cases() -> dict[str, dict[str, bytes]]:
    """A few cases of each class the tenth red-team round found clean (tests/corpus/test_redteam_round10_*.py,
    test_allowlist_audit_round10.py): chat templates keyed by extra special tokens of any name or walked by the
    chat's own messages, Keras configs that a tar or zip gives their name only once extracted, and pickles that
    reach a callable through a class's getattr forwarding, a statsmodels formula evaluated at load and a native
    handle freed by a wrapper's __del__."""
    import test_allowlist_audit_round10 as r10a
    import test_redteam_round10_formats as r10f
    import test_redteam_round10_templates as r10t
    from test_redteam_pickle import P4, STOP

    cases: dict[str, dict[str, bytes]] = {}
    extra = {**r10t._WALK_NAMES, "k_fmt": "{0.__class__}"}
    for key in ("item-chain", "format-string"):
        cases[f"r10_template_extra_token_{key}"] = r10t._tokenizer_config(r10t._FREE_NAME_KEYED[key], extra)
    cases["r10_template_chat_data_walk"] = r10t._tokenizer_config(r10t._DATA_WALKS["loop-chain"], {})
    config = r10f._not_a_model_config("marker")
    for key in ("trailing-slash-name", "file-written-through-a-link", "through-a-directory-link"):
        cases[f"r10_tar_extracted_name_{key}"] = {
            "model.tar": r10f._tar([*r10f._KERAS_FILES, *r10f._EXTRACTION_CASES[key](config)])
        }
    cases["r10_zip_extracted_name_config_dot"] = {"model.keras": r10f._keras_zip("config.json/.", config)}
    cls, attr, holder = r10a._FORWARDERS["module-_modules-ordered"]
    tail, _ = r10a._TAILS["append"]
    forwarded = P4 + r10a._rebuilt(
        cls, r10a.sdict(**{attr: holder("append", r10a._PLANTED["pattern-class"])})
    )
    cases["r10_pickle_getattr_forwarded_append"] = {"model.pkl": forwarded + tail + STOP}
    cases["r10_pickle_statsmodels_formula"] = {
        "model.pkl": r10a._formula_state(r10a.u(r10a._EVIL_FORMULAS[0]))
    }
    native_cls, state = r10a._NATIVE["xgboost-DMatrix"]
    cases["r10_pickle_native_handle_wrapper"] = {"model.pkl": P4 + r10a._rebuilt(native_cls, state) + STOP}
    return cases


_PACKAGE_EXPORT = """
import sys, torch.package
sys.path.insert(0, sys.argv[2])
import lw_bench_pkg
with torch.package.PackageExporter(sys.argv[1]) as e:
    e.intern("lw_bench_pkg")
    e.save_pickle("model", "model.pkl", lw_bench_pkg.M())
"""


def _round11_cases() -> dict[str, dict[str, bytes]]:
    """A few cases of each class the eleventh round found clean (tests/corpus/test_redteam_round11_*.py): compressed
    sparse tensors whose parts disagree in shape (torch 2.13 crashes or reads past its buffers on matmul or
    to_dense), and a torch.package whose shipped module runs a command when PackageImporter imports it (exported in a
    child process, where exporting runs the harmless command ``true``)."""

    import test_redteam_round11_sparse as r11s

    cases: dict[str, dict[str, bytes]] = {}
    for key in ("csr-crow-short", "csr-few-values", "bsr-block-column-past-blocks"):
        cases[f"r11_sparse_{key}"] = {"model.pt": r11s._file(key)}
    cases["r11_torch_package_shipped_os_system"] = {
        "model.pt": _exported_package("import os\nos.system('true')\n")
    }
    return cases


def _exported_package(payload: str) -> bytes:
    """A torch.package archive whose shipped module runs ``payload`` at import, then defines the pickled model
    (exported in a child process, where exporting runs the payload: keep it harmless)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "lw_bench_pkg"
        src.mkdir()
        (src / "__init__.py").write_text(
            payload
            + "import torch\n\n\nclass M(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
        )
        out = Path(tmp) / "pkg.pt"
        made = subprocess.run(
            [sys.executable, "-c", _PACKAGE_EXPORT, str(out), tmp],
            capture_output=True,
            text=True,
            check=False,
        )
        if made.returncode != 0:
            raise RuntimeError(f"torch.package export failed: {made.stderr[-300:]}")
        return out.read_bytes()


def _round12_cases() -> dict[str, dict[str, bytes]]:
    """A few cases of each class the twelfth round found clean (tests/corpus/test_redteam_round12_fx_private.py):
    torch.fx GraphModules whose code reaches raw memory through torch's private names or builds an unchecked sparse
    tensor (torch.load segfaults in the re-trace), a TorchScript archive whose ``__setstate__`` densifies an
    out-of-range sparse tensor (torch.jit.load segfaults), and allow-listed torch allocators called with sizes
    (memory never filled, accepted by weights_only=True) or raw pointer keywords
    (tests/corpus/test_redteam_round12_rebuilds.py)."""
    import tempfile

    import test_redteam_round12_fx_private as r12

    cases: dict[str, dict[str, bytes]] = {}
    for key in ("from-blob", "storage-set-cdata-on-the-buffer", "free-weak-ref", "sparse-coo-out-of-range"):
        cases[f"r12_fx_{key}"] = {"model.pt": r12._edited(r12._EDITS[key])}
    import test_redteam_round12_rebuilds as r12r

    for key in ("tensor-size-int", "untyped-storage", "tensor-over-untyped-storage"):  # unfilled memory
        cases[f"r12_unfilled_{key}"] = {"model.pkl": r12r._UNFILLED[key]}
    for key in ("tensor-cdata", "untyped-storage-allocator"):  # raw C++ pointers
        cases[f"r12_pointer_{key}"] = {"model.pkl": r12r._POINTERS[key]}
    with tempfile.TemporaryDirectory() as tmp:
        script, out = Path(tmp) / "make_scripted.py", Path(tmp) / "scripted.pt"
        script.write_text(r12._SCRIPTED)
        made = subprocess.run(
            [sys.executable, str(script), str(out)], capture_output=True, text=True, check=False
        )
        if made.returncode != 0:
            raise RuntimeError(f"torch.jit.save failed: {made.stderr[-300:]}")
        cases["r12_torchscript_setstate_sparse"] = {"model.pt": out.read_bytes()}
    return cases


def _round13_cases() -> dict[str, dict[str, bytes]]:
    """Round 13 (tests/corpus/test_redteam_round13_*.py): make_fx GraphModules whose code calls a submodule, which
    torch.load's re-trace under make_fx's PythonKeyTracer runs with its hooks, dangerous callables named by a
    dotted qualname under a parent module (protocol 4 resolves them attribute by attribute), and numpy objects
    changed after their check (an object array's list emptied by a slice SETITEM, a dtype's fields dict moved)."""
    import pickle

    import test_redteam_round13_make_fx as r13
    import test_redteam_round13_pickle as r13p

    cases: dict[str, dict[str, bytes]] = {}
    for key in ("submodule-called", "torch-cond", "max-key"):
        body, imp = r13._parts()
        body["_code"] = r13._with(body["_code"], r13._EDITS[key])
        cases[f"r13_make_fx_{key}"] = {"model.pkl": pickle.dumps(r13._Edited(body, imp), protocol=2)}
    for module, qual, _ in r13p._DOTTED[:3]:
        cases[f"r13_dotted_{module}.{qual}"] = {"model.pkl": r13p._stack_global(module, qual)}
    # numpy objects changed through the memo after the VM checked them (numpy then reads out of bounds)
    cases["r13_numpy_object_list_emptied"] = {
        "array.pkl": r13p._object_array_list_edited(r13p._SLICE_ALL + b"]s")
    }
    cases["r13_numpy_fields_dict_moved"] = {"array.pkl": r13p._fields_dict_moved()[1]}
    return cases


def _round14_cases() -> dict[str, dict[str, bytes]]:
    """Round 14 (tests/corpus/test_redteam_round14_mutation.py): objects changed after the VM checked them, each of
    which then makes numpy, scikit-learn or functools read freed or far memory or call what the pickle chose: a
    structured dtype's field dtype grown by a second BUILD, an array rebuilt under a view, a bytearray grown under
    an array, a ``__setstate__`` stored into a partial's
    ``__dict__`` after its BUILD; round 14b's kept references (test_redteam_round14b_kept.py: a pandas Categorical's
    codes past its categories, a tree appended to a checked forest's ``estimators_``); round 14c's (a pickle in a
    gzip stream with a broken CRC, a zip64 archive behind raw bytes); and Hydra ``_target_`` configs kept as JSON or
    in safetensors metadata."""
    import io
    import json
    import pickle
    import random
    import zipfile

    import _container_payloads as cp
    import test_redteam_round14_mutation as r14
    import test_redteam_round14b_kept as r14b
    import test_redteam_round14c as r14c

    hydra = {"model": {"_target_": "os.system", "command": "id"}}
    pad = bytes(random.Random(14).getrandbits(8) for _ in range(20000))
    buf = io.BytesIO()
    saved = zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP_FILECOUNT_LIMIT = 0  # zipfile then writes the zip64 end record and locator
    try:
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", cp.evil_pickle())
    finally:
        zipfile.ZIP_FILECOUNT_LIMIT = saved
    return {
        # round 14c: a pickle in a gzip stream whose CRC is broken (gzip returns the data before it checks), a
        # zip64 archive behind raw tensor bytes (zipfile opens it)
        "r14c_gzip_broken_crc_pickle": {"model.pkl.gz": r14c._broken_gzip(cp.evil_pickle() + pad)},
        "r14c_zip64_behind_raw_bytes": {"weights.bin": pad[:1024] + buf.getvalue()},
        # round 14b: kept references (pandas codes past the categories, a tree added to a checked forest)
        "r14b_categorical_codes_past_categories": {
            "frame.pkl": pickle.dumps(r14b._categorical_with_codes([0, 1, 1 << 40], "i8"), protocol=2)
        },
        "r14b_tree_appended_to_checked_forest": {"model.pkl": r14b._forest_with_late("append")},
        # Hydra configs read from JSON (Uni2TS, CVE-2026-22584) and from safetensors metadata (FlexTok)
        "r14_hydra_config_json": {"config.json": json.dumps(hydra).encode()},
        "r14_hydra_safetensors_metadata": {
            "model.safetensors": cp.safetensors_file(
                {
                    "__metadata__": {"config": json.dumps(hydra)},
                    "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                },
                b"\x00" * 4,
            )
        },
        "r14_field_dtype_rebuilt": {"array.pkl": r14._structured(r14._GROWN)[1]},
        "r14_array_rebuilt_under_view": {"array.pkl": r14._array_with_view()},
        "r14_bytearray_grown_under_array": {"array.pkl": r14._bytearray_array(r14._GROW)},
        "r14_partial_dict_setstate": {"model.pkl": r14._partial_dict_planted(3)},
    }


def _round15_cases() -> dict[str, dict[str, bytes]]:
    """Round 15: a torch.package module that reaches ``os.system`` through ``os.__getattribute__``
    (tests/corpus/test_round15_pysource.py); Hydra configs in UTF-16 or with an escaped key, a sixth pickle after a
    legacy checkpoint's five or after a MessagePack polyglot's five (a loader calling ``pickle.load`` in a loop
    runs it), a zip whose end record lies at the edge of zipfile's search behind raw data, and a safetensors header
    after JSON whitespace carrying a Hydra config (tests/corpus/test_round15_containers.py; the last three named
    as an ONNX model's external data); and the pickle VM's and the advisory round's misses (below)."""
    import pickle
    import random
    import struct
    import tempfile

    import _container_payloads as cp
    import test_round15_containers as r15c

    hydra = json.dumps({"model": {"_target_": "os.system", "command": "id"}})
    five = cp.torch_legacy([pickle.dumps({}, protocol=2)])[:-32]
    edge = r15c._zip_with_payload()
    edge[-2:] = (65535).to_bytes(2, "little")
    tensor = bytes(random.Random(15).getrandbits(8) for _ in range(1024))
    header = b"  " + b'{"__metadata__":{"config":' + r15c._hydra_metadata() + b"}," + r15c._TENSOR + b"}"
    named = {
        "r15_msgpack_polyglot_sixth_pickle": r15c._stacked_msgpack(5, cp.evil_pickle()),
        "r15_zip_end_record_at_search_edge": tensor + bytes(edge) + b"\x01" * 65536,
        "r15_safetensors_header_after_whitespace": struct.pack("<Q", len(header)) + header + b"\x00" * 4,
    }
    cases: dict[str, dict[str, bytes]] = {
        "r15_torch_package_getattribute": {
            "model.pt": _exported_package("import os\nos.__getattribute__('sys' + 'tem')('true')\n")
        },
        "r15_hydra_config_json_utf16": {"config.json": hydra.encode("utf-16")},
        "r15_hydra_config_json_escaped_key": {
            "config.json": hydra.replace('"_target_"', '"\\u005ftarget_"').encode()
        },
        "r15_legacy_torch_sixth_pickle": {"model.pt": five + cp.evil_pickle()},
    }
    for key, raw in named.items():
        with tempfile.TemporaryDirectory() as tmp:
            cp.onnx_naming_raw_data(Path(tmp), {"weights.bin": raw})
            cases[key] = {f: (Path(tmp) / f).read_bytes() for f in ("weights.bin", "model.onnx")}
    # the pickle VM's round (tests/corpus/test_round15_vm.py): an array allocated by REDUCE that nothing fills
    # (uninitialised memory), a Series whose index is longer than its values (repr reads past them); and a
    # scikit-learn k-means run called while loading with centers narrower than X (it writes past the heap block)
    import numpy as np
    import test_round15_vm as r15v
    from sklearn.cluster import _kmeans

    class _KMeansRun:
        def __reduce__(self) -> tuple[object, tuple[object, ...]]:
            return (_kmeans._kmeans_single_lloyd, (np.full((16, 4096), 7.0), np.ones(16), np.ones((2, 1))))

    cases["r15_ndarray_unfilled_by_reduce"] = {"array.pkl": r15v._UNFILLED["f8"]}
    cases["r15_series_index_longer_than_values"] = {
        "series.pkl": r15v._series_with_a_long_index(np.arange(3, dtype=np.int64))
    }
    cases["r15_kmeans_single_run_called"] = {"model.pkl": pickle.dumps(_KMeansRun(), protocol=4)}
    # state set on an enum member an allowed call hands back (re.RegexFlag(2) is re.IGNORECASE, for the process)
    cases["r15_build_on_a_shared_enum_member"] = {
        "model.pkl": b"\x80\x02cre\nRegexFlag\nK\x02\x85R}X\x07\x00\x00\x00plantedK\x07sb."
    }
    return cases


def _round16_cases() -> dict[str, dict[str, bytes]]:
    """Round 16 (tests/corpus/test_redteam_round16.py and test_redteam_round16_scipy.py): each scanned clean before
    its fix, and its effect was confirmed with the real library in a child process. The enum functional API
    runs a constructor (VitsTokenizer reads the vocabulary path it is given); the rest is state the compiled code
    trusts on load or at first use: a RandomState's MT19937 position, a RegularGridInterpolator's values, an
    NdBSpline's offset table, a HashingVectorizer's and a DictVectorizer's widths, a OneHotEncoder's infrequent
    mapping, a Sobol sampler's dimension count, a k-d tree's child link and a Delaunay triangulation's simplices;
    and (round 16b) a BSpline whose edited state comes as the slot-state half of a ``(state, slotstate)`` pair."""
    import test_redteam_round16 as r16
    import test_redteam_round16_scipy as r16s
    import test_round16b_scipy as r16b
    from scipy.interpolate import LinearNDInterpolator
    from test_pickle_bypasses import sglob, u

    points = r16s._POINTS

    def _split_state(spline: Any) -> bytes:
        """A BSpline with one coefficient for its ten knots, its state given as ``(None, state)``: the slot-state
        half, which the unpickler sets attribute by attribute (the check read plain dict states only)."""
        import copyreg
        import io
        import pickle

        import numpy as np

        state = {**vars(spline), "_c": np.ones(1)}

        class Split(pickle.Pickler):
            def reducer_override(self, obj: Any) -> Any:
                if obj is spline:
                    return (copyreg.__newobj__, (type(obj),), (None, state))
                return NotImplemented

        out = io.BytesIO()
        Split(out, protocol=4).dump(spline)
        return out.getvalue()

    return {
        "r16_enum_functional_api_runs_a_constructor": {
            "model.pkl": r16._enum_functional(
                "enum",
                "Enum",
                sglob("transformers.models.vits.tokenization_vits", "VitsTokenizer"),
                u("../vocab.json"),
            )
        },
        "r16_random_state_position_past_its_key": {"rng.pkl": r16._bad_mt19937_random_state(10**9)},
        "r16_grid_interpolator_values_short_of_its_grid": {"model.pkl": r16._grid_interpolator(6, (2, 2))},
        "r16_nd_spline_offsets_past_its_coefficients": {"spline.pkl": r16._nd_spline("offsets")},
        "r16_hashing_vectorizer_without_features": {"vectorizer.pkl": r16._hashing_vectorizer(0)},
        "r16_dict_vectorizer_column_past_its_vocabulary": {
            "vectorizer.pkl": r16._dict_vectorizer(False, {"f0": 10**8})
        },
        "r16_one_hot_infrequent_mapping_past_its_columns": {"encoder.pkl": r16._one_hot("mapping")},
        "r16_kd_tree_child_link_past_its_nodes": {
            "index.pkl": r16s._edited(lambda state, nodes: r16s._set(nodes, 0, "_less", 10**12))
        },
        "r16_sobol_dimensions_past_its_arrays": {"sampler.pkl": r16b._edited_sobol(d=10**8)},
        "r16_bspline_state_given_as_slot_state": {"spline.pkl": _split_state(r16b._bspline())},
        "r16_delaunay_simplices_past_its_points": {
            "interpolator.pkl": r16s._delaunay_edited(
                LinearNDInterpolator(points, points[:, 0]), r16s._entry("simplices", 10**9)
            )
        },
    }


_ROUND18_MODULES: tuple[str, ...] = (
    "test_redteam_round18_templates",
    "test_advisory_sweep18",
    "test_redteam_round18_formats",
    "test_loader_configs18",
    "test_redteam_round18_torch",
    "test_redteam_round18_formats_b",
    "test_redteam_round18_tf",
    "test_redteam_round18_tokenizers",
    "test_redteam_round18_states",
    "test_redteam_round18_hooks",
)
"""The round-18 test modules; each defines ``bench_cases()`` (case name -> files of its model folder)."""
_ROUND18_NOT_CLEAN_BEFORE: tuple[str, ...] = (
    "r18_arrow_file_py_extension",
    "r18_arrow_legacy_stream_py_extension",
    "r18_arrow_stream_py_extension",
    "r18_feather_py_extension",
    "r18_parquet_as_gif_py_extension",
    "r18_parquet_py_extension",
    "r18_parquet_py_extension_nested",
)
"""Round-18 cases that were unverified (a data file), not clean, before the round: kept out of the benchmark."""


def _round18_cases() -> dict[str, dict[str, bytes]]:
    """Round 18 (the modules of ``_ROUND18_MODULES``): each case scanned clean before its fix and its effect was
    confirmed with the real loader or renderer. Chat templates that walk to Python internals through jinja's helper
    objects (a cycler's current item, a joiner's separator, a mapping passed by position to dict() or namespace(),
    a macro kept in a namespace, dict.update with pairs); a .nemo tar archive holding one path twice with different
    bytes (NeMo extracts the last copy, a first-match reader sees the first); Parquet and Arrow files behind an image
    header or inside a safetensors file (pyarrow reads them from their footer) with a pickled extension type;
    loader configs that make a loader evaluate or import what they name (YOLOv5 layer arguments, mmengine/AllenNLP
    dotted registry types, mmcv's nms type, pyannote pipeline classes) and YAML keys repeated or merged with
    ``<<``, which PyYAML reads as the last or the merged value; TorchScript code moving a sparse tensor's indices
    through a helper's return value, a container, a loop or getattr (the loaded module segfaulted when called), and a
    torch archive whose ``byteorder`` record says big, which makes torch.load byteswap valid indices past the size;
    a folder's loading script (``<folder>/<folder>.py``, which evaluate imports), a tokenizer_config.json naming the
    vocabulary file transformers 4.x opens, and saved datasets naming data outside their folder; TensorFlow graphs
    in protobuf text format (saved_model.pbtxt) and ops a full op sweep found (file writes set by attributes, a
    graph run from a string constant, readers of files the graph names); SentencePiece models whose character-map
    trie or piece length crashes sentencepiece before 0.2.3; SciPy DIA and LIL matrices, sparse states given as
    slot state, and pandas SparseArrays whose parts disagree (compiled code read past its buffers); fused Adam and
    Adagrad optimizers saved whole whose state tensors are smaller than their parameters (step() segfaulted)."""
    return _cases_of_modules(_ROUND18_MODULES, _ROUND18_NOT_CLEAN_BEFORE)


_ROUND19_MODULES: tuple[str, ...] = (
    "test_redteam_round19_tf_onnx",
    "test_redteam_round19_tokenizers",
    "test_redteam_round19_jax_keras",
    "test_benign_round19",
    "test_redteam_round19_torch",
    "test_redteam_round19_configs",
    "test_advisory_sweep19",
    "test_redteam_round19_hyperpyyaml",
    "test_redteam_round19_checkpoints",
    "test_redteam_round19_r_xml",
)
"""The round-19 test modules; each defines ``bench_cases()`` (case name -> files of its model folder)."""
_ROUND19_NOT_CLEAN_BEFORE: tuple[str, ...] = (
    "r19_cpb_split_constants",
    "r19_diffusers_custom-component",
    "r19_diffusers_custom-pipeline",
    "r19_openvino_ir_xxe",
)
"""Round-19 cases that were not clean before the round: a chunked SavedModel over the old in-memory bound, and
diffusers custom code that was medium before and is high now, and an OpenVINO IR whose weights file (zeros) was
unverified before and still is."""


def _round19_cases() -> dict[str, dict[str, bytes]]:
    """Round 19 (the modules of ``_ROUND19_MODULES``): each case scanned clean before its fix and its effect was
    confirmed with the real loader. ONNX EPContext nodes whose context file (embed_mode 0) or TensorRT refit model
    lies outside the model folder (onnxruntime's OpenVINO provider read it); tokenizer.json settings and patterns
    that abort or panic the tokenizers library (padding to 10**12, a truncation stride past its length, nested
    repeats in Split/Replace regexes, broken precompiled charsmaps) and tiktoken rank files that panic tiktoken;
    Orbax and Flax checkpoints naming parameters by absolute paths (restore read another checkpoint's arrays);
    pyarrow nested arrays (list, large list, fixed-size list, struct, nested list) whose offsets run past their
    child (to_pylist segfaulted); QAT fake quantizers whose running ranges are smaller than their weight's channels
    (the fused fake-quantize op corrupted the heap), numpy random states with an index past the key (a trainer's
    resume segfaulted), a RemovableHandle whose id is not an int, a DataLoader keeping a rebuild-only name as its
    collate_fn; diffusers component libraries (imported by name), NeMo Hydra 0.x ``cls`` and nested ``target``
    (imported and called), ESPnet ``model_module`` (imported and called); TorchServe model archives (``.mar``
    zip, tar.gz or folder) whose handler code runs commands (TorchServe imports the handler); HyperPyYAML ``!ref``
    arithmetic that never returns (power towers, huge string repeats); TensorFlow checkpoint state files and
    DeepSpeed ``latest`` tags naming a checkpoint outside the folder, torch.export programs whose guards code or
    symbolic expressions run Python (sympify evaluated them during torch.export.load); R serialized files with
    promises (CVE-2024-27322) or closures calling system(), and XML model files with external entities or DTDs
    (pypmml fetched them)."""
    return _cases_of_modules(_ROUND19_MODULES, _ROUND19_NOT_CLEAN_BEFORE)


def _cases_of_modules(modules: tuple[str, ...], left_out: tuple[str, ...]) -> dict[str, dict[str, bytes]]:
    """The ``bench_cases()`` of each test module, less the cases kept out of the benchmark."""
    import importlib

    out: dict[str, dict[str, bytes]] = {}
    for name in modules:
        out.update(importlib.import_module(name).bench_cases())
    for case in left_out:
        out.pop(case, None)
    return out


def _round17_cases() -> dict[str, dict[str, bytes]]:
    """Round 17 (tests/corpus/test_advisory_sweep17.py, test_redteam_round17_formats.py, _state.py, _torch.py,
    test_round17_bounds.py and test_loader_configs17.py): each scanned clean before its fix, and its effect was
    confirmed with the real loader. Configs that make a loader import or run code: mlx-lm's ``model_file``, PEFT's
    ``auto_mapping`` and ``megatron_core``, a sub-config's ``auto_map`` (vLLM Nemotron-VL, GLiNER's encoder),
    transformers' ``custom_generate/generate.py``, a sentence-transformers Router's ``types``, a LangChain secret
    read from the environment, a LeRobot processor step's class, mmengine's ``custom_imports``, ultralytics'
    evaluated ``activation`` and layer module, fvcore/mmengine bases outside the folder or in Python. Formats: a GGUF
    chat template that transformers' architecture rename brings back, a GGUF template stored as an array, an ONNX
    tensor read from onnxruntime's in-memory address. torch and joblib: a legacy tar pickle after raw storage bytes,
    TorchScript forward code choosing sparse indices (constructor, in place), a deflated sparse index record that
    ``torch.load(mmap=True)`` reads raw, a joblib object array allowing mmap. The pickle VM: k-means' Lloyd run kept
    by a FunctionTransformer or bound by a functools.partial, and base64 text with the '-'/'_' b64decode skips."""
    import pickle
    import tempfile

    import test_advisory_sweep17 as a17
    import test_loader_configs17 as l17
    import test_redteam_round17_formats as r17f
    import test_redteam_round17_state as r17s
    import test_redteam_round17_torch as r17t
    import test_round17_bounds as b17

    def in_tmp(build: Callable[[Path], Any]) -> bytes:
        """The bytes a builder writes to a file in a temporary folder."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.bin"
            build(path)
            return path.read_bytes()

    walk = r17f._WALK
    renamed = in_tmp(lambda path: r17f._gguf(path, "{#qwen3moe", "{#qwen3moe" + walk + "#}hello"))
    with tempfile.TemporaryDirectory() as tmp:
        joblib_mmap = r17t._object_mmap_joblib(Path(tmp), "true")
    adapter = l17._MODULE.encode()
    fvcore_base = next(text for name, text in l17._BASE_CONFIGS if name == "config.yaml")
    mm_python_base = next(text for name, text in l17._BASE_CONFIGS if text.startswith("_base_: /"))
    mm_imports = next(text for name, text in l17._MM_IMPORTS if name == "rtmdet.yaml")
    return {
        # loader configs that import or run code
        "r17_mlx_lm_config_model_file": a17._mlx_folder("custom.py"),
        "r17_peft_adapter_auto_mapping": a17._adapter(
            auto_mapping={"base_model_class": "Model", "parent_library": "lw_adapter_arch"}
        ),
        "r17_peft_adapter_megatron_core": a17._adapter(
            megatron_config={"tensor_model_parallel_size": 1}, megatron_core="lw_adapter_arch"
        ),
        "r17_sub_config_auto_map_other_repo": {"config.json": a17._nemotron_config(a17._VISION_AUTO_MAP)},
        "r17_custom_generate_module": {
            "config.json": b'{"model_type": "llama"}',
            "custom_generate/generate.py": a17._GENERATE.encode(),
        },
        "r17_sentence_transformers_router_types": {
            "modules.json": json.dumps([{"idx": 0, "name": "0", "path": "0", "type": l17._ROUTER}]).encode(),
            "0/router_config.json": json.dumps(l17._router_config({"q": "evil_mod.Evil"})).encode(),
            "evil_mod.py": adapter,
        },
        "r17_langchain_secret_from_environment": {
            "chain.json": json.dumps(l17._lc_prompt(l17._LC_SECRET)).encode()
        },
        "r17_lerobot_processor_step_class": {
            "policy_preprocessor.json": l17._lerobot_pipeline(
                {"class": "subprocess.Popen", "config": {"args": ["touch", "marker"]}}
            )
        },
        "r17_mmengine_custom_imports": {"rtmdet.yaml": mm_imports.encode(), "evil_mm.py": adapter},
        "r17_ultralytics_activation_evaluated": {
            "yolo-custom.yaml": l17._yolo_activation(
                "__import__('os').system('id') or __import__('torch').nn.SiLU()"
            )
        },
        "r17_ultralytics_layer_module_torch_load": {"custom.yaml": l17._yolo_layer_module("torch_load")},
        "r17_gliner_encoder_auto_map": {
            "gliner_config.json": l17._gliner_config("."),
            "evil_mod.py": adapter,
        },
        "r17_fvcore_base_outside_the_folder": {"config.yaml": fvcore_base.encode()},
        "r17_mmengine_python_base_outside_the_folder": {"cfg.yaml": mm_python_base.encode()},
        # formats
        "r17_gguf_template_behind_the_architecture_rename": {"model.gguf": renamed},
        "r17_gguf_template_stored_as_an_array": {"model.gguf": in_tmp(r17f._gguf_template_array)},
        "r17_onnx_external_data_at_ort_memory_address": {
            "model.onnx": r17f._onnx_model("initializer", r17f._ORT_TAG)
        },
        # torch and joblib
        "r17_legacy_tar_pickle_after_raw_storage_bytes": {
            "model.pt": r17t._legacy_tar("storages", r17t._headless_call("true"))
        },
        "r17_torchscript_forward_sparse_constructor": {
            "model.pt": r17t._scripted(r17t._BODIES["constructor"])
        },
        "r17_torchscript_forward_sparse_indices_in_place": {
            "model.pt": r17t._scripted(r17t._BODIES["method"])
        },
        "r17_deflated_sparse_index_record": {"model.pt": r17t._compressed_index_record()},
        "r17_joblib_object_array_allowing_mmap": {"model.joblib": joblib_mmap},
        # the pickle VM
        "r17_function_transformer_keeping_kmeans_run": {
            "model.pkl": pickle.dumps(r17s._transformer_keeping_lloyd(), protocol=4)
        },
        "r17_partial_over_kmeans_run": {
            "loader.pkl": pickle.dumps({"collate_fn": r17s._partial_over_lloyd()}, protocol=4)
        },
        "r17_stored_pickle_base64_dash_underscore": {
            "model.pkl": b17._stored_with_skipped_characters(b17._dash_underscore)
        },
    }


def _payloads_kept_for_later() -> dict[str, dict[str, bytes]]:
    """Payloads a later consumer runs (modelaudit's regression corpus has this class): pickles kept as data inside a
    pickle (raw, base64, hex, zlib, zstd), Python code in safetensors, ONNX and GGUF metadata, a Jinja SSTI in a YAML
    serving config and a chat template calling a Python builtin; with them, a TF1 MetaGraphDef whose graph calls
    Python and a pickle whose frame boundary hides a call from in-memory readers."""
    import base64
    import struct
    import zlib

    import _container_payloads as cp
    import zstandard

    sys.path.insert(0, str(REPO / "tests" / "unit" / "checks" / "models"))
    import test_tensorflow as ttf

    inner = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."

    def holder(value: bytes) -> bytes:  # {"model": "resnet", "payload": <value opcodes>}
        return b"\x80\x04}(\x8c\x05model\x8c\x06resnet\x8c\x07payload" + value + b"u."

    def text(v: str) -> bytes:
        raw = v.encode()
        return b"X" + struct.pack("<I", len(raw)) + raw

    def blob(v: bytes) -> bytes:
        return b"B" + struct.pack("<I", len(v)) + v

    def st(meta: dict[str, str]) -> bytes:
        return cp.safetensors_file(
            {"__metadata__": meta, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\x00" * 4
        )

    def gguf_kv(key: str, value: str) -> bytes:
        k, v = key.encode(), value.encode()
        return struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", len(v)) + v

    ssti = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    pyfunc = ttf.graph(ttf.const("path", "/etc/passwd"), ttf.node("py", "PyFunc", "path"))
    return {
        "stored_pickle_raw": {"model.pkl": holder(blob(inner))},
        "stored_pickle_base64": {"model.pkl": holder(text(base64.b64encode(inner).decode()))},
        "stored_pickle_hex": {"model.pkl": holder(text(inner.hex()))},
        "stored_pickle_zlib": {"model.pkl": holder(blob(zlib.compress(inner)))},
        "stored_pickle_zstd": {"model.pkl": holder(blob(zstandard.ZstdCompressor().compress(inner)))},
        "safetensors_metadata_code": {
            "model.safetensors": st({"format": "pt", "init": "import os; os.system('id')"})
        },
        "onnx_metadata_code": {
            "model.onnx": cp.onnx_model()
            + cp._field(14, cp._field(1, b"postprocess") + cp._field(2, b"import os; os.system('id')"))
        },
        "gguf_metadata_code": {
            "model.gguf": cp.gguf_file(
                None, extra_kv=gguf_kv("general.description", "__import__('os').system('id')"), n_kv_extra=1
            )
        },
        "yaml_config_template_ssti": {"serving.yaml": f'chat_template: "{ssti}"\n'.encode()},
        "chat_template_builtin_getattr": {
            "tokenizer_config.json": json.dumps(
                {"chat_template": "{{ getattr(getattr('', '__class__'), '__mro__')[1].__subclasses__() }}"}
            ).encode()
        },
        # pickle.load(file) runs what a BINBYTES straddling its frame's end hides (python/cpython#154848)
        "pickle_frame_divergence": {
            "model.pkl": b"\x80\x05NV"
            + b"a" * (8192 * 16 - 17)
            + b"\n0(\x95"
            + struct.pack("<Q", 2)
            + b"B\x07\x01\x00\x00\x00\x00"
            + b"cos\nsystem\nVid\n\x85R(".ljust(261, b"N")
            + b"1."
        },
        "tf1_meta_graph_pyfunc": {
            "model.ckpt.meta": ttf._len(1, ttf._len(4, "serve") + ttf._len(5, "1.15.5")) + ttf._len(2, pyfunc)
        },
    }


def _tensorflow_cases() -> dict[str, dict[str, bytes]]:
    """SavedModels whose graph reads or writes files or calls Python (what modelscan's SavedModel scanner looks
    for), built with the wire encoder of the TensorFlow tests: in the graph, in a library function, in a while
    body."""
    sys.path.insert(0, str(REPO / "tests" / "unit" / "checks" / "models"))
    import test_tensorflow as ttf

    path = ttf.const("path", "/etc/passwd")
    cases = {
        "tf_readfile_graph": ttf.graph(path, ttf.node("read", "ReadFile", "path")),
        "tf_writefile_function": ttf.graph(
            functions=(ttf.function("f", ttf.node("w", "WriteFile", "a", "b"), args=("a", "b")),)
        ),
        "tf_eagerpyfunc_function": ttf.graph(
            functions=(ttf.function("g", ttf.node("py", "EagerPyFunc", "x"), args=("x",)),)
        ),
    }
    return {case: {"saved_model.pb": ttf.saved_model(g)} for case, g in cases.items()}


def _advisory_cases() -> dict[str, dict[str, bytes]]:
    """The 2026 advisory sweep's cases that are whole files: every (module, name, arg_ops) gadget its tests are
    parametrized with, as a pickle calling it, and the config-borne attacks (NeMo Hydra targets, skops schemas,
    Keras TFSMLayer, TorchScript file I/O)."""
    import test_advisory_formats as tnm
    import test_advisory_sweep as tas
    import test_pickle_bypasses as tpb

    cases: dict[str, dict[str, bytes]] = {}
    for fn_name in sorted(dir(tas)):
        fn = getattr(tas, fn_name)
        if not fn_name.startswith("test_"):
            continue
        for mark in getattr(fn, "pytestmark", []):
            if mark.name != "parametrize" or tuple(mark.args[0]) != ("module", "name", "arg_ops"):
                continue
            for module, name, arg_ops in mark.args[1]:
                cases[f"sweep_{fn_name[5:45]}_{module}.{name}"] = {
                    "model.pkl": tpb.call(module, name, *arg_ops)
                }
    for key, config in tnm._NEMO_PAYLOADS.items():
        cases[f"nemo_hydra_{key}"] = {"model.nemo": tnm._nemo(config)}
    for key, step in tnm._SKOPS_STEPS.items():
        cases[f"skops_{key}"] = {"model.skops": tnm._skops(step)}
    for key, body in tnm._TS_FILE_IO.items():
        cases[f"torchscript_{key}"] = {"model.pt": tnm._torchscript(body)}
    cases["keras_tfsmlayer"] = {"model.keras": tnm._keras_tfsm("/tmp/attacker_savedmodel", "keras.layers")}
    return cases


# ------------------------------------------------------------------------------------------------- peers


def ensure_loopwarden() -> None:
    """A regular (not editable) install of the working tree, byte-compiled by pip as the peers are."""
    pip = str(LW_VENV / "bin" / "pip")
    if not (LW_VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(LW_VENV)], check=True)
        subprocess.run([pip, "install", "-q", f"{REPO}[keras]"], check=True)
    subprocess.run([pip, "install", "-q", "--no-deps", "--force-reinstall", str(REPO)], check=True)


def ensure_peers() -> dict[str, bool]:
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    have = {}
    for peer in PEERS:
        exe = VENV / "bin" / peer
        if not exe.exists():
            subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", peer], capture_output=True)
        have[peer] = exe.exists()
    return have


def _cmd(tool: str, path: Path) -> list[str]:
    if tool == "loopwarden":
        return [str(LW_VENV / "bin" / "loopwarden"), "scan", "model", str(path), "--format", "json"]
    exe = str(VENV / "bin" / tool)
    if tool == "picklescan":
        return [exe, "--path", str(path)]
    if tool == "modelscan":
        return [exe, "-p", str(path)]
    if tool == "fickling":
        if path.is_dir():  # fickling takes single files: one process checks every file through its API
            code = (
                "import sys, os, fickling\n"
                "bad = 0\n"
                "for root, _, fs in os.walk(sys.argv[1]):\n"
                "    for f in fs:\n"
                "        try:\n"
                "            bad += not fickling.is_likely_safe(os.path.join(root, f))\n"
                "        except Exception:\n"
                "            bad += 1\n"
                "sys.exit(1 if bad else 0)\n"
            )
            return [str(VENV / "bin" / "python"), "-c", code, str(path)]
        return [exe, "--check-safety", str(path)]
    if tool == "modelaudit":
        return [exe, "scan", str(path)]
    raise ValueError(tool)


def run_tool(tool: str, path: Path) -> dict[str, Any]:
    env = {**os.environ, "NO_COLOR": "1", "PROMPTFOO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1"}
    cmd = ["/usr/bin/time", "-f", "__MAXRSS_KB=%M", *_cmd(tool, path)]
    t0 = time.perf_counter()
    try:
        scratch = WORK / "cwd"  # some peers write result files into the working folder
        scratch.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            stdin=subprocess.DEVNULL,
            cwd=scratch,
        )
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired:
        return {"rc": None, "seconds": TIMEOUT, "outcome": "error", "rss_kb": None, "detail": "timeout"}
    dt = time.perf_counter() - t0
    rss = None
    for line in err.splitlines():
        if line.startswith("__MAXRSS_KB="):
            rss = int(line.split("=", 1)[1])
    return {
        "rc": rc,
        "seconds": dt,
        "outcome": classify(tool, rc, out, err),
        "rss_kb": rss,
        "detail": (out + err)[-400:],
    }


def classify(tool: str, rc: int, out: str, err: str) -> str:
    """'flagged', 'clean' or 'error' from each tool's documented exit codes and output."""
    text = (out + err).lower()
    if tool == "loopwarden":
        return {0: "clean", 1: "flagged"}.get(rc, "error")
    if tool == "picklescan":
        if "scan error" in text or ("error:" in text and "infected files: 0" in text):
            return "error" if rc != 1 else "flagged"
        return {0: "clean", 1: "flagged"}.get(rc, "error")
    if tool == "modelscan":
        # 0: no issues, 1: issues found, 2: scan errors/skipped, 3+: usage
        return {0: "clean", 1: "flagged", 2: "error"}.get(rc, "error")
    if tool == "fickling":
        return {0: "clean", 1: "flagged"}.get(rc, "error")
    if tool == "modelaudit":
        return {0: "clean", 1: "flagged"}.get(rc, "error")
    return "error"


def cat_seconds(paths: list[Path]) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(paths), 500):
        subprocess.run(["cat", *map(str, paths[i : i + 500])], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


# -------------------------------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big-gb", type=float, default=3.0)
    ap.add_argument("--small", type=int, default=2000)
    ap.add_argument("--quick", action="store_true", help="0.5 GB and 300 files (smoke run)")
    ap.add_argument("--tools", default="loopwarden," + ",".join(PEERS))
    ap.add_argument("--rounds", type=int, default=5, help="timings of the two folders per tool (best kept)")
    args = ap.parse_args()
    if args.quick:
        args.big_gb, args.small = 0.5, 300
    big = gen_big(int(args.big_gb * (1 << 30)))
    small, reps = gen_small(args.small)
    bad = gen_bad()
    have = ensure_peers()
    ensure_loopwarden()
    tools = [t for t in args.tools.split(",") if t == "loopwarden" or have.get(t)]
    missing = [t for t in PEERS if not have.get(t)]
    big_bytes = sum(p.stat().st_size for p in big)
    small_bytes = sum(p.stat().st_size for p in small)
    cat_big, cat_small = cat_seconds(big), cat_seconds(small)
    print(
        f"corpus: big {len(big)} files {big_bytes / 1e9:.2f} GB; small {len(small)} files "
        f"{small_bytes / 1e6:.1f} MB; malicious {len(bad)} cases; benign representatives {len(reps)}"
    )
    print(
        f"cat to /dev/null: big {cat_big:.2f} s ({big_bytes / 1e9 / cat_big:.2f} GB/s), small "
        f"{cat_small:.2f} s"
    )
    if missing:
        print(f"peers not installed: {', '.join(missing)}")
    res: dict[str, dict[str, Any]] = {}
    for tool in tools:
        r: dict[str, Any] = {"cases": {}, "reps": {}}
        per_file: list[float] = []
        rss: list[int] = []
        for case, path in sorted(bad.items()):
            out = run_tool(tool, path)
            r["cases"][case] = out["outcome"]
            per_file.append(out["seconds"])
            if out["rss_kb"]:
                rss.append(out["rss_kb"])
        for kind, path in sorted(reps.items()):
            out = run_tool(tool, path)
            r["reps"][kind] = out["outcome"]
            per_file.append(out["seconds"])
        b = run_tool(tool, DATA / "big")
        s = run_tool(tool, DATA / "small")
        rss.extend(o["rss_kb"] for o in (b, s) if o["rss_kb"])
        r.update(
            detections=sum(v == "flagged" for v in r["cases"].values()),
            misses=sum(v == "clean" for v in r["cases"].values()),
            case_errors=sum(v == "error" for v in r["cases"].values()),
            false_positives=sum(v == "flagged" for v in r["reps"].values())
            + (b["outcome"] == "flagged")
            + (s["outcome"] == "flagged"),
            benign_errors=sum(v == "error" for v in r["reps"].values())
            + (b["outcome"] == "error")
            + (s["outcome"] == "error"),
            big_seconds=b["seconds"],
            big_outcome=b["outcome"],
            small_seconds=s["seconds"],
            small_outcome=s["outcome"],
            per_file_median=statistics.median(per_file) if per_file else None,
            peak_rss_mb=max(rss) / 1024 if rss else None,
            big_detail=b["detail"][-200:],
        )
        res[tool] = r
        print(f"  {tool}: done", flush=True)
    # Folder timings vary by a tenth from run to run on a shared machine: time them again, tools interleaved,
    # and keep each tool's best (a tool slower than REPEAT_UNDER seconds is timed once).
    for _ in range(args.rounds - 1):
        for tool in tools:
            for key, folder in (("big_seconds", DATA / "big"), ("small_seconds", DATA / "small")):
                if res[tool][key] < REPEAT_UNDER:
                    res[tool][key] = min(res[tool][key], run_tool(tool, folder)["seconds"])
    peers = [t for t in tools if t != "loopwarden"]
    fastest_big = min((res[t]["big_seconds"] for t in peers), default=None)
    fastest_small = min((res[t]["small_seconds"] for t in peers), default=None)
    print()
    hdr = (
        f"{'tool':11} {'detect':>6} {'miss':>4} {'err':>4} {'FP':>3} {'b.err':>5} {'3GB s':>7} {'GB/s':>6} "
        f"{'x fast':>6} {'x cat':>6} {'2k s':>6} {'x fast':>6} {'file med s':>10} {'peak MB':>8}"
    )
    print(hdr)
    for t in tools:
        r = res[t]
        gbps = big_bytes / 1e9 / r["big_seconds"]
        print(
            f"{t:11} {r['detections']:>6} {r['misses']:>4} {r['case_errors']:>4} {r['false_positives']:>3} "
            f"{r['benign_errors']:>5} {r['big_seconds']:>7.2f} {gbps:>6.2f} "
            f"{(r['big_seconds'] / fastest_big if fastest_big else float('nan')):>6.2f} "
            f"{r['big_seconds'] / cat_big:>6.2f} {r['small_seconds']:>6.2f} "
            f"{(r['small_seconds'] / fastest_small if fastest_small else float('nan')):>6.2f} "
            f"{r['per_file_median']:>10.3f} {r['peak_rss_mb'] or 0:>8.1f}"
        )
    lw = res.get("loopwarden")
    caught_by_peer = {c for t in peers for c, v in res[t]["cases"].items() if v == "flagged"}
    lw_missed = sorted(c for c in caught_by_peer if lw and lw["cases"].get(c) != "flagged")
    print()
    print(f"cases any peer catches that loopwarden misses: {lw_missed or 'none'}")
    for t in peers:
        missed = sorted(c for c, v in res[t]["cases"].items() if v != "flagged")
        print(
            f"{t} misses/errors ({len(missed)}): {', '.join(missed[:60])}{' ...' if len(missed) > 60 else ''}"
        )
        fps = sorted(k for k, v in res[t]["reps"].items() if v == "flagged")
        print(
            f"{t} flags benign representatives: {fps}; big set: {res[t]['big_outcome']}; "
            f"2k folder: {res[t]['small_outcome']}"
        )
    if lw:
        lw_misses = sorted(c for c, v in lw["cases"].items() if v != "flagged")
        print(f"loopwarden misses/errors ({len(lw_misses)}): {', '.join(lw_misses) or 'none'}")
        fps = sorted(k for k, v in lw["reps"].items() if v != "clean")
        print(
            f"loopwarden benign representatives not clean: {fps}; big: {lw['big_outcome']}; "
            f"2k: {lw['small_outcome']}"
        )
    summary = {
        "corpus": {
            "big_bytes": big_bytes,
            "big_files": len(big),
            "small_files": len(small),
            "malicious_cases": len(bad),
            "benign_reps": len(reps),
        },
        "cat_seconds": {"big": round(cat_big, 3), "small": round(cat_small, 3)},
        "peers_missing": missing,
        "tools": {
            t: {
                k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in r.items()
                if k not in ("cases", "reps", "big_detail")
            }
            for t, r in res.items()
        },
        "loopwarden_misses_caught_by_a_peer": lw_missed,
    }
    if lw and peers:
        ps = {t: res[t]["per_file_median"] for t in peers}
        summary["goals"] = {
            "no_miss_any_peer_catches": not lw_missed,
            "no_false_positive": lw["false_positives"] == 0 and lw["benign_errors"] == 0,
            "per_file_le_picklescan": "picklescan" in ps and lw["per_file_median"] <= ps["picklescan"],
            "big_le_picklescan": "picklescan" in res
            and lw["big_seconds"] <= res["picklescan"]["big_seconds"],
            "small_2x_fastest_peer": fastest_small is not None and lw["small_seconds"] * 2 <= fastest_small,
            "small_ratio_to_each_peer": {
                t: round(res[t]["small_seconds"] / lw["small_seconds"], 2) for t in peers
            },
            "small_peers_with_a_correct_result": [t for t in peers if res[t]["small_outcome"] == "clean"],
            "peak_rss_lt_256mb": (lw["peak_rss_mb"] or 0) < 256,
        }
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
