"""Run the benchmarks in dependency order (what `make bench` runs) and summarise their exit codes.

Usage: python benchmarks/run_all.py [--only NAME ...] [--subset DIR] [--ucsd]

Steps, each its own process so its timings and peak RSS are its own:
  warehouse   load + transform of full-size goodbooks (generated into benchmarks/out on first run)
  refresh     full refresh from those raw files into benchmarks/out/refresh-full.duckdb (the
              registry's default kinds), with a per-phase breakdown of one more run
  kinds       fit time and peak RSS of every kind on those raw files, each in its own process
  csr         CSR from that warehouse against the tutorial's lil_matrix loop
  dashboard   server time of every page and callback on that warehouse
  neighbours  same-author share of the refreshed models' neighbours
  quality     tune, fit and evaluate every model on the real goodbooks subset (skipped when absent),
              ranking-blend configurations, and the knn neighbour check
  ucsd        229M-interaction UCSD load + transform (only with --ucsd: ~5 min and ~8 GB)

Each step prints its own figures; copy them into RESULTS.md with the machine and date.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
REFRESH_DB = OUT / "refresh-full.duckdb"


def steps(subset: Path) -> dict[str, list[str]]:
    return {
        "warehouse": ["bench_warehouse.py", "goodbooks"],
        "refresh": ["bench_refresh.py", "--db", str(REFRESH_DB), "--breakdown"],
        "kinds": ["bench_kinds.py"],
        "csr": ["bench_csr.py", "--db", str(REFRESH_DB)],
        "dashboard": ["bench_dashboard.py", "--db", str(REFRESH_DB)],
        "neighbours": [
            "bench_neighbours.py",
            "--db",
            str(REFRESH_DB),
            "--probe",
            "The Da Vinci Code",
        ],
        "quality": [
            "bench_quality.py",
            "--data",
            str(subset),
            "--out",
            str(OUT / "quality-random.md"),
        ],
        "ucsd": ["bench_warehouse.py", "ucsd"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--only", nargs="+", metavar="NAME", help="run just these steps (in the order above)"
    )
    ap.add_argument(
        "--subset",
        type=Path,
        default=HERE.parent.parent / "shared/data/goodbooks-10k-subset",
        help="goodbooks folder with real ratings for the quality step",
    )
    ap.add_argument("--ucsd", action="store_true", help="also run the 229M UCSD step")
    args = ap.parse_args()

    plan = steps(args.subset)
    chosen = [name for name in plan if name != "ucsd" or args.ucsd]
    if args.only:
        unknown = sorted(set(args.only) - set(plan))
        if unknown:
            ap.error(f"unknown step(s) {', '.join(unknown)}; steps are {', '.join(plan)}")
        chosen = [name for name in plan if name in args.only]
    OUT.mkdir(parents=True, exist_ok=True)

    results: list[tuple[str, str, float]] = []
    for name in chosen:
        if name == "quality" and not (args.subset / "ratings.csv").is_file():
            results.append((name, f"skipped: no ratings.csv in {args.subset}", 0.0))
            continue
        if name in ("csr", "dashboard", "neighbours") and not REFRESH_DB.is_file():
            results.append(
                (name, f"skipped: {REFRESH_DB.name} missing (run the refresh step)", 0.0)
            )
            continue
        print(f"\n=== {name}: {' '.join(plan[name])}", flush=True)
        start = time.perf_counter()
        code = subprocess.call(
            [sys.executable, str(HERE / plan[name][0]), *plan[name][1:]], cwd=HERE.parent
        )
        results.append((name, "ok" if code == 0 else f"exit {code}", time.perf_counter() - start))

    print("\n| step | result | wall s |\n|---|---|---|")
    for name, outcome, seconds in results:
        print(f"| {name} | {outcome} | {seconds:.0f} |")
    return (
        0
        if all(outcome == "ok" or outcome.startswith("skipped") for _, outcome, _ in results)
        else 1
    )


if __name__ == "__main__":
    sys.exit(main())
