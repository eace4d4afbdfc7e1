"""Explicit biased matrix factorisation (optionally SVD++) by alternating least squares,
vectorised with numpy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from analytics.baseline import fit_biases
from analytics.factors import FactorModel
from base.params import BaselineParams, MfParams


def row_grams(rows: sp.csr_matrix, x: np.ndarray, *, max_cells: int = 1 << 18) -> np.ndarray:
    """Per-row Gram matrices ``G_u = sum_{i in row u} x_i x_i^T``, float32 shape (n_rows, d, d).

    Rows are sorted by length and taken in buckets of similar length (longest at most 1.25x the
    shortest), each padded into a dense (rows, length, d) block, so every Gram matrix comes from
    one batched BLAS product: about ``nnz * d^2`` flops, with no Python loop per row or rating.

    Parameters
    ----------
    rows : csr_matrix, shape (n_rows, n_other)
        Only the sparsity pattern is used.
    x : ndarray, shape (n_other, d)
    max_cells : int
        Cells gathered per block; bounds the temporary at ``max_cells * d`` float32.
    """
    n, d = rows.shape[0], x.shape[1]
    counts = np.diff(rows.indptr)
    order = np.argsort(counts, kind="stable")
    sorted_counts = counts[order]
    # One zero row past the end is what padding cells point at.
    padded = np.vstack([np.asarray(x, dtype=np.float32), np.zeros((1, d), dtype=np.float32)])
    out = np.zeros((n, d, d), dtype=np.float32)
    start = int(np.searchsorted(sorted_counts, 1))  # empty rows keep a zero Gram matrix
    while start < n:
        stop = int(np.searchsorted(sorted_counts, int(sorted_counts[start] * 1.25) + 1))
        longest = int(sorted_counts[stop - 1])
        stop = min(stop, start + max(1, max_cells // longest))
        longest = int(sorted_counts[stop - 1])
        block = order[start:stop]
        pos = np.arange(longest)
        cell = rows.indptr[block][:, None] + pos[None, :]
        valid = pos[None, :] < counts[block][:, None]
        cols = np.where(valid, rows.indices[np.minimum(cell, rows.nnz - 1)], x.shape[0])
        g = padded[cols]
        out[block] = np.matmul(g.transpose(0, 2, 1), g)
        start = stop
    return out


def batched_cg(
    gram: np.ndarray, damp: np.ndarray, rhs: np.ndarray, x0: np.ndarray, steps: int
) -> np.ndarray:
    """Approximately solve ``(G_u + diag(damp_u)) x_u = rhs_u`` for every row at once.

    Jacobi-preconditioned conjugate gradient, ``steps`` iterations from the warm start ``x0``; each
    costs ``n d^2`` (one batched matrix-vector product), against ``n d^3 / 3`` for exact solves.
    ALS only needs each half-step to improve, as in implicit's CG solver.

    Parameters
    ----------
    gram : ndarray of float32, shape (n, d, d)
    damp : ndarray, shape (n, d)
        Diagonal ridge added to each Gram matrix.
    rhs, x0 : ndarray, shape (n, d)
    steps : int
    """

    def apply(v: np.ndarray) -> np.ndarray:
        # float32 products (4x faster than casting the Gram matrices up), float64 iterates.
        return np.einsum("nij,nj->ni", gram, v.astype(np.float32)) + damp * v

    precond = 1.0 / (np.einsum("nii->ni", gram) + damp)
    x = np.array(x0, dtype=np.float64)
    r = rhs - apply(x)
    z = precond * r
    p = z.copy()
    rz = np.einsum("ni,ni->n", r, z)
    for _ in range(steps):
        ap = apply(p)
        denom = np.einsum("ni,ni->n", p, ap)
        alpha = np.divide(rz, denom, out=np.zeros_like(rz), where=denom > 0)
        x += alpha[:, None] * p
        r -= alpha[:, None] * ap
        z = precond * r
        rz_new = np.einsum("ni,ni->n", r, z)
        beta = np.divide(rz_new, rz, out=np.zeros_like(rz), where=rz > 0)
        p = z + beta[:, None] * p
        rz = rz_new
    return x


def _cg(
    matvec: Callable[[np.ndarray], np.ndarray], b: np.ndarray, x0: np.ndarray, steps: int
) -> np.ndarray:
    """Plain conjugate gradient for one symmetric positive-definite system on matrix-shaped
    unknowns."""
    x = x0.copy()
    r = b - matvec(x)
    p = r.copy()
    rr = float(np.sum(r * r))
    for _ in range(steps):
        if rr <= 1e-20:
            break
        ap = matvec(p)
        alpha = rr / float(np.sum(p * ap))
        x += alpha * p
        r -= alpha * ap
        rr_new = float(np.sum(r * r))
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def _gram_times(gram: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``G_u v_u`` for every row (float32 products, float64 result)."""
    return np.einsum("nij,nj->ni", gram, v.astype(np.float32)).astype(np.float64)


def _weighted_sums(
    r: sp.csr_matrix, values: np.ndarray, x: np.ndarray, *, by_book: bool = False
) -> np.ndarray:
    """``sum_i values_ui x_i`` per user (or ``sum_u values_ui x_u`` per book with ``by_book``).

    ``values`` follows ``r``'s cell order. float32 products (twice as fast as float64, and the Gram
    matrices are float32 already); per-book sums go through the CSC view of ``r``, ~4x faster than
    a CSR transpose here because the dense rows are then read in order.
    """
    m = sp.csr_matrix((values.astype(np.float32), r.indices, r.indptr), shape=r.shape)
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    return np.asarray((m.T if by_book else m) @ x32, dtype=np.float64)


def _rowwise_dot(
    a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray, chunk: int = 1 << 20
) -> np.ndarray:
    """``sum_k a[ia, k] * b[ib, k]`` in chunks, so the gathered rows never exceed ``chunk``
    cells."""
    out = np.empty(len(ia), dtype=np.float64)
    for s in range(0, len(ia), chunk):
        out[s : s + chunk] = np.einsum(
            "ij,ij->i", a[ia[s : s + chunk]], b[ib[s : s + chunk]], dtype=np.float64
        )
    return out


def fit_mf(
    train: sp.csr_matrix,
    params: MfParams | None = None,
    *,
    block_rows: int = 4096,
    on_iteration: Callable[[int, float], None] | None = None,
    cg_steps: int = 2,
    validation: sp.csr_matrix | None = None,
    patience: int | None = None,
) -> FactorModel:
    """Biased MF: ``r_ui ~ mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)``.

    With ``implicit_reg=0`` the ``y`` term is absent and this is the tutorials'
    dot-product-plus-biases model. With it, it is Koren's SVD++: every book also carries a vector
    ``y_j`` (plus a scalar, an implicit user-bias term), and a user's taste is shifted by the mean
    of the ``y`` of the books they rated, ``N(u)`` = the books of their row in ``train``. Users with
    few ratings are then described mostly by *which* books they chose, shared across users, rather
    than by a free vector fitted to a handful of ratings. Only the training matrix is used.

    Minimises ``sum (r_ui - rhat_ui)^2 + reg (n_u |p_u|^2 + n_i |q_i|^2) + reg_bias (b_u^2 + b_i^2)
    + implicit_reg |Y|^2`` (ALS-WR: factor damping grows with each row's count; the weighted trace
    norm of Salakhutdinov & Srebro in factored form) by alternating updates: users (``[p_u, b_u]``),
    then ``Y`` (one linear least-squares problem, solved by CG), then books (``[q_i, b_i]``). Each
    side is a batch of (k+1)x(k+1) ridge systems whose Gram matrices come from one batched BLAS
    product per bucket of rows (:func:`row_grams`, ``nnz (k+1)^2`` flops) and are solved by
    warm-started CG (:func:`batched_cg`, ``n (k+1)^2`` per step), never by a loop over ratings.

    Parameters
    ----------
    train : csr_matrix, shape (n_users, n_books)
    params : MfParams
        ``factors``; ``reg``: factor regularisation, weighted by each row's rating count (ALS-WR);
        ``reg_bias``; ``iterations``: each updates users, then ``Y``, then books; ``init_scale``:
        std of the initial book factors; ``implicit_reg``: ridge penalty of the SVD++ vectors
        ``y``, 0 leaves the term out (plain biased MF); ``random_state``.
    block_rows : int
        Bounds the Gram step's temporary at ``block_rows * 64 * (factors + 1)`` float32.
    on_iteration : callable(iteration, train_rmse), optional
        Progress hook.
    cg_steps : int
        Conjugate-gradient steps per half-update (the ``Y`` update takes twice as many).
    validation : csr_matrix, shape (n_users, n_books), optional
        Held-out ratings scored after every iteration into ``info['validation_rmse']`` (for early
        stopping in tuning); never used for fitting.
    patience : int, optional
        With ``validation``: stop once its RMSE has not improved for this many iterations.

    Returns
    -------
    FactorModel with biases and float32 factors (the SVD++ term folded into ``user_factors`` and
    ``user_bias``); ``info['train_rmse']`` (and ``'validation_rmse'``) per iteration.
    """
    params = params or MfParams()
    factors, reg, reg_bias = params.factors, params.reg, params.reg_bias
    iterations, implicit_reg = params.iterations, params.implicit_reg
    rng = np.random.default_rng(params.random_state)
    r = sp.csr_matrix(train, dtype=np.float64, copy=True)
    r.sum_duplicates()
    r.sort_indices()
    rt = r.T.tocsr()
    n_users, n_books = r.shape
    k = factors
    max_cells = max(1, block_rows) * 64
    books = r.indices
    users = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(r.indptr))
    base = fit_biases(r, BaselineParams(reg_user=reg_bias, reg_book=reg_bias))
    mu = base.global_mean
    q = rng.normal(0.0, params.init_scale, size=(n_books, k))
    b_i = base.book_bias.copy()
    p = np.zeros((n_users, k))
    b_u = base.user_bias.copy()
    damp_u = np.empty((n_users, k + 1))
    damp_u[:, :k] = reg * np.maximum(np.diff(r.indptr), 1)[:, None]
    damp_u[:, k] = reg_bias
    damp_i = np.empty((n_books, k + 1))
    damp_i[:, :k] = reg * np.maximum(np.diff(rt.indptr), 1)[:, None]
    damp_i[:, k] = reg_bias

    if implicit_reg > 0:
        # N(u) normalised by |N(u)|^-1/2: z_u = norm_rated[u] @ y.
        norm = np.repeat(1.0 / np.sqrt(np.maximum(np.diff(r.indptr), 1)), np.diff(r.indptr))

        def spread(v: np.ndarray) -> np.ndarray:  # z = norm_rated @ v
            return _weighted_sums(r, norm, v)

        def gather(v: np.ndarray) -> np.ndarray:  # norm_rated^T @ v
            return _weighted_sums(r, norm, v, by_book=True)

        y = np.zeros((n_books, k + 1))
    z = np.zeros((n_users, k + 1))

    if validation is not None:
        val = sp.csr_matrix(validation, dtype=np.float64)
        val_users = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(val.indptr))
        val_books = val.indices

    history: list[float] = []
    val_history: list[float] = []
    for it in range(iterations):
        # Users: [p_u, b_u] given books, on targets net of the implicit term. Every sum over a row's
        # cells of (vector . x_i) x_i is that row's Gram matrix times the vector, so no per-rating
        # dot products are needed: sum_i (r_ui - mu - b_i - z_u . x_i) x_i = R' x - G_u z_u.
        x = np.hstack([q, np.ones((n_books, 1))])
        gram = row_grams(r, x, max_cells=max_cells)
        base_rhs = _weighted_sums(r, r.data - mu - b_i[books], x)
        rhs = base_rhs - _gram_times(gram, z) if implicit_reg > 0 else base_rhs
        solution = batched_cg(gram, damp_u, rhs, np.hstack([p, b_u[:, None]]), cg_steps)
        p, b_u = solution[:, :k], solution[:, k]

        if implicit_reg > 0:
            # Y: minimise sum (t_ui - z_u . x_i)^2 + implicit_reg |Y|^2 with z = norm_rated @ Y and
            # t_ui = r_ui - mu - b_i - [p_u, b_u] . x_i. Its normal equations need only each user's
            # Gram matrix of x, already computed above.
            b = gather(base_rhs - _gram_times(gram, solution))

            def normal(v: np.ndarray, gram: np.ndarray = gram) -> np.ndarray:
                return gather(_gram_times(gram, spread(v))) + implicit_reg * v

            y = _cg(normal, b, y, 2 * cg_steps)
            z = spread(y)

        # Books: [q_i, b_i] given each user's whole taste vector and bias.
        taste = p + z[:, :k]
        bias = b_u + z[:, k]
        xt = np.hstack([taste, np.ones((n_users, 1))])
        gram_t = row_grams(rt, xt, max_cells=max_cells)
        target = r.data - mu - bias[users]
        rhs_t = _weighted_sums(r, target, xt, by_book=True)
        solution = batched_cg(gram_t, damp_i, rhs_t, np.hstack([q, b_i[:, None]]), cg_steps)
        q, b_i = solution[:, :k], solution[:, k]

        # Training error from the same sums: |t - X w|^2 = |t|^2 - 2 w . X^T t + w^T G w per book.
        sse = (
            float(target @ target)
            - 2.0 * float(np.sum(solution * rhs_t))
            + float(np.sum(solution * _gram_times(gram_t, solution)))
        )
        rmse = float(np.sqrt(max(sse, 0.0) / max(r.nnz, 1)))
        history.append(rmse)
        if validation is not None:
            vpred = np.clip(
                mu
                + bias[val_users]
                + b_i[val_books]
                + _rowwise_dot(taste, q, val_users, val_books),
                1.0,
                5.0,
            )
            val_history.append(float(np.sqrt(np.mean((val.data - vpred) ** 2))))
        if on_iteration:
            on_iteration(it + 1, rmse)
        if (
            validation is not None
            and patience
            and len(val_history) - 1 - int(np.argmin(val_history)) >= patience
        ):
            break
    info: dict = {"train_rmse": history}
    if validation is not None:
        info["validation_rmse"] = val_history
    return FactorModel(
        "mf",
        global_mean=mu,
        user_bias=b_u + z[:, k],
        book_bias=b_i,
        user_factors=(p + z[:, :k]).astype(np.float32),
        book_factors=q.astype(np.float32),
        book_implicit=y.astype(np.float32) if implicit_reg > 0 else None,
        info=info,
    )
