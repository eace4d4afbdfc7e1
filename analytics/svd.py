"""Truncated SVD of the (bias-removed) train matrix with scipy's svds, as in the UCSD tutorial."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import svds

from analytics.baseline import fit_biases
from analytics.factors import FactorModel
from base.params import BaselineParams, SvdParams


def fit_svd(train: sp.csr_matrix, params: SvdParams | None = None) -> FactorModel:
    """Rank-``k`` SVD ``R ~ U S V^T`` of the observed entries.

    With ``remove_biases`` (the default) the SVD is taken of the residuals ``r_ui - mu - b_u - b_i``
    on observed cells (missing cells are 0 = "no deviation from the baseline"), so prediction is
    ``mu + b_u + b_i + u . v``. Without it, the raw ratings are decomposed as the tutorial did, and
    missing cells pull predictions toward 0.

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
    params : SvdParams
        ``k``: rank, below min(n_users, n_books); ``remove_biases``; ``reg_user``, ``reg_book``:
        damping of the bias baseline removed first; ``random_state``: seeds the ARPACK start
        vector, so the factors are reproducible.

    Returns
    -------
    FactorModel with ``user_factors = U sqrt(S)`` and ``book_factors = V sqrt(S)`` (float32).
    """
    p = params or SvdParams()
    k, remove_biases, random_state = p.k, p.remove_biases, p.random_state
    train = sp.csr_matrix(train, dtype=np.float64, copy=True)
    # A stored zero is a missing rating too (and would misalign data and nonzero()).
    train.eliminate_zeros()
    n_users, n_books = train.shape
    if not 0 < k < min(n_users, n_books):
        raise ValueError(
            f"k={k} must be between 1 and min(n_users, n_books) - 1 = {min(n_users, n_books) - 1}"
        )
    rng = np.random.default_rng(random_state)
    if remove_biases:
        base = fit_biases(train, BaselineParams(reg_user=p.reg_user, reg_book=p.reg_book))
        users, books = train.nonzero()
        residual = train.copy()
        residual.data = (
            train.data - base.global_mean - base.user_bias[users] - base.book_bias[books]
        )
        target = residual
    else:
        base = None
        target = train
    v0 = rng.standard_normal(min(n_users, n_books))
    u, s, vt = svds(target, k=k, v0=v0, random_state=rng)
    order = np.argsort(-s)
    u, s, vt = u[:, order], s[order], vt[order]
    root = np.sqrt(s)
    return FactorModel(
        "svd",
        global_mean=base.global_mean if base else 0.0,
        user_bias=base.user_bias if base else None,
        book_bias=base.book_bias if base else None,
        user_factors=(u * root).astype(np.float32),
        book_factors=(vt.T * root).astype(np.float32),
        info={"singular_values": [float(x) for x in s]},
    )
