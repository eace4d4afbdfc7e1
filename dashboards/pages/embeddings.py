"""Embeddings: the book factors of a run in 2-D (stored maps or custom axes), coloured by a
property, with search, selection and neighbours; every setting in the URL."""

from __future__ import annotations

import dash
import polars as pl
from dash import Input, Output, Patch, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from base.registry import REGISTRY, kinds
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
from dashboards.guard import as_choice, as_flag, as_key, as_keys, as_text, guarded
from dashboards.queries import Pole
from dashboards.settings import current_settings

dash.register_page(
    __name__, path="/embeddings", name="Embeddings", title="Shelfwise · Embeddings", order=1
)

PATH = "/embeddings"
METHODS = (("pca", "PCA"), ("tsne", "t-SNE"), ("custom", "Custom axes"))
STORED = ("pca", "tsne")
COLOURS = ("tag", "year", "rating", "bias", "popularity")
POLES = ("xa", "xb", "ya", "yb")
# Matches drawn on the map at most (the count says how many there are).
MATCHES_DRAWN = 5_000
# Rows of the selection table on the page (the CSV has every selected book).
TABLE_ROWS = 100


def _no_map_kinds() -> str:
    """The kinds the page leaves out, named from the registry."""
    others = [REGISTRY[k].label for k in kinds(neighbours=True) if not REGISTRY[k].book_vectors] + [
        REGISTRY[k].label for k in kinds(neighbours=False)
    ]
    return ", ".join(others)


def layout(
    kind: str | None = None,
    run: str | None = None,
    proj: str | None = None,
    colour: str | None = None,
    book: str | None = None,
    q: str | None = None,
    **query: str,
) -> html.Div:
    """Controls, the map, the side panel and the selection; the query string sets every control
    (``?kind=&run=&proj=&colour=&book=&xa=&xb=&ya=&yb=&q=``)."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    if not status.ready or not status.map_kinds:
        return setup_page(status, settings.db_path)
    kind = as_choice(query_value(kind), status.map_kinds, status.default_kind)
    run_id = as_key(query_value(run))
    method = as_choice(query_value(proj), [m for m, _ in METHODS], "tsne")
    colour = as_choice(query_value(colour), COLOURS, "tag")
    book = query_value(book)
    selected, options = preselected_book(settings.db_path, book)
    poles = {name: Pole.parse(query_value(query.get(name))) for name in POLES}
    pole_options = _pole_options([p for p in poles.values() if p is not None])
    search = as_text(query_value(q))

    def pole_picker(name: str, placeholder: str) -> dcc.Dropdown:
        return dcc.Dropdown(
            id=f"emb-{name}",
            options=pole_options,
            value=poles[name].token if poles[name] else None,
            placeholder=placeholder,
            className="dd-pole",
            search_order="original",
        )

    return page(
        "Embeddings",
        "Every book's factor vector drawn in two dimensions: "
        "books the same readers rate alike sit close together. "
        "Hover for a title, search or click a book to see its nearest neighbours, "
        "box- or lasso-select books to list them. "
        f"Only models with book vectors have a map (not {_no_map_kinds()}).",
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
                dcc.Dropdown(
                    id="emb-run",
                    value=run_id,
                    clearable=False,
                    searchable=False,
                    className="dd-run",
                ),
            ),
            (
                "Projection",
                dcc.RadioItems(
                    id="emb-method",
                    options=[{"label": label, "value": m} for m, label in METHODS],
                    value=method,
                    inline=True,
                    className="radio",
                ),
            ),
            (
                "Colour by",
                dcc.Dropdown(
                    id="emb-colour",
                    options=[{"label": figures.COLOUR_LABELS[c], "value": c} for c in COLOURS],
                    value=colour,
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
                html.P(
                    "Custom axes: each axis runs from one pole to the other; a pole is a book, "
                    "an author's books or a tag's books (type to search). A book's position is "
                    "the cosine between its vector and the direction from the first pole's mean "
                    "unit vector to the second's. Leave Y empty for the principal component "
                    "orthogonal to X.",
                    className="muted",
                ),
                controls(
                    ("X from", pole_picker("xa", "a tag, author or book…")),
                    ("X to", pole_picker("xb", "a tag, author or book…")),
                    ("Y from", pole_picker("ya", "(PCA orthogonal to X)")),
                    ("Y to", pole_picker("yb", "(PCA orthogonal to X)")),
                ),
            ],
            id="emb-axes",
            className="axes-panel",
            style={} if method == "custom" else {"display": "none"},
        ),
        controls(
            (
                "Highlight matches",
                dcc.Input(
                    id="emb-find",
                    type="search",
                    value=search,
                    debounce=0.4,
                    maxLength=200,
                    placeholder="Title, author or tag: every match is marked",
                    className="text-input",
                ),
            ),
            ("", html.Span(id="emb-find-count", className="muted")),
        ),
        html.Div(
            [
                card(
                    None,
                    graph("emb-map", height=660, selectable=True),
                    html.P(id="emb-caption", className="muted caption"),
                    class_name="grow",
                ),
                card("Chosen book", html.Div(id="emb-detail"), class_name="side"),
            ],
            className="with-side",
        ),
        card(
            "Selection",
            html.P(
                "Use the box or lasso tool in the map's corner to select books. The selection "
                "stays when you change the colour or the projection.",
                className="muted",
                id="emb-selection-hint",
            ),
            html.Div(
                [
                    dcc.Checklist(
                        id="emb-isolate",
                        options=[{"label": " Show only these and their neighbours", "value": "on"}],
                        value=[],
                        className="checklist",
                    ),
                    html.Button("Download CSV", id="emb-csv", n_clicks=0, className="button"),
                    html.Button(
                        "Clear selection", id="emb-clear", n_clicks=0, className="button subtle"
                    ),
                ],
                className="selection-tools",
            ),
            html.Div(id="emb-selection-table"),
            dcc.Download(id="emb-download"),
            card_id="emb-selection-card",
        ),
        dcc.Store(id="emb-selected", data=selected),
        dcc.Store(id="emb-selection", data=[]),
        dcc.Store(id="emb-selection-cap", data=settings.selection_cap),
        dcc.Store(id="emb-overlay-at"),
        dcc.Store(id="emb-url"),
        page_id="emb-page",
    )


def _pole_options(poles: list[Pole]) -> list[dict]:
    """Dropdown options naming the given poles (so a pole from the URL shows its label)."""
    if not poles:
        return []
    try:
        with queries.reading(current_settings().db_path) as con:
            return [{"label": queries.pole_label(con, p), "value": p.token} for p in poles]
    except Exception as exc:
        describe_failure(exc)
        return [{"label": p.token, "value": p.token} for p in poles]


# ----------------------------------------------------------------------------- runs and options


def runs_of_kind(kind, _version, current, old_options):
    """Published runs of the kind, newest first; follows new runs unless an older one was picked
    (or named in the URL)."""
    if as_choice(kind, queries.MAP_KINDS) is None:
        return [], None
    current = as_key(current)
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
    old = old_options if isinstance(old_options, list) else []
    previous_latest = old[0].get("value") if old and isinstance(old[0], dict) else None
    # Opening the page (no options yet) keeps a run the URL named; later, a new latest run is
    # followed unless the user had picked an older one.
    keep = current in values and (not old or current != previous_latest)
    return options, (current if keep else (values[0] if values else None))


def run_capabilities(run_id, method, colour):
    """Offer only the projections the run stored, and bias colouring only when it learned biases.
    Custom axes work for every run with book vectors."""
    run_id = as_key(run_id)
    method = as_choice(method, [m for m, _ in METHODS], "tsne")
    colour = as_choice(colour, COLOURS, "tag")
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
            "label": label if m in methods or m == "custom" else f"{label} (not stored)",
            "value": m,
            "disabled": m != "custom" and m not in methods,
        }
        for m, label in METHODS
    ]
    if method != "custom" and method not in methods:
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


def show_axes(method):
    """The custom-axes pickers show only with the custom projection."""
    return {} if method == "custom" else {"display": "none"}


def choose_book(text, value, click, run_id):
    """Typeahead options from what is typed; a chosen option or a clicked point selects a book."""
    settings = current_settings()
    # Choosing an option can also clear the search text in the same update: a choice wins.
    changed = set(ctx.triggered_prop_ids)
    clicked = "emb-map.clickData" in changed
    typing = (
        "emb-search.search_value" in changed and "emb-search.value" not in changed and not clicked
    )
    value = as_key(value)
    run_id = as_key(run_id)
    if clicked:
        points = click.get("points") if isinstance(click, dict) else None
        point = points[0] if isinstance(points, list) and points else None
        key = point.get("customdata") if isinstance(point, dict) else None
        if isinstance(key, list):
            key = key[0] if key else None
        key = as_key(key)
        if key is None:
            return no_update, no_update, no_update
        value = key
    try:
        with queries.reading(settings.db_path) as con:
            runs = [run_id] if run_id is not None else []
            found = (
                queries.search_books(con, as_text(text), runs, settings.search_limit)
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


def pole_typeahead(text, value, run_id):
    """Tags, authors and books matching what was typed, for one pole picker."""
    run_id = as_key(run_id)
    if run_id is None:
        return no_update
    chosen = Pole.parse(value)
    try:
        with queries.reading(current_settings().db_path) as con:
            found = queries.search_poles(con, as_text(text), run_id, 8)
            head = [(chosen.token, queries.pole_label(con, chosen))] if chosen else []
    except Exception as exc:
        describe_failure(exc)
        return no_update
    seen: set[str] = set()
    options = []
    for token, label in head + found:
        if token not in seen:
            seen.add(token)
            options.append({"label": label, "value": token})
    return options


# ----------------------------------------------------------------------------- the map


class View:
    """What one map shows: run, projection, colour, custom poles; checked from raw inputs."""

    def __init__(self, run_id, method, colour, xa, xb, ya, yb) -> None:
        self.run_id = as_key(run_id)
        self.method = as_choice(method, [m for m, _ in METHODS])
        self.colour = as_choice(colour, COLOURS)
        self.x = (Pole.parse(xa), Pole.parse(xb))
        self.y = (Pole.parse(ya), Pole.parse(yb))
        # A value no control sends (a colour that is not offered, a pole that is not
        # kind:value): forged, so the map keeps what it shows instead of drawing a default.
        self.forged = self.colour is None or any(
            raw is not None and pole is None
            for raw, pole in zip((xa, xb, ya, yb), (*self.x, *self.y), strict=True)
        )

    @property
    def missing(self) -> str | None:
        """Why there is nothing to draw yet (None when there is)."""
        if self.run_id is None:
            return "No published run of this model."
        if self.method is None:
            return "Pick a projection."
        if self.method == "custom" and None in self.x:
            return (
                "Custom axes: pick a pole at each end of the X axis (a tag, an author or a book)."
            )
        return None

    @property
    def y_poles(self) -> tuple[Pole, Pole] | None:
        return self.y if None not in self.y else None  # type: ignore[return-value]

    def revision(self) -> str:
        poles = ",".join(p.token if p else "" for p in (*self.x, *self.y))
        return f"{self.run_id}-{self.method}-{poles if self.method == 'custom' else ''}"


def _positions(con, view: View) -> pl.DataFrame | None:
    """book_idx, x, y of every book under a custom view (None for a stored projection)."""
    if view.method != "custom":
        return None
    return queries.custom_positions(con, view.run_id, view.x, view.y_poles)


def _points(
    con, view: View, keys: list[int] | None, limit: int, positions: pl.DataFrame | None
) -> tuple[pl.DataFrame, int]:
    """The map's points (most-rated first up to ``limit``) and how many there are in all;
    ``positions`` are the custom view's (see _positions)."""
    if view.method != "custom" or positions is None:
        return queries.projection_points(
            con, view.run_id, view.method, view.colour, limit, keys=keys
        )
    table = queries.run_book_table(con, view.run_id, view.colour, keys)
    placed = table.join(positions, on="book_idx", how="inner")
    total = placed.height
    sample = placed.sort(["n_ratings", "book_idx"], descending=[True, False], nulls_last=True)
    sample = sample.head(limit).sort("book_key")
    return sample.select("book_key", "x", "y", "title", "authors", "colour"), total


def _place(con, view: View, keys: list[int], positions: pl.DataFrame | None) -> pl.DataFrame:
    """Map positions of the given books: book_key, x, y, title, authors."""
    if view.method != "custom":
        return queries.points_of_books(con, view.run_id, view.method, keys)
    table = queries.run_book_table(con, view.run_id, "tag", keys)
    if positions is None:
        positions = _positions(con, view)
    return table.join(positions, on="book_idx", how="inner").select(
        "book_key", "x", "y", "title", "authors"
    )


def _overlays(
    con,
    view: View,
    selected: int | None,
    selection: list[int],
    search: str,
    n: int,
    positions: pl.DataFrame | None = None,
) -> tuple[dict[str, pl.DataFrame], int]:
    """The four overlay frames (see figures.OVERLAYS) and the number of search matches."""
    matches, n_matches = queries.match_books(con, view.run_id, search, MATCHES_DRAWN)
    near = (
        queries.neighbours(con, view.run_id, selected, n)["book_key"].to_list() if selected else []
    )
    wanted = list(dict.fromkeys([*selection, *matches, *near, *([selected] if selected else [])]))
    placed = _place(con, view, wanted, positions) if wanted else None

    def part(keys: list[int]) -> pl.DataFrame:
        if placed is None or not keys:
            return queries.points_of_books(con, view.run_id, "pca", [])
        return placed.filter(pl.col("book_key").is_in(keys))

    frames = {
        "selection": part(selection),
        "matches": part(matches),
        "neighbours": part(near),
        "chosen": part([selected] if selected else []),
    }
    return frames, n_matches


def _axis_labels(con, view: View) -> tuple[str, str]:
    if view.method != "custom":
        return ("Component 1", "Component 2")
    a, b = (queries.pole_label(con, p) for p in view.x)
    x = f"{a}  ←  X  →  {b}"
    if view.y_poles:
        c, d = (queries.pole_label(con, p) for p in view.y_poles)
        return x, f"{c}  ←  Y  →  {d}"
    return x, "Principal component orthogonal to X"


def draw_map(run_id, method, colour, xa, xb, ya, yb, isolate, selection, selected, search):
    """The whole map of a run and projection (sampled above max_points) with its overlays; with
    isolate on, only the selected books and their neighbours."""
    settings = current_settings()
    view = View(run_id, method, colour, xa, xb, ya, yb)
    if view.forged or not isinstance(isolate, list | bool) or not isinstance(selection, list):
        raise PreventUpdate
    isolate = as_flag(isolate)
    selection = as_keys(selection, settings.selection_cap)
    if set(ctx.triggered_prop_ids) == {"emb-selection.data"} and not isolate:
        raise PreventUpdate  # only the selection changed: its overlay is patched, the map stays
    if view.missing:
        return figures.message_figure(view.missing, "Book map", height=640), None, ""
    try:
        with queries.reading(settings.db_path) as con:
            kind = queries.run_kind(con, view.run_id)
            if kind is None:
                message = f"Run #{view.run_id} is gone; pick another run."
                return figures.message_figure(message, "Book map", height=640), None, ""
            if view.method != "custom" and view.method not in queries.projection_methods(
                con, view.run_id
            ):
                message = f"Run #{view.run_id} has no {view.method} map."
                return figures.message_figure(message, "Book map", height=640), None, ""
            keys = None
            if isolate and selection:
                keys = list(
                    dict.fromkeys(
                        selection
                        + queries.neighbour_keys(con, view.run_id, selection, settings.neighbours)
                    )
                )
            positions = _positions(con, view)
            points, total = _points(con, view, keys, settings.max_points, positions)
            frames, _ = _overlays(
                con,
                view,
                as_key(selected),
                selection,
                as_text(search),
                settings.neighbours,
                positions,
            )
            axes = _axis_labels(con, view)
    except Exception as exc:
        return figures.message_figure(describe_failure(exc), "Book map", height=640), None, ""
    title = f"{KIND_LABELS.get(kind, kind)} run #{view.run_id}, {dict(METHODS)[view.method]}"
    fig, at = figures.embedding_map(
        points,
        view.colour,
        total=total,
        title=title,
        selected=frames["chosen"],
        neighbours=frames["neighbours"],
        selection=frames["selection"],
        matches=frames["matches"],
        axes=axes,
        shown_of="selected books and their neighbours" if keys is not None else "books",
        revision=view.revision(),
    )
    caption = (
        f"Showing {figures.sample_note(points.height, total)}: above "
        f"{settings.max_points:,} points the map keeps the most-rated books; the chosen book, "
        "its neighbours, the selection and search matches are always drawn."
        if points.height < total
        else f"Showing all {total:,} books of the run."
    )
    if keys is not None:
        caption = (
            f"Isolated: the {len(selection):,} selected books and their nearest "
            f"{settings.neighbours} neighbours each ({total:,} books)."
        )
    return fig, at, caption


def patch_overlays(
    selected, selection, search, run_id, method, colour, xa, xb, ya, yb, at, isolate
):
    """Redraw only the overlay traces (the chosen book, its neighbours, the selection, search
    matches): the map's thousands of points stay in the browser. Also the match count."""
    settings = current_settings()
    view = View(run_id, method, colour, xa, xb, ya, yb)
    if view.forged:
        raise PreventUpdate
    at = as_key(at)
    changed = set(ctx.triggered_prop_ids)
    if changed == {"emb-selection.data"} and as_flag(isolate):
        raise PreventUpdate  # the isolated map is redrawn whole
    search = as_text(search)
    if view.missing or at is None:
        return no_update, _count_text(search, None)
    try:
        with queries.reading(settings.db_path) as con:
            frames, n_matches = _overlays(
                con,
                view,
                as_key(selected),
                as_keys(selection, settings.selection_cap),
                search,
                settings.neighbours,
            )
    except Exception as exc:
        return no_update, describe_failure(exc)
    patched = Patch()
    traces = figures.overlay_traces(
        frames["selection"], frames["matches"], frames["neighbours"], frames["chosen"]
    )
    for offset, trace in enumerate(traces):
        patched["data"][at + offset] = trace.to_plotly_json()
    return patched, _count_text(search, n_matches, frames["matches"].height)


def _count_text(search: str, n: int | None, drawn: int | None = None) -> str:
    if not search:
        return ""
    if n is None:
        return ""
    if n == 0:
        return f"No book matches '{search}'."
    shown = "" if drawn is None or drawn == n else f"; the {drawn:,} most-rated are marked"
    return f"{n:,} book{'s' if n != 1 else ''} match '{search}' (title, author or tag){shown}."


def initial_count(run_id, search):
    """The match count when the page opens with ?q= (the overlays come with the map)."""
    search = as_text(search)
    run_id = as_key(run_id)
    if not search or run_id is None:
        return ""
    try:
        with queries.reading(current_settings().db_path) as con:
            matches, n = queries.match_books(con, run_id, search, MATCHES_DRAWN)
    except Exception as exc:
        return describe_failure(exc)
    return _count_text(search, n, len(matches))


# ----------------------------------------------------------------------------- selection

# Box/lasso selections become a list of book keys in the browser: the points' customdata, at most
# the cap, so the server never receives plotly's whole selection object. Only "Clear selection"
# empties it: a map redrawn for another colour or projection keeps the selection.
SELECT_JS = """
function(selected, clears, cap, current) {
    const trig = (window.dash_clientside.callback_context.triggered || []).map(t => t.prop_id);
    if (trig.includes('emb-clear.n_clicks')) { return []; }
    // A redrawn figure (new colour, projection) reports an empty or no selection: keep ours.
    if (!selected || !Array.isArray(selected.points) || !selected.points.length) {
        return window.dash_clientside.no_update;
    }
    const keys = [];
    const seen = new Set();
    for (const p of selected.points) {
        let k = p.customdata;
        if (Array.isArray(k)) { k = k[0]; }
        if (typeof k === 'number' && !seen.has(k)) {
            seen.add(k);
            keys.push(k);
            if (keys.length >= cap) { break; }
        }
    }
    return keys;
}
"""


def selection_table(selection, run_id):
    """The selected books (title, authors, top three tags, ratings) and their most common tags."""
    settings = current_settings()
    keys = as_keys(selection, settings.selection_cap)
    run_id = as_key(run_id)
    if not keys:
        return notice("No books selected.")
    if run_id is None:
        return None
    try:
        with queries.reading(settings.db_path) as con:
            books = queries.selection_books(con, run_id, keys)
    except Exception as exc:
        return notice(describe_failure(exc), "warn")
    if books.is_empty():
        return notice("None of the selected books is in this run.", "warn")
    tags = (
        books.select(pl.col("top_tags").explode().alias("tag"))
        .drop_nulls()
        .group_by("tag")
        .len()
        .sort(["len", "tag"], descending=[True, False])
        .head(3)
    )
    common = ", ".join(f"{t} ({n:,})" for t, n in tags.iter_rows()) or "none"
    capped = (
        f" (a selection keeps at most {settings.selection_cap:,} books)"
        if len(keys) >= settings.selection_cap
        else ""
    )
    head = html.P(
        [
            html.B(f"{books.height:,} books selected{capped}. "),
            f"Their three most common tags: {common}.",
        ],
        id="emb-selection-summary",
    )
    records = [
        {
            "title": r["title"] or f"book {r['book_key']}",
            "authors": r["authors"] or "",
            "tags": ", ".join(r["top_tags"] or []),
            "ratings": fmt_int(r["n_ratings"]),
        }
        for r in books.head(TABLE_ROWS).iter_rows(named=True)
    ]
    more = (
        html.P(
            f"The {TABLE_ROWS} most-rated shown; the CSV has all {books.height:,}.",
            className="muted",
        )
        if books.height > TABLE_ROWS
        else None
    )
    return [
        head,
        html.Div(
            table(
                [
                    ("title", "Title"),
                    ("authors", "Authors"),
                    ("tags", "Top tags"),
                    ("ratings", "Ratings"),
                ],
                records,
                numeric=("ratings",),
                table_id="emb-selection-rows",
            ),
            className="scroll-y",
        ),
        more,
    ]


def download_selection(_clicks, selection, run_id):
    """The selection as CSV: key, title, authors, top tags, ratings, year, Goodreads average."""
    settings = current_settings()
    keys = as_keys(selection, settings.selection_cap)
    run_id = as_key(run_id)
    if not keys or run_id is None:
        raise PreventUpdate
    try:
        with queries.reading(settings.db_path) as con:
            books = queries.selection_books(con, run_id, keys)
    except Exception as exc:
        describe_failure(exc)
        raise PreventUpdate from None
    out = books.with_columns(pl.col("top_tags").list.join("; ")).rename(
        {"n_ratings": "ratings_in_matrix"}
    )
    return {
        "content": out.write_csv(),
        "filename": f"shelfwise-run{run_id}-selection.csv",
        "type": "text/csv",
    }


# ----------------------------------------------------------------------------- side panel


def detail(selected, run_id):
    """The side panel: the chosen book and its nearest books under the run."""
    selected = as_key(selected)
    run_id = as_key(run_id)
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
        dcc.Link("Compare two runs →", href=f"/compare?book={selected}", className="more-link"),
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
    )(guarded(runs_of_kind))
    app.callback(
        Output("emb-method", "options"),
        Output("emb-method", "value"),
        Output("emb-colour", "options"),
        Output("emb-colour", "value"),
        Input("emb-run", "value"),
        State("emb-method", "value"),
        State("emb-colour", "value"),
    )(guarded(run_capabilities))
    app.callback(Output("emb-axes", "style"), Input("emb-method", "value"))(guarded(show_axes))
    app.callback(
        Output("emb-search", "options"),
        Output("emb-search", "value"),
        Output("emb-selected", "data"),
        Input("emb-search", "search_value"),
        Input("emb-search", "value"),
        Input("emb-map", "clickData"),
        State("emb-run", "value"),
        prevent_initial_call=True,
    )(guarded(choose_book))
    for name in POLES:
        app.callback(
            Output(f"emb-{name}", "options"),
            Input(f"emb-{name}", "search_value"),
            State(f"emb-{name}", "value"),
            State("emb-run", "value"),
            prevent_initial_call=True,
        )(guarded(pole_typeahead))
    view = [
        Input("emb-run", "value"),
        Input("emb-method", "value"),
        Input("emb-colour", "value"),
        *(Input(f"emb-{name}", "value") for name in POLES),
    ]
    app.callback(
        Output("emb-map", "figure"),
        Output("emb-overlay-at", "data"),
        Output("emb-caption", "children"),
        *view,
        Input("emb-isolate", "value"),
        Input("emb-selection", "data"),
        State("emb-selected", "data"),
        State("emb-find", "value"),
    )(guarded(draw_map))
    app.callback(
        Output("emb-map", "figure", allow_duplicate=True),
        Output("emb-find-count", "children", allow_duplicate=True),
        Input("emb-selected", "data"),
        Input("emb-selection", "data"),
        Input("emb-find", "value"),
        *(State(i.component_id, i.component_property) for i in view),
        State("emb-overlay-at", "data"),
        State("emb-isolate", "value"),
        prevent_initial_call=True,
    )(guarded(patch_overlays))
    app.callback(
        Output("emb-find-count", "children"),
        Input("emb-run", "value"),
        State("emb-find", "value"),
    )(guarded(initial_count))
    app.clientside_callback(
        SELECT_JS,
        Output("emb-selection", "data"),
        Input("emb-map", "selectedData"),
        Input("emb-clear", "n_clicks"),
        State("emb-selection-cap", "data"),
        State("emb-selection", "data"),
        prevent_initial_call=True,
    )
    app.callback(
        Output("emb-selection-table", "children"),
        Input("emb-selection", "data"),
        Input("emb-run", "value"),
    )(guarded(selection_table))
    app.callback(
        Output("emb-download", "data"),
        Input("emb-csv", "n_clicks"),
        State("emb-selection", "data"),
        State("emb-run", "value"),
        prevent_initial_call=True,
    )(guarded(download_selection))
    app.callback(
        Output("emb-detail", "children"),
        Input("emb-selected", "data"),
        Input("emb-run", "value"),
    )(guarded(detail))
    url_sync(
        app,
        PATH,
        "emb-url",
        [
            ("kind", "emb-kind", "value"),
            ("run", "emb-run", "value"),
            ("proj", "emb-method", "value"),
            ("colour", "emb-colour", "value"),
            ("book", "emb-selected", "data"),
            *((name, f"emb-{name}", "value") for name in POLES),
            ("q", "emb-find", "value"),
        ],
    )
