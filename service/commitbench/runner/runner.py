"""The runner: commits x bench modules, each commit in its own worktree, each module in
worker processes, everything recorded through MetricsRecorder.

The orchestrating process never imports a bench or torch: modules are found by file
name, cases are listed and measured by workers with the worktree on PYTHONPATH, and the
environment is probed by a worker too. Work already recorded for (repository, commit,
case, machine, profile) is skipped unless `force`; a commit with nothing left to do
records no run at all.

This module plans and drives: which commits, what is left of each, its worktree, setup,
environment and run header. The pieces it uses have their own modules: the options and
outcome (options.py), the worktree's preparation (prepare.py), the per-module measuring
loop and the outcome's bookkeeping (measure.py), and the merging of a case measured in
several processes (merge.py).
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from commitbench.errors import CommitbenchError
from commitbench.model.cases import CaseKey
from commitbench.model.records import (
    FAILED_STATUSES,
    REMEASURE_ALL,
    REMEASURE_FAILED,
    CommitInfo,
    MachineInfo,
    RecordedKey,
    ResultRecord,
    RunHeader,
    RunInfo,
    utcnow,
)
from commitbench.runner import liveness, machine, nsys
from commitbench.runner.launcher import (
    Survey,
    WorkerError,
    WorkerOptions,
    survey,
    worker_environment,
)
from commitbench.runner.measure import Measurement
from commitbench.runner.nsys import Capture as NsysCapture
from commitbench.runner.options import CommitOutcome, Events, RunOptions
from commitbench.runner.prepare import bench_dir, is_module_file, run_setup, worker_path
from commitbench.runner.recorder import MetricsRecorder
from commitbench.runner.sampling.sampler import DeviceSampler
from commitbench.runner.selection import Selection, Todo
from commitbench.runner.traces import Traces, traced
from commitbench.runner.vcs import Repository
from commitbench.store import Store
from commitbench.store.csv import CsvStore
from commitbench.store.engine import DB_LOST, unwritable

log = logging.getLogger(__name__)

WORKER_CASE = "commitbench.worker"  # the failure of a commit where no worker can start


class Runner:
    def __init__(
        self,
        options: RunOptions,
        store: Store,
        *,
        spool: Path | None,
        events: Events,
        sampler_factory: Callable[[float], DeviceSampler] | None = None,
        fingerprint: Callable[[], MachineInfo] = machine.fingerprint,
        environment: Mapping[str, Any] | None = None,
    ) -> None:
        self.options = options
        self.store = store
        self.spool = spool
        self.events = events
        self.repo = Repository(options.repo)
        self._sampler_factory = sampler_factory or (
            lambda interval: DeviceSampler.default(interval=interval)
        )
        self._fingerprint = fingerprint
        # Known already (a fleet worker probes once per repository), else probed once.
        self._environment: dict[str, Any] | None = (
            dict(environment) if environment is not None else None
        )
        self._digests: dict[Path, str] = {}  # bench directories outside the repository
        self._spooling: CsvStore | None = None  # the database was lost: the spool
        self.host: MachineInfo | None = None  # known once run() starts
        self.profile: str | None = None
        self._traces: Traces | None = None  # --trace: the files of this commit's workers
        # Each commit's listing, once per invocation: check, compare --measure and bisect
        # measure one commit in many rounds, and a listing worker imports the bench
        # module (torch, CUDA libraries: seconds on a GPU box) to say the same each time.
        self._surveys: dict[tuple[Any, ...], Survey] = {}

    # -- planning (everything that can fail on bad input, before anything is measured) --

    def plan(self) -> list[str]:
        shas = self.repo.resolve(self.options.revs)
        benches = self.options.benches
        what = "bench module" if is_module_file(benches) else "bench directory"
        if benches is not None and not Path(benches).is_absolute():
            present = [s for s in shas if self.repo.has_path(s, benches)]
            if not present:
                raise CommitbenchError(
                    f"{what} {benches!r} is not in "
                    f"{'the commit' if len(shas) == 1 else f'any of the {len(shas)} commits'}"
                )
            if what == "bench directory" and not self.repo.is_dir(present[0], benches):
                raise CommitbenchError(
                    f"--benches {benches} is a file: give a bench directory or a .py bench module"
                )
        elif benches is not None and not Path(benches).exists():
            raise CommitbenchError(f"{what} {benches} does not exist")
        elif benches is not None and Path(benches).is_file() and what != "bench module":
            raise CommitbenchError(
                f"--benches {benches} is a file: give a bench directory or a .py bench module"
            )
        return shas

    def machine(self) -> MachineInfo:
        """This machine, fingerprinted once."""
        if self.host is None:
            self.host = self._fingerprint()
        return self.host

    def profile_for(self, m: MachineInfo) -> str:
        if self.options.profile != "auto":
            return self.options.profile
        return "full" if m.gpu_count > 0 else "smoke"

    # -- running ---------------------------------------------------------------------------

    def run(self, shas: Sequence[str]) -> list[CommitOutcome]:
        self.repo.prune_worktrees()
        host = self.machine()
        profile = self.profile = self.profile_for(host)
        self._interrupt_stale(host)
        self.events.plan(shas)
        outcomes = []
        for index, sha in enumerate(shas):
            commit = self.repo.commit_info(sha)
            self.events.commit_started(index, commit)
            outcome = CommitOutcome(commit)
            outcomes.append(outcome)
            self._commit(commit, host, profile, outcome)
            self.events.commit_finished(outcome)
        return outcomes

    def _commit(
        self, commit: CommitInfo, host: MachineInfo, profile: str, out: CommitOutcome
    ) -> None:
        """Measure one commit, after asking the store what is left: a commit whose wanted
        cases are all recorded, or whose last complete run measured this same selection,
        costs no worktree, no setup and no worker."""
        selection = Selection(
            self.options.benches, self.options.filter, self.options.cases, self.options.params
        )
        recorded = selection.at(self.repo, commit.sha, self._digests)
        if recorded is None:
            return  # the bench directory (or module) does not exist yet at this commit
        key = RecordedKey(commit.repository, commit.sha, host.fingerprint, profile)
        fresh = self.options.force or self.options.quick
        statuses, complete = ({}, []) if fresh else self._recorded(key)
        modules = selection.modules(self.repo, commit.sha)
        mine = {label: s for label, s in statuses.items() if selection.selects(label, modules)}
        failed = {label for label, s in mine.items() if s in FAILED_STATUSES}
        out.already_recorded, out.recorded_failed = len(mine), len(failed)
        if self.options.retry_failed and failed:  # measured again: not "recorded before"
            out.already_recorded -= len(failed)
            out.recorded_failed = 0
            statuses = {label: s for label, s in statuses.items() if label not in failed}
            complete = []  # that complete run left failures to measure again
        done = set(statuses)
        if not fresh and selection.nothing_left(done, recorded, complete):
            out.matched = len(mine)
            return
        with self.repo.worktree(commit.sha) as tree, traced(self.options.trace) as traces:
            self._traces = traces
            self._measure(tree, commit, host, profile, selection, recorded, done, out)

    def _recorded(self, key: RecordedKey) -> tuple[dict[str, str], list[dict[str, Any]]]:
        """The cases recorded for the key, and the selections of its complete runs. A
        database lost between commits sends the rest of the run to the CSV spool, as
        MetricsRecorder does within a commit (what is in the database is not known
        then, so the rest is measured in full)."""
        try:
            return self.store.recorded(key), self.store.selections(key)
        except DB_LOST as err:
            if self.spool is None or isinstance(self.store, CsvStore):
                raise
            log.warning(
                "database %s lost (%s); the rest of the run goes to %s",
                self.store.location,
                type(err).__name__,
                self.spool,
            )
            self.store = self._spooling = CsvStore(self.spool)
            return self.store.recorded(key), self.store.selections(key)

    def _measure(
        self,
        tree: Path,
        commit: CommitInfo,
        host: MachineInfo,
        profile: str,
        selection: Selection,
        recorded: dict[str, Any],
        done: set[str],
        out: CommitOutcome,
    ) -> None:
        found = bench_dir(self.options, tree)
        if found is None:
            return
        benches, modules = found
        options = WorkerOptions(
            profile=profile,
            timeout_s=self.options.timeout_s,
            isolate=self.options.isolate,
            pythonpath=worker_path(self.options, tree, benches),
            cwd=tree,
            quick=self.options.quick,
            pass_env=self.options.pass_env,
            trace=0 if self.options.quick else self.options.trace,
            trace_dir=self._traces.folder if self._traces is not None else None,
            params=self.options.params,
            affinity=self.options.affinity,
        )
        todo: list[Todo] = [(module, None) for module in modules]
        if selection.survey_needed(done):  # one worker lists them all, before any setup
            listed = self._survey(commit.sha, modules, options)
            selection.check_sweep(listed)  # a bad --param: exit 2 before this commit runs
            plans = listed.plans
            todo = selection.left(modules, plans, done)
            out.matched = selection.matched(plans)
        if not todo:
            return  # everything wanted is recorded: no setup, no probe, no run
        failure = run_setup(self.options, tree)
        environment: dict[str, Any] = {}
        if failure is None and not self.options.quick:
            environment, failure = self._env(options)
        sampler = self._sampler_factory(self.options.sample_interval_s)
        header = RunHeader(
            run=RunInfo(
                id=uuid.uuid4(),
                started_at=utcnow(),
                trigger=self.options.trigger,
                profile=profile,
                branch=self.options.branch,
                environment={
                    **environment,
                    "selection": recorded,
                    "runner": liveness.identity(),
                    **self._remeasure(),
                    **sampler.run_state(),
                },
            ),
            commit=commit,
            machine=host,
        )
        options = self._under_nsys(options, header.run.id)
        recorder = MetricsRecorder(self.store, header, spool=self.spool)
        measuring = Measurement(
            self.options, self.store, self.events, recorder, sampler, self._traces, out
        )
        interrupted = True
        try:
            with sampler:
                if failure is not None:
                    measuring.record(failure)
                else:
                    for module, wanted in todo:
                        measuring.module(module, wanted, selection, options, done)
                if out.run_id is not None:
                    recorder.add_run_samples(sampler.take_untagged())
            interrupted = False
        finally:
            # Also on Ctrl-C or an error: what was measured is flushed, and the run is
            # closed as interrupted so a later run resumes with the missing cases.
            if out.run_id is not None:
                recorder.close(interrupted=interrupted)
                out.recorded_elsewhere = recorder.recorded_elsewhere
                out.unwritten, out.storage_error = recorder.unwritten, recorder.storage_error
                out.spooled_to = recorder.spooled_to
                if self._spooling is not None and recorder.written:
                    out.spooled_to = self._spooling.run_dir(out.run_id)

    def _interrupt_stale(self, host: MachineInfo) -> None:
        """Runs of this machine left `running` by a runner that died (SIGKILL, power)
        become `interrupted` (runner/liveness.py says how death is told)."""
        if self.options.quick:
            return
        try:
            stale = self.store.interrupt_stale(host.fingerprint, liveness.gone)
        except Exception as err:
            if not unwritable(err):
                raise
            log.info("stale runs not checked: the database is lost or read-only")
            return
        for run_id in stale:
            log.warning("run %s was left running by a runner that is gone: interrupted", run_id)

    def _remeasure(self) -> dict[str, str]:
        """What this run measures again on purpose, for the store's exactly-once check
        (store/worklock.py): everything measured before it started (--force, check's
        confirmation rounds), or the cases whose latest result failed."""
        if self.options.force:
            return {"remeasure": REMEASURE_ALL}
        if self.options.retry_failed:
            return {"remeasure": REMEASURE_FAILED}
        return {}

    def _under_nsys(self, options: WorkerOptions, run_id: uuid.UUID) -> WorkerOptions:
        """The options with the measuring workers under nsys (runner/nsys.py): reports
        in the run's folder of the CSV store, or of the results directory (the spool)
        when the run goes to PostgreSQL."""
        root = self.store.root if isinstance(self.store, CsvStore) else self.spool
        if self.options.nsys is None or self.options.quick or root is None:
            return options
        capture = NsysCapture(self.options.nsys, nsys.folder(root, run_id))
        return dataclasses.replace(options, nsys=capture)

    @property
    def environment(self) -> dict[str, Any] | None:
        """The workers' environment once probed (None before the first commit)."""
        return self._environment

    def _survey(self, sha: str, modules: Sequence[str], options: WorkerOptions) -> Survey:
        """The commit's listing, listed once per invocation (again for each round only
        where a --setup command may change what imports)."""
        key = (sha, tuple(modules), options.profile, options.params, self.options.benches)
        if self.options.setup is not None or key not in self._surveys:
            self._surveys[key] = survey(modules, options)
        return self._surveys[key]

    def _env(self, options: WorkerOptions) -> tuple[dict[str, Any], ResultRecord | None]:
        """The workers' environment (their interpreter and packages, probed by a worker);
        once per invocation, or per commit when a setup command may change what is
        installed. A worker that cannot run there fails the commit with the reason."""
        if self._environment is None or self.options.setup is not None:
            try:
                self._environment = worker_environment(options)
            except WorkerError as err:
                return {}, ResultRecord(
                    CaseKey.of(WORKER_CASE),
                    "failed",
                    f"no bench worker can run in this commit's worktree: {err}",
                )
        return self._environment, None
