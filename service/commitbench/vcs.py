"""Git behind a narrow interface (the only module that uses GitPython)."""

from __future__ import annotations

import re
from pathlib import Path

from commitbench.errors import CommitbenchError
from commitbench.records import CommitInfo

_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)


def _repo(path: Path):  # type: ignore[no-untyped-def]
    import git

    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise CommitbenchError(f"not a git repository: {path}") from None


def repository_id(path: Path) -> str:
    """The repository's name in the results: its origin URL without credentials, else
    its absolute path."""
    repo = _repo(path)
    try:
        url = repo.remotes.origin.url
    except (AttributeError, ValueError):
        return str(Path(repo.working_tree_dir or repo.git_dir).resolve())
    return _USERINFO.sub(r"\1", url)


def commit_info(path: Path, rev: str = "HEAD") -> CommitInfo:
    import git

    repo = _repo(path)
    try:
        commit = repo.commit(rev)
    except (git.BadName, ValueError):
        raise CommitbenchError(f"revision {rev!r} does not resolve to a commit") from None
    message = commit.message if isinstance(commit.message, str) else commit.message.decode()
    return CommitInfo(
        repository=repository_id(path),
        sha=commit.hexsha,
        parents=tuple(p.hexsha for p in commit.parents),
        author_name=commit.author.name,
        author_email=commit.author.email,
        authored_at=commit.authored_datetime,
        committed_at=commit.committed_datetime,
        subject=message.splitlines()[0] if message else "",
    )


def current_branch(path: Path) -> str | None:
    """The checked-out branch, or None on a detached HEAD."""
    repo = _repo(path)
    if repo.head.is_detached:
        return None
    return str(repo.active_branch.name)
