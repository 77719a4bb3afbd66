"""`commitbench worker`: a fleet runner that takes jobs from the queue until stopped."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from types import FrameType

import click

from commitbench.cli.common import (
    affinity_from,
    affinity_option,
    emit_json,
    global_options,
    globals_from,
    pass_env_option,
    require_db,
    say,
)
from commitbench.fleet.repos import default_cache
from commitbench.fleet.store import Backoff
from commitbench.fleet.worker import FleetOptions, FleetWorker, Interrupted
from commitbench.runner.environ import check_pass_env
from commitbench.store import open_engine


def install_signals(worker: FleetWorker) -> None:
    """First SIGTERM/SIGINT: finish the current job, then exit. Second: give the
    current job back now and exit."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if not worker.stopping:
            logging.getLogger("commitbench.fleet").warning(
                "%s: stopping after the current job (again to give it back now)",
                signal.Signals(signum).name,
            )
            worker.stop()
        elif worker.current is not None:
            raise Interrupted

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


@click.command("worker")
@click.option(
    "--drain", is_flag=True, help="Exit once no job this machine can serve is pending or running."
)
@click.option(
    "--lease",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds a claimed job stays ours without a heartbeat (renewed every "
    "third of it); a dead runner's job is reclaimed after this.",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.01),
    default=5.0,
    show_default=True,
    help="Seconds between looks at an empty queue.",
)
@click.option("--max-jobs", type=click.IntRange(min=1), metavar="N", help="Exit after N jobs.")
@click.option(
    "--retry-delay",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds before a job whose attempt errored is tried again (doubling).",
)
@click.option(
    "--reconnect-max",
    type=click.FloatRange(min=0.01),
    default=30.0,
    show_default=True,
    help="Longest pause between reconnection attempts.",
)
@click.option(
    "--patience",
    type=click.FloatRange(min=0),
    default=600.0,
    show_default=True,
    help="Seconds a job's writes wait for a lost database before the job is given back.",
)
@click.option(
    "--isolate",
    type=click.Choice(["module", "case"]),
    default="module",
    show_default=True,
    help="One bench worker per module, or per case.",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the clones of job repositories live [default: ~/.cache/commitbench/repos].",
)
@pass_env_option
@affinity_option
@click.option("--name", help="Runner name in `jobs` [default: HOST:PID:RANDOM].")
@click.option("--quiet", is_flag=True, help="Log only warnings, not every job and case.")
@global_options
def worker_command(
    drain: bool,
    lease: float,
    poll: float,
    max_jobs: int | None,
    retry_delay: float,
    reconnect_max: float,
    patience: float,
    isolate: str,
    cache: Path | None,
    pass_env: tuple[str, ...],
    affinity: str | None,
    name: str | None,
    quiet: bool,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """Run jobs from the queue (see `commitbench enqueue`), each exactly as
    `commitbench run` would, until stopped (SIGTERM: after the current job) or, with
    --drain, until nothing is left for this machine. Exit 0, or 1 when a job it ran
    found failures (a case failed, crashed or timed out, or an attempt errored)."""
    g = globals_from(db, results, as_json)
    passed = check_pass_env(pass_env)
    if not quiet:
        logging.getLogger("commitbench.fleet").setLevel(logging.INFO)
    options = FleetOptions(
        cache=cache or default_cache(),
        lease_s=lease,
        poll_s=poll,
        drain=drain,
        max_jobs=max_jobs,
        retry_in_s=retry_delay,
        backoff=Backoff(initial_s=min(0.5, reconnect_max), max_s=reconnect_max),
        patience_s=patience,
        isolate=isolate,
        pass_env=passed,
        affinity=affinity_from(affinity),
    )
    # No pre-ping: every statement of a runner is retried on a lost connection.
    engine = open_engine(require_db(g), pre_ping=False)
    try:
        worker = FleetWorker(engine, options, name=name)
        install_signals(worker)
        tally = worker.run()
    finally:
        engine.dispose()
    if g.json:
        emit_json({"runner": worker.name, **tally.summary()})
    else:
        say(
            f"runner {worker.name}: {tally.done} done, {tally.failed} failed, "
            f"{tally.errored} errored, {tally.given_back} given back, {tally.lost} lost"
        )
    return 1 if tally.failed or tally.errored else 0
