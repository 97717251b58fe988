"""The loop's lineage: records of what every artifact came from, a graph index rebuilt from the verified
ledger,
blast radius, quarantine and two-person clearance.

Recording (each appends one signed in-toto statement to the workspace's ledger)::

    record_train(ws, model=..., datasets=[...], code=[...], base_model=..., generation=N)   # SLSA Provenance
    v1
    record_generate(ws, model=M, outputs=[...], generation=N)     # model M generated datasets/code/evals
    record_eval(ws, eval_run=E, model=M, suite=S, scores={...}, generation=N)
    record_agent_session(ws, session=S, model=M, role="coder", changed=[...], generation=N)
    record_promote(ws, target=A, stage="production")
    quarantine(ws, A, reason=..., reporter=...)
    clear(ws, A, reason=..., reviewer_key=key)                    # signed by the workspace AND the reviewer
    key

Querying::

    g = LineageGraph.from_workspace(ws)      # audits the ledger; a tampered entry fails the rebuild
    g.ancestors(d), g.descendants(d), g.blast_radius(d), g.path(a, b), g.taint(d), g.attestations(d)

Relations point from the influencing artifact to the influenced one; see :mod:`loopwarden.lineage.model` and
``docs/lineage.md`` for which carry influence.
"""

from loopwarden.errors import LineageError
from loopwarden.lineage.findings import findings_for
from loopwarden.lineage.graph import (
    BlastRadius,
    Clearance,
    LineageGraph,
    Quarantine,
    Reviewers,
    load_reviewers,
    write_index,
)
from loopwarden.lineage.model import INFLUENCE, Artifact, Edge, Node, Relation, Taint
from loopwarden.lineage.record import (
    agent_session_statement,
    artifact,
    clear,
    clearance_statement,
    eval_statement,
    generate_statement,
    hash_path,
    promote_statement,
    quarantine,
    quarantine_statement,
    record_agent_session,
    record_eval,
    record_generate,
    record_promote,
    record_train,
    train_statement,
)

__all__ = [
    "INFLUENCE",
    "Artifact",
    "BlastRadius",
    "Clearance",
    "Edge",
    "LineageError",
    "LineageGraph",
    "Node",
    "Quarantine",
    "Relation",
    "Reviewers",
    "Taint",
    "agent_session_statement",
    "artifact",
    "clear",
    "clearance_statement",
    "eval_statement",
    "findings_for",
    "generate_statement",
    "hash_path",
    "load_reviewers",
    "promote_statement",
    "quarantine",
    "quarantine_statement",
    "record_agent_session",
    "record_eval",
    "record_generate",
    "record_promote",
    "record_train",
    "train_statement",
    "write_index",
]
