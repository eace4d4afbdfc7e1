"""A reader's Goodreads library export: parse it, match it to the catalogue, store or forget it."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from base.errors import BadInputError, ShelfwiseError
from warehouse.db import scalar, transaction
from warehouse.store import now

log = logging.getLogger(__name__)

# Columns matched by name (order and extra columns do not matter): the export must have these...
REQUIRED = ("Book Id", "Title")
# ...and these are read when present (older exports lack some).
OPTIONAL = (
    "Author",
    "ISBN",
    "ISBN13",
    "My Rating",
    "Exclusive Shelf",
    "Date Read",
    "Date Added",
)
# Exports are a few thousand rows; a file this large is not one.
MAX_BYTES = 20 * 1024 * 1024
IMPLICIT_SHELVES = ("read", "currently-reading")

# The parsed export, one row per book line, before matching.
SHELF_SCHEMA = {
    "line": pl.Int64,
    "goodreads_book_id": pl.Int64,
    "title": pl.String,
    "author": pl.String,
    "isbn": pl.String,
    "isbn13": pl.String,
    "rating": pl.Int8,
    "shelf": pl.String,
    "date_read": pl.Date,
    "date_added": pl.Date,
}


def _excel_text(column: pl.Expr) -> pl.Expr:
    """``="0441013597"`` (how Goodreads writes ISBNs) and ``=""`` as plain text or null."""
    text = column.str.strip_chars().str.replace(r'^="?', "").str.replace(r'"$', "")
    return pl.when(text.str.len_chars() > 0).then(text).otherwise(None)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def parse_export(data: bytes, *, name: str = "export") -> pl.DataFrame:
    """The rows of a Goodreads library export (``goodreads_library_export.csv``), typed.

    Columns are matched by name; quoted reviews with commas, quotes and line breaks are the CSV
    reader's business. Raises BadInputError with one line naming the file, line and reason for:
    more than 20 MB, bytes that are not UTF-8 (a BOM is fine), no header or no rows, a missing
    ``Book Id`` or ``Title`` column, a ``Book Id`` that is not a whole number, a rating outside
    0-5. A book listed twice keeps its first line.

    Returns
    -------
    DataFrame with columns SHELF_SCHEMA: ``rating`` null when unrated (the export's 0),
    ``shelf`` the exclusive shelf ('read' when the column is missing), ISBNs without ``="..."``.
    """
    if len(data) > MAX_BYTES:
        raise BadInputError(
            f"{name}: {len(data) / 1e6:.0f} MB is more than a library export "
            f"({MAX_BYTES // (1024 * 1024)} MB at most)"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(
            f"{name}: line {_line_of(data, exc.start)}: not UTF-8 text (Goodreads exports are "
            "UTF-8; re-save the file as UTF-8)"
        ) from None
    if not data.strip():
        raise BadInputError(f"{name}: line 1: the file is empty")
    try:
        raw = pl.read_csv(io.BytesIO(data), infer_schema=False, truncate_ragged_lines=False)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise BadInputError(f"{name}: not a CSV file the reader can parse: {first}") from None
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise BadInputError(
            f"{name}: line 1: not a Goodreads library export: no {' or '.join(missing)} column "
            f"(found {', '.join(raw.columns[:6])}{'...' if len(raw.columns) > 6 else ''})"
        )
    if raw.height == 0:
        raise BadInputError(f"{name}: line 2: the export has a header but no books")
    for column in OPTIONAL:
        if column not in raw.columns:
            raw = raw.with_columns(pl.lit(None, dtype=pl.String).alias(column))
    # Reviews may span lines, so a row's file line is not its index: number rows from 2 as the
    # export's own "line" (1 is the header); errors name the row and its title.
    rows = raw.with_row_index("row", offset=2)
    book_id = pl.col("Book Id").str.strip_chars()
    bad_id = rows.filter(~book_id.str.contains(r"^[0-9]+$") | book_id.is_null())
    if bad_id.height:
        r = bad_id.row(0, named=True)
        raise BadInputError(
            f"{name}: row {r['row']}: Book Id {r['Book Id']!r} is not a whole number "
            f"({r['Title']!r})"
        )
    rating = pl.col("My Rating").str.strip_chars()
    bad_rating = rows.filter(rating.is_not_null() & ~rating.str.contains(r"^[0-5]$"))
    if bad_rating.height:
        r = bad_rating.row(0, named=True)
        raise BadInputError(
            f"{name}: row {r['row']}: My Rating {r['My Rating']!r} is not 0-5 ({r['Title']!r})"
        )
    parsed = rows.select(
        pl.col("row").cast(pl.Int64).alias("line"),
        book_id.cast(pl.Int64).alias("goodreads_book_id"),
        pl.col("Title").str.strip_chars().alias("title"),
        pl.col("Author").str.strip_chars().alias("author"),
        _excel_text(pl.col("ISBN")).alias("isbn"),
        _excel_text(pl.col("ISBN13")).alias("isbn13"),
        pl.when(rating.cast(pl.Int8, strict=False) > 0)
        .then(rating.cast(pl.Int8, strict=False))
        .otherwise(None)
        .alias("rating"),
        pl.col("Exclusive Shelf").str.strip_chars().fill_null("read").alias("shelf"),
        pl.col("Date Read")
        .str.strip_chars()
        .str.to_date("%Y/%m/%d", strict=False)
        .alias("date_read"),
        pl.col("Date Added")
        .str.strip_chars()
        .str.to_date("%Y/%m/%d", strict=False)
        .alias("date_added"),
    )
    unique = parsed.unique(subset="goodreads_book_id", keep="first", maintain_order=True)
    if unique.height < parsed.height:
        log.warning(
            "%s: %d book(s) listed twice; the first line of each is kept",
            name,
            parsed.height - unique.height,
        )
    return unique.cast(SHELF_SCHEMA)


# Matching, most trustworthy first: the Goodreads id (an edition id: goodbooks' goodreads_book_id
# and best_book_id, any UCSD edition of a work), then the ISBN-13 (or one derived from the
# ISBN-10), then the ISBN-10, then the normalised title (series suffix dropped) and first author.
MATCH_SQL = """
with shelf as (
    select * from shelfwise_shelf
),

ids as (
    select id_type, id_value, min(book_key) as book_key, count(distinct book_key) as n
    from core.book_identifiers group by id_type, id_value
),

titles as (
    select
        regexp_replace(lower(regexp_replace(title, '\\s*\\([^)]*#[^)]*\\)\\s*$', '')),
            '[^a-z0-9]+', '', 'g') as title_norm,
        regexp_replace(lower(split_part(authors, ',', 1)), '[^a-z0-9]+', '', 'g') as author_norm,
        min(book_key) as book_key,
        count(distinct book_key) as n
    from core.books
    where title is not null and authors is not null
    group by 1, 2
),

isbn_digits as (
    select
        line,
        regexp_replace(coalesce(isbn13, ''), '[^0-9]', '', 'g') as isbn13_digits,
        upper(regexp_replace(coalesce(isbn, ''), '[^0-9Xx]', '', 'g')) as isbn10_digits,
        regexp_replace(lower(regexp_replace(title, '\\s*\\([^)]*#[^)]*\\)\\s*$', '')),
            '[^a-z0-9]+', '', 'g') as title_norm,
        regexp_replace(lower(split_part(coalesce(author, ''), ',', 1)), '[^a-z0-9]+', '', 'g')
            as author_norm
    from shelf
),

final as (
    select
        s.*,
        coalesce(g.book_key, i13.book_key, i10.book_key, t.book_key) as book_key,
        case
            when g.book_key is not null then 'goodreads_id'
            when i13.book_key is not null then 'isbn13'
            when i10.book_key is not null then 'isbn10'
            when t.book_key is not null then 'title_author'
        end as match_method,
        case
            when coalesce(g.book_key, i13.book_key, i10.book_key, t.book_key) is not null then null
            when t.n > 1 then 'several books share this title and author'
            when d.isbn13_digits = '' and d.isbn10_digits = '' then
                'no book with this Goodreads id, title and author (and no ISBN)'
            else 'no book with this Goodreads id, ISBN, title and author'
        end as unmatched_reason
    from shelf as s
    inner join isbn_digits as d on d.line = s.line
    left join ids as g
        on g.id_type = 'goodreads' and g.id_value = cast(s.goodreads_book_id as varchar)
    left join ids as i13 on i13.id_type = 'isbn13' and i13.id_value = d.isbn13_digits
    left join ids as i10 on i10.id_type = 'isbn10' and i10.id_value = d.isbn10_digits
    left join titles as t
        on t.title_norm = d.title_norm and t.author_norm = d.author_norm and t.n = 1
        and d.title_norm <> ''
)

select * from final order by line
"""


def match_export(con: duckdb.DuckDBPyConnection, shelf: pl.DataFrame) -> pl.DataFrame:
    """``shelf`` (:func:`parse_export`) with ``book_key``, ``match_method`` and
    ``unmatched_reason`` from the catalogue (core.book_identifiers, core.books); read-only."""
    con.register("shelfwise_shelf", shelf.to_arrow())
    try:
        return con.sql(MATCH_SQL).pl()
    finally:
        con.unregister("shelfwise_shelf")


@dataclass(frozen=True)
class ImportReport:
    name: str
    reader_id: int
    rows: int
    matched: int
    by_method: dict[str, int]

    @property
    def unmatched(self) -> int:
        return self.rows - self.matched


def import_export(
    con: duckdb.DuckDBPyConnection, path: Path, *, name: str | None = None
) -> ImportReport:
    """Parse, match and store a reader's export as ``name`` (default: the file's stem), replacing
    a reader of that name; all or nothing. Nothing is written when no row matches."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ShelfwiseError(f"cannot read {path}: {exc.strerror or exc}") from exc
    name = (name or path.stem).strip()
    if not re.fullmatch(r"[\w .@+-]{1,80}", name):
        raise ShelfwiseError(f"reader name {name!r}: use 1-80 letters, digits, spaces or . @ + - _")
    if scalar(con, "select count(*) from core.book_identifiers") in (None, 0):
        raise ShelfwiseError("no catalogue to match against: load and transform a dataset first")
    matched = match_export(con, parse_export(data, name=str(path)))
    n_matched = int(matched["book_key"].is_not_null().sum())
    if n_matched == 0:
        raise ShelfwiseError(
            f"{path}: none of its {matched.height:,} books is in the catalogue; nothing was stored"
        )
    with transaction(con):
        old = scalar(con, "select reader_id from readers.readers where name = ?", [name])
        if old is not None:
            con.execute("delete from readers.shelf where reader_id = ?", [old])
            con.execute("delete from readers.readers where reader_id = ?", [old])
        reader_id = int(scalar(con, "select coalesce(max(reader_id), 0) + 1 from readers.readers"))
        con.execute(
            "insert into readers.readers values (?, ?, ?, ?, ?, ?, ?)",
            [
                reader_id,
                name,
                str(path),
                hashlib.sha256(data).hexdigest(),
                now(),
                matched.height,
                n_matched,
            ],
        )
        con.register(
            "shelfwise_matched",
            matched.with_columns(pl.lit(reader_id).alias("reader_id")).to_arrow(),
        )
        try:
            con.execute("insert into readers.shelf by name select * from shelfwise_matched")
        finally:
            con.unregister("shelfwise_matched")
    counts = matched.group_by("match_method").len().drop_nulls()
    return ImportReport(
        name,
        reader_id,
        matched.height,
        n_matched,
        dict(zip(counts["match_method"], counts["len"], strict=True)),
    )


def reader_id(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """The id of reader ``name``, or a one-line error listing the readers there are."""
    found = scalar(con, "select reader_id from readers.readers where name = ?", [name])
    if found is None:
        names = [
            r[0] for r in con.execute("select name from readers.readers order by name").fetchall()
        ]
        known = f"; readers: {', '.join(names)}" if names else "; none imported yet"
        raise ShelfwiseError(f"no reader {name!r}{known} (`shelfwise reader import FILE`)")
    return int(found)


def read_shelf(con: duckdb.DuckDBPyConnection, name: str) -> pl.DataFrame:
    """Every stored row of reader ``name`` (readers.shelf), in file order."""
    rid = reader_id(con, name)
    return con.sql(
        "select * exclude (reader_id) from readers.shelf where reader_id = $id order by line",
        params={"id": rid},
    ).pl()


def forget(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """Delete every row of reader ``name``; returns how many shelf rows went."""
    rid = reader_id(con, name)
    with transaction(con):
        n = int(scalar(con, "select count(*) from readers.shelf where reader_id = ?", [rid]))
        con.execute("delete from readers.shelf where reader_id = ?", [rid])
        con.execute("delete from readers.readers where reader_id = ?", [rid])
    return n
