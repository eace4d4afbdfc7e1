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
