"""A reader's Goodreads export: parsing the real layout, bad files, matching, storage, fold-in."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from helpers import EXPORT_COLUMNS, goodreads_export, rows

from base.errors import BadInputError, ShelfwiseError
from shelfwise import serving
from shelfwise.cli import main
from warehouse import store
from warehouse.db import connect, open_for_reading
from warehouse.readers import forget, import_export, parse_export, read_shelf

DA_VINCI = {
    "book_id": 968,
    "title": "The Da Vinci Code (Robert Langdon, #2)",
    "author": "Dan Brown",
}


@pytest.fixture
def db(published_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the shared warehouse: importing a reader writes."""
    target = tmp_path / "w.duckdb"
    shutil.copyfile(published_warehouse, target)
    return target


def export_file(tmp_path: Path, books: list[dict], name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_text(goodreads_export(books), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- parsing


def test_the_real_layout_parses_with_reviews_excel_isbns_and_unrated_zeros():
    text = goodreads_export(
        [
            {
                **DA_VINCI,
                "isbn": "0385504209",
                "isbn13": "9780385504201",
                "rating": 5,
                "review": 'Fast, "clever" <b>fun</b>,\nand a second line',
                "date_read": "2021/03/04",
            },
            {
                "book_id": 7,
                "title": "Emma",
                "author": "Jane Austen",
                "rating": 0,
                "shelf": "to-read",
            },
        ]
    )
    shelf = parse_export(text.encode())
    assert shelf.columns == list(
        [
            "line",
            "goodreads_book_id",
            "title",
            "author",
            "isbn",
            "isbn13",
            "rating",
            "shelf",
            "date_read",
            "date_added",
        ]
    )
    first, second = shelf.rows(named=True)
    assert (first["goodreads_book_id"], first["isbn"], first["isbn13"]) == (
        968,
        "0385504209",
        "9780385504201",
    )
    assert first["rating"] == 5 and str(first["date_read"]) == "2021-03-04"
    assert second["rating"] is None and second["shelf"] == "to-read" and second["isbn"] is None


def test_columns_are_matched_by_name_and_a_bom_and_crlf_are_fine():
    text = goodreads_export([{**DA_VINCI, "rating": 4}])
    # Every column in reverse order (the review has no line break here, so rows are lines).
    reordered = [row[::-1] for row in csv.reader(io.StringIO(text))]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(reordered)
    shelf = parse_export(b"\xef\xbb\xbf" + out.getvalue().encode())
    assert shelf.height == 1 and shelf["rating"][0] == 4 and shelf["title"][0] == DA_VINCI["title"]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "line 1: the file is empty"),
        ((",".join(EXPORT_COLUMNS) + "\n").encode(), "header but no books"),
        (b"Title,Author\nDune,Frank Herbert\n", "not a Goodreads library export: no Book Id"),
        (b"Book Id,Author\n1,Frank Herbert\n", "no Title"),
        (b"Book Id,Title,My Rating\n1,Dune,7\n", "row 2: My Rating '7' is not 0-5 ('Dune')"),
        (b"Book Id,Title\nabc,Dune\n", "row 2: Book Id 'abc' is not a whole number"),
        (b"Book Id,Title\n1,Dune\n2,Caf\xe9\n", "line 3: not UTF-8 text"),
    ],
)
def test_a_file_that_is_not_a_usable_export_is_one_line(data, message):
    with pytest.raises(BadInputError) as error:
        parse_export(data, name="library.csv")
    assert message in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("library.csv")


def test_a_file_over_the_size_cap_is_refused_before_parsing():
    with pytest.raises(BadInputError, match="MB is more than a library export"):
        parse_export(b"x" * (20 * 1024 * 1024 + 1))


def test_a_book_listed_twice_keeps_its_first_line_and_100k_rows_parse():
    books = [{**DA_VINCI, "rating": 5}, {**DA_VINCI, "rating": 1}]
    books += [
        {"book_id": 10_000 + i, "title": f"Book {i}", "author": "A B"} for i in range(100_000)
    ]
    shelf = parse_export(goodreads_export(books).encode())
    assert shelf.height == 100_001
    assert shelf.filter(pl.col("goodreads_book_id") == 968)["rating"].to_list() == [5]


# ----------------------------------------------------------------------------- the catalogue side


def test_isbns_are_repaired_and_the_float_isbn13_is_never_trusted(published_warehouse):
    with open_for_reading(published_warehouse) as con:
        raw = rows(con, "select isbn, isbn13 from raw.goodbooks_books where book_id = '1'")
        assert raw == [("439023483", "9.78043902348e+12")]  # as the dataset has them
        ids = rows(
            con,
            """select id_type, id_value from core.book_identifiers
               where book_key = (select book_key from staging.stg_goodbooks__books
                                 where goodbooks_book_id = 1) order by all""",
        )
    assert ("isbn10", "0439023483") in ids and ("isbn13", "9780439023481") in ids
    assert not [v for t, v in ids if t == "isbn13" and "e" in v]


# ----------------------------------------------------------------------------- importing


def test_import_matches_by_id_isbn_and_title_and_says_why_the_rest_did_not(db, tmp_path):
    with open_for_reading(db) as con:
        hunger = rows(
            con, "select title, authors from core.books where goodreads_book_id = 2767052"
        )
    books = [
        {**DA_VINCI, "rating": 5},
        {"book_id": 900_000_001, "title": "whatever", "author": "x", "isbn": "0439023483"},
        {"book_id": 900_000_002, "title": "Angels & Demons", "author": "Dan Brown", "rating": 4},
        {"book_id": 900_000_003, "title": "A Book Nobody Wrote", "author": "No One", "rating": 3},
    ]
    with connect(db) as con:
        report = import_export(con, export_file(tmp_path, books), name="ada")
        shelf = read_shelf(con, "ada")
        assert hunger and shelf["book_key"][1] is not None
    assert (report.rows, report.matched) == (4, 3)
    assert shelf["match_method"].to_list() == ["goodreads_id", "isbn10", "title_author", None]
    assert "no book with this Goodreads id" in shelf["unmatched_reason"][3]
    # Never mixed into the dataset's ratings.
    with open_for_reading(db) as con:
        assert rows(con, "select count(*) from core.ratings where user_key < 0") == [(0,)]


def test_reimport_replaces_forget_deletes_and_nothing_matching_stores_nothing(db, tmp_path):
    with connect(db) as con:
        import_export(con, export_file(tmp_path, [{**DA_VINCI, "rating": 5}]), name="ada")
        import_export(
            con,
            export_file(tmp_path, [{**DA_VINCI, "rating": 2}, {"book_id": 1, "title": "x"}]),
            name="ada",
        )
        assert rows(con, "select count(*) from readers.readers") == [(1,)]
        assert read_shelf(con, "ada")["rating"].to_list()[0] == 2
        assert forget(con, "ada") == 2
        assert rows(con, "select count(*) from readers.shelf") == [(0,)]
        nothing = export_file(tmp_path, [{"book_id": 900_000_009, "title": "Zzz", "author": "Q"}])
        with pytest.raises(ShelfwiseError, match="none of its 1 books is in the catalogue"):
            import_export(con, nothing, name="bob")
        assert rows(con, "select count(*) from readers.readers") == [(0,)]
        with pytest.raises(ShelfwiseError, match="no reader 'bob'; none imported yet"):
            read_shelf(con, "bob")


def test_the_reader_commands_answer_in_one_line(db, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"Title\nDune\n")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["-q", "reader", "import", str(bad), "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1 and len(err.splitlines()) == 1 and "no Book Id" in err
    main(
        [
            "reader",
            "import",
            str(export_file(tmp_path, [{**DA_VINCI, "rating": 5}])),
            "--name",
            "ada",
            "--db",
            str(db),
        ]
    )
    assert "1 of 1 books matched" in " ".join(capsys.readouterr().out.split())
    main(["recommend", "--reader", "ada", "--model", "als", "--n", "3", "--db", str(db)])
    assert "rated 5" in capsys.readouterr().out
    main(["reader", "forget", "ada", "--db", str(db)])
    with pytest.raises(SystemExit):
        main(["recommend", "--reader", "ada", "--db", str(db)])
    assert "no reader 'ada'" in capsys.readouterr().err


# ----------------------------------------------------------------------------- fold-in


def _user_export(con, user_idx: int, data) -> list[dict]:
    row = data.train[user_idx]
    keys = dict(rows(con, "select book_idx, book_key from matrix.books"))
    meta = {
        k: (gid, t, a)
        for k, gid, t, a in rows(
            con, "select book_key, goodreads_book_id, title, authors from core.books"
        )
    }
    out = []
    for idx, rating in zip(row.indices, row.data, strict=True):
        gid, title, authors = meta[keys[int(idx)]]
        out.append(
            {"book_id": gid, "title": title, "author": authors.split(",")[0], "rating": int(rating)}
        )
    return out


@pytest.mark.parametrize("kind, overlap", [("als", 0.9), ("mf", 0.7), ("knn", 1.0)])
def test_a_users_own_training_ratings_folded_in_recommend_what_their_trained_row_does(
    db, tmp_path, kind, overlap
):
    """als folds in by its exact user step: the recommendations agree almost everywhere. mf's
    stored user factors also hold the SVD++ term, whose book vectors are not stored, so the
    fold-in (the ridge step over the stored book factors) agrees less; knn needs no solve."""
    with connect(db) as con:
        data = store.read_ratings(con)
        trained = store.read_model(con, serving.run_for(con, kind)).with_history(data.train)
        got = []
        for user in range(0, 200, 20):
            path = export_file(tmp_path, _user_export(con, user, data), f"u{user}.csv")
            import_export(con, path, name=f"u{user}")
            _, folded = serving.fold_in_run(con, kind, read_shelf(con, f"u{user}"))
            mine = folded.model.scores(np.array([0]))[0]
            theirs = trained.scores(np.array([user]))[0]
            seen = data.train[user].indices
            mine[seen] = theirs[seen] = -np.inf
            top = set(np.argsort(-mine)[:10]) & set(np.argsort(-theirs)[:10])
            got.append(len(top) / 10)
    assert np.mean(got) >= overlap, got


def test_recommendations_never_list_a_book_on_any_shelf_and_to_read_counts_when_asked(db, tmp_path):
    with open_for_reading(db) as con:
        popular = rows(
            con,
            """select b.goodreads_book_id, b.title, b.authors from core.books as b
               inner join matrix.books as m using (book_key) order by m.n_ratings desc limit 30""",
        )
    books = [{**DA_VINCI, "rating": 5}]
    books += [
        {"book_id": g, "title": t, "author": a.split(",")[0], "shelf": s}
        for (g, t, a), s in zip(popular, ["to-read"] * 10 + ["abandoned"] * 20, strict=True)
    ]
    with connect(db) as con:
        import_export(con, export_file(tmp_path, books), name="ada")
        shelf = read_shelf(con, "ada")
        shelved = set(shelf["book_key"].drop_nulls().to_list())
        for kind in ("als", "ease", "ranking_blend"):
            recs = serving.recommend_for_shelf(con, shelf, kind=kind, n=20)
            assert recs and not shelved & {r.book.book_key for r in recs}, kind
        run_id = serving.run_for(con, "als")
        assert len(serving.reader_feedback(con, run_id, shelf).books) == 1
        assert len(serving.reader_feedback(con, run_id, shelf, to_read=True).books) == 11


@pytest.mark.parametrize("kind", ["mf", "als", "svd", "baseline", "knn", "ease"])
def test_a_fold_ins_reasons_add_up_to_its_score(published_warehouse, kind):
    """The reasons are an exact decomposition: the reader's books' contributions sum to the
    score, less only the terms their books do not change (a book's bias)."""
    with open_for_reading(published_warehouse) as con:
        data = store.read_ratings(con)
        keys = dict(rows(con, "select book_idx, book_key from matrix.books"))
        row = data.train[7]
        shelf = pl.DataFrame(
            {
                "book_key": [keys[int(i)] for i in row.indices],
                "rating": row.data.astype(int).tolist(),
                "shelf": ["read"] * row.nnz,
            },
            schema={"book_key": pl.Int64, "rating": pl.Int8, "shelf": pl.String},
        )
        _, folded = serving.fold_in_run(con, kind, shelf)
    books = np.arange(data.shape[1])
    score = folded.model.scores(np.array([0]))[0].astype(np.float64)
    factor_kind = getattr(folded.model, "book_factors", None) is not None or kind == "baseline"
    if factor_kind and folded.model.book_bias is not None:
        score -= folded.model.book_bias
    np.testing.assert_allclose(folded.contributions(books).sum(axis=1), score, atol=2e-4)
