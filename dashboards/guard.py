"""What stands between the network and the pages: request limits, a time budget, and callback
inputs checked for type and size before any page code sees them.

Everything a browser sends can be forged: a component's value may arrive as a list, a dict, a
100,000-character string or an SQL fragment. Callbacks read their inputs through the ``as_*``
coercers here (a wrong type becomes None, so the page shows its "choose ..." state or a notice), and
every callback is wrapped by :func:`guarded`, so an input no coercer anticipated answers "no update"
(HTTP 204), never a 500 with a traceback.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import dash
import flask
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import HTTPException

from dashboards.settings import DashboardSettings

log = logging.getLogger(__name__)

# The Dash endpoint every server callback is posted to.
CALLBACK_PATH = "/_dash-update-component"
# Longest text a search box or typeahead uses; the rest is ignored (titles are shorter).
MAX_TEXT = 200
# Where install() leaves the app's RequestLimits (Flask's extensions dict).
LIMITS_KEY = "shelfwise_request_limits"


# ----------------------------------------------------------------------------- input coercion


def as_int(value: Any, *, lo: int | None = None, hi: int | None = None) -> int | None:
    """An integer from a JSON value (an int, or a string of digits), within [lo, hi]; else None.

    Booleans, floats with a fraction, lists and dicts are not integers here.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not (text.lstrip("-").isdigit() and len(text) <= 19):
            return None
        value = int(text)
    if not isinstance(value, int):
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return None
    return value


def as_key(value: Any) -> int | None:
    """A book, user or run key: a non-negative 63-bit integer, or None."""
    return as_int(value, lo=0, hi=2**63 - 1)


def as_text(value: Any, limit: int = MAX_TEXT) -> str:
    """Typed text: a string cut to ``limit`` characters ('' for anything else)."""
    return value[:limit] if isinstance(value, str) else ""


def as_choice(value: Any, allowed: Iterable[Any], default: Any = None) -> Any:
    """``value`` if it is one of ``allowed`` (compared by type too), else ``default``."""
    for option in allowed:
        if type(option) is type(value) and option == value:
            return value
    return default


def as_keys(value: Any, limit: int) -> list[int]:
    """A list of keys (at most ``limit``, duplicates dropped, order kept); non-keys are skipped."""
    if not isinstance(value, list):
        return []
    keys: dict[int, None] = {}
    for item in value:
        key = as_key(item)
        if key is not None:
            keys[key] = None
            if len(keys) >= limit:
                break
    return list(keys)


def as_flag(value: Any) -> bool:
    """A checkbox: true only for True or a non-empty list (dcc.Checklist's value)."""
    return value is True or (isinstance(value, list) and bool(value))


# ----------------------------------------------------------------------------- callbacks


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a callback; an exception it did not handle answers "no update" (HTTP 204), logged.

    Callbacks handle the failures they expect (a busy warehouse, a book that is gone) with a
    notice. This is the last line for the ones nobody expected, typically a forged input of a shape
    no coercer anticipated: the page keeps what it shows instead of receiving a 500.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PreventUpdate:
            raise
        except Exception:
            log.warning("callback %s rejected its inputs", func.__name__, exc_info=True)
            raise PreventUpdate from None

    return wrapper


# ----------------------------------------------------------------------------- requests


class RequestLimits:
    """WSGI middleware: refuse oversized URLs and bodies before Flask or Dash parse them.

    URL paths and query strings longer than ``max_url_chars`` get 414; a callback POST longer than
    ``max_body_bytes`` gets 413, and so does any body sent to another route (none takes one). The
    one exception is a callback that receives a file (:func:`accept_upload`): a body up to
    ``upload_body_bytes`` is read and let through only when its Dash ``output`` is that
    callback's. The production server (waitress) caps headers and bodies again at the socket.
    """

    def __init__(self, app: Callable, settings: DashboardSettings) -> None:
        self.app = app
        self.settings = settings
        # Dash output strings ("id.prop") of the callbacks that receive an uploaded file.
        self.upload_outputs: set[str] = set()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        limit = self.settings.max_url_chars
        if len(path) > limit or len(query) > limit:
            return _refuse(start_response, "414 URI Too Long", f"URL longer than {limit:,} chars")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _refuse(start_response, "400 Bad Request", "bad Content-Length")
        allowed = self.settings.max_body_bytes if path.endswith(CALLBACK_PATH) else 0
        if length > allowed:
            if not (allowed and self.upload_outputs and length <= self.settings.upload_body_bytes):
                return _refuse(
                    start_response, "413 Content Too Large", f"body over {allowed:,} bytes"
                )
            # Which callback a body is for is inside it: read it (at most upload_body_bytes, in
            # memory) and hand the same bytes on only if it is for an upload callback.
            body = environ["wsgi.input"].read(length)
            if _callback_output(body) not in self.upload_outputs:
                return _refuse(
                    start_response, "413 Content Too Large", f"body over {allowed:,} bytes"
                )
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)


def _callback_output(body: bytes) -> str | None:
    """The ``output`` of a Dash callback request (parsed as Dash will parse it), or None."""
    try:
        payload = json.loads(body)
    except ValueError:  # also bytes that are not UTF-8
        return None
    output = payload.get("output") if isinstance(payload, dict) else None
    return output if isinstance(output, str) else None


def accept_upload(app: dash.Dash, output: str) -> None:
    """Let the callback whose Dash output is ``output`` (one "id.prop") receive a body up to
    ``upload_body_bytes``: an uploaded file arrives base64-encoded inside it. Every other callback
    keeps the ``max_body_bytes`` cap."""
    app.server.extensions[LIMITS_KEY].upload_outputs.add(output)


def _refuse(start_response: Callable, status: str, reason: str) -> list[bytes]:
    body = f"{status.split(' ', 1)[1]}: {reason}\n".encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def install(server: flask.Flask, settings: DashboardSettings) -> None:
    """Request limits, the per-request time budget and a last-resort handler on a Dash app's
    Flask server."""
    limits = RequestLimits(server.wsgi_app, settings)
    server.wsgi_app = limits  # type: ignore[method-assign]
    server.extensions[LIMITS_KEY] = limits

    @server.before_request
    def start_budget() -> None:
        flask.g.shelfwise_deadline = time.monotonic() + settings.request_seconds

    @server.errorhandler(Exception)
    def unexpected(exc: Exception):
        # HTTP errors (404, 405, ...) keep their status; anything else raised while answering a
        # callback (Dash's own page router given a list for a path, say) is "no update".
        if isinstance(exc, HTTPException):
            return exc
        if flask.request.path.endswith(CALLBACK_PATH):
            # The message may quote the hostile value (Dash's router quotes a 100,000-character
            # path): log its start and the exception type, with the traceback only at debug level.
            log.warning("callback request rejected: %s: %.200s", type(exc).__name__, exc)
            log.debug("callback request rejected", exc_info=exc)
            return "", 204
        log.error("request failed", exc_info=exc)
        return "Internal error (the server log has the details).\n", 500
