"""Ledger throughput, each figure beside the raw limit measured in the same run.

- batched appends/s        vs plain SQLite inserts of the same rows in the same batches (same WAL/sync settings)
- inclusion proofs/s       vs plain SQLite primary-key lookups of as many rows as a proof reads
- proof verifications/s    vs hashlib over the same bytes a verification hashes
- full `verify` of a ledger of N entries with signatures, vs hashlib over the same bytes

Usage: python bench/ledger.py [--entries 100000] [--batch 1000] [--proofs 20000]
The last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from loopwarden.attest import sign_statement
from loopwarden.attest.predicates import NOTE
from loopwarden.attest.statement import Statement
from loopwarden.domain import Digest, ResourceDescriptor
from loopwarden.ledger import verify_inclusion, verify_ledger
from loopwarden.ledger.merkle import inclusion_keys
from loopwarden.workspace import init_workspace


def statement(i: int) -> Statement:
    d = Digest("sha256", hashlib.sha256(b"artifact-%d" % i).hexdigest())
    return Statement((ResourceDescriptor.of(f"models/m{i}.safetensors", d),), NOTE, {"note": "bench", "n": i})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--proofs", type=int, default=20_000)
    a = ap.parse_args()
    n, batch = a.entries, a.batch
    with tempfile.TemporaryDirectory(prefix="lw-bench-") as tmp:
        ws = init_workspace(Path(tmp) / "ws", name="bench")
        signer = ws.signer()
        t0 = time.perf_counter()
        envs = [sign_statement(statement(i), [signer]) for i in range(n)]
        sign_s = time.perf_counter() - t0
        # The 100k pre-signed envelopes are the harness's data, not the ledger's: keep the cyclic GC from
        # re-walking them on every collection while appends are timed.
        gc.collect()
        gc.freeze()
        print(
            f"signed {n} envelopes (ECDSA P-256) in {sign_s:.2f}s = {n / sign_s:,.0f}/s "
            "(producer cost, not timed below)"
        )

        # -- appends -------------------------------------------------------------------------------------------
        with ws.open_ledger() as led:
            t0 = time.perf_counter()
            for s in range(0, n, batch):
                led.append_batch(envs[s : s + batch])
            append_s = time.perf_counter() - t0
        appends = n / append_s

        rows = [(i, e.to_bytes(), NOTE) for i, e in enumerate(envs)]
        raw_db = Path(tmp) / "raw.db"
        con = sqlite3.connect(raw_db, isolation_level=None)
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute(
            "CREATE TABLE entries(idx INTEGER PRIMARY KEY, data BLOB NOT NULL, predicate_type TEXT NOT NULL)"
        )
        t0 = time.perf_counter()
        for s in range(0, n, batch):
            con.execute("BEGIN IMMEDIATE")
            con.executemany("INSERT INTO entries VALUES (?, ?, ?)", rows[s : s + batch])
            con.execute("COMMIT")
        raw_insert_s = time.perf_counter() - t0
        raw_inserts = n / raw_insert_s
        print(
            f"batched appends: {appends:,.0f}/s   (plain SQLite inserts of the same rows: {raw_inserts:,.0f}/s, "
            f"ratio {appends / raw_inserts:.2f})"
        )

        # -- proofs served from storage --------------------------------------------------------------------------
        rng = random.Random(1)
        idxs = [rng.randrange(n) for _ in range(a.proofs)]
        with ws.open_ledger(writable=False) as led:
            size = led.size()
            root = led.root()
            t0 = time.perf_counter()
            proofs = [led.inclusion_proof(i, size) for i in idxs]
            proof_s = time.perf_counter() - t0
            leaves = [led.get(i).leaf_hash() for i in idxs[:2000]]
        proofs_per_s = a.proofs / proof_s
        keys_per_proof = sum(len(inclusion_keys(i, size)) for i in idxs[:1000]) / 1000
        lookups = [rng.randrange(n) for _ in range(int(a.proofs * keys_per_proof))]
        t0 = time.perf_counter()
        for i in lookups:
            con.execute("SELECT data FROM entries WHERE idx = ?", (i,)).fetchone()
        raw_lookup_s = time.perf_counter() - t0
        raw_proofs_per_s = a.proofs / raw_lookup_s
        con.close()
        print(
            f"inclusion proofs served: {proofs_per_s:,.0f}/s   (plain SQLite: {keys_per_proof:.1f} point lookups per "
            f"proof -> {raw_proofs_per_s:,.0f} proof-equivalents/s, ratio {proofs_per_s / raw_proofs_per_s:.2f})"
        )

        # -- proof verification ----------------------------------------------------------------------------------
        reps = max(1, 20_000 // len(leaves))
        t0 = time.perf_counter()
        for _ in range(reps):
            for leaf, p in zip(leaves, proofs, strict=False):
                if not verify_inclusion(leaf, p, root):
                    raise SystemExit("a proof failed to verify")
        verify_count = reps * len(leaves)
        ver_s = time.perf_counter() - t0
        verifs = verify_count / ver_s
        blobs = [b"\x01" + leaf + h for leaf, p in zip(leaves, proofs, strict=False) for h in p.hashes]
        t0 = time.perf_counter()
        for _ in range(reps):
            for b in blobs:
                hashlib.sha256(b).digest()
        raw_ver_s = time.perf_counter() - t0
        raw_verifs = verify_count / raw_ver_s
        print(
            f"proof verifications: {verifs:,.0f}/s   (hashlib over the same bytes: {raw_verifs:,.0f}/s, "
            f"ratio {verifs / raw_verifs:.2f})"
        )

        # -- full audit ------------------------------------------------------------------------------------------
        t0 = time.perf_counter()
        rep = verify_ledger(ws)
        audit_s = time.perf_counter() - t0
        if not rep.passed:
            raise SystemExit(f"audit failed: {rep.problems[:3]}")
        total = sum(len(r[1]) for r in rows)
        t0 = time.perf_counter()
        for r in rows:
            hashlib.sha256(b"\x00" + r[1]).digest()
        raw_hash_s = time.perf_counter() - t0
        print(
            f"full verify of {n:,} entries ({rep.signatures_checked:,} signatures, {rep.checkpoints_checked} "
            f"checkpoints): {audit_s:.2f}s   (hashlib over the same {total / 1e6:.0f} MB: {raw_hash_s:.2f}s)"
        )

    goals = {"appends_per_s": 25_000, "proofs_per_s": 5_000, "verifications_per_s": 15_000}
    result = {
        "bench": "ledger",
        "entries": n,
        "batch": batch,
        "appends_per_s": round(appends),
        "raw_sqlite_inserts_per_s": round(raw_inserts),
        "proofs_per_s": round(proofs_per_s),
        "raw_sqlite_proof_equivalents_per_s": round(raw_proofs_per_s),
        "verifications_per_s": round(verifs),
        "raw_hashlib_verification_equivalents_per_s": round(raw_verifs),
        "full_verify_s": round(audit_s, 2),
        "raw_hashlib_full_s": round(raw_hash_s, 3),
        "goals_met": {
            "appends": appends >= goals["appends_per_s"],
            "proofs": proofs_per_s >= goals["proofs_per_s"],
            "verifications": verifs >= goals["verifications_per_s"],
        },
    }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
