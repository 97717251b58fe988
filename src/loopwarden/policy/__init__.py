"""Capability-threshold policy: policy file, safeguards, gate, hash-chained versions, diff, trend.

Library first (the CLI groups ``gate`` and ``policy`` are thin clients)::

    policy = load_policy("policy.yaml")                # InputError names the file and the field
    record_policy(ws, policy)                           # next version in the ledger's hash chain
    result = gate(ws, digest, Action.PROMOTE, policy)   # allow / deny / escalate, every reason, recorded
    diff_policies(old, new)                             # classified changes (tightening / loosening)
    workspace_chain(ws)                                 # forks, gaps, unapproved loosening, drift

See ``docs/policy.md``.
"""

from loopwarden.policy.chain import (
    ChainAudit,
    PolicyVersion,
    approve_policy,
    audit_chain,
    read_chain,
    record_policy,
    threshold_history,
    workspace_chain,
)
from loopwarden.policy.diff import Change, PolicyDiff, diff_policies
from loopwarden.policy.evidence import (
    EvalResult,
    eval_result_statement,
    parse_time,
    record_eval_result,
    record_signoff,
    signoff_statement,
)
from loopwarden.policy.gate import GateResult, build_gate_policy, gate
from loopwarden.policy.interface import (
    AllOf,
    AnyOf,
    Decision,
    GateRequest,
    LineageView,
    Outcome,
    Policy,
    Reason,
    UnsafeAllowAll,
)
from loopwarden.policy.model import (
    Action,
    ChangeClass,
    PolicyFile,
    SafeguardKind,
    load_policy,
    parse_policy,
    policy_digest,
)
from loopwarden.policy.trend import TrendReport, trend

__all__ = [
    "Action",
    "AllOf",
    "AnyOf",
    "ChainAudit",
    "Change",
    "ChangeClass",
    "Decision",
    "EvalResult",
    "GateRequest",
    "GateResult",
    "LineageView",
    "Outcome",
    "Policy",
    "PolicyDiff",
    "PolicyFile",
    "PolicyVersion",
    "Reason",
    "SafeguardKind",
    "TrendReport",
    "UnsafeAllowAll",
    "approve_policy",
    "audit_chain",
    "build_gate_policy",
    "diff_policies",
    "eval_result_statement",
    "gate",
    "load_policy",
    "parse_policy",
    "parse_time",
    "policy_digest",
    "read_chain",
    "record_eval_result",
    "record_policy",
    "record_signoff",
    "signoff_statement",
    "threshold_history",
    "trend",
    "workspace_chain",
]
