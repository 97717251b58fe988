"""Round 13, false positives on files the libraries write themselves, and their dangerous neighbours.

Benign files reported before: a sentence-transformers model saved whole with ``torch.save`` (its classes were
LW-MODEL-006 medium, the similarity functions it keeps LW-MODEL-005 high); a ``torch.package`` archive whose first
extern module is ``collections`` (its ``.data/extern_modules`` text read as the pickle ``GLOBAL ollections ...``,
high and unverified); and a ``convert_fx`` quantized GraphModule saved whole (its body's ``_tracer_cls`` is None,
which torch.fx takes as its own Tracer, and it keeps the packed-weight state-dict hooks: critical and high). Each
benign file is made here with the real library (the test is skipped when it is missing) and must scan clean. Each
admission keeps its neighbour reported: the sentence-transformers classes and functions called rather than rebuilt
or kept, an extern record that is a pickle, GraphModule code that is not what torch.fx writes, the hooks called.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.domain import Severity


def _assert_clean(folder: Path) -> int:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(folder)], jobs=1)
    assert report.targets
    for t in report.targets:
        assert t.verdict.value == "clean", (t.path, [(f.rule_id, f.message) for f in t.findings], t.reason)
        assert not t.findings, (t.path, [(f.rule_id, f.message) for f in t.findings])
    return len(report.targets)


def _findings(path: Path) -> list[tuple[str, Severity, str]]:
    from loopwarden.checks.models.scanner import scan_paths

    report = scan_paths([str(path)], jobs=1)
    return [(f.rule_id, f.severity, f.message) for t in report.targets for f in t.findings]


def _g(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


_P2 = b"\x80\x02"
_ST = "sentence_transformers"


# --- sentence-transformers ----------------------------------------------------------------------------------------


def _wordpiece() -> Any:
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.BertNormalizer()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.BertPreTokenizer()
    special = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    trainer = tokenizers.trainers.WordPieceTrainer(vocab_size=60, special_tokens=special)
    tok.train_from_iterator(["hello world this is a small test"] * 10, trainer)
    return tok


def _bert_folder(folder: Path, *, masked_lm: bool = False) -> Path:
    """A one-layer BERT with random weights and a locally trained tokenizer, as from_pretrained reads it."""
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        vocab_size=60,
        max_position_embeddings=32,
    )
    cls = transformers.BertForMaskedLM if masked_lm else transformers.BertModel
    cls(config).save_pretrained(folder)
    transformers.PreTrainedTokenizerFast(
        tokenizer_object=_wordpiece(),
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    ).save_pretrained(folder)
    return folder


def test_sentence_transformer_saved_whole_and_with_save_stays_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as m

    bert = _bert_folder(tmp_path / "bert")
    out = tmp_path / "out"
    out.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformer = m.Transformer(str(bert), max_seq_length=16)
        pool = m.Pooling(16)
        model = SentenceTransformer(modules=[transformer, pool, m.Dense(16, 8), m.Normalize()])
        model.save(str(out / "saved"))
        torch.save(model, out / "whole.pt")
        for name, module in {
            "cnn": m.CNN(16, out_channels=4, kernel_sizes=[1, 3]),
            "lstm": m.LSTM(16, 8),
            "wlp": m.WeightedLayerPooling(16, num_hidden_layers=1, layer_start=0),
            "extras": torch.nn.Sequential(m.Dropout(0.1), m.LayerNorm(16)),
        }.items():
            torch.save(module, out / f"{name}.pt")
    assert (out / "saved" / "modules.json").is_file()
    assert _assert_clean(out) >= 10


def test_sentence_transformers_other_models_and_similarities_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    import sentence_transformers as st
    from sentence_transformers.sentence_transformer import modules as m

    out = tmp_path / "out"
    out.mkdir()
    tok = _wordpiece()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in ("cosine", "dot", "euclidean", "manhattan"):
            model = st.SentenceTransformer(
                modules=[m.StaticEmbedding(tok, embedding_dim=8)], similarity_fn_name=fn
            )
            torch.save(model, out / f"static_{fn}.pt")
        for fn in ("maxsim", "meanmaxsim"):
            mve = st.MultiVectorEncoder(
                modules=[m.StaticEmbedding(tok, embedding_dim=8)], similarity_fn_name=fn
            )
            torch.save(mve, out / f"multi_vector_{fn}.pt")
        router = m.Router.for_query_document(
            query_modules=[m.StaticEmbedding(tok, embedding_dim=8)],
            document_modules=[m.StaticEmbedding(tok, embedding_dim=8)],
        )
        torch.save(st.SentenceTransformer(modules=[router]), out / "router.pt")
        torch.save(m.BoW(vocab=["hello", "world"]), out / "bow.pt")
        cross = st.CrossEncoder(str(_bert_folder(tmp_path / "bert")), num_labels=1)
        torch.save(cross, out / "cross_encoder.pt")
        cross.save(str(out / "cross_saved"))
        from sentence_transformers.sparse_encoder.modules import MLMTransformer, SpladePooling

        mlm = MLMTransformer(str(_bert_folder(tmp_path / "mlm", masked_lm=True)))
        torch.save(st.SparseEncoder(modules=[mlm, SpladePooling("max")]), out / "sparse.pt")
    assert _assert_clean(out) >= 11


@pytest.mark.parametrize(
    ("module", "name"),
    [
        (f"{_ST}.sentence_transformer.model", "SentenceTransformer"),
        (f"{_ST}.base.modules.transformer", "Transformer"),
        (f"{_ST}.cross_encoder.model", "CrossEncoder"),
        (f"{_ST}.sentence_transformer.model_card", "SentenceTransformerModelCardData"),
        (f"{_ST}.util.similarity", "cos_sim"),
    ],
)
def test_sentence_transformers_names_called_at_load_are_high(module: str, name: str) -> None:
    # SentenceTransformer("<hub id>", trust_remote_code=True) loads and runs a repository's code: the names are
    # admitted for NEWOBJ + BUILD (and for keeping) only
    payload = _P2 + _g(module, name) + b"X\x04\x00\x00\x00evil\x85R."
    result = analyze_pickle_bytes(payload)
    assert any(f.severity >= Severity.HIGH and name in f.message for f in result.findings), result.findings


def test_sentence_transformers_rebuilt_without_constructor_is_clean() -> None:
    payload = (
        _P2
        + _g(f"{_ST}.sentence_transformer.model", "SentenceTransformer")
        + b")\x81}X\x01\x00\x00\x00aK\x01sb."
    )
    assert not analyze_pickle_bytes(payload).findings


@pytest.mark.parametrize(
    ("module", "name"),
    [
        # wraps a user's callable; not what a saved model holds
        (f"{_ST}.multi_vector_encoder.modules.token_pooling", "LambdaTokenPooling"),
        (f"{_ST}.sentence_transformer.losses.cosine_similarity", "CosineSimilarityLoss"),
        (f"{_ST}.sentence_transformer.trainer", "SentenceTransformerTrainer"),
        (f"{_ST}.util.similarity", "_chunk_ranges"),
    ],
)
def test_other_sentence_transformers_names_stay_reported(module: str, name: str) -> None:
    payload = _P2 + _g(module, name) + b")\x81}b."
    result = analyze_pickle_bytes(payload)
    assert any(f.severity >= Severity.MEDIUM and name in f.message for f in result.findings), result.findings


# --- torch.package extern_modules ----------------------------------------------------------------------------------


def _package(path: Path, obj: Any) -> Path:
    pytest.importorskip("torch")
    from torch.package import PackageExporter

    with PackageExporter(path) as exporter:
        exporter.save_pickle("weights", "state.pkl", obj)
    return path


def _extern_member(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return next(n for n in z.namelist() if n.endswith("/.data/extern_modules"))


def _with_extern(src: Path, dst: Path, content: bytes) -> Path:
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w") as zo:
        for info in zi.infolist():
            data = content if info.filename.endswith("/.data/extern_modules") else zi.read(info.filename)
            zo.writestr(info.filename, data)
    return dst


def test_torch_package_of_a_state_dict_stays_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    out = tmp_path / "out"
    out.mkdir()
    path = _package(out / "state.pt", torch.nn.Linear(3, 2).state_dict())
    with zipfile.ZipFile(path) as z:
        extern = z.read(_extern_member(path))
    assert extern.startswith(b"collections\n")  # GLOBAL of "ollections" to a pickle loader
    for i, names in enumerate([b"io\nnumpy\ntorch\n", b"copyreg\ntorch\n", b"\n"]):
        _with_extern(path, out / f"variant{i}.pt", names)
    assert _assert_clean(out) == 4


@pytest.mark.parametrize(
    "content",
    [
        pickle.dumps(type("E", (), {"__reduce__": lambda self: (eval, ("1",))})(), protocol=2),
        b"cos\nsystem\n(S'id'\ntR.",
        # lines that are all dotted names, yet a pickle loader appends to sys.path before it fails
        b"csys\npath\nVevil\na\n",
    ],
)
def test_torch_package_extern_record_that_is_a_pickle_is_reported(tmp_path: Path, content: bytes) -> None:
    torch = pytest.importorskip("torch")
    path = _package(tmp_path / "state.pt", torch.nn.Linear(3, 2).state_dict())
    found = _findings(_with_extern(path, tmp_path / "bad.pt", content))
    assert any(sev is Severity.CRITICAL for _, sev, _ in found), found


# --- convert_fx quantized GraphModules -----------------------------------------------------------------------------


class _QNet:
    @staticmethod
    def build() -> Any:
        torch = pytest.importorskip("torch")
        nn = torch.nn

        class Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(1, 2, 3)
                self.bn = nn.BatchNorm2d(2)
                self.lin = nn.Linear(18, 4)

            def forward(self, x):  # no annotations: torch.fx cannot save them under postponed evaluation
                x = torch.relu(self.bn(self.conv(x)))
                return self.lin(x.flatten(1)) + 1

        return Net()


def _converted(kind: str) -> Any:
    torch = pytest.importorskip("torch")
    from torch.ao.quantization import QConfigMapping, default_dynamic_qconfig, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, convert_to_reference_fx, prepare_fx

    example = (torch.randn(2, 1, 5, 5),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "dynamic":
            mapping = QConfigMapping().set_object_type(torch.nn.Linear, default_dynamic_qconfig)
            return convert_fx(prepare_fx(_QNet.build().eval(), mapping, example))
        prepared = prepare_fx(_QNet.build().eval(), get_default_qconfig_mapping("fbgemm"), example)
        prepared(*example)
        return convert_to_reference_fx(prepared) if kind == "reference" else convert_fx(prepared)


def test_convert_fx_quantized_models_saved_whole_stay_clean(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    for kind in ("static", "dynamic", "reference"):
        model = _converted(kind)
        torch.save(model, tmp_path / f"{kind}.pt")
        torch.save(model.state_dict(), tmp_path / f"{kind}_state.pt")
    body = _converted("static").__reduce__()[1][0]
    assert body["_tracer_cls"] is None  # what torch.fx replaces with its own Tracer on load
    assert _assert_clean(tmp_path) == 6


class _Edited:
    """Pickles as ``reduce_graph_module(body, import_block)`` with the body and import block given."""

    def __init__(self, body: dict[str, Any], import_block: str) -> None:
        self.body, self.import_block = body, import_block

    def __reduce__(self) -> tuple[Any, ...]:
        from torch.fx.graph_module import reduce_graph_module

        return reduce_graph_module, (self.body, self.import_block)


def test_convert_fx_body_with_code_torch_fx_does_not_write_is_critical() -> None:
    _, (body, import_block) = _converted("static").__reduce__()
    body = dict(body)
    assert body["_tracer_cls"] is None
    edited = _Edited(body, import_block + "\nimport os\nos.system('id')")
    result = analyze_pickle_bytes(pickle.dumps(edited, protocol=2))
    assert any(f.severity is Severity.CRITICAL for f in result.findings), result.findings


@pytest.mark.parametrize("hook", ["_save_packed_weight", "_load_packed_weight"])
def test_packed_weight_hooks_called_at_load_are_high(hook: str) -> None:
    module = "torch.ao.quantization.fx._lower_to_native_backend"
    result = analyze_pickle_bytes(_P2 + _g(module, hook) + b"NNN\x87R.")
    assert any(f.severity >= Severity.HIGH and hook in f.message for f in result.findings), result.findings
