"""`commitbench show [REV] --case ID`: one recorded result in full.

Status, error with its full traceback, metrics (with the sizes the case noted it used),
the run's environment and a summary of the device samples taken during the case: what
`run` prints one line of. The result is the latest run of REV on this machine that has
the case, or the one of `--run UUID`; both stores answer through ReadStore.
"""

from __future__ import annotations

import difflib
import statistics
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from commitbench.cli.common import (
    emit_json,
    global_options,
    globals_from,
    open_reading_store,
    say,
    stdout,
)
from commitbench.cli.progress import failure_site, fmt_used, fmt_value, used_of
from commitbench.errors import CommitbenchError, ConfigError
from commitbench.model.points import machine_label
from commitbench.model.records import DeviceSample, MachineInfo, ResultRecord, RunData
from commitbench.model.text import printable
from commitbench.model.words import plural
from commitbench.runner import machine
from commitbench.runner.vcs import Repository
from commitbench.store import ReadStore

# The device sample columns summarised, with their units.
DEVICE_FIELDS = (
    ("gpu_util_pct", "GPU utilization", "%"),
    ("gpu_mem_mib", "GPU memory", "MiB"),
    ("power_w", "GPU power", "W"),
    ("sm_clock_mhz", "SM clock", "MHz"),
    ("temperature_c", "GPU temperature", "C"),
    ("cpu_util_pct", "CPU (worker tree)", "%"),
    ("rss_mib", "RSS (worker tree)", "MiB"),
)


@click.command("show")
@click.argument("rev", required=False)
@click.option("--case", "case", required=True, metavar="ID", help="The case id, exactly.")
@click.option(
    "--run",
    "run_id",
    metavar="UUID",
    help="This run's result [default: the latest run of REV on this machine with the case].",
)
@click.option(
    "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
@global_options
def show_command(
    rev: str | None,
    case: str,
    run_id: str | None,
    repo: Path,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Show one result of CASE at REV (default HEAD): status, error and traceback,
    metrics, the sizes used, environment and device summary."""
    g = globals_from(db, results, as_json)
    wanted = _uuid(run_id) if run_id is not None else None
    repository = Repository(repo) if wanted is None or rev is not None else None
    sha = repository.sha(rev or "HEAD") if repository is not None else None
    store, engine = open_reading_store(g)
    try:
        if wanted is not None:
            data = store.load_run(wanted)
            if sha is not None and data.header.commit.sha != sha:
                raise CommitbenchError(
                    f"run {wanted} measured {data.header.commit.sha[:12]}, not {rev} ({sha[:12]})"
                )
        else:
            assert repository is not None and sha is not None  # noqa: S101 - set above
            data = store.load_run(_pick_run(store, repository.id, sha, case))
    finally:
        if engine is not None:
            engine.dispose()
    found = [r for r in data.results if r.case.label == case]
    if not found:
        raise CommitbenchError(_no_case(case, {r.case.label for r in data.results}, str(wanted)))
    result = found[-1]
    if g.json:
        emit_json(as_dict(data, result))
    else:
        render(data, result)
    return 0


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ConfigError(f"--run takes a run UUID, not {text!r}") from None


def _pick_run(store: ReadStore, repository: str, sha: str, case: str) -> uuid.UUID:
    """The latest run of the commit on this machine that has a result of `case`."""
    runs = store.runs_of(repository, sha)
    if not runs:
        raise CommitbenchError(
            f"nothing is recorded for {sha[:12]} in {store.location}; "
            f"measure it first: commitbench run {sha[:12]}"
        )
    with_case = [header for header, labels in runs if case in labels]
    if not with_case:
        raise CommitbenchError(_no_case(case, set().union(*(ls for _, ls in runs)), sha[:12]))
    here = machine.fingerprint().fingerprint
    mine = [h for h in with_case if h.machine.fingerprint == here]
    if not mine:
        others = ", ".join(f"{h.run.id} ({_machine(h.machine)})" for h in with_case[-3:])
        raise CommitbenchError(
            f"{printable(case)} at {sha[:12]} was measured on other machines only: "
            f"pick one with --run UUID ({others})"
        )
    return mine[-1].run.id


def _no_case(case: str, labels: set[str], where: str) -> str:
    close = difflib.get_close_matches(case, sorted(labels), n=1, cutoff=0.5)
    close = close or sorted(label for label in labels if case in label)[:1]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"no result of case {case!r} in {where} ({plural(len(labels), 'case')} there){hint}"


def _machine(m: MachineInfo) -> str:
    return machine_label(m.gpu_name, m.gpu_count, m.cpu_model)


def device_summary(samples: Sequence[DeviceSample]) -> dict[str, Any]:
    """Count, time span, and mean and max of each column that was read."""
    if not samples:
        return {"samples": 0, "span_s": None, "fields": {}}
    times = [s.time for s in samples]
    fields: dict[str, Any] = {}
    for name, _, unit in DEVICE_FIELDS:
        values = [v for s in samples if (v := getattr(s, name)) is not None]
        if values:
            fields[name] = {"unit": unit, "mean": statistics.fmean(values), "max": max(values)}
    return {
        "samples": len(samples),
        "span_s": (max(times) - min(times)).total_seconds(),
        "fields": fields,
    }


def as_dict(data: RunData, r: ResultRecord) -> dict[str, Any]:
    h = data.header
    return {
        "case": r.case.label,
        "status": r.status,
        "error": r.error,
        "failure_site": failure_site(r.error),
        "duration_s": r.duration_s,
        "started_at": r.started_at,
        "used": dict(used_of(r)),
        "run": {
            "id": str(h.run.id),
            "started_at": h.run.started_at,
            "status": data.end.status if data.end is not None else "running",
            "profile": h.run.profile,
            "trigger": h.run.trigger,
            "branch": h.run.branch,
        },
        "commit": {
            "repository": h.commit.repository,
            "sha": h.commit.sha,
            "subject": h.commit.subject,
        },
        "machine": {
            "label": _machine(h.machine),
            "fingerprint": h.machine.fingerprint,
            **h.machine.info,
        },
        "environment": dict(h.run.environment),
        "metrics": [
            {
                "name": m.name,
                "unit": m.unit,
                "direction": m.direction,
                "n": m.n,
                "median": m.median,
                "mean": m.mean,
                "ci_low": m.ci_low,
                "ci_high": m.ci_high,
                "min": m.min,
                "max": m.max,
                "properties": dict(m.properties),
            }
            for m in r.metrics
        ],
        "device": device_summary(r.device_samples),
    }


def render(data: RunData, r: ResultRecord) -> None:
    h = data.header
    run_status = data.end.status if data.end is not None else "running (not finished)"
    facts = [
        ("case", printable(r.case.label)),
        ("status", r.status),
        ("commit", f"{h.commit.sha[:12]} {h.commit.subject or ''}".rstrip()),
        ("run", f"{h.run.id} ({h.run.profile}, {h.run.trigger}, {run_status})"),
        ("started", f"{(r.started_at or h.run.started_at):%Y-%m-%d %H:%M:%S %Z}"),
        ("machine", _machine(h.machine)),
        ("duration", fmt_value(r.duration_s, "s")),
    ]
    if used_of(r):
        facts.append(("used", fmt_used(used_of(r))))
    site = failure_site(r.error)
    if site:
        facts.append(("at", site))
    for name, value in facts:
        say(f"{name + ':':10}{value}")
    if r.error:
        say("\nerror:\n" + r.error.rstrip())
    if r.metrics:
        stdout.print(_metrics_table(r))
    device = device_summary(r.device_samples)
    if device["samples"]:
        table = Table(
            "device",
            "mean",
            "max",
            title=f"{plural(device['samples'], 'device sample')} over {device['span_s']:.1f} s",
        )
        labels = {name: label for name, label, _ in DEVICE_FIELDS}
        for name, v in device["fields"].items():
            table.add_row(
                labels[name], fmt_value(v["mean"], v["unit"]), fmt_value(v["max"], v["unit"])
            )
        stdout.print(table)
    if h.run.environment:
        say("\nenvironment:")
        for key, value in sorted(h.run.environment.items()):
            say(f"  {key}: {value}")


def _metrics_table(r: ResultRecord) -> Table:
    table = Table("metric", "n", "median", "95% CI", "min", "max", "properties")
    for m in r.metrics:
        ci = (
            f"[{fmt_value(m.ci_low, m.unit)}, {fmt_value(m.ci_high, m.unit)}]"
            if m.ci_low is not None and m.ci_high is not None
            else ""
        )
        props = ", ".join(
            f"{k}={_short(v)}" for k, v in sorted(m.properties.items()) if k != "used"
        )
        table.add_row(
            Text(m.name),
            str(m.n),
            fmt_value(m.median, m.unit),
            ci,
            fmt_value(m.min, m.unit),
            fmt_value(m.max, m.unit),
            Text(props),
        )
    return table


def _short(value: object, limit: int = 120) -> str:
    """A property as shown in the table (--json has it whole: a profile's table is long)."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
