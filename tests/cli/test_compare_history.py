"""`compare` of two commits measured in one process each: `ambiguous` with no history,
decided once the case's history gives a spread between runs (analysis/history.py).

A real repository; the bench records fixed samples whose level is the commit's `LEVEL`
times a per-process factor (0.996, 1.000, 1.004 in turn, from a counter file), so the
spread between processes is exactly known and never depends on the machine.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from commitbench.analysis.twolevel import t_quantile
from tests.gitrepo import GitBuilder

BENCH = """\
from pathlib import Path

import commitbench as cb
import model

COUNTER = Path({counter!r})
FACTORS = (0.996, 1.0, 1.004)


@cb.bench()
def step(ctx: cb.Context) -> None:
    n = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(n + 1))
    level = model.LEVEL * FACTORS[n % 3]
    ctx.record("time", [level * (1 + 0.001 * (k - 7)) for k in range(15)], unit="s")
"""


def test_one_process_a_side_is_decided_by_the_history(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g = GitBuilder(tmp_path / "repo")
    bench = BENCH.format(counter=str(tmp_path / "counter"))
    c0 = g.commit("history 1", {"model.py": "LEVEL = 1.0\n", "benches/ops.py": bench})
    c1 = g.commit("history 2", {"README": "2\n"})
    base = g.commit("base", {"README": "3\n"})
    head = g.commit("head: 10% slower", {"model.py": "LEVEL = 1.1\n"})
    where = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches")
    assert cli("run", base, head, *where).code == 0  # one process each (the counter: 0, 1)

    alone = cli(
        "compare", base, head, "--repo", str(g.path), "--results", str(tmp_path / "r"), "--json"
    )
    (row,) = [r for r in json.loads(alone.out)["rows"] if r["metric"] == "time"]
    assert (row["verdict"], row["spread_from_history"]) == ("ambiguous", False)
    assert row["note"] == "one process per side: the spread between processes is unknown"

    # The history: two commits of the same code in three processes each (counter 2..7).
    assert cli("run", c0, c1, *where, "--processes", "3").code == 0
    decided = cli(
        "compare", base, head, "--repo", str(g.path), "--results", str(tmp_path / "r"), "--json"
    )
    assert decided.code == 1, decided.err
    (row,) = [r for r in json.loads(decided.out)["rows"] if r["metric"] == "time"]
    # Counter 2..4 at c0 and 5..7 at c1: factors (1.004, 0.996, 1.0) twice; df 2 + 2.
    logs = [math.log(f) for f in (1.004, 0.996, 1.0)]
    variance = 2 * sum((x - statistics.fmean(logs)) ** 2 for x in logs) / 4
    ratio = 1.1 * 1.0 / (1.0 * 0.996)  # head ran third (factor 1.0), base second (0.996)
    half = t_quantile(0.975, 4) * math.sqrt(2 * variance)
    assert row["verdict"] == "regressed"
    assert row["spread_from_history"] is True
    assert row["ratio"] == pytest.approx(ratio, rel=1e-9)
    assert row["ci_low"] == pytest.approx(ratio * math.exp(-half), rel=1e-9)
    assert row["ci_high"] == pytest.approx(ratio * math.exp(half), rel=1e-9)
    spread = math.expm1(math.sqrt(variance)) * 100
    assert row["note"] == (
        f"one process per side: the spread between runs (±{spread:.1f}%) is the history's, "
        "2 commits measured more than once"
    )
