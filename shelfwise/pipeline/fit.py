"""Fit a kind on the train split and publish it with its neighbours and maps, all or nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import duckdb

from analytics.neighbours import top_k_cosine
from analytics.projections import pca_2d, tsne_2d
from analytics.weights import ItemWeightsModel, heaviest_neighbours
from base.config import PublishConfig
from base.params import as_dict
from base.registry import spec
from shelfwise.pipeline.blend import component_runs, fit_blend_run
from shelfwise.pipeline.fitting import fit_model
from warehouse import store

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def fit_and_publish(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    params: Any,
    publish: PublishConfig,
    *,
    data: store.RatingData | None = None,
    step: Progress = lambda message: None,
    fail_before_commit: bool = False,
) -> int:
    """Fit ``kind`` on the train split, derive neighbours and 2-D maps, publish atomically.

    A fit that raises marks its run 'failed' and leaves the published run of that kind untouched.
    """
    data = data or store.read_ratings(con)
    params.check_fits(data.shape)  # before the run is recorded: nothing was tried
    if spec(kind).blend:
        component_runs(con, kind, params, data.fingerprint)  # every component published
    run_id = store.start_run(
        con, kind, data.source, {"kind": kind, **as_dict(params)}, data.fingerprint
    )
    start = time.perf_counter()
    try:
        step(
            f"{kind}: fitting on {data.train.nnz:,} ratings ({data.shape[0]:,} x {data.shape[1]:,})"
        )
        if spec(kind).blend:
            model = fit_blend_run(con, kind, params, data)
        else:
            model = fit_model(
                kind,
                data.train,
                params,
                on_iteration=lambda i, r: step(f"{kind}: iteration {i}, train RMSE {r:.4f}"),
            )
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
