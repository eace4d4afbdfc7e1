"""Embeddings: the book factors of a run in 2-D, coloured by a property, with search and
neighbours."""

from __future__ import annotations

import dash
from dash import Input, Output, Patch, State, ctx, dcc, html, no_update

from dashboards import figures, queries
from dashboards.components import (
    book_list,
    book_options,
    book_row,
    card,
    controls,
    describe_failure,
    fmt_when,
    graph,
    notice,
    page,
    preselected_book,
    setup_page,
    unknown_book_notice,
)
from dashboards.figures import KIND_LABELS
from dashboards.settings import current_settings

dash.register_page(
    __name__, path="/embeddings", name="Embeddings", title="Shelfwise · Embeddings", order=1
)


METHODS = (("pca", "PCA"), ("tsne", "t-SNE"))
COLOURS = ("tag", "year", "rating", "bias", "popularity")


def layout(book: str | None = None, **_query: str) -> html.Div:
    """Controls, the map and the side panel; ``?book=KEY`` preselects a book."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    if not status.ready or not status.map_kinds:
        return setup_page(status, settings.db_path)
    kind = status.default_kind
    selected, options = preselected_book(settings.db_path, book)
    return page(
        "Embeddings",
        "Every book's factor vector drawn in two dimensions: "
        "books the same readers rate alike sit close together. "
        "Hover for a title, search or click a book to see its nearest neighbours.",
        unknown_book_notice(book, selected),
        controls(
            (
                "Model",
                dcc.RadioItems(
                    id="emb-kind",
                    options=[{"label": KIND_LABELS[k], "value": k} for k in status.map_kinds],
                    value=kind,
                    inline=True,
                    className="radio",
                ),
            ),
            (
                "Run",
                dcc.Dropdown(id="emb-run", clearable=False, searchable=False, className="dd-run"),
            ),
            (
                "Projection",
                dcc.RadioItems(
                    id="emb-method",
                    options=[{"label": label, "value": m} for m, label in METHODS],
                    value="tsne",
                    inline=True,
                    className="radio",
                ),
            ),
            (
                "Colour by",
                dcc.Dropdown(
                    id="emb-colour",
                    options=[{"label": figures.COLOUR_LABELS[c], "value": c} for c in COLOURS],
                    value="tag",
                    clearable=False,
                    searchable=False,
                    className="dd-colour",
                ),
            ),
            (
                "Find a book",
                dcc.Dropdown(
                    id="emb-search",
                    options=options,
                    value=selected,
                    placeholder="Type a title or author…",
                    className="dd-search",
                    search_order="original",
                ),
            ),
        ),
        html.Div(
            [
                card(None, graph("emb-map", height=660), class_name="grow"),
                card("Chosen book", html.Div(id="emb-detail"), class_name="side"),
            ],
            className="with-side",
        ),
        dcc.Store(id="emb-selected", data=selected),
        dcc.Store(id="emb-highlight-at"),
        page_id="emb-page",
    )


def runs_of_kind(kind: str, _version, current: int | None, old_options: list[dict] | None):
    """Published runs of the kind, newest first; follows new runs unless an older one was picked."""
    try:
        with queries.reading(current_settings().db_path) as con:
            found = queries.published_runs(con, kind)
    except Exception as exc:
        describe_failure(exc)
        return no_update, no_update
    options = [
        {
            "label": (
                f"#{r['run_id']} · {fmt_when(r['finished_at'])}{' (latest)' if i == 0 else ''}"
            ),
            "value": int(r["run_id"]),
        }
        for i, r in enumerate(found.iter_rows(named=True))
    ]
    values = [o["value"] for o in options]
    previous_latest = old_options[0]["value"] if old_options else None
    keep = current in values and current != previous_latest
    return options, (current if keep else (values[0] if values else None))


def run_capabilities(run_id: int | None, method: str, colour: str):
    """Offer only the projections the run stored, and bias colouring only when it learned biases."""
    methods: list[str] = []
    has_bias = False
    if run_id is not None:
        try:
            with queries.reading(current_settings().db_path) as con:
                methods = queries.projection_methods(con, run_id)
                has_bias = (queries.run_kind(con, run_id) or "") in queries.BIAS_KINDS
        except Exception as exc:
            describe_failure(exc)
            return no_update, no_update, no_update, no_update
    method_options = [
        {
            "label": label if m in methods else f"{label} (not stored)",
            "value": m,
            "disabled": m not in methods,
        }
        for m, label in METHODS
    ]
    if method not in methods:
        method = "tsne" if "tsne" in methods else (methods[0] if methods else method)
    colour_options = [
        {
            "label": figures.COLOUR_LABELS[c]
            + ("" if c != "bias" or has_bias else " (none in this model)"),
            "value": c,
            "disabled": c == "bias" and not has_bias,
        }
        for c in COLOURS
    ]
    if colour == "bias" and not has_bias:
        colour = "tag"
    return method_options, method, colour_options, colour


def choose_book(text: str | None, value: int | None, click: dict | None, run_id: int | None):
    """Typeahead options from what is typed; a chosen option or a clicked point selects a book."""
    settings = current_settings()
    # Choosing an option can also clear the search text in the same update: a choice wins.
    changed = set(ctx.triggered_prop_ids)
    clicked = "emb-map.clickData" in changed
    typing = (
        "emb-search.search_value" in changed and "emb-search.value" not in changed and not clicked
    )
    if clicked:
        points = (click or {}).get("points") or [{}]
        key = points[0].get("customdata")
        if isinstance(key, list):
            key = key[0] if key else None
        if key is None:
            return no_update, no_update, no_update
        value = int(key)
    try:
        with queries.reading(settings.db_path) as con:
            runs = [run_id] if run_id is not None else []
            found = (
                queries.search_books(con, text or "", runs, settings.search_limit)
                if typing
                else None
            )
            chosen = queries.books_by_key(con, [value] if value is not None else [])
    except Exception as exc:
        describe_failure(exc)
        return no_update, no_update, no_update
    options = book_options(found, chosen)
    if typing:  # new options for what was typed; the selection stays
        return options, no_update, no_update
    return options, value, value


def draw_map(run_id: int | None, method: str, colour: str, selected: int | None):
    """The whole map of a run and projection (sampled above max_points), the chosen book
    included."""
    settings = current_settings()
    if run_id is None:
        return figures.message_figure(
            "No published run of this model.", "Book map", height=640
        ), None
    try:
        with queries.reading(settings.db_path) as con:
            kind = queries.run_kind(con, run_id)
            if kind is None:
                return figures.message_figure(
                    f"Run #{run_id} is gone; pick another run.", "Book map", height=640
                ), None
            if method not in queries.projection_methods(con, run_id):
                return figures.message_figure(
                    f"Run #{run_id} has no {method} map.", "Book map", height=640
                ), None
            points, total = queries.projection_points(
                con, run_id, method, colour, settings.max_points
            )
            chosen, near = _highlights(con, run_id, method, selected, settings.neighbours)
    except Exception as exc:
        return figures.message_figure(describe_failure(exc), "Book map", height=640), None
    title = f"{KIND_LABELS.get(kind, kind)} run #{run_id}, {dict(METHODS)[method]}"
    fig, at = figures.embedding_map(
        points,
        colour,
        total=total,
        title=title,
        selected=chosen,
        neighbours=near,
        revision=f"{run_id}-{method}",
    )
    return fig, at


def highlight(selected: int | None, run_id: int | None, method: str, at: int | None):
    """Redraw only the two highlight traces: the map's thousands of points stay in the browser."""
    if run_id is None or at is None:
        return no_update
    try:
        with queries.reading(current_settings().db_path) as con:
            chosen, near = _highlights(con, run_id, method, selected, current_settings().neighbours)
    except Exception as exc:
        describe_failure(exc)
        return no_update
    patched = Patch()
    for offset, trace in enumerate(figures.highlight_traces(chosen, near)):
        patched["data"][at + offset] = trace.to_plotly_json()
    return patched


def _highlights(con, run_id: int, method: str, selected: int | None, n: int):
    """Map positions of the chosen book and of its stored neighbours (empty frames if none)."""
    if selected is None:
        empty = queries.points_of_books(con, run_id, method, [])
        return empty, empty
    near_keys = queries.neighbours(con, run_id, selected, n)["book_key"].to_list()
    return queries.points_of_books(con, run_id, method, [selected]), queries.points_of_books(
        con, run_id, method, near_keys
    )


def detail(selected: int | None, run_id: int | None):
    """The side panel: the chosen book and its nearest books under the run."""
    if selected is None:
        return html.P("Search for a book above, or click a point on the map.", className="muted")
    if run_id is None:
        return None
    settings = current_settings()
    try:
        with queries.reading(settings.db_path) as con:
            book = queries.books_by_key(con, [selected])
            near = queries.neighbours(con, run_id, selected, settings.neighbours)
    except Exception as exc:
        return notice(describe_failure(exc), "warn")
    if book.is_empty():
        return notice("That book is not in the warehouse any more.", "warn")
    b = book.row(0, named=True)
    head = book_list(
        [
            book_row(
                selected,
                b["title"],
                b["authors"],
                b["image_url"],
                detail=str(b["publication_year"] or ""),
            )
        ]
    )
    if near.is_empty():
        # Every fitted book has stored neighbours, so none means the matrix's filters left it out.
        return [
            head,
            notice(
                "This book is not in this model (too few ratings: "
                "the matrix's filters left it out when the model was fitted), "
                "so it has no point on the map and no neighbours.",
                "warn",
            ),
        ]
    body = book_list(
        [
            book_row(
                r["book_key"],
                r["title"],
                r["authors"],
                r["image_url"],
                rank=r["rank"],
                score=r["score"],
                score_label="cosine similarity",
            )
            for r in near.iter_rows(named=True)
        ],
        list_id="emb-neighbours",
    )
    return [
        head,
        html.H3(f"Nearest {near.height} books (cosine)", className="sub"),
        body,
        dcc.Link(
            "Compare across models →", href=f"/neighbours?book={selected}", className="more-link"
        ),
    ]


def register_callbacks(app: dash.Dash) -> None:
    """Wire this page's callbacks to ``app`` (create_app calls it for every app it builds)."""
    app.callback(
        Output("emb-run", "options"),
        Output("emb-run", "value"),
        Input("emb-kind", "value"),
        Input("app-data-version", "data"),
        State("emb-run", "value"),
        State("emb-run", "options"),
    )(runs_of_kind)
    app.callback(
        Output("emb-method", "options"),
        Output("emb-method", "value"),
        Output("emb-colour", "options"),
        Output("emb-colour", "value"),
        Input("emb-run", "value"),
        State("emb-method", "value"),
        State("emb-colour", "value"),
    )(run_capabilities)
    app.callback(
        Output("emb-search", "options"),
        Output("emb-search", "value"),
        Output("emb-selected", "data"),
        Input("emb-search", "search_value"),
        Input("emb-search", "value"),
        Input("emb-map", "clickData"),
        State("emb-run", "value"),
        prevent_initial_call=True,
    )(choose_book)
    app.callback(
        Output("emb-map", "figure"),
        Output("emb-highlight-at", "data"),
        Input("emb-run", "value"),
        Input("emb-method", "value"),
        Input("emb-colour", "value"),
        State("emb-selected", "data"),
    )(draw_map)
    app.callback(
        Output("emb-map", "figure", allow_duplicate=True),
        Input("emb-selected", "data"),
        State("emb-run", "value"),
        State("emb-method", "value"),
        State("emb-highlight-at", "data"),
        prevent_initial_call=True,
    )(highlight)
    app.callback(
        Output("emb-detail", "children"),
        Input("emb-selected", "data"),
        Input("emb-run", "value"),
    )(detail)
