"""Workers in real subprocesses: every failure class, and the cases after it still run."""

from __future__ import annotations

import os
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import ResultRecord
from commitbench.model.wire import result_from_json, result_to_json
from commitbench.runner.launcher import (
    CaseRun,
    WorkerError,
    WorkerOptions,
    _oom_kills,
    list_cases,
    run_module,
    survey,
    worker_environment,
)

FAILURES = """
import os
import resource
import signal
import time

import commitbench as cb


@cb.bench(params={"n": [1000]})
def first(ctx, n):
    ctx.time("sum", lambda: sum(range(n)), repeat=8)


@cb.bench
def raises(ctx):
    raise ValueError("bad input")


@cb.bench
def exits(ctx):
    print("about to exit", flush=True)
    os._exit(3)


@cb.bench
def hangs(ctx):
    time.sleep(60)


@cb.bench
def allocates(ctx):
    # Bound the address space so this can never hurt the machine; restore it after.
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as fh:
        vm = next(int(line.split()[1]) for line in fh if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm * 1024 + 256 * 2**20, hard))
    try:
        hoard = []
        while True:
            hoard.append(bytearray(16 * 2**20))
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@cb.bench
def killed(ctx):
    os.kill(os.getpid(), signal.SIGKILL)


@cb.bench
def skips(ctx):
    ctx.skip("nothing to do on this input")


@cb.bench(requires=("cuda",))
def needs_gpu(ctx):
    raise AssertionError("never runs without CUDA")


@cb.bench
def last(ctx):
    ctx.record("answer", 42, "1", better="higher")
"""


def write(tmp_path: Path, name: str, source: str) -> WorkerOptions:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    # CUDA hidden so `needs_gpu` skips the same way on any machine.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return WorkerOptions(timeout_s=3.0, pythonpath=(tmp_path,), device="cpu", env=env)


class Events:
    """A WorkerObserver that writes down what it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, object]] = []

    def worker_started(self, pid: int) -> None:
        self.seen.append(("worker", pid))

    def case_started(self, case: CaseKey) -> None:
        self.seen.append(("start", case.label))

    def case_finished(self, case: CaseKey) -> None:
        self.seen.append(("end", case.label))


@pytest.mark.slow
def test_each_failure_class_and_the_cases_after_it(tmp_path: Path) -> None:
    options = write(tmp_path, "failing", FAILURES)
    events = Events()
    runs = list(run_module("failing", options, observer=events))
    got = {r.result.case.label: r.result for r in runs}
    assert [r.result.case.label for r in runs] == [
        "failing.first[n=1000]",
        "failing.raises",
        "failing.exits",
        "failing.hangs",
        "failing.allocates",
        "failing.killed",
        "failing.skips",
        "failing.needs_gpu",
        "failing.last",
    ]
    status = {label.removeprefix("failing."): r.status for label, r in got.items()}
    # A SIGKILL we did not send is an OOM kill only if the kernel's counter says so.
    killed = "crashed" if _oom_kills() is not None else "oom"
    assert status == {
        "first[n=1000]": "ok",
        "raises": "failed",
        "exits": "crashed",
        "hangs": "timeout",
        "allocates": "oom",
        "killed": killed,
        "skips": "skipped",
        "needs_gpu": "skipped",
        "last": "ok",
    }
    err = {label.removeprefix("failing."): r.error or "" for label, r in got.items()}
    assert "ValueError: bad input" in err["raises"]
    assert "exited with code 3" in err["exits"]
    assert "about to exit" in err["exits"]  # the tail of the worker's output
    assert "no result after 3 s" in err["hangs"]
    assert "MemoryError" in err["allocates"]
    assert "SIGKILL" in err["killed"]
    assert err["skips"] == "nothing to do on this input"
    assert err["needs_gpu"] == "requires CUDA, which is not available"

    first = got["failing.first[n=1000]"]
    assert {m.name for m in first.metrics} == {
        "sum",
        "peak_rss",
        "state.wall_per_cpu",
        "state.run_wait_share",
        "state.calibration_case_ms",
    }
    timed = next(m for m in first.metrics if m.name == "sum")
    assert timed.n == 8 and timed.samples is not None and len(timed.samples) == 8
    assert next(m for m in first.metrics if m.name == "peak_rss").median > 1  # MiB
    assert got["failing.last"].metrics[0].median == 42.0
    assert got["failing.hangs"].duration_s is not None and got["failing.hangs"].duration_s >= 3
    # The warm-up (to a steady state, at least 0.1 s of calls) and the 8 repeats.
    assert timed.properties["warmup_stop"] in ("steady", "limit")
    assert [w.calls for w in runs[0].windows] == [timed.properties["warmup"] + 8]
    assert timed.properties["warmup"] > 8

    # One worker per death: first..exits, hangs, allocates..killed, skips..last.
    assert len({r.pid for r in runs}) == 4
    assert [e for e in events.seen if e[0] == "worker"] == [
        ("worker", pid) for pid in dict.fromkeys(r.pid for r in runs)
    ]
    starts = [label for kind, label in events.seen if kind == "start"]
    ends = [label for kind, label in events.seen if kind == "end"]
    assert ends == [r.result.case.label for r in runs]
    assert starts == ends


@pytest.mark.slow
def test_isolate_case_runs_every_case_in_a_fresh_worker(tmp_path: Path) -> None:
    options = write(
        tmp_path,
        "isolated",
        """
        import os
        import commitbench as cb

        @cb.bench(params={"k": [1, 2, 3]})
        def pid(ctx, k):
            ctx.record("pid", os.getpid(), "1")
            if k == 2:
                os._exit(1)
        """,
    )
    options = WorkerOptions(**{**options.__dict__, "isolate": "case"})
    runs = list(run_module("isolated", options))
    assert [r.result.status for r in runs] == ["ok", "crashed", "ok"]
    assert len({r.pid for r in runs}) == 3
    assert len({r.result.metrics[0].median for r in runs if r.result.status == "ok"}) == 2


def test_a_module_that_does_not_import_is_one_failed_result(tmp_path: Path) -> None:
    options = write(tmp_path, "broken", "import commitbench as cb\nraise ImportError('no lib')\n")
    runs = list(run_module("broken", options))
    assert len(runs) == 1
    assert runs[0].result.case == CaseKey.of("broken")
    assert runs[0].result.status == "failed"
    assert "ImportError: no lib" in (runs[0].result.error or "")
    listed = list_cases("broken", options)
    assert isinstance(listed, CaseRun) and listed.result.status == "failed"


def test_profiles_and_selection(tmp_path: Path) -> None:
    options = write(
        tmp_path,
        "profiled",
        """
        import commitbench as cb

        @cb.bench(params={"n": [1, 2]})
        def both(ctx, n):
            ctx.record("size", ctx.pick(smoke=n, full=100 * n), "1")

        @cb.bench(profiles=("full",))
        def full_only(ctx):
            ctx.record("profile_is_full", ctx.profile == "full", "1")
        """,
    )
    listed = list_cases("profiled", options)
    assert isinstance(listed, list)
    assert [c.label for c in listed] == ["profiled.both[n=1]", "profiled.both[n=2]"]
    full = WorkerOptions(**{**options.__dict__, "profile": "full"})
    runs = list(run_module("profiled", full, only=["profiled.both[n=2]", "profiled.full_only"]))
    assert [(r.result.case.label, r.result.metrics[0].median) for r in runs] == [
        ("profiled.both[n=2]", 200.0),
        ("profiled.full_only", 1.0),
    ]


def test_results_round_trip_through_json() -> None:
    result = ResultRecord(
        case=CaseKey.of("m.f", {"n": 3, "dtype": "bf16", "flag": True, "scale": 0.5}),
        status="ok",
        duration_s=1.5,
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        metrics=(
            MetricRecord.from_samples(
                "t", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], unit="s", properties={"timer": "x"}
            ),
            MetricRecord("energy", "J", "lower", n=3, mean=2.0, max=4.0),
        ),
    )
    assert result_from_json(result_to_json(result)) == result


def test_worker_environment_reports_this_interpreter(tmp_path: Path) -> None:
    env = worker_environment(WorkerOptions(device="cpu"))
    assert env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["executable"] == sys.executable
    assert "torch" in env


def test_a_survey_lists_every_module_and_the_environment_in_one_worker(tmp_path: Path) -> None:
    options = write(
        tmp_path,
        "first",
        "import commitbench as cb\n@cb.bench(params={'k': [1, 2]})\ndef f(ctx, k): pass\n",
    )
    write(tmp_path, "second", "import commitbench as cb\n@cb.bench\ndef g(ctx): pass\n")
    write(tmp_path, "broken", "raise ImportError('no lib')\n")
    # The environment probe imports torch: more than the 3 s the other workers get.
    slow = WorkerOptions(**{**options.__dict__, "timeout_s": 120.0})
    found = survey(["first", "broken", "second"], slow, environment=True)
    assert found.failure is None
    assert found.environment is not None and found.environment["executable"] == sys.executable
    assert found.plans["first"] == [
        CaseKey.of("first.f", {"k": 1}),
        CaseKey.of("first.f", {"k": 2}),
    ]
    assert found.plans["second"] == [CaseKey.of("second.g")]
    broken = found.plans["broken"]
    assert isinstance(broken, CaseRun)
    assert (broken.result.case, broken.result.status) == (CaseKey.of("broken"), "failed")
    assert (broken.result.error or "").endswith("ImportError: no lib\n")


def test_a_survey_whose_worker_dies_says_how_and_keeps_what_it_listed(tmp_path: Path) -> None:
    options = write(tmp_path, "fine", "import commitbench as cb\n@cb.bench\ndef g(ctx): pass\n")
    write(tmp_path, "fatal", "import os\nprint('bye', flush=True)\nos._exit(4)\n")
    found = survey(["fine", "fatal", "never"], options)
    assert found.plans == {"fine": [CaseKey.of("fine.g")]}
    assert found.failure == (
        "worker ended with code 4 before answering\n--- worker output (tail) ---\nbye\n"
    )


def test_an_interpreter_that_cannot_start_is_a_failed_result(tmp_path: Path) -> None:
    options = write(tmp_path, "fine", "import commitbench as cb\n@cb.bench\ndef g(ctx): pass\n")
    missing = WorkerOptions(**{**options.__dict__, "python": str(tmp_path / "no-python")})
    (run,) = run_module("fine", missing)
    assert (run.result.case, run.result.status, run.pid) == (CaseKey.of("fine"), "failed", None)
    assert run.result.error == (
        f"the worker could not start: {tmp_path / 'no-python'}: No such file or directory"
    )
    with pytest.raises(WorkerError, match=r"^the worker could not start: .*no-python"):
        worker_environment(missing)


def test_bad_output_fails_only_its_own_case(tmp_path: Path) -> None:
    options = write(
        tmp_path,
        "misbehaves",
        """
        import math
        import os
        import commitbench as cb

        @cb.bench
        def garbage(ctx):
            # The pipe is not named in sys.argv; a bench that looks finds it anyway.
            for name in os.listdir("/proc/self/fd"):
                if int(name) >= 900 and os.readlink(f"/proc/self/fd/{name}").startswith("pipe:"):
                    os.write(int(name), b"not json\\n")
            ctx.record("x", 1, "1")

        @cb.bench
        def infinite(ctx):
            ctx.record("ratio", math.inf, "1")

        @cb.bench
        def fine(ctx):
            ctx.record("x", 1, "1")
        """,
    )
    runs = list(run_module("misbehaves", options))
    assert [r.result.status for r in runs] == ["crashed", "failed", "ok"]
    assert "broke the result protocol" in (runs[0].result.error or "")
    assert (runs[1].result.error or "").endswith(
        "RecordError: metric ratio: sample 1 is inf, not a measurement\n"
    )


def test_a_caller_that_stops_early_leaves_no_worker_behind(tmp_path: Path) -> None:
    options = write(
        tmp_path,
        "slow",
        """
        import time
        import commitbench as cb

        @cb.bench(params={"k": [1, 2]})
        def nap(ctx, k):
            time.sleep(0 if k == 1 else 60)
        """,
    )
    runs = run_module("slow", options)
    first = next(runs)
    assert first.result.status == "ok" and first.pid is not None
    runs.close()  # the generator's cleanup kills the worker, mid-case
    with pytest.raises(ProcessLookupError):
        os.kill(first.pid, 0)


def test_a_sweep_reaches_the_worker_through_its_arguments(tmp_path: Path) -> None:
    options = write(
        tmp_path,
        "swept",
        """
        import commitbench as cb

        @cb.bench(params={"n": [1, 2], "tag": ["x"]})
        def f(ctx, n, tag):
            ctx.record("n", n, "1")

        @cb.bench(params={"p": [0.5]})
        def g(ctx, p):
            ctx.record("p", p, "1")
        """,
    )
    swept = WorkerOptions(**{**options.__dict__, "params": (("n", ("7", "3")), ("p", ("big",)))})
    found = survey(["swept"], swept)
    assert found.plans["swept"] == [
        CaseKey.of("swept.f", {"n": 7, "tag": "x"}),
        CaseKey.of("swept.f", {"n": 3, "tag": "x"}),
        CaseKey.of("swept.g"),  # its one value does not parse: the bench, refused
    ]
    assert found.benches["swept"] == [
        {"name": "swept.f", "params": ["n", "tag"], "error": None},
        {
            "name": "swept.g",
            "params": ["p"],
            "error": "--param p: 'big' is not a float, as swept.g declares p (0.5)",
        },
    ]
    runs = list(run_module("swept", swept))
    assert [(r.result.case.label, r.result.status, r.result.error) for r in runs] == [
        ("swept.f[n=7,tag=x]", "ok", None),
        ("swept.f[n=3,tag=x]", "ok", None),
        ("swept.g", "failed", "--param p: 'big' is not a float, as swept.g declares p (0.5)"),
    ]
    assert runs[0].result.metrics[0].median == 7.0
    assert survey(["swept"], options).benches == {"swept": []}  # no sweep: nothing more said
