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


def tsne_2d(vectors: np.ndarray, *, perplexity: float = 30.0, random_state: int = 42, n_jobs: int = 2) -> np.ndarray:
    """openTSNE embedding on cosine distance, initialised from PCA, float64 shape (n, 2)."""
    from openTSNE import TSNE

    x = np.asarray(vectors, dtype=np.float64)
    perplexity = min(perplexity, max(2.0, (len(x) - 1) / 3))
    embedding = TSNE(
        n_components=2,
        perplexity=perplexity,
        metric="cosine",
        initialization="pca",
        random_state=random_state,
        n_jobs=n_jobs,
        verbose=False,
    ).fit(x)
    return np.asarray(embedding, dtype=np.float64)
