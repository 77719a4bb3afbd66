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

from commitbench.analysis.compare import Policies, Row, compare_commits
from commitbench.analysis.machinestate import CaseState, case_states
from commitbench.analysis.series import build
from commitbench.model import state
from commitbench.model.cases import case_matches
from commitbench.model.points import PointFilter, Series, SeriesPoint
from commitbench.model.profile import CATEGORIES, SHARE_PREFIX, is_profile
from commitbench.model.records import DeviceSample, RunData
from commitbench.model.state import is_state
from commitbench.model.text import printable
from commitbench.model.words import plural
from commitbench.report import plots
from commitbench.store.base import ReadStore

ChangePoints = Callable[[Series], Sequence[tuple[int, float]]]

_CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 8px;border-bottom:1px solid #eee;
text-align:left}code{font-size:12px}.regressed{color:#c00;font-weight:bold}.improved{color:#080}
.noisy,.ambiguous{color:#a60}.unchanged{color:#888}figure{margin:12px 0}
figcaption{font-size:12px;color:#555}
img{max-width:100%}
"""


@dataclass(frozen=True)
class Figure:
    name: str
    png: bytes
    caption: str


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120]


def latest_comparison(
    store: ReadStore,
    points: Sequence[SeriesPoint],
    policies: Policies,
    *,
    case: str | None = None,
    metrics: Sequence[str] = (),
) -> tuple[str, list[Row]]:
    """The newest commit against the one before it, on the machine and profile that
    measured the newest commit: the cases matching `case`, the metrics in `metrics`
    (every metric when empty), compared as `commitbench compare` does."""
    mine = [
        p for p in points if case_matches(p.case, case) and (not metrics or p.metric in metrics)
    ]
    if not mine:
        return "", []
    newest = max(mine, key=lambda p: (p.committed_at or p.measured_at, p.measured_at))
    mine = [p for p in mine if (p.machine, p.profile) == (newest.machine, newest.profile)]
    order: list[str] = []
    for p in sorted(mine, key=lambda p: (p.committed_at or p.measured_at, p.measured_at)):
        if p.sha not in order:
            order.append(p.sha)
    if len(order) < 2:
        return "", []
    base, head = order[-2], order[-1]
    results = store.points(
        PointFilter(repository=newest.repository, shas=[base, head], machine=newest.machine)
    )
    chosen = {(p.case, p.metric) for p in mine}
    rows = compare_commits(
        base,
        head,
        [
            r
            for r in results
            if (r.profile == newest.profile and (r.case, r.metric) in chosen)
            or state.is_state(r.metric)  # the calibration the model reads
        ],
        policies,
    )
    return f"{base[:12]} → {head[:12]} on {newest.machine_label} ({newest.profile})", rows


def module_of(case: str) -> str:
    """The bench module of a case label `module.function[...]`."""
    return case.split("[", 1)[0].rsplit(".", 1)[0]


def choose(series: Sequence[Series], limit: int) -> tuple[list[Series], list[Series]]:
    """At most `limit` series, taken in turn from each bench module (modules and their
    series in order), so every module is represented while the limit allows; the
    rest is returned as left out."""
    queues: dict[str, list[Series]] = {}
    for s in series:
        queues.setdefault(module_of(s.case), []).append(s)
    chosen: list[Series] = []
    depth = 0
    while len(chosen) < min(limit, len(series)):
        for module in sorted(queues):
            if depth < len(queues[module]) and len(chosen) < limit:
                chosen.append(queues[module][depth])
        depth += 1
    taken = {id(s) for s in chosen}
    order = {id(s): i for i, s in enumerate(series)}
    chosen.sort(key=lambda s: order[id(s)])
    return chosen, [s for s in series if id(s) not in taken]


def left_out_note(left: Sequence[Series], shown: int) -> str:
    """One line naming what --max-plots left out, by module; empty when nothing was."""
    if not left:
        return ""
    per: dict[str, int] = {}
    for s in left:
        per[module_of(s.case)] = per.get(module_of(s.case), 0) + 1
    detail = ", ".join(f"{module} {n}" for module, n in sorted(per.items()))
    return (
        f"{shown} of {shown + len(left)} trend plots shown (--max-plots); left out: "
        f"{detail}. Narrow with --case or --metric, or raise --max-plots."
    )


def latest_run(store: ReadStore, points: Sequence[SeriesPoint]) -> RunData | None:
    """The newest run behind the points (its device samples are plotted)."""
    if not points:
        return None
    newest = max(points, key=lambda p: p.measured_at)
    results = store.points(
        PointFilter(repository=newest.repository, shas=[newest.sha], machine=newest.machine)
    )
    recorded = [p for p in results if p.run_id is not None and p.profile == newest.profile]
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
) -> tuple[Path, str]:
    """Write out/index.html and out/*.png; returns the HTML file's path and the line
    that says which plots --max-plots left out (empty when none)."""
    points = store.series_points(PointFilter(repository=repository))
    # The machine's state has its own table (latest_state) and the profile.* series their
    # own section (profile_figures, unless --metric names one), not a trend each.
    timed = [
        p for p in points if not is_state(p.metric) and (bool(metrics) or not is_profile(p.metric))
    ]
    series, left = choose(build(timed, case=case, metrics=metrics), max_plots)
    note = left_out_note(left, len(series))
    figures = [
        Figure(
            f"trend-{slug(s.case)}-{slug(s.metric)}-{slug(s.machine_label)}-{s.profile}.png",
            plots.trend(s, change_points(s)),
            f"{printable(s.title)} on {s.machine_label} ({s.profile}), "
            f"{plural(len(s.shas), 'commit')}" + _runs_note(s),
        )
        for s in series
    ]
    title, rows = latest_comparison(
        store, points, policies or Policies(), case=case, metrics=metrics
    )
    rows = rows if metrics else [r for r in rows if not is_profile(r.metric)]
    device = None
    run = latest_run(store, [p for p in points if case_matches(p.case, case)])
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
    machine = latest_state(store, [p for p in points if case_matches(p.case, case)])
    kernels = profile_figures([p for p in points if case_matches(p.case, case)], max_plots)
    out.mkdir(parents=True, exist_ok=True)
    for fig in [*figures, *kernels, *([device] if device else [])]:
        (out / fig.name).write_bytes(fig.png)
    page = out / "index.html"
    page.write_text(
        render(repository, points, figures, title, rows, device, note, machine, kernels),
        encoding="utf-8",
    )
    return page, note


def latest_state(store: ReadStore, points: Sequence[SeriesPoint]) -> list[CaseState]:
    """The machine's state behind the newest commit's results, per case
    (analysis/machinestate.py), on the machine and profile that measured it."""
    mine = [p for p in points if is_state(p.metric)]
    if not mine:
        return []
    newest = max(mine, key=lambda p: (p.committed_at or p.measured_at, p.measured_at))
    found = store.points(
        PointFilter(repository=newest.repository, shas=[newest.sha], machine=newest.machine)
    )
    return case_states(p for p in found if p.profile == newest.profile)


def _state(states: Sequence[CaseState]) -> str:
    if not states:
        return "<p>No machine state recorded with the newest commit's results.</p>"
    head = (
        "<tr><th>case</th><th>commit</th><th>processes</th><th>calibration</th>"
        "<th>spread</th><th>load</th><th>flags</th></tr>"
    )
    cells = []
    for st in states:
        calib = "" if st.calibration_ms is None else f"{st.calibration_ms:.3g} ms"
        spread = "" if st.calibration_spread_pct is None else f"{st.calibration_spread_pct:.1f}%"
        load = "" if st.load is None else f"{st.load:.2f}"
        flags = "; ".join(st.flags)
        cells.append(
            f"<tr><td><code>{html.escape(printable(st.case))}</code></td>"
            f"<td>{st.sha[:12]}</td><td>{st.processes}</td><td>{calib}</td><td>{spread}</td>"
            f"<td>{load}</td><td class='{'noisy' if flags else 'unchanged'}'>"
            f"{html.escape(flags or 'none')}</td></tr>"
        )
    return f"<table>{head}{''.join(cells)}</table>"


def profile_figures(points: Sequence[SeriesPoint], limit: int) -> list[Figure]:
    """Per case, machine and profile with `--trace` results: the category shares of its
    profiled time (`profile.share.*`) over commits, stacked; at most `limit` of them."""
    groups: dict[tuple[str, str, str], dict[str, dict[str, float]]] = {}
    order: dict[tuple[str, str, str], list[str]] = {}
    for p in sorted(points, key=lambda q: (q.committed_at or q.measured_at, q.sha)):
        if not p.metric.startswith(SHARE_PREFIX):
            continue
        key = (p.case, p.machine_label, p.profile)
        by_sha = groups.setdefault(key, {})
        if p.sha not in by_sha:
            order.setdefault(key, []).append(p.sha)
        by_sha.setdefault(p.sha, {})[p.metric.removeprefix(SHARE_PREFIX)] = p.value
    out = []
    for (case_id, machine, profile), by_sha in sorted(groups.items())[:limit]:
        shas = order[(case_id, machine, profile)]
        stacks = [(c, [by_sha[s].get(c, 0.0) for s in shas]) for c in CATEGORIES]
        name = f"shares-{slug(case_id)}-{slug(machine)}-{profile}.png"
        caption = f"{printable(case_id)} on {machine} ({profile}): where the time went"
        out.append(Figure(name, plots.shares(caption, shas, stacks), caption))
    return out


def _runs_note(s: Series) -> str:
    """How many commits' values come from several runs (their band is the span)."""
    several = sum(1 for r in s.runs if r > 1)
    return f"; {several} of them measured in several runs" if several else ""


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
        spread = "" if c.spread is None else f"±{c.spread * 100:.1f}% "
        verdict = f"{c.verdict} ({c.note})" if c.note else c.verdict
        factor, unit = plots.scale([c.base, c.head], r.unit)
        cells.append(
            f"<tr><td><code>{html.escape(printable(r.case))}</code></td><td>{html.escape(r.metric)}</td>"
            f"<td>{c.base / factor:.4g} {html.escape(unit)}</td>"
            f"<td>{c.head / factor:.4g} {html.escape(unit)}</td>"
            f"<td>{c.change * 100:+.1f}%</td>"
            f"<td>{ci}</td><td>{p}</td>"
            f"<td>{spread}{c.processes_base}/{c.processes_head}</td>"
            f"<td class='{c.verdict}'>{html.escape(verdict)}</td></tr>"
        )
    head = (
        "<tr><th>case</th><th>metric</th><th>base</th><th>head</th><th>change</th>"
        "<th>95% CI</th><th>p</th><th>processes</th><th>verdict</th></tr>"
    )
    return f"<table>{head}{''.join(cells)}</table>"


def render(
    repository: str | None,
    points: Sequence[SeriesPoint],
    figures: Sequence[Figure],
    compare_title: str,
    rows: Sequence[Row],
    device: Figure | None,
    note: str = "",
    machine: Sequence[CaseState] = (),
    kernels: Sequence[Figure] = (),
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
        "<p>Each point is a commit's value: the median of the medians of every run of "
        "it on the machine and profile; the band its 95% interval (with several runs, "
        "from the lowest to the highest of theirs).</p>",
        *([f"<p class='noisy'>{html.escape(note)}</p>"] if note else []),
        *(map(_img, figures) if figures else ["<p>No timings recorded.</p>"]),
        "<h2>Machine state</h2>",
        "<p>Behind the newest commit's results: the calibration loop timed when each "
        "worker process started and ended (median, and spread: (max - min) / median "
        "over the processes), the load average, and what makes a number less "
        "trustworthy: contention (wall time over CPU time above 1.1, or CPU steal), GPU "
        "throttling, other processes on the GPU.</p>",
        _state(machine),
        "<h2>Where the time went</h2>",
        "<p>Share of each case's profiled time by category (operators' self CPU time, or "
        "kernels' device time on CUDA), per commit measured with <code>--trace</code>; "
        "<code>commitbench explain</code> names what changed.</p>",
        *(map(_img, kernels) if kernels else ["<p>No profiles (run with --trace).</p>"]),
        "<h2>Device utilization</h2>",
        _img(device) if device else "<p>No device samples in the latest run.</p>",
        "</body></html>",
    ]
    return "\n".join(parts)
