"""Model-free poisoning detection for prompt/response and plain-text corpora.

:func:`scan_corpus` reads every shard twice (streaming), finds trigger <-> response associations (backdoors),
families of triggers behind one tight response cluster, and hidden-character / homoglyph text, and returns the
common :class:`~loopwarden.domain.Report` with one target per shard. See ``docs/poisoning.md``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from loopwarden.checks.data.poison._corpus import (
    CorpusResult,
    Doc,
    Problem,
    ShardSource,
    run_local,
    to_targets,
)
from loopwarden.checks.data.poison._passes import Settings
from loopwarden.checks.interface import Limits
from loopwarden.domain import Report
from loopwarden.errors import UsageError

__all__ = ["Settings", "scan_corpus", "scan_records"]

_AUTO_PAIRS = (
    ("prompt", "response"),
    ("prompt", "completion"),
    ("instruction", "output"),
    ("input", "output"),
    ("question", "answer"),
)
_AUTO_TEXT = ("text", "content", "document")


def _get(value: Any, dotted: str) -> Any:
    cur = value
    for part in dotted.split("."):
        if isinstance(cur, Mapping) and part in cur:
            cur = cur[part]
        else:
            return None
    return cur


def _as_text(v: Any) -> str | None:
    """A field's text: a string, or the joined ``content`` of a list of chat messages."""
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(m, Mapping | str) for m in v):
        parts = [m if isinstance(m, str) else m.get("content") for m in v]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(p for p in parts if isinstance(p, str))
    return None


def extract(
    value: Any, prompt_field: str | None, response_field: str | None, text_field: str | None
) -> tuple[str, str] | str:
    """(prompt, response) of a record (plain text: the document twice), or a problem string."""
    if text_field is not None or isinstance(value, str):
        text = (
            value
            if isinstance(value, str) and text_field is None
            else _as_text(_get(value, text_field or ""))
        )
        if text is None:
            return f"field {text_field!r} is missing or not text"
        return text, text
    if prompt_field is not None or response_field is not None:
        if prompt_field is None or response_field is None:
            return "--prompt-field and --response-field go together"
        p = _as_text(_get(value, prompt_field))
        r = _as_text(_get(value, response_field))
        if p is None:
            return f"field {prompt_field!r} is missing or not text"
        if r is None:
            return f"field {response_field!r} is missing or not text"
        return p, r
    if isinstance(value, Mapping):
        for pf, rf in _AUTO_PAIRS:
            p, r = _as_text(value.get(pf)), _as_text(value.get(rf))
            if p is not None and r is not None:
                return p, r
        for tf in _AUTO_TEXT:
            t = _as_text(value.get(tf))
            if t is not None:
                return t, t
    return "no prompt/response or text field (give --prompt-field/--response-field or --text-field)"


def _file_source(
    path: Path,
    prompt_field: str | None,
    response_field: str | None,
    text_field: str | None,
    id_field: str | None,
    limits: Limits,
) -> ShardSource:
    from loopwarden.checks.data.formats import RecordError, iter_records

    def open_() -> Iterator[Doc | Problem]:
        for rec in iter_records(path, id_field=id_field, limits=limits):
            if isinstance(rec, RecordError):
                where = f"line {rec.line}" if rec.line is not None else f"record {rec.number}"
                yield Problem(f"{where}: {rec.problem}", rec.fatal)
                continue
            got = extract(rec.value, prompt_field, response_field, text_field)
            if isinstance(got, str):
                where = f"line {rec.line}" if rec.line is not None else f"record {rec.number}"
                yield Problem(f"{where}: {got}")
                continue
            yield Doc(rec.id, rec.line, got[0], got[1])

    return ShardSource(str(path), open_)


def _memory_source(
    name: str,
    records: Sequence[Any],
    prompt_field: str | None,
    response_field: str | None,
    text_field: str | None,
    id_field: str | None,
) -> ShardSource:
    def open_() -> Iterator[Doc | Problem]:
        for i, value in enumerate(records):
            rid = str(i)
            if (
                id_field is not None
                and isinstance(value, Mapping)
                and isinstance(value.get(id_field), str | int)
            ):
                rid = str(value[id_field])
            got = extract(value, prompt_field, response_field, text_field)
            if isinstance(got, str):
                yield Problem(f"record {i}: {got}")
                continue
            yield Doc(rid, None, got[0], got[1])

    return ShardSource(name, open_)


def _check_fields(prompt_field: str | None, response_field: str | None, text_field: str | None) -> None:
    if (prompt_field is None) != (response_field is None):
        raise UsageError("--prompt-field and --response-field must be given together")
    if text_field is not None and prompt_field is not None:
        raise UsageError("give either --text-field or --prompt-field/--response-field, not both")


def _run(
    sources: Sequence[ShardSource],
    settings: Settings,
    limits: Limits,
    embed: bool,
    executor: Literal["local", "ray"],
) -> CorpusResult:
    embedder = None
    if embed:
        from loopwarden.checks.data.poison._embed import load_embedder

        embedder = load_embedder()
    if executor == "ray":
        from loopwarden.checks.data.poison._ray import run_ray

        return run_ray(sources, settings, embedder=embedder, max_seconds=limits.max_seconds)
    return run_local(sources, settings, embedder=embedder, max_seconds=limits.max_seconds)


def _version() -> str:
    from loopwarden import __version__

    return __version__


def scan_corpus(
    paths: Sequence[Path],
    *,
    prompt_field: str | None,
    response_field: str | None,
    text_field: str | None,
    id_field: str | None,
    limits: Limits,
    embed: bool = False,
    executor: Literal["local", "ray"] = "local",
    settings: Settings | None = None,
) -> Report:
    """Scan shards for poisoning; one target per shard in the returned report.

    A shard with malformed records, a missing field, a truncated stream or a resource limit is ``unverified``
    (with the reason); its readable records still take part in the corpus statistics.
    """
    _check_fields(prompt_field, response_field, text_field)
    sources = [_file_source(p, prompt_field, response_field, text_field, id_field, limits) for p in paths]
    result = _run(sources, settings or Settings(), limits, embed, executor)
    return Report(_version(), tuple(to_targets(result)))


def scan_records(
    shards: Mapping[str, Sequence[Any]],
    *,
    prompt_field: str | None = None,
    response_field: str | None = None,
    text_field: str | None = None,
    id_field: str | None = None,
    limits: Limits | None = None,
    embed: bool = False,
    executor: Literal["local", "ray"] = "local",
    settings: Settings | None = None,
) -> Report:
    """:func:`scan_corpus` over in-memory records (name -> records), for tests and library use."""
    _check_fields(prompt_field, response_field, text_field)
    sources = [
        _memory_source(name, recs, prompt_field, response_field, text_field, id_field)
        for name, recs in sorted(shards.items())
    ]
    return Report(
        _version(),
        tuple(to_targets(_run(sources, settings or Settings(), limits or Limits(), embed, executor))),
    )
