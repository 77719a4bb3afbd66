"""Rendering comparison rows: a rich table, Markdown (PR comments, step summaries), JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from commitbench.analysis.compare import Row
from commitbench.cli.progress import fmt_value
from commitbench.model.text import printable

_STYLE = {"regressed": "bold red", "improved": "green", "ambiguous": "yellow", "unchanged": "dim"}
_MARK = {
    "regressed": "🔴 regressed",
    "improved": "🟢 improved",
    "ambiguous": "🟡 ambiguous",
    "unchanged": "unchanged",
}


def _spread(r: Row) -> str:
    """The between-process spread and the processes behind each side: '±1.2% 3/3'."""
    c = r.comparison
    counts = f"{c.processes_base}/{c.processes_head}"
    return counts if c.spread is None else f"±{c.spread * 100:.1f}% {counts}"


def _verdict(r: Row) -> str:
    note = r.comparison.note
    return f"{r.comparison.verdict} ({note})" if note else r.comparison.verdict


def _ci(r: Row) -> str:
    c = r.comparison
    if c.ci_low is None or c.ci_high is None:
        return ""
    return f"[{(c.ci_low - 1) * 100:+.1f}%, {(c.ci_high - 1) * 100:+.1f}%]"


def _p(r: Row) -> str:
    p = r.comparison.p_value
    return "" if p is None else f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def rich_table(rows: Sequence[Row], title: str) -> Table:
    table = Table(
        "case",
        "metric",
        "machine",
        "base",
        "head",
        "change",
        "95% CI",
        "p",
        "processes",
        "verdict",
        title=title,
    )
    for r in rows:
        c = r.comparison
        table.add_row(
            Text(printable(r.case)),
            r.metric,
            Text(f"{r.machine_label} ({r.profile})"),
            fmt_value(c.base, r.unit),
            fmt_value(c.head, r.unit),
            f"{c.change * 100:+.1f}%",
            _ci(r),
            _p(r),
            _spread(r),
            Text(_verdict(r), style=_STYLE[c.verdict]),
        )
    return table


def _md_note(r: Row) -> str:
    return f" ({_md(r.comparison.note)})" if r.comparison.note else ""


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(rows: Sequence[Row], title: str, *, every_row: bool = False) -> str:
    """Rows that changed (or all, with `every_row`: check's confirmation, whose every row
    is a suspect and says why it was or was not confirmed), with a one-line summary."""
    counts = {v: sum(r.comparison.verdict == v for r in rows) for v in _MARK}
    lines = [
        f"### {title}",
        "",
        ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "nothing to compare",
        "",
    ]
    shown = [r for r in rows if every_row or r.comparison.verdict != "unchanged"]
    header = [
        "| case | metric | machine | base | head | change | 95% CI | p | processes | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    body = [
        f"| `{_md(printable(r.case))}` | {_md(r.metric)} | {_md(r.machine_label)} | "
        f"{fmt_value(r.comparison.base, r.unit)} | {fmt_value(r.comparison.head, r.unit)} | "
        f"{r.comparison.change * 100:+.1f}% | {_ci(r)} | {_p(r)} | {_spread(r)} | "
        f"{_MARK[r.comparison.verdict]}{_md_note(r)} |"
        for r in shown
    ]
    if body:
        lines += [*header, *body, ""]
    policies = sorted({str(r.comparison.policy) for r in rows})
    hidden = len(rows) - len(shown)
    lines.append(
        f"Policy: {', '.join(policies) or 'median:5%'}; Welch's t on log per-process values "
        "(processes: between-process spread, BASE/HEAD processes)"
        + (f"; {hidden} unchanged rows not shown." if hidden else ".")
    )
    return "\n".join(lines) + "\n"


def rows_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    return [
        {
            "case": r.case,
            "metric": r.metric,
            "machine": r.machine_label,
            "profile": r.profile,
            "unit": r.unit,
            "direction": r.direction,
            "n_base": r.n_base,
            "n_head": r.n_head,
            "base": r.comparison.base,
            "head": r.comparison.head,
            "ratio": r.comparison.ratio,
            "ci_low": r.comparison.ci_low,
            "ci_high": r.comparison.ci_high,
            "p_value": r.comparison.p_value,
            "verdict": r.comparison.verdict,
            "policy": str(r.comparison.policy),
            "processes_base": r.comparison.processes_base,
            "processes_head": r.comparison.processes_head,
            "spread": r.comparison.spread,
            "more_processes": r.comparison.more,
            "flagged_processes": r.comparison.flagged,
            "calibration_adjusted": r.comparison.adjusted,
            "contended_processes": r.comparison.contended,
            "contended_left_out": r.comparison.left_out,
            "spread_from_history": r.comparison.history is not None,
            "state_moved": r.comparison.state_moved,
            "note": r.comparison.note,
        }
        for r in rows
    ]
