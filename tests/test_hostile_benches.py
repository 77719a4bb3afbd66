"""Bench code that works against the runner, in real worker processes: parameters no
store can hold, results forged through the result pipe, forked children that keep the
pipe open. Each costs only its own case; the module's other cases run and report."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

from commitbench.runner.launcher import WorkerOptions, list_cases, run_module, survey


def write(tmp_path: Path, name: str, source: str, timeout_s: float = 30.0) -> WorkerOptions:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    return WorkerOptions(timeout_s=timeout_s, pythonpath=(tmp_path,), device="cpu", env=env)


UNSTORABLE = """
import commitbench as cb

@cb.bench(params={"s": ["ok", "a\\x00b", "lone\\ud800"], "n": [1, 2]})
def f(ctx, s, n):
    ctx.record("x", n, unit="1")

@cb.bench
def g(ctx):
    ctx.record("y", 3, unit="1")
"""


def test_a_parameter_no_store_can_hold_fails_its_bench_and_the_rest_runs(tmp_path: Path) -> None:
    options = write(tmp_path, "unstorable", UNSTORABLE)
    runs = list(run_module("unstorable", options))
    got = [(r.result.case.label, r.result.status) for r in runs]
    assert got == [
        ("unstorable.f", "failed"),
        ("unstorable.f[n=1,s=ok]", "ok"),
        ("unstorable.f[n=2,s=ok]", "ok"),
        ("unstorable.g", "ok"),
    ]
    assert runs[0].result.error == (
        "4 cases of unstorable.f not run: param s='a\\x00b' holds U+0000, "
        "param s='lone\\ud800' holds U+D800, which PostgreSQL cannot store"
    )
    # The listing says the same, so the runner plans exactly what the worker will send.
    listed = list_cases("unstorable", options)
    assert isinstance(listed, list)
    assert [c.label for c in listed] == [label for label, _ in got]
    assert survey(["unstorable"], options).plans == {"unstorable": listed}


FORGER = """
import json
import os
import commitbench as cb

def result_pipes():
    # What a determined bench does: look for a pipe it may write to among its own fds.
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith("pipe:") and os.stat(f"/proc/self/fd/{name}").st_mode:
            flags = open(f"/proc/self/fdinfo/{name}").read().split("flags:")[1].split()[0]
            if int(flags, 8) & 0o3 == os.O_WRONLY:
                found.append(int(name))
    return found

FORGED = {
    "event": "result",
    "v": 1,
    "result": {
        "case": {"name": "forger.victim", "params": {}},
        "status": "ok",
        "error": None,
        "duration_s": 0.001,
        "started_at": None,
        "metrics": [{"name": "time", "unit": "s", "direction": "lower", "n": 1,
                     "mean": 1e-9, "median": 1e-9, "stddev": None, "min": 1e-9, "max": 1e-9,
                     "ci_low": None, "ci_high": None, "samples": [1e-9], "properties": {}}],
    },
    "windows": [],
}

@cb.bench
def attacker(ctx):
    pipes = result_pipes()
    for fd in pipes:
        os.write(fd, (json.dumps(FORGED) + "\\n").encode())
    ctx.record("pipes_found", len(pipes), unit="1")

@cb.bench
def victim(ctx):
    ctx.record("time", [0.5, 0.5, 0.5], unit="s")

@cb.bench
def after(ctx):
    ctx.record("z", 1, unit="1")
"""


def test_a_result_forged_for_a_sibling_is_a_protocol_error_of_the_forgers_case(
    tmp_path: Path,
) -> None:
    options = write(tmp_path, "forger", FORGER)
    runs = list(run_module("forger", options))
    got = [(r.result.case.label, r.result.status) for r in runs]
    assert got == [
        ("forger.attacker", "crashed"),
        ("forger.victim", "ok"),
        ("forger.after", "ok"),
    ]
    assert (runs[0].result.error or "").startswith(
        "worker broke the result protocol: a result for forger.victim while "
        "forger.attacker was running"
    )
    assert runs[1].result.metrics[0].median == 0.5  # measured, not forged
    assert runs[1].pid != runs[0].pid  # in a fresh worker


SNOOP = '''
import os
import subprocess
import sys
import commitbench as cb

CHILD = """
import os
pipes = 0
for name in os.listdir("/proc/self/fd"):
    try:
        pipes += os.readlink(f"/proc/self/fd/{name}").startswith("pipe:")
    except OSError:  # the directory listing's own fd, closed by now
        pass
print(pipes)
"""

@cb.bench
def snoop(ctx):
    # A bench's own programs (compilers, torchrun) see no result pipe, and the worker's
    # command line does not name one.
    child = subprocess.run([sys.executable, "-c", CHILD], close_fds=False, check=True,
                           stdout=subprocess.PIPE, text=True)
    ctx.record("pipes_in_child", int(child.stdout) - 1, unit="1")  # less its own stdout
    ctx.note(argv=" ".join(sys.argv[1:]))
'''


def test_bench_programs_do_not_inherit_the_result_pipe(tmp_path: Path) -> None:
    options = write(tmp_path, "snoop", SNOOP)
    (run,) = run_module("snoop", options)
    assert run.result.status == "ok", run.result.error
    assert run.result.metrics[0].median == 0.0
    argv = run.result.metrics[0].properties["used"]["argv"]
    assert "--result-fd" not in argv and argv.startswith("snoop ")


FORKS = """
import os
import time
import commitbench as cb

@cb.bench(params={"k": [1, 2]})
def forks(ctx, k):
    ctx.record("k", k, unit="1")
    if k == 1:
        child = os.fork()
        if child == 0:  # a child that keeps every fd of the worker open
            time.sleep(600)
            os._exit(0)
        ctx.note(child=child)
"""


def test_a_forked_child_holding_the_pipe_does_not_hold_up_the_module(tmp_path: Path) -> None:
    options = write(tmp_path, "forks", FORKS, timeout_s=60.0)
    started = time.monotonic()
    runs = list(run_module("forks", options))
    took = time.monotonic() - started
    assert [(r.result.case.label, r.result.status) for r in runs] == [
        ("forks.forks[k=1]", "ok"),
        ("forks.forks[k=2]", "ok"),
    ]
    # Not the 60 s timeout: the worker's exit ends the module, not the pipe's EOF.
    assert took < 30, took
    child = runs[0].result.metrics[0].properties["used"]["child"]
    assert gone(child)  # and the child went with its worker's process group


def gone(pid: int, within_s: float = 10.0) -> bool:
    """The process ends within `within_s` (SIGKILL is delivered, not awaited)."""
    deadline = time.monotonic() + within_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    """Running or sleeping: not gone, and not a zombie waiting for a reaper."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
