"""The orchestrator: resolves commits, checks them out, starts worker processes, samples
the devices and records the results. It never imports torch or a bench module."""
