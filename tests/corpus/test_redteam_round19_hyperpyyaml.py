"""Round 19: HyperPyYAML ``!ref`` arithmetic that never returns.

SpeechBrain's ``hyperparams.yaml`` is read by HyperPyYAML, which resolves a ``!ref`` value interpolating references
(``<a> ** <b>``) by substituting their values and evaluating the text as arithmetic (``parse_arithmetic``,
hyperpyyaml 1.2.3). ``<a> ** <a> ** <a> ** <a>`` with ``a: 9`` did not finish in 10 s, and a quoted string times a
huge count raised MemoryError after taking the machine's memory. Each of these files scanned ``clean`` before this
round; the scanner now sizes the expression and leaves the file ``unverified``, as it does for a loader crash.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Verdict

_ATTACKS: dict[str, str] = {
    "power_tower": "a: 9\nb: !ref <a> ** <a> ** <a> ** <a>\n",
    "power_tower_nested_key": "x:\n  y: 9\nb: !ref <x[y]> ** <x[y]> ** <x[y]> ** <x[y]>\n",
    "power_through_a_reference": "a: 9\nt: <a> ** <a>\nb: !ref <t> ** <a> ** <a>\n",
    "power_literal_exponent": "a: 10\nb: !ref <a> ** 100000000\n",
    "string_repeated": "s: \"'aaaa'\"\nn: 100000000000\nt: !ref <s> * <n>\n",
    "copy_tag": "a: 9\nb: !copy <a> ** <a> ** <a> ** <a>\n",
    "inside_a_list": "a: 9\nlayers:\n  - !ref <a> ** <a> ** <a> ** <a>\n",
}

_BENIGN: dict[str, str] = {
    "speechbrain_like": textwrap.dedent(
        """\
        sample_rate: 16000
        n_fft: 400
        n_mels: 80
        hop: !ref <sample_rate> // 100
        win: !ref <n_fft> / <sample_rate> * 1000
        emb_dim: !ref <n_mels> * 2
        lr: 0.001
        lr_final: !ref <lr> / 10
        steps: !ref <sample_rate> ** 2
        name: !ref <sample_rate>_model
        folder: !ref results/<name>
        """
    ),
    "unresolved_references": "b: !ref <missing> ** <also_missing>\n",
    "no_reference": "big: !ref 2 ** 1000\n",
}


def _scan(tmp_path: Path, name: str, text: str) -> Verdict:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(text)
    report = scan_paths([str(folder)], jobs=1)
    (target,) = report.targets
    return target.verdict


@pytest.mark.parametrize("name", sorted(_ATTACKS))
def test_arithmetic_the_loader_never_finishes_is_unverified(tmp_path: Path, name: str) -> None:
    assert _scan(tmp_path, name, _ATTACKS[name]) is Verdict.UNVERIFIED


@pytest.mark.parametrize("name", sorted(_BENIGN))
def test_ordinary_reference_arithmetic_stays_clean(tmp_path: Path, name: str) -> None:
    assert _scan(tmp_path, name, _BENIGN[name]) is Verdict.CLEAN


def test_the_real_loader_does_not_return(tmp_path: Path) -> None:
    """hyperpyyaml's own load of the power tower runs past a timeout; the benign file loads at once."""
    pytest.importorskip("hyperpyyaml")
    for name, text, finishes in (
        ("attack", _ATTACKS["power_tower"], False),
        ("benign", _BENIGN["speechbrain_like"], True),
    ):
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        code = f"import hyperpyyaml; hyperpyyaml.load_hyperpyyaml(open({str(path)!r}))"
        try:
            proc = subprocess.run([sys.executable, "-c", code], timeout=10, capture_output=True)
        except subprocess.TimeoutExpired:
            assert not finishes, name
        else:
            assert finishes and proc.returncode == 0, (name, proc.stderr[-500:])


def bench_cases() -> dict[str, dict[str, bytes]]:
    return {f"r19_hyperpyyaml_{k}": {"hyperparams.yaml": v.encode()} for k, v in _ATTACKS.items()}
