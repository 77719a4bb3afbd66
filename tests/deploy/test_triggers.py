"""The shipped triggers work as shipped: the crontab line runs (its own command, through
bash with cron's environment) against a real repository and records what it promises;
the systemd units pass `systemd-analyze verify` and run the same command. The GitHub
workflow is checked by actionlint in `make lint` (tools/actionlint)."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL

from tests.gitrepo import GitBuilder

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CRONTAB = DEPLOY / "cron" / "commitbench.crontab"
UNITS = DEPLOY / "systemd"
INSTALLED = "/opt/commitbench/bin/commitbench"  # where both triggers expect commitbench
COMMITBENCH = str(Path(sys.executable).with_name("commitbench"))  # this checkout's

TINY = """\
import commitbench as cb


@cb.bench
def tiny(ctx: cb.Context) -> None:
    ctx.record("answer", 42, unit="count", better="higher")
"""


def cron_job() -> tuple[dict[str, str], list[str], str]:
    """The crontab's variables, the job's five schedule fields and its command."""
    variables, jobs = {}, []
    for line in CRONTAB.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, equals, value = line.partition("=")
        if equals and name.isidentifier():
            variables[name] = value
        else:
            jobs.append(line.split(None, 5))
    (job,) = jobs
    return variables, job[:5], job[5]


def commitbench_args(command: str) -> list[str]:
    """The arguments of the commitbench call in a shell command line."""
    words = shlex.split(command)
    start = words.index(INSTALLED) + 1
    return words[start : words.index(">>", start)]


def test_the_crontab_line_runs_nightly_with_bash() -> None:
    variables, schedule, command = cron_job()
    assert variables == {"SHELL": "/bin/bash"}
    assert schedule == ["15", "2", "*", "*", "*"]  # 02:15 every day
    assert commitbench_args(command) == [
        "run",
        "--repo",
        "/srv/model",
        "--benches",
        "benches",
        "--trigger",
        "cron",
        "--branch",
        "main",
        "--first-parent",
        "--since",
        "36 hours ago",
        "origin/main",
    ]


def recent(g: GitBuilder, message: str, ago: timedelta, files: dict[str, str]) -> str:
    """A commit dated `ago` before now (the job measures the last 36 hours)."""
    for name, content in files.items():
        (g.path / name).parent.mkdir(parents=True, exist_ok=True)
        (g.path / name).write_text(content)
        g.git("add", name)
    when = datetime.now(timezone.utc) - ago
    g.git("commit", "-q", "--allow-empty", "-m", message, date=when)
    return g.head()


@pytest.mark.slow
def test_the_cron_job_records_the_last_day_of_main(
    db_url: URL, engine: Engine, tmp_path: Path
) -> None:
    """The crontab's command line, paths moved into a temp dir, run by bash with cron's
    environment: it fetches, then records each first-parent commit of origin/main from
    the last 36 hours, once, as trigger cron on branch main."""
    upstream = GitBuilder(tmp_path / "upstream")
    upstream.commit("old", {"benches/bench_tiny.py": TINY})  # 2026-10-01: too old
    c1 = recent(upstream, "one", timedelta(hours=30), {"a.txt": "1"})
    upstream.branch("feature")
    recent(upstream, "side", timedelta(hours=20), {"b.txt": "2"})  # not first-parent
    upstream.checkout("main")
    upstream.git(
        "merge", "-q", "--no-ff", "-m", "merge feature", "feature",
        date=datetime.now(timezone.utc) - timedelta(hours=10),
    )  # fmt: skip
    merge = upstream.head()
    model = tmp_path / "model"  # the checkout cron fetches into (/srv/model)
    subprocess.run(["git", "clone", "-q", str(upstream.path), str(model)], check=True)
    c2 = recent(upstream, "two", timedelta(hours=1), {"c.txt": "3"})  # only upstream

    env_file = tmp_path / "commitbench.env"
    database = db_url.set(drivername="postgresql").render_as_string(hide_password=False)
    env_file.write_text(
        f"COMMITBENCH_DB={database}\nPGPASSWORD=unused-trust-auth\n"
        f"COMMITBENCH_RESULTS={tmp_path / 'results'}\n"
    )
    log = tmp_path / "cron.log"
    _, _, command = cron_job()
    for shipped, here in [
        ("/etc/commitbench.env", str(env_file)),
        (INSTALLED, COMMITBENCH),
        ("/srv/model", str(model)),
        ("/var/log/commitbench/cron.log", str(log)),
    ]:
        assert shipped in command
        command = command.replace(shipped, here)
    cron_env = {
        "HOME": str(tmp_path),
        "LOGNAME": "bench",
        "PATH": "/usr/bin:/bin",
        "SHELL": "/bin/bash",
    }

    def nightly() -> None:
        # A session of its own: on a timeout, the job's processes end with it.
        job = subprocess.Popen(["/bin/bash", "-c", command], env=cron_env, start_new_session=True)
        try:
            assert job.wait(timeout=300) == 0, log.read_text()
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait()

    nightly()
    assert "Traceback" not in log.read_text()
    runs = text(
        "SELECT c.sha, r.trigger, r.branch, r.status, count(s.id) FROM runs r "
        "JOIN commits c ON c.id = r.commit_id JOIN results s ON s.run_id = r.id "
        "GROUP BY c.sha, r.trigger, r.branch, r.status, r.started_at ORDER BY r.started_at"
    )
    # Not "old" (before the window), not "side" (merged, not first-parent); c2 fetched.
    expected = [(sha, "cron", "main", "ok", 1) for sha in (c1, merge, c2)]
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(runs)] == expected

    nightly()  # the next night: the same window, nothing measured twice
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(runs)] == expected
    assert not (tmp_path / "results").exists()  # the database was there: nothing spooled


systemd_analyze = shutil.which("systemd-analyze")
needs_systemd = pytest.mark.skipif(
    systemd_analyze is None, reason="systemd-analyze is not installed"
)


def verify(folder: Path) -> subprocess.CompletedProcess[str]:
    """systemd-analyze verify on the units in `folder`, as installed there."""
    assert systemd_analyze is not None
    units = sorted(str(p) for p in folder.iterdir())
    return subprocess.run(
        [systemd_analyze, "verify", *units], capture_output=True, text=True, check=False
    )


def installed_units(folder: Path) -> Path:
    """The shipped units, with commitbench where this checkout installed it: verify
    refuses an ExecStart whose binary does not exist, and /opt/commitbench is the
    production path. Everything else (user, directories, env file) is as shipped;
    verify does not look for those, a unit running them does."""
    folder.mkdir()
    for unit in UNITS.iterdir():
        body = unit.read_text()
        assert unit.suffix == ".timer" or INSTALLED in body
        (folder / unit.name).write_text(body.replace(INSTALLED, COMMITBENCH))
    return folder


@needs_systemd
def test_the_systemd_units_verify(tmp_path: Path) -> None:
    done = verify(installed_units(tmp_path / "units"))
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "")


@needs_systemd
@pytest.mark.parametrize(
    ("unit", "old", "new", "complaint"),
    [
        ("commitbench.service", "KillSignal=", "KillSignall=", "Unknown key 'KillSignall'"),
        ("commitbench.timer", "02:15:00", "26:15:00", "Failed to parse calendar"),
        ("commitbench.service", COMMITBENCH, "/nonexistent/commitbench", "is not executable"),
    ],
)
def test_verify_sees_a_broken_unit(
    tmp_path: Path, unit: str, old: str, new: str, complaint: str
) -> None:
    """The check above can fail: each of these breaks is reported."""
    folder = installed_units(tmp_path / "units")
    body = (folder / unit).read_text()
    assert old in body
    (folder / unit).write_text(body.replace(old, new))
    done = verify(folder)
    assert complaint in done.stderr


def test_the_service_runs_what_cron_runs() -> None:
    """One command, two schedulers: the unit's ExecStart and the timer's schedule are
    the crontab's, so the cron test above covers the unit's command too."""
    service = (UNITS / "commitbench.service").read_text().splitlines()
    timer = (UNITS / "commitbench.timer").read_text().splitlines()
    _, schedule, command = cron_job()
    (exec_start,) = [line.split("=", 1)[1] for line in service if line.startswith("ExecStart=")]
    (pre,) = [line.split("=", 1)[1] for line in service if line.startswith("ExecStartPre=")]
    words = shlex.split(exec_start)
    assert words[0] == INSTALLED
    assert words[1:] == commitbench_args(command)
    assert shlex.split(pre) == ["/usr/bin/git", "-C", "/srv/model", "fetch", "-q", "origin"]
    assert "git fetch -q origin" in command and "cd /srv/model" in command
    assert "OnCalendar=*-*-* 02:15:00" in timer and schedule[:2] == ["15", "2"]
    assert "EnvironmentFile=/etc/commitbench.env" in service
    assert ". /etc/commitbench.env" in command
    assert os.path.basename(INSTALLED) == "commitbench"
