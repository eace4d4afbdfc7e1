"""Hyper-parameter search on a validation split carved from the training ratings only."""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import scipy.sparse as sp

from analytics.metrics import per_user_ranking
from shelfwise.params import KINDS, make_params
from warehouse.db import table_exists, transaction

log = logging.getLogger(__name__)

Progress = Callable[[str], None]

# One row per `shelfwise tune KIND`: the chosen params (a params dataclass, serialised, so
# make_params accepts them as they are), how they scored on validation, and every trial.
TUNED_DDL = """
create table if not exists models.tuned (
    tune_id     bigint not null,
    kind        varchar not null,
    params      json not null,
    metric      varchar not null,
    value       double not null,
    tuned_at    timestamp not null,
    input_fingerprint varchar not null,
    source      varchar not null,
    validation_fraction double not null,
    seed        bigint not null,
    seconds     double not null,
    trials      json not null
);
"""

# The search space of each kind. A key is one axis (name -> values) or a block of axes searched
# jointly (tuple of names -> {name: values}, every combination), for parameters that only make sense
# together: ALS's regularisation is absolute while its confidence scales with alpha and the weighting,
# so one axis at a time gets stuck. Keys come in the order that matters most; the start point is the
# defaults in params.py.
Space = Mapping[str | tuple[str, ...], Any]

SPACES: dict[str, dict[str | tuple[str, ...], Any]] = {
    "baseline": {
        "reg_user": [1.0, 2.0, 3.0, 5.0, 8.0, 13.0],
        "reg_book": [2.0, 5.0, 10.0, 20.0, 40.0],
    },
    "svd": {
        "k": [2, 4, 8, 12, 18, 24, 32, 48],
        "remove_biases": [True, False],
        "reg_user": [2.0, 3.0, 5.0, 8.0],
        "reg_book": [5.0, 10.0, 20.0],
    },
    "mf": {
        "implicit_reg": [0.0, 30.0, 60.0, 100.0, 300.0],
        "reg": [0.15, 0.2, 0.22, 0.25, 0.3],
        "factors": [16, 32, 64],
        "reg_bias": [2.0, 5.0, 10.0],
    },
    "als": {
        ("weighting", "alpha", "regularization"): {
            "weighting": ["rating", "binary", "bm25"],
            "alpha": [2.0, 10.0, 30.0, 100.0],
            "regularization": [10.0, 50.0, 200.0, 500.0],
        },
        "factors": [16, 32, 64, 128, 256],
    },
}


def axis_names(space: Space) -> list[str]:
    """Every parameter name a space searches, in order."""
    return [n for key in space for n in (key if isinstance(key, tuple) else (key,))]


def _moves(space: Space) -> list[list[dict[str, Any]]]:
    """Each key of a space as the list of partial points it tries."""
    out = []
    for key, values in space.items():
        if isinstance(key, tuple):
            out.append(
                [dict(zip(key, combo)) for combo in itertools.product(*(values[n] for n in key))]
            )
        else:
            out.append([{key: v} for v in values])
    return out


def with_axes(
    kind: str, given: Mapping[str, list[Any]], *, only: bool = False
) -> dict[str | tuple[str, ...], Any]:
    """``SPACES[kind]`` with some axes' values replaced (inside a block too), or only ``given``."""
    if only:
        return dict(given)
    space: dict[str | tuple[str, ...], Any] = {}
    for key, values in SPACES[kind].items():
        if isinstance(key, tuple):
            space[key] = {n: list(given.get(n, values[n])) for n in key}
        else:
            space[key] = list(given.get(key, values))
    for name, values in given.items():
        if name not in axis_names(space):
            space[name] = list(values)
    return space


# mf is fitted once per point for up to this many iterations; the best iteration on validation
# becomes its `iterations` (early stopping), so iterations is not an axis.
MF_MAX_ITERATIONS = 30
MF_PATIENCE = 3


def objective(kind: str) -> str:
    """The validation metric of ``kind``: RMSE for rating models, NDCG@10 for ALS."""
    return "ndcg@10" if kind == "als" else "rmse"


def _bigger_is_better(kind: str) -> bool:
    return kind == "als"


# ----------------------------------------------------------------------------- the carve


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-mixed uint64 hash of each uint64."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def carve_validation(
    train: sp.csr_matrix, *, fraction: float = 0.15, random_state: int = 0
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split the training cells into (fit, validation), by a seeded hash of each (user, book).

    A cell's side depends only on its own indices and the seed, never on other cells or their
    ratings, so the carve is reproducible and cannot be moved by anything outside ``train``.

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
        The train split; the test split is never an input.
    fraction : float
        Share of train cells held out for validation, in (0, 1).
    random_state : int
        Seed of the hash.

    Returns
    -------
    (fit, validation) : csr_matrix, same shape and dtype, partitioning ``train``'s stored cells.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    train = sp.csr_matrix(train)
    users = np.repeat(np.arange(train.shape[0], dtype=np.uint64), np.diff(train.indptr))
    cell = users * np.uint64(train.shape[1]) + train.indices.astype(np.uint64)
    seed = _mix64(np.array([random_state % (1 << 64)], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        u = _mix64(cell ^ seed) >> np.uint64(11)  # 53 bits -> a uniform double in [0, 1)
    held = u.astype(np.float64) / float(1 << 53) < fraction

    def part(mask: np.ndarray) -> sp.csr_matrix:
        indptr = np.zeros(train.shape[0] + 1, dtype=np.int64)
        np.cumsum(
            np.bincount(users[mask].astype(np.int64), minlength=train.shape[0]), out=indptr[1:]
        )
        return sp.csr_matrix((train.data[mask], train.indices[mask], indptr), shape=train.shape)

    return part(~held), part(held)


# ----------------------------------------------------------------------------- scoring one point


def _rmse(model: Any, validation: sp.csr_matrix) -> float:
    users = np.repeat(np.arange(validation.shape[0]), np.diff(validation.indptr))
    return float(
        np.sqrt(np.mean((model.predict(users, validation.indices) - validation.data) ** 2))
    )


def evaluate_point(
    kind: str, params: Any, fit: sp.csr_matrix, validation: sp.csr_matrix, *, k: int = 10
) -> tuple[float, dict[str, Any]]:
    """Fit ``kind`` with ``params`` on ``fit``, score it on ``validation``.

    Returns (metric value, the params actually chosen): for mf, the iteration count with the best
    validation RMSE replaces ``params.iterations`` (early stopping).
    """
    from shelfwise.pipeline import fit_model, relevant_test

    if kind == "mf":
        from analytics.mf import fit_mf

        p = dataclasses.replace(params, iterations=MF_MAX_ITERATIONS)
        model = fit_mf(fit, **dataclasses.asdict(p), validation=validation, patience=MF_PATIENCE)
        curve = model.info["validation_rmse"]
        best = int(np.argmin(curve))
        return float(curve[best]), {**dataclasses.asdict(params), "iterations": best + 1}
    model = fit_model(kind, fit, params)
    if kind == "als":
        ndcg = per_user_ranking(model.scores, fit, relevant_test(validation), k=k).ndcg
        return float(ndcg.mean()) if len(ndcg) else float("nan"), dataclasses.asdict(params)
    return _rmse(model, validation), dataclasses.asdict(params)


# ----------------------------------------------------------------------------- the search


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    value: float
    seconds: float


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
    step: Progress = lambda message: None,
) -> TuneResult:
    """Choose ``kind``'s hyper-parameters on a validation carve of ``train``.

    Coordinate search: from the defaults, try every value of one axis (every combination of a
    block) with the others held at the best so far, keep the best, move to the next axis; repeat up
    to ``passes`` times or until a pass changes nothing. Each distinct point is fitted once. The test
    split is never an argument.

    Parameters
    ----------
    kind : str
    train : csr_matrix, shape (n_users, n_books)
    space : mapping, optional
        Defaults to ``SPACES[kind]`` (see there); every name must be a field of the kind's params.
    fraction, random_state : the validation carve (:func:`carve_validation`).
    passes : int
    step : callable(message)
        Progress hook.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    space = dict(SPACES[kind] if space is None else space)
    moves = _moves(space)
    for options in moves:  # unknown names fail here, before any fit
        for option in options[:1]:
            make_params(kind, option)
    names = axis_names(space)
    fit, validation = carve_validation(train, fraction=fraction, random_state=random_state)
    step(
        f"{kind}: {fit.nnz:,} fitting / {validation.nnz:,} validation ratings (seed {random_state})"
    )
    sign = -1.0 if _bigger_is_better(kind) else 1.0
    cache: dict[str, Trial] = {}

    def score(point: dict[str, Any]) -> Trial:
        params = make_params(kind, point)
        key = json.dumps(dataclasses.asdict(params), sort_keys=True)
        if key not in cache:
            start = time.perf_counter()
            value, chosen = evaluate_point(kind, params, fit, validation)
            cache[key] = Trial(chosen, value, time.perf_counter() - start)
            shown = ", ".join(f"{a}={point[a]}" for a in names if a in point)
            step(f"{kind}: [{len(cache)}] {shown} -> {objective(kind)} {value:.4f}")
        return cache[key]

    best: dict[str, Any] = {}
    best_trial = score(best)
    for _ in range(max(1, passes)):
        changed = False
        for options in moves:
            for option in options:
                candidate = {**best, **option}
                trial = score(candidate)
                if sign * trial.value < sign * best_trial.value - 1e-12:
                    best, best_trial, changed = candidate, trial, True
        if not changed:
            break
    return TuneResult(
        kind=kind,
        params=best_trial.params,
        metric=objective(kind),
        value=best_trial.value,
        trials=list(cache.values()),
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
    step: Progress = lambda message: None,
) -> TuneResult:
    """Search ``kind`` on the current matrix's train split and store the choice in ``models.tuned``.

    Only ``RatingData.train`` is passed on; the test split stays for ``shelfwise evaluate``.
    """
    from warehouse import store

    data = store.read_ratings(con)
    train, source, fingerprint = data.train, data.source, data.fingerprint
    del data  # nothing below can reach the test split
    start = time.perf_counter()
    result = search(
        kind,
        train,
        space=space,
        fraction=fraction,
        random_state=random_state,
        passes=passes,
        step=step,
    )
    seconds = time.perf_counter() - start
    con.execute(TUNED_DDL)
    with transaction(con):
        tune_id = con.execute("select coalesce(max(tune_id), 0) + 1 from models.tuned").fetchall()[
            0
        ][0]
        con.execute(
            """insert into models.tuned (tune_id, kind, params, metric, value, tuned_at, input_fingerprint,
                   source, validation_fraction, seed, seconds, trials)
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
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


def tuned_params(con: duckdb.DuckDBPyConnection, kind: str) -> dict[str, Any]:
    """The latest tuned parameters of ``kind``, or {} if never tuned."""
    if not table_exists(con, "models", "tuned"):
        return {}
    rows = con.execute(
        "select params from models.tuned where kind = ? order by tuned_at desc, tune_id desc limit 1",
        [kind],
    ).fetchall()
    if not rows:
        return {}
    from shelfwise.params import PARAMS

    params = json.loads(rows[0][0])
    known = {f.name for f in dataclasses.fields(PARAMS[kind])}
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
    from shelfwise.params import PARAMS, ParamError, parse_value

    fields = {f.name: f for f in dataclasses.fields(PARAMS[kind])}
    name, sep, values = item.partition("=")
    if not sep or name not in fields or not values:
        raise ValueError(f"{item!r}: expected NAME=V1,V2,... with NAME one of {', '.join(fields)}")
    try:
        out = [parse_value(name, raw, fields[name].default) for raw in values.split(",")]
        for value in out:  # refuse a value no fit could use now, not minutes into the search
            PARAMS[kind](**{name: value})
    except ParamError as exc:
        raise ValueError(f"{item!r}: {exc}") from exc
    return name, out
