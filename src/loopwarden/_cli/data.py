"""loopwarden data manifest|verify|diff|scan

Exit codes (DESIGN.md): 0 clean / identical; 1 findings, differences or unverified input; 2 usage or
environment error (nothing is written then).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from loopwarden._cli._common import out

if TYPE_CHECKING:
    from loopwarden.checks.interface import Limits
    from loopwarden.domain import Report


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return v


def build(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    m = sub.add_parser("manifest", help="write a provenance manifest of a dataset (file or folder of shards)")
    m.add_argument("path", help="a shard, or a folder of shards (hidden files are skipped)")
    m.add_argument("-o", "--output", help="manifest file to write (default: ./<name>.manifest.json)")
    m.add_argument(
        "--source", action="append", default=[], metavar="URI", help="an upstream source (repeatable)"
    )
    m.add_argument("--license", metavar="SPDX", help="the data's licence, an SPDX identifier or expression")
    m.add_argument(
        "--generator-model", metavar="DIGEST", help="digest (sha256:…) of the model that generated it"
    )
    m.add_argument("--pipeline", metavar="NAME", help="the synthesis pipeline that generated it")
    m.add_argument("--pipeline-version", metavar="V", help="the pipeline's version")
    m.add_argument("--commit", metavar="SHA", help="the pipeline's source commit")
    m.add_argument(
        "--prompt-template", metavar="FILE", help="the prompt template used (its SHA-256 is recorded)"
    )
    m.add_argument("--seed", type=int, help="the generation seed")
    m.add_argument(
        "--id-field", metavar="F", help="the record field holding a stable id (else the record number)"
    )
    m.add_argument("--sign", action="store_true", help="sign with the workspace key: writes <stem>.dsse.json")
    m.add_argument(
        "--record", action="store_true", help="record the signed manifest in the workspace's ledger"
    )
    m.add_argument("--croissant", metavar="FILE", help="also export Croissant 1.1 JSON-LD to FILE")
    m.add_argument("--name", help="the dataset's name in the Croissant export (default: the folder's name)")
    m.add_argument(
        "--inline-max",
        type=_positive,
        default=None,
        metavar="N",
        help="records above which the record table goes to <stem>.records.jsonl (default 10000)",
    )
    v = sub.add_parser(
        "verify", help="compare data with its manifest: added, removed, modified shards and records"
    )
    v.add_argument("path")
    v.add_argument("--manifest", required=True, metavar="M")
    v.add_argument(
        "--signature",
        metavar="ENVELOPE",
        help="also check this DSSE envelope of the manifest against the workspace's trusted keys",
    )
    v.add_argument(
        "--ledger",
        action="store_true",
        help="also require the manifest to be recorded, signed by a trusted key, in the workspace's ledger",
    )
    d = sub.add_parser("diff", help="what changed between two manifests (a new ingestion)")
    d.add_argument("old")
    d.add_argument("new")
    s = sub.add_parser(
        "scan", help="scan prompt/response or text corpora for poisoning and backdoor triggers"
    )
    s.add_argument("paths", nargs="+", help="shards or folders of shards")
    s.add_argument("--prompt-field", metavar="F")
    s.add_argument("--response-field", metavar="F")
    s.add_argument("--text-field", metavar="F")
    s.add_argument("--id-field", metavar="F")
    s.add_argument(
        "--format",
        choices=("text", "json", "sarif"),
        default=None,
        help="output format (default text; --json means json)",
    )
    s.add_argument(
        "--fail-on", default="low", metavar="SEVERITY", help="lowest severity that fails (default low)"
    )
    s.add_argument("--embed", action="store_true", help="add the embedding tier (needs loopwarden[embed])")
    s.add_argument("--executor", choices=("local", "ray"), default="local")
    for sp in (m, v, s):
        sp.add_argument(
            "--max-record-bytes",
            type=_positive,
            default=None,
            metavar="N",
            help="largest single record/line read (default 64 MiB)",
        )
    for sp in sub.choices.values():
        sp.add_argument("--workspace", metavar="DIR", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        sp.add_argument("--json", action="store_true", help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def _limits(args: argparse.Namespace) -> Limits:
    from loopwarden.checks.interface import Limits

    if args.max_record_bytes is None:
        return Limits()
    return Limits(max_record_bytes=args.max_record_bytes)


def render(report: Report, *, title: str) -> str:
    """A plain, readable listing of a report: one line per target, its findings indented below."""
    lines = []
    for t in report.targets:
        head = f"{t.verdict.value.upper():<10} {t.path}"
        if t.reason:
            head += f"  ({t.reason})"
        lines.append(head)
        for f in t.findings:
            where = f" (line {f.location.line})" if f.location.line is not None else ""
            lines.append(f"  {f.rule_id} {f.severity!s:<8} {f.message}{where}")
    c = report.counts()
    lines.append(
        f"{title}: {len(report.targets)} target(s): {c['clean']} clean, {c['findings']} with findings, "
        f"{c['unverified']} unverified"
    )
    return "\n".join(lines)


def _manifest(args: argparse.Namespace) -> int:
    from loopwarden.checks.data.manifest import (
        Generator,
        ManifestOptions,
        build_manifest,
        manifest_files,
        write_manifest,
    )
    from loopwarden.domain import Digest
    from loopwarden.errors import InputError, UsageError

    path = Path(args.path)
    name = args.name or path.resolve().name.split(".")[0] or "dataset"
    output = Path(args.output) if args.output else Path(f"{name}.manifest.json")
    generator = None
    if args.generator_model or args.pipeline or args.pipeline_version or args.commit:
        model = None
        if args.generator_model:
            try:
                model = Digest.parse(args.generator_model)
            except ValueError as exc:
                raise UsageError(f"--generator-model: {exc}") from None
        template = None
        if args.prompt_template:
            import hashlib

            try:
                template = hashlib.sha256(Path(args.prompt_template).read_bytes()).hexdigest()
            except OSError as exc:
                raise InputError(args.prompt_template, f"cannot read: {exc.strerror or exc}") from None
        generator = Generator(model, args.pipeline, args.pipeline_version, args.commit, template, args.seed)
    elif args.prompt_template or args.seed is not None:
        raise UsageError(
            "--prompt-template and --seed describe a generator: give --generator-model or --pipeline"
        )
    options = ManifestOptions(
        id_field=args.id_field,
        sources=tuple(args.source),
        license=args.license,
        generator=generator,
        limits=_limits(args),
        **({"inline_max": args.inline_max} if args.inline_max else {}),
    )
    ws = None
    if args.sign or args.record:
        from loopwarden._cli._common import workspace

        ws = workspace(args)  # fail before reading a large dataset
    croissant = Path(args.croissant) if args.croissant else None
    exclude = manifest_files(output) + ([croissant] if croissant else [])
    built = build_manifest(path, options, exclude=exclude, workdir=output.parent)
    written = write_manifest(
        built,
        output,
        sign=args.sign,
        record=args.record,
        workspace=ws,
        croissant=croissant,
        dataset_name=name,
    )
    if args.json:
        out(built.report.dumps())
    else:
        out(render(built.report, title="manifest"))
        doc = built.document
        out(f"wrote {written.manifest} ({len(doc['shards'])} shard(s), {doc['recordCount']} records)")
        for extra in (written.sidecar, written.envelope, written.croissant):
            if extra is not None:
                out(f"wrote {extra}")
        if written.ledger_index is not None:
            out(f"recorded as ledger entry {written.ledger_index}")
    return built.report.exit_code()


def _verify(args: argparse.Namespace) -> int:
    from loopwarden.checks.data.manifest import verify_dataset
    from loopwarden.domain import Severity

    ws = None
    if args.signature or args.ledger:
        from loopwarden._cli._common import workspace

        ws = workspace(args)
    report = verify_dataset(
        Path(args.path),
        Path(args.manifest),
        limits=_limits(args),
        envelope=Path(args.signature) if args.signature else None,
        trusted=ws.trusted_keys if ws is not None else None,
        ledger=ws if args.ledger else None,
    )
    out(report.dumps() if args.json else render(report, title="verify"))
    return report.exit_code(Severity.INFO)


def _diff(args: argparse.Namespace) -> int:
    from loopwarden.checks.data.manifest import diff_manifests
    from loopwarden.domain import Severity

    report = diff_manifests(Path(args.old), Path(args.new))
    out(report.dumps() if args.json else render(report, title="diff"))
    return report.exit_code(Severity.INFO)


def _scan(args: argparse.Namespace) -> int:
    from loopwarden.checks.data.formats import expand_paths
    from loopwarden.checks.data.poison import scan_corpus
    from loopwarden.domain import Severity
    from loopwarden.errors import UsageError

    try:
        fail_on = Severity.parse(args.fail_on)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None
    report = scan_corpus(
        expand_paths([Path(p) for p in args.paths]),
        prompt_field=args.prompt_field,
        response_field=args.response_field,
        text_field=args.text_field,
        id_field=args.id_field,
        limits=_limits(args),
        embed=args.embed,
        executor=args.executor,
    )
    fmt = args.format or ("json" if args.json else "text")
    if fmt == "sarif":
        from loopwarden.report.sarif import SarifRenderer

        out(SarifRenderer().render(report, fail_on=fail_on))
    else:
        out(report.dumps() if fmt == "json" else render(report, title="scan"))
    return report.exit_code(fail_on)


def run(args: argparse.Namespace) -> int:
    from loopwarden.errors import UsageError

    actions = {"manifest": _manifest, "verify": _verify, "diff": _diff, "scan": _scan}
    if args.action not in actions:
        raise UsageError(f"unknown data action {args.action!r}")
    return actions[args.action](args)
