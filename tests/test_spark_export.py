"""The Spark engine without a JVM: its SQL exports give the local engine's numbers, the stage is
written once per matrix build, and every bad setting fails in one line before a run is recorded."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest
import scipy.sparse as sp
from helpers import rows

from analytics.als import confidence_matrix
from analytics.baseline import fit_biases
from base.config import EngineConfig, PublishConfig
from base.errors import ShelfwiseError
from base.params import WEIGHTINGS, BaselineParams, MfParams
from base.registry import REGISTRY, make_params
from shelfwise.pipeline.fit import engine_params, fit_and_publish
from shelfwise.pipeline.spark import fit as spark_fit
from shelfwise.pipeline.spark import runtime, stage
from warehouse.catalog import EXPORTS, read_model

SHELFWISE = Path(sys.executable).parent / "shelfwise"


def ratings(seed: int = 0, shape: tuple[int, int] = (300, 80)) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    m = sp.random(*shape, density=0.1, random_state=seed, format="csr", dtype=np.float32)
    m.data = rng.integers(1, 6, m.nnz).astype(np.float32)
    return m


@pytest.fixture
def con():
    """An in-memory DuckDB with ``matrix.users`` and the input view an export reads."""
    con = duckdb.connect()
    con.execute("create schema matrix")
    con.execute("create table matrix.users as select range as user_idx from range(300)")
    con.register("cells", stage.as_arrow(ratings()))
    con.execute("create temp view spark_input as select * from cells")
    yield con
    con.close()


@pytest.mark.parametrize("name", EXPORTS)
def test_an_export_opens_with_the_models_header(name):
    model = read_model(name)
    assert model.sql.splitlines()[0].startswith("-- ")
    grain = model.header("grain")
    assert grain and "key:" in grain
    assert "temp.spark_input" in (model.header("upstream") or "")
    assert sorted(re.findall(r"\$([a-z_]+)", model.header("parameters") or "")) == model.parameters


@pytest.mark.parametrize("weighting", WEIGHTINGS)
@pytest.mark.parametrize("min_rating", [0.0, 3.0])
def test_sql_confidences_are_the_local_engines(con, weighting, min_rating):
    k1, b = spark_fit.bm25_defaults()
    got = con.execute(
        read_model("exports/als_confidence").sql,
        {"weighting": weighting, "min_rating": min_rating, "saturation": k1, "length_weight": b},
    ).fetchnumpy()
    sql = sp.csr_matrix((got["confidence"], (got["user_idx"], got["book_idx"])), shape=(300, 80))
    local = confidence_matrix(ratings(), min_rating=min_rating, weighting=weighting)
    assert sql.nnz == local.nnz
    assert (sql != local).nnz == 0 or abs(sql - local).max() <= 1e-6 * abs(local).max()


def test_sql_biases_are_the_baselines_and_residuals_add_up(con):
    got = con.execute(read_model("exports/mf_residuals").sql, {"reg_bias": 5.0}).fetchnumpy()
    train = ratings()
    ref = fit_biases(
        train, BaselineParams(reg_user=5.0, reg_book=5.0, iterations=spark_fit.BIAS_ALTERNATIONS)
    )
    u, i = got["user_idx"], got["book_idx"]
    assert got["global_mean"][0] == pytest.approx(ref.global_mean, abs=1e-12)
    np.testing.assert_allclose(got["user_bias"], ref.user_bias[u], atol=1e-10)
    np.testing.assert_allclose(got["book_bias"], ref.book_bias[i], atol=1e-10)
    rating = np.asarray(train[u, i]).ravel()
    residual = rating - ref.global_mean - ref.user_bias[u] - ref.book_bias[i]
    np.testing.assert_allclose(got["residual"], residual, atol=1e-5)


# ----------------------------------------------------------------------------- the stage


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A small warehouse (the bundled sample's books, generated ratings), one local als run."""
    from helpers import SAMPLE, build_warehouse

    from base.config import TransformConfig

    db = tmp_path_factory.mktemp("spark-export") / "w.duckdb"
    return build_warehouse(
        db,
        SAMPLE,
        TransformConfig(min_book_ratings=60),
        fits={"als": {"factors": 4, "iterations": 2}},
    )


def copy_of(db: Path, tmp_path: Path) -> Path:
    target = tmp_path / "w.duckdb"
    target.write_bytes(db.read_bytes())
    return target


def test_an_export_is_written_once_per_matrix_build_and_reused(built, tmp_path):
    from warehouse.db import connect
    from warehouse.runner import run_transforms
    from warehouse.store import matrix_fingerprint

    con = connect(copy_of(built, tmp_path))
    try:
        where = str(tmp_path / "stage")
        args = {
            "model": "exports/mf_residuals",
            "params": {"reg_bias": 5.0},
            "value": "residual",
            "extras": {"stats.parquet": "select count(*) as cells from temp.spark_export"},
        }
        fingerprint = matrix_fingerprint(con)[1]
        first = stage.export(con, where, fingerprint=fingerprint, **args)
        marker = Path(first.path) / stage.MARKER
        written = marker.stat().st_mtime_ns
        parts = sorted(p.name for p in Path(first.cells).iterdir())
        assert parts and all(p.startswith("part=") for p in parts)
        n = rows(con, "select count(*) from read_parquet($p)", {"p": f"{first.cells}/*/*.parquet"})
        assert (
            n[0][0] == rows(con, "select count(*) from matrix.ratings where split = 'train'")[0][0]
        )

        again = stage.export(con, where, fingerprint=fingerprint, **args)
        assert again == first and marker.stat().st_mtime_ns == written

        other = stage.export(
            con, where, fingerprint=fingerprint, **{**args, "params": {"reg_bias": 2.0}}
        )
        assert other != first
        # A rebuilt matrix (another split) is another build: a new folder, never the old rows.
        from base.config import TransformConfig

        run_transforms(con, TransformConfig(min_book_ratings=60, seed=7))
        rebuilt = stage.export(con, where, fingerprint=matrix_fingerprint(con)[1], **args)
        assert Path(rebuilt.path).parent != Path(first.path).parent
        # The export's temp relations are gone: the connection is as it was.
        assert not rows(con, "select * from duckdb_tables() where table_name = 'spark_export'")
    finally:
        con.close()


# ----------------------------------------------------------------------------- one-line refusals


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "SHELFWISE_DB"} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "shelfwise.cli", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )


def runs(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as c:
        return c.execute("select run_id, kind, status from models.runs order by run_id").fetchall()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "args,env,message",
    [
        (("--spark-master", "sprak://x:7077"), {}, "is not a Spark master URL"),
        (("--spark-master", "spark://127.0.0.1:PORT"), {}, "no master answers"),
        (("--spark-stage", "STAGE_UNDER_A_FILE"), {}, "not writable"),
        (("--spark-conf", "nokey"), {}, "expected spark.KEY=VALUE"),
        ((), {"PATH": "EMPTY", "JAVA_HOME": ""}, "needs a Java runtime"),
    ],
    ids=["bad-master-url", "master-not-answering", "stage-not-writable", "bad-conf", "no-java"],
)
def test_a_bad_spark_setting_is_one_line_and_records_no_run(built, tmp_path, args, env, message):
    db = copy_of(built, tmp_path)
    before = runs(db)
    (tmp_path / "a-file").write_text("")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    fill = {
        "PORT": str(closed_port()),
        "STAGE_UNDER_A_FILE": str(tmp_path / "a-file" / "stage"),
        "EMPTY": str(empty),
    }
    args = tuple(next((a.replace(k, v) for k, v in fill.items() if k in a), a) for a in args)
    env = {k: fill.get(v, v) for k, v in env.items()}
    result = cli("fit", "als", "--engine", "spark", *args, "--db", str(db), env=env)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert runs(db) == before


def test_a_kind_spark_cannot_fit_is_refused_before_anything():
    assert REGISTRY["als"].engines == REGISTRY["mf"].engines == ("local", "spark")
    spark = EngineConfig(engine="spark")
    with pytest.raises(ShelfwiseError, match="svd cannot be fitted on the spark engine"):
        engine_params("svd", make_params("svd"), spark)
    # Spark's mf has no SVD++ term: the params a run records say so.
    assert engine_params("mf", MfParams(implicit_reg=100.0), spark).implicit_reg == 0.0
    assert engine_params("mf", MfParams(implicit_reg=100.0), EngineConfig()).implicit_reg == 100.0


def test_no_java_fails_in_process_too(built, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    from warehouse.db import connect

    con = connect(copy_of(built, tmp_path))
    try:
        before = rows(con, "select count(*) from models.runs")
        with pytest.raises(ShelfwiseError, match="needs a Java runtime"):
            fit_and_publish(
                con,
                "als",
                make_params("als"),
                PublishConfig(tsne=False),
                engine=EngineConfig(engine="spark", stage=str(tmp_path / "stage")),
            )
        assert rows(con, "select count(*) from models.runs") == before
    finally:
        con.close()


@pytest.mark.parametrize(
    "master",
    ["local", "local[2]", "local[*]", "local[4,2]", "yarn", "k8s://https://10.0.0.1:6443"],
)
def test_master_urls_spark_accepts_pass_the_syntax_check(master, monkeypatch):
    # k8s is checked for an answer too: pretend the API server answers.
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: _Open())
    runtime.check_master(master)


class _Open:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
