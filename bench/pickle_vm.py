"""Pickle-stream analysis speed: loopwarden's symbolic VM against picklescan on the same pickle streams.

Generates inputs under bench/_work/pickle_vm/ (a torch state-dict data.pkl, a large list pickle, a
scikit-learn random forest, a NumPy object array), installs picklescan into bench/_work/venv-pickle (its own
venv, so the system Python is untouched) and times, in-process and best of 3, picklescan's
``scan_pickle_bytes`` and loopwarden's ``analyze_pickle_bytes`` on each stream. The last output line is one
JSON object. Whole-scanner figures (process start, containers, peers) are in bench/models.py.

Run: python bench/pickle_vm.py
"""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
WORK = ROOT / "_work" / "pickle_vm"
VENV = ROOT / "_work" / "venv-pickle"
REPEAT = 3

_PEER = r"""
import io, json, sys, time
from picklescan.scanner import scan_pickle_bytes
out = {}
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    best = None
    for _ in range(int(sys.argv[1])):
        t = time.perf_counter()
        r = scan_pickle_bytes(io.BytesIO(data), path)
        dt = time.perf_counter() - t
        best = dt if best is None else min(best, dt)
    out[path] = {"seconds": best, "issues": r.issues_count, "error": bool(r.scan_err)}
print(json.dumps(out))
"""


def make_inputs() -> list[Path]:
    import numpy as np

    WORK.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    big = WORK / "biglist.pkl"
    if not big.exists():
        obj = (
            [float(i) for i in range(1_000_000)] + list(range(1_000_000)) + [f"s{i}" for i in range(200_000)]
        )
        big.write_bytes(pickle.dumps(obj, protocol=4))
    files.append(big)
    objarr = WORK / "numpy_object.pkl"
    if not objarr.exists():
        arr = np.array([{"k": i, "v": [i, str(i)]} for i in range(50_000)], dtype=object)
        objarr.write_bytes(pickle.dumps(arr, protocol=4))
    files.append(objarr)
    try:
        import torch
    except ImportError:
        print("torch not installed: skipping the state-dict input")
    else:
        sd_path = WORK / "torch_state_dict.pkl"
        if not sd_path.exists():
            sd = {
                f"layer{i}.{k}": torch.zeros(2)
                for i in range(5000)
                for k in ("weight", "bias", "running_mean")
            }
            buf = io.BytesIO()
            torch.save(sd, buf)
            with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
                name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
                sd_path.write_bytes(z.read(name))
        files.append(sd_path)
    try:
        from sklearn.datasets import make_classification
        from sklearn.ensemble import RandomForestClassifier
    except ImportError:
        print("scikit-learn not installed: skipping the random-forest input")
    else:
        rf = WORK / "random_forest.pkl"
        if not rf.exists():
            x, y = make_classification(2000, 20, random_state=0)
            rf.write_bytes(pickle.dumps(RandomForestClassifier(100, random_state=0).fit(x, y), protocol=5))
        files.append(rf)
    return files


def peer_python() -> Path:
    py = VENV / "bin" / "python"
    if not py.exists():
        venv.create(VENV, with_pip=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "picklescan"], check=True)
    return py


def main() -> int:
    sys.path.insert(0, str(ROOT.parent / "src"))
    from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes

    files = make_inputs()
    peer = json.loads(
        subprocess.run(
            [str(peer_python()), "-c", _PEER, str(REPEAT), *map(str, files)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    rows = {}
    for path in files:
        data = path.read_bytes()
        best = None
        for _ in range(REPEAT):
            t = time.perf_counter()
            result = analyze_pickle_bytes(data)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        assert best is not None
        ps = peer[str(path)]
        rows[path.name] = {
            "bytes": len(data),
            "loopwarden_s": round(best, 4),
            "picklescan_s": round(ps["seconds"], 4),
            "speedup_vs_picklescan": round(ps["seconds"] / best, 2),
            "loopwarden_findings": len(result.findings),
            "loopwarden_unverified": result.unverified is not None,
            "picklescan_issues": ps["issues"],
        }
        print(
            f"{path.name:28} {len(data):>10} B  loopwarden {best:7.3f}s  picklescan {ps['seconds']:7.3f}s"
            f"  x{ps['seconds'] / best:5.2f}"
        )
    print(json.dumps({"bench": "pickle_vm", "repeat": REPEAT, "inputs": rows}, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
