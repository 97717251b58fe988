"""Round 13, whole learning-rate schedulers saved with ``torch.save``, and the edits that keep them reported.

``torch.save(get_linear_schedule_with_warmup(opt, 10, 100), path)`` writes a ``torch.optim.lr_scheduler.LambdaLR``
rebuilt by NEWOBJ + BUILD whose ``lr_lambdas`` hold ``functools.partial`` objects over transformers' module-level
schedule functions with number keywords. It was reported (the scheduler high, the partial critical, the function
high, the partial's BUILD high). ``LambdaLR`` stays off the allow-list: its ``step()`` calls whatever ``lr_lambdas``
holds, so the scheduler is admitted only in exactly that form. Each benign file is made here with the real libraries
(skipped when torch or transformers is missing) and must scan clean; every edit of such a pickle that puts something
else where ``step()`` finds it, or builds the scheduler by calling it, stays reported at the severity it had before.
"""

from __future__ import annotations

import functools
import pickletools
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_benign_round13 import _assert_clean

from loopwarden.domain import Severity


def _scan(path: Path) -> list[tuple[str, Severity, str]]:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(path)], jobs=1)
    assert report.targets
    return [(f.rule_id, f.severity, f.message) for t in report.targets for f in t.findings]


def _optimizer(groups: int = 1) -> Any:
    torch = pytest.importorskip("torch")
    model = torch.nn.Linear(2, 2)
    if groups == 2:
        return torch.optim.AdamW([{"params": [model.weight]}, {"params": [model.bias], "lr": 0.01}], lr=0.1)
    return torch.optim.SGD(model.parameters(), lr=0.1)


def _schedules() -> dict[str, Callable[[Any], Any]]:
    t = pytest.importorskip("transformers")
    return {
        "linear": lambda o: t.get_linear_schedule_with_warmup(o, 10, 100),
        "cosine": lambda o: t.get_cosine_schedule_with_warmup(o, 10, 100),
        "restarts": lambda o: t.get_cosine_with_hard_restarts_schedule_with_warmup(o, 10, 100, num_cycles=2),
        "polynomial": lambda o: t.get_polynomial_decay_schedule_with_warmup(o, 10, 100, power=2.0),
        "constant_warmup": lambda o: t.get_constant_schedule_with_warmup(o, 10),
        "inverse_sqrt": lambda o: t.get_inverse_sqrt_schedule(o, 10),
        "min_lr": lambda o: t.get_cosine_with_min_lr_schedule_with_warmup(o, 10, 100, min_lr_rate=0.1),
        "min_lr_rate": lambda o: t.get_cosine_with_min_lr_schedule_with_warmup_lr_rate(
            o, 10, 100, min_lr_rate=0.1, warmup_lr_rate=0.01
        ),
        "wsd": lambda o: t.get_wsd_schedule(
            o, 10, 20, num_training_steps=100, warmup_type="cosine", decay_type="1-sqrt"
        ),
        "get_scheduler": lambda o: t.get_scheduler("cosine", o, 10, 100),
    }


def _stepped(make: Callable[[Any], Any], groups: int = 1) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scheduler = make(_optimizer(groups))
        scheduler.optimizer.step()
        scheduler.step()
    return scheduler


def test_transformers_schedulers_saved_whole_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    for name, make in _schedules().items():
        for groups in (1, 2):
            for protocol in (0, 2, 4, 5):  # 0: copyreg._reconstructor; 2 (torch.save's): NEWOBJ
                torch.save(
                    _stepped(make, groups),
                    tmp_path / f"{name}_{groups}_{protocol}.pt",
                    pickle_protocol=protocol,
                )
    assert _assert_clean(tmp_path) == 10 * 2 * 4


def test_schedulers_in_a_checkpoint_multiplicative_and_tensor_lr_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from transformers.optimization import _get_linear_schedule_with_warmup_lr_lambda

    schedules = _schedules()
    optimizer = _optimizer()
    linear = schedules["linear"](optimizer)
    checkpoint = {
        "scheduler": linear,
        "warmup": schedules["constant_warmup"](_optimizer(2)),
        "optimizer": optimizer.state_dict(),
        "model": torch.nn.Linear(2, 2).state_dict(),
    }
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    lam = functools.partial(
        _get_linear_schedule_with_warmup_lr_lambda, num_warmup_steps=1, num_training_steps=5
    )
    torch.save(torch.optim.lr_scheduler.MultiplicativeLR(_optimizer(), lam), tmp_path / "multiplicative.pt")
    model = torch.nn.Linear(2, 2)
    tensor_lr = torch.optim.Adam(model.parameters(), lr=torch.tensor(0.01))
    torch.save(schedules["linear"](tensor_lr), tmp_path / "tensor_lr.pt")
    assert _assert_clean(tmp_path) == 3


# --- edits of the pickle torch.save writes ------------------------------------------------------------------------

_LINEAR = b"ctransformers.optimization\n_get_linear_schedule_with_warmup_lr_lambda\n"
_IDENTITY = b"ctorch.nn.modules.linear\nIdentity\n"  # a class the allow-list admits for rebuilding only


def _saved(tmp_path: Path) -> Path:
    """``get_linear_schedule_with_warmup`` over one parameter group, as ``torch.save`` writes it (protocol 2)."""
    torch = pytest.importorskip("torch")
    path = tmp_path / "linear.pt"
    torch.save(_stepped(_schedules()["linear"]), path)
    return path


def _data(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(next(n for n in z.namelist() if n.endswith("/data.pkl")))


def _with_data(src: Path, dst: Path, data: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            body = data if info.filename.endswith("/data.pkl") else zin.read(info.filename)
            zout.writestr(info, body)
    return dst


def _ops(data: bytes) -> list[tuple[str, Any, int]]:
    return [(op.name, arg, pos) for op, arg, pos in pickletools.genops(data)]


def _partial_span(data: bytes) -> tuple[int, int]:
    """Where the lr_lambdas entry is written: from the functools.partial import to the BUILD of its state."""
    ops = _ops(data)
    start = next(pos for name, arg, pos in ops if name == "GLOBAL" and arg == "functools partial")
    end = next(pos for name, _, pos in ops if name == "BUILD" and pos > start)
    return start, end + 1


def _keyword_value(data: bytes, keyword: str) -> tuple[int, int]:
    """Where the value of a partial keyword is written (the opcode after the key and its BINPUT)."""
    ops = _ops(data)
    at = next(i for i, (name, arg, _) in enumerate(ops) if name == "BINUNICODE" and arg == keyword)
    start = ops[at + 2][2]
    return start, ops[at + 3][2]


def _partial_memo(data: bytes) -> int:
    ops = _ops(data)
    start, _ = _partial_span(data)
    at = next(i for i, (name, _, pos) in enumerate(ops) if name == "REDUCE" and pos > start)
    assert ops[at + 1][0] == "BINPUT"
    return int(ops[at + 1][1])


def _replace_entry(data: bytes, entry: bytes) -> bytes:
    start, end = _partial_span(data)
    return data[:start] + entry + data[end:]


def _replace_keyword(data: bytes, value: bytes) -> bytes:
    start, end = _keyword_value(data, "num_warmup_steps")
    return data[:start] + value + data[end:]


def _after_entry(data: bytes, extra: bytes) -> bytes:
    _, end = _partial_span(data)
    assert data[end : end + 1] == b"a"  # APPEND of the entry to lr_lambdas
    return data[: end + 1] + extra + data[end + 1 :]


def _before_stop(data: bytes, extra: bytes, *, in_state: bool) -> bytes:
    assert data.endswith(b"ub.")  # the state's SETITEMS, BUILD, STOP
    cut = len(data) - (3 if in_state else 1)
    return data[:cut] + extra + data[cut:]


def _text(s: str) -> bytes:
    return b"X" + len(s).to_bytes(4, "little") + s.encode()


_EDITS: dict[str, tuple[Callable[[bytes], bytes], Severity]] = {
    # what lr_lambdas holds, replaced
    "os.system": (lambda d: _replace_entry(d, b"cos\nsystem\n"), Severity.CRITICAL),
    "builtins.eval": (lambda d: _replace_entry(d, b"c__builtin__\neval\n"), Severity.CRITICAL),
    "listed function by reference": (lambda d: _replace_entry(d, _LINEAR), Severity.HIGH),
    "nested partial": (
        lambda d: _replace_entry(d, b"cfunctools\npartial\ncfunctools\npartial\n" + _LINEAR + b"\x85R\x85R"),
        Severity.CRITICAL,
    ),
    # the partial's function or arguments
    "partial over eval": (lambda d: d.replace(_LINEAR, b"c__builtin__\neval\n"), Severity.CRITICAL),
    "non-listed transformers function": (
        lambda d: d.replace(_LINEAR, b"ctransformers.optimization\nget_linear_schedule_with_warmup\n"),
        Severity.CRITICAL,
    ),
    "string keyword": (lambda d: _replace_keyword(d, _text("x")), Severity.CRITICAL),
    "computed keyword": (
        lambda d: _replace_keyword(d, b"c__builtin__\nint\n" + _text("10") + b"\x85R"),
        Severity.CRITICAL,
    ),
    "unknown keyword": (
        lambda d: d.replace(_text("num_warmup_steps"), _text("num_warmup_stepz")),
        Severity.CRITICAL,
    ),
    # the list or the scheduler changed after the entry was written
    "SETITEM into lr_lambdas": (lambda d: _after_entry(d, b"K\x00" + _IDENTITY + b"s"), Severity.CRITICAL),
    "partial also under a method's name": (
        lambda d: _before_stop(
            d, _text("_get_closed_form_lr") + b"h" + bytes([_partial_memo(d)]), in_state=True
        ),
        Severity.CRITICAL,
    ),
    "class under a method's name": (
        lambda d: _before_stop(d, _text("get_lr") + _IDENTITY, in_state=True),
        Severity.CRITICAL,
    ),
    # a first state with a class in front of get_lr, then a second BUILD of a state as torch writes it
    "second BUILD": (
        lambda d: _before_stop(
            _before_stop(d, _text("get_lr") + _IDENTITY, in_state=True),
            b"}" + _text("lr_lambdas") + b"]h" + bytes([_partial_memo(d)]) + b"asb",
            in_state=False,
        ),
        Severity.CRITICAL,
    ),
}


@pytest.mark.parametrize("edit", sorted(_EDITS))
def test_edited_scheduler_pickles_stay_reported(tmp_path: Path, edit: str) -> None:
    change, severity = _EDITS[edit]
    src = _saved(tmp_path)
    data = change(_data(src))
    assert data != _data(src)
    _ops(data)  # still a well-formed pickle
    findings = _scan(_with_data(src, tmp_path / "edited.pt", data))
    assert findings, edit
    assert max(s for _, s, _ in findings) == severity, findings
    if edit not in ("os.system", "builtins.eval", "partial over eval"):
        # kept from the scheduler's own import: what step() would call is not admitted
        assert any(
            rule == "LW-MODEL-005" and "torch.optim.lr_scheduler.LambdaLR" in message
            for rule, _, message in findings
        ), findings


def test_unedited_copy_of_the_pickle_is_clean(tmp_path: Path) -> None:
    src = _saved(tmp_path)
    assert _scan(_with_data(src, tmp_path / "copy.pt", _data(src))) == []


class _Called:
    """Pickles as a call of the scheduler class with its constructor's arguments (REDUCE)."""

    def __init__(self, cls: Any, *args: Any) -> None:
        self.cls, self.args = cls, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.cls, self.args


@pytest.mark.parametrize("cls_name", ["LambdaLR", "MultiplicativeLR"])
def test_scheduler_built_by_calling_its_constructor_stays_reported(tmp_path: Path, cls_name: str) -> None:
    torch = pytest.importorskip("torch")
    from transformers.optimization import _get_linear_schedule_with_warmup_lr_lambda

    cls = getattr(torch.optim.lr_scheduler, cls_name)
    lam = functools.partial(
        _get_linear_schedule_with_warmup_lr_lambda, num_warmup_steps=1, num_training_steps=5
    )
    path = tmp_path / "called.pt"
    torch.save(_Called(cls, _optimizer(), lam), path)
    findings = _scan(path)
    assert any(rule == "LW-MODEL-005" and f"lr_scheduler.{cls_name}" in m for rule, _, m in findings), (
        findings
    )
    assert max(s for _, s, _ in findings) == Severity.CRITICAL  # the partial, not admitted either


def test_an_admitted_scheduler_does_not_cover_another_copy_of_its_class(tmp_path: Path) -> None:
    """The class and the partial imported once (memo) for a benign scheduler, and again for a call of the class."""
    torch = pytest.importorskip("torch")
    from transformers.optimization import _get_linear_schedule_with_warmup_lr_lambda

    benign = _stepped(_schedules()["linear"])
    lam = benign.lr_lambdas[0]
    assert lam.func is _get_linear_schedule_with_warmup_lr_lambda
    path = tmp_path / "both.pt"
    torch.save([benign, _Called(torch.optim.lr_scheduler.LambdaLR, _optimizer(), lam)], path)
    findings = _scan(path)
    assert any("torch.optim.lr_scheduler.LambdaLR" in m for _, _, m in findings), findings


def test_get_constant_schedule_saved_whole_stays_clean(tmp_path: Path) -> None:
    """``get_constant_schedule`` hands LambdaLR ``_get_constant_lambda`` itself (``return 1``), not a partial, once
    per parameter group: two groups keep two copies of one import (memo GET)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    for groups in (1, 2):
        for protocol in (0, 2, 4, 5):
            path = tmp_path / f"constant_{groups}_{protocol}.pt"
            torch.save(_stepped(transformers.get_constant_schedule, groups), path, pickle_protocol=protocol)
            _assert_clean(path)


def test_constant_lambda_anywhere_but_an_admitted_scheduler_stays_reported(tmp_path: Path) -> None:
    """The bare function is admitted only as an entry of an admitted scheduler's ``lr_lambdas``: a second copy of
    the same import kept beside it, or the function alone, is the finding it was."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.optimization import _get_constant_lambda

    scheduler = _stepped(transformers.get_constant_schedule)
    for name, obj in (
        ("beside", [scheduler, scheduler.lr_lambdas[0]]),
        ("alone", [_get_constant_lambda]),
        ("in a plain dict", {"lr_lambdas": [_get_constant_lambda]}),
    ):
        path = tmp_path / f"{name}.pt"
        torch.save(obj, path)
        findings = _scan(path)
        assert any(
            rule == "LW-MODEL-005" and "_get_constant_lambda" in message for rule, _, message in findings
        ), (name, findings)
