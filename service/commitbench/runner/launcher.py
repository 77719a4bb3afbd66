"""Runner side of the worker: start `python -m commitbench.worker`, read its events,
enforce the timeout, classify a worker that dies, and keep going with the other cases.

`run_module` yields one `CaseRun` per case. A worker that dies in a case is replaced by
a new one that skips the cases already done, so one bad case costs only itself:

- `timeout`: no result `timeout_s` after the case started; the worker's process group is
  killed with SIGKILL.
- `oom`: reported by the worker (MemoryError, CUDA out of memory), or the worker died of
  SIGKILL that we did not send while the kernel's `oom_kill` counter (/proc/vmstat) rose.
  Where that counter cannot be read, an unexplained SIGKILL is taken to be the OOM killer,
  its usual sender on a benchmark host.
- `crashed`: any other signal, or the process exited mid-case (`os._exit`, abort).
- `failed`: reported by the worker (an exception, with its traceback), or the module
  could not be imported (then the cases are unknown and one result named after the
  module is failed).

The tail of the worker's stdout/stderr is appended to the error of a dead worker.

How the runner wires a module's worker, the sampler and the recorder together:

    with DeviceSampler.default(interval=0.1) as sampler:
        for run in run_module("benches.matmul", WorkerOptions(profile="full"), observer=sampler):
            recorder.add(sampler.annotate(run))   # + device samples and their summaries
        recorder.add_run_samples(sampler.take_untagged())
        recorder.flush()
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Protocol

from commitbench.model import wire
from commitbench.model.records import PROFILES, CaseKey, RecordError, ResultRecord, Window

OUTPUT_TAIL_CHARS = 4000


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
    env: Mapping[str, str] | None = None  # None: this process's environment
    python: str = sys.executable
    quick: bool = False  # each ctx.time once, no warm-up (checks that benches work)

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile {self.profile!r} is not one of {PROFILES}")
        if self.isolate not in ("module", "case"):
            raise ValueError(f"isolate {self.isolate!r} is not module or case")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")


@dataclass(frozen=True)
class CaseRun:
    """One case's result and the wall-clock windows its timed loops ran in."""

    result: ResultRecord
    windows: tuple[Window, ...] = ()
    pid: int | None = None


@dataclass
class _Session:
    """What one worker process did before it ended."""

    pid: int
    plan: list[CaseKey] | None = None
    error: str | None = None
    current: CaseKey | None = None
    current_since: float = 0.0
    current_at: datetime | None = None
    results: int = 0
    timed_out: bool = False
    returncode: int | None = None
    output: str = ""
    protocol_error: str | None = None


def _oom_kills() -> int | None:
    try:
        with open("/proc/vmstat", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def classify(s: _Session, timeout_s: float, oom_before: int | None) -> tuple[str, str]:
    """Status and message for a worker that ended inside a case."""
    rc = s.returncode
    if s.protocol_error is not None:
        return "crashed", f"worker broke the result protocol: {s.protocol_error}"
    if s.timed_out:
        return "timeout", f"no result after {timeout_s:g} s; worker killed"
    if rc is not None and rc < 0:
        sig = signal.Signals(-rc)
        if sig == signal.SIGKILL:
            after = _oom_kills()
            if oom_before is None or after is None or after > oom_before:
                return "oom", "worker killed by SIGKILL (the kernel OOM killer)"
        return "crashed", f"worker killed by signal {sig.name}"
    return "crashed", f"worker exited with code {rc} during the case"


def _environ(options: WorkerOptions) -> dict[str, str]:
    env = dict(os.environ if options.env is None else options.env)
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
    module: str, options: WorkerOptions, fd: int, only: Sequence[str], skip: Sequence[str]
) -> list[str]:
    cmd = [options.python, "-m", "commitbench.worker", module, "--result-fd", str(fd)]
    cmd += ["--profile", options.profile, "--device", options.device]
    if options.quick:
        cmd.append("--quick")
    for label in only:
        cmd += ["--case", label]
    for label in skip:
        cmd += ["--skip", label]
    return cmd


def _read_tail(log: IO[bytes]) -> str:
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - OUTPUT_TAIL_CHARS))
    return log.read().decode("utf-8", "replace")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _worker(
    module: str,
    options: WorkerOptions,
    observer: WorkerObserver | None,
    *,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> Generator[tuple[_Session, dict[str, Any] | None], None, None]:
    """Run one worker; yield (session, event) per event, then (session, None) at its end."""
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryFile() as log:
        try:
            proc = subprocess.Popen(
                [*_command(module, options, write_fd, only, skip), *extra_args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                cwd=options.cwd,
                env=_environ(options),
                start_new_session=True,  # so a timeout kills the bench's own children too
            )
        finally:
            os.close(write_fd)
        session = _Session(pid=proc.pid)
        if observer is not None:
            observer.worker_started(proc.pid)
        deadline = time.monotonic() + options.timeout_s
        buffer = b""
        try:
            with (
                selectors.DefaultSelector() as sel,
                os.fdopen(read_fd, "rb", buffering=0) as pipe,
            ):
                sel.register(pipe, selectors.EVENT_READ)
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        session.timed_out = True
                        _kill(proc)
                        break
                    if not sel.select(timeout=left):
                        continue
                    chunk = pipe.read(1 << 16)
                    if not chunk:
                        break  # the worker closed its end: it is exiting
                    buffer += chunk
                    while b"\n" in buffer:
                        line, buffer = buffer.split(b"\n", 1)
                        try:
                            event = _track(session, wire.decode(line))
                        except (RecordError, KeyError, TypeError, ValueError) as err:
                            session.protocol_error = str(err)
                            _kill(proc)
                            break
                        deadline = time.monotonic() + options.timeout_s
                        yield session, event
                    if session.protocol_error is not None:
                        break
            try:
                session.returncode = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                session.timed_out = True
                _kill(proc)
                session.returncode = proc.wait()
        finally:
            if proc.poll() is None:  # the caller stopped early or something raised
                _kill(proc)
                proc.wait()
        session.output = _read_tail(log)
    yield session, None


def _track(session: _Session, event: dict[str, Any]) -> dict[str, Any]:
    """Update what we know of the worker from one of its events."""
    kind = event["event"]
    if kind == "start":
        session.current = wire.case_from_json(event["case"])
        session.current_since = time.monotonic()
        session.current_at = datetime.fromtimestamp(event["time"], timezone.utc)
    elif kind == "result":
        session.current = None
        session.results += 1
    elif kind == "plan":
        session.plan = [wire.case_from_json(c) for c in event["cases"]]
    elif kind == "error":
        session.error = str(event["error"])
    return event


def _dead(case: CaseKey, status: str, error: str, s: _Session) -> CaseRun:
    duration = max(0.0, time.monotonic() - s.current_since)
    return CaseRun(ResultRecord(case, status, error, duration, s.current_at), (), s.pid)


def _with_output(message: str, s: _Session) -> str:
    return f"{message}\n--- worker output (tail) ---\n{s.output}" if s.output.strip() else message


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


def list_cases(
    module: str, options: WorkerOptions | None = None, *, only: Sequence[str] = ()
) -> list[CaseKey] | CaseRun:
    """The module's cases for the profile, or a failed CaseRun when it does not import."""
    options = options or WorkerOptions()
    *_, (session, _) = _worker(module, options, None, only=only, extra_args=["--list"])
    if session.plan is not None and session.returncode == 0:
        return session.plan
    return _module_failure(module, session, options)


def _module_failure(module: str, s: _Session, options: WorkerOptions) -> CaseRun:
    if s.error is not None:
        message = s.error
    elif s.timed_out:
        message = f"importing the module took more than {options.timeout_s:g} s"
    else:
        message = f"worker ended with code {s.returncode} before listing its cases"
    return CaseRun(ResultRecord(CaseKey.of(module), "failed", _with_output(message, s)), (), s.pid)


def _decode_result(event: dict[str, Any]) -> ResultRecord:
    """The worker's result; a value the records refuse fails the case, not the run."""
    try:
        return wire.result_from_json(event["result"])
    except (RecordError, KeyError, TypeError, ValueError) as err:
        case = wire.case_from_json(event["result"]["case"])
        return ResultRecord(case, "failed", f"the worker's result is invalid: {err}")


def _supervise(
    module: str,
    options: WorkerOptions,
    observer: WorkerObserver | None,
    only: list[str],
    skip: list[str],
) -> Iterator[CaseRun]:
    done: list[str] = list(skip)  # the worker is told to skip these too
    plan: list[CaseKey] | None = None
    while True:
        oom_before = _oom_kills()
        session: _Session | None = None
        events = _worker(module, options, observer, only=only, skip=done)
        with contextlib.closing(events):  # a caller that stops early kills the worker now
            for session, event in events:
                if event is None:
                    break
                if event["event"] == "plan" and plan is None:
                    plan = session.plan
                elif event["event"] == "start" and observer is not None:
                    observer.case_started(wire.case_from_json(event["case"]))
                elif event["event"] == "result":
                    result = _decode_result(event)
                    done.append(result.case.label)
                    if observer is not None:
                        observer.case_finished(result.case)
                    yield CaseRun(result, wire.windows_from_json(event["windows"]), session.pid)
        assert session is not None  # noqa: S101 - _worker always yields a final session
        if session.current is not None:  # died inside a case
            status, message = classify(session, options.timeout_s, oom_before)
            case = session.current
            done.append(case.label)
            if observer is not None:
                observer.case_finished(case)
            yield _dead(case, status, _with_output(message, session), session)
            if plan is None or any(c.label not in done for c in plan):
                continue
            return
        if plan is None:
            yield _module_failure(module, session, options)
            return
        remaining = [c for c in plan if c.label not in done]
        if not remaining:
            return
        if session.error is not None or session.results == 0:
            # It died between cases without progress: another worker would do the same.
            message = session.error or f"worker ended with code {session.returncode}"
            status = "failed" if session.error is not None else "crashed"
            for case in remaining:
                yield CaseRun(
                    ResultRecord(case, status, _with_output(message, session)), (), session.pid
                )
            return


def worker_environment(options: WorkerOptions | None = None) -> dict[str, Any]:
    """Versions (python, torch, CUDA, cuDNN, triton, bitsandbytes) and GPUs (name, SM
    count, memory) as a worker sees them: the worktree's interpreter, not this one's."""
    options = options or WorkerOptions()
    done = subprocess.run(
        [options.python, "-m", "commitbench.worker", "--environment"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=options.cwd,
        env=_environ(options),
        timeout=options.timeout_s,
        check=False,
    )
    for line in done.stdout.splitlines():
        event = wire.decode(line)
        if event["event"] == "environment":
            env: dict[str, Any] = event["environment"]
            return env
    raise RuntimeError(
        f"worker --environment failed ({done.returncode}): {done.stderr.decode()[-500:]}"
    )
