"""XML model files (PMML ``.pmml``, OpenVINO IR ``.xml``, and any other XML a loader reads beside weights): the
document type declaration and XIncludes, which make an XML parser read other files or fetch URLs.

pypmml (PMML4S on the JVM, whose SAX parser resolves external entities and external DTDs) read a ``file://``
entity into the loaded model and fetched an ``http://`` one (confirmed with pypmml 1.5.8); nyoka (lxml 6, which
resolves internal entities only), sklearn-pmml-model (ElementTree/expat, which refuses external entities) and
OpenVINO's pugixml-based IR reader do not. The check is on the document, not on one loader: an external entity,
external parameter entity or external DTD (``SYSTEM``/``PUBLIC``) is reported (high), an XInclude element
(``xi:include``: lxml's ``xinclude()`` and other processors read its ``href``) medium, and internal entities that
expand past a bound (billion laughs; the parsers above cap expansion, others need not) medium. Only the prolog
holds a DTD, so only it is parsed; XIncludes are searched in the whole text. A document type without external
identifiers or entities (``<!DOCTYPE PMML>``) and plain PMML/OpenVINO files stay clean.
"""

from __future__ import annotations

import codecs
import re
from typing import Final

from loopwarden.checks.models import rules
from loopwarden.checks.models._base import Blob, ScanContext
from loopwarden.domain import Severity

__all__ = ["check_xml"]

_MAX_PROLOG: Final = 2 << 20
_MAX_EXPANSION: Final = 1_000_000
_CHUNK: Final = 1 << 20
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_NAME: Final = r"[^\s%&;<>\"'=/]+"
_LITERAL: Final = r"(?:\"[^\"]*\"|'[^']*')"
_ENTITY: Final = re.compile(
    rf"<!ENTITY\s+(%\s+)?({_NAME})\s+(?:(SYSTEM)\s*({_LITERAL})|(PUBLIC)\s*{_LITERAL}\s*({_LITERAL})|({_LITERAL}))",
    re.IGNORECASE,
)
_DOCTYPE_EXTERNAL: Final = re.compile(
    rf"(SYSTEM)\s*({_LITERAL})|(PUBLIC)\s*{_LITERAL}\s*({_LITERAL})", re.IGNORECASE
)
_REF: Final = re.compile(rf"[&%]({_NAME});")
_INCLUDE: Final = re.compile(r"<(?:[A-Za-z_][\w.\-]*:)?include[\s/>]")
_HTML_ROOTS: Final = frozenset({"html", "svg"})


def _encoding(head: bytes) -> tuple[str, int]:
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc, len(bom)
    return "utf-8", 0


def check_xml(blob: Blob, ctx: ScanContext) -> None:
    """Judge ``blob`` when it is XML text (its first character after a BOM and whitespace is ``<``)."""
    head = blob.head(4096)
    enc, skip = _encoding(head)
    start = head[skip:].decode(enc, "replace").lstrip(" \t\r\n")
    if not start.startswith("<"):
        return
    prolog, root = _prolog(blob, enc, skip, ctx)
    if prolog is None:
        return
    lower = blob.name.lower()
    # a web page or image in the repository names the public XHTML/SVG DTD, which no browser fetches; its
    # entities and XIncludes are still judged
    web = root.lower() in _HTML_ROOTS and lower.endswith((".html", ".htm", ".xhtml", ".svg"))
    if prolog:
        _judge_dtd(prolog, blob, ctx, external_dtd=not web)
    _find_xinclude(blob, enc, skip, ctx)


def _prolog(blob: Blob, enc: str, skip: int, ctx: ScanContext) -> tuple[str | None, str]:
    """The document type declaration ('' when there is none) and the root element's name; None when the prolog
    is larger than the bound (then unverified)."""
    decoder = codecs.getincrementaldecoder(enc)("replace")
    text = ""
    with blob.open() as f:
        f.read(skip)
        while True:
            chunk = f.read(_CHUNK)
            text += decoder.decode(chunk, final=not chunk)
            found = _scan_prolog(text)
            if found is not None:
                return found
            if not chunk:
                return "", ""
            if len(text) > _MAX_PROLOG:
                ctx.fail(blob.location, f"XML prolog (document type) larger than {_MAX_PROLOG} characters")
                return None, ""


def _scan_prolog(text: str) -> tuple[str, str] | None:
    """Walk the prolog: XML declaration, processing instructions, comments, whitespace, the DOCTYPE; return its
    text and the root element's name once the root starts, None when ``text`` ends first."""
    i, n = 0, len(text)
    doctype = ""
    while i < n:
        c = text[i]
        if c in " \t\r\n\ufeff":
            i += 1
        elif text.startswith("<?", i):
            j = text.find("?>", i + 2)
            if j < 0:
                return None
            i = j + 2
        elif text.startswith("<!--", i):
            j = text.find("-->", i + 4)
            if j < 0:
                return None
            i = j + 3
        elif text[i : i + 9].upper() == "<!DOCTYPE":
            end = _doctype_end(text, i + 9)
            if end is None:
                return None
            doctype += text[i:end]
            i = end
        elif c == "<":
            m = re.match(r"<([^\s/>]*)", text[i : i + 200])
            return doctype, (m.group(1).rsplit(":", 1)[-1] if m else "")
        else:
            return doctype, ""  # not well-formed XML: a parser stops here
    return None


def _doctype_end(text: str, i: int) -> int | None:
    """Where the DOCTYPE that starts before ``i`` ends (after its ``>``), skipping quoted literals, comments and
    the internal subset's declarations."""
    n = len(text)
    depth = 0
    while i < n:
        c = text[i]
        if c in "\"'":
            j = text.find(c, i + 1)
            if j < 0:
                return None
            i = j + 1
        elif text.startswith("<!--", i):
            j = text.find("-->", i + 4)
            if j < 0:
                return None
            i = j + 3
        elif c == "[":
            depth += 1
            i += 1
        elif c == "]":
            depth -= 1
            i += 1
        elif c == ">" and depth <= 0:
            return i + 1
        else:
            i += 1
    return None


def _judge_dtd(doctype: str, blob: Blob, ctx: ScanContext, *, external_dtd: bool) -> None:
    body = re.sub(r"<!--.*?-->", " ", doctype, flags=re.DOTALL)
    subset_at = body.find("[")
    head = body if subset_at < 0 else body[:subset_at]
    m = _DOCTYPE_EXTERNAL.search(head)
    if m is not None and external_dtd:
        uri = (m.group(2) or m.group(4) or "")[1:-1]
        ctx.add(
            rules.XmlExternal,
            f"the XML document type loads an external DTD {uri[:200]!r}",
            blob.location,
            uri=uri[:500],
        )
    values: dict[str, str] = {}
    for e in _ENTITY.finditer(body):
        kind = "parameter entity" if e.group(1) else "entity"
        literal = e.group(4) or e.group(6)
        if literal is not None:
            uri = literal[1:-1]
            ctx.add(
                rules.XmlExternal,
                f"the XML {kind} {e.group(2)!r} is read from {uri[:200]!r}",
                blob.location,
                entity=e.group(2),
                uri=uri[:500],
            )
        elif e.group(7) is not None:
            values[("%" if e.group(1) else "&") + e.group(2)] = e.group(7)[1:-1]
    if values:
        _judge_expansion(values, blob, ctx)


def _judge_expansion(values: dict[str, str], blob: Blob, ctx: ScanContext) -> None:
    sizes: dict[str, int] = {}
    busy: set[str] = set()

    def size(key: str, depth: int) -> int:
        if key in sizes:
            return sizes[key]
        if key in busy or depth > 64:
            return _MAX_EXPANSION + 1  # a cycle: parsers refuse it, or loop
        busy.add(key)
        text = values[key]
        total = len(_REF.sub("", text))
        for r in _REF.finditer(text):
            ref = r.group(0)[0] + r.group(1)
            if ref in values:
                total += size(ref, depth + 1)
            if total > _MAX_EXPANSION:
                break
        busy.discard(key)
        sizes[key] = min(total, _MAX_EXPANSION + 1)
        return sizes[key]

    worst = max(values, key=lambda k: size(k, 0))
    if size(worst, 0) > _MAX_EXPANSION:
        ctx.add_severity(
            rules.XmlExternal,
            Severity.MEDIUM,
            f"the XML entity {worst[1:]!r} expands past {_MAX_EXPANSION} characters (entity expansion bomb)",
            blob.location,
            entity=worst[1:],
        )


def _find_xinclude(blob: Blob, enc: str, skip: int, ctx: ScanContext) -> None:
    decoder = codecs.getincrementaldecoder(enc)("replace")
    tail = ""
    with blob.open() as f:
        f.read(skip)
        while True:
            chunk = f.read(_CHUNK)
            text = tail + decoder.decode(chunk, final=not chunk)
            m = _INCLUDE.search(text)
            if m is not None:
                element = m.group(0)[1:].strip(" \t\r\n/>")
                ctx.add_severity(
                    rules.XmlExternal,
                    Severity.MEDIUM,
                    f"XML element {element!r} (XInclude) reads another file or URL",
                    blob.location,
                    element=element,
                )
                return
            if not chunk:
                return
            tail = text[-256:]
            ctx.check_time()
