"""Recording the loop's lineage: statement builders, artifact hashing and the ``record_*`` library functions.

Every record is an in-toto Statement v1 appended to the workspace's ledger, signed with the workspace key.
Every
artifact it names is a ResourceDescriptor whose annotations carry the artifact's ``kind``, its ``role`` in
the record
and, for outputs, its ``generation``. The graph index (:mod:`loopwarden.lineage.graph`) is rebuilt from these
statements alone; :func:`parse_statement` is the one place that reads them back.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from loopwarden.attest import predicates as pt
from loopwarden.attest.statement import Statement
from loopwarden.domain import ArtifactKind, Digest, ResourceDescriptor
from loopwarden.errors import InputError, LineageError, UsageError
from loopwarden.lineage.model import Artifact, Relation

if TYPE_CHECKING:
    from loopwarden.attest.keys import PrivateKey
    from loopwarden.ledger.interface import AppendResult
    from loopwarden.workspace import Workspace

__all__ = [
    "TRAINING_BUILD_TYPE",
    "TREE_ALGORITHM",
    "ParsedRecord",
    "agent_session_statement",
    "artifact",
    "clear",
    "clearance_statement",
    "eval_statement",
    "generate_statement",
    "hash_path",
    "parse_statement",
    "promote_statement",
    "quarantine",
    "quarantine_statement",
    "record_agent_session",
    "record_eval",
    "record_generate",
    "record_promote",
    "record_train",
    "train_statement",
]

TRAINING_BUILD_TYPE: Final = "https://loopwarden.dev/buildtypes/training/v1"
"""``buildDefinition.buildType`` of the SLSA provenance loopwarden writes for a training run."""
DEFAULT_BUILDER: Final = "https://loopwarden.dev/builders/pipeline"
TREE_ALGORITHM: Final = "sha256-tree"
"""A folder's digest: sha256 of its manifest (see :func:`hash_path`)."""
_CHUNK: Final = 1 << 20

# -- artifacts -----------------------------------------------------------------------------------


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise InputError(path, f"cannot read: {exc.strerror}") from None
    return h.hexdigest()


def hash_path(path: str | Path) -> Digest:
    """The digest of a file (``sha256`` of its bytes) or a folder (``sha256-tree``).

    A folder's manifest has one line per regular file below it, sorted by its POSIX path relative to the
    folder:
    ``<sha256 hex> <size> <relative path>\\n``; the digest is the sha256 of the manifest's UTF-8 bytes.
    Symbolic links
    and special files are refused (their meaning depends on the machine), never followed.
    """
    p = Path(path)
    try:
        st = p.lstat()
    except FileNotFoundError:
        raise InputError(p, "no such file or folder") from None
    except OSError as exc:
        raise InputError(p, f"cannot read: {exc.strerror}") from None
    if stat.S_ISREG(st.st_mode):
        return Digest("sha256", _hash_file(p))
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(p, "not a regular file or folder (symbolic links and special files are refused)")
    lines: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(p, followlinks=False):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            child = base / name
            cst = child.lstat()
            if stat.S_ISDIR(cst.st_mode):
                continue
            rel = child.relative_to(p).as_posix()
            if not stat.S_ISREG(cst.st_mode):
                raise InputError(child, "not a regular file (symbolic links and special files are refused)")
            lines.append((rel, f"{_hash_file(child)} {cst.st_size} {rel}\n"))
    manifest = "".join(line for _, line in sorted(lines))
    return Digest(TREE_ALGORITHM, hashlib.sha256(manifest.encode()).hexdigest())


def artifact(
    ref: str | Path | Digest, kind: ArtifactKind | str, *, name: str = "", generation: int | None = None
) -> Artifact:
    """An :class:`Artifact` from a digest (``ALGO:HEX``) or a path (hashed with :func:`hash_path`)."""
    k = ArtifactKind(kind)
    if isinstance(ref, Digest):
        return Artifact(ref, k, name, generation)
    text = str(ref)
    if isinstance(ref, str) and not Path(text).exists() and ":" in text:
        try:
            return Artifact(Digest.parse(text), k, name, generation)
        except ValueError as exc:
            raise InputError(text, f"not a digest (ALGO:HEX) and no such file: {exc}") from None
    return Artifact(hash_path(text), k, name or Path(text).name, generation)


def _rd(a: Artifact, role: str, generation: int | None = None) -> ResourceDescriptor:
    gen = a.generation if generation is None else generation
    ann: dict[str, Any] = {"kind": str(a.kind), "role": role}
    if gen is not None:
        ann["generation"] = gen
    return ResourceDescriptor.of(a.name or str(a.digest), a.digest, annotations=ann)


def _check_generation(generation: object) -> None:
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise UsageError(f"a generation is a non-negative integer, got {generation!r}")


def _no_self_loops(inputs: Iterable[Artifact], outputs: Iterable[Artifact]) -> None:
    ins = {a.digest for a in inputs}
    for o in outputs:
        if o.digest in ins:
            raise LineageError(f"{o.digest}: an artifact cannot be both an input and an output of one record")


# -- statement builders --------------------------------------------------------------------------------------


def train_statement(
    *,
    model: Artifact,
    datasets: Sequence[Artifact],
    generation: int,
    code: Sequence[Artifact] = (),
    base_model: Artifact | None = None,
    builder: str = DEFAULT_BUILDER,
    name: str = "",
    parameters: Mapping[str, Any] | None = None,
) -> Statement:
    """A training run as SLSA Provenance v1: subject the weights, resolvedDependencies its inputs."""
    _check_generation(generation)
    if not datasets and base_model is None:
        raise UsageError("a training record needs at least one dataset or a base model")
    inputs = [*datasets, *code, *([base_model] if base_model else [])]
    _no_self_loops(inputs, [model])
    deps = [_rd(d, "training-data") for d in datasets]
    deps += [_rd(c, "code") for c in code]
    if base_model is not None:
        deps.append(_rd(base_model, "base-model"))
    ext: dict[str, Any] = {"generation": generation, **dict(parameters or {})}
    if name:
        ext["run"] = name
    predicate = {
        "buildDefinition": {
            "buildType": TRAINING_BUILD_TYPE,
            "externalParameters": ext,
            "resolvedDependencies": [d.to_json() for d in deps],
        },
        "runDetails": {"builder": {"id": builder}},
    }
    return Statement((_rd(model, "trained-model", generation),), pt.SLSA_PROVENANCE, predicate)


def generate_statement(
    *,
    model: Artifact,
    outputs: Sequence[Artifact],
    generation: int,
    inputs: Sequence[Artifact] = (),
    name: str = "",
) -> Statement:
    """Model M generated datasets, code or evals (the outputs, which are the subjects), optionally from
    inputs."""
    _check_generation(generation)
    if not outputs:
        raise UsageError("a generation record needs at least one output")
    _no_self_loops([model, *inputs], outputs)
    predicate: dict[str, Any] = {
        "generator": _rd(model, "generator").to_json(),
        "inputs": [_rd(i, "input").to_json() for i in inputs],
        "generation": generation,
    }
    if name:
        predicate["name"] = name
    return Statement(tuple(_rd(o, "output", generation) for o in outputs), pt.GENERATION, predicate)


def eval_statement(
    *,
    eval_run: Artifact,
    model: Artifact,
    generation: int,
    suite: Artifact | None = None,
    scores: Mapping[str, float] | None = None,
    name: str = "",
) -> Statement:
    """Eval run E (built from suite S) scored model M, with the scores it measured."""
    _check_generation(generation)
    _no_self_loops([model, *([suite] if suite else [])], [eval_run])
    if suite is not None and suite.digest == model.digest:
        raise LineageError(f"{model.digest}: a model cannot be its own eval suite")
    clean_scores: dict[str, float] = {}
    for metric, value in sorted((scores or {}).items()):
        v: object = value
        if (
            isinstance(v, bool)
            or not isinstance(v, int | float)
            or v != v
            or v in (float("inf"), float("-inf"))
        ):
            raise UsageError(f"score {metric!r} must be a number, got {value!r}")
        clean_scores[str(metric)] = float(value)
    predicate: dict[str, Any] = {
        "evalRun": _rd(eval_run, "eval-run", generation).to_json(),
        "model": _rd(model, "scored-model").to_json(),
        "scores": clean_scores,
        "generation": generation,
    }
    if suite is not None:
        predicate["suite"] = _rd(suite, "eval-suite").to_json()
    if name:
        predicate["name"] = name
    subjects = (_rd(model, "scored-model"), _rd(eval_run, "eval-run", generation))
    return Statement(subjects, pt.EVAL_RUN, predicate)


def agent_session_statement(
    *,
    session: Artifact,
    model: Artifact,
    role: str,
    changed: Sequence[Artifact],
    generation: int,
) -> Statement:
    """Agent session S, acting for model M in role R, changed the given artifacts."""
    _check_generation(generation)
    if not role:
        raise UsageError("an agent-session record needs the agent's role")
    _no_self_loops([model], [session, *changed])
    _no_self_loops([session], changed)
    predicate = {
        "session": _rd(session, "agent-session", generation).to_json(),
        "actingFor": _rd(model, "acting-for").to_json(),
        "role": role,
        "changed": [_rd(c, "changed", generation).to_json() for c in changed],
        "generation": generation,
    }
    subjects = (_rd(session, "agent-session", generation), *(_rd(c, "changed", generation) for c in changed))
    return Statement(subjects, pt.AGENT_SESSION, predicate)


def promote_statement(*, target: Artifact, stage: str, generation: int | None = None) -> Statement:
    if not stage:
        raise UsageError("a promotion needs a stage name")
    predicate: dict[str, Any] = {"artifact": _rd(target, "promoted", generation).to_json(), "stage": stage}
    if generation is not None:
        _check_generation(generation)
        predicate["generation"] = generation
    return Statement((_rd(target, "promoted", generation),), pt.PROMOTION, predicate)


def quarantine_statement(*, target: Artifact, reason: str, reporter: str) -> Statement:
    if not reason.strip():
        raise UsageError("a quarantine needs a reason")
    if not reporter.strip():
        raise UsageError("a quarantine needs the reporter's identity")
    predicate = {"artifact": _rd(target, "quarantined").to_json(), "reason": reason, "reporter": reporter}
    return Statement((_rd(target, "quarantined"),), pt.QUARANTINE, predicate)


def clearance_statement(
    *, target: Artifact, reason: str, reviewer_keyid: str, reviewer: str = ""
) -> Statement:
    if not reason.strip():
        raise UsageError("a clearance needs a reason")
    who: dict[str, str] = {"keyid": reviewer_keyid}
    if reviewer:
        who["name"] = reviewer
    predicate = {"artifact": _rd(target, "cleared").to_json(), "reason": reason, "reviewer": who}
    return Statement((_rd(target, "cleared"),), pt.CLEARANCE, predicate)


# -- reading records back ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedRecord:
    """What one lineage statement says, in graph terms."""

    artifacts: tuple[Artifact, ...]
    edges: tuple[tuple[Digest, Digest, Relation], ...]
    promotion: tuple[Digest, str] | None = None
    quarantine: tuple[Digest, str, str] | None = None
    clearance: tuple[Digest, str, str] | None = None
    """(artifact, reason, the reviewer key id the statement claims)."""


def node_digest(rd: ResourceDescriptor) -> Digest:
    """The digest that names a node: sha256 if the descriptor has one, else the first algorithm by name."""
    digests = rd.digest
    algo = "sha256" if "sha256" in digests else min(digests)
    return Digest(algo, digests[algo])


def _artifact_of(
    obj: Any, what: str, default_role_kind: ArtifactKind = ArtifactKind.OTHER
) -> tuple[Artifact, str]:
    try:
        rd = obj if isinstance(obj, ResourceDescriptor) else ResourceDescriptor.from_json(obj)
    except (ValueError, TypeError) as exc:
        raise LineageError(f"{what}: not a resource descriptor ({exc})") from None
    ann = dict(rd.annotations or {})
    try:
        kind = ArtifactKind(ann.get("kind", default_role_kind))
    except ValueError:
        kind = ArtifactKind.OTHER
    gen = ann.get("generation")
    if gen is not None and (isinstance(gen, bool) or not isinstance(gen, int) or gen < 0):
        raise LineageError(f"{what}: generation {gen!r} is not a non-negative integer")
    role = ann.get("role", "")
    return Artifact(node_digest(rd), kind, rd.name, gen), role if isinstance(role, str) else ""


def _list(pred: Mapping[str, Any], key: str, what: str) -> list[Any]:
    v = pred.get(key, [])
    if not isinstance(v, list):
        raise LineageError(f"{what}: '{key}' must be a list")
    return v


def _str(pred: Mapping[str, Any], key: str, what: str) -> str:
    v = pred.get(key)
    if not isinstance(v, str) or not v:
        raise LineageError(f"{what}: '{key}' must be a non-empty string")
    return v


_DEP_RELATION: Final = {
    "training-data": Relation.TRAINED_ON,
    "code": Relation.BUILT_FROM,
    "base-model": Relation.BUILT_FROM,
}


def parse_statement(stmt: Statement, *, source: str) -> ParsedRecord | None:
    """The nodes and edges one statement adds; ``None`` if it is not a lineage predicate.

    A lineage statement that does not have the shape its predicate type demands raises :class:`LineageError`
    naming ``source``: the graph is never built from a record it could only partly read.
    """
    ptype, pred = stmt.predicate_type, stmt.predicate
    what = f"{source} ({ptype})"
    edges: list[tuple[Digest, Digest, Relation]]
    if ptype == pt.SLSA_PROVENANCE:
        bd = pred.get("buildDefinition")
        if not isinstance(bd, Mapping):
            raise LineageError(f"{what}: 'buildDefinition' missing")
        subjects = [_artifact_of(s, f"{what} subject", ArtifactKind.MODEL)[0] for s in stmt.subjects]
        ext = bd.get("externalParameters", {})
        gen = ext.get("generation") if isinstance(ext, Mapping) else None
        if isinstance(gen, int) and not isinstance(gen, bool):
            subjects = [
                s if s.generation is not None else Artifact(s.digest, s.kind, s.name, gen) for s in subjects
            ]
        deps = [
            _artifact_of(d, f"{what} resolvedDependencies", ArtifactKind.OTHER)
            for d in _list(bd, "resolvedDependencies", what)
        ]
        # A dependency without a role we know still influenced the build: built-from, never dropped.
        edges = [
            (d.digest, s.digest, _DEP_RELATION.get(role, Relation.BUILT_FROM))
            for d, role in deps
            for s in subjects
        ]
        return ParsedRecord((*subjects, *(d for d, _ in deps)), tuple(edges))
    if ptype == pt.GENERATION:
        gen_model, _ = _artifact_of(pred.get("generator"), f"{what} generator", ArtifactKind.MODEL)
        inputs = [_artifact_of(i, f"{what} inputs")[0] for i in _list(pred, "inputs", what)]
        outputs = [_artifact_of(s, f"{what} subject")[0] for s in stmt.subjects]
        edges = [(gen_model.digest, o.digest, Relation.GENERATED) for o in outputs]
        edges += [(i.digest, o.digest, Relation.BUILT_FROM) for i in inputs for o in outputs]
        return ParsedRecord((gen_model, *inputs, *outputs), tuple(edges))
    if ptype == pt.EVAL_RUN:
        run, _ = _artifact_of(pred.get("evalRun"), f"{what} evalRun", ArtifactKind.EVAL)
        model, _ = _artifact_of(pred.get("model"), f"{what} model", ArtifactKind.MODEL)
        arts = [run, model]
        edges = [(run.digest, model.digest, Relation.SCORED)]
        if pred.get("suite") is not None:
            suite, _ = _artifact_of(pred.get("suite"), f"{what} suite", ArtifactKind.EVAL)
            arts.append(suite)
            edges.append((suite.digest, run.digest, Relation.BUILT_FROM))
        return ParsedRecord(tuple(arts), tuple(edges))
    if ptype == pt.AGENT_SESSION:
        session, _ = _artifact_of(pred.get("session"), f"{what} session", ArtifactKind.AGENT_SESSION)
        model, _ = _artifact_of(pred.get("actingFor"), f"{what} actingFor", ArtifactKind.MODEL)
        changed = [_artifact_of(c, f"{what} changed")[0] for c in _list(pred, "changed", what)]
        edges = [(model.digest, session.digest, Relation.ACTED_FOR)]
        edges += [(session.digest, c.digest, Relation.AUTHORED) for c in changed]
        return ParsedRecord((session, model, *changed), tuple(edges))
    if ptype == pt.PROMOTION:
        target, _ = _artifact_of(pred.get("artifact"), f"{what} artifact")
        return ParsedRecord((target,), (), promotion=(target.digest, _str(pred, "stage", what)))
    if ptype == pt.QUARANTINE:
        target, _ = _artifact_of(pred.get("artifact"), f"{what} artifact")
        reason, reporter = _str(pred, "reason", what), _str(pred, "reporter", what)
        return ParsedRecord((target,), (), quarantine=(target.digest, reason, reporter))
    if ptype == pt.CLEARANCE:
        target, _ = _artifact_of(pred.get("artifact"), f"{what} artifact")
        reviewer = pred.get("reviewer")
        if not isinstance(reviewer, Mapping):
            raise LineageError(f"{what}: 'reviewer' must be an object")
        keyid = _str(reviewer, "keyid", what)
        return ParsedRecord((target,), (), clearance=(target.digest, _str(pred, "reason", what), keyid))
    return None


# -- recording -----------------------------------------------------------------------------------------------


def _record(statement: Statement, ws: Workspace) -> AppendResult:
    from loopwarden.ledger import record

    return record(statement, ws)


def record_train(
    ws: Workspace,
    *,
    model: Artifact,
    datasets: Sequence[Artifact],
    generation: int,
    code: Sequence[Artifact] = (),
    base_model: Artifact | None = None,
    builder: str = DEFAULT_BUILDER,
    name: str = "",
    parameters: Mapping[str, Any] | None = None,
) -> AppendResult:
    """Append a training run as SLSA Provenance v1 (see :func:`train_statement`)."""
    stmt = train_statement(
        model=model,
        datasets=datasets,
        generation=generation,
        code=code,
        base_model=base_model,
        builder=builder,
        name=name,
        parameters=parameters,
    )
    return _record(stmt, ws)


def record_generate(
    ws: Workspace,
    *,
    model: Artifact,
    outputs: Sequence[Artifact],
    generation: int,
    inputs: Sequence[Artifact] = (),
    name: str = "",
) -> AppendResult:
    """Append "model M generated X" (see :func:`generate_statement`)."""
    stmt = generate_statement(model=model, outputs=outputs, generation=generation, inputs=inputs, name=name)
    return _record(stmt, ws)


def record_eval(
    ws: Workspace,
    *,
    eval_run: Artifact,
    model: Artifact,
    generation: int,
    suite: Artifact | None = None,
    scores: Mapping[str, float] | None = None,
    name: str = "",
) -> AppendResult:
    """Append "eval run E scored model M" (see :func:`eval_statement`)."""
    stmt = eval_statement(
        eval_run=eval_run, model=model, generation=generation, suite=suite, scores=scores, name=name
    )
    return _record(stmt, ws)


def record_agent_session(
    ws: Workspace,
    *,
    session: Artifact,
    model: Artifact,
    role: str,
    changed: Sequence[Artifact],
    generation: int,
) -> AppendResult:
    """Append "agent session S acting for M in role R changed X" (see :func:`agent_session_statement`)."""
    stmt = agent_session_statement(
        session=session, model=model, role=role, changed=changed, generation=generation
    )
    return _record(stmt, ws)


def record_promote(
    ws: Workspace, *, target: Artifact, stage: str, generation: int | None = None
) -> AppendResult:
    """Append "artifact A promoted to stage P" (see :func:`promote_statement`)."""
    return _record(promote_statement(target=target, stage=stage, generation=generation), ws)


def quarantine(ws: Workspace, target: Artifact, *, reason: str, reporter: str) -> AppendResult:
    """Append a signed taint record for ``target``; taint flows to every descendant until cleared."""
    return _record(quarantine_statement(target=target, reason=reason, reporter=reporter), ws)


def clear(
    ws: Workspace, target: Artifact, *, reason: str, reviewer_key: PrivateKey, reviewer: str = ""
) -> AppendResult:
    """Append a clearance signed by BOTH the workspace key (so the ledger accepts it) and the reviewer's own
    key
    (so it can count). Whether it counts is decided when the graph is rebuilt: only a key listed in
    ``[reviewers] humans`` counts, and ``clearance_threshold`` distinct such keys must clear.
    """
    from loopwarden.attest.dsse import sign_statement

    stmt = clearance_statement(
        target=target, reason=reason, reviewer_keyid=reviewer_key.keyid, reviewer=reviewer
    )
    signer = ws.signer()
    if signer.keyid == reviewer_key.keyid:
        raise UsageError("the workspace signing key cannot act as a reviewer; use the reviewer's own key")
    env = sign_statement(stmt, [signer, reviewer_key])
    with ws.open_ledger() as led:
        return led.append(env)
