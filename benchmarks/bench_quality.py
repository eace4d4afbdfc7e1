"""Model quality on real goodbooks ratings: tune on a train-only carve, fit, evaluate once on test,
print markdown.

Usage: python benchmarks/bench_quality.py [--data ../shared/data/goodbooks-10k-subset]
           [--filters default|none] [--split random|temporal] [--no-tune] [--out FILE]
           [--ranking-blends "als,ease;als,ease,knn"] [--no-cosine]

Builds a fresh warehouse from the folder (load, transform with the chosen filters and split), then
for each model kind of the registry: `tune` (validation carve of the train split only; blends are
not tuned, their weights are fitted on the same carve at every fit), a timed fit of the tuned
params, `fit_and_publish`, and finally one `evaluate` on the test split (95% bootstrap intervals
over users).

Beside the per-model metrics it prints paired bootstrap intervals, resampling the same users for
both models (the comparison the independent intervals only approximate):

- every product rating model's RMSE minus mf's, and the best one's (the rating acceptance bar);
- every product ranking model's NDCG@10 over popularity's; the published `ranking_blend`
  (components als,ease,mf) beside other component sets (`-p components=...`, each fitted by the
  product's own `fit_blend_run` on the published component runs), and knn with
  `similarity=cosine` (its shrinkage and weighting chosen on the carve by NDCG@10) alone and in a
  3-way blend. Which configuration is "best" is read off the carve (validation NDCG@10), and the
  test figure is shown beside it, so the choice never peeks at the test split.

Last, the knn neighbour check: the 5 heaviest neighbours of two probe titles (what
`shelfwise similar TITLE --model knn --n 5` prints) and how many share the probe's first author,
under the tuned pearson knn and under `-p similarity=cosine`.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.blend import assemble, blend_weights  # noqa: E402
from analytics.metrics import per_user_ranking, relevant_test  # noqa: E402
from analytics.search import carve_validation  # noqa: E402
from base.config import LoadConfig, PublishConfig, TransformConfig  # noqa: E402
from base.registry import fittable, make_params, spec  # noqa: E402
from benchmarks.common import machine  # noqa: E402
from shelfwise.pipeline.blend import fit_blend_run  # noqa: E402
from shelfwise.pipeline.evaluate import evaluate  # noqa: E402
from shelfwise.pipeline.fit import fit_and_publish  # noqa: E402
from shelfwise.pipeline.fitting import fit_model  # noqa: E402
from shelfwise.pipeline.tune import params_for, tune  # noqa: E402
from shelfwise.serving import similar  # noqa: E402
from warehouse import store  # noqa: E402
from warehouse.db import connect  # noqa: E402
from warehouse.load import load_dataset  # noqa: E402
from warehouse.runner import run_transforms  # noqa: E402

ORDER = (
    "global_mean",
    "popularity",
    "baseline",
    "svd",
    "mf",
    "knn",
    "rating_blend",
    "als",
    "ease",
    "ranking_blend",
)
FILTERS = {"default": (10, 100), "none": (1, 1)}
# Ranking blends tried besides the published default (als,ease,mf), each `-p components=...`.
RANKING_BLENDS = "als,ease;als,mf;als,knn;als,ease,knn"
# knn with similarity=cosine for ranking: shrinkage x weighting chosen on the carve by NDCG@10.
COSINE_SHRINKAGE = (0.0, 10.0, 25.0, 50.0, 100.0, 300.0)
COSINE_WEIGHTING = ("bm25", "binary")
PROBES = ("Kafka on the Shore", "Divine Justice (Camel Club, #4)")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def cell(metrics: dict, name: str, digits: int = 4) -> str:
    m = metrics.get(name)
    if m is None:
        return ""
    if m.ci_low == m.ci_high:
        return f"{m.value:.{digits}f}"
    return f"{m.value:.{digits}f} [{m.ci_low:.{digits}f}, {m.ci_high:.{digits}f}]"


def per_user_squared_errors(model, test: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    users = np.repeat(np.arange(test.shape[0]), np.diff(test.indptr))
    err = model.predict(users, test.indices) - test.data
    return np.bincount(users, err**2, minlength=test.shape[0]), np.diff(test.indptr).astype(
        np.float64
    )


def binary(m: sp.csr_matrix) -> sp.csr_matrix:
    """The same cells, every value 1 (float32)."""
    return sp.csr_matrix(
        (np.ones_like(m.data, dtype=np.float32), m.indices, m.indptr), shape=m.shape
    )


def train_carve(train: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The validation carve every kind tunes on: the one `shelfwise tune` and the blends use
    (15%, seed 0)."""
    return carve_validation(train, fraction=0.15, random_state=0)


def paired_interval(stat, n: int, n_boot: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of ``stat(weights)`` under a multinomial resampling of n users."""
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    values = stat(weights)
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


def cosine_knn_params(train: sp.csr_matrix, base: Any) -> tuple[Any, float]:
    """knn with ``similarity=cosine`` for ranking: shrinkage and weighting chosen on the train
    carve by validation NDCG@10 (the registry tunes knn on RMSE, which never picks cosine).

    Returns (params, validation NDCG@10)."""
    fit_part, validation = train_carve(train)
    rel = relevant_test(validation)
    best: tuple[float, Any] = (-np.inf, None)
    for weighting in COSINE_WEIGHTING:
        for shrinkage in COSINE_SHRINKAGE:
            p = dataclasses.replace(
                base, similarity="cosine", weighting=weighting, shrinkage=shrinkage
            )
            model = fit_model("knn", fit_part, p)
            value = float(per_user_ranking(model.scores, fit_part, rel).ndcg.mean())
            log(f"knn cosine {weighting} shrinkage {shrinkage:g}: validation NDCG@10 {value:.4f}")
            if value > best[0]:
                best = (value, p)
    return best[1], best[0]


def blend_in_process(
    kind: str,
    components: dict[str, Any],
    finals: dict[str, Any],
    train: sp.csr_matrix,
) -> Any:
    """A blend exactly as ``fit_blend_run`` makes it, for components that are not published runs:
    weights on the carve (each component refitted there with ``components[name]`` params), applied
    to ``finals`` (the components fitted on all of train)."""
    params = make_params(kind, {"components": ",".join(components)})
    fitters = {name: functools.partial(_fit, name, p) for name, p in components.items()}
    weights, value = blend_weights(
        train, params, fitters=fitters, predicts_ratings=spec(kind).predicts_ratings
    )
    model = assemble(
        kind,
        [finals[name].with_history(train) for name in components],
        weights,
        n_users=train.shape[0],
        predicts_ratings=spec(kind).predicts_ratings,
    )
    model.info.update(weights=[float(w) for w in weights], validation={"ndcg@10": value})
    return model


def _fit(kind: str, params: Any, train: sp.csr_matrix) -> Any:
    return fit_model(kind, train, params)


def neighbour_check(con, kind: str, n: int = 5) -> list[str]:
    """Each probe's ``n`` nearest books under the latest ``kind`` run (serving.similar, which
    `shelfwise similar` prints) and how many share the probe's first author."""
    out = []
    for title in PROBES:
        book, books = similar(con, title, kind=kind, n=n)
        author = (book.authors or "").split(",")[0].strip()
        same = sum(author and author in (b.authors or "") for b in books)
        listed = "; ".join(f"{b.title} ({(b.authors or '').split(',')[0]})" for b in books)
        out.append(f"{book.title} ({author}): **{same} of {len(books)}** same author: {listed}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/goodbooks-10k-subset")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks/out")
    ap.add_argument("--filters", choices=sorted(FILTERS), default="default")
    ap.add_argument("--split", choices=["random", "temporal"], default="random")
    ap.add_argument("--kinds", default=",".join(fittable()))
    ap.add_argument(
        "--no-tune",
        action="store_true",
        help="Use whatever params the warehouse has (defaults on a fresh one).",
    )
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument(
        "--ranking-blends",
        default=RANKING_BLENDS,
        help="';'-separated component sets tried besides the published ranking_blend",
    )
    ap.add_argument("--no-cosine", action="store_true", help="skip knn with similarity=cosine")
    ap.add_argument("--out", type=Path, default=None, help="Also write the markdown here.")
    args = ap.parse_args()

    load_start = load_average()
    wall_start = time.perf_counter()
    kinds = [k for k in args.kinds.split(",") if k]
    min_user, min_book = FILTERS[args.filters]
    args.work.mkdir(parents=True, exist_ok=True)
    db = args.work / f"quality-{args.filters}-{args.split}.duckdb"
    for stale in (db, Path(f"{db}.wal"), Path(f"{db}.read")):
        stale.unlink(missing_ok=True)
    con = connect(db)
    log(f"loading {args.data} into {db}")
    load_dataset(con, LoadConfig("goodbooks", args.data))  # type: ignore[arg-type]
    config = TransformConfig(min_user_ratings=min_user, min_book_ratings=min_book, split=args.split)  # type: ignore[arg-type]
    run_transforms(con, config)
    data = store.read_ratings(con)
    log(
        f"matrix {data.shape[0]:,} x {data.shape[1]:,}: "
        f"{data.train.nnz:,} train / {data.test.nnz:,} test"
    )

    publish = PublishConfig(neighbours=10, tsne=False, keep_runs=1)
    tuned: dict[str, dict] = {}
    fit_seconds: dict[str, float] = {}
    for kind in kinds:
        blend = spec(kind).blend
        if not args.no_tune and not blend:
            start = time.perf_counter()
            result = tune(con, kind, passes=args.passes, step=log)
            tuned[kind] = {
                "params": result.params,
                "metric": result.metric,
                "value": result.value,
                "points": len(result.trials),
                "seconds": time.perf_counter() - start,
            }
        params = params_for(con, kind)
        # Timed on its own: publish adds neighbours and maps. A blend's fit refits its
        # components on the carve to choose the weights, then reads the published runs.
        start = time.perf_counter()
        if blend:
            fit_blend_run(con, kind, params, data)
        else:
            fit_model(kind, data.train, params)
        fit_seconds[kind] = time.perf_counter() - start
        log(f"{kind}: fit {fit_seconds[kind]:.1f}s with {asdict(params)}")
        fit_and_publish(con, kind, params, publish, data=data)
    log("evaluating on the test split")
    rows = evaluate(con, n_boot=args.n_boot, step=log)

    by_kind: dict[str, dict] = {}
    for r in rows:
        by_kind.setdefault(r.kind, {})[r.metric.name] = r.metric
    runs = {kind: store.latest_run(con, kind) for kind in by_kind}
    models = {
        kind: store.read_model(con, run["run_id"]).with_history(data.train)
        for kind, run in runs.items()
    }
    validation: dict[str, float] = {k: t["value"] for k, t in tuned.items()}
    blend_weights_shown: dict[str, str] = {}
    for kind, run in runs.items():
        info = json.loads(run["info"] or "{}")
        if spec(kind).blend and "validation" in info:
            validation[kind] = next(iter(info["validation"].values()))
            blend_weights_shown[kind] = ", ".join(
                f"{c} {w:.2f}" for c, w in zip(info["components"], info["weights"], strict=True)
            )

    # ------------------------------------------------------------------ ratings, paired vs mf
    paired: list[str] = []
    rating_kinds = [
        k for k in ORDER if k in models and spec(k).predicts_ratings and not spec(k).yardstick
    ]
    sq = {}
    cnt = np.diff(data.test.indptr).astype(np.float64)
    for kind in rating_kinds:
        sq[kind], _ = per_user_squared_errors(models[kind], data.test)

    def rmse_diff(a: str, b: str) -> str:
        diff = float(np.sqrt(sq[a].sum() / cnt.sum()) - np.sqrt(sq[b].sum() / cnt.sum()))
        lo, hi = paired_interval(
            lambda w: np.sqrt(w @ sq[a] / (w @ cnt)) - np.sqrt(w @ sq[b] / (w @ cnt)),
            len(cnt),
            args.n_boot,
        )
        return f"{diff:+.4f} [{lo:+.4f}, {hi:+.4f}]"

    best_rating = min(rating_kinds, key=lambda k: sq[k].sum()) if rating_kinds else None
    best_rating_val = (
        min((k for k in rating_kinds if k in validation), key=lambda k: validation[k])
        if any(k in validation for k in rating_kinds)
        else None
    )
    if "baseline" in sq:
        for kind in ("svd", "mf"):
            if kind in sq:
                paired.append(f"| {kind} RMSE - baseline RMSE | {rmse_diff(kind, 'baseline')} |")
    if "mf" in sq:
        for kind in rating_kinds:
            if kind not in ("mf", "baseline", "svd"):
                paired.append(f"| {kind} RMSE - mf RMSE | {rmse_diff(kind, 'mf')} |")
        if best_rating is not None and best_rating != "mf":
            paired.append(
                f"| **best rating model ({best_rating}) RMSE - mf RMSE** | "
                f"**{rmse_diff(best_rating, 'mf')}** |"
            )
    if "knn" in sq and "rating_blend" in sq:
        paired.append(f"| rating_blend RMSE - knn RMSE | {rmse_diff('rating_blend', 'knn')} |")

    # ------------------------------------------------------------------ ranking
    relevant = relevant_test(data.test)
    ranking: dict[str, dict] = {}  # label -> ndcg array, validation, weights, fit s

    def add_ranking(label: str, model: Any, **extra: Any) -> None:
        result = per_user_ranking(model.scores, data.train, relevant)
        ranking[label] = {"ndcg": result.ndcg, "users": result.users, **extra}

    published = (
        json.loads(runs["ranking_blend"]["params"])["components"] if "ranking_blend" in runs else ""
    )
    for kind in ORDER:
        if kind in models and spec(kind).ranks:
            add_ranking(
                kind if kind != "ranking_blend" else f"ranking_blend ({published})",
                models[kind],
                # Only a validation NDCG@10 ranks; knn and the rating blend are chosen on RMSE.
                validation=validation.get(kind) if spec(kind).objective == "ndcg@10" else None,
                weights=blend_weights_shown.get(kind, ""),
                fit=fit_seconds.get(kind),
            )
    if "ranking_blend" in models:
        for components in [c for c in args.ranking_blends.split(";") if c]:
            params = make_params("ranking_blend", {"components": components})
            log(f"ranking_blend -p components={components}")
            start = time.perf_counter()
            blend = fit_blend_run(con, "ranking_blend", params, data)
            seconds = time.perf_counter() - start
            add_ranking(
                f"ranking_blend ({components})",
                blend,
                validation=blend.info["validation"]["ndcg@10"],
                weights=", ".join(
                    f"{c} {w:.2f}"
                    for c, w in zip(blend.info["components"], blend.info["weights"], strict=True)
                ),
                fit=seconds,
            )
    cosine = None
    if not args.no_cosine and "knn" in models:
        cosine, cos_val = cosine_knn_params(data.train, params_for(con, "knn"))
        start = time.perf_counter()
        knn_cos = fit_model("knn", data.train, cosine)
        seconds = time.perf_counter() - start
        add_ranking(
            f"knn -p similarity=cosine (weighting {cosine.weighting}, "
            f"shrinkage {cosine.shrinkage:g})",
            knn_cos,
            validation=cos_val,
            fit=seconds,
        )
        if "als" in models and "ease" in models:
            log("ranking blend als,ease,knn(cosine)")
            start = time.perf_counter()
            comps = {"als": params_for(con, "als"), "ease": params_for(con, "ease"), "knn": cosine}
            blend = blend_in_process(
                "ranking_blend",
                comps,
                {"als": models["als"], "ease": models["ease"], "knn": knn_cos},
                data.train,
            )
            seconds = time.perf_counter() - start
            add_ranking(
                "ranking_blend (als,ease,knn with knn -p similarity=cosine)",
                blend,
                validation=blend.info["validation"]["ndcg@10"],
                weights=", ".join(
                    f"{c} {w:.2f}" for c, w in zip(comps, blend.info["weights"], strict=True)
                ),
                fit=seconds,
            )

    ranking_lines: list[str] = []
    best_rank = best_rank_val = None
    if "popularity" in ranking:
        nd_pop = ranking["popularity"]["ndcg"]
        n_users = len(nd_pop)
        candidates = [k for k in ranking if k != "popularity"]
        best_rank = max(candidates, key=lambda k: ranking[k]["ndcg"].mean())
        with_val = [k for k in candidates if ranking[k].get("validation") is not None]
        best_rank_val = max(with_val, key=lambda k: ranking[k]["validation"]) if with_val else None
        ranking_lines = [
            "| ranking model | validation NDCG@10 (carve) | test NDCG@10 [95%] | "
            "x popularity [95%, paired] | weights (carve) | fit s |",
            "|---|---|---|---|---|---|",
        ]
        for label in ["popularity", *candidates]:
            nd = ranking[label]["ndcg"]
            assert np.array_equal(ranking[label]["users"], ranking["popularity"]["users"])
            lo_n, hi_n = paired_interval(
                lambda w, nd=nd: (w @ nd) / w.sum(axis=1), n_users, args.n_boot
            )
            lo, hi = paired_interval(lambda w, nd=nd: (w @ nd) / (w @ nd_pop), n_users, args.n_boot)
            val = ranking[label].get("validation")
            fit_s = ranking[label].get("fit")
            mark = "**" if label == best_rank else ""
            ranking_lines.append(
                f"| {mark}{label}{mark} | {'' if val is None else f'{val:.4f}'} | "
                f"{mark}{nd.mean():.4f}{mark} [{lo_n:.4f}, {hi_n:.4f}] | "
                f"{nd.mean() / nd_pop.mean():.3f} [{lo:.3f}, {hi:.3f}] | "
                f"{ranking[label].get('weights', '')} | "
                f"{'' if fit_s is None else f'{fit_s:.1f}'} |"
            )
        nd_best = ranking[best_rank]["ndcg"]
        lo, hi = paired_interval(lambda w: (w @ nd_best) / (w @ nd_pop), n_users, args.n_boot)
        paired.append(
            f"| **best ranking model ({best_rank}) NDCG@10 / popularity NDCG@10** | "
            f"**{nd_best.mean() / nd_pop.mean():.3f} [{lo:.3f}, {hi:.3f}]** |"
        )
        for other in ("als", "ease"):
            if other in ranking and other != best_rank:
                nd_o = ranking[other]["ndcg"]
                lo, hi = paired_interval(
                    lambda w, nd_o=nd_o: (w @ nd_best - w @ nd_o) / w.sum(axis=1),
                    n_users,
                    args.n_boot,
                )
                paired.append(
                    f"| best ranking model NDCG@10 - {other} NDCG@10 | "
                    f"{nd_best.mean() - nd_o.mean():+.4f} [{lo:+.4f}, {hi:+.4f}] |"
                )
        # The same ratio when every held-out rating counts as relevant, not only 4s and 5s.
        anything = binary(data.test)
        best_model = None
        if best_rank in models:
            best_model = models[best_rank]
        elif best_rank == f"ranking_blend ({published})":
            best_model = models["ranking_blend"]
        elif best_rank.startswith("ranking_blend (") and "cosine" not in best_rank:
            comps = best_rank[len("ranking_blend (") : -1]
            best_model = fit_blend_run(
                con, "ranking_blend", make_params("ranking_blend", {"components": comps}), data
            )
        if best_model is not None:
            any_best = per_user_ranking(best_model.scores, data.train, anything).ndcg
            any_pop = per_user_ranking(models["popularity"].scores, data.train, anything).ndcg
            lo, hi = paired_interval(
                lambda w: (w @ any_best) / (w @ any_pop), len(any_best), args.n_boot
            )
            paired.append(
                f"| same, every held-out rating relevant (not only >= 4) | "
                f"{any_best.mean() / any_pop.mean():.3f} [{lo:.3f}, {hi:.3f}] |"
            )

    # ------------------------------------------------------------------ knn neighbours
    neighbours: list[str] = []
    if "knn" in models:
        knn_params = params_for(con, "knn")
        neighbours.append(
            f"knn as tuned (similarity {knn_params.similarity}, shrinkage "
            f"{knn_params.shrinkage:g}):"
        )
        neighbours += [f"- {line}" for line in neighbour_check(con, "knn")]
        for kind in ("als", "ease"):
            if kind in models:
                neighbours.append(f"{kind} (for comparison):")
                neighbours += [f"- {line}" for line in neighbour_check(con, kind)]
        # Last: publishing another knn run makes it the one `similar` reads.
        for label, overrides in (
            ("knn -p similarity=cosine (its other defaults)", {"similarity": "cosine"}),
            (
                "knn -p similarity=cosine with the carve's ranking choice"
                + (
                    ""
                    if cosine is None
                    else f" (weighting {cosine.weighting}, shrinkage {cosine.shrinkage:g})"
                ),
                None
                if cosine is None
                else {
                    "similarity": "cosine",
                    "weighting": cosine.weighting,
                    "shrinkage": cosine.shrinkage,
                },
            ),
        ):
            if overrides is None:
                continue
            fit_and_publish(
                con,
                "knn",
                params_for(con, "knn", overrides),
                dataclasses.replace(publish, keep_runs=3),
                data=data,
            )
            neighbours.append(f"{label}:")
            neighbours += [f"- {line}" for line in neighbour_check(con, "knn")]

    # ------------------------------------------------------------------ markdown
    lines = [
        f"### goodbooks-10k-subset, {args.split} 80/20 split (seed 42), filters: "
        f"min_user_ratings={min_user}, min_book_ratings={min_book}",
        "",
        f"Matrix {data.shape[0]:,} users x {data.shape[1]:,} books; "
        f"{data.train.nnz:,} train / {data.test.nnz:,} test ratings. "
        f"Machine: {machine()}. Load average (1/5/15 min) at start {load_start}, at end "
        f"{load_average()}; the whole run {time.perf_counter() - wall_start:.0f} s.",
        "",
        "| model | RMSE | MSE | MAE | precision@10 | recall@10 | NDCG@10 | MAP@10 | coverage@10 "
        "| to-read AUC | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in ORDER:
        if kind not in by_kind:
            continue
        m = by_kind[kind]
        fit_s = f"{fit_seconds[kind]:.1f}" if kind in fit_seconds else "<0.1"
        label = kind
        if kind in blend_weights_shown:
            label = f"{kind} ({blend_weights_shown[kind]})"
        lines.append(
            f"| {label} | {cell(m, 'rmse')} | {cell(m, 'mse')} | {cell(m, 'mae')} | "
            f"{cell(m, 'precision')} | {cell(m, 'recall')} | "
            f"{cell(m, 'ndcg')} | {cell(m, 'map')} | {cell(m, 'coverage', 3)} | "
            f"{cell(m, 'to_read_auc', 3)} | {fit_s} |"
        )
    if best_rating is not None:
        lines += [
            "",
            f"Best rating model on test: **{best_rating}** "
            f"(RMSE {np.sqrt(sq[best_rating].sum() / cnt.sum()):.4f}); on the carve: "
            f"**{best_rating_val}** (validation RMSE "
            + ", ".join(f"{k} {validation[k]:.4f}" for k in rating_kinds if k in validation)
            + ").",
        ]
    if ranking_lines:
        lines += [
            "",
            "Ranking models and blend configurations (test NDCG@10 over the same "
            f"{len(ranking['popularity']['ndcg']):,} users; intervals: paired bootstrap):",
            "",
            *ranking_lines,
            "",
            f"Best ranking configuration on test: **{best_rank}**; on the carve: "
            f"**{best_rank_val}**.",
        ]
    if paired:
        lines += [
            "",
            "Paired bootstrap over the same users (95%):",
            "",
            "| comparison | value [interval] |",
            "|---|---|",
            *paired,
        ]
    if neighbours:
        lines += ["", "Neighbour check (5 heaviest neighbours, `shelfwise similar`):", ""]
        lines += neighbours
    if tuned:
        lines += [
            "",
            "Tuned on a 15% validation carve of train (seed 0); "
            "the test split was read once, by evaluate:",
            "",
            "| model | validation metric | points | tune s | chosen params |",
            "|---|---|---|---|---|",
        ]
        for kind, t in tuned.items():
            shown = {k: v for k, v in t["params"].items() if k != "random_state"}
            lines.append(
                f"| {kind} | {t['metric']} {t['value']:.4f} | {t['points']} | "
                f"{t['seconds']:.0f} | `{json.dumps(shown)}` |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    con.close()


if __name__ == "__main__":
    main()
