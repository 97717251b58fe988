"""Configs that name code for their loader to build: Hydra ``_target_`` keys in YAML, Python tags in YAML, skops
schemas.

None of these formats is a pickle, yet each names importable callables that loading runs:

* NeMo's ``restore_from`` (and every Hydra/OmegaConf-based checkpoint loader) calls ``hydra.utils.instantiate`` on
  the archive's ``model_config.yaml``: each mapping with a ``_target_`` key imports that dotted path and calls it
  with the mapping's other keys (CVE-2025-23304).
* ``yaml.load`` with the unsafe or full loader (older PyTorch Lightning ``hparams.yaml`` readers, research code)
  runs ``!!python/object/apply:os.system``-style tags.
* ``skops.io.load`` rebuilds objects from ``schema.json``: every node imports ``__module__.__class__``, some call
  it with arguments, ``MethodNode`` reads an attribute by name and ``OperatorFuncNode`` builds
  ``operator.methodcaller`` and friends (CVE-2025-54412, CVE-2025-54413).

Each dotted name is judged by the pickle allow-list (:class:`~loopwarden.checks.models.allowlist.AllowList`), so a
callable is reported here exactly when the same callable in a pickle would be. Nothing is imported or constructed:
YAML is only composed into its node graph, JSON only decoded.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final

from loopwarden.checks.interface import ResourceLimitExceeded
from loopwarden.checks.models import rules
from loopwarden.checks.models._base import ScanContext, json_safe
from loopwarden.checks.models.allowlist import AllowList, Classification
from loopwarden.checks.models.keras import MAX_CONFIG_NODES, walk_config
from loopwarden.domain import Location, Severity

if TYPE_CHECKING:
    import ast

__all__ = [
    "check_config_bases",
    "check_custom_generate",
    "check_datasets_files",
    "check_deepspeed_latest",
    "check_espnet_model_module",
    "check_fiddle",
    "check_json_targets",
    "check_langchain",
    "check_lerobot_processor",
    "check_loading_script",
    "check_metadata_targets",
    "check_mmengine_imports",
    "check_orbax_metadata",
    "check_registry_types",
    "check_remote_code",
    "check_sentence_transformers",
    "check_skops_schema",
    "check_tf_checkpoint_state",
    "check_tokenizer_files",
    "check_ultralytics_activation",
    "check_yaml_document",
    "is_fiddle_document",
    "is_registry_config",
    "is_skops_schema",
    "judge_dotted",
    "mentions_langchain",
    "mentions_target",
    "replaces_folder",
]

"""Nodes visited per document; a config is a few thousand at most."""

_HYDRA_PACKAGES: Final = frozenset(
    {
        "nemo",
        "torch",
        "lightning",
        "pytorch_lightning",
        "transformers",
        "torchvision",
        "torchaudio",
        "megatron",
    }
)
"""Packages whose classes Hydra-configured checkpoints name as a matter of course (a ``.nemo`` file builds NeMo and
torch modules): a class there is accepted as a ``_target_`` unless the allow-list knows it as dangerous."""
_CLASS_NAME: Final = re.compile(r"[A-Z][A-Za-z0-9_]*\Z")
_DOTTED: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")
_PY_TAG: Final = "tag:yaml.org,2002:python/"
_TARGET_KEYS: Final = frozenset({"_target_", "class_path"})
"""Keys whose value a loader imports and calls with the mapping's other keys: Hydra's ``_target_`` and the
``class_path`` (with ``init_args``) of jsonargparse, which LightningCLI configs saved next to checkpoints use."""


def judge_dotted(allow: AllowList, dotted: str, *, called: bool) -> Classification:
    """The allow-list's verdict on a callable named by a dotted path whose module part is not marked.

    Loaders that take such paths (Hydra's ``_locate``, skops' ``gettype``) import the longest importable prefix
    and read the rest as attributes, so every split is judged: a split the allow-list knows as dangerous wins;
    otherwise the name is accepted when a split is allowed (by an exact entry when ``called``, as a REDUCE in a
    pickle would need).
    """
    parts = dotted.split(".")
    verdicts = [
        allow.classify(".".join(parts[:i]), ".".join(parts[i:])) for i in range(len(parts) - 1, 0, -1)
    ]
    dangerous = [c for c in verdicts if c.category is not None]
    if dangerous:
        return max(dangerous, key=lambda c: c.severity or Severity.INFO)
    for c in verdicts:
        if c.allowed and not (called and c.by_pattern):
            return c
    return (
        verdicts[0] if verdicts else Classification(False, "LW-MODEL-005", Severity.HIGH, None, "bare name")
    )


# ------------------------------------------------------------------------------------------------------- YAML


def _compose(data: bytes | str) -> list[Any]:
    """The node graphs of every document in ``data``, composed by PyYAML's safe loader (no object is built)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(data)
    try:
        roots = []
        while loader.check_node():
            roots.append(loader.get_node())
    finally:
        loader.dispose()
    return roots


def check_yaml_document(data: bytes, ctx: ScanContext, location: Location, name: str = "") -> None:
    """Compose a YAML document (no object is constructed) and report Python tags and Hydra ``_target_`` keys.

    In NeMo's ``model_config.yaml`` the top-level ``target`` key is a callable too: ``restore_from`` imports it
    and calls it with the config (``import_class_by_path(cfg.target)(cfg=..., trainer=...)``)."""
    import yaml

    try:
        roots = _compose(data)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        ctx.fail(location, f"YAML config cannot be parsed ({_first_line(exc)})")
        return
    if name.rsplit("/", 1)[-1] == "MLmodel":
        _mlflow_loader(roots, ctx, location)
    for root in roots:
        _yaml_registry_types(root, ctx, location)
        _pyannote_pipeline(root, ctx, location)
        imports = _yaml_get(root, "custom_imports")
        if imports is not None:
            check_mmengine_imports(_yaml_names(imports), ctx, location)
        if _yaml_get(root, "backbone") is not None and _yaml_get(root, "head") is not None:
            _ultralytics_model(root, ctx, location)
        for key in ("_BASE_", "_base_"):
            base = _yaml_get(root, key)
            if isinstance(base, yaml.ScalarNode):
                check_config_bases(key, [base.value], ctx, location)
            elif isinstance(base, yaml.SequenceNode):
                check_config_bases(
                    key, [n.value for n in base.value if isinstance(n, yaml.ScalarNode)], ctx, location
                )
    nemo = name.rsplit("/", 1)[-1].lower() == "model_config.yaml"
    if nemo:
        for root in roots:
            for key, value in _yaml_pairs(root):
                if isinstance(key, yaml.ScalarNode) and key.value == "target":
                    _hydra_target(value, ctx, location, key="target")
    seen: set[int] = set()
    count = 0
    stack: list[Any] = list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue  # an alias: its node was (or will be) visited once; billion-laughs graphs stay linear
        seen.add(id(node))
        count += 1
        if count > MAX_CONFIG_NODES:
            # fail closed: the nodes not visited could hold a _target_
            raise ResourceLimitExceeded(
                "max_config_nodes", f"YAML config has more than {MAX_CONFIG_NODES} nodes"
            )
        tag = node.tag or ""
        if tag.startswith(_PY_TAG):
            if tag[len(_PY_TAG) :] in _PARTIAL_TAGS:
                _partial_tag(node, ctx, location)
            else:
                _python_tag(tag[len(_PY_TAG) :], ctx, location)
        elif tag.startswith(_HYPERPYYAML_PREFIXES):
            _hyperpyyaml_tag(tag, ctx, location)
        elif tag in _HYPERPYYAML_REF_TAGS and isinstance(node, yaml.ScalarNode) and "<" in node.value:
            _hyperpyyaml_arithmetic(node.value, roots, ctx, location)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value in _TARGET_KEYS:
                    _hydra_target(value, ctx, location, key=key.value)
                elif isinstance(key, yaml.ScalarNode) and key.value in _NEMO_LEGACY_KEYS:
                    _nemo_legacy_target(node, key.value, value, ctx, location, nemo=nemo, roots=roots)
                stack.append(key)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, yaml.ScalarNode) and ("{{" in node.value or "{%" in node.value):
            # a chat template or prompt template of a serving or training config: an application renders it
            from loopwarden.checks.models.chat_template import check_embedded_template

            check_embedded_template(node.value, ctx, location, key=f"line {node.start_mark.line + 1}")


_NEMO_LEGACY_KEYS: Final = frozenset({"cls", "target"})
"""Keys of a nested mapping that NeMo (before 2.4) imports and calls: ``Serialization.from_config_dict``, which
builds every sub-module of a model (``preprocessor``, ``encoder``, ``decoder`` ...), first converts Hydra 0.x configs
(``maybe_update_config_version``: ``cls`` becomes ``_target_`` in every mapping, ``params`` are moved up) and
instantiates them, and for a mapping with ``target`` but no ``_target_`` imports that path and calls it with
``cfg=``."""


def _nemo_legacy_target(
    mapping: Any, key: str, value: Any, ctx: ScanContext, location: Location, *, nemo: bool, roots: list[Any]
) -> None:
    """A Hydra 0.x ``cls`` (in any YAML config, as NeMo converts it wherever it is) or, in a NeMo
    ``model_config.yaml``, a nested ``target``: judged as a ``_target_`` is. Other tools' configs use these words
    for plain values (``cls: token``), so only a dotted name is judged, or a bare one beside Hydra 0.x's ``params``
    or in a NeMo config (Hydra's ``_locate`` imports a bare name as a module)."""
    import yaml

    if (
        not isinstance(value, yaml.ScalarNode)
        or value.tag != "tag:yaml.org,2002:str"  # cls: true, target: 1 are not names
        or not _DOTTED.match(value.value.strip())
    ):
        return
    bare = "." not in value.value
    if key == "target":
        # NeMo's import_class_by_path needs a module part; the root's target is judged on its own
        if not nemo or bare or any(mapping is r for r in roots):
            return
    elif _yaml_get(mapping, "_target_") is not None:
        return  # not converted: a keyword argument of that _target_
    elif bare and not nemo and _yaml_get(mapping, "params") is None:
        return
    _judge_target(str(value.value), ctx, location, key)


def _mlflow_loader(roots: list[Any], ctx: ScanContext, location: Location) -> None:
    """MLflow's ``MLmodel``: ``mlflow.pyfunc.load_model`` puts the flavor's ``code`` folders of the model on
    ``sys.path`` (in front), imports ``loader_module`` and calls its ``_load_pyfunc``. MLflow's own flavors load with
    ``mlflow.<flavor>``; any other loader module, and any code folder, is Python the model brings (medium: that code
    is not analysed)."""
    import yaml

    for root in roots:
        flavors = _yaml_get(root, "flavors")
        pyfunc = _yaml_get(flavors, "python_function") if flavors is not None else None
        if pyfunc is None:
            continue
        loader = _yaml_get(pyfunc, "loader_module")
        if loader is not None:
            module = str(loader.value).strip() if isinstance(loader, yaml.ScalarNode) else "?"
            if not (module == "mlflow" or module.startswith("mlflow.")) or not _DOTTED.match(module):
                ctx.add_severity(
                    rules.HydraTarget,
                    Severity.MEDIUM,
                    f"MLmodel loader_module '{module[:200]}': mlflow.pyfunc.load_model imports it and calls its "
                    "_load_pyfunc; that code is not analysed",
                    location,
                    target=module[:200],
                )
        code = _yaml_get(pyfunc, "code")
        if code is not None and not (isinstance(code, yaml.ScalarNode) and code.value in ("", "null", "~")):
            ctx.add_severity(
                rules.HydraTarget,
                Severity.MEDIUM,
                "MLmodel python_function code: mlflow.pyfunc.load_model puts the model's own code folders on "
                "sys.path before importing its loader; that code is not analysed",
                location,
                target="code",
            )


_PYANNOTE_PACKAGES: Final = frozenset({"pyannote", *_HYDRA_PACKAGES})


def _pyannote_pipeline(root: Any, ctx: ScanContext, location: Location) -> None:
    """A pyannote.audio pipeline's ``config.yaml``: ``Pipeline.from_pretrained`` imports the class its
    ``pipeline.name`` names (``get_class_by_name``: a dotted path, or a name of ``pyannote.pipeline.blocks``) and calls
    it with ``pipeline.params``, then does the same for each ``preprocessors`` entry's ``name`` (a name alone is one
    of ``pyannote.audio``) with its ``params``, with no opt-in (confirmed with pyannote.audio 4.0.7). A class of
    pyannote (or of the packages Hydra targets may name) is accepted unless the allow-list knows it as dangerous;
    any other dotted name is judged by the allow-list and high unless allowed exactly."""
    import yaml

    pipeline = _yaml_get(root, "pipeline")
    name = _yaml_get(pipeline, "name")
    if name is None:
        return
    refs: list[tuple[str, Any]] = [("pipeline.name", name)]
    preprocessors = _yaml_get(root, "preprocessors")
    if isinstance(preprocessors, yaml.MappingNode):
        for key, value in _yaml_pairs(preprocessors)[:MAX_CONFIG_NODES]:
            ref = _yaml_get(value, "name")
            if ref is not None:
                refs.append((f"preprocessors.{getattr(key, 'value', '?')}.name", ref))
    reported = 0
    for where, node in refs:
        text = node.value if isinstance(node, yaml.ScalarNode) else None
        if isinstance(text, str) and "." not in text and _DOTTED.match(text):
            continue  # a class of pyannote's own module
        if isinstance(text, str) and _DOTTED.match(text):
            c = judge_dotted(ctx.allow, text, called=True)
            parts = text.split(".")
            if c.category is None and (
                (parts[0] in _PYANNOTE_PACKAGES and _CLASS_NAME.match(parts[-1]))
                or (c.allowed and not c.by_pattern)
            ):
                continue
            severity, why, category = max(c.severity or Severity.HIGH, Severity.HIGH), c.reason, c.category
        else:
            severity, why, category = Severity.HIGH, "not a dotted name the scanner can judge", None
        reported += 1
        if reported > _MAX_REMOTE_REFS:
            return
        shown = str(text)[:200]
        ctx.add_severity(
            rules.HydraTarget,
            severity,
            f"pyannote {where} '{shown}': Pipeline.from_pretrained imports it and calls it with its params "
            f"({why or 'not on the allow-list'})",
            location,
            target=shown,
            category=category,
        )


_YAML_MERGE: Final = "tag:yaml.org,2002:merge"


def _yaml_pairs(node: Any, memo: dict[int, list[tuple[Any, Any]]] | None = None) -> list[tuple[Any, Any]]:
    """The key/value pairs of a mapping node as PyYAML's constructor sees them: ``<<`` merge keys flattened (the
    merged mappings' pairs first, earlier mappings of a merged list winning over later ones) and the node's own pairs
    after them. A loader builds a dict from these in order, so for a repeated key the last pair is the one it uses;
    only that one is kept (a merge-key bomb, mappings merging lists of each other, stays linear: each mapping is
    flattened once, to at most one pair per key). Anything but a mapping has none."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return []
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = []  # a mapping merging itself: PyYAML refuses it; nothing more to read here
    merged: list[tuple[Any, Any]] = []
    own: list[tuple[Any, Any]] = []
    for k, v in node.value:
        if getattr(k, "tag", None) != _YAML_MERGE:
            own.append((k, v))
        elif isinstance(v, yaml.MappingNode):
            merged.extend(_yaml_pairs(v, memo))
        elif isinstance(v, yaml.SequenceNode):
            for sub in reversed(v.value):
                merged.extend(_yaml_pairs(sub, memo))
    last: dict[tuple[str, Any], tuple[Any, Any]] = {}
    for k, v in merged + own:
        key = ("scalar", k.value) if isinstance(k, yaml.ScalarNode) else ("node", id(k))
        last.pop(key, None)
        last[key] = (k, v)
    memo[id(node)] = pairs = list(last.values())
    return pairs


def _yaml_get(node: Any, key: str) -> Any:
    """The value a YAML loader gives ``key`` of a mapping node: the last of its pairs, merge keys included (a
    checker reading the first one would judge a value the loader discards)."""
    import yaml

    found = None
    for k, v in _yaml_pairs(node):
        if isinstance(k, yaml.ScalarNode) and k.value == key:
            found = v
    return found


def _yaml_names(node: Any) -> Any:
    """A ``custom_imports`` node as plain values: ``{"imports": [names]}`` (a scalar as its text; anything else
    as a node, which the judge reports as not a name)."""
    import yaml

    imports = _yaml_get(node, "imports")
    if imports is None:
        return {} if isinstance(node, yaml.MappingNode) else node
    if isinstance(imports, yaml.SequenceNode):
        return {"imports": [n.value if isinstance(n, yaml.ScalarNode) else n for n in imports.value]}
    return {"imports": imports.value if isinstance(imports, yaml.ScalarNode) else imports}


_PLAIN_PY_TAGS: Final = frozenset(
    {"none", "bool", "int", "long", "float", "complex", "str", "unicode", "bytes", "list", "tuple", "dict"}
)
"""Tags PyYAML's full loader turns into plain values (Lightning writes ``!!python/tuple`` in hparams.yaml)."""
_OBJECT_TAGS: Final = (("object/apply:", True), ("object/new:", False), ("object:", False), ("name:", False))
"""Tags naming a callable: ``apply`` calls it with the node's arguments; ``new``/``object`` create the instance
with ``cls.__new__`` and set its state (like NEWOBJ + BUILD); ``name`` hands out the object itself."""


_PARTIAL_TAGS: Final = frozenset({"object/apply:functools.partial", "object/new:functools.partial"})
"""How PyYAML's dumper writes a ``functools.partial`` (Lightning's hparams.yaml of ``save_hyperparameters()`` with
an optimizer factory): ``partial(*args)``, then ``partial.__setstate__(state)``. Building one calls nothing; its
function, the first of ``args`` and of ``state``, is called later by the application (see :func:`_partial_tag`)."""


def _partial_tag(node: Any, ctx: ScanContext, location: Location) -> None:
    """A ``functools.partial`` tag: the partial is accepted, and the function it wraps is judged as called.

    Its function can only be a callable another node builds: a ``!!python/name`` tag (judged here as a callable the
    application will call, besides the walk's judgment of the tag as a name) or another object tag (judged by the
    walk). A plain string, list or mapping there makes ``partial`` raise."""
    import yaml

    firsts: list[Any] = []
    if isinstance(node, yaml.SequenceNode):
        firsts = node.value[:1]
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if (
                isinstance(key, yaml.ScalarNode)
                and key.value in ("args", "state")
                and isinstance(value, yaml.SequenceNode)
            ):
                firsts.extend(value.value[:1])
    for first in firsts:
        tag = first.tag or ""
        if not tag.startswith(_PY_TAG + "name:"):
            continue
        name = tag[len(_PY_TAG) + 5 :]
        if not (_DOTTED.match(name) and "." in name):
            continue  # judged by the walk (not a dotted name: reported there)
        c = judge_dotted(ctx.allow, name, called=True)
        if c.allowed or not judge_dotted(ctx.allow, name, called=False).allowed:
            continue  # allowed, or reported by the walk as a name already
        ctx.add_severity(
            rules.YamlPythonTag,
            c.severity or Severity.HIGH,
            f"YAML tag !!python/name:{name[:200]} is the function of a functools.partial: the application calls it "
            f"({c.reason or 'not on the allow-list'})",
            location,
            tag=f"name:{name[:200]}",
        )


def _python_tag(kind: str, ctx: ScanContext, location: Location) -> None:
    if kind in _PLAIN_PY_TAGS:
        return
    for prefix, called in _OBJECT_TAGS:
        if kind.startswith(prefix):
            name = kind[len(prefix) :]
            if _DOTTED.match(name) and "." in name:
                c = judge_dotted(ctx.allow, name, called=called)
                if c.allowed:
                    return
                severity, why = c.severity or Severity.HIGH, c.reason or "not on the allow-list"
            else:
                severity, why = Severity.HIGH, "not a dotted name the scanner can judge"
            break
    else:
        # python/module:X imports X; anything else is unknown to PyYAML and fails to load (reported anyway)
        severity, why = (
            Severity.HIGH,
            "imports a module" if kind.startswith("module:") else "unknown Python tag",
        )
    ctx.add_severity(
        rules.YamlPythonTag,
        severity,
        f"YAML tag !!python/{kind[:200]}: an unsafe or full yaml loader imports what it names ({why})",
        location,
        tag=kind[:200],
    )


_HYPERPYYAML_TAGS: Final = {
    "!new:": True,
    "!apply:": True,
    "!applyref:": True,
    "!name:": False,
    "!module:": False,
}
"""HyperPyYAML's tags (SpeechBrain's ``hyperparams.yaml``, read by ``from_hparams``): ``!new:`` calls the class with
the node's arguments and ``!apply:``/``!applyref:`` call the function, all while the file is read; ``!name:`` hands
out a ``functools.partial`` of it (called later by the model code) and ``!module:`` imports the module. Names are
resolved with ``pydoc.locate``: a dotted path, a top-level module, or a builtin (``!apply:eval``)."""
_HYPERPYYAML_PREFIXES: Final = (*_HYPERPYYAML_TAGS, "!include:")
_HYPERPYYAML_PACKAGES: Final = frozenset({"speechbrain", "torch", "torchaudio"})
"""Packages whose classes SpeechBrain's own hyperparameter files build as a matter of course (models, feature
extractors, ``Pretrainer``): a class there, or a function handed out by ``!name:``, is accepted unless the
allow-list knows it as dangerous."""


def _hyperpyyaml_tag(tag: str, ctx: ScanContext, location: Location) -> None:
    import builtins

    prefix = next(p for p in _HYPERPYYAML_PREFIXES if tag.startswith(p))
    if prefix == "!include:":
        # the included YAML is read (its tags run) from beside the including file; one elsewhere is not scanned
        path = tag[len(prefix) :].replace("\\", "/")
        if path.startswith("/") or ".." in path.split("/") or re.match(r"[A-Za-z]:", path):
            ctx.add_severity(
                rules.YamlPythonTag,
                Severity.HIGH,
                f"YAML tag {tag[:200]}: HyperPyYAML reads and runs that YAML file, which lies outside the model "
                "folder (not scanned)",
                location,
                tag=tag[:200],
            )
        return
    name, called = tag[len(prefix) :].strip(), _HYPERPYYAML_TAGS[prefix]
    if _DOTTED.match(name) and "." not in name and prefix != "!module:":
        if hasattr(builtins, name):
            name = f"builtins.{name}"  # pydoc.locate falls back to builtins
        else:
            prefix = "!module:"  # pydoc.locate imports the module and hands it out
    if not _DOTTED.match(name):
        severity, why = Severity.HIGH, "not a dotted name the scanner can judge"
    else:
        c = (
            judge_dotted(ctx.allow, name, called=called)
            if "." in name
            else Classification(False, "LW-MODEL-005", Severity.HIGH, None, "a module")
        )
        parts = name.split(".")
        if c.category is None and (
            (c.allowed and prefix != "!module:")
            or (
                parts[0] in _HYPERPYYAML_PACKAGES
                and (prefix in ("!name:", "!module:") or _CLASS_NAME.match(parts[-1]))
            )
        ):
            return
        severity, why = c.severity or Severity.HIGH, c.reason or "not on the allow-list"
    action = "imports" if prefix == "!module:" else "hands out" if prefix == "!name:" else "calls"
    ctx.add_severity(
        rules.YamlPythonTag,
        severity,
        f"YAML tag {tag[:200]}: HyperPyYAML (SpeechBrain's hparams loader) {action} what it names ({why})",
        location,
        tag=tag[:200],
    )


_HYPERPYYAML_REF_TAGS: Final = frozenset({"!ref", "!copy"})
_REF: Final = re.compile(r"<[^>]*>")
_ARITHMETIC_BITS: Final = 1 << 16
"""Largest result of a ``!ref`` expression, in bits (or characters, for a repeated string), judged harmless: real
hyperparameter files compute sizes and rates far below it."""


def _hyperpyyaml_arithmetic(text: str, roots: list[Any], ctx: ScanContext, location: Location) -> None:
    """HyperPyYAML resolves a ``!ref`` (or ``!copy``) value that interpolates references (``<a> ** <b>``) by
    substituting their values and evaluating the result as arithmetic (``parse_arithmetic``: ``+ - * / // % **`` on
    constants, while the file is read). ``<a> ** <a> ** <a> ** <a>`` with ``a: 9`` did not finish (hyperpyyaml
    1.2.3), and a string times a huge count takes all memory: the loader never returns. The expression is evaluated
    here on magnitudes only (bits of a number, length of a string); one that exceeds :data:`_ARITHMETIC_BITS` makes
    the file unverified, as a loader crash does."""
    import ast

    values = _hyperpyyaml_scalars(roots)
    expr = text
    for _ in range(16):  # references whose values hold references, as recursive_resolve follows them
        if not _REF.search(expr):
            break
        if _REF.fullmatch(expr.strip()):
            expr = values.get(expr.strip()[1:-1].strip(), "")
            continue
        expr = _REF.sub(lambda m: values.get(m.group(0)[1:-1].strip(), "0"), expr)
    try:
        tree = ast.parse(expr.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError):
        return  # returned as the string it is
    try:
        size = _magnitude(tree, 0)
    except (TypeError, RecursionError):
        return
    if size is not None and size[0] > _ARITHMETIC_BITS:
        ctx.fail(
            location,
            f"HyperPyYAML !ref expression '{text[:120]}' evaluates, while the file is read, to a "
            f"{'string' if size[1] else 'number'} of about {min(size[0], 10**18):.3g} "
            f"{'characters' if size[1] else 'bits'} (the loader does not return)",
        )


def _hyperpyyaml_scalars(roots: list[Any]) -> dict[str, str]:
    """Scalar values by HyperPyYAML reference path (``a``, ``a[b]``), from the document's mappings."""
    import yaml

    out: dict[str, str] = {}
    todo: list[tuple[str, Any]] = [("", r) for r in roots[:1]]
    while todo and len(out) < 100_000:
        prefix, node = todo.pop()
        if not isinstance(node, yaml.MappingNode):
            continue
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            name = f"{prefix}[{key.value}]" if prefix else key.value
            if isinstance(value, yaml.ScalarNode):
                out.setdefault(name, value.value)
            elif prefix.count("[") < 8:
                todo.append((name, value))
    return out


def _magnitude(node: Any, depth: int) -> tuple[float, bool] | None:
    """(bits of a number, or length of a string; whether a string) of what ``_ast_eval`` makes of ``node``, or None
    for what it refuses or cannot size. Raises TypeError where ``_ast_eval`` would."""
    import ast
    import math

    if depth > 200:
        raise RecursionError
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, str):
            return float(len(v)), True
        if isinstance(v, bool) or v is None:
            return 1.0, False
        if isinstance(v, (int, float)):
            return (math.log2(abs(v) + 1) + 1 if math.isfinite(v) else 1024.0), False
        return None
    if isinstance(node, ast.UnaryOp):
        return _magnitude(node.operand, depth + 1)
    if not isinstance(node, ast.BinOp):
        raise TypeError(node)
    left, right = _magnitude(node.left, depth + 1), _magnitude(node.right, depth + 1)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Pow):
        if left[1] or right[1]:
            return None
        # |a ** b| has about b * log2|a| bits; b is known only as a size, so take its largest value
        exponent = 2.0 ** min(right[0], 1023.0)
        return min(left[0] * exponent, 1e300), False
    if isinstance(node.op, ast.Mult):
        if left[1] != right[1]:  # a string repeated
            text, count = (left, right) if left[1] else (right, left)
            return min(text[0] * 2.0 ** min(count[0], 1023.0), 1e300), True
        return left[0] + right[0], left[1]
    if isinstance(node.op, (ast.Add, ast.Sub)):
        return max(left[0], right[0]) + (0 if left[1] else 1), left[1]
    return max(left[0], right[0]), left[1]


_LOADER_OF: Final = {
    "target": "NeMo",
    "class_path": "jsonargparse",
    "cls": "Hydra 0.x (NeMo)",
    "model_module": "ESPnet model.json",
}


def _hydra_target(node: Any, ctx: ScanContext, location: Location, key: str = "_target_") -> None:
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        ctx.add_severity(
            rules.HydraTarget, Severity.HIGH, f"Hydra {key} is not a plain name", location, target=None
        )
        return
    _judge_target(str(node.value), ctx, location, key)


def check_json_targets(obj: Any, ctx: ScanContext, location: Location, *, where: str = "") -> None:
    """Hydra ``_target_`` and jsonargparse ``class_path`` keys in a decoded JSON document: Hydra instantiates plain
    dicts as it does YAML, and loaders read such configs from a model folder's JSON (Uni2TS's ``config.json``
    through ``PyTorchModelHubMixin``, CVE-2026-22584) or from a weights file's metadata (FlexTok keeps its Hydra
    config as JSON in the safetensors ``__metadata__``). ``where``: what the document is, for the message."""
    stack: list[Any] = [obj]
    seen = 0
    while stack:
        cur = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_NODES:
            # fail closed: the nodes not visited could hold a _target_
            raise ResourceLimitExceeded(
                "max_config_nodes", f"JSON config has more than {MAX_CONFIG_NODES} nodes"
            )
        if isinstance(cur, dict):
            for key, value in cur.items():
                if key in _TARGET_KEYS:
                    if isinstance(value, str):
                        _judge_target(value, ctx, location, key, where=where)
                    else:
                        ctx.add_severity(
                            rules.HydraTarget,
                            Severity.HIGH,
                            f"Hydra {key}{where} is not a plain name",
                            location,
                            target=None,
                        )
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, dict | list))


_TARGET_MARKS: Final = ("_target_", "class_path")
_ESCAPED_ASCII: Final = re.compile(r"\\(?:u00[5-7]|x[5-7]|U0000[5-7]|\r|\n)")
"""An escape that JSON (``\\u005f``) or a YAML double-quoted scalar (``\\x5f``, ``\\U0000005f``, an escaped line
break joining two lines) decodes to an underscore or a letter: writers never escape those, so a key spelled so is
read as ``_target_`` by the loader while the text does not contain the word."""
_ESCAPED_ASCII_BYTES: Final = re.compile(_ESCAPED_ASCII.pattern.encode())


def mentions_target(doc: str | bytes) -> bool:
    """Whether a JSON or YAML document may hold a ``_target_`` or ``class_path`` key once decoded: the word itself,
    an escape that may spell it, or (bytes) text in UTF-16 or UTF-32, which ``json.loads`` decodes from bytes.
    The cheap trigger for the walk of :func:`check_json_targets`; False only when no decoding can produce the key."""
    return _mentions(doc, _TARGET_MARKS, None)


_LC_MARK: Final = re.compile(r'"lc"\s*:\s*(?:true|1(?:\.0*)?(?![0-9.eE])|[0-9.]+[eE])')
"""LangChain's ``"lc": 1`` (or a value JSON decodes equal to 1): a BPE vocabulary also has an ``"lc"`` token, whose
id is any number, and a tokenizer.json is too large to walk for nothing."""


def mentions_langchain(doc: bytes) -> bool:
    """Whether a JSON document may hold LangChain's ``"lc": 1`` once decoded (the trigger of
    :func:`check_langchain`; same decodings as :func:`mentions_target`)."""
    return _mentions(doc, ('"lc"',), _LC_MARK)


def _mentions(doc: str | bytes, words: tuple[str, ...], mark: re.Pattern[str] | None) -> bool:
    """Whether ``doc`` holds one of ``words`` (where ``mark``, if given, matches too), an escape that may spell
    one, or is UTF-16/32 text that does once decoded."""
    if isinstance(doc, str):
        if any(w in doc for w in words) and (mark is None or mark.search(doc) is not None):
            return True
        return _ESCAPED_ASCII.search(doc) is not None
    if any(w.encode() in doc for w in words) and (
        mark is None or re.search(mark.pattern.encode(), doc) is not None
    ):
        return True
    if b"\x00" in doc[:4] or doc[:2] in (b"\xff\xfe", b"\xfe\xff"):
        import json

        enc = json.detect_encoding(doc)
        if enc not in ("utf-8", "utf-8-sig"):
            return _mentions(doc.decode(enc, "replace"), words, mark)
    return _ESCAPED_ASCII_BYTES.search(doc) is not None


def check_metadata_targets(key: str, value: str, ctx: ScanContext, location: Location, *, where: str) -> None:
    """A metadata value (safetensors ``__metadata__``, GGUF or ONNX metadata) that is a JSON or YAML config naming
    Hydra ``_target_`` or jsonargparse ``class_path`` callables: code that instantiates the stored config runs
    them. Values that are neither are plain text (nothing is reported for them)."""
    if not mentions_target(value):
        return
    import json

    what = f" in {where} metadata '{key[:100]}'"
    try:
        obj = json.loads(value)
    except (ValueError, RecursionError):
        obj = None
    if isinstance(obj, dict | list):
        check_json_targets(obj, ctx, location, where=what)
        return
    import yaml

    try:
        roots = _compose(value)
    except (yaml.YAMLError, RecursionError, ValueError):
        return  # prose that mentions the word
    stack: list[Any] = list(roots)
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if len(seen) > MAX_CONFIG_NODES:
            raise ResourceLimitExceeded(
                "max_config_nodes", f"YAML config{what} has more than {MAX_CONFIG_NODES} nodes"
            )
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value in _TARGET_KEYS:
                    if isinstance(v, yaml.ScalarNode):
                        _judge_target(str(v.value), ctx, location, k.value, where=what)
                    else:
                        ctx.add_severity(
                            rules.HydraTarget,
                            Severity.HIGH,
                            f"Hydra {k.value}{what} is not a plain name",
                            location,
                            target=None,
                        )
                stack.extend((k, v))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _judge_target(value: str, ctx: ScanContext, location: Location, key: str, *, where: str = "") -> None:
    target = value.strip()
    if not _DOTTED.match(target):
        # "${...}" interpolations are resolved when the config is read, from other keys or the environment
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH,
            f"Hydra {key}{where} '{target[:200]}' is computed when the config is read; it cannot be judged "
            "statically",
            location,
            target=target[:200],
        )
        return
    c = judge_dotted(ctx.allow, target, called=True)
    if c.category is None:
        parts = target.split(".")
        if parts[0] in _HYDRA_PACKAGES and _CLASS_NAME.match(parts[-1]):
            return
        if c.allowed:
            return
    ctx.add_severity(
        rules.HydraTarget,
        c.severity or Severity.HIGH,
        f"{_LOADER_OF.get(key, 'Hydra')} {key}{where} '{target[:200]}': instantiating the config calls it "
        f"({c.reason or 'not on the allow-list'})",
        location,
        target=target[:200],
        category=c.category,
    )


def check_espnet_model_module(obj: Any, ctx: ScanContext, location: Location) -> None:
    """ESPnet's ``model.json`` beside a trained model (``[idim, odim, args]``; a language model's is ``args``
    alone): ``load_trained_model`` (ASR, TTS, MT) and ``recog``'s language model read ``args.model_module``,
    ``"module:Class"``, import the module with ``dynamic_import`` and call the class with the model's dimensions and
    arguments. Confirmed with espnet 202511: ``"model_module": "r19_evil:Evil"`` imported the working folder's
    module. ESPnet's own modules (``espnet.*``, ``espnet2.*``) and the language models' registered names (no
    ``:``) are accepted; anything else is judged as a Hydra ``_target_`` is."""
    args = obj[2] if isinstance(obj, list) and len(obj) == 3 else obj
    if not isinstance(args, dict) or "model_module" not in args:
        return
    value = args["model_module"]
    if not isinstance(value, str):
        return  # dynamic_import fails on anything else before importing
    if ":" not in value:
        return  # a registered name (the language models' aliases); ESPnet refuses any other
    module, _, name = value.partition(":")
    if ":" in name or module.split(".")[0] in ("espnet", "espnet2"):
        return  # (a second ":" fails ESPnet's unpacking before anything is imported)
    _judge_target(f"{module}.{name}", ctx, location, "model_module")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


# ----------------------------------------------------------------------------------------- sentence-transformers


_ST_OTHER_MODULES: Final = frozenset({"pylate.models.Dense.Dense"})
"""``modules.json`` types outside ``sentence_transformers.*`` that real model repositories name and whose ``load``
only reads the module folder's config and weights (judged on their own): PyLate's ColBERT projection, a subclass of
sentence-transformers' Dense, which sentence-transformers 6.2 itself loads as its own Dense (its
``_CLASS_REF_ALIASES``). Exact names only: another class of the same package is judged like any other."""


def check_sentence_transformers(obj: Any, ctx: ScanContext, location: Location, name: str) -> None:
    """Dotted paths that sentence-transformers imports from a model folder's JSON.

    ``modules.json`` lists each module's ``type``: the class is imported and its ``load`` called on the module's
    folder (``"torch.jit"`` would be ``torch.jit.load``). A Dense module's ``activation_function`` and a
    CrossEncoder's ``activation_fn`` are imported and called. A Router's ``router_config.json`` (and an older Router
    or Asym ``config.json`` of the same shape) maps each route's module folder to a class in ``types``, imported
    and loaded the same way (confirmed with sentence-transformers 6.2.0). Versions before 6.0 import any of them without
    ``trust_remote_code``; later ones still do when it is given. Names outside ``sentence_transformers.*`` (and, for
    activations, torch's own module classes) are judged by the allow-list: dangerous ones at their severity, others
    HIGH, since they run code the model folder chose.
    """
    base = name.rsplit("/", 1)[-1].lower()
    refs: list[tuple[str, Any]] = []
    if base == "modules.json" and isinstance(obj, list):
        refs = [
            ("type", m.get("type")) for m in obj[:MAX_CONFIG_NODES] if isinstance(m, dict) and "type" in m
        ]
    elif isinstance(obj, dict) and _routes_modules(obj, base):
        # a Router's (or the older Asym's) module classes: each is imported and its load() called on its folder
        refs = [(f"types.{k}"[:100], v) for k, v in list(obj["types"].items())[:MAX_CONFIG_NODES]]
    elif isinstance(obj, dict):
        st = obj.get("sentence_transformers")
        for key, value in (
            ("activation_function", obj.get("activation_function")),
            ("activation_fn", obj.get("activation_fn")),
            (
                "sentence_transformers.activation_fn",
                st.get("activation_fn") if isinstance(st, dict) else None,
            ),
        ):
            if value is not None:
                refs.append((key, value))
    for key, ref in refs:
        if not isinstance(ref, str):
            ctx.fail(location, f"sentence-transformers {key} is not a dotted name")
            continue
        activation = not (key == "type" or key.startswith("types."))
        if ref.startswith("sentence_transformers.") or (activation and "." not in ref):
            # a name without a dot is not importable by import_from_string: transformers' own configs say
            # "activation_function": "gelu_new" (looked up in a table, never imported)
            continue
        if not activation and ref in _ST_OTHER_MODULES:
            continue  # its load() reads the folder's config (activation judged there) and weights (scanned)
        if activation and ref.startswith("torch.nn.") and _CLASS_NAME.match(ref.rsplit(".", 1)[-1]):
            continue  # torch.nn.Tanh, torch.nn.modules.activation.GELU: what torch.save'd models name
        c = judge_dotted(ctx.allow, ref, called=True) if _DOTTED.match(ref) else None
        if c is not None and c.allowed and activation:
            continue
        severity = c.severity if c is not None and c.category is not None and c.severity else Severity.HIGH
        ctx.add_severity(
            rules.HydraTarget,
            severity,
            f"sentence-transformers {key} '{ref[:200]}': loading the model imports it and "
            f"{'calls it' if activation else 'calls its load() on the module folder'}",
            location,
            target=ref[:200],
        )


def _routes_modules(obj: dict[str, Any], base: str) -> bool:
    """Whether a JSON object is the config of a sentence-transformers Router (``router_config.json``; a
    ``config.json`` of that shape in older versions, which ``Router.load`` still reads) or Asym module: its
    ``types`` map each route's module folder to the class loading imports."""
    types = obj.get("types")
    if not isinstance(types, dict) or not types:
        return False
    return base == "router_config.json" or isinstance(obj.get("structure"), dict)


# ------------------------------------------------------------------------------------- LangChain serialization

_LANGCHAIN_NAMESPACES: Final = frozenset(
    {
        "langchain", "langchain_core", "langchain_community", "langchain_anthropic", "langchain_groq",
        "langchain_google_genai", "langchain_aws", "langchain_openai", "langchain_google_vertexai",
        "langchain_mistralai", "langchain_fireworks", "langchain_xai", "langchain_sambanova",
        "langchain_perplexity",
    }
)  # fmt: skip
"""The packages ``langchain_core.load`` builds classes of by default (its DEFAULT_NAMESPACES); a class of any other
package loads only when the caller widens ``valid_namespaces``, and then any module of that package is imported."""
_LANGCHAIN_DATA: Final = frozenset(
    {"prompts", "prompt_values", "messages", "documents", "output_parsers", "runnables", "schema", "load"}
)
"""Second parts of the ``id`` of classes that hold data or compose other objects (prompt templates, messages,
documents, output parsers, runnable sequences: what LangChain Hub prompts and saved chains are made of)."""


def check_langchain(obj: Any, ctx: ScanContext, location: Location) -> None:
    """Objects of a LangChain serialization (``{"lc": 1, "type": ..., "id": [...]}``) that
    ``langchain_core.load.loads``/``load`` builds:

    * ``"type": "secret"``: the value of the environment variable named by ``id`` is put into the loaded object
      (``secrets_from_env`` was on by default before langchain-core 0.3.81 and 1.2.5: CVE-2025-68664, confirmed
      with 0.3.80); in a prompt's partial variable or a message it is sent to the model or shown: high. As an
      argument of a model client (what ``dumps`` writes for its API key) it goes to the endpoint the file sets:
      medium.
    * ``"type": "constructor"``: the class ``id`` names is imported and called with ``kwargs``. A class outside
      LangChain's default packages is imported only when the caller allows its package, and then any module of it
      (high); a model client, tool or retriever of those packages is built with the endpoints and credentials the
      file chose (low); prompts, messages, documents and runnables are data. Jinja templates in the kwargs are
      judged by the template walk of every JSON document."""
    # (node, whether it is an argument of a constructor that is not data): the walk is bounded like the others
    stack: list[tuple[Any, bool]] = [(obj, False)]
    seen = 0
    while stack:
        node, in_client = stack.pop()
        seen += 1
        if seen > MAX_CONFIG_NODES:
            raise ResourceLimitExceeded(
                "max_config_nodes", f"JSON config has more than {MAX_CONFIG_NODES} nodes"
            )
        if isinstance(node, list):
            stack.extend((v, in_client) for v in node if isinstance(v, dict | list))
            continue
        if not isinstance(node, dict):
            continue
        client = in_client
        if node.get("lc") == 1 and node.get("id") is not None:
            client = _langchain_object(node, ctx, location, in_client)
        stack.extend((v, client) for v in node.values() if isinstance(v, dict | list))


def _langchain_object(node: dict[str, Any], ctx: ScanContext, location: Location, in_client: bool) -> bool:
    """Report one serialized object; whether its arguments are those of a class that is not data."""
    kind, raw = node.get("type"), node.get("id")
    ident: list[str] = raw if isinstance(raw, list) and all(isinstance(i, str) for i in raw) else []
    names = bool(ident)
    shown = ".".join(ident)[:200] if names else str(json_safe(raw))[:200]
    if kind == "secret":
        ctx.add_severity(
            rules.HydraTarget,
            Severity.MEDIUM if in_client else Severity.HIGH,
            f"LangChain secret '{shown}': langchain_core.load reads this environment variable into the loaded "
            "object (by default before langchain-core 0.3.81 / 1.2.5, CVE-2025-68664), "
            + (
                "an argument of a client built with the endpoint the file sets"
                if in_client
                else "where the application sends it to the model or shows it"
            ),
            location,
            target=shown,
        )
        return in_client
    if kind != "constructor":
        return in_client
    if not (names and len(ident) >= 2):
        ctx.fail(location, f"LangChain constructor id {shown!r} is not a list of names")
        return True
    if ident[0] not in _LANGCHAIN_NAMESPACES:
        severity = Severity.HIGH
        why = "imports that module of a package outside LangChain's defaults (when the caller allows it)"
    elif len(ident) > 2 and ident[1] in _LANGCHAIN_DATA:
        return in_client
    else:
        severity = Severity.LOW
        why = "builds that installed class with the file's arguments (endpoints, credentials, paths)"
    ctx.add_severity(
        rules.HydraTarget,
        severity,
        f"LangChain constructor '{shown}': langchain_core.load {why}",
        location,
        target=shown,
    )
    return True


# ------------------------------------------------------------------------------------ LeRobot processor pipelines


def check_lerobot_processor(obj: Any, ctx: ScanContext, location: Location) -> None:
    """A LeRobot processor pipeline (``policy_preprocessor.json``, ``policy_postprocessor.json``: a ``steps`` list).
    ``DataProcessorPipeline.from_pretrained`` (run by ``make_pre_post_processors`` for every pretrained policy)
    builds each step that has no ``registry_name`` by importing its ``class`` dotted path and calling it with the
    step's ``config`` as keyword arguments, before checking that it is a ProcessorStep, with no opt-in (confirmed
    with lerobot 0.4.4: ``"class": "subprocess.Popen"`` ran its ``args``). A registered name is only looked up.
    LeRobot's own steps are accepted; other names are judged by the allow-list (high when it does not know them:
    the module is not analysed)."""
    steps = obj.get("steps") if isinstance(obj, dict) else None
    if not isinstance(steps, list):
        return
    for i, step in enumerate(steps[:MAX_CONFIG_NODES]):
        if not isinstance(step, dict) or "registry_name" in step or "class" not in step:
            continue
        ref = step["class"]
        if isinstance(ref, str) and "." not in ref.strip():
            continue  # nothing to import (LeRobot splits the module off at the last dot): any JSON's "steps" list
        if not isinstance(ref, str) or not _DOTTED.match(ref):
            ctx.fail(
                location,
                f"LeRobot processor step {i} class {str(json_safe(ref))[:100]!r} is not a dotted name",
            )
            continue
        c = judge_dotted(ctx.allow, ref, called=True)
        if c.category is None and (ref.startswith("lerobot.") or c.allowed):
            continue
        ctx.add_severity(
            rules.HydraTarget,
            c.severity if c.category is not None and c.severity else Severity.HIGH,
            f"LeRobot processor step {i} class '{ref[:200]}': loading the pipeline imports it and calls it with the "
            f"step's config ({c.reason or 'not on the allow-list'})",
            location,
            target=ref[:200],
            category=c.category,
        )


# ------------------------------------------------------------------------------- OpenMMLab (mmengine) configs

_OPENMMLAB_PACKAGES: Final = frozenset(
    {
        "mmengine", "mmcv", "mmdet", "mmdet3d", "mmpretrain", "mmcls", "mmseg", "mmpose", "mmaction", "mmocr",
        "mmyolo", "mmagic", "mmedit", "mmrotate", "mmtrack", "mmselfsup", "mmrazor", "mmfewshot", "mmflow",
        "mmhuman3d", "mmgen", "mmdeploy",
    }
)  # fmt: skip
"""OpenMMLab's own packages, whose modules its configs import to register their classes."""


def check_mmengine_imports(value: Any, ctx: ScanContext, location: Location) -> None:
    """The top-level ``custom_imports`` of a config: mmengine's ``Config.fromfile`` (every OpenMMLab loader:
    ``init_detector``, ``MMPretrainModel``, ``Runner.from_cfg``) imports each module of ``imports`` while it reads a
    ``.json``/``.yaml``/``.py`` config, with no opt-in (confirmed with mmengine 0.10.7: a module beside the config ran
    when the working folder was on ``sys.path``; an installed module runs its import-time code). Modules of
    OpenMMLab's packages are accepted; any other is high (not analysed). ``value``: the key's decoded value (of a
    YAML config, as :func:`_yaml_names` gives it)."""
    imports = value.get("imports") if isinstance(value, dict) else None
    if isinstance(imports, list):
        names: list[Any] = imports
    elif isinstance(imports, str):
        names = [imports]
    else:
        # no imports: nothing is imported; anything else is not a list of names the scanner can judge
        names = [] if imports is None and isinstance(value, dict) else [imports]
    reported = 0
    for name in names[:MAX_CONFIG_NODES]:
        if isinstance(name, str) and _DOTTED.match(name) and name.split(".", 1)[0] in _OPENMMLAB_PACKAGES:
            continue
        reported += 1
        if reported > _MAX_REMOTE_REFS:
            break  # the file is reported already; the rest would only repeat it
        shown = name[:200] if isinstance(name, str) else str(json_safe(name))[:200]
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH,
            f"custom_imports '{shown}': mmengine's Config.fromfile imports this module while reading the config, "
            "so its import-time code runs; that module is not analysed",
            location,
            target=shown,
        )


def is_registry_config(obj: Any) -> bool:
    """Whether a decoded JSON/YAML document is a registry config: a top-level ``model`` mapping with a ``type``, as
    mmengine (every OpenMMLab loader) and AllenNLP build their models from."""
    model = obj.get("model") if isinstance(obj, dict) else None
    return isinstance(model, dict) and "type" in model


def check_registry_types(obj: Any, ctx: ScanContext, location: Location) -> None:
    """Every ``type`` of a registry config (:func:`is_registry_config`) that is a dotted path.

    mmengine's ``build_from_cfg`` (``init_detector``, ``init_model``, ``Runner.from_cfg``, the test pipeline's
    transforms) looks ``type`` up in its registries, and a dotted name it does not find there is imported: first
    ``<scope>.registry`` for its first part, then the object by ``get_object_from_string``, which is called with the
    mapping's other keys, with no opt-in (confirmed with mmengine 0.10.7: ``"type": "subprocess.Popen"`` ran its
    ``args``). AllenNLP resolves an unregistered dotted ``type`` the same way (imports the module, calls the class)."""
    reported = 0
    for path, node in walk_config(obj):
        value = node.get("type")
        if isinstance(value, str) and "nms" in path.rsplit("/", 1)[-1].lower():
            reported += _nms_type(value, ctx, location)
        elif isinstance(value, str) and "." in value and _registry_type(value, ctx, location):
            reported += 1
            if reported >= _MAX_REMOTE_REFS:
                return  # the file is reported already


def _yaml_registry_types(root: Any, ctx: ScanContext, location: Location) -> None:
    """:func:`check_registry_types` for a composed YAML document (mmengine reads ``.yaml`` configs too)."""
    import yaml

    model = _yaml_get(root, "model")
    if _yaml_get(model, "type") is None:
        return
    stack: list[tuple[str, Any]] = [("", root)]
    seen: set[tuple[str, int]] = set()
    reported = 0
    while stack:
        parent, node = stack.pop()
        if (parent, id(node)) in seen or len(seen) > MAX_CONFIG_NODES:
            continue  # the main walk of the document fails closed on size
        seen.add((parent, id(node)))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else ""
                if name == "type" and isinstance(value, yaml.ScalarNode) and value.tag == _YAML_STR:
                    if "nms" in parent.lower():
                        reported += _nms_type(value.value, ctx, location)
                    elif "." in value.value:
                        reported += _registry_type(value.value, ctx, location)
                    if reported >= _MAX_REMOTE_REFS:
                        return
                # a merged mapping's keys are the mapping's own: it keeps the mapping's name
                stack.append((parent if getattr(key, "tag", None) == _YAML_MERGE else name, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((parent, v) for v in node.value)


_FSDP_WRAP: Final = "torch.distributed.fsdp.wrap."
_NMS_NAME: Final = re.compile(r"[a-z0-9_]*nms[a-z0-9_]*\Z")
"""The NMS functions of mmcv's ``nms`` module (``nms``, ``soft_nms``, ``nms_rotated``, ``nms_quadri``) and of the
packages built on it (``rnms``): what an ``nms`` config's ``type`` names."""


def _nms_type(value: str, ctx: ScanContext, location: Location) -> int:
    """The ``type`` of an ``nms`` mapping (``test_cfg.nms``): mmcv's ``batched_nms`` (used by every mmdet/mmrotate
    detection head at inference) runs ``eval()`` on it and calls the result with the boxes (confirmed with mmcv
    2.2.0's ``batched_nms``, compiled ops stubbed: an expression there wrote a file). An NMS function's name is
    inert; anything else is high. Returns the number of findings added."""
    if _NMS_NAME.match(value):
        return 0
    ctx.add_severity(
        rules.HydraTarget,
        Severity.HIGH,
        f"nms type '{value[:200]}': mmcv's batched_nms runs eval() on it at inference and calls the result; only an "
        "NMS function's name is inert",
        location,
        target=value[:200],
    )
    return 1


def _registry_type(value: str, ctx: ScanContext, location: Location) -> bool:
    """Judge one dotted registry ``type``; True when it was reported.

    A class of OpenMMLab's packages (``mmdet.RetinaNet``, the full paths lazy-import configs dump) or of the packages
    Hydra targets may name (``torch.optim.SGD``) is accepted, and so are a ``collate`` function of OpenMMLab's (what
    dataloaders name) and an FSDP ``*_auto_wrap_policy``. Another OpenMMLab function is medium (it is called with
    the config's arguments), high when it loads (``mmengine.fileio.load`` unpickles the file it is given). Anything
    else is judged by the allow-list, and high unless allowed exactly: the module it names is imported (a module
    beside the config runs when the working folder is on ``sys.path``)."""
    parts = value.split(".")
    if not _DOTTED.match(value):
        severity, why = Severity.HIGH, "not a dotted name the scanner can judge"
        category = None
    else:
        c = judge_dotted(ctx.allow, value, called=True)
        category = c.category
        if category is None:
            known = parts[0] in _OPENMMLAB_PACKAGES or parts[0] in _HYDRA_PACKAGES
            if known and (_CLASS_NAME.match(parts[-1]) or parts[-1].endswith("collate")):
                return False
            if value.startswith(_FSDP_WRAP) and parts[-1].endswith("_auto_wrap_policy"):
                return False  # FSDP strategy configs: a policy function, called with the module tree
            if c.allowed and not c.by_pattern:
                return False
        if category is None and parts[0] in _OPENMMLAB_PACKAGES and "load" not in parts[-1].lower():
            severity, why = Severity.MEDIUM, "a function of OpenMMLab's packages"
        else:
            severity = max(c.severity or Severity.HIGH, Severity.HIGH)
            why = c.reason or "not on the allow-list"
    ctx.add_severity(
        rules.HydraTarget,
        severity,
        f"registry type '{value[:200]}': mmengine's build_from_cfg (and AllenNLP) imports a dotted type its "
        f"registries do not know and calls it with the mapping's other keys ({why})",
        location,
        target=value[:200],
        category=category,
    )
    return True


# ------------------------------------------------------------------------------------- base configs elsewhere

_OUTSIDE: Final = re.compile(r"(?:[/\\~]|[A-Za-z]:|[A-Za-z][A-Za-z0-9+.-]*://)")
"""An absolute path, a home-relative one or a URL: a base config there is not among the files scanned."""


def check_config_bases(key: str, values: list[Any], ctx: ScanContext, location: Location) -> None:
    """The base configs a config inherits from, which its loader reads (and runs) first, with no opt-in:

    * fvcore/detectron2 ``_BASE_``: ``load_yaml_with_base`` reads that YAML, and detectron2's ``merge_from_file``
      passes ``allow_unsafe=True``, so a base that the safe loader refuses is read with ``yaml.unsafe_load``
      (confirmed with fvcore 0.1.5: the ``!!python/object/apply`` of an absolute-path base ran); absolute and
      ``~`` paths and ``http(s)://`` URLs are taken as they are;
    * mmengine ``_base_``: ``Config.fromfile`` reads each base first and executes a ``.py`` one (confirmed with
      mmengine 0.10.7: an absolute-path ``.py`` base ran).

    A base outside the scanned files (absolute, ``~``, URL) is high, and so is any ``.py`` base of mmengine's (Python
    the scanner does not analyse). A relative YAML/JSON base is a file of the same tree, scanned on its own."""
    for value in values[:_MAX_REMOTE_REFS]:
        if not isinstance(value, str):
            continue
        text = value.strip()
        outside = _OUTSIDE.match(text) is not None
        python = key == "_base_" and text.lower().endswith(".py") and "::" not in text
        if not (outside or python):
            continue
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH,
            f"{key} '{text[:200]}': "
            + (
                "mmengine's Config.fromfile executes this Python base config"
                if python
                else "the loader reads this base config first (detectron2 with yaml.unsafe_load, mmengine executing "
                "a .py one)"
            )
            + (", which lies outside the files scanned" if outside else "; that code is not analysed"),
            location,
            target=text[:200],
        )


# ------------------------------------------------------------------------------------ ultralytics model YAML


_LAYER_CLASS: Final = re.compile(r"[A-Za-z0-9]*[A-Z][A-Za-z0-9]*\Z")
"""A layer class's name (``Conv``, ``C2f``, ``v10Detect``): an upper-case letter and no underscore. The functions of
``ultralytics.nn.tasks``' namespace are snake_case (``torch_load``) and its modules lower-case (``pickle``)."""


def _ultralytics_model(root: Any, ctx: ScanContext, location: Location) -> None:
    """An ultralytics model YAML (``backbone`` and ``head`` layer lists): its ``activation`` and the module of every
    layer. ``parse_model`` resolves a layer's module as ``torch.nn.<X>`` (``nn.X``), ``torchvision.ops.<X>``, or
    any name of ``ultralytics.nn.tasks``' globals, and calls it with the layer's arguments (``ast.literal_eval``'d
    strings), with no opt-in: a function there runs (confirmed with ultralytics 8.4.190: ``torch_load`` with an
    absolute path unpickled that file, whose payload ran; ``check_requirements`` pip-installs a package). Layers
    are classes (see ``_LAYER_CLASS``); any other name is high."""
    import yaml

    act = _yaml_get(root, "activation")
    if act is not None:
        check_ultralytics_activation(act.value if isinstance(act, yaml.ScalarNode) else act, ctx, location)
    reported = 0
    for key in ("backbone", "head"):
        layers = _yaml_get(root, key)
        if not isinstance(layers, yaml.SequenceNode):
            continue
        for i, layer in enumerate(layers.value[:MAX_CONFIG_NODES]):
            if not (isinstance(layer, yaml.SequenceNode) and len(layer.value) >= 3):
                continue
            if len(layer.value) >= 4:
                reported += _yolov5_args(key, i, layer.value[3], ctx, location)
                if reported > _MAX_REMOTE_REFS:
                    return  # the file is reported already
            module = layer.value[2]
            name = module.value if isinstance(module, yaml.ScalarNode) else None
            if isinstance(name, str):
                last = (
                    name[3:]
                    if name.startswith("nn.")
                    else name[16:]
                    if name.startswith("torchvision.ops.")
                    else name
                )
                if _LAYER_CLASS.match(last):
                    continue
            reported += 1
            if reported > _MAX_REMOTE_REFS:
                return  # the file is reported already
            shown = name[:200] if isinstance(name, str) else "(not a name)"
            ctx.add_severity(
                rules.HydraTarget,
                Severity.HIGH,
                f"ultralytics {key} layer {i} module '{shown}': building the model from this YAML calls that name of "
                "ultralytics.nn.tasks (or torch.nn / torchvision.ops) with the layer's arguments; only layer classes "
                "are inert (torch_load unpickles a file, check_requirements installs a package)",
                location,
                target=shown,
            )


_YAML_STR: Final = "tag:yaml.org,2002:str"
_ARITHMETIC: Final = ("Add", "Sub", "Mult", "Div", "FloorDiv", "Mod", "UAdd", "USub")


def _yolov5_args(key: str, i: int, args: Any, ctx: ScanContext, location: Location) -> int:
    """The arguments of a layer of a YOLOv5 model YAML: yolov5's ``parse_model`` runs ``eval()`` on every string
    among them (``args[j] = eval(a) if isinstance(a, str) else a``, only ``NameError`` suppressed) whenever the model
    is built from the YAML (``Model("model.yaml")``, ``train.py --cfg``), with no opt-in (confirmed with the yolov5
    package 7.0.14: an argument expression wrote a file). ``args`` is enumerated, so a mapping's keys are evaluated
    too. Its own configs write names (``nc``, ``anchors``, ``None``, ``nearest``) and literals, which evaluate to a
    value and call nothing; any other expression is high. ultralytics reads the same strings with
    ``ast.literal_eval``, so the finding is about yolov5. Returns the number of findings added."""
    import yaml

    if isinstance(args, yaml.SequenceNode):
        items = args.value
    elif isinstance(args, yaml.MappingNode):
        items = [k for k, _ in args.value]
    else:
        return 0
    added = 0
    for item in items[:MAX_CONFIG_NODES]:
        if not (isinstance(item, yaml.ScalarNode) and item.tag == _YAML_STR) or _inert_expression(item.value):
            continue
        added += 1
        if added > _MAX_REMOTE_REFS:
            break
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH,
            f"YOLOv5 {key} layer {i} argument '{item.value[:200]}': yolov5's parse_model runs eval() on every string "
            "argument when it builds the model from this YAML (no opt-in); only names and literals are inert",
            location,
            target=item.value[:200],
        )
    return added


def _inert_expression(text: str) -> bool:
    """Whether ``eval(text)`` only reads names and computes with literals: a name, a literal, a container of them,
    simple arithmetic (no call, attribute, subscript, comprehension or lambda; no dunder name)."""
    import ast

    if len(text) > 1000:
        return False
    try:
        tree = ast.parse(text.strip(" \t"), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False  # eval() may still read it (a form ast does not): not judged, so not inert
    for node in ast.walk(tree):
        kind = type(node).__name__
        if isinstance(node, ast.Name):
            if node.id.startswith("__"):
                return False
        elif kind not in (
            "Expression",
            "Load",
            "Constant",
            "List",
            "Tuple",
            "Set",
            "Dict",
            "UnaryOp",
            "BinOp",
            *_ARITHMETIC,
        ):
            return False
    return True


def check_ultralytics_activation(value: Any, ctx: ScanContext, location: Location) -> None:
    """The ``activation`` of an ultralytics model YAML (``backbone`` and ``head`` lists): ``parse_model`` runs
    ``eval()`` on it whenever the model is built from the YAML (``YOLO("model.yaml")``, training from a config),
    unless the caller opted into ultralytics' restricted loading (confirmed with ultralytics 8.4.190: an activation
    expression wrote a file). What that restricted loading accepts is accepted here too, judged by parsing alone:
    ``[torch.]nn.<Class>(literal arguments)``, as ultralytics' own configs write it; anything else is high."""
    import ast

    text = value.strip() if isinstance(value, str) else None
    if text in ("", "null", "~", "None"):
        return  # no activation: parse_model skips a falsy one (YAML null arrives here as its text)
    ok = False
    if text is not None and len(text) <= 1000:
        try:
            call = ast.parse(text, mode="eval").body
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            call = None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            func, attrs = call.func, []
            node: ast.expr = func
            while isinstance(node, ast.Attribute):
                attrs.append(node.attr)
                node = node.value
            if isinstance(node, ast.Name):
                attrs.append(node.id)
            ok = (
                attrs[1:] in (["nn"], ["nn", "torch"])
                and _CLASS_NAME.match(attrs[0]) is not None
                and all(_literal(a) for a in call.args)
                and all(kw.arg is not None and _literal(kw.value) for kw in call.keywords)
            )
    if ok:
        return
    shown = text[:200] if text is not None else str(json_safe(value))[:200]
    ctx.add_severity(
        rules.HydraTarget,
        Severity.HIGH,
        f"ultralytics activation '{shown}': building the model from this YAML runs eval() on it (no opt-in; only "
        "ultralytics' restricted loading refuses it); only [torch.]nn.<Class>(literal arguments) is inert",
        location,
        target=shown,
    )


def _literal(node: ast.expr) -> bool:
    """Whether ``ast.literal_eval`` accepts the expression (it evaluates nothing else)."""
    import ast

    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        return False
    return True


# ------------------------------------------------------------------------------------ fiddle (NeMo 2 io.json)

_FIDDLE_PACKAGES: Final = _HYDRA_PACKAGES | {"fiddle"}


def is_fiddle_document(obj: Any) -> bool:
    """fiddle's ``dump_json`` layout (NeMo 2 checkpoints' ``context/io.json``): root, objects, refcounts."""
    return isinstance(obj, dict) and "root" in obj and "objects" in obj and "refcounts" in obj


def check_fiddle(obj: Any, ctx: ScanContext, location: Location) -> None:
    """Python references in a fiddle serialization. ``load_json`` imports every ``{"type": "pyref", "module",
    "name"}`` (its default policy refuses only builtins' functions), and ``fdl.build`` (NeMo 2's
    ``io.load_context``) calls each config's ``__fn_or_cls__`` with its arguments, so each reference is judged
    like a Hydra ``_target_``; fiddle's own types and the packages NeMo checkpoints are built from (their
    classes, functions and dtypes) are accepted unless the allow-list knows the name as dangerous."""
    for _, node in walk_config(obj):
        if node.get("type") != "pyref":
            continue
        module, name = node.get("module"), node.get("name")
        target = f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else None
        if target is None or not _DOTTED.match(target):
            ctx.add_severity(
                rules.HydraTarget,
                Severity.HIGH,
                f"fiddle pyref {json_safe(module)!s}:{json_safe(name)!s} is not a dotted name",
                location,
                target=str(json_safe(target)),
            )
            continue
        c = judge_dotted(ctx.allow, target, called=True)
        if c.category is None and (target.split(".", 1)[0] in _FIDDLE_PACKAGES or c.allowed):
            continue
        if c.category is None and module == "builtins" and name in _BUILTIN_TYPES:
            continue
        ctx.add_severity(
            rules.HydraTarget,
            c.severity or Severity.HIGH,
            f"fiddle pyref '{target[:200]}': loading the config imports it and building it calls it "
            f"({c.reason or 'not on the allow-list'})",
            location,
            target=target[:200],
            category=c.category,
        )


_BUILTIN_TYPES: Final = frozenset(
    {"tuple", "list", "dict", "set", "frozenset", "int", "float", "str", "bool", "bytes", "complex", "slice"}
)
"""Builtins that fiddle serializes as types of traversable values (a tuple of layers, a dict of options)."""


# ----------------------------------------------------------------------------------- transformers remote code

_MAX_REMOTE_REFS: Final = 32
_AUTO_MAP_FILES: Final = frozenset(
    {
        "config.json",
        "tokenizer_config.json",
        "preprocessor_config.json",
        "processor_config.json",
        "feature_extractor_config.json",
        "image_processor_config.json",
        "video_preprocessor_config.json",
        "gliner_config.json",
    }
)


def check_remote_code(obj: Any, ctx: ScanContext, location: Location, name: str) -> None:
    """Custom code that transformers runs for a model folder: the classes of a config's ``auto_map`` (and the
    ``impl`` of its ``custom_pipelines``) are imported from ``<module>.py`` beside the config, or, as
    ``"org/repo--module.Class"``, fetched from another repository, and run when the model is loaded with
    ``trust_remote_code=True``. That code is not a model format: loopwarden cannot judge it, so each reference is
    a finding (medium; high when the code lives in another repository, outside what was scanned). GLiNER's
    ``gliner_config.json`` sub-configs are high wherever their code lives: GLiNER builds them with
    ``trust_remote_code=True`` of its own (confirmed with gliner 0.2.29)."""
    if not isinstance(obj, dict):
        return
    if name.rsplit("/", 1)[-1].lower() == "model_index.json":
        _diffusers_custom_code(obj, ctx, location)
        return
    if name.rsplit("/", 1)[-1].lower() == "modular_model_index.json":
        _diffusers_modular_libraries(obj, ctx, location)
        return
    if name.rsplit("/", 1)[-1].lower() == "adapter_config.json":
        _peft_imports(obj, ctx, location)
        return
    if name.rsplit("/", 1)[-1].lower() not in _AUTO_MAP_FILES:
        return
    refs: list[tuple[str, Any]] = []
    _auto_map_refs(obj.get("auto_map"), "auto_map", refs)
    pipes = obj.get("custom_pipelines")
    if isinstance(pipes, dict):
        for task, spec in pipes.items():
            impl = spec.get("impl") if isinstance(spec, dict) else spec
            refs.append((f"custom_pipelines.{task}.impl", impl))
    if name.rsplit("/", 1)[-1].lower() == "config.json":
        _sub_config_auto_maps(obj, refs)
        _hub_code_of_model_config(obj, ctx, location)
        _mlx_model_file(obj, ctx, location)
    # GLiNER builds its encoder (and decoder, labels encoder) from the sub-configs of gliner_config.json with
    # trust_remote_code=True of its own: their auto_map code runs on a plain GLiNER.from_pretrained
    gliner = name.rsplit("/", 1)[-1].lower() == "gliner_config.json"
    if gliner:
        _sub_config_auto_maps(obj, refs)
    # references to another repository first: past the bound only the count is reported, and a reference of the
    # higher severity must not be among those left out (32 local ones in front of it lowered the file's severity)
    refs.sort(key=lambda kr: not (isinstance(kr[1], str) and "--" in kr[1]))
    seen: set[str] = set()
    more = 0
    for key, ref in refs:
        shown = ref[:200] if isinstance(ref, str) else json_safe(ref)
        if str(shown) in seen:
            continue
        if len(seen) >= _MAX_REMOTE_REFS:
            more += 1
            continue
        seen.add(str(shown))
        other_repo = isinstance(ref, str) and "--" in ref
        where = (
            f"module '{ref.split('--')[-1].rsplit('.', 1)[0][:100]}.py'" if isinstance(ref, str) else "code"
        )
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH if other_repo or gliner else Severity.MEDIUM,
            f"{key} '{shown}': transformers imports and runs the {where} "
            f"{'of another repository' if other_repo else 'of the model folder'} when the model is loaded with "
            "trust_remote_code=True"
            + (
                " (GLiNER.from_pretrained builds its encoder with trust_remote_code=True itself: no opt-in)"
                if gliner
                else ""
                if key.startswith(("auto_map", "custom_pipelines"))
                else " (a sub-config's: vLLM 0.11 ran it without trust_remote_code, CVE-2025-66448)"
            )
            + "; that code is not analysed",
            location,
            target=str(shown),
        )
    if more:
        ctx.add_severity(
            rules.HydraTarget,
            Severity.MEDIUM,
            f"{more} more code reference(s) than the {_MAX_REMOTE_REFS} listed",
            location,
            more=more,
        )


def check_custom_generate(ctx: ScanContext, location: Location) -> None:
    """``custom_generate/generate.py`` of a model folder: transformers' ``from_pretrained`` imports it and replaces
    the model's ``generate`` when the model is loaded with ``trust_remote_code=True``, and ``generate(custom_generate=
    <folder>)`` ran it with no opt-in for a local folder until transformers PR 46483. Custom code like a local
    ``auto_map`` module: not analysed, medium."""
    ctx.add_severity(
        rules.HydraTarget,
        Severity.MEDIUM,
        "custom_generate/generate.py: transformers imports and runs it as the model's generate() when the model is "
        "loaded with trust_remote_code=True (and, for a local folder, on generate(custom_generate=...) without it "
        "before transformers PR 46483); that code is not analysed",
        location,
        target="custom_generate/generate.py",
    )


def check_loading_script(ctx: ScanContext, location: Location) -> None:
    """``<folder>/<folder>.py``: the loading script of a dataset or metric folder. ``evaluate.load(folder)``
    imports it with no opt-in at all (confirmed with evaluate 0.4.6), and ``datasets.load_dataset(folder)`` runs it
    (with only a warning before datasets 2.20, confirmed with 2.19.2; under ``trust_remote_code=True`` until 4.0
    dropped scripts, confirmed with 2.21.0). Code that loading runs without an opt-in and that loopwarden does not
    analyse: high, as GLiNER's sub-config code is."""
    name = (location.member or location.path).replace("\\", "/").rsplit("/", 1)[-1]
    ctx.add(
        rules.HydraTarget,
        f"{name[:200]}: the loading script of its folder: evaluate.load(folder) imports and runs it with no opt-in, "
        "datasets.load_dataset(folder) too (by default before datasets 2.20, with trust_remote_code=True until "
        "4.0); that code is not analysed",
        location,
        target="loading script",
    )


_TOKENIZER_FILE_KEYS: Final = frozenset(
    {
        "emoji_file",
        "entity_vocab_file",
        "merges_file",
        "monolingual_vocab_file",
        "normalizer_file",
        "source_spm",
        "spm_file",
        "src_vocab_file",
        "target_spm",
        "target_vocab_file",
        "tgt_vocab_file",
        "tokenizer_config_file",
        "tokenizer_file",
        "vocab",
        "vocab_file",
        "word_pronunciation_file",
        "word_shape_file",
    }
)
"""The keys of every transformers tokenizer's ``VOCAB_FILES_NAMES`` (transformers 4.57): the files
``from_pretrained`` resolves in the model folder and hands to the tokenizer's ``__init__``."""


def check_tokenizer_files(obj: Any, ctx: ScanContext, location: Location) -> None:
    """A ``tokenizer_config.json`` that names one of the tokenizer's files: transformers 4.x merged the folder's
    resolved files into the config's kwargs only for the names the config did not set
    (``if args_name not in init_kwargs``), so the config's path was opened verbatim, absolute or relative to the
    working folder (confirmed with transformers 4.57.1: ``"vocab_file": "/path/secret.txt"`` made
    ``AutoTokenizer`` and ``BertTokenizer`` read that file's lines into the vocabulary; 5.x lets the folder's file
    win). ``save_pretrained`` never writes these keys, so any string is reported."""
    if not isinstance(obj, dict):
        return
    for key in sorted(_TOKENIZER_FILE_KEYS & obj.keys()):
        value = obj[key]
        if isinstance(value, str) and value:
            ctx.add(
                rules.ConfigFilePath,
                f"tokenizer_config.json sets {key} to '{value[:200]}': transformers before 5 opens that path "
                "instead of the model folder's file and reads it into the tokenizer",
                location,
                key=key,
                target=value[:200],
            )


def _leaves_folder(path: str) -> bool:
    """Whether a path joined to a folder (``os.path.join``, ``pathlib``, ``posixpath.join``) names a file outside
    it: absolute (POSIX, a Windows drive or UNC path) or with a ``..`` part."""
    norm = path.replace("\\", "/")
    return norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) is not None or ".." in norm.split("/")


def check_datasets_files(obj: Any, ctx: ScanContext, location: Location, name: str) -> None:
    """``datasets.load_from_disk`` on a folder written by ``save_to_disk``: a ``Dataset`` folder's ``state.json``
    lists its Arrow files (``_data_files[].filename``) and a ``DatasetDict`` folder's ``dataset_dict.json`` its
    split folders (``splits``), each joined to the folder. An absolute name or one with ``..`` makes it read a
    data set from elsewhere (confirmed with datasets 2.21.0: ``/abs/other.arrow``, ``../other/x.arrow`` and a split
    ``../other`` loaded that other data set's rows). ``save_to_disk`` writes plain file and split names."""
    if not isinstance(obj, dict):
        return
    if name == "state.json" and isinstance(obj.get("_data_files"), list):
        entries = [
            (f"_data_files[{i}].filename", e.get("filename"))
            for i, e in enumerate(obj["_data_files"])
            if isinstance(e, dict)
        ]
    elif name == "dataset_dict.json" and isinstance(obj.get("splits"), list):
        entries = [(f"splits[{i}]", split) for i, split in enumerate(obj["splits"])]
    else:
        return
    for key, value in entries:
        if isinstance(value, str) and _leaves_folder(value):
            ctx.add(
                rules.ConfigFilePath,
                f"{name} names '{value[:200]}' at {key}: datasets.load_from_disk reads that data outside the "
                "saved folder",
                location,
                key=key,
                target=value[:200],
            )


def check_tf_checkpoint_state(data: bytes, ctx: ScanContext, location: Location) -> None:
    """A TensorFlow ``checkpoint`` state file (``CheckpointState`` in protobuf text format, written beside
    ``<prefix>.index`` and ``<prefix>.data-*`` by ``CheckpointManager``, ``Saver`` and Keras 2's TF-format
    ``save_weights``). ``tf.train.get_checkpoint_state`` joins each ``model_checkpoint_path`` and
    ``all_model_checkpoint_paths`` to the folder unless ``os.path.isabs`` says it is absolute, so an absolute
    prefix or one with ``..`` parts leaves the folder: ``tf.train.latest_checkpoint(folder)`` returns it and
    ``Checkpoint.restore``/``model.load_weights`` load another checkpoint as this one's weights, and a
    ``CheckpointManager`` opened on the folder deletes that checkpoint's ``.index`` and ``.data-*`` files when it
    saves past ``max_to_keep`` (both confirmed with tensorflow-cpu 2.21.0). ``CheckpointManager`` writes names
    relative to the folder; ``tf.compat.v1.train.Saver`` writes the save path it was given, which may be an
    absolute path of the writer's machine (still a path this file sends the loader to). A file that names the
    fields and does not parse is unverified; ``get_checkpoint_state`` ignores other files so named."""
    from loopwarden.checks.models.tf_text import TextProtoError, checkpoint_state_paths

    if b"model_checkpoint_path" not in data:
        return
    try:
        paths = checkpoint_state_paths(data)
    except (TextProtoError, UnicodeDecodeError, RecursionError) as exc:
        ctx.fail(location, f"TensorFlow checkpoint state file that does not parse ({str(exc)[:200]})")
        return
    for field, raw in paths:
        value = raw.decode("utf-8", "replace")
        if _leaves_folder(value):
            ctx.add(
                rules.ConfigFilePath,
                f"TensorFlow checkpoint state file sets {field} to '{value[:200]}': tf.train.latest_checkpoint "
                "returns that path, so restoring loads a checkpoint outside the folder (and a CheckpointManager "
                "saving here deletes it)",
                location,
                key=field,
                target=value[:200],
            )


def check_deepspeed_latest(data: bytes, ctx: ScanContext, location: Location, name: str) -> None:
    """A DeepSpeed checkpoint folder's ``latest`` (or ``latest_universal``) file: ``engine.load_checkpoint(dir)``
    and the ``zero_to_fp32.py`` DeepSpeed copies beside it read the tag from it (``fd.read().strip()``) and load
    ``os.path.join(dir, tag, ...)`` with ``torch.load``, so an absolute tag or one with ``..`` parts loads the model
    and optimizer states of a folder elsewhere. DeepSpeed writes the tag it saved under (``global_step<N>``)."""
    try:
        tag = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        return  # open(..., "r") raises on it: nothing is loaded
    if tag and _leaves_folder(tag):
        ctx.add(
            rules.ConfigFilePath,
            f"DeepSpeed '{name}' file names the tag '{tag[:200]}': load_checkpoint and zero_to_fp32.py load the "
            "checkpoint folder at that path outside the checkpoint",
            location,
            key=name,
            target=tag[:200],
        )


_ABSOLUTE: Final = re.compile(r"^(?:[/\\\\]|[A-Za-z]:)")


def replaces_folder(name: str) -> bool:
    """Whether ``pathlib``'s ``folder / name`` (and ``os.path.join``) keeps ``name`` as it is instead of joining it
    to the folder: POSIX-absolute, a Windows drive or a UNC/backslash root."""
    return _ABSOLUTE.match(name) is not None


def check_orbax_metadata(obj: Any, ctx: ScanContext, location: Location, name: str) -> None:
    """An Orbax PyTree checkpoint's ``_METADATA`` (``{"tree_metadata": {"('a', 'b')": {"key_metadata": [{"key":
    "a", ...}, ...], "value_metadata": ...}}, "use_ocdbt": ...}``). Restoring without a target tree
    (``PyTreeCheckpointer().restore(path)``, ``StandardCheckpointer().restore(path)``) rebuilds the tree from the
    ``key_metadata`` keys, names each leaf by its keys joined with ``.`` and, in a checkpoint without an OCDBT
    manifest, opens the zarr array at ``directory / name``: a name that is an absolute path replaces the folder,
    so the checkpoint loads any zarr array on the machine as its weights (confirmed with orbax-checkpoint 0.12.8
    and tensorstore: a key ``/abs/other/s`` restored the other checkpoint's array). tensorstore's file driver
    refuses ``..`` parts, so only absolute names leave the folder. Orbax names keys after the tree's own keys,
    which never start so. A reader that opts into rich types (``PyTreeMetadataOptions(support_rich_types=True)``)
    rebuilds the tree from ``value_metadata_tree`` instead, a JSON text whose top-level object is keyed by the
    first keys (confirmed likewise). The handler typestrs of ``_CHECKPOINT_METADATA`` and the rich tree's
    categories import nothing (namedtuples are rebuilt on the fly), and ``_sharding`` names devices only."""
    if name != "_metadata" or not isinstance(obj, dict) or not isinstance(obj.get("tree_metadata"), dict):
        return
    for count, (label, entry) in enumerate(obj["tree_metadata"].items()):
        if count >= MAX_CONFIG_NODES:
            raise ResourceLimitExceeded(
                "max_config_nodes", f"Orbax _METADATA has more than {MAX_CONFIG_NODES} entries"
            )
        keys = entry.get("key_metadata") if isinstance(entry, dict) else None
        if not isinstance(keys, list):
            continue
        param = ".".join(str(k.get("key")) for k in keys if isinstance(k, dict))
        if replaces_folder(param):
            ctx.add(
                rules.ConfigFilePath,
                f"Orbax _METADATA names the parameter '{param[:200]}' (tree key {str(label)[:200]}): restoring "
                "the checkpoint without a target opens the zarr array at that absolute path instead of one in "
                "the checkpoint folder",
                location,
                key=str(label)[:200],
                target=param[:200],
            )
    rich = obj.get("value_metadata_tree")
    try:
        tree = json.loads(rich) if isinstance(rich, str) else None
    except (ValueError, RecursionError):
        tree = None  # (Orbax's json.loads raises on it too: nothing is restored)
    if not isinstance(tree, dict):
        return
    for count, first in enumerate(tree):
        if count >= MAX_CONFIG_NODES:
            raise ResourceLimitExceeded(
                "max_config_nodes", f"Orbax value_metadata_tree has more than {MAX_CONFIG_NODES} entries"
            )
        if replaces_folder(first):
            ctx.add(
                rules.ConfigFilePath,
                f"Orbax _METADATA's value_metadata_tree has the top-level key '{first[:200]}': restoring with rich "
                "types opens the zarr arrays under that absolute path instead of the checkpoint folder",
                location,
                key="value_metadata_tree",
                target=first[:200],
            )


def _auto_map_refs(auto: Any, prefix: str, refs: list[tuple[str, Any]]) -> None:
    """The class references of one ``auto_map`` (a dict of lists or strings; anything else as it is)."""
    if isinstance(auto, dict):
        for key, value in auto.items():
            refs.extend(
                (f"{prefix}.{key}", ref)
                for ref in (value if isinstance(value, list) else [value])
                if ref is not None
            )
    elif auto is not None:
        refs.append((prefix, auto))


def _sub_config_auto_maps(obj: dict[str, Any], refs: list[tuple[str, Any]]) -> None:
    """``auto_map`` of a model config's sub-configs (``vision_config``, ``text_config`` ...): composite configs
    resolve their sub-config's class from it. vLLM 0.11's Nemotron-Nano-VL config fetched and ran the
    ``vision_config.auto_map.AutoConfig`` class of the repository it names whatever trust_remote_code said
    (CVE-2025-66448, GHSA-8fr4-5q9j-m8gm; confirmed with the config class of the vLLM 0.11.0 wheel: the module ran).
    The walk follows dicts only (sub-configs), bounded like the other config walks."""
    stack: list[tuple[str, dict[str, Any]]] = [
        (k, v) for k, v in obj.items() if type(v) is dict and k != "auto_map"
    ]
    visited = 0
    while stack and visited < MAX_CONFIG_NODES:
        path, node = stack.pop()
        visited += 1 + len(node)
        for key, value in node.items():
            if key == "auto_map":
                _auto_map_refs(value, f"{path}.auto_map", refs)
            elif type(value) is dict:
                stack.append((f"{path}.{key}", value))


_PEFT_PARENT_LIBRARIES: Final = (
    "transformers",
    "diffusers",
    "lerobot",
    "timm",
    "torch",
    "torchvision",
    "torchaudio",
    "sentence_transformers",
)
"""Packages whose modules an ``auto_mapping.parent_library`` may name unreported: the three PEFT 0.20+ imports from
by default and the model libraries whose classes PEFT writes there (``parent_library`` is the base model class's
``__module__``, e.g. ``transformers.models.bert.modeling_bert``, ``timm.models.vision_transformer``)."""


def _peft_module(value: Any, allowed: tuple[str, ...]) -> bool:
    return isinstance(value, str) and any(value == p or value.startswith(f"{p}.") for p in allowed)


def _peft_imports(obj: dict[str, Any], ctx: ScanContext, location: Location) -> None:
    """Modules a PEFT ``adapter_config.json`` makes the loader import by name (huggingface/peft issue 3085):

    * ``auto_mapping.parent_library`` (with no ``task_type``): ``AutoPeftModel.from_pretrained`` imports it to find
      the base model's class; before PEFT 0.20 any name, so a module shipped in the adapter folder runs when the
      folder is on ``sys.path`` (loaded from ``.``), and an installed module runs its import-time code;
    * ``megatron_core`` when ``megatron_config`` is set: LoRA's Megatron dispatcher imports it while the adapter is
      injected, reached by transformers' ``from_pretrained`` whenever PEFT is installed (any name before PEFT 0.20).

    Any other name is high (PEFT 0.20+ refuses those outside transformers, diffusers, lerobot and ``megatron.*``):
    the module is not analysed, and one shipped beside the adapter or an installed module with import-time code
    runs (confirmed with PEFT 0.18.1: both keys imported a module of the adapter folder)."""
    refs: list[tuple[str, Any]] = []
    auto = obj.get("auto_mapping")
    if isinstance(auto, dict) and obj.get("task_type") is None:
        parent = auto.get("parent_library")
        # "__main__" (a model class defined in the script that saved it) is the running program: nothing new runs
        if parent not in (None, "__main__") and not _peft_module(parent, _PEFT_PARENT_LIBRARIES):
            refs.append(("auto_mapping.parent_library", parent))
    if obj.get("megatron_config"):
        core = obj.get("megatron_core", "megatron.core")
        if not (isinstance(core, str) and core.startswith("megatron.")):
            refs.append(("megatron_core", core))
    for key, value in refs:
        shown = value[:200] if isinstance(value, str) else str(json_safe(value))[:200]
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH,
            f"{key} '{shown}': PEFT imports this module while loading the adapter (any module before PEFT 0.20: "
            "huggingface/peft issue 3085), so its import-time code runs; a module beside the adapter runs when the "
            "folder is on sys.path",
            location,
            target=shown,
        )


def _mlx_model_file(obj: dict[str, Any], ctx: ScanContext, location: Location) -> None:
    """``model_file`` of a ``config.json``: mlx-lm's ``load_model`` imports that Python file (joined to the model
    folder, so an absolute or ``../`` path leaves it) to build the architecture. Before mlx-lm 0.32 it did so on
    every plain ``load()``, with no opt-in (CVE-2026-5843, GHSA-9m9w-53g9-47c4); later versions still do with
    ``trust_remote_code=True``. mlx-vlm's ``load_model`` does the same with no opt-in at all (confirmed with
    mlx-vlm 0.7.10). transformers ignores the key and neither writes it, so it was put there by hand, and the
    module it names is not analysed: high whatever the value (any value is handed to the join)."""
    value = obj.get("model_file")
    if value is None:
        return
    shown = value[:200] if isinstance(value, str) else str(json_safe(value))[:200]
    ctx.add_severity(
        rules.HydraTarget,
        Severity.HIGH,
        f"model_file '{shown}': mlx-lm and mlx-vlm import and run this Python file while loading the model (mlx-vlm "
        "on every load; mlx-lm on every load before 0.32, CVE-2026-5843, and with trust_remote_code=True since); "
        "that code is not analysed",
        location,
        target=shown,
    )


_ATTN_KEYS: Final = frozenset(
    {"attn_implementation", "_attn_implementation", "_attn_implementation_internal"}
)
"""Keys of a transformers model config (and of each sub-config) that set its attention implementation: the first
two even in transformers 5.24 (``PreTrainedConfig.__init__`` pops the first, the second is a property setter), the
third before 5.3, when every config key became an attribute (CVE-2026-4372)."""
_HUB_KERNEL: Final = re.compile(r"(?:paged\|)?([^/:|]+)/[^/:]+(?:@[^/:]+)?(?::[^/:]+)?\Z")
"""transformers' ``is_kernel`` pattern (``org/repo[@rev][:function]``, after the ``paged|`` prefix it strips): such
an attention implementation is a Hugging Face Hub kernel repository, which ``from_pretrained`` downloads with the
``kernels`` package and imports (Python and compiled code) while building the model."""
_TRUSTED_KERNEL_ORG: Final = "kernels-community"
"""Hugging Face's curated kernel organisation: the one transformers 5.3+ loads without ``allow_all_kernels``."""
_REPO_ID: Final = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+\Z")


def _hub_code_of_model_config(obj: dict[str, Any], ctx: ScanContext, location: Location) -> None:
    """Code of another repository that a transformers ``config.json`` makes ``from_pretrained`` fetch and run
    without the caller's ``trust_remote_code``:

    * an attention implementation naming a Hub kernel (CVE-2026-4372: transformers 4.56-5.2 load any repository's
      kernel; 5.3+ still load those of ``kernels-community`` named by ``attn_implementation``). transformers never
      writes these keys when it saves a config, so they were put there by hand;
    * ``trust_remote_code: true`` together with a sub-config naming a repository (CVE-2026-5241: transformers 5.2's
      LightGlue config passed its own ``trust_remote_code`` to the ``AutoConfig.from_pretrained`` of its
      keypoint-detector sub-config, whose repository's ``auto_map`` code then ran).

    Sub-configs are searched too (``text_config``: each is built with the same keys); the walk is bounded."""
    kernels: list[tuple[str, str]] = []
    names: list[tuple[str, str]] = []
    trusts: list[str] = []
    stack: list[tuple[str, Any]] = [("", obj)]
    visited = 0
    while stack and visited < MAX_CONFIG_NODES:
        path, node = stack.pop()
        visited += 1
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            if not isinstance(key, str):
                continue
            where = f"{path}.{key}" if path else key
            if key in _ATTN_KEYS:
                # the setter also takes {sub-config name: implementation}
                values = value.items() if isinstance(value, dict) else [("", value)]
                kernels.extend(
                    (f"{where}.{k}" if k else where, v)
                    for k, v in values
                    if isinstance(v, str) and _HUB_KERNEL.match(v)
                )
            elif key == "trust_remote_code" and value is True:
                trusts.append(where)
            elif key == "_name_or_path" and path and isinstance(value, str) and value.strip():
                names.append((where, value))
            elif isinstance(value, dict):
                stack.append((where, value))
    for where, value in kernels[:_MAX_REMOTE_REFS]:
        org = _HUB_KERNEL.match(value).group(1).strip()  # type: ignore[union-attr]
        curated = org == _TRUSTED_KERNEL_ORG
        ctx.add_severity(
            rules.HydraTarget,
            Severity.LOW if curated else Severity.HIGH,
            f"{where} '{value[:200]}': transformers downloads this Hugging Face Hub kernel and imports its code while "
            "building the model, without trust_remote_code"
            + (
                " (Hugging Face's curated kernel organisation)"
                if curated
                else " (any repository before transformers 5.3: CVE-2026-4372); that code is not analysed"
            ),
            location,
            target=value[:200],
        )
    if trusts:
        for where, value in names[:_MAX_REMOTE_REFS]:
            ctx.add_severity(
                rules.HydraTarget,
                Severity.HIGH if _REPO_ID.match(value.strip()) else Severity.MEDIUM,
                f"{trusts[0]} is true and {where} names '{value[:200]}': a config that passes its own "
                "trust_remote_code to a sub-config's AutoConfig.from_pretrained runs that repository's auto_map code "
                "(transformers 5.2 LightGlue, CVE-2026-5241); that code is not analysed",
                location,
                target=value[:200],
            )


_DIFFUSERS_LIBRARIES: Final = frozenset({"diffusers", "transformers", "onnxruntime.training"})
"""The libraries diffusers loads pipeline components from by name (its LOADABLE_CLASSES); any other module name is
a diffusers pipelines module (``stable_diffusion``) or a custom component's ``<component>/<module>.py``."""
_DIFFUSERS_PIPELINE_MODULES: Final = frozenset(
    {
        "ace_step", "allegro", "alt_diffusion", "amused", "animatediff", "anyflow", "audio_diffusion", "audioldm",
        "audioldm2", "aura_flow", "blip_diffusion", "bria", "bria_fibo", "bria_fibo2", "chroma", "chronoedit",
        "cogvideo", "cogview3", "cogview4", "consisid", "consistency_models", "controlnet", "controlnet_hunyuandit",
        "controlnet_sd3", "controlnet_xs", "cosmos", "dance_diffusion", "ddim", "ddpm", "deepfloyd_if", "deprecated",
        "diffusion_gemma", "dit", "dreamlite", "easyanimate", "ernie_image", "flux", "flux2", "glm_image", "helios",
        "hidream_image", "hunyuan_image", "hunyuan_video", "hunyuan_video1_5", "hunyuandit", "i2vgen_xl", "ideogram4",
        "joyimage", "kandinsky", "kandinsky2_2", "kandinsky3", "kandinsky5", "kandinsky6", "kolors", "krea2",
        "latent_consistency_models", "latent_diffusion", "latent_diffusion_uncond", "latte", "ledits_pp", "llada2",
        "longcat_audio_dit", "longcat_image", "ltx", "ltx2", "lucy", "lumina", "lumina2", "marigold", "mochi",
        "motif_video", "musicldm", "nucleusmoe_image", "omnigen", "ovis_image", "pag", "paint_by_example", "pia",
        "pixart_alpha", "pndm", "prx", "qwenimage", "qwenimage21", "repaint", "rfd4_proteina", "sana", "sana_video",
        "sana_wm", "score_sde_ve", "semantic_stable_diffusion", "shap_e", "skyreels_v2", "spectrogram_diffusion",
        "stable_audio", "stable_audio_3", "stable_cascade", "stable_diffusion", "stable_diffusion_3",
        "stable_diffusion_attend_and_excite", "stable_diffusion_diffedit", "stable_diffusion_gligen",
        "stable_diffusion_k_diffusion", "stable_diffusion_ldm3d", "stable_diffusion_panorama", "stable_diffusion_safe",
        "stable_diffusion_sag", "stable_diffusion_variants", "stable_diffusion_xl", "stable_video_diffusion",
        "stochastic_karras_ve", "t2i_adapter", "text_to_video_synthesis", "unclip", "unidiffuser",
        "versatile_diffusion", "visualcloze", "vq_diffusion", "wan", "wuerstchen", "z_image",
    }
)  # fmt: skip
"""The modules of ``diffusers.pipelines`` (and ``pipelines.deprecated``) of diffusers 0.35 to 0.42: a component
library of that name is read from the pipelines package (``hasattr(pipelines, library)``), not imported."""
_COMPONENT_PACKAGES: Final = (
    "diffusers",
    "transformers",
    "onnxruntime",
    "torch",
    "torchvision",
    "torchaudio",
    "timm",
    "peft",
    "accelerate",
    "sentence_transformers",
    "open_clip",
)
"""Model libraries whose modules a component may name unreported: importing them runs only what installing them
did (``save_pretrained`` writes a component class's module, ``transformers``, or the full path of one defined
elsewhere)."""


_MAX_COMPONENT_FILES: Final = 1000
"""Components of a ``model_index.json`` whose ``<component>/<module>.py`` is looked for on disk."""


def _component_library(value: Any) -> bool:
    """Whether importing the component library ``value`` runs nothing a model folder brings: one of diffusers'
    libraries or pipelines modules, a module of a model library (not a package's ``__main__`` module, which runs its
    program when imported), or ``__main__`` itself (what ``save_pretrained`` writes for a class of the script)."""
    if not isinstance(value, str) or value in _DIFFUSERS_LIBRARIES or value in _DIFFUSERS_PIPELINE_MODULES:
        return isinstance(value, str)
    if value == "__main__":
        return True  # a component class of the script that saved it: import_module gives the running program
    return _peft_module(value, _COMPONENT_PACKAGES) and "__main__" not in value.split(".")


def _diffusers_custom_code(obj: dict[str, Any], ctx: ScanContext, location: Location) -> None:
    """Custom code a diffusers pipeline folder makes ``DiffusionPipeline.from_pretrained`` import and run: a
    ``_class_name`` of ``[module, class]`` is a pipeline class from ``<module>.py`` beside ``model_index.json``, and a
    component ``[module, class]`` whose ``<component>/<module>.py`` exists is a custom component. For a local folder
    (a clone, a downloaded snapshot) diffusers before 0.38 ran both with no opt-in; 0.38+ asks for
    ``trust_remote_code=True`` (confirmed with 0.35.2, 0.36.0 and 0.37.1, and 0.38.0 refusing): high, as a loading
    script is. The file itself is found only for a file on disk (inside an archive the names are judged by the
    first rule alone); any other component library is judged by :func:`_diffusers_libraries`."""
    import os

    refs: list[tuple[str, str]] = []
    cls = obj.get("_class_name")
    if isinstance(cls, list | tuple) and cls and isinstance(cls[0], str):
        refs.append(("_class_name", f"{cls[0]}.py"))
    folder = os.path.dirname(location.path) if location.member is None else None
    libraries: list[tuple[str, str]] = []
    for i, (component, value) in enumerate(obj.items()):
        if component.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        module = value[0]
        if not isinstance(module, str) or module in _DIFFUSERS_LIBRARIES:
            continue
        if (
            folder is not None
            and i
            < _MAX_COMPONENT_FILES  # (past it, a high finding either way: no file-system call per entry)
            and _DOTTED.match(module)
            and os.path.isfile(os.path.join(folder, component, f"{module}.py"))
        ):
            refs.append((component, f"{component}/{module}.py"))
        elif not _component_library(module):
            libraries.append((component, module))
    _diffusers_libraries(libraries, "model_index.json", ctx, location)
    refs = refs[:_MAX_REMOTE_REFS]
    for key, where in refs:
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH,
            f"{key}: diffusers imports and runs '{where[:200]}' of the model folder when the pipeline is loaded (with "
            "no opt-in for a local folder before diffusers 0.38, with trust_remote_code=True since); that code is not "
            "analysed",
            location,
            target=where[:200],
        )


def _diffusers_modular_libraries(obj: dict[str, Any], ctx: ScanContext, location: Location) -> None:
    """``modular_model_index.json``: ``ModularPipeline`` reads each component ``[library, class, spec]`` and
    resolves the spec's ``type_hint`` ``[library, class]`` with ``simple_get_class_obj``, which imported any library
    before diffusers 0.42.1 (confirmed with diffusers 0.35.2: ``ModularPipeline.from_pretrained`` imported a module
    named there)."""
    libraries: list[tuple[str, str]] = []
    for component, value in obj.items():
        if component.startswith("_") or not isinstance(value, list) or len(value) != 3:
            continue
        spec = value[2]
        hint = spec.get("type_hint") if isinstance(spec, dict) else None
        # (the entry's own [library, class] is not read: the spec's type_hint is what is resolved)
        module = hint[0] if isinstance(hint, list) and hint else None
        if isinstance(module, str) and not _component_library(module):
            libraries.append((f"{component}.type_hint", module))
    _diffusers_libraries(libraries, "modular_model_index.json", ctx, location)


def _diffusers_libraries(
    libraries: list[tuple[str, str]], file: str, ctx: ScanContext, location: Location
) -> None:
    """Report the component libraries that diffusers imports by name: ``DiffusionPipeline.from_pretrained`` ran
    ``importlib.import_module(library)`` for any library a component of ``model_index.json`` named, with no opt-in,
    until diffusers 0.42.1 (which imports only its own libraries and reads any other from ``sys.modules``). A
    module beside the pipeline runs when the folder is the working directory or on ``sys.path``, and an installed
    module runs its import-time code (confirmed with diffusers 0.35.2: a component ``["<module>", "UNet2DModel"]``
    imported that module of the working folder). High, as PEFT's ``parent_library`` is."""
    for where, module in libraries[:_MAX_REMOTE_REFS]:
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH,
            f"{file} component {where[:100]} names library '{module[:200]}': diffusers before 0.42.1 imports this "
            "module while loading the pipeline, so its import-time code runs (a module beside the pipeline when the "
            "folder is on sys.path); that code is not analysed",
            location,
            target=module[:200],
        )
    if len(libraries) > _MAX_REMOTE_REFS:
        ctx.add_severity(
            rules.HydraTarget,
            Severity.HIGH,
            f"{len(libraries) - _MAX_REMOTE_REFS} more component libraries than the {_MAX_REMOTE_REFS} listed",
            location,
            more=len(libraries) - _MAX_REMOTE_REFS,
        )


# ------------------------------------------------------------------------------------------------------ skops

_SKOPS_LOADERS: Final = frozenset(
    {
        "BytearrayNode", "BytesNode", "CachedNode", "ConstructorFromReduceNode", "DTypeNode", "DefaultDictNode",
        "DictNode", "FunctionNode", "JsonNode", "ListNode", "LossNode", "MaskedArrayNode", "MethodNode",
        "NdArrayNode", "ObjectNode", "OperatorFuncNode", "PartialNode", "QuantileForestNode",
        "RandomGeneratorNode", "RandomStateNode", "SetNode", "SliceNode", "SparseMatrixNode", "TreeNode",
        "TupleNode", "TypeNode",
    }
)  # fmt: skip
"""Every loader of skops' protocols (skops 0.13); a file naming another one does not load."""
_SKOPS_REBUILD: Final = frozenset(
    {
        "ObjectNode", "TreeNode", "LossNode", "QuantileForestNode", "NdArrayNode", "MaskedArrayNode",
        "SparseMatrixNode", "DTypeNode", "RandomStateNode", "RandomGeneratorNode", "TypeNode",
    }
)  # fmt: skip
"""Loaders whose own code builds the object (``cls.__new__`` and its state, a fixed constructor on array data) or
hands out a type: a class allowed by pattern is enough, as for NEWOBJ + BUILD in a pickle. The others call what
the node names with its content (containers, ``ConstructorFromReduceNode``) or hand it out as a callable
(``FunctionNode``, ``MethodNode``, ``OperatorFuncNode``), which needs an exact allow-list entry."""


def is_skops_schema(obj: Any) -> bool:
    return isinstance(obj, dict) and "__loader__" in obj and ("protocol" in obj or "_skops_version" in obj)


def check_skops_schema(obj: Any, ctx: ScanContext, location: Location) -> None:
    """Judge every type, function and method a skops ``schema.json`` makes ``skops.io.load`` import."""
    reported: set[str] = set()
    for _, node in walk_config(obj):
        if "__loader__" not in node:
            continue
        loader = node.get("__loader__")
        module, cls = node.get("__module__"), node.get("__class__")
        if not isinstance(loader, str) or loader not in _SKOPS_LOADERS:
            ctx.fail(location, f"skops schema node with an unknown loader {str(loader)[:100]!r}")
            continue
        if not (isinstance(module, str) and isinstance(cls, str)):
            if loader != "CachedNode":
                ctx.fail(location, f"skops {loader} without a module and class name")
            continue
        names = [(f"{module}.{cls}", loader not in _SKOPS_REBUILD)]
        if loader == "OperatorFuncNode":
            names = [
                (f"operator.{cls}", True)
            ]  # skops reads the class from the operator module whatever it says
        if loader == "MethodNode":
            content = node.get("content")
            func = content.get("func") if isinstance(content, dict) else None
            if not isinstance(func, str):
                ctx.fail(location, "skops MethodNode without a method name")
                continue
            names.append((f"{module}.{cls}.{func}", True))
        if loader == "PartialNode" and module == "functools" and cls == "partial":
            continue  # always functools.partial; the function and its arguments are nodes judged on their own
        for name, called in names:
            if not _DOTTED.match(name):
                ctx.fail(location, f"skops node names {name[:200]!r}, which is not a dotted Python name")
                continue
            if name in reported:
                continue
            c = judge_dotted(ctx.allow, name, called=called)
            if c.allowed:
                continue
            reported.add(name)
            ctx.add_severity(
                rules.SkopsType,
                c.severity or Severity.HIGH,
                f"skops {loader} makes skops.io.load import '{name[:200]}' ({c.reason or 'not on the allow-list'})",
                location,
                name=name[:200],
                category=c.category,
            )
