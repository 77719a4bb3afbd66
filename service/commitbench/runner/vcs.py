"""Git behind a narrow interface; the only module that uses GitPython.

Nothing here changes the user's working tree, index or HEAD: commits are measured in
detached worktrees under the system temp directory, removed when done (also on errors
and Ctrl-C), and leftovers of killed runs are pruned the next time.

Errors: a revision that names no commit, a path that is not a repository, are the
user's (CommitbenchError, RevisionError: exit 2); git failing otherwise (a corrupt
object store, no git binary, a worktree that cannot be added) is GitError (exit 3).
git tells the two apart for us: `rev-parse --verify --quiet` exits 1 and says nothing
when a revision does not resolve, and 128 with a message when the repository is broken.

The worktrees' bookkeeping (folders, owners, the lock between processes) is
worktrees.py, and URLs with credentials giturls.py: neither imports GitPython, and the
Repository here is still the one way to them (it runs git for both, and
`public_url` and `credential_env` remain importable from this module).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commitbench.errors import CommitbenchError, GitError, RevisionError
from commitbench.model.records import CommitInfo
from commitbench.runner.giturls import credential_env, public_url
from commitbench.runner.worktrees import Worktrees


@dataclass(frozen=True)
class RevSpec:
    """What to measure: revisions and ranges as git understands them, plus filters."""

    revs: tuple[str, ...] = ()
    since: str | None = None
    max_count: int | None = None
    first_parent: bool = False

    @property
    def walks(self) -> bool:
        """Whether history is walked (a range or a filter) rather than commits named."""
        return (
            self.since is not None
            or self.max_count is not None
            or any(".." in r for r in self.revs)
        )


class Repository:
    """A git repository on disk, opened read-only for our purposes."""

    def __init__(self, path: Path) -> None:
        git = _gitpython()
        self._git_module = git
        try:
            self.repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise CommitbenchError(f"not a git repository: {path}") from None
        except git.GitError as err:  # e.g. an unreadable .git
            raise GitError(f"cannot open the git repository at {path}: {err}") from None
        if self.repo.bare:
            raise CommitbenchError(f"{path} is a bare repository; commitbench needs a clone")
        self.root = Path(self.repo.working_tree_dir or path).resolve()
        self._git_env: dict[str, str] = {}
        self._worktrees = Worktrees(self._git, lambda: str(self.repo.common_dir))

    def use_credentials(self, url: str) -> None:
        """Fetch with the credentials of `url` (see credential_env); kept in memory only."""
        self._git_env = credential_env(url)

    # -- identity ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        """The repository's name in the results: its origin URL without credentials,
        else its absolute path."""
        try:
            url = self.repo.remotes.origin.url
        except (AttributeError, ValueError, IndexError):
            return str(self.root)
        return public_url(url)

    @property
    def shallow(self) -> bool:
        return self._git("rev-parse", "--is-shallow-repository") == "true"

    def current_branch(self) -> str | None:
        """The checked-out branch, or None on a detached HEAD."""
        if self.repo.head.is_detached:
            return None
        return str(self.repo.active_branch.name)

    def branch_named(self, revs: Sequence[str]) -> str | None:
        """The branch the revisions name, to record with their runs: no revision (HEAD)
        is the checked-out branch; `main`, `origin/main` and a range `A..main` name
        main; a tag, a sha or `main~3` names none. Revisions naming different branches,
        or a branch and something else, name none."""
        named = {self._branch_of(r) for r in revs or ["HEAD"]}
        return named.pop() if len(named) == 1 else None

    def _branch_of(self, rev: str) -> str | None:
        end = rev.split("..", 1)[1] if ".." in rev else rev
        if end in ("", "HEAD"):
            return self.current_branch()
        for ref, prefix in ((f"refs/heads/{end}", ""), (f"refs/remotes/{end}", "/")):
            try:
                self._git("show-ref", "--verify", "--quiet", ref)
            except GitError as err:
                if not err.unresolved:
                    raise
                continue
            # A remote-tracking branch is recorded by its name there (origin/main: main);
            # origin/HEAD names whichever branch it points at, so none.
            name = end.split(prefix, 1)[1] if prefix else end
            return None if name == "HEAD" else name
        return None

    # -- revisions ---------------------------------------------------------------------

    def resolve(self, spec: RevSpec) -> list[str]:
        """Full SHAs of the commits to measure, oldest first, without duplicates.

        Each revision is resolved on its own and the results are united: a named
        revision is that commit; a range `A..B`, or any revision with --since or
        --max-count, walks history (optionally first-parent only) and keeps the newest
        --max-count commits.
        """
        revs = list(spec.revs) or ["HEAD"]
        for rev in revs:
            self._check_rev(rev)
        walk = ["--reverse"]
        if spec.first_parent:
            walk.append("--first-parent")
        if spec.since:
            walk.append(f"--since={spec.since}")
        if spec.max_count is not None:
            walk.append(f"--max-count={spec.max_count}")
        filtered = spec.since is not None or spec.max_count is not None
        found: list[str] = []
        for rev in revs:
            if ".." in rev or filtered:
                found += self._git("rev-list", *walk, rev, "--").split()
            else:
                found.append(self._verify(rev))
        if not found:
            return []
        unique = list(dict.fromkeys(found))
        return self._git("rev-list", "--no-walk=sorted", "--reverse", *unique, "--").split()

    def _check_rev(self, rev: str) -> None:
        if rev.startswith("-"):
            raise CommitbenchError(f"revision {rev!r} looks like an option")
        ends = [p for p in rev.split("..") if p] if ".." in rev else [rev]
        if ".." in rev and (rev.count("..") != 1 or "..." in rev):
            raise CommitbenchError(f"revision range {rev!r} must be A..B")
        for end in ends:
            self._verify(end)

    def _verify(self, rev: str) -> str:
        try:
            return self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
        except GitError as err:
            if not err.unresolved:
                raise
            hint = (
                "; this is a shallow clone, fetch more history with `git fetch --unshallow`"
                if self.shallow
                else ""
            )
            raise RevisionError(
                f"revision {rev!r} does not resolve to a commit in {self.root}{hint}"
            ) from None

    def sha(self, rev: str) -> str:
        """The full SHA of one revision, or a clear error."""
        self._check_rev(rev)
        if ".." in rev:
            raise CommitbenchError(f"{rev!r} is a range; give one commit")
        return self._verify(rev)

    def has_path(self, sha: str, path: str) -> bool:
        """Whether `path` (a directory or file) exists in the tree of commit `sha`."""
        return self.tree_id(sha, path) is not None

    def tree_id(self, sha: str, path: str) -> str | None:
        """The git object id of `path` in commit `sha` (it changes with any file under
        it), or None when the commit has no such path."""
        clean = posixpath.normpath(path.strip("/") or ".")
        if clean == ".":
            return self._git("rev-parse", f"{sha}^{{tree}}")
        # One line, "<mode> <type> <id>\t<path>", for a path without a trailing slash.
        listed = self._git("ls-tree", "--full-tree", sha, "--", clean).splitlines()
        return listed[0].split()[2] if listed else None

    def files(self, sha: str, path: str) -> list[str]:
        """Every file below directory `path` in commit `sha`, as paths from the root."""
        clean = posixpath.normpath(path.strip("/") or ".")
        listed = self._git("ls-tree", "-r", "--name-only", "--full-tree", sha, "--", clean)
        return listed.splitlines()

    def is_dir(self, sha: str, path: str) -> bool:
        """Whether `path` is a directory (a tree) in commit `sha`."""
        clean = path.strip("/") or "."
        if clean == ".":
            return True
        try:
            return self._git("cat-file", "-t", f"{sha}:{clean}") == "tree"
        except CommitbenchError:
            return False

    def has_commit(self, sha: str) -> bool:
        """Whether the commit `sha` is in this repository (no fetching)."""
        try:
            self._git("rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}")
        except GitError as err:
            if not err.unresolved:
                raise
            return False
        return True

    def fetch(self, *shas: str) -> None:
        """Bring the clone up to date with origin: every branch and tag as a local ref
        (so branch names resolve as they do in the origin), then any of `shas` still
        missing by name (a commit on no branch, where the server allows it).

        Only for clones that nobody works in (commitbench's cache): local branches are
        overwritten, which is why HEAD may be updated too (the clone has no checkout).
        """
        self._git(
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            "--update-head-ok",
            "origin",
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        )
        missing = [sha for sha in shas if not self.has_commit(sha)]
        if missing:
            self._git("fetch", "--quiet", "origin", *missing)

    def merge_base(self, a: str, b: str) -> str:
        first, second = self._verify(a), self._verify(b)
        try:
            return self._git("merge-base", first, second)
        except GitError as err:
            if not err.unresolved:  # merge-base exits 1, silently, without one
                raise
            raise RevisionError(f"{a} and {b} have no common ancestor") from None

    def pr_base(self, head: str, target: str | None = None) -> str:
        """The merge base of `head` with the branch a pull request merges into: `target`,
        else $GITHUB_BASE_REF, else main (origin/<target> when it exists)."""
        target = target or os.environ.get("GITHUB_BASE_REF") or "main"
        for candidate in (f"origin/{target}", target):
            try:
                return self.merge_base(candidate, head)
            except RevisionError:
                continue
        raise CommitbenchError(
            f"no target branch {target!r} (nor origin/{target}) to take the "
            "merge base with; pass BASE or --target"
        )

    def commit_info(self, sha: str) -> CommitInfo:
        full = self._verify(sha)
        try:
            commit = self.repo.commit(full)
        except (ValueError, self._git_module.GitError) as err:  # an unreadable object
            raise GitError(f"git cannot read commit {full} in {self.root}: {err}") from None
        message = commit.message if isinstance(commit.message, str) else commit.message.decode()
        return CommitInfo(
            repository=self.id,
            sha=commit.hexsha,
            parents=tuple(p.hexsha for p in commit.parents),
            author_name=commit.author.name,
            author_email=commit.author.email,
            authored_at=commit.authored_datetime,
            committed_at=commit.committed_datetime,
            subject=message.splitlines()[0] if message else "",
        )

    # -- worktrees (worktrees.py) --------------------------------------------------------

    def worktree(self, sha: str) -> AbstractContextManager[Path]:
        """A detached checkout of `sha` in a temp directory, removed afterwards."""
        return self._worktrees.checkout(sha)

    def prune_worktrees(self) -> list[Path]:
        """Remove worktrees left behind by commitbench processes that no longer run."""
        return self._worktrees.prune()

    def worktrees(self) -> list[Path]:
        """Every commitbench worktree git knows of (for tests and diagnostics)."""
        return self._worktrees.listed()

    def _git(self, *args: str) -> str:
        try:
            out: Any = self.repo.git.execute(["git", *args], env=self._git_env or None)
        except self._git_module.GitCommandNotFound:
            raise GitError(_NO_GIT) from None
        except self._git_module.GitCommandError as err:
            stderr = _stderr(err.stderr)
            last = stderr.splitlines()[-1] if stderr else f"exit status {err.status}"
            raise GitError(
                f"git {' '.join(args[:2])} failed in {self.root}: {last}",
                unresolved=err.status == 1 and not stderr,
            ) from None
        return str(out).strip()


_NO_GIT = "git is not installed or not on PATH (commitbench runs the git command)"


def _gitpython() -> Any:
    """GitPython, imported on first use; it refuses to import without a git binary."""
    try:
        import git
    except ImportError as err:
        if "git executable" in str(err).lower():
            raise GitError(_NO_GIT) from None
        raise
    return git


def _stderr(value: object) -> str:
    """git's own words from GitPython's `stderr: '...'` wrapping."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    text = text.strip()
    if text.startswith("stderr: '") and text.endswith("'"):
        text = text[len("stderr: '") : -1]
    return text.strip()


def clone(source: str, dest: Path) -> Repository:
    """A clone of `source` (URL or path) at `dest` without a checkout: commits are
    measured in worktrees, so the clone's own working tree stays empty. Its origin is
    `source` without credentials (public_url), so results name the repository that way
    and no token is written to the clone; credentials in `source` reach git through
    credential_env for this clone and its first fetch."""
    git = _gitpython()

    shown = public_url(source)
    try:
        git.Repo.clone_from(shown, str(dest), no_checkout=True, env=credential_env(source))
    except git.GitCommandError as err:
        raise CommitbenchError(f"git clone of {shown} failed: {_stderr(err.stderr)}") from None
    repo = Repository(dest)
    repo.use_credentials(source)
    repo.fetch()
    return repo


def commit_info(path: Path, rev: str = "HEAD") -> CommitInfo:
    return Repository(path).commit_info(rev)


def current_branch(path: Path) -> str | None:
    return Repository(path).current_branch()


__all__: Sequence[str] = (
    "Repository",
    "RevSpec",
    "clone",
    "commit_info",
    "credential_env",
    "current_branch",
    "public_url",
)
