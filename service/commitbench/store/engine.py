"""Database URLs and engines: parsing, redaction, connection checks.

The password of a URL never leaves this module in clear: every message that names a
database uses `describe(url)`, which masks it, and error text from the driver passes
through `redact` before it is shown.
"""

from __future__ import annotations

import socket
from contextlib import closing

import psycopg
from sqlalchemy import Engine, create_engine, exc, text
from sqlalchemy.engine import URL, make_url

from commitbench.errors import ConfigError, DatabaseUnavailable

# Connection-level failures: the database went away, not a bad statement.
DB_LOST = (
    exc.OperationalError,
    exc.InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)


def refuses_writes(err: BaseException) -> bool:
    """The database is there but takes no writes: the transaction is read-only (a
    database set `default_transaction_read_only`, a hot standby after a failover)."""
    return isinstance(err, exc.DBAPIError) and isinstance(
        err.orig, psycopg.errors.ReadOnlySqlTransaction
    )


def unwritable(err: BaseException) -> bool:
    """The database lost, or refusing writes: what a run spools for."""
    return isinstance(err, DB_LOST) or refuses_writes(err)


CONNECT_TIMEOUT_S = 5
# A runner must not hang forever on a lock or a stuck server; the largest statement we
# send (COPY of one run unit's device samples) takes well under a second.
STATEMENT_TIMEOUT_MS = 120_000
LOCK_TIMEOUT_MS = 30_000


def parse_url(raw: str) -> URL:
    """A PostgreSQL URL for SQLAlchemy with the psycopg 3 driver, or ConfigError."""
    try:
        url = make_url(raw)
    except (exc.ArgumentError, ValueError):
        raise ConfigError(
            "malformed database URL (expected postgresql://USER@HOST[:PORT]/DBNAME)"
        ) from None
    if url.get_backend_name() not in ("postgresql", "postgres"):
        raise ConfigError(
            f"unsupported database URL scheme {url.drivername!r}: commitbench needs PostgreSQL"
        )
    if url.get_driver_name() not in ("psycopg", "postgresql", "postgres", ""):
        raise ConfigError(f"unsupported PostgreSQL driver {url.get_driver_name()!r}: use psycopg")
    if not url.database:
        raise ConfigError(f"database URL {describe(url)} names no database")
    return url.set(drivername="postgresql+psycopg")


def describe(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def redact(message: str, url: URL) -> str:
    secret = url.password
    if secret:
        message = message.replace(str(secret), "***")
    return message


def make_engine(url: URL, *, pool_size: int = 2, pre_ping: bool = True) -> Engine:
    """An engine with the settings a long-running, unattended runner needs.

    `pre_ping=False` saves a round trip per checkout, for callers that retry every
    statement on a lost connection anyway (the fleet's queue and job store).
    """
    return create_engine(
        url,
        # A runner idles between commits; connections dropped by a restart or a proxy
        # are found and replaced at checkout instead of failing the next write.
        pool_pre_ping=pre_ping,
        pool_size=pool_size,
        max_overflow=2,
        connect_args={
            # Unreachable hosts fail fast so the run can fall back to CSV.
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": "commitbench",
            # UTC sessions: timestamps read back compare equal to the ones written, and
            # dashboards render them in the viewer's zone.
            "options": (
                f"-c TimeZone=UTC -c statement_timeout={STATEMENT_TIMEOUT_MS}"
                f" -c lock_timeout={LOCK_TIMEOUT_MS}"
            ),
        },
    )


def _listening(url: URL) -> bool:
    """Whether anything accepts a socket connection at the URL's server address."""
    host = url.host or "/var/run/postgresql"
    port = url.port or 5432
    try:
        if host.startswith("/"):
            with closing(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)) as sock:
                sock.settimeout(CONNECT_TIMEOUT_S)
                sock.connect(f"{host}/.s.PGSQL.{port}")
        else:
            with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
                pass
    except OSError:
        return False
    return True


# What the server says when it is there but cannot take this session now (a database
# closed to connections, a server starting, stopping or recovering, every slot taken):
# infrastructure that comes back, unlike refused credentials or an unknown database.
# libpq gives no SQLSTATE for a failed connection, so its text is all there is to go by
# (PostgreSQL's messages for SQLSTATEs 55000, 57P03 and 53300, in the default locale).
_TEMPORARY = (
    "is not currently accepting connections",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "too many clients already",
    "remaining connection slots are reserved",
)


def check(engine: Engine) -> None:
    """Connect once. Unreachable, or there but not taking connections now →
    DatabaseUnavailable (exit 3); refused login or unknown database → ConfigError (2).

    libpq reports connection failures without a SQLSTATE, so the two cases are told apart
    by what can be observed: a server that accepts a socket but not the login rejected
    the credentials or the database name, which retrying will not fix, unless it said
    one of the temporary reasons above.
    """
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DB_LOST as err:
        where = describe(engine.url)
        if _listening(engine.url):
            detail = redact(str(getattr(err, "orig", err) or err), engine.url)
            reason = detail.strip().splitlines()[-1].split("FATAL:")[-1].strip()
            if any(phrase in detail for phrase in _TEMPORARY):
                raise DatabaseUnavailable(f"database {where} is unavailable: {reason}") from None
            raise ConfigError(f"database {where} refused the connection: {reason}") from None
        raise DatabaseUnavailable(f"database {where} is unreachable") from None
