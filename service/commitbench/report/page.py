"""Assembling the report: data from a store, figures, and one self-contained HTML file
(images embedded as data URIs, CSS inline: it opens offline and travels as one file)."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from commitbench.analysis.compare import Policies, Row, compare_sets, samples_of
from commitbench.analysis.series import build
from commitbench.model.points import Point, PointFilter, Series
from commitbench.model.records import DeviceSample, RunData
from commitbench.model.words import plural
from commitbench.report import plots
from commitbench.store.base import ReadStore

ChangePoints = Callable[[Series], Sequence[tuple[int, float]]]

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eee;
text-align:left}code{font-size:12px}.regressed{color:#c00;font-weight:bold}.improved{color:#080}
.noisy{color:#a60}.unchanged{color:#888}figure{margin:12px 0}figcaption{font-size:12px;color:#555}
img{max-width:100%}
"""


@dataclass(frozen=True)
class Figure:
    name: str
    png: bytes
    caption: str


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


def latest_comparison(points: Sequence[Point], policies: Policies) -> tuple[str, list[Row]]:
    """The newest commit against the one before it, on the machine and profile that
    measured the newest commit."""
    if not points:
        return "", []
    newest = max(points, key=lambda p: (p.committed_at or p.run_started_at, p.run_started_at))
    mine = [p for p in points if (p.machine, p.profile) == (newest.machine, newest.profile)]
    order: list[str] = []
    for p in sorted(mine, key=lambda p: p.committed_at or p.run_started_at):
        if p.sha not in order:
            order.append(p.sha)
    if len(order) < 2:
        return "", []
    base, head = order[-2], order[-1]
    rows = compare_sets(
        samples_of([p for p in mine if p.sha == base]),
        samples_of([p for p in mine if p.sha == head]),
        policies,
    )
    return f"{base[:12]} → {head[:12]} on {newest.machine_label} ({newest.profile})", rows


def latest_run(store: ReadStore, points: Sequence[Point]) -> RunData | None:
    recorded = [p for p in points if p.run_id is not None]
    if not recorded:
        return None
    run_id = max(recorded, key=lambda p: p.run_started_at).run_id
    assert run_id is not None  # noqa: S101 - filtered above
    return store.load_run(run_id)


def write(
    store: ReadStore,
    out: Path,
    *,
    repository: str | None,
    case: str | None = None,
    metrics: Sequence[str] = (),
    policies: Policies | None = None,
    change_points: ChangePoints = lambda s: (),
    max_plots: int = 60,
) -> Path:
    """Write out/index.html and out/*.png; returns the HTML file's path."""
    points = store.points(PointFilter(repository=repository))
    series = build(points, case=case, metrics=metrics)[:max_plots]
    figures = [
        Figure(
            f"trend-{slug(s.case)}-{slug(s.metric)}-{slug(s.machine_label)}-{s.profile}.png",
            plots.trend(s, change_points(s)),
            f"{s.title} on {s.machine_label} ({s.profile}), {plural(len(s.shas), 'commit')}",
        )
        for s in series
    ]
    title, rows = latest_comparison(points, policies or Policies())
    device = None
    run = latest_run(store, points)
    if run is not None:
        tagged: list[tuple[str | None, DeviceSample]] = [
            (r.case.label, s) for r in run.results for s in r.device_samples
        ]
        tagged += [(None, s) for s in (run.end.device_samples if run.end else ())]
        tagged.sort(key=lambda cs: cs[1].time)
        image = plots.device(
            tagged, f"device utilization, run {run.header.run.id} ({run.header.commit.sha[:12]})"
        )
        if image is not None:
            device = Figure("device-latest-run.png", image, "device utilization of the latest run")
    out.mkdir(parents=True, exist_ok=True)
    for fig in [*figures, *([device] if device else [])]:
        (out / fig.name).write_bytes(fig.png)
    page = out / "index.html"
    page.write_text(render(repository, points, figures, title, rows, device), encoding="utf-8")
    return page


def _img(fig: Figure) -> str:
    data = base64.b64encode(fig.png).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(fig.caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(fig.caption)}</figcaption></figure>"
    )


def _rows(rows: Sequence[Row]) -> str:
    cells = []
    for r in rows:
        c = r.comparison
        ci = (
            ""
            if c.ci_low is None or c.ci_high is None
            else f"[{(c.ci_low - 1) * 100:+.1f}%, {(c.ci_high - 1) * 100:+.1f}%]"
        )
        p = "" if c.p_value is None else f"{c.p_value:.2g}"
        cells.append(
            f"<tr><td><code>{html.escape(r.case)}</code></td><td>{html.escape(r.metric)}</td>"
            f"<td>{c.base:.4g} {html.escape(r.unit)}</td><td>{c.head:.4g} {html.escape(r.unit)}"
            f"</td><td>{c.change * 100:+.1f}%</td>"
            f"<td>{ci}</td><td>{p}</td><td class='{c.verdict}'>{c.verdict}</td></tr>"
        )
    head = (
        "<tr><th>case</th><th>metric</th><th>base</th><th>head</th><th>change</th>"
        "<th>95% CI</th><th>p</th><th>verdict</th></tr>"
    )
    return f"<table>{head}{''.join(cells)}</table>"


def render(
    repository: str | None,
    points: Sequence[Point],
    figures: Sequence[Figure],
    compare_title: str,
    rows: Sequence[Row],
    device: Figure | None,
) -> str:
    commits = len({p.sha for p in points})
    machines = sorted({p.machine_label for p in points})
    repositories = sorted({p.repository for p in points}) or [repository or "no results"]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>commitbench report</title><style>{_CSS}</style></head><body>",
        "<h1>commitbench report</h1>",
        f"<p>{html.escape(', '.join(repositories))} · {plural(commits, 'commit')} · "
        f"{html.escape(', '.join(machines) or 'no machine')} · generated {now}</p>",
        f"<h2>Latest comparison {html.escape(compare_title)}</h2>",
        _rows(rows) if rows else "<p>Fewer than two measured commits.</p>",
        "<h2>Trends</h2>",
        *(map(_img, figures) if figures else ["<p>No timings recorded.</p>"]),
        "<h2>Device utilization</h2>",
        _img(device) if device else "<p>No device samples in the latest run.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)
