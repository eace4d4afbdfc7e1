"""Damped user and book biases around the global mean (the baseline every rating model must
beat)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from analytics.factors import FactorModel
from base.params import BaselineParams


def fit_biases(train: sp.csr_matrix, params: BaselineParams | None = None) -> FactorModel:
    """Regularised biases: ``r_ui ~ mu + b_u + b_i``.

    Minimises ``sum (r_ui - mu - b_u - b_i)^2 + reg_user * sum b_u^2 + reg_book * sum b_i^2``
    by alternating exact updates (each is a damped mean of residuals), starting from the books.

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
        Observed ratings; structural zeros are missing, not zero ratings.
    params : BaselineParams
        ``reg_user``, ``reg_book``: damping, a user with n ratings has bias
        ``sum(residual) / (n + reg_user)``; ``iterations``: alternations (10 is converged to well
        under 1e-4 RMSE on goodbooks).

    Returns
    -------
    FactorModel with ``global_mean``, ``user_bias`` and ``book_bias`` set.
    """
    p = params or BaselineParams()
    reg_user, reg_book, iterations = p.reg_user, p.reg_book, p.iterations
    train = sp.csr_matrix(train, dtype=np.float64, copy=True)
    # A stored zero is a missing rating too (and would misalign data and nonzero()).
    train.eliminate_zeros()
    if train.nnz == 0:
        raise ValueError("cannot fit biases on an empty matrix")
    mu = float(train.data.mean())
    users, books = train.nonzero()
    residual_base = train.data - mu
    n_u = np.bincount(users, minlength=train.shape[0])
    n_i = np.bincount(books, minlength=train.shape[1])
    b_u = np.zeros(train.shape[0])
    b_i = np.zeros(train.shape[1])
    for _ in range(iterations):
        b_i = np.bincount(books, residual_base - b_u[users], minlength=train.shape[1]) / (
            n_i + reg_book
        )
        b_u = np.bincount(users, residual_base - b_i[books], minlength=train.shape[0]) / (
            n_u + reg_user
        )
    return FactorModel(
        "baseline", global_mean=mu, user_bias=b_u, book_bias=b_i, info={"iterations": iterations}
    )


def fit_global_mean(train: sp.csr_matrix, params: object = None) -> FactorModel:
    """The floor: every rating predicted as the training mean (biases all zero)."""
    n_users, n_books = train.shape
    return FactorModel(
        "global_mean",
        global_mean=float(train.data.mean()),
        user_bias=np.zeros(n_users),
        book_bias=np.zeros(n_books),
    )


def fit_popularity(train: sp.csr_matrix, params: object = None) -> FactorModel:
    """Most-rated first: the ranking baseline every top-N model must beat."""
    counts = np.bincount(sp.csr_matrix(train).indices, minlength=train.shape[1]).astype(np.float64)
    return FactorModel("popularity", book_bias=counts, predicts_ratings=False)
