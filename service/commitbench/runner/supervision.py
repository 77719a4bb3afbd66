"""What to do when a worker process ends: a pure function of what the worker did.

`WorkerProcess` (runner/workerproc.py) watches a worker and describes its end as a
`WorkerEnd`; `decide` turns that into a `Decision`, with no process, clock or file in
sight, so every branch is tested with plain values (tests/runner/test_supervision.py):

- It died inside a case: that case gets a status and a message, and another worker
  starts if cases of its plan are left.
  - `timeout`: no event for `timeout_s` seconds; we killed its process group.
  - `oom`: it died of a SIGKILL we did not send while the kernel's `oom_kill` counter
    (/proc/vmstat) rose. Where the counter cannot be read, an unexplained SIGKILL is
    taken to be the OOM killer, its usual sender on a benchmark host.
  - `crashed`: any other signal, an exit (`os._exit`, abort), or a broken protocol.
- It ended between cases: when it made progress (sent a result), another worker starts
  for the cases left. Without progress another worker would do the same, so the cases
  left are failed now: `failed` with the module's error, `timeout` when we killed it
  waiting for its first case, else `crashed` with how it ended.
- It never sent a plan (the module did not import, the interpreter did not start):
  the cases are unknown, and one `failed` result named after the module says why.
- It broke the protocol (runner/protocol.py) with no case of its plan left (a second
  plan after a first one forged at import, a line after its last result): that too is
  one `failed` result named after the module, so a broken protocol is never silent.

Messages end with the tail of the worker's stdout and stderr when it printed anything.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from commitbench.model.cases import CaseKey
from commitbench.model.text import storable

OUTPUT_HEADING = "--- worker output (tail) ---"


@dataclass(frozen=True)
class WorkerEnd:
    """What one worker did before it ended, as WorkerProcess saw it."""

    plan: tuple[CaseKey, ...] | None = None  # None: it sent no plan
    done: frozenset[str] = frozenset()  # labels not to run again: results so far, skips
    current: CaseKey | None = None  # the case it had started and not finished
    results: int = 0  # results this worker sent
    returncode: int | None = None  # negative: the signal that killed it
    timed_out: bool = False  # we killed it: no event for timeout_s seconds
    protocol_error: str | None = None  # we killed it: it sent a line we cannot read
    error: str | None = None  # its `error` event (the module did not import)
    start_error: str | None = None  # it could not be started at all (OSError)
    silence_s: float | None = None  # the silence it was allowed last (timed_out: exceeded)
    oom_before: int | None = None  # the kernel's oom_kill counter before it started
    oom_after: int | None = None  # ... and after it ended
    output: str = ""  # the tail of its stdout and stderr


@dataclass(frozen=True)
class Failure:
    """A result to record for a case that did not report its own."""

    case: CaseKey
    status: str
    message: str


@dataclass(frozen=True)
class Decision:
    dead: Failure | None = None  # the case the worker died in
    failed: tuple[Failure, ...] = ()  # cases failed without running (or the module)
    again: bool = False  # start another worker for the cases of the plan not done


def with_output(message: str, output: str) -> str:
    """The message and the tail of the worker's output (a NUL a bench printed, or put in
    its error event, kept as an escape: model/text.py)."""
    return storable(f"{message}\n{OUTPUT_HEADING}\n{output}" if output.strip() else message)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _oom_killed(end: WorkerEnd) -> bool:
    """A SIGKILL we did not send, while the OOM killer's counter rose (or is unknown)."""
    if end.returncode != -signal.SIGKILL or end.timed_out or end.protocol_error is not None:
        return False
    if end.oom_before is None or end.oom_after is None:
        return True
    return end.oom_after > end.oom_before


def in_case(end: WorkerEnd, timeout_s: float) -> tuple[str, str]:
    """Status and message for a worker that ended inside a case."""
    rc = end.returncode
    if end.protocol_error is not None:
        return "crashed", f"worker broke the result protocol: {end.protocol_error}"
    if end.timed_out:
        return "timeout", f"no result after {timeout_s:g} s; worker killed"
    if _oom_killed(end):
        return "oom", "worker killed by SIGKILL (the kernel OOM killer)"
    if rc is not None and rc < 0:
        return "crashed", f"worker killed by signal {_signal_name(-rc)}"
    return "crashed", f"worker exited with code {rc} during the case"


def _waited(end: WorkerEnd, timeout_s: float) -> str:
    """The silence a worker we killed had exceeded (longer than timeout_s at start-up)."""
    return f"{end.silence_s if end.silence_s is not None else timeout_s:g} s"


def before_cases(end: WorkerEnd, timeout_s: float) -> tuple[str, str]:
    """Status and message for cases a worker ended without starting (no progress)."""
    rc = end.returncode
    if end.start_error is not None:
        return "failed", f"the worker could not start: {end.start_error}"
    if end.error is not None:
        return "failed", end.error
    if end.protocol_error is not None:
        return "crashed", f"worker broke the result protocol: {end.protocol_error}"
    if end.timed_out:
        return "timeout", f"no case started within {_waited(end, timeout_s)}; worker killed"
    if rc is not None and rc < 0:
        return "crashed", f"worker killed by signal {_signal_name(-rc)} before its next case"
    return "crashed", f"worker exited with code {rc} before its next case"


def module_failure(module: str, end: WorkerEnd, timeout_s: float) -> Failure:
    """One failed result named after a module whose cases are unknown."""
    rc = end.returncode
    if end.start_error is not None:
        message = f"the worker could not start: {end.start_error}"
    elif end.error is not None:
        message = end.error
    elif end.protocol_error is not None:
        message = f"worker broke the result protocol: {end.protocol_error}"
    elif end.timed_out:
        message = f"importing the module took more than {_waited(end, timeout_s)}"
    elif rc is not None and rc < 0:
        message = f"worker killed by signal {_signal_name(-rc)} before listing its cases"
    else:
        message = f"worker ended with code {rc} before listing its cases"
    return Failure(CaseKey.of(module), "failed", with_output(message, end.output))


def no_answer(end: WorkerEnd, timeout_s: float) -> str:
    """Why a worker asked to list modules or probe the environment did not answer."""
    rc = end.returncode
    if end.start_error is not None:
        message = f"the worker could not start: {end.start_error}"
    elif end.protocol_error is not None:
        message = f"worker broke the result protocol: {end.protocol_error}"
    elif end.timed_out:
        message = f"the worker sent nothing for {_waited(end, timeout_s)}; worker killed"
    elif rc is not None and rc < 0:
        message = f"worker killed by signal {_signal_name(-rc)} before answering"
    else:
        message = f"worker ended with code {rc} before answering"
    return with_output(message, end.output)


def decide(module: str, end: WorkerEnd, timeout_s: float) -> Decision:
    """What follows a worker's end: the case it died in, the cases to fail, another worker."""
    if end.current is not None:
        status, message = in_case(end, timeout_s)
        dead = Failure(end.current, status, with_output(message, end.output))
        done = end.done | {end.current.label}
        left = end.plan is None or any(c.label not in done for c in end.plan)
        return Decision(dead=dead, again=left)
    if end.plan is None:
        return Decision(failed=(module_failure(module, end, timeout_s),))
    remaining = [c for c in end.plan if c.label not in end.done]
    if not remaining:
        broke = end.protocol_error is not None
        return Decision(failed=(module_failure(module, end, timeout_s),)) if broke else Decision()
    if end.results > 0 and end.error is None:
        return Decision(again=True)  # it died between cases after progress: try again
    status, message = before_cases(end, timeout_s)
    text = with_output(message, end.output)
    return Decision(failed=tuple(Failure(c, status, text) for c in remaining))
