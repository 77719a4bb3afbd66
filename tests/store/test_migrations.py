"""Alembic is the only source of the schema: it must round-trip and match the models."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import URL

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
