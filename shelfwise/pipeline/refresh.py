"""One command that brings the warehouse up to date, doing only the steps whose inputs changed."""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from base.config import EngineConfig, LoadConfig, PublishConfig, TransformConfig, to_json
from base.errors import ShelfwiseError
from base.registry import kinds as registry_kinds
from base.registry import spec
from shelfwise.pipeline.blend import stale_blend
from shelfwise.pipeline.evaluate import evaluate
from shelfwise.pipeline.fit import (
    Progress,
    engine_params,
    fit_and_publish,
    run_engine,
    run_params,
)
from shelfwise.pipeline.tune import params_for
from warehouse import store
from warehouse.db import table_exists
from warehouse.load import load_dataset
from warehouse.runner import run_transforms

log = logging.getLogger(__name__)


@dataclass
class RefreshReport:
    loaded: list[str] = field(default_factory=list)
    transformed: bool = False
    fitted: dict[str, int] = field(default_factory=dict)
    evaluated: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.transformed or self.fitted or self.evaluated)


def last_data_dir(con: duckdb.DuckDBPyConnection, source: str) -> Path | None:
    """The folder the source's required file was last loaded from."""
    rows = con.execute(
        """select file from raw.load_log
           where source = ? and raw_table in ('goodbooks_ratings', 'ucsd_interactions')
           order by load_id desc limit 1""",
        [source],
    ).fetchall()
    return Path(rows[0][0]).parent if rows else None


def last_transform(con: duckdb.DuckDBPyConnection) -> TransformConfig | None:
    rows = con.execute(
        "select params from matrix.transform_log order by transform_id desc limit 1"
    ).fetchall()
    return TransformConfig(**json.loads(rows[0][0])) if rows else None


def refresh(
    con: duckdb.DuckDBPyConnection,
    *,
    source: str = "goodbooks",
    data_dir: Path | None = None,
    transform: TransformConfig | None = None,
    kinds: tuple[str, ...] | None = None,
    publish: PublishConfig | None = None,
    force: bool = False,
    engine: EngineConfig | None = None,
    step: Progress = lambda message: None,
) -> RefreshReport:
    """Load changed raw files, rebuild the matrix if its inputs changed, refit stale models,
    evaluate.

    A step runs when its inputs differ from what produced the current state: raw files by sha256,
    the matrix by the transform parameters and a load since, each model by the matrix fingerprint
    and its parameters (and the engine: a Spark run is stale for a local refresh, and the other
    way round). ``force`` refits every model. ``kinds`` defaults to the registry's default kinds.
    ``engine`` fits the kinds it can (als and mf on Spark) and the rest locally, one Spark
    session for the whole refresh.
    """
    kinds = registry_kinds(default=True) if kinds is None else kinds
    publish = publish or PublishConfig()
    report = RefreshReport()
    data_dir = data_dir or last_data_dir(con, source)
    if data_dir is not None:
        step(f"checking raw files in {data_dir}")
        files = load_dataset(con, LoadConfig(source=source, directory=data_dir))  # type: ignore[arg-type]
        report.loaded = [f.file for f in files if not f.skipped]
    else:
        # Also when another source's matrix exists: refreshing it instead would answer the wrong
        # question.
        raise ShelfwiseError(f"no {source} files loaded yet: give --data DIR (a {source} folder)")

    previous = last_transform(con)
    wanted = transform or previous or TransformConfig(source=source)  # type: ignore[arg-type]
    if (
        report.loaded
        or previous is None
        or to_json(previous) != to_json(wanted)
        or not table_exists(con, "matrix", "ratings")
    ):
        step("running SQL transforms")
        run_transforms(con, wanted)
        report.transformed = True

    data = store.read_ratings(con)
    engine = engine or EngineConfig()
    local = EngineConfig()
    spark_started = False
    with contextlib.ExitStack() as stack:
        for kind in kinds:
            where = engine if engine.engine in spec(kind).engines else local
            params = engine_params(kind, params_for(con, kind), where)
            run = store.latest_run(con, kind)
            current = (
                run is not None
                and run["input_fingerprint"] == data.fingerprint
                and json.loads(run["params"]) == run_params(kind, params)
                and run_engine(run) == where.engine
                # A blend is as current as its components: a refit of one refits the blend.
                and not (spec(kind).blend and stale_blend(con, kind))
            )
            if current and not force:
                continue
            if where.engine == "spark" and not spark_started:  # one session for all
                from shelfwise.pipeline import spark

                spark.check(where)
                stack.enter_context(spark.session(where))
                spark_started = True
            report.fitted[kind] = fit_and_publish(
                con, kind, params, publish, data=data, engine=where, step=step
            )

    if data.test.nnz == 0:
        log.warning(
            "the test split is empty (--test-fraction 0): "
            "models are fitted on everything and not evaluated"
        )
    elif report.fitted or _metrics_missing(con):
        evaluate(con, data=data, step=step)
        report.evaluated = True
    return report


def _metrics_missing(con: duckdb.DuckDBPyConnection) -> bool:
    rows = con.execute(
        """select count(*) from main.latest_runs as l
           where not exists (select 1 from models.metrics as m where m.run_id = l.run_id)"""
    ).fetchall()
    return rows[0][0] > 0
