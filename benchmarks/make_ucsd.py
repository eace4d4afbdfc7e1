"""Write a synthetic UCSD Goodreads dump (229M interactions by default) and print wall time and peak
RSS."""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth.ucsd import generate_ucsd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dest", type=Path, default=Path("benchmarks/out/ucsd"), help="output folder"
    )
    parser.add_argument(
        "--interactions", type=int, default=229_000_000, help="interaction rows to write"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    counts = generate_ucsd(
        args.dest, n_interactions=args.interactions, seed=args.seed, progress=not args.no_progress
    )
    seconds = time.perf_counter() - start
    for name, rows in counts.items():
        print(f"{name}: {rows:,} rows")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"wall time: {seconds:.1f} s ({args.interactions / seconds / 1e6:.2f} M interactions/s), "
        f"peak RSS {peak_gb:.2f} GB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
