"""Explicit biased matrix factorisation fitted by alternating least squares, vectorised with scipy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from analytics.baseline import fit_biases
from analytics.factors import FactorModel


def _solve_side(
    ratings: sp.csr_matrix,
    other: np.ndarray,
    other_bias: np.ndarray,
    mu: float,
    reg: float,
    reg_bias: float,
    block_rows: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact ridge update of one side's factors and biases, given the other side.

    For row u with observed columns I_u, with ``x_i = [q_i, 1]`` and target
    ``t_ui = r_ui - mu - b_i``, solve ``(X_u^T X_u + diag(reg n_u, ..., reg_bias)) [p_u; b_u] = X_u^T t_u``.
    All rows' Gram matrices come from one sparse-dense product: the indicator matrix times
    the per-column outer products ``x_i x_i^T`` (flattened), done in blocks to bound memory.
    """
    n_rows = ratings.shape[0]
    k = other.shape[1]
    x = np.hstack([other.astype(np.float64), np.ones((other.shape[0], 1))])  # (n_other, k+1)
    outer = np.einsum("ij,ik->ijk", x, x).reshape(x.shape[0], -1)  # (n_other, (k+1)^2)
    counts = np.diff(ratings.indptr)
    target = ratings.copy()
    target.data = ratings.data - mu - other_bias[ratings.indices]
    indicator = ratings.copy()
    indicator.data = np.ones_like(ratings.data)
    factors = np.zeros((n_rows, k), dtype=np.float64)
    bias = np.zeros(n_rows, dtype=np.float64)
    eye = np.eye(k + 1)
    for start in range(0, n_rows, block_rows):
        stop = min(start + block_rows, n_rows)
        gram = (indicator[start:stop] @ outer).reshape(stop - start, k + 1, k + 1)
        rhs = target[start:stop] @ x  # (rows, k+1)
        # ALS-WR: factor damping grows with the row's count; the bias gets a fixed damping.
        damp = np.empty((stop - start, k + 1))
        damp[:, :k] = reg * np.maximum(counts[start:stop], 1)[:, None]
        damp[:, k] = reg_bias
        gram += eye[None, :, :] * damp[:, None, :]
        solution = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
        factors[start:stop] = solution[:, :k]
        bias[start:stop] = solution[:, k]
    return factors, bias


def fit_mf(
    train: sp.csr_matrix,
    *,
    factors: int = 32,
    reg: float = 0.05,
    reg_bias: float = 5.0,
    iterations: int = 12,
    init_scale: float = 0.1,
    block_rows: int = 4096,
    random_state: int | np.random.Generator | None = None,
    on_iteration: Callable[[int, float], None] | None = None,
) -> FactorModel:
    """Biased MF: ``r_ui ~ mu + b_u + b_i + p_u . q_i``, the tutorials' dot-product-plus-biases model.

    Minimises ``sum (r_ui - mu - b_u - b_i - p_u.q_i)^2 + reg (n_u |p_u|^2 + n_i |q_i|^2)
    + reg_bias (b_u^2 + b_i^2)`` by alternating exact solves for users and books (each a batch of
    (k+1)x(k+1) ridge systems), starting from the damped-bias baseline and small random book factors.

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
    factors : int
    reg : float
        Factor regularisation, weighted by each row's rating count (ALS-WR).
    reg_bias : float
    iterations : int
        Each iteration updates users then books.
    init_scale : float
        Std of the initial book factors.
    block_rows : int
        Rows solved together; bounds memory at ``block_rows * (factors+1)^2`` doubles.
    random_state : int, Generator or None
    on_iteration : callable(iteration, train_rmse), optional
        Progress hook.

    Returns
    -------
    FactorModel with biases and float32 factors; ``info['train_rmse']`` per iteration.
    """
    rng = np.random.default_rng(random_state)
    r = sp.csr_matrix(train, dtype=np.float64)
    r.sort_indices()
    rt = r.T.tocsr()
    base = fit_biases(r)
    mu = base.global_mean
    q = rng.normal(0.0, init_scale, size=(r.shape[1], factors))
    b_i = base.book_bias.copy()
    users, books = r.nonzero()
    history: list[float] = []
    for it in range(iterations):
        p, b_u = _solve_side(r, q, b_i, mu, reg, reg_bias, block_rows)
        q, b_i = _solve_side(rt, p, b_u, mu, reg, reg_bias, block_rows)
        pred = mu + b_u[users] + b_i[books] + np.einsum("ij,ij->i", p[users], q[books])
        rmse = float(np.sqrt(np.mean((r.data - pred) ** 2)))
        history.append(rmse)
        if on_iteration:
            on_iteration(it + 1, rmse)
    return FactorModel(
        "mf",
        global_mean=mu,
        user_bias=b_u,
        book_bias=b_i,
        user_factors=p.astype(np.float32),
        book_factors=q.astype(np.float32),
        info={"train_rmse": history},
    )
