"""Rules of the model-file checks, documented in ``docs/rules.md``.

LW-MODEL-001..019 belong to the pickle analysis (``checks/models/pickle_vm.py`` and the allow-list in
``checks/models/allowlist.py``, ``docs/rules.md#models-pickle``); LW-MODEL-020..099 to the container checks
(``docs/rules.md#models``). The pickle modules keep their rule ids as string constants; the classes here carry the
metadata (title, help, default severity) that renderers such as SARIF show. A finding's own severity can differ
from the rule's where the documentation says so (LW-MODEL-015, LW-MODEL-018).
"""

from __future__ import annotations

from typing import ClassVar, Final

from loopwarden.domain import Rule, Severity

__all__ = ["RULES"]


# --- pickle analysis (LW-MODEL-001 .. 019; 019 is reserved) -------------------------------------------------------


class PickleExecCallable(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-001"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "Callable that executes code"
    help: ClassVar[str] = (
        "The pickle reaches a callable that runs code or commands (eval/exec/compile, os, subprocess, runpy, "
        "ctypes, types, multiprocessing, torch.jit, torch.hub, cloudpickle ...). Loading the file runs "
        "attacker-chosen code. Control: do not load; quarantine the artifact."
    )


class PickleResolverCallable(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-002"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "Callable that imports modules, resolves names or forwards calls"
    help: ClassVar[str] = (
        "getattr, __import__, importlib, pkgutil.resolve_name, pydoc.locate, operator.attrgetter/methodcaller/"
        "itemgetter, functools.partial/reduce, map/filter/sorted, copyreg.add_extension ...: the pickle can "
        "reach any callable without naming it in a GLOBAL. The analyser resolves what it can and reports the "
        "target too. Control: allow-list of deserialisation targets."
    )


class PickleReentryCallable(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-003"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "Callable that re-enters a deserialiser"
    help: ClassVar[str] = (
        "pickle, marshal, dill, jsonpickle, shelve, yaml, joblib.load, torch.load, numpy.load, "
        "pandas.read_pickle ...: a second payload is loaded from inside the first; when it is a constant it is "
        "analysed (LW-MODEL-011). Control: no execution of untrusted serialised code."
    )


class PickleIoCallable(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-004"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Callable with file-system or network I/O"
    help: ClassVar[str] = (
        "open, io, shutil, tempfile, zipfile/tarfile, logging file handlers, socket, ssl, http, urllib, "
        "requests, smtplib/ftplib ...: loading reads or writes files or talks to the network (exfiltration, "
        "SSRF, dropping files). Control: do not load; quarantine."
    )


class PickleNotAllowed(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-005"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Callable not on the allow-list"
    help: ClassVar[str] = (
        "A function, or anything from the standard library or a known ML package, that is neither allowed nor "
        "known dangerous. Model files do not need it; it is the usual shape of a new gadget. Control: review; "
        "allow it explicitly in [checks.models] allow if it is legitimate."
    )


class PickleUnknownClass(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-006"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "Class from a module the scanner does not know"
    help: ClassVar[str] = (
        "A CapWords class from a module outside the standard library and the known ML packages (e.g. "
        "__main__.Net, typical of torch.save(model)). Loading imports that module and runs its code. The same "
        "class called with arguments is an additional LW-MODEL-005 finding. Control: allow your own classes "
        "explicitly; prefer state_dict + safetensors."
    )


class PickleAttributeTraversal(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-007"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "Attribute path to interpreter internals or a dangerous module"
    help: ClassVar[str] = (
        "A dotted qualname that contains a dunder (numpy.__builtins__, x.__globals__) or passes through a "
        "dangerous module (pathlib.os.system): a safe-looking module is used as a stepping stone. Control: "
        "allow-list of exact names."
    )


class PickleDynamicCall(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-008"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Call of a callable built at load time"
    help: ClassVar[str] = (
        "REDUCE/OBJ/NEWOBJ/BUILD on a value that is not a named callable (the result of another call, a module "
        "object, an attribute fetched from a loaded object): the callable cannot be known statically. Control: "
        "fail closed."
    )


class PickleGlobalTampering(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-009"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "BUILD on a module-level object (global state tampering)"
    help: ClassVar[str] = (
        "BUILD applied to a class, function or module (or torch._utils._set_obj_state applied to one): the "
        "pickle sets attributes on shared interpreter state, e.g. to plant names that later GLOBALs read back. "
        "No legitimate pickle does this."
    )


class PickleExtOpcode(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-010"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "EXT opcode (copyreg extension registry)"
    help: ClassVar[str] = (
        "EXT1/EXT2/EXT4 fetch a callable from the loading process's copyreg extension registry by number: what "
        "runs depends on the process, not on the file. Control: fail closed."
    )


class PickleNested(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-011"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Pickle embedded in the pickle and loaded from it"
    help: ClassVar[str] = (
        "A constant (bytes, latin-1 text, base64, zlib) is passed to a loader. The embedded pickle is analysed "
        "recursively; its findings carry nested_in. Control: no execution of untrusted serialised code."
    )


class PickleMalformed(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-012"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "Malformed pickle stream (target unverified)"
    help: ClassVar[str] = (
        "Invalid opcode, stack underflow, undefined memo entry, unsupported protocol, a FRAME longer than the "
        "data, truncation: CPython rejects the stream at this point, after running everything before it, which "
        "is reported. The target is unverified. Control: fail closed."
    )


class PickleTrailingData(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-013"
    severity: ClassVar[Severity] = Severity.INFO
    title: ClassVar[str] = "Bytes after the last pickle"
    help: ClassVar[str] = (
        "Data that is not a pickle follows the last STOP. It is searched for hidden pickles (any found are "
        "analysed and reported). Usually harmless; custom loaders may read it."
    )


class PickleDynamicGlobal(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-014"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Callable whose module or name is computed at load time"
    help: ClassVar[str] = (
        "STACK_GLOBAL on strings the analyser could not evaluate, or getattr with a computed name. Control: "
        "fail closed."
    )


class PickleTooManyFindings(Rule):
    """The finding takes the severity of the worst one it counts; the rule declares the maximum."""

    rule_id: ClassVar[str] = "LW-MODEL-015"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "More than 1,000 distinct findings in one stream"
    help: ClassVar[str] = (
        "A stream with more than 1,000 distinct (rule, callable) findings: the rest are counted in this one, "
        "which keeps the report bounded; its severity is that of the worst finding counted. The file is hostile "
        "or generated to flood the report."
    )


class PickleDunderState(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-016"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "State that plants special attributes on an object"
    help: ClassVar[str] = (
        "A BUILD state (or torch._utils._set_obj_state) that sets __setstate__, __reduce__, __class__, "
        "__dict__, __getattr__, __call__ ... on an instance: a second BUILD then calls whatever was planted, "
        "even an allow-listed callable with attacker data. No legitimate pickle does this."
    )


class TensorGeometry(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-017"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Tensor metadata reaches outside its storage"
    help: ClassVar[str] = (
        "A tensor rebuilt over a storage with an offset, sizes or strides that reach past the storage's declared "
        "elements, a storage declared larger than its data/<key> record, or SETITEM/APPEND on a tensor: "
        "torch.load (weights_only too) then reads and writes memory the tensor does not own (CVE-2026-24747). "
        "Also torch.Tensor/storage classes called with sizes (memory never filled: the loading process's freed "
        "data) or with a cdata=/allocator= pointer (critical). "
        "torch.save never writes any of these. Control: do not load; quarantine the artifact."
    )


class PickleDenied(Rule):
    """HIGH by default; a denied name that is also known dangerous keeps its category's higher severity."""

    rule_id: ClassVar[str] = "LW-MODEL-018"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Callable denied by configuration"
    help: ClassVar[str] = (
        'The name matches [checks.models] deny ("pkg.mod.name" or "pkg.*"). High, or the dangerous '
        "category's severity if that is higher."
    )


class PickleStored(Rule):
    """The severity of the stored pickle's worst finding, capped at HIGH (loading this file does not run it)."""

    rule_id: ClassVar[str] = "LW-MODEL-019"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Pickle kept as data that calls something when unpickled"
    help: ClassVar[str] = (
        "A string or bytes constant is itself a pickle (raw, latin-1, hex or base64, possibly zlib/gzip) that "
        "calls something outside the allow-list. Loading the file does not run it; code that later unpickles "
        "the value does. Control: do not unpickle values of untrusted models; quarantine the artifact."
    )


# --- container checks (LW-MODEL-020 .. 099) ----------------------------------------------------------------------


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
        "file, process or import primitives; or a torch.export graph calls such operators, or its guards_code "
        "(Python that ExportedProgram.module() executes) is more than a check of input sizes."
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


class HydraTarget(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-042"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Model config names a callable its loader imports and calls"
    help: ClassVar[str] = (
        "A `_target_` (Hydra: NeMo's model_config.yaml, CVE-2025-23304), `class_path` (jsonargparse/LightningCLI), "
        "NeMo's `target` or Hydra 0.x `cls`, an ESPnet model.json `model_module`, a diffusers component library or "
        "custom code, a fiddle pyref "
        "(NeMo 2's io.json), transformers' auto_map or Hub attention kernel, a sentence-transformers modules.json "
        "`type` / Router `types` / activation path, a PEFT adapter's "
        "auto_mapping / megatron_core, a LeRobot processor step `class`, mmengine `custom_imports` or dotted "
        "registry `type` (mmcv's eval'd `nms` type), an ultralytics/YOLOv5 model YAML activation, layer function or "
        "eval'd layer argument, a pyannote pipeline/preprocessor `name`, or a LangChain `lc` secret/constructor "
        "names a dotted path that loading imports and calls. Severity follows the pickle allow-list's judgement of the "
        "same callable (critical for code execution). Control: allow-list of instantiation targets; do not "
        "load checkpoints from untrusted sources."
    )


class YamlPythonTag(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-043"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "YAML config carries a Python object tag"
    help: ClassVar[str] = (
        "A `!!python/object`, `!!python/object/apply`, `!!python/name` or `!!python/module` tag: `yaml.load` with "
        "the unsafe or full loader (older hparams.yaml readers, research code) imports and calls what it names. "
        "Likewise HyperPyYAML's `!new:`, `!apply:`, `!name:` and `!module:` tags, which SpeechBrain's "
        "`from_hparams` resolves when it reads hyperparams.yaml. "
        "Control: safe_load only; quarantine the artifact."
    )


class SkopsType(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-044"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "skops schema names a type or function outside the allow-list"
    help: ClassVar[str] = (
        "`skops.io.load` imports every `__module__.__class__` of schema.json, calls containers and "
        "ConstructorFromReduceNode types, hands functions (FunctionNode), bound methods (MethodNode) and "
        "`operator` callables (OperatorFuncNode) to the model (CVE-2025-54412, CVE-2025-54413). Severity follows "
        "the pickle allow-list's judgement of the same name. Control: load with an explicit trusted list."
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
        "model's folder: loading reads arbitrary files into the model (CVE-2024-27318 class); or it is "
        "onnxruntime's in-memory marker ('*/_ORT_MEM_ADDR_/*'), which reads process memory at the offset."
    )


class OnnxEpContextFile(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-053"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "ONNX EPContext node reads a file outside the model folder"
    help: ClassVar[str] = (
        "An onnxruntime EPContext node (com.microsoft) whose ep_cache_context (with embed_mode 0) or "
        "onnx_model_filename is absolute, contains '..', a drive letter, a backslash, a NUL byte, '~' or a URL, or "
        "resolves (through a link) outside the model's folder: the execution provider (OpenVINO, QNN, TensorRT, "
        "VitisAI) reads that file into its deserializer when the session is created."
    )


class DcpPathEscape(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-048"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Distributed checkpoint reads a file outside its folder"
    help: ClassVar[str] = (
        "A storage entry of a torch.distributed.checkpoint .metadata names a relative_path that is absolute, "
        "contains '..', a drive letter or a backslash, or resolves (through a link) outside the checkpoint "
        "folder: loading reads another file and torch.load()s its bytes (weights_only=False for non-tensor "
        "values). torch writes only the names of its own data files."
    )


class Hdf5ExternalData(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-045"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "HDF5 file reads data from other files"
    help: ClassVar[str] = (
        "A dataset with external storage, a virtual dataset mapping another file, or an external link: reading "
        "the weights (Keras' load_model and load_weights, h5py) opens a file outside the model, resolved from "
        "the working directory or an absolute path. Keras never writes these."
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


class MetadataCode(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-047"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = (
        "Model metadata is Python code that calls execution, process, network or file primitives"
    )
    help: ClassVar[str] = (
        "A safetensors, GGUF or ONNX metadata string parses as a Python program calling os.system, subprocess, eval, "
        "exec, __import__ ... Loaders never evaluate metadata, so nothing runs at load time; it is a payload for "
        "whatever evaluates it later. Control: never evaluate model metadata; review the artifact's origin."
    )


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


class TensorFlowOp(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-046"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "TensorFlow graph op with file-system, network or Python access"
    help: ClassVar[str] = (
        "A node of a SavedModel's or GraphDef's graph, or of a function in its library, runs an op that reads or "
        "writes files (ReadFile, WriteFile, readers, file datasets, summary writers, tf.print to a file, "
        "checkpoint ops outside the saver), calls Python (PyFunc, EagerPyFunc: critical) or reaches the "
        "network. It runs when the model is loaded or called. Control: do not load; review the graph."
    )


class PackageCode(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-050"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = (
        "torch.package or TorchServe archive ships Python source that spawns processes, runs code, or touches the "
        "network or files"
    )
    help: ClassVar[str] = (
        "torch.package's PackageImporter imports the modules a pickle names from the archive's own source and runs "
        "it (module-level code at import, methods when the loader or the model calls them). Each shipped source is "
        "parsed, never run, and its names resolved through imports, aliases, getattr, __import__ and namespace "
        "lookups: process spawn, exec/eval/compile, dynamic import, unpickling, interpreter internals and "
        "sys.modules are critical; network, file writes and deletes, ctypes and patching imported modules high; "
        "file reads, computed lookups and extern modules the scanner does not know medium. A TorchServe model "
        "archive's handler, model file and helpers (a zip, tgz or folder with MAR-INF/MANIFEST.json) are judged the "
        "same way: TorchServe imports them when the model is registered (reading its own model files is not "
        "reported). Control: do not load; review the packaged code."
    )


class ArchiveHiddenData(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-049"
    severity: ClassVar[Severity] = Severity.MEDIUM
    title: ClassVar[str] = "Unaccounted bytes between zip members"
    help: ClassVar[str] = "Bytes between members that no entry describes; scanned for hidden members."


class ArrowPickledExtension(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-051"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Arrow or Parquet schema field that pyarrow unpickles"
    help: ClassVar[str] = (
        "A field of extension type arrow.py_extension_type: pyarrow 0.14 to 14.0.0 unpickle its extension "
        "metadata when they read the schema (CVE-2023-47248), later releases up to 20 after "
        "PyExtensionType.set_auto_load(True). The pickle is not analysed. Control: do not read the file with an "
        "affected pyarrow; rewrite it without the extension type."
    )


class ConfigFilePath(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-052"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "Loader config sends the loader to a file outside the model folder"
    help: ClassVar[str] = (
        "A tokenizer_config.json key naming one of the tokenizer's files (vocab_file, merges_file, tokenizer_file, "
        "spm_file ...; transformers before 5 opened that path verbatim instead of the file in the model folder, "
        "and save_pretrained never writes these keys), or a datasets state.json data file or dataset_dict.json "
        "split that is absolute or climbs out with '..' (load_from_disk reads it), or an Orbax checkpoint "
        "parameter (_METADATA key, key of the legacy 'checkpoint' aggregate file) or a Flax multi-host "
        "'//GDAPlaceholder:' named by an absolute path (restoring opens that zarr array), or a TensorFlow "
        "'checkpoint' state file or DeepSpeed 'latest' file naming a checkpoint that is absolute or climbs out "
        "with '..': loading reads a local file into the tokenizer, the data set or the weights. Control: remove "
        "the key or entry; load with transformers 5; restore Orbax checkpoints with a target tree; rewrite the "
        "state file with names relative to the folder."
    )


class RPromise(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-060"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "R serialization carries a promise or an active binding"
    help: ClassVar[str] = (
        "An .rds/.rda file holds an unforced promise (PROMSXP), whose expression R evaluates when the loaded "
        "value is first used (CVE-2024-27322, fixed in R 4.4.0 only for readRDS of a bare promise). Critical when "
        "the code calls system/parse/... (see LW-MODEL-061), high when it calls more than arithmetic and "
        "constructors; a lazy constant, symbol or arithmetic argument, a forced promise and an active binding "
        "(whose function is judged as a closure) are info notes. Control: do not load; re-save from trusted code."
    )


class RCode(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-061"
    severity: ClassVar[Severity] = Severity.CRITICAL
    title: ClassVar[str] = "R closure, call or bytecode reaches commands, code evaluation, files or packages"
    help: ClassVar[str] = (
        "A function (CLOSXP), language object (LANGSXP, which update() evaluates) or bytecode in an .rds/.rda "
        "file calls system/system2/shell/pipe, eval/parse/source, do.call or get with a dangerous name, .Call/"
        ".External with a string entry, Sys.setenv, dyn.load (critical); connections, downloads and file "
        "writes (high); library/requireNamespace/loadNamespace (medium). It runs when the model's methods are "
        "called. Control: do not load; review the code."
    )


class RPackage(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-062"
    severity: ClassVar[Severity] = Severity.INFO
    title: ClassVar[str] = "R serialization loads packages"
    help: ClassVar[str] = (
        "Namespace, package-environment and ALTREP class references make readRDS/load load the named packages "
        "(and run their .onLoad hooks) when they are installed. A note: models reference their packages."
    )


class XmlExternal(Rule):
    rule_id: ClassVar[str] = "LW-MODEL-063"
    severity: ClassVar[Severity] = Severity.HIGH
    title: ClassVar[str] = "XML model file reads external entities, DTDs or XIncludes"
    help: ClassVar[str] = (
        "A PMML, OpenVINO IR or other XML model file declares an external entity, external parameter entity or "
        "external DTD (SYSTEM/PUBLIC; pypmml 1.5.8 reads file:// entities into the model and fetches http:// "
        "ones: XXE, SSRF), an XInclude (medium) or internal entities that expand past a bound (billion laughs, "
        "medium). Control: remove the DOCTYPE; parse with external entities and DTD loading off."
    )


RULES: Final[tuple[type[Rule], ...]] = (
    PickleExecCallable,
    PickleResolverCallable,
    PickleReentryCallable,
    PickleIoCallable,
    PickleNotAllowed,
    PickleUnknownClass,
    PickleAttributeTraversal,
    PickleDynamicCall,
    PickleGlobalTampering,
    PickleExtOpcode,
    PickleNested,
    PickleMalformed,
    PickleTrailingData,
    PickleDynamicGlobal,
    PickleTooManyFindings,
    PickleDunderState,
    TensorGeometry,
    PickleDenied,
    PickleStored,
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
    HydraTarget,
    YamlPythonTag,
    SkopsType,
    OnnxExternalData,
    OnnxEpContextFile,
    DcpPathEscape,
    Hdf5ExternalData,
    OnnxCustomDomain,
    TensorFlowOp,
    SafetensorsInvalid,
    SafetensorsMetadata,
    MetadataCode,
    GgufInvalid,
    TemplateInjection,
    NumpyObjectArray,
    ArchiveHiddenData,
    PackageCode,
    ArrowPickledExtension,
    ConfigFilePath,
    RPromise,
    RCode,
    RPackage,
    XmlExternal,
)
