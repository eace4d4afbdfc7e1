"""CSR straight from the warehouse against the UCSD tutorial's lil_matrix loop, on the same ratings.

Usage: python benchmarks/bench_csr.py --db var/full.duckdb [--repeats 5]
Prints median seconds of each (ours after one warm-up read) and the speed-up. The tutorial went from
a data frame of (user id, book id, rating) rows to a matrix by building id -> index dicts and then
filling a scipy lil_matrix one row at a time (`for _, row in df.iterrows(): R[umap[row.user],
bmap[row.book]] = row.rating`). We reproduce that loop with polars' named-row iterator over the same
filtered ratings, already in memory (reading them is not timed), against our path: matrix.ratings ->
numpy -> CSR, query included.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.sparse as sp

from warehouse.db import connect
from warehouse.store import read_ratings


def tutorial_lil(frame) -> sp.csr_matrix:
    user_map = {u: i for i, u in enumerate(sorted(frame["user_key"].unique().to_list()))}
    book_map = {b: i for i, b in enumerate(sorted(frame["book_key"].unique().to_list()))}
    m = sp.lil_matrix((len(user_map), len(book_map)), dtype=np.float32)
    for row in frame.iter_rows(named=True):
        m[user_map[row["user_key"]], book_map[row["book_key"]]] = row["rating"]
    return m.tocsr()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    con = connect(args.db, read_only=True)
    read_ratings(con)  # warm-up: the first read also pages the table in from disk
    ours = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        data = read_ratings(con)
        ours.append(time.perf_counter() - t)
    n = data.train.nnz + data.test.nnz
    frame = con.sql("select user_key, book_key, rating from matrix.filtered_ratings").pl()
    lil = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        built = tutorial_lil(frame)
        lil.append(time.perf_counter() - t)
    assert built.nnz == n, "the tutorial loop must build the same matrix"
    print(f"ratings: {n:,}; warehouse -> CSR (incl. query): median {statistics.median(ours):.3f}s")
    print(f"tutorial lil_matrix loop: median {statistics.median(lil):.1f}s")
    print(f"speed-up: {statistics.median(lil) / statistics.median(ours):.0f}x")


if __name__ == "__main__":
    main()
