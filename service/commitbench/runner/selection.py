"""What a run measures at a commit, and what is left of it to measure, decided before a
worktree, a `--setup` command or a worker costs anything.

A run records its selection in its environment, under "selection": the bench directory
as given, the identity of its content (the git tree of that directory at the commit, or
a digest of the files of a directory outside the repository), the filter and the cases
asked for. A later run of the same selection, at the same (repository, commit, machine,
profile), has nothing to do once a run of it completed (runs.status ok or failed: not
interrupted, not still running).
"""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from commitbench.errors import CommitbenchError
from commitbench.harness import discovery
from commitbench.model import sweep
from commitbench.model.cases import CaseKey, case_matches
from commitbench.model.sweep import Overrides
from commitbench.runner.launcher import CaseRun, Survey
from commitbench.runner.vcs import Repository

# A module and the labels wanted of it; None: not known before its worker lists them.
Todo = tuple[str, list[str] | None]


def builtin_benches() -> Path:
    return Path(str(resources.files("commitbench.benches")))


def folder_digest(folder: Path) -> str:
    """sha256 over the bench sources under `folder` (every `.py` file, by relative path
    and content; or the one file `folder` is): what identifies a bench directory or
    module that the commit does not contain."""
    digest = hashlib.sha256()
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.py"))
    base = folder.parent if folder.is_file() else folder
    for path in files:
        if "__pycache__" in path.parts or not path.is_file():
            continue
        digest.update(path.relative_to(base).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@dataclass(frozen=True)
class Selection:
    """The cases a run asks for: a bench directory (None: the built-in suite), a filter
    (cases.case_matches), for check and bisect exactly these cases, and a --param
    sweep (model/sweep.py) that changes the grids."""

    benches: str | None = None
    filter: str | None = None
    cases: frozenset[str] | None = None
    params: Overrides = ()

    @property
    def narrowed(self) -> bool:
        return self.filter is not None or self.cases is not None

    def wanted(self, label: str) -> bool:
        return case_matches(label, self.filter) and (self.cases is None or label in self.cases)

    def at(self, repo: Repository, sha: str, digests: dict[Path, str]) -> dict[str, Any] | None:
        """The selection as recorded with a run at `sha`; None when the bench directory
        is not in the commit (or, outside the repository, does not exist). `digests`
        caches the digests of directories outside the repository."""
        if self.benches is not None and not Path(self.benches).is_absolute():
            content = repo.tree_id(sha, self.benches)
            if content is None:
                return None
        else:
            folder = builtin_benches() if self.benches is None else Path(self.benches)
            if not (folder.is_dir() or (folder.is_file() and folder.suffix == ".py")):
                return None
            if folder not in digests:
                digests[folder] = folder_digest(folder)
            content = digests[folder]
        recorded: dict[str, Any] = {
            "benches": self.benches,
            "content": content,
            "filter": self.filter,
            "cases": sorted(self.cases) if self.cases is not None else None,
        }
        if self.params:  # only then: runs recorded before sweeps keep matching
            recorded["params"] = sweep.to_json(self.params)
        return recorded

    def modules(self, repo: Repository, sha: str) -> list[str]:
        """The bench modules this selection runs at `sha`, found by file name without a
        worktree: every module below the directory, or the one module a `.py` file is."""
        if self.benches is not None and not Path(self.benches).is_absolute():
            if self.benches.endswith(".py"):
                return [Path(self.benches).stem]
            prefix = posixpath.normpath(self.benches.strip("/") or ".")
            files = repo.files(sha, prefix)
            if prefix != ".":
                files = [f[len(prefix) + 1 :] for f in files]
            return discovery.module_names(files)
        folder = builtin_benches() if self.benches is None else Path(self.benches)
        if folder.is_file():
            return [folder.stem]
        return discovery.find_modules(folder, under=(".",))

    def selects(self, label: str, modules: Sequence[str]) -> bool:
        """Whether a recorded case is one this selection asks for: of one of `modules`
        (its function's dotted name starts with the module's, or it is the module's own
        import failure), and wanted by the filter and cases."""
        name = label.split("[", 1)[0]
        if not any(name == m or name.startswith(f"{m}.") for m in modules):
            return False
        return self.wanted(label)

    def matched(self, plans: Mapping[str, list[CaseKey] | CaseRun]) -> int:
        """How many listed cases the selection wants (recorded or not)."""
        return sum(
            self.wanted(c.label)
            for plan in plans.values()
            if not isinstance(plan, CaseRun)
            for c in plan
        )

    def nothing_left(
        self, done: set[str], recorded: dict[str, Any], complete: Sequence[dict[str, Any]]
    ) -> bool:
        """Whether the store says it all: every case asked for is recorded, or a
        complete run of this selection (`recorded`) is among `complete`."""
        if self.cases is not None and self.cases <= done:
            return True
        return recorded in complete

    def survey_needed(self, done: set[str]) -> bool:
        """Listing the modules first pays only when there is something to subtract
        (recorded cases) or to choose (a filter, cases), and a sweep is checked on it."""
        return bool(done) or self.narrowed or bool(self.params)

    def check_sweep(self, found: Survey) -> None:
        """CommitbenchError (exit 2, one line) for a --param sweep that the listed
        benches refuse: a value that does not parse as the type of a selected bench's
        declared values, or a name that no selected bench declares. A selected bench is
        one of the listed modules, in the profile, with a case the selection wants.
        Where a module did not list (it does not import, perhaps only before --setup),
        what it declares is not known and names are not checked."""
        if not self.params:
            return
        declared: set[str] = set()
        for module, plan in found.plans.items():
            if isinstance(plan, CaseRun):
                continue
            wanted = {c.name for c in plan if self.wanted(c.label)}
            for bench in found.benches.get(module, ()):
                if not isinstance(bench, dict) or bench.get("name") not in wanted:
                    continue
                if bench.get("error"):
                    raise CommitbenchError(str(bench["error"]))
                declared.update(str(p) for p in bench.get("params") or ())
        complete = found.failure is None and not any(
            isinstance(plan, CaseRun) for plan in found.plans.values()
        )
        line = sweep.unknown(self.params, declared)
        if line is not None and complete:
            raise CommitbenchError(line)

    def left(
        self,
        modules: Sequence[str],
        plans: Mapping[str, list[CaseKey] | CaseRun],
        done: set[str],
    ) -> list[Todo]:
        """The modules with something left to measure. A module not listed, or that did
        not import (perhaps only before --setup), is left unless its failure is
        recorded: its own worker finds out."""
        todo: list[Todo] = []
        for module in modules:
            plan = plans.get(module)
            if plan is None or isinstance(plan, CaseRun):
                if module not in done:
                    todo.append((module, None))
                continue
            wanted = [c.label for c in plan if self.wanted(c.label)]
            if any(label not in done for label in wanted):
                todo.append((module, wanted))
        return todo
