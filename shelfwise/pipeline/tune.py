"""Hyper-parameter search on a validation carve of the train split; the choice lands in
models.tuned."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import scipy.sparse as sp

from analytics import search as searching
from analytics.metrics import per_user_ranking, relevant_test
from analytics.mf import fit_mf
from analytics.search import Space, Trial
from base.config import EngineConfig
from base.errors import ParamError, ShelfwiseError
from base.params import parse_value
from base.registry import fittable, make_params, param_defaults, spec
from shelfwise.pipeline.fit import Progress, engine_params
from shelfwise.pipeline.fitting import fit_model
from warehouse import store
from warehouse.db import transaction

log = logging.getLogger(__name__)

# mf is fitted once per point for up to this many iterations; the best iteration on validation
# becomes its `iterations` (early stopping), so iterations is not an axis.
MF_MAX_ITERATIONS = 30
MF_PATIENCE = 3


def objective(kind: str) -> str:
    """The validation metric of ``kind`` (the registry's ``objective``)."""
    return spec(kind).objective


def with_axes(kind: str, given: dict[str, list[Any]], *, only: bool = False) -> dict:
    """The registry's search space of ``kind`` with some axes replaced or added, or only
    ``given``."""
    return searching.with_axes(spec(kind).space, given, only=only)


# ----------------------------------------------------------------------------- scoring one point

# Fits one point: ``fitter(kind, fit_matrix, params) -> model`` (pipeline.fitting.fit_model's
# signature); the Spark engine's SparkFit is one.
Fitter = Callable[[str, sp.csr_matrix, Any], Any]


def _rmse(model: Any, validation: sp.csr_matrix) -> float:
    users = np.repeat(np.arange(validation.shape[0]), np.diff(validation.indptr))
    return float(
        np.sqrt(np.mean((model.predict(users, validation.indices) - validation.data) ** 2))
    )


def evaluate_point(
    kind: str,
    params: Any,
    fit: sp.csr_matrix,
    validation: sp.csr_matrix,
    *,
    k: int = 10,
    fitter: Fitter | None = None,
) -> tuple[float, dict[str, Any]]:
    """Fit ``kind`` with ``params`` on ``fit`` (locally, or with ``fitter``), score it on
    ``validation``.

    Returns (metric value, the params actually chosen): for a local mf, the iteration count with
    the best validation RMSE replaces ``params.iterations`` (early stopping); another fitter fits
    ``params.iterations`` as given.
    """
    if kind == "mf" and fitter is None:
        p = dataclasses.replace(params, iterations=MF_MAX_ITERATIONS)
        model = fit_mf(fit, p, validation=validation, patience=MF_PATIENCE)
        curve = model.info["validation_rmse"]
        best = int(np.argmin(curve))
        return float(curve[best]), {**dataclasses.asdict(params), "iterations": best + 1}
    model = (fitter or fit_model)(kind, fit, params)
    if objective(kind) == "ndcg@10":
        ndcg = per_user_ranking(model.scores, fit, relevant_test(validation), k=k).ndcg
        return float(ndcg.mean()) if len(ndcg) else float("nan"), dataclasses.asdict(params)
    return _rmse(model, validation), dataclasses.asdict(params)


# ----------------------------------------------------------------------------- the search


@dataclass(frozen=True)
class TuneResult:
    kind: str
    params: dict[str, Any]
    metric: str
    value: float
    trials: list[Trial]
    validation_fraction: float
    seed: int


def search(
    kind: str,
    train: sp.csr_matrix,
    *,
    space: Space | None = None,
    fraction: float = 0.15,
    random_state: int = 0,
    passes: int = 2,
    fitter: Fitter | None = None,
    fixed: dict[str, Any] | None = None,
    step: Progress = lambda message: None,
) -> TuneResult:
    """Choose ``kind``'s hyper-parameters on a validation carve of ``train``.

    Coordinate search (:func:`analytics.search.coordinate_search`) from the defaults over
    ``space`` (default: the registry's), each distinct point fitted once. The test split is never
    an argument.

    Parameters
    ----------
    kind : str
    train : csr_matrix, shape (n_users, n_books)
    space : mapping, optional
        Every name must be a field of the kind's params.
    fraction, random_state : the validation carve (:func:`analytics.search.carve_validation`).
    passes : int
    fitter : callable(kind, fit, params), optional
        Fits each point (default: this process, :func:`evaluate_point`).
    fixed : dict, optional
        Values every point takes (what ``fitter`` cannot vary); never axes of ``space``.
    step : callable(message)
        Progress hook.
    """
    if kind not in fittable():
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(fittable())}")
    if spec(kind).blend:
        raise ShelfwiseError(
            f"{kind} fits its weights on a validation carve at every fit: there is nothing to "
            "tune; tune its components instead"
        )
    space = dict(spec(kind).space if space is None else space)
    for options in searching.moves(space):  # unknown names fail here, before any fit
        for option in options[:1]:
            make_params(kind, option)
    names = searching.axis_names(space)
    fit, validation = searching.carve_validation(
        train, fraction=fraction, random_state=random_state
    )
    step(
        f"{kind}: {fit.nnz:,} fitting / {validation.nnz:,} validation ratings (seed {random_state})"
    )
    cache: dict[str, Trial] = {}

    def score(point: dict[str, Any]) -> Trial:
        params = make_params(kind, {**(fixed or {}), **point})
        key = json.dumps(dataclasses.asdict(params), sort_keys=True)
        if key not in cache:
            start = time.perf_counter()
            value, chosen = evaluate_point(kind, params, fit, validation, fitter=fitter)
            cache[key] = Trial(chosen, value, time.perf_counter() - start)
            shown = ", ".join(f"{a}={point[a]}" for a in names if a in point)
            step(f"{kind}: [{len(cache)}] {shown} -> {objective(kind)} {value:.4f}")
        return cache[key]

    best, trials = searching.coordinate_search(
        space, score, bigger_is_better=objective(kind) != "rmse", passes=passes
    )
    return TuneResult(
        kind=kind,
        params=best.params,
        metric=objective(kind),
        value=best.value,
        trials=trials,
        validation_fraction=fraction,
        seed=random_state,
    )


# ----------------------------------------------------------------------------- the warehouse side


def tune(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    *,
    space: Space | None = None,
    fraction: float = 0.15,
    random_state: int = 0,
    passes: int = 2,
    engine: EngineConfig | None = None,
    step: Progress = lambda message: None,
) -> TuneResult:
    """Search ``kind`` on the current matrix's train split and store the choice in ``models.tuned``.

    Only ``RatingData.train`` is passed on; the test split stays for ``shelfwise evaluate``. With
    a Spark ``engine`` every point is fitted on Spark (the carve exported once, one session for
    the whole search); Spark's mf has no SVD++ term, so ``implicit_reg`` is not searched.
    """
    engine = engine or EngineConfig()
    engine_params(kind, make_params(kind), engine)  # a kind the engine cannot fit: fail now
    data = store.read_ratings(con)
    train, source, fingerprint = data.train, data.source, data.fingerprint
    del data  # nothing below can reach the test split
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        fitter, fixed = None, {}
        if engine.engine == "spark":
            from shelfwise.pipeline import spark

            spark.check(engine)
            fitter = stack.enter_context(
                spark.SparkFit(con, engine, fingerprint=fingerprint, shape=train.shape, step=step)
            )
            space = spark.spark_space(kind, dict(spec(kind).space if space is None else space))
            fixed = spark.fixed_params(kind)
        result = search(
            kind,
            train,
            space=space,
            fraction=fraction,
            random_state=random_state,
            passes=passes,
            fitter=fitter,
            fixed=fixed,
            step=step,
        )
    seconds = time.perf_counter() - start
    with transaction(con):
        tune_id = con.execute("select coalesce(max(tune_id), 0) + 1 from models.tuned").fetchall()[
            0
        ][0]
        con.execute(
            """insert into models.tuned (tune_id, kind, params, metric, value, tuned_at,
                   input_fingerprint, source, validation_fraction, seed, seconds, trials)
               values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            [
                tune_id,
                kind,
                json.dumps(result.params, sort_keys=True),
                result.metric,
                result.value,
                store.now(),
                fingerprint,
                source,
                fraction,
                random_state,
                seconds,
                json.dumps(
                    [dataclasses.asdict(t) for t in result.trials],
                    sort_keys=True,
                    default=_json_number,
                ),
            ],
        )
    return result


def _json_number(o: object) -> object:
    if isinstance(o, np.floating | np.integer):
        return o.item()
    raise TypeError(type(o).__name__)


def tuned_params(con: duckdb.DuckDBPyConnection, kind: str) -> dict[str, Any]:
    """The latest tuned parameters of ``kind``, or {} if never tuned."""
    rows = con.execute(
        "select params from models.tuned where kind = ? "
        "order by tuned_at desc, tune_id desc limit 1",
        [kind],
    ).fetchall()
    if not rows:
        return {}
    params = json.loads(rows[0][0])
    known = set(param_defaults(kind))
    stale = sorted(set(params) - known)
    if stale:
        # Tuned before a parameter was renamed or removed: keep the rest rather than fail every fit.
        log.warning(
            "ignoring tuned %s parameter(s) the model no longer has: %s", kind, ", ".join(stale)
        )
    return {k: v for k, v in params.items() if k in known}


def params_for(
    con: duckdb.DuckDBPyConnection, kind: str, overrides: dict[str, Any] | None = None
) -> Any:
    """Defaults, then tuned values, then explicit overrides: what ``fit`` and ``refresh`` use."""
    return make_params(kind, {**tuned_params(con, kind), **(overrides or {})})


def parse_axis(item: str, kind: str) -> tuple[str, list[Any]]:
    """``NAME=V1,V2,...`` -> (name, typed values) for a search axis of ``kind``."""
    defaults = param_defaults(kind)
    name, sep, values = item.partition("=")
    if not sep or name not in defaults or not values:
        raise ValueError(
            f"{item!r}: expected NAME=V1,V2,... with NAME one of {', '.join(defaults)}"
        )
    try:
        out = [parse_value(name, raw, defaults[name]) for raw in values.split(",")]
        for value in out:  # refuse a value no fit could use now, not minutes into the search
            make_params(kind, {name: value})
    except ParamError as exc:
        raise ValueError(f"{item!r}: {exc}") from exc
    return name, out
