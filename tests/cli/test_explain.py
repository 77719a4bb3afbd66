"""`run --trace` and `explain` on a real repository, measured on the CPU.

c0 computes softmax(x @ w); c1 adds one elementwise multiplication; c2 replaces the fused
softmax by its unfused steps (exp, sum, div). The profiles are real torch.profiler
tables; what the test asserts is their structure (which operators, how many calls), which
is exact, never their times, which are not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from commitbench.model.points import PointFilter
from commitbench.model.profile import TIME_PER_ITER
from commitbench.store.csv import CsvStore
from tests.gitrepo import GitBuilder

CASE = "ops.step"

BENCH = """\
import commitbench as cb
import torch

import model


@cb.bench
def step(ctx):
    torch.set_num_threads(1)  # two shared cores: intra-op threads would only contend
    g = torch.Generator().manual_seed(0)
    x, w, s = (torch.randn(256, 256, generator=g) for _ in range(3))
    ctx.time("time", lambda: model.step(x, w, s), warmup=1, repeat=3)
"""

FUSED = "import torch\n\n\ndef step(x, w, s):\n    return torch.softmax(x @ w, -1)\n"
EXTRA = "import torch\n\n\ndef step(x, w, s):\n    return torch.softmax(x @ w, -1) * s\n"
UNFUSED = (
    "import torch\n\n\ndef step(x, w, s):\n"
    "    e = torch.exp(x @ w)\n    return e / e.sum(-1, keepdim=True)\n"
)


@pytest.fixture(scope="module")
def ops_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitBuilder, list[str]]:
    g = GitBuilder(tmp_path_factory.mktemp("ops") / "repo")
    shas = [
        g.commit(subject, {"model.py": source, "benches/ops.py": BENCH})
        for subject, source in (("fused", FUSED), ("extra", EXTRA), ("unfused", UNFUSED))
    ]
    return g, shas


def _structural(report: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [
        (c["name"], c["status"])
        for c in report["changes"]
        if c["status"] in ("new", "vanished", "calls")
    ]


@pytest.mark.slow
def test_explain_names_the_added_op_and_the_unfused_steps_first(  # type: ignore[no-untyped-def]
    cli, ops_repo, tmp_path: Path
) -> None:
    g, (c0, c1, c2) = ops_repo
    where = ("--repo", str(g.path), "--results", str(tmp_path / "r"))
    ran = cli("run", *where, "--benches", "benches", "--trace", c0, c1, c2)
    assert ran.code == 0, ran.err

    extra = cli("explain", c0, c1, "--case", CASE, *where, "--json")
    assert extra.code == 0, extra.err
    report = json.loads(extra.out)
    assert (report["case"], report["base"], report["head"]) == (CASE, c0, c1)
    assert report["source"] == "cpu" and report["iterations"] == 5
    assert _structural(report) == [("aten::mul", "new")]
    counters = {k["metric"]: (k["base"], k["head"]) for k in report["counters"]}
    assert counters["profile.ops_per_iter"][1] - counters["profile.ops_per_iter"][0] == 1
    first = report["changes"][0]
    assert (first["name"], first["category"], first["base_calls"], first["head_calls"]) == (
        "aten::mul",
        "elementwise",
        0.0,
        1.0,
    )
    assert first["head_s"] > 0

    unfused = cli("explain", c0, c2, "--case", CASE, *where, "--json")
    report = json.loads(unfused.out)
    found = _structural(report)
    assert sorted(found) == [
        ("aten::_softmax", "vanished"),
        ("aten::div", "new"),
        ("aten::exp", "new"),
        ("aten::fill_", "new"),  # aten::sum zeroes its output first
        ("aten::softmax", "vanished"),
        ("aten::sum", "new"),
    ]
    assert [(c["name"], c["status"]) for c in report["changes"][:6]] == found
    shares = {s["category"]: (s["base"], s["head"]) for s in report["shares"]}
    assert shares["elementwise"][0] == 0.0 and shares["elementwise"][1] > 0
    assert shares["gemm"][0] > 0 and shares["gemm"][1] > 0
    counters = {k["metric"]: (k["base"], k["head"]) for k in report["counters"]}
    base_ops, head_ops = counters["profile.ops_per_iter"]  # every nesting level
    assert head_ops - base_ops == 4 - 2  # exp, sum, fill_, div in; softmax, _softmax out

    md = cli("explain", c0, c1, "--case", CASE, *where, "--markdown")
    assert md.code == 0
    assert md.out.startswith(f"#### Why: {CASE}: {c0[:12]} → {c1[:12]} (operators, self CPU time")
    assert "| `aten::mul` | elementwise | new |" in md.out.splitlines()[4]

    # compare shows the timings; the profile.* rows only when asked for by name.
    rows = json.loads(cli("compare", c0, c1, *where, "--json").out)["rows"]
    assert "time" in {r["metric"] for r in rows}
    assert not [r for r in rows if r["metric"].startswith("profile.")]
    asked = json.loads(
        cli("compare", c0, c1, *where, "--json", "--metric", "profile.ops_per_iter").out
    )
    assert [r["metric"] for r in asked["rows"]] == ["profile.ops_per_iter"]

    # report: the category shares over the three commits, stacked; no trend per share.
    out = tmp_path / "report"
    assert cli("report", "--out", str(out), *where).code == 0
    page = (out / "index.html").read_text()
    assert "<h2>Where the time went</h2>" in page
    assert f"{CASE} on " in page and "where the time went</figcaption>" in page
    charts = sorted(p.name for p in out.glob("*.png"))
    assert [c for c in charts if c.startswith("shares-")] != []
    assert not [c for c in charts if "profile" in c]  # no trend of a profile.* metric

    table = cli("explain", c0, c1, "--case", CASE, *where)
    assert table.code == 0 and "aten::mul" in table.out and "share of time" in table.out


def test_explain_without_a_profile_says_how_to_record_one(  # type: ignore[no-untyped-def]
    cli, ops_repo, tmp_path: Path
) -> None:
    g, (c0, c1, _c2) = ops_repo
    where = ("--repo", str(g.path), "--results", str(tmp_path / "r"))
    assert cli("run", *where, "--benches", "benches", "--quick", c0).code == 0
    missing = cli("explain", c0, c1, "--case", CASE, *where)
    assert missing.code == 2
    assert missing.err.strip().endswith(
        f"no profile of {CASE} at {c0[:12]} in {tmp_path / 'r'}; record one with: "
        f"commitbench run {c0[:12]} --trace --force --filter '[o]ps.step'"
    )


CHECK_BENCH = """\
import commitbench as cb
import torch

import model


@cb.bench
def step(ctx):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, w, s = (torch.randn(256, 256, generator=g) for _ in range(3))
    ctx.time("work", lambda: model.step(x, w, s), warmup=1, repeat=3)
    # The gate's metric: fixed samples set by the commit (as tests.gitrepo.DELAY_MODULE),
    # so the verdict does not depend on the load of the machine running the test.
    ctx.record("time", [model.COST * (1 + 0.002 * (k - 7)) for k in range(15)], unit="s")
"""

SLOWER = (
    "import torch\n\n\ndef step(x, w, s):\n"
    "    for _ in range(3):\n        x @ w\n    return torch.softmax(x @ w, -1)\n"
)


@pytest.mark.slow
def test_check_explains_a_confirmed_regression(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    """HEAD multiplies four times where BASE did once (and records a `time` 20% higher):
    check --trace confirms the regression and names aten::mm, its calls per iteration
    1 -> 4, first."""
    g = GitBuilder(tmp_path / "repo")
    base = g.commit("fused", {"model.py": FUSED + "COST = 0.05\n", "benches/ops.py": CHECK_BENCH})
    head = g.commit("slower", {"model.py": SLOWER + "COST = 0.06\n"})
    where = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches")
    checked = cli("check", base, head, *where, "--trace", "--json")
    assert checked.code == 1, checked.err
    report = json.loads(checked.out)
    assert [r["case"] for r in report["confirmed"] if r["metric"] == "time"] == [CASE]
    (why,) = report["explain"]  # once per case, however many of its metrics regressed
    assert (why["case"], why["base"], why["head"]) == (CASE, base, head)
    first = why["changes"][0]
    assert (first["name"], first["status"], first["base_calls"], first["head_calls"]) == (
        "aten::mm",
        "calls",
        1.0,
        4.0,
    )

    # One profile per commit: only the first of its rounds was traced.
    store = CsvStore(tmp_path / "r")
    for sha in (base, head):
        runs = {pt.run_id for pt in store.points(PointFilter(shas=[sha], case=CASE))}
        profiled = {
            pt.run_id
            for pt in store.points(PointFilter(shas=[sha], case=CASE, metric=TIME_PER_ITER))
        }
        assert len(runs) >= 3 and len(profiled) == 1, (len(runs), len(profiled))

    md = cli("check", base, head, *where, "--markdown")  # profiles recorded: reused
    assert md.code == 1
    assert f"#### Why: {CASE}: {base[:12]} → {head[:12]}" in md.out
    assert "| `aten::mm` | gemm | calls |" in md.out
