"""Implicit-feedback ALS from the ``implicit`` library, with confidence from ratings and reads."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from analytics.factors import FactorModel
from base.params import WEIGHTINGS, AlsParams


def bm25_confidence(
    ratings: sp.csr_matrix, *, k1: float = 100.0, b: float = 0.8, stats: dict | None = None
) -> sp.csr_matrix:
    """BM25 weights of the rating cells, rescaled to mean 1 (float32 csr, same pattern).

    Each user's row is a "document" whose "terms" are books and term frequency is the rating:
    ``w_ui = r_ui (k1 + 1) / (k1 ((1 - b) + b n_u / mean n) + r_ui) * idf_i`` with
    ``idf_i = log(n_users) - log(1 + n_i)``. A rating of a book everyone rated says little about a
    taste, one of a rarely rated book says more (the idf), and long rows are damped (the length
    norm). Same formula as ``implicit.nearest_neighbours.bm25_weight`` (users x books orientation).
    Rescaled to mean 1, so ``alpha`` means what it means for ``binary`` weighting. When ``stats``
    is a dict it receives what a fold-in needs to weigh a new reader the same way (k1, b, idf per
    book, mean row sum, the floor and the scale).
    """
    conf = sp.csr_matrix(ratings, dtype=np.float64, copy=True)
    n_users = conf.shape[0]
    if conf.nnz == 0:
        return conf.astype(np.float32)
    idf = np.log(n_users) - np.log1p(np.bincount(conf.indices, minlength=conf.shape[1]))
    row_sums = np.asarray(conf.sum(axis=1)).ravel()
    length_norm = (1.0 - b) + b * row_sums / row_sums.mean()
    rows = np.repeat(np.arange(n_users), np.diff(conf.indptr))
    conf.data = conf.data * (k1 + 1.0) / (k1 * length_norm[rows] + conf.data) * idf[conf.indices]
    # A book rated by (nearly) every user has idf <= 0: keep it as weak positive evidence, not none.
    floor = 1e-3 * max(float(conf.data.max()), 1e-12)
    conf.data = np.maximum(conf.data, floor)
    scale = float(conf.data.mean())
    conf.data /= scale
    if stats is not None:
        stats.update(
            k1=k1,
            b=b,
            idf=[float(v) for v in idf],
            mean_row_sum=float(row_sums.mean()),
            floor=floor,
            scale=scale,
        )
    return conf.astype(np.float32)


def confidence_matrix(
    ratings: sp.csr_matrix,
    *,
    min_rating: float = 0.0,
    weighting: str = "rating",
    stats: dict | None = None,
) -> sp.csr_matrix:
    """Per-cell confidence for ALS, float32 csr of the same shape.

    ``weighting='rating'`` uses the rating itself (a 5 is stronger evidence than a 2),
    ``'binary'`` counts every interaction as 1, ``'bm25'`` weighs the ratings by BM25
    (:func:`bm25_confidence`: popular books and long rows count less). Cells rated below
    ``min_rating`` are dropped.
    """
    if weighting not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {weighting!r}: use one of {', '.join(WEIGHTINGS)}")
    conf = sp.csr_matrix(ratings, dtype=np.float32, copy=True)
    conf.sum_duplicates()
    conf.eliminate_zeros()
    if min_rating > 0:
        conf.data[conf.data < min_rating] = 0
        conf.eliminate_zeros()
    if weighting == "binary":
        conf.data[:] = 1.0
    elif weighting == "bm25":
        conf = bm25_confidence(conf, stats=stats)
    return conf


def fit_als(
    train: sp.csr_matrix, params: AlsParams | None = None, *, show_progress: bool = False
) -> FactorModel:
    """Hu-Koren-Volinsky ALS: minimise ``sum c_ui (p_ui - x_u . y_i)^2 + reg (|x|^2 + |y|^2)``.

    ``p_ui = 1`` where the user interacted, ``c_ui = 1 + alpha * w_ui`` with ``w`` from
    :func:`confidence_matrix`. implicit runs its own threads, so BLAS is held to one thread
    during the fit (otherwise OpenBLAS threads fight implicit's and it warns).

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
    params : AlsParams
        ``factors``, ``regularization``, ``alpha``, ``iterations``; ``weighting`` (rating, binary
        or bm25); ``min_rating``: ratings below it are not positive evidence; ``random_state``.
    show_progress : bool
        implicit's own progress bar.

    Returns
    -------
    FactorModel (``predicts_ratings=False``) with float32 factors.
    """
    from implicit.cpu.als import AlternatingLeastSquares

    p = params or AlsParams()
    stats: dict = {}
    conf = confidence_matrix(train, min_rating=p.min_rating, weighting=p.weighting, stats=stats)
    # implicit checks the BLAS thread count when a model is built, so build it inside the limit too.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=p.factors,
            regularization=p.regularization,
            alpha=p.alpha,
            iterations=p.iterations,
            random_state=p.random_state,
            dtype=np.float32,
        )
        model.fit(conf, show_progress=show_progress)
    return FactorModel(
        "als",
        user_factors=np.asarray(model.user_factors, dtype=np.float32),
        book_factors=np.asarray(model.item_factors, dtype=np.float32),
        predicts_ratings=False,
        # What fold-in needs to weigh a new reader's books as the fit weighed everyone's.
        info={"bm25": stats} if stats else {},
    )
