"""Known-answer maths and properties of analytics/ on small matrices (pure functions, no
database)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from analytics.als import fit_als
from analytics.baseline import fit_biases, fit_global_mean
from analytics.metrics import (
    auc_against_random,
    ranking_and_auc,
    ranking_metrics,
    rating_metrics,
    relevant_test,
    top_n,
)
from analytics.mf import fit_mf
from analytics.neighbours import centroid_recommendations, closest_favourite, top_k_cosine
from analytics.projections import pca_2d, tsne_2d
from analytics.svd import fit_svd
from base.params import AlsParams, BaselineParams, MfParams, SvdParams

PROPERTY = settings(max_examples=25, deadline=None)


def all_cells(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(users, books) of every cell of a matrix, row-major."""
    users, books = np.indices(shape)
    return users.ravel(), books.ravel()


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def block_matrix(n_users: int, n_books: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Two user groups each rating every book of their own group 5, minus one held-out book per
    user.

    Users and books alternate groups (index parity). Returns (train, held_out book per user).
    """
    user_group = np.arange(n_users) % 2
    book_group = np.arange(n_books) % 2
    dense = np.where(user_group[:, None] == book_group[None, :], 5.0, 0.0)
    per_group = n_books // 2
    held = np.array(
        [np.flatnonzero(book_group == user_group[u])[(u // 2) % per_group] for u in range(n_users)]
    )
    dense[np.arange(n_users), held] = 0.0
    return sp.csr_matrix(dense), held


def biases_plus_low_rank(n_users: int, n_books: int, rank: int, seed: int) -> np.ndarray:
    """``3 + b_u + b_i + P Q^T`` with every entry inside the 1..5 scale (so clipping never
    bites)."""
    rng = np.random.default_rng(seed)
    b_u = rng.uniform(-0.5, 0.5, n_users)
    b_i = rng.uniform(-0.5, 0.5, n_books)
    scale = math.sqrt(0.9 / rank)  # |P Q^T| <= rank * scale^2 = 0.9
    p = rng.uniform(-scale, scale, (n_users, rank))
    q = rng.uniform(-scale, scale, (n_books, rank))
    dense = 3.0 + b_u[:, None] + b_i[None, :] + p @ q.T
    assert dense.min() > 1.0 and dense.max() < 5.0
    return dense


# ----------------------------------------------------------------------------- SVD


def test_fit_svd_reconstructs_an_exactly_rank_3_matrix():
    rng = np.random.default_rng(0)
    dense = (
        rng.uniform(0.6, 1.1, (30, 3)) @ rng.uniform(0.6, 1.1, (20, 3)).T
    )  # entries in (1.08, 3.63)
    model = fit_svd(sp.csr_matrix(dense), SvdParams(k=3, remove_biases=False, random_state=0))

    users, books = all_cells(dense.shape)
    np.testing.assert_allclose(model.predict(users, books), dense.ravel(), atol=1e-4)
    np.testing.assert_allclose(model.user_factors @ model.book_factors.T, dense, atol=1e-4)
    assert model.user_bias is None and model.book_bias is None and model.global_mean == 0.0
    assert model.user_factors.shape == (30, 3) and model.book_factors.shape == (20, 3)
    s = model.info["singular_values"]
    assert s == sorted(s, reverse=True) and len(s) == 3


def test_fit_svd_removes_biases_then_reconstructs_rank_2_residuals():
    dense = biases_plus_low_rank(40, 25, rank=2, seed=1)
    users, books = all_cells(dense.shape)
    model = fit_svd(
        sp.csr_matrix(dense),
        SvdParams(k=2, remove_biases=True, reg_user=0.0, reg_book=0.0, random_state=0),
    )
    assert rmse(model.predict(users, books), dense.ravel()) < 1e-4
    # The biases alone leave the rank-2 part unexplained: the SVD term is doing the work.
    biases_only = fit_biases(sp.csr_matrix(dense), BaselineParams(reg_user=0.0, reg_book=0.0))
    assert rmse(biases_only.predict(users, books), dense.ravel()) > 0.1


def test_fit_svd_is_reproducible_and_checks_k():
    dense = biases_plus_low_rank(30, 20, rank=3, seed=2)
    dense[np.random.default_rng(2).random(dense.shape) < 0.4] = 0.0
    train = sp.csr_matrix(dense)
    a = fit_svd(train, SvdParams(k=3, random_state=5))
    b = fit_svd(train, SvdParams(k=3, random_state=5))
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    np.testing.assert_array_equal(a.book_factors, b.book_factors)
    for k in (0, 20):
        with pytest.raises(ValueError, match="k="):
            fit_svd(train, SvdParams(k=k))


# ----------------------------------------------------------------------------- biases


def planted_biases(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fully observed 200 x 100 ``3.5 + b_u + b_i + noise`` matrix and its planted biases."""
    rng = np.random.default_rng(seed)
    b_u = rng.uniform(-0.7, 0.7, 200)
    b_i = rng.uniform(-0.7, 0.7, 100)
    dense = 3.5 + b_u[:, None] + b_i[None, :] + rng.normal(0.0, 0.05, (200, 100))
    assert dense.min() > 1.0 and dense.max() < 5.0
    return dense, b_u, b_i


def test_fit_biases_recovers_planted_biases():
    dense, b_u, b_i = planted_biases()
    model = fit_biases(
        sp.csr_matrix(dense), BaselineParams(reg_user=0.01, reg_book=0.01, iterations=20)
    )

    assert model.global_mean == pytest.approx(dense.mean())
    assert np.corrcoef(model.user_bias, b_u)[0, 1] > 0.99
    assert np.corrcoef(model.book_bias, b_i)[0, 1] > 0.99
    # Biases are identified up to a shift shared with the mean, so compare them centred.
    assert np.mean(np.abs((model.user_bias - model.user_bias.mean()) - (b_u - b_u.mean()))) < 0.02
    assert np.mean(np.abs((model.book_bias - model.book_bias.mean()) - (b_i - b_i.mean()))) < 0.02
    users, books = all_cells(dense.shape)
    assert rmse(model.predict(users, books), dense.ravel()) < 0.06  # the noise is 0.05
    assert model.user_bias.dtype == np.float64 and model.user_bias.shape == (200,)
    assert model.book_bias.dtype == np.float64 and model.book_bias.shape == (100,)


def test_fit_biases_damps_a_user_with_one_rating_toward_zero():
    dense, _, _ = planted_biases()
    # An extra user with a single 5 on a middling book: a large raw residual from one rating.
    one = np.zeros((1, dense.shape[1]))
    one[0, 0] = 5.0
    train = sp.csr_matrix(np.vstack([dense, one]))
    damped = fit_biases(train, BaselineParams(reg_user=5.0, reg_book=0.01, iterations=20))
    undamped = fit_biases(train, BaselineParams(reg_user=0.0, reg_book=0.01, iterations=20))

    raw = 5.0 - damped.global_mean - damped.book_bias[0]
    assert undamped.user_bias[-1] == pytest.approx(
        5.0 - undamped.global_mean - undamped.book_bias[0]
    )
    assert damped.user_bias[-1] == pytest.approx(raw / (1 + 5.0))  # sum(residual) / (n + reg)
    assert 0 < damped.user_bias[-1] < 0.2 * undamped.user_bias[-1]
    # A user with 100 ratings is barely damped by the same reg: n / (n + 5) of the undamped value.
    np.testing.assert_allclose(
        damped.user_bias[:200], undamped.user_bias[:200] * 100 / 105, atol=0.01
    )


def test_stored_zeros_are_missing_ratings_for_biases_and_svd():
    dense = biases_plus_low_rank(30, 20, rank=2, seed=3)
    dense[np.random.default_rng(3).random(dense.shape) < 0.3] = 0.0
    clean = sp.csr_matrix(dense)
    with_zeros = clean.copy()
    with_zeros.data[::5] = 0.0
    without = with_zeros.copy()
    without.eliminate_zeros()
    for fit in (fit_biases, lambda m: fit_svd(m, SvdParams(k=2, random_state=0))):
        a, b = fit(with_zeros), fit(without)
        assert a.global_mean == b.global_mean
        np.testing.assert_array_equal(a.user_bias, b.user_bias)
        np.testing.assert_array_equal(a.book_bias, b.book_bias)
    np.testing.assert_array_equal(
        fit_svd(with_zeros, SvdParams(k=2, random_state=0)).book_factors,
        fit_svd(without, SvdParams(k=2, random_state=0)).book_factors,
    )
    assert (with_zeros.data == 0).any()  # the caller's matrix is untouched


def test_fit_biases_rejects_an_empty_matrix():
    with pytest.raises(ValueError, match="empty"):
        fit_biases(sp.csr_matrix((3, 4)))


# ----------------------------------------------------------------------------- ALS


@pytest.mark.parametrize("random_state", [0, 1, 2])
def test_als_ranks_the_held_out_in_group_book_first(random_state):
    train, held = block_matrix(40, 20)
    model = fit_als(
        train,
        AlsParams(
            factors=4,
            regularization=0.5,
            iterations=15,
            random_state=random_state,
            alpha=2.0,
            weighting="rating",
        ),
    )
    assert not model.predicts_ratings
    scores = model.scores(np.arange(40))
    first = top_n(scores, train, np.arange(40), 1)[:, 0]
    np.testing.assert_array_equal(first, held)


def test_als_is_deterministic_for_a_random_state():
    train, _ = block_matrix(20, 12)
    a = fit_als(
        train,
        AlsParams(
            factors=4,
            regularization=0.5,
            iterations=5,
            random_state=3,
            alpha=2.0,
            weighting="rating",
        ),
    )
    b = fit_als(
        train,
        AlsParams(
            factors=4,
            regularization=0.5,
            iterations=5,
            random_state=3,
            alpha=2.0,
            weighting="rating",
        ),
    )
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    np.testing.assert_array_equal(a.book_factors, b.book_factors)
    assert a.book_factors.dtype == np.float32 and a.book_factors.shape == (12, 4)
    with pytest.raises(ValueError):
        a.predict(np.array([0]), np.array([0]))


# ----------------------------------------------------------------------------- explicit MF


@pytest.fixture(scope="module")
def half_observed() -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Biases + rank 3 + noise on 150 x 80, half the cells observed: (train, test users, test books,
    truth)."""
    rng = np.random.default_rng(4)
    n_users, n_books, rank = 150, 80, 3
    dense = (
        3.0
        + rng.uniform(-0.4, 0.4, n_users)[:, None]
        + rng.uniform(-0.4, 0.4, n_books)[None, :]
        + rng.normal(0.0, 0.5, (n_users, rank)) @ rng.normal(0.0, 0.5, (n_books, rank)).T
        + rng.normal(0.0, 0.1, (n_users, n_books))
    ).clip(1.0, 5.0)
    observed = rng.random(dense.shape) < 0.5
    test_users, test_books = np.nonzero(~observed)
    return sp.csr_matrix(np.where(observed, dense, 0.0)), test_users, test_books, dense[~observed]


def test_fit_mf_beats_the_bias_baseline_on_held_out_cells(half_observed):
    train, users, books, truth = half_observed
    model = fit_mf(
        train, MfParams(factors=4, reg=0.05, iterations=15, random_state=0, implicit_reg=0.0)
    )
    baseline = fit_biases(train)
    baseline_rmse = rmse(baseline.predict(users, books), truth)
    mf_rmse = rmse(model.predict(users, books), truth)
    assert baseline_rmse > 0.35  # the planted rank-3 part is real signal the biases miss
    assert mf_rmse < 0.5 * baseline_rmse
    assert mf_rmse < 0.2  # near the 0.1 noise floor


def test_fit_mf_train_rmse_decreases(half_observed):
    train = half_observed[0]
    model = fit_mf(
        train, MfParams(factors=4, reg=0.05, iterations=10, random_state=0, implicit_reg=0.0)
    )
    history = np.array(model.info["train_rmse"])
    assert len(history) == 10
    assert history[-1] < 0.5 * history[0]
    # ALS minimises the penalised loss, so near convergence the bare RMSE may tick up a little as
    # the factors shrink; it never climbs by more than 2% in a step, nor ends far from its best.
    assert np.all(np.diff(history) <= 0.02 * history[:-1]), history
    assert history[-1] <= 1.02 * history.min()
    assert history[1] < history[0]


def test_fit_mf_is_deterministic_for_a_random_state(half_observed):
    train = half_observed[0]
    a = fit_mf(train, MfParams(factors=4, iterations=3, random_state=11, implicit_reg=0.0))
    b = fit_mf(train, MfParams(factors=4, iterations=3, random_state=11, implicit_reg=0.0))
    for name in ("user_factors", "book_factors", "user_bias", "book_bias"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.global_mean == b.global_mean
    assert a.info["train_rmse"] == b.info["train_rmse"]


# ----------------------------------------------------------------------------- rating metrics


def by_name(metrics) -> dict:
    return {m.name: m for m in metrics}


def test_rating_metrics_match_hand_computed_values():
    users = np.array([0, 0, 1, 2])
    truth = np.array([3.0, 4.0, 5.0, 2.0])
    predicted = np.array([3.5, 4.0, 4.0, 2.5])  # errors 0.5, 0, -1, 0.5
    m = by_name(rating_metrics(users, truth, predicted, n_boot=50, random_state=0))
    assert m["mse"].value == pytest.approx((0.25 + 0 + 1 + 0.25) / 4)
    assert m["rmse"].value == pytest.approx(math.sqrt(1.5 / 4))
    assert m["mae"].value == pytest.approx((0.5 + 0 + 1 + 0.5) / 4)
    assert all(m[name].k is None for name in m)


def test_rating_metric_intervals_contain_the_estimate_and_narrow_with_more_users():
    def metrics(n_users: int) -> dict:
        rng = np.random.default_rng(n_users)
        users = np.repeat(np.arange(n_users), 5)
        truth = rng.integers(1, 6, len(users)).astype(float)
        predicted = truth + rng.normal(0.0, 1.0, len(users))
        return by_name(rating_metrics(users, truth, predicted, n_boot=300, random_state=0))

    few, many = metrics(30), metrics(3000)
    for m in (few, many):
        for name in ("rmse", "mse", "mae"):
            assert m[name].ci_low <= m[name].value <= m[name].ci_high, m[name]
    for name in ("rmse", "mse", "mae"):
        assert many[name].ci_high - many[name].ci_low < 0.3 * (few[name].ci_high - few[name].ci_low)


# ----------------------------------------------------------------------------- ranking metrics


def test_ranking_metrics_of_an_oracle_are_perfect():
    rng = np.random.default_rng(0)
    n_users, n_books, k = 30, 40, 5
    train = sp.csr_matrix((rng.random((n_users, n_books)) < 0.2).astype(float))
    relevant_dense = (rng.random((n_users, n_books)) < 0.25) & (train.toarray() == 0)
    relevant_dense[:, 0] = train.toarray()[:, 0] == 0  # at least one relevant book for most users
    relevant = sp.csr_matrix(relevant_dense.astype(float))
    oracle = lambda users: relevant[users].toarray().astype(np.float32)  # noqa: E731
    m = by_name(ranking_metrics(oracle, train, relevant, k=k, n_boot=20, random_state=0))

    n_rel = relevant_dense.sum(axis=1)
    rel = n_rel[n_rel > 0]
    assert m["ndcg"].value == pytest.approx(1.0)
    assert m["map"].value == pytest.approx(1.0)
    # Precision is 1 only for users with at least k relevant books, recall only for at most k.
    assert m["precision"].value == pytest.approx(np.mean(np.minimum(rel, k) / k))
    assert m["recall"].value == pytest.approx(np.mean(np.minimum(rel, k) / rel))
    assert (rel >= k).any() and (rel < k).any()


def test_ranking_metrics_on_a_hand_built_three_user_example():
    train = sp.csr_matrix(
        np.array(
            [
                [1, 0, 0, 0, 0, 0],  # user 0 rated book 0
                [0, 1, 0, 0, 0, 0],  # user 1 rated book 1
                [1, 0, 0, 0, 0, 1],  # user 2 rated books 0 and 5
                [0, 0, 0, 0, 0, 0],  # user 3 has nothing held out: not evaluated
            ],
            dtype=float,
        )
    )
    relevant = sp.csr_matrix(
        np.array(
            [
                [0, 0, 0, 1, 1, 0],  # {3, 4}
                [0, 0, 0, 1, 0, 0],  # {3}
                [0, 1, 1, 0, 1, 0],  # {1, 2, 4}
                [0, 0, 0, 0, 0, 0],
            ],
            dtype=float,
        )
    )
    scores = np.array(
        [
            [9, 8, 1, 7, 2, 3],  # unrated ranking 1, 3, ... -> top-2 [1, 3]: hits [0, 1]
            [1, 9, 5, 6, 0, 0.5],  # -> [3, 2]: hits [1, 0]
            [9, 1, 2, 3, 4, 8],  # -> [4, 3]: hits [1, 0]
            [0, 0, 0, 0, 0, 9],
        ],
        dtype=np.float32,
    )
    score_fn = lambda users: scores[users].copy()  # noqa: E731
    m = by_name(ranking_metrics(score_fn, train, relevant, k=2, n_boot=20, random_state=0))

    d2 = 1 / math.log2(3)  # discount of rank 2
    precision = [1 / 2, 1 / 2, 1 / 2]
    recall = [1 / 2, 1 / 1, 1 / 3]
    ndcg = [d2 / (1 + d2), 1.0, 1 / (1 + d2)]  # ideal DCG over min(n_relevant, k) = 2, 1, 2 hits
    ap = [(1 / 2) / 2, 1 / 1, 1 / 2]  # precision at each hit, over min(n_relevant, k)
    assert m["precision"].value == pytest.approx(np.mean(precision))
    assert m["recall"].value == pytest.approx(np.mean(recall))
    assert m["ndcg"].value == pytest.approx(np.mean(ndcg))
    assert m["map"].value == pytest.approx(np.mean(ap))
    assert m["coverage"].value == pytest.approx(4 / 6)  # books 1, 2, 3 and 4 were shown
    assert all(m[name].k == 2 for name in m)
    for name in ("precision", "recall", "ndcg", "map"):
        assert m[name].ci_low <= m[name].value <= m[name].ci_high


def test_coverage_counts_only_books_actually_shown():
    # The user rated every book but one: only that one can be shown, even at k=3.
    train = sp.csr_matrix(np.array([[1, 1, 1, 1, 0, 1]], dtype=float))
    relevant = sp.csr_matrix(np.array([[0, 0, 0, 0, 1, 0]], dtype=float))
    score_fn = lambda users: np.tile(np.arange(6, dtype=np.float32), (len(users), 1))  # noqa: E731
    m = by_name(ranking_metrics(score_fn, train, relevant, k=3, n_boot=10, random_state=0))
    assert m["coverage"].value == pytest.approx(1 / 6)
    assert m["recall"].value == 1.0 and m["precision"].value == pytest.approx(1 / 3)


def test_ranking_metrics_with_k_beyond_the_catalogue():
    train = sp.csr_matrix((2, 4))
    relevant = sp.csr_matrix(np.array([[0, 1, 0, 0], [1, 0, 0, 1]], dtype=float))
    oracle = lambda users: relevant[users].toarray().astype(np.float32)  # noqa: E731
    m = by_name(ranking_metrics(oracle, train, relevant, k=10, n_boot=10, random_state=0))
    assert m["precision"].value == pytest.approx(np.mean([1 / 10, 2 / 10]))
    assert (
        m["recall"].value == 1.0
        and m["ndcg"].value == pytest.approx(1.0)
        and m["map"].value == pytest.approx(1.0)
    )
    assert m["coverage"].value == 1.0


def test_auc_against_random_oracle_reversed_random_and_constant():
    rng = np.random.default_rng(0)
    n_users, n_books = 50, 200
    train = sp.csr_matrix((rng.random((n_users, n_books)) < 0.1).astype(float))
    pos_dense = (rng.random((n_users, n_books)) < 0.1) & (train.toarray() == 0)
    positives = sp.csr_matrix(pos_dense.astype(float))
    truth = pos_dense.astype(np.float32)

    def auc(fn) -> float:
        return auc_against_random(fn, train, positives, n_boot=50, random_state=0).value

    assert auc(lambda users: truth[users]) == 1.0
    assert auc(lambda users: -truth[users]) == 0.0
    assert auc(lambda users: rng.random((len(users), n_books)).astype(np.float32)) == pytest.approx(
        0.5, abs=0.05
    )
    # Ties count one half: a constant scorer is at chance wherever the positives sit in the
    # catalogue.
    assert auc(lambda users: np.zeros((len(users), n_books), dtype=np.float32)) == pytest.approx(
        0.5
    )
    # ... even when every positive is among the last books of the catalogue.
    late = sp.csr_matrix(np.tile(np.arange(n_books) >= n_books - 5, (n_users, 1)).astype(float))
    constant = lambda users: np.zeros((len(users), n_books), dtype=np.float32)  # noqa: E731
    metric = auc_against_random(constant, sp.csr_matrix((n_users, n_books)), late, n_boot=10)
    assert metric.value == pytest.approx(0.5) and metric.name == "to_read_auc"


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    levels=st.integers(1, 6),
    n_users=st.integers(1, 9),
    block=st.integers(1, 4),
)
def test_auc_equals_mann_whitney_from_average_ranks(seed, levels, n_users, block):
    """The per-row key search gives exactly the textbook U statistic, ties (few score levels)
    included."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(seed)
    n_books = 15
    train = sp.csr_matrix((rng.random((n_users, n_books)) < 0.2).astype(float))
    positives = sp.csr_matrix(
        ((rng.random((n_users, n_books)) < 0.3) & (train.toarray() == 0)).astype(float)
    )
    scores = (rng.integers(-levels, levels + 1, (n_users, n_books)) * 0.5).astype(np.float32)
    scores[rng.random(scores.shape) < 0.05] = -0.0
    expected = []
    for u in range(n_users):
        pos = positives[u].toarray().ravel() != 0
        neg = ~pos & (train[u].toarray().ravel() == 0)
        if pos.any():
            ranks = rankdata(scores[u][pos | neg])
            n_pos, n_neg = pos.sum(), neg.sum()
            u_stat = ranks[pos[pos | neg]].sum() - n_pos * (n_pos + 1) / 2
            expected.append(u_stat / max(n_pos * n_neg, 1))
    metric = auc_against_random(
        lambda u: scores[u].copy(), train, positives, block=block, n_boot=10, random_state=0
    )
    if expected:
        assert metric.value == pytest.approx(np.mean(expected), abs=1e-12)
    else:
        assert np.isnan(metric.value)


def test_auc_ignores_books_rated_in_training():
    # Book 0 is rated in training and scored highest: it is neither a positive nor a negative.
    train = sp.csr_matrix(np.array([[1, 0, 0, 0]], dtype=float))
    positives = sp.csr_matrix(np.array([[0, 1, 0, 0]], dtype=float))
    scores = np.array([[9, 5, 1, 2]], dtype=np.float32)
    assert auc_against_random(lambda u: scores[u].copy(), train, positives, n_boot=10).value == 1.0


@pytest.mark.parametrize("block", [1, 3, 64])
def test_one_scoring_pass_gives_the_figures_of_ranking_metrics_and_the_auc(block):
    rng = np.random.default_rng(5)
    n_users, n_books = 40, 25
    train = sp.csr_matrix((rng.random((n_users, n_books)) < 0.2).astype(float))
    test = sp.csr_matrix(
        ((rng.random((n_users, n_books)) < 0.15) * rng.integers(1, 6, (n_users, n_books))).astype(
            float
        )
    )
    relevant = relevant_test(test)
    # Users with relevant books and users with to-read books overlap only in part.
    to_read = sp.csr_matrix(
        ((rng.random((n_users, n_books)) < 0.1) & (np.arange(n_users) % 3 != 0)[:, None]).astype(
            float
        )
    )
    scores = rng.normal(size=(n_users, n_books)).astype(np.float32)
    calls: list[np.ndarray] = []

    def score_fn(users):
        calls.append(np.asarray(users))
        return scores[users].copy()

    both = ranking_and_auc(
        score_fn, train, relevant, to_read, k=5, block=block, n_boot=30, random_state=3
    )
    scored = np.concatenate(calls)
    assert len(scored) == len(set(scored.tolist()))  # every user scored once
    separate = [
        *ranking_metrics(score_fn, train, relevant, k=5, block=block, n_boot=30, random_state=3),
        auc_against_random(score_fn, train, to_read, block=block, n_boot=30, random_state=3),
    ]
    assert both == separate
    # Without to-read books there is no AUC, and the ranking figures stand.
    assert (
        ranking_and_auc(
            score_fn,
            train,
            relevant,
            sp.csr_matrix((n_users, n_books)),
            k=5,
            n_boot=30,
            random_state=3,
        )
        == separate[:-1]
    )


# ----------------------------------------------------------------------------- top_n


def test_top_n_orders_by_score_and_skips_excluded():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=float))
    top = top_n(scores.copy(), exclude, np.array([0, 2]), 2)
    np.testing.assert_array_equal(
        top, [[3, 2], [1, 2]]
    )  # row 1 of scores is user 2, who excludes book 0


@st.composite
def scores_and_exclusions(draw):
    n_rows = draw(st.integers(1, 5))
    n_books = draw(st.integers(1, 12))
    scores = draw(
        hnp.arrays(np.float32, (n_rows, n_books), elements=st.floats(-100, 100, width=32))
    )
    excluded = draw(hnp.arrays(np.bool_, (n_rows, n_books)))
    n = draw(st.integers(1, n_books + 2))
    return scores, excluded, n


@PROPERTY
@given(scores_and_exclusions())
def test_top_n_never_returns_an_excluded_book_while_allowed_ones_remain(case):
    scores, excluded, n = case
    n_rows, n_books = scores.shape
    # exclude is indexed by user: spread the rows over users 3, 5, 7... of a bigger matrix.
    rows = np.arange(n_rows) * 2 + 3
    exclude = sp.lil_matrix((rows.max() + 2, n_books))
    exclude[rows] = excluded.astype(float)
    top = top_n(scores.copy(), exclude.tocsr(), rows, n)

    assert top.shape == (n_rows, min(n, n_books))
    for row in range(n_rows):
        allowed = np.flatnonzero(~excluded[row])
        shown = min(len(allowed), top.shape[1])
        assert len(set(top[row])) == top.shape[1]
        assert not excluded[row, top[row, :shown]].any()
        assert excluded[row, top[row, shown:]].all()  # padding only once the allowed books run out
        best = np.sort(scores[row, allowed])[::-1][:shown]
        np.testing.assert_array_equal(scores[row, top[row, :shown]], best)


# ----------------------------------------------------------------------------- neighbours


def brute_force_cosine(vectors: np.ndarray) -> np.ndarray:
    v = vectors.astype(np.float64)
    norms = np.linalg.norm(v, axis=1)
    unit = v / np.where(norms == 0, 1, norms)[:, None]
    return unit @ unit.T


@pytest.mark.parametrize("block", [3, 2048])
def test_top_k_cosine_matches_brute_force(block):
    vectors = np.random.default_rng(0).normal(size=(25, 6)).astype(np.float32)
    indices, scores = top_k_cosine(vectors, k=5, block=block)
    sims = brute_force_cosine(vectors)
    np.fill_diagonal(sims, -np.inf)
    expected = np.argsort(-sims, axis=1, kind="stable")[:, :5]

    assert indices.shape == (25, 5) and indices.dtype == np.int32 and scores.dtype == np.float32
    np.testing.assert_array_equal(indices, expected)  # random vectors: no ties
    np.testing.assert_allclose(scores, np.take_along_axis(sims, expected, axis=1), atol=1e-5)
    assert (indices != np.arange(25)[:, None]).all()
    assert (np.diff(scores, axis=1) <= 0).all()


def test_top_k_cosine_caps_k_at_the_other_rows():
    indices, scores = top_k_cosine(np.eye(3, dtype=np.float32) + 0.1, k=50)
    assert indices.shape == (3, 2) and scores.shape == (3, 2)
    for row in range(3):
        assert sorted(indices[row]) == sorted(set(range(3)) - {row})


@PROPERTY
@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(2, 12), st.integers(1, 5)),
        # Quarter steps: zero rows, parallel rows and ties come up often (float32 norms of
        # vectors near 1e-20 underflow to zero rows, which is not what this property is about).
        elements=st.integers(-12, 12).map(lambda x: x / 4),
    ),
    st.integers(1, 15),
    st.integers(1, 5),
)
def test_top_k_cosine_never_returns_the_row_itself(vectors, k, block):
    n = vectors.shape[0]
    indices, scores = top_k_cosine(vectors, k=k, block=block)
    assert indices.shape == scores.shape == (n, min(k, n - 1))
    assert (indices != np.arange(n)[:, None]).all()
    for row in range(n):
        assert len(set(indices[row])) == indices.shape[1]
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert np.isfinite(scores).all()
    sims = brute_force_cosine(vectors)
    np.testing.assert_allclose(
        scores, np.take_along_axis(sims, indices.astype(np.int64), axis=1), atol=1e-4
    )


def unit_circle(degrees: list[float]) -> np.ndarray:
    radians = np.deg2rad(degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def test_centroid_recommendations_on_a_toy_circle():
    # Favourites at 0 and 90 degrees (one of them long): the centroid of unit vectors points at 45.
    vectors = unit_circle([0, 90, 40, 60, 180, 270, 5])
    vectors[0] *= 10
    idx, scores = centroid_recommendations(vectors, np.array([0, 1]), n=3)
    np.testing.assert_array_equal(idx, [2, 3, 6])  # 40 and 60 degrees, then 5 degrees
    np.testing.assert_allclose(scores, np.cos(np.deg2rad([5, 15, 40])), atol=1e-5)


def test_centroid_recommendations_never_return_a_favourite():
    vectors = np.random.default_rng(1).normal(size=(30, 4)).astype(np.float32)
    favourites = np.array([3, 7, 11, 29])
    idx, scores = centroid_recommendations(vectors, favourites, n=30)
    assert len(idx) == 26 and not np.isin(idx, favourites).any()
    assert (np.diff(scores) <= 0).all()
    with pytest.raises(ValueError, match="favourite"):
        centroid_recommendations(vectors, np.array([], dtype=int))


def test_closest_favourite_on_a_toy_case():
    vectors = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.2, 0.8], [5, 4], [-1, 3]], dtype=np.float32)
    favourites = np.array([0, 1])
    np.testing.assert_array_equal(
        closest_favourite(vectors, np.array([2, 3, 4, 5]), favourites), [0, 1, 0, 1]
    )
    # The answer is a position in favourites, not a book index.
    np.testing.assert_array_equal(
        closest_favourite(vectors, np.array([2, 3]), np.array([1, 0])), [1, 0]
    )


# ----------------------------------------------------------------------------- projections


def test_pca_2d_has_a_deterministic_sign():
    rng = np.random.default_rng(0)
    # Two centred, exactly uncorrelated coordinates with different spreads: the PCs are known.
    t = rng.normal(0, 3, 50)
    t -= t.mean()
    s = rng.normal(0, 1, 50)
    s -= s.mean()
    s -= t * (s @ t) / (t @ t)
    direction_1 = np.array([-3.0, 1.0, 0.0]) / math.sqrt(10)  # largest loading negative as given
    direction_2 = np.array([0.0, 0.0, -1.0])
    vectors = 2.0 + t[:, None] * direction_1 + s[:, None] * direction_2

    out = pca_2d(vectors)
    assert out.shape == (50, 2) and out.dtype == np.float64
    # Each axis is flipped so its largest-magnitude loading is positive: +[3, -1, 0] and +[0, 0, 1].
    np.testing.assert_allclose(out[:, 0], -t, atol=1e-9)
    np.testing.assert_allclose(out[:, 1], -s, atol=1e-9)
    # Row order does not change the map (SVD signs could otherwise flip between calls).
    perm = rng.permutation(50)
    np.testing.assert_allclose(pca_2d(vectors[perm]), out[perm], atol=1e-9)
    np.testing.assert_allclose(pca_2d(-vectors), -out, atol=1e-9)


def test_pca_2d_of_one_factor_still_gives_two_columns():
    out = pca_2d(np.arange(6, dtype=np.float32)[:, None])
    assert out.shape == (6, 2)
    np.testing.assert_array_equal(out[:, 1], 0.0)
    np.testing.assert_allclose(out[:, 0], np.arange(6) - 2.5)


@pytest.mark.slow  # openTSNE's first call compiles numba kernels
def test_tsne_2d_runs_on_60_points_and_is_reproducible():
    vectors = np.random.default_rng(0).normal(size=(60, 8))
    a = tsne_2d(vectors, random_state=1)
    b = tsne_2d(vectors, random_state=1)
    assert a.shape == (60, 2) and a.dtype == np.float64 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_tsne_2d_keeps_cosine_clusters_apart_and_reuses_given_neighbours():
    # Three bundles of directions with very different lengths: the map must follow direction.
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8) * 5
    labels = np.repeat(np.arange(3), 40)
    vectors = (centres[labels] + rng.normal(0, 0.5, (120, 8))) * rng.uniform(0.1, 10, (120, 1))
    knn = top_k_cosine(vectors, k=90)
    a = tsne_2d(vectors, random_state=3, knn=knn)
    np.testing.assert_array_equal(a, tsne_2d(vectors, random_state=3))  # same neighbours either way
    d = ((a[:, None, :] - a[None, :, :]) ** 2).sum(axis=2)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :5]
    assert (labels[nearest] == labels[:, None]).mean() > 0.95


def test_global_mean_model_predicts_the_training_mean():
    train = sp.csr_matrix(np.array([[1, 0, 3], [0, 5, 0]], dtype=float))
    model = fit_global_mean(train)
    np.testing.assert_allclose(model.predict(np.array([0, 1]), np.array([1, 2])), [3.0, 3.0])
