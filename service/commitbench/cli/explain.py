"""`commitbench explain BASE HEAD --case ID`: why a case changed, from its two profiles."""

from __future__ import annotations

from pathlib import Path

import click

from commitbench.analysis.explain import explain, pair
from commitbench.cli import explaining
from commitbench.cli.common import emit_json, global_options, globals_from, open_reading_store
from commitbench.cli.common import stdout as console
from commitbench.cli.compare import markdown_option
from commitbench.errors import CommitbenchError
from commitbench.model.cases import exact_pattern
from commitbench.runner.profiles import profiles_at
from commitbench.runner.vcs import Repository


@click.command("explain")
@click.argument("base")
@click.argument("head")
@click.option("--case", "case", required=True, metavar="ID", help="The case id to explain.")
@click.option(
    "--part",
    metavar="NAME",
    help="Only this timed function of the case (a ctx.time name) [default: one iteration "
    "of all of them].",
)
@click.option(
    "--repo", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True
)
@markdown_option
@global_options
def explain_command(
    base: str,
    head: str,
    case: str,
    part: str | None,
    repo: Path,
    as_markdown: bool,
    db: str | None,
    results: Path | None,
    as_json: bool,
) -> int:
    """What changed between the profiles of CASE at BASE and HEAD (recorded with
    `run --trace`), per iteration: operators or kernels that appeared, vanished, changed
    their calls or their time, category shares, launches, memory."""
    g = globals_from(db, results, as_json)
    repository = Repository(repo)
    b, h = repository.sha(base), repository.sha(head)
    store, engine = open_reading_store(g)
    try:
        found_base = profiles_at(store, repository.id, b, case, part)
        found_head = profiles_at(store, repository.id, h, case, part)
    finally:
        if engine is not None:
            engine.dispose()
    for sha, found in ((b, found_base), (h, found_head)):
        if not found:
            what = case if part is None else f"{case} (part {part})"
            raise CommitbenchError(
                f"no profile of {what} at {sha[:12]} in {store.location}; record one with: "
                f"commitbench run {sha[:12]} --trace --force --filter '{exact_pattern(case)}'"
            )
    chosen = pair(found_base, found_head)
    if chosen is None:
        raise CommitbenchError(
            f"the profiles of {case} at {b[:12]} and {h[:12]} come from different machines "
            "or profiles; record both on one machine with run --trace --force"
        )
    result = explain(chosen[0].data, chosen[1].data)
    heading = explaining.title(case if part is None else f"{case} {part}", b, h, chosen)
    if g.json:
        emit_json(explaining.as_json(result, case, b, h, chosen))
    elif as_markdown:
        click.echo(explaining.markdown(result, heading), nl=False)
    else:
        console.print(explaining.rich(result, heading))
    return 0
