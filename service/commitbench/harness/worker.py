"""The worker: `python -m commitbench.worker MODULE`, run in a child process per module.

It imports one bench module (the worktree is on PYTHONPATH), expands its cases for the
profile, and runs them one after the other, writing wire.py events to `--result-fd`
(stdout is left to the benches). Which cases run is harness/plan.py; each runs in
harness/runcase.py, which turns a failure inside the case into its result (`failed`,
`oom`, `skipped`), and the next case runs. Deaths it cannot report (a signal,
`os._exit`, a hang) are classified by runner/supervision.py. `--list` sends the plans
of several modules instead, and `--environment` what harness/environment.py probes.
The calibration loop (harness/calibration.py) is timed after the module's imports,
before the first case, and again after the last, each sent as a `calibration` event.

`--params JSON` is the `--param` sweep ({name: [value as typed, ...]}, model/sweep.py):
each bench that declares a name has that parameter's values replaced, typed like its
declared ones; a value that does not parse fails the bench as one result named after
it. With `--list`, each module's plan then also says what its benches declare
(`benches`: name, params, error), for the runner to check the sweep
(runner/selection.py).

Bench code is not trusted with the protocol. The result pipe is moved to a high,
close-on-exec descriptor and `--result-fd` is taken out of `sys.argv`, so programs a
bench starts do not inherit it and its code is not told where it is; code in this
process can still find it (/proc/self/fd), which is why the runner accepts a result
only for the case this worker announced (runner/protocol.py). The worker dies with the
runner thread that started it (PR_SET_PDEATHSIG; `--supervisor` is that process, to
catch a runner that died before the worker asked); the runner's watchdog takes the
bench's own processes (runner/workerproc.py).

This module is the main loop: arguments, the result pipe, the calibration around the
cases, and the events. harness/ is the only package under service/ that lets torch in,
and only inside functions.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import importlib
import os
import resource
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from commitbench.harness import calibration, environment, placement, sweeping
from commitbench.harness.bench import benches_of
from commitbench.harness.plan import select_cases
from commitbench.harness.probe import Probe
from commitbench.harness.runcase import run_case, tail
from commitbench.model import cpus, wire
from commitbench.model.records import PROFILES, ResultRecord, Window, utcnow

# The result pipe's descriptor is moved at or above this (below the usual 1024 limit),
# away from the small numbers that code assumes are free or its own.
RESULT_FD_FLOOR = 900
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


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
    p.add_argument(
        "--affinity", default=None, metavar="CPUS", help="run only on these CPUs (0-3,8)"
    )
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

    if args.affinity is not None:  # before any import of bench code: its threads inherit it
        try:
            placement.pin(cpus.parse(args.affinity))
        except (ValueError, OSError) as err:
            emit("error", error=f"--affinity {args.affinity}: {err}")
            return 2
    if args.environment:
        emit("environment", environment=environment.probe())
    overrides = sweeping.overrides(args.params)
    if args.list:
        # One plan (or error) per module, each naming its module: a survey of a commit's
        # bench directory costs one interpreter start, not one per module.
        for name in args.module:
            try:
                found = benches_of(importlib.import_module(name))
                listed = select_cases(found, args.profile, args.case, args.skip, overrides)
            except Exception:
                emit("error", module=name, error=tail(traceback.format_exc()))
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
        plan = select_cases(benches_of(module), args.profile, args.case, args.skip, overrides)
    except Exception:
        emit("error", error=tail(traceback.format_exc()))
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
