"""What the report shows: every module under --max-plots (and a notice of the rest), the
latest comparison of the cases and metrics asked for, units scaled consistently, and a
CI legend only beside a band."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

from commitbench.model.cases import CaseKey
from commitbench.model.metrics import MetricRecord
from commitbench.model.points import Series
from commitbench.model.records import CommitInfo, ResultRecord, RunHeader, RunInfo
from commitbench.report import page, plots
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store.csv import CsvStore
from tests import factories as f

REPO = "https://example.com/acme/model.git"
# Two cases in each of three modules; the time of each in ms.
CASES = [
    (CaseKey.of("attention.sdpa", {"seq": 256}), 0.004),
    (CaseKey.of("attention.sdpa", {"seq": 512}), 0.009),
    (CaseKey.of("matmul.dense", {"shape": "4k"}), 0.0012),
    (CaseKey.of("matmul.dense", {"shape": "8k"}), 0.0095),
    (CaseKey.of("optimizers.step", {"opt": "adamw"}), 0.020),
    (CaseKey.of("optimizers.step", {"opt": "sgd"}), 0.011),
]


def history(results: Path, commits: int = 3) -> list[str]:
    """Each commit 10% slower than the one before, every case; 12 samples per metric."""
    store = CsvStore(results)
    shas = [f"{i:040x}" for i in range(1, commits + 1)]
    for i, sha in enumerate(shas):
        when = f.T0 + timedelta(hours=i)
        header = RunHeader(
            run=RunInfo(uuid.uuid4(), when, "cron", "full", "main"),
            commit=CommitInfo(repository=REPO, sha=sha, committed_at=when, subject=f"c{i}"),
            machine=f.machine(),
        )
        with MetricsRecorder(store, header) as rec:
            for case, seconds in CASES:
                level = seconds * 1.1**i
                times = [level * (1 + 0.001 * k) for k in range(12)]
                rec.add(
                    ResultRecord(
                        case=case,
                        status="ok",
                        duration_s=1.0,
                        started_at=when,
                        metrics=(
                            MetricRecord.from_samples("time", times, unit="s"),
                            MetricRecord.from_samples(
                                "rss", [100.0 + i] * 12, unit="MiB", direction="lower"
                            ),
                        ),
                    )
                )
    return shas


def test_max_plots_takes_every_module_and_names_what_it_left_out(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results, out = tmp_path / "results", tmp_path / "report"
    history(results)
    outcome = cli("report", "--results", str(results), "--out", str(out), "--max-plots", "4")
    assert outcome.code == 0, outcome.err
    pngs = sorted(p.name.split("-")[1] for p in out.glob("trend-*.png"))
    assert pngs == [
        "attention.sdpa_seq_256",
        "attention.sdpa_seq_512",
        "matmul.dense_shape_4k",
        "optimizers.step_opt_adamw",
    ]
    note = (
        "4 of 6 trend plots shown (--max-plots); left out: matmul 1, optimizers 1. "
        "Narrow with --case or --metric, or raise --max-plots."
    )
    assert f"commitbench: warning: {note}" in outcome.err
    assert note in (out / "index.html").read_text()
    as_json = cli(
        "report", "--results", str(results), "--out", str(out), "--max-plots", "4", "--json"
    )
    assert json.loads(as_json.out)["left_out"] == note


def test_nothing_left_out_says_nothing(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results, out = tmp_path / "results", tmp_path / "report"
    history(results)
    outcome = cli("report", "--results", str(results), "--out", str(out))
    assert outcome.code == 0
    assert "left out" not in outcome.err
    assert len(list(out.glob("trend-*.png"))) == 6


def test_latest_comparison_follows_case_and_metric(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results, out = tmp_path / "results", tmp_path / "report"
    shas = history(results)
    args = ("report", "--results", str(results), "--out", str(out))
    assert cli(*args, "--case", "matmul.*", "--metric", "time").code == 0
    text = (out / "index.html").read_text()
    rows = re.findall(r"<tr><td><code>([^<]+)</code></td><td>([^<]+)</td>", text)
    assert rows == [("matmul.dense[shape=4k]", "time"), ("matmul.dense[shape=8k]", "time")]
    assert f"Latest comparison {shas[1][:12]} → {shas[2][:12]}" in text
    # The trend plots follow the same selection.
    assert len(list(out.glob("trend-*.png"))) == 2
    assert cli(*args, "--case", "optimizers").code == 0
    rows = re.findall(
        r"<tr><td><code>([^<]+)</code></td><td>([^<]+)</td>", (out / "index.html").read_text()
    )
    assert {case for case, _ in rows} == {
        "optimizers.step[opt=adamw]",
        "optimizers.step[opt=sgd]",
    }
    assert {metric for _, metric in rows} == {"time", "rss"}  # every metric without --metric


def test_table_units_are_scaled_as_the_plots_are(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results, out = tmp_path / "results", tmp_path / "report"
    history(results)
    args = ("--out", str(out), "--case", "4k", "--metric", "time", "--metric", "rss")
    assert cli("report", "--results", str(results), *args).code == 0
    text = (out / "index.html").read_text()
    cells = re.findall(r"<td>([0-9.]+ [^<]+)</td>", text)
    # matmul 4k: 1.2 ms x 1.1 and x 1.1^2, times 1.0055 (the median of 12 samples 0.1%
    # apart), in ms as its plot's axis; the MiB metric keeps its unit.
    assert cells == ["1.327 ms", "1.46 ms", "101 MiB", "102 MiB"]
    assert plots.scale([0.0012, 0.0014], "s") == (1e-3, "ms")
    assert plots.scale([0.15], "ms") == (1e-3, "µs")  # 150 µs, in the metric's own kind
    assert plots.scale([1500.0], "ms") == (1000.0, "s")  # 1.5 s
    assert plots.scale([2048.0], "MiB") == (1.0, "MiB")


def _series(ci: tuple[float | None, ...], runs: tuple[int, ...] = (1, 1, 1)) -> Series:
    return Series(
        repository=REPO,
        case="matmul.dense[shape=4k]",
        metric="time",
        machine_label="NVIDIA H100 80GB HBM3",
        machine="f" * 64,
        branch=None,
        profile="full",
        unit="s",
        direction="lower",
        shas=tuple(f"{i:040x}" for i in range(3)),
        subjects=("a", "b", "c"),
        times=(None, None, None),
        medians=(0.001, 0.0011, 0.0012),
        ci_low=ci,
        ci_high=tuple(None if c is None else c * 1.02 for c in ci),
        runs=runs,
    )


def test_a_ci_legend_only_beside_a_band() -> None:
    def labels(s: Series) -> list[str]:
        return plots.trend_figure(s).axes[0].get_legend_handles_labels()[1]

    assert labels(_series((None, None, None))) == ["commit value"]
    assert labels(_series((0.00099, None, 0.00119))) == ["95% CI", "commit value"]
    assert labels(_series((0.00099, 0.0011, 0.00119), (1, 3, 1))) == [
        "95% CI (span over runs)",
        "commit value",
    ]


def test_choose_takes_modules_in_turn() -> None:
    def named(case: str) -> Series:
        return _series((None, None, None)).__class__(
            **{**_series((None, None, None)).__dict__, "case": case}
        )

    series = [named(c) for c in ("a.x[1]", "a.x[2]", "a.x[3]", "b.y", "c.z[1]", "c.z[2]")]
    chosen, left = page.choose(series, 4)
    assert [s.case for s in chosen] == ["a.x[1]", "a.x[2]", "b.y", "c.z[1]"]
    assert [s.case for s in left] == ["a.x[3]", "c.z[2]"]
    assert page.choose(series, 10) == (series, [])
    assert page.module_of("matmul.dense[shape=4k,impl=a.b]") == "matmul"
