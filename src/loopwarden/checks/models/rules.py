"""Rules of the model-container checks (LW-MODEL-020..099). Documented in ``docs/rules.md#models``."""

from __future__ import annotations

from typing import ClassVar, Final

from loopwarden.domain import Rule, Severity

__all__ = ["RULES"]


class ZipHeaderMismatch(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-021"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Zip central directory and local header disagree"
    help: ClassVar[str] = (
        "A member's name, sizes, CRC, compression method or flag bits differ between the central directory "
        "and "
        "its local header (or the encryption bit is set). Different zip readers then see different contents, "
        "which is how scanners were bypassed. Both interpretations are analysed."
    )


class ZipDuplicateMember(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-022"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Duplicate archive member name"
    help: ClassVar[str] = (
        "Two members share a name; readers disagree about which one wins. Every copy is analysed."
    )


class ZipOverlap(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-023"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Overlapping zip members"
    help: ClassVar[str] = "Zip members share bytes (a zip-bomb or parser-confusion construction)."


class ArchiveExtraData(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-024"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "Data outside the archive structure"
    help: ClassVar[str] = (
        "Bytes before the first member, between members or after the end of the central directory. Such "
        "prepended or appended payloads are read by loaders that do not start at the zip structure (a pickle "
        "before a zip is loaded by torch as a legacy checkpoint). The extra bytes are analysed too."
    )


class ZipHiddenMember(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-025"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Zip local entry missing from the central directory"
    help: ClassVar[str] = (
        "A local file header that no central directory entry points to: streaming readers see a member that "
        "central-directory readers do not. The hidden member is analysed."
    )


class ZipCrcMismatch(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-026"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Zip member CRC does not match its data"
    help: ClassVar[str] = (
        "The recorded CRC-32 differs from the data. Strict readers (Python's zipfile) refuse the member "
        "while "
        "lenient ones (torch) load it, so a scanner built on the strict reader skips the payload."
    )


class ArchivePathEscape(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-027"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Archive member name escapes its folder"
    help: ClassVar[str] = (
        "A member name with '..', an absolute path, a drive letter or backslashes writes outside the "
        "extraction "
        "folder when the archive is unpacked (path traversal)."
    )


class ArchiveLink(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-028"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Archive member is a link or special file"
    help: ClassVar[str] = (
        "A symbolic link, hard link or device member: unpacking it can expose or overwrite files outside the "
        "folder. Links whose target stays inside the archive are reported at low severity."
    )


class DisguisedFormat(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-029"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "File content does not match its extension"
    help: ClassVar[str] = (
        "The content is a code-carrying format (pickle, zip with pickles) while the name claims a data-only "
        "format such as safetensors, GGUF, ONNX or NumPy. Loaders pick by content; reviewers trust the name."
    )


class AmbiguousTorchArchive(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-030"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Torch archive with several record roots or pickles"
    help: ClassVar[str] = (
        "A PyTorch zip checkpoint with more than one top-level folder holding data.pkl, or pickles that the "
        "checkpoint layout does not explain. Which one torch loads depends on the reader; all are analysed."
    )


class TorchScriptCode(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-031"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "TorchScript code uses operations outside tensor math"
    help: ClassVar[str] = (
        "The TorchScript code that torch.jit.load compiles and runs calls custom operator namespaces or "
        "file, process or import primitives."
    )


class KerasLambda(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-032"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "Keras Lambda layer or serialized Python function"
    help: ClassVar[str] = (
        "A Lambda layer or a '__lambda__' function carries marshalled Python bytecode that runs when the "
        "model "
        "is loaded with safe_mode off (or by legacy loaders)."
    )


class KerasReference(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-033"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Keras config references code outside Keras"
    help: ClassVar[str] = (
        "A 'module', 'registered_name' or function reference outside the keras namespace, a dangerous Keras "
        "utility (get_file, load_model) or a TensorFlow op lambda touching files: loading imports or calls "
        "it."
    )


class OnnxExternalData(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-035"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "ONNX external data outside the model folder"
    help: ClassVar[str] = (
        "A tensor's external_data location is absolute, contains '..' or resolves (through links) outside "
        "the "
        "model's folder: loading reads arbitrary files into the model (CVE-2024-27318 class)."
    )


class OnnxCustomDomain(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-036"
    severity: ClassVar[Severity] = Severity.INFO
    title: ClassVar[str] = "ONNX operator from a custom domain"
    help: ClassVar[str] = "The graph uses operators that need a custom runtime library."


class SafetensorsInvalid(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-037"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Malformed safetensors header"
    help: ClassVar[str] = (
        "Header length out of bounds, invalid or duplicate-key JSON, dtype/shape/offset inconsistency, "
        "overlapping or out-of-order ranges, or trailing bytes: parsers disagree on such files."
    )


class SafetensorsMetadata(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-038"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "safetensors metadata is not a string-to-string map"
    help: ClassVar[str] = "The format requires '__metadata__' to map strings to strings."


class GgufInvalid(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-039"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Malformed GGUF structure"
    help: ClassVar[str] = (
        "Unknown version or value type, counts or lengths beyond the file, tensor infos out of bounds: the "
        "classes of memory-safety bugs in GGUF readers."
    )


class TemplateInjection(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-040"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "Chat template reaches Python internals (template injection)"
    help: ClassVar[str] = (
        "The Jinja chat template accesses dunder or private attributes, uses the 'attr' filter, builds such "
        "names from pieces or escapes, or touches objects that lead to Python globals (cycler, joiner, "
        "lipsum, "
        "self, request, config), or imports other templates. Rendering it can run code (CVE-2024-34359 "
        "class)."
    )


class NumpyObjectArray(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-041"
    severity: ClassVar[Severity] = Severity.INFO
    title: ClassVar[str] = "NumPy object array (carries a pickle)"
    help: ClassVar[str] = (
        "An .npy with object dtype stores a pickle; np.load(allow_pickle=True) runs it. The pickle is "
        "analysed."
    )


class ArchiveHiddenData(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-049"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "Unaccounted bytes between zip members"
    help: ClassVar[str] = "Bytes between members that no entry describes; scanned for hidden members."


RULES: Final[tuple[type[Rule], ...]] = (
    ZipHeaderMismatch,
    ZipDuplicateMember,
    ZipOverlap,
    ArchiveExtraData,
    ZipHiddenMember,
    ZipCrcMismatch,
    ArchivePathEscape,
    ArchiveLink,
    DisguisedFormat,
    AmbiguousTorchArchive,
    TorchScriptCode,
    KerasLambda,
    KerasReference,
    OnnxExternalData,
    OnnxCustomDomain,
    SafetensorsInvalid,
    SafetensorsMetadata,
    GgufInvalid,
    TemplateInjection,
    NumpyObjectArray,
    ArchiveHiddenData,
)
