"""Model commands: fit, tune, evaluate, refresh (the writers of the model tables)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import click
from rich.table import Table

from base.config import (
    ENGINES,
    SOURCES,
    EngineConfig,
    EvalConfig,
    PublishConfig,
    TransformConfig,
    TuneConfig,
)
from base.errors import ShelfwiseError
from base.registry import fittable
from base.registry import kinds as registry_kinds
from shelfwise.cli.options import DB_OPTION, config_option, kind_overrides
from shelfwise.cli.output import console, print_metrics, progress_steps

KIND = click.Choice(fittable())


def engine_options(f: Callable) -> Callable:
    """Where als and mf are fitted: one option per EngineConfig field, its defaults."""
    options = [
        config_option(
            EngineConfig,
            "engine",
            type=click.Choice(ENGINES),
            help="Fit als and mf here (local) or on Spark (--spark-master); see docs/spark.md.",
        ),
        config_option(
            EngineConfig,
            "master",
            "--spark-master",
            metavar="URL",
            help="Spark master: local[N], spark://HOST:PORT, k8s://https://HOST:PORT or yarn.",
        ),
        config_option(
            EngineConfig,
            "conf",
            "--spark-conf",
            multiple=True,
            metavar="KEY=VALUE",
            help="A Spark setting, repeatable (e.g. spark.driver.memory=8g).",
        ),
        config_option(
            EngineConfig,
            "stage",
            "--spark-stage",
            metavar="PATH|URI",
            help="Folder (or s3://...) the warehouse host and the cluster share for Parquet.",
        ),
        config_option(
            EngineConfig,
            "blocks",
            "--spark-blocks",
            type=click.IntRange(min=0),
            help="ALS user and item blocks (0: the cluster's default parallelism).",
        ),
        config_option(
            EngineConfig,
            "checkpoint_interval",
            "--spark-checkpoint-interval",
            type=click.IntRange(min=1),
            help="Checkpoint ALS's lineage every this many iterations.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def engine_config(
    engine: str,
    master: str,
    conf: tuple[str, ...],
    stage: str,
    blocks: int,
    checkpoint_interval: int,
) -> EngineConfig:
    """The EngineConfig of the engine options (``--spark-conf`` pairs checked here)."""
    pairs = []
    for item in conf:
        key, sep, value = item.partition("=")
        if not sep or not key.strip().startswith("spark.") or not value.strip():
            raise ShelfwiseError(f"--spark-conf {item!r}: expected spark.KEY=VALUE")
        pairs.append((key.strip(), value.strip()))
    return EngineConfig(
        engine=engine,  # type: ignore[arg-type]
        master=master,
        conf=tuple(pairs),
        stage=stage,
        blocks=blocks,
        checkpoint_interval=checkpoint_interval,
    )


@click.command()
@click.argument("kind", type=KIND)
@click.option(
    "--param",
    "-p",
    "param",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a hyper-parameter (e.g. -p factors=64); see docs/models.md.",
)
@config_option(
    PublishConfig,
    "neighbours",
    type=click.IntRange(1, 500),
    help="Cosine neighbours stored per book.",
)
@config_option(
    PublishConfig, "tsne", "--tsne/--no-tsne", help="Also store a t-SNE map (PCA is always stored)."
)
@config_option(
    PublishConfig,
    "keep_runs",
    type=click.IntRange(min=1),
    help="Published runs of this kind to keep.",
)
@engine_options
@DB_OPTION
def fit(
    kind: str,
    param: tuple[str, ...],
    neighbours: int,
    tsne: bool,
    keep_runs: int,
    db_path: Path,
    **engine_values: object,
) -> None:
    """Fit a model on the train split and publish its factors, neighbours and maps atomically.

    als and mf also fit on Spark (--engine spark); the run is published the same way.
    """
    from shelfwise.pipeline.fit import engine_params, fit_and_publish
    from shelfwise.pipeline.tune import params_for
    from warehouse.db import writer

    config = engine_config(**engine_values)  # type: ignore[arg-type]
    publish = PublishConfig(neighbours=neighbours, tsne=tsne, keep_runs=keep_runs)
    with writer(db_path, create=False) as con:
        params = engine_params(kind, params_for(con, kind, kind_overrides(kind, param)), config)
        with progress_steps() as step:
            run_id = fit_and_publish(con, kind, params, publish, engine=config, step=step)
        seconds = con.execute(
            "select seconds from models.runs where run_id = ?", [run_id]
        ).fetchall()[0][0]
    where = "" if config.engine == "local" else f" on {config.engine} ({config.master})"
    console.print(f"published {kind} run {run_id}{where} in {seconds:.1f}s with {params}")


@click.command()
@click.argument("kinds", metavar="KIND...", nargs=-1, required=True, type=KIND)
@click.option(
    "--axis",
    "-a",
    "axes",
    multiple=True,
    metavar="NAME=V1,V2,...",
    help="Search these values of NAME instead of the default ones (adds the axis if new).",
)
@click.option(
    "--only", is_flag=True, help="Search only the --axis axes, the rest stay at their defaults."
)
@config_option(
    TuneConfig,
    "validation_fraction",
    type=click.FloatRange(0.01, 0.5),
    help="Share of the train split held out for validation.",
)
@config_option(TuneConfig, "seed", type=int, help="Seed of the validation carve.")
@config_option(
    TuneConfig, "passes", type=click.IntRange(1, 5), help="Coordinate-search passes over the axes."
)
@engine_options
@DB_OPTION
def tune(
    kinds: tuple[str, ...],
    axes: tuple[str, ...],
    only: bool,
    validation_fraction: float,
    seed: int,
    passes: int,
    db_path: Path,
    **engine_values: object,
) -> None:
    """Search hyper-parameters on a validation carve of the train split; fit and refresh use them.

    The test split is never read: it stays for `shelfwise evaluate`. Explicit `fit -p` wins.
    """
    from analytics.search import axis_names
    from shelfwise.pipeline import tune as tuning
    from warehouse.db import writer

    config = TuneConfig(validation_fraction=validation_fraction, seed=seed, passes=passes)
    where = engine_config(**engine_values)  # type: ignore[arg-type]
    for kind in dict.fromkeys(kinds):
        try:
            given = dict(tuning.parse_axis(a, kind) for a in axes)
        except ValueError as exc:
            raise ShelfwiseError(f"--axis {exc}") from exc
        if only and not given:
            raise ShelfwiseError("--only needs at least one --axis")
        space = tuning.with_axes(kind, given, only=only)
        with writer(db_path, create=False) as con, progress_steps() as step:
            result = tuning.tune(
                con,
                kind,
                space=space,
                fraction=config.validation_fraction,
                random_state=config.seed,
                passes=config.passes,
                engine=where,
                step=step,
            )
        table = Table(
            title=f"{kind}: {len(result.trials)} points, validation {result.metric} (best first)"
        )
        names = axis_names(space)
        for name in names:
            table.add_column(name, justify="right")
        table.add_column(result.metric, justify="right")
        table.add_column("fit s", justify="right")
        ranked = sorted(
            result.trials, key=lambda t: -t.value if result.metric != "rmse" else t.value
        )
        for trial in ranked[:15]:
            table.add_row(
                *(str(trial.params.get(n, "")) for n in names),
                f"{trial.value:.4f}",
                f"{trial.seconds:.1f}",
            )
        console.print(table)
        chosen = ", ".join(f"{k}={v}" for k, v in result.params.items())
        console.print(
            f"tuned {kind}: {result.metric} {result.value:.4f} on validation with {chosen}"
        )


@click.command()
@config_option(EvalConfig, "k", type=click.IntRange(min=1), help="Cut-off of the top-N metrics.")
@config_option(
    EvalConfig,
    "n_boot",
    "--bootstrap",
    type=click.IntRange(min=10),
    help="Bootstrap resamples of users for the intervals.",
)
@DB_OPTION
def evaluate(k: int, n_boot: int, db_path: Path) -> None:
    """Score every published model on the held-out split; store and print the metrics."""
    from shelfwise.pipeline.evaluate import evaluate as run_evaluation
    from warehouse.db import writer

    config = EvalConfig(k=k, n_boot=n_boot)
    with writer(db_path, create=False) as con, progress_steps() as step:
        rows = run_evaluation(con, k=config.k, n_boot=config.n_boot, step=step)
    print_metrics(rows)


@click.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="Dataset folder (default: where the source was last loaded from).",
)
@config_option(TransformConfig, "source", type=click.Choice(SOURCES), help="Which source.")
@click.option(
    "--min-user-ratings",
    type=click.IntRange(min=1),
    default=None,
    help="Override the last transform's value.",
)
@click.option(
    "--min-book-ratings",
    type=click.IntRange(min=1),
    default=None,
    help="Override the last transform's value.",
)
@click.option(
    "--kinds",
    default=", ".join(registry_kinds(default=True)),
    help="Comma-separated model kinds to keep fresh.",
)
@config_option(PublishConfig, "tsne", "--tsne/--no-tsne", help="Store t-SNE maps besides PCA.")
@click.option("--force", is_flag=True, help="Refit every model even if nothing changed.")
@engine_options
@DB_OPTION
def refresh(
    data_dir: Path | None,
    source: str,
    min_user_ratings: int | None,
    min_book_ratings: int | None,
    kinds: str,
    tsne: bool,
    force: bool,
    db_path: Path,
    **engine_values: object,
) -> None:
    """Bring everything up to date: changed raw files, transforms, fits, maps, evaluation.

    With --engine spark, the kinds Spark fits (als, mf) go to Spark and the rest fit here.
    """
    from shelfwise.pipeline.refresh import last_transform
    from shelfwise.pipeline.refresh import refresh as run_refresh
    from warehouse.db import writer

    config = engine_config(**engine_values)  # type: ignore[arg-type]
    choices = fittable()
    wanted = [k.strip() for k in kinds.split(",") if k.strip()]
    if not wanted:
        raise ShelfwiseError(f"--kinds: give at least one of {', '.join(choices)}")
    unknown = set(wanted) - set(choices)
    if unknown:
        raise ShelfwiseError(
            f"--kinds: unknown kind(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(choices)}"
        )
    overrides = {
        k: v
        for k, v in {
            "min_user_ratings": min_user_ratings,
            "min_book_ratings": min_book_ratings,
        }.items()
        if v is not None
    }
    # With --data it may build a warehouse from scratch; without, a missing file is an error.
    with writer(db_path, create=data_dir is not None) as con:
        transform = None
        if overrides:
            last = last_transform(con) or TransformConfig(source=source)  # type: ignore[arg-type]
            transform = dataclasses.replace(last, **overrides)
        with progress_steps() as step:
            report = run_refresh(
                con,
                source=source,
                data_dir=data_dir,
                transform=transform,
                kinds=tuple(wanted),
                publish=dataclasses.replace(PublishConfig(), tsne=tsne),
                force=force,
                engine=config,
                step=step,
            )
    if not report.changed:
        console.print("nothing changed: raw files, matrix and models are up to date")
        return
    if report.loaded:
        console.print(f"loaded {len(report.loaded)} changed file(s)")
    if report.transformed:
        console.print("rebuilt core and matrix tables")
    for kind, run_id in report.fitted.items():
        console.print(f"published {kind} run {run_id}")
    if report.evaluated:
        console.print(
            'evaluated the published models: `shelfwise sql "select * from model_metrics"`'
        )


__all__ = ["evaluate", "fit", "refresh", "tune"]
