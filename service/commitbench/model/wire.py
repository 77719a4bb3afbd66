"""The worker's JSON-lines protocol: one JSON object per line, `{"event": ..., ...}`.

Events, in the order a worker sends them (format version `WIRE_VERSION`):

- `environment`  with --environment, first: `environment` (harness/environment.py)
- `plan`    the cases this worker will run, after the module imported: `cases`
- `start`   a case begins: `case`, `time` (epoch seconds)
- `result`  a case ended: `result` (a ResultRecord), `windows` ([start, end, calls], ...)
- `calibration`  the per-process calibration (harness/calibration.py): `at` ("start",
  after the plan and before the first case; "end", after the last result), `ms`,
  `device` ("cuda" or "cpu")
- `error`   the module could not be imported or expanded: `error` (traceback text)

With --list the worker runs nothing and sends a `plan` or an `error` per module given,
each with a `module` field naming it; with --params (a sweep, model/sweep.py) a plan
also has `benches`: for each bench in the profile its `name`, the `params` it declares
and the `error` of a value that does not fit it (or null).

Results decode into the same records.ResultRecord/MetricRecord values the recorder
takes, so a bad value fails on decoding, in the runner, with the case named. A case
whose parameters no store can hold is no case (the worker refuses those where it finds
them); an error text keeps what no store can hold as escapes (model/text.py).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import RecordError, ResultRecord, Window
from commitbench.model.text import storable, unstorable

WIRE_VERSION = 1

_METRIC_FIELDS = ("n", "mean", "median", "stddev", "min", "max", "ci_low", "ci_high")


def case_to_json(case: CaseKey) -> dict[str, Any]:
    return {"name": case.name, "params": case.params_dict}


def case_from_json(data: dict[str, Any]) -> CaseKey:
    case = CaseKey.of(data["name"], data.get("params") or {})
    for key, value in case.params:
        found = unstorable(value) if isinstance(value, str) else None
        if found is not None:
            raise RecordError(f"case {case.name}: param {key} holds {found}, which no store keeps")
    return case


def metric_to_json(m: MetricRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"name": m.name, "unit": m.unit, "direction": m.direction}
    out.update({f: getattr(m, f) for f in _METRIC_FIELDS})
    out["samples"] = list(m.samples) if m.samples is not None else None
    out["properties"] = dict(m.properties)
    return out


def metric_from_json(data: dict[str, Any]) -> MetricRecord:
    samples = data.get("samples")
    return MetricRecord(
        name=data["name"],
        unit=data["unit"],
        direction=data["direction"],
        n=int(data["n"]),
        mean=data.get("mean"),
        median=data.get("median"),
        stddev=data.get("stddev"),
        min=data.get("min"),
        max=data.get("max"),
        ci_low=data.get("ci_low"),
        ci_high=data.get("ci_high"),
        samples=tuple(float(s) for s in samples) if samples is not None else None,
        properties=data.get("properties") or {},
    )


def result_to_json(r: ResultRecord) -> dict[str, Any]:
    return {
        "case": case_to_json(r.case),
        "status": r.status,
        "error": r.error,
        "duration_s": r.duration_s,
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "metrics": [metric_to_json(m) for m in r.metrics],
    }


def result_from_json(data: dict[str, Any]) -> ResultRecord:
    started = data.get("started_at")
    return ResultRecord(
        case=case_from_json(data["case"]),
        status=data["status"],
        error=storable(data["error"]) if isinstance(data.get("error"), str) else data.get("error"),
        duration_s=data.get("duration_s"),
        started_at=datetime.fromisoformat(started) if started else None,
        metrics=tuple(metric_from_json(m) for m in data.get("metrics") or ()),
    )


def windows_from_json(data: list[list[float]]) -> tuple[Window, ...]:
    return tuple(Window(float(s), float(e), int(c)) for s, e, c in data)


def encode(event: str, **fields: Any) -> bytes:
    """One event as one line of JSON; ValueError for a value JSON cannot carry (NaN, inf)."""
    if "v" in fields:
        raise ValueError("'v' is the protocol's version, not a field")
    body = {"event": event, "v": WIRE_VERSION, **fields}
    return (json.dumps(body, separators=(",", ":"), allow_nan=False) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    """One line from a worker as an event; RecordError for anything else."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError) as err:  # RecursionError: nested too deep
        raise RecordError(f"worker sent a line that is not JSON: {line[:200]!r}") from err
    if (
        not isinstance(data, dict)
        or data.get("v") != WIRE_VERSION
        or not isinstance(data.get("event"), str)
    ):
        raise RecordError(f"worker sent an unknown message: {line[:200]!r}")
    return data
