"""The one bridge between the warehouse and the maths: matrix.ratings in as CSR, models out as
tables."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from analytics.blend import assemble
from analytics.factors import FactorModel
from analytics.metrics import Metric
from analytics.weights import ItemWeightsModel
from base.errors import ShelfwiseError
from base.registry import spec
from warehouse.db import scalar, table_exists, transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RatingData:
    """The indexed matrix of one source.

    Attributes
    ----------
    train, test : csr_matrix of float32, shape (n_users, n_books)
        Ratings 1..5 in the cells of each split.
    source : str
    fingerprint : str
        Identifies the matrix build (transform params and contents), stored with each run.
    """

    train: sp.csr_matrix
    test: sp.csr_matrix
    source: str
    fingerprint: str

    @property
    def shape(self) -> tuple[int, int]:
        return self.train.shape


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def matrix_fingerprint(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """(source, fingerprint) of the current matrix build; raises if none was built."""
    if not table_exists(con, "matrix", "ratings"):
        raise ShelfwiseError(
            "no rating matrix yet: run `shelfwise load goodbooks DIR` and `shelfwise transform`"
        )
    rows = con.execute(
        """select transform_id, source, params from matrix.transform_log
           order by transform_id desc limit 1"""
    ).fetchall()
    if not rows:
        raise ShelfwiseError("no rating matrix yet: run `shelfwise transform`")
    transform_id, source, params = rows[0]
    # Parameters, the row counts each model produced, and the raw loads behind them identify the
    # build without scanning the matrix (a re-run on the same inputs gives the same fingerprint).
    counts = con.execute(
        """select list(model || '=' || coalesce(rows, -1) order by model) from matrix.transform_log
           where transform_id = ?""",
        [transform_id],
    ).fetchall()[0][0]
    loads = con.execute(
        "select list(sha256 order by raw_table) from raw.load_log where source = ?", [source]
    ).fetchall()[0][0]
    digest = hashlib.sha256(f"{params}|{counts}|{loads}".encode()).hexdigest()[:16]
    return source, digest


def read_ratings(con: duckdb.DuckDBPyConnection) -> RatingData:
    """matrix.ratings straight into CSR through Arrow and numpy: no Python loop over ratings."""
    source, fingerprint = matrix_fingerprint(con)
    n_users = int(scalar(con, "select count(*) from matrix.users"))
    n_books = int(scalar(con, "select count(*) from matrix.books"))

    def split_matrix(split: str) -> sp.csr_matrix:
        # One filtered scan per split, typed in SQL (REAL is float32), handed over as Arrow
        # columns that numpy views without copying. The table is stored ordered by (user_idx,
        # book_idx), and DuckDB keeps that order, so CSR is just per-user counts and the columns.
        table = con.sql(
            "select user_idx, book_idx, rating::real as rating from matrix.ratings where split = ?",
            params=[split],
        ).to_arrow_table()
        users, books, ratings = (
            table.column(name).to_numpy() for name in ("user_idx", "book_idx", "rating")
        )
        if len(users) > 1 and np.any(
            users[1:] < users[:-1]
        ):  # not in stored order after all: sort once
            order = np.lexsort((books, users))
            users, books, ratings = users[order], books[order], ratings[order]
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        return sp.csr_matrix(
            (ratings, books.astype(np.int32, copy=False), indptr), shape=(n_users, n_books)
        )

    return RatingData(split_matrix("train"), split_matrix("test"), source, fingerprint)


def read_to_read(con: duckdb.DuckDBPyConnection, shape: tuple[int, int]) -> sp.csr_matrix:
    """matrix.to_read as a binary csr of the matrix's shape (empty where none was loaded)."""
    arrays = con.execute("select user_idx, book_idx from matrix.to_read").fetchnumpy()
    u = np.asarray(arrays["user_idx"], dtype=np.int32)
    b = np.asarray(arrays["book_idx"], dtype=np.int32)
    return sp.csr_matrix((np.ones(len(u), dtype=np.float32), (u, b)), shape=shape)


# ----------------------------------------------------------------------------- runs


def start_run(
    con: duckdb.DuckDBPyConnection, kind: str, source: str, params: dict, fingerprint: str
) -> int:
    """Record a run as 'running' (committed at once, so a killed fit stays visible as such)."""
    with transaction(con):
        run_id = int(scalar(con, "select coalesce(max(run_id), 0) + 1 from models.runs"))
        con.execute(
            "insert into models.runs "
            "(run_id, kind, source, params, input_fingerprint, started_at, status, published) "
            "values (?, ?, ?, ?, ?, ?, 'running', false)",
            [run_id, kind, source, json.dumps(params, sort_keys=True), fingerprint, now()],
        )
    return run_id


def fail_run(con: duckdb.DuckDBPyConnection, run_id: int, reason: str) -> None:
    with transaction(con):
        con.execute(
            "update models.runs set status = 'failed', finished_at = ?, "
            "seconds = epoch(? - started_at) where run_id = ?",
            [now(), now(), run_id],
        )
    log.warning("run %d failed: %s", run_id, reason)


def _vectors_table(idx_name: str, vectors: np.ndarray, run_id: int) -> pa.Table:
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    flat = pa.array(v.ravel(), type=pa.float32())
    offsets = pa.array(np.arange(0, v.size + 1, v.shape[1], dtype=np.int32))
    return pa.table(
        {
            "run_id": pa.array(np.full(len(v), run_id, dtype=np.int64)),
            idx_name: pa.array(np.arange(len(v), dtype=np.int32)),
            "vector": pa.ListArray.from_arrays(offsets, flat),
        }
    )


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    con.register("shelfwise_insert", data)
    try:
        con.execute(f"insert into {table} by name select * from shelfwise_insert")
    finally:
        con.unregister("shelfwise_insert")


def publish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    model: FactorModel,
    *,
    neighbours: tuple[np.ndarray, np.ndarray] | None = None,
    projections: dict[str, np.ndarray] | None = None,
    keep_runs: int = 3,
    seconds: float | None = None,
    fail_before_commit: bool = False,
) -> None:
    """Write a fitted model and mark it published, in one transaction.

    The run's own user and book key mappings are stored with it, so a later transform that
    re-indexes the matrix never mislabels an older run. Older published runs of the same kind beyond
    ``keep_runs`` are deleted in the same transaction. ``fail_before_commit`` exists for tests of
    atomicity: it raises after every write, just before the commit.
    """
    with transaction(con):
        kind, fitted_on = con.execute(
            "select kind, input_fingerprint from models.runs where run_id = ?", [run_id]
        ).fetchall()[0]
        # The run stores today's index mapping, so it must be the mapping the model was fitted on.
        if matrix_fingerprint(con)[1] != fitted_on:
            raise ShelfwiseError(f"run {run_id}: the matrix was rebuilt during the fit; fit again")
        con.execute(
            "insert into models.run_books select ?, book_idx, book_key from matrix.books", [run_id]
        )
        con.execute(
            "insert into models.run_users select ?, user_idx, user_key from matrix.users", [run_id]
        )
        if model.user_factors is not None:
            _insert(
                con, "models.user_factors", _vectors_table("user_idx", model.user_factors, run_id)
            )
        if getattr(model, "book_implicit", None) is not None:
            _insert(
                con,
                "models.book_implicit",
                _vectors_table("book_idx", model.book_implicit, run_id),
            )
        if model.book_factors is not None:
            _insert(
                con, "models.book_factors", _vectors_table("book_idx", model.book_factors, run_id)
            )
        if model.user_bias is not None:
            _insert(
                con,
                "models.user_bias",
                pa.table(
                    {
                        "run_id": np.full(len(model.user_bias), run_id, dtype=np.int64),
                        "user_idx": np.arange(len(model.user_bias), dtype=np.int32),
                        "bias": np.asarray(model.user_bias, dtype=np.float64),
                    }
                ),
            )
        if model.book_bias is not None:
            _insert(
                con,
                "models.book_bias",
                pa.table(
                    {
                        "run_id": np.full(len(model.book_bias), run_id, dtype=np.int64),
                        "book_idx": np.arange(len(model.book_bias), dtype=np.int32),
                        "bias": np.asarray(model.book_bias, dtype=np.float64),
                    }
                ),
            )
        if neighbours is not None:
            idx, score = neighbours
            n, k = idx.shape
            _insert(
                con,
                "models.book_neighbours",
                pa.table(
                    {
                        "run_id": np.full(n * k, run_id, dtype=np.int64),
                        "book_idx": np.repeat(np.arange(n, dtype=np.int32), k),
                        "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), n),
                        "neighbour_idx": idx.ravel().astype(np.int32),
                        "score": score.ravel().astype(np.float64),
                    }
                ),
            )
        if isinstance(model, ItemWeightsModel):
            keep = model.neighbours >= 0
            counts = keep.sum(axis=1)
            _insert(
                con,
                "models.book_weights",
                pa.table(
                    {
                        "run_id": np.full(int(counts.sum()), run_id, dtype=np.int64),
                        "book_idx": np.repeat(np.arange(model.n_books, dtype=np.int32), counts),
                        "rank": (np.cumsum(keep, axis=1)[keep]).astype(np.int32),
                        "neighbour_idx": model.neighbours[keep].astype(np.int32),
                        "weight": model.weights[keep].astype(np.float64),
                    }
                ),
            )
        for method, xy in (projections or {}).items():
            _insert(
                con,
                "models.projections",
                pa.table(
                    {
                        "run_id": np.full(len(xy), run_id, dtype=np.int64),
                        "book_idx": np.arange(len(xy), dtype=np.int32),
                        "method": np.full(len(xy), method),
                        "x": xy[:, 0].astype(np.float64),
                        "y": xy[:, 1].astype(np.float64),
                    }
                ),
            )
        finished = now()
        con.execute(
            """update models.runs set status = 'succeeded', published = true, finished_at = ?,
               seconds = coalesce(?, epoch(? - started_at)), info = ? where run_id = ?""",
            [
                finished,
                seconds,
                finished,
                json.dumps({**model.info, "global_mean": model.global_mean}),
                run_id,
            ],
        )
        _apply_retention(con, kind, keep_runs)
        if fail_before_commit:
            raise RuntimeError("simulated failure before commit")


RUN_TABLES = (
    "models.user_factors",
    "models.book_factors",
    "models.book_implicit",
    "models.user_bias",
    "models.book_bias",
    "models.book_neighbours",
    "models.book_weights",
    "models.projections",
    "models.metrics",
    "models.run_books",
    "models.run_users",
)


def _apply_retention(con: duckdb.DuckDBPyConnection, kind: str, keep_runs: int) -> None:
    """Keep the newest ``keep_runs`` published runs of a kind (and every unpublished record), and
    every run a kept blend run combines: a blend serves from its component runs' tables, so
    deleting one would break a published blend until its next refit."""
    in_blends = {
        int(run_id)
        for (info,) in con.execute(
            "select info from models.runs where info like '%component_runs%'"
        ).fetchall()
        for run_id in json.loads(info).get("component_runs", [])
    }
    stale = [
        r[0]
        for r in con.execute(
            """select run_id from models.runs where kind = ? and published
               order by run_id desc offset ?""",
            [kind, keep_runs],
        ).fetchall()
        if r[0] not in in_blends
    ]
    if not stale:
        return
    for table in RUN_TABLES:
        con.execute(f"delete from {table} where list_contains(?, run_id)", [stale])
    con.execute("delete from models.runs where list_contains(?, run_id)", [stale])
    log.info("retention: removed %d old %s run(s)", len(stale), kind)


def write_metrics(
    con: duckdb.DuckDBPyConnection, run_id: int, metrics: list[Metric], split: str
) -> None:
    """Replace the run's metrics for ``split`` with ``metrics`` in one transaction."""
    with transaction(con):
        con.execute("delete from models.metrics where run_id = ? and split = ?", [run_id, split])
        for m in metrics:
            con.execute(
                "insert into models.metrics values (?, ?, ?, ?, ?, ?, ?)",
                [run_id, m.name, m.k, m.value, m.ci_low, m.ci_high, split],
            )


def latest_run(con: duckdb.DuckDBPyConnection, kind: str) -> dict | None:
    """The latest published run of a kind as a dict, or None."""
    cur = con.execute("select * from main.latest_runs where kind = ?", [kind])
    cols = [d[0] for d in cur.description]
    rows = cur.fetchall()
    return dict(zip(cols, rows[0], strict=True)) if rows else None


# Tables of per-row vectors, with their index column (allow-list for the SQL below).
VECTOR_TABLES: dict[str, str] = {
    "models.user_factors": "user_idx",
    "models.book_factors": "book_idx",
    "models.book_implicit": "book_idx",
}


def read_vectors(con: duckdb.DuckDBPyConnection, table: str, run_id: int) -> np.ndarray | None:
    """A run's vectors from ``table`` as float32, shape (n, k), row i = index i; None if none.

    Straight from Arrow: the list column's flat values reshaped, no Python loop over rows.
    """
    idx = VECTOR_TABLES[table]
    rows = con.sql(
        f"select vector from {table} where run_id = $run_id order by {idx}",
        params={"run_id": run_id},
    ).to_arrow_table()
    if rows.num_rows == 0:
        return None
    flat = rows.column("vector").combine_chunks().flatten().to_numpy()
    return flat.reshape(rows.num_rows, -1).astype(np.float32)


def read_weights(con: duckdb.DuckDBPyConnection, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    """A run's stored item-item weights as (neighbours int32, weights float32), shape
    (n_books, k_store), heaviest first, -1 / 0 padding."""
    n_books = int(scalar(con, "select count(*) from models.run_books where run_id = ?", [run_id]))
    table = con.sql(
        "select book_idx, rank, neighbour_idx, weight from models.book_weights "
        "where run_id = $run_id",
        params={"run_id": run_id},
    ).to_arrow_table()
    book, rank = (table.column(c).to_numpy() for c in ("book_idx", "rank"))
    k = int(rank.max()) if len(rank) else 1
    neighbours = np.full((n_books, k), -1, dtype=np.int32)
    weights = np.zeros((n_books, k), dtype=np.float32)
    neighbours[book, rank - 1] = table.column("neighbour_idx").to_numpy()
    weights[book, rank - 1] = table.column("weight").to_numpy()
    return neighbours, weights


def read_model(con: duckdb.DuckDBPyConnection, run_id: int, *, users: bool = True) -> Any:
    """A published run back as its model (FactorModel, ItemWeightsModel or BlendModel), indexed
    as the run was fitted. Weights and blend models draw on users' ratings: callers give them
    the ratings to use with ``with_history``. ``users=False`` leaves the users' factors and
    biases out (a fold-in needs only the books' side)."""
    kind = scalar(con, "select kind from models.runs where run_id = ?", [run_id])
    if kind is None:
        raise ShelfwiseError(f"no run {run_id}")
    entry = spec(kind)

    def biases(table: str, idx: str) -> np.ndarray | None:
        arr = con.execute(
            f"select bias from {table} where run_id = ? order by {idx}", [run_id]
        ).fetchnumpy()["bias"]
        return np.asarray(arr, dtype=np.float64) if len(arr) else None

    info = json.loads(
        scalar(con, "select coalesce(info, '{}') from models.runs where run_id = ?", [run_id])
    )
    params = json.loads(scalar(con, "select params from models.runs where run_id = ?", [run_id]))
    if entry.blend:
        n_users = int(
            scalar(con, "select count(*) from models.run_users where run_id = ?", [run_id])
        )
        parts = [read_model(con, int(r), users=users) for r in info["component_runs"]]
        return assemble(
            kind,
            parts,
            np.asarray(info["weights"]),
            n_users=n_users,
            predicts_ratings=entry.predicts_ratings,
            spreads=info["spreads"],
            info=info,
        )
    if entry.book_weights:
        neighbours, weights = read_weights(con, run_id)
        return ItemWeightsModel(
            kind,
            global_mean=float(info.get("global_mean", 0.0)),
            user_bias=biases("models.user_bias", "user_idx") if users else None,
            book_bias=biases("models.book_bias", "book_idx"),
            neighbours=neighbours,
            weights=weights,
            k=int(params.get("k", 0)) or neighbours.shape[1],
            damping=float(params.get("damping", 0.0)),
            predicts_ratings=entry.predicts_ratings,
            info=info,
        )
    return FactorModel(
        kind,
        global_mean=float(info.get("global_mean", params.get("global_mean", 0.0))),
        user_bias=biases("models.user_bias", "user_idx") if users else None,
        book_bias=biases("models.book_bias", "book_idx"),
        user_factors=read_vectors(con, "models.user_factors", run_id) if users else None,
        book_factors=read_vectors(con, "models.book_factors", run_id),
        book_implicit=read_vectors(con, "models.book_implicit", run_id),
        predicts_ratings=spec(kind).predicts_ratings,
        info=info,
    )
