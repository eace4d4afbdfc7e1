"""Models that score through stored item-item weights and the reader's own ratings (knn, EASE)."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


def top_per_column(
    block: np.ndarray, k: int, *, by_magnitude: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` heaviest entries of each column of ``block``, heaviest first.

    Parameters
    ----------
    block : ndarray, shape (n_rows, n_cols)
        The weight of every row (a neighbour) for each column (a target). Zero, NaN and -inf
        entries are never kept.
    k : int
    by_magnitude : bool
        Rank by ``abs(weight)`` and keep negative weights (EASE); else only positive weights,
        largest first (similarities).

    Returns
    -------
    (rows int32 shape (n_cols, k), values float32 shape (n_cols, k)); where fewer than ``k``
    entries qualify the rest are -1 and 0.
    """
    n_rows, n_cols = block.shape
    k_eff = min(k, n_rows)
    key = np.abs(block) if by_magnitude else np.where(block > 0, block, -np.inf)
    key = np.where(np.isfinite(key), key, -np.inf)
    part = np.argpartition(-key, k_eff - 1, axis=0)[:k_eff]  # (k_eff, n_cols)
    order = np.argsort(-np.take_along_axis(key, part, axis=0), axis=0, kind="stable")
    part = np.take_along_axis(part, order, axis=0)
    keep = np.isfinite(np.take_along_axis(key, part, axis=0)) & (
        np.take_along_axis(key, part, axis=0) > 0
    )
    rows = np.full((n_cols, k), -1, dtype=np.int32)
    values = np.zeros((n_cols, k), dtype=np.float32)
    rows[:, :k_eff] = np.where(keep, part, -1).T
    values[:, :k_eff] = np.where(keep, np.take_along_axis(block, part, axis=0), 0.0).T
    return rows, values


def weights_matrix(neighbours: np.ndarray, weights: np.ndarray, n_books: int) -> sp.csr_matrix:
    """The stored (n_books, k) neighbour arrays as a csr ``W``: ``W[i, j]`` = weight of j for i."""
    keep = neighbours >= 0
    # Row i's entries are its stored neighbours (no duplicates): csr straight from the arrays,
    # without the sort a (row, column) construction costs.
    indptr = np.zeros(n_books + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    return sp.csr_matrix(
        (weights[keep].astype(np.float32), neighbours[keep].astype(np.int32), indptr),
        shape=(n_books, n_books),
    )


def heaviest_neighbours(
    neighbours: np.ndarray, weights: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each book's ``n`` positive-weight neighbours, heaviest first, from stored weight arrays.

    Returns (indices int32 shape (n_books, n), weights float32 same shape), padded with -1 and 0
    where a book has fewer positive weights.
    """
    key = np.where((neighbours >= 0) & (weights > 0), weights, -np.inf)
    order = np.argsort(-key, axis=1, kind="stable")[:, :n]
    idx = np.take_along_axis(neighbours, order, axis=1)
    w = np.take_along_axis(weights, order, axis=1)
    keep = np.isfinite(np.take_along_axis(key, order, axis=1))
    pad = n - idx.shape[1]
    idx = np.pad(np.where(keep, idx, -1), ((0, 0), (0, pad)), constant_values=-1)
    w = np.pad(np.where(keep, w, 0.0), ((0, 0), (0, pad)))
    return idx.astype(np.int32), w.astype(np.float32)


@dataclass(frozen=True)
class ItemWeightsModel:
    """A fitted item-item model: for each book, its stored neighbours and their weights.

    Predicted rating (``predicts_ratings``, knn's KNNBaseline form)::

        rhat_ui = mu + b_u + b_i
                  + sum_{j in N(i; u)} w_ij (r_uj - b_uj) / (sum_{j in N(i; u)} w_ij + damping)

    where ``N(i; u)`` are the ``k`` heaviest stored neighbours of ``i`` the user rated and
    ``b_uj = mu + b_u + b_j``. Ranking score: ``s_ui = sum_{j rated by u} w_ij`` (item-based top-N;
    for EASE, ``w_ij = B_ji`` makes it ``x_u B``). Both draw only on ``history``, the ratings a
    prediction may use: the train split when evaluating, a reader's own ratings when serving.

    Attributes
    ----------
    kind : str
    global_mean : float
    user_bias : ndarray of float64, shape (n_users,), or None
    book_bias : ndarray of float64, shape (n_books,), or None
    neighbours : ndarray of int32, shape (n_books, k_store)
        Row i: the stored neighbours of book i, heaviest first; -1 pads.
    weights : ndarray of float32, shape (n_books, k_store)
        Their weights (0 on padding).
    history : csr_matrix, shape (n_users, n_books), or None
        Ratings (knn) or interactions (EASE) of each user.
    k : int
        Neighbours a rating prediction uses at most.
    damping : float
        Added to the weight sum of a prediction: few or light neighbours pull it toward the
        baseline.
    predicts_ratings : bool
    info : dict
    """

    kind: str
    global_mean: float
    user_bias: np.ndarray | None
    book_bias: np.ndarray | None
    neighbours: np.ndarray
    weights: np.ndarray
    history: sp.csr_matrix | None = None
    k: int = 40
    damping: float = 0.0
    predicts_ratings: bool = True
    info: dict = field(default_factory=dict)

    # Factor-model attributes the publishing code checks; this kind has none.
    user_factors = None
    book_factors = None

    @property
    def n_books(self) -> int:
        return int(self.neighbours.shape[0])

    def with_history(self, history: sp.csr_matrix) -> ItemWeightsModel:
        """The same model drawing on ``history`` (users x books ratings)."""
        return dataclasses.replace(self, history=sp.csr_matrix(history))

    def _history(self) -> sp.csr_matrix:
        if self.history is None:
            raise ValueError(f"{self.kind} needs the users' ratings: call with_history first")
        return self.history

    def _baseline(self, users: np.ndarray, books: np.ndarray) -> np.ndarray:
        out = np.full(len(users), self.global_mean, dtype=np.float64)
        if self.user_bias is not None:
            out += self.user_bias[users]
        if self.book_bias is not None:
            out += self.book_bias[books]
        return out

    def predict(self, users: np.ndarray, books: np.ndarray, *, cells: int = 1 << 24) -> np.ndarray:
        """Predicted ratings for (user, book) pairs, float64 shape (n,), clipped to 1..5.

        Pairs are taken a batch of users at a time: each batch's residuals are spread into a dense
        (users, n_books) block of at most ``cells`` cells (NaN where unrated), so looking up a
        pair's stored neighbours is one gather rather than a search of every rated cell.
        """
        if not self.predicts_ratings:
            raise ValueError(f"{self.kind} scores rank books; it does not predict ratings")
        users = np.asarray(users, dtype=np.int64)
        books = np.asarray(books, dtype=np.int64)
        hist = self._history()
        out = self._baseline(users, books)
        order = np.argsort(users, kind="stable")
        sorted_users = users[order]
        distinct = np.unique(users)
        per_batch = max(1, cells // max(self.n_books, 1))
        for start in range(0, len(distinct), per_batch):
            batch = distinct[start : start + per_batch]
            lo = np.searchsorted(sorted_users, batch[0], side="left")
            hi = np.searchsorted(sorted_users, batch[-1], side="right")
            pick = order[lo:hi]
            sub = hist[batch]
            rows = np.repeat(np.arange(len(batch)), np.diff(sub.indptr))
            resid = np.full((len(batch), self.n_books), np.nan)
            resid[rows, sub.indices] = sub.data - self._baseline(batch[rows], sub.indices)
            nbr = self.neighbours[books[pick]]  # (c, k_store), heaviest first
            values = resid[np.searchsorted(batch, users[pick])[:, None], np.maximum(nbr, 0)]
            rated = (nbr >= 0) & ~np.isnan(values)
            # Neighbours are stored heaviest first, so the first k rated are the k heaviest.
            rated &= np.cumsum(rated, axis=1) <= self.k
            w = np.where(rated, self.weights[books[pick]].astype(np.float64), 0.0)
            num = (w * np.where(rated, values, 0.0)).sum(axis=1)
            out[pick] += num / (w.sum(axis=1) + self.damping + 1e-12)
        return np.clip(out, 1.0, 5.0)

    def scores(self, users: np.ndarray) -> np.ndarray:
        """Ranking scores of every book for each user, float32 shape (len(users), n_books)."""
        hist = self._history()[np.asarray(users)]
        seen = sp.csr_matrix(
            (np.ones(hist.nnz, dtype=np.float32), hist.indices, hist.indptr), shape=hist.shape
        )
        return np.asarray((seen @ self._weights_by_neighbour).toarray(), dtype=np.float32)

    @functools.cached_property
    def _weights_by_neighbour(self) -> sp.csr_matrix:
        """``W^T`` as csr, built once per model (scores() is called once per block of users)."""
        return weights_matrix(self.neighbours, self.weights, self.n_books).T.tocsr()
