"""harness/profiling.py: a real torch.profiler capture on the CPU, and the allocator
trace replay behind the memory peak's sites."""

from __future__ import annotations

import gzip
import json
import types
from pathlib import Path

import pytest
import torch

import commitbench as cb
from commitbench.harness import profiling
from commitbench.harness.bench import Bench, benches_of
from commitbench.harness.probe import Probe
from commitbench.harness.runcase import run_case
from commitbench.model import profile as names
from commitbench.model.cases import CaseKey
from commitbench.model.profile import OpTable, artifact_stem


def test_capture_reduces_the_profiler_to_a_table_and_metrics(tmp_path: Path) -> None:
    x, w = torch.ones(32, 32), torch.ones(32, 32)
    calls: list[str] = []

    def forward() -> object:
        calls.append("f")
        return torch.mm(x, w)

    def extra() -> object:
        calls.append("e")
        return x.add_(0)

    got = profiling.capture([("fwd", forward), ("add", extra)], 3, out_dir=tmp_path, stem="c")
    assert calls == ["f", "e"] * 3  # each timed function, in order, per iteration
    metrics = {m.name: m for m in got.metrics}
    table = OpTable.from_json(metrics[names.TIME_PER_ITER].properties["table"])
    assert (table.source, table.iterations) == ("cpu", 3)
    rows = {r.name: r for r in table.rows}
    assert (rows["aten::mm"].category, rows["aten::mm"].calls) == ("gemm", 1.0)
    assert (rows["aten::add_"].category, rows["aten::add_"].calls) == ("elementwise", 1.0)
    assert not any(n.startswith(profiling.RANGE) for n in rows)  # our ranges are not ops
    shares = [metrics[names.share_metric(c)].median for c in names.CATEGORIES]
    assert sum(s for s in shares if s is not None) == pytest.approx(100.0)
    # add_ of a Python number converts it first (aten::to, aten::copy_ ...): every call
    # counted at every level is the table's calls.
    assert metrics[names.OPS_PER_ITER].median == sum(r.calls for r in table.rows)
    assert metrics[names.OPS_PER_ITER].median > 2
    assert names.DEVICE_PER_ITER not in metrics  # no CUDA here: no device metrics
    assert metrics[names.HOST_PER_ITER].median is not None
    assert got.capture_s > 0
    # Two timed functions: each has its own table, made of what ran inside its ranges.
    fwd = OpTable.from_json(metrics["profile.fwd.time_per_iter"].properties["table"])
    add = OpTable.from_json(metrics["profile.add.time_per_iter"].properties["table"])
    assert [r.name for r in fwd.rows] == ["aten::mm", "aten::resolve_conj"]
    assert "aten::add_" in {r.name for r in add.rows} and "aten::mm" not in {
        r.name for r in add.rows
    }
    gemm, other = (metrics[f"profile.fwd.share.{c}"].median for c in ("gemm", "other"))
    assert gemm is not None and other is not None and gemm + other == pytest.approx(100.0)
    assert metrics["profile.fwd.ops_per_iter"].median == sum(r.calls for r in fwd.rows)
    both = metrics["profile.fwd.ops_per_iter"].median + metrics["profile.add.ops_per_iter"].median
    assert metrics[names.OPS_PER_ITER].median == both
    trace = got.files["chrome_trace"]
    assert trace == tmp_path / "c.trace.json.gz"
    events = json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]
    assert {"commitbench::fwd", "aten::mm"} <= {e.get("name") for e in events}


def test_nothing_timed_captures_nothing() -> None:
    got = profiling.capture([], 5)
    assert (got.metrics, dict(got.files)) == ((), {})


def test_nvtx_range_is_a_no_op_without_cuda() -> None:
    with profiling.nvtx_range("case[a=1]"):
        pass  # CPU build: torch.cuda.nvtx would raise if it were called


def _alloc(addr: int, size: int, line: int) -> dict[str, object]:
    frames = [
        {"filename": "/x/site-packages/torch/nn/modules/linear.py", "line": 125, "name": "forward"},
        {"filename": "/repo/model.py", "line": line, "name": "step"},
    ]
    return {"action": "alloc", "addr": addr, "size": size, "frames": frames}


def test_peak_sites_replays_the_allocator_trace() -> None:
    trace = [
        _alloc(1, 100, 10),
        _alloc(2, 300, 11),
        {"action": "free_requested", "addr": 1, "size": 100},  # still held by the stream
        {"action": "free_completed", "addr": 1, "size": 100},
        _alloc(3, 50, 12),
        _alloc(4, 70, 11),  # the peak: 300 + 50 + 70
        {"action": "free_completed", "addr": 4, "size": 70},
        {"action": "free_completed", "addr": 2, "size": 300},
        _alloc(5, 200, 13),
    ]
    peak, sites = profiling.peak_sites(trace)
    assert peak == 420
    assert sites == [("model.py:11 step", 370), ("model.py:12 step", 50)]


_calls: list[int] = []


@cb.bench
def breaks_when_profiled(ctx: cb.Context) -> None:
    x = torch.ones(8, 8)

    def fn() -> object:
        _calls.append(1)
        if len(_calls) > 3:  # the 3 timed calls pass; the profile's first call fails
            raise RuntimeError("only three calls")
        return x @ x

    ctx.time("time", fn, warmup=0, repeat=3)


@cb.bench
def profiled(ctx: cb.Context) -> None:
    x = torch.ones(8, 8)
    ctx.time("time", lambda: x @ x, warmup=0, repeat=2)


def _spec(fn: object) -> tuple[Bench, CaseKey]:
    spec = benches_of(types.SimpleNamespace(f=fn, __name__=__name__))[0]
    (case,) = spec.cases()
    return spec, case


def test_a_failing_profile_leaves_the_measured_result(capsys: pytest.CaptureFixture[str]) -> None:
    spec, case = _spec(breaks_when_profiled)
    result, _ = run_case(spec, case, "smoke", Probe("cpu"), trace=2)
    assert result.status == "ok"
    # The measured metrics and the machine's state (state.*), no profile.* metric.
    assert [m.name for m in result.metrics] == [
        "time",
        "peak_rss",
        "state.wall_per_cpu",
        "state.run_wait_share",
    ]
    assert result.metrics[0].n == 3
    err = capsys.readouterr().err
    assert f"profile of {case.label} failed:" in err and "RuntimeError: only three calls" in err


def test_run_case_adds_the_profile_after_the_timing(tmp_path: Path) -> None:
    spec, case = _spec(profiled)
    plain, _ = run_case(spec, case, "smoke", Probe("cpu"))
    traced, _ = run_case(spec, case, "smoke", Probe("cpu"), trace=2, trace_dir=tmp_path)
    assert [m.name for m in plain.metrics] == [
        "time",
        "peak_rss",
        "state.wall_per_cpu",
        "state.run_wait_share",
    ]
    names = [m.name for m in traced.metrics]
    assert names[:4] == ["time", "peak_rss", "state.wall_per_cpu", "state.run_wait_share"]
    assert "profile.share.gemm" in names
    (table,) = [m for m in traced.metrics if m.name == "profile.time_per_iter"]
    assert table.properties["capture_s"] > 0 and table.properties["table"]["iterations"] == 2
    assert [p.name for p in tmp_path.iterdir()] == [f"{artifact_stem(case.label)}.trace.json.gz"]
