"""RunnerLab: the Runner and a store behind analysis.gate.Lab, for `check` and `bisect`.

With --trace, only the first measurement of each commit profiles its cases: `check`,
`compare --measure` and `bisect` measure a commit in many rounds of one process, and one
profile per commit is what `explain` reads (the newest that has a partner), while each
profiled process pays the capture (on an H200, `check --trace` of one attention case ran
past 320 s when every round profiled)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from commitbench.model.points import Point, PointFilter, machine_label
from commitbench.model.records import MachineInfo, ResultRecord
from commitbench.runner.options import CommitOutcome
from commitbench.runner.runner import Runner
from commitbench.store.base import ReadStore


class RunnerLab:
    """Measures with `runner` (on this machine) and reads back from `store`."""

    def __init__(self, runner: Runner, store: ReadStore) -> None:
        self.runner = runner
        self.store = store
        self._options = runner.options
        self._traced: set[str] = set()  # commits measured with --trace once already

    @property
    def machine(self) -> MachineInfo:
        return self.runner.machine()

    @property
    def profile(self) -> str:
        return self.runner.profile_for(self.machine)

    def measure(
        self,
        sha: str,
        *,
        cases: frozenset[str] | None = None,
        again: bool = False,
        processes: int = 1,
    ) -> list[Point]:
        trace = 0 if sha in self._traced else self._options.trace
        self.runner.options = replace(
            self._options,
            cases=cases if cases is not None else self._options.cases,
            force=again,
            processes=processes,
            trace=trace,
        )
        (outcome,) = self.runner.run([sha])
        if trace and outcome.results:
            self._traced.add(sha)
        return self._points(outcome)

    def recorded(self, shas: Sequence[str], *, case: str | None = None) -> list[Point]:
        where = PointFilter(
            repository=self.runner.repo.id,
            shas=list(shas),
            case=case,
            machine=self.machine.fingerprint,
        )
        return [p for p in self.store.points(where) if p.profile == self.profile]

    def _points(self, outcome: CommitOutcome) -> list[Point]:
        """This measurement's results as points (not read back: only what it measured)."""
        m, commit = self.machine, outcome.commit
        label = machine_label(m.gpu_name, m.gpu_count, m.cpu_model)
        return [
            Point(
                repository=commit.repository,
                sha=commit.sha,
                committed_at=commit.committed_at,
                subject=commit.subject,
                machine=m.fingerprint,
                machine_label=label,
                branch=self._options.branch,
                profile=self.profile,
                run_id=outcome.run_id,
                run_started_at=outcome.started_at,
                case=r.case.label,
                metric=x.name,
                unit=x.unit,
                direction=x.direction,
                median=x.median,
                ci_low=x.ci_low,
                ci_high=x.ci_high,
                samples=x.samples or (),
                n=x.n,
                first_parent=commit.parents[0] if commit.parents else None,
                processes=x.processes,
            )
            for r in outcome.results
            if _ok(r)
            for x in r.metrics
        ]


def _ok(r: ResultRecord) -> bool:
    return r.status == "ok"
