"""Implicit-feedback ALS from the ``implicit`` library, with confidence from ratings and reads."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from analytics.factors import FactorModel


def confidence_matrix(ratings: sp.csr_matrix, *, min_rating: float = 0.0, weighting: str = "rating") -> sp.csr_matrix:
    """Per-cell confidence for ALS, float32 csr of the same shape.

    ``weighting='rating'`` uses the rating itself (a 5 is stronger evidence than a 2),
    ``'binary'`` counts every interaction as 1. Cells rated below ``min_rating`` are dropped.
    """
    conf = sp.csr_matrix(ratings, dtype=np.float32, copy=True)
    if min_rating > 0:
        conf.data[conf.data < min_rating] = 0
        conf.eliminate_zeros()
    if weighting == "binary":
        conf.data[:] = 1.0
    elif weighting != "rating":
        raise ValueError(f"unknown weighting {weighting!r}: use 'rating' or 'binary'")
    return conf


def fit_als(
    train: sp.csr_matrix,
    *,
    factors: int = 64,
    regularization: float = 0.05,
    alpha: float = 2.0,
    iterations: int = 15,
    weighting: str = "rating",
    min_rating: float = 0.0,
    random_state: int | None = None,
    show_progress: bool = False,
) -> FactorModel:
    """Hu-Koren-Volinsky ALS: minimise ``sum c_ui (p_ui - x_u . y_i)^2 + reg (|x|^2 + |y|^2)``.

    ``p_ui = 1`` where the user interacted, ``c_ui = 1 + alpha * w_ui`` with ``w`` from
    :func:`confidence_matrix`. implicit runs its own threads, so BLAS is held to one thread
    during the fit (otherwise OpenBLAS threads fight implicit's and it warns).

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
    factors, regularization, alpha, iterations : model hyper-parameters
    weighting : {'rating', 'binary'}
    min_rating : float
        Ratings below this are not treated as positive evidence.
    random_state : int or None

    Returns
    -------
    FactorModel (``predicts_ratings=False``) with float32 factors.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    conf = confidence_matrix(train, min_rating=min_rating, weighting=weighting)
    # implicit checks the BLAS thread count when the model is built, so build it inside the limit too.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            random_state=random_state,
            dtype=np.float32,
        )
        model.fit(conf, show_progress=show_progress)
    return FactorModel(
        "als",
        user_factors=np.asarray(model.user_factors, dtype=np.float32),
        book_factors=np.asarray(model.item_factors, dtype=np.float32),
        predicts_ratings=False,
    )
