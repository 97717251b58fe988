"""Croissant 1.1 export: structure against the published context, PROV-O provenance, and mlcroissant
validation (when installed: the ``test`` extra) including reading the records back through the record sets."""

from __future__ import annotations

import gzip
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from loopwarden.checks.data.croissant import CONFORMS_TO, to_croissant
from loopwarden.checks.data.manifest import Generator, ManifestOptions, build_manifest, write_manifest
from loopwarden.domain import Digest

MODEL = "sha256:" + "5e" * 32


def _data(root: Path) -> Path:
    d = root / "data"
    d.mkdir()
    (d / "chat.jsonl").write_text(
        "".join(json.dumps({"id": f"c{i}", "prompt": f"p{i}", "turn": i}) + "\n" for i in range(3))
    )
    (d / "rows.csv").write_text("id,text\nr0,hello\nr1,world\n")
    (d / "lines.txt").write_text("alpha\nbeta\n")
    (d / "arr.json").write_text(json.dumps([{"id": "j0", "score": 0.5}, {"id": "j1", "score": 1.5}]))
    (d / "packed.jsonl.gz").write_bytes(gzip.compress(b'{"id": "z0"}\n'))
    return d


def _export(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    data = _data(tmp_path)
    gen = Generator(
        model=Digest.parse(MODEL), pipeline="self-instruct", pipeline_version="3.2", commit="0a1b2c", seed=11
    )
    opts = ManifestOptions(
        id_field="id", sources=("https://example.org/seed-corpus",), license="CC-BY-4.0", generator=gen
    )
    out = data / "croissant.json"  # beside the files, as published datasets ship it
    write_manifest(
        build_manifest(data, opts), tmp_path / "m.json", croissant=out, dataset_name="synthetic-chat"
    )
    return out, json.loads(out.read_text())


# The Croissant 1.1 context terms this export relies on (spec section "JSON-LD context").
REQUIRED_CONTEXT = {
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "dct": "http://purl.org/dc/terms/",
    "conformsTo": "dct:conformsTo",
    "recordSet": "cr:recordSet",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "source": "cr:source",
    "extract": "cr:extract",
    "column": "cr:column",
    "jsonPath": "cr:jsonPath",
    "fileProperty": "cr:fileProperty",
    "prov": "http://www.w3.org/ns/prov#",
}


def test_structure_against_the_published_context(tmp_path: Path) -> None:
    _, doc = _export(tmp_path)
    for key, value in REQUIRED_CONTEXT.items():
        assert doc["@context"][key] == value, key
    assert doc["@context"]["dataType"] == {"@id": "cr:dataType", "@type": "@vocab"}
    assert doc["@type"] == "sc:Dataset"
    assert doc["conformsTo"] == CONFORMS_TO == "http://mlcommons.org/croissant/1.1"
    assert doc["name"] == "synthetic-chat"
    assert isinstance(doc["description"], str)
    assert doc["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    files = {f["@id"]: f for f in doc["distribution"]}
    for f in files.values():
        assert f["@type"] == "cr:FileObject"
        assert re.fullmatch(r"[0-9a-f]{64}", f["sha256"])
        assert not f["contentUrl"].startswith("/")
        assert isinstance(f["encodingFormat"], str)
    enc = {f["contentUrl"]: f["encodingFormat"] for f in files.values()}
    assert enc["chat.jsonl"] == "application/jsonlines"
    assert enc["rows.csv"] == "text/csv"
    assert enc["packed.jsonl.gz"] == "application/gzip"
    for rs in doc["recordSet"]:
        assert rs["@type"] == "cr:RecordSet"
        for fld in rs["field"]:
            assert fld["@type"] == "cr:Field"
            assert fld["dataType"].startswith("sc:")
            assert fld["source"]["fileObject"]["@id"] in files
    assert "packed.jsonl.gz/records" not in {rs["@id"] for rs in doc["recordSet"]}


def test_prov_o_provenance(tmp_path: Path) -> None:
    _, doc = _export(tmp_path)
    assert doc["prov:wasDerivedFrom"] == [{"@id": "https://example.org/seed-corpus"}]
    agent = doc["prov:wasAttributedTo"]
    assert agent["@type"] == "prov:SoftwareAgent"
    assert agent["@id"] == "urn:sha256:" + "5e" * 32
    activity = doc["prov:wasGeneratedBy"]
    assert activity["@type"] == "prov:Activity"
    assert activity["prov:wasAssociatedWith"]["name"] == "self-instruct"
    assert activity["prov:wasAssociatedWith"]["version"] == "3.2"
    assert activity["prov:wasAssociatedWith"]["identifier"] == "commit:0a1b2c"
    assert {"@id": agent["@id"]} in activity["prov:used"]
    assert activity["additionalProperty"]["value"] == 11


def test_without_a_generator_there_is_no_generation_claim(tmp_path: Path) -> None:
    data = _data(tmp_path)
    doc = to_croissant(build_manifest(data, ManifestOptions()).document, name="plain")
    assert not {"prov:wasGeneratedBy", "prov:wasAttributedTo", "prov:wasDerivedFrom", "license"} & doc.keys()


def test_export_is_deterministic(tmp_path: Path) -> None:
    data = _data(tmp_path)
    built = build_manifest(data, ManifestOptions(id_field="id"))
    a = json.dumps(to_croissant(built.document, name="x"), sort_keys=True)
    b = json.dumps(
        to_croissant(build_manifest(data, ManifestOptions(id_field="id")).document, name="x"), sort_keys=True
    )
    assert a == b


def test_mlcroissant_validates_and_reads_the_records_back(tmp_path: Path) -> None:
    mlc = pytest.importorskip("mlcroissant")
    logging.getLogger("absl").setLevel(logging.ERROR)
    path, _ = _export(tmp_path)
    ds = mlc.Dataset(jsonld=str(path))  # raises mlc.ValidationError on any error
    assert not ds.metadata.ctx.issues.errors
    extra = ds.metadata.to_json()
    assert extra["prov:wasDerivedFrom"] == {"@id": "https://example.org/seed-corpus"}

    def rows(rs: str) -> list[dict[str, Any]]:
        out = []
        for rec in ds.records(record_set=rs):
            out.append(
                {k.rsplit("/", 1)[1]: v.decode() if isinstance(v, bytes) else v for k, v in rec.items()}
            )
        return out

    assert rows("chat.jsonl/records") == [{"id": f"c{i}", "prompt": f"p{i}", "turn": i} for i in range(3)]
    assert rows("rows.csv/records") == [{"id": "r0", "text": "hello"}, {"id": "r1", "text": "world"}]
    assert rows("lines.txt/records") == [{"line": "alpha"}, {"line": "beta"}]
    assert rows("arr.json/records") == [{"id": "j0", "score": 0.5}, {"id": "j1", "score": 1.5}]
