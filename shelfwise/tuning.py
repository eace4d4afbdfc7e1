"""Hyper-parameter search on a validation split carved from the training ratings only."""

from __future__ import annotations

import json
import logging
from typing import Any

import duckdb

from shelfwise.params import make_params
from warehouse.db import table_exists

log = logging.getLogger(__name__)


def tuned_params(con: duckdb.DuckDBPyConnection, kind: str) -> dict[str, Any]:
    """The latest tuned parameters of ``kind`` for the current source, or {} if never tuned."""
    if not table_exists(con, "models", "tuned"):
        return {}
    rows = con.execute(
        "select params from models.tuned where kind = ? order by tuned_at desc limit 1", [kind]
    ).fetchall()
    return json.loads(rows[0][0]) if rows else {}


def params_for(con: duckdb.DuckDBPyConnection, kind: str, overrides: dict[str, Any] | None = None) -> Any:
    """Defaults, then tuned values, then explicit overrides: what ``fit`` and ``refresh`` use."""
    return make_params(kind, {**tuned_params(con, kind), **(overrides or {})})
