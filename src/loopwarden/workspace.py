"""The workspace: ``loopwarden.toml`` says where the loop's artifacts live, which keys sign and which are trusted,
and where the ledger is. Commands find it by walking up from the current folder, as git does.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loopwarden.attest.keys import KeyAlgorithm, KeySet, PrivateKey, generate, load_private, load_public
from loopwarden.errors import InputError, LedgerError, UsageError, WorkspaceError
from loopwarden.ledger.checkpoint import NoteVerifier
from loopwarden.ledger.sqlite import SqliteLedger

__all__ = ["CONFIG_NAME", "Workspace", "WorkspaceConfig", "find_workspace", "init_workspace"]

CONFIG_NAME: Final = "loopwarden.toml"
STATE_DIR: Final = ".loopwarden"
PASSWORD_ENV: Final = "LOOPWARDEN_KEY_PASSWORD"  # noqa: S105 - the name of a variable, not a password
_NAME_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkspaceSection(_Section):
    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(
                "use letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit"
            )
        return v


class PathsSection(_Section):
    models: list[str] = Field(default_factory=lambda: ["models"])
    data: list[str] = Field(default_factory=lambda: ["data"])
    evals: list[str] = Field(default_factory=lambda: ["evals"])
    repositories: list[str] = Field(default_factory=lambda: ["."])
    agent_traces: list[str] = Field(default_factory=lambda: ["traces"])
    policy: str | None = None


class KeysSection(_Section):
    signing: str = f"{STATE_DIR}/keys/signing.key"
    ledger: str = f"{STATE_DIR}/keys/ledger.key"
    trusted: list[str] = Field(default_factory=lambda: [f"{STATE_DIR}/keys/signing.pub"])
    threshold: int = Field(default=1, ge=1)
    ledger_public: str = f"{STATE_DIR}/keys/ledger.pub"


class LedgerSection(_Section):
    url: str = f"sqlite:///{STATE_DIR}/ledger.db"


class ReviewersSection(_Section):
    """Who may clear a quarantined artifact (docs/lineage.md): distinct human keys, never an agent's."""

    humans: list[str] = Field(default_factory=list)
    """Public keys of human reviewers; a clearance counts only when signed by one of these."""
    agents: list[str] = Field(default_factory=list)
    """Public keys of AI agents; declared so that their clearances are reported as never counting."""
    clearance_threshold: int = Field(default=2, ge=1)
    """How many distinct human reviewer keys must clear an artifact (two-person rule by default)."""


class WorkspaceConfig(_Section):
    workspace: WorkspaceSection
    paths: PathsSection = Field(default_factory=PathsSection)
    keys: KeysSection = Field(default_factory=KeysSection)
    ledger: LedgerSection = Field(default_factory=LedgerSection)
    reviewers: ReviewersSection = Field(default_factory=ReviewersSection)
    checks: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per-check settings, e.g. ``[checks.models] allow = [...]``; each check validates its own table."""


def key_password() -> bytes | None:
    value = os.environ.get(PASSWORD_ENV)
    return value.encode() if value else None


class Workspace:
    """An opened workspace: its root folder and validated configuration."""

    def __init__(self, root: Path, config: WorkspaceConfig) -> None:
        self.root = root
        self.config = config

    @classmethod
    def load(cls, root: str | Path) -> Workspace:
        r = Path(root).resolve()
        path = r / CONFIG_NAME
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WorkspaceError(f"{path}: no workspace file", hint="run 'loopwarden init'") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, f"cannot read: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(path, f"not valid TOML: {exc}") from None
        try:
            config = WorkspaceConfig.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise InputError(path, f"field '{where}': {err['msg']}") from None
        return cls(r, config)

    @property
    def name(self) -> str:
        return self.config.workspace.name

    @property
    def origin(self) -> str:
        """The ledger's origin line and the checkpoint key's note name."""
        return f"loopwarden/{self.name}"

    def resolve(self, rel: str) -> Path:
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def paths(self, kind: str) -> list[Path]:
        values: Sequence[str] = getattr(self.config.paths, kind)
        return [self.resolve(v) for v in values]

    @property
    def ledger_path(self) -> Path:
        url = self.config.ledger.url
        if not url.startswith("sqlite:///"):
            raise WorkspaceError(
                f"{self.root / CONFIG_NAME}: ledger url {url!r} is not supported by this version",
                hint="use sqlite:///PATH (relative to the workspace)",
            )
        return self.resolve(url.removeprefix("sqlite:///"))

    def signer(self) -> PrivateKey:
        return load_private(self.resolve(self.config.keys.signing), key_password())

    @cached_property
    def trusted_keys(self) -> KeySet:
        return KeySet(
            [load_public(self.resolve(p)) for p in self.config.keys.trusted], self.config.keys.threshold
        )

    def note_verifier(self) -> NoteVerifier:
        return NoteVerifier(self.origin, load_public(self.resolve(self.config.keys.ledger_public)))

    def open_ledger(self, *, writable: bool = True) -> SqliteLedger:
        key = load_private(self.resolve(self.config.keys.ledger), key_password()) if writable else None
        return SqliteLedger(
            self.ledger_path, checkpoint_key=key, checkpoint_key_name=self.origin, readonly=not writable
        )


def find_workspace(start: str | Path | None = None, explicit: str | Path | None = None) -> Workspace:
    """The workspace named by ``explicit``, or the nearest one at or above ``start`` (default: cwd)."""
    if explicit is not None:
        p = Path(explicit)
        if p.is_file():
            p = p.parent
        if not (p / CONFIG_NAME).exists():
            raise WorkspaceError(f"{p}: no {CONFIG_NAME} here", hint="run 'loopwarden init' there first")
        return Workspace.load(p)
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / CONFIG_NAME).is_file():
            return Workspace.load(d)
    raise WorkspaceError(
        f"{here}: not inside a loopwarden workspace (no {CONFIG_NAME} here or above)",
        hint="run 'loopwarden init' or pass --workspace DIR",
    )


_TEMPLATE: Final = """\
# loopwarden workspace. Paths are relative to this file's folder.
[workspace]
name = "{name}"

[paths]
# Where the loop's artifacts live.
models = ["models"]
data = ["data"]
evals = ["evals"]
repositories = ["."]
agent_traces = ["traces"]

[keys]
# The operator's attestation key (ECDSA P-256 unless chosen otherwise) and the ledger's Ed25519 checkpoint key.
# Private keys are written 0600; set {password_env} to encrypt/decrypt them.
signing = "{state}/keys/signing.key"
ledger = "{state}/keys/ledger.key"
ledger_public = "{state}/keys/ledger.pub"
# Public keys whose signatures the ledger accepts, and how many distinct ones must sign each entry.
trusted = ["{state}/keys/signing.pub"]
threshold = 1

[ledger]
url = "sqlite:///{state}/ledger.db"
"""


def init_workspace(
    directory: str | Path, *, name: str | None = None, algorithm: KeyAlgorithm | str = KeyAlgorithm.ECDSA_P256
) -> Workspace:
    """Write ``loopwarden.toml``, generate the keys and create the ledger. Refuses to overwrite anything."""
    root = Path(directory).resolve()
    cfg = root / CONFIG_NAME
    if cfg.exists():
        raise UsageError(f"{cfg}: a workspace already exists here")
    state = root / STATE_DIR
    if (state / "ledger.db").exists():
        raise UsageError(f"{state / 'ledger.db'}: a ledger already exists here")
    ws_name = name or re.sub(r"[^A-Za-z0-9._-]", "-", root.name).lstrip("._-")[:64] or "loop"
    if not _NAME_RE.match(ws_name):
        raise UsageError(f"workspace name {ws_name!r}: use letters, digits, '.', '_' or '-'")
    root.mkdir(parents=True, exist_ok=True)
    keys = state / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    pw = key_password()
    signing = generate(algorithm)
    ledger_key = generate(KeyAlgorithm.ED25519)
    signing.save(keys / "signing.key", pw)
    (keys / "signing.pub").write_bytes(signing.public().pem())
    ledger_key.save(keys / "ledger.key", pw)
    (keys / "ledger.pub").write_bytes(ledger_key.public().pem())
    text = _TEMPLATE.format(name=ws_name, state=STATE_DIR, password_env=PASSWORD_ENV)
    tmp = cfg.with_name(f".{CONFIG_NAME}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, cfg)
    ws = Workspace.load(root)
    try:
        SqliteLedger(ws.ledger_path, origin=ws.origin, create=True).close()
    except LedgerError:
        cfg.unlink(missing_ok=True)
        raise
    return ws
