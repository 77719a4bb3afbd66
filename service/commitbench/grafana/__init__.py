"""Grafana dashboards generated from code, written to grafana/dashboards/*.json.

`python -m commitbench.grafana` rewrites the committed files; `--check` fails when
they differ from what this package generates (tests/grafana run the same check).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from commitbench.grafana import builder, device, overview, profiles, trends, workloads

BUILDERS: dict[str, Callable[[], builder.Json]] = {
    "overview.json": overview.build,
    "trends.json": trends.build,
    "device.json": device.build,
    "workloads.json": workloads.build,
    "profiles.json": profiles.build,
}


def dashboards() -> dict[str, builder.Json]:
    """File name -> dashboard JSON model."""
    return {name: build() for name, build in BUILDERS.items()}


def render(dashboard: builder.Json) -> str:
    """Stable text: two-space indent, key order as built, a final newline."""
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, dashboard in dashboards().items():
        path = directory / name
        path.write_text(render(dashboard), encoding="utf-8")
        written.append(path)
    return written


def stale(directory: Path) -> list[str]:
    """Names of the files in `directory` that differ from the generated dashboards."""
    out = []
    for name, dashboard in dashboards().items():
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != render(dashboard):
            out.append(name)
    extra = {p.name for p in directory.glob("*.json")} - set(BUILDERS)
    return out + sorted(extra)
