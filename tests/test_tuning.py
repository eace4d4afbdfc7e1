"""Tuning on a validation carve of train only: the carve, the poisoned-test proof, storage, and the
new maths."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.als import bm25_confidence, confidence_matrix, fit_als
from analytics.metrics import top_n
from analytics.mf import batched_cg, fit_mf, row_grams
from analytics.search import axis_names, carve_validation
from base.config import LoadConfig, PublishConfig, TransformConfig
from base.params import AlsParams, MfParams
from base.registry import REGISTRY, kinds, make_params
from shelfwise.pipeline.fit import fit_and_publish, fit_model
from shelfwise.pipeline.tune import (
    params_for,
    parse_axis,
    search,
    tune,
    tuned_params,
    with_axes,
)
from warehouse import store
from warehouse.load import load_dataset
from warehouse.runner import run_transforms

N_USERS, N_BOOKS = 120, 24

# Tiny search spaces: every kind's search is a handful of fits on the tiny warehouse.
TINY: dict[str, dict[str, list]] = {
    "baseline": {"reg_user": [0.5, 5.0, 50.0], "reg_book": [0.5, 5.0, 50.0]},
    "svd": {"k": [1, 2, 4], "remove_biases": [True, False]},
    "mf": {"factors": [2, 4], "reg": [0.02, 0.3], "implicit_reg": [0.0, 10.0]},
    "als": {
        ("weighting", "regularization"): {
            "weighting": ["rating", "bm25"],
            "regularization": [0.1, 5.0],
        },
        "factors": [2, 8],
    },
    "knn": {"shrinkage": [1.0, 50.0], "damping": [0.1, 2.0], "k": [3, 20]},
    "ease": {"lam": [1.0, 20.0, 200.0]},
}


def write_goodbooks(folder: Path, *, seed: int = 0) -> Path:
    """ratings.csv from two taste groups (index parity) with user/book biases; books.csv with
    titles."""
    rng = np.random.default_rng(seed)
    users, books = np.meshgrid(np.arange(1, N_USERS + 1), np.arange(1, N_BOOKS + 1), indexing="ij")
    taste = np.where(users % 2 == books % 2, 1.0, -1.0)
    b_u = rng.uniform(-0.5, 0.5, (N_USERS, 1))
    b_i = rng.uniform(-0.5, 0.5, (1, N_BOOKS))
    rating = np.clip(np.round(3.2 + b_u + b_i + taste + rng.normal(0, 0.6, taste.shape)), 1, 5)
    rated = rng.random(taste.shape) < 0.6
    table = np.stack([users[rated], books[rated], rating[rated]], axis=1).astype(np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(
        folder / "ratings.csv",
        table,
        fmt="%d",
        delimiter=",",
        header="user_id,book_id,rating",
        comments="",
    )
    header = (
        "book_id,goodreads_book_id,work_id,authors,original_publication_year,original_title,title,"
        "language_code,average_rating,ratings_count,ratings_1,ratings_2,ratings_3,ratings_4,ratings_5,"
        "image_url,small_image_url"
    )
    lines = [header] + [
        f"{b},{1000 + b},{500 + b},Author {b},2001,Book {b},Book {b},eng,4.0,100,1,2,3,4,5,,"
        for b in range(1, N_BOOKS + 1)
    ]
    (folder / "books.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture
def warehouse(tmp_db: duckdb.DuckDBPyConnection, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory warehouse with the tiny ratings loaded and split 80/20 at random (seed 42)."""
    load_dataset(tmp_db, LoadConfig("goodbooks", write_goodbooks(tmp_path / "goodbooks")))  # type: ignore[arg-type]
    run_transforms(tmp_db, TransformConfig(min_user_ratings=1, min_book_ratings=1))
    return tmp_db


def cells(m: sp.csr_matrix) -> set[tuple[int, int]]:
    u, b = m.nonzero()
    return set(zip(u.tolist(), b.tolist(), strict=True))


def random_ratings(n_users: int, n_books: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_books)) < density
    return sp.csr_matrix(np.where(mask, rng.integers(1, 6, mask.shape), 0).astype(np.float32))


# ----------------------------------------------------------------------------- the carve


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(-(2**63), 2**64 - 1),
    fraction=st.floats(0.05, 0.5),
    density=st.floats(0.05, 0.9),
)
def test_carve_partitions_train_and_is_seeded(seed, fraction, density):
    train = random_ratings(40, 30, density, seed=1)
    fit, val = carve_validation(train, fraction=fraction, random_state=seed)
    again_fit, again_val = carve_validation(train, fraction=fraction, random_state=seed)
    assert (fit != again_fit).nnz == 0 and (val != again_val).nnz == 0
    assert cells(fit).isdisjoint(cells(val))
    assert cells(fit) | cells(val) == cells(train)
    assert (fit + val != train).nnz == 0  # the ratings travel with their cells
    assert fit.shape == val.shape == train.shape


def test_carve_holds_out_about_the_fraction_and_the_seed_matters():
    train = random_ratings(300, 200, 0.3, seed=2)  # about 18,000 cells
    _, val = carve_validation(train, fraction=0.15, random_state=0)
    assert abs(val.nnz / train.nnz - 0.15) < 0.01
    _, other = carve_validation(train, fraction=0.15, random_state=1)
    assert cells(val) != cells(other)


def test_a_cells_side_depends_only_on_its_own_indices():
    """Dropping other cells (or changing their ratings) never moves a cell between fit and
    validation."""
    train = random_ratings(60, 40, 0.5, seed=3)
    _, val = carve_validation(train, fraction=0.2, random_state=7)
    thinned = train.tolil()
    thinned[::2] = 0
    thinned = sp.csr_matrix(thinned)
    thinned.eliminate_zeros()
    thinned.data[:] = 1.0
    _, val_thinned = carve_validation(thinned, fraction=0.2, random_state=7)
    assert cells(val_thinned) == cells(val) & cells(thinned)


def test_the_carve_of_the_warehouse_train_split_never_touches_test(warehouse):
    data = store.read_ratings(warehouse)
    fit, val = carve_validation(data.train, fraction=0.15, random_state=0)
    assert val.nnz > 0
    assert cells(val) <= cells(data.train)
    assert cells(val).isdisjoint(cells(data.test)) and cells(fit).isdisjoint(cells(data.test))


# ----------------------------------------------------------------------------- tuning never reads
# test


def poison_test_split(con: duckdb.DuckDBPyConnection, how: str) -> None:
    """Corrupt every test rating in place: all 1s, or the test ratings shuffled among test cells."""
    if how == "ones":
        con.execute("update matrix.ratings set rating = 1 where split = 'test'")
    else:
        con.execute(
            """update matrix.ratings as r set rating = s.rating
               from (select user_idx, book_idx,
                            lead(rating, 7, 5) over (order by hash(user_idx, book_idx)) as rating
                     from matrix.ratings where split = 'test') as s
               where r.split = 'test' and r.user_idx = s.user_idx and r.book_idx = s.book_idx"""
        )


def test_the_poisoning_proof_covers_every_tunable_kind():
    assert set(TINY) == set(kinds(blend=False))


@pytest.mark.parametrize("how", ["ones", "shuffled"])
@pytest.mark.parametrize("kind", list(TINY))
def test_poisoned_test_ratings_change_no_choice_nor_any_validation_score(warehouse, kind, how):
    before = tune(warehouse, kind, space=TINY[kind], random_state=3)
    clean = store.read_ratings(warehouse)
    poison_test_split(warehouse, how)
    poisoned = store.read_ratings(warehouse)
    # The poison is real: the test ratings differ, and a model scored on them would score otherwise.
    assert (clean.test != poisoned.test).nnz > 0 and (clean.train != poisoned.train).nnz == 0
    model = fit_model(kind, clean.train, make_params(kind, before.params))
    if model.predicts_ratings:
        u, b = clean.test.nonzero()
        err_clean = np.abs(model.predict(u, b) - np.asarray(clean.test[u, b]).ravel()).mean()
        err_poisoned = np.abs(model.predict(u, b) - np.asarray(poisoned.test[u, b]).ravel()).mean()
        assert err_clean != err_poisoned

    after = tune(warehouse, kind, space=TINY[kind], random_state=3)
    assert after.params == before.params
    assert [(t.params, t.value) for t in after.trials] == [
        (t.params, t.value) for t in before.trials
    ]
    assert len(before.trials) > 1


# ----------------------------------------------------------------------------- storage and use


def test_tuned_params_are_empty_before_any_tuning(warehouse):
    assert tuned_params(warehouse, "mf") == {}
    assert params_for(warehouse, "mf") == make_params("mf")


def test_tune_stores_one_row_that_fit_uses_and_overrides_beat(warehouse):
    result = tune(
        warehouse, "baseline", space=TINY["baseline"], random_state=0, step=lambda m: None
    )
    rows = warehouse.execute(
        "select kind, params, metric, value, input_fingerprint, validation_fraction, seed, trials "
        "from models.tuned"
    ).fetchall()
    assert len(rows) == 1
    kind, params, metric, value, fingerprint, fraction, seed, trials = rows[0]
    assert (kind, metric, fraction, seed) == ("baseline", "rmse", 0.15, 0)
    assert json.loads(params) == result.params and value == pytest.approx(result.value)
    assert fingerprint == store.read_ratings(warehouse).fingerprint
    assert len(json.loads(trials)) == len(result.trials)
    # Tiny data with planted biases: the search moved off the default damping.
    assert min(t.value for t in result.trials) == result.value

    tuned = params_for(warehouse, "baseline")
    assert tuned == make_params("baseline", result.params)
    overridden = params_for(warehouse, "baseline", {"reg_user": 123.0})
    assert overridden.reg_user == 123.0 and overridden.reg_book == tuned.reg_book

    run_id = fit_and_publish(warehouse, "baseline", tuned, PublishConfig(neighbours=3, tsne=False))
    stored = json.loads(
        warehouse.execute("select params from models.runs where run_id = ?", [run_id]).fetchall()[
            0
        ][0]
    )
    assert stored == {"kind": "baseline", **result.params}


def test_a_stale_tuned_parameter_is_dropped_not_fatal(warehouse, caplog):
    tune(warehouse, "svd", space={"k": [2]})
    warehouse.execute(
        """update models.tuned set params = json_merge_patch(params, '{"rank": 3}')"""
    )
    assert tuned_params(warehouse, "svd")["k"] == 2 and "rank" not in tuned_params(warehouse, "svd")
    assert params_for(warehouse, "svd").k == 2
    assert "no longer has: rank" in caplog.text


def test_the_latest_tune_of_a_kind_wins(warehouse):
    tune(warehouse, "svd", space={"k": [1]})
    tune(warehouse, "svd", space={"k": [3]})
    assert tuned_params(warehouse, "svd")["k"] == 3
    assert tuned_params(warehouse, "mf") == {}


def test_mf_tuning_picks_its_iterations_by_early_stopping(warehouse):
    result = tune(warehouse, "mf", space={"factors": [2], "reg": [0.05, 0.3]})
    assert 1 <= result.params["iterations"] <= 30
    best = [t for t in result.trials if t.value == result.value]
    assert best and best[0].params == result.params  # the stored iterations are the trial's best


def test_an_unknown_axis_fails_before_any_fit(warehouse):
    with pytest.raises(ValueError, match="no parameter"):
        search("mf", store.read_ratings(warehouse).train, space={"rank": [2]}, step=pytest.fail)


def test_a_block_of_axes_is_searched_jointly(warehouse):
    """Every combination of a block is tried: a point two single-axis moves would not reach is
    found."""
    block = ("weighting", "regularization")
    result = search(
        "als",
        store.read_ratings(warehouse).train,
        space={block: {"weighting": ["rating", "bm25"], "regularization": [0.1, 5.0]}},
        passes=1,
    )
    tried = {(t.params["weighting"], t.params["regularization"]) for t in result.trials}
    assert {("rating", 0.1), ("rating", 5.0), ("bm25", 0.1), ("bm25", 5.0)} <= tried


def test_given_axes_replace_default_ones_even_inside_a_block():
    space = with_axes("als", {"alpha": [5.0], "iterations": [3]})
    block = next(k for k in space if isinstance(k, tuple))
    assert (
        space[block]["alpha"] == [5.0]
        and space[block]["weighting"] == REGISTRY["als"].space[block]["weighting"]
    )
    assert space["iterations"] == [3] and axis_names(space)[-1] == "iterations"
    assert with_axes("mf", {"factors": [8]}, only=True) == {"factors": [8]}


def test_parse_axis_types_values_by_the_params_field():
    assert parse_axis("factors=8,16", "mf") == ("factors", [8, 16])
    assert parse_axis("implicit_reg=0,30.5", "mf") == ("implicit_reg", [0.0, 30.5])
    assert parse_axis("remove_biases=true,false", "svd") == ("remove_biases", [True, False])
    assert parse_axis("weighting=bm25,rating", "als") == ("weighting", ["bm25", "rating"])
    with pytest.raises(ValueError, match="expected NAME"):
        parse_axis("rank=3", "mf")


# ----------------------------------------------------------------------------- known answers: new
# maths


def test_row_grams_match_a_dense_sum_of_outer_products():
    rng = np.random.default_rng(0)
    dense = (
        rng.random((50, 300)) < np.linspace(0.0, 0.9, 50)[:, None]
    )  # row 0 empty, long rows below
    rows = sp.csr_matrix(dense.astype(np.float32))
    x = rng.normal(size=(300, 5))
    expected = np.einsum("ui,ij,ik->ujk", dense.astype(float), x, x)
    for max_cells in (7, 1 << 18):  # many tiny blocks, or one per length bucket
        np.testing.assert_allclose(
            row_grams(rows, x, max_cells=max_cells), expected, rtol=1e-4, atol=1e-4
        )


def test_batched_cg_reaches_the_exact_solution_in_d_steps():
    rng = np.random.default_rng(1)
    n, d = 40, 6
    a = rng.normal(size=(n, 10, d))
    gram = np.matmul(a.transpose(0, 2, 1), a).astype(np.float32)
    damp = rng.uniform(0.1, 2.0, (n, d))
    rhs = rng.normal(size=(n, d))
    exact = np.linalg.solve(gram.astype(float) + damp[:, :, None] * np.eye(d), rhs[:, :, None])[
        :, :, 0
    ]
    np.testing.assert_allclose(
        batched_cg(gram, damp, rhs, np.zeros((n, d)), d), exact, rtol=1e-5, atol=1e-6
    )
    # A warm start at the answer stays there.
    np.testing.assert_allclose(batched_cg(gram, damp, rhs, exact, 2), exact, rtol=1e-5, atol=1e-6)


def test_bm25_confidence_matches_implicit_and_damps_popular_books():
    from implicit.nearest_neighbours import bm25_weight

    dense = random_ratings(30, 12, 0.4, seed=5).toarray()
    dense[:, 0] = 4.0  # every user rated book 0: idf 0, the weakest evidence
    ratings = sp.csr_matrix(dense)
    ours = bm25_confidence(ratings)
    reference = bm25_weight(ratings.astype(np.float64), K1=100, B=0.8).tocsr()
    ref = reference.toarray()
    ref = np.maximum(ref, 1e-3 * ref.max()) * (ratings.toarray() > 0)
    np.testing.assert_allclose(ours.toarray(), ref / ref[ref > 0].mean(), rtol=1e-5)
    assert ours.data.mean() == pytest.approx(1.0)
    assert (ours[:, 0].toarray() > 0).all() and ours[:, 0].max() < ours[:, 1:].max()
    assert (confidence_matrix(ratings, weighting="bm25") != ours).nnz == 0
    with pytest.raises(ValueError, match="bm25"):
        confidence_matrix(ratings, weighting="tfidf")


def test_als_with_bm25_confidence_ranks_the_held_out_in_group_book_first():
    n_users, n_books = 40, 20
    user_group, book_group = np.arange(n_users) % 2, np.arange(n_books) % 2
    dense = np.where(user_group[:, None] == book_group[None, :], 5.0, 0.0)
    held = np.array(
        [np.flatnonzero(book_group == user_group[u])[(u // 2) % 10] for u in range(n_users)]
    )
    dense[np.arange(n_users), held] = 0.0
    train = sp.csr_matrix(dense)
    model = fit_als(
        train,
        AlsParams(
            factors=4,
            regularization=0.5,
            alpha=5.0,
            weighting="bm25",
            iterations=15,
            random_state=0,
        ),
    )
    first = top_n(model.scores(np.arange(n_users)), train, np.arange(n_users), 1)[:, 0]
    np.testing.assert_array_equal(first, held)


def choice_reveals_taste(seed: int = 0) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    """Users whose ratings say nothing about their taste, but whose choice of books does.

    Books 0-9 split the two groups (group A rates them 5, group B 1); books 10-19 are rated 3 by
    all, but group A picks them from 10-14 and group B from 15-19. "Cold" users rated only three
    neutral books: their held-out taste books are predictable from *which* books they chose, not
    from values. Returns (train, cold users' held-out users, books, truth).
    """
    rng = np.random.default_rng(seed)
    n_warm, n_cold = 200, 60
    n_users = n_warm + n_cold
    group = np.arange(n_users) % 2
    dense = np.zeros((n_users, 20))
    test_u, test_b, truth = [], [], []
    for u in range(n_users):
        taste = rng.choice(10, size=6, replace=False)
        liked = 5.0 if group[u] == 0 else 1.0
        neutral = rng.choice(
            np.arange(10, 15) if group[u] == 0 else np.arange(15, 20), size=3, replace=False
        )
        dense[u, neutral] = 3.0
        if u < n_warm:
            dense[u, taste] = liked
        else:
            test_u += [u] * 6
            test_b += list(taste)
            truth += [liked] * 6
    return sp.csr_matrix(dense), np.array(test_u), np.array(test_b), np.array(truth)


def test_svdpp_term_predicts_taste_from_which_books_a_user_chose():
    train, users, books, truth = choice_reveals_taste()
    plain = fit_mf(
        train, MfParams(factors=2, reg=0.05, iterations=20, random_state=0, implicit_reg=0.0)
    )
    svdpp = fit_mf(
        train, MfParams(factors=2, reg=0.05, iterations=20, implicit_reg=1.0, random_state=0)
    )
    plain_rmse = np.sqrt(np.mean((plain.predict(users, books) - truth) ** 2))
    svdpp_rmse = np.sqrt(np.mean((svdpp.predict(users, books) - truth) ** 2))
    assert plain_rmse > 1.5  # the values of cold users' ratings carry no signal: about mu for all
    assert svdpp_rmse < 0.5  # the choice of books does
    # Folded into plain factors: predict() needs nothing but the FactorModel.
    assert (
        svdpp.user_factors.shape == (train.shape[0], 2) and svdpp.user_factors.dtype == np.float32
    )


def test_fit_mf_validation_curve_is_recorded_without_changing_the_fit():
    train, users, books, truth = choice_reveals_taste()
    validation = sp.csr_matrix((truth, (users, books)), shape=train.shape)
    with_val = fit_mf(
        train,
        MfParams(factors=2, iterations=5, implicit_reg=1.0, random_state=0),
        validation=validation,
    )
    without = fit_mf(train, MfParams(factors=2, iterations=5, implicit_reg=1.0, random_state=0))
    np.testing.assert_array_equal(with_val.user_factors, without.user_factors)
    np.testing.assert_array_equal(with_val.book_bias, without.book_bias)
    curve = with_val.info["validation_rmse"]
    assert len(curve) == 5 and curve[-1] < curve[0]
    assert "validation_rmse" not in without.info


def test_fit_mf_patience_stops_once_validation_stops_improving():
    train, users, books, truth = choice_reveals_taste()
    validation = sp.csr_matrix((truth, (users, books)), shape=train.shape)
    # No implicit term: the cold users' held-out ratings cannot improve after the first iterations.
    model = fit_mf(
        train,
        MfParams(factors=2, iterations=30, random_state=0, implicit_reg=0.0),
        validation=validation,
        patience=2,
    )
    curve = model.info["validation_rmse"]
    assert len(curve) < 30 and len(curve) == len(model.info["train_rmse"])
    assert len(curve) - 1 - int(np.argmin(curve)) == 2


# ----------------------------------------------------------------------------- the command


def test_tune_command_stores_its_choice_and_fit_uses_it_unless_overridden(tmp_path, capsys):
    from shelfwise.cli import main

    db = tmp_path / "w.duckdb"
    folder = write_goodbooks(tmp_path / "goodbooks")
    main(["-q", "load", "goodbooks", str(folder), "--db", str(db)])
    main(["-q", "transform", "--min-user-ratings", "1", "--min-book-ratings", "1", "--db", str(db)])
    capsys.readouterr()

    main(
        [
            "-q",
            "tune",
            "svd",
            "--only",
            "-a",
            "k=1,2,4",
            "-a",
            "remove_biases=true,false",
            "--db",
            str(db),
        ]
    )
    out = capsys.readouterr().out
    with duckdb.connect(str(db), read_only=True) as con:
        chosen, value, trials = con.execute(
            "select params, value, trials from models.tuned where kind = 'svd'"
        ).fetchall()[0]
    chosen, trials = json.loads(chosen), json.loads(trials)
    # Coordinate search from the defaults (k=18): each k, then the other centring at the best k.
    assert sorted(t["params"]["k"] for t in trials if t["params"]["remove_biases"]) == [1, 2, 4, 18]
    assert chosen["k"] in (1, 2, 4) and value == min(t["value"] for t in trials)
    assert "tuned svd: rmse" in out and f"k={chosen['k']}" in out

    main(["-q", "fit", "svd", "--no-tsne", "--neighbours", "3", "--db", str(db)])
    main(["-q", "fit", "svd", "--no-tsne", "--neighbours", "3", "-p", "k=3", "--db", str(db)])
    with duckdb.connect(str(db), read_only=True) as con:
        ks = [
            json.loads(p)["k"]
            for (p,) in con.execute(
                "select params from models.runs where kind = 'svd' order by run_id"
            ).fetchall()
        ]
    assert ks == [chosen["k"], 3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["tune", "svd", "-a", "rank=3"],
            "--axis 'rank=3': expected NAME=V1,V2,... with NAME one of",
        ),
        (
            ["tune", "mf", "-a", "factors=eight"],
            "--axis 'factors=eight': factors takes a whole number, not 'eight'",
        ),
        (["tune", "mf", "-a", "factors=8,,16"], "factors takes a whole number, not ''"),
        (
            ["tune", "mf", "-a", "factors=-3,8"],
            "mf factors=-3: must be a whole number of at least 1",
        ),
        (
            ["tune", "als", "-a", "weighting=bm25,tfidf"],
            "als weighting='tfidf': must be one of rating, binary, bm25",
        ),
        (["tune", "svd", "--only"], "--only needs at least one --axis"),
    ],
)
def test_tune_command_rejects_bad_axes_in_one_line(tmp_path, capsys, args, message):
    from shelfwise.cli import main

    db = tmp_path / "w.duckdb"
    main(["-q", "load", "goodbooks", str(write_goodbooks(tmp_path / "goodbooks")), "--db", str(db)])
    main(["-q", "transform", "--min-user-ratings", "1", "--min-book-ratings", "1", "--db", str(db)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--db", str(db)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 1
    assert message in err and len(err.splitlines()) == 1
    with duckdb.connect(str(db), read_only=True) as con:
        assert not con.execute("select count(*) from models.tuned").fetchall()[0][0]
