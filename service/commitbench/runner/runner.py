"""The runner: commits x bench modules, each commit in its own worktree, each module in
worker processes, everything recorded through MetricsRecorder.

The orchestrating process never imports a bench or torch: modules are found by file
name, cases are listed and measured by workers with the worktree on PYTHONPATH, and the
environment is probed by a worker too. Work already recorded for (repository, commit,
case, machine, profile) is skipped unless `force`; a commit with nothing left to do
records no run at all.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from commitbench.errors import CommitbenchError
from commitbench.harness import discovery
from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
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
from commitbench.model.stats import Stats
from commitbench.model.sweep import Overrides
from commitbench.model.text import storable
from commitbench.runner import liveness, machine, nsys
from commitbench.runner.environ import bench_environment
from commitbench.runner.launcher import (
    CaseRun,
    ProcessState,
    WorkerError,
    WorkerOptions,
    list_cases,
    run_module,
    survey,
    worker_environment,
)
from commitbench.runner.nsys import Capture as NsysCapture
from commitbench.runner.recorder import MetricsRecorder
from commitbench.runner.sampling.sampler import DeviceSampler
from commitbench.runner.sampling.state import with_calibration
from commitbench.runner.selection import Selection, Todo, builtin_benches
from commitbench.runner.traces import Traces, traced
from commitbench.runner.vcs import Repository, RevSpec
from commitbench.store import Store
from commitbench.store.csv import CsvStore
from commitbench.store.engine import DB_LOST, unwritable

log = logging.getLogger(__name__)

# Statuses that make `run` exit 1 (records.FAILED_STATUSES: out of memory is not one).
BROKEN = FAILED_STATUSES
SETUP_CASE = "commitbench.setup"
WORKER_CASE = "commitbench.worker"  # the failure of a commit where no worker can start
SETUP_TAIL_CHARS = 4000


@dataclass(frozen=True)
class RunOptions:
    repo: Path = Path(".")
    revs: RevSpec = field(default_factory=RevSpec)
    benches: str | None = None  # None: the built-in suite
    filter: str | None = None
    profile: str = "auto"
    timeout_s: float = 600.0
    setup: str | None = None
    pythonpath: tuple[str, ...] | None = None
    force: bool = False
    branch: str | None = None
    trigger: str = "manual"
    isolate: str = "module"
    sample_interval_s: float = 0.1
    quick: bool = False  # each timed loop once, nothing recorded (asv's --quick)
    cases: frozenset[str] | None = None  # exactly these case ids (check's confirmation)
    retry_failed: bool = False  # measure again the cases whose latest result failed
    pass_env: tuple[str, ...] = ()  # variables bench code gets beyond the allow-list
    trace: int = 0  # profiled iterations per case after its timing (--trace; 0: none)
    nsys: str | None = None  # the nsys executable: measuring workers under it (--nsys)
    processes: int = 1  # fresh worker processes per case, one after another (issue 13)
    params: Overrides = ()  # --param: the grids swept (model/sweep.py)

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ValueError("processes must be >= 1")


@dataclass
class CommitOutcome:
    commit: CommitInfo
    run_id: uuid.UUID | None = None  # None: nothing was left to measure
    started_at: datetime = field(default_factory=utcnow)
    results: list[ResultRecord] = field(default_factory=list)
    already_recorded: int = 0  # selected cases recorded before (not measured again)
    recorded_failed: int = 0  # of those, how many failed, timed out or crashed
    matched: int = 0  # cases that --filter selected (counted only with a filter)
    spooled_to: Path | None = None
    # Measured here, but another run recorded them first: dropped (store/sql.py).
    recorded_elsewhere: list[str] = field(default_factory=list)
    # Measured, but the CSV directory could not take them (recorder.py), and why.
    unwritten: list[ResultRecord] = field(default_factory=list)
    storage_error: str | None = None


class Events(Protocol):
    """What the runner tells its display (cli/progress.py)."""

    def plan(self, commits: Sequence[str]) -> None: ...

    def commit_started(self, index: int, commit: CommitInfo) -> None: ...

    def case_started(self, label: str) -> None: ...

    def case_finished(self, result: ResultRecord) -> None: ...

    def commit_finished(self, outcome: CommitOutcome) -> None: ...


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

    # -- planning (everything that can fail on bad input, before anything is measured) --

    def plan(self) -> list[str]:
        shas = self.repo.resolve(self.options.revs)
        benches = self.options.benches
        what = "bench module" if _is_module_file(benches) else "bench directory"
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
        found = self._bench_dir(tree)
        if found is None:
            return
        benches, modules = found
        options = WorkerOptions(
            profile=profile,
            timeout_s=self.options.timeout_s,
            isolate=self.options.isolate,
            pythonpath=self._pythonpath(tree, benches),
            cwd=tree,
            quick=self.options.quick,
            pass_env=self.options.pass_env,
            trace=0 if self.options.quick else self.options.trace,
            trace_dir=self._traces.folder if self._traces is not None else None,
            params=self.options.params,
        )
        todo: list[Todo] = [(module, None) for module in modules]
        if selection.survey_needed(done):  # one worker lists them all, before any setup
            listed = survey(modules, options)
            selection.check_sweep(listed)  # a bad --param: exit 2 before this commit runs
            plans = listed.plans
            todo = selection.left(modules, plans, done)
            out.matched = selection.matched(plans)
        if not todo:
            return  # everything wanted is recorded: no setup, no probe, no run
        failure = self._setup(tree)
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
        interrupted = True
        try:
            with sampler:
                if failure is not None:
                    self._record(recorder, out, failure)
                else:
                    for module, wanted in todo:
                        self._module(
                            module, wanted, selection, options, sampler, recorder, done, out
                        )
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
        (store/sql.py): everything measured before it started (--force, check's
        confirmation rounds), or the cases whose latest result failed."""
        if self.options.force:
            return {"remeasure": REMEASURE_ALL}
        if self.options.retry_failed:
            return {"remeasure": REMEASURE_FAILED}
        return {}

    def _bench_dir(self, tree: Path) -> tuple[Path, list[str]] | None:
        """The folder that goes on the workers' path and the bench modules in it: every
        module below a directory, or the one module a `.py` file is (named after it)."""
        if self.options.benches is None:
            folder = builtin_benches()
        else:
            folder = Path(self.options.benches)
            folder = folder if folder.is_absolute() else tree / folder
        if _is_module_file(str(folder)) and folder.is_file():
            return folder.parent, [folder.stem]
        if not folder.is_dir():
            return None  # not there yet at this commit
        return folder, discovery.find_modules(folder, under=(".",))

    def _pythonpath(self, tree: Path, benches: Path) -> tuple[Path, ...]:
        if self.options.pythonpath is not None:
            extra = [
                Path(p) if Path(p).is_absolute() else tree / p for p in self.options.pythonpath
            ]
        else:
            extra = [tree] + ([tree / "src"] if (tree / "src").is_dir() else [])
        return (benches, *extra)

    def _under_nsys(self, options: WorkerOptions, run_id: uuid.UUID) -> WorkerOptions:
        """The options with the measuring workers under nsys (runner/nsys.py): reports
        in the run's folder of the CSV store, or of the results directory (the spool)
        when the run goes to PostgreSQL."""
        root = self.store.root if isinstance(self.store, CsvStore) else self.spool
        if self.options.nsys is None or self.options.quick or root is None:
            return options
        capture = NsysCapture(self.options.nsys, nsys.folder(root, run_id))
        return dataclasses.replace(options, nsys=capture)

    def _module(
        self,
        module: str,
        wanted: list[str] | None,
        selection: Selection,
        options: WorkerOptions,
        sampler: DeviceSampler,
        recorder: MetricsRecorder,
        done: set[str],
        out: CommitOutcome,
    ) -> None:
        if wanted is None and selection.filter is not None:
            plan = list_cases(module, options)  # not listed before the setup: now
            if isinstance(plan, CaseRun):
                if module not in done:
                    self._record(recorder, out, plan.result)
                    if out.run_id is not None:
                        recorder.flush()
                return
            wanted = [c.label for c in plan if selection.wanted(c.label)]
            out.matched += len(wanted)
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
                    observer=_Tell(sampler, self.events),
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
                    result = sampler.annotate(run)
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
                if self._traces:
                    one = self._traces.attach(one)
                self._record(recorder, out, one, shown=k == 1)
        if out.run_id is not None:  # the recorder opens with the first result
            recorder.flush()
            if self._traces is not None:  # the profiles' files, beside their results
                self._traces.save(self.store, out.run_id, recorder.spooled_to)

    def _record(
        self,
        recorder: MetricsRecorder,
        out: CommitOutcome,
        result: ResultRecord,
        *,
        shown: bool = False,
    ) -> None:
        out.results.append(result)
        if not shown:
            self.events.case_finished(result)
        if self.options.quick:
            return  # a check that benches run: one sample is no measurement
        if out.run_id is None:
            recorder.open()
            out.run_id = recorder.run_id
        recorder.add(result)

    @property
    def environment(self) -> dict[str, Any] | None:
        """The workers' environment once probed (None before the first commit)."""
        return self._environment

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

    def _setup(self, tree: Path) -> ResultRecord | None:
        """Run --setup in the worktree; a failure becomes a failed result of the commit."""
        if self.options.setup is None:
            return None
        started = utcnow()
        t0 = time.perf_counter()
        done = subprocess.run(  # noqa: S602 - the user's own setup command, run as given
            self.options.setup,
            shell=True,
            cwd=tree,
            env=bench_environment(os.environ, self.options.pass_env),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return None
        tail = storable((done.stdout + done.stderr)[-SETUP_TAIL_CHARS:])
        return ResultRecord(
            case=CaseKey.of(SETUP_CASE),
            status="failed",
            error=f"setup command exited with {done.returncode}:\n{tail}",
            duration_s=time.perf_counter() - t0,
            started_at=started,
        )


def merge_processes(results: Sequence[ResultRecord]) -> ResultRecord:
    """One case's results from k worker processes as one result: each metric's samples
    concatenated in process order, each sample tagged with its process (0, 1, ...), and
    the summary recomputed. A process that did not finish ok makes the result that
    status, with the process named in the error (what it measured is not split off)."""
    first = results[0]
    for i, r in enumerate(results):
        if r.status != "ok":
            named = r.error and r.status != "skipped"
            return replace(
                r,
                error=f"process {i + 1} of {len(results)}: {r.error}" if named else r.error,
                duration_s=_total(results),
                started_at=first.started_at,
            )
    metrics = []
    for m in first.metrics:
        same = [x for r in results for x in r.metrics if x.name == m.name]
        if len(same) != len(results):
            continue  # not measured in every process: not comparable across them
        if all(x.samples is not None for x in same):
            samples = [s for x in same for s in (x.samples or ())]
            processes = [i for i, x in enumerate(same) for _ in x.samples or ()]
            if samples:
                metrics.append(
                    MetricRecord.from_samples(
                        m.name,
                        samples,
                        unit=m.unit,
                        direction=m.direction,
                        properties=m.properties,
                        processes=processes,
                    )
                )
                continue
        metrics.append(_merged_summary(same))
    return replace(
        first,
        duration_s=_total(results),
        metrics=tuple(metrics),
        device_samples=tuple(s for r in results for s in r.device_samples),
    )


def _total(results: Sequence[ResultRecord]) -> float | None:
    durations = [r.duration_s for r in results if r.duration_s is not None]
    return sum(durations) if durations else None


def _merged_summary(same: Sequence[MetricRecord]) -> MetricRecord:
    """A metric kept without samples (a sampler's summary): the median of the processes'
    medians, the extremes of their extremes, nothing claimed about spread."""
    first = same[0]
    medians = [x.median for x in same if x.median is not None]
    means = [x.mean for x in same if x.mean is not None]
    lows = [x.min for x in same if x.min is not None]
    highs = [x.max for x in same if x.max is not None]
    return MetricRecord(
        name=first.name,
        unit=first.unit,
        direction=first.direction,
        n=sum(x.n for x in same),
        mean=sum(means) / len(means) if len(means) == len(same) else None,
        median=Stats.of(medians).median if medians else None,
        min=min(lows) if lows else None,
        max=max(highs) if highs else None,
        properties=first.properties,
    )


def _is_module_file(path: str | None) -> bool:
    return path is not None and path.endswith(".py")


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
