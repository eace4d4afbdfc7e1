"""Helpers the test modules share (imported as ``helpers``; fixtures live in conftest.py)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable
from pathlib import Path

import duckdb

from base.config import LoadConfig, PublishConfig, TransformConfig
from base.registry import make_params
from warehouse.db import open_for_reading, writer

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample" / "goodbooks"
# How the shared published warehouse is built: the bundled sample (1,000 real books, Dan Brown's
# among them; 100,000 generated ratings), books with at least 20 ratings, every kind at its
# defaults, t-SNE for mf only (speed), evaluated with 20 bootstrap resamples.
PUBLISHED_TRANSFORM = TransformConfig(min_book_ratings=20)
PUBLISHED_BOOTSTRAP = 20


# Small, fast settings for each kind (tiny data); every stochastic kind gets the same seed.
SMALL: dict[str, dict] = {
    "baseline": {},
    "svd": {"k": 3, "random_state": 7},
    "als": {"factors": 4, "iterations": 10, "regularization": 0.5, "random_state": 7},
    "mf": {"factors": 4, "iterations": 8, "reg": 0.05, "random_state": 7},
    "knn": {"k": 10, "k_store": 10, "shrinkage": 5.0, "min_support": 1, "damping": 0.1},
    "ease": {"lam": 5.0, "k_store": 24},
}


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> list[tuple]:
    """A query's rows as tuples (fully consumed, so the connection stays usable)."""
    return (
        con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    )


def build_warehouse(
    db: Path,
    data_dir: Path,
    transform: TransformConfig,
    *,
    fits: dict[str, dict] | None = None,
    publish: PublishConfig | None = None,
    tsne: Iterable[str] = (),
    n_boot: int | None = None,
) -> Path:
    """The one way tests build a warehouse: load ``data_dir``, transform, fit and publish each kind
    of ``fits`` (kind -> params overrides; default none), t-SNE maps only for ``tsne`` kinds, and
    evaluate with ``n_boot`` resamples when given. Returns ``db`` (with its read snapshot)."""
    from shelfwise.pipeline.evaluate import evaluate
    from shelfwise.pipeline.fit import fit_and_publish
    from warehouse.load import load_dataset
    from warehouse.runner import run_transforms

    publish = publish or PublishConfig(tsne=False)
    with writer(db) as con:
        load_dataset(con, LoadConfig(source=transform.source, directory=data_dir))
        run_transforms(con, transform)
        for kind, overrides in (fits or {}).items():
            config = dataclasses.replace(publish, tsne=publish.tsne or kind in tsne)
            fit_and_publish(con, kind, make_params(kind, overrides), config)
        if n_boot is not None:
            evaluate(con, n_boot=n_boot)
    return db


# A Goodreads library export's columns, in the order the site writes them.
EXPORT_COLUMNS = [
    "Book Id",
    "Title",
    "Author",
    "Author l-f",
    "Additional Authors",
    "ISBN",
    "ISBN13",
    "My Rating",
    "Average Rating",
    "Publisher",
    "Binding",
    "Number of Pages",
    "Year Published",
    "Original Publication Year",
    "Date Read",
    "Date Added",
    "Bookshelves",
    "Bookshelves with positions",
    "Exclusive Shelf",
    "My Review",
    "Spoiler",
    "Private Notes",
    "Read Count",
    "Owned Copies",
]


def goodreads_export(books: Iterable[dict]) -> str:
    """The text of a goodreads_library_export.csv in the real layout.

    Each dict may give book_id, title, author, isbn, isbn13, rating (0 = unrated), shelf, review,
    date_read; ISBNs are written as the site writes them (``="..."``), reviews are quoted and may
    hold commas, quotes, HTML and line breaks.
    """
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerow(EXPORT_COLUMNS)
    for b in books:
        author = b.get("author", "")
        last_first = ", ".join(reversed(author.rsplit(" ", 1))) if author else ""
        writer.writerow(
            [
                b["book_id"],
                b["title"],
                author,
                last_first,
                "",
                f'="{b.get("isbn", "")}"',
                f'="{b.get("isbn13", "")}"',
                b.get("rating", 0),
                "3.95",
                "Vintage",
                "Paperback",
                "320",
                "2005",
                "2002",
                b.get("date_read", ""),
                b.get("date_added", "2020/01/05"),
                b.get("shelf", "read"),
                f"{b.get('shelf', 'read')} (#1)",
                b.get("shelf", "read"),
                b.get("review", ""),
                "",
                "",
                "1" if b.get("shelf", "read") == "read" else "0",
                "0",
            ]
        )
    return out.getvalue()


def fingerprint(db: Path) -> dict[str, str]:
    """Digests of a warehouse file and its read snapshot: equal before and after = untouched."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in (db, db.with_name(db.name + ".read"))
        if p.exists()
    }


def reader_library(db: Path, *, last_by_isbn13: bool = False, padding: int = 0) -> dict:
    """A reader's Goodreads export of the matrix's 14 most-rated books (rated high and low, read
    unrated, currently reading, to-read) and two books no catalogue has.

    ``last_by_isbn13``: the 14 are drawn among books with a unique ISBN-13, and the last is listed
    under an edition id no catalogue knows, so only its ISBN-13 matches. ``padding``: that many
    more unmatched rows with 5,000-character reviews. Returns the export's text and the book keys
    (``keys`` in order, ``rated_high`` and ``to_read`` as sets).
    """
    isbn = (
        """inner join (
               select min(book_key) as book_key, id_value from core.book_identifiers
               where id_type = 'isbn13' group by id_value having count(*) = 1
           ) as i using (book_key)"""
        if last_by_isbn13
        else ""
    )
    with open_for_reading(db) as con:
        popular = rows(
            con,
            f"""select b.book_key, b.goodreads_book_id, b.title, b.authors,
                       {"min(i.id_value)" if last_by_isbn13 else "null"}
                from core.books as b inner join matrix.books as m using (book_key) {isbn}
                group by all
                order by any_value(m.n_ratings) desc, b.book_key limit 14""",
        )
    ratings = [5, 5, 5, 4, 4, 2, 1, 0, 0, 0, 0, 0, 3, 5]
    shelves = ["read"] * 9 + ["currently-reading", "to-read", "to-read", "read", "read"]
    books = [
        {
            "book_id": gid,
            "title": title,
            "author": authors.split(",")[0],
            "rating": rating,
            "shelf": shelf,
            "review": 'Loved it, "really",\nsecond line <b>bold</b>' if rating == 5 else "",
        }
        for (_, gid, title, authors, _), rating, shelf in zip(
            popular, ratings, shelves, strict=True
        )
    ]
    if last_by_isbn13:
        books[-1] = {**books[-1], "book_id": 990000001, "isbn13": popular[-1][4]}
    books += [
        {"book_id": 990000002, "title": "A Book Nobody Has", "author": "Ann Other", "rating": 4},
        {"book_id": 990000003, "title": "Another Missing One", "author": "", "shelf": "to-read"},
    ]
    books += [
        {
            "book_id": 980000000 + i,
            "title": f"Padding {i}",
            "author": "A. Writer",
            "review": "x" * 5_000,
        }
        for i in range(padding)
    ]
    keys = [k for k, *_ in popular]
    return {
        "text": goodreads_export(books),
        "keys": keys,
        "rated_high": {k for k, r in zip(keys, ratings, strict=True) if r >= 4},
        "to_read": {k for k, s in zip(keys, shelves, strict=True) if s == "to-read"},
    }
