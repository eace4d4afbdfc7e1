"""The Spark engine in local[2]: both engines fitted on one small generated warehouse publish the
same tables and agree on planted series; tune and refresh drive it; a killed driver or a JVM that
cannot start leaves the previous run serving and the failure recorded.

Every Spark fit of this module shares one SparkSession (module fixture); the two tests that need a
driver of their own (killed, or never started) run the CLI in a subprocess.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from helpers import SAMPLE, rows

from base.config import EngineConfig, LoadConfig, PublishConfig, TransformConfig
from base.registry import make_params, spec
from shelfwise import serving
from shelfwise.pipeline.evaluate import evaluate
from shelfwise.pipeline.fit import fit_and_publish
from shelfwise.pipeline.refresh import refresh
from shelfwise.pipeline.spark import runtime
from shelfwise.pipeline.tune import tune
from synth.goodbooks import generate_goodbooks
from warehouse import store
from warehouse.db import writer
from warehouse.load import load_dataset
from warehouse.runner import run_transforms

REPO = Path(__file__).resolve().parents[1]
# 2,000 generated readers of the 100 most-rated sample books: enough ratings per book (~800) for
# stable neighbours, small enough for a few seconds per Spark fit.
TRANSFORM = TransformConfig(min_book_ratings=10, min_user_ratings=5)
SMALL = {
    "als": {"factors": 8, "iterations": 6},
    "mf": {"factors": 8, "iterations": 6, "implicit_reg": 0.0},
}
PUBLISH = PublishConfig(neighbours=10, tsne=False)


@dataclasses.dataclass(frozen=True)
class Built:
    db: Path
    engine: EngineConfig
    runs: dict[tuple[str, str], int]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory):
    """One SparkSession for the module, and a generated warehouse with als and mf fitted on
    each engine (the local runs first, so each kind's latest run is its Spark run)."""
    root = tmp_path_factory.mktemp("spark")
    engine = EngineConfig(engine="spark", master="local[2]", stage=str(root / "stage"))
    generate_goodbooks(
        root / "data",
        books_csv=SAMPLE / "books.csv.gz",
        tags_csv=SAMPLE / "tags.csv.gz",
        book_tags_csv=SAMPLE / "book_tags.csv.gz",
        n_ratings=80_000,
        n_users=2_000,
        n_books=100,
        seed=5,
        progress=False,
    )
    db = root / "w.duckdb"
    runs = {}
    with runtime.session(engine):
        with writer(db) as con:
            load_dataset(con, LoadConfig(source="goodbooks", directory=root / "data"))
            run_transforms(con, TRANSFORM)
            for kind, overrides in SMALL.items():
                for where in (EngineConfig(), engine):
                    runs[kind, where.engine] = fit_and_publish(
                        con, kind, make_params(kind, overrides), PUBLISH, engine=where
                    )
        yield Built(db, engine, runs)


def copy_of(db: Path, tmp_path: Path) -> Path:
    target = tmp_path / "w.duckdb"
    target.write_bytes(db.read_bytes())
    return target


@pytest.fixture
def con(built):
    with duckdb.connect(str(built.db), read_only=True) as c:
        yield c


def run_row(con, run_id: int) -> dict:
    cur = con.execute("select * from models.runs where run_id = ?", [run_id])
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchall()[0], strict=True))


# ----------------------------------------------------------------------------- same tables


@pytest.mark.parametrize("kind", list(SMALL))
def test_both_engines_publish_the_same_tables(built, con, kind):
    local, remote = built.runs[kind, "local"], built.runs[kind, "spark"]
    for table in (
        *(f"models.{t}" for t in spec(kind).stores),
        "models.run_books",
        "models.run_users",
        "models.book_neighbours",
        "models.projections",
    ):
        counts = [
            rows(con, f"select count(*) from {table} where run_id = ?", [r])[0][0]
            for r in (local, remote)
        ]
        assert counts[0] == counts[1] > 0, table
    for table in ("models.user_factors", "models.book_factors"):
        lengths = rows(
            con,
            f"select run_id, min(len(vector)), max(len(vector)) from {table} "
            "where run_id in (?, ?) group by run_id order by run_id",
            [local, remote],
        )
        assert [r[1:] for r in lengths] == [(8, 8), (8, 8)], table
    books = [
        rows(con, "select book_key from models.run_books where run_id = ? order by book_idx", [r])
        for r in (local, remote)
    ]
    assert books[0] == books[1]

    a, b = run_row(con, local), run_row(con, remote)
    # Same params JSON (Spark's mf: implicit_reg 0, as asked here); the engine is in info alone.
    assert json.loads(a["params"]) == json.loads(b["params"])
    info_a, info_b = json.loads(a["info"]), json.loads(b["info"])
    assert info_a["engine"] == "local" and info_b["engine"] == "spark"
    assert info_b["spark_version"] == runtime.check_pyspark()
    assert info_b["spark"]["rank"] == 8 and info_b["spark"]["maxIter"] == 6
    assert b["status"] == "succeeded" and b["published"]


def test_the_main_views_serve_a_spark_run_like_a_local_one(built, con):
    for kind in SMALL:
        latest = rows(con, "select run_id from main.latest_runs where kind = ?", [kind])[0][0]
        assert latest == built.runs[kind, "spark"]
    columns = {
        view: [d[0] for d in con.execute(f"select * from main.{view} limit 0").description]
        for view in ("book_factors", "book_neighbours", "user_factors", "book_bias")
    }
    assert rows(
        con, "select count(distinct kind) from main.book_neighbours where kind in ('als', 'mf')"
    ) == [(2,)]
    assert columns["book_factors"][:2] == ["kind", "run_id"]
    title = rows(
        con,
        "select b.title from main.book_neighbours as n join core.books as b using (book_key) "
        "where n.kind = 'als' limit 1",
    )[0][0]
    book, similar = serving.similar(con, title, kind="als", n=5)
    assert len(similar) == 5 and book.title == title


def series_books(con) -> dict[int, str]:
    """Matrix books whose title names a series (``... (Series, #n)``) with at least 3 members."""
    titles = rows(
        con,
        "select m.book_idx, b.title from matrix.books as m join core.books as b using (book_key)",
    )
    series = {i: m.group(1).strip() for i, t in titles if (m := re.search(r"\(([^,#]+),? #", t))}
    sizes = {s: list(series.values()).count(s) for s in set(series.values())}
    return {i: s for i, s in series.items() if sizes[s] >= 3}


@pytest.mark.parametrize("kind", list(SMALL))
def test_the_engines_agree_on_the_planted_series(built, con, kind):
    books = series_books(con)
    assert len(books) >= 10 and len(set(books.values())) >= 3

    def top10(run_id: int) -> dict[int, set[int]]:
        out: dict[int, set[int]] = {}
        for b, n in rows(
            con,
            "select book_idx, neighbour_idx from models.book_neighbours "
            "where run_id = ? and rank <= 10",
            [run_id],
        ):
            out.setdefault(b, set()).add(n)
        return out

    local, remote = top10(built.runs[kind, "local"]), top10(built.runs[kind, "spark"])
    overlap = np.mean([len(local[b] & remote[b]) / 10 for b in books])
    assert overlap >= 0.7, f"{kind}: top-10 overlap {overlap:.2f} on {len(books)} series books"


def test_spark_mf_predicts_the_held_out_ratings_as_well_as_local_mf(built, con):
    data = store.read_ratings(con)
    users, books = data.test.nonzero()
    truth = np.asarray(data.test[users, books]).ravel()
    rmse = {}
    for where in ("local", "spark"):
        model = store.read_model(con, built.runs["mf", where])
        rmse[where] = float(np.sqrt(np.mean((model.predict(users, books) - truth) ** 2)))
    assert abs(rmse["spark"] - rmse["local"]) <= 0.01, rmse


def test_evaluate_scores_spark_runs(built, tmp_path):
    db = copy_of(built.db, tmp_path)
    with writer(db, create=False) as con:
        evaluate(con, n_boot=10)
        got = rows(
            con,
            "select kind, metric from model_metrics where run_id in (?, ?) order by 1, 2",
            [built.runs["als", "spark"], built.runs["mf", "spark"]],
        )
    assert ("mf", "rmse") in got and ("als", "ndcg") in got


# ----------------------------------------------------------------------------- tune and refresh


def test_tune_on_spark_fits_every_point_there_and_holds_implicit_reg_at_zero(built, tmp_path):
    db = copy_of(built.db, tmp_path)
    engine = dataclasses.replace(built.engine, stage=str(tmp_path / "stage"))
    with writer(db, create=False) as con:
        result = tune(
            con,
            "mf",
            space={"reg": [0.3], "implicit_reg": [30.0]},
            passes=1,
            engine=engine,
        )
        stored = rows(con, "select params from models.tuned order by tune_id desc limit 1")[0][0]
    # The default point and reg=0.3; implicit_reg is no axis on Spark and stays 0 everywhere.
    assert len(result.trials) == 2
    assert all(t.params["implicit_reg"] == 0.0 for t in result.trials)
    assert all(t.params["iterations"] == make_params("mf").iterations for t in result.trials)
    assert json.loads(stored) == result.params
    # One carve export, reused by both points.
    exports = list((tmp_path / "stage").glob("*/mf_residuals-*"))
    assert len(exports) == 1


def test_refresh_fits_what_spark_can_on_spark_and_the_rest_here(built, tmp_path):
    db = copy_of(built.db, tmp_path)
    engine = dataclasses.replace(built.engine, stage=str(tmp_path / "stage"))
    kinds = ("baseline", "als")

    def engines(con) -> dict[str, str]:
        return {
            k: json.loads(i)["engine"]
            for k, i in rows(con, "select kind, info from main.latest_runs")
            if k in kinds
        }

    with writer(db, create=False) as con:
        # Small tuned als params (fast on Spark); the fixture's runs used them too.
        con.execute(
            "insert into models.tuned (tune_id, kind, params, metric, value, tuned_at, "
            "input_fingerprint, source, validation_fraction, seed, seconds, trials) "
            "values (1, 'als', ?, 'ndcg@10', 0, now(), '', 'goodbooks', 0.15, 0, 0, '[]')",
            [json.dumps(dataclasses.asdict(make_params("als", SMALL["als"])))],
        )
        # The latest als run is the fixture's Spark run, current for a Spark refresh: only the
        # missing baseline is fitted, and here, since Spark does not fit baselines.
        first = refresh(
            con,
            source="goodbooks",
            data_dir=built.db.parent / "data",
            kinds=kinds,
            engine=engine,
        )
        assert list(first.fitted) == ["baseline"]
        assert engines(con) == {"baseline": "local", "als": "spark"}
        assert not refresh(con, kinds=kinds, engine=engine).fitted
        # A Spark run is stale for a local refresh, and the other way round.
        back = refresh(con, kinds=kinds)
        assert list(back.fitted) == ["als"] and engines(con)["als"] == "local"
        again = refresh(con, kinds=kinds, engine=engine)
        assert list(again.fitted) == ["als"] and engines(con)["als"] == "spark"
        assert engines(con)["baseline"] == "local"


# ----------------------------------------------------------------------------- failures


def cli_process(*args: str) -> subprocess.Popen:
    environ = {k: v for k, v in os.environ.items() if k != "SHELFWISE_DB"}
    return subprocess.Popen(
        [sys.executable, "-m", "shelfwise.cli", *args],
        cwd=REPO,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def java_child(pid: int) -> int | None:
    """The pid of a ``java`` process whose parent is ``pid`` (pyspark's driver JVM)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if parent == pid and name == "java":
            return int(entry.name)
    return None


def test_killing_the_spark_driver_mid_fit_keeps_the_previous_run_serving(built, tmp_path):
    db = copy_of(built.db, tmp_path)
    with duckdb.connect(str(db), read_only=True) as c:
        serving_before = rows(c, "select run_id from main.latest_runs where kind = 'als'")[0][0]
        last_id = rows(c, "select max(run_id) from models.runs")[0][0]
    proc = cli_process(
        "fit", "als", "--engine", "spark", "--spark-master", "local[1]",
        "--spark-stage", str(tmp_path / "stage"), "-p", "iterations=400", "-p", "factors=8",
        "--no-tsne", "--db", str(db),
    )  # fmt: skip
    seen: list[str] = []
    deadline = time.monotonic() + 300
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if "spark: fitting als" in line:
            break
    else:
        proc.kill()
        pytest.fail("the fit never started:\n" + "".join(seen))
    time.sleep(3)  # well into 400 iterations
    java = java_child(proc.pid)
    assert java is not None, "no driver JVM under the fit"
    os.kill(java, signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, "".join(seen) + err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: the Spark driver went away while fitting als"), last

    with duckdb.connect(str(db), read_only=True) as c:
        assert rows(c, "select run_id from main.latest_runs where kind = 'als'")[0][0] == (
            serving_before
        )
        failed = rows(
            c,
            "select kind, status, published, finished_at is not null from models.runs "
            "where run_id > ?",
            [last_id],
        )
        assert failed == [("als", "failed", False, True)]
        assert rows(c, "select count(*) from models.runs where status = 'running'") == [(0,)]
        # Nothing of the failed run reached a model table.
        run_id = last_id + 1
        assert rows(c, "select count(*) from models.book_factors where run_id = ?", [run_id]) == [
            (0,)
        ]


def test_a_driver_that_cannot_start_records_a_failed_run_in_one_line(built, tmp_path):
    db = copy_of(built.db, tmp_path)
    with duckdb.connect(str(db), read_only=True) as c:
        serving_before = rows(c, "select run_id from main.latest_runs where kind = 'mf'")[0][0]
    proc = cli_process(
        "fit", "mf", "--engine", "spark", "--spark-stage", str(tmp_path / "stage"),
        "--spark-conf", "spark.driver.memory=lots", "--no-tsne", "--db", str(db),
    )  # fmt: skip
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Spark" in lines[0], err
    assert err.strip().splitlines()[-1] == lines[0]
    with duckdb.connect(str(db), read_only=True) as c:
        assert rows(c, "select run_id from main.latest_runs where kind = 'mf'")[0][0] == (
            serving_before
        )
        assert rows(c, "select status from models.runs order by run_id desc limit 1") == [
            ("failed",)
        ]


def test_a_spark_run_reads_back_as_the_local_model_type(built, con):
    for kind in SMALL:
        model = store.read_model(con, built.runs[kind, "spark"])
        local = store.read_model(con, built.runs[kind, "local"])
        assert type(model) is type(local)
        assert model.user_factors.shape == local.user_factors.shape
        assert model.predicts_ratings == local.predicts_ratings
