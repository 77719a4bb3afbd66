"""Views of the results schema, described for queries.

A view is created by its migration (0003 for series_points: the SQL and the definition
it implements are there); this describes its columns so SQLAlchemy can select from it.
The views live in their own MetaData, so Alembic's autogenerate never offers to create
them as tables; tests/store/test_migrations.py checks these columns against the view in
a migrated database.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, TIMESTAMP

VIEWS = MetaData()

# PostgreSQL's own names for the types the view's expressions have, so the description
# compiles to exactly what the database reports.
TZ = TIMESTAMP(timezone=True)
F8: DOUBLE_PRECISION[float] = DOUBLE_PRECISION()

# A commit's value in each series (repository, case, metric, machine, profile):
# model.points.SeriesPoint says how it is made; model.points.commit_values computes the
# same from result-level points.
series_points = Table(
    "series_points",
    VIEWS,
    Column("repository", Text),
    Column("commit_id", BigInteger),
    Column("sha", Text),
    Column("first_parent", Text),
    Column("committed_at", TZ),
    Column("subject", Text),
    Column("case_id", BigInteger),
    Column("case_name", Text),
    Column("case_label", Text),
    Column("metric", Text),
    Column("unit", Text),
    Column("direction", Text),
    Column("machine_id", BigInteger),
    Column("profile", Text),
    Column("measured_at", TZ),
    Column("value", F8),
    Column("ci_low", F8),
    Column("ci_high", F8),
    Column("runs", BigInteger),
    Column("n", BigInteger),
    Column("branches", ARRAY(Text(collation="C"))),  # sorted byte-wise, as Python sorts
)
