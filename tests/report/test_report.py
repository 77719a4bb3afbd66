"""The report: self-contained HTML and PNGs, from CSV and PostgreSQL, rendered by a real
headless Chromium."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from sqlalchemy import Engine

from commitbench.store import Store
from commitbench.store.csv import CsvStore
from commitbench.store.sql import SqlStore
from tests import factories as f

COMMITS = 30
STEP = 15  # commit 15 is 10% slower


def history(store: Store) -> list[str]:
    """30 commits of one case; a +10% step at commit 15; device samples in every run."""
    return f.synthetic_history(store, [1.0] * STEP + [1.10] * (COMMITS - STEP))


def check_html(index: Path) -> None:
    text = index.read_text()
    images = re.findall(r'<img alt="[^"]*" src="([^"]+)"', text)
    assert len(images) == 2  # one trend, one device plot
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in text and "https://example.com" in text  # only the repo name
    assert re.search(r"class='regressed'>regressed<", text) is None  # the last two are alike


def test_report_from_csv_is_self_contained(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = tmp_path / "results"
    history(CsvStore(results))
    out = tmp_path / "report"
    outcome = cli("report", "--results", str(results), "--out", str(out), "--json")
    assert outcome.code == 0, outcome.err
    assert sorted(p.name for p in out.glob("*.png")) == [
        "device-latest-run.png",
        "trend-matmul.matmul_shape_4k-time-NVIDIA_H100_80GB_HBM3-full.png",
    ]
    check_html(out / "index.html")


def test_report_from_postgresql(cli, db_env: str, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    history(SqlStore(engine))
    out = tmp_path / "report"
    assert cli("report", "--out", str(out)).code == 0
    check_html(out / "index.html")


def test_plots_render_in_headless_chromium(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    browser = shutil.which("chromium")
    if browser is None:
        pytest.fail("Debian's chromium is needed for this test: apt-get install chromium")
    results = tmp_path / "results"
    history(CsvStore(results))
    out = tmp_path / "report"
    assert cli("report", "--results", str(results), "--out", str(out)).code == 0
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1200,2600",
            f"--screenshot={shot}",
            (out / "index.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pixels = (imread(str(shot))[:, :, :3] * 255).round().astype(int)
    # The trend line (#1f77b4) and the device plot's lines must be on the page.
    line = np.all(np.abs(pixels - np.array([31, 119, 180])) <= 8, axis=2).sum()
    assert line > 500, f"only {line} pixels of the trend colour: the plots did not render"
    # The detected step is marked with the regression colour (#d62728).
    step = np.all(np.abs(pixels - np.array([214, 39, 40])) <= 8, axis=2).sum()
    assert step > 100, f"only {step} pixels of the change point line"
    assert (pixels.sum(axis=2) < 600).mean() > 0.01  # and text and axes, not a blank page
