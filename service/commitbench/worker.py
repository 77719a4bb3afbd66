"""`python -m commitbench.worker`: the bench process's entry point, kept at this name for
the launcher and for users; the code is commitbench.harness.worker."""

from __future__ import annotations

import sys

from commitbench.harness.worker import main

if __name__ == "__main__":
    sys.exit(main())
