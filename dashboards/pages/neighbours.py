"""Neighbours: a book's nearest books under each factor model side by side, and centroid
recommendations."""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html, no_update

from base.registry import REGISTRY, spec
from dashboards import queries
from dashboards.components import (
    book_list,
    book_options,
    book_row,
    card,
    controls,
    describe_failure,
    fmt_int,
    notice,
    page,
    preselected_book,
    query_value,
    setup_page,
    unknown_book_notice,
    url_sync,
)
from dashboards.figures import KIND_LABELS
from dashboards.guard import as_choice, as_key, as_keys, as_text, guarded
from dashboards.settings import current_settings
from shelfwise import serving

dash.register_page(
    __name__, path="/neighbours", name="Neighbours", title="Shelfwise · Neighbours", order=3
)


# Most favourites the form takes (and the URL carries).
MAX_FAVOURITES = 50


def layout(
    book: str | None = None, favs: str | None = None, fkind: str | None = None, **_query: str
) -> html.Div:
    """The book picker, the per-model columns and the favourites form; the URL sets them
    (``?book=KEY&favs=KEY,KEY&fkind=KIND``)."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    if not status.ready or not status.map_kinds:
        return setup_page(status, settings.db_path)
    book = query_value(book)
    selected, options = preselected_book(settings.db_path, book)
    kind = as_choice(
        query_value(fkind),
        status.neighbour_kinds,
        status.default_among(status.neighbour_kinds, "neighbours"),
    )
    favourites, fav_options = _favourites_from(query_value(favs))
    return page(
        "Neighbours",
        "Type a title: each model lists the books whose vectors point the same way "
        "(cosine similarity). "
        "Pick a few favourites below for recommendations near their centre.",
        unknown_book_notice(book, selected),
        card(
            "Find a book",
            dcc.Dropdown(
                id="nbr-book",
                options=options,
                value=selected,
                placeholder="Type a title or author",
                className="dd-search wide",
                search_order="original",
            ),
        ),
        html.Div(id="nbr-columns", className="grid-3"),
        card(
            "Recommend from favourites",
            html.P(
                "Books nearest the centroid of your favourites' unit vectors; "
                "never one of the favourites.",
                className="muted",
            ),
            controls(
                (
                    "Favourite books",
                    dcc.Dropdown(
                        id="nbr-favs",
                        multi=True,
                        value=favourites,
                        options=fav_options,
                        placeholder="Add books…",
                        className="dd-search wide",
                        search_order="original",
                    ),
                ),
                (
                    "Model",
                    dcc.RadioItems(
                        id="nbr-fav-kind",
                        options=[
                            {"label": KIND_LABELS[k], "value": k} for k in status.neighbour_kinds
                        ],
                        value=kind,
                        inline=True,
                        className="radio",
                    ),
                ),
            ),
            html.Div(id="nbr-recs"),
        ),
        dcc.Store(id="nbr-url"),
        page_id="nbr-page",
    )


def _favourites_from(text: str | None) -> tuple[list[int], list[dict]]:
    """The favourites a URL's ``favs=KEY,KEY`` names that exist, and their dropdown options."""
    keys = as_keys((text or "").split(",")[:MAX_FAVOURITES], MAX_FAVOURITES)
    if not keys:
        return [], []
    try:
        with queries.reading(current_settings().db_path) as con:
            found = queries.books_by_key(con, keys)
    except Exception as exc:
        describe_failure(exc)
        return [], []
    present = set(found["book_key"].to_list())
    kept = [k for k in keys if k in present]
    by_key = {o["value"]: o for o in book_options(found)}
    return kept, [by_key[k] for k in kept]


# What a neighbour's score is under each kind.
SCORE_LABELS = {
    kind: "cosine similarity" if REGISTRY[kind].book_vectors else "weight"
    for kind in queries.NEIGHBOUR_KINDS
}


def _search(text: str | None, chosen: list[int]) -> list[dict]:
    """Typeahead options: books of the latest factor runs matching what was typed (the most-rated
    when nothing is), with the chosen books first so they keep their labels."""
    settings = current_settings()
    with queries.reading(settings.db_path) as con:
        runs = list(queries.latest_runs(con, queries.NEIGHBOUR_KINDS).values())
        found = queries.search_books(con, text or "", runs, settings.search_limit)
        return book_options(found, queries.books_by_key(con, chosen))


def book_typeahead(text, value):
    """Options for the book picker from what was typed."""
    value = as_key(value)
    try:
        return _search(as_text(text), [value] if value is not None else [])
    except Exception as exc:
        describe_failure(exc)
        return no_update


def favourites_typeahead(text, value):
    """Options for the favourites picker from what was typed."""
    try:
        return _search(as_text(text), as_keys(value, MAX_FAVOURITES))
    except Exception as exc:
        describe_failure(exc)
        return no_update


def columns(book_key, _version):
    """One column per factor model: the book's stored nearest neighbours under its latest run."""
    book_key = as_key(book_key)
    if book_key is None:
        return html.Div(
            notice("Choose a book to compare its neighbours under each model."),
            className="span-all",
        )
    settings = current_settings()
    try:
        with queries.reading(settings.db_path) as con:
            runs = queries.latest_runs(con, queries.NEIGHBOUR_KINDS)
            lists = {
                kind: queries.neighbours(con, run_id, book_key, settings.neighbours)
                for kind, run_id in runs.items()
            }
    except Exception as exc:
        return html.Div(notice(describe_failure(exc), "warn"), className="span-all")
    out = []
    for kind, run_id in runs.items():
        near = lists[kind]
        if near.is_empty():
            body = notice("This book is not in this model (filtered out when it was fitted).")
        else:
            body = book_list(
                [
                    # The rating count lets a reader discount a neighbour few people rated.
                    book_row(
                        r["book_key"],
                        r["title"],
                        r["authors"],
                        r["image_url"],
                        rank=r["rank"],
                        score=r["score"],
                        score_label=SCORE_LABELS[kind],
                        detail=f"{fmt_int(r['n_ratings'])} ratings"
                        if r["n_ratings"] is not None
                        else None,
                    )
                    for r in near.iter_rows(named=True)
                ],
                list_id=f"nbr-list-{kind}",
            )
        out.append(
            card(
                f"{KIND_LABELS[kind]} · run #{run_id}",
                body,
                class_name="column",
                card_id=f"nbr-col-{kind}",
            )
        )
    return out


def recommendations(favourites, kind, _version):
    """Books nearest the favourites' centroid under the chosen model, each with its closest
    favourite."""
    favourites = as_keys(favourites, MAX_FAVOURITES)
    if not favourites:
        return notice("Add one or more favourite books to get recommendations.")
    kind = as_choice(kind, queries.NEIGHBOUR_KINDS)
    if kind is None:
        return notice("Choose a model.", "warn")
    settings = current_settings()
    try:
        with queries.reading(settings.db_path) as con:
            run_id = queries.latest_runs(con, (kind,)).get(kind)
            if run_id is None:
                return notice(f"No published {KIND_LABELS.get(kind, kind)} run.", "warn")
            found, recs = serving.recommend_for_keys(
                con, run_id, favourites, settings.recommendations
            )
    except Exception as exc:
        return notice(describe_failure(exc), "warn")
    if not found:
        return notice("None of these books is in this model.", "warn")
    missing = len(favourites) - len(found)
    items = [
        book_row(
            r.book.book_key,
            r.book.title,
            r.book.authors,
            r.book.image_url,
            rank=i,
            score=r.book.score,
            score_label="cosine similarity to the centroid"
            if spec(kind).book_vectors
            else "summed weight toward the favourites",
            detail=f"closest favourite: {r.because[0][0]}" if r.because else None,
        )
        for i, r in enumerate(recs, 1)
    ]
    head = html.P(
        f"{KIND_LABELS.get(kind, kind)} run #{run_id}, "
        f"centroid of {len(found)} favourite{'s' if len(found) != 1 else ''}"
        + (f" ({missing} not in this model)" if missing else "")
        + ".",
        className="muted",
    )
    return [head, book_list(items, list_id="nbr-rec-list")]


def register_callbacks(app: dash.Dash) -> None:
    """Wire this page's callbacks to ``app`` (create_app calls it for every app it builds)."""
    app.callback(
        Output("nbr-book", "options"),
        Input("nbr-book", "search_value"),
        State("nbr-book", "value"),
        prevent_initial_call=True,
    )(guarded(book_typeahead))
    app.callback(
        Output("nbr-favs", "options"),
        Input("nbr-favs", "search_value"),
        State("nbr-favs", "value"),
        prevent_initial_call=True,
    )(guarded(favourites_typeahead))
    app.callback(
        Output("nbr-columns", "children"),
        Input("nbr-book", "value"),
        Input("app-data-version", "data"),
    )(guarded(columns))
    app.callback(
        Output("nbr-recs", "children"),
        Input("nbr-favs", "value"),
        Input("nbr-fav-kind", "value"),
        Input("app-data-version", "data"),
    )(guarded(recommendations))
    url_sync(
        app,
        "/neighbours",
        "nbr-url",
        [
            ("book", "nbr-book", "value"),
            ("favs", "nbr-favs", "value"),
            ("fkind", "nbr-fav-kind", "value"),
        ],
    )
