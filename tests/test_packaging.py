"""pyproject.toml lists packages explicitly (migrations ship inside the package)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed() -> None:
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(("commitbench", *p.parent.relative_to(ROOT / "service" / "commitbench").parts))
        for p in (ROOT / "service" / "commitbench").rglob("__init__.py")
    }
    found |= {"commitbench.migrations", "commitbench.migrations.versions", "commitbench.benches"}
    assert listed == found


def test_migrations_are_importable_as_package_data() -> None:
    from commitbench.store import migrate

    # The newest revision file of the source tree is the head the package finds.
    newest = max(p.name[:4] for p in ROOT.glob("migrations/versions/0*.py"))
    assert migrate.head_revision() == newest


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


ORCHESTRATOR = ("commitbench.runner", "commitbench.store", "commitbench.fleet", "commitbench.cli")
HEAVY = ("psutil", "sqlalchemy", "psycopg", "git", "pynvml", "click", "rich", "torch")


def test_a_bench_process_imports_no_orchestrator() -> None:
    """What `import commitbench as cb` and the worker's entry point load in the bench
    process: the authoring API and plain values, nothing of the runner's side (the
    import-linter contracts check the code; this checks what really loads)."""
    for code in ("import commitbench as cb", "import commitbench.worker"):
        loaded = _modules_after(code)
        assert "commitbench.harness.bench" in loaded
        found = sorted(m for m in loaded if m.startswith(ORCHESTRATOR) or m in HEAVY)
        assert found == [], f"{code!r} loaded {found}"


def test_the_public_api_still_reaches_the_orchestrator() -> None:
    loaded = _modules_after("import commitbench as cb\ncb.MetricsRecorder, cb.DeviceSampler")
    assert {"commitbench.runner.recorder", "commitbench.runner.sampling.sampler"} <= loaded
