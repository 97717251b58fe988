"""Dispatch a blob to the analysis of its format (detected by content), recursively for containers."""

from __future__ import annotations

import dataclasses
import posixpath
import re
import struct
import zlib
from collections.abc import Callable
from typing import IO, Any, BinaryIO, Final, cast

from loopwarden.checks.interface import ResourceLimitExceeded
from loopwarden.checks.models import rules
from loopwarden.checks.models._base import (
    CHUNK,
    SPOOL_IN_MEMORY,
    Blob,
    DecompressReader,
    ScanContext,
    bytes_blob,
    member_location,
    open_slice,
    read_range,
    spool,
)
from loopwarden.checks.models.arrow import check_arrow_schema
from loopwarden.checks.models.arrow import footer_kind as arrow_footer
from loopwarden.checks.models.detect import (
    EOCD_WINDOW,
    PICKLE_OPCODES,
    Format,
    binary_kind,
    claimed_format,
    data_kind,
    end_record,
    is_pickle_start,
    may_be_tensor_proto,
    sniff,
    tarfile_header,
)
from loopwarden.domain import Finding, Location

__all__ = [
    "NOT_A_MODEL",
    "Recurse",
    "hdf5_behind",
    "scan_as",
    "scan_blob",
    "scan_zip_tail",
    "seekable_blob",
    "zip_tail",
]

Recurse = Callable[[Blob, ScanContext], None]
HEAD: Final = 4096
_GLOBAL_BOUNDS: Final = frozenset({"max_seconds", "max_decompressed_bytes", "max_members"})
"""Budgets of the whole target: hitting one stops the analysis; other bounds stop only the member."""
_TORCH_ROOT_PKL: Final = re.compile(r"^([^/]+)/data\.pkl$")
_TORCH_RECORD_PKL: Final = re.compile(r"^([^/]+)/(data|constants)\.pkl$")
"""A pickle of a torch record folder whose storages are the records ``<root>/<name>/<key>``: torch.save's
``data.pkl`` (``data/``), and TorchScript's ``constants.pkl`` (``constants/``), which torch.jit.load reads the same
way. (``traced_inputs.pkl`` is not read at load time; torch.jit.save writes its records empty.)"""
_PICKLE_NAMES: Final = re.compile(r"(\.pkl|\.pickle|\.debug_pkl|\.joblib|\.pt|\.pth|\.ckpt)$", re.IGNORECASE)
_PICKLE_ONLY_NAMES: Final = re.compile(r"(\.pkl|\.pickle|\.debug_pkl|\.joblib|\.pt|\.ckpt)$", re.IGNORECASE)
"""Names that claim a pickle and nothing else (``.pth`` is also a site-packages path file, which is text)."""
_PACKAGE_STORAGE: Final = re.compile(r"^[^/]+/\.data/[0-9]+\.storage$")
_TS_CONSTANTS: Final = re.compile(r"^[^/]+/constants\.pkl$")
_TS_CODE: Final = re.compile(r"^[^/]+/code/")
_IDENT_PATH: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_TORCHSCRIPT_GLOBALS: Final = ("__torch__.", "torch.jit._pickle.")
_MAX_TEXT_PARSE: Final = 64 << 20
_MAX_SHARED_READS: Final = 8
_MAX_YAML: Final = 3 << 20
"""YAML configs (Hydra, hparams, MLmodel) are kilobytes; PyYAML's nodes of a 3 MiB document take about 160 MB."""
"""Members of a zip whose data overlaps another's (LW-MODEL-023) analysed per distinct data span: 5,000 central
directory entries naming one 600 KB pickle (a 700 KB file) were each analysed, for more than ten minutes. Past
the bound the copies are not analysed and the file is unverified (max_shared_members)."""
_SMALL_MEMBER: Final = 1 << 20
_ONE_SHOT: Final = 1 << 18
"""Compressed members up to this size are inflated in one call: the streaming reader reads its input in
chunks of this size, so for these both make the same single call and reach the same result."""
_ONE_SHOT_LEAD: Final = 4096
"""Compressed bytes inflated to find the first bytes of a storage member (a deflate block header is shorter)."""
_INERT_MAX: Final = 4096
_IMPORTING: Final = re.compile(rb"[.ciPQ]")
"""In ASCII data, the only opcodes that import or complete a pickle: STOP, GLOBAL, INST, PERSID, BINPERSID."""
_QUIET_MAX: Final = 64 << 10
_QUIET_BUDGET: Final = 8 << 20
_QUIET_FORMATS: Final = frozenset({Format.PICKLE, Format.TEXT, Format.EMPTY, Format.NUMPY})
_quiet: dict[
    tuple[object, object], dict[tuple[bytes, str], tuple[str, tuple[Any, ...], tuple[Any, ...]]]
] = {}
"""Archive members held in memory (same bytes, same file name) whose analysis added nothing, per (allow-list,
limits): torch archives repeat "byteorder" and "version" in every file, and the checkpoints of one training run
repeat the same ``data.pkl``. Per process; at most _QUIET_BUDGET bytes of members."""
_quiet_bytes = 0
NOT_A_MODEL: Final = "not a model format loopwarden can analyse"
"""How the reason of a file of no model format ends (raw external data of an ONNX model is resolved by it)."""
_UNSUPPORTED: Final = {
    Format.SEVEN_ZIP: "7z archives are not supported",
    Format.RAR: "RAR archives are not supported",
    Format.TFLITE: "TensorFlow Lite flatbuffers are not supported",
    Format.UNKNOWN: f"unknown binary format: {NOT_A_MODEL}",
}


def scan_blob(blob: Blob, ctx: ScanContext) -> None:
    """Analyse ``blob`` by its content, adding findings and unverified reasons to ``ctx``."""
    ctx.check_time()
    if blob.depth > ctx.limits.max_depth:
        raise ResourceLimitExceeded("max_depth", f"containers nested deeper than {ctx.limits.max_depth}")
    key = _quiet_key(blob)
    # keyed by the allow-list and limits objects themselves (not their ids, which can be reused)
    seen = _quiet.get((ctx.allow, ctx.limits)) if key is not None else None
    if seen is not None and key in seen:
        fmt_name, storages, sparse = seen[key]
        ctx.formats.append(fmt_name)  # the same bytes: the same format, and nothing to report
        if storages:  # what a torch data.pkl declares, for its archive's record check (_storage_records)
            ctx.storages[(blob.location.path, blob.location.member)] = storages
        if sparse:  # and the sparse index tensors whose values its archive's records hold (_sparse_records)
            ctx.sparse[(blob.location.path, blob.location.member)] = sparse
        return
    fmt = sniff(blob.head(HEAD), blob.size, blob.open)
    ctx.formats.append(str(fmt))
    if key is None or fmt not in _QUIET_FORMATS:
        _dispatch(blob, ctx, fmt)
        return
    # failures, not len(unverified): a reason repeated by a second reading of the same bytes is stored once
    before = (len(ctx.findings), ctx.failures, len(ctx.references))
    _dispatch(blob, ctx, fmt)
    if before == (len(ctx.findings), ctx.failures, len(ctx.references)):
        global _quiet_bytes
        seen = _quiet.setdefault((ctx.allow, ctx.limits), {})
        if _quiet_bytes + len(key[0]) > _QUIET_BUDGET or len(seen) > 4096 or len(_quiet) > 16:
            _quiet.clear()
            _quiet_bytes = 0
            seen = _quiet.setdefault((ctx.allow, ctx.limits), {})
        where = (blob.location.path, blob.location.member)
        seen[key] = (str(fmt), ctx.storages.get(where, ()), ctx.sparse.get(where, ()))
        _quiet_bytes += len(key[0])


def _quiet_key(blob: Blob) -> tuple[bytes, str] | None:
    """The memo key of a member whose verdict depends only on its bytes and its file name, else None. (Its
    format is a function of its bytes, so only members of the formats in _QUIET_FORMATS are ever stored.)"""
    data = blob.data
    if blob.depth == 0 or data is None or len(data) > _QUIET_MAX:
        return None
    base = blob.name.rsplit("/", 1)[-1]
    if base.lower().endswith((".py", ".jinja", ".j2")):
        return None  # templates and TorchScript code are judged by where they sit in the archive
    return (data, base)


def _dispatch(blob: Blob, ctx: ScanContext, fmt: Format) -> None:
    claimed = claimed_format(blob.name)
    disguised = (
        claimed is not None and fmt in (Format.PICKLE, Format.TORCH_LEGACY, Format.ZIP) and claimed != fmt
    )
    # A text file named as text whose first character happens to be a pickle opcode ("torch==2.4" in a
    # requirements.txt): disguised only if the analysis finds a pickle in it rather than text.
    text_named = disguised and claimed is Format.TEXT and fmt is Format.PICKLE
    if disguised and not text_named:
        _disguised(blob, ctx, fmt, claimed)
    if (
        not blob.seekable
        and fmt not in (Format.ZIP, Format.EMPTY, Format.TAR, Format.HDF5)
        and blob.name.lower().endswith(_WHOLE_FILE_NAMES)
    ):
        blob = seekable_blob(blob, ctx)  # a large deflated member that h5py or zipfile open by its name
    # A file, and an archive member or decompressed stream once extracted (a .nemo or tar.gz is unpacked before
    # its files are loaded; Keras extracts a .keras archive's model.weights.h5 for h5py), is read from its end
    # by zipfile and at powers of two by HDF5, whatever its first bytes. Other members are read in place, as
    # what they start with: those not seekable (deflated, over 1 MiB) are not searched (docs/rules.md, limits).
    if fmt not in (Format.ZIP, Format.EMPTY, Format.TAR) and blob.seekable and _has_zip_tail(blob):
        # a file that is also a zip (bytes before it): zipfile-based loaders open the zip, torch reads the
        # head as a legacy pickle
        scan_zip_tail(blob, ctx, str(fmt))
    footer = arrow_footer(blob) if fmt is not Format.DATA else None
    if footer is None and fmt is Format.UNKNOWN:
        check_arrow_schema(blob, ctx)  # an Arrow IPC stream (a datasets cache file) opens with no magic
    if footer is not None:
        # pyarrow reads a Parquet or Arrow IPC file from its footer and never checks its first bytes: a file
        # that opens as an image (clean) or a model format is also a data file to pd.read_parquet
        ctx.add(
            rules.DisguisedFormat,
            f"the file is also a {footer[0]} file (its last bytes are a footer, which pyarrow reads whatever the "
            "first bytes are)",
            blob.location,
            content=footer[0],
            claimed=str(fmt),
        )
        check_arrow_schema(blob, ctx)
    if fmt is not Format.TAR and tarfile_header(blob.head(512)):
        ctx.add(
            rules.DisguisedFormat,
            "the file is also a tar archive (its first block is a valid tar header): tarfile, and torch.load's "
            "legacy tar path, read it as one",
            blob.location,
            content="tar",
            claimed=str(fmt),
        )
        scan_as(blob, ctx, Format.TAR)
    # (archives look for it themselves: a member's own HDF5 file may start at such an offset)
    h5_at = (
        _hdf5_superblock(blob) if fmt not in (Format.HDF5, Format.ZIP, Format.TAR) and blob.seekable else None
    )
    if h5_at is not None:
        if fmt is Format.UNKNOWN and not blob.head(min(h5_at, _USERBLOCK_MAX)).strip(b"\x00"):
            fmt = Format.HDF5  # an HDF5 file with a blank user block, as h5py writes one
            ctx.formats[-1] = str(fmt)
        else:
            hdf5_behind(blob, ctx, str(fmt), h5_at)
    if text_named:
        if not _pickle(blob, ctx):
            _disguised(blob, ctx, fmt, claimed)
        _tensor_in_text(blob, ctx)
        return
    handler = _HANDLERS.get(fmt)
    # _pickle answers True when the bytes were no pickle and were judged as text there (a YAML config starting
    # with "seed:" sniffs as opcodes): the config reading below would repeat every finding of that reading
    read_as_text = False
    if handler is not None:
        read_as_text = handler(blob, ctx) is True and handler is _pickle
        _tensor_in_text(blob, ctx)
    elif fmt is Format.UNKNOWN and _onnx_tensor(blob, ctx):
        ctx.formats[-1] = str(Format.ONNX)
    elif fmt in _UNSUPPORTED:
        # bytes of no format are no misreading of one (an archive format loopwarden cannot open is one)
        ctx.fail(blob.location, _unsupported(blob, fmt), misread=fmt is Format.UNKNOWN)
    if fmt not in (Format.TEXT, Format.EMPTY) and _config_named(blob.name) and not read_as_text:
        # loaders that find a config or template by its name read it as text whatever it starts with; Jinja
        # takes control characters as text and JSON whitespace includes a protobuf's first tag byte (0x0A), so a
        # protobuf (ONNX, TensorFlow) can be a valid model to its own parser and a template or config to them
        _text(blob, ctx)
    if fmt not in _READ_AS_PICKLE:
        first = blob.head(1)
        if (
            first
            and first[0] in _OPCODE_BYTES
            # an ONNX model whose first bytes sniff as a pickle had the full pickle analysis (onnx.scan_onnx)
            and not (
                fmt is Format.ONNX
                and sniff(blob.head(HEAD), blob.size) in (Format.PICKLE, Format.TORCH_LEGACY)
            )
        ):
            _loader_prefix(blob, ctx)


def _unsupported(blob: Blob, fmt: Format) -> str:
    """Why a blob of format ``fmt`` is not analysed; an unknown binary that is an executable, an image or a font
    known by its magic says so."""
    if fmt is Format.UNKNOWN:
        kind = binary_kind(blob.head(8))
        if kind is not None:
            return f"{kind}: {NOT_A_MODEL}"
    return _UNSUPPORTED[fmt]


_TEXT: Final = str(Format.TEXT)


def _tensor_in_text(blob: Blob, ctx: ScanContext) -> None:
    """An ONNX TensorProto that is all ASCII reads as text: ``onnx.load_tensor`` reads it all the same, and onnx
    releases before the location checks then read its external data wherever its locations lead. Text that may be
    one (:func:`~loopwarden.checks.models.detect.may_be_tensor_proto`) is also parsed as one, its locations checked.
    """
    if (
        ctx.formats
        and ctx.formats[-1] == _TEXT
        and blob.seekable
        and may_be_tensor_proto(blob.head(HEAD), complete=blob.size is not None and blob.size <= HEAD)
    ):
        _onnx_tensor(blob, ctx)


def _loader_prefix(blob: Blob, ctx: ScanContext) -> None:
    """What a pickle loader runs from the first byte of a file that is another format.

    ``pickle.load``, ``joblib.load``, ``numpy.load(allow_pickle=True)`` and ``torch.load``'s legacy path read any
    file that is not their own container as a pickle from byte 0 and stop at the first error. A polyglot (a GIF,
    tar or MessagePack file whose first bytes are also opcodes) runs whatever those opcodes reach before that
    error, so that much is analysed as a pickle (``prefix``: reading ends at the first error; a module no model
    environment has is not judged, but the reading goes on); where it fails is not reported, since for the
    format itself it is no fault. Every pickle up to that error is read, not a fixed number: a program that calls
    ``pickle.load`` in a loop on one file runs the sixth (or hundredth) as it runs the first; the opcode and time
    bounds end a reading that goes on too long (unverified, the bound named).
    """
    from loopwarden.checks.models._pickle import analyse

    with blob.open() as stream:
        res = analyse(stream, ctx, blob.location, joblib=False, resync=False, prefix=True)
    if res.findings:
        ctx.add(
            rules.DisguisedFormat,
            "content is also a pickle: a pickle loader runs its first bytes",
            blob.location,
            content="pickle",
            claimed=ctx.formats[-1] if ctx.formats else "",
        )
        ctx.findings.extend(res.findings)
    if res.unverified:
        ctx.fail(blob.location, f"pickle reading of the first bytes: {res.unverified}")


_READ_AS_PICKLE: Final = frozenset(
    {Format.PICKLE, Format.TORCH_LEGACY, Format.ZIP, Format.EMPTY, Format.NUMPY, Format.HDF5}
)
"""Formats not also run as a pickle from byte 0: pickles themselves, zips (every loader opens the archive), and
magics that are a certain error (NumPy's ``\\x93`` is STACK_GLOBAL on an empty stack; HDF5's ``\\x89H``
breaks at ``H``)."""
_OPCODE_BYTES: Final = frozenset(PICKLE_OPCODES | set(range(0x80, 0x99)))
"""Bytes a loader accepts as the first opcode of a stream."""


def _disguised(blob: Blob, ctx: ScanContext, fmt: Format, claimed: Format | None) -> None:
    ctx.add(
        rules.DisguisedFormat,
        f"content is {fmt} but the name claims {claimed}",
        blob.location,
        content=str(fmt),
        claimed=str(claimed),
    )


_USERBLOCK_MAX: Final = 1 << 16
_WHOLE_FILE_NAMES: Final = (".h5", ".hdf5", ".keras", ".skops", ".zip")
"""Names under which h5py (Keras' .h5 loader, a .keras archive's weights) or zipfile open a file from a
superblock after other bytes or an end record at its end: a member so named is spooled to be searched."""


def hdf5_behind(
    blob: Blob, ctx: ScanContext, content: str, at: int | None = None, members: frozenset[int] = frozenset()
) -> None:
    """Report and analyse an HDF5 file whose superblock follows ``content`` at a power-of-two offset (found here
    when ``at`` is None); an archive passes the offsets where its members' data starts, since a member that is an
    HDF5 file is analysed as one already."""
    if at is None:
        if not blob.seekable:
            return
        at = _hdf5_superblock(blob)
    if at is None or at in members:
        return
    ctx.add(
        rules.DisguisedFormat,
        f"an HDF5 file starts at offset {at}: h5py (Keras' .h5 loader) opens the file as HDF5",
        blob.location,
        content="hdf5",
        claimed=content,
        offset=at,
    )
    scan_as(blob, ctx, Format.HDF5)


def _hdf5_superblock(blob: Blob) -> int | None:
    """Where an HDF5 superblock follows other bytes: the HDF5 library looks for its signature at offset 0 and at
    every power of two from 512 below the file's size (a "user block" before it), so a PNG, safetensors or
    ``.npy`` file can carry an HDF5 file that ``h5py.File`` opens. At most one 8-byte read per power of two."""
    from loopwarden.checks.models.detect import HDF5_MAGIC

    size = blob.size or 0
    off = 512
    if off + 8 > size:
        return None
    if blob.data is not None:
        while off + 8 <= size:
            if blob.data[off : off + 8] == HDF5_MAGIC:
                return off
            off <<= 1
        return None
    with blob.open() as f:
        while off + 8 <= size:
            f.seek(off)
            if f.read(8) == HDF5_MAGIC:
                return off
            off <<= 1
    return None


def _has_zip_tail(blob: Blob) -> bool:
    return zip_tail(blob) is not None


def zip_tail(blob: Blob) -> int | None:
    """Where the central directory of a zip that ends ``blob`` starts (as ``zipfile`` finds it: the final 22 bytes
    as an end record without a comment, else the last end record in the final 64 KiB; a zip64 end record before a
    zip64 locator, where ``zipfile`` and miniz look, gives the directory's size), or None when there is none."""
    size = blob.size or 0
    if size < 22:
        return None
    tail = blob.tail(min(size, EOCD_WINDOW))
    idx = end_record(tail)
    if idx is None:
        return None
    eocd_pos = size - len(tail) + idx
    (cd_size,) = struct.unpack_from("<I", tail, idx + 12)
    starts: list[int] = [eocd_pos - cd_size] if cd_size else []
    if eocd_pos >= 20:
        loc64 = read_range(blob, eocd_pos - 20, 20)
        if loc64[:4] == b"PK\x06\x07":
            # zip64: the end record's fields are ignored for the zip64 record's (zipfile reads the record right
            # before the locator, miniz where the locator points, with an absolute directory offset)
            (rec_off,) = struct.unpack_from("<Q", loc64, 8)
            for rec_at in (eocd_pos - 76, rec_off):
                rec = read_range(blob, rec_at, 56) if 0 <= rec_at <= size - 56 else b""
                if rec[:4] == b"PK\x06\x06" and len(rec) == 56:
                    cd64, off64 = struct.unpack_from("<QQ", rec, 40)
                    if cd64:
                        starts += [rec_at - int(cd64), int(off64)]
    for start in starts:
        if 0 <= start <= size - 4 and read_range(blob, start, 4) == b"PK\x01\x02":
            return start
    return None


def scan_zip_tail(blob: Blob, ctx: ScanContext, content: str) -> None:
    """A zip that follows ``content`` (bytes before it): zipfile-based loaders open it, so it is analysed."""
    ctx.add(
        rules.ArchiveExtraData, f"a zip archive follows {content} content", blob.location, content=content
    )
    _zip(blob, ctx, behind=True)


def seekable_blob(blob: Blob, ctx: ScanContext, *, misread: bool = False) -> Blob:
    """The same bytes as a seekable blob (spooled to a temporary file if needed). ``misread``: a broken
    compressed stream is a misreading (:meth:`ScanContext.fail`), for a stream sniffed from the first bytes."""
    if blob.seekable:
        return blob
    with blob.open() as reader:
        tmp = spool(reader, ctx)
        err = getattr(reader, "error", None)
    if err:
        ctx.fail(blob.location, err, misread=misread)
    ctx.closers.append(tmp)
    size = tmp.seek(0, 2)
    tmp.seek(0)
    return Blob(
        blob.name,
        blob.location,
        lambda: open_slice(tmp, 0, size),  # type: ignore[arg-type]
        size,
        True,
        blob.depth,
        inflated=blob.inflated,
    )


# ---------------------------------------------------------------------------------------------------- pickles


def _pickle(
    blob: Blob,
    ctx: ScanContext,
    *,
    max_pickles: int | None = None,
    second_reading: bool = False,
    legacy: bool = False,
) -> bool:
    """Analyse a pickle; True when it turned out to be text that no pickle loader could run (judged as text).

    ``second_reading``: the bytes are already analysed as another format (an ONNX model whose first bytes are
    opcodes); if no pickle loader gets anywhere in them, there is nothing more to say.
    """
    from loopwarden.checks.models._pickle import analyse

    head = blob.head(2)
    if blob.size is not None and blob.size <= _INERT_MAX and not _PICKLE_NAMES.search(blob.name):
        data = blob.head(_INERT_MAX)
        if data.isascii() and not _IMPORTING.search(data) and _text_like(blob):
            # Short text such as a torch archive's "version" or "serialization_id": no opcode in it can import
            # (GLOBAL, INST, STACK_GLOBAL, EXT, PERSID), so nothing can be called from any offset, and with no
            # STOP no pickle in it completes: the analysis below would end at the same text verdict.
            ctx.formats[-1] = str(Format.TEXT)
            _text(blob, ctx)
            return True
    at_once = head[:1] != b"\x80" and not _PICKLE_ONLY_NAMES.search(blob.name) and _breaks_at_once(blob, ctx)
    if at_once and second_reading:
        # A loader fails on the first bytes before it could import anything: not a pickle
        ctx.formats.pop()
        return False
    if at_once and not _text_like(blob):
        # not a pickle either, and no format loopwarden knows (text is still searched for hidden pickles below:
        # a known module further on keeps it a pickle)
        _unknown(blob, ctx)
        return False
    with blob.open() as stream:
        res = analyse(stream, ctx, blob.location, max_pickles=max_pickles)
        err = getattr(stream, "error", None)
    if (
        legacy
        and max_pickles is not None
        and res.pickles >= max_pickles
        and res.consumed < (blob.size or 0)
        and not any(f.rule_id in _BROKEN_RULES for f in res.findings)  # (torch fails in a broken pickle)
    ):
        _after_legacy_pickles(blob, ctx, res.consumed)
    if res.storages and (legacy or _TORCH_RECORD_PKL.match(blob.name)):
        ctx.storages[(blob.location.path, blob.location.member)] = res.storages
    if res.sparse and (legacy or _TORCH_RECORD_PKL.match(blob.name)):
        ctx.sparse[(blob.location.path, blob.location.member)] = res.sparse
    if err:
        ctx.fail(blob.location, err)
    if res.unverified and (
        _broken_text(blob, ctx, head, res.callables)
        or (at_once and not any(_known_and_resolvable(c) for c in res.callables))
    ):
        # text not named as a pickle (a Python source, a .pth file, a word list) on which a loader fails at
        # once, and in which the search for hidden pickles found no name of a standard-library or known module
        # ("a.coords\na.index" in a source reads as GLOBAL oords.a.index)
        ctx.formats[-1] = str(Format.TEXT)
        _text(blob, ctx)
        return True
    if (
        res.unverified
        and not any(_IDENT_PATH.match(c) for c in res.callables)
        and head[:1] != b"\x80"
        and not _PICKLE_NAMES.search(blob.name)
        and _text_like(blob)
    ):
        # text that merely starts with an opcode character: a pickle loader fails before it reaches anything
        # it
        # could import (names with spaces or punctuation are not importable), so nothing of it can run
        ctx.formats[-1] = str(Format.TEXT)
        _text(blob, ctx)
        return True
    if (
        not at_once
        and head[:1] != b"\x80"
        and not _PICKLE_NAMES.search(blob.name)
        and _only_malformed(res.unverified)
        and not any(_known_and_resolvable(c) for c in res.callables)
        and _text_like(blob)
        and _reads_only_constants(blob, ctx)
    ):
        # text whose first line a loader completes as a constant: pyphen's hyph_it_IT.dic starts "UTF-8\n.",
        # SHORT_BINSTRING of the 84 bytes that follow, then STOP. A loader reading pickle after pickle from there
        # reaches nothing it could import before the bytes stop being a pickle, and the search for hidden
        # pickles found no name of a standard-library or known module that could resolve: nothing of it can run.
        ctx.formats[-1] = str(Format.TEXT)
        _text(blob, ctx)
        return True
    if res.unverified and head[:1] == b"c" and _hub_download_metadata(blob):
        # huggingface_hub's record of a file downloaded into a local folder: a commit hash starting with "c" is
        # GLOBAL of its other 39 hex digits and the etag, then the timestamp's digits end the reading. A loader
        # imports a module no environment has and stops; nothing is called (see _hub_download_metadata).
        ctx.formats[-1] = str(Format.TEXT)
        _text(blob, ctx)
        return True
    if (
        head[:1] == b"\x80"
        and res.unverified
        and not res.callables
        and not _PICKLE_NAMES.search(blob.name)
        and _only_malformed(res.unverified)
        and all(f.rule_id == rules.PickleMalformed.rule_id for f in res.findings)
        and _fails_after_proto(blob.head(3))
    ):
        # Raw data whose first value reads as PROTO (an int32 384, 640 or 896 is 80 01/02/03 00 ...): a pickle
        # loader stops at the byte after it, and reading on found no name anywhere. No format, not a broken pickle.
        _unknown(blob, ctx)
        return False
    ctx.findings.extend(res.findings)
    if res.unverified:
        ctx.fail(blob.location, f"pickle: {res.unverified}")
    if res.storage_infos:
        from loopwarden.checks.models.dcp import scan_storage_entries

        scan_storage_entries(blob, ctx, res.storage_infos, scan_blob)
    return False


_HUB_DOWNLOAD_METADATA: Final = re.compile(
    rb"c[0-9a-f]{39}\n(?:[0-9a-f]{40}|[0-9a-f]{64})\n[0-9]{1,12}(?:\.[0-9]{1,20})?\n"
)
"""A ``<file>.metadata`` that huggingface_hub writes under ``.cache/huggingface/download/`` of a folder downloaded
with ``local_dir`` (``hf download --local-dir``): the commit hash, the etag (a git blob's SHA-1 or an LFS file's
SHA-256) and ``time.time()``, one a line. Only those whose commit starts with "c" (GLOBAL) need it."""


def _hub_download_metadata(blob: Blob) -> bool:
    """Whether ``blob`` is exactly huggingface_hub's download metadata with a commit hash starting with "c".

    A pickle loader reads GLOBAL (module: the commit's other 39 hex digits, name: the etag), then the timestamp:
    its digits are POP, POP_MARK, DUP or no opcode, "." a STOP that returns the name unused, and reading on finds
    only digits. No opcode in it calls anything, and the module is one no environment has (the import fails).
    """
    if blob.size is None or blob.size > 160 or not blob.name.endswith(".metadata"):
        return False
    return _HUB_DOWNLOAD_METADATA.fullmatch(blob.head(160)) is not None


_BROKEN_RULES: Final = frozenset({rules.PickleMalformed.rule_id, rules.PickleTrailingData.rule_id})


def _after_legacy_pickles(blob: Blob, ctx: ScanContext, start: int) -> None:
    """What a loader reading pickle after pickle (``pickle.load`` in a loop) runs after the five pickles torch's
    legacy reader takes: torch reads the storages' bytes from there, such a loader reads on as pickles, up to the
    first error (a storage's element count, eight bytes that are seldom an opcode, ends it at once)."""
    from loopwarden.checks.models._pickle import analyse

    with open_slice(blob.open(), start, (blob.size or 0) - start, own=True) as stream:
        res = analyse(stream, ctx, blob.location, joblib=False, resync=False, prefix=True)
    if res.findings:
        ctx.add(
            rules.DisguisedFormat,
            f"the bytes after torch's five legacy pickles (from offset {start}) are pickles too: a loader reading "
            "pickle after pickle runs them",
            blob.location,
            content="pickle",
            claimed=str(Format.TORCH_LEGACY),
            offset=start,
        )
        ctx.findings.extend(res.findings)
    if res.unverified:
        ctx.fail(blob.location, f"pickle reading after the legacy pickles: {res.unverified}")


def _broken_text(blob: Blob, ctx: ScanContext, head: bytes, reached: tuple[str, ...]) -> bool:
    """A file named as text, that is text, whose first pickle breaks before it reaches a name that is importable
    and not allow-listed, and
    in which the search for hidden pickles found only names of modules that are neither standard library nor
    a known package ("torch\nsentencepiece" reads as h.sentencepiece, CIFAR's "cat\ndeer" as at.deer).

    A loader reads from the first byte, so nothing of such a file runs. A known module found further on
    (os.system after a broken start) still makes it a pickle: everything after an invalid opcode is analysed.
    """
    from loopwarden.checks.models._pickle import analyse

    if head[:1] == b"\x80" or claimed_format(blob.name) is not Format.TEXT or not _text_like(blob):
        return False
    if any(_known_and_resolvable(c) for c in reached):
        return False
    with blob.open() as stream:
        first = analyse(stream, ctx, blob.location, max_pickles=1, resync=False, prefix=True)
    # the first pickle breaks (none completed) and what a loader runs before that reaches nothing, or only
    # allow-listed names (a name whose module no model environment has is not judged)
    return first.pickles == 0 and not first.findings and first.unverified is None


_STARTUP_MODULES: Final = frozenset({"io", "os", "re"})
"""Standard-library modules the scanner has imported itself, whose attributes (what a loader's ``getattr`` finds
after importing them) are those of its own copy, save the functions of other platforms and versions and names a
module ``__getattr__`` makes (``_ELSEWHERE``). Word lists read as hidden GLOBALs into them ("cos\ncosa" is os.cosa;
"cio\ncioe" io.cioe)."""
_OS_ELSEWHERE: Final = frozenset(
    {
        # Windows only
        "add_dll_directory", "get_handle_inheritable", "listdrives", "listmounts", "listvolumes",
        "set_handle_inheritable", "startfile",
        # POSIX only (a scanner on Windows lacks them): processes, identities, terminals
        "chroot", "fork", "forkpty", "grantpt", "killpg", "login_tty", "openpty", "pidfd_open", "posix_openpt",
        "posix_spawn", "posix_spawnp", "ptsname", "register_at_fork", "setgid", "setns", "setregid", "setreuid",
        "setuid", "spawnlp", "spawnlpe", "spawnvp", "spawnvpe", "unlockpt", "unshare",
        # macOS and the BSDs (lchmod also Windows from 3.13): file flags and modes
        "chflags", "lchflags", "lchmod", "plock",
        # Windows' nt internals that os re-exports
        "_add_dll_directory", "_getfinalpathname", "_getfullpathname", "_getvolumepathname", "_path_normpath",
        "_path_splitroot", "_remove_dll_directory",
        # newer than some Pythons the scanner runs on (3.13, 3.14)
        "process_cpu_count", "readinto", "reload_environ", "timerfd_create", "timerfd_gettime",
        "timerfd_gettime_ns", "timerfd_settime", "timerfd_settime_ns",
    }
)  # fmt: skip
"""``os`` functions that exist on another platform or in another Python version than the scanner's may: always
taken as resolvable."""
_ELSEWHERE: Final = {
    "os": _OS_ELSEWHERE,
    # io's module __getattr__ (3.10, 3.11) returns builtins.open for OpenWrapper, and stores it in the namespace only
    # once asked: absent from vars(io) in a fresh process, so a hidden io.OpenWrapper (open) was taken as text
    "io": frozenset({"OpenWrapper"}),
    # removed in 3.13: a scanner on a newer Python lacks them
    "re": frozenset({"T", "TEMPLATE", "template"}),
}
"""Names of the ``_STARTUP_MODULES`` that a loader's ``getattr`` may resolve though the scanner's own copy of the
module lacks them: another platform's or version's functions, and names a module ``__getattr__`` makes."""


def _known_and_resolvable(name: str) -> bool:
    """Whether a name reached in text is of a standard-library or known module (see ``known_top_module``) and a
    loader's ``find_class`` could return something for it.

    A pickle loader imports the module and then looks the attribute up; a name that is not an attribute of
    one of the ``_STARTUP_MODULES`` (os.cosa, os.y1d4, os..cost2) raises there, so nothing of it can be called.
    Any other module, and any name that may exist elsewhere, is taken as resolvable (fail closed)."""
    import sys

    from loopwarden.checks.models.allowlist import known_top_module

    if not known_top_module(name):
        return False
    top, _, rest = name.partition(".")
    module = sys.modules.get(top) if top in _STARTUP_MODULES else None
    if module is None or not rest:
        return True
    attr = rest.split(".", 1)[0]
    # the module's own namespace, read without calling anything (no module __getattr__ runs: what one makes is
    # listed in _ELSEWHERE)
    return attr in vars(module) or attr in _ELSEWHERE.get(top, frozenset())


def _fails_after_proto(head: bytes) -> bool:
    """Whether a pickle loader stops within PROTO itself: a protocol it does not know, or no opcode after it."""
    return len(head) >= 2 and (head[1] > 5 or len(head) < 3 or head[2] not in _OPCODE_BYTES)


def _only_malformed(unverified: str | None) -> bool:
    """Whether an analysis ended without a bound: nothing unverified, or only the stream breaking."""
    return unverified is None or all(
        part.startswith("malformed pickle at offset") for part in unverified.split("; ")
    )


def _reads_only_constants(blob: Blob, ctx: ScanContext) -> bool:
    """Whether a loader reading pickle after pickle from byte 0 (``pickle.load`` in a loop; no search for hidden
    pickles) completes at least one and reaches no name it could import (nor one computed at load time) before
    the bytes end or stop being a pickle. Names are judged strictly, as in :func:`_breaks_at_once`."""
    from loopwarden.checks.models._pickle import analyse

    with blob.open() as stream:
        res = analyse(stream, ctx, blob.location, joblib=False, resync=False)
    if res.pickles == 0 or not _only_malformed(res.unverified):
        return False
    if any("?" in c or _IDENT_PATH.match(c) for c in res.callables):
        return False
    stops = (rules.PickleMalformed.rule_id, rules.PickleTrailingData.rule_id)
    if not any(f.rule_id in stops for f in res.findings):
        return False  # pickles to the last byte: a pickle of constants (protocol 0 is text too), not text
    return all(f.rule_id in stops or f.evidence.get("subject") in res.callables for f in res.findings)


def _breaks_at_once(blob: Blob, ctx: ScanContext) -> bool:
    """Whether a pickle loader reading from byte 0 fails in its first pickle before it reaches a name it could
    import (``mport numpy as np`` from a Python source's INST is none: names with spaces or punctuation are not
    importable; a name computed at load time might be). Names are judged strictly here, known modules or not:
    the file has no other format that explains its first bytes."""
    from loopwarden.checks.models._pickle import analyse

    with blob.open() as stream:
        # a stock loader stops at an EXT code too: the copyreg extension registry is empty unless a program fills it
        res = analyse(stream, ctx, blob.location, max_pickles=1, joblib=False, resync=False, ext_stops=True)
    if res.unverified is None or any(
        not part.startswith("malformed pickle at offset") for part in res.unverified.split("; ")
    ):
        return False  # a pickle completed, or a bound was reached: the full analysis decides
    if any("?" in c or _IDENT_PATH.match(c) for c in res.callables):
        return False
    return all(
        f.rule_id == rules.PickleMalformed.rule_id or f.evidence.get("subject") in res.callables
        for f in res.findings
    )


def _onnx_tensor(blob: Blob, ctx: ScanContext) -> bool:
    """Whether bytes of no known format are a serialized ONNX TensorProto (see ``onnx.scan_tensor_file``), whose
    external data locations are then checked; most other binaries fail its parse at their first bytes."""
    from loopwarden.checks.models.onnx import scan_tensor_file

    return scan_tensor_file(blob, ctx)


def _unknown(blob: Blob, ctx: ScanContext) -> None:
    if _onnx_tensor(blob, ctx):
        # a TensorProto whose first tag byte is an opcode (its name, field 8, is 'B'), which a loader rejects
        ctx.formats[-1] = str(Format.ONNX)
        return
    ctx.formats[-1] = str(Format.UNKNOWN)
    # a pickle loader fails on the first bytes before it could import anything (_breaks_at_once): no format
    ctx.fail(blob.location, _unsupported(blob, Format.UNKNOWN), misread=True)


def _torch_legacy(blob: Blob, ctx: ScanContext) -> None:
    """torch's legacy (pre-1.6) file: magic number, protocol version, sys_info, the main pickle, the list of
    storage keys, then each listed storage's bytes (an int64 element count, then the elements). The sparse index
    tensors the main pickle declares are checked against the bytes torch fills their storage with."""
    where = (blob.location.path, blob.location.member)
    _pickle(blob, ctx, max_pickles=5, legacy=True)
    storages = ctx.storages.pop(where, ())
    sparse = ctx.sparse.pop(where, ())
    if storages:
        _legacy_storages(blob, ctx, storages, sparse)


_LEGACY_KEY_OPS: Final = frozenset(
    {
        "PROTO", "FRAME", "EMPTY_LIST", "MARK", "APPEND", "APPENDS", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE",
        "GET", "BINGET", "LONG_BINGET", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "STRING",
        "BINSTRING", "SHORT_BINSTRING", "LIST", "STOP",
    }
)  # fmt: skip
"""Opcodes of the storage-key list a legacy torch file ends its pickles with (a list of strings)."""


def _legacy_keys(f: BinaryIO, ctx: ScanContext) -> list[str] | None:
    """The storage-key list (the fifth pickle) as a loader reads it, from the stream positioned at its start; None
    when it is anything but a plain list of strings."""
    import pickletools

    stack: list[Any] = []
    memo: dict[Any, Any] = {}
    try:
        for n, (op, arg, _pos) in enumerate(pickletools.genops(f)):
            if n % 4096 == 0:
                ctx.check_time()
            name = op.name
            if name not in _LEGACY_KEY_OPS:
                return None
            if name == "EMPTY_LIST":
                stack.append([])
            elif name == "MARK":
                stack.append(_MARK)
            elif name in ("APPENDS", "LIST"):
                at = len(stack) - 1 - stack[::-1].index(_MARK)
                items = stack[at + 1 :]
                del stack[at:]
                if name == "LIST":
                    stack.append(items)
                elif not stack or type(stack[-1]) is not list:
                    return None
                else:
                    stack[-1].extend(items)
            elif name == "APPEND":
                item = stack.pop()
                if not stack or type(stack[-1]) is not list:
                    return None
                stack[-1].append(item)
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
                          "SHORT_BINSTRING"):  # fmt: skip
                stack.append(arg)
            elif name == "STOP":
                keys = stack[-1] if len(stack) == 1 else None
                if type(keys) is not list or not all(type(k) is str for k in keys):
                    return None
                return keys
    except (ValueError, KeyError, IndexError, EOFError, struct.error, UnicodeDecodeError, MemoryError):
        return None
    return None


_MARK: Final = object()


def _legacy_storages(
    blob: Blob,
    ctx: ScanContext,
    storages: tuple[tuple[str, int, int | None], ...],
    sparse: tuple[tuple[Any, ...], ...],
) -> None:
    """Walk the storages a legacy file lists after its pickles, in the order torch reads them (each listed key's
    storage is filled from the next ``8 + numel * itemsize`` bytes; a key listed twice is filled twice, the last
    bytes win), and check each sparse index tensor's values in the bytes its storage ends up with.

    torch allocates every storage the main pickle names uninitialized (``UntypedStorage(nbytes)``) and fills only
    the listed ones: a storage left out of the list gives tensors whose elements are whatever the loading
    process's heap held (freed strings, earlier files, keys), which a pipeline then computes with or saves again.
    torch.save lists every storage, so one never filled is reported."""
    import pickletools

    declared: dict[str, tuple[int, int | None]] = {}
    for key, numel, itemsize in storages:
        declared.setdefault(key, (numel, itemsize))  # torch's legacy loader keeps a key's first declaration
    wanted = {entry[0] for entry in sparse}
    found: dict[str, tuple[int, int]] = {}  # key -> (data start, bytes)
    size = blob.size or 0
    why = None
    complete = False
    with blob.open() as f:
        try:
            for _ in range(4):  # magic number, protocol version, sys_info, the main pickle
                for n, _op in enumerate(pickletools.genops(f)):
                    if n % 4096 == 0:
                        ctx.check_time()
        except (ValueError, EOFError, struct.error, UnicodeDecodeError, MemoryError):
            return  # torch fails in the pickles before it fills any storage
        keys = _legacy_keys(f, ctx)
        if keys is None:
            why = "its storage-key list is not a plain list of strings"
        else:
            pos = f.tell()
            complete = True
            for key in keys:
                ctx.check_time()
                numel, itemsize = declared.get(key, (0, None))
                if key not in declared:
                    complete = False
                    break  # torch fails: a key no storage has
                if itemsize is None:
                    why = f"storage {key[:100]!r} has an element size loopwarden does not know"
                    complete = False
                    break
                f.seek(pos)
                head = f.read(8)
                if (
                    len(head) < 8
                    or struct.unpack("<q", head)[0] != numel
                    or pos + 8 + numel * itemsize > size
                ):
                    complete = False
                    break  # torch fails: a wrong element count, or the file ends inside the storage
                found[key] = (pos + 8, numel * itemsize)
                pos += 8 + numel * itemsize
        loc = blob.location
        if why is not None:
            ctx.fail(loc, f"storages not checked for uninitialized memory or sparse indices: {why}")
            return
        if complete:
            _legacy_unfilled(declared, found, wanted, ctx, loc)
        for entry in sparse:
            key, itemsize = entry[0], entry[6]
            if key not in found and complete:
                # torch allocates each storage uninitialized and fills only the listed ones: indices left as
                # whatever the memory held are as unchecked as written ones
                ctx.add(
                    rules.TensorGeometry,
                    f"sparse index storage {key[:100]!r} is never filled from the file (not in its storage-key "
                    "list): torch.load leaves it as uninitialized memory, and the indices are then unchecked",
                    loc,
                    key=key[:100],
                )
                continue
            if key not in found or itemsize not in (4, 8):
                continue  # torch fails before the load ends, or the storage holds no indices
            start, length = found[key]
            if length > _SPARSE_RECORD_MAX:
                ctx.fail(loc, f"sparse index storage {key[:100]!r} is too large to check ({length} bytes)")
                continue
            f.seek(start)
            _sparse_values(f.read(length), entry, ctx, loc)


def _legacy_unfilled(
    declared: dict[str, tuple[int, int | None]],
    found: dict[str, tuple[int, int]],
    sparse_keys: set[str],
    ctx: ScanContext,
    loc: Location,
) -> None:
    """Report the dense storages of a legacy file that torch allocates but never fills (sparse index storages are
    reported with their tensors)."""
    unfilled = [
        k for k, (numel, _) in declared.items() if numel > 0 and k not in found and k not in sparse_keys
    ]
    if unfilled:
        ctx.add(
            rules.TensorGeometry,
            f"{len(unfilled)} storage(s) ({', '.join(repr(k[:100]) for k in unfilled[:5])}) are never filled from "
            "the file (not in its storage-key list): torch.load allocates them uninitialized, so their tensors "
            "hold whatever the loading process's memory held",
            loc,
            keys=", ".join(k[:100] for k in unfilled[:20]),
        )


def _text_like(blob: Blob) -> bool:
    head = blob.head(HEAD)
    return sniff(b"#" + head, None) is Format.TEXT


# ------------------------------------------------------------------------------------------------------- text


def _config_named(name: str) -> bool:
    """Whether a loader reads a file of this name as a config or template (see :func:`_text`)."""
    lower = name.lower()
    return (
        lower.endswith((".jinja", ".j2", ".jinja2", ".json", ".yaml", ".yml", ".template", ".tmpl"))
        or lower.rsplit("/", 1)[-1] == "mlmodel"
    )


def _custom_generate(blob: Blob) -> bool:
    """Whether the file is ``custom_generate/generate.py`` of a model folder (a file's name is its base name; an
    archive member's is its path in the archive)."""
    where = blob.location.member if blob.location.member else str(blob.location.path)
    return f"/{where}".replace("\\", "/").lower().endswith("/custom_generate/generate.py")


_SERVED_DEPTH: Final = 8


def _served_path(blob: Blob) -> str | None:
    """The path of a ``.py`` file inside the TorchServe model folder it belongs to (a folder with a
    ``MAR-INF/MANIFEST.json``: an extracted archive or one made with ``--archive-format no-archive``, which TorchServe
    serves as it is), or None. Archive members are judged with their archive (see ``check_torchserve_archive``)."""
    import os.path

    if blob.location.member:
        return None
    path = os.path.abspath(str(blob.location.path))
    folder = os.path.dirname(path)
    for _ in range(_SERVED_DEPTH):
        try:
            if os.path.isfile(os.path.join(folder, "MAR-INF", "MANIFEST.json")):
                rel = os.path.relpath(path, folder).replace(os.sep, "/")
                return None if rel.startswith("MAR-INF/") else rel
        except OSError:
            return None
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    return None


def _loading_script(blob: Blob) -> bool:
    """Whether a ``.py`` file is the loading script of the folder it sits in: ``datasets.load_dataset(folder)``
    (before datasets 4.0) and ``evaluate.load(folder)`` import ``<folder>/<name of folder>.py`` and run it, as
    ``load_dataset("org/name")`` runs ``name.py`` of that Hub repository (its cache snapshot is
    ``datasets--org--name/snapshots/<revision>/name.py``). Compared without case: a case-insensitive file system
    finds ``Name.py`` for the folder ``name``. An archive member at the archive's root is judged against the
    archive's name without its extensions (``mydata.tar.gz`` extracts to ``mydata/``)."""
    import os.path

    if blob.location.member:
        parts = blob.location.member.replace("\\", "/").split("/")
        if len(parts) == 1:
            parts = [os.path.basename(str(blob.location.path)).split(".", 1)[0], parts[0]]
    else:
        parts = os.path.abspath(str(blob.location.path)).replace("\\", "/").split("/")
    parts = [p for p in parts if p not in ("", ".")]
    if len(parts) < 2:
        return False
    stem = parts[-1][: -len(".py")].lower()
    if stem == parts[-2].lower():
        return True
    # a Hub cache snapshot: datasets--<org>--<name>/snapshots/<revision>/<name>.py
    return (
        len(parts) >= 4
        and parts[-3] == "snapshots"
        and parts[-4].lower().startswith("datasets--")
        and parts[-4].lower().rsplit("--", 1)[-1] == stem
    )


def _tf_text(blob: Blob, ctx: ScanContext) -> None:
    """A TensorFlow graph in protobuf text format (``saved_model.pbtxt`` is loaded like ``saved_model.pb``)."""
    from loopwarden.checks.models.tf_text import looks_text_proto

    if not looks_text_proto(blob.head(4096)):
        return
    from loopwarden.checks.models.tensorflow_ import scan_text_graph

    if blob.size is not None and blob.size > _MAX_TEXT_PARSE:
        ctx.fail(blob.location, f"text of {blob.size} bytes is larger than the {_MAX_TEXT_PARSE}-byte bound")
        return
    with blob.open() as f:
        data = f.read(_MAX_TEXT_PARSE + 1)
    if len(data) > _MAX_TEXT_PARSE:
        ctx.fail(blob.location, f"text is larger than the {_MAX_TEXT_PARSE}-byte bound")
        return
    scan_text_graph(data, blob, ctx)


_STATE_FILES: Final = frozenset({"checkpoint", "latest", "latest_universal"})
"""Text files that name the checkpoint a loader opens: TensorFlow's state file, DeepSpeed's tag files."""


def _state_file(blob: Blob, ctx: ScanContext, base: str) -> None:
    """A TensorFlow ``checkpoint`` state file or a DeepSpeed ``latest`` tag file (see ``configs``)."""
    from loopwarden.checks.models.configs import check_deepspeed_latest, check_tf_checkpoint_state

    with blob.open() as f:
        data = f.read(_MAX_TEXT_PARSE + 1)
    if len(data) > _MAX_TEXT_PARSE:
        ctx.fail(blob.location, f"text is larger than the {_MAX_TEXT_PARSE}-byte bound")
        return
    if base == "checkpoint":
        check_tf_checkpoint_state(data, ctx, blob.location)
    else:
        check_deepspeed_latest(data, ctx, blob.location, base)


def _text(blob: Blob, ctx: ScanContext) -> None:
    """Text is not executed by model loaders, except configs and templates that are analysed here."""
    from loopwarden.checks.models.keras import json_object_start
    from loopwarden.checks.models.tokenizer_files import check_tiktoken, looks_tiktoken

    lower = blob.name.lower()
    _tf_text(blob, ctx)
    base = lower.replace("\\", "/").rsplit("/", 1)[-1]
    if base in _STATE_FILES:
        _state_file(blob, ctx, base)
    from loopwarden.checks.models.xmlfiles import check_xml

    check_xml(blob, ctx)  # PMML, OpenVINO IR and other XML: external entities, DTDs, XIncludes
    if lower.endswith((".tiktoken", ".model")) and (
        lower.endswith(".tiktoken") or looks_tiktoken(blob.head(256))
    ):
        # tiktoken rank files, and a tokenizer.model in that format (transformers' tiktoken conversion)
        check_tiktoken(blob, ctx)
        return
    # JSON as its loaders decode it: after a BOM and any amount of whitespace, in UTF-8, -16 or -32
    # sentence-transformers' modules.json and ESPnet's model.json ([idim, odim, args]) are JSON arrays
    opens = "{[" if lower.endswith("modules.json") or lower.rsplit("/", 1)[-1] == "model.json" else "{"
    yaml_named = lower.endswith((".yaml", ".yml")) or lower.rsplit("/", 1)[-1] == "mlmodel"
    array = False
    if not (
        yaml_named
        or lower.endswith((".jinja", ".j2", ".jinja2", ".template", ".tmpl", ".py"))
        or json_object_start(blob, opens)
    ):
        # a .json array (a list of prompts and their templates) is read for templates only, within the bound: no
        # loader reads one as a config, and data files in that shape are often larger
        array = lower.endswith(".json") and json_object_start(blob, "[")
        if not array:
            return
    if blob.size is not None and blob.size > _MAX_TEXT_PARSE:
        # a config or template padded past the bound would otherwise go unread: fail closed
        if not array:
            ctx.fail(
                blob.location, f"text of {blob.size} bytes is larger than the {_MAX_TEXT_PARSE}-byte bound"
            )
        return
    with blob.open() as f:
        # a read of the known size: a buffer of the bound, shrunk afterwards, would double the peak
        data = f.read((_MAX_TEXT_PARSE if blob.size is None else blob.size) + 1)
    if len(data) > _MAX_TEXT_PARSE:
        if not array:
            ctx.fail(blob.location, f"text is larger than the {_MAX_TEXT_PARSE}-byte bound")
        return
    if yaml_named:
        # Hydra configs (a .nemo archive's model_config.yaml), hparams files and MLflow's MLmodel name code their
        # loaders run
        from loopwarden.checks.models.configs import check_yaml_document

        if len(data) > _MAX_YAML:
            # composed YAML nodes take about 45 times the text: a larger config is not composed (fail closed)
            ctx.fail(
                blob.location, f"YAML config of {len(data)} bytes is larger than the {_MAX_YAML}-byte bound"
            )
            return

        check_yaml_document(data, ctx, blob.location, blob.name)
        return
    if not lower.endswith((".jinja", ".j2", ".jinja2", ".template", ".tmpl", ".py")):
        # JSON: the bytes are parsed (decoding a large vocabulary's text here would double the peak)
        _json_document(data, ctx, blob, array)
        return
    text = data.decode("utf-8-sig", "replace")
    if lower.endswith((".jinja", ".j2", ".jinja2")):
        from loopwarden.checks.models.chat_template import check_template

        check_template(text, ctx, blob.location, standalone=True)
        return
    if lower.endswith((".template", ".tmpl")):
        # not a name model loaders read, but applications render such files: judged when they hold Jinja markup
        from loopwarden.checks.models.chat_template import check_embedded_template

        check_embedded_template(text, ctx, blob.location, key=blob.name.rsplit("/", 1)[-1])
        return
    if lower.endswith(".py"):
        if "/code/" in f"/{blob.name}" or blob.name.startswith("code/"):
            from loopwarden.checks.models.torch import check_torchscript_code

            check_torchscript_code(text, ctx, blob.location)
        elif lower.endswith("generate.py") and _custom_generate(blob):
            from loopwarden.checks.models.configs import check_custom_generate

            check_custom_generate(ctx, blob.location)
        elif _loading_script(blob):
            from loopwarden.checks.models.configs import check_loading_script

            check_loading_script(ctx, blob.location)
        else:
            rel = _served_path(blob)
            if rel is not None:
                from loopwarden.checks.models.torch import served_source

                served_source(blob, rel, ctx, blob.location)


def _json_document(data: bytes, ctx: ScanContext, blob: Blob, array: bool) -> None:
    from loopwarden.checks.models.keras import check_json_document

    if not array:
        check_json_document(data, ctx, blob.location, blob.name)
        return
    try:
        check_json_document(data, ctx, blob.location, blob.name)
    except ResourceLimitExceeded as exc:
        if exc.bound != "max_large_json_objects":
            raise
        # a data file past the bound of objects to build is skipped as one past the size bound: no loader reads
        # a JSON array as a config


# ---------------------------------------------------------------------------------------------- compression


def _decompressed(
    blob: Blob, ctx: ScanContext, make: Callable[[], Any], what: str, skip: int = 0, skip_zeros: bool = False
) -> None:
    def reader(piece: int) -> DecompressReader:
        raw = blob.open()
        if skip:
            raw.read(skip)
        return DecompressReader(
            raw,
            make,
            ctx,
            what=what,
            multistream=True,
            skip_zeros=skip_zeros,
            nested=blob.inflated,
            piece=piece,
        )

    name = blob.name.rsplit(".", 1)[0] if "." in blob.name else blob.name
    child = Blob(
        name,
        blob.location,
        lambda: cast(BinaryIO, reader(CHUNK // 4)),
        None,
        False,
        blob.depth + 1,
        inflated=True,
    )
    # A stream that breaks off or is corrupt is a misreading of its header (raw tensor bytes begin like a zlib or
    # gzip header about once in a thousand files): gzip, zlib, bz2, lzma and zstd readers raise there, and what a
    # loader reads before that (the output that did decompress) is scanned below with its own reasons and
    # findings. A bound hit while decompressing raises ResourceLimitExceeded, which is never a misreading.
    with child.open() as first:
        tmp = spool(first, ctx)
        err = getattr(first, "error", None)
        produced: int = getattr(first, "produced", 0)
    if err:
        # An error loses the output of the decompressor call that raised it, and this reading hands it large
        # pieces: Python's gzip module checks the CRC only after returning all the data (a pickle whose gzip CRC is
        # wrong is loaded by gzip.open + pickle.load), and a reader handing it smaller pieces gets output this
        # reading lost. The stream is decompressed again one compressed byte at a time, which recovers everything
        # any streaming reader gets before the error; past _REPLAY_MAX compressed bytes it is a firm reason.
        # The replay yields the same bytes again (and those the first reading lost): each output byte is counted
        # once against max_decompressed_bytes, so the first reading's count is handed back while the replay
        # counts its own (its ratio and the budget still bound it), and what the first reading decompressed past
        # the replay's bound is counted again after it.
        tmp.close()
        ctx.decompressed -= produced
        tmp, exact, again = _replayed(lambda: reader(1), ctx)
        if again < produced:
            ctx.count_decompressed(produced - again)
        ctx.fail(blob.location, err, misread=exact)
    ctx.closers.append(tmp)
    size = tmp.seek(0, 2)
    tmp.seek(0)
    spooled = cast(BinaryIO, tmp)
    scan_blob(
        Blob(
            name,
            blob.location,
            lambda: open_slice(spooled, 0, size),
            size,
            True,
            blob.depth + 1,
            inflated=True,
        ),
        ctx,
    )


_REPLAY_MAX: Final = 256 << 10
"""Compressed bytes up to which a broken stream is decompressed again byte by byte (see ``_decompressed``)."""


def _replayed(make_reader: Callable[[], DecompressReader], ctx: ScanContext) -> tuple[IO[bytes], bool, int]:
    """Spool what ``make_reader()`` (one compressed byte per call) yields up to its error; ``exact``: the error
    was reached within :data:`_REPLAY_MAX` compressed bytes (else what follows is unread, a firm reason); and how
    many bytes it decompressed."""
    import tempfile

    tmp = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - returned to the caller
    try:
        with make_reader() as r:
            while True:
                ctx.check_time()
                chunk = r.read(1 << 16)
                if not chunk:
                    exact = r.error is not None
                    break
                tmp.write(chunk)
                if r.taken > _REPLAY_MAX:
                    exact = False
                    break
            again = r.produced
    except BaseException:
        tmp.close()
        raise
    tmp.seek(0)
    return tmp, exact, again


def _gzip(blob: Blob, ctx: ScanContext) -> None:
    _decompressed(blob, ctx, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), "gzip", skip_zeros=True)


def _zlib(blob: Blob, ctx: ScanContext) -> None:
    _decompressed(blob, ctx, zlib.decompressobj, "zlib")


def _joblib_zlib(blob: Blob, ctx: ScanContext) -> None:
    # joblib's old format: b"ZF" + the decompressed length in hex, padded to 19 bytes, then a zlib stream
    _decompressed(blob, ctx, zlib.decompressobj, "joblib zlib", skip=21)


def _bz2(blob: Blob, ctx: ScanContext) -> None:
    import bz2

    _decompressed(blob, ctx, bz2.BZ2Decompressor, "bzip2")


class _Zstd:
    """zstandard's decompressor in the shape :class:`DecompressReader` drives (zlib's ``decompressobj``). zstd
    has no output bound per call, so input goes in 1 KiB at a time (at most ~32 MiB of output each, RLE
    blocks) until ``max_length`` is reached; the rest is handed back as ``unconsumed_tail``."""

    _PIECE: Final = 1024

    def __init__(self) -> None:
        import zstandard

        self._obj = zstandard.ZstdDecompressor().decompressobj()
        self.unconsumed_tail = b""
        self.unused_data = b""
        self.eof = False

    def decompress(self, data: bytes, max_length: int) -> bytes:
        out = bytearray()
        while data and len(out) < max_length and not self.eof:
            piece, data = data[: self._PIECE], data[self._PIECE :]
            out += self._obj.decompress(piece)
            if self._obj.eof:
                self.eof = True
                self.unused_data, data = bytes(self._obj.unused_data) + data, b""
        self.unconsumed_tail = data
        return bytes(out)


def _zstd(blob: Blob, ctx: ScanContext) -> None:
    # pandas writes .pkl.zst pickles this way; zstandard is a loopwarden dependency (data shards)
    _decompressed(blob, ctx, _Zstd, "zstd")


def _lz4(blob: Blob, ctx: ScanContext) -> None:
    # joblib.dump(..., compress="lz4") writes one LZ4 frame; read here without the lz4 package (see lz4frame)
    from loopwarden.checks.models.lz4frame import Lz4FrameDecompressor

    _decompressed(blob, ctx, Lz4FrameDecompressor, "lz4")


def _xz(blob: Blob, ctx: ScanContext) -> None:
    import lzma

    _decompressed(blob, ctx, lambda: lzma.LZMADecompressor(lzma.FORMAT_AUTO), "xz/lzma")


# -------------------------------------------------------------------------------------------------------- zip


def _extern_record(name: str, child: Blob) -> bool:
    from loopwarden.checks.models.torch import extern_record

    return extern_record(name, child)


def _zip(blob: Blob, ctx: ScanContext, *, behind: bool = False) -> None:
    """A zip archive's members (``behind``: the zip follows other content, whose own dispatch looked for an HDF5
    file already)."""
    from loopwarden.checks.models import zipfmt
    from loopwarden.checks.models.dcp import archive_sequence, scan_archive_sequence

    blob = seekable_blob(blob, ctx)
    spans = None if behind else archive_sequence(blob, ctx)
    if spans is not None:
        # torch.distributed.checkpoint's data file: torch.save archives end to end, each read as its own slice
        scan_archive_sequence(blob, ctx, spans, scan_blob)
        return
    arch = zipfmt.parse_zip(blob, ctx)
    if arch is None:
        ctx.fail(blob.location, "zip without a readable end of central directory (truncated or corrupt)")
        return
    names = [e.name for e in arch.entries]
    ctx.archive_files[(blob.location.path, blob.location.member)] = lambda path: _zip_files(
        blob, arch, ctx, path
    )
    roots = sorted({m.group(1) for n in names if (m := _TORCH_ROOT_PKL.match(n))})
    if len(roots) > 1:
        ctx.add(
            rules.AmbiguousTorchArchive,
            f"{len(roots)} torch record folders: {', '.join(roots)}",
            blob.location,
        )
    torchscript = any(_TS_CONSTANTS.match(n) for n in names) and any(_TS_CODE.match(n) for n in names)
    storage_roots = frozenset(roots)
    raw_members = _pt2_raw_members(blob, arch, ctx)
    for e in arch.entries:
        if not e.is_dir and e.name.replace("\\", "/").rsplit("/", 1)[-1] == _PT2_LEGACY:
            # torch.export.save before the PT2 archive (torch.export.load still reads it): the program at the root
            _pt2_graph(blob, e, ctx)
    package = any(n.endswith("/.data/extern_modules") for n in names)
    if package:  # torch.package: its tensors' bytes are <root>/.data/<key>.storage records, read as raw data
        raw_members |= {n for n in names if _PACKAGE_STORAGE.match(n)}
    # torch's writer (torch.save, torch.jit.save) records every CRC as 0 when told not to compute them
    crcless = bool(roots) and zipfmt.written_without_crc(arch.entries)
    first_finding = len(ctx.findings)
    for start, end, what in arch.extra_ranges:
        _range(blob, ctx, start, end, what)
    shared_reads: dict[tuple[int, int, int], int] = {}
    for e in arch.entries:
        ctx.check_time()
        if e.is_dir:
            continue
        if e.shared:
            span = (e.data_start, e.method, e.csize)
            shared_reads[span] = shared_reads.get(span, 0) + 1
            if shared_reads[span] > _MAX_SHARED_READS:
                if shared_reads[span] == _MAX_SHARED_READS + 1:
                    ctx.fail(
                        member_location(blob.location, e.name),
                        f"limit max_shared_members: more than {_MAX_SHARED_READS} members read the data at "
                        f"offset {e.data_start}; the rest were not analysed",
                    )
                continue
        if (
            not e.hidden
            and (_is_storage(e.name, storage_roots) or e.name in raw_members)
            and _inert_lead(blob, e)
        ):
            continue  # tensor storage bytes: read as raw data by every loader, never interpreted
        mloc = member_location(blob.location, e.name)
        interpretations = e.interpretations()
        crc_done = False
        plain_npy = True  # every reading is a large .npy with a plain dtype: its data is never read
        for method, csize in interpretations:
            if method not in zipfmt.SUPPORTED_METHODS:
                ctx.fail(mloc, f"unsupported zip compression method {method}")
                plain_npy = False
                continue
            try:
                small = _small_member(blob, e, method, csize, ctx, mloc)
                if small is not None:
                    child, crc = small
                    plain_npy = False
                    if (method, csize) == (e.method, e.csize) and crc is not None:
                        zipfmt.judge_crc(e, crc, ctx, mloc, crcless=crcless)
                        crc_done = True
                else:
                    child = _member_blob(blob, e, method, csize, ctx, e.name)
                before = (len(ctx.findings), ctx.failures)
                if package and _extern_record(e.name, child):
                    # text (a list of module names): only what a pickle loader would run from its first byte
                    ctx.formats.append(str(Format.TEXT))
                    _loader_prefix(child, ctx)
                else:
                    scan_blob(child, ctx)
                for other in _other_names(e):
                    # zipfile (3.12+) names the member by its Unicode Path field, and extracts it to its name
                    # without '.', '..' and empty parts ('config.json/.' is written as config.json):
                    # name-dependent analyses (a Keras config.json, a .yaml config, a .jinja template) judge the
                    # bytes under those names too
                    scan_blob(dataclasses.replace(child, name=other), ctx)
                quiet = before == (len(ctx.findings), ctx.failures)
                plain_npy &= quiet and ctx.formats[-1] == str(Format.NUMPY)
            except ResourceLimitExceeded as exc:
                # a bomb or too-deep member: named, and the other members are still analysed
                if exc.bound in _GLOBAL_BOUNDS:
                    raise
                ctx.fail(mloc, str(exc))
                plain_npy = False
        if plain_npy and interpretations:
            _declared_ratio(blob, e, ctx, mloc)
        elif e.method in zipfmt.SUPPORTED_METHODS and not crc_done:
            try:
                zipfmt.check_crc(blob, e, ctx, mloc, crcless=crcless)
            except ResourceLimitExceeded as exc:
                if exc.bound in _GLOBAL_BOUNDS:
                    raise
                ctx.fail(mloc, str(exc))
    if not behind:
        hdf5_behind(blob, ctx, str(Format.ZIP), members=frozenset(e.data_start for e in arch.entries))
    if roots:
        _storage_records(blob, ctx, arch, roots)
        _sparse_records(blob, ctx, arch, roots)
    if torchscript and len(roots) <= 1:
        ctx.formats.append("torchscript")
        _torchscript_pickles(ctx, first_finding, blob)
    if package:
        from loopwarden.checks.models.torch import check_torch_package

        check_torch_package(names, ctx, blob.location, lambda name: _zip_files(blob, arch, ctx, name))
    # a TorchServe archive: a raw name holds "MAR-INF" whenever its extracted name does (cheap test first: every
    # torch checkpoint is a zip)
    if any("MAR-INF" in n for n in names):
        _torchserve_zip(blob, arch, names, ctx)


def _torchserve_zip(blob: Blob, arch: Any, names: list[str], ctx: ScanContext) -> None:
    from loopwarden.checks.models import zipfmt
    from loopwarden.checks.models.torch import MAR_MANIFEST, check_torchserve_archive

    if any(zipfmt.extracted_name(n).endswith(MAR_MANIFEST) for n in names):
        check_torchserve_archive(
            [zipfmt.extracted_name(n) for n in names if not n.endswith("/")],
            ctx,
            blob.location,
            lambda name: _zip_files(blob, arch, ctx, name),
        )


def _record_pickles(arch: Any, roots: list[str]) -> list[tuple[str, str]]:
    """(pickle member, record folder) of each ``<root>/<name>.pkl`` of the archive's torch record folders."""
    out = []
    for e in arch.entries:
        m = _TORCH_RECORD_PKL.match(e.name)
        if m and m.group(1) in roots and not e.is_dir:
            out.append((e.name, f"{m.group(1)}/{m.group(2)}"))
    return out


def _storage_records(blob: Blob, ctx: ScanContext, arch: Any, roots: list[str]) -> None:
    """Each storage a ``<root>/<name>.pkl`` declares must fit its ``<root>/<name>/<key>`` record: torch makes the
    storage from the record with the declared element count, and a record shorter than that lets the tensors over
    it read and write past its end (CVE-2026-24747; torch.jit.load 2.13 still does so for a TorchScript archive's
    ``constants/`` records). A missing record only makes torch fail."""
    sizes = {e.name: e.usize for e in arch.entries if not e.is_dir}
    for member, folder in _record_pickles(arch, roots):
        loc = member_location(blob.location, member)
        for key, numel, itemsize in ctx.storages.pop((loc.path, loc.member), ()):
            have = sizes.get(f"{folder}/{key}")
            if have is None or itemsize is None or numel * itemsize <= have:
                continue
            ctx.add(
                rules.TensorGeometry,
                f"storage {key!r} declares {numel} elements ({numel * itemsize} bytes) but its record "
                f"{folder}/{key} holds {have} bytes",
                loc,
                key=key,
                declared_bytes=numel * itemsize,
                record_bytes=have,
            )


_SPARSE_RECORD_MAX: Final = 64 << 20
"""Bytes of a sparse tensor's index record read to check its values; a larger record is unverified."""


def _sparse_records(blob: Blob, ctx: ScanContext, arch: Any, roots: list[str]) -> None:
    """The values of each sparse index tensor a ``<root>/<name>.pkl`` declares must lie in the tensor's bounds.
    torch.load (weights_only too) rebuilds sparse tensors unchecked and validates them only when sparse invariant
    checks are switched on, which they are not by default: a COO index past the size makes ``coalesce()`` or
    ``to_dense()`` write outside the dense buffer (a crash, or a write of chosen values)."""
    entries = {e.name: e for e in arch.entries if not e.is_dir}
    for member, folder in _record_pickles(arch, roots):
        loc = member_location(blob.location, member)
        order = "<"
        root = folder.rsplit("/", 1)[0]
        marker = entries.get(f"{root}/byteorder")
        if marker is not None and ctx.sparse.get((loc.path, loc.member)):
            # torch.load (weights_only and mmap too) byteswaps every storage when the archive's byteorder record
            # is not the host's: the values it gets are the record's bytes read in the declared order
            said = _member_bytes(blob, marker, ctx, 16)
            if said is None:
                ctx.fail(loc, f"byteorder record {root}/byteorder could not be read")
            elif said == b"big":
                order = ">"
        for entry in ctx.sparse.pop((loc.path, loc.member), ()):
            key, itemsize = entry[0], entry[6]
            e = entries.get(f"{folder}/{key}")
            if e is None or itemsize not in (4, 8):
                continue  # torch fails on a missing record; indices are int64 (int32 for compressed ones)
            if e.method != 0:
                # torch.save stores records uncompressed; torch.load(mmap=True) slices the mapped file at the
                # record's data offset, so for a compressed record the indices are its raw compressed bytes, which
                # the check of its inflated values below says nothing about
                ctx.add(
                    rules.TensorGeometry,
                    f"sparse index record {folder}/{key} is compressed: torch.load(mmap=True) takes its raw "
                    "compressed bytes as the indices, unchecked",
                    loc,
                    key=key[:100],
                )
            if e.usize > _SPARSE_RECORD_MAX:
                ctx.fail(loc, f"sparse index record {folder}/{key} is too large to check ({e.usize} bytes)")
                continue
            data = _member_bytes(blob, e, ctx, _SPARSE_RECORD_MAX)
            if data is None:
                ctx.fail(loc, f"sparse index record {folder}/{key} could not be read to check its values")
                continue
            _sparse_values(data, entry, ctx, loc, order)


def _sparse_values(data: bytes, entry: tuple[Any, ...], ctx: ScanContext, loc: Any, order: str = "<") -> None:
    """Check the values of one sparse index tensor (an entry of ``PickleResult.sparse``) against its bounds, reading
    them from ``data``, its storage's bytes, in byte ``order`` (``<``, or ``>`` for an archive whose byteorder
    record says big): each row is a strided view, nothing is allocated from declared sizes."""
    import numpy as np  # only for files that have sparse tensors: numpy takes ~70 ms to import

    key, offset, size, stride, bounds, low, itemsize, compressed, jagged = entry
    what, effect = (
        ("jagged nested tensor offset or length", "NestedTensor takes its offsets and lengths unchecked")
        if jagged
        else ("sparse tensor index", "torch.load does not check sparse indices by default")
    )
    values = np.frombuffer(data, dtype=f"{order}i{itemsize}", count=len(data) // itemsize)
    rows, cols = (size[0], size[1]) if len(size) == 2 else (1, size[0])
    rstride, cstride = (stride[0], stride[1]) if len(size) == 2 else (0, stride[0])
    if rows <= 0 or cols <= 0:
        return
    limits = bounds if len(bounds) == rows else bounds[:1] * rows
    for r in range(rows):  # rows: the sparse dimensions (COO) or one; each row a strided view, no copy
        ctx.check_time()
        start = offset + r * rstride
        last = start + (cols - 1) * cstride
        if min(start, last) < 0 or max(start, last) >= len(values):
            break  # the tensor leaves its storage: the geometry check reports that
        row = values[start : last + 1 : cstride] if cstride > 0 else values[start : start + 1]
        bad = np.flatnonzero((row < low) | (row >= limits[r]))
        if bad.size:
            c = int(bad[0])
            ctx.add(
                rules.TensorGeometry,
                f"{what} {int(row[c])} (row {r}, entry {c}) of storage {key!r} is outside "
                f"[{low}, {limits[r]}): {effect}"
                + ("" if jagged else ", and coalesce()/to_dense() then write outside the tensor"),
                loc,
                key=key,
                index=int(row[c]),
                bound=int(limits[r]),
            )
            break
        if compressed and row.size > 1:
            # compressed indices are row starts: one smaller than the one before makes a row of negative
            # length, and to_dense()/coalesce() then write outside their buffers (a crash in torch 2.13)
            down = np.flatnonzero(row[1:] < row[:-1])
            if down.size:
                c = int(down[0]) + 1
                ctx.add(
                    rules.TensorGeometry,
                    f"{what} {int(row[c])} (row {r}, entry {c}) of storage {key!r} is smaller than the one "
                    f"before it ({int(row[c - 1])}): {effect}"
                    + ("" if jagged else ", and to_dense()/coalesce() then write outside the tensor"),
                    loc,
                    key=key,
                    index=int(row[c]),
                )
                break


def _declared_ratio(blob: Blob, e: Any, ctx: ScanContext, mloc: Any) -> None:
    """The ratio bound for a member whose data is not inflated (a plain ``.npy``: numpy reads it as numbers, so
    neither it nor its CRC-32 is read). ``zipfile`` inflates exactly the declared size, so that is what a loader
    faces: judged like the output of a stream read from stored bytes (nesting multiplies nothing here, since
    nothing is inflated)."""
    from loopwarden.checks.models._base import RATIO_FLOOR

    ratio = ctx.limits.max_decompression_ratio
    if e.method != 0 and e.usize > RATIO_FLOOR and e.usize > ratio * max(e.csize, 1):
        ctx.fail(
            mloc,
            f"resource limit 'max_decompression_ratio' reached: {mloc}: declares "
            f"{e.usize} bytes from {e.csize} (more than {ratio:g}x, zip-bomb-like)",
        )


def _is_storage(name: str, roots: frozenset[str]) -> bool:
    """``<root>/data/<key>`` or ``<root>/constants/<key>`` of a torch record folder: raw tensor bytes."""
    parts = name.split("/")
    return len(parts) == 3 and parts[0] in roots and parts[1] in ("data", "constants") and parts[2] != ""


def _inert_lead(blob: Blob, e: Any) -> bool:
    """Whether every reading of the member starts with bytes that no loader interprets: storages are read as
    numbers by their archive's loader, but ``numpy.load`` reads any ``.npz`` member that starts with the NPY magic
    as an array (pickles included), and a member that opens with another format's magic is analysed as that.
    Only the first bytes are looked at (read with the local header, or inflated from the first compressed
    bytes), never the tensor data."""
    from loopwarden.checks.models.detect import magic_format
    from loopwarden.checks.models.zipfmt import LEAD

    for method, csize in e.interpretations():
        if method == 0:
            lead = e.lead[: min(LEAD, csize)]
        elif method == 8:
            raw = read_range(blob, e.data_start, min(csize, _ONE_SHOT_LEAD))
            d = zlib.decompressobj(-15)
            try:
                lead = d.decompress(raw, LEAD)
            except zlib.error:
                return False
            if len(lead) < LEAD and not d.eof:
                return False  # the first bytes could not be told: analyse the member
        else:
            return False
        if magic_format(lead) is not None:
            return False
    return True


_PT2_FORMAT: Final = "archive_format"
_PT2_LEGACY: Final = "serialized_exported_program.json"
_PT2_MODEL: Final = re.compile(r"^models/([^/]+)\.json$")


def _pt2_raw_members(blob: Blob, arch: Any, ctx: ScanContext) -> frozenset[str]:
    """The members of a ``torch.export`` (PT2) archive that its loader reads as raw tensor bytes.

    torch reads the records of the folder of the archive's first member, and only if its ``archive_format`` is
    ``pt2``. For each model (``models/<m>.json``) the payload configs ``data/weights/<m>_weights_config.json``
    and ``data/constants/<m>_constants_config.json`` say which files hold raw bytes (``use_pickle: false``) and
    which are loaded with ``torch.load`` or ``pickle.loads`` (those, and every file no config names as raw,
    are analysed). Each model's graph is judged on the way (:func:`_pt2_graph`). A file that any config names
    as a pickle is never raw; a constant is raw only under the ``tensor_`` prefix (``custom_obj_``/
    ``opaque_obj_`` files are unpickled whatever the config says)."""
    listed = [e for e in arch.entries if not e.hidden]
    if not listed or "/" not in listed[0].name:
        return frozenset()
    root = listed[0].name.split("/", 1)[0] + "/"
    by_name = {e.name: e for e in listed}
    fmt = by_name.get(root + _PT2_FORMAT)
    if fmt is None or _member_bytes(blob, fmt, ctx, 16) != b"pt2":
        return frozenset()
    raw: set[str] = set()
    pickled: set[str] = set()
    for name in by_name:
        m = _PT2_MODEL.match(name[len(root) :]) if name.startswith(root) else None
        if m is None:
            continue
        _pt2_graph(blob, by_name[name], ctx)
        for folder, prefix in (("weights", ""), ("constants", "tensor_")):
            cfg = by_name.get(f"{root}data/{folder}/{m.group(1)}_{folder}_config.json")
            payloads = _payload_config(blob, cfg, ctx) if cfg is not None else {}
            for meta in payloads.values():
                path = meta.get("path_name") if isinstance(meta, dict) else None
                if not isinstance(path, str):
                    continue
                target = f"{root}data/{folder}/{path}"
                if meta.get("use_pickle") is False and path.startswith(prefix):
                    raw.add(target)
                else:
                    pickled.add(target)
    return frozenset(raw - pickled)


def _pt2_graph(blob: Blob, e: Any, ctx: ScanContext) -> None:
    """A PT2 model's graph (``models/<m>.json``): the operators ``torch.export.load`` resolves by name and the
    program calls (see ``torch.check_export_graph``)."""
    from loopwarden.checks.models.torch import check_export_graph, check_export_guards

    loc = member_location(blob.location, e.name)
    data = _member_bytes(blob, e, ctx, _MAX_TEXT_PARSE)
    if data is None:
        ctx.fail(loc, "torch.export model graph could not be read (unreadable or over the text bound)")
        return
    try:
        obj = _pt2_json(data)
    except (ValueError, RecursionError):
        return  # torch.export.load fails on it too
    except ResourceLimitExceeded as exc:
        ctx.fail(loc, f"torch.export model graph not analysed: {exc}")
        return
    check_export_graph(obj, ctx, loc)
    check_export_guards(obj, ctx, loc)


def _pt2_json(data: bytes) -> Any:
    """A PT2 archive's JSON member as torch reads it (``json.loads`` of its UTF-8 text), a large one parsed in
    bounded memory (``jsonbound``: a member of tens of MB of tiny values would take gigabytes as objects). Raises
    ValueError or RecursionError where torch fails too, ResourceLimitExceeded past the object bound."""
    import json

    from loopwarden.checks.models.jsonbound import LARGE_JSON, parse_large

    if len(data) <= LARGE_JSON:
        return json.loads(data.decode("utf-8"))
    data.decode("utf-8")  # torch decodes UTF-8 only (raises ValueError like it)
    return parse_large(data)


def _payload_config(blob: Blob, e: Any, ctx: ScanContext) -> dict[str, Any]:
    """A PT2 payload config's ``config`` mapping, read as torch reads it (UTF-8, then JSON); empty when it
    cannot be read, so that the files it names are analysed."""
    data = _member_bytes(blob, e, ctx, _MAX_TEXT_PARSE)
    try:
        obj = _pt2_json(data) if data is not None else None
    except (ValueError, RecursionError, ResourceLimitExceeded):
        return {}
    cfg = obj.get("config") if isinstance(obj, dict) else None
    return cfg if isinstance(cfg, dict) else {}


def _member_bytes(blob: Blob, e: Any, ctx: ScanContext, limit: int) -> bytes | None:
    """A member's data as its central directory describes it, up to ``limit`` bytes; None when it is longer,
    unreadable, or its method is not supported."""
    from loopwarden.checks.models import zipfmt

    if e.method not in zipfmt.SUPPORTED_METHODS or e.usize > limit:
        return None
    got = zipfmt.member_reader(blob, e, e.method, e.csize, ctx)
    if got is None:
        return None
    reader, _ = got
    with reader:
        data = reader.read(limit + 1)
        err = getattr(reader, "error", None)
    return None if err or len(data) > limit else data


def _torchscript_pickles(ctx: ScanContext, first: int, blob: Blob) -> None:
    """torch.load hands an archive with constants.pkl to torch.jit.load, whose C++ unpickler resolves only
    TorchScript classes (``__torch__.*``, compiled from the archive's code/, checked as LW-MODEL-031) and its
    own
    builders (``torch.jit._pickle.*``); it never imports Python. Those names are therefore not findings here.
    """
    prefix = f"{blob.location.member}!" if blob.location.member else ""

    def keep(f: Finding) -> bool:
        subject = str(f.evidence.get("subject", ""))
        member = f.location.member or ""
        inside = member.startswith(prefix) and not member[len(prefix) :].count("!")
        return not (inside and subject.startswith(_TORCHSCRIPT_GLOBALS))

    ctx.findings[first:] = [f for f in ctx.findings[first:] if keep(f)]


def _small_member(
    blob: Blob, e: Any, method: int, csize: int, ctx: ScanContext, mloc: Any
) -> tuple[Blob, int | None] | None:
    """A small member read into memory once (its CRC-32 computed on the way), or None for a large one.

    Most archives in a model folder hold a few small members; reading each once and analysing the bytes
    saves the nested readers' per-call overhead. Large members keep streaming through bounded readers.
    """
    from loopwarden.checks.models import zipfmt

    if csize > _SMALL_MEMBER or (method != 0 and e.usize > _SMALL_MEMBER):
        return None
    if blob.data is not None and method in (0, 8) and e.data_start >= 0 and csize <= _ONE_SHOT:
        return _small_member_in_memory(blob, blob.data, e, method, csize, ctx, mloc)
    got = zipfmt.member_reader(blob, e, method, csize, ctx)
    if got is None:
        return None
    reader, _ = got
    with reader:
        data = reader.read(_SMALL_MEMBER + 1)
        if len(data) > _SMALL_MEMBER:
            return None  # the declared size lied: analyse it as a stream (bounded as every stream is)
        err = getattr(reader, "error", None)
    if err:
        ctx.fail(mloc, err)
    child = bytes_blob(e.name, mloc, data, blob.depth + 1, inflated=blob.inflated or method != 0)
    return child, (None if err else zlib.crc32(data))


def _small_member_in_memory(
    blob: Blob, data: bytes, e: Any, method: int, csize: int, ctx: ScanContext, mloc: Any
) -> tuple[Blob, int | None] | None:
    """:func:`_small_member` for an archive held in memory: the member sliced (stored) or inflated in one
    call, with the same bound, budget, CRC and error texts as the streaming readers give it."""
    raw = data[e.data_start : e.data_start + csize]
    err = None
    if method == 0:
        out = raw
    else:
        d = zlib.decompressobj(-15)
        what = str(mloc)
        try:
            out = d.decompress(raw, _SMALL_MEMBER + 1)
        except zlib.error as exc:
            out, err = b"", f"{what}: corrupt compressed data ({exc})"
        else:
            ctx.count_decompressed(len(out))
            if len(out) <= _SMALL_MEMBER and not d.eof:
                err = f"{what}: compressed stream ends early (truncated)"
    if len(out) > _SMALL_MEMBER:
        return None  # the declared size lied: analyse it as a stream (bounded as every stream is)
    if err:
        ctx.fail(mloc, err)
    child = bytes_blob(e.name, mloc, out, blob.depth + 1, inflated=blob.inflated or method != 0)
    return child, (None if err else zlib.crc32(out))


def _other_names(e: Any) -> list[str]:
    """The names other than its own that a zip member is read or extracted under, one per last part (see
    :func:`_zip`)."""
    from loopwarden.checks.models.zipfmt import extracted_name

    seen = {e.name.rsplit("/", 1)[-1]}
    out: list[str] = []
    for name in (e.unicode_name, extracted_name(e.name), e.unicode_name and extracted_name(e.unicode_name)):
        if name and name.rsplit("/", 1)[-1] not in seen:
            seen.add(name.rsplit("/", 1)[-1])
            out.append(name)
    return out


def _zip_files(blob: Blob, arch: Any, ctx: ScanContext, path: str) -> list[Blob]:
    """The members a path (from the top of the archive) may name once the zip is extracted: every member of that
    name (extraction keeps the last; a reader of the archive may take another), each readable by seeking."""
    from loopwarden.checks.models import zipfmt

    want = posixpath.normpath(path)
    return [
        seekable_blob(_member_blob(blob, e, e.method, e.csize, ctx, e.name), ctx)
        for e in arch.entries
        if not e.is_dir and e.method in zipfmt.SUPPORTED_METHODS and zipfmt.extracted_name(e.name) == want
    ]


def _member_blob(blob: Blob, e: Any, method: int, csize: int, ctx: ScanContext, name: str) -> Blob:
    from loopwarden.checks.models import zipfmt

    def opener() -> BinaryIO:
        got = zipfmt.member_reader(blob, e, method, csize, ctx)
        assert got is not None  # method checked by the caller
        return got[0]

    return Blob(
        name,
        member_location(blob.location, name),
        opener,
        csize if method == 0 else None,
        method == 0,
        blob.depth + 1,
        inflated=blob.inflated or method != 0,
    )


def _range(blob: Blob, ctx: ScanContext, start: int, end: int, what: str) -> None:
    def opener() -> BinaryIO:
        return open_slice(blob.open(), start, end - start, own=True)

    name = f"<{what} bytes {start}-{end}>"
    loc = member_location(blob.location, name)
    child = Blob(name, loc, opener, end - start, True, blob.depth + 1, inflated=blob.inflated)
    # bytes outside the zip structure are read only by loaders that start at the file's beginning (pickle)
    if is_pickle_start(child.head(16)):
        scan_blob(child, ctx)


# ------------------------------------------------------------------------------------------------ the table


def _lazy(module: str, func: str) -> Callable[[Blob, ScanContext], None]:
    """A handler imported on its first call (the module of a format no scanned file has is never loaded), then
    called directly."""
    resolved: list[Callable[[Blob, ScanContext], None]] = []

    def call(blob: Blob, ctx: ScanContext) -> None:
        if not resolved:
            import importlib

            resolved.append(getattr(importlib.import_module(f"loopwarden.checks.models.{module}"), func))
        resolved[0](blob, ctx)

    return call


def _empty(blob: Blob, ctx: ScanContext) -> None:
    return None


def _data(blob: Blob, ctx: ScanContext) -> None:
    """A data file (Parquet, SQLite, WAV ...): nothing in it is a model, so it is as unverified as any unknown
    binary, under its own name."""
    ctx.fail(blob.location, f"{data_kind(blob.head(64)) or 'data file'}: {NOT_A_MODEL}", misread=True)
    check_arrow_schema(blob, ctx)


def scan_as(blob: Blob, ctx: ScanContext, fmt: Format) -> None:
    """Analyse ``blob`` also as ``fmt``, a second reading of the same bytes (an ONNX model whose first bytes
    read as text or a pickle); nothing for a format without an analysis."""
    if fmt in (Format.PICKLE, Format.TORCH_LEGACY):
        ctx.formats.append(str(fmt))
        _pickle(blob, ctx, max_pickles=5 if fmt is Format.TORCH_LEGACY else None, second_reading=True)
        return
    handler = _HANDLERS.get(fmt)
    if handler is not None:
        ctx.formats.append(str(fmt))
        handler(blob, ctx)


_HANDLERS: Final[dict[Format, Callable[[Blob, ScanContext], object]]] = {
    Format.PICKLE: _pickle,
    Format.TORCH_LEGACY: _torch_legacy,
    Format.TEXT: _text,
    Format.EMPTY: _empty,
    Format.MEDIA: _empty,
    Format.DATA: _data,
    Format.GZIP: _gzip,
    Format.ZLIB: _zlib,
    Format.JOBLIB_ZLIB: _joblib_zlib,
    Format.BZIP2: _bz2,
    Format.XZ: _xz,
    Format.LZMA: _xz,
    Format.ZSTD: _zstd,
    Format.LZ4: _lz4,
    Format.ZIP: _zip,
    Format.TAR: _lazy("archives", "scan_tar"),
    Format.NUMPY: _lazy("numpy_", "scan_npy"),
    Format.SAFETENSORS: _lazy("safetensors", "scan_safetensors"),
    Format.GGUF: _lazy("gguf", "scan_gguf"),
    Format.HDF5: _lazy("keras", "scan_hdf5"),
    Format.ONNX: _lazy("onnx", "scan_onnx"),
    Format.SENTENCEPIECE: _lazy("sentencepiece", "scan_sentencepiece"),
    Format.MSGPACK: _lazy("msgpack_", "scan_msgpack"),
    Format.UBJSON: _lazy("ubjson", "scan_ubjson"),
    Format.CATBOOST: _lazy("catboost_", "scan_catboost"),
    Format.RDS: _lazy("rds", "scan_rds"),
    Format.TF_SAVED_MODEL: _lazy("tensorflow_", "scan_saved_model"),
    Format.TF_GRAPH: _lazy("tensorflow_", "scan_graph_def"),
    Format.KERAS_METADATA: _lazy("tensorflow_", "scan_keras_metadata"),
    Format.TF_CHECKPOINT_INDEX: _lazy("tensorflow_", "scan_checkpoint_index"),
    Format.TF_CHUNKED: _lazy("tf_chunked", "scan_chunked_proto"),
    Format.OCDBT: _lazy("ocdbt", "scan_ocdbt_manifest"),
    Format.TF_FINGERPRINT: _empty,
}
