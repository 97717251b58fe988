"""A reusable 4-generation AI-builds-AI loop, recorded in a real workspace ledger.

Used by ``test_loop_lineage.py`` (LINEAGE) and ``test_loop_gate.py`` (POLICY). Per generation g (1..N):

* human inputs: ``data-g-human`` (dataset), ``code-g-human`` (code), ``evals-g-suite`` (eval suite; for
  g = 3 it is *generated* by ``model-2`` instead, so a compromised model that writes evals shows downstream);
* for g > 1 the previous model ``model-(g-1)`` generates ``data-g-synth`` and drives an agent session
  ``session-g`` (role ``coder``) that writes ``code-g-agent``;
* ``model-g`` is trained on the data and code of its generation, fine-tuned from ``model-(g-1)`` (g > 1);
* ``evalrun-g`` (built from ``evals-g-suite``) scores ``model-g`` (scores: ``{"capability": 0.1 * g}``).

Reviewer keys: ``alice`` and ``bob`` are declared human reviewers, ``agent`` a declared AI agent key,
``mallory`` is not declared at all. ``[reviewers] clearance_threshold`` is 2 unless asked otherwise.

Every artifact is named ``<what>-<g>-<variant>`` (or ``model-g``/``session-g``/``evalrun-g``);
``Loop.art[name]`` gives its :class:`loopwarden.lineage.Artifact`, ``Loop.name_of(digest)`` the way back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loopwarden.attest.keys import PrivateKey, generate
from loopwarden.attest.statement import Statement
from loopwarden.domain import ArtifactKind, Digest
from loopwarden.ledger import record_many
from loopwarden.lineage import (
    Artifact,
    agent_session_statement,
    eval_statement,
    generate_statement,
    train_statement,
)
from loopwarden.workspace import Workspace, init_workspace

__all__ = ["REVIEWERS", "Loop", "build_loop", "expected_blast_radius_of_model_2"]

REVIEWERS = {"alice": "human", "bob": "human", "agent": "agent", "mallory": "undeclared"}


@dataclass
class Loop:
    ws: Workspace
    art: dict[str, Artifact] = field(default_factory=dict)
    keys: dict[str, PrivateKey] = field(default_factory=dict)
    key_paths: dict[str, Path] = field(default_factory=dict)
    generations: int = 4

    def add(self, name: str, kind: ArtifactKind, generation: int) -> Artifact:
        a = Artifact(Digest.sha256(f"loop-builder/{name}".encode()), kind, name, generation)
        self.art[name] = a
        return a

    def d(self, name: str) -> Digest:
        return self.art[name].digest

    def name_of(self, digest: Digest | str) -> str:
        for n, a in self.art.items():
            if str(a.digest) == str(digest):
                return n
        raise KeyError(str(digest))

    def reload(self) -> Workspace:
        self.ws = Workspace.load(self.ws.root)
        return self.ws


def _write_reviewers(ws: Workspace, loop: Loop, threshold: int) -> None:
    keydir = ws.root / "reviewer-keys"
    keydir.mkdir(exist_ok=True)
    for name in REVIEWERS:
        k = generate()
        k.save(keydir / f"{name}.key")
        (keydir / f"{name}.pub").write_bytes(k.public().pem())
        loop.keys[name] = k
        loop.key_paths[name] = keydir / f"{name}.key"
    humans = ", ".join(f'"reviewer-keys/{n}.pub"' for n, r in REVIEWERS.items() if r == "human")
    agents = ", ".join(f'"reviewer-keys/{n}.pub"' for n, r in REVIEWERS.items() if r == "agent")
    cfg = ws.root / "loopwarden.toml"
    cfg.write_text(
        cfg.read_text(encoding="utf-8")
        + f"\n[reviewers]\nhumans = [{humans}]\nagents = [{agents}]\nclearance_threshold = {threshold}\n",
        encoding="utf-8",
    )


def build_loop(root: Path, *, generations: int = 4, threshold: int = 2) -> Loop:
    """Create a workspace under ``root`` and record an N-generation loop in its ledger (one batch)."""
    ws = init_workspace(root, name="loop4")
    loop = Loop(ws, generations=generations)
    _write_reviewers(ws, loop, threshold)
    loop.reload()
    kinds = ArtifactKind
    statements: list[Statement] = []
    for g in range(1, generations + 1):
        prev = loop.art.get(f"model-{g - 1}")
        data = [loop.add(f"data-{g}-human", kinds.DATASET, g)]
        code = [loop.add(f"code-{g}-human", kinds.CODE, g)]
        if prev is not None:
            synth = loop.add(f"data-{g}-synth", kinds.DATASET, g)
            statements.append(
                generate_statement(model=prev, outputs=[synth], generation=g, name=f"synth-{g}")
            )
            data.append(synth)
            session = loop.add(f"session-{g}", kinds.AGENT_SESSION, g)
            agent_code = loop.add(f"code-{g}-agent", kinds.CODE, g)
            statements.append(
                agent_session_statement(
                    session=session, model=prev, role="coder", changed=[agent_code], generation=g
                )
            )
            code.append(agent_code)
        suite = loop.add(f"evals-{g}-suite", kinds.EVAL, g)
        if g == 3 and prev is not None:
            statements.append(generate_statement(model=prev, outputs=[suite], generation=g, name="evals-3"))
        model = loop.add(f"model-{g}", kinds.MODEL, g)
        statements.append(
            train_statement(
                model=model,
                datasets=data,
                code=code,
                base_model=prev,
                generation=g,
                name=f"train-{g}",
                builder="https://loopwarden.dev/builders/test-pipeline",
            )
        )
        run = loop.add(f"evalrun-{g}", kinds.EVAL, g)
        statements.append(
            eval_statement(
                eval_run=run, model=model, suite=suite, generation=g, scores={"capability": 0.1 * g}
            )
        )
    record_many(statements, ws)
    return loop


def expected_blast_radius_of_model_2() -> set[str]:
    """Hand-derived from the loop's description above (not computed by the code under test)."""
    return {
        # generation 3: what model-2 generated or wrote through its agent, what was built from that, the model
        "data-3-synth",
        "session-3",
        "code-3-agent",
        "evals-3-suite",
        "evalrun-3",
        "model-3",
        # generation 4: the same through model-3 (evals-4-suite is human: evalrun-4 only points into model-4)
        "data-4-synth",
        "session-4",
        "code-4-agent",
        "model-4",
    }
