"""Machine kinds: what a job requires of a machine (`--kind H100x8`), and the one SQL
definition of a machine fitting a job's kind. Apart from queue.py because `enqueue`,
`jobs` and the claim all use it, and it is the one place a job's GPU model is matched
against a machine's GPU name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, Text, and_, func, literal, or_

from commitbench.errors import ConfigError
from commitbench.model.records import MachineInfo
from commitbench.store.tables import Job

_KIND = re.compile(r"^(?P<model>[A-Za-z0-9_.-]*?)(?:x(?P<count>[1-9][0-9]*))?$")


@dataclass(frozen=True)
class MachineKind:
    """What a job requires of a machine: a GPU model (a substring of the GPU name, any
    case; None: any machine) and at least `gpu_count` GPUs."""

    gpu_model: str | None = None
    gpu_count: int = 0

    @classmethod
    def parse(cls, text: str) -> MachineKind:
        """`any`, `gpu` (at least one GPU), `MODEL` (e.g. H100), each optionally with
        `xN` for at least N GPUs: `H100x8`, `gpux2`."""
        match = _KIND.match(text.strip())
        if not text.strip() or match is None:
            raise ConfigError(f"machine kind {text!r}: expected any, gpu or a GPU model, [xN]")
        model = match["model"]
        count = int(match["count"]) if match["count"] else None
        if model.lower() in ("", "any", "cpu"):
            return cls(None, count or 0)
        if model.lower() == "gpu":
            return cls(None, count or 1)
        return cls(model, count or 1)

    def __str__(self) -> str:
        name = self.gpu_model or ("gpu" if self.gpu_count else "any")
        return f"{name}x{self.gpu_count}" if self.gpu_count > 1 else name


def fits(gpu_name: ColumnElement[str], gpu_count: ColumnElement[int]) -> ColumnElement[bool]:
    """Jobs a machine with these GPUs can run: the one definition of a machine fitting a
    job's MachineKind. At least the job's GPU count, and the job's GPU model, when it
    names one, a substring of the machine's GPU name in any case (`H100` fits
    "NVIDIA H100 80GB HBM3")."""
    return and_(
        Job.gpu_count <= gpu_count,
        or_(
            Job.gpu_model.is_(None),
            func.strpos(func.lower(gpu_name), func.lower(Job.gpu_model)) > 0,
        ),
    )


def servable(m: MachineInfo) -> ColumnElement[bool]:
    """Jobs that machine `m` can run."""
    return fits(literal(m.gpu_name or "", Text), literal(m.gpu_count, Integer))
