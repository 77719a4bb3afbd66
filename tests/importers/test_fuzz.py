"""The readers fuzzed (hypothesis) over files the real tools wrote with one value
replaced anywhere in them: every outcome is runs (every record valid by construction)
or one ForeignFormatError naming the file; never another exception, which the CLI would
show as a traceback. Pure reading: no database, no git (--repository), so each example
is fast; what a valid run does in the database is tested in test_pytest_benchmark.py and
test_asv.py.

Seeded and bounded by the profile in tests/conftest.py (derandomized, no example
database): 80 examples per format.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commitbench.errors import ForeignFormatError
from commitbench.importers import asv, pytest_benchmark
from commitbench.importers.common import Source
from commitbench.importers.load import NamedCommits
from tests.importers.conftest import AsvProject, PytestProject

FUZZ = settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
COMMITS = NamedCommits("https://example.com/team/speed.git")

ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "\x00",
            "x" * 300,
            "2026-11-01T12:00:00",
            "0001-01-01T00:00:00+14:00",
            "1969-12-31T23:59:59+00:00",
            "f" * 40,
            "unversioned",
            "'a'",
            "[1, 2",
            "nan",
        ]
    ),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document (keys and list indexes), the document's own last."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            found.extend(paths(inner, (*prefix, key)))
    elif isinstance(value, list):
        for i, inner in enumerate(value[:4]):  # a few of each list: the rest look alike
            found.extend(paths(inner, (*prefix, i)))
    found.append(prefix)
    return found


def replaced(doc: Any, where: tuple[Any, ...], value: Any) -> Any:
    if not where:
        return value
    copy = json.loads(json.dumps(doc))
    inner = copy
    for step in where[:-1]:
        inner = inner[step]
    inner[where[-1]] = value
    return copy


@FUZZ
@given(data=st.data())
def test_a_pytest_benchmark_file_with_any_value_replaced_reads_or_is_refused(
    pb_project: PytestProject, data: st.DataObject
) -> None:
    doc = pb_project.load()
    where = data.draw(st.sampled_from(paths(doc)))
    damaged = replaced(doc, where, data.draw(ODD_VALUES))
    source = Source(Path("out.json"), json.dumps(damaged).encode())
    try:
        run = pytest_benchmark.read(source, COMMITS)
    except ForeignFormatError as exc:
        assert str(exc).startswith("out.json: ") and "\n" not in str(exc)
    else:
        assert run.header.commit.repository == "https://example.com/team/speed.git"


@FUZZ
@given(data=st.data())
def test_an_asv_result_file_with_any_value_replaced_reads_or_is_refused(
    asv_project: AsvProject, data: st.DataObject
) -> None:
    original = asv_project.result_file(asv_project.shas[1])
    doc = json.loads(original.read_text())
    where = data.draw(st.sampled_from(paths(doc)))
    damaged = replaced(doc, where, data.draw(ODD_VALUES))
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        (results / "testbox").mkdir(parents=True)
        shutil.copy(asv_project.results / "benchmarks.json", results)
        shutil.copy(asv_project.results / "testbox" / "machine.json", results / "testbox")
        target = results / "testbox" / original.name
        target.write_text(json.dumps(damaged))
        try:
            runs = asv.read(results, COMMITS)
        except ForeignFormatError as exc:
            assert str(exc).startswith(f"{target}: ") and "\n" not in str(exc)
        else:
            assert [where for where, _ in runs] == [str(target)]
