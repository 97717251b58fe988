"""Round 17: resource bounds on small or common inputs that cost the scanner much time or memory.

Each test builds its input by code and asserts what the scanner reports (a verdict, a limit named, or that the
prefilter of a check agrees with the check); none asserts a wall time.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import lzma
import pickle
import random
import string
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from loopwarden.checks.models import dispatch, pickle_vm
from loopwarden.checks.models.pickle_vm import analyze_pickle_bytes
from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Verdict

SYSTEM_P4 = b"\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02id\x85R."
SYSTEM_P0 = b"cposix\nsystem\n(S'id'\ntR."
SYSTEM_P0_MARK = b"(cos\nsystem\nS'id'\no."
PAYLOADS = (SYSTEM_P4, SYSTEM_P0, SYSTEM_P0_MARK, b"\x80\x02" + b"N" * 40 + b".")


def u(s: str) -> bytes:
    raw = s.encode("utf-8", "surrogatepass")
    return b"\x8c" + bytes([len(raw)]) + raw if len(raw) < 256 else b"X" + struct.pack("<I", len(raw)) + raw


# --- 1. the stored-pickle prefilter -------------------------------------------------------------------------


def _encodings(data: bytes) -> list[str]:
    """The text spellings of ``data`` the full stored-pickle check decodes, plain and with noise around them."""
    b64 = base64.b64encode(data).decode()
    out = [
        b64,
        b64.rstrip("="),
        base64.urlsafe_b64encode(data).decode(),
        base64.encodebytes(data).decode(),
        "  \t" + b64,
        "*" + b64,
        b64[:8] + " " + b64[8:],
        b64[:6] + "_-" + b64[6:],
        data.hex(),
        data.hex().upper(),
        " ".join(data.hex()[i : i + 2] for i in range(0, 2 * len(data), 2)),
        base64.b32encode(data).decode(),
        base64.b32encode(data).decode().rstrip("="),
        base64.b85encode(data).decode(),
        base64.a85encode(data).decode(),
        base64.a85encode(data, adobe=True).decode(),
        data.decode("latin-1"),
    ]
    return out


def _crafted() -> list[str]:
    keys: list[str] = []
    for payload in PAYLOADS:
        for packed in (
            payload,
            zlib.compress(payload),
            gzip.compress(payload),
            bz2.compress(payload),
            lzma.compress(payload),
            lzma.compress(payload, format=lzma.FORMAT_ALONE),
        ):
            keys.extend(_encodings(packed))
    rng = random.Random(17)
    alphabets = (
        string.ascii_letters + string.digits,
        string.ascii_letters + string.digits + "+/=_- \n",
        string.ascii_lowercase,
        "0123456789abcdef",
        string.printable,
        "".join(chr(c) for c in range(256)),
        "ßäöü日本語" + string.ascii_letters,
    )
    for alphabet in alphabets:
        for _ in range(3000):
            keys.append("".join(rng.choice(alphabet) for _ in range(rng.randint(16, 48))))
    # random bytes encoded, so that the decoded bytes hold newlines, STACK_GLOBAL and headers by chance
    for _ in range(3000):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(12, 40)))
        raw = bytes([rng.choice(sorted(pickle_vm._STORED_FIRST_BYTES))]) + raw
        keys.extend((base64.b64encode(raw).decode(), raw.hex(), base64.b85encode(raw).decode()))
        keys.append(base64.b64encode(raw[:1] + b"\x93" + raw[1:]).decode())
        keys.append(base64.b64encode(b"c" + raw[:5] + b"\n" + raw[5:9] + b"\n").decode())
    keys.extend(f"feature_{i:08d}_{i * 7919 % 10**6}" for i in range(2000))
    return [k for k in keys if len(k) >= pickle_vm._STORED_MIN]


def test_the_stored_pickle_prefilter_never_drops_what_the_full_check_finds() -> None:
    """The prefilter may let anything through, but every key the full check finds a stored pickle in (or a reason
    to stop) must pass it, whatever its encoding and the noise around it."""
    keys = _crafted()
    found = [k for k in keys if pickle_vm._stored_text_full(k, "") is not None]
    assert len(found) > 300  # the crafted set exercises every encoding
    missed = [k for k in found if not pickle_vm._stored_text_may(k, "")]
    assert not missed, missed[:5]
    found_in_bytes = [
        k for k in keys if k.isascii() and pickle_vm._stored_text_full(k, " in bytes") is not None
    ]
    assert not [k for k in found_in_bytes if not pickle_vm._stored_text_may(k, " in bytes")]


def test_the_prefilter_drops_vocabulary_keys() -> None:
    """What the prefilter exists for: ``feature_...`` names (base64 heads decoding to ``}``) are decided there."""
    names = [f"feature_{i:08d}_{i * 7919 % 10**6}" for i in range(5000)]
    assert not any(pickle_vm._stored_text_may(k, "") for k in names)
    assert not any(pickle_vm._stored_text_full(k, "") for k in names)


def test_a_non_ascii_key_with_a_base64_head_is_not_a_stream_error() -> None:
    """``str.isalnum`` takes letters base64 rejects: such a key made the whole file unverified (ValueError)."""
    data = pickle.dumps({"gAßßßßßßßßßßßßßßßß": 1, "gASVäöüäöüäöüäöü": 2}, protocol=4)
    result = analyze_pickle_bytes(data)
    assert result.unverified is None
    assert not result.findings


def test_a_stored_pickle_among_many_vocabulary_keys_is_still_reported() -> None:
    vocab = {f"feature_{i:08d}_{i * 7919 % 10**6}": i for i in range(20000)}
    vocab[base64.b64encode(SYSTEM_P4).decode()] = -1
    result = analyze_pickle_bytes(pickle.dumps({"vocabulary_": vocab}, protocol=4))
    assert [f.rule_id for f in result.findings] == ["LW-MODEL-019"]
    assert result.unverified is None


def _stored_with_skipped_characters(spell: Callable[[str], str]) -> bytes:
    """A pickle of ``{"blob": spell(base64 of os.system)}``: base64 text with '-'/'_' that b64decode skips."""
    return pickle.dumps({"blob": spell(base64.b64encode(SYSTEM_P4).decode())}, protocol=4)


def _dash_underscore(b: str) -> str:
    return b[:4] + "_" + b[4:8] + "-" + b[8:]


@pytest.mark.parametrize(
    "spell",
    [
        _dash_underscore,
        lambda b: "_-" + b,
        lambda b: "-" + b.replace("A", "A_"),
    ],
)
def test_base64_with_characters_b64decode_skips_is_read_as_b64decode_reads_it(spell: object) -> None:
    """``base64.b64decode`` (not validating) skips '-' and '_'; the check read them only as URL-safe '+' and '/'
    (and never looked at a string starting with one): ``pickle.loads(base64.b64decode(value))`` ran the payload
    and the file was clean."""
    data = _stored_with_skipped_characters(spell)  # type: ignore[arg-type]
    text = pickle.loads(data)["blob"]
    assert base64.b64decode(text) == SYSTEM_P4
    result = analyze_pickle_bytes(data)
    assert [f.rule_id for f in result.findings] == ["LW-MODEL-019"]


def test_names_with_underscores_stay_clean() -> None:
    names = {f"_private_attribute_{i}": f"--flag-{i}-value_" * 3 for i in range(2000)}
    result = analyze_pickle_bytes(pickle.dumps(names, protocol=4))
    assert result.unverified is None and not result.findings


# --- 2. items held in tuples and lists ----------------------------------------------------------------------


def _tuples_of_none(count: int, size: int, memoized: bool = False) -> bytes:
    """A protocol 4 list of ``count`` tuples of ``size`` None each (pushed by NONE, or fetched from the memo)."""
    item = b"h\x00" if memoized else b"N"
    head = b"\x80\x04N\x94" if memoized else b"\x80\x04"
    one = b"(" + item * size + b"t"
    return head + b"](" + one * count + b"e."


def test_tuples_of_many_items_are_bounded() -> None:
    """24 tuples of 2,000,000 None (48 MB of file) held 437 MB; past the bound the file is unverified."""
    result = analyze_pickle_bytes(_tuples_of_none(9, 1_900_000))
    assert result.unverified is not None and "max_held_items" in result.unverified


def test_the_held_items_bound_counts_tuples_and_kept_list_items(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pickle_vm, "_MAX_HELD_ITEMS", 100_000)
    for memoized in (False, True):
        result = analyze_pickle_bytes(_tuples_of_none(3, 40_000, memoized))
        assert result.unverified is not None and "max_held_items" in result.unverified
    # lists keep _MAX_CONTAINER items each: many full lists are counted as they are kept
    lists = b"\x80\x04](" + (b"](" + b"N" * 10_000 + b"e") * 11 + b"e."
    result = analyze_pickle_bytes(lists)
    assert result.unverified is not None and "max_held_items" in result.unverified
    # below the bound nothing changes
    assert analyze_pickle_bytes(_tuples_of_none(2, 40_000)).unverified is None


def test_a_big_benign_vocabulary_stays_clean() -> None:
    """A fitted vectorizer's 100,000-entry vocabulary, its feature names and an idf tuple: clean."""
    names = [f"feature_{i:08d}_{i * 7919 % 10**6}" for i in range(100_000)]
    state = {
        "vocabulary_": {k: i for i, k in enumerate(names)},
        "feature_names_": names,
        "idf": (1.0,) * 100_000,
    }
    result = analyze_pickle_bytes(pickle.dumps(state, protocol=4))
    assert result.unverified is None and not result.findings


# --- 3. the class: small files whose opcodes repeat work on a big memoized value ----------------------------


def test_a_big_state_built_into_many_objects_is_searched_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """BUILD of one memoized 10,000-item state into 1,500,000 objects (4.6 MB of file) ran for minutes: each
    BUILD searched the whole state for planted callables. Each state is searched once now."""
    calls = [0]
    real = pickle_vm._maybe_callable

    def counting(value: object) -> bool:
        calls[0] += 1
        return real(value)

    monkeypatch.setattr(pickle_vm, "_maybe_callable", counting)
    state = b"}\x94(" + (u("clip") + b"K\x01") * 10_000 + b"u"
    obj = u("collections") + u("OrderedDict") + b"\x93)R"
    data = b"\x80\x04" + state + b"0" + obj + b"h\x00b" * 500 + b"."
    result = analyze_pickle_bytes(data)
    assert result.unverified is None and not result.findings
    assert calls[0] <= 10_000 + 500


def _overlapping_zip(inner: bytes, count: int) -> bytes:
    """One stored member's data named by ``count`` central directory entries (each its own name)."""
    name = b"archive/data.pkl"
    crc = zlib.crc32(inner)
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(inner), len(inner), len(name), 0)
    local += name + inner
    central = b""
    for i in range(count):
        member = f"archive/data{i}.pkl".encode()
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            0,
            0,
            0,
            crc,
            len(inner),
            len(inner),
            len(member),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        central += member
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)
    return local + central + end


def test_zip_members_sharing_one_data_span_are_analysed_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5,000 central entries naming one 600 KB pickle (a 700 KB file) were each analysed (minutes): each data
    span is analysed for at most a few members; the overlap is reported and the file is unverified."""
    reads = [0]
    real = dispatch.scan_blob

    def counting(blob: object, ctx: object) -> None:
        reads[0] += 1
        real(blob, ctx)  # type: ignore[arg-type]

    monkeypatch.setattr(dispatch, "scan_blob", counting)
    path = tmp_path / "model.pt"
    path.write_bytes(_overlapping_zip(pickle.dumps({"w": list(range(1000))}, protocol=4), 300))
    [result] = scan_paths([str(path)], jobs=1).targets
    assert result.verdict is Verdict.UNVERIFIED
    assert result.reason is not None and "max_shared_members" in result.reason
    assert "LW-MODEL-023" in {f.rule_id for f in result.findings}
    assert 0 < reads[0] <= 2 * dispatch._MAX_SHARED_READS + 4


def test_a_repeated_finding_is_described_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A memoized list of 10,000 pairs (keys the analysis cannot all keep) BUILT into an object 1,000,000 times
    (3 MB of file) was described for the evidence at every BUILD (half a minute); the finding is counted again
    without it."""
    calls = [0]
    real = pickle_vm._short

    def counting(value: object, depth: int = 0) -> object:
        calls[0] += 1
        return real(value, depth)

    monkeypatch.setattr(pickle_vm, "_short", counting)
    pairs = b"](" + b"".join(u(f"k{i:06d}") + b"N\x86" for i in range(10_000)) + b"e\x94"
    obj = u("collections") + u("OrderedDict") + b"\x93)R"
    result = analyze_pickle_bytes(b"\x80\x04" + pairs + b"0" + obj + b"h\x00b" * 2_000 + b".")
    [finding] = [f for f in result.findings if f.evidence.get("subject") == "state keys unknown"]
    assert finding.rule_id == "LW-MODEL-016"
    assert finding.evidence.get("occurrences") == 2_000
    assert calls[0] < 1_000
