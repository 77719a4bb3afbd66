"""A `--param` sweep (model/sweep.py) applied to benches, inside the worker: the
worker gets it as `--params JSON`, sweeps each bench's grid, and with `--list` tells
the runner what each bench declares, so the runner can check the sweep
(runner/selection.py) before anything is measured."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from commitbench.harness.bench import Bench
from commitbench.model import sweep


def overrides(text: str | None) -> sweep.Overrides:
    """The worker's `--params` argument (JSON, sweep.to_json's form)."""
    return sweep.from_json(json.loads(text)) if text else ()


def swept(spec: Bench, given: sweep.Overrides) -> tuple[Bench, str | None]:
    """The bench with its grid swept, or the bench as it is and why a value does not
    fit it (a line naming the bench, the parameter and the value)."""
    if not given:
        return spec, None
    try:
        grid = sweep.swept(spec.name, spec.params, given)
    except ValueError as err:
        return spec, str(err)
    return dataclasses.replace(spec, params=grid), None


def declared(
    benches: Sequence[Bench], profile: str, given: sweep.Overrides
) -> list[dict[str, Any]]:
    """What a listing tells the runner of each bench in the profile: its name, the
    parameters it declares and why a value does not fit it (or None)."""
    return [
        {"name": spec.name, "params": [k for k, _ in spec.params], "error": swept(spec, given)[1]}
        for spec in benches
        if profile in spec.profiles
    ]
