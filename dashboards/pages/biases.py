"""Biases: books rated above or below the average whoever reads them, and how generous users are."""

from __future__ import annotations

import dash
from dash import Input, Output, dcc, html, no_update
from dash.exceptions import PreventUpdate

from base.errors import ShelfwiseError
from base.registry import PREFERRED
from dashboards import figures, queries
from dashboards.components import (
    card,
    controls,
    describe_failure,
    graph,
    page,
    query_value,
    setup_page,
    url_sync,
)
from dashboards.figures import KIND_LABELS
from dashboards.guard import as_choice, as_int, guarded
from dashboards.settings import current_settings

dash.register_page(__name__, path="/biases", name="Biases", title="Shelfwise · Biases", order=2)


EXTREMES = 15
STEPS = (0, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000)


def layout(kind: str | None = None, **query: str) -> html.Div:
    """The model picker, the minimum-ratings slider (steps that fit this warehouse) and four
    charts; the URL sets them (``?kind=KIND&min=RATINGS``)."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    if not status.ready or not status.bias_kinds:
        return setup_page(status, settings.db_path)
    try:
        with queries.reading(settings.db_path) as con:
            most = queries.max_book_ratings(con)
    except Exception as exc:  # the figures' callback will say what is wrong
        describe_failure(exc)
        most = 0
    steps = [s for s in STEPS if s <= most] or [0]
    default = next((s for s in (100, 50, 25, 10) if s in steps and s * 4 <= most), steps[0])
    asked = as_int(query_value(query.get("min")), lo=0)
    if asked is not None:  # the highest step at or below what the URL asks for
        default = max([s for s in steps if s <= asked] or [steps[0]])
    # The best rating model with learned biases first.
    order = PREFERRED["ratings"]
    kinds = sorted(status.bias_kinds, key=lambda k: order.index(k) if k in order else len(order))
    kind = as_choice(query_value(kind), kinds, kinds[0])
    return page(
        "Biases",
        "A rating model learns how much better or worse than average each book is rated "
        "whoever reads it (its bias), and how generous each reader is. "
        "Raise the minimum to keep rarely rated books out of the extremes.",
        controls(
            (
                "Model",
                dcc.RadioItems(
                    id="bia-kind",
                    options=[{"label": KIND_LABELS[k], "value": k} for k in kinds],
                    value=kind,
                    inline=True,
                    className="radio",
                ),
            ),
            (
                "Minimum ratings per book (in the matrix)",
                html.Div(
                    dcc.Slider(
                        id="bia-min",
                        min=0,
                        max=len(steps) - 1,
                        step=1,
                        value=steps.index(default),
                        marks={i: f"{s:,}" for i, s in enumerate(steps)},
                        included=False,
                        allow_direct_input=False,
                    ),
                    className="slider",
                ),
            ),
        ),
        dcc.Store(id="bia-steps", data=steps),
        dcc.Store(id="bia-minimum", data=default),
        dcc.Store(id="bia-url"),
        html.Div(
            [card(None, graph("bia-top", height=540)), card(None, graph("bia-bottom", height=540))],
            className="grid-2",
        ),
        html.Div(
            [
                card(None, graph("bia-scatter", height=460)),
                card(None, graph("bia-users", height=460)),
            ],
            className="grid-2",
        ),
        page_id="bia-page",
    )


def draw(kind, step, steps, _version):
    """The four charts for a model's latest run and a minimum number of ratings per book (also
    the minimum itself, for the URL)."""
    settings = current_settings()
    given = steps if isinstance(steps, list) else []
    steps = [s for s in (as_int(v, lo=0) for v in given[: len(STEPS)]) if s is not None]
    step = as_int(step, lo=0, hi=len(steps) - 1)
    if not steps or step is None:
        # A slider position or step list no page sends: keep the charts as they are rather than
        # drawing the heaviest view (every book) for a forged request.
        raise PreventUpdate
    minimum = steps[step]
    kind = as_choice(kind, queries.BIAS_KINDS)
    if kind is None:
        message = figures.message_figure("Choose a model.")
        return message, message, message, message, no_update
    try:
        with queries.reading(settings.db_path) as con:
            run_id = queries.latest_runs(con, (kind,)).get(kind)
            if run_id is None:
                raise ShelfwiseError(f"No published {KIND_LABELS.get(kind, kind)} run.")
            qualified = queries.count_bias_books(con, run_id, minimum)
            top = queries.extreme_biases(
                con, run_id, minimum, EXTREMES, highest=True, qualified=qualified
            )
            bottom = queries.extreme_biases(
                con, run_id, minimum, EXTREMES, highest=False, qualified=qualified
            )
            points = queries.bias_points(con, run_id, minimum, settings.max_points)
            users = queries.user_bias_histogram(con, run_id)
    except Exception as exc:
        message = figures.message_figure(describe_failure(exc))
        return message, message, message, message, no_update
    run = f"{KIND_LABELS.get(kind, kind)} run #{run_id}"
    books = f"{run}; books with at least {minimum:,} ratings"
    extremes = (
        books
        if qualified >= 2 * EXTREMES
        else f"{books}: only {qualified:,}, split between the two lists"
    )
    return (
        figures.with_subtitle(figures.bias_bars(top, highest=True), extremes),
        figures.with_subtitle(figures.bias_bars(bottom, highest=False), extremes),
        figures.with_subtitle(figures.bias_scatter(points), books),
        figures.with_subtitle(figures.user_bias_histogram(users), run),
        minimum,
    )


def register_callbacks(app: dash.Dash) -> None:
    """Wire this page's callbacks to ``app`` (create_app calls it for every app it builds)."""
    app.callback(
        Output("bia-top", "figure"),
        Output("bia-bottom", "figure"),
        Output("bia-scatter", "figure"),
        Output("bia-users", "figure"),
        Output("bia-minimum", "data"),
        Input("bia-kind", "value"),
        Input("bia-min", "value"),
        Input("bia-steps", "data"),
        Input("app-data-version", "data"),
    )(guarded(draw))
    url_sync(
        app, "/biases", "bia-url", [("kind", "bia-kind", "value"), ("min", "bia-minimum", "data")]
    )
