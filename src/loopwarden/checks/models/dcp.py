"""PyTorch distributed checkpoints (``torch.distributed.checkpoint``, DCP): a folder with a ``.metadata`` pickle
and one ``__<rank>_<n>.distcp`` data file per writer.

``FileSystemReader`` unpickles ``.metadata`` with plain ``pickle.load`` (judged by the pickle analysis like any
pickle) and then, for each entry of its ``storage_data`` (``_StorageInfo(relative_path, offset, length,
transform_descriptors)``), opens ``relative_path`` joined to the checkpoint folder, and hands ``length`` bytes from
``offset`` (a negative length: to the end of the file) to ``torch.load``: ``weights_only=False`` for byte items
(the non-tensor values of the state dict, through ``DefaultLoadPlanner.load_bytes``), ``weights_only=True`` for
tensors in current releases (older ones loaded them without it; every slice gets the full analysis either way). So:

* the entries of a scanned ``.metadata`` are followed: a path that leaves the folder is LW-MODEL-048, and every
  slice of a file in the folder is analysed as what ``torch.load`` reads (a zip, or a legacy pickle); an entry
  whose ``transform_descriptors`` are ZStandard's (``stream.zstd/1``, the only extension of the reader's default
  registry, which ``FileSystemWriter(_extensions=[ZStandard()])`` writes) is decompressed first, and any other
  transform (one the loading program registers) makes the metadata unverified;
* a ``.distcp`` file is recognised by its content, ``torch.save`` archives laid end to end, each with its central
  directory offsets counted from its own start: the archives are found from the end of the file backwards (each
  one's end record gives its start, which is the end of the one before) and each is analysed on its own. A file
  that is not such a sequence all the way to its first byte is analysed as an ordinary zip (and is unverified
  when bytes precede its last archive).
"""

from __future__ import annotations

import os
import posixpath
import stat
import struct
from collections.abc import Callable
from typing import Any, BinaryIO, Final

from loopwarden.checks.interface import ResourceLimitExceeded
from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext, bytes_blob, member_location, open_slice
from loopwarden.domain import Location

__all__ = ["archive_sequence", "scan_archive_sequence", "scan_storage_entries"]

Recurse = Callable[[Blob, ScanContext], None]
StorageEntry = tuple[str | None, int | None, int | None, tuple[str, ...] | None]
_Slice = tuple[int, int, int]
"""(offset, length, zstd layers) of a storage entry: the stream transforms it is read through, as a count of
ZStandard layers (the only transform the reader's default registry knows)."""

_EOCD: Final = struct.Struct("<4sHHHHIIH")
_EOCD64_LOC: Final = struct.Struct("<4sIQI")
_EOCD64_TAIL: Final = struct.Struct("<QQQ")
_GLOBAL_BOUNDS: Final = frozenset({"max_seconds", "max_decompressed_bytes", "max_members"})


# ------------------------------------------------------------------------------------------ .distcp data files


def _read(f: BinaryIO, blob: Blob, at: int, n: int) -> bytes:
    if blob.data is not None:
        return blob.data[at : at + n]
    f.seek(at)
    return f.read(n)


def _archive_start(f: BinaryIO, blob: Blob, end: int) -> int | None:
    """Where the zip archive that ends exactly at ``end`` starts, from its end record (no comment, as
    ``torch.save`` writes it) and, when present, its zip64 record right before the locator; None when the bytes
    before ``end`` are no such archive, or its offsets do not lead to its first local header and its central
    directory."""
    if end < _EOCD.size + 30:
        return None
    raw = _read(f, blob, end - _EOCD.size, _EOCD.size)
    if len(raw) != _EOCD.size:
        return None  # the blob holds fewer bytes than its size says (a truncated stream)
    sig, disk, cd_disk, _, count, cd_size, cd_offset, comment = _EOCD.unpack(raw)
    if sig != b"PK\x05\x06" or comment or disk or cd_disk:
        return None
    dir_end = end - _EOCD.size
    rec_off: int | None = None
    if dir_end >= _EOCD64_LOC.size + 56:
        loc = _read(f, blob, dir_end - _EOCD64_LOC.size, _EOCD64_LOC.size)
        if loc[:4] == b"PK\x06\x07" and len(loc) == _EOCD64_LOC.size:
            _, loc_disk, rec_off, disks = _EOCD64_LOC.unpack(loc)
            rec = _read(f, blob, dir_end - _EOCD64_LOC.size - 56, 56)
            if loc_disk or disks > 1 or len(rec) != 56 or rec[:4] != b"PK\x06\x06":
                return None
            count, cd_size, cd_offset = _EOCD64_TAIL.unpack_from(rec, 32)
            dir_end -= _EOCD64_LOC.size + 56
    start: int = dir_end - cd_size - cd_offset
    if start < 0 or start >= end or (rec_off is not None and start + rec_off != dir_end):
        return None
    if _read(f, blob, start, 4) != b"PK\x03\x04":
        return None
    if (cd_size or count) and _read(f, blob, start + cd_offset, 4) != b"PK\x01\x02":
        return None
    return start


def archive_sequence(blob: Blob, ctx: ScanContext) -> list[tuple[int, int]] | None:
    """The (start, end) of each archive when ``blob`` is two or more zip archives laid end to end from its first
    byte to its last (a DCP ``.distcp`` file), else None. One end-record read for an ordinary zip."""
    size = blob.size or 0
    spans: list[tuple[int, int]] = []
    end = size
    f: Any = None
    try:
        if blob.data is None:
            f = blob.open()
        while end > 0:
            start = _archive_start(f, blob, end)
            if start is None or (start == 0 and not spans):
                return None  # no archive here, or a single one: an ordinary zip (prepended bytes and all)
            spans.append((start, end))
            if len(spans) > ctx.limits.max_members:
                raise ResourceLimitExceeded(
                    "max_members", f"more than {ctx.limits.max_members} archives in one file"
                )
            if len(spans) & 255 == 0:
                ctx.check_time()
            end = start
    finally:
        if f is not None:
            f.close()
    spans.reverse()
    return spans


def scan_archive_sequence(
    blob: Blob, ctx: ScanContext, spans: list[tuple[int, int]], recurse: Recurse
) -> None:
    """Analyse each archive of a ``.distcp`` file as the slice a reader hands to ``torch.load``."""
    ctx.formats.append("dcp-data")
    for start, end in spans:
        ctx.check_time()
        _scan_slice(blob, ctx, start, end, f"<archive {start}-{end}>", recurse)


def _scan_slice(blob: Blob, ctx: ScanContext, start: int, end: int, name: str, recurse: Recurse) -> None:
    loc = member_location(blob.location, name)
    if blob.data is not None:
        child = bytes_blob(name, loc, blob.data[start:end], blob.depth + 1, inflated=blob.inflated)
    else:

        def opener() -> BinaryIO:
            return open_slice(blob.open(), start, end - start, own=True)

        child = Blob(name, loc, opener, end - start, True, blob.depth + 1, inflated=blob.inflated)
    try:
        recurse(child, ctx)
    except ResourceLimitExceeded as exc:
        if exc.bound in _GLOBAL_BOUNDS:
            raise
        ctx.fail(loc, str(exc))


# --------------------------------------------------------------------------------------------- .metadata entries


def scan_storage_entries(
    blob: Blob, ctx: ScanContext, entries: tuple[StorageEntry, ...], recurse: Recurse
) -> None:
    """Check where a DCP ``.metadata``'s storage entries make the reader go, and analyse what it reads there.

    The files are resolved beside a file on disk, or among the members of the tar or zip that holds the metadata
    (unpacked, the checkpoint is read from them; its data files are also analysed where they sit, as archive
    sequences). A metadata in anything else is unverified."""
    from loopwarden.checks.models.zipfmt import escapes_folder

    loc = Location(blob.location.path, blob.location.member)
    ctx.formats.append("dcp-metadata")
    slices: dict[str, set[_Slice]] = {}
    for path, offset, length, transforms in entries:
        if path is None:
            ctx.fail(loc, "a distributed-checkpoint storage entry's relative_path is not a constant string")
            continue
        why = escapes_folder(path) or ("contains a backslash" if "\\" in path else None)
        if why:
            ctx.add(
                rules.DcpPathEscape,
                f"storage entry reads '{path[:200]}', which {why}: the reader opens a file outside the "
                "checkpoint folder",
                loc,
                relative_path=path[:200],
            )
            continue
        if offset is None or length is None:
            ctx.fail(loc, f"storage entry of '{path[:200]}': offset or length is not a constant integer")
            continue
        layers = _zstd_layers(transforms)
        if layers is None:
            ctx.fail(
                loc,
                f"storage entry of '{path[:200]}' is read through stream transforms (transform_descriptors) "
                f"{_descriptors_text(transforms)}, which are not supported",
            )
            continue
        slices.setdefault(path, set()).add((offset, length, layers))
    if not slices:
        return
    if blob.location.member is not None:
        _scan_member_slices(blob, slices, loc, ctx, recurse)
        return
    if blob.depth != 0 or blob.file_path is None:
        ctx.fail(
            loc,
            "the data files of a distributed-checkpoint metadata that is no file on disk are not followed",
        )
        return
    base = os.path.dirname(os.path.abspath(blob.location.path))
    for path in sorted(slices):
        ctx.check_time()
        _scan_file_slices(base, path, sorted(slices[path]), loc, ctx, recurse)


_ZSTD: Final = "stream.zstd"
_MAX_LAYERS: Final = 4


def _zstd_layers(transforms: tuple[str, ...] | None) -> int | None:
    """How many ZStandard layers a storage entry's ``transform_descriptors`` put between its bytes and
    ``torch.load``, or None when they are not constant or name another transform. The reader looks each
    descriptor's name (before its ``/``) up in its extension registry, whose only default is ``stream.zstd``
    (``torch.distributed.checkpoint._extension.ZStandard``, written by ``FileSystemWriter(_extensions=[
    ZStandard()])``), which accepts a version of major 1 and decompresses; any other name is an extension the
    loading program registered itself, code the scanner cannot see."""
    if transforms is None or len(transforms) > _MAX_LAYERS:
        return None
    for desc in transforms:
        name, _, version = desc.partition("/")
        if name != _ZSTD or version.partition(".")[0] != "1":
            return None
    return len(transforms)


def _descriptors_text(transforms: tuple[str, ...] | None) -> str:
    if transforms is None:
        return "that are not constant strings"
    return "[" + ", ".join(repr(d[:40]) for d in transforms[:5]) + ("...]" if len(transforms) > 5 else "]")


def _scan_member_slices(
    blob: Blob, slices: dict[str, set[_Slice]], loc: Location, ctx: ScanContext, recurse: Recurse
) -> None:
    """A ``.metadata`` that is a member of an archive: once the archive is extracted, the reader opens its data
    files beside it, so the slices it names are analysed in the archive's members of those paths (tar and zip). A
    metadata in anything else (a compressed stream) is unverified."""
    member = blob.location.member or ""
    files = None
    name = ""
    for (path, container), found in ctx.archive_files.items():
        # the innermost archive that holds the member: its location is the member's, less the member's own name
        if path != blob.location.path or (container is not None and not member.startswith(container + "!")):
            continue
        inner = member if container is None else member[len(container) + 1 :]
        if files is None or len(inner) < len(name):
            files, name = found, inner
    if files is None:
        ctx.fail(
            loc,
            "distributed-checkpoint metadata inside an archive: the data files its storage entries name are not "
            "followed",
        )
        return
    folder = posixpath.dirname(posixpath.normpath(name))
    for path in sorted(slices):
        ctx.check_time()
        for whole in files(posixpath.join(folder, path)):
            _scan_blob_slices(whole, path, sorted(slices[path]), ctx, recurse)


def _scan_blob_slices(
    whole: Blob, path: str, wanted: list[_Slice], ctx: ScanContext, recurse: Recurse
) -> None:
    """Analyse each slice ``wanted`` of a data file as the reader hands it to ``torch.load``: as it is, or (for an
    entry read through ZStandard) decompressed first. Further layers are zstd streams inside the first one's
    output, which the analysis of that output decompresses in turn (it recognises zstd by its magic; output
    that is no zstd stream is analysed as it is, though the reader fails on it)."""
    size = whole.size or 0
    done: set[tuple[int, int, bool]] = set()
    for offset, length, layers in wanted:
        # _ReaderView: a negative length reads to the end of the file; past the end there is nothing to load
        start, end = offset, size if length < 0 else min(offset + length, size)
        if start < 0 or start >= end or (start, end, layers > 0) in done:
            continue
        done.add((start, end, layers > 0))
        ctx.check_time()
        name = f"{path[:200]}[{start}:{end}]" + (" (zstd)" if layers else "")
        _scan_slice(whole, ctx, start, end, name, _unzstd() if layers else recurse)


def _unzstd() -> Recurse:
    """The dispatch behind a ZStandard decompression of the slice, whatever its first bytes are (the reader
    decompresses every slice of an entry that names the transform)."""
    from loopwarden.checks.models.dispatch import _zstd

    return _zstd  # decompresses and hands the output to the same dispatch as ``recurse``


def _scan_file_slices(
    base: str, path: str, wanted: list[_Slice], loc: Location, ctx: ScanContext, recurse: Recurse
) -> None:
    from loopwarden.checks.models.onnx import _allowed_folders

    folder = os.path.realpath(base)
    target = os.path.realpath(os.path.join(base, path))
    if not any(os.path.commonpath([f, target]) == f for f in _allowed_folders(base, folder)):
        ctx.add(
            rules.DcpPathEscape,
            f"storage entry reads '{path[:200]}', which resolves outside the checkpoint folder (through a link)",
            loc,
            relative_path=path[:200],
        )
        return
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return  # the reader fails on a missing file before it loads anything from it
    except OSError as exc:
        ctx.fail(loc, f"storage file '{path[:200]}' cannot be read: {exc.strerror or exc}")
        return
    if not stat.S_ISREG(st.st_mode):
        ctx.fail(loc, f"storage file '{path[:200]}' is not a regular file; not read")
        return
    try:
        handle = open(target, "rb")  # noqa: SIM115 - closed with the target (ctx.closers)
    except OSError as exc:
        ctx.fail(loc, f"storage file '{path[:200]}' cannot be read: {exc.strerror or exc}")
        return
    ctx.closers.append(handle)
    size = st.st_size
    whole = Blob(os.path.basename(path), loc, lambda: open_slice(handle, 0, size), size, True, 0, target)
    _scan_blob_slices(whole, path, wanted, ctx, recurse)
