"""Schema management through Alembic, the only way the schema is created or changed."""

from __future__ import annotations

from importlib import resources

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, exc, text

from commitbench.errors import ConfigError, SchemaOutdated

# Serialises concurrent `db upgrade` calls (several runners starting at once); any
# constant works as long as every commitbench uses the same one.
_MIGRATION_LOCK = 0x636F6D6D69746265  # "commitbe"


def alembic_config() -> Config:
    cfg = Config()
    location = resources.files("commitbench.migrations")
    cfg.set_main_option("script_location", str(location))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the package ships no migration"  # noqa: S101 - packaging bug
    return head


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except exc.ProgrammingError as err:
        if isinstance(err.orig, psycopg.errors.InsufficientPrivilege):
            raise ConfigError(
                f"role {engine.url.username} may not read the commitbench schema of database "
                f"{engine.url.database} (permission denied on alembic_version)"
            ) from None
        raise


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations up to `revision`; returns (before, after). Safe to repeat."""
    cfg = alembic_config()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def require_current(engine: Engine) -> None:
    """SchemaOutdated unless the database is at this commitbench's head revision."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        found = current or "empty (no commitbench schema)"
        raise SchemaOutdated(
            f"database schema is {found}, this commitbench needs {head}: "
            "run `commitbench db upgrade`"
        )
