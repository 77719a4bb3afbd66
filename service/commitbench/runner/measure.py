"""One commit's measuring, module by module: each module's cases in passes of fresh
workers (`--processes`), results calibrated, merged across processes, given their
profiles, shown, and recorded through MetricsRecorder.

Separate from the Runner (runner.py), which plans a commit (what is left, the worktree,
the setup, the run's header) and makes one Measurement per run it opens; this is the
loop over the workers' results and the bookkeeping of the CommitOutcome.
"""

from __future__ import annotations

from commitbench.model.cases import CaseKey
from commitbench.model.records import ResultRecord
from commitbench.runner.launcher import CaseRun, ProcessState, WorkerOptions, list_cases, run_module
from commitbench.runner.merge import merge_processes
from commitbench.runner.options import CommitOutcome, Events, RunOptions
from commitbench.runner.recorder import MetricsRecorder
from commitbench.runner.sampling.sampler import DeviceSampler
from commitbench.runner.sampling.state import with_calibration
from commitbench.runner.selection import Selection
from commitbench.runner.traces import Traces
from commitbench.store import Store


class Measurement:
    """Measures modules of one commit into `out` and, unless --quick, the recorder (its
    run is opened with the first result)."""

    def __init__(
        self,
        options: RunOptions,
        store: Store,
        events: Events,
        recorder: MetricsRecorder,
        sampler: DeviceSampler,
        traces: Traces | None,
        out: CommitOutcome,
    ) -> None:
        self.options = options
        self.store = store
        self.events = events
        self.recorder = recorder
        self.sampler = sampler
        self.traces = traces
        self.out = out

    def module(
        self,
        module: str,
        wanted: list[str] | None,
        selection: Selection,
        options: WorkerOptions,
        done: set[str],
    ) -> None:
        """Measure the module's `wanted` cases (None: all of them, or under --filter the
        ones it selects, listed now), skipping those in `done`, to which each case
        measured is added."""
        if wanted is None and selection.filter is not None:
            plan = list_cases(module, options)  # not listed before the setup: now
            if isinstance(plan, CaseRun):
                if module not in done:
                    self.record(plan.result)
                    if self.out.run_id is not None:
                        self.recorder.flush()
                return
            wanted = [c.label for c in plan if selection.wanted(c.label)]
            self.out.matched += len(wanted)
            if not wanted:
                return
        if wanted is None:
            wanted = sorted(selection.cases or ())
        before = frozenset(done)
        k = 1 if self.options.quick else self.options.processes
        finished: dict[str, list[tuple[ResultRecord, ProcessState | None]]] = {}
        try:
            for _ in range(k):  # each pass starts fresh workers: one process per case
                runs = run_module(
                    module,
                    options,
                    observer=_Tell(self.sampler, self.events),
                    only=wanted if selection.narrowed else [],
                    skip=sorted(before),
                )
                seen: set[str] = set()
                for run in runs:
                    label = run.result.case.label
                    if label in before or label in seen:
                        # A module that fails to import is reported once per commit; and
                        # a case another module's worker reported (bench code can forge a
                        # plan when it is imported: runner/protocol.py) keeps its first
                        # result.
                        continue
                    seen.add(label)
                    done.add(label)  # and later modules' workers are told to skip it
                    result = self.sampler.annotate(run)
                    if k == 1:
                        self.events.case_finished(result)  # shown now, recorded below
                    finished.setdefault(label, []).append((result, run.process))
        finally:
            # Every worker of the module has ended (or Ctrl-C stopped it: what finished
            # is kept, with the calibration known so far): each result gets its worker's
            # calibration at start and end, and a case measured in several processes
            # becomes one result whose samples keep their process. The unit is written
            # at once anyway.
            for processes in finished.values():
                calibrated = [with_calibration(result, process) for result, process in processes]
                one = calibrated[0] if k == 1 else merge_processes(calibrated)
                if self.traces:
                    one = self.traces.attach(one)
                self.record(one, shown=k == 1)
        if self.out.run_id is not None:  # the recorder opens with the first result
            self.recorder.flush()
            if self.traces is not None:  # the profiles' files, beside their results
                self.traces.save(self.store, self.out.run_id, self.recorder.spooled_to)

    def record(self, result: ResultRecord, *, shown: bool = False) -> None:
        """One result into the outcome, shown unless it was already, and (unless
        --quick) into the run, which the first result opens."""
        self.out.results.append(result)
        if not shown:
            self.events.case_finished(result)
        if self.options.quick:
            return  # a check that benches run: one sample is no measurement
        if self.out.run_id is None:
            self.recorder.open()
            self.out.run_id = self.recorder.run_id
        self.recorder.add(result)


class _Tell:
    """Forwards worker events to the sampler (tags samples) and the display."""

    def __init__(self, sampler: DeviceSampler, events: Events) -> None:
        self.sampler = sampler
        self.events = events

    def worker_started(self, pid: int) -> None:
        self.sampler.worker_started(pid)

    def case_started(self, case: CaseKey) -> None:
        self.sampler.case_started(case)
        self.events.case_started(case.label)

    def case_finished(self, case: CaseKey) -> None:
        self.sampler.case_finished(case)
