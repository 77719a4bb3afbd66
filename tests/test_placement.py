"""Where a worker runs (harness/placement.py, --affinity): real workers pinned by the
kernel, the CPU read from /proc, and both kept with each result."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from commitbench.harness import placement
from commitbench.model import cpus, state
from commitbench.runner.launcher import WorkerOptions, run_module

WHERE = """
import os

import commitbench as cb


@cb.bench
def where(ctx):
    allowed = sorted(os.sched_getaffinity(0))
    ctx.record("first_allowed_cpu", float(allowed[0]), unit="cpu", better="higher")
    ctx.record("allowed_cpus", float(len(allowed)), unit="cpus", better="higher")
    ctx.time("spin", lambda: sum(i * i for i in range(2_000)), warmup=0, repeat=5)
"""


def _stat_line(name: str, processor: int) -> str:
    """A /proc/<pid>/stat line: pid, (name), then fields 3..52 where field 39 is the CPU."""
    fields = ["S", *[str(n) for n in range(4, 39)], str(processor), *["0"] * 13]
    return f"4242 ({name}) {' '.join(fields)}\n"


def test_the_cpu_is_read_after_the_last_parenthesis_of_the_name(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(_stat_line("py) 1 2 (x", 7))
    assert placement.current_cpu(str(stat)) == 7
    stat.write_text("4242 (short) S 1\n")
    assert placement.current_cpu(str(stat)) is None
    assert placement.current_cpu(str(tmp_path / "missing")) is None
    # And this process's own: one of the CPUs it may run on.
    assert placement.current_cpu() in os.sched_getaffinity(0)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs to pin to one")
def test_a_pinned_worker_and_what_it_starts_run_only_on_the_cpus_given(tmp_path: Path) -> None:
    (tmp_path / "placed.py").write_text(textwrap.dedent(WHERE))
    last = max(os.sched_getaffinity(0))
    pinned = WorkerOptions(pythonpath=(tmp_path,), timeout_s=60, affinity=frozenset({last}))
    (run,) = list(run_module("placed", pinned))
    got = {m.name: m for m in run.result.metrics}
    assert run.result.status == "ok", run.result.error
    assert (got["first_allowed_cpu"].samples, got["allowed_cpus"].samples) == ((last,), (1,))
    around = got[state.CALIBRATION_CASE].properties
    assert (around["cpu"], around["cpus"]) == (last, str(last))

    free = WorkerOptions(pythonpath=(tmp_path,), timeout_s=60)
    (run,) = list(run_module("placed", free))
    got = {m.name: m for m in run.result.metrics}
    everything = os.sched_getaffinity(0)
    assert got["allowed_cpus"].samples == (len(everything),)
    around = got[state.CALIBRATION_CASE].properties
    assert around["cpu"] in everything
    assert around["cpus"] == cpus.as_text(everything)
