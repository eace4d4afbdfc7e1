"""Fold a new reader into a fitted model from the stored tables alone: no refit, one small solve.

Every function returns a :class:`FoldIn`: a model of exactly one user (index 0) that predicts and
ranks like the fitted model would for a trained user, and the contribution of each of the reader's
books to each book's score (the reasons: "because you rated X 5 stars").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from analytics.blend import BlendModel
from analytics.factors import FactorModel
from analytics.weights import ItemWeightsModel, weights_matrix


@dataclass(frozen=True)
class Feedback:
    """One reader's books in a run's index space.

    Attributes
    ----------
    books : ndarray of int64, shape (n,)
        Every book the reader has on a shelf that counts (rated ones first).
    ratings : ndarray of float64, shape (n,)
        The reader's stars, NaN where the book is an unrated positive (read, currently reading,
        to-read when included).
    """

    books: np.ndarray
    ratings: np.ndarray

    @property
    def rated(self) -> np.ndarray:
        return np.isfinite(self.ratings)

    def row(self, n_books: int, *, ratings_only: bool) -> sp.csr_matrix:
        """The reader as a (1, n_books) matrix: stars (``ratings_only``) or every book as 1."""
        keep = self.rated if ratings_only else np.ones(len(self.books), bool)
        values = self.ratings[keep] if ratings_only else np.ones(int(keep.sum()))
        return sp.csr_matrix(
            (values.astype(np.float32), (np.zeros(int(keep.sum()), int), self.books[keep])),
            shape=(1, n_books),
        )


@dataclass(frozen=True)
class FoldIn:
    """A one-user model and the reasons of its scores.

    ``contributions(books)`` is an array of shape (len(books), len(feedback.books)): how much
    each of the reader's books adds to each book's ranking score (the score is their sum, plus
    terms the reader's books do not change, such as a book's bias).
    """

    model: Any
    feedback: Feedback
    contributions: Callable[[np.ndarray], np.ndarray]


def _bias(model: Any, fb: Feedback, reg_user: float) -> float:
    """The reader's damped bias against the model's global mean and book biases."""
    r = fb.rated
    if not r.any() or model.book_bias is None:
        return 0.0
    residual = fb.ratings[r] - model.global_mean - model.book_bias[fb.books[r]]
    return float(residual.sum() / (r.sum() + reg_user))


def fold_in_baseline(model: FactorModel, fb: Feedback, params: Any) -> FoldIn:
    """``b_u = sum(r - mu - b_i) / (n + reg_user)``: the fit's own user update."""
    one = dataclasses.replace(model, user_bias=np.array([_bias(model, fb, params.reg_user)]))
    return FoldIn(one, fb, lambda books: np.zeros((len(books), len(fb.books))))


def fold_in_mf(model: FactorModel, fb: Feedback, params: Any) -> FoldIn:
    """The fit's own user half-step for the reader, exactly, from the stored tables.

    With SVD++ (stored ``book_implicit`` vectors ``y``), the reader's implicit term is
    ``z = |N(u)|^-1/2 sum_{j in N(u)} y_j`` over the books they rated; then ``[p_u, b_u]`` solves
    ``min sum_j (r_j - mu - b_j - z . [q_j, 1] - b_u - q_j . p_u)^2 + reg n_u |p_u|^2 +
    reg_bias b_u^2`` (ALS-WR damping) against the stored book factors and biases. The reader's
    vector is ``p_u + z[:k]`` and bias ``b_u + z[k]``, as the fit stores its users'.
    """
    r = fb.rated
    k = model.book_factors.shape[1]
    q = model.book_factors[fb.books[r]].astype(np.float64)
    x = np.hstack([q, np.ones((len(q), 1))])
    z = np.zeros(k + 1)
    if model.book_implicit is not None and r.any():
        z = model.book_implicit[fb.books[r]].astype(np.float64).sum(axis=0) / np.sqrt(r.sum())
    t = fb.ratings[r] - model.global_mean - model.book_bias[fb.books[r]]
    y = t - x @ z
    damp = np.r_[np.full(k, params.reg * max(int(r.sum()), 1)), params.reg_bias]
    inverse = np.linalg.inv(x.T @ x + np.diag(damp))
    solution = inverse @ (x.T @ y)
    one = dataclasses.replace(
        model,
        user_factors=(solution[None, :k] + z[None, :k]).astype(np.float32),
        user_bias=np.array([solution[k] + z[k]]),
    )
    rated_pos = np.flatnonzero(r)

    def contributions(books: np.ndarray) -> np.ndarray:
        # q_i . (p + z) = sum_j [m_ij t_j + (q_i - m_i X) . y_j / sqrt(n)], m_i = q_i A^-1 X^T:
        # each rated book's share through the ridge step and through the implicit term.
        out = np.zeros((len(books), len(fb.books)))
        qi = np.hstack([model.book_factors[books].astype(np.float64), np.zeros((len(books), 1))])
        m = qi @ inverse @ x.T
        terms = m * t[None, :]
        if model.book_implicit is not None and r.any():
            yr = model.book_implicit[fb.books[r]].astype(np.float64)
            terms += ((qi - m @ x) @ yr.T) / np.sqrt(r.sum())
        out[:, rated_pos] = terms
        return out

    return FoldIn(one, fb, contributions)


def fold_in_svd(model: FactorModel, fb: Feedback, params: Any) -> FoldIn:
    """Project the reader's residuals on the stored singular vectors: ``p = r~ Q S^-1``.

    ``book_factors = V sqrt(S)``, so the reader's row of ``U sqrt(S)`` is ``r~ V S^-1/2``; missing
    ratings are zeros (no deviation from the baseline), as in the fit.
    """
    r = fb.rated
    bias = _bias(model, fb, params.reg_user) if params.remove_biases else 0.0
    s = np.asarray(model.info["singular_values"], dtype=np.float64)
    q = model.book_factors[fb.books[r]].astype(np.float64)
    base = model.global_mean + bias + (model.book_bias[fb.books[r]] if params.remove_biases else 0)
    resid = fb.ratings[r] - base
    p = (resid @ q) / s
    one = dataclasses.replace(
        model,
        user_factors=p[None, :].astype(np.float32),
        user_bias=np.array([bias]) if params.remove_biases else None,
    )
    rated_pos = np.flatnonzero(r)

    def contributions(books: np.ndarray) -> np.ndarray:
        out = np.zeros((len(books), len(fb.books)))
        qi = model.book_factors[books].astype(np.float64)
        out[:, rated_pos] = ((qi / s) @ q.T) * resid[None, :]
        return out

    return FoldIn(one, fb, contributions)


def als_confidences(model: FactorModel, fb: Feedback, params: Any) -> np.ndarray:
    """The reader's confidence weights ``w`` as the fit computed them (rating, binary or bm25).

    Unrated positives count as the reader's mean rating (3.5 for a reader with none). BM25 uses
    the fit's own statistics (idf per book, mean row sum, scale; in the run's info).
    """
    stars = np.where(fb.rated, fb.ratings, np.nanmean(fb.ratings) if fb.rated.any() else 3.5)
    keep = stars >= params.min_rating
    if params.weighting == "binary":
        w = np.ones(len(stars))
    elif params.weighting == "rating":
        w = stars.astype(np.float64)
    else:
        bm = model.info["bm25"]
        idf = np.asarray(bm["idf"])[fb.books]
        norm = (1 - bm["b"]) + bm["b"] * stars[keep].sum() / bm["mean_row_sum"]
        w = stars * (bm["k1"] + 1) / (bm["k1"] * norm + stars) * idf
        w = np.maximum(w, bm["floor"]) / bm["scale"]
    return np.where(keep, w, 0.0)


def fold_in_als(
    model: FactorModel, fb: Feedback, params: Any, *, gram: np.ndarray | None = None
) -> FoldIn:
    """implicit's exact user step: ``x = (Y^T Y + Y^T (C - I) Y + lambda I)^-1 Y^T C p``.

    ``C = 1 + alpha w`` on the reader's books (``w`` from :func:`als_confidences`), ``p = 1``
    there and 0 elsewhere; ``lambda`` the fit's regularisation. ``gram`` is ``Y^T Y`` when the
    caller folds many readers into one run (it does not depend on the reader).
    """
    y = model.book_factors.astype(np.float64)
    gram = y.T @ y if gram is None else gram
    w = als_confidences(model, fb, params)
    used = w > 0
    yu = y[fb.books[used]]
    c = 1.0 + params.alpha * w[used]
    a = gram + (yu.T * (c - 1.0)) @ yu + params.regularization * np.eye(y.shape[1])
    inverse = np.linalg.inv(a)
    x = inverse @ (yu.T @ c)
    one = dataclasses.replace(model, user_factors=x[None, :].astype(np.float32))
    used_pos = np.flatnonzero(used)

    def contributions(books: np.ndarray) -> np.ndarray:
        out = np.zeros((len(books), len(fb.books)))
        out[:, used_pos] = (y[books] @ inverse @ yu.T) * c[None, :]
        return out

    return FoldIn(one, fb, contributions)


def fold_in_weights(model: ItemWeightsModel, fb: Feedback, params: Any) -> FoldIn:
    """No solve: a weights model scores through the reader's own books (rated ones for knn's
    rating predictions, with the reader's damped bias; every counted book for EASE)."""
    ratings_only = model.predicts_ratings
    history = fb.row(model.n_books, ratings_only=ratings_only)
    bias = getattr(params, "reg_user", None)
    one = dataclasses.replace(
        model,
        history=history,
        # Kinds with biases (knn) get the reader's damped bias; EASE has none.
        user_bias=None if model.book_bias is None else np.array([_bias(model, fb, bias or 0.0)]),
    )
    counted = np.flatnonzero(fb.rated if ratings_only else np.ones(len(fb.books), bool))
    matrix = weights_matrix(model.neighbours, model.weights, model.n_books)

    def contributions(books: np.ndarray) -> np.ndarray:
        out = np.zeros((len(books), len(fb.books)))
        out[:, counted] = matrix[np.asarray(books)][:, fb.books[counted]].toarray()
        return out

    return FoldIn(one, fb, contributions)


def fold_in_blend(blend: BlendModel, parts: list[FoldIn]) -> FoldIn:
    """A blend of folded-in components: the same weights and spreads, reasons summed alike."""
    one = dataclasses.replace(blend, components=tuple(p.model for p in parts))
    scale = blend.weights / blend.spreads

    def contributions(books: np.ndarray) -> np.ndarray:
        return sum(s * p.contributions(books) for s, p in zip(scale, parts, strict=True))

    return FoldIn(one, parts[0].feedback, contributions)
