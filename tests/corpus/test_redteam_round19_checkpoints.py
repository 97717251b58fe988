"""Round 19 of the internal red team: checkpoint state files, keras_hub tokenizer paths, torch.export JSON.

Cases that scanned ``clean`` before this round:

* a TensorFlow ``checkpoint`` state file (``CheckpointState`` in protobuf text format) whose
  ``model_checkpoint_path``/``all_model_checkpoint_paths`` is absolute or climbs out with ``..``:
  ``tf.train.latest_checkpoint(folder)`` returns that path, ``tf.train.Checkpoint.restore`` and
  ``model.load_weights`` load another checkpoint as this one's weights, and a ``CheckpointManager`` opened on the
  folder deletes that checkpoint's ``.index``/``.data-*`` files once it saves past ``max_to_keep`` (confirmed with
  tensorflow-cpu 2.21.0 in a child process in a scratch virtualenv). Now LW-MODEL-052, high;
* a DeepSpeed checkpoint folder's ``latest``/``latest_universal`` file naming an absolute or ``..`` tag:
  ``engine.load_checkpoint(dir)`` and the ``zero_to_fp32.py`` DeepSpeed copies beside it read the tag and
  ``torch.load(..., weights_only=False)`` the states under ``os.path.join(dir, tag)`` (deepspeed 0.19.8, read
  from its source: ``runtime/engine.py`` ``load_checkpoint``, ``utils/zero_to_fp32.py``). Now LW-MODEL-052, high;
* a ``torch.export`` program (PT2 archive ``models/<m>.json`` or the legacy ``serialized_exported_program.json``)
  whose ``guards_code`` holds Python: ``ExportedProgram.module()`` pastes each guard into a function it builds with
  ``exec`` and calls it first on every call (``torch.export._unlift._convert_guards_code_to_fn``), so
  ``torch.export.load(f).module()(x)`` ran ``__import__('os').system(...)`` (torch 2.13.0, confirmed in a child
  process). Now LW-MODEL-031, critical;
* a symbolic size (``{"as_expr": {"expr_str": ...}}``) that is more than ``sympy.srepr`` text: ``torch.export.load``
  hands every one to ``sympy.sympify``, which ``eval``s it with Python's builtins in scope, so the code runs while
  the archive loads (torch 2.13.0, confirmed in a child process). Now LW-MODEL-031, critical;
* a string input (``graph.inputs[].as_string``) holding a quote: ``module()`` writes the guard
  ``L['s'] == '<value>'`` into the code it ``exec``s, and the quote ends the string (torch 2.13.0, confirmed).
  Now LW-MODEL-031, critical;
* the legacy ``serialized_exported_program.json`` (still read by ``torch.export.load`` in 2.13.0) was not judged
  at all: its graph's file operators (``aten.from_file``) now are, as in PT2 archives (LW-MODEL-031, high).

PT2 JSON members are now parsed in bounded memory (``jsonbound`` past 4 MiB): a 60 MB graph of empty lists took
1.6 GB before and stays unverified at some 140 MB now.
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

_OTHER = "/srv/r19-tf-other/ckpt-1"  # the checkpoint the bench cases point at (they are only scanned)
_PAYLOAD = "__import__('os').system('touch /srv/r19-pt2-marker') == 0"


# ------------------------------------------------------------------------------------------- TF state files


def _state(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _tf_cases() -> dict[str, dict[str, bytes]]:
    """The state file with the path written every way protobuf's text parser reads it: absolute and ``..`` in
    both fields, only in ``all_model_checkpoint_paths`` (what ``CheckpointManager`` deletes), octal and hex
    escapes, single quotes, adjacent strings joined, the list syntax, ``;`` separators and comments, a Windows
    drive, and timestamps that make ``CheckpointManager`` sweep it."""
    return {
        "r19_tf_state_absolute": {"checkpoint": _state(f'model_checkpoint_path: "{_OTHER}"')},
        "r19_tf_state_dotdot": {
            "checkpoint": _state('model_checkpoint_path: "../r19-tf-other/ckpt-1"'),
        },
        "r19_tf_state_all_paths_only": {
            "checkpoint": _state(
                'model_checkpoint_path: "ckpt-2"',
                f'all_model_checkpoint_paths: "{_OTHER}"',
                'all_model_checkpoint_paths: "ckpt-2"',
                "all_model_checkpoint_timestamps: 2.0",
                "all_model_checkpoint_timestamps: 3.0",
                "last_preserved_timestamp: 1.0",
            ),
        },
        "r19_tf_state_octal_escape": {
            "checkpoint": _state(r'model_checkpoint_path: "\057srv\057r19-tf-other\057ckpt-1"'),
        },
        "r19_tf_state_hex_escape": {
            "checkpoint": _state(r'model_checkpoint_path: "\x2e\x2e/r19-tf-other/ckpt-1"'),
        },
        "r19_tf_state_single_quotes_joined": {
            "checkpoint": _state("model_checkpoint_path: '/srv' \"/r19-tf-other\" '/ckpt-1'"),
        },
        "r19_tf_state_list_syntax": {
            "checkpoint": _state(
                'model_checkpoint_path: "ckpt-2"', f'all_model_checkpoint_paths: ["ckpt-2", "{_OTHER}"]'
            ),
        },
        "r19_tf_state_comments_semicolons": {
            "checkpoint": _state(
                "# written by CheckpointManager",
                f'model_checkpoint_path:"{_OTHER}";  # latest',
                "last_preserved_timestamp: 1",
            ),
        },
        "r19_tf_state_windows_drive": {
            "checkpoint": _state(r'model_checkpoint_path: "C:\\r19-tf-other\\ckpt-1"'),
        },
        "r19_tf_state_nested_dotdot": {
            "checkpoint": _state('model_checkpoint_path: "sub/../../r19-tf-other/ckpt-1"'),
        },
    }


def _deepspeed_cases() -> dict[str, dict[str, bytes]]:
    """``latest`` (and ``latest_universal``, read when loading a universal checkpoint) naming a tag outside the
    folder: absolute, ``..``, with the whitespace ``strip()`` removes."""
    return {
        "r19_deepspeed_latest_absolute": {"latest": b"/srv/r19-ds-other/global_step9"},
        "r19_deepspeed_latest_dotdot": {"latest": b"\n  ../r19-ds-other/global_step9 \r\n"},
        "r19_deepspeed_latest_universal": {"latest_universal": b"/srv/r19-ds-other/global_step9_universal\n"},
    }


# ------------------------------------------------------------------------------------------------- torch.export


def _graph(guards: list[str]) -> dict[str, object]:
    """``models/model.json`` as torch 2.13's ``torch.export.save`` writes it for ``relu(x)``."""
    tensor = {
        "dtype": 7,
        "sizes": [{"as_int": 2}],
        "requires_grad": False,
        "device": {"type": "cpu", "index": None},
        "strides": [{"as_int": 1}],
        "storage_offset": {"as_int": 0},
        "layout": 7,
    }
    node = {
        "target": "torch.ops.aten.relu.default",
        "inputs": [{"name": "self", "arg": {"as_tensor": {"name": "x"}}, "kind": 1}],
        "outputs": [{"as_tensor": {"name": "relu"}}],
        "metadata": {
            "nn_module_stack": "L__self__,,__main__.M",
            "torch_fn": "relu_1;builtin_function_or_method.relu",
        },
        "is_hop_single_tensor_return": None,
        "name": "relu",
    }
    spec = '[1, {"type": null, "context": null, "children_spec": []}]'
    return {
        "graph_module": {
            "graph": {
                "inputs": [{"as_tensor": {"name": "x"}}],
                "outputs": [{"as_tensor": {"name": "relu"}}],
                "nodes": [node],
                "tensor_values": {"x": tensor, "relu": tensor},
                "sym_int_values": {},
                "sym_bool_values": {},
                "is_single_tensor_return": False,
                "custom_obj_values": {},
                "sym_float_values": {},
            },
            "signature": {
                "input_specs": [{"user_input": {"arg": {"as_tensor": {"name": "x"}}}}],
                "output_specs": [{"user_output": {"arg": {"as_tensor": {"name": "relu"}}}}],
            },
            "module_call_graph": [
                {
                    "fqn": "",
                    "signature": {
                        "inputs": [],
                        "outputs": [],
                        "in_spec": spec,
                        "out_spec": spec,
                        "forward_arg_names": ["x"],
                    },
                }
            ],
            "metadata": {},
            "treespec_namedtuple_fields": {},
        },
        "opset_version": {"aten": 10},
        "range_constraints": {},
        "schema_version": {"major": 8, "minor": 20},
        "verifiers": ["TRAINING"],
        "torch_version": "2.13.0+cpu",
        "guards_code": guards,
    }


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def _pt2(graph: dict[str, object]) -> bytes:
    """A PT2 archive (the members torch.export.save writes, the sample inputs left out: they are a torch.save
    archive the scanner judges on its own)."""
    return _zip(
        {
            "m/data/weights/model_weights_config.json": b'{"config": {}}',
            "m/data/constants/model_constants_config.json": b'{"config": {}}',
            "m/models/model.json": json.dumps(graph).encode(),
            "m/archive_format": b"pt2",
            "m/archive_version": b"0",
            "m/.data/version": b"6\n",
            "m/byteorder": b"little",
        }
    )


def _legacy(graph: dict[str, object]) -> bytes:
    """The archive torch.export.save wrote before PT2 (torch.export.load 2.13 still reads it)."""
    return _zip(
        {
            "version": b"8.20",
            "serialized_exported_program.json": json.dumps(graph).encode(),
            "serialized_state_dict.pt": b"",
            "serialized_constants.pt": b"",
            "serialized_example_inputs.pt": b"",
        }
    )


def _with_node(graph: dict[str, object], target: str) -> dict[str, object]:
    out = json.loads(json.dumps(graph))
    node = {
        "target": target,
        "inputs": [{"name": "filename", "arg": {"as_string": "/etc/passwd"}, "kind": 1}],
        "outputs": [{"as_tensor": {"name": "f"}}],
        "metadata": {},
        "is_hop_single_tensor_return": None,
        "name": "f",
    }
    out["graph_module"]["graph"]["nodes"].insert(0, node)  # type: ignore[index]
    return out


def _with_size(graph: dict[str, object], expr: str) -> dict[str, object]:
    """The input's first size as a symbolic expression (what a dynamic dimension is written as)."""
    out = json.loads(json.dumps(graph))
    size = {"as_expr": {"expr_str": expr, "hint": {"as_int": 2}}}
    for name in ("x", "relu"):
        out["graph_module"]["graph"]["tensor_values"][name]["sizes"][0] = size  # type: ignore[index]
    return out


def _with_string_input(graph: dict[str, object], value: str) -> dict[str, object]:
    """A ``str`` argument specialised at export (a constant input and a string placeholder)."""
    out = json.loads(json.dumps(graph))
    out["graph_module"]["graph"]["inputs"].append({"as_string": value})  # type: ignore[index]
    spec = {"constant_input": {"name": "s", "value": {"as_string": value}}}
    out["graph_module"]["signature"]["input_specs"].append(spec)  # type: ignore[index]
    return out


_SYMBOL = "Symbol('s77', positive=True, integer=True)"
_REAL_EXPRS = [
    _SYMBOL,
    f"Add(Mul(Integer(2), {_SYMBOL}), Integer(1))",
    "FloorDiv(Add(Mul(Integer(3), Symbol('s17', positive=True, integer=True)), "
    f"Mul(Integer(3), {_SYMBOL})), Integer(2))",
    f"Mul(Float('1.5', precision=53), ToFloat({_SYMBOL}))",
    f"Max(Integer(1), {_SYMBOL})",
    f"PythonMod({_SYMBOL}, Integer(2))",
]


def _pt2_cases() -> dict[str, dict[str, bytes]]:
    """Guards that are Python beyond a size check: a call of ``__import__`` alone, hidden behind an ordinary guard
    (``or``), reached through ``torch``'s attributes, through a dunder attribute of an input, a string that could
    move the boundaries torch's ``L[...]`` replacement relies on; in the PT2 archive and in the legacy one, and the
    legacy graph's file operator."""
    benign = "L['x'].size()[0] == 2"
    guards = {
        "import": [_PAYLOAD],
        "after_benign": [benign, f"{benign} or {_PAYLOAD}"],
        "torch_attr": ["torch.load('/srv/r19-pt2-other.pt') is None"],
        "dunder": ["L['x'].__class__.__init__.__globals__['os'].system('id') == 0"],
        "quote_string": ["L['x'].size()[0] == 2 or \"a'] == 1\" == 1"],
    }
    cases = {f"r19_pt2_guard_{k}": {"model.pt2": _pt2(_graph(v))} for k, v in guards.items()}
    exprs = {
        "import": f"__import__('os').system('id') + {_SYMBOL}",
        "resympify": "S(\"__import__('os').system('id')\")",
        "evalf_string": "N('__import__(\\'os\\').system(\\'id\\')')",
        "lambda": f"(lambda: __import__('os').system('id'))() + {_SYMBOL}",
        "dunder": f"Symbol('s77').__class__.__init__.__globals__['os'].system('id') + {_SYMBOL}",
        "string_arg": f"Add({_SYMBOL}, 'x')",
    }
    for k, v in exprs.items():
        cases[f"r19_pt2_sym_expr_{k}"] = {"model.pt2": _pt2(_with_size(_graph([]), v))}
    breakout = "' == 0 or __import__('os').system('id') == 0 or '"
    cases["r19_pt2_string_input_quote"] = {"model.pt2": _pt2(_with_string_input(_graph([]), breakout))}
    cases["r19_pt2_legacy_sym_expr"] = {"model.pt2": _legacy(_with_size(_graph([]), exprs["import"]))}
    cases["r19_pt2_legacy_guard"] = {"model.pt2": _legacy(_graph([_PAYLOAD]))}
    cases["r19_pt2_legacy_from_file"] = {
        "model.pt2": _legacy(_with_node(_graph([]), "torch.ops.aten.from_file.default"))
    }
    return cases


def bench_cases() -> dict[str, dict[str, bytes]]:
    return {**_tf_cases(), **_deepspeed_cases(), **_pt2_cases()}


# ------------------------------------------------------------------------------------------------- helpers


def _scan(path: Path) -> TargetResult:
    return next(iter(scan_paths([str(path)], jobs=1).targets))


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def _reported(res: TargetResult, rule: str, severity: Severity) -> None:
    assert res.verdict is Verdict.FINDINGS, res
    hits = [f for f in res.findings if f.rule_id == rule]
    assert hits and all(f.severity is severity for f in hits), res.findings


# ------------------------------------------------------------------------------------------------- TF tests


@pytest.mark.parametrize("case", sorted(_tf_cases()))
def test_tf_state_file_outside_the_folder_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round a ``checkpoint`` state file was text the scanner left alone: every case scanned
    ``clean``. tensorflow-cpu 2.21.0 restored the other checkpoint through an absolute and a ``..`` path and its
    CheckpointManager deleted it (see the module docstring)."""
    _write(tmp_path, _tf_cases()[case])
    res = _scan(tmp_path / "checkpoint")
    _reported(res, "LW-MODEL-052", Severity.HIGH)
    assert "TensorFlow checkpoint state file" in res.findings[0].message


def test_tf_state_files_as_written_stay_clean(tmp_path: Path) -> None:
    """The state files CheckpointManager, Keras 2's ``save_weights`` and a v1 Saver with a relative path write,
    and other files named ``checkpoint`` (a note, an empty file)."""
    files = {
        "manager/checkpoint": _state(
            'model_checkpoint_path: "ckpt-3"',
            'all_model_checkpoint_paths: "ckpt-2"',
            'all_model_checkpoint_paths: "ckpt-3"',
            "all_model_checkpoint_timestamps: 1795978964.3561866",
            "all_model_checkpoint_timestamps: 1795978965.1",
            "last_preserved_timestamp: 1795978963.342929",
        ),
        "keras/checkpoint": _state(
            'model_checkpoint_path: "weights"', 'all_model_checkpoint_paths: "weights"'
        ),
        "saver/checkpoint": _state(
            'model_checkpoint_path: "model.ckpt-1000"', 'all_model_checkpoint_paths: "model.ckpt-1000"'
        ),
        "note/checkpoint": b"saved after epoch 3\n",
        "empty/checkpoint": b"",
    }
    _write(tmp_path, files)
    for name in files:
        res = _scan(tmp_path / name)
        assert res.verdict is Verdict.CLEAN, (name, res)


def test_tf_state_file_that_does_not_parse_is_unverified(tmp_path: Path) -> None:
    """A state file cut short (an unterminated string): the scanner's reading and TensorFlow's could differ."""
    _write(tmp_path, {"checkpoint": b'model_checkpoint_path: "/srv/x\n'})
    assert _scan(tmp_path / "checkpoint").verdict is Verdict.UNVERIFIED


def test_tf_state_file_in_an_archive_is_reported(tmp_path: Path) -> None:
    """The same file inside a zip of the checkpoint folder."""
    data = _zip({"run/checkpoint": _tf_cases()["r19_tf_state_absolute"]["checkpoint"]})
    _write(tmp_path, {"run.zip": data})
    _reported(_scan(tmp_path / "run.zip"), "LW-MODEL-052", Severity.HIGH)


_TF_RESTORE = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    root = sys.argv[1]
    tf.train.Checkpoint(v=tf.Variable([42.0])).write(os.path.join(root, "other", "secret"))
    mgr = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable([1.0])), os.path.join(root, "ck"), 1)
    mgr.save()
    open(os.path.join(root, "ck", "checkpoint"), "w").write(sys.argv[2])
    w = tf.Variable([0.0])
    tf.train.Checkpoint(v=w).restore(tf.train.latest_checkpoint(os.path.join(root, "ck")))
    print(float(w.numpy()[0]))
    """
)


@pytest.mark.parametrize("path", ["ABS", "../other/secret"])
def test_tensorflow_restores_the_checkpoint_named(tmp_path: Path, path: str) -> None:
    pytest.importorskip("tensorflow")
    target = str(tmp_path / "other" / "secret") if path == "ABS" else path
    state = f'model_checkpoint_path: "{target}"\n'
    (tmp_path / "scan").mkdir()
    (tmp_path / "scan" / "checkpoint").write_text(state)
    _reported(_scan(tmp_path / "scan" / "checkpoint"), "LW-MODEL-052", Severity.HIGH)
    run = subprocess.run(
        [sys.executable, "-c", _TF_RESTORE, str(tmp_path), state], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "42.0"


def test_tensorflow_writes_clean_state_files(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    mgr = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable([1.0])), str(tmp_path), max_to_keep=2)
    for _ in range(3):
        mgr.save()
    assert (tmp_path / "checkpoint").exists()
    targets = scan_paths([str(tmp_path)], jobs=1).targets
    assert targets and all(t.verdict is Verdict.CLEAN for t in targets), targets


# ------------------------------------------------------------------------------------------- DeepSpeed tests


@pytest.mark.parametrize("case", sorted(_deepspeed_cases()))
def test_deepspeed_latest_outside_the_folder_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round ``latest`` was plain text and every case scanned ``clean``; deepspeed 0.19.8's
    ``load_checkpoint`` and ``zero_to_fp32.py`` join the tag read from it to the folder (see the module
    docstring)."""
    files = _deepspeed_cases()[case]
    _write(tmp_path, files)
    res = _scan(tmp_path / next(iter(files)))
    _reported(res, "LW-MODEL-052", Severity.HIGH)
    assert "DeepSpeed" in res.findings[0].message


def test_deepspeed_latest_as_written_stays_clean(tmp_path: Path) -> None:
    """``save_checkpoint`` writes the tag it saved under; a tag with a subfolder stays inside."""
    for i, text in enumerate((b"global_step1000", b"global_step5\n", b"epoch3/step12", b"")):
        (tmp_path / str(i)).mkdir()
        (tmp_path / str(i) / "latest").write_bytes(text)
        assert _scan(tmp_path / str(i) / "latest").verdict is Verdict.CLEAN, text


# ------------------------------------------------------------------------------------------- torch.export tests


@pytest.mark.parametrize("case", sorted(_pt2_cases()))
def test_export_guard_code_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round guards were not read and the legacy program not judged: every case scanned ``clean``.
    torch 2.13.0 ran the guard when the loaded program's module was called (see the module docstring)."""
    _write(tmp_path, _pt2_cases()[case])
    res = _scan(tmp_path / "model.pt2")
    severity = Severity.HIGH if case.endswith("from_file") else Severity.CRITICAL
    assert not case.startswith("r19_pt2_sym_expr") or "sympy.sympify" in res.findings[0].message
    _reported(res, "LW-MODEL-031", severity)


_REAL_GUARDS = [
    "L['x'].size()[0] > 4",
    "L['d']['a'].size()[1] == L['d']['b'].size()[0]",
    "2 <= L['x'].size()[0] and L['x'].size()[0] <= 64",
    "(L['x'].size()[0] % 2) == 0",
    "max(L['x'].size()[0], 2) == (L['y'].stride()[0] // 3)",
    "torch.sym_float(L['x'].size()[0]) / 2 <= 3.5",
    "math.isnan(L['f'])",
    "L['x'].storage_offset() == 0",
    "not (L['x'].size()[0] == 1)",
    "L['kwargs']['attention-mask'].size()[1] != 1",
    "L['x'].size()[0] == math.inf",
]


def test_export_guards_torch_writes_stay_clean(tmp_path: Path) -> None:
    """Guards, symbolic sizes and string inputs in the shapes torch writes, in both archive layouts."""
    files = {"a.pt2": _pt2(_graph(_REAL_GUARDS)), "b.pt2": _legacy(_graph(_REAL_GUARDS))}
    for i, expr in enumerate(_REAL_EXPRS):
        files[f"e{i}.pt2"] = _pt2(_with_size(_graph(_REAL_GUARDS), expr))
    files["s.pt2"] = _pt2(_with_string_input(_graph([]), "relu mode: fast (v2)"))
    _write(tmp_path, files)
    for name in files:
        res = _scan(tmp_path / name)
        assert res.verdict is Verdict.CLEAN, (name, res)


def test_large_export_graph_is_parsed_in_bounded_memory(tmp_path: Path) -> None:
    """A graph padded with millions of empty lists: unverified (the object bound), not gigabytes of objects."""
    graph = json.dumps(_graph([])).encode()
    padded = graph[:-1] + b', "pad": [' + b"[]," * 3_000_000 + b"[]]}"
    members = {
        "m/models/model.json": padded,
        "m/archive_format": b"pt2",
        "m/data/weights/model_weights_config.json": b'{"config": {}}',
    }
    _write(tmp_path, {"model.pt2": _zip(members)})
    res = _scan(tmp_path / "model.pt2")
    assert res.verdict is Verdict.UNVERIFIED, res
    assert "max_large_json_objects" in (res.reason or "")


def test_large_export_graph_is_still_judged(tmp_path: Path) -> None:
    """A graph over the 4 MiB line, padded with metadata strings, still has its guards and operators judged."""
    graph = _graph([_PAYLOAD])
    graph["graph_module"]["metadata"] = {"pad": "x" * (5 << 20)}  # type: ignore[index]
    _write(tmp_path, {"model.pt2": _pt2(graph)})
    _reported(_scan(tmp_path / "model.pt2"), "LW-MODEL-031", Severity.CRITICAL)


_TORCH_RUN = textwrap.dedent(
    """
    import json, sys, zipfile, torch
    class M(torch.nn.Module):
        def forward(self, x):
            return torch.relu(x)
    src, dst, guard = sys.argv[1:4]
    torch.export.save(torch.export.export(M(), (torch.ones(2),)), src)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("models/model.json"):
                obj = json.loads(data)
                obj["guards_code"] = [guard]
                data = json.dumps(obj).encode()
            zout.writestr(info, data)
    if sys.argv[4] == "run":
        torch.export.load(dst).module()(torch.ones(2))
    """
)


def test_torch_runs_the_export_guard(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    marker = tmp_path / "marker"
    guard = f"__import__('pathlib').Path({str(marker)!r}).touch() is None"
    src, dst = tmp_path / "src.pt2", tmp_path / "scan" / "model.pt2"
    dst.parent.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", _TORCH_RUN, str(src), str(dst), guard, "build"],
        capture_output=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert _scan(src).verdict is Verdict.CLEAN
    _reported(_scan(dst), "LW-MODEL-031", Severity.CRITICAL)
    run = subprocess.run(
        [sys.executable, "-c", _TORCH_RUN, str(src), str(dst), guard, "run"], capture_output=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert marker.exists()


_TORCH_SYMPIFY = textwrap.dedent(
    """
    import json, sys, zipfile, torch
    from torch.export import Dim
    class M(torch.nn.Module):
        def forward(self, x, s: str):
            return x * 2
    src, dst, payload = sys.argv[1:4]
    ep = torch.export.export(M(), (torch.ones(8), "hi"), dynamic_shapes={"x": {0: Dim("b", min=2)}, "s": None})
    torch.export.save(ep, src)
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("models/model.json"):
                text = data.decode()
                if sys.argv[4] == "expr":
                    old = "Symbol('s77', positive=True, integer=True)"
                    assert old in text, text
                    text = text.replace(old, payload + " + " + old)
                else:
                    text = text.replace('"as_string": "hi"', json.dumps({"as_string": payload})[1:-1])
                data = text.encode()
            zout.writestr(info, data)
    ep = torch.export.load(dst)
    if sys.argv[4] == "string":
        ep.module()(torch.ones(8), "hi")
    """
)


@pytest.mark.parametrize("where", ["expr", "string"])
def test_torch_runs_the_expression_and_the_string_input(tmp_path: Path, where: str) -> None:
    """``expr``: sympify runs the size expression while ``torch.export.load`` reads the archive; ``string``: the
    string input breaks out of the quotes of the guard ``module()`` builds (torch 2.13.0)."""
    pytest.importorskip("torch")
    marker = tmp_path / "marker"
    call = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    payload = call if where == "expr" else f"' == 0 or {call} or '"
    src, dst = tmp_path / "src.pt2", tmp_path / "scan" / "model.pt2"
    dst.parent.mkdir()
    run = subprocess.run(
        [sys.executable, "-c", _TORCH_SYMPIFY, str(src), str(dst), payload, where],
        capture_output=True,
        timeout=300,
    )
    assert marker.exists(), run.stderr[-3000:]
    assert _scan(src).verdict is Verdict.CLEAN
    _reported(_scan(dst), "LW-MODEL-031", Severity.CRITICAL)


_TORCH_DYNAMIC = textwrap.dedent(
    """
    import sys, torch
    from torch.export import Dim
    class A(torch.nn.Module):
        def forward(self, x, y):
            z = x[:4] * 2 if x.shape[0] > 4 else x
            return z.sum() + y.reshape(-1).sum() + x.shape[0] // 3
    class C(torch.nn.Module):
        def forward(self, d):
            return d["a"] @ d["b"]
    class D(torch.nn.Module):
        def forward(self, x, y, s: str):
            b = torch.cat([x, y], 0).reshape(-1)
            d = torch.nn.functional.pad(b[: b.shape[0] // 2], (1, 2))
            return (d.float() / (x.shape[0] * 1.5)).sum() + torch.ones(x.shape[0] * 2 + 1).sum()
    k = Dim("k")
    a = torch.export.export(A(), (torch.randn(8, 3), torch.randn(8, 3)),
        dynamic_shapes={"x": {0: Dim.AUTO, 1: Dim.AUTO}, "y": {0: Dim.AUTO}})
    c = torch.export.export(C(), ({"a": torch.randn(4, 5), "b": torch.randn(5, 6)},),
        dynamic_shapes={"d": {"a": {0: Dim.DYNAMIC, 1: k}, "b": {0: k, 1: Dim.DYNAMIC}}})
    torch.export.save(a, sys.argv[1] + "/a.pt2")
    torch.export.save(c, sys.argv[1] + "/c.pt2")
    d = torch.export.export(D(), (torch.randn(8, 3), torch.randn(6, 3), "mode: fast (v2)"),
        dynamic_shapes={"x": {0: Dim.AUTO}, "y": {0: Dim.AUTO}, "s": None})
    torch.export.save(d, sys.argv[1] + "/d.pt2")
    """
)


def test_torch_export_programs_with_guards_stay_clean(tmp_path: Path) -> None:
    """Programs exported with dynamic shapes, whose guards torch writes (``L['x'].size()[0] > 4``)."""
    pytest.importorskip("torch")
    run = subprocess.run(
        [sys.executable, "-c", _TORCH_DYNAMIC, str(tmp_path)], capture_output=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    for name in ("a.pt2", "c.pt2", "d.pt2"):
        with zipfile.ZipFile(tmp_path / name) as z:
            model = next(n for n in z.namelist() if n.endswith("models/model.json"))
            assert json.loads(z.read(model))["guards_code"], name
        res = _scan(tmp_path / name)
        assert res.verdict is Verdict.CLEAN, (name, res)


def test_bench_cases_are_deterministic() -> None:
    assert pickle.dumps(bench_cases()) == pickle.dumps(bench_cases())
