"""Verifying a model folder (or a dataset, or any file set) against an OMS signature, failing safely.

The serialization recorded in the signature is the one used (method, hash, shard size, symlink policy, ignore
paths); every problem becomes a finding that names the offending path; files the signature's ignore list
leaves out are listed too, so that a signature cannot hide a file silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from loopwarden.domain import ArtifactKind, Digest, Finding, TargetResult
from loopwarden.errors import InputError, VerificationError
from loopwarden.signing import rules
from loopwarden.signing._gc import gc_paused
from loopwarden.signing.hashing import Progress
from loopwarden.signing.interface import Resource, Serialization
from loopwarden.signing.manifest import Cache, compute, shard_ranges
from loopwarden.signing.oms import Bundle, OmsStatement, Trust, root_digest
from loopwarden.signing.walk import ASKED_PREFIX as _ASKED
from loopwarden.signing.walk import canonical_ignore, enumerate_model, is_confined_name

__all__ = ["VerifyResult", "default_signature", "verify"]

ProgressFactory = Callable[[int], Progress]


def default_signature(path: str | Path) -> Path:
    """``model.sig`` beside the model folder (in its parent folder)."""
    return Path(os.path.abspath(path)).parent / "model.sig"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    result: TargetResult
    statement: OmsStatement | None
    signer: dict[str, Any] | None
    signature: Path
    bytes_hashed: int = 0
    files_reused: int = 0
    ignored: dict[str, str] = field(default_factory=dict)

    @property
    def verified(self) -> bool:
        return self.result.passed()


def _display(root: Path, name: str, single: bool) -> str:
    return str(root) if single else f"{root.as_posix().rstrip('/')}/{name}"


@gc_paused
def verify(
    path: str | Path,
    trust: Trust,
    *,
    signature: str | Path | None = None,
    ignore_paths: Sequence[str] = (),
    incremental: bool = False,
    cache_dir: Path | None = None,
    kind: ArtifactKind = ArtifactKind.MODEL,
    workers: int | None = None,
    progress: ProgressFactory | None = None,
) -> VerifyResult:
    """Verify the model at ``path`` against its OMS signature.

    Raises :class:`~loopwarden.errors.InputError` or a :class:`~loopwarden.errors.SigningError` for unusable
    input (exit 2); a signature that does not verify or a folder that does not match is a failed
    :class:`VerifyResult`.
    """
    root = Path(path)
    if not os.path.lexists(root):  # named first: a missing model is the problem, not its missing signature
        raise InputError(root, "no such file or folder")
    sig = Path(signature) if signature is not None else default_signature(root)
    src = str(sig)
    try:
        data = sig.read_bytes()
    except FileNotFoundError:
        raise InputError(sig, "signature file not found", hint="pass --signature FILE") from None
    except OSError as exc:
        raise InputError(sig, f"cannot read signature file: {exc.strerror}") from None
    bundle = Bundle.parse(data, source=src)
    try:
        signer = trust.check(bundle, source=src)
    except VerificationError as exc:
        finding = rules.SignatureInvalid.finding(src, exc.message)
        return VerifyResult(TargetResult.from_findings(str(root), kind, [finding]), None, None, sig)
    stmt = bundle.statement(source=src)
    ser = stmt.serialization
    findings: list[Finding] = []
    expected = _expected(stmt, root, findings)
    # Ignore entries that are not canonical relative paths can match nothing inside the root; they are
    # dropped, which only makes verification stricter.
    ignores = tuple(p for p in (_norm(x) for x in ser.ignore_paths) if p is not None)
    extra = tuple(canonical_ignore(root, p) for p in ignore_paths)
    ignores += tuple(f"{_ASKED}{p}" for p in extra)
    listing = enumerate_model(root, allow_symlinks=ser.allow_symlinks, ignore_paths=ignores, signature=sig)
    single = listing.single_file
    problems: list[tuple[type[rules.SigningRule], list[str], str]] = [
        (rules.SymlinkPresent, listing.symlinks, "symbolic link, and the signature allows none"),
        (rules.SymlinkEscape, listing.escapes, "symbolic link leaves the model folder, dangles or loops"),
        (rules.SpecialFile, listing.special, "not a regular file"),
        (rules.SpecialFile, listing.undecodable, "name is not UTF-8"),
    ]
    findings.extend(
        rule.finding(_display(root, name, single), f"{name}: {text}")
        for rule, names, text in problems
        for name in names
    )
    for name, rule in sorted(listing.ignored.items()):
        if rule.startswith(_ASKED):
            findings.append(
                rules.IgnoredOnRequest.finding(
                    _display(root, name, single),
                    f"{name}: not verified, left out by --ignore-path {rule.removeprefix(_ASKED)!r}",
                    ignore_path=rule.removeprefix(_ASKED),
                )
            )
        elif rule not in ("default", "signature"):
            findings.append(
                rules.IgnoredBySignature.finding(
                    _display(root, name, single),
                    f"{name}: not verified, the signature's ignore_paths lists {rule!r}",
                    ignore_path=rule,
                )
            )
    cache = Cache(cache_dir, root, ser) if cache_dir is not None else None
    snapshot = cache.load() if (cache is not None and incremental) else None
    entries = listing.entries
    reuse = snapshot.reusable(entries) if snapshot is not None else {}
    total = sum(e.state.size for e in entries if e.name not in reuse)
    done = compute(
        entries,
        ser,
        reuse=reuse,
        workers=workers,
        progress=progress(total) if progress is not None else None,
    )
    if cache is not None and (snapshot is None or done.bytes_hashed or len(snapshot) != len(done.digests)):
        cache.save(entries, done.digests)
    sizes = {e.name: e.state.size for e in entries}
    unavailable = set(listing.symlinks) | set(listing.escapes) | set(listing.special)
    files_mode = ser.method == "files"
    for name in expected.keys() | done.digests.keys():  # findings are sorted by the report itself
        want = expected.get(name)
        got = done.digests.get(name)
        if files_mode and want is not None and got is not None and want[0][2] == got[0]:
            continue  # the common case, with as little work as possible
        shown = _display(root, name, single)
        if want is None:
            if got == () and ser.method == "shards":
                findings.append(
                    rules.EmptyFileUncovered.finding(
                        shown, f"{name}: empty file; the shards serialization cannot cover it (OMS 6.3.2)"
                    )
                )
            else:
                findings.append(rules.UnsignedFile.finding(shown, f"{name}: not covered by the signature"))
        elif got is None:
            if name in listing.ignored:
                findings.append(
                    rules.MissingFile.finding(shown, f"{name}: signed, but excluded by the ignore paths")
                )
            elif name not in unavailable:
                findings.append(rules.MissingFile.finding(shown, f"{name}: signed, but missing"))
        elif ser.method == "files":
            if want[0][2] != got[0]:
                findings.append(
                    rules.ModifiedFile.finding(shown, f"{name}: content differs from the signed digest")
                )
        else:
            assert ser.shard_size is not None
            have = [
                (a, b, d) for (a, b), d in zip(shard_ranges(sizes[name], ser.shard_size), got, strict=True)
            ]
            if have != list(want):
                parts = sorted({f"{name}:{a}:{b}" for a, b, _ in set(have) ^ set(want)})
                findings.append(
                    rules.ModifiedFile.finding(
                        shown, f"{name}: content differs from the signed digests", parts=parts
                    )
                )
    digest = Digest("sha256", stmt.root) if _is_hex64(stmt.root) else None
    result = TargetResult.from_findings(str(root), kind, findings, digest=digest)
    return VerifyResult(result, stmt, signer, sig, done.bytes_hashed, done.reused, dict(listing.ignored))


_SUSPECT: Final = re.compile(r"(?:^|/)\.{0,2}(?:/|$)|[\\\x00]")
"""Matches every name that is_confined_name rejects (empty, '.', '..' or empty components, '\\', NUL)."""
_SUSPECT_PARTS: Final = (
    *(f"{a}{c}{b}" for a in "\n/" for b in "\n/" for c in ("", ".", "..")),
    "\\",
    "\x00",
)
"""With every name between newlines: an empty, '.' or '..' component between two separators, or a
backslash or NUL, exactly the names :data:`_SUSPECT` matches (a newline inside a name can only add hits)."""


def _any_suspect(names: Sequence[str]) -> bool:
    """Whether any name may be one :func:`is_confined_name` rejects: substring tests over all names at once
    instead of a regular expression per name; a hit sends the signature the long, exact way."""
    joined = "\n" + "\n".join(names) + "\n"
    return any(part in joined for part in _SUSPECT_PARTS)


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def _norm(entry: str) -> str | None:
    import posixpath

    if not entry or entry.startswith("/") or any(c in entry for c in "*?[") or "\\" in entry:
        return None
    n = posixpath.normpath(entry)
    return n if is_confined_name(n) else None


def _expected(
    stmt: OmsStatement, root: Path, findings: list[Finding]
) -> dict[str, tuple[tuple[int, int, str], ...]]:
    """Signed resources grouped by file name; bad names and inconsistencies become findings."""
    ser: Serialization = stmt.serialization
    rootp = str(root)
    resources = stmt.resources
    # The second form is what the reference implementation writes for shards.
    algorithms = {ser.hash_type, f"{ser.hash_type}-sharded-{ser.shard_size}"}
    if ser.method == "files":  # fast path for the common, well-formed case; anything odd takes the long way
        names = [r.name for r in resources]
        if (
            len(set(names)) == len(resources)
            and {r.algorithm for r in resources} <= algorithms
            and not _any_suspect(names)
            and root_digest(resources) == stmt.root
        ):
            return {r.name: ((0, 0, r.digest),) for r in resources}
    seen: set[str] = set()
    groups: dict[str, list[tuple[int, int, Resource]]] = {}
    for r in resources:
        if r.name in seen:
            findings.append(rules.MalformedManifest.finding(rootp, f"{r.name}: listed twice", member=r.name))
            continue
        seen.add(r.name)
        if r.algorithm not in algorithms:
            findings.append(
                rules.MalformedManifest.finding(
                    rootp,
                    f"{r.name}: digest algorithm {r.algorithm!r} is not the serialization's "
                    f"{ser.hash_type!r}",
                    member=r.name,
                )
            )
            continue
        if ser.method == "shards":
            parts = r.split_shard()
            if parts is None:
                findings.append(
                    rules.MalformedManifest.finding(
                        rootp, f"{r.name}: not a shard name PATH:START:END", member=r.name
                    )
                )
                continue
            fname, start, end = parts
        else:
            fname, start, end = r.name, 0, 0
        if not is_confined_name(fname):
            findings.append(
                rules.BadResourceName.finding(
                    rootp,
                    f"{r.name}: resource name leaves the model folder or is not canonical",
                    member=r.name,
                )
            )
            continue
        groups.setdefault(fname, []).append((start, end, r))
    out: dict[str, tuple[tuple[int, int, str], ...]] = {}
    if ser.method == "files":  # names are unique, so one resource per file
        out = {fname: ((0, 0, items[0][2].digest),) for fname, items in groups.items()}
        groups = {}
    for fname, items in groups.items():
        items.sort(key=lambda t: t[0])
        if ser.method == "shards":
            assert ser.shard_size is not None
            size = items[-1][1]
            if [(s, e) for s, e, _ in items] != shard_ranges(size, ser.shard_size):
                findings.append(
                    rules.MalformedManifest.finding(
                        rootp,
                        f"{fname}: signed shards do not tile the file in {ser.shard_size}-byte steps",
                        member=fname,
                    )
                )
        out[fname] = tuple((a, b, r.digest) for a, b, r in items)
    if root_digest(stmt.resources) != stmt.root:
        findings.append(
            rules.MalformedManifest.finding(rootp, "the subject digest does not match the signed resources")
        )
    return out


def expected_names(stmt: OmsStatement) -> Sequence[str]:
    return [r.name for r in stmt.resources]
