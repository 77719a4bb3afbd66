"""Structural checks of the generated dashboards, and that the committed JSON is current."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commitbench.grafana import dashboards, names, render, stale
from commitbench.grafana.__main__ import main
from commitbench.grafana.expand import variable_references
from commitbench.grafana.queries import queries

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "grafana" / "dashboards"
DASHBOARDS = dashboards()
# Grafana's built-in variables and the PostgreSQL macros start with two underscores.
BUILTIN_PREFIX = "__"


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def datasource_refs(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from datasource_refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from datasource_refs(value)


def test_committed_json_is_what_the_generator_writes() -> None:
    assert stale(COMMITTED) == [], "run: python -m commitbench.grafana"
    for name, dashboard in DASHBOARDS.items():
        assert (COMMITTED / name).read_text(encoding="utf-8") == render(dashboard)


def test_check_command_reports_a_stale_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0
    (tmp_path / "trends.json").write_text("{}\n")
    assert main(["--check", str(tmp_path)]) == 1
    assert "trends.json is out of date" in capsys.readouterr().err


@pytest.mark.parametrize("name", DASHBOARDS)
class TestStructure:
    def test_unique_ids(self, name: str) -> None:
        d = DASHBOARDS[name]
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids))
        for p in d["panels"]:
            refs = [t["refId"] for t in p["targets"]]
            assert refs and len(refs) == len(set(refs)), p["title"]
        variables = [v["name"] for v in d["templating"]["list"]]
        assert len(variables) == len(set(variables))

    def test_grid_within_24_columns_without_overlap(self, name: str) -> None:
        cells: set[tuple[int, int]] = set()
        for p in DASHBOARDS[name]["panels"]:
            g = p["gridPos"]
            assert g["x"] >= 0 and g["w"] > 0 and g["h"] > 0 and g["y"] >= 0, p["title"]
            assert g["x"] + g["w"] <= 24, p["title"]
            mine = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not cells & mine, f"{p['title']} overlaps another panel"
            cells |= mine

    def test_every_variable_used_is_defined(self, name: str) -> None:
        d = DASHBOARDS[name]
        defined = {v["name"] for v in d["templating"]["list"]}
        used = {
            ref
            for text in strings(d)
            for ref, _ in variable_references(text)
            if not ref.startswith(BUILTIN_PREFIX)
        }
        assert used <= defined, used - defined

    def test_sql_quotes_every_variable(self, name: str) -> None:
        """No variable reaches SQL unquoted: ${var:sqlstring} everywhere."""
        for q in queries(DASHBOARDS[name]):
            for ref, fmt in variable_references(q.sql):
                if ref.startswith(BUILTIN_PREFIX):
                    assert ref in (
                        "__interval",
                        "__timeFilter",
                        "__timeFrom",
                        "__timeTo",
                        "__timeGroup",
                        "__timeGroupAlias",
                    ), (q.name, ref)
                else:
                    assert fmt == "sqlstring", f"{q.name}: ${ref} with format {fmt}"
            assert ";" not in q.sql, f"{q.name}: one statement per query"

    def test_every_datasource_is_the_provisioned_one(self, name: str) -> None:
        refs = list(datasource_refs(DASHBOARDS[name]))
        assert refs
        assert all(r == {"type": names.DATASOURCE_TYPE, "uid": names.DATASOURCE_UID} for r in refs)

    def test_panels_have_title_description_unit(self, name: str) -> None:
        for p in DASHBOARDS[name]["panels"]:
            assert p["title"].strip(), p
            assert len(p["description"]) > 20, p["title"]
            assert p["fieldConfig"]["defaults"]["unit"], p["title"]

    def test_query_variables_refresh_with_the_time_range(self, name: str) -> None:
        for v in DASHBOARDS[name]["templating"]["list"]:
            if v["type"] == "query":
                assert v["refresh"] == 2, v["name"]
                assert v["datasource"]["uid"] == names.DATASOURCE_UID

    def test_identity(self, name: str) -> None:
        d = DASHBOARDS[name]
        assert d["uid"].startswith("commitbench-") and len(d["uid"]) <= 40
        assert d["title"].startswith("commitbench")
        assert d["editable"] is False


def test_dashboard_uids_are_unique() -> None:
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(uids) == len(set(uids)) == 5


def test_links_point_at_existing_dashboards() -> None:
    uids = {d["uid"] for d in DASHBOARDS.values()}
    targets = {
        text.split("/d/")[1].split("/")[0]
        for d in DASHBOARDS.values()
        for text in strings(d)
        if text.startswith("/d/")
    }
    assert targets and targets <= uids
