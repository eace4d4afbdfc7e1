"""Typed configuration for each step, built once by the CLI and passed down."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Source = Literal["goodbooks", "ucsd"]
SOURCES: tuple[str, ...] = ("goodbooks", "ucsd")
DEFAULT_DB = Path("var/shelfwise.duckdb")


def default_db_path() -> Path:
    """Warehouse file: ``SHELFWISE_DB`` if set, else ``var/shelfwise.duckdb``."""
    return Path(os.environ.get("SHELFWISE_DB", DEFAULT_DB))


@dataclass(frozen=True)
class LoadConfig:
    source: Source
    directory: Path
    # A load stops rather than silently dropping more than this share of a file's rows.
    max_reject_fraction: float = 0.01


@dataclass(frozen=True)
class TransformConfig:
    source: Source = "goodbooks"
    min_user_ratings: int = 10
    min_book_ratings: int = 100
    kcore: bool = False
    test_fraction: float = 0.2
    seed: int = 42
    split: Literal["random", "temporal"] = "random"

    def __post_init__(self) -> None:
        if not 0.0 <= self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in [0, 1), got {self.test_fraction}")
        if self.min_user_ratings < 1 or self.min_book_ratings < 1:
            raise ValueError("min_user_ratings and min_book_ratings must be >= 1")


@dataclass(frozen=True)
class PublishConfig:
    """What a fit derives and keeps besides the model: neighbours, maps, retention."""

    neighbours: int = 50
    tsne: bool = True
    keep_runs: int = 3


@dataclass(frozen=True)
class TuneConfig:
    """How ``tune`` searches: the validation carve of the train split and the passes."""

    validation_fraction: float = 0.15
    seed: int = 0
    passes: int = 2


@dataclass(frozen=True)
class EvalConfig:
    """How ``evaluate`` scores: the top-N cut-off and the bootstrap resamples of users."""

    k: int = 10
    n_boot: int = 200


# Where a kind's fit runs: in this process, or on Spark (a cluster, or local[N]). A kind lists the
# engines it supports in base.registry (KindSpec.engines).
ENGINES: tuple[str, ...] = ("local", "spark")


@dataclass(frozen=True)
class EngineConfig:
    """Which engine fits als and mf, and how the Spark engine reaches its cluster.

    ``master`` is a Spark master URL (``local[N]``, ``spark://host:port``, ``k8s://...``,
    ``yarn``); ``conf`` are extra ``spark.*`` settings as (key, value) pairs; ``stage`` is the
    directory (or ``s3://...`` URI) both the warehouse host and the cluster read and write: the
    train split goes there as Parquet, the factors come back through it. ``blocks`` is ALS's user
    and item block count (0: the cluster's default parallelism); ``checkpoint_interval`` cuts the
    lineage every that many iterations (checkpoints go under the stage too).
    """

    engine: Literal["local", "spark"] = "local"
    master: str = "local[2]"
    conf: tuple[tuple[str, str], ...] = ()
    stage: str = "var/spark-stage"
    blocks: int = 0
    checkpoint_interval: int = 10

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.blocks < 0 or self.checkpoint_interval < 1:
            raise ValueError("blocks must be >= 0 and checkpoint_interval >= 1")


def to_json(config: object) -> str:
    """Serialise a config dataclass as the params JSON stored with each run."""

    def default(o: object) -> object:
        if isinstance(o, Path):
            return str(o)
        raise TypeError(type(o).__name__)

    return json.dumps(dataclasses.asdict(config), sort_keys=True, default=default)  # type: ignore[arg-type]
