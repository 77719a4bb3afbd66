"""`commitbench db upgrade | current | create-readonly-role`."""

from __future__ import annotations

import os
from pathlib import Path

import click

from commitbench.cli.common import (
    emit_json,
    global_options,
    globals_from,
    require_db,
    say,
    warn,
)
from commitbench.errors import ConfigError
from commitbench.store import migrate, open_engine, roles
from commitbench.store.sql import SqlStore

PASSWORD_ENV = "COMMITBENCH_READONLY_PASSWORD"  # noqa: S105 - a variable name, not a secret


@click.group("db")
def db_group() -> None:
    """Manage the PostgreSQL schema and roles."""


@db_group.command("upgrade")
@global_options
def upgrade(db: str | None, results: Path | None, as_json: bool) -> int:
    """Apply every pending migration (safe to run again, and concurrently)."""
    g = globals_from(db, results, as_json)
    engine = open_engine(require_db(g), require_schema=False)
    try:
        before, after = migrate.upgrade(engine)
    finally:
        engine.dispose()
    if g.json:
        emit_json({"before": before, "after": after, "changed": before != after})
    elif before == after:
        say(f"schema already at {after}")
    else:
        say(f"schema upgraded from {before or 'empty'} to {after}")
    return 0


@db_group.command("current")
@global_options
def current(db: str | None, results: Path | None, as_json: bool) -> int:
    """Show the schema revision and row counts."""
    g = globals_from(db, results, as_json)
    engine = open_engine(require_db(g), require_schema=False)
    try:
        revision = migrate.current_revision(engine)
        head = migrate.head_revision()
        counts = SqlStore(engine).counts() if revision == head else {}
    finally:
        engine.dispose()
    if g.json:
        emit_json(
            {"revision": revision, "head": head, "up_to_date": revision == head, "counts": counts}
        )
    else:
        state = "up to date" if revision == head else f"behind head {head}"
        click.echo(f"revision {revision or 'none'} ({state})")
        for table, n in counts.items():
            click.echo(f"  {table:15} {n}")
    return 0 if revision == head else 1


@db_group.command("create-readonly-role")
@click.argument("name")
@click.option(
    "--replace",
    is_flag=True,
    help="NAME exists already: make it read-only, revoking every other right it holds.",
)
@global_options
def create_readonly_role(
    name: str, replace: bool, db: str | None, results: Path | None, as_json: bool
) -> int:
    """Create login role NAME that can only SELECT (for Grafana), and verify it.

    The password is read from the environment variable COMMITBENCH_READONLY_PASSWORD,
    never from the command line, where other users could read it. An existing role is
    refused unless --replace (a superuser, the role running this command, or a role that
    owns objects is always refused).
    """
    g = globals_from(db, results, as_json)
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        raise ConfigError(f"set {PASSWORD_ENV} to the password of role {name}")
    engine = open_engine(require_db(g))
    try:
        made = roles.create_readonly_role(engine, name, password, replace=replace)
    finally:
        engine.dispose()
    if g.json:
        emit_json(
            {"role": name, "created": made.created, "other_databases": list(made.other_databases)}
        )
        return 0
    say(
        f"role {name} {'created' if made.created else 'replaced'} and verified: SELECT on "
        "every table now and later, nothing else (no writes, no temp tables, no CREATE)"
    )
    if made.other_databases:
        listed = ", ".join(made.other_databases)
        warn(
            f"role {name} can also connect to {listed} (CONNECT is granted to PUBLIC there) "
            "and read their catalogs; close it with REVOKE CONNECT ON DATABASE <db> FROM "
            "PUBLIC in each, or confine the role in pg_hba.conf"
        )
    return 0
