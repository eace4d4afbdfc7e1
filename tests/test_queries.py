"""Title resolution, recommendations and the similar/recommend CLI on a tiny warehouse with
chosen titles."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pytest
from helpers import SMALL, build_warehouse

from base.config import PublishConfig, TransformConfig
from base.errors import ShelfwiseError
from shelfwise.cli import main
from shelfwise.serving import (
    TitleNotFound,
    recommend_for_books,
    recommend_for_user,
    resolve_title,
    run_for,
    similar,
)
from warehouse.db import connect

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

# (title, authors, ratings_count, taste group). Group 0 is thrillers, group 1 romance.
BOOKS: dict[int, tuple[str, str, int, int]] = {
    1: ("Angels & Demons (Robert Langdon, #1)", "Dan Brown", 2000, 0),
    2: ("The Da Vinci Code (Robert Langdon, #2)", "Dan Brown", 3000, 0),
    3: ("Dracula", "Bram Stoker", 900, 0),
    4: ("Dracula", "Anne Other", 900, 1),  # same title, equally rated: ambiguous
    5: ("Emma", "Jane Austen", 5000, 1),
    6: ("Emma", "Someone Else", 10, 1),  # same title, far less rated: "Emma" means Austen's
    7: ("Gone Girl", "Gillian Flynn", 1500, 0),
    8: ("The Girl on the Train", "Paula Hawkins", 1400, 0),
    9: ("Twilight (Twilight, #1)", "Stephenie Meyer", 4000, 1),
    10: ("Pride and Prejudice", "Jane Austen", 4500, 1),
    11: ("The Notebook", "Nicholas Sparks", 1200, 1),
    12: ("Inferno (Robert Langdon, #4)", "Dan Brown", 1100, 0),
    13: ("Me Before You", "Jojo Moyes", 1300, 1),
    14: ("The Silent Patient", "Alex Michaelides", 800, 0),
}
INJECTION = "'; DROP TABLE core.books; --"
N_USERS = 40
PUBLISH = PublishConfig(neighbours=5, tsne=False, keep_runs=2)


def write_goodbooks(folder: Path, seed: int = 0) -> Path:
    """Ratings from two taste groups (user parity vs the book's group) and a books.csv with
    BOOKS' titles."""
    rng = np.random.default_rng(seed)
    book_ids = np.array(sorted(BOOKS))
    group = np.array([BOOKS[b][3] for b in book_ids])
    users = np.arange(1, N_USERS + 1)
    liked = (users[:, None] % 2) == group[None, :]
    rating = np.clip(np.round(np.where(liked, 4.5, 1.7) + rng.normal(0, 0.4, liked.shape)), 1, 5)
    rated = rng.random(liked.shape) < np.where(liked, 0.8, 0.25)
    u, b = np.nonzero(rated)
    table = np.stack([users[u], book_ids[b], rating[u, b]], axis=1).astype(np.int64)
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
        writer = csv.writer(fh)  # quotes the titles with commas
        writer.writerow(BOOKS_COLUMNS)
        for book_id, (title, authors, count, _) in BOOKS.items():
            writer.writerow(
                [
                    book_id,
                    1000 + book_id,
                    500 + book_id,
                    authors,
                    2001,
                    title,
                    title,
                    "eng",
                    4.0,
                    count,
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


@pytest.fixture(scope="module")
def db_file(tmp_path_factory) -> Path:
    """A warehouse file with every kind fitted once; tests open it and must not change it."""
    root = tmp_path_factory.mktemp("queries")
    return build_warehouse(
        root / "shelfwise.duckdb",
        write_goodbooks(root / "goodbooks"),
        TransformConfig(min_user_ratings=1, min_book_ratings=1),
        fits=SMALL,
        publish=PUBLISH,
    )


@pytest.fixture
def con(db_file: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = connect(db_file, read_only=True)
    yield c
    c.close()


def key(book_id: int) -> int:
    """book_key of a goodbooks book in this data: its work_id."""
    return 500 + book_id


def group_of(book_key: int) -> int:
    return BOOKS[book_key - 500][3]


def resolve(con: duckdb.DuckDBPyConnection, query: str, kind: str = "mf"):
    return resolve_title(con, run_for(con, kind), query)


# ----------------------------------------------------------------------------- resolve_title


@pytest.mark.parametrize(
    ("query", "book_id"),
    [
        ("the da vinci code (robert langdon, #2)", 2),  # exact, case-insensitive
        ("  THE DA VINCI CODE (Robert Langdon, #2) ", 2),
        ("Angels & Demons", 1),  # the title without its series suffix
        ("twilight", 9),  # suffix-less title beats the substring "Twilight (Twilight, #1)"
        ("vinci", 2),  # a unique substring
        ("girl on the", 8),
        ("Emma", 5),  # same title twice: the far more rated one is meant
        ("pride AND prejudice", 10),
    ],
)
def test_resolve_title_finds_the_one_book(con, query, book_id):
    book = resolve(con, query)
    assert book.book_key == key(book_id)
    assert book.title == BOOKS[book_id][0] and book.authors == BOOKS[book_id][1]
    assert book.goodreads_book_id == 1000 + book_id


def test_resolve_title_ambiguous_exact_title_lists_the_candidates(con):
    with pytest.raises(TitleNotFound) as exc:
        resolve(con, "dracula")
    assert exc.value.ambiguous
    assert sorted(exc.value.candidates) == ["Dracula (Anne Other)", "Dracula (Bram Stoker)"]
    assert "matches several books" in str(exc.value) and "\n" not in str(exc.value)


def test_resolve_title_ambiguous_substring_lists_the_candidates(con):
    with pytest.raises(TitleNotFound) as exc:
        resolve(con, "robert langdon")
    assert exc.value.ambiguous
    assert set(exc.value.candidates) == {
        "Angels & Demons (Robert Langdon, #1) (Dan Brown)",
        "The Da Vinci Code (Robert Langdon, #2) (Dan Brown)",
        "Inferno (Robert Langdon, #4) (Dan Brown)",
    }
    with pytest.raises(TitleNotFound) as exc:
        resolve(con, "girl")  # Gone Girl, The Girl on the Train
    assert exc.value.ambiguous and len(exc.value.candidates) == 2


def test_resolve_title_unknown_lists_the_nearest_titles(con):
    with pytest.raises(TitleNotFound) as exc:
        resolve(con, "Draculla")
    assert not exc.value.ambiguous
    assert 1 <= len(exc.value.candidates) <= 5
    assert exc.value.candidates[0].startswith("Dracula (")
    message = str(exc.value)
    assert "matches no book" in message and "did you mean" in message and "\n" not in message


def test_resolve_title_treats_sql_as_text(con, db_file):
    n_books = con.execute("select count(*) from core.books").fetchall()[0][0]
    with pytest.raises(TitleNotFound) as exc:
        resolve(con, INJECTION)
    assert not exc.value.ambiguous
    assert con.execute("select count(*) from core.books").fetchall()[0][0] == n_books == len(BOOKS)
    # And with a writable connection, where a DROP could have succeeded.
    con.close()
    writable = connect(db_file)
    try:
        with pytest.raises(TitleNotFound):
            resolve(writable, INJECTION)
        assert writable.execute("select count(*) from core.books").fetchall()[0][0] == len(BOOKS)
    finally:
        writable.close()


def test_resolve_title_rejects_an_empty_query(con):
    with pytest.raises(ShelfwiseError, match="empty title"):
        resolve(con, "   ")


# ----------------------------------------------------------------------------- recommendations


def rated_keys(con: duckdb.DuckDBPyConnection, user_key: int) -> set[int]:
    return {
        k
        for (k,) in con.execute(
            "select book_key from core.ratings where user_key = ?", [user_key]
        ).fetchall()
    }


@pytest.mark.parametrize("kind", ["baseline", "svd", "als", "mf"])
def test_recommend_for_user_never_returns_a_rated_book(con, kind):
    test_keys = {
        k
        for (k,) in con.execute(
            """select b.book_key
               from matrix.ratings as r inner join matrix.books as b using (book_idx)
           where r.split = 'test'"""
        ).fetchall()
    }
    assert test_keys, "the split has no test ratings: the check below would be about train only"
    for (user_key,) in con.execute(
        "select user_key from matrix.users order by user_key"
    ).fetchall():
        rated = rated_keys(con, user_key)
        books = recommend_for_user(con, user_key, kind=kind, n=len(BOOKS))
        keys = [b.book_key for b in books]
        assert not rated & set(keys), (user_key, rated & set(keys))
        assert len(keys) == len(set(keys)) == len(BOOKS) - len(rated)  # every unrated book, once
        scores = [b.score for b in books]
        assert scores == sorted(scores, reverse=True)


def test_recommend_for_user_unknown_user_is_one_clear_line(con):
    with pytest.raises(ShelfwiseError) as exc:
        recommend_for_user(con, 987654, kind="mf")
    message = str(exc.value)
    assert "987654" in message and "not in the mf model" in message and "\n" not in message


@pytest.mark.parametrize("kind", ["svd", "als", "mf"])
def test_recommend_for_books_never_returns_the_favourites_nor_excluded(con, kind):
    favourites, books, closest = recommend_for_books(
        con, ["Angels & Demons", "Gone Girl"], kind=kind, n=len(BOOKS)
    )
    assert [f.book_key for f in favourites] == [key(1), key(7)]
    keys = [b.book_key for b in books]
    assert not {key(1), key(7)} & set(keys)
    assert len(keys) == len(set(keys)) == len(BOOKS) - 2
    assert len(closest) == len(books) and set(closest) <= {0, 1}

    _, books, closest = recommend_for_books(
        con, ["Angels & Demons"], kind=kind, n=3, exclude=[key(2), key(12), 999999]
    )
    keys = [b.book_key for b in books]
    assert len(keys) == 3 and not {key(1), key(2), key(12)} & set(keys)
    assert closest == [0, 0, 0]


@pytest.mark.parametrize("kind", ["svd", "als", "mf"])
def test_similar_never_returns_the_query_book(con, kind):
    for book_id in (1, 5, 9, 14):
        book, books = similar(con, BOOKS[book_id][0], kind=kind, n=len(BOOKS))
        assert book.book_key == key(book_id)
        keys = [b.book_key for b in books]
        assert key(book_id) not in keys and len(keys) == len(set(keys)) == len(BOOKS) - 1
        scores = [b.score for b in books]
        assert scores == sorted(scores, reverse=True)


def test_similar_books_share_the_planted_taste(con):
    _, books = similar(con, "Angels & Demons", kind="als", n=3)
    assert [group_of(b.book_key) for b in books] == [0, 0, 0]
    _, books = similar(con, "Twilight", kind="als", n=3)
    assert [group_of(b.book_key) for b in books] == [1, 1, 1]


def test_queries_need_a_model_with_book_vectors(con):
    with pytest.raises(ShelfwiseError, match="no book vectors"):
        similar(con, "Emma", kind="baseline")


# ----------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(db_file: Path, capsys) -> Iterator:
    """``cli(*args) -> (exit code, stdout, stderr)`` for ``shelfwise ARGS --db FILE``."""
    # The CLI configures logging for the process; give the root logger back as it was.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            main([*args, "--db", str(db_file)])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    root.handlers[:] = handlers
    root.setLevel(level)


def test_cli_similar_prints_the_nearest_titles(db_file, cli):
    with connect(db_file, read_only=True) as c:
        _, expected = similar(c, "Angels & Demons", kind="als", n=3)
    code, out, err = cli("similar", "angels & demons", "--model", "als", "--n", "3")
    assert code == 0, err
    assert "Angels & Demons (Robert Langdon, #1)" in out
    for book in expected:
        assert book.title in out
    shown = {t for t, *_ in BOOKS.values() if t in out}
    assert len(shown) == 4  # the query book and its three neighbours


def test_cli_recommend_for_a_user_and_for_books(db_file, cli):
    with connect(db_file, read_only=True) as c:
        for_user = recommend_for_user(c, 2, kind="mf", n=3)
        _, for_books, _ = recommend_for_books(c, ["Twilight", "Emma"], kind="mf", n=3)
    code, out, err = cli("recommend", "--user", "2", "--model", "mf", "--n", "3")
    assert code == 0, err
    assert all(b.title in out for b in for_user)

    code, out, err = cli("recommend", "--books", "Twilight", "Emma", "--model", "mf", "--n", "3")
    assert code == 0, err
    assert all(b.title in out for b in for_books)
    assert "Twilight (Twilight, #1)" in out and "Emma" in out  # the favourites, in the heading


def test_cli_ambiguous_title_exits_1_with_one_line(cli):
    code, out, err = cli("similar", "Dracula", "--model", "mf")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "matches several books" in err and "Bram Stoker" in err and "Anne Other" in err
    assert "Traceback" not in err and out == ""


def test_cli_unknown_user_exits_1_with_one_line(cli):
    code, _, err = cli("recommend", "--user", "987654")
    assert code == 1
    assert err.count("\n") == 1 and "987654" in err and "Traceback" not in err
