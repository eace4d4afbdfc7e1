"""What each raw file of each dataset looks like: names, columns, types, ranges and keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB type the reader casts to; a failed cast sends the line to raw.rejects
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    # For text columns of metadata files: when present, the value must be a plain whole number (an
    # id).
    digits: bool = False
    # A file may lack this column altogether (older or trimmed releases): it loads as NULL.
    optional: bool = False


@dataclass(frozen=True)
class RawFile:
    stem: str  # file name without .csv/.gz, e.g. "ratings"
    table: str  # raw.<table>
    columns: tuple[Column, ...]
    required: bool = False
    key: tuple[str, ...] = ()  # duplicate rows on this key go to raw.rejects (first one kept)
    fmt: Literal["csv", "jsonl"] = "csv"
    # Metadata files keep every column as text; staging models try_cast what they use.
    all_text: bool = False
    aliases: tuple[str, ...] = ()
    must_have_rows: bool = False

    @property
    def names(self) -> tuple[str, ...]:
        return (self.stem, *self.aliases)


def _ids(*names: str) -> tuple[Column, ...]:
    return tuple(Column(n, "BIGINT", minimum=0) for n in names)


GOODBOOKS: tuple[RawFile, ...] = (
    RawFile(
        "ratings",
        "goodbooks_ratings",
        (*_ids("user_id", "book_id"), Column("rating", "INTEGER", 1, 5)),
        required=True,
        key=("user_id", "book_id"),
        must_have_rows=True,
    ),
    RawFile(
        "books",
        "goodbooks_books",
        (
            Column("book_id", "VARCHAR", digits=True),
            *(
                Column(n, "VARCHAR", nullable=True, digits=True)
                for n in ("goodreads_book_id", "work_id")
            ),
            # Identifiers a reader's Goodreads export is matched by. The real isbn lost its leading
            # zeros and isbn13 is a float with lost digits: staging repairs what it can.
            Column("best_book_id", "VARCHAR", nullable=True, digits=True, optional=True),
            Column("isbn", "VARCHAR", nullable=True, optional=True),
            Column("isbn13", "VARCHAR", nullable=True, optional=True),
            *(
                Column(n, "VARCHAR", nullable=True)
                for n in (
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
                )
            ),
        ),
        key=("book_id",),
        all_text=True,
    ),
    RawFile(
        "tags",
        "goodbooks_tags",
        (Column("tag_id", "BIGINT", 0), Column("tag_name", "VARCHAR", nullable=True)),
        key=("tag_id",),
    ),
    RawFile(
        "book_tags",
        "goodbooks_book_tags",
        (*_ids("goodreads_book_id", "tag_id"), Column("count", "BIGINT", minimum=-1_000_000_000)),
        # The real file repeats a few (book, tag) pairs; they are kept, as the dataset has them.
    ),
    RawFile(
        "to_read",
        "goodbooks_to_read",
        _ids("user_id", "book_id"),
        key=("user_id", "book_id"),
        aliases=("toread",),
    ),
)

UCSD: tuple[RawFile, ...] = (
    RawFile(
        "goodreads_interactions",
        "ucsd_interactions",
        (
            *_ids("user_id", "book_id"),
            Column("is_read", "INTEGER", 0, 1),
            Column("rating", "INTEGER", 0, 5),  # 0 = shelved but not rated
            Column("is_reviewed", "INTEGER", 0, 1),
        ),
        required=True,
        key=("user_id", "book_id"),
        must_have_rows=True,
    ),
    RawFile(
        "user_id_map",
        "ucsd_user_id_map",
        (Column("user_id_csv", "BIGINT", 0), Column("user_id", "VARCHAR")),
        key=("user_id_csv",),
    ),
    RawFile(
        "book_id_map",
        "ucsd_book_id_map",
        (Column("book_id_csv", "BIGINT", 0), Column("book_id", "BIGINT", 0)),
        key=("book_id_csv",),
    ),
    RawFile(
        "goodreads_books",
        "ucsd_books",
        (
            *(
                Column(n, "VARCHAR", nullable=True)
                for n in (
                    "book_id",
                    "work_id",
                    "title",
                    "title_without_series",
                    "publication_year",
                    "average_rating",
                    "ratings_count",
                    "image_url",
                    "url",
                    "isbn",
                    "isbn13",
                )
            ),
            Column("authors", "JSON", nullable=True),
            Column("popular_shelves", "JSON", nullable=True),
        ),
        fmt="jsonl",
        key=("book_id",),
    ),
    RawFile(
        "goodreads_book_authors",
        "ucsd_authors",
        (Column("author_id", "VARCHAR"), Column("name", "VARCHAR", nullable=True)),
        fmt="jsonl",
        key=("author_id",),
    ),
)

DATASETS: dict[str, tuple[RawFile, ...]] = {"goodbooks": GOODBOOKS, "ucsd": UCSD}


def all_raw_files() -> tuple[RawFile, ...]:
    return GOODBOOKS + UCSD
