"""Published bypasses of picklescan, fickling, modelscan and modelaudit (and of the loaders they guard) that the
rest of the corpus did not cite yet, swept from the advisories, changelogs and fix commits up to 2026-11.

Each payload is assembled here from opcodes or bytes and only scanned, never loaded. A case is caught when the
worst finding is HIGH or above (pickles) or the file is not clean with a HIGH finding (containers); where the
advisory names the callable, the finding must name it too, so a finding for some other reason does not pass.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import _container_payloads as cp
import pytest
from test_container_bypasses import assert_caught as assert_container_caught
from test_container_bypasses import assert_payload
from test_container_bypasses import scan as scan_files
from test_pickle_bypasses import (
    CODE,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_TUPLE,
    MARK,
    MEMOIZE,
    PAYLOAD,
    POP,
    REDUCE,
    STACK_GLOBAL,
    STOP,
    TUPLE,
    TUPLE1,
    args,
    assert_caught,
    binint1,
    call,
    get,
    glob,
    proto,
    reduce_of,
    sb,
    scan,
    sglob,
    u,
)

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, Verdict

SETITEMS = b"u"
POP_MARK = b"1"
DUP = b"2"
LIST = b"l"

# --- picklescan -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        ("aiohttp", "ClientSession", ()),
        ("aiohttp.connector", "TCPConnector", ()),
        ("http.client", "HTTPSConnection", (u("example.invalid"),)),
        ("http.client", "HTTPConnection", (u("example.invalid"),)),
        ("ssl", "get_server_certificate", (MARK + u("example.invalid") + binint1(1) + TUPLE,)),
        ("requests.api", "get", (u("https://example.invalid/?x"),)),
        ("urllib.request", "urlopen", (u("https://example.invalid/?x"),)),
    ],
)
def test_picklescan_ghsa_hgrh_qx5j_jfwx_network_modules(
    module: str, name: str, arg_ops: tuple[bytes, ...]
) -> None:
    """Network clients outside the names picklescan listed (aiohttp beyond aiohttp.client, http.client under its
    Python 3 name, ssl), fixed in picklescan PR #53:
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-hgrh-qx5j-jfwx ,
    https://github.com/mmaitre314/picklescan/pull/53 ; the aiohttp widening came with
    https://github.com/mmaitre314/picklescan/pull/50 (GHSA-mjqp-26hc-grxg in the same fix)."""
    for stack_global in (True, False):
        assert_caught(scan(call(module, name, *arg_ops, stack_global=stack_global)), f"{module}.{name}")


@pytest.mark.parametrize(("name", "arg_ops"), [("timeit", (CODE,)), ("repeat", (CODE,)), ("Timer", (CODE,))])
def test_picklescan_ghsa_v7x6_rv5q_mhwc_timeit(name: str, arg_ops: tuple[bytes, ...]) -> None:
    """timeit.timeit(stmt) compiles and runs stmt,
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-v7x6-rv5q-mhwc"""
    assert_caught(scan(call("timeit", name, *arg_ops)), f"timeit.{name}")


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        ("pydoc", "pipepager", (u("help"), PAYLOAD)),
        ("venv", "create", (u("/tmp/venv"),)),
        ("torch.serialization", "load", (u("some_other_model.bin"),)),
        (
            "torch._inductor.codecache",
            "compile_file",
            (u(""), u(""), MARK + u("sh") + u("-c") + PAYLOAD + LIST),
        ),
    ],
)
def test_picklescan_fork_fix_93764d6(module: str, name: str, arg_ops: tuple[bytes, ...]) -> None:
    """pydoc.pipepager, venv, torch.serialization.load of a second file and torch's compile_file, added to
    picklescan's list by a private-fork security fix,
    https://github.com/mmaitre314/picklescan/commit/93764d6"""
    assert_caught(scan(call(module, name, *arg_ops)), f"{module}.{name}")


def test_picklescan_fork_fix_93764d6_partial_of_os_system() -> None:
    """functools.partial(os.system, cmd)() from the same fix: the callable reached through partial is judged."""
    data = (
        proto(4)
        + sglob("functools", "partial")
        + MARK
        + sglob("os", "system")
        + PAYLOAD
        + TUPLE
        + REDUCE
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )
    assert_caught(scan(data), "os.system")


@pytest.mark.parametrize(
    "module",
    ["asyncio.unix_events", "asyncio.subprocess", "asyncio.base_subprocess"],
)
def test_picklescan_cve_2025_10157_submodule_of_blocked_package(module: str) -> None:
    """picklescan matched unsafe globals on the exact module name, so a submodule of a blocked package passed
    (CVE-2025-10157). https://jfrog.com/blog/unveiling-3-zero-day-vulnerabilities-in-picklescan/ ,
    https://nvd.nist.gov/vuln/detail/CVE-2025-10157"""
    name = {
        "asyncio.unix_events": "_UnixSubprocessTransport._start",
        "asyncio.subprocess": "create_subprocess_shell",
        "asyncio.base_subprocess": "BaseSubprocessTransport.__init__",
    }[module]
    assert_caught(scan(call(module, name, EMPTY_DICT, PAYLOAD)), f"{module}.{name}")


def test_picklescan_hf_poc_import_module_marshal_function_type() -> None:
    """importlib.import_module, marshal.loads and types.FunctionType chained into a call of code built at load time
    (a picklescan 1.0.3/1.0.4 bypass published as a proof of concept):
    https://huggingface.co/optimus-fulcria/picklescan-bypass-poc ,
    https://huggingface.co/thesecguy/poc-picklescan-marshal-bypass"""
    code_obj = reduce_of(
        "marshal", "loads", sb(b"\xe3" + b"\x00" * 40)
    )  # the shape of a code object; never run
    data = proto(4) + sglob("types", "FunctionType") + MARK + code_obj + EMPTY_DICT + TUPLE + REDUCE
    data += EMPTY_TUPLE + REDUCE + STOP
    assert_caught(scan(data), "marshal.loads", "types.FunctionType")
    assert_caught(scan(call("importlib", "import_module", u("os"))), "importlib.import_module")


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        ("codecs", "open", (u("/etc/passwd"),)),
        ("io", "open", (u("/etc/passwd"),)),
        ("io", "open_code", (u("/etc/passwd"),)),
        ("http.server", "HTTPServer", (MARK + u("0.0.0.0") + binint1(80) + TUPLE, EMPTY_DICT)),
    ],
)
def test_picklescan_hf_poc_io_and_network_aliases(module: str, name: str, arg_ops: tuple[bytes, ...]) -> None:
    """open() under other names (codecs.open, io.open) and a listening HTTP server, published as picklescan
    bypasses: https://huggingface.co/optimus-fulcria/picklescan-bypass-poc ,
    https://huggingface.co/hacnho/pickle-scanner-bypass-http-server-httpserver"""
    assert_caught(scan(call(module, name, *arg_ops)), f"{module}.{name}")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("builtins", "eval.__call__"),
        ("builtins.eval", "__call__"),
        ("builtins", "exec.__call__"),
        ("builtins", "getattr.__call__"),
    ],
)
def test_picklescan_hf_poc_proto4_dotted_builtins(module: str, name: str) -> None:
    """Protocol 4 resolves dotted names: eval reached as eval.__call__ (a picklescan denylist bypass disclosed
    through huntr, https://huggingface.co/smurly/picklescan-proto4-eval-bypass-poc)."""
    data = proto(4) + sglob(module, name) + args(CODE) + REDUCE + STOP
    assert_caught(scan(data), "__call__")


# --- fickling ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        (
            "_posixsubprocess",
            "fork_exec",
            (MARK + sb(b"/bin/sh") + TUPLE, MARK + sb(b"/bin/sh") + TUPLE, binint1(1)),
        ),
        ("site", "execsitecustomize", ()),
        ("site", "addsitedir", (u("/tmp/evil"),)),
        ("atexit", "_run_exitfuncs", ()),
        ("atexit", "register", (EMPTY_DICT,)),
    ],
)
def test_fickling_ghsa_m6fh_58r7_x697_posixsubprocess_site_atexit(
    module: str, name: str, arg_ops: tuple[bytes, ...]
) -> None:
    """_posixsubprocess.fork_exec, site (.pth / sitecustomize) and atexit were not on fickling's list
    (CVE-2026-14534); the call's result is kept in a dict by SETITEMS so it is not an unused variable either.
    https://github.com/trailofbits/fickling/security/advisories/GHSA-m6fh-58r7-x697"""
    data = proto(4) + EMPTY_DICT + MARK + u("k") + reduce_of(module, name, *arg_ops) + SETITEMS + STOP
    assert_caught(scan(data), f"{module}.{name}")


@pytest.mark.parametrize(
    ("name", "arg_ops"),
    [("architecture", (u("/bin/sh"),)), ("_syscmd_file", (u("/bin/sh"),)), ("popen", (PAYLOAD,))],
)
def test_fickling_ghsa_5cxw_w2xg_2m8h_platform(name: str, arg_ops: tuple[bytes, ...]) -> None:
    """platform runs external commands (file, uname; popen in old Pythons),
    https://github.com/trailofbits/fickling/security/advisories/GHSA-5cxw-w2xg-2m8h"""
    assert_caught(scan(call("platform", name, *arg_ops)), f"platform.{name}")


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        ("linecache", "getline", (u("/etc/passwd"), binint1(1))),
        ("linecache", "getlines", (u("/etc/passwd"),)),
        ("linecache", "updatecache", (u("/etc/passwd"),)),
        ("gc", "get_objects", ()),
        ("gc", "get_referrers", (EMPTY_DICT,)),
        ("gc", "get_referents", (EMPTY_DICT,)),
    ],
)
def test_fickling_ghsa_r48f_3986_4f9c_linecache_gc(
    module: str, name: str, arg_ops: tuple[bytes, ...]
) -> None:
    """linecache reads arbitrary files; gc hands out references to live objects (modules included),
    https://github.com/trailofbits/fickling/security/advisories/GHSA-r48f-3986-4f9c"""
    assert_caught(scan(call(module, name, *arg_ops)), f"{module}.{name}")


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        ("socketserver", "TCPServer", (MARK + u("0.0.0.0") + binint1(80) + TUPLE, EMPTY_DICT)),
        ("xmlrpc.server", "SimpleXMLRPCServer", (MARK + u("0.0.0.0") + binint1(80) + TUPLE,)),
        ("xmlrpc.client", "ServerProxy", (u("http://example.invalid/"),)),
        ("signal", "signal", (binint1(15), EMPTY_DICT)),
        ("threading", "Thread", ()),
        ("_thread", "start_new_thread", (EMPTY_DICT, EMPTY_TUPLE)),
        ("sqlite3", "connect", (u("/tmp/x.db"),)),
        ("fileinput", "input", (u("/etc/passwd"),)),
        ("glob", "glob", (u("/home/*/.ssh/*"),)),
        ("compileall", "compile_dir", (u("/tmp"),)),
        ("py_compile", "compile", (u("/tmp/x.py"),)),
        ("mmap", "mmap", (binint1(3), binint1(0))),
        ("select", "select", (EMPTY_LIST, EMPTY_LIST, EMPTY_LIST)),
        ("logging", "FileHandler", (u("/tmp/x"),)),
        ("logging.config", "listen", ()),
        ("syslog", "syslog", (u("x"),)),
        ("tarfile", "open", (u("/tmp/x.tar"),)),
        ("zipfile", "ZipFile", (u("/tmp/x.zip"), u("w"))),
        ("shelve", "open", (u("/tmp/x"),)),
    ],
)
def test_fickling_ghsa_mhc9_48gj_9gp3_stdlib_side_effects(
    module: str, name: str, arg_ops: tuple[bytes, ...]
) -> None:
    """Servers, signals, threads, databases, file enumeration and writing, compilation to .pyc, mmap, logging
    and archive modules, https://github.com/trailofbits/fickling/security/advisories/GHSA-mhc9-48gj-9gp3"""
    assert_caught(scan(call(module, name, *arg_ops)), f"{module}.{name}")


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        ("doctest", "debug_src", (CODE,)),
        ("doctest", "run_docstring_examples", (CODE, EMPTY_DICT)),
        ("unittest.mock", "_importer", (u("os"),)),
        ("unittest.mock", "_dot_lookup", (EMPTY_DICT, u("system"), u("os.system"))),
        ("test.support.import_helper", "import_module", (u("os"),)),
    ],
)
def test_fickling_ghsa_pc6j_px3p_rrj4_doctest_unittest_test(
    module: str, name: str, arg_ops: tuple[bytes, ...]
) -> None:
    """doctest evaluates source; unittest.mock and test.support import modules and look attributes up,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-pc6j-px3p-rrj4"""
    assert_caught(scan(call(module, name, *arg_ops)), f"{module}.{name}")


@pytest.mark.parametrize(
    ("module", "name", "arg_ops", "commit"),
    [
        ("inspect", "getattr_static", (EMPTY_DICT, u("system")), "9a6d03f"),
        ("_frozen_importlib", "_bootstrap._load", (EMPTY_DICT,), "b9e690c"),
        ("_frozen_importlib_external", "SourceFileLoader", (u("x"), u("/tmp/x.py")), "b9e690c"),
        ("_imp", "create_dynamic", (EMPTY_DICT,), "b9e690c"),
        ("imp", "load_source", (u("x"), u("/tmp/x.py")), "3bc5d66"),
        ("pipes", "Template", (), "3bc5d66"),
    ],
)
def test_fickling_blocklist_commits(module: str, name: str, arg_ops: tuple[bytes, ...], commit: str) -> None:
    """Gadgets fickling added to its unsafe imports after reports: inspect.getattr_static (a getattr equivalent),
    the frozen importlib modules and _imp (live modules, loading scripts and extensions), imp.load_source and
    pipes.Template (https://github.com/trailofbits/fickling/commit/<commit>)."""
    assert_caught(scan(call(module, name, *arg_ops)), f"{module}.{name.split('.')[0]}")


@pytest.mark.parametrize(
    ("module", "name"), [("pickle", "_loads"), ("pickle", "_load"), ("pickle", "_Unpickler")]
)
def test_fickling_ghsa_fphw_536r_4p88_pure_python_unpickler(module: str, name: str) -> None:
    """pickle._loads/_load/_Unpickler are the pure-Python unpickler, a second entry point hooks missed
    (https://github.com/trailofbits/fickling/security/advisories/GHSA-fphw-536r-4p88 , and the run_hook gaps of
    https://github.com/trailofbits/fickling/security/advisories/GHSA-wccx-j62j-r448). Statically it is a nested
    pickle load: the call and the embedded payload are both reported."""
    inner = call("os", "system", PAYLOAD)
    result = scan(call(module, name, sb(inner)))
    assert_caught(result, f"{module}.{name}")
    if name == "_loads":
        assert_caught(result, "os.system")


@pytest.mark.parametrize("tail", [POP, DUP + POP + POP, POP_MARK])
def test_fickling_call_result_discarded(tail: bytes) -> None:
    """A call whose result is popped vanished from fickling's AST (reported through coordinated disclosure by the
    modelaudit authors, https://www.promptfoo.dev/blog/open-sourcing-modelaudit ; class of
    https://github.com/trailofbits/fickling/security/advisories/GHSA-mxhj-88fx-4pcv)."""
    head = MARK if tail == POP_MARK else b""
    data = proto(2) + head + glob("os", "system") + args(PAYLOAD) + REDUCE + tail + EMPTY_DICT + STOP
    assert_caught(scan(data), "os.system")


# --- modelaudit --------------------------------------------------------------------------------------------


def _binunicode8(s: str) -> bytes:
    raw = s.encode()
    return b"\x8d" + struct.pack("<Q", len(raw)) + raw


def test_modelaudit_1524_binunicode8_names() -> None:
    """STACK_GLOBAL operands written as BINUNICODE8, which scanners listing only the shorter string opcodes
    miss, https://github.com/promptfoo/modelaudit/pull/1524"""
    data = proto(4) + _binunicode8("os") + _binunicode8("system") + STACK_GLOBAL + _binunicode8("id")
    data += TUPLE1 + REDUCE + STOP
    assert_caught(scan(data), "os.system")


@pytest.mark.parametrize("separator", [b"\x00" * 64, b"\n-- padding --\n", b"\xff\xfe" * 8])
def test_modelaudit_1524_stream_after_separator(separator: bytes) -> None:
    """A benign pickle, then padding or bytes no opcode starts with, then the payload: the loaders that read
    several pickles from one file reach it, https://github.com/promptfoo/modelaudit/pull/1524"""
    data = proto(2) + EMPTY_DICT + STOP + separator + call("os", "system", PAYLOAD)
    assert_caught(scan(data), "os.system")


def test_modelaudit_decoy_strings_before_stack_global() -> None:
    """Decoy strings pushed and popped (or memoized) around the real STACK_GLOBAL operands, the "decoy-string and
    BINGET bypasses" in https://github.com/promptfoo/modelaudit/blob/main/CHANGELOG.md"""
    popped = (
        proto(4) + u("os") + u("torch") + POP + u("system") + STACK_GLOBAL + PAYLOAD + TUPLE1 + REDUCE + STOP
    )
    assert_caught(scan(popped), "os.system")
    memo = proto(4) + u("os") + MEMOIZE + POP + u("torch") + u("FloatStorage") + POP + POP
    memo += get(0) + u("system") + STACK_GLOBAL + PAYLOAD + TUPLE1 + REDUCE + STOP
    assert_caught(scan(memo), "os.system")


@pytest.mark.parametrize(
    ("module", "name"), [("joblib", "load"), ("joblib.numpy_pickle", "load"), ("numpy", "load")]
)
def test_modelaudit_loader_trampoline(module: str, name: str) -> None:
    """A pickle that calls another loader on another file ("treat joblib.load as always dangerous ... to block
    loader trampoline bypasses", https://github.com/promptfoo/modelaudit/blob/main/CHANGELOG.md)."""
    assert_caught(scan(call(module, name, u("/tmp/second.pkl"))), f"{module}.{name}")


@pytest.mark.parametrize(
    ("module", "name", "arg_ops", "cve"),
    [
        ("torch.jit.annotations", "parse_type_line", (CODE, EMPTY_DICT, binint1(0)), "CVE-2022-45907"),
        ("torch.distributed.rpc", "rpc_sync", (u("worker"), EMPTY_DICT), "CVE-2024-5480"),
        ("torch.distributed.rpc.internal", "_run_function", (EMPTY_DICT,), "CVE-2024-5480"),
        (
            "torch.distributed.nn.api.remote_module",
            "_remote_module_receiver",
            (EMPTY_DICT,),
            "CVE-2024-48063",
        ),
    ],
)
def test_modelaudit_pytorch_cves_as_pickle_globals(
    module: str, name: str, arg_ops: tuple[bytes, ...], cve: str
) -> None:
    """PyTorch functions that evaluate strings or run remote calls, detected by modelaudit as pickle globals
    (https://github.com/promptfoo/modelaudit/pull/611 ; https://nvd.nist.gov/vuln/detail/<cve>)."""
    assert_caught(scan(call(module, name, *arg_ops)), f"{module}.{name}")


# --- huntr model-file disclosures published as proofs of concept (2026) --------------------------------------


def test_huntr_import_module_then_getattr_static() -> None:
    """importlib.import_module("os") then inspect.getattr_static(mod, "system"): "system" is only a string argument,
    never a GLOBAL (picklescan 1.0.4 and modelscan bypass),
    https://huggingface.co/xry6/huntr-picklescan-bypass-poc ,
    https://huggingface.co/EnigmaConsultant/huntr-poc-pickle-getattrstatic-import-module-bypass ,
    https://huggingface.co/sfwani/mfv-getattr-static-bypass-joblib"""
    resolved = reduce_of(
        "inspect", "getattr_static", reduce_of("importlib", "import_module", u("os")), u("system")
    )
    assert_caught(scan(proto(4) + resolved + args(PAYLOAD) + REDUCE + STOP), "inspect.getattr_static", "os")


def test_huntr_import_module_then_methodcaller() -> None:
    """operator.methodcaller("system", cmd) applied to importlib.import_module("os") (a modelscan bypass),
    https://huggingface.co/bassia/pickle-scanner-bypass-poc"""
    data = proto(4) + sglob("operator", "methodcaller") + args(u("system"), PAYLOAD) + REDUCE
    data += args(reduce_of("importlib", "import_module", u("os"))) + REDUCE + STOP
    assert_caught(scan(data), "operator.methodcaller", "os.system")


@pytest.mark.parametrize("name", ["bash", "sh", "Command", "zsh"])
def test_huntr_sh_module_getattr_commands(name: str) -> None:
    """The sh package makes any attribute a command wrapper (sh.bash("-c", cmd)); it bypassed modelaudit 0.2.37,
    picklescan and modelscan, https://huggingface.co/SiggytheShark/pickle-bypass-sh-bash-getattr"""
    for stack_global in (True, False):
        assert_caught(scan(call("sh", name, u("-c"), PAYLOAD, stack_global=stack_global)), f"sh.{name}")


def test_huntr_typing_get_type_hints_evaluates_annotations() -> None:
    """typing.get_type_hints on an argparse.Namespace whose __annotations__ (planted by BUILD) hold source text:
    the annotations are eval'd (a bypass of fickling, modelscan and picklescan),
    https://huggingface.co/datasets/wulonchia/pickle-typing-bypass-poc"""
    annotations = EMPTY_DICT + MARK + u("x") + CODE + SETITEMS
    namespace = sglob("argparse", "Namespace") + EMPTY_TUPLE + REDUCE
    namespace += EMPTY_DICT + MARK + u("__annotations__") + annotations + SETITEMS + b"b"
    data = proto(4) + sglob("typing", "get_type_hints") + MARK + namespace + TUPLE + REDUCE + STOP
    assert_caught(scan(data), "typing.get_type_hints")


def test_huntr_pathlib_write_then_source_file_loader() -> None:
    """pathlib.Path.write_text writes a module, importlib.machinery.SourceFileLoader loads it (picklescan 1.0.5 and
    modelscan 0.8.8 bypass), https://huggingface.co/EnigmaConsultant/huntr-poc-pickle-pathlib-sourcefileloader-writeload-bypass"""
    path = reduce_of("pathlib", "Path", u("/tmp/m.py"))
    write = proto(4) + sglob("pathlib", "Path.write_text") + args(path, CODE) + REDUCE + POP
    load = reduce_of("importlib.machinery", "SourceFileLoader", u("m"), u("/tmp/m.py"))
    data = write + sglob("importlib.machinery", "SourceFileLoader.load_module") + args(load) + REDUCE + STOP
    assert_caught(scan(data), "pathlib.Path.write_text", "SourceFileLoader")


@pytest.mark.parametrize(
    ("module", "name", "arg_ops"),
    [
        ("distutils.spawn", "spawn", (MARK + u("sh") + u("-c") + PAYLOAD + LIST,)),
        ("cProfile", "run", (CODE,)),
        ("timeit", "timeit", (CODE,)),
    ],
)
def test_huntr_modelscan_joblib_gadgets(module: str, name: str, arg_ops: tuple[bytes, ...]) -> None:
    """Gadgets modelscan missed in joblib files, https://huggingface.co/wulonchia/modelscan-pickle-bypass-poc"""
    assert_caught(scan(call(module, name, *arg_ops)), f"{module}.{name}")


@pytest.mark.parametrize("memo_op", [MEMOIZE, b"q\x00"])
def test_huntr_modelscan_memo_poison_after_pop(memo_op: bytes) -> None:
    """A memo put right after POP stores the real stack top, which a scanner that memoizes the previous opcode's
    argument records as None; the later GET crashes its name check into "no issues",
    https://huggingface.co/celvexgroup/modelscan-memo-poison-poc"""
    data = proto(4) + u("builtins") + u("junk") + POP + memo_op + POP + u("decoy") + POP
    data += get(0) + u("exec") + STACK_GLOBAL + args(CODE) + REDUCE + STOP
    assert_caught(scan(data), "builtins.exec")


@pytest.mark.parametrize("separator", [b"\xfe", b"\xfe\xfe\xfe"])
def test_huntr_modelscan_parser_crash_after_benign_global(separator: bytes) -> None:
    """A benign global, then a byte that is no opcode, then the payload: modelscan's disassembler stopped with
    benign globals and no error, https://huggingface.co/hoanghai2110/scanner-bypass-poc"""
    head = proto(2) + glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + STOP
    assert_caught(scan(head + separator + call("os", "system", PAYLOAD)), "os.system")
    mid = proto(2) + glob("collections", "OrderedDict") + separator + call("os", "system", PAYLOAD)
    assert_caught(scan(mid), "os.system")


@pytest.mark.parametrize(("module", "name"), [("builtins", "exec"), ("os", "system")])
def test_huntr_double_build_plants_setstate(module: str, name: str) -> None:
    """BUILD puts __setstate__ = <callable> in an object's __dict__, a second BUILD calls it with the state,
    https://huggingface.co/sfwani/mfv-getattr-static-bypass-joblib (chain B)"""
    obj = sglob("argparse", "Namespace") + EMPTY_TUPLE + REDUCE
    plant = EMPTY_DICT + MARK + u("__setstate__") + sglob(module, name) + SETITEMS + b"b"
    data = proto(4) + obj + plant + (CODE if module == "builtins" else PAYLOAD) + b"b" + STOP
    assert_caught(scan(data), f"{module}.{name}")


# --- containers --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [0x20, 0x40])
def test_sonatype_cve_2025_1945_zip_flag_bits(tmp_path: Path, bits: int) -> None:
    """Zip general-purpose flag bits (compressed patched data 0x20, strong encryption 0x40) that make Python's
    zipfile refuse a member torch still reads (CVE-2025-1945, picklescan's malicious1_0x20/0x40 fixtures).
    https://nvd.nist.gov/vuln/detail/CVE-2025-1945"""
    data = cp.set_flags(cp.torch_zip(cp.evil_pickle()), "archive/data.pkl", bits)
    res = scan_files(tmp_path, {"model.pt": data})
    assert_container_caught(res)
    assert_payload(res)


@pytest.mark.parametrize("local_name", ["archive/data.txt", "archive/DATA.PKL", "archive/data.pk\x00"])
def test_sonatype_cve_2025_1944_local_name_mismatch(tmp_path: Path, local_name: str) -> None:
    """The local header names the member differently from the central directory, so a scanner that matches names
    in one and reads the other skips the pickle (CVE-2025-1944). https://nvd.nist.gov/vuln/detail/CVE-2025-1944"""
    data = cp.rename_local(cp.torch_zip(cp.evil_pickle()), "archive/data.pkl", local_name)
    res = scan_files(tmp_path, {"model.pt": data})
    assert_container_caught(res, "LW-MODEL-021")
    assert_payload(res)


@pytest.mark.parametrize(
    "member", ["archive/extra", "archive/config.json", "archive/notes.txt", "payload.bin"]
)
def test_sonatype_cve_2025_1889_pickle_member_with_other_name(tmp_path: Path, member: str) -> None:
    """A pickle stored in a torch archive under a name without a pickle extension (CVE-2025-1889), loaded by
    ``torch.load(..., pickle_file="config.json")`` as in picklescan's fixture for the fix
    (https://github.com/mmaitre314/picklescan/commit/93764d6). https://nvd.nist.gov/vuln/detail/CVE-2025-1889
    (Raw storages under ``<root>/data/`` are not interpreted by design, docs/rules.md LW-MODEL-030.)"""
    data = cp.torch_zip(cp.benign_pickle(), extra={member: cp.evil_pickle()})
    res = scan_files(tmp_path, {"model.pt": data})
    assert_container_caught(res)
    assert_payload(res)


@pytest.mark.parametrize("prefix", [b"", b"(l", b"(", b"N0"])
def test_modelaudit_624_protocol0_pickle_in_text_member(tmp_path: Path, prefix: bytes) -> None:
    """Protocol 0/1 pickles (text opcodes, no PROTO header) in zip members named .txt, also behind MARK/LIST
    opcodes before the GLOBAL, https://github.com/promptfoo/modelaudit/pull/624"""
    res = scan_files(tmp_path, {"bundle.zip": cp.zip_of({"payload.txt": prefix + cp.evil_pickle(0)})})
    assert_container_caught(res)
    assert_payload(res)


def test_modelaudit_624_plain_text_member_stays_clean(tmp_path: Path) -> None:
    """The benign counterpart: ordinary text members (including lines that start like opcodes) are not pickles."""
    text = b"(c) 2024 the authors\nlicense: apache-2.0\ncos similarity notes\n"
    res = scan_files(tmp_path, {"bundle.zip": cp.zip_of({"README.txt": text, "notes.txt": b"S'quoted'\n"})})
    assert res[0].verdict is Verdict.CLEAN, res[0]


@pytest.mark.parametrize(
    "location", ["weights/../../secret.bin", "./../secret.bin", "a/b/../../../secret.bin"]
)
def test_onnx_cve_2025_51480_save_external_data_traversal(tmp_path: Path, location: str) -> None:
    """external_data locations that climb out of the model folder after a harmless-looking prefix: onnx's
    save_external_data writes there (arbitrary file overwrite, CVE-2025-51480) and loading reads there.
    https://nvd.nist.gov/vuln/detail/CVE-2025-51480"""
    res = scan_files(tmp_path, {"model.onnx": cp.onnx_model(location)})
    assert_container_caught(res, "LW-MODEL-035")


def test_onnx_external_data_inside_folder_stays_clean(tmp_path: Path) -> None:
    """The benign counterpart: a location inside the model folder, with the file present."""
    res = scan_files(
        tmp_path, {"model.onnx": cp.onnx_model("weights/model.bin"), "weights/model.bin": b"\0" * 16}
    )
    assert res[0].verdict is Verdict.CLEAN, res[0]


def _keras_seq(*layers: dict[str, object]) -> dict[str, object]:
    first = {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 2]}}
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "s", "layers": [first, *layers]},
    }


@pytest.mark.parametrize("module", ["keras.layers", "keras.src.utils.torch_utils"])
def test_keras_cve_2025_49655_torch_module_wrapper(tmp_path: Path, module: str) -> None:
    """TorchModuleWrapper.from_config torch.loads (weights_only=False) the base64 module in its config, safe mode
    or not (CVE-2025-49655, and its direct from_config variant in Keras 3.14).
    https://nvd.nist.gov/vuln/detail/CVE-2025-49655 ,
    https://huggingface.co/Kanisia/keras-torchmodulewrapper-from-config-rce"""
    blob = base64.b64encode(cp.torch_zip(cp.evil_pickle())).decode()
    layer = {"module": module, "class_name": "TorchModuleWrapper", "config": {"name": "t", "module": blob}}
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_keras_seq(layer))})
    assert_container_caught(res, "LW-MODEL-033")


def test_keras_ordinary_layers_stay_clean(tmp_path: Path) -> None:
    """The benign counterpart: Dense with a built-in activation and a Keras initializer."""
    dense = {
        "module": "keras.layers",
        "class_name": "Dense",
        "config": {
            "units": 4,
            "activation": "relu",
            "kernel_initializer": {
                "module": "keras.initializers",
                "class_name": "GlorotUniform",
                "config": {"seed": None},
                "registered_name": None,
            },
        },
        "registered_name": None,
    }
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_keras_seq(dense))})
    assert res[0].verdict is Verdict.CLEAN, res[0]


def test_keras_hf_poc_function_type_object_in_config(tmp_path: Path) -> None:
    """config.json naming types.FunctionType as an object to deserialize (a safe_mode bypass published as
    https://huggingface.co/Catalyzer9867/keras-safe-mode-bypass-poc)."""
    act = {"module": "types", "class_name": "FunctionType", "config": {"code": "x"}, "registered_name": None}
    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"units": 1, "activation": act}}
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_keras_seq(dense))})
    assert_container_caught(res, "LW-MODEL-033")


def test_keras_cve_2025_9905_hdf5_lambda_in_functional_model(tmp_path: Path) -> None:
    """Legacy HDF5 models ignored safe_mode for Lambda layers (CVE-2025-9905); here the Lambda sits in a Functional
    model's layer list and a second copy in training_config. https://nvd.nist.gov/vuln/detail/CVE-2025-9905"""
    h5py = pytest.importorskip("h5py")
    lam = cp.keras_lambda_config()["config"]["layers"][1]  # type: ignore[index]
    functional = {"class_name": "Functional", "config": {"name": "f", "layers": [lam]}}
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(functional)
        f.attrs["keras_version"] = "2.15.0"
    res = list(scan_paths([str(path)], jobs=1).targets)
    assert_container_caught(res, "LW-MODEL-032", Severity.CRITICAL)


def test_torch_legacy_tar_format(tmp_path: Path) -> None:
    """The oldest torch.save format, a tar of sys_info/pickle/storages/tensors members without extensions, one of
    the loading paths scanners skip ("The Art of Hide and Seek", https://arxiv.org/abs/2508.19774)."""
    members = {
        "sys_info": cp.benign_pickle(),
        "pickle": cp.evil_pickle(),
        "storages": cp.benign_pickle(),
        "tensors": cp.benign_pickle(),
    }
    res = scan_files(tmp_path, {"model.pth": cp.tar_of(members, mode="w:")})
    assert_container_caught(res)
    assert_payload(res)


@pytest.mark.parametrize("where", ["compile_config", "nested", "training_config"])
def test_hf_poc_keras_lambda_outside_the_layer_list(tmp_path: Path, where: str) -> None:
    """Lambda layers where a scanner that only walks config.layers does not look: compile_config (.keras), wrapped
    in another layer (TimeDistributed), training_config (HDF5): modelscan bypasses published as
    https://huggingface.co/jeikei97/modelscan-keras-compile-config-lambda-bypass ,
    https://huggingface.co/jeikei97/modelscan-keras-nested-lambda-bypass ,
    https://huggingface.co/jeikei97/modelscan-h5-nested-lambda-bypass"""
    lam = cp.keras_lambda_config()["config"]["layers"][1]  # type: ignore[index]
    empty = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": []}}
    if where == "compile_config":
        cfg = dict(empty, compile_config={"loss": lam})
        res = scan_files(tmp_path, {"model.keras": cp.keras_zip(cfg)})
    elif where == "nested":
        wrapper = {"module": "keras.layers", "class_name": "TimeDistributed", "config": {"layer": lam}}
        res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_keras_seq(wrapper))})
    else:
        h5py = pytest.importorskip("h5py")
        path = tmp_path / "model.h5"
        with h5py.File(path, "w") as f:
            f.attrs["model_config"] = json.dumps(empty)
            f.attrs["training_config"] = json.dumps({"loss": lam})
        res = list(scan_paths([str(path)], jobs=1).targets)
    assert_container_caught(res, "LW-MODEL-032", Severity.CRITICAL)


def test_hf_poc_hdf5_torch_module_wrapper(tmp_path: Path) -> None:
    """TorchModuleWrapper in an HDF5 model_config: modelscan's H5 scanner looks for Lambda only,
    https://huggingface.co/captainarp/h5-torch-wrapper-modelscan-bypass-poc"""
    h5py = pytest.importorskip("h5py")
    blob = base64.b64encode(cp.evil_pickle()).decode()
    layer = {
        "module": "keras.layers",
        "class_name": "TorchModuleWrapper",
        "config": {"name": "t", "module": blob},
    }
    path = tmp_path / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(_keras_seq(layer))
        f.attrs["keras_version"] = "3.11.0"
    assert_container_caught(list(scan_paths([str(path)], jobs=1).targets), "LW-MODEL-033")


@pytest.mark.parametrize("layout", ["appended-zip", "zip-as-tensor"])
def test_hf_poc_safetensors_zip_polyglot(tmp_path: Path, layout: str) -> None:
    """A torch zip carried by a safetensors file (after its last tensor, or as a U8 tensor's bytes): torch.load of
    the same file finds the zip's end of central directory, https://huggingface.co/jeikei97/safetensors-zip-polyglot-payload-smuggling"""
    z = cp.torch_zip(cp.evil_pickle())
    if layout == "appended-zip":
        data = (
            cp.safetensors_file({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4) + z
        )
    else:
        data = cp.safetensors_file({"w": {"dtype": "U8", "shape": [len(z)], "data_offsets": [0, len(z)]}}, z)
    res = scan_files(tmp_path, {"model.safetensors": data})
    assert_container_caught(res)
    assert_payload(res)


def test_hf_poc_savedmodel_is_not_clean(tmp_path: Path) -> None:
    """TensorFlow SavedModels with file-writing ops other than WriteFile (PrintV2 to a file://, SaveV2) passed
    modelscan, https://huggingface.co/wladislax/tensorflow-savedmodel-modelscan-bypass . loopwarden does not parse
    SavedModel graphs: the file must be unverified, never clean."""
    graph = b"\x08\x01\x12\x40" + b"\n\x07PrintV2\x12\x0boutput_stream\x1a\x12file:///tmp/owned" + b"\x00" * 8
    res = scan_files(tmp_path, {"saved_model.pb": graph})
    assert res[0].verdict is Verdict.UNVERIFIED, res[0]


@pytest.mark.parametrize("head", [b"I0x10\n0", b"I010\n0", b"I-0x1\n0", b"L0x10L\n0"])
def test_int_text_opcode_parse_differential(head: bytes) -> None:
    """CPython's C unpickler parses the INT opcode with strtol(base 0) ("I0x10" is 16, "I010" is 8) and LONG with
    int(..., 0), where pickletools-based scanners raise and stop before the payload
    (https://github.com/python/cpython/blob/main/Modules/_pickle.c , load_int/load_long)."""
    assert_caught(scan(head + b"cos\nsystem\n(Vid\ntR."), "os.system")
