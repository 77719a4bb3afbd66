"""The data source's role can read every table and change nothing."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from commitbench.store.tables import Base
from commitbench.store.views import VIEWS
from tests.grafana.conftest import Seeded, connect

TABLES = sorted(Base.metadata.tables) + sorted(VIEWS.tables)  # views too (series_points)

WRITES = [
    "INSERT INTO machines (fingerprint) VALUES (repeat('a', 64))",
    "UPDATE runs SET status = 'failed'",
    "DELETE FROM regressions",
    "TRUNCATE device_samples",
    "CREATE TABLE public.evil (id int)",
    "DROP TABLE metrics",
    "ALTER TABLE commits ADD COLUMN evil int",
    "CREATE INDEX evil ON results (status)",
    "CREATE SCHEMA evil",
    "CREATE FUNCTION public.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "UPDATE alembic_version SET version_num = 'x'",
]


@pytest.mark.parametrize("statement", WRITES)
def test_writes_and_ddl_fail_even_in_a_read_write_transaction(
    seeded: Seeded, statement: str
) -> None:
    with (
        connect(seeded.readonly_url) as conn,
        pytest.raises(errors.InsufficientPrivilege),
        conn.transaction(),
    ):
        conn.execute("SET TRANSACTION READ WRITE")
        conn.execute(statement.encode())


def test_transactions_are_read_only_by_default(seeded: Seeded) -> None:
    with connect(seeded.readonly_url) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        with pytest.raises(errors.ReadOnlySqlTransaction):
            conn.execute("DELETE FROM regressions")


def test_reads_every_table_and_holds_no_other_privilege(seeded: Seeded, reader: Any) -> None:
    privileges = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
    for table in [*TABLES, "alembic_version"]:
        reader.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        for privilege in privileges:
            row = reader.execute(
                "SELECT has_table_privilege(current_user, %s, %s)", (table, privilege)
            ).fetchone()
            assert row == (False,), (table, privilege)
    row = reader.execute(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolbypassrls FROM pg_roles "
        "WHERE rolname = current_user"
    ).fetchone()
    assert row == (False, False, False, False)


def test_role_cannot_create_databases_or_roles(seeded: Seeded) -> None:
    """Even after switching its session to read-write, outside any transaction."""
    with connect(seeded.readonly_url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        for statement in ("CREATE DATABASE evil", "CREATE ROLE evil"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement.encode())
