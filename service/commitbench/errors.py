"""Errors that end a command with one clear line and exit code 2 (bad usage or input)."""

from __future__ import annotations


class CommitbenchError(Exception):
    """Bad usage or input: the CLI prints `commitbench: error: <message>` and exits 2."""

    exit_code = 2


class ConfigError(CommitbenchError):
    """A setting that cannot work: malformed URL, wrong credentials, unknown option value."""


class DatabaseUnavailable(CommitbenchError):
    """The database cannot be reached (refused, timed out, lost mid-way)."""


class SchemaOutdated(CommitbenchError):
    """The database schema is not at the revision this commitbench expects."""


class CsvFormatError(CommitbenchError):
    """A results directory that commitbench cannot read back faithfully."""
