"""Dataset provenance manifests: what a dataset is, record by record, and where it came from.

A manifest lists every shard of a dataset (relative URI, size, format, compression, record count, SHA-256 of
the file) and, per shard, every record's stable id and the SHA-256 of its canonical bytes (see
:mod:`loopwarden.checks.data.formats`), folded into an RFC 9162 Merkle root. It also carries the upstream
sources, the licence and, for synthesized data, the generator (model digest, or pipeline + version + commit,
prompt-template hash and seed). It contains no timestamps and no absolute paths: the same data gives the same
bytes.

Compactness: up to ``inline_max`` records (default 10,000) the per-record table is inline, per shard; above
it the table goes to a sidecar JSON-lines file (``<manifest stem>.records.jsonl``, one
``{"id","sha256","shard"}`` line per record) whose SHA-256 the manifest records, so signing the manifest
covers it. Building streams: records go to the sidecar as they are read; only the ids of the shard being read
are kept (to find duplicates).

Merkle leaves: the RFC 8785 bytes of ``{"id": ID, "sha256": HEX}`` per record, in shard order, so a shard's
root can be recomputed from the table alone and a single record proved with an inclusion proof.

Matching (``verify``, ``diff``): with an id field, records match by id (a repeated id matches occurrence by
occurrence); without one the ids are record numbers, which shift when a record is removed, so records match by
content and a changed record is one whose number lost its old content and gained a new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any, Final

from loopwarden import __version__
from loopwarden.checks.data.formats import (
    MISSING_ID_PROBLEM,
    Record,
    RecordError,
    ShardFormat,
    canonical_bytes,
    detect_shard,
    discover_shards,
    iter_records,
)
from loopwarden.checks.interface import Limits
from loopwarden.domain import (
    ArtifactKind,
    Digest,
    Finding,
    Location,
    Report,
    ResourceDescriptor,
    Severity,
    TargetResult,
)
from loopwarden.errors import InputError, UsageError
from loopwarden.ledger.merkle import EMPTY_ROOT, leaf_hash, node_hash

__all__ = [
    "MANIFEST_TYPE",
    "BuildResult",
    "Generator",
    "ManifestOptions",
    "build_manifest",
    "diff_manifests",
    "load_manifest",
    "manifest_statement",
    "verify_dataset",
    "write_manifest",
]

MANIFEST_TYPE: Final = "https://loopwarden.dev/dataset-manifest/v1"
INLINE_MAX: Final = 10_000
MAX_PROBLEMS_PER_SHARD: Final = 1_000
MAX_RECORD_FINDINGS_PER_SHARD: Final = 1_000
_SPDX_RE: Final = re.compile(r"^[A-Za-z0-9.+\-() :]{1,200}$")
_HEX64_RE: Final = re.compile(r"^[0-9a-f]{64}$")


# ------------------------------------------------------------------------------------------------- rules


@dataclass(frozen=True, slots=True)
class _Rule:
    rule_id: str
    severity: Severity
    title: str


MALFORMED_RECORD: Final = _Rule("LW-DATA-001", Severity.MEDIUM, "record could not be read")
SHARD_UNREADABLE: Final = _Rule("LW-DATA-002", Severity.HIGH, "shard could not be read to its end")
MISSING_ID: Final = _Rule("LW-DATA-003", Severity.MEDIUM, "record has no usable id field")
DUPLICATE_ID: Final = _Rule("LW-DATA-004", Severity.MEDIUM, "record id repeated within a shard")
SYMLINK: Final = _Rule("LW-DATA-005", Severity.MEDIUM, "symbolic link not followed")
SHARD_ADDED: Final = _Rule("LW-DATA-010", Severity.HIGH, "shard added")
SHARD_REMOVED: Final = _Rule("LW-DATA-011", Severity.HIGH, "shard removed")
SHARD_MODIFIED: Final = _Rule("LW-DATA-012", Severity.HIGH, "shard modified")
RECORD_ADDED: Final = _Rule("LW-DATA-013", Severity.HIGH, "record added")
RECORD_REMOVED: Final = _Rule("LW-DATA-014", Severity.HIGH, "record removed")
RECORD_MODIFIED: Final = _Rule("LW-DATA-015", Severity.HIGH, "record modified")
RECORDS_REORDERED: Final = _Rule("LW-DATA-016", Severity.MEDIUM, "records reordered")
MANIFEST_INCONSISTENT: Final = _Rule("LW-DATA-017", Severity.CRITICAL, "manifest inconsistent with itself")
MANIFEST_SIGNATURE: Final = _Rule("LW-DATA-018", Severity.CRITICAL, "manifest signature or attestation fails")
RECORDS_TRUNCATED: Final = _Rule("LW-DATA-019", Severity.HIGH, "more record differences than listed")


def _finding(rule: _Rule, message: str, path: str, *, line: int | None = None, **evidence: Any) -> Finding:
    return Finding(rule.rule_id, rule.severity, message, Location(path, line=line), evidence)


# ----------------------------------------------------------------------------------------------- options


@dataclass(frozen=True, slots=True)
class Generator:
    """Who or what synthesized the data: a model digest, and/or a pipeline at a commit, with its prompt
    template's hash and its seed."""

    model: Digest | None = None
    pipeline: str | None = None
    pipeline_version: str | None = None
    commit: str | None = None
    prompt_template_sha256: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.pipeline is not None and (not self.pipeline_version or not self.commit):
            raise UsageError("--pipeline needs --pipeline-version and --commit")
        if self.pipeline is None and (self.pipeline_version or self.commit):
            raise UsageError("--pipeline-version and --commit describe a --pipeline; name it")
        if self.is_empty():
            raise UsageError("a generator needs --generator-model or --pipeline")

    def is_empty(self) -> bool:
        return self.model is None and self.pipeline is None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.model is not None:
            out["model"] = {"digest": {self.model.algorithm: self.model.hex}}
        if self.pipeline is not None:
            out["pipeline"] = {"name": self.pipeline, "version": self.pipeline_version, "commit": self.commit}
        if self.prompt_template_sha256 is not None:
            out["promptTemplate"] = {"digest": {"sha256": self.prompt_template_sha256}}
        if self.seed is not None:
            out["seed"] = self.seed
        return out


@dataclass(frozen=True, slots=True)
class ManifestOptions:
    id_field: str | None = None
    sources: tuple[str, ...] = ()
    license: str | None = None
    generator: Generator | None = None
    limits: Limits = field(default_factory=Limits)
    inline_max: int = INLINE_MAX

    def __post_init__(self) -> None:
        if self.license is not None and not _SPDX_RE.match(self.license):
            raise UsageError(f"--license {self.license!r} is not an SPDX licence expression")
        for s in self.sources:
            if not s.strip():
                raise UsageError("--source needs a non-empty URI")


# ------------------------------------------------------------------------------------------------ merkle


class _Root:
    """RFC 9162 Merkle tree hash over a stream of leaves, in O(log n) memory (same fold as
    ``root_from_leaves``)."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.count = 0

    def add(self, entry: bytes) -> None:
        size, cur = 1, leaf_hash(entry)
        while self._stack and self._stack[-1][0] == size:
            _, left = self._stack.pop()
            cur = node_hash(left, cur)
            size *= 2
        self._stack.append((size, cur))
        self.count += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        acc = self._stack[-1][1]
        for _, h in reversed(self._stack[:-1]):
            acc = node_hash(h, acc)
        return acc


def _leaf_entry(rid: str, hexdigest: str) -> bytes:
    return canonical_bytes({"id": rid, "sha256": hexdigest})


def table_root(table: Iterable[tuple[str, str]]) -> str:
    """The Merkle root (hex) of a record table of ``(id, sha256 hex)`` pairs."""
    r = _Root()
    for rid, h in table:
        r.add(_leaf_entry(rid, h))
    return r.root().hex()


# ------------------------------------------------------------------------------------------------- build


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _uri(root: Path, shard: Path) -> str:
    if root.is_file() or root.is_symlink():
        return shard.name
    return PurePosixPath(*shard.relative_to(root).parts).as_posix()


def _problem_finding(uri: str, err: RecordError) -> Finding:
    if err.fatal:
        return _finding(SHARD_UNREADABLE, err.problem, uri, line=err.line, record=err.number)
    if err.problem.startswith(MISSING_ID_PROBLEM):
        return _finding(MISSING_ID, err.problem, uri, line=err.line, record=err.number)
    return _finding(MALFORMED_RECORD, err.problem, uri, line=err.line, record=err.number)


MAX_FIELDS: Final = 256
_TYPE_NAMES: Final = {str: "str", bool: "bool", int: "int", float: "float"}


def _note_fields(fields: dict[str, str], value: Any) -> None:
    """Top-level field → JSON type (``str``, ``int``, ``float``, ``bool``, ``mixed`` or ``other``), for the
    Croissant record sets; bounded to ``MAX_FIELDS`` names."""
    if not isinstance(value, dict):
        return
    for k, v in value.items():
        if v is None:
            continue
        t = _TYPE_NAMES.get(type(v), "other")
        old = fields.get(k)
        if old is None:
            if len(fields) < MAX_FIELDS:
                fields[k] = t
        elif old != t:
            fields[k] = "float" if {old, t} == {"int", "float"} else "mixed"


@dataclass(frozen=True, slots=True)
class BuildResult:
    """A built manifest document, the per-shard report (problems make a shard ``unverified``) and, when the
    record table did not fit inline, the temporary sidecar file holding it."""

    document: dict[str, Any]
    report: Report
    sidecar: Path | None


def _discover(
    path: Path, exclude: Iterable[Path], excluded_uris: Iterable[str] = ()
) -> tuple[list[Path], list[Path], list[str]]:
    """Shards under ``path`` minus ``exclude`` (files) and ``excluded_uris``; also the URIs of the excluded
    files that do lie under ``path`` (recorded in the manifest so that ``verify`` leaves them out too)."""
    if not path.exists() and not path.is_symlink():
        raise InputError(path, "no such file or folder")
    files, links = discover_shards(path)
    skip = {p.resolve() for p in exclude}
    skip_uris = set(excluded_uris)
    kept: list[Path] = []
    dropped: list[str] = []
    for f in files:
        uri = _uri(path, f)
        if f.resolve() in skip or uri in skip_uris:
            dropped.append(uri)
        else:
            kept.append(f)
    if path.is_dir():
        root = path.resolve()
        for p in skip:
            with contextlib.suppress(ValueError):
                dropped.append(PurePosixPath(*p.relative_to(root).parts).as_posix())
    return kept, links, sorted(set(dropped))


def build_manifest(
    path: Path, options: ManifestOptions, *, exclude: Iterable[Path] = (), workdir: Path | None = None
) -> BuildResult:
    """Read every shard under ``path`` once, streaming, and build the manifest document.

    ``exclude`` names files under ``path`` that are not data (the manifest's own output files, a Croissant
    export); those under ``path`` are listed in the manifest's ``excluded`` and left out by ``verify``. The
    record table is spooled to a temporary file in ``workdir`` (default: the system's temporary folder); pass
    the output's folder so that a large table never has to cross file systems.
    """
    files, links, excluded = _discover(path, exclude)
    if not files:
        raise InputError(path, "no data files to put in a manifest")
    limits = options.limits
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".lw-records-", suffix=".jsonl", dir=workdir)
    except OSError as exc:
        raise InputError(
            workdir or Path(tempfile.gettempdir()), f"cannot write: {exc.strerror or exc}"
        ) from None
    tmp = Path(tmp_name)
    shards: list[dict[str, Any]] = []
    targets: list[TargetResult] = []
    total = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as side:
            for shard in files:
                uri = _uri(path, shard)
                entry, result = _build_shard(shard, uri, options, limits, side)
                total += entry["records"]
                shards.append(entry)
                targets.append(result)
        for link in links:
            uri = _uri(path, link) if link != path else link.name
            f = _finding(SYMLINK, "symbolic link not followed: its target is not in the manifest", uri)
            targets.append(
                TargetResult.from_findings(uri, ArtifactKind.DATASET, [f], unverified_reason=f.message)
            )
        doc: dict[str, Any] = {
            "_type": MANIFEST_TYPE,
            "idField": options.id_field,
            "license": options.license,
            "sources": sorted(set(options.sources)),
            "generator": options.generator.to_json() if options.generator else None,
            "tool": {"name": "loopwarden", "version": __version__},
            "shards": shards,
            "recordCount": total,
            "excluded": excluded,
        }
        sidecar: Path | None = tmp
        if total <= options.inline_max:
            tables: dict[str, list[list[str]]] = defaultdict(list)
            with tmp.open(encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    tables[row["shard"]].append([row["id"], row["sha256"]])
            for s in shards:
                s["recordTable"] = tables.get(s["uri"], [])
            tmp.unlink()
            sidecar = None
        return BuildResult(doc, Report(__version__, tuple(targets)), sidecar)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _build_shard(
    shard: Path, uri: str, options: ManifestOptions, limits: Limits, side: IO[str]
) -> tuple[dict[str, Any], TargetResult]:
    try:
        before = shard.stat()
        sha = _sha256_file(shard)
        info = detect_shard(shard)
    except OSError as exc:
        raise InputError(shard, f"cannot read: {exc.strerror or exc}") from None
    size = before.st_size
    root = _Root()
    findings: list[Finding] = []
    problems: list[dict[str, Any]] = []
    n_problems = 0
    complete = True
    seen: dict[str, int] = {}
    fields: dict[str, str] = {}
    for item in iter_records(shard, id_field=options.id_field, limits=limits, info=info):
        if isinstance(item, RecordError):
            n_problems += 1
            complete = complete and not item.fatal
            if len(problems) < MAX_PROBLEMS_PER_SHARD:
                problems.append({"record": item.number, "line": item.line, "problem": item.problem})
                findings.append(_problem_finding(uri, item))
            continue
        h = hashlib.sha256(item.raw).hexdigest()
        _note_fields(fields, item.value)
        if options.id_field is not None:
            first = seen.setdefault(item.id, item.number)
            if first != item.number:
                n_problems += 1
                if len(problems) < MAX_PROBLEMS_PER_SHARD:
                    msg = f"record id {item.id!r} repeats record {first}"
                    problems.append({"record": item.number, "line": item.line, "problem": msg})
                    findings.append(_finding(DUPLICATE_ID, msg, uri, line=item.line, id=item.id))
        root.add(_leaf_entry(item.id, h))
        side.write(json.dumps({"id": item.id, "sha256": h, "shard": uri}, sort_keys=True, ensure_ascii=False))
        side.write("\n")
    try:
        after = shard.stat()
    except OSError as exc:
        raise InputError(shard, f"cannot read: {exc.strerror or exc}") from None
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        # The file hash and the record hashes come from two reads: they must be of the same bytes.
        raise InputError(shard, "the file changed while it was being read", hint="run the command again")
    entry: dict[str, Any] = {
        "uri": uri,
        "size": size,
        "sha256": sha,
        "format": str(info.format),
        "compression": str(info.compression),
        "records": root.count,
        "merkleRoot": root.root().hex(),
        "complete": complete,
        "problems": problems,
        "problemCount": n_problems,
    }
    if fields and info.format is not ShardFormat.TEXT:
        entry["fields"] = fields
    reason = None
    if n_problems:
        reason = (
            f"{n_problems} record problem(s); first: {problems[0]['problem']}" if problems else "problems"
        )
    result = TargetResult.from_findings(
        uri, ArtifactKind.DATASET, findings, unverified_reason=reason, digest=Digest("sha256", sha)
    )
    return entry, result


# ------------------------------------------------------------------------------------------------- write


def _sidecar_name(output: Path) -> Path:
    return output.with_name(output.stem + ".records.jsonl")


def envelope_name(output: Path) -> Path:
    """Where ``--sign`` puts the DSSE envelope of a manifest: ``<stem>.dsse.json`` beside it."""
    return output.with_name(output.stem + ".dsse.json")


def manifest_files(output: Path) -> list[Path]:
    """Every file a manifest at ``output`` may consist of (excluded from the data it describes)."""
    return [output, _sidecar_name(output), envelope_name(output)]


def _dump(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def manifest_statement(document: Mapping[str, Any], manifest_bytes: bytes, name: str) -> Any:
    """The in-toto statement of a manifest: the shards are its subjects; the predicate names the manifest
    file by digest and repeats the per-shard Merkle roots, the sources, licence and generator."""
    from loopwarden.attest.predicates import DATASET_MANIFEST
    from loopwarden.attest.statement import Statement

    subjects = tuple(
        ResourceDescriptor(name=s["uri"], digest={"sha256": s["sha256"]}) for s in document["shards"]
    )
    predicate = {
        "manifest": {"name": name, "digest": {"sha256": hashlib.sha256(manifest_bytes).hexdigest()}},
        "idField": document.get("idField"),
        "sources": document.get("sources", []),
        "license": document.get("license"),
        "generator": document.get("generator"),
        "recordCount": document.get("recordCount"),
        "shards": [
            {k: s[k] for k in ("uri", "format", "compression", "size", "records", "merkleRoot", "complete")}
            for s in document["shards"]
        ],
        "scanner": {"name": "loopwarden", "version": __version__},
    }
    return Statement(subjects, DATASET_MANIFEST, predicate)


@dataclass(frozen=True, slots=True)
class Written:
    manifest: Path
    sidecar: Path | None
    envelope: Path | None
    ledger_index: int | None
    croissant: Path | None


def write_manifest(
    build: BuildResult,
    output: Path,
    *,
    sign: bool = False,
    record: bool = False,
    workspace: Any = None,
    croissant: Path | None = None,
    dataset_name: str = "dataset",
) -> Written:
    """Write the manifest (and its sidecar, signature and Croissant export) all or nothing, then record it. A
    build is written once (its spooled record table is moved into place or deleted).

    Every file is first written to a temporary name beside its destination; the ledger append happens before
    the renames, so a failed append leaves nothing behind, and a failed rename can only leave an entry in the
    ledger that names files which do not exist yet (never a half-written file).
    """
    doc = dict(build.document)
    staged: list[tuple[Path, Path]] = []
    try:
        if build.sidecar is not None:
            side_dest = _sidecar_name(output)
            side_bytes_sha = _sha256_file(build.sidecar)
            doc["recordsFile"] = {
                "uri": side_dest.name,
                "sha256": side_bytes_sha,
                "records": doc["recordCount"],
            }
            staged.append((_stage_move(build.sidecar, side_dest), side_dest))
        data = _dump(doc)
        staged.append((_stage(output, data), output))
        envelope_path: Path | None = None
        envelope = None
        if sign or record:
            if workspace is None:
                raise UsageError("--sign and --record need a workspace (loopwarden init, or --workspace DIR)")
            from loopwarden.attest.dsse import sign_statement

            statement = manifest_statement(doc, data, output.name)
            envelope = sign_statement(statement, [workspace.signer()])
            if sign:
                envelope_path = envelope_name(output)
                staged.append((_stage(envelope_path, envelope.to_bytes()), envelope_path))
        croissant_path: Path | None = None
        if croissant is not None:
            from loopwarden.checks.data.croissant import to_croissant

            jsonld = to_croissant(doc, name=dataset_name)
            croissant_path = croissant
            staged.append((_stage(croissant, _dump(jsonld)), croissant))
        index: int | None = None
        if record and envelope is not None:
            with workspace.open_ledger() as led:
                index = led.append_batch([envelope], with_proofs=False)[0].index
        for tmp, dest in staged:
            os.replace(tmp, dest)
        staged = []
        return Written(
            output, _sidecar_name(output) if build.sidecar else None, envelope_path, index, croissant_path
        )
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        if build.sidecar is not None:
            build.sidecar.unlink(missing_ok=True)  # a build is written once: its spooled table is consumed


def _stage_move(src: Path, dest: Path) -> Path:
    """Move ``src`` to a temporary name beside ``dest`` (copying across file systems if need be)."""
    import shutil

    tmp = _stage(dest, b"")
    try:
        shutil.move(src, tmp)
        tmp.chmod(0o666 & ~_umask())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(dest, f"cannot write: {exc.strerror or exc}") from None
    return tmp


def _stage(dest: Path, data: bytes) -> Path:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    except OSError as exc:
        raise InputError(dest, f"cannot write: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o666 & ~_umask())  # mkstemp makes 0600; a manifest is an ordinary file
        fh.write(data)
    return Path(name)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -------------------------------------------------------------------------------------------------- load


@dataclass(frozen=True, slots=True)
class LoadedManifest:
    path: Path
    document: dict[str, Any]
    data: bytes
    tables: dict[str, list[tuple[str, str]]]
    problems: tuple[str, ...]
    """Self-inconsistencies: a table that does not fold to its shard's Merkle root, a sidecar with the wrong
    hash."""

    @property
    def id_field(self) -> str | None:
        v = self.document.get("idField")
        return v if isinstance(v, str) else None

    def shards(self) -> dict[str, dict[str, Any]]:
        return {s["uri"]: s for s in self.document["shards"]}


def _bad(path: Path, what: str) -> InputError:
    return InputError(path, f"not a loopwarden dataset manifest: {what}")


def load_manifest(path: Path) -> LoadedManifest:
    """Read and structurally validate a manifest and its record tables (inline or sidecar)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(path, f"invalid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("_type") != MANIFEST_TYPE:
        raise _bad(path, f"_type is not {MANIFEST_TYPE!r}")
    shards = doc.get("shards")
    if not isinstance(shards, list):
        raise _bad(path, "'shards' is not a list")
    seen: set[str] = set()
    for s in shards:
        ok = (
            isinstance(s, dict)
            and isinstance(s.get("uri"), str)
            and isinstance(s.get("sha256"), str)
            and _HEX64_RE.match(s["sha256"])
            and isinstance(s.get("records"), int)
            and isinstance(s.get("merkleRoot"), str)
        )
        if not ok:
            raise _bad(path, f"malformed shard entry {str(s)[:120]}")
        if s["uri"] in seen:
            raise _bad(path, f"shard {s['uri']!r} listed twice")
        seen.add(s["uri"])
    problems: list[str] = []
    tables: dict[str, list[tuple[str, str]]] = {s["uri"]: [] for s in shards}
    rf = doc.get("recordsFile")
    if rf is not None:
        if (
            not isinstance(rf, dict)
            or not isinstance(rf.get("uri"), str)
            or not isinstance(rf.get("sha256"), str)
        ):
            raise _bad(path, "malformed 'recordsFile'")
        side = path.parent / PurePosixPath(rf["uri"]).name
        try:
            actual = _sha256_file(side)
        except OSError as exc:
            raise InputError(
                side, f"cannot read the manifest's record table: {exc.strerror or exc}"
            ) from None
        if actual != rf["sha256"]:
            problems.append(f"record table {side.name} has sha256 {actual}, the manifest says {rf['sha256']}")
        with side.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                try:
                    row = json.loads(line)
                    tables[row["shard"]].append((str(row["id"]), str(row["sha256"])))
                except (ValueError, KeyError, TypeError):
                    raise InputError(side, f"line {n}: not a record-table row") from None
    else:
        for s in shards:
            table = s.get("recordTable")
            if not isinstance(table, list) or not all(
                isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r) for r in table
            ):
                raise _bad(path, f"shard {s['uri']!r} has no valid 'recordTable'")
            tables[s["uri"]] = [(r[0], r[1]) for r in table]
    for s in shards:
        table = tables[s["uri"]]
        if len(table) != s["records"]:
            problems.append(
                f"shard {s['uri']}: {len(table)} rows in the record table, the manifest says {s['records']}"
            )
        elif table_root(table) != s["merkleRoot"]:
            problems.append(f"shard {s['uri']}: the record table does not fold to its Merkle root")
    return LoadedManifest(path, doc, data, tables, tuple(problems))


# ----------------------------------------------------------------------------------------------- compare


@dataclass(frozen=True, slots=True)
class _Rec:
    id: str
    sha256: str
    line: int | None = None


def _compare(uri: str, old: Sequence[_Rec], new: Sequence[_Rec], *, by_id: bool) -> list[Finding]:
    """Record-level differences of one shard, each naming the record by id."""
    out: list[Finding] = []
    if by_id:
        olds: dict[str, list[_Rec]] = defaultdict(list)
        news: dict[str, list[_Rec]] = defaultdict(list)
        for r in old:
            olds[r.id].append(r)
        for r in new:
            news[r.id].append(r)
        for rid in sorted(olds.keys() | news.keys()):
            o, n = olds.get(rid, []), news.get(rid, [])
            for k in range(max(len(o), len(n))):
                a = o[k] if k < len(o) else None
                b = n[k] if k < len(n) else None
                out.extend(_one(uri, rid, a, b))
    else:
        old_count = Counter(r.sha256 for r in old)
        new_count = Counter(r.sha256 for r in new)
        removed = _surplus(old, old_count, new_count)
        added = _surplus(new, new_count, old_count)
        added_by_id = {r.id: r for r in added}
        for r in removed:
            b = added_by_id.pop(r.id, None)
            out.extend(_one(uri, r.id, r, b))
        for r in added_by_id.values():
            out.extend(_one(uri, r.id, None, r))
    if not out and [r.sha256 for r in old] != [r.sha256 for r in new]:
        out.append(_finding(RECORDS_REORDERED, "the same records in a different order", uri))
    return out


def _surplus(records: Sequence[_Rec], mine: Counter[str], theirs: Counter[str]) -> list[_Rec]:
    """The records whose content occurs more often here than there (the last occurrences)."""
    extra = {h: c - theirs.get(h, 0) for h, c in mine.items() if c > theirs.get(h, 0)}
    out: list[_Rec] = []
    for r in reversed(records):
        if extra.get(r.sha256, 0) > 0:
            extra[r.sha256] -= 1
            out.append(r)
    return list(reversed(out))


def _one(uri: str, rid: str, a: _Rec | None, b: _Rec | None) -> list[Finding]:
    if a is not None and b is not None:
        if a.sha256 == b.sha256:
            return []
        return [
            _finding(
                RECORD_MODIFIED,
                f"record {rid} modified",
                uri,
                line=b.line,
                id=rid,
                old=a.sha256,
                new=b.sha256,
            )
        ]
    if b is not None:
        return [_finding(RECORD_ADDED, f"record {rid} added", uri, line=b.line, id=rid, new=b.sha256)]
    if a is not None:
        return [_finding(RECORD_REMOVED, f"record {rid} removed", uri, id=rid, old=a.sha256)]
    return []


def _cap(uri: str, findings: list[Finding]) -> list[Finding]:
    if len(findings) <= MAX_RECORD_FINDINGS_PER_SHARD:
        return findings
    kept = sorted(findings, key=Finding.sort_key)[:MAX_RECORD_FINDINGS_PER_SHARD]
    counts = Counter(f.rule_id for f in findings)
    msg = f"{len(findings)} record differences, {MAX_RECORD_FINDINGS_PER_SHARD} listed"
    return [*kept, _finding(RECORDS_TRUNCATED, msg, uri, counts=dict(counts))]


def _manifest_target(m: LoadedManifest, extra: Sequence[Finding] = ()) -> TargetResult:
    name = m.path.name
    findings = [_finding(MANIFEST_INCONSISTENT, p, name) for p in m.problems] + list(extra)
    return TargetResult.from_findings(name, ArtifactKind.DATASET, findings, digest=Digest.sha256(m.data))


def _signed_manifest_sha(predicate: Any) -> str | None:
    """``predicate.manifest.digest.sha256`` of a dataset-manifest statement, or None if it has none."""
    cur = predicate
    for key in ("manifest", "digest", "sha256"):
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(key)
    return cur if isinstance(cur, str) else None


def _check_envelope(m: LoadedManifest, envelope: Path, trusted: Any) -> list[Finding]:
    from loopwarden.attest.dsse import Envelope
    from loopwarden.errors import LoopwardenError

    name = m.path.name
    try:
        env = Envelope.parse(envelope.read_bytes(), source=str(envelope.name))
        env.verify(trusted, source=envelope.name)
        st = env.statement(source=envelope.name)
    except OSError as exc:
        raise InputError(envelope, f"cannot read: {exc.strerror or exc}") from None
    except LoopwardenError as exc:
        return [_finding(MANIFEST_SIGNATURE, f"{envelope.name}: {exc.message}", name)]
    want = hashlib.sha256(m.data).hexdigest()
    got = _signed_manifest_sha(st.predicate)
    out: list[Finding] = []
    if got != want:
        out.append(_finding(MANIFEST_SIGNATURE, f"{envelope.name} signs a different manifest ({got})", name))
    subjects = {(s.name, s.digest.get("sha256")) for s in st.subjects}
    listed = {(s["uri"], s["sha256"]) for s in m.document["shards"]}
    if subjects != listed:
        out.append(
            _finding(MANIFEST_SIGNATURE, f"{envelope.name}: its subjects are not the manifest's shards", name)
        )
    return out


def _check_ledger(m: LoadedManifest, workspace: Any) -> list[Finding]:
    """The manifest must appear in the workspace's ledger, in an entry whose signature verifies."""
    from loopwarden.attest.predicates import DATASET_MANIFEST
    from loopwarden.errors import LoopwardenError

    name = m.path.name
    shards = m.document["shards"]
    if not shards:
        return [_finding(MANIFEST_SIGNATURE, "the manifest lists no shards; nothing to look up", name)]
    want = hashlib.sha256(m.data).hexdigest()
    subject = Digest("sha256", shards[0]["sha256"])
    with workspace.open_ledger(writable=False) as led:
        for entry in led.entries(subject=subject, predicate_type=DATASET_MANIFEST):
            st = entry.statement()
            got = _signed_manifest_sha(st.predicate)
            if got != want:
                continue
            try:
                entry.envelope().verify(workspace.trusted_keys, source=f"ledger entry {entry.index}")
            except LoopwardenError as exc:
                return [_finding(MANIFEST_SIGNATURE, exc.message, name, entry=entry.index)]
            return []
    return [_finding(MANIFEST_SIGNATURE, "the manifest is not recorded in the workspace's ledger", name)]


def verify_dataset(
    path: Path,
    manifest_path: Path,
    *,
    limits: Limits | None = None,
    envelope: Path | None = None,
    trusted: Any = None,
    ledger: Any = None,
) -> Report:
    """Compare the data under ``path`` with a manifest: every added, removed or modified shard, and in a
    modified shard every added, removed or modified record, by id. Unchanged shards (same SHA-256) are not
    re-read.

    With ``envelope`` (and ``trusted`` keys) the manifest's signature is checked too; with ``ledger`` (a
    workspace) the manifest must be recorded in its ledger by an entry signed with a trusted key.
    """
    m = load_manifest(manifest_path)
    limits = limits or Limits()
    excluded = m.document.get("excluded") or []
    if not isinstance(excluded, list) or not all(isinstance(x, str) for x in excluded):
        raise _bad(manifest_path, "'excluded' is not a list of relative paths")
    own = manifest_files(manifest_path) + ([envelope] if envelope else [])
    files, links, _ = _discover(path, own, excluded)
    current = {_uri(path, f): f for f in files}
    listed = m.shards()
    targets: list[TargetResult] = []
    extra = _check_envelope(m, envelope, trusted) if envelope is not None else []
    if ledger is not None:
        extra += _check_ledger(m, ledger)
    targets.append(_manifest_target(m, extra))
    for link in links:
        uri = _uri(path, link) if link != path else link.name
        f = _finding(SYMLINK, "symbolic link not followed: its target is not verified", uri)
        targets.append(
            TargetResult.from_findings(uri, ArtifactKind.DATASET, [f], unverified_reason=f.message)
        )
    for uri in sorted(current.keys() | listed.keys()):
        if uri not in current:
            f = _finding(SHARD_REMOVED, f"shard {uri} removed ({listed[uri]['records']} records)", uri)
            targets.append(TargetResult.from_findings(uri, ArtifactKind.DATASET, [f]))
            continue
        shard = current[uri]
        try:
            sha = _sha256_file(shard)
        except OSError as exc:
            raise InputError(shard, f"cannot read: {exc.strerror or exc}") from None
        digest = Digest("sha256", sha)
        if uri in listed and listed[uri]["sha256"] == sha:
            targets.append(TargetResult.from_findings(uri, ArtifactKind.DATASET, [], digest=digest))
            continue
        new, problems = _read(shard, uri, m.id_field, limits)
        reason = f"{len(problems)} record problem(s); first: {problems[0].message}" if problems else None
        if uri not in listed:
            f = _finding(SHARD_ADDED, f"shard {uri} added ({len(new)} records)", uri, records=len(new))
            targets.append(
                TargetResult.from_findings(
                    uri, ArtifactKind.DATASET, [f, *problems], unverified_reason=reason, digest=digest
                )
            )
            continue
        old = [_Rec(i, h) for i, h in m.tables[uri]]
        diffs = _cap(uri, _compare(uri, old, new, by_id=m.id_field is not None))
        f = _finding(
            SHARD_MODIFIED, f"shard {uri} modified", uri, old=listed[uri]["sha256"], new=sha, records=len(new)
        )
        targets.append(
            TargetResult.from_findings(
                uri, ArtifactKind.DATASET, [f, *diffs, *problems], unverified_reason=reason, digest=digest
            )
        )
    return Report(__version__, tuple(targets))


def _read(shard: Path, uri: str, id_field: str | None, limits: Limits) -> tuple[list[_Rec], list[Finding]]:
    recs: list[_Rec] = []
    problems: list[Finding] = []
    for item in iter_records(shard, id_field=id_field, limits=limits):
        if isinstance(item, Record):
            recs.append(_Rec(item.id, hashlib.sha256(item.raw).hexdigest(), item.line))
        elif len(problems) < MAX_PROBLEMS_PER_SHARD:
            problems.append(_problem_finding(uri, item))
    return recs, problems


def diff_manifests(old_path: Path, new_path: Path) -> Report:
    """What a new ingestion changed: shards and records added, removed or modified between two manifests."""
    old, new = load_manifest(old_path), load_manifest(new_path)
    if old.id_field != new.id_field:
        raise UsageError(
            f"the manifests use different id fields ({old.id_field!r} and {new.id_field!r}): "
            "their records cannot be matched"
        )
    targets = [_manifest_target(old), _manifest_target(new)]
    if targets[0].path == targets[1].path:
        targets = [_manifest_target(new)] if not old.problems else targets[:1]
    o, n = old.shards(), new.shards()
    for uri in sorted(o.keys() | n.keys()):
        if uri not in n:
            f = _finding(SHARD_REMOVED, f"shard {uri} removed ({o[uri]['records']} records)", uri)
            targets.append(TargetResult.from_findings(uri, ArtifactKind.DATASET, [f]))
            continue
        digest = Digest("sha256", n[uri]["sha256"])
        if uri not in o:
            f = _finding(SHARD_ADDED, f"shard {uri} added ({n[uri]['records']} records)", uri)
            targets.append(TargetResult.from_findings(uri, ArtifactKind.DATASET, [f], digest=digest))
            continue
        if o[uri]["sha256"] == n[uri]["sha256"]:
            targets.append(TargetResult.from_findings(uri, ArtifactKind.DATASET, [], digest=digest))
            continue
        diffs = _cap(
            uri,
            _compare(
                uri,
                [_Rec(i, h) for i, h in old.tables[uri]],
                [_Rec(i, h) for i, h in new.tables[uri]],
                by_id=new.id_field is not None,
            ),
        )
        f = _finding(SHARD_MODIFIED, f"shard {uri} modified", uri, old=o[uri]["sha256"], new=n[uri]["sha256"])
        targets.append(TargetResult.from_findings(uri, ArtifactKind.DATASET, [f, *diffs], digest=digest))
    return Report(__version__, tuple(targets))


def iter_table(m: LoadedManifest) -> Iterator[tuple[str, str, str]]:
    """(shard uri, record id, sha256) for every record of a manifest, in order."""
    for s in m.document["shards"]:
        for rid, h in m.tables[s["uri"]]:
            yield s["uri"], rid, h
