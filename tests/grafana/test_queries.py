"""Every panel target, annotation, variable and alert query, expanded as Grafana does
and executed on the seeded database as the read-only role in a READ ONLY transaction."""

from __future__ import annotations

import numbers
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from commitbench.grafana import dashboards, names
from commitbench.grafana.expand import QueryContext, expand
from commitbench.grafana.queries import Query, contexts, queries, resolve_variables, time_range
from tests.grafana.conftest import REGRESSED_METRIC, Seeded

ROOT = Path(__file__).resolve().parents[2]
MAX_POINTS_PER_SERIES = 2000

DASHBOARDS = dashboards()
ALL_QUERIES = [q for d in DASHBOARDS.values() for q in queries(d)]


class Result:
    def __init__(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.rows = rows

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]


def run_readonly(conn: psycopg.Connection[tuple[Any, ...]], text: str) -> Result:
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SET TRANSACTION READ ONLY")
        cur.execute(text.encode())
        columns = [d.name for d in cur.description or ()]
        rows = cur.fetchall()
    return Result(columns, rows)


def _numeric(value: Any) -> bool:
    return value is None or (
        isinstance(value, numbers.Real | Decimal) and not isinstance(value, bool)
    )


# What a user picks beyond the defaults on Trends: the regressed metric and every case
# (the defaults, the first metric and case, have no regression to annotate).
CHOICES = {
    names.TRENDS_UID: {
        "metric": lambda options: (REGRESSED_METRIC,),
        "case": lambda options: options,
    }
}


def _resolved(conn: psycopg.Connection[tuple[Any, ...]], uid: str, now: datetime) -> Any:
    dashboard = next(d for d in DASHBOARDS.values() if d["uid"] == uid)
    frm, to = time_range(dashboard, now)
    variables = resolve_variables(
        dashboard, lambda s: run_readonly(conn, s).rows, frm, to, CHOICES.get(uid)
    )
    return variables, frm, to


def check_time_series(query: Query, result: Result) -> None:
    assert "time" in result.columns, f"{query.name}: no time column in {result.columns}"
    times = result.column("time")
    keys = [c for c in result.columns if c == "metric"]
    series: dict[Any, list[Any]] = defaultdict(list)
    for row in result.rows:
        key = tuple(row[result.columns.index(k)] for k in keys)
        series[key].append(row[result.columns.index("time")])
    assert times == sorted(times), f"{query.name}: rows are not ordered by time"
    for key, points in series.items():
        assert len(points) == len(set(points)), f"{query.name}: duplicate times in {key}"
        assert len(points) <= MAX_POINTS_PER_SERIES, f"{query.name}: {len(points)} points"
    values = [c for c in result.columns if c not in ("time", "metric")]
    numeric = [c for c in values if all(_numeric(v) for v in result.column(c))]
    if query.fmt == "time_series":
        assert numeric == values, f"{query.name}: non-numeric value columns"
    assert numeric, f"{query.name}: no numeric value column"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_query_runs_read_only_and_has_data(seeded: Seeded, reader: Any, query: Query) -> None:
    variables, frm, to = _resolved(reader, query.dashboard, seeded.now)
    for ctx in contexts(query, variables, frm, to):
        result = run_readonly(reader, expand(query.sql, ctx))
        assert result.rows, f"{query.name}: empty on the seeded data"
        if query.kind == "variable":
            assert len(result.columns) == 1, f"{query.name}: {result.columns}"
        elif query.kind == "annotation":
            assert {"time", "text"} <= set(result.columns), query.name
            times = result.column("time")
            assert times == sorted(times), f"{query.name}: not ordered by time"
        elif query.panel_type == "timeseries" and not query.config_only:
            check_time_series(query, result)


def test_variables_resolve_to_seeded_values(seeded: Seeded, reader: Any) -> None:
    variables, _, _ = _resolved(reader, names.TRENDS_UID, seeded.now)
    assert variables["repository"].values == ("https://example.com/acme/model.git",)
    assert variables["branch"].values == ("main",)
    assert variables["machine"].values[0].startswith("NVIDIA H100 80GB HBM3 #")
    assert variables["metric"].values == (REGRESSED_METRIC,)
    assert variables["case"].options == ("matmul.matmul[impl=fp16,shape=4096x12288]",)
    overview, _, _ = _resolved(reader, names.OVERVIEW_UID, seeded.now)
    assert len(overview["metric"].values) == 10  # All: every metric name


def test_overview_highlights_the_open_regression(seeded: Seeded, reader: Any) -> None:
    variables, frm, to = _resolved(reader, names.OVERVIEW_UID, seeded.now)
    query = next(
        q for q in queries(DASHBOARDS["overview.json"]) if q.title.startswith("Latest result")
    )
    result = run_readonly(reader, expand(query.sql, QueryContext(frm, to, variables)))
    rows = [dict(zip(result.columns, r, strict=True)) for r in result.rows]
    assert len(rows) == 14  # every (case, metric) with an ok result
    regressed = rows[0]  # open regressions first
    assert (regressed["case"], regressed["metric"]) == (
        "matmul.matmul[impl=fp16,shape=4096x12288]",
        REGRESSED_METRIC,
    )
    assert regressed["open regressions"] == 1
    assert regressed["worse by"] == pytest.approx(20, abs=5)
    assert all(r["open regressions"] == 0 for r in rows[1:])
    # The matmul case's throughput fell with its time; nothing else moved.
    unchanged = [r for r in rows if not r["case"].startswith("matmul.")]
    assert all(abs(r["worse by"]) < 7 for r in unchanged)
    throughput = {r["metric"]: r["worse by"] for r in rows if r["case"].startswith("matmul.")}
    assert throughput["matmul.tflops"] == pytest.approx(16.7, abs=5)


def test_attention_grid_marks_oom(seeded: Seeded, reader: Any) -> None:
    variables, frm, to = _resolved(reader, names.WORKLOADS_UID, seeded.now)
    query = next(q for q in queries(DASHBOARDS["workloads.json"]) if q.title == "Attention grid")
    result = run_readonly(reader, expand(query.sql, QueryContext(frm, to, variables)))
    cells = {(r[0], r[1]): r[2] for r in result.rows}
    assert cells[("attention.attention d=64,impl=eager", "4096")] == -1
    assert cells[("attention.attention d=64,impl=sdpa", "1024")] > 0
    assert Counter(r[1] for r in result.rows) == {"1024": 1, "4096": 2}


def test_device_panels_downsample_a_long_run(seeded: Seeded, reader: Any) -> None:
    """Over a day the 100 ms samples of a 20 s case fall into a few $__interval buckets."""
    variables, frm, to = _resolved(reader, names.DEVICE_UID, seeded.now)
    query = next(q for q in queries(DASHBOARDS["device.json"]) if q.title == "GPU utilization")
    ctx = QueryContext(frm, to, variables, max_data_points=query.max_data_points)
    assert ctx.interval_ms == 60_000  # 24 h / 1000 points, rounded as Grafana does
    result = run_readonly(reader, expand(query.sql, ctx))
    per_gpu = Counter(result.column("metric"))
    assert set(per_gpu) == {"GPU 0", "GPU 1"}
    assert max(per_gpu.values()) <= 1440


def test_alert_rule_query_finds_the_new_regression(seeded: Seeded, reader: Any) -> None:
    path = ROOT / "grafana/provisioning/alerting/regressions.yaml"
    rule = yaml.safe_load(path.read_text())["groups"][0]["rules"][0]
    query = next(d for d in rule["data"] if d["datasourceUid"] == names.DATASOURCE_UID)
    window = query["relativeTimeRange"]
    ctx = QueryContext(
        seeded.now - timedelta(seconds=window["from"]),
        seeded.now,
    )
    result = run_readonly(reader, expand(query["model"]["rawSql"], ctx))
    assert result.columns[-1] == "new_open_regressions"
    assert result.rows == [
        (
            "matmul.matmul[impl=fp16,shape=4096x12288]",
            REGRESSED_METRIC,
            "main",
            result.rows[0][3],
            1.0,
        )
    ]
    assert result.rows[0][3].startswith("NVIDIA H100 80GB HBM3 #")
