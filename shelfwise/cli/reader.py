"""A reader's own Goodreads library: import the export, show the match report, forget it."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from shelfwise.cli.options import DB_OPTION
from shelfwise.cli.output import console, print_rows


@click.group()
def reader() -> None:
    """Your Goodreads library export (My Books > Import and export > Export library)."""


@reader.command("import")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--name", default=None, help="The reader's name [default: the file's name].")
@DB_OPTION
def import_cmd(file: Path, name: str | None, db_path: Path) -> None:
    """Match an export's books to the catalogue and keep them as a reader (never mixed into the
    dataset's ratings); importing a name again replaces that reader."""
    from warehouse.db import writer
    from warehouse.readers import import_export

    with writer(db_path, create=False) as con:
        report = import_export(con, file, name=name)
    table = Table(
        title=f"reader {report.name}: {report.matched:,} of {report.rows:,} books matched"
    )
    table.add_column("matched by")
    table.add_column("books", justify="right")
    for method, count in sorted(report.by_method.items(), key=lambda kv: -kv[1]):
        table.add_row(method, f"{count:,}")
    table.add_row("not matched", f"{report.unmatched:,}")
    console.print(table)
    if report.unmatched:
        console.print(f"see why: `shelfwise reader show {report.name!r} --unmatched`")


@reader.command("show")
@click.argument("name")
@click.option("--unmatched", is_flag=True, help="Only the books that matched nothing, and why.")
@click.option("--limit", type=click.IntRange(min=1), default=50, help="Rows to print at most.")
@DB_OPTION
def show(name: str, unmatched: bool, limit: int, db_path: Path) -> None:
    """A reader's books: shelf, rating, the catalogue book each matched and how."""
    import polars as pl

    from warehouse.db import open_for_reading
    from warehouse.readers import read_shelf

    with open_for_reading(db_path) as con:
        shelf = read_shelf(con, name)
    if unmatched:
        shelf = shelf.filter(pl.col("book_key").is_null())
        columns = ["line", "title", "author", "isbn13", "unmatched_reason"]
    else:
        columns = ["line", "title", "author", "shelf", "rating", "book_key", "match_method"]
    print_rows(columns, shelf.select(columns).head(limit).rows())
    if shelf.height > limit:
        console.print(f"[dim]first {limit} of {shelf.height:,} rows; use --limit for more[/dim]")


@reader.command("forget")
@click.argument("name")
@DB_OPTION
def forget_cmd(name: str, db_path: Path) -> None:
    """Delete every row of a reader."""
    from warehouse.db import writer
    from warehouse.readers import forget

    with writer(db_path, create=False) as con:
        n = forget(con, name)
    console.print(f"forgot reader {name!r} ({n:,} books)")
