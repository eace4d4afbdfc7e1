"""What was sent: models.digests, so a digest never repeats a recent week's books."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from base.errors import ShelfwiseError
from warehouse.catalog import read_model
from warehouse.db import scalar, table_exists, transaction
from warehouse.store import now as utc_now

if TYPE_CHECKING:
    from shelfwise.digest.build import Digest

log = logging.getLogger(__name__)


def ensure_history(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``models.digests`` if it does not exist (needs a writable connection).

    Every writable connection creates it already (sql/models/digests.sql); this is for a
    connection to a warehouse file older than that table.
    """
    con.execute(read_model("models/digests").sql)


def recent_book_keys(con: duckdb.DuckDBPyConnection, *, since: datetime) -> list[int]:
    """Book keys of every digest sent at or after ``since`` (naive UTC); none before the first
    send."""
    if not table_exists(con, "models", "digests"):
        return []
    rows = con.execute(
        "select distinct book_key from models.digests where sent_at >= ? order by book_key", [since]
    ).fetchall()
    return [int(r[0]) for r in rows]


def record(
    con: duckdb.DuckDBPyConnection,
    digest: Digest,
    recipient: str | Sequence[str],
    *,
    sent_at: datetime | None = None,
    message_id: str | None = None,
) -> int:
    """Remember that ``digest`` went to ``recipient``: one row per book, in one transaction.

    Call only after the SMTP server accepted the message. Returns the new digest_id.
    """
    recipient = recipient if isinstance(recipient, str) else ", ".join(recipient)
    if not recipient:
        raise ShelfwiseError("record: no recipient")
    ensure_history(con)
    favourites = json.dumps(
        [{"book_key": b.book_key, "title": b.title} for b in digest.picked], ensure_ascii=False
    )
    sent_at = sent_at or utc_now()
    with transaction(con):
        digest_id = int(scalar(con, "select coalesce(max(digest_id), 0) + 1 from models.digests"))
        con.executemany(
            "insert into models.digests values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    digest_id,
                    sent_at,
                    recipient,
                    digest.run_id,
                    digest.kind,
                    r.book.book_key,
                    r.rank,
                    r.closest.book_key,
                    favourites,
                    message_id,
                ]
                for r in digest.recommendations
            ],
        )
    log.info(
        "recorded digest %d: %d books to %s", digest_id, len(digest.recommendations), recipient
    )
    return digest_id
