"""The dashboard's app factory: ``create_app(settings)`` builds a Dash Pages app over one
warehouse."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import dash
from dash import Input, Output, State, dcc, html, no_update

from dashboards import guard, queries
from dashboards.components import fmt_when
from dashboards.figures import KIND_LABELS
from dashboards.settings import CONFIG_KEY, DashboardSettings, current_settings

__all__ = ["DashboardSettings", "create_app", "current_settings"]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def create_app(settings: DashboardSettings) -> dash.Dash:
    """A Dash app serving the pages in ``dashboards/pages`` over ``settings.db_path``, read-only.

    Settings reach the pages through the app's own Flask config (``current_settings()`` in a layout
    or callback), never a module global. Each page wires its callbacks to the app it is given
    (``register_callbacks(app)``) instead of dash's process-wide callback list, which the first app
    to serve a request would otherwise take for itself: two apps in one process stay independent.
    """
    app = dash.Dash(
        "dashboards",
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="Shelfwise",
        update_title=None,
        # Pages build their components on demand; callbacks of pages not on screen are expected.
        suppress_callback_exceptions=True,
        serve_locally=True,
    )
    app.server.config[CONFIG_KEY] = settings
    guard.install(app.server, settings)
    app.layout = shell(settings)
    _shell_callbacks(app, settings)
    for page in dash.page_registry.values():
        # Dash (re-)imported the page modules while building this app.
        register = getattr(sys.modules[page["module"]], "register_callbacks", None)
        if register is not None:
            register(app)
    return app


def _nav_pages() -> list[dict]:
    pages = [p for p in dash.page_registry.values() if not p["module"].endswith("not_found_404")]
    return sorted(pages, key=lambda p: (p.get("order") is None, p.get("order") or 0, p["name"]))


def shell(settings: DashboardSettings) -> html.Div:
    """What surrounds every page: the top nav, the data-version poll, the page container."""
    nav = [
        dcc.Link(
            p["name"],
            href=p["relative_path"],
            id=f"app-nav-{p['module'].rsplit('.', 1)[-1]}",
            className="nav-link",
        )
        for p in _nav_pages()
    ]
    return html.Div(
        [
            dcc.Location(id="app-url", refresh=False),
            dcc.Store(id="app-data-version"),
            dcc.Store(id="app-setup-reload"),
            dcc.Store(id="app-routed"),
            dcc.Interval(id="app-poll", interval=int(settings.poll_seconds * 1000)),
            html.Header(
                [
                    html.A(
                        [html.Span(className="brand-mark"), "Shelfwise"],
                        href="/",
                        className="brand",
                    ),
                    html.Nav(nav, className="nav"),
                    html.Div(id="app-status", className="app-status", title=str(settings.db_path)),
                ],
                className="app-header",
            ),
            html.Main(dash.page_container, className="app-main"),
        ],
        className="app",
    )


def _shell_callbacks(app: dash.Dash, settings: DashboardSettings) -> None:
    pages = _nav_pages()
    hrefs = [p["relative_path"] for p in pages]
    app.clientside_callback(
        f"""
        function(path) {{
            const hrefs = {json.dumps(hrefs)};
            return hrefs.map(h => (h === path || (h !== '/' && path && path.startsWith(h + '/')))
                ? 'nav-link active' : 'nav-link');
        }}
        """,
        [Output(f"app-nav-{p['module'].rsplit('.', 1)[-1]}", "className") for p in pages],
        Input("app-url", "pathname"),
    )

    # What the page router last rendered: assets/urlstate.js needs it to tell whether Back or
    # Forward will rebuild the page (this Location and the router's change together).
    app.clientside_callback(
        """
        function(pathname, search) {
            window.shelfwiseUrl.routed(pathname, search);
            return window.dash_clientside.no_update;
        }
        """,
        Output("app-routed", "data"),
        Input("app-url", "pathname"),
        Input("app-url", "search"),
    )

    # The setup page has no callbacks of its own to refresh: when a writer publishes a warehouse
    # while it is showing, reload so the router builds the real page. The first version seen is only
    # noted, so an empty warehouse never reloads in a loop.
    app.clientside_callback(
        """
        function(version) {
            if (window.shelfwiseSetupVersion === undefined) {
                window.shelfwiseSetupVersion = version;
            } else if (version !== window.shelfwiseSetupVersion
                       && document.getElementById('setup-page')) {
                window.location.reload();
            }
            window.shelfwiseSetupVersion = version;
            return window.dash_clientside.no_update;
        }
        """,
        Output("app-setup-reload", "data"),
        Input("app-data-version", "data"),
    )

    @app.callback(
        Output("app-data-version", "data"),
        Output("app-status", "children"),
        Input("app-poll", "n_intervals"),
        State("app-data-version", "data"),
    )
    def poll(n_intervals: int | None, current: str | None):
        # A stat per tick; the warehouse is opened only when a writer published something new.
        token = queries.data_version(settings.db_path)
        if n_intervals and token == current:
            return no_update, no_update
        return token, status_text(settings)


def status_text(settings: DashboardSettings) -> list:
    """The header's one line: the newest published run, or why there is none."""
    try:
        with queries.reading(settings.db_path) as con:
            latest = queries.header_summary(con)
    except queries.WarehouseUnavailable as exc:
        return [
            html.Span(className="dot dot-off"),
            "no warehouse" if exc.missing else "warehouse busy",
        ]
    except Exception:  # the header must never break the page
        log.exception("reading the header summary failed")
        return [html.Span(className="dot dot-off"), "warehouse unreadable"]
    if latest is None:
        return [html.Span(className="dot dot-off"), "no published model yet"]
    kind = KIND_LABELS.get(latest["kind"], latest["kind"])
    return [
        html.Span(className="dot dot-on"),
        f"latest run #{latest['run_id']} · {kind} · {fmt_when(latest['finished_at'])}",
    ]
