"""The machine's state, recorded with every result as metrics named `state.*`.

Two helpers of issue 13 meet here: the harness and the runner measure the state (a
calibration loop timed when each worker process starts and ends, load, CPU steal, CPU time
against wall time, GPU clocks and throttling, other processes on the GPU), and the
statistics read it (a process whose calibration differs from its peers is flagged; where the
calibration explains the spread between processes it is used as a covariate). Stored as
ordinary metrics, the state travels through every store, CSV, import and export unchanged;
it is context, never a verdict: compare, check, detect and bisect skip these names.

Each `state.*` metric holds one sample per worker process (its position in the samples is
the process's, as for every metric), unless its docstring below says otherwise.

Who measures what: harness/calibration.py the calibration, harness/timing.py the wall and
CPU time (the worker records WALL_PER_CPU), runner/sampling/state.py the rest from /proc
and the sampler's NVML ticks (SM_CLOCK has the lowest and highest reading as properties
`min_mhz`, `max_mhz`; THROTTLED the reasons seen). analysis/machinestate.py summarises
them for compare, report and Grafana; `commitbench doctor` reads them from its own loops.
"""

from __future__ import annotations

PREFIX = "state."

# Milliseconds of a fixed loop (tiny kernel launches on a GPU, a fixed CPU loop otherwise)
# timed when the worker process starts and when it ends.
CALIBRATION_START = "state.calibration_start_ms"
CALIBRATION_END = "state.calibration_end_ms"
# The same loop timed right before and right after each case, in the same process: the
# mean of the two. Issue 13 measured on an H200 that a process's launch path can change
# while it runs (start 7.2 ms, end 10.5 ms in one worker), so the figure next to the case
# is the one the statistics use where it is recorded (analysis/processes.calibrations).
CALIBRATION_CASE = "state.calibration_case_ms"
# One-minute load average over the case, and the share of CPU time stolen by a hypervisor.
LOAD = "state.load_avg"
STEAL = "state.cpu_steal_pct"
# Wall time over CPU time of the timed calls (CPU cases): above 1.1, the process waited.
WALL_PER_CPU = "state.wall_per_cpu"
# The share of the threads' runnable time spent waiting for a CPU over the timed calls
# (CPU cases; harness/placement.py, from schedstat): contention measured, not inferred.
RUN_WAIT = "state.run_wait_share"
# GPU: SM clock around the timed batches, the share of batches under thermal or power
# throttling, and processes of other programs on the worker's GPUs.
SM_CLOCK = "state.sm_clock_mhz"
THROTTLED = "state.throttled_fraction"
OTHER_GPU_PROCESSES = "state.other_gpu_processes"

CONTENTION_WALL_PER_CPU = 1.1
# A single busy thread whose wall time is 1.1x its CPU time waited 1 - 1/1.1 = 9% of it:
# the same line, drawn where the waiting itself is measured.
CONTENTION_RUN_WAIT = 0.09


def contended(wall_per_cpu: float | None, run_wait: float | None) -> bool:
    """Whether a process waited for a core over its timed calls: by its threads' measured
    waiting where the kernel keeps it (a case that sleeps or reads files is not
    contended, four threads on two busy cores are), else by wall over CPU time."""
    if run_wait is not None:
        return run_wait > CONTENTION_RUN_WAIT
    return wall_per_cpu is not None and wall_per_cpu > CONTENTION_WALL_PER_CPU


def is_state(metric: str) -> bool:
    """Whether `metric` describes the machine rather than the code under test."""
    return metric.startswith(PREFIX)
