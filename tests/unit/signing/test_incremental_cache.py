"""The incremental cache and the bulk paths of verification: never a wrong answer, only saved work."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopwarden.attest.keys import PrivateKey
from loopwarden.errors import InputError
from loopwarden.signing import KeySigner, KeyTrust, sign, verify
from loopwarden.signing.interface import Resource, SignatureFormatError
from loopwarden.signing.walk import enumerate_model, is_confined_name

# the verify module's name is shadowed by the function in the package namespace
verify_mod = __import__("loopwarden.signing.verify", fromlist=["_any_suspect"])


def _cache_file(cache: Path) -> Path:
    (found,) = cache.glob("*.cache")
    return found


@pytest.mark.parametrize("shard", [None, 1_000_000])
def test_cache_round_trip_then_one_change(
    model: Path, key: PrivateKey, tmp_path: Path, shard: int | None
) -> None:
    cache = tmp_path / "cache"
    sign(model, KeySigner(key), cache_dir=cache, shard_size=shard)
    trust = KeyTrust(key.public())
    first = verify(model, trust, incremental=True, cache_dir=cache)
    assert first.verified
    assert first.bytes_hashed == 0
    w = model / "weights.bin"
    data = bytearray(w.read_bytes())
    data[2_500_000] ^= 1
    w.write_bytes(bytes(data))
    second = verify(model, trust, incremental=True, cache_dir=cache)
    assert not second.verified
    assert second.bytes_hashed == len(data)  # only the changed file, whole
    (finding,) = [f for f in second.result.findings if f.rule_id == "LW-SIGN-012"]
    assert "weights.bin" in finding.message
    if shard is not None:
        assert finding.evidence["parts"] == ["weights.bin:2000000:3000000"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b"not a cache at all",
        lambda b: b[:-1] + bytes([b[-1] ^ 1]),  # one digest byte changed: must not hide anything
        lambda b: b.replace(b'"files":', b'"files":9', 1),  # counts that do not add up
        lambda b: b"",
    ],
)
def test_a_damaged_cache_never_makes_a_changed_file_pass(
    model: Path, key: PrivateKey, tmp_path: Path, damage: object
) -> None:
    cache = tmp_path / "cache"
    sign(model, KeySigner(key), cache_dir=cache)
    f = _cache_file(cache)
    f.write_bytes(damage(f.read_bytes()))  # type: ignore[operator]
    (model / "config.json").write_text('{"layers": 9}')
    out = verify(model, KeyTrust(key.public()), incremental=True, cache_dir=cache)
    assert not out.verified
    assert any("config.json" in x.message for x in out.result.findings)


def test_a_damaged_cache_costs_only_a_rehash(model: Path, key: PrivateKey, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sign(model, KeySigner(key), cache_dir=cache)
    f = _cache_file(cache)
    f.write_bytes(f.read_bytes()[:100])
    out = verify(model, KeyTrust(key.public()), incremental=True, cache_dir=cache)
    assert out.verified
    assert out.files_reused == 0
    again = verify(model, KeyTrust(key.public()), incremental=True, cache_dir=cache)
    assert again.verified and again.bytes_hashed == 0  # rewritten whole by the previous run


def test_renamed_and_added_files_with_a_cache(model: Path, key: PrivateKey, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    sign(model, KeySigner(key), cache_dir=cache)
    os.rename(model / "sub" / "tok.txt", model / "sub" / "tok2.txt")
    (model / "new.bin").write_bytes(b"x")
    out = verify(model, KeyTrust(key.public()), incremental=True, cache_dir=cache)
    messages = " ".join(f.message for f in out.result.findings)
    assert not out.verified
    assert "sub/tok.txt" in messages and "sub/tok2.txt" in messages and "new.bin" in messages


_RES = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["a", "b/c", "", "x:1:2"]), st.integers()),
        "algorithm": st.sampled_from(["sha256", "blake3", "blake2b", "blake2", "md5", "sha256 "]),
        "digest": st.one_of(
            st.sampled_from(["ab" * 32, "AB" * 32, "ab" * 64, "abc", "", "ab" * 31 + "a\n", " " + "a" * 63]),
            st.none(),
        ),
    }
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_RES, min_size=1, max_size=6))
def test_bulk_resource_parsing_equals_item_by_item(items: list[dict[str, object]]) -> None:
    def one_by_one() -> tuple[Resource, ...] | str:
        try:
            return tuple(Resource.from_json(r) for r in items)
        except SignatureFormatError as exc:
            return exc.message

    try:
        bulk: tuple[Resource, ...] | str = Resource.many_from_json(items)
    except SignatureFormatError as exc:
        bulk = exc.message
    assert bulk == one_by_one()


def test_uniform_resources_take_the_bulk_path_and_equal_the_long_way() -> None:
    items = [{"name": f"f{i}", "algorithm": "sha256", "digest": f"{i:064x}"} for i in range(500)]
    assert Resource.many_from_json(items) == tuple(Resource.from_json(r) for r in items)


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(st.text(alphabet=["a", ".", "/", "\\", "\x00", "\n", "é"], max_size=7), min_size=1, max_size=4)
)
def test_suspect_name_screen_misses_nothing(names: list[str]) -> None:
    """The substring screen may send a good name the long way, never let a bad one through."""
    if any(not is_confined_name(n) for n in names):
        assert verify_mod._any_suspect(names)


def test_listing_is_sorted_by_name_and_keeps_full_paths(model: Path) -> None:
    listing = enumerate_model(model, allow_symlinks=False)
    names = [e.name for e in listing.entries]
    assert names == sorted(names)
    for e in listing.entries:
        assert Path(e.path) == model / e.name
        assert Path(e.path).stat().st_size == e.state.size


def test_verify_pauses_the_cyclic_collector_only_for_its_call(
    model: Path, key: PrivateKey, tmp_path: Path
) -> None:
    import gc

    sign(model, KeySigner(key), cache_dir=tmp_path / "c")
    from loopwarden.signing import manifest

    seen: list[bool] = []
    hashing: list[bool] = []
    real = verify_mod.enumerate_model
    real_hash = manifest.hash_tasks

    def spy(*a: object, **k: object) -> object:
        seen.append(gc.isenabled())
        return real(*a, **k)  # type: ignore[arg-type]

    def hash_spy(*a: object, **k: object) -> object:
        hashing.append(gc.isenabled())
        return real_hash(*a, **k)  # type: ignore[arg-type]

    verify_mod.enumerate_model = spy
    manifest.hash_tasks = hash_spy  # type: ignore[assignment]
    try:
        assert gc.isenabled()
        assert verify(model, KeyTrust(key.public())).verified
        assert seen == [False] and gc.isenabled()
        assert hashing == [True]  # the long hashing phase runs with the collector on
        gc.disable()
        try:
            verify(model, KeyTrust(key.public()))
            assert not gc.isenabled()  # a caller's choice is kept
        finally:
            gc.enable()
        with pytest.raises(InputError, match="signature file not found"):
            verify(model, KeyTrust(key.public()), signature=tmp_path / "missing.sig")
        assert gc.isenabled()  # restored after an error too
    finally:
        verify_mod.enumerate_model = real
        manifest.hash_tasks = real_hash
