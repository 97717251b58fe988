"""Keras model configs (``.keras`` zip ``config.json``, HDF5 ``model_config`` attribute) and other JSON
configs.

Loading a Keras config imports the modules it names and, for Lambda layers, unmarshals and runs Python
bytecode.
The walk reports Lambda layers, serialized Python functions, references outside the keras namespace, dangerous
Keras utilities and TensorFlow op lambdas that touch files; JSON configs with a ``chat_template`` have their
template analysed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

from loopwarden.checks.interface import ResourceLimitExceeded
from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext, json_safe
from loopwarden.checks.models.jsonbound import LARGE_JSON, parse_large
from loopwarden.checks.models.tokenizer_files import check_tokenizer_json, tokenizer_document
from loopwarden.domain import Location

__all__ = [
    "check_json_config",
    "check_json_document",
    "check_keras_config",
    "json_object_start",
    "scan_hdf5",
]

# Patterns are kept as text: re compiles and caches each on first use, so a scan that never needs one does not
# pay for compiling it when the module loads.
_SAFE_MODULE: Final = r"^(keras|tf_keras|tensorflow\.keras|keras_hub|keras_nlp|keras_cv)(\.|$)"
_DANGEROUS_NAMES: Final = (
    r"(^|[._>])(get_file|load_model|load_weights|exec|eval|system|popen|import_module|__import__|"
    r"read_file|write_file|ReadFile|WriteFile|py_function|numpy_function|py_func|getattr|open|"
    r"MatchingFiles|SaveV2|RestoreV2|enable_unsafe_deserialization)$"
)
_KERAS_CORE: Final = r"^(keras|tf_keras|tensorflow\.keras)(\.|$)"
_MODELLING_FUNCTIONS: Final = (
    r"^(keras|tf_keras|tensorflow\.keras)(\.src)?\.(activations|losses|metrics|initializers|regularizers|"
    r"constraints|ops|random|layers)(\.|$)"
)
"""The Keras modules whose functions a model is built from (activations, losses, metrics, initializers,
regularizers, constraints, ops, random, functional layer helpers). Keras 3.9+ writes its own functions as
``"module": "builtins"``, earlier versions under these modules; a ``"function"`` object named in any other Keras
module (``keras.utils``, ``keras.config``, ``keras.saving``, ``keras.models``, ``keras.backend``,
``keras.datasets``, ``keras.visualization``, ``keras.distribution``, ``keras.export`` ...) is a non-modelling API
that loading hands to the model, which calls it: file download and write, safe-mode switch, model loading,
network set-up. An allow-list, since Keras' own deny-list (``NON_MODELING_APIS``) has been extended after each
published bypass."""
_PREPROCESS: Final = r"^(keras|tf_keras|tensorflow\.keras)(\.src)?\.applications(\.[\w.]+)?$"
"""``keras.applications.<family>``: only its ``preprocess_input`` is a function models are built with."""
_FILE_MODULE: Final = r"^(keras|tf_keras|tensorflow\.keras)(\.src)?\.utils\.file_utils$"
"""Keras' file helpers (``rmtree``, ``remove``, ``copy``, ``makedirs``, ``File``, ``extract_archive``, and the
``urlretrieve`` it imports): nothing in them is a layer or a function a model is built from."""
_OBJECT_MARKERS: Final = frozenset({"function"})
"""Lower-case class names that Keras handles itself (dunder markers such as ``__tensor__`` start with '_')."""
_LOOKUP_LAYERS: Final = frozenset({"StringLookup", "IntegerLookup", "IndexLookup", "TextVectorization"})
_PATH_KEYS: Final = ("vocabulary", "merges", "proto", "idf_weights", "special_tokens", "language_tokens")
"""Arguments that lookup layers and keras_hub tokenizers read from a file (or URL) when given a string."""
MAX_CONFIG_NODES: Final = 2_000_000
_MAX_TEMPLATES: Final = 10_000
_JUDGED_JSON: Final = frozenset(
    {"config.json", "metadata.json", "tokenizer_config.json", "chat_template.json", "schema.json"}
)
"""JSON files that loaders interpret (Keras' config and metadata, transformers' configs and chat templates, skops'
schema): one that cannot be decoded and parsed is unverified, since another reader may still make sense of it."""
_JSON_SPACE: Final = " \t\n\r\ufeff"
_KERAS_CONFIG: Final = "config.json"
"""The member of a ``.keras`` archive (or file of a model folder) that ``keras.saving.load_model`` deserializes
whatever its top level is; other JSON documents are Keras configs only by their keys."""
_SCAN_CHUNK: Final = 1 << 20


def _parse(data: bytes) -> Any:
    """``json.loads`` on the bytes, as Keras reads its config: the encoding detected as
    ``json.detect_encoding`` does (UTF-8 with or without a BOM, UTF-16 and UTF-32 by BOM or by the NUL bytes of
    the first characters). Raises ValueError (undecodable or not JSON) or RecursionError (nested too deeply)."""
    return json.loads(data)


def json_object_start(blob: Blob, opens: str = "{") -> bool:
    """Whether ``blob`` decodes (as :func:`_parse` decodes it) to a JSON object: a ``{`` (or another of
    ``opens``) after any BOM and whitespace, however much of it there is."""
    import codecs

    head = blob.head(4096)
    first = head.lstrip()[:1]
    if first and first.decode("latin-1") in opens:
        return True  # the common case: UTF-8 without a BOM
    decoder = codecs.getincrementaldecoder(json.detect_encoding(head))("ignore")
    text = decoder.decode(head).lstrip(_JSON_SPACE)
    if text or len(head) < 4096:
        return text[:1] != "" and text[:1] in opens
    # only a BOM and whitespace so far: JSON may start after any amount of it
    decoder = codecs.getincrementaldecoder(json.detect_encoding(head))("ignore")
    with blob.open() as f:
        while chunk := f.read(_SCAN_CHUNK):
            text = decoder.decode(chunk).lstrip(_JSON_SPACE)
            if text:
                return text[0] in opens
    return False


def check_json_document(data: bytes, ctx: ScanContext, location: Location, name: str) -> None:
    """Parse a JSON document the way its loader does and analyse it (:func:`check_json_config`). A config that a
    loader interprets and that cannot be parsed is unverified."""
    try:
        if len(data) > LARGE_JSON:
            # bounded memory: a vocabulary's tokens and a merge list are validated, not built
            obj = parse_large(data, vocabulary=name.rsplit("/", 1)[-1].lower().endswith("vocab.json"))
        else:
            obj = _parse(data)
    except (ValueError, RecursionError) as exc:
        if name.rsplit("/", 1)[-1].lower() in _JUDGED_JSON:
            ctx.fail(location, f"JSON config cannot be decoded and parsed ({_why(exc)})")
        return
    from loopwarden.checks.models.configs import (
        check_config_bases,
        check_datasets_files,
        check_espnet_model_module,
        check_json_targets,
        check_langchain,
        check_lerobot_processor,
        check_mmengine_imports,
        check_orbax_metadata,
        check_registry_types,
        check_remote_code,
        check_sentence_transformers,
        check_tokenizer_files,
        is_registry_config,
        mentions_langchain,
        mentions_target,
    )

    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base.lower() == "tokenizer_config.json":
        check_tokenizer_files(obj, ctx, location)
    if tokenizer_document(obj):
        check_tokenizer_json(obj, ctx, location)
    check_datasets_files(obj, ctx, location, base.lower())
    check_orbax_metadata(obj, ctx, location, base.lower())
    if base in (".zarray", "zarr.json") and location.member is None:
        from loopwarden.checks.models.ocdbt import zarr_chunk_references

        ctx.references.extend(zarr_chunk_references(obj, location.path, base))
    if base.lower() == "model.json":
        check_espnet_model_module(obj, ctx, location)
    check_sentence_transformers(obj, ctx, location, name)
    check_remote_code(obj, ctx, location, name)
    if mentions_target(data):  # (the key may be escaped, or the text in UTF-16/32)
        check_json_targets(obj, ctx, location)
    check_lerobot_processor(obj, ctx, location)
    if isinstance(obj, dict) and "custom_imports" in obj:
        check_mmengine_imports(obj["custom_imports"], ctx, location)
    if is_registry_config(obj):
        check_registry_types(obj, ctx, location)
    if isinstance(obj, dict) and "_base_" in obj:
        base = obj["_base_"]
        check_config_bases("_base_", base if isinstance(base, list) else [base], ctx, location)
    if mentions_langchain(data):  # a LangChain serialization (langchain_core.load reads any JSON)
        check_langchain(obj, ctx, location)
    check_json_config(
        obj, ctx, location, raw=data, keras_file=name.rsplit("/", 1)[-1].lower() == _KERAS_CONFIG
    )


def _why(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]


def walk_config(obj: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    stack: list[tuple[str, Any]] = [(path, obj)]
    seen = 0
    while stack:
        p, cur = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_NODES:
            # fail closed: the nodes not visited could hold the Lambda layer
            raise ResourceLimitExceeded("max_config_nodes", f"config has more than {MAX_CONFIG_NODES} nodes")
        if isinstance(cur, dict):
            yield p, cur
            stack.extend((f"{p}/{k}", v) for k, v in cur.items())
        elif isinstance(cur, list):
            stack.extend((f"{p}/{i}", v) for i, v in enumerate(cur))


def check_keras_config(obj: Any, ctx: ScanContext, location: Location) -> None:
    """Report code-carrying constructs anywhere in a Keras (or TF-Keras) model config."""
    for path, node in walk_config(obj):
        cls = node.get("class_name")
        cfg = node.get("config")
        where = Location(location.path, location.member, line=None)
        if cls in ("Lambda", "__lambda__", "__function__"):
            ctx.add(
                rules.KerasLambda, f"{cls} at {path or '/'} carries serialized Python code", where, path=path
            )
        if node.get("function_type") == "lambda" or node.get("output_shape_type") == "lambda":
            ctx.add(rules.KerasLambda, f"lambda function at {path or '/'}", where, path=path)
        module = node.get("module")
        if isinstance(module, str) and module and not re.match(_SAFE_MODULE, module) and module != "builtins":
            ctx.add(
                rules.KerasReference,
                f"config at {path or '/'} imports module '{module[:200]}'",
                where,
                path=path,
                module=module[:200],
                class_name=json_safe(cls),
            )
        if (
            isinstance(module, str)
            and isinstance(cls, str)
            and re.match(_SAFE_MODULE, module)
            and (re.match(_FILE_MODULE, module) or _names_function(cls))
        ):
            # Keras 3.0-3.10 build an object of any name in a keras module, and a plain function comes back as
            # is: a Functional model then calls that "layer" with its node's arguments, safe mode or not
            # (keras.src.utils.file_utils.rmtree("/home/...")); legitimate configs name classes here.
            ctx.add(
                rules.KerasReference,
                f"config at {path or '/'} names the function '{cls[:200]}' of '{module[:100]}' as an object "
                "to build (a model calls it with its node's arguments)",
                where,
                path=path,
                module=module[:200],
                class_name=cls[:200],
            )
        if (
            isinstance(cls, str)
            and cls.rsplit(">", 1)[-1] == "TorchModuleWrapper"
            and isinstance(cfg, dict)
            and "module" in cfg
        ):
            # from_config torch.loads (weights_only=False) the base64 module in its config (CVE-2025-49655)
            ctx.add(
                rules.KerasReference,
                f"TorchModuleWrapper at {path or '/'} unpickles the torch module stored in its config",
                where,
                path=path,
            )
        if module == "builtins" and cls == "function" and not _keras_builtin(cfg):
            ctx.add(
                rules.KerasReference,
                f"builtins function '{json_safe(cfg)}' at {path or '/'}",
                where,
                path=path,
            )
        reg = node.get("registered_name")
        if isinstance(reg, str) and ">" in reg:
            pkg = reg.split(">", 1)[0]
            if not re.match(_SAFE_MODULE, pkg) and pkg not in ("Custom",):
                ctx.add(
                    rules.KerasReference,
                    f"registered object '{reg[:200]}' from package '{pkg[:100]}'",
                    where,
                    path=path,
                    registered_name=reg[:200],
                )
        # {"class_name": "function", "config": NAME, "module": M}: Keras looks NAME up in M and uses it
        if (
            cls == "function"
            and isinstance(cfg, str)
            and (
                re.search(_DANGEROUS_NAMES, cfg) or (isinstance(module, str) and _non_modelling(module, cfg))
            )
        ):
            ctx.add(
                rules.KerasReference,
                f"function '{cfg[:200]}' of module '{str(module)[:100]}' at {path or '/'}",
                where,
                path=path,
            )
        if (
            isinstance(cls, str)
            and (cls in _LOOKUP_LAYERS or cls.endswith("Tokenizer"))
            and isinstance(cfg, dict)
        ):
            for key in _PATH_KEYS:
                if isinstance(cfg.get(key), str):
                    ctx.add(
                        rules.KerasReference,
                        f"{cls} at {path or '/'} reads its {key} from the path '{cfg[key][:200]}' when loaded",
                        where,
                        path=path,
                    )
        for key in ("class_name", "registered_name", "function", "fn"):
            val = node.get(key)
            if key == "function" and isinstance(val, dict | list):
                continue
            if isinstance(val, str) and re.search(_DANGEROUS_NAMES, val):
                ctx.add(
                    rules.KerasReference, f"reference to '{val[:200]}' at {path or '/'}", where, path=path
                )
        if cls == "TFSMLayer" or (isinstance(cls, str) and cls.endswith(">TFSMLayer")):
            # loads the TensorFlow SavedModel at config["filepath"], even in safe mode; its graph runs at call
            # time and can read and write files (CVE-2026-1462)
            target = cfg.get("filepath") if isinstance(cfg, dict) else None
            shown = f"'{target[:200]}'" if isinstance(target, str) else "a path the config does not spell"
            ctx.add(
                rules.KerasReference,
                f"TFSMLayer at {path or '/'} loads the external SavedModel {shown} when the model is loaded",
                where,
                path=path,
            )
        if cls in ("TFOpLambda", "SlicingOpLambda") and isinstance(cfg, dict):
            fn = cfg.get("function")
            if isinstance(fn, str) and re.search(
                r"(^|\.)(io|raw_ops|debugging|py_function|numpy_function)", fn
            ):
                ctx.add(rules.KerasReference, f"TensorFlow op lambda calls '{fn[:200]}'", where, path=path)


def _non_modelling(module: str, name: str) -> bool:
    """Whether a ``"function"`` object names a function of a Keras module that models are not built from."""
    if not re.match(_KERAS_CORE, module) or re.match(_MODELLING_FUNCTIONS, module):
        return False
    return not (re.match(_PREPROCESS, module) and name == "preprocess_input")


def _keras_builtin(name: object) -> bool:
    """Whether a ``{"module": "builtins", "class_name": "function"}`` object names one of Keras' own functions:
    Keras writes its losses, metrics and activations that way (``model.compile(loss=keras.losses.
    mean_squared_error)``) and looks the name up in its own modules first; only Keras before 3.9 then falls back
    to Python's ``builtins`` (``exec``, ``eval``), and a name that is no Python builtin finds nothing there."""
    import builtins

    return isinstance(name, str) and name.isidentifier() and not hasattr(builtins, name)


def _names_function(cls: str) -> bool:
    """Whether a class name names a function rather than a class: classes are CapWords, functions are not."""
    last = cls.rsplit(".", 1)[-1]
    return cls not in _OBJECT_MARKERS and last[:1].islower()


def _strings(value: Any, key: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    """(key path, string) for every string in ``value`` (nested lists and dicts), bounded in depth and count."""
    if depth > 8:
        raise ResourceLimitExceeded("max_depth", f"{key} nested more than 8 levels")
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, list):
        if len(value) > _MAX_TEMPLATES:
            raise ResourceLimitExceeded("max_templates", f"{key} holds more than {_MAX_TEMPLATES} entries")
        for i, item in enumerate(value):
            name = item.get("name") if isinstance(item, dict) else None
            yield from _strings(item, f"{key}.{name}" if isinstance(name, str) else f"{key}[{i}]", depth + 1)
    elif isinstance(value, dict):
        if len(value) > _MAX_TEMPLATES:
            raise ResourceLimitExceeded("max_templates", f"{key} holds more than {_MAX_TEMPLATES} entries")
        for k, item in value.items():
            if k == "name" and isinstance(item, str) and depth > 0:
                continue  # the name of a {"name", "template"} entry, not a template
            yield from _strings(item, key if k == "template" else f"{key}.{k}", depth + 1)


def check_json_config(
    obj: Any, ctx: ScanContext, location: Location, raw: bytes | None = None, keras_file: bool = False
) -> None:
    """Analyse any JSON document that a loader interprets: Keras configs and chat templates. ``keras_file``: the
    document is named as the config Keras builds a model from (``config.json``), whatever its shape."""
    if not isinstance(obj, dict):
        if isinstance(obj, list):
            if keras_file and _holds_keras_object(obj):
                check_keras_config(obj, ctx, location)
            if raw is None or _may_hold_markup(raw):
                _embedded_templates(obj, ctx, location)
        return
    from loopwarden.checks.models.configs import (
        check_fiddle,
        check_skops_schema,
        is_fiddle_document,
        is_skops_schema,
    )

    # A document is judged as every loader that would take it reads it: skops' and fiddle's markers do not make
    # it any less a Keras config (Keras ignores keys it does not know and builds the "class_name"/"config"
    # objects of a config.json that also carries "__loader__"/"protocol" or "root"/"objects"/"refcounts").
    other = None
    if is_skops_schema(obj):
        check_skops_schema(obj, ctx, location)
        other = "skops"
    elif is_fiddle_document(obj):
        check_fiddle(obj, ctx, location)
        other = "fiddle"
    if "class_name" in obj or "keras_version" in obj or "model_config" in obj:
        cfg = obj.get("model_config", obj)
        if isinstance(cfg, str):
            try:
                cfg = _parse(cfg.encode("utf-8", "surrogatepass"))
            except (ValueError, RecursionError) as exc:
                if cfg.lstrip(_JSON_SPACE)[:1] in ("{", "["):
                    ctx.fail(location, f"model_config is not JSON ({_why(exc)})")
                cfg = None
        check_keras_config(cfg, ctx, location)
    elif isinstance(obj.get("config"), str):
        _config_string(obj["config"], ctx, location)
    elif keras_file and _holds_keras_object(obj):
        # Keras deserializes a config.json of any shape: a dict without "class_name" (or a list) is rebuilt value
        # by value, and every {"class_name", "config"} object in it is built (a TorchModuleWrapper unpickles its
        # module under safe_mode=False before the model turns out to be no model)
        check_keras_config(obj, ctx, location)
    if other is not None:
        return
    tmpl = obj.get("chat_template")
    if tmpl is not None:
        from loopwarden.checks.models.chat_template import check_template

        # A string, a list of {"name", "template"} (transformers' saved form) or a dict of name -> template
        # (accepted when loading): every string in it is judged as a template, whatever the shape.
        for key, text in _strings(tmpl, "chat_template"):
            check_template(text, ctx, location, key=key)
    if raw is None or _may_hold_markup(raw):
        _embedded_templates(obj, ctx, location)


def _holds_keras_object(obj: Any) -> bool:
    """Whether a JSON document holds, at any depth, an object of the shape Keras' ``deserialize_keras_object``
    builds: a dict with both ``class_name`` and ``config``. Keras rebuilds a ``config.json`` whatever its top level
    is (a dict without ``class_name`` value by value, a list item by item), so such an object anywhere is built."""
    return any("class_name" in node and "config" in node for _path, node in walk_config(obj))


def _config_string(text: str, ctx: ScanContext, location: Location) -> None:
    """``{"config": "<JSON text>"}``: Keras 3's Orbax checkpoints store the model config so, as the ``config`` of
    their ``model_config`` checkpointable (``<step>/model_config/_strings.json`` from Orbax's PyTree handler,
    ``data.json`` from its JSON handler); ``keras.saving.load_model`` on the checkpoint folder parses that string and
    builds the model from it, Lambda layers and imported modules included. It deserializes the parsed value
    whatever it is (``saving_lib._model_from_config``), so a JSON array whose items hold ``{"class_name",
    "config"}`` objects is built item by item too; a string that is neither an object nor such an array is no
    config Keras builds."""
    if text.lstrip(_JSON_SPACE)[:1] not in ("{", "["):
        return
    try:
        cfg = _parse(text.encode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        return  # Keras' json.loads fails the same way: nothing is built
    if isinstance(cfg, dict) or (isinstance(cfg, list) and _holds_keras_object(cfg)):
        check_keras_config(cfg, ctx, location)


_RAW_MARKUP: Final = rb"(?:\{|\\u007[bB])(?:[{%]|\\u007[bB]|\\u0025)"
"""Jinja markup (``{{``, ``{%``) in a JSON text, also with either character spelled as a JSON escape:
``\\u007b\\u007b`` and ``{\\u0025`` decode to markup too."""


def _may_hold_markup(raw: bytes) -> bool:
    """Whether a JSON text may decode to a string with Jinja markup. Only UTF-8 is searched as bytes; a text
    that is not (UTF-16 and UTF-32 decode to the same strings) is walked whatever it holds."""
    if json.detect_encoding(raw) not in ("utf-8", "utf-8-sig"):
        return True
    return re.search(_RAW_MARKUP, raw) is not None


_NOT_TEMPLATES: Final = frozenset({"chat_template"})
"""Top-level keys not walked: the chat template (judged strictly above)."""
_TOKENIZER_DATA: Final = frozenset({"vocab", "merges"})
"""What a tokenizer.json's ``model`` holds that is not walked (with the ``content`` of its ``added_tokens``):
hundreds of thousands of token strings that no application renders (code vocabularies hold ``{{``). The rest of
``model`` and of any other document's ``model`` is walked."""


def _embedded_templates(obj: dict[str, Any] | list[Any], ctx: ScanContext, location: Location) -> None:
    """Strings with Jinja markup anywhere else in the document (a ``prompt_template``, a serving config's
    templates): judged as templates an application may render, leniently (see check_embedded_template)."""
    from loopwarden.checks.models.chat_template import check_embedded_template

    # paths are kept as (parent, key) chains and spelled only for a string that is judged: a tokenizer.json
    # holds hundreds of thousands of values
    stack: list[tuple[Any, Any]] = []
    for k, v in obj.items() if isinstance(obj, dict) else enumerate(obj):
        if k in _NOT_TEMPLATES:
            continue
        if k == "model" and type(v) is dict:
            v = {mk: mv for mk, mv in v.items() if mk not in _TOKENIZER_DATA}
        elif k == "added_tokens" and type(v) is list:
            v = [{tk: tv for tk, tv in t.items() if tk != "content"} if type(t) is dict else t for t in v]
        stack.append(((None, k), v))
    budget = MAX_CONFIG_NODES
    while stack:
        if budget <= 0:
            # fail closed: a template behind a padding of nodes would go unread
            raise ResourceLimitExceeded(
                "max_config_nodes",
                f"JSON config has more than {MAX_CONFIG_NODES} nodes to search for templates",
            )
        path, value = stack.pop()
        budget -= 1
        if type(value) is str:
            if "{{" in value or "{%" in value:
                check_embedded_template(value, ctx, location, key=_spell(path))
        elif type(value) is dict:
            budget -= len(value)
            for k, v in value.items():
                # a key is text an application may render as well (a template naming its entry)
                if type(k) is str and ("{{" in k or "{%" in k):
                    check_embedded_template(k, ctx, location, key=_spell((path, k)) + " (key)")
                stack.append(((path, k), v))
        elif type(value) is list:
            budget -= len(value)
            stack.extend(((path, i), v) for i, v in enumerate(value))


def _spell(path: Any) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return "".join(reversed(parts)).lstrip(".")


def scan_hdf5(blob: Blob, ctx: ScanContext) -> None:
    """Keras HDF5: read the ``model_config`` attribute (and every string attribute) without loading layers."""
    try:
        import h5py  # type: ignore[import-untyped]
    except ImportError:
        ctx.fail(blob.location, "HDF5 file: install loopwarden[keras] (h5py) to analyse it")
        return
    from loopwarden.checks.models.dispatch import seekable_blob

    blob = seekable_blob(blob, ctx)
    try:
        with blob.open() as raw, h5py.File(raw, "r") as h5:
            attrs: list[tuple[str, Any]] = []

            def visit(name: str, obj: Any) -> None:
                ctx.check_time()
                for key, val in obj.attrs.items():
                    attrs.append((f"{name}/{key}", val))
                if isinstance(obj, h5py.Dataset):
                    _external_storage(name, obj, ctx, blob.location)
                    _shape_bomb(name, obj, ctx, blob.location)

            def visit_link(name: str, link: Any) -> None:
                if isinstance(link, h5py.ExternalLink):
                    _external(name, "external link to", link.filename, ctx, blob.location)

            for key, val in h5.attrs.items():
                attrs.append((key, val))
            h5.visititems(visit)
            h5.visititems_links(visit_link)
            for key, val in attrs:
                _check_attribute(key, val, ctx, blob.location)
    except OSError as exc:
        ctx.fail(blob.location, f"HDF5 file cannot be read ({exc})")


def _external_storage(name: str, ds: Any, ctx: ScanContext, location: Location) -> None:
    """A dataset whose bytes live in other files: external raw storage (resolved from the working directory or an
    absolute path) or a virtual dataset's sources ("." is the file itself)."""
    for entry in ds.external or ():
        _external(name, "external storage in", entry[0], ctx, location)
    if ds.is_virtual:
        for source in ds.virtual_sources():
            if source.file_name != ".":
                _external(name, "virtual dataset over", source.file_name, ctx, location)


_BOMB_FLOOR: Final = 1 << 32
_BOMB_EXPANSION: Final = 1000


def _shape_bomb(name: str, ds: Any, ctx: ScanContext, location: Location) -> None:
    """A dataset declaring far more bytes than it stores (chunks never written, a fill value): reading it allocates
    the declared size (GHSA-xfhx-r7ww-5995). Judged as Keras 3.13.2+ judges it before loading weights (above 4 GiB
    and more than 1000 times the stored bytes: keras PR 22975); like a zip bomb, the file is unverified."""
    declared = ds.dtype.itemsize
    for n in ds.shape or ():
        declared *= n
    if declared <= _BOMB_FLOOR:
        return
    stored = ds.id.get_storage_size()
    if declared > _BOMB_EXPANSION * stored:
        ctx.fail(
            location,
            f"resource limit 'max_decompression_ratio' reached: HDF5 dataset '{name[:200]}' declares {declared} "
            f"bytes and stores {stored} (shape bomb)",
        )


def _external(name: str, what: str, target: Any, ctx: ScanContext, location: Location) -> None:
    shown = target.decode("utf-8", "replace") if isinstance(target, bytes) else str(target)
    ctx.add(
        rules.Hdf5ExternalData,
        f"'{name[:200]}' is {what} '{shown[:200]}': reading it opens that file",
        location,
        object=name[:200],
        target=shown[:200],
    )


def _check_attribute(key: str, val: Any, ctx: ScanContext, location: Location) -> None:
    """One HDF5 attribute: Keras parses ``model_config`` and ``training_config`` as JSON (bytes decoded as
    UTF-8; a BOM or another encoding makes it fail, but the content is judged either way); other string
    attributes that hold JSON are judged as JSON configs."""
    config = key.rsplit("/", 1)[-1] in ("model_config", "training_config")
    if isinstance(val, bytes):
        data = val
    elif isinstance(val, str):
        data = val.encode("utf-8", "surrogatepass")
    else:
        if config:
            ctx.fail(location, f"HDF5 attribute {key[:200]} is not a string")
        return
    if not config and b"{" not in data:
        return
    try:
        obj = _parse(data)
    except (ValueError, RecursionError) as exc:
        if config:
            ctx.fail(location, f"HDF5 attribute {key[:200]} is not JSON ({_why(exc)})")
        return
    if config:
        check_keras_config(obj, ctx, location)
    else:
        check_json_config(obj, ctx, location)
