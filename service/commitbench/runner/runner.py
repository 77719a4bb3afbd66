"""The runner: commits x bench modules, each commit in its own worktree, each module in
worker processes, everything recorded through MetricsRecorder.

The orchestrating process never imports a bench or torch: modules are found by file
name, cases are listed and measured by workers with the worktree on PYTHONPATH, and the
environment is probed by a worker too. Work already recorded for (repository, commit,
case, machine, profile) is skipped unless `force`; a commit with nothing left to do
records no run at all.
"""

from __future__ import annotations

import fnmatch
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from commitbench.errors import CommitbenchError
from commitbench.harness import discovery
from commitbench.model.records import (
    FAILED_STATUSES,
    CaseKey,
    CommitInfo,
    MachineInfo,
    RecordedKey,
    ResultRecord,
    RunHeader,
    RunInfo,
    utcnow,
)
from commitbench.runner import machine
from commitbench.runner.launcher import (
    CaseRun,
    WorkerOptions,
    list_cases,
    run_module,
    worker_environment,
)
from commitbench.runner.recorder import MetricsRecorder
from commitbench.runner.sampling.sampler import DeviceSampler
from commitbench.runner.vcs import Repository, RevSpec
from commitbench.store import Store

# Statuses that make `run` exit 1 (records.FAILED_STATUSES: out of memory is not one).
BROKEN = FAILED_STATUSES
SETUP_CASE = "commitbench.setup"
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
    retry_failed: bool = False  # measure again the cases whose latest result failed
    branch: str | None = None
    trigger: str = "manual"
    isolate: str = "module"
    sample_interval_s: float = 0.1
    quick: bool = False  # each timed loop once, nothing recorded (asv's --quick)
    cases: frozenset[str] | None = None  # exactly these case ids (check's confirmation)


@dataclass
class CommitOutcome:
    commit: CommitInfo
    run_id: uuid.UUID | None = None  # None: nothing was left to measure
    started_at: datetime = field(default_factory=utcnow)
    results: list[ResultRecord] = field(default_factory=list)
    already_recorded: int = 0  # selected cases recorded before, so not measured again
    recorded_failed: int = 0  # of those, how many failed, timed out or crashed
    matched: int = 0  # cases that --filter selected (counted only with a filter)
    spooled_to: Path | None = None


class Events(Protocol):
    """What the runner tells its display (cli/progress.py)."""

    def plan(self, commits: Sequence[str]) -> None: ...

    def commit_started(self, index: int, commit: CommitInfo) -> None: ...

    def case_started(self, label: str) -> None: ...

    def case_finished(self, result: ResultRecord) -> None: ...

    def commit_finished(self, outcome: CommitOutcome) -> None: ...


def builtin_benches() -> Path:
    return Path(str(resources.files("commitbench.benches")))


def matches(label: str, pattern: str | None) -> bool:
    """A glob when the pattern has wildcards, else a substring of the case id."""
    if pattern is None:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(label, pattern)
    return pattern in label


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
        self.host: MachineInfo | None = None  # known once run() starts
        self.profile: str | None = None

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
        self.events.plan(shas)
        outcomes = []
        for index, sha in enumerate(shas):
            commit = self.repo.commit_info(sha)
            self.events.commit_started(index, commit)
            outcome = CommitOutcome(commit)
            outcomes.append(outcome)
            with self.repo.worktree(sha) as tree:
                self._commit(tree, commit, host, profile, outcome)
            self.events.commit_finished(outcome)
        return outcomes

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

    def _commit(
        self, tree: Path, commit: CommitInfo, host: MachineInfo, profile: str, out: CommitOutcome
    ) -> None:
        found = self._bench_dir(tree)
        if found is None:
            return  # the bench directory does not exist yet at this commit
        benches, modules = found
        options = WorkerOptions(
            profile=profile,
            timeout_s=self.options.timeout_s,
            isolate=self.options.isolate,
            pythonpath=self._pythonpath(tree, benches),
            cwd=tree,
            quick=self.options.quick,
        )
        setup_failure = self._setup(tree)
        header = RunHeader(
            run=RunInfo(
                id=uuid.uuid4(),
                started_at=utcnow(),
                trigger=self.options.trigger,
                profile=profile,
                branch=self.options.branch,
                environment={} if self.options.quick else self._env(options),
            ),
            commit=commit,
            machine=host,
        )
        fresh = self.options.force or self.options.quick
        recorded = {} if fresh else self.store.recorded(RecordedKey.of(header))
        mine = [s for label, s in recorded.items() if self._selected(label, modules)]
        out.already_recorded = len(mine)
        out.recorded_failed = sum(s in FAILED_STATUSES for s in mine)
        if self.options.retry_failed:  # measured again, so no longer "recorded before"
            out.already_recorded -= out.recorded_failed
            out.recorded_failed = 0
            recorded = {k: s for k, s in recorded.items() if s not in FAILED_STATUSES}
        done = set(recorded)
        recorder = MetricsRecorder(self.store, header, spool=self.spool)
        interrupted = True
        try:
            with self._sampler_factory(self.options.sample_interval_s) as sampler:
                if setup_failure is not None:
                    self._record(recorder, out, setup_failure)
                else:
                    for module in modules:
                        self._module(module, options, sampler, recorder, done, out)
                if out.run_id is not None:
                    recorder.add_run_samples(sampler.take_untagged())
            interrupted = False
        finally:
            # Also on Ctrl-C or an error: what was measured is flushed, and the run is
            # closed as interrupted so a later run resumes with the missing cases.
            if out.run_id is not None:
                recorder.close(interrupted=interrupted)
                out.spooled_to = recorder.spooled_to

    def _module(
        self,
        module: str,
        options: WorkerOptions,
        sampler: DeviceSampler,
        recorder: MetricsRecorder,
        done: set[str],
        out: CommitOutcome,
    ) -> None:
        only: list[str] = sorted(self.options.cases or ())
        if self.options.filter is not None:
            plan = list_cases(module, options)
            if isinstance(plan, CaseRun):
                if module not in done:
                    self._record(recorder, out, plan.result)
                    if out.run_id is not None:
                        recorder.flush()
                return
            only = [
                c.label
                for c in plan
                if matches(c.label, self.options.filter)
                and (self.options.cases is None or c.label in self.options.cases)
            ]
            out.matched += len(only)
            if not only:
                return
        skip = sorted(done)
        runs = run_module(
            module, options, observer=_Tell(sampler, self.events), only=only, skip=skip
        )
        for run in runs:
            if run.result.case.label in done:
                continue  # a module that fails to import is reported once per commit
            self._record(recorder, out, sampler.annotate(run))
        if out.run_id is not None:  # the recorder opens with the first result
            recorder.flush()

    def _selected(self, label: str, modules: Sequence[str]) -> bool:
        """Whether a recorded case is one this run selects: of one of `modules` (its
        function's dotted name starts with the module's, or it is the module's own import
        failure), and matching --filter and `cases`."""
        name = label.split("[", 1)[0]
        if not any(name == m or name.startswith(f"{m}.") for m in modules):
            return False
        if self.options.cases is not None and label not in self.options.cases:
            return False
        return matches(label, self.options.filter)

    def _record(self, recorder: MetricsRecorder, out: CommitOutcome, result: ResultRecord) -> None:
        out.results.append(result)
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

    def _env(self, options: WorkerOptions) -> dict[str, Any]:
        # The worker's view (the worktree's interpreter and packages); once per
        # invocation, or per commit when a setup command may change what is installed.
        if self._environment is None or self.options.setup is not None:
            self._environment = {**machine.environment(), **worker_environment(options)}
        return self._environment

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
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return None
        tail = (done.stdout + done.stderr)[-SETUP_TAIL_CHARS:]
        return ResultRecord(
            case=CaseKey.of(SETUP_CASE),
            status="failed",
            error=f"setup command exited with {done.returncode}:\n{tail}",
            duration_s=time.perf_counter() - t0,
            started_at=started,
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
