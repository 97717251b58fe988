"""tar archives (plain; compressed ones arrive here after decompression): members, links and escapes."""

from __future__ import annotations

import posixpath
import tarfile
from typing import BinaryIO, Final

from loopwarden.checks.interface import ResourceLimitExceeded
from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext, member_location, open_slice
from loopwarden.checks.models.detect import Format, sniff, tar_header
from loopwarden.checks.models.dispatch import hdf5_behind, scan_blob, scan_zip_tail, seekable_blob, zip_tail
from loopwarden.checks.models.torch_tar import TRIGGER_NAMES
from loopwarden.checks.models.zipfmt import EOCD_WINDOW, end_record, escapes_folder
from loopwarden.domain import Location, Severity

__all__ = ["scan_tar"]

_TRAILER_CHUNK: Final = 1 << 20
"""Bytes after a tar's last member are read in chunks of this size (all of them, in bounded memory)."""


def _link_escapes(member: tarfile.TarInfo) -> bool:
    target = member.linkname
    if target.startswith("/") or "\\" in target:
        return True
    base = posixpath.dirname(member.name) if member.issym() else ""
    joined = posixpath.normpath(posixpath.join(base, target))
    return joined == ".." or joined.startswith("../") or joined.startswith("/")


def _trailer(blob: Blob, f: BinaryIO, end: int, members: list[tarfile.TarInfo], ctx: ScanContext) -> None:
    """What follows the end of a tar archive: only zero blocks in a tar any tool writes. A zip appended there is
    what ``zipfile`` (Keras' ``.keras`` loader, skops) opens, whatever comes before it; other bytes are read only by
    readers that skip zero blocks (``tar --ignore-zeros``, ``tarfile.open(ignore_zeros=True)``) and are reported;
    the members such a reader finds there (at the first block that is a valid header, however many zero or junk
    blocks come before it) are analysed as well.

    ``zipfile`` finds the end record anywhere in the last 64 KiB, so a zip can also lie across the tar's own
    structure (its central directory in one member, a comment running over the next header, the end record in a
    later member): read as the whole file, it is analysed as the zip it is. A zip wholly inside one member's data
    (a tar whose last member is a zip) is that member's, analysed as such."""
    size = blob.size or 0
    cd = zip_tail(blob)
    if cd is not None and (cd >= end or not _inside_a_member(blob, cd, members)):
        scan_zip_tail(blob, ctx, "tar")
        return
    first = _first_nonzero(f, end, size, ctx)
    if first is None:
        return
    ctx.add(
        rules.ArchiveExtraData,
        f"{size - end} byte(s) after the end of the tar archive are not zero blocks",
        blob.location,
        start=end,
        end=size,
        first_nonzero=first,
    )
    found = _next_header(f, end + (first - end) // 512 * 512, size, ctx)
    if found is None:
        return
    header: int = found
    name = f"<tar members after the end of the archive, from byte {header}>"

    def opener(start: int = header, length: int = size - header) -> BinaryIO:
        return open_slice(blob.open(), start, length, own=True)

    child = Blob(
        name,
        member_location(blob.location, name),
        opener,
        size - header,
        True,
        blob.depth + 1,
        inflated=blob.inflated,
    )
    try:
        scan_blob(child, ctx)
    except ResourceLimitExceeded as exc:
        if exc.bound in ("max_seconds", "max_decompressed_bytes", "max_members"):
            raise
        ctx.fail(child.location, str(exc))


def _first_nonzero(f: BinaryIO, start: int, size: int, ctx: ScanContext) -> int | None:
    """The offset of the first byte that is not zero from ``start`` to ``size``, read in bounded chunks."""
    pos = start
    while pos < size:
        ctx.check_time()
        f.seek(pos)
        chunk = f.read(min(size - pos, _TRAILER_CHUNK))
        if not chunk:
            return None
        rest = chunk.lstrip(b"\x00")
        if rest:
            return pos + len(chunk) - len(rest)
        pos += len(chunk)
    return None


def _next_header(f: BinaryIO, start: int, size: int, ctx: ScanContext) -> int | None:
    """The first 512-byte block from ``start`` that ``tarfile`` takes for a member header, where a reader that
    skips zero and invalid blocks (``ignore_zeros``) goes on reading."""
    pos = start
    while pos + 512 <= size:
        ctx.check_time()
        f.seek(pos)
        chunk = f.read(min(size - pos, _TRAILER_CHUNK) // 512 * 512)
        if not chunk:
            return None
        for at in range(0, len(chunk) - 511, 512):
            block = chunk[at : at + 512]
            if block.strip(b"\x00") and tar_header(block):
                return pos + at
        pos += len(chunk)
    return None


def _inside_a_member(blob: Blob, cd: int, members: list[tarfile.TarInfo]) -> bool:
    """Whether the central directory at ``cd`` and the end record after it lie in the data of one regular member."""
    size = blob.size or 0
    tail = blob.tail(min(size, EOCD_WINDOW))
    idx = end_record(tail)  # the record zip_tail found the directory from, as zipfile finds it
    if idx is None:
        return False
    eocd = size - len(tail) + idx
    return any(m.isfile() and m.offset_data <= cd and eocd + 22 <= m.offset_data + m.size for m in members)


def scan_tar(blob: Blob, ctx: ScanContext) -> None:
    blob = seekable_blob(blob, ctx)
    with blob.open() as f:
        try:
            tf = tarfile.open(fileobj=f, mode="r:")  # noqa: SIM115 - closed below
        except tarfile.TarError as exc:
            ctx.fail(blob.location, f"tar archive cannot be read ({exc})")
            return
        try:
            members: list[tarfile.TarInfo] = []
            end: int | None = None
            while True:
                ctx.check_time()
                try:
                    nxt = tf.next()
                except tarfile.TarError as exc:
                    ctx.fail(blob.location, f"tar archive is corrupt or truncated ({exc})")
                    break
                if nxt is None:
                    end = tf.offset  # the end-of-archive block: tar readers stop here
                    break
                ctx.count_member()
                members.append(nxt)
        finally:
            tf.close()
        if end is not None:
            _trailer(blob, f, end, members, ctx)
    if sniff(blob.head(4096), blob.size) is Format.TAR:  # (else _dispatch looked already)
        hdf5_behind(blob, ctx, "tar", members=frozenset(m.offset_data for m in members))
    by_path: dict[str, list[tarfile.TarInfo]] | None = None  # built for the first link only
    symlinks: dict[str, str] = {}
    ctx.archive_files[(blob.location.path, blob.location.member)] = lambda path: _extracted(
        blob, members, path
    )
    # links read as text stay inside; through the archive's own links they may not
    _duplicates(blob, members, ctx)
    escaping: set[int] = set()
    redirected: dict[int, str] = {}
    if any(m.issym() for m in members):
        escaping, redirected = _through_links(blob, members, ctx)
    for m in members:
        mloc = member_location(blob.location, m.name)
        why = escapes_folder(m.name)
        if why:
            ctx.add(rules.ArchivePathEscape, f"member name {why}", mloc, name=m.name)
        if m.issym() or m.islnk():
            kind = "symbolic link" if m.issym() else "hard link"
            if _link_escapes(m):
                ctx.add(rules.ArchiveLink, f"{kind} to '{m.linkname[:200]}' escapes the folder", mloc)
                continue
            if id(m) in escaping:
                ctx.add(
                    rules.ArchiveLink,
                    f"{kind} to '{m.linkname[:200]}' escapes the folder through the archive's symbolic links",
                    mloc,
                )
                continue
            ctx.add_severity(rules.ArchiveLink, Severity.LOW, f"{kind} to '{m.linkname[:200]}'", mloc)
            if by_path is None:
                by_path = _members_by_path(members)
                symlinks = _symlinks(by_path)
            targets = _link_targets(m, by_path, symlinks)
            if targets is None:
                ctx.fail(mloc, f"{kind} may lead to more than {_MAX_LINK_TARGETS} members; not all judged")
                continue
            names = {_extracted_name(m), redirected.get(id(m), m.name)}
            for target in targets:
                for name in sorted(names):
                    if posixpath.basename(target.name) != posixpath.basename(name):
                        # extracted, the link gives the target's bytes a name a loader opens (model_config.yaml,
                        # config.json): the analyses that depend on the name judge them under it too
                        _scan_member(blob, target, name, member_location(blob.location, name), ctx)
            continue
        if m.ischr() or m.isblk() or m.isfifo():
            ctx.add(rules.ArchiveLink, "member is a device or FIFO", mloc)
            continue
        if not m.isfile():
            continue
        if m.offset_data + m.size > (blob.size or 0):
            ctx.fail(mloc, "member data runs past the end of the archive (truncated)")
            continue
        if m.sparse:
            ctx.fail(mloc, "sparse tar members are not supported")
            continue

        name = _extracted_name(m)
        _scan_member(blob, m, name, mloc, ctx)
        real = redirected.get(id(m))
        if real is not None and posixpath.basename(real) != posixpath.basename(name):
            # written through a symbolic link of the archive, the bytes land under another name (config.json)
            _scan_member(blob, m, real, member_location(blob.location, real), ctx)
    kinds = sorted({n for m in members if (n := _norm(m.name)) in TRIGGER_NAMES})
    if kinds:
        # torch's legacy tar checkpoint: pickles follow raw storage and tensor bytes (see torch_tar)
        from loopwarden.checks.models.torch_tar import walk_legacy_tar

        for kind in kinds:
            for child in _extracted(blob, members, kind):
                walk_legacy_tar(child, kind, ctx)
    files = sorted({_extracted_name(m) for m in members if m.isfile()})
    if any(n.endswith("MAR-INF/MANIFEST.json") for n in files):
        # a TorchServe model archive made with --archive-format tgz
        from loopwarden.checks.models.torch import check_torchserve_archive

        check_torchserve_archive(files, ctx, blob.location, lambda path: _extracted(blob, members, path))


_COMPARE_CHUNK: Final = 1 << 20
"""Two copies of a path are compared in chunks of this size."""


def _duplicates(blob: Blob, members: list[tarfile.TarInfo], ctx: ScanContext) -> None:
    """Paths the archive writes more than once with different content (LW-MODEL-022). Extracting (NeMo's
    ``restore_from``, ``tar x``) leaves the last copy on disk and ``tarfile.getmember`` returns the last one, while a
    reader that stops at the first match (an inspection script, a first-match scanner) sees the first: a benign
    first ``model_weights.ckpt`` or ``model_config.yaml`` hides the one the loader uses. Every copy is analysed; the
    finding says that the copies differ. Only regular files are compared: a path that a link replaces (or that is
    written through a link) is judged under the name it ends up with by the link analysis. Copies with the same
    bytes (``tar -r`` re-adding an unchanged file) are not reported."""
    by_path: dict[str, list[tarfile.TarInfo]] = {}
    for m in members:
        if m.isfile():
            by_path.setdefault(_norm(m.name), []).append(m)
    for path, copies in sorted(by_path.items()):
        if len(copies) < 2:
            continue
        first = copies[0]
        if all(_same(blob, first, other, ctx) for other in copies[1:]):
            continue
        ctx.add(
            rules.ZipDuplicateMember,
            f"{len(copies)} members are extracted to '{path[:200]}' with different content: extracting keeps the "
            "last, a reader that stops at the first match sees the first",
            member_location(blob.location, path),
            count=len(copies),
            offsets=[m.offset for m in copies[:16]],
        )


def _same(blob: Blob, a: tarfile.TarInfo, b: tarfile.TarInfo, ctx: ScanContext) -> bool:
    """Whether two regular-file members hold the same bytes."""
    if a.size != b.size:
        return False
    if a.size == 0:
        return True
    size = blob.size or 0
    if max(a.offset_data, b.offset_data) + a.size > size:
        return False  # truncated: reported where the member is analysed
    with blob.open() as f:
        done = 0
        while done < a.size:
            ctx.check_time()
            n = min(_COMPARE_CHUNK, a.size - done)
            f.seek(a.offset_data + done)
            x = f.read(n)
            f.seek(b.offset_data + done)
            if f.read(n) != x:
                return False
            done += n
    return True


_MAX_LINK_STEPS: Final = 40
"""Symbolic links followed in resolving one path, as Linux's own limit (ELOOP)."""


def _resolve(parts: list[str], links: dict[str, str], follow_last: bool) -> list[str] | None:
    """The real path (components under the extraction folder) that ``parts`` reaches once the archive's earlier
    symbolic links exist on disk (``links``: real path -> link target), as the file system resolves it: ``..``
    after a link is applied to where the link leads, not to its name. None when it leaves the folder (or is
    absolute); a loop of links is left where it stands (the file system refuses it)."""
    todo = list(reversed(parts))
    real: list[str] = []
    steps = 0
    while todo:
        part = todo.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not real:
                return None
            real.pop()
            continue
        target = links.get("/".join((*real, part)))
        if target is not None and (todo or follow_last) and steps < _MAX_LINK_STEPS:
            steps += 1
            if target.startswith("/") or "\\" in target:
                return None
            todo.extend(reversed(target.split("/")))
            continue
        real.append(part)
    return real


def _through_links(
    blob: Blob, members: list[tarfile.TarInfo], ctx: ScanContext
) -> tuple[set[int], dict[int, str]]:
    """Members that leave the folder only through the archive's own symbolic links, in the order ``tarfile``
    extracts them: a link ``a -> .`` (inside) and a link ``a/b -> ..`` (inside, read as text) put ``b`` in the
    folder's parent, so a later ``b/x`` (or a link to ``a/b/../x``) is written outside it. The names read as text
    stay inside; Keras' extraction check before 3.14 read them so (GHSA-hqp4-2352-xf5r, keras PR 23015).
    Members whose names escape are reported here; the ids of links that escape are returned, with the path each
    regular member is written to when that is not its name (``tarfile`` writes a member through a symbolic link
    already extracted at its path: ``x.json -> config.json`` then a file ``x.json`` fills ``config.json``)."""
    links: dict[str, str] = {}
    escaping: set[int] = set()
    redirected: dict[int, str] = {}
    for m in members:
        if escapes_folder(m.name):
            continue  # reported as it reads
        parts = m.name.split("/")
        folder = _resolve(parts[:-1], links, True)
        where = None if folder is None else _resolve([*folder, parts[-1]], links, not m.issym())
        if where is None:
            ctx.add(
                rules.ArchivePathEscape,
                "member is written outside the folder through the archive's symbolic links",
                member_location(blob.location, m.name),
                name=m.name,
            )
            continue
        if (m.isfile() or m.islnk()) and where and "/".join(where) != _norm(m.name):
            redirected[id(m)] = "/".join(where)  # a hard link that cannot be made there is written as a file
        if m.issym():
            links["/".join(where)] = m.linkname
            reached = _resolve([*where[:-1], *m.linkname.split("/")], links, True)
        elif m.islnk():  # a hard link's target is named from the top of the archive
            reached = _resolve(m.linkname.split("/"), links, True)
        else:
            continue
        if reached is None:
            escaping.add(id(m))
    return escaping, redirected


_MAX_LINK_TARGETS: Final = 16
"""Members one link may lead to that are judged under its name; a link that may lead to more is unverified."""


def _norm(path: str) -> str:
    """A member name or link target as the file system spells it once extracted (``./a``, ``a//b``, ``d/../a``)."""
    return posixpath.normpath(path.rstrip("/") or ".")


def _extracted_name(m: tarfile.TarInfo) -> str:
    """The name a member is analysed under: the path ``tarfile`` extracts it to (``config.json/``, a regular member
    whose name ends in a slash, is written as ``config.json``), which name-dependent analyses (a Keras
    ``config.json``, a NeMo ``model_config.yaml``) must see."""
    norm = _norm(m.name)
    return m.name if norm in (".", "..") or norm.startswith("../") else norm


def _members_by_path(members: list[tarfile.TarInfo]) -> dict[str, list[tarfile.TarInfo]]:
    """Every member under the path it is extracted to, in archive order (a path may be written several times)."""
    out: dict[str, list[tarfile.TarInfo]] = {}
    for m in members:
        out.setdefault(_norm(m.name), []).append(m)
    return out


def _symlinks(by_path: dict[str, list[tarfile.TarInfo]]) -> dict[str, str]:
    """Where each path that ends up a symbolic link once extracted leads (its last member is one)."""
    return {p: ms[-1].linkname for p, ms in by_path.items() if ms[-1].issym()}


def _link_targets(
    link: tarfile.TarInfo, by_path: dict[str, list[tarfile.TarInfo]], symlinks: dict[str, str]
) -> list[tarfile.TarInfo] | None:
    """The regular members whose bytes a link inside the archive may show once extracted (through other links), or
    None when there are more than _MAX_LINK_TARGETS of them.

    Which member of a path that is written several times a link shows depends on the order and kind of the writes:
    ``tarfile.extractfile`` takes the last one before the link; extracted, a hard link shares the file then on disk,
    which a later regular member of that path rewrites in place but a later link or directory replaces (the hard
    link keeping the earlier bytes). So every regular member of the path is a candidate, and a target is looked up
    as the file system reaches it: its name normalised, and through directory symbolic links of the archive."""
    found: list[tarfile.TarInfo] = []
    seen: set[int] = {id(link)}
    todo = [link]
    steps = 0
    while todo:
        cur = todo.pop()
        steps += 1
        if steps > 4 * _MAX_LINK_TARGETS:
            return None
        base = posixpath.dirname(_norm(cur.name)) if cur.issym() else ""
        raw = posixpath.join(base, cur.linkname)
        paths = {_norm(raw)}
        real = _resolve(raw.split("/"), symlinks, False)
        if real is not None:
            paths.add(_norm("/".join(real)))
        for path in sorted(paths):
            for nxt in by_path.get(path, ()):
                if id(nxt) in seen:
                    continue
                seen.add(id(nxt))
                if nxt.isfile() and not nxt.sparse:
                    found.append(nxt)
                    if len(found) > _MAX_LINK_TARGETS:
                        return None
                elif nxt.issym() or nxt.islnk():
                    todo.append(nxt)
    return found


def _extracted(blob: Blob, members: list[tarfile.TarInfo], path: str) -> list[Blob]:
    """The members whose bytes ``path`` (from the top of the archive) may hold once the archive is extracted:
    every regular member of that path, and those its links there lead to (see :func:`_link_targets`)."""
    by_path = _members_by_path(members)
    symlinks = _symlinks(by_path)
    found: list[tarfile.TarInfo] = []
    for m in by_path.get(_norm(path), ()):
        if m.isfile() and not m.sparse:
            found.append(m)
        elif m.issym() or m.islnk():
            found.extend(_link_targets(m, by_path, symlinks) or ())
    out: list[Blob] = []
    for m in found:
        if m.offset_data + m.size > (blob.size or 0):
            continue  # truncated: reported where the member itself is analysed

        def opener(start: int = m.offset_data, length: int = m.size) -> BinaryIO:
            return open_slice(blob.open(), start, length, own=True)

        loc = member_location(blob.location, m.name)
        out.append(Blob(m.name, loc, opener, m.size, True, blob.depth + 1, inflated=blob.inflated))
    return out


def _scan_member(blob: Blob, m: tarfile.TarInfo, name: str, mloc: Location, ctx: ScanContext) -> None:
    def opener(start: int = m.offset_data, length: int = m.size) -> BinaryIO:
        return open_slice(blob.open(), start, length, own=True)

    if m.offset_data + m.size > (blob.size or 0):
        return  # reported where the member itself is analysed
    try:
        scan_blob(Blob(name, mloc, opener, m.size, True, blob.depth + 1, inflated=blob.inflated), ctx)
    except ResourceLimitExceeded as exc:
        if exc.bound in ("max_seconds", "max_decompressed_bytes", "max_members"):
            raise
        ctx.fail(mloc, str(exc))
