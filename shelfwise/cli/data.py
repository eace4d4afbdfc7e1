"""Data in: generate, download, load, transform, and read-only SQL."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from base.config import SOURCES, LoadConfig, TransformConfig
from base.errors import ShelfwiseError
from shelfwise.cli.options import DB_OPTION, config_option, transform_options
from shelfwise.cli.output import console, print_counts, print_rows, progress_enabled, status


@click.group()
def generate() -> None:
    """Write generated data in the datasets' own formats (for work without the real files)."""


@generate.command("goodbooks")
@click.option(
    "--dest", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder."
)
@click.option(
    "--ratings",
    "n_ratings",
    type=click.IntRange(min=1),
    default=5_976_479,
    help="Number of ratings.",
)
@click.option(
    "--users", "n_users", type=click.IntRange(min=1), default=53_424, help="Number of users."
)
@click.option(
    "--books",
    "n_books",
    type=click.IntRange(min=1),
    default=None,
    help="Use only the N most-rated real books (default: all 10,000).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=42,
    help="Random seed; the same seed writes the same bytes.",
)
@click.option(
    "--books-csv",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help=(
        "The real goodbooks books.csv (plain or .gz) whose books the ratings are about; "
        "tags.csv and book_tags.csv beside it are used too. "
        "Default: the checkout's data/goodbooks-10k/books.csv.gz."
    ),
)
def generate_goodbooks_cmd(
    dest: Path, n_ratings: int, n_users: int, n_books: int | None, seed: int, books_csv: Path | None
) -> None:
    """Goodbooks-shaped ratings over the real books, with planted author/series/tag tastes."""
    from synth.goodbooks import generate_goodbooks

    if books_csv is None:  # found from the checkout, not the working directory
        books_csv = Path(__file__).resolve().parents[2] / "data" / "goodbooks-10k" / "books.csv.gz"
        if not books_csv.is_file():
            raise ShelfwiseError(
                f"no --books-csv given and {books_csv} is not there: "
                "pass the real goodbooks books.csv"
            )
    folder = books_csv.parent
    tags = _first_existing(folder, "tags.csv", "tags.csv.gz")
    book_tags = _first_existing(
        folder, "book_tags.csv", "book_tags.csv.gz", "book_tags_book_subset.csv.gz"
    )
    counts = generate_goodbooks(
        dest,
        books_csv=books_csv,
        tags_csv=tags,
        book_tags_csv=book_tags,
        n_ratings=n_ratings,
        n_users=n_users,
        n_books=n_books,
        seed=seed,
        progress=progress_enabled(),
    )
    print_counts(f"generated goodbooks data in {dest}", counts)


@generate.command("ucsd")
@click.option(
    "--dest", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder."
)
@click.option(
    "--interactions",
    "n_interactions",
    type=click.IntRange(min=1),
    required=True,
    help="Rows of goodreads_interactions.csv (the real dump has about 229M).",
)
@click.option("--seed", type=click.IntRange(min=0), default=42, help="Random seed.")
def generate_ucsd_cmd(dest: Path, n_interactions: int, seed: int) -> None:
    """UCSD Goodreads-format files (interactions, id maps, books JSON) in bounded memory."""
    from synth.ucsd import generate_ucsd

    counts = generate_ucsd(
        dest, n_interactions=n_interactions, seed=seed, progress=progress_enabled()
    )
    print_counts(f"generated UCSD-format data in {dest}", counts)


def _first_existing(folder: Path, *names: str) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


@click.group()
def download() -> None:
    """Fetch a dataset's files from its public release address."""


@download.command("goodbooks")
@click.option(
    "--dest", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder."
)
@click.option(
    "--base-url", default=None, help="Mirror to fetch from instead of the release address."
)
def download_goodbooks_cmd(dest: Path, base_url: str | None) -> None:
    """Download goodbooks-10k: verified checksums, atomic writes, resumable."""
    from warehouse.download import download_goodbooks

    paths = download_goodbooks(dest, base_url=base_url, progress=progress_enabled())
    for p in paths:
        console.print(f"[green]ok[/green] {p}")


@click.command()
@click.argument("source", type=click.Choice(SOURCES))
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@config_option(
    LoadConfig,
    "max_reject_fraction",
    type=click.FloatRange(0, 1),
    help="Stop the load if more than this share of a file's rows is bad.",
)
@DB_OPTION
def load(source: str, directory: Path, max_reject_fraction: float, db_path: Path) -> None:
    """Load a dataset folder's raw files into the warehouse (all files or none)."""
    from warehouse.db import writer
    from warehouse.load import load_dataset

    config = LoadConfig(source=source, directory=directory, max_reject_fraction=max_reject_fraction)  # type: ignore[arg-type]
    with writer(db_path) as con, status(f"loading {source} from {directory}"):
        reports = load_dataset(con, config)
    table = Table(title=f"{source} -> {db_path}")
    for col in ("file", "table", "rows read", "loaded", "rejected"):
        table.add_column(col, justify="right" if col not in ("file", "table") else "left")
    for r in reports:
        if r.skipped:
            table.add_row(r.file, f"raw.{r.table}", "unchanged, skipped", "", "")
        else:
            table.add_row(
                r.file,
                f"raw.{r.table}",
                f"{r.rows_read:,}",
                f"{r.rows_loaded:,}",
                f"{r.rows_rejected:,}",
            )
    console.print(table)
    rejected = sum(r.rows_rejected for r in reports)
    if rejected:
        console.print(
            f"[yellow]{rejected:,} rows rejected[/yellow]: "
            'see `shelfwise sql "select * from raw.rejects"`'
        )


@click.command()
@transform_options
@DB_OPTION
def transform(db_path: Path, **kw: object) -> None:
    """Build core.* and the filtered, indexed matrix.* tables with the SQL models."""
    from warehouse.db import writer
    from warehouse.runner import run_transforms

    config = TransformConfig(**kw)  # type: ignore[arg-type]
    table = Table(title=f"transform {config.source} -> {db_path}")
    table.add_column("model")
    table.add_column("rows", justify="right")
    table.add_column("seconds", justify="right")
    with writer(db_path, create=False) as con:
        with status("running SQL models"):
            results = run_transforms(con, config)
        for r in results:
            table.add_row(
                r.relation, "view" if r.rows is None else f"{r.rows:,}", f"{r.seconds:.2f}"
            )
        console.print(table)
        summary = con.execute(
            """select (select count(*) from matrix.users), (select count(*) from matrix.books),
                      (select count(*) from matrix.ratings where split = 'train'),
                      (select count(*) from matrix.ratings where split = 'test')"""
        ).fetchall()[0]
    console.print(
        f"matrix: {summary[0]:,} users x {summary[1]:,} books; "
        f"{summary[2]:,} train / {summary[3]:,} test ratings"
    )


@click.command()
@click.argument("query")
@DB_OPTION
@click.option("--limit", type=click.IntRange(min=1), default=50, help="Rows to print at most.")
def sql(query: str, db_path: Path, limit: int) -> None:
    """Run a SQL query against the warehouse (read-only) and print the result as a table."""
    from warehouse.db import open_for_reading, run_user_query

    with open_for_reading(db_path) as con:
        cursor = run_user_query(con, query)
        if cursor.description is None:
            return
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(limit + 1)
    print_rows(columns, rows[:limit])
    if len(rows) > limit:
        console.print(f"[dim]first {limit} rows shown; use --limit for more[/dim]")
