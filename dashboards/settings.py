"""The dashboard's typed settings, and how a page finds the settings of the app serving it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import flask

# Key under which create_app stores the settings in its own Flask config.
CONFIG_KEY = "SHELFWISE_DASHBOARD"


@dataclass(frozen=True)
class DashboardSettings:
    """What one dashboard app serves and how.

    Attributes
    ----------
    db_path : Path
        The warehouse file; the dashboard reads its snapshot ``<db>.read`` (see warehouse.db).
    debug : bool
        Dash debug mode (dev tools, reloader), off unless asked for; ``shelfwise dashboard --debug``
        passes it to ``app.run``.
    max_points : int
        Most points one embedding map sends to the browser; larger runs are sampled on the server
        (the searched book and its neighbours are always drawn).
    poll_seconds : float
        How often the browser checks whether the warehouse snapshot changed (a stat, no query).
    neighbours : int
        Books listed per model on the Neighbours page and highlighted on the map.
    recommendations : int
        Books recommended for a user or for a set of favourites.
    search_limit : int
        Options a typeahead offers for what was typed.
    """

    db_path: Path
    debug: bool = False
    max_points: int = 50_000
    poll_seconds: float = 10.0
    neighbours: int = 10
    recommendations: int = 10
    search_limit: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "db_path", Path(self.db_path))
        if self.max_points < 100:
            raise ValueError(f"max_points must be at least 100, got {self.max_points}")
        if self.poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be positive, got {self.poll_seconds}")


def current_settings() -> DashboardSettings:
    """The settings of the app answering the current request (layouts and callbacks only).

    Settings live in each app's own Flask config, not in a module global, so two apps in one
    process (tests do this) each read their own warehouse.
    """
    return flask.current_app.config[CONFIG_KEY]
