"""Every panel target, annotation, variable and alert query, expanded as Grafana does
and executed as the read-only role in a READ ONLY transaction, on the built-in suite's
real results (tests/grafana/conftest.py): the smoke run on this machine for every
panel, and the GPU results of examples/results/ for the panels only a GPU fills."""

from __future__ import annotations

import numbers
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from commitbench.grafana import common, dashboards, names
from commitbench.grafana.expand import QueryContext, Variable, expand
from commitbench.grafana.queries import (
    Choice,
    Query,
    contexts,
    options_of,
    queries,
    resolve_variables,
    time_range,
)
from commitbench.model.cases import exact_pattern
from commitbench.model.profile import CATEGORIES
from tests.grafana.conftest import GPU_REPOSITORY, SLOWDOWN, Seeded

ROOT = Path(__file__).resolve().parents[2]
MAX_POINTS_PER_SERIES = 2000

DASHBOARDS = dashboards()
BY_UID = {d["uid"]: d for d in DASHBOARDS.values()}
ALL_QUERIES = [q for d in DASHBOARDS.values() for q in queries(d)]

# Panels whose numbers only a GPU records: NVML's readings, and the share of a GPU's
# dense peak. They are checked on the GPU results; on the CPU smoke run they must have
# no value at all (so this list cannot hide a panel that should have one).
GPU_ONLY = {
    (names.DEVICE_UID, "GPU utilization"),
    (names.DEVICE_UID, "GPU memory"),
    (names.DEVICE_UID, "Power"),
    (names.DEVICE_UID, "SM clock"),
    (names.DEVICE_UID, "Temperature"),
    (names.WORKLOADS_UID, "Matmul: % of peak"),
}
H100_RUN = "5e150496-ddc1-44dc-8461-bf3799752920"  # examples/results/h100-80gb-hbm3


class Result:
    def __init__(self, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.columns = columns
        self.rows = rows

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [r[i] for r in self.rows]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self.rows]


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


def _text(prefix: str) -> Choice:
    """Select the options whose text starts with `prefix`."""

    def choose(values: tuple[str, ...], texts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v for v, t in zip(values, texts, strict=True) if t.startswith(prefix))

    return choose


def _value(value: str) -> Choice:
    return lambda values, texts: (value,)


def _every(values: tuple[str, ...], texts: tuple[str, ...]) -> tuple[str, ...]:
    return values


@dataclass(frozen=True)
class Scene:
    """What a user looks at: choices of variables and a time range (None: the default)."""

    choices: dict[str, Choice]
    time: tuple[datetime, datetime] | None = None


def smoke_scene(seeded: Seeded, uid: str) -> Scene:
    """The smoke run's series on this machine; on Trends, the stepped metric."""
    choices: dict[str, Choice] = {
        "repository": _value(seeded.repository),
        "machine": _text(seeded.cpu_label),
        "profile": _value("smoke"),
    }
    if uid == names.TRENDS_UID:
        choices |= {"metric": _value(seeded.stepped_metric), "case": _every}
    return Scene(choices)


def gpu_scene(seeded: Seeded, uid: str) -> Scene:
    """The H100 run of the whole suite, over the day it was measured."""
    span = seeded.gpu_span
    choices: dict[str, Choice] = {
        "repository": _value(GPU_REPOSITORY),
        "machine": _text("NVIDIA H100"),
        "profile": _value("full"),
    }
    if uid == names.DEVICE_UID:
        choices = {"run": _value(H100_RUN)}
    return Scene(choices, (span[0] - timedelta(days=1), span[1] + timedelta(days=1)))


def resolved(
    conn: psycopg.Connection[tuple[Any, ...]], seeded: Seeded, uid: str, scene: Scene
) -> tuple[dict[str, Variable], datetime, datetime]:
    dashboard = BY_UID[uid]
    frm, to = scene.time or time_range(dashboard, seeded.now)

    def run(text: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        result = run_readonly(conn, text)
        return result.columns, result.rows

    return resolve_variables(dashboard, run, frm, to, scene.choices), frm, to


def has_values(result: Result) -> bool:
    """Some row has a number that is not NULL beside its time and name."""
    values = [c for c in result.columns if c not in ("time", "timeend", "metric")]
    return any(v is not None and _numeric(v) for c in values for v in result.column(c))


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
    assert any(v is not None for c in numeric for v in result.column(c)), query.name


def execute(reader: Any, seeded: Seeded, query: Query, scene: Scene) -> list[Result]:
    variables, frm, to = resolved(reader, seeded, query.dashboard, scene)
    return [
        run_readonly(reader, expand(query.sql, ctx)) for ctx in contexts(query, variables, frm, to)
    ]


@pytest.mark.parametrize("query", ALL_QUERIES, ids=lambda q: q.name)
def test_query_runs_read_only_and_has_data(seeded: Seeded, reader: Any, query: Query) -> None:
    smoke = execute(reader, seeded, query, smoke_scene(seeded, query.dashboard))
    assert smoke, f"{query.name}: no panel to draw"
    gpu_only = (query.dashboard, query.title) in GPU_ONLY
    if gpu_only:
        assert not any(has_values(r) for r in smoke), f"{query.name} has CPU data: not GPU-only"
        results = execute(reader, seeded, query, gpu_scene(seeded, query.dashboard))
    else:
        results = smoke
    for result in results:
        assert result.rows, f"{query.name}: empty on the seeded data"
        if query.kind == "variable":
            assert result.columns in (["__text", "__value"], [result.columns[0]]), query.name
        elif query.kind == "annotation":
            assert {"time", "text"} <= set(result.columns), query.name
            times = result.column("time")
            assert times == sorted(times), f"{query.name}: not ordered by time"
        elif query.panel_type == "timeseries" and not query.config_only:
            check_time_series(query, result)
        if gpu_only:
            assert has_values(result), f"{query.name}: no value on the GPU results"


def test_variables_resolve_to_seeded_values(seeded: Seeded, reader: Any) -> None:
    variables, _, _ = resolved(
        reader, seeded, names.TRENDS_UID, smoke_scene(seeded, names.TRENDS_UID)
    )
    assert variables["repository"].options == tuple(sorted((GPU_REPOSITORY, seeded.repository)))
    # Branches: the backfill and the confirmation run recorded none; All by default.
    assert variables["branch"].options == ("", "main")
    assert variables["branch"].values == ("", "main")
    machine = variables["machine"]
    assert len(machine.values) == 1 and machine.values[0].isdigit()  # the id, not a label
    assert variables["metric"].values == (seeded.stepped_metric,)
    assert seeded.stepped_case in variables["case"].options
    gpu, _, _ = resolved(
        reader, seeded, names.WORKLOADS_UID, gpu_scene(seeded, names.WORKLOADS_UID)
    )
    assert gpu["branch"].options == ("suite",)


def test_machine_and_branch_variables_show_text_and_give_values(
    seeded: Seeded, reader: Any
) -> None:
    """__text is what the picker shows, __value what the queries get."""
    dashboard = BY_UID[names.TRENDS_UID]
    machine = next(v for v in dashboard["templating"]["list"] if v["name"] == "machine")
    result = run_readonly(reader, machine["query"])
    values, texts = options_of(result.columns, result.rows)
    ids = {str(r[0]) for r in run_readonly(reader, "SELECT id FROM machines").rows}
    assert set(values) == ids
    assert sorted(t.rsplit(" #", 1)[0] for t in texts) == sorted(
        [seeded.cpu_label, "NVIDIA H100 80GB HBM3", "2x NVIDIA H200"]
    )
    assert all(t.endswith(f" #{v}") for v, t in zip(values, texts, strict=True))


def test_trend_shows_commit_values_with_the_step(seeded: Seeded, reader: Any) -> None:
    scene = smoke_scene(seeded, names.TRENDS_UID)
    scene.choices["case"] = _value(seeded.stepped_case)
    query = next(q for q in queries(BY_UID[names.TRENDS_UID]) if q.ref == "A" and q.kind == "panel")
    (result,) = execute(reader, seeded, query, scene)
    values = result.column("value")
    assert len(values) == 31  # the real commit and the 30 replayed, backfill included
    before, after = values[1:16], values[16:]
    assert min(after) / max(before) > SLOWDOWN * 0.95
    commits = next(q for q in queries(BY_UID[names.TRENDS_UID]) if q.title == "Commits")
    (table,) = execute(reader, seeded, commits, scene)
    newest = table.dicts()[0]
    assert (newest["runs"], newest["branches"]) == (2, "main")  # nightly + confirmation
    assert newest["value"] == values[-1]


def test_branch_choice_selects_commits(seeded: Seeded, reader: Any) -> None:
    query = next(q for q in queries(BY_UID[names.TRENDS_UID]) if q.ref == "A" and q.kind == "panel")
    counts = {}
    for branch in ("", "main"):
        scene = smoke_scene(seeded, names.TRENDS_UID)
        scene.choices.update(case=_value(seeded.stepped_case), branch=_value(branch))
        (result,) = execute(reader, seeded, query, scene)
        counts[branch] = len(result.rows)
    assert counts == {"": 10, "main": 21}  # the backfill; the real run and the nightly


def test_overview_highlights_the_open_regression(seeded: Seeded, reader: Any) -> None:
    query = next(
        q for q in queries(BY_UID[names.OVERVIEW_UID]) if q.title.startswith("Latest result")
    )
    (result,) = execute(reader, seeded, query, smoke_scene(seeded, names.OVERVIEW_UID))
    rows = result.dicts()
    regressed = rows[0]  # open regressions first
    assert (regressed["case"], regressed["metric"]) == (
        seeded.stepped_case,
        seeded.stepped_metric,
    )
    assert regressed["open regressions"] == 1
    assert regressed["baseline commits"] == 7
    assert regressed["runs"] == 2  # the newest commit was measured twice
    # The step is older than the last 8 commits: latest and baseline are both slow.
    assert abs(regressed["worse by"]) < 5
    assert all(r["open regressions"] == 0 for r in rows[1:])


def test_the_machine_state_is_its_own_panel_not_a_latest_result(
    seeded: Seeded, reader: Any
) -> None:
    """The smoke run recorded state.* metrics (load, calibration, ...): the Overview's
    latest results leave them out, Trends' Machine state panel draws them."""
    overview = next(
        q for q in queries(BY_UID[names.OVERVIEW_UID]) if q.title.startswith("Latest result")
    )
    (latest,) = execute(reader, seeded, overview, smoke_scene(seeded, names.OVERVIEW_UID))
    metrics = set(latest.column("metric"))
    assert seeded.stepped_metric in metrics
    assert not [m for m in metrics if m.startswith("state.")]
    panel = next(q for q in queries(BY_UID[names.TRENDS_UID]) if q.title == "Machine state")
    drawn = execute(reader, seeded, panel, smoke_scene(seeded, names.TRENDS_UID))
    values = [row for result in drawn for row in result.dicts()]
    assert values and all(v["calibration_ms"] > 0 and v["load"] >= 0 for v in values)
    assert all(v["throttled_pct"] is None for v in values)  # no GPU in the smoke run


def test_attention_grid_marks_oom(seeded: Seeded, reader: Any) -> None:
    """On the H100 with 60 GiB held (the latest attention run), the naive cells at
    sequence 16384 ran out of memory."""
    query = next(q for q in queries(BY_UID[names.WORKLOADS_UID]) if q.title == "Attention grid")
    (result,) = execute(reader, seeded, query, gpu_scene(seeded, names.WORKLOADS_UID))
    cells = {(r[0], r[1]): r[2] for r in result.rows}
    ooms = sorted(config for (config, seq), value in cells.items() if value == -1)
    assert ooms and all("impl=naive" in c for c in ooms)
    assert {seq for (_, seq), value in cells.items() if value == -1} == {"16384"}
    assert all(value is not None and value != 0 for value in cells.values())


def test_device_panels_downsample_a_long_run(seeded: Seeded, reader: Any) -> None:
    """Over a day the 100 ms samples of the H100 run fall into $__interval buckets."""
    query = next(q for q in queries(BY_UID[names.DEVICE_UID]) if q.title == "GPU utilization")
    end = seeded.gpu_span[1] + timedelta(hours=1)
    scene = Scene({"run": _value(H100_RUN)}, (end - timedelta(days=1), end))
    variables, frm, to = resolved(reader, seeded, names.DEVICE_UID, scene)
    (ctx,) = contexts(query, variables, frm, to)
    assert ctx.interval_ms == 60_000  # 24 h / 1000 points, rounded as Grafana does
    result = run_readonly(reader, expand(query.sql, ctx))
    per_gpu = Counter(result.column("metric"))
    assert set(per_gpu) == {"GPU 0"}
    assert 1 < max(per_gpu.values()) <= 1440


def test_allreduce_panel_shows_bus_bandwidth(seeded: Seeded, reader: Any) -> None:
    """busbw as benches/allreduce.py records it, on the smoke run and the 2x H200 run."""
    query = next(
        q for q in queries(BY_UID[names.WORKLOADS_UID]) if q.title == "All-reduce bus bandwidth"
    )
    (smoke,) = execute(reader, seeded, query, smoke_scene(seeded, names.WORKLOADS_UID))
    assert {m.rsplit(" ", 1)[1] for m in smoke.column("metric")} == {"busbw"}
    scene = gpu_scene(seeded, names.WORKLOADS_UID)
    scene.choices["machine"] = _text("2x NVIDIA H200")
    (h200,) = execute(reader, seeded, query, scene)
    assert len(h200.rows) >= 4 and all(v > 1 for v in h200.column("value"))  # GB/s


def test_alert_rule_query_finds_the_new_regression(seeded: Seeded, reader: Any) -> None:
    path = ROOT / "grafana/provisioning/alerting/regressions.yaml"
    rule = yaml.safe_load(path.read_text())["groups"][0]["rules"][0]
    query = next(d for d in rule["data"] if d["datasourceUid"] == names.DATASOURCE_UID)
    window = query["relativeTimeRange"]
    now = datetime.now(seeded.now.tzinfo)
    ctx = QueryContext(now - timedelta(seconds=window["from"]), now)
    result = run_readonly(reader, expand(query["model"]["rawSql"], ctx))
    assert result.columns[-1] == "new_open_regressions"
    assert [(*r[:3], r[4]) for r in result.rows] == [
        (seeded.stepped_case, seeded.stepped_metric, "main", 1.0)
    ]


@pytest.mark.parametrize(
    ("columns", "rows", "values", "texts"),
    [
        (
            ["__text", "__value"],
            [("H100 #2", "2"), ("Xeon #1", "1")],
            ("2", "1"),
            ("H100 #2", "Xeon #1"),
        ),
        (["__value", "__text"], [("", "(no branch)")], ("",), ("(no branch)",)),
        (["label"], [("a",), ("b",), ("a",)], ("a", "b"), ("a", "b")),
        (["x", "y"], [("a", "b")], ("a", "b"), ("a", "b")),
    ],
)
def test_variable_options_as_grafana_reads_them(
    columns: list[str], rows: list[tuple[str, ...]], values: tuple[str, ...], texts: tuple[str, ...]
) -> None:
    """ResponseParser.transformMetricFindResponse: __text/__value pairs, else every
    value of every column; unique by text."""
    assert options_of(columns, rows) == (values, texts)


def test_kernels_panel_stacks_the_profiled_category_shares(seeded: Seeded, reader: Any) -> None:
    """The stepped matmul case was profiled (run --trace) at the real commit and its
    profile.* metrics replayed at the two commits around the step: the Profiles
    dashboard offers that case alone, and its Kernels panel draws every category's
    share at those three commits, adding up to 100% (the replay's +-1% noise aside)."""
    uid = names.PROFILES_UID
    variables, _, _ = resolved(reader, seeded, uid, smoke_scene(seeded, uid))
    assert variables["case"].options == (seeded.stepped_case,)
    query = next(q for q in queries(BY_UID[uid]) if q.title.startswith("Kernels"))
    (result,) = execute(reader, seeded, query, smoke_scene(seeded, uid))
    by_time: dict[Any, dict[str, float]] = defaultdict(dict)
    for row in result.dicts():
        by_time[row["time"]][row["metric"]] = row["value"]
    assert len(by_time) == len(seeded.profiled) == 3
    for shares in by_time.values():
        assert set(shares) == set(CATEGORIES)
        assert 97 < sum(shares.values()) < 103
        assert max(shares, key=lambda c: shares[c]) == "gemm"  # aten::mm on this CPU


def test_profiles_table_lists_files_and_the_explain_command(seeded: Seeded, reader: Any) -> None:
    uid = names.PROFILES_UID
    query = next(q for q in queries(BY_UID[uid]) if q.title.startswith("Profiles of"))
    (result,) = execute(reader, seeded, query, smoke_scene(seeded, uid))
    rows = result.dicts()
    assert [r["commit"] for r in rows] == [sha[:10] for sha in reversed(seeded.profiled)]
    newest, before, first = seeded.profiled[2], seeded.profiled[1], seeded.profiled[0]
    assert [r["explain against the previous profile"] for r in rows] == [
        f"commitbench explain {before[:12]} {newest[:12]} --case '{seeded.stepped_case}'",
        f"commitbench explain {first[:12]} {before[:12]} --case '{seeded.stepped_case}'",
        None,
    ]
    traces = {r["chrome trace sha256"] for r in rows}
    (sha,) = traces  # the replayed profiles name the real one's trace
    stored = run_readonly(
        reader, f"SELECT kind, case_label FROM profile_artifacts WHERE sha256 = '{sha}'"
    )
    assert stored.rows == [("chrome_trace", seeded.stepped_case)]
    assert [r["files"] for r in rows] == ["in the database"] * 3
    assert all(r["memory snapshot sha256"] is None for r in rows)  # no CUDA here
    assert all(r["time per iteration"] > 0 for r in rows)


def test_open_regression_names_its_two_profiles(seeded: Seeded, reader: Any) -> None:
    """The step was found at a commit whose case has a profile, against a baseline
    commit that has one too: the table says so and gives the explain command."""
    query = next(
        q
        for q in queries(BY_UID[names.OVERVIEW_UID])
        if q.title == "Open regressions" and q.panel_type == "table"
    )
    (result,) = execute(reader, seeded, query, smoke_scene(seeded, names.OVERVIEW_UID))
    (row,) = result.dicts()
    base, head = seeded.profiled[1], seeded.profiled[2]
    assert (row["case"], row["commit"], row["baseline commit"]) == (
        seeded.stepped_case,
        head[:10],
        base[:10],
    )
    assert row["profiles"] == "both"
    assert row["why (command)"] == (
        f"commitbench explain {base[:12]} {head[:12]} --case '{seeded.stepped_case}'"
    )
    machine = run_readonly(reader, "SELECT machine_id::text FROM regressions").column("machine_id")
    assert machine == [row["machine_id"]]  # what the link to the Profiles dashboard passes


def test_the_filter_pattern_in_sql_is_the_one_of_the_cli(reader: Any) -> None:
    """common.EXACT_PATTERN writes model.cases.exact_pattern in SQL (the run command
    an open regression without profiles shows)."""
    labels = ["matmul.dense[dtype=fp16,shape=small]", "tiny.step", "odd[glob=a*b?,set=[x]]"]
    values = ", ".join(f"('{label}')" for label in labels)
    result = run_readonly(
        reader, f"SELECT {common.EXACT_PATTERN} AS p FROM (VALUES {values}) AS ca(label)"
    )
    assert result.column("p") == [exact_pattern(label) for label in labels]
