"""Load + transform wall time and peak RSS on full-size goodbooks and a UCSD-format file.

Usage:
  python benchmarks/bench_warehouse.py goodbooks [--data DIR]        # default: generate full size
  into benchmarks/out python benchmarks/bench_warehouse.py ucsd --interactions 229000000  #
  generates the file first (shelfwise generate ucsd)
Targets (2 cores): goodbooks <= 15 s; UCSD 229M <= 10 min with peak RSS <= 12 GB.
Each step runs in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import ROOT, machine, timed

OUT = ROOT / "benchmarks" / "out"
CLI = [sys.executable, "-m", "shelfwise.cli", "-q"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("source", choices=["goodbooks", "ucsd"])
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--interactions", type=int, default=229_000_000)
    args = ap.parse_args()
    print(machine())
    if args.source == "goodbooks":
        data = args.data or OUT / "goodbooks-full"
        if not (data / "ratings.csv").exists() and args.data is None:
            wall, rss = timed(
                [
                    *CLI,
                    "generate",
                    "goodbooks",
                    "--dest",
                    str(data),
                    "--books-csv",
                    str(ROOT.parent / "shared/data/goodbooks-10k/books.csv.gz"),
                ]
            )
            print(f"generate full goodbooks: {wall:.1f}s, peak RSS {rss:.2f} GB")
        transform = ["transform"]
    else:
        data = args.data or OUT / f"ucsd-{args.interactions}"
        if not (data / "goodreads_interactions.csv").exists() and args.data is None:
            wall, rss = timed(
                [
                    *CLI,
                    "generate",
                    "ucsd",
                    "--dest",
                    str(data),
                    "--interactions",
                    str(args.interactions),
                ]
            )
            print(f"generate UCSD {args.interactions:,}: {wall:.1f}s, peak RSS {rss:.2f} GB")
        transform = ["transform", "--source", "ucsd"]
    db = OUT / f"bench-{args.source}.duckdb"
    for p in (db, Path(f"{db}.wal"), Path(f"{db}.read")):
        p.unlink(missing_ok=True)
    load_wall, load_rss = timed([*CLI, "load", args.source, str(data), "--db", str(db)])
    tr_wall, tr_rss = timed(CLI + transform + ["--db", str(db)])
    print(
        f"load: {load_wall:.1f}s (peak RSS {load_rss:.2f} GB); "
        f"transform: {tr_wall:.1f}s (peak RSS {tr_rss:.2f} GB)"
    )
    print(f"load + transform: {load_wall + tr_wall:.1f}s, peak RSS {max(load_rss, tr_rss):.2f} GB")
    timed(
        [
            *CLI,
            "sql",
            "select raw_table, rows_read, rows_rejected from raw.load_log",
            "--db",
            str(db),
        ]
    )
    timed(
        [
            *CLI,
            "sql",
            """select 'before filters' as stage, count(distinct user_key) users,
                      count(distinct book_key) books, count(*) ratings
               from core.ratings where rating is not null
               union all select 'after filters', (select count(*) from matrix.users),
                      (select count(*) from matrix.books), (select count(*) from matrix.ratings)""",
            "--db",
            str(db),
        ]
    )


if __name__ == "__main__":
    main()
