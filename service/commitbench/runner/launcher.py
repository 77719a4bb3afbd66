"""Runner side of the worker: run a bench module's cases in worker processes and keep
going when one dies, so one bad case costs only itself.

`run_module` yields one `CaseRun` per case. Each worker is a `WorkerProcess`
(workerproc.py: starts `python -m commitbench.worker`, reads its events, enforces the
per-case timeout, kills its process group); when it ends, `supervision.decide` says what
its death means (the statuses `timeout`, `oom`, `crashed`, `failed` and their messages
are defined there) and whether a new worker starts for the cases left, skipping those
already done. `survey` lists the cases of every module (and probes the environment) in
one worker, so the runner knows what is left to measure before it measures.

How the runner wires a module's worker, the sampler and the recorder together:

    with DeviceSampler.default(interval=0.1) as sampler:
        for run in run_module("benches.matmul", WorkerOptions(profile="full"), observer=sampler):
            recorder.add(sampler.annotate(run))   # + device samples and their summaries
        recorder.add_run_samples(sampler.take_untagged())
        recorder.flush()
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from commitbench.model import cpus, sweep, wire
from commitbench.model.cases import CaseKey
from commitbench.model.records import PROFILES, RecordError, ResultRecord, Window
from commitbench.model.sweep import Overrides
from commitbench.model.text import storable
from commitbench.runner.environ import bench_environment
from commitbench.runner.nsys import Capture as NsysCapture
from commitbench.runner.protocol import Conversation
from commitbench.runner.supervision import Failure, decide, module_failure, no_answer
from commitbench.runner.workerproc import WorkerProcess, oom_kills

# Seconds a worker may take at least to get past its start-up, whatever the per-case
# timeout: the interpreter, the bench module's imports (torch: seconds, more on a busy
# machine), the environment probe. Not a case; a short --timeout must not fail them.
STARTUP_TIMEOUT_S = 120.0
# The name the tests know the kernel's OOM-kill counter by.
_oom_kills = oom_kills


class WorkerObserver(Protocol):
    """Told what the workers do; DeviceSampler implements it to tag its samples."""

    def worker_started(self, pid: int) -> None: ...

    def case_started(self, case: CaseKey) -> None: ...

    def case_finished(self, case: CaseKey) -> None: ...


@dataclass(frozen=True)
class WorkerOptions:
    profile: str = "smoke"
    timeout_s: float = 600.0
    isolate: str = "module"  # "module": one worker for all cases; "case": one per case
    device: str = "auto"
    pythonpath: tuple[Path, ...] = ()
    cwd: Path | None = None
    env: Mapping[str, str] | None = None  # None: this process's (scrubbed: environ.py)
    python: str = sys.executable
    quick: bool = False  # each ctx.time once, no warm-up (checks that benches work)
    pass_env: tuple[str, ...] = ()  # names bench code gets beyond the allow-list
    trace: int = 0  # profiled iterations after each case's timing (0: none)
    trace_dir: Path | None = None  # where workers write Chrome traces and snapshots
    nsys: NsysCapture | None = None  # measuring workers under nsys profile (--nsys)
    params: Overrides = ()  # the --param sweep, typed by each worker (model/sweep.py)
    affinity: frozenset[int] | None = None  # --affinity: the CPUs workers run on (None: any)

    def __post_init__(self) -> None:
        if self.affinity is not None and not self.affinity:
            raise ValueError("affinity must name at least one CPU")
        if self.profile not in PROFILES:
            raise ValueError(f"profile {self.profile!r} is not one of {PROFILES}")
        if self.isolate not in ("module", "case"):
            raise ValueError(f"isolate {self.isolate!r} is not module or case")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")


@dataclass
class ProcessState:
    """What a worker process said of itself: its calibration (harness/calibration.py)
    at its start and, once it has ended, at its end. Shared by the CaseRuns of that
    worker and filled as its events come: read it after run_module has moved past the
    worker's results (the runner does, at the end of the module)."""

    pid: int | None = None
    calibration_start_ms: float | None = None
    calibration_end_ms: float | None = None
    device: str | None = None


@dataclass(frozen=True)
class CaseRun:
    """One case's result, the wall-clock windows its timed loops ran in, and the worker
    process that ran it."""

    result: ResultRecord
    windows: tuple[Window, ...] = ()
    pid: int | None = None
    process: ProcessState | None = None


def _environ(options: WorkerOptions) -> dict[str, str]:
    """The worker's environment: the allow-list of runner/environ.py and the names
    passed, never the runner's secrets; PYTHONPATH built around the worktree."""
    env = bench_environment(os.environ if options.env is None else options.env, options.pass_env)
    # The worktree first, then wherever this commitbench lives, then what was there.
    # The folder holding the commitbench package (service/, or site-packages).
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [str(p) for p in options.pythonpath] + [package_root]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _command(
    options: WorkerOptions, *args: str, only: Sequence[str] = (), skip: Sequence[str] = ()
) -> list[str]:
    cmd = [options.python, "-m", "commitbench.worker", *args]
    cmd += ["--profile", options.profile, "--device", options.device]
    if options.quick:
        cmd.append("--quick")
    if options.affinity is not None:
        cmd += ["--affinity", cpus.as_text(options.affinity)]
    if options.params:
        cmd += ["--params", json.dumps(sweep.to_json(options.params))]
    if options.trace > 0:
        cmd += ["--trace", str(options.trace)]
        if options.trace_dir is not None:
            cmd += ["--trace-dir", str(options.trace_dir)]
    for label in only:
        cmd += ["--case", label]
    for label in skip:
        cmd += ["--skip", label]
    return cmd


def _process(
    options: WorkerOptions, command: list[str], conversation: Conversation
) -> WorkerProcess:
    return WorkerProcess(
        command,
        timeout_s=options.timeout_s,
        startup_s=STARTUP_TIMEOUT_S,
        cwd=options.cwd,
        env=_environ(options),
        conversation=conversation,
    )


def _failed(f: Failure, worker: WorkerProcess, *, dead: bool = False) -> CaseRun:
    """A result for a case (or module) that did not report its own."""
    if dead:  # it ran from its start event until the worker died
        duration = max(0.0, time.monotonic() - worker.current_since)
        result = ResultRecord(f.case, f.status, f.message, duration, worker.current_at)
    else:
        result = ResultRecord(f.case, f.status, f.message)
    return CaseRun(result, (), worker.pid)


def _decode_result(event: dict[str, Any]) -> ResultRecord:
    """The worker's result; a value the records refuse fails the case, not the run."""
    try:
        return wire.result_from_json(event["result"])
    except (RecordError, KeyError, TypeError, ValueError) as err:
        case = wire.case_from_json(event["result"]["case"])
        return ResultRecord(case, "failed", f"the worker's result is invalid: {err}")


def run_module(
    module: str,
    options: WorkerOptions | None = None,
    *,
    observer: WorkerObserver | None = None,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
) -> Iterator[CaseRun]:
    """Run the cases of `module` (all, or the labels in `only`, less those in `skip`) in
    worker processes."""
    options = options or WorkerOptions()
    if options.isolate == "case":
        plan = list_cases(module, options, only=only)
        if isinstance(plan, CaseRun):
            yield plan
            return
        for case in plan:
            if case.label not in skip:
                yield from _supervise(module, options, observer, only=[case.label], skip=[])
        return
    yield from _supervise(module, options, observer, only=list(only), skip=list(skip))


def _supervise(
    module: str,
    options: WorkerOptions,
    observer: WorkerObserver | None,
    only: list[str],
    skip: list[str],
) -> Iterator[CaseRun]:
    """Workers one after another until every case of the plan has a result."""
    done: list[str] = list(skip)  # each new worker is told to skip these too
    plan: tuple[CaseKey, ...] | None = None
    while True:
        command = _command(options, module, only=only, skip=done)
        if options.nsys is not None:
            command = options.nsys.wrap(module, command)
        talk = Conversation(skip=frozenset(done))
        with _process(options, command, talk) as worker:
            process = ProcessState(worker.pid)
            if observer is not None and worker.pid is not None:
                observer.worker_started(worker.pid)
            for event in worker.events():
                kind = event["event"]
                if kind == "start" and observer is not None:
                    observer.case_started(wire.case_from_json(event["case"]))
                elif kind == "calibration":  # the conversation checked it
                    _calibrated(process, event)
                elif kind == "result":
                    result = _decode_result(event)
                    done.append(result.case.label)
                    if observer is not None:
                        observer.case_finished(result.case)
                    windows = wire.windows_from_json(event["windows"])
                    yield CaseRun(result, windows, worker.pid, process)
        # The first worker's plan is the module's: later ones plan only what is left.
        plan = plan if plan is not None else worker.plan
        end = dataclasses.replace(worker.end(frozenset(done)), plan=plan)
        decision = decide(module, end, options.timeout_s)
        if decision.dead is not None:
            done.append(decision.dead.case.label)
            if observer is not None:
                observer.case_finished(decision.dead.case)
            yield _failed(decision.dead, worker, dead=True)
        for failure in decision.failed:
            yield _failed(failure, worker)
        if not decision.again:
            return


def _calibrated(process: ProcessState, event: dict[str, Any]) -> None:
    process.device = str(event["device"])
    if event["at"] == "start":
        process.calibration_start_ms = float(event["ms"])
    else:
        process.calibration_end_ms = float(event["ms"])


def list_cases(
    module: str, options: WorkerOptions | None = None, *, only: Sequence[str] = ()
) -> list[CaseKey] | CaseRun:
    """The module's cases for the profile, or a failed CaseRun when it does not import."""
    options = options or WorkerOptions()
    command = _command(options, "--list", module, only=only)
    with _process(options, command, Conversation(listing=(module,))) as worker:
        for _ in worker.events():
            pass
    if worker.plan is not None and worker.returncode == 0:
        return list(worker.plan)
    return _failed(module_failure(module, worker.end(), options.timeout_s), worker)


@dataclass(frozen=True)
class Survey:
    """What one listing worker found: each module's cases (or why it did not import),
    and the workers' environment when asked for. A module missing from `plans` was not
    reached: the worker died before it (`failure` says how). With a --param sweep,
    `benches` holds what each listed module's benches declare (harness/worker.py)."""

    plans: dict[str, list[CaseKey] | CaseRun] = field(default_factory=dict)
    benches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    environment: dict[str, Any] | None = None
    failure: str | None = None


def survey(
    modules: Sequence[str], options: WorkerOptions | None = None, *, environment: bool = False
) -> Survey:
    """List the cases of `modules` and, with `environment`, probe the versions and GPUs
    the workers see (`harness.environment.probe`), all in one worker process."""
    options = options or WorkerOptions()
    args = ["--list", *(["--environment"] if environment else []), *modules]
    plans: dict[str, list[CaseKey] | CaseRun] = {}
    benches: dict[str, list[dict[str, Any]]] = {}
    talk = Conversation(listing=tuple(modules), environment=environment)
    with _process(options, _command(options, *args), talk) as worker:
        for event in worker.events():
            name = str(event.get("module"))
            if event["event"] == "plan" and name in modules:
                plans[name] = [wire.case_from_json(c) for c in event["cases"]]
                benches[name] = list(event.get("benches") or ())
            elif event["event"] == "error" and name in modules:
                message = storable(str(event["error"]))
                plans[name] = CaseRun(ResultRecord(CaseKey.of(name), "failed", message))
    found = worker.environment if environment else None
    failure = None
    if len(plans) < len(modules) or (environment and found is None):
        failure = no_answer(worker.end(), options.timeout_s)
    return Survey(plans, benches, found, failure)


class WorkerError(Exception):
    """The worker interpreter did not start or did not answer (its message says how)."""


def worker_environment(options: WorkerOptions | None = None) -> dict[str, Any]:
    """Versions (python, torch, CUDA, cuDNN, triton, bitsandbytes, ...) and GPUs (name,
    SM count, memory) as a worker sees them: the worktree's interpreter, not this one's.
    WorkerError when the worker does not start or answer (within the case timeout, and
    at least STARTUP_TIMEOUT_S: not a case, and a cold torch import on a busy machine
    must not fail a short --timeout)."""
    options = options or WorkerOptions()
    found = survey((), options, environment=True)
    if found.environment is None:
        raise WorkerError(found.failure or "the worker sent no environment")
    return found.environment
