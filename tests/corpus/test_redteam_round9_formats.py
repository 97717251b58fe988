"""Round 9 of the internal red team: container and non-pickle formats.

Each case is built as bytes here and scanned; where cheap, the real reader is run on the case (a template rendered
by jinja2, an archive read by the standard library) to show the case does what it claims, with a harmless effect
only (a value printed, a file in a temporary folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.domain import Verdict

# ------------------------------------------------------ chat templates: a mutating method reached as a value

# The analysis follows what ``x.append(v)`` puts into a list or dict, but a template can also read the method as
# a value and call it elsewhere; every string it puts there is then a name the template chose. Rendered by a plain
# jinja2.Environment (llama-cpp-python before 0.2.72, CVE-2024-34359), ``''[l[0]]`` is ``''.__class__`` and the
# walk goes on to ``__globals__`` and os.popen.
_MUTATOR_VALUES = {
    "set-bound-method": "{% set l = [] %}{% set f = l.append %}{% set _ = f('__class__') %}{{ ''[l[0]] }}",
    "context-bound-method": (
        "{% set f = messages.append %}{% set _ = f('__class__') %}{{ ''[messages[-1]] }}"
    ),
    "item-lookup-method": "{% set l = [] %}{% set _ = l['append']('__class__') %}{{ ''[l[0]] }}",
    "attr-filter-method": "{% set l = [] %}{% set _ = (l|attr('append'))('__class__') %}{{ ''[l[0]] }}",
    "attr-filter-insert": "{% set l = [] %}{% set _ = (l|attr('insert'))(0, '__class__') %}{{ ''[l[0]] }}",
    "attr-filter-setdefault": (
        "{% set d = {} %}{% set _ = (d|attr('setdefault'))('k', '__class__') %}{{ ''[d.k] }}"
    ),
    "context-dict-update": (
        "{% set _ = (messages[0]|attr('update'))({'content': '__class__'}) %}{{ ''[messages[0].content] }}"
    ),
    "map-attribute-method": (
        "{% set _ = (messages|map(attribute='update')|first)({'content': '__class__'}) %}"
        "{{ ''[messages[0].content] }}"
    ),
    "macro-argument-method": (
        "{% set l = [] %}{% macro put(f) %}{{ f('__class__') }}{% endmacro %}{% set _ = put(l.append) %}"
        "{{ ''[l[0]] }}"
    ),
    "loop-item-method": (
        "{% set l = [] %}{% for f in [l.append] %}{% set _ = f('__class__') %}{% endfor %}{{ ''[l[0]] }}"
    ),
    "namespace-held-method": (
        "{% set l = [] %}{% set ns = namespace(f=l.append) %}{% set _ = ns.f('__class__') %}{{ ''[l[0]] }}"
    ),
    "groupby-grouper-method": (
        "{% set _ = ((messages|groupby('update')|first)[0])({'content': '__class__'}) %}"
        "{{ ''[messages[0].content] }}"
    ),
    "dotted-map-attribute-method": (
        "{% set d = {'x': {}} %}{% set _ = ([d]|map(attribute='x.update')|first)({'k': '__class__'}) %}"
        "{{ ''[d.x.k] }}"
    ),
    "default-of-undefined-method": (
        "{% set l = [] %}{% set f = undefined_thing|default(l.append) %}{% set _ = f('__class__') %}"
        "{{ ''[l[0]] }}"
    ),
    "conditional-method": "{% set l = [] %}{% set _ = (l.append if true else none)('__class__') %}{{ ''[l[0]] }}",
    "dict-held-method": (
        "{% set l = [] %}{% set d = {'f': l.append} %}{% set _ = d.f('__class__') %}{{ ''[l[0]] }}"
    ),
}


def _template_config(template: str) -> dict[str, bytes]:
    return {"tokenizer_config.json": json.dumps({"chat_template": template}).encode()}


@pytest.mark.parametrize("case", sorted(_MUTATOR_VALUES))
def test_chat_template_mutating_method_called_as_a_value(tmp_path: Path, case: str) -> None:
    assert_caught(scan_files(tmp_path, _template_config(_MUTATOR_VALUES[case])), "LW-MODEL-040")


def test_chat_template_mutating_method_as_a_value_walks_attributes_in_plain_jinja() -> None:
    import jinja2

    messages = [{"role": "user", "content": "hi"}]
    for case in (
        "set-bound-method",
        "attr-filter-method",
        "namespace-held-method",
        "dotted-map-attribute-method",
    ):
        out = jinja2.Environment().from_string(_MUTATOR_VALUES[case]).render(messages=messages)
        assert out == "<class 'str'>", case


_MUTATOR_BENIGN = [
    "{% set ns = namespace(parts=[]) %}{% for m in messages %}{% set _ = ns.parts.append(m.content) %}"
    "{% endfor %}{{ ns.parts|join('\\n') }}",
    "{% set out = [] %}{% set add = out.append %}{% for m in messages %}{% set _ = add(m['content']) %}"
    "{% endfor %}{% for o in out %}{{ o }}{% endfor %}",
    "{% set l = [] %}{% set _ = (l|attr('append'))('content') %}{% for m in messages %}{{ m[l[0]] }}"
    "{% endfor %}",
    "{% set x = {} %}{% set _ = x.update({'role': 'assistant'}) %}{% for m in messages %}{{ m[x.role] }}"
    "{% endfor %}",
]


@pytest.mark.parametrize("template", _MUTATOR_BENIGN)
def test_chat_template_mutating_methods_putting_data_or_safe_names_stay_clean(
    tmp_path: Path, template: str
) -> None:
    assert scan_files(tmp_path, _template_config(template))[0].verdict is Verdict.CLEAN


# ----------------------------------------------- chat templates: names whose value the model's files supply

# bos_token, eos_token and the other special tokens are passed to the template by the renderer, but their text
# comes from the model's own tokenizer config or GGUF vocabulary, written by the template's author. With a
# bos_token of '__globals__', llama-cpp-python's plain-jinja2 renderer (CVE-2024-34359) turns
# ``raise_exception[bos_token]`` into the renderer module's globals, and ``['os'].popen`` runs a command.
_TOKEN_KEYED = {
    "function-globals": "{{ raise_exception[bos_token]['os'].popen('id').read() }}",
    "eos-item": "{% for m in messages %}{{ m[eos_token] }}{% endfor %}",
    "extra-special-token": "{{ ''[image_token] }}",
    "token-list-item": "{{ ''[additional_special_tokens[0]] }}",
    "map-attribute": "{{ messages|map(attribute=pad_token)|list }}",
}


@pytest.mark.parametrize("case", sorted(_TOKEN_KEYED))
def test_chat_template_name_taken_from_a_special_token_is_reported(tmp_path: Path, case: str) -> None:
    config = {"chat_template": _TOKEN_KEYED[case], "bos_token": "__globals__"}
    assert_caught(
        scan_files(tmp_path, {"tokenizer_config.json": json.dumps(config).encode()}), "LW-MODEL-040"
    )


def test_chat_template_keyed_by_a_special_token_in_gguf_is_reported(tmp_path: Path) -> None:
    import _container_payloads as cp

    assert_caught(scan_files(tmp_path, {"m.gguf": cp.gguf_file(_TOKEN_KEYED["function-globals"])}))


def test_special_token_key_reaches_function_globals_in_plain_jinja(tmp_path: Path) -> None:
    import jinja2

    marker = tmp_path / "ran"

    def raise_exception(message: str) -> None:  # as the renderer defines it, in a module that imports os
        raise ValueError(message)

    template = _TOKEN_KEYED["function-globals"].replace("'id'", repr(f"touch {marker}"))
    jinja2.Environment().from_string(template).render(
        messages=[], bos_token="__globals__", eos_token="</s>", raise_exception=raise_exception
    )
    assert os.path.exists(marker)  # this module's os, reached through the function's globals


def test_chat_templates_printing_or_testing_special_tokens_stay_clean(tmp_path: Path) -> None:
    template = (
        "{{ bos_token }}{% for m in messages %}{% if m['content'].startswith(eos_token) %}{{ m['content'] }}"
        "{% else %}{{ m['content'] | replace(image_token, '') }}{% endif %}{{ eos_token }}{% endfor %}"
        "{% if additional_special_tokens %}{{ additional_special_tokens|join(',') }}{% endif %}"
    )
    config = {"chat_template": template, "bos_token": "<s>", "eos_token": "</s>"}
    result = scan_files(tmp_path, {"tokenizer_config.json": json.dumps(config).encode()})
    assert result[0].verdict is Verdict.CLEAN, result[0].findings


# ------------------------------------------- Keras: a "function" object named in a non-modelling Keras module

# Keras resolves {"class_name": "function", "module": M, "config": NAME} to the public API symbol M.NAME and hands
# it to the model, which calls it (as an activation, a loss, or, before 3.11, a functional "layer"). Keras keeps a
# deny-list of non-modelling APIs (keras.utils.get_file was CVE-2025-8747, after it was missing from that list);
# the analysis allows only the modules models are built from, so the functions that list does not name yet are
# reported too.
_NON_MODELLING = [
    ("keras.datasets.mnist", "load_data"),
    ("keras.visualization", "plot_model"),
    ("keras.utils", "plot_model"),
    ("keras.distribution", "initialize"),
    ("keras.export", "export_saved_model"),
    ("keras.mixed_precision", "set_global_policy"),
    ("keras.src.utils.file_utils", "rmtree"),
    ("keras.applications.resnet", "ResNet50"),
    ("tf_keras.datasets.imdb", "load_data"),
]


def _with_loss(loss: dict[str, object]) -> dict[str, object]:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "s", "layers": []},
        "compile_config": {"loss": loss, "metrics": None},
    }


@pytest.mark.parametrize(("module", "name"), _NON_MODELLING)
def test_keras_function_object_of_a_non_modelling_module(tmp_path: Path, module: str, name: str) -> None:
    import _container_payloads as cp

    loss = {"module": module, "class_name": "function", "config": name, "registered_name": "function"}
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_with_loss(loss))})
    assert_caught(res, "LW-MODEL-033")


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("keras.losses", "mean_squared_error"),
        ("keras.activations", "relu"),
        ("keras.src.activations.activations", "gelu"),
        ("keras.metrics", "binary_accuracy"),
        ("keras.ops", "add"),
        ("keras.ops.image", "resize"),
        ("keras.initializers", "he_normal"),
        ("keras.applications.resnet", "preprocess_input"),
        ("tensorflow.keras.activations", "swish"),
    ],
)
def test_keras_function_object_of_a_modelling_module_stays_clean(
    tmp_path: Path, module: str, name: str
) -> None:
    import _container_payloads as cp

    loss = {"module": module, "class_name": "function", "config": name, "registered_name": "function"}
    res = scan_files(tmp_path, {"model.keras": cp.keras_zip(_with_loss(loss))})
    assert res[0].verdict is Verdict.CLEAN, res[0]
