"""Profile files (`--trace`) kept by sha256 beside their runs: in the CSV store, in
PostgreSQL, through export and import, with a size cap and a retention period."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from commitbench.store import artifacts
from commitbench.store.csv import CsvStore
from tests.gitrepo import GitBuilder

CASE = "tiny.step"
BENCH = """\
import commitbench as cb
import torch


@cb.bench
def step(ctx):
    x = torch.ones(16, 16)
    ctx.time("time", lambda: x @ x, warmup=0, repeat=2)
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitBuilder, str]:
    g = GitBuilder(tmp_path_factory.mktemp("tiny") / "repo")
    return g, g.commit("tiny", {"benches/tiny.py": BENCH})


def _reference(results: Path) -> tuple[uuid.UUID, str]:
    """The run and the trace's sha256 that the recorded profile metric names."""
    (manifest,) = list(results.glob("*/manifest.json"))
    run_id = uuid.UUID(manifest.parent.name)
    (result,) = CsvStore(results).load_run(run_id).results
    (metric,) = [m for m in result.metrics if m.name == "profile.time_per_iter"]
    return run_id, metric.properties["artifacts"]["chrome_trace"]


def test_csv_store_keeps_the_trace_beside_the_run(cli, tiny, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, sha = tiny
    out = tmp_path / "r"
    ran = cli(
        "run", sha, "--repo", str(g.path), "--benches", "benches", "--results", str(out), "--trace"
    )
    assert ran.code == 0, ran.err
    run_id, ref = _reference(out)
    path = out / str(run_id) / "artifacts" / f"{ref}.trace.json.gz"
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == ref
    events = json.loads(gzip.decompress(data))["traceEvents"]
    assert "aten::mm" in {e.get("name") for e in events}
    assert artifacts.CsvArtifacts(out).load(ref) == data
    assert not list(out.glob("*/artifacts/*.partial"))

    where = ("--repo", str(g.path), "--results", str(out))
    shown = cli("show", sha, "--case", CASE, *where)
    assert shown.code == 0 and "profile.share.gemm" in shown.out
    assert "…" in shown.out and "aten::resolve_conj" not in shown.out  # the table, cut short
    whole = json.loads(cli("show", sha, "--case", CASE, *where, "--json").out)
    (metric,) = [m for m in whole["metrics"] if m["name"] == "profile.time_per_iter"]
    assert metric["properties"]["artifacts"] == {"chrome_trace": ref}
    assert metric["properties"]["table"]["rows"][0][0] == "aten::mm"


def test_database_export_and_import_carry_the_trace(  # type: ignore[no-untyped-def]
    cli, tiny, db_env: str, engine: Engine, tmp_path: Path
) -> None:
    g, sha = tiny
    ran = cli("run", sha, "--repo", str(g.path), "--benches", "benches", "--trace")
    assert ran.code == 0, ran.err
    with engine.connect() as conn:
        ((ref, run_id, label, kind, size, data),) = conn.execute(
            text("SELECT sha256, run_id, case_label, kind, size_bytes, data FROM profile_artifacts")
        ).all()
        named = conn.execute(
            text(
                "SELECT m.properties -> 'artifacts' ->> 'chrome_trace' FROM metrics m "
                "WHERE m.name = 'profile.time_per_iter'"
            )
        ).scalar_one()
    assert (named, label, kind, size) == (ref, CASE, "chrome_trace", len(data))
    assert hashlib.sha256(bytes(data)).hexdigest() == ref

    exported = cli("export", "--out", str(tmp_path / "x"))
    assert exported.code == 0, exported.err
    file = tmp_path / "x" / str(run_id) / "artifacts" / f"{ref}.trace.json.gz"
    assert file.read_bytes() == bytes(data)

    with engine.begin() as conn:
        conn.execute(text("TRUNCATE runs, commits, machines, cases CASCADE"))
    imported = cli("import", str(tmp_path / "x"))
    assert imported.code == 0, imported.err
    assert artifacts.SqlArtifacts(engine).load(ref) == bytes(data)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT case_label FROM profile_artifacts")).scalar_one() == CASE

    file.write_bytes(file.read_bytes() + b"x")  # a file whose bytes no longer match its name
    refused = cli("import", str(tmp_path / "x"))
    assert refused.code == 2
    assert f"{file}: its bytes hash to " in refused.err


def test_cap_and_retention(  # type: ignore[no-untyped-def]
    cli, tiny, db_env: str, engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    g, sha = tiny
    assert cli("run", sha, "--repo", str(g.path), "--benches", "benches", "--trace").code == 0
    with engine.connect() as conn:
        (run_id,) = conn.execute(text("SELECT run_id FROM profile_artifacts")).one()
    store = artifacts.SqlArtifacts(engine)

    big = artifacts.Artifact.of("chrome_trace", CASE, b"\x1f" * 3000)
    monkeypatch.setenv(artifacts.MAX_MIB_ENV, "0.002")  # 2097 bytes
    with caplog.at_level(logging.WARNING, logger="commitbench.store.artifacts"):
        assert store.save(run_id, [big]) == 0
    assert caplog.messages == [
        f"the chrome trace of {CASE} is 0.00286 MiB, over the cap of 0.002 MiB "
        f"({artifacts.MAX_MIB_ENV}): not stored"
    ]
    assert store.load(big.sha256) is None

    monkeypatch.setenv(artifacts.MAX_MIB_ENV, "1")
    monkeypatch.setenv(artifacts.RETENTION_ENV, "30")
    with engine.begin() as conn:  # the first run's trace is now 31 days old
        conn.execute(text("UPDATE profile_artifacts SET created_at = now() - interval '31 days'"))
    assert store.save(run_id, [big]) == 1
    with engine.connect() as conn:
        left = conn.execute(text("SELECT sha256 FROM profile_artifacts")).scalars().all()
    assert left == [big.sha256]  # the old one went, the new one stays

    monkeypatch.setenv(artifacts.RETENTION_ENV, "soon")
    with pytest.raises(
        Exception, match="COMMITBENCH_ARTIFACT_RETENTION_DAYS='soon' is not a number"
    ):
        store.save(run_id, [big])
