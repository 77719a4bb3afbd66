"""The metrics the runner adds to every case from its sampler, and which of them may
decide a gate.

Besides what a bench records (`ctx.time`, `ctx.record`) and the harness's memory peaks,
the runner summarises its sampler's ticks per case (runner/sampling/energy.py):
utilization, GPU memory and power, RSS, energy. They describe what the case did and are
compared and shown like any metric, but they are sampled every 100 ms or so, around
the case rather than inside its timed calls, so their spread between processes is large
(issue 13: energy per iteration moved by -13% to +58% between runs of one commit when
integrated from power). A gate (analysis/gate.py: `check`'s suspects, and the processes
added where a row is ambiguous) therefore never rests on them; energy per iteration only
where its 95% interval is narrower than the policy's minimum effect (issue 13, item 8:
"it never gates unless its interval is inside the policy").
"""

from __future__ import annotations

ENERGY_PER_ITER = "energy_per_iter"

# Never decisive: summaries of the sampler's ticks over the case.
SAMPLED = frozenset(
    {"gpu_util", "gpu_mem", "gpu_power", "cpu_util", "rss", "host_cpu_util", "energy"}
)


def may_gate(metric: str, ci_low: float | None, ci_high: float | None, threshold: float) -> bool:
    """Whether a comparison of `metric` (its ratio's interval) may decide a gate."""
    if metric in SAMPLED:
        return False
    if metric == ENERGY_PER_ITER:
        return ci_low is not None and ci_high is not None and ci_high / ci_low - 1 <= threshold
    return True
