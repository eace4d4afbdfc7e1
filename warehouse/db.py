"""DuckDB connections and the warehouse's fixed tables (raw bookkeeping, models)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from shelfwise.errors import ShelfwiseError

log = logging.getLogger(__name__)

SCHEMAS = ("raw", "staging", "core", "matrix", "models")

# Bookkeeping and model tables whose shape is fixed. Data tables (raw.goodbooks_ratings, core.*,
# matrix.*) are created by the loaders and the SQL models.
DDL = """
create schema if not exists raw;
create schema if not exists staging;
create schema if not exists core;
create schema if not exists matrix;
create schema if not exists models;

create table if not exists raw.load_log (
    load_id     bigint not null,
    source      varchar not null,
    raw_table   varchar not null,
    file        varchar not null,
    size        bigint not null,
    sha256      varchar not null,
    rows_read   bigint not null,
    rows_rejected bigint not null,
    loaded_at   timestamp not null
);
create table if not exists raw.rejects (
    load_id     bigint not null,
    file        varchar not null,
    line        bigint,
    raw_text    varchar,
    reason      varchar not null
);
create table if not exists matrix.transform_log (
    transform_id bigint not null,
    source      varchar not null,
    model       varchar not null,
    rows        bigint,
    seconds     double not null,
    params      json not null,
    finished_at timestamp not null
);

create table if not exists models.runs (
    run_id      bigint primary key,
    kind        varchar not null,
    source      varchar not null,
    params      json not null,
    input_fingerprint varchar not null,
    started_at  timestamp not null,
    finished_at timestamp,
    seconds     double,
    status      varchar not null,
    published   boolean not null default false,
    info        json
);
-- Each run keeps the index mappings it was fitted with, so re-running transforms never mislabels it.
create table if not exists models.run_books (run_id bigint not null, book_idx integer not null, book_key bigint not null);
create table if not exists models.run_users (run_id bigint not null, user_idx integer not null, user_key bigint not null);
create table if not exists models.user_factors (run_id bigint not null, user_idx integer not null, vector float[] not null);
create table if not exists models.book_factors (run_id bigint not null, book_idx integer not null, vector float[] not null);
create table if not exists models.user_bias (run_id bigint not null, user_idx integer not null, bias double not null);
create table if not exists models.book_bias (run_id bigint not null, book_idx integer not null, bias double not null);
create table if not exists models.book_neighbours (
    run_id bigint not null, book_idx integer not null, rank integer not null,
    neighbour_idx integer not null, score double not null
);
create table if not exists models.projections (
    run_id bigint not null, book_idx integer not null, method varchar not null, x double not null, y double not null
);
create table if not exists models.metrics (
    run_id bigint not null, metric varchar not null, k integer, value double not null,
    ci_low double, ci_high double, split varchar
);
"""

# Plain-SQL views of the latest published run of each kind, titles joined: no run ids needed.
VIEWS = """
create or replace view main.latest_runs as
    select kind, max(run_id) as run_id from models.runs where published group by kind;
create or replace view main.book_factors as
    select l.kind, f.run_id, f.book_idx, rb.book_key, b.title, b.authors, f.vector
    from models.book_factors as f
    inner join main.latest_runs as l on l.run_id = f.run_id
    inner join models.run_books as rb on rb.run_id = f.run_id and rb.book_idx = f.book_idx
    left join core.books as b on b.book_key = rb.book_key;
create or replace view main.user_factors as
    select l.kind, f.run_id, f.user_idx, ru.user_key, f.vector
    from models.user_factors as f
    inner join main.latest_runs as l on l.run_id = f.run_id
    inner join models.run_users as ru on ru.run_id = f.run_id and ru.user_idx = f.user_idx;
create or replace view main.book_bias as
    select l.kind, f.run_id, f.book_idx, rb.book_key, b.title, b.authors, f.bias
    from models.book_bias as f
    inner join main.latest_runs as l on l.run_id = f.run_id
    inner join models.run_books as rb on rb.run_id = f.run_id and rb.book_idx = f.book_idx
    left join core.books as b on b.book_key = rb.book_key;
create or replace view main.user_bias as
    select l.kind, f.run_id, f.user_idx, ru.user_key, f.bias
    from models.user_bias as f
    inner join main.latest_runs as l on l.run_id = f.run_id
    inner join models.run_users as ru on ru.run_id = f.run_id and ru.user_idx = f.user_idx;
create or replace view main.book_neighbours as
    select l.kind, n.run_id, n.book_idx, rb.book_key, b.title, n.rank, n.neighbour_idx,
        nb.book_key as neighbour_key, b2.title as neighbour_title, b2.authors as neighbour_authors, n.score
    from models.book_neighbours as n
    inner join main.latest_runs as l on l.run_id = n.run_id
    inner join models.run_books as rb on rb.run_id = n.run_id and rb.book_idx = n.book_idx
    inner join models.run_books as nb on nb.run_id = n.run_id and nb.book_idx = n.neighbour_idx
    left join core.books as b on b.book_key = rb.book_key
    left join core.books as b2 on b2.book_key = nb.book_key;
create or replace view main.model_metrics as
    select r.kind, m.run_id, r.published, r.finished_at, m.split, m.metric, m.k, m.value, m.ci_low, m.ci_high
    from models.metrics as m
    inner join models.runs as r on r.run_id = m.run_id
    where m.run_id in (select run_id from main.latest_runs);
"""


def memory_limit() -> str:
    """DuckDB memory limit; ``SHELFWISE_MEMORY_LIMIT`` overrides the default that keeps RSS well under 12 GB."""
    return os.environ.get("SHELFWISE_MEMORY_LIMIT", "8GB")


def connection_config() -> dict:
    """Settings of every warehouse connection.

    Python replacement scans are off: with them, a query naming a table the warehouse lacks (say
    ``models.runs`` before any fit) would silently read a Python variable of that name instead of
    failing with a catalog error.
    """
    return {"memory_limit": memory_limit(), "python_enable_replacements": False}


def connect(db_path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file; a writable connection creates the fixed tables if missing."""
    db_path = Path(db_path)
    if read_only and not db_path.exists():
        raise ShelfwiseError(f"no warehouse at {db_path}: run `shelfwise load goodbooks DIR` first")
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(db_path), read_only=read_only, config=connection_config())
    except duckdb.IOException as exc:
        raise ShelfwiseError(
            f"cannot open warehouse {db_path}: {str(exc).splitlines()[0]}"
        ) from exc
    if not read_only:
        con.execute(DDL)
        _create_empty_raw_tables(con)
        if table_exists(con, "core", "books"):
            con.execute(VIEWS)
    return con


def _create_empty_raw_tables(con: duckdb.DuckDBPyConnection) -> None:
    # Every raw table exists from the start, so staging views compile before a source is loaded.
    from warehouse.sources import all_raw_files

    for spec in all_raw_files():
        cols = ", ".join(f"{c.name} {'VARCHAR' if spec.all_text else c.type}" for c in spec.columns)
        con.execute(f"create table if not exists raw.{spec.table} ({cols})")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing: commit when the block ends, roll back on any exception (Ctrl-C included)."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchall()
    return row[0][0] > 0


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> object:
    """First column of the first row (fully consumed, so the connection stays usable)."""
    rows = (
        con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    )
    return rows[0][0] if rows else None


def snapshot_path(db_path: Path | str) -> Path:
    """The read copy the dashboard serves: ``<db>.read``, replaced atomically after each write."""
    return Path(f"{db_path}.read")


def require_warehouse(db_path: Path | str) -> Path:
    """The warehouse file, or a one-line error: commands other than load never create one at a typo."""
    path = Path(db_path)
    if not path.exists():
        raise ShelfwiseError(f"no warehouse at {db_path}: run `shelfwise load goodbooks DIR` first")
    return path


@contextmanager
def writer(db_path: Path | str, *, create: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """A write connection that, on success, publishes a fresh read snapshot of the warehouse.

    With ``create=False`` a missing file is a one-line error instead of a new empty warehouse (for
    every command but load, so a mistyped ``--db`` never leaves a stray file behind).

    DuckDB lets one process write a file or many read it, never both at once. Readers (the
    dashboard) open the snapshot instead, so a long refresh never blocks them; os.replace swaps
    the snapshot atomically and open readers keep the old inode until they reconnect.
    """
    if not create:
        require_warehouse(db_path)
    con = connect(db_path)
    try:
        yield con
        con.execute("checkpoint")
    finally:
        con.close()
    publish_snapshot(db_path)


def publish_snapshot(db_path: Path | str) -> Path:
    import shutil

    target = snapshot_path(db_path)
    tmp = target.with_name(target.name + ".tmp")
    shutil.copyfile(db_path, tmp)
    os.replace(tmp, target)
    return target


# Statement types a user's ad-hoc SQL may run: queries only (show/describe/summarize parse as select).
QUERY_STATEMENTS = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL"})


def run_user_query(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.DuckDBPyConnection:
    """Execute a user's SQL on a reading connection, allowing queries only.

    The warehouse is attached read-only, but a connection could detach it and attach the file again
    writable, or read and write other files (``copy ... to``, ``read_csv('/etc/passwd')``). So every
    statement must be a query, file access is switched off and the configuration locked before the
    query runs. Raises ShelfwiseError naming what was refused.
    """
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise ShelfwiseError(f"query failed: {str(exc).strip().splitlines()[0]}") from exc
    if not statements:
        raise ShelfwiseError("no SQL statement given")
    for statement in statements:
        kind = statement.type.name
        if kind not in QUERY_STATEMENTS:
            raise ShelfwiseError(
                f"only queries run here (select, show, describe, explain, pragma, call), not {kind.lower()}: "
                "the warehouse changes only through shelfwise commands"
            )
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
    try:
        return con.execute(query)
    except duckdb.Error as exc:
        raise ShelfwiseError(f"query failed: {str(exc).strip().splitlines()[0]}") from exc


def open_for_reading(db_path: Path | str) -> duckdb.DuckDBPyConnection:
    """A short-lived read-only connection: the snapshot when there is one, else the file itself.

    The file is attached to a fresh in-memory database rather than opened by path: DuckDB caches
    open databases by path within a process, so while any connection to the old snapshot is open a
    path-based open would keep serving the replaced file.
    """
    snap = snapshot_path(db_path)
    target = snap if snap.exists() else require_warehouse(db_path)
    con = duckdb.connect(":memory:", config=connection_config())
    try:
        con.execute(
            f"attach '{str(target).replace(chr(39), chr(39) * 2)}' as warehouse (read_only)"
        )
    except duckdb.Error as exc:
        con.close()
        raise ShelfwiseError(
            f"cannot open warehouse {target}: {str(exc).strip().splitlines()[0]}"
        ) from exc
    con.execute("use warehouse")
    return con
