"""What a re-run costs: worktrees, --setup commands and worker processes, counted.

The measured repository counts for us: a `sitecustomize.py` at its root (on every
worker's PYTHONPATH) writes each interpreter's command line, a post-checkout hook each
worktree `git worktree add` makes, and the setup command appends a line per run.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from commitbench.cli.progress import Quiet
from commitbench.runner.options import RunOptions
from commitbench.runner.runner import Runner
from commitbench.runner.vcs import RevSpec
from commitbench.store.csv import CsvStore
from tests.gitrepo import BENCH_MODULE, CASES, GitBuilder, model_source

SITE = """\
import os

_log = os.environ.get("COMMITBENCH_TEST_STARTS")
if _log:
    with open("/proc/self/cmdline", "rb") as _fh:
        _argv = [a.decode() for a in _fh.read().split(b"\\0") if a]
    with open(_log, "a") as _out:
        _out.write(" ".join(_argv) + "\\n")
"""

HOOK = """\
#!/bin/sh
echo "$PWD" >> "$COMMITBENCH_TEST_WORKTREES"
"""


class Counts:
    def __init__(self, root: Path) -> None:
        self.starts = root / "starts.log"
        self.setups = root / "setups.log"
        self.worktrees = root / "worktrees.log"

    def take(self) -> dict[str, int]:
        """What happened since the last call, and start afresh."""
        kinds: Counter[str] = Counter()
        for line in _lines(self.starts):
            if "commitbench.worker" not in line:
                continue
            if "--environment" in line:
                kinds["probe"] += 1
            elif "--list" in line:
                kinds["survey"] += 1
            else:
                kinds["worker"] += 1
        out = {
            "worktree": len(_lines(self.worktrees)),
            "setup": len(_lines(self.setups)),
            "survey": kinds["survey"],
            "probe": kinds["probe"],
            "worker": kinds["worker"],
        }
        for path in (self.starts, self.setups, self.worktrees):
            path.unlink(missing_ok=True)
        return out


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


NOTHING = {"worktree": 0, "setup": 0, "survey": 0, "probe": 0, "worker": 0}


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[GitBuilder, Counts]:
    g = GitBuilder(tmp_path / "repo")
    for i in range(2):
        g.commit(
            f"version {i}",
            {
                "model.py": model_source(i),
                "benches/bench_model.py": BENCH_MODULE,
                "sitecustomize.py": SITE,
            },
        )
    hook = g.path / ".git" / "hooks" / "post-checkout"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    counts = Counts(tmp_path)
    monkeypatch.setenv("COMMITBENCH_TEST_STARTS", str(counts.starts))
    monkeypatch.setenv("COMMITBENCH_TEST_WORKTREES", str(counts.worktrees))
    monkeypatch.setenv("COMMITBENCH_TEST_SETUPS", str(counts.setups))
    return g, counts


def run_json(cli, *args: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    # The workers' interpreters and the setup count into files the environment names.
    passed = ("--pass-env", "COMMITBENCH_TEST_STARTS", "--pass-env", "COMMITBENCH_TEST_SETUPS")
    outcome = cli("run", "--json", *passed, *args)
    assert outcome.code == 0, outcome.err
    return json.loads(outcome.out)  # type: ignore[no-any-return]


def test_a_rerun_costs_no_worktree_setup_or_worker(cli, counted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, counts = counted
    base = (
        *("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", "benches"),
        *("--setup", 'echo setup >> "$COMMITBENCH_TEST_SETUPS"'),
    )
    two = (*base, "--max-count", "2", "main")
    first = run_json(cli, *two)
    assert [len(c["results"]) for c in first["commits"]] == [3, 3]
    # Per commit: a worktree, the setup, the environment probe (again: the setup may
    # change what is installed) and one worker for the module. Nothing was recorded
    # before, so there was nothing to list first.
    assert counts.take() == {"worktree": 2, "setup": 2, "survey": 0, "probe": 2, "worker": 2}

    again = run_json(cli, *two)
    assert [(c["run_id"], c["already_recorded"], c["results"]) for c in again["commits"]] == [
        (None, 3, [])
    ] * 2
    assert counts.take() == NOTHING

    # Another selection, all of it recorded: one worker lists the module per commit, and
    # neither the setup nor the probe runs.
    subset = run_json(cli, *two, "--filter", "size=2")
    assert [c["results"] for c in subset["commits"]] == [[], []]
    assert counts.take() == {"worktree": 2, "setup": 0, "survey": 2, "probe": 0, "worker": 0}

    # A new commit: measured; the two before it cost nothing.
    grown = BENCH_MODULE.replace('"size": [1, 2, 3]', '"size": [1, 2, 3, 4]')
    g.commit("a fourth size", {"benches/bench_model.py": grown})
    more = run_json(cli, *base, "--max-count", "3", "main")
    assert [[r["case"] for r in c["results"]] for c in more["commits"]] == [
        [],
        [],
        [*CASES, "bench_model.compute[size=4]"],
    ]
    assert counts.take() == {"worktree": 1, "setup": 1, "survey": 0, "probe": 1, "worker": 1}


def test_known_cases_all_recorded_cost_nothing(cli, counted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """bisect and check name the cases they want (RunOptions.cases)."""
    g, counts = counted
    results = tmp_path / "r"
    run_json(cli, "--repo", str(g.path), "--results", str(results), "--benches", "benches")
    assert counts.take() == {"worktree": 1, "setup": 0, "survey": 0, "probe": 1, "worker": 1}

    def probe(cases: set[str]) -> list[str]:
        options = RunOptions(
            repo=g.path,
            revs=RevSpec(("main",)),
            benches="benches",
            cases=frozenset(cases),
            pass_env=("COMMITBENCH_TEST_STARTS",),
        )
        runner = Runner(options, CsvStore(results), spool=None, events=Quiet())
        (outcome,) = runner.run(runner.plan())
        return [r.case.label for r in outcome.results]

    assert probe({CASES[1]}) == []
    assert counts.take() == NOTHING
    assert probe({CASES[1], "bench_model.compute[size=9]"}) == []  # not a case: listed
    assert counts.take() == {"worktree": 1, "setup": 0, "survey": 1, "probe": 0, "worker": 0}


def test_a_bench_directory_outside_the_repository_is_known_by_its_content(  # type: ignore[no-untyped-def]
    cli, counted, tmp_path: Path
) -> None:
    g, counts = counted
    outside = tmp_path / "mybenches"
    outside.mkdir()
    (outside / "bench_out.py").write_text(
        textwrap.dedent(
            """\
            import commitbench as cb

            @cb.bench(params={"k": [1]})
            def f(ctx, k):
                ctx.record("k", k, "1")
            """
        )
    )
    base = ("--repo", str(g.path), "--results", str(tmp_path / "r"), "--benches", str(outside))
    assert [r["case"] for r in run_json(cli, *base)["commits"][0]["results"]] == [
        "bench_out.f[k=1]"
    ]
    assert counts.take() == {"worktree": 1, "setup": 0, "survey": 0, "probe": 1, "worker": 1}
    assert run_json(cli, *base)["commits"][0]["results"] == []
    assert counts.take() == NOTHING

    source = (outside / "bench_out.py").read_text()
    (outside / "bench_out.py").write_text(source.replace('"k": [1]', '"k": [1, 2]'))
    assert [r["case"] for r in run_json(cli, *base)["commits"][0]["results"]] == [
        "bench_out.f[k=2]"
    ]
    assert counts.take() == {"worktree": 1, "setup": 0, "survey": 1, "probe": 1, "worker": 1}


def test_the_selection_is_recorded_with_the_run(cli, counted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    g, _ = counted
    results = tmp_path / "r"
    run_json(
        cli, "--repo", str(g.path), "--results", str(results), "--benches", "benches/",
        "--filter", "size=1",
    )  # fmt: skip
    (folder,) = [p for p in results.iterdir() if p.is_dir()]
    manifest = json.loads((folder / "manifest.json").read_text())
    tree = g.git("rev-parse", "HEAD:benches")
    assert manifest["run"]["environment"]["selection"] == {
        "benches": "benches/",
        "content": tree,
        "filter": "size=1",
        "cases": None,
    }
    assert os.path.basename(manifest["run"]["environment"]["executable"]).startswith("python")
