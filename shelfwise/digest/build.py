"""Build a week's digest: favourites drawn at random, books near their centroid, none repeated."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np

from base.errors import ShelfwiseError
from shelfwise.digest.history import recent_book_keys
from shelfwise.serving import (
    Book,
    TitleNotFound,
    default_kind,
    recommend_for_books,
    recommend_for_reader,
    resolve_title,
    run_for,
)
from warehouse.db import scalar
from warehouse.store import now as utc_now

log = logging.getLogger(__name__)

# Tag words of the "thriller or mystery" acceptance figure; matched as substrings of
# core.books.top_tags.
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
    # Set for an imported reader's digest (their fold-in recommendations, not a centroid).
    reader: str | None = None

    @property
    def book_keys(self) -> list[int]:
        return [r.book.book_key for r in self.recommendations]

    @property
    def week(self) -> str:
        iso = self.created_at.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"


def build_digest(
    con: duckdb.DuckDBPyConnection,
    favourites: list[str],
    *,
    pick: int = 3,
    n: int = 8,
    kind: str | None = None,
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
    kind : a kind with book neighbours (base.registry.kinds(neighbours=True)) and a published run
        (default: the best neighbours model published, base.registry.PREFERRED)
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
    kind = kind or default_kind(con, "neighbours")
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
            f"none of the {len(favourites)} favourite titles matches one book of the {kind} model: "
            f"{reasons}"
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
            f"no book left to recommend: the {kind} model's books are all favourites "
            f"or were sent in the last {history_weeks} weeks"
        )
    return Digest(
        run_id=run_id,
        kind=kind,
        picked=tuple(picked),
        favourites=tuple(b for _, b in resolved),
        recommendations=tuple(
            Recommendation(i, b, picked[c])
            for i, (b, c) in enumerate(zip(books, closest, strict=True), 1)
        ),
        unresolved=tuple(unresolved),
        history_excluded=tuple(sorted(set(history) - set(favourite_keys))),
        created_at=now,
    )


def build_reader_digest(
    con: duckdb.DuckDBPyConnection,
    reader: str,
    *,
    n: int = 8,
    kind: str | None = None,
    history_weeks: int = 8,
    to_read: bool = False,
    now: datetime | None = None,
) -> Digest:
    """A week's digest for an imported reader: the model's recommendations with the reader folded
    in (shelfwise.serving.recommend_for_reader), never a book on their shelves nor one sent in the
    last ``history_weeks`` weeks. Each book's "closest" is the reader's book that contributed
    most to its score; "picked" are the reader's books behind this week's list."""
    if n < 1 or history_weeks < 0:
        raise ShelfwiseError("n must be at least 1 and history_weeks at least 0")
    now = now or utc_now()
    since = now - timedelta(weeks=history_weeks, days=1)
    history = set(recent_book_keys(con, since=since) if history_weeks else [])
    kind = kind or default_kind(con, "ranking")
    recs = recommend_for_reader(con, reader, kind=kind, n=n + len(history), to_read=to_read)
    kept = [r for r in recs if r.book.book_key not in history and r.because_books][:n]
    if not kept:
        raise ShelfwiseError(
            f"no book left to recommend for {reader}: every candidate is on their shelves or "
            f"was sent in the last {history_weeks} weeks"
        )
    picked = tuple({b.book_key: b for r in kept for b in r.because_books[:1]}.values())
    return Digest(
        run_id=run_for(con, kind),
        kind=kind,
        picked=picked,
        favourites=picked,
        recommendations=tuple(
            Recommendation(i, r.book, r.because_books[0]) for i, r in enumerate(kept, 1)
        ),
        history_excluded=tuple(sorted(history)),
        created_at=now,
        reader=reader,
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
                   select book_key, lower(unnest(top_tags)) as tag from core.books
                   where list_contains($keys, book_key)
               ),
               words as (select unnest($words::varchar[]) as word)
               select count(distinct tags.book_key)
               from tags inner join words on contains(tags.tag, words.word)""",
            {"keys": keys, "words": words},
        )
    )
