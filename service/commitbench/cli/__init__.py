"""The `commitbench` command. Each subcommand module parses, then calls plain functions."""

from __future__ import annotations

import importlib
import logging
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from commitbench.cli.common import global_options
from commitbench.errors import CommitbenchError

# Subcommands load on first use: `commitbench compare` on CSV results must not pay for
# importing SQLAlchemy, psycopg and Alembic (about a second) or matplotlib.
_COMMANDS = {
    "run": "commitbench.cli.run:run_command",
    "compare": "commitbench.cli.compare:compare_command",
    "check": "commitbench.cli.check:check_command",
    "bisect": "commitbench.cli.bisect:bisect_command",
    "explain": "commitbench.cli.explain:explain_command",
    "show": "commitbench.cli.show:show_command",
    "report": "commitbench.cli.report:report_command",
    "detect": "commitbench.cli.detect:detect_command",
    "regressions": "commitbench.cli.detect:regressions_group",
    "db": "commitbench.cli.db:db_group",
    "export": "commitbench.cli.transfer:export_command",
    "import": "commitbench.cli.transfer:import_command",
    "enqueue": "commitbench.cli.enqueue:enqueue_command",
    "worker": "commitbench.cli.worker:worker_command",
    "jobs": "commitbench.cli.jobs:jobs_command",
    "doctor": "commitbench.cli.doctor:doctor_command",
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported when one is invoked (or listed by --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = _COMMANDS.get(cmd_name)
        if where is None:
            return None
        module, _, attribute = where.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="commitbench")
@global_options
def cli(db: str | None, results: Path | None, as_json: bool) -> None:
    """Continuous benchmarking of PyTorch code, per commit.

    --db, --results and --json may come before the subcommand or after it; given in
    both places, the subcommand's own value wins.
    """


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_cleanly_on_sigterm() -> None:
    """SIGTERM (kill, a cancelled CI job, a stopping container) ends a command the way
    Ctrl-C does: measured results are flushed, the run is closed as interrupted and its
    worktrees are removed. `commitbench worker` installs its own handlers over this one."""
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)


def _error(message: str, code: int = 2) -> int:
    text = _URL_PASSWORD.sub(r"\1***@", " ".join(message.split()))
    click.echo(f"commitbench: error: {text}", err=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: 0 success, 1 failures found, 2 bad usage or input, 3 infrastructure
    (a database or git unavailable); errors are one line on stderr, never a traceback."""
    logging.basicConfig(format="commitbench: %(levelname)s: %(message)s", level=logging.WARNING)
    _stop_cleanly_on_sigterm()
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="commitbench",
            standalone_mode=False,
        )
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as err:
        return _error(err.format_message()) if err.exit_code == 2 else _show(err)
    except click.exceptions.Abort:
        click.echo("commitbench: interrupted", err=True)
        return 130
    except CommitbenchError as err:
        return _error(str(err), err.exit_code)
    except Exception as err:
        lost = _database_lost(err)
        if lost is not None:
            return _error(lost, 3)
        raise
    return result if isinstance(result, int) else 0


def _database_lost(err: Exception) -> str | None:
    """The line for a connection-level database failure (store.engine.DB_LOST) or a
    database that refuses writes; None for anything else. Only a command that loaded
    the database stack can meet one, so the stack is not imported to ask."""
    if "sqlalchemy" not in sys.modules and "psycopg" not in sys.modules:
        return None
    from commitbench.store.engine import DB_LOST, refuses_writes

    if isinstance(err, DB_LOST):
        return f"database connection lost: {type(err).__name__}"
    if refuses_writes(err):
        return "database refuses writes (read-only transaction)"
    return None


def _show(err: click.ClickException) -> int:
    err.show()
    return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
