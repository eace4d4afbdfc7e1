"""Serving: similar books, recommendations and their reasons, read from published runs.

The one home of every read the product answers questions with. Functions here take an open
connection (the dashboard reads several answers from one snapshot); :class:`Warehouse` wraps them
as the public Python API, each call opening the latest read snapshot and returning a polars frame:

>>> import shelfwise
>>> wh = shelfwise.open("var/shelfwise.duckdb")
>>> wh.similar("Kafka on the Shore", model="als")

The CLI, the dashboard and the digest call this module like any user would.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from analytics.foldin import Feedback, FoldIn, fold_in_blend
from analytics.metrics import top_n
from analytics.neighbours import (
    centroid_recommendations,
    closest_favourite,
    normalise_rows,
    rank_by_similarity,
)
from analytics.weights import weights_matrix
from base.config import default_db_path
from base.errors import ShelfwiseError
from base.registry import kinds, make_params, preferred, spec
from warehouse import store
from warehouse.db import guard_user_query, open_for_reading, require_warehouse
from warehouse.readers import IMPLICIT_SHELVES, read_shelf

# ----------------------------------------------------------------------------- books and runs


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
    """The latest published run of ``kind`` (main.latest_runs), or a one-line error."""
    spec(kind)  # an unknown kind is its own error
    run = store.latest_run(con, kind)
    if run is None:
        raise ShelfwiseError(f"no published {kind} model: run `shelfwise fit {kind}` first")
    return int(run["run_id"])


def default_kind(con: duckdb.DuckDBPyConnection, task: str) -> str:
    """The best published kind for ``task`` (base.registry.PREFERRED: "ratings", "ranking" or
    "neighbours"), or a one-line error when none is published."""
    published = [r[0] for r in con.execute("select kind from main.latest_runs").fetchall()]
    kind = preferred(task, published)
    if kind is None:
        raise ShelfwiseError(
            f"no published model for {task}: run `shelfwise refresh` (or `shelfwise fit KIND`)"
        )
    return kind


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
           order by jaro_winkler_similarity(lower(b.title), $q) desc,
               b.ratings_count desc nulls last
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


def book_indices(
    con: duckdb.DuckDBPyConnection, run_id: int, book_keys: Sequence[int]
) -> dict[int, int]:
    """book_key -> book_idx in the run, for the keys the run has."""
    if not book_keys:
        return {}
    found = con.execute(
        "select book_key, book_idx from models.run_books where run_id = $run "
        "and list_contains($keys, book_key)",
        {"run": run_id, "keys": [int(k) for k in book_keys]},
    ).fetchall()
    return {int(k): int(i) for k, i in found}


def book_vectors(con: duckdb.DuckDBPyConnection, run_id: int) -> np.ndarray:
    """The run's book factors, float32 shape (n_books, k), row i = book_idx i."""
    vectors = store.read_vectors(con, "models.book_factors", run_id)
    if vectors is None:
        raise ShelfwiseError(f"run {run_id} has no book factors")
    return vectors


def neighbour_kinds() -> tuple[str, ...]:
    """Kinds with per-book neighbours: cosine of book vectors, or heaviest item-item weights."""
    return kinds(neighbours=True)


def _neighbour_run(con: duckdb.DuckDBPyConnection, kind: str) -> int:
    if not spec(kind).neighbours:
        raise ShelfwiseError(
            f"{kind} has no book vectors or weights; use one of {', '.join(neighbour_kinds())}"
        )
    return run_for(con, kind)


def run_books(con: duckdb.DuckDBPyConnection, run_id: int) -> int:
    """How many books the run was fitted on (its book index runs 0..n-1)."""
    return int(
        con.execute("select count(*) from models.run_books where run_id = ?", [run_id]).fetchall()[
            0
        ][0]
    )


def _one_row(
    n_rows: int, n_books: int, row: int, books: np.ndarray, values: np.ndarray
) -> sp.csr_matrix:
    """A (n_rows, n_books) matrix holding one user's ``values`` at ``books`` in row ``row``."""
    books = np.asarray(books, dtype=np.int64)
    return sp.csr_matrix(
        (np.asarray(values, dtype=np.float32), (np.full(len(books), row), books)),
        shape=(n_rows, n_books),
    )


# ----------------------------------------------------------------------------- similar books


def similar(
    con: duckdb.DuckDBPyConnection, title: str, *, kind: str | None = None, n: int = 10
) -> tuple[Book, list[Book]]:
    """The book matching ``title`` and its ``n`` nearest books under ``kind``.

    Kinds with book vectors rank every book by cosine; kinds with item-item weights (knn, EASE)
    list the book's stored neighbours, heaviest first (at most the ``--neighbours`` published).
    """
    kind = kind or default_kind(con, "neighbours")
    run_id = _neighbour_run(con, kind)
    book = resolve_title(con, run_id, title)
    if spec(kind).book_vectors:
        vectors = book_vectors(con, run_id)
        idx, scores = rank_by_similarity(
            vectors[book.book_idx], vectors, n=n, exclude=np.array([book.book_idx])
        )
        return book, books_by_idx(con, run_id, idx, scores)
    found = con.execute(
        """select neighbour_idx, score from models.book_neighbours
           where run_id = ? and book_idx = ? order by rank limit ?""",
        [run_id, book.book_idx, n],
    ).fetchall()
    idx = np.array([r[0] for r in found], dtype=np.int64)
    return book, books_by_idx(con, run_id, idx, np.array([r[1] for r in found]))


# ----------------------------------------------------------------------------- recommendations


@dataclass(frozen=True)
class Recommendation:
    """A recommended book and the books that explain it, most similar first.

    ``because`` holds (title, the reader's rating or None for a favourite without one).
    """

    book: Book
    because: tuple[tuple[str, float | None], ...]
    # The books of ``because`` themselves, where the caller needs more than their titles.
    because_books: tuple[Book, ...] = ()


def favourites_recommend(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    kind: str,
    favourites: np.ndarray,
    *,
    n: int,
    exclude_keys: Sequence[int] = (),
) -> tuple[list[Book], list[int]]:
    """Books for a set of favourite books (never a favourite nor a book of ``exclude_keys``).

    With book vectors: nearest the centroid of the favourites' unit vectors (the UCSD tutorial's
    recipe). With item-item weights: each book scored by its summed weight to the favourites,
    as the model scores a reader who has exactly these books. Returns the books, best first,
    and for each the position in ``favourites`` of the favourite closest to it (most
    cosine-similar, or heaviest weight).
    """
    favourites = np.asarray(favourites, dtype=np.int64)
    extra = np.array(list(book_indices(con, run_id, exclude_keys).values()), dtype=np.int64)
    if spec(kind).book_vectors:
        vectors = book_vectors(con, run_id)
        idx, scores = centroid_recommendations(vectors, favourites, n=n, exclude=extra)
        closest = closest_favourite(vectors, idx, favourites) if len(idx) else []
        return books_by_idx(con, run_id, idx, scores), [int(c) for c in closest]
    n_books = run_books(con, run_id)
    history = _one_row(1, n_books, 0, favourites, np.ones(len(favourites)))
    model = store.read_model(con, run_id).with_history(history)
    scores = model.scores(np.array([0]))
    banned = np.concatenate([favourites, extra])
    scores[0, banned] = -np.inf
    idx, values = _top(scores[0], n)
    w = weights_matrix(model.neighbours, model.weights, n_books)[idx][:, favourites].toarray()
    closest = w.argmax(axis=1) if len(idx) else []
    return books_by_idx(con, run_id, idx, values), [int(c) for c in closest]


def _top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` highest finite scores (positive for weights), best first."""
    finite = np.flatnonzero(np.isfinite(scores))
    order = finite[np.argsort(-scores[finite], kind="stable")][:n]
    return order.astype(np.int64), scores[order]


def recommend_for_books(
    con: duckdb.DuckDBPyConnection,
    titles: list[str],
    *,
    kind: str | None = None,
    n: int = 10,
    exclude: Sequence[int] = (),
) -> tuple[list[Book], list[Book], list[int]]:
    """Recommendations for favourite titles (never the favourites, nor ``exclude`` keys).

    Returns (favourites, recommendations, index into favourites of each recommendation's closest).
    """
    kind = kind or default_kind(con, "neighbours")
    run_id = _neighbour_run(con, kind)
    favourites = [resolve_title(con, run_id, t) for t in titles]
    fav_idx = np.array([b.book_idx for b in favourites], dtype=np.int64)
    books, closest = favourites_recommend(con, run_id, kind, fav_idx, n=n, exclude_keys=exclude)
    return favourites, books, closest


def recommend_for_keys(
    con: duckdb.DuckDBPyConnection, run_id: int, book_keys: Sequence[int], n: int
) -> tuple[list[Book], list[Recommendation]]:
    """Recommendations for favourites given by key (two books sharing a title are never
    confused); keys the run lacks are left out. Returns (favourites found in the run,
    recommendations each explained by its closest favourite)."""
    idx_of = book_indices(con, run_id, book_keys)
    keys = [k for k in book_keys if k in idx_of]
    if not keys:
        return [], []
    kind = _kind_of(con, run_id)
    fav_idx = np.array([idx_of[k] for k in keys], dtype=np.int64)
    favourites = books_by_idx(con, run_id, fav_idx)
    books, closest = favourites_recommend(con, run_id, kind, fav_idx, n=n)
    return favourites, [
        Recommendation(b, ((favourites[c].title or "", None),))
        for b, c in zip(books, closest, strict=True)
    ]


def _kind_of(con: duckdb.DuckDBPyConnection, run_id: int) -> str:
    found = con.execute("select kind from models.runs where run_id = ?", [run_id]).fetchall()
    if not found:
        raise ShelfwiseError(f"no run {run_id}")
    return str(found[0][0])


def _user_idx(con: duckdb.DuckDBPyConnection, run_id: int, user_key: int, kind: str) -> int:
    row = con.execute(
        "select user_idx from models.run_users where run_id = ? and user_key = ?",
        [run_id, user_key],
    ).fetchall()
    if not row:
        raise ShelfwiseError(
            f"user {user_key} is not in the {kind} model (filtered out or unknown)"
        )
    return int(row[0][0])


def _rated(con: duckdb.DuckDBPyConnection, run_id: int, user_key: int) -> list[tuple]:
    """(book_idx, title, rating) of every book the user rated in the run's source (train or
    test)."""
    return con.execute(
        """select rb.book_idx, b.title, r.rating
           from core.ratings as r
           inner join models.run_books as rb on rb.run_id = $run and rb.book_key = r.book_key
           left join core.books as b on b.book_key = r.book_key
           where r.user_key = $user and r.rating is not null
               and r.source = (select source from models.runs where run_id = $run)""",
        {"run": run_id, "user": int(user_key)},
    ).fetchall()


def recommend_for_user(
    con: duckdb.DuckDBPyConnection, user_key: int, *, kind: str | None = None, n: int = 10
) -> list[Book]:
    """Top-``n`` books for a user under ``kind``, never one the user has rated (train or test).

    Kinds that score through item-item weights draw on every rating the user has (train and
    test): a reader's whole shelf is what a recommendation should know.
    """
    kind = kind or default_kind(con, "ranking")
    run_id = run_for(con, kind)
    user_idx, history, rated = _user_history(con, run_id, user_key, kind)
    n_books = history.shape[1]
    rated_idx = np.array([r[0] for r in rated], dtype=np.int64)
    model = store.read_model(con, run_id).with_history(history)
    exclude = _one_row(1, n_books, 0, rated_idx, np.ones(len(rated_idx)))
    scores = model.scores(np.array([user_idx]))
    top = top_n(scores, exclude, np.array([0]), n)[0]
    top = top[np.isfinite(scores[0, top])]
    return books_by_idx(con, run_id, top, scores[0, top])


def _user_history(
    con: duckdb.DuckDBPyConnection, run_id: int, user_key: int, kind: str
) -> tuple[int, sp.csr_matrix, list[tuple]]:
    """(user_idx, every rating of the user as a (n_users, n_books) matrix, the rated rows)."""
    user_idx = _user_idx(con, run_id, user_key, kind)
    n_users = int(
        con.execute("select count(*) from models.run_users where run_id = ?", [run_id]).fetchall()[
            0
        ][0]
    )
    rated = _rated(con, run_id, user_key)
    books = np.array([r[0] for r in rated], dtype=np.int64)
    history = _one_row(n_users, run_books(con, run_id), user_idx, books, [r[2] for r in rated])
    return user_idx, history, rated


def predict_rating(
    con: duckdb.DuckDBPyConnection, user_key: int, book_key: int, *, kind: str | None = None
) -> float:
    """The rating ``kind`` predicts the user would give the book (1 to 5).

    Kinds that score through item-item weights draw on every rating the user has; docs/models.md
    shows the same prediction for knn as one SQL query over ``main.book_weights``.
    """
    kind = kind or default_kind(con, "ratings")
    if not spec(kind).predicts_ratings:
        raise ShelfwiseError(f"{kind} ranks books; it does not predict ratings")
    run_id = run_for(con, kind)
    book_idx = book_indices(con, run_id, [book_key]).get(int(book_key))
    if book_idx is None:
        raise ShelfwiseError(f"book {book_key} is not in the {kind} model")
    user_idx, history, _ = _user_history(con, run_id, user_key, kind)
    model = store.read_model(con, run_id).with_history(history)
    return float(model.predict(np.array([user_idx]), np.array([book_idx]))[0])


def explain_for_user(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    user_key: int,
    n: int,
    *,
    support: int = 3,
) -> list[Recommendation]:
    """The user's top-``n`` books under ``kind`` (:func:`recommend_for_user`), each with the
    ``support`` rated books that explain it best: the most cosine-similar (book vectors) or the
    heaviest weights toward it (knn, EASE).

    With book vectors the reasons come from the books the user liked (rated 4 or 5) when there
    are enough of them: a disliked book near a recommendation explains it badly. With weights
    they are the terms of the score itself (every rated book counts). Blends give no reasons.
    """
    books = recommend_for_user(con, user_key, kind=kind, n=n)
    run_id = run_for(con, kind)
    rated = _rated(con, run_id, user_key)
    entry = spec(kind)
    liked = [r for r in rated if r[2] >= 4]
    if len(liked) >= support and entry.book_vectors:
        rated = liked
    if not books or not rated or not entry.neighbours:
        return [Recommendation(b, ()) for b in books]
    rated_idx = np.array([r[0] for r in rated], dtype=np.int64)
    rec_idx = np.array([b.book_idx for b in books])
    if entry.book_vectors:
        unit = normalise_rows(book_vectors(con, run_id))
        affinity = unit[rec_idx] @ unit[rated_idx].T  # (n_recs, n_rated)
    else:
        neighbours, weights = store.read_weights(con, run_id)
        matrix = weights_matrix(neighbours, weights, neighbours.shape[0])
        affinity = matrix[rec_idx][:, rated_idx].toarray()
    out = []
    for b, row in zip(books, affinity, strict=True):
        best = [
            i for i in np.argsort(-row, kind="stable")[:support] if row[i] > 0 or entry.book_vectors
        ]
        out.append(Recommendation(b, tuple((rated[i][1] or "", float(rated[i][2])) for i in best)))
    return out


# ----------------------------------------------------------------------------- readers


def _run_params(con: duckdb.DuckDBPyConnection, run_id: int, kind: str) -> Any:
    stored = json.loads(
        con.execute("select params from models.runs where run_id = ?", [run_id]).fetchall()[0][0]
    )
    return make_params(kind, {k: v for k, v in stored.items() if k != "kind"})


def reader_feedback(
    con: duckdb.DuckDBPyConnection, run_id: int, shelf: pl.DataFrame, *, to_read: bool = False
) -> Feedback:
    """A reader's matched books in the run's index space.

    Rated books are explicit feedback; ``read`` and ``currently-reading`` without a rating are
    unrated positives; ``to-read`` counts only with ``to_read``; other custom shelves do not.
    """
    matched = shelf.filter(pl.col("book_key").is_not_null())
    idx_of = book_indices(con, run_id, matched["book_key"].to_list())
    books, ratings = [], []
    for row in matched.iter_rows(named=True):
        idx = idx_of.get(int(row["book_key"]))
        if idx is None or idx in books:
            continue
        if row["rating"] is not None:
            books.append(idx)
            ratings.append(float(row["rating"]))
        elif row["shelf"] in IMPLICIT_SHELVES or (to_read and row["shelf"] == "to-read"):
            books.append(idx)
            ratings.append(float("nan"))
    order = np.argsort(np.isnan(ratings), kind="stable")  # rated books first
    return Feedback(
        np.asarray(books, dtype=np.int64)[order], np.asarray(ratings, dtype=np.float64)[order]
    )


def fold_in_run(
    con: duckdb.DuckDBPyConnection, kind: str, shelf: pl.DataFrame, *, to_read: bool = False
) -> tuple[int, FoldIn]:
    """The reader of ``shelf`` folded into the latest run of ``kind``, from its tables alone.

    BLAS is held to one thread: a fold-in is a few small solves, which threads only slow down
    (ten times, measured on a busy 2-core machine).
    """
    with threadpool_limits(1, "blas"):
        return _fold_in_run(con, kind, shelf, to_read=to_read)


def _fold_in_run(
    con: duckdb.DuckDBPyConnection, kind: str, shelf: pl.DataFrame, *, to_read: bool = False
) -> tuple[int, FoldIn]:
    """:func:`fold_in_run` without the thread limit."""
    entry = spec(kind)
    if entry.fold_in is None:
        raise ShelfwiseError(f"{kind} cannot take a new reader")
    run_id = run_for(con, kind)
    feedback = reader_feedback(con, run_id, shelf, to_read=to_read)
    if len(feedback.books) == 0:
        raise ShelfwiseError(
            f"none of the reader's books counts for the {kind} model (not in its matrix, or only "
            "on shelves that do not count: add --to-read include to count to-read)"
        )
    model = store.read_model(con, run_id, users=False)
    if entry.blend:
        parts = []
        for component, component_run in zip(
            model.info["components"], model.info["component_runs"], strict=True
        ):
            part = store.read_model(con, int(component_run), users=False)
            fold = _fold_function(component)
            parts.append(fold(part, feedback, _run_params(con, int(component_run), component)))
        return run_id, fold_in_blend(model, parts)
    params = _run_params(con, run_id, kind)
    if kind == "als" and params.weighting == "bm25" and "bm25" not in model.info:
        raise ShelfwiseError("this als run predates reader fold-in: refit it (`shelfwise fit als`)")
    return run_id, _fold_function(kind)(model, feedback, params)


def _fold_function(kind: str) -> Any:
    module, _, name = (spec(kind).fold_in or "").partition(":")
    return getattr(importlib.import_module(module), name)


def recommend_for_shelf(
    con: duckdb.DuckDBPyConnection,
    shelf: pl.DataFrame,
    *,
    kind: str | None = None,
    n: int = 20,
    to_read: bool = False,
    support: int = 3,
) -> list[Recommendation]:
    """Top-``n`` books for a reader's matched shelf (warehouse.readers), never a book already on
    any of their shelves, each with the ``support`` books of theirs that contributed most to its
    score (the largest terms of the score's decomposition: exact for every kind)."""
    kind = kind or default_kind(con, "ranking")
    run_id, folded = fold_in_run(con, kind, shelf, to_read=to_read)
    on_shelves = list(book_indices(con, run_id, shelf["book_key"].drop_nulls().to_list()).values())
    scores = folded.model.scores(np.array([0]))
    scores[0, np.asarray(on_shelves, dtype=np.int64)] = -np.inf
    idx, values = _top(scores[0], n)
    books = books_by_idx(con, run_id, idx, values)
    own = {b.book_idx: b for b in books_by_idx(con, run_id, folded.feedback.books)}
    terms = folded.contributions(idx) if len(idx) else np.zeros((0, len(folded.feedback.books)))
    out = []
    for book, row in zip(books, terms, strict=True):
        best = [j for j in np.argsort(-row, kind="stable")[:support] if row[j] > 0]
        because = tuple(
            (
                str(own[int(folded.feedback.books[j])].title or ""),
                None if np.isnan(folded.feedback.ratings[j]) else float(folded.feedback.ratings[j]),
            )
            for j in best
        )
        out.append(
            Recommendation(book, because, tuple(own[int(folded.feedback.books[j])] for j in best))
        )
    return out


def reasons(recommendation: Recommendation) -> list[str]:
    """The reasons of a recommendation as short phrases: "Dune (rated 5)", "Emma (on a shelf)"."""
    return [
        f"{title} (rated {rating:g})" if rating is not None else f"{title} (on a shelf)"
        for title, rating in recommendation.because
    ]


def recommend_for_reader(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    kind: str | None = None,
    n: int = 20,
    to_read: bool = False,
) -> list[Recommendation]:
    """:func:`recommend_for_shelf` for a stored reader (``shelfwise reader import``)."""
    return recommend_for_shelf(con, read_shelf(con, name), kind=kind, n=n, to_read=to_read)


# ----------------------------------------------------------------------------- the public API


def _frame(books: Sequence[Book], because: Sequence[Sequence[str]] | None = None) -> pl.DataFrame:
    data = {
        "rank": list(range(1, len(books) + 1)),
        "book_key": [b.book_key for b in books],
        "title": [b.title for b in books],
        "authors": [b.authors for b in books],
        "score": [b.score for b in books],
    }
    schema = {
        "rank": pl.Int64,
        "book_key": pl.Int64,
        "title": pl.String,
        "authors": pl.String,
        "score": pl.Float64,
    }
    if because is not None:
        data["because"] = [list(b) for b in because]
        schema["because"] = pl.List(pl.String)
    return pl.DataFrame(data, schema=schema)


class Warehouse:
    """A Shelfwise warehouse, read-only: the public Python API.

    Every call opens the latest published read snapshot (``<db>.read``), answers, and closes it,
    so it is safe beside a running ``shelfwise refresh`` and always sees the newest published
    models. Answers are polars DataFrames (``.to_pandas()`` for pandas).

    Parameters
    ----------
    db_path : path, optional
        The warehouse file; default ``SHELFWISE_DB`` or ``var/shelfwise.duckdb``.
    """

    def __init__(self, db_path: str | os.PathLike[str] | None = None) -> None:
        self.db_path = require_warehouse(Path(db_path) if db_path else default_db_path())

    def __repr__(self) -> str:
        return f"Warehouse({str(self.db_path)!r})"

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived read-only connection to the latest snapshot (closed after the block)."""
        con = open_for_reading(self.db_path)
        try:
            yield con
        finally:
            con.close()

    def models(self) -> pl.DataFrame:
        """The latest published run of each kind: kind, run_id, finished_at, seconds, params."""
        with self.connection() as con:
            return con.sql(
                "select kind, run_id, finished_at, seconds, params from main.latest_runs "
                "order by kind"
            ).pl()

    def default_model(self, task: str) -> str:
        """The kind that answers ``task`` ("ratings", "ranking" or "neighbours") when no model is
        named: the best measured one the warehouse has published (base.registry.PREFERRED)."""
        with self.connection() as con:
            return default_kind(con, task)

    def book(self, title: str, *, model: str | None = None) -> pl.DataFrame:
        """The one book of ``model``'s latest run that ``title`` names (as ``similar`` resolves it;
        default: the best neighbours model published).

        Raises TitleNotFound (with the nearest titles) when none or several match.
        """
        with self.connection() as con:
            run_id = run_for(con, model or default_kind(con, "neighbours"))
            return _frame([resolve_title(con, run_id, title)]).drop("rank", "score")

    def similar(self, title: str, *, model: str | None = None, n: int = 10) -> pl.DataFrame:
        """The ``n`` books nearest ``title`` under ``model`` (default: the best neighbours model
        published): by cosine of its book vectors, or its heaviest stored weights (knn, EASE).

        Columns: rank, book_key, title, authors, score (cosine).
        """
        with self.connection() as con:
            return _frame(similar(con, title, kind=model, n=n)[1])

    def recommend(
        self,
        *,
        user: int | None = None,
        books: Sequence[str] | None = None,
        reader: str | None = None,
        model: str | None = None,
        n: int = 10,
        to_read: bool = False,
    ) -> pl.DataFrame:
        """Top-``n`` books for a reader in the data (``user``, the source's user id), an imported
        reader (``reader``) or near a few favourite titles (``books``), never one they rated or
        listed. Default ``model``: the best published ranking model (favourites: the best
        neighbours model).

        Columns: rank, book_key, title, authors, score, because (for a user: the liked books most
        like it; for favourites: the closest favourite).
        """
        if sum((user is not None, bool(books), reader is not None)) != 1:
            raise ShelfwiseError("give either user=ID, books=[TITLE, ...] or reader=NAME")
        with self.connection() as con:
            if reader is not None:
                recs = recommend_for_reader(con, reader, kind=model, n=n, to_read=to_read)
                return _frame([r.book for r in recs], [reasons(r) for r in recs])
            if user is not None:
                recs = explain_for_user(con, model or default_kind(con, "ranking"), int(user), n)
                return _frame(
                    [r.book for r in recs], [[title for title, _ in r.because] for r in recs]
                )
            favourites, found, closest = recommend_for_books(
                con, list(books or ()), kind=model, n=n
            )
            return _frame(found, [[favourites[c].title or ""] for c in closest])

    def predict(self, *, user: int, book: int, model: str | None = None) -> float:
        """The rating ``model`` (default: the best published rating model) predicts reader
        ``user`` would give book ``book`` (ids as in the source, book ids as ``book_key``)."""
        with self.connection() as con:
            return predict_rating(con, int(user), int(book), kind=model)

    def metrics(self, *, split: str = "test") -> pl.DataFrame:
        """Held-out metrics of the latest run of each kind, with 95% bootstrap intervals.

        Columns: kind, run_id, metric, k, value, ci_low, ci_high.
        """
        with self.connection() as con:
            return con.sql(
                """select kind, run_id, metric, k, value, ci_low, ci_high from main.model_metrics
                   where split = $split order by kind, metric, k""",
                params={"split": split},
            ).pl()

    def sql(self, query: str) -> pl.DataFrame:
        """Any read-only query over the warehouse (see docs/warehouse.md for its tables)."""
        with self.connection() as con:
            guard_user_query(con, query)
            try:
                relation = con.sql(query)
                return pl.DataFrame() if relation is None else relation.pl()
            except duckdb.Error as exc:
                raise ShelfwiseError(f"query failed: {str(exc).strip().splitlines()[0]}") from exc


def open(db_path: str | os.PathLike[str] | None = None) -> Warehouse:
    """Open a warehouse for reading: ``shelfwise.open("var/shelfwise.duckdb")``."""
    return Warehouse(db_path)
