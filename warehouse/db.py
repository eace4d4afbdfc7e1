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
    published   boolean not null default false
);
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


def memory_limit() -> str:
    """DuckDB memory limit; ``SHELFWISE_MEMORY_LIMIT`` overrides the default that keeps RSS well under 12 GB."""
    return os.environ.get("SHELFWISE_MEMORY_LIMIT", "8GB")


def connect(db_path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file; a writable connection creates the fixed tables if missing."""
    db_path = Path(db_path)
    if read_only and not db_path.exists():
        raise ShelfwiseError(f"no warehouse at {db_path}: run `shelfwise load goodbooks DIR` first")
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(db_path), read_only=read_only, config={"memory_limit": memory_limit()})
    except duckdb.IOException as exc:
        raise ShelfwiseError(f"cannot open warehouse {db_path}: {str(exc).splitlines()[0]}") from exc
    if not read_only:
        con.execute(DDL)
        _create_empty_raw_tables(con)
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
    rows = con.execute(sql, params).fetchall() if params is not None else con.execute(sql).fetchall()
    return rows[0][0] if rows else None
