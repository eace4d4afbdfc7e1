"""The one ``shelfwise`` command: thin subcommands over the library's functions."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

import click
import duckdb
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from shelfwise.config import DEFAULT_DB, SOURCES, LoadConfig, TransformConfig
from shelfwise.errors import ShelfwiseError

log = logging.getLogger("shelfwise")
console = Console()
err_console = Console(stderr=True)

DB_OPTION = click.option(
    "--db",
    "db_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_DB,
    show_default=True,
    envvar="SHELFWISE_DB",
    show_envvar=True,
    help="Warehouse file.",
)


class State:
    verbose: bool = False
    quiet: bool = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("-v", "--verbose", is_flag=True, help="Debug logging and full tracebacks.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool, quiet: bool) -> None:
    """Shelfwise: Goodreads ratings -> DuckDB warehouse -> factor models -> dashboard."""
    state = ctx.ensure_object(State)
    state.verbose, state.quiet = verbose, quiet
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, show_time=False, markup=False)],
        force=True,
    )
    # Third-party chatter stays out of the user's way unless asked for.
    for noisy in ("numba", "urllib3", "werkzeug", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def progress_enabled() -> bool:
    state = click.get_current_context().find_object(State)
    return not (state and state.quiet)


def status(message: str):
    """A spinner for a step without a countable length (silent with --quiet)."""
    return console.status(message) if progress_enabled() else contextlib.nullcontext()


# --------------------------------------------------------------------------- data in


@cli.group()
def generate() -> None:
    """Write generated data in the datasets' own formats (for work without the real files)."""


@generate.command("goodbooks")
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder.")
@click.option("--ratings", "n_ratings", type=click.IntRange(min=1), default=5_976_479, help="Number of ratings.")
@click.option("--users", "n_users", type=click.IntRange(min=1), default=53_424, help="Number of users.")
@click.option("--books", "n_books", type=click.IntRange(min=1), default=None, help="Use only the N most-rated real books (default: all 10,000).")
@click.option("--seed", type=int, default=42, help="Random seed; the same seed writes the same bytes.")
@click.option(
    "--books-csv",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=Path("data/sample/goodbooks/books.csv.gz"),
    help="The real goodbooks books.csv (plain or .gz) whose books the ratings are about.",
)
def generate_goodbooks_cmd(dest: Path, n_ratings: int, n_users: int, n_books: int | None, seed: int, books_csv: Path) -> None:
    """Goodbooks-shaped ratings over the real books, with planted author/series/tag tastes."""
    from warehouse.generate import generate_goodbooks

    folder = books_csv.parent
    tags = _first_existing(folder, "tags.csv", "tags.csv.gz")
    book_tags = _first_existing(folder, "book_tags.csv", "book_tags.csv.gz", "book_tags_book_subset.csv.gz")
    counts = generate_goodbooks(
        dest, books_csv=books_csv, tags_csv=tags, book_tags_csv=book_tags, n_ratings=n_ratings,
        n_users=n_users, n_books=n_books, seed=seed, progress=progress_enabled(),
    )
    _print_counts(f"generated goodbooks data in {dest}", counts)


@generate.command("ucsd")
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder.")
@click.option("--interactions", "n_interactions", type=click.IntRange(min=1), required=True, help="Rows of goodreads_interactions.csv (the real dump has about 229M).")
@click.option("--seed", type=int, default=42, help="Random seed.")
def generate_ucsd_cmd(dest: Path, n_interactions: int, seed: int) -> None:
    """UCSD Goodreads-format files (interactions, id maps, books JSON) in bounded memory."""
    from warehouse.generate import generate_ucsd

    counts = generate_ucsd(dest, n_interactions=n_interactions, seed=seed, progress=progress_enabled())
    _print_counts(f"generated UCSD-format data in {dest}", counts)


def _first_existing(folder: Path, *names: str) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("file")
    table.add_column("rows", justify="right")
    for name, n in counts.items():
        table.add_row(name, f"{n:,}")
    console.print(table)


@cli.group()
def download() -> None:
    """Fetch a dataset's files from its public release address."""


@download.command("goodbooks")
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output folder.")
@click.option("--base-url", default=None, help="Mirror to fetch from instead of the release address.")
def download_goodbooks_cmd(dest: Path, base_url: str | None) -> None:
    """Download goodbooks-10k: verified checksums, atomic writes, resumable."""
    from warehouse.download import download_goodbooks

    paths = download_goodbooks(dest, base_url=base_url, progress=progress_enabled())
    for p in paths:
        console.print(f"[green]ok[/green] {p}")


@cli.command()
@click.argument("source", type=click.Choice(SOURCES))
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option("--max-reject-fraction", type=click.FloatRange(0, 1), default=0.01, help="Stop the load if more than this share of a file's rows is bad.")
@DB_OPTION
def load(source: str, directory: Path, max_reject_fraction: float, db_path: Path) -> None:
    """Load a dataset folder's raw files into the warehouse (all files or none)."""
    from warehouse.db import connect
    from warehouse.load import load_dataset

    config = LoadConfig(source=source, directory=directory, max_reject_fraction=max_reject_fraction)  # type: ignore[arg-type]
    with connect(db_path) as con:
        with status(f"loading {source} from {directory}"):
            reports = load_dataset(con, config)
    table = Table(title=f"{source} -> {db_path}")
    for col in ("file", "table", "rows read", "loaded", "rejected"):
        table.add_column(col, justify="right" if col not in ("file", "table") else "left")
    for r in reports:
        if r.skipped:
            table.add_row(r.file, f"raw.{r.table}", "unchanged, skipped", "", "")
        else:
            table.add_row(r.file, f"raw.{r.table}", f"{r.rows_read:,}", f"{r.rows_loaded:,}", f"{r.rows_rejected:,}")
    console.print(table)
    rejected = sum(r.rows_rejected for r in reports)
    if rejected:
        console.print(f"[yellow]{rejected:,} rows rejected[/yellow]: see `shelfwise sql \"select * from raw.rejects\"`")


def transform_options(f):
    for option in reversed(
        [
            click.option("--source", type=click.Choice(SOURCES), default="goodbooks", help="Which source's matrix to build."),
            click.option("--min-user-ratings", type=click.IntRange(min=1), default=10, help="Keep users with at least this many ratings."),
            click.option("--min-book-ratings", type=click.IntRange(min=1), default=100, help="Keep books with at least this many ratings."),
            click.option("--kcore/--no-kcore", default=False, help="Repeat both filters until nothing changes."),
            click.option("--test-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.2, help="Share of ratings held out for testing."),
            click.option("--split", type=click.Choice(["random", "temporal"]), default="random", help="random: seeded hash per rating; temporal: each user's latest ratings."),
            click.option("--seed", type=int, default=42, help="Seed of the random split."),
        ]
    ):
        f = option(f)
    return f


def build_transform_config(**kw: object) -> TransformConfig:
    return TransformConfig(**kw)  # type: ignore[arg-type]


@cli.command()
@transform_options
@DB_OPTION
def transform(db_path: Path, **kw: object) -> None:
    """Build core.* and the filtered, indexed matrix.* tables with the SQL models."""
    from warehouse.db import connect
    from warehouse.runner import run_transforms

    config = build_transform_config(**kw)
    table = Table(title=f"transform {config.source} -> {db_path}")
    table.add_column("model")
    table.add_column("rows", justify="right")
    table.add_column("seconds", justify="right")
    with connect(db_path) as con:
        with status("running SQL models"):
            results = run_transforms(con, config)
        for r in results:
            table.add_row(r.relation, "view" if r.rows is None else f"{r.rows:,}", f"{r.seconds:.2f}")
        console.print(table)
        summary = con.execute(
            """select (select count(*) from matrix.users), (select count(*) from matrix.books),
                      (select count(*) from matrix.ratings where split = 'train'),
                      (select count(*) from matrix.ratings where split = 'test')"""
        ).fetchall()[0]
    console.print(f"matrix: {summary[0]:,} users x {summary[1]:,} books; {summary[2]:,} train / {summary[3]:,} test ratings")


@cli.command()
@click.argument("query")
@DB_OPTION
@click.option("--limit", type=int, default=50, help="Rows to print at most.")
def sql(query: str, db_path: Path, limit: int) -> None:
    """Run a SQL query against the warehouse (read-only) and print the result as a table."""
    from warehouse.db import connect

    with connect(db_path, read_only=True) as con:
        try:
            cursor = con.execute(query)
        except duckdb.Error as exc:
            raise ShelfwiseError(f"query failed: {str(exc).strip().splitlines()[0]}") from exc
        if cursor.description is None:
            return
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchmany(limit + 1)
    print_rows(columns, rows[:limit])
    if len(rows) > limit:
        console.print(f"[dim]first {limit} rows shown; use --limit for more[/dim]")


def print_rows(columns: list[str], rows: list[tuple]) -> None:
    table = Table()
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(*("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected errors become one line on stderr and exit code 1."""
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="shelfwise", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ShelfwiseError as exc:
        if verbose:
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing half-written was kept")
        sys.exit(130)


if __name__ == "__main__":
    main()
