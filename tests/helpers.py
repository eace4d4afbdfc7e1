"""Helpers the test modules share (imported as ``helpers``; fixtures live in conftest.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import duckdb

from base.config import LoadConfig, PublishConfig, TransformConfig
from base.registry import make_params
from warehouse.db import writer

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
