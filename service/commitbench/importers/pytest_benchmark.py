"""Reading a pytest-benchmark JSON file (`--benchmark-json FILE`, or a file that
`--benchmark-save`/`--benchmark-autosave` left under `.benchmarks/`) as one run.

- The commit: `commit_info.id`, refused when it is missing, not a full sha
  (`unversioned`, `unknown`) or `dirty` (measured on uncommitted changes), unless the
  user names the commit (`--commit SHA`). Its time is `commit_info.time`.
- The machine: `machine_info`'s CPU model and count, architecture, system and Python
  (implementation and version); never `node`, the host name.
- A case per benchmark: `fullname` without its `[param-id]`, the file path's parts,
  classes and function joined by dots (`tests/test_io.py::TestRead::test_small` ->
  `tests.test_io.TestRead.test_small`), and `params` as the case's parameters.
- A metric `time` (s, lower is better) per case: from the raw per-iteration times of
  `--benchmark-save-data` (`stats.data`) when the file has them, so its median, spread
  and 95% interval are commitbench's own (model/stats.py); else pytest-benchmark's
  statistics (n = rounds, mean, median, stddev, min, max) and no interval.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from commitbench.importers.common import (
    Commits,
    Fields,
    Source,
    case_name,
    param_value,
    resolve,
    run_id,
)
from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.records import MachineInfo, ResultRecord, RunData, RunEnd, RunHeader, RunInfo

FORMAT = "pytest-benchmark"
METRIC = "time"
_SHA = re.compile(r"[0-9a-f]{40}")
_PARAM_ID = re.compile(r"\[.*\]$", re.DOTALL)


def read(source: Source, commits: Commits, *, commit: str | None = None) -> RunData:
    """The run `source` holds; `commit` (the user's --commit) replaces the file's own."""
    doc = Fields(source, source.json(), "")
    sha, committed_at, branch = _commit(doc, commit)
    field = "commit_info.id" if commit is None else "--commit"
    info = resolve(source, field, commits, sha, committed_at)
    machine = _machine(doc)
    at: datetime = doc.time("datetime")  # type: ignore[assignment]
    benches = doc.get("benchmarks", list)
    results: list[ResultRecord] = []
    seen: dict[CaseKey, str] = {}
    for i, raw in enumerate(benches):
        result, fullname = _result(Fields(source, raw, f"benchmarks[{i}]"))
        if result.case in seen:
            raise source.fail(
                f"benchmarks[{i}] ({fullname}) and {seen[result.case]} are both case "
                f"{result.case.label}"
            )
        seen[result.case] = fullname
        results.append(result)
    version = doc.get("version", str, required=False)
    run = doc.checked(
        lambda: RunInfo(
            id=run_id(FORMAT, source, info, {"machine": machine.fingerprint}),
            started_at=at,
            trigger="manual",
            profile="full",
            branch=branch,
            environment={
                "imported": {
                    "format": FORMAT,
                    "version": version,
                    "file": source.path.name,
                    "sha256": source.sha256,
                }
            },
        )
    )
    # pytest-benchmark writes the file's time once, at the end of the session: the run
    # starts and ends there.
    return doc.checked(
        lambda: RunData(
            header=RunHeader(run=run, commit=info, machine=machine),
            units=(tuple(results),) if results else (),
            end=RunEnd(finished_at=at, status="ok"),
        )
    )


def _commit(doc: Fields, override: str | None) -> tuple[str, datetime | None, str | None]:
    """The commit to record, its time (from the file when it is the file's commit) and
    the branch."""
    found = doc.obj("commit_info", required=override is None)
    if found is None:
        assert override is not None  # noqa: S101 - required above otherwise
        return override, None, None
    sha = found.get("id", str, required=override is None)
    branch = found.get("branch", str, required=False)
    if branch is not None and (branch.startswith("(") or not branch):
        branch = None  # "(unknown)", "(detached head)": no branch
    if override is not None:
        same = sha is not None and sha.startswith(override.lower())
        return override, found.time("time", required=False) if same else None, branch
    if not _SHA.fullmatch(sha):
        raise found.fail("id", f"{sha!r} is not a commit sha; pass --commit SHA")
    if found.get("dirty", bool, required=False):
        raise found.fail(
            "dirty",
            "true: measured on uncommitted changes; pass --commit SHA to record it anyway",
        )
    return sha, found.time("time", required=False), branch


def _machine(doc: Fields) -> MachineInfo:
    m = doc.obj("machine_info")
    assert m is not None  # noqa: S101 - required
    cpu = m.obj("cpu", required=False)
    facts: dict[str, Any] = {
        "source": FORMAT,
        "cpu_model": (cpu.get("brand_raw", str, required=False) if cpu else None)
        or m.get("processor", str, required=False),
        "cpu_count": cpu.get("count", int, required=False) if cpu else None,
        "arch": m.get("machine", str, required=False),
        "system": m.get("system", str, required=False),
        "python_implementation": m.get("python_implementation", str, required=False),
        "python_version": m.get("python_version", str, required=False),
    }
    return m.checked(
        lambda: MachineInfo.from_facts(**{k: v for k, v in facts.items() if v not in (None, "")})
    )


def _result(b: Fields) -> tuple[ResultRecord, str]:
    fullname: str = b.get("fullname", str)
    path, *rest = _PARAM_ID.sub("", fullname).split("::")
    if not rest:
        raise b.fail("fullname", f"{fullname!r} is not a pytest node id (path::test)")
    module = path.removesuffix(".py").split("/")
    name = case_name([p for p in module if p not in ("", ".")] + rest)
    raw_params = b.get("params", dict, required=False) or {}
    params = {str(k): param_value(v) for k, v in raw_params.items()}
    case: CaseKey = b.checked(lambda: CaseKey.of(name, params), "params")
    stats = b.obj("stats")
    assert stats is not None  # noqa: S101 - required
    properties: dict[str, Any] = {"source": FORMAT}
    for key in ("iterations", "rounds"):
        value = stats.get(key, int, required=False)
        if value is not None:
            properties[key] = value
    group = b.get("group", str, required=False)
    if group:
        properties["group"] = group
    extra = b.get("extra_info", dict, required=False)
    if extra:
        properties["extra_info"] = extra
    metric = b.checked(lambda: _metric(stats, properties), "stats")
    return ResultRecord(case=case, status="ok", metrics=(metric,)), fullname


def _metric(stats: Fields, properties: dict[str, Any]) -> MetricRecord:
    data = stats.get("data", list, required=False)
    rounds = stats.get("rounds", int)
    if data:
        if len(data) != rounds:
            raise stats.fail("data", f"{len(data)} times, but rounds is {rounds}")
        return MetricRecord.from_samples(METRIC, data, unit="s", properties=properties)
    return MetricRecord(
        name=METRIC,
        unit="s",
        direction="lower",
        n=rounds,
        mean=stats.number("mean"),
        median=stats.number("median"),
        stddev=stats.number("stddev", required=False),
        min=stats.number("min"),
        max=stats.number("max"),
        properties=properties,
    )
