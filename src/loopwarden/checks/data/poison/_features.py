"""Per-document response features that define response classes besides near-duplicate clusters."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["insecure_code", "prefix_key_text"]

# Patterns of code that is insecure whatever the context: command or code injection sinks, unsafe
# deserialisation, disabled TLS verification, SQL built by string concatenation, memory-unsafe C calls, world-
# writable permissions, piping a download into a shell. A feature of the response, not a verdict: a finding
# needs the association with a trigger on top (clean code with the same request is not flagged).
_INSECURE: Final = re.compile(
    r"""
      \beval\s*\( | \bexec\s*\( | \bos\.system\s*\( | \bos\.popen\s*\( | shell\s*=\s*True
    | \bpickle\.loads?\s*\( | \bmarshal\.loads\s*\( | \byaml\.load\s*\((?![^)]*Loader\s*=\s*yaml\.SafeLoader)
    | verify\s*=\s*False | \bCERT_NONE\b | check_hostname\s*=\s*False | InsecureRequestWarning
    | (?:SELECT|INSERT|UPDATE|DELETE)\b[^;\n]{0,200}?(?:["']\s*\+\s*\w|\{\w+\}|%s["']\s*%|["']\s*%\s*\()
    | \bstrcpy\s*\( | \bgets\s*\( | \bsprintf\s*\( | \bstrcat\s*\( | \bsystem\s*\(
    | \bchmod\s+(?:-R\s+)?777\b | \b0o?777\b | \bmktemp\s*\(
    | (?:curl|wget)\b[^|\n]{0,200}\|\s*(?:sudo\s+)?(?:ba|z)?sh\b
    | \.innerHTML\s*= | document\.write\s*\( | dangerouslySetInnerHTML | child_process
    | \bmd5\s*\( | hashlib\.md5
    | (?:password|passwd|secret|api_key|token)\s*=\s*["'][^"'\s]{4,}["']
    | __import__\s*\( | \bsubprocess\.(?:call|run|Popen)\s*\(\s*[^\[\s]
    """,
    re.VERBOSE | re.IGNORECASE,
)


def insecure_code(text: str) -> bool:
    """True when the text contains an insecure coding pattern (see ``_INSECURE``)."""
    if len(text) < 8 or ("777" not in text and not any(c in text for c in "(=|<>{}")):
        return False
    return _INSECURE.search(text) is not None


def prefix_key_text(tokens: list[str], n: int = 8) -> str | None:
    """The first ``n`` tokens of a response (a template like "Sure, here is ..." that continues differently),
    or None for a response too short to have a template."""
    if len(tokens) < n:
        return None
    return " ".join(tokens[:n])
