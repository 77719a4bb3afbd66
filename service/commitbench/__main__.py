"""`python -m commitbench` is the `commitbench` command."""

import sys

from commitbench.cli import main

sys.exit(main())
