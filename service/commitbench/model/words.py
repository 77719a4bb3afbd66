"""Wording shared by every message: counts with the right plural form."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 run`, `0 runs`, `2 runs`; `many` for a plural that is not noun + s."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"
