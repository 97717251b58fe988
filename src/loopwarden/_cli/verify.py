"""loopwarden verify PATH --key PUB | --certificate-chain PEM... | --sigstore-identity ID --sigstore-issuer URL
[--offline] [--trusted-root FILE] [--signature FILE] [--incremental] [--full] [--json] [--record]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loopwarden._cli._common import out


def build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the model folder, dataset folder or file to verify")
    trust = parser.add_mutually_exclusive_group(required=True)
    trust.add_argument("--key", metavar="PUB", help="PEM public key (key method)")
    trust.add_argument(
        "--certificate-chain",
        "--certificate",
        dest="certificate_chain",
        metavar="PEM",
        action="append",
        help="trusted root / intermediate CA certificates (certificate method; repeatable)",
    )
    trust.add_argument(
        "--sigstore-identity",
        metavar="ID",
        help="Sigstore keyless method: the signer's identity (certificate SAN: e-mail or URI); "
        "needs --sigstore-issuer",
    )
    parser.add_argument(
        "--sigstore-issuer", metavar="URL", help="the OIDC issuer that vouched for --sigstore-identity"
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="keyless: use the Sigstore trust root shipped with sigstore (or cached), no TUF refresh",
    )
    parser.add_argument(
        "--trusted-root",
        metavar="FILE",
        help="keyless: a Sigstore trusted_root.json to use instead of the public-good instance's",
    )
    parser.add_argument(
        "--signature", metavar="FILE", help="the signature (default: model.sig beside the folder)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--incremental",
        action="store_true",
        help="re-hash only files whose size, mtime, ctime or inode changed since the last run",
    )
    mode.add_argument("--full", action="store_true", help="re-hash every file (the default)")
    parser.add_argument(
        "--ignore-path",
        metavar="P",
        action="append",
        default=[],
        help="also leave out this path (relative to the folder; repeatable); reported as info",
    )
    parser.add_argument(
        "--kind",
        choices=["model", "dataset", "other"],
        default="model",
        help="what the folder is, for the report (default: model)",
    )
    parser.add_argument("--record", action="store_true", help="append the verification result to the ledger")


def run(args: argparse.Namespace) -> int:
    from loopwarden import __version__
    from loopwarden._cli.sign import cache_dir, progress
    from loopwarden.attest.keys import load_public
    from loopwarden.domain import ArtifactKind, Report
    from loopwarden.errors import UsageError
    from loopwarden.signing import (
        CertificateTrust,
        KeyTrust,
        SigstoreTrust,
        load_certificates,
        record_verification,
        verify,
    )
    from loopwarden.signing.keyless import require_sigstore
    from loopwarden.signing.oms import Trust

    keyless_only = [
        flag
        for flag, value in (
            ("--sigstore-issuer", args.sigstore_issuer),
            ("--offline", args.offline),
            ("--trusted-root", args.trusted_root),
        )
        if value
    ]
    trust: Trust
    if args.sigstore_identity is not None:
        if not args.sigstore_issuer:
            raise UsageError("--sigstore-identity needs --sigstore-issuer URL (the OIDC issuer)")
        require_sigstore()
        trust = SigstoreTrust(
            args.sigstore_identity,
            args.sigstore_issuer,
            offline=args.offline,
            trusted_root=Path(args.trusted_root) if args.trusted_root else None,
        )
    elif keyless_only:
        raise UsageError(f"{', '.join(keyless_only)}: only with --sigstore-identity (keyless method)")
    elif args.key:
        trust = KeyTrust(load_public(args.key))
    else:
        trust = CertificateTrust(tuple(load_certificates(args.certificate_chain)))
    ws = None
    if args.record:
        from loopwarden._cli._common import workspace

        ws = workspace(args)
    result = verify(
        args.path,
        trust,
        signature=args.signature,
        ignore_paths=args.ignore_path,
        incremental=args.incremental and not args.full,
        cache_dir=cache_dir(args),
        kind=ArtifactKind(args.kind),
        progress=progress(True),
    )
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if ws is not None and result.statement is not None:
        record_verification(result, ws, tool_version=__version__)
    report = Report(__version__, (result.result,))
    if args.json:
        sys.stdout.write(report.dumps())
    else:
        for f in result.result.findings:
            out(f"{f.rule_id} {f.severity}: {f.message}")
        if result.verified:
            files = len(result.statement.resources) if result.statement else 0
            out(
                f"verified {args.path}: {files} resource(s) signed by {_who(result.signer)}"
                + (
                    f" ({result.files_reused} file(s) unchanged since the last run)"
                    if args.incremental
                    else ""
                )
            )
        else:
            out(f"NOT verified: {args.path} (signature {result.signature})")
    return 0 if result.verified else 1


def _who(signer: dict[str, object] | None) -> str:
    if not signer:
        return "?"
    if signer.get("method") == "key":
        return f"key {str(signer.get('hint'))[:16]}…"
    if signer.get("method") == "sigstore":
        index = signer.get("log_index")
        return f"{signer.get('identity')} (issuer {signer.get('issuer')}" + (
            f", Rekor log index {index})" if index is not None else ")"
        )
    return f"certificate {signer.get('subject')}"
