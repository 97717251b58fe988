"""Regenerate ``src/loopwarden/checks/models/torch_ops.py`` from the installed torch.

The fx check (``loopwarden.checks.models.fx``) admits a private name of torch in GraphModule code only where it is an
operator: torch exports aten's private operators as ``torch._<name>`` (``torch._assert_async``,
``torch._nested_tensor_from_mask``) and as private tensor methods (``x._values()``), while other private names of
torch reach raw memory (``torch._from_blob(address, ...)``, ``UntypedStorage._free_weak_ref``), load libraries or
build code. This script lists, from the torch installed here (the scanner never imports torch):

* ``PRIVATE_FUNCTIONS``: the private callables of ``torch._C._VariableFunctions`` that are aten operators
  (``torch.ops.aten`` has them), the names torch exports at its top level;
* ``PRIVATE_TENSOR_METHODS``: the private methods of ``torch.Tensor`` that are aten operators.

Operators that skip bounds checks or build views from given offsets are left out (``_LEFT_OUT``).

Usage: ``python tools/gen_torch_ops.py [--out FILE]``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

_OUT = Path(__file__).resolve().parents[1] / "src" / "loopwarden" / "checks" / "models" / "torch_ops.py"


_LEFT_OUT = re.compile(r"unsafe|from_buffer|view_from|^_test_|^_foobar$|^_index_put_impl_$|^_print$")
"""Operators left out although aten has them: the ones that skip their bounds checks by design (``_unsafe_index``,
``_index_put_impl_(unsafe=True)``), make a view of a buffer from offsets and sizes they are given
(``_nested_view_from_buffer``), and torch's own test and debugging operators."""


def _private(names: list[str]) -> list[str]:
    return sorted(
        n for n in names if n.startswith("_") and not n.startswith("__") and not _LEFT_OUT.search(n)
    )


def _lines(name: str, values: list[str], doc: str) -> list[str]:
    out = [f"{name}: Final = frozenset(", "    {"]
    out += [f'        "{v}",' for v in values]
    out += ["    }", ")", f'"""{doc}"""', ""]
    return out


def main() -> int:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=_OUT)
    args = ap.parse_args()
    aten = torch.ops.aten
    functions = [
        n
        for n in _private(dir(torch._C._VariableFunctions))
        if hasattr(torch, n) and hasattr(aten, n) and callable(getattr(torch, n))
    ]
    methods = [
        n for n in _private(dir(torch.Tensor)) if hasattr(aten, n) and callable(getattr(torch.Tensor, n))
    ]
    text = [
        f'"""Private operators of torch {torch.__version__.split("+")[0]}, written by ``tools/gen_torch_ops.py``:'
        " do not edit.",
        "",
        "Read by the fx check: a private torch name in GraphModule code is admitted only when it is one of these.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Final",
        "",
        *_lines(
            "PRIVATE_FUNCTIONS",
            functions,
            "``torch._<name>`` callables that are aten operators (``torch._C._VariableFunctions``).",
        ),
        *_lines(
            "PRIVATE_TENSOR_METHODS", methods, "Private methods of ``torch.Tensor`` that are aten operators."
        ),
    ]
    args.out.write_text("\n".join(text).rstrip("\n") + "\n")
    print(f"{args.out.name}: {len(functions)} functions, {len(methods)} tensor methods")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
