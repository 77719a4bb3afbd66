"""Rendering comparison rows: a rich table, Markdown (PR comments, step summaries), JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from commitbench.analysis.compare import Row
from commitbench.cli.progress import fmt_value
from commitbench.model.text import printable

_STYLE = {"regressed": "bold red", "improved": "green", "noisy": "yellow", "unchanged": "dim"}
_MARK = {
    "regressed": "🔴 regressed",
    "improved": "🟢 improved",
    "noisy": "🟡 noisy",
    "unchanged": "unchanged",
}


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
        "case", "metric", "machine", "base", "head", "change", "95% CI", "p", "verdict", title=title
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
            Text(c.verdict, style=_STYLE[c.verdict]),
        )
    return table


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
        "| case | metric | machine | base | head | change | 95% CI | p | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    body = [
        f"| `{_md(printable(r.case))}` | {_md(r.metric)} | {_md(r.machine_label)} | "
        f"{fmt_value(r.comparison.base, r.unit)} | {fmt_value(r.comparison.head, r.unit)} | "
        f"{r.comparison.change * 100:+.1f}% | {_ci(r)} | {_p(r)} | {_MARK[r.comparison.verdict]} |"
        for r in shown
    ]
    if body:
        lines += [*header, *body, ""]
    policies = sorted({str(r.comparison.policy) for r in rows})
    hidden = len(rows) - len(shown)
    lines.append(
        f"Policy: {', '.join(policies) or 'median:5%'}; Mann-Whitney U on raw samples"
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
        }
        for r in rows
    ]
