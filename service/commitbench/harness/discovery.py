"""Finding bench modules in a worktree, without importing them.

The runner calls `find_modules` in the orchestrating process (no import, so no torch);
the cases of each module are found inside the worker, which imports it
(`bench.benches_of`), or with `launcher.list_cases` from the runner side.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath


def module_names(paths: Iterable[str]) -> list[str]:
    """Dotted module names of the `.py` files among `paths` (POSIX, relative to the bench
    directory), sorted. Files and folders starting with `_` or `.` are skipped
    (`__init__.py`, helpers), so a bench package can keep shared code in `_common.py`."""
    found = []
    for path in paths:
        rel = PurePosixPath(path)
        if rel.suffix != ".py":
            continue
        parts = rel.with_suffix("").parts
        if any(part.startswith(("_", ".")) for part in parts):
            continue
        if parts and all(part.isidentifier() for part in parts):
            found.append(".".join(parts))
    return sorted(found)


def find_modules(root: Path, under: Sequence[str] = ("benches",)) -> list[str]:
    """Dotted names of the bench modules below `root/<under>` on disk (module_names)."""
    found = []
    for top in under:
        base = root / top
        if not base.is_dir():
            continue
        found += module_names(p.relative_to(root).as_posix() for p in base.rglob("*.py"))
    return sorted(found)
