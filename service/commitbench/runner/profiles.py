"""Profiles read back from a store, for `explain` and `check`.

A profile is the `profile.*` metrics of an ok result recorded with `--trace`
(model/profile.py). Every run of the commit is looked at, so a profile recorded by a
separate `run --trace` is found beside the timings of another run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commitbench.analysis.explain import Candidate, Explanation, explain, pair
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


@dataclass(frozen=True)
class Explained:
    """`explain` of one case between two commits, or why there is none."""

    case: str
    pair: tuple[Candidate, Candidate] | None
    explanation: Explanation | None
    missing: str | None = None  # why there is no explanation


def explain_cases(
    store: ReadStore, repository: str, base: str, head: str, cases: Sequence[str]
) -> list[Explained]:
    """The explanation of each of `cases` (in order, once each) from the profiles
    recorded at `base` and `head`: what `check` shows under a confirmed regression."""
    out = []
    for case in dict.fromkeys(cases):
        before = profiles_at(store, repository, base, case)
        after = profiles_at(store, repository, head, case)
        chosen = pair(before, after) if before and after else None
        if chosen is None:
            where = [sha[:12] for sha, found in ((base, before), (head, after)) if not found]
            why = (
                f"no profile at {' and '.join(where)} (measure with --trace)"
                if where
                else "the profiles come from different machines"
            )
            out.append(Explained(case, None, None, why))
            continue
        try:
            result = explain(chosen[0].data, chosen[1].data)
        except ValueError as err:
            out.append(Explained(case, chosen, None, str(err)))
            continue
        out.append(Explained(case, chosen, result))
    return out
