"""Overview: what is loaded, how ratings are spread, the long tail the filters cut, and every
run."""

from __future__ import annotations

import dash
import polars as pl
from dash import Input, Output, html

from dashboards import figures, queries
from dashboards.components import (
    card,
    describe_failure,
    fmt_file,
    fmt_int,
    fmt_params,
    fmt_seconds,
    fmt_when,
    graph,
    kpis,
    notice,
    page,
    setup_page,
    table,
)
from dashboards.guard import guarded
from dashboards.settings import current_settings

dash.register_page(__name__, path="/", name="Overview", title="Shelfwise · Overview", order=0)


def layout(**_query: str) -> html.Div:
    """The page's frame; fill() reads its contents (the setup page until a matrix is built)."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    if not status.transformed:
        return setup_page(status, settings.db_path)
    return page(
        "Overview",
        "What the warehouse holds, how the ratings are spread, what the filters cut, "
        "and every model run.",
        html.Div(id="ovw-kpis"),
        html.Div(
            [
                card(None, graph("ovw-ratings", height=360)),
                card(None, graph("ovw-per-user", height=360)),
                card(None, graph("ovw-per-book", height=360)),
            ],
            className="grid-3",
        ),
        html.Div(id="ovw-filter-note"),
        card("Model runs", html.Div(id="ovw-runs"), class_name="scroll-x"),
        html.Div(
            [
                card("Loaded files", html.Div(id="ovw-loads"), class_name="scroll-x"),
                card("Rejected rows", html.Div(id="ovw-rejects")),
            ],
            className="grid-2-1",
        ),
        page_id="ovw-page",
    )


# A warehouse transformed before core.user_activity / core.book_activity existed: the charts say so.
NOT_SUMMARISED = (
    "Ratings per user and per book are not summarised in this warehouse yet: "
    "run `shelfwise transform`."
)


def fill(_version: str | None):
    """Everything on the page, read again whenever the warehouse snapshot changes.

    The charts and counts come from the small per-user and per-book activity tables the transform
    builds, never from a scan of core.ratings (millions of rows on full goodbooks).
    """
    settings = current_settings()
    distribution = per_user = per_book = None
    try:
        with queries.reading(settings.db_path) as con:
            sources = queries.source_summary(con)
            loads = queries.load_files(con)
            reasons = queries.reject_reasons(con)
            transform = queries.latest_transform(con)
            all_runs = queries.runs(con)
            if queries.activity_built(con):
                distribution = queries.rating_distribution(con)
                per_user = queries.activity(con, "user")
                per_book = queries.activity(con, "book")
    except Exception as exc:  # never an error page: say what failed where the content would be
        message = describe_failure(exc)
        empty = figures.message_figure(message)
        return notice(message, "warn"), empty, empty, empty, None, None, None, None

    params = transform["params"] if transform else {}
    source = (
        transform["source"]
        if transform
        else (sources["source"][0] if not sources.is_empty() else "goodbooks")
    )
    if distribution is None or per_user is None or per_book is None:
        user_tail = book_tail = None
        charts = (
            figures.message_figure(NOT_SUMMARISED, "Rating distribution"),
            figures.message_figure(NOT_SUMMARISED, "Ratings per user (log–log)"),  # noqa: RUF001
            figures.message_figure(NOT_SUMMARISED, "Ratings per book (log–log)"),  # noqa: RUF001
        )
    else:
        user_tail = _rated(per_user, source)
        book_tail = _rated(per_book, source)
        charts = (
            figures.rating_distribution(distribution),
            figures.activity_figure(
                user_tail, per="user", threshold=params.get("min_user_ratings")
            ),
            figures.activity_figure(
                book_tail, per="book", threshold=params.get("min_book_ratings")
            ),
        )
    return (
        _kpis(sources, per_user, per_book, transform, all_runs),
        *charts,
        _filter_note(transform, user_tail, book_tail),
        _runs_table(all_runs),
        _loads_table(loads),
        _rejects(sources, reasons),
    )


def _rated(activity: pl.DataFrame, source: str) -> pl.DataFrame:
    """The n >= 1 rows of one source: the long-tail chart's points."""
    return activity.filter((pl.col("source") == source) & (pl.col("n") > 0)).select("n", "count")


def _kpis(
    sources: pl.DataFrame,
    per_user: pl.DataFrame | None,
    per_book: pl.DataFrame | None,
    transform: dict | None,
    all_runs: pl.DataFrame,
) -> html.Div:
    names = ", ".join(sources["source"].to_list()) or "none"
    published = all_runs.filter(pl.col("published")) if not all_runs.is_empty() else all_runs
    books = fmt_int(sources["books"].sum() if not sources.is_empty() else 0)
    if per_user is None or per_book is None:  # not summarised yet (see NOT_SUMMARISED)
        # An en dash is the dashboard's placeholder for a value it cannot show yet.
        users_item = ("Users", "–", "run `shelfwise transform` to count")  # noqa: RUF001
        books_item = ("Books", books, "in the catalogue")
        ratings_item = ("Ratings", "–", "run `shelfwise transform` to count")  # noqa: RUF001
    else:
        ratings = int((per_user["n"] * per_user["count"]).sum()) if not per_user.is_empty() else 0
        interactions = int(per_user["interactions"].sum()) if not per_user.is_empty() else 0
        rated_books = (
            int(per_book.filter(pl.col("n") > 0)["count"].sum()) if not per_book.is_empty() else 0
        )
        users_item = (
            "Users",
            fmt_int(per_user["count"].sum() if not per_user.is_empty() else 0),
            "with at least one interaction",
        )
        books_item = ("Books", books, f"{fmt_int(rated_books)} rated at least once")
        ratings_item = (
            "Ratings",
            fmt_int(ratings),
            f"and {fmt_int(interactions - ratings)} unrated shelvings"
            if interactions > ratings
            else "every interaction rated",
        )
    items = [
        (
            "Sources",
            names,
            f"{fmt_int(sources['files'].sum() if not sources.is_empty() else 0)} raw files loaded",
        ),
        users_item,
        books_item,
        ratings_item,
        (
            "Rejected rows",
            fmt_int(sources["rejected"].sum() if not sources.is_empty() else 0),
            "bad lines kept out of the load",
        ),
    ]
    if transform:
        held_out = float(transform["params"].get("test_fraction", 0)) * 100
        items.append(
            (
                "Matrix",
                # The multiplication sign is the deliberate typography of a matrix size.
                f"{fmt_int(transform['users'])} × {fmt_int(transform['books'])}",  # noqa: RUF001
                f"users × books; {fmt_int(transform['ratings'])} ratings, "  # noqa: RUF001
                f"{held_out:.0f}% held out",
            )
        )
    items.append(
        (
            "Published runs",
            fmt_int(published.height),
            f"{published['kind'].n_unique() if published.height else 0} model kinds",
        )
    )
    return kpis(items)


def _filter_note(transform, per_user, per_book):
    if not transform:
        return notice("No rating matrix yet: run `shelfwise transform`.", "warn")
    p = transform["params"]
    kcore = " repeated to a k-core" if p.get("kcore") else ""
    if per_user is None or per_book is None:  # not summarised yet: the matrix sizes alone
        kept = f"{fmt_int(transform['users'])} users and {fmt_int(transform['books'])} books"
    else:
        users_all = int(per_user["count"].sum()) if not per_user.is_empty() else 0
        books_all = int(per_book["count"].sum()) if not per_book.is_empty() else 0
        kept = (
            f"{fmt_int(transform['users'])} of {fmt_int(users_all)} users and "
            f"{fmt_int(transform['books'])} of {fmt_int(books_all)} rated books"
        )
    return html.P(
        [
            f"The {transform['source']} matrix keeps books with at least "
            f"{fmt_int(p.get('min_book_ratings'))} ratings, then users with at least "
            f"{fmt_int(p.get('min_user_ratings'))} ratings on them{kcore}: {kept}. "
            f"Split: {p.get('split', 'random')}, "
            f"{float(p.get('test_fraction', 0)) * 100:.0f}% of ratings held out for testing "
            f"(built {fmt_when(transform['finished_at'])}).",
        ],
        className="note",
        id="ovw-filter-text",
    )


def _runs_table(all_runs):
    if all_runs.is_empty():
        return notice("No model runs yet: run `shelfwise fit mf` (or baseline, svd, als).")
    records = []
    for r in all_runs.iter_rows(named=True):
        state = "latest" if r["latest"] else ("published" if r["published"] else "")
        records.append(
            {
                "_run_id": r["run_id"],
                "_class": "row-latest" if r["latest"] else None,
                "run": f"#{r['run_id']}",
                "kind": figures.KIND_LABELS.get(r["kind"], r["kind"]),
                "source": r["source"],
                "params": html.Span(fmt_params(r["params"]), className="params"),
                "started": fmt_when(r["started_at"]),
                "took": fmt_seconds(r["seconds"]),
                "status": html.Span(r["status"], className=f"badge badge-{r['status']}"),
                "published": html.Span(state, className=f"badge badge-{state}") if state else "no",
            }
        )
    return table(
        [
            ("run", "Run"),
            ("kind", "Kind"),
            ("source", "Source"),
            ("params", "Parameters"),
            ("started", "Started"),
            ("took", "Took"),
            ("status", "Status"),
            ("published", "Published"),
        ],
        records,
        numeric=("took",),
        table_id="ovw-runs-table",
    )


def _loads_table(loads):
    if loads.is_empty():
        return notice("Nothing loaded yet.")
    return table(
        [
            ("source", "Source"),
            ("table", "Raw table"),
            ("file", "File"),
            ("rows", "Rows read"),
            ("rejected", "Rejected"),
            ("when", "Loaded"),
        ],
        [
            {
                "source": r["source"],
                "table": f"raw.{r['raw_table']}",
                "file": fmt_file(r["file"]),
                "rows": fmt_int(r["rows_read"]),
                "rejected": fmt_int(r["rows_rejected"]),
                "when": fmt_when(r["loaded_at"]),
            }
            for r in loads.iter_rows(named=True)
        ],
        numeric=("rows", "rejected"),
    )


def _rejects(sources, reasons):
    rejected = int(sources["rejected"].sum()) if not sources.is_empty() else 0
    if rejected == 0 or reasons.is_empty():
        return html.P(
            "No rows were rejected: every line of every file parsed and passed the checks.",
            className="muted",
        )
    return table(
        [("reason", "Reason"), ("n", "Rows")],
        [{"reason": r["reason"], "n": fmt_int(r["n"])} for r in reasons.iter_rows(named=True)],
        numeric=("n",),
    )


def register_callbacks(app: dash.Dash) -> None:
    """Wire this page's callbacks to ``app`` (create_app calls it for every app it builds)."""
    app.callback(
        Output("ovw-kpis", "children"),
        Output("ovw-ratings", "figure"),
        Output("ovw-per-user", "figure"),
        Output("ovw-per-book", "figure"),
        Output("ovw-filter-note", "children"),
        Output("ovw-runs", "children"),
        Output("ovw-loads", "children"),
        Output("ovw-rejects", "children"),
        Input("app-data-version", "data"),
    )(guarded(fill))
