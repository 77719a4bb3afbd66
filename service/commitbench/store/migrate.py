"""Schema management through Alembic, the only way the schema is created or changed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from importlib import resources

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy import Engine, text

from commitbench.errors import ConfigError, SchemaOutdated

# Serialises concurrent `db upgrade` calls (several runners starting at once); any
# constant works as long as every commitbench uses the same one.
_MIGRATION_LOCK = 0x636F6D6D69746265  # "commitbe"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


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
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


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


def scram_verifier(password: str, *, iterations: int = 4096, salt: bytes | None = None) -> str:
    """PostgreSQL's SCRAM-SHA-256 password verifier (RFC 5802/7677).

    Sent instead of the password, so the clear text never reaches the server's
    statement log.
    """
    salt = secrets.token_bytes(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def create_readonly_role(engine: Engine, name: str, password: str) -> bool:
    """Create (or update) a login role that can only read, now and for future tables.

    Returns True when the role was created, False when it existed and was updated.
    Default privileges cover tables that later migrations create, as long as the same
    role runs those migrations (PostgreSQL ties them to the creating role).
    """
    if not _ROLE_NAME.match(name):
        raise ConfigError(f"role name {name!r} must be lowercase letters, digits and _ (max 63)")
    if not password:
        raise ConfigError("the read-only role needs a non-empty password")
    role = sql.Identifier(name)
    verifier = sql.Literal(scram_verifier(password))
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)  # noqa: S101 - engine is psycopg 3
        cur = raw.cursor()
        database = sql.Identifier(raw.info.dbname)
        exists = cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
        if exists:
            cur.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, verifier))
        else:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, verifier))
        for stmt in (
            "ALTER ROLE {role} SET default_transaction_read_only = on",
            "ALTER ROLE {role} SET statement_timeout = '30s'",
            "GRANT CONNECT ON DATABASE {db} TO {role}",
            "GRANT USAGE ON SCHEMA public TO {role}",
            "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
        ):
            cur.execute(sql.SQL(stmt).format(role=role, db=database))
    return not exists
