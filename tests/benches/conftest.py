"""The built-in suite's tests: benches/ is where the runner puts it, on the path."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHES = Path(__file__).resolve().parents[2] / "benches"

# The bench modules import their shared code as top-level modules (`import _model`),
# exactly as they do in a worker, where the runner puts benches/ itself on PYTHONPATH.
if str(BENCHES) not in sys.path:
    sys.path.insert(0, str(BENCHES))
