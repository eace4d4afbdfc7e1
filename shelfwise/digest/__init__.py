"""The weekly digest: books near the centroid of a few random favourites, mailed and remembered.

build (favourites -> Digest), render (text, HTML, MIME), send (SMTP), history (models.digests).
"""

from shelfwise.digest.build import (
    THRILLER_WORDS,
    Digest,
    Recommendation,
    build_digest,
    build_reader_digest,
    count_genre,
    read_favourites,
    week_seed,
)
from shelfwise.digest.history import ensure_history, recent_book_keys, record
from shelfwise.digest.render import render, render_html, render_text, write_message
from shelfwise.digest.send import DigestSendError, SendResult, SmtpSettings, send

__all__ = [
    "THRILLER_WORDS",
    "Digest",
    "DigestSendError",
    "Recommendation",
    "SendResult",
    "SmtpSettings",
    "build_digest",
    "build_reader_digest",
    "count_genre",
    "ensure_history",
    "read_favourites",
    "recent_book_keys",
    "record",
    "render",
    "render_html",
    "render_text",
    "send",
    "week_seed",
    "write_message",
]
