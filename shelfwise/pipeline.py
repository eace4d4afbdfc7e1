"""Library steps the CLI calls: fit and publish a kind, evaluate, answer similar/recommend queries."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import scipy.sparse as sp

from analytics.als import fit_als
from analytics.baseline import fit_biases, fit_global_mean, fit_popularity
from analytics.factors import FactorModel
from analytics.metrics import Metric, auc_against_random, ranking_metrics, rating_metrics, top_n
from analytics.mf import fit_mf
from analytics.neighbours import (
    centroid_recommendations,
    closest_favourite,
    rank_by_similarity,
    top_k_cosine,
)
from analytics.projections import pca_2d, tsne_2d
from analytics.svd import fit_svd
from shelfwise.errors import ShelfwiseError
from shelfwise.params import FACTOR_KINDS, RATING_KINDS, ParamError, PublishConfig, as_dict
from warehouse import store

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def check_fits(kind: str, params: Any, shape: tuple[int, int]) -> None:
    """Refuse params that cannot fit a matrix of ``shape`` (the params check themselves otherwise)."""
    if kind == "svd" and params.k >= min(shape):
        raise ParamError(
            f"svd k={params.k}: must be below the matrix's smaller side, {min(shape):,}"
        )


def fit_model(
    kind: str,
    train: sp.csr_matrix,
    params: Any,
    *,
    on_iteration: Callable[[int, float], None] | None = None,
) -> FactorModel:
    """Dispatch to the pure fitting function of ``kind`` with its typed params."""
    check_fits(kind, params, train.shape)
    p = as_dict(params)
    if np.any(train.data == 0):
        # Stored zeros are missing ratings, not ratings of 0, for every kind.
        train = sp.csr_matrix(train, copy=True)
        train.eliminate_zeros()
    if kind == "baseline":
        return fit_biases(train, **p)
    if kind == "svd":
        return fit_svd(train, **p)
    if kind == "als":
        return fit_als(train, **p)
    if kind == "mf":
        return fit_mf(train, **p, on_iteration=on_iteration)
    if kind == "popularity":
        return fit_popularity(train)
    if kind == "global_mean":
        return fit_global_mean(train)
    raise ShelfwiseError(f"unknown model kind {kind!r}")


def fit_and_publish(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    params: Any,
    publish: PublishConfig,
    *,
    data: store.RatingData | None = None,
    step: Progress = lambda message: None,
    fail_before_commit: bool = False,
) -> int:
    """Fit ``kind`` on the train split, derive neighbours and 2-D maps, publish atomically.

    A fit that raises marks its run 'failed' and leaves the published run of that kind untouched.
    """
    data = data or store.read_ratings(con)
    check_fits(kind, params, data.shape)  # before the run is recorded: nothing was tried
    run_id = store.start_run(
        con, kind, data.source, {"kind": kind, **as_dict(params)}, data.fingerprint
    )
    start = time.perf_counter()
    try:
        step(
            f"{kind}: fitting on {data.train.nnz:,} ratings ({data.shape[0]:,} x {data.shape[1]:,})"
        )
        model = fit_model(
            kind,
            data.train,
            params,
            on_iteration=lambda i, r: step(f"{kind}: iteration {i}, train RMSE {r:.4f}"),
        )
        neighbours = projections = None
        if model.book_factors is not None:
            step(f"{kind}: top-{publish.neighbours} cosine neighbours")
            want_tsne = publish.tsne and model.book_factors.shape[0] > 10
            # One neighbour search serves the table and the t-SNE affinities (3 x perplexity 30).
            knn = top_k_cosine(
                model.book_factors, k=max(publish.neighbours, 90 if want_tsne else 0)
            )
            neighbours = (knn[0][:, : publish.neighbours], knn[1][:, : publish.neighbours])
            projections = {"pca": pca_2d(model.book_factors)}
            if want_tsne:
                step(f"{kind}: t-SNE map of {model.book_factors.shape[0]:,} books")
                projections["tsne"] = tsne_2d(model.book_factors, random_state=42, knn=knn)
        step(f"{kind}: publishing run {run_id}")
        store.publish_run(
            con,
            run_id,
            model,
            neighbours=neighbours,
            projections=projections,
            keep_runs=publish.keep_runs,
            seconds=time.perf_counter() - start,
            fail_before_commit=fail_before_commit,
        )
    except BaseException as exc:
        store.fail_run(con, run_id, f"{type(exc).__name__}: {exc}")
        raise
    return run_id


# ----------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class EvalRow:
    kind: str
    run_id: int
    metric: Metric


def relevant_test(test: sp.csr_matrix, threshold: float = 4.0) -> sp.csr_matrix:
    """Held-out books the user liked (rating >= threshold): the relevance set of top-N metrics."""
    rel = test.copy()
    rel.data = (rel.data >= threshold).astype(np.float32)
    rel.eliminate_zeros()
    return rel


def evaluate(
    con: duckdb.DuckDBPyConnection,
    *,
    k: int = 10,
    n_boot: int = 200,
    random_state: int = 0,
    data: store.RatingData | None = None,
    step: Progress = lambda message: None,
) -> list[EvalRow]:
    """Score the latest published run of every kind on the test split and store the metrics.

    Rating models get RMSE/MSE/MAE; every model ranks all unrated books for top-N metrics; the
    popularity and global-mean baselines are refitted on train and stored as runs of their own.
    """
    data = data or store.read_ratings(con)
    if data.test.nnz == 0:
        raise ShelfwiseError(
            "the test split is empty (the matrix was built with --test-fraction 0): nothing to evaluate on"
        )
    tu, tb = data.test.nonzero()
    truth = np.asarray(data.test[tu, tb]).ravel()
    relevant = relevant_test(data.test)
    to_read = store.read_to_read(con, data.shape)
    rows: list[EvalRow] = []
    for kind in ("global_mean", "popularity"):
        fit_and_publish(con, kind, _NoParams(), PublishConfig(tsne=False, keep_runs=1), data=data)
    for kind in ("global_mean", "popularity", *RATING_KINDS, "als"):
        run = store.latest_run(con, kind)
        if run is None:
            continue
        if run["input_fingerprint"] != data.fingerprint:
            log.warning(
                "%s run %d was fitted on another matrix build; refit it to evaluate",
                kind,
                run["run_id"],
            )
            continue
        step(f"evaluating {kind} (run {run['run_id']})")
        model = store.read_model(con, run["run_id"])
        metrics: list[Metric] = []
        if model.predicts_ratings:
            metrics += rating_metrics(
                tu, truth, model.predict(tu, tb), n_boot=n_boot, random_state=random_state
            )
        if kind != "global_mean":
            metrics += ranking_metrics(
                model.scores, data.train, relevant, k=k, n_boot=n_boot, random_state=random_state
            )
            if to_read.nnz:
                metrics.append(
                    auc_against_random(
                        model.scores, data.train, to_read, n_boot=n_boot, random_state=random_state
                    )
                )
        store.write_metrics(con, run["run_id"], metrics, split="test")
        rows += [EvalRow(kind, run["run_id"], m) for m in metrics]
    return rows


@dataclass(frozen=True)
class _NoParams:
    """Baselines without hyper-parameters."""


# ----------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class Book:
    book_idx: int
    book_key: int
    title: str | None
    authors: str | None
    score: float | None = None
    image_url: str | None = None
    goodreads_book_id: int | None = None


class TitleNotFound(ShelfwiseError):
    """No single book matches a title; ``candidates`` holds the nearest titles."""

    def __init__(self, query: str, candidates: list[str], ambiguous: bool) -> None:
        self.query = query
        self.candidates = candidates
        self.ambiguous = ambiguous
        what = "matches several books" if ambiguous else "matches no book in the model"
        hint = f"; did you mean: {'; '.join(candidates)}" if candidates else ""
        super().__init__(f"title {query!r} {what}{hint}")


def run_for(con: duckdb.DuckDBPyConnection, kind: str) -> int:
    run = store.latest_run(con, kind)
    if run is None:
        raise ShelfwiseError(f"no published {kind} model: run `shelfwise fit {kind}` first")
    return int(run["run_id"])


BOOK_COLUMNS = "rb.book_idx, rb.book_key, b.title, b.authors, b.image_url, b.goodreads_book_id"


def resolve_title(con: duckdb.DuckDBPyConnection, run_id: int, query: str) -> Book:
    """The one book of the run whose title matches ``query`` case-insensitively.

    Tries, in order: the full title, the title without its series suffix "(Series, #n)", then a
    substring. A tie among the most-rated is ambiguous; no match lists the nearest titles.
    """
    q = query.strip().lower()
    if not q:
        raise ShelfwiseError("empty title")
    for condition in (
        "lower(b.title) = $q",
        "lower(trim(regexp_replace(b.title, '\\s*\\([^)]*#[^)]*\\)\\s*$', ''))) = $q",
        "contains(lower(b.title), $q)",
    ):
        rows = con.execute(
            f"""select {BOOK_COLUMNS}, b.ratings_count from models.run_books as rb
                inner join core.books as b on b.book_key = rb.book_key
                where rb.run_id = $run_id and {condition}
                order by b.ratings_count desc nulls last, rb.book_idx limit 10""",
            {"run_id": run_id, "q": q},
        ).fetchall()
        if len(rows) == 1 or (rows and condition.startswith("lower(b.title) =")):
            # Several books share an exact title: the most-rated is the one people mean,
            # unless two are equally rated.
            if len(rows) > 1 and rows[0][-1] == rows[1][-1]:
                raise TitleNotFound(query, [_label(r) for r in rows], ambiguous=True)
            return Book(
                *rows[0][:2],
                rows[0][2],
                rows[0][3],
                image_url=rows[0][4],
                goodreads_book_id=rows[0][5],
            )
        if len(rows) > 1:
            raise TitleNotFound(query, [_label(r) for r in rows], ambiguous=True)
    near = con.execute(
        """select b.title, b.authors from models.run_books as rb
           inner join core.books as b on b.book_key = rb.book_key
           where rb.run_id = $run_id and b.title is not null
           order by jaro_winkler_similarity(lower(b.title), $q) desc, b.ratings_count desc nulls last
           limit 5""",
        {"run_id": run_id, "q": q},
    ).fetchall()
    raise TitleNotFound(query, [f"{t} ({a})" for t, a in near], ambiguous=False)


def _label(row: tuple) -> str:
    return f"{row[2]} ({row[3]})"


def books_by_idx(
    con: duckdb.DuckDBPyConnection, run_id: int, idx: np.ndarray, scores: np.ndarray | None = None
) -> list[Book]:
    """Book rows for indices of a run, in the given order."""
    if len(idx) == 0:
        return []
    rows = con.execute(
        f"""select {BOOK_COLUMNS} from models.run_books as rb
            left join core.books as b on b.book_key = rb.book_key
            where rb.run_id = ? and list_contains(?, rb.book_idx)""",
        [run_id, [int(i) for i in idx]],
    ).fetchall()
    by_idx = {r[0]: r for r in rows}
    out = []
    for pos, i in enumerate(idx):
        r = by_idx[int(i)]
        out.append(
            Book(r[0], r[1], r[2], r[3], None if scores is None else float(scores[pos]), r[4], r[5])
        )
    return out


def _book_vectors(con: duckdb.DuckDBPyConnection, kind: str) -> tuple[int, np.ndarray]:
    if kind not in FACTOR_KINDS:
        raise ShelfwiseError(f"{kind} has no book vectors; use one of {', '.join(FACTOR_KINDS)}")
    run_id = run_for(con, kind)
    model = store.read_model(con, run_id)
    assert model.book_factors is not None
    return run_id, model.book_factors


def similar(
    con: duckdb.DuckDBPyConnection, title: str, *, kind: str = "mf", n: int = 10
) -> tuple[Book, list[Book]]:
    """The book matching ``title`` and its ``n`` nearest books by cosine under ``kind``."""
    run_id, vectors = _book_vectors(con, kind)
    book = resolve_title(con, run_id, title)
    idx, scores = rank_by_similarity(
        vectors[book.book_idx], vectors, n=n, exclude=np.array([book.book_idx])
    )
    return book, books_by_idx(con, run_id, idx, scores)


def recommend_for_books(
    con: duckdb.DuckDBPyConnection,
    titles: list[str],
    *,
    kind: str = "mf",
    n: int = 10,
    exclude: list[int] | None = None,
) -> tuple[list[Book], list[Book], list[int]]:
    """Centroid recommendations for favourite titles (never the favourites, nor ``exclude`` keys).

    Returns (favourites, recommendations, index into favourites of each recommendation's closest).
    """
    run_id, vectors = _book_vectors(con, kind)
    favourites = [resolve_title(con, run_id, t) for t in titles]
    fav_idx = np.array([b.book_idx for b in favourites])
    banned = fav_idx
    if exclude:
        keys = con.execute(
            "select book_idx from models.run_books where run_id = ? and list_contains(?, book_key)",
            [run_id, exclude],
        ).fetchall()
        banned = np.concatenate([fav_idx, np.array([k[0] for k in keys], dtype=np.int64)])
    idx, scores = centroid_recommendations(vectors, fav_idx, n=n + len(banned))
    keep = ~np.isin(idx, banned)
    idx, scores = idx[keep][:n], scores[keep][:n]
    closest = closest_favourite(vectors, idx, fav_idx) if len(idx) else np.array([], dtype=int)
    return favourites, books_by_idx(con, run_id, idx, scores), [int(c) for c in closest]


def recommend_for_user(
    con: duckdb.DuckDBPyConnection, user_key: int, *, kind: str = "mf", n: int = 10
) -> list[Book]:
    """Top-``n`` books for a user under ``kind``, never one the user has rated (train or test)."""
    run_id = run_for(con, kind)
    row = con.execute(
        "select user_idx from models.run_users where run_id = ? and user_key = ?",
        [run_id, user_key],
    ).fetchall()
    if not row:
        raise ShelfwiseError(
            f"user {user_key} is not in the {kind} model (filtered out or unknown)"
        )
    user_idx = int(row[0][0])
    model = store.read_model(con, run_id)
    rated = con.execute(
        """select rb.book_idx from core.ratings as r
           inner join models.run_books as rb on rb.run_id = ? and rb.book_key = r.book_key
           inner join models.runs as run on run.run_id = rb.run_id and run.source = r.source
           where r.user_key = ?""",
        [run_id, user_key],
    ).fetchall()
    n_books = len(model.book_bias) if model.book_bias is not None else model.book_factors.shape[0]
    rated_idx = np.array([r[0] for r in rated], dtype=np.int64)
    exclude = sp.csr_matrix(
        (np.ones(len(rated_idx)), (np.zeros(len(rated_idx), dtype=np.int64), rated_idx)),
        shape=(1, n_books),
    )
    scores = model.scores(np.array([user_idx]))
    top = top_n(scores, exclude, np.array([0]), n)[0]
    top = top[np.isfinite(scores[0, top])]
    return books_by_idx(con, run_id, top, scores[0, top])
