"""For you: a reader's own Goodreads export, matched in memory, folded into a model, recommended
with reasons and placed on a book map; nothing is stored."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, NamedTuple

import dash
import polars as pl
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from base.errors import BadInputError
from base.registry import preferred, spec
from dashboards import figures, queries
from dashboards.components import (
    book_list,
    book_row,
    card,
    controls,
    describe_failure,
    fmt_int,
    graph,
    kpis,
    notice,
    page,
    query_value,
    setup_page,
    table,
    url_sync,
)
from dashboards.figures import KIND_LABELS
from dashboards.guard import (
    accept_upload,
    as_choice,
    as_flag,
    as_int,
    as_keys,
    as_text,
    guarded,
)
from dashboards.settings import CONFIG_KEY, DashboardSettings, current_settings
from shelfwise import serving
from warehouse import readers

dash.register_page(__name__, path="/for-you", name="For you", title="Shelfwise · For you", order=7)

PATH = "/for-you"
# The one callback whose request carries the file (guard.accept_upload lets it past the 1 MB cap).
UPLOAD_OUTPUT = "you-shelf.data"
# Kinds that take a new reader (every kind but the yardsticks, from the registry).
READER_KINDS: tuple[str, ...] = tuple(k for k in queries.RECOMMEND_KINDS if spec(k).fold_in)
# How the match report names each method, most trustworthy first (warehouse.readers.MATCH_SQL).
METHODS = {
    "goodreads_id": "Goodreads book id",
    "isbn13": "ISBN-13",
    "isbn10": "ISBN-10",
    "title_author": "title and first author",
}
# Unrated books' shelves as one-letter marks (a rated book's mark is its rating, "1".."5"), and
# back: the store keeps one character per book, so a large library stays a small request.
SHELF_MARKS = {"read": "r", "currently-reading": "c", "to-read": "t"}
MARK_SHELVES = {"r": "read", "c": "currently-reading", "t": "to-read", "o": "other"}
MARKS = frozenset("12345rcto")
# Matched books the session keeps (each later request sends them back, under max_body_bytes),
# and unmatched rows listed in the report.
MAX_SHELF_BOOKS = 30_000
UNMATCHED_SHOWN = 200
RECOMMENDED_SHOWN = 100

PRIVACY = (
    "Your file stays private: the server reads it in memory to match it against the catalogue "
    "and forgets it; nothing is written to the warehouse. This browser tab keeps the matched "
    "books until you close it or press Forget this file. To keep a reader for the command line "
    "and the weekly digest, use "
)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB"


def layout(kind: str | None = None, to_read: str | None = None, **_query: str) -> html.Div:
    """The drop zone, the match report, the model picker and to-read toggle, the
    recommendations and the map; the URL sets the model and the toggle
    (``?kind=KIND&to_read=include``)."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    offered = tuple(k for k in READER_KINDS if k in status.published)
    if not status.ready or not offered:
        return setup_page(status, settings.db_path)
    kind = as_choice(query_value(kind), offered, status.default_among(offered))
    include = query_value(to_read) == "include"
    return page(
        "For you",
        "Drop your Goodreads library export: the page matches your books to the catalogue, "
        "folds you into a model without refitting it and recommends what to read next, each "
        "book with the ones of yours that put it there, and places your books on the map.",
        card(
            "Your Goodreads library",
            dcc.Upload(
                html.Div(
                    [
                        html.Strong("Drop goodreads_library_export.csv here"),
                        html.Span(" or click to choose it"),
                        html.Div(
                            "Goodreads: My Books, Import and export, Export library "
                            f"({_mb(settings.max_upload_bytes)} at most).",
                            className="muted",
                        ),
                    ]
                ),
                id="you-upload",
                className="drop-zone",
                className_active="drop-zone active",
                multiple=False,
            ),
            html.P(
                [PRIVACY, html.Code("shelfwise reader import"), "."],
                className="muted",
                id="you-privacy",
            ),
            html.Div(
                [
                    html.Div(id="you-file-name", className="muted"),
                    html.Button(
                        "Forget this file",
                        id="you-forget",
                        n_clicks=0,
                        className="button subtle",
                        disabled=True,
                    ),
                ],
                className="selection-tools",
            ),
            dcc.Loading(html.Div(id="you-report"), type="circle", color="#0072B2", delay_show=300),
            card_id="you-upload-card",
        ),
        controls(
            (
                "Model",
                dcc.RadioItems(
                    id="you-kind",
                    options=[{"label": KIND_LABELS[k], "value": k} for k in offered],
                    value=kind,
                    inline=True,
                    className="radio",
                ),
            ),
            (
                "To-read shelf",
                dcc.Checklist(
                    id="you-to-read",
                    options=[{"label": " Count my to-read shelf", "value": "include"}],
                    value=["include"] if include else [],
                    className="checklist",
                ),
            ),
        ),
        html.Div(
            [
                card("Recommended for you", html.Div(id="you-recs")),
                card(
                    "Your books on the map",
                    graph("you-map", height=560),
                    html.P(id="you-map-caption", className="muted caption"),
                ),
            ],
            className="grid-2",
        ),
        dcc.Store(id="you-file"),
        dcc.Store(id="you-shelf", storage_type="session"),
        dcc.Store(id="you-rec-keys"),
        dcc.Store(id="you-url"),
        page_id="you-page",
    )


# ----------------------------------------------------------------------------- the upload


def _decode(contents: Any, cap: int, name: str) -> bytes:
    """The bytes of a dcc.Upload data URL (``data:<type>;base64,<data>``)."""
    if not isinstance(contents, str) or not contents.startswith("data:"):
        raise BadInputError(f"{name}: not a file upload")
    head, comma, data = contents.partition(",")
    if not comma:  # the browser's data URL of an empty file
        return b""
    if not head.endswith(";base64"):
        raise BadInputError(f"{name}: not a file upload")
    if len(data) > 4 * -(-cap // 3):
        raise BadInputError(f"{name}: more than a library export ({_mb(cap)} at most)")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadInputError(f"{name}: not a file upload") from None


def _summary(name: str, matched: pl.DataFrame) -> dict:
    """What the session keeps of a matched export (see _Shelf): counts for the report, the first
    unmatched rows with their reasons, and the matched books as keys and one-letter marks."""
    found = matched.filter(pl.col("book_key").is_not_null())
    unique = found.unique(subset="book_key", keep="first", maintain_order=True)
    kept = unique.head(MAX_SHELF_BOOKS)
    marks = "".join(
        str(rating) if rating is not None else SHELF_MARKS.get(shelf, "o")
        for rating, shelf in zip(kept["rating"], kept["shelf"], strict=True)
    )
    methods = found.group_by("match_method").len()
    unmatched = matched.filter(pl.col("book_key").is_null())
    return {
        "file": name,
        "rows": matched.height,
        "matched": found.height,
        "books": unique.height,
        "methods": dict(zip(methods["match_method"], methods["len"], strict=True)),
        "n_unmatched": unmatched.height,
        "unmatched": [
            [int(line), title or "", author or "", reason or ""]
            for line, title, author, reason in unmatched.head(UNMATCHED_SHOWN)
            .select("line", "title", "author", "unmatched_reason")
            .iter_rows()
        ],
        "keys": [int(k) for k in kept["book_key"]],
        "marks": marks,
    }


def read_upload(file: Any) -> dict | None:
    """Parse and match the uploaded export in memory (warehouse.readers, read-only); the session
    store gets the summary, or ``{"file", "error"}`` with the one-line reason."""
    if not isinstance(file, dict):
        raise PreventUpdate
    if file.get("forget") is True:
        return None
    name = as_text(file.get("name"), 120).strip() or "export"
    if isinstance(file.get("error"), str):  # refused in the browser: too large to send
        return {"file": name, "error": as_text(file["error"], 300)}
    settings = current_settings()
    try:
        data = _decode(file.get("contents"), settings.max_upload_bytes, name)
        shelf = readers.parse_export(data, name=name)
        with queries.reading(settings.db_path) as con:
            matched = readers.match_export(con, shelf)
    except Exception as exc:
        return {"file": name, "error": describe_failure(exc)}
    return _summary(name, matched)


# ----------------------------------------------------------------------------- the session's shelf


class _Shelf(NamedTuple):
    """The session store, checked: it comes back from the browser, so every field is coerced."""

    file: str
    rows: int
    matched: int
    books: int
    methods: dict[str, int]
    n_unmatched: int
    unmatched: list[tuple[int, str, str, str]]
    keys: list[int]
    marks: str

    @classmethod
    def of(cls, data: Any) -> _Shelf | None:
        """The shelf in ``data``, or None for anything but a well-formed summary."""
        if not isinstance(data, dict) or "error" in data:
            return None
        counts = [as_int(data.get(k), lo=0) for k in ("rows", "matched", "books", "n_unmatched")]
        raw_keys, marks = data.get("keys"), data.get("marks")
        if (
            None in counts
            or not isinstance(raw_keys, list)
            or not isinstance(marks, str)
            or len(raw_keys) > MAX_SHELF_BOOKS
            or len(marks) != len(raw_keys)
            or not set(marks) <= MARKS
        ):
            return None
        keys = as_keys(raw_keys, MAX_SHELF_BOOKS)
        if len(keys) != len(raw_keys):  # a forged key or a duplicate: marks would not line up
            return None
        methods = data.get("methods")
        methods = methods if isinstance(methods, dict) else {}
        unmatched = []
        for row in data.get("unmatched") or []:
            if isinstance(row, list) and len(row) == 4 and as_int(row[0], lo=0) is not None:
                unmatched.append(
                    (as_int(row[0]), as_text(row[1]), as_text(row[2]), as_text(row[3]))
                )
        rows, matched, books, n_unmatched = counts
        return cls(
            file=as_text(data.get("file"), 120),
            rows=rows,
            matched=matched,
            books=books,
            methods={m: as_int(methods.get(m), lo=0) or 0 for m in METHODS},
            n_unmatched=n_unmatched,
            unmatched=unmatched[:UNMATCHED_SHOWN],
            keys=keys,
            marks=marks,
        )

    def frame(self) -> pl.DataFrame:
        """The matched shelf as serving.recommend_for_shelf reads it: book_key, rating, shelf."""
        return pl.DataFrame(
            {
                "book_key": self.keys,
                "rating": [int(m) if m.isdigit() else None for m in self.marks],
                "shelf": [MARK_SHELVES.get(m, "read") for m in self.marks],
            },
            schema={"book_key": pl.Int64, "rating": pl.Int8, "shelf": pl.String},
        )


def _error_of(data: Any) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return as_text(data["error"], 300)
    return None


# ----------------------------------------------------------------------------- the match report


def show_report(data: Any):
    """The match report: how many books matched and how, and the unmatched rows with reasons."""
    error = _error_of(data)
    if error is not None:
        name = as_text(data.get("file"), 120)
        return notice(error, "error"), f"Not read: {name}", False
    shelf = _Shelf.of(data)
    if shelf is None:
        return (
            notice("No export yet: drop your goodreads_library_export.csv above."),
            "",
            True,
        )
    share = f"{shelf.matched / shelf.rows:.0%} of the file" if shelf.rows else ""
    figures_row = kpis(
        [
            ("Books in the file", fmt_int(shelf.rows), shelf.file),
            ("Matched", fmt_int(shelf.matched), share),
            ("Not matched", fmt_int(shelf.n_unmatched), "listed below with the reason"),
            (
                "Rated by you",
                fmt_int(sum(m.isdigit() for m in shelf.marks)),
                "of the matched books",
            ),
        ]
    )
    methods = table(
        [("method", "Matched by"), ("books", "Books")],
        [
            {"method": label, "books": fmt_int(shelf.methods[m])}
            for m, label in METHODS.items()
            if shelf.methods[m]
        ],
        numeric=("books",),
        table_id="you-methods-table",
    )
    parts: list[Any] = [html.Div(figures_row, id="you-kpis")]
    if shelf.matched == 0:
        parts.append(
            notice(
                f"None of the {fmt_int(shelf.rows)} books of {shelf.file} is in this "
                "warehouse's catalogue, so there is nothing to recommend from.",
                "warn",
            )
        )
    else:
        parts.append(methods)
    if shelf.books > len(shelf.keys):
        parts.append(
            notice(
                f"Only the first {fmt_int(len(shelf.keys))} of your {fmt_int(shelf.books)} "
                "matched books are used.",
                "warn",
            )
        )
    if shelf.n_unmatched:
        shown = (
            f"; the first {len(shelf.unmatched)} are listed"
            if shelf.n_unmatched > len(shelf.unmatched)
            else ""
        )
        parts += [
            html.H3(f"Not matched ({fmt_int(shelf.n_unmatched)}{shown})", className="sub"),
            html.Div(
                table(
                    [("line", "Line"), ("title", "Title"), ("author", "Author"), ("why", "Why")],
                    [
                        {"line": str(line), "title": title, "author": author, "why": why}
                        for line, title, author, why in shelf.unmatched
                    ],
                    numeric=("line",),
                    table_id="you-unmatched-table",
                ),
                className="scroll-y unmatched",
            ),
        ]
    return parts, f"Read in memory: {shelf.file}", False


# ----------------------------------------------------------------------------- recommendations


def _because(because: tuple[tuple[str, float | None], ...]) -> html.Span | None:
    """ "because you rated Dune 5 stars; you shelved Emma", the reader's books that count most."""
    if not because:
        return None
    parts: list[Any] = ["because "]
    for i, (title, rating) in enumerate(because):
        if i:
            parts.append("; ")
        if rating is None:
            parts.append(html.Span(["you shelved ", html.I(title)], className="because"))
        else:
            stars = f"{rating:g} star" + ("" if rating == 1 else "s")
            parts.append(html.Span(["you rated ", html.I(title), f" {stars}"], className="because"))
    return html.Span(parts)


def show_recommendations(data: Any, kind: Any, to_read: Any, _version: Any):
    """The chosen model's recommendations for the session's shelf, each with its reasons; and
    their keys for the map."""
    kind = as_choice(kind, READER_KINDS)
    if kind is None:
        return notice("Choose a model.", "warn"), None
    include = as_flag(to_read)
    shelf = _Shelf.of(data)
    if shelf is None or not shelf.keys:
        hint = "Recommendations appear here once an export with books of this catalogue is read."
        return notice(hint), {"kind": kind, "keys": []}
    settings = current_settings()
    label = KIND_LABELS.get(kind, kind)
    try:
        with queries.reading(settings.db_path) as con:
            run_id = queries.latest_runs(con, (kind,)).get(kind)
            if run_id is None:
                return notice(f"No published {label} run.", "warn"), {"kind": kind, "keys": []}
            recs = serving.recommend_for_shelf(
                con, shelf.frame(), kind=kind, n=settings.recommendations, to_read=include
            )
    except Exception as exc:
        return notice(describe_failure(exc), "warn"), {"kind": kind, "keys": []}
    items = [
        book_row(
            r.book.book_key,
            r.book.title,
            r.book.authors,
            r.book.image_url,
            rank=i,
            detail=_because(r.because),
        )
        for i, r in enumerate(recs, 1)
    ]
    counted = "rated, read and reading books" + (" and to-read" if include else "")
    block = [
        html.P(
            f"Top {len(recs)} under {label} run #{run_id}: your {counted} folded into the "
            "model from its stored tables (no refit), never a book on any of your shelves. "
            "The reasons are your books that add most to each score.",
            className="muted",
            id="you-recs-note",
        ),
        book_list(items, list_id="you-rec-list"),
    ]
    return block, {"kind": kind, "keys": [int(r.book.book_key) for r in recs]}


# ----------------------------------------------------------------------------- the map


def _map_kind(kind: str | None, published: dict[str, int]) -> str | None:
    """The chosen model when it has book vectors, else the best mapped one."""
    mapped = tuple(k for k in queries.MAP_KINDS if k in published)
    if not mapped:
        return None
    if kind in mapped:
        return kind
    return preferred("neighbours", mapped) or mapped[0]


def draw_map(recommended: Any, data: Any):
    """The map of the recommending model (or, without book vectors, the default mapped one) with
    the reader's books and the recommendations highlighted."""
    shelf = _Shelf.of(data)
    if shelf is None or not shelf.keys:
        return (
            figures.message_figure(
                "Your books appear here once your export is read.", "Your books", height=560
            ),
            "",
        )
    recommended = recommended if isinstance(recommended, dict) else {}
    rec_kind = as_choice(recommended.get("kind"), READER_KINDS)
    rec_keys = as_keys(recommended.get("keys"), RECOMMENDED_SHOWN) if rec_kind else []
    settings = current_settings()
    try:
        with queries.reading(settings.db_path) as con:
            published = queries.latest_runs(con, queries.MAP_KINDS)
            kind = _map_kind(rec_kind, published)
            if kind is None:
                message = "No model with book vectors is published, so there is no map."
                return figures.message_figure(message, "Your books", height=560), ""
            run_id = published[kind]
            method = "tsne" if "tsne" in queries.projection_methods(con, run_id) else "pca"
            points, total = queries.projection_points(
                con, run_id, method, "popularity", settings.max_points
            )
            mine = queries.points_of_books(con, run_id, method, shelf.keys)
            stars = queries.points_of_books(con, run_id, method, rec_keys)
    except Exception as exc:
        return figures.message_figure(describe_failure(exc), "Your books", height=560), ""
    marks = pl.DataFrame(
        {"book_key": shelf.keys, "mark": list(shelf.marks)},
        schema={"book_key": pl.Int64, "mark": pl.String},
    )
    mine = mine.join(marks, on="book_key", how="inner")
    label = KIND_LABELS.get(kind, kind)
    projection = {"tsne": "t-SNE", "pca": "PCA"}[method]
    fig = figures.reader_map(
        points,
        mine,
        stars,
        total=total,
        title=f"{label} run #{run_id}, {projection}",
        revision=f"{run_id}-{method}",
    )
    caption = (
        f"{mine.height:,} of your {len(shelf.keys):,} matched books are in this model "
        "(the rest were rated too rarely to enter its matrix)"
        if mine.height < len(shelf.keys)
        else f"All {len(shelf.keys):,} of your matched books are in this model"
    )
    caption += (
        f"; the stars are the {stars.height} recommended books."
        if rec_kind == kind
        else f"; {KIND_LABELS.get(rec_kind, rec_kind)} has no book vectors, so this is "
        f"{label}'s map, with its recommendations as stars."
        if rec_kind
        else "."
    )
    return fig, caption


# ----------------------------------------------------------------------------- wiring


def _upload_js(settings: DashboardSettings) -> str:
    """The browser's side of the upload: refuse a file over the cap before sending it (with the
    server's own message), hand the rest to the server once, and empty the drop zone so the same
    file can be dropped again."""
    cap = settings.max_upload_bytes
    return """
    function(contents, forget, filename) {
        const nu = window.dash_clientside.no_update;
        const trig = (window.dash_clientside.callback_context.triggered || [])
            .map(t => t.prop_id);
        if (trig.indexOf("you-forget.n_clicks") >= 0) { return [{forget: true}, null]; }
        if (typeof contents !== "string") { return [nu, nu]; }
        const name = (typeof filename === "string" && filename) ? filename : "export";
        const comma = contents.indexOf(",");
        const size = comma < 0 ? 0 : Math.floor((contents.length - comma - 1) * 3 / 4);
        if (size > CAP) {
            return [{name: name, error: name + ": " + (size / 1048576).toFixed(1)
                + " MB is more than a library export (LIMIT at most)"}, null];
        }
        return [{name: name, contents: contents}, null];
    }
    """.replace("CAP", json.dumps(cap)).replace("LIMIT", _mb(cap))


def register_callbacks(app: dash.Dash) -> None:
    """Wire this page's callbacks to ``app`` (create_app calls it for every app it builds)."""
    settings: DashboardSettings = app.server.config[CONFIG_KEY]
    app.clientside_callback(
        _upload_js(settings),
        Output("you-file", "data"),
        Output("you-upload", "contents"),
        Input("you-upload", "contents"),
        Input("you-forget", "n_clicks"),
        State("you-upload", "filename"),
        prevent_initial_call=True,
    )
    app.callback(
        Output("you-shelf", "data"),
        Input("you-file", "data"),
        prevent_initial_call=True,
    )(guarded(read_upload))
    accept_upload(app, UPLOAD_OUTPUT)
    app.callback(
        Output("you-report", "children"),
        Output("you-file-name", "children"),
        Output("you-forget", "disabled"),
        Input("you-shelf", "data"),
    )(guarded(show_report))
    app.callback(
        Output("you-recs", "children"),
        Output("you-rec-keys", "data"),
        Input("you-shelf", "data"),
        Input("you-kind", "value"),
        Input("you-to-read", "value"),
        Input("app-data-version", "data"),
    )(guarded(show_recommendations))
    app.callback(
        Output("you-map", "figure"),
        Output("you-map-caption", "children"),
        Input("you-rec-keys", "data"),
        State("you-shelf", "data"),
    )(guarded(draw_map))
    url_sync(
        app, PATH, "you-url", [("kind", "you-kind", "value"), ("to_read", "you-to-read", "value")]
    )
