"""Run the SQL models in ``sql/`` in their fixed order, with bound parameters, in one
transaction."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from base.config import TransformConfig, to_json
from base.errors import ShelfwiseError
from warehouse.catalog import CHECKS, MODELS, Model, read_model
from warehouse.db import create_views, scalar, table_exists, transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelResult:
    model: str
    relation: str
    rows: int | None
    seconds: float


def _params(config: TransformConfig) -> dict[str, object]:
    return {
        "source": config.source,
        "min_user_ratings": config.min_user_ratings,
        "min_book_ratings": config.min_book_ratings,
        "test_fraction": config.test_fraction,
        "seed": config.seed,
        "split": config.split,
    }


def _execute(con: duckdb.DuckDBPyConnection, model: Model, params: dict[str, object]) -> None:
    bound = {k: params[k] for k in model.parameters}
    body = model.sql.rstrip().rstrip(";")
    if model.materialized == "view":
        if bound:
            raise ShelfwiseError(f"{model.name}: views cannot take bound parameters")
        con.execute(f"create or replace view {model.relation} as {body}")
    else:
        con.execute(f"create or replace table {model.relation} as {body}", bound)


def run_transforms(
    con: duckdb.DuckDBPyConnection,
    config: TransformConfig,
    *,
    on_model: Callable[[ModelResult], None] | None = None,
) -> list[ModelResult]:
    """Build ``core`` and ``matrix`` for ``config.source``; all or nothing.

    Checks run inside the same transaction, so a build that breaks one leaves the old matrix.
    """
    n_source = (
        scalar(con, "select count(*) from core.ratings where source = ?", [config.source])
        if table_exists(con, "core", "ratings")
        else None
    )
    params = _params(config)
    results: list[ModelResult] = []
    with transaction(con):
        transform_id = int(
            scalar(con, "select coalesce(max(transform_id), 0) + 1 from matrix.transform_log")
        )
        for name in MODELS:
            model = read_model(name)
            if name == "matrix/kcore_step":
                if not config.kcore:
                    continue
                result = _iterate_kcore(con, model, params)
            else:
                start = time.perf_counter()
                _execute(con, model, params)
                rows = (
                    None
                    if model.materialized == "view"
                    else int(scalar(con, f"select count(*) from {model.relation}"))
                )
                result = ModelResult(name, model.relation, rows, time.perf_counter() - start)
            log.info("%s: %s rows in %.2fs", result.relation, result.rows, result.seconds)
            results.append(result)
            if on_model:
                on_model(result)
            con.execute(
                "insert into matrix.transform_log values (?, ?, ?, ?, ?, ?, ?)",
                [
                    transform_id,
                    config.source,
                    result.relation,
                    result.rows,
                    result.seconds,
                    to_json(config),
                    datetime.now(UTC).replace(tzinfo=None),
                ],
            )
        if scalar(con, "select count(*) from matrix.ratings") == 0:
            raise ShelfwiseError(
                f"no {config.source} ratings survive the filters "
                f"(min_user_ratings={config.min_user_ratings}, "
                f"min_book_ratings={config.min_book_ratings}"
                + ("" if n_source is None else f"; {n_source:,} ratings before filtering")
                + "): load data or lower the thresholds"
            )
        run_checks(con)
        create_views(con)
        untitled = int(
            scalar(
                con,
                "select count(*) from matrix.books inner join core.books using (book_key) "
                "where core.books.title is null",
            )
        )
        if untitled:
            # Kept, not dropped: the ratings are real; only the books file lacks them (or was not
            # loaded).
            log.warning(
                "%s books in the matrix have no row in the books file: their ratings are kept, "
                "but they show without a title",
                f"{untitled:,}",
            )
    return results


def _iterate_kcore(
    con: duckdb.DuckDBPyConnection, model: Model, params: dict[str, object]
) -> ModelResult:
    start = time.perf_counter()
    rows = int(scalar(con, f"select count(*) from {model.relation}"))
    rounds = 0
    while True:
        _execute(con, model, params)
        rounds += 1
        new_rows = int(scalar(con, f"select count(*) from {model.relation}"))
        if new_rows == rows:
            break
        rows = new_rows
    log.info("k-core converged after %d pruning rounds", rounds)
    return ModelResult(model.name, model.relation, rows, time.perf_counter() - start)


def run_checks(con: duckdb.DuckDBPyConnection) -> None:
    """Each check returns offending rows; any row fails the build with the check's name."""
    for name in CHECKS:
        model = read_model(name)
        bad = con.execute(model.sql).fetchmany(3)
        if bad:
            raise ShelfwiseError(
                f"data check {name} failed: {bad[0]} (and maybe more); nothing was changed"
            )
