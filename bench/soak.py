"""Soak: many paid requests through faults and a restart; nothing may be lost or paid twice.

The harness lives in ``tests/support/soak.py`` (CI runs a small version of it); this script runs it at
full size and prints the counts. Run from the repository root, as a module so the root is importable:

    python -m bench.soak [--tasks 500] [--speed 200] [--fault-rate 0.2] [--api task|clip]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import anyio

from tests.support.soak import run_soak


def main() -> None:
    """Run the soak with the command line's sizes; exit non-zero if anything was lost or paid twice."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--speed", type=float, default=200.0)
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--api", choices=["task", "clip"], default="task")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = anyio.run(
            lambda: run_soak(
                args.tasks, speed=args.speed, fault_rate=args.fault_rate, api=args.api, data_dir=Path(tmp)
            )
        )
    width = max(len(k) for k in asdict(report))
    for key, value in asdict(report).items():
        print(f"{key:<{width}}  {value}")
    sys.exit(0 if report.lost == 0 and report.duplicates == 0 else 1)


if __name__ == "__main__":
    main()
