"""Blends: weights chosen on the train carve, applied to the published component runs, refitted
when a component is, refused without their components."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import SMALL, build_warehouse, rows
from test_queries import write_goodbooks

from base.config import PublishConfig, TransformConfig
from base.errors import ShelfwiseError
from base.registry import make_params
from shelfwise.pipeline.evaluate import evaluate
from shelfwise.pipeline.fit import fit_and_publish
from shelfwise.pipeline.refresh import refresh
from shelfwise.pipeline.tune import search
from warehouse import store
from warehouse.db import connect

PUBLISH = PublishConfig(neighbours=5, tsne=False)
COMPONENTS = {k: SMALL[k] for k in ("mf", "knn", "als", "ease")}


@pytest.fixture
def warehouse(tmp_path: Path):
    db = build_warehouse(
        tmp_path / "w.duckdb",
        write_goodbooks(tmp_path / "goodbooks"),
        TransformConfig(min_user_ratings=1, min_book_ratings=1),
        fits=COMPONENTS,
        publish=PUBLISH,
    )
    con = connect(db)
    yield con
    con.close()


def info(con, kind: str) -> dict:
    return json.loads(store.latest_run(con, kind)["info"])


@pytest.mark.parametrize("kind", ["rating_blend", "ranking_blend"])
def test_a_blend_combines_the_latest_component_runs_with_weights_from_the_carve(warehouse, kind):
    run_id = fit_and_publish(warehouse, kind, make_params(kind), PUBLISH)
    got = info(warehouse, kind)
    assert got["components"] == list(make_params(kind).kinds)
    assert got["component_runs"] == [
        int(store.latest_run(warehouse, c)["run_id"]) for c in got["components"]
    ]
    assert len(got["weights"]) == len(got["components"])
    assert min(got["weights"]) >= 0 and max(got["weights"]) > 0
    model = store.read_model(warehouse, run_id).with_history(store.read_ratings(warehouse).train)
    data = store.read_ratings(warehouse)
    parts = [store.read_model(warehouse, r).with_history(data.train) for r in got["component_runs"]]
    users = np.arange(data.shape[0])
    expected = sum(
        w / s * p.scores(users)
        for w, s, p in zip(got["weights"], got["spreads"], parts, strict=True)
    )
    np.testing.assert_allclose(model.scores(users), expected, rtol=1e-5, atol=1e-6)
    if kind == "rating_blend":
        u, b = data.test.nonzero()
        predicted = model.predict(u, b)
        assert predicted.min() >= 1 and predicted.max() <= 5
    rows_ = evaluate(warehouse, n_boot=10)
    assert {r.kind for r in rows_} >= {kind}


def test_a_blend_without_a_published_component_is_one_line_and_records_no_run(tmp_path):
    db = build_warehouse(
        tmp_path / "w.duckdb",
        write_goodbooks(tmp_path / "goodbooks"),
        TransformConfig(min_user_ratings=1, min_book_ratings=1),
        fits={"mf": SMALL["mf"]},
        publish=PUBLISH,
    )
    with connect(db) as con:
        with pytest.raises(ShelfwiseError, match="needs a published knn run") as error:
            fit_and_publish(con, "rating_blend", make_params("rating_blend"), PUBLISH)
        assert "\n" not in str(error.value)
        assert rows(con, "select count(*) from models.runs where kind = 'rating_blend'") == [(0,)]
        bad = make_params("rating_blend", {"components": "mf,ease"})
        with pytest.raises(ShelfwiseError, match="'ease' is not a kind that predicts ratings"):
            fit_and_publish(con, "rating_blend", bad, PUBLISH)


def test_refitting_a_component_makes_refresh_refit_only_its_blends(warehouse):
    source = Path(rows(warehouse, "select file from raw.load_log limit 1")[0][0]).parent
    kinds = ("mf", "knn", "als", "ease", "rating_blend", "ranking_blend")
    for kind in ("rating_blend", "ranking_blend"):
        fit_and_publish(warehouse, kind, make_params(kind), PUBLISH)
    # The components were fitted with small settings: the first refresh refits them at their
    # defaults, and so every blend over them.
    first = refresh(warehouse, data_dir=source, kinds=kinds, publish=PUBLISH)
    assert set(first.fitted) == set(kinds)
    settled = refresh(warehouse, data_dir=source, kinds=kinds, publish=PUBLISH)
    assert settled.fitted == {}
    before = info(warehouse, "ranking_blend")["component_runs"]
    # knn is a component of rating_blend only (ranking_blend combines als, ease and mf).
    fit_and_publish(warehouse, "knn", make_params("knn", SMALL["knn"]), PUBLISH)
    report = refresh(warehouse, data_dir=source, kinds=kinds, publish=PUBLISH)
    assert "rating_blend" in report.fitted and "ranking_blend" not in report.fitted
    assert info(warehouse, "rating_blend")["component_runs"][1] == int(
        store.latest_run(warehouse, "knn")["run_id"]
    )
    assert info(warehouse, "ranking_blend")["component_runs"] == before


def test_blend_weights_never_read_the_test_split(warehouse):
    fit_and_publish(warehouse, "rating_blend", make_params("rating_blend"), PUBLISH)
    weights = info(warehouse, "rating_blend")["weights"]
    warehouse.execute("update matrix.ratings set rating = 1 where split = 'test'")
    fit_and_publish(warehouse, "rating_blend", make_params("rating_blend"), PUBLISH)
    assert info(warehouse, "rating_blend")["weights"] == weights


def test_there_is_nothing_to_tune_in_a_blend(warehouse):
    with pytest.raises(ShelfwiseError, match="nothing to tune"):
        search("rating_blend", store.read_ratings(warehouse).train)


def test_retention_keeps_the_component_runs_a_published_blend_combines(warehouse):
    blend = fit_and_publish(warehouse, "rating_blend", make_params("rating_blend"), PUBLISH)
    mf_run = info(warehouse, "rating_blend")["component_runs"][0]
    keep_one = PublishConfig(neighbours=5, tsne=False, keep_runs=1)
    for _ in range(2):
        fit_and_publish(warehouse, "mf", make_params("mf", SMALL["mf"]), keep_one)
    mf_runs = [r for (r,) in rows(warehouse, "select run_id from models.runs where kind = 'mf'")]
    # The newest mf run and the one the blend combines: nothing in between.
    assert sorted(mf_runs) == [mf_run, max(mf_runs)] and max(mf_runs) > mf_run + 1
    data = store.read_ratings(warehouse)
    u, b = data.test.nonzero()
    assert np.isfinite(
        store.read_model(warehouse, blend).with_history(data.train).predict(u, b)
    ).all()
    # Once the blend is refitted on the newest mf run, the old one goes at the next retention.
    fit_and_publish(warehouse, "rating_blend", make_params("rating_blend"), keep_one)
    fit_and_publish(warehouse, "mf", make_params("mf", SMALL["mf"]), keep_one)
    kept = [r for (r,) in rows(warehouse, "select run_id from models.runs where kind = 'mf'")]
    assert mf_run not in kept


def test_the_ranking_grid_search_picks_what_scoring_each_blend_in_full_picks():
    """blend_weights scores each block once and combines grid points from those scores; the
    choice and its NDCG equal those of scoring every candidate BlendModel from scratch."""
    from analytics import blend as blend_module
    from analytics.ease import fit_ease
    from analytics.knn import fit_knn
    from analytics.metrics import per_user_ranking, relevant_test
    from analytics.search import carve_validation
    from base.params import BlendParams, EaseParams, KnnParams

    rng = np.random.default_rng(8)
    dense = (rng.random((300, 60)) < 0.15) * rng.integers(1, 6, (300, 60))
    train = sp.csr_matrix(dense.astype(np.float32))
    params = BlendParams(components="knn,ease", seed=1)
    fitters = {
        "knn": lambda m: fit_knn(m, KnnParams(k_store=20, similarity="cosine")),
        "ease": lambda m: fit_ease(m, EaseParams(lam=10.0, k_store=20)),
    }
    weights, value = blend_module.blend_weights(
        train, params, fitters=fitters, predicts_ratings=False
    )
    # The same search, each candidate blend scored from scratch.
    fit, validation = carve_validation(train, fraction=0.15, random_state=1)
    models = tuple(make(fit) for make in fitters.values())
    spreads = np.array([blend_module.score_spread(m, fit.shape[0]) for m in models])
    relevant = relevant_test(validation)
    results = []
    for rest in blend_module.RANK_GRID:
        w = np.array([1.0, rest])
        candidate = blend_module.BlendModel("b", models, w, spreads, predicts_ratings=False)
        results.append((per_user_ranking(candidate.scores, fit, relevant).ndcg.mean(), rest))
    best = max(results, key=lambda r: r[0])
    assert value == pytest.approx(best[0], abs=1e-9)
    assert weights[1] == next(r for v, r in results if v > best[0] - 1e-12)


def test_blends_sharing_a_component_fit_it_on_the_carve_once(warehouse, monkeypatch):
    from shelfwise.pipeline import blend as pipeline_blend

    fitted: list[str] = []
    real = pipeline_blend.fit_model

    def counting(kind, train, params):
        fitted.append(kind)
        return real(kind, train, params)

    monkeypatch.setattr(pipeline_blend, "fit_model", counting)
    monkeypatch.setattr(pipeline_blend, "_carve_fits", {})
    fit_and_publish(warehouse, "rating_blend", make_params("rating_blend"), PUBLISH)
    fit_and_publish(
        warehouse, "ranking_blend", make_params("ranking_blend", {"components": "als,mf"}), PUBLISH
    )
    assert sorted(fitted) == ["als", "knn", "mf"]
    # A different carve (another seed) fits again.
    fit_and_publish(
        warehouse,
        "ranking_blend",
        make_params("ranking_blend", {"components": "als,mf", "seed": 3}),
        PUBLISH,
    )
    assert sorted(fitted) == ["als", "als", "knn", "mf", "mf"]
