"""Policy versions as a hash chain in the ledger, approvals, and the audit that detects safety co-option.

Each recorded version carries its full normal form and the digest of the version before it. The audit reads
the chain back from the ledger alone and reports, as findings:

- a fork (two versions claiming the same predecessor, or a second first version) and a gap (a predecessor that
  was never recorded before it, or content that does not hash to the recorded digest);
- a loosening that lacks the approvals the *previous* version's change control demands (approvals are
  attestations over the new version's digest, each co-signed by a distinct approver's own key);
- a version proposed by a key the previous version does not allow to propose;
- cumulative drift: a threshold loosened, across two or more versions, by more than ``drift_tolerance`` in
  total since the first recorded version, even when every single step was small or approved.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from loopwarden.attest.predicates import POLICY_APPROVAL, POLICY_VERSION
from loopwarden.attest.statement import Statement
from loopwarden.domain import Digest, Finding, Location, ResourceDescriptor, canonical_json
from loopwarden.errors import AttestationError, InputError, LoopwardenError, UsageError
from loopwarden.policy.diff import PolicyDiff, diff_policies, threshold_loosening
from loopwarden.policy.evidence import append_cosigned, format_time, recorded_at, verified_person
from loopwarden.policy.model import PolicyFile, parse_policy, policy_digest
from loopwarden.policy.rules import (
    ChainFork,
    ChainGap,
    Drift,
    UnapprovedLoosening,
    UnauthorisedProposer,
)

if TYPE_CHECKING:
    from loopwarden.attest.keys import PrivateKey
    from loopwarden.ledger.interface import AppendResult
    from loopwarden.workspace import Workspace

__all__ = [
    "ChainAudit",
    "PolicyVersion",
    "ThresholdPoint",
    "approve_policy",
    "audit_chain",
    "read_chain",
    "record_policy",
    "resolve_policy_ref",
    "threshold_history",
    "version_id",
    "workspace_chain",
]


def version_id(content: Digest, previous: Digest | None) -> Digest:
    """A version's link in the chain: SHA-256 of its content digest and its predecessor's version id.

    The same content recorded twice (a revert) is two versions with two ids, so the chain stays a line.
    """
    return Digest.sha256(
        canonical_json({"policy": str(content), "previous": str(previous) if previous else None})
    )


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    digest: Digest
    """The policy content's digest (what ``policy_digest`` gives for the file)."""
    previous: Digest | None
    """The predecessor's version id (None for the first version)."""
    policy: PolicyFile
    ledger_index: int
    recorded_at: datetime | None
    proposer: str | None
    """Key id of the proposer whose own signature over the record verifies, if any."""
    approvals: frozenset[str] = frozenset()
    """Key ids of people whose signed approval of this version verifies (any key; who counts is decided
    later)."""
    recorded_id: Digest | None = None
    """The version id the record claims (None: not stated, computed)."""

    @property
    def version(self) -> Digest:
        return version_id(self.digest, self.previous)


@dataclass(frozen=True, slots=True)
class ChainAudit:
    versions: tuple[PolicyVersion, ...]
    findings: tuple[Finding, ...]
    head: PolicyVersion | None
    diffs: dict[Digest, PolicyDiff] = field(default_factory=dict)
    """The diff from each version's predecessor, by the version's id."""

    @property
    def passed(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "head": str(self.head.version) if self.head else None,
            "head_policy": str(self.head.digest) if self.head else None,
            "versions": [
                {
                    "version": str(v.version),
                    "digest": str(v.digest),
                    "previous": str(v.previous) if v.previous else None,
                    "ledger_index": v.ledger_index,
                    "recorded_at": format_time(v.recorded_at) if v.recorded_at else None,
                    "approvals": sorted(v.approvals),
                    "proposer": v.proposer,
                }
                for v in self.versions
            ],
            "findings": [f.to_json() for f in self.findings],
        }


def _version_statement(
    policy: PolicyFile, digest: Digest, previous: Digest | None, now: datetime, proposer: PrivateKey | None
) -> Statement:
    pred: dict[str, Any] = {
        "name": policy.name,
        "version": str(version_id(digest, previous)),
        "previous": str(previous) if previous else None,
        "policy": policy.to_json(),
        "recorded_at": format_time(now),
    }
    if proposer is not None:
        pred["proposer"] = {"keyid": proposer.keyid, "public_key": proposer.public().pem().decode()}
    subjects = (
        ResourceDescriptor.of(f"policy-version:{policy.name}", version_id(digest, previous)),
        ResourceDescriptor.of(f"policy:{policy.name}", digest),
    )
    return Statement(subjects, POLICY_VERSION, pred)


def record_policy(
    workspace: Workspace,
    policy: PolicyFile,
    *,
    proposer: PrivateKey | None = None,
    previous: Digest | None = None,
    now: datetime | None = None,
) -> tuple[Digest, AppendResult]:
    """Append ``policy`` as the next version after ``previous`` (a version id; default: the current head).

    Returns the new version's id (what approvals sign). Passing ``previous`` explicitly is how a deliberate
    branch would be written; the audit reports it as a fork.
    """
    digest = policy_digest(policy)
    if previous is None:
        head = audit_chain(read_chain(workspace)).head
        if head is not None and head.digest == digest:
            raise UsageError(f"policy {digest} is already the recorded head version; nothing to record")
        previous = head.version if head else None
    stmt = _version_statement(policy, digest, previous, now or datetime.now(UTC), proposer)
    return version_id(digest, previous), append_cosigned(workspace, stmt, [proposer] if proposer else [])


def approve_policy(
    workspace: Workspace, digest: Digest, approver: PrivateKey, *, note: str = "", now: datetime | None = None
) -> AppendResult:
    """An approver's signed approval of a policy version (co-signed with the approver's own key).

    ``digest`` is the version id, or the policy content's digest (then the latest version with that content).
    """
    chain = read_chain(workspace)
    matches = [v.version for v in chain if digest in (v.version, v.digest)]
    if not matches:
        raise UsageError(
            f"policy version {digest} is not recorded in the ledger",
            hint="run 'loopwarden policy record FILE' first",
        )
    digest = matches[-1]
    pred = {
        "approver": {"keyid": approver.keyid, "public_key": approver.public().pem().decode()},
        "note": note,
        "recorded_at": format_time(now or datetime.now(UTC)),
    }
    stmt = Statement((ResourceDescriptor.of("policy-version", digest),), POLICY_APPROVAL, pred)
    return append_cosigned(workspace, stmt, [approver])


def read_chain(workspace: Workspace) -> list[PolicyVersion]:
    """Every readable recorded policy version in ledger order, with its verified approvals."""
    return _read(workspace)[0]


def workspace_chain(workspace: Workspace) -> ChainAudit:
    """Read the workspace's policy chain and audit it; a version record that cannot be read is a finding."""
    versions, unreadable = _read(workspace)
    return audit_chain(versions, unreadable=unreadable)


def _read(workspace: Workspace) -> tuple[list[PolicyVersion], list[tuple[int, str]]]:
    trusted = workspace.trusted_keys
    unreadable: list[tuple[int, str]] = []
    versions: list[PolicyVersion] = []
    approvals: dict[Digest, set[str]] = defaultdict(set)
    with workspace.open_ledger(writable=False) as led:
        for e in led.entries(predicate_type=POLICY_APPROVAL):
            try:
                e.envelope().verify(trusted, source=f"ledger entry {e.index}")
                subjects = e.statement().subject_digests()
            except LoopwardenError:
                continue
            keyid = verified_person(e, "approver")
            if keyid is not None:
                for d in subjects:
                    approvals[d].add(keyid)
        raw_versions = []
        for e in led.entries(predicate_type=POLICY_VERSION):
            src = f"ledger entry {e.index}"
            try:
                e.envelope().verify(trusted, source=src)
                stmt = e.statement()
            except LoopwardenError as exc:
                unreadable.append((e.index, exc.message))
                continue
            raw_versions.append((e, stmt))
    for e, stmt in raw_versions:
        src = f"ledger entry {e.index}"
        p = stmt.predicate
        try:
            policy = parse_policy(p.get("policy"), source=src)
            content = next(
                d
                for s, d in zip(stmt.subjects, stmt.subject_digests(), strict=True)
                if s.name.startswith("policy:")
            )
            prev_text, vid_text = p.get("previous"), p.get("version")
            previous = Digest.parse(prev_text) if isinstance(prev_text, str) else None
            recorded_id = Digest.parse(vid_text) if isinstance(vid_text, str) else None
        except (InputError, ValueError, AttestationError) as exc:
            unreadable.append((e.index, str(exc)))
            continue
        except StopIteration:
            unreadable.append((e.index, "no 'policy:' subject naming the content digest"))
            continue
        vid = version_id(content, previous)
        versions.append(
            PolicyVersion(
                digest=content,
                previous=previous,
                recorded_id=recorded_id,
                policy=policy,
                ledger_index=e.index,
                recorded_at=recorded_at(p),
                proposer=verified_person(e, "proposer"),
                approvals=frozenset(approvals.get(vid, set())),
            )
        )
    return versions, unreadable


def _finding(rule: Any, message: str, v: PolicyVersion, **evidence: Any) -> Finding:
    return Finding(
        rule.rule_id,
        rule.severity,
        message,
        Location(f"ledger:policy:{v.policy.name}", member=str(v.version), offset=v.ledger_index),
        {"version": str(v.version), "policy": str(v.digest), "ledger_index": v.ledger_index, **evidence},
    )


def audit_chain(
    versions: Sequence[PolicyVersion], *, unreadable: Sequence[tuple[int, str]] = ()
) -> ChainAudit:
    """Check the chain's shape, every step's change control, and cumulative drift. Pure: no I/O.

    ``unreadable`` lists policy-version records (ledger index, problem) that could not be read: each is a gap.
    """
    findings: list[Finding] = [
        Finding(
            ChainGap.rule_id,
            ChainGap.severity,
            f"ledger entry {idx}: policy version record cannot be read ({problem}); the head is unknown",
            Location("ledger:policy", offset=idx),
            {"ledger_index": idx, "unreadable": True},
        )
        for idx, problem in unreadable
    ]
    seen: dict[Digest, PolicyVersion] = {}
    children: dict[Digest | None, list[PolicyVersion]] = defaultdict(list)
    diffs: dict[Digest, PolicyDiff] = {}
    for v in versions:
        if policy_digest(v.policy) != v.digest or v.recorded_id not in (None, v.version):
            findings.append(
                _finding(
                    ChainGap, f"policy version {v.version}: content or link does not hash to its digest", v
                )
            )
            continue
        if v.previous is not None and v.previous not in seen:
            findings.append(
                _finding(
                    ChainGap,
                    f"policy version {v.version} names predecessor {v.previous}, which was not recorded "
                    "before it (a gap in the chain)",
                    v,
                    previous=str(v.previous),
                )
            )
        siblings = children[v.previous]
        if siblings:
            what = "a second first version" if v.previous is None else f"a second successor of {v.previous}"
            findings.append(
                _finding(
                    ChainFork,
                    f"policy chain forks: {v.version} is {what} (earlier: "
                    f"{', '.join(str(s.version) for s in siblings)})",
                    v,
                    siblings=[str(s.version) for s in siblings],
                )
            )
        siblings.append(v)
        prev = seen.get(v.previous) if v.previous is not None else None
        if prev is not None:
            d = diff_policies(prev.policy, v.policy)
            diffs[v.version] = d
            findings.extend(_change_control(prev, v, d))
        seen.setdefault(v.version, v)
    head = versions[-1] if versions else None
    if head is not None and head.version in seen:
        findings.extend(_drift(_lineage_of(head, seen)))
    findings.sort(key=Finding.sort_key)
    return ChainAudit(tuple(versions), tuple(findings), head, diffs)


def _change_control(prev: PolicyVersion, v: PolicyVersion, d: PolicyDiff) -> list[Finding]:
    out: list[Finding] = []
    cc = prev.policy.change_control
    proposers = prev.policy.proposer_keyids()
    if cc.proposers and v.proposer not in proposers:
        who = v.proposer[:16] + "…" if v.proposer else "no verified proposer signature"
        out.append(
            _finding(
                UnauthorisedProposer,
                f"policy version {v.version} was proposed by {who}, not by one of {', '.join(cc.proposers)}",
                v,
                proposer=v.proposer,
            )
        )
    if d.needs_approval:
        valid = sorted(v.approvals & prev.policy.approver_keyids())
        if len(valid) < cc.loosening_approvals:
            loosening = [c for c in d.changes if c.needs_approval]
            out.append(
                _finding(
                    UnapprovedLoosening,
                    f"policy version {v.version} loosens the policy "
                    f"({'; '.join(c.message for c in loosening)}) with "
                    f"{len(valid)} of {cc.loosening_approvals} required approval(s)",
                    v,
                    approvals=valid,
                    required=cc.loosening_approvals,
                    changes=[c.to_json() for c in loosening],
                )
            )
    return out


def _lineage_of(head: PolicyVersion, seen: dict[Digest, PolicyVersion]) -> list[PolicyVersion]:
    """The head's ancestry, first version first (follows predecessor links; stops at a gap or a loop)."""
    chain = [head]
    visited = {head.version}
    cur = head
    while cur.previous is not None and cur.previous in seen and cur.previous not in visited:
        cur = seen[cur.previous]
        visited.add(cur.version)
        chain.append(cur)
    chain.reverse()
    return chain


@dataclass(frozen=True, slots=True)
class ThresholdPoint:
    version: Digest
    sequence: int
    threshold: float | None
    """None: the level (or capability) does not exist in this version."""


def threshold_history(chain: Sequence[PolicyVersion]) -> dict[tuple[str, str], list[ThresholdPoint]]:
    """(capability, level) -> its threshold in every version of ``chain`` (None where absent)."""
    keys: set[tuple[str, str]] = set()
    for v in chain:
        for cname, cap in v.policy.capabilities.items():
            keys.update((cname, lv.name) for lv in cap.levels)
    out: dict[tuple[str, str], list[ThresholdPoint]] = {}
    for cname, lname in sorted(keys):
        pts = []
        for i, v in enumerate(chain):
            vcap = v.policy.capabilities.get(cname)
            lv = next((x for x in vcap.levels if x.name == lname), None) if vcap is not None else None
            pts.append(ThresholdPoint(v.version, i, lv.threshold if lv else None))
        out[(cname, lname)] = pts
    return out


def _drift(chain: list[PolicyVersion]) -> list[Finding]:
    """Cumulative loosening of a threshold since the first version, over two or more loosening steps."""
    if len(chain) < 3:
        return []
    head = chain[-1]
    tol = head.policy.change_control.drift_tolerance
    out: list[Finding] = []
    for (cname, lname), pts in threshold_history(chain).items():
        cap = head.policy.capabilities.get(cname)
        first, last = pts[0].threshold, pts[-1].threshold
        if cap is None or first is None or last is None:
            continue  # a removed level or capability is a loosening of its own class, reported per step
        steps = []
        for a, b in itertools.pairwise(pts):
            if a.threshold is not None and b.threshold is not None:
                amount = threshold_loosening(cap.direction, a.threshold, b.threshold)
                if amount > 0:
                    steps.append(
                        {
                            "version": str(b.version),
                            "from": a.threshold,
                            "to": b.threshold,
                            "loosening": amount,
                        }
                    )
        total = threshold_loosening(cap.direction, first, last)
        if len(steps) >= 2 and total > tol:
            out.append(
                _finding(
                    Drift,
                    f"{cname}/{lname}: threshold drifted {first:g} -> {last:g} "
                    f"over {len(steps)} loosening steps "
                    f"since the first recorded version (cumulative loosening {total:g} > tolerance {tol:g})",
                    head,
                    capability=cname,
                    level=lname,
                    first=first,
                    current=last,
                    cumulative=total,
                    steps=steps,
                    tolerance=tol,
                )
            )
    return out


def resolve_policy_ref(ref: str, workspace: Workspace | None) -> PolicyFile:
    """A policy from a file path, or from the ledger by version id or content digest (``sha256:…``)."""
    from pathlib import Path

    from loopwarden.policy.model import load_policy

    if Path(ref).exists() or workspace is None or ":" not in ref:
        return load_policy(ref)
    try:
        wanted = Digest.parse(ref)
    except ValueError:
        return load_policy(ref)
    hits = [v for v in read_chain(workspace) if wanted in (v.version, v.digest)]
    if not hits:
        raise UsageError(f"{ref}: neither a file nor a policy version recorded in the ledger")
    return hits[-1].policy
