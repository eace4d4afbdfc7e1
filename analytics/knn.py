"""Item-based neighbourhood model (KNNBaseline): damped biases plus similar books' residuals."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from analytics.als import confidence_matrix
from analytics.baseline import fit_biases
from analytics.weights import ItemWeightsModel, top_per_column
from base.params import BaselineParams, KnnParams


def item_similarities(
    values: sp.csr_matrix,
    *,
    shrinkage: float,
    min_support: int,
    k_store: int,
    block: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Shrunk cosine similarity between the columns (books) of ``values``; top ``k_store`` each.

    ``s_ij = (v_i . v_j) / (|v_i| |v_j|) * n_ij / (n_ij + shrinkage)`` where ``n_ij`` is the number
    of users with both books, and ``s_ij = 0`` when ``n_ij < min_support``; only positive
    similarities are kept (Koren's KNNBaseline shrinkage; Sarwar et al. 2001). On bias residuals
    this is the shrunk Pearson correlation of the baseline's errors.

    Computed a block of target books at a time, so memory stays at ``n_books * block`` doubles
    whatever the catalogue size; the cost is one sparse product per block (``sum_u n_u^2`` in all).

    Parameters
    ----------
    values : csr_matrix, shape (n_users, n_books)
        The vectors compared: residuals, or weighted interactions.
    shrinkage : float
    min_support : int
    k_store : int
        Neighbours kept per book.

    Returns
    -------
    (neighbours int32 shape (n_books, k_store), similarities float32 same shape), heaviest first.
    """
    n_books = values.shape[1]
    v = sp.csc_matrix(values, dtype=np.float64)
    ones = sp.csc_matrix((np.ones_like(v.data), v.indices, v.indptr), shape=v.shape)
    vt, onest = v.T.tocsr(), ones.T.tocsr()
    norms = np.sqrt(np.asarray(v.multiply(v).sum(axis=0)).ravel())
    norms[norms == 0] = np.inf
    neighbours = np.empty((n_books, k_store), dtype=np.int32)
    sims = np.empty((n_books, k_store), dtype=np.float32)
    for start in range(0, n_books, block):
        stop = min(start + block, n_books)
        dots = (vt @ v[:, start:stop]).toarray()
        together = (onest @ ones[:, start:stop]).toarray()
        sim = dots / np.outer(norms, norms[start:stop])
        sim *= together / (together + shrinkage)
        sim[together < min_support] = 0.0
        sim[np.arange(start, stop), np.arange(stop - start)] = 0.0  # never its own neighbour
        neighbours[start:stop], sims[start:stop] = top_per_column(sim, k_store)
    return neighbours, sims


def fit_knn(train: sp.csr_matrix, params: KnnParams | None = None) -> ItemWeightsModel:
    """Item kNN on the train split: KNNBaseline for ratings, summed similarity for ranking.

    ``rhat_ui = b_ui + sum_{j in N(i;u)} s_ij (r_uj - b_uj) / (sum s_ij + damping)`` with
    ``b_ui = mu + b_u + b_i`` the damped biases (:func:`analytics.baseline.fit_biases`) and
    ``N(i;u)`` the ``k`` most similar of the books the user rated. ``similarity='pearson'``
    compares books by their bias residuals (for rating prediction); ``'cosine'`` by
    BM25- or binary-weighted interactions (``weighting``; for ranking, where a book's score is its
    summed similarity to the user's books).

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
    params : KnnParams

    Returns
    -------
    ItemWeightsModel with the biases, ``k_store`` neighbours per book and ``history=train``.
    """
    p = params or KnnParams()
    x = sp.csr_matrix(train, dtype=np.float64, copy=True)
    x.eliminate_zeros()
    base = fit_biases(x, BaselineParams(reg_user=p.reg_user, reg_book=p.reg_book))
    if p.similarity == "pearson":
        users = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        values = sp.csr_matrix(
            (
                x.data - base.global_mean - base.user_bias[users] - base.book_bias[x.indices],
                x.indices,
                x.indptr,
            ),
            shape=x.shape,
        )
    else:
        values = confidence_matrix(x, weighting=p.weighting)
    neighbours, sims = item_similarities(
        values, shrinkage=p.shrinkage, min_support=p.min_support, k_store=p.k_store
    )
    return ItemWeightsModel(
        "knn",
        global_mean=base.global_mean,
        user_bias=base.user_bias,
        book_bias=base.book_bias,
        neighbours=neighbours,
        weights=sims,
        history=sp.csr_matrix(train),
        k=p.k,
        damping=p.damping,
        predicts_ratings=True,
        info={"stored_weights": int((neighbours >= 0).sum())},
    )
