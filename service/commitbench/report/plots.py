"""Figures for the report, drawn with matplotlib's object API (no pyplot, no display)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.figure import Figure

from commitbench.model.points import Series
from commitbench.model.records import DeviceSample

# Time units a metric may be recorded in, as seconds; a series (or a table row) is
# drawn in the one of them that suits its largest value, so its numbers stay in the
# metric's own kind of unit and one plot or row never mixes scales.
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
_TIME_SCALES = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
LINE = "#1f77b4"
REGRESSION = "#d62728"
IMPROVEMENT = "#2ca02c"


def scale(values: Sequence[float], unit: str) -> tuple[float, str]:
    """(divisor, unit to show): values / divisor are in the unit shown. Times (s, ms,
    us, ns) take the largest unit not above the largest value; other units are kept."""
    own = _TIME_UNITS.get(unit)
    finite = [abs(v) for v in values if v == v]
    if own is None or not finite:
        return 1.0, unit
    top = max(finite) * own
    for factor, name in _TIME_SCALES:
        if top >= factor:
            return factor / own, name
    return 1e-9 / own, "ns"


def png(fig: Figure, *, tight: bool = True) -> bytes:
    """PNG bytes; `tight` crops to the drawn area, which draws the figure twice."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight" if tight else None)
    return buf.getvalue()


def trend(series: Series, change_points: Sequence[tuple[int, float]] = ()) -> bytes:
    """The trend figure (trend_figure) as PNG. Its margins are fixed (see trend_figure)
    rather than cropped: a report draws one per series, and cropping doubles the cost."""
    return png(trend_figure(series, change_points), tight=False)


def trend_figure(series: Series, change_points: Sequence[tuple[int, float]] = ()) -> Figure:
    """Each commit's value (model.points.SeriesPoint: the median of its runs' medians)
    with its 95% interval as a band; change points as vertical lines, red when
    worse (by the metric's direction), green when better. `change_points` holds
    (index of the first commit after the step, relative change)."""
    factor, unit = scale(series.medians, series.unit)
    x = list(range(len(series.medians)))
    y = [v / factor for v in series.medians]
    fig = Figure(figsize=(9, 3.4))
    # Room for the title, the y tick labels and unit, and the rotated commit labels.
    fig.subplots_adjust(left=0.09, right=0.99, top=0.91, bottom=0.24)
    ax = fig.subplots()
    # Where a commit has too few samples for an interval, the band narrows to the value;
    # with no interval at all there is no band, and no legend entry for one.
    if any(
        lo is not None and hi is not None
        for lo, hi in zip(series.ci_low, series.ci_high, strict=True)
    ):
        lo = [m if v is None else v / factor for v, m in zip(series.ci_low, y, strict=True)]
        hi = [m if v is None else v / factor for v, m in zip(series.ci_high, y, strict=True)]
        label = "95% CI" + (" (span over runs)" if any(r > 1 for r in series.runs) else "")
        ax.fill_between(x, lo, hi, color=LINE, alpha=0.2, linewidth=0, label=label)
    ax.plot(x, y, color=LINE, marker="o", markersize=3, linewidth=1.5, label="commit value")
    for index, change in change_points:
        worse = change > 0 if series.direction == "lower" else change < 0
        ax.axvline(
            index - 0.5,
            color=REGRESSION if worse else IMPROVEMENT,
            linestyle="--",
            linewidth=1.5,
            label=f"{change * 100:+.1f}% at {series.shas[index][:8]}",
        )
    ax.set_title(f"{series.title} — {series.machine_label} ({series.profile})", fontsize=10)
    ax.set_ylabel(unit)
    ax.set_xlabel("commit")
    ticks = x if len(x) <= 12 else x[:: max(1, len(x) // 12)]
    ax.set_xticks(ticks, [series.shas[i][:7] for i in ticks], rotation=45, fontsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return fig


_PANELS = (
    ("gpu_util_pct", "GPU utilization", "%"),
    ("gpu_mem_mib", "GPU memory", "MiB"),
    ("power_w", "GPU power", "W"),
    ("cpu_util_pct", "CPU utilization (worker tree)", "%"),
    ("rss_mib", "RSS (worker tree)", "MiB"),
)


def device(samples: Sequence[tuple[str | None, DeviceSample]], title: str) -> bytes | None:
    """Device samples of one run over time, one panel per quantity that was measured,
    the running case shaded. None when there are no samples."""
    if not samples:
        return None
    t0 = min(s.time for _, s in samples)
    panels = [p for p in _PANELS if any(getattr(s, p[0]) is not None for _, s in samples)]
    if not panels:
        return None
    height = 1.8 * len(panels) + 0.9
    fig = Figure(figsize=(9, height))
    # Fixed margins, in inches, for the title above and the axis label below (cropping
    # instead would draw the figure twice).
    fig.subplots_adjust(
        left=0.09, right=0.99, top=1 - 0.55 / height, bottom=0.5 / height, hspace=0.45
    )
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    gpus = sorted({s.gpu_index for _, s in samples}, key=lambda g: -1 if g is None else g)
    for ax, (field, label, unit) in zip(axes, panels, strict=True):
        for gpu in gpus:
            pts = [
                ((s.time - t0).total_seconds(), getattr(s, field))
                for _, s in samples
                if s.gpu_index == gpu and getattr(s, field) is not None
            ]
            if pts:
                name = "host" if gpu is None else f"GPU {gpu}"
                ax.plot([p[0] for p in pts], [p[1] for p in pts], linewidth=1, label=name)
        ax.set_ylabel(unit)
        ax.set_title(label, fontsize=9, loc="left")
        ax.grid(alpha=0.3)
        _shade_cases(ax, samples, t0)
    axes[-1].set_xlabel("seconds since the run started")
    fig.suptitle(title, fontsize=10)
    return png(fig, tight=False)


def _shade_cases(
    ax: object, samples: Sequence[tuple[str | None, DeviceSample]], t0: object
) -> None:
    spans: dict[str, list[float]] = {}
    for case, s in samples:
        if case is not None:
            t = (s.time - t0).total_seconds()  # type: ignore[operator]
            span = spans.setdefault(case, [t, t])
            span[0], span[1] = min(span[0], t), max(span[1], t)
    for i, (_case, (start, end)) in enumerate(sorted(spans.items(), key=lambda kv: kv[1][0])):
        if i % 2 == 0:
            ax.axvspan(start, end, color="#999999", alpha=0.12, linewidth=0)  # type: ignore[attr-defined]


# One colour per category (model.profile.CATEGORIES order), the same in every chart.
_CATEGORY_COLOURS = (
    "#1f77b4",  # gemm
    "#ff7f0e",  # attention
    "#2ca02c",  # elementwise
    "#d62728",  # reduction_softmax
    "#9467bd",  # normalisation
    "#8c564b",  # memcpy_memset
    "#e377c2",  # communication
    "#7f7f7f",  # other
)


def shares(title: str, shas: Sequence[str], stacks: Sequence[tuple[str, Sequence[float]]]) -> bytes:
    """Category shares (%) of a case's profiled time per commit, stacked; `stacks` holds
    (category, one share per commit) in model.profile.CATEGORIES order."""
    fig = Figure(figsize=(9, 3.2))
    fig.subplots_adjust(left=0.07, right=0.80, top=0.90, bottom=0.24)
    ax = fig.subplots()
    x = list(range(len(shas)))
    ax.stackplot(
        x,
        *[values for _, values in stacks],
        labels=[name for name, _ in stacks],
        colors=_CATEGORY_COLOURS[: len(stacks)],
        alpha=0.85,
    )
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of profiled time")
    ax.set_title(title, fontsize=10)
    ticks = x if len(x) <= 12 else x[:: max(1, len(x) // 12)]
    ax.set_xticks(ticks, [shas[i][:7] for i in ticks], rotation=45, fontsize=7)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return png(fig, tight=False)
