"""Compare: two runs' neighbour lists side by side (any kinds with neighbours), with how much they
overlap for one book and across every book: what the last refresh changed."""

from __future__ import annotations

import dash
import polars as pl
from dash import Input, Output, State, dcc, html, no_update

from dashboards import figures, queries
from dashboards.components import (
    book_list,
    book_options,
    book_row,
    card,
    controls,
    describe_failure,
    fmt_int,
    fmt_when,
    graph,
    notice,
    page,
    preselected_book,
    query_value,
    setup_page,
    table,
    unknown_book_notice,
    url_sync,
)
from dashboards.figures import KIND_LABELS
from dashboards.guard import as_key, as_text, guarded
from dashboards.settings import current_settings

dash.register_page(
    __name__, path="/compare", name="Compare", title="Shelfwise · Compare runs", order=6
)

PATH = "/compare"
# Books listed as "changed most".
CHANGED = 20


def _run_label(row: dict) -> str:
    latest = " (latest)" if row["latest"] else ""
    return (
        f"{KIND_LABELS.get(row['kind'], row['kind'])} #{row['run_id']} · "
        f"{fmt_when(row['finished_at'])}{latest}"
    )


def default_pair(runs: pl.DataFrame) -> tuple[int | None, int | None]:
    """What to compare when the URL says nothing: the latest run of the newest-refitted kind that
    has an earlier run against that earlier run ("what the last refresh changed"); else the two
    newest runs."""
    rows = list(runs.iter_rows(named=True))
    for row in rows:
        if row["latest"]:
            older = [r for r in rows if r["kind"] == row["kind"] and r["run_id"] < row["run_id"]]
            if older:
                return older[0]["run_id"], row["run_id"]
    if len(rows) >= 2:
        return rows[1]["run_id"], rows[0]["run_id"]
    return (rows[0]["run_id"] if rows else None), None


def layout(
    a: str | None = None, b: str | None = None, book: str | None = None, **_query: str
) -> html.Div:
    """Two run pickers and a book picker; the URL sets them (``?a=RUN&b=RUN&book=KEY``)."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    if not status.ready or not status.neighbour_kinds:
        return setup_page(status, settings.db_path)
    try:
        with queries.reading(settings.db_path) as con:
            runs = queries.neighbour_runs(con)
    except Exception as exc:
        return page("Compare runs", describe_failure(exc), page_id="cmp-page")
    options = [{"label": _run_label(r), "value": r["run_id"]} for r in runs.iter_rows(named=True)]
    known = {o["value"] for o in options}
    default_a, default_b = default_pair(runs)
    run_a = as_key(query_value(a))
    run_b = as_key(query_value(b))
    run_a = run_a if run_a in known else default_a
    run_b = run_b if run_b in known else default_b
    book = query_value(book)
    selected, book_opts = preselected_book(settings.db_path, book)
    return page(
        "Compare runs",
        "Two runs' nearest neighbours side by side: of two kinds, or the same kind before and "
        "after a refit. Overlap is Jaccard@"
        f"{settings.neighbours}: the books both top-{settings.neighbours} lists share, over the "
        "books in either.",
        unknown_book_notice(book, selected),
        notice("Compare needs two published runs with neighbours; fit another.", "warn")
        if len(options) < 2
        else None,
        controls(
            (
                "Run A",
                dcc.Dropdown(
                    id="cmp-a",
                    options=options,
                    value=run_a,
                    clearable=False,
                    searchable=False,
                    className="dd-pole",
                ),
            ),
            (
                "Run B",
                dcc.Dropdown(
                    id="cmp-b",
                    options=options,
                    value=run_b,
                    clearable=False,
                    searchable=False,
                    className="dd-pole",
                ),
            ),
            (
                "Book",
                dcc.Dropdown(
                    id="cmp-book",
                    options=book_opts,
                    value=selected,
                    placeholder="Type a title or author…",
                    className="dd-search",
                    search_order="original",
                ),
            ),
        ),
        card("One book in both runs", html.Div(id="cmp-lists"), card_id="cmp-book-card"),
        html.Div(
            [
                card(None, graph("cmp-overlap", height=380)),
                card(
                    "Books whose neighbours changed most",
                    html.Div(id="cmp-changed", className="scroll-y"),
                ),
            ],
            className="grid-2",
        ),
        dcc.Store(id="cmp-url"),
        page_id="cmp-page",
    )


def book_typeahead(text, value, run_a, run_b):
    """Books of either run matching what was typed."""
    settings = current_settings()
    value = as_key(value)
    runs = [r for r in (as_key(run_a), as_key(run_b)) if r is not None]
    try:
        with queries.reading(settings.db_path) as con:
            found = queries.search_books(con, as_text(text), runs, settings.search_limit)
            chosen = queries.books_by_key(con, [value] if value is not None else [])
    except Exception as exc:
        describe_failure(exc)
        return no_update
    return book_options(found, chosen)


def lists(book_key, run_a, run_b, _version):
    """The book's neighbours under each run, shared ones marked, and their Jaccard@n."""
    settings = current_settings()
    book_key, run_a, run_b = as_key(book_key), as_key(run_a), as_key(run_b)
    if run_a is None or run_b is None:
        return notice("Choose two runs.")
    if book_key is None:
        return notice("Choose a book to see its neighbours under both runs.")
    n = settings.neighbours
    try:
        with queries.reading(settings.db_path) as con:
            kinds = {r: queries.run_kind(con, r) for r in (run_a, run_b)}
            near = {r: queries.neighbours(con, r, book_key, n) for r in (run_a, run_b)}
    except Exception as exc:
        return notice(describe_failure(exc), "warn")
    gone = [r for r, k in kinds.items() if k is None]
    if gone:
        return notice(f"Run #{gone[0]} is gone; pick another run.", "warn")
    keys = {r: set(near[r]["book_key"].to_list()) for r in near}
    shared = keys[run_a] & keys[run_b]
    union = keys[run_a] | keys[run_b]
    columns = []
    for side, run in (("a", run_a), ("b", run_b)):
        title = f"{KIND_LABELS.get(kinds[run], kinds[run])} run #{run}"
        if near[run].is_empty():
            body = notice("This book is not in this run (filtered out when it was fitted).")
        else:
            items = []
            for r in near[run].iter_rows(named=True):
                row = book_row(
                    r["book_key"],
                    r["title"],
                    r["authors"],
                    r["image_url"],
                    rank=r["rank"],
                    score=r["score"],
                    score_label="similarity under this run",
                    detail="in both lists" if r["book_key"] in shared else None,
                )
                if r["book_key"] in shared:
                    row.className = "book shared"
                items.append(row)
            body = book_list(items, list_id=f"cmp-list-{side}")
        columns.append(card(title, body, class_name="column", card_id=f"cmp-col-{side}"))
    if not union or any(near[r].is_empty() for r in near):
        stat = f"Jaccard@{n}: not defined (the book is missing from a run)."
    else:
        stat = (
            f"Jaccard@{n} = {len(shared) / len(union):.2f}: {len(shared)} of the {n} nearest "
            "books are in both lists."
        )
    return [
        html.P(stat, className="compare-stat", id="cmp-jaccard"),
        html.Div(columns, className="grid-2"),
    ]


def overview(run_a, run_b, _version):
    """Across every book in both runs: how many neighbours they share, and who changed most."""
    settings = current_settings()
    run_a, run_b = as_key(run_a), as_key(run_b)
    title = "Neighbours shared by the same book"
    if run_a is None or run_b is None:
        return figures.message_figure("Choose two runs.", title), None
    n = settings.neighbours
    try:
        with queries.reading(settings.db_path) as con:
            overlap = queries.pair_overlap(con, run_a, run_b, n)
            distribution = queries.overlap_distribution(overlap)
            changed = queries.most_changed(con, overlap, CHANGED)
    except Exception as exc:
        message = describe_failure(exc)
        return figures.message_figure(message, title), notice(message, "warn")
    fig = figures.overlap_figure(distribution, n, f"{title}: run #{run_a} against run #{run_b}")
    if changed.is_empty():
        return fig, notice("The two runs have no book in common.")
    records = [
        {
            "title": dcc.Link(
                r["title"] or f"book {r['book_key']}",
                href=f"{PATH}?a={run_a}&b={run_b}&book={r['book_key']}",
            ),
            "authors": r["authors"] or "",
            "jaccard": f"{r['jaccard']:.2f}",
            "shared": f"{r['shared']} of {n}",
            "ratings": fmt_int(r["n_ratings"]),
        }
        for r in changed.iter_rows(named=True)
    ]
    return fig, [
        html.P(f"Lowest Jaccard@{n} first; among equals, the most-rated first.", className="muted"),
        table(
            [
                ("title", "Book"),
                ("authors", "Authors"),
                ("jaccard", f"Jaccard@{n}"),
                ("shared", "Shared"),
                ("ratings", "Ratings"),
            ],
            records,
            numeric=("jaccard", "shared", "ratings"),
            table_id="cmp-changed-table",
        ),
    ]


def register_callbacks(app: dash.Dash) -> None:
    """Wire this page's callbacks to ``app`` (create_app calls it for every app it builds)."""
    app.callback(
        Output("cmp-book", "options"),
        Input("cmp-book", "search_value"),
        State("cmp-book", "value"),
        State("cmp-a", "value"),
        State("cmp-b", "value"),
        prevent_initial_call=True,
    )(guarded(book_typeahead))
    app.callback(
        Output("cmp-lists", "children"),
        Input("cmp-book", "value"),
        Input("cmp-a", "value"),
        Input("cmp-b", "value"),
        Input("app-data-version", "data"),
    )(guarded(lists))
    app.callback(
        Output("cmp-overlap", "figure"),
        Output("cmp-changed", "children"),
        Input("cmp-a", "value"),
        Input("cmp-b", "value"),
        Input("app-data-version", "data"),
    )(guarded(overview))
    url_sync(
        app,
        PATH,
        "cmp-url",
        [("a", "cmp-a", "value"), ("b", "cmp-b", "value"), ("book", "cmp-book", "value")],
    )
