"""Fit a blend over the latest published runs of its component kinds."""

from __future__ import annotations

import functools
import hashlib
import json
from typing import Any

import duckdb
import numpy as np
import scipy.sparse as sp

from analytics.blend import BlendModel, assemble, blend_weights
from base.errors import ShelfwiseError
from base.params import as_dict
from base.registry import REGISTRY, make_params, spec
from shelfwise.pipeline.fitting import fit_model
from warehouse import store


def component_runs(
    con: duckdb.DuckDBPyConnection, kind: str, params: Any, fingerprint: str
) -> dict[str, dict]:
    """The latest published run of each component of blend ``kind``, fitted on this matrix build.

    One-line errors for a component that is not a kind a blend can use, or has no current run.
    """
    entry = spec(kind)
    runs: dict[str, dict] = {}
    for component in params.kinds:
        other = REGISTRY.get(component)
        usable = (
            other is not None
            and not other.blend
            and not other.yardstick
            and (other.predicts_ratings if entry.predicts_ratings else other.ranks)
        )
        if not usable:
            need = "a kind that predicts ratings" if entry.predicts_ratings else "a kind that ranks"
            raise ShelfwiseError(f"{kind} components: {component!r} is not {need}")
        run = store.latest_run(con, component)
        if run is None or run["input_fingerprint"] != fingerprint:
            raise ShelfwiseError(
                f"{kind} needs a published {component} run on the current matrix: "
                f"run `shelfwise fit {component}` first"
            )
        runs[component] = run
    return runs


def fit_blend_run(
    con: duckdb.DuckDBPyConnection, kind: str, params: Any, data: store.RatingData
) -> BlendModel:
    """Weights on a validation carve of train (each component refitted there with its published
    run's params), applied to the published component runs themselves."""
    entry = spec(kind)
    runs = component_runs(con, kind, params, data.fingerprint)
    fitters = {}
    for component, run in runs.items():
        stored = {k: v for k, v in json.loads(run["params"]).items() if k != "kind"}
        fitters[component] = functools.partial(_fit, component, make_params(component, stored))
    weights, value = blend_weights(
        data.train, params, fitters=fitters, predicts_ratings=entry.predicts_ratings
    )
    parts = []
    for run in runs.values():
        model = store.read_model(con, int(run["run_id"]))
        parts.append(model.with_history(data.train))
    blend = assemble(
        kind, parts, weights, n_users=data.shape[0], predicts_ratings=entry.predicts_ratings
    )
    blend.info.update(
        components=list(runs),
        component_runs=[int(r["run_id"]) for r in runs.values()],
        weights=[float(w) for w in weights],
        spreads=[float(s) for s in blend.spreads],
        validation={"rmse" if entry.predicts_ratings else "ndcg@10": value},
    )
    return blend


# Component fits on a blend's validation carve, kept while the carve is the same one. With their
# default fraction and seed, rating_blend and ranking_blend carve train identically and share mf,
# so a refresh fits mf on the carve once, not twice. Fits are seeded: a kept fit is the fit.
_carve_fits: dict[tuple[str, str, str], Any] = {}


def _fit(kind: str, params: Any, train: sp.csr_matrix) -> Any:
    key = (_digest(train), kind, json.dumps(as_dict(params), sort_keys=True))
    if any(k[0] != key[0] for k in _carve_fits):
        _carve_fits.clear()  # another carve: the kept fits are of no further use
    if key not in _carve_fits:
        _carve_fits[key] = fit_model(kind, train, params)
    return _carve_fits[key]


def _digest(matrix: sp.csr_matrix) -> str:
    """A digest of a sparse matrix's shape and contents."""
    h = hashlib.blake2b(repr(matrix.shape).encode(), digest_size=16)
    for part in (matrix.indptr, matrix.indices, matrix.data):
        h.update(np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def stale_blend(con: duckdb.DuckDBPyConnection, kind: str) -> bool:
    """Whether the latest run of blend ``kind`` combines runs that are no longer the latest."""
    run = store.latest_run(con, kind)
    if run is None:
        return True
    info = json.loads(run["info"] or "{}")
    for component, run_id in zip(
        info.get("components", []), info.get("component_runs", []), strict=True
    ):
        latest = store.latest_run(con, component)
        if latest is None or int(latest["run_id"]) != int(run_id):
            return True
    return False
