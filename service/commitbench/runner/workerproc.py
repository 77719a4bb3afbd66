"""One worker process (`python -m commitbench.worker ...`), watched from start to end.

    with WorkerProcess(command, timeout_s=600, cwd=tree, env=env) as worker:
        for event in worker.events():     # wire.py events, one per JSON line
            ...
    end = worker.end(done)                # what it did: supervision.decide takes it

The worker writes its events to a pipe it is given with `--result-fd` (its stdout and
stderr go to a temporary file, whose tail ends up in the messages of a dead worker).
No event for `timeout_s` seconds, or a line that is not an event, and the worker's
process group is killed with SIGKILL; the group, because a bench may start processes
of its own (torchrun, a compile server). Leaving the `with` block, by the end of the
events, an exception or a caller that stops early, kills the group too, so no worker
outlives its supervisor.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from commitbench.model import wire
from commitbench.model.records import CaseKey, RecordError
from commitbench.runner.supervision import WorkerEnd

OUTPUT_TAIL_CHARS = 4000
# Malformed events: the protocol is broken, and the worker is killed.
_BAD_EVENT = (RecordError, KeyError, TypeError, ValueError)


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
    ) -> None:
        self.command = list(command)
        self.timeout_s = timeout_s
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
        self._deadline = 0.0
        self._oom_before: int | None = None
        self._oom_after: int | None = None

    # -- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> WorkerProcess:
        self._oom_before = oom_kills()
        self._log = tempfile.TemporaryFile()  # closed in __exit__
        read_fd, write_fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [*self.command, "--result-fd", str(write_fd)],
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
        finally:
            os.close(write_fd)
        self._deadline = time.monotonic() + self.timeout_s
        return self

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

    def events(self) -> Iterator[dict[str, Any]]:
        """Its events as they come, until it closes its end of the pipe, breaks the
        protocol or stays silent for `timeout_s` seconds (then it is killed)."""
        if self._read_fd is None:
            return
        buffer = b""
        with selectors.DefaultSelector() as sel:
            sel.register(self._read_fd, selectors.EVENT_READ)
            while True:
                left = self._deadline - time.monotonic()
                if left <= 0:
                    self.timed_out = True
                    self.kill()
                    return
                if not sel.select(timeout=left):
                    continue
                chunk = os.read(self._read_fd, 1 << 16)
                if not chunk:
                    return  # the worker closed its end: it is exiting
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    try:
                        event = self._track(wire.decode(line))
                    except _BAD_EVENT as err:
                        self.protocol_error = str(err)
                        self.kill()
                        return
                    self._deadline = time.monotonic() + self.timeout_s
                    yield event

    def _track(self, event: dict[str, Any]) -> dict[str, Any]:
        """Update what we know of the worker from one of its events."""
        kind = event["event"]
        if kind == "start":
            self.current = wire.case_from_json(event["case"])
            self.current_since = time.monotonic()
            self.current_at = datetime.fromtimestamp(event["time"], timezone.utc)
        elif kind == "result":
            self.current = None
            self.results += 1
        elif kind == "plan":
            self.plan = tuple(wire.case_from_json(c) for c in event["cases"])
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
            oom_before=self._oom_before,
            oom_after=self._oom_after,
            output=self.output,
        )


def _tail(log: IO[bytes]) -> str:
    log.seek(0, os.SEEK_END)
    size = log.tell()
    log.seek(max(0, size - OUTPUT_TAIL_CHARS))
    return log.read().decode("utf-8", "replace")
