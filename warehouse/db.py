"""DuckDB connections and the warehouse's fixed tables (raw bookkeeping, models)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from base.errors import ShelfwiseError
from warehouse.catalog import SCHEMAS, TABLES, VIEWS, read_model

log = logging.getLogger(__name__)


def memory_limit() -> str:
    """DuckDB memory limit; ``SHELFWISE_MEMORY_LIMIT`` overrides the default that keeps RSS well
    under 12 GB."""
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
        create_tables(con)
        create_views(con)
    return con


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The schemas, the fixed tables of ``sql/`` (catalog.TABLES) and every raw table, if
    missing."""
    for schema in SCHEMAS:  # identifiers from our own allow-list
        con.execute(f"create schema if not exists {schema}")
    for name in TABLES:
        con.execute(read_model(name).sql)
    _create_empty_raw_tables(con)


def create_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create each ``main`` view (catalog.VIEWS) whose upstream relations exist.

    DuckDB binds a view when it is created, so the views over core.books wait for the first
    transform, which calls this again.
    """
    for name in VIEWS:
        model = read_model(name)
        if all(table_exists(con, *relation.split(".")) for relation in model.upstream):
            con.execute(f"create or replace view {model.relation} as {model.sql}")


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
    """The warehouse file, or a one-line error: commands other than load never create one at a
    typo."""
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


# Statement types a user's ad-hoc SQL may run: queries only (show/describe/summarize parse as
# select).
QUERY_STATEMENTS = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL"})


def guard_user_query(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Let a user's SQL run on this reading connection only if it holds queries alone.

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
                "only queries run here (select, show, describe, explain, pragma, call), "
                f"not {kind.lower()}: "
                "the warehouse changes only through shelfwise commands"
            )
    con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")


def run_user_query(con: duckdb.DuckDBPyConnection, query: str) -> duckdb.DuckDBPyConnection:
    """Execute a user's SQL on a reading connection, queries only (:func:`guard_user_query`)."""
    guard_user_query(con, query)
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
