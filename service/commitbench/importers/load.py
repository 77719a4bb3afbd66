"""`commitbench import --format pytest-benchmark|asv`: read every file, validate every
value, then write all runs in one transaction (store/transfer.py: write_runs), so a bad
file leaves the database as it was and importing twice adds nothing (run ids are uuid5
of the file's content, commit and machine; a result already recorded stays).

Commits are keyed by repository, which neither tool records. `--repo PATH` (default: the
current directory) reads the commit from that clone: its repository name is the one
`commitbench run` records there (origin URL without credentials, else the path), and
parents, author, times and subject come from git. `--repository URL` names the
repository without a clone: the commit is recorded with the file's sha and commit time
only. Given both, the URL names the repository and the clone gives the details.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from commitbench.errors import CommitbenchError, ForeignFormatError, RevisionError
from commitbench.importers import asv, pytest_benchmark
from commitbench.importers.common import Commits, read_source
from commitbench.model.records import CommitInfo, RecordError, RunData
from commitbench.runner.vcs import Repository, public_url
from commitbench.store.sql import SqlStore
from commitbench.store.transfer import ImportSummary, write_runs

FORMATS = ("pytest-benchmark", "asv")


class CloneCommits:
    """Commits read from a clone (`--repo`), named as `commitbench run` names them."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.repo = Repository(path)
        self.name = name

    def commit(self, sha: str, committed_at: datetime | None) -> CommitInfo:
        try:
            info = self.repo.commit_info(sha)
        except RevisionError:
            raise CommitbenchError(
                f"commit {sha} is not in the repository at {self.repo.root} (fetch it, "
                "or pass --repository URL to import without a clone)"
            ) from None
        return dataclasses.replace(info, repository=self.name) if self.name else info


class NamedCommits:
    """Commits named by sha alone in a repository named by URL (`--repository`)."""

    def __init__(self, url: str) -> None:
        self.name = public_url(url)

    def commit(self, sha: str, committed_at: datetime | None) -> CommitInfo:
        try:
            return CommitInfo(repository=self.name, sha=sha.lower(), committed_at=committed_at)
        except RecordError as exc:
            raise CommitbenchError(f"{exc} (with --repository, give the full sha)") from None


def commits_from(repo: Path | None, repository: str | None) -> Commits:
    if repository is not None and not repository.strip():
        raise CommitbenchError("--repository is empty")
    if repo is None and repository is not None:
        return NamedCommits(repository)
    try:
        return CloneCommits(repo or Path("."), public_url(repository) if repository else None)
    except CommitbenchError as exc:
        if repo is not None or exc.exit_code != ForeignFormatError.exit_code:
            raise
        raise CommitbenchError(
            f"{exc}: pass --repo PATH (a clone holding the commits) or --repository URL"
        ) from None


def read_runs(
    fmt: str, path: Path, commits: Commits, *, commit: str | None = None
) -> list[tuple[str, RunData]]:
    """Every run `path` holds, read and validated; nothing is written."""
    if fmt == "pytest-benchmark":
        files = _json_files(path)
        if commit is not None and len(files) > 1:
            raise CommitbenchError(f"{path}: --commit names one commit; give one file")
        return [
            (str(file), pytest_benchmark.read(read_source(file), commits, commit=commit))
            for file in files
        ]
    if fmt == "asv":
        if commit is not None:
            raise CommitbenchError("--commit is for pytest-benchmark files (asv names each)")
        return asv.read(path, commits)
    raise CommitbenchError(f"--format {fmt!r} is not one of csv, {', '.join(FORMATS)}")


def _json_files(path: Path) -> list[Path]:
    """A file, or every `*.json` under a directory (pytest-benchmark's storage,
    `.benchmarks/<machine>/NNNN_name.json`), in order."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.rglob("*.json") if not p.is_dir())
    if not files:
        raise ForeignFormatError(f"{path}: no .json files")
    return files


def import_foreign(
    store: SqlStore,
    fmt: str,
    path: Path,
    commits: Commits,
    *,
    commit: str | None = None,
    progress: Callable[[Path], None] | None = None,
) -> ImportSummary:
    """Read and validate everything, then write it all in one transaction."""
    runs = read_runs(fmt, path, commits, commit=commit)
    return write_runs(store, runs, progress=progress, error=ForeignFormatError)
