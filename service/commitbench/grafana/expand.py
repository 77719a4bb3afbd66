"""Expands a Grafana PostgreSQL query the way Grafana does, so tests can run it.

Grafana prepares a SQL panel query in two steps, and this module does both:

1. The frontend replaces template variables (`$var`, `${var}`, `${var:format}`,
   `[[var]]`) and the built-ins `$__interval` / `$__interval_ms`
   (public/app/features/templating/template_srv.ts). The interval is
   `roundInterval((to - from) / maxDataPoints)`, at least the panel's min interval,
   written as `secondsToHms` does (@grafana/data rangeutil.ts).
2. The backend replaces the macros (pkg/tsdb/grafana-postgresql-datasource/macros.go):
   `$__timeFilter(col)` -> `col BETWEEN '<from>' AND '<to>'` (RFC 3339, UTC),
   `$__timeFrom()`, `$__timeTo()`, `$__timeGroup(col, '5m'[, fill])` ->
   `floor(extract(epoch from col)/300)*300`, `$__timeGroupAlias` (the same plus
   `AS "time"`), `$__time(col)`, `$__timeEpoch(col)`, `$__unixEpochFilter(col)`.

Limits: fill modes only parse (filling happens after the query in Grafana, not in
SQL); months are not accepted as intervals; TimescaleDB's time_bucket is not used.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

ALL = "$__all"

# template_srv.ts variableRegex: $var, [[var:fmt]], ${var.field:fmt}
_VARIABLE = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
# macros.go sExpr
_MACRO = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
# rangeutil.ts roundInterval: (upper bound of the raw interval in ms, rounded interval in ms)
_ROUNDING = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1500, 1000),
    (3500, 2000),
    (7500, 5000),
    (12500, 10000),
    (17500, 15000),
    (25000, 20000),
    (45000, 30000),
    (90000, 60000),
    (210000, 120000),
    (450000, 300000),
    (750000, 600000),
    (1050000, 900000),
    (1500000, 1200000),
    (2700000, 1800000),
    (5400000, 3600000),
    (9000000, 7200000),
    (16200000, 10800000),
    (32400000, 21600000),
    (86400000, 43200000),
    (604800000, 86400000),
    (1814400000, 604800000),
    (3628800000, 2592000000),
)


class ExpandError(ValueError):
    """A query Grafana would reject (unknown macro, bad interval, unknown format)."""


@dataclass(frozen=True)
class Variable:
    """A template variable's state: what is selected, and every option (for All)."""

    name: str
    selected: tuple[str, ...]
    options: tuple[str, ...] = ()
    multi: bool = False
    include_all: bool = False

    @property
    def values(self) -> tuple[str, ...]:
        """The values a format sees: All (no custom all value) means every option."""
        if self.selected == (ALL,):
            return self.options
        return self.selected


@dataclass(frozen=True)
class QueryContext:
    time_from: datetime
    time_to: datetime
    variables: Mapping[str, Variable] = field(default_factory=dict)
    max_data_points: int = 1000
    min_interval: str | None = None

    def __post_init__(self) -> None:
        if self.time_from.utcoffset() is None or self.time_to.utcoffset() is None:
            raise ExpandError("the time range must be timezone-aware")

    @property
    def interval_ms(self) -> int:
        return calculate_interval_ms(
            self.time_from, self.time_to, self.max_data_points, self.min_interval
        )


def round_interval(ms: float) -> int:
    for bound, rounded in _ROUNDING:
        if ms < bound:
            return rounded
    return 31536000000


def seconds_to_hms(seconds: float) -> str:
    """rangeutil.secondsToHms: the largest whole unit, truncated (90 s -> '1m')."""
    years = math.floor(seconds / 31536000)
    if years:
        return f"{years}y"
    for unit, size, within in (("d", 86400, 31536000), ("h", 3600, 86400), ("m", 60, 3600)):
        n = math.floor((seconds % within) / size)
        if n:
            return f"{n}{unit}"
    secs = math.floor(seconds % 60)
    if secs:
        return f"{secs}s"
    millis = math.floor(seconds * 1000.0)
    if millis:
        return f"{millis}ms"
    return "less than a millisecond"


def parse_interval(text: str) -> float:
    """An interval like '5m' or '100ms' in seconds (gtime.ParseInterval, less months)."""
    m = _INTERVAL.match(text.strip().strip("'\""))
    if not m:
        raise ExpandError(f"error parsing interval {text}")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def calculate_interval_ms(
    time_from: datetime, time_to: datetime, max_data_points: int, min_interval: str | None
) -> int:
    span_ms = (time_to - time_from).total_seconds() * 1000
    interval = round_interval(span_ms / max_data_points)
    low = round(parse_interval(min_interval) * 1000) if min_interval else 1
    return max(interval, low)


def rfc3339(moment: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fraction without trailing zeros, 'Z'."""
    utc = moment.astimezone(timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def go_float(value: float) -> str:
    """Go's %v of a float64: shortest digits, exponent form when the decimal exponent
    is below -4 or at least 6 (strconv 'g' with shortest precision): 300 -> '300',
    1036800 -> '1.0368e+06', 0.02 -> '0.02'."""
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)  # noqa: S101 - finite by construction
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # position of the decimal point in `digits`
    exp = point - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        out = f"{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif point <= 0:
        out = "0." + "0" * -point + digits
    elif point >= len(digits):
        out = digits + "0" * (point - len(digits))
    else:
        out = digits[:point] + "." + digits[point:]
    return ("-" if sign else "") + out


# -- step 1: template variables ------------------------------------------------------


def _sqlstring(values: Sequence[str]) -> str:
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


def format_variable(variable: Variable, fmt: str | None) -> str:
    """One variable in one of Grafana's formats; None is the SQL data source default."""
    values = variable.values
    if fmt is None:
        # sql_datasource interpolateVariable: quote only multi/All variables.
        if variable.multi or variable.include_all:
            return _sqlstring(values)
        return values[0] if values else ""
    if fmt == "sqlstring":
        return _sqlstring(values)
    if fmt == "csv":
        return ",".join(values)
    if fmt == "raw":
        return ",".join(values)
    if fmt == "singlequote":
        return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)
    if fmt == "doublequote":
        return ",".join('"' + v.replace('"', '\\"') + '"' for v in values)
    raise ExpandError(f"unsupported variable format {fmt!r}")


def variable_references(sql: str) -> list[tuple[str, str | None]]:
    """(name, format) of every variable-shaped reference, built-ins and macros included."""
    out = []
    for m in _VARIABLE.finditer(sql):
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        out.append((name, fmt))
    return out


def interpolate_variables(sql: str, ctx: QueryContext) -> str:
    builtins = {
        "__interval": seconds_to_hms(ctx.interval_ms / 1000),
        "__interval_ms": str(ctx.interval_ms),
    }

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        if name in builtins:
            return builtins[name]
        variable = ctx.variables.get(name)
        if variable is None:
            return m.group(0)  # unknown names (macros) stay for the backend
        return format_variable(variable, fmt)

    return _VARIABLE.sub(replace, sql)


# -- step 2: backend macros -----------------------------------------------------------


def _macro(name: str, args: list[str], ctx: QueryContext) -> str:
    frm, to = rfc3339(ctx.time_from), rfc3339(ctx.time_to)
    if name in ("__time", "__timeEpoch", "__timeFilter", "__unixEpochFilter") and not args[0]:
        raise ExpandError(f"missing time column argument for macro {name}")
    if name == "__time":
        return f'{args[0]} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {args[0]}) as "time"'
    if name == "__timeFilter":
        return f"{args[0]} BETWEEN '{frm}' AND '{to}'"
    if name == "__timeFrom":
        return f"'{frm}'"
    if name == "__timeTo":
        return f"'{to}'"
    if name == "__unixEpochFilter":
        lo, hi = int(ctx.time_from.timestamp()), int(ctx.time_to.timestamp())
        return f"{args[0]} >= {lo} AND {args[0]} <= {hi}"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise ExpandError(f"macro {name} needs time column and interval and optional fill")
        seconds = go_float(parse_interval(args[1]))
        group = f"floor(extract(epoch from {args[0]})/{seconds})*{seconds}"
        return group + ' AS "time"' if name == "__timeGroupAlias" else group
    raise ExpandError(f"unknown macro {name!r}")


def interpolate_macros(sql: str, ctx: QueryContext) -> str:
    def replace(m: re.Match[str]) -> str:
        name = m.group(1)
        # Pre-5.3 compatibility: `$__timeGroup(...),` in a select list adds AS "time".
        end = m.end()
        if name == "__timeGroup" and end < len(sql) and sql[end] == ",":
            name = "__timeGroupAlias"
        args = [a.strip() for a in m.group(2).split(",")]
        return _macro(name, args, ctx)

    return _MACRO.sub(replace, sql)


def expand(sql: str, ctx: QueryContext) -> str:
    """The SQL text Grafana would send to PostgreSQL for this query."""
    return interpolate_macros(interpolate_variables(sql, ctx), ctx)
