"""Enumerating a model folder (or one file) the way OMS v1.0 section 6.1 says: regular files only, canonical
``/``-separated names relative to the root, default and user exclusions, and a symbolic-link policy.

Nothing is decided here; the listing records every symlink, escape, special file and exclusion so that the
signer can refuse and the verifier can report each one by name.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from loopwarden.errors import InputError, UsageError
from loopwarden.signing.hashing import FileState
from loopwarden.signing.interface import DEFAULT_IGNORES

__all__ = ["ASKED_PREFIX", "Entry", "Listing", "canonical_ignore", "enumerate_model", "is_confined_name"]


class Entry(NamedTuple):
    """One regular file of the model: its canonical name, the OS path to read and its state when listed."""

    name: str
    path: str
    state: FileState
    symlink: bool = False


@dataclass(slots=True)
class Listing:
    root: Path
    single_file: bool
    entries: list[Entry] = field(default_factory=list)
    ignored: dict[str, str] = field(default_factory=dict)
    """name -> which rule excluded it: ``default``, ``signature`` (the signature file) or the ignore path."""
    symlinks: list[str] = field(default_factory=list)
    """Symbolic links seen while links are not allowed."""
    escapes: list[str] = field(default_factory=list)
    """Symbolic links (allowed) whose target lies outside the root, or that dangle or loop."""
    special: list[str] = field(default_factory=list)
    """Names that are neither regular files nor folders (FIFOs, sockets, devices)."""
    undecodable: list[str] = field(default_factory=list)
    """Names that are not valid UTF-8, shown with replacement characters."""


def is_confined_name(name: str) -> bool:
    """True if ``name`` is a canonical relative path that cannot leave the root (spec section 6.1.2)."""
    if not name or name.startswith("/") or name.endswith("/") or "\x00" in name or "\\" in name:
        return False
    parts = name.split("/")
    return all(p not in ("", ".", "..") for p in parts)


def canonical_ignore(root: Path, value: str) -> str:
    """An ignore path as a canonical name relative to ``root``; absolute paths must lie inside ``root``."""
    text = value.replace(os.sep, "/")
    if os.path.isabs(value):
        try:
            text = Path(os.path.abspath(value)).relative_to(os.path.abspath(root)).as_posix()
        except ValueError:
            raise UsageError(f"ignore path {value!r} is not inside {root}") from None
    if any(c in text for c in "*?["):
        raise UsageError(f"ignore path {value!r}: glob characters are not allowed (OMS 6.2.1)")
    norm = posixpath.normpath(text)
    if norm in (".", "") or not is_confined_name(norm):
        raise UsageError(f"ignore path {value!r} must be a path inside the model folder")
    return norm


_SCANDIR_FD = os.scandir in os.supports_fd

ASKED_PREFIX = "asked:"
"""Marks an ignore path the verifier's user gave (as opposed to one recorded in the signature)."""


def _rule_for(name: str, ignores: Mapping[str, str], signature: str | None, top: bool) -> str | None:
    """Which rule leaves ``name`` out: ``signature``, ``default`` (top level only), or the ignore path equal to
    ``name`` (``ignores`` maps each path, without its marker, to the path as given). Ancestors need no check:
    the walk never enters a folder that a rule leaves out."""
    if name == signature:
        return "signature"
    if top and name in DEFAULT_IGNORES:
        return "default"
    return ignores.get(name)


def _encodes(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def enumerate_model(
    root: Path,
    *,
    allow_symlinks: bool,
    ignore_paths: Iterable[str] = (),
    signature: Path | None = None,
) -> Listing:
    """List the model at ``root`` (a folder or one file)."""
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        raise InputError(root, "no such file or folder") from None
    except OSError as exc:
        raise InputError(root, f"cannot read: {exc.strerror}") from None
    ignores: dict[str, str] = {}
    for p in ignore_paths:
        ignores.setdefault(
            p.removeprefix(ASKED_PREFIX), p
        )  # first given wins: the signature's before --ignore-path
    if stat.S_ISLNK(st.st_mode):
        if not allow_symlinks:
            raise InputError(root, "is a symbolic link; give the real path (or allow symlinks)")
        st = os.stat(root)
    if stat.S_ISREG(st.st_mode):
        listing = Listing(root, single_file=True)
        listing.entries.append(Entry(root.name, str(root), FileState.of(st), symlink=root.is_symlink()))
        return listing
    if not stat.S_ISDIR(st.st_mode):
        raise InputError(root, "is neither a regular file nor a folder")
    listing = Listing(root, single_file=False)
    real_root = os.path.realpath(root)
    sig_name: str | None = None
    if signature is not None:
        try:
            rel = Path(os.path.abspath(signature)).relative_to(os.path.abspath(root))
            sig_name = rel.as_posix()
        except ValueError:
            sig_name = None
    seen_dirs = {(st.st_dev, st.st_ino)}
    _walk(listing, str(root), "", real_root, allow_symlinks, ignores, sig_name, seen_dirs)
    listing.entries.sort()  # names are unique, so this orders by name (and compares in C)
    for names in (listing.symlinks, listing.escapes, listing.special, listing.undecodable):
        names.sort()
    return listing


def _inside(real_root: str, target: str) -> bool:
    return target == real_root or target.startswith(real_root.rstrip("/") + "/")


def _walk(
    listing: Listing,
    directory: str,
    prefix: str,
    real_root: str,
    allow_symlinks: bool,
    ignores: Mapping[str, str],
    sig_name: str | None,
    seen_dirs: set[tuple[int, int]],
) -> None:
    # Listing through a folder descriptor makes each entry's stat an fstatat of one name, not a walk of
    # the whole path again (a third less time on a folder of many small files).
    fd: int | None = None
    try:
        if _SCANDIR_FD:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        with os.scandir(directory if fd is None else fd) as it:
            items = list(it)  # order does not matter: every list is sorted at the end
    except OSError as exc:
        if fd is not None:
            os.close(fd)
        raise InputError(directory, f"cannot list folder: {exc.strerror}") from None
    try:
        top = not prefix
        head = directory if directory.endswith("/") else directory + "/"
        rules = top or bool(ignores) or sig_name is not None
        append = listing.entries.append
        s_isreg = stat.S_ISREG
        new = tuple.__new__  # Entry and FileState are named tuples; this skips their Python-level __new__
        for d in items:
            base = d.name
            name = prefix + base
            full = head + base
            if not (base.isascii() or _encodes(base)):
                listing.undecodable.append(name.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
                continue
            if rules:
                rule = _rule_for(name, ignores, sig_name, top)
                if rule is not None:
                    if d.is_dir(follow_symlinks=False):
                        _collect_ignored(listing, full, name + "/", rule)
                    else:
                        listing.ignored[name] = rule
                    continue
            try:
                lst = d.stat(follow_symlinks=False)
            except OSError as exc:
                raise InputError(full, f"cannot read: {exc.strerror}") from None
            if s_isreg(lst.st_mode):  # the common case first, with as little work as possible
                state = (lst.st_size, lst.st_mtime_ns, lst.st_ctime_ns, lst.st_ino, lst.st_dev)
                append(new(Entry, (name, full, new(FileState, state), False)))
                continue
            path = full
            is_link = stat.S_ISLNK(lst.st_mode)
            st = lst
            if is_link:
                if not allow_symlinks:
                    listing.symlinks.append(name)
                    continue
                target = os.path.realpath(full)
                if not _inside(real_root, target):
                    listing.escapes.append(name)
                    continue
                try:
                    st = os.stat(full)
                except OSError:
                    listing.escapes.append(name)  # dangling or looping link
                    continue
                path = target
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in seen_dirs:
                    listing.escapes.append(name)  # a link back to an ancestor: a cycle
                    continue
                _walk(
                    listing, path, name + "/", real_root, allow_symlinks, ignores, sig_name, seen_dirs | {key}
                )
            elif stat.S_ISREG(st.st_mode):
                listing.entries.append(Entry(name, path, FileState.of(st), symlink=is_link))
            else:
                listing.special.append(name)
    finally:
        if fd is not None:
            os.close(fd)


def _collect_ignored(listing: Listing, directory: str, prefix: str, rule: str) -> None:
    """Record the files inside an ignored folder, so that the verifier can say what was left out."""
    try:
        with os.scandir(directory) as it:
            items = sorted(it, key=lambda d: d.name)
    except OSError:
        listing.ignored[prefix.rstrip("/")] = rule
        return
    if not items:
        return
    for d in items:
        name = f"{prefix}{d.name}"
        if d.is_dir(follow_symlinks=False):
            _collect_ignored(listing, d.path, name + "/", rule)
        else:
            listing.ignored[name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")] = rule
