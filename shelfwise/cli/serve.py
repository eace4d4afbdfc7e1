"""Serve the read-only dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from shelfwise.cli.options import DB_OPTION
from shelfwise.cli.output import console, err_console


@click.command()
@click.option(
    "--host", default="127.0.0.1", help="Interface to bind (only this machine by default)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8050, help="Port.")
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Requests answered at once (waitress worker threads).",
)
@click.option(
    "--covers/--no-covers",
    default=True,
    show_default=True,
    help="Book covers from their image URLs; --no-covers: the browser requests no other host.",
)
@click.option(
    "--request-seconds",
    type=click.FloatRange(0.5, 600),
    default=10.0,
    show_default=True,
    help="Time budget of one request; a query still running then is interrupted.",
)
@click.option(
    "--debug", is_flag=True, help="Flask's development server with Dash dev tools (never shared)."
)
@DB_OPTION
def dashboard(
    host: str,
    port: int,
    threads: int,
    covers: bool,
    request_seconds: float,
    debug: bool,
    db_path: Path,
) -> None:
    """Serve the read-only dashboard in the browser (waitress; see docs/dashboard.md)."""
    from dashboards.app import DashboardSettings, create_app
    from dashboards.server import is_loopback, make_server

    settings = DashboardSettings(
        db_path=db_path, debug=debug, covers=covers, request_seconds=request_seconds
    )
    app = create_app(settings)
    if not is_loopback(host):
        err_console.print(
            f"[bold yellow]Warning:[/] listening on {host} makes the dashboard reachable from "
            "other machines, with no login. Put it behind a reverse proxy with authentication "
            "(docs/dashboard.md, 'Share it safely') unless every machine that can reach this "
            "port may read the warehouse.",
            highlight=False,
        )
    if debug:
        console.print(f"Shelfwise dashboard (debug): http://{host}:{port}/  (Ctrl-C stops it)")
        app.run(host=host, port=port, debug=True)
        return
    server = make_server(app, host, port, threads=threads)
    shown = f"[{host}]" if ":" in host else host
    console.print(
        f"Shelfwise dashboard: http://{shown}:{server.effective_port}/  "
        f"({threads} threads; Ctrl-C stops it)"
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
