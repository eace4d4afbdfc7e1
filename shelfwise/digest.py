"""The weekly digest: books near the centroid of a few random favourites, mailed and remembered."""

from __future__ import annotations

import base64
import copy
import html
import json
import logging
import math
import os
import smtplib
import socket
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np

from shelfwise.errors import ShelfwiseError
from shelfwise.pipeline import Book, TitleNotFound, recommend_for_books, resolve_title, run_for
from warehouse.db import scalar, table_exists, transaction
from warehouse.store import now as utc_now

log = logging.getLogger(__name__)

GOODREADS_BOOK_URL = "https://www.goodreads.com/book/show/{id}"

# Tag words of the "thriller or mystery" acceptance figure; matched as substrings of core.books.top_tags.
THRILLER_WORDS: tuple[str, ...] = (
    "thriller",
    "mystery",
    "mysteries",
    "suspense",
    "crime",
    "detective",
    "espionage",
    "spy",
)

# One row per (digest_id, rank): the books of every digest the SMTP server accepted.
HISTORY_DDL = """
create table if not exists models.digests (
    digest_id   bigint not null,
    sent_at     timestamp not null,
    recipient   varchar not null,
    run_id      bigint not null,
    kind        varchar not null,
    book_key    bigint not null,
    rank        integer not null,
    closest_key bigint,
    favourites  json not null,
    message_id  varchar,
    primary key (digest_id, rank)
)
"""

Security = Literal["starttls", "ssl", "none"]
DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "ssl": 465, "none": 25}


class DigestSendError(ShelfwiseError):
    """The SMTP server did not take the message; nothing was recorded as sent."""


# ----------------------------------------------------------------------------- favourites


def read_favourites(path: Path | str) -> list[str]:
    """Titles from a favourites file: a JSON list of strings, or one title per line.

    In the line format blank lines and lines starting with ``#`` are ignored.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ShelfwiseError(f"cannot read favourites file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ShelfwiseError(f"favourites file {path} is not UTF-8 text") from exc
    if text.lstrip().startswith(("[", "{")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ShelfwiseError(
                f"favourites file {path}: invalid JSON at line {exc.lineno}: {exc.msg}"
            ) from exc
        if not isinstance(data, list) or not all(isinstance(t, str) for t in data):
            raise ShelfwiseError(f"favourites file {path}: expected a JSON list of title strings")
        titles = [t.strip() for t in data if t.strip()]
    else:
        titles = [
            s for s in (line.strip() for line in text.splitlines()) if s and not s.startswith("#")
        ]
    if not titles:
        raise ShelfwiseError(f"favourites file {path} lists no titles")
    return titles


def week_seed(day: date) -> int:
    """The default seed of a day's digest: ISO year * 100 + ISO week (2025-W47 -> 202547).

    Every run in one ISO week picks the same favourites; the next week picks anew.
    """
    iso = day.isocalendar()
    return iso.year * 100 + iso.week


# ----------------------------------------------------------------------------- building


@dataclass(frozen=True)
class Recommendation:
    rank: int
    book: Book
    closest: Book  # the picked favourite whose factor vector is most cosine-similar to ``book``


@dataclass(frozen=True)
class Digest:
    """One week's recommendations and how they were made.

    Attributes
    ----------
    run_id, kind : the published model run whose book factors were used
    picked : the favourites drawn this time (their centroid is the query)
    favourites : every favourite that resolved to a book (all are excluded from the list)
    recommendations : best first
    unresolved : favourites that matched no book, or several, with their nearest candidates
    history_excluded : previously sent books kept out of this digest
    created_at : naive UTC
    """

    run_id: int
    kind: str
    picked: tuple[Book, ...]
    favourites: tuple[Book, ...]
    recommendations: tuple[Recommendation, ...]
    unresolved: tuple[TitleNotFound, ...] = ()
    history_excluded: tuple[int, ...] = ()
    created_at: datetime = field(default_factory=utc_now)

    @property
    def book_keys(self) -> list[int]:
        return [r.book.book_key for r in self.recommendations]

    @property
    def week(self) -> str:
        iso = self.created_at.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"


def ensure_history(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``models.digests`` if it does not exist (needs a writable connection)."""
    con.execute(HISTORY_DDL)


def recent_book_keys(con: duckdb.DuckDBPyConnection, *, since: datetime) -> list[int]:
    """Book keys of every digest sent at or after ``since`` (naive UTC); none before the first send."""
    if not table_exists(con, "models", "digests"):
        return []
    rows = con.execute(
        "select distinct book_key from models.digests where sent_at >= ? order by book_key", [since]
    ).fetchall()
    return [int(r[0]) for r in rows]


def build_digest(
    con: duckdb.DuckDBPyConnection,
    favourites: list[str],
    *,
    pick: int = 3,
    n: int = 8,
    kind: str = "mf",
    rng: np.random.Generator,
    history_weeks: int = 8,
    now: datetime | None = None,
) -> Digest:
    """Draw ``pick`` favourites at random and recommend the ``n`` books nearest their centroid.

    Titles resolve as in ``shelfwise similar``; one that matches no book or several is kept in
    ``Digest.unresolved`` and the others go on. Recommendations are never a favourite (any title of
    the list, not only the picked ones) nor a book sent in the last ``history_weeks`` weeks.

    Parameters
    ----------
    con : DuckDB connection (read-only is enough)
    favourites : titles, in the order of the favourites file
    pick : how many favourites form the centroid (all of them when fewer resolve)
    n : how many books to recommend
    kind : a factor model kind with a published run ("mf", "als" or "svd")
    rng : numpy Generator drawing the favourites; the only randomness
    history_weeks : exclude books of digests sent in the last ``history_weeks`` weeks (plus a day,
        so the last N weekly digests); 0 excludes none
    now : naive UTC "now" for the history window and ``created_at`` (default: the clock)

    Raises
    ------
    ShelfwiseError
        No published run of ``kind``, no favourite resolves, or every candidate is excluded.
    """
    if pick < 1 or n < 1:
        raise ShelfwiseError("pick and n must be at least 1")
    if history_weeks < 0:
        raise ShelfwiseError("history_weeks must be >= 0")
    now = now or utc_now()
    run_id = run_for(con, kind)

    resolved: list[tuple[str, Book]] = []
    unresolved: list[TitleNotFound] = []
    for title in favourites:
        try:
            book = resolve_title(con, run_id, title)
        except TitleNotFound as exc:
            unresolved.append(exc)
            continue
        if any(b.book_key == book.book_key for _, b in resolved):
            log.debug("favourite %r is %r again; counted once", title, book.title)
            continue
        resolved.append((title, book))
    if not resolved:
        reasons = "; ".join(str(e) for e in unresolved) or "the list is empty"
        raise ShelfwiseError(
            f"none of the {len(favourites)} favourite titles matches one book of the {kind} model: {reasons}"
        )

    # Sorted so the picked favourites read in the order of the file; which ones is the rng's call.
    chosen = sorted(
        int(i) for i in rng.choice(len(resolved), size=min(pick, len(resolved)), replace=False)
    )
    picked_titles = [resolved[i][0] for i in chosen]
    # A day of slack, so the digest sent exactly history_weeks ago (give or take a timer's jitter)
    # still counts: N weeks of history means the last N weekly digests.
    since = now - timedelta(weeks=history_weeks, days=1)
    history = recent_book_keys(con, since=since) if history_weeks else []
    favourite_keys = [b.book_key for _, b in resolved]
    picked, books, closest = recommend_for_books(
        con, picked_titles, kind=kind, n=n, exclude=sorted(set(favourite_keys) | set(history))
    )
    if not books:
        raise ShelfwiseError(
            f"no book left to recommend: the {kind} model's books are all favourites or were sent in the last {history_weeks} weeks"
        )
    return Digest(
        run_id=run_id,
        kind=kind,
        picked=tuple(picked),
        favourites=tuple(b for _, b in resolved),
        recommendations=tuple(
            Recommendation(i, b, picked[c]) for i, (b, c) in enumerate(zip(books, closest), 1)
        ),
        unresolved=tuple(unresolved),
        history_excluded=tuple(sorted(set(history) - set(favourite_keys))),
        created_at=now,
    )


def count_genre(
    con: duckdb.DuckDBPyConnection, book_keys: Iterable[int], words: Iterable[str] = THRILLER_WORDS
) -> int:
    """How many of ``book_keys`` carry a top tag containing one of ``words`` (case-insensitive).

    Substrings, so "thriller" also counts "legal-thriller" and "thrillers". Books without tags
    count as not matching.
    """
    keys = sorted({int(k) for k in book_keys})
    words = sorted({w.lower() for w in words if w})
    if not keys or not words:
        return 0
    return int(
        scalar(
            con,
            """with tags as (
                   select book_key, lower(unnest(top_tags)) as tag from core.books where list_contains($keys, book_key)
               ),
               words as (select unnest($words::varchar[]) as word)
               select count(distinct tags.book_key) from tags inner join words on contains(tags.tag, words.word)""",
            {"keys": keys, "words": words},
        )
    )


# ----------------------------------------------------------------------------- rendering


def goodreads_url(book: Book) -> str | None:
    return GOODREADS_BOOK_URL.format(id=book.goodreads_book_id) if book.goodreads_book_id else None


def _web_url(url: str | None) -> str | None:
    # Only http(s) links go into the HTML: a data file must not be able to inject javascript: URLs.
    return url if url and url.lower().startswith(("https://", "http://")) else None


def _title(book: Book) -> str:
    return book.title or f"book {book.book_key}"


def render_text(digest: Digest) -> str:
    """The plain-text part."""
    lines = [
        f"Shelfwise digest, week {digest.week}",
        "",
        f"{len(digest.recommendations)} books near the centre of {len(digest.picked)} of your favourites.",
        "",
        "This week's favourites:",
        *(f"  - {_title(b)}" + (f" ({b.authors})" if b.authors else "") for b in digest.picked),
        "",
    ]
    for r in digest.recommendations:
        lines.append(
            f"{r.rank}. {_title(r.book)}" + (f" by {r.book.authors}" if r.book.authors else "")
        )
        lines.append(f"   closest to: {_title(r.closest)}")
        if url := goodreads_url(r.book):
            lines.append(f"   Goodreads: {url}")
        if cover := _web_url(r.book.image_url):
            lines.append(f"   Cover: {cover}")
        lines.append("")
    if digest.unresolved:
        lines.append("Skipped favourites (fix their titles in the list):")
        lines += [f"  - {e}" for e in digest.unresolved]
        lines.append("")
    lines.append(f"Model: {digest.kind} run {digest.run_id}.")
    return "\n".join(lines) + "\n"


def render_html(digest: Digest) -> str:
    """The HTML part: inline styles only, every value escaped."""
    e = html.escape
    items = []
    for r in digest.recommendations:
        cover = _web_url(r.book.image_url)
        link = goodreads_url(r.book)
        title = f"<strong>{e(_title(r.book))}</strong>"
        if link:
            title = f'<a href="{e(link)}">{title}</a>'
        image = (
            f'<a href="{e(cover)}"><img src="{e(cover)}" alt="" width="60" '
            'style="float:left;margin:0 12px 8px 0;border:0"></a>'
            if cover
            else ""
        )
        links = " &middot; ".join(
            x
            for x in (
                f'<a href="{e(link)}">Goodreads</a>' if link else "",
                f'<a href="{e(cover)}">cover</a>' if cover else "",
            )
            if x
        )
        items.append(
            f'<li style="clear:both;margin:0 0 16px 0;min-height:90px">{image}{r.rank}. {title}<br>'
            f"{e(r.book.authors or '')}<br>"
            f"<small>closest to <em>{e(_title(r.closest))}</em>{' &middot; ' + links if links else ''}</small></li>"
        )
    listing = "\n".join(items)
    picked = "".join(f"<li>{e(_title(b))}</li>" for b in digest.picked)
    skipped = ""
    if digest.unresolved:
        skipped = (
            "<p><small>Skipped favourites (fix their titles in the list):</small></p><ul>"
            + "".join(f"<li><small>{e(str(x))}</small></li>" for x in digest.unresolved)
            + "</ul>"
        )
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f"<title>Shelfwise digest {e(digest.week)}</title></head>\n"
        '<body style="font-family:Georgia,serif;max-width:640px">\n'
        f'<h1 style="font-size:1.4em">Shelfwise digest, week {e(digest.week)}</h1>\n'
        f"<p>This week's favourites:</p><ul>{picked}</ul>\n"
        f'<ol style="list-style:none;padding:0">\n{listing}\n</ol>\n'
        f"{skipped}<p><small>Model: {e(digest.kind)} run {digest.run_id}.</small></p>\n"
        "</body></html>\n"
    )


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
    """Write ``digest.txt``, ``digest.html`` and ``digest.eml`` into ``directory`` (each atomically)."""
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


# ----------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send; the password never appears in repr, logs or error messages."""

    host: str
    port: int
    security: Security
    mail_from: str
    mail_to: tuple[str, ...]
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        """Read ``SHELFWISE_SMTP_HOST``, ``_PORT``, ``_SECURITY`` (starttls|ssl|none), ``_USER``,
        ``_PASSWORD``, ``_TIMEOUT``, ``SHELFWISE_MAIL_FROM`` and ``SHELFWISE_MAIL_TO`` (comma-separated).
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        missing = [
            v
            for v in ("SHELFWISE_SMTP_HOST", "SHELFWISE_MAIL_FROM", "SHELFWISE_MAIL_TO")
            if not get(v)
        ]
        if missing:
            raise ShelfwiseError(f"cannot send: set {', '.join(missing)} (see docs/digest.md)")
        security = (get("SHELFWISE_SMTP_SECURITY") or "starttls").lower()
        if security not in DEFAULT_PORTS:
            raise ShelfwiseError(
                f"SHELFWISE_SMTP_SECURITY must be starttls, ssl or none, not {security!r}"
            )
        port_text = get("SHELFWISE_SMTP_PORT")
        try:
            port = int(port_text) if port_text else DEFAULT_PORTS[security]
        except ValueError:
            raise ShelfwiseError(
                f"SHELFWISE_SMTP_PORT must be a port number, not {port_text!r}"
            ) from None
        if not 1 <= port <= 65535:
            raise ShelfwiseError(f"SHELFWISE_SMTP_PORT must be in 1..65535, not {port}")
        timeout_text = get("SHELFWISE_SMTP_TIMEOUT")
        try:
            timeout = float(timeout_text) if timeout_text else 30.0
        except ValueError:
            raise ShelfwiseError(
                f"SHELFWISE_SMTP_TIMEOUT must be seconds, not {timeout_text!r}"
            ) from None
        if not (math.isfinite(timeout) and timeout > 0):
            raise ShelfwiseError(
                f"SHELFWISE_SMTP_TIMEOUT must be a positive number of seconds, not {timeout_text!r}"
            )
        user = get("SHELFWISE_SMTP_USER")
        # Not stripped: a password may legitimately start or end with a space.
        password = env.get("SHELFWISE_SMTP_PASSWORD") or None
        if bool(user) != bool(password):
            raise ShelfwiseError(
                "set both SHELFWISE_SMTP_USER and SHELFWISE_SMTP_PASSWORD, or neither"
            )
        mail_from = get("SHELFWISE_MAIL_FROM")
        assert mail_from is not None
        if "@" not in mail_from:
            raise ShelfwiseError(f"SHELFWISE_MAIL_FROM is not an address: {mail_from!r}")
        mail_to = tuple(addr for _, addr in getaddresses([get("SHELFWISE_MAIL_TO") or ""]) if addr)
        bad = [a for a in mail_to if "@" not in a]
        if not mail_to or bad:
            raise ShelfwiseError(
                f"SHELFWISE_MAIL_TO must be comma-separated addresses; bad: {', '.join(bad) or '(none)'}"
            )
        return cls(
            host=get("SHELFWISE_SMTP_HOST") or "",
            port=port,
            security=security,  # type: ignore[arg-type]
            mail_from=mail_from,
            mail_to=mail_to,
            user=user,
            password=password,
            timeout=timeout,
        )

    def redact(self, text: str) -> str:
        """``text`` with the password, and the base64 forms AUTH sends it in, replaced by ***."""
        if not self.password:
            return text
        secrets = {self.password}
        for raw in (
            self.password,
            f"\0{self.user}\0{self.password}",
            f"{self.user}\0{self.user}\0{self.password}",
        ):
            secrets.add(base64.b64encode(raw.encode()).decode())
        for s in sorted(secrets, key=len, reverse=True):
            text = text.replace(s, "***")
        return text


@dataclass(frozen=True)
class SendResult:
    accepted: tuple[str, ...]
    refused: dict[str, str]
    message_id: str | None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "every recipient was refused: " + "; ".join(
            f"{addr} ({code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg})"
            for addr, (code, msg) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"login refused ({exc.smtp_code} {exc.smtp_error.decode(errors='replace')})"
    if isinstance(exc, smtplib.SMTPResponseException):
        error = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        return f"server answered {exc.smtp_code} {error}"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{exc} (check SHELFWISE_SMTP_SECURITY)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"unknown host ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    return f"{type(exc).__name__}: {exc}"


def send(message: EmailMessage, settings: SmtpSettings) -> SendResult:
    """Deliver ``message`` to ``settings.mail_to`` through the configured SMTP server.

    Returns once the server accepted the message for at least one recipient (refused ones are in
    the result). Raises DigestSendError, with one redacted line, when it accepted it for none.
    """
    message = copy.deepcopy(message)
    if "From" not in message:
        message["From"] = settings.mail_from
    if "To" not in message:
        message["To"] = ", ".join(settings.mail_to)
    where = f"{settings.host}:{settings.port}"
    log.info(
        "sending the digest to %d recipient(s) via %s (%s)",
        len(settings.mail_to),
        where,
        settings.security,
    )
    if (
        settings.security == "none"
        and settings.user
        and settings.host not in ("localhost", "127.0.0.1", "::1")
    ):
        log.warning("SHELFWISE_SMTP_SECURITY=none: the SMTP login crosses the network unencrypted")
    context = ssl.create_default_context()
    client: smtplib.SMTP | None = None
    try:
        if settings.security == "ssl":
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        if settings.security == "starttls":
            client.starttls(context=context)
        if settings.user and settings.password:
            client.login(settings.user, settings.password)
        refused = client.send_message(
            message, from_addr=settings.mail_from, to_addrs=list(settings.mail_to)
        )
    except (smtplib.SMTPException, OSError) as exc:
        # No exception chaining: the original could carry the server's echo of what we sent.
        raise DigestSendError(
            settings.redact(f"could not send the digest via {where}: {_describe(exc)}").replace(
                "\n", " "
            )
        ) from None
    finally:
        if client is not None:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    refused_text = {
        addr: f"{code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
        for addr, (code, msg) in refused.items()
    }
    for addr, why in refused_text.items():
        log.warning("the server refused recipient %s: %s", addr, settings.redact(why))
    accepted = tuple(a for a in settings.mail_to if a not in refused)
    return SendResult(accepted, refused_text, message["Message-ID"])


# ----------------------------------------------------------------------------- history


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
