"""Profiles read back from a store, for `explain` and `check`.

A profile is the `profile.*` metrics of an ok result recorded with `--trace`
(model/profile.py). Every run of the commit is looked at, so a profile recorded by a
separate `run --trace` is found beside the timings of another run.
"""

from __future__ import annotations

from commitbench.analysis.explain import Candidate
from commitbench.model.profile import Profile
from commitbench.store.base import ReadStore


def profiles_at(
    store: ReadStore, repository: str, sha: str, case: str, part: str | None = None
) -> list[Candidate]:
    """Every recorded profile of `case` (or of its timed function `part`) at `sha`,
    oldest run first."""
    found = []
    for header, labels in store.runs_of(repository, sha):
        if case not in labels:
            continue
        data = store.load_run(header.run.id)
        for result in data.results:
            if result.case.label != case or result.status != "ok":
                continue
            profile = Profile.of(result.metrics, part)
            if profile is not None:
                found.append(
                    Candidate(
                        machine=header.machine.fingerprint,
                        profile=header.run.profile,
                        started_at=header.run.started_at.timestamp(),
                        run_id=str(header.run.id),
                        data=profile,
                    )
                )
    return found
