"""Reader fold-in: quality against trained users, and the latency of one reader.

Quality (issue 12): every user of the test split is folded into the published als and mf runs
from their training ratings alone (as if they were a new reader who exported exactly those
books), then scored on their held-out ratings exactly as `evaluate` scores trained users: mf's
RMSE over every test rating, als's NDCG@10 over users with a held-out 4 or 5. The figures are
compared with the trained runs' stored metrics and 95% intervals (models.metrics).

Latency: one reader with 500 rated books, end to end through the serving API (read the run,
fold in, score every book, pick 20 with reasons) and the fold-in alone, median of repeats.

    python benchmarks/bench_foldin.py --db WAREHOUSE [--latency-db FULL_GOODBOOKS_WAREHOUSE]

Both warehouses must hold published, evaluated als and mf runs fitted after reader fold-in
landed (an older als run lacks the BM25 statistics a fold-in needs: refit it).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from analytics.foldin import Feedback, fold_in_als, fold_in_mf
from analytics.metrics import per_user_ranking, relevant_test
from base.registry import REGISTRY, spec
from shelfwise import serving
from warehouse import store
from warehouse.db import open_for_reading


def _params(con, run_id: int, kind: str):
    return serving._run_params(con, run_id, kind)


def _folder(train, fold, model, params, cache: dict):
    """user -> that user folded in from their training row (computed once per user)."""

    def folded(u: int):
        if u not in cache:
            row = train[u]
            fb = Feedback(row.indices.astype(np.int64), row.data.astype(np.float64))
            cache[u] = fold(model, fb, params).model
        return cache[u]

    return folded


def quality(db: Path) -> list[str]:
    out = []
    with open_for_reading(db) as con:
        data = store.read_ratings(con)
        for kind, fold in (("mf", fold_in_mf), ("als", fold_in_als)):
            run_id = serving.run_for(con, kind)
            model = store.read_model(con, run_id, users=False)
            params = _params(con, run_id, kind)
            stored = dict(
                (m, (v, lo, hi))
                for m, v, lo, hi in con.execute(
                    """select metric, value, ci_low, ci_high from models.metrics
                       where run_id = ? and split = 'test' and (metric = 'rmse' or
                       (metric = 'ndcg' and k = 10))""",
                    [run_id],
                ).fetchall()
            )
            start = time.perf_counter()
            cache: dict[int, object] = {}
            if kind == "als":  # Y^T Y is the same for every reader: computed once
                y = model.book_factors.astype(np.float64)
                fold = functools.partial(fold_in_als, gram=y.T @ y)
            folded = _folder(data.train, fold, model, params, cache)

            if kind == "mf":
                test = sp.csr_matrix(data.test)
                sq, n = 0.0, 0
                for u in np.flatnonzero(np.diff(test.indptr)):
                    books = test.indices[test.indptr[u] : test.indptr[u + 1]]
                    truth = test.data[test.indptr[u] : test.indptr[u + 1]]
                    pred = folded(int(u)).predict(np.zeros(len(books), int), books)
                    sq += float(((pred - truth) ** 2).sum())
                    n += len(books)
                value, metric = float(np.sqrt(sq / n)), "rmse"
            else:

                def scores(users: np.ndarray, folded=folded) -> np.ndarray:
                    return np.vstack([folded(int(u)).scores(np.array([0])) for u in users])

                ranked = per_user_ranking(scores, data.train, relevant_test(data.test))
                value, metric = float(ranked.ndcg.mean()), "ndcg"
            seconds = time.perf_counter() - start
            trained, lo, hi = stored[metric]
            inside = "inside" if lo <= value <= hi else "OUTSIDE"
            out.append(
                f"| {kind} | {metric} | {trained:.4f} [{lo:.4f}, {hi:.4f}] | {value:.4f} | "
                f"{inside} | {len(cache):,} users, {seconds:.0f} s |"
            )
            print(out[-1], flush=True)
    return out


def latency(db: Path, *, books: int = 500, repeats: int = 7) -> list[str]:
    out = []
    with open_for_reading(db) as con:
        rng = np.random.default_rng(0)
        keys = [k for (k,) in con.execute("select book_key from matrix.books").fetchall()]
        chosen = rng.choice(keys, size=books, replace=False)
        shelf = pl.DataFrame(
            {
                "book_key": [int(k) for k in chosen],
                "rating": rng.integers(1, 6, size=books).tolist(),
                "shelf": ["read"] * books,
            },
            schema={"book_key": pl.Int64, "rating": pl.Int8, "shelf": pl.String},
        )
        for kind, fold in (("als", fold_in_als), ("mf", fold_in_mf)):
            run_id = serving.run_for(con, kind)
            model = store.read_model(con, run_id, users=False)
            params = _params(con, run_id, kind)
            fb = serving.reader_feedback(con, run_id, shelf)
            alone, whole = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                fold(model, fb, params).model.scores(np.array([0]))
                alone.append(time.perf_counter() - start)
                start = time.perf_counter()
                serving.recommend_for_shelf(con, shelf, kind=kind, n=20)
                whole.append(time.perf_counter() - start)
            n_books = model.book_factors.shape[0]
            out.append(
                f"| {kind} | {n_books:,} books, reader of {books} | "
                f"{statistics.median(alone) * 1000:.0f} ms | "
                f"{statistics.median(whole) * 1000:.0f} ms |"
            )
            print(out[-1], flush=True)
        # Every other kind that takes a reader, end to end (its fold-in is inside serving).
        published = {r[0] for r in con.execute("select kind from main.latest_runs").fetchall()}
        for kind in (k for k in REGISTRY if spec(k).fold_in and k not in ("als", "mf")):
            if kind not in published:
                continue
            whole = []
            for _ in range(repeats):
                start = time.perf_counter()
                serving.recommend_for_shelf(con, shelf, kind=kind, n=20)
                whole.append(time.perf_counter() - start)
            n_books = serving.run_books(con, serving.run_for(con, kind))
            out.append(
                f"| {kind} | {n_books:,} books, reader of {books} | (inside serving) | "
                f"{statistics.median(whole) * 1000:.0f} ms |"
            )
            print(out[-1], flush=True)
    return out


def main() -> None:
    # As serving does (shelfwise.serving.fold_in_run): small solves, one BLAS thread.
    threadpool_limits(1, "blas")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", type=Path, required=True, help="Evaluated warehouse for quality.")
    ap.add_argument("--latency-db", type=Path, default=None, help="Warehouse for latency.")
    args = ap.parse_args()
    print("| kind | metric | trained [95%] | folded in | | |")
    print("|---|---|---|---|---|---|")
    quality(args.db)
    if args.latency_db:
        print("| kind | size | fold-in + scores (median) | recommend_for_shelf with reasons |")
        print("|---|---|---|---|")
        latency(args.latency_db)


if __name__ == "__main__":
    main()
