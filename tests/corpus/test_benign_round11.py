"""Round 11, false positives on what ``torch.save`` writes for common library objects, and their dangerous neighbours.

Benign files reported HIGH before: transformers' model outputs (``ModelOutput`` dataclasses, which
``ModelOutput.__reduce__`` writes as a call of the class with its field values), the Trainer's ``TrainerState`` and
``TrainerControl``, and a quantization-aware-training module saved whole (its ``QConfig`` of ``_PartialWrapper``
factories over fake quantizers and observers). Each benign file is made here with the real library (the test is
skipped when it is missing) and must scan clean. Each admission keeps its dangerous neighbour reported: a
``_PartialWrapper`` whose partial calls something other than an observer or fake quantizer, a ModelOutput whose
``__post_init__`` sets planted pairs as attributes, and Trainer dataclasses called (not rebuilt) or given a planted
state.
"""

from __future__ import annotations

import os
import pickle
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from test_allowlist_audit_round10 import _load
from test_redteam_pickle import P4, STOP, g, u

from loopwarden.checks.models.pickle_vm import PickleResult, analyze_pickle_bytes
from loopwarden.domain import Severity

# a class the allow-list admits for rebuilding only whose constructor reads the file its argument names (round 10)
_PATTERN_CLASS = "tokenizers.implementations.bert_wordpiece.BertWordPieceTokenizer"
_MODEL_OUTPUT = "transformers.modeling_outputs.BaseModelOutput"


def rules(result: PickleResult) -> set[tuple[str, Severity]]:
    return {(f.rule_id, f.severity) for f in result.findings}


def worst(result: PickleResult) -> Severity | None:
    return max((f.severity for f in result.findings), default=None)


def _assert_clean(folder: Path) -> int:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(folder)], jobs=1)
    assert report.targets
    for t in report.targets:
        assert t.verdict.value == "clean", (t.path, [(f.rule_id, f.message) for f in t.findings], t.reason)
    return len(report.targets)


def _save(folder: Path, objects: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    folder.mkdir(exist_ok=True)
    for name, obj in objects.items():
        torch.save(obj, folder / f"{name}.pt")


# --- transformers model outputs ---------------------------------------------------------------------------------


def test_model_outputs_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    outputs = pytest.importorskip("transformers.modeling_outputs")
    bert = pytest.importorskip("transformers.models.bert.modeling_bert")
    objects = {
        "base": outputs.BaseModelOutput(last_hidden_state=torch.zeros(2, 3)),
        "causal": outputs.CausalLMOutputWithPast(logits=torch.zeros(2, 3)),
        "seqcls": outputs.SequenceClassifierOutput(loss=torch.tensor(0.5), logits=torch.zeros(2, 2)),
        "hidden": outputs.BaseModelOutput(
            last_hidden_state=torch.zeros(1, 2), hidden_states=(torch.zeros(1, 2), torch.ones(1, 2))
        ),
        "seq2seq": outputs.Seq2SeqLMOutput(
            logits=torch.zeros(1, 2), encoder_last_hidden_state=torch.zeros(1, 2)
        ),
        # a model-specific output dataclass under transformers.models
        "pretraining": bert.BertForPreTrainingOutput(
            prediction_logits=torch.zeros(1, 4), seq_relationship_logits=torch.zeros(1, 2)
        ),
        "list": [outputs.BaseModelOutput(last_hidden_state=torch.zeros(1)), {"o": outputs.MaskedLMOutput()}],
    }
    _save(tmp_path / "out", objects)
    assert _assert_clean(tmp_path / "out") == len(objects)


def test_a_real_model_s_output_stays_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, vocab_size=100
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg).eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[1, 2, 3]]), labels=torch.tensor([1]), output_hidden_states=True)
    _save(tmp_path / "m", {"forward": out, "base": model.bert(input_ids=torch.tensor([[4, 5]]))})
    assert _assert_clean(tmp_path / "m") == 2


def _output_call(first: bytes, tail: bytes = b"") -> bytes:
    """``BaseModelOutput(first, None, None)`` as ModelOutput.__reduce__ writes a call, then ``tail``."""
    return P4 + g(_MODEL_OUTPUT) + b"(" + first + b"NNt" + b"R" + tail + STOP


def test_model_output_first_field_pairs_that_plant_a_hook_are_critical() -> None:
    pytest.importorskip("transformers.modeling_outputs")
    planted = g(_PATTERN_CLASS)
    path = u("/home/user/.ssh/id_rsa")
    cases = {
        # __post_init__ sets each pair of a dict first field as an attribute: BUILD then calls the planted
        # __setstate__, APPEND the planted append
        "setstate dict": _output_call(b"}(" + u("__setstate__") + planted + b"u", path + b"b"),
        "append dict": _output_call(b"}(" + u("append") + planted + b"u", path + b"a"),
        # ModelOutput.__setattr__ calls self._replace_old_cache_name(name) for the next pair
        "shadowed method": _output_call(b"}(" + u("_replace_old_cache_name") + planted + u("x") + b"K\x01u"),
        # a list of (name, value) pairs is iterated the same way
        "pairs list": _output_call(b"](" + u("__setstate__") + planted + b"\x86" + b"e", path + b"b"),
        "pairs in an OrderedDict": _output_call(
            g("collections.OrderedDict") + b")R(" + u("append") + planted + b"u", path + b"a"
        ),
    }
    for what, payload in cases.items():
        assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload)), what


def test_model_output_first_field_from_a_rebuilt_instance_is_reported() -> None:
    pytest.importorskip("transformers.modeling_outputs")
    # __post_init__ iterates a lone non-tensor first field: a pattern-only instance's iteration is unreviewed code
    rebuilt = g("torch.utils.data.dataset.TensorDataset") + b")\x81"
    assert worst(analyze_pickle_bytes(_output_call(rebuilt))) is Severity.HIGH


def test_model_output_fields_that_are_data_stay_clean() -> None:
    pytest.importorskip("transformers.modeling_outputs")
    # None, a string (its characters are not pairs), a number, a tuple of values, pairs under plain names
    for first in (b"N", u("text"), b"K\x05", b"(K\x01K\x02t", b"}(" + u("scores") + b"K\x01u"):
        result = analyze_pickle_bytes(_output_call(first))
        assert result.findings == (), (first, [(f.rule_id, f.message) for f in result.findings])


def test_model_output_items_planting_stays_critical_when_called() -> None:
    pytest.importorskip("transformers.modeling_outputs")
    # round 10's item opcodes, on an output built by the call transformers writes (not only by NEWOBJ)
    built = P4 + g(_MODEL_OUTPUT) + b"(NNNtR"
    payload = built + b"(" + u("__setstate__") + g(_PATTERN_CLASS) + b"u" + u("/etc/passwd") + b"b" + STOP
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))
    payload = built + b"(" + u("append") + g(_PATTERN_CLASS) + b"u" + u("/etc/passwd") + b"a" + STOP
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))


def test_model_output_called_through_a_partial_with_keywords_is_reported() -> None:
    pytest.importorskip("transformers.modeling_outputs")
    kwargs = b"}(" + u("last_hidden_state") + b"}(" + u("__setstate__") + g(_PATTERN_CLASS) + b"uu"
    part = (
        g("functools.partial")
        + g(_MODEL_OUTPUT)
        + b"\x85R"
        + b"("
        + g(_MODEL_OUTPUT)
        + b")"
        + kwargs
        + b"Ntb"
    )
    assert worst(analyze_pickle_bytes(P4 + part + b")R" + STOP)) is not None


def test_real_loader_plants_the_pairs_of_a_model_output_s_first_field(tmp_path: Path) -> None:
    # what the checks above model: pickle.loads of the call, then BUILD, runs the class the pair planted
    pytest.importorskip("transformers.modeling_outputs")
    pytest.importorskip("tokenizers")
    secret = tmp_path / "outside" / "vocab.txt"
    secret.parent.mkdir()
    secret.write_text("[PAD]\n[UNK]\n[CLS]\nTOPSECRET\n", encoding="utf-8")
    payload = _output_call(b"}(" + u("__setstate__") + g(_PATTERN_CLASS) + b"u", u(str(secret)) + b"b")
    assert ("LW-MODEL-016", Severity.CRITICAL) in rules(analyze_pickle_bytes(payload))
    done = _load(payload)
    assert "sep_token not found in the vocabulary" in done.stderr, done.stderr[-500:]


# --- Trainer state ---------------------------------------------------------------------------------------------


def test_trainer_state_and_control_stay_clean(tmp_path: Path) -> None:
    tc = pytest.importorskip("transformers.trainer_callback")
    state = tc.TrainerState(global_step=5, log_history=[{"loss": 1.0, "step": 5}], stateful_callbacks=[])
    with_callbacks = tc.TrainerState(stateful_callbacks=[tc.TrainerControl(), tc.EarlyStoppingCallback()])
    _save(
        tmp_path / "t",
        {"state": state, "callbacks": with_callbacks, "control": tc.TrainerControl(should_save=True)},
    )
    assert _assert_clean(tmp_path / "t") == 3


def test_trainer_state_called_or_planted_is_reported() -> None:
    pytest.importorskip("transformers.trainer_callback")
    cls = "transformers.trainer_callback.TrainerState"
    # a call runs __post_init__, which calls .state() on each stateful callback it is handed: rebuilding only
    callback = g("torch.nn.modules.linear.Identity") + b")\x81"
    called = P4 + g(cls) + b"(" + b"K\x00" * 19 + b"]" + callback + b"a" + b"tR" + STOP
    assert ("LW-MODEL-005", Severity.HIGH) in rules(analyze_pickle_bytes(called))
    # rebuilt with a state that plants __setstate__, then BUILT again
    planted = (
        P4 + g(cls) + b")\x81" + b"}(" + u("__setstate__") + g("os.system") + b"ub" + u("id") + b"b" + STOP
    )
    assert worst(analyze_pickle_bytes(planted)) is Severity.CRITICAL


# --- quantization-aware training -------------------------------------------------------------------------------


def test_qat_modules_and_qconfigs_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    q = pytest.importorskip("torch.ao.quantization")
    qat = pytest.importorskip("torch.ao.nn.qat")
    iqat = pytest.importorskip("torch.ao.nn.intrinsic.qat")
    learnable = pytest.importorskip("torch.ao.quantization._learnable_fake_quantize")
    qconfig = q.get_default_qat_qconfig()
    model = torch.nn.Sequential(
        q.QuantStub(), torch.nn.Linear(4, 4), torch.nn.ReLU(), q.DeQuantStub()
    ).train()
    model.qconfig = q.get_default_qat_qconfig("qnnpack")
    prepared = q.prepare_qat(model)
    prepared(torch.randn(2, 4))
    static = torch.nn.Sequential(q.QuantStub(), torch.nn.Linear(4, 4), q.DeQuantStub()).eval()
    static.qconfig = q.get_default_qconfig("x86")  # HistogramObserver and per-channel observers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dynamic = q.QConfigDynamic(weight=q.default_weight_observer)
        observed = q.prepare(static)
    objects = {
        "linear": qat.Linear(4, 4, qconfig=qconfig),
        "conv": qat.Conv2d(3, 3, 1, qconfig=qconfig),
        "linear_relu": iqat.LinearReLU(4, 4, qconfig=qconfig),
        "conv_bn": iqat.ConvBn2d(3, 3, 1, qconfig=qconfig),
        # prepare() puts local functions in the modules' qconfig: a prepared model is saved by its state_dict
        "prepared_state": prepared.state_dict(),
        "observed_state": observed.state_dict(),
        "qconfigs": [
            qconfig,
            q.default_dynamic_qconfig,
            q.float16_dynamic_qconfig,
            q.per_channel_dynamic_qconfig,
        ],
        "dynamic": dynamic,
        "learnable": q.QConfig(
            activation=learnable._LearnableFakeQuantize.with_args(
                observer=q.MovingAverageMinMaxObserver, quant_min=0, quant_max=255, scale=1.0, zero_point=0.0
            ),
            weight=q.default_weight_fake_quant,
        ),
        "callable_args": q.default_placeholder_observer.with_callable_args(),
    }
    _save(tmp_path / "q", objects)
    assert _assert_clean(tmp_path / "q") == len(objects)


def test_partial_wrapper_over_a_dangerous_callable_stays_critical() -> None:
    obs = pytest.importorskip("torch.ao.quantization.observer")
    data = pickle.dumps(obs._PartialWrapper(partial(os.system, "id")), protocol=4)
    assert worst(analyze_pickle_bytes(data)) is Severity.CRITICAL
    data = pickle.dumps(obs._PartialWrapper(partial(eval, "1")), protocol=2)
    assert worst(analyze_pickle_bytes(data)) is Severity.CRITICAL


def test_partial_wrapper_over_a_class_allowed_for_rebuilding_only_is_reported() -> None:
    q = pytest.importorskip("torch.ao.quantization")
    pytest.importorskip("tokenizers")
    from tokenizers.implementations import BertWordPieceTokenizer

    cases = {
        # prepare calls p(): the tokenizer would read the file its keyword names
        "target": q.observer._PartialWrapper(partial(BertWordPieceTokenizer, vocab="/etc/passwd")),
        # the fake quantizer calls its observer keyword with the other keywords
        "observer keyword": q.FakeQuantize.with_args(observer=BertWordPieceTokenizer, vocab="/etc/passwd"),
        # QConfig's fields themselves are called
        "qconfig field": q.QConfig(activation=BertWordPieceTokenizer, weight=q.default_weight_observer),
        "callable_args": q.default_placeholder_observer.with_callable_args(vocab=BertWordPieceTokenizer),
    }
    for what, obj in cases.items():
        result = analyze_pickle_bytes(pickle.dumps(obj, protocol=4))
        assert ("LW-MODEL-005", Severity.HIGH) in rules(result), what


def test_partial_of_a_wrapper_changed_after_its_build_is_reported() -> None:
    pytest.importorskip("torch.ao.quantization.observer")
    fake = "torch.ao.quantization.fake_quantize.FakeQuantize"
    part = g("functools.partial") + g(fake) + b"\x85R" + b"\x94"  # memo 0: the partial
    part += b"(" + g(fake) + b")NNt" + b"b"
    wrapper = (
        g("torch.ao.quantization.observer._PartialWrapper") + b")\x81" + b"}(" + u("p") + part + b"u" + b"b"
    )
    # a later BUILD on the memoised partial makes it call a pattern-only class
    retarget = b"h\x00" + b"(" + g(_PATTERN_CLASS) + b"(" + u("/etc/passwd") + b"t" + b"NNt" + b"b0"
    clean_result = analyze_pickle_bytes(P4 + wrapper + STOP)
    assert clean_result.findings == (), [(f.rule_id, f.message) for f in clean_result.findings]
    result = analyze_pickle_bytes(P4 + wrapper + retarget + STOP)
    assert ("LW-MODEL-005", Severity.HIGH) in rules(result)


# --- other torch.save objects of the sweep ----------------------------------------------------------------------


def test_training_states_stay_clean(tmp_path: Path) -> None:
    import argparse

    torch = pytest.importorskip("torch")
    m = torch.nn.Linear(4, 4)
    objects: dict[str, Any] = {}
    for name, opt in (
        ("adam", torch.optim.Adam(m.parameters(), lr=1e-3)),
        ("sgd", torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)),
    ):
        m(torch.randn(2, 4)).sum().backward()
        opt.step()
        scheds = [
            torch.optim.lr_scheduler.StepLR(opt, 2),
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10),
            torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10),
            torch.optim.lr_scheduler.ReduceLROnPlateau(opt),
        ]
        objects[name] = {"optimizer": opt.state_dict(), "schedulers": [s.state_dict() for s in scheds]}
    objects["scaler"] = torch.amp.GradScaler("cpu").state_dict()
    objects["generator"] = torch.Generator().manual_seed(1).get_state()
    objects["namespace"] = argparse.Namespace(lr=0.1, model="bert", layers=[1, 2])
    _save(tmp_path / "s", objects)
    assert _assert_clean(tmp_path / "s") == len(objects)
