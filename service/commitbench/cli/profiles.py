"""The `--trace` option shared by run, check and bisect."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from commitbench.model.profile import TRACE_ITERATIONS

F = TypeVar("F", bound=Callable[..., Any])


def trace_option(fn: F) -> F:
    return click.option(
        "--trace",
        "trace",
        is_flag=True,
        help=f"After each case is timed, run it {TRACE_ITERATIONS} more iterations under "
        "torch.profiler and record its operator/kernel table and profile.* metrics "
        "(the timings are not affected; see README, Profiles).",
    )(fn)


def trace_iterations(trace: bool) -> int:
    return TRACE_ITERATIONS if trace else 0
