"""The read-only login role Grafana reads through: made, hardened, then verified.

What PostgreSQL lets a role owner close, this closes, and `verify` checks the outcome
from the catalogs before anything is committed:

- privileges: SELECT on every table of the schema, now and (default privileges) later;
  no other table privilege, no CREATE on any schema, no TEMPORARY on the database (it is
  revoked from PUBLIC there, so no temp tables and no functions in pg_temp either), no
  role attributes (superuser, CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS), no role
  memberships;
- defaults: `default_transaction_read_only = on` and `statement_timeout = 30s` as role
  settings.

What PostgreSQL does not let us close, and the README says so: a role may SET its own
`statement_timeout` and `default_transaction_read_only` (both are user settings; with
no write privilege anywhere a read-write transaction changes nothing, and Grafana's own
query timeout bounds a long query); CONNECT to other databases of the cluster is
granted to PUBLIC by their owners, so `create` reports every other database the role
can connect to (and so read the catalogs of) with the statements that close it, and the
cluster's pg_hba.conf is where a role is confined to one database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import Engine

from commitbench.errors import ConfigError

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
STATEMENT_TIMEOUT = "30s"
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
Cursor = psycopg.Cursor[Any]
_ATTRIBUTES = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")


class RoleError(ConfigError):
    """The role cannot be made read-only as asked (exists, is a superuser, ...)."""


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


@dataclass(frozen=True)
class Outcome:
    role: str
    created: bool  # False: an existing role was replaced (--replace)
    other_databases: tuple[str, ...]  # other databases the role can still connect to


def create_readonly_role(
    engine: Engine, name: str, password: str, *, replace: bool = False
) -> Outcome:
    """Create login role `name` that can only SELECT, or (with `replace`) turn an existing
    role into one, revoking everything else. One transaction: verified before commit, so
    a role that would not be read-only is never left behind."""
    if not _ROLE_NAME.match(name):
        raise ConfigError(f"role name {name!r} must be lowercase letters, digits and _ (max 63)")
    if not password:
        raise ConfigError("the read-only role needs a non-empty password")
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        assert isinstance(raw, psycopg.Connection)  # noqa: S101 - engine is psycopg 3
        cur = raw.cursor()
        me, database = raw.info.user, raw.info.dbname
        _check_can_manage_roles(cur, me)
        existing = cur.execute(
            "SELECT rolsuper, oid FROM pg_roles WHERE rolname = %s", (name,)
        ).fetchone()
        if existing is not None:
            _check_replaceable(cur, name, me, superuser=bool(existing[0]), replace=replace)
            _strip(cur, name, database)
        _grant(cur, name, database, password, create=existing is None)
        problems = verify(cur, name, database)
        if problems:
            raise RoleError(f"role {name} would not be read-only: {'; '.join(problems)}")
        others = tuple(
            row[0]
            for row in cur.execute(
                "SELECT datname FROM pg_database WHERE datallowconn AND datname <> %s "
                "AND has_database_privilege(%s, datname, 'CONNECT') ORDER BY 1",
                (database, name),
            )
        )
    return Outcome(name, existing is None, others)


def _check_can_manage_roles(cur: Cursor, me: str) -> None:
    row = cur.execute(
        "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = %s", (me,)
    ).fetchone()
    if not row or not row[0]:
        raise RoleError(
            f"role {me} may not create roles (it needs CREATEROLE): run "
            "`commitbench db create-readonly-role` as the database's administrator"
        )


def _check_replaceable(cur: Cursor, name: str, me: str, *, superuser: bool, replace: bool) -> None:
    if name == me:
        raise RoleError(f"role {name} is the role running this command; choose another name")
    if superuser:
        raise RoleError(f"role {name} is a superuser; commitbench will not demote it")
    owned = cur.execute(
        "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
        " + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)"
        " + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
        " + (SELECT count(*) FROM pg_database WHERE datdba = r.oid)"
        " FROM pg_roles r WHERE r.rolname = %s",
        (name,),
    ).fetchone()
    if owned and owned[0] > 0:
        raise RoleError(
            f"role {name} owns {owned[0]} object(s) (an owner keeps every right on what it "
            "owns); choose another name"
        )
    if not replace:
        raise RoleError(
            f"role {name} already exists; pass --replace to make it read-only "
            "(every other right it holds is revoked)"
        )


def _strip(cur: Cursor, name: str, database: str) -> None:
    """Revoke every right an existing role holds in this database and every membership."""
    role = sql.Identifier(name)
    cur.execute(
        sql.SQL(
            "ALTER ROLE {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
        ).format(role)
    )
    for (member_of,) in cur.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
        (name,),
    ).fetchall():
        cur.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(str(member_of)), role))
    cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(sql.Identifier(database), role))
    for (schema,) in _schemas(cur):
        s = sql.Identifier(str(schema))
        for stmt in (
            "REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
            "REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
            "REVOKE ALL ON ALL FUNCTIONS IN SCHEMA {s} FROM {r}",
            "REVOKE ALL ON SCHEMA {s} FROM {r}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} REVOKE ALL ON TABLES FROM {r}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {s} REVOKE ALL ON SEQUENCES FROM {r}",
        ):
            cur.execute(sql.SQL(stmt).format(s=s, r=role))


def _schemas(cur: Cursor) -> list[tuple[object, ...]]:
    return cur.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname <> ALL(%s) "
        "AND nspname NOT LIKE 'pg_temp%%' AND nspname NOT LIKE 'pg_toast_temp%%'",
        (list(_SYSTEM_SCHEMAS),),
    ).fetchall()


def _grant(cur: Cursor, name: str, database: str, password: str, *, create: bool) -> None:
    role, db = sql.Identifier(name), sql.Identifier(database)
    verb = "CREATE ROLE" if create else "ALTER ROLE"
    cur.execute(
        sql.SQL(verb + " {} LOGIN NOINHERIT PASSWORD {}").format(
            role, sql.Literal(scram_verifier(password))
        )
    )
    for stmt in (
        "ALTER ROLE {role} SET default_transaction_read_only = on",
        "ALTER ROLE {role} SET statement_timeout = {timeout}",
        # TEMPORARY is PUBLIC's by default: revoked there (no temp tables, no functions in
        # pg_temp for the reader) and granted back to the role that administers the data.
        "REVOKE TEMPORARY ON DATABASE {db} FROM PUBLIC",
        "GRANT TEMPORARY ON DATABASE {db} TO CURRENT_USER",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        "GRANT CONNECT ON DATABASE {db} TO {role}",
        "GRANT USAGE ON SCHEMA public TO {role}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}",
        "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}",
    ):
        cur.execute(sql.SQL(stmt).format(role=role, db=db, timeout=sql.Literal(STATEMENT_TIMEOUT)))


def verify(cur: Cursor, name: str, database: str) -> list[str]:
    """What keeps `name` from being read-only in `database` (empty when it is)."""
    problems: list[str] = []
    attrs = cur.execute(
        sql.SQL("SELECT {} FROM pg_roles WHERE rolname = %s").format(
            sql.SQL(", ").join(sql.Identifier(a) for a in _ATTRIBUTES)
        ),
        (name,),
    ).fetchone()
    if attrs is None:
        return [f"role {name} does not exist"]
    problems += [a.removeprefix("rol") for a, on in zip(_ATTRIBUTES, attrs, strict=True) if on]
    member = cur.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s",
        (name,),
    ).fetchall()
    problems += [f"member of {g}" for (g,) in member]
    for privilege in ("CREATE", "TEMPORARY"):
        row = cur.execute(
            "SELECT has_database_privilege(%s, %s, %s)", (name, database, privilege)
        ).fetchone()
        if row and row[0]:
            problems.append(f"{privilege} on database {database}")
    for (schema,) in _schemas(cur):
        row = cur.execute(
            "SELECT has_schema_privilege(%s, %s, 'CREATE')", (name, schema)
        ).fetchone()
        if row and row[0]:
            problems.append(f"CREATE on schema {schema}")
    writes = cur.execute(
        "SELECT DISTINCT c.relname, p.privilege FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN unnest(ARRAY['INSERT','UPDATE','DELETE','TRUNCATE','REFERENCES','TRIGGER'])"
        " AS p(privilege) "
        "WHERE c.relkind IN ('r','p','v','m','f') AND n.nspname <> ALL(%s) "
        "AND has_table_privilege(%s, c.oid, p.privilege) ORDER BY 1, 2",
        (list(_SYSTEM_SCHEMAS), name),
    ).fetchall()
    problems += [f"{p} on {t}" for t, p in writes]
    return problems
