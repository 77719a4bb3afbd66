"""Where runs are recorded and read back: PostgreSQL (store.sql) or versioned CSV
(store.csv), both behind the protocols of store.base.

The openers load on first use (PEP 562): reading CSV results must not import SQLAlchemy,
psycopg and Alembic, which take about a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from commitbench.store.base import ReadStore, Store

if TYPE_CHECKING:
    from commitbench.store.open import open_engine, open_reading_store, open_store

_LAZY = {
    name: "commitbench.store.open" for name in ("open_engine", "open_reading_store", "open_store")
}

__all__ = ["ReadStore", "Store", "open_engine", "open_reading_store", "open_store"]


def __getattr__(name: str) -> Any:
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'commitbench.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
