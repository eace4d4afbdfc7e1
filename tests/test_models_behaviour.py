"""One behaviour suite run against every factor model kind, through the pipeline's fit_model
dispatch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import SMALL

from analytics.baseline import fit_global_mean
from analytics.factors import FactorModel
from analytics.metrics import top_n
from base.errors import ShelfwiseError
from base.registry import REGISTRY, fittable, kinds, make_params
from shelfwise.pipeline.fit import fit_model

# Every kind fitted from the train matrix alone (blends combine published runs:
# tests/test_blends.py).
KINDS = kinds(blend=False)
RATING_KINDS = kinds(predicts_ratings=True, blend=False)

# Small, fast settings for each kind; every stochastic kind gets the same seed.

N_USERS, N_BOOKS = 60, 24


@dataclass(frozen=True)
class Planted:
    """Two taste groups (index parity) over books with planted user and book biases.

    Each user rated every book of their own group (high) but one, held out as ``planted``, and four
    books of the other group (low), one of which is held out too. ``test`` holds both held-out
    cells.
    """

    train: sp.csr_matrix
    test: sp.csr_matrix
    planted: np.ndarray  # held-out in-group book per user


def make_planted(seed: int = 0) -> Planted:
    rng = np.random.default_rng(seed)
    user_group = np.arange(N_USERS) % 2
    book_group = np.arange(N_BOOKS) % 2
    b_u = rng.uniform(-0.6, 0.6, N_USERS)
    b_i = rng.uniform(-0.6, 0.6, N_BOOKS)
    same = user_group[:, None] == book_group[None, :]
    taste = np.where(same, 1.2, -1.2)
    ratings = np.clip(
        np.round(3 + b_u[:, None] + b_i[None, :] + taste + rng.normal(0, 0.3, same.shape)), 1, 5
    )

    train = np.zeros((N_USERS, N_BOOKS))
    test = np.zeros((N_USERS, N_BOOKS))
    planted = np.empty(N_USERS, dtype=np.int64)
    for u in range(N_USERS):
        own = np.flatnonzero(same[u])
        other = rng.choice(np.flatnonzero(~same[u]), size=4, replace=False)
        planted[u] = own[(u // 2) % len(own)]
        train[u, own] = ratings[u, own]
        train[u, other[1:]] = ratings[u, other[1:]]
        train[u, planted[u]] = 0.0
        test[u, [planted[u], other[0]]] = ratings[u, [planted[u], other[0]]]
    return Planted(sp.csr_matrix(train), sp.csr_matrix(test), planted)


@pytest.fixture(scope="module")
def planted() -> Planted:
    return make_planted()


def fit(kind: str, train: sp.csr_matrix) -> FactorModel:
    return fit_model(kind, train, make_params(kind, SMALL[kind]))


@pytest.fixture(scope="module", params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def fitted(kind: str, planted: Planted) -> FactorModel:
    return fit(kind, planted.train)


def arrays(model: FactorModel) -> dict[str, np.ndarray]:
    names = ("user_bias", "book_bias", "user_factors", "book_factors", "neighbours", "weights")
    return {n: getattr(model, n) for n in names if getattr(model, n, None) is not None}


def test_the_suite_covers_every_kind():
    assert set(SMALL) == set(KINDS) == set(fittable()) - set(kinds(blend=True))
    assert {"baseline", "svd", "als", "mf", "knn", "ease"} <= set(KINDS)


def test_output_shapes_and_dtypes(kind, fitted):
    assert fitted.kind == kind
    assert fitted.predicts_ratings == (kind in RATING_KINDS)
    out = arrays(fitted)
    assert out, "a model with neither biases nor factors"
    if kind in RATING_KINDS:
        assert {"user_bias", "book_bias"} <= set(out)
        assert isinstance(fitted.global_mean, float) and 1.0 <= fitted.global_mean <= 5.0
    for name in ("user_bias", "book_bias"):
        if name in out:
            assert out[name].dtype == np.float64
            assert out[name].shape == ((N_USERS,) if name == "user_bias" else (N_BOOKS,))
    if kind == "baseline":
        assert fitted.user_factors is None and fitted.book_factors is None and fitted.n_factors == 0
    elif REGISTRY[kind].book_weights:
        k_store = SMALL[kind]["k_store"]
        assert fitted.user_factors is None and fitted.book_factors is None
        assert fitted.neighbours.dtype == np.int32 and fitted.neighbours.shape == (N_BOOKS, k_store)
        assert fitted.weights.dtype == np.float32 and fitted.weights.shape == (N_BOOKS, k_store)
        # Every stored neighbour is another book, listed once, heaviest first.
        for i, (row, w) in enumerate(zip(fitted.neighbours, fitted.weights, strict=True)):
            kept = row[row >= 0]
            assert i not in kept and len(set(kept)) == len(kept)
            key = w[row >= 0] if kind == "knn" else np.abs(w[row >= 0])
            assert (np.diff(key) <= 1e-6).all()
    else:
        k = SMALL[kind].get("factors", SMALL[kind].get("k"))
        assert fitted.user_factors.dtype == np.float32 and fitted.user_factors.shape == (N_USERS, k)
        assert fitted.book_factors.dtype == np.float32 and fitted.book_factors.shape == (N_BOOKS, k)
        assert fitted.n_factors == k


def test_no_nan_even_with_an_empty_user_and_an_unrated_book(kind, planted):
    train = planted.train.tolil()
    train[5, :] = 0  # a user with no training ratings
    train[:, 7] = 0  # a book nobody rated in training
    model = fit(kind, train.tocsr())
    for name, values in arrays(model).items():
        assert np.isfinite(values).all(), name
    assert np.isfinite(model.scores(np.arange(N_USERS))).all()
    if model.predicts_ratings:
        users, books = np.indices((N_USERS, N_BOOKS))
        assert np.isfinite(model.predict(users.ravel(), books.ravel())).all()


def test_deterministic_for_the_same_random_state(kind, planted, fitted):
    again = fit(kind, planted.train)
    first, second = arrays(fitted), arrays(again)
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
    assert fitted.global_mean == again.global_mean
    np.testing.assert_array_equal(
        fitted.scores(np.arange(N_USERS)), again.scores(np.arange(N_USERS))
    )


def test_stored_zeros_are_missing_ratings(kind, planted):
    with_zeros = planted.train.copy()
    with_zeros.data[::7] = 0.0  # stored explicitly, as csr arithmetic and assignment can leave them
    without = with_zeros.copy()
    without.eliminate_zeros()
    assert with_zeros.nnz > without.nnz
    a, b = fit(kind, with_zeros), fit(kind, without)
    for name, values in arrays(b).items():
        np.testing.assert_array_equal(arrays(a)[name], values, err_msg=name)
    assert a.global_mean == b.global_mean
    assert (
        with_zeros.data == 0
    ).sum() == with_zeros.nnz - without.nnz  # the caller's matrix is untouched


def test_scores_shape(fitted):
    all_users = fitted.scores(np.arange(N_USERS))
    assert all_users.shape == (N_USERS, N_BOOKS) and all_users.dtype == np.float32
    some = fitted.scores(np.array([4, 0, 4]))
    assert some.shape == (3, N_BOOKS)
    np.testing.assert_allclose(some, all_users[[4, 0, 4]], rtol=1e-6)


def test_predict_stays_on_the_rating_scale_or_refuses(kind, fitted):
    users, books = np.indices((N_USERS, N_BOOKS))
    if kind in RATING_KINDS:
        predicted = fitted.predict(users.ravel(), books.ravel())
        assert predicted.shape == (N_USERS * N_BOOKS,) and predicted.dtype == np.float64
        assert predicted.min() >= 1.0 and predicted.max() <= 5.0
    else:
        with pytest.raises(ValueError, match="rank"):
            fitted.predict(users.ravel(), books.ravel())


def test_beats_a_trivial_baseline_on_planted_structure(kind, planted, fitted):
    if kind in RATING_KINDS:
        users, books = planted.test.nonzero()
        truth = np.asarray(planted.test[users, books]).ravel()
        floor = fit_global_mean(planted.train).predict(users, books)
        model_rmse = np.sqrt(np.mean((fitted.predict(users, books) - truth) ** 2))
        floor_rmse = np.sqrt(np.mean((floor - truth) ** 2))
        assert model_rmse < floor_rmse, (model_rmse, floor_rmse)
    else:
        top3 = top_n(fitted.scores(np.arange(N_USERS)), planted.train, np.arange(N_USERS), 3)
        hit = (top3 == planted.planted[:, None]).any(axis=1)
        assert hit.all(), np.flatnonzero(~hit)


def test_factor_models_beat_the_bias_baseline_on_planted_tastes(planted):
    # The group taste is an interaction the biases cannot express: factors must capture it.
    users, books = planted.test.nonzero()
    truth = np.asarray(planted.test[users, books]).ravel()
    error = {
        k: np.sqrt(np.mean((fit(k, planted.train).predict(users, books) - truth) ** 2))
        for k in ("baseline", "svd", "mf")
    }
    assert error["mf"] < 0.7 * error["baseline"], error
    assert error["svd"] < error["baseline"], error


def test_unknown_kind_is_a_clear_error(planted):
    with pytest.raises(ShelfwiseError, match="unknown model kind"):
        fit_model("nope", planted.train, make_params("mf"))
    with pytest.raises(ValueError, match="no parameter"):
        make_params("mf", {"rank": 3})
