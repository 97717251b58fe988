"""Static analysis of pickle streams by symbolic execution (protocols 0-5).

The executor walks the opcode stream the way CPython's unpickler does (stack, metastack of marks, memo,
frames),
but every value is symbolic: constants are kept (bounded), callables are ``module.qualname`` references and
calls
produce opaque results that remember what was called. Every callable reached through GLOBAL, STACK_GLOBAL,
INST,
OBJ, NEWOBJ(_EX), REDUCE, BUILD or EXT is resolved to its real name, including names built from the memo,
dotted
attribute paths, and the run-time resolvers (``getattr``, ``__import__``/``importlib``,
``operator.attrgetter``/
``methodcaller``, ``functools.partial``, ``pydoc.locate``, ``pkgutil.resolve_name``), and judged by the
:class:`~loopwarden.checks.models.allowlist.AllowList`. Nested pickles handed to a loader (``pickle.loads``
of a
bytes constant, ``torch.load(io.BytesIO(...))`` ...) and joblib's in-stream object arrays are analysed
recursively. After an invalid opcode the stream is reported ``unverified`` and the rest of the bytes is
searched
for further pickles, which are analysed too.

Nothing is ever loaded or executed. Large payloads are skipped, never held: memory does not grow with file
size.
"""

from __future__ import annotations

import array
import binascii
import codecs
import contextlib
import functools
import gc
import io
import itertools
import math
import re
import struct
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Final, Literal, NamedTuple, TypeAlias

from loopwarden.checks.interface import Limits, ResourceLimitExceeded
from loopwarden.checks.models.allowlist import (
    LAMBDA_SCHEDULERS,
    NUMPY_FUNCTIONS,
    REBUILD_ONLY,
    RULE_DENIED,
    RULE_NOT_ALLOWED,
    RULE_UNKNOWN_CLASS,
    SCHEDULE_FUNCTIONS,
    SCHEDULE_LAMBDAS,
    SCIPY_BUNCH_SUBCLASSES,
    SCIPY_DIST_MODULES,
    SCIPY_TUPLE_BUNCHES,
    SYMPY_ASSUMPTIONS,
    SYMPY_SYMBOLS,
    AllowList,
    Classification,
    canonical_module,
    known_top_module,
    model_output_class,
    shared_result,
)
from loopwarden.checks.models.detect import TORCH_LEGACY_MAGIC
from loopwarden.domain import Finding, Location, Severity

__all__ = ["PickleResult", "analyze_pickle", "analyze_pickle_bytes", "fuzz_one"]

# Rule ids owned by the pickle analysis (documented in docs/rules.md#models-pickle).
RULE_DYNAMIC_CALL: Final = "LW-MODEL-008"
RULE_GLOBAL_TAMPERING: Final = "LW-MODEL-009"
RULE_EXT: Final = "LW-MODEL-010"
RULE_NESTED: Final = "LW-MODEL-011"
RULE_MALFORMED: Final = "LW-MODEL-012"
RULE_TRAILING: Final = "LW-MODEL-013"
RULE_DYNAMIC_GLOBAL: Final = "LW-MODEL-014"
RULE_DUNDER_STATE: Final = "LW-MODEL-016"
RULE_TENSOR: Final = "LW-MODEL-017"
RULE_DORMANT: Final = "LW-MODEL-019"
_DUNDER_STATE_KEYS: Final = frozenset(
    {
        "__setstate__",
        "__reduce__",
        "__reduce_ex__",
        "__getstate__",
        "__class__",
        "__dict__",
        "__getattr__",
        "__getattribute__",
        "__setattr__",
        "__call__",
        "__init__",
        "__new__",
        "__del__",
        "__set_name__",
        "__init_subclass__",
        "__class_getitem__",
        "__getitem__",
        "__iter__",
        # protocols numpy, torch and pyarrow look up on the instance (not the type) of an argument: a callable
        # there is called by any allowed function the object is handed to (np.percentile, torch.sigmoid,
        # pyarrow.chunked_array ...), and __array_interface__/__array_struct__ make numpy view the memory at an
        # address the file chose
        "__array__",
        "__array_interface__",
        "__array_struct__",
        "__array_ufunc__",
        "__array_function__",
        "__array_wrap__",
        "__array_finalize__",
        "__array_prepare__",
        "__cuda_array_interface__",
        "__torch_function__",
        "__torch_dispatch__",
        "__dlpack__",
        "__dlpack_device__",
        "__arrow_array__",
        "__arrow_c_array__",
        "__arrow_c_stream__",
        "__arrow_c_schema__",
        "__arrow_c_device_array__",
        "__arrow_c_device_stream__",
        "__dataframe__",
        "__fspath__",
        # copy.deepcopy/copy.copy look these up on the instance (GenerationConfig.__hash__ deep-copies its
        # attributes)
        "__deepcopy__",
        "__copy__",
    }
)

_SHADOWED_METHODS: Final = frozenset(
    {
        "_attach_methods",  # scipy rv_generic.__setstate__
        "_attach_argparser_methods",
        "_patch_step_function",  # torch Optimizer.__setstate__
        "_build_f",  # sklearn IsotonicRegression.__setstate__ (with two values of the state)
        "_post_setstate",  # pandas block managers
        "set_weight_bias",  # torch quantized conv __setstate__
        "add_module",  # torch containers' __setitem__/append/extend (SETITEM, APPEND(S) on the module)
        "append",
        "_get_item_by_idx",
        "_get_abs_string_index",
        "_key_to_attr",
        "_replace_old_cache_name",  # transformers ModelOutput.__setitem__
        "_validate_setitem_value",  # pandas arrays' __setitem__
        "_cmp_method",  # pandas __eq__ (a dict key or set member)
        "construct_from_string",
        "to_json_string",  # transformers GenerationConfig.__hash__/__eq__
    }
)
"""Methods that load-time hooks of allow-listed classes call on ``self`` (``__setstate__`` after
``self.__dict__.update(state)``, ``__setitem__``/``append``/``extend`` run by SETITEM and APPEND(S), ``__hash__``/
``__eq__``): an instance attribute of that name, planted by BUILD, is called instead (found with
``inspect`` over the classes the name patterns admit)."""
_ARGUMENT_METHODS: Final = frozenset(
    {
        # numpy's wrappers call the method of the same name on anything that is not an ndarray, its ufuncs the
        # element's method of the ufunc's name over an object array (np.exp(x) calls x.exp())
        *NUMPY_FUNCTIONS,
        # ... under the method's own name where it differs from the function's (np.acos(x) calls x.arccos())
        *("arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctan2", "arctanh", "bit_count", "conjugate"),
        *("clip", "sum", "prod", "max", "min", "amax", "amin", "mean", "std", "var", "round", "around"),
        *("cumsum", "cumprod", "ptp", "any", "all", "argmax", "argmin", "take", "reshape", "squeeze"),
        *("transpose", "ravel", "nonzero", "compress", "searchsorted", "trace", "diagonal", "repeat"),
        "keys",  # dict(x), OrderedDict(x): x.keys()
        "total_seconds",  # dateutil tzoffset(name, x)
        "replace",  # uuid.UUID(x): x.replace('urn:', '')
        "lower",  # pyarrow type_for_alias(x)
        # torch _rebuild_parameter(x), F.sigmoid(x), F.softmax(x, dim), F.glu(x) ...
        *("detach", "to", "sigmoid", "tanh", "relu", "softmax", "log_softmax", "abs", "dim"),
        "items",  # torch _set_obj_state(obj, x): x.items(); the Python unpickler's BUILD: state.items()
        *("append", "extend", "add"),  # the unpickler's APPEND, APPENDS, ADDITEMS on the object
        # __setstate__ implementations on a state that is not a dict (sklearn's BaseEstimator: state.pop(...))
        *("pop", "get", "copy", "update", "setdefault", "values"),
    }
)
"""Methods that allow-listed callables call on an argument that is not of the type they expect (found by calling
every allowed name with an object whose every attribute is a callable): an instance whose state planted a
callable under one of these names and that is then handed to such a call has that callable called."""

_STATE_WATCHED: Final = _DUNDER_STATE_KEYS | _SHADOWED_METHODS | _ARGUMENT_METHODS
"""Keys that matter in a mapping that becomes an instance's state (see ``_VM._check_state_keys``, ``_VM._plant``)."""
_DCP_KEYS: Final = frozenset({"relative_path", "offset", "length", "transform_descriptors"})
"""The attributes torch.distributed.checkpoint's reader takes from each ``storage_data`` entry (``_StorageInfo``,
or any object that has them): which file of the checkpoint folder it reads, where, how much, and through which
stream transforms (see ``_VM._storage_info``)."""
_KEPT_KEYS: Final = _STATE_WATCHED | _DCP_KEYS
"""Keys whose items a mapping keeps past ``_MAX_CONTAINER``."""
_MAX_STORAGE_INFOS: Final = 1 << 20
_MAX_WATCHED_EXTRA: Final = 64
"""Items of those keys a mapping keeps past ``_MAX_CONTAINER`` (see ``_Dict.add``)."""
_PROTOCOL_TAKERS: Final = frozenset(
    {
        *(
            f"builtins.{t}"
            for t in ("list", "tuple", "set", "frozenset", "dict", "bytearray", "bytes", "str")
        ),
        *(f"builtins.{t}" for t in ("int", "float", "complex", "bool", "range", "hash")),
        *(f"collections.{t}" for t in ("OrderedDict", "deque", "Counter", "defaultdict")),
        "torch.Size",
        "torch.Tensor",
        # numpy turns its argument into an array: __len__/__getitem__ of a sequence, __array__ of the class
        *(f"numpy.{f}" for f in NUMPY_FUNCTIONS),
        *("numpy.ndarray", "numpy.matrix", "numpy.poly1d", "numpy.recarray", "numpy.chararray"),
        *("numpy.core.multiarray._reconstruct", "numpy.ma.core.MaskedArray", "numpy.ma.MaskedArray"),
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        *(f"pathlib.{t}" for t in ("PurePath", "PurePosixPath", "PureWindowsPath", "Path", "PosixPath")),
        *(f"pathlib._local.{t}" for t in ("Path", "PosixPath", "PurePosixPath", "PureWindowsPath")),
        "pathlib.WindowsPath",
    }
)
"""Allowed constructors that run protocol methods of their argument's class: iteration (``list(x)``,
``torch.Size(x)``), mapping (``dict(x)``), conversion (``str(x)``, ``int(x)``), hashing, ``os.fspath`` (see
``_VM._protocol_args``)."""
_DICT_CONSTRUCTORS: Final = frozenset(
    {
        "builtins.dict",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.Counter",
        "collections.ChainMap",
        "scipy.optimize._optimize.OptimizeResult",
    }
)
"""Allowed callables that make a mapping of the mappings or pairs they are given (as a BUILD state, its items
become instance attributes: see ``_VM._state_mappings``)."""

_KEEPS_ARGUMENTS: Final = frozenset(
    {"torch.ao.quantization.qconfig.QConfig", "torch.ao.quantization.qconfig.QConfigDynamic"}
)
"""Allowed classes whose construction calls no method of its arguments: QConfig's ``__new__`` only checks
``isinstance(arg, nn.Module)`` (the type's, never the instance's, attributes) and stores them in the tuple. What it
holds is judged as what quantization calls (``_VM._qconfig_args``)."""
_QCONFIGS: Final = _KEEPS_ARGUMENTS
_PARTIAL_WRAPPER: Final = "torch.ao.quantization.observer._PartialWrapper"
_QUANT_CALLABLE: Final = (
    "torch.ao.quantization.observer.",
    "torch.ao.quantization.fake_quantize.",
    "torch.ao.quantization._learnable_fake_quantize.",
    "torch.nn.modules.linear.Identity",  # QConfigDynamic's default activation
)
"""Classes quantization preparation may call with a pickle's keywords: observers and fake quantizers, whose
constructors make their tensors from numbers, dtypes and qschemes (a fake quantizer calls its ``observer`` keyword,
judged the same way)."""

_CHUNK: Final = 1 << 20
_KEEP_STR: Final = 1 << 16  # longer strings are kept as a prefix only
_KEEP_BYTES_SMALL: Final = 1 << 16  # bytes up to this size are always kept
_KEEP_BYTES_BUDGET: Final = 64 << 20  # total larger bytes kept as possible nested pickles
# Strings and bytes the analysis computes while evaluating string builders: a value reused through the memo can
# double at every call, so each result is paid for before it is made; past the budget the value is unknown.
_COMPUTED_BUDGET: Final = 256 << 20
# A nested pickle candidate larger than this is not analysed: the result is unverified.
_MAX_NESTED_BYTES: Final = 32 << 20
_MAX_CONTAINER: Final = 10_000  # container items kept for lookups; the rest is counted, not stored
_MAX_SPILLED_KEYS: Final = (
    1 << 21
)  # distinct keys of a str-to-int mapping past that bound kept as a set (_Dict.spill)
_MAX_STACK: Final = 2_000_000  # items on the stack or marks on the metastack
_MAX_MEMO: Final = 2_500_000  # memo entries (each holds a value alive)
_MAX_HELD_ITEMS: Final = 1 << 24
"""Items put into tuples and lists the analysis keeps (a list keeps at most ``_MAX_CONTAINER``; a tuple all of
its items), over all streams of a file. A tuple of 2,000,000 ``None`` costs 2 MB of file and 16 MB of memory, so
24 of them held 437 MB; past this bound (128 MB of references) the file is unverified. Ordinary checkpoints stay
far below it: their tuples are arguments, shapes and strides, and their big lists are cut at ``_MAX_CONTAINER``."""

_Memo: TypeAlias = list[Any] | dict[int, Any]
"""The pickle memo. A list while its indices are dense (every entry 0..len-1 defined, which is what every
pickler writes: MEMOIZE and CPython's PUTs number entries in order), 8 bytes an entry where a dict with int keys
costs about 70 (CPython's unpickler also keeps an array). A PUT past the list's end turns it into a dict, whose
``len`` is still the count of defined entries that MEMOIZE numbers from, as in CPython."""


def _memo_put(memo: _Memo, i: int, value: Any) -> _Memo:
    """Store ``value`` at memo index ``i`` (a PUT at or past the end of a list memo); returns the memo to use."""
    if isinstance(memo, dict):
        memo[i] = value
        return memo
    if i < len(memo):
        memo[i] = value
    elif i == len(memo):
        memo.append(value)
    else:
        # sparse: a hand-made stream (or a pickler other than CPython's); keep the entries, now keyed
        sparse = dict(enumerate(memo))
        sparse[i] = value
        return sparse
    return memo


_MAX_TEXT_BYTES: Final = 128 << 20  # string/bytes payload held as values (hostile streams stay bounded)
_TIME_CHECK: Final = 1 << 16
_RESYNC_MAX_CANDIDATES: Final = 4096
_NO_FRAME: Final = 1 << 62  # the opcode loop's frame-end index when no frame is open
_FRAME_STRADDLE: Final = (
    "an opcode runs past the end of its FRAME (file and in-memory loads read it differently)"
)
_PICKLE_FIRST: Final = frozenset(b"\x80(]}cN)KJGXVSTUBCI\x8c\x95")
# Pickles stored as data (not loaded by this pickle; see _VM._stored). A loader accepts a pickle opening with any
# opcode that needs nothing on the stack (PROTO is optional); these are the ones that push something or a MARK.
_STORED_MIN: Final = 16  # shorter constants cannot hold a pickle that calls anything
_PICKLE_OPENERS: Final = frozenset(b"\x80\x95()]}NIJKLMFGSTUVXBCc\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x96")
# Compressed streams a stored pickle may be kept in: zlib, gzip, bzip2, xz, raw LZMA ("alone") and zstd.
_STORED_COMPRESSED: Final = (
    b"x\x9c",
    b"x\xda",
    b"x\x01",
    b"x^",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"]\x00\x00",
    b"\x28\xb5\x2f\xfd",
)
_B64_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B32_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B85_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz!#$%&()*+-;<=>?@^_`{|}~"
# ASCII that base64.b64decode skips (it discards what is not in its alphabet): a payload may start with it.
_B64_JUNK: Final = "".join(
    chr(c) for c in range(128) if chr(c) not in _B64_ALPHABET + "=-_" and chr(c).isascii()
)


def _stored_heads() -> dict[str, frozenset[str]]:
    """How a string constant that holds a stored pickle can start, per encoding: its first two characters under
    base64 (also URL-safe, and after characters base64 skips), base32 and hex of the bytes a pickle or a
    compressed stream opens with, and base85 and Ascii85 of a protocol 2+ header or a compressed stream; and
    first characters that send any string to the full test (latin-1 text of an opener, characters base64
    skips)."""
    compressed = {c[0] for c in _STORED_COMPRESSED}
    url = str.maketrans("+/", "-_")
    heads: dict[str, set[str]] = {k: set() for k in ("base64", "base32", "hex", "base85", "Ascii85", "first")}
    heads["first"].update(_B64_JUNK + "-_")  # b64decode skips '-' and '_' too (see _VM._stored)
    for o in _PICKLE_OPENERS | compressed:
        first = _B64_ALPHABET[o >> 2]
        for hi in range(16):  # the second base64 character takes the next byte's high four bits
            pair = first + _B64_ALPHABET[((o & 3) << 4) | hi]
            heads["base64"].update((pair, pair.translate(url)))
        heads["base64"].update(first + junk for junk in _B64_JUNK)
        for hi in range(4):  # the second base32 character takes the next byte's high two bits
            heads["base32"].add(_B32_ALPHABET[o >> 3] + _B32_ALPHABET[((o & 7) << 2) | hi])
        heads["hex"].update((f"{o:02x}", f"{o:02X}"))
        heads["first"].add(chr(o))  # latin-1 text
    # base85/Ascii85: a group of four bytes is five characters, the group's value in base 85; the first two
    # digits (value // 85**3) of the groups opening with byte o run over every integer between those of the
    # lowest and highest such group
    pairs: set[tuple[int, int]] = set()
    for o in compressed | {0x80}:
        low, high = (o << 24) // 85**3, ((o << 24) | 0xFFFFFF) // 85**3
        pairs.update(divmod(v, 85) for v in range(low, high + 1))
    heads["base85"].update(_B85_ALPHABET[hi] + _B85_ALPHABET[mid] for hi, mid in pairs)
    heads["Ascii85"].update(chr(33 + hi) + chr(33 + mid) for hi, mid in pairs)
    heads["Ascii85"].add("<~")  # as Adobe writes it
    return {k: frozenset(v) for k, v in heads.items()}


_STORED_HEADS: Final = _stored_heads()
_STORED_TEXT_HEADS: Final = frozenset().union(*(v for k, v in _STORED_HEADS.items() if k != "first"))
_STORED_TEXT_FIRSTS: Final = _STORED_HEADS["first"]
_STORED_FIRST_BYTES: Final = _PICKLE_OPENERS | {c[0] for c in _STORED_COMPRESSED}
_STORED_BYTES_FIRSTS: Final = frozenset(
    bytes([o])
    for o in _PICKLE_OPENERS | {c[0] for c in _STORED_COMPRESSED} | {ord(c) for c in _STORED_TEXT_FIRSTS}
) | frozenset(h[:1].encode() for h in _STORED_TEXT_HEADS)
"""First bytes of a bytes constant that may hold a stored pickle (raw, compressed, or text in bytes)."""
_STORED_UNNAMED: Final = frozenset(
    {
        "LW-MODEL-008",
        "LW-MODEL-010",
        "LW-MODEL-012",
        "LW-MODEL-013",
        "LW-MODEL-014",
        "LW-MODEL-015",
        "LW-MODEL-017",
    }
)
_NOT_STORED: Final[set[str | bytes]] = set()
"""Short constants (up to 4,096 recent ones) found not to hold a stored pickle: the answer depends on the value
only."""
_STORED_MAX_CANDIDATES: Final = 10_000  # per top-level stream; more makes the target unverified
_STORED_BYTES_BUDGET: Final = 256 << 20  # decoded bytes analysed as stored pickles per top-level stream
_STORED_INFLATE_MAX: Final = 32 << 20
# Patterns used on rare paths are kept as text and compiled on first use (re caches them): compiling them all
# when the module loads cost a few milliseconds in every process, most of which never needs them.
_HEX_RE: Final = r"(?:[0-9a-fA-F]{2})+"
_B64_SKIPPED_RE: Final = r"[^A-Za-z0-9+/\-_]+"
_B32_RE: Final = r"[A-Z2-7]+=*"
_B85_RE: Final = r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]+"
_A85_RE: Final = r"[!-uz]+"
_WHITESPACE_RE: Final = r"\s+"


@dataclass(frozen=True, slots=True)
class PickleResult:
    """What the analysis of one pickle stream found."""

    findings: tuple[Finding, ...]
    unverified: str | None
    callables: tuple[str, ...]
    pickles: int
    consumed: int
    storages: tuple[tuple[str, int, int | None], ...] = ()
    """torch storages the stream asks ``persistent_load`` for: (key, declared element count, bytes per element
    when the storage type says it), for the archive to compare with its ``data/<key>`` records. Each key's first
    declaration comes first; later ones of another size follow it."""
    sparse: tuple[
        tuple[str, int, tuple[int, ...], tuple[int, ...], tuple[int, ...], int, int | None, bool, bool], ...
    ] = ()
    """Index tensors of sparse tensors (``_rebuild_sparse_tensor``) over a storage: (storage key, offset, sizes,
    strides, bound of each row's values (one bound for a 1-D tensor), lowest allowed value, bytes per element,
    whether each row must not decrease (compressed indices), whether the tensor is a jagged nested tensor's offsets
    or lengths rather than a sparse tensor's indices (for the message)).
    torch.load checks none of them unless sparse invariant checks are switched on, so the archive compares them
    with the record's numbers (see ``dispatch._sparse_records``)."""
    storage_infos: tuple[tuple[str | None, int | None, int | None, tuple[str, ...] | None], ...] = ()
    """Entries of a distributed checkpoint's ``storage_data`` (objects with a ``relative_path``): (path, offset,
    length, stream transform descriptors), None where a value is not a constant; see
    :mod:`~loopwarden.checks.models.dcp`."""


# --- symbolic values ---------------------------------------------------------------------------------------


class _Ref:
    """A module-level object named ``module.qual`` (module ``?`` when it was computed at run time).

    ``canon`` is the name with module aliases resolved; ``plain`` is True when calling it needs no modelling
    (it is not a resolver, loader, wrapper or string builder), which lets the hot loop skip ``_call``.
    """

    __slots__ = (
        "by_pattern",
        "canon",
        "guessed",
        "module",
        "pending",
        "plain",
        "qual",
        "unjudged",
        "user_class",
    )

    def __init__(self, module: str, qual: str) -> None:
        self.module = module
        self.qual = qual
        self.canon = f"{canonical_module(module)}.{qual}"
        self.plain = module != "?" and self.canon not in _MODELLED and not self.canon.startswith("pandas.")
        self.user_class = False  # a class of a module the scanner does not know (LW-MODEL-006)
        self.by_pattern = False  # allowed by a name pattern only: may be rebuilt, never called (see _call)
        self.unjudged = False  # an unknown module's name in another format's bytes (see _global)
        self.guessed = (
            False  # ... paired from memo entries in a plain reading of joblib array data (see _global)
        )
        self.pending: list[Any] | None = None
        """For an imported ``getattr`` whose finding waits for its uses: [copies on the stack, direct calls
        that resolved to an allow-listed callable, the finding]. See :meth:`_VM._settle`."""

    @property
    def name(self) -> str:
        return f"{self.module}.{self.qual}"


class _Module:
    """A module object returned by ``__import__``/``importlib.import_module`` (name ``?`` if unknown)."""

    __slots__ = ("module",)

    def __init__(self, module: str) -> None:
        self.module = module


class _Call:
    """The result of calling ``func`` (a class instance or a function's return value)."""

    __slots__ = ("args", "func", "items", "planted", "state")

    def __init__(self, func: Any, args: Any) -> None:
        self.func = func
        self.args = args
        self.state: Any = None
        self.planted: list[tuple[str, Any]] | None = None
        """Callables its state stored as instance attributes (see ``_VM._plant``)."""
        self.items: _Dict | None = None
        """What SETITEM(S) stored in it (how pickle fills an ``OrderedDict`` or a dict subclass): when the object
        is then a BUILD state, these are the attributes it sets (see ``_state_mappings``)."""


class _Wrapper:
    """Callable objects that forward to something else: partial, attrgetter, methodcaller, itemgetter,
    bound."""

    __slots__ = ("args", "kind", "kwargs", "target")

    def __init__(self, kind: str, target: Any, args: tuple[Any, ...]) -> None:
        self.kind = kind
        self.target = target
        self.args = args
        self.kwargs: Any = None  # a partial's keywords (its BUILD state's third item)


class _BunchNew:
    """``getattr(cls, '__new__')`` of one of ``SCIPY_TUPLE_BUNCHES`` or ``SYMPY_SYMBOLS``: how protocols 2 and 3
    write the ``copyreg.__newobj_ex__`` of such an object (``functools.partial(cls.__new__, cls, *fields, **extra)``
    called with no arguments). Called on that same class it is NEWOBJ of the class (``_VM._bunch_new``; a symbol's
    name and assumptions are checked in ``_VM._symbol_new``); anything else is reported."""

    __slots__ = ("cls",)

    def __init__(self, cls: _Ref) -> None:
        self.cls = cls  # the allowed class whose __new__ this is


class _LrScheduler:
    """A ``LAMBDA_SCHEDULERS`` instance made without its constructor (NEWOBJ, or ``copyreg.__newobj__``/
    ``_reconstructor`` over ``object`` called directly): admitted at the end of the stream only when exactly one BUILD
    gave it a state of numbers, its optimizer and admitted schedule partials (see ``_VM._lambda_schedulers``)."""

    __slots__ = ("builds", "cls", "container", "obj", "state")

    def __init__(self, obj: _Call, cls: _Ref, container: tuple[Any, ...] | None) -> None:
        self.obj = obj
        self.cls = cls  # the import whose copy made it
        self.container = container  # the copyreg call's arguments that held that copy (None: NEWOBJ took it)
        self.builds = 0  # BUILDs (and _set_obj_state calls) on it
        self.state: Any = None  # the last of those states


class _LrPartial:
    """A ``functools.partial`` over one of ``SCHEDULE_LAMBDAS`` made by a direct call: admitted only as an entry of an
    admitted scheduler's ``lr_lambdas`` (see ``_VM._lambda_schedulers``). Until then its import, the function's and
    the BUILD that set its state are findings held back."""

    __slots__ = ("builds", "called", "held", "maker", "obj", "state", "taken", "uses")

    def __init__(self, obj: _Wrapper, maker: _Ref, uses: list[tuple[_Ref, Any]]) -> None:
        self.obj = obj
        self.maker = maker  # the functools.partial import whose copy the call took
        self.uses = uses  # the schedule function's copies it holds, each with the tuple that held it
        self.builds = 0  # BUILDs on it
        self.taken = 0  # ... of which _partial_state took as a schedule function's state
        self.state: Any = None  # the last BUILD's state
        self.held: list[tuple[Any, ...]] = []  # the LW-MODEL-008 finding each taken BUILD would have been
        self.called = False  # called at load time


class _Dict:
    __slots__ = ("checked", "dcp", "hidden", "items", "size", "spill")

    def __init__(self) -> None:
        # the kept items; an empty dict shares the empty tuple until its first item (a stream of millions of
        # memoized EMPTY_DICTs held a 56-byte list each)
        self.items: list[tuple[Any, Any]] | tuple[()] = ()
        self.size = 0
        self.checked = 0  # items already judged as instance state (items are only ever appended)
        self.hidden = False  # an item that may matter as instance state was not kept (see add)
        self.dcp = False  # has a key of _DCP_KEYS (set when judged as instance state)
        # past the bound, while every dropped item maps a str to an int (a vocabulary: a DictVectorizer's maps each
        # feature to a column, see _VM._vocabulary_problem): [least value, greatest value, the keys]; None while
        # nothing was dropped, False once another item was (or too many to keep their keys)
        self.spill: list[Any] | bool | None = None

    def _spilled(self, k: Any, v: Any) -> None:
        spill = self.spill
        if spill is False:
            return
        if type(k) is not str or type(v) is not int:
            self.spill = False
        elif spill is None:
            self.spill = [v, v, [k]]
        elif type(spill) is list:
            if v < spill[0]:
                spill[0] = v
            elif v > spill[1]:
                spill[1] = v
            keys = spill[2]
            keys.append(k)
            if len(keys) > _MAX_SPILLED_KEYS:
                self.spill = False

    def owned(self) -> list[tuple[Any, Any]]:
        """The items as a list of this dict's own, to add to."""
        items = self.items
        if isinstance(items, tuple):
            items = self.items = []
        return items

    def add(self, k: Any, v: Any) -> None:
        self.size += 1
        if len(self.items) < _MAX_CONTAINER:
            self.owned().append((k, v))
            return
        self._spilled(k, v)
        if _watched(k, v):
            # past the bound only items that may matter as instance state are kept (a BUILD state of 10,000
            # harmless keys, then __setstate__), a few: beyond those the state's keys are not all known
            if len(self.items) < _MAX_CONTAINER + _MAX_WATCHED_EXTRA:
                self.owned().append((k, v))
            else:
                self.hidden = True

    def add_pairs(self, flat: list[Any]) -> None:
        """``add`` of every (key, value) pair of a SETITEMS' flat item list: under the bound in one step, past it
        keeping only the items that may matter as instance state (as ``add`` does, without a call per item)."""
        n = len(flat) // 2
        room = _MAX_CONTAINER - len(self.items)
        if room >= n:
            self.size += n
            self.owned().extend(zip(flat[0::2], flat[1::2], strict=True))
            return
        start = max(room, 0)
        if start:
            self.size += start
            self.owned().extend(zip(flat[0 : 2 * start : 2], flat[1 : 2 * start : 2], strict=True))
        watched = _KEPT_KEYS
        spill = self.spill
        for k, v in zip(flat[2 * start :: 2], flat[2 * start + 1 :: 2], strict=True):
            self.size += 1
            if spill is not False:  # _spilled, inline: this loop runs per item of a large mapping
                if type(k) is not str or type(v) is not int:
                    spill = self.spill = False
                elif spill is None:
                    spill = self.spill = [v, v, [k]]
                else:
                    if v < spill[0]:  # type: ignore[index]
                        spill[0] = v  # type: ignore[index]
                    elif v > spill[1]:  # type: ignore[index]
                        spill[1] = v  # type: ignore[index]
                    spill[2].append(k)  # type: ignore[index]
            if type(k) is str:
                if k not in watched and type(v) is not _Ref and type(v) is not _Wrapper:
                    continue
            elif not _may_be_str(k):
                continue
            if len(self.items) < _MAX_CONTAINER + _MAX_WATCHED_EXTRA:
                self.owned().append((k, v))
            else:
                self.hidden = True
        if type(spill) is list and len(spill[2]) > _MAX_SPILLED_KEYS:
            self.spill = False

    def get(self, key: Any) -> Any:
        """The value for ``key`` (the last one set, as in a dict), or unknown."""
        for k, v in reversed(self.items):
            if type(k) is type(key) and k == key:
                return v
        return _UNKNOWN


class _Big:
    """A string or bytes payload too large to keep; ``prefix`` holds its first bytes. When it was read from a
    seekable stream, ``chunks`` reads it again (a check that needs all of it, such as a tree's node array, learns
    that it does only later in the stream)."""

    __slots__ = ("at", "encoding", "kind", "prefix", "size", "source")

    def __init__(
        self,
        kind: str,
        size: int,
        prefix: bytes,
        source: IO[bytes] | None = None,
        at: int = 0,
        encoding: str = "utf-8",
    ) -> None:
        self.kind = kind
        self.size = size
        self.prefix = prefix
        self.source = source
        self.at = at
        self.encoding = encoding

    def chunks(self) -> Iterator[bytes] | None:
        """The payload's bytes again, in chunks of at most 1 MiB (the stream is put back where it was after
        each); None when the stream cannot be read again."""
        source = self.source
        if source is None:
            return None

        def read() -> Iterator[bytes]:
            at, left = self.at, self.size
            while left > 0:
                back = source.tell()
                try:
                    source.seek(at)
                    data = source.read(min(left, _NODE_CHUNK))
                finally:
                    source.seek(back)
                if not data:
                    raise _TruncatedError("payload shorter when read again", at)
                at += len(data)
                left -= len(data)
                yield data

        return read()


class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unknown>"


_UNKNOWN: Final = _Unknown()


class _Storage(_Unknown):
    """The storage torch's ``persistent_load`` returns for ``('storage', type, key, location, numel[, view])``:
    opaque like any loader-made value, but with the element count the stream declares for it."""

    __slots__ = ("base", "key", "numel", "packed")

    def __init__(self, key: str, numel: int, base: int | None = 0, packed: int = 1) -> None:
        self.key = key
        self.numel = numel
        self.base = base
        """Where the storage starts in the key's storage, in elements: a legacy file's view id
        (``('storage', type, key, location, numel, (view_key, offset, view_numel))``) is a slice of its root
        storage; None when the slice is not constant."""
        self.packed = packed
        """Tensor elements per storage element: torch's sub-byte quantized types pack two (``quint4x2``) or four
        (``quint2x4``) values in a byte, and its bound check needs only ``ceil(extent / packed)`` bytes."""

    def __repr__(self) -> str:
        return f"<storage {self.key}: {self.numel} elements>"


_STORAGE_ITEMSIZE: Final = {
    "Double": 8, "Float": 4, "Half": 2, "BFloat16": 2, "Long": 8, "Int": 4, "Short": 2, "Char": 1, "Byte": 1,
    "Bool": 1, "ComplexDouble": 16, "ComplexFloat": 8, "QUInt8": 1, "QInt8": 1, "QInt32": 4, "QUInt4x2": 1,
    "QUInt2x4": 1, "Untyped": 1,
    # the names TorchScript's pickler writes for the newer dtypes (c10's scalar type name + "Storage"); Python's
    # torch has no such attribute, TorchScript's C++ unpickler reads them as the storage's dtype
    "UInt16": 2, "UInt32": 4, "UInt64": 8, "ComplexHalf": 4, "Bits16": 2, "Bits8": 1, "Bits1x8": 1, "Bits2x4": 1,
    "Bits4x2": 1, "Float8_e4m3fn": 1, "Float8_e4m3fnuz": 1, "Float8_e5m2": 1, "Float8_e5m2fnuz": 1,
    "Float8_e8m0fnu": 1, "Float4_e2m1fn_x2": 1, **{f"{u}Int{n}": 1 for u in ("", "U") for n in range(1, 8)},
}  # fmt: skip
"""Bytes per element of torch's storage types (``torch.FloatStorage`` ...; an UntypedStorage counts bytes)."""
_STORAGE_PACKED: Final = {"QUInt4x2": 2, "QUInt2x4": 4}
"""Values per byte of torch's sub-byte quantized storages (``torch.save`` of a ``quint4x2`` tensor of 4 values
declares a storage of 2 elements)."""
_TENSOR_REBUILDS: Final = frozenset(
    {"torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_qtensor"}
)
"""torch's rebuilds of a tensor over a storage: (storage, storage_offset, size, stride, ...)."""
_SPARSE_REBUILDS: Final = frozenset(
    {"torch._utils._rebuild_sparse_tensor", "torch._utils._rebuild_sparse_csr_tensor"}
)
"""torch's rebuilds of a sparse tensor, ``(layout, data)``: ``_rebuild_sparse_csr_tensor`` is the older torch's
(1.x) spelling for the compressed layouts, which the allow-list still admits."""
_PARAMETER_REBUILDS: Final = frozenset(
    {"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
)
"""Rebuilds that wrap their first argument, a tensor, as a Parameter sharing its memory."""
_INDEX_ITEMSIZE: Final = {"torch.int64": 8, "torch.long": 8, "torch.int32": 4, "torch.int": 4}
"""Bytes per element of the dtypes torch takes for sparse indices (int64; int32 for the compressed layouts)."""
_TENSOR_RESULTS: Final = _TENSOR_REBUILDS | frozenset(
    {
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        *_SPARSE_REBUILDS,
        "torch._utils._rebuild_nested_tensor",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._tensor._rebuild_from_type_v2",
        "torch.nested._internal.nested_tensor._rebuild_njt",
    }
)
"""Calls whose result is a tensor: torch.save never applies SETITEM(S), APPEND(S) or ADDITEMS to one."""
_TORCH_ALLOCATORS: Final = frozenset(
    {
        "torch.Tensor",
        "torch.UntypedStorage",
        "torch.TypedStorage",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        *(f"torch.{kind}Storage" for kind in _STORAGE_ITEMSIZE),
    }
)
"""Allow-listed torch classes whose constructor (or ``__new__``) allocates: ``torch.Tensor(n, ...)`` and
``torch.Tensor(torch.Size(...))``, ``torch.UntypedStorage(n)``, ``torch.storage.TypedStorage(n)`` and the legacy
``torch.FloatStorage(n)`` ... return memory they never fill, holding whatever the loading process freed there
(torch.load with ``weights_only=True`` calls the first three: they are among its own allowed globals). Their hidden
keywords ``torch.Tensor(cdata=address)`` and ``torch.UntypedStorage(n, allocator=address)`` take a raw C++ pointer
(torch 2.13 crashes on any address a file gives). torch.save never calls any of them: it names storages in
persistent ids and rebuilds tensors through ``torch._utils``."""
_POINTER_KEYWORDS: Final = frozenset({"cdata", "allocator"})
"""Keywords of the allocating torch classes whose integer torch takes as the address of a C++ object."""
_HOLDS_DATA: Final = (
    _TENSOR_RESULTS
    | _TORCH_ALLOCATORS
    | {
        "torch._utils._rebuild_device_tensor_from_cpu_tensor",
        "torch.storage._load_from_bytes",
        "torch.nn.parameter.Parameter",
        "torch.nn.parameter.Buffer",
    }
)
"""Calls whose result is a tensor or a storage: an allocating class handed one wraps or copies it."""
_INERT_ALLOCATION_ARGS: Final = (
    int,
    bool,
    float,
    complex,
    str,
    bytes,
    bytearray,
    tuple,
    list,
    _Big,
    _Storage,
    _Ref,
    _Module,
)
"""Arguments of an allocating torch class that allocate nothing unfilled: data it copies (a sequence, bytes), a
storage it wraps, or what it rejects (a number beside other arguments, a string, a class or function)."""

_MAX_LONG_BYTES: Final = 1 << 16
"""LONG4 payloads up to this size are turned into their exact value (linear work); larger ones are unknown."""
_DECIMAL: Final = rb"\s*[+-]?[1-9](?:_?[0-9])*\s*"
"""A base-0 decimal literal (``int(text, 0)``: no leading zero): when int() rejects one, only its length can be why."""
_C_OCTAL: Final = rb"\s*([+-]?)0([0-7]+)\s*"


def _text_int(line: bytes, *, c_octal: bool = True) -> int | _Unknown | None:
    """The value of a protocol-0 INT or LONG argument as the loaders compute it, or None if none accepts it.

    Both unpicklers parse base 0 (``int(text, 0)``: ``0x``/``0o``/``0b`` prefixes, underscores, any length;
    joblib's Python unpickler among them), so a value is never guessed from a shortened text: a joblib array's
    size decides where opcodes resume. The C unpickler's ``strtol`` also reads a leading-zero INT ("010") as
    octal. A decimal over the interpreter's digit limit is unknown: the limit is configurable where the model
    is loaded.
    """
    try:
        return int(line, 0)
    except ValueError:
        pass
    if c_octal and (m := re.fullmatch(_C_OCTAL, line)) is not None:
        value = int(m.group(2), 8)
        if value < 1 << 63:
            return -value if m.group(1) == b"-" else value
        return None  # strtol overflows; the fallback parser rejects the leading zero
    if re.fullmatch(_DECIMAL, line) is not None:
        return _UNKNOWN  # well formed, but longer than this interpreter converts
    return None


class _MalformedError(Exception):
    def __init__(self, message: str, offset: int, region: bytes = b"") -> None:
        super().__init__(message)
        self.offset = offset
        self.region = region
        """Bytes another loader reads as opcodes where this reading took them as an argument (searched)."""


class _LongLineError(_MalformedError):
    """A text line longer than the VM keeps (raised with the reader still at the line's start)."""


class _TruncatedError(_MalformedError):
    pass


class _LimitError(Exception):
    def __init__(self, bound: str, detail: str) -> None:
        super().__init__(detail)
        self.bound = bound


# --- the byte source ---------------------------------------------------------------------------------------


class _Reader:
    """Buffered reads over any binary stream; payloads are skipped without being held."""

    __slots__ = ("base", "buf", "chunk", "eof", "max_bytes", "n", "origin", "p", "stream")

    def __init__(self, stream: IO[bytes], max_bytes: int, chunk: int = _CHUNK) -> None:
        self.stream = stream
        self.origin: int | None = None
        """The stream's position at the reader's offset 0, when the stream can seek (payloads skipped can then
        be read again)."""
        with contextlib.suppress(OSError, ValueError, AttributeError):
            if stream.seekable():
                self.origin = stream.tell()
        self.chunk = chunk
        self.buf = b""
        self.p = 0
        self.n = 0
        self.base = 0  # absolute offset of buf[0]
        self.eof = False
        self.max_bytes = max_bytes

    def tell(self) -> int:
        return self.base + self.p

    def fill(self, need: int) -> bool:
        """Make ``need`` bytes available at ``p``; False at end of stream."""
        avail = self.n - self.p
        if avail >= need:
            return True
        if self.eof:
            return False
        rest = self.buf[self.p :]
        self.base += self.p
        chunks = [rest]
        got = avail
        chunk = self.chunk
        want = max(chunk, need)
        while got < need or got < chunk:
            data = self.stream.read(want - got if want > got else chunk)
            if not data:
                self.eof = True
                break
            chunks.append(data)
            got += len(data)
            if got >= need:
                break
        self.buf = b"".join(chunks)
        self.p = 0
        self.n = len(self.buf)
        if self.base + self.n > self.max_bytes:
            raise _LimitError("max_file_bytes", f"stream longer than {self.max_bytes} bytes")
        return self.n >= need

    def read(self, k: int) -> bytes:
        if self.n - self.p < k and not self.fill(k):
            raise _TruncatedError(f"pickle truncated: needed {k} bytes", self.base + self.n)
        p = self.p
        self.p = p + k
        return self.buf[p : p + k]

    def readline(self) -> bytes:
        while True:
            i = self.buf.find(b"\n", self.p)
            if i >= 0:
                line = self.buf[self.p : i]
                self.p = i + 1
                return line
            if self.n - self.p > _KEEP_STR:
                raise _LongLineError("text line longer than 64 KiB", self.tell())
            if not self.fill(self.n - self.p + 1):
                raise _TruncatedError("pickle truncated inside a text line", self.base + self.n)

    def skip_line(self) -> tuple[bytes, int, int]:
        """Consume a text line of any length keeping only its first 64 bytes: (prefix, length, last byte or -1).
        CPython reads protocol-0 string lines whole, whatever their length."""
        prefix = self.buf[self.p : self.p + 64]
        length = 0
        last = -1
        while True:
            i = self.buf.find(b"\n", self.p)
            if i >= 0:
                if i > self.p:
                    last = self.buf[i - 1]
                length += i - self.p
                self.p = i + 1
                return prefix, length, last
            if self.n > self.p:
                last = self.buf[self.n - 1]
            length += self.n - self.p
            self.base += self.n
            self.buf, self.p, self.n = b"", 0, 0
            if not self.fill(1):
                raise _TruncatedError("pickle truncated inside a text line", self.base)

    def skip(self, k: int) -> bytes:
        """Consume ``k`` bytes keeping only a short prefix (for evidence and sniffing)."""
        avail = self.n - self.p
        if k <= avail:
            prefix = self.buf[self.p : self.p + min(k, 64)]
            self.p += k
            return prefix
        prefix = self.buf[self.p : self.p + 64]
        k -= avail
        self.base += self.n
        self.buf, self.p, self.n = b"", 0, 0
        stream = self.stream
        if self.base + k > self.max_bytes:
            if _ends_within(stream, k):
                # the file ends first: a loader fails on the truncation (a length read from bytes of another
                # format, such as a safetensors header size, is mostly such a claim)
                raise _TruncatedError("pickle truncated inside a payload", self.base)
            raise _LimitError("max_file_bytes", f"payload extends past {self.max_bytes} bytes")
        fast = _seek_forward(stream, k)
        if fast:
            self.base += k
            return prefix
        while k > 0:
            data = stream.read(min(k, 8 * _CHUNK))
            if not data:
                self.eof = True
                raise _TruncatedError("pickle truncated inside a payload", self.base)
            k -= len(data)
            self.base += len(data)
        return prefix


def _ends_within(stream: IO[bytes], k: int) -> bool:
    """Whether a seekable ``stream`` ends before ``k`` more bytes (False when that cannot be known cheaply)."""
    try:
        if not stream.seekable():
            return False
        pos = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        stream.seek(pos)
    except (OSError, ValueError):
        return False
    return pos + k > end


def _seek_forward(stream: IO[bytes], k: int) -> bool:
    """Skip ``k`` bytes by seeking when that is cheap and safe (real files, BytesIO), checking the end."""
    if not isinstance(stream, io.BytesIO | io.BufferedReader | io.FileIO):
        return False
    try:
        pos = stream.tell()
        end = stream.seek(0, io.SEEK_END)
        if pos + k > end:
            stream.seek(end)
            return False  # the read loop reports the truncation
        stream.seek(pos + k)
        return True
    except (OSError, ValueError):
        return False


# --- shared accounting across nested analyses --------------------------------------------------------------


class _Budget:
    __slots__ = (
        "computed_bytes",
        "deadline",
        "held_items",
        "kept_bytes",
        "limits",
        "opcodes",
        "stored",
        "stored_bytes",
        "text_bytes",
    )

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.opcodes = 0
        self.kept_bytes = 0
        self.text_bytes = 0
        self.computed_bytes = 0  # strings and bytes the analysis builds (concatenation, decoding, inflating)
        self.stored = 0  # constants analysed as possible stored pickles (see _VM._stored)
        self.stored_bytes = 0  # and their decoded size
        self.held_items = 0  # items put into kept tuples and lists (see _MAX_HELD_ITEMS)
        self.deadline = time.monotonic() + limits.max_seconds


def _check_held(budget: _Budget) -> None:
    if budget.held_items > _MAX_HELD_ITEMS:
        raise _LimitError("max_held_items", f"more than {_MAX_HELD_ITEMS} items put into tuples and lists")


class _Collector:
    """Deduplicated findings (first offset + count), reached callables, unverified reasons."""

    def __init__(self, location: Location, allow: AllowList) -> None:
        self.location = location
        self.allow = allow
        self.hits: dict[tuple[str, str], list[Any]] = {}
        self.callables: set[str] = set()
        self.unverified: list[str] = []
        self._cache: dict[str, Classification] = {}
        self.storages: dict[str, tuple[int, int | None]] = {}
        self.redeclared: list[tuple[str, int, int | None]] = []
        """Later declarations of a storage key with another size: torch.load takes a key's first declaration,
        torch.jit.load's unpickler each declaration's own (a larger one reads past the record)."""
        self.sparse: list[
            tuple[str, int, tuple[int, ...], tuple[int, ...], tuple[int, ...], int, int | None, bool, bool]
        ] = []
        self.storage_infos: dict[int, tuple[Any, dict[str, Any]]] = {}
        """Objects given distributed-checkpoint storage-entry attributes (see ``_VM._storage_info``), by id."""

    def classify(self, module: str, qual: str) -> Classification:
        key = f"{module}\n{qual}"
        c = self._cache.get(key)
        if c is None:
            c = self.allow.classify(module, qual)
            self._cache[key] = c
        return c

    def hit(
        self, rule: str, severity: Severity, subject: str, message: str, offset: int, evidence: dict[str, Any]
    ) -> None:
        key = (rule, subject)
        entry = self.hits.get(key)
        if entry is None and len(self.hits) >= _MAX_DISTINCT_FINDINGS:
            key = ("LW-MODEL-015", "more-findings")
            entry = self.hits.get(key)
            if entry is None:
                message = f"more than {_MAX_DISTINCT_FINDINGS} distinct findings; the rest are counted here"
                self.hits[key] = [severity, message, offset, 1, {}]
                return
        if entry is None:
            self.hits[key] = [severity, message, offset, 1, evidence]
        else:
            entry[3] += 1
            if severity > entry[0]:
                entry[0] = severity

    def again(self, rule: str, subject: str, severity: Severity) -> bool:
        """Count one more occurrence of a finding already recorded, as ``hit`` would (so that a caller need not
        build its evidence again); False when it is not recorded yet."""
        entry = self.hits.get((rule, subject))
        if entry is None:
            return False
        entry[3] += 1
        if severity > entry[0]:
            entry[0] = severity
        return True

    def findings(self) -> tuple[Finding, ...]:
        out = []
        for (rule, subject), (sev, msg, off, count, ev) in self.hits.items():
            evidence = dict(ev)
            evidence["subject"] = subject
            if count > 1:
                evidence["occurrences"] = count
            loc = Location(self.location.path, self.location.member, off, self.location.line)
            out.append(Finding(rule, sev, msg, loc, evidence))
        out.sort(key=Finding.sort_key)
        return tuple(out)


# --- the executor ------------------------------------------------------------------------------------------

# Callables with modelled semantics (canonical "module.qualname").
_IMPORTERS: Final = frozenset(
    {
        "builtins.__import__",
        "importlib.import_module",
        "importlib.__import__",
        "importlib._bootstrap._gcd_import",
        "importlib._bootstrap._find_and_load",
        "importlib.util.find_spec",
    }
)
_CONSTANT_KEYS: Final = frozenset({str, tuple, int, float, bool, bytes, complex, type(None)})
"""Types of dict keys the VM holds as the values the loader will see (a tuple key is never equal to a string)."""
_FX_REDUCE: Final = "torch.fx.graph_module.reduce_graph_module"
_FX_TRACER: Final = "torch.fx._symbolic_trace.Tracer"
_FX_TRACERS: Final = {
    _FX_TRACER: True,
    "torch.fx.experimental.proxy_tensor.PythonKeyTracer": False,
    "torch.fx.experimental.proxy_tensor._ModuleStackTracer": True,
}
"""The tracers a GraphModule body may name for torch.load's re-trace, and whether each keeps submodules as leaves:
torch.fx's own ``Tracer`` (what ``symbolic_trace`` saves) records a submodule call, while ``make_fx``'s
``PythonKeyTracer`` runs the submodule's ``forward`` and its hooks (``call_module`` ignores ``is_leaf_module``).
``_ModuleStackTracer`` is what ``torch.export``'s graph module keeps (an ExportedProgram saved with torch.save):
torch.load subclasses it and calls the subclass with no argument, which fails (its ``__init__`` needs
``scope_root``; TypeError in torch 2.13) after the code was executed and before anything is traced."""
_EXPORTED_PROGRAM: Final = "torch.export.exported_program.ExportedProgram"
_EXPORTED_PROGRAM_KEYS: Final = frozenset(
    {
        "_graph_module",
        "_graph_signature",
        "_state_dict",
        "_range_constraints",
        "_module_call_graph",
        "_example_inputs",
        "_constants",
        "_verifiers",
        "_guards_code",
    }
)
"""The ``__dict__`` torch.save writes for an ExportedProgram (torch 2.13; no ``__setstate__``: BUILD sets it)."""
_EXPORT_VERIFIERS: Final = frozenset(
    {"torch._export.verifier.Verifier", "torch._export.verifier.TrainingIRVerifier"}
)
"""torch's verifier classes an ExportedProgram keeps; ``validate()`` and the passes instantiate each and run it."""
_DEFERRED: Final = frozenset(
    {
        "builtins.getattr",
        "torch.storage._load_from_bytes",
        "builtins.type",
        "functools.partial",
        "dateutil.tz.tz.tzfile",
        "torch.ScriptObject",
        *("numpy.memmap", "numpy.core.memmap.memmap"),
        _FX_REDUCE,
        *_FX_TRACERS,
        *LAMBDA_SCHEDULERS,
        *SCHEDULE_LAMBDAS,
        *SCHEDULE_FUNCTIONS,
    }
)
"""Imports judged by their uses (see ``_VM._judge`` and ``_VM._settle``): each is reported unless every copy of
it is used in the one harmless way its pickled instances need (see ``_VM._call_modelled``,
``_VM._instantiate`` and ``_VM._lambda_schedulers``)."""
_MEMMAP: Final = frozenset({"numpy.memmap", "numpy.core.memmap.memmap"})
"""``numpy.memmap`` maps (and with mode ``w+`` creates) the file its arguments name when called, but a pickled
memmap names it only as the subtype of ``_reconstruct(memmap, (0,), b'b')``: ``ndarray.__new__`` of the subtype,
whose ``__array_finalize__`` only clears the mapping attributes, then the array state. That use is harmless."""
_TORCHBIND_STATE_CLASSES: Final = frozenset(
    f"__torch__.torch.classes.{c}"
    for c in (
        "quantized.LinearPackedParamsBase",
        "quantized.Conv2dPackedParamsBase",
        "quantized.Conv3dPackedParamsBase",
        "quantized.EmbeddingPackedParamsBase",
        "sparse.LinearPackedParamsBase",
        "rnn.CellParamsBase",
    )
)
"""TorchScript classes of torch itself whose ``__setstate__`` (C++) rebuilds packed quantized weights from
tensors and numbers. ``torch.ScriptObject.__setstate__((state, qualname))`` runs the ``__setstate__`` of the
class named ``qualname``; any other class (one a loaded extension registered, ``aten.OpaqueObject`` ...) is a
finding."""
_NATIVE_CONSTRUCTORS: Final = ("tokenizers.",)
"""Packages whose extension classes (Rust, pyo3) have their constructor as ``__new__``: NEWOBJ runs it with the
pickle's arguments. tokenizers' ``BPE.__new__(cls, vocab, merges)``, ``WordPiece.__new__(cls, vocab)`` and
``WordLevel.__new__(cls, vocab)`` read the files a string argument names; tokenizers pickles its objects as
NEWOBJ with no arguments (a ``Tokenizer`` with its model instance) and a BUILD of their JSON. Found by calling
every native ``__new__`` the allow-list admits with path arguments under strace."""
_CLASS_TAKERS: Final = {
    "pandas.core.indexes.base._new_Index": "pandas.",
    "pandas.core.indexes.datetimes._new_DatetimeIndex": "pandas.",
    "pandas.core.indexes.timedeltas._new_TimedeltaIndex": "pandas.",
    "pandas.core.indexes.period._new_PeriodIndex": "pandas.",
    "pandas.core.indexes.interval._new_IntervalIndex": "pandas.",
    "numpy.ma.core._mareconstruct": "numpy.",
}
"""Allowed reconstructors that build their first argument, a class, through its constructor: pandas'
``_new_*Index(cls, d)`` run ``cls.__new__(cls, **d)``, ``cls._simple_new(data, **d)`` or
``cls.from_arrays(**d)``, numpy's ``_mareconstruct(subtype, ...)`` ``subtype.__new__(subtype, data, mask=...,
dtype=...)``. Their own pickles name a class of the library itself (the prefix here); any other class has its
constructor run on the pickle's keywords (tokenizers' ``WordLevel.__new__(cls, vocab=path)`` reads the file)."""
_SINGLETON_TYPES: Final = frozenset({"builtins.Ellipsis", "builtins.NotImplemented"})
# Enum classes the exact allow-list admits that allowlist.shared_result does not know as enums: enum.Enum (no members)
# and enums with members. Called with other than one argument, any enum is the functional API (_VM._enum_functional);
# one with members refuses it today, but a pickle never calls an enum so, whatever a later release makes of the class.
_ENUM_CLASSES: Final = frozenset(
    {
        "enum.Enum",
        "sentence_transformers.base.sampler.BatchSamplers",
        "sentence_transformers.base.sampler.MultiDatasetBatchSamplers",
        "sentence_transformers.training_args.BatchSamplers",
        "sentence_transformers.training_args.MultiDatasetBatchSamplers",
        "torch.distributed._shard.checkpoint.metadata._MEM_FORMAT_ENCODING",
        "torch.distributed._shard.sharded_tensor.metadata.MEM_FORMAT_ENCODING",
        "torch.distributed.checkpoint.metadata._MEM_FORMAT_ENCODING",
    }
)
_REBUILD_FROM_TYPE: Final = frozenset(
    {"torch._tensor._rebuild_from_type", "torch._tensor._rebuild_from_type_v2"}
)
"""``_rebuild_from_type_v2(func, new_type, args, state)`` calls ``func(*args)``: that call is judged as any other."""
_REBUILD_NJT: Final = "torch.nested._internal.nested_tensor._rebuild_njt"
"""torch's rebuild of a jagged nested tensor, ``_rebuild_njt(constructor_kwargs)``: ``NestedTensor(**kwargs)``."""
_NJT_CLASS: Final = "torch.nested._internal.nested_tensor.NestedTensor"
_NJT_KEYWORDS: Final = frozenset(
    {"values", "offsets", "lengths", "_ragged_idx", "_metadata_cache", "requires_grad"}
)
"""The keywords ``NestedTensor.__reduce_ex__`` writes (torch 2.x): the constructor ignores any other."""
_NJT_CACHE_KEYS: Final = frozenset({"max_seqlen", "min_seqlen"})
"""What a jagged tensor's ``_metadata_cache`` holds: its longest and shortest sequence length, each kept as the
shape of an empty ``(length, 0)`` tensor."""
_NJT_STATE_GEOMETRY: Final = {
    "_values": "values",
    "_offsets": "offsets",
    "_lengths": "lengths",
    "_ragged_idx": "_ragged_idx",
    "_metadata_cache": "_metadata_cache",
}
"""Attributes of a jagged tensor its state may set again after the constructor: torch.save writes the very objects
the constructor was given (memo references), anything else swaps the parts its geometry was computed from."""
_NJT_DERIVED: Final = frozenset({"_size", "_strides"})
"""The geometry ``NestedTensor.__new__`` computes from its parts; ``__reduce_ex__`` drops it from the state (set
again, ``size()``/``stride()`` answer what the file says instead of what the parts hold)."""
_RNG_CTORS: Final = frozenset(
    {
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random._pickle.__randomstate_ctor",
    }
)
"""numpy's random-state reconstructors call what they are given: ``__bit_generator_ctor(cls)`` calls ``cls()``
when it is a class (a name string is looked up in numpy's own table), and ``__generator_ctor(name, ctor)`` and
``__randomstate_ctor(name, ctor)`` call ``ctor(name)`` (by default ``__bit_generator_ctor``). Those calls are
judged as any other (a class the allow-list admits by pattern only must not be called)."""
_NAME_RESOLVERS: Final = frozenset(
    {"pydoc.locate", "pkgutil.resolve_name", "torch.serialization._get_restore_location", "pydoc.resolve"}
)
_PICKLE_LOADERS: Final = frozenset(
    {
        "pickle.loads",
        "pickle.load",
        "pickle._loads",
        "pickle._load",
        "pickle.Unpickler",
        "pickle._Unpickler",
        "dill.loads",
        "dill.load",
        "dill._dill.loads",
        "cloudpickle.loads",
        "cloudpickle.load",
        "joblib.load",
        "joblib.numpy_pickle.load",
        "numpy.load",
        "numpy.loads",
        "numpy.lib.npyio.load",
        "numpy.core.numeric.loads",
        "torch.load",
        "torch.serialization.load",
        "torch.storage._load_from_bytes",
        "pandas.read_pickle",
        "pandas.io.pickle.read_pickle",
        "shelve.open",
    }
)

_PURE: Final = frozenset(
    {
        "operator.add",
        "operator.concat",
        "codecs.encode",
        "codecs.decode",
        "base64.b64decode",
        "base64.decodebytes",
        "base64.standard_b64decode",
        "binascii.unhexlify",
        "zlib.decompress",
        "gzip.decompress",
        "bz2.decompress",
        "lzma.decompress",
        "builtins.bytes",
        "builtins.bytearray",
        "io.BytesIO",
    }
)
_MODELLED: Final = (
    _IMPORTERS
    | _NAME_RESOLVERS
    | _PICKLE_LOADERS
    | _PURE
    | {
        "builtins.getattr",
        "operator.attrgetter",
        "operator.methodcaller",
        "operator.itemgetter",
        "functools.partial",
        "builtins.eval",
        "builtins.exec",
        "builtins.compile",
        "builtins.type",
        "dateutil.tz.tz.tzfile",
        "torch._utils._set_obj_state",
        "torch._utils._rebuild_parameter_with_state",  # its state goes to _set_obj_state
        "pyarrow.lib._restore_array",  # its lengths are checked against its buffers
        "numpy.core.numeric._frombuffer",  # tree node arrays are checked (see _node_array)
        *_REBUILD_FROM_TYPE,
        *_RNG_CTORS,
        "numpy.core._ufunc_reconstruct",
        "numpy.ma.core._mareconstruct",  # builds the class it is handed (see _CLASS_TAKERS)
        "copyreg._reconstructor",  # its base argument's __init__ runs (see _call_modelled)
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "operator.getitem",
        "types.SimpleNamespace",  # SimpleNamespace(mapping) sets attributes (see _call_modelled)
        "torch.fx.graph_module.reduce_graph_module",  # its code is judged (see _VM._fx_module)
        _REBUILD_NJT,  # its parts are checked against each other (see _VM._njt_rebuild)
        *_TORCH_ALLOCATORS,  # their sizes and keywords are judged (see _VM._torch_allocation)
    }
)
_SCHEDULER_DATA: Final = frozenset(
    {
        "base_lrs",
        "last_epoch",
        "_step_count",
        "_is_initial",
        "_get_lr_called_within_step",
        "_last_lr",
        "verbose",
    }
)
"""The attributes of a ``LambdaLR``/``MultiplicativeLR`` besides ``optimizer`` and ``lr_lambdas`` (torch 2.13's
``LRScheduler.__init__`` and ``_update_lr``; ``verbose`` in torch before 2.7): numbers and lists of learning rates,
read and multiplied, never called. Any other key could stand in front of a method ``step()`` calls."""
_COPYREG_BUILDERS: Final = frozenset(
    {"copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"}
)
"""``copyreg`` helpers that create an instance of the class given as their first argument (``_reconstructor`` also
calls its second argument's ``__new__`` and ``__init__``): pickle always names those classes (GLOBAL)."""
_SUBSCRIPT_INERT: Final = (str, bytes, tuple, list)


def _canon(ref: _Ref) -> str:
    return ref.canon


def _short(value: Any, depth: int = 0) -> Any:
    """A small, JSON-friendly description of a value for evidence (bounded in size and depth)."""
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "..."
    if isinstance(value, bytes):
        return {"bytes": len(value), "head": value[:32].hex()}
    if isinstance(value, _Ref):
        return value.name
    if isinstance(value, _Module):
        return f"<module {value.module}>"
    if isinstance(value, _Call):
        return f"<result of {_describe(value.func)}>"
    if isinstance(value, _Big):
        return {value.kind: value.size, "head": value.prefix[:32].hex()}
    if isinstance(value, bool | float) or value is None:
        return value
    if isinstance(value, int):
        return value if value.bit_length() <= 64 else "<big int>"
    if isinstance(value, tuple | list):
        return [_short(v, depth + 1) for v in value[:8]] if depth < 3 else "..."
    return type(value).__name__.lstrip("_").lower()


def _describe(func: Any, depth: int = 0) -> str:
    if depth > 4:
        return "..."
    if isinstance(func, _Ref):
        return func.name
    if isinstance(func, _Wrapper):
        return f"{func.kind}({_describe(func.target, depth + 1)})"
    if isinstance(func, _Call):
        return f"<result of {_describe(func.func, depth + 1)}>"
    if isinstance(func, _Module):
        return f"<module {func.module}>"
    if isinstance(func, _BunchNew):
        return f"{func.cls.name}.__new__"
    return type(func).__name__.lstrip("_").lower()


_MAX_UNWRAP: Final = 32
_BYTE_VALUES: Final = frozenset({bytes, bytearray, _Big})
"""How the VM holds a bytearray (as bytes; a large one as a ``_Big``): stores into one are judged (see
``_VM._buffer_store``)."""
_IDENTITY_BUILDERS: Final = frozenset({"builtins.bytes", "builtins.bytearray", "io.BytesIO"})
"""String builders of ``_VM._pure`` that return their argument (nothing new is made)."""
_IMPORT_OPS: Final = frozenset({"GLOBAL", "STACK_GLOBAL"})
_DIRECT_CALLS: Final = frozenset({"REDUCE", "OBJ"})
"""Opcodes that call the object taken from the stack itself (so each consumes one copy of it)."""
_MAX_DISTINCT_FINDINGS: Final = 1000


def _stored_head(value: str) -> bool:
    """Whether a string of at least ``_STORED_MIN`` characters may hold a stored pickle (see ``_stored_pickle``)."""
    return value[:2] in _STORED_TEXT_HEADS or value[:1] in _STORED_TEXT_FIRSTS


def _stored_pickle(value: Any) -> tuple[bytes, str] | str | None:
    """The pickle a string or bytes constant holds as data, and how it is encoded (raw, latin-1 text, hex,
    base64, base32, base85 or Ascii85, each possibly zlib-, gzip-, bzip2-, LZMA- or zstd-compressed); a reason text
    when it holds one that cannot be decoded within the bounds; None when it is not one."""
    if type(value) is str:
        return _stored_text(value, "")
    data = bytes(value)
    found = _stored_bytes(data, "bytes")
    if found is None and data.isascii():  # text kept as bytes: base64.b64decode(b"gASV...") takes it too
        return _stored_text(data.decode("ascii"), " in bytes")
    return found


_B64_SKIPPED_PATTERN: Final = re.compile(_B64_SKIPPED_RE)
_NOT_BASE64_HEADS: Final = (
    _STORED_HEADS["hex"] | _STORED_HEADS["Ascii85"] | _STORED_HEADS["base32"] | _STORED_HEADS["base85"]
)
_COMPRESSED_FIRSTS: Final = frozenset(c[0] for c in _STORED_COMPRESSED)


def _stored_text_may(value: str, kept: str) -> bool:
    """Whether ``_stored_text_full`` may find anything in a string: False only when none of its decodings can
    yield what ``_stored_bytes`` takes. The prefilter of every string constant of at least ``_STORED_MIN``
    characters whose head is a stored pickle's (2,000,000 vocabulary keys of a fitted vectorizer): the latin-1,
    hex, Ascii85, base32 and base85 tries keep their own gates (their heads are rare in names), and base64, the
    one most names pass (``feature_...`` decodes to ``}``), is decoded here as the full check decodes it and kept
    only when the bytes may be a stored pickle: a compressed stream's or a protocol 2+ header's first byte, more
    than 64 KiB, or a STACK_GLOBAL or two newlines (a GLOBAL/INST names its callable on two lines)."""
    first = value[0]
    if not kept and ord(first) in _PICKLE_OPENERS and (first == "\x80" or "\n" in value or "\x93" in value):
        return True
    if value.isascii() and value.isalnum():
        if value[:2] in _NOT_BASE64_HEADS:
            return True
        alphabet = value
    else:
        if value.lstrip()[:2] in _NOT_BASE64_HEADS:
            return True
        alphabet = value.replace("-", "+").replace("_", "/")  # URL-safe, as the full check reads it
        if not (alphabet.isascii() and alphabet.replace("+", "").replace("/", "").isalnum()):
            alphabet = _B64_SKIPPED_PATTERN.sub(
                "", alphabet
            )  # what base64 skips (the regex only when needed)
    try:  # the first byte is the one the full check tests on the first four characters
        data = binascii.a2b_base64(alphabet + "=" * (-len(alphabet) % 4))
    except ValueError:  # binascii.Error
        return False
    return len(alphabet) >= 4 and (
        data[0] == 0x80
        or data[0] in _COMPRESSED_FIRSTS
        or len(data) > 1 << 16
        or (data[0] in _STORED_FIRST_BYTES and (b"\x93" in data or data.count(b"\n") >= 2))
    )


def _stored_text(value: str, kept: str) -> tuple[bytes, str] | str | None:
    """``_stored_text_full`` behind its exact prefilter ``_stored_text_may``."""
    return _stored_text_full(value, kept) if _stored_text_may(value, kept) else None


def _stored_text_full(value: str, kept: str) -> tuple[bytes, str] | str | None:
    """``_stored_pickle`` of a string, decoded as each encoding its characters allow, as the decoders of
    ``base64``, ``binascii`` and ``bytes.fromhex`` take them: base64 skips what is not in its alphabet and its
    padding is restored; whitespace is dropped elsewhere. Only a string whose first bytes decode to a pickle's
    (or a compressed stream's) opening is decoded whole."""
    import base64
    import binascii

    tries: list[tuple[str, Callable[[str], bytes], str]] = []
    first = value[0]
    if not kept and ord(first) in _PICKLE_OPENERS and (first == "\x80" or "\n" in value or "\x93" in value):
        tries.append(("latin-1 text", lambda v: v.encode("latin-1", "replace"), value))
    plain = value.isascii() and value.isalnum()  # str.isalnum takes letters base64 rejects (ValueError)
    head = value[:2] if plain else value.lstrip()[:2]
    if head in _STORED_HEADS["hex"] or head in _STORED_HEADS["Ascii85"]:
        compact = (
            value if plain else re.sub(_WHITESPACE_RE, "", value)
        )  # fromhex and a85decode skip whitespace
        if head in _STORED_HEADS["hex"] and re.fullmatch(_HEX_RE, compact):
            tries.append(("hex", bytes.fromhex, compact))
        a85 = compact[2:-2] if compact.startswith("<~") and compact.endswith("~>") else compact
        if (
            head in _STORED_HEADS["Ascii85"]
            and re.fullmatch(_A85_RE, a85)
            and _opens(base64.a85decode, a85[:5])
        ):
            tries.append(("Ascii85", base64.a85decode, a85))
    if (
        head in _STORED_HEADS["base32"]
        and re.fullmatch(_B32_RE, value)
        and _opens(base64.b32decode, value[:8])
    ):
        tries.append(("base32", lambda v: base64.b32decode(v + "=" * (-len(v) % 8)), value))
    if (
        head in _STORED_HEADS["base85"]
        and re.fullmatch(_B85_RE, value)
        and _opens(base64.b85decode, value[:5])
    ):
        tries.append(("base85", base64.b85decode, value))
    quad = (
        value[:4]
        if plain
        else re.sub(_B64_SKIPPED_RE, "", value[:64])[:4].replace("-", "+").replace("_", "/")
    )
    if len(quad) == 4 and binascii.a2b_base64(quad)[0] in _STORED_FIRST_BYTES:
        alphabet = value if plain else re.sub(_B64_SKIPPED_RE, "", value).replace("-", "+").replace("_", "/")
        tries.append(("base64", lambda v: binascii.a2b_base64(v + "=" * (-len(v) % 4)), alphabet))
    for how, decode, text in tries:
        try:
            data = decode(text)
        except (ValueError, binascii.Error):
            continue
        found = _stored_bytes(data, how + kept)
        if found is not None:
            return found
    return None


def _opens(decode: Callable[[str], bytes], head: str) -> bool:
    """Whether the first characters of an encoded string decode to a byte a pickle or a compressed stream may open
    with (so that the whole is worth decoding)."""
    try:
        data = decode(head)
    except ValueError:  # binascii.Error is a ValueError
        return False
    return data[:1] != b"" and data[0] in _STORED_FIRST_BYTES


def _stored_bytes(data: bytes, how: str) -> tuple[bytes, str] | str | None:
    """A stored pickle in ``data`` as it is or decompressed (see ``_stored_pickle``)."""
    method = _stored_compression(data)
    if method:
        inflated = _stored_inflate(data, method, 64)
        if inflated is None or not inflated[:1] or inflated[0] not in _PICKLE_OPENERS:
            return None
        inflated = _stored_inflate(data, method, _STORED_INFLATE_MAX)
        if inflated is None:
            return None
        if len(inflated) >= _STORED_INFLATE_MAX:
            return f"a pickle stored as {how} ({method}) inflates to more than {_STORED_INFLATE_MAX} bytes"
        data, how = inflated, f"{how}, {method}"
    return (data, how) if _looks_pickle(data) else None


def _stored_compression(data: bytes) -> str:
    head = data[:6]
    if head[:2] in (b"x\x9c", b"x\xda", b"x\x01", b"x^"):
        return "zlib"
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh":
        return "bzip2"
    if head == b"\xfd7zXZ\x00" or head[:3] == b"]\x00\x00":
        return "lzma"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return ""


def _stored_inflate(data: bytes, method: str, limit: int) -> bytes | None:
    """At most ``limit`` bytes (and one more when there are more) of a compressed stream; None when it is not
    one."""
    import bz2
    import lzma
    import zlib

    try:
        if method in ("zlib", "gzip"):
            z = zlib.decompressobj(31 if method == "gzip" else 15)
            out = z.decompress(data, limit)
            return out + b"\x00" if z.unconsumed_tail else out
        if method == "zstd":
            import io

            import zstandard

            # a stream reader: bounded output whatever the frame declares; frames that follow are read too,
            # as zstandard.decompress and pandas' reader take them
            try:
                with zstandard.ZstdDecompressor().stream_reader(
                    io.BytesIO(data), read_across_frames=True
                ) as r:
                    return r.read(limit + 1)
            except zstandard.ZstdError:
                return None
        d: Any = bz2.BZ2Decompressor() if method == "bzip2" else lzma.LZMADecompressor()
        more: bytes = d.decompress(data, limit)
        return more + b"\x00" if len(more) >= limit and not d.eof else more
    except (zlib.error, OSError, lzma.LZMAError, EOFError, ValueError):
        return None


_GLOBAL_REF: Final = rb"[ci][A-Za-z_][\w.]*\n[\w.]+\n"


def _looks_pickle(data: bytes) -> bool:
    """Whether bytes may be a pickle that calls something: a protocol 2+ header, or another opening opcode and
    a name to call (GLOBAL, INST or STACK_GLOBAL) somewhere; data past 64 KiB is handed to the analysis as it
    is (it ends at the first opcode a loader rejects)."""
    if len(data) < 2 or data[0] not in _PICKLE_OPENERS:
        return False
    if data[0] == 0x80:
        if data[1] > 5:
            return False
        if data[1] >= 2:
            return True
    return len(data) > 1 << 16 or b"\x93" in data or re.search(_GLOBAL_REF, data) is not None


class _VM:
    """Runs one pickle stream (from PROTO to STOP) over a shared reader."""

    def __init__(
        self,
        reader: _Reader,
        coll: _Collector,
        budget: _Budget,
        *,
        depth: int,
        joblib: bool,
        origin: str,
        prefix: bool = False,
        ext_stops: bool = False,
    ) -> None:
        self.r = reader
        self.coll = coll
        self.budget = budget
        self.depth = depth
        self.joblib = joblib
        self.origin = origin  # "" for the top stream, else how it was reached (for evidence)
        self.proto = 0
        self.frame_end = -1
        self.calls = 0
        self.pending: list[_Ref] = []
        self.careful = False  # a getattr is pending: copies taken from the memo are counted
        # strings this reading took from the memo (by id, the string held so that the id stays its own), kept in a
        # plain reading of joblib array data only (see _op_stack_global); such readings run careful
        self.fetched: dict[int, str] | None = None
        # Only what a loader runs before its first error counts (bytes that are something else to the format
        # that owns them); a name whose module no model environment has is not judged (see _global).
        self.prefix = prefix
        # EXT ends the reading as a stock loader's empty extension registry does (see _ext)
        self.ext_stops = ext_stops or prefix
        self.judge_calls = prefix  # a name left unjudged in a prefix reading is judged when it is called
        self.inherited: frozenset[int] = frozenset()  # ids of the values a continued reading started with
        self.plain_read = False  # the plain-unpickler reading of this stream's joblib array data was followed
        # a stream a loader reads as a pickle (see _analyze_reader) reads on past an opcode that crosses its FRAME's
        # end; fragments searched in other bytes stop there, as before (see _frame_straddle)
        self.read_on = False
        self.imported: set[str] = (
            set()
        )  # modules of the names this reading resolved (the loader imported them)
        self.planted = False  # some instance's state stored a callable as an attribute (see _plant)
        self._pair_cache: dict[int, tuple[Any, _Dict]] = {}  # see _pairs
        # mappings _plant searched, by id (held: ids stay): how many items, and the (key, value) pairs it found
        self._plant_seen: dict[int, tuple[_Dict, list[int], list[tuple[str, Any]]]] = {}
        self._forward_seen: dict[tuple[int, str], Any] = {}  # states _forwarded searched (held: ids stay)
        # items _forwarded searched, and how far
        self._forward_items: dict[tuple[int, str], tuple[_Dict, int]] = {}
        # items not kept of lists filled past _MAX_CONTAINER, by id (the list is held so that its id stays its own)
        self.dropped: dict[int, tuple[list[Any], int]] = {}
        # scikit-learn tree node arrays built in this stream, by id of the value (held so the id stays its own):
        # their check, or why they could not be read
        self.node_arrays: dict[int, tuple[Any, _NodeCheck | str]] = {}
        # every array built in this stream, by id of the value: (value, dtype, shape, data) for checks of the
        # objects that take them (see _binary_tree)
        self.arrays: dict[int, tuple[Any, Any, Any, Any]] = {}
        # ids of the arrays above whose memory may not be in C order (a state saying Fortran order, protocol 5's
        # 'F' or transposed 'K'): a check that reads rows of a 2-D array reads them in C order, so it fails closed
        self.fortran: set[int] = set()
        self.result: Any = _UNKNOWN  # what STOP returns
        # the functools.partial objects a torch.ao.quantization _PartialWrapper holds, by id (held so the id stays
        # its own): a later BUILD on one that changes what it calls is judged again (see _partial_wrapper_state)
        self.quant_partials: dict[int, _Wrapper] = {}
        # LambdaLR/MultiplicativeLR instances made without their constructor and partials over transformers' schedule
        # functions, by id of the object (held by the record), judged at the end (see _lambda_schedulers)
        self.lr_made: dict[int, _LrScheduler | _LrPartial] = {}
        # ExportedProgram BUILD states, checked when the stream ends (their lists may be appended to later)
        self.exported: list[tuple[Any, int]] = []
        # objects NEWOBJ made of a class whose call hands back a cached instance: these are new (see _shared_target)
        self.fresh: dict[int, _Call] = {}
        # lists SETITEM(S) wrote into (list.__setitem__ replaces an item the VM still shows), by id (held)
        self.list_stores: dict[int, list[Any]] = {}
        # mappings a built object keeps as its own and the check that judged them, by id (held): numpy's dtype
        # fields, a functools.partial's keywords and __dict__. A later store into one (through the memo) changes
        # the object, so the check runs again (see _kept_store)
        self.kept: dict[int, tuple[_Dict, Callable[[int], None]]] = {}
        # numpy dtypes and arrays taken from the memo (or duplicated) before their BUILD, by id (held): whatever took
        # the copy may rely on what the BUILD then changes (see _rebuilt)
        self.reused: dict[int, _Call] = {}
        # scikit-learn trees and estimators an estimator holds that were not yet given their state when its
        # n_features_in_ was checked, by id (held), with that feature count (see _feature_walk)
        self.features_pending: dict[int, tuple[_Call, int]] = {}
        # lists of trees or estimators an estimator keeps (its estimators_, _predictors), by id (held), with its
        # feature count: a later APPEND(S) or SETITEM(S) on one (through the memo) adds what predict then runs
        self.feature_lists: dict[int, tuple[list[Any], int]] = {}
        # lists a check of trusted state read (a SphericalVoronoi's regions), by id (held), with the class whose
        # state holds them: a later APPEND(S) or SETITEM(S) on one (through the memo) changes what its check judged
        self.state_lists: dict[int, tuple[list[Any], str]] = {}
        # histogram predictors not yet given their state when their estimator's bin mapper was read, by id (held),
        # with the mapper's feature count and whether it knows a categorical feature (see _known_categories_problem)
        self.categories_pending: dict[int, tuple[_Call, tuple[int, bool]]] = {}
        # numpy arrays allocated with elements and no data (ndarray.__new__ without a buffer, _reconstruct of a
        # non-empty shape), by id (held), with the offset: unless a BUILD fills one, it holds whatever the loading
        # process's memory held (see _unfilled_arrays)
        self.unfilled: dict[int, tuple[_Call, int]] = {}

    # -- findings --

    def _ev(self, extra: dict[str, Any]) -> dict[str, Any]:
        if self.origin:
            extra["nested_in"] = self.origin
        return extra

    def _judge(self, ref: _Ref, off: int, how: str, written_as: str | None = None) -> None:
        """Record ``ref`` as reached and raise a finding unless allow-listed."""
        name = ref.name
        self.coll.callables.add(name)
        if ref.module == "?":
            self.coll.hit(
                RULE_DYNAMIC_GLOBAL,
                Severity.HIGH,
                name,
                f"callable whose module is computed at load time: {name}",
                off,
                self._ev({"how": how}),
            )
            if ref.qual == "?":
                return
        c = self.coll.classify(ref.module, ref.qual)
        if c.allowed:
            if c.by_pattern:
                ref.by_pattern = True
                ref.plain = False
            elif ref.canon.startswith("transformers.") and model_output_class(ref.canon):
                ref.plain = False  # its call is modelled (_model_output_call)
            elif ref.canon in _ENUM_CLASSES or shared_result(ref.canon) == "member":
                ref.plain = False  # a call with other than one argument is reported (_enum_functional)
            return
        if c.rule_id == RULE_UNKNOWN_CLASS:
            # Instantiating it by NEWOBJ + BUILD is how user objects are pickled; calling it with arguments
            # (REDUCE/OBJ/INST) runs its constructor on pickle data, which _call reports as HIGH.
            ref.user_class = True
            ref.plain = False
        assert c.rule_id is not None
        assert c.severity is not None
        evidence: dict[str, Any] = {"how": how, "category": c.category or "not-allow-listed"}
        canon = _canon(ref)
        if canon != name:
            evidence["canonical"] = canon
        if written_as is not None:
            evidence["written_as"] = written_as
        hit = (c.rule_id, c.severity, name, f"{name}: {c.reason}", off, self._ev(evidence))
        if canon in _DEFERRED and how in _IMPORT_OPS and c.rule_id != RULE_DENIED:
            # getattr only looks a name up; what it finds is judged where it is called (_getattr). Tensor
            # storages pickled by the plain pickle module are torch.load calls on a legacy torch file, judged by
            # that file (_benign_storage). The import is reported unless every copy of it is called directly
            # and the call is benign.
            ref.pending = [1, 0, hit]
            self.pending.append(ref)
            self.careful = True
            return
        self.coll.hit(*hit)

    def _judge_called(self, ref: _Ref, off: int, how: str) -> None:
        """Judge a name the reading of another format's bytes left unjudged (``_global``), now that it is called
        or instantiated: a module no model environment has stops a loader at the import, one that is installed
        (hydra, mmengine, absl ...) runs what the pickle asks."""
        ref.unjudged = False
        if ref.guessed:
            if not self.coll.classify(ref.module, ref.qual).allowed:
                self.coll.unverified.append(
                    f"the plain-unpickler reading of joblib array data calls {_short(ref.name)}, a name of a "
                    f"module the scanner does not know paired from memo entries at offset {off}: whether a loader "
                    "runs it cannot be told"
                )
            return
        self._judge(ref, off, f"{how} in bytes read as opcodes")

    def _judge_handed(self, values: tuple[Any, ...], off: int, how: str) -> None:
        """Judge the names a reading of another format's bytes left unjudged (``_global``) that it hands to a call,
        a constructor or an object's state, down a few levels of tuples, lists and dicts: allowed callables call
        what they are handed (``enum.Enum('E', [('__init__', f), ('A', x)])`` runs ``f(member, x)``, a
        ``defaultdict`` factory runs when ``dict(ChainMap(...))`` reads a missing key, an object's planted method
        when a library calls it), so a name handed on may run as surely as one called."""
        todo: list[tuple[Any, int]] = [(v, 0) for v in values[:64]]
        seen = 0
        while todo and seen < 256:
            value, level = todo.pop()
            seen += 1
            kind = type(value)
            if kind is _Ref:
                if value.unjudged:
                    self._judge_called(value, off, how)
            elif level >= 4:
                continue
            elif kind is tuple or kind is list:
                todo.extend((v, level + 1) for v in value[:64])
            elif kind is _Dict:
                todo.extend((v, level + 1) for pair in value.items[:64] for v in pair)
            elif kind is _Call:
                todo.append((value.args, level + 1))
                if value.state is not None:
                    todo.append((value.state, level + 1))
                if value.items is not None:
                    todo.append((value.items, level + 1))
            elif kind is _Wrapper:
                todo.append((value.target, level + 1))
                todo.append((tuple(value.args), level + 1))

    def _settle(self) -> None:
        """Report each pending ``getattr`` unless every copy of it that reached the stack (the import, each
        memo GET and DUP, each call result that returned it) was called directly (REDUCE, OBJ) with a
        constant name that resolved to an allow-listed callable. A copy that went anywhere else (into a
        container, a partial, a BUILD state, a call's arguments, left on the stack, popped) may be called
        later with names the analysis never sees, so then the import itself is the finding."""
        self._lambda_schedulers()
        for ref in self.pending:
            copies, direct, hit = ref.pending or (0, 0, None)
            if hit is not None and copies != direct:
                self.coll.hit(*hit)
            ref.pending = None
        self.pending.clear()

    # -- main loop --

    def _frame_straddle(self, region: bytes) -> None:
        """An opcode ran past the end of its FRAME: the two loads read on differently (CPython issue 154848). A file
        load that has to refill its buffer drops the frame's rest and reads the argument from the bytes after it, so
        it runs ``region`` as opcodes: searched here for the pickles in it. ``pickle.loads``, and a file load whose
        buffer already holds those bytes (any small file), read on: the caller goes on with this reading, so what
        it then runs with the stack and memo built before the frame's end is analysed too. The target stays
        unverified (which reading a load takes depends on its buffer), with the payload of either reading named."""
        off = self.frame_end
        where = f" (in {self.origin})" if self.origin else ""
        self.coll.unverified.append(f"malformed pickle at offset {off}{where}: {_FRAME_STRADDLE}")
        self.coll.hit(
            RULE_MALFORMED,
            Severity.MEDIUM,
            "malformed",
            f"malformed pickle: {_FRAME_STRADDLE}; both readings were analysed",
            off,
            {"error": _FRAME_STRADDLE, "calls_before": self.calls}
            | ({"nested_in": self.origin} if self.origin else {}),
        )
        if region:
            reader = _Reader(io.BytesIO(region), off + len(region))
            reader.base = off  # offsets of what it finds are the file's
            _resync(reader, 0, self.coll, self.budget, self.depth, self.origin)

    def run(self, state: tuple[list[Any], list[list[Any]], _Memo] | None = None) -> None:
        """Run to STOP; ``state`` (stack, mark stack, memo) continues another reading of the same stream."""
        r = self.r
        stack: list[Any]
        meta: list[list[Any]]
        memo: _Memo
        stack, meta, memo = state if state is not None else ([], [], [])
        if state is not None:
            held = memo.values() if type(memo) is dict else memo
            self.inherited = frozenset(map(id, [*stack, *(x for m in meta for x in m), *held]))
        budget = self.budget
        max_ops = budget.limits.max_opcodes
        ops = budget.opcodes
        next_check = min(ops + _TIME_CHECK, max_ops + 1)
        unpack_from = struct.unpack_from
        append = stack.append
        dispatch = _DISPATCH
        call = self._call
        text = self._text
        stored_heads = _STORED_TEXT_HEADS
        stored_firsts = _STORED_TEXT_FIRSTS
        buf, p, n = r.buf, r.p, r.n
        fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
        text_bytes = 0
        put_items = 0  # items put into tuples and lists since the last check (see _MAX_HELD_ITEMS)
        careful = self.careful
        prefix = self.prefix
        try:
            while True:
                if p >= fstop:
                    # the first opcode at or past the end of the current frame: CPython's pickler ends frames at
                    # opcode boundaries, and an argument running past the frame's end is read differently by a
                    # file load (the frame's rest is dropped) and an in-memory load (read on), so each runs other
                    # opcodes (CPython issue 154848)
                    if r.base + p > self.frame_end:
                        # what a file load reads as opcodes from the frame's end on, read here as an argument
                        region = bytes(buf[max(0, self.frame_end - r.base) : p])
                        if prefix or not self.read_on:
                            raise _MalformedError(_FRAME_STRADDLE, self.frame_end, region)
                        # the reading that goes on (pickle.loads, and pickle.load of a file whose bytes are already
                        # buffered) runs what follows with the stack and memo built so far: analysed by going on
                        self._frame_straddle(region)
                    self.frame_end = -1
                    fstop = _NO_FRAME
                if p + 16 > n:
                    # Keep at least 16 bytes buffered so that fixed-size arguments can be sliced directly.
                    if p > n:
                        raise _TruncatedError("pickle truncated inside an opcode argument", r.base + n)
                    r.p = p
                    r.fill(16)
                    buf, p, n = r.buf, r.p, r.n
                    fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
                    if p >= n:
                        raise _TruncatedError("pickle truncated: no STOP opcode", r.tell())
                op = buf[p]
                p += 1
                ops += 1
                if ops >= next_check:
                    budget.opcodes = ops
                    if ops > max_ops:
                        raise _LimitError("max_opcodes", f"more than {max_ops} opcodes")
                    if time.monotonic() > budget.deadline:
                        raise _LimitError(
                            "max_seconds", f"analysis took longer than {budget.limits.max_seconds}s"
                        )
                    if len(stack) > _MAX_STACK or len(meta) > _MAX_STACK:
                        raise _LimitError("max_stack", f"pickle stack deeper than {_MAX_STACK} items")
                    if len(memo) > _MAX_MEMO:
                        raise _LimitError("max_memo", f"more than {_MAX_MEMO} memo entries")
                    budget.held_items += put_items
                    put_items = 0
                    _check_held(budget)
                    budget.text_bytes += text_bytes
                    text_bytes = 0
                    if budget.text_bytes > _MAX_TEXT_BYTES:
                        raise _LimitError("max_memory", f"more than {_MAX_TEXT_BYTES} bytes of strings held")
                    next_check = min(ops + _TIME_CHECK, max_ops + 1)
                # Hot opcodes inline (arguments sliced from the buffer), found by a small decision tree on the
                # opcode value; everything else goes through the dispatch table.
                if op < 0x68:
                    if op < 0x4E:
                        if op < 0x47:
                            if op == 0x28:  # MARK
                                meta.append(stack)
                                stack = []
                                append = stack.append
                                continue
                            elif op == 0x29:  # EMPTY_TUPLE
                                append(())
                                continue
                            elif op == 0x2E:  # STOP
                                r.p = p
                                budget.opcodes = ops
                                budget.held_items += (
                                    put_items  # a last big tuple counts before the next stream
                                )
                                put_items = 0
                                _check_held(budget)
                                if not stack:  # CPython pops the top above the last mark; leftovers are legal
                                    raise _MalformedError("STOP on an empty stack", r.tell() - 1)
                                if self.frame_end > r.tell():
                                    raise _MalformedError(
                                        "FRAME announced more bytes than the pickle holds", r.tell() - 1
                                    )
                                self.result = stack[-1]
                                return
                        elif op == 0x4B:  # BININT1
                            append(buf[p])
                            p += 1
                            continue
                        elif op == 0x4A:  # BININT
                            append(unpack_from("<i", buf, p)[0])
                            p += 4
                            continue
                        elif op == 0x47:  # BINFLOAT
                            append(unpack_from(">d", buf, p)[0])
                            p += 8
                            continue
                        elif op == 0x4D:  # BININT2
                            append(unpack_from("<H", buf, p)[0])
                            p += 2
                            continue
                    elif op == 0x52:  # REDUCE
                        args = stack.pop()
                        func = stack[-1]
                        if (
                            type(func) is _Ref
                            and func.plain
                            and not prefix  # names a prefix reading left unjudged are judged when handed on
                            and type(args) is tuple
                            and not (self.planted and _planted_in(args, func))
                            and not (
                                careful and args and type(args[0]) is _Ref and args[0].pending is not None
                            )
                            # list(x), dict(x), str(x) ... of a rebuilt instance: see _VM._protocol_args
                            and not (args and func.canon in _PROTOCOL_TAKERS and _Call in map(type, args))
                            # numpy.dtype(d) of a dtype: d itself (see _VM._call_modelled)
                            and not (args and type(args[0]) is _Call and func.canon in _DTYPE_CTORS)
                            # a numpy function given an array past its first argument may write into it
                            and not (len(args) > 1 and func.canon in _NUMPY_CANON)
                        ):
                            self.calls += 1
                            if args and type(args[0]) is _Storage and func.canon in _TENSOR_REBUILDS:
                                self._tensor_geometry(func.canon, args, r.base + p - 1)
                            elif func.canon in _SPARSE_REBUILDS:
                                self._sparse_indices(args, r.base + p - 1)
                            stack[-1] = made = _Call(func, args)
                            alloc = _ARRAY_ALLOCATORS.get(func.canon)
                            if alloc is not None and len(args) > alloc[0] and args[alloc[0]] != (0,):
                                # numpy.ndarray((n,), "f8") by REDUCE allocates as _call's callers do; numpy's
                                # pickles allocate (0,) for every array and fill it by BUILD
                                self._allocation(func.canon, made, args, None, r.base + p - 1)
                        else:
                            r.p = p
                            stack[-1] = call(func, args, r.base + p - 1, "REDUCE")
                            buf, p, n = r.buf, r.p, r.n
                            fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
                        continue
                    elif op == 0x58:  # BINUNICODE
                        k = unpack_from("<I", buf, p)[0]
                        text_bytes += min(k, _KEEP_STR)
                        if k <= _KEEP_STR and p + 4 + k <= n:
                            append(text(buf[p + 4 : p + 4 + k]))
                            p += 4 + k
                            if k >= _STORED_MIN and (
                                stack[-1][:2] in stored_heads or stack[-1][:1] in stored_firsts
                            ):
                                r.p = p
                                self._stored(stack[-1], r.base + p - k)
                                buf, p, n = r.buf, r.p, r.n
                                fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
                        else:
                            r.p = p + 4
                            append(self._payload_text(k))
                            buf, p, n = r.buf, r.p, r.n
                            fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
                        continue
                    elif op == 0x51:  # BINPERSID: the loader's persistent_load decides (torch: storages)
                        stack[-1] = self._persistent(stack[-1])
                        continue
                    elif op == 0x4E:  # NONE
                        append(None)
                        continue
                    elif op == 0x5D:  # EMPTY_LIST
                        append([])
                        continue
                    elif op == 0x65:  # APPENDS
                        items = stack
                        stack = meta.pop()
                        append = stack.append
                        target = stack[-1]
                        if type(target) is list:
                            room = _MAX_CONTAINER - len(target)
                            if room >= len(items):
                                target.extend(items)
                                put_items += len(items)
                            else:
                                target.extend(items[: max(room, 0)])
                                put_items += max(room, 0)
                                self._drop(target, len(items) - max(room, 0))
                            if self.feature_lists:
                                self._feature_list_store(target, r.base + p - 1)
                            if self.state_lists:
                                self._state_list_store(target, "APPENDS", r.base + p - 1)
                        elif type(target) is _Call or type(target) is _Ref or type(target) is _Module:
                            self._item_on(target, "APPENDS", r.base + p - 1)
                        elif type(target) in _BYTE_VALUES:
                            self._buffer_store("APPENDS", r.base + p - 1)
                        continue
                elif op < 0x80:
                    if op == 0x72:  # LONG_BINPUT
                        i = unpack_from("<I", buf, p)[0]
                        if i == len(memo) and type(memo) is list:  # the next entry, as picklers number them
                            memo.append(stack[-1])
                        elif i < len(memo) or type(memo) is dict:
                            memo[i] = stack[-1]
                        else:
                            memo = _memo_put(memo, i, stack[-1])
                        p += 4
                        continue
                    elif op == 0x68:  # BINGET
                        value = memo[buf[p]]
                        append(value)
                        p += 1
                        if careful:
                            if type(value) is _Ref and value.pending is not None:
                                value.pending[0] += 1
                            elif type(value) is str and self.fetched is not None:
                                self.fetched[id(value)] = value
                        if type(value) is _Call and value.state is None:
                            self._reuse(value)
                        continue
                    elif op == 0x71:  # BINPUT
                        i = buf[p]
                        if i == len(memo) and type(memo) is list:  # the next entry, as picklers number them
                            memo.append(stack[-1])
                        elif i < len(memo) or type(memo) is dict:
                            memo[i] = stack[-1]
                        else:
                            memo = _memo_put(memo, i, stack[-1])
                        p += 1
                        continue
                    elif op == 0x74:  # TUPLE
                        items = stack
                        stack = meta.pop()
                        append = stack.append
                        append(tuple(items))
                        put_items += len(items)
                        continue
                    elif op == 0x6A:  # LONG_BINGET
                        value = memo[unpack_from("<I", buf, p)[0]]
                        append(value)
                        p += 4
                        if careful:
                            if type(value) is _Ref and value.pending is not None:
                                value.pending[0] += 1
                            elif type(value) is str and self.fetched is not None:
                                self.fetched[id(value)] = value
                        if type(value) is _Call and value.state is None:
                            self._reuse(value)
                        continue
                    elif op == 0x7D:  # EMPTY_DICT
                        append(_Dict())
                        continue
                    elif op == 0x75:  # SETITEMS
                        items = stack
                        stack = meta.pop()
                        append = stack.append
                        if len(items) % 2:
                            raise _MalformedError("SETITEMS with an odd number of items", r.base + p - 1)
                        target = stack[-1]
                        if type(target) is _Dict:
                            target.add_pairs(items)
                            if self.kept:
                                self._kept_store(target, r.base + p - 1)
                        elif type(target) is _Call:
                            filled = target.items
                            if filled is None:
                                filled = target.items = _Dict()
                            filled.add_pairs(items)
                            if self.kept:
                                self._kept_store(filled, r.base + p - 1)
                            self._item_on(target, "SETITEMS", r.base + p - 1)
                        elif type(target) is _Ref or type(target) is _Module:
                            self._item_on(target, "SETITEMS", r.base + p - 1)
                        elif type(target) is list:
                            self._list_store(target, items, r.base + p - 1)
                        elif type(target) in _BYTE_VALUES:
                            self._buffer_store("SETITEMS", r.base + p - 1)
                        elif isinstance(target, _Unknown) and self._is_array(target):
                            self._array_written(target, "SETITEMS", r.base + p - 1)
                        continue
                elif op == 0x8C:  # SHORT_BINUNICODE
                    k = buf[p]
                    text_bytes += k
                    if p + 1 + k <= n:
                        append(text(buf[p + 1 : p + 1 + k]))
                        p += 1 + k
                    else:
                        r.p = p + 1
                        append(text(r.read(k)))
                        buf, p, n = r.buf, r.p, r.n
                        fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
                    if k >= _STORED_MIN and (stack[-1][:2] in stored_heads or stack[-1][:1] in stored_firsts):
                        r.p = p
                        self._stored(stack[-1], r.base + p - k)
                        buf, p, n = r.buf, r.p, r.n
                        fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
                    continue
                elif op == 0x94:  # MEMOIZE: the next index is the count of entries (dense: the list's end)
                    if type(memo) is list:
                        memo.append(stack[-1])
                    else:
                        memo[len(memo)] = stack[-1]
                    continue
                elif op == 0x85:  # TUPLE1
                    stack[-1] = (stack[-1],)
                    continue
                elif op == 0x86:  # TUPLE2
                    b = stack.pop()
                    stack[-1] = (stack[-1], b)
                    continue
                elif op == 0x87:  # TUPLE3
                    c3 = stack.pop()
                    b = stack.pop()
                    stack[-1] = (stack[-1], b, c3)
                    continue
                elif op == 0x89:  # NEWFALSE
                    append(False)
                    continue
                elif op == 0x88:  # NEWTRUE
                    append(True)
                    continue
                # Not a hot opcode (every hot branch above ends with ``continue``).
                # PUT may turn the memo sparse, which swaps the list for a dict (see _memo_put): run keeps it
                if op == 0x70:
                    r.p = p
                    i = self._put_index(stack, r.base + p - 1)
                    memo = _memo_put(memo, i, stack[-1])
                    buf, p, n = r.buf, r.p, r.n
                    fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
                    continue
                handler = dispatch.get(op)
                if handler is None:
                    raise _MalformedError(f"invalid opcode 0x{op:02x}", r.base + p - 1)
                r.p = p
                budget.opcodes = ops
                stack = handler(self, stack, meta, memo, r.base + p - 1)
                append = stack.append
                buf, p, n = r.buf, r.p, r.n
                fstop = self.frame_end - r.base if self.frame_end >= 0 else _NO_FRAME
                careful = self.careful
        except IndexError:
            r.p = min(p, r.n)
            # Stack or buffer underflow: CPython rejects the stream at this opcode.
            if p >= n:
                raise _TruncatedError("pickle truncated inside an opcode argument", r.base + n) from None
            if op == 0x68 or op == 0x6A:  # BINGET/LONG_BINGET past the end of a dense (list) memo
                i = buf[p] if op == 0x68 else unpack_from("<I", buf, p)[0]
                raise _MalformedError(f"reference to undefined memo entry {i}", r.base + p - 1) from None
            raise _MalformedError(f"stack underflow at opcode 0x{op:02x}", r.base + p - 1) from None
        except KeyError as exc:
            r.p = p
            raise _MalformedError(f"reference to undefined memo entry {exc}", r.base + p - 1) from None
        except struct.error:
            r.p = n
            raise _TruncatedError("pickle truncated inside an opcode argument", r.base + n) from None
        finally:
            budget.opcodes = ops
            budget.held_items += put_items
            if self.pending or self.lr_made:
                self._settle()
            if self.exported:
                self._exported_programs()
            if self.result is not _UNKNOWN:
                self._fused_optimizers(self.result)
                self._fake_quants(self.result)
                self._saved_random_states(self.result)
            if self.unfilled:
                self._unfilled_arrays()

    # -- values --

    def _text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise _MalformedError("invalid UTF-8 in a string", self.r.tell()) from None

    def _payload_text(self, k: int) -> Any:
        self.budget.text_bytes += min(k, _KEEP_STR)
        if k <= _KEEP_STR:
            value = self._text(self.r.read(k))
            if k >= _STORED_MIN and _stored_head(value):
                self._stored(value, self.r.tell() - k)
            return value
        return self._big_text(k)

    def _skipped(self, kind: str, k: int, encoding: str = "utf-8") -> _Big:
        """Skip a payload of ``k`` bytes, remembering where it lies when the stream can read it again."""
        r = self.r
        start = r.tell()
        prefix = r.skip(k)
        if r.origin is None:
            return _Big(kind, k, prefix, encoding=encoding)
        return _Big(kind, k, prefix, r.stream, r.origin + start, encoding)

    def _big_text(self, k: int, encoding: str = "utf-8") -> _Big:
        big = self._skipped("str", k, encoding)
        head = big.prefix.decode("utf-8", "ignore")
        if head and _stored_head(head) and self._big_may_run(head):
            self.coll.unverified.append(
                f"a string of {k} bytes at offset {self.r.tell() - k} starts like a stored pickle and is too "
                "large to decode"
            )
        return big

    def _long_line_text(self, prefix: bytes, k: int, encoding: str) -> _Big:
        """A protocol-0 STRING or UNICODE line too long to keep (a model embedded as text): held as its first bytes,
        never read again (its escapes are not decoded, so a check that needs all of it fails closed). The escapes
        are not checked either: where a loader would stop at a bad one, the analysis goes on, which can only find
        more."""
        self.budget.text_bytes += _KEEP_STR
        head = prefix.decode("latin-1")
        if _stored_head(head) and self._big_may_run(head):
            self.coll.unverified.append(
                f"a string of {k} bytes at offset {self.r.tell() - k} starts like a stored pickle and is too "
                "large to decode"
            )
        return _Big("str", k, prefix, encoding=encoding)

    def _payload_bytes(self, k: int) -> Any:
        r = self.r
        if k <= _KEEP_BYTES_SMALL:
            self.budget.text_bytes += k
            value = r.read(k)
            if k >= _STORED_MIN and value[:1] in _STORED_BYTES_FIRSTS:
                self._stored(value, r.tell() - k)
            return value
        if r.n - r.p >= 1 or r.fill(1):
            first = r.buf[r.p]
            if (
                (
                    first in _PICKLE_FIRST or first == 0x50  # 'P' of a zip archive
                )
                and k <= _MAX_NESTED_BYTES
                and self.budget.kept_bytes + k <= _KEEP_BYTES_BUDGET
            ):
                self.budget.kept_bytes += k
                value = r.read(k)
                if value[:1] in _STORED_BYTES_FIRSTS:
                    self._stored(value, r.tell() - k)
                return value
        big = self._skipped("bytes", k)
        if big.prefix[:1] in _STORED_BYTES_FIRSTS and self._big_may_run(big.prefix):
            self.coll.unverified.append(
                f"bytes of {k} at offset {r.tell() - k} start like a stored pickle and are too large to analyse"
            )
        return big

    def _big_may_run(self, prefix: str | bytes) -> bool:
        """Whether the first bytes of a constant too large to keep decode to the start of a stored pickle with a
        protocol 2+ header that may run something (a longer opening of another kind is analysed only when the
        constant is kept)."""
        found = _stored_pickle(prefix)
        if found is None or isinstance(found, str):
            return found is not None
        return found[0][:1] == b"\x80" and self._may_run(found)

    def _may_run(self, found: tuple[bytes, str] | str | None) -> bool:
        """Whether the decoded head of a constant too large to keep may begin a pickle that runs something: it
        parses as opcodes up to where it ends (or to a STOP), or reaches a call before it breaks. A head that only
        starts with a pickle's header and breaks at once says nothing, as for a constant analysed whole: the raw
        data of an int64 array holding 640 (80 02 00 ..., a protocol-2 pickle keeps it as latin-1 text) is no
        pickle, and pickle.loads stops there too."""
        if not isinstance(found, tuple):
            return found is not None
        sub = _Collector(self.coll.location, self.coll.allow)
        vm = _VM(
            _Reader(io.BytesIO(found[0]), len(found[0])),
            sub,
            _Budget(self.budget.limits),
            depth=self.depth + 1,
            joblib=False,
            origin="",
            prefix=True,
        )
        try:
            vm.run()
        except _TruncatedError:
            return True
        except _MalformedError:
            return bool(sub.hits)
        except _LimitError:
            return True
        return True

    # -- calls and attribute resolution --

    def _call(self, func: Any, args: Any, off: int, how: str) -> Any:
        result = self._call_modelled(func, args, off, how)
        if type(func) is _Ref and func.canon in _ARRAY_ALLOCATORS and type(result) is _Call:
            self._allocation(func.canon, result, args, None, off)
        self._copied(result)  # a pending getattr handed back by a call (from a container) is a new copy
        return result

    def _call_modelled(self, func: Any, args: Any, off: int, how: str) -> Any:
        self.calls += 1
        given = args  # what held the arguments' copies (a list when joblib's Python unpickler calls)
        if type(args) is not tuple:
            # The C unpickler requires a tuple; the Python one (used by joblib) calls ``func(*args)`` with any
            # iterable: a list, a string (its characters), a dict (its keys), whatever a call returned.
            args = _star_args(args)
        if type(func) is _BunchNew:
            return self._bunch_new(func, args, off, how)
        if type(func) is _Ref:
            # ``func`` was judged where it was resolved (GLOBAL, getattr, a resolver, EXT), or is judged now.
            if func.unjudged:
                self._judge_called(func, off, how)
            if self.prefix and args:
                self._judge_handed(args, off, f"handed to {func.name}")
            name = _canon(func)
            if len(args) != 1 and (name in _ENUM_CLASSES or shared_result(name) == "member"):
                self._enum_functional(func, args, off, how)
            if self.planted and args and name not in _KEEPS_ARGUMENTS:
                self._handed(func, args, off, how)
            if name in _QCONFIGS:
                self._qconfig_args(func, args, off, how)
            if name in _NUMPY_CANON and len(args) > 1:
                self._numpy_writes(func, args, off, how)
            if name in _DTYPE_CTORS and args and type(args[0]) is _Call and _rebuild_kind(args[0]) == "dtype":
                # numpy.dtype(d) returns the dtype d itself: a BUILD on the result changes d (see _rebuilt)
                return args[0]
            if name == "types.SimpleNamespace" and args:
                # SimpleNamespace(mapping) (Python 3.13+) sets the mapping's (or the pairs') items as attributes
                result = _Call(func, args)
                self._check_state_keys(args[0], off, func.name)
                self._plant(result, args[0])
                return result
            if (
                name == "copyreg._reconstructor"
                and len(args) > 2
                and type(args[1]) is _Ref
                and args[1].canon == "types.SimpleNamespace"
            ):
                # _reconstructor(cls, SimpleNamespace, mapping) runs SimpleNamespace.__init__(obj, mapping): the
                # same attributes (Python 3.13+), planted on an instance of cls
                result = _Call(func, args)
                self._check_state_keys(args[2], off, func.name)
                self._plant(result, args[2])
                self._computed_classes(func, args, off, how)
                return result
            if func.user_class and args and not how.startswith("NEWOBJ"):
                self.coll.hit(
                    RULE_NOT_ALLOWED,
                    Severity.HIGH,
                    f"{func.name}()",
                    f"{func.name}: class of an unknown module called with arguments at load time",
                    off,
                    self._ev({"how": how, "args": _short(args)}),
                )
            if name in _TENSOR_REBUILDS:
                self._tensor_geometry(name, args, off)
            elif name in _SPARSE_REBUILDS:
                self._sparse_indices(args, off)
            elif name in _TORCH_ALLOCATORS:
                self._torch_allocation(func, args, None, off, how)
            if name in _PROTOCOL_TAKERS:
                self._protocol_args(func, args, off, how)
            elif (
                name == "copyreg._reconstructor"
                and len(args) > 2
                and type(args[1]) is _Ref
                and args[1].canon in _PROTOCOL_TAKERS
            ):
                self._protocol_args(args[1], args[2:3], off, f"{how} via {func.name}")
            if func.by_pattern:
                self._constructor_call(func, args, off, how)
            elif name == "copyreg._reconstructor" and len(args) > 1 and type(args[1]) is _Ref:
                base = args[
                    1
                ]  # _reconstructor(cls, base, state) runs base.__init__(obj, state) unless object
                if base.by_pattern or base.user_class:
                    self._constructor_call(base, args[2:], off, f"{how} via {func.name}")
            if name in _CLASS_TAKERS:
                self._class_taker(func, args, _CLASS_TAKERS[name], off, how)
            if name in _COPYREG_BUILDERS:
                self._computed_classes(func, args, off, how)
                new = args[0] if args else None
                self._copyreg_allocation(name, args, off, how)
                if (
                    name != "copyreg._reconstructor"
                    and type(new) is _Ref
                    and new.canon.startswith(_NATIVE_CONSTRUCTORS)
                ):
                    if name == "copyreg.__newobj__":
                        self._native_constructor(new, args[1:], None, off, f"{how} via {func.name}")
                    else:  # __newobj_ex__(cls, args, kwargs)
                        extra = args[2] if len(args) > 2 else None
                        self._native_constructor(new, args[1] if len(args) > 1 else (), extra, off, how)
            elif name == "operator.getitem" and args:
                self._subscript(args[0], off, how)
                item = _constant_item(args)
                if item is not _UNKNOWN:
                    # the element itself, not a new object: a BUILD on it is one on the element (a numpy dtype
                    # or array already built, see _rebuilt)
                    if type(item) is _Call and item.state is None:
                        self._reuse(item)
                    return item
            if name in _IMPORTERS:
                first = args[0] if args else _UNKNOWN
                mod = _Module(first if type(first) is str else "?")
                if name == "builtins.__import__" and not (len(args) > 3 and args[3]):
                    # Without a fromlist, __import__("a.b") returns the top-level package "a".
                    mod = _Module(mod.module.split(".", 1)[0])
                if mod.module != "?":
                    self.coll.callables.add(f"{mod.module}.*")
                    self._judge(_Ref(mod.module, "*"), off, f"imported by {func.name}")
                return mod
            if name == "builtins.getattr" and len(args) >= 2:
                found = self._getattr(args[0], args[1], off, f"via {func.name}")
                if func.pending is not None and how in _DIRECT_CALLS and self._inert(found):
                    func.pending[1] += 1  # resolved to an allow-listed callable (anything else is reported)
                return found
            if name in ("operator.attrgetter", "operator.methodcaller", "operator.itemgetter"):
                return _Wrapper(name.split(".")[1], args[0] if args else _UNKNOWN, args[1:])
            if name == "functools.partial" and args:
                wrapper = _Wrapper("partial", args[0], args[1:])
                self._bound_rebuild_only(args[0], off)
                if func.pending is not None and how in _DIRECT_CALLS:
                    first = args[0]
                    if self._inert(first):
                        func.pending[1] += 1  # partial(allow-listed callable, ...): judged again if called
                    elif type(first) is _Ref and first.canon in SCHEDULE_LAMBDAS and type(given) is tuple:
                        # a transformers schedule: admitted with the scheduler that holds it, or reported
                        self.lr_made[id(wrapper)] = _LrPartial(wrapper, func, [(first, given)])
                return wrapper
            if func.pending is not None and how in _DIRECT_CALLS:
                if name == _FX_REDUCE and self._fx_module(args, off):
                    func.pending[1] += 1  # torch.save of a GraphModule whose code is what torch.fx writes
                if name == "builtins.type" and len(args) == 1:
                    # type(None), type(...), type(NotImplemented): how pickle writes those three types; the
                    # one-argument form only returns a type, the three-argument form creates a class
                    arg = args[0]
                    if arg is None or (type(arg) is _Ref and arg.canon in _SINGLETON_TYPES):
                        func.pending[1] += 1
                elif (
                    name == "dateutil.tz.tz.tzfile"
                    and 1 <= len(args) <= 2
                    and args[0] is None
                    and all(type(a) is str for a in args[1:])
                ):
                    func.pending[1] += 1  # tzfile(None, name) keeps the name; tzfile(path) would read a file
            if (
                name == "numpy.core.multiarray._reconstruct"
                and how in _DIRECT_CALLS
                and args
                and type(args[0]) is _Ref
                and args[0].pending is not None
                and args[0].canon in _MEMMAP
            ):
                args[0].pending[1] += 1  # the array subtype of a pickled memmap (see _MEMMAP)
            if name == "numpy.core._ufunc_reconstruct":
                if len(args) == 2 and type(args[0]) is str and type(args[1]) is str:
                    return self._global(args[0], args[1], off, f"via {func.name}")
                self.coll.hit(
                    "LW-MODEL-002",
                    Severity.CRITICAL,
                    func.name,
                    f"{func.name} imports a module and fetches a name computed at load time",
                    off,
                    self._ev({"how": how, "args": _short(args)}),
                )
                return _Ref("?", "?")
            if name in _NAME_RESOLVERS and args and type(args[0]) is str:
                return self._resolve_string(args[0], off, f"via {func.name}")
            if name in _RNG_CTORS:
                self._rng_ctor(name, args, off, f"{how} via {func.name}")
            elif name.startswith("pandas.") and args:
                self._pandas_tz(func, args, off, how)
            if name in _REBUILD_FROM_TYPE and len(args) >= 3:
                inner = _star_args(args[2])  # func(*args): any iterable
                self._call(args[0], inner, off, f"{how} via {func.name}")
                if len(args) > 3:
                    # then new_type.__setstate__(state), as BUILD would
                    self._check_state_keys(args[3], off, func.name)
                    if type(args[1]) is _Ref:
                        self._class_state(args[1].canon, args[3], off)
                self._njt_from_type(args, inner, off)
            elif name == _REBUILD_NJT:
                self._njt_rebuild(args, off)
            if name == "torch._utils._set_obj_state" and args:
                target = args[0]
                if type(target) is _Ref or type(target) is _Module:
                    desc = _describe(target)
                    self.coll.hit(
                        RULE_GLOBAL_TAMPERING,
                        Severity.CRITICAL,
                        desc,
                        f"{func.name} sets attributes on the module-level object {desc}",
                        off,
                        self._ev({"how": how}),
                    )
                elif type(target) is _Call:
                    self._shared_target(target, off, func.name)
                if len(args) > 1:
                    if self.lr_made:
                        self._lr_build(target, args[1])
                    self._check_state_keys(args[1], off, func.name, target)
                    if type(target) is _Call:
                        cls = _instance_class(target)
                        if cls is not None and (cls in _RNG_CTORS or cls in _RNG_CLASSES):
                            # setattr(obj, key, value) per item: a bit generator's "state" is its state setter
                            for part in self._state_mappings(args[1])[0]:
                                value = part.get("state")
                                if value is not _UNKNOWN:
                                    self._rng_state(cls, value, off)
                        self._plant(target, args[1])
                        return target  # _set_obj_state returns the object it set the state of
            elif name == "pandas.core.internals.managers.BlockManager" and args:
                self._block_placements(args[0], off)
            elif name == "pyarrow.lib._restore_array" and args:
                self._arrow_geometry(args[0], off)
            elif name == "torch._utils._rebuild_parameter_with_state" and len(args) > 3:
                self._check_state_keys(args[3], off, func.name)  # setattr(param, key, value) for each key
            if (
                name == "torch.storage._load_from_bytes"
                and func.pending is not None
                and how in _DIRECT_CALLS
                and len(args) == 1
                and self._benign_storage(args[0])
            ):
                func.pending[1] += 1
            elif name in _PICKLE_LOADERS and args:
                self._nested(args[0], off, func.name)
            elif name in ("builtins.eval", "builtins.exec", "builtins.compile") and args:
                self.coll.hit(
                    "LW-MODEL-001",
                    Severity.CRITICAL,
                    func.name,
                    f"{func.name} runs code from the pickle",
                    off,
                    self._ev({"how": how, "source": _short(args[0])}),
                )
            if name.startswith("transformers.") and not func.by_pattern and model_output_class(name):
                return self._model_output_call(func, args, off, how)
            if name == "numpy.core.numeric._frombuffer" and len(args) >= 3:
                made = _Call(func, args)  # _frombuffer(buffer, dtype, shape, order): protocol 5's arrays
                self.arrays[id(made)] = (made, args[1], _transposed(args[2], args[4:5]), args[0])
                if len(args) < 4 or args[3] != "C":
                    self.fortran.add(id(made))  # memory in F order, or transposed ('K' with axes)
                self._node_array(made, args[1], args[2], args[0], off)
                return made
            result = self._pure(name, args)
            if result is not None:
                return result
            made = _Call(func, args)
            if name in _COPYREG_BUILDERS and how in _DIRECT_CALLS and type(given) is tuple:
                self._lr_scheduler_made(made, name, given)
            return made
        if type(func) is _Wrapper:
            return self._call_wrapper(func, args, off, how)
        if self.prefix and type(func) in _NEVER_CALLABLE:
            # bytes of another format read as opcodes (joblib's object array streams read with the outer memo take
            # a string where they wrote a class): calling a constant raises TypeError, the loader stops here
            raise _MalformedError(f"call of a {type(func).__name__} constant", off)
        # Calling a module, a call result, an unknown value: the callable was built at load time.
        desc = _describe(func)
        self.coll.hit(
            RULE_DYNAMIC_CALL,
            Severity.HIGH,
            desc,
            f"call of a callable built at load time that cannot be resolved statically: {desc}",
            off,
            self._ev({"how": how, "args": _short(args)}),
        )
        return _Call(func, args)

    def _plant(self, obj: _Call, state: Any) -> None:
        """Remember the callables a state stores as instance attributes of ``obj``: names and wrappers under any
        key, anything callable under a method name an allowed callable calls on its arguments. Each mapping's
        items are searched once (they are only ever appended): a memoized state of 10,000 items BUILT into objects
        1,500,000 times (4.6 MB of file) searched 15 billion items."""
        for part in self._state_mappings(state)[0]:
            items = part.items
            seen: tuple[_Dict, list[int], list[tuple[str, Any]]] | None
            if len(items) < 64:  # searched again each time (not held alive for the cache)
                seen = (part, [0], [])
            else:
                seen = self._plant_seen.get(id(part))
                if seen is None or seen[0] is not part:
                    seen = self._plant_seen[id(part)] = (part, [0], [])
            _, searched, found = seen
            for key, value in items[searched[0] :]:
                if type(key) is not str:
                    continue
                if (
                    type(value) is _Ref
                    or type(value) is _Wrapper
                    or (key in _ARGUMENT_METHODS and _maybe_callable(value))
                ):
                    found.append((key, value))
            searched[0] = len(items)
            if found:
                if obj.planted is None:
                    obj.planted = []
                obj.planted.extend(found[: max(0, 64 - len(obj.planted))])
                self.planted = True

    def _handed(self, func: Any, args: tuple[Any, ...], off: int, how: str) -> None:
        """An instance whose state planted callables as attributes is handed to a call: allow-listed callables
        call methods of their arguments (numpy's ``clip``/``mean``/``sum`` ... call ``x.clip()`` on a non-array,
        ``dict(x)`` calls ``x.keys()``, torch functions ``x.__torch_function__``), and the instance attribute
        is found first. A ``functools.partial`` of a pattern-only class planted there runs its constructor."""
        deep = type(func) is _Ref and func.canon in _NUMPY_CANON
        for a in _planted_args(args, deep):
            planted = a.planted or [("?", None)]
            key, value = next(((k, v) for k, v in planted if k in _ARGUMENT_METHODS), planted[0])
            desc = func if type(func) is str else _describe(func)
            self.coll.hit(
                RULE_DUNDER_STATE,
                Severity.CRITICAL if key in _ARGUMENT_METHODS else Severity.HIGH,
                f"{desc}:{key}",
                f"an object whose state stores the callable {_short(value)} as its attribute {key!r} is handed to "
                f"{desc}, which calls methods of its arguments: the planted callable runs instead",
                off,
                self._ev({"how": how, "attribute": key, "value": _short(value)}),
            )
            return

    def _computed_classes(self, func: _Ref, args: tuple[Any, ...], off: int, how: str) -> None:
        """``copyreg`` builders create an instance of a class, and ``_reconstructor`` runs its base's ``__new__``
        and ``__init__``: a class that is not a name judged at import (a value fetched at load time, the result
        of a call) runs code the analysis never saw."""
        classes = args[:2] if func.canon == "copyreg._reconstructor" else args[:1]
        for value in classes:
            if type(value) is not _Ref and value is not None:
                desc = _describe(value)
                self.coll.hit(
                    RULE_DYNAMIC_CALL,
                    Severity.HIGH,
                    f"{func.name}({desc})",
                    f"{func.name} builds an instance of a class computed at load time ({desc}): its __new__, "
                    "__init__ or __setstate__ cannot be known statically",
                    off,
                    self._ev({"how": how}),
                )
                return

    def _subscript(self, obj: Any, off: int, how: str) -> None:
        """``operator.getitem(obj, key)`` (how pickle writes ``typing.Dict[str, int]``) runs ``obj.__getitem__``:
        harmless on a class or typing form named by GLOBAL, on constants and on the generic aliases it makes,
        but on an object built at load time it runs that object's code on pickle data (a ``defaultdict`` calls
        its factory; transformers' lazy auto mappings import a module the state names and return any of its
        attributes)."""
        if type(obj) is _Ref or type(obj) is _Dict or isinstance(obj, _SUBSCRIPT_INERT):
            return
        if type(obj) is _Call and type(obj.func) is _Ref and obj.func.canon == "operator.getitem":
            return  # a generic alias subscripted again
        desc = _describe(obj)
        self.coll.hit(
            RULE_DYNAMIC_CALL,
            Severity.HIGH,
            f"{desc}.__getitem__",
            f"operator.getitem on an object built at load time runs its __getitem__: {desc}",
            off,
            self._ev({"how": how}),
        )

    def _pandas_tz(self, func: _Ref, args: tuple[Any, ...], off: int, how: str) -> None:
        """pandas resolves a time-zone string ``dateutil/<name>`` with ``dateutil.tz.gettz(name)``, which opens
        ``name`` as a file when it is a path (absolute, or relative with ``..`` to the zoneinfo folder; on
        Windows a UNC path reaches the network). pickle writes time zones as objects, never as such strings, so
        one in the arguments of a pandas call (or a dict or tuple among them) other than a plain zone name is a
        file read at load."""
        todo, seen = list(args), 0
        while todo and seen < 64:
            value = todo.pop()
            seen += 1
            if type(value) is tuple or type(value) is list:
                todo.extend(value[:16])
            elif type(value) is _Dict:
                todo.extend(v for _, v in value.items[:16])
            elif (
                type(value) is str
                and value.startswith("dateutil/")
                and not re.fullmatch(_ZONE_NAME, value[9:])
            ):
                self.coll.hit(
                    "LW-MODEL-004",
                    Severity.HIGH,
                    f"{func.name}:{_short(value)}",
                    f"{func.name} resolves the time zone {_short(value)!r} with dateutil.tz.gettz, which opens that "
                    "path as a file at load",
                    off,
                    self._ev({"how": how, "category": "file-or-network-io"}),
                )
                return

    def _rng_ctor(self, name: str, args: tuple[Any, ...], off: int, how: str) -> None:
        """The call a numpy random-state reconstructor makes with its arguments (see ``_RNG_CTORS``)."""
        first = args[0] if args else None
        if name.endswith(".__bit_generator_ctor"):
            if _maybe_callable(first):
                self._call(first, (), off, how)
        elif len(args) > 1:
            if _maybe_callable(args[1]):
                self._call(args[1], (first,), off, how)
        elif type(first) is _Ref:
            self._call(first, (), off, how)  # the default ctor, __bit_generator_ctor, calls a class

    def _protocol_args(self, func: _Ref, args: tuple[Any, ...], off: int, how: str) -> None:
        """An allowed constructor that iterates, converts, hashes or takes the path of its argument (``list(x)``,
        ``dict(x)``, ``str(x)``, ``torch.Size(x)``, ``pathlib.Path(x)``; ``copyreg._reconstructor`` over one of
        them as base) runs that argument's class methods (``__iter__``, ``__getitem__``, ``keys``, ``__str__``,
        ``__index__``, ``__fspath__`` ...). An instance of a class the allow-list admits by name pattern only was
        rebuilt without its constructor, its protocol methods were never reviewed, and they run on the state the
        pickle chose (confirmed: ``list(gensim LineSentence)`` whose state's ``source`` names a file or URL reads
        it at load). Nothing a library saves hands such an instance to these constructors."""
        for arg in args[:4]:
            cls = _rebuilt_pattern_class(arg)
            if cls is None:
                continue
            self.coll.hit(
                RULE_NOT_ALLOWED,
                Severity.HIGH,
                f"{func.name}({cls.name})",
                f"{func.name} runs the iteration or conversion methods of its argument, an instance of "
                f"{cls.name} rebuilt from pickle state (a class allowed for rebuilding only, whose methods may read "
                "files or the network)",
                off,
                self._ev({"how": how, "argument": cls.name}),
            )
            return

    def _enum_functional(self, func: _Ref, args: tuple[Any, ...], off: int, how: str) -> None:
        """An allowed enum class called with other than one argument: a pickle writes an enum member as
        ``cls(value)``, while ``cls(name, names)`` is the functional API, which creates a new enum class from the
        pickle's names. On a class without members (``enum.Enum``, transformers' ``ExplicitEnum``) it succeeds,
        and a name such as ``__init__`` or ``__new__`` becomes the new class's hook, run on each member's value
        as the class is made: any callable the pickle hands over runs there, a class admitted for rebuilding only
        is constructed on pickle data (shown: a tokenizer's constructor reading a file outside the model folder)."""
        self.coll.hit(
            "LW-MODEL-001",
            Severity.CRITICAL,
            f"{func.name}()",
            f"{func.name}: enum class called with {len(args)} arguments (the functional API), which creates a class "
            "whose hooks (__init__, __new__ ...) are callables from the pickle and runs them on its members",
            off,
            self._ev({"how": how, "args": _short(args)}),
        )

    def _constructor_call(self, func: _Ref, args: tuple[Any, ...], off: int, how: str) -> None:
        """A class or function the allow-list admits by its name pattern only (or a user class as the base of
        ``copyreg._reconstructor``) is called: that runs its constructor or body on pickle data at load."""
        self.coll.hit(
            RULE_NOT_ALLOWED,
            Severity.HIGH,
            f"{func.name}()",
            f"{func.name}: called at load time, which runs its constructor or body on pickle data; only "
            "rebuilding without the constructor (NEWOBJ, copyreg) is allowed for it",
            off,
            self._ev({"how": how, "args": _short(args)}),
        )

    def _call_wrapper(self, w: _Wrapper, args: tuple[Any, ...], off: int, how: str) -> Any:
        if w.kind == "partial":
            made = self.lr_made.get(id(w)) if self.lr_made else None
            if made is not None and made.obj is w and type(made) is _LrPartial:
                made.called = True  # runs now, on whatever the call hands it: not what a scheduler holds
            target, pargs, hops = w.target, tuple(w.args), 0
            while type(target) is _Wrapper and target.kind == "partial" and hops < _MAX_UNWRAP:
                target, pargs, hops = target.target, tuple(target.args) + pargs, hops + 1
            if type(target) is _Wrapper and target.kind == "partial":
                return self._call(_UNKNOWN, args, off, f"{how} via nested functools.partial")
            kwargs = w.kwargs
            if type(kwargs) is _Dict and self.planted:
                self._handed(
                    target, tuple(v for _, v in kwargs.items[:16]), off, f"{how} via functools.partial"
                )
            if (
                type(kwargs) is _Dict
                and kwargs.items
                and type(target) is _Ref
                and target.canon.startswith("transformers.")
                and model_output_class(target.canon)
            ):
                # its first field given by keyword: the same pairs as a positional one (see _model_output_call)
                self._model_output_first(target, _UNKNOWN, off, f"{how} via functools.partial with keywords")
            if (
                type(kwargs) is _Dict
                and kwargs.items
                and type(target) is _Ref
                and target.canon in _NUMPY_CANON
            ):
                # out= given by keyword: judged as an argument past the first
                handed = (*pargs, *args, *(v for _, v in kwargs.items[:16]))
                self._numpy_writes(target, (None, *handed) if not (pargs + args) else handed, off, how)
            if type(target) is _BunchNew and target.cls.canon in SYMPY_SYMBOLS:
                self._symbol_new(target, pargs + args, kwargs, off)
            if kwargs is not None and type(target) is _Ref and target.canon in _TORCH_ALLOCATORS:
                self._torch_allocation(target, pargs + args, kwargs, off, f"{how} via functools.partial")
            result = self._call(target, pargs + args, off, f"{how} via functools.partial")
            if type(kwargs) is _Dict and kwargs.items and type(result) is _Call:
                if type(target) is _Ref and target.canon in _DICT_CONSTRUCTORS:
                    if result.items is None:
                        result.items = _Dict()
                    for k, v in kwargs.items:
                        result.items.add(k, v)  # dict(**kw): the keywords are its keys
                else:
                    self._plant(result, kwargs)  # Namespace(**kw), SimpleNamespace(**kw): its attributes
            return result
        if w.kind == "attrgetter":
            obj = args[0] if args else _UNKNOWN
            value: Any = obj
            for name in [w.target, *w.args]:
                if type(name) is not str:
                    return self._getattr(value, _UNKNOWN, off, "via operator.attrgetter")
                for part in name.split("."):
                    value = self._getattr(value, part, off, "via operator.attrgetter")
            return value
        if w.kind == "methodcaller":
            obj = args[0] if args else _UNKNOWN
            method = self._getattr(obj, w.target, off, "via operator.methodcaller")
            return self._call(method, tuple(w.args), off, "methodcaller")
        if w.kind == "itemgetter":
            obj = args[0] if args else _UNKNOWN
            if type(obj) is _Dict:
                return obj.get(w.target)
            if type(obj) is _Ref and type(w.target) is str:  # e.g. itemgetter('os')(sys.modules)
                return _Module(w.target)
            return _UNKNOWN
        if w.kind == "bound":
            return self._bound_call(w, args, off, how)
        return _Call(w, args)

    def _getattr(self, obj: Any, name: Any, off: int, how: str) -> Any:
        if type(name) is not str:
            ref = _Ref("?", "?")
            self._judge(ref, off, how)
            return ref
        if type(obj) is _Module:
            ref = _Ref(obj.module, name)
        elif type(obj) is _Ref:
            if (
                name == "__new__"
                and obj.module != "?"
                and (obj.canon in SCIPY_TUPLE_BUNCHES or obj.canon in SYMPY_SYMBOLS)
            ):
                return _BunchNew(obj)  # judged where it is called (_bunch_new)
            ref = _Ref(obj.module, f"{obj.qual}.{name}")
        elif type(obj) is _Call and type(obj.func) is _Ref:
            # An instance attribute: a method of the class that was instantiated.
            ref = _Ref(obj.func.module, f"{obj.func.qual}.{name}")
        elif type(obj) in (str, bytes, _Dict, list, tuple):
            return _Wrapper("bound", obj, (name,))
        else:
            ref = _Ref("?", name)
        self._judge(ref, off, how)
        return ref

    def _resolve_string(self, path: str, off: int, how: str) -> Any:
        if ":" in path:
            mod, _, qual = path.partition(":")
            ref = _Ref(mod, qual) if qual else None
            if ref is None:
                return _Module(mod)
        else:
            mod, _, qual = path.rpartition(".")
            if not mod:
                return _Module(path)
            ref = _Ref(mod, qual)
        self._judge(ref, off, how)
        return ref

    def _bound_call(self, w: _Wrapper, args: tuple[Any, ...], off: int, how: str) -> Any:
        """Pure methods of constants used to build names (``''.join``, ``'x'.encode`` ...)."""
        obj, meth = w.target, w.args[0]
        if type(obj) in (str, bytes) and not self._room(_bound_size(obj, meth, args)):
            return _UNKNOWN
        try:
            return self._made(self._bound_value(obj, meth, args))
        except _NotModelled:
            pass
        if type(obj) in (str, bytes):
            return _UNKNOWN
        desc = f"{type(obj).__name__.lstrip('_').lower()}.{meth}"
        self.coll.hit(
            RULE_DYNAMIC_CALL,
            Severity.HIGH,
            desc,
            f"call of a method of a loaded object: {desc}",
            off,
            self._ev({"how": how}),
        )
        return _UNKNOWN

    @staticmethod
    def _bound_value(obj: Any, meth: str, args: tuple[Any, ...]) -> Any:
        """The value of a pure method call on a constant (``_NotModelled`` when it is not one of those)."""
        try:
            if type(obj) is str:
                if meth == "join" and args and isinstance(args[0], list | tuple):
                    parts = args[0]
                    if all(type(x) is str for x in parts):
                        return obj.join(parts)
                elif meth in (
                    "lower",
                    "upper",
                    "strip",
                    "lstrip",
                    "rstrip",
                    "swapcase",
                    "title",
                    "capitalize",
                ):
                    return getattr(obj, meth)()
                elif meth == "replace" and len(args) == 2 and all(type(x) is str for x in args):
                    return obj.replace(args[0], args[1])
                elif meth == "encode":
                    return obj.encode(*(a for a in args if type(a) is str))
                elif meth == "format" and all(type(x) in (str, int) for x in args):
                    # plain fields only: a format spec may ask for any width, an attribute or an item
                    return obj.format(*args) if re.fullmatch(_PLAIN_FORMAT, obj) else _UNKNOWN
                elif meth == "__add__" and args and type(args[0]) is str:
                    return obj + args[0]
            elif type(obj) is bytes and meth == "decode":
                return obj.decode(*(a for a in args if type(a) is str))
        except (LookupError, UnicodeError, ValueError, TypeError, IndexError):
            return _UNKNOWN
        raise _NotModelled

    def _room(self, size: int) -> bool:
        """Whether a computed string or bytes of up to ``size`` bytes may still be made (see
        ``_COMPUTED_BUDGET``)."""
        return self.budget.computed_bytes + size <= _COMPUTED_BUDGET

    def _made(self, value: Any) -> Any:
        """Pay for a computed value; ``value`` is returned."""
        if type(value) is str or type(value) is bytes:
            self.budget.computed_bytes += len(value)
        return value

    def _pure(self, name: str, args: tuple[Any, ...]) -> Any:
        """Evaluate side-effect-free string builders so names built from pieces are resolved, within the
        computed-value budget (past it the value is unknown)."""
        first = args[0] if args else None
        if (type(first) is not str and type(first) is not bytes) or name in _IDENTITY_BUILDERS:
            return self._pure_value(name, args)
        if name in ("operator.add", "operator.concat"):
            second = args[1] if len(args) == 2 else None
            size = len(first) + (len(second) if type(second) is type(first) else 0)
        elif "decompress" in name or name == "codecs.decode":
            size = max(4 * len(first), _MAX_NESTED_BYTES)
        else:
            size = 4 * len(first)
        if not self._room(size):
            return None
        return self._made(self._pure_value(name, args))

    def _pure_value(self, name: str, args: tuple[Any, ...]) -> Any:
        try:
            if name in ("operator.add", "operator.concat") and len(args) == 2:
                a, b = args
                if type(a) is type(b) and type(a) in (str, bytes):
                    return a + b
            elif name == "codecs.encode" and args and type(args[0]) is str:
                enc = args[1] if len(args) > 1 and type(args[1]) is str else "utf-8"
                if enc.replace("-", "").lower() in ("latin1", "iso88591", "utf8", "ascii"):
                    return args[0].encode(enc)
            elif name == "codecs.decode" and args and type(args[0]) in (str, bytes):
                enc = args[1] if len(args) > 1 and type(args[1]) is str else "utf-8"
                norm = enc.lower().replace("_", "")
                if norm in ("zlib", "zlibcodec") and type(args[0]) is bytes:
                    return _bounded_decompress("zlib.decompress", args[0])  # never inflate a bomb
                if norm in ("rot13", "hex", "base64", "utf8", "latin1"):
                    import codecs

                    return codecs.decode(args[0], enc)
            elif name in ("base64.b64decode", "base64.decodebytes", "base64.standard_b64decode") and args:
                if type(args[0]) in (str, bytes) and len(args[0]) <= _MAX_NESTED_BYTES:
                    import base64

                    return base64.b64decode(args[0])
            elif name == "binascii.unhexlify" and args and type(args[0]) in (str, bytes):
                return bytes.fromhex(args[0] if type(args[0]) is str else args[0].decode())
            elif name in ("zlib.decompress", "gzip.decompress", "bz2.decompress", "lzma.decompress") and args:
                if type(args[0]) is bytes:
                    return _bounded_decompress(name, args[0])
            elif name in ("builtins.bytes", "builtins.bytearray") and args and type(args[0]) is bytes:
                return args[0]
            elif name == "io.BytesIO" and args and type(args[0]) is bytes:
                return _Call(_Ref("io", "BytesIO"), args)
        except (ValueError, TypeError, LookupError, UnicodeError, OSError, EOFError):
            return None
        return None

    def _benign_storage(self, data: Any) -> bool:
        """Whether ``torch.storage._load_from_bytes(data)`` is what pickling a tensor storage writes: a legacy
        ``torch.save`` file (magic number, protocol, system info, the storage, its keys, then raw bytes) whose
        five pickles reach nothing outside the allow-list. Judged in a collector of its own: when it is not,
        the caller reports the call and analyses the bytes as any nested pickle."""
        if type(data) is not bytes or not data.startswith(b"\x80\x02" + TORCH_LEGACY_MAGIC):
            return False
        if self.depth + 1 > self.budget.limits.max_depth:
            return False
        sub = _Collector(self.coll.location, self.coll.allow)
        count = _analyze_reader(
            _Reader(io.BytesIO(data), len(data)),
            sub,
            self.budget,
            depth=self.depth + 1,
            joblib=False,
            origin="torch.storage._load_from_bytes",
            stacked=True,
            max_pickles=5,
            resync=False,
        )
        return count == 5 and not sub.hits and not sub.unverified

    def _stored(self, value: Any, off: int) -> None:
        """Analyse a pickle kept as data: a string or bytes constant that is one (raw, latin-1 text, hex or
        base64, possibly compressed). Loading this file does not run it; whatever unpickles the value later
        does, so what it would call is reported (LW-MODEL-019), at most high. Constants that only start like
        one and do not parse say nothing (they are data); a bound reached makes the target unverified."""
        budget = self.budget
        if budget.stored > _STORED_MAX_CANDIDATES:
            return
        if type(value) is str and ("_" in value or "-" in value):
            # urlsafe_b64decode reads '-' and '_' as '+' and '/' (as _stored_text does); b64decode, not validating,
            # skips them as any character outside its alphabet: a payload spelled with them between its
            # characters is analysed as b64decode reads it too
            stripped = value.replace("_", "").replace("-", "")
            if len(stripped) >= _STORED_MIN and _stored_head(stripped):
                self._stored(stripped, off)
        small = len(value) <= 256
        if small and value in _NOT_STORED:  # the same names recur in file after file (module, class names)
            return
        if type(value) is str and not _stored_text_may(value, ""):  # the common case, without the cache
            return
        found = _stored_pickle(value)
        if found is None:
            if small:
                if len(_NOT_STORED) >= 4096:
                    _NOT_STORED.clear()
                _NOT_STORED.add(value)
            return
        budget.stored += 1
        if isinstance(found, str):
            self.coll.unverified.append(found)
            return
        data, how = found
        budget.stored_bytes += len(data)
        if budget.stored > _STORED_MAX_CANDIDATES or budget.stored_bytes > _STORED_BYTES_BUDGET:
            budget.stored = _STORED_MAX_CANDIDATES + 1  # reported once; no further constant is decoded
            self.coll.unverified.append(
                f"limit stored pickles: more than {_STORED_MAX_CANDIDATES} constants or {_STORED_BYTES_BUDGET} "
                "bytes look like stored pickles; the rest were not analysed"
            )
            return
        limits = budget.limits
        if self.depth + 1 > limits.max_depth:
            self.coll.unverified.append(f"limit max_depth: nested pickles deeper than {limits.max_depth}")
            return
        origin = f"stored as {how}@{off}"
        sub = _Collector(self.coll.location, self.coll.allow)
        _analyze_reader(
            _Reader(io.BytesIO(data), len(data)),
            sub,
            budget,
            depth=self.depth + 1,
            joblib=False,
            origin=origin if not self.origin else f"{self.origin}/{origin}",
            stacked=True,
            max_pickles=None,
            resync=False,
            prefix=True,
        )
        self.coll.unverified.extend(u for u in sub.unverified if u.startswith("limit"))
        # What decoded noise can do without naming anything (call a tuple, an empty EXT registry, a computed
        # name) is not reported: a stored pickle that calls something names it first.
        hits = {key: entry for key, entry in sub.hits.items() if key[0] not in _STORED_UNNAMED}
        if not hits:
            return
        worst = max(entry[0] for entry in hits.values())
        subjects = sorted({subject for _, subject in hits})
        shown = ", ".join(subjects[:5]) + (f" and {len(subjects) - 5} more" if len(subjects) > 5 else "")
        self.coll.hit(
            RULE_DORMANT,
            min(worst, Severity.HIGH),
            f"stored pickle: {subjects[0]}",
            f"a pickle kept as data ({how}, {len(data)} bytes) reaches {shown}: loading this file does not "
            "run it; any code that unpickles the value does",
            off,
            self._ev(
                {
                    "encoding": how,
                    "size": len(data),
                    "reaches": subjects[:20],
                    "rules": sorted({r for r, _ in hits}),
                }
            ),
        )

    def _nested(self, arg: Any, off: int, loader: str) -> None:
        """Analyse a pickle handed to a loader from inside the pickle."""
        data: Any = arg
        if type(arg) is _Call and type(arg.func) is _Ref and arg.func.name in ("io.BytesIO", "_io.BytesIO"):
            data = arg.args[0] if arg.args else _UNKNOWN
        if type(data) is str and loader.startswith(("pickle", "_pickle", "dill", "cloudpickle")):
            data = data.encode("latin-1", "replace")
        if type(data) is bytes:
            limits = self.budget.limits
            if self.depth + 1 > limits.max_depth:
                self.coll.unverified.append(f"limit max_depth: nested pickles deeper than {limits.max_depth}")
                return
            origin = f"{loader}@{off}"
            self.coll.hit(
                RULE_NESTED,
                Severity.HIGH,
                loader,
                f"pickle embedded in the pickle and loaded by {loader}; analysed recursively",
                off,
                self._ev({"size": len(data)}),
            )
            _analyze_reader(
                _Reader(io.BytesIO(data), len(data)),
                self.coll,
                self.budget,
                depth=self.depth + 1,
                joblib=False,
                origin=origin if not self.origin else f"{self.origin}/{origin}",
                stacked=True,
                max_pickles=None,
            )
        elif type(data) is _Big:
            self.coll.unverified.append(
                f"nested pickle of {data.size} bytes passed to {loader} at offset {off} is too large "
                "to analyse"
            )
        elif type(data) is str:
            pass  # a file path: the loader reads another file, which the scanner sees on its own
        else:
            self.coll.unverified.append(
                f"pickle data passed to {loader} at offset {off} is computed at load time"
            )

    # -- the rest of the opcodes --

    @staticmethod
    def _pop_mark(
        stack: list[Any], meta: list[list[Any]], off: int, what: str
    ) -> tuple[list[Any], list[Any]]:
        if not meta:
            raise _MalformedError(f"{what} without MARK", off)
        return meta.pop(), stack

    def _op_proto(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        proto = self.r.read(1)[0]
        if proto > 5:
            raise _MalformedError(f"unsupported pickle protocol {proto}", off)
        self.proto = proto
        return stack

    def _op_frame(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if self.frame_end > off:
            raise _MalformedError("FRAME inside another frame", off)
        length = struct.unpack("<Q", self.r.read(8))[0]
        # Frames are read linearly; an announced length beyond the data is checked at STOP.
        self.frame_end = self.r.tell() + length
        return stack

    def _line(self) -> str:
        raw = self.r.readline()
        try:
            return raw.decode("utf-8")  # strict, as CPython's find_class arguments
        except UnicodeDecodeError:
            raise _MalformedError("GLOBAL/INST name is not UTF-8", self.r.tell()) from None

    def _global(self, module: str, name: str, off: int, how: str, literal: bool = True) -> _Ref:
        """Resolve (and judge) ``module.name``. ``literal``: both names were written in the bytes read here (a
        GLOBAL or INST line, or two strings this reading pushed right before STACK_GLOBAL), not taken from the memo
        or the stack this reading inherited."""
        import _compat_pickle

        written = None
        # Like CPython's find_class, Python-2 names are mapped only below protocol 3.
        if self.proto >= 3:
            pass
        elif (module, name) in _compat_pickle.NAME_MAPPING:
            written = f"{module}.{name}"
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            written = f"{module}.{name}"
            module = _compat_pickle.IMPORT_MAPPING[module]
        ref = _Ref(module, name)
        self.imported.add(module)
        if self.prefix and not known_top_module(module):
            # another format's bytes ("certifi\nnumpy" in a requirements.txt): a module no model environment
            # has is not judged, and the reading goes on as if it had been found and were harmless (a loader that
            # can import it continues; one that cannot stops), so whatever follows is still analysed. It is
            # judged once the reading calls or instantiates it: a loader that imports it runs it then
            # it is judged when it is called or handed on, in a plain reading of joblib array data too: an installed
            # module the lists do not know runs what the pickle asks. There, a name paired from memo entries may be
            # joblib's own strings read from the wrong stack ('NumpyArrayWrapper', 'dtype'): such a call makes the
            # file unverified, not a finding (see _judge_called)
            ref.unjudged = True
            ref.plain = False
            ref.guessed = not (self.judge_calls or literal)
            return ref
        self._judge(ref, off, how, written)
        return ref

    def _op_global(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        module = self._line()
        name = self._line()
        stack.append(self._global(module, name, off, "GLOBAL"))
        return stack

    def _op_stack_global(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if len(stack) < 2:
            raise _MalformedError("STACK_GLOBAL needs module and name on the stack", off)
        name = stack.pop()
        module = stack.pop()
        if type(module) is str and type(name) is str:
            literal = True
            if self.fetched is not None:
                # strings this reading pushed itself, not ones it took from the memo or from the stack it
                # inherited (those pair at random when another reading's bytes are read from the wrong stack)
                taken = self.fetched.keys() | self.inherited
                literal = id(module) not in taken and id(name) not in taken
                if (
                    not literal
                    and id(name) not in taken
                    and name in _NUMPY_REFETCHED
                    and not self.coll.classify(module, name).allowed
                    and (module in self.imported or _inert_import(module))
                ):
                    # numpy's array pickling writes its module string once and takes it from the stream's own memo
                    # for the dtype (and a scalar element's) global. joblib pickles an object array as a stream of
                    # its own, whose memo numbers restart at 0 (it reads it with a fresh unpickler); a plain
                    # loader reads it on with the outer memo and looks 'dtype' up in whatever outer string has
                    # that number ('pandas', 'NumpyArrayWrapper', a user's 'os'). Only numpy's object has these
                    # names: elsewhere the lookup fails (or finds torch.dtype, pyarrow.scalar, which build
                    # nothing), so the loader gets numpy's or stops. Read on as numpy's (the superset), when
                    # importing that module runs nothing new: it was imported already, or it imports inertly
                    stack.append(self._global(_NUMPY_REFETCHED[name], name, off, "STACK_GLOBAL"))
                    return stack
            stack.append(self._global(module, name, off, "STACK_GLOBAL", literal))
            return stack
        if self.prefix and not any(type(v) is _Call and id(v) not in self.inherited for v in (module, name)):
            # another format's bytes: a name of unknown origin (a value this reading inherited, or noise) is not
            # followed; a name made by a call in this reading (codecs.encode('bf', 'rot_13') is 'os') is judged
            raise _MalformedError("STACK_GLOBAL with a computed name in bytes read as opcodes", off)
        if isinstance(module, str | _Unknown | _Call | _Big) and isinstance(
            name, str | _Unknown | _Call | _Big
        ):
            # Built at load time (e.g. a str.join result we could not evaluate): resolve what we can.
            ref = _Ref(module if type(module) is str else "?", name if type(name) is str else "?")
            self._judge(ref, off, "STACK_GLOBAL with computed names")
            stack.append(ref)
            return stack
        raise _MalformedError("STACK_GLOBAL requires str module and name", off)

    def _op_inst(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        module = self._line()
        name = self._line()
        cls = self._global(module, name, off, "INST")
        outer, args = self._pop_mark(stack, meta, off, "INST")
        outer.append(self._call(cls, tuple(args), off, "INST"))
        return outer

    def _op_obj(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        outer, items = self._pop_mark(stack, meta, off, "OBJ")
        if not items:
            raise _MalformedError("OBJ without a class", off)
        outer.append(self._call(items[0], tuple(items[1:]), off, "OBJ"))
        return outer

    def _op_newobj(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if len(stack) < 2:
            raise _MalformedError("NEWOBJ needs a class and arguments", off)
        args = stack.pop()
        cls = stack.pop()
        stack.append(self._instantiate(cls, args, off, "NEWOBJ"))
        return stack

    def _op_newobj_ex(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if len(stack) < 3:
            raise _MalformedError("NEWOBJ_EX needs a class, arguments and keywords", off)
        kwargs = stack.pop()
        args = stack.pop()
        cls = stack.pop()
        if type(cls) is _Ref and cls.canon.startswith("pandas.") and type(kwargs) is _Dict:
            self._pandas_tz(cls, tuple(v for _, v in kwargs.items), off, "NEWOBJ_EX")
        stack.append(self._instantiate(cls, args, off, "NEWOBJ_EX", kwargs))
        return stack

    def _instantiate(self, cls: Any, args: Any, off: int, how: str, kwargs: Any = None) -> Any:
        """``cls.__new__(cls, *args)``: the class was judged at import; anything else is dynamic."""
        if type(cls) is _Ref:
            if cls.unjudged:
                self._judge_called(cls, off, how)
            if self.prefix:
                self._judge_handed((args, kwargs), off, f"handed to {cls.name}")
            if cls.canon.startswith(_NATIVE_CONSTRUCTORS):
                self._native_constructor(cls, args, kwargs, off, how)
            elif cls.canon in _TORCH_ALLOCATORS:
                # cls.__new__(cls, *args, **kwargs) is the constructor of torch's tensors and storages
                self._torch_allocation(cls, _star_args(args), kwargs, off, how)
            if self.planted and type(args) is tuple and args and cls.canon not in _KEEPS_ARGUMENTS:
                self._handed(cls, args, off, how)  # cls.__new__(cls, *args) converts its arguments too
            if cls.canon in _QCONFIGS and type(args) is tuple:
                self._qconfig_args(cls, args, off, how)
            if type(args) is tuple and args and cls.canon.startswith("pandas."):
                self._pandas_tz(cls, args, off, how)  # Timestamp.__new__ is its constructor
            if cls.pending is not None and cls.canon == "torch.ScriptObject" and args == ():
                cls.pending[1] += 1  # its state is judged at BUILD (_op_build)
            if (
                cls.canon in _DTYPE_CTORS
                and type(args) is tuple
                and args
                and type(args[0]) is _Call
                and _rebuild_kind(args[0]) == "dtype"
            ):
                return args[0]  # numpy.dtype.__new__(numpy.dtype, d) is d too
            made = _Call(cls, args if type(args) is tuple else ())
            if cls.canon in _FRESH_BY_NEWOBJ:
                self.fresh[id(made)] = made
            if cls.canon in _ARRAY_ALLOCATORS:
                self._allocation(cls.canon, made, args, kwargs, off)  # ndarray.__new__(cls, shape, ...)
            if how == "NEWOBJ" and args == () and cls.pending is not None and cls.canon in LAMBDA_SCHEDULERS:
                # a LambdaLR without its constructor: judged at the end, with its state (_lambda_schedulers)
                self.lr_made[id(made)] = _LrScheduler(made, cls, None)
            return made
        return self._call(cls, args if type(args) is tuple else (), off, how)

    def _class_taker(self, func: _Ref, args: tuple[Any, ...], prefix: str, off: int, how: str) -> None:
        """See ``_CLASS_TAKERS``: the class handed to ``func`` must be one of the library's own."""
        cls = args[0] if args else None
        if type(cls) is _Ref and cls.module != "?" and cls.canon.startswith(prefix):
            return
        desc = _describe(cls)
        self.coll.hit(
            RULE_NOT_ALLOWED,
            Severity.HIGH,
            f"{func.name}({desc})",
            f"{func.name} builds {desc} through its constructor with the pickle's arguments; its own pickles "
            f"name a class of {prefix.rstrip('.')}",
            off,
            self._ev({"how": how, "args": _short(args)}),
        )

    def _native_constructor(self, cls: _Ref, args: Any, kwargs: Any, off: int, how: str) -> None:
        """NEWOBJ of a class whose ``__new__`` is its constructor (see ``_NATIVE_CONSTRUCTORS``) with arguments
        other than the object instances its own pickles pass: the constructor runs on them (reads the files
        they name)."""
        values = list(args) if type(args) is tuple or type(args) is list else [args]
        if type(kwargs) is _Dict:
            values.extend(v for _, v in kwargs.items)
        elif kwargs is not None:
            values.append(kwargs)
        odd = [v for v in values if type(v) is not _Call]
        if not odd:
            return
        self.coll.hit(
            "LW-MODEL-004",
            Severity.HIGH,
            f"{cls.name}.__new__",
            f"{cls.name} is built by {how} with arguments ({_short(odd[0])}): its __new__ is its constructor, which "
            "reads the vocabulary or merges files a path argument names",
            off,
            self._ev({"how": how, "category": "file-or-network-io", "args": _short(tuple(values))}),
        )

    def _op_build(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if len(stack) < 2:
            raise _MalformedError("BUILD needs an object and a state", off)
        state = stack.pop()
        obj = stack[-1]
        if self.lr_made:
            self._lr_build(obj, state)
        if not _tuple_setstate(obj):
            self._check_state_keys(state, off, "BUILD", obj)
        if self.prefix:
            self._judge_handed((state,), off, "kept in a BUILD state")
        if self.planted:
            # the Python unpickler (joblib's) calls state.items() and slotstate.items() on what it is given
            parts = state if type(state) is tuple and len(state) == 2 else (state,)
            self._handed("BUILD", parts, off, "BUILD")
        if type(obj) is _Ref or type(obj) is _Module:
            # BUILD on a class, function or module sets attributes on global interpreter state.
            desc = _describe(obj)
            self.coll.hit(
                RULE_GLOBAL_TAMPERING,
                Severity.CRITICAL,
                desc,
                f"BUILD sets attributes on the module-level object {desc}",
                off,
                self._ev({"state": _short(state)}),
            )
        elif type(obj) is _Call:
            self._shared_target(obj, off, "BUILD")
            if obj.items is not None:
                # a mapping class whose __getattr__ returns its items and that has no __setstate__ of its own
                # (Lightning's AttributeDict): the unpickler's getattr(obj, "__setstate__") finds what SETITEMS
                # stored under that key, and calls it with the state (confirmed: a pattern-only class, run on a path)
                planted = self._own_item(obj.items, ("__setstate__",))
                if planted is not None:
                    desc = _describe(obj)
                    self.coll.hit(
                        RULE_DUNDER_STATE,
                        Severity.CRITICAL,
                        f"{desc}['__setstate__']",
                        f"BUILD looks up __setstate__ on {desc}, whose __getattr__ can answer from its own items: "
                        f"the pickle stored the callable {_short(planted[1])} under that key, which runs on the state",
                        off,
                        self._ev({"state": _short(state), "value": _short(planted[1])}),
                    )
            prior = obj.state
            if type(obj.func) is _Ref and obj.func.canon == "operator.getitem":
                # an element of something the analysis does not hold: its __setstate__ is not known
                self.coll.hit(*self._setstate_hit(obj, off))
            obj.state = state
            self._plant(obj, state)
            if prior is not None or self.reused:
                self._rebuilt(obj, prior, state, off)
            func = obj.func
            if type(func) is _Ref:
                if func.canon == "torch.ScriptObject":
                    self._script_object_state(state, off)
                cls = _instance_class(obj)
                if _categorical(obj, cls):
                    self._state_problem(
                        "pandas.Categorical",
                        self._categorical_problem(state),
                        "pandas.Categorical:codes",
                        "with {}: pandas takes the categories at these codes without a bounds check",
                        off,
                    )
                if cls is not None:
                    self._class_state(cls, state, off)
                    if _pandas_index(cls):
                        desc = _describe(obj)
                        self.coll.hit(
                            RULE_TENSOR,
                            Severity.HIGH,
                            "pandas.Index:state",
                            f"BUILD gives the pandas index {desc} a state, which replaces its attributes (_range, "
                            "_data): what holds the index (a Series' or DataFrame's manager, a CategoricalDtype) was "
                            "checked against the length it had, and pandas reads the values at every position of "
                            "the new one unchecked. pandas pickles indexes by their _new_* rebuild, with no state",
                            off,
                            self._ev({"state": _short(state)}),
                        )
                if cls == _PARTIAL_WRAPPER:
                    self._partial_wrapper_state(state, off)
                if func.canon in _DTYPE_CTORS:
                    self._dtype_state(obj, state, off)
                elif func.canon in _ARRAY_REBUILDS or cls in _NDARRAY_CLASSES:
                    self._ndarray_state(obj, state, off)
                elif cls in _NODE_OWNERS:
                    self._node_owner(obj, cls, state, off)
                elif cls == _EXPORTED_PROGRAM:
                    self.exported.append((state, off))
                elif cls is not None and cls.startswith("scipy.sparse."):
                    self._sparse_state(cls, state, off)
                elif cls in _DELAUNAY:
                    self._state_problem(
                        cls,
                        self._delaunay_problem(state),
                        "scipy.spatial:delaunay",
                        "state with {}: find_simplex, the barycentric transforms and the interpolators over it walk "
                        "these arrays in compiled code without bounds checks",
                        off,
                    )
                elif cls in _QHULL_RESULTS:
                    self._state_problem(
                        cls,
                        self._qhull_handle(state),
                        "scipy.spatial:qhull",
                        "state with {}: the object's __del__ calls its close()",
                        off,
                    )
                elif cls in _TRIANGULATION_USERS:
                    self._state_problem(
                        cls,
                        self._tri_user_problem(state),
                        "scipy.interpolate:triangulation",
                        "state with {}: its compiled evaluation takes the triangulation's arrays as they are and "
                        "reads its values (and gradients) at their indices without bounds checks",
                        off,
                    )
                elif cls in _FITPACK_SPLINES:
                    self._state_problem(
                        cls,
                        self._fitpack_problem(_FITPACK_SPLINES[cls], state),
                        "scipy.interpolate:fitpack",
                        "state with {}: FITPACK evaluates B-splines of that degree into fixed-size work arrays "
                        "(20 values in splev, 6 in bispev) and writes past them",
                        off,
                    )
                elif cls in _KD_TREES:
                    self._state_problem(
                        cls,
                        self._kd_tree_problem(state),
                        "scipy.spatial:kdtree",
                        "state with {}: the compiled __setstate__ links the raw nodes it copies and queries walk "
                        "them, their point ranges and the index array without bounds checks",
                        off,
                    )
                elif cls is not None and cls.startswith("pandas.") and cls.endswith(".SparseArray"):
                    self._state_problem(
                        cls,
                        self._pandas_sparse_problem(state),
                        "pandas.SparseArray:values",
                        "with {}: pandas' compiled sparse arithmetic (sparse_add_float64 ...) walks the index's "
                        "points and reads a value per point without bounds checks",
                        off,
                    )
                elif cls in _PANDAS_MANAGERS:
                    self._state_problem(
                        cls,
                        self._manager_problem(state),
                        "pandas.BlockManager:rows",
                        "with {}: pandas reads the values at every index position without a bounds check",
                        off,
                    )
                elif (
                    cls in _SKLEARN_NEWOBJ
                    and type(obj.args) is tuple
                    and obj.args
                    and type(obj.args[0]) is _Ref
                    and obj.args[0].canon.startswith(_BINARY_TREE_MODULES)
                ):
                    self._binary_tree(obj.args[0].canon, state, off)
                if (
                    (self.node_arrays or (cls is not None and cls.startswith("sklearn.")))
                    and type(state) is _Dict
                    and state.size < _MAX_CONTAINER
                ):
                    self._features_in(state, off)
                if cls is not None and cls.startswith("sklearn."):
                    kept = state if type(state) is _Dict else self._merged_state(state)
                    if type(kept) is _Dict:  # (a state whose parts cannot be merged is not searched: a lead)
                        self._kept_callables(cls, kept, off)
                if cls in _TRUSTED_STATE:
                    merged = state if type(state) is _Dict else self._merged_state(state)
                    if merged is not None:
                        self._trusted_state(cls, merged, off)
                if self.features_pending:
                    held = self.features_pending.pop(id(obj), None)
                    if held is not None and held[0] is obj:
                        self._feature_walk([(obj, 0)], held[1], off)
                if self.joblib and cls == "joblib.numpy_pickle.NumpyArrayWrapper":
                    nodes, items = self._joblib_array(obj, off, (stack, meta, memo))
                    # the array joblib reads in the wrapper's place: remembered for the objects taking it
                    stack[-1] = array = _Unknown()
                    if nodes is not None:
                        self.node_arrays[id(array)] = (array, nodes)
                    self._joblib_registered(array, obj, items)
            else:
                self._call(_Wrapper("bound", obj, ("__setstate__",)), (state,), off, "BUILD")
        elif type(obj) is _Wrapper and obj.kind == "partial" and self._partial_state(obj, state, off):
            pass
        elif isinstance(obj, _Unknown | _Wrapper):
            self.coll.hit(*self._setstate_hit(obj, off))
        return stack

    def _shared_target(self, obj: _Call, off: int, how: str) -> None:
        """State set on what an allowed call handed back that the whole process shares (an enum member looked up by
        value, a cached time zone: ``allowlist.shared_result``) changes that object for every later user, as state
        set on a module-level class does."""
        cls = _instance_class(obj)
        if cls is None:
            return
        kind = shared_result(cls)
        if kind is None:
            return
        if kind == "cached" and (
            type(obj.func) is not _Ref or obj.func.canon != cls or self.fresh.get(id(obj)) is obj
        ):
            return  # made by cls.__new__ (NEWOBJ, copyreg): a new object, as their pickles rebuild them
        desc = _describe(obj)
        self.coll.hit(
            RULE_GLOBAL_TAMPERING,
            Severity.CRITICAL,
            f"{desc}:shared",
            f"{how} sets attributes on {desc}, an object the whole process shares ({cls} hands back an enum member "
            "or a cached instance, not a new one)",
            off,
            self._ev({"how": how}),
        )

    def _rebuilt(self, obj: _Call, prior: Any, state: Any, off: int) -> None:
        """A BUILD on a numpy dtype or array that already had one, or that was copied from the memo before it:
        ``__setstate__`` changes the object in place, and what was built on it meanwhile keeps relying on the old
        state. A structured dtype keeps its fields' dtypes, so a field's item size grown afterwards reads past the
        outer item; an array keeps its dtype, so a larger item size reads past its data; a view keeps the array's
        data pointer, which a second BUILD frees. Each state is checked when it is given, but not against what
        already holds the object, so the file fails closed: numpy's pickles build each object once, right after
        making it (and an array's first state replaces an empty one, which no view can reach)."""
        kind = _rebuild_kind(obj)
        if kind is None:
            return
        if kind == "checked":
            if prior is not None:
                desc = _describe(obj)
                self.coll.hit(
                    RULE_TENSOR,
                    Severity.HIGH,
                    f"{desc}:rebuilt",
                    f"BUILD sets the state of {desc} a second time: its __dict__ keeps what the first state set "
                    "and takes the second's keys over it, so neither state alone is what the object holds (a "
                    "sparse matrix's indices, a tree's nodes, a scikit-learn estimator's n_features_in_ or a pandas "
                    "CategoricalDtype's categories replaced after their check; no pickler writes this)",
                    off,
                    self._ev({"state": _short(state), "previous": _short(prior)}),
                )
            return
        if prior is None:
            if self.reused.get(id(obj)) is not obj:
                return
            if kind == "ndarray" and _empty_made(obj) and _holds(state, obj, 0, [_MAX_CONTAINER]):
                # an object array holding itself: numpy's pickler takes it from the memo while writing its own
                # state, and no view of the empty array reaches memory its first state could free. Whatever else
                # took it before its first state keeps the array object itself (a pandas block placement, a
                # Categorical's codes, a sparse matrix's indices) and sees that state, unchecked
                return
            how = "after a copy of it was taken from the memo"
        else:
            how = "a second time"
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            f"numpy.{kind}:rebuilt",
            f"BUILD sets the state of a numpy {kind} {how}: numpy changes it in place, under the dtypes, arrays and "
            "views already built on it, which then read or write outside their memory (numpy never writes this)",
            off,
            self._ev({"state": _short(state), "previous": _short(prior)}),
        )

    def _setstate_hit(self, obj: Any, off: int) -> tuple[Any, ...]:
        """The finding for a BUILD on an object made at load time, whose ``__setstate__`` the analysis cannot see."""
        desc = _describe(obj)
        return (
            RULE_DYNAMIC_CALL,
            Severity.HIGH,
            f"{desc}.__setstate__",
            f"BUILD on an object built at load time calls its __setstate__: {desc}",
            off,
            self._ev({}),
        )

    def _symbol_new(self, func: _BunchNew, args: tuple[Any, ...], kwargs: Any, off: int) -> None:
        """``Symbol.__new__(Symbol, name, **assumptions)`` as protocol 2 pickles a sympy symbol (see
        ``allowlist.SYMPY_SYMBOLS``): sympy keeps the name as given and makes each assumption a bool; anything but a
        string name and booleans of sympy's assumption names is not what sympy pickles: reported."""
        problem = None
        if len(args) != 2 or type(args[1]) is not str:
            problem = f"arguments {_short(args[1:])} (sympy pickles one name)"
        elif kwargs is not None:
            if type(kwargs) is not _Dict or kwargs.hidden or len(kwargs.items) != kwargs.size:
                problem = "assumptions the scanner cannot read"
            else:
                for key, value in kwargs.items:
                    if type(key) is not str or key not in SYMPY_ASSUMPTIONS or type(value) is not bool:
                        problem = f"an assumption {_short(key)}={_short(value)}"
                        break
        if problem is not None:
            self.coll.hit(
                RULE_NOT_ALLOWED,
                Severity.HIGH,
                f"{func.cls.name}.__new__:arguments",
                f"{func.cls.name}.__new__ given {problem}: sympy's pickles give a name and boolean assumptions",
                off,
                self._ev({"args": _short(args)}),
            )

    def _bunch_new(self, func: _BunchNew, args: tuple[Any, ...], off: int, how: str) -> Any:
        """``cls.__new__(cls, *fields)`` of a SciPy tuple-bunch result (see ``_BunchNew``): the generated ``__new__``
        only returns ``tuple.__new__(cls, fields)``, so it is NEWOBJ of the class, judged as such (its keywords are
        ignored by it); PearsonRResult inherits PearsonRResultBase's (``SCIPY_BUNCH_SUBCLASSES``). Given another
        first argument it makes an instance of that class without its constructor, which no SciPy pickle asks:
        reported."""
        first = args[0] if args else None
        if (
            type(first) is _Ref
            and first.module != "?"
            and func.cls.canon in (first.canon, SCIPY_BUNCH_SUBCLASSES.get(first.canon))
        ):
            return self._instantiate(first, args[1:], off, f"{how} via {func.cls.name}.__new__")
        self.coll.hit(
            RULE_NOT_ALLOWED,
            Severity.HIGH,
            f"{func.cls.name}.__new__({_describe(first)})",
            f"{func.cls.name}.__new__ called on {_describe(first)}: its pickles call it on that class only",
            off,
            self._ev({"how": how, "args": _short(args)}),
        )
        return _UNKNOWN

    def _bound_rebuild_only(self, target: Any, off: int) -> None:
        """A ``functools.partial`` made over (or given by its ``__setstate__``) a name the allow-list admits only to be
        kept (see ``allowlist.REBUILD_ONLY``): whoever calls the partial later (a ``FunctionTransformer``, a
        ``DataLoader``'s ``collate_fn``, an optimiser's constraint) runs it on the arguments the pickle bound, which
        is what those names must not be given (scikit-learn's k-means runs trust the shapes of their arrays)."""
        if type(target) is _Ref and target.by_pattern and target.canon in REBUILD_ONLY:
            self.coll.hit(
                RULE_NOT_ALLOWED,
                Severity.HIGH,
                f"{target.canon}:bound",
                f"functools.partial binding arguments to {target.canon}, which the allow-list admits to be kept, "
                "not called: calling the partial runs it on the pickle's arguments",
                off,
                self._ev({"callable": target.canon}),
            )

    def _kept_callables(self, cls: str, state: _Dict, off: int) -> None:
        """A scikit-learn object's attributes that hold a name the allow-list admits only to be kept (see
        ``allowlist.REBUILD_ONLY``) where scikit-learn does not put one: its code calls what such an attribute holds
        (``FunctionTransformer.transform`` runs ``func(X, **kw_args)``, the pickle choosing ``kw_args``: k-means'
        ``_kmeans_single_lloyd`` given centers narrower than X corrupted the heap, scikit-learn 1.9). Only
        ``BisectingKMeans._kmeans_single``, a search's ``scorer_`` and histogram gradient boosting's own
        ``_raw_predict`` (``_SKLEARN_KEPT_OWN``) keep them, as scikit-learn sets them; a ``functools.partial`` over
        one is reported where it is made."""
        for key, value in state.items[:_MAX_KEPT_CALLABLES]:
            if type(value) is not _Ref or not value.by_pattern or value.canon not in REBUILD_ONLY:
                continue
            if type(key) is str and value.canon in _SKLEARN_KEPT.get(key, ()):
                continue
            if type(key) is str and key in _SKLEARN_KEPT_OWN and value.canon == f"{cls}.{key}":
                continue
            self.coll.hit(
                RULE_NOT_ALLOWED,
                Severity.HIGH,
                f"{value.canon}:kept",
                f"{cls} keeps {value.canon} as {_short(key)}: the allow-list admits it to be kept where scikit-learn "
                "keeps it, not called, and the estimator's code calls what this attribute holds",
                off,
                self._ev({"class": cls, "callable": value.canon}),
            )

    def _inert(self, value: Any) -> bool:
        """A callable that may be kept in a loaded object: a name on the allow-list (by name or by pattern).
        Whoever calls it at load time is judged there (a pattern-only class called is still a finding)."""
        if type(value) is _BunchNew:
            return True  # creates an instance of its allowed class, or is reported where it is called
        if type(value) is not _Ref or value.module == "?":
            return False
        return self.coll.classify(value.module, value.qual).allowed

    def _partial_state(self, w: _Wrapper, state: Any, off: int) -> bool:
        """``functools.partial.__setstate__((func, args, kwds, dict))`` replaces what the partial calls: model
        it when the new callable is allow-listed, else leave it to the caller to report. A partial made over one of
        transformers' schedule functions may be given one again: its finding waits for the scheduler that holds
        it (see ``_lambda_schedulers``)."""
        if not (
            type(state) is tuple
            and len(state) == 4
            and type(state[1]) is tuple
            and (state[2] is None or type(state[2]) is _Dict)
            and (state[3] is None or type(state[3]) is _Dict)
        ):
            return False
        if not self._inert(state[0]):
            made = self.lr_made.get(id(w)) if self.lr_made else None
            if not (
                type(made) is _LrPartial
                and made.obj is w
                and type(state[0]) is _Ref
                and state[0].canon in SCHEDULE_LAMBDAS
            ):
                return False
            made.taken += 1
            made.uses.append((state[0], state))  # a copy of the function, held by this state
            made.held.append(self._setstate_hit(w, off))
        w.target = state[0]
        w.args = state[1]
        w.kwargs = state[2]
        self._bound_rebuild_only(state[0], off)
        if self.quant_partials.get(id(w)) is w:
            self._quantization_callable(
                w, off, "functools.partial held by a torch.ao.quantization _PartialWrapper"
            )
        # the keywords are passed to the target at every call (argparse.Namespace(**kw), SimpleNamespace and
        # dict set them as attributes or keys), and the fourth item becomes the partial's own __dict__ (a
        # __setstate__ there is what the next BUILD on the partial calls)
        self._check_state_keys(state[2], off, "functools.partial keywords")
        self._check_state_keys(state[3], off, "BUILD of a functools.partial")
        # partial.__setstate__ keeps both dicts themselves (the keywords when a plain dict): a later store into
        # either (through the memo) is judged as they were
        for mapping, how in (
            (state[2], "functools.partial keywords"),
            (state[3], "BUILD of a functools.partial"),
        ):
            if type(mapping) is _Dict:
                self.kept[id(mapping)] = (
                    mapping,
                    functools.partial(self._check_state_keys, mapping, how=how),
                )
        return True

    def _lr_scheduler_made(self, made: _Call, name: str, args: tuple[Any, ...]) -> None:
        """``copyreg.__newobj__(cls)`` or ``copyreg._reconstructor(cls, object, None)`` called directly (how protocols
        0 and 1 write an object) of a ``LAMBDA_SCHEDULERS`` class: the instance without its constructor, as NEWOBJ
        makes it (see ``_LrScheduler``). With more arguments ``__new__`` or the base's ``__init__`` runs on them."""
        cls = args[0] if args else None
        if type(cls) is not _Ref or cls.pending is None or cls.canon not in LAMBDA_SCHEDULERS:
            return
        bare = (
            len(args) == 1
            if name == "copyreg.__newobj__"
            else name == "copyreg._reconstructor"
            and len(args) == 3
            and type(args[1]) is _Ref
            and args[1].canon == "builtins.object"
            and args[2] is None
        )
        if bare:
            self.lr_made[id(made)] = _LrScheduler(made, cls, args)

    def _lr_build(self, obj: Any, state: Any) -> None:
        """Count a BUILD (or ``_set_obj_state``) on a scheduler or schedule partial being followed, and keep its
        state: more than one, or a state the VM did not keep as the object's last, is not admitted."""
        made = self.lr_made.get(id(obj))
        if made is not None and made.obj is obj:
            made.builds += 1
            made.state = state

    def _lambda_schedulers(self) -> None:
        """Admit the ``LambdaLR``/``MultiplicativeLR`` instances ``torch.save`` writes for transformers' schedules.

        Such a scheduler's ``step()`` calls each entry of its ``lr_lambdas`` with the epoch, and ``hasattr``/attribute
        lookups on the instance find its state's keys before the class's methods (``get_lr``, ``step``,
        ``_get_closed_form_lr``). So one is admitted only when it was made without its constructor and given exactly
        one state, judged as it stands at the end of the stream (lists and dicts filled later are seen): a plain
        dict whose keys are the attributes torch's ``LRScheduler.__init__`` and ``LambdaLR.__init__`` set, its
        ``optimizer`` an object this pickle built (judged where it was built), the other values numbers or lists of
        numbers and tensors, and ``lr_lambdas`` a list no SETITEM wrote into whose every entry is a partial made by
        a direct ``functools.partial`` call over one of ``SCHEDULE_LAMBDAS``, given at most that partial's own
        state once, never called, with number arguments and the function's own keywords (``_inert_schedule``).
        Then the copies of the scheduler class, of ``functools.partial`` and of the schedule function that these
        objects took count as used harmlessly (``_settle``); a copy of one of them anywhere else still makes its
        import the finding it was, and a schedule partial not admitted reports the BUILD it was given. Nothing is
        admitted after a plain-unpickler reading of joblib array data, which may have changed these objects."""
        made = self.lr_made
        if not made:
            return
        admitted: set[int] = set()
        credited: set[tuple[int, int]] = set()

        def credit(ref: _Ref, container: Any) -> None:
            if ref.pending is None:
                return
            if container is not None:
                key = (id(ref), id(container))
                if key in credited:
                    return  # the same tuple reused (memo GET): it held one copy
                credited.add(key)
            ref.pending[1] += 1

        if not self.plain_read:
            bare_lists: set[int] = set()
            for record in made.values():
                if type(record) is not _LrScheduler:
                    continue
                partials = self._scheduler_partials(record)
                if partials is None:
                    continue
                credit(record.cls, record.container)
                for key, lambdas in record.state.items:
                    if key != "lr_lambdas" or id(lambdas) in bare_lists:
                        continue
                    bare_lists.add(id(lambdas))  # one list shared by two schedulers holds its copies once
                    for entry in lambdas:
                        if type(entry) is _Ref and entry.canon in SCHEDULE_FUNCTIONS:
                            credit(entry, None)  # each entry is one stack copy of the import (memo GETs)
                for partial in partials:
                    if id(partial) in admitted:
                        continue
                    admitted.add(id(partial))
                    credit(partial.maker, None)
                    for ref, container in partial.uses:
                        credit(ref, container)
        for record in made.values():
            if type(record) is _LrPartial and id(record) not in admitted:
                for hit in record.held:
                    self.coll.hit(*hit)
        made.clear()

    def _scheduler_partials(self, record: _LrScheduler) -> list[_LrPartial] | None:
        """The schedule partials of an inert scheduler's ``lr_lambdas`` (see ``_lambda_schedulers``), else None."""
        state = record.state
        if record.builds != 1 or record.obj.state is not state or record.obj.items is not None:
            return None
        if type(state) is not _Dict or state.hidden or len(state.items) != state.size:
            return None
        partials: list[_LrPartial] | None = None
        for key, value in state.items:
            if type(key) is not str:
                return None
            if key == "lr_lambdas":
                if (
                    type(value) is not list
                    or self._length(value) != len(value)
                    or id(value) in self.list_stores
                ):
                    return None
                partials = partials or []
                for entry in value:
                    if type(entry) is _Ref and entry.canon in SCHEDULE_FUNCTIONS:
                        continue  # a bare schedule function (credited by _lambda_schedulers)
                    partial = self.lr_made.get(id(entry))
                    if (
                        type(partial) is not _LrPartial
                        or partial.obj is not entry
                        or not self._inert_schedule(partial)
                    ):
                        return None
                    partials.append(partial)
            elif key == "optimizer":
                if type(value) is not _Call:
                    return None
            elif key not in _SCHEDULER_DATA or not self._scheduler_value(value):
                return None
        return partials

    def _scheduler_value(self, value: Any) -> bool:
        """A number, or a list of numbers and tensors (``base_lrs``, ``_last_lr``)."""
        if type(value) is list:
            if self._length(value) != len(value):
                return False
            return all(
                _number(v) or (type(v) is _Call and type(v.func) is _Ref and v.func.canon in _TENSOR_RESULTS)
                for v in value
            )
        return _number(value)

    @staticmethod
    def _inert_schedule(partial: _LrPartial) -> bool:
        """A schedule partial as transformers makes it: over one of ``SCHEDULE_LAMBDAS``, never called, given at most
        one state (the one ``functools.partial.__reduce__`` writes, without a ``__dict__``), with number arguments and
        keywords the function takes (the strings it compares against where it takes them)."""
        w = partial.obj
        if partial.called or partial.builds > 1 or partial.builds != partial.taken:
            return False
        if partial.builds:
            extra = partial.state[3]  # _partial_state took it: a 4-tuple
            if extra is not None and (type(extra) is not _Dict or extra.size):
                return False
        target = w.target
        if type(target) is not _Ref or target.canon not in SCHEDULE_LAMBDAS:
            return False
        if not all(_number(a) for a in w.args):
            return False
        kwargs = w.kwargs
        if kwargs is None:
            return True
        if type(kwargs) is not _Dict or kwargs.hidden or len(kwargs.items) != kwargs.size:
            return False
        keywords = SCHEDULE_LAMBDAS[target.canon]
        for key, value in kwargs.items:
            if type(key) is not str or key not in keywords:
                return False
            if not (_number(value) or (type(value) is str and value in keywords[key])):
                return False
        return True

    def _fx_module(self, args: tuple[Any, ...], off: int) -> bool:
        """``reduce_graph_module(body, import_block)``, how torch.save writes a torch.fx GraphModule: torch execs
        ``import_block + body["_code"]`` (else ``body["code"]``) and re-traces the ``forward`` it defines with the
        ``_tracer_cls`` of the body (torch.fx's own ``Tracer``, also when it is None, or ``make_fx``'s
        ``PythonKeyTracer``) and ``_tracer_extras`` as keywords. Benign when both are constants, the code is what
        torch.fx writes (``fx.judge_fx_code``; under ``PythonKeyTracer`` it may call nothing but named functions,
        since that tracer runs a submodule's forward and hooks where ``Tracer`` records the call) and the tracer is
        torch's;
        the body's other entries (submodules, parameters, hooks) are objects this pickle made, judged as such.
        Anything else leaves the import reported as a code-execution callable."""
        from loopwarden.checks.models.fx import judge_fx_code

        if len(args) != 2 or type(args[0]) is not _Dict or type(args[1]) is not str:
            return False
        body = args[0]
        if body.hidden or len(body.items) != body.size or not all(type(k) is str for k, _ in body.items):
            return False  # an entry not kept may be the code the loader runs
        last = dict(body.items)
        code = last.get("_code")
        if not (type(code) is str and code):
            code = last.get("code")
        tracer = last.get("_tracer_cls", _FX_TRACER)
        extras = last.get("_tracer_extras")
        # absent or None (a GraphModule built from a graph, not traced: convert_fx's quantized model): torch's
        # Tracer; else an import of one of torch's tracers
        if type(tracer) is _Ref:
            leaf_modules = _FX_TRACERS.get(tracer.canon)
        else:
            leaf_modules = True if tracer is None or tracer == _FX_TRACER else None
        if (
            type(code) is not str
            or leaf_modules is None
            or not (extras is None or (type(extras) is _Dict and not extras.items and not extras.size))
            or type(last.get("_graphmodule_cls_name", "")) is not str
        ):
            return False

        def allowed(module: str, name: str) -> bool:
            c = self.coll.classify(module, name)
            return c.allowed and not c.by_pattern

        why, foreign = judge_fx_code(args[1], code, allowed, leaf_modules=leaf_modules)
        if why is not None:
            self.coll.hit(
                "LW-MODEL-001",
                Severity.CRITICAL,
                f"{_FX_REDUCE}:code",
                f"torch.fx GraphModule whose code torch.load executes is not what torch.fx writes: {why}",
                off,
                self._ev({"how": "REDUCE", "code": _short(code)}),
            )
            return False
        for module, name, wrapped in foreign:
            # exec imports the module (its code runs) and re-tracing calls the function unless fx.wrap made it a
            # leaf: judged as a pickle's import and call of it
            ref = _Ref(module, name)
            self._judge(ref, off, "imported by torch.fx GraphModule code")
            if ref.user_class and not wrapped:
                self.coll.hit(
                    RULE_NOT_ALLOWED,
                    Severity.HIGH,
                    f"{ref.name}()",
                    f"{ref.name}: function of an unknown module called at load time (torch re-traces the "
                    "GraphModule's forward)",
                    off,
                    self._ev({"how": "REDUCE"}),
                )
        self._check_state_keys(body, off, "torch.fx GraphModule body")
        if type(tracer) is _Ref and tracer.pending is not None:
            tracer.pending[1] += (
                1  # the tracer torch.fx saved: its own Tracer, subclassed to re-trace the code
            )
        return True

    def _model_output_call(self, func: _Ref, args: tuple[Any, ...], off: int, how: str) -> _Call:
        """``cls(*field_values)`` of a plain transformers ModelOutput dataclass (``ModelOutput.__reduce__``): the
        generated ``__init__`` stores the fields, then ``ModelOutput.__post_init__`` runs. When every field but the
        first is None and the first is not a tensor, it takes the first field's ``(name, value)`` pairs (the items of
        a mapping, the leading pairs of an iterable) and sets each as an attribute and an item of the instance,
        through ``ModelOutput.__setattr__``, which calls ``self._replace_old_cache_name``: such pairs are judged as a
        BUILD state would be (``__setstate__``, ``append``, ``_replace_old_cache_name`` planted there run at load)."""
        result = _Call(func, args)
        if args and all(a is None for a in args[1:]):
            self._model_output_first(func, args[0], off, how, result)
        return result

    def _model_output_first(
        self, func: _Ref, first: Any, off: int, how: str, result: _Call | None = None
    ) -> None:
        """The pairs ``ModelOutput.__post_init__`` sets as attributes when ``first`` is the only field given."""
        if first is None or type(first) in (str, bytes, int, float, bool, complex) or type(first) is _Ref:
            return  # not iterable, or iterated into values that are not pairs (a class: an enum's members)
        mappings: list[_Dict] = []
        if type(first) is _Dict:
            mappings.append(first)
        elif type(first) is tuple or type(first) is list:
            lead = first[0] if first else None
            if (type(lead) is tuple or type(lead) is list) and len(lead) == 2:
                pairs = self._pairs(first)
                if pairs is not None:
                    mappings.append(pairs)
        elif type(first) is _Call and type(first.func) is _Ref:
            if first.func.canon in _TENSOR_RESULTS or first.func.canon in _ARRAY_REBUILDS:
                return  # is_tensor(first): kept as the field
            cls = _rebuilt_pattern_class(first)
            if cls is not None:
                self.coll.hit(
                    RULE_NOT_ALLOWED,
                    Severity.HIGH,
                    f"{func.name}({cls.name})",
                    f"{func.name}.__post_init__ iterates its only field, an instance of {cls.name} rebuilt from "
                    "pickle state (a class allowed for rebuilding only, whose iteration methods were never reviewed)",
                    off,
                    self._ev({"how": how, "argument": cls.name}),
                )
                return
            found, unseen = self._state_mappings(first)
            mappings.extend(found)
            if unseen is not None:
                first = _UNKNOWN
        else:
            first = _UNKNOWN
        if first is _UNKNOWN:
            self.coll.hit(
                RULE_DUNDER_STATE,
                Severity.HIGH,
                f"{func.name}.__post_init__",
                f"{func.name} is built with a first field computed at load time: ModelOutput.__post_init__ sets its "
                "(name, value) pairs as attributes, which may be special attributes or methods the loader calls",
                off,
                self._ev({"how": how}),
            )
            return
        for mapping in mappings:
            self._check_state_keys(mapping, off, f"{func.name}.__post_init__", result)
            if result is not None:
                self._plant(result, mapping)
                if result.items is None:
                    result.items = _Dict()
                for key, value in mapping.items[:_MAX_CONTAINER]:
                    if value is not None:
                        result.items.add(key, value)  # self[name] = value: the round-10 item checks apply

    def _qconfig_args(self, func: _Ref, args: tuple[Any, ...], off: int, how: str) -> None:
        """QConfig(activation, weight): what quantization preparation calls to make each observer."""
        for value in args[:2]:
            self._quantization_callable(value, off, f"{func.name} ({how})")

    def _partial_wrapper_state(self, state: Any, off: int) -> None:
        """``torch.ao.quantization`` ``_PartialWrapper``: restoring it only sets ``p`` and ``callable_args``, but
        preparing a model for quantization calls ``p(**keywords)`` and every ``callable_args`` value: what it holds
        must be something quantization may call (see ``_quantization_callable``)."""
        for part in self._state_mappings(state)[0]:
            for key, value in part.items:
                if key == "p":
                    self._quantization_callable(
                        value, off, "the callable of a torch.ao.quantization _PartialWrapper"
                    )
                elif key == "callable_args":
                    if type(value) is _Dict or type(value) is _Call:
                        for mapping in self._state_mappings(value)[0]:
                            self._callable_args(mapping, off)
                            # the wrapper keeps the dict itself: a later store into it is judged too
                            self.kept[id(mapping)] = (
                                mapping,
                                functools.partial(self._callable_args, mapping),
                            )
                    else:
                        self._quantization_callable(value, off, "the callable_args of a _PartialWrapper")

    def _callable_args(self, mapping: _Dict, off: int) -> None:
        """A _PartialWrapper's ``callable_args``: each value is called when the wrapper is."""
        for _, arg in mapping.items[:64]:
            self._quantization_callable(arg, off, "a callable_args value of a _PartialWrapper")

    def _quantization_callable(self, value: Any, off: int, how: str, depth: int = 0) -> None:
        """Judge what quantization preparation calls (a QConfig's fields, a _PartialWrapper's partial, and the
        classes that partial hands the fake quantizer, which calls its ``observer`` keyword): a name on the
        allow-list by name, or an observer or fake-quantizer class (their constructors only make tensors). A class
        allowed for rebuilding only would run its constructor on the pickle's keywords; anything built at load time
        is not known. Names off the allow-list were reported where the pickle imported them."""
        problem: str | None = None
        desc = _describe(value)
        if type(value) is _Ref:
            if value.module == "?":
                problem = "a callable whose name is computed at load time"
            elif (value.by_pattern or value.user_class) and not value.canon.startswith(_QUANT_CALLABLE):
                problem = (
                    "a class allowed for rebuilding only: its constructor would run on the pickle's keywords"
                )
        elif type(value) is _Wrapper and value.kind == "partial":
            if depth < _MAX_UNWRAP:
                self.quant_partials[id(value)] = value
                self._quantization_callable(value.target, off, how, depth + 1)
                kwargs = value.kwargs
                handed = list(value.args)[:64]
                if type(kwargs) is _Dict:
                    handed += [v for _, v in kwargs.items[:64]]
                for arg in handed:
                    if type(arg) is _Ref or type(arg) is _Wrapper:
                        self._quantization_callable(arg, off, f"{how}, handed to {desc}", depth + 1)
                return
            problem = "functools.partial nested too deep"
        elif type(value) is _Call:
            if _instance_class(value) == _PARTIAL_WRAPPER:
                return  # judged at its own BUILD
            problem = "an object built at load time, whose __call__ quantization would run"
        elif value is None or type(value) in (str, bytes, int, float, bool):
            return  # not callable: preparation fails
        else:
            problem = "a callable built at load time"
        if problem is None:
            return
        self.coll.hit(
            RULE_NOT_ALLOWED,
            Severity.HIGH,
            f"quantization:{desc}",
            f"{how} is {desc}, which preparing the model for quantization calls: {problem}",
            off,
            self._ev({"how": how, "value": _short(value)}),
        )

    def _class_state(self, cls: str, state: Any, off: int) -> None:
        """State handed to ``cls.__setstate__`` that the class turns into code, or trusts as an index."""
        if cls in _RNG_CTORS or cls in _RNG_CLASSES:
            self._rng_state(cls, state, off)
        if cls == _DATA_LOADER:
            self._loader_callables(state, off)
        if cls.startswith("torch.") and cls.rpartition(".")[2] == "RemovableHandle":
            # the class itself, or as torch.nn.modules.module and torch.optim.optimizer import it
            self._hook_handle_state(state, off)
        if cls.startswith("statsmodels."):
            formula = self._statsmodels_formula(state)
            if formula is not None:
                self.coll.hit(
                    "LW-MODEL-001",
                    Severity.CRITICAL,
                    f"{cls}.__setstate__",
                    f"{cls}: its __setstate__ rebuilds the design matrices from the state's formula, whose terms "
                    f"patsy/formulaic evaluate as Python in the loader's frames; this formula calls or reaches "
                    f"more than plain column transforms: {_short(formula)}",
                    off,
                    self._ev({"formula": _short(formula)}),
                )
        if cls.rpartition(".")[0] in SCIPY_DIST_MODULES and not _scipy_dist_state(state):
            self.coll.hit(
                "LW-MODEL-001",
                Severity.CRITICAL,
                f"{cls}.__setstate__",
                f"{cls}: its __setstate__ exec()s the state's _parse_arg_template, which is not the argument "
                "parser SciPy generates, or calls a method the state replaces (_attach_methods), or the state "
                "cannot be read",
                off,
                self._ev({"state": _short(state)}),
            )

    def _loader_callables(self, state: Any, off: int) -> None:
        """A ``DataLoader`` saved whole keeps its ``collate_fn`` and ``worker_init_fn`` in its ``__dict__``; iterating
        it calls the one with each sample its dataset gives (``batch_size=None``: the item itself, any value the
        pickle chose) and the other with each worker's number. A name the allow-list admits only to be kept
        (``allowlist.REBUILD_ONLY``) there runs on those arguments: sentence-transformers' ``Transformer`` called
        with a dataset's string loaded the model and tokenizer at that path (from the Hub for a repository id),
        sentence-transformers 6.2. torch's own collate functions are what a DataLoader holds by default."""
        pairs = _pairs_of(state)
        if pairs is None:
            return
        for key, value in pairs[:256]:
            if type(value) is not _Ref or not value.by_pattern or value.canon not in REBUILD_ONLY:
                continue
            if key == "collate_fn" and value.canon in _LOADER_COLLATES:
                continue
            self.coll.hit(
                RULE_NOT_ALLOWED,
                Severity.HIGH,
                f"{value.canon}:kept",
                f"a torch DataLoader keeps {value.canon} as {_short(key)}: the allow-list admits it to be kept where "
                "its library keeps it, not called, and iterating the loader calls it on the dataset's items",
                off,
                self._ev({"class": _DATA_LOADER, "callable": value.canon}),
            )

    def _hook_handle_state(self, state: Any, off: int) -> None:
        """``RemovableHandle.__setstate__((hooks, id[, extras]))`` also sets the class's ``next_id``, the counter
        every hook registered afterwards in the process takes its key from, to ``max(next_id, id + 1)``. torch
        writes the int it gave the handle. An id of another type becomes the counter: a float at 2**53 no longer
        grows (``+= 1`` leaves it), a tensor is one object incremented in place, so every later hook of a module
        takes the same key and replaces the one before it (torch 2.13: the first of two forward hooks registered
        after the load never ran). Anything but an int id is reported as a change to process-wide state; an id the
        scanner cannot read leaves the file unverified."""
        ident: Any
        if type(state) in (tuple, list):
            if len(state) < 2:
                return  # __setstate__ fails on state[1] before touching the counter
            ident = state[1]
        elif type(state) is _Dict and not state.hidden and state.size == len(state.items):
            # state[0], state[1] and len(state) of a dict keyed 0 and 1 work as well
            found = [v for k, v in state.items if type(k) in (int, bool) and k == 1]
            if not found:
                return
            ident = found[-1]
        elif state is None or type(state) in (str, bytes, int, float, bool):
            return  # __setstate__ fails on it before touching the counter
        else:
            self.coll.unverified.append(f"{_REMOVABLE_HANDLE} state the scanner cannot read at offset {off}")
            return
        if type(ident) is int:
            return
        if ident is _UNKNOWN or isinstance(ident, _Unknown):
            self.coll.unverified.append(f"{_REMOVABLE_HANDLE} id the scanner cannot read at offset {off}")
            return
        if ident is None or type(ident) in (str, bytes, list, tuple, _Dict):
            return  # ``id + 1`` raises before the counter is set
        self.coll.hit(
            RULE_GLOBAL_TAMPERING,
            Severity.CRITICAL,
            f"{_REMOVABLE_HANDLE}:next_id",
            f"a {_REMOVABLE_HANDLE} with the id {_short(ident)} (torch writes an int): its __setstate__ makes that "
            "the counter every hook registered later in the process is keyed by, so later hooks can share a key "
            "and replace one another",
            off,
            self._ev({"id": _short(ident)}),
        )

    def _rng_state(self, cls: str, state: Any, off: int) -> None:
        """Report the state of a numpy bit generator (or of the RandomState or Generator over it) whose index its C
        code trusts (see ``_RNG_INDEXES``)."""
        self._state_problem(
            cls,
            _rng_state_problem(state),
            f"{cls}:state",
            "with {}: the generator's C code reads its key or buffer at that index without a bounds check at the "
            "first number drawn after loading (SIGSEGV)",
            off,
        )

    def _statsmodels_formula(self, state: Any) -> Any:
        """The formula a statsmodels ``ModelData.__setstate__`` would evaluate, when it is not a plain one.

        A model fitted from a formula pickles its data with ``restore_model_spec`` (0.15; ``restore_design_info``
        before) instead of the design, and ``__setstate__`` rebuilds it with ``get_matrices(d["formula"], data,
        eval_env=depth)``: every factor of the formula is Python that patsy (or formulaic) ``eval``s in one of the
        loader's frames (confirmed: ``sm.load_pickle`` of an OLS result whose formula was ``y ~ I(<call> or x)``
        ran the call). None when the state does not ask for that or its formula is one
        :func:`_plain_formula` admits; else the formula (or the unknown value) to report."""
        parts = self._state_mappings(state)[0]
        keys = {k for part in parts for k, _ in part.items if type(k) is str}
        if not keys & {"restore_model_spec", "restore_design_info"}:
            return None
        formulas = [v for part in parts for k, v in part.items if type(k) is str and k == "formula"]
        if not formulas:
            return None  # __setstate__ fails on the missing key before evaluating anything
        formula = formulas[-1]
        return None if type(formula) is str and _plain_formula(formula) else formula

    def _block_placements(self, blocks: Any, off: int) -> None:
        """pandas' ``BlockManager(blocks, axes)`` checks that the blocks' placements add up to the number of
        columns, not that each placement lies among them; its Cython ``_rebuild_blknos_and_blklocs`` (run at the
        first column access) then writes at every placement index without bounds checks. Checked when every
        placement is a constant ``slice`` or integer array, as pandas pickles them."""
        if type(blocks) is not tuple and type(blocks) is not list:
            return
        indices: list[int] = []
        for block in blocks:
            if type(block) is not _Call or type(block.func) is not _Ref or len(block.args) < 2:
                return
            if block.func.canon not in _PANDAS_BLOCKS:
                return
            placement = _placement(block.args[1])
            if placement is None:
                return
            indices.extend(placement)
        bad = [i for i in indices if i < 0 or i >= len(indices)]
        if bad:
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                "pandas.BlockManager:placement",
                f"pandas block placements reach column {bad[0]} of {len(indices)}: pandas writes its block index "
                "at that position without a bounds check",
                off,
                self._ev({"columns": len(indices), "index": bad[0]}),
            )

    def _arrow_geometry(self, data: Any, off: int) -> None:
        """``pyarrow.lib._restore_array((type, length, null_count, offset, buffers, children, dictionary))``
        builds the array, and its children and dictionary the same way, without validating them: a length or
        offset past its buffers, a list offset past its child's length, a struct or fixed-size list child shorter
        than its parent needs, makes every access read memory the array does not own (a list array whose last
        offset passed its child crashed ``to_pylist()`` with SIGSEGV, pyarrow 26). Checked for the types the
        allow-list admits: fixed-width and string/binary aliases, timestamps and decimals, lists, large lists,
        fixed-size lists, maps, structs and dictionaries, with constant sizes."""
        budget = [_MAX_ARROW_NODES]
        problem = self._arrow_problem(data, 0, budget)
        if problem is None:
            return
        where, what = problem
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            f"pyarrow.lib._restore_array:{where}",
            f"pyarrow array of type {where} rebuilt without validation reaches outside its buffers: {what}",
            off,
            self._ev({"length": _short(data[1] if type(data) is tuple and len(data) > 1 else None)}),
        )

    def _arrow_problem(self, data: Any, depth: int, budget: list[int]) -> tuple[str, str] | None:
        """What makes one pickled array's data (and its children's, its dictionary's) reach outside its buffers,
        as ``(type, problem)``; None when nothing does or it cannot be read (a type or size not constant)."""
        budget[0] -= 1
        if type(data) is not tuple or len(data) < 5 or depth > _MAX_ARROW_DEPTH or budget[0] < 0:
            return None
        kind, length, offset, buffers = data[0], data[1], data[3], data[4]
        form = _arrow_kind(kind)
        if form is None or type(length) is not int or type(offset) is not int:
            return None
        if type(buffers) is not list and type(buffers) is not tuple:
            return None
        name, param = form
        children: list[Any] | tuple[Any, ...] = (
            data[5] if len(data) > 5 and type(data[5]) in (list, tuple) else ()
        )
        sizes = [_arrow_buffer(b) for b in buffers]
        end = offset + length
        if length < 0 or offset < 0:
            return name, "a negative length or offset"
        if sizes and sizes[0] is not None and sizes[0] * 8 < end and sizes[0] != -1:
            return name, f"a validity bitmap of {sizes[0]} bytes for {end} slots"
        problem = None
        if name in _ARROW_WIDTHS or name in ("timestamp", "decimal128", "decimal256", "dictionary"):
            width = _ARROW_WIDTHS.get(name, param)
            need = (end + 7) // 8 if width == 0 else end * width
            if len(sizes) > 1 and sizes[1] is not None and sizes[1] < need:
                problem = f"{need} bytes of values in a buffer of {sizes[1]}"
        elif name in _ARROW_OFFSETS or name in ("list", "large_list", "map"):
            width = _ARROW_OFFSETS.get(name, param)
            nested = name in ("list", "large_list", "map")
            if nested:
                target = _arrow_length(children[0]) if len(children) == 1 else None
            else:
                target = sizes[2] if len(sizes) > 2 else None
            problem = _arrow_offsets_problem(buffers, sizes, offset, length, width, target, nested)
        elif name == "fixed_size_list":
            child = _arrow_length(children[0]) if len(children) == 1 else None
            if child is not None and child < end * param:
                problem = f"{end} lists of {param} values over a child of {child}"
        elif name == "struct":
            for child in children:
                size = _arrow_length(child)
                if size is not None and size < end:
                    problem = f"a child of {size} values for {end} slots"
                    break
        if problem is not None:
            return name, problem
        for child in [*children, data[6] if name == "dictionary" and len(data) > 6 else None]:
            found = self._arrow_problem(child, depth + 1, budget)
            if found is not None:
                return found
        return None

    def _ndarray_state(self, obj: _Call, state: Any, off: int) -> None:
        """``ndarray.__setstate__`` of an object array (any dtype numpy pickles as a list of items) checks that
        the data is a list, never its length: ``_setlist_pkl`` then reads ``shape``'s element count of items from
        it, past its end, and stores whatever memory lies there as object pointers (numpy 2.4 and numpy's main
        branch, 2026-08). The state is ``(version, shape, dtype, fortran, data)`` or, version 0, without the
        version; ``numpy.ma`` arrays append the mask and fill value and hand the first part on."""
        if type(state) is not tuple or len(state) < 4:
            return
        shape, data = (state[0], state[3]) if len(state) == 4 else (state[1], state[4])
        dtype = state[1] if len(state) == 4 else state[2]
        self.arrays[id(obj)] = (obj, dtype, shape, data)
        if (state[2] if len(state) == 4 else state[3]) is not False:
            self.fortran.add(id(obj))
        self._node_array(obj, dtype, shape, data, off)
        if type(shape) is not tuple or type(data) in (bytes, bytearray, str) or data is None:
            return  # numpy rejects the state, or reads the bytes of a plain array
        if type(data) is not list:
            if _list_pickled(dtype):
                self.coll.hit(
                    RULE_TENSOR,
                    Severity.HIGH,
                    "numpy.ndarray:list-length",
                    "numpy object array rebuilt from a list computed at load time: numpy reads as many items as "
                    "the shape says, whatever the list's length, and stores memory past its end as object pointers",
                    off,
                    self._ev({"shape": _short(shape), "data": _short(data)}),
                )
            return
        if any(type(d) is not int for d in shape):
            count: int | None = None  # a computed dimension: the element count cannot be checked
        else:
            if any(d < 0 for d in shape):
                return  # numpy rejects a negative dimension first
            count = math.prod(shape)
        length = self._length(data)
        if count is not None and count <= length:
            return
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            "numpy.ndarray:list-length",
            "numpy object array rebuilt from a list "
            + (
                f"of {length} items for {count} elements"
                if count is not None
                else f"of {length} items for a shape computed at load time"
            )
            + ": numpy reads items past the list's end and stores that memory as object pointers",
            off,
            self._ev({"shape": _short(shape), "items": length}),
        )

    def _node_array(self, obj: Any, dtype: Any, shape: Any, data: Any, off: int) -> None:
        """Check an array whose dtype is a scikit-learn tree node dtype (see ``_NodeCheck``) and remember the
        result for the tree that takes it (``_node_owner``)."""
        layout = _node_layout(dtype)
        if layout is None:
            return
        if isinstance(layout, str):
            self.node_arrays[id(obj)] = (obj, layout)
            return
        if type(shape) is not tuple or len(shape) != 1 or type(shape[0]) is not int or shape[0] < 0:
            self.node_arrays[id(obj)] = (obj, "a node array whose shape is not one constant dimension")
            return
        chunks = _array_chunks(data)
        if chunks is None:
            self.node_arrays[id(obj)] = (obj, "node array data the scanner cannot read")
            return
        low, high = _data_size(data)
        if not low <= shape[0] * layout.itemsize <= high:  # numpy rejects data of another size
            self.node_arrays[id(obj)] = (obj, "node array data whose size is not the array's")
            return
        check = _NodeCheck(shape[0], layout)  # only now: it holds a byte per node the shape declares
        try:
            for chunk in _timed(chunks, self.budget):
                check.feed(chunk)
        except ValueError:  # text outside latin-1: numpy fails to load it
            self.node_arrays[id(obj)] = (obj, "node array data that is not latin-1 text")
            return
        if not check.complete():  # numpy rejects data of another size
            self.node_arrays[id(obj)] = (obj, "node array data whose size is not the array's")
            return
        self.node_arrays[id(obj)] = (obj, check)
        self._tree_nodes(check, off)

    def _node_owner(self, obj: _Call, cls: str, state: Any, off: int) -> None:
        """A scikit-learn ``Tree`` or histogram ``TreePredictor`` given its node array: the array must be one the
        scanner checked (anything else is unverified), and no node may read a feature the tree does not have
        (``Tree(n_features, n_classes, n_outputs)``; predict indexes the row with it unchecked)."""
        nodes = state.get("nodes") if type(state) is _Dict else _UNKNOWN
        found = self.node_arrays.get(id(nodes))
        if found is None or found[0] is not nodes:
            self.coll.unverified.append(
                f"{cls} at offset {off} takes a node array the scanner cannot check (built at load time or of "
                "another form than numpy writes)"
            )
            return
        check = found[1]
        if isinstance(check, str):
            self.coll.unverified.append(f"{cls} at offset {off}: {check}")
            return
        self.node_arrays[id(obj)] = (obj, check)  # the estimator holding it checks its feature count too
        if self.categories_pending:
            held = self.categories_pending.pop(id(obj), None)
            if held is not None and held[0] is obj and check.max_categorical >= 0:
                self._state_problem(
                    cls,
                    _categories_verdict(check.max_categorical, held[1]),
                    "sklearn.ensemble:bitsets",
                    "given its state after its estimator, with {}: predict maps a categorical split's feature to "
                    "its row of known categories through an array of the bin mapper's features, unchecked",
                    off,
                )
        if check.max_bitset >= 0 and type(state) is _Dict:
            self._state_problem(
                cls,
                self._bitset_problem(check.max_bitset, state),
                "sklearn.ensemble:bitsets",
                "with {}: predict reads the bitset row a categorical split names without a bounds check",
                off,
            )
        if cls != "sklearn.tree._tree.Tree" or type(obj.args) is not tuple or not obj.args:
            return
        self._tree_depth(check, state, off)
        n_features = obj.args[0]
        if type(n_features) is int and check.max_feature >= n_features:
            self._feature_hit(cls, check.max_feature, n_features, off)

    def _tree_depth(self, check: _NodeCheck, state: Any, off: int) -> None:
        """``Tree.decision_path`` (and IsolationForest's scores through it) allocates ``1 + max_depth`` entries
        per row for the nodes on its path and writes each node it passes, unchecked: the state's ``max_depth``
        (taken as it is by ``__setstate__``) must be at least the depth of the deepest node."""
        given = state.get("max_depth") if type(state) is _Dict else _UNKNOWN
        if type(given) is not int:
            return  # __setstate__ refuses anything but an integer
        if check.depth is None:
            self.coll.unverified.append(
                f"sklearn.tree._tree.Tree at offset {off}: a tree too large or too deep to follow for its max_depth"
            )
        elif given < check.depth:
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                "sklearn.tree:depth",
                f"scikit-learn tree with max_depth {given} whose nodes reach depth {check.depth}: decision_path "
                "writes every node on a row's path into 1 + max_depth entries unchecked, past them",
                off,
                self._ev({"max_depth": given, "depth": check.depth}),
            )

    def _bitset_problem(self, row: int, state: _Dict) -> str | None:
        """A histogram predictor's categorical split ``bitset_idx`` is a row of its ``raw_left_cat_bitsets``
        (predict) and ``binned_left_cat_bitsets`` (predict on binned data), each row eight uint32 words that the
        category's byte indexes. Arrays not built before the predictor (a later BUILD changes what it holds) or
        that the scanner cannot read are unverified."""
        for name in ("raw_left_cat_bitsets", "binned_left_cat_bitsets"):
            dims = self._dims(state.get(name), 2)
            if dims is None:
                return f"?{name} the scanner cannot read (for categorical splits)"
            if dims[0] <= row or dims[1] < 8:
                return f"a categorical split reading row {row} of {name} of shape {dims}"
        return None

    def _binary_tree(self, cls: str, state: Any, off: int) -> None:
        """scikit-learn's ``KDTree`` and ``BallTree`` (also inside nearest-neighbour estimators) take their
        arrays from the pickled state unchecked, and queries walk them without bounds checks: node ``i``'s
        children are nodes ``2i+1`` and ``2i+2``, its points ``idx_array[idx_start:idx_end]``, each an index into
        ``data``; ``node_bounds`` is read per node and feature. Anything outside reads (and writes, through the
        heaps) memory the arrays do not own. Checked as a hardened loader would; arrays the scanner cannot read
        make the file unverified."""
        if type(state) is not tuple or len(state) < 13:
            return  # scikit-learn's __setstate__ fails on it
        self._state_problem(
            cls,
            self._binary_tree_problem(cls, state),
            "sklearn.neighbors:tree",
            "state with {}: queries walk the tree's arrays without bounds checks and reach memory outside them",
            off,
        )

    def _exported_programs(self) -> None:
        """Check each ExportedProgram's BUILD state (see :meth:`_exported_program_state`) once the stream has
        ended: the lists it holds are the loaded object's own, so an APPEND after BUILD still reaches them."""
        for state, off in self.exported:
            self._exported_program_state(state, off)
        self.exported = []

    def _exported_program_state(self, state: Any, off: int) -> None:
        """An ExportedProgram's BUILD state. Its graph module's code is judged where it is rebuilt
        (``reduce_graph_module``), its other parts are objects this pickle made; two entries are code or classes
        torch runs later: ``_guards_code``, Python expressions ``ep.module()`` compiles into the unlifted module's
        guard function (torch.save writes the tracer's guards, an empty list for a static export), and
        ``_verifiers``, classes ``validate()`` instantiates and runs. Benign when the state is a constant dict of the
        keys torch writes, the guards are an empty list and the verifiers are torch's; anything else stays a
        code-execution finding."""
        problem: str | None = None
        if type(state) is not _Dict or state.hidden or state.size != len(state.items):
            problem = "its state is not a constant dict"
        else:
            for key, value in state.items:
                if type(key) is not str or key not in _EXPORTED_PROGRAM_KEYS:
                    problem = f"an unexpected state entry {_short(key)}"
                elif key == "_guards_code" and not (type(value) is list and not value):
                    problem = f"guards code {_short(value)} (ep.module() compiles and runs it)"
                elif key == "_verifiers" and not (
                    type(value) is list
                    and len(value) <= len(_EXPORT_VERIFIERS)
                    and all(type(v) is _Ref and v.canon in _EXPORT_VERIFIERS for v in value)
                ):
                    problem = f"verifiers {_short(value)} that are not torch's (validate() instantiates and runs them)"
                if problem is not None:
                    break
        if problem is None:
            return
        self.coll.hit(
            "LW-MODEL-001",
            Severity.CRITICAL,
            f"{_EXPORTED_PROGRAM}:state",
            f"an ExportedProgram not as torch.save writes it: {problem}",
            off,
            self._ev({"problem": problem[:200]}),
        )

    def _fused_optimizers(self, result: Any) -> None:
        """An optimizer's state (its ``state_dict()``, or the optimizer saved whole) whose ``param_groups`` ask for
        the fused kernels (``fused: True``). ``step()`` then hands each parameter's state tensors (``exp_avg``,
        ``exp_avg_sq``, Adagrad's ``sum`` ...) to a compiled loop that walks them for as many elements as the
        parameter has, unchecked: a state tensor smaller than its parameter killed the process (SIGSEGV, torch 2.13,
        CPU ``_fused_adam_``). ``load_state_dict`` takes the saved group's ``fused`` over the live optimizer's and
        keeps the saved tensors' shapes. A state tensor whose shape is not its parameter's is reported; where the
        parameters are not in the file (a state dict keys them by index) the shapes cannot be compared: unverified."""
        todo: deque[tuple[Any, int]] = deque([(result, 0)])
        seen = 0  # items looked at: breadth first, so an optimizer a level or two down is reached first
        while todo and seen < _MAX_OPTIMIZER_WALK:
            value, level = todo.popleft()
            kind = type(value)
            if kind is _Call and value.state is not None:
                todo.append((value.state, level + 1))
            if kind is tuple or kind is list:
                children = value[:_MAX_OPTIMIZER_ITEMS]
            else:
                pairs = _pairs_of(value)
                if pairs is None:
                    continue
                pairs = pairs[:_MAX_OPTIMIZER_ITEMS]
                seen += len(pairs)
                found = {k: v for k, v in pairs if type(k) is str and k in ("param_groups", "state")}
                groups = found.get("param_groups")
                if isinstance(groups, (list, tuple)) and "state" in found:
                    self._fused_state(groups, found["state"])
                    continue
                children = [v for _, v in pairs]
            seen += len(children)
            if level < _MAX_OPTIMIZER_DEPTH:
                todo.extend((v, level + 1) for v in children if type(v) in _OPTIMIZER_HOLDERS)

    def _fused_state(self, groups: list[Any] | tuple[Any, ...], state: Any) -> None:
        """Judge one optimizer's ``state`` when one of its ``groups`` is fused (see ``_fused_optimizers``): a
        group, the state and each parameter's entry may be a dict or an ``OrderedDict``; a state value that is
        neither a number nor a tensor the VM can size leaves the file unverified."""
        fused = False
        for group in groups[:_MAX_OPTIMIZER_ITEMS]:
            items = _pairs_of(group)
            if items is None:
                fused = True  # a group the scanner cannot read may ask for the fused step
            elif _last(items, "fused") not in (None, False, 0):
                fused = True
        if not fused:
            return
        pairs = _pairs_of(state)
        if pairs is None:
            self.coll.unverified.append("a fused optimizer whose state the scanner cannot read")
            return
        for key, entry in pairs[:_MAX_OPTIMIZER_ITEMS]:
            entries = _pairs_of(entry)
            if entries is None:
                self.coll.unverified.append("a fused optimizer whose state the scanner cannot read")
                return
            want = _tensor_size(key)
            for name, tensor in entries[:64]:
                if name == "step" or tensor is None or type(tensor) in (int, float, bool):
                    continue
                size = _tensor_size(tensor)
                if size is None:
                    self.coll.unverified.append(
                        f"a fused optimizer keeps {_short(name)} that the scanner cannot size: its fused step walks "
                        "it for as many elements as its parameter has"
                    )
                    return
                if want is None:
                    # a state dict keys its parameters by index: their sizes are in the model it is loaded into,
                    # not in this file. Every optimizer.pt of a Hugging Face Trainer run (fused AdamW is its
                    # default since torch 2.8) is such a file, so this is a note (INFO, passing any --fail-on),
                    # not a verdict: resuming from it with parameters larger than its state corrupts memory.
                    self.coll.hit(
                        RULE_TENSOR,
                        Severity.INFO,
                        "torch.optim:fused-state-unchecked",
                        f"a fused optimizer's state dict keeps {_short(name)} of shape {_short(size)} for a "
                        "parameter it names only by index: its fused step walks the state for as many elements as "
                        "that parameter has, which only the model it is loaded into tells (not checked)",
                        0,
                        self._ev({"state": _short(name)}),
                    )
                    return
                if size != want:
                    self.coll.hit(
                        RULE_TENSOR,
                        Severity.HIGH,
                        "torch.optim:fused-state",
                        f"a fused optimizer keeps {_short(name)} of shape {_short(size)} for a parameter of shape "
                        f"{_short(want)}: its fused step walks the state for as many elements as the parameter "
                        "has, past the tensor's memory",
                        0,
                        self._ev({"state": _short(name)}),
                    )
                    return

    def _fake_quants(self, result: Any) -> None:
        """Fake-quantize modules of quantization-aware training, saved whole (their parent module, as a model is
        saved) or as a state dict. ``FusedMovingAvgObsFakeQuantize.forward`` (the default QAT fake-quantize of the
        x86, fbgemm and qnnpack qconfigs) hands its observer's running ``min_val``/``max_val`` to the compiled
        ``fused_moving_avg_obs_fake_quant``, which updates them in place for as many channels as its input has
        (per channel) or reads their first element (per tensor) without checking their sizes: running values
        shorter than the weight's channels, or empty ones per tensor, killed the process on the first forward
        (SIGSEGV, glibc heap corruption; torch 2.13 CPU). A state dict is no safer: ``load_state_dict`` resizes the
        live observer's buffers to the file's (``PerChannelMinMaxObserver._load_from_state_dict``) and the fake
        quantizer's scale with them. Reported where the sizes disagree with what the file tells (the weight beside
        a ``weight_fake_quant``, the scale, each other)."""
        todo: deque[tuple[Any, int]] = deque([(result, 0)])
        seen = 0
        while todo and seen < _MAX_OPTIMIZER_WALK:
            value, level = todo.popleft()
            kind = type(value)
            if kind is tuple or kind is list:
                children = list(value[:_MAX_OPTIMIZER_ITEMS])
            else:
                state = _pairs_of(value.state) if kind is _Call and value.state is not None else None
                if state is not None and any(k == "_modules" for k, _ in state[:64]):
                    sizes: dict[str, Any] = {}
                    flags: dict[str, dict[str, Any]] = {}
                    _module_tensors(value, "", sizes, flags, 0)
                    self._fake_quant_sizes(sizes, flags)
                    continue
                pairs = _pairs_of(value)
                if pairs is None:
                    if kind is _Call and value.state is not None:
                        todo.append((value.state, level + 1))
                    continue
                pairs = pairs[:_MAX_FAKE_QUANT_KEYS]
                seen += len(pairs)
                if any(type(k) is str and k.endswith(_OBSERVER_MIN) for k, _ in pairs):
                    self._fake_quant_sizes({k: _tensor_size(v) for k, v in pairs if type(k) is str}, {})
                children = [v for _, v in pairs]
            seen += len(children)
            if level < _MAX_OPTIMIZER_DEPTH:
                todo.extend((v, level + 1) for v in children if type(v) in _OPTIMIZER_HOLDERS)

    def _saved_random_states(self, result: Any) -> None:
        """numpy random states kept as plain values, which a trainer hands back to numpy after loading: transformers'
        Trainer resumes with ``np.random.set_state(torch.load("rng_state.pth", weights_only=True)["numpy"])``
        (its ``safe_globals`` admits the arrays), accelerate's ``load_state`` with the ``numpy_random_seed`` of
        ``random_states_<n>.pkl``. ``set_state`` keeps the legacy tuple's ``pos`` unchecked and the next draw reads
        ``key[pos]`` (numpy 2.4: SIGSEGV, or words from outside the key as random numbers). A tuple
        ``("MT19937", key, pos, ...)`` or a dict with a ``bit_generator`` is judged as a pickled generator's state
        is (``_rng_state``)."""
        todo: deque[tuple[Any, int]] = deque([(result, 0)])
        seen = 0
        while todo and seen < _MAX_OPTIMIZER_WALK:
            value, level = todo.popleft()
            kind = type(value)
            if kind is tuple and len(value) in (3, 5) and value[0] == "MT19937":
                self._rng_state("numpy.random.mtrand.RandomState.set_state", value, 0)
                continue
            if kind is tuple or kind is list:
                children = list(value[:_MAX_OPTIMIZER_ITEMS])
            else:
                pairs = _pairs_of(value)
                if pairs is None:
                    continue
                pairs = pairs[:_MAX_OPTIMIZER_ITEMS]
                if kind is _Dict and any(type(k) is str and k == "bit_generator" for k, _ in pairs):
                    self._rng_state("numpy.random.BitGenerator.state", value, 0)
                    continue
                children = [v for _, v in pairs]
            seen += len(children) + 1
            if level < _MAX_OPTIMIZER_DEPTH:
                todo.extend((v, level + 1) for v in children if type(v) in _OPTIMIZER_HOLDERS)

    def _fake_quant_sizes(self, sizes: dict[str, Any], flags: dict[str, dict[str, Any]]) -> None:
        """Judge the fake quantizers of one flattened model (state-dict keys to tensor sizes, and the flags of the
        modules saved whole, keyed by their prefix): see ``_fake_quants``."""
        for key in list(sizes)[:_MAX_FAKE_QUANT_KEYS]:
            if not key.endswith(_OBSERVER_MIN):
                continue
            owner = key[
                : -len(_OBSERVER_MIN)
            ]  # the fake quantizer's prefix ("" or "conv.weight_fake_quant.")
            problem = _fake_quant_problem(
                sizes.get(key),
                sizes.get(owner + "activation_post_process.max_val"),
                sizes.get(owner + "scale"),
                sizes.get(owner[: -len("weight_fake_quant.")] + "weight")
                if owner.endswith("weight_fake_quant.")
                else None,
                flags.get(owner, {}),
            )
            if problem is None:
                continue
            name = owner.rstrip(".") or "the fake quantizer"
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                "torch.ao.quantization:fake-quant-running-range",
                f"{_short(name)} keeps running min/max values {problem}: the fused fake-quantize op updates them for "
                "as many channels as its input has (reads them per tensor) without checking their sizes, past the "
                "tensors' memory",
                0,
                self._ev({"fake_quant": _short(name)}),
            )
            return

    def _state_problem(self, cls: str, problem: str | None, subject: str, explained: str, off: int) -> None:
        """Report what a state check found: nothing, an unreadable part (a leading '?': unverified), or a HIGH
        finding whose message is ``explained`` with the problem filled in."""
        if problem is None:
            return
        if problem.startswith("?"):
            self.coll.unverified.append(f"{cls} at offset {off}: {problem[1:]}")
            return
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            subject,
            f"{cls} " + explained.format(problem),
            off,
            self._ev({"class": cls}),
        )

    def _array_of(self, value: Any) -> tuple[Any, Any, Any] | None:
        found = self.arrays.get(id(value))
        return found[1:] if found is not None and found[0] is value else None

    def _binary_tree_problem(self, cls: str, state: tuple[Any, ...]) -> str | None:
        """What is wrong with a binary tree's state; a leading ``?`` says it could not be read."""
        parts = [self._array_of(v) for v in state[:4]]
        if any(p is None for p in parts):
            return (
                "?arrays the scanner cannot read (computed at load time or of another form than numpy writes)"
            )
        (_, dshape, _), (idtype, ishape, idata), (ndtype, nshape, ndata), (_, bshape, _) = parts  # type: ignore[misc]
        shapes = (dshape, ishape, nshape, bshape)
        if any(type(sh) is not tuple or not all(type(d) is int and d >= 0 for d in sh) for sh in shapes):
            return "?array shapes computed at load time"
        if len(dshape) != 2 or len(ishape) != 1 or len(nshape) != 1 or len(bshape) != 3:
            return None  # the typed memoryviews refuse them
        n_samples, n_features = dshape
        n_nodes, n_index = nshape[0], ishape[0]
        if not _is_int64(idtype):
            return "?an index array of a dtype the scanner does not read"
        has_fields = _field_names(ndtype).issuperset(_BINARY_NODE)
        layout = _field_layout(ndtype, "binary", _BINARY_NODE) if has_fields else None
        if layout is None or isinstance(layout, str):
            return "?node data of a dtype the scanner does not read"
        if n_nodes == 0:
            return "no nodes (every query reads node 0)"
        if bshape[0] < (2 if "_kd_tree" in cls else 1) or bshape[1] < n_nodes or bshape[2] < n_features:
            return f"node bounds of shape {bshape} for {n_nodes} nodes of {n_features} features"
        # the counts the state gives besides the arrays: breadth-first kernel density sizes its per-node arrays
        # by n_nodes (and writes them at every node's id), and divides the sample count by leaf_size
        leaf_size, counted = state[4], state[6]
        if type(leaf_size) is int and leaf_size < 1:
            return f"a leaf size of {leaf_size} (a division by it crashes the process)"
        if type(counted) is int and counted < n_nodes:
            return f"n_nodes {counted} for a node array of {n_nodes}"
        metric = self._metric_problem(state[11], n_features)
        if metric is not None:
            return metric
        weight = state[12]
        if weight is not None:
            wpart = self._array_of(weight)
            if wpart is None or type(wpart[1]) is not tuple or not wpart[1] or type(wpart[1][0]) is not int:
                return "?sample weights the scanner cannot read"
            if wpart[1][0] < n_samples:
                return f"{wpart[1][0]} sample weights for {n_samples} samples"
        chunks = _array_chunks(ndata)
        if chunks is None:
            return "?node data the scanner cannot read"
        index, size = 0, 0
        pick = layout.pick
        for block in _records(_timed(chunks, self.budget), layout.itemsize):
            size += len(block)
            for values in layout.record.iter_unpack(block):
                start, end, leaf = values[pick[0]], values[pick[1]], values[pick[2]]
                if not 0 <= start <= end <= n_index:
                    return f"node {index} holding points {start} to {end} of an index of {n_index}"
                if not leaf and 2 * index + 2 >= n_nodes:
                    return f"internal node {index} whose children are past the {n_nodes} nodes"
                index += 1
        if size != n_nodes * layout.itemsize:
            return None  # numpy refuses data of another size
        chunks = _array_chunks(idata)
        if chunks is None:
            return "?an index array the scanner cannot read"
        bad = _outside(_int_views(chunks, "q", self.budget), n_samples)
        return None if bad is None else f"an index entry {bad} among {n_samples} samples"

    def _metric_problem(self, metric: Any, n_features: int) -> str | None:
        """A tree's distance metric sized by its own state (``(p, vec, mat)``), never checked against the tree's
        data (``_validate_data`` runs when a tree is built, not when it is unpickled): the distance loops run over
        the data's features and index ``vec`` and ``mat`` (and write Mahalanobis' buffer of ``mat``'s rows) with
        them; the haversine distance reads two features of each row."""
        if type(metric) is not _Call or type(metric.args) is not tuple or not metric.args:
            return None
        kind = metric.args[0]
        if type(kind) is not _Ref or not kind.canon.startswith("sklearn.metrics._dist_metrics."):
            return None
        name = kind.canon.rpartition(".")[2].removesuffix("64").removesuffix("32")
        if name == "HaversineDistance":
            return None if n_features == 2 else f"a haversine metric over {n_features} features (it reads 2)"
        if name not in ("MahalanobisDistance", "SEuclideanDistance", "MinkowskiDistance"):
            return None
        state = metric.state
        if type(state) is not tuple or len(state) < 3:
            return "?a distance metric state the scanner cannot read (or given later)"
        if name == "MahalanobisDistance":
            mat = self._dims(state[2], 2)
            if mat is None:
                return "?a Mahalanobis matrix the scanner cannot read"
            if mat != (n_features, n_features):
                return f"a Mahalanobis matrix of shape {mat} for {n_features} features"
            return None
        vec = self._dims(state[1], 1)
        if vec is None:
            return "?distance metric weights the scanner cannot read"
        if vec[0] != n_features and not (name == "MinkowskiDistance" and vec[0] == 0):
            return f"{vec[0]} {name} weights for {n_features} features"
        return None

    def _categorical_problem(self, state: Any) -> str | None:
        """What is wrong with a pandas ``Categorical``'s state: ``(dtype, codes[, dict])`` as pandas pickles it
        (``NDArrayBacked.__setstate__``) or an older ``__dict__`` with ``_codes``/``_ndarray`` and ``_dtype``.
        Nothing checks the codes against the categories when it is unpickled, and ``np.asarray``, ``take`` and
        every conversion read the categories at each code unchecked (a code past them reads outside their
        memory: a crash with the installed pandas). A leading ``?`` says a part could not be read."""
        if type(state) is tuple and len(state) >= 2:
            dtype, codes = state[0], state[1]
        elif type(state) is _Dict:
            codes = state.get("_ndarray")
            if codes is _UNKNOWN:
                codes = state.get("_codes")
            dtype = state.get("_dtype")
            if dtype is _UNKNOWN:
                return "?categories given without their dtype"
        else:
            return "?a state of another form than pandas writes"
        part = self._array_of(codes)
        if part is None:
            return (
                "?codes the scanner cannot read (computed at load time or of another form than pandas writes)"
            )
        code = _small_int_code(part[0])
        chunks = _array_chunks(part[2])
        if code is None or chunks is None:
            return "?codes of a dtype or data the scanner does not read"
        high = -1
        for block in _records(_timed(chunks, self.budget), struct.calcsize(code)):
            view = memoryview(block).cast(code)
            if len(view):
                if min(view) < -1:
                    return f"a code {min(view)} below -1 (missing)"
                high = max(high, max(view))
        if high < 0:
            return None  # only missing values: no category is read
        count = self._categories_length(dtype)
        if count is None:
            return "?categories the scanner cannot count"
        return None if high < count else f"a code {high} for {count} categories"

    def _manager_problem(self, state: Any) -> str | None:
        """What is wrong with the rows of a pandas ``BlockManager``'s (a DataFrame's) or ``SingleBlockManager``'s
        (a Series') ``__setstate__`` state. Unlike the constructor, which pandas' pickles of today call, the
        '0.14.1' state (still read, and written by pandas before 3) is taken as it is: ``_verify_integrity``
        never runs, so a block whose values have fewer rows than the index makes ``repr``, ``reindex`` and the
        Cython takes read past the values (heap addresses printed, a crash for objects: shown with pandas 3.1).
        Values or an index whose length the scanner cannot tell are left to the other checks."""
        if type(state) is not tuple or len(state) < 4 or type(state[3]) is not _Dict:
            return None  # pandas raises NotImplementedError
        extra = state[3].get("0.14.1")
        if type(extra) is not _Dict:
            return None
        axes, blocks = extra.get("axes"), extra.get("blocks")
        if type(axes) not in (list, tuple) or not axes or type(blocks) not in (list, tuple):
            return None
        rows = self._values_length(axes[-1], 0)
        if rows is None:
            return None
        for block in blocks[:_MAX_CONTAINER]:
            values = block.get("values") if type(block) is _Dict else _UNKNOWN
            part = self._array_of(values)
            if part is not None:
                shape = part[1]
                count = shape[-1] if type(shape) is tuple and shape and type(shape[-1]) is int else None
            else:
                count = self._values_length(values, 0)
            if count is not None and count != rows:
                return f"block values of {count} rows for an index of {rows}"
        return None

    def _categories_length(self, dtype: Any) -> int | None:
        """How many categories a ``CategoricalDtype`` built in this stream holds: an ``Index`` made by
        ``_new_Index(cls, {'data': ...})`` over a numpy array or a pyarrow array (``ArrowStringArray``), as
        pandas pickles them; None when it cannot be told."""
        if type(dtype) is not _Call or _instance_class(dtype) not in _CATEGORICAL_DTYPES:
            return None
        state = dtype.state
        if type(state) is not _Dict:
            return None
        return self._values_length(state.get("categories"), 0)

    def _values_length(self, values: Any, depth: int) -> int | None:
        """The length of a pandas ``Index`` or of the values it holds, as pandas pickles them: ``_new_Index``
        (and ``_new_DatetimeIndex``, ``_new_IntervalIndex``) over ``data`` (or a ``RangeIndex``'s start, stop and
        step, an ``IntervalIndex``'s ``left`` and ``right``), a 1-d numpy array, an ``NDArrayBacked`` array (state
        ``(dtype, ndarray)``), a pyarrow array kept as ``_pa_array``; None when it cannot be told."""
        if depth > 4:
            return None
        part = self._array_of(values)
        if part is not None:
            shape = part[1]
            return shape[0] if type(shape) is tuple and len(shape) == 1 and type(shape[0]) is int else None
        if type(values) is not _Call or type(values.func) is not _Ref:
            return None
        name = values.func.canon
        if name.startswith("pandas.core.indexes.") and name.rpartition(".")[2].startswith("_new_"):
            if len(values.args) < 2 or type(values.args[1]) is not _Dict:
                return None
            spec = values.args[1]
            if spec.get("data") is not _UNKNOWN:
                return self._values_length(spec.get("data"), depth + 1)
            bounds = spec.get("start"), spec.get("stop"), spec.get("step")
            if all(type(v) is int for v in bounds) and bounds[2] != 0:
                return len(range(*bounds))
            left = self._values_length(spec.get("left"), depth + 1)
            return (
                left
                if left is not None and left == self._values_length(spec.get("right"), depth + 1)
                else None
            )
        if name == "pyarrow.lib._restore_array":
            given = values.args[0] if len(values.args) == 1 else None
            if type(given) is tuple and len(given) >= 2 and type(given[1]) is int:
                return given[1]  # its length (its buffers are checked by _arrow_geometry)
            return None
        state = values.state
        if (
            type(state) is tuple
            and len(state) >= 2
            and name == "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked"
        ):
            return self._values_length(state[1], depth + 1)
        if type(state) is _Dict and state.get("_pa_array") is not _UNKNOWN:
            return self._values_length(state.get("_pa_array"), depth + 1)  # ArrowStringArray and its kin
        return None

    def _sparse_state(self, cls: str, state: Any, off: int) -> None:
        """SciPy sparse matrices and arrays are unpickled by a plain ``__dict__`` update: their index arrays are
        never checked (``check_format`` runs in the constructor only), and ``toarray``, products and sums pass
        them to the C++ sparsetools, which index with them unchecked and write outside the output (a crash
        shown with the installed SciPy). Checked as ``check_format(full_check=True)`` checks them."""
        kind = cls.rpartition(".")[2][:3]
        if kind not in ("csr", "csc", "bsr", "coo", "dia", "lil"):
            return
        # a ``(state, slotstate)`` pair sets its attributes as a dict does (sparse classes have no __setstate__):
        # ``(None, {...})`` passed a check that read dict states only (a crash shown with SciPy 1.17)
        given = state if type(state) is _Dict else self._merged_state(state)
        if given is None:
            return
        self._state_problem(
            cls,
            given
            if type(given) is str
            else self._sparse_problem(kind, given if type(given) is _Dict else _Dict()),
            "scipy.sparse:indices",
            "with {}: SciPy's sparse routines index with these arrays unchecked and write outside their output",
            off,
        )

    def _sparse_problem(self, kind: str, state: _Dict) -> str | None:
        shape = state.get("_shape")
        # SciPy 1.15+ also has 1-D CSR arrays (one row: indptr of 2 entries) and 1-D to n-D COO arrays (one
        # coordinate array per axis): csr_array(vector), coo_array(cube)
        ranks = (2,) if kind in ("csc", "bsr") else (1, 2) if kind == "csr" else range(1, 65)
        if (
            type(shape) is not tuple
            or len(shape) not in ranks
            or not all(type(d) is int and d >= 0 for d in shape)
        ):
            return None if shape is _UNKNOWN else "?a shape the scanner cannot read"
        if kind == "lil":
            return self._lil_problem(shape, state)
        data = self._array_of(state.get("data"))
        if data is None or type(data[1]) is not tuple or not data[1] or type(data[1][0]) is not int:
            return "?data the scanner cannot read"
        nnz = data[1][0]
        if kind == "dia":
            return self._dia_problem(data[1], state)
        if kind == "coo":
            coords = state.get("coords")
            if coords is _UNKNOWN:  # SciPy before 1.13
                coords = (state.get("row"), state.get("col"))
            if type(coords) is not tuple or len(coords) != len(shape):
                return "?coordinates the scanner cannot read"
            for axis, (coord, dim) in enumerate(zip(coords, shape, strict=True)):
                values = self._int_array(coord)
                if isinstance(values, str):
                    return values
                count, views = values
                if count < nnz:
                    return f"{count} coordinates on axis {axis} for {nnz} values"
                bad = _outside(views, dim)
                if bad is not None:
                    return f"a coordinate {bad} on axis {axis} of {dim}"
            return None
        rows, cols = shape if len(shape) == 2 else (1, shape[0])
        if kind == "bsr":
            dshape = data[1]
            if len(dshape) != 3 or not all(type(d) is int and d > 0 for d in dshape[1:]):
                return None  # SciPy refuses blocks of another form
            if rows % dshape[1] or cols % dshape[2]:
                return f"blocks of {dshape[1]}x{dshape[2]} that do not tile a {rows}x{cols} matrix"
            rows, cols = rows // dshape[1], cols // dshape[2]
        major, minor = (cols, rows) if kind == "csc" else (rows, cols)
        indptr = self._int_array(state.get("indptr"))
        if isinstance(indptr, str):
            return indptr
        count, views = indptr
        if count < major + 1:
            return f"an index pointer of {count} entries for {major} rows or columns"
        indices = self._int_array(state.get("indices"))
        if isinstance(indices, str):
            return indices
        n_indices, index_views = indices
        last, position = 0, 0
        for view in views:
            for value in view:
                if value < last if position else value != 0:
                    return f"an index pointer that is not increasing from 0 (entry {position}: {value})"
                last = value
                position += 1
                if position > major:
                    break
            if position > major:
                break
        if last > min(n_indices, nnz):
            return f"an index pointer up to {last} for {n_indices} indices and {nnz} values"
        bad = _outside(index_views, minor)
        return None if bad is None else f"an index {bad} of {minor}"

    def _pandas_sparse_problem(self, state: Any) -> str | None:
        """A pandas ``SparseArray``'s ``__dict__`` as pandas pickles it: ``_sparse_index`` (an ``IntIndex(length,
        indices)`` or a ``BlockIndex(length, blocs, blengths)``, whose constructors check themselves), the stored
        values ``_sparse_values`` and ``_dtype``. Nothing checks that there is one value per point of the index
        (``npoints``: the indices' count, or the block lengths' sum); the Cython sparse operations loop over the
        points and read ``sp_values`` at each unchecked (a crash shown with pandas 3.1). Older pandas wrote a
        tuple state, which is not read here: unverified."""
        if type(state) is not _Dict:
            return "?a state of another form than pandas writes"
        index, values = state.get("_sparse_index"), state.get("_sparse_values")
        if type(index) is not _Call or type(index.func) is not _Ref or type(index.args) is not tuple:
            return "?a sparse index the scanner cannot read"
        spec = _PANDAS_SPARSE_INDEXES.get(index.func.canon)
        if index.state is not None or spec is None or len(index.args) != spec[1]:
            return "?a sparse index the scanner cannot read"
        points = 0
        if spec[0] == "IntIndex":
            count = self._dims(index.args[1], 1)
            if count is None:
                return "?sparse indices the scanner cannot read"
            points = count[0]
        else:
            found = self._int_array(index.args[2])
            if isinstance(found, str):
                return found
            for view in found[1]:
                points += sum(view)
        dims = self._dims(values, 1)
        if dims is None:
            return "?sparse values the scanner cannot read"
        if dims[0] != points:
            return f"{dims[0]} stored values for an index of {points} points"
        return None

    def _dia_problem(self, dshape: tuple[Any, ...], state: _Dict) -> str | None:
        """A DIA matrix's ``data`` holds one row of ``L`` values per diagonal and ``offsets`` one offset per
        diagonal; SciPy's constructor checks that their counts agree, unpickling does not. The sparsetools
        routines (``dia_matvec`` for products and sums, ``dia_tocsr`` for ``tocsr``/``toarray``) take the
        diagonal count from one and walk the other with it: the row of diagonal ``i`` at ``data + i * L``, the
        ``i``-th sorted offset's index, all unchecked (a crash shown with SciPy 1.17)."""
        if not all(type(d) is int for d in dshape):
            return "?diagonal data of a shape the scanner cannot read"
        if len(dshape) != 2:
            return f"data of shape {dshape} (SciPy keeps one row per diagonal)"
        offsets = self._int_array(state.get("offsets"))
        if isinstance(offsets, str):
            return offsets
        count, _ = offsets
        if count != dshape[0]:
            return f"{count} diagonal offsets for {dshape[0]} rows of diagonal data"
        return None

    def _lil_problem(self, shape: tuple[int, ...], state: _Dict) -> str | None:
        """A LIL matrix keeps ``rows`` and ``data``, object arrays of one list per row: the column indices of that
        row's values (each below the column count) and the values. Nothing checks them on unpickling; ``tocsr``
        (and so products and ``toarray`` after it) has SciPy's Cython ``lil_get_lengths`` write each row's length
        into an array of one entry per row, and ``lil_flatten_to_array`` copy both lists of every row into arrays
        sized by the column lists' lengths, without bounds checks; the CSR matrix built from them takes the
        column indices unchecked (crashes shown with SciPy 1.17). A leading ``?`` says a part could not be
        read (a joblib dump's object arrays are read from the nested pickle that built them)."""
        if len(shape) != 2:
            return None  # SciPy's LIL is 2-D only and refuses others
        n_rows, n_cols = shape
        lists: list[list[Any]] = []
        for key in ("rows", "data"):
            found = self._array_of(state.get(key))
            if found is None:
                return f"?{key} lists the scanner cannot read"
            _, lshape, items = found
            if type(lshape) is not tuple or len(lshape) != 1 or type(lshape[0]) is not int:
                return f"?{key} of a shape the scanner cannot read"
            if lshape[0] != n_rows:
                return f"{lshape[0]} {key} lists for {n_rows} rows"
            inner = self._array_of(items)
            if inner is not None and inner[1] == lshape:
                items = inner[2]  # joblib: the object array its own nested pickle built
            if type(items) is not list or len(items) != n_rows:
                return f"?{key} lists the scanner cannot read"
            lists.append(items)
        for row, (cols, values) in enumerate(zip(*lists, strict=True)):
            if type(cols) is not list or type(values) is not list:
                return "?row lists the scanner cannot read"
            if len(cols) != len(values):
                return f"row {row} with {len(cols)} column indices for {len(values)} values"
            for col in cols:
                if type(col) is not int:
                    return "?column indices the scanner cannot read"
                if not 0 <= col < n_cols:
                    return f"a column index {col} in row {row} of a matrix of {n_cols} columns"
        return None

    def _kd_tree_problem(self, state: Any) -> str | None:
        """What is wrong with the state of a SciPy ``cKDTree`` (or ``KDTree``, its subclass): ``(tree, data, n,
        m, leafsize, maxes, mins, indices, boxsize, boxsize_data)`` as ``__getstate__`` writes it, ``tree`` the
        raw bytes of the C++ node vector. The compiled ``__setstate__`` copies those bytes (a size that is no
        whole number of nodes writes past the vector), then follows each inner node's ``_less``/``_greater``
        index from node 0 (past the vector it reads wild memory; a cycle recurses until the stack ends; two
        links to one node double the walk at each level); queries take ``start_idx:end_idx`` of ``indices`` at
        the nodes, each entry a row of ``data`` read as ``m`` doubles, ``split_dim`` as a coordinate of
        ``maxes``/``mins`` (and ``boxsize_data``, ``2m`` doubles): all unchecked (crashes shown with SciPy 1.17).
        Checked as the builder leaves them: children after their parent, one parent each. A leading ``?`` says
        a part could not be read."""
        if type(state) is _Dict:
            return None  # the unpacking assigns its keys to typed array attributes and fails
        if type(state) not in (tuple, list):
            return "?a state the scanner cannot read"
        if len(state) != 10:
            return None  # the unpacking fails
        buffer, data, n, m = state[0], state[1], state[2], state[3]
        if type(n) is not int or type(m) is not int:
            return "?point counts the scanner cannot read"
        parts = [self._array_of(v) for v in (buffer, data, state[5], state[6], state[7])]
        found = [p for p in parts if p is not None]
        if len(found) != len(parts):
            return (
                "?arrays the scanner cannot read (computed at load time or of another form than numpy writes)"
            )
        (tdtype, tshape, tdata), (ddtype, dshape, _), maxes, mins, (idtype, ishape, idata) = found
        if any(
            type(sh) is not tuple or not all(type(d) is int and d >= 0 for d in sh) for sh in (tshape, dshape)
        ):
            return "?array shapes computed at load time"
        for name, dtype in (("data", ddtype), ("maxes", maxes[0]), ("mins", mins[0])):
            if not _float64(dtype):
                width = _dtype_info(dtype)[0]
                if width is not None and width < 8:
                    return f"{name} of {width}-byte items (the tree reads them as 8-byte doubles)"
                return "?point arrays of a dtype the scanner does not read (the tree reads them as float64)"
        if dshape != (n, m):
            return f"data of shape {dshape} for {n} points of {m} dimensions"
        for name, part in (("maxes", maxes), ("mins", mins)):
            if part[1] != (m,):
                return f"{name} of shape {part[1]} for {m} dimensions"
        box = state[9]
        if box is not None:
            bpart = self._array_of(box)
            if bpart is None or not _float64(bpart[0]):
                width = _dtype_info(bpart[0])[0] if bpart is not None else None
                if width is not None and width < 8:
                    return f"boxsize_data of {width}-byte items (the tree reads them as 8-byte doubles)"
                return "?a periodic box the scanner cannot read"
            if bpart[1] != (2 * m,):
                return (
                    f"boxsize_data of shape {bpart[1]} for {m} dimensions (it holds 2 values per dimension)"
                )
        if not _is_int64(idtype):
            return "?an index array of a dtype the scanner does not read (the tree reads it as intp)"
        if ishape != (n,):
            return f"indices of shape {ishape} for {n} points"
        if not _bytes_dtype(tdtype):
            return "?a node buffer of a dtype the scanner does not read"
        size = math.prod(tshape)
        if size == 0 or size % _KD_NODE.size:
            return f"a node buffer of {size} bytes, not a whole number of {_KD_NODE.size}-byte nodes"
        chunks = _array_chunks(tdata)
        if chunks is None:
            return "?a node buffer the scanner cannot read"
        count = size // _KD_NODE.size
        if count > _KD_MAX_NODES:
            return f"?{count} nodes, more than the scanner walks"
        parents = bytearray(count)
        depths = array.array("H", bytes(2 * count))  # levels, up to the cap
        index = 0
        for block in _records(_timed(chunks, self.budget), _KD_NODE.size):
            for split_dim, start, end, less, greater in _KD_NODE.iter_unpack(block):
                if not 0 <= start <= end <= n:
                    return f"node {index} holding points {start} to {end} of {n}"
                if split_dim != -1:
                    if not 0 <= split_dim < m:
                        return f"node {index} splitting dimension {split_dim} of {m}"
                    for child in (less, greater):
                        if not index < child < count:
                            return f"node {index} linking node {child} (of {count}; children come after their parent)"
                        if parents[child] or less == greater:
                            return f"node {child} linked twice (the walk doubles at each such level)"
                        parents[child] = 1
                        depths[child] = depths[index] + 1
                    if depths[index] + 1 > _KD_MAX_DEPTH:
                        return f"?a tree deeper than {_KD_MAX_DEPTH} levels (the loader walks it recursively)"
                index += 1
        bad = _outside(_int_views(_array_chunks(idata) or iter(()), "q", self.budget), n)
        if bad is not None:
            return f"an index entry {bad} among {n} points"
        return None

    def _typed(
        self, state: _Dict, key: str, kind: str, shape: tuple[int, ...]
    ) -> tuple[Any, ...] | str | None:
        """A state array that compiled SciPy code takes by raw pointer: its ``(dtype, shape, data)`` when it is of
        ``kind`` (``"f8"`` or ``"i4"``) and ``shape``; None when the state does not have it; a problem otherwise
        (a leading ``?`` when it cannot be read)."""
        value = state.get(key)
        if value is _UNKNOWN or value is None:
            return None
        found = self._array_of(value)
        if found is None:
            return f"?{key} the scanner cannot read"
        dtype, dims, _ = found
        if not (_float64(dtype) if kind == "f8" else _int_code(dtype) == "i"):
            return f"?{key} of a dtype the scanner does not read (SciPy's are {kind})"
        if dims != shape:
            return f"{key} of shape {dims} for {shape}"
        return found

    def _delaunay_problem(self, state: Any) -> str | None:
        """What is wrong with the ``__dict__`` of a SciPy ``Delaunay`` triangulation. Nothing checks it on
        unpickling, and ``_get_delaunay_info`` hands its arrays to the compiled walks by raw pointer, sized by
        ``_points`` (npoints, ndim) and ``simplices`` (nsimplex): ``simplices`` index the points, ``neighbors`` the
        simplices (-1: none), ``equations``, ``transform``, ``min_bound``/``max_bound`` are read per simplex and
        dimension, ``coplanar`` rows are written into ``vertex_to_simplex`` at their point, and the ``ndim`` and
        ``nsimplex`` the state gives size the Python side's loops over them (crashes shown with SciPy 1.17). Its
        ``_qhull`` is closed when the object is collected: SciPy pickles None there. A leading ``?`` says a part
        could not be read."""
        handle = self._qhull_handle(state)
        if handle is not None or type(state) is not _Dict:
            return handle
        points = self._array_of(state.get("_points"))
        if points is None:
            return "?points the scanner cannot read"
        dims = points[1]
        if not _float64(points[0]) or type(dims) is not tuple or len(dims) != 2:
            return "?points of a dtype or shape the scanner does not read"
        n_points, ndim = dims
        simplices = self._array_of(state.get("simplices"))
        sdims = simplices[1] if simplices is not None else None
        if type(sdims) is not tuple or len(sdims) != 2 or type(sdims[0]) is not int:
            return "?simplices the scanner cannot read"
        n_simplex = sdims[0]
        for key, given in (("ndim", ndim), ("npoints", n_points), ("nsimplex", n_simplex)):
            value = state.get(key)
            if type(value) is not int:
                return f"?{key} the scanner cannot read"
            if value != given:
                return f"{key} {value} for arrays of {given}"
        wanted = (
            ("simplices", "i4", (n_simplex, ndim + 1), 0, n_points),
            ("neighbors", "i4", (n_simplex, ndim + 1), -1, n_simplex),
            ("equations", "f8", (n_simplex, ndim + 2), 0, 0),
            ("min_bound", "f8", (ndim,), 0, 0),
            ("max_bound", "f8", (ndim,), 0, 0),
            ("_transform", "f8", (n_simplex, ndim + 1, ndim), 0, 0),
            ("_vertex_to_simplex", "i4", (n_points,), -1, n_simplex),
        )
        for key, kind, shape, low, high in wanted:
            found = self._typed(state, key, kind, shape)
            if found is None and key in ("simplices", "neighbors", "equations", "min_bound", "max_bound"):
                return f"?{key} the scanner cannot read"
            if isinstance(found, str):
                return found
            if found is not None and kind == "i4":
                bad = self._outside_from(found[2], low, high)
                if bad is not None:
                    return bad if bad.startswith("?") else f"{key} holding {bad} (of {high})"
        coplanar = state.get("coplanar")
        if coplanar is not _UNKNOWN and coplanar is not None:
            found = self._array_of(coplanar)
            cdims = found[1] if found is not None else None
            if found is None or _int_code(found[0]) != "i" or type(cdims) is not tuple or len(cdims) != 2:
                return "?coplanar points the scanner cannot read"
            if cdims[1] != 3:
                return f"coplanar of shape {cdims} (SciPy's rows are point, simplex, vertex)"
            chunks = _array_chunks(found[2])
            if chunks is None or id(coplanar) in self.fortran:
                return "?coplanar points the scanner cannot read (or not in C order)"
            for block in _records(_timed(chunks, self.budget), 12):  # whole rows of (point, simplex, vertex)
                for point, simplex, vertex in struct.iter_unpack("<iii", block):
                    if not (0 <= point < n_points and -1 <= simplex < n_simplex and -1 <= vertex < n_points):
                        return f"a coplanar row ({point}, {simplex}, {vertex}) for {n_points} points"
        neighbours = state.get("_vertex_neighbor_vertices")
        if neighbours is not _UNKNOWN and neighbours is not None:
            if type(neighbours) is not tuple or len(neighbours) != 2:
                return "?vertex neighbours the scanner cannot read"
            indptr, indices = (self._array_of(v) for v in neighbours)
            if (
                indptr is None
                or indices is None
                or _int_code(indptr[0]) != "i"
                or _int_code(indices[0]) != "i"
            ):
                return "?vertex neighbours the scanner cannot read"
            if indptr[1] != (n_points + 1,) or type(indices[1]) is not tuple or len(indices[1]) != 1:
                return f"vertex neighbour arrays of shapes {indptr[1]} and {indices[1]} for {n_points} points"
            for found, high, name in ((indptr, indices[1][0] + 1, "indptr"), (indices, n_points, "indices")):
                bad = self._outside_from(found[2], 0, high)
                if bad is not None:
                    return bad if bad.startswith("?") else f"vertex neighbour {name} holding {bad}"
        return None

    def _spherical_voronoi_problem(self, cls: str, state: _Dict) -> str | None:
        """What is wrong with the ``__dict__`` of a SciPy ``SphericalVoronoi``. Nothing checks it on unpickling,
        and ``sort_vertices_of_regions`` (which ``calculate_areas`` calls for three dimensions) hands ``_simplices``
        and ``regions`` to compiled code that reads ``_simplices[v, 0..2]`` at every vertex index ``v`` of every
        region with bounds checks off (an index past the simplices, a negative one, or simplices of fewer than
        three columns read outside the array: a crash with SciPy 1.17). Its memoryview checks the simplices'
        dtype (int32) and an empty region's; the Python side of the class only uses numpy's checked indexing.
        So, when ``_dim`` is 3: ``_simplices`` of shape (m, 3) and every region a list of ints in 0 .. m - 1.
        Other dimensions make the method raise TypeError before any compiled code runs."""
        present = {k for k, _ in state.items if type(k) is str}
        if "_dim" not in present or "_simplices" not in present or "regions" not in present:
            return None if not state.hidden else "?a state the scanner cannot read"
        dim = _numpy_int(state.get("_dim"))
        if dim is None:
            return "?a dimension the scanner cannot read"
        if dim != 3:
            return None
        simplices = self._array_of(state.get("_simplices"))
        sdims = simplices[1] if simplices is not None else None
        if type(sdims) is not tuple or len(sdims) != 2 or not all(type(d) is int for d in sdims):
            return "?simplices the scanner cannot read"
        if sdims[1] != 3:
            return f"simplices of shape {sdims} (three vertex columns are read)"
        n_simplex = sdims[0]
        regions = state.get("regions")
        if type(regions) is not list or self._length(regions) != len(regions):
            return "?regions the scanner cannot read"
        budget = _MAX_REGION_ENTRIES
        for region in regions:
            if type(region) is not list or self._length(region) != len(region):
                return "?a region the scanner cannot read"
            budget -= len(region)
            if budget < 0:
                return "?more region entries than the scanner reads"
            for item in region:
                index = _numpy_int(item)
                if index is None:
                    return "?a region entry the scanner cannot read"
                if not 0 <= index < n_simplex:
                    return f"a region holding vertex {index} of {n_simplex}"
        for region in (regions, *regions):
            self.state_lists[id(region)] = (region, cls)
        return None

    @staticmethod
    def _qhull_handle(state: Any) -> str | None:
        """What is wrong with the ``_qhull`` of a SciPy Qhull result (``Delaunay``, ``ConvexHull``, ``Voronoi``,
        ``HalfspaceIntersection``): ``_QhullUser.__del__`` calls ``self._qhull.close()`` whatever it holds, and
        SciPy pickles None there (a live handle cannot be pickled). Their other attributes are read by Python and
        numpy code only, but Delaunay's (see ``_delaunay_problem``)."""
        if type(state) is not _Dict:
            return "?a state the scanner cannot read"
        handle = state.get("_qhull")
        if handle is not None and handle is not _UNKNOWN:
            return f"a Qhull handle {_short(handle)} (its close() runs when the object is collected)"
        return None

    def _outside_from(self, data: Any, low: int, high: int) -> str | None:
        """An int32 array's first value outside ``low .. high - 1`` (as text), '?...' if it cannot be read."""
        chunks = _array_chunks(data)
        if chunks is None:
            return "?index data the scanner cannot read"
        for view in _int_views(chunks, "i", self.budget):
            if len(view):
                least, most = min(view), max(view)
                if least < low or most >= high:
                    return str(least if least < low else most)
        return None

    def _fitpack_problem(self, kind: str, state: Any) -> str | None:
        """The degrees of SciPy's FITPACK splines (``UnivariateSpline``'s ``_eval_args = (t, c, k)``, the bivariate
        splines' ``degrees = (kx, ky)``), which their constructors bound (1 to 5) and unpickling does not: FITPACK's
        ``fpbspl`` fills ``k + 1`` values into a 20-entry array, ``fpbisp`` ``kx + 1`` and ``ky + 1`` into 6-entry
        ones, on the stack (a degree of 21, and of 10, crashed the call). A univariate spline's antiderivative
        legitimately reaches degree 6 and more; up to 19 is accepted. The arrays' lengths are checked by the f2py
        wrappers."""
        if type(state) is not _Dict:
            return "?a state the scanner cannot read"
        if kind == "univariate":
            args = state.get("_eval_args")
            if args is _UNKNOWN:
                return None  # evaluation fails on the missing attribute
            if type(args) not in (tuple, list) or len(args) != 3:
                return "?spline arguments the scanner cannot read"
            degrees, high = [args[2]], 19
        else:
            given = state.get("degrees")
            if given is _UNKNOWN:
                return None
            if type(given) not in (tuple, list) or len(given) != 2:
                return "?spline degrees the scanner cannot read"
            degrees, high = list(given), 5
        for degree in degrees:
            if type(degree) is not int:
                return "?a spline degree the scanner cannot read"
            if not 0 <= degree <= high:
                return f"degree {degree} (FITPACK's work arrays hold degrees up to {high})"
        return None

    def _tri_user_problem(self, state: Any) -> str | None:
        """What is wrong with the ``__dict__`` of SciPy's ``LinearNDInterpolator`` or
        ``CloughTocher2DInterpolator``: their compiled evaluation reads ``tri`` through ``_get_delaunay_info``
        (any object's ``points``, ``simplices``, ``neighbors``... attributes: an ``argparse.Namespace`` there was
        scanned clean and crashed the real call), then ``values`` (and ``grad``) at the simplices' point indices,
        and the query points at the width of ``tri``'s. So ``tri`` must be a ``Delaunay`` (checked at its own
        BUILD) whose points match the interpolator's."""
        if type(state) is not _Dict:
            return "?a state the scanner cannot read"
        tri = state.get("tri")
        if tri is _UNKNOWN:
            return None  # the evaluation fails on the missing attribute
        if type(tri) is not _Call or _instance_class(tri) not in _DELAUNAY:
            return f"a triangulation {_short(tri)} that is not a SciPy Delaunay"
        tri_state = tri.state
        if type(tri_state) is not _Dict:
            return "?a triangulation not yet given its state"
        tri_points = self._dims(tri_state.get("_points"), 2)
        points = self._dims(state.get("points"), 2)
        values = self._array_of(state.get("values"))
        vdims = values[1] if values is not None else None
        if tri_points is None or points is None or type(vdims) is not tuple or len(vdims) != 2:
            return "?points or values the scanner cannot read"
        n_points, ndim = tri_points
        if points[1] != ndim:
            return f"points of {points[1]} dimensions over a triangulation of {ndim}"
        if vdims[0] < n_points or type(vdims[1]) is not int:
            return f"values of shape {vdims} for {n_points} points"
        grad = state.get("grad")
        if grad is not _UNKNOWN and grad is not None:
            gdims = self._dims(grad, 3)
            if gdims is None:
                return "?gradients the scanner cannot read"
            if gdims[0] < n_points or gdims[1] < vdims[1] or gdims[2] < ndim:
                return f"gradients of shape {gdims} for values of shape {vdims} in {ndim} dimensions"
        return None

    def _int_array(self, value: Any) -> tuple[int, Iterator[memoryview]] | str:
        """A 1-D int32 or int64 array's length and values, or (starting with '?') why they cannot be read."""
        found = self._array_of(value)
        if found is None:
            return "?index arrays the scanner cannot read"
        dtype, shape, data = found
        code = _int_code(dtype)
        if code is None:
            return "?an index array of a dtype the scanner does not read"
        if type(shape) is not tuple or len(shape) != 1 or type(shape[0]) is not int:
            return "?an index array of a shape the scanner cannot read"
        chunks = _array_chunks(data)
        if chunks is None:
            return "?index array data the scanner cannot read"
        return shape[0], _int_views(chunks, code, self.budget)

    def _merged_state(self, state: Any) -> _Dict | str | None:
        """The attributes a BUILD state other than a plain dict sets, as one mapping: the unpickler splits a
        ``(state, slotstate)`` pair and sets the items of both (``(None, {...})`` set every attribute past a check
        that read dict states only: an edited BSpline read heap memory as coefficients), a dict subclass sets its
        items, joblib's Python unpickler takes pairs. None when it sets nothing; a reason (with a leading ``?``)
        when what it sets cannot be told, or an attribute is set by two of its parts."""
        mappings, unseen = self._state_mappings(state)
        if unseen is not None:
            return f"?a state the scanner cannot read ({unseen})"
        if not mappings:
            return None
        if len(mappings) == 1:
            return mappings[0]
        merged = _Dict()
        seen: set[Any] = set()
        for mapping in mappings:
            keys = {k for k, _ in mapping.items if type(k) is str}
            if keys & seen or mapping.hidden:
                return "?a state whose parts set the same attribute (which one wins depends on their order)"
            seen |= keys
            for k, v in mapping.items:
                merged.add(k, v)
        return merged

    def _trusted_state(self, cls: str, given: _Dict | str, off: int) -> None:
        """scikit-learn estimators whose compiled predict trusts the shapes of their fitted arrays (see
        ``_TRUSTED_STATE``): libsvm's models, k-means' centers, gradient boosting's stages. Each is checked as
        its fit leaves it; arrays the scanner cannot read (or not yet built: a BUILD after the estimator's would
        change what predict reads) make the file unverified, as these code paths read outside the arrays.
        ``given`` is the state's attributes, or why they cannot be read (``_merged_state``)."""
        check, subject, explained = _TRUSTED_CHECKS[_TRUSTED_STATE[cls]]
        problem = (
            given if type(given) is str else check(self, cls, given if type(given) is _Dict else _Dict())
        )
        self._state_problem(cls, problem, subject, explained, off)

    @staticmethod
    def _constraint_problem(state: _Dict) -> str | None:
        """What a SciPy ``NonlinearConstraint`` keeps for ``minimize`` to call: ``fun``, ``jac`` and ``hess``. Loading
        calls none of them, but every use does, with the iterate. Each must be a name the pickle imports (judged
        where it is imported: a user's function is reported there, a numpy ufunc is clean) that the allow-list
        admits for calling, not only for rebuilding (those run a constructor or a compiled routine on whatever they
        are handed); or a finite-difference scheme's name, None, or for ``hess`` a ``BFGS``/``SR1`` approximation.
        Anything else (a ``functools.partial``, a bound method, an object made at load time) is not judged."""
        for key in ("fun", "jac", "hess"):
            value = state.get(key)
            if value is _UNKNOWN or value is None or type(value) is str:
                continue
            if type(value) is _Ref:
                if value.module == "?":
                    return f"?a constraint {key} whose name is computed at load time"
                if value.by_pattern:
                    return f"{key} {value.canon}, which the allow-list admits for rebuilding only"
                continue
            if key == "hess" and type(value) is _Call and _instance_class(value) in _HESSIAN_UPDATES:
                continue
            return f"?a constraint {key} {_short(value)} the scanner does not judge (minimize calls it)"
        return None

    @staticmethod
    def _watermark_problem(state: _Dict) -> str | None:
        """A ``WatermarkLogitsProcessor``'s ``vocab_size``: ``_get_greenlist_ids`` runs ``torch.randperm(vocab_size)``
        at every step for every sequence, so the pickle sizes that allocation (8 bytes an entry). The largest
        vocabularies are a few hundred thousand tokens; past ``_MAX_VOCABULARY`` it is reported. The rest of its
        ``__call__`` is torch's checked indexing and arithmetic on numbers."""
        size = state.get("vocab_size")
        if size is _UNKNOWN:
            return None if not state.hidden else "?a vocabulary size the scanner cannot read"
        if type(size) is not int:
            return "?a vocabulary size the scanner cannot read"
        return f"vocab_size {size}" if not 0 < size <= _MAX_VOCABULARY else None

    @staticmethod
    def _hasher_problem(state: _Dict) -> str | None:
        """A ``FeatureHasher``'s or ``HashingVectorizer``'s ``n_features``: transform takes each hash modulo it."""
        width = state.get("n_features")
        return f"n_features {width}" if type(width) is int and width < 1 else None

    def _dims(self, value: Any, rank: int) -> tuple[int, ...] | None:
        """The shape of an array the scanner holds (built before now), if it has ``rank`` constant dimensions."""
        found = self._array_of(value)
        if found is None:
            return None
        shape = found[1]
        if (
            type(shape) is not tuple
            or len(shape) != rank
            or not all(type(d) is int and d >= 0 for d in shape)
        ):
            return None
        return shape

    def _libsvm_problem(self, cls: str, state: _Dict) -> str | None:
        """libsvm's ``set_model`` (scikit-learn's helper) builds its model from the arrays with counts taken from
        others: ``l`` support vectors (``support_``'s length, or the sparse vectors' rows), ``nr_class`` classes
        (``_n_support``'s length), then reads ``(nr_class - 1) * l`` dual coefficients, ``nr_class * (nr_class -
        1) / 2`` intercepts (and probability pairs), ``l`` dense support vectors and, for classifiers, ``nSV[i]``
        vectors per class. scikit-learn checks only the sum of ``_n_support`` against a non-empty dense
        ``support_vectors_`` (CVE-2020-28975); empty vectors, sparse models and every other count pass."""
        nsv = self._int_array(state.get("_n_support"))
        if isinstance(nsv, str):
            return nsv
        n_class, counts = nsv
        pairs = n_class * (n_class - 1) // 2
        sparse, kernel = state.get("_sparse"), state.get("kernel")
        if type(sparse) is not bool or type(kernel) is not str:
            return "?a sparse flag or kernel the scanner does not read"
        support = self._int_array(state.get("support_"))
        if isinstance(support, str):
            return support
        if sparse:
            # scipy matrices: their own index arrays are checked where they are built (_sparse_state)
            indptr = self._dims(_state_item(state.get("support_vectors_"), "indptr"), 1)
            data = self._dims(_state_item(state.get("_dual_coef_"), "data"), 1)
            if indptr is None or data is None:
                return "?sparse support vectors or coefficients the scanner cannot read"
            n_sv = max(indptr[0] - 1, 0)
            n_coef = data[0]
        else:
            n_sv = support[0]
            coef = self._dims(state.get("_dual_coef_"), 2)
            if coef is None:
                return "?dual coefficients the scanner cannot read"
            n_coef = coef[0] * coef[1]
            if kernel == "precomputed":
                fit = state.get("shape_fit_")
                if type(fit) is not tuple or not fit or type(fit[0]) is not int:
                    return "?a training shape the scanner cannot read"
                bad = _outside(support[1], fit[0])
                if bad is not None:
                    return f"support index {bad} of a {fit[0]}-column kernel"
            else:
                vectors = self._dims(state.get("support_vectors_"), 2)
                if vectors is None:
                    return "?support vectors the scanner cannot read"
                if vectors[0] < n_sv:
                    return f"{vectors[0]} support vectors for {n_sv} support indices"
        if n_class and n_coef < (n_class - 1) * n_sv:
            return f"{n_coef} dual coefficients for {n_class} classes of {n_sv} support vectors"
        intercept = self._dims(state.get("_intercept_"), 1)
        if intercept is None:
            return "?intercepts the scanner cannot read"
        if intercept[0] < pairs:
            return f"{intercept[0]} intercepts for {n_class} classes"
        for name in ("_probA", "_probB"):
            prob = self._dims(state.get(name), 1)
            if prob is None:
                return f"?{name} the scanner cannot read"
            if 0 < prob[0] < pairs:
                return f"{prob[0]} {name} values for {n_class} classes"
        if cls.rpartition(".")[2] in _LIBSVM_REGRESSORS:
            return None  # regression and one-class models never read _n_support's values
        total = 0
        for view in counts:
            if len(view) and min(view) < 0:
                return f"a negative support vector count ({min(view)})"
            total += sum(view)
        if total > n_sv:
            return f"_n_support summing to {total} for {n_sv} support vectors"
        return None

    def _known_categories_problem(self, state: _Dict) -> str | None:
        """Histogram gradient boosting's predict builds ``f_idx_map`` (one entry per feature its bin mapper's
        ``is_categorical_`` has) and ``known_cat_bitsets`` (a row per categorical feature), then reads
        ``known_cat_bitsets[f_idx_map[feature]]`` for a categorical split's feature, unchecked: each such feature
        must be one of the mapper's, and the mapper must know at least one categorical feature. A predictor not
        yet given its state is remembered and checked when its BUILD comes (the estimator keeps it)."""
        top, budget = -1, _MAX_CONTAINER
        predictors = state.get("_predictors")
        if (
            predictors is _UNKNOWN
            and not state.hidden
            and state.size == len(state.items)
            and not any(type(k) is not str and _may_be_str(k) for k, _ in state.items)
        ):
            # an estimator never fitted (GridSearchCV's ``estimator``, a stacking or target-transform template):
            # its state, every key of it known, has no ``_predictors`` (nor a key computed at load time that may
            # be one), so predict raises NotFittedError or AttributeError before reading any split
            return None
        todo = [predictors]
        pending: list[_Call] = []
        while todo and budget > 0:
            value = todo.pop()
            budget -= 1
            if type(value) is list or type(value) is tuple:
                todo.extend(value)
                continue
            found = self.node_arrays.get(id(value))
            if found is not None and found[0] is value:
                if type(found[1]) is _NodeCheck:
                    top = max(top, found[1].max_categorical)
            elif type(value) is _Call and value.state is None and _instance_class(value) in _NODE_OWNERS:
                pending.append(value)
            else:
                return "?predictors the scanner cannot check (built at load time or of another form)"
        if todo:
            return "?too many predictors to check"
        if top < 0 and not pending:
            return None
        known = self._categorical_flags(state)
        if isinstance(known, str):
            return known
        for predictor in pending:
            self.categories_pending[id(predictor)] = (predictor, known)
        return None if top < 0 else _categories_verdict(top, known)

    def _categorical_flags(self, state: _Dict) -> tuple[int, bool] | str:
        """The number of features of an estimator's bin mapper and whether one is categorical, or (with a
        leading '?') why they cannot be read."""
        flags = self._array_of(_state_item(state.get("_bin_mapper"), "is_categorical_"))
        if flags is None:
            return "?a bin mapper the scanner cannot read"
        dtype, shape, data = flags
        chunks = _array_chunks(data)
        if (
            _dtype_info(dtype)[0] != 1
            or type(shape) is not tuple
            or len(shape) != 1
            or type(shape[0]) is not int
            or chunks is None
        ):
            return "?categorical feature flags the scanner cannot read"
        return shape[0], any(any(chunk) for chunk in _timed(chunks, self.budget))

    def _bspline_problem(self, state: _Dict) -> str | None:
        """SciPy's ``BSpline`` is unpickled by a ``__dict__`` update; ``__init__`` would refuse a degree below 0,
        fewer than ``2k + 2`` knots or fewer than ``len(t) - k - 1`` coefficients, and evaluation reads the
        ``k + 1`` coefficients of each knot interval without checking them (heap memory came back as values)."""
        knots = state.get("_t")
        coefs = state.get("_c")
        if knots is _UNKNOWN and coefs is _UNKNOWN:  # SciPy before 1.15 kept them as plain attributes
            knots, coefs = state.get("t"), state.get("c")
        degree = state.get("k")
        t = self._dims(knots, 1)
        found = self._array_of(coefs)
        shape = found[1] if found is not None else None
        if (
            type(degree) is not int
            or t is None
            or type(shape) is not tuple
            or not shape
            or type(shape[0]) is not int
        ):
            return "?knots, coefficients or degree the scanner cannot read"
        if degree < 0 or t[0] < 2 * degree + 2:
            return f"degree {degree} with {t[0]} knots"
        if shape[0] < t[0] - degree - 1:
            return f"{shape[0]} coefficients for {t[0]} knots of degree {degree}"
        return None

    def _ndbspline_problem(self, state: _Dict) -> str | None:
        """SciPy's ``NdBSpline`` is unpickled by a ``__dict__`` update and hands ``_t`` (one padded row of knots per
        dimension), ``_len_t`` (each row's length), ``_k`` (degrees) and ``_indices_k1d`` (the ``(k + 1)**ndim``
        offsets of the non-zero basis elements) to the C++ ``evaluate_ndbspline``, which finds each point's knot
        interval within ``_len_t[d]`` knots and reads ``_c`` at interval plus offset in every dimension, trusting
        all of them (a short or out-of-range offset table crashed the call). Checked as ``__init__`` would."""
        knots = self._dims(state.get("_t"), 2)
        if knots is None:
            return "?knots the scanner cannot read"
        ndim, width = knots
        values: dict[str, list[int]] = {}
        for key in ("_len_t", "_k"):
            found = self._int_array(state.get(key))
            if isinstance(found, str):
                return found
            count, views = found
            if count != ndim:
                return f"{key} of {count} entries for {ndim} dimensions"
            values[key] = [v for view in views for v in view][:ndim]
        lengths, degrees = values["_len_t"], values["_k"]
        for d, (length, degree) in enumerate(zip(lengths, degrees, strict=True)):
            if degree < 0 or not 2 * degree + 2 <= length <= width:
                return f"{length} knots of degree {degree} in dimension {d} (of {width} stored)"
        coefs = self._array_of(state.get("_c"))
        shape = coefs[1] if coefs is not None else None
        if coefs is None or type(shape) is not tuple or not all(type(n) is int for n in shape):
            return "?coefficients the scanner cannot read"
        if not _float64(coefs[0]) and _dtype_info(coefs[0])[0] != 16:
            return "?coefficients of a dtype the scanner does not read (SciPy's are float64 or complex128)"
        if len(shape) < ndim:
            return f"coefficients of shape {shape} for {ndim} dimensions"
        for d in range(ndim):
            if shape[d] < lengths[d] - degrees[d] - 1:
                return (
                    f"{shape[d]} coefficients in dimension {d} for {lengths[d]} knots of degree {degrees[d]}"
                )
        given = state.get("_indices_k1d")
        table = self._array_of(given)
        tshape = table[1] if table is not None else None
        if table is None or not _is_int64(table[0]) or type(tshape) is not tuple or len(tshape) != 2:
            return "?an offset table the scanner cannot read"
        if id(given) in self.fortran:
            return "?an offset table whose state may say Fortran order (its rows are read in C order here)"
        if tshape[1] != ndim:
            return f"an offset table of shape {tshape} for {ndim} dimensions"
        chunks = _array_chunks(table[2])
        if chunks is None:
            return "?an offset table the scanner cannot read"
        row = struct.Struct(f"<{ndim}q")
        for block in _records(_timed(chunks, self.budget), row.size) if ndim else ():
            for offsets in row.iter_unpack(block):
                for d, offset in enumerate(offsets):
                    if not 0 <= offset <= degrees[d]:
                        return f"an offset {offset} in dimension {d} of degree {degrees[d]}"
        return None

    def _onehot_problem(self, state: _Dict) -> str | None:
        """scikit-learn's ``OneHotEncoder.transform`` encodes feature ``i`` as its category's index (``< len(
        categories_[i])``), maps it through ``_default_to_infrequent_mappings[i]`` when infrequent categories are
        grouped, lowers the indices past ``_drop_idx_after_grouping[i]`` by one, and adds the sum of the earlier
        ``_n_features_outs``: fit makes each column land below the next feature's offset. Every part is state; the
        CSR array built from them is not checked by SciPy and ``toarray`` (transform's own, unless sparse) writes at
        each column (``_n_features_outs`` of 1 for 1,000 categories: SIGSEGV)."""
        outs = state.get("_n_features_outs")
        if outs is _UNKNOWN or outs is None:
            return None  # not fitted: transform refuses
        cats = state.get("categories_")
        if type(outs) not in (list, tuple) or type(cats) not in (list, tuple):
            return "?feature output counts or categories the scanner cannot read"
        if not all(type(n) is int for n in outs):
            return "?feature output counts the scanner cannot read"
        if len(outs) != len(cats):
            return f"{len(outs)} feature output counts for {len(cats)} features"
        highs: list[int] = []
        for c in cats:
            dims = self._dims(c, 1)
            if dims is None:
                return "?categories the scanner cannot read"
            highs.append(dims[0] - 1)
        lows = [0] * len(cats)
        if state.get("_infrequent_enabled") is True:
            mappings = state.get("_default_to_infrequent_mappings")
            if type(mappings) not in (list, tuple) or len(mappings) != len(cats):
                return "?infrequent category mappings the scanner cannot read"
            for i, mapping in enumerate(mappings):
                if mapping is None:
                    continue
                values = self._int_array(mapping)
                if isinstance(values, str):
                    return values
                flat = [v for view in values[1] for v in view]
                if flat:
                    lows[i], highs[i] = min(flat), max(flat)
        drops = state.get("_drop_idx_after_grouping")
        if drops is not None:
            found = self._array_of(drops)
            items = found[2] if found is not None else None
            if type(items) is not list or len(items) != len(cats):
                return "?dropped categories the scanner cannot read"
            for i, item in enumerate(items):
                drop = _numpy_int(item)
                if item is None:
                    continue
                if drop is None:
                    return "?dropped categories the scanner cannot read"
                if lows[i] > drop:
                    lows[i] -= 1
                if highs[i] > drop:
                    highs[i] -= 1
        for i, n in enumerate(outs):
            if lows[i] < 0 or highs[i] >= n:
                return f"feature {i} encoded into columns {lows[i]} to {highs[i]} of its {n}"
        return None

    def _vocabulary_problem(self, state: _Dict) -> str | None:
        """scikit-learn's ``DictVectorizer.transform`` maps each known feature to ``vocabulary_[name]`` and builds a
        CSR array ``len(vocabulary_)`` columns wide from those indices (SciPy's constructor checks the index
        pointer, not the indices); ``toarray`` (run by transform itself unless ``sparse``) writes each value at its
        column unchecked (a column past the width: SIGSEGV). Fit numbers the features 0 .. n - 1."""
        vocab = state.get("vocabulary_")
        if vocab is _UNKNOWN or vocab is None:
            return None  # not fitted: transform refuses
        if type(vocab) is not _Dict or vocab.hidden:
            return "?a vocabulary the scanner cannot read"
        keys = set()
        high, low = -1, 0
        for k, v in vocab.items:
            if type(k) is not str:
                return "?a vocabulary with keys the scanner cannot read"
            keys.add(k)
            if type(v) is int:
                high, low = max(high, v), min(low, v)
            elif type(v) not in (str, bytes, float, bool) and v is not None:
                return "?a vocabulary with columns the scanner cannot read"
        spill = vocab.spill
        if vocab.size != len(vocab.items):
            if type(spill) is not list:
                return "?a vocabulary too large for the scanner to read"
            low, high = min(low, spill[0]), max(high, spill[1])
            keys.update(spill[2])
        if low < 0:
            return f"a feature column {low}"
        if high >= len(keys):
            return f"a feature column {high} of a vocabulary of {len(keys)} features"
        return None

    def _sobol_problem(self, state: _Dict) -> str | None:
        """SciPy's ``qmc.Sobol`` is unpickled by a ``__dict__`` update. Its ``random`` checks only
        ``num_generated + n <= maxn``, then the Cython ``_draw`` (and ``fast_forward``'s ``_fast_forward``) loops
        ``d`` dimensions, XORs ``_sv[j, l - 1]`` into ``_quasi[j]`` with ``l`` the lowest zero bit of the point count,
        and writes it back, with bounds checks off (an edited ``d`` wrote past ``_quasi`` and killed the process).
        ``reset`` copies ``_shift`` into ``_quasi``. So: ``d`` rows of ``_sv`` and entries of ``_quasi`` and
        ``_shift``, ``maxn`` at most 2 to the power of ``_sv``'s columns (the count stays below it) and
        ``num_generated`` within ``maxn``. The memoryviews check the arrays' dtypes and contiguity themselves."""
        present = {k for k, _ in state.items if type(k) is str}
        ints: dict[str, int] = {}
        for key in ("d", "maxn", "num_generated"):
            value = state.get(key)
            if key not in present:
                return None  # sampling fails on the missing attribute
            if type(value) is not int:
                return f"?{key} the scanner cannot read"
            ints[key] = value
        if "optimization_method" in present and state.get("optimization_method") is not None:
            return (
                "?an optimization method (a callable SciPy calls on every sample) the scanner does not check"
            )
        arrays: dict[str, tuple[int, ...]] = {}
        for key, rank in (("_sv", 2), ("_quasi", 1), ("_shift", 1)):
            if key not in present:
                return None if key != "_shift" else "no _shift (reset reads it)"
            dims = self._dims(state.get(key), rank)
            if dims is None:
                return f"?{key} the scanner cannot read (or not of rank {rank}: the memoryviews refuse it)"
            arrays[key] = dims
        d, maxn, count = ints["d"], ints["maxn"], ints["num_generated"]
        rows, bits = arrays["_sv"]
        if d < 0 or rows < d or arrays["_quasi"][0] < d or arrays["_shift"][0] < d:
            return (
                f"d {d} with direction numbers of shape {arrays['_sv']}, _quasi of {arrays['_quasi'][0]} and "
                f"_shift of {arrays['_shift'][0]} entries"
            )
        if maxn > 2 ** min(bits, 64):
            return f"maxn {maxn} for {bits} columns of direction numbers"
        if not 0 <= count <= maxn:
            return f"num_generated {count} of maxn {maxn}"
        return None

    def _halton_problem(self, state: _Dict) -> str | None:
        """SciPy's ``qmc.Halton`` is unpickled by a ``__dict__`` update. ``random`` hands each ``base[i]`` (refused
        below 2), ``num_generated`` and ``_permutations[i]`` to the Cython ``_cy_van_der_corput_scrambled``, which
        reads ``permutations[j, digit]`` for each of its rows and each base-``base[i]`` digit of the point count,
        unchecked (narrowed permutations came back as heap values in the sample). So: a plain int count of at least
        0 and, when scrambling, a 2-D permutation array per base with at least ``base[i]`` columns."""
        present = {k for k, _ in state.items if type(k) is str}
        if not {"base", "num_generated", "scramble", "_permutations"} <= present:
            return None  # sampling fails on the missing attribute
        count, scramble = state.get("num_generated"), state.get("scramble")
        if type(count) is not int or type(scramble) is not bool:
            return "?a point count or scramble flag the scanner cannot read"
        if count < 0:
            return f"num_generated {count}"
        if "optimization_method" in present and state.get("optimization_method") is not None:
            return (
                "?an optimization method (a callable SciPy calls on every sample) the scanner does not check"
            )
        bases, perms = state.get("base"), state.get("_permutations")
        if type(bases) is not list or not all(type(b) is int for b in bases) or len(bases) >= _MAX_CONTAINER:
            return "?bases the scanner cannot read"
        if not scramble:
            return None  # the plain loop reads no array
        if type(perms) is not list or len(perms) < len(bases):
            return "?permutations the scanner cannot read (fewer than the bases fail with an IndexError)"
        for base, perm in zip(bases, perms, strict=False):
            dims = self._dims(perm, 2)
            if dims is None:
                return "?permutations the scanner cannot read (or not 2-D: the memoryview refuses them)"
            found = self._array_of(perm)
            if found is None or _int_code(found[0]) is None:
                # SciPy's are int64; astype(int64) of another dtype converts each item (an object's __int__)
                return "?permutations of a dtype the scanner does not check"
            if dims[1] < base:
                return f"permutations of shape {dims} for base {base}"
        return None

    def _grid_problem(self, state: _Dict) -> str | None:
        """SciPy's ``RegularGridInterpolator`` is unpickled by a ``__dict__`` update: ``_check_dimensionality``
        (one grid point per value along each axis) runs in ``__init__`` only, and the linear method's compiled
        ``evaluate_linear_2d`` reads ``_values`` at the indices found in ``_grid`` (a grid longer than the values
        crashed it). SciPy before 1.10 kept them as ``grid`` and ``values``."""
        grid, values = state.get("_grid"), state.get("_values")
        if grid is _UNKNOWN and values is _UNKNOWN:
            grid, values = state.get("grid"), state.get("values")
        if grid is _UNKNOWN or values is _UNKNOWN:
            return None  # evaluation fails on the missing attribute
        if type(grid) not in (tuple, list) or len(grid) > 64:
            return "?a grid the scanner cannot read"
        found = self._array_of(values)
        shape = found[1] if found is not None else None
        if type(shape) is not tuple or not all(type(n) is int for n in shape):
            return "?values the scanner cannot read (a grid's values may be of another array type)"
        if len(shape) < len(grid):
            return f"values of shape {shape} for a grid of {len(grid)} axes"
        for axis, points in enumerate(grid):
            dims = self._dims(points, 1)
            if dims is None:
                return "?grid points the scanner cannot read"
            if dims[0] != shape[axis]:
                return f"{dims[0]} grid points along axis {axis} for values of shape {shape}"
        return None

    def _labels_problem(self, state: _Dict) -> str | None:
        """A nearest-neighbour classifier's ``predict``/``predict_proba`` with uniform weights, brute force and
        most metrics hand ``_y`` (each training row's class index) to ``ArgKminClassMode`` or
        ``RadiusNeighborsClassMode``, which read ``_y`` at the neighbours' row numbers (rows of ``_fit_X``) and
        add to column ``_y[j]`` of scores ``len(classes_)`` wide, unchecked. Multi-output labels (2-D ``_y``) take
        numpy's checked indexing."""
        labels = self._array_of(state.get("_y"))
        if labels is None:
            return "?training labels the scanner cannot read"
        if type(labels[1]) is tuple and len(labels[1]) != 1:
            return None
        values = self._int_array(state.get("_y"))
        if isinstance(values, str):
            return values
        fit = state.get("_fit_X")
        rows = self._dims(fit, 2)
        if rows is None:
            shape = _state_item(fit, "_shape")  # a SciPy CSR matrix (its own arrays are checked where built)
            rows = shape if type(shape) is tuple and len(shape) == 2 and type(shape[0]) is int else None
        classes = self._dims(state.get("classes_"), 1)
        if rows is None or classes is None:
            return "?training rows or classes the scanner cannot read"
        count, views = values
        if count < rows[0]:
            return f"{count} training labels for {rows[0]} training rows"
        bad = _outside(views, classes[0])
        return None if bad is None else f"a training label {bad} of {classes[0]} classes"

    def _centers_problem(self, cls: str, state: _Dict) -> str | None:
        """k-means' predict and score hand the validated input (``n_features_in_`` columns) and the centers to
        Cython loops that take the row width from one and index the other with it: the centers (and, for
        ``BisectingKMeans``, each node's center in its tree, which predict stacks) must be exactly that wide."""
        n = state.get("n_features_in_")
        if type(n) is not int:
            return "?no feature count the scanner can read (predict then accepts rows of any width)"
        centers = self._dims(state.get("cluster_centers_"), 2)
        if centers is None:
            return "?cluster centers the scanner cannot read"
        if centers[1] != n:
            return f"cluster centers of {centers[1]} features for n_features_in_ {n}"
        if not cls.endswith("BisectingKMeans"):
            return None
        todo, budget = [state.get("_bisecting_tree")], _MAX_CONTAINER
        while todo and budget > 0:
            node = todo.pop()
            budget -= 1
            if node is None:
                continue
            if type(node) is not _Call or type(node.state) is not _Dict:
                return "?a bisecting tree node the scanner cannot read (or given its state later)"
            center = self._dims(_state_item(node, "center"), 1)
            if center is None:
                return "?a bisecting tree center the scanner cannot read"
            if center[0] != n:
                return f"a bisecting tree center of {center[0]} features for n_features_in_ {n}"
            todo.extend((node.state.get("left"), node.state.get("right")))
        return "?a bisecting tree too large to check" if todo else None

    def _stages_problem(self, state: _Dict) -> str | None:
        """Gradient boosting's ``estimators_`` is an object array of ``(n_estimators, K)`` trees; predict makes
        raw predictions of ``n_trees_per_iteration_`` columns (as many as its initial estimator predicts) and
        ``predict_stages`` adds tree ``k`` of each stage to column ``k``, unchecked."""
        width = state.get("n_trees_per_iteration_")
        stages = self._dims(state.get("estimators_"), 2)
        if type(width) is not int or stages is None:
            return "?stages the scanner cannot read"
        if stages[1] != width:
            return f"stages of {stages[1]} trees for {width} raw prediction columns"
        init = state.get("init_")
        if width > 1 and type(init) is _Call and _instance_class(init) == "sklearn.dummy.DummyClassifier":
            prior = self._dims(_state_item(init, "class_prior_"), 1)
            if prior is None:
                return "?an initial estimator the scanner cannot read"
            if prior[0] != width:
                return f"an initial estimator predicting {prior[0]} columns for stages of {width} trees"
        return None

    def _features_in(self, state: _Dict, off: int) -> None:
        """An estimator's ``n_features_in_`` is the number of columns ``predict`` accepts; a tree it hands those
        rows to (its ``tree_``, the trees or predictors among its ``estimators_`` or ``_predictors``, in lists or
        object arrays, through nested estimators' same attributes) whose nodes read a later feature reads outside
        each row. Other attributes are not followed: a pipeline step or a stacking final estimator sees other
        columns (encoded, stacked) than the estimator's input."""
        n = state.get("n_features_in_")
        if type(n) is not int:
            return
        self._feature_walk([(v, 0) for k, v in state.items if k in _X_KEYS], n, off)

    def _feature_walk(self, todo: list[tuple[Any, int]], n: int, off: int) -> None:
        """Check the trees reached from ``todo`` against ``n`` features (see :meth:`_features_in`). A tree or
        estimator not yet given its state (its BUILD comes later, through the memo) is remembered with ``n`` and
        walked when that BUILD comes: the estimator keeps the object itself, so what the BUILD gives it is what
        ``predict`` reads (no pickler writes an object's BUILD after that of what holds it)."""
        top = -1
        seen: set[int] = set()
        budget = _MAX_CONTAINER
        while todo and budget > 0:
            value, depth = todo.pop()
            budget -= 1
            if id(value) in seen or depth > 8:
                continue
            seen.add(id(value))
            t = type(value)
            if t is tuple or t is list:
                if t is list:
                    self.feature_lists[id(value)] = (value, n)
                todo.extend((v, depth + 1) for v in value)
            elif (
                t is _Unknown
            ):  # an object array joblib pickled as a stream of its own: what that stream built
                array = self.arrays.get(id(value))
                if array is not None and array[0] is value:
                    todo.append((array[3], depth + 1))
            elif t is _Call:
                found = self.node_arrays.get(id(value))
                if found is not None and found[0] is value:
                    if type(found[1]) is _NodeCheck:
                        top = max(top, found[1].max_feature)
                    continue
                array = self.arrays.get(id(value))
                if array is not None and array[0] is value:  # an object array of estimators: its items
                    items = array[3]
                    if type(items) is list:
                        todo.extend((v, depth + 1) for v in items)
                elif type(value.state) is _Dict:
                    todo.extend((v, depth + 1) for k, v in value.state.items if k in _X_KEYS)
                elif (
                    value.state is None
                    and (cls := _instance_class(value)) is not None
                    and cls.startswith("sklearn.")
                ):
                    self.features_pending[id(value)] = (value, n)
        if top >= n:
            self._feature_hit("n_features_in_", top, n, off)

    def _allocation(self, name: str, made: _Call, args: Any, kwargs: Any, off: int) -> None:
        """An array class's ``__new__`` (called or by NEWOBJ) or numpy's ``_reconstruct``/``_mareconstruct``
        allocates ``shape`` elements and fills them only from a buffer it is given, else leaves them as the
        process's memory held them; remembered until a BUILD gives the array its state (see ``unfilled``)."""
        shape_at, buffer_at, buffer_names = _ARRAY_ALLOCATORS[name]
        given = _star_args(args) if type(args) is not tuple else args
        if len(given) <= shape_at:
            return  # ndarray.__new__ refuses a missing shape
        if buffer_at is not None and len(given) > buffer_at and given[buffer_at] is not None:
            return  # a view of a buffer (checked where views are)
        if type(kwargs) is _Dict and any(kwargs.get(k) not in (None, _UNKNOWN) for k in buffer_names):
            return
        shape = given[shape_at]
        dims = (shape,) if type(shape) is int else shape
        if type(dims) is tuple and any(type(d) is int and d == 0 for d in dims):
            return  # no elements (numpy pickles every array from _reconstruct(cls, (0,), b"b"))
        dtype = given[shape_at + 1] if len(given) > shape_at + 1 else None
        if dtype is None and type(kwargs) is _Dict:
            dtype = kwargs.get("dtype")
        if _zero_filled(dtype):
            return
        self.unfilled[id(made)] = (made, off)

    def _unfilled_arrays(self) -> None:
        """Report each array allocated with elements that no BUILD filled (see ``_allocation``): the loaded array
        holds uninitialised memory of the loading process (heap addresses, freed strings and code, shown with
        numpy 2.4), as torch's uninitialised tensors do. numpy pickles every array as an empty one that its BUILD
        fills, so this is never written by a pickler."""
        for made, off in self.unfilled.values():
            if made.state is not None:
                continue
            desc = _describe(made)
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                "numpy.ndarray:uninitialized",
                f"{desc} allocates array elements that nothing fills: the loaded array holds whatever the loading "
                "process's memory held (heap addresses, freed data)",
                off,
                self._ev({"call": _short(made.args)}),
            )
        self.unfilled.clear()

    def _feature_list_store(self, target: list[Any], off: int, values: list[Any] | None = None) -> None:
        """APPEND(S) or SETITEM(S) on a list of trees or estimators an estimator keeps (see ``feature_lists``): what
        it now holds (and ``values``, the items SETITEM(S) stores, which the analysis may not place) is checked
        against the estimator's feature count again."""
        held = self.feature_lists.get(id(target))
        if held is not None and held[0] is target:
            self._feature_walk([(target, 0), *((v, 0) for v in values or ())], held[1], off)

    def _state_list_store(self, target: list[Any], op: str, off: int) -> None:
        """APPEND(S) or SETITEM(S) on a list a check of trusted state read (see ``state_lists``): the object keeps
        the list itself, so what its check judged is no longer what the compiled code reads. No pickler writes
        into a list after the object holding it was built: fail closed."""
        held = self.state_lists.get(id(target))
        if held is not None and held[0] is target:
            self.coll.unverified.append(
                f"{op} at offset {off} changes a list the state of {held[1]} holds after its check: what its "
                "compiled code reads was not checked"
            )

    def _feature_hit(self, what: str, feature: int, n_features: int, off: int) -> None:
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            "sklearn.tree:features",
            f"scikit-learn tree node reading feature {feature} of {n_features} ({what}): predict indexes each row "
            "with it unchecked and reads outside the input",
            off,
            self._ev({"feature": feature, "n_features": n_features}),
        )

    def _tree_nodes(self, check: _NodeCheck, off: int) -> None:
        if check.problem is None:
            return
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            "sklearn.tree:nodes",
            f"scikit-learn tree node array with {check.problem}: predict and apply follow child ids unchecked and "
            "read (and crash) outside the node array (scikit-learn PR 34558, skops PR 535)",
            off,
            self._ev({"nodes": check.count}),
        )

    def _dtype_state(self, dtype: _Call, state: Any, off: int) -> None:
        """numpy takes a dtype's flags from its pickled state (version 3 and later) as they are. For a dtype that
        holds objects, flags without ``NPY_ITEM_REFCOUNT`` or ``NPY_LIST_PICKLE`` make numpy copy the array's raw
        bytes into its object slots (``ndarray.__setstate__``, joblib's ``frombuffer``): object pointers the file
        chose, which any access dereferences; without ``NPY_NEEDS_INIT`` numpy leaves the slots uninitialised and
        releases that memory as objects when it stores the items. numpy writes 0x1B or 0x3F for such dtypes."""
        self._dtype_state_shape(state, off)
        self._dtype_layout(dtype, state, off)
        table = _fields_table(state[4]) if type(state) is tuple and 7 <= len(state) <= 9 else None
        if type(table) is _Dict:
            # numpy keeps the state's fields dict (or dict subclass) itself as the dtype's fields: a SETITEM into it
            # later (through the memo) changes the layout of the built dtype, so such a store is judged again
            # (_kept_store)
            self.kept[id(table)] = (table, functools.partial(self._dtype_layout, dtype, state))
        self._dtype_kind_state(dtype, state, off)
        if type(state) is not tuple or not 7 <= len(state) <= 9:  # a 6-item state of version 3+ is rejected
            return
        if type(state[0]) is not int or state[0] < 3:
            return  # numpy computes the flags of older states itself (or rejects the version)
        flags = state[7] if len(state) >= 8 else 0  # numpy's default when the state has no flags item
        if not _dtype_has_object(dtype, state):
            if type(flags) is int and flags & _NPY_POINTER_FLAGS:
                self.coll.hit(
                    RULE_TENSOR,
                    Severity.HIGH,
                    "numpy.dtype:object-flags",
                    "numpy dtype state gives a dtype without objects the flags of one (NPY_ITEM_REFCOUNT, "
                    "NPY_LIST_PICKLE or NPY_ITEM_IS_POINTER): numpy handles its raw bytes as object pointers",
                    off,
                    self._ev({"flags": _short(flags), "spec": _short(dtype.args[0] if dtype.args else None)}),
                )
            return
        if type(flags) is int and flags & _NPY_OBJECT_FLAGS == _NPY_OBJECT_FLAGS:
            return
        if type(flags) is int and flags & _NPY_ITEM_REFCOUNT and flags & _NPY_LIST_PICKLE:
            why = "leaves its slots uninitialised (no NPY_NEEDS_INIT): numpy releases whatever memory holds there"
        elif type(flags) is int and flags & _NPY_ITEM_REFCOUNT:
            why = "makes numpy copy the array's raw bytes into its object slots (no NPY_LIST_PICKLE)"
        else:
            why = "clears its reference flags: the array's raw bytes become its object pointers"
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            "numpy.dtype:object-flags",
            f"numpy dtype state of a dtype with object fields {why}: object pointers chosen by the file",
            off,
            self._ev({"flags": _short(flags), "fields": _short(state[3])}),
        )

    def _dtype_layout(self, dtype: _Call, state: Any, off: int) -> None:
        """numpy takes a structured or sub-array dtype's names, fields, offsets and item size from the pickled
        state without checking that they agree: a field past the item's end (or before its start) makes every
        read and store of that field reach memory outside the array's buffer (for an object field, a pointer is
        written there), a name the fields do not hold is looked up as NULL, and a sub-array larger than the item
        reads past it. numpy writes them consistent. States of versions 1 to 4 (7 to 9 items) are judged."""
        if type(state) is not tuple or not 7 <= len(state) <= 9:
            return
        version, subarray, names, fields = state[0], state[2], state[3], state[4]
        if type(version) is not int or not 1 <= version <= 4:
            return
        spec = dtype.args[0] if dtype.args else None
        if _flexible_spec(spec) and type(state[5]) is int:
            # numpy sets a flexible dtype's item size from the state, whatever it is
            itemsize: int | None = state[5]
        else:
            itemsize = _dtype_info(dtype)[0]
        if itemsize is None:
            if fields is not None or subarray is not None:
                self._layout_unread("its spec", spec, off)
            return
        problem = None
        if itemsize < 0:
            problem = f"a negative item size ({itemsize})"
        table = _fields_table(fields)
        if isinstance(table, str):
            # numpy takes any dict subclass as the fields; one the analysis cannot read may place them anywhere
            self._layout_unread("the fields mapping", fields, off)
            table = None
        fields = table
        if problem is None and type(fields) is _Dict:
            keys = [k for k, _ in fields.items]
            # a key the VM cannot read back may be any name; a constant of another type is none of them
            if (
                type(names) is tuple
                and all(type(n) is str for n in names)
                and not fields.hidden
                and all(type(k) in _CONSTANT_KEYS for k in keys)
            ):
                held = {k for k in keys if type(k) is str}
                missing = [n for n in names if n not in held]
                if missing:
                    problem = (
                        f"names {_short(missing)} that its fields do not hold (numpy looks them up as NULL)"
                    )
            spans: dict[int, tuple[Any, int, int, bool]] = {}  # a titled field is listed twice
            for key, field in fields.items:
                if problem is not None:
                    break
                if type(field) is not tuple or len(field) < 2 or type(field[1]) not in (int, bool):
                    # numpy refuses a field that is not a tuple, or an offset that is not an integer; one made at
                    # load time (tuple(...), int(...)) may be either
                    if (type(field) is tuple and len(field) >= 2 and type(field[1]) not in _NOT_AN_INDEX) or (
                        type(field) is not tuple
                        and type(field) not in _NOT_AN_INDEX
                        and type(field) is not int
                    ):
                        self._layout_unread(f"field {_short(key)}", field, off)
                    continue
                if id(field) in spans or (len(field) == 3 and key is field[2]):
                    continue  # the title's entry: the same field under its title
                size, has_object = _dtype_info(field[0])
                if size is None:
                    # a dtype the analysis cannot size (numpy writes every field's as a type code): its end is
                    # not known, so neither is whether it stays inside the item
                    self._layout_unread(f"the dtype of field {_short(key)}", field[0], off)
                    continue
                start = int(field[1])
                if start < 0 or start + size > itemsize:
                    problem = (
                        f"field {_short(key)} at bytes {start}..{start + size} of a {itemsize}-byte item "
                        "(its reads and stores reach outside the array's memory)"
                    )
                    break
                has_object = has_object or _dtype_has_object(field[0])
                for other, o_start, o_size, o_object in spans.values():
                    if (has_object or o_object) and start < o_start + o_size and o_start < start + size:
                        problem = (
                            f"an object field overlapping another ({_short(key)}, {_short(other)}): stores of "
                            "one overwrite the other's object pointer (numpy refuses such a dtype when it builds one)"
                        )
                        break
                spans[id(field)] = (key, start, size, has_object)
        if problem is None and type(subarray) is tuple and len(subarray) == 2:
            base, shape = subarray
            dims = (shape,) if type(shape) is int else shape
            size = _dtype_info(base)[0]
            if size is None:
                self._layout_unread("a sub-array base", base, off)
            whole = (
                size * math.prod(dims)
                if size is not None and type(dims) is tuple and all(type(d) is int and d >= 0 for d in dims)
                else None
            )
            if whole is not None and whole > itemsize:
                problem = (
                    f"a sub-array of {whole} bytes in a {itemsize}-byte item (reads reach past its memory)"
                )
            elif (
                whole is None
                and size is not None
                and not (
                    type(dims) is tuple
                    and any(type(d) in _NOT_AN_INDEX or (type(d) is int and d < 0) for d in dims)
                )
            ):
                self._layout_unread(
                    "a sub-array shape", shape, off
                )  # made at load time: its size is not known
        elif problem is None and subarray is not None and type(subarray) not in _NOT_AN_INDEX:
            self._layout_unread("the sub-array", subarray, off)  # tuple(...) is a tuple to numpy
        if problem is not None:
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                "numpy.dtype:layout",
                f"numpy dtype state with {problem}",
                off,
                self._ev({"itemsize": itemsize, "fields": _short(fields), "names": _short(names)}),
            )

    def _layout_unread(self, what: str, dtype: Any, off: int) -> None:
        """A structured dtype's layout the analysis cannot judge, because ``what`` (a field's dtype, a field, the
        fields mapping) is one it cannot read or size: whether its fields stay inside the item is not known (fail
        closed)."""
        self.coll.unverified.append(
            f"numpy dtype state at offset {off}: {what} is one the analysis cannot read or size "
            f"({_describe(dtype) if type(dtype) in (_Call, _Ref) else type(dtype).__name__}), so whether its "
            "fields stay inside the item cannot be told"
        )

    def _dtype_kind_state(self, dtype: _Call, state: Any, off: int) -> None:
        """What numpy's ``arraydescr_setstate`` assumes of a state for the dtype's kind: a datetime or timedelta
        dtype reads its unit from the state's metadata item, and with a state of 5 to 8 items (no metadata)
        type-checks a NULL pointer; a flexible dtype (``S``, ``U``, ``V``) takes its alignment from the state, and
        an alignment of 0 divides by zero in numpy's alignment checks. numpy writes 9 items for datetimes and the
        kind's own alignment (1 or 4; -1 for fixed-size kinds, where it is ignored)."""
        spec = dtype.args[0] if dtype.args else None
        if type(spec) is not str or type(state) is not tuple or not 5 <= len(state) <= 9:
            return
        version = 0 if len(state) == 5 else state[0]
        if type(version) is not int or not 0 <= version <= 4:
            return  # numpy rejects the version first
        problem = None
        if re.match(_DATETIME_SPEC, spec) and len(state) < 9:
            problem = (
                f"a datetime dtype with a {len(state)}-item state (no unit metadata): numpy reads the metadata "
                "it never set (a NULL pointer) and the loading process crashes"
            )
        elif re.match(_FLEXIBLE_SPEC, spec):
            alignment = state[-1] if len(state) <= 6 else state[6]  # the last item of the two older layouts
            if type(alignment) is int and alignment == 0:
                problem = "a flexible dtype with alignment 0: numpy's alignment checks divide by it"
        if problem is not None:
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                "numpy.dtype:state",
                f"numpy dtype state with {problem}",
                off,
                self._ev({"state": _short(state)}),
            )

    def _dtype_state_shape(self, state: Any, off: int) -> None:
        """A state numpy's ``arraydescr_setstate`` uses before it checks it. A 6-item state is ``(version, endian,
        subarray, fields, elsize, alignment)``; names come from ``fields`` only for versions 0 and 1, so with a
        later version and ``fields`` not None numpy type-checks a ``names`` it never set, a NULL pointer, and the
        process dies (numpy 2.4; the code is unchanged in numpy's main branch as of 2026-08). numpy writes 8
        items (9 with metadata). The related numpy#30476 (states of 10 or more items) ends in an error, not a
        crash: numpy reads the version from the wrong object."""
        if type(state) is not tuple or len(state) != 6:
            return
        version, endian = state[0], state[1]
        if (
            type(version) in _NOT_AN_INDEX  # numpy fails on the version before it reads anything
            or (type(version) in (int, bool) and not 2 <= version <= 4)
            or state[3] is None
            or (type(endian) in (str, bytes) and len(endian) != 1)
            or type(endian) in _NOT_AN_INDEX - {str, bytes}
            or any(type(n) in _NOT_AN_INDEX for n in state[4:])
        ):
            return  # read safely, or rejected before names are touched
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            "numpy.dtype:state",
            "numpy dtype state of 6 items with a version past 1 and fields: numpy's unpickler reads the names it "
            "never set (a NULL pointer) and the loading process crashes",
            off,
            self._ev({"state": _short(state)}),
        )

    def _script_object_state(self, state: Any, off: int) -> None:
        """``torch.ScriptObject.__setstate__((state, qualname))`` runs the named TorchScript class's
        ``__setstate__``: only torch's own packed-parameter classes are known to be harmless."""
        qualname = state[1] if type(state) is tuple and len(state) == 2 else None
        if type(qualname) is str and qualname in _TORCHBIND_STATE_CLASSES:
            return
        subject = qualname if type(qualname) is str else "torch.ScriptObject"
        self.coll.hit(
            RULE_NOT_ALLOWED,
            Severity.HIGH,
            subject,
            f"torch.ScriptObject rebuilt as {_short(qualname)}: not one of torch's packed-parameter classes; "
            "loading runs that class's __setstate__",
            off,
            self._ev({"state": _short(state)}),
        )

    def _check_state_keys(self, state: Any, off: int, how: str, obj: Any = None) -> None:
        """Report state that sets special attributes (``__setstate__``, ``__class__`` ...) on an instance.

        The next BUILD, or any use of the object, calls what the pickle planted there. State that sets the
        attributes of a distributed checkpoint's storage entry on ``obj`` (or on a new object) is recorded.
        """
        parts, unseen = self._state_mappings(state)
        dcp = False
        for part in parts:
            if part.hidden:
                unseen = "more than 10,000 items, some of which may set special attributes"
            # the same state dict may be BUILT again and again (memo GET + BUILD, 3 bytes each): judge each
            # key once, or a small file costs time quadratic in its size
            new = part.items[part.checked :]
            part.checked = len(part.items)
            dcp |= part.dcp
            for key, value in new:
                if type(key) is str and key in _DCP_KEYS:
                    part.dcp = dcp = True
                if type(key) is not str:
                    if _may_be_str(key) and (_maybe_callable(value) or type(value) is _Dict):
                        desc = _describe(key)
                        self.coll.hit(
                            RULE_DUNDER_STATE,
                            Severity.HIGH,
                            f"state key {desc}",
                            f"{how} sets an attribute whose name is computed at load time ({desc}) to "
                            f"{_short(value)}: it may be a special attribute or a method the loader calls",
                            off,
                            self._ev({"value": _short(value)}),
                        )
                    continue
                if type(key) is str and key in _SHADOWED_METHODS and _maybe_callable(value):
                    self.coll.hit(
                        RULE_DUNDER_STATE,
                        Severity.CRITICAL,
                        key,
                        f"{how} puts a callable in front of the method {key} that the class's own load hooks call: "
                        f"{_short(value)}",
                        off,
                        self._ev({"value": _short(value)}),
                    )
                if type(key) is str and key in _DUNDER_STATE_KEYS:
                    self.coll.hit(
                        RULE_DUNDER_STATE,
                        Severity.CRITICAL,
                        key,
                        f"{how} sets the special attribute {key} on an object to {_short(value)}",
                        off,
                        self._ev({"value": _short(value)}),
                    )
        if dcp:
            self._storage_info(obj if obj is not None else state, parts)
        # counted again without building its evidence (a description of the state): a memoized state of unknown
        # keys BUILT 1,000,000 times (3 MB of file) described it each time, for half a minute
        if unseen is not None and not self.coll.again(RULE_DUNDER_STATE, "state keys unknown", Severity.HIGH):
            self.coll.hit(
                RULE_DUNDER_STATE,
                Severity.HIGH,
                "state keys unknown",
                f"{how} sets attributes from a mapping whose keys cannot all be known ({unseen}): they may be "
                "special attributes or methods the loader calls",
                off,
                self._ev({"state": _short(state)}),
            )

    def _storage_info(self, obj: Any, parts: list[_Dict]) -> None:
        """Record the storage-entry attributes ``parts`` set on ``obj``: torch.distributed.checkpoint's reader
        takes ``relative_path``, ``offset``, ``length`` and ``transform_descriptors`` from whatever object the
        metadata's ``storage_data`` holds, so every object given one of them is followed, and a later state of the
        same object overrides an earlier one as the unpickler's would. A key set to different values by the parts
        of one state is unknown."""
        entries = self.coll.storage_infos
        entry = entries.get(id(obj))
        if entry is None:
            if not any(type(k) is str and k == "relative_path" for part in parts for k, _ in part.items):
                return  # an object with an offset or a length, and no path (yet: then offset is unknown)
            if len(entries) >= _MAX_STORAGE_INFOS:
                self.coll.unverified.append(
                    f"limit max_members: more than {_MAX_STORAGE_INFOS} distributed-checkpoint storage entries"
                )
                return
            entry = entries[id(obj)] = (obj, {})
        seen: dict[str, Any] = {}
        for part in parts:
            for key, value in part.items:
                if type(key) is str and key in _DCP_KEYS:
                    if key in seen and not _same_constant(seen[key], value):
                        value = _UNKNOWN  # which part wins depends on the state's form: not judged here
                    seen[key] = value
        entry[1].update(seen)

    def _state_mappings(self, state: Any) -> tuple[list[_Dict], str | None]:
        """The mappings whose items ``state`` may set as instance attributes, and why some cannot be known.

        The unpickler's BUILD puts the items of a dict state (or of the ``(state, slotstate)`` pair) into the
        instance's ``__dict__`` whatever their keys, a dict subclass (an ``OrderedDict`` filled by SETITEMS) as
        well; ``__setstate__`` methods that do ``self.__dict__.update(state)`` (torch modules, scikit-learn
        estimators) also take a list or tuple of pairs or any mapping. So: dict literals, the items SETITEM(S)
        stored in an object, the arguments of the dict constructors (``dict(pairs)``, ``OrderedDict(mapping)``)
        and the pairs of a list or tuple."""
        out: list[_Dict] = []
        todo: list[tuple[Any, int]] = [(state, 0)]
        if type(state) is tuple and len(state) == 2:
            todo += [(state[0], 0), (state[1], 0)]
        unseen = None
        while todo:
            value, depth = todo.pop()
            if type(value) is _Dict:
                out.append(value)
            elif type(value) is tuple or type(value) is list:
                pairs = self._pairs(value)
                if pairs is not None:
                    out.append(pairs)
                    if (
                        type(value) is list
                        and len(value) >= _MAX_CONTAINER
                        and len(pairs.items) == len(value)
                    ):
                        unseen = "a list of pairs longer than the analysis keeps"
            elif type(value) is _Call:
                if value.items is not None:
                    out.append(value.items)
                if type(value.func) is _Ref and value.func.canon in _DICT_CONSTRUCTORS:
                    for arg in value.args[:8]:
                        if arg is None or type(arg) is _Ref or type(arg) in (str, bytes, int, float, bool):
                            continue  # a defaultdict's factory; constants fail or give no special names
                        if depth >= 4 or not (type(arg) in (_Dict, tuple, list) or type(arg) is _Call):
                            unseen = f"{value.func.name} of a value computed at load time"
                        else:
                            todo.append((arg, depth + 1))
        return out, unseen

    def _pairs(self, seq: tuple[Any, ...] | list[Any]) -> _Dict | None:
        """The (key, value) pairs of a list or tuple as ``dict.update`` takes them (None when there are none);
        derived once per object (a list can only grow, by APPEND(S))."""
        entry = self._pair_cache.get(id(seq))
        if entry is None or entry[0] is not seq:
            if len(self._pair_cache) >= 4096:
                self._pair_cache.clear()
            entry = (seq, _Dict())
            self._pair_cache[id(seq)] = entry
        pairs = entry[1]
        for item in seq[pairs.size :]:
            if _never_pair(item):
                # dict.update (and ``for k, v in state``) raises at the first element that is not a pair, so
                # none after it is ever set: numpy's array state ``(1, shape, dtype, False, [a, b])`` is no
                # attribute ``a`` set to ``b`` (a pandas Series of two Timestamps was LW-MODEL-016 high)
                pairs.size = _PAIRS_ENDED
                break
            pairs.size += 1
            if (type(item) is tuple or type(item) is list) and len(item) == 2:
                pairs.owned().append((item[0], item[1]))
        # size counts the elements seen; items keeps the pairs among them
        return pairs if pairs.items else None

    def _op_ext1(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        return self._ext(stack, 1, off)

    def _op_ext2(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        return self._ext(stack, 2, off)

    def _op_ext4(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        return self._ext(stack, 4, off)

    def _ext(self, stack: list[Any], size: int, off: int) -> list[Any]:
        code = int.from_bytes(self.r.read(size), "little", signed=size == 4)
        if self.ext_stops:
            # the registry is empty unless a program fills it: another format's bytes stop the loader here
            raise _MalformedError(f"EXT code {code} in bytes read as opcodes", off)
        self.coll.hit(
            RULE_EXT,
            Severity.HIGH,
            f"ext:{code}",
            f"EXT opcode: callable #{code} of the copyreg extension registry cannot be known statically",
            off,
            self._ev({"code": code}),
        )
        stack.append(_Ref("?", f"ext{code}"))
        self.coll.callables.add(f"copyreg.extension.{code}")
        return stack

    def _op_persid(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if not self.r.readline().isascii():
            raise _MalformedError("persistent IDs in protocol 0 must be ASCII strings", off)
        stack.append(_UNKNOWN)
        return stack

    def _persistent(self, pid: Any) -> Any:
        """What the loader's ``persistent_load`` returns for ``pid``, as far as it is known statically.

        torch's legacy (pre-1.6) loader returns the class of a whole saved ``nn.Module`` for
        ``('module', cls, source_file, source)``: the class named by a GLOBAL, judged there; the source text is
        only compared with the installed class's (a warning when they differ), never run. A storage id
        ``('storage', type, key, location, numel[, view])`` gives an opaque storage whose declared size is kept
        (tensor rebuilds over it are checked against it; the archive checks it against its record). Everything
        else (any other loader's ids) is opaque."""
        if type(pid) is not tuple:
            return _UNKNOWN
        if len(pid) == 4 and pid[0] == "module" and type(pid[1]) is _Ref:
            return pid[1]
        if len(pid) in (5, 6) and pid[0] == "storage" and type(pid[2]) is str and type(pid[4]) is int:
            kind = pid[1]
            name = kind.qual if type(kind) is _Ref else ""
            dtype = name.removesuffix("Storage") if name.endswith("Storage") else None
            itemsize = _STORAGE_ITEMSIZE.get(dtype) if dtype else None
            packed = _STORAGE_PACKED.get(dtype, 1) if dtype else 1
            first = self.coll.storages.get(pid[2])
            if first is None:
                if len(self.coll.storages) < _MAX_CONTAINER:
                    self.coll.storages[pid[2]] = (pid[4], itemsize)
            elif first != (pid[4], itemsize) and len(self.coll.redeclared) < _MAX_CONTAINER:
                self.coll.redeclared.append((pid[2], pid[4], itemsize))
            view = pid[5] if len(pid) == 6 else None
            if view is None:
                return _Storage(pid[2], pid[4], packed=packed)
            # torch's legacy loader slices the root storage: [offset, offset + view_numel) of its elements
            if type(view) is tuple and len(view) == 3 and type(view[1]) is int and type(view[2]) is int:
                return _Storage(pid[2], max(0, min(view[2], pid[4] - view[1])), base=view[1], packed=packed)
            return _Storage(pid[2], pid[4], base=None, packed=packed)
        return _UNKNOWN

    def _tensor_geometry(self, name: str, args: tuple[Any, ...], off: int) -> None:
        """A tensor rebuilt over a storage must stay inside it: ``torch.load`` (weights_only too) lets a tensor
        whose offset, sizes and strides reach past its storage read and write memory it does not own
        (CVE-2026-24747). Checked when the arguments are constants, as ``torch.save`` writes them."""
        if len(args) < 4 or type(args[0]) is not _Storage:
            return
        storage, offset, size, stride = args[0], args[1], _shape(args[2]), _shape(args[3])
        if type(offset) is not int or size is None or stride is None:
            return
        problem = None
        if len(size) != len(stride):
            problem = f"{len(size)} sizes but {len(stride)} strides"
        else:
            extent = offset + 1
            negative = offset < 0
            for n, st in zip(size, stride, strict=True):
                if type(n) is not int or type(st) is not int:
                    return  # computed geometry: nothing constant to compare
                negative = negative or n < 0 or st < 0
                if n == 0:
                    extent = 0  # an empty tensor touches no element
                elif extent:
                    extent += (n - 1) * st
            if negative:
                problem = "a negative offset, size or stride"
            elif extent > storage.numel * storage.packed:
                problem = f"elements up to {extent} of a storage of {storage.numel * storage.packed}"
        if problem is not None:
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                f"{name}:{storage.key}",
                f"{name.rsplit('.', 1)[-1]} over storage {storage.key!r} reaches outside it: {problem}",
                off,
                self._ev(
                    {"offset": offset, "size": _short(size), "stride": _short(stride), "numel": storage.numel}
                ),
            )

    def _njt_from_type(self, args: tuple[Any, ...], inner: tuple[Any, ...], off: int) -> None:
        """``_rebuild_from_type_v2(func, new_type, args, state)`` where ``func`` or ``new_type`` is the jagged
        nested tensor's: torch.save pairs ``_rebuild_njt`` with ``NestedTensor`` and a state that sets again only
        the parts the constructor was handed. Another pairing makes a NestedTensor of a plain tensor
        (``as_subclass``: no constructor, its parts then come from the state alone) or views the nested tensor as
        another class; a state that sets ``_size``/``_strides`` or other parts overrides the geometry the
        constructor computed. Reported as inconsistent (LW-MODEL-017)."""
        func, new_type = args[0], args[1]
        njt_func = type(func) is _Ref and func.canon == _REBUILD_NJT
        njt_type = type(new_type) is _Ref and new_type.canon == _NJT_CLASS
        if not njt_func and not njt_type:
            return
        if njt_func != njt_type:
            self._njt_hit(
                "rebuild",
                f"_rebuild_from_type_v2 pairs {_describe(func)[:100]} with {_describe(new_type)[:100]}: torch.save "
                "rebuilds a jagged nested tensor with _rebuild_njt as a NestedTensor",
                off,
            )
            return
        if len(args) < 4:
            return  # torch fails: the rebuild takes a state
        given = inner[0] if len(inner) == 1 and type(inner[0]) is _Dict else None
        kwargs = {k: v for k, v in given.items if type(k) is str} if given is not None else {}
        parts, _ = self._state_mappings(args[3])
        for part in parts:
            for key, value in part.items:
                if type(key) is not str:
                    continue
                if key in _NJT_DERIVED:
                    self._njt_hit(
                        "state", f"the state sets {key}, the geometry torch computes from the parts", off
                    )
                    return
                want = _NJT_STATE_GEOMETRY.get(key)
                if want is None:
                    continue
                if want not in kwargs:
                    same = value is None and want in ("lengths", "_metadata_cache")
                else:
                    same = value is kwargs[want] or (type(value) is int and value == kwargs[want])
                if not same:
                    self._njt_hit(
                        "state", f"the state sets {key} to another value than the constructor was given", off
                    )
                    return

    def _njt_rebuild(self, args: tuple[Any, ...], off: int) -> None:
        """``_rebuild_njt(kwargs)`` runs ``NestedTensor(**kwargs)``, which checks neither that the offsets (or
        lengths) stay inside the values nor the ragged dimension against the values' dimensions: torch.save writes
        a constant dict of the rebuilt parts (tensors), an int and a bool. The parts' sizes are read from their
        rebuilds and the offsets' and lengths' values are checked against the values' ragged dimension with the
        storage records (as compressed sparse indices: in ``[0, n]``, the offsets never going down). Anything else
        is inconsistent (LW-MODEL-017); parts that cannot be read back are unverified."""
        kw = args[0] if len(args) == 1 else None
        if type(kw) is not _Dict or kw.hidden or kw.size != len(kw.items):
            self._njt_hit("arguments", "its argument is not a constant dict of keywords", off)
            return
        kwargs: dict[str, Any] = {}
        for key, value in kw.items:
            if type(key) is not str or key not in _NJT_KEYWORDS:
                self._njt_hit("arguments", f"an unexpected keyword {_short(key)}", off)
                return
            kwargs[key] = value
        values, offsets = kwargs.get("values"), kwargs.get("offsets")
        lengths, ragged = kwargs.get("lengths"), kwargs.get("_ragged_idx", 1)
        cache, grad = kwargs.get("_metadata_cache"), kwargs.get("requires_grad", False)
        if type(grad) is not bool or type(ragged) is not int:
            self._njt_hit("arguments", "requires_grad or _ragged_idx is not a constant of its type", off)
            return
        if cache is not None and (
            type(cache) is not _Dict
            or cache.hidden
            or not all(type(k) is str and k in _NJT_CACHE_KEYS and _tensor_made(v) for k, v in cache.items)
        ):
            self._njt_hit(
                "metadata", "its _metadata_cache holds more than max_seqlen/min_seqlen tensors", off
            )
            return
        if (
            not _tensor_made(values)
            or not _tensor_made(offsets)
            or not (lengths is None or _tensor_made(lengths))
        ):
            self._njt_hit("arguments", "its values, offsets or lengths are not rebuilt tensors", off)
            return
        vsize, osize = self._values_sizes(values), self._values_sizes(offsets)
        lsize = self._values_sizes(lengths) if lengths is not None else ()
        if isinstance(vsize, str) or isinstance(osize, str) or isinstance(lsize, str):
            # a part that is no constant rebuild with constant sizes (a wrapper subclass, computed sizes)
            why = "a jagged nested tensor whose parts' sizes cannot be read back: its offsets are not checked"
            if why not in self.coll.unverified:
                self.coll.unverified.append(why)
            return
        if len(osize) != 1 or (lengths is not None and (len(lsize) != 1 or lsize[0] != osize[0] - 1)):
            self._njt_hit(
                "geometry", f"offsets of sizes {_short(osize)} and lengths of sizes {_short(lsize)}", off
            )
            return
        if not 1 <= ragged <= len(vsize):
            self._njt_hit("geometry", f"_ragged_idx {ragged} for values of {len(vsize)} dimensions", off)
            return
        bound = vsize[ragged - 1] + 1  # offsets and lengths lie in [0, n] of the values' ragged dimension
        for key, value in cache.items if cache is not None else ():
            # a sequence length kept in the shape of an empty (length, 0) tensor: to_padded_tensor and the
            # reductions allocate (batch, max_seqlen, ...) from it, and no sequence is longer than the values
            seqlen = self._values_sizes(value)
            if isinstance(seqlen, str):
                why = "a jagged nested tensor whose cached sequence lengths cannot be read back"
                if why not in self.coll.unverified:
                    self.coll.unverified.append(why)
            elif not seqlen or seqlen[0] >= bound:
                self._njt_hit(
                    "metadata", f"{key} {_short(seqlen)} is longer than the values' ragged dimension", off
                )
                return
        self._sparse_tensor_entry(offsets, lambda rows: (bound,), 0, compressed=True, jagged=True)
        if lengths is not None:
            self._sparse_tensor_entry(lengths, lambda rows: (bound,), 0, jagged=True)

    def _njt_hit(self, what: str, problem: str, off: int) -> None:
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            f"{_REBUILD_NJT}:{what}",
            f"a jagged nested tensor not as torch.save writes it: {problem}; NestedTensor takes its parts unchecked",
            off,
            self._ev({"problem": problem[:200]}),
        )

    def _copyreg_allocation(self, name: str, args: tuple[Any, ...], off: int, how: str) -> None:
        """The ``__new__`` a copyreg helper runs, when it is an allocating torch class's: ``__newobj__(cls, *args)``,
        ``__newobj_ex__(cls, args, kwargs)``, ``_reconstructor(cls, base, state)`` (``base.__new__(cls, state)``)."""
        if name == "copyreg._reconstructor":
            cls, new_args, kwargs = (args[1] if len(args) > 1 else None), args[2:3], None
        elif name == "copyreg.__newobj_ex__":
            cls = args[0] if args else None
            new_args = _star_args(args[1]) if len(args) > 1 else ()
            kwargs = args[2] if len(args) > 2 else None
        else:
            cls, new_args, kwargs = (args[0] if args else None), args[1:], None
        if type(cls) is _Ref and cls.canon in _TORCH_ALLOCATORS:
            self._torch_allocation(cls, new_args, kwargs, off, f"{how} via {name}")

    def _torch_allocation(self, cls: _Ref, args: tuple[Any, ...], kwargs: Any, off: int, how: str) -> None:
        """A call or ``__new__`` of an allocating torch class (see ``_TORCH_ALLOCATORS``) with the pickle's
        arguments. Reported: sizes, which make it allocate memory it never fills (the tensor then holds the loading
        process's freed memory: strings, keys, earlier files), and a ``cdata``/``allocator`` keyword, a raw pointer
        torch dereferences. Data (a sequence, bytes), a tensor or a storage are copied or wrapped; arguments torch
        rejects allocate nothing. Anything computed at load time is unverified."""
        name = cls.canon
        if kwargs is not None:
            if type(kwargs) is not _Dict or kwargs.hidden or kwargs.size != len(kwargs.items):
                self._allocation_unverified(f"{name} called with keywords that are not constant")
                return
            for key, value in kwargs.items:
                if type(key) is not str:
                    if _may_be_str(key):
                        self._allocation_unverified(f"{name} called with a keyword that is not constant")
                        return
                    continue  # torch fails: keywords are strings
                if key in _POINTER_KEYWORDS:
                    self.coll.hit(
                        RULE_TENSOR,
                        Severity.CRITICAL,
                        f"{name}:{key}",
                        f"{name}({key}=...) takes the integer the file gives as the address of a C++ object and "
                        "reads it and calls through it (torch 2.13 crashes on any address a file chooses)",
                        off,
                        self._ev({"how": how, key: _short(value)}),
                    )
        sizes: tuple[Any, ...] | list[Any] | None = None
        if args and all(type(a) is int for a in args):
            sizes = args  # torch.Tensor(2, 3), torch.UntypedStorage(4096)
        elif (
            len(args) == 1
            and type(args[0]) is _Call
            and type(args[0].func) is _Ref
            and args[0].func.canon == "torch.Size"
        ):
            sizes = _shape(args[0])  # torch.Tensor(torch.Size([2, 3]))
            if sizes is None or not all(type(n) is int for n in sizes):
                self._allocation_unverified(f"{name} called with a size that is not constant")
                return
        if sizes is not None:
            if 0 in sizes or any(n < 0 for n in sizes):
                return  # nothing allocated, or torch fails
            shown = ", ".join(str(n) if n < 1 << 64 else "..." for n in sizes[:8])
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                f"{name}:uninitialized",
                f"{name}({shown}{', ...' if len(sizes) > 8 else ''}) allocates memory it never fills: the loaded "
                "tensor or storage holds whatever the loading process's memory held (freed strings, keys, earlier "
                "files); torch.load calls it with weights_only=True too, and torch.save never writes it",
                off,
                self._ev({"how": how, "sizes": _short(list(sizes))}),
            )
            return
        for a in args:
            if a is None or type(a) in _INERT_ALLOCATION_ARGS:
                continue  # data torch copies, or an argument it rejects
            if type(a) is _Call and type(a.func) is _Ref and a.func.canon in _HOLDS_DATA:
                continue  # a tensor or a storage: wrapped or copied (its own call is judged where it is made)
            self._allocation_unverified(f"{name} called with {_describe(a)[:100]}")
            return

    def _allocation_unverified(self, what: str) -> None:
        why = f"{what}: it may allocate memory it never fills"
        if why not in self.coll.unverified:
            self.coll.unverified.append(why)

    def _sparse_indices(self, args: tuple[Any, ...], off: int) -> None:
        """Record the index tensors of ``_rebuild_sparse_tensor(layout, data)`` for the archive to check against
        the storage's numbers: torch builds the tensor with ``check_invariants=False`` and validates it after the
        load only when sparse invariant checks are switched on (they are off by default), so an index past the
        tensor's size makes ``coalesce``, ``to_dense`` and the sparse kernels write outside their buffers.
        COO: row ``d`` of ``indices`` (sparse_dim x nnz) must lie in ``[0, size[d])`` (torch checks the shapes of
        a COO tensor's parts itself). CSR/CSC/BSR/BSC: the parts' shapes must agree as torch's own validation has
        it (``_compressed_geometry``), the plain indices lie in ``[0, number of plain rows/columns (of blocks))``
        and the compressed ones in ``[0, nnz]`` and never go down.

        torch takes ``data`` as any sequence and each index tensor as any tensor (a Parameter, a
        ``_rebuild_tensor_v3``, a subclass rebuilt by ``_rebuild_from_type_v2`` ...): whatever is not read back to
        a storage, an offset and constant sizes and strides leaves the indices unchecked, and is unverified.

        TorchScript archives (torch.jit.save) spell the call differently: ``(layout, size, requires_grad,
        indices, values, hooks)`` for COO (layout 1) and ``(2, size, requires_grad, crow_indices, col_indices,
        values, hooks)`` for CSR, which torch.jit.load's unpickler rebuilds unchecked too."""
        if len(args) > 2 and type(args[0]) is int:
            if args[0] == 1 and len(args) >= 5:
                self._sparse_layout("sparse_coo", (args[3], args[4], args[1]), off)
            elif args[0] == 2 and len(args) >= 6:
                self._sparse_layout("sparse_csr", (args[3], args[4], args[5], args[1]), off)
            return  # torch.jit.load fails on any other layout
        if len(args) != 2:
            return  # torch fails: the rebuild takes (layout, data)
        layout, data = args
        if (
            type(layout) is _Call
            and type(layout.func) is _Ref
            and layout.args
            and type(layout.args[0]) is str
        ):
            kind = layout.args[0]  # torch.serialization._get_layout("torch.sparse_coo")
        elif type(layout) is _Ref:
            kind = layout.canon  # torch.sparse_coo pickled as a global
        else:
            self._sparse_unchecked("a sparse tensor whose layout is not constant")
            return
        self._sparse_layout(kind.removeprefix("torch."), data, off)

    def _sparse_layout(self, kind: str, data: Any, off: int) -> None:
        """Record the index tensors of a sparse tensor of layout ``kind`` made from ``data``, Python's
        ``(indices, values, size[, coalesced])`` or ``(compressed, plain, values, size)``."""
        if kind not in ("sparse_coo", "sparse_csr", "sparse_bsr", "sparse_csc", "sparse_bsc"):
            return  # torch fails on any other layout
        if type(data) is not tuple and type(data) is not list:
            self._sparse_unchecked("a sparse tensor whose parts are not a constant sequence")
            return
        if kind == "sparse_coo" and len(data) >= 3:
            size = _shape(data[2])
            if size is None or not all(type(n) is int for n in size):
                self._sparse_unchecked("a sparse tensor whose size is not constant")
                return
            self._sparse_tensor_entry(
                data[0], lambda rows: tuple(size[:rows]) if rows <= len(size) else None, 0
            )
        elif kind != "sparse_coo" and len(data) == 4:
            size = _shape(data[3])
            if size is None or not all(type(n) is int for n in size):
                self._sparse_unchecked("a sparse tensor whose size is not constant")
                return
            self._compressed_parts(kind, tuple(size), data, off)

    def _compressed_parts(self, kind: str, size: tuple[int, ...], data: Any, off: int) -> None:
        """Check that the shapes of a compressed sparse tensor's parts agree and record its index tensors. torch
        builds it with ``check_invariants=False``, which checks none of the shapes either: crow_indices shorter than
        the rows + 1 make matmul read past them, fewer values than col_indices make to_dense() read and write past
        the values, a BSR block column past the blocks of a row writes past the dense tensor (torch 2.13)."""
        found = [self._index_tensor(data[0]), self._index_tensor(data[1])]
        for f in found:
            if isinstance(f, str):
                self._sparse_unchecked(f)
                return
        if found[0] is None or found[1] is None:
            return  # a meta tensor holds no data; a non-integer dtype: torch fails
        csz, psz = _shape(found[0][2]), _shape(found[1][2])
        if csz is None or psz is None or not all(type(n) is int for n in (*csz, *psz)):
            self._sparse_unchecked("a sparse index tensor whose sizes or strides are not constant")
            return
        read = self._values_sizes(data[2])
        vsz = None if isinstance(read, str) else read
        if isinstance(read, str):
            self._sparse_unchecked(read)
        problems, plain, nnz = _compressed_geometry(kind, size, tuple(csz), tuple(psz), vsz)
        if problems:
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                f"torch._utils._rebuild_sparse_tensor:{kind}",
                f"{kind} tensor whose parts disagree in shape: {'; '.join(problems)}: torch.load does not check "
                "sparse tensors by default, and to_dense()/matmul then read or write outside their buffers",
                off,
                self._ev(
                    {
                        "size": _short(list(size)),
                        "compressed": _short(list(csz)),
                        "plain": _short(list(psz)),
                        "values": _short(list(vsz)) if vsz is not None else None,
                    }
                ),
            )
        if plain is None or nnz is None:
            if len(size) < 2:
                return
            plain = size[-1] if kind in ("sparse_csr", "sparse_bsr") else size[-2]
            nnz = psz[-1] if psz else 0
        plain_bound, nnz_bound = plain, nnz + 1
        if self._sparse_tensor_entry(data[1], lambda rows: (plain_bound,), 0, batched=True) is not None:
            self._sparse_tensor_entry(data[0], lambda rows: (nnz_bound,), 0, compressed=True, batched=True)

    def _values_sizes(self, tensor: Any) -> tuple[int, ...] | str:
        """The sizes of a sparse tensor's values, read from its rebuild's arguments (never from storage bytes), or
        why they cannot be read back."""
        for _ in range(8):
            if type(tensor) is not _Call or type(tensor.func) is not _Ref:
                return "a sparse tensor whose values are not a constant rebuild"
            canon, args = tensor.func.canon, tensor.args
            if canon in _PARAMETER_REBUILDS and args:
                tensor = args[0]
                continue
            if canon in _REBUILD_FROM_TYPE and len(args) >= 3 and type(args[2]) in (tuple, list):
                tensor = _Call(args[0], tuple(args[2]))
                continue
            if canon == "torch._utils._rebuild_meta_tensor_no_storage":
                size = _shape(args[1]) if len(args) > 1 else None
            elif canon in _TENSOR_REBUILDS or canon == "torch._utils._rebuild_tensor_v3":
                size = _shape(args[2]) if len(args) > 2 else None
            else:
                return f"a sparse tensor whose values are made by {tensor.func.name[:100]}"
            if size is None or not all(type(n) is int for n in size):
                return "a sparse tensor whose values' sizes are not constant"
            return tuple(size)
        return "a sparse tensor whose values are nested in too many rebuilds"

    def _sparse_unchecked(self, what: str) -> None:
        why = f"{what}: its indices are not checked"
        if why not in self.coll.unverified:
            self.coll.unverified.append(why)

    def _index_tensor(self, tensor: Any) -> tuple[_Storage, int, Any, Any, int | None] | str | None:
        """A sparse index tensor read back to (storage, offset, sizes, strides, bytes per element when the rebuild
        gives a dtype); None when it holds no data torch could index with (a meta tensor, a non-integer dtype:
        torch fails); else why it cannot be read back."""
        for _ in range(8):
            if type(tensor) is not _Call or type(tensor.func) is not _Ref:
                return "a sparse index tensor that is not a constant rebuild of a storage"
            canon, args = tensor.func.canon, tensor.args
            if canon in _PARAMETER_REBUILDS and args:
                tensor = args[0]  # Parameter(data): the same memory
            elif canon in _REBUILD_FROM_TYPE and len(args) >= 3 and type(args[2]) in (tuple, list):
                tensor = _Call(args[0], tuple(args[2]))  # func(*args), then a view as the subclass
            elif canon == "torch._utils._rebuild_meta_tensor_no_storage":
                return None
            elif canon in _TENSOR_REBUILDS or canon == "torch._utils._rebuild_tensor_v3":
                if len(args) < 4 or type(args[0]) is not _Storage or type(args[1]) is not int:
                    return "a sparse index tensor over a storage or offset that is not constant"
                itemsize = None
                if canon == "torch._utils._rebuild_tensor_v3":
                    # (storage, offset, size, stride, requires_grad, hooks, dtype): the dtype, not the storage's
                    # type, says how the bytes are read
                    dtype = args[6] if len(args) > 6 else None
                    if type(dtype) is not _Ref:
                        return "a sparse index tensor whose dtype is not constant"
                    itemsize = _INDEX_ITEMSIZE.get(dtype.canon)
                    if itemsize is None:
                        return None
                return args[0], args[1], _shape(args[2]), _shape(args[3]), itemsize
            else:
                return f"a sparse index tensor made by {tensor.func.name[:100]}"
        return "a sparse index tensor nested in too many rebuilds"

    def _sparse_tensor_entry(
        self,
        tensor: Any,
        bounds: Any,
        low: int,
        *,
        compressed: bool = False,
        batched: bool = False,
        jagged: bool = False,
    ) -> tuple[int, int, tuple[int, ...], tuple[int, ...]] | None:
        """Record one index tensor's checks; returns (storage base, offset, sizes, strides) when it is recorded.
        ``compressed``: the tensor holds compressed indices (CSR's crow_indices), each row non-decreasing.
        ``batched``: the indices of a compressed layout, whose leading dimensions are batch dimensions (any number
        of them): they are read as one dimension of rows when their strides allow, else unverified. ``jagged``: the
        offsets or lengths of a jagged nested tensor (checked the same way, reported in its words)."""
        if jagged:
            # the same reasons, said of what the tensor is: a jagged tensor's offsets or lengths, not a sparse
            # tensor's indices
            def unchecked(what: str) -> None:
                what = what.replace("sparse index tensors", "jagged tensors' offsets or lengths").replace(
                    "sparse index tensor", "jagged nested tensor's offsets or lengths tensor"
                )
                why = f"{what}: they are not checked against the values' ragged dimension"
                if why not in self.coll.unverified:
                    self.coll.unverified.append(why)

        else:
            unchecked = self._sparse_unchecked
        found = self._index_tensor(tensor)
        if found is None:
            return None
        if isinstance(found, str):
            unchecked(found)
            return None
        storage, offset, size, stride, itemsize = found
        if size is None or stride is None or len(size) != len(stride) or not size:
            return None  # torch fails: indices have a stride for each size
        if len(size) > 2 and not batched:
            return None  # torch fails: COO indices are two dimensional
        if not all(type(n) is int for n in (*size, *stride)):
            unchecked("a sparse index tensor whose sizes or strides are not constant")
            return None
        if len(size) > 2:
            merged = _merge_batch(tuple(size), tuple(stride))
            if merged is None:
                unchecked("a batched sparse index tensor whose batch dimensions cannot be read in order")
                return None
            size, stride = merged
        rows = bounds(size[0] if len(size) == 2 else 1)
        if rows is None:
            return None
        if len(self.coll.sparse) >= _MAX_CONTAINER:
            unchecked(f"more than {_MAX_CONTAINER} sparse index tensors")
            return None
        key, base = storage.key, storage.base
        if base is None:
            unchecked("a sparse index tensor over a storage view that is not constant")
            return None
        declared = self.coll.storages.get(key, (0, None))[1]
        if itemsize is None:
            itemsize = declared
        elif declared != itemsize and base:
            # a view's start counts the storage's elements, the offset the dtype's
            if declared is None or (base * declared) % itemsize:
                unchecked("a sparse index tensor whose dtype does not divide its storage view")
                return None
            base = base * declared // itemsize
        sizes: tuple[int, ...] = tuple(size)
        strides: tuple[int, ...] = tuple(stride)
        self.coll.sparse.append(
            (key, base + offset, sizes, strides, tuple(rows), low, itemsize, compressed, jagged)
        )
        return base, offset, sizes, strides

    def _item_on(self, target: Any, op: str, off: int) -> None:
        """SETITEM(S), APPEND(S) and ADDITEMS on anything but a dict, list or set call the object's own
        ``__setitem__``/``append``/``extend``/``add``. On a tensor that writes memory at pickle-chosen indices
        (CVE-2026-24747); on a class, function or module it changes global interpreter state; ``add`` is written
        by pickle for sets only (the reference list of pattern classes does not review it). None is what
        torch.save or pickle writes."""
        if type(target) is _Ref or type(target) is _Module:
            desc = _describe(target)
            self.coll.hit(
                RULE_GLOBAL_TAMPERING,
                Severity.CRITICAL,
                desc,
                f"{op} on the module-level object {desc} calls its item assignment or append/add methods",
                off,
                self._ev({"how": op}),
            )
            return
        if type(target) is not _Call:
            return
        if op in ("APPEND", "APPENDS", "ADDITEMS") and (target.state is not None or target.items is not None):
            self._forwarded(target, op, off)
        if target.planted:
            # the unpickler looks the method up on the object: APPEND calls obj.append(item), APPENDS
            # obj.extend(items) (else append), ADDITEMS obj.add(item); an instance attribute is found first
            wanted = {"APPEND": ("append",), "APPENDS": ("extend", "append"), "ADDITEMS": ("add",)}.get(
                op, ()
            )
            key = next((k for k, _ in target.planted if k in wanted), None)
            if key is not None:
                desc = _describe(target)
                self.coll.hit(
                    RULE_DUNDER_STATE,
                    Severity.CRITICAL,
                    f"{desc}.{key}",
                    f"{op} calls the {key} that a state planted on {desc}: the callable runs on the pickle's items",
                    off,
                    self._ev({"how": op, "attribute": key}),
                )
        if type(target.func) is not _Ref:
            return
        canon = target.func.canon
        if canon in _TENSOR_RESULTS:
            self.coll.hit(
                RULE_TENSOR,
                Severity.HIGH,
                f"{op}:{canon}",
                f"{op} on the tensor {target.func.name} returns: calls the tensor's own item assignment on "
                "pickle data",
                off,
                self._ev({"how": op}),
            )
        elif canon == "builtins.bytearray" and op != "ADDITEMS":
            self._buffer_store(op, off)  # a bytearray the VM could not make from constants
        elif op in ("SETITEM", "SETITEMS") and self._is_array(target):
            self._array_written(target, op, off)
        elif op == "ADDITEMS" and canon not in ("builtins.set", "builtins.frozenset"):
            desc = _describe(target)
            self.coll.hit(
                RULE_DYNAMIC_CALL,
                Severity.HIGH,
                f"{desc}.add",
                f"ADDITEMS on an object that is not a set calls its add() on pickle data: {desc}",
                off,
                self._ev({"how": op}),
            )

    def _own_item(self, held: _Dict, wanted: tuple[str, ...]) -> tuple[str, Any] | None:
        """The first item SETITEM(S) stored in an object under one of the ``wanted`` names with a value that may
        be callable, among the items added since the last look for those names (each item is looked at once)."""
        mark = (id(held), wanted[0])
        last = self._forward_items.get(mark)
        start = last[1] if last is not None else 0
        self._forward_items[mark] = (held, len(held.items))
        return next(
            ((k, v) for k, v in held.items[start:] if type(k) is str and k in wanted and _maybe_callable(v)),
            None,
        )

    def _forwarded(self, target: _Call, op: str, off: int) -> None:
        """The unpickler finds ``extend``/``append``/``add`` with an attribute lookup, and a class whose
        ``__getattr__`` forwards unknown names into its state answers it from there: a torch ``Module`` from its
        ``_modules``/``_parameters``/``_buffers`` dicts, a wrapper (scikit-learn's ``FrozenEstimator``,
        statsmodels' ``ResultsWrapper``) from the object it wraps, which may forward again. A callable the state
        put under that name in a mapping or object it holds is then called on the pickle's items (confirmed:
        ``nn.Identity`` with ``_modules={"append": <pattern-only class>}`` then APPEND ran that class's
        constructor on a path). Nothing a library saves keeps a callable there. Each state is searched once per
        method name (the objects it holds, three levels down)."""
        wanted = ("extend", "append") if op != "ADDITEMS" else ("add",)
        held = target.items
        if held is not None:
            # a mapping class whose __getattr__ returns its items (scikit-learn's Bunch, Lightning's
            # AttributeDict): what SETITEM(S) stored in the object itself; only the items added since the last look
            item = self._own_item(held, wanted)
            if item is not None:
                desc = _describe(target)
                self.coll.hit(
                    RULE_DUNDER_STATE,
                    Severity.CRITICAL,
                    f"{desc}[{item[0]!r}]",
                    f"{op} looks up {item[0]} on {desc}, whose __getattr__ can answer from its own items: the pickle "
                    f"stored the callable {_short(item[1])} under that key, which runs on the pickle's items",
                    off,
                    self._ev({"how": op, "attribute": item[0], "value": _short(item[1])}),
                )
                return
        if target.state is None:
            return
        todo = [(target.state, 0)]
        while todo:
            state, depth = todo.pop()
            key = (id(state), wanted[0])
            if key in self._forward_seen:
                continue
            self._forward_seen[key] = state
            for part in self._state_mappings(state)[0]:
                for attr, value in part.items:
                    if type(value) is _Call:
                        held = value.items
                        if value.state is not None and depth < 2:
                            todo.append((value.state, depth + 1))
                    else:
                        held = value if type(value) is _Dict else None
                    found = [(k, v) for k, v in held.items if type(k) is str and k in wanted] if held else []
                    if type(value) is _Call and value.planted:
                        found += [(k, v) for k, v in value.planted if k in wanted]
                    hit = next(((k, v) for k, v in found if _maybe_callable(v)), None)
                    if hit is None:
                        continue
                    desc = _describe(target)
                    self.coll.hit(
                        RULE_DUNDER_STATE,
                        Severity.CRITICAL,
                        f"{desc}.{attr}.{hit[0]}",
                        f"{op} looks up {hit[0]} on {desc}, whose __getattr__ can answer from its attribute "
                        f"{attr!r}: the state put the callable {_short(hit[1])} there, which runs on the pickle's "
                        "items",
                        off,
                        self._ev({"how": op, "attribute": f"{attr}.{hit[0]}", "value": _short(hit[1])}),
                    )
                    return

    def _op_binpersid(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if not stack:
            raise _MalformedError("BINPERSID on an empty stack", off)
        stack[-1] = self._persistent(stack[-1])
        return stack

    def _op_int(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        line = self.r.readline()
        if line == b"00":
            stack.append(False)
        elif line == b"01":
            stack.append(True)
        else:
            value = _text_int(line)
            if value is None:
                raise _MalformedError("INT with a non-integer argument", off)
            stack.append(value)
        return stack

    def _op_long(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        line = self.r.readline()
        if line.endswith(b"L"):
            line = line[:-1]
        value = _text_int(line, c_octal=False)
        if value is None:
            raise _MalformedError("LONG with a non-integer argument", off)
        stack.append(value)
        return stack

    def _op_long1(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        k = self.r.read(1)[0]
        stack.append(int.from_bytes(self.r.read(k), "little", signed=True))
        return stack

    def _op_long4(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        k = struct.unpack("<i", self.r.read(4))[0]
        if k < 0:
            raise _MalformedError("LONG4 with a negative length", off)
        if k > _MAX_LONG_BYTES:
            self.r.skip(k)
            stack.append(_UNKNOWN)  # its value is not kept; never a guessed number (it may size joblib data)
        else:
            stack.append(int.from_bytes(self.r.read(k), "little", signed=True))
        return stack

    def _op_string(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        import codecs

        try:
            line = self.r.readline()
        except _LongLineError:
            prefix, length, last = self.r.skip_line()
            if prefix[:1] not in (b"'", b'"') or last != prefix[0]:
                raise _MalformedError("STRING argument must be quoted", off) from None
            stack.append(self._long_line_text(prefix[1:], length - 2, "latin-1"))
            return stack
        if len(line) >= 2 and line[0] == line[-1] and line[:1] in (b"'", b'"'):
            try:
                # escape_decode returns bytes at run time; typeshed's stub has disagreed across releases.
                raw: Any = codecs.escape_decode(line[1:-1])[0]
            except ValueError:
                raise _MalformedError("STRING with an invalid escape", off) from None
            value = raw.decode("latin-1")
            if len(value) >= _STORED_MIN and _stored_head(value):
                self._stored(value, off)
            stack.append(value)
            return stack
        raise _MalformedError("STRING argument must be quoted", off)

    def _op_binstring(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        k = struct.unpack("<i", self.r.read(4))[0]
        if k < 0:
            raise _MalformedError("BINSTRING with a negative length", off)
        stack.append(self._latin(k))
        return stack

    def _op_short_binstring(
        self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int
    ) -> list[Any]:
        stack.append(self._latin(self.r.read(1)[0]))
        return stack

    def _latin(self, k: int) -> Any:
        self.budget.text_bytes += min(k, _KEEP_STR)
        if k <= _KEEP_STR:
            value = self.r.read(k).decode("latin-1")
            if k >= _STORED_MIN and _stored_head(value):
                self._stored(value, self.r.tell() - k)
            return value
        return self._big_text(k, "latin-1")

    def _op_binbytes(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        stack.append(self._payload_bytes(struct.unpack("<I", self.r.read(4))[0]))
        return stack

    def _op_short_binbytes(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        k = self.r.read(1)[0]
        self.budget.text_bytes += k
        value = self.r.read(k)
        if k >= _STORED_MIN and value[:1] in _STORED_BYTES_FIRSTS:
            self._stored(value, self.r.tell() - k)
        stack.append(value)
        return stack

    def _op_binbytes8(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        stack.append(self._payload_bytes(struct.unpack("<Q", self.r.read(8))[0]))
        return stack

    def _op_bytearray8(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        stack.append(self._payload_bytes(struct.unpack("<Q", self.r.read(8))[0]))
        return stack

    def _op_buffer(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        stack.append(_UNKNOWN)  # out-of-band buffer supplied by the loader
        return stack

    def _op_readonly_buffer(
        self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int
    ) -> list[Any]:
        if not stack:
            raise _MalformedError("READONLY_BUFFER on an empty stack", off)
        return stack

    def _op_unicode(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        try:
            line = self.r.readline()
        except _LongLineError:
            prefix, length, _ = self.r.skip_line()
            stack.append(self._long_line_text(prefix, length, "raw-unicode-escape"))
            return stack
        try:
            value = line.decode("raw-unicode-escape")
        except UnicodeDecodeError:
            raise _MalformedError("UNICODE with an invalid escape", off) from None
        if len(value) >= _STORED_MIN and _stored_head(value):
            self._stored(value, off)
        stack.append(value)
        return stack

    def _op_binunicode(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        stack.append(self._payload_text(struct.unpack("<I", self.r.read(4))[0]))
        return stack

    def _op_binunicode8(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        stack.append(self._payload_text(struct.unpack("<Q", self.r.read(8))[0]))
        return stack

    def _op_float(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        line = self.r.readline()
        try:
            stack.append(float(line))
        except ValueError:
            raise _MalformedError("FLOAT with a non-numeric argument", off) from None
        return stack

    def _op_append(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if len(stack) < 2:
            raise _MalformedError("APPEND needs a list and a value", off)
        value = stack.pop()
        target = stack[-1]
        if type(target) is list:
            if len(target) < _MAX_CONTAINER:
                target.append(value)
            else:
                self._drop(target, 1)
            if self.feature_lists:
                self._feature_list_store(target, off)
            if self.state_lists:
                self._state_list_store(target, "APPEND", off)
        elif type(target) is _Call or type(target) is _Ref or type(target) is _Module:
            self._item_on(target, "APPEND", off)
        elif type(target) in _BYTE_VALUES:
            self._buffer_store("APPEND", off)
        return stack

    def _drop(self, target: list[Any], count: int) -> None:
        """Count items of a full list that are not kept (see ``dropped``)."""
        held = self.dropped.get(id(target))
        self.dropped[id(target)] = (target, (held[1] if held is not None else 0) + count)

    def _length(self, value: list[Any]) -> int:
        held = self.dropped.get(id(value))
        return len(value) + (held[1] if held is not None and held[0] is value else 0)

    def _op_list(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        outer, items = self._pop_mark(stack, meta, off, "LIST")
        kept = items[:_MAX_CONTAINER]
        self.budget.held_items += len(kept)
        if len(items) > _MAX_CONTAINER:
            self._drop(kept, len(items) - _MAX_CONTAINER)
        outer.append(kept)
        return outer

    def _op_tuple(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        outer, items = self._pop_mark(stack, meta, off, "TUPLE")
        outer.append(tuple(items))
        self.budget.held_items += len(items)
        return outer

    def _op_dict(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        outer, items = self._pop_mark(stack, meta, off, "DICT")
        if len(items) % 2:
            raise _MalformedError("DICT with an odd number of items", off)
        d = _Dict()
        for i in range(0, len(items), 2):
            d.add(items[i], items[i + 1])
        outer.append(d)
        return outer

    def _op_setitem(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if len(stack) < 3:
            raise _MalformedError("SETITEM needs a dict, a key and a value", off)
        value = stack.pop()
        key = stack.pop()
        target = stack[-1]
        if type(target) is _Dict:
            target.add(key, value)
            if self.kept:
                self._kept_store(target, off)
        elif type(target) is _Call or type(target) is _Ref or type(target) is _Module:
            if type(target) is _Call:
                if target.items is None:
                    target.items = _Dict()
                target.items.add(key, value)
                if self.kept:
                    self._kept_store(target.items, off)
            self._item_on(target, "SETITEM", off)
        elif type(target) is list:
            self._list_store(target, [key, value], off)
        elif type(target) in _BYTE_VALUES:
            self._buffer_store("SETITEM", off)
        elif isinstance(target, _Unknown) and self._is_array(target):
            self._array_written(target, "SETITEM", off)
        return stack

    def _is_array(self, value: Any) -> bool:
        """Whether ``value`` is a numpy array this stream built (a rebuild, a view made by ``numpy.ndarray(shape,
        dtype, buffer)``, protocol 5's ``_frombuffer``, an array joblib reads)."""
        if type(value) is _Call:
            if _rebuild_kind(value) == "ndarray":
                return True
            if type(value.func) is _Ref and value.func.canon == "numpy.core.numeric._frombuffer":
                return True
        held = self.arrays.get(id(value))
        return held is not None and held[0] is value

    def _numpy_writes(self, func: _Ref, args: tuple[Any, ...], off: int, how: str) -> None:
        """A numpy function writes its result into an ``out`` argument: a ufunc's positional one after its inputs,
        a reduction's fourth, any ``out=`` keyword. An array built in this stream, handed at any place but the
        first (or inside a tuple there), may be written after its checks (see :meth:`_array_written`)."""
        for value in args[1:16]:
            for item in value[:16] if type(value) is tuple else (value,):
                if self._is_array(item):
                    self._array_written(item, f"{func.name} ({how})", off)
                    return

    def _array_written(self, array: Any, how: str, off: int) -> None:
        """Something writes into a numpy array after it was built: the checks of its contents (a tree's node
        array, a sparse matrix's indices, an object array's elements) judged what it held then, and the objects
        holding it keep the array itself (a scikit-learn tree copies its nodes only at its own BUILD; a viewed
        array shares the view's memory). No pickler writes into an array after building it: fail closed."""
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            "numpy.ndarray:written",
            f"{how} writes into a numpy array built earlier in the pickle: its contents are no longer what the "
            "checks of its node indices, sparse indices or elements judged",
            off,
            self._ev({"how": how, "array": _short(array)}),
        )

    def _buffer_store(self, op: str, off: int) -> None:
        """SETITEM(S) or APPEND(S) on bytes the VM holds: ``bytes`` refuse it (the loader stops), but a
        ``bytearray`` (BYTEARRAY8, ``builtins.bytearray``, which the VM keeps as bytes) runs its item assignment,
        ``append`` or ``extend``, and a slice key or an append resizes it. ``numpy.ndarray(shape, dtype, buffer)``
        keeps the bytearray's memory without holding its buffer export, so after the resize the array reads and
        writes freed memory (numpy 2.4: a crash). No pickler writes a store into a bytearray."""
        self.coll.hit(
            RULE_TENSOR,
            Severity.HIGH,
            f"{op}:bytearray",
            f"{op} on a bytearray changes it in place (a slice assignment or an append resizes it): arrays built on "
            "its memory (numpy.ndarray(..., buffer=...)) then read and write freed memory",
            off,
            self._ev({"how": op}),
        )

    def _kept_store(self, target: _Dict, off: int) -> None:
        """A store into a mapping a built object keeps as its own (see ``kept``): what the check at BUILD judged
        is judged again as it now stands (a numpy dtype's field moved past the item makes every read of it leave
        the array's memory; a ``__setstate__`` stored into a partial's ``__dict__`` is what the next BUILD on the
        partial calls)."""
        held = self.kept.get(id(target))
        if held is not None and held[0] is target:
            held[1](off)

    def _list_store(self, target: list[Any], items: list[Any], off: int) -> None:
        """SETITEM(S) on a list runs ``list.__setitem__``: an int key replaces an item, a ``slice`` key replaces a
        run of items by the value's, changing the list's length (an object array's element list made short after
        it was built: numpy then reads past it). The standard pickler never writes this. The VM applies it where
        key and value are constants, so the checks see the list the loader holds; where it cannot, the file is
        unverified."""
        self.list_stores[id(target)] = target
        if self.feature_lists:
            self._feature_list_store(target, off, items[1::2])
        if self.state_lists:
            self._state_list_store(target, "SETITEM", off)
        for i in range(0, len(items) - 1, 2):
            key, value = items[i], items[i + 1]
            whole = self._length(target) == len(target)  # no items dropped past the container bound
            if type(key) is int and whole:
                if not -len(target) <= key < len(target):
                    raise _MalformedError("SETITEM index past the end of a list", off)
                target[key] = value
                continue
            bounds = _slice_args(key)
            if (
                bounds is not None
                and whole
                and (type(value) is tuple or (type(value) is list and self._length(value) == len(value)))
            ):
                try:
                    target[slice(*bounds)] = list(value)
                except ValueError:  # an extended slice given another number of items
                    raise _MalformedError(
                        "SETITEM of an extended slice of a list with a value of another length", off
                    ) from None
                continue
            self.coll.unverified.append(
                f"SETITEM on a list at offset {off} with a key or value the analysis cannot read back: which items "
                "the loader's list holds cannot be told"
            )

    def _op_empty_set(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        stack.append([])
        return stack

    def _op_additems(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        outer, items = self._pop_mark(stack, meta, off, "ADDITEMS")
        if not outer:
            raise _MalformedError("ADDITEMS without a set", off)
        target = outer[-1]
        if type(target) is list:
            target.extend(items[: max(0, _MAX_CONTAINER - len(target))])
        elif type(target) is _Call or type(target) is _Ref or type(target) is _Module:
            self._item_on(target, "ADDITEMS", off)
        return outer

    def _op_frozenset(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        outer, items = self._pop_mark(stack, meta, off, "FROZENSET")
        outer.append(tuple(items[:_MAX_CONTAINER]))
        return outer

    def _op_pop(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if stack:
            stack.pop()
            return stack
        if meta:  # CPython: POP on an empty stack discards the topmost MARK
            return meta.pop()
        raise _MalformedError("POP on an empty stack", off)

    def _op_dup(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        if not stack:
            raise _MalformedError("DUP on an empty stack", off)
        stack.append(stack[-1])
        self._copied(stack[-1])
        if type(stack[-1]) is _Call and stack[-1].state is None:
            self._reuse(stack[-1])
        return stack

    def _reuse(self, value: _Call) -> None:
        """A second copy of an object not yet given its state (memo GET, DUP): for a numpy dtype or array, what
        takes the copy may rely on it before the BUILD changes it (see :meth:`_rebuilt`)."""
        if _rebuild_kind(value) is not None:
            self.reused[id(value)] = value

    @staticmethod
    def _copied(value: Any) -> None:
        """Count a new stack copy of a pending getattr (see :meth:`_settle`)."""
        if type(value) is _Ref and value.pending is not None:
            value.pending[0] += 1

    def _op_pop_mark(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        outer, _ = self._pop_mark(stack, meta, off, "POP_MARK")
        return outer

    def _op_get(self, stack: list[Any], meta: list[list[Any]], memo: _Memo, off: int) -> list[Any]:
        line = self.r.readline()
        try:
            idx = int(line)
        except ValueError:
            raise _MalformedError("GET with a non-integer index", off) from None
        if not (0 <= idx < len(memo) if type(memo) is list else idx in memo):
            raise _MalformedError(f"GET of undefined memo entry {idx}", off)
        stack.append(memo[idx])
        self._copied(memo[idx])
        if type(memo[idx]) is _Call and memo[idx].state is None:
            self._reuse(memo[idx])
        if self.fetched is not None and type(memo[idx]) is str:
            self.fetched[id(memo[idx])] = memo[idx]
        return stack

    def _put_index(self, stack: list[Any], off: int) -> int:
        """The index of a text PUT (read from its line), checked as CPython's unpickler checks it."""
        line = self.r.readline()
        try:
            idx = int(line)
        except ValueError:
            raise _MalformedError("PUT with a non-integer index", off) from None
        if idx < 0:
            raise _MalformedError("PUT with a negative index", off)
        if not stack:
            raise _MalformedError("PUT on an empty stack", off)
        return idx

    # -- joblib --

    def _joblib_array(
        self, wrapper: _Call, off: int, at: tuple[list[Any], list[list[Any]], _Memo]
    ) -> tuple[_NodeCheck | str | None, Any]:
        """Skip (or analyse, for object arrays) the array data joblib writes right after the wrapper. Returns,
        for a tree node array, its check (or why it cannot be read), and for an object array, what its pickle
        stream built (else unknown)."""
        self._plain_reading(at)
        state = wrapper.state
        if type(state) is not _Dict or state.size != len(state.items):
            raise _MalformedError("joblib NumpyArrayWrapper without a readable state dict", off)
        if self.frame_end > self.r.tell():
            # joblib reads the array from the file after the current frame, while the unpickler keeps reading
            # opcodes from inside the frame; joblib itself always ends the frame first. Fail closed.
            raise _MalformedError("joblib array data announced inside a pickle frame", off)
        self.frame_end = -1  # the frame ended where the array data begins: what follows is not a straddle
        shape = state.get("shape")
        dtype = state.get("dtype")
        if type(shape) is not tuple or not all(type(x) is int and x >= 0 for x in shape):
            raise _MalformedError("joblib NumpyArrayWrapper with an unreadable shape", off)
        itemsize, hasobject = _dtype_info(dtype)
        if hasobject:
            # Object arrays are a complete pickle stream of their own, embedded at this point.
            self.coll.callables.add("joblib.numpy_pickle.NumpyArrayWrapper[object]")
            self._joblib_object_mmap(state, off)
            limits = self.budget.limits
            if self.depth + 1 > limits.max_depth:
                raise _LimitError("max_depth", f"nested pickles deeper than {limits.max_depth}")
            # joblib reads it with a plain Unpickler: no array data follows wrappers inside it.
            sub = _VM(self.r, self.coll, self.budget, depth=self.depth + 1, joblib=False, origin=self.origin)
            sub.run()
            # the arrays and trees it built stay known to the checks of the objects holding the array
            self.arrays.update(sub.arrays)
            self.node_arrays.update(sub.node_arrays)
            return None, sub.result
        if itemsize is None:
            raise _MalformedError("joblib NumpyArrayWrapper with a dtype the scanner cannot size", off)
        count = 1
        for x in shape:
            count *= x
        align = state.get("numpy_array_alignment_bytes")
        if align is not _UNKNOWN and align is not None:
            pad = self.r.read(1)[0]
            if pad:
                self.r.skip(pad)
        layout = _node_layout(dtype)
        if layout is None or isinstance(layout, str) or len(shape) != 1:
            self.r.skip(count * itemsize)
            if layout is None:
                return None, _UNKNOWN
            return (
                layout if isinstance(layout, str) else "a node array of more than one dimension"
            ), _UNKNOWN
        if layout.itemsize != itemsize:
            raise _MalformedError("joblib node array whose dtype's item size is not the one read", off)
        check = _NodeCheck(count, layout)
        left = count * itemsize
        while left > 0:  # sklearn tree nodes: read in bounded chunks and checked, never held whole
            step = min(left, (_NODE_CHUNK // itemsize) * itemsize)
            check.feed(self.r.read(step))
            left -= step
        self._tree_nodes(check, off)
        return check, _UNKNOWN

    def _joblib_object_mmap(self, state: _Dict, off: int) -> None:
        """An object array's wrapper that allows memory mapping. ``joblib.load(mmap_mode=...)`` maps such an array
        whatever its dtype (``read_mmap``): the file's bytes become the array's object pointers, and the outer
        pickle then resumes after ``count * 8`` mapped bytes (and the padding its first byte names), not after the
        nested pickle this reading analyses, so opcodes hidden inside that pickle's data run there. joblib never
        writes it (its pickler allows mmap only for arrays without objects); a value that is not plainly false
        (or one this reading cannot tell) is reported."""
        values = [v for k, v in state.items if type(k) is str and k == "allow_mmap"]
        if not values or (type(values[-1]) in (bool, int, type(None)) and not values[-1]):
            return  # absent (joblib then fails on mmap_mode before reading) or false: read as a nested pickle
        self.coll.hit(
            RULE_TENSOR,
            Severity.CRITICAL,
            "joblib:object-mmap",
            "joblib NumpyArrayWrapper of an object array allows memory mapping: joblib.load(mmap_mode=...) maps the "
            "file's bytes as object pointers and resumes the pickle at another offset than its nested pickle's end "
            "(joblib never writes this)",
            off,
            self._ev({"allow_mmap": _short(values[-1])}),
        )

    def _joblib_registered(self, array: _Unknown, wrapper: _Call, items: Any) -> None:
        """Remember a joblib array (dtype, shape, and its data when the stream can read it again: it ends where
        the reader stands; for an object array, the array its own pickle stream built) for the objects that
        take it."""
        state = wrapper.state
        if type(state) is not _Dict:
            return
        dtype, shape = state.get("dtype"), state.get("shape")
        itemsize, hasobject = _dtype_info(dtype)
        data: Any = items
        r = self.r
        if not hasobject and itemsize is not None and type(shape) is tuple and r.origin is not None:
            size = itemsize * math.prod(shape)
            data = _Big("bytes", size, b"", r.stream, r.origin + r.tell() - size)
        self.arrays[id(array)] = (array, dtype, shape, data)

    def _plain_reading(self, at: tuple[list[Any], list[list[Any]], _Memo]) -> None:
        """What ``pickle.load`` and ``torch.load`` run from here: joblib reads array data after a wrapper, but
        every other loader reads those bytes as opcodes, and a file can be made for either (benign array bytes
        to joblib, a payload to pickle.load). The bytes ahead are run as a continuation of this stream (copies
        of its stack, marks and memo) until the first error, as a loader would, within a bounded window: if
        the reading needs bytes beyond it before it fails or stops, the file is unverified.

        Only the first array of a stream is followed: a plain loader reads its bytes and whatever comes after
        them as opcodes, so it fails, stops or runs on within that one reading (which reads past the window are
        unverified) and never reaches a later wrapper on its own. The later arrays' bytes, read from the stack
        they were not written for, only made random findings (a joblib dump of a forest and a stacking
        classifier was LogisticRegression-called)."""
        if self.plain_read:
            return
        self.plain_read = True
        r = self.r
        r.fill(_PLAIN_WINDOW)
        window = r.buf[r.p : r.p + _PLAIN_WINDOW]
        whole = r.eof and r.p + len(window) >= r.n
        sub_reader = _Reader(io.BytesIO(window), len(window))
        shadow = _VM(
            sub_reader,
            self.coll,
            self.budget,
            depth=self.depth,
            joblib=False,
            origin=self.origin or "plain-unpickler reading of joblib array data",
            prefix=True,
        )
        # joblib's own bytes follow the array data: read from a stack that is not the one they were written for,
        # they pair names at random (STACK_GLOBAL of 'NumpyArrayWrapper', 'dtype' from the memo), so unknown names
        # stay unjudged unless the bytes read here spell them out whole (see _global)
        shadow.judge_calls = False
        shadow.fetched = {}
        shadow.careful = True  # the memo reads are followed (see fetched)
        shadow.imported = set(self.imported)
        stack, meta, memo = at
        try:
            shadow.run((list(stack), [list(m) for m in meta], memo.copy()))
        except _TruncatedError:
            if not whole:
                self.coll.unverified.append(
                    f"joblib array data at offset {r.tell()} read as opcodes (as pickle.load does) runs past "
                    f"the {_PLAIN_WINDOW}-byte window the analysis follows"
                )
        except _MalformedError:
            pass  # the loader fails here: nothing after this runs


_PLAIN_WINDOW: Final = 1 << 16
"""Bytes of joblib array data followed as opcodes (see ``_VM._plain_reading``)."""

# Opcodes outside the hot path of _VM.run, by opcode byte.
_DISPATCH: Final[dict[int, Callable[[_VM, list[Any], list[list[Any]], _Memo, int], list[Any]]]] = {
    0x80: _VM._op_proto,
    0x95: _VM._op_frame,
    0x63: _VM._op_global,
    0x93: _VM._op_stack_global,
    0x69: _VM._op_inst,
    0x6F: _VM._op_obj,
    0x81: _VM._op_newobj,
    0x92: _VM._op_newobj_ex,
    0x62: _VM._op_build,
    0x82: _VM._op_ext1,
    0x83: _VM._op_ext2,
    0x84: _VM._op_ext4,
    0x50: _VM._op_persid,
    0x51: _VM._op_binpersid,
    0x49: _VM._op_int,
    0x4C: _VM._op_long,
    0x8A: _VM._op_long1,
    0x8B: _VM._op_long4,
    0x53: _VM._op_string,
    0x54: _VM._op_binstring,
    0x55: _VM._op_short_binstring,
    0x42: _VM._op_binbytes,
    0x43: _VM._op_short_binbytes,
    0x8E: _VM._op_binbytes8,
    0x96: _VM._op_bytearray8,
    0x97: _VM._op_buffer,
    0x98: _VM._op_readonly_buffer,
    0x56: _VM._op_unicode,
    0x58: _VM._op_binunicode,
    0x8D: _VM._op_binunicode8,
    0x46: _VM._op_float,
    0x61: _VM._op_append,
    0x6C: _VM._op_list,
    0x74: _VM._op_tuple,
    0x64: _VM._op_dict,
    0x73: _VM._op_setitem,
    0x8F: _VM._op_empty_set,
    0x90: _VM._op_additems,
    0x91: _VM._op_frozenset,
    0x30: _VM._op_pop,
    0x32: _VM._op_dup,
    0x31: _VM._op_pop_mark,
    0x67: _VM._op_get,
}


_DTYPE_RE: Final = r"^[<>|=]?([biufcmMOSUV])(\d+)$"
_DATETIME_SPEC: Final = r"^[<>|=]?(?:[mM](?:8|16)?(?:\[[^\]]*\])?|datetime64|timedelta64)(?:\[[^\]]*\])?$"
_FLEXIBLE_SPEC: Final = r"^[<>|=]?(?:[SUVa]\d*|void\d*|bytes_?|str_?|unicode_?|string_?)$"
_FIXED_SIZES: Final = {"b": {1}, "i": {1, 2, 4, 8}, "u": {1, 2, 4, 8}, "f": {2, 4, 8, 16}, "c": {8, 16, 32}}


# scipy.stats._distn_infrastructure.parse_arg_template, filled by rv_generic._construct_argparser
_SCIPY_ARG_TEMPLATE: Final = (
    "\ndef _parse_args(self, %(shape_arg_str)s %(locscale_in)s):\n"
    "    return (%(shape_arg_str)s), %(locscale_out)s\n\n"
    "def _parse_args_rvs(self, %(shape_arg_str)s %(locscale_in)s, size=None):\n"
    "    return self._argcheck_rvs(%(shape_arg_str)s %(locscale_out)s, size=size)\n\n"
    "def _parse_args_stats(self, %(shape_arg_str)s %(locscale_in)s, moments='mv'):\n"
    "    return (%(shape_arg_str)s), %(locscale_out)s, moments\n"
)
_SCIPY_SHAPES_RE: Final = r"\ndef _parse_args\(self, ((?:[A-Za-z_][A-Za-z0-9_]*, )*) "
_SCIPY_LOCSCALE: Final = (("loc=0, scale=1", "loc, scale"), ("loc=0", "loc, 1"))


_FORMULA_CALLS: Final = frozenset(
    {
        # patsy's and formulaic's own transforms and contrasts, and the math their documentation uses bare
        *(
            "C",
            "I",
            "Q",
            "Treatment",
            "Sum",
            "Diff",
            "Helmert",
            "Poly",
            "poly",
            "center",
            "standardize",
        ),
        *("scale", "bs", "cr", "cc", "te", "log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "lag"),
    }
)
_FORMULA_STRING_RE: Final = r"'[^'\\\n]*'|\"[^\"\\\n]*\""
_FORMULA_CALL_RE: Final = r"([A-Za-z_][A-Za-z0-9_.]*)\s*\("
_FORMULA_ATTR_RE: Final = r"[A-Za-z_][A-Za-z0-9_]*\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)"
_FORMULA_BAD_RE: Final = r"__|\blambda\b|:=|[\[\]{};@`\\]|[)'\"]\s*\("


def _plain_formula(formula: str) -> bool:
    """Whether a patsy/formulaic formula only names columns and applies the transforms formulas are written
    with: calls of :data:`_FORMULA_CALLS` or of numpy's element-wise functions (``np.log(x)``), no other
    attribute, no dunder, subscript, lambda or call of an expression. Its factors are Python evaluated in the
    loader's frames, whose globals hold ``os``, ``pickle`` or ``builtins``: any other call may reach them."""
    if len(formula) > 4096:
        return False
    text = re.sub(_FORMULA_STRING_RE, "''", formula)  # Q('a name'), Treatment('level'): text, not code
    if "'" in text.replace("''", "") or '"' in text or re.search(_FORMULA_BAD_RE, text):
        return False
    for name in re.findall(_FORMULA_CALL_RE, text):
        head, _, tail = name.rpartition(".")
        if not (name in _FORMULA_CALLS or (head in ("np", "numpy") and tail in NUMPY_FUNCTIONS)):
            return False
    return all(
        m.group(0).split(".", 1)[0].strip() in ("np", "numpy") and m.group(1) in NUMPY_FUNCTIONS | {"pi", "e"}
        for m in re.finditer(_FORMULA_ATTR_RE, text)
    )


def _scipy_dist_state(state: Any) -> bool:
    """Whether ``rv_generic.__setstate__(state)`` runs only the argument parser SciPy itself generates: a dict
    (seen whole, every key a constant string: a key computed at load time may be the template's) whose
    ``_parse_arg_template``, if any, is SciPy's template over plain shape names. Frozen distributions have no
    template; anything other than a dict reaches ``__dict__.update`` or ``__init__``. ``__setstate__`` then calls
    ``self._attach_methods()`` (which calls ``self._attach_argparser_methods()``): a state key of that name puts
    an instance attribute in front of the method, and the stored callable is called (SciPy never pickles one)."""
    if type(state) is not _Dict or state.size != len(state.items):
        return False
    if not all(type(k) is str and not k.startswith("_attach") for k, _ in state.items):
        return False
    templates = [v for k, v in state.items if k == "_parse_arg_template"]
    if not templates:
        return True
    template = templates[-1]
    if type(template) is not str:
        return False
    m = re.match(_SCIPY_SHAPES_RE, template)
    if m is None:
        return False
    shapes = m.group(1)
    return any(
        template == _SCIPY_ARG_TEMPLATE % {"shape_arg_str": shapes, "locscale_in": lin, "locscale_out": lout}
        for lin, lout in _SCIPY_LOCSCALE
    )


def _tensor_made(value: Any) -> bool:
    """Whether ``value`` is the result of a call that returns a tensor (see ``_TENSOR_RESULTS``)."""
    return type(value) is _Call and type(value.func) is _Ref and value.func.canon in _TENSOR_RESULTS


def _shape(value: Any) -> tuple[Any, ...] | list[Any] | None:
    """Sizes or strides as torch takes them: a tuple, a list, or a ``torch.Size`` of either."""
    if type(value) is _Call and type(value.func) is _Ref and value.func.canon == "torch.Size" and value.args:
        value = value.args[0]
    return value if type(value) is tuple or type(value) is list else None


def _merge_batch(
    size: tuple[int, ...], stride: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The sizes and strides of a batched index tensor (batch dims..., n) read as (rows, n): the batch dimensions
    merged into one, which their strides must allow (dimensions of size 1 take any stride); None if they do not."""
    if 0 in size:
        return (0, size[-1]), (0, stride[-1])  # no index to check
    lead = [(n, s) for n, s in zip(size[:-1], stride[:-1], strict=True) if n != 1]
    if not lead:
        return (1, size[-1]), (0, stride[-1])
    if any(s1 != n2 * s2 for (_, s1), (n2, s2) in itertools.pairwise(lead)):
        return None
    if lead[-1][1] == 0:
        return (1, size[-1]), (0, stride[-1])  # every batch is the same memory: one row to check
    rows = 1
    for n, _ in lead:
        rows *= n
    return (rows, size[-1]), (lead[-1][1], stride[-1])


_COMPRESSED_NAMES: Final = {
    "sparse_csr": ("crow_indices", "col_indices", "rows"),
    "sparse_csc": ("ccol_indices", "row_indices", "columns"),
    "sparse_bsr": ("crow_indices", "col_indices", "block rows"),
    "sparse_bsc": ("ccol_indices", "row_indices", "block columns"),
}
"""Per compressed layout: the compressed and plain index tensors' names, and what the compressed one counts."""


def _compressed_geometry(
    kind: str, size: tuple[int, ...], csz: tuple[int, ...], psz: tuple[int, ...], vsz: tuple[int, ...] | None
) -> tuple[list[str], int | None, int | None]:
    """The shape invariants torch's ``_validate_sparse_compressed_tensor_args`` checks (and torch.load, building
    with ``check_invariants=False``, does not) that the constant shapes of a compressed sparse tensor's parts
    violate; with the number of plain rows/columns (of blocks) the plain indices must stay below and the nnz every
    part agrees on (the compressed indices' bound), each None when the shapes leave it unknown.

    ``size``: the tensor's (batch..., rows, columns, dense...); ``csz``/``psz``: the compressed and plain index
    tensors' (batch..., n); ``vsz``: the values' (batch..., nnz, [block rows, block columns,] dense...), or None
    when they cannot be read back (the caller makes that unverified)."""
    cname, pname, counted = _COMPRESSED_NAMES[kind]
    blocked = kind in ("sparse_bsr", "sparse_bsc")
    problems: list[str] = []
    if not csz:
        return [f"{cname} has no dimension"], None, None
    batch = len(csz) - 1
    if len(psz) != len(csz):
        return [f"{cname} has {len(csz)} dimensions and {pname} {len(psz)}"], None, None
    block = 2 if blocked else 0
    if vsz is not None and len(vsz) < batch + block + 1:
        problems.append(
            f"values have {len(vsz)} dimensions, fewer than the {batch + block + 1} of {batch} batch, one nnz"
            + (" and two block dimensions" if blocked else " dimension")
        )
        vsz = None
    if vsz is None and blocked:
        return problems, None, None  # the block size is unknown
    dense = len(vsz) - batch - block - 1 if vsz is not None else max(len(size) - batch - 2, 0)
    if len(size) != batch + 2 + dense:
        problems.append(
            f"size {list(size)} has {len(size)} dimensions, not the {batch + 2 + dense} of the {batch} batch, 2 "
            f"sparse and {dense} dense dimensions its indices and values have"
        )
        return problems, None, None
    shape = list(size[:batch])
    for name, sz in ((cname, csz), (pname, psz), ("values", vsz)):
        if sz is not None and list(sz[:batch]) != shape:
            problems.append(
                f"the batch dimensions {list(sz[:batch])} of {name} are not those of size, {shape}"
            )
    rows, cols = size[batch], size[batch + 1]
    if vsz is not None and blocked:
        brows, bcols = vsz[batch + 1], vsz[batch + 2]
        if brows < 1 or bcols < 1:
            problems.append(f"the block size {brows} x {bcols} of values is not positive")
            return problems, None, None
        if rows % brows or cols % bcols:
            problems.append(f"size {rows} x {cols} is not divisible by the block size {brows} x {bcols}")
        rows, cols = rows // brows, cols // bcols
    compressed, plain = (rows, cols) if kind in ("sparse_csr", "sparse_bsr") else (cols, rows)
    if csz[-1] != compressed + 1:
        problems.append(f"{cname} has {csz[-1]} entries, not {compressed + 1} for {compressed} {counted}")
    nnz = psz[-1]
    if vsz is not None:
        if vsz[batch] != nnz:
            what = "blocks" if blocked else "values"
            problems.append(f"{pname} has {nnz} entries (nnz) but values hold {vsz[batch]} {what}")
            nnz = min(nnz, vsz[batch])
        if list(vsz[batch + 1 + block :]) != list(size[batch + 2 :]):
            problems.append(
                f"the dense dimensions {list(vsz[batch + 1 + block :])} of values are not those of size, "
                f"{list(size[batch + 2 :])}"
            )
    if plain < 0 or nnz < 0:
        return problems, None, None
    return problems, plain, nnz


def _dtype_info(dtype: Any, depth: int = 0) -> tuple[int | None, bool]:
    """(itemsize, hasobject) of a symbolic ``numpy.dtype(spec, ...)`` and its BUILD state, as numpy has it.

    numpy ignores the state's size and flags for fixed-size kinds and honours them for flexible ones (``S``,
    ``U``, ``V``: structured and sub-array dtypes); anything else is not sized (the caller fails closed).
    """
    if type(dtype) is not _Call or type(dtype.func) is not _Ref or not dtype.args:
        return None, False
    if dtype.func.canon == "numpy.core._internal._convert_to_stringdtype_kwargs":
        return None, True  # numpy 2 StringDType: hasobject, so joblib pickles the array (a stream of its own)
    if dtype.func.canon not in ("numpy.dtype", "numpy.core.multiarray.dtype"):
        return None, False
    spec = dtype.args[0]
    if type(spec) is _Call and depth < 8:
        return _dtype_info(spec, depth + 1)  # numpy.dtype(d) is d itself (normally the VM's call returns it)
    if type(spec) is str:
        m = re.match(_DTYPE_RE, spec)
        if m is None:
            return None, False
        kind, size = m.group(1), int(m.group(2))
    elif type(spec) is _Ref and spec.canon in _SCALAR_TYPES:
        kind, size = _SCALAR_TYPES[spec.canon]
    elif type(spec) in (list, tuple, _Dict):
        kind, size = "V", 0  # a structured or sub-array spec: a void dtype sized by its fields
    else:
        return None, False
    state = dtype.state
    elsize = state[5] if type(state) is tuple and len(state) >= 8 and type(state[5]) is int else -1
    flags = state[7] if type(state) is tuple and len(state) >= 8 and type(state[7]) is int else 0
    if kind == "O":
        return (size, True) if size == 8 else (None, True)
    if kind in "mM":
        return (8, False) if size == 8 else (None, False)
    if kind in _FIXED_SIZES:
        return (size, False) if size in _FIXED_SIZES[kind] else (None, False)
    if elsize > 0:
        return elsize, kind == "V" and bool(flags & 1)
    if kind == "U":
        return 4 * size, False
    return (size, False) if size > 0 else (None, False)


_SCALAR_TYPES: Final = {
    **dict.fromkeys(("numpy.bool", "numpy.bool_", "builtins.bool"), ("b", 1)),
    **dict.fromkeys(("numpy.int8", "numpy.byte"), ("i", 1)),
    **dict.fromkeys(("numpy.uint8", "numpy.ubyte"), ("u", 1)),
    **dict.fromkeys(("numpy.int16", "numpy.short"), ("i", 2)),
    **dict.fromkeys(("numpy.uint16", "numpy.ushort"), ("u", 2)),
    **dict.fromkeys(("numpy.int32", "numpy.intc"), ("i", 4)),
    **dict.fromkeys(("numpy.uint32", "numpy.uintc"), ("u", 4)),
    **dict.fromkeys(("numpy.int64", "numpy.intp", "numpy.long", "numpy.longlong", "builtins.int"), ("i", 8)),
    **dict.fromkeys(("numpy.uint64", "numpy.uintp", "numpy.ulong", "numpy.ulonglong"), ("u", 8)),
    **dict.fromkeys(("numpy.float16", "numpy.half"), ("f", 2)),
    **dict.fromkeys(("numpy.float32", "numpy.single"), ("f", 4)),
    **dict.fromkeys(("numpy.float64", "numpy.double", "builtins.float"), ("f", 8)),
    **dict.fromkeys(("numpy.complex64", "numpy.csingle"), ("c", 8)),
    **dict.fromkeys(("numpy.complex128", "numpy.cdouble", "builtins.complex"), ("c", 16)),
    **dict.fromkeys(("numpy.object_", "builtins.object"), ("O", 8)),
    "numpy.datetime64": ("M", 8),
    "numpy.timedelta64": ("m", 8),
    # numpy pickles a record array's dtype as numpy.dtype(numpy.record): a structured void dtype
    **dict.fromkeys(
        ("numpy.void", "numpy.record", "numpy.rec.record", "numpy.core.records.record"), ("V", 0)
    ),
    **dict.fromkeys(("numpy.bytes_", "builtins.bytes"), ("S", 0)),
    **dict.fromkeys(("numpy.str_", "builtins.str"), ("U", 0)),
}
"""What ``numpy.dtype(<type>)`` makes of the scalar types a pickle can name (64-bit Linux and macOS sizes): its
kind and item size; a flexible kind of size 0 takes its size from the dtype's state. ``longdouble`` is left out
(its size depends on the platform)."""


def _fields_table(fields: Any) -> _Dict | str | None:
    """The mapping a numpy dtype state's fields item gives numpy (any dict or dict subclass): a dict literal, or
    an ``OrderedDict()``/``dict()`` made empty and filled by SETITEMS (its items, made here if none were stored
    yet, so that later stores reach the same table); None for None; a description for anything else."""
    if fields is None or type(fields) is _Dict:
        return fields
    if (
        type(fields) is _Call
        and type(fields.func) is _Ref
        and fields.func.canon in ("collections.OrderedDict", "builtins.dict")
        and fields.args == ()
    ):
        if fields.items is None:
            fields.items = _Dict()
        return fields.items
    return "a fields mapping the analysis cannot read"


def _flexible_spec(spec: Any) -> bool:
    """Whether ``numpy.dtype(spec)`` is a flexible dtype (``S``, ``U``, ``V``: structured and sub-array dtypes),
    whose item size numpy takes from its BUILD state."""
    if type(spec) is str:
        return bool(re.match(_FLEXIBLE_SPEC, spec))
    if type(spec) is _Ref:
        return _SCALAR_TYPES.get(spec.canon, ("?", 1))[1] == 0
    return type(spec) in (list, tuple, _Dict)


def _planted_args(args: tuple[Any, ...], deep: bool = False) -> list[_Call]:
    """The instances among a call's arguments (and the items of its tuple and list arguments) whose state planted
    callables as attributes (see ``_VM._handed``). ``deep``, for numpy's functions: also the items of nested lists
    and tuples and the elements of object arrays, since numpy's ufuncs call the method of their name on every
    element of the object array they are given or make of a nested list (``np.exp([[x]])`` calls ``x.exp()``)."""
    out: list[_Call] = []
    if not deep:
        for a in args[:16]:
            if type(a) is _Call:
                if a.planted:
                    out.append(a)
            elif type(a) is tuple or type(a) is list:
                out.extend(x for x in a[:16] if type(x) is _Call and x.planted)
        return out
    todo: list[tuple[Any, int]] = [(a, 0) for a in args[:64]]
    seen: set[int] = set()
    while todo and not out:
        value, depth = todo.pop()
        if type(value) is _Call:
            if value.planted:
                out.append(value)
            elif depth < 8 and type(value.state) is tuple and value.state and _object_array(value):
                todo.append((value.state[-1], depth + 1))
        elif (type(value) is tuple or type(value) is list) and depth < 8 and id(value) not in seen:
            seen.add(id(value))
            todo.extend(
                (x, depth + 1) for x in value if type(x) is _Call or type(x) is tuple or type(x) is list
            )
    return out


def _object_array(value: _Call) -> bool:
    """Whether ``value`` is an array ``numpy.core.multiarray._reconstruct`` made whose BUILD state holds its elements
    as a list (an object array)."""
    return (
        type(value.func) is _Ref
        and value.func.canon == "numpy.core.multiarray._reconstruct"
        and type(value.state[-1]) is list
    )


def _planted_in(args: tuple[Any, ...], func: _Ref) -> bool:
    return bool(_planted_args(args, func.canon in _NUMPY_CANON))


_NUMPY_CANON: Final = frozenset(f"numpy.{f}" for f in NUMPY_FUNCTIONS)


def _star_args(value: Any) -> tuple[Any, ...]:
    """The arguments ``func(*value)`` passes, as far as they are known: unknown ones stand for some."""
    if type(value) is tuple:
        return value
    if type(value) is list:
        return tuple(value)
    if type(value) is _Dict:
        return tuple(k for k, _ in value.items)
    if type(value) in (str, bytes):
        return tuple(value[:_MAX_CONTAINER])
    if value is None or type(value) in (int, float, bool):
        return ()  # not iterable: the call fails
    return (_UNKNOWN,)


_ZONE_NAME: Final = r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,3}"
"""An IANA zone name (``Europe/London``, ``Etc/GMT+5``): looked up under the zoneinfo folders, never a path."""
_PLAIN_FORMAT: Final = r"(?:[^{}]|\{\{|\}\}|\{\d{0,3}\})*"


class _NotModelled(Exception):
    pass


def _bound_size(obj: str | bytes, meth: str, args: tuple[Any, ...]) -> int:
    """An upper bound of the size of what a pure method of the constant ``obj`` makes (see ``_VM._bound_call``)."""
    n = len(obj)
    texts = [a for a in args if type(a) is str]
    if meth == "join" and args and isinstance(args[0], list | tuple):
        parts = [x for x in args[0] if type(x) is str]
        return 4 * (sum(map(len, parts)) + n * max(0, len(args[0]) - 1))
    if meth == "replace" and len(texts) == 2 and type(obj) is str:
        old, new = texts
        count = n + 1 if not old else obj.count(old)
        return 4 * (n + count * max(0, len(new) - len(old)))
    if meth == "format" and type(obj) is str:
        widest = max((len(a) if type(a) is str else 32 for a in args), default=0)
        return 4 * (n + obj.count("{") * widest)
    if meth == "__add__":
        return 4 * (n + sum(map(len, texts)))
    return 4 * n


def _same_constant(a: Any, b: Any) -> bool:
    return a is b or (type(a) is type(b) and type(a) in (str, int) and a == b)


def _storage_entry(
    fields: dict[str, Any],
) -> tuple[str | None, int | None, int | None, tuple[str, ...] | None] | None:
    """(relative path, offset, length, stream transforms) of a recorded storage entry, with None for a value that
    is not a constant of its type (the transforms: a list or tuple of constant strings, ``()`` when absent, None or
    empty); None when it lacks one of the three attributes the reader needs (it fails on such an entry before it
    opens anything; an object of another kind may well have a ``relative_path``)."""
    if "relative_path" not in fields or "offset" not in fields or "length" not in fields:
        return None
    path, offset, length = fields["relative_path"], fields.get("offset"), fields.get("length")
    transforms = fields.get("transform_descriptors")
    descriptors: tuple[str, ...] | None
    if transforms is None:
        descriptors = ()
    elif (type(transforms) is list or type(transforms) is tuple) and all(type(d) is str for d in transforms):
        descriptors = tuple(transforms)
    else:
        descriptors = None
    return (
        path if type(path) is str else None,
        offset if type(offset) is int else None,
        length if type(length) is int else None,
        descriptors,
    )


def _watched(key: Any, value: Any) -> bool:
    """Whether a mapping's item may matter when the mapping becomes an instance's state: a special or method
    name, a name or wrapper stored under any name, or a name computed at load time."""
    if type(key) is str:
        return key in _KEPT_KEYS or type(value) is _Ref or type(value) is _Wrapper
    return _may_be_str(key)


_PAIRS_ENDED: Final = 1 << 62
"""``_Dict.size`` of a sequence's pairs once an element that is no pair ended them (see ``_VM._pairs``)."""


def _never_pair(item: Any) -> bool:
    """Whether ``item`` can never be a (key, value) pair as ``dict.update`` unpacks one: a number or None, or a
    string, bytes or tuple (immutable) whose length is not 2. A list may still grow to two items by a later
    APPEND, and what a call returns, or a class (an Enum of two members), may iterate as a pair."""
    kind = type(item)
    if item is None or kind is int or kind is float or kind is bool or kind is complex:
        return True
    return (kind is str or kind is bytes or kind is tuple) and len(item) != 2


def _may_be_str(key: Any) -> bool:
    """Whether a key computed at load time may be a string (an attribute name): anything but a tensor or an
    instance of a (CapWords) class. ``str(...)``, ``str.lower`` and ``numpy.str_`` make strings."""
    if type(key) is _Storage:
        return False
    if isinstance(key, _Unknown):
        return True
    if type(key) is not _Call:
        return False
    func = key.func
    if type(func) is not _Ref:
        return True
    canon = func.canon
    return not (
        canon in _TENSOR_RESULTS or canon in _NOT_STR or re.match(_CAPWORDS, func.qual.rpartition(".")[2])
    )


_NOT_STR: Final = frozenset(
    {
        *(
            f"builtins.{t}"
            for t in ("int", "float", "complex", "bool", "bytes", "bytearray", "tuple", "frozenset")
        ),
        *(f"builtins.{t}" for t in ("slice", "range", "object", "hash")),
        *(f"datetime.{t}" for t in ("datetime", "date", "time", "timedelta", "timezone")),
        *("torch.device", "torch.dtype", "numpy.dtype", "numpy.core.multiarray.dtype"),
        *("numpy.core.multiarray._reconstruct", "copyreg._reconstructor", "copyreg.__newobj__"),
    }
)
"""Lower-case classes and functions whose results are never strings (keys such as a dtype or a date)."""


_CAPWORDS: Final = r"_?[A-Z][A-Za-z0-9_]*"


def _maybe_callable(value: Any) -> bool:
    """Whether a loader may call ``value``: not a constant or container (calling those fails the load)."""
    return value is not None and type(value) not in (str, bytes, int, float, bool, tuple, list, _Dict)


_ARROW_WIDTHS: Final = {
    **dict.fromkeys(("int8", "uint8", "i1", "u1"), 1),
    **dict.fromkeys(("int16", "uint16", "i2", "u2", "halffloat", "float16", "f2"), 2),
    **dict.fromkeys(("int32", "uint32", "i4", "u4", "float", "float32", "f4", "date32"), 4),
    **dict.fromkeys(("int64", "uint64", "i8", "u8", "double", "float64", "f8", "date64"), 8),
    "bool": 0,  # one bit per slot
}
"""Bytes per value of pyarrow's fixed-width types by the aliases ``type_for_alias`` accepts."""
_ARROW_OFFSETS: Final = {
    **dict.fromkeys(("string", "str", "utf8", "binary"), 4),
    **dict.fromkeys(("large_string", "large_str", "large_utf8", "large_binary"), 8),
}
"""Offset width of pyarrow's variable-width types (offsets buffer, then data buffer)."""
_MAX_ARROW_DEPTH: Final = 64
_MAX_ARROW_NODES: Final = 4096
"""How deep and how many nested arrays (children, dictionaries) of one pickled pyarrow array are checked."""


def _arrow_kind(kind: Any) -> tuple[str, int] | None:
    """The form of a pickled pyarrow type, as ``(name, parameter)``: a ``type_for_alias`` alias; a timestamp or
    decimal with its value width; a list, large list or map with its offset width; a fixed-size list with its
    size; a struct; a dictionary with its index width (its indices are bounds-checked where pyarrow reads the
    dictionary: only their buffer's size and the dictionary's own data are checked). None for anything else (not
    checked)."""
    if type(kind) is not _Call or type(kind.func) is not _Ref:
        return None
    args = kind.args if type(kind.args) is tuple else ()
    name = kind.func.canon.rpartition(".")[2] if kind.func.canon.startswith("pyarrow.lib.") else ""
    if name == "type_for_alias":
        return (args[0], 0) if args and type(args[0]) is str else None
    if name in ("timestamp", "decimal128", "decimal256"):
        return name, {"timestamp": 8, "decimal128": 16, "decimal256": 32}[name]
    if name == "list_":
        if len(args) == 1:
            return "list", 4
        if len(args) == 2 and type(args[1]) is int and args[1] >= 0:
            return "fixed_size_list", args[1]
        return None
    if name == "large_list":
        return "large_list", 8
    if name == "map_":
        return "map", 4
    if name == "struct":
        return "struct", 0
    if name == "dictionary":
        index = _arrow_kind(args[0]) if args else None
        if index is None or index[0] not in _ARROW_INDEX_WIDTHS:
            return None
        return "dictionary", _ARROW_INDEX_WIDTHS[index[0]]
    return None


_ARROW_INDEX_WIDTHS: Final = {
    **dict.fromkeys(("int8", "i1"), 1),
    **dict.fromkeys(("int16", "i2"), 2),
    **dict.fromkeys(("int32", "i4"), 4),
    **dict.fromkeys(("int64", "i8"), 8),
}
"""The signed integer types a dictionary's indices may have, by alias, with their width."""


def _arrow_length(data: Any) -> int | None:
    """The declared length of a pickled child array's data, or None when it is not a constant."""
    if type(data) is not tuple or len(data) < 2 or type(data[1]) is not int:
        return None
    return data[1]


def _arrow_offsets_problem(
    buffers: Any,
    sizes: list[int | None],
    offset: int,
    length: int,
    width: int,
    target: int | None,
    nested: bool,
) -> str | None:
    """The offsets of a string, binary, list or map array (``buffers[1]``) must cover its slots, never decrease
    and end within what they index: the data buffer's bytes (``target`` for strings) or the child's values."""
    if len(sizes) < 2 or sizes[1] is None:
        return None
    if sizes[1] < (offset + length + 1) * width:
        return f"{offset + length + 1} offsets in a buffer of {sizes[1]} bytes"
    raw = _arrow_bytes(buffers[1])
    if raw is None or target is None or not length:
        return None
    values = struct.unpack_from("<" + ("i" if width == 4 else "q") * (length + 1), raw, offset * width)
    if values[0] < 0 or any(b < a for a, b in itertools.pairwise(values)):
        return "offsets that decrease or are negative"
    if values[-1] > target:
        return (
            f"list values up to {values[-1]} of a child of {target}"
            if nested
            else f"string data up to byte {values[-1]} of a buffer of {target}"
        )
    return None


def _arrow_payload(buffer: Any) -> Any:
    """The bytes (or large-payload stand-in) a pickled ``pyarrow.py_buffer(...)`` wraps, or None."""
    if (
        type(buffer) is not _Call
        or type(buffer.func) is not _Ref
        or buffer.func.canon != "pyarrow.lib.py_buffer"
    ):
        return None
    value = buffer.args[0] if buffer.args else None
    if type(value) is _Call and type(value.func) is _Ref and value.func.canon == "builtins.bytearray":
        value = value.args[0] if value.args else None
    return value


def _arrow_buffer(buffer: Any) -> int | None:
    """The size of a pickled pyarrow buffer (-1 for an absent one), or None when it is not known."""
    if buffer is None:
        return -1
    value = _arrow_payload(buffer)
    if type(value) is bytes:
        return len(value)
    if type(value) is _Big:
        return value.size
    return None


def _arrow_bytes(buffer: Any) -> bytes | None:
    value = _arrow_payload(buffer)
    return value if type(value) is bytes else None


def _pandas_index(cls: str) -> bool:
    """Whether ``cls`` (an instance's class or the function that made it) is a pandas index: an ``Index`` class
    or one of pandas' ``_new_Index``-style rebuilds."""
    if not cls.startswith("pandas"):
        return False
    module, _, name = cls.rpartition(".")
    return module.startswith("pandas") and (
        name.endswith("Index") or (module.startswith("pandas.core.indexes.") and name.startswith("_new_"))
    )


_PANDAS_MANAGERS: Final = frozenset(
    {"pandas.core.internals.managers.BlockManager", "pandas.core.internals.managers.SingleBlockManager"}
)
_PANDAS_BLOCKS: Final = frozenset(
    {"pandas._libs.internals._unpickle_block", "pandas.core.internals.blocks.new_block"}
)
_MAX_PLACEMENT: Final = 1 << 16


def _placement(value: Any) -> list[int] | None:
    """The column indices of a pickled block placement: ``slice(start, stop[, step])`` or an int64 array of
    constants (None when they are not known)."""
    if type(value) is not _Call or type(value.func) is not _Ref:
        return None
    if value.func.canon == "builtins.slice":
        bounds = list(value.args) + [None] * (3 - len(value.args))
        start, stop, step = bounds[:3]
        if not all(x is None or type(x) is int for x in (start, stop, step)) or type(stop) is not int:
            return None
        start, step = start or 0, step or 1
        if step == 0 or abs(stop - start) // abs(step) > _MAX_PLACEMENT:
            return None
        return list(range(start, stop, step))
    if value.func.canon == "numpy.core.multiarray._reconstruct":
        state = value.state
        if type(state) is not tuple or len(state) != 5 or type(state[4]) is not bytes:
            return None
        dtype = state[2]
        spec = dtype.args[0] if type(dtype) is _Call and dtype.args else None
        order = (
            dtype.state[1]
            if type(dtype) is _Call and type(dtype.state) is tuple and len(dtype.state) > 1
            else "<"
        )
        if spec not in ("i8", "<i8", "int64") or order not in ("<", "=", "|") or len(state[4]) % 8:
            return None
        if len(state[4]) > 8 * _MAX_PLACEMENT:
            return None
        return list(struct.unpack(f"<{len(state[4]) // 8}q", state[4]))
    return None


_DTYPE_CTORS: Final = frozenset({"numpy.dtype", "numpy.core.multiarray.dtype"})

_NEVER_CALLABLE: Final = frozenset({str, bytes, int, float, bool, type(None), tuple, list, _Dict})
"""Types of the values opcodes push as they are (never a subclass; the VM's lists and ``_Dict`` values are the
lists and dicts of LIST/DICT opcodes): no instance is callable."""

_IMPORT_RUNS: Final = frozenset({"antigravity", "this", "idlelib", "turtledemo", "test"})
"""Standard-library packages whose modules run code when imported: a browser opened, the Zen printed, IDLE, the
turtle demos, the test suite's ``autotest``."""


def _inert_import(module: str) -> bool:
    """Whether importing ``module`` runs nothing a loader's user would notice: a standard-library module outside
    ``_IMPORT_RUNS`` and without a ``__`` part (``__main__``, ``__hello__`` run on import), or one whose top-level
    module no model environment has (the prefix readings' rule, see ``_VM._global``)."""
    if not known_top_module(module):
        return True
    parts = module.split(".")
    return (
        parts[0] in sys.stdlib_module_names
        and parts[0] not in _IMPORT_RUNS
        and not any(part.startswith("__") for part in parts)
    )


_NUMPY_REFETCHED: Final = {"dtype": "numpy", "scalar": "numpy.core.multiarray"}
"""The globals numpy's array pickling names with a module string taken from its memo, and numpy's module for them
(see ``_VM._op_stack_global``)."""
_NOT_AN_INDEX: Final = frozenset(
    {str, bytes, bytearray, float, type(None), tuple, list, dict, set, frozenset}
)
"""Constants that ``PyArg_ParseTuple``'s integer formats and ``PyLong_AsLong`` refuse (they have no
``__index__``)."""
_NPY_ITEM_REFCOUNT: Final = 0x01
_NPY_OBJECT_FLAGS: Final = 0x1B
"""``NPY_ITEM_REFCOUNT | NPY_LIST_PICKLE | NPY_NEEDS_INIT | NPY_NEEDS_PYAPI``: numpy sets all of them on every dtype
that holds objects (it writes 0x1B or 0x3F)."""
_NPY_LIST_PICKLE: Final = 0x02
_NPY_NEEDS_INIT: Final = 0x08
_NODE_CHUNK: Final = 1 << 20
_NODE_KINDS: Final = {
    # scikit-learn's Tree nodes (NODE_DTYPE): a leaf has both children -1
    "tree": ("left_child", "right_child", "feature"),
    # the histogram gradient boosting predictors' nodes (PREDICTOR_RECORD_DTYPE): a leaf has is_leaf set
    "hgb": ("left", "right", "feature_idx", "is_leaf"),
}
_HGB_CATEGORICAL: Final = ("is_categorical", "bitset_idx")
_NODE_INTS: Final = {"i8": "q", "i4": "i", "u8": "Q", "u4": "I", "u1": "B", "b1": "?", "i1": "b"}
"""Field types a node array may give its index fields, as struct codes. scikit-learn accepts a node array whose
fields are those of NODE_DTYPE with the index fields as i4 or i8, in either byte order, and casts it."""


class _NodeLayout(NamedTuple):
    kind: str
    itemsize: int
    record: struct.Struct
    """One record: the kind's fields in offset order, padding skipped."""
    pick: tuple[int, ...]
    """Where each of the kind's fields comes in an unpacked record."""


def _field_names(dtype: Any) -> set[Any]:
    """The field names of a pickled structured dtype (its BUILD state's fields), empty for any other value."""
    if type(dtype) is not _Call or type(dtype.func) is not _Ref or dtype.func.canon not in _DTYPE_CTORS:
        return set()
    state = dtype.state
    if type(state) is not tuple or not 7 <= len(state) <= 9 or type(state[4]) is not _Dict:
        return set()
    return {k for k, _ in state[4].items}


def _node_layout(dtype: Any) -> _NodeLayout | str | None:
    """The layout of a structured dtype whose fields are scikit-learn tree nodes' (``left_child``,
    ``right_child``, ``feature``, or a histogram predictor's ``left``, ``right``, ``feature_idx``, ``is_leaf``);
    a string saying why such a dtype cannot be read; None for any other dtype."""
    names = _field_names(dtype)
    kind = next((k for k, fields in _NODE_KINDS.items() if names.issuperset(fields)), None)
    if kind is None:
        return None
    wanted = _NODE_KINDS[kind]
    if kind == "hgb" and names.issuperset(_HGB_CATEGORICAL):
        wanted += _HGB_CATEGORICAL  # categorical splits (scikit-learn 0.24+) read a bitset row each
    return _field_layout(dtype, kind, wanted)


def _field_layout(dtype: _Call, kind: str, wanted: tuple[str, ...]) -> _NodeLayout | str:
    """A struct reading the integer fields ``wanted`` of every record of a structured dtype (which has them),
    or why it cannot be had."""
    state = dtype.state
    itemsize = state[5]
    if type(itemsize) is not int or itemsize <= 0:
        return "a node dtype without a readable item size"
    fields: dict[str, tuple[int, str, str]] = {}
    for key, field in state[4].items:
        if key not in wanted:
            continue
        if type(field) is not tuple or len(field) < 2 or type(field[1]) is not int:
            return f"node field {key} without a readable offset"
        ftype = field[0]
        spec = ftype.args[0] if type(ftype) is _Call and type(ftype.args) is tuple and ftype.args else None
        code = _NODE_INTS.get(spec.lstrip("<>=|")) if isinstance(spec, str) else None
        if code is None or not isinstance(spec, str):
            return f"node field {key} of a type the scanner does not read ({_short(spec)})"
        fstate = ftype.state
        order = fstate[1] if type(fstate) is tuple and len(fstate) > 1 and type(fstate[1]) is str else "<"
        if spec[:1] in ("<", ">"):
            order = spec[0] if order in "|=" else order
        fields[key] = (field[1], code, ">" if order == ">" else "<")
    orders = {o for _, c, o in fields.values() if struct.calcsize(c) > 1}
    if len(orders) > 1:
        return "node fields of mixed byte order"
    placed = sorted((at, code, key) for key, (at, code, _) in fields.items())
    fmt, pos = (orders.pop() if orders else "<"), 0
    for at, code, _ in placed:
        if at < pos or at + struct.calcsize(code) > itemsize:
            return "node fields that overlap or lie outside the record"
        fmt += (f"{at - pos}x" if at > pos else "") + code
        pos = at + struct.calcsize(code)
    fmt += f"{itemsize - pos}x" if itemsize > pos else ""
    order_of = [key for _, _, key in placed]
    return _NodeLayout(kind, itemsize, struct.Struct(fmt), tuple(order_of.index(f) for f in wanted))


_SKLEARN_NEWOBJ: Final = frozenset(
    {
        "sklearn.neighbors._kd_tree.newObj",
        "sklearn.neighbors._ball_tree.newObj",
        "sklearn.neighbors._binary_tree.newObj",
    }
)
_BINARY_TREE_MODULES: Final = (
    "sklearn.neighbors._kd_tree.",
    "sklearn.neighbors._ball_tree.",
    "sklearn.neighbors._binary_tree.",
)
_BINARY_NODE: Final = ("idx_start", "idx_end", "is_leaf")


_DELAUNAY: Final = frozenset({"scipy.spatial._qhull.Delaunay", "scipy.spatial.qhull.Delaunay"})
_QHULL_RESULTS: Final = frozenset(
    f"scipy.spatial.{module}.{name}"
    for module in ("_qhull", "qhull")
    for name in ("ConvexHull", "Voronoi", "HalfspaceIntersection")
)
_TRIANGULATION_USERS: Final = frozenset(
    f"scipy.interpolate.{module}.{name}"
    for module in ("_interpnd", "interpnd")
    for name in ("LinearNDInterpolator", "CloughTocher2DInterpolator")
)
"""The interpolators whose compiled evaluation reads a triangulation (``tri``) through ``_get_delaunay_info``."""
_FITPACK_SPLINES: Final = {
    f"scipy.interpolate.{module}.{name}": kind
    for module in ("_fitpack2", "fitpack2")
    for names, kind in (
        (("UnivariateSpline", "InterpolatedUnivariateSpline", "LSQUnivariateSpline"), "univariate"),
        (
            (
                "BivariateSpline",
                "_DerivedBivariateSpline",
                "SmoothBivariateSpline",
                "LSQBivariateSpline",
                "RectBivariateSpline",
                "SphereBivariateSpline",
                "SmoothSphereBivariateSpline",
                "LSQSphereBivariateSpline",
                "RectSphereBivariateSpline",
            ),
            "bivariate",
        ),
    )
    for name in names
}
"""SciPy's FITPACK spline classes (admitted by the ``scipy.interpolate.`` pattern) and the degrees they keep."""
_KD_TREES: Final = frozenset(
    {
        "scipy.spatial._ckdtree.cKDTree",
        "scipy.spatial._kdtree.KDTree",
        "scipy.spatial.ckdtree.cKDTree",
        "scipy.spatial.kdtree.KDTree",
    }
)
_SCIPY_CHECKED: Final = frozenset(
    {
        "scipy.stats._qmc.Sobol",
        "scipy.stats._qmc.Halton",
        "scipy.spatial._spherical_voronoi.SphericalVoronoi",
        *_DELAUNAY,
        *_QHULL_RESULTS,
        *_TRIANGULATION_USERS,
        *_FITPACK_SPLINES,
        *_KD_TREES,
        "scipy.interpolate._bsplines.BSpline",
        "scipy.interpolate._ndbspline.NdBSpline",
        *(
            f"scipy.interpolate.{module}.RegularGridInterpolator"
            for module in ("_rgi", "_interpolate", "interpolate")
        ),
    }
)
"""SciPy classes whose BUILD state the VM checks as a whole (a second BUILD is reported, see ``_VM._rebuilt``)."""
_KD_NODE: Final = struct.Struct("<q8x8xqq16xqq")
"""SciPy's C++ ``ckdtreenode`` on 64-bit machines: ``split_dim``, ``children``, ``split``, ``start_idx``,
``end_idx``, the ``less``/``greater`` pointers (rewritten on load) and the ``_less``/``_greater`` node indices; the
fields read are ``split_dim``, ``start_idx``, ``end_idx``, ``_less`` and ``_greater``."""
_SKLEARN_KEPT: Final[dict[str, frozenset[str]]] = {
    "_kmeans_single": frozenset(
        {"sklearn.cluster._kmeans._kmeans_single_lloyd", "sklearn.cluster._kmeans._kmeans_single_elkan"}
    ),
    "scorer_": frozenset({"sklearn.metrics._scorer._passthrough_scorer"}),
}
"""Where scikit-learn itself keeps a name of ``allowlist.REBUILD_ONLY``: ``BisectingKMeans._kmeans_single`` (the
k-means run its fit uses), a search's ``scorer_`` (the passthrough scorer, scikit-learn before 1.4)."""
_SKLEARN_KEPT_OWN: Final = frozenset({"_raw_predict"})
"""Where scikit-learn keeps a method of the estimator's own class under that method's name: histogram gradient
boosting fitted with early stopping on a scorer keeps ``self._raw_predict`` (``allowlist._HGB_RAW_PREDICT``); the
same name under another key, or held by an estimator of another class, stays reported."""
_MAX_KEPT_CALLABLES: Final = 4096
"""The attributes of a scikit-learn object searched for kept callables (their states hold a few dozen)."""
_HESSIAN_UPDATES: Final = frozenset(
    f"scipy.optimize._hessian_update_strategy.{name}" for name in ("BFGS", "SR1")
)
"""The quasi-Newton Hessian approximations a ``NonlinearConstraint``'s ``hess`` may hold (their own state is numbers
and matrices)."""
_MAX_OPTIMIZER_WALK: Final = 200_000
_MAX_OPTIMIZER_DEPTH: Final = 6
_MAX_OPTIMIZER_ITEMS: Final = 4096
_OPTIMIZER_HOLDERS: Final = (_Dict, _Call, list, tuple)
"""How far the search for optimizer states reaches into what a pickle returns (a checkpoint keeps the optimizer's
state dict a level or two down)."""


def _pairs_of(value: Any) -> list[tuple[Any, Any]] | tuple[()] | None:
    """The items of a dict, or of an ``OrderedDict`` (or ``defaultdict``) pickle filled by SETITEMS; None for
    anything else."""
    if type(value) is _Dict:
        return value.items
    if type(value) is _Call and value.items is not None:
        return value.items.items
    return None


def _last(items: list[tuple[Any, Any]] | tuple[()], key: str) -> Any:
    """The last value the items hold for ``key`` (None when they hold none), as a dict keeps it."""
    found = None
    for k, v in items:
        if k == key:
            found = v
    return found


_OBSERVER_MIN: Final = "activation_post_process.min_val"
_MAX_FAKE_QUANT_KEYS: Final = 100_000
"""The state-dict keys (and flattened module tensors) searched for fake quantizers' observers."""
_MAX_MODULE_DEPTH: Final = 32


def _module_tensors(
    module: Any, prefix: str, sizes: dict[str, Any], flags: dict[str, dict[str, Any]], depth: int
) -> None:
    """Flatten a module saved whole as its ``state_dict()`` would name its tensors (``sizes``: key to size, None
    when the VM cannot size it), keeping each module's ``is_per_channel`` and ``ch_axis`` (``flags``, by prefix)."""
    state = _pairs_of(module.state) if type(module) is _Call and module.state is not None else None
    if state is None or depth > _MAX_MODULE_DEPTH or len(sizes) >= _MAX_FAKE_QUANT_KEYS:
        return
    own: dict[str, Any] = {}
    for key, value in state[:256]:
        if key in ("_parameters", "_buffers"):
            for name, tensor in (_pairs_of(value) or ())[:_MAX_OPTIMIZER_ITEMS]:
                if type(name) is str and tensor is not None:
                    sizes[prefix + name] = _tensor_size(tensor)
        elif key == "_modules":
            for name, child in (_pairs_of(value) or ())[:_MAX_OPTIMIZER_ITEMS]:
                if type(name) is str:
                    _module_tensors(child, f"{prefix}{name}.", sizes, flags, depth + 1)
        elif key in ("is_per_channel", "ch_axis"):
            own[key] = value
    if own:
        flags[prefix] = own


def _numel(size: Any) -> int | None:
    if type(size) is not tuple or not all(type(d) is int and d >= 0 for d in size):
        return None
    return math.prod(size)


def _fake_quant_problem(low: Any, high: Any, scale: Any, weight: Any, flags: dict[str, Any]) -> str | None:
    """What is wrong with a fake quantizer's running ``min_val`` (``low``) and ``max_val`` (``high``) sizes, given
    its scale's and the weight's sizes (None when absent or unsized) and, for a module saved whole, its
    ``is_per_channel``/``ch_axis``; None when nothing is (or the sizes cannot be read)."""
    n_low, n_high = _numel(low), _numel(high)
    if n_low is None or n_high is None:
        return None
    per_channel = flags.get("is_per_channel")
    if per_channel is False or (per_channel is None and len(low) == 0 and len(high) == 0):
        # per tensor: the op reads one element of each (0-d buffers as torch makes them)
        if n_low == 0 or n_high == 0:
            return f"of shapes {_short(low)} and {_short(high)} for a per-tensor quantizer (it reads one of each)"
        n_scale = _numel(scale)
        if per_channel is None and n_scale is not None and n_scale > 1:
            return f"of shapes {_short(low)} and {_short(high)} beside a per-channel scale of shape {_short(scale)}"
        return None
    if n_low == 0 and n_high == 0:
        return None  # not yet observed: the op sizes them on the first forward
    if n_low != n_high:
        return f"of shapes {_short(low)} and {_short(high)}"
    if type(weight) is tuple and weight and all(type(d) is int for d in weight):
        axis = flags.get("ch_axis")
        channels = (
            {weight[axis]}
            if type(axis) is int and 0 <= axis < len(weight)
            else {weight[0]} | ({weight[1]} if len(weight) > 1 else set())
        )
        if n_low not in channels:
            return f"of shape {_short(low)} for a weight of shape {_short(weight)}"
        return None
    n_scale = _numel(scale)
    if n_scale is not None and n_scale > 1 and n_scale != n_low:
        return f"of shape {_short(low)} beside a scale of shape {_short(scale)}"
    return None


def _tensor_size(value: Any) -> tuple[Any, ...] | None:
    """The size a tensor (or Parameter) rebuild gives, None when ``value`` is not one the VM can read."""
    for _ in range(3):
        if type(value) is not _Call or type(value.func) is not _Ref or type(value.args) is not tuple:
            return None
        if value.func.canon in _PARAMETER_REBUILDS and value.args:
            value = value.args[0]
            continue
        if value.func.canon in _TENSOR_REBUILDS and len(value.args) > 2 and type(value.args[2]) is tuple:
            return value.args[2]
        return None
    return None


_MAX_VOCABULARY: Final = 1 << 22
"""The largest ``vocab_size`` a watermarking logits processor is admitted with (4M tokens; real ones hold 300k)."""
_MAX_REGION_ENTRIES: Final = 1_000_000
"""The region entries of a SphericalVoronoi the VM reads (about six per point; more are left unverified)."""
_KD_MAX_NODES: Final = 1 << 24
_KD_MAX_DEPTH: Final = 10_000
"""Deeper trees are left unverified: the loader links the nodes recursively (a chain of 400,000 levels crashed
it); a tree SciPy builds is a few dozen levels deep, and its sliding-midpoint splits reach hundreds at most."""


def _transposed(shape: Any, axes: tuple[Any, ...]) -> Any:
    """The shape of protocol 5's ``_frombuffer(buffer, dtype, shape, 'K', axes)``: numpy 2 pickles an array that is
    neither C- nor F-contiguous (a transposed view, CloughTocher2DInterpolator's gradients) as its memory's shape and
    the ``transpose`` that gives its own."""
    if not axes or type(shape) is not tuple or type(axes[0]) is not tuple:
        return shape
    order = axes[0]
    if sorted(a for a in order if type(a) is int) != list(range(len(shape))) or len(order) != len(shape):
        return shape  # numpy's transpose refuses it: the loader stops
    return tuple(shape[a] for a in order)


def _float64(dtype: Any) -> bool:
    """A little-endian float64 dtype, as numpy pickles SciPy's point arrays."""
    if type(dtype) is not _Call or type(dtype.func) is not _Ref or dtype.func.canon not in _DTYPE_CTORS:
        return False
    state = dtype.state
    return (
        type(dtype.args) is tuple
        and bool(dtype.args)
        and dtype.args[0] in ("f8", "<f8", "float64")
        and type(state) is tuple
        and len(state) >= 2
        and state[1] in ("<", "=")
    )


def _bytes_dtype(dtype: Any) -> bool:
    """numpy's ``S1`` dtype (one raw byte an item), which SciPy's tree buffer has and copies byte for byte."""
    return (
        type(dtype) is _Call
        and type(dtype.func) is _Ref
        and dtype.func.canon in _DTYPE_CTORS
        and type(dtype.args) is tuple
        and bool(dtype.args)
        and dtype.args[0] in ("S1", "|S1")
    )


def _is_int64(dtype: Any) -> bool:
    """A little-endian int64 dtype, as numpy pickles ``intp`` arrays on 64-bit machines."""
    return _int_code(dtype) == "q"


def _int_code(dtype: Any) -> str | None:
    """The ``memoryview`` code of a little-endian int32 or int64 dtype ('i', 'q'), else None."""
    if type(dtype) is not _Call or type(dtype.func) is not _Ref or dtype.func.canon not in _DTYPE_CTORS:
        return None
    if type(dtype.args) is not tuple or not dtype.args:
        return None
    code = {"i8": "q", "<i8": "q", "int64": "q", "i4": "i", "<i4": "i", "int32": "i"}.get(dtype.args[0])
    state = dtype.state
    if code is None or type(state) is not tuple or len(state) < 2 or state[1] not in ("<", "=", "|"):
        return None
    return code


def _timed(chunks: Iterator[bytes], budget: _Budget) -> Iterator[bytes]:
    """The chunks, raising the time bound's error once the analysis is past its deadline."""
    for chunk in chunks:
        if time.monotonic() > budget.deadline:
            raise _LimitError("max_seconds", f"analysis took longer than {budget.limits.max_seconds}s")
        yield chunk


def _outside(views: Iterator[memoryview], bound: int) -> int | None:
    """The first out-of-range value found among the integers (not in ``0 .. bound - 1``), or None."""
    for view in views:
        if len(view):
            low, high = min(view), max(view)
            if low < 0 or high >= bound:
                return low if low < 0 else high
    return None


def _int_views(chunks: Iterator[bytes], code: str, budget: _Budget) -> Iterator[memoryview]:
    """The integers of an array's raw bytes, chunk by chunk (a value split between chunks is joined); the
    analysis' time bound is checked at each chunk."""
    for block in _records(_timed(chunks, budget), 8 if code == "q" else 4):
        view = memoryview(block)
        yield view.cast("q") if code == "q" else view.cast("i")


def _records(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    """The chunks' bytes regrouped into blocks of whole ``size``-byte records (a record split between chunks is
    joined; a partial record at the end is dropped: numpy refuses data of another size)."""
    rest = b""
    for chunk in chunks:
        data = rest + chunk
        whole = len(data) - len(data) % size
        rest = data[whole:]
        if whole:
            yield data[:whole]


_ARRAY_REBUILDS: Final = frozenset({"numpy.core.multiarray._reconstruct", "numpy.ma.core._mareconstruct"})
_NDARRAY_CLASSES: Final = frozenset(
    {
        "numpy.ndarray",
        "numpy.core.multiarray.ndarray",
        "numpy.matrix",
        "numpy.core.defmatrix.matrix",
        "numpy.matrixlib.defmatrix.matrix",
        "numpy.recarray",
        "numpy.rec.recarray",
        "numpy.core.records.recarray",
        "numpy.chararray",
        "numpy.char.chararray",
        "numpy.core.defchararray.chararray",
        "numpy.memmap",
        "numpy.core.memmap.memmap",
        "numpy.ma.MaskedArray",
        "numpy.ma.core.MaskedArray",
    }
)
"""Array classes whose instances take ``ndarray.__setstate__`` (or ``MaskedArray``'s, which hands it on) from a
BUILD, however the instance was made (``_reconstruct``, NEWOBJ, a call)."""
_PANDAS_SPARSE_INDEXES: Final = {
    "pandas._libs.sparse.IntIndex": ("IntIndex", 2),
    "pandas._libs.sparse.BlockIndex": ("BlockIndex", 3),
}
"""pandas' sparse index classes, as ``SparseArray`` pickles them (a call with their constructor's arguments)."""
_NODE_OWNERS: Final = frozenset(
    {"sklearn.tree._tree.Tree", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"}
)


_TRUSTED_STATE: Final = {
    **dict.fromkeys(
        (f"sklearn.svm._classes.{n}" for n in ("SVC", "NuSVC", "SVR", "NuSVR", "OneClassSVM")), "libsvm"
    ),
    "sklearn.neighbors._classification.KNeighborsClassifier": "labels",
    "sklearn.neighbors._classification.RadiusNeighborsClassifier": "labels",
    "sklearn.feature_extraction._hash.FeatureHasher": "hasher",
    # its transform builds a FeatureHasher from its own n_features and calls transform, which validates nothing
    "sklearn.feature_extraction.text.HashingVectorizer": "hasher",
    "sklearn.feature_extraction._dict_vectorizer.DictVectorizer": "vocabulary",
    "sklearn.preprocessing._encoders.OneHotEncoder": "onehot",
    **dict.fromkeys(
        (
            f"sklearn.ensemble._hist_gradient_boosting.gradient_boosting.{n}"
            for n in ("HistGradientBoostingRegressor", "HistGradientBoostingClassifier")
        ),
        "hgb",
    ),
    # SciPy's spline (SplineTransformer's bsplines_ hold them)
    "scipy.interpolate._bsplines.BSpline": "bspline",
    "scipy.interpolate._ndbspline.NdBSpline": "ndbspline",
    **dict.fromkeys(
        (
            f"scipy.interpolate.{module}.RegularGridInterpolator"
            for module in ("_rgi", "_interpolate", "interpolate")
        ),
        "grid",
    ),
    "scipy.stats._qmc.Sobol": "sobol",
    "scipy.stats._qmc.Halton": "halton",
    "scipy.spatial._spherical_voronoi.SphericalVoronoi": "spherical_voronoi",
    "transformers.generation.logits_process.WatermarkLogitsProcessor": "watermark",
    "scipy.optimize._constraints.NonlinearConstraint": "constraint",
    "sklearn.cluster._kmeans.KMeans": "kmeans",
    "sklearn.cluster._kmeans.MiniBatchKMeans": "kmeans",
    "sklearn.cluster._bisect_k_means.BisectingKMeans": "kmeans",
    "sklearn.ensemble._gb.GradientBoostingClassifier": "stages",
    "sklearn.ensemble._gb.GradientBoostingRegressor": "stages",
}
"""scikit-learn estimators (and SciPy objects they hold) whose compiled code trusts the shapes of their pickled
arrays (see ``_VM._trusted_state``)."""


_TRUSTED_CHECKS: Final[dict[str, tuple[Callable[[_VM, str, _Dict], str | None], str, str]]] = {
    "libsvm": (
        lambda vm, cls, state: vm._libsvm_problem(cls, state),
        "sklearn.svm:libsvm",
        "state with {}: libsvm's C code takes these counts as given and reads outside the arrays",
    ),
    "labels": (
        lambda vm, cls, state: vm._labels_problem(state),
        "sklearn.neighbors:labels",
        "state with {}: the class-mode Cython reductions read a label per training row and count it "
        "into a row of the classes' scores unchecked",
    ),
    "bspline": (
        lambda vm, cls, state: vm._bspline_problem(state),
        "scipy.interpolate:bspline",
        "state with {}: evaluating the spline reads the coefficients of each knot interval unchecked "
        "(the constructor's checks do not run on unpickling)",
    ),
    "ndbspline": (
        lambda vm, cls, state: vm._ndbspline_problem(state),
        "scipy.interpolate:ndbspline",
        "state with {}: evaluate_ndbspline walks the knots, degrees and index table it is given and reads "
        "the coefficients at them unchecked (the constructor's checks do not run on unpickling)",
    ),
    "onehot": (
        lambda vm, cls, state: vm._onehot_problem(state),
        "sklearn.preprocessing:onehot",
        "state with {}: transform builds a sparse array as wide as _n_features_outs adds up to, with each "
        "feature's columns from its categories, infrequent mapping and dropped category, which SciPy does "
        "not check, and densifying it writes at each column",
    ),
    "vocabulary": (
        lambda vm, cls, state: vm._vocabulary_problem(state),
        "sklearn.feature_extraction:vocabulary",
        "state with {}: transform builds a sparse matrix as wide as the vocabulary with each feature's "
        "column from it, which SciPy does not check, and densifying it writes at that column",
    ),
    "grid": (
        lambda vm, cls, state: vm._grid_problem(state),
        "scipy.interpolate:grid",
        "state with {}: the compiled linear evaluation (evaluate_linear_2d) reads the values at the grid "
        "indices it finds, unchecked",
    ),
    "sobol": (
        lambda vm, cls, state: vm._sobol_problem(state),
        "scipy.stats.qmc:sobol",
        "state with {}: the compiled _draw and _fast_forward read the direction numbers _sv and write "
        "_quasi for d dimensions at the column the point count selects, unchecked",
    ),
    "halton": (
        lambda vm, cls, state: vm._halton_problem(state),
        "scipy.stats.qmc:halton",
        "state with {}: the compiled scrambled Van der Corput loop reads each dimension's permutations at "
        "the point count's digits in its base, unchecked",
    ),
    "spherical_voronoi": (
        lambda vm, cls, state: vm._spherical_voronoi_problem(cls, state),
        "scipy.spatial:spherical_voronoi",
        "state with {}: the compiled sort_vertices_of_regions reads the simplices at each region's vertex "
        "indices unchecked",
    ),
    "constraint": (
        lambda vm, cls, state: vm._constraint_problem(state),
        "scipy.optimize:constraint",
        "state with {}: minimize calls the constraint's functions on its iterates",
    ),
    "watermark": (
        lambda vm, cls, state: vm._watermark_problem(state),
        "transformers.generation:watermark",
        "state with {}: every generation step draws a random permutation of vocab_size int64 values "
        "(torch.randperm), as large as the state says",
    ),
    "hgb": (
        lambda vm, cls, state: vm._known_categories_problem(state),
        "sklearn.ensemble:bitsets",
        "state with {}: predict maps a categorical split's feature to its row of known categories through "
        "an array of the bin mapper's features, unchecked",
    ),
    "hasher": (
        lambda vm, cls, state: vm._hasher_problem(state),
        "sklearn.feature_extraction:hasher",
        "state with {}: transform's Cython hashing takes each hash modulo n_features in C (a division by "
        "zero kills the process)",
    ),
    "kmeans": (
        lambda vm, cls, state: vm._centers_problem(cls, state),
        "sklearn.cluster:centers",
        "state with {}: the k-means Cython code indexes the centers with the input's columns unchecked",
    ),
    "stages": (
        lambda vm, cls, state: vm._stages_problem(state),
        "sklearn.ensemble:stages",
        "state with {}: predict_stages adds each stage's trees to that many columns of the raw "
        "predictions unchecked and writes outside them",
    ),
}
"""For each kind of ``_TRUSTED_STATE``: the check of the state (a problem, ``?...`` when a part cannot be read, or
None), the finding's subject and what the compiled code does with such a state (``{}``: the problem)."""
_LIBSVM_REGRESSORS: Final = frozenset({"SVR", "NuSVR", "OneClassSVM"})

_X_KEYS: Final = frozenset({"tree_", "estimators_", "_predictors"})
"""Attributes through which scikit-learn estimators hand their input rows, unchanged, to trees."""


def _array_bytes(data: Any) -> bytes | None:
    """The raw bytes of an array's pickled data: bytes, or protocol 2's ``_codecs.encode(text, 'latin1')`` (and
    ``bytes()``, how protocols 0-2 write empty bytes)."""
    if type(data) is bytes:
        return data
    if (
        type(data) is _Call
        and type(data.func) is _Ref
        and data.func.canon == "builtins.bytes"
        and data.args == ()
    ):
        return b""
    if (
        type(data) is _Call
        and type(data.func) is _Ref
        and data.func.canon == "_codecs.encode"
        and data.args
        and type(data.args[0]) is str
    ):
        try:
            return data.args[0].encode("latin-1")
        except UnicodeEncodeError:
            return None
    return None


def _array_chunks(data: Any) -> Iterator[bytes] | None:
    """The raw bytes of an array's pickled data in chunks, also when the data was too large to keep and can be
    read again from its stream; None when they cannot be had."""
    raw = _array_bytes(data)
    if raw is not None:
        return iter((raw,))
    if type(data) is _Big and data.kind == "bytes":
        return data.chunks()
    if (
        type(data) is _Call
        and type(data.func) is _Ref
        and data.func.canon in ("_codecs.encode", "codecs.encode")
        and type(data.args) is tuple
        and len(data.args) == 2
        and type(data.args[0]) is _Big
        and data.args[0].kind == "str"
        and _is_latin1(data.args[1])
    ):
        return _latin1_chunks(data.args[0])
    return None


def _is_latin1(name: Any) -> bool:
    if type(name) is not str:
        return False
    try:
        return codecs.lookup(name).name == "iso8859-1"
    except LookupError:
        return False


def _data_size(data: Any) -> tuple[int, int]:
    """Bounds on the raw size of an array's pickled data that ``_array_chunks`` reads: exact for bytes; for a
    large string, latin-1 characters take one or two bytes of its UTF-8."""
    raw = _array_bytes(data)
    if raw is not None:
        return len(raw), len(raw)
    if type(data) is _Big:
        return data.size, data.size
    big = data.args[0] if type(data) is _Call and type(data.args) is tuple and data.args else None
    if type(big) is _Big:
        return (big.size + 1) // 2, big.size
    return 0, 0


def _latin1_chunks(big: _Big) -> Iterator[bytes] | None:
    """A large string's text, decoded as it was stored and encoded as latin-1 (``_codecs.encode(text,
    'latin1')``), in chunks; a character outside latin-1 raises ValueError (the loader fails there too)."""
    chunks = big.chunks()
    if chunks is None:
        return None
    decoder = codecs.getincrementaldecoder(big.encoding)("surrogatepass")

    def encoded() -> Iterator[bytes]:
        for chunk in chunks:
            yield decoder.decode(chunk).encode("latin-1")
        yield decoder.decode(b"", final=True).encode("latin-1")

    return encoded()


class _NodeCheck:
    """Tree node records, checked as scikit-learn's hardened ``__setstate__`` checks them (PR 34558): a node is
    a leaf or has a feature index of 0 or more and two children that are later nodes of the array, and (for
    ``Tree``) no node is the child of two nodes. Fed in chunks; only two bytes per node are held (a ``Tree``
    node's depth, 0 while it has no parent). Also keeps the largest feature index an internal node reads, to be
    checked against the number of features, and (``Tree``) the depth of the deepest node, which ``decision_path``
    trusts the tree's ``max_depth`` for."""

    def __init__(self, count: int, layout: _NodeLayout) -> None:
        self.layout = layout
        self.count = count
        self.index = 0
        # who is whose child matters for Tree only (a histogram predictor's child ids are checked for range);
        # each node's depth (a child's is at least 1, so 0 says it has no parent yet), saturating at 65535
        self.parent = (
            array.array("H", bytes(2 * count)) if layout.kind == "tree" and count <= 1 << 26 else None
        )
        # the deepest node's depth (Tree only); None when the tree is too large to follow or deeper than 65534
        self.depth: int | None = 0 if self.parent is not None else None
        self.rest = b""
        self.size = 0
        self.problem: str | None = None
        self.max_feature = -1
        # the largest bitset row a categorical split of a histogram predictor reads (see _VM._node_owner), and
        # the largest feature such a split reads (see _VM._known_categories_problem)
        self.max_bitset = -1
        self.max_categorical = -1

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.problem is not None:
            return
        data = self.rest + data
        whole = len(data) - len(data) % self.layout.itemsize
        self.rest = data[whole:]
        i, count, parent = self.index, self.count, self.parent
        pick = self.layout.pick
        at_left, at_right, at_feature = pick[0], pick[1], pick[2]
        at_leaf = pick[3] if len(pick) > 3 else None
        at_categorical = pick[4] if len(pick) > 5 else None
        top, top_bitset, depth = self.max_feature, self.max_bitset, self.depth or 0
        top_categorical = self.max_categorical
        for values in self.layout.record.iter_unpack(data[:whole]):
            left, right = values[at_left], values[at_right]
            if at_leaf is None:
                if left == -1 and right == -1:
                    i += 1
                    continue
            elif values[at_leaf]:
                i += 1
                continue
            if not (i < left < count and i < right < count) or left == right:
                self.problem = f"node {i} whose children ({left}, {right}) are not later nodes of the {count}"
                break
            feature = values[at_feature]
            if feature < 0:
                self.problem = f"internal node {i} with feature index {feature}"
                break
            if feature > top:
                top = feature
            if at_categorical is not None and values[at_categorical]:
                bitset = values[pick[5]]
                if bitset > top_bitset:
                    top_bitset = bitset
                if feature > top_categorical:
                    top_categorical = feature
            if parent is not None:
                if parent[left] or parent[right]:
                    self.problem = f"a node that is the child of two nodes (at node {i})"
                    break
                below = parent[i] + 1 if parent[i] < 0xFFFF else 0xFFFF
                parent[left] = parent[right] = below
                if below > depth:
                    depth = below
            i += 1
        self.index = i
        self.max_feature = top
        self.max_bitset = top_bitset
        self.max_categorical = top_categorical
        if self.depth is not None:
            self.depth = depth if depth < 0xFFFF else None
        if self.problem is not None or i >= count:
            self.parent = None  # the check is kept for the tree taking the array: not its byte per node

    def complete(self) -> bool:
        """Whether the bytes fed were exactly the array's."""
        return self.size == self.count * self.layout.itemsize


_NPY_POINTER_FLAGS: Final = 0x07
"""``NPY_ITEM_REFCOUNT | NPY_LIST_PICKLE | NPY_ITEM_IS_POINTER``: set by numpy only on dtypes that hold objects."""


def _list_pickled(dtype: Any) -> bool:
    """Whether numpy pickles arrays of ``dtype`` as a list of items (``NPY_LIST_PICKLE``): dtypes that hold
    objects, and any dtype whose state sets that flag. A dtype the scanner cannot read counts as one."""
    if type(dtype) is not _Call or type(dtype.func) is not _Ref or dtype.func.canon not in _DTYPE_CTORS:
        return True
    if _dtype_has_object(dtype):
        return True
    state = dtype.state
    if type(state) is tuple and len(state) >= 8 and not (type(state[0]) is int and state[0] < 3):
        return type(state[7]) is not int or bool(state[7] & _NPY_LIST_PICKLE)
    return False


_OBJECT_SPEC: Final = r"[|<>=]?O\d*"


def _dtype_has_object(dtype: Any, state: Any = None, depth: int = 0) -> bool:
    """Whether a symbolic ``numpy.dtype(spec, ...)`` (with its BUILD ``state``) holds Python objects: an object
    spec, or fields or a sub-array whose dtype does (as numpy computes it when it builds such a dtype)."""
    if depth > 8 or type(dtype) is not _Call or type(dtype.func) is not _Ref:
        return False
    if dtype.func.canon not in _DTYPE_CTORS or not dtype.args:
        return False
    spec = dtype.args[0]
    if type(spec) is str and re.fullmatch(_OBJECT_SPEC, spec):
        return True
    if type(spec) is _Ref and _SCALAR_TYPES.get(spec.canon, ("", 0))[0] == "O":
        return True
    if type(spec) is _Call:
        return _dtype_has_object(spec, state, depth + 1)  # numpy.dtype(d) is d
    state = dtype.state if state is None else state
    if type(state) is not tuple or len(state) < 5:
        return False
    subarray, fields = state[2], _fields_table(state[4])
    if type(subarray) is tuple and subarray and _dtype_has_object(subarray[0], None, depth + 1):
        return True
    if type(fields) is _Dict:
        for _, field in fields.items:
            if type(field) is tuple and field and _dtype_has_object(field[0], None, depth + 1):
                return True
    return False


def _rebuilt_pattern_class(value: Any) -> _Ref | None:
    """The class of ``value`` when it is an instance of a class allowed by name pattern only (or of a user's
    class), however it was built."""
    if type(value) is not _Call or type(value.func) is not _Ref:
        return None
    cls: Any = value.func
    if cls.canon in ("copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"):
        cls = value.args[0] if value.args else None
    if type(cls) is _Ref and (cls.by_pattern or cls.user_class):
        return cls
    return None


def _slice_args(key: Any) -> tuple[int | None, ...] | None:
    """The constant arguments of a ``builtins.slice(...)`` call the pickle made, else None."""
    if not (type(key) is _Call and type(key.func) is _Ref and key.func.canon == "builtins.slice"):
        return None
    args = key.args
    if not (type(args) is tuple and 1 <= len(args) <= 3 and all(a is None or type(a) is int for a in args)):
        return None
    if len(args) == 3 and args[2] == 0:
        return None  # slice step cannot be zero: the loader fails
    return args


def _number(value: Any) -> bool:
    """A number constant of the pickle (int, float, bool) or None."""
    return value is None or type(value) is int or type(value) is float or type(value) is bool


# classes whose call hands back a cached instance but whose __new__ (NEWOBJ) makes a new one (see _shared_target)
_FRESH_BY_NEWOBJ: Final = frozenset({"dateutil.tz.tz.tzutc", "dateutil.tz.tz.tzoffset"})


def _categories_verdict(top: int, known: tuple[int, bool]) -> str | None:
    """Whether categorical splits reading features up to ``top`` fit a bin mapper of ``known`` (its feature
    count, whether it has a categorical feature); see ``_VM._known_categories_problem``."""
    if top >= known[0]:
        return f"a categorical split on feature {top} of the bin mapper's {known[0]}"
    if not known[1]:
        return f"a categorical split on feature {top} with no categorical feature in the bin mapper"
    return None


def _state_item(obj: Any, key: str) -> Any:
    """An item of the BUILD state dict of an object the analysis built (``_UNKNOWN`` if there is none yet)."""
    if type(obj) is not _Call or type(obj.state) is not _Dict:
        return _UNKNOWN
    return obj.state.get(key)


def _instance_class(obj: _Call) -> str | None:
    """The class of an instance built by ``cls(...)``, ``cls.__new__`` (NEWOBJ) or ``copyreg`` helpers."""
    func = obj.func
    if type(func) is not _Ref:
        return None
    if func.canon in ("copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__"):
        first = obj.args[0] if obj.args else None
        return first.canon if type(first) is _Ref else None
    return func.canon


_REMOVABLE_HANDLE: Final = "torch.utils.hooks.RemovableHandle"
_DATA_LOADER: Final = "torch.utils.data.dataloader.DataLoader"
_LOADER_COLLATES: Final = frozenset(
    {"torch.utils.data._utils.collate.default_collate", "torch.utils.data._utils.collate.default_convert"}
)
"""The collate functions a DataLoader sets itself (``default_collate`` when batching, ``default_convert`` not)."""


_RNG_CLASSES: Final = frozenset(
    {
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._mt19937.MT19937",
        "numpy.random._philox.Philox",
    }
)
"""The numpy random classes whose ``__setstate__`` (or ``state`` setter) reaches an index ``_RNG_INDEXES`` bounds, as
the result of ``_RNG_CTORS`` does (a SeedSequence's or another generator's state holds no index)."""
_RNG_INDEXES: Final = {"MT19937": (("state", "pos"), 624), "Philox": (("buffer_pos",), 4)}
"""numpy bit generators whose state holds an index their C code trusts: MT19937 draws ``key[pos++]`` (624 words;
``pos == 624`` regenerates them), Philox ``buffer[buffer_pos]`` while ``buffer_pos < 4`` (a negative one too). The
state setters store the integer unchecked (numpy 2.4: a pickled RandomState, Generator or MT19937/Philox with another
index loads, and its first draw dies of SIGSEGV). The path is the keys from the top of the state dict."""


def _rng_state_problem(state: Any) -> str | None:
    """What is wrong with a numpy random state (``BitGenerator.__setstate__``'s ``(state, seed_seq)`` or dict, or
    ``RandomState.set_state``'s legacy tuple ``("MT19937", key, pos, has_gauss, gauss)``); a leading ``?`` says it
    could not be read. Forms numpy refuses (a missing key, a value of the wrong type) are no problem: it raises."""
    if type(state) is tuple and state:
        if type(state[0]) is str:
            return _rng_index(state[0], state[2] if len(state) > 2 else None, 624)
        state = state[0]
    if state is None or type(state) in (str, bytes, int, float, bool, list):
        return None  # numpy's setters raise on these
    if type(state) is not _Dict:
        return "?a random state computed at load time"
    name = _complete_get(state, "bit_generator")
    if name is None or (type(name) is str and name not in _RNG_INDEXES):
        return None
    if type(name) is not str:
        return "?a random state whose bit generator name is computed at load time"
    path, limit = _RNG_INDEXES[name]
    value: Any = state
    for key in path:
        if type(value) is not _Dict:
            return (
                None
                if value is None or type(value) in (str, bytes, int, float, list, tuple)
                else "?a state part"
            )
        value = _complete_get(value, key)
        if value is None:
            return None
        if value is _UNKNOWN:
            return f"?the {key!r} of a random state the scanner cannot read"
    return _rng_index(name, value, limit)


def _complete_get(mapping: _Dict, key: str) -> Any:
    """``mapping[key]``; None when the key is not there (numpy raises KeyError); unknown when the dict's items are
    not all known."""
    if mapping.hidden or mapping.size != len(mapping.items):
        return _UNKNOWN
    if not any(type(k) is str and k == key for k, _ in mapping.items):
        return None
    return mapping.get(key)


def _numpy_int(value: Any) -> int | None:
    """An int, or a numpy int scalar as pickle writes it (``numpy.core.multiarray.scalar(dtype, raw bytes)``), as an
    int; None for anything else."""
    if type(value) is int:
        return value
    if (
        type(value) is not _Call
        or type(value.func) is not _Ref
        or not value.func.canon.endswith("multiarray.scalar")
    ):
        return None
    args = value.args
    if type(args) is not tuple or len(args) != 2:
        return None
    code = _int_code(args[0])
    raw = _array_bytes(args[1])
    if code is None or raw is None or len(raw) != struct.calcsize(code):
        return None
    return int(struct.unpack("<" + code, raw)[0])


def _rng_index(name: str, value: Any, limit: int) -> str | None:
    """The index ``value`` of bit generator ``name`` against its bound (None: fine, or numpy refuses it)."""
    if name not in _RNG_INDEXES:
        return None
    if type(value) is bool or value is None or type(value) in (str, bytes, float, list, tuple):
        return None  # bool is 0 or 1; the others numpy refuses
    value = _numpy_int(value)  # an int, or a numpy integer scalar (numpy stores it as its int)
    if value is None:
        return f"?the index of a {name} state computed at load time"
    if 0 <= value <= limit:
        return None
    return f"{name} index {value} (valid: 0 to {limit})"


def _constant_item(args: tuple[Any, ...]) -> Any:
    """``operator.getitem(container, key)`` of a tuple or list with an int key, or a dict with a constant key the
    analysis holds: the element itself; ``_UNKNOWN`` for anything else."""
    if len(args) != 2:
        return _UNKNOWN
    container, key = args
    if type(container) in (tuple, list) and type(key) is int and -len(container) <= key < len(container):
        return container[key]
    if (
        type(container) is _Dict
        and not container.hidden
        and container.size == len(container.items)  # no items dropped past the container bound
        and type(key) in _CONSTANT_KEYS
    ):
        return container.get(key)
    return _UNKNOWN


def _tuple_setstate(obj: Any) -> bool:
    """Whether a BUILD on ``obj`` calls a ``__setstate__`` that reads its own tuple and sets no attribute from it:
    numpy's array classes (``ndarray``'s C one, or ``MaskedArray``'s, which hands it on) and pandas' block
    managers (``(axes, values, items, {'0.14.1': ...})``). Their state is no ``__dict__`` update, so the pairs in
    it (an object array of two elements is a 2-item list, a DataFrame's axes are columns and index) name nothing.
    A ``_reconstruct`` of a class of another module keeps that class's ``__setstate__``, and is judged."""
    if type(obj) is not _Call or type(obj.func) is not _Ref:
        return False
    if obj.func.canon in _ARRAY_REBUILDS:
        first = obj.args[0] if obj.args else None
        return type(first) is _Ref and first.canon in _NDARRAY_CLASSES
    cls = _instance_class(obj)
    return cls in _NDARRAY_CLASSES or cls in _PANDAS_MANAGERS


def _rebuild_kind(obj: _Call) -> str | None:
    """``"dtype"`` or ``"ndarray"`` for an object whose BUILD numpy's ``__setstate__`` applies in place;
    ``"checked"`` for a SciPy sparse matrix, a scikit-learn object (a tree, an estimator) or a pandas
    ``CategoricalDtype``, whose BUILD state is judged as a whole (or bounds what is judged against it)."""
    func = obj.func
    if type(func) is not _Ref:
        return None
    if func.canon in _DTYPE_CTORS:
        return "dtype"
    if func.canon in _ARRAY_REBUILDS:
        return "ndarray"
    cls = _instance_class(obj)
    if cls in _NDARRAY_CLASSES:
        return "ndarray"
    if cls is not None and (
        cls.startswith(("scipy.sparse.", "sklearn.")) or cls in _CATEGORICAL_DTYPES or cls in _SCIPY_CHECKED
    ):
        # judged on its BUILD state (see _VM._rebuilt); a pandas CategoricalDtype bounds the codes of the
        # Categoricals checked against it, which keep the dtype object itself; a second BUILD of a SciPy object
        # whose state is checked would merge into its __dict__ what its check never saw together
        return "checked"
    return None


_CATEGORICALS: Final = frozenset({"pandas.Categorical", "pandas.core.arrays.categorical.Categorical"})
_CATEGORICAL_DTYPES: Final = frozenset(
    {"pandas.CategoricalDtype", "pandas.core.dtypes.dtypes.CategoricalDtype"}
)


def _categorical(obj: _Call, cls: str | None) -> bool:
    """A pandas ``Categorical`` being given its state: ``__pyx_unpickle_NDArrayBacked(Categorical, ...)`` as pandas
    pickles it, or the class made by NEWOBJ or copyreg (an older pandas' ``__dict__`` state)."""
    if cls in _CATEGORICALS:
        return True
    func = obj.func
    return (
        type(func) is _Ref
        and func.canon == "pandas._libs.arrays.__pyx_unpickle_NDArrayBacked"
        and bool(obj.args)
        and type(obj.args[0]) is _Ref
        and obj.args[0].canon in _CATEGORICALS
    )


def _small_int_code(dtype: Any) -> Literal["b", "h", "i", "q"] | None:
    """The ``memoryview`` code of a little-endian (or one-byte) signed integer dtype, as pandas keeps codes."""
    if type(dtype) is not _Call or type(dtype.func) is not _Ref or dtype.func.canon not in _DTYPE_CTORS:
        return None
    if type(dtype.args) is not tuple or not dtype.args:
        return None
    codes: dict[str, Literal["b", "h", "i", "q"]] = {"i1": "b", "i2": "h", "i4": "i", "i8": "q"}
    code = codes.get(str(dtype.args[0]).lstrip("<|="))
    state = dtype.state
    if code is None or type(state) is not tuple or len(state) < 2 or state[1] not in ("<", "=", "|"):
        return None
    return code


_OBJECT_SPECS: Final = frozenset({"O", "O8", "|O", "|O8", "object"})
"""Spellings of numpy's object dtype (``np.dtype(spec)``, a ``_reconstruct`` typecode)."""


def _zero_filled(dtype: Any, depth: int = 0) -> bool:
    """Whether numpy zero-fills the elements of an array it allocates with ``dtype`` (the dtype argument that
    follows the shape): numpy's object dtype carries ``NPY_NEEDS_INIT``, so ``ndarray.__new__``, ``_reconstruct``
    and ``_mareconstruct`` calloc its slots, which read back as None. A dtype rebuilt from a pickle has the flags
    its BUILD state gave it (numpy takes them as they are, see ``_VM._dtype_state``): the allocation is zeroed only
    if they hold ``NPY_NEEDS_INIT`` when it is made. Structured dtypes and anything else stay unfilled (reported)."""
    kind = type(dtype)
    if kind is str:
        return dtype in _OBJECT_SPECS
    if kind is bytes:
        return dtype.decode("latin-1") in _OBJECT_SPECS
    if kind is _Ref:
        return dtype.canon in ("builtins.object", "numpy.object_")
    if (
        kind is not _Call
        or type(dtype.func) is not _Ref
        or dtype.func.canon not in _DTYPE_CTORS
        or not dtype.args
    ):
        return False
    spec = dtype.args[0]
    if type(spec) is _Call:
        return depth < 8 and _zero_filled(spec, depth + 1)  # numpy.dtype(d) is d itself
    if not _zero_filled(spec, depth + 1):
        return False
    state = dtype.state
    if state is None:
        return True  # numpy's own flags for the object dtype (0x3F)
    return (
        type(state) is tuple
        and len(state) >= 8
        and type(state[7]) is int
        and bool(state[7] & _NPY_NEEDS_INIT)
    )


_ARRAY_ALLOCATORS: Final[dict[str, tuple[int, int | None, tuple[str, ...]]]] = {
    # name: where the shape comes among the arguments, where the buffer (None: no buffer), its keyword names
    **dict.fromkeys(("numpy.ndarray", "numpy.core.multiarray.ndarray"), (0, 2, ("buffer",))),
    **dict.fromkeys(
        ("numpy.recarray", "numpy.rec.recarray", "numpy.core.records.recarray"), (0, 2, ("buf",))
    ),
    **dict.fromkeys(
        ("numpy.chararray", "numpy.char.chararray", "numpy.core.defchararray.chararray"), (0, 3, ("buffer",))
    ),
    "numpy.core.multiarray._reconstruct": (1, None, ()),
    "numpy.ma.core._mareconstruct": (2, None, ()),
}
"""numpy's allocating constructors: ``ndarray.__new__(cls, shape, dtype, buffer, ...)`` and its subclasses' (whose
elements are left as they were in memory unless a buffer is given), and the reconstructors numpy's pickles call."""


def _holds(value: Any, obj: Any, depth: int, budget: list[int]) -> bool:
    """Whether ``obj`` is ``value`` or among what it holds (items of tuples, lists and dicts, arguments and
    states of calls), within a depth and an item budget."""
    if value is obj:
        return True
    budget[0] -= 1
    if depth > 12 or budget[0] < 0:
        return False
    t = type(value)
    if t is tuple or t is list:
        return any(_holds(v, obj, depth + 1, budget) for v in value)
    if t is _Dict:
        return any(_holds(v, obj, depth + 1, budget) for _, v in value.items)
    if t is _Call:
        return _holds(value.args, obj, depth + 1, budget) or _holds(value.state, obj, depth + 1, budget)
    return False


def _empty_made(obj: _Call) -> bool:
    """Whether an array was made with no elements (``_reconstruct(cls, (0,), b"b")``, as numpy pickles every
    array; ``_mareconstruct`` likewise): no view of it reaches memory that its first BUILD could free."""
    args = obj.args
    if type(obj.func) is not _Ref or type(args) is not tuple:
        return False
    at = {"numpy.core.multiarray._reconstruct": 1, "numpy.ma.core._mareconstruct": 2}.get(obj.func.canon)
    if at is None or len(args) <= at:
        return False
    shape = args[at]
    dims = (shape,) if type(shape) is int else shape
    return type(dims) is tuple and any(type(d) is int and d == 0 for d in dims)


def _bounded_decompress(name: str, data: bytes) -> bytes | None:
    if name == "zlib.decompress":
        import zlib

        d = zlib.decompressobj()
        out = d.decompress(data, _MAX_NESTED_BYTES)
        return out if not d.unconsumed_tail else None
    return None


# --- driver ------------------------------------------------------------------------------------------------


def _analyze_reader(
    reader: _Reader,
    coll: _Collector,
    budget: _Budget,
    *,
    depth: int,
    joblib: bool,
    origin: str,
    stacked: bool,
    max_pickles: int | None,
    resync: bool = True,
    prefix: bool = False,
    ext_stops: bool = False,
) -> int:
    """Analyse consecutive pickles from ``reader``; returns how many were analysed. Errors go to ``coll``.

    ``resync``: after a malformed pickle, search the rest for hidden pickles (always, except when a caller asks
    only what a loader starting at the first byte would reach). ``prefix``: the bytes belong to another format
    and only what a loader runs before its first error counts (see ``_VM.prefix``); an error ends the reading
    without a finding."""
    count = 0
    limits = budget.limits
    while True:
        # Checked per pickle too: a stream of many tiny pickles never reaches the in-loop periodic check.
        if budget.opcodes > limits.max_opcodes:
            coll.unverified.append(f"limit max_opcodes: more than {limits.max_opcodes} opcodes")
            return count
        if time.monotonic() > budget.deadline:
            coll.unverified.append(f"limit max_seconds: analysis took longer than {limits.max_seconds}s")
            return count
        start = reader.tell()
        if reader.n - reader.p < 1 and not reader.fill(1):
            if count == 0 and not prefix:
                coll.unverified.append("empty stream: no pickle")
            return count
        first = reader.buf[reader.p]
        vm = _VM(
            reader,
            coll,
            budget,
            depth=depth,
            joblib=joblib,
            origin=origin,
            prefix=prefix,
            ext_stops=ext_stops,
        )
        # what a loader reads as a pickle (not bytes after the last one, reported as trailing data below)
        vm.read_on = count == 0 or first == 0x80
        try:
            vm.run()
        except _MalformedError as exc:
            if exc.region:
                # another loader's reading of the same bytes runs what this one took as an argument: search it
                region = _Reader(io.BytesIO(exc.region), exc.offset + len(exc.region))
                region.base = exc.offset  # offsets of what it finds are the file's
                _resync(region, 0, coll, budget, depth, origin)
            if prefix:
                return count  # the loader stops at its first error: nothing after it runs
            if count == 0 or first == 0x80:
                where = f" (in {origin})" if origin else ""
                coll.unverified.append(f"malformed pickle at offset {exc.offset}{where}: {exc}")
                coll.hit(
                    RULE_MALFORMED,
                    Severity.MEDIUM,
                    "malformed",
                    f"malformed pickle: {exc}; opcodes before this point were analysed",
                    exc.offset,
                    {"error": str(exc), "calls_before": vm.calls} | ({"nested_in": origin} if origin else {}),
                )
            else:
                coll.hit(
                    RULE_TRAILING,
                    Severity.INFO,
                    "trailing-data",
                    "bytes after the last pickle that are not a pickle; searched for hidden pickles",
                    start,
                    {},
                )
            if resync:
                _resync(reader, start + 1, coll, budget, depth, origin)
            return count + 1
        except _LimitError as exc:
            coll.unverified.append(f"limit {exc.bound}: {exc}")
            return count + 1
        count += 1
        if max_pickles is not None and count >= max_pickles:
            return count
        if not stacked:
            return count
        if reader.n - reader.p < 1 and not reader.fill(1):
            return count


def _resync(reader: _Reader, start: int, coll: _Collector, budget: _Budget, depth: int, origin: str) -> None:
    """After a broken stream: search the remaining bytes for further pickles and analyse each candidate."""
    pattern = re.compile(rb"\x80[\x02-\x05]|c[A-Za-z_][\w.]{0,200}\n[A-Za-z_][\w.]{0,200}\n")
    window = 8 * _CHUNK
    candidates = 0
    # Continue from the byte after the broken pickle's start; earlier bytes were the broken pickle itself.
    if reader.tell() < start:
        try:
            reader.skip(start - reader.tell())
        except (_TruncatedError, _LimitError):
            return
    while True:
        try:
            if not reader.fill(window) and reader.n - reader.p == 0:
                return
        except _LimitError as exc:
            coll.unverified.append(f"limit {exc.bound}: {exc}")
            return
        if time.monotonic() > budget.deadline:
            coll.unverified.append(
                f"limit max_seconds: analysis took longer than {budget.limits.max_seconds}s"
            )
            return
        data = reader.buf[reader.p :]
        base = reader.tell()
        window_io = io.BytesIO(data)
        for m in pattern.finditer(data):
            candidates += 1
            if candidates > _RESYNC_MAX_CANDIDATES:
                coll.unverified.append("limit resync: too many pickle-like fragments after a broken pickle")
                return
            if time.monotonic() > budget.deadline:
                coll.unverified.append(
                    f"limit max_seconds: analysis took longer than {budget.limits.max_seconds}s"
                )
                return
            sub = _Collector(coll.location, coll.allow)
            # Offsets of the fragment are relative to its start; small reads keep each attempt cheap.
            window_io.seek(m.start())
            sub_reader = _Reader(window_io, len(data), chunk=1 << 16)
            vm = _VM(sub_reader, sub, budget, depth=depth, joblib=False, origin=origin)
            with contextlib.suppress(_MalformedError, _LimitError):
                vm.run()
            # Keep what the fragment reached; offsets are made absolute.
            for (rule, subject), (sev, msg, off, cnt, ev) in sub.hits.items():
                ev2 = dict(ev)
                ev2["resynchronised"] = True
                coll.hit(rule, sev, subject, msg, base + m.start() + off, ev2)
                coll.hits[(rule, subject)][3] += cnt - 1
            coll.callables |= sub.callables
        if reader.eof and reader.n - reader.p <= len(data):
            reader.p = reader.n
            return
        # Slide the window, keeping an overlap so that a GLOBAL split across windows is still seen.
        keep = 512
        advance = max(1, len(data) - keep)
        reader.p += advance
        if reader.eof and reader.n - reader.p <= keep:
            reader.p = reader.n
            return


def analyze_pickle(
    stream: IO[bytes],
    *,
    location: Location,
    limits: Limits,
    allow: AllowList,
    stacked: bool = True,
    max_pickles: int | None = None,
    joblib: bool = False,
    resync: bool = True,
    prefix: bool = False,
    ext_stops: bool = False,
) -> PickleResult:
    """Analyse the pickle stream(s) read from ``stream`` without loading anything.

    ``stacked`` keeps reading further pickles after each STOP until the end; ``max_pickles`` stops after
    that many
    (legacy torch files: five pickles, then raw storage bytes); ``joblib`` skips the raw array bytes joblib
    writes
    after each ``NumpyArrayWrapper`` and analyses its in-stream object-array pickles. ``prefix``: the stream
    is another format's bytes; only what a loader runs before its first error is reported, and nothing
    about where it fails (see ``_analyze_reader``). ``ext_stops``: an EXT opcode ends the reading as a malformed
    pickle, as in a stock interpreter, whose extension registry is empty.
    """
    coll = _Collector(location, allow)
    budget = _Budget(limits)
    reader = _Reader(stream, limits.max_file_bytes)
    # The analysis allocates many small containers and creates no reference cycles worth collecting while it
    # runs: pausing the cyclic collector saves about a fifth of the time on object-heavy pickles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        count = _analyze_reader(
            reader,
            coll,
            budget,
            depth=0,
            joblib=joblib,
            origin="",
            stacked=stacked,
            max_pickles=max_pickles,
            resync=resync,
            prefix=prefix,
            ext_stops=ext_stops,
        )
    except _LimitError as exc:
        coll.unverified.append(f"limit {exc.bound}: {exc}")
        count = 1
    except (OSError, EOFError, ValueError) as exc:
        # The stream itself failed (a decompressor error, a closed file): what was read is reported.
        coll.unverified.append(f"stream error after {reader.tell()} bytes: {type(exc).__name__}: {exc}")
        count = 1
    except RecursionError:
        coll.unverified.append("limit max_depth: values nested too deeply to analyse")
        count = 1
    except ResourceLimitExceeded as exc:  # a bound of the stream under the pickle (decompression ratio ...)
        coll.unverified.append(str(exc))
        count = 1
    except Exception as exc:  # noqa: BLE001 - fail closed: an analyser bug must never make a file pass
        coll.unverified.append(f"internal error in pickle analysis: {type(exc).__name__}: {exc}")
        count = 1
    finally:
        if gc_was_enabled:
            gc.enable()
    unverified = "; ".join(dict.fromkeys(coll.unverified)) if coll.unverified else None
    return PickleResult(
        findings=coll.findings(),
        unverified=unverified,
        callables=tuple(sorted(coll.callables)),
        pickles=count,
        consumed=reader.tell(),
        storages=(*((k, n, size) for k, (n, size) in coll.storages.items()), *coll.redeclared),
        sparse=tuple(coll.sparse),
        storage_infos=tuple(
            e for _, f in coll.storage_infos.values() if (e := _storage_entry(f)) is not None
        ),
    )


def analyze_pickle_bytes(
    data: bytes,
    *,
    location: Location | None = None,
    limits: Limits | None = None,
    allow: AllowList | None = None,
    **kwargs: Any,
) -> PickleResult:
    """Convenience wrapper over :func:`analyze_pickle` for in-memory data (tests, fuzzing)."""
    return analyze_pickle(
        io.BytesIO(data),
        location=location or Location("<bytes>"),
        limits=limits or Limits(),
        allow=allow or _default_allow(),
        **kwargs,
    )


_DEFAULT_ALLOW: list[AllowList] = []


def _default_allow() -> AllowList:
    if not _DEFAULT_ALLOW:
        _DEFAULT_ALLOW.append(AllowList.default())
    return _DEFAULT_ALLOW[0]


_FUZZ_LIMITS: Final = Limits(max_opcodes=200_000, max_seconds=5.0, max_depth=4)


def fuzz_one(data: bytes) -> None:
    """Fuzz target: analysis must return a result, and a stream that failed to parse is never clean.

    Raises ``AssertionError`` only when the invariant is broken; any other exception is a bug.
    """
    import pickletools

    result = analyze_pickle_bytes(data, limits=_FUZZ_LIMITS)
    assert isinstance(result, PickleResult)
    assert "internal error" not in (result.unverified or ""), result.unverified
    failure: str | None = None
    try:
        for ops, _ in enumerate(pickletools.genops(io.BytesIO(data))):
            if ops > 100_000:
                break
    except Exception as exc:  # noqa: BLE001 - any failure of the reference parser means "did not parse"
        failure = str(exc)
    # pickletools is stricter than CPython's unpickler in two places, which are not parse failures: INT/LONG
    # lines (int(s) against CPython's int(s, 0)) and non-ASCII STRING/GLOBAL text (ASCII against latin-1 for
    # loaders such as numpy's, UTF-8 for names).
    lenient = ("invalid literal for int()", "'ascii' codec can't decode")
    if failure is not None and not any(m in failure for m in lenient):
        assert result.unverified is not None or result.findings, (
            f"unparseable stream reported clean: {failure}"
        )
