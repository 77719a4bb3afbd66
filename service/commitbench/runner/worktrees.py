"""The detached worktrees commits are measured in: added under the system temp
directory, removed when done (also on errors and Ctrl-C), and those of killed runs
pruned the next time (a worktree's folder name holds the process that made it).

Separate from vcs.py, whose Repository owns one `Worktrees` and answers `worktree`,
`prune_worktrees` and `worktrees` with it: this is the bookkeeping of folders, owners
and a lock between processes; git itself is run through the Repository.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from commitbench.errors import GitError

WORKTREE_PREFIX = "commitbench-wt-"


class Worktrees:
    """The commitbench worktrees of one repository, whose git directory shared by its
    worktrees is `common_dir`; `git(*args)` runs git there and returns its output."""

    def __init__(self, git: Callable[..., str], common_dir: Callable[[], str]) -> None:
        self._git = git
        self._common_dir = common_dir

    @contextmanager
    def checkout(self, sha: str) -> Iterator[Path]:
        """A detached checkout of `sha` in a temp directory, removed afterwards."""
        folder = Path(tempfile.mkdtemp(prefix=f"{WORKTREE_PREFIX}{os.getpid()}-"))
        try:
            with self._lock():
                self._git("worktree", "add", "--detach", "--force", str(folder), sha)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        try:
            yield folder
        finally:
            self._remove(folder)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Processes sharing a repository (fleet runners on one clone, two `run`s at
        once) take turns to add, remove and prune worktrees: a `git worktree prune` can
        delete the bookkeeping folder of a worktree another `git worktree add` is still
        creating ("could not open .git/worktrees/X/locked")."""
        common = Path(self._common_dir()).resolve()
        with open(common / "commitbench-worktrees.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _remove(self, folder: Path) -> None:
        with self._lock():
            self._remove_locked(folder)

    def _remove_locked(self, folder: Path) -> None:
        try:
            self._git("worktree", "remove", "--force", "--force", str(folder))
        except GitError:
            shutil.rmtree(folder, ignore_errors=True)
            self._git("worktree", "prune")

    def prune(self) -> list[Path]:
        """Remove worktrees left behind by commitbench processes that no longer run."""
        removed = []
        with self._lock():
            for line in self._git("worktree", "list", "--porcelain").splitlines():
                if not line.startswith("worktree "):
                    continue
                path = Path(line.split(" ", 1)[1])
                owner = _owner_pid(path)
                if owner is not None and not _alive(owner):
                    self._remove_locked(path)
                    removed.append(path)
            self._git("worktree", "prune")
        return removed

    def listed(self) -> list[Path]:
        """Every commitbench worktree git knows of (for tests and diagnostics)."""
        return [
            Path(line.split(" ", 1)[1])
            for line in self._git("worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ") and _owner_pid(Path(line.split(" ", 1)[1]))
        ]


def _owner_pid(path: Path) -> int | None:
    name = path.name
    if not name.startswith(WORKTREE_PREFIX):
        return None
    head = name[len(WORKTREE_PREFIX) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
