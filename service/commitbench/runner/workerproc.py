"""One worker process (`python -m commitbench.worker ...`), watched from start to end.

    with WorkerProcess(command, timeout_s=600, cwd=tree, env=env) as worker:
        for event in worker.events():     # wire.py events, one per JSON line
            ...
    end = worker.end(done)                # what it did: supervision.decide takes it

The worker writes its events to a pipe it is given with `--result-fd` (its stdout and
stderr go to a temporary file, whose tail ends up in the messages of a dead worker).
Each event must fit the conversation (runner/protocol.py: a result only for the case
the worker started, ...). No event for `timeout_s` seconds (`startup_s`, if longer,
until its plan: the interpreter and the bench module's imports are no case), or an
event that is not one or does not fit, and the worker's process group is killed with
SIGKILL; the group, because a bench may start processes of its own (torchrun, a compile
server). The events end when the worker closes its end of the pipe or when the worker
process exits (a pidfd): a child it forked may hold the pipe open for much longer.

No worker outlives its supervisor:
- leaving the `with` block, by the end of the events, an exception or a caller that
  stops early, kills the group;
- a runner killed outright (SIGKILL, the OOM killer) cannot, so each worker has a
  watchdog, `/bin/sh` blocked reading a pipe whose only writer is this process, outside
  the worker's tree (the device sampler does not see it) and its group: at end of file
  without the line we write when we are done, the kernel closed the pipe because we
  died, and it kills the worker's process group. The worker also asks the kernel for
  SIGKILL when the thread that started it ends (PR_SET_PDEATHSIG, harness/worker.py):
  the thread that enters the `with` block waits for the worker in it, so while the
  worker lives that thread does.
A bench process that leaves the group (setsid, a daemon) escapes both; only a container
or cgroup would hold it (README, Reliability).
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from commitbench.model import wire
from commitbench.model.cases import CaseKey
from commitbench.model.records import RecordError, utcnow
from commitbench.runner.protocol import Conversation, ProtocolError
from commitbench.runner.supervision import WorkerEnd

OUTPUT_TAIL_CHARS = 4000
# Malformed events: the protocol is broken, and the worker is killed.
_BAD_EVENT = (ProtocolError, RecordError, KeyError, TypeError, ValueError)
# Reads a line; end of file first means the runner died: kill the worker's group ($1).
WATCHDOG = 'read -r _ || kill -KILL "-$1"'
# How often to look whether the worker still runs, where no pidfd tells us.
_POLL_S = 0.25
# A line longer than this is no event (a result with a million raw samples is ~20 MiB):
# the protocol is broken, before the runner's memory is.
MAX_LINE_BYTES = 256 * 2**20
# What is read from the pipe after the worker exited: what it wrote fits in the pipe
# (at most pipe-max-size, 1 MiB by default); more comes from a child still writing.
_DRAIN_BYTES = 16 * 2**20


def oom_kills() -> int | None:
    """The kernel's count of OOM kills since boot (/proc/vmstat), None where unreadable."""
    try:
        with open("/proc/vmstat", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class WorkerProcess:
    """A worker process and what it told us; a context manager that kills it on exit."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        timeout_s: float,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        startup_s: float = 0.0,
        conversation: Conversation | None = None,
    ) -> None:
        self.command = list(command)
        self.timeout_s = timeout_s
        self.startup_s = startup_s
        self.conversation = conversation or Conversation()
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.pid: int | None = None
        self.plan: tuple[CaseKey, ...] | None = None
        self.current: CaseKey | None = None
        self.current_since = 0.0  # monotonic time the current case started
        self.current_at: datetime | None = None
        self.results = 0
        self.error: str | None = None
        self.environment: dict[str, Any] | None = None
        self.protocol_error: str | None = None
        self.start_error: str | None = None
        self.timed_out = False
        self.returncode: int | None = None
        self.output = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._read_fd: int | None = None
        self._exit_fd: int | None = None  # a pidfd: readable once the worker exited
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None  # the watchdog's pipe, our end
        self._deadline = 0.0
        self._silence = 0.0  # the silence the deadline allows
        self._oom_before: int | None = None
        self._oom_after: int | None = None

    # -- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> WorkerProcess:
        self._oom_before = oom_kills()
        self._log = tempfile.TemporaryFile()  # closed in __exit__
        read_fd, write_fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [*self.command, "--result-fd", str(write_fd), "--supervisor", str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                pass_fds=(write_fd,),
                cwd=self.cwd,
                env=self.env,
                start_new_session=True,  # its own process group: killed as a whole
            )
        except OSError as err:  # no such interpreter, not executable, no such cwd
            self.start_error = f"{self.command[0]}: {err.strerror or err}"
            os.close(read_fd)
        else:
            self.pid = self._proc.pid
            self._read_fd = read_fd
            self._watch(self._proc.pid)
        finally:
            os.close(write_fd)
        self._wait_for_event()
        return self

    def _watch(self, pid: int) -> None:
        """Start the worker's watchdog, and a pidfd that tells when the worker exits."""
        with contextlib.suppress(AttributeError, OSError):  # not Linux >= 5.3: polled
            self._exit_fd = os.pidfd_open(pid)
        try:
            read_end, self._lifeline = os.pipe()
        except OSError:  # out of descriptors: PR_SET_PDEATHSIG alone
            return
        try:
            self._watchdog = subprocess.Popen(
                ["/bin/sh", "-c", WATCHDOG, "commitbench-watchdog", str(pid)],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # not killed with ours by a Ctrl-C
            )
        except OSError:  # no /bin/sh: PR_SET_PDEATHSIG alone
            os.close(self._lifeline)
            self._lifeline = None
        finally:
            os.close(read_end)

    def _stand_down(self) -> None:
        """Tell the watchdog we are done (a line, then end of file), and reap it."""
        if self._lifeline is not None:
            with contextlib.suppress(OSError):  # it died: nothing to tell
                os.write(self._lifeline, b"done\n")
            os.close(self._lifeline)
            self._lifeline = None
        if self._watchdog is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=5)
            self._watchdog = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._read_fd is not None:  # a worker still writing gets EPIPE, not a hang
                os.close(self._read_fd)
                self._read_fd = None
            if self._proc is not None:
                if exc_type is not None:
                    self.kill()  # the caller stopped early or something raised
                self._wait(self._proc)
        finally:
            self._stand_down()  # the group is dead (or was never started) by now
            if self._exit_fd is not None:
                os.close(self._exit_fd)
                self._exit_fd = None
            if self._log is not None:
                self.output = _tail(self._log)
                self._log.close()
                self._log = None
            self._oom_after = oom_kills()

    def kill(self) -> None:
        """SIGKILL to the worker's whole process group."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def _wait(self, proc: subprocess.Popen[bytes]) -> None:
        """Its exit status, within what is left of its time (at least a second)."""
        try:
            left = max(1.0, self._deadline - time.monotonic())
            self.returncode = proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.kill()
            self.returncode = proc.wait()
        finally:
            # A bench's own children may outlive the worker in its group: not past here.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    # -- events --------------------------------------------------------------------------

    def _wait_for_event(self) -> None:
        """The next event is due within timeout_s, or startup_s (if longer) while the
        worker has not got past its imports (its plan)."""
        starting = not self.conversation.planned or self.conversation.listing is not None
        self._silence = max(self.timeout_s, self.startup_s) if starting else self.timeout_s
        self._deadline = time.monotonic() + self._silence

    def events(self) -> Iterator[dict[str, Any]]:
        """Its events as they come, until it closes its end of the pipe or exits, breaks
        the protocol or stays silent too long (then it is killed)."""
        if self._read_fd is None:
            return
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self._read_fd, selectors.EVENT_READ, "pipe")
            if self._exit_fd is not None:
                sel.register(self._exit_fd, selectors.EVENT_READ, "exit")
            while True:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    self.timed_out = True
                    self.kill()
                    return
                polled = self._exit_fd is None
                ready = sel.select(timeout=min(left, _POLL_S) if polled else left)
                exited = self._exited(ready)
                # What the worker wrote before it exited is in the pipe: read all of it.
                chunk = self._read_all() if exited else self._read_some(ready)
                if chunk is None:
                    return  # the worker closed its end: it is exiting
                buffer += chunk
                if len(buffer) > MAX_LINE_BYTES and b"\n" not in buffer:
                    self.protocol_error = f"a line longer than {MAX_LINE_BYTES >> 20} MiB"
                    self.kill()
                    return
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        event = self._track(wire.decode(line))
                    except _BAD_EVENT as err:
                        self.protocol_error = str(err)
                        self.kill()
                        return
                    self._wait_for_event()
                    yield event
                if exited:
                    return  # a child of the worker may hold the pipe: not our business

    def _exited(self, ready: list[tuple[selectors.SelectorKey, int]]) -> bool:
        if self._exit_fd is not None:
            return any(key.data == "exit" for key, _ in ready)
        return self._proc is not None and self._proc.poll() is not None

    def _read_some(self, ready: list[tuple[selectors.SelectorKey, int]]) -> bytes | None:
        """What is in the pipe now (b"" when nothing is); None at end of file."""
        if not ready or self._read_fd is None:
            return b""
        return os.read(self._read_fd, 1 << 16) or None

    def _read_all(self) -> bytes:
        """Everything the pipe holds now, without waiting for more."""
        assert self._read_fd is not None  # noqa: S101 - events() checked
        data = b""
        while len(data) < _DRAIN_BYTES and select.select([self._read_fd], [], [], 0)[0]:
            chunk = os.read(self._read_fd, 1 << 16)
            if not chunk:
                break
            data += chunk
        return data

    def _track(self, event: dict[str, Any]) -> dict[str, Any]:
        """Check one event against the conversation, and note what it tells us."""
        self.conversation.take(event)  # ProtocolError when it does not fit
        kind = event["event"]
        if kind == "start":
            self.current = self.conversation.current
            self.current_since = time.monotonic()
            self.current_at = utcnow()  # our clock: the worker's `time` is its word
        elif kind == "result":
            self.current = None
            self.results += 1
        elif kind == "plan":
            self.plan = self.conversation.plan
        elif kind == "error":
            self.error = str(event["error"])
        elif kind == "environment":
            self.environment = dict(event["environment"])
        return event

    def end(self, done: frozenset[str] = frozenset()) -> WorkerEnd:
        """What it did, for supervision.decide; `done`: the labels not to run again."""
        return WorkerEnd(
            plan=self.plan,
            done=done,
            current=self.current,
            results=self.results,
            returncode=self.returncode,
            timed_out=self.timed_out,
            protocol_error=self.protocol_error,
            error=self.error,
            start_error=self.start_error,
            silence_s=self._silence,
            oom_before=self._oom_before,
            oom_after=self._oom_after,
            output=self.output,
        )


def _tail(log: IO[bytes]) -> str:
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - OUTPUT_TAIL_CHARS))
    return log.read().decode("utf-8", "replace")
