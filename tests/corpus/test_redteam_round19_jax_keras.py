"""Round 19 of the internal red team: JAX/Flax/Orbax checkpoints, MLX, and old Keras function objects.

The one case that scanned ``clean`` before this round is an Orbax PyTree checkpoint whose ``_METADATA`` names a
parameter by an absolute path: restoring it without a target tree opens the zarr array at that path instead of one
in the checkpoint folder (orbax-checkpoint 0.12.8 with tensorstore, confirmed in a child process in a scratch
virtualenv). Each case is built here and only scanned; where orbax-checkpoint is installed the real loader is run
on it in a child process.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopwarden.checks.models.scanner import scan_paths
from loopwarden.domain import Severity, TargetResult, Verdict

_OTHER = "/srv/r19-orbax-other/secret"  # the array the bench cases point at (they are only scanned)

_CHECKPOINT_METADATA = json.dumps(
    {
        "item_handlers": "orbax.checkpoint._src.handlers.pytree_checkpoint_handler.PyTreeCheckpointHandler",
        "metrics": {},
        "performance_metrics": {},
        "init_timestamp_nsecs": 1,
        "commit_timestamp_nsecs": 2,
        "custom_metadata": {},
    }
).encode()


def _metadata(*keypaths: tuple[tuple[object, int], ...], use_ocdbt: bool = False) -> bytes:
    """``_METADATA`` as orbax-checkpoint 0.12.8 writes it: one entry per leaf, labelled by the tuple of its key
    names, with the keys (name, key type: 1 sequence, 2 dict) that restoring rebuilds the tree from."""
    tree = {
        str(tuple(str(k) for k, _ in path)): {
            "key_metadata": [{"key": k, "key_type": t} for k, t in path],
            "value_metadata": {"value_type": "np.ndarray", "skip_deserialize": False},
        }
        for path in keypaths
    }
    return json.dumps(
        {
            "tree_metadata": tree,
            "use_ocdbt": use_ocdbt,
            "use_zarr3": False,
            "store_array_data_equal_to_fill_value": True,
            "custom_metadata": None,
        }
    ).encode()


def _folder(metadata: bytes) -> dict[str, bytes]:
    return {"_METADATA": metadata, "_CHECKPOINT_METADATA": _CHECKPOINT_METADATA, "commit_success.txt": b"ok"}


def _rich(metadata: bytes, *firsts: str) -> bytes:
    """``_METADATA`` as a rich-types writer (``PyTreeMetadataOptions(support_rich_types=True)``) adds to it: the
    tree again, as a JSON text keyed by the first keys."""
    obj = json.loads(metadata)
    data = {"value_type": "np.ndarray", "skip_deserialize": False}
    entry = {"category": "custom", "clazz": "ValueMetadataEntry", "data": data}
    obj["value_metadata_tree"] = json.dumps(dict.fromkeys(firsts, entry))
    return json.dumps(obj).encode()


def _orbax_cases() -> dict[str, dict[str, bytes]]:
    """A parameter name (its keys joined with ``.``) that ``directory / name`` keeps as it is: POSIX-absolute as
    the first key or as the whole name, a Windows drive and a UNC root (``pathlib`` on Windows), the key escaped in
    JSON, beside ordinary parameters, in a checkpoint that says it uses OCDBT (orbax-checkpoint 0.11.0 decides by
    whether a ``manifest.ocdbt`` file exists, not by this field), and only in the rich-types tree
    (``value_metadata_tree``), which a reader that opts into rich types rebuilds the tree from."""
    return {
        "r19_orbax_absolute_param": _folder(_metadata(((_OTHER, 2),))),
        "r19_orbax_absolute_nested": _folder(
            _metadata(
                (("params", 2), ("dense", 2), ("kernel", 2)), (("/srv/r19-orbax-other", 2), ("secret", 2))
            )
        ),
        "r19_orbax_drive_param": _folder(_metadata((("C:/Users/Public/other/secret", 2),))),
        "r19_orbax_unc_param": _folder(_metadata((("\\\\server\\share\\other\\secret", 2),))),
        "r19_orbax_escaped_param": _folder(
            _metadata(((_OTHER, 2),)).replace(b'"key": "/srv', b'"key": "\\u002fsrv')
        ),
        "r19_orbax_absolute_ocdbt_flag": _folder(_metadata(((_OTHER, 2),), use_ocdbt=True)),
        "r19_orbax_rich_tree_absolute": _folder(_rich(_metadata((("w", 2),)), _OTHER)),
    }


def _pack(value: object) -> bytes:
    """MessagePack as ``msgpack.packb`` writes it, for the maps, strings and integers Orbax's aggregate file holds."""
    if isinstance(value, dict):
        n = len(value)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(_pack(k) + _pack(v) for k, v in value.items())
    if isinstance(value, list):
        assert len(value) < 16
        return bytes([0x90 | len(value)]) + b"".join(_pack(v) for v in value)
    if isinstance(value, str):
        raw = value.encode()
        if len(raw) < 32:
            return bytes([0xA0 | len(raw)]) + raw
        return (
            b"\xd9" + bytes([len(raw)]) if len(raw) < 256 else b"\xda" + struct.pack(">H", len(raw))
        ) + raw
    if isinstance(value, bytes):
        return b"\xc4" + bytes([len(value)]) + value
    assert isinstance(value, int) and 0 <= value < 128
    return bytes([value])


def _aggregate(tree: dict[object, object]) -> dict[str, bytes]:
    """A checkpoint folder written by Orbax before ``_METADATA``: its PyTree in the aggregate file ``checkpoint``."""
    return {
        "checkpoint": _pack(tree),
        "_CHECKPOINT_METADATA": _CHECKPOINT_METADATA,
        "commit_success.txt": b"ok",
    }


def _aggregate_cases() -> dict[str, dict[str, bytes]]:
    """Orbax's legacy aggregate file ``checkpoint``: restoring a folder without ``_METADATA`` rebuilds the tree from
    it, and each ``PLACEHOLDER://`` (or ``AGGREGATED://``) leaf is read from ``directory / '.'.join(keys)``: a
    top-level key that is an absolute path (a long str8 key, a short fixstr key, a map under it, a map of more
    than 15 entries: map16, a drive path) replaces the folder."""
    filler = {f"layer_{i}": f"PLACEHOLDER://layer_{i}" for i in range(16)}
    return {
        "r19_orbax_aggregate_absolute": _aggregate({_OTHER: "PLACEHOLDER://" + _OTHER}),
        "r19_orbax_aggregate_short_key": _aggregate({"step": 3, "/srv": {"w": "PLACEHOLDER://w"}}),
        "r19_orbax_aggregate_nested": _aggregate(
            {"params": {"w": "PLACEHOLDER://params.w"}, "/srv/r19-orbax-other": {"secret": "PLACEHOLDER://x"}}
        ),
        "r19_orbax_aggregate_map16": _aggregate({**filler, _OTHER: "AGGREGATED://" + _OTHER}),
        "r19_orbax_aggregate_drive": _aggregate({"D:\\data\\other\\secret": "PLACEHOLDER://w"}),
    }


def _gda_cases() -> dict[str, dict[str, bytes]]:
    """Flax's legacy multi-host checkpoints (``flax.training.checkpoints`` with ``flax_use_orbax_checkpointing``
    off): an array that is not fully addressable is stored as ``//GDAPlaceholder:<key path>`` in
    ``checkpoint_<step>`` and restored from ``os.path.join(ckpt_path + '_gda', <key path>)``: an absolute path
    (as a short fixstr, a str8 and a str16, nested, as an item of a list, which Flax stores as a map keyed "0",
    "1" ..., a drive path) replaces the checkpoint's folder."""
    ph = "//GDAPlaceholder:"
    long = "/srv/" + "x" * 300 + "/w"
    return {
        "r19_flax_gda_absolute": {"checkpoint_1": _pack({"w": ph + _OTHER, "step": 1})},
        "r19_flax_gda_short": {"checkpoint_1": _pack({"params": {"w": ph + "/w"}})},
        "r19_flax_gda_long": {"checkpoint_1": _pack({"params": {"dense": {"kernel": ph + long}}})},
        "r19_flax_gda_drive": {"checkpoint_7": _pack({"opt": {"mu": ph + "C:\\ckpt\\w"}})},
        "r19_flax_gda_list_item": {"ckpt_3": _pack({"layers": {"0": ph + "layers/0", "1": ph + _OTHER}})},
    }


def bench_cases() -> dict[str, dict[str, bytes]]:
    return {**_orbax_cases(), **_aggregate_cases(), **_gda_cases()}


def _scan(path: Path) -> TargetResult:
    return next(iter(scan_paths([str(path)], jobs=1).targets))


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


@pytest.mark.parametrize("case", sorted(_orbax_cases()))
def test_orbax_parameter_outside_the_checkpoint_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round ``_METADATA`` was plain JSON to the scanner and every case scanned ``clean``.
    ``PyTreeCheckpointer().restore(path)`` (and ``StandardCheckpointer``) without a target rebuilds the tree from
    ``key_metadata`` and opens each leaf's zarr array at ``directory / '.'.join(keys)`` when the folder has no
    ``manifest.ocdbt``: an absolute name replaces the folder (orbax-checkpoint 0.12.8, tensorstore 0.1.x: another
    checkpoint's array was restored as this one's)."""
    _write(tmp_path, _orbax_cases()[case])
    res = _scan(tmp_path / "_METADATA")
    assert res.verdict is Verdict.FINDINGS, res
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-052"]
    assert hits and all(f.severity is Severity.HIGH for f in hits), res.findings
    assert "Orbax _METADATA" in hits[0].message


@pytest.mark.parametrize("case", sorted(_aggregate_cases()))
def test_orbax_aggregate_key_outside_the_checkpoint_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round the aggregate file was checked for MessagePack structure only and every case scanned
    ``clean``. orbax-checkpoint 0.12.8 and 0.11.0 restored another checkpoint's array through such a key (the
    placeholder's text is not used; the keys name the array)."""
    _write(tmp_path, _aggregate_cases()[case])
    res = _scan(tmp_path / "checkpoint")
    assert res.verdict is Verdict.FINDINGS, res
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-052"]
    assert len(hits) == 1 and hits[0].severity is Severity.HIGH, res.findings
    assert "aggregate file" in hits[0].message


def test_orbax_aggregate_as_written_stays_clean(tmp_path: Path) -> None:
    """What Orbax's aggregate file holds: nested maps, placeholders, aggregated scalars; an absolute path as a
    nested key or as a placeholder's text is not what restoring opens, a binary key decodes to bytes, and the same
    map in a file of another name (Flax's ``flax_model.msgpack``) is no Orbax checkpoint."""
    tree = {
        "params": {
            "Dense_0": {"kernel": "PLACEHOLDER://params.Dense_0.kernel", "/bias": "PLACEHOLDER:///abs"}
        },
        "step": 7,
        b"/raw": 1,
    }
    _write(tmp_path, _aggregate(tree))
    assert _scan(tmp_path / "checkpoint").verdict is Verdict.CLEAN
    (tmp_path / "flax_model.msgpack").write_bytes(_pack({_OTHER: 1}))
    assert _scan(tmp_path / "flax_model.msgpack").verdict is Verdict.CLEAN


def test_orbax_metadata_as_written_stays_clean(tmp_path: Path) -> None:
    """What Orbax writes: dict and sequence keys, dotted Flax names, a leaf under an empty-string key, a name
    with ``..`` (tensorstore's file driver refuses it), and a label that is not the keys (only the keys count)."""
    metadata = _metadata(
        (("params", 2), ("Dense_0", 2), ("kernel", 2)),
        (("opt_state", 2), (0, 1), ("mu", 2), ("bias", 2)),
        (("step", 2),),
        (("", 2), ("x", 2)),
        (("../other", 2), ("w", 2)),
    )
    obj = json.loads(metadata)
    obj["tree_metadata"]["('/not', 'a', 'key')"] = {
        "key_metadata": [{"key": "w2", "key_type": 2}],
        "value_metadata": {"value_type": "jax.Array", "skip_deserialize": False},
    }
    _write(tmp_path, _folder(_rich(json.dumps(obj).encode(), "params", "opt_state", "step", "")))
    for name in ("_METADATA", "_CHECKPOINT_METADATA"):
        res = _scan(tmp_path / name)
        assert res.verdict is Verdict.CLEAN, res


def test_orbax_metadata_named_otherwise_is_not_orbax(tmp_path: Path) -> None:
    """Orbax opens ``_METADATA`` only; the same JSON under another name is no checkpoint metadata."""
    (tmp_path / "tree.json").write_bytes(_metadata(((_OTHER, 2),)))
    assert _scan(tmp_path / "tree.json").verdict is Verdict.CLEAN


_MAKE = """
import sys, numpy as np, orbax.checkpoint as ocp
root = sys.argv[1]
ocp.PyTreeCheckpointer(use_ocdbt=False).save(root + "/other", {"secret": np.array([42.0, 43.0])})
ocp.PyTreeCheckpointer(use_ocdbt=False).save(root + "/ckpt", {"w": np.zeros(2)})
ocp.PyTreeCheckpointer().save(root + "/ocdbt", {"params": {"w": np.ones((2, 2))}, "step": 3})
std = ocp.StandardCheckpointer()  # (asynchronous: wait for its commit before the process ends)
std.save(root + "/std", {"params": {"w": np.ones(3)}})
std.wait_until_finished()
"""

_RESTORE = """
import sys, orbax.checkpoint as ocp
print(repr(ocp.PyTreeCheckpointer().restore(sys.argv[1])))
"""

_RESTORE_RICH = """
import sys, orbax.checkpoint as ocp
from orbax.checkpoint._src.metadata.pytree_metadata_options import PyTreeMetadataOptions
handler = ocp.PyTreeCheckpointHandler(pytree_metadata_options=PyTreeMetadataOptions(support_rich_types=True))
print(repr(ocp.Checkpointer(handler).restore(sys.argv[1])))
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_orbax_restores_the_absolute_parameter(tmp_path: Path) -> None:
    """The real loader on the case (skipped without orbax-checkpoint): the checkpoint's ``_METADATA`` names the
    other checkpoint's array by its absolute path and ``restore`` returns that array's values."""
    pytest.importorskip("orbax.checkpoint")
    made = _run(_MAKE, str(tmp_path))
    assert made.returncode == 0, made.stderr[-2000:]
    other = str(tmp_path / "other" / "secret")
    (tmp_path / "ckpt" / "_METADATA").write_bytes(_metadata(((other, 2),)))
    assert _scan(tmp_path / "ckpt" / "_METADATA").verdict is Verdict.FINDINGS
    restored = _run(_RESTORE, str(tmp_path / "ckpt"))
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert "42." in restored.stdout, restored.stdout
    # the rich-types tree, read by a reader that opts into rich types
    (tmp_path / "ckpt" / "_METADATA").write_bytes(_rich(_metadata((("w", 2),)), other))
    assert _scan(tmp_path / "ckpt" / "_METADATA").verdict is Verdict.FINDINGS
    restored = _run(_RESTORE_RICH, str(tmp_path / "ckpt"))
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert "42." in restored.stdout, restored.stdout
    # the legacy aggregate file, in a folder without _METADATA
    (tmp_path / "ckpt" / "_METADATA").unlink()
    (tmp_path / "ckpt" / "checkpoint").write_bytes(_pack({other: "PLACEHOLDER://" + other}))
    assert _scan(tmp_path / "ckpt" / "checkpoint").verdict is Verdict.FINDINGS
    restored = _run(_RESTORE, str(tmp_path / "ckpt"))
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert "42." in restored.stdout, restored.stdout
    # and the checkpoints Orbax writes keep their metadata clean
    for name in ("other", "ocdbt", "std"):
        for meta in ("_METADATA", "_CHECKPOINT_METADATA"):
            res = _scan(tmp_path / name / meta)
            assert res.verdict is Verdict.CLEAN, res


_FLAX = """
import sys, numpy as np
from flax import serialization
tree = {"params": {"Dense_0": {"kernel": np.ones((3, 2), np.float32), "bias": np.zeros(2, np.float32)}},
        "c": np.array([1 + 2j, 3j]), "z": 1 + 2j, "s": np.float32(3.0), "step": 7, "name": "run"}
open(sys.argv[1] + "/flax_model.msgpack", "wb").write(serialization.to_bytes(tree))
open(sys.argv[1] + "/checkpoint", "wb").write(serialization.msgpack_serialize({"params": tree["params"]}))
"""


def test_flax_msgpack_files_stay_clean(tmp_path: Path) -> None:
    """Flax's own MessagePack (arrays, complex numbers and NumPy scalars as ext types), also under Orbax's aggregate
    file name: clean (skipped without flax)."""
    pytest.importorskip("flax")
    made = _run(_FLAX, str(tmp_path))
    assert made.returncode == 0, made.stderr[-2000:]
    for name in ("flax_model.msgpack", "checkpoint"):
        res = _scan(tmp_path / name)
        assert res.verdict is Verdict.CLEAN, res


# ------------------------------------------------------------------ OCDBT stores: the binary half of a checkpoint


def _manifest(body: bytes, *, zstd: bool = True, version: int = 0) -> bytes:
    """An OCDBT manifest as tensorstore encodes one (kvstore/ocdbt/format/codec_util.cc): magic, u64 LE length,
    varint version and compression, the (zstd) body, and the CRC-32C of all that."""
    import zstandard

    from loopwarden.checks.models.ocdbt import crc32c

    payload = bytes([version, 1 if zstd else 0]) + (
        zstandard.ZstdCompressor().compress(body) if zstd else body
    )
    head = b"\x0c\xdb\x3a\x2a" + (12 + len(payload) + 4).to_bytes(8, "little")
    return head + payload + crc32c(head + payload).to_bytes(4, "little")


_NODE = b"\x0c\xdb\x20\xde" + bytes(range(7, 200))  # a B+tree node's magic, then bytes of no format
_CHUNK = bytes(range(7, 250)) * 3  # an array chunk of no format


def _store() -> dict[str, bytes]:
    """An Orbax OCDBT checkpoint's binary files: the top manifest and a per-process store, each with data files."""
    body = b"\x01\x00config, data file table d/0a1b and version tree"
    return {
        "manifest.ocdbt": _manifest(body),
        "d/0a1b2c3d4e5f60718293a4b5c6d7e8f9": _NODE,
        "ocdbt.process_0/manifest.ocdbt": _manifest(body, zstd=False),
        "ocdbt.process_0/d/11223344556677889900aabbccddeeff": _CHUNK,
        "ocdbt.process_0/d/ffeeddccbbaa00998877665544332211": _NODE + _CHUNK,
        "_METADATA": _metadata((("params", 2), ("w", 2)), use_ocdbt=True),
        "_CHECKPOINT_METADATA": _CHECKPOINT_METADATA,
    }


def _verdicts(root: Path) -> dict[str, Verdict]:
    report = scan_paths([str(root)], jobs=1)
    return {Path(t.path).relative_to(root).as_posix(): t.verdict for t in report.targets}


def test_ocdbt_store_is_clean(tmp_path: Path) -> None:
    """Before this round every manifest and data file of an Orbax checkpoint was ``unverified`` (unknown binary
    format), so no real Orbax or Flax-through-Orbax checkpoint scanned clean. A manifest tensorstore accepts (length,
    version, compression, zstd frame, CRC-32C) is now read, and the data files of its store are its data."""
    _write(tmp_path, _store())
    verdicts = _verdicts(tmp_path)
    assert set(verdicts.values()) == {Verdict.CLEAN}, verdicts


@pytest.mark.parametrize(
    "damage",
    ["crc", "length", "version", "compression", "zstd_tail", "no_manifest"],
)
def test_ocdbt_store_that_tensorstore_refuses_stays_unverified(tmp_path: Path, damage: str) -> None:
    """A manifest tensorstore refuses names nothing: it and the data files stay ``unverified``."""
    files = _store()
    del files["ocdbt.process_0/manifest.ocdbt"]
    good = files["manifest.ocdbt"]
    if damage == "crc":
        files["manifest.ocdbt"] = good[:-1] + bytes([good[-1] ^ 1])
    elif damage == "length":
        files["manifest.ocdbt"] = good + b"\x00"
    elif damage == "version":
        files["manifest.ocdbt"] = _manifest(b"body", version=1)
    elif damage == "compression":
        bad = _manifest(b"body")
        files["manifest.ocdbt"] = _manifest(b"body")[:13] + b"\x02" + bad[14:]
    elif damage == "zstd_tail":
        import zstandard

        from loopwarden.checks.models.ocdbt import crc32c

        payload = b"\x00\x01" + zstandard.ZstdCompressor().compress(b"body") + b"extra"
        head = b"\x0c\xdb\x3a\x2a" + (12 + len(payload) + 4).to_bytes(8, "little")
        files["manifest.ocdbt"] = head + payload + crc32c(head + payload).to_bytes(4, "little")
    else:
        del files["manifest.ocdbt"]
    _write(tmp_path, files)
    verdicts = _verdicts(tmp_path)
    assert verdicts["ocdbt.process_0/d/11223344556677889900aabbccddeeff"] is Verdict.UNVERIFIED, verdicts
    if damage != "no_manifest":
        assert verdicts["manifest.ocdbt"] is Verdict.UNVERIFIED, verdicts


def test_ocdbt_data_file_with_a_payload_is_still_reported(tmp_path: Path) -> None:
    """Being a manifest's data clears only bytes of no format: a pickle that a loader would run from the first
    byte, or a zip at the end, keeps the data file reported."""
    files = _store()
    files["d/0a1b2c3d4e5f60718293a4b5c6d7e8f9"] = b"cos\nsystem\n(S'id'\ntR."
    files["ocdbt.process_0/d/11223344556677889900aabbccddeeff"] = _CHUNK + _zip_bytes()
    _write(tmp_path, files)
    verdicts = _verdicts(tmp_path)
    assert verdicts["d/0a1b2c3d4e5f60718293a4b5c6d7e8f9"] is Verdict.FINDINGS, verdicts
    assert verdicts["ocdbt.process_0/d/11223344556677889900aabbccddeeff"] is not Verdict.CLEAN, verdicts
    assert verdicts["manifest.ocdbt"] is Verdict.CLEAN, verdicts


def _zip_bytes() -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr(zipfile.ZipInfo("data.pkl", (1980, 1, 1, 0, 0, 0)), b"cos\nsystem\n(S'id'\ntR.")
    return out.getvalue()


_MAKE_STORES = """
import sys, numpy as np, orbax.checkpoint as ocp
root = sys.argv[1]
tree = {"params": {"dense": {"kernel": np.ones((4, 3), np.float32), "bias": np.zeros(3, np.float32)}}, "step": 3}
ocp.PyTreeCheckpointer().save(root + "/pytree", tree)
std = ocp.StandardCheckpointer()
std.save(root + "/std", tree)
std.wait_until_finished()
with ocp.CheckpointManager(root + "/mgr") as mgr:
    mgr.save(1, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave({"a": 1})))
    mgr.wait_until_finished()
"""


def test_real_orbax_checkpoints_are_clean(tmp_path: Path) -> None:
    """Checkpoints written by orbax-checkpoint (PyTree, Standard and a CheckpointManager step, all OCDBT): every
    file is clean (skipped without orbax-checkpoint)."""
    pytest.importorskip("orbax.checkpoint")
    made = _run(_MAKE_STORES, str(tmp_path))
    assert made.returncode == 0, made.stderr[-2000:]
    verdicts = _verdicts(tmp_path)
    assert any(name.endswith("manifest.ocdbt") for name in verdicts), verdicts
    assert set(verdicts.values()) == {Verdict.CLEAN}, verdicts


def _zarr_folder() -> dict[str, bytes]:
    """Arrays of an Orbax checkpoint written without OCDBT: zarr v2 (``.zarray``, keys ``0.0`` or ``0/0``) and v3
    (``zarr.json``, default keys ``c/0/0`` and v2 keys), a scalar, and a grid of several chunks."""
    v2 = {"zarr_format": 2, "dtype": "<f4", "compressor": {"id": "zstd", "level": 1}, "order": "C"}
    v3 = {
        "zarr_format": 3,
        "node_type": "array",
        "data_type": "float32",
        "chunk_key_encoding": {"name": "default"},
    }
    return {
        "_METADATA": _metadata((("params", 2), ("k", 2)), (("step", 2),)),
        "params.k/.zarray": json.dumps({**v2, "shape": [40, 3], "chunks": [16, 3]}).encode(),
        "params.k/0.0": _CHUNK,
        "params.k/1.0": _CHUNK,
        "params.k/2.0": _CHUNK,
        "slash/.zarray": json.dumps(
            {**v2, "shape": [4, 4], "chunks": [4, 4], "dimension_separator": "/"}
        ).encode(),
        "slash/0/0": _CHUNK,
        "step/.zarray": json.dumps({**v2, "shape": [], "chunks": []}).encode(),
        "step/0": _CHUNK[:9],
        "v3/zarr.json": json.dumps(
            {
                **v3,
                "shape": [5, 2],
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [5, 2]}},
            }
        ).encode(),
        "v3/c/0/0": _CHUNK,
        "v3s/zarr.json": json.dumps(
            {**v3, "shape": [], "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": []}}}
        ).encode(),
        "v3s/c": _CHUNK,
        "v3v2/zarr.json": json.dumps(
            {
                **v3,
                "shape": [3],
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [3]}},
                "chunk_key_encoding": {"name": "v2", "configuration": {"separator": "."}},
            }
        ).encode(),
        "v3v2/0": _CHUNK,
    }


def test_zarr_arrays_are_clean(tmp_path: Path) -> None:
    """Before this round each chunk file was ``unverified`` (unknown binary format); the array's metadata beside
    them names them now, so they are its data."""
    _write(tmp_path, _zarr_folder())
    verdicts = _verdicts(tmp_path)
    assert set(verdicts.values()) == {Verdict.CLEAN}, verdicts


def test_zarr_files_no_metadata_names_stay_unverified(tmp_path: Path) -> None:
    """A file outside the grid, under another key encoding, or beside no metadata is named by nothing."""
    files = _zarr_folder()
    files["params.k/3.0"] = _CHUNK  # (40 rows in chunks of 16: three chunks)
    files["v3/0.0"] = _CHUNK  # (default encoding: c/0/0)
    files["loose/0.0"] = _CHUNK
    del files["slash/.zarray"]
    _write(tmp_path, files)
    verdicts = _verdicts(tmp_path)
    for name in ("params.k/3.0", "v3/0.0", "loose/0.0", "slash/0/0"):
        assert verdicts[name] is Verdict.UNVERIFIED, (name, verdicts)
    assert verdicts["params.k/2.0"] is Verdict.CLEAN, verdicts


_MAKE_ZARR = """
import sys, numpy as np, orbax.checkpoint as ocp
root = sys.argv[1]
tree = {"params": {"k": np.ones((40, 3), np.float32), "b": np.zeros(3)}, "step": np.int32(3)}
ocp.PyTreeCheckpointer(use_ocdbt=False).save(root + "/v2", tree)
ocp.PyTreeCheckpointer(use_ocdbt=False, use_zarr3=True).save(root + "/v3", tree)
"""


def test_real_orbax_zarr_checkpoints_are_clean(tmp_path: Path) -> None:
    """Checkpoints orbax-checkpoint writes without OCDBT (zarr v2 and v3): every file is clean (skipped without
    orbax-checkpoint)."""
    pytest.importorskip("orbax.checkpoint")
    made = _run(_MAKE_ZARR, str(tmp_path))
    assert made.returncode == 0, made.stderr[-2000:]
    verdicts = _verdicts(tmp_path)
    assert set(verdicts.values()) == {Verdict.CLEAN}, verdicts


@pytest.mark.parametrize("case", sorted(_gda_cases()))
def test_flax_multihost_placeholder_outside_the_checkpoint_is_reported(tmp_path: Path, case: str) -> None:
    """Before this round a Flax MessagePack checkpoint was checked for structure only and every case scanned
    ``clean``. flax 0.12.8 (``restore_checkpoint(..., gda_manager=GlobalAsyncCheckpointManager())`` on two CPU
    processes) restored another checkpoint's shards through such a placeholder."""
    files = _gda_cases()[case]
    _write(tmp_path, files)
    res = _scan(tmp_path / next(iter(files)))
    assert res.verdict is Verdict.FINDINGS, res
    hits = [f for f in res.findings if f.rule_id == "LW-MODEL-052"]
    assert len(hits) == 1 and hits[0].severity is Severity.HIGH, res.findings
    assert "GDAPlaceholder" in hits[0].message


def test_flax_multihost_placeholders_as_written_stay_clean(tmp_path: Path) -> None:
    """What Flax writes (``//GDAPlaceholder:`` and the key path joined with ``/``), a binary value (it decodes to
    bytes, no placeholder) and prose that mentions the marker stay clean."""
    ph = "//GDAPlaceholder:"
    tree = {
        "params": {"w": ph + "params/w", "b": (ph + "/abs").encode()},
        "note": "see //GDAPlaceholder: docs /x",
    }
    (tmp_path / "checkpoint_1").write_bytes(_pack(tree))
    assert _scan(tmp_path / "checkpoint_1").verdict is Verdict.CLEAN


_MULTIHOST = """
import sys
pid, root, mode, port = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(coordinator_address="127.0.0.1:" + port, num_processes=2, process_id=pid)
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from flax import config
config.update("flax_use_orbax_checkpointing", False)
from flax.training import checkpoints
from jax.experimental.array_serialization.serialization import GlobalAsyncCheckpointManager
sharding = NamedSharding(Mesh(np.array(jax.devices()), ("x",)), PartitionSpec("x"))
def arr(values):
    values = np.asarray(values, np.float32)
    return jax.make_array_from_callback(values.shape, sharding, lambda idx: values[idx])
gm = GlobalAsyncCheckpointManager()
if mode == "save":
    checkpoints.save_checkpoint_multiprocess(root + "/other", {"w": arr([42.0, 43.0])}, step=1, gda_manager=gm)
    gm.wait_until_finished()
    checkpoints.save_checkpoint_multiprocess(root + "/ck", {"w": arr([0.0, 0.0])}, step=1, gda_manager=gm)
    gm.wait_until_finished()
else:
    restored = checkpoints.restore_checkpoint(root + "/ck", target={"w": arr([0.0, 0.0])}, gda_manager=gm)
    print("restored", np.asarray(restored["w"].addressable_shards[0].data).tolist())
"""


def _two_processes(root: Path, mode: str) -> list[str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MULTIHOST, str(pid), str(root), mode, port],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for pid in (0, 1)
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        outs.append(out)
    return outs


def test_flax_restores_the_absolute_placeholder(tmp_path: Path) -> None:
    """The real loader on the case (skipped without flax): two CPU processes save a sharded array in two legacy
    checkpoints; the first checkpoint's placeholder is pointed at the other's array folder by its absolute path,
    and restoring the first returns the other's values."""
    pytest.importorskip("flax")
    _two_processes(tmp_path, "save")
    main = tmp_path / "ck" / "checkpoint_1"
    other = tmp_path / "other" / "checkpoint_1_gda" / "w"
    main.write_bytes(_pack({"w": "//GDAPlaceholder:" + str(other)}))
    assert _scan(main).verdict is Verdict.FINDINGS
    outs = _two_processes(tmp_path, "restore")
    assert any("42.0" in o for o in outs) and any("43.0" in o for o in outs), outs
    # and what Flax wrote for the other checkpoint (its placeholder, its zarr chunks) is clean
    verdicts = _verdicts(tmp_path / "other")
    assert set(verdicts.values()) == {Verdict.CLEAN}, verdicts


def test_zarr_metadata_bounds_and_shapes() -> None:
    """The chunk keys tensorstore reads, and nothing for metadata of another shape or a grid over the bound."""
    from loopwarden.checks.models.ocdbt import zarr_chunk_references

    def names(obj: object, base: str = ".zarray") -> list[str]:
        return [
            Path(p).relative_to(Path("/m").resolve()).as_posix()
            for p in zarr_chunk_references(obj, "/m/x", base)
        ]

    v2 = {"zarr_format": 2}
    assert names({**v2, "shape": [3, 5], "chunks": [2, 5]}) == ["0.0", "1.0"]
    assert names({**v2, "shape": [0], "chunks": [4]}) == []
    assert names({**v2, "shape": [2], "chunks": [0]}) == []
    assert names({**v2, "shape": [2], "chunks": [1], "dimension_separator": "\\\\"}) == []
    assert names({**v2, "shape": [10**6], "chunks": [1]}) == []  # over 100,000 chunks: none named
    assert names({**v2, "shape": [2.0], "chunks": [1]}) == []
    v3 = {"zarr_format": 3, "node_type": "array", "shape": [2]}
    grid = {"name": "regular", "configuration": {"chunk_shape": [1]}}
    assert names({**v3, "chunk_grid": grid, "chunk_key_encoding": {"name": "default"}}, "zarr.json") == [
        "c/0",
        "c/1",
    ]
    dotted = {"name": "default", "configuration": {"separator": "."}}
    assert names({**v3, "chunk_grid": grid, "chunk_key_encoding": dotted}, "zarr.json") == ["c.0", "c.1"]
    assert (
        names({**v3, "chunk_grid": {"name": "rectilinear"}, "chunk_key_encoding": dotted}, "zarr.json") == []
    )
    assert names({**v3, "node_type": "group", "chunk_grid": grid}, "zarr.json") == []
