"""Fit a kind on the train split and publish it with its neighbours and maps, all or nothing."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import duckdb

from analytics.neighbours import top_k_cosine
from analytics.projections import pca_2d, tsne_2d
from analytics.weights import ItemWeightsModel, heaviest_neighbours
from base.config import EngineConfig, PublishConfig
from base.params import as_dict
from base.registry import spec
from shelfwise.pipeline.blend import component_runs, fit_blend_run
from shelfwise.pipeline.fitting import fit_model
from warehouse import store

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def engine_params(kind: str, params: Any, engine: EngineConfig) -> Any:
    """The params a fit of ``kind`` on ``engine`` uses (a one-line error if it has no such fit).

    Every kind fits locally; the Spark engine's rules are in ``pipeline.spark``.
    """
    if engine.engine == "local":
        return params
    from shelfwise.pipeline.spark import engine_params as spark_params

    return spark_params(kind, params, engine)


def run_params(kind: str, params: Any) -> dict[str, Any]:
    """The params JSON of a run: the kind and its hyper-parameters (every reader rebuilds the
    params object from it). Where it was fitted is the run's ``info['engine']``."""
    return {"kind": kind, **as_dict(params)}


def run_engine(run: dict[str, Any]) -> str:
    """The engine a run was fitted on (runs from before engines existed: local)."""
    return str(json.loads(run.get("info") or "{}").get("engine", "local"))


def fit_and_publish(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    params: Any,
    publish: PublishConfig,
    *,
    data: store.RatingData | None = None,
    engine: EngineConfig | None = None,
    step: Progress = lambda message: None,
    fail_before_commit: bool = False,
) -> int:
    """Fit ``kind`` on the train split, derive neighbours and 2-D maps, publish atomically.

    ``engine`` says where the fit runs (default: this process), recorded as the run's
    ``info['engine']`` (Spark fits add ``spark_version`` and their settings); a Spark fit reads
    the train split from the warehouse itself, so ``data`` is not read for it. A fit that raises
    marks its run 'failed' and leaves the published run of that kind untouched.
    """
    engine = engine or EngineConfig()
    params = engine_params(kind, params, engine)
    if engine.engine == "spark":
        from shelfwise.pipeline import spark

        source, fingerprint = store.matrix_fingerprint(con)
        shape = data.shape if data is not None else spark.matrix_shape(con)
        spark.check(engine)  # Java, master, stage: before the run is recorded
    else:
        data = data or store.read_ratings(con)
        source, fingerprint, shape = data.source, data.fingerprint, data.shape
    params.check_fits(shape)  # before the run is recorded: nothing was tried
    if spec(kind).blend:
        component_runs(con, kind, params, fingerprint)  # every component published
    run_id = store.start_run(con, kind, source, run_params(kind, params), fingerprint)
    start = time.perf_counter()
    try:
        if engine.engine == "spark":
            with spark.SparkFit(
                con, engine, fingerprint=fingerprint, shape=shape, step=step
            ) as fitter:
                model = fitter.fit(kind, params)
        else:
            assert data is not None
            step(f"{kind}: fitting on {data.train.nnz:,} ratings ({shape[0]:,} x {shape[1]:,})")
            if spec(kind).blend:
                model = fit_blend_run(con, kind, params, data)
            else:
                model = fit_model(
                    kind,
                    data.train,
                    params,
                    on_iteration=lambda i, r: step(f"{kind}: iteration {i}, train RMSE {r:.4f}"),
                )
        # Stored with the run, so a reader can tell engines apart by this field alone.
        model.info["engine"] = engine.engine
        neighbours = projections = None
        if isinstance(model, ItemWeightsModel):
            step(f"{kind}: top-{publish.neighbours} neighbours by weight")
            neighbours = heaviest_neighbours(model.neighbours, model.weights, publish.neighbours)
        if model.book_factors is not None:
            step(f"{kind}: top-{publish.neighbours} cosine neighbours")
            want_tsne = publish.tsne and model.book_factors.shape[0] > 10
            # One neighbour search serves the table and the t-SNE affinities (3 x perplexity 30).
            knn = top_k_cosine(
                model.book_factors, k=max(publish.neighbours, 90 if want_tsne else 0)
            )
            neighbours = (knn[0][:, : publish.neighbours], knn[1][:, : publish.neighbours])
            projections = {"pca": pca_2d(model.book_factors)}
            if want_tsne:
                step(f"{kind}: t-SNE map of {model.book_factors.shape[0]:,} books")
                projections["tsne"] = tsne_2d(model.book_factors, random_state=42, knn=knn)
        step(f"{kind}: publishing run {run_id}")
        store.publish_run(
            con,
            run_id,
            model,
            neighbours=neighbours,
            projections=projections,
            keep_runs=publish.keep_runs,
            seconds=time.perf_counter() - start,
            fail_before_commit=fail_before_commit,
        )
    except BaseException as exc:
        store.fail_run(con, run_id, f"{type(exc).__name__}: {exc}")
        raise
    return run_id
