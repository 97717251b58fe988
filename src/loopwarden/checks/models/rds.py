"""R serialization (``saveRDS``/``readRDS`` ``.rds`` files, ``save``/``load`` ``.rda``/``.RData`` files, and the
same bytes under any name): a bounded static reader of R's format that never evaluates anything.

A stream is a format line (``X\\n`` XDR, ``B\\n`` native little-endian, ``A\\n`` ASCII), the version (2 or 3), the
writer's and minimal reader's R versions and, for version 3, the native encoding; then one item, as
``serialize.c``'s ``ReadItem`` reads it: a flags integer (type, object/attribute/tag bits, levels) and the
type's payload, with the reference table (``REFSXP``), attributes, tags, pairlists, bytecode (``BCODESXP`` with
its ``BCREPDEF``/``BCREPREF`` language cells) and ALTREP classes. A ``save()`` file is ``RDX2``/``RDX3`` (or
``RDA``/``RDB``) and a newline in front of such a stream. gzip, bzip2 and xz compression are undone by the
dispatcher, as ``readRDS`` and ``load`` undo them, and the stream inside is read here.

What runs R code (``docs/rules.md``, LW-MODEL-060/061/062):

* a promise (``PROMSXP``) that is not forced runs its expression when the loaded value is touched
  (CVE-2024-27322); an active binding of an environment runs its function whenever the variable is read;
* closures, language objects and bytecode carry calls that run when the model's methods are called (or
  ``update()`` evaluates a stored call): calls reaching ``system``, ``eval``/``parse``, ``do.call`` with a string,
  ``.Call`` with a string name, connections and downloads, package loading ... are reported;
* namespace, package environment and ALTREP class references make ``readRDS`` load a package (an INFO note
  naming it, for packages outside R's own).

Anything the reader cannot parse (a truncated stream, an unknown type, a class reference, a persistent reference
that needs a ``refhook``, a bound) leaves the file ``unverified``.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.domain import Severity

__all__ = ["looks_rds", "scan_rds"]

_MAX_BYTES: Final = 1 << 30
_MAX_DEPTH: Final = 400
_MAX_ITEMS: Final = 20_000_000
_MAX_REFS: Final = 5_000_000
_MAX_HITS: Final = 50
_EARLY_ITEMS: Final = 4
"""A stream of text that ends within this many items is judged as the text it is (``scan_rds``): no payload fits."""

_SAVE_MAGIC: Final = (b"RDX2\n", b"RDX3\n", b"RDA2\n", b"RDA3\n", b"RDB2\n", b"RDB3\n")
_OLD_SAVE_MAGIC: Final = (b"RDX1\n", b"RDA1\n", b"RDB1\n")

# SEXP types (Rinternals.h) and the serialization pseudo-types (serialize.c)
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
SPECIALSXP, BUILTINSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP = 7, 8, 9, 10, 13, 14, 15
STRSXP, DOTSXP, VECSXP, EXPRSXP, BCODESXP, EXTPTRSXP, WEAKREFSXP = 16, 17, 19, 20, 21, 22, 23
RAWSXP, S4SXP = 24, 25
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP = 255, 254, 253, 252, 251
BASENAMESPACE_SXP, NAMESPACESXP, PACKAGESXP, PERSISTSXP = 250, 249, 248, 247
CLASSREFSXP, GENERICREFSXP, BCREPDEF, BCREPREF = 246, 245, 244, 243
EMPTYENV_SXP, BASEENV_SXP, ATTRLANGSXP, ATTRLISTSXP, ALTREP_SXP = 242, 241, 240, 239, 238
_CONSTANTS: Final = frozenset(
    {
        NILVALUE_SXP,
        GLOBALENV_SXP,
        UNBOUNDVALUE_SXP,
        MISSINGARG_SXP,
        BASENAMESPACE_SXP,
        EMPTYENV_SXP,
        BASEENV_SXP,
    }
)
_CONS: Final = frozenset({LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLANGSXP, ATTRLISTSXP})
_ACTIVE_BINDING: Final = 1 << 15  # ACTIVE_BINDING_MASK of a frame cell's gp bits, written in its levels

_HOOKS: Final = frozenset({".First", ".Last", ".First.sys", ".Last.sys", ".OptRequireMethods", ".First.lib"})
"""Functions R calls by name when a session starts or ends with them in the global environment."""

_R_PACKAGES: Final = frozenset(
    {
        "base", "stats", "utils", "methods", "graphics", "grDevices", "datasets", "grid", "splines",
        "stats4", "tools", "parallel", "compiler", "tcltk",
    }
)  # fmt: skip
"""The packages R ships: a reference to one loads nothing that R does not already have."""

_EXEC: Final = frozenset(
    {
        "system", "system2", "shell", "shell.exec", "pipe", "parse", "str2lang", "str2expression", "source",
        "sys.source", "Sys.setenv", "Sys.setlocale", "dyn.load", "library.dynam", "browseURL",
        "assignInNamespace", "assignInMyNamespace", "unlockBinding", "readRDS", "load", "unserialize", "setHook",
        "trace", "Sys.setFileTime",
        # packages' process, code and foreign-language runners
        "processx::run", "processx::process", "callr::r", "callr::r_bg", "callr::rscript", "exec_wait",
        "exec_background", "exec_internal", "py_run_string", "py_run_file", "py_eval", "parse_expr",
        "parse_exprs", "rlang::exec", "sourceCpp", "cppFunction", "evalCpp", "cfunction",
        "rstudioapi::terminalExecute",
    }
)  # fmt: skip
"""Functions that run commands or code, or change how later code runs (CRITICAL)."""
_IO: Final = frozenset(
    {
        "file", "url", "download.file", "gzfile", "bzfile", "xzfile", "unz", "fifo", "socketConnection",
        "socketAccept", "serverSocket", "make.socket", "writeBin", "writeChar", "sink", "file.create",
        "file.remove", "file.rename", "file.copy", "file.append", "unlink", "dir.create", "Sys.chmod",
        "Sys.readlink", "file.symlink", "file.link", "saveRDS", "save", "save.image", "readLines", "readBin",
        "readChar", "scan", "read.table", "read.csv", "curlGetHeaders", "httr::GET", "httr::POST", "curl::curl",
        "curl_download", "curl_fetch_memory", "write", "write.table", "write.csv", "zip", "untar", "unzip",
    }
)  # fmt: skip
"""Functions that read or write files or talk to the network (HIGH)."""
_LOAD: Final = frozenset(
    {
        "library",
        "require",
        "requireNamespace",
        "loadNamespace",
        "attachNamespace",
        "attach",
        "install.packages",
    }
)
"""Functions that load (and so run the load hooks of) packages (MEDIUM)."""
_WRITERS: Final = frozenset({"cat", "writeLines", "write", "write.table", "write.csv", "saveRDS", "save"})
"""Functions that print by default and write a file when given one (HIGH then)."""
_NATIVE: Final = frozenset({".Call", ".External", ".External2", ".C", ".Fortran", ".Internal", ".Primitive"})
"""Entry points into native code: dangerous when the entry is named by a string (any loaded DLL's symbol) or
when ``.Internal``/``.Primitive`` wrap a dangerous function."""
_INDIRECT: Final = frozenset(
    {
        "do.call", "match.fun", "get", "get0", "mget", "getFunction", "getFromNamespace", "getExportedValue",
        "::", ":::", "$", "[[", "Reduce", "Map", "Filter", "lapply", "sapply", "vapply", "mapply", "Recall",
        "tryCatch", "withCallingHandlers", "on.exit", "suppressWarnings", "suppressMessages", "invisible",
        "environment", "asNamespace", "getNamespace", "as.name", "as.symbol", "call", "as.call",
    }
)  # fmt: skip
"""Functions that reach a function named by a string or passed as a value."""
_EVALUATORS: Final = frozenset(
    {"eval", "evalq", "eval.parent", "eval_tidy", "eval_bare", "forceAndCall", "delayedAssign", "body<-",
     "makeActiveBinding", "reg.finalizer", "environment<-", "local", "withVisible", "Recall"}
)  # fmt: skip
"""Functions that run code they are given: code in the file is judged where it is stored (nls models and
reference classes call eval and makeActiveBinding on their own expressions), code built from strings by parse,
str2lang or a name given to call/as.name; so they are not reported themselves, but a reported function's name
among the code's strings is (``eval(call("system", ...))``)."""
_BENIGN_CALLS: Final = frozenset(
    {"+", "-", "*", "/", "^", "%%", "%/%", "%*%", ":", "(", "{", "[", "[[", "$", "@", "c", "list", "~", "==",
     "!=", "<", ">", "<=", ">=", "&", "&&", "|", "||", "!", "quote", "function", "seq", "seq_len", "seq_along",
     "rep", "numeric", "integer", "character", "logical", "double", "vector", "matrix", "array", "length",
     "names", "exp", "log", "sqrt", "abs", "min", "max", "sum", "mean", "identity", "invisible", "is.null",
     "missing", "if", "NULL", "as.numeric", "as.integer", "as.character", "data.frame", "factor", "nrow", "ncol"}
)  # fmt: skip
"""Calls an unforced promise may hold and still run nothing of note when forced (a lazy ``n * 2`` argument a
closure captured): such a promise is an info note."""
_LOOKUP: Final = frozenset(
    {"do.call", "match.fun", "get", "get0", "mget", "getFunction", "getFromNamespace", "getExportedValue",
     "as.name", "as.symbol", "call", "[[", "$", "exists"}
)  # fmt: skip
"""Functions whose first argument (second for ``[[``/``$``) names the function they reach."""
_STRING_BUILDERS: Final = frozenset(
    {"paste", "paste0", "sprintf", "intToUtf8", "rawToChar", "chartr", "rev", "gsub", "sub", "toupper",
     "tolower", "casefold", "strtoi", "substr", "substring", "format", "trimws", "utf8ToInt",
     "base64_dec", "as.character", "strsplit", "unlist", "Reduce", "chr", "iconv", "enc2native", "c"}
)  # fmt: skip
"""Functions that compute a string: a function name computed so is not judged by its text."""


def _tier(name: str) -> Severity | None:
    if name in _EXEC:
        return Severity.CRITICAL
    if name in _IO:
        return Severity.HIGH
    if name in _LOAD:
        return Severity.MEDIUM
    return None


class RdsError(Exception):
    """The stream is not one R's reader accepts, or a bound was hit."""

    def __init__(self, reason: str, *, bound: bool = False, cut: bool = False) -> None:
        super().__init__(reason)
        self.bound, self.cut = bound, cut
        self.early = True  # before the first items of the stream


@dataclass(frozen=True, slots=True)
class _Sym:
    name: str


@dataclass(frozen=True, slots=True)
class _Call:
    fn: object
    args: tuple[object, ...]
    names: tuple[str | None, ...] = ()


@dataclass(slots=True)
class _Owner:
    kind: str  # "promise", "closure", "language object"
    hits: list[tuple[Severity, str]] = field(default_factory=list)
    strings: set[str] = field(default_factory=set)
    """Character constants of the code that name a reported function."""
    lookup: bool = False
    """Whether the code reaches functions by name (do.call, get, match.fun ...)."""
    calls: set[str] = field(default_factory=set)
    """The functions the code calls."""


_SPACE: Final = b" \t\n\v\f\r"  # C's isspace, which R's InWord skips
_INT_WORD: Final = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def stream_start(head: bytes) -> tuple[bytes, int] | None:
    """The stream format (``X``, ``B`` or ``A``) and where its version integer starts, or None when ``head``
    opens no stream R reads. R's ``InFormat`` takes two bytes and looks only at the first (``X?``, ``B?``,
    ``A?``; ``\nA`` and one more byte for ASCII), and checks only the version (2 or 3), not the writer's or the
    minimal reader's R version; ``load`` first takes the five bytes ``RDX2\n`` (``RDA``, ``RDB``; version 3)."""
    pos = 5 if head.startswith(_SAVE_MAGIC) else 0
    kind = head[pos : pos + 1]
    if kind == b"\n" and head[pos + 1 : pos + 2] == b"A":
        kind, pos = b"A", pos + 3
    elif kind in (b"X", b"B", b"A"):
        pos += 2
    else:
        return None
    if kind == b"A":
        # the version, the writer's and the minimal reader's versions: R needs all three to start with digits
        words = head[pos : pos + 200].split(maxsplit=3)
        ints = [_INT_WORD.match(w) for w in words[:3]]
        ok = len(words) == 4 and all(ints) and int(ints[0].group(1)) in (2, 3)  # type: ignore[union-attr]
    else:
        ok = head[pos : pos + 4] in ((b"\x00\x00\x00\x02", b"\x00\x00\x00\x03") if kind == b"X" else
                                     (b"\x02\x00\x00\x00", b"\x03\x00\x00\x00"))  # fmt: skip
    return (kind, pos) if ok else None


def looks_rds(head: bytes) -> bool:
    """Whether ``head`` opens an R serialization stream or a ``save()`` file (see :func:`stream_start`); an old
    ``save()`` file (``RDX1``, ``RDA1``, ``RDB1``, which ``load`` still reads) too, which the reader leaves
    unverified."""
    return head.startswith(_OLD_SAVE_MAGIC) or stream_start(head) is not None


class _Reader:
    def __init__(self, data: bytes, pos: int, kind: bytes) -> None:
        self.data, self.pos, self.kind = data, pos, kind
        self.end = len(data)

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise RdsError(f"stream ends inside an item at offset {self.pos} (cut)", cut=True)

    def word(self) -> bytes:
        d, p, end = self.data, self.pos, self.end
        while p < end and d[p] in _SPACE:
            p += 1
        start = p
        while p < end and d[p] not in _SPACE:
            p += 1
        if start == p:
            raise RdsError(f"stream ends at offset {start} (cut)", cut=True)
        self.pos = p
        return d[start:p]

    def integer(self) -> int:
        if self.kind == b"A":
            w = self.word()
            if w == b"NA":
                return -(2**31)
            m = _INT_WORD.match(w)  # sscanf("%d"): digits at the start, the rest ignored
            if m is None or len(w) >= 128:
                raise RdsError(f"{w[:20]!r} at offset {self.pos} is no integer")
            return int(m.group(1))
        self.need(4)
        (v,) = struct.unpack_from(">i" if self.kind == b"X" else "<i", self.data, self.pos)
        self.pos += 4
        return int(v)

    def skip_numbers(self, n: int, width: int, check_time: Callable[[], None] | None = None) -> None:
        if self.kind == b"A":
            for i in range(n):
                self.word()
                if check_time is not None and i & 0xFFFFF == 0xFFFFF:
                    check_time()
        else:
            self.need(n * width)
            self.pos += n * width

    def string(self, n: int) -> bytes:
        if self.kind != b"A":
            self.need(n)
            s = self.data[self.pos : self.pos + n]
            self.pos += n
            return s
        return _ascii_string(self, n)


_ESCAPES: Final = {
    ord("n"): 10, ord("t"): 9, ord("v"): 11, ord("b"): 8, ord("r"): 13, ord("f"): 12, ord("a"): 7,
    ord("\\"): 92, ord("?"): 63, ord("'"): 39, ord('"'): 34,
}  # fmt: skip


def _ascii_string(r: _Reader, n: int) -> bytes:
    """``InString`` of an ASCII stream: ``n`` characters after whitespace, with C escapes and octal codes."""
    d, p, end = r.data, r.pos, r.end
    while p < end and d[p] in _SPACE:
        p += 1
    out = bytearray()
    while len(out) < n:
        if p >= end:
            raise RdsError(f"string runs past the end of the stream at offset {p} (cut)", cut=True)
        c = d[p]
        p += 1
        if c != 92:
            out.append(c)
            continue
        if p >= end:
            raise RdsError("string ends in an escape (cut)", cut=True)
        e = d[p]
        p += 1
        if e in _ESCAPES:
            out.append(_ESCAPES[e])
        elif 48 <= e <= 55:
            v, k = e - 48, 1
            while k < 3 and p < end and 48 <= d[p] <= 55:
                v, k, p = v * 8 + d[p] - 48, k + 1, p + 1
            out.append(v & 0xFF)
        else:
            out.append(e)
    r.pos = p
    return bytes(out)


class _Walk:
    def __init__(self, reader: _Reader, ctx: ScanContext) -> None:
        self.r, self.ctx = reader, ctx
        self.refs: list[object] = []
        self.items = 0
        self.owners: list[_Owner] = []
        self.promises: list[tuple[Severity, str]] = []
        self.code: list[tuple[Severity, str, str]] = []
        self.packages: set[str] = set()
        self.bindings: list[tuple[str, object]] = []
        self.loose = _Owner("language object")
        """Calls outside any closure or promise (a model's stored call, an expression vector)."""
        """The names a ``save()`` file binds (its top-level pairlist's tags) and their values."""

    # --- items -------------------------------------------------------------------------------------------

    def add_ref(self, value: object) -> None:
        if len(self.refs) >= _MAX_REFS:
            raise RdsError(f"more than {_MAX_REFS} referenced items", bound=True)
        self.refs.append(value)

    def length(self) -> int:
        n = self.r.integer()
        if n == -1:
            hi, lo = self.r.integer(), self.r.integer()
            n = (hi << 32) + (lo & 0xFFFFFFFF)
        if n < 0:
            raise RdsError(f"negative length {n} at offset {self.r.pos}")
        return n

    def strvec(self, depth: int) -> list[str]:
        if self.r.integer() != 0:
            raise RdsError("names of a namespace or package reference are not a plain string vector")
        n = self.length()
        return [v for v in (self.item(depth + 1) for _ in range(min(n, 1_000_000))) if isinstance(v, str)]

    def item(self, depth: int) -> object:
        return self.item_of(self.r.integer(), depth)

    def item_of(self, flags: int, depth: int) -> object:
        if depth > _MAX_DEPTH:
            raise RdsError(f"items nested deeper than {_MAX_DEPTH}", bound=True)
        self.items += 1
        if self.items > _MAX_ITEMS:
            raise RdsError(f"more than {_MAX_ITEMS} items", bound=True)
        if self.items % 65536 == 0:
            self.ctx.check_time()
        t = flags & 0xFF
        levels = flags >> 12
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if t in _CONSTANTS:
            return ("const", t)
        if t == REFSXP:
            idx = flags >> 8 or self.r.integer()
            if not 1 <= idx <= len(self.refs):
                raise RdsError(f"reference {idx} to an item not read yet")
            return self.refs[idx - 1]
        if t == PERSISTSXP:
            raise RdsError(
                "persistent reference (PERSISTSXP): only a reader given a refhook can resolve it, and that hook "
                "decides what it does"
            )
        if t == SYMSXP:
            name = self.item(depth + 1)
            sym = _Sym(name if isinstance(name, str) else "")
            self.add_ref(sym)
            return sym
        if t in (PACKAGESXP, NAMESPACESXP):
            names = self.strvec(depth)
            if names and names[0] not in _R_PACKAGES:
                self.packages.add(names[0])
            self.add_ref(("env", names[:1]))
            return ("env", names[:1])
        if t == ENVSXP:
            self.r.integer()  # locked
            self.add_ref(("env", []))
            self.item(depth + 1)  # enclosure
            self.frame(depth + 1)
            self.hashtab(depth + 1)
            self.item(depth + 1)  # attributes
            return ("env", [])
        if t == ALTREP_SXP:
            info = self.item(depth + 1)
            self.altrep_class(info)
            self.item(depth + 1)  # state
            self.item(depth + 1)  # attributes
            return None
        if t in _CONS:
            return self.cons(t, levels, has_attr, has_tag, depth)
        return self.vector(t, has_attr, depth)

    def altrep_class(self, info: object) -> None:
        # info is a pairlist (class symbol, package symbol, type); the package is loaded to find the class
        if isinstance(info, list) and len(info) >= 2 and isinstance(info[1], _Sym):
            if info[1].name not in _R_PACKAGES:
                self.packages.add(info[1].name)
        elif not isinstance(info, list):
            raise RdsError("ALTREP class information is not a pairlist")

    def frame(self, depth: int) -> None:
        """An environment's frame: a pairlist whose cells may be active bindings."""
        self.item(depth)

    def hashtab(self, depth: int) -> None:
        self.item(depth)

    def cons(self, t: int, levels: int, has_attr: bool, has_tag: bool, depth: int) -> object:
        """A pairlist, call, closure, promise or dots cell, and the pairlist cells that follow it (read in a loop,
        as R does, so that long pairlists cost no recursion)."""
        cells: list[object] = []
        tags: list[str | None] = []
        first_t = t
        while True:
            if t in (ATTRLANGSXP, ATTRLISTSXP):
                has_attr = True
                t = LANGSXP if t == ATTRLANGSXP else LISTSXP
            if has_attr:
                self.item(depth + 1)
            if t == CLOSXP:
                return self.closure(has_tag, depth)
            if t == PROMSXP:
                return self.promise(has_tag, depth)
            if t == LISTSXP and levels & _ACTIVE_BINDING:
                self.active_binding(has_tag, depth)
            else:
                tag = self.item(depth + 1) if has_tag else None
                cells.append(self.item(depth + 1))
                tags.append(tag.name if isinstance(tag, _Sym) else None)
                if depth == 0 and t == LISTSXP and isinstance(tag, _Sym):
                    self.bindings.append((tag.name, cells[-1]))
            # the cdr: another cell of the list is read here, anything else as an item
            flags = self.r.integer()
            nt = flags & 0xFF
            if nt in (LISTSXP, ATTRLISTSXP):
                t, levels = nt, flags >> 12
                has_attr, has_tag = bool(flags & (1 << 9)), bool(flags & (1 << 10))
                self.items += 1
                if self.items > _MAX_ITEMS:
                    raise RdsError(f"more than {_MAX_ITEMS} items", bound=True)
                continue
            self.item_of(flags, depth + 1)
            break
        if first_t in (LANGSXP, ATTRLANGSXP):
            call = _Call(cells[0] if cells else None, tuple(cells[1:]), tuple(tags[1:]))
            self.judge_call(call)
            return call
        return cells

    def closure(self, has_tag: bool, depth: int) -> object:
        owner = _Owner("closure")
        self.owners.append(owner)
        try:
            if has_tag:
                self.item(depth + 1)  # environment
            formals = self.item(depth + 1)
            body = self.item(depth + 1)
            self.judge_value(formals)
            self.judge_value(body)
        finally:
            self.owners.pop()
        self.report(owner)
        return ("closure",)

    def promise(self, has_tag: bool, depth: int) -> object:
        owner = _Owner("promise")
        self.owners.append(owner)
        try:
            if has_tag:
                self.item(depth + 1)  # environment
            value = self.item(depth + 1)
            code = self.item(depth + 1)
            self.judge_value(code)
        finally:
            self.owners.pop()
        self.report(owner, promise=True)  # (hits of names reached by string)
        forced = value != ("const", UNBOUNDVALUE_SXP)
        what = _show(code)
        calls = ", ".join(sorted({m for _, m in owner.hits}))
        if forced:
            # R uses the stored value and never evaluates the code again
            self.promises.append((Severity.INFO, f"forced promise (its code {what} does not run)"))
        elif owner.hits:
            worst = max(s for s, _ in owner.hits)
            self.promises.append((max(worst, Severity.HIGH), f"unforced promise runs {what} ({calls})"))
        elif owner.calls - _BENIGN_CALLS:
            unknown = ", ".join(sorted(owner.calls - _BENIGN_CALLS)[:10])
            self.promises.append(
                (Severity.HIGH, f"unforced promise runs {what} when the value is used (calls {unknown})")
            )
        elif isinstance(code, _Call):
            self.promises.append((Severity.INFO, f"unforced promise of arithmetic or constructors: {what}"))
        else:
            # a lazy argument a closure captured (binomial()'s link in every glm): evaluating a constant runs
            # nothing, a symbol only looks up a variable (itself judged where it is stored)
            self.promises.append((Severity.INFO, f"unforced promise of {what} (evaluating it runs no call)"))
        return ("promise",)

    def active_binding(self, has_tag: bool, depth: int) -> None:
        if has_tag:
            self.item(depth + 1)
        self.item(depth + 1)  # the function, a closure judged itself (reference classes bind their fields so)
        self.promises.append(
            (Severity.INFO, "environment with an active binding (its function runs when read)")
        )

    def vector(self, t: int, has_attr: bool, depth: int) -> object:
        r = self.r
        value: object = None
        if t == EXTPTRSXP:
            self.add_ref(None)
            self.item(depth + 1)
            self.item(depth + 1)
        elif t == WEAKREFSXP:
            self.add_ref(None)
        elif t in (SPECIALSXP, BUILTINSXP):
            n = r.integer()
            value = _Sym(r.string(n).decode("latin-1"))
        elif t == CHARSXP:
            n = r.integer()
            if n == -1:
                return None
            if n < 0:
                raise RdsError(f"negative string length at offset {r.pos}")
            return r.string(n).decode("utf-8", "replace")
        elif t in (LGLSXP, INTSXP):
            r.skip_numbers(self.length(), 4, self.ctx.check_time)
        elif t == REALSXP:
            r.skip_numbers(self.length(), 8, self.ctx.check_time)
        elif t == CPLXSXP:
            r.skip_numbers(2 * self.length(), 8, self.ctx.check_time)
        elif t == RAWSXP:
            n = self.length()
            if r.kind == b"A":
                r.skip_numbers(n, 1, self.ctx.check_time)
            else:
                r.need(n)
                r.pos += n
        elif t in (STRSXP, VECSXP, EXPRSXP):
            value = [self.item(depth + 1) for _ in range(self.counted(self.length()))]
        elif t == BCODESXP:
            n = r.integer()
            if not 0 <= n <= _MAX_REFS:
                raise RdsError(f"bytecode with {n} shared cells")
            self.bc(depth + 1, [None] * n)
        elif t == S4SXP:
            pass
        elif t in (CLASSREFSXP, GENERICREFSXP):
            raise RdsError("class reference: R cannot read this stream")
        else:
            raise RdsError(f"unknown item type {t} at offset {r.pos}")
        if has_attr:
            self.item(depth + 1)
        return value

    def counted(self, n: int) -> int:
        if n > _MAX_ITEMS - self.items:
            raise RdsError(f"a vector of {n} items", bound=True)
        return n

    def bc(self, depth: int, reps: list[object]) -> None:
        if depth > _MAX_DEPTH:
            raise RdsError(f"bytecode nested deeper than {_MAX_DEPTH}", bound=True)
        self.item(depth + 1)  # the code (an integer vector)
        n = self.r.integer()
        if not 0 <= n <= _MAX_ITEMS:
            raise RdsError(f"bytecode with {n} constants")
        for _ in range(self.counted(n)):
            t = self.r.integer()
            if t == BCODESXP:
                self.bc(depth + 1, reps)
            elif t in (LANGSXP, LISTSXP, BCREPDEF, BCREPREF, ATTRLANGSXP, ATTRLISTSXP):
                self.judge_value(self.bclang(t, depth + 1, reps))
            else:
                self.judge_value(self.item(depth + 1))

    def bclang(self, t: int, depth: int, reps: list[object]) -> object:
        if depth > _MAX_DEPTH:
            raise RdsError(f"bytecode nested deeper than {_MAX_DEPTH}", bound=True)
        if t == BCREPREF:
            i = self.r.integer()
            if not 0 <= i < len(reps):
                raise RdsError(f"bytecode cell reference {i} out of range")
            return reps[i]
        if t not in (BCREPDEF, LANGSXP, LISTSXP, ATTRLANGSXP, ATTRLISTSXP):
            return self.item(depth + 1)
        pos = -1
        if t == BCREPDEF:
            pos = self.r.integer()
            t = self.r.integer()
            if not 0 <= pos < len(reps):
                raise RdsError(f"bytecode cell definition {pos} out of range")
        if t in (ATTRLANGSXP, ATTRLISTSXP):
            self.item(depth + 1)
            t = LANGSXP if t == ATTRLANGSXP else LISTSXP
        self.items += 1
        if self.items > _MAX_ITEMS:
            raise RdsError(f"more than {_MAX_ITEMS} items", bound=True)
        self.item(depth + 1)  # tag
        car = self.bclang(self.r.integer(), depth + 1, reps)
        cdr = self.bclang(self.r.integer(), depth + 1, reps)
        rest = cdr if isinstance(cdr, list) else [] if cdr is None or isinstance(cdr, tuple) else [cdr]
        cell: object = _Call(car, tuple(rest)) if t == LANGSXP else [car, *rest]
        if isinstance(cell, _Call):
            self.judge_call(cell)
        if pos >= 0:
            reps[pos] = cell
        return cell

    # --- judging -----------------------------------------------------------------------------------------

    def owner(self) -> _Owner:
        return self.owners[-1] if self.owners else self.loose

    def hit(self, severity: Severity, what: str) -> None:
        owner = self.owner()
        if len(owner.hits) < _MAX_HITS:
            owner.hits.append((severity, what))

    def judge_call(self, call: _Call) -> None:
        fn = _name(call.fn)
        owner = self.owner()
        for arg in call.args:
            for s in _strings(arg):
                if _tier(s) is not None and len(owner.strings) < _MAX_HITS:
                    owner.strings.add(s)
        if fn is None:
            if call.fn is not None and len(owner.calls) < _MAX_HITS:
                owner.calls.add("a computed function")
        elif fn in _WRITERS:
            # cat(..., file = ), writeLines(text, con): a file written (stdout is the default)
            if any(n in ("file", "con") for n in call.names) or (
                fn != "cat" and sum(1 for n in call.names if n is None) >= 2
            ):
                self.hit(Severity.HIGH, f"{fn}() to a file")
        else:
            tier = _tier(fn) or _tier(_qualified(call.fn) or "")
            if tier is not None:
                self.hit(tier, f"{_qualified(call.fn) or fn}()")
            if fn in _LOOKUP or fn in _INDIRECT or fn in _EVALUATORS:
                owner.lookup = True
            if len(owner.calls) < _MAX_HITS:
                owner.calls.add(_qualified(call.fn) or fn)
            if fn in _NATIVE and call.args:
                target = call.args[0]
                inner = _name(target.fn) if isinstance(target, _Call) else None
                if fn in (".Internal", ".Primitive"):
                    if inner is not None and _tier(inner) is not None:
                        self.hit(Severity.CRITICAL, f"{fn}({inner}())")
                elif isinstance(target, str) or _strings(target):
                    self.hit(Severity.CRITICAL, f"{fn}() of a native entry named by a string")
            if fn in _LOOKUP:
                named = call.args[1:2] if fn in ("[[", "$") else call.args[:1]
                for arg in named:
                    built = _name(arg.fn) if isinstance(arg, _Call) else None
                    if built in _STRING_BUILDERS:
                        self.hit(Severity.HIGH, f"{fn}() of a function name computed by {built}()")
        # a dangerous function passed as a value: lapply(x, system), f <- system (base::system is the call's own)
        for arg in () if fn in ("::", ":::") else call.args:
            if isinstance(arg, _Sym):
                tier = _tier(arg.name)
                if tier is not None:
                    self.hit(tier, f"{arg.name} passed as a value")

    def hit_in(self, owner: _Owner, severity: Severity, what: str) -> None:
        if len(owner.hits) < _MAX_HITS:
            owner.hits.append((severity, what))

    def judge_value(self, value: object) -> None:
        """A closure's body or a promise's code that is a bare symbol naming a dangerous function."""
        if isinstance(value, _Sym):
            tier = _tier(value.name)
            if tier is not None:
                self.hit(tier, value.name)

    def report(self, owner: _Owner, *, promise: bool = False) -> None:
        if owner.lookup:
            # do.call("system", ...), get("system"), do.call("do.call", list("system", ...)): a reported
            # function named by a string of code that reaches functions by name
            for s in sorted(owner.strings):
                tier = _tier(s)
                if tier is not None:
                    self.hit_in(owner, tier, f"{s!r} reached by name")
        if not owner.hits or promise:
            return
        worst = max(s for s, _ in owner.hits)
        calls = ", ".join(sorted({m for _, m in owner.hits}))
        self.code.append((worst, owner.kind, calls))


def _qualified(fn: object) -> str | None:
    """``pkg::name`` of a ``::``/``:::`` call, else None."""
    if isinstance(fn, _Call) and _name(fn.fn) in ("::", ":::") and len(fn.args) == 2:
        pkg = fn.args[0]
        pkg_s = pkg.name if isinstance(pkg, _Sym) else pkg[0] if isinstance(pkg, list) and pkg else pkg
        name_s = _name(fn)
        if isinstance(pkg_s, str) and name_s is not None:
            return f"{pkg_s}::{name_s}"
    return None


def _name(fn: object) -> str | None:
    if isinstance(fn, _Sym):
        return fn.name
    if isinstance(fn, _Call) and _name(fn.fn) in ("::", ":::") and len(fn.args) == 2:
        last = fn.args[1]
        if isinstance(last, _Sym):
            return last.name
        if isinstance(last, str):
            return last
        if isinstance(last, list) and last and isinstance(last[0], str):
            return last[0]
    return None


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)][:100]
    return []


def _show(code: object) -> str:
    if isinstance(code, _Call):
        name = _name(code.fn)
        return f"{name}(...)" if name else "a call"
    if isinstance(code, _Sym):
        return f"the symbol {code.name!r}"
    return "a constant"


def _read_all(blob: Blob) -> bytes:
    if blob.data is not None:
        return bytes(blob.data)
    if blob.size is not None and blob.size > _MAX_BYTES:
        raise RdsError(f"R stream of {blob.size} bytes is over the reader's {_MAX_BYTES} bytes", bound=True)
    with blob.open() as f:
        data = f.read(_MAX_BYTES + 1)
    if len(data) > _MAX_BYTES:
        raise RdsError(f"R stream over the reader's {_MAX_BYTES} bytes", bound=True)
    return data


def scan_rds(blob: Blob, ctx: ScanContext) -> None:
    """Read an R serialization stream or ``save()`` file, reporting promises, active bindings, dangerous calls in
    closures, language objects and bytecode, and packages the load would attach."""
    try:
        data = _read_all(blob)
        walk = _walk(data, ctx)
    except RdsError as exc:
        start = stream_start(blob.head(64))
        if not exc.bound and exc.early and start is not None and start[0] == b"A":
            # text that only opens like an ASCII stream ("A", "2", "3", "4" in a word list): R fails on it (its
            # end, a word that is no number, no item type) within the first few items, having built nothing
            # and loaded no package, so the file is what its other readers see, text
            from loopwarden.checks.models.detect import Format
            from loopwarden.checks.models.dispatch import scan_as

            scan_as(blob, ctx, Format.TEXT)
            return
        ctx.fail(blob.location, f"R serialization: {exc}")
        return
    for severity, message in walk.promises:
        ctx.add_severity(rules.RPromise, severity, message, blob.location)
    for severity, kind, calls in walk.code:
        ctx.add_severity(rules.RCode, severity, f"R {kind} calls {calls}", blob.location, calls=calls)
    if blob.head(5).startswith(_SAVE_MAGIC):
        for name, value in walk.bindings:
            if name in _HOOKS and value == ("closure",):
                ctx.add_severity(
                    rules.RCode,
                    Severity.HIGH,
                    f"the save() file defines {name}(), which R runs at start-up or exit of a session that "
                    "restores it (an .RData in the working folder is restored by default)",
                    blob.location,
                    calls=name,
                )
    if walk.packages:
        names = sorted(walk.packages)
        ctx.add(
            rules.RPackage,
            f"loading the file loads the R package(s) {', '.join(names[:20])}",
            blob.location,
            packages=names[:50],
        )


def _walk(data: bytes, ctx: ScanContext) -> _Walk:
    if data.startswith(_OLD_SAVE_MAGIC):
        raise RdsError("a version 1 save() file, which the reader does not read")
    start = stream_start(data[:64])
    if start is None:
        raise RdsError("no serialization format line")
    r = _Reader(data, start[1], start[0])
    version = r.integer()
    r.integer()
    r.integer()
    if version == 3:
        n = r.integer()
        if not 0 <= n <= 64:
            raise RdsError(f"native encoding name of {n} bytes")
        r.string(n)
    elif version != 2:
        raise RdsError(f"serialization version {version} (R reads 2 and 3)")
    walk = _Walk(r, ctx)
    try:
        walk.item(0)
        walk.report(walk.loose)
    except RdsError as exc:
        exc.early = not walk.packages and walk.items <= _EARLY_ITEMS
        raise
    return walk
