"""Putting commits on the queue: named revisions, or every new commit of a branch.

A local repository is named by its absolute path, anything else (a URL) is resolved in
the runner cache's clone of it; the job records that name, which is where runners
fetch from and the repository its results are recorded under.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import Engine

from commitbench.errors import CommitbenchError
from commitbench.fleet import queue
from commitbench.fleet.queue import Enqueued, JobSpec
from commitbench.fleet.repos import RepoCache
from commitbench.runner.vcs import Repository, RevSpec, public_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """A repository as jobs name it, and a local clone to resolve revisions in."""

    name: str
    repo: Repository


def open_source(location: str, cache: Path) -> Source:
    """A local path (a directory) is used in place; anything else is fetched into the
    cache and resolved there (up to date with the remote)."""
    if Path(location).is_dir():
        repo = Repository(Path(location))
        return Source(str(repo.root), repo)
    # Jobs name the repository without credentials (the jobs table is readable by
    # Grafana's role); runners take theirs from git's credential helpers.
    return Source(public_url(location), RepoCache(cache).get(location))


def enqueue_revs(engine: Engine, source: Source, revs: RevSpec, spec: JobSpec) -> list[Enqueued]:
    shas = source.repo.resolve(revs)
    return queue.enqueue(engine, replace(spec, repository=source.name), shas)


def follow(
    engine: Engine,
    source: Source,
    spec: JobSpec,
    *,
    first_parent: bool = True,
    max_count: int | None = None,
) -> list[Enqueued]:
    """Enqueue every commit of `spec.branch` after the newest one enqueued for it (with
    the same benches, filter, profile and machine kind); the first time, the branch tip
    (or its `max_count` newest commits).

    Run it from cron as often as you like: concurrent or repeated calls add nothing
    twice (the jobs' unique key). After a force-push that dropped the last enqueued
    commit, it starts again from the tip.
    """
    branch = spec.branch
    if branch is None:
        raise CommitbenchError("follow needs a branch")
    spec = replace(spec, repository=source.name)
    tip = source.repo.resolve(RevSpec((branch,)))[-1]
    last = queue.last_enqueued(engine, spec)
    if last is not None and not source.repo.has_commit(last):
        log.warning(
            "last enqueued commit %s of %s is gone; starting at the tip", last[:12], spec.branch
        )
        last = None
    if last is None:
        revs = RevSpec((branch,), max_count=max_count or 1, first_parent=first_parent)
    else:
        revs = RevSpec((f"{last}..{tip}",), max_count=max_count, first_parent=first_parent)
    return queue.enqueue(engine, spec, source.repo.resolve(revs))
