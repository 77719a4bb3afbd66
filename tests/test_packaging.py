"""pyproject.toml lists packages explicitly (migrations ship inside the package)."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(("commitbench", *p.parent.relative_to(ROOT / "service" / "commitbench").parts))
        for p in (ROOT / "service" / "commitbench").rglob("__init__.py")
    }
    found |= {"commitbench.migrations", "commitbench.migrations.versions", "commitbench.benches"}
    assert listed == found


def test_migrations_are_importable_as_package_data() -> None:
    from commitbench.store import migrate

    assert migrate.head_revision() == "0002"
