"""Reading an asv results directory (`results_dir` of asv.conf.json): `benchmarks.json`
(each benchmark's type, unit and parameter names) and, per machine folder,
`machine.json` and one result file per commit and environment (asv's format version 2,
with `result_columns`). Each result file is one run.

- The commit: the file's `commit_hash`, its time the file's `date` (asv's commit date).
- The machine: machine.json's arch, cpu, num_cpu, os and ram, with the environment
  (the file's `params` other than `machine`: python and requirements), as asv keys its
  own results; not the machine's name (often the host name).
- A case per benchmark and parameter combination: the benchmark's dotted name, its
  `param_names` with the values asv recorded (reprs, read back as Python literals:
  `'list'` -> list, `10` -> 10).
- A metric named by the benchmark's type: `time` (s), `mem` and `peakmem` (bytes),
  `track` (the benchmark's own unit); lower is better, as asv compares them. From the
  raw samples (`asv run --record-samples`) when kept, so the median, spread and 95%
  interval are commitbench's own; else asv's value (its median for `time`), n = repeat,
  and asv's quartiles and 99% interval as properties only (not commitbench's 95%).
- A value asv recorded as null (the benchmark failed) is a `failed` result; NaN (the
  combination was skipped, NotImplementedError in setup) is `skipped`.
- Benchmarks missing from benchmarks.json (removed since) have no unit or parameter
  names: their results are left out and counted.
"""

from __future__ import annotations

import ast
import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from commitbench.errors import ForeignFormatError
from commitbench.importers.common import (
    Commits,
    Fields,
    Source,
    case_name,
    param_value,
    read_source,
    resolve,
    run_id,
)
from commitbench.model.cases import CaseKey, ParamValue
from commitbench.model.checks import RecordError
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import MachineInfo, ResultRecord, RunData, RunEnd, RunHeader, RunInfo

FORMAT = "asv"
RESULTS_VERSION = 2  # asv >= 0.5; `asv update` rewrites older results
_UNITS = {"seconds": "s"}
_MACHINE_KEYS = frozenset({"machine", "arch", "cpu", "num_cpu", "os", "ram"})
# asv's benchmark types (asv_runner: time and timeraw are "time") and the metric each is.
_METRICS = {"time": "time", "memory": "mem", "peakmemory": "peakmem", "track": "track"}


@dataclass(frozen=True)
class Benchmark:
    name: str
    metric: str
    unit: str
    param_names: tuple[str, ...]


def read(results_dir: Path, commits: Commits) -> list[tuple[str, RunData]]:
    """Every result file of every machine under `results_dir`, as runs."""
    index = results_dir / "benchmarks.json"
    if not results_dir.is_dir() or not index.is_file():
        raise ForeignFormatError(
            f"{results_dir}: no benchmarks.json (give asv's results directory: the folder "
            "holding benchmarks.json and one folder per machine)"
        )
    benchmarks = _benchmarks(read_source(index))
    runs: list[tuple[str, RunData]] = []
    for folder in sorted(p for p in results_dir.iterdir() if (p / "machine.json").is_file()):
        machine = _machine_facts(read_source(folder / "machine.json"))
        for path in sorted(folder.glob("*.json")):
            if path.name != "machine.json":
                runs.append((str(path), _run(read_source(path), benchmarks, machine, commits)))
    if not runs:
        raise ForeignFormatError(f"{results_dir}: no machine folder with result files")
    return runs


def _benchmarks(source: Source) -> dict[str, Benchmark]:
    doc = Fields(source, source.json(), "")
    found: dict[str, Benchmark] = {}
    for name, raw in doc.value.items():
        if name == "version":
            continue
        b = Fields(source, raw, name)
        kind: str = b.get("type", str)
        if kind not in _METRICS:
            raise b.fail("type", f"{kind!r} is not one of {', '.join(_METRICS)}")
        unit: str = b.get("unit", str, required=False) or "unit"
        names = b.get("param_names", list, required=False) or []
        for pname in names:
            if not isinstance(pname, str) or not pname.isidentifier():
                raise b.fail("param_names", f"{pname!r} is not an identifier")
        found[name] = Benchmark(name, _METRICS[kind], _UNITS.get(unit, unit), tuple(names))
    return found


def _machine_facts(source: Source) -> dict[str, Any]:
    m = Fields(source, source.json(), "")
    facts: dict[str, Any] = {"source": FORMAT}
    for key in ("arch", "os", "ram"):
        value = m.get(key, str, required=False)
        if value:
            facts[key] = value
    cpu = m.get("cpu", str, required=False)
    if cpu:
        facts["cpu_model"] = cpu
    count = m.get("num_cpu", (str, int), required=False)
    if isinstance(count, int) or (isinstance(count, str) and count.isdigit()):
        facts["cpu_count"] = int(count)
    return facts


def _ms(value: float, doc: Fields, key: str) -> datetime:
    try:
        return datetime.fromtimestamp(value / 1000, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise doc.fail(key, f"{value} is not a time in ms since the epoch") from None


def _run(
    source: Source, benchmarks: dict[str, Benchmark], facts: dict[str, Any], commits: Commits
) -> RunData:
    doc = Fields(source, source.json(), "")
    version = doc.get("version", int)
    if version != RESULTS_VERSION:
        raise doc.fail("version", f"{version}, not {RESULTS_VERSION} (run `asv update` first)")
    sha: str = doc.get("commit_hash", str)
    date = doc.number("date", required=False)
    info = resolve(
        source, "commit_hash", commits, sha, _ms(date, doc, "date") if date is not None else None
    )
    env = doc.obj("params")
    assert env is not None  # noqa: S101 - required
    # asv's params repeat machine.json's facts beside the environment's (python, the
    # requirements): the environment is what is left.
    environment = {k: v for k, v in env.value.items() if k not in _MACHINE_KEYS}
    machine: MachineInfo = doc.checked(
        lambda: MachineInfo.from_facts(**facts, env=environment), "params"
    )
    columns = doc.get("result_columns", list)
    raw = doc.obj("results")
    assert raw is not None  # noqa: S101 - required
    results: list[ResultRecord] = []
    left_out = 0
    for name in sorted(raw.value):
        bench = benchmarks.get(name)
        if bench is None:
            left_out += 1
            continue
        values = raw.get(name, list)
        row = dict(zip(columns, values, strict=False))
        results.extend(_results(Fields(source, row, f"results.{name}"), bench))
    starts = [r.started_at for r in results if r.started_at is not None]
    ends = [r.started_at.timestamp() + (r.duration_s or 0) for r in results if r.started_at]
    at = min(starts) if starts else info.committed_at or _ms(0, doc, "date")
    end = datetime.fromtimestamp(max(ends), timezone.utc) if ends else at
    run = doc.checked(
        lambda: RunInfo(
            id=run_id(FORMAT, source, info, {"machine": machine.fingerprint}),
            started_at=at,
            trigger="manual",
            profile="full",
            environment={
                "imported": {
                    "format": FORMAT,
                    "file": f"{source.path.parent.name}/{source.path.name}",
                    "sha256": source.sha256,
                    "env_name": doc.get("env_name", str, required=False),
                    "left_out": left_out,
                }
            },
        )
    )
    return doc.checked(
        lambda: RunData(
            header=RunHeader(run=run, commit=info, machine=machine),
            units=(tuple(results),) if results else (),
            end=RunEnd(finished_at=max(end, at), status="ok"),
        )
    )


def _literal(text: Any) -> ParamValue:
    """A parameter value from the repr asv recorded: a Python literal where it is one."""
    if not isinstance(text, str):
        return param_value(text)
    try:
        return param_value(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _results(row: Fields, bench: Benchmark) -> list[ResultRecord]:
    params = row.get("params", list, required=False) or []
    if len(params) != len(bench.param_names):
        raise row.fail(
            "params", f"{len(params)} lists, but benchmarks.json names {len(bench.param_names)}"
        )
    for i, values in enumerate(params):
        if not isinstance(values, list):
            raise row.fail("params", f"entry {i + 1} is not a list")
    combos = list(itertools.product(*params))
    value = row.value.get("result")
    if value is not None and not isinstance(value, list):
        raise row.fail("result", "is not a list")
    if value is not None and len(value) != len(combos):
        raise row.fail("result", f"{len(value)} values for {len(combos)} parameter combinations")
    started = row.number("started_at", required=False)
    at = _ms(started, row, "started_at") if started is not None else None
    duration = row.number("duration", required=False)
    version = row.get("version", str, required=False)
    name = case_name(bench.name.split("."))
    out = []
    for i, combo in enumerate(combos):
        labels = {n: _literal(v) for n, v in zip(bench.param_names, combo, strict=True)}
        measured = None if value is None else value[i]
        try:
            case = CaseKey.of(name, labels)
            metrics: tuple[MetricRecord, ...] = ()
            if measured is None:
                status, error = "failed", "asv recorded no value: the benchmark failed"
            elif isinstance(measured, float) and math.isnan(measured):
                status, error = "skipped", "asv skipped this combination (n/a)"
            else:
                status, error = "ok", None
                metrics = (_metric(row, bench, i, measured, version),)
            out.append(
                ResultRecord(
                    case=case,
                    status=status,
                    error=error,
                    duration_s=duration,
                    started_at=at,
                    metrics=metrics,
                )
            )
        except RecordError as exc:
            raise row.source.fail(f"{row.where}[{i}]: {exc}") from None
    return out


def _column(row: Fields, key: str, i: int) -> Any:
    column = row.value.get(key)
    if not isinstance(column, list) or i >= len(column):
        return None
    return column[i]


def _metric(row: Fields, bench: Benchmark, i: int, value: Any, version: str | None) -> MetricRecord:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"result {i + 1} is not a number")
    properties: dict[str, Any] = {"source": FORMAT}
    if version:
        properties["asv_version"] = version
    for key in ("stats_number", "stats_repeat", "stats_q_25", "stats_q_75"):
        found = _column(row, key, i)
        if isinstance(found, int | float) and math.isfinite(found):
            properties[key.removeprefix("stats_")] = found
    low, high = _column(row, "stats_ci_99_a", i), _column(row, "stats_ci_99_b", i)
    if all(isinstance(x, int | float) and math.isfinite(x) for x in (low, high)):
        properties["ci_99"] = [low, high]
    samples = _column(row, "samples", i)
    if isinstance(samples, list) and samples:
        return MetricRecord.from_samples(
            bench.metric, samples, unit=bench.unit, properties=properties
        )
    if bench.metric != "time":
        # mem, peakmem and track are one reading each.
        return MetricRecord.from_samples(
            bench.metric, [value], unit=bench.unit, properties=properties
        )
    repeat = properties.get("repeat")
    return MetricRecord(
        name=bench.metric,
        unit=bench.unit,
        direction="lower",
        n=repeat if isinstance(repeat, int) and repeat > 0 else 1,
        median=value,
        properties=properties,
    )
