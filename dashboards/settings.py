"""The dashboard's typed settings, and how a page finds the settings of the app serving it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import flask

from warehouse.readers import MAX_BYTES as EXPORT_MAX_BYTES

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
        Most points one embedding map sends to the browser; a larger run is sampled on the server,
        its most-rated books first, and the page says so (the chosen book, its neighbours, the
        selection and search matches are always drawn).
    poll_seconds : float
        How often the browser checks whether the warehouse snapshot changed (a stat, no query).
    neighbours : int
        Books listed per model on the Neighbours page and highlighted on the map.
    recommendations : int
        Books recommended for a user or for a set of favourites.
    search_limit : int
        Options a typeahead offers for what was typed.
    covers : bool
        Show book covers from ``image_url``; off, every cover is the title's initial and the
        browser requests nothing from another host (``shelfwise dashboard --no-covers``).
    request_seconds : float
        Time budget of one request: a warehouse query still running then is interrupted and the
        callback answers with a notice, so no request holds a server thread for long.
    max_body_bytes : int
        Largest callback request body accepted (HTTP 413 above it); other routes take no body.
    max_upload_bytes : int
        Largest Goodreads export the For you page takes (20 MB, the parser's own limit, at most).
        Only the callback that receives the file accepts a larger body, up to
        ``upload_body_bytes``; every other callback stays at ``max_body_bytes``.
    max_url_chars : int
        Longest URL path or query string accepted (HTTP 414 above it).
    selection_cap : int
        Most books a box or lasso selection keeps (the table and the CSV say when it was cut).
    """

    db_path: Path
    debug: bool = False
    max_points: int = 20_000
    poll_seconds: float = 10.0
    neighbours: int = 10
    recommendations: int = 10
    search_limit: int = 20
    covers: bool = True
    request_seconds: float = 10.0
    max_body_bytes: int = 1_000_000
    max_upload_bytes: int = EXPORT_MAX_BYTES
    max_url_chars: int = 4096
    selection_cap: int = 5_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "db_path", Path(self.db_path))
        if self.max_points < 100:
            raise ValueError(f"max_points must be at least 100, got {self.max_points}")
        if self.poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be positive, got {self.poll_seconds}")
        if self.request_seconds <= 0:
            raise ValueError(f"request_seconds must be positive, got {self.request_seconds}")
        if not 0 < self.max_upload_bytes <= EXPORT_MAX_BYTES:
            raise ValueError(
                f"max_upload_bytes must be 1 to {EXPORT_MAX_BYTES:,} (the export parser's limit), "
                f"got {self.max_upload_bytes}"
            )

    @property
    def upload_body_bytes(self) -> int:
        """Largest body of the upload callback's request: the file base64-encoded (4 bytes per 3,
        as the browser sends it) plus ``max_body_bytes`` for the rest of the request."""
        return 4 * -(-self.max_upload_bytes // 3) + self.max_body_bytes


def current_settings() -> DashboardSettings:
    """The settings of the app answering the current request (layouts and callbacks only).

    Settings live in each app's own Flask config, not in a module global, so two apps in one
    process (tests do this) each read their own warehouse.
    """
    return flask.current_app.config[CONFIG_KEY]


def request_deadline() -> float | None:
    """When the current request's time budget runs out (``time.monotonic()``), or None outside a
    request (tests calling queries directly, the CLI)."""
    if not flask.has_request_context():
        return None
    return flask.g.get("shelfwise_deadline")


def covers_enabled() -> bool:
    """Whether the app answering the current request shows cover images (True outside one)."""
    if not flask.has_app_context():
        return True
    settings = flask.current_app.config.get(CONFIG_KEY)
    return settings is None or settings.covers
