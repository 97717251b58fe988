"""Round 18: what torch calls after ``torch.load(weights_only=False)`` of a whole object, and an optimizer's fused
step over the state a file gives it.

The allow-listed callables (numpy, SciPy, scikit-learn and torch functions the allow-list admits, including those it
admits only to be kept) were each placed in a module's ``_forward_pre_hooks``, ``_forward_hooks``,
``_state_dict_hooks`` and ``_load_state_dict_pre_hooks`` and in a ``LambdaLR``'s ``lr_lambdas``, and run by torch 2.13
with the arguments it passes (forward, state_dict, load_state_dict, step): none crashed, wrote a file or allocated
beyond a few MiB (they fail on a module argument with a TypeError). What did crash is an optimizer's state:

``torch.optim`` optimizers built with ``fused=True`` (Adam, AdamW, Adagrad ... on CPU since torch 2.4) hand each
parameter's state tensors to a compiled loop that walks them for as many elements as the parameter has, with no
shape check. A state tensor smaller than its parameter killed ``optimizer.step()`` (SIGSEGV, torch 2.13.0+cpu),
whether the optimizer was saved whole or only its ``state_dict()`` (``load_state_dict`` takes the saved group's
``fused`` over the live optimizer's, and keeps the saved tensors' shapes; loaded with ``weights_only=True``). Before
this round both scanned clean.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
from test_benign_round15_zoo import _scan

from loopwarden.domain import Severity

torch = pytest.importorskip("torch")

_N = 1 << 16


def _fused(kind: str = "Adam", shrink: bool = True) -> Any:
    param = torch.nn.Parameter(torch.ones(_N))
    opt = getattr(torch.optim, kind)([param], lr=0.1, fused=True)
    param.grad = torch.ones_like(param)
    opt.step()
    if shrink:
        for key, value in opt.state[param].items():
            if key != "step" and torch.is_tensor(value):
                opt.state[param][key] = torch.ones(4)
    return opt


def _saved(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


_WHOLE_STEP = """
import sys, torch
opt = torch.load(sys.argv[1], weights_only=False)
if isinstance(opt, dict):
    opt = opt["optimizer"]
param = opt.param_groups[0]["params"][0]
param.grad = torch.ones_like(param)
opt.step()
print("ran")
"""

_STATE_DICT_STEP = f"""
import sys, torch
param = torch.nn.Parameter(torch.ones({_N}))
opt = getattr(torch.optim, sys.argv[2])([param], lr=0.1)
opt.load_state_dict(torch.load(sys.argv[1], weights_only=True))
param.grad = torch.ones_like(param)
opt.step()
print("ran")
"""


def _run(code: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, str(path), *extra],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _high(found: list[tuple[str, Severity, str]], text: str) -> bool:
    return any(r == "LW-MODEL-017" and s is Severity.HIGH and text in m for r, s, m in found)


@pytest.mark.parametrize("kind", ["Adam", "AdamW", "Adagrad"])
def test_a_fused_optimizer_saved_whole_with_short_state_is_reported(tmp_path: Path, kind: str) -> None:
    """The optimizer saved whole keeps its parameters: the state's shapes are compared with theirs."""
    path = tmp_path / "optimizer.pt"
    path.write_bytes(_saved(_fused(kind, shrink=False)))
    assert _scan(path) == []
    assert _run(_WHOLE_STEP, path).stdout.strip() == "ran"
    path.write_bytes(_saved(_fused(kind)))
    assert _high(_scan(path), f"of shape [4] for a parameter of shape [{_N}]")
    assert _run(_WHOLE_STEP, path).returncode < 0  # killed by a signal (SIGSEGV)


def test_a_fused_optimizer_inside_a_checkpoint_is_reported(tmp_path: Path) -> None:
    """The same optimizer a level down in a training checkpoint beside a model's state dict."""
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(_saved({"epoch": 3, "model": torch.nn.Linear(2, 2).state_dict(), "optimizer": _fused()}))
    assert _high(_scan(path), "a fused optimizer keeps exp_avg")
    assert _run(_WHOLE_STEP, path).returncode < 0


def _noted(found: list[tuple[str, Severity, str]]) -> bool:
    return any(
        r == "LW-MODEL-017" and s is Severity.INFO and "fused optimizer's state dict" in m
        for r, s, m in found
    )


@pytest.mark.parametrize("kind", ["Adam", "Adagrad"])
def test_a_fused_state_dict_is_noted(tmp_path: Path, kind: str) -> None:
    """A state dict keys its parameters by index: whether its tensors match the model they are loaded into cannot
    be told from the file, and a fused group makes a mismatch a memory error. A live optimizer built without
    ``fused`` becomes fused by ``load_state_dict`` (torch 2.13). Every Hugging Face Trainer run's optimizer.pt is
    a fused AdamW state dict (its default since torch 2.8), so this is noted (INFO), not failed: a known gap until
    the state is compared with the model's parameters."""
    path = tmp_path / "optimizer.pt"
    path.write_bytes(_saved({"optimizer": _fused(kind).state_dict()}))
    found = _scan(path)
    assert _noted(found) and not any(s > Severity.INFO for _, s, _ in found), found
    path.write_bytes(_saved(_fused(kind).state_dict()))
    assert _noted(_scan(path))
    assert _run(_STATE_DICT_STEP, path, kind).returncode < 0
    path.write_bytes(_saved(_fused(kind, shrink=False).state_dict()))  # the benign file: the same note
    assert _noted(_scan(path))


def test_fused_state_dict_variants_are_noted(tmp_path: Path) -> None:
    """What an attacker tries next: ``fused`` as 1, the group and the entries as ``OrderedDict``s, the state
    tensor as a Parameter, the state a few levels down behind a large model state dict, a tuple of groups."""
    sd = _fused().state_dict()
    entry = sd["state"][0]
    variants = [
        {"state": sd["state"], "param_groups": [{**sd["param_groups"][0], "fused": 1}]},
        {"state": {0: OrderedDict(entry)}, "param_groups": [OrderedDict(sd["param_groups"][0])]},
        {
            "state": OrderedDict({0: {**entry, "exp_avg": torch.nn.Parameter(entry["exp_avg"])}}),
            "param_groups": tuple(sd["param_groups"]),
        },
        {"a": {"model": {str(i): i for i in range(30_000)}, "b": {"c": sd}}},
    ]
    for i, variant in enumerate(variants):
        path = tmp_path / f"v{i}.pt"
        path.write_bytes(_saved(variant))
        assert _noted(_scan(path)), (i, _scan(path))


def test_an_unfused_state_dict_stays_clean(tmp_path: Path) -> None:
    param = torch.nn.Parameter(torch.ones(8))
    for opt in (torch.optim.Adam([param]), torch.optim.SGD([param], lr=0.1, momentum=0.9)):
        param.grad = torch.ones_like(param)
        opt.step()
        path = tmp_path / "optimizer.pt"
        path.write_bytes(_saved({"optimizer": opt.state_dict(), "model": {"w": param.detach()}}))
        assert _scan(path) == []
        path.write_bytes(_saved(opt))
        assert _scan(path) == []


def _lambda(epoch: int) -> float:
    return 0.9**epoch


def test_modules_with_torch_own_hooks_stay_clean(tmp_path: Path) -> None:
    """Modules whose hooks torch registered (weight_norm's forward pre-hook, spectral_norm's state-dict hooks),
    saved whole; a parametrized module (saved by its state dict: torch refuses to pickle it whole) and a LambdaLR
    over a module-level function (its state dict keeps no function) with a fused optimizer's unchanged state."""
    from torch.nn.utils import parametrize, spectral_norm, weight_norm

    models: list[Any] = [
        weight_norm(torch.nn.Linear(3, 3)),
        spectral_norm(torch.nn.Linear(3, 3)),
        torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)),
    ]
    linear = torch.nn.Linear(3, 3)
    parametrize.register_parametrization(linear, "weight", torch.nn.Identity())
    models.append(linear.state_dict())
    opt = _fused(shrink=False)
    models.append(opt)
    models.append({"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, _lambda).state_dict()})
    for i, model in enumerate(models):
        path = tmp_path / f"m{i}.pt"
        path.write_bytes(_saved(model))
        assert _scan(path) == [], (i, _scan(path))


def bench_cases() -> dict[str, dict[str, bytes]]:
    """The attacks above as model folders (deterministic: the same bytes on every call)."""
    torch.manual_seed(0)
    return {
        "r18_fused_adam_short_state": {"optimizer.pt": _saved(_fused())},
        "r18_fused_adagrad_short_state": {"optimizer.pt": _saved(_fused("Adagrad"))},
    }
