"""Settings: command-line flags > environment (COMMITBENCH_*) > [tool.commitbench] in the
nearest pyproject.toml > built-in defaults."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commitbench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_RESULTS = Path(".commitbench/results")
ENV_PREFIX = "COMMITBENCH_"


@dataclass(frozen=True)
class Settings:
    db: str | None
    results: Path


def project_table(start: Path) -> Mapping[str, Any]:
    """[tool.commitbench] of the nearest pyproject.toml at or above `start`, or {}."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read {candidate}: {exc}") from None
            table = data.get("tool", {}).get("commitbench", {})
            if not isinstance(table, dict):
                raise ConfigError(f"{candidate}: [tool.commitbench] must be a table")
            return table
    return {}


def resolve(
    *,
    db: str | None = None,
    results: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    table = project_table(cwd)

    def pick(flag: Any, key: str) -> Any:
        if flag not in (None, ""):
            return flag
        from_env = env.get(ENV_PREFIX + key.upper())
        if from_env:
            return from_env
        return table.get(key)

    db_value = pick(db, "db")
    results_value = pick(results, "results") or DEFAULT_RESULTS
    return Settings(db=str(db_value) if db_value else None, results=Path(results_value))
