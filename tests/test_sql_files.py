"""Every SQL file has one home in the catalog: fixed tables, transform models, checks, views."""

from __future__ import annotations

import re

import duckdb
import pytest

from warehouse.catalog import CHECKS, EXPORTS, MODELS, TABLES, VIEWS, read_model, sql_dir
from warehouse.db import connect, create_views

LISTS = {
    "tables": TABLES,
    "models": MODELS,
    "checks": CHECKS,
    "views": VIEWS,
    "exports": EXPORTS,
}


def test_every_sql_file_is_in_exactly_one_list_and_every_listed_file_exists():
    on_disk = sorted(
        str(p.relative_to(sql_dir()).with_suffix("")) for p in sql_dir().rglob("*.sql")
    )
    listed = [name for names in LISTS.values() for name in names]
    assert len(listed) == len(set(listed)), "a file in two lists"
    assert sorted(listed) == on_disk


@pytest.mark.parametrize("name", TABLES + VIEWS)
def test_tables_and_views_open_with_the_models_header(name):
    model = read_model(name)
    first = model.sql.splitlines()[0]
    assert first.startswith("-- ") and len(first) > 25, "first line: what it is, in a sentence"
    grain = model.header("grain")
    assert grain and "key:" in grain, "grain and key on one line"
    assert model.header("upstream") and model.header("parameters") == "none"
    assert model.materialized == ("ddl" if name in TABLES else "view")
    code = re.sub(r"--[^\n]*", "", model.sql)
    assert ";" not in code and "$" not in code, "one statement, no parameters"


@pytest.mark.parametrize("name", TABLES)
def test_a_fixed_table_file_creates_the_relation_its_path_names(name):
    model = read_model(name)
    assert re.search(rf"create table if not exists {re.escape(model.relation)} \(", model.sql)


@pytest.mark.parametrize("name", VIEWS)
def test_a_view_names_every_relation_it_reads_upstream(name):
    model = read_model(name)
    code = re.sub(r"--[^\n]*", "", model.sql)
    read = {f"{s}.{t}" for s, t in re.findall(r"\b(models|core|main)\.([a-z_]+)\b", code)}
    assert read == set(model.upstream), (name, read ^ set(model.upstream))


def test_latest_runs_is_read_by_every_other_view_and_they_all_exist_on_a_built_warehouse(
    tmp_path,
):
    assert VIEWS[0] == "main/latest_runs"
    for name in VIEWS[1:]:
        assert "main.latest_runs" in read_model(name).upstream, name
    con = connect(tmp_path / "w.duckdb")
    try:
        # Before any transform only the views over models.* exist (core.books is missing).
        views = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'main' and table_type = 'VIEW'"
            ).fetchall()
        }
        assert views == {"latest_runs", "user_factors", "user_bias", "model_metrics"}
        con.execute("create table core.books (book_key bigint, title varchar, authors varchar)")
        create_views(con)
        views = {
            r[0]
            for r in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'main' and table_type = 'VIEW'"
            ).fetchall()
        }
        assert views == {v.split("/")[1] for v in VIEWS}
    finally:
        con.close()


def test_latest_runs_is_the_newest_published_run_of_each_kind():
    con = duckdb.connect(":memory:")
    con.execute("create schema models")
    con.execute(read_model("models/runs").sql)
    con.execute(
        """insert into models.runs (run_id, kind, source, params, input_fingerprint, started_at,
               status, published) values
           (1, 'mf', 'g', '{}', 'f', now(), 'succeeded', true),
           (2, 'mf', 'g', '{}', 'f', now(), 'succeeded', true),
           (3, 'mf', 'g', '{}', 'f', now(), 'failed', false),
           (4, 'als', 'g', '{}', 'f', now(), 'running', false),
           (5, 'als', 'g', '{}', 'f', now(), 'succeeded', true)"""
    )
    con.execute(f"create view main.latest_runs as {read_model('main/latest_runs').sql}")
    got = con.execute("select kind, run_id from main.latest_runs order by kind").fetchall()
    assert got == [("als", 5), ("mf", 2)]
