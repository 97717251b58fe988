from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_scanning_torch_pickle_and_safetensors_files_leaves_heavy_modules_unimported(tmp_path: Path) -> None:
    """Scanning the common model files imports no heavy library (numpy alone takes ~70 ms, paid again by every
    worker of a parallel scan): numpy only for an archive with sparse tensors or an array that needs it, jinja2
    only for a chat template."""
    import pickle
    import zipfile

    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    with zipfile.ZipFile(tmp_path / "model.pt", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"epoch": 3}, protocol=2))
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    header = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    (tmp_path / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 4)
    code = (
        "import sys; from loopwarden.checks.models.scanner import scan_paths\n"
        f"r = scan_paths([{str(tmp_path)!r}], jobs=1)\n"
        "assert all(t.verdict.value == 'clean' for t in r.targets), r\n"
        "print(sorted(m for m in ('numpy', 'jinja2', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
