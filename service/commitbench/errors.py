"""Errors that end a command with one clear line and an exit code.

2: bad usage or input (the user can fix the command); 3: infrastructure (a database
that was asked for is unreachable or lost, git that fails for a reason other than the
user's revision). cli/__init__.py prints `commitbench: error: <message>` and exits with
the error's `exit_code`; no path ends in a traceback.
"""

from __future__ import annotations


class CommitbenchError(Exception):
    """Bad usage or input: the CLI prints `commitbench: error: <message>` and exits 2."""

    exit_code = 2


class ConfigError(CommitbenchError):
    """A setting that cannot work: malformed URL, wrong credentials, unknown option value."""


class SchemaOutdated(CommitbenchError):
    """The database schema is not at the revision this commitbench expects."""


class CsvFormatError(CommitbenchError):
    """A results directory that commitbench cannot read back faithfully."""


class ForeignFormatError(CommitbenchError):
    """A pytest-benchmark or asv file that commitbench cannot import faithfully."""


class RevisionError(CommitbenchError):
    """A revision that does not name a commit of the repository (the user's input)."""


class InfrastructureError(CommitbenchError):
    """Something commitbench depends on failed, not the command: exit 3."""

    exit_code = 3


class DatabaseUnavailable(InfrastructureError):
    """The database cannot be reached (refused, timed out, lost mid-way)."""


class GitError(InfrastructureError):
    """git failed for a reason other than the user's revision: a corrupt repository, no
    git binary, a worktree that cannot be added. `unresolved`: git exited 1 without a
    word, its way of saying that a revision does not resolve (vcs.py turns that into a
    RevisionError where the revision is the user's)."""

    def __init__(self, message: str, *, unresolved: bool = False) -> None:
        super().__init__(message)
        self.unresolved = unresolved
