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
    vectors: np.ndarray, *, perplexity: float = 30.0, n_iter: int = 400, random_state: int = 42, n_jobs: int = 2
) -> np.ndarray:
    """openTSNE map of the rows' directions (cosine geometry), initialised from PCA, float64 (n, 2).

    Rows are scaled to unit length and compared by Euclidean distance, which orders neighbours
    exactly as cosine does but lets openTSNE use its fast Annoy index (its cosine path was ~2x
    slower here). 400 optimisation steps after the exaggeration phase, not 500: the map of 10k
    books is settled by then and a refresh pays for three maps.
    """
    from openTSNE import TSNE

    from analytics.neighbours import normalise_rows

    x = normalise_rows(vectors).astype(np.float64)
    perplexity = min(perplexity, max(2.0, (len(x) - 1) / 3))
    embedding = TSNE(
        n_components=2,
        perplexity=perplexity,
        metric="euclidean",
        neighbors="annoy",
        n_iter=n_iter,
        initialization="pca",
        random_state=random_state,
        n_jobs=n_jobs,
        verbose=False,
    ).fit(x)
    return np.asarray(embedding, dtype=np.float64)
