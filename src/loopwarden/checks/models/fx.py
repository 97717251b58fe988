"""The Python code a ``torch.fx`` GraphModule pickle carries.

``torch.save(torch.fx.symbolic_trace(model))`` writes ``reduce_graph_module(body, import_block)``: on load torch
``exec``s ``import_block + body["_code"]`` (two strings the file chooses) to define ``forward``, then re-traces it,
calling every function it names with proxies. loopwarden parses the text with :mod:`ast` (never runs it) and accepts
only the shape torch.fx generates: import lines, ``NoneType = type(None)``, and one ``def forward(self, ...)`` made
of assignments, expression statements, ``del`` and ``return`` whose calls are torch's tensor functions (no file,
code-loading, compilation or process namespaces), ``math``/``operator``/pytree helpers, a few value builtins,
``getattr`` with a constant name, submodules and methods of the traced values, and names imported from modules the
allow-list admits by name. Anything else is judged as before: a known code-execution callable.
"""

from __future__ import annotations

import ast
import re
import sys
from typing import Any, Final

__all__ = ["judge_fx_code"]

_MAX_CODE: Final = 1 << 16
"""Characters of import block and code parsed (``ast`` costs some 350 bytes per character)."""
_TORCH_DENIED: Final = frozenset(
    {
        "hub", "jit", "package", "cpp_extension", "compile", "_dynamo", "_inductor", "onnx", "library", "classes",
        "export", "distributed", "multiprocessing", "testing", "load_library", "_load_library", "serialization",
        "backends", "utils", "_jit_internal", "set_default_device", "__main__", "profiler", "cuda", "mps", "xpu",
        "autograd",
    }
)  # fmt: skip
"""Parts of a ``torch`` name that fx code never needs and that load code, touch files or processes, or compile."""
_FILE_WORD: Final = re.compile(
    r"(?:^|_)(?:read|write|save|load|open|file|system|popen|spawn|exec\w*|eval|import|compile|dump|dumps|export|"
    r"snapshot|profile|jit|script|src|source|code|unlink|remove|rename|chmod|kill|putenv)(?:_|$)|tofile|fromfile|"
    r"[Cc]ompil|(?:^|_)(?:mmap|shm|ipc)(?:_|$)|share_",
)
"""Words of a name that read or write files, load or compile code, or dump process state (``torch.load``,
``ndarray.tofile``, ``torch._C.CompilationUnit``, ``torch.fx.graph_module._forward_from_src``)."""
_METHOD_WORD: Final = re.compile(
    r"tofile|fromfile|(?:^|_)(?:dump|dumps|save|load|open|write|read|system|popen|spawn|exec\w*|eval|compile|"
    r"import|export|snapshot|unlink|remove|rename|kill|putenv)(?:_|$)",
)
"""Words of a method or attribute of a value (``x.numpy().tofile(path)``, ``ndarray.dump``) that touch files,
processes or code: torch runs calls on real values (constants, ``torch.zeros(3)``, the body's objects) while it
re-traces forward."""
_RUNS_OR_READS: Final = re.compile(
    r"from_file|share_filename|share_fd|register_\w*hook|^apply$|^set_$|setattr|delattr|load_state_dict"
)
"""Method names refused wherever they appear: module hooks and ``apply`` call a function, ``from_file`` maps a file,
``set_`` swaps a tensor's storage, ``load_state_dict`` copies into the real parameters."""
_PY_MODULES: Final = frozenset({*sys.stdlib_module_names, "stdlib_re", "builtins", "typing_extensions"}) - {
    "random",
    "signal",
    "select",
    "chunk",
    "copy",
    "trace",
}
"""Names of Python's own modules: torch, typing and the pytree modules import some (``torch.os``, ``typing.sys``,
``pytree.importlib``, ``typing.stdlib_re``), and fx code never reaches one through them. Left out: names that are
also torch's own functions or submodules (``torch.select``, ``torch.chunk``, ``torch.random``, ``torch.signal`` ...)."""
_TORCH_FX: Final = frozenset({("_symbolic_trace",), ("_symbolic_trace", "_assert_is_none"), ("_pytree",)})
"""What fx code names under ``torch.fx`` (its own helpers); the rest of torch.fx builds and execs code."""
_MODULES: Final = frozenset(
    {"torch", "math", "operator", "typing", "torch.fx._pytree", "torch.utils._pytree"}
)
"""Modules the import block may import whole (as torch.fx writes them)."""
_OPERATOR_DENIED: Final = frozenset({"attrgetter", "methodcaller"})
_TYPING_DENIED: Final = frozenset(
    {
        "get_type_hints",
        "ForwardRef",
        "NamedTuple",
        "TypedDict",
        "NewType",
        "TypeVar",
        "ParamSpec",
        "TypeAliasType",
    }
)
"""typing names that evaluate strings as code (type hints, forward references) or create classes."""
_BUILTINS: Final = frozenset(
    {
        "getattr", "type", "len", "int", "float", "bool", "tuple", "list", "dict", "slice", "range", "isinstance",
        "max", "min", "abs", "sum", "round", "divmod", "pow", "all", "any", "zip", "enumerate", "NotImplemented",
        "Ellipsis", "None", "True", "False",
    }
)  # fmt: skip
_EXPRESSIONS: Final = (
    ast.Name, ast.Constant, ast.Attribute, ast.Call, ast.keyword, ast.Subscript, ast.Slice, ast.Tuple, ast.List,
    ast.Dict, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.IfExp, ast.Starred, ast.expr_context,
    ast.operator, ast.unaryop, ast.cmpop, ast.boolop,
)  # fmt: skip
_CONSTANTS: Final = frozenset(
    {
        "inf", "nan", "pi", "e", "tau", "float32", "float", "float64", "double", "float16", "half", "bfloat16",
        "complex32", "complex64", "complex128", "cfloat", "cdouble", "uint8", "uint16", "uint32", "uint64", "int8",
        "int16", "int32", "int64", "short", "int", "long", "bool", "float8_e4m3fn", "float8_e5m2",
        "float8_e4m3fnuz", "float8_e5m2fnuz", "quint8", "qint8", "qint32", "quint4x2", "strided", "sparse_coo",
        "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "_mkldnn", "contiguous_format", "channels_last",
        "channels_last_3d", "preserve_format", "per_tensor_affine", "per_channel_affine",
        "per_channel_affine_float_qparams", "per_tensor_symmetric", "per_channel_symmetric", "Ellipsis",
    }
)  # fmt: skip
"""Last names of the constants fx code passes as arguments (dtypes, layouts, memory formats, qschemes, math's)."""
_STATEMENTS: Final = (ast.Assign, ast.AnnAssign, ast.Expr, ast.Return, ast.Delete, ast.Pass)
_GLOBAL_STATE: Final = re.compile(
    r"^(?:set_|use_deterministic|manual_seed$|seed$|fork$|wait$|prepare_multiprocessing|init_num_threads$|"
    r"parse_ir$|classproperty$|autocast_(?:in|de)crement_nesting$|clear_autocast_cache$)"
)
"""torch functions that change what every later computation of the process does (``torch.set_default_dtype``,
``torch.manual_seed``, ``torch.use_deterministic_algorithms``, ``torch.set_num_threads``) or start work of their own
(``torch.fork``): symbolic_trace runs them while tracing and never writes them into the code."""
_C_OPERATORS: Final = frozenset(
    {"_nn", "_fft", "_linalg", "_special", "_nested", "_sparse", "_VariableFunctions"}
)
"""The namespaces of ``torch._C`` that hold only aten operator bindings (``torch._C._nn.linear`` is how fx names
``F.linear``); every other private part of torch is refused (see ``_Judge.torch_name``)."""
_TORCH_PRIVATE: Final = frozenset({"_assert"})
"""Private Python functions of torch that fx code names: ``torch._assert`` (symbolic_trace keeps it as a call)."""
_OPS_CLASS_ATTRIBUTES: Final = frozenset(
    {"_dir", "_ops", "_is_protocol", "_schemas", "_lazy_init", "_handle", "_namespace", "_opname", "_get_dispatch",
     "_uncache_dispatch", "_can_decompose", "_op", "_overload_names", "_qualified_op_name",
     "_has_torchbind_op_overload", "_nonfunctional_ops", "_op_dk", "_py_kernels", "_dispatch_cache"}
)  # fmt: skip
"""Attributes of torch's operator-lookup objects (``torch.ops``, a namespace, an operator packet, an overload): a
private name under ``torch.ops`` is admitted as an operator or namespace name only when it is not one of these."""
_MAKE_FX_CONSTRUCTORS: Final = frozenset({"device", "dtype", "Size", "layout", "memory_format"})
"""torch's value types make_fx's code constructs (``device(type='cpu')``)."""
_PRIVATE_DENIED: Final = re.compile(
    r"(?:^|_)(?:from_blob|weak_?ref|weak_ptr|cdata|data_?ptr|data_pointer|addr|ipc|decref|incref|make_subclass|"
    r"make_wrapper_subclass|shared|fd|filename|unsafe(?!_view$)|from_buffer|view_from|apply|named_members|new_with|"
    r"new_using|new_shared|set_from|replicate_for_data_parallel|python_dispatch|view_func|use_count|reduce_ex)"
    r"(?:_|$)"
)
"""Private names of values that reach raw memory, swap storages or run a function they are given
(``UntypedStorage._set_cdata``, ``_free_weak_ref``, ``Tensor._make_subclass``, ``Module._apply``): refused even as an
attribute of ``self``'s entries, where other private names are submodules and tensors fx made (``self._orig_mod``,
``self._tensor_constant0``). ``_unsafe_view`` is admitted: aten checks its size against the tensor's like
``view``'s (it is unsafe only for autograd, which does not track it as a view), and make_fx writes it for
``reshape``."""


def _dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _torch_private(parts: list[str]) -> str | None:
    """Why a torch name with a private part may not be named by fx code, or None. Admitted: aten's private
    operators (``torch._unique2``, ``torch._C._nn.gelu``, ``torch._VF.lstm``, ``torch.ops.aten._to_copy.default``),
    ``torch._assert`` and fx's own helpers (judged by the caller). Every other private name of torch is internal
    machinery: raw memory (``torch._from_blob(address, ...)``, ``torch.UntypedStorage._free_weak_ref``,
    ``torch._C._construct_storage_from_data_pointer``), native libraries (``torch._preload_cuda_lib``), the
    interpreter's state, code builders; none is something symbolic_trace writes."""
    from loopwarden.checks.models.torch_ops import PRIVATE_FUNCTIONS

    private = [i for i, p in enumerate(parts) if p.startswith("_") and i > 0]
    if not private:
        return None
    name = ".".join(parts)[:200]
    if parts[1] == "fx":
        return None  # torch.fx names: only its own helpers are admitted, by the caller
    if parts[1] == "_C":
        if len(parts) == 4 and parts[2] in _C_OPERATORS and not _PRIVATE_DENIED.search(parts[3]):
            return None
        return f"torch internal '{name}'"
    if parts[1] == "_VF" and len(parts) == 3 and not _PRIVATE_DENIED.search(parts[2]):
        return None
    if len(parts) == 2 and (parts[1] in PRIVATE_FUNCTIONS or parts[1] in _TORCH_PRIVATE):
        return None
    if parts[1] == "ops" and all(
        i >= 2 and parts[i] not in _OPS_CLASS_ATTRIBUTES and not _PRIVATE_DENIED.search(parts[i])
        for i in private
    ):
        return None  # torch.ops.<namespace>.<operator>.<overload>: names the dispatcher looks up
    return f"torch internal '{name}' (not an operator)"


def _chain(node: Any) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]


class _Judge:
    def __init__(self, allowed: Any, leaf_modules: bool = True) -> None:
        self.allowed = allowed  # (module, name) -> whether the allow-list admits the callable by its name
        self.leaf_modules = (
            leaf_modules  # False: the re-trace runs a called submodule's forward and its hooks
        )
        self.modules: dict[str, str] = {}  # alias -> module imported whole
        self.names: dict[str, tuple[str, str]] = {}  # name -> (module, name) imported from a module
        self.local: set[str] = {"self"}
        self.globals: set[str] = set()
        self.foreign: list[tuple[str, str, str]] = []  # (module, name, alias) imported from other modules
        self.wrapped: set[str] = set()  # aliases torch.fx.wrap makes leaves (never called while re-tracing)

    def torch_name(self, parts: list[str]) -> str | None:
        for part in parts:
            if _dunder(part) or part in _TORCH_DENIED or _FILE_WORD.search(part) or part in _PY_MODULES:
                return f"torch name '{'.'.join(parts)[:200]}'"
        if (why := _torch_private(parts)) is not None:
            return why
        if any(_GLOBAL_STATE.search(p) for p in parts[1:]):
            return f"torch name '{'.'.join(parts)[:200]}' (changes the process's global state)"
        from loopwarden.checks.models.torch import SPARSE_CONSTRUCTOR  # the re-trace runs them with constants

        if any(SPARSE_CONSTRUCTOR.search(p) for p in parts[1:]):
            return f"torch name '{'.'.join(parts)[:200]}' (builds a tensor torch does not check)"
        if parts[1:2] == ["fx"] and (tuple(parts[2:]) not in _TORCH_FX and tuple(parts[2:3]) != ("_pytree",)):
            return f"torch name '{'.'.join(parts)[:200]}' (torch.fx builds and runs code)"
        return None

    def module_member(self, module: str, parts: list[str]) -> str | None:
        """Why ``module.parts`` may not be named by fx code, or None."""
        if any(_dunder(p) for p in parts):
            return f"special attribute in '{module}.{'.'.join(parts)[:200]}'"
        if any(p in _PY_MODULES for p in parts):
            return f"Python module reached through '{module}.{'.'.join(parts)[:200]}'"
        if module == "torch" or (module.startswith("torch.") and module not in _MODULES):
            return self.torch_name([*module.split("."), *parts])
        if module == "operator" and parts and parts[0] in _OPERATOR_DENIED:
            return f"operator.{parts[0]}"
        if module == "typing" and parts and (parts[0] in _TYPING_DENIED or "eval" in parts[0].lower()):
            return f"typing.{parts[0][:100]}"
        if module in _MODULES:
            return None
        return f"module '{module[:200]}'"

    def imports(self, node: ast.Import | ast.ImportFrom) -> str | None:
        if isinstance(node, ast.Import):
            for a in node.names:
                module = a.name
                if module not in _MODULES and (
                    not module.startswith("torch.") or self.torch_name(module.split("."))
                ):
                    return f"import of '{module[:200]}'"
                self.modules[a.asname or module.split(".")[0]] = module if a.asname else module.split(".")[0]
            return None
        if node.level or not node.module:
            return "relative import"
        for a in node.names:
            if a.name == "*":
                return f"'from {node.module[:200]} import *'"
            if any(_dunder(p) for p in (*node.module.split("."), a.name, a.asname or "")):
                return f"import of the special name '{node.module[:200]}.{a.name[:100]}'"
            if node.module == "builtins":
                if a.name not in _BUILTINS or (a.asname or a.name) != a.name:
                    return f"import of builtins.{a.name[:100]}"
                continue  # from builtins import getattr as getattr: the builtin itself, judged as one
            if node.module in _MODULES or node.module.startswith("torch."):
                why = self.module_member(node.module, [a.name])
            elif node.module.split(".")[0] in _PY_MODULES and not self.allowed(node.module, a.name):
                why = f"'{node.module[:200]}.{a.name[:100]}', a Python module's name the allow-list does not admit"
            else:
                # a function torch.fx.wrap made a leaf (or any function fx called): judged by the allow-list as a
                # pickle's import and call of it would be, by the caller of judge_fx_code
                why = None
                self.foreign.append((node.module, a.name, a.asname or a.name))
            if why is not None:
                return f"import of {why}"
            self.names[a.asname or a.name] = (node.module, a.name)
        return None

    def value_name(self, node: Any) -> str | None:
        """Why a name or attribute chain read as a value or called may not appear, or None."""
        parts = _chain(node)
        if parts is None:
            return None  # rooted in a call, subscript or constant: its parts are judged on their own
        head, rest = parts[0], parts[1:]
        if any(_dunder(p) for p in parts):
            return f"special attribute '{'.'.join(parts)[:200]}'"
        if head in self.local:
            return None  # a traced value, a submodule, a parameter: calls on it are recorded, not run
        if head in self.modules:
            return self.module_member(self.modules[head], rest)
        if head in self.names:
            module, name = self.names[head]
            if module in _MODULES or module == "torch" or module.startswith("torch."):
                return self.module_member(module, [name, *rest])
            return f"attribute of '{module[:200]}.{name[:100]}'" if rest else None
        if head in self.globals or (head in _BUILTINS and not rest):
            return None
        return f"name '{'.'.join(parts)[:200]}'"

    def expression(self, tree: Any) -> str | None:
        """Why an expression may not appear in fx code, or None. A name that is not a traced value (a module, a
        function imported or a builtin) may only be called, or be a constant torch.fx writes as an argument
        (``torch.float32``, ``inf``): a module or function taken as a value could be called under another name or
        looked into later (``t = torch.ops; t.aten.from_file(...)``)."""
        funcs = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
        inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        for node in ast.walk(tree):
            if not isinstance(node, _EXPRESSIONS):
                return f"{type(node).__name__} expression"
            if isinstance(node, ast.Attribute) and _dunder(node.attr):
                return f"special attribute '{node.attr[:100]}'"
            if isinstance(node, ast.Attribute) and (why := self.method(node)):
                return why
            if not isinstance(node, ast.Name | ast.Attribute) or id(node) in inner:
                continue
            parts = _chain(node)
            if parts is None:
                continue  # an attribute of a call's result or a subscript: its parts are judged on their own
            why = self.value_name(node)
            if why is not None:
                return why
            if parts[0] in self.local or parts[0] in self.globals or id(node) in funcs:
                continue
            if parts[-1] not in _CONSTANTS:
                return f"'{'.'.join(parts)[:200]}' taken as a value"
        for node in ast.walk(tree):
            if not self.leaf_modules and isinstance(node, ast.Call) and not self.operator_call(node.func):
                # make_fx writes only calls of operators by name (torch.ops.aten.addmm.default); a call of a value,
                # or of a function given one (operator.call, max(key=...), torch.cond), may run a submodule, whose
                # forward and hooks this tracer runs on the file's objects where torch.fx's Tracer records the call
                return "a call other than of an aten operator under make_fx's PythonKeyTracer, which runs submodules"
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id not in self.local
            ):
                if node.func.id == "getattr":
                    name = node.args[1] if len(node.args) >= 2 else None
                    if not (isinstance(name, ast.Constant) and isinstance(name.value, str)) or _dunder(
                        name.value
                    ):
                        return "getattr with a computed or special name"
                    if _RUNS_OR_READS.search(name.value):
                        return f"getattr of '{name.value[:100]}', which runs a function or reads a file"
                    target = _chain(node.args[0]) if node.args else None
                    if (why := self.private_attribute(name.value, target)) is not None:
                        return f"getattr: {why}"
                    if not (isinstance(node.args[0], ast.Name) and node.args[0].id == "self") and (
                        _METHOD_WORD.search(name.value)
                    ):
                        return f"getattr of '{name.value[:100]}', which touches files, processes or code"
                elif node.func.id == "type" and len(node.args) != 1:
                    return "type() with other than one argument (creates a class)"
        return None

    def operator_call(self, func: Any) -> bool:
        """Whether ``func`` is what make_fx calls: an operator by name (``torch.ops.aten.addmm.default``; not the
        higher-order ones, which call the functions they are given), ``device``, ``dtype`` or a ``torch.sym_*``
        helper. None of these calls a Python callable it is handed."""
        parts = _chain(func)
        if parts is None or parts[0] in self.local:
            return False
        head, rest = parts[0], parts[1:]
        if head in self.modules:
            full = [*self.modules[head].split("."), *rest]
        elif head in self.names:
            module, name = self.names[head]
            full = [*module.split("."), name, *rest]
        else:
            return False
        if full[0] != "torch":
            return False
        if full[1:2] == ["ops"]:
            return len(full) >= 4 and full[2] != "higher_order"
        return len(full) == 2 and (full[1] in _MAKE_FX_CONSTRUCTORS or full[1].startswith("sym_"))

    def method(self, node: ast.Attribute) -> str | None:
        """Why an attribute of a value (not of a module: those are judged by name) may not be read: a method
        that touches files, processes or code. ``self.<name>`` is an entry of the pickled body (a submodule, a
        parameter), judged as a pickle object; what is read from it is judged here. Methods that run a function
        or read a file under other names (``register_forward_hook``, ``apply``, ``from_file``) are refused on
        ``self`` too."""
        if _RUNS_OR_READS.search(node.attr):
            return f"method '{node.attr[:100]}', which runs a function or reads a file"
        parts = _chain(node)
        if (why := self.private_attribute(node.attr, parts)) is not None:
            return why
        if parts is not None and (parts[0] not in self.local or (parts[0] == "self" and len(parts) == 2)):
            return None
        if _METHOD_WORD.search(node.attr):
            return (
                f"method or attribute '{node.attr[:100]}' of a value, which touches files, processes or code"
            )
        return None

    def private_attribute(self, attr: str, parts: list[str] | None) -> str | None:
        """Why a private attribute of a value (``parts``: its attribute chain, None when rooted in a call or a
        subscript) may not be read, or None. Private names under ``self`` are the body's entries that fx made
        (``self._tensor_constant0``, a submodule ``self.enc._blocks``), admitted unless the name reaches memory or
        runs a function (``_PRIVATE_DENIED``); of any other value, only aten's private tensor operators
        (``x._values()``): the re-trace runs calls on real tensors (a buffer, ``torch.zeros(1)``), and
        ``t.untyped_storage()._set_cdata(address)`` would point a storage anywhere. Names rooted in a module are
        judged by name (``value_name``)."""
        from loopwarden.checks.models.torch_ops import PRIVATE_TENSOR_METHODS

        if not attr.startswith("_") or _dunder(attr):
            return None
        if parts is not None and parts[0] not in self.local:
            return None
        if parts is not None and parts[0] == "self":
            if _PRIVATE_DENIED.search(attr):
                return f"private attribute '{'.'.join(parts)[:200]}', which reaches memory or runs a function"
            return None
        if attr in PRIVATE_TENSOR_METHODS:
            return None
        return f"private attribute '{attr[:100]}' of a value (not a tensor operator)"

    def annotation(self, tree: Any) -> str | None:
        """Why an annotation (evaluated when forward is defined) may not appear: only names, attributes,
        subscripts (``typing_Union[torch.Tensor,NoneType]``) and constants, each name one fx code may use."""
        for node in ast.walk(tree):
            if not isinstance(
                node,
                ast.Name | ast.Attribute | ast.Subscript | ast.Tuple | ast.List | ast.Constant | ast.BinOp,
            ) and not isinstance(node, ast.expr_context | ast.BitOr):
                return f"{type(node).__name__} in an annotation"
            if isinstance(node, ast.Name | ast.Attribute) and (why := self.value_name(node)):
                return why
        return None

    def function(self, fn: ast.FunctionDef) -> str | None:
        if fn.name != "forward" or fn.decorator_list:
            return "a function other than an undecorated forward"
        args = fn.args
        for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if arg is not None:
                self.local.add(arg.arg)
                if arg.annotation is not None and (why := self.annotation(arg.annotation)):
                    return why
        for default in (*args.defaults, *args.kw_defaults):
            if default is not None and any(isinstance(n, ast.Call) for n in ast.walk(default)):
                return "a call in a default argument (runs when forward is defined)"
            if default is not None and (why := self.expression(default)):
                return why
        if fn.returns is not None and (why := self.annotation(fn.returns)):
            return why
        for stmt in fn.body:  # every name the body assigns is a traced value
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                    self.local.add(node.id)
        for stmt in fn.body:
            if not isinstance(stmt, _STATEMENTS):
                return f"{type(stmt).__name__} statement in forward"
            if isinstance(stmt, ast.Assign | ast.AnnAssign | ast.Delete):
                targets = stmt.targets if isinstance(stmt, ast.Assign | ast.Delete) else [stmt.target]
                for target in targets:
                    if not all(
                        isinstance(n, ast.Name | ast.Tuple | ast.List | ast.expr_context)
                        for n in ast.walk(target)
                    ):
                        return "assignment to something other than local names"
            value = getattr(stmt, "value", None)
            if value is not None and (why := self.expression(value)):
                return why
            if isinstance(stmt, ast.AnnAssign) and (why := self.annotation(stmt.annotation)):
                return why
        return None

    def wrap(self, node: Any) -> str | None:
        """The name in ``torch.fx._symbolic_trace.wrap("<name>")`` (how fx writes a wrapped function's
        registration, after the imports) when the name is one the import block imported, else None."""
        if not (
            isinstance(node, ast.Call)
            and not node.keywords
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and node.args[0].value in self.names
        ):
            return None
        parts = _chain(node.func)
        if parts is None or len(parts) != 4 or self.modules.get(parts[0]) != "torch":
            return None
        return node.args[0].value if parts[1:] == ["fx", "_symbolic_trace", "wrap"] else None

    def module(self, tree: ast.Module) -> str | None:
        forward = 0
        for stmt in tree.body:
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                why = self.imports(stmt)
            elif (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and ast.dump(stmt.value) == ast.dump(ast.parse("type(None)", mode="eval").body)
            ):
                self.globals.add(stmt.targets[0].id)  # NoneType = type(None)
                why = None
            elif isinstance(stmt, ast.FunctionDef):
                forward += 1
                why = self.function(stmt) if forward == 1 else "a second function"
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                why = None  # a docstring
            elif isinstance(stmt, ast.Expr) and (wrapped := self.wrap(stmt.value)) is not None:
                self.wrapped.add(wrapped)  # torch.fx._symbolic_trace.wrap("name"): patched into a leaf
                why = None
            else:
                why = f"{type(stmt).__name__} statement at module level (runs when the code is executed)"
            if why is not None:
                return why
        return None if forward == 1 else "no forward function"


def judge_fx_code(
    import_block: str, code: str, allowed: Any, *, leaf_modules: bool = True
) -> tuple[str | None, list[tuple[str, str, bool]]]:
    """``(why, foreign)``: why is None when ``import_block + code`` (what ``reduce_graph_module`` executes) is code
    torch.fx writes and names only what it may, else the first construct that is not. ``foreign`` lists the
    ``(module, name, wrapped)`` names imported from modules other than torch's, math, operator and typing (the
    functions ``torch.fx.wrap`` makes leaves, or any function the code calls while torch re-traces it when not
    wrapped), which the caller judges with the allow-list as a pickle's import and call of them.
    ``allowed(module, name)``: whether the allow-list admits that callable by its name. ``leaf_modules``: whether
    the tracer torch re-traces with records a submodule's call (torch.fx's ``Tracer``) or runs its ``forward`` and
    hooks (``make_fx``'s ``PythonKeyTracer``, under which only calls of named functions are admitted)."""
    text = import_block + code
    if len(text) > _MAX_CODE:
        return f"code of {len(text)} characters, longer than the {_MAX_CODE} the fx check parses", []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return "code that does not parse as Python", []
    judge = _Judge(allowed, leaf_modules)
    why = judge.module(tree)
    return why, [(m, n, alias in judge.wrapped) for m, n, alias in judge.foreign]
