"""Round 10 of the internal red team: Jinja chat templates.

Each case is built here and scanned; where cheap the real renderer is run on it (a plain ``jinja2.Environment``,
the worst case: llama-cpp-python before the CVE-2024-34359 fix) with a harmless effect only (a count printed, a
folder made in a temporary folder), and transformers is run to show which names reach the template.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_container_bypasses import assert_caught
from test_container_bypasses import scan as scan_files

from loopwarden.checks.interface import Limits
from loopwarden.checks.models._base import ScanContext
from loopwarden.checks.models.chat_template import check_template
from loopwarden.domain import Finding, Location, Severity, Verdict


def _findings(template: str) -> list[Finding]:
    ctx = ScanContext("t", Limits(), None)
    check_template(template, ctx, Location("t"))
    assert not ctx.unverified, ctx.unverified
    return ctx.findings


def _worst(template: str) -> Severity | None:
    return max((f.severity for f in _findings(template)), default=None)


def _tokenizer_config(template: str, extra: dict[str, str]) -> dict[str, bytes]:
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "extra_special_tokens": extra,
        "chat_template": template,
    }
    return {"tokenizer_config.json": json.dumps(config).encode()}


# ------------------------------------------ render-context names of any spelling that the model's files supply

# transformers passes the tokenizer's whole special-tokens map to the template, and a dict of
# ``extra_special_tokens`` in tokenizer_config.json adds entries of any name: ``{"k_cls": "__class__"}`` makes
# ``k_cls`` a template variable whose text the model's author wrote. Only names ending in _token were taken for
# model text; every other free name was context data, so ``''[k_cls]`` was clean. Under a plain Environment the
# chain below reaches object.__subclasses__() (and from there os), the names all in the config.
_WALK_NAMES = {"k_cls": "__class__", "k_mro": "__mro__", "k_sub": "__subclasses__"}
_FREE_NAME_KEYED = {
    "item-chain": "{{ (messages[0].content[k_cls][k_mro][1][k_sub]()|length > 100) }}",
    "one-item": "{% for m in messages %}{{ m.content[k_cls] }}{% endfor %}",
    "through-a-set": "{% set c = k_cls %}{{ ''[c] }}",
    "concatenated": "{{ ''['' ~ k_cls] }}",
    "format-string": "{{ k_fmt.format(messages) }}",
    "shadowed-global": "{{ ''[raise_exception] }}",
    # a set inside a loop's body does not bind the name after the loop: there it is the context's value
    "set-only-in-a-loop": "{% for m in messages %}{% set c = m.role %}{% endfor %}{{ ''[c] }}",
    "set-only-later": "{{ ''[c] }}{% set c = 'role' %}",
    # an if without else (or a branch that does not set it) leaves the context's value where it is not taken
    "set-only-in-one-branch": (
        "{% if messages %}{% set c = 'role' %}{% elif tools %}{% set c = 'x' %}{% endif %}{{ ''[c] }}"
    ),
}


# where the template binds a name on every path (an if opens no scope), its own values are the only ones
_BOUND_ON_EVERY_PATH = [
    "{% if messages[0].text is defined %}{% set key = 'text' %}{% else %}{% set key = 'content' %}{% endif %}"
    "{% for m in messages %}{{ m[key] }}{% endfor %}",
    "{% if tools %}{% if messages %}{% set key = 'text' %}{% else %}{% set key = 'role' %}{% endif %}"
    "{% elif documents %}{% set key = 'name' %}{% else %}{% set key = 'content' %}{% endif %}{{ messages[0][key] }}",
    "{% macro pick(m) %}{{ m.content }}{% endmacro %}{% for m in messages %}{{ m[pick(m)|trim] if false }}{% endfor %}",
]


@pytest.mark.parametrize("template", _BOUND_ON_EVERY_PATH)
def test_a_name_the_template_binds_on_every_path_stays_clean(template: str) -> None:
    assert _findings(template) == []


@pytest.mark.parametrize("case", sorted(_FREE_NAME_KEYED))
def test_chat_template_name_taken_from_any_model_supplied_variable_is_reported(
    tmp_path: Path, case: str
) -> None:
    extra = {**_WALK_NAMES, "k_fmt": "{0.__class__}", "raise_exception": "__class__", "c": "__class__"}
    assert_caught(scan_files(tmp_path, _tokenizer_config(_FREE_NAME_KEYED[case], extra)), "LW-MODEL-040")


@pytest.mark.parametrize("case", sorted(_FREE_NAME_KEYED))
def test_model_supplied_names_are_at_least_high(case: str) -> None:
    assert (_worst(_FREE_NAME_KEYED[case]) or Severity.INFO) >= Severity.HIGH, _findings(
        _FREE_NAME_KEYED[case]
    )


def test_transformers_passes_extra_special_tokens_of_any_name_to_the_template(tmp_path: Path) -> None:
    pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    Tokenizer(models.WordLevel(vocab, unk_token="<unk>")).save(str(tmp_path / "tokenizer.json"))
    files = _tokenizer_config("{{ k_cls }}|{{ k_sub }}", _WALK_NAMES)
    (tmp_path / "tokenizer_config.json").write_bytes(files["tokenizer_config.json"])
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    rendered = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert rendered == "__class__|__subclasses__"


def test_model_supplied_names_walk_to_object_subclasses_in_plain_jinja() -> None:
    import jinja2

    template = _FREE_NAME_KEYED["item-chain"]
    out = jinja2.Environment().from_string(template).render(messages=[{"content": "hi"}], **_WALK_NAMES)
    assert out == "True"


# --------------------------------------------------------- names the chat's messages choose, walked in a chain

# One name the data chooses (``m[m.role]``) reads one attribute at most. A second one on what the first reached
# is a walk the chat's user steers: below, three system messages ("__globals__", "os", "mkdir") walk from the
# renderer's raise_exception to os.mkdir, and a message's ``name`` is its argument. A data format string walks
# the same way in one field ({0.__globals__[os].environ}). Both were clean; they are planted gadgets (HIGH).
_DATA_WALKS = {
    "loop-chain": (
        "{%- set ns = namespace(o=raise_exception) -%}{%- for m in messages -%}{%- if m.role == 'system' -%}"
        "{%- set ns.o = ns.o[m.content] -%}{%- else -%}{{ m.role }}: {{ m.content }}\n{%- endif -%}{%- endfor -%}"
        "{%- if ns.o is callable and messages[-1].name is defined -%}{{ ns.o(messages[-1].name) }}{%- endif -%}"
    ),
    "item-chain": "{% for m in messages %}{{ m[m.role][m.content] }}{% endfor %}",
    "through-a-set": "{% set a = messages[0][messages[1].content] %}{{ a[messages[2].content] }}",
    "after-a-call": "{% for m in messages %}{{ m[m.role]()[m.content] }}{% endfor %}",
    "format-string": "{% for m in messages %}{{ m.content.format(raise_exception) }}{% endfor %}",
    "format-map": "{% for m in messages %}{{ m.content.format_map({'a': m}) }}{% endfor %}",
}


@pytest.mark.parametrize("case", sorted(_DATA_WALKS))
def test_a_walk_the_chat_data_steers_is_high(case: str) -> None:
    assert _worst(_DATA_WALKS[case]) is Severity.HIGH, _findings(_DATA_WALKS[case])


def test_a_walk_the_chat_data_steers_is_reported_in_a_gguf(tmp_path: Path) -> None:
    import _container_payloads as cp

    assert_caught(scan_files(tmp_path, {"m.gguf": cp.gguf_file(_DATA_WALKS["loop-chain"])}), "LW-MODEL-040")


def _raise_exception(message: str) -> Any:  # as the renderers define it, in a module that imports os
    raise ValueError(message + os.sep)


def test_a_data_steered_walk_runs_code_in_plain_jinja(tmp_path: Path) -> None:
    import jinja2

    marker = tmp_path / "made"
    messages = [{"role": "system", "content": c} for c in ("__globals__", "os", "mkdir")]
    messages.append({"role": "user", "content": "hi", "name": str(marker)})
    template = jinja2.Environment().from_string(_DATA_WALKS["loop-chain"])
    template.render(messages=messages, raise_exception=_raise_exception)
    assert marker.is_dir()


def test_a_data_format_string_reads_globals_in_plain_jinja() -> None:
    import jinja2

    template = jinja2.Environment().from_string(_DATA_WALKS["format-string"])
    out = template.render(messages=[{"content": "{0.__globals__[os].sep}"}], raise_exception=_raise_exception)
    assert out == os.sep


# one name chosen by the data, numbers, and keys the template spells: no walk
_DATA_BENIGN = [
    "{% for m in messages %}{{ m[m.role] }}{% endfor %}",
    "{% set roles = {'user': 'U', 'assistant': 'A'} %}{% for m in messages %}{{ roles[m.role] }}{% endfor %}",
    "{% for m in messages %}{{ messages[loop.index0]['content'] }}{{ m['tool_calls'][0]['function'] }}{% endfor %}",
    "{% for t in tools %}{% for k, v in t.function.parameters.properties|items %}{{ k }}: {{ v.type }}"
    "{% endfor %}{% endfor %}",
    "{% for m in messages %}{{ '{0}: {1}'.format(m.role, m.content) }}{% endfor %}",
    "{% set ns = namespace(i=0) %}{% for m in messages %}{% set ns.i = loop.index0 %}{% endfor %}"
    "{{ messages[ns.i].content }}",
]


@pytest.mark.parametrize("template", _DATA_BENIGN)
def test_one_data_chosen_name_and_spelled_keys_stay_clean(template: str) -> None:
    assert _findings(template) == []


# ------------------------------------------------------ benign templates of real model families stay clean

_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'"
    " + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)
_LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim"
    " + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
_LLAMA31_TOOLS = """{{- bos_token }}
{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}
{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- if not tools is defined %}{%- set tools = none %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content']|trim %}
{%- set messages = messages[1:] %}{%- else %}{%- set system_message = "" %}{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}{{- "Environment: ipython\\n" }}{%- endif %}
{%- if builtin_tools is defined %}
{{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
{%- for t in tools %}{{- t | tojson(indent=4) }}{{- "\\n\\n" }}{%- endfor %}{%- endif %}
{{- system_message }}{{- "<|eot_id|>" }}
{%- for message in messages %}
{%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
{%- elif 'tool_calls' in message %}{%- set tool_call = message.tool_calls[0].function %}
{%- if builtin_tools is defined and tool_call.name in builtin_tools %}
{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{{- "<|python_tag|>" + tool_call.name + ".call(" }}
{%- for arg_name, arg_val in tool_call.arguments | items %}{{- arg_name + '="' + arg_val + '"' }}
{%- if not loop.last %}{{- ", " }}{%- endif %}{%- endfor %}{{- ")" }}
{%- else %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
{{- '{"name": "' + tool_call.name + '", ' }}{{- '"parameters": ' }}{{- tool_call.arguments | tojson }}{{- "}" }}
{%- endif %}
{%- if builtin_tools is defined %}{{- "<|eom_id|>" }}{%- else %}{{- "<|eot_id|>" }}{%- endif %}
{%- elif message.role == "tool" or message.role == "ipython" %}
{{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
{%- if message.content is mapping or message.content is iterable %}{{- message.content | tojson }}
{%- else %}{{- message.content }}{%- endif %}{{- "<|eot_id|>" }}{%- endif %}{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"""
_MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
_GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
_PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)
_QWEN25_TOOLS = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}
    {%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}{%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n<tools>" }}
    {%- for tool in tools %}{{- "\\n" }}{{- tool | tojson }}{%- endfor %}
    {{- "\\n</tools>\\n\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}" }}
    {{- "\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}{{- '<|im_start|>system\\nYou are Qwen.<|im_end|>\\n' }}{%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first)
        or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}{{- '\\n' + message.content }}{%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}{{- tool_call.name }}{{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\\n<tool_response>\\n' }}{{- message.content }}{{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}{{- '<|im_end|>\\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"""
# DeepSeek's special tokens are spelled with U+FF5C (fullwidth vertical line), written <! !> here
_DEEPSEEK = (
    (
        "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
        "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='') %}"
        "{%- for message in messages %}{%- if message['role'] == 'system' %}"
        "{% set ns.system_prompt = message['content'] %}{%- endif %}{%- endfor %}{{bos_token}}{{ns.system_prompt}}"
        "{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}"
        "{{'<!User!>' + message['content']}}{%- endif %}"
        "{%- if message['role'] == 'assistant' and message['content'] is none %}{%- set ns.is_tool = false -%}"
        "{%- for tool in message['tool_calls']%}{%- if not ns.is_first %}"
        "{{'<!Assistant!><!tool▁calls▁begin!><!tool▁call▁begin!>' + tool['type'] + '<!tool▁sep!>'"
        " + tool['function']['name'] + '\\n```json\\n' + tool['function']['arguments'] + '\\n```<!tool▁call▁end!>'}}"
        "{%- set ns.is_first = true -%}{%- else %}"
        "{{'\\n<!tool▁call▁begin!>' + tool['type'] + '<!tool▁sep!>' + tool['function']['name'] + '\\n```json\\n'"
        " + tool['function']['arguments'] + '\\n```<!tool▁call▁end!>'}}"
        "{{'<!tool▁calls▁end!><!end▁of▁sentence!>'}}{%- endif %}{%- endfor %}{%- endif %}"
        "{%- if message['role'] == 'assistant' and message['content'] is not none %}"
        "{%- if ns.is_tool %}{{'<!tool▁outputs▁end!>' + message['content'] + '<!end▁of▁sentence!>'}}"
        "{%- set ns.is_tool = false -%}{%- else %}{% set content = message['content'] %}"
        "{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
        "{{'<!Assistant!>' + content + '<!end▁of▁sentence!>'}}{%- endif %}{%- endif %}"
        "{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}"
        "{{'<!tool▁outputs▁begin!><!tool▁output▁begin!>' + message['content'] + '<!tool▁output▁end!>'}}"
        "{%- set ns.is_output_first = false %}{%- else %}"
        "{{'\\n<!tool▁output▁begin!>' + message['content'] + '<!tool▁output▁end!>'}}{%- endif %}{%- endif %}"
        "{%- endfor -%}{% if ns.is_tool %}{{'<!tool▁outputs▁end!>'}}{% endif %}"
        "{% if add_generation_prompt and not ns.is_tool %}{{'<!Assistant!><think>\\n'}}{% endif %}"
    )
    .replace("<!", "<\uff5c")
    .replace("!>", "\uff5c>")
)
FAMILIES = {
    "chatml": _CHATML,
    "llama2": _LLAMA2,
    "llama3": _LLAMA3,
    "llama3.1-tools": _LLAMA31_TOOLS,
    "mistral": _MISTRAL,
    "gemma": _GEMMA,
    "phi3": _PHI3,
    "qwen2.5-tools": _QWEN25_TOOLS,
    "deepseek-r1": _DEEPSEEK,
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_templates_of_real_model_families_are_clean(family: str) -> None:
    assert _findings(FAMILIES[family]) == []


@pytest.mark.parametrize("family", ["llama3.1-tools", "qwen2.5-tools", "gemma"])
def test_real_families_with_extra_special_tokens_stay_clean(tmp_path: Path, family: str) -> None:
    files = _tokenizer_config(FAMILIES[family], {"image_token": "<image>", "boi": "<start_of_image>"})
    result = scan_files(tmp_path, files)
    assert result[0].verdict is Verdict.CLEAN, result[0].findings


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_real_family_templates_render_in_plain_jinja(family: str) -> None:
    """The benign templates above are templates a renderer accepts (not text the analysis only parses)."""
    import jinja2

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    out = (
        jinja2.Environment(extensions=["jinja2.ext.loopcontrols"])
        .from_string(FAMILIES[family])
        .render(
            messages=messages,
            bos_token="<s>",
            eos_token="</s>",
            add_generation_prompt=True,
            raise_exception=raise_exception,
        )
    )
    assert "hello" in out


# ---------------------------------------------------------------- sort's comma-separated attribute paths


# jinja2's sort splits its attribute on ',' before '.' (``attribute='role,__class__'`` sorts by two paths); the
# second path's first name was judged as part of 'role,__class__', which is no internal name. Only a sort key is
# read there (nothing printed or called), so this is hardening: every path is judged like map's.
@pytest.mark.parametrize(
    "template",
    [
        "{{ messages|sort(attribute='role,__class__')|first }}",
        "{{ messages|sort(false, false, 'role, gi_frame')|first }}",
    ],
)
def test_every_path_of_a_sort_attribute_list_is_judged(template: str) -> None:
    assert _worst(template) is Severity.CRITICAL, _findings(template)


def test_a_sort_by_two_plain_attributes_stays_clean() -> None:
    assert _findings("{{ messages|sort(attribute='role,content')|map(attribute='content')|join }}") == []


# ---------------------------------------------- names computed as plain Python strings where jinja differs

# The analysis computes names exactly while it can; where its computation differs from what the renderer does,
# a name it takes for harmless may be '__class__' at render time. Each case below reaches a class under a plain
# Environment and was clean: jinja's title filter is not str.title, replace takes a count, join an attribute,
# ``'%s' % [x]`` formats the list, jinja's tojson is HTML-safe (``&`` is ``\u0026``), escape leaves a Markup as it
# is, and a Markup (``|safe``, ``|e``, ``|tojson``) escapes the other operand of ``+``, ``%`` and its methods'
# arguments, as ``~``, output, replace and join do where the template turns autoescaping on.
_DIVERGENT = {
    "title-filter": "{% set n = \"x'y\"|title|replace(\"X'y\", '__class__') %}{{ ''[n] }}",
    # 'moo' with its first 'o' replaced is 'mro' (type.mro lists the classes); replaced throughout it is 'mrr'
    "replace-count": "{% set n = 'moo'|replace('o', 'r', 1) %}{{ range[n]() }}",
    # join with an attribute joins each item's attribute (here its first character): 'mro', not 'mXrXoX'
    "join-attribute": "{% set n = ['mX', 'rX', 'oX']|join(attribute='0') %}{{ range[n]() }}",
    "percent-list": "{% set n = ('%s' % ['Q'])|replace(\"['Q']\", '__class__') %}{{ ''[n] }}",
    "tojson-html-safe": (
        "{% set n = '&__class__'|tojson|replace('\"', '')|replace('\\\\u0026', '') %}{{ ''[n] }}"
    ),
    "escape-of-markup": "{% set n = ('&__class__'|e|e)|replace('&amp;', '') %}{{ ''[n] }}",
    "markup-plus": "{% set n = (''|safe + '&__class__')|replace('&amp;', '') %}{{ ''[n] }}",
    "markup-percent": "{% set n = ('%s'|safe % '&__class__')|replace('&amp;', '') %}{{ ''[n] }}",
    "markup-format-filter": "{% set n = ('%s'|safe)|format('&__class__')|replace('&amp;', '') %}{{ ''[n] }}",
    "markup-method": "{% set n = ('Q'|safe).replace('Q', '&__class__')|replace('&amp;', '') %}{{ ''[n] }}",
    "markup-join-method": "{% set n = ('x'|safe).join(['', '&__class__'])|replace('x&amp;', '') %}{{ ''[n] }}",
    "escaped-plus": "{% set n = ('&'|e + '&__class__')|replace('&amp;', '') %}{{ ''[n] }}",
    "autoescape-block-set": (
        "{% autoescape true %}{% set n %}{{ '&' }}__class__{% endset %}"
        "{{ ''[n|replace('&amp;', '')] }}{% endautoescape %}"
    ),
}


@pytest.mark.parametrize("case", sorted(_DIVERGENT))
def test_a_name_jinja_computes_differently_is_reported(case: str) -> None:
    assert (_worst(_DIVERGENT[case]) or Severity.INFO) >= Severity.HIGH, _findings(_DIVERGENT[case])


@pytest.mark.parametrize("case", sorted(_DIVERGENT))
def test_a_name_jinja_computes_differently_reaches_a_class_in_plain_jinja(case: str) -> None:
    import jinja2

    out = jinja2.Environment().from_string(_DIVERGENT[case]).render()
    assert "<class '" in out.replace("&lt;", "<").replace("&#39;", "'")


# what the analysis still computes exactly: escaping that changes nothing, Markup text without special characters
_EXACT_STILL = [
    "{% set roles = {'user': 'U'} %}{% for m in messages %}{{ roles[('USER'|lower|e)] }}{% endfor %}",
    "{% set k = 'con'|safe + 'tent' %}{% for m in messages %}{{ m[k] }}{% endfor %}",
    "{% set k = '%s'|format('content') %}{% for m in messages %}{{ m[k] }}{% endfor %}",
    "{% for m in messages %}{{ m['Content'|lower] }}{{ m['role'|title|lower] }}{% endfor %}",
]


@pytest.mark.parametrize("template", _EXACT_STILL)
def test_names_computed_the_same_by_jinja_stay_clean(template: str) -> None:
    assert _findings(template) == []


# --------------------------------------------------- text as renderers with trim_blocks and lstrip_blocks see it

# transformers and llama-cpp-python (the plain-Environment renderer before its fix too) render with trim_blocks and
# lstrip_blocks: the newline after a block tag and the blanks before one on a line are not text. The analysis
# parsed without them, so a block set's body was "\nQ" to it and "Q" to the renderer, and a replace told them apart.
_TRIMMED = {
    "trim-blocks": "{% set n %}\nQ{% endset %}{{ ''[n|replace('\\nQ', 'x')|replace('Q', '__class__')] }}",
    "lstrip-blocks": (
        "{% set n %}Q\n  {% if true %}{% endif %}{% endset %}"
        "{{ ''[n|replace('Q\\n  ', 'x')|replace('Q\\n', '__class__')] }}"
    ),
}


@pytest.mark.parametrize("case", sorted(_TRIMMED))
def test_block_text_as_a_trimming_renderer_sees_it_is_judged(case: str) -> None:
    assert _worst(_TRIMMED[case]) is Severity.CRITICAL, _findings(_TRIMMED[case])


@pytest.mark.parametrize("case", sorted(_TRIMMED))
def test_block_text_trimmed_reaches_the_class_in_plain_jinja(case: str) -> None:
    import jinja2

    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    assert env.from_string(_TRIMMED[case]).render() == "<class 'str'>"
    assert jinja2.Environment().from_string(_TRIMMED[case]).render() == ""  # untrimmed: no such name


def test_data_chosen_names_in_a_config_template_are_the_applications_own(tmp_path: Path) -> None:
    """Outside chat templates the render context is the rendering application's data, not a chat user's."""
    text = "deploy:\n  target: '{{ hostvars[host][field] }} {{ greeting.format(name) }}'\n"
    result = scan_files(tmp_path, {"serving.yaml": text.encode()})
    assert result[0].verdict is Verdict.CLEAN, result[0].findings
