"""The stage directory the warehouse host and the cluster share: Parquet out of DuckDB (once per
matrix build and export), factors back in.

Layout under the stage root::

    <matrix fingerprint>/<export>-<key>/cells/part=N/*.parquet   what Spark fits (user, book, value)
                                        biases/{users,books}.parquet   mf's SQL biases
                                        bm25.parquet                   als's BM25 statistics
                                        _SUCCESS                       written last: complete
    runs/<token>/{user_factors,book_factors}/*.parquet                 Spark's output, read back
    runs/<token>/checkpoints/                                          ALS lineage checkpoints
    logs/driver.log                                                    the JVM's log (local stage)

An export is keyed by the matrix build, the SQL file, its parameters and the input (the train
split or a digest of tune's carve), so a rebuilt matrix or a new weighting writes a new one and
an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from base.errors import ShelfwiseError
from warehouse.catalog import read_model

log = logging.getLogger(__name__)

# Rows per Parquet partition of an export: a few files per core on a cluster, one here.
ROWS_PER_PART = 4_000_000
MARKER = "_SUCCESS"


def is_remote(stage: str) -> bool:
    """An object-store or cluster URI (``s3://``, ``gs://``, ``hdfs://``...), not a local path."""
    return "://" in stage and not stage.startswith("file://")


def root(stage: str) -> str:
    """The stage as both sides name it: an absolute local path, or the URI as given."""
    if is_remote(stage):
        return stage.rstrip("/")
    return str(Path(stage.removeprefix("file://")).expanduser().resolve())


def check_writable(stage: str) -> None:
    """A local stage must exist (it is created) and take a file; a URI is checked by its first
    write, which fails the fit in one line too."""
    if is_remote(stage):
        return
    where = Path(root(stage))
    try:
        where.mkdir(parents=True, exist_ok=True)
        probe = where / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ShelfwiseError(
            f"--spark-stage {stage}: not writable ({exc.strerror or exc}); the warehouse host "
            "and the cluster both need to write there"
        ) from None


def exists(con: duckdb.DuckDBPyConnection, path: str) -> bool:
    """Whether ``path`` exists, asked through DuckDB so an ``s3://`` stage works the same way."""
    return bool(con.execute("select count(*) from glob($path)", {"path": path}).fetchall()[0][0])


def remove(path: str) -> None:
    """Delete a local stage folder (a remote one is left to the store's lifecycle rules)."""
    if not is_remote(path):
        shutil.rmtree(path, ignore_errors=True)


def digest(matrix: sp.csr_matrix) -> str:
    """A short digest of a matrix's cells and values (keys tune's carve exports)."""
    h = hashlib.sha256()
    m = sp.csr_matrix(matrix)
    for part in (np.asarray(m.shape), m.indptr, m.indices, m.data):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()[:16]


def as_arrow(matrix: sp.csr_matrix) -> pa.Table:
    """A csr matrix as (user_idx, book_idx, rating) columns."""
    m = sp.csr_matrix(matrix)
    users = np.repeat(np.arange(m.shape[0], dtype=np.int32), np.diff(m.indptr))
    return pa.table(
        {
            "user_idx": users,
            "book_idx": m.indices.astype(np.int32),
            "rating": m.data.astype(np.float32),
        }
    )


@dataclass(frozen=True)
class Export:
    """A complete export on the stage: ``cells`` is what Spark reads."""

    path: str

    @property
    def cells(self) -> str:
        return f"{self.path}/cells"


def export(
    con: duckdb.DuckDBPyConnection,
    stage: str,
    *,
    fingerprint: str,
    model: str,
    params: dict[str, Any],
    value: str,
    extras: dict[str, str],
    carve: sp.csr_matrix | None = None,
) -> Export:
    """Run ``sql/<model>.sql`` over the train split (or ``carve``) and copy it to the stage.

    Parameters
    ----------
    con : the warehouse connection
    stage : str
        The stage root (``EngineConfig.stage``).
    fingerprint : str
        The matrix build; part of the path, so a rebuild never reuses an old export.
    model : str
        The export's name in ``warehouse.catalog.EXPORTS``.
    params : dict
        Its bound parameters.
    value : str
        The column Spark fits on (written as ``value``).
    extras : dict
        Further files: name -> a query over ``temp.spark_export`` (the export's rows).
    carve : csr_matrix, optional
        Fit on these cells instead of the train split (tune's carve).

    Returns
    -------
    Export, reused when a complete one with the same key is already there.
    """
    key = hashlib.sha256(
        json.dumps(
            {"params": params, "input": "train" if carve is None else digest(carve)},
            sort_keys=True,
        ).encode()
    ).hexdigest()[:12]
    name = model.split("/")[-1]
    out = Export(f"{root(stage)}/{fingerprint}/{name}-{key}")
    if exists(con, f"{out.path}/{MARKER}"):
        log.info("reusing the export %s", out.path)
        return out
    remove(out.path)  # a half-written earlier attempt
    if not is_remote(out.path):
        Path(out.path).mkdir(parents=True, exist_ok=True)
    try:
        if carve is None:
            con.execute(
                "create or replace temp view spark_input as "
                "select user_idx, book_idx, rating from matrix.ratings where split = 'train'"
            )
        else:
            con.register("spark_carve", as_arrow(carve))
            con.execute("create or replace temp view spark_input as select * from spark_carve")
        con.execute(f"create or replace temp table spark_export as {read_model(model).sql}", params)
        rows = int(con.execute("select count(*) from temp.spark_export").fetchall()[0][0])
        if rows == 0:
            raise ShelfwiseError("nothing to fit: the train split has no ratings to export")
        parts = max(1, math.ceil(rows / ROWS_PER_PART))
        # The value column is picked from a fixed set (the export's own column names).
        if value not in {"confidence", "residual"}:
            raise ValueError(f"unknown export column {value!r}")
        con.execute(
            f"copy (select user_idx, book_idx, {value} as value, user_idx % $parts as part "
            "from temp.spark_export) to $path (format parquet, partition_by (part), "
            "overwrite_or_ignore true)",
            {"parts": parts, "path": out.cells},
        )
        for file, query in extras.items():
            con.execute(f"copy ({query}) to $path (format parquet)", {"path": f"{out.path}/{file}"})
        con.execute(
            "copy (select $rows as rows) to $path (format parquet)",
            {"rows": rows, "path": f"{out.path}/{MARKER}"},
        )
    except duckdb.Error as exc:
        remove(out.path)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise ShelfwiseError(f"could not write the export to {out.path}: {first}") from None
    finally:
        con.execute("drop table if exists temp.spark_export")
        con.execute("drop view if exists temp.spark_input")
        if carve is not None:
            con.unregister("spark_carve")
    log.info("exported %s rows to %s", f"{rows:,}", out.path)
    return out


def run_dir(stage: str) -> str:
    """A fresh folder for one Spark fit's output and checkpoints."""
    return f"{root(stage)}/runs/{uuid.uuid4().hex}"


def read_vectors(con: duckdb.DuckDBPyConnection, path: str, n_rows: int, rank: int) -> np.ndarray:
    """Spark's ``(id, features)`` factor Parquet as float32, shape (n_rows, rank); rows Spark
    never saw (no cells) are zero, as the local engine leaves them."""
    table = con.sql(
        "select id, features from read_parquet($glob)", params={"glob": f"{path}/*.parquet"}
    ).to_arrow_table()
    out = np.zeros((n_rows, rank), dtype=np.float32)
    if table.num_rows:
        ids = table.column("id").to_numpy()
        flat = table.column("features").combine_chunks().flatten().to_numpy()
        out[ids] = flat.reshape(table.num_rows, rank)
    return out


def read_column(
    con: duckdb.DuckDBPyConnection,
    path: str,
    index: str,
    column: str,
    n_rows: int,
    *,
    fill: float = 0.0,
) -> np.ndarray:
    """``column`` of an export's extra file by ``index`` (user_idx or book_idx), float64 shape
    (n_rows,), ``fill`` where absent."""
    if index not in {"user_idx", "book_idx"} or column not in {"bias", "idf"}:
        raise ValueError(f"unknown column {index}/{column}")
    table = con.sql(
        f"select {index}, {column} from read_parquet($path)", params={"path": path}
    ).fetchnumpy()
    out = np.full(n_rows, fill, dtype=np.float64)
    out[np.asarray(table[index], dtype=np.int64)] = table[column]
    return out


def read_scalars(con: duckdb.DuckDBPyConnection, path: str) -> dict[str, float]:
    """The first row of an export's extra file as floats (its run-wide statistics)."""
    cur = con.execute("select * from read_parquet($path) limit 1", {"path": path})
    names = [d[0] for d in cur.description]
    row = cur.fetchall()[0]
    return {n: float(v) for n, v in zip(names, row, strict=True)}
