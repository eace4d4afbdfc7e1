"""Models: every run's test metrics with 95% bootstrap intervals, as charts and a table."""

from __future__ import annotations

import dash
import polars as pl
from dash import Input, Output, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import figures, queries
from dashboards.components import (
    card,
    controls,
    describe_failure,
    fmt_when,
    graph,
    notice,
    page,
    query_value,
    setup_page,
    table,
    url_sync,
)
from dashboards.figures import KIND_LABELS
from dashboards.guard import as_choice, guarded
from dashboards.settings import current_settings

dash.register_page(__name__, path="/models", name="Models", title="Shelfwise · Models", order=5)


# Table columns: (metric, k or None, header).
COLUMNS = (
    ("rmse", None, "RMSE"),
    ("mae", None, "MAE"),
    ("precision", 10, "P@10"),
    ("recall", 10, "R@10"),
    ("ndcg", 10, "NDCG@10"),
    ("map", 10, "MAP@10"),
    ("coverage", 10, "Coverage"),
    ("to_read_auc", None, "To-read AUC"),
)


SCOPES = ("latest", "all")


def layout(scope: str | None = None, **_query: str) -> html.Div:
    """The scope switch (``?scope=latest|all``), the metric panels and the table (filled by
    draw)."""
    settings = current_settings()
    status = queries.status_of(settings.db_path)
    if not status.ready:
        return setup_page(status, settings.db_path)
    return page(
        "Models",
        "How well each run predicts held-out ratings (RMSE, MAE: lower is better) "
        "and ranks the held-out books a user liked (precision, recall, NDCG at 10: "
        "higher is better). Error bars are 95% bootstrap intervals over users.",
        controls(
            (
                "Runs",
                dcc.RadioItems(
                    id="mdl-scope",
                    options=[
                        {"label": "Latest of each kind", "value": "latest"},
                        {"label": "All stored runs", "value": "all"},
                    ],
                    value=as_choice(query_value(scope), SCOPES, "all"),
                    inline=True,
                    className="radio",
                ),
            ),
        ),
        card(None, graph("mdl-chart", height=740)),
        card("All metrics (test split)", html.Div(id="mdl-table"), class_name="scroll-x"),
        dcc.Store(id="mdl-url"),
        page_id="mdl-page",
    )


def draw(scope, _version):
    """Charts and table of the stored test metrics, of every run or of the latest per kind."""
    scope = as_choice(scope, SCOPES)
    if scope is None:  # no page sends another value: keep what is shown
        raise PreventUpdate
    try:
        with queries.reading(current_settings().db_path) as con:
            found = queries.metrics(con)
    except Exception as exc:
        message = describe_failure(exc)
        return figures.message_figure(message), notice(message, "warn")
    found = found.filter(pl.col("split") == "test")
    if scope == "latest":
        found = found.filter(pl.col("latest"))
    if found.is_empty():
        message = "No metrics yet: run `shelfwise evaluate` to score the published models."
        return figures.message_figure(message, "Test-split metrics by run"), notice(message)
    return figures.metrics_figure(found), _table(found)


def _cell(row: dict | None) -> html.Span | str:
    if row is None:
        return ""
    value, lo, hi = row["value"], row["ci_low"], row["ci_high"]
    interval = "" if lo is None or hi is None or lo == hi else f"[{lo:.4f}, {hi:.4f}]"
    return html.Span(
        [
            html.Span(f"{value:.4f}", className="metric-value"),
            html.Span(interval, className="metric-ci"),
        ]
    )


def _table(found: pl.DataFrame) -> html.Table:
    runs = found.select("run_id", "kind", "finished_at", "latest").unique().sort(["kind", "run_id"])
    by_key = {(r["run_id"], r["metric"], r["k"]): r for r in found.iter_rows(named=True)}
    records = []
    for run in runs.iter_rows(named=True):
        record = {
            "_run_id": run["run_id"],
            "_class": "row-latest" if run["latest"] else None,
            "run": f"#{run['run_id']}" + (" (latest)" if run["latest"] else ""),
            "kind": KIND_LABELS.get(run["kind"], run["kind"]),
            "finished": fmt_when(run["finished_at"]),
        }
        for metric, k, header in COLUMNS:
            record[header] = _cell(by_key.get((run["run_id"], metric, k)))
        records.append(record)
    headers = [h for _, _, h in COLUMNS]
    return table(
        [("run", "Run"), ("kind", "Kind"), ("finished", "Fitted"), *[(h, h) for h in headers]],
        records,
        numeric=headers,
        table_id="mdl-metrics-table",
    )


def register_callbacks(app: dash.Dash) -> None:
    """Wire this page's callbacks to ``app`` (create_app calls it for every app it builds)."""
    app.callback(
        Output("mdl-chart", "figure"),
        Output("mdl-table", "children"),
        Input("mdl-scope", "value"),
        Input("app-data-version", "data"),
    )(guarded(draw))
    url_sync(app, "/models", "mdl-url", [("scope", "mdl-scope", "value")])
