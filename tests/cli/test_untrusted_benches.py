"""`commitbench run` against bench code that is not on its side, through the real CLI:
a runner killed outright, a short --timeout with a bench that imports torch, secrets
in the runner's environment, parameters and errors PostgreSQL cannot store, case ids
that hold line breaks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from tests.cli.conftest import Outcome
from tests.gitrepo import GitBuilder
from tests.test_hostile_benches import alive, gone


def repo_with(path: Path, files: dict[str, str]) -> GitBuilder:
    g = GitBuilder(path)
    g.commit("benches", files)
    return g


LONG = """\
import subprocess
import time

import commitbench as cb


@cb.bench
def long(ctx):
    child = subprocess.Popen(["sleep", "600"])  # a program of the bench's own
    with open({pids!r}, "w") as fh:
        fh.write(f"{{__import__('os').getpid()}} {{child.pid}}\\n")
    time.sleep(600)
"""


def test_a_runner_killed_outright_takes_its_worker_and_the_benchs_programs(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    g = repo_with(tmp_path / "repo", {"benches/bench_long.py": LONG.format(pids=str(pids))})
    where = ("--repo", str(g.path), "--benches", "benches", "--results", str(tmp_path / "r"))
    runner = subprocess.Popen(
        [sys.executable, "-m", "commitbench", "run", *where, "--timeout", "900"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    found: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not (pids.exists() and pids.read_text().endswith("\n")):
            assert time.monotonic() < deadline and runner.poll() is None
            time.sleep(0.05)
        found = [int(p) for p in pids.read_text().split()]
        assert all(alive(p) for p in found)
        runner.send_signal(signal.SIGKILL)  # no cleanup of its own can run
        runner.wait()
        worker, program = found
        assert gone(worker), "the worker outlived its runner"
        assert gone(program), "the bench's program outlived the runner"
    finally:
        for pid in found:  # if the test failed: not left running on the machine
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


SLOW_TORCH = """\
import time

import torch

import commitbench as cb

time.sleep(4)  # an import as slow as torch's on a busy machine, every time


@cb.bench(params={"n": [4, 8]})
def add(ctx, n):
    t = torch.ones(n)
    ctx.time("add", lambda: t + t, warmup=1, repeat=5)
"""


def test_a_short_timeout_is_per_case_not_per_import(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g = repo_with(tmp_path / "repo", {"benches/bench_torch.py": SLOW_TORCH})
    outcome = cli(
        "run", "--repo", str(g.path), "--benches", "benches", "--timeout", "3",
        "--results", str(tmp_path / "results"), "--json",
    )  # fmt: skip
    assert outcome.code == 0, outcome.text
    (commit,) = json.loads(outcome.out)["commits"]
    assert [(r["case"], r["status"]) for r in commit["results"]] == [
        ("bench_torch.add[n=4]", "ok"),
        ("bench_torch.add[n=8]", "ok"),
    ]


DUMP = """\
import json
import os

import commitbench as cb


@cb.bench
def dump(ctx):
    ctx.record("variables", len(os.environ), unit="count")
    ctx.note(environ=json.dumps(dict(os.environ), sort_keys=True))
"""

SECRETS = {
    "PGPASSWORD": "pg-Secret-1",
    "GITHUB_TOKEN": "ghp_Secret2",
    "HF_TOKEN": "hf_Secret3",
    "AWS_SECRET_ACCESS_KEY": "aws-Secret-4",
    "AWS_ACCESS_KEY_ID": "AKIASECRET5",
    "COMMITBENCH_READONLY_PASSWORD": "ro-Secret-6",
    "NCCL_AUTH_TOKEN": "nccl-Secret-7",  # an allowed prefix, a name that says secret
    "SOME_SETTING": "not-asked-for",
}
# What the README promises bench code may see (runner/environ.py gives the reasons).
ALLOWED = {
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP",
    "TEMP", "XDG_CACHE_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "TRANSFORMERS_CACHE", "LD_LIBRARY_PATH",
    "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "CC", "CXX", "CUDAHOSTCXX",
    "BNB_CUDA_VERSION", "COMMITBENCH_OVERSUBSCRIBE", "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE",
    "PYTHONPYCACHEPREFIX", "PYTHONWARNINGS", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONUSERBASE",
    "PYTHONFAULTHANDLER", "PYTHONUNBUFFERED",
}  # fmt: skip
PREFIXES = ("LC_", "CUDA_", "NCCL_", "TORCH_", "TORCHINDUCTOR_", "TORCHDYNAMO_", "PYTORCH_")
PREFIXES += ("TRITON_", "OMP_", "MKL_", "OPENBLAS_", "KMP_", "GOMP_")


def test_bench_code_sees_no_secret_of_the_runner(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, tmp_path: Path, monkeypatch
) -> None:
    url = make_url(db_env).set(password="db-Secret-8")  # trust auth: it still connects
    monkeypatch.setenv("COMMITBENCH_DB", url.render_as_string(hide_password=False))
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BENCH_KNOB", "7")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    g = repo_with(tmp_path / "repo", {"benches/bench_env.py": DUMP})
    setup_env = tmp_path / "setup.env"
    outcome = cli(
        "run", "--repo", str(g.path), "--benches", "benches", "--pass-env", "BENCH_KNOB",
        "--setup", f"env > {setup_env}", "--json",
    )  # fmt: skip
    assert outcome.code == 0, outcome.text
    (result,) = json.loads(outcome.out)["commits"][0]["results"]
    seen = json.loads(result["used"]["environ"])
    assert "PGPASSWORD" not in seen and "COMMITBENCH_DB" not in seen
    assert not set(SECRETS) & set(seen)
    assert not [k for k in seen if k not in ALLOWED | {"BENCH_KNOB"} and not k.startswith(PREFIXES)]
    assert (seen["BENCH_KNOB"], seen["OMP_NUM_THREADS"], seen["CUDA_VISIBLE_DEVICES"]) == (
        "7",
        "1",
        "",
    )
    assert seen["PATH"] == os.environ["PATH"]
    setup = dict(line.split("=", 1) for line in setup_env.read_text().splitlines() if "=" in line)
    assert setup["BENCH_KNOB"] == "7"
    assert not (set(SECRETS) | {"COMMITBENCH_DB"}) & set(setup)
    everything = outcome.text + setup_env.read_text()
    for secret in [*SECRETS.values(), "db-Secret-8"]:
        assert secret not in everything
    with engine.connect() as conn:  # and it was recorded where COMMITBENCH_DB points
        assert conn.execute(text("SELECT count(*) FROM results")).scalar_one() == 1


def test_the_database_credentials_are_never_passed(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    message = "--pass-env {}: the database's credentials are never given to bench code"
    for command in (["run"], ["check"], ["bisect", "a", "b", "--case", "x"], ["worker"]):
        for name in ("PGPASSWORD", "COMMITBENCH_DB"):
            outcome: Outcome = cli(*command, "--pass-env", "PATH", "--pass-env", name)
            assert (outcome.code, outcome.out) == (2, ""), command
            assert outcome.err == f"commitbench: error: {message.format(name)}\n"
    outcome = cli("run", "--pass-env", "NOT-A-NAME")
    assert outcome.err == (
        "commitbench: error: --pass-env 'NOT-A-NAME' is not an environment variable name\n"
    )


UNSTORABLE = """\
import os

import commitbench as cb


@cb.bench(params={"s": ["ok", "a\\x00b"]})
def f(ctx, s):
    ctx.record("x", 1.0, unit="s")


@cb.bench
def raises(ctx):
    raise ValueError("bad\\x00byte")


@cb.bench
def dies(ctx):
    print("out\\x00put", flush=True)
    os._exit(3)
"""

RESULTS = text(
    "SELECT c.label, r.status, r.error FROM results r JOIN cases c ON c.id = r.case_id "
    "ORDER BY r.id"
)


def test_what_postgresql_cannot_store_fails_a_case_not_the_commit(  # type: ignore[no-untyped-def]
    cli, db_env: str, engine: Engine, tmp_path: Path
) -> None:
    g = repo_with(tmp_path / "repo", {"benches/bench_nul.py": UNSTORABLE})
    base = ("run", "--repo", str(g.path), "--benches", "benches")
    outcome = cli(*base)
    assert outcome.code == 1, outcome.text
    assert "Traceback" not in outcome.err
    with engine.connect() as conn:
        rows = conn.execute(RESULTS).all()
    assert [(label, status) for label, status, _ in rows] == [
        ("bench_nul.f", "failed"),
        ("bench_nul.f[s=ok]", "ok"),
        ("bench_nul.raises", "failed"),
        ("bench_nul.dies", "crashed"),
    ]
    errors = [error or "" for _, _, error in rows]
    assert errors[0] == (
        "1 case of bench_nul.f not run: param s='a\\x00b' holds U+0000, which PostgreSQL "
        "cannot store"
    )
    assert errors[2].endswith("ValueError: bad\\x00byte\n")
    assert errors[3].endswith("--- worker output (tail) ---\nout\\x00put\n")
    # Recorded once and for all: a re-run has nothing left to do.
    again = cli(*base, "--json")
    assert again.code == 0, again.text
    assert json.loads(again.out)["commits"][0]["already_recorded"] == 4
    # A setup command's output is kept the same way.
    setup = cli(*base, "--force", "--setup", "printf 'x\\000y'; exit 3")
    assert setup.code == 1, setup.text
    with engine.connect() as conn:
        (last,) = conn.execute(text(str(RESULTS) + " DESC LIMIT 1")).all()
    assert last == ("commitbench.setup", "failed", "setup command exited with 3:\nx\\x00y")


LINES = """\
import commitbench as cb
import model


@cb.bench(params={"s": ["two\\nlines", "bad\\u2028one"]})
def f(ctx, s):
    if s.startswith("bad"):
        raise ValueError("no")
    ctx.record("time", [model.VALUE * (1 + 0.001 * k) for k in range(15)], unit="s")
"""


def test_a_case_id_with_a_line_break_stays_on_its_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g = GitBuilder(tmp_path / "repo")
    g.commit("one", {"benches/bench_nl.py": LINES, "model.py": "VALUE = 1.0\n"})
    g.commit("two", {"model.py": "VALUE = 2.0\n"})  # a regression: rows to show
    results = ("--results", str(tmp_path / "results"))
    ran = cli("run", "--repo", str(g.path), "--benches", "benches", *results, "main~1", "main")
    assert ran.code == 1, ran.text
    compared = cli("compare", "--repo", str(g.path), "main~1", "main", *results)
    markdown = cli("compare", "--repo", str(g.path), "main~1", "main", "--markdown", *results)
    shown = cli("show", "--repo", str(g.path), "--case", "bench_nl.f[s=two\nlines]", *results)
    for outcome in (ran, compared, markdown, shown):
        lines = outcome.text.splitlines()
        assert not [line for line in lines if line.startswith(("lines]", "one]"))], outcome.text
    assert "ok       bench_nl.f[s=two\\nlines]" in ran.err  # a progress line per case
    assert "failed: bench_nl.f[s=bad\\u2028one]" in ran.err
    table = [line.split("│")[1:3] for line in ran.out.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in table] == [  # the summary table
        ["bench_nl.f[s=two\\nlines]", "ok"],
        ["bench_nl.f[s=bad\\u2028one]", "failed"],
    ]
    assert "bench_nl.f[s=two\\nlines]" in compared.out
    assert "| `bench_nl.f[s=two\\nlines]` | time |" in markdown.out
    assert "bench_nl.f[s=two\\nlines]" in shown.out
    assert json.loads(cli("run", "--repo", str(g.path), "--benches", "benches", *results,
                          "--force", "--json", "main").out)["commits"][0]["results"][0]["case"] == (
        "bench_nl.f[s=two\nlines]"  # JSON carries the id as it is
    )  # fmt: skip


FORGES_AT_IMPORT = """\
import json
import os

import commitbench as cb


def _send(event):
    # Where a determined bench finds the result pipe: a pipe among its descriptors.
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("pipe:") and int(name) > 2:
            os.write(int(name), (json.dumps({**event, "v": 1}) + "\\n").encode())


VICTIM = {"name": "bench_b.victim", "params": {}}
_send({"event": "plan", "cases": [VICTIM]})
_send({"event": "start", "case": VICTIM, "time": 1.0})
_send({"event": "result", "windows": [], "result": {
    "case": VICTIM, "status": "ok", "error": None, "duration_s": 0.0, "started_at": None,
    "metrics": [{"name": "time", "unit": "s", "direction": "lower", "n": 1, "mean": 1e-9,
                 "median": 1e-9, "stddev": None, "min": 1e-9, "max": 1e-9, "ci_low": None,
                 "ci_high": None, "samples": [1e-9], "properties": {}}]}})


@cb.bench
def mine(ctx):
    ctx.record("x", 1, unit="1")
"""

VICTIMS = """\
import commitbench as cb


@cb.bench
def victim(ctx):
    ctx.record("time", [0.5, 0.5, 0.5], unit="s")


@cb.bench
def other(ctx):
    ctx.record("time", [0.25, 0.25, 0.25], unit="s")
"""


def test_a_plan_forged_at_import_cannot_record_a_case_twice_or_stop_the_run(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    g = repo_with(
        tmp_path / "repo",
        {"benches/bench_a.py": FORGES_AT_IMPORT, "benches/bench_b.py": VICTIMS},
    )
    outcome = cli(
        "run", "--repo", str(g.path), "--benches", "benches", "--json",
        "--results", str(tmp_path / "r"),
    )  # fmt: skip
    assert outcome.code == 1, outcome.text
    assert "Traceback" not in outcome.err
    results = json.loads(outcome.out)["commits"][0]["results"]
    # One result per case. bench_a's code is the commit's own: what it said about a case
    # of its commit is kept, first; the module that broke the protocol is a failure.
    assert [(r["case"], r["status"]) for r in results] == [
        ("bench_b.victim", "ok"),
        ("bench_a", "failed"),
        ("bench_b.other", "ok"),
    ]
    assert results[1]["error"] == "worker broke the result protocol: a second plan"
