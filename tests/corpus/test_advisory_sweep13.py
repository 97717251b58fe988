"""Sweep 13: published bypasses of picklescan, modelscan, fickling and modelaudit not in the earlier corpus files.

Deny-list additions of the peers since the last sweep (each module.function is a case), the CVE ids VulnCheck
assigned in 2026 to picklescan advisories the corpus cites by gadget only, and the format items of 2026 issues.
Payloads are built here as opcodes or configuration and only ever scanned.
"""

from __future__ import annotations

import json
import marshal
import struct
from pathlib import Path

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught as assert_file_caught
from test_container_bypasses import scan as scan_files
from test_pickle_bypasses import (
    BUILD,
    CODE,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_TUPLE,
    MARK,
    NEWTRUE,
    PAYLOAD,
    REDUCE,
    STOP,
    TUPLE,
    assert_caught,
    binint1,
    call,
    proto,
    reduce_of,
    sb,
    scan,
    sglob,
    u,
)

from loopwarden.checks.models.pickle_vm import PickleResult
from loopwarden.domain import Severity

SETITEMS = b"u"


def _dict(*pairs: tuple[bytes, bytes]) -> bytes:
    return EMPTY_DICT + MARK + b"".join(k + v for k, v in pairs) + SETITEMS


def _worst(result: PickleResult) -> Severity | None:
    return max((f.severity for f in result.findings), default=None)


def assert_code_execution(result: PickleResult, *subjects: str) -> None:
    """Caught as what it is: a callable that runs code (LW-MODEL-001, critical)."""
    assert_caught(result, *subjects)
    assert _worst(result) is Severity.CRITICAL, result
    assert "LW-MODEL-001" in {f.rule_id for f in result.findings}, result


# ------------------------------------------------------------------ deny-list additions the allow-list under-rated


# logging.config.dictConfig({"version": 1, "handlers": {"x": {"()": "subprocess.getoutput", "cmd": "id"}}}) runs
# the command: the "()" factory is imported by name and called with the other keys (checked with a marker file).
_DICT_CONFIG = _dict(
    (u("version"), binint1(1)),
    (u("handlers"), _dict((u("x"), _dict((u("()"), u("subprocess.getoutput")), (u("cmd"), PAYLOAD))))),
)


@pytest.mark.parametrize(
    ("name", "arg_ops"),
    [("dictConfig", (_DICT_CONFIG,)), ("fileConfig", (u("/tmp/x.ini"),)), ("listen", ())],
)
def test_modelaudit_581_logging_config(name: str, arg_ops: tuple[bytes, ...]) -> None:
    """modelaudit added ``logging.config`` to its deny-list (https://github.com/promptfoo/modelaudit/pull/581).
    loopwarden rated it as logging's file I/O (high); dictConfig imports and calls any factory its dict names,
    fileConfig eval()s handler arguments, listen() applies configurations from a socket: code execution."""
    assert_code_execution(scan(call("logging.config", name, *arg_ops)), f"logging.config.{name}")


def test_modelscan_346_mailcap_findmatch() -> None:
    """mailcap.findmatch os.system()s the "test" field of the entry it matches, taken from the caps dict the
    pickle passes (https://github.com/protectai/modelscan/pull/346)."""
    caps = _dict(
        (u("text/plain"), EMPTY_LIST + MARK + _dict((u("view"), u("x")), (u("test"), PAYLOAD)) + b"e")
    )
    assert_code_execution(scan(call("mailcap", "findmatch", caps, u("text/plain"))), "mailcap.findmatch")


def test_fickling_312_pipes_template_steps_set_by_build() -> None:
    """fickling blocked ``pipes`` (https://github.com/trailofbits/fickling/pull/312): a Template whose steps BUILD
    sets (append() validates them, BUILD does not) runs them in a shell from Template.copy."""
    template = reduce_of("pipes", "Template") + _dict(
        (u("steps"), EMPTY_LIST + MARK + MARK + u("id; cat") + u("--") + TUPLE + b"e"),
        (u("debugging"), b"\x89"),
    )
    data = (
        proto(4)
        + sglob("pipes", "Template.copy")
        + MARK
        + template
        + BUILD
        + u("/dev/null")
        + u("/dev/null")
        + TUPLE
        + REDUCE
        + STOP
    )
    assert_code_execution(scan(data), "pipes.Template.copy")


def test_fickling_312_imp_load_source() -> None:
    """imp.load_source executes a file as a module (https://github.com/trailofbits/fickling/pull/312)."""
    result = scan(call("imp", "load_source", u("m"), u("/tmp/x.py")))
    assert_caught(result, "imp.load_source")
    assert _worst(result) is Severity.CRITICAL, result


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        ("six.moves.builtins", "eval", (CODE,)),
        ("six.moves", "builtins.eval", (CODE,)),
        ("six", "exec_", (CODE,)),
        ("six.moves.cPickle", "loads", (sb(b"cos\nsystem\n(Vid\ntR."),)),
        ("six.moves", "reload_module", (u("os"),)),
        ("six", "get_function_globals", (EMPTY_DICT,)),
    ],
)
def test_modelaudit_six_moves_aliases(module: str, name: str, arg_ops: tuple[bytes, ...]) -> None:
    """six.moves re-exports builtins, pickle and importlib under its own module names; pickle imports
    ``six.moves.builtins`` through six's meta-path importer and gets the real eval. modelaudit's regression
    test_scan_bytes_blocks_six_moves_builtins_eval_rce (https://github.com/promptfoo/modelaudit/pull/1679).
    loopwarden rated them as unknown functions (high). (The dotted name through a module is LW-MODEL-007.)"""
    result = scan(call(module, name, *arg_ops))
    assert_caught(result, f"{module}.{name}")
    assert _worst(result) is Severity.CRITICAL, result


# ---------------------------------------------------------------------------------------- fickling, 2026


def _frame(body: bytes, declared: int) -> bytes:
    return b"\x80\x05\x95" + struct.pack("<Q", declared) + body


def test_fickling_317_opcode_crossing_frame_hides_payload() -> None:
    """BINBYTES declares more bytes than its FRAME holds: the C unpickler reads on past the frame and runs the
    GLOBAL/REDUCE a linear reader takes as bytes (https://github.com/trailofbits/fickling/pull/317,
    https://github.com/python/cpython/issues/154848). Both readings are analysed."""
    hidden = b"cos\nsystem\nVecho pwned\n\x85R"
    data = (
        b"\x80\x05N"
        + b"V"
        + b"a" * (8192 * 16 - 17)
        + b"\n0"
        + MARK
        + b"\x95"
        + struct.pack("<Q", 2)
        + b"B"
        + struct.pack("<I", 0x107)
        + b"\x00\x00"
        + (hidden + MARK).ljust(256 + 5, b"N")
        + b"1"
        + STOP
    )
    result = scan(data)
    assert_code_execution(result, "os.system")
    assert "LW-MODEL-012" in {f.rule_id for f in result.findings}


@pytest.mark.parametrize(
    "data",
    [
        _frame(b"B" + struct.pack("<I", 20) + b"A" * 20, 5),
        _frame(b"\x8c\x14" + b"A" * 20, 3),
        _frame(b"cmacos\nsystem\n", 4),
        _frame(b"Vhello world\n", 5),
        _frame(b"J" + struct.pack("<i", 7), 2),
        b"\x80\x05\x95" + struct.pack("<Q", 30) + b"N\x95" + struct.pack("<Q", 2) + b"N",
    ],
    ids=["BINBYTES", "SHORT_BINUNICODE", "GLOBAL", "UNICODE", "BININT", "frame-in-frame"],
)
def test_fickling_317_frame_straddle_variants_are_unverified(data: bytes) -> None:
    """The straddle variants of the same fix: never clean (https://github.com/trailofbits/fickling/pull/317)."""
    result = scan(data + STOP)
    assert result.unverified, result
    assert "LW-MODEL-012" in {f.rule_id for f in result.findings}, result


@pytest.mark.parametrize(
    "data",
    [
        call("fickling.hook", "remove_hook"),
        call("fickling", "always_check_safety"),
        proto(4) + sglob("picklescan.scanner", "_unsafe_globals.clear") + EMPTY_TUPLE + REDUCE + STOP,
        proto(4) + sglob("modelscan.settings", "DEFAULT_SETTINGS") + STOP,
    ],
    ids=["fickling-hook", "fickling-check", "picklescan-table", "modelscan-settings"],
)
def test_fickling_249_scanner_tampering(data: bytes) -> None:
    """A pickle that imports a pickle scanner to switch its load-time hook off or empty its deny-list
    (https://github.com/trailofbits/fickling/pull/249). A bare reference to a scanner's table was an unknown
    module's object (medium); the scanners are now known packages, so anything of theirs is high."""
    worst = _worst(scan(data))
    assert worst is not None and worst >= Severity.HIGH, data


# ----------------------------------------------------- picklescan: 2026 CVE ids of advisories cited by gadget


@pytest.mark.parametrize(
    ("cve", "module", "name", "arg_ops"),
    [
        ("CVE-2025-71365", "numpy.f2py.crackfortran", "myeval", (CODE,)),
        ("CVE-2025-71322", "pty", "spawn", (PAYLOAD,)),
        ("CVE-2025-71371", "code", "InteractiveInterpreter.runcode", (EMPTY_DICT, CODE)),
        ("CVE-2025-71373", "operator", "methodcaller", (u("system"), PAYLOAD)),
        ("CVE-2025-71351", "timeit", "timeit", (CODE,)),
        ("CVE-2025-71352", "trace", "Trace.runctx", (EMPTY_DICT, CODE, EMPTY_DICT, EMPTY_DICT)),
        ("CVE-2025-71343", "lib2to3.pgen2.pgen", "ParserGenerator.make_label", (EMPTY_DICT, EMPTY_DICT, CODE)),
        ("CVE-2025-71320", "pydoc", "locate", (u("os.system"),)),
        ("CVE-2025-71356", "torch.fx.experimental.symbolic_shapes", "ShapeEnv.evaluate_guards_expression",
         (EMPTY_DICT, CODE, EMPTY_LIST)),
        ("CVE-2025-71353", "torch._dynamo.guards", "GuardBuilder.get", (EMPTY_DICT, CODE)),
        ("CVE-2026-53873", "profile", "run", (CODE,)),
        ("CVE-2026-56315", "uuid", "_get_command_stdout", (PAYLOAD,)),
        ("CVE-2026-56315", "_pyrepl.pager", "pipe_pager", (u("x"), PAYLOAD)),
    ],
)  # fmt: skip
def test_picklescan_vulncheck_cves(cve: str, module: str, name: str, arg_ops: tuple[bytes, ...]) -> None:
    """VulnCheck's 2026 CVE records for picklescan advisories, e.g.
    https://www.cve.org/CVERecord?id=CVE-2025-71365 (numpy.f2py.crackfortran.myeval, a gadget no earlier test
    names) and https://www.cve.org/CVERecord?id=CVE-2026-56315 (the stdlib commands of GHSA-g38g-8gr9-h9xp)."""
    result = scan(call(module, name, *arg_ops))
    assert_caught(result, f"{module}.{name}")
    assert _worst(result) is Severity.CRITICAL, (cve, result)


# ------------------------------------------------------- picklescan 2026 reports: importlib, marshal, spec chains


def test_picklescan_66_find_spec_module_from_spec_chain() -> None:
    """importlib.util.module_from_spec(importlib.util.find_spec("os")) loads a module with no import_module
    (https://github.com/mmaitre314/picklescan/issues/66)."""
    spec = reduce_of("importlib.util", "find_spec", u("os"))
    data = proto(4) + sglob("importlib.util", "module_from_spec") + MARK + spec + TUPLE + REDUCE + STOP
    result = scan(data)
    assert_caught(result, "importlib.util.module_from_spec", "importlib.util.find_spec")
    assert _worst(result) is Severity.CRITICAL


def test_picklescan_74_import_module_and_marshal() -> None:
    """importlib.import_module and marshal.loads (https://github.com/mmaitre314/picklescan/pull/74, from a huntr
    report)."""
    for data in (
        call("importlib", "import_module", u("os")),
        call("marshal", "loads", sb(b"\xe3" + b"\0" * 40)),
    ):
        result = scan(data)
        assert_caught(result)
        assert _worst(result) is Severity.CRITICAL


def test_hf_poc_picklescan_marshal_function_type() -> None:
    """types.FunctionType(marshal.loads(<code>), {})() passed picklescan 1.0.4
    (https://huggingface.co/thesecguy/poc-picklescan-marshal-bypass, reported to huntr in May 2026)."""
    code = marshal.dumps(compile("0", "<s>", "eval"))
    function = reduce_of("types", "FunctionType", reduce_of("marshal", "loads", sb(code)), EMPTY_DICT)
    result = scan(proto(4) + function + EMPTY_TUPLE + REDUCE + STOP)
    assert_code_execution(result, "types.FunctionType", "marshal.loads")


# ------------------------------------------------------------------------- modelaudit call-graph game, 2026


def test_modelaudit_1063_defaultdict_factory_behind_mapping_wrappers() -> None:
    """operator.getitem on a MappingProxyType of a ChainMap of a defaultdict calls the defaultdict's factory for a
    missing key; the wrappers hid the factory edge (https://github.com/promptfoo/modelaudit/pull/1063)."""
    factory = reduce_of("functools", "partial", sglob("os", "system"), PAYLOAD)
    chain = reduce_of("collections", "ChainMap", reduce_of("collections", "defaultdict", factory))
    mapping = reduce_of("types", "MappingProxyType", chain)
    result = scan(call("operator", "getitem", mapping, u("k")))
    assert_code_execution(result, "os.system")


# --------------------------------------------------------------------------------------------------- formats


_SEQ: dict[str, object] = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "seq",
        "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 2]}},
            {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 1}},
        ],
    },
}


def _fn(module: str, name: str) -> dict[str, object]:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


@pytest.mark.parametrize(
    "config",
    [
        {**_SEQ, "compile_config": {"optimizer": "adam", "loss": _fn("os", "system"), "metrics": []}},
        {**_SEQ, "compile_config": {"optimizer": "adam", "loss": "mse", "metrics": [_fn("subprocess", "getoutput")]}},
        {
            **_SEQ,
            "config": {
                "name": "seq",
                "layers": [
                    {
                        "module": "attacker_pkg.layers",
                        "class_name": "Backdoor",
                        "registered_name": "Custom>Backdoor",
                        "config": {"name": "b"},
                    }
                ],
            },
        },
    ],
    ids=["loss", "metric", "custom-layer"],
)  # fmt: skip
def test_modelaudit_687_keras_custom_code_entry_points(tmp_path: Path, config: dict[str, object]) -> None:
    """Loss, metric and custom-layer injection in a .keras config, which modelaudit 0.2.27 did not report
    (https://github.com/promptfoo/modelaudit/issues/687)."""
    assert_file_caught(scan_files(tmp_path, {"model.keras": cp.keras_zip(config)}), "LW-MODEL-033")


def test_modelaudit_1559_spoofed_keras_version_does_not_clear_a_vocabulary_path(tmp_path: Path) -> None:
    """metadata.json's keras_version is written by the attacker: claiming a fixed Keras must not clear a lookup
    layer that reads a path (https://github.com/promptfoo/modelaudit/pull/1559)."""
    archive = cp.zip_of(
        {
            "metadata.json": json.dumps({"keras_version": "3.13.0", "date_saved": "2026-06-01"}).encode(),
            "config.json": json.dumps(cp.keras_lookup_path_config()).encode(),
        }
    )
    assert_file_caught(scan_files(tmp_path, {"model.keras": archive}), "LW-MODEL-033")


def test_an_ordinary_state_dict_stays_clean() -> None:
    """The modules classified here are ones a model pickle never names: an ordinary state stays clean."""
    data = (
        proto(4) + sglob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + u("a") + NEWTRUE + b"s" + STOP
    )
    assert not scan(data).findings
