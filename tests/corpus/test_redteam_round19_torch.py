"""Round 19: what torch and the trainers built on it run on a checkpoint's state after loading it.

Two states are handed, after the load, to native code that trusts their sizes (each scanned clean before this round):

* **Fake quantizers of quantization-aware training.** ``FusedMovingAvgObsFakeQuantize`` (the fake quantizer of the
  default QAT qconfigs: ``get_default_qat_qconfig("x86" | "fbgemm" | "qnnpack", version=1)``) passes its observer's
  running ``min_val``/``max_val`` to ``torch.fused_moving_avg_obs_fake_quant``, which walks them for as many channels
  as the weight has (per channel) or reads their first element (per tensor) unchecked. Running values shorter than
  the weight's channels, of two lengths, or empty per tensor killed the first forward (SIGSEGV, or glibc's "free():
  invalid next size" abort; torch 2.13.0+cpu), whether the model was saved whole (``torch.load(weights_only=False)``)
  or as a state dict loaded with ``weights_only=True`` into a freshly prepared QAT model: the observer's
  ``_load_from_state_dict`` resizes its buffers to the file's, the fake quantizer's resizes its scale.
* **numpy random states.** transformers' Trainer resumes with ``np.random.set_state(torch.load("rng_state.pth",
  weights_only=True)["numpy"])`` (transformers 5.24, its ``safe_globals`` admits the key array), accelerate 1.15's
  ``load_state`` with the ``numpy_random_seed`` of ``random_states_<n>.pkl`` (also ``weights_only=True``), Lightning
  2.6's ``_set_rng_states`` likewise. ``set_state`` keeps the MT19937 ``pos`` unchecked and the next draw reads
  ``key[pos]``: SIGSEGV, or heap words handed out as random numbers (numpy 2.4.6). A pickled ``RandomState`` was
  checked already; the plain tuple (or dict) these files hold was not.

Two allow-listed objects act after the load on what the pickle gave them (clean before this round as well):

* **Hook handles.** ``RemovableHandle.__setstate__`` sets the class's ``next_id``, the counter every hook registered
  later in the process is keyed by, to ``id + 1``: a float id of 2**53 or a tensor id makes later hooks of a module
  share one key, each replacing the one before (torch 2.13). Reported as process-wide tampering (LW-MODEL-009).
* **A DataLoader saved whole** calls its ``collate_fn`` on the dataset's items and its ``worker_init_fn`` on each
  worker's number: a name the allow-list admits only to be kept there runs on them (sentence-transformers'
  ``Transformer`` loaded a model from the path a dataset item named). Reported as such names are in scikit-learn
  estimators (LW-MODEL-005).

The libraries' ``torch.serialization.add_safe_globals`` additions were read (transformers 5.24, accelerate 1.15,
timm 1.0.31, ultralytics 8.4.190, diffusers 0.42.1, peft 0.21.2, lightning 2.6.6): numpy's ``_reconstruct``,
``ndarray``, ``dtype`` and dtype classes, ``scalar`` (checked by the scanner as any pickle's), ``argparse.Namespace``
(timm; its keywords are judged), ultralytics' own and ``torch.nn.modules`` classes, CLIP's, and torchao's tensor
subclasses (diffusers), none of which the scanner admits (a file naming them is not clean).
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Final

import numpy as np
import pytest
from test_benign_round15_zoo import _scan

from loopwarden.domain import Severity

torch = pytest.importorskip("torch")

_OBS = "weight_fake_quant.activation_post_process"


def _saved(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _qat(backend: str = "x86", trained: bool = True, conv: bool = False) -> Any:
    """A model prepared for QAT as torch's tutorial does (``prepare_qat``), run once when ``trained``."""
    from torch.ao.quantization import get_default_qat_qconfig, prepare_qat

    layer = torch.nn.Conv2d(3, 8, 3) if conv else torch.nn.Linear(16, 32)
    model = torch.nn.Sequential(layer)
    model.qconfig = get_default_qat_qconfig(backend, version=1)
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare_qat(model, inplace=True)
    if trained:
        model(torch.randn(2, 3, 8, 8) if conv else torch.randn(4, 16))
    return model


def _qat_linear(trained: bool = True) -> Any:
    """A QAT Linear saved whole: its qconfig (a partial over a local function) does not pickle, so it is dropped."""
    from torch.ao.quantization import get_default_qat_qconfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layer = torch.ao.nn.qat.Linear(16, 32, qconfig=get_default_qat_qconfig("x86", version=1))
    del layer.qconfig
    model = torch.nn.Sequential(layer)
    if trained:
        model(torch.randn(4, 16))
    return model


def _fused_act(trained: bool = True) -> Any:
    from torch.ao.quantization.fake_quantize import FusedMovingAvgObsFakeQuantize

    model = torch.nn.Sequential(torch.nn.Linear(16, 32), FusedMovingAvgObsFakeQuantize())
    if trained:
        model(torch.randn(4, 16))
    return model


def _whole_short() -> Any:
    model = _qat_linear()
    obs = model[0].weight_fake_quant.activation_post_process
    obs.min_val, obs.max_val = torch.full((1,), -1.0), torch.full((1,), 1.0)
    return model


def _whole_empty_per_tensor() -> Any:
    model = _fused_act()
    obs = model[1].activation_post_process
    obs.min_val, obs.max_val = torch.empty(0), torch.empty(0)
    return model


def _state_dict(**changes: Any) -> dict[str, Any]:
    sd = dict(_qat().state_dict())
    for key, value in changes.items():
        sd[f"0.{_OBS}.{key}"] = value
    return sd


_WHOLE_FORWARD = """
import sys, torch
model = torch.load(sys.argv[1], weights_only=False)
for _ in range(3):
    model(torch.randn(64, 16))
print("ran")
"""

_STATE_DICT_FORWARD = """
import sys, warnings, torch
from torch.ao.quantization import get_default_qat_qconfig, prepare_qat
warnings.simplefilter("ignore")
model = torch.nn.Sequential(torch.nn.Linear(16, 32))
model.qconfig = get_default_qat_qconfig("x86", version=1)
model.train()
prepare_qat(model, inplace=True)
model.load_state_dict(torch.load(sys.argv[1], weights_only=True))
for _ in range(3):
    model(torch.randn(64, 16))
print("ran")
"""


_HUNG: Final = "child still running after its timeout"


def _run(code: str, path: Path) -> subprocess.CompletedProcess[str]:
    """The code in a child process; one still running after 60 s (a corrupted heap can leave the forward spinning,
    as a full CI run saw) is killed and reported as hung (a benign run then fails its "ran" check)."""
    cmd = [sys.executable, "-c", code, str(path)]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(cmd, -9, "", _HUNG)


def _crashed(done: subprocess.CompletedProcess[str]) -> bool:
    """Killed by a signal (SIGSEGV, or SIGABRT from glibc's heap checks), glibc's report of a corrupt heap, or kept
    running on the corrupted state past the timeout."""
    return done.returncode < 0 or "free()" in done.stderr or "corrupted" in done.stderr


def _high(found: list[tuple[str, Severity, str]], text: str = "running min/max") -> bool:
    return any(r == "LW-MODEL-017" and s is Severity.HIGH and text in m for r, s, m in found)


def test_a_qat_model_saved_whole_with_short_running_values_is_reported(tmp_path: Path) -> None:
    """Scanned clean before this round; the first forward of the loaded model dies (torch 2.13)."""
    path = tmp_path / "model.pt"
    path.write_bytes(_saved(_qat_linear()))
    assert _scan(path) == []
    assert _run(_WHOLE_FORWARD, path).stdout.strip() == "ran"
    path.write_bytes(_saved(_whole_short()))
    assert _high(_scan(path), "for a weight of shape [32, 16]")
    assert _crashed(_run(_WHOLE_FORWARD, path))


def test_a_per_tensor_fake_quantizer_with_empty_running_values_is_reported(tmp_path: Path) -> None:
    """Per tensor the op reads one element of each: empty ones (clean before) died (SIGSEGV, torch 2.13)."""
    path = tmp_path / "model.pt"
    path.write_bytes(_saved(_fused_act()))
    assert _scan(path) == []
    path.write_bytes(_saved(_whole_empty_per_tensor()))
    assert _high(_scan(path), "per-tensor quantizer")
    assert _crashed(_run(_WHOLE_FORWARD, path))


def test_a_qat_state_dict_with_short_running_values_is_reported(tmp_path: Path) -> None:
    """Loaded with ``weights_only=True`` into a freshly prepared QAT model (clean before; glibc aborted on a
    corrupted heap, torch 2.13)."""
    path = tmp_path / "model.pt"
    path.write_bytes(_saved(_state_dict()))
    assert _scan(path) == []
    assert _run(_STATE_DICT_FORWARD, path).stdout.strip() == "ran"
    path.write_bytes(_saved(_state_dict(min_val=torch.full((1,), -1.0), max_val=torch.full((1,), 1.0))))
    assert _high(_scan(path), "for a weight of shape [32, 16]")
    assert _crashed(_run(_STATE_DICT_FORWARD, path))
    path.write_bytes(_saved(_state_dict(max_val=torch.ones(1))))  # only one of them short
    assert _high(_scan(path), "of shapes [32] and [1]")
    assert _crashed(_run(_STATE_DICT_FORWARD, path))
    path.write_bytes(_saved(_state_dict(min_val=torch.tensor(-1.0), max_val=torch.tensor(1.0))))  # 0-d values
    assert _high(_scan(path), "beside a per-channel scale of shape [32]")
    assert _crashed(_run(_STATE_DICT_FORWARD, path))


def test_fake_quant_variants_are_reported(tmp_path: Path) -> None:
    """What an attacker tries next: the state dict under a checkpoint key with DDP's ``module.`` prefix, as an
    OrderedDict, the values as Parameters, a Conv2d's 4-d weight, the whole model inside a checkpoint dict or a list,
    running values longer than the channels."""
    short = {"min_val": torch.full((3,), -1.0), "max_val": torch.full((3,), 1.0)}
    sd = _state_dict(**short)
    conv = dict(_qat(conv=True).state_dict())
    conv[f"0.{_OBS}.min_val"], conv[f"0.{_OBS}.max_val"] = torch.zeros(2), torch.ones(2)
    variants: list[Any] = [
        {"epoch": 2, "state_dict": {f"module.{k}": v for k, v in sd.items()}},
        OrderedDict(sd),
        {k: (torch.nn.Parameter(v, requires_grad=False) if k.endswith("_val") else v) for k, v in sd.items()},
        conv,
        {"model": _whole_short(), "optimizer": None},
        [_whole_empty_per_tensor()],
        _state_dict(min_val=torch.zeros(64), max_val=torch.ones(64)),
    ]
    for i, variant in enumerate(variants):
        path = tmp_path / f"v{i}.pt"
        path.write_bytes(_saved(variant))
        assert _high(_scan(path)), (i, _scan(path))


def test_benign_quantization_files_stay_clean(tmp_path: Path) -> None:
    """QAT state dicts of each default backend (fbgemm and x86 quantize weights per channel, qnnpack per tensor),
    before and after a forward, of Linear and Conv2d; a fake quantizer saved whole; a post-training observer's
    state dict and a converted (quantized) model's."""
    from torch.ao.quantization import convert, get_default_qconfig, prepare

    files: list[Any] = []
    for backend in ("x86", "fbgemm", "qnnpack"):
        for trained in (False, True):
            for conv in (False, True):
                files.append(_qat(backend, trained, conv).state_dict())
    files += [_qat_linear(False), _qat_linear(), _fused_act(False), _fused_act()]
    ptq = torch.nn.Sequential(torch.ao.quantization.QuantStub(), torch.nn.Linear(16, 32))
    ptq.qconfig = get_default_qconfig("x86")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare(ptq, inplace=True)
        ptq(torch.randn(4, 16))
        files.append(ptq.state_dict())
        files.append(convert(ptq).state_dict())
    for i, obj in enumerate(files):
        path = tmp_path / f"b{i}.pt"
        path.write_bytes(_saved(obj))
        assert _scan(path) == [], (i, _scan(path))


def test_benign_training_state_stays_clean(tmp_path: Path) -> None:
    """An optimizer saved whole after hooks were registered on it (its pickled state leaves them out), a GradScaler
    saved whole and as its state dict, a distribution, a training checkpoint holding them."""
    param = torch.nn.Parameter(torch.ones(4))
    opt = torch.optim.AdamW([param], lr=0.1)
    opt.register_step_pre_hook(_step_hook)
    opt.register_state_dict_post_hook(_state_hook)
    param.grad = torch.ones_like(param)
    opt.step()
    scaler = torch.amp.GradScaler("cpu")
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(torch.zeros(2), torch.ones(2)),
        [torch.distributions.transforms.ExpTransform()],
    )
    for i, obj in enumerate(
        (
            opt,
            scaler,
            {"scaler": scaler.state_dict(), "optimizer": opt.state_dict()},
            dist,
            {"model": torch.nn.Linear(2, 2).state_dict(), "optimizer": opt, "scaler": scaler.state_dict()},
        )
    ):
        path = tmp_path / f"t{i}.pt"
        path.write_bytes(_saved(obj))
        assert _scan(path) == [], (i, _scan(path))


def _step_hook(*args: Any) -> None:
    return None


def _state_hook(*args: Any) -> Any:
    return args[-1]


# --- numpy random states a trainer restores after loading ---------------------------------------------------------

_POS = 1 << 28


def _legacy(pos: Any = _POS) -> tuple[Any, ...]:
    state = np.random.RandomState(0).get_state()
    return (state[0], state[1], pos, state[3], state[4])


def _trainer_rng(numpy_state: Any) -> dict[str, Any]:
    """What transformers' Trainer writes to ``rng_state.pth`` (``_save_rng_state``), on a CPU machine."""
    import random

    return {"python": random.Random(0).getstate(), "numpy": numpy_state, "cpu": torch.random.get_rng_state()}


def _accelerate_rng(numpy_state: Any) -> dict[str, Any]:
    """What accelerate's ``save_accelerator_state`` writes to ``random_states_0.pkl``."""
    import random

    return {
        "step": 0,
        "random_state": random.Random(0).getstate(),
        "numpy_random_seed": numpy_state,
        "torch_manual_seed": torch.get_rng_state(),
    }


_RESUME = """
import sys, numpy as np, torch
from transformers.trainer_pt_utils import safe_globals
with safe_globals():
    state = torch.load(sys.argv[1], weights_only=True)
np.random.set_state(state["numpy"])
print(np.random.rand(8))
"""


def test_a_trainer_rng_state_with_an_index_past_the_key_is_reported(tmp_path: Path) -> None:
    """Clean before this round; the Trainer's resume (its own load and ``set_state``, transformers 5.24, numpy 2.4)
    then dies at the first draw."""
    path = tmp_path / "rng_state.pth"
    path.write_bytes(_saved(_trainer_rng(np.random.RandomState(0).get_state())))
    assert _scan(path) == []
    path.write_bytes(_saved(_trainer_rng(_legacy())))
    assert _high(_scan(path), f"MT19937 index {_POS}")
    pytest.importorskip("transformers")
    assert _crashed(_run(_RESUME, path))


_ACCELERATE_RESUME = """
import sys, numpy as np
from accelerate import PartialState
from accelerate.checkpointing import load_accelerator_state
PartialState()
load_accelerator_state(sys.argv[1], models=[], optimizers=[], schedulers=[], dataloaders=[], process_index=0)
print(np.random.rand(8))
"""


def test_an_accelerate_random_state_with_an_index_past_the_key_is_reported(tmp_path: Path) -> None:
    """Clean before this round; ``load_accelerator_state`` (accelerate 1.15.0, numpy 2.4) loads it and the next
    numpy draw dies."""
    path = tmp_path / "random_states_0.pkl"
    path.write_bytes(_saved(_accelerate_rng(np.random.RandomState(0).get_state())))
    assert _scan(path) == []
    path.write_bytes(_saved(_accelerate_rng(_legacy())))
    assert _high(_scan(path), f"MT19937 index {_POS}")
    pytest.importorskip("accelerate")
    assert _crashed(_run(_ACCELERATE_RESUME, tmp_path))


def test_rng_state_variants_are_reported(tmp_path: Path) -> None:
    """The index as a numpy integer, negative, one past the end, the dict form ``set_state``
    also takes, a Philox generator's dict (``bit_generator.state = d``), all a level down in a checkpoint."""
    mt_dict = np.random.RandomState(0).get_state(legacy=False)
    mt_dict["state"]["pos"] = 700
    philox = np.random.Generator(np.random.Philox(0)).bit_generator.state
    philox["buffer_pos"] = -2
    variants: list[Any] = [
        _trainer_rng(_legacy(np.int64(5000))),
        _trainer_rng(_legacy(-3)),
        _trainer_rng(_legacy(625)),
        _trainer_rng(mt_dict),
        {"checkpoint": {"rng": [philox]}},
    ]
    for i, variant in enumerate(variants):
        path = tmp_path / f"v{i}.pkl"
        path.write_bytes(_saved(variant))
        assert _high(_scan(path), "index"), (i, _scan(path))


def test_real_random_states_stay_clean(tmp_path: Path) -> None:
    """The states numpy gives back: freshly seeded (pos 624), part drawn, the dict forms, a Philox generator's."""
    rs = np.random.RandomState(1)
    rs.rand(10)
    gen = np.random.Generator(np.random.Philox(3))
    gen.random(3)
    for i, state in enumerate(
        (
            _trainer_rng(np.random.RandomState(0).get_state()),
            _accelerate_rng(rs.get_state()),
            _trainer_rng(rs.get_state(legacy=False)),
            {"rng": gen.bit_generator.state},
        )
    ):
        path = tmp_path / f"b{i}.pkl"
        path.write_bytes(_saved(state))
        assert _scan(path) == [], (i, _scan(path))


# --- a hook handle's id: the counter of every hook registered later ---------------------------------------------


def _handle_pickle(module: str, ident: bytes) -> bytes:
    """A ``RemovableHandle`` as protocol 2 rebuilds it (``copyreg._reconstructor`` and BUILD), its id given as
    pickle opcodes, under the name ``module`` gives the class."""
    return (
        b"\x80\x02ccopyreg\n_reconstructor\n(c"
        + module.encode()
        + b"\nRemovableHandle\nc__builtin__\nobject\nNtR"
        b"(N" + ident + b"tb."
    )


_FLOAT_2_53 = b"G" + struct.pack(">d", 2.0**53)

_HOOKS_AFTER_LOAD = """
import sys, pickle, torch
with open(sys.argv[1], "rb") as f:
    data = f.read()
torch.load(sys.argv[1], weights_only=False) if data[:2] == b"PK" else pickle.loads(data)
module = torch.nn.Linear(2, 2)
calls = []
module.register_forward_hook(lambda *a: calls.append("first"))
module.register_forward_hook(lambda *a: calls.append("second"))
module(torch.ones(2))
print(",".join(calls))
"""


def _tampering(found: list[tuple[str, Severity, str]]) -> bool:
    return any(r == "LW-MODEL-009" and s is Severity.CRITICAL and "RemovableHandle" in m for r, s, m in found)


def test_a_hook_handle_with_a_float_id_is_reported(tmp_path: Path) -> None:
    """``RemovableHandle.__setstate__`` sets the class's ``next_id`` to ``max(next_id, id + 1)``: a float id of 2**53
    stops the counter, and every hook registered afterwards in the process shares one key (torch 2.13: of two
    forward hooks registered after the load only the second ran). Clean before this round, under each name torch
    exposes the class by (``torch.nn.modules.module`` and ``torch.optim.optimizer`` import it)."""
    for module in ("torch.utils.hooks", "torch.nn.modules.module", "torch.optim.optimizer"):
        path = tmp_path / f"{module}.pkl"
        path.write_bytes(_handle_pickle(module, _FLOAT_2_53))
        assert _tampering(_scan(path)), (module, _scan(path))
        assert _run(_HOOKS_AFTER_LOAD, path).stdout.strip() == "second"
    path = tmp_path / "benign.pkl"
    path.write_bytes(_handle_pickle("torch.utils.hooks", b"K\x07"))
    assert _scan(path) == []
    assert _run(_HOOKS_AFTER_LOAD, path).stdout.strip() == "first,second"


class _Handle:
    """Pickles as a RemovableHandle with the given state (a checkpoint entry torch.save writes as it is)."""

    def __init__(self, state: tuple[Any, ...]) -> None:
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        import copyreg

        from torch.utils.hooks import RemovableHandle

        return (copyreg._reconstructor, (RemovableHandle, object, None), self.state)


def test_hook_handle_id_variants_are_reported(tmp_path: Path) -> None:
    """A tensor id (one object, incremented in place by every registration), a numpy float, in a zip checkpoint
    beside a state dict, with a hooks dict and the extra-dicts item, the state as a list or a dict."""
    variants = [
        {"model": torch.nn.Linear(2, 2).state_dict(), "handle": _Handle((None, torch.tensor(10**6)))},
        [_Handle((OrderedDict(), np.float64(2.0**53)))],
        {"h": _Handle((OrderedDict(), 1e300, (OrderedDict(),)))},
    ]
    for i, variant in enumerate(variants):
        path = tmp_path / f"v{i}.pt"
        path.write_bytes(_saved(variant))
        assert _tampering(_scan(path)), (i, _scan(path))
    path = tmp_path / "v0.pt"
    assert _run(_HOOKS_AFTER_LOAD, path).stdout.strip() == "second"
    # the state as a list, or a dict keyed 0 and 1: __setstate__ indexes it the same way
    head = _handle_pickle("torch.utils.hooks", b"")[: -len(b"(Ntb.")]
    for i, body in enumerate(
        (head + b"](N" + _FLOAT_2_53 + b"eb.", head + b"}(K\x00NK\x01" + _FLOAT_2_53 + b"ub.")
    ):
        path = tmp_path / f"s{i}.pkl"
        path.write_bytes(body)
        assert _tampering(_scan(path)), (i, _scan(path))
        assert _run(_HOOKS_AFTER_LOAD, path).stdout.strip() == "second"


def test_lazy_modules_with_their_handles_stay_clean(tmp_path: Path) -> None:
    """Lazy modules saved whole keep the handles of their initialisation and load hooks (int ids)."""
    for i, model in enumerate(
        (torch.nn.LazyLinear(4), torch.nn.Sequential(torch.nn.LazyConv2d(4, 3), torch.nn.LazyBatchNorm2d()))
    ):
        path = tmp_path / f"lazy{i}.pt"
        path.write_bytes(_saved(model))
        assert _scan(path) == [], (i, _scan(path))


# --- a DataLoader saved whole: what it calls on its dataset's items ------------------------------------------------


def _loader(dataset: Any, **kwargs: Any) -> Any:
    from torch.utils.data import DataLoader

    return DataLoader(dataset, **kwargs)


def _st_transformer() -> Any:
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.base.modules.transformer import Transformer

    assert st is not None
    return Transformer


_ITERATE = """
import sys, torch
for batch in torch.load(sys.argv[1], weights_only=False):
    print(type(batch).__name__, batch.auto_model.config.name_or_path)
"""


def test_a_loader_keeping_a_rebuild_only_class_as_collate_fn_is_reported(tmp_path: Path) -> None:
    """``collate_fn`` of a loader without batching gets each dataset item as it is: sentence-transformers'
    ``Transformer`` (admitted to be kept, not called) given a path loaded the model and tokenizer there
    (sentence-transformers 6.2; a repository id is fetched from the Hub). Clean before this round."""
    from transformers import BertConfig, BertModel

    elsewhere = tmp_path / "elsewhere"
    config = BertConfig(
        vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
    )
    BertModel(config).save_pretrained(str(elsewhere))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghij"]))
    from transformers import BertTokenizerFast

    BertTokenizerFast(str(vocab)).save_pretrained(str(elsewhere))
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "loader.pt"
    path.write_bytes(_saved(_loader([str(elsewhere)], batch_size=None, collate_fn=_st_transformer())))
    assert any(
        r == "LW-MODEL-005" and s is Severity.HIGH and "DataLoader keeps" in m for r, s, m in _scan(path)
    )
    done = _run(_ITERATE, path)
    assert done.stdout.split() == ["Transformer", str(elsewhere)], done.stderr[-2000:]


def test_loader_callable_variants_are_reported(tmp_path: Path) -> None:
    """As ``worker_init_fn`` (called with each worker's number), torch's packed-weight load hook and a k-means run
    as ``collate_fn``, the loader inside a training checkpoint."""
    from sklearn.cluster._kmeans import _kmeans_single_lloyd
    from torch.ao.quantization.fx._lower_to_native_backend import _load_packed_weight

    variants = [
        _loader([1, 2], num_workers=2, worker_init_fn=_st_transformer()),
        _loader([1, 2], batch_size=None, collate_fn=_load_packed_weight),
        {"epoch": 1, "loader": _loader([1, 2], batch_size=None, collate_fn=_kmeans_single_lloyd)},
    ]
    for i, variant in enumerate(variants):
        path = tmp_path / f"v{i}.pt"
        path.write_bytes(_saved(variant))
        found = _scan(path)
        assert any(
            r == "LW-MODEL-005" and s is Severity.HIGH and "DataLoader keeps" in m for r, s, m in found
        ), (
            i,
            found,
        )


def test_loaders_with_torch_collate_functions_stay_clean(tmp_path: Path) -> None:
    """Loaders saved whole as torch builds them: batching (``default_collate``), without (``default_convert``),
    with workers, over a TensorDataset, a Subset and a ConcatDataset."""
    from torch.utils.data import ConcatDataset, Subset, TensorDataset

    data = TensorDataset(torch.arange(8.0), torch.arange(8))
    for i, loader in enumerate(
        (
            _loader(data, batch_size=2),
            _loader(data, batch_size=None),
            _loader(Subset(data, [0, 2, 4]), batch_size=2, num_workers=2, shuffle=True),
            _loader(ConcatDataset([data, data]), batch_size=3, drop_last=True),
        )
    ):
        path = tmp_path / f"loader{i}.pt"
        path.write_bytes(_saved(loader))
        assert _scan(path) == [], (i, _scan(path))


def _elkan() -> Any:
    from sklearn.cluster._kmeans import _kmeans_single_elkan

    return _kmeans_single_elkan


def bench_cases() -> dict[str, dict[str, bytes]]:
    """The attacks above as model folders (deterministic: the same bytes on every call)."""
    torch.manual_seed(0)
    whole = _saved(_whole_short())
    torch.manual_seed(0)
    per_tensor = _saved(_whole_empty_per_tensor())
    torch.manual_seed(0)
    state_dict = _saved(_state_dict(min_val=torch.full((1,), -1.0), max_val=torch.full((1,), 1.0)))
    return {
        "r19_qat_whole_short_running_range": {"model.pt": whole},
        "r19_fake_quant_empty_per_tensor_range": {"model.pt": per_tensor},
        "r19_qat_state_dict_short_running_range": {"pytorch_model.bin": state_dict},
        "r19_trainer_rng_state_mt19937_pos": {"rng_state.pth": _saved(_trainer_rng(_legacy()))},
        "r19_accelerate_random_states_pos": {"random_states_0.pkl": _saved(_accelerate_rng(_legacy()))},
        "r19_hook_handle_float_id": {"model.pkl": _handle_pickle("torch.nn.modules.module", _FLOAT_2_53)},
        "r19_dataloader_kept_rebuild_only_collate": {
            "loader.pt": _saved(_loader([1, 2], batch_size=None, collate_fn=_elkan()))
        },
    }
