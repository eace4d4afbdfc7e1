"""Score the latest published run of every kind on the held-out split and store the metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
import numpy as np

from analytics.metrics import (
    Metric,
    ranking_and_auc,
    rating_metrics,
    relevant_test,
)
from base.config import PublishConfig
from base.errors import ShelfwiseError
from base.registry import REGISTRY, kinds, make_params
from shelfwise.pipeline.fit import Progress, fit_and_publish
from warehouse import store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalRow:
    kind: str
    run_id: int
    metric: Metric


def evaluate(
    con: duckdb.DuckDBPyConnection,
    *,
    k: int = 10,
    n_boot: int = 200,
    random_state: int = 0,
    data: store.RatingData | None = None,
    step: Progress = lambda message: None,
) -> list[EvalRow]:
    """Score the latest published run of every kind on the test split and store the metrics.

    Rating models get RMSE/MSE/MAE; every kind that ranks is scored on all unrated books for
    top-N metrics and the to-read AUC; the yardsticks (popularity, global mean) are refitted on
    train first and stored as runs of their own. A run fitted on another matrix build is skipped
    with a warning.
    """
    data = data or store.read_ratings(con)
    if data.test.nnz == 0:
        raise ShelfwiseError(
            "the test split is empty (the matrix was built with --test-fraction 0): "
            "nothing to evaluate on"
        )
    tu, tb = data.test.nonzero()
    truth = np.asarray(data.test[tu, tb]).ravel()
    relevant = relevant_test(data.test)
    to_read = store.read_to_read(con, data.shape)
    yardstick = PublishConfig(tsne=False, keep_runs=1)
    for kind in kinds(yardstick=True):
        fit_and_publish(con, kind, make_params(kind), yardstick, data=data)
    rows: list[EvalRow] = []
    for kind, entry in REGISTRY.items():
        run = store.latest_run(con, kind)
        if run is None:
            continue
        if run["input_fingerprint"] != data.fingerprint:
            log.warning(
                "%s run %d was fitted on another matrix build; refit it to evaluate",
                kind,
                run["run_id"],
            )
            continue
        step(f"evaluating {kind} (run {run['run_id']})")
        model = store.read_model(con, run["run_id"]).with_history(data.train)
        metrics: list[Metric] = []
        seed = random_state
        if entry.predicts_ratings:
            metrics += rating_metrics(
                tu, truth, model.predict(tu, tb), n_boot=n_boot, random_state=seed
            )
        if entry.ranks:
            metrics += ranking_and_auc(
                model.scores, data.train, relevant, to_read, k=k, n_boot=n_boot, random_state=seed
            )
        store.write_metrics(con, run["run_id"], metrics, split="test")
        rows += [EvalRow(kind, run["run_id"], m) for m in metrics]
    return rows
