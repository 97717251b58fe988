"""Round 19: R serialized models (``.rds``/``.rda``) and XML model files.

R's ``readRDS``/``load``/``unserialize`` rebuild promises, closures, calls and bytecode. CVE-2024-27322
(HiddenLayer, fixed in R 4.4.0 for a promise at the top level only) showed that an unforced promise (PROMSXP) runs
its expression when the loaded value is first used; an environment's promise (``delayedAssign``) or active binding
(``makeActiveBinding``) runs when the variable is read, and closures or calls (``update()`` evaluates a model's
stored ``call``) run when the model's methods are called. Before this round an R stream was ``unverified`` in its
binary forms (XDR ``X``, native ``B``, ``RDX``) but **clean** in its ASCII forms (``saveRDS(ascii = TRUE)``,
``save(ascii = TRUE)``, also gzip/bzip2/xz-compressed: they read as text) and as a native-binary stream whose
first bytes are also a short pickle (``B`` is BINBYTES: the stream is the pickle's bytes constant, the pickle
clean). Every attack case below is such a form, and scanned clean before; each was confirmed with R 4.2.2
(Debian ``r-base-core``): ``readRDS``/``load`` and a use of the value wrote the marker file.

Each file is built here, by a small writer of R's serialization format (``_Rds``), never by R; R (when
``Rscript`` is installed) only confirms that it runs the payload, and writes the benign files (lm, glm, data
frames, lists, compiled closures, randomForest when installed) that must stay clean.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

MARKER = "/srv/r19-marker"
"""The file the payloads touch in the bench cases (test data; the R confirmation builds them with a marker in its
temporary folder)."""

# SEXP types and serialization pseudo-types (R's serialize.c)
_SYM, _LIST, _CLO, _ENV, _PROM, _LANG, _CHAR, _INT, _REAL, _STR, _VEC = 1, 2, 3, 4, 5, 6, 9, 13, 14, 16, 19
_NIL, _GLOBAL, _UNBOUND, _EMPTY, _ALTREP, _NAMESPACE = 254, 253, 252, 242, 238, 249
_ATTR, _TAG, _OBJ = 1 << 9, 1 << 10, 1 << 8


class _Rds:
    """A writer of R serialization streams: XDR (``X``), native little-endian (``B``) or ASCII (``A``)."""

    def __init__(self, kind: str = "X", version: int = 3) -> None:
        self.kind, self.out = kind, bytearray()
        self.syms: dict[str, int] = {}
        self.refs = 0
        self.out += f"{kind}\n".encode()
        self.int(version)
        self.int(0x040202)
        self.int(0x030500 if version == 3 else 0x020300)
        if version == 3:
            self.string(b"UTF-8")

    def int(self, v: int) -> None:
        if self.kind == "A":
            self.out += f"{v}\n".encode()
        else:
            self.out += struct.pack(">i" if self.kind == "X" else "<i", v)

    def double(self, v: float) -> None:
        if self.kind == "A":
            self.out += f"{v!r}\n".encode()
        else:
            self.out += struct.pack(">d" if self.kind == "X" else "<d", v)

    def string(self, s: bytes) -> None:
        self.int(len(s))
        if self.kind == "A":
            self.out += (
                "".join(
                    c if 32 < ord(c) < 127 and c != "\\" else f"\\{ord(c):03o}" for c in s.decode("latin-1")
                )
                + "\n"
            ).encode()
        else:
            self.out += s

    def flags(self, t: int, extra: int = 0, levels: int = 0) -> None:
        self.int(t | extra | (levels << 12))

    # items ------------------------------------------------------------------------------------------------
    def nil(self) -> None:
        self.flags(_NIL)

    def char(self, s: str) -> None:
        self.flags(_CHAR, levels=64)  # ASCII
        self.string(s.encode())

    def sym(self, name: str) -> None:
        if name in self.syms:
            self.flags(255, self.syms[name] << 8)  # REFSXP with the index packed in the flags
            return
        self.flags(_SYM)
        self.char(name)
        self.refs += 1
        self.syms[name] = self.refs

    def strs(self, *values: str) -> None:
        self.flags(_STR)
        self.int(len(values))
        for v in values:
            self.char(v)

    def reals(self, *values: float) -> None:
        self.flags(_REAL)
        self.int(len(values))
        for v in values:
            self.double(v)

    def call(self, fn: str | None, *args: object) -> None:
        """A call ``fn(args...)``; an arg is a str (a character constant), a float, ``("sym", name)``, a
        ``("call", fn, args...)`` tuple, ``("named", name, arg)``, or a callable writing an item."""
        self.flags(_LANG)
        if fn is None:
            pass
        elif "::" in fn and fn != "::":
            pkg, name = fn.split("::")
            self.call("::", ("sym", pkg), ("sym", name))
        else:
            self.sym(fn)
        for a in args:
            if isinstance(a, tuple) and a[0] == "named":  # name = value
                self.flags(_LIST, _TAG)
                self.sym(a[1])
                self.value(a[2])
                continue
            self.flags(_LIST)
            self.value(a)
        self.nil()

    def value(self, a: object) -> None:
        if isinstance(a, str):
            self.strs(a)
        elif isinstance(a, float):
            self.reals(a)
        elif isinstance(a, tuple) and a[0] == "sym":
            self.sym(a[1])
        elif isinstance(a, tuple) and a[0] == "call":
            self.call(a[1], *a[2:])
        elif callable(a):
            a()
        else:
            raise TypeError(a)

    def closure(self, body: object, formals: tuple[str, ...] = ("x",)) -> None:
        self.flags(_CLO, _TAG)
        self.flags(_GLOBAL)  # environment
        for name in formals:
            self.flags(_LIST, _TAG)
            self.sym(name)
            self.flags(251)  # R_MissingArg: no default
        self.nil()
        self.value(body)

    def promise(self, code: object, *, forced: object = None) -> None:
        self.flags(_PROM, _TAG if forced is None else 0)
        if forced is None:
            self.flags(_GLOBAL)  # environment: not forced
            self.flags(_UNBOUND)
        else:
            self.value(forced)
        self.value(code)

    def env(self, frame: dict[str, object], *, active: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.flags(_ENV)
        self.int(0)  # locked
        self.refs += 1
        self.flags(_GLOBAL)  # enclosure
        for name, v in frame.items():
            self.flags(_LIST, _TAG, levels=(1 << 15) if name in active else 0)
            self.sym(name)
            self.value(v)
        self.nil()
        self.nil()  # hash table
        self.nil()  # attributes

    def named_list(self, items: dict[str, object], cls: str | None = None) -> None:
        self.flags(_VEC, _ATTR | (_OBJ if cls else 0))
        self.int(len(items))
        for v in items.values():
            self.value(v)
        self.flags(_LIST, _TAG)
        self.sym("names")
        self.strs(*items)
        if cls:
            self.flags(_LIST, _TAG)
            self.sym("class")
            self.strs(cls)
        self.nil()

    def pairlist(self, items: dict[str, object]) -> None:
        """The body of a ``save()`` file: tagged values."""
        for name, v in items.items():
            self.flags(_LIST, _TAG)
            self.sym(name)
            self.value(v)
        self.nil()

    def bytes(self) -> bytes:
        return bytes(self.out)


def _system(marker: str = MARKER) -> tuple[str, ...]:
    return ("call", "system", f"touch {marker}")


_SYSTEM = _system()


def _prom_top(r: _Rds, code: object = _SYSTEM) -> None:
    r.promise(code)


def _prom_env(r: _Rds, code: object = _SYSTEM) -> None:
    r.env({"coefficients": lambda: r.promise(code)})


def _model_with(r: _Rds, **extra: object) -> None:
    r.named_list({"coefficients": 1.5, **extra}, cls="lm")


def _polyglot(code: object = _SYSTEM) -> bytes:
    """A native-binary stream whose first bytes are also a pickle: ``B`` (BINBYTES) takes the next four bytes,
    ``\\n\\x03\\x00\\x00`` = 778, as a length; the stream fits in those 778 bytes, R ignores what follows it, and
    the pickle ends with STOP right after them."""
    r = _Rds("B")
    _prom_top(r, code)
    body = r.bytes()
    assert len(body) <= 783
    return body + b"\x00" * (783 - len(body)) + b"."


def _attacks(marker: str = MARKER) -> dict[str, tuple[dict[str, bytes], str, Severity, str]]:
    """case -> (files, rule id, severity, R code that loads and uses the value); the payloads touch ``marker``."""
    system = _system(marker)
    use_top = 'x <- readRDS("{f}"); print(x)'
    use_env = 'e <- readRDS("{f}"); print(e$coefficients)'
    use_model = 'm <- readRDS("{f}"); print(m$predict(1))'
    cases: dict[str, tuple[dict[str, bytes], str, Severity, str]] = {}

    def add(name: str, fname: str, data: bytes, rule: str, sev: Severity, use: str) -> None:
        cases[name] = ({fname: data}, rule, sev, use)

    def b(kind: str, write: object) -> bytes:
        r = _Rds(kind)
        write(r)  # type: ignore[operator]
        return r.bytes()

    top, env = b("A", lambda r: _prom_top(r, system)), b("A", lambda r: _prom_env(r, system))
    add("r19_rds_ascii_promise", "model.rds", top, "LW-MODEL-060", Severity.CRITICAL, use_top)
    add("r19_rds_ascii_env_promise", "model.rds", env, "LW-MODEL-060", Severity.CRITICAL, use_env)
    add("r19_rds_ascii_gz_promise", "model.rds", gzip.compress(env, mtime=0), "LW-MODEL-060",
        Severity.CRITICAL, use_env)  # fmt: skip
    add(
        "r19_rds_ascii_bz2_promise",
        "model.rds",
        bz2.compress(env),
        "LW-MODEL-060",
        Severity.CRITICAL,
        use_env,
    )
    add(
        "r19_rds_ascii_xz_promise",
        "model.rds",
        lzma.compress(env),
        "LW-MODEL-060",
        Severity.CRITICAL,
        use_env,
    )
    # any file name: readRDS reads the content
    add(
        "r19_rds_ascii_v2_promise",
        "fit.bin",
        _v2(lambda r: _prom_top(r, system)),
        "LW-MODEL-060",
        Severity.CRITICAL,
        use_top,
    )
    add(
        "r19_rds_native_pickle_polyglot",
        "model.rds",
        _polyglot(system),
        "LW-MODEL-060",
        Severity.CRITICAL,
        use_top,
    )
    # R's InFormat looks at the first byte only (and takes "\nA" too); it checks the version, not the R versions
    add("r19_rds_ascii_lead_newline", "model.rds", b"\n" + env, "LW-MODEL-060", Severity.CRITICAL, use_env)
    add(
        "r19_rds_ascii_cr_format", "model.rds", b"A\r\n" + env[2:], "LW-MODEL-060", Severity.CRITICAL, use_env
    )
    odd = env.replace(b"\n3\n262658\n197888\n", b"\n3\n0x\n-7\n", 1)
    assert odd != env
    add("r19_rds_ascii_odd_versions", "model.rds", odd, "LW-MODEL-060", Severity.CRITICAL, use_env)
    # a save() file: load() binds the promise, reading the variable runs it
    rda = _rda_prom(system)
    add("r19_rda_ascii_promise", "model.RData", rda, "LW-MODEL-060", Severity.CRITICAL,
        'load("{f}"); print(fit)')  # fmt: skip
    add("r19_rda_ascii_gz_promise", "model.rda", gzip.compress(rda, mtime=0), "LW-MODEL-060", Severity.CRITICAL,
        'load("{f}"); print(fit)')  # fmt: skip
    # a saved workspace defining .First: R restores .RData from the working folder at start-up and calls it; the
    # body calls nothing reported by itself (message)
    first = _Rds("A")
    first.pairlist({".First": lambda: first.closure(("call", "message", "hi"), ())})
    add("r19_rdata_ascii_first_hook", ".RData", b"RDA3\n" + first.bytes(), "LW-MODEL-061", Severity.HIGH,
        "1")  # fmt: skip
    # an active binding: its function runs whenever the variable is read
    act = b("A", lambda r: r.env({"coefficients": lambda: r.closure(system, ())}, active={"coefficients"}))
    add("r19_rds_ascii_active_binding", "model.rds", act, "LW-MODEL-061", Severity.CRITICAL, use_env)
    # closures a model's methods call, in several spellings of the call
    for name, body in {
        "system": system,
        "ns_system2": ("call", "base::system2", "touch", marker),
        "docall_string": ("call", "do.call", "system", ("call", "list", f"touch {marker}")),
        "eval_parse": ("call", "eval", ("call", "parse", ("named", "text", f"system('touch {marker}')"))),
        "match_fun": (
            "call",
            "do.call",
            ("call", "match.fun", "system"),
            ("call", "list", f"touch {marker}"),
        ),
        "computed_name": (
            "call",
            "do.call",
            ("call", "paste0", "sys", "tem"),
            ("call", "list", f"touch {marker}"),
        ),
        "docall_chain": (
            "call",
            "do.call",
            "do.call",
            ("call", "list", "system", ("call", "list", f"touch {marker}")),
        ),
        # cat(file = ) writes a file (a ~/.Rprofile runs at the next start-up); cat() alone prints
        "cat_to_file": ("call", "cat", "x", ("named", "file", marker)),
        "readlines_pipe": ("call", "readLines", ("call", "pipe", f"touch {marker}")),
        "eval_call": ("call", "eval", ("call", "call", "system", f"touch {marker}")),
        "lapply_value": ("call", "lapply", f"touch {marker}", ("sym", "system")),
        "braced": (
            "call",
            "{",
            ("call", "<-", ("sym", "f"), ("sym", "system")),
            ("call", "f", f"touch {marker}"),
        ),
    }.items():
        data = b("A", lambda r, body=body: _model_with(r, predict=lambda: r.closure(body)))
        sev = Severity.HIGH if name in ("computed_name", "cat_to_file") else Severity.CRITICAL
        add(f"r19_rds_ascii_closure_{name}", "model.rds", data, "LW-MODEL-061", sev, use_model)
    # a stored call that update() evaluates
    call = b("A", lambda r: _model_with(r, call=system))
    add("r19_rds_ascii_update_call", "model.rds", call, "LW-MODEL-061", Severity.CRITICAL,
        'm <- readRDS("{f}"); eval(m$call)')  # fmt: skip
    return cases


def _v2(write: object) -> bytes:
    r = _Rds("A", 2)
    write(r)  # type: ignore[operator]
    return r.bytes()


def _rda_prom(code: object) -> bytes:
    r = _Rds("A")
    r.pairlist({"fit": lambda: r.promise(code)})
    return b"RDA3\n" + r.bytes()


def bench_cases() -> dict[str, dict[str, bytes]]:
    return _all_bench()


def _scan(path: Path) -> TargetResult:
    return next(iter(scan_paths([str(path)], jobs=1).targets))


def _write(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path / next(iter(files))


@pytest.mark.parametrize("case", sorted(_attacks()))
def test_r_payload_is_reported(tmp_path: Path, case: str) -> None:
    files, rule, severity, _use = _attacks()[case]
    res = _scan(_write(tmp_path, files))
    assert res.verdict is Verdict.FINDINGS, (res.verdict, res.reason)
    assert any(f.rule_id == rule and f.severity >= severity for f in res.findings), res.findings


_RSCRIPT = shutil.which("Rscript")
needs_r = pytest.mark.skipif(_RSCRIPT is None, reason="R is not installed")


def _r(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert _RSCRIPT is not None
    return subprocess.run(
        [_RSCRIPT, "-e", code], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@needs_r
@pytest.mark.parametrize("case", sorted(_attacks()))
def test_r_runs_the_payload(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "marker"
    files, _rule, _sev, use = _attacks(str(marker))[case]
    path = _write(tmp_path, files)
    version = _r("cat(getRversion() >= '4.4.0')", tmp_path).stdout
    if use == "1":  # a session started in the folder (R restores .RData by default)
        assert _RSCRIPT is not None
        proc = subprocess.run(
            [str(Path(_RSCRIPT).with_name("R")), "-q", "--no-save", "-e", "invisible(1)"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert "hi" in proc.stderr, proc.stderr
        return
    proc = _r(use.format(f=path), tmp_path)
    if version == "TRUE" and case in ("r19_rds_ascii_promise", "r19_rds_native_pickle_polyglot"):
        pytest.skip("R 4.4 refuses a promise at the top level of readRDS")
    assert marker.exists(), proc.stderr


# --- benign files ----------------------------------------------------------------------------------------


def _benign_built() -> dict[str, bytes]:
    def b(kind: str, write: object, version: int = 3) -> bytes:
        r = _Rds(kind, version)
        write(r)  # type: ignore[operator]
        return r.bytes()

    def model(r: _Rds) -> None:
        # lm-like: coefficients, a call lm(formula = y ~ x), a closure x + 1, a lazy constant argument (as
        # binomial()'s link in every glm), a forced promise, and a stats namespace reference
        def fam(r: _Rds) -> None:
            r.env({"link": lambda: r.promise("logit"), "done": lambda: r.promise(("sym", "x"), forced=2.0)})

        r.named_list(
            {
                "coefficients": 1.5,
                "call": ("call", "lm", ("call", "~", ("sym", "y"), ("sym", "x"))),
                "linkfun": lambda: r.closure(("call", ".Call", ("sym", "C_logit_link"), ("sym", "x"))),
                "f": lambda: r.closure(("call", "+", ("sym", "x"), 1.0)),
                "family": lambda: fam(r),
                "ns": lambda: (r.flags(_NAMESPACE), r.int(0), r.int(2), r.char("stats"), r.char("4.2.2")),
            },
            cls="glm",
        )

    return {f"{kind}{version}": b(kind, model, version) for kind in ("X", "B", "A") for version in (2, 3)} | {
        "rdx": b"RDX3\n" + b("X", lambda r: r.pairlist({"m": lambda: model(r)}))
    }


@pytest.mark.parametrize("name", sorted(_benign_built()))
def test_benign_built_r_files_are_clean(tmp_path: Path, name: str) -> None:
    data = _benign_built()[name]
    for fname, blob in {
        "m.rds": data,
        "m.gz.rds": gzip.compress(data, mtime=0),
        "m.xz": lzma.compress(data),
    }.items():
        res = _scan(_write(tmp_path, {fname: blob}))
        assert res.verdict is Verdict.CLEAN, (fname, res.reason, res.findings)


_BENIGN_R = r"""
d <- data.frame(x = 1:40, y = rnorm(40), g = factor(rep(c("a", "b"), 20)), s = letters[1:40 %% 26 + 1])
fit <- glm(g ~ x + y, binomial, d); for (i in 1:3) predict(fit, d)
saveRDS(lm(y ~ x, d), "lm.rds"); saveRDS(fit, "glm.rds"); saveRDS(fit, "glm_ascii.rds", ascii = TRUE)
saveRDS(glm(y ~ x, poisson, transform(d, y = abs(round(y)))), "pois.rds", compress = "xz", version = 2)
saveRDS(d, "df.rds", compress = "bzip2"); saveRDS(list(a = 1:10, b = "x", f = function(x) x + 1), "list.rds")
saveRDS(compiler::cmpfun(function(x) mean(x) + sd(x)), "bc.rds", compress = FALSE)
Acc <- setRefClass("Acc", fields = list(total = "numeric"),
  methods = list(add = function(x) { total <<- total + x; invisible(.self) }, show = function() cat(total, "\n")))
a <- Acc$new(total = 0); a$add(3); saveRDS(a, "refclass.rds")
mk <- function(k) function(x) x * k; saveRDS(list(f = mk(2 + 1), g = mk(3)), "factory.rds")
d2 <- data.frame(x = 1:30, y = exp(-(1:30) / 10) + rnorm(30, 0, .01))
saveRDS(nls(y ~ a * exp(-x / b), d2, start = list(a = 1, b = 5)), "nls.rds"); saveRDS(loess(y ~ x, d2), "loess.rds")
saveRDS(list(ecdf(rnorm(10)), splinefun(1:10, rnorm(10)), prcomp(USArrests), kmeans(USArrests, 3)), "misc.rds")
saveRDS(MASS::lda(Species ~ ., iris), "lda.rds")
con <- file("native.rds", "wb"); serialize(fit, con, xdr = FALSE); close(con)
save(fit, d, file = "both.RData"); save(fit, file = "both_ascii.rda", ascii = TRUE)
if (requireNamespace("randomForest", quietly = TRUE)) {
  saveRDS(randomForest::randomForest(g ~ x + y, d, ntree = 20), "rf.rds")
}
"""


@needs_r
def test_benign_r_files_are_clean(tmp_path: Path) -> None:
    proc = _r(_BENIGN_R, tmp_path)
    assert proc.returncode == 0, proc.stderr
    files = sorted(tmp_path.iterdir())
    assert len(files) >= 16
    for path in files:
        res = _scan(path)
        assert res.verdict is Verdict.CLEAN, (path.name, res.reason, res.findings)


def test_truncated_and_unknown_streams_are_unverified(tmp_path: Path) -> None:
    env = _Rds("X")
    _prom_env(env)
    data = env.bytes()
    for name, blob in {
        "cut.rds": data[:-7],
        "badtype.rds": data[:23] + struct.pack(">i", 77) + data[27:],
        "persist.rds": data[:23] + struct.pack(">i", 247) + data[27:],
    }.items():
        res = _scan(_write(tmp_path, {name: blob}))
        assert res.verdict is Verdict.UNVERIFIED, (name, res.verdict, res.findings)


# --- XML model files ---------------------------------------------------------------------------------------

_PMML_BODY = """<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header description="linear model"><Timestamp>{ref}</Timestamp></Header>
  <DataDictionary numberOfFields="2">
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression" modelName="m">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <RegressionTable intercept="1.0"><NumericPredictor name="x" coefficient="2.0"/></RegressionTable>
  </RegressionModel>
</PMML>
"""
_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'

_IR = """<?xml version="1.0"?>
{doctype}<net name="m" version="11">
  <layers>
    <layer id="0" name="x" type="Parameter" version="opset1">
      <data shape="1,4" element_type="f32"/>
      <output><port id="0" precision="FP32" names="x"><dim>1</dim><dim>4</dim></port></output>
      {ref}
    </layer>
    <layer id="1" name="out" type="Result" version="opset1">
      <input><port id="0" precision="FP32"><dim>1</dim><dim>4</dim></port></input>
    </layer>
  </layers>
  <edges><edge from-layer="0" from-port="0" to-layer="1" to-port="0"/></edges>
  <rt_info/>
</net>
"""


def _pmml(doctype: str, ref: str = "2024-01-01", *, decl: str = _DECL) -> bytes:
    return (decl + doctype + _PMML_BODY.format(ref=ref)).encode()


def _xml_attacks(url: str = "http://127.0.0.1:9/x") -> dict[str, tuple[dict[str, bytes], Severity]]:
    """case -> (files, severity of LW-MODEL-063). pypmml 1.5.8 (PMML4S) reads file:// entities and fetches
    http:// entities, external DTDs and external parameter entities (confirmed below with a local HTTP server)."""
    ent = f'<!DOCTYPE PMML [<!ENTITY xxe SYSTEM "{url}">]>\n'
    laughs = "".join(
        f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10 if i else "lol" * 10}">' for i in range(10)
    )
    cases: dict[str, tuple[dict[str, bytes], Severity]] = {
        "r19_pmml_xxe_file": (
            {"model.pmml": _pmml('<!DOCTYPE PMML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n', "&xxe;")},
            Severity.HIGH,
        ),
        "r19_pmml_xxe_http": ({"model.pmml": _pmml(ent, "&xxe;")}, Severity.HIGH),
        "r19_pmml_external_dtd": ({"model.pmml": _pmml(f'<!DOCTYPE PMML SYSTEM "{url}">\n')}, Severity.HIGH),
        "r19_pmml_public_dtd": (
            {"model.pmml": _pmml(f"<!DOCTYPE PMML PUBLIC \"-//x//y\" '{url}'>\n")},
            Severity.HIGH,
        ),
        "r19_pmml_parameter_entity": (
            {"model.pmml": _pmml(f'<!DOCTYPE PMML [\n  <!ENTITY  %  p\n SYSTEM  "{url}">\n  %p;\n]>\n')},
            Severity.HIGH,
        ),
        "r19_pmml_xxe_behind_comments": (
            {"model.pmml": _pmml(f"<!-- ]> -->\n<?pi x?>\n<!DOCTYPE PMML [<!-- > -->{ent[16:]}", "&xxe;")},
            Severity.HIGH,
        ),
        "r19_pmml_xxe_utf16": (
            {
                "model.pmml": b"\xff\xfe"
                + _pmml(ent, "&xxe;").decode().replace("UTF-8", "UTF-16").encode("utf-16-le")
            },
            Severity.HIGH,
        ),
        "r19_xml_xxe_other_name": ({"pipeline.xml": _pmml(ent, "&xxe;")}, Severity.HIGH),
        "r19_openvino_ir_xxe": (
            {
                "model.xml": _IR.format(
                    doctype=ent.replace("PMML", "net"), ref="<rt_info>&xxe;</rt_info>"
                ).encode(),
                "model.bin": bytes(16),
            },
            Severity.HIGH,
        ),
        # a web page's name and root skip only the public DTD check: pypmml fetches the entity before it looks at
        # the root
        "r19_xml_xxe_html_named": (
            {"model.html": _pmml(ent.replace("PMML", "html"), "&xxe;").replace(b"<PMML", b"<html")},
            Severity.HIGH,
        ),
        "r19_pmml_xinclude": (
            {
                "model.pmml": _pmml(
                    "",
                    f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{url}" parse="text"/>',
                )
            },
            Severity.MEDIUM,
        ),
        "r19_pmml_billion_laughs": (
            {"model.pmml": _pmml(f"<!DOCTYPE PMML [{laughs}]>\n", "&l9;")},
            Severity.MEDIUM,
        ),
    }
    return cases


def _all_bench() -> dict[str, dict[str, bytes]]:
    return {name: files for name, (files, *_rest) in _attacks().items()} | {
        name: files for name, (files, _sev) in _xml_attacks().items()
    }


@pytest.mark.parametrize("case", sorted(_xml_attacks()))
def test_xml_external_reference_is_reported(tmp_path: Path, case: str) -> None:
    files, severity = _xml_attacks()[case]
    res = _scan(_write(tmp_path, files))
    assert res.verdict is Verdict.FINDINGS, (res.verdict, res.reason)
    assert any(f.rule_id == "LW-MODEL-063" and f.severity == severity for f in res.findings), res.findings


def test_benign_xml_model_files_are_clean(tmp_path: Path) -> None:
    small = '<!DOCTYPE PMML [<!ENTITY v "4.4"><!ENTITY w "&v;&v;">]>\n'
    for i, (name, data) in enumerate(
        {
            "model.pmml": _pmml(""),
            "plain.pmml": _pmml("", decl=""),
            "doctype.pmml": _pmml("<!DOCTYPE PMML>\n"),
            "internal.pmml": _pmml(small, "&w;"),
            "model.xml": _IR.format(doctype="", ref="").encode(),
            "page.html": b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
            b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n<html><body>x</body></html>\n',
        }.items()
    ):
        folder = tmp_path / str(i)
        folder.mkdir()
        res = _scan(_write(folder, {name: data, "model.bin": bytes(16)}))
        assert res.verdict is Verdict.CLEAN, (name, res.reason, res.findings)


def test_pypmml_fetches_external_entities(tmp_path: Path) -> None:
    """pypmml 1.5.8 (PMML4S, the JVM's SAX parser) requests an entity's, an external DTD's and an external
    parameter entity's URL while loading."""
    pypmml = pytest.importorskip("pypmml")
    if shutil.which("java") is None:
        pytest.skip("pypmml needs a JVM")
    import http.server
    import threading

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"" if "dtd" in self.path or self.path.endswith("/p") else b"2024")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for case in ("r19_pmml_xxe_http", "r19_pmml_external_dtd", "r19_pmml_parameter_entity"):
            files, _sev = _xml_attacks(f"{base}/{case}")[case]
            path = _write(tmp_path, files)
            with contextlib.suppress(Exception):
                pypmml.Model.load(str(path))
            assert any(case in p for p in seen), (case, seen)
    finally:
        server.shutdown()


@pytest.mark.parametrize("kind", ["X", "B"])
def test_binary_r_streams_are_judged(tmp_path: Path, kind: str) -> None:
    """XDR and native streams were unverified (an unknown binary) before; they are read now, raw and compressed."""
    r = _Rds(kind)
    _prom_env(r)
    for name, data in {"m.rds": r.bytes(), "g.rds": gzip.compress(r.bytes(), mtime=0)}.items():
        res = _scan(_write(tmp_path, {name: data}))
        assert any(f.rule_id == "LW-MODEL-060" and f.severity == Severity.CRITICAL for f in res.findings), res
    rda = _Rds(kind)
    rda.pairlist({"fit": lambda: rda.promise(_SYSTEM)})
    res = _scan(_write(tmp_path, {"m.RData": f"RD{kind}3\n".encode() + rda.bytes()}))
    assert any(f.rule_id == "LW-MODEL-060" for f in res.findings), res


def test_text_that_only_opens_like_an_ascii_stream_stays_clean(tmp_path: Path) -> None:
    for name, data in {
        "vocab.txt": b"A\n2\n3\n4\n5\n",
        "README.md": b"A 3D model of things\n",
        "labels.txt": b"A\n3\n7\n9\nB\nC\n",
    }.items():
        res = _scan(_write(tmp_path, {name: data}))
        assert res.verdict is Verdict.CLEAN, (name, res.reason, res.findings)


def test_bench_cases_are_fast() -> None:
    import time

    start = time.perf_counter()
    cases = bench_cases()
    assert time.perf_counter() - start < 2
    assert all(name.startswith("r19_") for name in cases)
