"""The two-level model behind every verdict: processes, then samples within them.

Samples taken in one worker process are not independent draws of what a commit costs:
a process keeps its clocks, memory layout, CPU placement and GPU state for its whole life,
and runs differ in load. Kalibera & Jones ("Rigorous Benchmarking in Reasonable Time",
ISMM 2013) show that most of the variance sits at these upper levels and that the unit of
repetition must be the level where it is; pyperf measures in several fresh worker
processes for the same reason. So:

1. Each process is summarised by one value: the policy's statistic (median, mean or min)
   of its samples. Within-process noise only makes that value less exact, and it is
   already part of the spread between the values.
2. The ratio HEAD/BASE is the ratio of the geometric means of those per-process values;
   its interval and p-value come from Welch's t-test on their logarithms (unequal
   variances, Welch-Satterthwaite degrees of freedom; Welch 1947). Logs make a ratio a
   difference and suit timings, whose spread scales with their size. With one process on
   a side and two or more on the other, the variance is pooled (Student's t,
   n_base + n_head - 2 degrees of freedom). With one process on each side the
   comparison has no spread of its own: where the case's history on this machine and
   profile gives one (`Prior`: the pooled variance of the log per-process values within
   earlier commits measured in several processes or runs, at least MIN_PRIOR_DF degrees
   of freedom; analysis/history.py), that variance stands in, with its degrees of
   freedom; otherwise there is no interval and the verdict is `ambiguous`, never
   significant.
3. The machine's calibration (model.state: a fixed loop timed when each worker starts
   and ends) is used where it is recorded for every process. A process whose calibration
   is more than 10% and 3 scaled MADs from the median of all processes is flagged (it ran
   in a different machine state). Where the calibration explains at least half of the
   within-side variance of the log values (common-slope regression within sides,
   analysis of covariance), the values are adjusted to the mean calibration before the
   test, at the cost of one degree of freedom; otherwise it is reported, not used.
4. Verdicts against the minimum effect L = log(1 + threshold): `unchanged` when the 95%
   interval lies inside (-L, +L); `regressed` or `improved` (by the metric's direction)
   when the test rejects "no change" at alpha and the estimate is at least L; else
   `ambiguous`, with how many more processes per side would likely decide it (the same
   per-side variances with larger counts, first count that decides either way, up to
   MAX_MORE).

Limits: the t-test assumes the log per-process values are roughly normal; with few
processes an outlier process widens the interval rather than biasing it, which errs
towards `ambiguous`. Between-run drift that moves every process of one side together
(BASE measured at night, HEAD under load) is only caught when sides are interleaved at
the process level, as `check`, `bisect` and `compare --measure` do; comparing two
commits measured at different times trusts that the processes of each side saw the same
machine. The history's variance assumes the noise between runs is what it was at the
earlier commits; a machine that got noisier since makes it too small, which is why it
is used only where the comparison has no spread of its own.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
MAX_MORE = 64
# A history must give at least this many degrees of freedom to stand in for the spread
# of a one-process-a-side comparison.
MIN_PRIOR_DF = 4
# A process's calibration differs from its peers beyond both of these (see above).
CALIBRATION_OUTLIER_FRACTION = 0.10
CALIBRATION_OUTLIER_MADS = 3.0
# The share of within-side variance the calibration must explain to be used.
COVARIATE_R2 = 0.5


# -- Student's t distribution -----------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function, evaluated by the modified
    Lentz method (Press et al., Numerical Recipes, 3rd ed., 6.4 and 5.2)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 400):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| >= |t|) of Student's t with `df` degrees."""
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_quantile(p: float, df: float) -> float:
    """The p-quantile (p > 0.5) of Student's t with `df` degrees, by bisection."""
    if not 0.5 < p < 1.0:
        raise ValueError("t_quantile needs 0.5 < p < 1")
    tail = 2.0 * (1.0 - p)
    lo, hi = 0.0, 1.0
    while t_sf2(hi, df) > tail:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_sf2(mid, df) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * hi:
            break
    return (lo + hi) / 2.0


# -- the model --------------------------------------------------------------------------


@dataclass(frozen=True)
class Prior:
    """The spread between runs of a case, learnt from its history: the pooled variance
    of the log per-process values within each earlier commit measured in two or more
    processes (or runs), with its degrees of freedom (sum of n - 1 over those commits)."""

    variance: float
    df: int
    commits: int


@dataclass(frozen=True)
class Estimate:
    """HEAD against BASE on the log scale of per-process values (see the docstring)."""

    diff: float  # mean log head - mean log base
    se: float | None  # None: no between-process variance can be estimated
    df: float | None
    var_base: float | None  # per-side variances of the log values (pooled if one is 1)
    var_head: float | None
    n_base: int
    n_head: int
    spread: float | None  # pooled sd of log per-process values within sides
    flagged: int = 0
    adjusted: bool = False
    prior: Prior | None = None  # the history's spread stood in for the processes'

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
        if self.se is None or self.df is None:
            return None
        q = t_quantile(0.5 + confidence / 2.0, self.df) if self.se > 0 else 0.0
        return self.diff - q * self.se, self.diff + q * self.se

    @property
    def p_value(self) -> float | None:
        if self.se is None or self.df is None:
            return None
        if self.se == 0:
            return 1.0 if self.diff == 0 else 0.0
        return min(1.0, t_sf2(self.diff / self.se, self.df))


def flagged_calibrations(calibrations: Sequence[float]) -> list[bool]:
    """Which processes' calibrations differ from their peers (see the docstring)."""
    if len(calibrations) < 3 or any(c <= 0 for c in calibrations):
        return [False] * len(calibrations)
    logs = [math.log(c) for c in calibrations]
    mid = statistics.median(logs)
    mad = statistics.median(abs(x - mid) for x in logs) * 1.4826
    bound = max(CALIBRATION_OUTLIER_MADS * mad, math.log1p(CALIBRATION_OUTLIER_FRACTION))
    return [abs(x - mid) > bound for x in logs]


def _covariate(
    ys: tuple[list[float], list[float]], xs: tuple[list[float], list[float]]
) -> tuple[list[float], list[float]] | None:
    """The values adjusted to the mean calibration, when it explains enough of the
    within-side variance (common slope within sides); None otherwise."""
    sxx = sxy = syy = 0.0
    for y, x in zip(ys, xs, strict=True):
        if len(y) < 2:
            continue
        my, mx = statistics.fmean(y), statistics.fmean(x)
        sxx += sum((xi - mx) ** 2 for xi in x)
        sxy += sum((xi - mx) * (yi - my) for xi, yi in zip(x, y, strict=True))
        syy += sum((yi - my) ** 2 for yi in y)
    if sxx <= 0 or syy <= 0 or sxy * sxy / (sxx * syy) < COVARIATE_R2:
        return None
    slope = sxy / sxx
    center = statistics.fmean([*xs[0], *xs[1]])
    b = [yi - slope * (xi - center) for yi, xi in zip(ys[0], xs[0], strict=True)]
    h = [yi - slope * (xi - center) for yi, xi in zip(ys[1], xs[1], strict=True)]
    return b, h


def estimate(
    base: Sequence[float],
    head: Sequence[float],
    *,
    base_calibration: Sequence[float | None] | None = None,
    head_calibration: Sequence[float | None] | None = None,
    prior: Prior | None = None,
) -> Estimate:
    """The two-level estimate from positive per-process values (see the docstring)."""
    if not base or not head:
        raise ValueError("the two-level model needs a process on each side")
    if any(v <= 0 for v in (*base, *head)):
        raise ValueError("the two-level model works on positive values")
    yb, yh = [math.log(v) for v in base], [math.log(v) for v in head]
    nb, nh = len(yb), len(yh)
    spread = _pooled_sd(yb, yh)
    flagged, adjusted, lost_df = 0, False, 0
    cb, ch = list(base_calibration or []), list(head_calibration or [])
    if len(cb) == nb and len(ch) == nh and all(c is not None and c > 0 for c in (*cb, *ch)):
        xb = [math.log(c) for c in cb if c is not None]
        xh = [math.log(c) for c in ch if c is not None]
        flagged = sum(flagged_calibrations([math.exp(x) for x in (*xb, *xh)]))
        if nb + nh >= 5:
            moved = _covariate((yb, yh), (xb, xh))
            if moved is not None:
                yb, yh = moved
                adjusted, lost_df = True, 1
    diff = statistics.fmean(yh) - statistics.fmean(yb)
    if nb >= 2 and nh >= 2:
        vb, vh = statistics.variance(yb), statistics.variance(yh)
        se2 = vb / nb + vh / nh
        if se2 > 0:
            df = se2 * se2 / ((vb / nb) ** 2 / (nb - 1) + (vh / nh) ** 2 / (nh - 1))
        else:
            df = float(nb + nh - 2)
    elif nb + nh >= 3:
        pooled = _pooled_var(yb, yh)
        vb = vh = pooled
        se2 = pooled * (1 / nb + 1 / nh)
        df = float(nb + nh - 2)
    elif prior is not None and prior.df >= MIN_PRIOR_DF:
        # One process a side: the spread between runs comes from the case's history.
        vb = vh = prior.variance
        se2 = prior.variance * 2
        sd = math.sqrt(prior.variance)
        return Estimate(diff, math.sqrt(se2), float(prior.df), vb, vh, nb, nh, sd, prior=prior)
    else:
        return Estimate(diff, None, None, None, None, nb, nh, spread, flagged, adjusted)
    df = max(1.0, df - lost_df)
    return Estimate(diff, math.sqrt(se2), df, vb, vh, nb, nh, spread, flagged, adjusted)


def _pooled_var(yb: Sequence[float], yh: Sequence[float]) -> float:
    ss = sum((y - statistics.fmean(yb)) ** 2 for y in yb)
    ss += sum((y - statistics.fmean(yh)) ** 2 for y in yh)
    return ss / (len(yb) + len(yh) - 2)


def _pooled_sd(yb: Sequence[float], yh: Sequence[float]) -> float | None:
    if len(yb) + len(yh) < 3:
        return None
    return math.sqrt(_pooled_var(yb, yh))


def decide(e: Estimate, threshold: float, alpha: float) -> str:
    """`worse`, `better`, `unchanged` or `ambiguous` (see the docstring); worse means
    HEAD's values are larger."""
    bound = math.log1p(threshold)
    ci = e.interval()
    p = e.p_value
    if ci is not None and -bound < ci[0] and ci[1] < bound:
        return "unchanged"
    if p is not None and p < alpha and abs(e.diff) >= bound:
        return "worse" if e.diff > 0 else "better"
    return "ambiguous"


def more_processes(e: Estimate, threshold: float, alpha: float) -> int | None:
    """How many more processes per side would likely decide an ambiguous estimate: the
    first count up to MAX_MORE at which the same variances give a decision; None when
    there is no variance to go on or no count up to MAX_MORE would do."""
    if e.var_base is None or e.var_head is None:
        return None
    for m in range(1, MAX_MORE + 1):
        nb, nh = e.n_base + m, e.n_head + m
        se = math.sqrt(e.var_base / nb + e.var_head / nh)
        later = Estimate(e.diff, se, float(nb + nh - 2), e.var_base, e.var_head, nb, nh, e.spread)
        if decide(later, threshold, alpha) != "ambiguous":
            return m
    return None
