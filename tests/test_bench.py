"""The authoring API: grids, labels, requirements, profiles, Context."""

from __future__ import annotations

import importlib.util
import itertools
import types
from pathlib import Path

import pytest

import commitbench as cb
from commitbench.harness.bench import Skipped, benches_of, parse_requirement
from commitbench.harness.plan import select_cases
from commitbench.harness.probe import Probe
from commitbench.harness.timing import CpuTimer, TimingPolicy
from commitbench.model.cases import CaseKey
from commitbench.model.records import Window

SOURCE = """
import commitbench as cb
from commitbench.harness.bench import bench as imported_bench


@cb.bench(params={"shape": ["4k", "12k"], "impl": ["fp16", "int8"]})
def matmul(ctx, shape, impl):
    return None


@cb.bench(profiles=("full",), requires=("cuda",))
def big(ctx):
    return None
"""


@pytest.fixture
def module(tmp_path: Path) -> types.ModuleType:
    path = tmp_path / "example.py"
    path.write_text(SOURCE)
    spec = importlib.util.spec_from_file_location("example", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.borrowed = plain_bench  # type: ignore[attr-defined]
    return mod


@cb.bench(name="tests.plain")
def plain_bench(ctx: cb.Context) -> int:
    return 7


def test_grid_is_the_cartesian_product_with_stable_labels(module: types.ModuleType) -> None:
    # Only the module's own benches: not the imported decorator, not `borrowed`.
    (matmul, big) = benches_of(module)
    labels = [c.label for c in matmul.cases()]
    assert labels == [
        "example.matmul[impl=fp16,shape=4k]",
        "example.matmul[impl=int8,shape=4k]",
        "example.matmul[impl=fp16,shape=12k]",
        "example.matmul[impl=int8,shape=12k]",
    ]
    assert [c.label for c in big.cases()] == ["example.big"]


def test_the_decorated_function_stays_callable() -> None:
    assert plain_bench(None) == 7  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="module level"):

        @cb.bench
        def nested(ctx: cb.Context) -> None:
            return None


def test_profiles_select_benches(module: types.ModuleType) -> None:
    mod = module
    smoke = [p.case.label for p in select_cases(benches_of(mod), "smoke", (), ())]
    full = [p.case.label for p in select_cases(benches_of(mod), "full", (), ())]
    assert "example.big" not in smoke
    assert "example.big" in full
    only = select_cases(benches_of(mod), "full", ["example.big"], ())
    assert [p.case.label for p in only] == ["example.big"]
    skipped = select_cases(benches_of(mod), "smoke", (), ["example.matmul[impl=fp16,shape=4k]"])
    assert len(skipped) == 3


def test_requirements() -> None:
    assert parse_requirement("cuda") == ("cuda", None)
    assert parse_requirement("gpus >= 2") == ("gpus", 2.0)
    assert parse_requirement("gpu_mem_gib>=40") == ("gpu_mem_gib", 40.0)
    with pytest.raises(ValueError):
        parse_requirement("gpus>=two")
    probe = Probe("cpu")  # as on a machine without a GPU, whatever this one has
    assert probe.missing(("json",)) is None
    assert probe.missing(("cuda",)) == "requires CUDA, which is not available"
    assert probe.missing(("gpus>=2",)) == "requires 2 GPUs, found 0"
    assert probe.missing(("gpu_mem_gib>=40",)) == ("requires 40 GiB of GPU memory, found 0.0")
    assert probe.missing(("bitsandbytes_not_here",)) == (
        "requires bitsandbytes_not_here, which is not installed"
    )


def test_keyword_requirements_and_bad_specs() -> None:
    @cb.bench(min_gpus=2, min_gpu_mem_gib=40, requires="cuda", name="t.f")
    def f(ctx: cb.Context) -> None:
        return None

    assert f.__commitbench_bench__.requires == ("cuda", "gpus>=2", "gpu_mem_gib>=40")
    with pytest.raises(ValueError):
        cb.bench(profiles=("nightly",), name="t.g")(lambda ctx: None)
    with pytest.raises(ValueError):
        cb.bench(params={"n": []}, name="t.h")(lambda ctx, n: None)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_context_times_records_and_keeps_windows() -> None:
    clock = Clock()
    durations = itertools.cycle([0.25, 0.75])
    ctx = cb.Context(
        CaseKey.of("m.f", {"n": 3}),
        "smoke",
        probe=Probe("cpu"),
        policy=TimingPolicy(warmup=1),
        clock=clock,
        wall=clock,
    )

    def work() -> None:
        clock.now += next(durations)

    timing = ctx.time("step", work, repeat=4, flops=1e12, bytes=2e9, dtype="bf16")
    ctx.record("weights", 12.5, "MiB")
    assert timing.samples == (0.75, 0.25, 0.75, 0.25)
    names = [m.name for m in ctx.metrics]
    assert names == ["step", "step.tflops", "step.gbps", "weights"]  # no % of peak on CPU
    step = ctx.metrics[0]
    assert step.median == 0.5
    assert step.properties == {
        "timer": "perf_counter",
        "warmup": 1,
        "l2_flush": False,
        "stop": "repeat",
        "warmup_stop": "count",
    }
    assert ctx.windows == (Window(100.0, 102.25, 5),)
    assert ctx.params == {"n": 3}
    assert ctx.device == "cpu"
    assert ctx.pick(smoke=1, full=2) == 1
    with pytest.raises(ValueError, match="twice"):
        ctx.record("weights", 1.0, "MiB")
    with pytest.raises(ValueError):
        ctx.record("acc", 1.0, "%", better="bigger")
    with pytest.raises(Skipped, match="no data"):
        ctx.skip("no data")
    ctx.record("busbw", [2.0, 1.0, 4.0], "GB/s", better="higher")
    busbw = ctx.metrics[-1]
    assert (busbw.n, busbw.median, busbw.samples, busbw.direction) == (
        3,
        2.0,
        (2.0, 1.0, 4.0),
        "higher",
    )


def test_context_timer_choice() -> None:
    ctx = cb.Context(CaseKey.of("m.f"), "full", probe=Probe("cpu"))
    assert isinstance(ctx._timer("auto"), CpuTimer)
    with pytest.raises(ValueError):
        ctx._timer("tpu")
    assert ctx.pick(smoke=1, full=2) == 2


@cb.bench(name="tests.noted", params={"shape": ["4096x4096"]})
def noted_bench(ctx: cb.Context, shape: str) -> None:
    n = ctx.pick(smoke=64, full=int(shape.split("x")[0]))
    ctx.note(shape=f"{n}x{n}")
    ctx.time("time", lambda: sum(range(n)), warmup=0, repeat=3)
    ctx.record("weights", float(n), "MiB", source="count")
    ctx.note(dtype="fp32")  # later notes add to earlier ones


def test_notes_travel_with_every_metric_of_the_case() -> None:
    from commitbench.harness.runcase import run_case

    spec = benches_of(types.SimpleNamespace(noted_bench=noted_bench, __name__=__name__))[0]
    (case,) = spec.cases()
    result, _ = run_case(spec, case, "smoke", Probe("cpu"))
    assert result.status == "ok"
    used = {"shape": "64x64", "dtype": "fp32"}
    assert [(m.name, m.properties.get("used")) for m in result.metrics] == [
        ("time", used),
        ("weights", used),
        ("peak_rss", used),
        ("state.wall_per_cpu", None),  # the machine's state, not the case's sizes
        ("state.run_wait_share", None),
    ]
    assert result.metrics[1].properties["source"] == "count"  # the bench's own kept
    ctx = cb.Context(case, "smoke", probe=Probe("cpu"))
    with pytest.raises(ValueError, match=r"note shape=\(64, 64\) is not a scalar"):
        ctx.note(shape=(64, 64))  # type: ignore[arg-type]
    assert ctx.used == {}
