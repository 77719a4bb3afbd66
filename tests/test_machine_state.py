"""The machine's state recorded with every result (issue 13, item 5): real workers, real
/proc, a recorded run; NVML only as the fake of tests/test_sampler.py (no GPU here)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from commitbench.analysis.machinestate import case_states
from commitbench.analysis.processes import contended
from commitbench.harness import calibration, placement
from commitbench.model import state, wire
from commitbench.model.cases import CaseKey
from commitbench.model.points import Point
from commitbench.model.records import ResultRecord
from commitbench.runner.launcher import ProcessState, WorkerOptions, run_module
from commitbench.runner.protocol import Conversation, ProtocolError
from commitbench.runner.sampling import host
from commitbench.runner.sampling.readings import GpuReading, Reading, Tick
from commitbench.runner.sampling.state import gpu_metrics, host_metrics, with_calibration
from commitbench.store.csv import find_runs, read_run
from tests.gitrepo import CASES, GitBuilder, bench_repo

WAITS = """
import time

import commitbench as cb


@cb.bench
def sleeps(ctx):
    ctx.time("nap", lambda: time.sleep(0.01), warmup=0, repeat=5)


@cb.bench
def spins(ctx):
    ctx.time("spin", lambda: sum(i * i for i in range(20_000)), warmup=0, repeat=5)
"""


def test_a_worker_calibrates_at_its_start_and_end_and_times_cpu_next_to_wall(
    tmp_path: Path,
) -> None:
    (tmp_path / "waits.py").write_text(textwrap.dedent(WAITS))
    options = WorkerOptions(pythonpath=(tmp_path,), timeout_s=60)
    runs = list(run_module("waits", options))
    assert [r.result.status for r in runs] == ["ok", "ok"]
    process = runs[0].process
    assert process is not None and process is runs[1].process  # one worker, one state
    assert process.pid == runs[0].pid
    assert process.device == "cpu"  # no torch in this module: the CPU loop
    assert process.calibration_start_ms is not None and process.calibration_start_ms > 0
    assert process.calibration_end_ms is not None and process.calibration_end_ms > 0
    ratio = {
        r.result.case.label: next(m for m in r.result.metrics if m.name == state.WALL_PER_CPU)
        for r in runs
    }
    # Sleeping is waiting: 50 ms of wall for next to no CPU. Spinning is CPU time.
    assert ratio["waits.sleeps"].samples[0] > 5 * state.CONTENTION_WALL_PER_CPU
    assert ratio["waits.spins"].samples[0] >= 0.9
    assert ratio["waits.spins"].n == 1  # one sample: this process's
    # The loop timed again right around each case: one sample, the mean of the two.
    for r in runs:
        around = next(m for m in r.result.metrics if m.name == state.CALIBRATION_CASE)
        before, after = around.properties["before_ms"], around.properties["after_ms"]
        assert isinstance(before, float) and isinstance(after, float)
        assert before > 0 and after > 0
        assert around.samples == ((before + after) / 2,)
        assert (around.unit, around.properties["device"]) == ("ms", "cpu")


def test_the_calibration_goes_with_every_ok_result_of_its_worker() -> None:
    ok = ResultRecord(CaseKey.of("m.f"), "ok")
    process = ProcessState(7, calibration_start_ms=8.5, calibration_end_ms=9.25, device="cuda")
    got = {m.name: m for m in with_calibration(ok, process).metrics}
    assert got[state.CALIBRATION_START].samples == (8.5,)
    assert got[state.CALIBRATION_END].samples == (9.25,)
    assert got[state.CALIBRATION_END].properties == {"device": "cuda"}
    failed = ResultRecord(CaseKey.of("m.g"), "failed", "boom")
    assert with_calibration(failed, process) == failed
    # A worker that died before its end calibration: the start alone.
    died = ProcessState(7, calibration_start_ms=8.5, device="cpu")
    assert [m.name for m in with_calibration(ok, died).metrics] == [state.CALIBRATION_START]


def _running(plan: tuple[CaseKey, ...]) -> Conversation:
    talk = Conversation()
    talk.take({"event": "plan", "cases": [wire.case_to_json(c) for c in plan]})
    return talk


def test_the_protocol_takes_one_calibration_at_each_end_of_a_worker() -> None:
    a, b = CaseKey.of("m.a"), CaseKey.of("m.b")
    talk = _running((a, b))
    talk.take({"event": "calibration", "at": "start", "ms": 9.0, "device": "cpu"})
    for case in (a, b):
        talk.take({"event": "start", "case": wire.case_to_json(case)})
        talk.take({"event": "result", "result": {"case": wire.case_to_json(case)}})
    talk.take({"event": "calibration", "at": "end", "ms": 9.5, "device": "cpu"})
    assert talk.calibrated == {"start": 9.0, "end": 9.5}
    with pytest.raises(ProtocolError, match="after its end calibration"):
        talk.take({"event": "start", "case": wire.case_to_json(a)})


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"at": "start", "ms": 9.0, "device": "cpu"}, "'start' calibration"),  # twice
        ({"at": "middle", "ms": 9.0, "device": "cpu"}, "'middle' calibration"),
        ({"at": "end", "ms": math.inf, "device": "cpu"}, "calibration of inf ms"),
        ({"at": "end", "ms": -1, "device": "cpu"}, "calibration of -1 ms"),
        ({"at": "end", "ms": 9.0, "device": "cuda"}, "on device 'cuda'"),  # switched
    ],
)
def test_a_calibration_out_of_place_breaks_the_protocol(event: dict, message: str) -> None:  # type: ignore[type-arg]
    talk = _running((CaseKey.of("m.a"),))
    talk.take({"event": "calibration", "at": "start", "ms": 9.0, "device": "cpu"})
    with pytest.raises(ProtocolError, match=message):
        talk.take({"event": "calibration", **event})


def test_no_start_calibration_after_the_first_case() -> None:
    a = CaseKey.of("m.a")
    talk = _running((a,))
    talk.take({"event": "start", "case": wire.case_to_json(a)})
    with pytest.raises(ProtocolError, match=r"while m\.a was running"):
        talk.take({"event": "calibration", "at": "start", "ms": 9.0, "device": "cpu"})


def test_load_and_steal_from_proc_files(tmp_path: Path) -> None:
    (tmp_path / "loadavg").write_text("2.50 1.00 0.50 3/120 4242\n")
    (tmp_path / "stat").write_text("cpu  100 0 50 800 10 0 0 40 0 0\ncpu0 1 2 3 4\n")
    assert host.load_average(tmp_path) == 2.5
    before = host.cpu_times(tmp_path)
    assert before == host.CpuTimes(total=1000, steal=40)
    after = host.CpuTimes(total=1200, steal=90)
    assert host.steal_pct(before, after) == 25.0
    assert host.steal_pct(before, before) is None  # no tick passed
    assert host.load_average(tmp_path / "missing") is None
    got = {m.name: m.samples for m in host_metrics(2.5, 3.5, before, after)}
    assert got == {state.LOAD: (3.0,), state.STEAL: (25.0,)}


def test_the_real_proc_is_read() -> None:
    load = host.load_average()
    times = host.cpu_times()
    assert load is not None and load >= 0
    assert times is not None and times.total > 0 and 0 <= times.steal <= times.total
    assert host.cpu_times() is not None


def test_gpu_state_comes_from_the_readings_inside_the_timed_windows() -> None:
    def tick(t: float, clock: float, reasons: int) -> Tick:
        gpu = GpuReading(0, sm_clock_mhz=clock, throttle_reasons=reasons)
        return Tick(t, "m.f", Reading((gpu,)))

    ticks = [
        tick(0.0, 500.0, 0x1),  # idle before the loop: outside the window
        tick(1.0, 1980.0, 0x0),
        tick(1.1, 1800.0, 0x40),  # HW thermal slowdown
        tick(1.2, 1700.0, 0x4 | 0x1),  # SW power cap
        tick(1.3, 1980.0, 0x10),  # sync boost: not throttling
        tick(5.0, 500.0, 0x40),  # after the loop
    ]
    windows = [wire.windows_from_json([[0.9, 1.35, 100]])[0]]
    got = {m.name: m for m in gpu_metrics(ticks, windows)}
    assert got[state.SM_CLOCK].samples == (1865.0,)
    assert got[state.THROTTLED].samples == (0.5,)
    assert got[state.THROTTLED].properties["reasons"] == ["hw_thermal", "sw_power_cap"]
    # No tick inside the windows (a short case): every tick of the case.
    everything = {m.name: m.samples for m in gpu_metrics(ticks, [])}
    assert everything[state.THROTTLED] == (3 / 6,)


def test_a_recorded_run_carries_the_state_of_each_result(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = bench_repo(tmp_path / "repo", commits=1)
    out = tmp_path / "results"
    last = max(os.sched_getaffinity(0))
    where = ("--repo", str(g.path), "--benches", "benches", "--results", str(out))
    outcome = cli("run", *where, "--affinity", str(last))
    assert outcome.code == 0, outcome.err
    (data,) = [read_run(folder) for folder in find_runs(out)]
    # Pinned: every case ran on that CPU, and says so (properties of the calibration).
    placed = [
        {k: m.properties[k] for k in ("cpu", "cpus")}
        for r in data.results
        for m in r.metrics
        if m.name == state.CALIBRATION_CASE
    ]
    assert placed == [{"cpu": last, "cpus": str(last)}] * len(CASES)
    assert [r.case.label for r in data.results] == CASES
    starts = set()
    for result in data.results:
        names = {m.name for m in result.metrics if state.is_state(m.name)}
        assert {
            state.CALIBRATION_START,
            state.CALIBRATION_END,
            state.LOAD,
            state.WALL_PER_CPU,
        } <= names, result.case.label
        assert all(m.n == 1 for m in result.metrics if state.is_state(m.name))
        starts.add(next(m.median for m in result.metrics if m.name == state.CALIBRATION_START))
    assert len(starts) == 1  # one module, one worker: the same calibration for each case
    assert "gpu_persistence_mode" not in data.header.run.environment  # no GPU here


def _point(sha: str, case: str, metric: str, value: float) -> Point:
    return Point(
        repository="r",
        sha=sha,
        committed_at=None,
        subject=None,
        machine="m" * 64,
        machine_label="cpu",
        branch=None,
        profile="smoke",
        run_id=None,
        run_started_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        case=case,
        metric=metric,
        unit="",
        direction="lower",
        median=value,
        ci_low=None,
        ci_high=None,
        samples=(value,),
        n=1,
        first_parent=None,
    )


def test_the_state_of_a_case_from_its_processes() -> None:
    sha = "a" * 40
    points = [
        # Three processes: calibrations 8/8.5, 10/10, 12/11 ms.
        *(_point(sha, "m.f", state.CALIBRATION_START, v) for v in (8.0, 10.0, 12.0)),
        *(_point(sha, "m.f", state.CALIBRATION_END, v) for v in (8.5, 10.0, 11.0)),
        *(_point(sha, "m.f", state.LOAD, v) for v in (1.0, 2.0, 3.0)),
        *(_point(sha, "m.f", state.WALL_PER_CPU, v) for v in (1.0, 1.02, 1.3)),
        _point(sha, "m.f", state.THROTTLED, 0.25),
        _point(sha, "m.f", "time", 1.0),  # not state: ignored
        *(_point(sha, "m.f", "energy_per_iter", v) for v in (2.0, 2.2, 2.1)),
        _point(sha, "m.g", state.CALIBRATION_START, 9.0),
    ]
    f, g = case_states(points)
    assert (f.processes, f.calibration_ms, f.load) == (3, 10.0, 2.0)
    assert f.calibration_spread_pct == 40.0  # (12 - 8) / 10
    assert f.contention and f.wall_per_cpu == 1.3
    assert f.flags == ["contention (wall/CPU 1.30)", "throttled 25%"]
    assert f.line() == (
        "calibration 10 ms spread 40.0% (3 processes), load 2.00, "
        "energy/iter spread 9.5%, contention (wall/CPU 1.30), throttled 25%"
    )
    assert f.describe() == f"m.f @ {sha[:12]}: {f.line()}"
    assert f.energy_spread_pct is not None and round(f.energy_spread_pct, 6) == round(20 / 2.1, 6)
    assert (g.processes, g.calibration_spread_pct, g.contention) == (1, None, False)
    assert g.energy_spread_pct is None
    assert g.line() == "calibration 9 ms (1 process), no contention"
    assert case_states([_point(sha, "m.f", "time", 1.0)]) == []


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], Path]:
    root = tmp_path_factory.mktemp("state")
    g, shas = bench_repo(root / "repo", commits=2)
    out = root / "results"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "commitbench", "run", "--repo", str(g.path)),
            *("--benches", "benches", "--results", str(out), f"{shas[0]}..{shas[1]}", shas[0]),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return g.path, shas, out


def test_compare_shows_the_machine_state_of_each_case(cli, measured) -> None:  # type: ignore[no-untyped-def]
    repo, (a, b), results = measured
    args = ("compare", a, b, "--repo", str(repo), "--results", str(results))
    data = json.loads(cli(*args, "--json").out)
    assert [(s["case"], s["sha"]) for s in data["state"]] == [
        (case, sha) for case in CASES for sha in (a, b)
    ]
    for entry in data["state"]:
        assert entry["processes"] == 1  # one worker per module and commit
        assert entry["calibration_ms"] > 0 and entry["load"] >= 0
        assert entry["contention"] == (entry["wall_per_cpu"] > state.CONTENTION_WALL_PER_CPU)
    text = cli(*args).out
    lines = text[text.index("machine state:\n") :].splitlines()[1:]
    assert [line.split(":")[0].strip() for line in lines] == [
        f"{case} @ {sha[:12]}" for case in CASES for sha in (a, b)
    ]
    assert all("calibration " in line and " ms (1 process)" in line for line in lines)
    marked = cli(*args, "--markdown").out
    assert "**Machine state**" in marked and f"- {CASES[0]} @ {a[:12]}: calibration " in marked


def test_the_report_shows_the_state_behind_the_newest_commit(cli, measured, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, (_, b), results = measured
    out = tmp_path / "report"
    assert cli("report", "--results", str(results), "--out", str(out)).code == 0
    page = (out / "index.html").read_text()
    section = page[page.index("<h2>Machine state</h2>") : page.index("<h2>Device utilization")]
    rows = re.findall(
        r"<tr><td><code>([^<]+)</code></td><td>([0-9a-f]+)</td><td>(\d+)</td>", section
    )
    assert rows == [(case, b[:12], "1") for case in CASES]
    assert not any("state." in name.name for name in out.glob("*.png"))  # no trend of state


GATED = """
import os
import time

import commitbench as cb


@cb.bench
def first(ctx):
    ctx.time("t", lambda: sum(range(100)), warmup=0, repeat=3)


@cb.bench
def second(ctx):
    gate = os.environ["COMMITBENCH_TEST_GATE"]
    open(gate + ".waiting", "w").close()
    while not os.path.exists(gate):
        time.sleep(0.01)
"""


def test_an_interrupt_mid_module_keeps_its_finished_cases(tmp_path: Path) -> None:
    """The results of a module are recorded when its workers end (their end calibration
    comes last); Ctrl-C before that still keeps what finished, with the start alone."""
    g = GitBuilder(tmp_path / "repo")
    g.commit("gated", {"benches/gated.py": textwrap.dedent(GATED)})
    gate, out = tmp_path / "gate", tmp_path / "results"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "commitbench", "run", "--repo", str(g.path)),
            *("--benches", "benches", "--results", str(out)),
            *("--pass-env", "COMMITBENCH_TEST_GATE"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COMMITBENCH_TEST_GATE": str(gate)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not Path(f"{gate}.waiting").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (data,) = [read_run(folder) for folder in find_runs(out)]
    assert data.end is not None and data.end.status == "interrupted"
    (result,) = data.results
    assert (result.case.label, result.status) == ("gated.first", "ok")
    names = {m.name for m in result.metrics}
    assert state.CALIBRATION_START in names and state.CALIBRATION_END not in names


def test_the_calibration_is_the_median_of_its_repeats_on_the_cpu_here() -> None:
    ticks = iter([0.0, 0.25, 1.0, 1.125, 2.0, 2.1875])  # 250, 125 and 187.5 ms
    assert calibration.calibrate("auto", clock=lambda: next(ticks)) == (187.5, "cpu")
    assert calibration.gpu_wanted("cpu", cuda_benches=True) is False  # held to the CPU
    assert calibration.gpu_wanted("auto", cuda_benches=True) is False  # no CUDA here
    assert calibration.cpu_loop(10) == sum(i * i for i in range(10)) % 1_000_003


def test_waiting_for_a_cpu_decides_contention_where_it_was_measured() -> None:
    sha = "b" * 40
    # A case that sleeps: wall/CPU 40, and no one else held a CPU it waited for.
    sleeper = [
        _point(sha, "m.sleeps", state.CALIBRATION_START, 5.0),
        _point(sha, "m.sleeps", state.WALL_PER_CPU, 40.0),
        _point(sha, "m.sleeps", state.RUN_WAIT, 0.004),
    ]
    # Four threads on two cores shared with another program: wall/CPU below 1.
    crowded = [
        _point(sha, "m.threads", state.CALIBRATION_START, 5.0),
        _point(sha, "m.threads", state.WALL_PER_CPU, 0.8),
        _point(sha, "m.threads", state.RUN_WAIT, 0.45),
    ]
    # An older result, recorded before the waiting was: wall/CPU alone decides.
    older = [
        _point(sha, "m.old", state.CALIBRATION_START, 5.0),
        _point(sha, "m.old", state.WALL_PER_CPU, 1.3),
    ]
    asleep, threads, old = case_states([*sleeper, *crowded, *older])
    assert (asleep.case, asleep.contention, asleep.flags) == ("m.sleeps", False, [])
    assert (threads.case, threads.contention, threads.run_wait) == ("m.threads", True, 0.45)
    assert threads.flags == ["contention (waited for a CPU 45% of the time)"]
    assert (old.case, old.contention, old.flags) == ("m.old", True, ["contention (wall/CPU 1.30)"])
    assert threads.as_json()["run_wait"] == 0.45 and old.as_json()["run_wait"] is None
    # The statistics leave out the same processes (analysis/processes.py).
    assert contended([*sleeper, *crowded, *older]) == {(None, "m.threads", 0), (None, "m.old", 0)}
    assert [state.contended(1.05, None), state.contended(1.2, None)] == [False, True]
    assert [state.contended(9.0, 0.08), state.contended(0.5, 0.1)] == [False, True]


def _schedstat(root: Path, threads: dict[int, tuple[int, int]]) -> str:
    for tid, (ran, waited) in threads.items():
        (root / str(tid)).mkdir(parents=True, exist_ok=True)
        (root / str(tid) / "schedstat").write_text(f"{ran} {waited} 7\n")
    return str(root)


def test_threads_run_and_wait_from_schedstat(tmp_path: Path) -> None:
    before = placement.thread_times(_schedstat(tmp_path / "a", {10: (1000, 50), 11: (200, 0)}))
    assert before == {10: (1000, 50), 11: (200, 0)}
    # Thread 11 ended, 12 started: it counts from its start.
    after = placement.thread_times(_schedstat(tmp_path / "b", {10: (3000, 450), 12: (500, 100)}))
    assert placement.ran_and_waited(before or {}, after or {}) == (2000 + 500, 400 + 100)
    (tmp_path / "c" / "13").mkdir(parents=True)  # a thread gone before its file was read
    assert placement.thread_times(str(tmp_path / "c")) is None
    assert placement.thread_times(str(tmp_path / "missing")) is None
    mine = placement.thread_times()  # this process's own threads
    assert mine is not None and os.getpid() in mine


PLACED = """
import time

import torch

import commitbench as cb


@cb.bench
def spins(ctx):  # long enough for several of the scheduler's slices
    ctx.time("spin", lambda: sum(i * i for i in range(400_000)), warmup=0, repeat=5)


@cb.bench
def naps(ctx):
    ctx.time("nap", lambda: time.sleep(0.05), warmup=0, repeat=5)


@cb.bench
def crowded(ctx):
    torch.set_num_threads(4)
    x = torch.randn(512, 512)
    ctx.time("mm", lambda: x @ x, warmup=2, repeat=20)
"""


def _run_wait(options: WorkerOptions) -> dict[str, float]:
    return {
        r.result.case.label.removeprefix("placed."): next(
            m.samples[0] for m in r.result.metrics if m.name == state.RUN_WAIT
        )
        for r in run_module("placed", options)
    }


def test_a_worker_sharing_its_cpu_with_a_busy_process_is_contended_a_sleeping_one_not(
    tmp_path: Path,
) -> None:
    """Real scheduling: the worker pinned to one CPU (--affinity). Alone, nothing is
    contended: not a case that sleeps (its wall/CPU far above 1.1), nor one with four
    threads on the one CPU (they wait, for each other). A busy process pinned to the same
    CPU takes about half of it: the spinning and the threaded case are contended then
    (measured here 0.27-0.44 with the test suite running beside), the sleeping one not."""
    (tmp_path / "placed.py").write_text(textwrap.dedent(PLACED))
    cpu = max(os.sched_getaffinity(0))
    options = WorkerOptions(pythonpath=(tmp_path,), timeout_s=120, affinity=frozenset({cpu}))
    alone = _run_wait(options)
    contended = {case for case, share in alone.items() if share > state.CONTENTION_RUN_WAIT}
    assert (sorted(alone), contended) == (["crowded", "naps", "spins"], set())
    busy = subprocess.Popen(
        [sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpu}}})\nwhile True: pass"]
    )
    try:
        time.sleep(0.3)
        shared = _run_wait(options)
    finally:
        busy.kill()
        busy.wait()
    contended = {case for case, share in shared.items() if share > state.CONTENTION_RUN_WAIT}
    assert contended == {"spins", "crowded"}, shared
