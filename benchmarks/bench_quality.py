"""Model quality on real goodbooks ratings: tune on a train-only carve, fit, evaluate once on test,
print markdown.

Usage: python benchmarks/bench_quality.py [--data ../shared/data/goodbooks-10k-subset]
           [--filters default|none] [--split random|temporal] [--no-tune] [--out FILE]

Builds a fresh warehouse from the folder (load, transform with the chosen filters and split), then
for each model kind: `tune` (validation carve of the train split only), a timed fit of the tuned
params, `fit_and_publish`, and finally one `evaluate` on the test split (95% bootstrap intervals
over users). Beside the per-model metrics it prints paired bootstrap intervals of the two acceptance
comparisons (each rating model's RMSE minus the bias baseline's; ALS NDCG@10 over popularity's),
resampling the same users for both models, which is the comparison the independent intervals only
approximate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.baseline import fit_biases  # noqa: E402
from analytics.metrics import per_user_ranking, relevant_test  # noqa: E402
from analytics.search import carve_validation  # noqa: E402
from base.config import LoadConfig, PublishConfig, TransformConfig  # noqa: E402
from base.params import BaselineParams  # noqa: E402
from base.registry import fittable  # noqa: E402
from benchmarks.common import machine  # noqa: E402
from shelfwise.pipeline.evaluate import evaluate  # noqa: E402
from shelfwise.pipeline.fit import fit_and_publish, fit_model  # noqa: E402
from shelfwise.pipeline.tune import params_for, tune  # noqa: E402
from warehouse import store  # noqa: E402
from warehouse.db import connect  # noqa: E402
from warehouse.load import load_dataset  # noqa: E402
from warehouse.runner import run_transforms  # noqa: E402

ORDER = ("global_mean", "popularity", "baseline", "svd", "mf", "als")
FILTERS = {"default": (10, 100), "none": (1, 1)}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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
    """The validation carve every reference tunes on: the one `shelfwise tune` uses
    (15%, seed 0)."""
    return carve_validation(train, fraction=0.15, random_state=0)


def reference_ease(
    train: sp.csr_matrix, lambdas: tuple[float, ...] = (20.0, 50.0, 200.0, 500.0)
) -> tuple[float, Callable]:
    """EASE (Steck 2019), the strong item-item reference for top-N; lambda chosen on the train
    carve.

    Returns (lambda, a score function of user indices).

    ``B = I - P diag(1 / diag P)``, ``P = (X^T X + lambda I)^-1`` on binary X; scores ``X_u B``.
    Not a product model: a yardstick for what a well-tuned linear model reaches on this data.
    """

    def fit(x: sp.csr_matrix, lam: float) -> np.ndarray:
        gram = (x.T @ x).toarray() + lam * np.eye(x.shape[1])
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0.0)
        return b.astype(np.float32)

    fit_part, validation = train_carve(train)
    x_fit = binary(fit_part)
    rel = relevant_test(validation)

    def validation_ndcg(lam: float) -> float:
        b = fit(x_fit, lam)
        return per_user_ranking(lambda u: np.asarray(x_fit[u] @ b), fit_part, rel).ndcg.mean()

    best = max(lambdas, key=validation_ndcg)
    x = binary(train)
    b = fit(x, best)
    return best, lambda u: np.asarray(x[u] @ b)


def reference_item_knn(
    train: sp.csr_matrix,
    mf_params,
    shrinks: tuple[float, ...] = (50.0, 100.0, 300.0),
    damps: tuple[float, ...] = (0.1, 0.5, 1.0),
) -> tuple[str, Callable, float]:
    """Item kNN on bias residuals (KNNBaseline-like), the classic neighbourhood yardstick for RMSE.

    Returns (chosen settings, a predict function of (users, books), the weight of the kNN in the
    best blend with mf). ``rhat = b_ui + sum_j s_ij e_uj / (sum_j s_ij + damp)`` over the books j
    the user rated, ``e = r - b`` the residuals of the damped biases, ``s`` the positive part of
    their cosine similarity shrunk by ``n_ij / (n_ij + shrink)``. Shrink, damp and the blend weight
    ``w`` in ``(1 - w) mf + w knn`` are chosen on the train carve (mf refitted there with its
    tuned params), then everything is refitted on all of train. Not a product model: it says
    whether a different family, or a blend, would move RMSE where mf cannot.
    """

    def fit(x: sp.csr_matrix, shrink: float, damp: float) -> Callable:
        b = fit_biases(x, BaselineParams(reg_user=5.0, reg_book=5.0))
        x = sp.csr_matrix(x, dtype=np.float64)
        users = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        resid = sp.csr_matrix(
            (
                x.data - b.global_mean - b.user_bias[users] - b.book_bias[x.indices],
                x.indices,
                x.indptr,
            ),
            shape=x.shape,
        )
        rated = binary(x)
        dots = (resid.T @ resid).toarray()
        norms = np.sqrt(np.maximum(np.diag(dots), 1e-12))
        together = (rated.T @ rated).toarray()
        sim = np.maximum(dots / np.outer(norms, norms), 0.0) * together / (together + shrink)
        np.fill_diagonal(sim, 0.0)
        num, den = np.asarray(resid @ sim), np.asarray(rated @ sim)

        def predict(u: np.ndarray, i: np.ndarray) -> np.ndarray:
            base = b.global_mean + b.user_bias[u] + b.book_bias[i]
            return np.clip(base + num[u, i] / (den[u, i] + damp), 1.0, 5.0)

        return predict

    def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
        return float(np.sqrt(np.mean((pred - truth) ** 2)))

    fit_part, validation = train_carve(train)
    vu = np.repeat(np.arange(validation.shape[0]), np.diff(validation.indptr))
    vb, truth = validation.indices, validation.data
    shrink, damp = min(
        ((s, d) for s in shrinks for d in damps),
        key=lambda sd: rmse(fit(fit_part, *sd)(vu, vb), truth),
    )
    knn_val = fit(fit_part, shrink, damp)(vu, vb)
    mf_val = fit_model("mf", fit_part, mf_params).predict(vu, vb)
    weight = min(
        np.linspace(0.0, 1.0, 11), key=lambda w: rmse((1 - w) * mf_val + w * knn_val, truth)
    )
    return f"shrink {shrink:g}, damp {damp:g}", fit(train, shrink, damp), float(weight)


def reference_als_plus_mf(train: sp.csr_matrix, als_params, mf_params) -> tuple[float, Callable]:
    """ALS scores plus ``g`` times mf's predicted rating: "will read" and "will like" in one score.

    Relevance is a held-out 4 or 5, so a ranking that also knows how much the user would like a
    book could beat one that only knows what they read. ``g`` (in units of the two scores' spreads)
    is chosen on the train carve, with both models refitted there on their tuned params; then both
    are refitted on all of train. Not a product model: it says how far a hybrid moves the ratio.
    """

    def combine(als, mf, g: float) -> Callable:
        probe = np.arange(min(2000, train.shape[0]))
        scale = g * float(np.std(als.scores(probe))) / float(np.std(mf.scores(probe)))
        return lambda u: als.scores(u) + scale * mf.scores(u)

    fit_part, validation = train_carve(train)
    als, mf = fit_model("als", fit_part, als_params), fit_model("mf", fit_part, mf_params)
    rel = relevant_test(validation)
    best = max(
        (0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0),
        key=lambda g: per_user_ranking(combine(als, mf, g), fit_part, rel).ndcg.mean(),
    )
    return best, combine(
        fit_model("als", train, als_params), fit_model("mf", train, mf_params), best
    )


def paired_interval(stat, n: int, n_boot: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of ``stat(weights)`` under a multinomial resampling of n users."""
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    values = stat(weights)
    return float(np.quantile(values, 0.025)), float(np.quantile(values, 0.975))


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
    ap.add_argument("--out", type=Path, default=None, help="Also write the markdown here.")
    args = ap.parse_args()

    kinds = [k for k in args.kinds.split(",") if k]
    min_user, min_book = FILTERS[args.filters]
    args.work.mkdir(parents=True, exist_ok=True)
    db = args.work / f"quality-{args.filters}-{args.split}.duckdb"
    for stale in (db, Path(f"{db}.wal")):
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

    tuned: dict[str, dict] = {}
    fit_seconds: dict[str, float] = {}
    for kind in kinds:
        if not args.no_tune:
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
        start = time.perf_counter()
        fit_model(kind, data.train, params)  # timed on its own: publish adds neighbours and maps
        fit_seconds[kind] = time.perf_counter() - start
        log(f"{kind}: fit {fit_seconds[kind]:.1f}s with {asdict(params)}")
        fit_and_publish(
            con, kind, params, PublishConfig(neighbours=10, tsne=False, keep_runs=1), data=data
        )
    log("evaluating on the test split")
    rows = evaluate(con, n_boot=args.n_boot, step=log)

    by_kind: dict[str, dict] = {}
    for r in rows:
        by_kind.setdefault(r.kind, {})[r.metric.name] = r.metric

    # Paired comparisons on the very same resampled users.
    models = {
        kind: store.read_model(con, store.latest_run(con, kind)["run_id"]) for kind in by_kind
    }
    paired: list[str] = []
    if "baseline" in models:
        sq_b, cnt = per_user_squared_errors(models["baseline"], data.test)
        for kind in ("svd", "mf"):
            if kind not in models:
                continue
            sq_k, _ = per_user_squared_errors(models[kind], data.test)
            diff = float(np.sqrt(sq_k.sum() / cnt.sum()) - np.sqrt(sq_b.sum() / cnt.sum()))
            lo, hi = paired_interval(
                lambda w, sq_k=sq_k: np.sqrt(w @ sq_k / (w @ cnt)) - np.sqrt(w @ sq_b / (w @ cnt)),
                len(cnt),
                args.n_boot,
            )
            paired.append(f"| {kind} RMSE - baseline RMSE | {diff:+.4f} [{lo:+.4f}, {hi:+.4f}] |")
        if "mf" in models and data.shape[1] <= 5000:
            tu = np.repeat(np.arange(data.test.shape[0]), np.diff(data.test.indptr))
            settings, knn, weight = reference_item_knn(data.train, params_for(con, "mf"))
            knn_pred, mf_pred = (
                knn(tu, data.test.indices),
                models["mf"].predict(tu, data.test.indices),
            )
            for label, pred in (
                ("reference item kNN (" + settings + ", not a product model)", knn_pred),
                (
                    f"reference blend {1 - weight:.1f} mf + {weight:.1f} item kNN "
                    "(weight from the carve)",
                    (1 - weight) * mf_pred + weight * knn_pred,
                ),
            ):
                sq_r = np.bincount(tu, (pred - data.test.data) ** 2, minlength=data.test.shape[0])
                lo, hi = paired_interval(
                    lambda w, sq_r=sq_r: np.sqrt(w @ sq_r / (w @ cnt)), len(cnt), args.n_boot
                )
                paired.append(
                    f"| {label}: RMSE | {np.sqrt(sq_r.sum() / cnt.sum()):.4f} "
                    f"[{lo:.4f}, {hi:.4f}] |"
                )
    relevant = relevant_test(data.test)
    if "als" in models and "popularity" in models:
        als = per_user_ranking(models["als"].scores, data.train, relevant)
        users, nd_als = als.users, als.ndcg
        nd_pop = per_user_ranking(models["popularity"].scores, data.train, relevant).ndcg
        ratio = float(nd_als.mean() / nd_pop.mean())
        lo, hi = paired_interval(lambda w: (w @ nd_als) / (w @ nd_pop), len(users), args.n_boot)
        paired.append(f"| ALS NDCG@10 / popularity NDCG@10 | {ratio:.3f} [{lo:.3f}, {hi:.3f}] |")
        # The same ratio when every held-out rating counts as relevant, not only 4s and 5s.
        anything = binary(data.test)
        any_als = per_user_ranking(models["als"].scores, data.train, anything).ndcg
        any_pop = per_user_ranking(models["popularity"].scores, data.train, anything).ndcg
        lo, hi = paired_interval(lambda w: (w @ any_als) / (w @ any_pop), len(any_als), args.n_boot)
        paired.append(
            "| same, every held-out rating relevant (not only >= 4) | "
            f"{any_als.mean() / any_pop.mean():.3f} [{lo:.3f}, {hi:.3f}] |"
        )
        if data.shape[1] <= 5000:
            lam, ease = reference_ease(data.train)
            nd_ease = per_user_ranking(ease, data.train, relevant).ndcg
            lo, hi = paired_interval(
                lambda w: (w @ nd_ease) / (w @ nd_pop), len(users), args.n_boot
            )
            lo_n, hi_n = paired_interval(
                lambda w: (w @ nd_ease) / w.sum(axis=1), len(users), args.n_boot
            )
            paired.append(
                f"| reference EASE (lambda {lam:g}, not a product model): NDCG@10 | "
                f"{nd_ease.mean():.4f} [{lo_n:.4f}, {hi_n:.4f}] |"
            )
            paired.append(
                "| reference EASE NDCG@10 / popularity NDCG@10 | "
                f"{nd_ease.mean() / nd_pop.mean():.3f} [{lo:.3f}, {hi:.3f}] |"
            )
        if "mf" in models:
            g, hybrid = reference_als_plus_mf(
                data.train, params_for(con, "als"), params_for(con, "mf")
            )
            nd_hyb = per_user_ranking(hybrid, data.train, relevant).ndcg
            lo, hi = paired_interval(lambda w: (w @ nd_hyb) / (w @ nd_pop), len(users), args.n_boot)
            paired.append(
                f"| reference als + {g:g} x mf predicted rating "
                "(weight from the carve, not a product model) NDCG@10 / popularity | "
                f"{nd_hyb.mean() / nd_pop.mean():.3f} [{lo:.3f}, {hi:.3f}] |"
            )

    lines = [
        f"### goodbooks-10k-subset, {args.split} 80/20 split (seed 42), filters: "
        f"min_user_ratings={min_user}, min_book_ratings={min_book}",
        "",
        f"Matrix {data.shape[0]:,} users x {data.shape[1]:,} books; "
        f"{data.train.nnz:,} train / {data.test.nnz:,} test ratings. "
        f"Machine: {machine()}.",
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
        lines.append(
            f"| {kind} | {cell(m, 'rmse')} | {cell(m, 'mse')} | {cell(m, 'mae')} | "
            f"{cell(m, 'precision')} | {cell(m, 'recall')} | "
            f"{cell(m, 'ndcg')} | {cell(m, 'map')} | {cell(m, 'coverage', 3)} | "
            f"{cell(m, 'to_read_auc', 3)} | {fit_s} |"
        )
    if paired:
        lines += [
            "",
            "Paired bootstrap over the same users (95%):",
            "",
            "| comparison | value [interval] |",
            "|---|---|",
            *paired,
        ]
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
