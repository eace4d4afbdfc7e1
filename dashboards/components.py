"""Small layout pieces every page shares: page frame, cards, tables, book rows, notices, setup
page."""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
from dash import Input, Output, dcc, html

from base.errors import ShelfwiseError
from base.registry import kinds
from dashboards.queries import OverBudget, WarehouseStatus, WarehouseUnavailable
from dashboards.settings import covers_enabled

log = logging.getLogger(__name__)

GRAPH_CONFIG = {
    "displaylogo": False,
    "responsive": True,
    "modeBarButtonsToRemove": ["lasso2d", "select2d"],
}


# ----------------------------------------------------------------------------- formatting


def fmt_int(n: Any) -> str:
    return "–" if n is None else f"{int(n):,}"  # noqa: RUF001 - en dash: UI placeholder


def fmt_when(when: datetime | None) -> str:
    return "–" if when is None else when.strftime("%Y-%m-%d %H:%M")  # noqa: RUF001 - UI dash


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"  # noqa: RUF001 - en dash: UI placeholder
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def fmt_params(params: str | dict | None) -> str:
    """Hyper-parameters as ``name=value`` pairs (never raw JSON), without the redundant kind."""
    if params is None:
        return ""
    values = json.loads(params) if isinstance(params, str) else params
    parts = []
    for name, value in sorted(values.items()):
        if name == "kind":
            continue
        if isinstance(value, float):
            value = f"{value:g}"
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        parts.append(f"{name}={value}")
    return " · ".join(parts) or "no parameters"


def fmt_file(path: str) -> str:
    return Path(path).name


# ----------------------------------------------------------------------------- frame


def page(title: str, lead: str, *children: Any, page_id: str) -> html.Div:
    """The frame of every page: a title, one sentence saying what it shows, then the content (None
    skipped)."""
    return html.Div(
        [
            html.Div([html.H1(title), html.P(lead, className="lead")], className="page-head"),
            *(c for c in children if c is not None),
        ],
        className="page",
        id=page_id,
    )


def card(
    title: str | None, *children: Any, class_name: str = "", card_id: str | None = None
) -> html.Section:
    """A white panel with an optional heading."""
    head = [html.H2(title, className="card-title")] if title else []
    kwargs = {"id": card_id} if card_id else {}
    return html.Section([*head, *children], className=f"card {class_name}".strip(), **kwargs)


def controls(*items: tuple[str, Any]) -> html.Div:
    """A row of labelled controls."""
    return html.Div(
        [
            html.Div([html.Label(label, className="control-label"), control], className="control")
            for label, control in items
        ],
        className="controls",
    )


def graph(graph_id: str, *, height: int = 420, selectable: bool = False) -> dcc.Loading:
    """A dcc.Graph of a fixed height with a loading spinner (shown only after 300 ms);
    ``selectable`` keeps the box and lasso select tools in its mode bar."""
    config = dict(GRAPH_CONFIG)
    if selectable:
        config["modeBarButtonsToRemove"] = []
    return dcc.Loading(
        dcc.Graph(id=graph_id, config=config, style={"height": f"{height}px"}),
        type="circle",
        color="#0072B2",
        delay_show=300,
    )


def kpis(items: Sequence[tuple[str, str, str]]) -> html.Div:
    """Key figures: (label, value, note)."""
    return html.Div(
        [
            html.Div(
                [
                    html.Div(value, className="kpi-value"),
                    html.Div(label, className="kpi-label"),
                    html.Div(note, className="kpi-note"),
                ],
                className="kpi",
            )
            for label, value, note in items
        ],
        className="kpis",
    )


def notice(text: Any, tone: str = "info") -> html.Div:
    """A one-line message in place of content (tone: info, warn, error)."""
    return html.Div(text, className=f"notice notice-{tone}", role="status")


def table(
    columns: Sequence[tuple[str, str]],
    records: Sequence[dict],
    *,
    numeric: Sequence[str] = (),
    table_id: str | None = None,
) -> html.Table:
    """A plain table: ``columns`` are (key, header); values are strings or components."""
    kwargs = {"id": table_id} if table_id else {}
    head = html.Thead(
        html.Tr([html.Th(h, className="num" if k in numeric else None) for k, h in columns])
    )
    body = html.Tbody(
        [
            html.Tr(
                [
                    html.Td(r.get(k, ""), className="num" if k in numeric else None)
                    for k, _ in columns
                ],
                className=r.get("_class"),
                **({"data-run-id": str(r["_run_id"])} if "_run_id" in r else {}),
            )
            for r in records
        ]
    )
    return html.Table([head, body], className="table", **kwargs)


# ----------------------------------------------------------------------------- books


def cover(image_url: str | None, title: str | None) -> html.Div:
    """A cover tile: the book's initial, under its cover image when the image loads.

    A CSS background rather than <img>, so an unreachable cover host leaves the tile, not a
    broken-image icon. Only http(s) URLs are used, and none when the app runs with covers off
    (``--no-covers``): then the page names no other host at all.
    """
    layers: list[Any] = [html.Span((title or "?").strip()[:1].upper(), className="cover-initial")]
    usable = bool(image_url) and image_url.startswith(("https://", "http://"))
    if usable and "nophoto" not in image_url and covers_enabled():
        safe = image_url.replace('"', "%22").replace("\\", "%5C")
        layers.append(
            html.Div(className="cover-image", style={"backgroundImage": f'url("{safe}")'})
        )
    return html.Div(layers, className="cover", title=title or "")


def book_row(
    book_key: int,
    title: str | None,
    authors: str | None,
    image_url: str | None = None,
    *,
    rank: int | None = None,
    score: float | None = None,
    score_label: str = "",
    detail: Any = None,
    link: bool = True,
) -> html.Li:
    """One book in a list: cover, title (a link to its neighbours), authors, optional score bar."""
    name = title or f"book {book_key}"
    heading = (
        dcc.Link(
            name,
            href=f"/neighbours?book={int(book_key)}",
            className="book-title",
            title=f"{name}: neighbours under each model",
        )
        if link
        else html.Span(name, className="book-title", title=name)
    )
    text = [heading, html.Div(authors or "", className="book-authors")]
    if detail is not None:
        text.append(html.Div(detail, className="book-detail"))
    parts: list[Any] = []
    if rank is not None:
        parts.append(html.Span(f"{rank}", className="book-rank"))
    parts += [cover(image_url, title), html.Div(text, className="book-text")]
    if score is not None:
        width = max(0.0, min(1.0, score)) * 100
        parts.append(
            html.Div(
                [
                    html.Span(f"{score:.3f}", className="score-value", title=score_label),
                    html.Div(
                        html.Div(className="score-fill", style={"width": f"{width:.0f}%"}),
                        className="score-bar",
                    ),
                ],
                className="book-score",
            )
        )
    return html.Li(parts, className="book", **{"data-book-key": str(int(book_key))})


def book_list(items: Sequence[html.Li], list_id: str | None = None) -> html.Ol:
    kwargs = {"id": list_id} if list_id else {}
    return html.Ol(list(items), className="books", **kwargs)


def stars(rating: float | int | None) -> str:
    """A rating as five filled or empty stars."""
    if rating is None:
        return ""
    r = round(float(rating))
    return "★" * r + "☆" * (5 - r)


# ----------------------------------------------------------------------------- setup page


# The bundled sample, as an absolute path so the commands work from any directory.
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "data" / "sample" / "goodbooks"


def setup_page(status: WarehouseStatus, db_path: Path) -> html.Div:
    """What to run to build the warehouse, ticking off the steps already done. Never a traceback."""
    db = shlex.quote(str(db_path))
    sample = shlex.quote(str(SAMPLE_DATA))
    steps = [
        (
            "Load a dataset (raw files into DuckDB)",
            f"shelfwise load goodbooks {sample} --db {db}",
            status.loaded_files > 0,
        ),
        (
            "Build the cleaned tables and the rating matrix",
            f"shelfwise transform --db {db}",
            status.transformed,
        ),
        (
            "Fit the models (each publishes factors, neighbours and 2-D maps)",
            "\n".join(f"shelfwise fit {k} --db {db}" for k in kinds(default=True)),
            bool(status.published),
        ),
        ("Score them on the held-out ratings", f"shelfwise evaluate --db {db}", status.evaluated),
    ]
    if not status.exists:
        headline = f"There is no warehouse at {db_path} yet."
    elif status.loaded_files == 0:
        headline = f"The warehouse at {db_path} is empty."
    else:
        headline = f"The warehouse at {db_path} has no published models yet."
    items = [
        html.Li(
            [
                html.Div(
                    [
                        html.Span(
                            "✓" if done else str(i), className=f"step-mark {'done' if done else ''}"
                        ),
                        html.Span(text),
                    ],
                    className="step-text",
                ),
                html.Pre(html.Code(command), className="command"),
            ],
            className="step",
        )
        for i, (text, command, done) in enumerate(steps, 1)
    ]
    return html.Div(
        [
            html.Div(
                [
                    html.H1("Build the warehouse first"),
                    html.P(headline, className="lead", id="setup-headline"),
                ],
                className="page-head",
            ),
            card(
                "How to build one",
                html.Ol(items, className="steps"),
                html.P(
                    [
                        "Or all at once: ",
                        html.Code(
                            f"shelfwise refresh --data {sample} --min-book-ratings 50 --db {db}"
                        ),
                        " (the bundled sample needs the lower minimum), or ",
                        html.Code("make demo"),
                        ". The dashboard only reads "
                        "the warehouse; this page opens the real one by itself once the commands "
                        "have finished.",
                    ],
                    className="muted",
                ),
            ),
        ],
        className="page",
        id="setup-page",
    )


# ----------------------------------------------------------------------------- options and failures


def book_label(title: str | None, authors: str | None, year: int | None = None) -> str:
    by = f" — {authors}" if authors else ""
    when = f" ({year})" if year and year > 0 else ""
    return f"{title or 'untitled'}{by}{when}"


def book_options(found: Any, selected: Any = None) -> list[dict]:
    """Dropdown options from frames with book_key, title, authors (publication_year optional).

    The selected books come first so a chosen value always has its label, whatever was typed.
    """
    options: list[dict] = []
    seen: set[int] = set()
    for frame in (selected, found):
        if frame is None or frame.is_empty():
            continue
        has_year = "publication_year" in frame.columns
        for row in frame.iter_rows(named=True):
            key = int(row["book_key"])
            if key in seen:
                continue
            seen.add(key)
            options.append(
                {
                    "label": book_label(
                        row["title"], row["authors"], row["publication_year"] if has_year else None
                    ),
                    "value": key,
                }
            )
    return options


def unknown_book_notice(book: str | None, selected: int | None) -> html.Div | None:
    """A warning when the URL's ``?book=`` named no book of this warehouse (None otherwise)."""
    if not book or selected is not None:
        return None
    return notice(
        f"No book {book!r} in this warehouse: ?book= takes a book key, "
        "as the links between pages write it. "
        "Find the book below instead.",
        "warn",
    )


def preselected_book(db_path: Path, book: str | None) -> tuple[int | None, list[dict]]:
    """The ``?book=KEY`` of a page's URL as (key, its dropdown option), or (None, []) if not a
    book."""
    from dashboards import queries

    if not book or not book.isdigit():
        return None, []
    try:
        with queries.reading(db_path) as con:
            options = book_options(queries.books_by_key(con, [int(book)]))
    except Exception as exc:  # the page still opens, just without the book chosen
        describe_failure(exc)
        return None, []
    return (int(book), options) if options else (None, [])


def describe_failure(exc: BaseException) -> str:
    """What to tell the user when a callback could not read what it needed (logged in full)."""
    if isinstance(exc, OverBudget):
        log.warning("request over its time budget: %s", exc)
        return str(exc)
    if isinstance(exc, WarehouseUnavailable):
        if exc.missing:
            return (
                "There is no warehouse to read: build one with the commands on the Overview page."
            )
        return "The warehouse is being written right now; try again in a moment."
    if isinstance(exc, ShelfwiseError):
        return str(exc)
    log.error("dashboard callback failed", exc_info=exc)
    return "Could not read this from the warehouse (the server log has the details)."


# ----------------------------------------------------------------------------- state in the URL


def url_sync(app: dash.Dash, path: str, store_id: str, params: Sequence[tuple[str, str, str]]):
    """Keep the page's state in its address: ``params`` are (query name, component id, prop).

    A clientside callback writes them to the query string whenever one changes
    (``assets/urlstate.js``); ``layout(**query)`` reads them back, so a copied address, Back and
    Forward all give the same view. ``store_id`` is a dcc.Store of the page the callback writes to.
    """
    names = [name for name, _, _ in params]
    app.clientside_callback(
        "function(...values) { return window.shelfwiseUrl.sync("
        f"{json.dumps(path)}, {json.dumps(names)}, values); }}",
        Output(store_id, "data"),
        [Input(component, prop) for _, component, prop in params],
    )


def query_value(value: Any) -> str | None:
    """One query-string value as layout(**query) receives it: a repeated name gives a list (the
    first counts); anything but text is None."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) else None
