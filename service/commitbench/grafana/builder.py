"""Small builders for Grafana's dashboard JSON model (schemaVersion 39), as plain dicts.

Only what the commitbench dashboards use. Every query goes to the provisioned
PostgreSQL data source; every variable a query uses is declared on the dashboard.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from commitbench.grafana import names

Json = dict[str, Any]

SCHEMA_VERSION = 39
REFRESH_ON_LOAD = 1
REFRESH_ON_TIME_RANGE = 2


def target(sql: str, *, ref: str = "A", fmt: str = "table") -> Json:
    """A raw-SQL query; fmt is 'table' or 'time_series'."""
    return {
        "datasource": dict(names.DATASOURCE),
        "refId": ref,
        "editorMode": "code",
        "format": fmt,
        "rawQuery": True,
        "rawSql": sql.strip(),
    }


def panel(
    kind: str,
    title: str,
    description: str,
    targets: Sequence[Json],
    *,
    grid: tuple[int, int, int, int],
    unit: str,
    options: Json | None = None,
    defaults: Json | None = None,
    overrides: Sequence[Json] = (),
    transformations: Sequence[Json] = (),
    links: Sequence[Json] = (),
    max_data_points: int | None = None,
    repeat: str | None = None,
) -> Json:
    x, y, w, h = grid
    out: Json = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": dict(names.DATASOURCE),
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": list(targets),
        "fieldConfig": {
            "defaults": {"unit": unit, **(defaults or {})},
            "overrides": list(overrides),
        },
        "options": options or {},
    }
    if transformations:
        out["transformations"] = list(transformations)
    if links:
        out["links"] = list(links)
    if max_data_points is not None:
        out["maxDataPoints"] = max_data_points
    if repeat is not None:
        out["repeat"] = repeat
        out["repeatDirection"] = "v"
    return out


def query_variable(
    name: str,
    label: str,
    sql: str,
    *,
    multi: bool = False,
    include_all: bool = False,
    description: str = "",
) -> Json:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "description": description,
        "datasource": dict(names.DATASOURCE),
        "query": sql.strip(),
        "definition": sql.strip(),
        # Re-run when the time range changes, so the options follow the range shown.
        "refresh": REFRESH_ON_TIME_RANGE,
        "multi": multi,
        "includeAll": include_all,
        "sort": 0,
        "regex": "",
        "current": {},
        "options": [],
        "hide": 0,
        "skipUrlSync": False,
    }


def custom_variable(name: str, label: str, values: Sequence[str], default: str) -> Json:
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "query": ",".join(values),
        "multi": False,
        "includeAll": False,
        "current": {"text": default, "value": default, "selected": True},
        "options": [{"text": v, "value": v, "selected": v == default} for v in values],
        "hide": 0,
        "skipUrlSync": False,
    }


def constant_variable(name: str, value: str) -> Json:
    """A hidden constant: a name from commitbench.grafana.names that queries use."""
    return {
        "type": "constant",
        "name": name,
        "query": value,
        "current": {"text": value, "value": value},
        "hide": 2,
        "skipUrlSync": True,
    }


def annotation(name: str, sql: str, color: str) -> Json:
    """An annotation query: rows with `time` (and `timeend`), `text` and `tags`."""
    return {
        "name": name,
        "datasource": dict(names.DATASOURCE),
        "enable": True,
        "iconColor": color,
        "target": target(sql),
        "rawQuery": sql.strip(),
    }


def link(title: str, url: str) -> Json:
    return {"title": title, "url": url, "targetBlank": False}


def hidden(*fields: str) -> list[Json]:
    """Table overrides that hide the named fields (their values still feed links)."""
    return [
        {
            "matcher": {"id": "byName", "options": f},
            "properties": [{"id": "custom.hidden", "value": True}],
        }
        for f in fields
    ]


def dashboard(
    uid: str,
    title: str,
    description: str,
    *,
    time_from: str,
    variables: Iterable[Json],
    panels: Iterable[Json],
    annotations: Iterable[Json] = (),
) -> Json:
    listed = list(panels)
    for number, p in enumerate(listed, start=1):
        p["id"] = number
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": list(names.TAGS),
        "editable": False,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "refresh": "",
        "liveNow": False,
        "fiscalYearStartMonth": 0,
        "links": [
            {
                "type": "dashboards",
                "tags": list(names.TAGS),
                "asDropdown": False,
                "includeVars": True,
                "keepTime": True,
                "title": "commitbench",
            }
        ],
        "annotations": {"list": list(annotations)},
        "templating": {"list": list(variables)},
        "panels": listed,
    }
