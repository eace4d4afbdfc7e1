"""als and mf fitted by Spark MLlib's ALS on a Parquet export of the warehouse.

als: ``ALS(implicitPrefs=True)`` on the same confidence weights ``w`` the local engine uses
(``sql/exports/als_confidence.sql``). The two libraries put ``alpha`` and the ridge in different
places, so the local parameters are translated, not copied:

- confidence: implicit weighs an observed cell by ``c = alpha * w``; Spark by
  ``c = 1 + alpha_spark * r``. Spark gets ``alpha_spark = alpha`` and ``r = w - 1 / alpha``
  (floored at a tiny positive value, so the cell stays a positive preference), which makes the two
  confidences equal wherever ``alpha * w >= 1``.
- ridge: implicit adds ``regularization * I`` to every user's and book's normal equations; Spark
  adds ``regParam * n * I``, ``n`` the row's count of cells (ALS-WR). Scores are products
  ``x_u . y_i``, and ridges ``a |x|^2 + b |y|^2`` cost a product of size ``s`` at least
  ``2 sqrt(a b) s`` (the best split of ``s`` between the two vectors), so what matters is the
  geometric mean of the two sides' ridges: ``regParam = regularization / sqrt(n_user n_book)``
  with the mean counts ``n_user = cells / users`` and ``n_book = cells / books`` gives a pair of
  mean-count rows the local ridge.

mf: Spark's explicit ALS on the bias residuals of ``sql/exports/mf_residuals.sql`` (mu and damped
user/book biases computed in SQL first, published as they are): the product's biased MF without
its SVD++ term, so a Spark mf run's params say ``implicit_reg=0``. Both engines damp factors by
``reg * n`` (ALS-WR), so ``regParam = reg``.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import time
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import scipy.sparse as sp

from analytics.als import bm25_confidence
from analytics.factors import FactorModel
from base.config import EngineConfig
from base.errors import ShelfwiseError
from base.registry import param_defaults, spec
from shelfwise.pipeline.spark import runtime, stage
from warehouse.db import scalar

log = logging.getLogger(__name__)

# Alternations of the SQL biases (sql/exports/mf_residuals.sql unrolls this many).
BIAS_ALTERNATIONS = 5
# Spark's implicit ALS needs r > 0 for a positive preference; cells whose local confidence is at
# most 1 get this, i.e. confidence just above 1.
MIN_SHIFTED = 1e-6


def engine_params(kind: str, params: Any, engine: EngineConfig) -> Any:
    """The params a fit of ``kind`` on ``engine`` really uses (one-line error if it cannot).

    Spark's mf has no SVD++ term, so its ``implicit_reg`` is 0 whatever was asked.
    """
    if engine.engine not in spec(kind).engines:
        raise ShelfwiseError(
            f"{kind} cannot be fitted on the {engine.engine} engine "
            f"(it fits on: {', '.join(spec(kind).engines)})"
        )
    fixed = fixed_params(kind) if engine.engine == "spark" else {}
    changed = {k: v for k, v in fixed.items() if getattr(params, k) != v}
    if changed:
        log.info("spark %s holds %s fixed", kind, ", ".join(f"{k}={v}" for k, v in changed.items()))
        return dataclasses.replace(params, **changed)
    return params


def fixed_params(kind: str) -> dict[str, Any]:
    """Parameters a Spark fit of ``kind`` holds fixed (mf's ``implicit_reg``: no SVD++ term)."""
    return {"implicit_reg": 0.0} if "implicit_reg" in param_defaults(kind) else {}


def spark_space(kind: str, space: dict) -> dict:
    """A tune space without the axes a Spark fit holds fixed."""
    fixed = fixed_params(kind)
    return {k: v for k, v in space.items() if k not in fixed}


def matrix_shape(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(n_users, n_books) of the current matrix, without reading it."""
    return (
        int(scalar(con, "select count(*) from matrix.users")),
        int(scalar(con, "select count(*) from matrix.books")),
    )


def bm25_defaults() -> tuple[float, float]:
    """BM25's ``k1`` and ``b`` as the local engine uses them (its function's defaults)."""
    parameters = inspect.signature(bm25_confidence).parameters
    return float(parameters["k1"].default), float(parameters["b"].default)


def als_mapping(params: Any, cells: int, users: int, books: int) -> dict[str, float]:
    """Spark's ``alpha``, ``regParam`` and rating shift for local ALS params (module docstring)."""
    per_user, per_book = cells / max(users, 1), cells / max(books, 1)
    return {
        "alpha": float(params.alpha),
        "regParam": float(params.regularization) / max(float(np.sqrt(per_user * per_book)), 1e-12),
        "shift": 1.0 / float(params.alpha),
    }


class SparkFit:
    """Fits als and mf on Spark for one warehouse connection and matrix build.

    A context manager: the session is started on first use (or the active one reused) and
    stopped on exit if this object started it. Call :meth:`fit` for the train split or call the
    object itself as ``fitter(kind, carve, params)`` (``pipeline.fitting.fit_model``'s signature)
    for tune's carve.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        engine: EngineConfig,
        *,
        fingerprint: str,
        shape: tuple[int, int],
        step: Any = lambda message: None,
    ) -> None:
        self.con, self.engine, self.fingerprint, self.shape = con, engine, fingerprint, shape
        self.step = step
        self._session: Any = None
        self._spark: Any = None

    def __enter__(self) -> SparkFit:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            self._session.__exit__(kind, exc, tb)
            self._session = self._spark = None

    @property
    def spark(self) -> Any:
        if self._spark is None:
            self.step("starting Spark")
            self._session = runtime.session(self.engine)
            self._spark = self._session.__enter__()
        return self._spark

    def __call__(self, kind: str, train: sp.csr_matrix, params: Any) -> FactorModel:
        return self.fit(kind, params, carve=train)

    def fit(self, kind: str, params: Any, *, carve: sp.csr_matrix | None = None) -> FactorModel:
        """Fit ``kind`` on the train split (or ``carve``); the model as the local engine gives it,
        with ``info['engine'] = 'spark'`` and Spark's version and settings."""
        params = engine_params(kind, params, self.engine)
        start = time.perf_counter()
        with runtime.errors(self.engine, f"exporting {kind}'s training data"):
            exported = self._export(kind, params, carve)
        exported_at = time.perf_counter()
        spark = self.spark  # after the export: a failed export never starts a JVM
        out = stage.run_dir(self.engine.stage)
        try:
            with runtime.errors(self.engine, f"fitting {kind}"):
                spark.sparkContext.setCheckpointDir(f"{out}/checkpoints")
                stats = stage.read_scalars(self.con, f"{exported.path}/stats.parquet")
                fitted_at = time.perf_counter()
                settings = self._fit(spark, kind, params, exported, stats, out)
                fitted_at = time.perf_counter() - fitted_at
            model = self._model(kind, params, exported, out, stats)
        finally:
            stage.remove(out)
        info = {
            **model.info,
            "engine": "spark",
            "spark_version": spark.version,
            "spark_master": spark.sparkContext.master,
            "spark": settings,
            "spark_seconds": {
                "export": round(exported_at - start, 3),
                "fit": round(fitted_at, 3),
                "total": round(time.perf_counter() - start, 3),
            },
        }
        return dataclasses.replace(model, info=info)

    # ------------------------------------------------------------------------- the steps

    def _export(self, kind: str, params: Any, carve: sp.csr_matrix | None) -> stage.Export:
        self.step(f"{kind}: exporting the training data to {stage.root(self.engine.stage)}")
        counts = (
            "count(*) as cells, count(distinct user_idx) as users, "
            "count(distinct book_idx) as books"
        )
        if kind == "als":
            k1, b = bm25_defaults()
            return stage.export(
                self.con,
                self.engine.stage,
                fingerprint=self.fingerprint,
                model="exports/als_confidence",
                params={
                    "weighting": params.weighting,
                    "min_rating": float(params.min_rating),
                    "saturation": k1,
                    "length_weight": b,
                },
                value="confidence",
                extras={
                    "stats.parquet": f"select {counts}, any_value(mean_row_sum) as mean_row_sum, "
                    "any_value(floor) as floor, any_value(scale) as scale "
                    "from temp.spark_export",
                    "book_idf.parquet": "select book_idx, any_value(idf) as idf "
                    "from temp.spark_export group by book_idx",
                },
                carve=carve,
            )
        return stage.export(
            self.con,
            self.engine.stage,
            fingerprint=self.fingerprint,
            model="exports/mf_residuals",
            params={"reg_bias": float(params.reg_bias)},
            value="residual",
            extras={
                "stats.parquet": f"select {counts}, any_value(global_mean) as global_mean "
                "from temp.spark_export",
                "user_bias.parquet": "select user_idx, any_value(user_bias) as bias "
                "from temp.spark_export group by user_idx",
                "book_bias.parquet": "select book_idx, any_value(book_bias) as bias "
                "from temp.spark_export group by book_idx",
            },
            carve=carve,
        )

    def _fit(
        self,
        spark: Any,
        kind: str,
        params: Any,
        exported: stage.Export,
        stats: dict[str, float],
        out: str,
    ) -> dict[str, Any]:
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F

        blocks = self.engine.blocks or max(2, spark.sparkContext.defaultParallelism)
        cells = spark.read.parquet(exported.cells).select(
            F.col("user_idx").cast("int").alias("user"),
            F.col("book_idx").cast("int").alias("item"),
            F.col("value").cast("float").alias("value"),
        )
        common = {
            "rank": params.factors,
            "maxIter": params.iterations,
            "seed": params.random_state,
            "numUserBlocks": blocks,
            "numItemBlocks": blocks,
            "checkpointInterval": self.engine.checkpoint_interval,
            "nonnegative": False,
            "coldStartStrategy": "drop",
            "userCol": "user",
            "itemCol": "item",
            "ratingCol": "rating",
        }
        if kind == "als":
            mapping = als_mapping(
                params, int(stats["cells"]), int(stats["users"]), int(stats["books"])
            )
            rating = F.greatest(F.col("value") - F.lit(mapping["shift"]), F.lit(MIN_SHIFTED))
            settings = {
                **common,
                "implicitPrefs": True,
                "alpha": mapping["alpha"],
                "regParam": mapping["regParam"],
                "confidence_shift": mapping["shift"],
            }
        else:
            rating = F.col("value")
            settings = {**common, "implicitPrefs": False, "regParam": float(params.reg)}
        als = ALS(**{k: v for k, v in settings.items() if k != "confidence_shift"})
        self.step(
            f"{kind}: Spark ALS, {int(stats['cells']):,} cells, rank {params.factors}, "
            f"{params.iterations} iterations on {spark.sparkContext.master}"
        )
        log.info("spark: fitting %s on %s cells", kind, f"{int(stats['cells']):,}")
        model = als.fit(cells.withColumn("rating", rating.cast("float")))
        model.userFactors.write.mode("overwrite").parquet(f"{out}/user_factors")
        model.itemFactors.write.mode("overwrite").parquet(f"{out}/book_factors")
        return {k: v for k, v in settings.items() if k not in ("userCol", "itemCol", "ratingCol")}

    def _model(
        self,
        kind: str,
        params: Any,
        exported: stage.Export,
        out: str,
        stats: dict[str, float],
    ) -> FactorModel:
        n_users, n_books = self.shape
        users = stage.read_vectors(self.con, f"{out}/user_factors", n_users, params.factors)
        books = stage.read_vectors(self.con, f"{out}/book_factors", n_books, params.factors)
        if kind == "als":
            info: dict[str, Any] = {}
            if params.weighting == "bm25":
                # What the local fit records for weighing a new reader the same way.
                # A book without cells has idf ln(n_users) - ln(1 + 0).
                idf = stage.read_column(
                    self.con,
                    f"{exported.path}/book_idf.parquet",
                    "book_idx",
                    "idf",
                    n_books,
                    fill=float(np.log(n_users)),
                )
                k1, b = bm25_defaults()
                info["bm25"] = {
                    "k1": k1,
                    "b": b,
                    "idf": [float(v) for v in idf],
                    "mean_row_sum": stats["mean_row_sum"],
                    "floor": stats["floor"],
                    "scale": stats["scale"],
                }
            return FactorModel(
                "als",
                user_factors=users,
                book_factors=books,
                predicts_ratings=False,
                info=info,
            )
        return FactorModel(
            "mf",
            global_mean=stats["global_mean"],
            user_bias=stage.read_column(
                self.con, f"{exported.path}/user_bias.parquet", "user_idx", "bias", n_users
            ),
            book_bias=stage.read_column(
                self.con, f"{exported.path}/book_bias.parquet", "book_idx", "bias", n_books
            ),
            user_factors=users,
            book_factors=books,
            info={"bias_alternations": BIAS_ALTERNATIONS, "svdpp": False},
        )
