"""Serve the read-only dashboard."""

from __future__ import annotations

from pathlib import Path

import click

from shelfwise.cli.options import DB_OPTION
from shelfwise.cli.output import console


@click.command()
@click.option(
    "--host", default="127.0.0.1", help="Interface to bind (only this machine by default)."
)
@click.option("--port", type=click.IntRange(1, 65535), default=8050, help="Port.")
@click.option("--debug", is_flag=True, help="Dash debug mode (never on a shared host).")
@DB_OPTION
def dashboard(host: str, port: int, debug: bool, db_path: Path) -> None:
    """Serve the read-only dashboard in the browser."""
    from dashboards.app import DashboardSettings, create_app

    app = create_app(DashboardSettings(db_path=db_path, debug=debug))
    console.print(f"Shelfwise dashboard: http://{host}:{port}/  (Ctrl-C stops it)")
    app.run(host=host, port=port, debug=debug)
