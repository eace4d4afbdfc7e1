"""Blends: a weighted sum of other fitted models, weights chosen on a validation carve of train."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import nnls

from analytics.metrics import per_user_ranking, relevant_test
from analytics.search import carve_validation
from base.params import BlendParams

# Relative weights tried for each component after the first (whose weight is 1), on the
# components' scores divided by their spread.
RANK_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.5)
# Validation users a ranking blend's weights are chosen on at most (a seeded sample).
RANK_SAMPLE = 5000
# Users scored at once while the grid is searched.
RANK_BLOCK = 1024


@dataclass(frozen=True)
class BlendModel:
    """``sum_k w_k m_k``: predictions ``sum w_k rhat_k``; scores ``sum w_k s_k / spread_k``.

    Attributes
    ----------
    kind : str
    components : tuple of fitted models (FactorModel or ItemWeightsModel)
    weights : ndarray of float64, shape (n_components,)
    spreads : ndarray of float64, shape (n_components,)
        Standard deviation of each component's scores on a sample of users, so that a weight
        means the same whatever a model's score scale.
    predicts_ratings : bool
    info : dict
    """

    kind: str
    components: tuple[Any, ...]
    weights: np.ndarray
    spreads: np.ndarray
    predicts_ratings: bool
    info: dict = field(default_factory=dict)

    user_factors = None
    book_factors = None
    user_bias = None
    book_bias = None
    global_mean = 0.0

    def with_history(self, history: sp.csr_matrix) -> BlendModel:
        """The blend with every component that draws on ratings drawing on ``history``."""
        parts = tuple(m.with_history(history) for m in self.components)
        return dataclasses.replace(self, components=parts)

    def predict(self, users: np.ndarray, books: np.ndarray) -> np.ndarray:
        if not self.predicts_ratings:
            raise ValueError(f"{self.kind} scores rank books; it does not predict ratings")
        out = sum(
            w * m.predict(users, books) for w, m in zip(self.weights, self.components, strict=True)
        )
        return np.clip(np.asarray(out, dtype=np.float64), 1.0, 5.0)

    def scores(self, users: np.ndarray) -> np.ndarray:
        raw = [
            m.scores(users) if w != 0 else m.scores(users[:0])
            for w, m in zip(self.weights, self.components, strict=True)
        ]
        if not self.weights.any():
            return np.zeros((len(users), raw[0].shape[1]), np.float32)
        return _combine(self.weights, self.spreads, raw)


def score_spread(model: Any, n_users: int, *, sample: int = 2000, seed: int = 0) -> float:
    """Standard deviation of ``model``'s scores over a seeded sample of users (1 if flat)."""
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(n_users, size=min(sample, n_users), replace=False))
    spread = float(np.std(model.scores(users)))
    return spread if spread > 0 and np.isfinite(spread) else 1.0


def blend_weights(
    train: sp.csr_matrix,
    params: BlendParams,
    *,
    fitters: Mapping[str, Callable[[sp.csr_matrix], Any]],
    predicts_ratings: bool,
) -> tuple[np.ndarray, float]:
    """Choose the weights of a blend on a validation carve of ``train``.

    Each component is fitted on the carve's fitting part (``fitters[kind](matrix)`` returns a
    fitted model) and scored on its validation part. A rating blend takes the non-negative least
    squares weights of the components' predicted ratings (stacking, no intercept). A ranking blend
    scores each component divided by its spread and tries every combination of ``RANK_GRID`` for
    the weights after the first (fixed at 1), keeping the best validation NDCG@10 on a seeded
    sample of at most ``RANK_SAMPLE`` users. The test split is never an input.

    Returns
    -------
    (weights float64 shape (n_components,), validation value: RMSE or NDCG@10)
    """
    fit, validation = carve_validation(
        train, fraction=params.validation_fraction, random_state=params.seed
    )
    models = [make(fit) for make in fitters.values()]
    if predicts_ratings:
        users = np.repeat(np.arange(validation.shape[0]), np.diff(validation.indptr))
        preds = np.column_stack([m.predict(users, validation.indices) for m in models])
        weights, _ = nnls(preds, validation.data.astype(np.float64))
        if not weights.any():
            weights = np.full(len(models), 1.0 / len(models))
        rmse = float(np.sqrt(np.mean((np.clip(preds @ weights, 1, 5) - validation.data) ** 2)))
        return weights, rmse
    relevant = relevant_test(validation)
    rng = np.random.default_rng(params.seed)
    candidates = np.flatnonzero(np.diff(relevant.indptr) > 0)
    chosen = np.sort(rng.choice(candidates, size=min(RANK_SAMPLE, len(candidates)), replace=False))
    mask = np.zeros(relevant.shape[0], dtype=bool)
    mask[chosen] = True
    relevant = sp.csr_matrix(relevant.multiply(mask[:, None]))
    relevant.eliminate_zeros()
    spreads = np.array([score_spread(m, fit.shape[0]) for m in models])
    grid = [np.array([1.0, *rest]) for rest in itertools.product(RANK_GRID, repeat=len(models) - 1)]
    # Each block of users is scored once per component and every grid point combined from those
    # scores (as BlendModel.scores combines them), not rescored per grid point.
    ndcg_sums = np.zeros(len(grid))
    n_scored = 0
    for start in range(0, len(chosen), RANK_BLOCK):
        users = chosen[start : start + RANK_BLOCK]
        raw = [m.scores(users) for m in models]
        fit_rows, relevant_rows = fit[users], relevant[users]
        for g, w in enumerate(grid):
            combined = _combine(w, spreads, raw)
            ranked = per_user_ranking(
                lambda rows, combined=combined: combined[rows], fit_rows, relevant_rows
            )
            ndcg_sums[g] += ranked.ndcg.sum()
        n_scored += len(users)
    best: tuple[float, np.ndarray] = (-np.inf, np.ones(len(models)))
    for g, w in enumerate(grid):
        ndcg = float(ndcg_sums[g] / max(n_scored, 1))
        if ndcg > best[0] + 1e-12:
            best = (ndcg, w)
    return best[1], best[0]


def _combine(weights: np.ndarray, spreads: np.ndarray, raw: Sequence[np.ndarray]) -> np.ndarray:
    """``sum_k w_k s_k / spread_k`` over the components with a weight, as float32 (in place: the
    grid search combines hundreds of blocks)."""
    out: np.ndarray | None = None
    term: np.ndarray | None = None
    for w, s, part in zip(weights, spreads, raw, strict=True):
        if w == 0:
            continue
        scale = np.float32(w / s)
        if out is None:
            out = np.multiply(part, scale, dtype=np.float32)
        else:
            term = np.multiply(part, scale, out=term, dtype=np.float32)
            out += term
    if out is None:
        return np.zeros(raw[0].shape, dtype=np.float32)
    return out


def assemble(
    kind: str,
    models: Sequence[Any],
    weights: np.ndarray,
    *,
    n_users: int,
    predicts_ratings: bool,
    spreads: Sequence[float] | None = None,
    info: dict | None = None,
) -> BlendModel:
    """A blend of ``models`` (fitted on the whole train split) with the chosen ``weights``.

    ``spreads`` are computed from the models' scores when not given (a ranking blend needs
    models that can score: weights models with their history set).
    """
    if spreads is None:
        spreads = (
            [1.0] * len(models) if predicts_ratings else [score_spread(m, n_users) for m in models]
        )
    return BlendModel(
        kind,
        tuple(models),
        np.asarray(weights, dtype=np.float64),
        np.asarray(spreads, dtype=np.float64),
        predicts_ratings,
        info or {},
    )
