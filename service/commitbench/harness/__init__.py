"""What runs inside the bench process: the authoring API, timing, peaks, discovery and
the worker entry point. The only part of commitbench that may import torch (lazily,
inside functions), and it never imports the orchestrator (runner, store, fleet, cli)."""
