"""Which frame of a stored traceback a failure line names (pure: traceback text in)."""

from __future__ import annotations

from pathlib import Path

import pytest

from commitbench.cli.progress import failure_site

HARNESS = """Traceback (most recent call last):
  File "/opt/cb/service/commitbench/harness/runcase.py", line 71, in run_case
    spec.fn(ctx, **case.params_dict)
"""


@pytest.mark.parametrize(
    ("frames", "site"),
    [
        # The bench's own file, in the commit's (since removed) worktree.
        (['/tmp/commitbench-wt-77-ab12/benches/bench_x.py", line 12'], "benches/bench_x.py:12"),
        # The code the bench measures is the user's too: the innermost of theirs wins,
        # not torch's, Python's, or commitbench's timing loop.
        (
            [
                '/tmp/commitbench-wt-77-ab12/benches/bench_x.py", line 12',
                '/opt/cb/service/commitbench/harness/timing.py", line 64',
                '/tmp/commitbench-wt-77-ab12/src/model/core.py", line 40',
                '/venv/lib/python3.11/site-packages/torch/functional.py", line 402',
                '/usr/lib/python3.11/json/decoder.py", line 355',
            ],
            "src/model/core.py:40",
        ),
        # The built-in suite, installed as commitbench.benches.
        (
            ['/venv/lib/python3.11/site-packages/commitbench/benches/matmul.py", line 80'],
            "commitbench/benches/matmul.py:80",
        ),
        (['/venv/lib/python3.11/site-packages/torch/nn/modules/linear.py", line 125'], None),
    ],
)
def test_the_innermost_frame_of_the_benchs_code(frames: list[str], site: str | None) -> None:
    text = HARNESS + "".join(f'  File "{f}, in fn\n    code()\n' for f in frames)
    assert failure_site(text + "ValueError: boom\n") == site


def test_errors_without_a_traceback_have_no_site() -> None:
    assert failure_site("no result after 600 s; worker killed") is None
    assert failure_site(None) is None


def test_a_path_below_the_current_directory_is_shown_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = HARNESS + f'  File "{tmp_path}/benches/b.py", line 3, in f\n    x()\n'
    assert failure_site(text) == "benches/b.py:3"
