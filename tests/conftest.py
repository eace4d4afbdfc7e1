"""Shared fixtures: fresh warehouses, tiny files written in tmp_path, a tiny goodbooks folder."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import duckdb
import pytest
from helpers import PUBLISHED_BOOTSTRAP, PUBLISHED_TRANSFORM, SAMPLE, build_warehouse

from base.registry import fittable
from warehouse.db import connect

BOOKS_HEADER = (
    "book_id,goodreads_book_id,work_id,authors,original_publication_year,original_title,title,"
    "language_code,average_rating,ratings_count,ratings_1,ratings_2,ratings_3,ratings_4,ratings_5,"
    "image_url,small_image_url"
)


def write_file(path: Path, text: str | bytes, *, gz: bool = False) -> Path:
    """Write ``text`` (str as UTF-8, or raw bytes) to ``path``, gzip-compressed when ``gz``."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def write_jsonl_file(path: Path, records: Iterable[dict], *, gz: bool = True) -> Path:
    return write_file(path, "".join(json.dumps(r) + "\n" for r in records), gz=gz)


def books_csv_text(books: Iterable[tuple[int, int | str, str]]) -> str:
    """A goodbooks books.csv with every column the loader reads, from (book_id, work_id, title).

    goodreads_book_id is 1000 + book_id.
    """
    lines = [BOOKS_HEADER]
    for book_id, work_id, title in books:
        lines.append(
            f'{book_id},{1000 + book_id},{work_id},"Author {book_id}",2001.0,{title},{title},'
            "eng,4.0,100,"
            f"1,2,3,4,5,http://img/{book_id}.jpg,http://img/{book_id}s.jpg"
        )
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def published_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared published warehouse (see PUBLISHED_TRANSFORM): every kind fitted, evaluated.

    Read-only for every test: one that writes (a digest's history, a refit) copies it first.
    """
    if not (SAMPLE / "ratings.csv.gz").exists():
        pytest.fail(
            f"the bundled sample {SAMPLE} is missing (data/sample/make_sample.py writes it)"
        )
    db = tmp_path_factory.mktemp("published") / "shelfwise.duckdb"
    return build_warehouse(
        db,
        SAMPLE,
        PUBLISHED_TRANSFORM,
        fits={kind: {} for kind in fittable()},
        tsne=("mf",),
        n_boot=PUBLISHED_BOOTSTRAP,
    )


@pytest.fixture
def write_csv() -> Callable[..., Path]:
    """``write_csv(path, text, gz=False)``: a file of exactly these bytes (gzipped when ``gz``)."""
    return write_file


@pytest.fixture
def write_jsonl() -> Callable[..., Path]:
    """``write_jsonl(path, records, gz=True)``: one JSON object per line."""
    return write_jsonl_file


@pytest.fixture
def books_csv() -> Callable[[Iterable[tuple[int, int | str, str]]], str]:
    """``books_csv([(book_id, work_id, title), ...])``: the text of a goodbooks books.csv."""
    return books_csv_text


@pytest.fixture
def tmp_db() -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh in-memory warehouse with the fixed tables and empty raw tables."""
    con = connect(":memory:")
    yield con
    con.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where a test's on-disk warehouse goes (not created yet)."""
    return tmp_path / "warehouse" / "shelfwise.duckdb"


@pytest.fixture
def goodbooks_dir(tmp_path: Path) -> Path:
    """A tiny valid goodbooks folder: 4 users x 3 books (15 ratings), books, tags, book_tags,
    to_read."""
    folder = tmp_path / "goodbooks"
    ratings = ["user_id,book_id,rating"]
    ratings += [f"{u},{b},{(u + b) % 5 + 1}" for u in (1, 2, 3, 4) for b in (1, 2, 3)]
    ratings += ["5,1,4", "5,2,3", "5,3,2"]
    write_file(folder / "ratings.csv", "\n".join(ratings) + "\n")
    write_file(folder / "books.csv", books_csv_text((b, 500 + b, f"Title {b}") for b in (1, 2, 3)))
    write_file(folder / "tags.csv", "tag_id,tag_name\n0,to-read\n1,fantasy\n2,classics\n")
    write_file(
        folder / "book_tags.csv",
        "goodreads_book_id,tag_id,count\n1001,0,900\n1001,1,50\n1001,2,20\n1002,2,10\n",
    )
    write_file(folder / "to_read.csv", "user_id,book_id\n1,2\n9,1\n")
    return folder


UCSD_INTERACTIONS_HEADER = "user_id,book_id,is_read,rating,is_reviewed"


@pytest.fixture
def ucsd_dir(tmp_path: Path) -> Path:
    """A tiny valid UCSD folder: editions 100 and 101 of work 900, edition 200 of work 901
    (csv ids 0, 1, 2)."""
    folder = tmp_path / "ucsd"
    write_file(
        folder / "goodreads_interactions.csv",
        UCSD_INTERACTIONS_HEADER
        + "\n"
        + "\n".join(
            [
                "0,0,1,5,1",  # user 0 rated edition 100 of work 900
                "0,1,0,0,0",  # ... and shelved edition 101 of the same work
                "1,1,1,0,0",  # user 1 read edition 101 without rating it
                "1,2,1,3,0",  # user 1 rated work 901
                "2,0,0,0,0",  # user 2 only shelved work 900
            ]
        )
        + "\n",
    )
    write_file(
        folder / "user_id_map.csv",
        "user_id_csv,user_id\n0,8842281e1d1347389f2ab93d60773d4d\n1,72fb0d0087d28c832f15776b0d936598\n"
        "2,ab2923b738ea3082f5f3efcbbfacb218\n",
    )
    write_file(folder / "book_id_map.csv", "book_id_csv,book_id\n0,100\n1,101\n2,200\n")
    # As in the real dump: every scalar is a string, authors are {author_id, role}, extra fields
    # exist.
    write_jsonl_file(
        folder / "goodreads_books.json.gz",
        [
            {
                "book_id": "100",
                "work_id": "900",
                "title": "Edition A",
                "title_without_series": "Edition A",
                "publication_year": "2001",
                "average_rating": "4.10",
                "ratings_count": "50",
                "image_url": "http://a",
                "url": "http://u",
                "isbn": "0312853122",
                "authors": [
                    {"author_id": "7", "role": ""},
                    {"author_id": "8", "role": "Translator"},
                ],
                "popular_shelves": [
                    {"count": "99", "name": "to-read"},
                    {"count": "10", "name": "Fantasy"},
                ],
            },
            {
                "book_id": "101",
                "work_id": "900",
                "title": "Edition B",
                "title_without_series": "Edition B",
                "publication_year": "",
                "average_rating": "4.00",
                "ratings_count": "80",
                "image_url": "",
                "url": "",
                "authors": [{"author_id": "7", "role": ""}],
                "popular_shelves": [],
            },
            {
                "book_id": "200",
                "work_id": "901",
                "title": "Other",
                "title_without_series": "Other",
                "publication_year": "1999",
                "average_rating": "3.00",
                "ratings_count": "5",
                "image_url": "",
                "url": "",
                "authors": [{"author_id": "9", "role": ""}],
                "popular_shelves": [{"count": "3", "name": "history"}],
            },
        ],
    )
    write_jsonl_file(
        folder / "goodreads_book_authors.json.gz",
        [
            {"author_id": "7", "name": "Ann Author", "average_rating": "4.0", "ratings_count": "3"},
            {
                "author_id": "8",
                "name": "Tom Translator",
                "average_rating": "3.9",
                "ratings_count": "1",
            },
        ],
    )
    return folder
