"""Finding bench modules in a worktree, without importing them.

The runner calls `find_modules` in the orchestrating process (no import, so no torch);
the cases of each module are found inside the worker, which imports it
(`bench.benches_of`), or with `launcher.list_cases` from the runner side.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def find_modules(root: Path, under: Sequence[str] = ("benches",)) -> list[str]:
    """Dotted names of the `.py` files below `root/<under>`, sorted.

    Files and folders starting with `_` or `.` are skipped (`__init__.py`, helpers),
    so a bench package can keep shared code in `_common.py`.
    """
    found = []
    for top in under:
        base = root / top
        if not base.is_dir():
            continue
        for path in base.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            if any(part.startswith(("_", ".")) for part in rel.parts):
                continue
            if all(part.isidentifier() for part in rel.parts):
                found.append(".".join(rel.parts))
    return sorted(found)
