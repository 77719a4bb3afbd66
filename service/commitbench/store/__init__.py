"""Where runs are recorded and read back: PostgreSQL (store.sql) or versioned CSV
(store.csv), both behind the protocols of store.base."""

from __future__ import annotations

from commitbench.store.base import ReadStore, Store
from commitbench.store.open import open_engine, open_reading_store, open_store

__all__ = ["ReadStore", "Store", "open_engine", "open_reading_store", "open_store"]
