"""Zip parsed twice: from the central directory and from the local headers, with every disagreement reported.

Loaders differ: Python's ``zipfile`` trusts the central directory and checks CRCs and the encryption bit;
torch's
miniz reader ignores some of them; streaming readers walk local headers. A scanner that reads a zip one way is
bypassed by an archive built to be read another way, so this module records each view and hands every member
(and
every byte range no member explains) to the dispatcher.
"""

from __future__ import annotations

import re
import stat
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final, cast

from loopwarden.checks.interface import ResourceLimitExceeded
from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, DecompressReader, ScanContext, member_location, open_slice
from loopwarden.checks.models.detect import EOCD_WINDOW, end_record
from loopwarden.domain import Location, Severity

__all__ = [
    "EOCD_WINDOW",
    "ZipArchive",
    "ZipEntry",
    "end_record",
    "escapes_folder",
    "extracted_name",
    "parse_zip",
]

_CD_SIG: Final = b"PK\x01\x02"
_LH_SIG: Final = b"PK\x03\x04"
_EOCD_SIG: Final = b"PK\x05\x06"
_EOCD64_LOC_SIG: Final = b"PK\x06\x07"
_EOCD64_SIG: Final = b"PK\x06\x06"
_DD_SIG: Final = b"PK\x07\x08"
_MAX_EXTRACT_VERSION: Final = 63
"""Python's zipfile refuses members that need a newer version; lenient readers (torch's miniz) ignore it."""
_GAP_SCAN_LIMIT: Final = 64 << 20
_FLAG_ENCRYPTED: Final = 0x1
_FLAG_DESCRIPTOR: Final = 0x8
_FLAG_UTF8: Final = 0x800
_FLAG_STRONG: Final = 0x40
_FLAG_REFUSED: Final = 0x20 | 0x2000
"""Compressed patched data, encrypted central directory: zipfile refuses them, lenient readers do not."""
LEAD: Final = 16
"""How many bytes of each member's data are read with its local header (:attr:`ZipEntry.lead`)."""
SUPPORTED_METHODS: Final = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_MAY_ESCAPE: Final = re.compile(r"[\x00\\]|^/|^[A-Za-z]:|(?:^|/)\.\.(?:/|$)")
"""Matches every name that :func:`escapes_folder` rejects (NUL, backslash, absolute, drive, a '..' part)."""
Source = BinaryIO | bytes
"""Where an archive's bytes are read from: a seekable reader, or the bytes themselves."""


@dataclass(slots=True)
class ZipEntry:
    """One member as the central directory (or, for hidden members, only a local header) describes it."""

    name: str
    raw_name: bytes
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    header_offset: int
    external_attr: int = 0
    create_system: int = 0
    hidden: bool = False
    data_start: int = -1
    end: int = -1
    local_method: int | None = None
    local_csize: int | None = None
    local_usize: int | None = None
    local_name: str | None = None
    shared: bool = False
    """Its data overlaps another member's: the same compressed bytes inflate more than once (a bomb's trick)."""
    lead: bytes = b""
    """The first bytes of the member's data as stored (read with the local header): enough to tell raw tensor
    bytes from a format that a loader would interpret."""
    unicode_name: str | None = None
    """The name in an Info-ZIP Unicode Path extra field (0x7075) whose CRC matches the raw name, when it differs
    from the decoded name: Python's zipfile (3.12+) uses it, readers that ignore the field use the raw name."""

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/") and self.usize == 0

    @property
    def mode(self) -> int:
        return (self.external_attr >> 16) & 0xFFFF if self.create_system == 3 else 0

    def interpretations(self) -> list[tuple[int, int]]:
        """(method, compressed size) pairs that some reader uses for this member's data."""
        out = [(self.method, self.csize)]
        alt = (
            self.local_method if self.local_method is not None else self.method,
            self.local_csize if self.local_csize else self.csize,
        )
        if alt not in out:
            out.append(alt)
        if self.method == 0 and self.usize != self.csize and (0, self.usize) not in out:
            out.append((0, self.usize))  # stored: some readers take the compressed size, others the size
        return out


@dataclass
class ZipArchive:
    entries: list[ZipEntry] = field(default_factory=list)
    extra_ranges: list[tuple[int, int, str]] = field(default_factory=list)
    """(start, end, what) byte ranges that no member explains: prepended, gaps, appended."""


def miniz_end_record(tail: bytes) -> int | None:
    """Where torch's zip reader (miniz) finds the end record in ``tail``: searching back from the end, the first
    signature with a whole 22-byte record after it. It differs from :func:`end_record` only when zipfile finds
    none: a signature in the final 21 bytes makes zipfile refuse the file, miniz passes over it."""
    if len(tail) < 22:
        return None
    idx = tail.rfind(_EOCD_SIG, max(0, len(tail) - EOCD_WINDOW), len(tail) - 18)
    return idx if idx >= 0 else None


def escapes_folder(name: str) -> str | None:
    """Why an archive member name escapes its extraction folder, or None."""
    if not _MAY_ESCAPE.search(name):
        return None  # one search for the common, harmless name; the checks below say which rule applies
    if "\x00" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    if _DRIVE.match(name):
        return "starts with a drive letter"
    if any(part == ".." for part in name.split("/")):
        return "contains '..'"
    return None


def extracted_name(name: str) -> str:
    """The path ``zipfile`` extracts a member to: its name without empty, ``.`` and ``..`` parts."""
    if "/." not in name and "//" not in name and not name.startswith("."):
        return name  # the common name: nothing dropped
    return "/".join(part for part in name.split("/") if part not in ("", ".", ".."))


def _decode_name(raw: bytes, flags: int) -> str:
    if flags & _FLAG_UTF8:
        return raw.decode("utf-8", "replace")
    return raw.decode("cp437")


def _zip64_extra(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    if usize != 0xFFFFFFFF and csize != 0xFFFFFFFF and offset != 0xFFFFFFFF:
        return usize, csize, offset  # the zip64 field replaces only values saturated at 0xFFFFFFFF
    pos = 0
    while pos + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + ln]
        if tag == 1:
            vals = [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
            it = iter(vals)
            if usize == 0xFFFFFFFF:
                usize = next(it, usize)
            if csize == 0xFFFFFFFF:
                csize = next(it, csize)
            if offset == 0xFFFFFFFF:
                offset = next(it, offset)
        pos += 4 + ln
    return usize, csize, offset


def _unicode_path(extra: bytes, raw: bytes) -> str | None:
    """The name of an Info-ZIP Unicode Path extra field (0x7075: version 1, CRC-32 of the raw name, UTF-8 name)
    as zipfile reads it, or None when there is none that applies."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, ln = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + ln]
        pos += 4 + ln
        if tag != 0x7075 or len(body) < 5:
            continue
        version, crc = struct.unpack_from("<BI", body)
        if version == 1 and crc == zlib.crc32(raw):
            try:
                return body[5:].decode("utf-8") or None
            except UnicodeDecodeError:
                return None
    return None


def _read_at(f: Source, offset: int, n: int) -> bytes:
    if offset < 0 or offset > 1 << 62:
        return b""
    if isinstance(f, bytes):
        return f[offset : offset + max(0, n)]
    f.seek(offset)
    return f.read(max(0, n))


def parse_zip(blob: Blob, ctx: ScanContext) -> ZipArchive | None:
    """Parse the archive and add its structural findings to ``ctx``; None when there is no central
    directory. An archive held in memory is read by slicing, others through one reader."""
    if blob.data is not None:
        return _parse_zip(blob.data, blob, ctx)
    with blob.open() as f:
        return _parse_zip(f, blob, ctx)


def _parse_zip(f: Source, blob: Blob, ctx: ScanContext) -> ZipArchive | None:
    size = blob.size or 0
    loc = blob.location
    tail_len = min(size, EOCD_WINDOW)
    tail = _read_at(f, size - tail_len, tail_len)
    idx = end_record(tail)
    if idx is None:
        idx = miniz_end_record(tail)
        if idx is None:
            return None
        ctx.add(
            rules.ZipHeaderMismatch,
            "an end-record signature in the final 21 bytes makes zipfile refuse the archive; torch's reader "
            "(miniz) passes over it and reads the earlier end record: analysed as torch reads it",
            loc,
            offset=size - tail_len + idx,
        )
    eocd_pos = size - tail_len + idx
    (_, disk, _, _, count, cd_size, cd_offset, comment_len) = struct.unpack_from("<4sHHHHIIH", tail, idx)
    eocd_end = eocd_pos + 22 + comment_len
    dir_end = eocd_pos
    if eocd_pos >= 20:
        loc64 = _read_at(f, eocd_pos - 20, 20)
        if loc64[:4] == _EOCD64_LOC_SIG:
            (rec_disk, rec_off, disks) = struct.unpack_from("<IQI", loc64, 4)
            if rec_disk != 0 or disks > 1:
                ctx.fail(loc, "multi-disk (split) zip64 archives are not supported")
            rec = _read_at(f, rec_off, 56)
            if rec[:4] != _EOCD64_SIG and eocd_pos >= 76:
                # bytes before the archive shift what the locator points to; zipfile reads the record right
                # before the locator whatever it says
                rec_off = eocd_pos - 76
                rec = _read_at(f, rec_off, 56)
            if rec[:4] == _EOCD64_SIG and len(rec) == 56:
                count, cd_size, cd_offset = struct.unpack_from("<QQQ", rec, 32)
                dir_end = rec_off
                if rec_off != eocd_pos - 20 - 56:
                    # Python's zipfile assumes the record sits right before the locator; miniz follows it
                    ctx.add(rules.ZipHeaderMismatch, "zip64 end record is not where strict readers look", loc)
            else:
                ctx.add(rules.ZipHeaderMismatch, "zip64 locator points to no zip64 record", loc)
    if count > ctx.limits.max_members:
        raise ResourceLimitExceeded("max_members", f"zip declares {count} members")
    concat = dir_end - cd_size - cd_offset
    if concat < 0 or cd_size > size:
        ctx.fail(loc, "zip central directory lies outside the file (truncated or corrupt)")
        return None
    cd = _read_at(f, cd_offset + concat, cd_size)
    arch = ZipArchive()
    _central_entries(cd, concat, cd_offset + concat, ctx, loc, arch, hidden=False)
    if concat > 0:
        _raw_offsets_view(f, cd_offset, cd_size, ctx, loc, arch)
    listed = sum(not e.hidden for e in arch.entries)
    if listed != count:
        ctx.add(
            rules.ZipHeaderMismatch,
            f"end record declares {count} members, central directory holds {listed}",
            loc,
            declared=count,
            found=listed,
        )
    if disk != 0:
        ctx.fail(loc, "multi-disk (split) zip archives are not supported")
    for e in arch.entries:
        _read_local(f, e, ctx, loc, size)
    _check_layout(f, arch, ctx, loc, size, cd_offset + concat, eocd_end)
    _check_names(arch, ctx, loc)
    return arch


def _raw_offsets_view(
    f: Source, cd_offset: int, cd_size: int, ctx: ScanContext, loc: Location, arch: ZipArchive
) -> None:
    """Python's zipfile adds the length of prepended bytes to every offset; torch's miniz reader does not, and
    reads the central directory (and local headers) at the offsets as written. When a central directory sits
    there too, torch loads other members than zipfile: they are reported and analysed as hidden members."""
    cd = _read_at(f, cd_offset, cd_size)
    if cd[:4] != _CD_SIG:
        return  # miniz finds nothing there and refuses the archive
    ctx.add(
        rules.ZipHeaderMismatch,
        "the end record's central directory offset leads readers that do not correct for prepended bytes "
        f"(torch) to another central directory at offset {cd_offset}",
        loc,
        offset=cd_offset,
    )
    _central_entries(cd, 0, cd_offset, ctx, loc, arch, hidden=True)


def _central_entries(
    cd: bytes, concat: int, cd_start: int, ctx: ScanContext, loc: Location, arch: ZipArchive, *, hidden: bool
) -> None:
    """Add the entries of the central directory ``cd`` (read at ``cd_start``) to ``arch``; ``concat`` is added
    to every local header offset."""
    pos = 0
    while pos + 46 <= len(cd):
        if cd[pos : pos + 4] != _CD_SIG:
            ctx.fail(loc, f"bad central directory entry at offset {cd_start + pos}")
            break
        (
            _,
            made_by,
            needed,
            flags,
            method,
            _,
            _,
            crc,
            csize,
            usize,
            n,
            m,
            k,
            _,
            _,
            ext_attr,
            hoff,
        ) = struct.unpack_from("<4sHHHHHHIIIHHHHHII", cd, pos)
        raw = cd[pos + 46 : pos + 46 + n]
        extra = cd[pos + 46 + n : pos + 46 + n + m]
        usize, csize, hoff = _zip64_extra(extra, usize, csize, hoff)
        unicode_name = _unicode_path(extra, raw)
        arch.entries.append(
            ZipEntry(
                _decode_name(raw, flags),
                raw,
                flags,
                method,
                crc,
                csize,
                usize,
                hoff + concat,
                ext_attr,
                made_by >> 8,
                hidden=hidden,
            )
        )
        if unicode_name is not None and unicode_name != arch.entries[-1].name:
            arch.entries[-1].unicode_name = unicode_name
        ctx.count_member()
        if needed & 0xFF > _MAX_EXTRACT_VERSION:
            ctx.add_severity(
                rules.ZipHeaderMismatch,
                Severity.MEDIUM,
                f"'version needed to extract' {needed & 0xFF} makes strict readers refuse the member",
                member_location(loc, arch.entries[-1].name),
                version=needed & 0xFF,
            )
        pos += 46 + n + m + k


def _read_local(f: Source, e: ZipEntry, ctx: ScanContext, loc: Location, size: int) -> None:
    hdr = _read_at(f, e.header_offset, 30)
    if len(hdr) < 30 or hdr[:4] != _LH_SIG:
        mloc = member_location(loc, e.name)
        ctx.add(rules.ZipHeaderMismatch, "central directory entry points to no local header", mloc)
        ctx.fail(mloc, "member has no local header (corrupt zip)")
        e.data_start = e.end = e.header_offset
        return
    (_, _, lflags, lmethod, _, _, lcrc, lcsize, lusize, n, m) = struct.unpack_from("<4sHHHHHIIIHH", hdr)
    lraw = _read_at(f, e.header_offset + 30, n + m + LEAD)
    lname_raw, lextra, e.lead = lraw[:n], lraw[n : n + m], lraw[n + m :]
    lusize, lcsize, _ = _zip64_extra(lextra, lusize, lcsize, 0)
    e.data_start = e.header_offset + 30 + n + m
    same = lname_raw == e.raw_name and not (lflags ^ e.flags) & _FLAG_UTF8
    e.local_name = e.name if same else _decode_name(lname_raw, lflags)
    e.local_method = lmethod
    problems: dict[str, Any] = {}
    if lname_raw != e.raw_name:
        problems["name"] = {"central": e.name, "local": e.local_name}
    if lmethod != e.method:
        problems["method"] = {"central": e.method, "local": lmethod}
    diff_flags = (lflags ^ e.flags) & (_FLAG_ENCRYPTED | _FLAG_DESCRIPTOR | _FLAG_UTF8 | _FLAG_STRONG)
    if diff_flags:
        problems["flags"] = {"central": e.flags, "local": lflags}
    if not lflags & _FLAG_DESCRIPTOR:
        e.local_csize, e.local_usize = lcsize, lusize
        if lcrc != e.crc:
            problems["crc"] = {"central": e.crc, "local": lcrc}
        if lcsize != e.csize:
            problems["compressed_size"] = {"central": e.csize, "local": lcsize}
        if lusize != e.usize:
            problems["size"] = {"central": e.usize, "local": lusize}
    if e.method == 0 and e.csize != e.usize:
        problems["stored_sizes"] = {"compressed": e.csize, "size": e.usize}
    if problems:
        ctx.add(
            rules.ZipHeaderMismatch,
            f"central directory and local header disagree on {', '.join(sorted(problems))}",
            member_location(loc, e.name),
            fields=problems,
        )
    if (e.flags | lflags) & _FLAG_REFUSED:
        ctx.add_severity(
            rules.ZipHeaderMismatch,
            Severity.MEDIUM,
            "flag bits (patched data / encrypted directory) make strict readers refuse the member",
            member_location(loc, e.name),
            flags=e.flags | lflags,
        )
    if (e.flags | lflags) & (_FLAG_ENCRYPTED | _FLAG_STRONG):
        ctx.add(
            rules.ZipHeaderMismatch,
            "encryption flag set: strict readers refuse the member, lenient ones read it; analysed as plain "
            "data",
            member_location(loc, e.name),
            flags=e.flags,
        )
    ways = e.interpretations()
    e.end = e.data_start + (ways[0][1] if len(ways) == 1 else max(ways[0][1], ways[1][1]))
    if e.end > size:
        ctx.fail(
            member_location(loc, e.name),
            f"member data runs past the end of the file ({e.end} > {size}): truncated",
        )
        e.end = size


def _check_layout(
    f: Source, arch: ZipArchive, ctx: ScanContext, loc: Location, size: int, cd_start: int, eocd_end: int
) -> None:
    spans = sorted(
        ((e.header_offset, e.end, e) for e in arch.entries if e.end >= 0), key=lambda s: (s[0], s[1])
    )
    cursor = 0
    first = spans[0][0] if spans else cd_start
    if first > 0:
        ctx.add(
            rules.ArchiveExtraData, f"{first} byte(s) before the first zip member", loc, start=0, end=first
        )
        arch.extra_ranges.append((0, first, "prepended"))
    cursor = first
    prev: ZipEntry | None = None
    for start, end, e in spans:
        if start < cursor and prev is not None:
            e.shared = prev.shared = True
            ctx.add(
                rules.ZipOverlap,
                f"member overlaps '{prev.name}'",
                member_location(loc, e.name),
                start=start,
                previous_end=cursor,
            )
        elif start > cursor:
            _gap(f, arch, ctx, loc, cursor, start, prev)
        cursor = max(cursor, end)
        prev = e
    if cd_start > cursor:
        _gap(f, arch, ctx, loc, cursor, cd_start, prev)
    if eocd_end < size:
        ctx.add(
            rules.ArchiveExtraData,
            f"{size - eocd_end} byte(s) after the end of the central directory",
            loc,
            start=eocd_end,
            end=size,
        )
        arch.extra_ranges.append((eocd_end, size, "appended"))


def _gap(
    f: Source,
    arch: ZipArchive,
    ctx: ScanContext,
    loc: Location,
    start: int,
    end: int,
    prev: ZipEntry | None,
) -> None:
    length = end - start
    if prev is not None and prev.flags & _FLAG_DESCRIPTOR and length in (12, 16, 20, 24):
        return  # the data descriptor that follows a streamed member
    data = _read_at(f, start, min(length, _GAP_SCAN_LIMIT))
    if prev is not None and prev.flags & _FLAG_DESCRIPTOR and data[:4] == _DD_SIG and length in (16, 24):
        return
    hidden_found = False
    pos = data.find(_LH_SIG)
    while pos >= 0 and pos + 30 <= len(data):
        _hidden_member(f, arch, ctx, loc, start + pos, end)
        hidden_found = True
        pos = data.find(_LH_SIG, pos + 4)
    if not hidden_found:
        ctx.add(
            rules.ArchiveHiddenData,
            f"{length} unaccounted byte(s) between zip members",
            loc,
            start=start,
            end=end,
        )
        arch.extra_ranges.append((start, end, "gap"))
    if length > _GAP_SCAN_LIMIT:
        ctx.fail(loc, f"gap of {length} bytes between zip members is larger than the scanned window")


def _hidden_member(
    f: Source, arch: ZipArchive, ctx: ScanContext, loc: Location, offset: int, end: int
) -> None:
    hdr = _read_at(f, offset, 30)
    (_, _, flags, method, _, _, crc, csize, usize, n, m) = struct.unpack_from("<4sHHHHHIIIHH", hdr)
    raw = _read_at(f, offset + 30, n + m)
    usize, csize, _ = _zip64_extra(raw[n:], usize, csize, 0)
    data_start = offset + 30 + n + m
    if flags & _FLAG_DESCRIPTOR or csize == 0 or data_start + csize > end:
        csize = max(0, end - data_start)
    name = _decode_name(raw[:n], flags)
    e = ZipEntry(name, raw[:n], flags, method, crc, csize, usize, offset, hidden=True)
    e.data_start, e.end, e.local_method = data_start, data_start + csize, method
    ctx.count_member()
    ctx.add(
        rules.ZipHiddenMember,
        "local header that the central directory does not list (hidden member)",
        member_location(loc, name),
        offset=offset,
    )
    arch.entries.append(e)


def _check_names(arch: ZipArchive, ctx: ScanContext, loc: Location) -> None:
    listed = [e.name for e in arch.entries if not e.hidden]
    counts = Counter(listed) if len(set(listed)) < len(listed) else {}
    for name, c in sorted(counts.items()):
        if c > 1:
            ctx.add(
                rules.ZipDuplicateMember,
                f"{c} members are named '{name}'",
                member_location(loc, name),
                count=c,
            )
    for e in arch.entries:
        for candidate in {e.name, e.local_name or e.name, e.unicode_name or e.name}:
            why = escapes_folder(candidate)
            if why:
                ctx.add(
                    rules.ArchivePathEscape,
                    f"member name {why}",
                    member_location(loc, candidate),
                    name=candidate,
                )
        kind = stat.S_IFMT(e.mode)
        if kind == stat.S_IFLNK:
            ctx.add(
                rules.ArchiveLink, "member is a symbolic link", member_location(loc, e.name), mode=oct(e.mode)
            )
        elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK):
            ctx.add(rules.ArchiveLink, "member is a device or special file", member_location(loc, e.name))


def _zip_lzma() -> Any:
    class _ZipLzma:
        """Zip's LZMA (method 14): 4-byte header with the properties' length, then raw LZMA1."""

        def __init__(self) -> None:
            self._d: Any = None
            self._pending = b""
            self.eof = False
            self.unused_data = b""
            self.unconsumed_tail = b""

        def decompress(self, data: bytes, max_length: int = -1) -> bytes:
            if self._d is None:
                self._pending += data
                if len(self._pending) < 4:
                    return b""
                (psize,) = struct.unpack_from("<H", self._pending, 2)
                if len(self._pending) < 4 + psize:
                    return b""
                import lzma

                filt = lzma._decode_filter_properties(  # type: ignore[attr-defined]
                    lzma.FILTER_LZMA1, self._pending[4 : 4 + psize]
                )
                self._d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
                data, self._pending = self._pending[4 + psize :], b""
            out: bytes = self._d.decompress(data, max_length)
            self.eof = self._d.eof
            self.unused_data = self._d.unused_data
            return out

    return _ZipLzma()


def member_reader(
    blob: Blob, e: ZipEntry, method: int, csize: int, ctx: ScanContext
) -> tuple[BinaryIO, Callable[[], int] | None] | None:
    """A fresh reader of a member's decompressed data (or None if the method is unsupported).

    The second value, when present, returns the CRC-32 of what was read so far (decompressed members).
    """
    raw = open_slice(blob.open(), e.data_start, csize, own=True)
    what = str(member_location(blob.location, e.name))  # the whole chain: a.zip!b.zip!c.bin
    if method == 0:
        return raw, None
    make: Callable[[], Any]
    if method == 8:

        def make() -> Any:
            return zlib.decompressobj(-15)

    elif method == 12:
        import bz2

        make = bz2.BZ2Decompressor
    elif method == 14:
        make = _zip_lzma
    else:
        raw.close()
        return None
    reader = DecompressReader(raw, make, ctx, what=what, nested=blob.inflated or e.shared)
    return cast(BinaryIO, reader), lambda: reader.crc


def crc_of(reader: BinaryIO, ctx: ScanContext) -> int:
    crc = 0
    while True:
        ctx.check_time()
        chunk = reader.read(1 << 20)
        if not chunk:
            return crc
        crc = zlib.crc32(chunk, crc)


def check_crc(blob: Blob, e: ZipEntry, ctx: ScanContext, mloc: Location, *, crcless: bool = False) -> None:
    """Compare the member's real CRC-32 with the central directory's (and the local header's)."""
    got = member_reader(blob, e, e.method, e.csize, ctx)
    if got is None:
        return
    reader, _ = got
    with reader:
        crc = crc_of(reader, ctx)
        err = getattr(reader, "error", None)
    if err:
        ctx.fail(mloc, err)
        return
    judge_crc(e, crc, ctx, mloc, crcless=crcless)


def written_without_crc(entries: list[ZipEntry]) -> bool:
    """Whether every listed member records a CRC-32 of 0, as ``torch.save`` writes an archive when
    ``torch.utils.serialization.config.save.compute_crc32`` is off (a documented speed option): the writer skipped
    the CRCs, it did not single out a member."""
    listed = [e for e in entries if not e.hidden and not e.is_dir]
    return bool(listed) and all(e.crc == 0 for e in listed)


def judge_crc(e: ZipEntry, crc: int, ctx: ScanContext, mloc: Location, *, crcless: bool = False) -> None:
    """Report a member whose data's CRC-32 differs from the one its central directory entry records.

    In an archive written without CRCs (:func:`written_without_crc`) the zero is a note (INFO): the member is
    analysed here all the same, and Python's zipfile refuses it as it refuses every member of that archive."""
    if not e.hidden and crc != e.crc and crcless and e.crc == 0:
        ctx.add_severity(
            rules.ZipCrcMismatch,
            Severity.INFO,
            "CRC-32 recorded as 0, as in every member of this archive (torch.save with compute_crc32 off): "
            "Python's zipfile refuses the member, torch loads it; analysed here",
            mloc,
            recorded=f"{e.crc:08x}",
            actual=f"{crc:08x}",
        )
    elif not e.hidden and crc != e.crc:
        ctx.add_severity(
            rules.ZipCrcMismatch,
            Severity.HIGH,
            "CRC-32 of the member data does not match the central directory",
            mloc,
            recorded=f"{e.crc:08x}",
            actual=f"{crc:08x}",
        )
