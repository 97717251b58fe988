"""Signing a model folder, a dataset folder, any file set, or a manifest of precomputed digests (OMS v1.0)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopwarden.domain import Digest
from loopwarden.errors import InputError, SigningError, UsageError
from loopwarden.signing._gc import gc_paused
from loopwarden.signing.hashing import Progress
from loopwarden.signing.interface import (
    DEFAULT_IGNORES,
    DEFAULT_SHARD_SIZE,
    FolderChangedError,
    HashType,
    Resource,
    Serialization,
    SignatureFormatError,
)
from loopwarden.signing.manifest import Cache, compute, resources_of
from loopwarden.signing.oms import Bundle, OmsStatement, Signer
from loopwarden.signing.verify import default_signature
from loopwarden.signing.walk import Entry, canonical_ignore, enumerate_model, is_confined_name

__all__ = ["SignResult", "sign", "sign_digests", "write_atomic"]


@dataclass(frozen=True, slots=True)
class SignResult:
    statement: OmsStatement
    bundle: Bundle
    signature: Path
    bytes_hashed: int
    signer: dict[str, Any]


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, and rename over it: never half-written."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except FileNotFoundError:
        raise InputError(path, "the folder for the signature does not exist") from None
    except OSError as exc:
        raise InputError(path, f"cannot write the signature: {exc.strerror}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


@gc_paused
def sign(
    path: str | Path,
    signer: Signer,
    *,
    signature: str | Path | None = None,
    hash_type: HashType = "sha256",
    shard_size: int | None = None,
    ignore_paths: Iterable[str] = (),
    allow_symlinks: bool = False,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: Callable[[int], Progress] | None = None,
) -> SignResult:
    """Hash the model at ``path`` and write its OMS signature (default ``model.sig`` beside the folder).

    ``shard_size`` selects the ``shards`` serialization. Works the same for a dataset folder or a single file.
    """
    root = Path(path)
    sig = Path(signature) if signature is not None else default_signature(root)
    if not os.path.lexists(root):
        raise InputError(root, "no such file or folder")
    user = sorted({canonical_ignore(root, p) for p in ignore_paths})
    listing = enumerate_model(root, allow_symlinks=allow_symlinks, ignore_paths=user, signature=sig)
    if listing.symlinks:
        raise SigningError(
            f"{root}: symbolic links inside the model: {_few(listing.symlinks)}",
            hint="replace them with the files, or pass --allow-symlinks",
        )
    for what, names in (
        ("symbolic links that leave the folder, dangle or loop", listing.escapes),
        ("entries that are not regular files", listing.special),
        ("names that are not valid UTF-8", listing.undecodable),
    ):
        if names:
            raise SigningError(f"{root}: {what}: {_few(names)}")
    recorded = set(DEFAULT_IGNORES) | set(user)
    # The signature itself, when written inside the folder, is left out and says so (OMS 6.2).
    with contextlib.suppress(ValueError):
        recorded.add(Path(os.path.abspath(sig)).relative_to(os.path.abspath(root)).as_posix())
    ser = Serialization(
        method="shards" if shard_size is not None else "files",
        hash_type=hash_type,
        allow_symlinks=allow_symlinks,
        ignore_paths=tuple(sorted(recorded)),
        shard_size=shard_size,
    )
    total = sum(e.state.size for e in listing.entries)
    done = compute(
        listing.entries, ser, workers=workers, progress=progress(total) if progress is not None else None
    )
    _check_unchanged(root, listing.entries, allow_symlinks, user, sig)
    resources = resources_of(listing.entries, done.digests, ser)
    if not resources:
        raise UsageError(f"{root}: nothing to sign: no non-empty regular files after exclusions")
    stmt = OmsStatement.build(Path(os.path.abspath(root)).name, resources, ser)
    bundle = Bundle.sign(stmt, signer)
    write_atomic(sig, bundle.to_bytes())
    if cache_dir is not None:
        Cache(cache_dir, root, ser).save(listing.entries, done.digests)
    return SignResult(stmt, bundle, sig, done.bytes_hashed, signer.signed_by(bundle))


def _check_unchanged(
    root: Path, before: Sequence[Entry], allow_symlinks: bool, ignores: Sequence[str], sig: Path
) -> None:
    """List the folder again: a file added, removed or changed while hashing stops the signing."""
    after = enumerate_model(root, allow_symlinks=allow_symlinks, ignore_paths=ignores, signature=sig).entries
    old = {e.name: e.state for e in before}
    new = {e.name: e.state for e in after}
    for name in sorted(old.keys() | new.keys()):
        if name not in new:
            raise FolderChangedError(name, "removed while the folder was hashed")
        if name not in old:
            raise FolderChangedError(name, "added while the folder was hashed")
        what = old[name].changed(new[name])
        if what is not None:
            raise FolderChangedError(name, what)


def load_digest_manifest(path: str | Path) -> tuple[list[Resource], Serialization | None]:
    """Read precomputed digests: ``{"NAME": "ALGO:HEX", ...}`` or OMS-style ``{"resources": [...],
    "serialization": {...}}``. Names must be canonical relative paths; one algorithm throughout."""
    p = Path(path)
    try:
        obj = json.loads(p.read_bytes())
    except FileNotFoundError:
        raise InputError(p, "manifest file not found") from None
    except (OSError, ValueError) as exc:
        raise InputError(p, f"not a readable JSON manifest ({exc})") from None
    if not isinstance(obj, Mapping) or not obj:
        raise InputError(p, "a manifest is a non-empty JSON object")
    try:
        if "resources" in obj:
            res_obj = obj["resources"]
            if not isinstance(res_obj, list):
                raise InputError(p, "'resources' must be a list")
            resources = [Resource.from_json(r) for r in res_obj]
            ser = Serialization.from_json(obj["serialization"]) if "serialization" in obj else None
        else:
            resources = []
            for name, value in obj.items():
                if not isinstance(value, str):
                    raise InputError(p, f"{name}: digest must be a string ALGO:HEX")
                d = Digest.parse(value)
                resources.append(Resource.checked(str(name), d.algorithm, d.hex))
            ser = None
    except (SignatureFormatError, ValueError) as exc:
        raise InputError(p, str(exc)) from None
    algos = {r.algorithm for r in resources}
    if len(algos) != 1:
        raise InputError(p, f"all digests must use one algorithm, found {', '.join(sorted(algos))}")
    for r in resources:
        fname = r.split_shard()
        if not is_confined_name(fname[0] if (ser and ser.method == "shards" and fname) else r.name):
            raise InputError(p, f"{r.name}: not a canonical relative path inside the model")
    return resources, ser


def sign_digests(
    name: str,
    manifest: str | Path,
    signer: Signer,
    *,
    signature: str | Path,
    shard_size: int | None = None,
) -> SignResult:
    """Sign a manifest of precomputed digests (e.g. from a registry) without reading the files."""
    resources, ser = load_digest_manifest(manifest)
    algo = resources[0].algorithm
    if ser is None:
        if algo not in ("sha256", "blake2b", "blake3"):
            raise InputError(manifest, f"digest algorithm {algo!r} is not an OMS hash type")
        ser = Serialization(
            method="shards" if shard_size is not None else "files",
            hash_type=algo,  # type: ignore[arg-type]  # checked just above
            ignore_paths=tuple(sorted(DEFAULT_IGNORES)),
            shard_size=shard_size,
        )
    elif ser.hash_type != algo:
        raise InputError(manifest, f"digests use {algo!r} but the serialization says {ser.hash_type!r}")
    stmt = OmsStatement.build(name, resources, ser)
    bundle = Bundle.sign(stmt, signer)
    sig = Path(signature)
    write_atomic(sig, bundle.to_bytes())
    return SignResult(stmt, bundle, sig, 0, signer.signed_by(bundle))


__all__ += ["DEFAULT_SHARD_SIZE", "load_digest_manifest"]
