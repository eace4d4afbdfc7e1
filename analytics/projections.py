"""2-D maps of book factors: PCA always, t-SNE for local structure."""

from __future__ import annotations

import numpy as np


def pca_2d(vectors: np.ndarray) -> np.ndarray:
    """First two principal components, float64 shape (n, 2); signs fixed so the map is stable.

    Each axis is flipped so its largest-magnitude loading is positive: SVD signs are arbitrary.
    """
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    out = x @ (axes * signs[:, None]).T
    if out.shape[1] < 2:  # one-factor models still get a 2-D map
        out = np.hstack([out, np.zeros((out.shape[0], 2 - out.shape[1]))])
    return out


def tsne_2d(
    vectors: np.ndarray,
    *,
    perplexity: float = 30.0,
    early_iter: int = 125,
    n_iter: int = 250,
    random_state: int = 42,
    n_jobs: int = 2,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """openTSNE map of the rows' directions (cosine geometry), initialised from PCA, float64 (n, 2).

    The affinities come from each row's exact cosine neighbours (``knn``: indices and cosine
    similarities best first, as :func:`analytics.neighbours.top_k_cosine` returns; computed if not
    given or too short), turned into the Euclidean distances of unit rows, which order neighbours as
    cosine does. Reusing the neighbours a publish computes anyway saves openTSNE's Annoy index.
    125 exaggerated + 250 plain optimisation steps, not openTSNE's 250 + 500: on the 10k-book
    goodbooks map the share of each book's 10 cosine neighbours kept among its 10 nearest on the
    map was 0.374 against 0.376 for 250 + 400, in 60% of the time, and a refresh pays for three
    maps.
    """
    from openTSNE import TSNE, affinity, initialization
    from openTSNE.nearest_neighbors import PrecomputedNeighbors

    from analytics.neighbours import normalise_rows, top_k_cosine

    n = len(vectors)
    perplexity = min(perplexity, max(2.0, (n - 1) / 3))
    k = min(n - 1, int(3 * perplexity))
    if knn is None or knn[0].shape[1] < k:
        knn = top_k_cosine(vectors, k=k)
    indices = np.ascontiguousarray(knn[0][:, :k], dtype=np.int64)
    distances = np.sqrt(np.maximum(2.0 - 2.0 * np.asarray(knn[1][:, :k], dtype=np.float64), 0.0))
    affinities = affinity.PerplexityBasedNN(
        perplexity=perplexity,
        knn_index=PrecomputedNeighbors(indices, distances),
        n_jobs=n_jobs,
        random_state=random_state,
        verbose=False,
    )
    start = initialization.rescale(pca_2d(normalise_rows(vectors)))
    embedding = TSNE(
        n_components=2,
        early_exaggeration_iter=early_iter,
        n_iter=n_iter,
        n_jobs=n_jobs,
        random_state=random_state,
        verbose=False,
    ).fit(affinities=affinities, initialization=start)
    return np.asarray(embedding, dtype=np.float64)


def pole_axes(
    vectors: np.ndarray,
    x_poles: tuple[np.ndarray, np.ndarray],
    y_poles: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Custom axes (the Embedding Projector's custom projection), float64 shape (n, 2).

    Each pole is an index array of rows (one book, an author's books, a tag's books). Every row is
    scaled to unit length (cosine geometry); a pole's centre is the mean of its unit rows, and an
    axis is the unit direction ``d = (mean_b - mean_a) / |mean_b - mean_a|`` from pole a to pole b.
    A row's coordinate is ``u . d``, the cosine between the row and the direction: in [-1, 1],
    positive towards pole b. Without ``y_poles`` the y axis is the first principal component of the
    unit rows with their x direction removed, so it is orthogonal to x (sign fixed as in
    :func:`pca_2d`). An axis whose poles have the same centre is all zeros.

    Parameters
    ----------
    vectors : ndarray, shape (n, k)
        One factor vector per row (book).
    x_poles, y_poles : pair of int ndarrays
        Rows of pole a and pole b of each axis; none may be empty.
    """
    from analytics.neighbours import normalise_rows

    unit = normalise_rows(vectors).astype(np.float64)

    def direction(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d = unit[b].mean(axis=0) - unit[a].mean(axis=0)
        norm = np.linalg.norm(d)
        return d / norm if norm > 1e-12 else np.zeros_like(d)

    dx = direction(*x_poles)
    x = unit @ dx
    if y_poles is not None:
        y = unit @ direction(*y_poles)
    else:
        rest = unit - np.outer(x, dx)
        rest = rest - rest.mean(axis=0)
        # The top eigenvector of the k x k scatter matrix: cheap for 100k rows.
        _, eigenvectors = np.linalg.eigh(rest.T @ rest)
        axis = eigenvectors[:, -1]
        axis = axis * (np.sign(axis[np.abs(axis).argmax()]) or 1.0)
        y = rest @ axis
    return np.column_stack([x, y])
