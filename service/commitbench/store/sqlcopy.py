"""Binary COPY of a unit's metrics and of device samples into PostgreSQL, the hot path
of ingest (hundreds of thousands of sample rows). Apart from store/sql.py because it
works on the psycopg connection under SQLAlchemy, with the database type of every
column spelled out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import Connection

from commitbench.model.metrics import METRIC_FIELDS
from commitbench.model.records import DeviceSample, ResultRecord
from commitbench.store.tables import DEVICE_SAMPLE_COLUMNS

METRIC_COLUMNS = ("result_id", *METRIC_FIELDS)

_METRIC_TYPES = (
    "int8",
    "text",
    "text",
    "text",
    "int4",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8[]",
    "jsonb",
    "int4[]",
)
_SAMPLE_TYPES = (
    "uuid",
    "int8",
    "timestamptz",
    "int2",
    "float8",
    "float8",
    "float8",
    "float8",
    "float8",
    "int8",
    "float8",
    "float8",
)


def _copy_statement(table: str, columns: Sequence[str]) -> sql.Composed:
    return sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


_COPY_METRICS = _copy_statement("metrics", METRIC_COLUMNS)
_COPY_SAMPLES = _copy_statement("device_samples", DEVICE_SAMPLE_COLUMNS)


def driver(conn: Connection) -> psycopg.Connection[Any]:
    """The psycopg connection under a SQLAlchemy one (in its transaction)."""
    raw = conn.connection.driver_connection
    if not isinstance(raw, psycopg.Connection):  # pragma: no cover - engine is psycopg 3
        raise TypeError("commitbench needs the psycopg 3 driver")
    return raw


def copy_metrics(raw: psycopg.Connection[Any], new: Sequence[tuple[int, ResultRecord]]) -> None:
    """COPY the metrics of newly inserted results, given as (result id, record)."""
    rows = [
        # samples, properties and processes (the last three fields) need their
        # database types.
        (
            result_id,
            *m.row()[:-3],
            list(m.samples) if m.samples is not None else None,
            Jsonb(dict(m.properties)),
            list(m.processes) if m.processes is not None else None,
        )
        for result_id, record in new
        for m in record.metrics
    ]
    if not rows:
        return
    with raw.cursor() as cur, cur.copy(_COPY_METRICS) as copy:
        copy.set_types(list(_METRIC_TYPES))
        for row in rows:
            copy.write_row(row)


def copy_samples(
    raw: psycopg.Connection[Any],
    rows: Iterable[tuple[uuid.UUID, int | None, DeviceSample]],
) -> None:
    """COPY device samples, given as (run id, result id or None, sample)."""
    it = iter(rows)
    first = next(it, None)
    if first is None:
        return
    with raw.cursor() as cur, cur.copy(_COPY_SAMPLES) as copy:
        # Binary COPY sends each field's bytes untagged, and a uuid's binary form is
        # its 16 bytes: sent as bytea they skip a Python-level dumper per row.
        copy.set_types(["bytea", *_SAMPLE_TYPES[1:]])
        write = copy.write_row
        for run_id, result_id, s in (first, *it):
            write((run_id.bytes, result_id, *s))
