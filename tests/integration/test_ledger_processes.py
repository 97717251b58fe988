"""Crash safety (SIGKILL while appending) and two processes appending at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from loopwarden.ledger import verify_ledger
from loopwarden.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}


def _spawn(ws: Workspace, tag: int, batches: int, size: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration._appender",
            str(ws.root),
            str(tag),
            str(batches),
            str(size),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=REPO,
    )


def test_sigkill_while_appending_never_loses_an_acknowledged_entry(ws: Workspace) -> None:
    rng = random.Random(20)
    acknowledged = 0
    for round_ in range(20):
        proc = _spawn(ws, round_ + 1, 10_000, 25)
        acks: list[int] = []

        def reader(p: subprocess.Popen[str] = proc, into: list[int] = acks) -> None:
            assert p.stdout is not None
            for line in p.stdout:
                into.append(int(line.split()[1]))

        t = threading.Thread(target=reader)
        t.start()
        deadline = time.monotonic() + 30
        while not acks and time.monotonic() < deadline:  # wait until it is really appending
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        t.join()
        if acks:
            acknowledged = max(acknowledged, acks[-1])
        rep = verify_ledger(ws)
        assert rep.passed, (round_, rep.problems[:3])
        assert rep.size >= acknowledged, (round_, rep.size, acknowledged)
    assert acknowledged > 0


def test_two_processes_appending_at_once_make_one_consistent_log(ws: Workspace) -> None:
    batches, size = 40, 7
    procs = [_spawn(ws, tag, batches, size) for tag in (1, 2)]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0
        assert len(out.splitlines()) == batches
    with ws.open_ledger(writable=False) as led:
        assert led.size() == 2 * batches * size
        seen = [e.statement().predicate["n"] for e in led.entries()]
    expected = sorted(tag * 1_000_000 + i for tag in (1, 2) for i in range(batches * size))
    assert sorted(seen) == expected  # nothing lost, nothing duplicated
    assert verify_ledger(ws).passed
