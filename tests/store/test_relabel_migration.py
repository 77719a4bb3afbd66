"""Migration 0004: cases stored under an ambiguous label (before labels quoted strings
that read as other values) are relabelled, and recording them again finds them."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

from hypothesis import given
from sqlalchemy import text
from sqlalchemy.engine import URL

from commitbench.model.cases import CaseKey, ParamValue, case_label
from commitbench.runner.recorder import MetricsRecorder
from commitbench.store import engine as dbengine
from commitbench.store import migrate
from commitbench.store.sql import SqlStore
from tests import factories as f
from tests.model.test_case_identity import tight_params
from tests.strategies import dotted, params

MIGRATION = Path(__file__).parents[2] / "migrations/versions/0004_relabel_ambiguous_cases.py"

# (name, params as JSON, label as stored before 0004, label after)
CASES = [
    ("m.f", '{"n": "1"}', "m.f[n=1]", 'm.f[n="1"]'),
    ("m.f", '{"a": "1,b=2"}', "m.f[a=1,b=2]", 'm.f[a="1,b=2"]'),
    ("m.f", '{"on": "true", "x": ""}', "m.f[on=true,x=]", 'm.f[on="true",x=""]'),
    ("m.f", '{"shape": "4k", "n": 2}', "m.f[n=2,shape=4k]", "m.f[n=2,shape=4k]"),
    ("m.g", "{}", "m.g", "m.g"),
]
LABELS = text("SELECT label FROM cases ORDER BY id")


def test_ambiguous_labels_are_rewritten_and_restored(fresh_url: URL) -> None:
    eng = dbengine.make_engine(fresh_url)
    try:
        migrate.upgrade(eng, "0003")
        with eng.begin() as conn:
            for name, params, old, _new in CASES:
                conn.execute(
                    text(
                        "INSERT INTO cases (name, params, label) VALUES (:n, CAST(:p AS jsonb), :l)"
                    ),
                    {"n": name, "p": params, "l": old},
                )
        migrate.upgrade(eng)
        with eng.connect() as conn:
            assert conn.execute(LABELS).scalars().all() == [new for *_, new in CASES]
        migrate.downgrade(eng, "0003")
        with eng.connect() as conn:
            assert conn.execute(LABELS).scalars().all() == [old for *_, old, _new in CASES]
        migrate.upgrade(eng)

        # The runner's key for the first case is the relabelled row: nothing new inserted.
        key = CaseKey.of("m.f", {"n": "1"})
        assert key.label == CASES[0][3]
        with MetricsRecorder(SqlStore(eng), f.header()) as rec:
            rec.add(replace(f.result(), case=key))
        with eng.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM cases")).scalar_one() == len(CASES)
            assert (
                conn.execute(
                    text("SELECT k.label FROM results r JOIN cases k ON k.id = r.case_id")
                ).scalar_one()
                == key.label
            )
    finally:
        eng.dispose()


def _migration():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("relabel_0004", MIGRATION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


relabel = _migration()


@given(dotted, params | tight_params)
def test_the_migrations_frozen_label_is_todays(name: str, values: dict[str, ParamValue]) -> None:
    """0004 keeps a copy of the label function (a migration must not change with the
    code): today the two agree."""
    assert relabel._label(name, values, relabel._quoted) == case_label(name, values)
