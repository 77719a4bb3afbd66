"""Alembic environment for commitbench.

`commitbench db upgrade` passes an open connection in config.attributes["connection"], so
the CLI's engine settings (timeouts, UTC) apply and tests can migrate a throwaway database.
Run from the alembic command line, the URL comes from sqlalchemy.url / COMMITBENCH_DB.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from commitbench.store.tables import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        context.configure(
            url=config.get_main_option("sqlalchemy.url"),
            target_metadata=target_metadata,
            literal_binds=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or os.environ["COMMITBENCH_DB"]
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        run_with(conn)


main()
