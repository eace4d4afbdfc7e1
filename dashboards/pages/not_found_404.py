"""The page for an address the dashboard does not have."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboards.components import page

dash.register_page(__name__, path="/404", name="Not found", title="Shelfwise · Not found")


def layout(**_query: str) -> html.Div:
    """A short message and a way back."""
    return page(
        "Page not found",
        "There is no such page in this dashboard.",
        html.P(dcc.Link("Back to the overview", href="/", className="more-link")),
        page_id="notfound-page",
    )
