"""Atomic publishing of fitted runs into a real DuckDB file: failures keep the old run, retention,
views."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from helpers import SMALL, rows

import analytics.mf
import analytics.svd
import shelfwise.pipeline.fit as fitting
from analytics.metrics import Metric
from base.config import LoadConfig, PublishConfig, TransformConfig
from base.registry import make_params
from shelfwise import serving
from shelfwise.pipeline.fit import fit_and_publish
from warehouse import store
from warehouse.catalog import TABLES, read_model
from warehouse.db import connect
from warehouse.load import load_dataset
from warehouse.runner import run_transforms

BOOKS_COLUMNS = [
    "book_id",
    "goodreads_book_id",
    "work_id",
    "authors",
    "original_publication_year",
    "original_title",
    "title",
    "language_code",
    "average_rating",
    "ratings_count",
    "ratings_1",
    "ratings_2",
    "ratings_3",
    "ratings_4",
    "ratings_5",
    "image_url",
    "small_image_url",
]

N_USERS, N_BOOKS = 40, 16
RARE_BOOK = (
    1  # rated by 3 users only: dropped by min_book_ratings=5, which re-indexes every other book
)
PUBLISH = PublishConfig(neighbours=5, tsne=False, keep_runs=3)


def write_goodbooks(folder: Path, *, seed: int = 0) -> Path:
    """A goodbooks folder: ratings.csv from two taste groups (book parity) and a books.csv with
    titles."""
    rng = np.random.default_rng(seed)
    users, books = np.meshgrid(np.arange(1, N_USERS + 1), np.arange(1, N_BOOKS + 1), indexing="ij")
    liked = users % 2 == books % 2
    rating = np.clip(np.round(np.where(liked, 4.4, 1.8) + rng.normal(0, 0.5, liked.shape)), 1, 5)
    rated = rng.random(liked.shape) < 0.7
    rated[:, RARE_BOOK - 1] = users[:, 0] <= 3
    table = np.stack([users[rated], books[rated], rating[rated]], axis=1).astype(np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(
        folder / "ratings.csv",
        table,
        fmt="%d",
        delimiter=",",
        header="user_id,book_id,rating",
        comments="",
    )
    with (folder / "books.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(BOOKS_COLUMNS)
        for b in range(1, N_BOOKS + 1):
            writer.writerow(
                [
                    b,
                    1000 + b,
                    500 + b,
                    f"Author {b}",
                    2001,
                    f"Book {b}",
                    f"Book {b}",
                    "eng",
                    4.0,
                    100 * b,
                    1,
                    2,
                    3,
                    4,
                    5,
                    "",
                    "",
                ]
            )
    return folder


def transform(con: duckdb.DuckDBPyConnection, min_book_ratings: int = 1) -> None:
    run_transforms(con, TransformConfig(min_user_ratings=1, min_book_ratings=min_book_ratings))


@pytest.fixture
def warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse file with the tiny goodbooks data loaded and transformed, no runs yet."""
    con = connect(tmp_path / "shelfwise.duckdb")
    load_dataset(con, LoadConfig("goodbooks", write_goodbooks(tmp_path / "goodbooks")))  # type: ignore[arg-type]
    transform(con)
    yield con
    con.close()


def fit(
    con: duckdb.DuckDBPyConnection, kind: str, *, publish: PublishConfig = PUBLISH, **kw
) -> int:
    return fit_and_publish(con, kind, make_params(kind, SMALL[kind]), publish, **kw)


def run_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every models.* table keyed by run (the runs table itself aside).

    A table with a run_id column whose key (its SQL header) is not the run's is history that
    outlives retention (models.digests names the run a digest came from).
    """
    with_run_id = [
        f"models.{t}"
        for (t,) in rows(
            con,
            """select table_name from information_schema.columns
               where table_schema = 'models' and column_name = 'run_id' and table_name <> 'runs'
               order by table_name""",
        )
    ]
    keyed = {
        read_model(name).relation
        for name in TABLES
        if "run_id" in (read_model(name).header("grain") or "").split("key:")[-1]
    }
    assert set(with_run_id) - keyed == {"models.digests"}, "a run_id column the key does not name"
    return [t for t in with_run_id if t in keyed]


def rows_of_run(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, int]:
    return {
        t: rows(con, f"select count(*) from {t} where run_id = ?", [run_id])[0][0]
        for t in run_tables(con)
    }


def run_record(con: duckdb.DuckDBPyConnection, run_id: int) -> tuple:
    return rows(con, "select kind, status, published from models.runs where run_id = ?", [run_id])[
        0
    ]


def latest(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return dict(rows(con, "select kind, run_id from main.latest_runs"))


def published_state(con: duckdb.DuckDBPyConnection, kind: str) -> dict[str, list[tuple]]:
    """What readers see of a kind: its factors, biases, neighbours and metrics through main.*
    views."""
    return {
        view: rows(
            con, f"select * exclude (kind) from main.{view} where kind = ? order by all", [kind]
        )
        for view in (
            "book_factors",
            "user_factors",
            "book_bias",
            "user_bias",
            "book_neighbours",
            "model_metrics",
        )
    }


def metric(name: str, value: float) -> Metric:
    return Metric(name, None, value, value, value)


def test_retention_covers_every_run_table(warehouse):
    assert set(run_tables(warehouse)) == set(store.RUN_TABLES)


def test_publish_writes_every_table_of_a_run(warehouse):
    run_id = fit(warehouse, "svd")
    store.write_metrics(warehouse, run_id, [metric("rmse", 0.9)], split="test")
    counts = rows_of_run(warehouse, run_id)
    n_users = rows(warehouse, "select count(*) from matrix.users")[0][0]
    assert counts == {
        "models.book_bias": N_BOOKS,
        "models.book_factors": N_BOOKS,
        "models.book_weights": 0,  # svd has vectors, not item-item weights
        "models.book_implicit": 0,  # mf's SVD++ vectors only
        "models.book_neighbours": N_BOOKS * 5,
        "models.metrics": 1,
        "models.projections": N_BOOKS,
        "models.run_books": N_BOOKS,
        "models.run_users": n_users,
        "models.user_bias": n_users,
        "models.user_factors": n_users,
    }
    assert run_record(warehouse, run_id) == ("svd", "succeeded", True)


@pytest.mark.parametrize("kind", ["svd", "als"])
def test_failure_before_commit_keeps_the_published_run(warehouse, kind):
    good = fit(warehouse, kind)
    store.write_metrics(warehouse, good, [metric("auc", 0.7)], split="test")
    before = published_state(warehouse, kind)
    good_rows = rows_of_run(warehouse, good)
    assert all(
        good_rows[t] > 0 for t in ("models.book_factors", "models.run_books", "models.metrics")
    )

    # keep_runs=1 means the failed publish had also deleted the good run before it raised.
    with pytest.raises(RuntimeError, match="simulated failure"):
        fit(
            warehouse,
            kind,
            publish=PublishConfig(neighbours=5, tsne=False, keep_runs=1),
            fail_before_commit=True,
        )

    failed = rows(warehouse, "select max(run_id) from models.runs")[0][0]
    assert failed != good
    assert latest(warehouse)[kind] == good
    assert published_state(warehouse, kind) == before
    assert rows_of_run(warehouse, good) == good_rows
    assert run_record(warehouse, good) == (kind, "succeeded", True)
    assert run_record(warehouse, failed) == (kind, "failed", False)
    assert rows(
        warehouse, "select finished_at is not null from models.runs where run_id = ?", [failed]
    ) == [(True,)]
    assert set(rows_of_run(warehouse, failed).values()) == {0}


# Exception classes, not instances: a shared instance would keep its traceback (and the
# connection's frames) alive until exit.
@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_fit_that_raises_in_the_maths_keeps_the_published_run(warehouse, monkeypatch, error):
    good = fit(warehouse, "svd")
    before = published_state(warehouse, "svd")

    def broken_fit(*args, **kwargs):
        raise error("singular matrix")

    monkeypatch.setattr(analytics.svd, "fit_svd", broken_fit)
    with pytest.raises(error):
        fit(warehouse, "svd")

    failed = rows(warehouse, "select max(run_id) from models.runs")[0][0]
    assert latest(warehouse) == {"svd": good}
    assert published_state(warehouse, "svd") == before
    assert run_record(warehouse, failed) == ("svd", "failed", False)
    assert set(rows_of_run(warehouse, failed).values()) == {0}


def test_a_failure_after_the_fit_keeps_the_published_run(warehouse, monkeypatch):
    good = fit(warehouse, "mf")
    before = published_state(warehouse, "mf")
    monkeypatch.setattr(
        fitting, "top_k_cosine", lambda *a, **k: (_ for _ in ()).throw(MemoryError("neighbours"))
    )
    with pytest.raises(MemoryError):
        fit(warehouse, "mf")
    assert latest(warehouse) == {"mf": good}
    assert published_state(warehouse, "mf") == before


def test_a_first_fit_that_fails_publishes_nothing(warehouse, monkeypatch):
    monkeypatch.setattr(
        analytics.mf, "fit_mf", lambda *a, **k: (_ for _ in ()).throw(ValueError("boom"))
    )
    with pytest.raises(ValueError, match="boom"):
        fit(warehouse, "mf")
    assert latest(warehouse) == {}
    assert store.latest_run(warehouse, "mf") is None
    assert rows(warehouse, "select count(*) from main.book_factors") == [(0,)]
    assert rows(warehouse, "select kind, status, published from models.runs") == [
        ("mf", "failed", False)
    ]


def test_retention_keeps_only_the_newest_published_runs_of_a_kind(warehouse, monkeypatch):
    other = fit(warehouse, "als")
    svd_runs = []
    for i in range(4):
        run_id = fit(warehouse, "svd", publish=PublishConfig(neighbours=5, tsne=False, keep_runs=2))
        store.write_metrics(warehouse, run_id, [metric("rmse", 1.0 - i / 10)], split="test")
        svd_runs.append(run_id)
        if i == 1:  # a failed run in between is kept as a record, with no rows
            monkeypatch.setattr(
                analytics.svd, "fit_svd", lambda *a, **k: (_ for _ in ()).throw(ValueError("x"))
            )
            with pytest.raises(ValueError):
                fit(warehouse, "svd")
            monkeypatch.undo()
    failed = rows(warehouse, "select run_id from models.runs where status = 'failed'")
    assert len(failed) == 1

    published = rows(
        warehouse, "select run_id from models.runs where kind = 'svd' and published order by run_id"
    )
    assert [r for (r,) in published] == svd_runs[-2:]
    for gone in svd_runs[:2]:
        assert rows(warehouse, "select count(*) from models.runs where run_id = ?", [gone]) == [
            (0,)
        ]
        assert set(rows_of_run(warehouse, gone).values()) == {0}
    for kept in svd_runs[-2:]:
        counts = rows_of_run(warehouse, kept)
        assert counts["models.book_factors"] == N_BOOKS and counts["models.metrics"] == 1
    # Another kind's runs are not touched by svd's retention.
    assert run_record(warehouse, other) == ("als", "succeeded", True)
    assert rows_of_run(warehouse, other)["models.book_factors"] == N_BOOKS
    assert latest(warehouse) == {"als": other, "svd": svd_runs[-1]}


def test_views_show_only_the_latest_published_run_of_each_kind(warehouse):
    old_svd = fit(warehouse, "svd")
    new_svd = fit(warehouse, "svd")
    als = fit(warehouse, "als")
    baseline = fit(warehouse, "baseline")
    for run_id in (old_svd, new_svd, als, baseline):
        store.write_metrics(warehouse, run_id, [metric("rmse", float(run_id))], split="test")
    assert latest(warehouse) == {"svd": new_svd, "als": als, "baseline": baseline}

    titles = dict(rows(warehouse, "select book_key, title from core.books"))
    per_view = {
        "book_factors": {"svd": new_svd, "als": als},
        "book_bias": {"svd": new_svd, "baseline": baseline},
        "book_neighbours": {"svd": new_svd, "als": als},
    }
    for view, expected in per_view.items():
        assert (
            dict(rows(warehouse, f"select distinct kind, run_id from main.{view}")) == expected
        ), view
        got = rows(warehouse, f"select book_key, title from main.{view}")
        assert got and all(title == titles[key] for key, title in got), view
    assert dict(rows(warehouse, "select distinct kind, run_id from main.user_factors")) == {
        "svd": new_svd,
        "als": als,
    }
    assert rows(warehouse, "select count(*) from main.book_factors where kind = 'svd'") == [
        (N_BOOKS,)
    ]
    metrics = rows(
        warehouse, "select kind, run_id, value, published from main.model_metrics order by run_id"
    )
    assert metrics == [
        ("svd", new_svd, float(new_svd), True),
        ("als", als, float(als), True),
        ("baseline", baseline, float(baseline), True),
    ]
    neighbour_titles = rows(
        warehouse, "select neighbour_key, neighbour_title from main.book_neighbours"
    )
    assert all(title == titles[key] for key, title in neighbour_titles)


@pytest.mark.parametrize("kind", ["svd", "als", "mf"])
def test_sql_cosine_neighbours_agree_with_the_stored_ones(warehouse, kind):
    run_id = fit(warehouse, kind)
    sql = rows(
        warehouse,
        """
        with f as (select book_idx, vector from main.book_factors where kind = $kind),
        pairs as (
            select a.book_idx, b.book_idx as neighbour_idx,
                list_cosine_similarity(a.vector, b.vector) as score
            from f as a inner join f as b on a.book_idx <> b.book_idx
        ),
        ranked as (
            select *,
                row_number() over (partition by book_idx order by score desc, neighbour_idx) as rank
            from pairs
        )
        select book_idx, rank, neighbour_idx, score from ranked where rank <= 5
        order by book_idx, rank
    """,
        {"kind": kind},
    )  # type: ignore[arg-type]
    stored = rows(
        warehouse,
        """select book_idx, rank, neighbour_idx, score from models.book_neighbours
                                where run_id = ? order by book_idx, rank""",
        [run_id],
    )
    assert len(sql) == len(stored) == N_BOOKS * 5
    sql_scores = np.array([r[3] for r in sql])
    np.testing.assert_allclose([r[3] for r in stored], sql_scores, atol=1e-5)
    for (book, rank, sql_n, score), (_, _, stored_n, _) in zip(sql, stored, strict=True):
        # Near-ties may come in either order; anything clearly separated must match exactly.
        others = [s for (b, r, _, s) in sql if b == book and r != rank]
        if all(abs(score - s) > 1e-5 for s in others):
            assert sql_n == stored_n, (book, rank)


def test_retransform_with_other_filters_does_not_mislabel_an_older_run(warehouse):
    old = fit(warehouse, "svd")
    old_mapping = rows(warehouse, "select book_idx, book_key from matrix.books order by book_idx")
    old_view = rows(
        warehouse,
        "select book_idx, book_key, title, vector from main.book_factors where run_id = ? "
        "order by book_idx",
        [old],
    )

    transform(
        warehouse, min_book_ratings=5
    )  # drops the rare book: every later book_idx shifts down
    new_mapping = rows(warehouse, "select book_idx, book_key from matrix.books order by book_idx")
    assert len(new_mapping) == N_BOOKS - 1 and new_mapping != old_mapping[: N_BOOKS - 1]

    assert (
        rows(
            warehouse,
            "select book_idx, book_key from models.run_books where run_id = ? order by book_idx",
            [old],
        )
        == old_mapping
    )
    assert (
        rows(
            warehouse,
            "select book_idx, book_key, title, vector from main.book_factors where run_id = ? "
            "order by book_idx",
            [old],
        )
        == old_view
    )
    assert store.read_model(warehouse, old).book_factors.shape[0] == N_BOOKS
    book, _ = serving.similar(warehouse, "Book 5", kind="svd", n=3)
    assert (book.book_idx, book.book_key) == next((i, k) for i, k in old_mapping if k == 505)

    new = fit(warehouse, "svd")
    assert (
        rows(
            warehouse,
            "select book_idx, book_key from models.run_books where run_id = ? order by book_idx",
            [new],
        )
        == new_mapping
    )
    titles = dict(rows(warehouse, "select book_key, title from core.books"))
    view = rows(
        warehouse, "select book_idx, book_key, title from main.book_factors order by book_idx"
    )
    assert [(i, k) for i, k, _ in view] == new_mapping
    assert all(title == titles[key] for _, key, title in view)
    assert 500 + RARE_BOOK not in {k for _, k, _ in view}
