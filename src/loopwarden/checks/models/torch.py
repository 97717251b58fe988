"""TorchScript code: the Python-like source that ``torch.jit.load`` compiles and runs.

TorchScript cannot import Python modules, but it can call any registered operator (``torch.ops.<ns>.<op>``)
and
a few builtins. Operators outside torch's own namespaces need a native library and are reported, as are names
that only make sense for code that wants the file system, processes or imports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import ScanContext, member_location

if TYPE_CHECKING:
    from loopwarden.checks.models._base import Blob
from loopwarden.domain import Location, Rule, Severity

__all__ = [
    "MAR_MANIFEST",
    "SPARSE_CONSTRUCTOR",
    "check_torch_package",
    "check_torchscript_code",
    "check_torchserve_archive",
    "served_source",
]

_TORCH_NAMESPACES: Final = frozenset(
    {
        "aten",
        "prim",
        "quantized",
        "_quantized",
        "prepacked",
        "_caffe2",
        "quantized_decomposed",
        "profiler",
        "_test",
        "xnnpack",
        "mkldnn",
        "onednn",
        "fbgemm",
        "sparse",
        "torchvision",
        "torchaudio",
        "image",
    }
)
_DANGEROUS: Final = re.compile(
    r"\b(__import__|importlib|subprocess|os\.system|os\.popen|popen|exec|eval|compile|builtins|open|"
    r"__builtins__|__globals__|__class__|__subclasses__|system|spawn|socket|urllib|shutil|pickle|"
    r"marshal|load_library|_load_library)\b\s*[\(\.\[]"
)
_METHOD_WORDS: Final = frozenset({"open", "system", "spawn", "popen", "exec", "eval", "compile"})
"""Words of ``_DANGEROUS`` that an archive's own classes use as method names (a module with ``open`` or
``compile`` methods). No TorchScript builtin type has a method of these names, so ``def open(`` and a call on a
value (``(_0).open(x)``, ``self.open(x)``, ``sub.compile(x)``) name the archive's own code, which is judged
itself; on a module name (``os.system``) they stay findings."""
_MODULE_ROOTS: Final = frozenset(
    {
        "os", "subprocess", "builtins", "__builtins__", "importlib", "socket", "urllib", "shutil", "pickle",
        "marshal", "sys", "posix", "nt", "pty", "io", "pathlib", "codecs", "platform", "torch", "ops",
    }
)  # fmt: skip
"""Receivers under which a method word is read as a module's function, as Python code would call it."""
_STRINGS: Final = re.compile(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")
_FILE_BUILTIN_NAMES: Final = frozenset(
    {"save", "from_file", "_save_parameters", "_save_for_mobile", "_load_for_mobile", "load"}
)
"""torch's own builtins that read or write a file named by the code: ``torch.save`` (aten::save) writes any path (a
``.bashrc`` or crontab for code execution), ``torch.from_file`` (aten::from_file) maps any file into a tensor
(CVE-2025-32434; Zhou and Song, "Safe Harbor or Hostile Waters", Black Hat USA 2025)."""
_FILE_OP_NAME: Final = re.compile(r"(?:^|_)(?:read|write|save|load|open)(?:_|$)|from_file|(?:^|_)file(?:_|$)")
"""Operators of any namespace whose name says they touch files (torchvision's image.read_file/write_file/write_png,
torchaudio's sox_io_save_audio_file ...)."""
_TOKEN: Final = re.compile(
    r"""(?P<str>[rRbBuUfF]{0,2}(?:'''(?:[^\\]|\\.)*?'''|\"\"\"(?:[^\\]|\\.)*?\"\"\"|'(?:[^'\\\n]|\\.)*'"""
    r"""|"(?:[^"\\\n]|\\.)*"))"""
    r"|(?P<comment>\#[^\n]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<num>[0-9][0-9A-Za-z_.]*)"
    r"|(?P<space>(?:[ \t\r\f\n]|\\\r?\n)+)"
    r"|(?P<op>.)",
    re.DOTALL,
)
"""The lexemes of TorchScript source (Python's): whitespace, line breaks and backslash continuations between tokens
mean nothing to the compiler (``torch . save``, ``torch.\\`` + newline + ``save`` and ``(torch\n.save)`` are all
``torch.save``), so names are read from tokens, never from the layout of a line."""


class _Tok:
    __slots__ = ("kind", "line", "value")

    def __init__(self, kind: str, value: str, line: int) -> None:
        self.kind = kind
        self.value = value
        self.line = line


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    line = 1
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "op"
        value = m.group()
        if kind not in ("space", "comment"):
            if kind == "str":
                value = _string_value(value)
            out.append(_Tok(kind, value, line))
        line += value.count("\n") if kind != "str" else m.group().count("\n")
    return out


def _string_value(literal: str) -> str:
    import ast

    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return literal.strip("rRbBuUfF")[1:-1]
    return value if isinstance(value, str) else ""


def _chain_at(toks: list[_Tok], i: int) -> tuple[list[str], int]:
    """The dotted chain that starts at token ``i`` (a name), as the compiler resolves it: ``a.b.c``, and
    ``getattr(<chain>, "<name>")`` (TorchScript's getattr takes a constant string) read as ``<chain>.<name>``."""
    n = len(toks)
    t = toks[i]
    parts = [t.value]
    j = i + 1
    if t.value == "getattr" and j + 1 < n and toks[j].value == "(" and toks[j + 1].kind == "name":
        inner, k = _chain_at(toks, j + 1)
        if k + 2 < n and toks[k].value == "," and toks[k + 1].kind == "str" and toks[k + 2].value == ")":
            parts = [*inner, toks[k + 1].value]
            j = k + 3
    while j + 1 < n and toks[j].kind == "op" and toks[j].value == "." and toks[j + 1].kind == "name":
        parts.append(toks[j + 1].value)
        j += 2
    return parts, j


def check_torchscript_code(text: str, ctx: ScanContext, location: Location) -> None:
    toks = _tokens(text)
    function = ""
    for i, t in enumerate(toks):
        if t.kind != "name":
            continue
        if t.value == "def" and i + 1 < len(toks) and toks[i + 1].kind == "name":
            function = toks[i + 1].value
            continue
        if i > 0 and toks[i - 1].kind == "op" and toks[i - 1].value == ".":
            continue  # inside a chain read from its head
        parts, _ = _chain_at(toks, i)
        if parts[0] == "__torch__":
            continue  # a class or module of the archive's own code (__torch__.torchvision.ops.misc.Conv)
        _judge_chain(parts, ctx, Location(location.path, location.member, line=t.line), function)
    _sparse_indices(toks, ctx, location)
    for t in _method_words(toks):
        ctx.add(
            rules.TorchScriptCode,
            f"TorchScript code uses '{t.value}'",
            Location(location.path, location.member, line=t.line),
            name=t.value,
        )
    code = _STRINGS.sub('""', text)  # names inside string constants are data, not calls
    for lineno, line in enumerate(code.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in _DANGEROUS.finditer(line):
            if m.group(1) in _METHOD_WORDS:
                continue  # judged on the tokens (_method_words)
            ctx.add(
                rules.TorchScriptCode,
                f"TorchScript code uses '{m.group(1)}'",
                Location(location.path, location.member, line=lineno),
                name=m.group(1),
            )


def _method_words(toks: list[_Tok]) -> list[_Tok]:
    """Uses of the method words (``_METHOD_WORDS``) followed by ``(``, ``.`` or ``[``, except where they name a
    method of the archive's own classes: defined there (``def open(``) or called on a value that is not a module
    (``(_0).open(x)``, ``self.compile(x)``)."""
    found: list[_Tok] = []
    for i, t in enumerate(toks):
        if t.kind != "name" or t.value not in _METHOD_WORDS or i + 1 >= len(toks):
            continue
        if toks[i + 1].kind != "op" or toks[i + 1].value not in "(.[":
            continue
        prev = toks[i - 1] if i else None
        recv = toks[i - 2] if i > 1 else None
        if prev is not None and prev.kind == "name" and prev.value == "def":
            continue
        if (
            prev is not None
            and prev.kind == "op"
            and prev.value == "."
            and recv is not None
            and (
                (recv.kind == "op" and recv.value == ")")
                or (recv.kind == "name" and recv.value not in _MODULE_ROOTS)
            )
        ):
            continue
        found.append(t)
    return found


def _judge_chain(parts: list[str], ctx: ScanContext, where: Location, function: str) -> None:
    """Judge one dotted chain. torch.jit.load's source importer reaches operators through two names only:
    ``torch`` (the ``aten`` namespace; ``torch.autograd`` is that namespace again, any number of times) and
    ``ops`` (every registered namespace). Serialized code writes them only as the head of a full
    ``torch.<op>`` / ``ops.<ns>.<op>`` chain; either held as a value (``t = torch``, ``a = ops.aten``,
    ``(torch).save``, ``getattr(ops, "aten")``) lets any operator, ``aten::save`` among them, be called under
    another name, so that is reported too."""
    # __setstate__ runs while torch.jit.load (or torch.load of a TorchScript file) reads the archive
    severity = Severity.CRITICAL if function == "__setstate__" else Severity.HIGH
    at_load = " while the archive loads (in __setstate__)" if function == "__setstate__" else ""
    root = parts[0]
    if root == "torch":
        rest = parts[1:]
        while rest and rest[0] == "autograd":
            rest = rest[1:]  # torch.autograd is the aten namespace again (torch.autograd.save is aten::save)
        if rest and rest[0] == "ops":
            _judge_ops(rest[1:], ctx, where, severity, ".".join(parts), function == "__setstate__")
        elif not rest:
            ctx.add_severity(
                rules.TorchScriptCode,
                severity,
                f"TorchScript code takes the operator namespace '{'.'.join(parts)}' as a value: any builtin, "
                f"torch.save and torch.from_file among them, can be called through it{at_load}",
                where,
                name=".".join(parts),
            )
        elif function == "__setstate__" and SPARSE_CONSTRUCTOR.search(rest[0]):
            _sparse_at_load(".".join(parts), ctx, where)
        elif rest[0] in _FILE_BUILTIN_NAMES:
            ctx.add_severity(
                rules.TorchScriptCode,
                severity,
                f"TorchScript code calls torch.{rest[0]}, which reads or writes a file it names{at_load}",
                where,
                name=rest[0],
            )
        return
    if root == "ops":
        _judge_ops(parts[1:], ctx, where, severity, ".".join(parts), function == "__setstate__")
        return
    for k in range(1, len(parts)):
        if parts[k] == "ops" and k + 2 < len(parts):
            _judge_ops(parts[k + 1 :], ctx, where, severity, ".".join(parts), function == "__setstate__")
            return
    if root != "self" and any(p in _FILE_BUILTIN_NAMES for p in parts[1:]):
        name = next(p for p in parts[1:] if p in _FILE_BUILTIN_NAMES)
        ctx.add_severity(
            rules.TorchScriptCode,
            severity,
            f"TorchScript code calls '{name}' on '{parts[0]}' (torch.{name} reads or writes a file it names, "
            f"through a name held in a variable){at_load}",
            where,
            name=name,
        )


SPARSE_CONSTRUCTOR: Final = re.compile(r"^_?sparse_(?:coo|csr|csc|bsr|bsc|compressed)_tensor")
"""Sparse tensor constructors: torch checks their indices only when sparse invariant checks are on (off by default),
and ``to_dense()``/``coalesce()`` then write wherever the indices say (a constant out-of-range COO index segfaults
torch 2.13). In ``__setstate__`` they run while the archive loads, with indices the file chose; the fx check refuses
them in GraphModule code, which torch.load re-traces with constants run for real."""


_SPARSE_RAW: Final = frozenset({"sparse_resize_", "sparse_resize_and_clear_", "_coalesced_"})
"""Operators that change a sparse tensor's geometry or its coalesced flag without checking its indices against it:
kernels then index (and write) with indices the new size no longer bounds, or skip the deduplication they rely on."""
_INDEX_ALIASES: Final = frozenset(
    {"_indices", "indices", "crow_indices", "col_indices", "ccol_indices", "row_indices"}
)
"""Accessors that return a sparse tensor's own index tensor (an alias, not a copy): an in-place operation on it
(``torch.add_(torch._indices(t), n)``) moves the indices anywhere, and ``to_dense()``/``coalesce()`` then write
there (torch 2.13 segfaults)."""


def _called_op(parts: list[str]) -> str | None:
    """The operator or method a called chain names: ``torch.<op>``, ``torch.ops.<ns>.<op>``/``ops.<ns>.<op>``, or
    ``<value>.<method>``."""
    if parts[0] == "torch":
        rest = parts[1:]
        while rest and rest[0] == "autograd":
            rest = rest[1:]
        if rest and rest[0] == "ops":
            return rest[2] if len(rest) > 2 else None
        return rest[-1] if rest else None  # torch.<op>, or a namespace of it (torch.sparse.<op>)
    if parts[0] == "ops":
        return parts[2] if len(parts) > 2 else None
    return parts[-1] if len(parts) > 1 else None


def _sparse_indices(toks: list[_Tok], ctx: ScanContext, location: Location) -> None:
    """Sparse tensors whose indices the code chooses, in any function (``forward`` runs when the loaded module is
    called): a sparse constructor (torch checks no index against the size by default, and ``to_dense()`` writes
    where they say: a constant out-of-range COO index segfaulted torch 2.13 when the loaded module ran), an
    operator that resizes a sparse tensor or marks it coalesced unchecked, and an in-place change of a sparse
    tensor's index tensor (an alias): an in-place operator on it (``torch.add_(torch._indices(t), n)``,
    ``t._indices().add_(n)``, ``out=``), an augmented or item assignment (``idx += n``, ``idx[0] = n``), directly
    or through a variable assigned from it. Constructors in ``__setstate__`` are reported by
    :func:`_judge_chain` (critical: they run at load).

    The alias is followed through variables, containers (``l.append(idx)``, ``d[k] = idx``, a list of it), loop
    variables over it (``for r in idx``, comprehensions) and the return value of the archive's own functions that
    return it (``i = self.idx(t)``, ``__torch__.helpers.idx(t)``): those are found first, by walks that only
    collect, until no new one appears; they are kept on the target's context with the code files already read,
    which are walked again when a later file defines a new one (the archive's member order is the writer's).
    """
    toks = _unwrap_getattr(toks)
    state = ctx.torchscript
    code: list[tuple[list[_Tok], Location]] = state.setdefault("code", [])
    returning: set[str] = state.setdefault("returning", set())
    code.append((toks, location))
    if not _collect_returning(code[-1:], returning, ctx) or len(code) == 1:
        _walk(toks, ctx, location, returning)
        return
    # a function returning an index alias that this file defines: the archive's other code files may call it
    # (``__torch__.helpers.idx(t)``, ``self.sub.idx(t)``), so they are walked again with it, new findings added
    _collect_returning(code, returning, ctx)
    seen = {(f.rule_id, f.message, f.location) for f in ctx.findings}
    for other, where in code:
        sink = _Collect()
        _walk(other, sink, where, returning)
        for rule, severity, message, at, ev in sink.found:
            if (rule.rule_id, message, at) not in seen:
                seen.add((rule.rule_id, message, at))
                ctx.add_severity(rule, severity, message, at, **ev)


def _collect_returning(
    code: list[tuple[list[_Tok], Location]], returning: set[str], ctx: ScanContext
) -> bool:
    """Add to ``returning`` the functions of ``code`` that return an index alias, by walks that only collect, until
    no new one appears; whether any was added. A chain of helpers deeper than the walks follow fails closed."""
    added = False
    for _ in range(_RETURN_ROUNDS):
        found: set[str] = set()
        for toks, where in code:
            found |= _walk(toks, _Quiet(), where, returning)
        if found <= returning:
            return added
        returning |= found
        added = True
    ctx.fail(
        code[-1][1],
        f"TorchScript helpers return a sparse index alias through more than {_RETURN_ROUNDS} calls",
    )
    return added


_RETURN_ROUNDS: Final = 16
"""Walks that collect the functions returning an index alias (one more level of helpers returning a helper's
result per walk)."""


class _Collect:
    """A report sink that keeps the reports (walks of the archive's other code files, added when new)."""

    def __init__(self) -> None:
        self.found: list[tuple[type[Rule], Any, str, Location, dict[str, Any]]] = []

    def add_severity(
        self, rule: type[Rule], severity: Any, message: str, location: Location, **ev: Any
    ) -> None:
        self.found.append((rule, severity, message, location, ev))


class _Quiet:
    """A report sink for the collecting walks."""

    def add_severity(self, *_args: object, **_kwargs: object) -> None:
        return None


class _Reports(Protocol):
    def add_severity(
        self, rule: type[Rule], severity: Any, message: str, location: Location, **ev: Any
    ) -> None: ...


def _walk(toks: list[_Tok], ctx: _Reports, location: Location, returning: set[str]) -> set[str]:
    """One walk of :func:`_sparse_indices` over the code, reporting to ``ctx``, with the functions named in
    ``returning`` taken as returning an index alias; returns the functions found returning one."""
    found: set[str] = set()
    returned = {f"{name}(" for name in returning}  # kept in ``tainted``: no variable name holds "("
    function = ""
    tainted: set[str] = set(returned)
    fn = _Function(set())
    n = len(toks)
    i = 0
    while i < n:
        t = toks[i]
        at_load = function == "__setstate__"
        severity = Severity.CRITICAL if at_load else Severity.HIGH
        when = " while the archive loads (in __setstate__)" if at_load else " when it runs"
        where = Location(location.path, location.member, line=t.line)
        if i == 0 or toks[i - 1].line < t.line:
            if t.value == "return" and _names_alias(toks[i + 1 : _statement_end(toks, i)], tainted):
                found.add(function)
            _loop_targets(toks, i, tainted)
            _statement(toks, i, tainted, fn, ctx, where, (severity, when))
        if t.kind != "name":
            i += 1
            continue
        if t.value == "def" and i + 1 < n and toks[i + 1].kind == "name":
            function, tainted = toks[i + 1].value, set(returned)
            fn = _Function(_parameters(toks, i + 2))
            i += 2
            continue
        if i > 0 and toks[i - 1].kind == "op" and toks[i - 1].value == ".":
            # a method called on a call's result: t._indices().add_(n)
            if (
                i > 1
                and toks[i - 2].value == ")"
                and _inplace(t.value)
                and i + 1 < n
                and toks[i + 1].value == "("
                and _alias_call_before(toks, i - 2, tainted)
            ):
                _report_inplace(ctx, t.value, where, (severity, when))
            elif (
                i > 1
                and toks[i - 2].value == "]"
                and _inplace(t.value)
                and i + 1 < n
                and toks[i + 1].value == "("
                and _names_alias(_postfix_before(toks, i - 2), tainted)
            ):
                _report_inplace(ctx, t.value, where, (severity, when))  # l[0].add_(n), l holding the alias
            elif i > 1 and toks[i - 2].value == ")" and i + 1 < n and toks[i + 1].value == "(":
                _handed_over(
                    toks, i + 1, t.value, tainted, ctx, where, (severity, when)
                )  # (self.sub).forward(
            i += 1
            continue
        parts, j = _chain_at(toks, i)
        called = j < n and toks[j].kind == "op" and toks[j].value == "("
        op = _called_op(parts) if called else None
        spelled = ".".join(parts)
        if op is not None and SPARSE_CONSTRUCTOR.search(op) and not at_load:
            if _caller_chosen(toks, j, op, fn):
                # the function's own parameters as indices, with no size or the parameters' sizes (a GNN's
                # adjacency from its edge_index input). Still reported, lower: whoever calls the function chooses
                # them, and that may be the archive's own code (a parent module's forward calling this one's
                # with constants), which a reading of one code file cannot rule out
                severity, what = Severity.MEDIUM, "from its parameters' indices and sizes"
            else:
                what = "with indices or a size the code chooses"
            ctx.add_severity(
                rules.TorchScriptCode,
                severity,
                f"TorchScript code builds a sparse tensor with {spelled} {what}{when}: torch does not check its "
                "indices by default, and to_dense()/coalesce() write where they say",
                where,
                name=spelled,
            )
        elif op in _SPARSE_RAW:
            ctx.add_severity(
                rules.TorchScriptCode,
                severity,
                f"TorchScript code calls {spelled}{when}: it changes a sparse tensor's size or coalesced flag "
                "without checking its indices",
                where,
                name=spelled,
            )
        elif op is not None and _inplace(op):
            receiver = parts[:-1] if parts[0] not in ("torch", "ops") else []
            for x in [*receiver[:1], *(a.value for a in _first_argument(toks, j) if a.kind == "name")]:
                fn.params.discard(x)  # changed in place: no longer the caller's value as given
            if (len(receiver) == 1 and receiver[0] in tainted) or _names_alias(
                _first_argument(toks, j), tainted
            ):
                _report_inplace(ctx, spelled, where, (severity, when))
        elif called and parts[0] in ("self", "__torch__"):
            _handed_over(toks, j, spelled, tainted, ctx, where, (severity, when))
        elif (
            t.value == "out"
            and j + 1 < n
            and toks[j].value == "="
            and i > 0
            and toks[i - 1].value in ("(", ",")
        ):
            # a keyword argument (after "(" or ","), not a variable named out assigned by a statement
            value = _value_at(toks, j)
            fn.params.difference_update(x.value for x in value if x.kind == "name")
            if _names_alias(value, tainted):
                _report_inplace(ctx, "out=", where, (severity, when))
        elif called and op in _CONTAINER_PUT:
            receiver = parts[:-1] if parts[0] not in ("torch", "ops") else []
            args = _arguments(toks, j)
            if not receiver and args and len(args[0]) == 1 and args[0][0].kind == "name":
                receiver, args = [args[0][0].value], args[1:]  # torch.append(l, x)
            if len(receiver) == 1 and any(_names_alias(a, tainted) for a in args):
                tainted.add(receiver[0])  # the container now holds the index tensor itself
        i = j if j > i else i + 1
    return found


_CONTAINER_PUT: Final = frozenset(
    {"append", "insert", "extend", "setdefault", "update", "_set_item", "__setitem__"}
)
"""List and dict methods (``l.append(x)``, ``torch.append(l, x)``) that put a value itself, not a copy, in the
container: a container given an index alias holds the alias (``l[0]`` is the sparse tensor's index tensor)."""


def _loop_targets(toks: list[_Tok], i: int, tainted: set[str]) -> None:
    """The variables of each ``for`` in the statement at ``i`` (a loop or a comprehension) that iterates over an
    index alias, a container holding one, or a view of one: each is (or may be) the alias itself."""
    end = _statement_end(toks, i)
    for k in range(i, end):
        if toks[k].kind != "name" or toks[k].value != "for":
            continue
        depth, m = 0, k + 1
        while m < end and not (depth == 0 and toks[m].kind == "name" and toks[m].value == "in"):
            depth += 1 if toks[m].value in ("(", "[", "{") else -1 if toks[m].value in (")", "]", "}") else 0
            m += 1
        targets = [x.value for x in toks[k + 1 : m] if x.kind == "name" and x.value != "self"]
        depth, e = 0, m + 1
        while e < end:
            v = toks[e].value if toks[e].kind == "op" else ""
            if v in ("(", "[", "{"):
                depth += 1
            elif v in (")", "]", "}"):
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (v == ":" or (toks[e].kind == "name" and toks[e].value in ("if", "for"))):
                break
            e += 1
        iterated = toks[m + 1 : e]
        if iterated and iterated[0].value == "range":
            continue  # integers, not tensors (range(torch.size(idx, 1)))
        if _names_alias(iterated, tainted):
            tainted.update(targets)


def _handed_over(
    toks: list[_Tok],
    j: int,
    spelled: str,
    tainted: set[str],
    ctx: _Reports,
    where: Location,
    how: tuple[Severity, str],
) -> None:
    """A sparse tensor's index tensor passed to the archive's own code (a method, a submodule, a function under
    ``__torch__``), which may change it in place where this reading no longer follows it."""
    if any(_names_alias(arg, tainted) for arg in _arguments(toks, j)):
        ctx.add_severity(
            rules.TorchScriptCode,
            how[0],
            f"TorchScript code passes a sparse tensor's index tensor (an alias) to the archive's own code "
            f"({spelled[:200]}){how[1]}, which may change the indices in place",
            where,
            name=spelled[:200],
        )


def _inplace(op: str) -> bool:
    return op.endswith("_") and not op.startswith("__")


def _report_inplace(ctx: _Reports, spelled: str, where: Location, how: tuple[Severity, str]) -> None:
    ctx.add_severity(
        rules.TorchScriptCode,
        how[0],
        f"TorchScript code changes a sparse tensor's index tensor in place ({spelled}){how[1]}: its kernels then "
        "read and write wherever the indices say",
        where,
        name=spelled,
    )


_NOT_ASSIGNED: Final = frozenset({"if", "elif", "while", "return", "assert", "for", "with", "raise", "del"})
_AUGMENT: Final = frozenset("+-*/%&|^@<>")


class _Function:
    """What a function's code is known to hold: its parameters (the caller's values, until reassigned) and the
    right-hand side of each variable assigned once by name."""

    __slots__ = ("assigned", "params")

    def __init__(self, params: set[str]) -> None:
        self.params = params
        self.assigned: dict[str, list[_Tok]] = {}


def _parameters(toks: list[_Tok], i: int) -> set[str]:
    """The parameter names (but ``self``) of the ``def`` whose ``(`` is at ``i``."""
    out: set[str] = set()
    if i >= len(toks) or toks[i].value != "(":
        return out
    depth = 0
    for k in range(i, len(toks)):
        tok = toks[k]
        if tok.kind == "op" and tok.value in "([{":
            depth += 1
        elif tok.kind == "op" and tok.value in ")]}":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and tok.kind == "name" and toks[k - 1].value in ("(", ",") and tok.value != "self":
            out.add(tok.value)
    return out


def _arguments(toks: list[_Tok], j: int) -> list[list[_Tok]]:
    """The top-level arguments of the call whose ``(`` is at ``j``."""
    args: list[list[_Tok]] = []
    k = j
    while k < len(toks) and toks[k].value in ("(", ","):
        arg = _first_argument(toks, k)
        if not arg:
            break
        args.append(arg)
        k += len(arg) + 1
    return args


_SIZE_ITEM: Final = r"(?:torch \. size \( P(?: , [0-9]+)? \)|P \. size \((?: [0-9]+)? \))"
_CALLER_SIZE: Final = re.compile(rf"{_SIZE_ITEM}|\[ {_SIZE_ITEM}(?: , {_SIZE_ITEM})* \]")
"""A size made only of the parameters' sizes (``[torch.size(x, 0), torch.size(x, 0)]``, ``x.size()``), as tokens
joined by spaces with each parameter spelled ``P``."""


def _caller_chosen(toks: list[_Tok], j: int, op: str, fn: _Function) -> bool:
    """Whether a sparse constructor's index tensors are the function's parameters as given, and its size is absent
    (torch infers it from the indices) or made only of the sizes of parameters: the caller chose both."""
    args = _arguments(toks, j)
    positional = [a for a in args if not (len(a) > 1 and a[0].kind == "name" and a[1].value == "=")]
    keywords = {a[0].value: a[2:] for a in args if len(a) > 1 and a[0].kind == "name" and a[1].value == "="}
    n_idx = 1 if "coo" in op else 2
    if len(positional) < n_idx or not all(
        len(a) == 1 and a[0].kind == "name" and a[0].value in fn.params for a in positional[:n_idx]
    ):
        return False
    size = keywords.get("size") or (positional[n_idx + 1] if len(positional) > n_idx + 1 else None)
    if size is None:
        return True
    if len(size) == 1 and size[0].kind == "name" and size[0].value in fn.assigned:
        size = fn.assigned[size[0].value]
    if any(t.kind == "name" and t.value not in fn.params and t.value not in ("torch", "size") for t in size):
        return False
    spelled = " ".join(("P" if t.kind == "name" and t.value in fn.params else t.value) for t in size)
    return _CALLER_SIZE.fullmatch(spelled) is not None


def _statement(
    toks: list[_Tok],
    i: int,
    tainted: set[str],
    fn: _Function,
    ctx: _Reports,
    where: Location,
    how: tuple[Severity, str],
) -> None:
    """Judge the assignment that starts at ``i``, if it is one: a variable assigned from a sparse tensor's index
    tensor is remembered (``tainted``); an augmented assignment to it, or an item assignment into it, changes
    the indices in place."""
    if toks[i].value in _NOT_ASSIGNED:
        return
    end = _statement_end(toks, i)
    depth = 0
    for k in range(i, end):
        tok = toks[k]
        if tok.kind != "op":
            continue
        if tok.value in "([{":
            depth += 1
        elif tok.value in ")]}":
            depth = max(0, depth - 1)
        elif tok.value == "=" and depth == 0:
            if k + 1 < end and toks[k + 1].value == "=":
                return  # a comparison
            prev = toks[k - 1].value if k > i else ""
            if prev in ("=", "!"):
                return
            augmented = prev in _AUGMENT
            lhs = toks[i : k - 1] if augmented else toks[i:k]
            if augmented or any(x.value == "[" for x in lhs):
                fn.params.difference_update(x.value for x in lhs if x.kind == "name")
                if _names_alias(lhs, tainted):
                    _report_inplace(
                        ctx, "augmented assignment" if augmented else "item assignment", where, how
                    )
                elif not augmented and _names_alias(toks[k + 1 : end], tainted):
                    # d[key] = idx: the container holds the alias itself
                    if any(x.value == "." for x in lhs):
                        _report_inplace(ctx, "stored in an attribute", where, how)
                    elif lhs[0].kind == "name" and lhs[0].value != "self":
                        tainted.add(lhs[0].value)
                return
            rhs_alias = _names_alias(toks[k + 1 : end], tainted)
            if rhs_alias and any(x.value == "." for x in lhs):
                # kept in an attribute, another method may change it in place where this reading does not follow
                _report_inplace(ctx, "stored in an attribute", where, how)
                return
            named = [x.value for x in lhs if x.kind == "name"]
            for name in named:
                fn.params.discard(name)  # no longer the caller's value
                fn.assigned.pop(name, None)
            if len(lhs) == 1 and named:
                fn.assigned[named[0]] = toks[k + 1 : end]
            for x in lhs:
                if x.kind == "name" and x.value != "self":
                    if rhs_alias:
                        tainted.add(x.value)
                    else:
                        tainted.discard(x.value)
            return


_BACK_MAX: Final = 10_000
"""Tokens walked back from a ``)`` to find the call it closes."""


def _alias_call_before(toks: list[_Tok], close: int, tainted: set[str]) -> bool:
    """Whether the call that ends with the ``)`` at ``close`` is an index accessor (``t._indices()``) or a call of
    the file's own function that returns an index alias (``self.idx(t)``)."""
    depth = 0
    k = close
    while k >= 0:
        if close - k > _BACK_MAX:
            return True  # not followed that far back (bounded work per call): taken as one
        v = toks[k].value if toks[k].kind == "op" else ""
        if v == ")":
            depth += 1
        elif v == "(":
            depth -= 1
            if depth == 0:
                head = toks[k - 1] if k > 0 else None
                if (
                    head is None
                    or head.kind != "name"
                    or head.line != toks[k].line
                    or head.value in _KEYWORDS
                ):
                    # parentheses that only group: (idx).add_(n), and getattr(idx, "add_") read so
                    return _names_alias(toks[k + 1 : close], tainted)
                return head.value in _INDEX_ALIASES or f"{head.value}(" in tainted
        k -= 1
    return False


_KEYWORDS: Final = frozenset(
    {"return", "if", "elif", "else", "while", "for", "in", "not", "and", "or", "is", "assert", "raise", "del"}
)


def _unwrap_getattr(toks: list[_Tok]) -> list[_Tok]:
    """The tokens with each ``getattr(<expr>, "<name>")`` (TorchScript's getattr takes a constant string) spelled
    as the compiler reads it, ``<expr>.<name>`` (``(<expr>).<name>`` when the expression is more than a name):
    ``getattr(t, "_indices")()`` is ``t._indices()``. Innermost first (right to left)."""
    out = toks
    spots = [k for k, t in enumerate(toks) if t.kind == "name" and t.value == "getattr"]
    for p in reversed(spots):
        if p + 1 >= len(out) or out[p + 1].value != "(" or (p > 0 and out[p - 1].value == "."):
            continue
        depth, comma, c = 0, -1, p + 1
        while c < len(out):
            v = out[c].value if out[c].kind == "op" else ""
            if v in ("(", "[", "{"):
                depth += 1
            elif v in (")", "]", "}"):
                depth -= 1
                if depth == 0:
                    break
            elif v == "," and depth == 1:
                comma = c
            c += 1
        if c >= len(out) or comma < 0 or c != comma + 2 or out[comma + 1].kind != "str":
            continue
        name = out[comma + 1].value
        if not name.isidentifier():
            continue
        inner = out[p + 2 : comma]
        line = out[p].line
        if len(inner) != 1:
            inner = [_Tok("op", "(", line), *inner, _Tok("op", ")", line)]
        out = [*out[:p], *inner, _Tok("op", ".", line), _Tok("name", name, line), *out[c + 1 :]]
    return out


def _postfix_before(toks: list[_Tok], end: int) -> list[_Tok]:
    """The expression that ends at ``end`` (a ``]`` or ``)``): names, dots, calls and subscripts back to its
    head (``l[0]``, ``self.d["a"][0]``)."""
    k = end
    while k >= 0 and end - k <= _BACK_MAX:
        v = toks[k].value if toks[k].kind == "op" else ""
        if v in ("]", ")"):
            depth = 0
            while k >= 0:
                w = toks[k].value if toks[k].kind == "op" else ""
                depth += 1 if w in ("]", ")") else -1 if w in ("[", "(") else 0
                if depth == 0:
                    break
                k -= 1
            if k > 0 and (toks[k - 1].kind == "name" or toks[k - 1].value in ("]", ")")):
                k -= 1
                continue
            return toks[max(k, 0) : end + 1]
        if toks[k].kind == "name":
            if k > 1 and toks[k - 1].value == ".":
                k -= 2
                continue
            return toks[k : end + 1]
        return toks[k + 1 : end + 1]
    return toks[max(k, 0) : end + 1]


def _names_alias(toks: list[_Tok], tainted: set[str]) -> bool:
    """Whether the tokens name a sparse tensor's index tensor: an index accessor called (``torch._indices(t)``,
    ``t.col_indices()``) or a variable assigned from one (or from a view or value computed from one)."""
    for k, tok in enumerate(toks):
        if tok.kind != "name":
            continue
        if (
            tok.value in _INDEX_ALIASES
            and k + 1 < len(toks)
            and toks[k + 1].value == "("
            and not _on_self(toks, k)
        ):
            return True
        if f"{tok.value}(" in tainted and k + 1 < len(toks) and toks[k + 1].value == "(":
            return True  # the file's own function that returns an index alias
        after_dot = k > 0 and toks[k - 1].kind == "op" and toks[k - 1].value == "."
        if not after_dot and tok.value in tainted:
            return True
    return False


def _on_self(toks: list[_Tok], k: int) -> bool:
    """Whether the accessor name at ``k`` is rather a method of the archive's own module: called on ``self`` itself
    (``self.indices(x)``), or, for the plain word ``indices``, on a chain headed by ``self`` (``self.sub.indices``).
    ``self.buf._indices()`` stays an accessor (a sparse buffer's)."""
    word = toks[k].value
    depth = 0
    while k >= 2 and toks[k - 1].value == "." and toks[k - 2].kind == "name":
        k -= 2
        depth += 1
    on_self = toks[k].value == "self" and (k == 0 or toks[k - 1].value != ".")
    return on_self and (depth == 1 or word == "indices")


def _value_at(toks: list[_Tok], eq: int) -> list[_Tok]:
    """The tokens of a keyword argument's value, after its ``=`` at ``eq``."""
    return _first_argument(toks, eq)


def _statement_end(toks: list[_Tok], i: int) -> int:
    """The index after the statement that starts at ``i``: the first token on a later line at bracket depth 0."""
    depth = 0
    line = toks[i].line
    k = i
    while k < len(toks):
        tok = toks[k]
        if depth == 0 and tok.line > line:
            return k
        if tok.kind == "op" and tok.value in "([{":
            depth += 1
        elif tok.kind == "op" and tok.value in ")]}":
            depth = max(0, depth - 1)
        line = tok.line + (tok.value.count("\n") if tok.kind == "str" else 0)
        k += 1
    return k


def _first_argument(toks: list[_Tok], j: int) -> list[_Tok]:
    """The tokens of the first argument of the call whose ``(`` is at ``j``."""
    depth = 0
    k = j + 1
    while k < len(toks):
        tok = toks[k]
        if tok.kind == "op" and tok.value in "([{":
            depth += 1
        elif tok.kind == "op" and tok.value in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and tok.kind == "op" and tok.value == ",":
            break
        k += 1
    return toks[j + 1 : k]


def _sparse_at_load(spelled: str, ctx: ScanContext, where: Location) -> None:
    ctx.add_severity(
        rules.TorchScriptCode,
        Severity.CRITICAL,
        f"TorchScript code builds a sparse tensor with {spelled} while the archive loads (in __setstate__): torch "
        "does not check its indices by default, and to_dense()/coalesce() write where they say",
        where,
        name=spelled,
    )


def _judge_ops(
    rest: list[str], ctx: ScanContext, where: Location, severity: Severity, spelled: str, at_load: bool
) -> None:
    if len(rest) < 2:
        ctx.add_severity(
            rules.TorchScriptCode,
            severity,
            f"TorchScript code takes the operator namespace '{spelled}' as a value: any registered operator "
            "can be called through it",
            where,
            name=spelled,
        )
        return
    if at_load and SPARSE_CONSTRUCTOR.search(rest[1]):
        _sparse_at_load(spelled, ctx, where)
        return
    _judge_operator(rest[0], rest[1], ctx, where, severity, _TORCH_NAMESPACES, "calls operator torch.ops.")


def _judge_operator(
    ns: str,
    op: str,
    ctx: ScanContext,
    where: Location,
    severity: Severity,
    namespaces: frozenset[str],
    what: str,
) -> None:
    """An operator ``ns.op`` that TorchScript code or a torch.export graph calls: one whose name says it reads or
    writes files at ``severity``, one of a namespace torch does not register itself (it needs a native library
    loaded next to the model) at MEDIUM."""
    if _FILE_OP_NAME.search(op) or op in _FILE_BUILTIN_NAMES:
        ctx.add_severity(
            rules.TorchScriptCode,
            severity,
            f"{what}{ns}.{op}, which reads or writes files",
            where,
            operator=f"{ns}.{op}",
        )
    elif ns not in namespaces:
        ctx.add_severity(
            rules.TorchScriptCode,
            Severity.MEDIUM,
            f"{what}{ns}.{op} from a custom namespace",
            where,
            operator=f"{ns}.{op}",
        )


_PACKAGE_MARK: Final = "/.data/extern_modules"
"""The record every ``torch.package`` archive has (``<root>/.data/extern_modules``: the modules it takes from the
environment)."""


def check_torch_package(
    names: list[str],
    ctx: ScanContext,
    location: Location,
    members: Callable[[str], list[Blob]] | None = None,
) -> None:
    """A ``torch.package`` archive's own Python source. ``PackageImporter`` resolves every module a pickle names in
    the archive first (``<root>/collections.py``, ``<root>/numpy/__init__.py``), even one listed as extern, and runs
    that source: a pickle that names only allow-listed classes (``collections.OrderedDict``) then runs the
    archive's code, and a scanner that judges the name trusts it. Every shipped source is also judged for what it
    does when imported or called (``members``: the archive's member blobs by name; see :func:`_package_source`).

    Only ``<root>/<path>.py`` members of a root with an ``extern_modules`` record are modules: the importer skips
    ``.pyc`` and other files and takes nothing from ``<root>/.data/<dir>/``, and ``PyTorchFileReader`` refuses an
    archive with a record outside the first record's folder, so source under another root never runs."""
    from loopwarden.checks.models.allowlist import known_top_module

    roots = {
        n[: -len(_PACKAGE_MARK)]
        for n in names
        if n.endswith(_PACKAGE_MARK) and "/" not in n[: -len(_PACKAGE_MARK)]
    }
    sources: dict[str, tuple[str, str, bool]] = {}  # member name -> (root, module, is_package)
    for name in names:
        root, _, rel = name.partition("/")
        if root not in roots or not rel.endswith(".py") or rel.startswith(".data/"):
            continue
        is_package = rel == "__init__.py" or rel.endswith("/__init__.py")
        module = rel[: -len("__init__.py")].rstrip("/") if is_package else rel[: -len(".py")]
        sources[name] = (root, module.replace("/", "."), is_package)
    shipped = {r: frozenset(m for rt, m, _ in sources.values() if rt == r and m) for r in roots}
    extern = {r: _extern_modules(r, ctx, location, members) for r in roots}
    for name, (root, module, is_package) in sources.items():
        if not module:
            continue  # <root>/__init__.py: no module name reaches it
        where = member_location(location, name)
        blobs = members(name) if members is not None else []
        mocked = bool(blobs) and all(_is_mock(child) for child in blobs)
        if known_top_module(module) and not mocked:
            ctx.add_severity(
                rules.PickleUnknownClass,
                Severity.HIGH,
                f"torch.package archive carries its own source for '{module[:200]}': PackageImporter imports it "
                "in place of the installed module for every pickle that names it",
                where,
                module=module[:200],
            )
        for child in blobs:  # every member of that name: a reader may take any
            _package_source(child, module, is_package, shipped[root], extern[root], ctx, where)


MAR_MANIFEST: Final = "MAR-INF/MANIFEST.json"
"""The manifest every TorchServe model archive (``.mar``: a zip, a ``tgz`` or a plain folder) has."""
_SERVED_EXPECTED: Final = frozenset(
    {
        "reads files",
        "reads the environment",
        "reads a file and unpickles it",
        "reads a file and unpickles it (any pickle before torch 2.6)",
        "loads TorchScript from a file",
        "maps a file",
        "maps files",
    }
)
"""What a TorchServe handler does by design: it reads the model files of its own folder (``torch.load``,
``torch.jit.load``, a label map in JSON) and its settings; those files are scanned as files of their own."""


def check_torchserve_archive(
    names: list[str], ctx: ScanContext, location: Location, members: Callable[[str], list[Blob]]
) -> None:
    """The Python source a TorchServe model archive ships. Registering the archive (``torchserve --models
    m=model.mar``, the management API) extracts it, puts its folder on ``sys.path`` and imports the manifest's
    ``handler`` module and ``modelFile`` (``ts.model_loader.TsModelLoader.load``), whose imports reach the archive's
    other modules: every ``.py`` of an archive with a ``MAR-INF/MANIFEST.json`` is judged as torch.package sources
    are (see :func:`served_source`)."""
    clean = [n.replace("\\", "/").lstrip("/") for n in names]
    roots = {n[: -len(MAR_MANIFEST)] for n in clean if n == MAR_MANIFEST or n.endswith("/" + MAR_MANIFEST)}
    done: set[str] = set()
    for name, path in zip(names, clean, strict=True):
        if not path.endswith(".py") or name in done:
            continue
        done.add(name)
        # the model folder is the manifest's parent (a tgz archive may hold it under a folder of its own)
        root = max((r for r in roots if path.startswith(r)), key=len, default=None)
        if root is None or path[len(root) :].startswith("MAR-INF/"):
            continue
        for child in members(name):
            served_source(child, path[len(root) :], ctx, member_location(location, name))


def served_source(child: Blob, rel: str, ctx: ScanContext, where: Location) -> None:
    """Judge one source of a TorchServe archive (``rel``: its path in the archive) for what it does when imported
    or called. Reading its own model files is what a handler is for and is not reported; process spawn, code
    execution, network, file writes and the like are, with LW-MODEL-050's severities. A source too long or that does
    not parse here is unverified."""
    from loopwarden.checks.models.pysource import SourceTooComplex, judge_source

    is_package = rel == "__init__.py" or rel.endswith("/__init__.py")
    module = (rel[: -len("__init__.py")].rstrip("/") if is_package else rel[: -len(".py")]).replace("/", ".")
    what = f"TorchServe archive source '{rel[:200]}'"
    text = _source_text(child, what, where, ctx)
    if text is None:
        return
    try:
        hits = judge_source(
            text, module or "__init__", is_package=is_package, shipped=frozenset(), extern=frozenset()
        )
    except SourceTooComplex as exc:
        ctx.fail(where, f"{what} {exc}")
        return
    _report_source(
        [h for h in hits if h.capability not in _SERVED_EXPECTED],
        f"{what} reaches",
        "TorchServe imports the archive's handler and model file (and what they import) when the model is "
        "registered, and calls the handler on requests",
        module,
        where,
        ctx,
    )


_MOCK_IMPL: Final = (
    "from _mock import MockedObject\ndef __getattr__(attr: str):\n"
    "    return MockedObject(__name__ + '.' + attr, _suppress_err=True)\n"
)
"""The source ``PackageExporter.mock`` writes for a mocked module: every attribute is a ``MockedObject`` (from the
archive's ``_mock.py``, judged like any source), which raises when a pickle constructs or calls it."""
_EXTERN_MAX: Final = 1 << 20
"""Bytes of an ``extern_modules`` record read (a longer one is unverified)."""


_EXTERN_LINE: Final = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def extern_record(name: str, child: Blob) -> bool:
    """Whether ``child`` is a root's ``.data/extern_modules`` record as ``PackageExporter`` writes it: dotted module
    names, one a line, each ending with a newline (a lone newline when there are none). ``PackageImporter`` reads
    it as text (the modules it may take from the environment, as :func:`check_torch_package` reads it too); no
    loader unpickles it. Its first bytes are often
    opcodes (``collections`` is GLOBAL ``ollections``; ``io`` is INST): when it is exactly such a list, it is
    judged as text, for what a pickle loader would run from its first byte (a module no environment has, such as
    ``ollections``, stops it); any other content of that name is analysed as what it is."""
    root = name[: -len(_PACKAGE_MARK)] if name.endswith(_PACKAGE_MARK) else ""
    if not root or "/" in root or child.size is None or child.size > _EXTERN_MAX:
        return False
    with child.open() as f:
        data = f.read(_EXTERN_MAX + 1)
    if data == b"\n":
        return True
    lines = data.split(b"\n")
    return len(lines) > 1 and lines[-1] == b"" and all(_EXTERN_LINE.fullmatch(line) for line in lines[:-1])


def _is_mock(child: Blob) -> bool:
    with child.open() as f:
        data = f.read(len(_MOCK_IMPL) + 8)
    return data.replace(b"\r\n", b"\n").decode("utf-8", "replace") == _MOCK_IMPL


def _extern_modules(
    root: str, ctx: ScanContext, location: Location, members: Callable[[str], list[Blob]] | None
) -> frozenset[str]:
    """The modules ``<root>/.data/extern_modules`` lets ``PackageImporter`` take from the environment."""
    out: set[str] = set()
    for child in members(root + _PACKAGE_MARK) if members is not None else []:
        with child.open() as f:
            data = f.read(_EXTERN_MAX + 1)
        if len(data) > _EXTERN_MAX:
            ctx.fail(
                member_location(location, root + _PACKAGE_MARK), f"longer than the {_EXTERN_MAX}-byte bound"
            )
        out.update(line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip())
    return frozenset(out)


def _package_source(
    child: Blob,
    module: str,
    is_package: bool,
    shipped: frozenset[str],
    extern: frozenset[str],
    ctx: ScanContext,
    where: Location,
) -> None:
    """Judge one shipped module's source (parsed with ``ast``, never run; see :mod:`pysource`): what it does at
    import and in the functions the loader or the model calls, resolved through its imports and aliases.
    PackageImporter runs module-level code when the module is imported and the rest when it is called: either way,
    on the machine that loads the file. A source too long or too deeply nested to parse, or that does not parse
    here (a newer Python may run it), is unverified, never clean."""
    from loopwarden.checks.models.pysource import SourceTooComplex, judge_source

    what = f"shipped source of '{module[:200]}'"
    text = _source_text(child, what, where, ctx)
    if text is None:
        return
    try:
        hits = judge_source(text, module, is_package=is_package, shipped=shipped, extern=extern)
    except SourceTooComplex as exc:
        ctx.fail(where, f"{what} {exc}")
        return
    _report_source(
        hits,
        f"torch.package archive ships source for '{module[:200]}' that reaches",
        "PackageImporter runs it when a pickle of the archive (or a module it imports) names the module",
        module,
        where,
        ctx,
    )


def _source_text(child: Any, what: str, where: Location, ctx: ScanContext) -> str | None:
    """The Python source in ``child`` with its newlines as the compiler reads them, or None (the target then
    unverified) when it is longer than the code check parses."""
    from loopwarden.checks.models.pysource import MAX_SOURCE_CHARS

    cap = MAX_SOURCE_CHARS * 4  # UTF-8 bytes of the longest source parsed
    with child.open() as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        ctx.fail(where, f"{what} is longer than the {MAX_SOURCE_CHARS} characters the code check parses")
        return None
    return str(data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n"))


def _report_source(
    hits: list[Any], what: str, why: str, module: str, where: Location, ctx: ScanContext
) -> None:
    """One LW-MODEL-050 finding for the capabilities ``hits`` found in shipped source, at the highest severity,
    naming the worst few."""
    if not hits:
        return
    severity = max(h.severity for h in hits)
    shown = [h for h in hits if h.severity == severity][:5] + [h for h in hits if h.severity < severity][:3]
    more = f" and {len(hits) - len(shown)} more" if len(hits) > len(shown) else ""
    ctx.add_severity(
        rules.PackageCode,
        severity,
        f"{what} {'; '.join(h.describe() for h in shown)}{more}: {why}",
        where,
        module=module[:200],
        calls=[h.what for h in hits[:20]],
        capabilities=sorted({h.capability for h in hits}),
    )


_EXPORT_NAMESPACES: Final = _TORCH_NAMESPACES | frozenset({"higher_order", "prims", "_c10d_functional"})
"""Operator namespaces of torch itself that ``torch.export`` graphs name (``higher_order`` for cond, map, while
loops and wrappers)."""
_MAX_GRAPH_NODES: Final = 1_000_000


def check_export_graph(model: object, ctx: ScanContext, location: Location) -> None:
    """The operators a ``torch.export`` (PT2) model's graph calls (``models/<m>.json``). ``torch.export.load``
    resolves each node's ``target`` by name (``torch.ops.<ns>.<op>.<overload>``, ``#<ns>:<op>`` for extension
    operators) and the program runs them when it is called: ``torch.ops.aten.from_file.default`` reads any file
    into a tensor, ``aten.save`` writes one. Node targets (objects with ``target``, ``inputs`` and ``outputs``, in
    the main graph and in every subgraph) are judged as TorchScript's operators are: file operators HIGH, other
    namespaces than torch's own MEDIUM (they need a native library)."""
    stack: list[object] = [model]
    seen = 0
    while stack:
        obj = stack.pop()
        seen += 1
        if seen > _MAX_GRAPH_NODES:
            ctx.fail(location, "torch.export graph too large to analyse")
            return
        if isinstance(obj, list):
            stack.extend(obj)
            continue
        if not isinstance(obj, dict):
            continue
        stack.extend(obj.values())
        target = obj.get("target")
        if isinstance(target, str) and "inputs" in obj and "outputs" in obj:
            _judge_export_target(target, ctx, location)
        expr = obj.get("expr_str")
        if isinstance(expr, str) and (problem := _sym_expr_problem(expr)) is not None:
            ctx.add_severity(
                rules.TorchScriptCode,
                Severity.CRITICAL,
                f"torch.export symbolic expression is Python that torch.export.load evaluates (sympy.sympify) "
                f"and {problem}: '{expr[:200]}'",
                location,
                expr=expr[:200],
            )


def _judge_export_target(target: str, ctx: ScanContext, location: Location) -> None:
    if target.startswith("#"):
        ns, _, op = target[1:].partition(":")
        parts = [ns, op]
    elif target.startswith("torch.ops."):
        parts = target.split(".")[2:]
    elif target.startswith(("_operator.", "math.")):
        return  # Python's own arithmetic on symbolic sizes
    else:
        parts = target.split(".")[1:] if target.startswith("torch.") else target.split(".")
        if any(p in _FILE_BUILTIN_NAMES or _FILE_OP_NAME.search(p) for p in parts):
            ctx.add(
                rules.TorchScriptCode,
                f"torch.export graph calls '{target[:200]}', which reads or writes files",
                location,
                target=target[:200],
            )
        return
    if len(parts) < 2:
        ctx.add(rules.TorchScriptCode, f"torch.export graph names the operator '{target[:200]}'", location)
        return
    _judge_operator(
        parts[0],
        parts[1],
        ctx,
        location,
        rules.TorchScriptCode.severity,
        _EXPORT_NAMESPACES,
        "torch.export graph calls operator ",
    )


_GUARD_CALLS: Final = frozenset(
    {
        "abs", "max", "min", "round", "float", "int", "pow",
        "IsNonOverlappingAndDenseIndicator", "cast_symbool_to_symint_guardless",
    }
)  # fmt: skip
"""Functions the guard printer (``torch.utils._sympy.printers.PythonPrinter``) writes by bare name, and the two
helpers torch puts in the guards' namespace."""
_GUARD_TORCH: Final = frozenset(
    {"sym_float", "_sym_sqrt", "sym_max", "sym_min", "sym_not", "sym_int", "sym_ite"}
)
_GUARD_METHODS: Final = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
_GUARD_NAMES: Final = frozenset({"L", "inf"})
_GUARD_KEY: Final = re.compile(r"[^'\"\\\[\]\n\r]*\Z")
"""Strings a guard may hold (input names and dict keys): no quote, backslash or bracket, so torch's textual
replacement of ``L[<key path>]`` with ``args[i]`` cannot move a string boundary."""
_GUARD_NODES: Final = (
    "Expression", "Compare", "BoolOp", "BinOp", "UnaryOp", "IfExp", "Constant", "Subscript", "Slice", "Tuple",
    "Load", "And", "Or", "Not", "USub", "UAdd", "Invert", "Add", "Sub", "Mult", "Div", "FloorDiv", "Mod", "Pow",
    "BitAnd", "BitOr", "BitXor", "LShift", "RShift", "Eq", "NotEq", "Lt", "LtE", "Gt", "GtE", "keyword",
)  # fmt: skip
_MAX_GUARDS: Final = 100_000
_MAX_GUARD_TEXT: Final = 1 << 16


def _guard_problem(text: str) -> str | None:
    """Why a guard is not an expression torch's guard printer writes (None when it is one): comparisons and
    arithmetic over the inputs' sizes (``L['x'].size()[0] > 4``), ``math`` functions and the printer's few
    builtins. ``ExportedProgram.module()`` pastes each guard into Python source it ``exec``s and calls on every
    call of the module, so anything else in a guard is code the file runs."""
    import ast

    if len(text) > _MAX_GUARD_TEXT:
        return "it is too long to judge"
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "it is no Python expression"
    for node in ast.walk(tree):
        kind = type(node).__name__
        if kind in _GUARD_NODES:
            if isinstance(node, ast.Constant) and (
                isinstance(node.value, bytes)
                or (isinstance(node.value, str) and not _GUARD_KEY.match(node.value))
            ):
                return f"it holds the string {node.value!r:.80}"
            continue
        if isinstance(node, ast.Name):
            if node.id in _GUARD_NAMES or node.id in _GUARD_CALLS or node.id in ("math", "torch"):
                continue
            return f"it names '{node.id[:80]}'"
        if isinstance(node, ast.Attribute):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if node.attr.startswith("__"):
                return f"it reads the attribute '{node.attr[:80]}'"
            if base == "torch" and node.attr not in _GUARD_TORCH:
                return f"it reaches 'torch.{node.attr[:80]}'"
            continue
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _GUARD_CALLS:
                continue
            if isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else None
                if owner == "math" or (owner == "torch" and func.attr in _GUARD_TORCH):
                    continue
                if owner not in ("math", "torch") and func.attr in _GUARD_METHODS:
                    continue
            return f"it calls '{ast.unparse(func)[:80]}'"
        return f"it uses Python's {kind}"
    # names are only allowed where they are used as above: math and torch only before an attribute
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            if (
                isinstance(child, ast.Name)
                and child.id in ("math", "torch")
                and not (isinstance(node, ast.Attribute) and node.value is child)
            ):
                return f"it uses the module '{child.id}' as a value"
            if (
                isinstance(child, ast.Name)
                and child.id in _GUARD_CALLS
                and not (isinstance(node, ast.Call) and node.func is child)
            ):
                return f"it uses '{child.id}' as a value"
    return None


def check_export_guards(model: object, ctx: ScanContext, location: Location) -> None:
    """The ``guards_code`` of a ``torch.export`` program (``models/<m>.json``, the legacy
    ``serialized_exported_program.json``): ``ExportedProgram.module()`` pastes each string into the body of a
    function it builds with ``exec`` (``torch.export._unlift._convert_guards_code_to_fn``) and the module calls
    that function first on every call, so a guard is Python that runs when the loaded program is used (confirmed
    with torch 2.13.0: ``torch.export.load(f).module()(x)`` ran ``__import__('os').system(...)``). torch writes
    comparisons over input sizes; any other guard is reported."""
    if not isinstance(model, dict):
        return
    _check_string_inputs(model, ctx, location)
    guards = model.get("guards_code")
    if not isinstance(guards, list):
        return
    if len(guards) > _MAX_GUARDS:
        ctx.fail(location, f"torch.export program has more than {_MAX_GUARDS} guards")
        return
    for i, guard in enumerate(guards):
        if not isinstance(guard, str):
            continue  # torch's deserializer refuses it
        problem = _guard_problem(guard)
        if problem is not None:
            ctx.add_severity(
                rules.TorchScriptCode,
                Severity.CRITICAL,
                f"torch.export guard {i} is Python that ExportedProgram.module() executes on every call and "
                f"{problem}: '{guard[:200]}'",
                location,
                guard=guard[:200],
            )


_SYM_CALLS: Final = frozenset(
    {
        "Symbol", "Dummy", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Mod", "Max", "Min", "Abs",
        "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality", "Unequality", "StrictLessThan", "StrictGreaterThan",
        "LessThan", "GreaterThan", "And", "Or", "Not", "Xor", "ITE", "Piecewise", "ExprCondPair", "floor",
        "ceiling", "sqrt", "exp", "log", "sign",
        # torch.utils._sympy.functions, as the deserializer names them
        "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
        "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
        "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat",
        "Identity",
    }
)  # fmt: skip
"""What ``sympy.srepr`` writes for torch's size expressions: sympy's classes and torch's sympy functions. Many other
sympy names sympify a string argument again (``S``, ``N``, ``Poly``): never admitted."""
_SYM_OPAQUE: Final = re.compile(r"(?:OpaqueUnaryFn|BitwiseFn)_[a-z_]+\Z")
_SYM_NAMES: Final = frozenset({"oo", "zoo", "nan", "true", "false", "pi", "E", "S"})
_SYM_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SYM_STRING_ARG: Final = {
    "Symbol": _SYM_NAME,
    "Dummy": _SYM_NAME,
    "Float": re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\Z|[-+]?(?:inf|nan)\Z"),
}
"""The strings srepr writes: a symbol's name, a Float's digits (each the first argument)."""
_SYM_NODES: Final = frozenset({"Expression", "Constant", "UnaryOp", "USub", "UAdd", "Load", "keyword"})


def _sym_expr_problem(text: str) -> str | None:
    """Why an ``expr_str`` is not what torch.export writes (None when it is): ``sympy.srepr`` of a size expression,
    calls of sympy's classes and torch's sympy functions by name with numbers, strings and ``True``/``False``
    keywords (``Mul(Integer(2), Symbol('s77', positive=True, integer=True))``). ``torch.export.load`` hands each
    one to ``sympy.sympify``, which ``eval``s it with Python's builtins in scope (confirmed with torch 2.13.0:
    ``__import__('os').system(...)`` ran while the archive loaded)."""
    import ast

    if len(text) > _MAX_GUARD_TEXT:
        return "it is too long to judge"
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "it is no Python expression sympy would read as torch writes it"
    allowed_strings: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                return f"it calls '{ast.unparse(node.func)[:80]}'"
            name = node.func.id
            if name not in _SYM_CALLS and not _SYM_OPAQUE.match(name):
                return f"it calls '{name[:80]}'"
            if any(isinstance(a, ast.Starred) for a in node.args) or any(
                k.arg is None for k in node.keywords
            ):
                return "it unpacks arguments"
            first = node.args[0] if node.args else None
            pattern = _SYM_STRING_ARG.get(name)
            if (
                pattern is not None
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and pattern.match(first.value)
            ):
                allowed_strings.add(id(first))
            continue
        if isinstance(node, ast.Name):
            if node.id in _SYM_CALLS or node.id in _SYM_NAMES or _SYM_OPAQUE.match(node.id):
                continue
            return f"it names '{node.id[:80]}'"
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str | bytes)
            and id(node) not in allowed_strings
        ):
            return f"it holds the string {node.value!r:.80}"
        if type(node).__name__ not in _SYM_NODES:
            return f"it uses Python's {type(node).__name__}"
    return None


_QUOTE_BREAKERS: Final = re.compile(r"['\\\n\r]")


def _check_string_inputs(model: dict[str, Any], ctx: ScanContext, location: Location) -> None:
    """The program's string inputs (``graph_module.graph.inputs[].as_string``, a ``str`` argument specialised at
    export): ``ExportedProgram.module()`` adds the guard ``L['s'] == '<value>'`` for each, pasting the value between
    single quotes into the code it ``exec``s, so a quote in it ends the string and the rest runs on every call
    (confirmed with torch 2.13.0: ``' == 0 or __import__('os').system(...) == 0 or '``). A quote, backslash or line
    break is reported."""
    module = model.get("graph_module")
    graph = module.get("graph") if isinstance(module, dict) else None
    inputs = graph.get("inputs") if isinstance(graph, dict) else None
    if not isinstance(inputs, list):
        return
    for i, arg in enumerate(inputs[:_MAX_GUARDS]):
        value = arg.get("as_string") if isinstance(arg, dict) else None
        if isinstance(value, str) and _QUOTE_BREAKERS.search(value):
            ctx.add_severity(
                rules.TorchScriptCode,
                Severity.CRITICAL,
                f"torch.export string input {i} holds a quote, backslash or line break: ExportedProgram.module() "
                f"pastes it between quotes into the guard code it executes: '{value[:200]}'",
                location,
                value=value[:200],
            )
