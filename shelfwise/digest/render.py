"""Render a digest as text, HTML (Jinja2 templates, autoescaped) and a MIME message; write it
out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from base.errors import ShelfwiseError

if TYPE_CHECKING:
    from shelfwise.digest.build import Digest
    from shelfwise.serving import Book

GOODREADS_BOOK_URL = "https://www.goodreads.com/book/show/{id}"


def goodreads_url(book: Book) -> str | None:
    return GOODREADS_BOOK_URL.format(id=book.goodreads_book_id) if book.goodreads_book_id else None


def web_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) link, else None: a data file must not inject javascript: URLs."""
    return url if url and url.lower().startswith(("https://", "http://")) else None


def title_of(book: Book) -> str:
    return book.title or f"book {book.book_key}"


@cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shelfwise.digest", "templates"),
        # Every value in the HTML part is escaped; the text part is plain text.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters.update(title_of=title_of, goodreads_url=goodreads_url, web_url=web_url)
    return env


def render_text(digest: Digest) -> str:
    """The plain-text part."""
    return _templates().get_template("digest.txt.j2").render(digest=digest)


def render_html(digest: Digest) -> str:
    """The HTML part: inline styles only, every value escaped."""
    return _templates().get_template("digest.html.j2").render(digest=digest)


def render(
    digest: Digest, *, sender: str | None = None, recipients: Sequence[str] = ()
) -> EmailMessage:
    """The digest as a multipart/alternative message: text/plain first, then text/html.

    ``send`` fills in From and To from its settings when they are not set here.
    """
    message = EmailMessage()
    message["Subject"] = (
        f"Shelfwise digest {digest.week}: {len(digest.recommendations)} books for you"
    )
    if sender:
        message["From"] = sender
    if recipients:
        message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(digest.created_at.replace(tzinfo=UTC))
    # Spam filters like a Message-ID in the sender's own domain.
    domain = parseaddr(sender)[1].rpartition("@")[2] if sender else ""
    message["Message-ID"] = make_msgid("shelfwise.digest", domain=domain or "shelfwise.invalid")
    message.set_content(render_text(digest))
    message.add_alternative(render_html(digest), subtype="html")
    return message


def write_message(message: EmailMessage, directory: Path | str) -> list[Path]:
    """Write ``digest.txt``, ``digest.html`` and ``digest.eml`` into ``directory`` (each
    atomically)."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ShelfwiseError(
            f"cannot write the digest to {directory}: {exc.strerror or exc}"
        ) from exc
    text = message.get_body(("plain",))
    page = message.get_body(("html",))
    outputs = {
        "digest.txt": text.get_content().encode("utf-8") if text else b"",
        "digest.html": page.get_content().encode("utf-8") if page else b"",
        "digest.eml": message.as_bytes(),
    }
    paths = []
    for name, data in outputs.items():
        target = directory / name
        tmp = target.with_name(f".{name}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as exc:
            raise ShelfwiseError(
                f"cannot write the digest to {target}: {exc.strerror or exc}"
            ) from exc
        paths.append(target)
    return paths
