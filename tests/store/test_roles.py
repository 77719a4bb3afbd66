"""The read-only role: made, refused, replaced and verified on the real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from commitbench.store import engine as dbengine
from commitbench.store import migrate, roles
from tests.cli.conftest import url_text

PASSWORD = "Reader-Password-9"


@pytest.fixture
def target(fresh_url: URL) -> Iterator[Engine]:
    """A migrated database of its own (roles change database-level privileges)."""
    engine = dbengine.make_engine(fresh_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def names(fresh_url: URL) -> Iterator[list[str]]:
    """Role names to use; every one is dropped after the test (roles are cluster-wide)."""
    made: list[str] = []
    yield made
    with psycopg.connect(url_text(fresh_url.set(drivername="postgresql")), autocommit=True) as c:
        for name in made:
            if c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone() is None:
                continue
            c.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _name(names: list[str], stem: str) -> str:
    names.append(f"cb_{stem}_{uuid.uuid4().hex[:8]}")
    return names[-1]


def _admin(url: URL) -> psycopg.Connection[Any]:
    return psycopg.connect(url_text(url.set(drivername="postgresql")), autocommit=True)


def _as(url: URL, role: str) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=url.host, port=url.port, dbname=url.database, user=role, autocommit=True
    )


def _problems(url: URL, role: str) -> list[str]:
    with _admin(url) as conn:
        return roles.verify(conn.cursor(), role, str(url.database))


def test_a_new_role_reads_and_can_make_nothing(
    target: Engine, fresh_url: URL, names: list[str]
) -> None:
    name = _name(names, "reader")
    made = roles.create_readonly_role(target, name, PASSWORD)
    assert (made.role, made.created) == (name, True)
    assert _problems(fresh_url, name) == []
    # Databases granting CONNECT to PUBLIC are reported, the results database is not.
    assert {"postgres", "test"} <= set(made.other_databases)
    assert fresh_url.database not in made.other_databases
    with _as(fresh_url, name) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)
        assert conn.execute("SHOW statement_timeout").fetchone() == ("30s",)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        for statement in (
            "CREATE TEMP TABLE evil (x int)",
            "CREATE FUNCTION pg_temp.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE TABLE public.evil (x int)",
            "INSERT INTO cases (name, label) VALUES ('a.b', 'a.b')",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(statement.encode())


def test_an_existing_role_is_refused_without_replace_and_left_as_it_was(
    target: Engine, fresh_url: URL, names: list[str]
) -> None:
    name = _name(names, "writer")
    with _admin(fresh_url) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
        conn.execute(sql.SQL("GRANT INSERT ON cases TO {}").format(sql.Identifier(name)))
    with pytest.raises(roles.RoleError) as err:
        roles.create_readonly_role(target, name, PASSWORD)
    assert str(err.value) == (
        f"role {name} already exists; pass --replace to make it read-only "
        "(every other right it holds is revoked)"
    )
    assert _problems(fresh_url, name) == [
        f"TEMPORARY on database {fresh_url.database}",
        "INSERT on cases",
    ]


def test_replace_revokes_every_other_right_then_verifies(
    target: Engine, fresh_url: URL, names: list[str]
) -> None:
    name, group = _name(names, "writer"), _name(names, "group")
    with _admin(fresh_url) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB").format(ident))
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), ident))
        conn.execute(sql.SQL("GRANT INSERT, DELETE ON runs TO {}").format(ident))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(ident))
    assert _problems(fresh_url, name) == [
        "createdb",
        f"member of {group}",
        "TEMPORARY on database " + str(fresh_url.database),
        "CREATE on schema public",
        "DELETE on runs",
        "INSERT on runs",
    ]
    made = roles.create_readonly_role(target, name, PASSWORD, replace=True)
    assert made.created is False
    assert _problems(fresh_url, name) == []
    with _as(fresh_url, name) as conn:
        conn.execute("SET default_transaction_read_only = off")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("DELETE FROM runs")


def test_a_superuser_is_never_demoted(target: Engine, fresh_url: URL) -> None:
    with _admin(fresh_url) as conn:
        before = conn.execute(
            "SELECT rolsuper, rolpassword FROM pg_authid WHERE rolname = 'postgres'"
        ).fetchone()
    with pytest.raises(roles.RoleError) as err:
        roles.create_readonly_role(target, "postgres", PASSWORD, replace=True)
    assert str(err.value) == ("role postgres is the role running this command; choose another name")
    with _admin(fresh_url) as conn:
        after = conn.execute(
            "SELECT rolsuper, rolpassword FROM pg_authid WHERE rolname = 'postgres'"
        ).fetchone()
    assert after == before


def test_another_superuser_and_an_owner_are_refused(
    target: Engine, fresh_url: URL, names: list[str]
) -> None:
    boss, owner = _name(names, "boss"), _name(names, "owner")
    with _admin(fresh_url) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(boss)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(owner)))
        conn.execute(sql.SQL("CREATE TABLE mine (x int)"))
        conn.execute(sql.SQL("ALTER TABLE mine OWNER TO {}").format(sql.Identifier(owner)))
    with pytest.raises(roles.RoleError, match=f"^role {boss} is a superuser; "):
        roles.create_readonly_role(target, boss, PASSWORD, replace=True)
    with pytest.raises(roles.RoleError, match=f"^role {owner} owns 1 object"):
        roles.create_readonly_role(target, owner, PASSWORD, replace=True)
    with _admin(fresh_url) as conn:
        row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (boss,))
        assert row.fetchone() == (True,)


def test_a_role_without_createrole_gets_one_line(  # type: ignore[no-untyped-def]
    cli, target: Engine, fresh_url: URL, names: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _name(names, "plain")
    with _admin(fresh_url) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(plain)))
    monkeypatch.setenv("COMMITBENCH_READONLY_PASSWORD", PASSWORD)
    as_plain = url_text(fresh_url.set(username=plain))
    reader = _name(names, "reader")
    out = cli("db", "create-readonly-role", reader, "--db", as_plain)
    assert (out.code, out.out) == (2, "")
    assert out.err == (
        f"commitbench: error: role {plain} may not read the commitbench schema of database "
        f"{fresh_url.database} (permission denied on alembic_version)\n"
    )
    with _admin(fresh_url) as conn:
        conn.execute(sql.SQL("GRANT SELECT ON alembic_version TO {}").format(sql.Identifier(plain)))
    out = cli("db", "create-readonly-role", reader, "--db", as_plain)
    assert (out.code, out.out) == (2, "")
    assert out.err == (
        f"commitbench: error: role {plain} may not create roles (it needs CREATEROLE): run "
        "`commitbench db create-readonly-role` as the database's administrator\n"
    )
