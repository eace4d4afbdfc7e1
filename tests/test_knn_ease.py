"""knn and EASE in the warehouse: stored weights, predictions reproducible in SQL, the EASE
ceiling, and neighbours and recommendations through the weights."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import SMALL, build_warehouse, rows

from base.config import PublishConfig, TransformConfig
from base.errors import ParamError, ShelfwiseError
from shelfwise import serving
from shelfwise.cli import main
from warehouse.db import connect, open_for_reading

DOCS = Path(__file__).resolve().parents[1] / "docs" / "models.md"


@pytest.fixture(scope="module")
def weights_warehouse(tmp_path_factory) -> Path:
    """The tiny goodbooks-shaped folder of test_queries' taste groups, knn and ease fitted."""
    from test_queries import write_goodbooks

    root = tmp_path_factory.mktemp("weights")
    return build_warehouse(
        root / "w.duckdb",
        write_goodbooks(root / "goodbooks"),
        TransformConfig(min_user_ratings=1, min_book_ratings=1),
        fits={"knn": SMALL["knn"], "ease": SMALL["ease"]},
        publish=PublishConfig(neighbours=5, tsne=False),
    )


def knn_sql() -> str:
    return re.search(r"```sql\n(-- knn's predicted rating.*?)```", DOCS.read_text(), re.S)[1]


def test_a_knn_prediction_recomputed_in_sql_from_the_published_tables_equals_python(
    weights_warehouse,
):
    with open_for_reading(weights_warehouse) as con:
        pairs = rows(
            con,
            """select u.user_key, b.book_key from main.user_bias as u
               cross join main.book_bias as b
               where u.kind = 'knn' and b.kind = 'knn'
               order by hash(u.user_key, b.book_key) limit 25""",
        )
        assert len(pairs) == 25
        for user, book in pairs:
            in_sql = rows(con, knn_sql(), {"user": user, "book": book})[0][0]
            in_python = serving.predict_rating(con, user, book, kind="knn")
            assert in_sql == pytest.approx(in_python, abs=1e-6), (user, book)


def test_weights_are_stored_heaviest_first_and_neighbours_come_from_them(weights_warehouse):
    with open_for_reading(weights_warehouse) as con:
        for kind in ("knn", "ease"):
            stored = rows(
                con,
                """select book_idx, rank, neighbour_idx, weight from main.book_weights
                   where kind = ? order by book_idx, rank""",
                [kind],
            )
            assert stored and all(b != n for b, _, n, _ in stored)
            by_book: dict[int, list[float]] = {}
            for book, _, _, weight in stored:
                by_book.setdefault(book, []).append(weight if kind == "knn" else abs(weight))
            assert all(w == sorted(w, reverse=True) for w in by_book.values())
            title = rows(con, "select title from main.book_weights where kind = ? limit 1", [kind])
            book, near = serving.similar(con, title[0][0], kind=kind, n=3)
            heaviest = rows(
                con,
                """select neighbour_key from main.book_weights
                   where kind = ? and book_key = ? and weight > 0 order by weight desc limit 3""",
                [kind, book.book_key],
            )
            assert [b.book_key for b in near] == [k for (k,) in heaviest]


def test_favourites_score_through_the_weights_and_never_return_a_favourite(weights_warehouse):
    with open_for_reading(weights_warehouse) as con:
        titles = [t for (t,) in rows(con, "select title from core.books order by book_key limit 2")]
        for kind in ("knn", "ease"):
            favourites, books, closest = serving.recommend_for_books(con, titles, kind=kind, n=5)
            fav = {b.book_key for b in favourites}
            assert books and not fav & {b.book_key for b in books}
            scores = [b.score for b in books]
            assert scores == sorted(scores, reverse=True)
            assert all(0 <= c < len(favourites) for c in closest)


def test_user_recommendations_under_weights_are_unrated_and_explained(weights_warehouse):
    with open_for_reading(weights_warehouse) as con:
        user = rows(con, "select user_key from main.user_bias where kind = 'knn' limit 1")[0][0]
        rated = {
            k for (k,) in rows(con, "select book_key from core.ratings where user_key = ?", [user])
        }
        for kind in ("knn", "ease"):
            recs = serving.explain_for_user(con, kind, user, 4)
            assert recs and not rated & {r.book.book_key for r in recs}
            # A book scored above zero owes it to a rated book with a positive weight toward it.
            assert all(r.because for r in recs if r.book.score > 0)
            assert any(r.book.score > 0 for r in recs)


def test_ease_refuses_more_books_than_max_books_before_any_run(tmp_path, capsys):
    from test_queries import write_goodbooks

    db = build_warehouse(
        tmp_path / "w.duckdb",
        write_goodbooks(tmp_path / "goodbooks"),
        TransformConfig(min_user_ratings=1, min_book_ratings=1),
    )
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "fit", "ease", "-p", "max_books=3", "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and len(err.splitlines()) == 1
    assert "max_books=3" in err and "use knn" in err
    with connect(db, read_only=True) as con:
        assert rows(con, "select count(*) from models.runs") == [(0,)]
    with pytest.raises(ParamError):
        from base.params import EaseParams

        EaseParams(max_books=10).check_fits((5, 11))


def test_a_kind_without_ratings_refuses_to_predict_one(weights_warehouse):
    with open_for_reading(weights_warehouse) as con, pytest.raises(ShelfwiseError, match="ranks"):
        serving.predict_rating(con, 1, 1, kind="ease")
