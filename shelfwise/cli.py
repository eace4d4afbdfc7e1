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
    help="The real goodbooks books.csv (plain or .gz) whose books the ratings are about; tags.csv and book_tags.csv beside it are used too. Default: the checkout's data/goodbooks-10k/books.csv.gz.",
)
def generate_goodbooks_cmd(
    dest: Path, n_ratings: int, n_users: int, n_books: int | None, seed: int, books_csv: Path | None
) -> None:
    """Goodbooks-shaped ratings over the real books, with planted author/series/tag tastes."""
    from warehouse.generate import generate_goodbooks

    if books_csv is None:  # found from the checkout, not the working directory
        books_csv = Path(__file__).resolve().parents[1] / "data" / "goodbooks-10k" / "books.csv.gz"
        if not books_csv.is_file():
            raise ShelfwiseError(
                f"no --books-csv given and {books_csv} is not there: pass the real goodbooks books.csv"
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
    _print_counts(f"generated goodbooks data in {dest}", counts)


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
    from warehouse.generate import generate_ucsd

    counts = generate_ucsd(
        dest, n_interactions=n_interactions, seed=seed, progress=progress_enabled()
    )
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


@cli.command()
@click.argument("source", type=click.Choice(SOURCES))
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--max-reject-fraction",
    type=click.FloatRange(0, 1),
    default=0.01,
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
            f'[yellow]{rejected:,} rows rejected[/yellow]: see `shelfwise sql "select * from raw.rejects"`'
        )


def transform_options(f):
    for option in reversed(
        [
            click.option(
                "--source",
                type=click.Choice(SOURCES),
                default="goodbooks",
                help="Which source's matrix to build.",
            ),
            click.option(
                "--min-user-ratings",
                type=click.IntRange(min=1),
                default=10,
                help="Keep users with at least this many ratings.",
            ),
            click.option(
                "--min-book-ratings",
                type=click.IntRange(min=1),
                default=100,
                help="Keep books with at least this many ratings.",
            ),
            click.option(
                "--kcore/--no-kcore",
                default=False,
                help="Repeat both filters until nothing changes.",
            ),
            click.option(
                "--test-fraction",
                type=click.FloatRange(0, 1, max_open=True),
                default=0.2,
                help="Share of ratings held out for testing.",
            ),
            click.option(
                "--split",
                type=click.Choice(["random", "temporal"]),
                default="random",
                help="random: seeded hash per rating; temporal: each user's latest ratings.",
            ),
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
    from warehouse.db import writer
    from warehouse.runner import run_transforms

    config = build_transform_config(**kw)
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
        f"matrix: {summary[0]:,} users x {summary[1]:,} books; {summary[2]:,} train / {summary[3]:,} test ratings"
    )


@cli.command()
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


def print_rows(columns: list[str], rows: list[tuple]) -> None:
    table = Table()
    for c in columns:
        table.add_column(c)
    for row in rows:
        table.add_row(
            *("" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row)
        )
    console.print(table)


# --------------------------------------------------------------------------- models


def _progress_step():
    """A step callback that updates one spinner line (or logs with --quiet off and no TTY)."""
    if not progress_enabled():
        return contextlib.nullcontext(lambda message: None)
    return _StatusSteps()


class _StatusSteps:
    def __enter__(self):
        self._status = console.status("starting")
        self._status.__enter__()
        return self

    def __call__(self, message: str) -> None:
        log.debug(message)
        self._status.update(message)

    def __exit__(self, *exc):
        return self._status.__exit__(*exc)


def _kind_overrides(kind: str, options: tuple[str, ...]) -> dict:
    """--param name=value pairs, typed like the kind's defaults."""
    import dataclasses

    from shelfwise.params import PARAMS, ParamError, parse_value

    defaults = {f.name: f.default for f in dataclasses.fields(PARAMS[kind])}
    out: dict = {}
    for item in options:
        name, sep, value = item.partition("=")
        if not sep or name not in defaults:
            raise ShelfwiseError(
                f"--param {item!r}: expected NAME=VALUE with NAME one of {', '.join(defaults)}"
            )
        try:
            out[name] = parse_value(name, value, defaults[name])
        except ParamError as exc:
            raise ShelfwiseError(f"--param {item!r}: {exc}") from exc
    return out


@cli.command()
@click.argument("kind", type=click.Choice(["baseline", "svd", "als", "mf"]))
@click.option(
    "--param",
    "-p",
    "param",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a hyper-parameter (e.g. -p factors=64); see docs/models.md.",
)
@click.option(
    "--neighbours",
    type=click.IntRange(1, 500),
    default=50,
    help="Cosine neighbours stored per book.",
)
@click.option(
    "--tsne/--no-tsne", default=True, help="Also store a t-SNE map (PCA is always stored)."
)
@click.option(
    "--keep-runs",
    type=click.IntRange(min=1),
    default=3,
    help="Published runs of this kind to keep.",
)
@DB_OPTION
def fit(
    kind: str, param: tuple[str, ...], neighbours: int, tsne: bool, keep_runs: int, db_path: Path
) -> None:
    """Fit a model on the train split and publish its factors, neighbours and maps atomically."""
    from shelfwise.params import PublishConfig
    from shelfwise.pipeline import fit_and_publish
    from shelfwise.tuning import params_for
    from warehouse.db import writer

    with writer(db_path, create=False) as con:
        params = params_for(con, kind, _kind_overrides(kind, param))
        with _progress_step() as step:
            run_id = fit_and_publish(
                con, kind, params, PublishConfig(neighbours, tsne, keep_runs), step=step
            )
        seconds = con.execute(
            "select seconds from models.runs where run_id = ?", [run_id]
        ).fetchall()[0][0]
    console.print(f"published {kind} run {run_id} in {seconds:.1f}s with {params}")


@cli.command()
@click.argument(
    "kinds",
    metavar="KIND...",
    nargs=-1,
    required=True,
    type=click.Choice(["baseline", "svd", "als", "mf"]),
)
@click.option(
    "--axis",
    "-a",
    "axes",
    multiple=True,
    metavar="NAME=V1,V2,...",
    help="Search these values of NAME instead of the default ones (adds the axis if new).",
)
@click.option(
    "--only", is_flag=True, help="Search only the --axis axes, the rest stay at their defaults."
)
@click.option(
    "--validation-fraction",
    type=click.FloatRange(0.01, 0.5),
    default=0.15,
    help="Share of the train split held out for validation.",
)
@click.option("--seed", type=int, default=0, help="Seed of the validation carve.")
@click.option(
    "--passes", type=click.IntRange(1, 5), default=2, help="Coordinate-search passes over the axes."
)
@DB_OPTION
def tune(
    kinds: tuple[str, ...],
    axes: tuple[str, ...],
    only: bool,
    validation_fraction: float,
    seed: int,
    passes: int,
    db_path: Path,
) -> None:
    """Search hyper-parameters on a validation carve of the train split; fit and refresh then use them.

    The test split is never read: it stays for `shelfwise evaluate`. Explicit `fit -p` overrides win.
    """
    from shelfwise import tuning
    from warehouse.db import writer

    for kind in dict.fromkeys(kinds):
        try:
            given = dict(tuning.parse_axis(a, kind) for a in axes)
        except ValueError as exc:
            raise ShelfwiseError(f"--axis {exc}") from exc
        if only and not given:
            raise ShelfwiseError("--only needs at least one --axis")
        space = tuning.with_axes(kind, given, only=only)
        with writer(db_path, create=False) as con, _progress_step() as step:
            result = tuning.tune(
                con,
                kind,
                space=space,
                fraction=validation_fraction,
                random_state=seed,
                passes=passes,
                step=step,
            )
        table = Table(
            title=f"{kind}: {len(result.trials)} points, validation {result.metric} (best first)"
        )
        names = tuning.axis_names(space)
        for name in names:
            table.add_column(name, justify="right")
        table.add_column(result.metric, justify="right")
        table.add_column("fit s", justify="right")
        ranked = sorted(
            result.trials, key=lambda t: -t.value if result.metric != "rmse" else t.value
        )
        for trial in ranked[:15]:
            table.add_row(
                *(str(trial.params.get(n, "")) for n in names),
                f"{trial.value:.4f}",
                f"{trial.seconds:.1f}",
            )
        console.print(table)
        chosen = ", ".join(f"{k}={v}" for k, v in result.params.items())
        console.print(
            f"tuned {kind}: {result.metric} {result.value:.4f} on validation with {chosen}"
        )


@cli.command()
@click.option("--k", type=click.IntRange(min=1), default=10, help="Cut-off of the top-N metrics.")
@click.option(
    "--bootstrap",
    "n_boot",
    type=click.IntRange(min=10),
    default=200,
    help="Bootstrap resamples of users for the intervals.",
)
@DB_OPTION
def evaluate(k: int, n_boot: int, db_path: Path) -> None:
    """Score every published model on the held-out split; store and print the metrics."""
    from shelfwise.pipeline import evaluate as run_evaluation
    from warehouse.db import writer

    with writer(db_path, create=False) as con, _progress_step() as step:
        rows = run_evaluation(con, k=k, n_boot=n_boot, step=step)
    print_metrics(rows)


def print_metrics(rows) -> None:
    names = []
    for r in rows:
        label = r.metric.name + (
            f"@{r.metric.k}" if r.metric.k and r.metric.name != "coverage" else ""
        )
        if label not in names:
            names.append(label)
    kinds = list(dict.fromkeys(r.kind for r in rows))
    table = Table(title="test-split metrics (95% bootstrap interval over users)")
    table.add_column("metric")
    for kind in kinds:
        table.add_column(kind, justify="right")
    cells = {}
    for r in rows:
        label = r.metric.name + (
            f"@{r.metric.k}" if r.metric.k and r.metric.name != "coverage" else ""
        )
        m = r.metric
        cells[(label, r.kind)] = f"{m.value:.4f}" + (
            "" if m.ci_low == m.ci_high else f" [{m.ci_low:.4f}, {m.ci_high:.4f}]"
        )
    for label in names:
        table.add_row(label, *(cells.get((label, kind), "") for kind in kinds))
    console.print(table)


@cli.command()
@click.argument("title")
@click.option(
    "--model",
    "kind",
    type=click.Choice(["svd", "als", "mf"]),
    default="mf",
    help="Whose factors to compare.",
)
@click.option("--n", type=click.IntRange(1, 200), default=10, help="How many books.")
@DB_OPTION
def similar(title: str, kind: str, n: int, db_path: Path) -> None:
    """Books nearest a title by cosine similarity of the model's book factors."""
    from shelfwise.pipeline import similar as find_similar
    from warehouse.db import open_for_reading

    with open_for_reading(db_path) as con:
        book, books = find_similar(con, title, kind=kind, n=n)
    print_books(f"nearest to {book.title} ({book.authors}) under {kind}", books, "cosine")


def print_books(title: str, books, score_name: str, extra: list[str] | None = None) -> None:
    table = Table(title=title)
    for col in ("#", "title", "authors", score_name, *(["closest favourite"] if extra else [])):
        table.add_column(col)
    for i, b in enumerate(books, 1):
        table.add_row(
            str(i),
            b.title or f"book {b.book_key}",
            b.authors or "",
            f"{b.score:.3f}",
            *([extra[i - 1]] if extra else []),
        )
    console.print(table)


@cli.command()
@click.option(
    "--user",
    "user_key",
    type=int,
    default=None,
    help="User id as in the source (goodbooks user_id).",
)
@click.option(
    "--books",
    "titles",
    multiple=True,
    help="Favourite titles: recommend near their centroid. Repeat or list several after one flag.",
)
@click.option(
    "--model",
    "kind",
    type=click.Choice(["baseline", "svd", "als", "mf"]),
    default="mf",
    help="Which model.",
)
@click.option("--n", type=click.IntRange(1, 200), default=10, help="How many books.")
@click.argument("more_titles", nargs=-1)
@DB_OPTION
def recommend(
    user_key: int | None,
    titles: tuple[str, ...],
    kind: str,
    n: int,
    more_titles: tuple[str, ...],
    db_path: Path,
) -> None:
    """Recommend for a user (never a book they rated) or for a few favourite books (never those)."""
    from shelfwise.pipeline import recommend_for_books, recommend_for_user
    from warehouse.db import open_for_reading

    titles = titles + more_titles
    if (user_key is None) == (not titles):
        raise ShelfwiseError("give either --user ID or --books TITLE [TITLE ...]")
    with open_for_reading(db_path) as con:
        if user_key is not None:
            books = recommend_for_user(con, user_key, kind=kind, n=n)
            print_books(f"top {n} for user {user_key} under {kind}", books, "score")
        else:
            favourites, books, closest = recommend_for_books(con, list(titles), kind=kind, n=n)
            print_books(
                "near the centroid of " + "; ".join(f.title or "" for f in favourites),
                books,
                "cosine",
                [favourites[c].title or "" for c in closest],
            )


@cli.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Dataset folder (default: where the source was last loaded from).",
)
@click.option("--source", type=click.Choice(SOURCES), default="goodbooks", help="Which source.")
@click.option(
    "--min-user-ratings",
    type=click.IntRange(min=1),
    default=None,
    help="Override the last transform's value.",
)
@click.option(
    "--min-book-ratings",
    type=click.IntRange(min=1),
    default=None,
    help="Override the last transform's value.",
)
@click.option(
    "--kinds", default="baseline,svd,als,mf", help="Comma-separated model kinds to keep fresh."
)
@click.option("--tsne/--no-tsne", default=True, help="Store t-SNE maps besides PCA.")
@click.option("--force", is_flag=True, help="Refit every model even if nothing changed.")
@DB_OPTION
def refresh(
    data_dir: Path | None,
    source: str,
    min_user_ratings: int | None,
    min_book_ratings: int | None,
    kinds: str,
    tsne: bool,
    force: bool,
    db_path: Path,
) -> None:
    """Bring everything up to date: changed raw files, transforms, fits, neighbours, maps, evaluation."""
    import dataclasses

    from shelfwise.params import KINDS, PublishConfig
    from shelfwise.refresh import last_transform
    from shelfwise.refresh import refresh as run_refresh
    from warehouse.db import writer

    wanted = [k.strip() for k in kinds.split(",") if k.strip()]
    if not wanted:
        raise ShelfwiseError(f"--kinds: give at least one of {', '.join(KINDS)}")
    unknown = set(wanted) - set(KINDS)
    if unknown:
        raise ShelfwiseError(
            f"--kinds: unknown kind(s) {', '.join(sorted(unknown))}; choose from {', '.join(KINDS)}"
        )
    with writer(
        db_path, create=data_dir is not None
    ) as con:  # with --data it may build one from scratch
        transform = None
        overrides = {
            k: v
            for k, v in {
                "min_user_ratings": min_user_ratings,
                "min_book_ratings": min_book_ratings,
            }.items()
            if v is not None
        }
        if overrides:
            base = last_transform(con) or TransformConfig(source=source)  # type: ignore[arg-type]
            transform = dataclasses.replace(base, **overrides)
        with _progress_step() as step:
            report = run_refresh(
                con,
                source=source,
                data_dir=data_dir,
                transform=transform,
                kinds=tuple(wanted),
                publish=PublishConfig(tsne=tsne),
                force=force,
                step=step,
            )
    if not report.changed:
        console.print("nothing changed: raw files, matrix and models are up to date")
        return
    if report.loaded:
        console.print(f"loaded {len(report.loaded)} changed file(s)")
    if report.transformed:
        console.print("rebuilt core and matrix tables")
    for kind, run_id in report.fitted.items():
        console.print(f"published {kind} run {run_id}")
    if report.evaluated:
        console.print(
            'evaluated the published models: `shelfwise sql "select * from model_metrics"`'
        )


@cli.command()
@click.option(
    "--host", default="127.0.0.1", help="Interface to bind (only this machine by default)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8050, help="Port.")
@click.option("--debug", is_flag=True, help="Dash debug mode (never on a shared host).")
@DB_OPTION
def dashboard(host: str, port: int, debug: bool, db_path: Path) -> None:
    """Serve the read-only dashboard in the browser."""
    from dashboards.app import DashboardSettings, create_app

    app = create_app(DashboardSettings(db_path=db_path, debug=debug))
    console.print(f"Shelfwise dashboard: http://{host}:{port}/  (Ctrl-C stops it)")
    app.run(host=host, port=port, debug=debug)


@cli.command()
@click.option(
    "--favorites",
    "--favourites",
    "favourites_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="JSON list of titles, or one title per line.",
)
@click.option(
    "--pick",
    type=click.IntRange(min=1),
    default=3,
    help="Favourites drawn at random for this digest.",
)
@click.option("--n", type=click.IntRange(1, 100), default=8, help="Books to recommend.")
@click.option(
    "--model",
    "kind",
    type=click.Choice(["svd", "als", "mf"]),
    default="mf",
    help="Whose book factors to use.",
)
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of the pick [default: ISO year*100 + ISO week, so one week is reproducible].",
)
@click.option(
    "--history-weeks",
    type=click.IntRange(min=0),
    default=8,
    help="Never repeat a book sent in this many past weeks.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Also write digest.txt, digest.html and digest.eml here.",
)
@click.option(
    "--send",
    is_flag=True,
    help="Mail it via SMTP (SHELFWISE_SMTP_* and SHELFWISE_MAIL_* variables) and record it.",
)
@click.option(
    "--dry-run", is_flag=True, help="Build and print only: never send or record, even with --send."
)
@DB_OPTION
def digest(
    favourites_file: Path,
    pick: int,
    n: int,
    kind: str,
    seed: int | None,
    history_weeks: int,
    out_dir: Path | None,
    send: bool,
    dry_run: bool,
    db_path: Path,
) -> None:
    """Weekly digest: books nearest the centroid of a few random favourites, never repeated."""
    import datetime as dt

    import numpy as np

    from shelfwise import digest as mail
    from warehouse.db import open_for_reading, writer

    titles = mail.read_favourites(favourites_file)
    deliver = send and not dry_run
    settings = (
        mail.SmtpSettings.from_env() if deliver else None
    )  # bad settings fail before any work
    seed = mail.week_seed(dt.date.today()) if seed is None else seed
    rng = np.random.default_rng(seed)
    opened = writer(db_path, create=False) if deliver else open_for_reading(db_path)
    with opened as con:
        built = mail.build_digest(
            con, titles, pick=pick, n=n, kind=kind, rng=rng, history_weeks=history_weeks
        )
        for skipped in built.unresolved:
            err_console.print(
                f"warning: skipped favourite: {skipped}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        message = mail.render(
            built,
            sender=settings.mail_from if settings else None,
            recipients=settings.mail_to if settings else (),
        )
        if out_dir is not None:
            for path in mail.write_message(message, out_dir):
                log.info("wrote %s", path)
        if not deliver:
            console.print(
                mail.render_text(built), markup=False, highlight=False, soft_wrap=True, end=""
            )
            console.print(f"[dim]seed {seed}; not sent{' (--dry-run)' if send else ''}[/dim]")
            return
        result = mail.send(message, settings)
        digest_id = mail.record(con, built, result.accepted, message_id=result.message_id)
    console.print(
        f"sent digest {digest_id} ({len(built.recommendations)} books, seed {seed}) to {', '.join(result.accepted)}"
    )
    if result.refused:
        raise ShelfwiseError(
            f"the server refused {', '.join(result.refused)}; the others got digest {digest_id}"
        )


def main(argv: list[str] | None = None) -> None:
    """Entry point: expected errors become one line on stderr and exit code 1."""
    verbose = "-v" in (argv or sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="shelfwise", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `shelfwise`: the help, not an error
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        sys.exit(0)
    except click.UsageError as exc:
        # One line like every other error, not click's usage block; the help says the rest.
        where = f"`{exc.ctx.command_path} --help`" if exc.ctx else "`shelfwise --help`"
        message = " ".join(exc.format_message().split())
        err_console.print(
            f"error: {message} (see {where})", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ShelfwiseError as exc:
        if verbose:
            raise
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except (
        KeyboardInterrupt,
        duckdb.InterruptException,
    ):  # Ctrl-C lands in Python or inside a query
        err_console.print("interrupted; nothing half-written was kept")
        sys.exit(130)
    except Exception as exc:  # an unexpected failure: still one line, the traceback on request
        if verbose:
            raise
        first = (str(exc).strip().splitlines() or [""])[0]
        err_console.print(
            f"error: {type(exc).__name__}: {first} (run with -v for the traceback)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
