"""TorchScript code: the Python-like source that ``torch.jit.load`` compiles and runs.

TorchScript cannot import Python modules, but it can call any registered operator (``torch.ops.<ns>.<op>``)
and
a few builtins. Operators outside torch's own namespaces need a native library and are reported, as are names
that only make sense for code that wants the file system, processes or imports.
"""

from __future__ import annotations

import bisect
import re
import sys
from typing import Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import ScanContext
from loopwarden.domain import Location, Severity

__all__ = ["check_torchscript_code"]

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
_OPS: Final = re.compile(r"\bops\.([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_DANGEROUS: Final = re.compile(
    r"\b(__import__|importlib|subprocess|os\.system|os\.popen|popen|exec|eval|compile|builtins|open|"
    r"__builtins__|__globals__|__class__|__subclasses__|system|spawn|socket|urllib|shutil|pickle|"
    r"marshal|load_library|_load_library)\b\s*[\(\.\[]"
)
_STRINGS: Final = re.compile(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')")
_FILE_BUILTIN_NAMES: Final = frozenset(
    {"save", "from_file", "_save_parameters", "_save_for_mobile", "_load_for_mobile", "load"}
)
_FILE_BUILTINS: Final = re.compile(
    r"\b(?:torch|torch\._C\._nn|torch\._C\._VariableFunctions|(?:torch\.)?ops\.aten)\."
    r"(" + "|".join(sorted(_FILE_BUILTIN_NAMES)) + r")\s*\("
)
"""torch's own builtins that read or write a file named by the code: ``torch.save`` (aten::save) writes any path (a
``.bashrc`` or crontab for code execution), ``torch.from_file`` (aten::from_file) maps any file into a tensor
(CVE-2025-32434; Zhou and Song, "Safe Harbor or Hostile Waters", Black Hat USA 2025)."""
_FILE_OP_NAME: Final = re.compile(r"(?:^|_)(?:read|write|save|load|open)(?:_|$)|from_file|(?:^|_)file(?:_|$)")
"""Operators of any namespace whose name says they touch files (torchvision's image.read_file/write_file/write_png,
torchaudio's sox_io_save_audio_file ...)."""
_DEF: Final = re.compile(r"^\s*def\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_CLASS_PATH: Final = re.compile(r"(?<![A-Za-z0-9_.])__torch__\.[A-Za-z0-9_.]*")
"""A qualified name under ``__torch__``: a class or module of the archive's own code (torchvision's
``__torch__.torchvision.ops.misc.Conv2dNormActivation``), never an operator call."""


def _in_class_path(spans: list[tuple[int, int]], pos: int) -> bool:
    """Whether ``pos`` lies in one of ``spans`` (sorted, disjoint)."""
    i = bisect.bisect_right(spans, (pos, sys.maxsize)) - 1
    return i >= 0 and spans[i][0] <= pos < spans[i][1]


def check_torchscript_code(text: str, ctx: ScanContext, location: Location) -> None:
    code = _STRINGS.sub('""', text)  # names inside string constants are data, not calls
    function = ""
    for lineno, line in enumerate(code.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        d = _DEF.match(line)
        if d:
            function = d.group(1)
        where = Location(location.path, location.member, line=lineno)
        # __setstate__ runs while torch.jit.load (or torch.load of a TorchScript file) reads the archive
        severity = Severity.CRITICAL if function == "__setstate__" else Severity.HIGH
        for m in _FILE_BUILTINS.finditer(line):
            ctx.add_severity(
                rules.TorchScriptCode,
                severity,
                f"TorchScript code calls torch.{m.group(1)}, which reads or writes a file it names"
                f"{' while the archive loads (in __setstate__)' if function == '__setstate__' else ''}",
                where,
                name=m.group(1),
            )
        spans = [c.span() for c in _CLASS_PATH.finditer(line)] if "__torch__." in line else []
        for m in _OPS.finditer(line):
            if spans and _in_class_path(spans, m.start()):
                continue  # ops.<ns> inside a class path (torchvision.ops.misc ...)
            ns = m.group(1)
            if ns == "aten" and m.group(2) in _FILE_BUILTIN_NAMES:
                continue  # reported above as the builtin it is
            if _FILE_OP_NAME.search(m.group(2)):
                ctx.add_severity(
                    rules.TorchScriptCode,
                    severity,
                    f"calls operator torch.ops.{ns}.{m.group(2)}, which reads or writes files",
                    where,
                    operator=f"{ns}.{m.group(2)}",
                )
            elif ns not in _TORCH_NAMESPACES:
                ctx.add_severity(
                    rules.TorchScriptCode,
                    Severity.MEDIUM,
                    f"calls operator torch.ops.{ns}.{m.group(2)} from a custom namespace",
                    where,
                    operator=f"{ns}.{m.group(2)}",
                )
        for m in _DANGEROUS.finditer(line):
            ctx.add(
                rules.TorchScriptCode,
                f"TorchScript code uses '{m.group(1)}'",
                Location(location.path, location.member, line=lineno),
                name=m.group(1),
            )
