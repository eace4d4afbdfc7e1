"""Serve a dashboard app with waitress, a production WSGI server (not Flask's development one)."""

from __future__ import annotations

import ipaddress
import logging

import dash
from waitress.server import create_server

from dashboards.settings import current_settings

log = logging.getLogger(__name__)

# waitress' own caps, enforced at the socket before the app sees a byte.
MAX_HEADER_BYTES = 64 * 1024
CHANNEL_TIMEOUT = 30  # seconds a connection may sit idle (a slow client cannot hold a thread)
CONNECTION_LIMIT = 200
# Responses up to this size stay in memory (waitress spools larger ones to a temporary file by
# default from 1 MB: an embedding map is 1-3 MB).
OUTBUF_OVERFLOW = 32 * 1024 * 1024


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def make_server(app: dash.Dash, host: str = "127.0.0.1", port: int = 0, *, threads: int = 8):
    """A waitress server for ``app``, bound but not yet serving: ``.run()`` serves until
    interrupted, ``.close()`` stops; ``.effective_port`` is the port (0 picks a free one).

    Bodies are capped by waitress too, at the largest the app takes (``upload_body_bytes``, the
    upload callback's; the app holds every other request to ``max_body_bytes``) and kept in memory
    up to that size, so an uploaded export never touches the disk; headers at 64 KB; idle
    connections close after 30 s; ``threads`` requests are answered at once.
    """
    with app.server.app_context():
        settings = current_settings()
    return create_server(
        app.server,
        host=host,
        port=port,
        threads=threads,
        max_request_body_size=settings.upload_body_bytes,
        max_request_header_size=MAX_HEADER_BYTES,
        channel_timeout=CHANNEL_TIMEOUT,
        connection_limit=CONNECTION_LIMIT,
        outbuf_overflow=OUTBUF_OVERFLOW,
        inbuf_overflow=settings.upload_body_bytes,
        ident="shelfwise",
        clear_untrusted_proxy_headers=True,
    )
