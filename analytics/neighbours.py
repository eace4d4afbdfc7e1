"""Nearest books by cosine similarity of factor vectors, and centroid recommendations."""

from __future__ import annotations

import numpy as np


def normalise_rows(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (zero rows stay zero), float32."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms == 0, 1.0, norms)


def top_k_cosine(
    vectors: np.ndarray, *, k: int = 50, block: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` most cosine-similar other rows.

    Parameters
    ----------
    vectors : ndarray, shape (n, d)
    k : int
        Capped at n - 1.
    block : int
        Rows compared at once; memory is ``block * n`` floats.

    Returns
    -------
    indices : ndarray of int32, shape (n, k), best first, never the row itself
    scores : ndarray of float32, shape (n, k), cosine similarity
    """
    unit = normalise_rows(vectors)
    n = unit.shape[0]
    k = min(k, n - 1)
    indices = np.empty((n, k), dtype=np.int32)
    scores = np.empty((n, k), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = unit[start:stop] @ unit.T
        sims[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        part_scores = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        indices[start:stop] = np.take_along_axis(part, order, axis=1)
        scores[start:stop] = np.take_along_axis(part_scores, order, axis=1)
    return indices, scores


def rank_by_similarity(
    query: np.ndarray, vectors: np.ndarray, *, n: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``vectors`` most cosine-similar to ``query`` (shape (d,)), skipping ``exclude``.

    Returns (indices int64 shape (<=n,), scores float32), best first.
    """
    sims = normalise_rows(vectors) @ normalise_rows(query[None, :])[0]
    if exclude is not None and len(exclude):
        sims[np.asarray(exclude)] = -np.inf
    n = min(n, int(np.isfinite(sims).sum()))
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    part = np.argpartition(-sims, n - 1)[:n]
    order = part[np.argsort(-sims[part], kind="stable")]
    return order.astype(np.int64), sims[order]


def centroid_recommendations(
    book_vectors: np.ndarray,
    favourites: np.ndarray,
    *,
    n: int = 10,
    exclude: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Books nearest the centroid of the favourites' unit vectors (the UCSD tutorial's recipe).

    Normalising first keeps one long vector from dominating the centroid. Never returns a
    favourite, nor a book of ``exclude``.

    Returns
    -------
    (indices, cosine scores) : int64 and float32 arrays of length <= n, best first.
    """
    favourites = np.asarray(favourites, dtype=np.int64)
    if len(favourites) == 0:
        raise ValueError("need at least one favourite book")
    centroid = normalise_rows(book_vectors[favourites]).mean(axis=0)
    banned = favourites if exclude is None else np.concatenate([favourites, exclude])
    return rank_by_similarity(centroid, book_vectors, n=n, exclude=banned)


def closest_favourite(
    book_vectors: np.ndarray, books: np.ndarray, favourites: np.ndarray
) -> np.ndarray:
    """For each of ``books``, the position in ``favourites`` of the most cosine-similar
    favourite."""
    unit = normalise_rows(book_vectors)
    sims = unit[np.asarray(books)] @ unit[np.asarray(favourites)].T
    return sims.argmax(axis=1)
