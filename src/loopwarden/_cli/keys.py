"""loopwarden keys init|list|export-public"""

from __future__ import annotations

import argparse
from pathlib import Path

from loopwarden._cli._common import emit_json, out, workspace
from loopwarden.attest.keys import KeyAlgorithm, generate, load_public
from loopwarden.errors import UsageError
from loopwarden.workspace import key_password


def build(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = sub.add_parser("init", help="generate a key pair: NAME.key (0600) and NAME.pub")
    p.add_argument("name", help="base name of the files, e.g. reviewers/alice")
    p.add_argument("--type", choices=[a.value for a in KeyAlgorithm], default=KeyAlgorithm.ECDSA_P256.value)
    sub.add_parser("list", help="the workspace's signing, ledger and trusted keys (public parts only)")
    e = sub.add_parser("export-public", help="print a public key as PEM (never a private key)")
    e.add_argument(
        "which", nargs="?", default="signing", help="'signing', 'ledger' or a key file (default: signing)"
    )
    e.add_argument("-o", "--output", help="write to this file instead of stdout")


def run(args: argparse.Namespace) -> int:
    if args.action == "init":
        base = Path(args.name)
        priv, pub = base.with_name(base.name + ".key"), base.with_name(base.name + ".pub")
        if pub.exists():
            raise UsageError(f"{pub}: already exists; refusing to overwrite a key")
        key = generate(args.type)
        key.save(priv, key_password())
        pub.write_bytes(key.public().pem())
        info = {
            "private": str(priv),
            "public": str(pub),
            "algorithm": key.algorithm.value,
            "keyid": key.keyid,
        }
        if args.json:
            emit_json(info)
        else:
            out(f"wrote {priv} (0600) and {pub}\n  {key.algorithm.value} {key.keyid}")
        return 0
    ws = workspace(args)
    k = ws.config.keys
    if args.action == "list":
        signing = ws.signer().public()
        rows = [
            {
                "role": "signing",
                "path": k.signing,
                "algorithm": signing.algorithm.value,
                "keyid": signing.keyid,
            }
        ]
        for role, p in [("ledger", k.ledger_public), *(("trusted", t) for t in k.trusted)]:
            pub_key = load_public(ws.resolve(p))
            rows.append(
                {"role": role, "path": p, "algorithm": pub_key.algorithm.value, "keyid": pub_key.keyid}
            )
        if args.json:
            emit_json({"threshold": k.threshold, "keys": rows})
        else:
            for r in rows:
                out(f"{r['role']:<8} {r['algorithm']:<11} {r['keyid']}  {r['path']}")
            out(f"threshold: {k.threshold} of {len(k.trusted)} trusted key(s)")
        return 0
    which = args.which
    if which == "signing":
        pem = ws.signer().public().pem()
    elif which == "ledger":
        pem = load_public(ws.resolve(k.ledger_public)).pem()
    else:
        pem = load_public(which).pem()
    if args.output:
        Path(args.output).write_bytes(pem)
    else:
        out(pem.decode())
    return 0
