"""loopwarden init [DIR]"""

from __future__ import annotations

import argparse

from loopwarden._cli._common import emit_json, out
from loopwarden.attest.keys import KeyAlgorithm
from loopwarden.workspace import CONFIG_NAME, init_workspace


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", nargs="?", default=".", help="folder of the new workspace (default: .)")
    parser.add_argument(
        "--name", help="workspace name, used as the ledger's origin (default: the folder's name)"
    )
    parser.add_argument(
        "--key-type",
        choices=[a.value for a in KeyAlgorithm],
        default=KeyAlgorithm.ECDSA_P256.value,
        help="algorithm of the operator's signing key (default: ecdsa-p256)",
    )


def run(args: argparse.Namespace) -> int:
    ws = init_workspace(args.directory, name=args.name, algorithm=args.key_type)
    signer = ws.signer().public()
    info = {
        "workspace": str(ws.root),
        "name": ws.name,
        "ledger": str(ws.ledger_path),
        "signing_key": {"algorithm": signer.algorithm.value, "keyid": signer.keyid},
    }
    if args.json:
        emit_json(info)
    else:
        out(
            f"created workspace {ws.name!r} in {ws.root}\n  {CONFIG_NAME}, keys in .loopwarden/keys, ledger "
            f"{ws.ledger_path.name}\n  signing key {signer.algorithm.value} {signer.keyid}"
        )
    return 0
