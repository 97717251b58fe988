"""Child process for the crash and concurrency tests: appends batches and acknowledges each one on stdout."""

from __future__ import annotations

import sys

from loopwarden.attest import sign_statement
from loopwarden.workspace import Workspace
from tests.conftest import make_statement


def main() -> None:
    root, tag, batches, batch_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    ws = Workspace.load(root)
    signer = ws.signer()
    with ws.open_ledger() as led:
        for b in range(batches):
            envs = [
                sign_statement(make_statement(tag * 1_000_000 + b * batch_size + k), [signer])
                for k in range(batch_size)
            ]
            res = led.append_batch(envs)
            sys.stdout.write(f"ack {res[-1].index + 1}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
