"""Every read the dashboard makes: parameterised SQL over short-lived read-only connections.

Pages never hold a connection: a callback opens one with ``reading(db_path)``, calls the functions
here, and closes it. Each connection sees one snapshot of the warehouse, so everything a callback
reads is consistent even while ``shelfwise refresh`` replaces the snapshot. Values are always bound
parameters; the only identifiers formatted into SQL come from the allow-lists in this module.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

from base.errors import ShelfwiseError
from base.registry import fittable, kinds, preferred
from dashboards.settings import request_deadline
from warehouse.db import open_for_reading, snapshot_path, table_exists

log = logging.getLogger(__name__)

# Kinds whose book vectors the maps, neighbours and recommendations use, and kinds with learned
# rating biases (both from the registry).
MAP_KINDS: tuple[str, ...] = kinds(book_vectors=True)
# Kinds with per-book neighbours (vectors or item-item weights), and every kind that recommends.
NEIGHBOUR_KINDS: tuple[str, ...] = kinds(neighbours=True)
RECOMMEND_KINDS: tuple[str, ...] = fittable()
BIAS_KINDS: tuple[str, ...] = kinds(learned_biases=True)

# Colour options of the embedding map -> SQL expression over the aliases of projection_points().
COLOUR_COLUMNS: dict[str, str] = {
    "tag": "b.top_tag",
    "year": "b.publication_year",
    "rating": "b.average_rating",
    "bias": "bb.bias",
    "popularity": "mb.n_ratings",
}


class OverBudget(ShelfwiseError):
    """A request ran out of its time budget (``DashboardSettings.request_seconds``)."""


class WarehouseUnavailable(ShelfwiseError):
    """The warehouse cannot be read right now; ``missing`` when there is no file at all."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


# ----------------------------------------------------------------------------- connections


def data_version(db_path: Path) -> str | None:
    """A token that changes whenever a writer publishes: the snapshot's name, mtime and size.

    A stat, not a query, so the browser can poll it cheaply. None when there is no warehouse.
    """
    for path in (snapshot_path(db_path), Path(db_path)):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        return f"{path.name}:{st.st_mtime_ns}:{st.st_size}"
    return None


@contextmanager
def reading(
    db_path: Path, *, attempts: int = 5, pause: float = 0.05
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse snapshot, closed when the block ends.

    Opening is retried briefly (``pause * attempt`` seconds between tries, ~0.75 s in all): the
    file can be locked for a moment when there is no snapshot yet and a writer holds the warehouse.

    Inside a request, a query still running when the request's time budget ends is interrupted
    (``con.interrupt()`` from a timer) and raises :class:`OverBudget`.
    """
    deadline = request_deadline()
    if deadline is not None and deadline <= time.monotonic():
        raise OverBudget("this request ran out of time before it could read the warehouse")
    if data_version(db_path) is None:
        raise WarehouseUnavailable(f"no warehouse at {db_path}", missing=True)
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            con = open_for_reading(db_path)
            break
        except (ShelfwiseError, duckdb.Error) as exc:
            last = exc
            log.debug("opening %s failed (attempt %d): %s", db_path, attempt, exc)
            time.sleep(pause * attempt)
    else:
        missing = data_version(db_path) is None
        raise WarehouseUnavailable(
            f"cannot read the warehouse at {db_path}: {last}", missing=missing
        ) from last
    timer = None
    if deadline is not None:
        timer = threading.Timer(max(deadline - time.monotonic(), 0.0), con.interrupt)
        timer.daemon = True
        timer.start()
    try:
        yield con
    except duckdb.InterruptException as exc:
        raise OverBudget(
            "this took longer than the server allows for one request; try a narrower question"
        ) from exc
    finally:
        if timer is not None:
            timer.cancel()
        con.close()


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> pl.DataFrame:
    """A query's result as a polars frame (fully consumed)."""
    return con.sql(sql, params=params or {}).pl()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict | None = None) -> list[tuple]:
    """A query's rows as tuples (fully consumed)."""
    return con.execute(sql, params or {}).fetchall()


# ----------------------------------------------------------------------------- status


@dataclass(frozen=True)
class WarehouseStatus:
    """How far the warehouse has been built: what the setup page ticks off."""

    exists: bool
    loaded_files: int = 0
    transformed: bool = False
    published: tuple[str, ...] = ()
    evaluated: bool = False

    @property
    def ready(self) -> bool:
        """Enough to show the pages: a built matrix and at least one published model."""
        return self.transformed and bool(self.published)

    @property
    def map_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in MAP_KINDS if k in self.published)

    @property
    def neighbour_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in NEIGHBOUR_KINDS if k in self.published)

    @property
    def recommend_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in RECOMMEND_KINDS if k in self.published)

    def default_among(self, offered: tuple[str, ...], task: str = "ranking") -> str:
        """The best measured kind for ``task`` among ``offered`` (base.registry.PREFERRED), else
        the first offered."""
        return preferred(task, offered) or offered[0]

    @property
    def default_kind(self) -> str:
        """The model a map page opens on: the best published neighbours model with a map."""
        return self.default_among(self.map_kinds, "neighbours")

    @property
    def bias_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in BIAS_KINDS if k in self.published)


def warehouse_status(con: duckdb.DuckDBPyConnection) -> WarehouseStatus:
    """What the warehouse holds; never raises for a half-built or foreign file."""

    def has(schema: str, table: str) -> bool:
        return table_exists(con, schema, table)

    loaded = rows(con, "select count(*) from raw.load_log")[0][0] if has("raw", "load_log") else 0
    transformed = all(
        has(s, t) for s, t in (("core", "books"), ("core", "ratings"), ("matrix", "ratings"))
    )
    published: tuple[str, ...] = ()
    evaluated = False
    if has("models", "runs") and has("main", "latest_runs"):
        published = tuple(
            r[0] for r in rows(con, "select kind from main.latest_runs order by kind")
        )
        evaluated = (
            rows(con, "select count(*) from models.metrics")[0][0] > 0
            if has("models", "metrics")
            else False
        )
    return WarehouseStatus(True, int(loaded), transformed, published, evaluated)


def status_of(db_path: Path) -> WarehouseStatus:
    """The status, or a not-existing status when the file is missing or unreadable."""
    try:
        with reading(db_path) as con:
            return warehouse_status(con)
    except WarehouseUnavailable:
        return WarehouseStatus(False)


def header_summary(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The newest published run (for the header), or None (also for a warehouse with no models
    yet)."""
    if not table_exists(con, "main", "latest_runs"):
        return None
    found = rows(
        con,
        "select run_id, kind, finished_at from main.latest_runs order by run_id desc limit 1",
    )
    if not found:
        return None
    run_id, kind, finished = found[0]
    return {"run_id": int(run_id), "kind": kind, "finished_at": finished}


# ----------------------------------------------------------------------------- overview


def source_summary(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per loaded source: raw files of its latest loads, rejected rows, books, last load.

    Users and ratings per source come from activity() (core.user_activity).
    """
    return frame(
        con,
        """
        with latest_loads as (
            select * from raw.load_log
            qualify row_number() over (partition by source, raw_table order by load_id desc) = 1
        ),
        loads as (
            select source, count(*) as files, sum(rows_rejected) as rejected,
                max(loaded_at) as loaded_at
            from latest_loads group by source
        ),
        books as (select source, count(*) as books from core.books group by source)
        select l.source, l.files, coalesce(b.books, 0) as books, l.rejected, l.loaded_at
        from loads as l
        left join books as b on b.source = l.source
        order by l.source
        """,
    )


def load_files(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The latest load of each raw table."""
    return frame(
        con,
        """
        select source, raw_table, file, size, rows_read, rows_rejected, loaded_at
        from raw.load_log
        qualify row_number() over (partition by source, raw_table order by load_id desc) = 1
        order by source, raw_table
        """,
    )


def reject_reasons(con: duckdb.DuckDBPyConnection, limit: int = 5) -> pl.DataFrame:
    """The most frequent reasons rows were rejected at load: reason, n."""
    return frame(
        con,
        "select reason, count(*) as n from raw.rejects group by reason "
        "order by n desc, reason limit $limit",
        {"limit": limit},
    )


def activity_built(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the warehouse has core.user_activity and core.book_activity.

    The transform builds them; a warehouse transformed before they existed lacks them until the next
    ``shelfwise transform``, and the Overview says so instead of scanning core.ratings.
    """
    return table_exists(con, "core", "user_activity") and table_exists(con, "core", "book_activity")


def rating_distribution(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Ratings per star value and source (star values no rating has are left out).

    Summed from core.book_activity (one row per book), not counted in core.ratings (one per rating).
    Columns: source, rating, n.
    """
    return frame(
        con,
        """
        with per_source as (
            select source,
                sum(ratings_1) as "1", sum(ratings_2) as "2", sum(ratings_3) as "3",
                sum(ratings_4) as "4", sum(ratings_5) as "5"
            from core.book_activity
            group by source
        ),
        per_star as (
            unpivot per_source on "1", "2", "3", "4", "5" into name rating value n
        )
        select source, cast(rating as tinyint) as rating, cast(n as bigint) as n
        from per_star
        where n > 0
        order by source, rating
        """,
    )


def latest_transform(con: duckdb.DuckDBPyConnection) -> dict | None:
    """Params of the latest matrix build and its sizes (from the transform log), or None before
    one."""
    found = rows(
        con,
        """select transform_id, source, params, max(finished_at) as finished_at,
               max(rows) filter (where model = 'matrix.users') as users,
               max(rows) filter (where model = 'matrix.books') as books,
               max(rows) filter (where model = 'matrix.ratings') as ratings
           from matrix.transform_log
           group by transform_id, source, params
           order by transform_id desc limit 1""",
    )
    if not found:
        return None
    transform_id, source, params, finished, users, books, ratings = found[0]
    return {
        "transform_id": int(transform_id),
        "source": source,
        "params": json.loads(params),
        "finished_at": finished,
        "users": int(users or 0),
        "books": int(books or 0),
        "ratings": int(ratings or 0),
    }


def activity(con: duckdb.DuckDBPyConnection, per: str) -> pl.DataFrame:
    """How many users (``per='user'``) or books (``per='book'``) of each source have exactly n
    ratings.

    Read from core.user_activity (core.book_activity), one row per user (book), so the Overview
    never scans core.ratings. Columns: source, n (ratings; 0 = only unrated interactions), count,
    interactions (rated or not). Summing count gives the users (books) of a source, summing n *
    count its ratings.
    """
    table = {"user": "core.user_activity", "book": "core.book_activity"}[per]  # allow-list
    return frame(
        con,
        f"""
        select source, n_ratings as n, count(*) as count,
            cast(sum(n_interactions) as bigint) as interactions
        from {table}
        group by source, n_ratings
        order by source, n
        """,
    )


def runs(con: duckdb.DuckDBPyConnection, limit: int = 100) -> pl.DataFrame:
    """Every recorded run, newest first, with whether it is the latest published of its kind."""
    return frame(
        con,
        """
        with latest as (select kind, run_id from main.latest_runs)
        select r.run_id, r.kind, r.source, r.params, r.started_at, r.finished_at, r.seconds,
            r.status, r.published, (l.run_id is not null) as latest
        from models.runs as r
        left join latest as l on l.run_id = r.run_id
        order by r.run_id desc
        limit $limit
        """,
        {"limit": limit},
    )


# ----------------------------------------------------------------------------- runs and books


def published_runs(con: duckdb.DuckDBPyConnection, kind: str) -> pl.DataFrame:
    """Published runs of a kind, newest first: run_id, finished_at, seconds."""
    return frame(
        con,
        """select run_id, finished_at, seconds from models.runs
           where published and kind = $kind order by run_id desc""",
        {"kind": kind},
    )


def latest_runs(con: duckdb.DuckDBPyConnection, kinds: tuple[str, ...]) -> dict[str, int]:
    """The latest published run id of each of ``kinds`` that has one."""
    found = rows(
        con,
        "select kind, run_id from main.latest_runs where list_contains($kinds, kind)",
        {"kinds": list(kinds)},
    )
    by_kind = {k: int(r) for k, r in found}
    return {k: by_kind[k] for k in kinds if k in by_kind}


def run_kind(con: duckdb.DuckDBPyConnection, run_id: int) -> str | None:
    """The kind of a published run, or None when it is gone (retention) or not published."""
    found = rows(
        con, "select kind from models.runs where run_id = $run and published", {"run": run_id}
    )
    return found[0][0] if found else None


def projection_methods(con: duckdb.DuckDBPyConnection, run_id: int) -> list[str]:
    """The 2-D maps the run stored ('pca', 'tsne')."""
    found = rows(
        con,
        "select distinct method from models.projections where run_id = $run order by method",
        {"run": run_id},
    )
    return [r[0] for r in found]


def projection_points(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    method: str,
    colour: str,
    max_points: int,
    *,
    keys: list[int] | None = None,
) -> tuple[pl.DataFrame, int]:
    """The run's 2-D map of books, at most ``max_points`` of them, and how many it has in all.

    A larger map is sampled by popularity: the books with the most ratings in the matrix, ties by
    book index, so the sample is deterministic and the same in every projection of the run.
    ``keys`` restricts the map to those books (the isolate view). Columns: book_key, x, y, title,
    authors, colour.
    """
    expr = COLOUR_COLUMNS[colour]  # allow-list
    params: dict = {"run": run_id, "method": method, "max_points": max_points}
    only = ""
    if keys is not None:
        only = "and list_contains($keys, rb.book_key)"
        params["keys"] = [int(k) for k in keys]
    total = rows(
        con,
        f"""select count(*) from models.projections as p
            inner join models.run_books as rb on rb.run_id = p.run_id and rb.book_idx = p.book_idx
            where p.run_id = $run and p.method = $method {only}""",
        {k: v for k, v in params.items() if k != "max_points"},
    )[0][0]
    points = frame(
        con,
        f"""
        with points as (
            select p.book_idx, p.x, p.y, rb.book_key, mb.n_ratings
            from models.projections as p
            inner join models.run_books as rb on rb.run_id = p.run_id and rb.book_idx = p.book_idx
            left join matrix.books as mb on mb.book_key = rb.book_key
            where p.run_id = $run and p.method = $method {only}
            order by mb.n_ratings desc nulls last, p.book_idx
            limit $max_points
        )
        select p.book_key, p.x, p.y, b.title, b.authors, {expr} as colour
        from points as p
        left join core.books as b on b.book_key = p.book_key
        left join models.book_bias as bb on bb.run_id = $run and bb.book_idx = p.book_idx
        left join matrix.books as mb on mb.book_key = p.book_key
        order by p.book_key
        """,
        params,
    )
    return points, int(total)


def run_book_table(
    con: duckdb.DuckDBPyConnection, run_id: int, colour: str, keys: list[int] | None = None
) -> pl.DataFrame:
    """Every book of the run (or of ``keys``) with what a map point shows: book_idx, book_key,
    title, authors, colour, n_ratings (in the current matrix; null when rebuilt without it)."""
    expr = COLOUR_COLUMNS[colour]  # allow-list
    params: dict = {"run": run_id}
    only = ""
    if keys is not None:
        only = "and list_contains($keys, rb.book_key)"
        params["keys"] = [int(k) for k in keys]
    return frame(
        con,
        f"""
        select rb.book_idx, rb.book_key, b.title, b.authors, {expr} as colour, mb.n_ratings
        from models.run_books as rb
        left join core.books as b on b.book_key = rb.book_key
        left join models.book_bias as bb on bb.run_id = $run and bb.book_idx = rb.book_idx
        left join matrix.books as mb on mb.book_key = rb.book_key
        where rb.run_id = $run {only}
        order by rb.book_idx
        """,
        params,
    )


def points_of_books(
    con: duckdb.DuckDBPyConnection, run_id: int, method: str, book_keys: list[int]
) -> pl.DataFrame:
    """Map positions of the given books (for highlighting): book_key, x, y, title, authors."""
    if not book_keys:
        return pl.DataFrame(
            schema={
                "book_key": pl.Int64,
                "x": pl.Float64,
                "y": pl.Float64,
                "title": pl.String,
                "authors": pl.String,
            }
        )
    return frame(
        con,
        """
        select rb.book_key, p.x, p.y, b.title, b.authors
        from models.run_books as rb
        inner join models.projections as p on p.run_id = rb.run_id and p.book_idx = rb.book_idx
        left join core.books as b on b.book_key = rb.book_key
        where rb.run_id = $run and p.method = $method and list_contains($keys, rb.book_key)
        """,
        {"run": run_id, "method": method, "keys": [int(k) for k in book_keys]},
    )


def search_books(
    con: duckdb.DuckDBPyConnection, text: str, run_ids: list[int], limit: int
) -> pl.DataFrame:
    """Books of the given runs whose title or author contains ``text`` (case-insensitive).

    Exact titles first, then titles that start with the text, then the most-rated. An empty text
    gives the most-rated books. Columns: book_key, title, authors, publication_year.
    """
    if not run_ids:
        return pl.DataFrame(
            schema={
                "book_key": pl.Int64,
                "title": pl.String,
                "authors": pl.String,
                "publication_year": pl.Int32,
            }
        )
    return frame(
        con,
        """
        with books as (
            select distinct book_key from models.run_books where list_contains($runs, run_id)
        ),
        query as (select lower(trim($text)) as q)
        select b.book_key, b.title, b.authors, b.publication_year
        from core.books as b
        semi join books on books.book_key = b.book_key
        cross join query
        where query.q = ''
            or contains(lower(b.title), query.q)
            or contains(lower(b.authors), query.q)
        order by lower(b.title) = query.q desc, starts_with(lower(b.title), query.q) desc,
            b.ratings_count desc nulls last, b.book_key
        limit $limit
        """,
        {"runs": [int(r) for r in run_ids], "text": text or "", "limit": limit},
    )


def books_by_key(con: duckdb.DuckDBPyConnection, book_keys: list[int]) -> pl.DataFrame:
    """Title, authors and cover of each key that exists (any order)."""
    if not book_keys:
        return pl.DataFrame(
            schema={
                "book_key": pl.Int64,
                "title": pl.String,
                "authors": pl.String,
                "publication_year": pl.Int32,
                "image_url": pl.String,
            }
        )
    return frame(
        con,
        """select book_key, title, authors, publication_year, image_url from core.books
           where list_contains($keys, book_key)""",
        {"keys": [int(k) for k in book_keys]},
    )


def neighbours(con: duckdb.DuckDBPyConnection, run_id: int, book_key: int, n: int) -> pl.DataFrame:
    """The stored cosine neighbours of a book under a run (empty if the book is not in the run).

    Columns: rank, book_key, title, authors, image_url, score, n_ratings (in the current matrix;
    null if it was rebuilt without the book).
    """
    return frame(
        con,
        """
        with target as (
            select book_idx from models.run_books where run_id = $run and book_key = $key
        )
        select n.rank, rb.book_key, b.title, b.authors, b.image_url, n.score, mb.n_ratings
        from models.book_neighbours as n
        inner join target as t on t.book_idx = n.book_idx
        inner join models.run_books as rb on rb.run_id = n.run_id and rb.book_idx = n.neighbour_idx
        left join core.books as b on b.book_key = rb.book_key
        left join matrix.books as mb on mb.book_key = rb.book_key
        where n.run_id = $run and n.rank <= $n
        order by n.rank
        """,
        {"run": run_id, "key": int(book_key), "n": n},
    )


# ----------------------------------------------------------------------------- users


def search_users(
    con: duckdb.DuckDBPyConnection, text: str, run_id: int, limit: int
) -> pl.DataFrame:
    """Users of a run whose id starts with ``text`` (all users when empty), most active first.

    Columns: user_key, n_ratings (in the current matrix; null if the matrix was rebuilt without
    them).
    """
    return frame(
        con,
        """
        select ru.user_key, mu.n_ratings
        from models.run_users as ru
        left join matrix.users as mu on mu.user_key = ru.user_key
        where ru.run_id = $run and starts_with(cast(ru.user_key as varchar), trim($text))
        order by mu.n_ratings desc nulls last, ru.user_key
        limit $limit
        """,
        {"run": run_id, "text": text or "", "limit": limit},
    )


def user_exists(con: duckdb.DuckDBPyConnection, run_id: int, user_key: int) -> bool:
    """Whether the run was fitted with this user."""
    return bool(
        rows(
            con,
            "select 1 from models.run_users where run_id = $run and user_key = $user",
            {"run": run_id, "user": int(user_key)},
        )
    )


def random_user(con: duckdb.DuckDBPyConnection, run_id: int, min_ratings: int = 20) -> int | None:
    """A random user of the run with at least ``min_ratings`` ratings in the matrix (any if
    none)."""
    found = rows(
        con,
        """select ru.user_key from models.run_users as ru
           left join matrix.users as mu on mu.user_key = ru.user_key
           where ru.run_id = $run
           order by coalesce(mu.n_ratings, 0) >= $min desc, random() limit 1""",
        {"run": run_id, "min": min_ratings},
    )
    return int(found[0][0]) if found else None


def user_ratings(
    con: duckdb.DuckDBPyConnection, run_id: int, user_key: int, limit: int
) -> tuple[pl.DataFrame, int]:
    """The user's ratings in the run's source, best first, and how many there are in all.

    Columns: book_key, title, authors, image_url, rating.
    """
    params = {"run": run_id, "user": int(user_key)}
    source = "(select source from models.runs where run_id = $run)"
    total = rows(
        con,
        "select count(*) from core.ratings "
        f"where user_key = $user and source = {source} and rating is not null",
        params,
    )[0][0]
    rated = frame(
        con,
        f"""
        select r.book_key, b.title, b.authors, b.image_url, r.rating
        from core.ratings as r
        left join core.books as b on b.book_key = r.book_key
        where r.user_key = $user and r.source = {source} and r.rating is not null
        order by r.rating desc, b.ratings_count desc nulls last, r.book_key
        limit $limit
        """,
        {**params, "limit": limit},
    )
    return rated, int(total)


# ----------------------------------------------------------------------------- biases


BIAS_COLUMNS = """
    select rb.book_key, b.title, b.authors, bb.bias, mb.n_ratings, mb.mean_rating, b.average_rating
    from models.book_bias as bb
    inner join models.run_books as rb on rb.run_id = bb.run_id and rb.book_idx = bb.book_idx
    left join core.books as b on b.book_key = rb.book_key
    left join matrix.books as mb on mb.book_key = rb.book_key
    where bb.run_id = $run and coalesce(mb.n_ratings, 0) >= $min
"""


def count_bias_books(con: duckdb.DuckDBPyConnection, run_id: int, min_ratings: int) -> int:
    """How many of the run's books have at least ``min_ratings`` ratings."""
    return int(
        rows(con, f"select count(*) from ({BIAS_COLUMNS})", {"run": run_id, "min": min_ratings})[0][
            0
        ]
    )


def extreme_biases(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    min_ratings: int,
    n: int,
    *,
    highest: bool,
    qualified: int | None = None,
) -> pl.DataFrame:
    """The ``n`` books with the highest (or lowest) learned bias among those with enough ratings.

    When fewer than ``2 n`` books qualify they are split, the upper half highest and the lower half
    lowest, so no book is ever both "generally good" and "generally bad".
    ``qualified`` is :func:`count_bias_books` when the caller has it already.
    Columns: book_key, title, authors, bias, n_ratings, mean_rating, average_rating.
    """
    if qualified is None:
        qualified = count_bias_books(con, run_id, min_ratings)
    n = min(n, (qualified + 1) // 2 if highest else qualified // 2)
    order = "desc" if highest else "asc"  # allow-list of two
    return frame(
        con,
        f"{BIAS_COLUMNS} order by bb.bias {order}, rb.book_key {order} limit $n",
        {"run": run_id, "min": min_ratings, "n": n},
    )


def bias_points(
    con: duckdb.DuckDBPyConnection, run_id: int, min_ratings: int, max_points: int
) -> pl.DataFrame:
    """Bias and mean rating of the run's books with enough ratings (a hash sample if many)."""
    return frame(
        con,
        f"{BIAS_COLUMNS} order by hash(bb.book_idx) limit $max",
        {"run": run_id, "min": min_ratings, "max": max_points},
    )


def max_book_ratings(con: duckdb.DuckDBPyConnection) -> int:
    """The most ratings any book has in the current matrix (the slider's range)."""
    return int(rows(con, "select coalesce(max(n_ratings), 0) from matrix.books")[0][0])


def user_bias_histogram(
    con: duckdb.DuckDBPyConnection, run_id: int, width: float = 0.05
) -> pl.DataFrame:
    """Learned user biases binned ``width`` wide: lo, hi, count."""
    return frame(
        con,
        """
        select floor(bias / $w) * $w as lo, floor(bias / $w) * $w + $w as hi, count(*) as count
        from models.user_bias where run_id = $run group by 1, 2 order by 1
        """,
        {"run": run_id, "w": width},
    )


# ----------------------------------------------------------------------------- metrics


def metrics(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every stored metric of every run that still exists, with its run's kind and time.

    Columns: run_id, kind, published, latest, finished_at, split, metric, k, value, ci_low, ci_high.
    """
    return frame(
        con,
        """
        with latest as (select kind, run_id from main.latest_runs)
        select m.run_id, r.kind, r.published, (l.run_id is not null) as latest, r.finished_at,
            m.split, m.metric, m.k, m.value, m.ci_low, m.ci_high
        from models.metrics as m
        inner join models.runs as r on r.run_id = m.run_id
        left join latest as l on l.run_id = m.run_id
        order by r.kind, m.run_id, m.metric
        """,
    )


# ----------------------------------------------------------------------------- custom axes


# What a pole of a custom axis can be: one book, an author's books, or the books with a tag.
POLE_KINDS: tuple[str, ...] = ("book", "author", "tag")


@dataclass(frozen=True)
class Pole:
    """One end of a custom axis, written ``kind:value`` in the URL (``tag:fantasy``,
    ``author:Dan Brown``, ``book:123``)."""

    kind: str
    value: str

    @property
    def token(self) -> str:
        return f"{self.kind}:{self.value}"

    @classmethod
    def parse(cls, token: object) -> Pole | None:
        """The pole a ``kind:value`` string names, or None for anything else."""
        if not isinstance(token, str) or ":" not in token or len(token) > 300:
            return None
        kind, value = token.split(":", 1)
        value = value.strip()
        if kind not in POLE_KINDS or not value:
            return None
        if kind == "book" and not value.isdigit():
            return None
        return cls(kind, value)


def pole_rows(con: duckdb.DuckDBPyConnection, run_id: int, pole: Pole) -> list[int]:
    """Book indices of the run that make up ``pole`` (empty when none does)."""
    condition = {  # allow-list: one condition per pole kind, the value always bound
        "book": "rb.book_key = try_cast($value as bigint)",
        "author": "list_contains(string_split(b.authors, ', '), $value)",
        "tag": "list_contains(b.top_tags, $value)",
    }[pole.kind]
    found = rows(
        con,
        f"""select rb.book_idx from models.run_books as rb
            inner join core.books as b on b.book_key = rb.book_key
            where rb.run_id = $run and {condition}""",
        {"run": run_id, "value": pole.value},
    )
    return [int(r[0]) for r in found]


def pole_label(con: duckdb.DuckDBPyConnection, pole: Pole) -> str:
    """How a pole is named on an axis and in a picker: "tag fantasy", "Dan Brown", a title."""
    if pole.kind == "book":
        found = rows(
            con,
            "select title from core.books where book_key = try_cast($v as bigint)",
            {"v": pole.value},
        )
        return f"'{found[0][0]}'" if found and found[0][0] else f"book {pole.value}"
    return f"tag {pole.value}" if pole.kind == "tag" else pole.value


def search_poles(
    con: duckdb.DuckDBPyConnection, text: str, run_id: int, limit: int
) -> list[tuple[str, str]]:
    """Poles for a typeahead: tags, authors and books of the run matching ``text``, as
    (token, label) pairs, tags and authors with how many of the run's books they cover."""
    params = {"run": run_id, "q": (text or "").strip().lower(), "limit": limit}
    tags = rows(
        con,
        """
        with tags as (
            select unnest(b.top_tags) as tag from models.run_books as rb
            inner join core.books as b on b.book_key = rb.book_key where rb.run_id = $run
        )
        select tag, count(*) as n from tags where contains(lower(tag), $q)
        group by tag order by starts_with(lower(tag), $q) desc, n desc, tag limit $limit
        """,
        params,
    )
    authors = rows(
        con,
        """
        with authors as (
            select unnest(string_split(b.authors, ', ')) as author from models.run_books as rb
            inner join core.books as b on b.book_key = rb.book_key where rb.run_id = $run
        )
        select author, count(*) as n from authors where $q <> '' and contains(lower(author), $q)
        group by author order by starts_with(lower(author), $q) desc, n desc, author limit $limit
        """,
        params,
    )
    books = search_books(con, text, [run_id], limit) if params["q"] else None
    out = [(f"tag:{t}", f"Tag: {t} ({n:,} books)") for t, n in tags]
    out += [(f"author:{a}", f"Author: {a} ({n:,} books)") for a, n in authors]
    if books is not None:
        out += [
            (f"book:{r['book_key']}", f"Book: {r['title']} — {r['authors'] or ''}")
            for r in books.iter_rows(named=True)
        ]
    return out[: 3 * limit]


def custom_positions(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    x_poles: tuple[Pole, Pole],
    y_poles: tuple[Pole, Pole] | None,
) -> pl.DataFrame:
    """Every book of the run placed on custom axes (see analytics.projections.pole_axes).

    Columns: book_idx, x, y. Raises ShelfwiseError naming a pole that has no book in the run.
    """
    from analytics.projections import pole_axes
    from shelfwise.serving import book_vectors

    def rows_of(pole: Pole) -> np.ndarray:
        found = pole_rows(con, run_id, pole)
        if not found:
            raise ShelfwiseError(
                f"No book of this run is {pole_label(con, pole)}: pick another pole."
            )
        return np.array(found, dtype=np.int64)

    xs = (rows_of(x_poles[0]), rows_of(x_poles[1]))
    ys = (rows_of(y_poles[0]), rows_of(y_poles[1])) if y_poles else None
    xy = pole_axes(book_vectors(con, run_id), xs, ys)
    return pl.DataFrame(
        {"book_idx": np.arange(len(xy), dtype=np.int32), "x": xy[:, 0], "y": xy[:, 1]}
    )


# ----------------------------------------------------------------------------- search, selection


def match_books(
    con: duckdb.DuckDBPyConnection, run_id: int, text: str, limit: int
) -> tuple[list[int], int]:
    """Keys of the run's books whose title, author or one of whose top tags contains ``text``
    (case-insensitive; most-rated first, at most ``limit``) and how many match in all."""
    q = (text or "").strip().lower()
    if not q:
        return [], 0
    found = rows(
        con,
        """
        with matches as (
            select rb.book_key, b.ratings_count from models.run_books as rb
            inner join core.books as b on b.book_key = rb.book_key
            where rb.run_id = $run and (
                contains(lower(b.title), $q) or contains(lower(b.authors), $q)
                or len(list_filter(b.top_tags, lambda t: contains(lower(t), $q))) > 0)
        )
        select book_key, count(*) over () as total from matches
        order by ratings_count desc nulls last, book_key limit $limit
        """,
        {"run": run_id, "q": q, "limit": limit},
    )
    return [int(r[0]) for r in found], int(found[0][1]) if found else 0


def selection_books(con: duckdb.DuckDBPyConnection, run_id: int, keys: list[int]) -> pl.DataFrame:
    """The selected books of a run, most-rated first: book_key, title, authors, top_tags (three),
    n_ratings (in the matrix), publication_year, average_rating."""
    return frame(
        con,
        """
        select rb.book_key, b.title, b.authors, b.top_tags[1:3] as top_tags, mb.n_ratings,
            b.publication_year, b.average_rating
        from models.run_books as rb
        left join core.books as b on b.book_key = rb.book_key
        left join matrix.books as mb on mb.book_key = rb.book_key
        where rb.run_id = $run and list_contains($keys, rb.book_key)
        order by mb.n_ratings desc nulls last, rb.book_key
        """,
        {"run": run_id, "keys": [int(k) for k in keys]},
    )


def neighbour_keys(
    con: duckdb.DuckDBPyConnection, run_id: int, keys: list[int], n: int
) -> list[int]:
    """Keys of the stored ``n`` nearest neighbours of each of ``keys`` under the run, once each."""
    found = rows(
        con,
        """
        select distinct nb.book_key
        from models.run_books as rb
        inner join models.book_neighbours as n on n.run_id = rb.run_id and n.book_idx = rb.book_idx
        inner join models.run_books as nb on nb.run_id = n.run_id and nb.book_idx = n.neighbour_idx
        where rb.run_id = $run and list_contains($keys, rb.book_key) and n.rank <= $n
        """,
        {"run": run_id, "keys": [int(k) for k in keys], "n": n},
    )
    return [int(r[0]) for r in found]


# ----------------------------------------------------------------------------- compare runs


def neighbour_runs(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Published runs of kinds with stored neighbours, newest first: run_id, kind, finished_at,
    latest (the latest of its kind)."""
    return frame(
        con,
        """
        select r.run_id, r.kind, r.finished_at, (l.run_id is not null) as latest
        from models.runs as r
        left join main.latest_runs as l on l.run_id = r.run_id
        where r.published and list_contains($kinds, r.kind)
        order by r.run_id desc
        """,
        {"kinds": list(NEIGHBOUR_KINDS)},
    )


def pair_overlap(con: duckdb.DuckDBPyConnection, run_a: int, run_b: int, n: int) -> pl.DataFrame:
    """Every book in both runs with how many of its ``n`` nearest neighbours the two runs share and
    their Jaccard@n (|A & B| / |A | B|). Books and neighbours are matched by key: the runs may have
    been fitted on different matrices. Columns: book_key, shared, jaccard, n_ratings."""
    return frame(
        con,
        """
        with lists as materialized (
            select n.run_id, rb.book_key, nb.book_key as neighbour_key
            from models.book_neighbours as n
            inner join models.run_books as rb on rb.run_id = n.run_id and rb.book_idx = n.book_idx
            inner join models.run_books as nb
                on nb.run_id = n.run_id and nb.book_idx = n.neighbour_idx
            where list_contains([$a, $b], n.run_id) and n.rank <= $n
        ),
        per_book as (
            select book_key, count(*) filter (where run_id = $a) as n_a,
                count(*) filter (where run_id = $b) as n_b
            from lists group by book_key
        ),
        shared as (
            select book_key, count(*) as shared from (
                select book_key, neighbour_key from lists where run_id = $a
                intersect all
                select book_key, neighbour_key from lists where run_id = $b
            ) group by book_key
        )
        select p.book_key, coalesce(s.shared, 0) as shared,
            coalesce(s.shared, 0) / (p.n_a + p.n_b - coalesce(s.shared, 0)) as jaccard,
            mb.n_ratings
        from per_book as p
        left join shared as s on s.book_key = p.book_key
        left join matrix.books as mb on mb.book_key = p.book_key
        where p.n_a > 0 and p.n_b > 0
        """,
        {"a": run_a, "b": run_b, "n": n},
    )


def overlap_distribution(overlap: pl.DataFrame) -> pl.DataFrame:
    """How many books share how many neighbours (from :func:`pair_overlap`): shared, jaccard,
    books."""
    return (
        overlap.group_by("shared")
        .agg(pl.col("jaccard").min(), pl.len().alias("books"))
        .sort("shared")
    )


def most_changed(con: duckdb.DuckDBPyConnection, overlap: pl.DataFrame, limit: int) -> pl.DataFrame:
    """The books whose neighbours changed most (from :func:`pair_overlap`): lowest Jaccard first,
    the most-rated first among equals. Columns: book_key, title, authors, shared, jaccard,
    n_ratings."""
    top = overlap.sort(
        ["jaccard", "n_ratings", "book_key"], descending=[False, True, False], nulls_last=True
    ).head(limit)
    books = books_by_key(con, top["book_key"].to_list()).select("book_key", "title", "authors")
    return top.join(books, on="book_key", how="left", maintain_order="left").select(
        "book_key", "title", "authors", "shared", "jaccard", "n_ratings"
    )
