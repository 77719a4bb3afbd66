"""How an explanation (analysis/explain.py) is shown: a terminal table, Markdown, JSON."""

from __future__ import annotations

from typing import Any

import click
from rich.console import Group
from rich.table import Table
from rich.text import Text

from commitbench.analysis.explain import Candidate, Explanation
from commitbench.cli.common import stdout
from commitbench.model import profile as p
from commitbench.runner.profiles import Explained

SHOWN = 12  # changes listed (the JSON has them all)

_WHAT = {"cpu": "operators, self CPU time", "cuda": "kernels, device time"}
_COUNTER_UNITS = {
    p.TIME_PER_ITER: "s",
    p.HOST_PER_ITER: "s",
    p.DEVICE_PER_ITER: "s",
    p.HOST_OVER_DEVICE: "x",
    p.LAUNCHES_PER_ITER: "",
    p.OPS_PER_ITER: "",
    p.PEAK_ALLOCATED: "MiB",
    p.PEAK_RESERVED: "MiB",
}


def seconds(value: float) -> str:
    size = abs(value)
    if size >= 1:
        return f"{value:.3g} s"
    if size >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def _delta(value: float) -> str:
    return ("+" if value > 0 else "") + seconds(value) if value else "0"


def _calls(c: float) -> str:
    return f"{c:g}"


def _counter(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    unit = _COUNTER_UNITS.get(metric, "")
    if unit == "s":
        return seconds(value)
    if unit == "MiB":
        return f"{value:.1f} MiB"
    return f"{value:.3g}{unit}"


def title(case: str, base: str, head: str, pair: tuple[Candidate, Candidate]) -> str:
    table = pair[1].data.table
    return (
        f"{case}: {base[:12]} → {head[:12]} "
        f"({_WHAT[table.source]}, per iteration of {table.iterations})"
    )


def rich(e: Explanation, heading: str) -> Group:
    changes = Table(
        "name", "category", "what", "base", "head", "change", "calls", title=Text(heading)
    )
    for c in e.changes[:SHOWN]:
        changes.add_row(
            Text(c.name[:90]),
            c.category,
            c.status,
            seconds(c.base_s),
            seconds(c.head_s),
            _delta(c.delta_s),
            f"{_calls(c.base_calls)} → {_calls(c.head_calls)}",
        )
    shares = Table("category", "base", "head", title="share of time")
    for cat, b, h in e.shares:
        shares.add_row(cat, f"{b * 100:.1f}%", f"{h * 100:.1f}%")
    counters = Table("metric", "base", "head", title="per iteration")
    for k in e.counters:
        counters.add_row(k.metric, _counter(k.metric, k.base), _counter(k.metric, k.head))
    parts: list[Any] = [changes, _more(e), shares, counters]
    if e.sites:
        sites = Table("allocation site at the peak", "base", "head", title="memory")
        for s, b, h in e.sites[:SHOWN]:
            sites.add_row(Text(s), f"{b:.1f} MiB", f"{h:.1f} MiB")
        parts.append(sites)
    return Group(*parts)


def _more(e: Explanation) -> str:
    rest = len(e.changes) - min(len(e.changes), SHOWN)
    bits = []
    if rest:
        bits.append(f"{rest} more changes (--json lists them)")
    if e.unchanged:
        bits.append(f"{e.unchanged} unchanged")
    if not e.changes:
        bits.insert(0, "no operator or kernel changed beyond the noise of one profile")
    return "; ".join(bits)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def markdown(e: Explanation, heading: str) -> str:
    lines = [f"#### Why: {_md(heading)}", ""]
    if e.changes:
        lines += [
            "| name | category | what | base | head | change | calls |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| `{_md(c.name[:90])}` | {c.category} | {c.status} | {seconds(c.base_s)} | "
            f"{seconds(c.head_s)} | {_delta(c.delta_s)} | "
            f"{_calls(c.base_calls)} → {_calls(c.head_calls)} |"
            for c in e.changes[:SHOWN]
        ]
        lines.append("")
    more = _more(e)
    if more:
        lines += [more[0].upper() + more[1:] + ".", ""]
    if e.shares:
        lines.append(
            "Share of time: "
            + ", ".join(f"{cat} {b * 100:.0f}% → {h * 100:.0f}%" for cat, b, h in e.shares)
            + "."
        )
    if e.counters:
        lines.append(
            "Per iteration: "
            + ", ".join(
                f"{k.metric.removeprefix(p.PREFIX)} {_counter(k.metric, k.base)} → "
                f"{_counter(k.metric, k.head)}"
                for k in e.counters
            )
            + "."
        )
    grown = [(s, b, h) for s, b, h in e.sites if h > b]
    if grown:
        lines.append(
            "Memory at the peak grew at: "
            + ", ".join(f"`{_md(s)}` {b:.1f} → {h:.1f} MiB" for s, b, h in grown[:5])
            + "."
        )
    return "\n".join(lines) + "\n"


def as_json(
    e: Explanation, case: str, base: str, head: str, pair: tuple[Candidate, Candidate]
) -> dict[str, Any]:
    return {
        "case": case,
        "base": base,
        "head": head,
        "machine": pair[1].machine,
        "iterations": pair[1].data.table.iterations,
        "base_run": pair[0].run_id,
        "head_run": pair[1].run_id,
        **e.to_json(),
    }


def explained_json(e: Explained, base: str, head: str) -> dict[str, Any]:
    if e.explanation is None or e.pair is None:
        return {"case": e.case, "missing": e.missing}
    return as_json(e.explanation, e.case, base, head, e.pair)


def show_all(found: list[Explained], base: str, head: str, *, as_markdown: bool) -> None:
    """check: the explanation of each confirmed regression, or why there is none."""
    for e in found:
        if e.explanation is None or e.pair is None:
            line = f"Why {e.case} regressed is not known: {e.missing}."
            click.echo(f"{line}\n" if as_markdown else line)
            continue
        heading = title(e.case, base, head, e.pair)
        if as_markdown:
            click.echo(markdown(e.explanation, heading), nl=False)
        else:
            stdout.print(rich(e.explanation, heading))
