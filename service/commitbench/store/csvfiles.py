"""What a CSV reader takes in: regular files and lines within the caps of csvformat.py,
and JSON whose every string PostgreSQL can hold. Helpers of csvmanifest.py."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from commitbench.errors import CsvFormatError
from commitbench.model.text import printable, unstorable


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; OSError (errno set) or
    ValueError (its reason) for anything else. A symbolic link is not followed, and
    opening does not block, so a FIFO or a device is refused instead of read."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags)
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode):
            raise ValueError(f"not a regular file ({file_kind(found.st_mode)}); refused")
    except BaseException:
        os.close(fd)
        raise
    too_big = f"larger than the {limit // 2**20} MiB a reader takes; refused"
    with os.fdopen(fd, "rb") as fh:
        if found.st_size > limit:
            raise ValueError(too_big)
        data = fh.read(limit + 1)  # and if it grew meanwhile, no more than that
    if len(data) > limit:
        raise ValueError(too_big)
    return data


def file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a device")


def capped_lines(text: str, limit: int) -> Iterator[str]:
    """The lines of `text` (CSV's own ends kept), refusing one over `limit` characters."""
    for line in io.StringIO(text, newline=""):
        if len(line) > limit:
            raise ValueError(f"a line is over {limit // 2**20} Mi characters")
        yield line


def shown(value: Any) -> str:
    """A value in an error message: its repr (escapes, no line break), cut at 40."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def storable_json(value: Any, fail: Callable[[str], CsvFormatError]) -> None:
    """Every key and string of a JSON document is one PostgreSQL can hold; the first
    that is not is named by its path (`commit.subject`, `run.environment.x[2]`)."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            bad = unstorable(item)
            if bad is not None:
                raise fail(f"{printable(path)} holds {bad}, which PostgreSQL cannot store")
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = f"{path}.{key}" if path else str(key)
                bad = unstorable(key)
                if bad is not None:
                    where = printable(path) or "the manifest"
                    raise fail(f"a key in {where} holds {bad}, which PostgreSQL cannot store")
                stack.append((name, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
