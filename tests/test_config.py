"""Settings precedence: flags > COMMITBENCH_* environment > [tool.commitbench] > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from commitbench import config
from commitbench.errors import ConfigError


def project(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pyproject.toml").write_text(body)
    inner = tmp_path / "sub" / "dir"
    inner.mkdir(parents=True)
    return inner


def test_defaults_without_anything(tmp_path: Path) -> None:
    s = config.resolve(env={}, cwd=tmp_path)
    assert s == config.Settings(db=None, results=Path(".commitbench/results"))


def test_pyproject_table_is_found_from_a_subdirectory(tmp_path: Path) -> None:
    cwd = project(tmp_path, '[tool.commitbench]\nresults = "bench-out"\ndb = "postgresql://h/x"\n')
    assert config.resolve(env={}, cwd=cwd) == config.Settings("postgresql://h/x", Path("bench-out"))


def test_environment_beats_pyproject_and_flags_beat_both(tmp_path: Path) -> None:
    cwd = project(tmp_path, '[tool.commitbench]\nresults = "from-toml"\n')
    env = {"COMMITBENCH_RESULTS": "from-env", "COMMITBENCH_DB": "postgresql://env/x"}
    assert config.resolve(env=env, cwd=cwd).results == Path("from-env")
    got = config.resolve(db="postgresql://flag/x", results="from-flag", env=env, cwd=cwd)
    assert got == config.Settings("postgresql://flag/x", Path("from-flag"))


def test_broken_pyproject_is_a_clear_error(tmp_path: Path) -> None:
    cwd = project(tmp_path, "[tool.commitbench\n")
    with pytest.raises(ConfigError, match=r"cannot read .*pyproject.toml"):
        config.resolve(env={}, cwd=cwd)
