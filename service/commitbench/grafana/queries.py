"""Every query of a generated dashboard, and the variable values Grafana would pick.

Used by the tests (execute each query on PostgreSQL) and by perf/dashboard.py (time
each one). Variables resolve in dashboard order, as Grafana does: a query variable
runs its (expanded) query and takes its saved `current` value when that is still an
option, else its first option. A query variable's options are its `__value` column
shown as its `__text` column when it returns both, else every value of every column
(Grafana's SQL ResponseParser.transformMetricFindResponse), unique by text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from commitbench.grafana.builder import Json
from commitbench.grafana.expand import ALL, QueryContext, Variable, expand

_RELATIVE = re.compile(r"^now(?:-(\d+)([smhdwy]))?$")
_UNIT = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
    "y": timedelta(days=365),
}

Rows = Sequence[Sequence[Any]]
# Runs one query: (column names, rows).
RunSql = Callable[[str], tuple[Sequence[str], Rows]]
# What a user selects, given a variable's option values and their texts.
Choice = Callable[[tuple[str, ...], tuple[str, ...]], tuple[str, ...]]


@dataclass(frozen=True)
class Query:
    """One SQL query of a dashboard: a panel target, an annotation or a variable."""

    dashboard: str
    kind: str  # "panel", "annotation" or "variable"
    title: str
    ref: str
    sql: str
    fmt: str = "table"
    panel_type: str | None = None
    max_data_points: int = 1000
    repeat: str | None = None
    # A query only a transformation reads (units via configFromData), not drawn.
    config_only: bool = False

    @property
    def name(self) -> str:
        return f"{self.dashboard} / {self.kind} / {self.title} / {self.ref}"


def relative_time(expr: str, now: datetime) -> datetime:
    """Grafana's 'now-30d' (whole units only; a year is 365 days)."""
    m = _RELATIVE.match(expr)
    if not m:
        raise ValueError(f"unsupported time expression {expr!r}")
    if m.group(1) is None:
        return now
    return now - int(m.group(1)) * _UNIT[m.group(2)]


def time_range(dashboard: Json, now: datetime) -> tuple[datetime, datetime]:
    t = dashboard["time"]
    return relative_time(t["from"], now), relative_time(t["to"], now)


def queries(dashboard: Json) -> Iterator[Query]:
    uid = dashboard["uid"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            yield Query(uid, "variable", var["name"], "-", var["query"])
    for ann in dashboard["annotations"]["list"]:
        yield Query(uid, "annotation", ann["name"], "-", ann["target"]["rawSql"])
    for panel in dashboard["panels"]:
        config_refs = {
            t["options"]["configRefId"]
            for t in panel.get("transformations", [])
            if t["id"] == "configFromData"
        }
        for target in panel["targets"]:
            yield Query(
                uid,
                "panel",
                panel["title"],
                target["refId"],
                target["rawSql"],
                fmt=target["format"],
                panel_type=panel["type"],
                max_data_points=panel.get("maxDataPoints", 1000),
                repeat=panel.get("repeat"),
                config_only=target["refId"] in config_refs,
            )


def _current(var: Json) -> tuple[str, ...]:
    value = var.get("current", {}).get("value")
    if value is None:
        return ()
    return tuple(value) if isinstance(value, list) else (value,)


def options_of(columns: Sequence[str], rows: Rows) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(values, texts) of a query variable's result, as Grafana reads them."""
    if "__text" in columns and "__value" in columns:
        t, v = list(columns).index("__text"), list(columns).index("__value")
        pairs = [(str(r[v]), str(r[t])) for r in rows]
    else:
        pairs = [(str(x), str(x)) for r in rows for x in r]
    unique: dict[str, str] = {}  # text -> value, the first of each text
    for value, text in pairs:
        unique.setdefault(text, value)
    return tuple(unique.values()), tuple(unique)


def resolve_variables(
    dashboard: Json,
    run_sql: RunSql,
    time_from: datetime,
    time_to: datetime,
    choose: Mapping[str, Choice] | None = None,
) -> dict[str, Variable]:
    """The values of the dashboard's variables when it opens with its defaults.

    `choose` maps a variable name to what a user would select from its options.
    """
    resolved: dict[str, Variable] = {}
    for var in dashboard["templating"]["list"]:
        name, kind = var["name"], var["type"]
        multi, include_all = bool(var.get("multi")), bool(var.get("includeAll"))
        if kind == "constant":
            options: tuple[str, ...] = (var["query"],)
            texts = options
        elif kind == "custom":
            options = tuple(o["value"] for o in var["options"])
            texts = tuple(o["text"] for o in var["options"])
        elif kind == "query":
            ctx = QueryContext(time_from, time_to, resolved)
            options, texts = options_of(*run_sql(expand(var["query"], ctx)))
        else:
            raise ValueError(f"variable {name}: unsupported type {kind}")
        current = _current(var)
        if choose and name in choose:
            current = choose[name](options, texts)
        all_selected = current == (ALL,) and include_all
        if all_selected or (current and all(v in options for v in current)):
            selected = current
        else:
            # Grafana selects the first option; with no options the value is empty.
            selected = options[:1] or ("",)
        resolved[name] = Variable(name, selected, options, multi, include_all)
    return resolved


def contexts(
    query: Query, variables: dict[str, Variable], time_from: datetime, time_to: datetime
) -> Iterator[QueryContext]:
    """The contexts a query runs in: one, or one per value of a repeated panel."""
    if query.repeat is None:
        yield QueryContext(time_from, time_to, variables, max_data_points=query.max_data_points)
        return
    repeated = variables[query.repeat]
    for value in repeated.values:
        single = Variable(repeated.name, (value,), repeated.options, repeated.multi)
        yield QueryContext(
            time_from,
            time_to,
            {**variables, repeated.name: single},
            max_data_points=query.max_data_points,
        )
