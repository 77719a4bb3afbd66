"""What a worker may say next, given what it said so far (model/wire.py's events).

The worker runs bench code, and bench code can write to the result pipe: the worker
hides it (harness/worker.py), but code in the same process can always find it. So the
runner believes a worker only within the conversation it asked for:

- a running worker (`python -m commitbench.worker MODULE`): the environment if asked,
  then one `plan` (none of the cases it was told to skip) or one `error`; then, case by
  case, `start` of a planned case it has not started, and a `result` for exactly that
  case; a `calibration` at its start (after the plan, before the first case) and one at
  its end (after the last result: no case runs, nothing is sent after it);
- a listing worker (`--list MODULE...`): the environment if asked, then one `plan` or
  `error` for each module asked about.

Anything else (a result for a sibling, a second plan, a start inside a case, an event
nobody asked for) is a `ProtocolError`: WorkerProcess kills the worker and the case it
was in fails with the message (supervision.py), and the module goes on in a fresh
worker. A bench can still lie about its own case; it cannot record another's, or record
one twice. Pure: tested with plain events (tests/test_protocol.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from commitbench.model import wire
from commitbench.model.cases import CaseKey
from commitbench.model.text import printable


class ProtocolError(Exception):
    """The worker said something it may not say now."""


def _id(case: CaseKey) -> str:
    return printable(case.label)


@dataclass
class Conversation:
    """The state of one worker's conversation; `take` each event in order."""

    listing: Sequence[str] | None = None  # modules asked about (--list); None: running
    environment: bool = False  # the environment was asked for (--environment)
    skip: frozenset[str] = frozenset()  # labels the worker was told not to run
    plan: tuple[CaseKey, ...] | None = None
    current: CaseKey | None = None
    failed: bool = False  # it sent its `error` (the module did not import)
    started: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)  # listing: modules answered
    probed: bool = False
    calibrated: dict[str, float] = field(default_factory=dict)  # at -> ms
    calibration_device: str | None = None

    @property
    def planned(self) -> bool:
        """Past its start-up (the imports): its plan or its error came."""
        return self.plan is not None or self.failed

    def take(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "environment" and self.environment and not self.probed:
            if self.planned or self.answered:
                raise ProtocolError("the environment after its plan")
            self.probed = True
        elif self.listing is not None:
            self._listing(kind, event)
        elif kind == "plan":
            self._plan(event)
        elif kind == "error" and not self.planned:
            self.failed = True
        elif kind == "calibration" and self.plan is not None:
            self._calibration(event)
        elif "end" in self.calibrated:
            raise ProtocolError(f"an unexpected {kind!r} event after its end calibration")
        elif kind == "start":
            self._start(wire.case_from_json(event["case"]))
        elif kind == "result":
            self._result(wire.case_from_json(event["result"]["case"]))
        else:
            raise ProtocolError(f"an unexpected {kind!r} event{self._where()}")

    def _where(self) -> str:
        return f" while {_id(self.current)} was running" if self.current else ""

    def _listing(self, kind: str, event: dict[str, Any]) -> None:
        module = event.get("module")
        asked = self.listing or ()
        if kind not in ("plan", "error") or module not in asked or module in self.answered:
            raise ProtocolError(f"an unexpected {kind!r} event for module {module!r}")
        self.answered.add(str(module))
        if kind == "plan":
            self.plan = tuple(wire.case_from_json(c) for c in event["cases"])

    def _plan(self, event: dict[str, Any]) -> None:
        if self.planned:
            raise ProtocolError(f"a second plan{self._where()}")
        plan = tuple(wire.case_from_json(c) for c in event["cases"])
        labels = [c.label for c in plan]
        if len(set(labels)) != len(labels):
            raise ProtocolError("a plan that names a case twice")
        told = self.skip.intersection(labels)
        if told:
            raise ProtocolError(f"a plan with {printable(min(told))}, which it was told to skip")
        self.plan = plan

    def _calibration(self, event: dict[str, Any]) -> None:
        at, ms, device = event["at"], event["ms"], event["device"]
        if at not in ("start", "end") or at in self.calibrated or self.current is not None:
            raise ProtocolError(f"an unexpected {at!r} calibration{self._where()}")
        if at == "start" and self.started:
            raise ProtocolError("a start calibration after its first case")
        if not isinstance(ms, int | float) or isinstance(ms, bool) or not 0 < ms < math.inf:
            raise ProtocolError(f"a calibration of {ms!r} ms")
        if device not in ("cuda", "cpu") or device != (self.calibration_device or device):
            raise ProtocolError(f"a calibration on device {device!r}")
        self.calibrated[at] = float(ms)
        self.calibration_device = device

    def _start(self, case: CaseKey) -> None:
        if self.current is not None:
            raise ProtocolError(f"a start of {_id(case)}{self._where()}")
        if self.plan is None or case not in self.plan:
            raise ProtocolError(f"a start of {_id(case)}, which is not in its plan")
        if case.label in self.started:
            raise ProtocolError(f"a second start of {_id(case)}")
        self.started.add(case.label)
        self.current = case

    def _result(self, case: CaseKey) -> None:
        if self.current is None:
            raise ProtocolError(f"a result for {_id(case)} while no case was running")
        if case != self.current:
            raise ProtocolError(f"a result for {_id(case)}{self._where()}")
        self.current = None
