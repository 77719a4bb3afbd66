"""Alembic is the only source of the schema: it must round-trip and match the models."""

from __future__ import annotations

import re
import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy import CheckConstraint, inspect
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL
from sqlalchemy.schema import AddConstraint

from commitbench.store import engine as dbengine
from commitbench.store import migrate
from commitbench.store.tables import Base
from commitbench.store.views import VIEWS

TABLES = {
    "alembic_version",
    "cases",
    "commits",
    "device_samples",
    "jobs",
    "machines",
    "metrics",
    "profile_artifacts",
    "regressions",
    "results",
    "runs",
}


def tables(url: URL) -> set[str]:
    eng = dbengine.make_engine(url)
    try:
        return set(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def views(url: URL) -> set[str]:
    eng = dbengine.make_engine(url)
    try:
        return set(inspect(eng).get_view_names())
    finally:
        eng.dispose()


def test_upgrade_downgrade_upgrade(fresh_url: URL) -> None:
    eng = dbengine.make_engine(fresh_url)
    try:
        assert migrate.upgrade(eng) == (None, migrate.head_revision())
        assert tables(fresh_url) == TABLES
        assert views(fresh_url) == set(VIEWS.tables)
        migrate.downgrade(eng, "base")
        assert tables(fresh_url) == {"alembic_version"}
        assert views(fresh_url) == set()
        assert migrate.current_revision(eng) is None
        assert migrate.upgrade(eng) == (None, migrate.head_revision())
        assert tables(fresh_url) == TABLES
        assert views(fresh_url) == set(VIEWS.tables)
    finally:
        eng.dispose()


def test_upgrade_is_idempotent(fresh_url: URL) -> None:
    eng = dbengine.make_engine(fresh_url)
    try:
        head = migrate.head_revision()
        assert migrate.upgrade(eng) == (None, head)
        assert migrate.upgrade(eng) == (head, head)
    finally:
        eng.dispose()


def test_concurrent_upgrades_both_succeed(fresh_url: URL) -> None:
    """Several runners starting at once each run `db upgrade`; the advisory lock
    serialises them."""
    errors: list[BaseException] = []
    outcomes: list[tuple[str | None, str | None]] = []

    def go() -> None:
        eng = dbengine.make_engine(fresh_url)
        try:
            outcomes.append(migrate.upgrade(eng))
        except BaseException as exc:
            errors.append(exc)
        finally:
            eng.dispose()

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    head = migrate.head_revision()
    assert errors == []
    assert sorted(outcomes, key=str) == sorted([(None, head), (head, head), (head, head)], key=str)


def test_models_match_migrated_schema(db_url: URL) -> None:
    """Autogenerate finds nothing to do: models and migrations agree."""
    eng = dbengine.make_engine(db_url)
    try:
        with eng.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        eng.dispose()


CHECKS_IN_DATABASE = sql.SQL(
    "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
    "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE k.contype = 'c' AND n.nspname = current_schema()"
)
_ADD_CHECK = re.compile(r"^ALTER TABLE (\w+) ADD CONSTRAINT (\w+) CHECK \((.*)\)$", re.DOTALL)


def test_check_constraints_match_the_models(fresh_url: URL) -> None:
    """Autogenerate does not compare CHECK constraints, so compare them here: each
    model's CHECK, added to the migrated table under a probe name, must read back from
    the catalog (pg_get_constraintdef, PostgreSQL's own normal form) exactly as the
    migrations' constraint of the same name, and no constraint may be on one side only."""
    eng = dbengine.make_engine(fresh_url)
    try:
        migrate.upgrade(eng)
        with eng.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            migrated = {(t, name): d for t, name, d in raw.execute(CHECKS_IN_DATABASE)}
            modelled = {}
            for table in Base.metadata.sorted_tables:
                for constraint in table.constraints:
                    if not isinstance(constraint, CheckConstraint):
                        continue
                    ddl = str(AddConstraint(constraint).compile(dialect=postgresql.dialect()))
                    found = _ADD_CHECK.match(ddl.strip())
                    assert found is not None, ddl
                    tname, name, expression = found.groups()
                    raw.execute(
                        sql.SQL(
                            "ALTER TABLE {} ADD CONSTRAINT cb_probe CHECK ({}) NOT VALID"
                        ).format(
                            sql.Identifier(tname),
                            sql.SQL(expression),  # the model's own text
                        )
                    )
                    (normal,) = raw.execute(
                        sql.SQL(
                            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                            "WHERE conname = 'cb_probe'"
                        )
                    ).fetchone()
                    modelled[(tname, name)] = normal.removesuffix(" NOT VALID")
                    raw.execute(
                        sql.SQL("ALTER TABLE {} DROP CONSTRAINT cb_probe").format(
                            sql.Identifier(tname)
                        )
                    )
            conn.rollback()
        assert len(modelled) >= 20
        assert modelled == migrated
        assert migrated[("results", "ck_results_status_known")] == (
            "CHECK ((status = ANY (ARRAY['ok'::text, 'skipped'::text, 'failed'::text, "
            "'timeout'::text, 'oom'::text, 'crashed'::text])))"
        )
    finally:
        eng.dispose()


def test_views_match_their_descriptions(db_url: URL) -> None:
    """store.views describes each view's columns as the migration created them."""
    eng = dbengine.make_engine(db_url)
    try:
        inspector = inspect(eng)
        for name, view in VIEWS.tables.items():
            found = [
                (c["name"], c["type"].compile(dialect=eng.dialect))
                for c in inspector.get_columns(name)
            ]
            described = [(c.name, c.type.compile(dialect=eng.dialect)) for c in view.columns]
            assert found == described, name
    finally:
        eng.dispose()
