"""TorchScript code: the Python-like source that ``torch.jit.load`` compiles and runs.

TorchScript cannot import Python modules, but it can call any registered operator (``torch.ops.<ns>.<op>``)
and
a few builtins. Operators outside torch's own namespaces need a native library and are reported, as are names
that only make sense for code that wants the file system, processes or imports.
"""

from __future__ import annotations

import re
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


def check_torchscript_code(text: str, ctx: ScanContext, location: Location) -> None:
    code = _STRINGS.sub('""', text)  # names inside string constants are data, not calls
    for lineno, line in enumerate(code.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        for m in _OPS.finditer(line):
            ns = m.group(1)
            if ns not in _TORCH_NAMESPACES:
                ctx.add_severity(
                    rules.TorchScriptCode,
                    Severity.MEDIUM,
                    f"calls operator torch.ops.{ns}.{m.group(2)} from a custom namespace",
                    Location(location.path, location.member, line=lineno),
                    operator=f"{ns}.{m.group(2)}",
                )
        for m in _DANGEROUS.finditer(line):
            ctx.add(
                rules.TorchScriptCode,
                f"TorchScript code uses '{m.group(1)}'",
                Location(location.path, location.member, line=lineno),
                name=m.group(1),
            )
