"""A loader-side oracle for the pickle analysis: what the real unpickler resolves, with nothing imported or run.

``resolved_names`` runs pickle.load's C unpickler with a ``find_class`` that records each (module, name) and hands
back an inert stub; ``torch_resolved_names`` runs ``torch.load(weights_only=False)`` on a zip through that
unpickler, so torch's own zip reader picks the record. A scan that calls an input clean although the real loader
resolves a callable the allow-list does not allow is a differential between the scanner and the loader.
``CallProgram`` writes pickles that reach allowed and dangerous callables by every naming and calling route.
``real_load`` and ``crashing`` run the real loader (numpy's C code included) in forked children to find inputs
that crash it. Used by tests/corpus/test_loader_oracle.py and bench/fuzz_models.py.
"""

from __future__ import annotations

import contextlib
import faulthandler
import io
import os
import pickle
import random
import select
import signal
import struct
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


class _Stopped(Exception):
    pass


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped


def bounded(load: Callable[[], object], seconds: float) -> None:
    """Run ``load`` for at most ``seconds``; any stop of the loader (an error, STOP, the bound) ends it."""
    previous = signal.signal(signal.SIGALRM, _stop)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            load()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except KeyboardInterrupt:
        raise
    except BaseException:  # what the loader resolved before it stopped is what counts
        pass
    finally:
        signal.signal(signal.SIGALRM, previous)


_DANGEROUS = [
    ("os", "system"),
    ("posix", "system"),
    ("nt", "system"),
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("__builtin__", "eval"),
    ("builtins", "getattr"),
    ("builtins", "__import__"),
    ("subprocess", "Popen"),
    ("importlib", "import_module"),
    ("operator", "attrgetter"),
    ("functools", "partial"),
    ("runpy", "run_path"),
    ("pty", "spawn"),
    ("shutil", "rmtree"),
    ("_io", "FileIO"),
    ("ctypes", "CDLL"),
    ("pickle", "loads"),
    ("torch", "load"),
    ("numpy", "load"),
    ("types", "FunctionType"),
    ("sys", "modules"),
]
_ALLOWED = [
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch", "FloatStorage"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("copyreg", "__newobj__"),
    ("builtins", "set"),
]


def _text_op(rng: random.Random, s: str) -> bytes:
    """Push ``s`` with one of the eight string opcodes (protocol 0 text, bytes strings, unicode strings)."""
    b = s.encode()
    k = rng.randrange(8)
    if k == 0 and len(b) < 256:
        return b"\x8c" + bytes([len(b)]) + b
    if k == 1:
        return b"X" + struct.pack("<I", len(b)) + b
    if k == 2:
        return b"\x8d" + struct.pack("<Q", len(b)) + b
    if k == 3:
        return b"V" + s.encode("raw_unicode_escape") + b"\n"
    if k == 4:
        return b"S'" + s.encode("latin-1", "replace") + b"'\n"
    if k == 5 and len(b) < 256:
        return b"U" + bytes([len(b)]) + b
    if k == 6:
        return b"T" + struct.pack("<I", len(b)) + b
    return b'S"' + s.encode("latin-1", "replace") + b'"\n'


class CallProgram:
    """A pickle that reaches callables by a random route, with the memo, marks and filler around them."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.memo = 0

    def put(self) -> bytes:
        i, k = self.memo, self.rng.randrange(4)
        self.memo += 1
        if k == 0:
            return b"\x94"
        if k == 1 and i < 256:
            return b"q" + bytes([i])
        if k == 2:
            return b"r" + struct.pack("<I", i)
        return b"p" + str(i).encode() + b"\n"

    def get(self, i: int) -> bytes:
        k = self.rng.randrange(3)
        if k == 0 and i < 256:
            return b"h" + bytes([i])
        if k == 1:
            return b"j" + struct.pack("<I", i)
        return b"g" + str(i).encode() + b"\n"

    def text(self, s: str) -> bytes:
        code = _text_op(self.rng, s)
        if self.rng.random() < 0.3:
            code += self.put()
            if self.rng.random() < 0.5:
                code += b"0" + self.get(self.memo - 1)
        return code

    def callable_(self, module: str, name: str) -> bytes:
        k = self.rng.randrange(4)
        if k == 0:
            return b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        if k == 1:
            return self.text(module) + self.text(name) + b"\x93"
        if k == 2:  # both names from the memo, pushed earlier and popped
            code = self.text(module) + self.put()
            m = self.memo - 1
            code += self.text(name) + self.put()
            return code + b"00" + self.get(m) + self.get(self.memo - 1) + b"\x93"
        return b"c" + module.encode() + b"\n" + name.encode() + b"\n" + self.put()

    def args(self) -> bytes:
        k = self.rng.randrange(4)
        if k == 0:
            return b")"
        if k == 1:
            return self.text("id") + b"\x85"
        if k == 2:
            return b"(" + self.text("id") + b"t"
        return b"(K\x01" + self.text("echo") + b"t"

    def call(self, module: str, name: str) -> bytes:
        k = self.rng.randrange(6)
        if k == 0:
            return self.callable_(module, name) + self.args() + b"R"
        if k == 1:
            return b"(" + self.callable_(module, name) + self.text("id") + b"o"
        if k == 2:
            return b"(" + self.text("id") + b"i" + module.encode() + b"\n" + name.encode() + b"\n"
        if k == 3:
            return self.callable_(module, name) + self.args() + b"\x81"
        if k == 4:
            return self.callable_(module, name) + self.args() + b"}\x92"
        # the outer call first: memo indexes must rise in stream order (MEMOIZE takes the next free one)
        outer = self.callable_("collections", "OrderedDict") + b")R}" + self.text("a")
        return outer + self.callable_(module, name) + b")Rsb"

    def filler(self) -> bytes:
        k = self.rng.randrange(8)
        if k == 0:
            return b"N0"
        if k == 1:
            return b"K" + bytes([self.rng.randrange(256)]) + b"0"
        if k == 2:
            return b"(" + b"N" * self.rng.randrange(3) + b"1"
        if k == 3:
            return b"]" + self.put() + b"(NNe0"  # a list filled by APPENDS over a mark
        if k == 4:
            return b"]" + self.put() + b"0"
        if k == 5:
            return self.text("hello") + b"0"
        if k == 6:
            return b"I" + str(self.rng.randrange(-5, 99)).encode() + b"\n0"
        return b"\x88\x89\x86\x89\x86" + b"0"

    def program(self) -> bytes:
        rng = self.rng
        out = bytearray(b"\x80" + bytes([rng.randrange(6)]) if rng.random() < 0.8 else b"")
        for _ in range(rng.randrange(4)):
            out += self.filler()
        for _ in range(rng.randrange(1, 4)):
            module, name = rng.choice(_DANGEROUS if rng.random() < 0.6 else _ALLOWED)
            if rng.random() < 0.15:
                name += ".__call__"
            out += self.call(module, name)
            if rng.random() < 0.5:
                out += b"0"
            for _ in range(rng.randrange(2)):
                out += self.filler()
        return bytes(out + b"N.")


class Inert:
    """What the recording unpickler hands back for every class: accepts any construction, call or state."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> Inert:
        return Inert()

    def __setstate__(self, state: object) -> None:
        pass

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def append(self, value: object) -> None:
        pass

    def extend(self, values: object) -> None:
        pass

    def add(self, value: object) -> None:
        pass


class _Recorder(pickle.Unpickler):
    """pickle.load's C unpickler, recording every name it resolves; nothing is imported, nothing runs."""

    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.names: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str) -> Any:
        self.names.append((module, name))
        if len(self.names) > 10_000:
            raise pickle.UnpicklingError("too many names")
        return Inert

    def persistent_load(self, pid: Any) -> Any:
        return Inert()


def torch_resolved_names(data: bytes, seconds: float) -> list[tuple[str, str]]:
    """The names ``torch.load(weights_only=False)`` resolves on a zip, through the recording unpickler (torch
    reads the zip with its own reader, picks the record folder and the data.pkl itself). Empty without torch."""
    try:
        import torch
    except ImportError:
        return []
    names: list[tuple[str, str]] = []

    class _TorchRecorder(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            names.append((module, name))
            if module.startswith("torch") and attribute_path(module, name):
                try:  # torch's own rebuild functions, so that the load goes on as torch's would
                    return super().find_class(module, name)
                except Exception:
                    return Inert
            return Inert

    recording = type(pickle)("recording_pickle")
    recording.Unpickler = _TorchRecorder  # type: ignore[attr-defined]
    recording.load = lambda f, **kw: _TorchRecorder(f, **kw).load()  # type: ignore[attr-defined]
    bounded(lambda: torch.load(io.BytesIO(data), weights_only=False, pickle_module=recording), seconds)
    return names


def attribute_path(module: str, name: str) -> bool:
    """A name find_class can resolve: dotted identifiers (``getattr(os, "a-b")`` fails: nothing is reached), and,
    for a module this process has already imported, an attribute path that exists in it. Unicode identifiers are
    not normalized by ``getattr`` (``os.systeԶm`` is no ``os.system``). Only module namespaces are read (no module
    ``__getattr__`` runs); a module that has one, or that is not imported here, is taken as resolving the name."""
    if not all(part.isidentifier() for part in (*module.split("."), *name.split("."))):
        return False
    obj = sys.modules.get(module)
    if obj is None:
        return True
    for part in name.split("."):
        space = getattr(obj, "__dict__", None)
        if not isinstance(space, dict) or part not in space:
            return "__getattr__" in (space or {}) or not isinstance(space, dict)
        obj = space[part]
    return True


def resolved_names(data: bytes, seconds: float) -> list[tuple[str, str]]:
    """The names pickle.load resolves on ``data`` before it stops (an error, STOP or the time bound)."""
    rec = _Recorder(data)
    bounded(rec.load, seconds)
    return rec.names


def in_children(
    fn: Callable[[bytes], list[tuple[str, str]]], inputs: Sequence[bytes]
) -> list[list[tuple[str, str]] | None]:
    """``fn`` over ``inputs`` in forked children, a batch each: a real loader may crash on an edited file
    (numpy's ``__setstate__`` segfaults on some), which must not take the caller down. A batch whose child
    dies is run again one input per child; an input whose child dies gives ``None``."""
    out: list[list[tuple[str, str]] | None] = []
    for start in range(0, len(inputs), 200):
        batch = list(inputs[start : start + 200])
        done = _child(fn, batch)
        if done is None:
            done = []
            for item in batch:
                one = _child(fn, [item])
                done.append(one[0] if one is not None else None)
        out.extend(done)
    return out


def _child(
    fn: Callable[[bytes], list[tuple[str, str]]], batch: list[bytes]
) -> list[list[tuple[str, str]] | None] | None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the loader, hand the names back, never return into the caller's code
        code = 1
        faulthandler.disable()  # a loader crash is an outcome here, not a failure to report
        try:
            os.close(read)
            with os.fdopen(write, "wb") as pipe:
                pickle.dump([fn(item) for item in batch], pipe)
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    raw, status = _collect(read, pid, 120)
    if status != 0 or not raw:
        return None
    result: list[list[tuple[str, str]] | None] = pickle.loads(raw)  # our own child's list of name pairs
    return result


def _collect(read: int, pid: int, seconds: float) -> tuple[bytes, int]:
    """All a child writes to its pipe, and its exit status; a child still running after ``seconds`` (a loader
    looping in C code, where no Python time bound reaches) is killed, which its status says."""
    deadline = time.monotonic() + seconds
    chunks: list[bytes] = []
    with os.fdopen(read, "rb", buffering=0) as pipe:
        while True:
            ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                break
            chunk = pipe.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks), status


_REAL_PACKAGES = (
    "numpy",
    "collections",
    "builtins",
    "copyreg",
    "_codecs",
    "datetime",
    "decimal",
    "fractions",
)


def real_load(data: bytes, allowed: Callable[[str, str], bool]) -> None:
    """pickle.load as a user runs it, for the callables the allow-list allows from numpy and the standard library
    (so that their own C code runs on the file's states); every other name gets the inert stub."""
    _load_real(data, allowed)


def _load_real(data: bytes, allowed: Callable[[str, str], bool]) -> Any:
    class _Real(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            real = module.split(".")[0] in _REAL_PACKAGES and attribute_path(module, name)
            return super().find_class(module, name) if real and allowed(module, name) else Inert

    return _Real(io.BytesIO(data)).load()


def crashing(load: Callable[[bytes], object], inputs: Sequence[bytes], seconds: float = 60) -> list[int]:
    """Indexes of the inputs on which ``load`` kills the process (a signal other than the time bound), run in
    forked children that report each index before they start on it."""
    crashed: list[int] = []
    start = 0
    while start < len(inputs):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            faulthandler.disable()
            os.close(read)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(int(seconds))
            for i in range(start, len(inputs)):
                os.write(write, struct.pack("<I", i))
                with contextlib.suppress(BaseException):  # the loader's own errors are not crashes
                    load(inputs[i])
            os._exit(0)
        os.close(write)
        seen, status = _collect(read, pid, seconds + 10)
        last = struct.unpack_from("<I", seen, len(seen) - 4)[0] if seen else start
        if os.WIFSIGNALED(status):
            if os.WTERMSIG(status) != signal.SIGALRM:
                crashed.append(last)
            start = last + 1
        else:
            start = len(inputs)
    return crashed


def crashing_alone(
    load: Callable[[bytes], object], inputs: Sequence[bytes], seconds: float = 60
) -> list[int]:
    """``crashing``, with each crash re-run on its own: an input that damages the heap can make a later one in
    the same child die. The first input at or before the reported one (up to 30 back) that crashes alone is
    blamed; a crash no single input repeats is dropped."""
    blamed: set[int] = set()
    for index in crashing(load, inputs, seconds):
        for j in range(index, max(-1, index - 30), -1):
            if crashing(load, [inputs[j]], seconds):
                blamed.add(j)
                break
    return sorted(blamed)


def _int_op(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    return b"\x8a\x08" + struct.pack("<q", n)


def _str_op(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _bytes_op(b: bytes) -> bytes:
    return b"C" + bytes([len(b)]) + b if len(b) < 256 else b"B" + struct.pack("<I", len(b)) + b


_SPECS = [
    "f8",
    "f4",
    "i4",
    "i8",
    "u1",
    "b1",
    "O8",
    "V12",
    "V8",
    "V16",
    "S5",
    "U3",
    "M8",
    "m8",
    "c16",
    "f2",
    "V0",
]


class NumpyStates:
    """Pickles of numpy dtypes, arrays (ndarray, memmap, recarray) and scalars whose BUILD states vary every item
    numpy's ``__setstate__`` reads: layout (5 to 9 items), version, endian, sub-array, names and fields (offsets
    in and out of the item, missing names, titles), item size, alignment, flags, metadata; array shapes, order and
    data (bytes of the right and wrong length, lists of the right and wrong length)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, options: Sequence[Any]) -> Any:
        return self.rng.choice(options)

    def dtype(self, depth: int = 0) -> bytes:
        spec = self.pick(_SPECS)
        out = b"cnumpy\ndtype\n(" + _str_op(spec) + b"\x89\x88tR"
        return out + self.state(depth) + b"b" if self.rng.random() < 0.85 else out

    def state(self, depth: int) -> bytes:
        rng, pick = self.rng, self.pick
        version, endian = _int_op(pick([3, 3, 3, 4, 2, 1, 0, 5])), _str_op(pick(["<", "|", ">", "=", "<"]))
        sub = b"N"
        if rng.random() < 0.15 and depth < 2:
            dims = b"(" + b"".join(_int_op(pick([1, 2, 3, 0])) for _ in range(rng.randrange(1, 3))) + b"t"
            sub = (
                b"(" + self.dtype(depth + 1) + (_int_op(pick([1, 2, 3, 100])) if rng.random() < 0.4 else dims)
            )
            sub += b"t"
        names = fields = b"N"
        if rng.random() < 0.35 and depth < 2:
            keys = [pick(["a", "b", "c", "d"]) for _ in range(rng.randrange(1, 4))]
            names = b"(" + b"".join(_str_op(k) for k in keys) + b"t"
            fields = b"}("
            for key in keys if rng.random() < 0.8 else [*keys[:-1], "z"]:
                offset = _int_op(pick([0, 4, 8, 12, 16, 3, -8, 1000]))
                title = _str_op("title") if rng.random() < 0.1 else b""
                # now and then a key of another type where the name should be (numpy looks the name up as NULL)
                key_op = (
                    _str_op(key) if rng.random() < 0.9 else pick([_int_op(16), b"C\x01" + key.encode(), b"N"])
                )
                fields += key_op + b"(" + self.dtype(depth + 1) + offset + title + b"t"
            fields += b"u"
        elsize = _int_op(pick([-1, -1, 8, 12, 16, 4, 0, 1000, 2**40]))
        align = _int_op(pick([-1, 1, 4, 8, 0, 3]))
        flags = _int_op(pick([0, 0, 63, 27, 1, 3, 16, 0xFF, 0x10, 0x08]))
        layout = pick([8, 8, 8, 9, 7, 6, 5])
        items = {
            9: [version, endian, sub, names, fields, elsize, align, flags, b"}"],
            8: [version, endian, sub, names, fields, elsize, align, flags],
            7: [version, endian, sub, names, fields, elsize, align],
            6: [version, endian, sub, fields, elsize, align],
            5: [endian, sub, fields, elsize, align],
        }[layout]
        return b"(" + b"".join(items) + b"t"

    def array(self) -> bytes:
        rng, pick = self.rng, self.pick
        dims = [pick([0, 1, 2, 3, 5]) for _ in range(rng.randrange(0, 3))]
        count = 1
        for d in dims:
            count *= d
        shape = b"(" + b"".join(_int_op(d) for d in dims) + b"t"
        if rng.random() < 0.5:
            items = [
                pick([b"K\x01", b"N", _str_op("x")]) for _ in range(max(0, count + pick([0, 0, 0, -1, 1])))
            ]
            data = b"(" + b"".join(items) + b"l"
        else:
            size = max(0, count * pick([1, 4, 8, 12, 16]) + pick([0, 0, -1, 4]))
            data = _bytes_op(bytes(rng.randrange(256) for _ in range(size)))
        version = _int_op(1) if rng.random() < 0.9 else b""
        state = b"(" + version + shape + self.dtype() + pick([b"\x89", b"\x88"]) + data + b"t"
        cls = pick([b"cnumpy\nndarray\n", b"cnumpy\nndarray\n", b"cnumpy\nmemmap\n", b"cnumpy\nrecarray\n"])
        made = pick(  # every way an array instance reaches the BUILD that runs ndarray.__setstate__
            [
                b"cnumpy.core.multiarray\n_reconstruct\n(" + cls + b"(K\x00tC\x01btR",
                b"cnumpy.core.multiarray\n_reconstruct\n(" + cls + b"(K\x00tC\x01btR",
                cls + b"(K\x00t\x85\x81",  # NEWOBJ: cls.__new__(cls, (0,))
                cls + b"(K\x00t\x85R",  # a call: cls((0,))
            ]
        )
        return made + state + b"b"

    def scalar(self) -> bytes:
        raw = bytes(self.rng.randrange(256) for _ in range(self.pick([0, 1, 4, 8, 12, 16])))
        return b"cnumpy.core.multiarray\nscalar\n(" + self.dtype() + _bytes_op(raw) + b"tR"

    def program(self) -> bytes:
        return b"\x80\x02" + self.pick([self.array, self.array, self.scalar, self.dtype])() + b"."


def real_use(data: bytes, allowed: Callable[[str, str], bool]) -> None:
    """``real_load``, then what an application does with an array: print, copy, list it, read its fields."""
    value = _load_real(data, allowed)
    repr(value)
    if hasattr(value, "copy") and hasattr(value, "tolist"):
        value.copy().tolist()
        names = getattr(getattr(value, "dtype", None), "names", None) or ()
        for name in names:
            value[name].tolist()
