"""What a run is asked to do and what it reports: `RunOptions` (the choices of `run`,
`check`, `compare --measure`, `bisect` and the fleet worker), `CommitOutcome` (one
commit's results and what was skipped, spooled or dropped) and `Events` (what the
runner tells its display).

Plain values, separate from the Runner (runner.py) that takes the one and fills the
other: the commands build options and read outcomes, and RunnerLab (lab.py) measures
again with `dataclasses.replace` of the options.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from commitbench.model.records import FAILED_STATUSES, CommitInfo, ResultRecord, utcnow
from commitbench.model.sweep import Overrides
from commitbench.runner.vcs import RevSpec

# Statuses that make `run` exit 1 (records.FAILED_STATUSES: out of memory is not one).
BROKEN = FAILED_STATUSES


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
    affinity: frozenset[int] | None = None  # --affinity: the CPUs workers run on (model/cpus.py)

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
    # Measured here, but another run recorded them first: dropped (store/worklock.py).
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
