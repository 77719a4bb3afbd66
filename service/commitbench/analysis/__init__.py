"""Analysis of recorded results: pure functions over sequences, no database inside."""
