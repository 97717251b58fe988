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
from loopwarden.checks.models._base import ScanContext, member_location
from loopwarden.domain import Location, Severity

__all__ = ["check_torch_package", "check_torchscript_code"]

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


_PACKAGE_MARK: Final = "/.data/extern_modules"
"""The record every ``torch.package`` archive has (``<root>/.data/extern_modules``: the modules it takes from the
environment)."""


def check_torch_package(names: list[str], ctx: ScanContext, location: Location) -> None:
    """A ``torch.package`` archive's own Python source for a module the allow-list trusts. ``PackageImporter``
    resolves every module a pickle names in the archive first (``<root>/collections.py``, ``<root>/numpy/
    __init__.py``), even one listed as extern, and runs that source: a pickle that names only allow-listed classes
    (``collections.OrderedDict``) then runs the archive's code, and a scanner that judges the name trusts it."""
    from loopwarden.checks.models.allowlist import known_top_module

    roots = {
        n[: -len(_PACKAGE_MARK)]
        for n in names
        if n.endswith(_PACKAGE_MARK) and "/" not in n[: -len(_PACKAGE_MARK)]
    }
    for name in names:
        root, _, rel = name.partition("/")
        if root not in roots or not rel.endswith(".py") or rel.startswith(".data/"):
            continue
        module = rel[: -len("/__init__.py")] if rel.endswith("/__init__.py") else rel[: -len(".py")]
        module = module.replace("/", ".")
        if module and known_top_module(module):
            ctx.add_severity(
                rules.PickleUnknownClass,
                Severity.HIGH,
                f"torch.package archive carries its own source for '{module[:200]}': PackageImporter imports it "
                "in place of the installed module for every pickle that names it",
                member_location(location, name),
                module=module[:200],
            )
