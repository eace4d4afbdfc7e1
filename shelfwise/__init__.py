"""Shelfwise: Goodreads rating dumps -> DuckDB warehouse -> models -> answers you can trust.

``shelfwise.open(db)`` is the public Python API (:mod:`shelfwise.serving`, docs/python.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shelfwise.serving import Warehouse, open

__all__ = ["Warehouse", "open"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `shelfwise --help` does not pay for numpy, polars and DuckDB.
    if name in __all__:
        from shelfwise import serving

        return getattr(serving, name)
    raise AttributeError(f"module 'shelfwise' has no attribute {name!r}")
