"""The Spark engine: als and mf fitted by Spark MLlib's ALS; the warehouse stays the record.

The train split (or tune's carve of it) leaves DuckDB as Parquet with its confidences or bias
residuals already computed in SQL (``sql/exports/``); Spark fits, writes the factors back as
Parquet, DuckDB reads them, and ``pipeline.fit`` publishes them like any local fit. pyspark is
imported only inside these modules' functions, so the product works without the ``[spark]``
extra. See docs/spark.md.
"""

from __future__ import annotations

from shelfwise.pipeline.spark.fit import (
    SparkFit,
    engine_params,
    fixed_params,
    matrix_shape,
    spark_space,
)
from shelfwise.pipeline.spark.runtime import check, session

__all__ = [
    "SparkFit",
    "check",
    "engine_params",
    "fixed_params",
    "matrix_shape",
    "session",
    "spark_space",
]
