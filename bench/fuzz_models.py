"""Mutation fuzzing of the model-container parsers (pickle, zip, safetensors, GGUF) through the real dispatcher.

Seeds are real files written by the real libraries (torch, joblib, numpy, safetensors, gguf) plus the malicious
corpus of tests/corpus. Each input is mutated (bit flips, interesting integers, insert/delete/duplicate chunks,
truncation, splicing) and scanned in-process with a per-input time bound. Reported:
  crashes     an exception other than a resource bound escaped the parser
  hangs       an input took longer than --per-input-seconds
  violations  the input was reported clean although a reference parser of its format rejects it
              (zipfile.testzip, safetensors' own loader, gguf.GGUFReader, pickletools.genops)
  resolved    the input was reported clean although the real loader resolves a callable the allow-list does
              not allow: the C unpickler, run with a find_class that records each name and hands back an inert
              stub (nothing is imported or called), for the pickle families; torch.load (weights_only=False,
              that unpickler as its pickle_module) for zips when torch is installed. A semantic differential
              between the scanner's pickle VM or zip reading and the loader's.
  loader crashes  the input was reported clean although the real pickle.load (numpy's and the standard library's
              allowed callables for real, others inert), and using the array as an application would, kills the
              process (re-run alone to be blamed).
"numpy-states" inputs are generated numpy dtype, array and scalar states (every item __setstate__ reads).
"pickle-calls" inputs are generated programs that reach allowed and dangerous callables through every naming and
calling route (GLOBAL, STACK_GLOBAL from any string opcode or the memo, INST, OBJ, NEWOBJ, NEWOBJ_EX, REDUCE,
BUILD), half of them mutated. Run under the shared benchmark lock (`flock LOCKFILE python bench/fuzz_models.py
[--inputs N] [--jobs N]`). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import multiprocessing
import os
import pickle
import pickletools
import random
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests" / "corpus"))

FAMILIES = ("pickle", "pickle-calls", "numpy-states", "zip", "safetensors", "gguf")
FAILURES = ("crash", "hang", "violation", "resolved", "loader-crash")
"""What fails a run (see the module docstring); each keeps up to five examples."""
_STORAGE = re.compile(r"^[^/]+/(data|constants)/[^/]+$")
INTERESTING = [
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x7FFF,
    0xFFFF,
    0x7FFFFFFF,
    0xFFFFFFFF,
    1 << 32,
    1 << 62,
    (1 << 64) - 1,
]


_PARSED_AS = {
    "pickle": ("pickle", "torch-legacy"),
    "pickle-calls": ("pickle",),
    "numpy-states": ("pickle",),
    "zip": ("zip",),
    "safetensors": ("safetensors",),
    "gguf": ("gguf",),
}
"""A violation needs the scanner to have taken the input for that format (a mutant that became text is text).
"""


class _HangError(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise _HangError


# ------------------------------------------------------------------------------------------------- seeds


def seeds() -> dict[str, list[bytes]]:
    import _container_payloads as cp

    out: dict[str, list[bytes]] = {f: [] for f in FAMILIES}
    out["pickle"] += [
        cp.evil_pickle(0),
        cp.evil_pickle(2),
        cp.evil_pickle(4),
        cp.benign_pickle(),
        pickle.dumps({"a": [1, 2.5, "x", b"y", (1, 2)], "b": {1, 2}}, protocol=5),
        cp.torch_legacy([cp.benign_pickle()]),
        cp.npy_object(cp.evil_pickle()),
        # pickles kept as data (LW-MODEL-019): raw bytes, base64 text, zlib bytes
        pickle.dumps({"m": "x", "raw": cp.evil_pickle(4)}, protocol=4),
        pickle.dumps({"b64": base64.b64encode(cp.evil_pickle(2)).decode()}, protocol=2),
        pickle.dumps([zlib.compress(cp.evil_pickle(0))], protocol=3),
    ]
    out["safetensors"] += [
        cp.safetensors_file(
            {
                "__metadata__": {"hook": "import os; os.system('id')"},
                "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
            },
            b"\0" * 4,
        )
    ]
    out["zip"] += [
        cp.torch_zip(cp.benign_pickle()),
        cp.torch_zip(cp.evil_pickle()),
        cp.zip_of({"a.npy": b"\x93NUMPY"}),
        cp.keras_zip(cp.keras_lambda_config()),
        cp.hide_member(cp.torch_zip(cp.benign_pickle()), "x.pkl", cp.evil_pickle()),
    ]
    out["safetensors"] += [
        cp.safetensors_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8)
    ]
    out["gguf"] += [
        cp.gguf_file("{{ messages[0]['content'] }}"),
        cp.gguf_file(cp.SSTI_TEMPLATES["dunder_class"]),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        try:
            import torch

            torch.save({"w": torch.ones(2, 2), "n": 3}, t / "a.pt")
            torch.save({"w": torch.ones(2)}, t / "b.pt", _use_new_zipfile_serialization=False)
            out["zip"].append((t / "a.pt").read_bytes())
            out["pickle"].append((t / "b.pt").read_bytes())
        except ImportError:
            pass
        try:
            import numpy as np

            for value in (
                np.array([1, "x", None], dtype=object),
                np.array([(1, "x"), (2, None)], dtype=[("a", "<i4"), ("b", "O")]),
                np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
                np.dtype(("<f8", (2, 3))),
                np.ma.masked_array([1, 2], mask=[0, 1]),
            ):
                out["pickle"] += [pickle.dumps(value, protocol=2), pickle.dumps(value, protocol=4)]
        except ImportError:
            pass
        try:
            import joblib
            import numpy as np

            joblib.dump({"x": np.arange(5)}, t / "j.joblib")
            out["pickle"].append((t / "j.joblib").read_bytes())
            np.savez(t / "z.npz", a=np.arange(3))
            out["zip"].append((t / "z.npz").read_bytes())
        except ImportError:
            pass
        try:
            import numpy as np
            from safetensors.numpy import save

            out["safetensors"].append(
                save({"a": np.zeros((2, 3), np.float32), "b": np.ones(4, np.int8)}, metadata={"k": "v"})
            )
        except ImportError:
            pass
        try:
            import gguf
            import numpy as np

            w = gguf.GGUFWriter(str(t / "m.gguf"), "llama")
            w.add_chat_template("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}{% endfor %}")
            w.add_token_list(["a", "b", "c"])
            w.add_tensor("w", np.zeros(8, np.float32))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            out["gguf"].append((t / "m.gguf").read_bytes())
        except ImportError:
            pass
    from _loader_oracle import CallProgram, NumpyStates

    out["pickle-calls"] = [CallProgram(random.Random(i)).program() for i in range(16)]  # splice material
    out["numpy-states"] = [NumpyStates(random.Random(i)).program() for i in range(16)]
    return out


# ---------------------------------------------------------------------------------------------- mutation


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        op = rng.randrange(8)
        n = len(b)
        if op == 0 and n:
            i = rng.randrange(n)
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            i = rng.randrange(n)
            b[i] = rng.randrange(256)
        elif op == 2 and n >= 8:
            i = rng.randrange(n - 7)
            width = rng.choice((1, 2, 4, 8))
            v = rng.choice(INTERESTING) & ((1 << (8 * width)) - 1)
            b[i : i + width] = v.to_bytes(width, "little")
        elif op == 3 and n:
            i, j = sorted(rng.randrange(n + 1) for _ in range(2))
            del b[i:j]
        elif op == 4 and n:
            i, j = sorted(rng.randrange(n + 1) for _ in range(2))
            b[i:i] = b[i:j][:4096]
        elif op == 5 and n:
            del b[rng.randrange(n + 1) :]
        elif op == 6:
            other = rng.choice(pool)
            i = rng.randrange(len(other) + 1)
            k = rng.randrange(len(b) + 1)
            b[k:k] = other[i : i + rng.randrange(1, 512)]
        elif op == 7 and n:
            i = rng.randrange(n)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
    return bytes(b)


# ------------------------------------------------------------------------------------------ reference parsers


def rejected_by_reference(family: str, data: bytes) -> bool:
    """True when the format's own (reference) parser refuses the input."""
    try:
        if family == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                bad = z.testzip()
                # tensor storages of a torch zip are raw data that no loader interprets: not CRC-checked by
                # design
                return bad is not None and not _STORAGE.match(bad)
        if family == "safetensors":
            from safetensors.numpy import load

            load(data)
            return False
        if family == "gguf":
            import gguf

            if data[4:8] == b"\x01\x00\x00\x00":
                return False  # gguf-py cannot read version 1 (llama.cpp can); not a rejection of the content

            with tempfile.NamedTemporaryFile(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as f:
                f.write(data)
                f.flush()
                gguf.GGUFReader(f.name)
            return False
        if family.startswith("pickle"):
            if not data.startswith(b"\x80") or b"NumpyArrayWrapper" in data:
                return False  # protocol 0/1 text is judged by the text rule; joblib embeds raw array bytes
            try:
                for _ in pickletools.genops(io.BytesIO(data)):
                    pass
            except UnicodeDecodeError:
                return False  # pickletools decodes STRING as ASCII; loaders given encoding="latin1" read it
            return False
    except ImportError:
        return False
    except Exception:
        return True
    return False


# ------------------------------------------------------------------------------------------------- worker


def work(args: tuple[int, int, float, dict[str, list[bytes]]]) -> dict[str, Any]:
    from _loader_oracle import (
        CallProgram,
        NumpyStates,
        attribute_path,
        crashing_alone,
        real_use,
        resolved_names,
        torch_resolved_names,
    )

    from loopwarden.checks.interface import Limits, ResourceLimitExceeded
    from loopwarden.checks.models._base import ScanContext, bytes_blob
    from loopwarden.checks.models.dispatch import scan_blob
    from loopwarden.checks.models.scanner import default_allow
    from loopwarden.domain import Location

    worker, count, bound, pool = args
    rng = random.Random(worker)
    allow = default_allow()
    limits = Limits(max_seconds=bound, max_decompressed_bytes=64 << 20, max_opcodes=2_000_000)
    signal.signal(signal.SIGALRM, _alarm)
    flat = [s for f in FAMILIES for s in pool[f]]
    stats: Counter[str] = Counter()
    examples: dict[str, list[str]] = {k: [] for k in FAILURES}
    slowest = 0.0
    clean_pickles: list[tuple[str, bytes]] = []
    # the real unpickler grows its memo to any index a LONG_BINPUT names: bound the address space so that such an
    # input fails at once with MemoryError instead of paging gigabytes in
    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
    for i in range(count):
        family = FAMILIES[i % len(FAMILIES)]
        if family == "pickle-calls":
            data = CallProgram(rng).program()
            if rng.random() < 0.5:
                data = mutate(rng, data, flat)
        elif family == "numpy-states":
            data = NumpyStates(rng).program()
        else:
            data = mutate(rng, rng.choice(pool[family]), flat)
        ctx = ScanContext("fuzz", limits, allow)
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, bound * 3 + 1)
        outcome = "ok"
        try:
            scan_blob(bytes_blob("fuzz.bin", Location("fuzz"), data, 0), ctx)
        except ResourceLimitExceeded as exc:
            ctx.fail(Location("fuzz"), str(exc))
        except _HangError:
            outcome = "hang"
        except Exception:
            outcome = "crash"
            if len(examples["crash"]) < 5:
                examples["crash"].append(f"{family}: {traceback.format_exc()[-600:]}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for c in ctx.closers:
                c.close()
        dt = time.perf_counter() - t0
        slowest = max(slowest, dt)
        if outcome == "ok" and dt > bound * 3:
            outcome = "hang"
        if outcome == "hang" and len(examples["hang"]) < 5:
            examples["hang"].append(f"{family}: {dt:.2f}s {data[:64].hex()}")
        stats[f"{family}:{outcome}"] += 1
        stats[outcome] += 1
        if outcome == "ok":
            clean = not ctx.unverified and not ctx.findings
            verdict = "clean" if clean else ("unverified" if ctx.unverified else "findings")
            stats[f"verdict:{verdict}"] += 1
            parsed_as = ctx.formats[0] if ctx.formats else ""
            if clean and parsed_as in _PARSED_AS[family] and rejected_by_reference(family, data):
                stats["violation"] += 1
                stats[f"{family}:violation"] += 1
                if len(examples["violation"]) < 5:
                    examples["violation"].append(f"{family}: {data.hex()[:4000]} formats={ctx.formats}")
            if family.startswith("pickle") or family == "zip":
                reader = torch_resolved_names if family == "zip" else resolved_names
                names = [
                    n for n in reader(data, bound) if attribute_path(*n) and not allow.classify(*n).allowed
                ]
                if names:  # the oracle is exercised: the real loader reaches such a callable
                    stats[f"{family}:reaches"] += 1
                if clean and family.startswith("pickle"):
                    clean_pickles.append((family, data))
                if names and clean:
                    stats["resolved"] += 1
                    stats[f"{family}:resolved"] += 1
                    if len(examples["resolved"]) < 5:
                        examples["resolved"].append(f"{family}: {names[:3]} {data.hex()[:4000]}")

    # the real loader on what was called clean, numpy's C code included, and the array used as an application
    # would: a crash (re-run alone, so that heap damage from an earlier input is not blamed on a later one) is
    # memory the file reaches
    def allowed(module: str, name: str) -> bool:
        return allow.classify(module, name).allowed

    for k in crashing_alone(lambda d: real_use(d, allowed), [d for _, d in clean_pickles]):
        family, data = clean_pickles[k]
        stats["loader-crash"] += 1
        stats[f"{family}:loader-crash"] += 1
        if len(examples["loader-crash"]) < 5:
            examples["loader-crash"].append(f"{family}: {data.hex()[:4000]}")
    return {"stats": dict(stats), "examples": examples, "slowest": slowest}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=200_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--per-input-seconds", type=float, default=2.0)
    ap.add_argument(
        "--seed", type=int, default=1000, help="random seed of the first worker (others: +1, +2 …)"
    )
    args = ap.parse_args()
    pool = seeds()
    print("seeds:", {f: len(v) for f, v in pool.items()})
    per = -(-args.inputs // args.jobs)
    t0 = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.jobs) as p:
        parts = p.map(work, [(args.seed + w, per, args.per_input_seconds, pool) for w in range(args.jobs)])
    total: Counter[str] = Counter()
    examples: dict[str, list[str]] = {k: [] for k in FAILURES}
    for part in parts:
        total.update(part["stats"])
        for k, v in part["examples"].items():
            examples[k] += v
    elapsed = time.perf_counter() - t0
    n = sum(total[f"{f}:{o}"] for f in FAMILIES for o in ("ok", "crash", "hang"))
    for f in FAMILIES:
        print(
            f"{f:12} inputs {sum(total[f'{f}:{o}'] for o in ('ok', 'crash', 'hang')):>7}  crashes "
            f"{total[f'{f}:crash']:>4}  hangs {total[f'{f}:hang']:>3}  violations "
            f"{total[f'{f}:violation']:>3}  resolved {total[f'{f}:resolved']:>3} "
            f"(of {total[f'{f}:reaches']:>6} that reach a disallowed callable)  loader crashes "
            f"{total[f'{f}:loader-crash']:>3}"
        )
    for k, v in examples.items():
        for e in v[:3]:
            print(f"example {k}: {e}")
    summary = {
        "inputs": n,
        "seconds": round(elapsed, 1),
        "inputs_per_second": round(n / elapsed, 1),
        "crashes": total["crash"],
        "hangs": total["hang"],
        "clean_but_rejected_by_reference_parser": total["violation"],
        "clean_but_unpickler_resolves_a_disallowed_callable": total["resolved"],
        "clean_but_real_loader_crashes": total["loader-crash"],
        "verdicts": {k.split(":", 1)[1]: v for k, v in sorted(total.items()) if k.startswith("verdict:")},
        "slowest_input_seconds": round(max(p["slowest"] for p in parts), 3),
        "per_family": {
            f: {
                o: total[f"{f}:{o}"]
                for o in ("ok", "crash", "hang", "violation", "resolved", "reaches", "loader-crash")
            }
            for f in FAMILIES
        },
    }
    print(json.dumps(summary, sort_keys=True))
    return 1 if any(total[k] for k in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
