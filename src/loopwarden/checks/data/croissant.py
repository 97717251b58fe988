"""Croissant 1.1 JSON-LD export of a dataset manifest, with PROV-O provenance.

Croissant (MLCommons) describes a dataset as a schema.org ``Dataset`` with a ``distribution`` of resources
(``cr:FileObject``: contentUrl, encodingFormat, sha256) and ``recordSet``s saying how records are extracted
from them. Provenance uses the W3C PROV-O terms Croissant 1.1 admits on the dataset:

* ``prov:wasDerivedFrom``: the upstream sources (``--source``);
* ``prov:wasGeneratedBy``: the generating activity, a ``prov:Activity`` naming the pipeline, its version and
  commit, the prompt template's digest and the seed;
* ``prov:wasAttributedTo``: the generating model, a ``prov:SoftwareAgent`` identified by its digest.

The export is deterministic (no dates) and names files by their relative URIs only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["CONFORMS_TO", "CONTEXT", "to_croissant"]

CONFORMS_TO: Final = "http://mlcommons.org/croissant/1.1"

CONTEXT: Final[dict[str, Any]] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "equivalentProperty": "cr:equivalentProperty",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "prov": "http://www.w3.org/ns/prov#",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
"""The Croissant 1.1 JSON-LD context, plus the ``prov`` prefix for PROV-O."""

_MIME: Final = {
    "jsonl": "application/jsonlines",
    "json": "application/json",
    "csv": "text/csv",
    "parquet": "application/x-parquet",
    "text": "text/plain",
}
_COMPRESSED_MIME: Final = {"gzip": "application/gzip", "zstd": "application/zstd"}
_DATATYPE: Final = {"str": "sc:Text", "int": "sc:Integer", "float": "sc:Float", "bool": "sc:Boolean"}


def _spdx_url(license_id: str) -> str:
    if " " in license_id or "(" in license_id:
        return license_id  # an SPDX expression: schema.org license also takes text
    return f"https://spdx.org/licenses/{license_id}.html"


def _id(uri: str) -> str:
    return uri.replace("/", "_").replace(" ", "_")


def _record_set(shard: Mapping[str, Any]) -> dict[str, Any] | None:
    """A RecordSet for a shard whose records we can describe: plain-text lines, or flat records whose
    top-level fields all had one scalar JSON type when the manifest was built."""
    uri = shard["uri"]
    fid = _id(uri)
    if shard.get("compression", "none") != "none":
        # Extracting from a compressed file needs a FileSet/containedIn chain in Croissant: not described.
        return None
    if shard["format"] == "text":
        return {
            "@type": "cr:RecordSet",
            "@id": f"{fid}/records",
            "name": f"{uri} records",
            "field": [
                {
                    "@type": "cr:Field",
                    "@id": f"{fid}/records/line",
                    "name": "line",
                    "dataType": "sc:Text",
                    "source": {"fileObject": {"@id": fid}, "extract": {"fileProperty": "lines"}},
                }
            ],
        }
    fields = shard.get("fields")
    if not isinstance(fields, dict) or not fields:
        return None
    out_fields = []
    for name, typ in sorted(fields.items()):
        if typ not in _DATATYPE:
            continue
        # Line- and row-oriented files expose fields as columns; a JSON array is addressed by JSONPath.
        extract = {"jsonPath": f"$[*].{name}"} if shard["format"] == "json" else {"column": name}
        out_fields.append(
            {
                "@type": "cr:Field",
                "@id": f"{fid}/records/{name}",
                "name": name,
                "dataType": _DATATYPE[typ],
                "source": {"fileObject": {"@id": fid}, "extract": extract},
            }
        )
    if not out_fields:
        return None
    return {"@type": "cr:RecordSet", "@id": f"{fid}/records", "name": f"{uri} records", "field": out_fields}


def _provenance(doc: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sources = doc.get("sources") or []
    if sources:
        out["prov:wasDerivedFrom"] = [{"@id": s} for s in sources]
    gen = doc.get("generator") or {}
    model = (gen.get("model") or {}).get("digest") or {}
    if model:
        algo, value = next(iter(sorted(model.items())))
        out["prov:wasAttributedTo"] = {
            "@type": "prov:SoftwareAgent",
            "@id": f"urn:{algo}:{value}",
            "name": f"generator model {algo}:{value}",
        }
    pipeline = gen.get("pipeline")
    if pipeline or model:
        activity: dict[str, Any] = {"@type": "prov:Activity"}
        if pipeline:
            activity["name"] = f"{pipeline['name']} {pipeline['version']}"
            activity["prov:wasAssociatedWith"] = {
                "@type": "prov:SoftwareAgent",
                "name": pipeline["name"],
                "version": pipeline["version"],
                "identifier": f"commit:{pipeline['commit']}",
            }
        else:
            activity["name"] = "synthesis"
        if model:
            activity["prov:used"] = [{"@id": out["prov:wasAttributedTo"]["@id"]}]
        template = ((gen.get("promptTemplate") or {}).get("digest") or {}).get("sha256")
        if template:
            activity.setdefault("prov:used", []).append(
                {"@id": f"urn:sha256:{template}", "name": "prompt template"}
            )
        if gen.get("seed") is not None:
            activity["additionalProperty"] = {"@type": "PropertyValue", "name": "seed", "value": gen["seed"]}
        out["prov:wasGeneratedBy"] = activity
    return out


def to_croissant(manifest: Mapping[str, Any], *, name: str, description: str | None = None) -> dict[str, Any]:
    """The Croissant 1.1 JSON-LD document of a manifest document (as built by ``checks.data.manifest``)."""
    distribution = []
    record_sets = []
    for shard in manifest["shards"]:
        uri = shard["uri"]
        comp = shard.get("compression", "none")
        distribution.append(
            {
                "@type": "cr:FileObject",
                "@id": _id(uri),
                "name": uri,
                "contentUrl": uri,
                "contentSize": f"{shard['size']} B",
                "encodingFormat": _COMPRESSED_MIME.get(
                    comp, _MIME.get(shard["format"], "application/octet-stream")
                ),
                "sha256": shard["sha256"],
            }
        )
        rs = _record_set(shard)
        if rs is not None:
            record_sets.append(rs)
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": name,
        "description": description
        or f"{len(manifest['shards'])} shard(s), {manifest.get('recordCount', 0)} records; "
        "described by a loopwarden dataset manifest",
        "conformsTo": CONFORMS_TO,
        "distribution": distribution,
    }
    if manifest.get("license"):
        doc["license"] = _spdx_url(manifest["license"])
    if record_sets:
        doc["recordSet"] = record_sets
    doc.update(_provenance(manifest))
    return doc
