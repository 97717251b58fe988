"""Types shared by the signing machinery: the serialization parameters, manifest entries and errors.

The on-disk format is OpenSSF Model Signing (OMS) v1.0: a Sigstore bundle v0.3 holding a DSSE envelope whose
payload is an in-toto Statement v1 with the predicate below. See ``docs/signing.md``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, NamedTuple

from loopwarden.errors import SigningError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "DEFAULT_IGNORES",
    "DEFAULT_SHARD_SIZE",
    "HASH_TYPES",
    "OMS_PREDICATE_TYPE",
    "FolderChangedError",
    "HashType",
    "Method",
    "Resource",
    "Serialization",
    "SignatureFormatError",
    "SigningError",
]

OMS_PREDICATE_TYPE: Final = "https://model_signing/signature/v1.0"
BUNDLE_MEDIA_TYPE: Final = "application/vnd.dev.sigstore.bundle.v0.3+json"
# Media types of older bundle versions that carry the same fields; accepted when reading only.
ACCEPTED_MEDIA_TYPES: Final = frozenset(
    {
        BUNDLE_MEDIA_TYPE,
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
    }
)
DEFAULT_IGNORES: Final = (".git", ".gitattributes", ".github", ".gitignore")
"""Top-level names every OMS signer and verifier leaves out (spec section 6.2)."""
DEFAULT_SHARD_SIZE: Final = 1_000_000_000
"""The spec's recommended shard size (section 6.3.2)."""

HashType = Literal["sha256", "blake2b", "blake3"]
Method = Literal["files", "shards"]
HASH_TYPES: Final[tuple[HashType, ...]] = ("sha256", "blake2b", "blake3")
_HEX_LEN: Final[Mapping[str, int]] = {"sha256": 64, "blake2b": 128, "blake3": 64}
_HEX_RE: Final = re.compile(r"[0-9a-f]+")
"""Used with ``fullmatch`` (``$`` would let a trailing newline through)."""


class FolderChangedError(SigningError):
    """A file changed (size, mtime, inode) while it was being hashed: the result would describe no real
    state."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(
            f"{path}: changed while being hashed ({what})",
            hint="stop whatever writes to the folder and run the command again",
        )
        self.path = path


class SignatureFormatError(SigningError):
    """The signature file is not a well-formed OMS bundle (bad JSON, wrong media type, unknown predicate
    ...)."""


@dataclass(frozen=True, slots=True)
class Serialization:
    """How a folder is turned into a manifest: the OMS ``serialization`` object."""

    method: Method = "files"
    hash_type: HashType = "sha256"
    allow_symlinks: bool = False
    ignore_paths: tuple[str, ...] = ()
    shard_size: int | None = None

    def __post_init__(self) -> None:
        if self.method not in ("files", "shards"):
            raise SignatureFormatError(
                f"unknown serialization method {self.method!r}; expected files or shards"
            )
        if self.hash_type not in HASH_TYPES:
            raise SignatureFormatError(
                f"unknown hash type {self.hash_type!r}; expected one of {', '.join(HASH_TYPES)}"
            )
        if self.method == "shards":
            if (
                not isinstance(self.shard_size, int)
                or isinstance(self.shard_size, bool)
                or self.shard_size < 1
            ):
                raise SignatureFormatError(
                    f"shard serialization needs a positive integer shard_size, got {self.shard_size!r}"
                )
        elif self.shard_size is not None:
            raise SignatureFormatError("shard_size is only allowed with method 'shards'")

    @property
    def digest_name(self) -> str:
        """Our self-describing name for one resource digest, e.g. ``sha256`` or
        ``sha256-shard-1000000000``."""
        if self.method == "shards":
            return f"{self.hash_type}-shard-{self.shard_size}"
        return self.hash_type

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "hash_type": self.hash_type,
            "allow_symlinks": self.allow_symlinks,
        }
        if self.method == "shards":
            out["shard_size"] = self.shard_size
        if self.ignore_paths:
            out["ignore_paths"] = list(self.ignore_paths)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Serialization:
        if not isinstance(obj, Mapping):
            raise SignatureFormatError("predicate 'serialization' must be a JSON object")
        method = obj.get("method")
        hash_type = obj.get("hash_type")
        allow = obj.get("allow_symlinks", False)
        ignore = obj.get("ignore_paths", [])
        shard = obj.get("shard_size")
        if not isinstance(allow, bool):
            raise SignatureFormatError("serialization 'allow_symlinks' must be a boolean")
        if (
            not isinstance(ignore, Sequence)
            or isinstance(ignore, str)
            or not all(isinstance(p, str) for p in ignore)
        ):
            raise SignatureFormatError("serialization 'ignore_paths' must be a list of strings")
        if method == "files" and shard is not None:
            raise SignatureFormatError("serialization 'shard_size' must be absent with method 'files'")
        if isinstance(shard, float) and shard.is_integer():
            shard = int(shard)  # protobuf-JSON writers (the reference) emit numbers as doubles: 1000000.0
        if hash_type == "blake2":  # the reference's CLI name for BLAKE2b
            hash_type = "blake2b"
        return cls(
            method=method,  # type: ignore[arg-type]  # checked in __post_init__
            hash_type=hash_type,  # type: ignore[arg-type]  # checked in __post_init__
            allow_symlinks=allow,
            ignore_paths=tuple(ignore),
            shard_size=shard,
        )


def _is_lower_hex(text: str) -> bool:
    """True for lower-case hex of whole bytes (the round trip rejects upper case, whitespace, odd length)."""
    try:
        return bytes.fromhex(text).hex() == text
    except ValueError:
        return False


class Resource(NamedTuple):
    """One OMS resource: a file (``files``) or a byte range ``path:start:end`` (``shards``) and its digest.

    A named tuple (cheap to build: a signature may list millions); values from outside go through
    :meth:`checked` or :meth:`from_json`, which validate.
    """

    name: str
    algorithm: str
    digest: str

    @classmethod
    def checked(cls, name: str, algorithm: str, digest: str) -> Resource:
        if not name:
            raise SignatureFormatError("a resource needs a non-empty 'name'")
        if not _HEX_RE.fullmatch(digest) or len(digest) % 2:
            raise SignatureFormatError(f"resource {name!r}: 'digest' must be lower-case hex bytes")
        want = _HEX_LEN.get(algorithm)
        if want is not None and len(digest) != want:
            raise SignatureFormatError(
                f"resource {name!r}: a {algorithm} digest has {want} hex digits, got {len(digest)}"
            )
        return cls(name, algorithm, digest)

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "algorithm": self.algorithm, "digest": self.digest}

    @classmethod
    def from_json(cls, obj: Any) -> Resource:
        if not isinstance(obj, Mapping):
            raise SignatureFormatError("each resource must be a JSON object")
        name, algo, digest = obj.get("name"), obj.get("algorithm"), obj.get("digest")
        if not isinstance(name, str) or not isinstance(algo, str) or not isinstance(digest, str):
            raise SignatureFormatError("each resource needs 'name', 'algorithm' and 'digest' strings")
        if algo == "blake2":
            algo = "blake2b"
        return cls.checked(name, algo, digest)

    @classmethod
    def many_from_json(cls, items: Sequence[Any]) -> tuple[Resource, ...]:
        """:meth:`from_json` over a whole list, validated in bulk when every item is well-formed (a signature
        may list many thousands of files); anything unusual is validated item by item, with its own error."""
        try:
            names = [r["name"] for r in items]
            algos = [r["algorithm"] for r in items]
            digests = [r["digest"] for r in items]
        except (TypeError, KeyError, IndexError):
            names = algos = digests = []
        if (
            names
            and all(type(x) is str for x in names)
            and all(type(x) is str for x in digests)
            and all(type(x) is str for x in algos)
            and "" not in names
        ):
            kinds = set(algos)
            widths = {len(d) for d in digests}
            if (
                len(kinds) == 1
                and (want := _HEX_LEN.get(algos[0])) is not None
                and widths == {want}
                and _is_lower_hex("".join(digests))
            ):
                make = functools.partial(tuple.__new__, cls)  # the named tuple, without a Python call each
                return tuple(map(make, zip(names, algos, digests, strict=True)))
        return tuple(cls.from_json(r) for r in items)

    def split_shard(self) -> tuple[str, int, int] | None:
        """``(path, start, end)`` for a shard name ``path:start:end`` (path may contain colons), else None."""
        parts = self.name.rsplit(":", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit() or not parts[0]:
            return None
        start, end = int(parts[1]), int(parts[2])
        if end <= start:
            return None
        return parts[0], start, end
