"""The expander against Grafana's own expansions (macros_test.go, rangeutil.ts and the
variable formats of the templating docs)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from commitbench.grafana.expand import (
    ALL,
    ExpandError,
    QueryContext,
    Variable,
    calculate_interval_ms,
    expand,
    format_variable,
    go_float,
    rfc3339,
    round_interval,
    seconds_to_hms,
    variable_references,
)

FROM = datetime(2018, 4, 12, 18, 0, 0, tzinfo=timezone.utc)
TO = FROM + timedelta(minutes=5)


def ctx(**variables: Variable) -> QueryContext:
    return QueryContext(FROM, TO, variables)


# -- macros (pkg/tsdb/grafana-postgresql-datasource/macros_test.go) ---------------------


@pytest.mark.parametrize(
    ("sql", "expanded"),
    [
        ("select $__time(time_column)", 'select time_column AS "time"'),
        ("select $__timeEpoch(time_column)", 'select extract(epoch from time_column) as "time"'),
        (
            "WHERE $__timeFilter(time_column)",
            "WHERE time_column BETWEEN '2018-04-12T18:00:00Z' AND '2018-04-12T18:05:00Z'",
        ),
        ("select $__timeFrom()", "select '2018-04-12T18:00:00Z'"),
        ("select $__timeTo()", "select '2018-04-12T18:05:00Z'"),
        (
            "SELECT $__timeGroup(time_column,'5m')",
            "SELECT floor(extract(epoch from time_column)/300)*300",
        ),
        (
            "SELECT $__timeGroupAlias(time_column,'5m')",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time"',
        ),
        # Pre-5.3 compatibility: a comma right after the macro adds the alias.
        (
            "SELECT $__timeGroup(time_column,'5m'), value",
            'SELECT floor(extract(epoch from time_column)/300)*300 AS "time", value',
        ),
        (
            "SELECT $__timeGroup(time_column,'5m') as time, value",
            "SELECT floor(extract(epoch from time_column)/300)*300 as time, value",
        ),
        ("$__timeGroup(time_column , '5m')", "floor(extract(epoch from time_column)/300)*300"),
        # A fill argument is parsed; filling happens after the query.
        ("$__timeGroup(t, '1h', NULL)", "floor(extract(epoch from t)/3600)*3600"),
        ("$__timeGroup(t, '20ms')", "floor(extract(epoch from t)/0.02)*0.02"),
        ("$__timeGroup(t, '12d')", "floor(extract(epoch from t)/1.0368e+06)*1.0368e+06"),
        (
            "select $__unixEpochFilter(time)",
            f"select time >= {int(FROM.timestamp())} AND time <= {int(TO.timestamp())}",
        ),
    ],
)
def test_macros_expand_as_grafana_does(sql: str, expanded: str) -> None:
    assert expand(sql, ctx()) == expanded


def test_time_filter_keeps_fractions_and_converts_to_utc() -> None:
    frm = datetime(1960, 2, 1, 8, 0, 0, 500000, tzinfo=timezone(timedelta(hours=1)))
    to = datetime(1980, 2, 3, 8, 0, 0, 500000, tzinfo=timezone.utc)
    got = expand("WHERE $__timeFilter(t)", QueryContext(frm, to))
    assert got == "WHERE t BETWEEN '1960-02-01T07:00:00.5Z' AND '1980-02-03T08:00:00.5Z'"
    assert rfc3339(datetime(2020, 1, 1, 0, 0, 0, 120, tzinfo=timezone.utc)) == (
        "2020-01-01T00:00:00.00012Z"
    )


def test_unknown_macro_and_bad_interval_fail() -> None:
    with pytest.raises(ExpandError, match="unknown macro"):
        expand("SELECT $__nope(x)", ctx())
    with pytest.raises(ExpandError, match="interval"):
        expand("SELECT $__timeGroup(t, 'soon')", ctx())
    with pytest.raises(ExpandError, match="needs time column"):
        expand("SELECT $__timeGroup(t)", ctx())


def test_naive_time_range_is_refused() -> None:
    with pytest.raises(ExpandError, match="timezone-aware"):
        QueryContext(datetime(2020, 1, 1), datetime(2020, 1, 2))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (300.0, "300"),
        (0.02, "0.02"),
        (86400.0, "86400"),
        (604800.0, "604800"),
        (1036800.0, "1.0368e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5, "1.5"),
    ],
)
def test_interval_seconds_are_printed_like_go(value: float, text: str) -> None:
    assert go_float(value) == text


# -- $__interval (rangeutil.ts calculateInterval / roundInterval / secondsToHms) ---------


@pytest.mark.parametrize(
    ("raw_ms", "rounded"),
    [
        (5, 1),
        (12, 10),
        (140, 100),
        (1400, 1000),
        (40000, 30000),
        (86400, 60000),
        (100000, 120000),
        (3_000_000, 3_600_000),
        (50_000_000, 43_200_000),
        (700_000_000, 604_800_000),
        (4_000_000_000, 31_536_000_000),
    ],
)
def test_round_interval(raw_ms: float, rounded: int) -> None:
    assert round_interval(raw_ms) == rounded


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.05, "50ms"),
        (1, "1s"),
        (30, "30s"),
        (90, "1m"),
        (3600, "1h"),
        (43200, "12h"),
        (86400, "1d"),
        (604800, "7d"),
        (31536000, "1y"),
    ],
)
def test_seconds_to_hms(seconds: float, text: str) -> None:
    assert seconds_to_hms(seconds) == text


def test_interval_follows_range_and_resolution() -> None:
    day = datetime(2026, 1, 2, tzinfo=timezone.utc)
    assert calculate_interval_ms(day - timedelta(hours=24), day, 1000, None) == 60_000
    assert calculate_interval_ms(day - timedelta(hours=1), day, 1000, None) == 5_000
    assert calculate_interval_ms(day - timedelta(hours=1), day, 1000, "10s") == 10_000
    ctx1 = QueryContext(day - timedelta(hours=24), day, max_data_points=1000)
    assert expand("$__interval $__interval_ms", ctx1) == "1m 60000"
    assert expand("$__timeGroupAlias(t, $__interval)", ctx1) == (
        'floor(extract(epoch from t)/60)*60 AS "time"'
    )


# -- template variables (template_srv.ts, sql_datasource interpolateVariable) ----------

REPO = Variable("repo", ("it's",), ("it's", "b"))
CASES = Variable("case", ("a", "o'b"), ("a", "o'b", "c"), multi=True, include_all=True)
EVERY = Variable("case", (ALL,), ("a", "o'b", "c"), multi=True, include_all=True)


def test_sqlstring_quotes_and_doubles_quotes() -> None:
    assert expand("x = ${repo:sqlstring}", ctx(repo=REPO)) == "x = 'it''s'"
    assert expand("x IN (${case:sqlstring})", ctx(case=CASES)) == "x IN ('a','o''b')"


def test_csv_joins_values() -> None:
    assert expand("${case:csv}", ctx(case=CASES)) == "a,o'b"


def test_all_means_every_option() -> None:
    assert expand("x IN (${case:sqlstring})", ctx(case=EVERY)) == "x IN ('a','o''b','c')"


def test_sql_default_format_quotes_multi_values_only() -> None:
    assert expand("$case", ctx(case=CASES)) == "'a','o''b'"
    assert expand("[[repo]] ${repo}", ctx(repo=REPO)) == "it's it's"


def test_unknown_variables_and_macros_are_left_for_the_backend() -> None:
    assert expand("$nope ${nope:sqlstring}", ctx()) == "$nope ${nope:sqlstring}"


def test_unknown_format_fails() -> None:
    with pytest.raises(ExpandError, match="format"):
        format_variable(REPO, "lucene")


def test_variable_references_list_every_use() -> None:
    refs = variable_references("a ${repo:sqlstring} $case [[x:csv]] $__timeFilter(t)")
    assert refs == [("repo", "sqlstring"), ("case", None), ("x", "csv"), ("__timeFilter", None)]
