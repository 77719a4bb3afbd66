"""The `commitbench` command. Each subcommand module parses, then calls plain functions."""

from __future__ import annotations

import logging
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from commitbench.cli.bisect import bisect_command
from commitbench.cli.check import check_command
from commitbench.cli.common import global_options
from commitbench.cli.compare import compare_command
from commitbench.cli.db import db_group
from commitbench.cli.detect import detect_command, regressions_group
from commitbench.cli.enqueue import enqueue_command
from commitbench.cli.jobs import jobs_command
from commitbench.cli.report import report_command
from commitbench.cli.run import run_command
from commitbench.cli.show import show_command
from commitbench.cli.transfer import export_command, import_command
from commitbench.cli.worker import worker_command
from commitbench.errors import CommitbenchError
from commitbench.store.engine import DB_LOST

_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="commitbench")
@global_options
def cli(db: str | None, results: Path | None, as_json: bool) -> None:
    """Continuous benchmarking of PyTorch code, per commit.

    --db, --results and --json may come before the subcommand or after it; given in
    both places, the subcommand's own value wins.
    """


cli.add_command(run_command)
cli.add_command(compare_command)
cli.add_command(check_command)
cli.add_command(bisect_command)
cli.add_command(show_command)
cli.add_command(report_command)
cli.add_command(detect_command)
cli.add_command(regressions_group)
cli.add_command(db_group)
cli.add_command(export_command)
cli.add_command(import_command)
cli.add_command(enqueue_command)
cli.add_command(worker_command)
cli.add_command(jobs_command)


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
    except DB_LOST as err:
        return _error(f"database connection lost: {type(err).__name__}", 3)
    return result if isinstance(result, int) else 0


def _show(err: click.ClickException) -> int:
    err.show()
    return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
