"""Analysis: pure functions over sequences of measurements (no database inside)."""
