"""Text that must survive a medium: a store that cannot hold some characters, and a
console line or table cell that a line break would split.

- PostgreSQL `text` and `jsonb` cannot hold U+0000 (NUL), and a UTF-8 database cannot
  hold the surrogates U+D800-U+DFFF (which are not characters: Python makes them from
  undecodable bytes or `"\\ud800"` escapes). `unstorable` finds them, so a parameter
  holding one is refused where a case is discovered (harness/plan.py); `storable`
  escapes them in free text (an error message, a traceback), which is kept, not refused.
- `printable` escapes, for one line of output, the characters that end a line
  (str.splitlines' set), the other control characters (a terminal obeys ESC), the
  bidirectional overrides that make text read in another order than it is stored, and
  the surrogates a terminal cannot encode. Case ids go through it wherever they are
  printed (console lines, tables, Markdown, logs, error messages); JSON carries them
  as they are.

Escapes are those of a Python string literal (`\\n`, `\\x00`, `\\u2028`); backslashes are
left alone, so an id with none of these characters prints exactly as it is.
"""

from __future__ import annotations

import re
import unicodedata

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Bidirectional embeddings, overrides and isolates (Unicode TR9): "Trojan Source".
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def unstorable(text: str) -> str | None:
    """The first character of `text` that PostgreSQL cannot store, as `U+0000`; None
    when there is none."""
    found = _UNSTORABLE.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


def storable(text: str) -> str:
    """`text` with the characters PostgreSQL cannot store escapes (NUL as `\\x00`)."""
    return _UNSTORABLE.sub(lambda m: _escape(m.group()), text)


def _unprintable(ch: str) -> bool:
    return ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp")


def printable(text: str) -> str:
    """`text` on one line, with nothing a terminal would act on: see the module doc."""
    if text.isprintable() and not _BIDI.intersection(text):
        return text  # the usual case, at C speed
    return "".join(_escape(ch) if _unprintable(ch) else ch for ch in text)
