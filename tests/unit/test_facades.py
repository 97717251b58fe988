from __future__ import annotations

import subprocess
import sys

import loopwarden


def test_every_facade_resolves_to_a_callable() -> None:
    for name in loopwarden.__all__:
        if name != "__version__":
            assert callable(getattr(loopwarden, name)), name


def test_importing_the_package_stays_cheap() -> None:
    """`import loopwarden` must not pull in the heavy layers (numpy, jinja2, rich, cryptography)."""
    heavy = "('numpy', 'jinja2', 'rich', 'cryptography')"
    code = f"import sys, loopwarden; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
