"""Plain values both processes share: records, statistics and the worker's wire protocol.
Nothing here imports another part of commitbench, torch or a database driver."""
