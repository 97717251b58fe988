"""loopwarden sign PATH (--key KEY | --sigstore [--identity-token TOKEN]) [--signature FILE] [--hash
sha256|blake3] [--shard-size N] [--ignore-path P]... [--record]"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from loopwarden._cli._common import emit_json, out


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "path", help="the model folder, dataset folder or file to sign (with --manifest: its name)"
    )
    method = parser.add_mutually_exclusive_group(required=True)
    method.add_argument("--key", help="PEM private key (ECDSA P-256/384/521)")
    method.add_argument(
        "--sigstore",
        action="store_true",
        help="Sigstore keyless signing: a Fulcio certificate for your OIDC identity, logged in Rekor (network)",
    )
    parser.add_argument(
        "--identity-token",
        metavar="TOKEN",
        help="with --sigstore: the OIDC identity token (default: $SIGSTORE_IDENTITY_TOKEN, else the CI's "
        "ambient credential)",
    )
    parser.add_argument(
        "--password-env",
        metavar="NAME",
        help="environment variable holding the key's password (default: LOOPWARDEN_KEY_PASSWORD)",
    )
    parser.add_argument(
        "--certificate",
        metavar="CERT",
        help="sign with the certificate method: the key's PEM signing certificate",
    )
    parser.add_argument(
        "--certificate-chain",
        metavar="PEM",
        action="append",
        default=[],
        help="intermediate certificates to put in the bundle (repeatable)",
    )
    parser.add_argument(
        "--signature",
        metavar="FILE",
        help="where to write the signature (default: model.sig beside the folder)",
    )
    parser.add_argument(
        "--hash",
        choices=["sha256", "blake3", "blake2b"],
        default="sha256",
        help="file digest (default sha256, the one every OMS verifier supports)",
    )
    parser.add_argument(
        "--shard-size",
        type=int,
        metavar="BYTES",
        help="use the shards serialization with this shard size (hashes one large file on all cores)",
    )
    parser.add_argument(
        "--shards", action="store_true", help="use the shards serialization, 1,000,000,000-byte shards"
    )
    parser.add_argument(
        "--ignore-path",
        metavar="P",
        action="append",
        default=[],
        help="leave out this path (relative to the folder; repeatable); recorded in the signature",
    )
    parser.add_argument(
        "--allow-symlinks", action="store_true", help="follow symbolic links inside the folder"
    )
    parser.add_argument(
        "--manifest",
        metavar="DIGESTS.json",
        help='sign precomputed digests instead of reading files ({"name": "sha256:HEX", ...}); needs --signature',
    )
    parser.add_argument("--record", action="store_true", help="append the signature to the workspace ledger")


def _password(args: argparse.Namespace) -> bytes | None:
    from loopwarden.errors import UsageError
    from loopwarden.workspace import PASSWORD_ENV

    name = args.password_env or PASSWORD_ENV
    value = os.environ.get(name)
    if args.password_env and value is None:
        raise UsageError(f"--password-env {name}: that environment variable is not set")
    return value.encode() if value else None


def cache_dir(args: argparse.Namespace) -> Path | None:
    """The workspace's verify cache, else the user's cache folder."""
    from loopwarden.errors import WorkspaceError
    from loopwarden.workspace import STATE_DIR, find_workspace

    try:
        ws = find_workspace(explicit=getattr(args, "workspace", None))
    except WorkspaceError:
        if getattr(args, "workspace", None):
            raise
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        return Path(base) / "loopwarden" / "verify-cache"
    return ws.root / STATE_DIR / "verify-cache"


def progress(enabled: bool) -> Any:
    """A progress factory that writes bytes hashed and the rate to a terminal, or None."""
    if not enabled or not sys.stderr.isatty():
        return None
    from loopwarden.signing.hashing import RateMeter

    def report(done: int, total: int, secs: float) -> None:
        rate = done / secs / 2**20 if secs > 0 else 0.0
        sys.stderr.write(f"\rhashed {done / 2**30:.2f} of {total / 2**30:.2f} GiB, {rate:.0f} MiB/s ")
        sys.stderr.flush()

    return lambda total: RateMeter(total, report)


def run(args: argparse.Namespace) -> int:
    from loopwarden import __version__
    from loopwarden.attest.keys import load_private
    from loopwarden.errors import UsageError
    from loopwarden.signing import (
        CertificateSigner,
        KeylessSigner,
        KeySigner,
        load_certificates,
        record_signature,
    )
    from loopwarden.signing.interface import DEFAULT_SHARD_SIZE
    from loopwarden.signing.sign import sign, sign_digests

    signer: KeySigner | CertificateSigner | KeylessSigner
    if args.sigstore:
        if args.certificate or args.certificate_chain or args.password_env:
            raise UsageError(
                "--sigstore signs without a key: drop --certificate, --certificate-chain, --password-env"
            )
        signer = KeylessSigner(args.identity_token)
    elif args.identity_token:
        raise UsageError("--identity-token only applies with --sigstore")
    elif args.certificate:
        key = load_private(args.key, _password(args))
        certs = load_certificates([args.certificate])
        signer = CertificateSigner(key, certs[0], tuple(load_certificates(args.certificate_chain)))
    else:
        if args.certificate_chain:
            raise UsageError("--certificate-chain needs --certificate")
        signer = KeySigner(load_private(args.key, _password(args)))
    shard = args.shard_size if args.shard_size is not None else (DEFAULT_SHARD_SIZE if args.shards else None)
    if shard is not None and shard < 1:
        raise UsageError(f"--shard-size must be positive, got {shard}")
    ws = None
    if args.record:
        from loopwarden._cli._common import workspace

        ws = workspace(args)  # fail before any work if there is no workspace
    if args.manifest:
        if not args.signature:
            raise UsageError("--manifest needs --signature (there is no folder to put model.sig beside)")
        result = sign_digests(
            Path(args.path).name or args.path,
            args.manifest,
            signer,
            signature=args.signature,
            shard_size=shard,
        )
    else:
        result = sign(
            args.path,
            signer,
            signature=args.signature,
            hash_type=args.hash,
            shard_size=shard,
            ignore_paths=args.ignore_path,
            allow_symlinks=args.allow_symlinks,
            cache_dir=cache_dir(args),
            progress=progress(not args.json),
        )
        if sys.stderr.isatty() and not args.json:
            sys.stderr.write("\n")
    recorded = (
        record_signature(
            result, ws, tool_version=__version__, path=None if args.manifest else Path(args.path)
        )
        if ws is not None
        else []
    )
    info = {
        "signature": str(result.signature),
        "subject": {"name": result.statement.name, "sha256": result.statement.root},
        "resources": len(result.statement.resources),
        "serialization": result.statement.serialization.to_json(),
        "signer": result.signer,
        "bytes_hashed": result.bytes_hashed,
        "ledger_indexes": [r.index for r in recorded],
    }
    if args.json:
        emit_json(info)
    else:
        out(
            f"signed {args.path}: {len(result.statement.resources)} resource(s), sha256:{result.statement.root}"
        )
        out(f"  signature: {result.signature}")
        if recorded:
            out(f"  recorded in the ledger at {', '.join(str(r.index) for r in recorded)}")
    return 0
