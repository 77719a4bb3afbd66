"""The worker: `python -m commitbench.worker MODULE`, run in a child process per module.

It imports one bench module (the worktree is on PYTHONPATH), expands its cases for the
profile, and runs them one after the other, writing wire.py events to `--result-fd`
(stdout is left to the benches). Failures inside a case are caught here: an exception
is `failed` with its traceback, `MemoryError` and torch's CUDA out-of-memory error are
`oom`, `ctx.skip()` and unmet requirements are `skipped`, and the next case runs.
Deaths it cannot report (a signal, `os._exit`, a hang) are classified by
runner/supervision.py. `--list` sends the plans of several modules instead, and
`--environment` what harness/environment.py probes. The calibration loop
(harness/calibration.py) is timed after the module's imports, before the first case, and
again after the last, each sent as a `calibration` event.

`--params JSON` is the `--param` sweep ({name: [value as typed, ...]}, model/sweep.py):
each bench that declares a name has that parameter's values replaced, typed like its
declared ones; a value that does not parse fails the bench as one result named after
it. With `--list`, each module's plan then also says what its benches declare
(`benches`: name, params, error), for the runner to check the sweep
(runner/selection.py).

A case whose parameters hold a character no store can keep (NUL; model/text.py) is not
run: its bench reports one `failed` result, named after the bench function, that lists
the values; the bench's other cases run.

Bench code is not trusted with the protocol. The result pipe is moved to a high,
close-on-exec descriptor and `--result-fd` is taken out of `sys.argv`, so programs a
bench starts do not inherit it and its code is not told where it is; code in this
process can still find it (/proc/self/fd), which is why the runner accepts a result
only for the case this worker announced (runner/protocol.py). The worker dies with the
runner thread that started it (PR_SET_PDEATHSIG; `--supervisor` is that process, to
catch a runner that died before the worker asked); the runner's watchdog takes the
bench's own processes (runner/workerproc.py).

This is the only module under service/ that lets torch in, and only inside functions.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import fcntl
import importlib
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from commitbench.harness import calibration, environment, profiling, sweeping
from commitbench.harness.bench import Bench, Context, Probe, Skipped, benches_of, cuda_initialized
from commitbench.model import sweep, wire
from commitbench.model.cases import CaseKey, ParamValue
from commitbench.model.metrics import MetricRecord
from commitbench.model.profile import TIME_PER_ITER, artifact_stem
from commitbench.model.records import PROFILES, ResultRecord, Window, utcnow
from commitbench.model.state import WALL_PER_CPU
from commitbench.model.text import storable, unstorable
from commitbench.model.words import plural

MAX_ERROR_CHARS = 8000
# The result pipe's descriptor is moved at or above this (below the usual 1024 limit),
# away from the small numbers that code assumes are free or its own.
RESULT_FD_FLOOR = 900
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _tail(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """The end of an error text, with what no store can hold escaped (a NUL in an
    exception's message is kept as `\\x00`, not refused)."""
    return storable(text if len(text) <= limit else "...\n" + text[-limit:])


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark of this process's RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def peak_rss_mib(since_reset: bool) -> tuple[float, str]:
    """Peak RSS in MiB and where it came from."""
    if since_reset:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "VmHWM since case start"
    # ru_maxrss is KiB on Linux and the whole process's lifetime peak.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ru_maxrss (process)"


def _is_cuda_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.cuda.OutOfMemoryError)


def _memory_metrics(ctx: Context, rss_reset: bool) -> list[MetricRecord]:
    taken = {m.name for m in ctx.metrics}
    out = []
    if "peak_rss" not in taken:
        value, source = peak_rss_mib(rss_reset)
        out.append(
            MetricRecord.from_samples(
                "peak_rss", [value], unit="MiB", direction="lower", properties={"source": source}
            )
        )
    if "peak_cuda_mem" not in taken and cuda_initialized():
        import torch

        peak = torch.cuda.max_memory_allocated() / 2**20
        out.append(
            MetricRecord.from_samples(
                "peak_cuda_mem",
                [peak],
                unit="MiB",
                direction="lower",
                properties={"source": "torch.cuda.max_memory_allocated"},
            )
        )
    return out


def _state_metrics(ctx: Context) -> list[MetricRecord]:
    """The machine state this process measured over the case (model/state.py): wall
    over CPU time of the host-timed calls; one sample, this process's."""
    ratio = ctx.wall_per_cpu
    if ratio is None or WALL_PER_CPU in {m.name for m in ctx.metrics}:
        return []
    return [
        MetricRecord.from_samples(
            WALL_PER_CPU,
            [ratio],
            unit="ratio",
            direction="lower",
            properties={"source": "perf_counter / process_time over the timed batches"},
        )
    ]


def run_case(
    spec: Bench,
    case: CaseKey,
    profile: str,
    probe: Probe,
    *,
    clock: Callable[[], float] = time.perf_counter,
    quick: bool = False,
    trace: int = 0,
    trace_dir: Path | None = None,
) -> tuple[ResultRecord, tuple[Window, ...]]:
    """Run one case in this process and return its result; never raises for the bench.

    `trace` > 0: once the case is timed and its metrics taken, its timed functions run
    that many more iterations under the profiler (harness/profiling.py), which adds the
    `profile.*` metrics; the case's duration does not include them."""
    started = utcnow()
    t0 = clock()
    reason = probe.missing(spec.requires)
    if reason is not None:
        return ResultRecord(case, "skipped", reason, clock() - t0, started), ()
    ctx = Context(case, profile, probe=probe, policy=spec.policy, clock=clock, quick=quick)
    if cuda_initialized():
        import torch

        torch.cuda.reset_peak_memory_stats()
    rss_reset = reset_peak_rss()
    status, error = "ok", None
    try:
        with profiling.nvtx_range(case.label):
            spec.fn(ctx, **case.params_dict)
    except Skipped as skip:
        status, error = "skipped", _tail(str(skip)) or "skipped by the bench"
    except MemoryError:
        status, error = "oom", _tail(traceback.format_exc())
    except (Exception, SystemExit) as exc:
        status = "oom" if _is_cuda_oom(exc) else "failed"
        error = _tail(traceback.format_exc())
    if status == "oom" and cuda_initialized():
        import torch

        torch.cuda.empty_cache()
    metrics = (*ctx.metrics, *_memory_metrics(ctx, rss_reset)) if status == "ok" else ()
    if ctx.used:  # what the case actually used (ctx.note) travels with each metric
        metrics = tuple(
            dataclasses.replace(m, properties={**m.properties, "used": ctx.used}) for m in metrics
        )
    if status == "ok" and not quick:  # the machine's, not the case's: no `used`
        metrics = (*metrics, *_state_metrics(ctx))
    result = ResultRecord(case, status, error, clock() - t0, started, metrics)
    if trace > 0 and status == "ok" and ctx.timed:
        result = _traced(result, ctx, trace, trace_dir)
    return result, ctx.windows


def _traced(result: ResultRecord, ctx: Context, iterations: int, out: Path | None) -> ResultRecord:
    """The result with its profile's metrics; a profile that fails is said on stderr
    (the worker's log) and leaves the measured result as it was."""
    stem = artifact_stem(result.case.label)
    try:
        with profiling.nvtx_range(f"{result.case.label}/profile"):
            got = profiling.capture(ctx.timed, iterations, out_dir=out, stem=stem)
    except Exception:
        print(
            f"profile of {result.case.label} failed:\n{_tail(traceback.format_exc())}",
            file=sys.stderr,
        )
        return result
    taken = {m.name for m in result.metrics}
    extra = tuple(
        dataclasses.replace(m, properties={**m.properties, "capture_s": got.capture_s})
        if m.name == TIME_PER_ITER
        else m
        for m in got.metrics
        if m.name not in taken
    )
    return dataclasses.replace(result, metrics=(*result.metrics, *extra))


@dataclass(frozen=True)
class Planned:
    """A case this worker will report: run, or, with `refused`, failed without running."""

    spec: Bench
    case: CaseKey
    refused: str | None = None


def _unstorable(params: dict[str, ParamValue]) -> list[tuple[str, ParamValue, str]]:
    """Each parameter whose value no store can hold: name, value, the character."""
    found = []
    for key, value in params.items():
        char = unstorable(value) if isinstance(value, str) else None
        if char is not None:
            found.append((key, value, char))
    return found


def _expand(spec: Bench) -> list[Planned]:
    """The bench's cases; those whose parameters no store can hold (which no CaseKey may
    name either) become one refused entry named after the bench function, first."""
    good: list[CaseKey] = []
    bad: dict[str, str] = {}  # `param k='v' holds U+0000`, once per parameter value
    refused = 0
    for params in spec.grid():
        found = _unstorable(params)
        if not found:
            good.append(CaseKey.of(spec.name, params))
            continue
        refused += 1
        for key, value, char in found:
            bad.setdefault(f"param {key}={value!r}", char)
    if not refused:
        return [Planned(spec, case) for case in good]
    shown = ", ".join(f"{value} holds {char}" for value, char in bad.items())
    why = (
        f"{plural(refused, 'case')} of {spec.name} not run: {shown}, which PostgreSQL cannot store"
    )
    return [Planned(spec, CaseKey.of(spec.name), why)] + [Planned(spec, case) for case in good]


def _select(
    benches: Sequence[Bench],
    profile: str,
    only: Sequence[str],
    skip: Sequence[str],
    overrides: sweep.Overrides = (),
) -> list[Planned]:
    chosen = []
    for declared in benches:
        if profile not in declared.profiles:
            continue
        spec, refused = sweeping.swept(declared, overrides)
        # A value that does not fit the bench: one failed result named after it.
        expanded = [Planned(spec, CaseKey.of(spec.name), refused)] if refused else _expand(spec)
        for planned in expanded:
            label = planned.case.label
            if only and label not in only:
                continue
            if label not in skip:
                chosen.append(planned)
    return chosen


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m commitbench.worker", description=__doc__)
    p.add_argument(
        "module", nargs="*", help="dotted name of the bench module (with --list: modules)"
    )
    p.add_argument("--profile", choices=PROFILES, default="smoke")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--case", action="append", default=[], help="run only this case label")
    p.add_argument("--skip", action="append", default=[], help="do not run this case label")
    p.add_argument("--list", action="store_true", help="send the plan of each module, stop")
    p.add_argument("--params", default=None, help="the --param sweep, as JSON {name: [text, ...]}")
    p.add_argument("--quick", action="store_true", help="time each function once, no warm-up")
    p.add_argument(
        "--trace", type=int, default=0, metavar="N", help="profile N iterations after timing"
    )
    p.add_argument("--trace-dir", type=Path, default=None, help="where traces are written")
    p.add_argument("--environment", action="store_true", help="send versions and devices")
    p.add_argument("--result-fd", type=int, default=None, help="fd for events [stdout]")
    p.add_argument(
        "--supervisor", type=int, default=None, help="die with this process (the runner)"
    )
    return p


def _die_with(supervisor: int) -> None:
    """SIGKILL this process when the thread that started it ends (PR_SET_PDEATHSIG,
    Linux): the runner's, unless an interpreter wrapper that does not exec sits between
    (then the runner's watchdog alone). A runner gone before we asked: exit now."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the runner's watchdog alone
        pass
    if os.getppid() != supervisor:
        try:
            os.kill(supervisor, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # alive, another user's: a wrapper's doing
            pass


def _result_pipe(fd: int) -> BinaryIO:
    """The pipe, moved to a close-on-exec descriptor at or above RESULT_FD_FLOOR (the
    one we were given was inheritable), and no longer named in sys.argv."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    floor = RESULT_FD_FLOOR if soft == resource.RLIM_INFINITY else min(RESULT_FD_FLOOR, soft - 1)
    try:
        moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, floor)
    except OSError:  # every descriptor up there in use: any close-on-exec one
        moved = os.dup(fd)
    os.close(fd)
    if "--result-fd" in sys.argv:
        at = sys.argv.index("--result-fd")
        del sys.argv[at : at + 2]
    return os.fdopen(moved, "wb", buffering=0)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.supervisor is not None:
        _die_with(args.supervisor)
    out: BinaryIO = (
        _result_pipe(args.result_fd) if args.result_fd is not None else sys.stdout.buffer
    )

    def emit(event: str, **fields: Any) -> None:
        out.write(wire.encode(event, **fields))
        out.flush()

    if args.environment:
        emit("environment", environment=environment.probe())
    overrides = sweeping.overrides(args.params)
    if args.list:
        # One plan (or error) per module, each naming its module: a survey of a commit's
        # bench directory costs one interpreter start, not one per module.
        for name in args.module:
            try:
                found = benches_of(importlib.import_module(name))
                listed = _select(found, args.profile, args.case, args.skip, overrides)
            except Exception:
                emit("error", module=name, error=_tail(traceback.format_exc()))
                continue
            cases = [wire.case_to_json(p.case) for p in listed]
            if overrides:  # the runner checks the sweep against what the benches declare
                emit(
                    "plan",
                    module=name,
                    cases=cases,
                    benches=sweeping.declared(found, args.profile, overrides),
                )
            else:
                emit("plan", module=name, cases=cases)
        return 0
    if args.environment and not args.module:
        return 0
    if len(args.module) != 1:
        emit("error", error="give one bench module to run (or --list, --environment)")
        return 2
    try:
        module = importlib.import_module(args.module[0])
        plan = _select(benches_of(module), args.profile, args.case, args.skip, overrides)
    except Exception:
        emit("error", error=_tail(traceback.format_exc()))
        return 1
    # The calibration (harness/calibration.py) before the first case and after the last:
    # the runner keeps both with every result of this process. --quick records nothing.
    calibrated = bool(plan) and not args.quick
    cuda_benches = any("cuda" in p.spec.requires for p in plan)
    start = calibration.calibrate(args.device, cuda_benches=cuda_benches) if calibrated else None
    emit("plan", cases=[wire.case_to_json(p.case) for p in plan])
    if start is not None:
        emit("calibration", at="start", ms=start[0], device=start[1])
    probe = Probe(args.device)
    for spec, case, refused in ((p.spec, p.case, p.refused) for p in plan):
        emit("start", case=wire.case_to_json(case), time=time.time())
        if refused is not None:
            result: ResultRecord = ResultRecord(case, "failed", refused, 0.0, utcnow())
            windows: tuple[Window, ...] = ()
        else:
            before = calibration.calibrate(start[1]) if start is not None else None
            result, windows = run_case(
                spec,
                case,
                args.profile,
                probe,
                quick=args.quick,
                trace=args.trace,
                trace_dir=args.trace_dir,
            )
            if start is not None and before is not None and result.status == "ok":
                after = calibration.calibrate(start[1])
                result = calibration.around_case(result, before, after)
        try:
            line = wire.encode(
                "result", result=wire.result_to_json(result), windows=[list(w) for w in windows]
            )
        except ValueError as err:  # a value JSON cannot carry (inf)
            bad = ResultRecord(case, "failed", f"result not serialisable: {err}")
            line = wire.encode("result", result=wire.result_to_json(bad), windows=[])
        out.write(line)
        out.flush()
    if start is not None:  # where the start one ran, whatever the cases imported since
        ms, device = calibration.calibrate(start[1])
        emit("calibration", at="end", ms=ms, device=device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
