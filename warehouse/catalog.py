"""Every SQL file in ``sql/``: the run order of each list, and how a file's header is read.

One file holds one statement and is named schema/table after the relation it makes. Four lists
say what runs when, each checked against the files on disk by tests/test_sql_files.py:
``TABLES`` (fixed tables, created on every writable connect), ``MODELS`` (the transform, in
order), ``CHECKS`` (data checks run inside the transform) and ``VIEWS`` (the ``main`` views over
the latest published runs); ``EXPORTS`` are the Spark engine's Parquet exports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from base.errors import ShelfwiseError

# Schemas our SQL writes to, created before any table; identifiers from this list only.
SCHEMAS: tuple[str, ...] = ("raw", "staging", "core", "matrix", "models", "readers")

# Bookkeeping and model tables whose shape is fixed (data tables come from the loaders and MODELS).
TABLES: tuple[str, ...] = (
    "raw/load_log",
    "raw/rejects",
    "matrix/transform_log",
    "models/runs",
    "models/run_books",
    "models/run_users",
    "models/user_factors",
    "models/book_factors",
    "models/book_implicit",
    "models/user_bias",
    "models/book_bias",
    "models/book_neighbours",
    "models/book_weights",
    "models/projections",
    "models/metrics",
    "models/tuned",
    "models/digests",
    "readers/readers",
    "readers/shelf",
)

# The transform's run order.
MODELS: tuple[str, ...] = (
    "staging/stg_goodbooks__ratings",
    "staging/stg_goodbooks__books",
    "staging/stg_goodbooks__book_tags",
    "staging/stg_goodbooks__to_read",
    "staging/stg_ucsd__interactions",
    "staging/stg_ucsd__books",
    "core/book_top_tags",
    "core/books",
    "core/book_identifiers",
    "core/ratings",
    "core/user_activity",
    "core/book_activity",
    "matrix/filtered_ratings",
    "matrix/kcore_step",
    "matrix/users",
    "matrix/books",
    "matrix/ratings",
    "matrix/to_read",
)

CHECKS: tuple[str, ...] = (
    "checks/assert_core_books__unique_key",
    "checks/assert_matrix_users__contiguous_idx",
    "checks/assert_matrix_books__contiguous_idx",
    "checks/assert_matrix_ratings__unique_grain",
    "checks/assert_matrix_ratings__partitions_filtered",
)

# Plain-SQL views over the latest published run of each kind; latest_runs first, the rest read it.
VIEWS: tuple[str, ...] = (
    "main/latest_runs",
    "main/book_factors",
    "main/user_factors",
    "main/book_bias",
    "main/user_bias",
    "main/book_neighbours",
    "main/book_weights",
    "main/model_metrics",
)

# Queries the Spark engine copies out as Parquet (shelfwise.pipeline.spark), never run by the
# transform: each reads the temp view temp.spark_input (the train split, or tune's carve of it).
EXPORTS: tuple[str, ...] = (
    "exports/als_confidence",
    "exports/mf_residuals",
)

PARAM = re.compile(r"\$([a-z_]+)")
HEADER = re.compile(r"^--\s*materialized:\s*(view|table|ddl)(?:\s+([a-z_]+\.[a-z_]+))?\s*$", re.M)
RELATION = re.compile(r"\b([a-z_]+)\.([a-z_][a-z0-9_]*)\b")


def sql_dir() -> Path:
    """The ``sql/`` folder: beside the package in a checkout, inside it in a wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "sql", here / "_sql"):
        if candidate.is_dir():
            return candidate
    raise ShelfwiseError("the sql/ models folder is missing from this installation")


@dataclass(frozen=True)
class Model:
    """One SQL file: ``name`` is its path under ``sql/`` without ``.sql`` (``core/ratings``)."""

    name: str
    sql: str

    @property
    def relation(self) -> str:
        """Target relation: the path is schema/table unless the header names another target."""
        match = HEADER.search(self.sql)
        if match and match.group(2):
            return match.group(2)
        schema, table = self.name.split("/")
        return f"{schema}.{table}"

    @property
    def materialized(self) -> str:
        """``table``, ``view`` or ``ddl`` (a complete create statement, run as it is)."""
        match = HEADER.search(self.sql)
        return match.group(1) if match else "table"

    @property
    def parameters(self) -> list[str]:
        return sorted(set(PARAM.findall(self.sql)))

    def header(self, field: str) -> str | None:
        """The value of a ``-- field: value`` line of the opening comment, or None."""
        for line in self.sql.splitlines():
            if not line.startswith("--"):
                break
            key, sep, value = line[2:].strip().partition(":")
            if sep and key.strip().lower() == field:
                return value.strip()
        return None

    @property
    def upstream(self) -> tuple[str, ...]:
        """Relations the header's ``upstream:`` line names (schema.table)."""
        line = self.header("upstream") or ""
        return tuple(f"{s}.{t}" for s, t in RELATION.findall(line))


@cache
def read_model(name: str) -> Model:
    path = sql_dir() / f"{name}.sql"
    return Model(name, path.read_text(encoding="utf-8"))
