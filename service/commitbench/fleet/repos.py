"""The runner's local clones: one per repository under a cache directory.

A job names a repository by URL or path; the runner clones it once (without a checkout:
commits are measured in worktrees of the clone) and fetches when a job needs a commit
the clone lacks. Several runners on one host share the cache: clone and fetch happen
under an exclusive file lock per repository, worktrees need none (git locks its own
bookkeeping).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from commitbench.runner import vcs

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "commitbench" / "repos"


class RepoCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, source: str) -> Path:
        """A stable folder per source (credentials aside): readable name plus a hash."""
        source = vcs.public_url(source)
        stem = _UNSAFE.sub("-", source.rstrip("/").rsplit("/", 1)[-1]).strip("-.") or "repo"
        digest = hashlib.sha256(source.encode()).hexdigest()[:12]
        return self.root / f"{stem.removesuffix('.git')}-{digest}"

    def get(self, source: str, *shas: str) -> vcs.Repository:
        """The clone of `source`, holding `shas` (fetched if missing). Credentials in
        `source` are used for this call only (vcs.credential_env), never stored."""
        dest = self.path_for(source)
        with self._locked(dest):
            if not (dest / ".git").is_dir():
                return self._clone(source, dest, shas)
            repo = vcs.Repository(dest)
            repo.use_credentials(source)
            if not shas or not all(repo.has_commit(s) for s in shas):
                repo.fetch(*shas)
            return repo

    def _clone(self, source: str, dest: Path, shas: tuple[str, ...]) -> vcs.Repository:
        # Into a temp folder, then renamed: a runner killed mid-clone leaves no half
        # clone that looks finished.
        shutil.rmtree(dest, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=self.root))
        try:
            vcs.clone(source, tmp / "clone")
            (tmp / "clone").rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        repo = vcs.Repository(dest)
        repo.use_credentials(source)
        if shas and not all(repo.has_commit(s) for s in shas):
            repo.fetch(*shas)
        return repo

    @contextmanager
    def _locked(self, dest: Path) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(dest.with_name(dest.name + ".lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
