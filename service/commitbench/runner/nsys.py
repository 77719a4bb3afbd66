"""`run --nsys`: every bench worker of the run under `nsys profile` (Nsight Systems).

The worker already names its work in NVTX ranges (the case id, and `case/name` for each
`ctx.time`; harness/profiling.py), so the report shows each case by name on its
timeline. nsys writes one report per worker process, `<module>-<n>.nsys-rep` (n counts
the workers of the module: one, or one per case with --isolate case, per process with
--processes, or after a crash),
into `nsys/` of the run's folder: beside `artifacts/` in the CSV store, and in a folder
of the same name under the results directory when the run goes to PostgreSQL. Only the
workers that measure are wrapped; listing the cases and probing the environment are not.

Timings taken under nsys are recorded like any others, and nsys costs time of its own
(its injection, CUDA and OS-runtime tracing): use it to look, not to measure; `--force`
records a commit again.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from commitbench.errors import ConfigError

FOLDER = "nsys"
TRACE = "cuda,nvtx,osrt"  # CUDA API and kernels, NVTX ranges, OS runtime calls
NOT_FOUND = "--nsys: nsys is not found on PATH (install Nsight Systems, or put its bin/ on PATH)"


def find(path: str | None = None) -> str:
    """The nsys executable on PATH (or on `path`); ConfigError (exit 2) without one."""
    found = shutil.which("nsys", path=path)
    if found is None:
        raise ConfigError(NOT_FOUND)
    return found


def command(nsys: str, output: Path, worker: Sequence[str]) -> list[str]:
    """The worker's command line under `nsys profile`, writing `output`.nsys-rep (nsys
    adds the extension) and replacing a report of that name."""
    return [
        nsys,
        "profile",
        f"--trace={TRACE}",
        f"--output={output}",
        "--force-overwrite=true",
        *worker,
    ]


def folder(root: Path, run_id: object) -> Path:
    """Where the reports of run `run_id` go, under a results directory `root`."""
    return root / str(run_id) / FOLDER


@dataclass(frozen=True)
class Capture:
    """nsys for the workers of one run: its executable and the run's report folder."""

    executable: str
    folder: Path
    _numbers: dict[str, Iterator[int]] = field(default_factory=dict, compare=False, repr=False)

    def wrap(self, module: str, worker: Sequence[str]) -> list[str]:
        """The next worker of `module` under nsys (the folder made if need be)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        n = next(self._numbers.setdefault(module, itertools.count(1)))
        return command(self.executable, self.folder / f"{module}-{n}", worker)
