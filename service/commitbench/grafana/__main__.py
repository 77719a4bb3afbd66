"""`python -m commitbench.grafana [--check] [DIR]`: regenerate grafana/dashboards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from commitbench.grafana import stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commitbench.grafana", description=__doc__)
    parser.add_argument(
        "directory",
        nargs="?",
        type=Path,
        default=Path("grafana/dashboards"),
        help="where the dashboard JSON lives (default: grafana/dashboards)",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ, write nothing"
    )
    args = parser.parse_args(argv)
    if args.check:
        differing = stale(args.directory)
        for name in differing:
            print(
                f"{args.directory / name} is out of date: run python -m commitbench.grafana",
                file=sys.stderr,
            )
        return 1 if differing else 0
    for path in write(args.directory):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
