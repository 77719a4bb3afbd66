"""How often `check` and `compare --measure` are right, on real measurements (issue 13).

Not a test: it builds a temporary git repository whose commits scale real workloads by
exact factors, measures pairs of commits with commitbench's own Runner and decisions
(analysis.gate.check, the CI gate, and analysis.gate.measure_and_compare, `compare
--measure`), and prints how the verdicts came out against the truth.

Workloads (each scaled by an integer repeat count, so a step is exactly the factor):
- cpu (default): four pure-Python loops (arithmetic, hashing, sorting, bytes), each
  repeated REPS times per call; commits 1.00, 1.00, 1.05, 1.10 (REPS 200, 200, 210, 220).
- cuda (--device cuda): launch-bound (1,000 tiny add_ launches), matmul (bf16 4096x4096,
  100 products), memory-bound (100 in-place passes over 256 MB); commits 1.00, 1.00, 1.03,
  1.05, 1.10 (counts 1000/100 times the factor).

Scenarios:
- A/A: the two 1.00 commits (same code, different commits). With --load (the default on
  CPU) a busy-loop subprocess is started or stopped at random (seeded) before each run,
  so the machine's load changes between the interleaved processes. Wrong verdict:
  regressed or improved.
- A/B: 1.00 against each larger factor, quiet. Found: regressed; wrong: improved.
Commands alternate between check (its gate decision: a suspect counts as found
only when the interleaved confirmation confirms it) and compare --measure. Coverage: the
share of 95% intervals of the ratio that contain the true factor.

    .venv/bin/python perf/gate_quality.py                       # CPU, this machine
    .venv/bin/python perf/gate_quality.py --device cuda --out /tmp/gq --aa 10 --ab 5

On a GPU box each command (check or compare --measure of the three workloads) starts at
least 6 worker processes that import torch; split long runs with --aa 0, --ab 0 and
--steps (each invocation prints its own table), or give --deadline SECONDS: commands run
round-robin over the scenarios (A/A, each step, again) and the report in --out is
rewritten after each, so a run stopped at its deadline has figures for every scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from commitbench.analysis import gate
from commitbench.analysis.compare import Policies, Policy, Row
from commitbench.cli.progress import Quiet
from commitbench.model import cpus
from commitbench.model.points import Point
from commitbench.runner.lab import RunnerLab
from commitbench.runner.options import RunOptions
from commitbench.runner.runner import Runner
from commitbench.runner.vcs import RevSpec
from commitbench.store.csv import CsvStore

CPU_SCALES = (1.00, 1.00, 1.05, 1.10)
GPU_SCALES = (1.00, 1.00, 1.03, 1.05, 1.10)

CPU_BENCH = """\
import hashlib

import commitbench as cb
import work

DATA = list(range(2000, 0, -1))
BLOCK = bytes(range(256)) * 16


def arith():
    x = 0
    for i in range(300):
        x += i * i
    return x


def hashing():
    return hashlib.sha256(BLOCK).digest()


def sorting():
    return sorted(DATA[:300])


def joining():
    return b"".join(BLOCK[i : i + 64] for i in range(0, 1024, 64))


UNITS = {"arith": arith, "hash": hashing, "sort": sorting, "bytes": joining}


@cb.bench(params={"kind": sorted(UNITS)})
def step(ctx: cb.Context, kind: str) -> None:
    unit, reps = UNITS[kind], work.REPS

    def call():
        for _ in range(reps):
            unit()

    ctx.time("time", call, budget_s=BUDGET)
"""

GPU_BENCH = """\
import commitbench as cb
import work


@cb.bench(params={"kind": ["launch", "matmul", "memory"]}, requires=("cuda",))
def step(ctx: cb.Context, kind: str) -> None:
    import torch

    n = work.COUNTS[kind]
    if kind == "launch":
        x = torch.zeros(16, device="cuda")

        def call():
            for _ in range(n):
                x.add_(1.0)
    elif kind == "matmul":
        a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)

        def call():
            for _ in range(n):
                torch.mm(a, b)
    else:
        x = torch.zeros(64 * 2**20, device="cuda")  # 256 MB of float32

        def call():
            for _ in range(n):
                x.add_(1.0)
    ctx.time("time", call, budget_s=BUDGET)
"""


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": "2026-11-30T08:00:00Z",
        "GIT_COMMITTER_DATE": "2026-11-30T08:00:00Z",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return done.stdout.strip()


def build_repo(root: Path, device: str, budget: float) -> list[str]:
    """One commit per scale; returns the shas, oldest first."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "perf@example.com")
    git(repo, "config", "user.name", "perf")
    (repo / "benches").mkdir()
    bench = GPU_BENCH if device == "cuda" else CPU_BENCH
    (repo / "benches" / "load.py").write_text(bench.replace("BUDGET", repr(budget)))
    shas = []
    for i, scale in enumerate(GPU_SCALES if device == "cuda" else CPU_SCALES):
        if device == "cuda":
            counts = {"launch": round(1000 * scale), "matmul": round(100 * scale)}
            counts["memory"] = round(100 * scale)
            (repo / "work.py").write_text(f"SCALE = {scale!r}\nCOUNTS = {counts!r}\n")
        else:
            (repo / "work.py").write_text(f"SCALE = {scale!r}\nREPS = {round(200 * scale)}\n")
        (repo / "README").write_text(f"commit {i}\n")  # A/A commits differ, code does not
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"scale {scale}")
        shas.append(git(repo, "rev-parse", "HEAD"))
    return shas


class Load:
    """A busy-loop child process, started and stopped on demand (ours alone)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.switches = 0

    def set(self, on: bool) -> None:
        if on and self.proc is None:
            self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            self.switches += 1
        elif not on and self.proc is not None:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None
            self.switches += 1


class LoadedLab:
    """RunnerLab whose every measurement may start or stop the background load first."""

    def __init__(self, lab: RunnerLab, load: Load | None, rng: random.Random) -> None:
        self.lab, self.load, self.rng = lab, load, rng

    def measure(
        self,
        sha: str,
        *,
        cases: frozenset[str] | None = None,
        again: bool = False,
        processes: int = 1,
    ) -> list[Point]:
        if self.load is not None:
            self.load.set(self.rng.random() < 0.5)
        return self.lab.measure(sha, cases=cases, again=again, processes=processes)

    def recorded(self, shas: Sequence[str], *, case: str | None = None) -> list[Point]:
        return self.lab.recorded(shas, case=case)


@dataclass
class Outcome:
    """One case comparison: what was decided, against the truth."""

    scenario: str
    mode: str  # check (after its confirmation) or compare
    workload: str  # the case
    truth: float
    verdict: str
    ratio: float
    ci_low: float | None
    ci_high: float | None
    processes: int  # per side, in the decision that counted

    @property
    def wrong(self) -> bool:
        if self.truth == 1.0:
            return self.verdict in ("regressed", "improved")
        return self.verdict == "improved"

    @property
    def covered(self) -> bool | None:
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low <= self.truth <= self.ci_high


@dataclass
class Command:
    scenario: str
    mode: str
    seconds: float


def _outcome(scenario: str, mode: str, truth: float, verdict: str, row: Row) -> Outcome:
    c = row.comparison
    return Outcome(
        scenario,
        mode,
        row.case,
        truth,
        verdict,
        c.ratio,
        c.ci_low,
        c.ci_high,
        min(c.processes_base, c.processes_head),
    )


def one(
    root: Path,
    repo: Path,
    base: str,
    head: str,
    *,
    scenario: str,
    truth: float,
    use_check: bool,
    processes: int,
    max_processes: int,
    policies: Policies,
    load: Load | None,
    rng: random.Random,
    affinity: frozenset[int] | None = None,
) -> tuple[list[Outcome], Command]:
    results = Path(tempfile.mkdtemp(dir=root))  # nothing recorded: everything measured
    options = RunOptions(
        repo=repo,
        revs=RevSpec((base, head)),
        benches="benches",
        trigger="ci",
        affinity=affinity,
    )
    store = CsvStore(results)
    runner = Runner(options, store, spool=None, events=Quiet())
    lab = LoadedLab(RunnerLab(runner, store), load, rng)
    mode = "check" if use_check else "compare"
    outcomes: list[Outcome] = []
    t0 = time.perf_counter()
    try:
        if use_check:
            result = gate.check(
                lab,
                base,
                head,
                policies,
                processes=processes,
                rounds=processes,
                max_processes=max_processes,
            )
            confirmation = {(r.case, r.metric): r for r in result.confirmation}
            for row in result.rows:
                if row.metric != "time":
                    continue
                # The gate's decision is the confirmation's where there was one; the
                # interval (coverage) is the first comparison's.
                again = confirmation.get((row.case, row.metric))
                verdict = again.comparison.verdict if again else row.comparison.verdict
                outcomes.append(_outcome(scenario, mode, truth, verdict, row))
        else:
            rows = gate.measure_and_compare(
                lab, base, head, policies, processes=processes, max_processes=max_processes
            )
            for row in rows:
                if row.metric == "time":
                    outcomes.append(_outcome(scenario, mode, truth, row.comparison.verdict, row))
    finally:
        if load is not None:
            load.set(False)
    return outcomes, Command(scenario, mode, time.perf_counter() - t0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--aa", type=int, default=26, help="A/A commands (cases each)")
    parser.add_argument("--ab", type=int, default=6, help="commands per A/B factor")
    parser.add_argument("--processes", type=int, default=gate.DEFAULT_PROCESSES)
    parser.add_argument("--max-processes", type=int, default=gate.DEFAULT_MAX_PROCESSES)
    parser.add_argument("--policy", help="minimum effect [median:5%%; median:3%% on cuda]")
    parser.add_argument("--load", choices=("on", "off"), help="[on for cpu, off for cuda]")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds of timed repeats per case and process [0.3 on cpu, 1.0 on cuda]",
    )
    parser.add_argument(
        "--steps", help="only these A/B factors, e.g. 1.05,1.10 [every one of the device]"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        help="seconds after which no new command starts (the report is written after each)",
    )
    parser.add_argument(
        "--first",
        choices=("check", "compare"),
        default="check",
        help="the decision of a scenario's first command; they alternate after it [check]",
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--affinity", metavar="CPUS", help="pin every worker (run --affinity)")
    parser.add_argument("--out", type=Path, help="directory for gate_quality.txt and .json")
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="measure nothing: print one report of the gate_quality.json files of earlier "
        "runs (e.g. one per GPU of a host)",
    )
    args = parser.parse_args(argv)
    policy = Policy.parse(args.policy or ("median:3%" if args.device == "cuda" else "median:5%"))
    if args.merge:
        return merge(args.merge, args.out)
    policies = Policies(policy)
    use_load = (args.load or ("off" if args.device == "cuda" else "on")) == "on"
    budget = args.budget if args.budget is not None else (1.0 if args.device == "cuda" else 0.3)
    rng = random.Random(args.seed)
    load = Load() if use_load else None
    header = [
        f"perf/gate_quality.py --device {args.device} --aa {args.aa} --ab {args.ab} "
        f"--processes {args.processes} --max-processes {args.max_processes} "
        f"--budget {budget:g} --first {args.first} --seed {args.seed}"
        + (f" --affinity {args.affinity}" if args.affinity else ""),
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs"
        + (" (shared with other agents' work: noisy)" if args.device == "cpu" else ""),
        f"policy {policy}, alpha 0.01, {args.processes} processes per side, interleaved, "
        f"at most {args.max_processes}; commands alternate check (gate decision after "
        "confirmation) and compare --measure",
    ]
    outcomes: list[Outcome] = []
    commands: list[Command] = []
    with tempfile.TemporaryDirectory(prefix="gate-quality-") as tmp:
        root = Path(tmp)
        shas = build_repo(root, args.device, budget)
        scales = GPU_SCALES if args.device == "cuda" else CPU_SCALES
        aa = "A/A" + (" load on/off" if use_load else "")
        plan = [(aa, 1.0, shas[0], shas[1], load, args.aa)]
        steps = {float(x) for x in args.steps.split(",")} if args.steps else set(scales[2:])
        for sha, scale in zip(shas[2:], scales[2:], strict=True):
            if scale not in steps:
                continue
            plan.append(
                (f"A/B +{(scale - 1) * 100:.0f}% quiet", scale, shas[1], sha, None, args.ab)
            )
        started = time.perf_counter()

        def write(total: float) -> str:
            extra = []
            if load is not None:
                extra = [f"background load switched {load.switches} times (a busy-loop process)"]
            text = report([*header, *extra], outcomes, commands, total)
            if args.out is not None:
                save(args.out, text, outcomes, commands, header)
            return text

        # Round-robin over the scenarios (A/A, then each step, then again), so a run cut
        # short by --deadline has some commands of every scenario; the report is
        # rewritten after each command.
        order = [
            (i, k) for k in range(max((c for *_, c in plan), default=0)) for i in range(len(plan))
        ]
        order = [(i, k) for i, k in order if k < plan[i][5]]
        try:
            for i, k in order:
                if args.deadline is not None and time.perf_counter() - started > args.deadline:
                    print(f"deadline of {args.deadline:.0f} s reached", file=sys.stderr)
                    break
                name, truth, base, head, busy, _ = plan[i]
                got, command = one(
                    root,
                    root / "repo",
                    base,
                    head,
                    scenario=name,
                    truth=truth,
                    use_check=(k % 2 == 0) == (args.first == "check"),
                    processes=args.processes,
                    max_processes=args.max_processes,
                    affinity=cpus.parse(args.affinity) if args.affinity else None,
                    policies=policies,
                    load=busy,
                    rng=rng,
                )
                outcomes += got
                commands.append(command)
                said = ", ".join(f"{o.workload} {o.verdict} {o.ratio:.3f}" for o in got)
                print(
                    f"  {name}, {command.mode} ({command.seconds:.0f} s): {said}",
                    file=sys.stderr,
                    flush=True,
                )
                write(time.perf_counter() - started)
        finally:
            if load is not None:
                load.set(False)
        total = time.perf_counter() - started
    print(write(total))
    return 0


def save(
    out: Path, text: str, outcomes: list[Outcome], commands: list[Command], header: list[str]
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate_quality.txt").write_text(text + "\n")
    data = {
        "header": header,
        "outcomes": [o.__dict__ for o in outcomes],
        "commands": [c.__dict__ for c in commands],
    }
    (out / "gate_quality.json").write_text(json.dumps(data, indent=1) + "\n")


def merge(files: Sequence[Path], out: Path | None) -> int:
    outcomes: list[Outcome] = []
    commands: list[Command] = []
    header = [f"merged: {', '.join(str(f) for f in files)}"]
    for f in files:
        data = json.loads(f.read_text())
        header += [f"{f}: {line}" for line in data["header"][:1]]
        outcomes += [Outcome(**o) for o in data["outcomes"]]
        commands += [Command(**c) for c in data["commands"]]
    text = report(header, outcomes, commands, sum(c.seconds for c in commands))
    if out is not None:
        save(out, text, outcomes, commands, header)
    print(text)
    return 0


def report(
    header: list[str], outcomes: list[Outcome], commands: list[Command], total: float
) -> str:
    """Per scenario, decision and workload: the verdicts, the wrong ones, the share found
    and the coverage of the 95% intervals; then the time per command."""
    lines = [*header, ""]
    head = (
        f"{'scenario, decision, case':<46}{'n':>4}{'regr':>6}{'impr':>6}{'unch':>6}"
        f"{'ambig':>6}{'wrong':>7}{'found':>7}{'cover':>7}{'procs':>7}"
    )
    lines += [head, "-" * len(head)]
    keys: list[tuple[str, str, str]] = []
    for o in outcomes:
        if (o.scenario, o.mode, o.workload) not in keys:
            keys.append((o.scenario, o.mode, o.workload))
    for key in sorted(keys, key=lambda k: (k[0], k[1], k[2])):
        group = [o for o in outcomes if (o.scenario, o.mode, o.workload) == key]
        n = len(group)
        count = {v: sum(o.verdict == v for o in group) for v in _VERDICTS}
        truth = group[0].truth
        found = "" if truth == 1.0 else f"{count['regressed'] / n * 100:.0f}%"
        intervals = [v for o in group if (v := o.covered) is not None]
        cover = f"{sum(intervals) / len(intervals) * 100:.0f}%" if intervals else "-"
        procs = sum(o.processes for o in group) / n
        lines.append(
            f"{', '.join(key):<46}{n:>4}{count['regressed']:>6}{count['improved']:>6}"
            f"{count['unchanged']:>6}{count['ambiguous']:>6}{sum(o.wrong for o in group):>7}"
            f"{found:>7}{cover:>7}{procs:>7.1f}"
        )
    aa = [o for o in outcomes if o.truth == 1.0]
    intervals = [v for o in outcomes if (v := o.covered) is not None]
    lines += [
        "",
        f"wrong verdicts: {sum(o.wrong for o in outcomes)} of {len(outcomes)} case "
        f"comparisons ({sum(o.wrong for o in aa)} of {len(aa)} A/A); 95% intervals "
        f"covering the true factor: {sum(intervals)} of {len(intervals)}",
        "found: share called regressed (check: after its confirmation). cover: share of "
        "95% intervals containing the true factor (check: its first comparison's). procs: "
        "mean processes per side behind the decision (after extension)",
        "",
        f"{'scenario, decision':<34}{'commands':>9}{'s/cmd':>8}{'min':>7}{'max':>7}",
    ]
    pairs: list[tuple[str, str]] = []
    for c in commands:
        if (c.scenario, c.mode) not in pairs:
            pairs.append((c.scenario, c.mode))
    for pair in sorted(pairs):
        secs = [c.seconds for c in commands if (c.scenario, c.mode) == pair]
        lines.append(
            f"{', '.join(pair):<34}{len(secs):>9}{sum(secs) / len(secs):>8.1f}"
            f"{min(secs):>7.1f}{max(secs):>7.1f}"
        )
    lines.append(f"total {total:.0f} s of commands")
    return "\n".join(lines)


_VERDICTS = ("regressed", "improved", "unchanged", "ambiguous")


if __name__ == "__main__":
    sys.exit(main())
